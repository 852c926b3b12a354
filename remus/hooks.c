/* Remus as a domain process calls it (struct domproc_remus_hooks): the
 * option words of the control commands turned into the engine's options,
 * epoch figures turned into progress lines, and the witness probe that
 * guards the backup against taking over from a primary that is alive. */
#include "config.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "tandem/remus.h"
#include "tandem/xen.h"

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One "key=value" or "word" of an option line; false if it is no number. */
static bool number_of(const char *tok, const char *key, unsigned long long *v)
{
    size_t kl = strlen(key);
    if (strncmp(tok, key, kl) != 0 || tok[kl] != '=')
        return false;
    char *end;
    *v = strtoull(tok + kl + 1, &end, 10);
    return end != tok + kl + 1 && !*end;
}

/* ---- Primary ------------------------------------------------------------ */

struct primary_ctx {
    const struct domproc_remus_report *r;
};

static void primary_on_epoch(void *opaque, const struct remus_epoch_stats *e)
{
    struct primary_ctx *p = opaque;
    char line[300];
    snprintf(line, sizeof(line), "epoch=%llu pause_us=%llu pages=%llu bytes=%llu disk_bytes=%llu ack_us=%llu "
                                 "held_frames=%llu",
             (unsigned long long)e->epoch, (unsigned long long)e->pause_us, (unsigned long long)e->pages,
             (unsigned long long)e->bytes, (unsigned long long)e->disk_bytes, (unsigned long long)e->ack_us,
             (unsigned long long)e->held_frames);
    if (p->r->progress)
        p->r->progress(p->r->opaque, line);
    if (p->r->epoch)
        p->r->epoch(p->r->opaque, e->epoch, unix_ms());
}

static int parse_primary_options(const char *options, struct remus_opts *o, const struct tlog *log)
{
    *o = (struct remus_opts){ .interval_ms = 200, .compress = true, .net_buffer = true, .disk_replication = true,
                              .max_downtime_ms = 30, .max_iters = 30 };
    char *copy = strdup(options ? options : ""), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        unsigned long long v;
        if (number_of(tok, "interval_ms", &v) && v >= 1 && v <= 60000)
            o->interval_ms = (unsigned)v;
        else if (number_of(tok, "timeout_ms", &v) && v <= 600000)
            o->timeout_ms = (unsigned)v;
        else if (number_of(tok, "max_downtime_ms", &v))
            o->max_downtime_ms = (unsigned)v;
        else if (number_of(tok, "max_iters", &v) && v >= 1)
            o->max_iters = (unsigned)v;
        else if (!strcmp(tok, "nocompress"))
            o->compress = false;
        else if (!strcmp(tok, "nonetbuf"))
            o->net_buffer = false;
        else if (!strcmp(tok, "nodisk"))
            o->disk_replication = false;
        else if (!strcmp(tok, "blackhole"))
            o->blackhole = true;
        else {
            tlog_error(log, "remus: bad option '%s'", tok);
            rc = -EINVAL;
        }
    }
    free(copy);
    return rc;
}

static int hook_primary(struct domain *d, const char *name, int out_fd, int in_fd, const char *options,
                        const struct domproc_remus_report *r, const bool *stop, char *summary, size_t len,
                        const struct tlog *log)
{
    (void)name;   /* the witness is the domain process's */
    struct remus_opts o;
    int rc = parse_primary_options(options, &o, log);
    if (rc)
        return rc;
    struct primary_ctx p = { .r = r };
    o.on_epoch = primary_on_epoch;
    o.opaque = &p;
    o.stop = stop;
    struct remus_summary sum;
    memset(&sum, 0, sizeof(sum));
    rc = remus_primary_run(d, out_fd, in_fd, &o, &sum, log);
    snprintf(summary, len, "epochs=%llu last_acked=%llu pause_us_median=%llu pause_us_max=%llu",
             (unsigned long long)sum.epochs, (unsigned long long)sum.last_acked,
             (unsigned long long)sum.pause_us_median, (unsigned long long)sum.pause_us_max);
    if (rc && sum.lost_text[0])
        tlog_error(log, "%s", sum.lost_text);   /* the reason the client is told */
    return rc;
}

