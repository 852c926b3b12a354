/* The per-domain process: owns one domain for its whole life, serves its
 * control socket, writes its console log and carries out on_poweroff /
 * on_reboot / on_crash.  Like Xen's xl per-domain daemon, it is detached
 * from the xl that started it, so xl may exit or crash freely. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include "domain.h"

#define CONSOLE_RING 65536
#define MAX_CLIENTS 16

struct client {
    int fd;
    bool console;            /* attached console: raw bytes both ways */
    int passed_fd;           /* the first fd that came with the command, or -1 */
    int passed_fd2;          /* the second (xl remus's back channel), or -1 */
    char buf[512];
    size_t len;
};

/* A save, and Remus on either side, run in their own thread so the main
 * loop keeps serving the console and other clients meanwhile. */
enum job_kind { JOB_SAVE, JOB_REMUS_PRIMARY, JOB_REMUS_SECONDARY };

struct job {
    bool running;
    enum job_kind kind;
    pthread_t thread;
    struct client *client;   /* to answer; NULL once it hung up */
    int fd;
    int fd2;                 /* Remus: the back channel (acks), or -1 */
    int progress_fd;         /* a dup of the client's socket, for progress */
    char options[400];
    char name[DOMAIN_NAME_MAX]; /* Remus: the domain's name (the backup's after failover) */
    int rc;
    char summary[2048];
    bool cancel;             /* its client hung up: give up (save) */
    bool stop;               /* end Remus protection cleanly (primary) */
    bool blackhole;          /* Remus to /dev/null (xl remus -F -b): no backup at all */
    bool was_user_paused;
};

/* Figures the Remus job hands to the main loop, which alone writes the
 * registry. */
struct remus_news {
    pthread_mutex_t lock;
    uint64_t epoch;
    long long commit_ms;
    bool changed;
};

struct domproc {
    struct domproc_args *a;
    struct domain *d;
    struct registry_entry reg;
    int epfd, listen_fd, console_efd, end_efd, signal_fd, console_log_fd, job_efd;
    struct job job;
    /* Remus. */
    int remus_efd;           /* the job has news for the registry */
    struct remus_news news;
    int witness_fd;          /* UDP: answers the backup's "is the primary alive?" */
    char witness_name[DOMAIN_NAME_MAX];
    char witness_spec[160];
    bool backup_waiting;     /* a Remus replica waiting for its remus-secondary command */
    uint64_t backup_deadline_ms;
    bool user_paused;
    bool quit;

    /* Console bytes from vCPU threads wait here for the main loop. */
    pthread_mutex_t ring_lock;
    uint8_t ring[CONSOLE_RING];
    size_t ring_len;
    unsigned long long dropped;

    /* Set by the vCPU that ends the domain. */
    pthread_mutex_t end_lock;
    enum domain_end end;
    char end_reason[256];

    struct client clients[MAX_CLIENTS];

    /* Everything is logged through here: it forwards to the domain's log
     * and keeps the last error, which is what xl shows if create fails. */
    struct tlog log;
    char last_error[300];
    int watch_stop[2];       /* ends the restore watcher */
};

static void domproc_log(void *opaque, enum tlog_level level, const char *msg)
{
    struct domproc *dp = opaque;
    if (level >= TLOG_ERROR)
        snprintf(dp->last_error, sizeof(dp->last_error), "%s", msg);
    tlog(dp->a->log, level, "%s", msg);
}

static void on_console(void *opaque, uint8_t byte)
{
    struct domproc *dp = opaque;
    bool wake;
    pthread_mutex_lock(&dp->ring_lock);
    wake = dp->ring_len == 0;
    if (dp->ring_len < CONSOLE_RING)
        dp->ring[dp->ring_len++] = byte;
    else
        dp->dropped++;
    pthread_mutex_unlock(&dp->ring_lock);
    if (wake) {
        uint64_t one = 1;
        if (write(dp->console_efd, &one, sizeof(one)) < 0) { /* counter saturated: already signalled */ }
    }
}

static void on_end(void *opaque, enum domain_end end, const char *reason)
{
    struct domproc *dp = opaque;
    pthread_mutex_lock(&dp->end_lock);
    dp->end = end;
    snprintf(dp->end_reason, sizeof(dp->end_reason), "%s", reason);
    pthread_mutex_unlock(&dp->end_lock);
    uint64_t one = 1;
    if (write(dp->end_efd, &one, sizeof(one)) < 0) { /* already signalled */ }
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= w;
    }
}

static void drain_console(struct domproc *dp)
{
    uint8_t buf[CONSOLE_RING];
    size_t n;
    unsigned long long dropped;
    uint64_t v;
    if (read(dp->console_efd, &v, sizeof(v)) < 0) { /* nothing pending */ }
    pthread_mutex_lock(&dp->ring_lock);
    n = dp->ring_len;
    memcpy(buf, dp->ring, n);
    dp->ring_len = 0;
    dropped = dp->dropped;
    dp->dropped = 0;
    pthread_mutex_unlock(&dp->ring_lock);
    if (dropped)
        tlog_warn(&dp->log, "console: %llu bytes dropped (the log could not keep up)", dropped);
    if (!n)
        return;
    if (dp->console_log_fd >= 0)
        write_all(dp->console_log_fd, buf, n);
    for (unsigned i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &dp->clients[i];
        /* A slow console client loses output rather than stall the guest. */
        if (c->fd >= 0 && c->console && send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN)
            tlog_debug(&dp->log, "console client gone: %s", strerror(errno));
    }
}

static void update_registry(struct domproc *dp, enum domain_state s, const char *reason)
{
    dp->reg.state = s;
    if (reason)
        snprintf(dp->reg.reason, sizeof(dp->reg.reason), "%s", reason);
    registry_write(&dp->a->paths, &dp->reg, &dp->log);
}

static enum domain_state running_state(struct domproc *dp)
{
    return dp->user_paused ? DOMAIN_STATE_PAUSED : DOMAIN_STATE_RUNNING;
}

static int build_domain(struct domproc *dp, bool for_restore)
{
    int rc = domain_create_as(&dp->d, dp->a->domid, &dp->a->config, for_restore, &dp->a->host_mask, on_end,
                              on_console, dp, &dp->log);
    if (rc)
        return rc;
    rc = domain_start_vcpus(dp->d);
    if (rc) {
        domain_destroy(dp->d);
        dp->d = NULL;
    }
    return rc;
}

