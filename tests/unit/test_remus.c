/* The Remus engine (remus/) between two real KVM domains in one process:
 * the primary runs the test guest's verify workload and is checkpointed
 * over a socketpair, through a relay thread that can cut the stream in the
 * middle of an epoch or corrupt one, into a replica built for restore.
 *
 * Needs /dev/kvm (exit 77, loudly, without it).  The guest kernel is
 * $TANDEM_GUEST_KERNEL, else ../guests/tandem-guest. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "domain.h"
#include "rig_domain.h"
#include "rig_time.h"
#include "tandem/remus.h"
#include "tandem/streams.h"

#define GUEST_CMDLINE "workload=verify wss=8"

/* ---- Log (console and domains: rig_domain.h) ---------------------------------- */

struct test_log {
    struct tlog log;
    pthread_mutex_t lock;
    char last_error[1024];
    const char *who;
};

static void test_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct test_log *t = opaque;
    if (level >= TLOG_WARN)
        fprintf(stderr, "  [%s] %s\n", t->who, msg);
    if (level >= TLOG_ERROR) {
        pthread_mutex_lock(&t->lock);
        snprintf(t->last_error, sizeof(t->last_error), "%s", msg);
        pthread_mutex_unlock(&t->lock);
    }
}

static void test_log_init(struct test_log *t, const char *who)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->log.fn = test_log_fn;
    t->log.opaque = t;
    t->log.min_level = TLOG_INFO;
    t->who = who;
}

/* ---- Status lines ----------------------------------------------------------- */

struct status {
    bool ok;
    uint64_t seq, uptime_ms, verify_errors;
};

/* The status lines from `from` on: how many, the first and the last, and
 * whether every one had verify_errors=0 and a rising seq. */
struct lines {
    unsigned n;
    struct status first, last;
    bool bad;
    char why[300];
};

static struct lines scan(struct rig_console *c, size_t from)
{
    struct lines l = { 0 };
    char *copy = rig_console_lines(c, from), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct status s = { 0 };
        s.ok = !strncmp(line, "TANDEM-GUEST seq=", 17) && rig_kv(line, "seq", &s.seq) &&
               rig_kv(line, "uptime_ms", &s.uptime_ms) && rig_kv(line, "verify_errors", &s.verify_errors);
        if (!s.ok)
            continue;
        if (!l.bad && (s.verify_errors || (l.n && s.seq <= l.last.seq))) {
            l.bad = true;
            snprintf(l.why, sizeof(l.why), "%s", line);
        }
        if (!l.n++)
            l.first = s;
        l.last = s;
    }
    free(copy);
    return l;
}

static unsigned wait_lines(struct rig_console *c, size_t from, unsigned want, unsigned timeout_ms)
{
    unsigned n = 0;
    for (unsigned waited = 0; waited < timeout_ms; waited += 50) {
        if ((n = scan(c, from).n) >= want)
            break;
        rig_sleep_ms(50);
    }
    return n;
}

/* ---- The relay ---------------------------------------------------------------
 * Forwards the stream record by record (it knows the framing: the libxl
 * header, records, the libxc image inline after LIBXC_CONTEXT and again
 * after each CHECKPOINT_END) and the acks byte by byte.  Once `trigger`
 * is set, the next epoch is cut (its first record forwarded and half of
 * its second, then an end of stream) or corrupted (its CHECKPOINT_END
 * forwarded with a body, which the reader refuses). */
/* RELAY_STALL_INITIAL: the link stops for STALL_MS in the initial copy's
 * first PAGE_DATA record, longer than twice the primary's timeout (a
 * write that timed out after taking some bytes returns them; the next
 * one then times out with none). */
enum relay_fault { RELAY_PASS, RELAY_CUT, RELAY_CORRUPT, RELAY_STALL_INITIAL };
#define STALL_MS 5000u
#define PRIMARY_TIMEOUT_MS 2000u

struct relay {
    int p_fd, s_fd;                      /* towards the primary, towards the secondary */
    enum relay_fault fault;
    bool trigger;
    uint64_t target;                     /* the epoch faulted (UINT64_MAX: none yet) */
    bool faulted;
    pthread_t fwd, back;
    uint64_t epochs_seen;
};