/* ---- The witness -------------------------------------------------------- */

static int witness_parse(const char *spec, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || (size_t)(colon - spec) >= sizeof(host) || !port || port > 65535 || *end)
        return -EINVAL;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    *sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

static int witness_probe(const char *spec, const char *name, unsigned tries, unsigned wait_ms,
                        const struct tlog *log)
{
    struct sockaddr_in sa;
    if (witness_parse(spec, &sa)) {
        tlog_error(log, "remus: witness '%s' is not ADDR:PORT", spec);
        return -EINVAL;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* connect(): only the witness's answers reach us, and an ICMP
     * "port unreachable" (a live host, the process gone) shows as an
     * error rather than a silence: both mean "not alive". */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        close(fd);
        tlog_warn(log, "remus: witness %s unreachable: %s", spec, strerror(err));
        return 0;
    }
    unsigned long long nonce = monotonic_usec();
    char probe[200], want[200], got[200];
    int pl = snprintf(probe, sizeof(probe), DOMPROC_WITNESS_PROBE " %s %llu", name, nonce);
    snprintf(want, sizeof(want), DOMPROC_WITNESS_ALIVE " %s %llu", name, nonce);
    int alive = 0;
    unsigned refused = 0;
    for (unsigned t = 0; t < tries && !alive && refused < 2; t++) {
        if (send(fd, probe, (size_t)pl, MSG_NOSIGNAL) < 0)
            tlog_debug(log, "remus: witness probe %u: %s", t + 1, strerror(errno));
        uint64_t until = monotonic_usec() + (uint64_t)wait_ms * 1000u;
        for (;;) {
            uint64_t now = monotonic_usec();
            if (now >= until)
                break;
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int pr = poll(&pfd, 1, (int)((until - now) / 1000u) + 1);
            if (pr <= 0)
                break;
            ssize_t n = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);
            if (n < 0) {
                /* ICMP port unreachable: the host is up but nothing
                 * listens there, so the primary's domain process (whose
                 * life the witness shares) is gone.  Twice, to be sure it
                 * was not a moment of rebinding. */
                if (errno == ECONNREFUSED)
                    refused++;
                break;
            }
            got[n] = '\0';
            if (!strcmp(got, want)) {
                alive = 1;
                break;
            }
        }
    }
    close(fd);
    return alive;
}

/* ---- Secondary ------------------------------------------------------------ */

struct secondary_ctx {
    const struct domproc_remus_report *r;
    const struct tlog *log;
    const char *name;
    char witness[160];
    bool asked, alive;          /* what the witness last said */
    uint64_t committed;
};

static bool secondary_primary_alive(void *opaque)
{
    struct secondary_ctx *s = opaque;
    int rc = witness_probe(s->witness, s->name, 5, 200, s->log);
    s->asked = true;
    s->alive = rc > 0;
    tlog_warn(s->log, "remus: witness %s says the primary is %s", s->witness, s->alive ? "ALIVE" : "gone");
    return s->alive;
}

static void secondary_on_epoch(void *opaque, uint64_t epoch)
{
    struct secondary_ctx *s = opaque;
    /* One line for the first commit only: every epoch would flood the
     * terminal of the xl remus that reads our stderr. */
    if (s->committed++ == 0 && s->r->progress) {
        char line[80];
        snprintf(line, sizeof(line), "committed epoch=%llu", (unsigned long long)epoch);
        s->r->progress(s->r->opaque, line);
    }
    if (s->r->epoch)
        s->r->epoch(s->r->opaque, epoch, unix_ms());
}

