/* Live save: iterative precopy over log-dirty, then stop-and-copy.
 *
 *   iteration 0   every RAM page (zero pages as XALLOC), guest running
 *   iteration n   the pages dirtied during iteration n-1
 *   stop          when what is left would go within the downtime target
 *                 at the bandwidth measured, or after max_iters
 *   stop-and-copy pause, last harvest, those pages, vCPU/platform/device
 *                 state; the domain stays paused for the handshake.
 *
 * A guest that dirties faster than the link sends is throttled: the vCPUs
 * that dirty most (per-vCPU counts from the dirty ring) sleep a growing
 * share of their time, step by step, as QEMU's dirty-limit does. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "migration_internal.h"

#define THROTTLE_STEP 20
#define THROTTLE_MAX 99
#define DIRTY_LIMIT_MIN 100          /* pages/s: never stop a vCPU outright */

#define precopy migration_precopy

/* Between batches: gives up when cancelled, and keeps the send rate
 * under the limit by sleeping when ahead of it.  The stop-and-copy is not
 * limited: the guest is paused, and every millisecond is downtime. */
static int pace(struct precopy *p)
{
    if (p->o->cancel && __atomic_load_n(p->o->cancel, __ATOMIC_RELAXED))
        return -ECANCELED;
    if (!p->o->bandwidth_bytes_per_sec || p->unpaced)
        return 0;
    uint64_t sent = stream_sink_offset(p->s);
    uint64_t due_usec = sent * 1000000u / p->o->bandwidth_bytes_per_sec;
    uint64_t elapsed = migration_now_usec() - p->start_usec;
    if (due_usec > elapsed + 1000)
        usleep((useconds_t)(due_usec - elapsed));
    return 0;
}

static void progress(struct precopy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct precopy *p, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    if (!p->o->progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    p->o->progress(p->o->progress_opaque, line);
}

/* Sends the pages set in the bitmap, clearing it; batches of Xen's size. */
int migration_precopy_send_dirty(struct precopy *p, struct migration_stats *it)
{
    uint64_t list[STREAM_MAX_BATCH];
    unsigned n = 0;
    for (size_t w = 0; w < p->words; w++) {
        uint64_t bits = p->bitmap[w];
        if (!bits)
            continue;
        p->bitmap[w] = 0;
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            list[n++] = (uint64_t)w * 64 + b;
            if (n == STREAM_MAX_BATCH) {
                int rc = migration_write_pages(p->d, p->s, list, n, p->o->compress, it);
                if (!rc)
                    rc = pace(p);
                if (rc)
                    return rc;
                n = 0;
            }
        }
    }
    return n ? migration_write_pages(p->d, p->s, list, n, p->o->compress, it) : 0;
}