static bool read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void *relay_forward(void *arg)
{
    struct relay *r = arg;
    enum { LIBXL, LIBXC } layer = LIBXL;
    uint8_t head[40];
    uint8_t *body = malloc(8u << 20);
    uint64_t epoch = 0;                  /* the epoch being forwarded */
    unsigned in_epoch = 0;               /* records of this epoch so far */
    ck_assert_ptr_nonnull(body);
    if (!read_full(r->p_fd, head, 16) || !write_full(r->s_fd, head, 16))
        goto out;
    for (;;) {
        uint8_t h[8];
        if (!read_full(r->p_fd, h, 8))
            break;
        uint32_t type, len;
        memcpy(&type, h, 4);
        memcpy(&len, h + 4, 4);
        size_t total = len + ((8 - len % 8) % 8);
        if (r->fault == RELAY_STALL_INITIAL && !r->faulted && layer == LIBXC && epoch == 0 &&
            type == STREAM_LIBXC_PAGE_DATA) {
            /* Before reading its body: the primary's writes of it block. */
            rig_sleep_ms(STALL_MS);
            r->faulted = true;
        }
        if (total > (8u << 20) || !read_full(r->p_fd, body, total))
            break;
        bool faulting = __atomic_load_n(&r->trigger, __ATOMIC_ACQUIRE) && epoch >= 1 &&
                        (r->target == UINT64_MAX ? in_epoch == 0 : r->target == epoch);
        if (faulting && r->target == UINT64_MAX)
            r->target = epoch;
        if (faulting && r->fault == RELAY_CUT && in_epoch == 1) {
            /* Half of the second record of the epoch, then nothing. */
            write_full(r->s_fd, h, 8);
            write_full(r->s_fd, body, total / 2);
            r->faulted = true;
            break;
        }
        bool ckpt_end = layer == LIBXL && type == STREAM_LIBXL_CHECKPOINT_END;
        if (faulting && r->fault == RELAY_CORRUPT && ckpt_end) {
            uint32_t eight = 8;
            memcpy(h + 4, &eight, 4);
            memset(body, 0, 8);
            write_full(r->s_fd, h, 8);
            write_full(r->s_fd, body, 8);
            r->faulted = true;
            break;
        }
        if (!write_full(r->s_fd, h, 8) || !write_full(r->s_fd, body, total))
            break;
        in_epoch++;
        if (layer == LIBXL) {
            if (type == STREAM_LIBXL_LIBXC_CONTEXT) {
                if (!read_full(r->p_fd, head, 40) || !write_full(r->s_fd, head, 40))
                    break;
                layer = LIBXC;
            } else if (ckpt_end) {
                layer = LIBXC;
                __atomic_store_n(&r->epochs_seen, ++epoch, __ATOMIC_RELEASE);
                in_epoch = 0;
            } else if (type == STREAM_LIBXL_END) {
                break;
            }
        } else if (type == STREAM_LIBXC_CHECKPOINT || type == STREAM_LIBXC_END) {
            layer = LIBXL;
        }
    }
out:
    shutdown(r->s_fd, SHUT_WR);          /* the secondary sees the end of the stream */
    free(body);
    return NULL;
}

static void *relay_back(void *arg)
{
    struct relay *r = arg;
    uint8_t buf[256];
    for (;;) {
        ssize_t n = read(r->s_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || !write_full(r->p_fd, buf, (size_t)n))
            break;
    }
    shutdown(r->p_fd, SHUT_WR);
    return NULL;
}

/* ---- The two ends --------------------------------------------------------------- */

struct primary_run {
    struct domain *d;
    int fd;
    struct remus_opts o;
    struct remus_summary sum;
    int rc;
    struct test_log log;
    pthread_t thread;
    pthread_mutex_t lock;
    uint64_t acked[4096];
    unsigned nacked;
    bool out_of_order;
    uint64_t delta_pages, pages, bytes;
    bool stop;
};

static void primary_on_epoch(void *opaque, const struct remus_epoch_stats *e)
{
    struct primary_run *p = opaque;
    pthread_mutex_lock(&p->lock);
    if (p->nacked < 4096) {
        if (e->epoch != p->nacked)
            p->out_of_order = true;
        p->acked[p->nacked++] = e->epoch;
    }
    p->delta_pages += e->delta_pages;
    p->pages += e->pages;
    if (e->epoch)
        p->bytes += e->bytes;
    pthread_mutex_unlock(&p->lock);
}

