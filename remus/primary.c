/* The Remus primary: the initial live migration on migration/'s precopy
 * loop, then one checkpoint per interval (docs/remus.md):
 *
 *   paused:  harvest log-dirty, copy the dirty pages into a local buffer,
 *            take TSC info, HVM params, HVM context and device state,
 *            close the network output epoch, copy the dirty disk blocks
 *   running: write the epoch (pages plain or as deltas against the copy
 *            sent last), CHECKPOINT, EMULATOR_CONTEXT, TANDEM_DISK_DATA*,
 *            CHECKPOINT_END
 *   acks:    a thread reads the secondary's acks from in_fd, in order, and
 *            releases each epoch's held output
 *
 * Whatever goes wrong after the initial copy started, the guest runs on:
 * the output held so far is released, buffering and disk tracking stop,
 * and the failure is logged as the loss of the backup. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "migration_internal.h"
#include "remus_internal.h"
#include "tandem/streams.h"

#define INFLIGHT_MAX 32                   /* epochs sent and not yet acked */
#define DELTA_CACHE_DEFAULT (64ull << 20)
#define DISK_COPY_CHUNK (4u << 20)        /* the initial disk copy, per harvest call */

uint64_t remus_median(uint64_t *v, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++)       /* insertion sort: a few thousand values at most */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* One checkpoint, as copied while the guest was paused. */
struct disk_block {
    unsigned disk;
    uint64_t offset;
    uint32_t len;
    size_t at;                            /* in disk_data */
};

struct epoch_copy {
    uint64_t *pfns;
    uint8_t *pages;                       /* n pages of data, in pfns order */
    size_t n, cap;
    struct migration_cpu_state cpu;
    uint8_t *devices;
    size_t devices_len;
    struct disk_block *blocks;
    size_t nblocks, blocks_cap;
    uint8_t *disk_data;
    size_t disk_len, disk_cap;
    int disk_error;
};

struct inflight {
    uint64_t epoch, net_epoch, sent_usec;
    struct remus_epoch_stats st;
};

struct primary {
    struct domain *d;
    const struct remus_opts *o;
    const struct tlog *log;
    int in_fd;
    unsigned interval_ms, timeout_ms;
    struct stream_sink *s;
    struct migration_precopy pc;
    struct migration_live_opts live;
    struct migration_live_stats live_st;
    struct domain_ram_region rr[2];
    unsigned nr;
    bool net, disk;
    enum domain_netbuf_backend net_backend;

    /* The copy of each page last sent in an epoch (compression). */
    uint32_t *slot;                       /* per pfn: 0 none, else index + 1 */
    uint8_t *cache;
    size_t cache_used, cache_max;         /* in pages */

    /* Acks (the ack thread and the engine thread). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t ack_thread;
    bool ack_running, quit;
    struct inflight inflight[INFLIGHT_MAX];
    unsigned head, count;
    uint64_t last_acked;
    bool any_acked;
    int ack_error;
    char ack_text[160];

    /* Figures. */
    uint64_t *pauses, *pages;
    size_t nfig, fig_cap;
    uint64_t epochs;
};

/* ---- The ack thread --------------------------------------------------------- */