static int hook_secondary(struct domain *d, const char *name, int in_fd, int ack_fd, const char *options,
                          const struct domproc_remus_report *r, char *summary, size_t len, const struct tlog *log)
{
    struct remus_secondary_opts o = { 0 };
    struct secondary_ctx s = { .r = r, .log = log, .name = name };
    unsigned interval = 200;
    char *copy = strdup(options ? options : ""), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    o.compress = true;
    for (char *tok = strtok_r(copy, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        unsigned long long v;
        struct sockaddr_in sa;
        if (number_of(tok, "timeout_ms", &v) && v <= 600000)
            o.timeout_ms = (unsigned)v;
        else if (number_of(tok, "interval_ms", &v) && v >= 1)
            interval = (unsigned)v;
        else if (!strcmp(tok, "nocompress"))
            o.compress = false;
        else if (!strncmp(tok, "witness=", 8) && !witness_parse(tok + 8, &sa))
            snprintf(s.witness, sizeof(s.witness), "%s", tok + 8);
        else {
            tlog_error(log, "remus-secondary: bad option '%s'", tok);
            rc = -EINVAL;
        }
    }
    free(copy);
    if (rc)
        return rc;
    /* As the primary's ack timeout: 3 intervals, at least a second (a
     * shorter one gives up on a primary still starting its first copy). */
    if (!o.timeout_ms)
        o.timeout_ms = interval * 3 > 1000 ? interval * 3 : 1000;
    if (s.witness[0]) {
        o.primary_alive = secondary_primary_alive;
    } else {
        tlog_warn(log, "remus: no witness: a cut replication link will look like a dead primary, and this "
                       "backup will take over while the primary may still run (split brain)");
    }
    o.opaque = &s;
    o.on_epoch = secondary_on_epoch;
    struct remus_secondary_summary sum;
    memset(&sum, 0, sizeof(sum));
    rc = remus_secondary_run(d, in_fd, ack_fd, &o, &sum, log);
    uint64_t since_ms = sum.last_commit_usec ? (monotonic_usec() - sum.last_commit_usec) / 1000u : 0;
    const char *why = sum.why_text[0] ? sum.why_text : sum.why ? strerror(-sum.why) : "end of stream";
    if (rc == REMUS_SECONDARY_FAILOVER && s.witness[0] && !s.asked)
        secondary_primary_alive(&s);   /* the engine did not ask: ask now */
    if (rc == REMUS_SECONDARY_PRIMARY_ALIVE || (rc == REMUS_SECONDARY_FAILOVER && s.asked && s.alive)) {
        snprintf(summary, len, "stream lost (%s) after epoch %llu, but the witness %s answers for the primary",
                 why, (unsigned long long)sum.last_committed, s.witness);
        return DOMPROC_REMUS_PRIMARY_ALIVE;
    }
    if (rc == REMUS_SECONDARY_FAILOVER) {
        snprintf(summary, len, "primary lost after %llu epochs (%s); resumed epoch %llu, %llu ms after the last "
                               "commit", (unsigned long long)sum.epochs, why, (unsigned long long)sum.last_committed,
                 (unsigned long long)since_ms);
        return DOMPROC_REMUS_FAILOVER;
    }
    if (rc == REMUS_SECONDARY_STOPPED) {
        snprintf(summary, len, "epochs=%llu last_committed=%llu", (unsigned long long)sum.epochs,
                 (unsigned long long)sum.last_committed);
        return DOMPROC_REMUS_STOPPED;
    }
    if (sum.why_text[0])
        tlog_error(log, "%s", sum.why_text);
    return rc < 0 ? rc : -EIO;
}

/* Declared in tools/xl.h: xl hands it to the domain processes it starts. */
extern const struct domproc_remus_hooks remus_domproc_hooks;
const struct domproc_remus_hooks remus_domproc_hooks = {
    .primary = hook_primary,
    .secondary = hook_secondary,
};