static unsigned primary_acked(struct primary_run *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->nacked;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static void *primary_main(void *arg)
{
    struct primary_run *p = arg;
    p->rc = remus_primary_run(p->d, p->fd, p->fd, &p->o, &p->sum, &p->log.log);
    return NULL;
}

struct secondary_run {
    struct domain *d;
    int fd;
    struct remus_secondary_opts o;
    struct remus_secondary_summary sum;
    int rc;
    struct test_log log;
    pthread_t thread;
    uint8_t *snapshot;                   /* RAM at the last commit */
    uint64_t snapshot_epoch;
    bool in_order;
    uint64_t commits;
};

static size_t ram_bytes(struct domain *d, struct domain_ram_region rr[2], unsigned *nr)
{
    *nr = domain_ram_regions(d, rr);
    size_t total = 0;
    for (unsigned i = 0; i < *nr; i++)
        total += rr[i].size;
    return total;
}

static void copy_ram(struct domain *d, uint8_t *to)
{
    struct domain_ram_region rr[2];
    unsigned nr;
    ram_bytes(d, rr, &nr);
    for (unsigned i = 0; i < nr; i++) {
        memcpy(to, rr[i].host, rr[i].size);
        to += rr[i].size;
    }
}

/* Where two domains' RAM first differs (or -1). */
static long long ram_diff(struct domain *a, const uint8_t *b_copy, struct domain *b)
{
    struct domain_ram_region ra[2], rb[2];
    unsigned na, nb;
    size_t la = ram_bytes(a, ra, &na);
    ck_assert_uint_eq(la, b ? ram_bytes(b, rb, &nb) : la);
    size_t off = 0;
    for (unsigned i = 0; i < na; i++) {
        const uint8_t *other = b ? rb[i].host : b_copy + off;
        if (memcmp(ra[i].host, other, ra[i].size))
            for (size_t k = 0; k < ra[i].size; k += STREAM_PAGE_SIZE)
                if (memcmp(ra[i].host + k, other + k, STREAM_PAGE_SIZE))
                    return (long long)(ra[i].gpa + k);
        off += ra[i].size;
    }
    return -1;
}

static void secondary_on_epoch(void *opaque, uint64_t epoch)
{
    struct secondary_run *s = opaque;
    if (epoch != s->commits)
        s->in_order = false;
    s->commits++;
    if (s->snapshot) {
        copy_ram(s->d, s->snapshot);
        s->snapshot_epoch = epoch;
    }
}

static void *secondary_main(void *arg)
{
    struct secondary_run *s = arg;
    s->rc = remus_secondary_run(s->d, s->fd, s->fd, &s->o, &s->sum, &s->log.log);
    return NULL;
}

/* A protected pair: the primary booted and running, the replica built. */
struct pair {
    struct rig_console *pcon, *scon;
    struct test_log dlog;
    struct domain *pd, *sd;
    struct relay relay;
    struct primary_run *p;
    struct secondary_run *s;
    int sv_p[2], sv_s[2];
    char disk_p[64], disk_s[64];          /* "" without disks */
};

#define DISK_BYTES (4u << 20)

static void pair_start_disk(struct pair *x, unsigned interval_ms, bool compress, enum relay_fault fault,
                            bool snapshot, const char *cmdline, bool disk)
{
    memset(x, 0, sizeof(*x));
    if (disk) {
        /* Sparse: the replica's must read zeros where the primary's has
         * holes, since the initial copy skips them. */
        rig_make_image(x->disk_p, sizeof(x->disk_p), DISK_BYTES, true);
        rig_make_image(x->disk_s, sizeof(x->disk_s), DISK_BYTES, true);
    }
    signal(SIGPIPE, SIG_IGN);
    test_log_init(&x->dlog, "domain");
    x->pcon = rig_console_new();
    x->scon = rig_console_new();
    x->pd = rig_make_domain("remus-primary", 1, false, cmdline, disk ? x->disk_p : NULL, x->pcon, &x->dlog.log);
    x->sd = rig_make_domain("remus-replica", 1, true, cmdline, disk ? x->disk_s : NULL, x->scon, &x->dlog.log);
    domain_unpause(x->pd);
    unsigned n = wait_lines(x->pcon, 0, 2, 30000);
    ck_assert_msg(n >= 2, "the primary printed %u status lines; console: %.600s; end: %s", n, x->pcon->buf,
                  x->pcon->end_reason);

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sv_p), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sv_s), 0);
    x->relay = (struct relay){ .p_fd = x->sv_p[1], .s_fd = x->sv_s[0], .fault = fault, .target = UINT64_MAX };
    ck_assert_int_eq(pthread_create(&x->relay.fwd, NULL, relay_forward, &x->relay), 0);
    ck_assert_int_eq(pthread_create(&x->relay.back, NULL, relay_back, &x->relay), 0);

    x->s = calloc(1, sizeof(*x->s));
    ck_assert_ptr_nonnull(x->s);
    x->s->d = x->sd;
    x->s->fd = x->sv_s[1];
    x->s->in_order = true;
    test_log_init(&x->s->log, "secondary");
    x->s->o = (struct remus_secondary_opts){ .timeout_ms = 2000, .compress = compress,
                                             .on_epoch = secondary_on_epoch, .opaque = x->s };
    if (snapshot) {
        struct domain_ram_region rr[2];
        unsigned nr;
        x->s->snapshot = malloc(ram_bytes(x->sd, rr, &nr));
        ck_assert_ptr_nonnull(x->s->snapshot);
    }
    ck_assert_int_eq(pthread_create(&x->s->thread, NULL, secondary_main, x->s), 0);

    x->p = calloc(1, sizeof(*x->p));
    ck_assert_ptr_nonnull(x->p);
    x->p->d = x->pd;
    x->p->fd = x->sv_p[0];
    pthread_mutex_init(&x->p->lock, NULL);
    test_log_init(&x->p->log, "primary");
    x->p->o = (struct remus_opts){ .interval_ms = interval_ms, .compress = compress, .net_buffer = true,
                                   .disk_replication = true, .timeout_ms = PRIMARY_TIMEOUT_MS,
                                   .on_epoch = primary_on_epoch,
                                   .opaque = x->p, .stop = &x->p->stop };
    ck_assert_int_eq(pthread_create(&x->p->thread, NULL, primary_main, x->p), 0);
}