static void *ack_main(void *arg)
{
    struct primary *p = arg;
    uint8_t buf[STREAM_CHECKPOINT_ACK_SIZE];
    size_t got = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool quit = p->quit;
        pthread_mutex_unlock(&p->lock);
        if (quit)
            return NULL;
        struct pollfd pfd = { .fd = p->in_fd, .events = POLLIN };
        int pr = poll(&pfd, 1, 50);
        if (pr < 0 && errno == EINTR)
            continue;
        int err = 0;
        char text[160] = "";
        if (pr < 0) {
            err = -errno;
            snprintf(text, sizeof(text), "polling the back channel: %s", strerror(errno));
        } else if (pr == 0) {
            continue;
        } else {
            ssize_t n = read(p->in_fd, buf + got, sizeof(buf) - got);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n < 0) {
                err = -errno;
                snprintf(text, sizeof(text), "reading the back channel: %s", strerror(errno));
            } else if (n == 0) {
                err = -EPIPE;
                snprintf(text, sizeof(text), "the back channel was closed%s", got ? " inside an ack" : "");
            } else if ((got += (size_t)n) == sizeof(buf)) {
                uint64_t epoch;
                got = 0;
                if (stream_parse_checkpoint_ack(buf, &epoch, p->log)) {
                    err = -EINVAL;
                    snprintf(text, sizeof(text), "a malformed ack on the back channel");
                } else {
                    pthread_mutex_lock(&p->lock);
                    if (!p->count || p->inflight[p->head].epoch != epoch) {
                        err = -EPROTO;
                        snprintf(text, sizeof(text), "ack for epoch %" PRIu64 ", but %s", epoch,
                                 p->count ? "an earlier epoch is unacked" : "no epoch is unacked");
                        pthread_mutex_unlock(&p->lock);
                    } else {
                        struct inflight f = p->inflight[p->head];
                        p->head = (p->head + 1) % INFLIGHT_MAX;
                        p->count--;
                        pthread_mutex_unlock(&p->lock);
                        f.st.ack_us = migration_now_usec() - f.sent_usec;
                        if (p->net && f.net_epoch) {
                            struct domain_net_buffer_stats a, b;
                            domain_net_buffer_stats(p->d, &a);
                            domain_net_buffer_release(p->d, f.net_epoch);
                            domain_net_buffer_stats(p->d, &b);
                            f.st.held_frames = b.released_frames - a.released_frames;
                        }
                        if (p->o->on_epoch)
                            p->o->on_epoch(p->o->opaque, &f.st);
                        pthread_mutex_lock(&p->lock);
                        p->last_acked = epoch;
                        p->any_acked = true;
                        pthread_cond_broadcast(&p->cond);
                        pthread_mutex_unlock(&p->lock);
                    }
                }
            }
        }
        if (err) {
            pthread_mutex_lock(&p->lock);
            if (!p->ack_error) {
                p->ack_error = err;
                snprintf(p->ack_text, sizeof(p->ack_text), "%s", text);
            }
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    }
}

/* ---- Copying a checkpoint while paused ------------------------------------------ */

static int copy_pages(struct primary *p, struct epoch_copy *e)
{
    e->n = 0;
    for (size_t w = 0; w < p->pc.words; w++) {
        uint64_t bits = p->pc.bitmap[w];
        p->pc.bitmap[w] = 0;
        while (bits) {
            uint64_t pfn = (uint64_t)w * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            const uint8_t *host = migration_pfn_to_host(p->rr, p->nr, pfn);
            if (!host)
                continue;
            if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 1024;
                uint64_t *np = realloc(e->pfns, cap * sizeof(uint64_t));
                if (np)
                    e->pfns = np;
                uint8_t *pg = np ? realloc(e->pages, cap * STREAM_PAGE_SIZE) : NULL;
                if (!pg)
                    return -ENOMEM;
                e->pages = pg;
                e->cap = cap;
            }
            e->pfns[e->n] = pfn;
            memcpy(e->pages + e->n * STREAM_PAGE_SIZE, host, STREAM_PAGE_SIZE);
            e->n++;
        }
    }
    return 0;
}

static int copy_block(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len)
{
    struct epoch_copy *e = opaque;
    if (e->nblocks == e->blocks_cap) {
        size_t cap = e->blocks_cap ? e->blocks_cap * 2 : 64;
        struct disk_block *nb = realloc(e->blocks, cap * sizeof(*nb));
        if (!nb)
            return e->disk_error = -ENOMEM;
        e->blocks = nb;
        e->blocks_cap = cap;
    }
    if (e->disk_len + len > e->disk_cap) {
        size_t cap = e->disk_cap ? e->disk_cap : 1u << 20;
        while (cap < e->disk_len + len)
            cap *= 2;
        uint8_t *nd = realloc(e->disk_data, cap);
        if (!nd)
            return e->disk_error = -ENOMEM;
        e->disk_data = nd;
        e->disk_cap = cap;
    }
    memcpy(e->disk_data + e->disk_len, data, len);
    e->blocks[e->nblocks++] = (struct disk_block){ disk, offset, len, e->disk_len };
    e->disk_len += len;
    return 0;
}

/* ---- Writing a checkpoint ------------------------------------------------------- */

/* The copy of pfn last sent in an epoch; NULL when none is kept.  With
 * make, a page never kept gets a slot (while the bound allows), filled by
 * the caller with what it sends now: only a copy of what the secondary
 * holds may be a delta's base. */