/* The guest ended itself: do what the config says. */
static void handle_end(struct domproc *dp)
{
    uint64_t v;
    if (read(dp->end_efd, &v, sizeof(v)) < 0) { /* nothing pending */ }
    pthread_mutex_lock(&dp->end_lock);
    enum domain_end end = dp->end;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", dp->end_reason);
    dp->end = DOMAIN_END_NONE;
    pthread_mutex_unlock(&dp->end_lock);
    if (end == DOMAIN_END_NONE)
        return;

    const struct domain_config *c = &dp->a->config;
    enum domain_action act = end == DOMAIN_END_POWEROFF ? c->on_poweroff
                           : end == DOMAIN_END_REBOOT   ? c->on_reboot
                                                        : c->on_crash;
    const char *what = end == DOMAIN_END_POWEROFF ? "shut down" : end == DOMAIN_END_REBOOT ? "rebooted" : "crashed";
    if (end == DOMAIN_END_CRASH)
        tlog_error(&dp->log, "domain %u (%s) crashed: %s; on_crash=%s", dp->a->domid, c->name, reason,
                   domain_action_name(act));
    else
        tlog_info(&dp->log, "domain %u (%s) %s: %s; action %s", dp->a->domid, c->name, what, reason,
                  domain_action_name(act));
    drain_console(dp);

    switch (act) {
    case DOMAIN_ACTION_DESTROY:
        dp->quit = true;
        break;
    case DOMAIN_ACTION_PRESERVE:
        update_registry(dp, end == DOMAIN_END_CRASH ? DOMAIN_STATE_CRASHED : DOMAIN_STATE_SHUTDOWN, reason);
        break;
    case DOMAIN_ACTION_RESTART:
        domain_destroy(dp->d);
        dp->d = NULL;
        if (build_domain(dp, false)) {
            tlog_error(&dp->log, "domain %u (%s): restart failed; destroying it", dp->a->domid, c->name);
            dp->quit = true;
            break;
        }
        dp->user_paused = false;
        domain_unpause(dp->d);
        update_registry(dp, DOMAIN_STATE_RUNNING, reason);
        break;
    }
}

static void client_close(struct domproc *dp, struct client *c)
{
    epoll_ctl(dp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->passed_fd >= 0)
        close(c->passed_fd);
    if (c->passed_fd2 >= 0)
        close(c->passed_fd2);
    if (dp->job.client == c)
        dp->job.client = NULL;
    c->fd = -1;
    c->passed_fd = -1;
    c->passed_fd2 = -1;
    c->console = false;
    c->len = 0;
}