static void pair_start(struct pair *x, unsigned interval_ms, bool compress, enum relay_fault fault, bool snapshot,
                       const char *cmdline)
{
    pair_start_disk(x, interval_ms, compress, fault, snapshot, cmdline, false);
}

static bool wait_acked(struct pair *x, unsigned want, unsigned timeout_ms)
{
    uint64_t until = rig_now_ms() + timeout_ms;
    while (primary_acked(x->p) < want && rig_now_ms() < until)
        rig_sleep_ms(10);
    return primary_acked(x->p) >= want;
}

static void pair_free(struct pair *x)
{
    if (x->pd)
        domain_destroy(x->pd);
    if (x->sd)
        domain_destroy(x->sd);
    for (int i = 0; i < 2; i++) {
        close(x->sv_p[i]);
        close(x->sv_s[i]);
    }
    free(x->s->snapshot);
    free(x->s);
    free(x->p);
    free(x->pcon);
    free(x->scon);
    if (x->disk_p[0])
        unlink(x->disk_p);
    if (x->disk_s[0])
        unlink(x->disk_s);
}

/* Protection stopped by the primary's operator: both ends must end
 * cleanly (the primary 0, the secondary REMUS_SECONDARY_STOPPED). */
static void pair_stop(struct pair *x)
{
    __atomic_store_n(&x->p->stop, true, __ATOMIC_RELEASE);
    pthread_join(x->p->thread, NULL);
    pthread_join(x->s->thread, NULL);
    pthread_join(x->relay.fwd, NULL);
    shutdown(x->sv_p[1], SHUT_RDWR);
    shutdown(x->sv_s[1], SHUT_RDWR);
    pthread_join(x->relay.back, NULL);
    ck_assert_msg(x->p->rc == 0, "primary: %d: %s (%s)", x->p->rc, x->p->log.last_error, x->p->sum.lost_text);
    ck_assert_msg(x->s->rc == REMUS_SECONDARY_STOPPED, "secondary: %d: %s", x->s->rc, x->s->sum.why_text);
}