static uint8_t *cached(struct primary *p, uint64_t pfn, bool make, bool *fresh)
{
    *fresh = false;
    if (!p->slot || pfn >= domain_max_pfn(p->d))
        return NULL;
    if (!p->slot[pfn]) {
        if (!make || p->cache_used >= p->cache_max)
            return NULL;
        p->slot[pfn] = (uint32_t)++p->cache_used;
        *fresh = true;
    }
    return p->cache + (size_t)(p->slot[pfn] - 1) * STREAM_PAGE_SIZE;
}

static int write_pages(struct primary *p, const struct epoch_copy *e, uint64_t epoch,
                       struct remus_epoch_stats *st)
{
    uint64_t pfns[STREAM_MAX_BATCH], dpfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const void *pages[STREAM_MAX_BATCH];
    const uint8_t *enc[STREAM_MAX_BATCH];
    uint32_t enc_len[STREAM_MAX_BATCH];
    static const uint8_t zero_page[STREAM_PAGE_SIZE];
    uint8_t *arena = NULL;
    unsigned n = 0, nd = 0;
    int rc = 0;
    bool delta_ok = p->o->compress && epoch > 0;
    uint64_t b0 = stream_sink_offset(p->s);

    if (delta_ok && !(arena = malloc((size_t)STREAM_MAX_BATCH * STREAM_PAGE_SIZE)))
        delta_ok = false;        /* no room to encode: the pages go plain */
    for (size_t i = 0; i <= e->n && !rc; i++) {
        if (i == e->n || n == STREAM_MAX_BATCH || nd == STREAM_MAX_BATCH) {
            if (n)
                rc = stream_write_page_data(p->s, n, pfns, types, pages);
            if (!rc && nd)
                rc = stream_write_page_delta(p->s, nd, dpfns, enc, enc_len);
            n = nd = 0;
            if (i == e->n || rc)
                break;
        }
        const uint8_t *pg = e->pages + i * STREAM_PAGE_SIZE;
        uint64_t pfn = e->pfns[i];
        bool zero = stream_page_is_zero(pg);
        bool fresh;
        uint8_t *old = p->o->compress ? cached(p, pfn, true, &fresh) : NULL;
        st->pages++;
        if (!zero && delta_ok && old && !fresh) {
            uint8_t *out = arena + (size_t)nd * STREAM_PAGE_SIZE;
            uint32_t len = stream_delta_encode(old, pg, out);
            if (len) {
                dpfns[nd] = pfn;
                enc[nd] = out;
                enc_len[nd++] = len;
                st->delta_pages++;
                memcpy(old, pg, STREAM_PAGE_SIZE);
                continue;
            }
        }
        pfns[n] = pfn;
        types[n] = zero ? STREAM_PAGE_XALLOC : STREAM_PAGE_NORMAL;
        pages[n++] = zero ? NULL : pg;
        if (old)
            memcpy(old, zero ? zero_page : pg, STREAM_PAGE_SIZE);
    }
    free(arena);
    st->page_bytes = stream_sink_offset(p->s) - b0;
    return rc;
}

static int write_disk(struct primary *p, const struct epoch_copy *e, struct remus_epoch_stats *st)
{
    int rc = 0;
    for (size_t i = 0; i < e->nblocks && !rc; i++) {
        const struct disk_block *b = &e->blocks[i];
        rc = stream_write_disk_data(p->s, b->disk, b->offset, e->disk_data + b->at, b->len);
        st->disk_bytes += b->len;
    }
    return rc;
}

static void record_figures(struct primary *p, const struct remus_epoch_stats *st)
{
    if (p->nfig == p->fig_cap) {
        size_t cap = p->fig_cap ? p->fig_cap * 2 : 256;
        uint64_t *a = realloc(p->pauses, cap * sizeof(uint64_t));
        if (a)
            p->pauses = a;
        uint64_t *b = a ? realloc(p->pages, cap * sizeof(uint64_t)) : NULL;
        if (!b)
            return;                /* figures are not worth failing for */
        p->pages = b;
        p->fig_cap = cap;
    }
    p->pauses[p->nfig] = st->pause_us;
    p->pages[p->nfig++] = st->pages;
}