static int send_all(struct precopy *p, struct migration_stats *it)
{
    /* All of RAM in region-sized steps, pacing between them. */
    struct domain_ram_region rr[2];
    unsigned nr = domain_ram_regions(p->d, rr);
    uint64_t list[STREAM_MAX_BATCH];
    for (unsigned r = 0; r < nr; r++) {
        uint64_t first = rr[r].gpa / STREAM_PAGE_SIZE, count = rr[r].size / STREAM_PAGE_SIZE;
        for (uint64_t i = 0; i < count; i += STREAM_MAX_BATCH) {
            unsigned n = (unsigned)(count - i < STREAM_MAX_BATCH ? count - i : STREAM_MAX_BATCH);
            for (unsigned k = 0; k < n; k++)
                list[k] = first + i + k;
            int rc = migration_write_pages(p->d, p->s, list, n, p->o->compress, it);
            if (!rc)
                rc = pace(p);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Raises the throttle of the vCPUs dirtying most: those at or above half
 * the top rate (all of them when the log cannot tell vCPUs apart).  Time
 * sharing comes first; a vCPU at the top of that scale, which can still
 * dirty faster than the link sends (each round sees it), gets a dirty-rate
 * limit as well: half the link's page rate shared among the heavy vCPUs,
 * halved again each round that still does not shrink. */
static void throttle_up(struct precopy *p, double link_bytes_per_sec)
{
    unsigned nv = domain_nr_vcpus(p->d);
    uint64_t top = 0, *delta = calloc(nv, sizeof(uint64_t));
    if (!delta)
        return;
    for (unsigned i = 0; i < nv; i++) {
        uint64_t now = domain_vcpu_dirtied(p->d, i);
        delta[i] = now - p->vcpu_dirtied[i];
        p->vcpu_dirtied[i] = now;
        if (delta[i] > top)
            top = delta[i];
    }
    unsigned heavy = 0;
    for (unsigned i = 0; i < nv; i++)
        heavy += !(top && delta[i] * 2 < top);
    uint64_t share = (uint64_t)(link_bytes_per_sec / (STREAM_PAGE_SIZE + 8) / 2 / (heavy ? heavy : 1));
    for (unsigned i = 0; i < nv; i++) {
        if (top && delta[i] * 2 < top)
            continue;
        if (p->throttle[i] >= THROTTLE_MAX) {
            uint64_t lim = p->dirty_limit[i] ? p->dirty_limit[i] / 2 : share;
            p->dirty_limit[i] = lim < DIRTY_LIMIT_MIN ? DIRTY_LIMIT_MIN : lim;
            domain_set_vcpu_dirty_limit(p->d, i, p->dirty_limit[i]);
            if (!p->st->dirty_limit || p->dirty_limit[i] < p->st->dirty_limit)
                p->st->dirty_limit = p->dirty_limit[i];
            continue;
        }
        unsigned t = p->throttle[i] + THROTTLE_STEP;
        p->throttle[i] = t > THROTTLE_MAX ? THROTTLE_MAX : t;
        domain_set_vcpu_throttle(p->d, i, p->throttle[i]);
        if (p->throttle[i] > p->st->throttle_pct)
            p->st->throttle_pct = p->throttle[i];
    }
    free(delta);
}

static int precopy_rounds(struct precopy *p)
{
    const struct migration_live_opts *o = p->o;
    struct migration_live_stats *st = p->st;
    uint64_t prev_dirty = UINT64_MAX;

    for (unsigned iter = 0;; iter++) {
        struct migration_stats it = { 0 };
        if (o->cancel && __atomic_load_n(o->cancel, __ATOMIC_RELAXED))
            return -ECANCELED;
        uint64_t t0 = migration_now_usec(), b0 = stream_sink_offset(p->s), dirty = 0;
        int rc;
        if (iter == 0) {
            rc = send_all(p, &it);
        } else {
            rc = domain_logdirty_harvest(p->d, p->bitmap, NULL);
            for (size_t w = 0; w < p->words; w++)
                dirty += (uint64_t)__builtin_popcountll(p->bitmap[w]);
            if (!rc)
                rc = migration_precopy_send_dirty(p, &it);
        }
        /* Push the round out now: what sits in the sink's buffer would
         * otherwise be sent inside the stop-and-copy, as downtime. */
        if (!rc)
            rc = stream_sink_flush(p->s);
        if (rc)
            return rc;
        uint64_t usec = migration_now_usec() - t0, bytes = stream_sink_offset(p->s) - b0;
        if (iter < MIGRATION_MAX_ITER_STATS) {
            struct migration_iteration *r = &st->iter[iter];
            *r = (struct migration_iteration){ .iteration = iter, .pages = it.pages,
                                               .zero_pages = it.zero_pages, .dirty_pages = dirty,
                                               .usec = usec, .bytes = bytes };
        }
        st->iterations = iter + 1;
        st->total.pages += it.pages;
        st->total.zero_pages += it.zero_pages;
        st->total.page_bytes += it.page_bytes;
        st->total.page_bytes_plain += it.page_bytes_plain;

        /* What is dirty now decides whether another round is worth it. */
        uint64_t pending = 0;
        if ((rc = domain_logdirty_harvest(p->d, p->bitmap, NULL)))
            return rc;
        for (size_t w = 0; w < p->words; w++)
            pending += (uint64_t)__builtin_popcountll(p->bitmap[w]);
        /* Bandwidth from this round (at least 1 MB/s, so a round of zero
         * pages cannot promise an instant finish). */
        double bps = usec ? (double)bytes * 1e6 / (double)usec : 1e9;
        if (o->bandwidth_bytes_per_sec && bps > (double)o->bandwidth_bytes_per_sec)
            bps = (double)o->bandwidth_bytes_per_sec;
        if (bps < 1e6)
            bps = 1e6;
        double est_ms = (double)pending * (STREAM_PAGE_SIZE + 8) * 1000.0 / bps;
        /* Compressed, the pages left take what this round's took per page. */
        if (o->compress && it.page_bytes_plain)
            est_ms *= (double)it.page_bytes / (double)it.page_bytes_plain;
        progress(p, "iteration=%u pages=%" PRIu64 " zero=%" PRIu64 " dirty=%" PRIu64 " mbps=%.1f "
                    "remaining_pages=%" PRIu64 " est_downtime_ms=%.1f throttle_pct=%u",
                 iter, it.pages, it.zero_pages, dirty, bps / 1e6, pending, est_ms, st->throttle_pct);
        if (est_ms <= (double)o->max_downtime_ms || iter + 1 >= o->max_iters)
            return 0;
        /* Not converging: as much (or more) is dirty as was sent. */
        if (iter >= 1 && pending * 10 >= prev_dirty * 9)
            throttle_up(p, bps);
        prev_dirty = pending;
    }
}

int migration_precopy_init(struct precopy *p, struct domain *d, struct stream_sink *s,
                           const struct migration_live_opts *o, struct migration_live_stats *st,
                           const struct tlog *log)
{
    *p = (struct precopy){ .d = d, .s = s, .o = o, .st = st, .log = log };
    p->rings0 = domain_ring_full_exits(d);
    memset(st, 0, sizeof(*st));
    p->start_usec = migration_now_usec();
    st->stream_version = o->stream_version ? o->stream_version : STREAM_LIBXC_VERSION;
    st->logdirty = domain_logdirty_mode(d);
    st->compress = o->compress;
    if (o->logdirty != DOMAIN_LOGDIRTY_AUTO && o->logdirty != st->logdirty) {
        tlog_error(log, "--logdirty=%s, but this domain tracks dirty pages with the %s (xl.cfg log_dirty)",
                   domain_logdirty_mode_name(o->logdirty), domain_logdirty_mode_name(st->logdirty));
        return -EINVAL;
    }
    unsigned nv = domain_nr_vcpus(d);
    p->words = domain_logdirty_bitmap_words(d);
    p->bitmap = calloc(p->words, sizeof(uint64_t));
    p->vcpu_dirtied = calloc(nv, sizeof(uint64_t));
    p->throttle = calloc(nv, sizeof(unsigned));
    p->dirty_limit = calloc(nv, sizeof(uint64_t));
    if (!p->bitmap || !p->vcpu_dirtied || !p->throttle || !p->dirty_limit)
        return -ENOMEM;
    for (unsigned i = 0; i < nv; i++)
        p->vcpu_dirtied[i] = domain_vcpu_dirtied(d, i);
    return 0;
}

int migration_precopy_headers(struct precopy *p, int (*before_libxc)(void *opaque, struct stream_sink *s),
                              void *opaque)
{
    int rc;
    if ((rc = stream_write_libxl_header(p->s)))
        return rc;
    if (before_libxc && (rc = before_libxc(opaque, p->s)))
        return rc;
    if ((rc = stream_write_libxc_context(p->s)) ||
        (rc = stream_write_libxc_header_version(p->s, p->st->stream_version, TANDEM_VERSION_MAJOR,
                                                TANDEM_VERSION_MINOR)) ||
        (p->st->stream_version >= 3 && (rc = migration_write_static_data(p->d, p->s, p->log))))
        return rc;
    return 0;
}

int migration_precopy_rounds(struct precopy *p)
{
    int rc = domain_logdirty_start(p->d, p->log);
    if (rc)
        return rc;
    p->logging = true;
    return precopy_rounds(p);
}

void migration_precopy_fini(struct precopy *p)
{
    domain_throttle_off(p->d);
    if (p->logging)
        domain_logdirty_stop(p->d);
    p->logging = false;
    p->st->ring_full_exits = domain_ring_full_exits(p->d) - p->rings0;
    free(p->bitmap);
    free(p->vcpu_dirtied);
    free(p->throttle);
    free(p->dirty_limit);
    p->bitmap = NULL;
    p->vcpu_dirtied = NULL;
    p->throttle = NULL;
    p->dirty_limit = NULL;
}

int migration_save_live(struct domain *d, int fd, const struct migration_live_opts *o,
                        struct migration_live_stats *st, const struct tlog *log)
{
    struct precopy p;
    struct stream_sink *s = NULL;
    int rc = migration_precopy_init(&p, d, NULL, o, st, log);
    bool paused = false;
    if (rc == -EINVAL) {         /* the options are wrong: nothing was tried */
        migration_precopy_fini(&p);
        domain_pause(d);
        return rc;
    }
    if (!rc)
        rc = stream_sink_new(fd, log, &s);
    p.s = s;
    if (rc)
        goto out;
    if ((rc = migration_precopy_headers(&p, NULL, NULL)) || (rc = migration_precopy_rounds(&p)))
        goto out;

    /* Stop-and-copy. */
    st->pause_usec = migration_now_usec();
    domain_pause(d);
    paused = true;
    p.unpaced = true;
    progress(&p, "paused");
    struct migration_stats last = { 0 };
    uint64_t dirty = 0;
    if ((rc = domain_logdirty_harvest(d, p.bitmap, &dirty)) || (rc = migration_precopy_send_dirty(&p, &last)) ||
        (rc = migration_write_cpu_state(d, s, log)) || (rc = migration_write_device_state(d, s, log)) ||
        (rc = stream_write_libxl_end(s)) || (rc = stream_sink_flush(s)))
        goto out;
    st->final_pages = last.pages + last.zero_pages;
    st->total.pages += last.pages;
    st->total.zero_pages += last.zero_pages;
    st->total.page_bytes += last.page_bytes;
    st->total.page_bytes_plain += last.page_bytes_plain;
    st->stop_copy_usec = migration_now_usec() - st->pause_usec;
out:
    if (rc)
        tlog_error(log, "live save failed at byte %" PRIu64 ": %s", s ? stream_sink_offset(s) : 0,
                   strerror(-rc));
    migration_precopy_fini(&p);
    if (!paused)
        domain_pause(d); /* the contract: every save returns with the domain paused */
    st->total.bytes = s ? stream_sink_offset(s) : 0;
    st->total.usec = migration_now_usec() - p.start_usec;
    stream_sink_free(s);
    return rc;
}

void migration_live_stats_format(const struct migration_live_stats *st, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "iterations=%u bytes=%" PRIu64 " pages=%" PRIu64 " zero_pages=%" PRIu64 " save_ms=%" PRIu64
                      " stop_copy_ms=%.1f final_pages=%" PRIu64 " throttle_pct=%u dirty_limit=%" PRIu64 " logdirty=%s ring_full_exits=%" PRIu64
                     " compress=%s page_bytes=%" PRIu64 " page_bytes_plain=%" PRIu64 " stream_version=%u iter=",
                     st->iterations, st->total.bytes, st->total.pages, st->total.zero_pages, st->total.usec / 1000,
                     (double)st->stop_copy_usec / 1000.0, st->final_pages, st->throttle_pct, st->dirty_limit,
                     domain_logdirty_mode_name(st->logdirty), st->ring_full_exits, st->compress ? "lz4" : "none",
                     st->total.page_bytes, st->total.page_bytes_plain, st->stream_version);
    for (unsigned i = 0; i < st->iterations && i < MIGRATION_MAX_ITER_STATS && n > 0 && (size_t)n < len; i++) {
        const struct migration_iteration *r = &st->iter[i];
        n += snprintf(buf + n, len - (size_t)n, "%s%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64,
                      i ? "," : "", r->pages, r->zero_pages, r->dirty_pages, r->usec / 1000, r->bytes);
    }
}