static void check_acks_in_order(struct pair *x)
{
    pthread_mutex_lock(&x->p->lock);
    bool ooo = x->p->out_of_order;
    unsigned n = x->p->nacked;
    pthread_mutex_unlock(&x->p->lock);
    ck_assert_msg(!ooo, "the primary's acks came out of order");
    ck_assert_msg(x->s->in_order, "the secondary committed epochs out of order");
    ck_assert_uint_gt(n, 0);
}

/* The primary dies (its stream cut in the middle of an epoch): the
 * replica fails over to the last whole epoch and runs on correct. */
static void failover(enum relay_fault fault)
{
    struct pair x;
    pair_start(&x, 50, true, fault, true, GUEST_CMDLINE);
    ck_assert_msg(wait_acked(&x, 20, 20000), "only %u epochs acked in 20 s: %s / %s", primary_acked(x.p),
                  x.p->log.last_error, x.s->log.last_error);
    rig_sleep_ms(1500);                      /* a few seconds protected in all */
    __atomic_store_n(&x.relay.trigger, true, __ATOMIC_RELEASE);
    pthread_join(x.relay.fwd, NULL);
    ck_assert_msg(x.relay.faulted, "the relay never faulted an epoch");
    pthread_join(x.s->thread, NULL);
    uint64_t failover_at = rig_now_ms();
    shutdown(x.sv_s[1], SHUT_RDWR);      /* the secondary's side is done */
    /* The primary is gone: its link closed, its domain destroyed. */
    shutdown(x.sv_p[1], SHUT_RDWR);
    pthread_join(x.p->thread, NULL);
    pthread_join(x.relay.back, NULL);
    ck_assert_msg(x.p->rc < 0, "the primary returned %d after losing its backup", x.p->rc);
    ck_assert_int_ne(x.p->sum.lost_reason, 0);
    printf("%s: primary: %" PRIu64 " epochs sent, last acked %" PRIu64 ", lost: %s\n",
           fault == RELAY_CUT ? "cut mid-epoch" : "corrupt epoch", x.p->sum.epochs, x.p->sum.last_acked,
           x.p->sum.lost_text);
    domain_destroy(x.pd);
    x.pd = NULL;

    ck_assert_msg(x.s->rc == REMUS_SECONDARY_FAILOVER, "the secondary returned %d (%s), not 1", x.s->rc,
                  x.s->sum.why_text);
    printf("    secondary: %" PRIu64 " epochs committed, last %" PRIu64 "; the stream ended: %s\n",
           x.s->sum.epochs, x.s->sum.last_committed, x.s->sum.why_text);
    /* The faulted epoch is the one after the last committed, and none of
     * it reached the replica: its memory is as at that commit. */
    ck_assert_uint_eq(x.s->sum.last_committed + 1, x.relay.target);
    ck_assert_uint_eq(x.s->snapshot_epoch, x.s->sum.last_committed);
    long long at = ram_diff(x.sd, x.s->snapshot, NULL);
    ck_assert_msg(at < 0, "the replica's memory changed after epoch %" PRIu64 " (gpa %#llx)",
                  x.s->sum.last_committed, at);
    check_acks_in_order(&x);

    /* Take over: the replica runs on from epoch E with its pages intact. */
    domain_unpause(x.sd);
    unsigned n = wait_lines(x.scon, 0, 3, 15000);
    struct lines l = scan(x.scon, 0);
    printf("    resumed epoch %" PRIu64 ": %u status lines in %" PRIu64 " ms, seq %" PRIu64 "..%" PRIu64
           ", uptime_ms %" PRIu64 ", verify_errors=%" PRIu64 "\n", x.s->sum.last_committed, l.n,
           rig_now_ms() - failover_at, l.first.seq, l.last.seq, l.last.uptime_ms, l.last.verify_errors);
    ck_assert_msg(n >= 3, "the replica printed %u status lines in 15 s: %.600s; end: %s", n, x.scon->buf,
                  x.scon->end_reason);
    ck_assert_msg(strstr(x.scon->buf, "TANDEM-GUEST boot") == NULL, "the replica rebooted: %.400s", x.scon->buf);
    ck_assert_msg(!l.bad, "a bad status line after failover: %s", l.why);
    ck_assert_uint_gt(l.first.seq, 2);  /* it went on, it did not start over */
    domain_pause(x.sd);
    pair_free(&x);
}