/* One checkpoint: paused while copying, running while sending. */
static int checkpoint(struct primary *p, struct epoch_copy *e, uint64_t epoch)
{
    struct remus_epoch_stats st = { .epoch = epoch };
    uint64_t net_epoch = 0, b0 = stream_sink_offset(p->s);
    uint64_t t0 = migration_now_usec();
    int rc;

    domain_pause(p->d);
    e->nblocks = e->disk_len = 0;
    e->disk_error = 0;
    rc = domain_logdirty_harvest(p->d, p->pc.bitmap, NULL);
    if (!rc)
        rc = copy_pages(p, e);
    if (!rc)
        rc = migration_get_cpu_state(p->d, &e->cpu, p->log);
    if (!rc)
        rc = domain_get_device_state(p->d, &e->devices, &e->devices_len, p->log);
    if (!rc && p->net) {
        /* Output from here on is held: at epoch 0 buffering starts, and
         * each later checkpoint closes the output epoch it ends. */
        if (epoch == 0)
            rc = domain_net_buffer_start_on(p->d, 0, p->net_backend);
        else
            net_epoch = domain_net_buffer_mark(p->d);
    }
    if (!rc && p->disk) {
        rc = domain_disk_harvest(p->d, 0, copy_block, e, NULL, p->log);
        if (e->disk_error)
            rc = e->disk_error;
    }
    domain_unpause(p->d);
    st.pause_us = migration_now_usec() - t0;
    if (rc) {
        tlog_error(p->log, "Remus: checkpoint %" PRIu64 ": copying the paused guest's state failed: %s",
                   epoch, strerror(-rc));
        goto out;
    }

    if ((rc = write_pages(p, e, epoch, &st)) || (rc = migration_put_cpu_state(p->s, &e->cpu)) ||
        (rc = stream_write_checkpoint(p->s)) ||
        (rc = stream_write_emulator_context(p->s, 0, e->devices, e->devices_len)) ||
        (rc = write_disk(p, e, &st)) || (rc = stream_write_checkpoint_end(p->s))) {
        tlog_error(p->log, "Remus: sending checkpoint %" PRIu64 " failed: %s", epoch, strerror(-rc));
        goto out;
    }
    st.bytes = stream_sink_offset(p->s) - b0;
    record_figures(p, &st);
    p->epochs++;

    /* In the ring before the last bytes go: the ack may come back before
     * the flush returns. */
    struct inflight f = { .epoch = epoch, .net_epoch = net_epoch, .sent_usec = migration_now_usec(), .st = st };
    if (!p->o->blackhole) {
        pthread_mutex_lock(&p->lock);
        p->inflight[(p->head + p->count) % INFLIGHT_MAX] = f;
        p->count++;
        pthread_mutex_unlock(&p->lock);
    }
    if ((rc = stream_sink_flush(p->s))) {
        tlog_error(p->log, "Remus: sending checkpoint %" PRIu64 " failed: %s", epoch, strerror(-rc));
        goto out;
    }
    if (p->o->blackhole) {
        /* Nobody acks: output goes out at once (unsafe mode, -F -b). */
        if (p->net && net_epoch)
            domain_net_buffer_release(p->d, net_epoch);
        if (p->o->on_epoch)
            p->o->on_epoch(p->o->opaque, &st);
        p->last_acked = epoch;
        p->any_acked = true;
    } else {
        /* ack_us and the timeout count from the end of sending. */
        uint64_t sent = migration_now_usec();
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->count; i++)
            if (p->inflight[(p->head + i) % INFLIGHT_MAX].epoch == epoch)
                p->inflight[(p->head + i) % INFLIGHT_MAX].sent_usec = sent;
        pthread_mutex_unlock(&p->lock);
    }
out:
    migration_cpu_state_free(&e->cpu);
    free(e->devices);
    e->devices = NULL;
    return rc;
}

/* A secondary that stops reading must not hang the primary in write(2)
 * for ever: a send timeout on sockets (not an error on pipes and files,
 * which have none). */