static void reply(struct client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply(struct client *c, int err, const char *fmt, ...)
{
    char text[2048], line[2100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    int n = err ? snprintf(line, sizeof(line), "error %d %s\n", err, text)
                : snprintf(line, sizeof(line), "ok%s%s\n", text[0] ? " " : "", text);
    if (n > (int)sizeof(line) - 1)
        n = sizeof(line) - 1;
    send(c->fd, line, n, MSG_NOSIGNAL);
}

/* Progress lines go straight to the client; one that reads too slowly
 * misses some rather than stalling the save. */
static void save_progress(void *opaque, const char *line)
{
    struct job *j = opaque;
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "progress %s\n", line);
    if (j->progress_fd >= 0 && n > 0 && n < (int)sizeof(buf))
        send(j->progress_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void *save_thread(void *arg)
{
    struct domproc *dp = arg;
    struct job *j = &dp->job;
    j->rc = dp->a->hooks->save(dp->d, j->fd, j->options, save_progress, j, &j->cancel, j->summary,
                               sizeof(j->summary), &dp->log);
    uint64_t one = 1;
    if (write(dp->job_efd, &one, sizeof(one)) < 0) { /* already signalled */ }
    return NULL;
}

/* "save [options]" with the image's fd attached: the domain is paused for
 * the save and stays paused afterwards; the client then destroys,
 * unpauses or leaves it, as xl save's options say. */
static bool start_save(struct domproc *dp, struct client *c, const char *options)
{
    struct job *j = &dp->job;
    if (c->passed_fd < 0) {
        reply(c, EINVAL, "save needs the image's file descriptor");
        return false;
    }
    if (!dp->a->hooks || !dp->a->hooks->save) {
        reply(c, ENOTSUP, "this domain process cannot save");
        return false;
    }
    if (j->running) {
        reply(c, EBUSY, "a save is already in progress");
        return false;
    }
    memset(j, 0, sizeof(*j));
    j->fd = c->passed_fd;
    c->passed_fd = -1;
    j->client = c;
    j->progress_fd = dup(c->fd);
    j->was_user_paused = dp->user_paused;
    snprintf(j->options, sizeof(j->options), "%s", options);
    /* A live save pauses the domain itself, for the stop-and-copy; every
     * save returns with the domain paused once more than before. */
    bool live = strncmp(options, "live", 4) == 0;
    if (!live)
        domain_pause(dp->d);
    int rc = pthread_create(&j->thread, NULL, save_thread, dp);
    if (rc) {
        if (!live)
            domain_unpause(dp->d);
        if (j->progress_fd >= 0)
            close(j->progress_fd);
        close(j->fd);
        reply(c, rc, "cannot start the save: %s", strerror(rc));
        return false;
    }
    j->running = true;
    return true;
}

static void finish_remus_primary(struct domproc *dp);
static void finish_remus_secondary(struct domproc *dp);

static void finish_save(struct domproc *dp)
{
    struct job *j = &dp->job;
    uint64_t v;
    if (read(dp->job_efd, &v, sizeof(v)) < 0 || !j->running)
        return;
    pthread_join(j->thread, NULL);
    j->running = false;
    close(j->fd);
    if (j->progress_fd >= 0)
        close(j->progress_fd);
    if (j->kind != JOB_SAVE) {
        close(j->fd2);
        if (j->kind == JOB_REMUS_PRIMARY)
            finish_remus_primary(dp);
        else
            finish_remus_secondary(dp);
        if (j->client)
            client_close(dp, j->client);
        return;
    }
    /* The save's pause becomes the user's: the domain stays paused for
     * the client to destroy, unpause or hand over.  With the client gone
     * (xl killed) nobody would: the guest goes on as it was, unless it was
     * already renamed --migratedaway, past the point of no return. */
    static const char away[] = "--migratedaway";
    size_t nl = strlen(dp->a->config.name), al = sizeof(away) - 1;
    bool handed_over = nl > al && strcmp(dp->a->config.name + nl - al, away) == 0;
    if (!j->client && !handed_over) {
        domain_unpause(dp->d);
        tlog_warn(&dp->log, "the client of the save went away; domain %u resumed", dp->a->domid);
        update_registry(dp, running_state(dp), NULL);
    } else {
        if (dp->user_paused)
            domain_unpause(dp->d);
        dp->user_paused = true;
        update_registry(dp, DOMAIN_STATE_PAUSED, NULL);
    }
    /* The save's own error says where it failed; keep it for the client
     * before logging anything else. */
    char why[sizeof(dp->last_error)];
    snprintf(why, sizeof(why), "%s", dp->last_error[0] ? dp->last_error : strerror(-j->rc));
    if (j->rc)
        tlog_warn(&dp->log, "save failed: %s", why);
    else
        tlog_info(&dp->log, "saved: %s", j->summary);
    if (j->client) {
        if (j->rc)
            reply(j->client, -j->rc, "%s", why);
        else
            reply(j->client, 0, "%s", j->summary);
        client_close(dp, j->client);
    }
}

static void open_console_log(struct domproc *dp)
{
    char path[600];
    host_paths_console_log(&dp->a->paths, dp->a->config.name, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        tlog_warn(&dp->log, "cannot open console log %s: %s", path, strerror(errno));
    if (dp->console_log_fd >= 0)
        close(dp->console_log_fd);
    dp->console_log_fd = fd;
}

/* Xen's migration renames domains (<name>--incoming, <name>--migratedaway);
 * the registry keeps names unique, and the console log follows the name. */
static int rename_to(struct domproc *dp, const char *name, char *why, size_t why_len)
{
    if (!domain_name_valid(name)) {
        snprintf(why, why_len, "invalid domain name '%.64s'", name);
        return -EINVAL;
    }
    struct registry_entry e = dp->reg;
    snprintf(e.name, sizeof(e.name), "%s", name);
    struct domain_config cfg = dp->a->config;
    snprintf(cfg.name, sizeof(cfg.name), "%s", name);
    domain_config_to_json(&cfg, e.config_json, sizeof(e.config_json));
    dp->last_error[0] = '\0';
    int rc = registry_write_unique(&dp->a->paths, &e, &dp->log);
    if (rc) {
        snprintf(why, why_len, "%s", dp->last_error[0] ? dp->last_error : strerror(-rc));
        return rc;
    }
    tlog_info(&dp->log, "domain %u renamed from %s to %s", dp->a->domid, dp->a->config.name, name);
    drain_console(dp);
    /* A log the old name never wrote to (a migration's <name>--incoming)
     * is not worth keeping. */
    struct stat st;
    if (dp->console_log_fd >= 0 && fstat(dp->console_log_fd, &st) == 0 && st.st_size == 0) {
        char old[600];
        host_paths_console_log(&dp->a->paths, dp->a->config.name, old, sizeof(old));
        unlink(old);
    }
    dp->reg = e;
    dp->a->config = cfg;
    open_console_log(dp);
    return 0;
}

static void rename_domain(struct domproc *dp, struct client *c, const char *name)
{
    char why[sizeof(dp->last_error)];
    int rc = rename_to(dp, name, why, sizeof(why));
    if (rc)
        reply(c, -rc, "%s", why);
    else
        reply(c, 0, "%s", "");
}

/* ---- Remus ---------------------------------------------------------------
 * The primary: "remus [witness=ADDR:PORT] <engine options>" with two fds,
 * the stream to the backup and the back channel from it; protection runs
 * in the job thread while the domain runs on, until the client hangs up
 * (xl remus ended: a clean stop), "remus-stop", or the backup is lost.
 * The backup: a domain process started for restore with the options
 * "remus" waits, paused and serving its socket, for "remus-secondary
 * name=<name> <engine options>" with the back channel's fd; the stream is
 * the one it was started with. */

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How long a started replica waits for its remus-secondary command: the
 * xl migrate-receive that started it sends it at once. */
#define BACKUP_COMMAND_WAIT_MS 30000

static void remus_epoch(void *opaque, uint64_t epoch, uint64_t commit_unix_ms)
{
    struct domproc *dp = opaque;
    pthread_mutex_lock(&dp->news.lock);
    dp->news.epoch = epoch;
    dp->news.commit_ms = (long long)commit_unix_ms;
    bool wake = !dp->news.changed;
    dp->news.changed = true;
    pthread_mutex_unlock(&dp->news.lock);
    uint64_t one = 1;
    if (wake && write(dp->remus_efd, &one, sizeof(one)) < 0) { /* already signalled */ }
}

static void remus_progress(void *opaque, const char *line)
{
    struct domproc *dp = opaque;
    save_progress(&dp->job, line);
}

/* The registry hears of epochs at most once a second: at -i 20 a write
 * per epoch would be 50 renames a second for nothing. */
static void remus_news_to_registry(struct domproc *dp, bool force)
{
    uint64_t v;
    if (read(dp->remus_efd, &v, sizeof(v)) < 0) { /* nothing pending */ }
    static const long long every_ms = 1000;
    pthread_mutex_lock(&dp->news.lock);
    bool changed = dp->news.changed;
    uint64_t epoch = dp->news.epoch;
    long long at = dp->news.commit_ms;
    dp->news.changed = false;
    pthread_mutex_unlock(&dp->news.lock);
    if (!changed && !force)
        return;
    struct registry_protection *pr = &dp->reg.protection;
    bool first = pr->state == DOMAIN_PROTECTION_SYNCING;
    if (!force && !first && pr->last_commit_ms && at - pr->last_commit_ms < every_ms) {
        /* Keep the news for the next write. */
        pthread_mutex_lock(&dp->news.lock);
        dp->news.changed = true;
        pthread_mutex_unlock(&dp->news.lock);
        return;
    }
    if (first && dp->job.blackhole) {
        pr->state = DOMAIN_PROTECTION_UNPROTECTED;
        snprintf(pr->detail, sizeof(pr->detail), "checkpoints go to /dev/null (xl remus -F -b): no backup");
    } else if (first) {
        pr->state = DOMAIN_PROTECTION_PROTECTED;
        snprintf(pr->detail, sizeof(pr->detail), "checkpointing");
        tlog_info(&dp->log, "remus: domain %u (%s) is protected: the backup acknowledged epoch %llu", dp->a->domid,
                  dp->a->config.name, (unsigned long long)epoch);
    }
    pr->epochs = epoch;
    pr->last_commit_ms = at;
    update_registry(dp, dp->reg.state, NULL);
}

/* A timer for news kept back by remus_news_to_registry: the main loop
 * looks again within a second while Remus runs. */
static bool remus_news_pending(struct domproc *dp)
{
    pthread_mutex_lock(&dp->news.lock);
    bool c = dp->news.changed;
    pthread_mutex_unlock(&dp->news.lock);
    return c;
}

static void *remus_thread(void *arg)
{
    struct domproc *dp = arg;
    struct job *j = &dp->job;
    const struct domproc_remus_report r = { .progress = remus_progress, .epoch = remus_epoch, .opaque = dp };
    if (j->kind == JOB_REMUS_PRIMARY)
        j->rc = dp->a->remus_hooks->primary(dp->d, j->name, j->fd, j->fd2, j->options, &r, &j->stop, j->summary,
                                            sizeof(j->summary), &dp->log);
    else
        j->rc = dp->a->remus_hooks->secondary(dp->d, j->name, j->fd, j->fd2, j->options, &r, j->summary,
                                              sizeof(j->summary), &dp->log);
    uint64_t one = 1;
    if (write(dp->job_efd, &one, sizeof(one)) < 0) { /* already signalled */ }
    return NULL;
}

/* The witness: "<WITNESS_PROBE> <name> <nonce>" from the backup gets
 * "<WITNESS_ALIVE> <name> <nonce>" for as long as this process and its
 * domain live, protected or not: a backup that lost the stream must not
 * take over from a primary that merely lost the link. */
static int open_witness(struct domproc *dp, const char *spec, char *why, size_t why_len)
{
    if (dp->witness_fd >= 0 && strcmp(spec, dp->witness_spec) == 0) {
        snprintf(dp->witness_name, sizeof(dp->witness_name), "%s", dp->a->config.name);
        return 0;   /* already answering there */
    }
    /* "A.B.C.D:PORT" or "[IPv6]:PORT", numeric: xl remus resolved the
     * operator's spec (remus_witness_parse) and sends the address. */
    char host[64];
    const char *h = spec, *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (spec[0] == '[' && colon && colon > spec && colon[-1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || !hl || hl >= sizeof(host) || !port || port > 65535 || *end) {
        snprintf(why, why_len, "witness '%.100s' is not ADDR:PORT or [IPv6-ADDR]:PORT", spec);
        return -EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (h == spec && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sl = sizeof(*sin);
    } else if (h != spec && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*sin6);
    } else {
        snprintf(why, why_len, "witness address '%.64s' is not an %s address", host, h == spec ? "IPv4" : "IPv6");
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && ss.ss_family == AF_INET6) {
        int one = 1;   /* that address only, not its v4-mapped twin */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        int err = errno;
        snprintf(why, why_len, "witness %.100s: %s", spec, strerror(err));
        if (fd >= 0)
            close(fd);
        return -err;
    }
    if (dp->witness_fd >= 0) {
        epoll_ctl(dp->epfd, EPOLL_CTL_DEL, dp->witness_fd, NULL);
        close(dp->witness_fd);
    }
    dp->witness_fd = fd;
    snprintf(dp->witness_spec, sizeof(dp->witness_spec), "%s", spec);
    snprintf(dp->witness_name, sizeof(dp->witness_name), "%s", dp->a->config.name);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &dp->witness_fd };
    epoll_ctl(dp->epfd, EPOLL_CTL_ADD, fd, &ev);
    tlog_info(&dp->log, "remus: answering the backup's witness probes on %s", spec);
    return 0;
}

static void answer_witness(struct domproc *dp)
{
    for (;;) {
        char buf[200], out[260];
        struct sockaddr_storage from;   /* IPv4 or IPv6 */
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(dp->witness_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            return;
        char name[DOMAIN_NAME_MAX + 1];
        uint64_t nonce;
        if (domproc_witness_parse(buf, (size_t)n, DOMPROC_WITNESS_PROBE, name, &nonce) ||
            strcmp(name, dp->witness_name) != 0)
            continue; /* not for us */
        int len = domproc_witness_format(out, sizeof(out), DOMPROC_WITNESS_ALIVE, name, nonce);
        if (len > 0)
            sendto(dp->witness_fd, out, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
    }
}

/* Takes "witness=ADDR:PORT" out of options (the engine never sees it). */
static void take_option(char *options, const char *key, char *val, size_t len)
{
    size_t kl = strlen(key);
    val[0] = '\0';
    for (char *p = options; *p;) {
        char *tok_end = strchr(p, ' ');
        size_t tl = tok_end ? (size_t)(tok_end - p) : strlen(p);
        if (tl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            snprintf(val, len, "%.*s", (int)(tl - kl - 1), p + kl + 1);
            memmove(p, p + tl + (tok_end ? 1 : 0), strlen(p + tl + (tok_end ? 1 : 0)) + 1);
            continue;
        }
        p += tl + (tok_end ? 1 : 0);
    }
}

static bool start_remus_job(struct domproc *dp, struct client *c, enum job_kind kind, const char *options)
{
    struct job *j = &dp->job;
    int in_fd = kind == JOB_REMUS_PRIMARY ? c->passed_fd : dp->a->restore_fd;
    int ack_fd = kind == JOB_REMUS_PRIMARY ? c->passed_fd2 : c->passed_fd;
    const struct domproc_remus_hooks *h = dp->a->remus_hooks;
    if (!h || (kind == JOB_REMUS_PRIMARY ? !h->primary : !h->secondary)) {
        reply(c, ENOTSUP, "this domain process cannot do Remus");
        return false;
    }
    if (in_fd < 0 || ack_fd < 0) {
        reply(c, EINVAL, kind == JOB_REMUS_PRIMARY
                             ? "remus needs two file descriptors: the stream to the backup and its back channel"
                             : "remus-secondary needs the back channel's file descriptor");
        return false;
    }
    if (j->running) {
        reply(c, EBUSY, "%s", j->kind == JOB_SAVE ? "a save is in progress" : "Remus is already running");
        return false;
    }
    /* A cut options line would drop the options at its end (a fence
     * command, a witness) without a word: refuse it instead. */
    if (strlen(options) >= sizeof(j->options)) {
        reply(c, E2BIG, "remus options longer than %zu bytes", sizeof(j->options) - 1);
        return false;
    }
    memset(j, 0, sizeof(*j));
    j->kind = kind;
    snprintf(j->options, sizeof(j->options), "%s", options);
    j->blackhole = strstr(j->options, "blackhole") != NULL;
    char witness[160], name[DOMAIN_NAME_MAX], peer[sizeof(dp->reg.protection.peer)], interval[16];
    take_option(j->options, "name", name, sizeof(name));
    take_option(j->options, "peer", peer, sizeof(peer));
    memcpy(j->name, kind == JOB_REMUS_PRIMARY || !name[0] ? dp->a->config.name : name, sizeof(j->name));
    j->name[sizeof(j->name) - 1] = '\0';
    if (kind == JOB_REMUS_PRIMARY) {
        take_option(j->options, "witness", witness, sizeof(witness));
        char why[300];
        if (witness[0] && open_witness(dp, witness, why, sizeof(why))) {
            reply(c, EINVAL, "%s", why);
            return false;
        }
    }
    /* The engine sees the interval as well, for its timeouts. */
    const char *iv = strstr(j->options, "interval_ms=");
    snprintf(interval, sizeof(interval), "%s", iv ? iv + 12 : "200");
    j->fd = in_fd;
    j->fd2 = ack_fd;
    if (kind == JOB_REMUS_PRIMARY)
        c->passed_fd = c->passed_fd2 = -1;
    else {
        c->passed_fd = -1;
        dp->a->restore_fd = -1;
        dp->backup_waiting = false;
    }
    j->client = c;
    j->progress_fd = dup(c->fd);
    pthread_mutex_lock(&dp->news.lock);
    dp->news.changed = false;
    pthread_mutex_unlock(&dp->news.lock);
    int rc = pthread_create(&j->thread, NULL, remus_thread, dp);
    if (rc) {
        if (j->progress_fd >= 0)
            close(j->progress_fd);
        close(j->fd);
        close(j->fd2);
        reply(c, rc, "cannot start Remus: %s", strerror(rc));
        if (kind == JOB_REMUS_SECONDARY)
            dp->quit = true;
        return false;
    }
    j->running = true;
    struct registry_protection *pr = &dp->reg.protection;
    *pr = (struct registry_protection){
        .state = kind == JOB_REMUS_PRIMARY ? DOMAIN_PROTECTION_SYNCING : DOMAIN_PROTECTION_BACKUP,
        .interval_ms = (unsigned)strtoul(interval, NULL, 10),
    };
    snprintf(pr->peer, sizeof(pr->peer), "%s", peer);
    snprintf(pr->detail, sizeof(pr->detail), "%s",
             kind == JOB_REMUS_PRIMARY ? "sending the initial copy" : "receiving checkpoints");
    update_registry(dp, dp->reg.state, NULL);
    tlog_info(&dp->log, "remus: %s domain %u (%s)%s%s", kind == JOB_REMUS_PRIMARY ? "protecting" : "backup of",
              dp->a->domid, j->name, peer[0] ? ", the backup on " : "", peer);
    return true;
}

/* The primary's end: stopped, or the backup lost (the guest runs on). */
static void finish_remus_primary(struct domproc *dp)
{
    struct job *j = &dp->job;
    struct registry_protection *pr = &dp->reg.protection;
    remus_news_to_registry(dp, false);
    bool was_protected = pr->state == DOMAIN_PROTECTION_PROTECTED;
    char why[sizeof(dp->last_error)];
    snprintf(why, sizeof(why), "%s", dp->last_error[0] ? dp->last_error : strerror(-j->rc));
    if (!j->rc) {
        tlog_info(&dp->log, "remus: protection of domain %u (%s) stopped: %s", dp->a->domid, dp->a->config.name,
                  j->summary);
        *pr = (struct registry_protection){ 0 };
        update_registry(dp, dp->reg.state, NULL);
        if (j->client)
            reply(j->client, 0, "stopped %s", j->summary);
        return;
    }
    if (was_protected) {
        pr->state = DOMAIN_PROTECTION_UNPROTECTED;
        snprintf(pr->detail, sizeof(pr->detail), "lost the backup after epoch %llu: %.200s",
                 (unsigned long long)pr->epochs, why);
        tlog_error(&dp->log, "remus: LOST THE BACKUP of domain %u (%s) after epoch %llu: %s; the domain runs on "
                   "UNPROTECTED", dp->a->domid, dp->a->config.name, (unsigned long long)pr->epochs, why);
    } else {
        *pr = (struct registry_protection){ 0 };
        tlog_error(&dp->log, "remus: could not protect domain %u (%s): %s; it runs on unprotected", dp->a->domid,
                   dp->a->config.name, why);
    }
    update_registry(dp, dp->reg.state, NULL);
    if (j->client)
        reply(j->client, -j->rc, "%s %s", was_protected ? "lost-backup" : "not-protected", why);
}

/* The backup's end: take over, or go. */
static void finish_remus_secondary(struct domproc *dp)
{
    struct job *j = &dp->job;
    struct registry_protection *pr = &dp->reg.protection;
    remus_news_to_registry(dp, true);
    char why[sizeof(dp->last_error)];
    snprintf(why, sizeof(why), "%s", dp->last_error[0] ? dp->last_error : strerror(j->rc < 0 ? -j->rc : EIO));
    if (j->rc == DOMPROC_REMUS_FAILOVER) {
        /* The replica holds the last committed epoch: it becomes the guest.
         * Unpause first (the outside world waits), then take the name. */
        dp->user_paused = false;
        domain_unpause(dp->d);
        char rwhy[300] = "";
        int rrc = strcmp(dp->a->config.name, j->name) ? rename_to(dp, j->name, rwhy, sizeof(rwhy)) : 0;
        if (rrc)
            tlog_error(&dp->log, "remus: failover: cannot rename domain %u to %s: %s; it runs as %s", dp->a->domid,
                       j->name, rwhy, dp->a->config.name);
        tlog_warn(&dp->log, "failover: %s", j->summary);
        pr = &dp->reg.protection;
        pr->state = DOMAIN_PROTECTION_UNPROTECTED;
        snprintf(pr->detail, sizeof(pr->detail), "took over from the primary: %.220s", j->summary);
        update_registry(dp, DOMAIN_STATE_RUNNING, NULL);
        if (j->client)
            reply(j->client, 0, "failover %s", j->summary);
        return;
    }
    if (j->rc == DOMPROC_REMUS_STOPPED) {
        tlog_info(&dp->log, "remus: the primary stopped protection (%s); destroying the replica", j->summary);
        if (j->client)
            reply(j->client, 0, "stopped %s", j->summary);
    } else if (j->rc == DOMPROC_REMUS_PRIMARY_ALIVE) {
        tlog_error(&dp->log, "remus: lost the stream, NOT taking over (%s); destroying the replica", j->summary);
        if (j->client)
            reply(j->client, 0, "primary-alive %s", j->summary);
    } else {
        tlog_error(&dp->log, "remus: the backup failed before the first checkpoint: %s", why);
        if (j->client)
            reply(j->client, j->rc < 0 ? -j->rc : EIO, "%s", why);
    }
    dp->quit = true;
}

/* "cpu-policy" with a file descriptor: the guest's CPU policy as JSON
 * into it (too long for a reply line).  vCPU ioctls wait for KVM_RUN to
 * return, so the domain is paused for the moment it takes. */
static void send_cpu_policy(struct domproc *dp, struct client *c)
{
    struct cpu_policy *p = malloc(sizeof(*p));
    char *json = NULL;
    int rc = -ENOMEM;
    if (c->passed_fd < 0) {
        reply(c, EINVAL, "cpu-policy needs a file descriptor to write to");
        free(p);
        return;
    }
    if (p && dp->d) {
        domain_pause(dp->d);
        rc = domain_get_cpu_policy(dp->d, p, &dp->log);
        domain_unpause(dp->d);
        if (!rc)
            rc = cpu_policy_to_json(p, "guest", dp->a->config.name, &json);
    } else if (p) {
        rc = -EAGAIN;
    }
    if (!rc) {
        size_t len = strlen(json), off = 0;
        while (off < len && !rc) {
            ssize_t w = write(c->passed_fd, json + off, len - off);
            if (w < 0 && errno != EINTR)
                rc = -errno;
            else if (w > 0)
                off += (size_t)w;
        }
    }
    close(c->passed_fd);
    c->passed_fd = -1;
    if (rc)
        reply(c, -rc, "cannot read the CPU policy: %s", strerror(-rc));
    else
        reply(c, 0, "%s", "");
    free(json);
    free(p);
}

/* Returns true when the connection stays open. */
static bool handle_command(struct domproc *dp, struct client *c, const char *cmd)
{
    const struct domain_config *cfg = &dp->a->config;
    bool ended = dp->reg.state == DOMAIN_STATE_SHUTDOWN || dp->reg.state == DOMAIN_STATE_CRASHED;

    /* A replica must stay as its checkpoints leave it, and the engine
     * pauses a protected domain at every checkpoint: neither is the
     * user's to pause, unpause or save meanwhile. */
    bool backup = dp->backup_waiting || (dp->job.running && dp->job.kind == JOB_REMUS_SECONDARY);
    bool protecting = dp->job.running && dp->job.kind == JOB_REMUS_PRIMARY;
    if ((backup || protecting) && (!strcmp(cmd, "pause") || !strcmp(cmd, "unpause") || !strcmp(cmd, "save") ||
                                   !strncmp(cmd, "save ", 5) || !strncmp(cmd, "rename ", 7))) {
        reply(c, EBUSY, "domain %s is %s", cfg->name,
              backup ? "a Remus backup" : "under Remus protection (stop xl remus first)");
        return false;
    }
    if (strcmp(cmd, "pause") == 0) {
        if (ended) {
            reply(c, EINVAL, "domain %s has %s", cfg->name, domain_state_name(dp->reg.state));
        } else {
            if (!dp->user_paused) {
                domain_pause(dp->d);
                dp->user_paused = true;
                update_registry(dp, DOMAIN_STATE_PAUSED, NULL);
            }
            reply(c, 0, "%s", "");
        }
    } else if (strcmp(cmd, "unpause") == 0) {
        if (ended) {
            reply(c, EINVAL, "domain %s has %s", cfg->name, domain_state_name(dp->reg.state));
        } else if (!dp->user_paused) {
            reply(c, EINVAL, "domain %s is not paused", cfg->name);
        } else {
            dp->user_paused = false;
            domain_unpause(dp->d);
            update_registry(dp, DOMAIN_STATE_RUNNING, NULL);
            reply(c, 0, "%s", "");
        }
    } else if (strcmp(cmd, "destroy") == 0) {
        reply(c, 0, "%s", "");
        dp->quit = true;
        return false;
    } else if (strcmp(cmd, "status") == 0) {
        reply(c, 0, "domid=%u name=%s state=%s vcpus=%u memory=%llu protection=%s epochs=%llu", dp->a->domid,
              cfg->name, domain_state_name(dp->reg.state), cfg->vcpus, (unsigned long long)cfg->memory_mb,
              domain_protection_name(dp->reg.protection.state), (unsigned long long)dp->reg.protection.epochs);
    } else if (strcmp(cmd, "save") == 0 || strncmp(cmd, "save ", 5) == 0) {
        if (ended) {
            reply(c, EINVAL, "domain %s has %s", cfg->name, domain_state_name(dp->reg.state));
            return false;
        }
        dp->last_error[0] = '\0';
        /* The connection stays open for the answer when the save ends. */
        return start_save(dp, c, cmd[4] ? cmd + 5 : "");
    } else if (strcmp(cmd, "remus") == 0 || strncmp(cmd, "remus ", 6) == 0) {
        if (ended || dp->backup_waiting || dp->reg.protection.state == DOMAIN_PROTECTION_BACKUP) {
            reply(c, EINVAL, "domain %s is %s: only a running domain can be protected", cfg->name,
                  dp->backup_waiting ? "a Remus backup" : domain_state_name(dp->reg.state));
            return false;
        }
        dp->last_error[0] = '\0';
        return start_remus_job(dp, c, JOB_REMUS_PRIMARY, cmd[5] ? cmd + 6 : "");
    } else if (strcmp(cmd, "remus-secondary") == 0 || strncmp(cmd, "remus-secondary ", 16) == 0) {
        if (!dp->backup_waiting) {
            reply(c, EINVAL, "domain %s is not a Remus backup waiting for its stream", cfg->name);
            return false;
        }
        dp->last_error[0] = '\0';
        return start_remus_job(dp, c, JOB_REMUS_SECONDARY, cmd[15] ? cmd + 16 : "");
    } else if (strcmp(cmd, "remus-stop") == 0) {
        if (!dp->job.running || dp->job.kind != JOB_REMUS_PRIMARY) {
            reply(c, EINVAL, "domain %s is not protected by Remus here", cfg->name);
        } else {
            __atomic_store_n(&dp->job.stop, true, __ATOMIC_RELAXED);
            reply(c, 0, "%s", "stopping");
        }
    } else if (strncmp(cmd, "rename ", 7) == 0) {
        rename_domain(dp, c, cmd + 7);
    } else if (strcmp(cmd, "console") == 0) {
        reply(c, 0, "%s", "");
        c->console = true;
    } else if (strcmp(cmd, "cpu-policy") == 0) {
        send_cpu_policy(dp, c);
    } else {
        reply(c, EINVAL, "unknown command '%.64s'", cmd);
        return false;
    }
    return true;
}

static void handle_client(struct domproc *dp, struct client *c)
{
    if (c->console) {
        uint8_t buf[256];
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r <= 0) {
            client_close(dp, c);
            return;
        }
        if (dp->d)
            uart_receive(&dp->d->uart, buf, (unsigned)r);
        return;
    }
    if (dp->job.client == c) {
        /* Waiting for its save; if it hangs up, the save is abandoned. */
        char b[64];
        ssize_t r = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            if (dp->job.kind == JOB_SAVE) {
                __atomic_store_n(&dp->job.cancel, true, __ATOMIC_RELAXED);
                client_close(dp, c);
                return;
            }
            /* xl remus ended (Ctrl-C): protection stops cleanly, and the
             * answer still goes to it if it only shut its sending side.
             * A backup's client going (its ssh died with the primary's
             * host) changes nothing: the replica decides on its own. */
            if (dp->job.kind == JOB_REMUS_PRIMARY) {
                if (!dp->job.stop)
                    tlog_info(&dp->log, "remus: xl remus hung up; stopping protection");
                __atomic_store_n(&dp->job.stop, true, __ATOMIC_RELAXED);
            }
            epoll_ctl(dp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        }
        return;
    }
    /* recvmsg, because a command may come with a file descriptor. */
    struct iovec iov = { .iov_base = c->buf + c->len, .iov_len = sizeof(c->buf) - 1 - c->len };
    union {
        char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                          .msg_controllen = sizeof(ctl.buf) };
    ssize_t r = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
    if (r <= 0) {
        client_close(dp, c);
        return;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->passed_fd < 0)
                c->passed_fd = fd;
            else if (c->passed_fd2 < 0)
                c->passed_fd2 = fd;
            else
                close(fd); /* two descriptors per command at most */
        }
    }
    c->len += r;
    char *nl = memchr(c->buf, '\n', c->len);
    if (!nl) {
        if (c->len >= sizeof(c->buf) - 1)
            client_close(dp, c); /* a line that long is no command of ours */
        return;
    }
    *nl = '\0';
    if (!handle_command(dp, c, c->buf))
        client_close(dp, c);
    else
        c->len = 0;
}

static void accept_client(struct domproc *dp)
{
    int fd = accept4(dp->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &dp->clients[i];
        if (c->fd >= 0)
            continue;
        c->fd = fd;
        c->len = 0;
        c->console = false;
        c->passed_fd = c->passed_fd2 = -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(dp->epfd, EPOLL_CTL_ADD, fd, &ev);
        return;
    }
    struct client tmp = { .fd = fd };
    reply(&tmp, EBUSY, "too many clients");
    close(fd);
}

static int open_listen_socket(struct domproc *dp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    host_paths_domain_socket(&dp->a->paths, dp->a->domid, sa.sun_path, sizeof(sa.sun_path));
    unlink(sa.sun_path); /* a leftover of a dead process with our domid */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
        listen(fd, 8) < 0) {
        int err = errno;
        tlog_error(&dp->log, "control socket %s: %s", sa.sun_path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

/* Watches the ready pipe during a restore: when its reader (the xl that
 * started us) goes away, the incoming domain is abandoned at once. */
static void *restore_watch(void *arg)
{
    struct domproc *dp = arg;
    struct pollfd p[2] = { { .fd = dp->a->ready_fd, .events = 0 }, { .fd = dp->watch_stop[0], .events = POLLIN } };
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (p[0].revents & (POLLERR | POLLHUP)) {
            tlog_error(&dp->log, "domain %u: the xl that started this restore went away; abandoning it",
                       dp->a->domid);
            registry_remove(&dp->a->paths, dp->a->domid);
            _exit(1); /* the kernel frees the VM with the process */
        }
    }
}

static void tell_ready(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell_ready(int fd, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    if (fd < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    write_all(fd, line, strlen(line));
    close(fd);
}

static int epoll_add(int epfd, int fd, void *tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int domproc_main(struct domproc_args *a)
{
    struct domproc *dp = calloc(1, sizeof(*dp));
    if (!dp) {
        tell_ready(a->ready_fd, "error out of memory\n");
        registry_remove(&a->paths, a->domid);
        return 1;
    }
    dp->a = a;
    dp->log = (struct tlog){ .fn = domproc_log, .opaque = dp, .min_level = TLOG_DEBUG };
    dp->epfd = dp->listen_fd = dp->console_efd = dp->end_efd = dp->signal_fd = dp->console_log_fd = -1;
    dp->job_efd = dp->watch_stop[0] = dp->watch_stop[1] = -1;
    dp->remus_efd = dp->witness_fd = -1;
    for (unsigned i = 0; i < MAX_CLIENTS; i++)
        dp->clients[i].fd = dp->clients[i].passed_fd = dp->clients[i].passed_fd2 = -1;
    pthread_mutex_init(&dp->news.lock, NULL);
    pthread_mutex_init(&dp->ring_lock, NULL);
    pthread_mutex_init(&dp->end_lock, NULL);
    int status = 1;
    char errbuf[400] = "domain process failed to start";

    /* Termination signals become events; vCPU threads inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    open_console_log(dp);

    dp->epfd = epoll_create1(EPOLL_CLOEXEC);
    dp->console_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    dp->end_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    dp->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    dp->job_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    dp->remus_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dp->epfd < 0 || dp->console_efd < 0 || dp->end_efd < 0 || dp->signal_fd < 0 || dp->job_efd < 0 ||
        dp->remus_efd < 0) {
        snprintf(errbuf, sizeof(errbuf), "setting up the domain process: %s", strerror(errno));
        goto fail;
    }
    bool restoring = a->restore_fd >= 0;
    /* A Remus backup receives its stream in a job thread once the control
     * socket is up (it must answer xl list and xl destroy for as long as
     * the primary lives); a plain restore reads it here, before. */
    bool remus_backup = restoring && a->restore_options && strncmp(a->restore_options, "remus", 5) == 0 &&
                        (!a->restore_options[5] || a->restore_options[5] == ' ');
    if (build_domain(dp, restoring)) {
        snprintf(errbuf, sizeof(errbuf), "%s", dp->last_error[0] ? dp->last_error : "cannot build the domain");
        goto fail;
    }
    char summary[300] = "";
    if (remus_backup && !a->remus_hooks) {
        snprintf(errbuf, sizeof(errbuf), "this domain process cannot be a Remus backup");
        goto fail;
    }
    if (remus_backup) {
        dp->backup_waiting = true;
        dp->backup_deadline_ms = monotonic_ms() + BACKUP_COMMAND_WAIT_MS;
        snprintf(summary, sizeof(summary), "remus-backup");
    } else if (restoring) {
        /* Whoever started the restore (xl restore, xl migrate-receive)
         * must still be there to hand the domain on; without it this would
         * be a half-built domain nobody owns. */
        pthread_t watcher;
        bool watching = pipe2(dp->watch_stop, O_CLOEXEC) == 0 &&
                        pthread_create(&watcher, NULL, restore_watch, dp) == 0;
        int rc = a->hooks && a->hooks->restore
                     ? a->hooks->restore(dp->d, a->restore_fd, a->restore_options ? a->restore_options : "",
                                         summary, sizeof(summary), &dp->log)
                     : -ENOTSUP;
        if (watching) {
            if (write(dp->watch_stop[1], "x", 1) < 0) { /* the thread reads it or is gone */ }
            pthread_join(watcher, NULL);
        }
        close(a->restore_fd);
        a->restore_fd = -1;
        if (rc) {
            snprintf(errbuf, sizeof(errbuf), "restore failed: %s",
                     dp->last_error[0] ? dp->last_error : strerror(-rc));
            goto fail;
        }
        tlog_info(&dp->log, "restored: %s", summary);
    }
    if (!restoring && dp->d->cpu_forced[0])
        snprintf(summary, sizeof(summary), "cpuid_forced=%.280s", dp->d->cpu_forced);
    dp->listen_fd = open_listen_socket(dp);
    if (dp->listen_fd < 0) {
        snprintf(errbuf, sizeof(errbuf), "cannot open the control socket: %s", strerror(-dp->listen_fd));
        goto fail;
    }
    epoll_add(dp->epfd, dp->listen_fd, &dp->listen_fd);
    epoll_add(dp->epfd, dp->console_efd, &dp->console_efd);
    epoll_add(dp->epfd, dp->end_efd, &dp->end_efd);
    epoll_add(dp->epfd, dp->signal_fd, &dp->signal_fd);
    epoll_add(dp->epfd, dp->job_efd, &dp->job_efd);
    epoll_add(dp->epfd, dp->remus_efd, &dp->remus_efd);

    dp->reg = (struct registry_entry){
        .domid = a->domid, .pid = getpid(), .memory_mb = a->config.memory_mb,
        .vcpus = a->config.vcpus, .created = (long long)time(NULL),
    };
    snprintf(dp->reg.name, sizeof(dp->reg.name), "%s", a->config.name);
    domain_config_to_json(&a->config, dp->reg.config_json, sizeof(dp->reg.config_json));
    process_start_time(getpid(), &dp->reg.pid_start);
    dp->user_paused = a->start_paused || remus_backup;
    if (remus_backup) {
        dp->reg.protection.state = DOMAIN_PROTECTION_BACKUP;
        snprintf(dp->reg.protection.detail, sizeof(dp->reg.protection.detail), "waiting for the stream");
    }
    update_registry(dp, running_state(dp), "");
    if (!dp->user_paused)
        domain_unpause(dp->d);
    tlog_info(&dp->log, "domain %u (%s) started%s: %llu MiB, %u vCPUs, kernel %s", a->domid, a->config.name,
              a->start_paused ? " paused" : "", (unsigned long long)a->config.memory_mb, a->config.vcpus,
              a->config.kernel);
    tell_ready(a->ready_fd, "ok %u%s%s\n", a->domid, summary[0] ? " " : "", summary);
    a->ready_fd = -1;

    while (!dp->quit) {
        struct epoll_event evs[16];
        int timeout = -1;
        if (dp->backup_waiting) {
            uint64_t now = monotonic_ms();
            if (now >= dp->backup_deadline_ms) {
                tlog_error(&dp->log, "remus: no remus-secondary command came within %d s; destroying the replica",
                           BACKUP_COMMAND_WAIT_MS / 1000);
                break;
            }
            timeout = (int)(dp->backup_deadline_ms - now);
        }
        if (dp->job.running && dp->job.kind != JOB_SAVE && remus_news_pending(dp))
            timeout = timeout < 0 || timeout > 1000 ? 1000 : timeout;
        int n = epoll_wait(dp->epfd, evs, 16, timeout);
        if (n < 0 && errno != EINTR)
            break;
        /* News kept back for the once-a-second write: console output
         * and clients keep the loop busy, so look on every turn. */
        if (dp->job.running && dp->job.kind != JOB_SAVE && remus_news_pending(dp))
            remus_news_to_registry(dp, false);
        for (int i = 0; i < n && !dp->quit; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &dp->listen_fd) {
                accept_client(dp);
            } else if (tag == &dp->console_efd) {
                drain_console(dp);
            } else if (tag == &dp->end_efd) {
                handle_end(dp);
            } else if (tag == &dp->job_efd) {
                finish_save(dp);
            } else if (tag == &dp->remus_efd) {
                remus_news_to_registry(dp, false);
            } else if (tag == &dp->witness_fd) {
                answer_witness(dp);
            } else if (tag == &dp->signal_fd) {
                struct signalfd_siginfo si;
                if (read(dp->signal_fd, &si, sizeof(si)) == sizeof(si))
                    tlog_info(&dp->log, "signal %u: destroying domain %u", si.ssi_signo, a->domid);
                dp->quit = true;
            } else {
                handle_client(dp, tag);
            }
        }
    }
    status = 0;
    tlog_info(&dp->log, "domain %u (%s) destroyed", a->domid, a->config.name);
    goto out;

fail:
    tlog_error(&dp->log, "%s", errbuf);
    tell_ready(a->ready_fd, "error %s\n", errbuf);
    a->ready_fd = -1;
out:
    /* Mark it dying first, so a racing xl list sees why it is going. */
    if (dp->reg.domid)
        update_registry(dp, DOMAIN_STATE_DYING, NULL);
    bool job_left = false;
    if (dp->job.running && dp->job.kind == JOB_SAVE) {
        /* A save in flight ends on its own (a file write completes, a
         * pipe breaks when its reader goes); xl destroy kills a process
         * that takes too long. */
        pthread_join(dp->job.thread, NULL);
        close(dp->job.fd);
    } else if (dp->job.running) {
        /* Remus, either side: the process's exit ends the job, and the
         * domain goes with the process.  A primary is not stopped cleanly:
         * as in Xen, destroying the protected domain forces a failover
         * (the backup sees its stream break, and the witness is gone). */
        job_left = true;
    }
    if (a->restore_fd >= 0)
        close(a->restore_fd);
    if (!job_left)
        domain_destroy(dp->d);
    if (dp->console_efd >= 0)
        drain_console(dp);
    for (unsigned i = 0; i < MAX_CLIENTS; i++)
        if (dp->clients[i].fd >= 0)
            close(dp->clients[i].fd);
    registry_remove(&a->paths, a->domid);
    if (dp->listen_fd >= 0)
        close(dp->listen_fd);
    if (job_left) {
        /* Its thread still uses the domain and dp: leave both to exit. */
        return status;
    }
    int fds[] = { dp->epfd, dp->console_efd, dp->end_efd, dp->signal_fd, dp->console_log_fd, dp->job_efd,
                  dp->watch_stop[0], dp->watch_stop[1], dp->remus_efd, dp->witness_fd };
    for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_mutex_destroy(&dp->ring_lock);
    pthread_mutex_destroy(&dp->end_lock);
    pthread_mutex_destroy(&dp->news.lock);
    free(dp);
    return status;
}