/* A backup that stops reading during the initial copy for longer than
 * the epoch timeout (it is writing the disks' blocks, its host is busy):
 * nothing is held then, so the primary waits, and protection starts. */
START_TEST(test_slow_backup_in_initial_copy)
{
    struct pair x;
    uint64_t t0 = rig_now_ms();
    pair_start(&x, 50, true, RELAY_STALL_INITIAL, false, GUEST_CMDLINE);
    bool ok = wait_acked(&x, 5, 30000);
    ck_assert_msg(x.relay.faulted, "the relay never stalled the initial copy");
    ck_assert_msg(ok, "only %u epochs acked after a %u ms stall in the initial copy (timeout %u ms): "
                  "primary: %s / secondary: %s", primary_acked(x.p), STALL_MS, PRIMARY_TIMEOUT_MS,
                  x.p->log.last_error, x.s->log.last_error);
    printf("initial copy stalled %u ms (timeout %u ms): 5 epochs acked after %" PRIu64 " ms\n", STALL_MS,
           PRIMARY_TIMEOUT_MS, rig_now_ms() - t0);
    pair_stop(&x);
    pair_free(&x);
}
END_TEST

START_TEST(test_failover_mid_epoch)
{
    failover(RELAY_CUT);
}
END_TEST

START_TEST(test_corrupt_epoch_refused)
{
    failover(RELAY_CORRUPT);
}
END_TEST

/* Protection stopped with the primary paused: the last epoch holds what
 * the primary holds, compressed or not. */
static void same_memory(bool compress)
{
    struct pair x;
    pair_start(&x, 50, compress, RELAY_PASS, false, GUEST_CMDLINE);
    ck_assert_msg(wait_acked(&x, 20, 20000), "only %u epochs acked: %s / %s", primary_acked(x.p),
                  x.p->log.last_error, x.s->log.last_error);
    domain_pause(x.pd);
    unsigned at = primary_acked(x.p);
    ck_assert(wait_acked(&x, at + 2, 5000));
    pair_stop(&x);
    ck_assert_uint_eq(x.s->sum.last_committed, x.p->sum.epochs - 1);
    long long diff = ram_diff(x.pd, NULL, x.sd);
    printf("compress=%s: %" PRIu64 " epochs, %" PRIu64 " pages sent, %" PRIu64 " as deltas; memory %s\n",
           compress ? "on" : "off", x.p->sum.epochs, x.p->pages, x.p->delta_pages,
           diff < 0 ? "identical" : "DIFFERS");
    ck_assert_msg(diff < 0, "the replica's memory differs from the primary's at gpa %#llx", diff);
    if (compress)
        ck_assert_msg(x.p->delta_pages > 0, "compression sent no page as a delta");
    else
        ck_assert_uint_eq(x.p->delta_pages, 0);
    check_acks_in_order(&x);
    domain_unpause(x.pd);
    pair_free(&x);
}

START_TEST(test_same_memory_compressed)
{
    same_memory(true);
}
END_TEST

START_TEST(test_same_memory_plain)
{
    same_memory(false);
}
END_TEST

/* ---- Disks ------------------------------------------------------------------------ */

static bool files_equal(const char *a, const char *b, long long *at)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert_ptr_nonnull(fa);
    ck_assert_ptr_nonnull(fb);
    long long off = 0;
    bool same = true;
    for (;;) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) {
            same = false;
            *at = off;
            break;
        }
        if (ca == EOF)
            break;
        off++;
    }
    fclose(fa);
    fclose(fb);
    return same;
}

static uint64_t disklog_records(struct pair *x)
{
    struct lines l = scan(x->pcon, 0);
    (void)l;
    pthread_mutex_lock(&x->pcon->lock);
    const char *p = NULL;
    for (const char *q = x->pcon->buf; (q = strstr(q, "disklog_last=")); q++)
        p = q;
    uint64_t v = p ? strtoull(p + 13, NULL, 10) : 0;
    pthread_mutex_unlock(&x->pcon->lock);
    return v;
}