static void set_send_timeout(int fd, unsigned ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Waits until `until` (monotonic usec) with room for another epoch in
 * flight, or (drain) until every epoch is acked; fails when the secondary
 * is lost: an ack thread error, or the oldest unacked epoch older than the
 * timeout. */
static int wait_acks(struct primary *p, uint64_t until, bool drain, char *why, size_t len)
{
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    for (;;) {
        uint64_t now = migration_now_usec();
        if (p->ack_error) {
            rc = p->ack_error;
            snprintf(why, len, "%s", p->ack_text);
            break;
        }
        if (p->count && now - p->inflight[p->head].sent_usec > (uint64_t)p->timeout_ms * 1000) {
            rc = -ETIMEDOUT;
            snprintf(why, len, "no ack for epoch %" PRIu64 " within %u ms", p->inflight[p->head].epoch,
                     p->timeout_ms);
            break;
        }
        if (drain ? !p->count : (now >= until && p->count < INFLIGHT_MAX))
            break;
        if (!drain && p->o->stop && __atomic_load_n(p->o->stop, __ATOMIC_RELAXED))
            break;
        /* Wake at least every 10 ms to look at the clock and *stop. */
        uint64_t wake = now + 10000;
        if (!drain && until > now && until < wake)
            wake = until;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int initial_disk_copy(void *opaque, struct stream_sink *s)
{
    struct primary *p = opaque;
    struct epoch_copy e = { 0 };
    bool more = true;
    int rc = 0;
    (void)s;
    while (more && !rc) {
        e.nblocks = e.disk_len = 0;
        rc = domain_disk_harvest(p->d, DISK_COPY_CHUNK, copy_block, &e, &more, p->log);
        if (e.disk_error)
            rc = e.disk_error;
        for (size_t i = 0; i < e.nblocks && !rc; i++)
            rc = stream_write_disk_data(p->s, e.blocks[i].disk, e.blocks[i].offset, e.disk_data + e.blocks[i].at,
                                        e.blocks[i].len);
    }
    free(e.blocks);
    free(e.disk_data);
    return rc;
}

static void stop_ack_thread(struct primary *p)
{
    if (!p->ack_running)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->ack_thread, NULL);
    p->ack_running = false;
}

int remus_primary_run(struct domain *d, int out_fd, int in_fd, const struct remus_opts *o,
                      struct remus_summary *sum, const struct tlog *log)
{
    struct primary p = { .d = d, .o = o, .log = log, .in_fd = in_fd };
    struct epoch_copy e = { 0 };
    char why[200] = "";
    int rc;
    bool protecting = false, tracking = false;

    memset(sum, 0, sizeof(*sum));
    pthread_mutex_init(&p.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.cond, &ca);
    pthread_condattr_destroy(&ca);
    p.interval_ms = o->interval_ms ? o->interval_ms : REMUS_DEFAULT_INTERVAL_MS;
    p.timeout_ms = o->timeout_ms ? o->timeout_ms : (3 * p.interval_ms > 1000 ? 3 * p.interval_ms : 1000);
    p.net = o->net_buffer;
    p.net_backend = o->net_backend;
    if (p.net && p.net_backend == DOMAIN_NETBUF_PLUG) {
        /* Probed here, running: it builds and deletes a throw-away tap and
         * ifb, too slow for epoch 0's pause.  No silent fallback: the
         * operator asked for the kernel's queue. */
        char why_not[200];
        if (!domain_net_buffer_probe(why_not, sizeof(why_not))) {
            tlog_error(log, "Remus: output buffering: the plug qdisc was asked for but is not available (%s)",
                       why_not);
            snprintf(why, sizeof(why), "no plug qdisc: %.180s", why_not);
            rc = -EOPNOTSUPP;
            goto out;
        }
    }
    if (p.net)
        tlog_info(log, "Remus: output buffering: %s", p.net_backend == DOMAIN_NETBUF_PLUG
                                                          ? "plug qdisc on an ifb (kernel)"
                                                          : "vmm (the virtio-net backend)");
    p.disk = o->disk_replication && domain_nr_disks(d) > 0;
    p.nr = domain_ram_regions(d, p.rr);
    p.live = (struct migration_live_opts){ .max_downtime_ms = o->max_downtime_ms ? o->max_downtime_ms : 30,
                                           .max_iters = o->max_iters ? o->max_iters : 30, .cancel = o->stop };
    if (!o->blackhole && in_fd < 0) {
        tlog_error(log, "Remus: no back channel for the secondary's acks");
        rc = -EBADF;
        goto out;
    }
    if (o->compress) {
        uint64_t ram = 0, want = o->delta_cache_bytes ? o->delta_cache_bytes : DELTA_CACHE_DEFAULT;
        for (unsigned i = 0; i < p.nr; i++)
            ram += p.rr[i].size;
        if (want > ram)
            want = ram;
        p.cache_max = (size_t)(want / STREAM_PAGE_SIZE);
        p.slot = calloc((size_t)domain_max_pfn(d), sizeof(uint32_t));
        p.cache = malloc(p.cache_max ? p.cache_max * STREAM_PAGE_SIZE : 1);
        if (!p.slot || !p.cache) {
            tlog_error(log, "Remus: no memory for %zu pages of compression copies", p.cache_max);
            rc = -ENOMEM;
            goto out;
        }
    }
    /* The initial copy may wait on a backup that writes the disks' blocks
     * and the first pass's pages as they come; nothing is held yet, so a
     * slow backup then costs only the start of protection: the same long
     * wait as the backup's before its first commit. */
    set_send_timeout(out_fd, p.timeout_ms > REMUS_FIRST_BYTE_TIMEOUT_MS ? p.timeout_ms
                                                                       : REMUS_FIRST_BYTE_TIMEOUT_MS);
    if ((rc = stream_sink_new(out_fd, log, &p.s)))
        goto out;
    rc = migration_precopy_init(&p.pc, d, p.s, &p.live, &p.live_st, log);
    protecting = true;           /* from here on, fini and the devices' stop run */
    if (rc)
        goto out;
    if (p.disk) {
        if ((rc = domain_disk_track_start(d, true))) {
            tlog_error(log, "Remus: starting disk tracking failed: %s", strerror(-rc));
            goto out;
        }
        tracking = true;
    }
    if ((rc = migration_precopy_headers(&p.pc, p.disk ? initial_disk_copy : NULL, &p)) ||
        (rc = migration_precopy_rounds(&p.pc))) {
        tlog_error(log, "Remus: the initial copy failed at byte %" PRIu64 ": %s", stream_sink_offset(p.s),
                   strerror(-rc));
        goto out;
    }
    domain_throttle_off(d);      /* epochs do not throttle the guest */
    /* From epoch 0 on the guest's output is held until acked. */
    set_send_timeout(out_fd, p.timeout_ms);
    if (!o->blackhole) {
        if ((rc = -pthread_create(&p.ack_thread, NULL, ack_main, &p)))
            goto out;
        p.ack_running = true;
    }

    uint64_t epoch = 0;
    for (;;) {
        uint64_t start = migration_now_usec();
        if ((rc = checkpoint(&p, &e, epoch))) {
            snprintf(why, sizeof(why), "checkpoint %" PRIu64 ": %s", epoch, strerror(-rc));
            goto out;
        }
        epoch++;
        /* The interval runs start to start; an overrun starts at once. */
        if ((rc = wait_acks(&p, start + (uint64_t)p.interval_ms * 1000, false, why, sizeof(why))))
            goto out;
        if (o->stop && __atomic_load_n(o->stop, __ATOMIC_RELAXED))
            break;
    }

    /* A clean end: the last checkpoint stands, the secondary is told. */
    if ((rc = stream_write_libxc_end(p.s)) || (rc = stream_write_libxl_end(p.s)) ||
        (rc = stream_sink_flush(p.s))) {
        snprintf(why, sizeof(why), "writing the END records: %s", strerror(-rc));
        goto out;
    }
    if (!o->blackhole && wait_acks(&p, 0, true, why, sizeof(why)))
        tlog_warn(log, "Remus: stopping: %s", why);
    why[0] = 0;
out:
    stop_ack_thread(&p);
    if (protecting || tracking) {
        /* The guest runs on either way: what it said goes out now. */
        if (p.net)
            domain_net_buffer_stop(d, true);
        if (tracking)
            domain_disk_track_stop(d);
        migration_precopy_fini(&p.pc);
    }
    if (rc) {
        sum->lost_reason = rc;
        snprintf(sum->lost_text, sizeof(sum->lost_text), "%s", why[0] ? why : strerror(-rc));
        if (p.any_acked)
            tlog_error(log, "Remus: THE BACKUP IS LOST after epoch %" PRIu64 " (%s): the guest runs on "
                       "UNPROTECTED", p.last_acked, sum->lost_text);
        else
            tlog_error(log, "Remus: protection never started (%s): the guest runs on UNPROTECTED",
                       sum->lost_text);
    }
    sum->epochs = p.epochs;
    sum->last_acked = p.any_acked ? p.last_acked : 0;
    if (p.nfig) {
        for (size_t i = 0; i < p.nfig; i++) {
            if (p.pauses[i] > sum->pause_us_max)
                sum->pause_us_max = p.pauses[i];
            if (p.pages[i] > sum->pages_max)
                sum->pages_max = p.pages[i];
        }
        sum->pause_us_median = remus_median(p.pauses, p.nfig);
        sum->pages_median = remus_median(p.pages, p.nfig);
    }
    stream_sink_free(p.s);
    free(e.pfns);
    free(e.pages);
    free(e.blocks);
    free(e.disk_data);
    free(p.slot);
    free(p.cache);
    free(p.pauses);
    free(p.pages);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.lock);
    return rc;
}