/* A guest appending to its disk log, protected, stopped with the primary
 * paused: the replica's disk is the primary's, byte for byte. */
START_TEST(test_disk_replicated)
{
    struct pair x;
    pair_start_disk(&x, 50, true, RELAY_PASS, false, "workload=disklog", true);
    ck_assert_msg(wait_acked(&x, 20, 20000), "only %u epochs acked: %s / %s", primary_acked(x.p),
                  x.p->log.last_error, x.s->log.last_error);
    domain_pause(x.pd);
    unsigned at = primary_acked(x.p);
    ck_assert(wait_acked(&x, at + 2, 5000));
    pair_stop(&x);
    uint64_t records = disklog_records(&x);
    long long diff = -1;
    bool same = files_equal(x.disk_p, x.disk_s, &diff);
    printf("disk: %" PRIu64 " epochs, the guest's log at record %" PRIu64 "; the replica's image %s\n",
           x.p->sum.epochs, records, same ? "is identical" : "DIFFERS");
    ck_assert_uint_gt(records, 10);
    ck_assert_msg(same, "the replica's disk differs from the primary's at byte %lld", diff);
    ck_assert_msg(ram_diff(x.pd, NULL, x.sd) < 0, "the replica's memory differs from the primary's");
    domain_unpause(x.pd);
    pair_free(&x);
}
END_TEST

/* Failover with a disk: the replica's disk and memory are of the same
 * epoch, so the log it goes on writing has no hole; a fresh boot on the
 * replica's image checks every record. */
START_TEST(test_disk_failover)
{
    struct pair x;
    pair_start_disk(&x, 50, true, RELAY_CUT, false, "workload=disklog", true);
    ck_assert_msg(wait_acked(&x, 20, 20000), "only %u epochs acked: %s / %s", primary_acked(x.p),
                  x.p->log.last_error, x.s->log.last_error);
    rig_sleep_ms(1000);
    __atomic_store_n(&x.relay.trigger, true, __ATOMIC_RELEASE);
    pthread_join(x.relay.fwd, NULL);
    pthread_join(x.s->thread, NULL);
    shutdown(x.sv_s[1], SHUT_RDWR);
    shutdown(x.sv_p[1], SHUT_RDWR);
    pthread_join(x.p->thread, NULL);
    pthread_join(x.relay.back, NULL);
    domain_destroy(x.pd);
    x.pd = NULL;
    ck_assert_msg(x.s->rc == REMUS_SECONDARY_FAILOVER, "the secondary returned %d (%s)", x.s->rc,
                  x.s->sum.why_text);
    domain_unpause(x.sd);
    ck_assert(wait_lines(x.scon, 0, 3, 15000) >= 3);
    domain_pause(x.sd);
    struct lines l = scan(x.scon, 0);
    ck_assert_msg(!l.bad, "a bad status line after failover: %s", l.why);
    ck_assert_msg(strstr(x.scon->buf, "disklog_error ") == NULL, "the replica's log broke: %.800s", x.scon->buf);
    domain_destroy(x.sd);
    x.sd = NULL;

    /* A fresh boot on the replica's image reads the whole log back. */
    struct rig_console *con = rig_console_new();
    struct domain *check = rig_make_domain("remus-check", 1, false, "workload=disklog", x.disk_s, con,
                                           &x.dlog.log);
    domain_unpause(check);
    unsigned waited = 0;
    while (!strstr(con->buf, "disklog check ") && waited < 20000) {
        rig_sleep_ms(50);
        waited += 50;
    }
    domain_pause(check);
    pthread_mutex_lock(&con->lock);
    const char *p = strstr(con->buf, "disklog check ");
    uint64_t records = 0, errors = 1;
    if (p) {
        rig_kv(p, "records", &records);
        rig_kv(p, "errors", &errors);
    }
    char line[200] = "";
    if (p)
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
    pthread_mutex_unlock(&con->lock);
    printf("disk failover: resumed epoch %" PRIu64 "; a fresh boot on the replica's image: %s\n",
           x.s->sum.last_committed, line);
    ck_assert_msg(p, "no disklog check line: %.600s", con->buf);
    ck_assert_uint_gt(records, 10);
    ck_assert_uint_eq(errors, 0);
    domain_destroy(check);
    free(con);
    /* pair_free without the domains */
    x.sd = NULL;
    for (int i = 0; i < 2; i++) {
        close(x.sv_p[i]);
        close(x.sv_s[i]);
    }
    free(x.s->snapshot);
    free(x.s);
    free(x.p);
    free(x.pcon);
    free(x.scon);
    unlink(x.disk_p);
    unlink(x.disk_s);
}
END_TEST

/* Figures: pause time and pages per epoch for the dirtying guest. */
START_TEST(test_figures)
{
    static const unsigned intervals[] = { 200, 50, 25, 10 };
    /* verify rewrites whole pages (deltas rarely pay); dirty writes one
     * word per page at a set rate (deltas of a few dozen bytes). */
    static const char *const guests[] = { GUEST_CMDLINE, "workload=dirty wss=32 rate=50000" };
    for (unsigned g = 0; g < 2; g++)
    for (unsigned i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
        struct pair x;
        if (!i)
            printf("remus figures (guest: %s, %u MiB, 1 vCPU; compress on):\n", guests[g], RIG_GUEST_MB);
        pair_start(&x, intervals[i], true, RELAY_PASS, false, guests[g]);
        ck_assert_msg(wait_acked(&x, 2, 20000), "interval %u: nothing acked: %s / %s", intervals[i],
                      x.p->log.last_error, x.s->log.last_error);
        uint64_t t0 = rig_now_ms();
        unsigned a0 = primary_acked(x.p);
        rig_sleep_ms(2000);
        unsigned a1 = primary_acked(x.p);
        uint64_t t1 = rig_now_ms();
        pair_stop(&x);
        struct lines l = scan(x.pcon, 0);
        printf("  interval_ms=%u epochs=%" PRIu64 " epochs_per_s=%.1f pause_us_median=%" PRIu64
               " pause_us_max=%" PRIu64 " pages_median=%" PRIu64 " pages_max=%" PRIu64 " delta_pages_pct=%.0f"
               " bytes_per_epoch=%" PRIu64 " guest_verify_errors=%" PRIu64 "\n",
               intervals[i], x.p->sum.epochs, (double)(a1 - a0) * 1000.0 / (double)(t1 - t0),
               x.p->sum.pause_us_median, x.p->sum.pause_us_max, x.p->sum.pages_median, x.p->sum.pages_max,
               x.p->pages ? 100.0 * (double)x.p->delta_pages / (double)x.p->pages : 0.0,
               x.p->nacked > 1 ? x.p->bytes / (x.p->nacked - 1) : 0, l.last.verify_errors);
        ck_assert_uint_eq(l.last.verify_errors, 0);
        ck_assert_uint_gt(x.p->sum.epochs, 2);
        ck_assert_uint_gt(x.p->sum.pause_us_median, 0);
        check_acks_in_order(&x);
        pair_free(&x);
    }
}
END_TEST

Suite *unit_suite(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    rig_require_kvm("test_remus");
    rig_find_guest_kernel("test_remus");
    Suite *s = suite_create("remus");
    /* One case each, so CK_RUN_CASE can pick one. */
    TCase *failover = tcase_create("failover"), *corrupt = tcase_create("corrupt"),
          *memory = tcase_create("memory"), *figures = tcase_create("figures"), *disk = tcase_create("disk");
    tcase_add_test(failover, test_failover_mid_epoch);
    tcase_add_test(failover, test_slow_backup_in_initial_copy);
    tcase_add_test(corrupt, test_corrupt_epoch_refused);
    tcase_add_test(memory, test_same_memory_compressed);
    tcase_add_test(memory, test_same_memory_plain);
    tcase_add_test(disk, test_disk_replicated);
    tcase_add_test(disk, test_disk_failover);
    tcase_add_test(figures, test_figures);
    TCase *all[] = { failover, corrupt, memory, disk, figures };
    for (unsigned i = 0; i < 5; i++) {
        tcase_set_timeout(all[i], 180);
        suite_add_tcase(s, all[i]);
    }
    return s;
}
