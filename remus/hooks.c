/* Remus as a domain process calls it (struct domproc_remus_hooks): the
 * option words of the control commands turned into the engine's options,
 * epoch figures turned into progress lines, and the split-brain guard of
 * the backup: the witness probe, which keeps it from taking over from a
 * primary that is alive, and the fence command, which makes sure the
 * primary is off before it does. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "remus_internal.h"
#include "tandem/remus.h"
#include "tandem/xen.h"

extern char **environ;

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
        if (number_of(tok, "interval_ms", &v) && v >= 1 && v <= REMUS_MAX_INTERVAL_MS)
            o->interval_ms = (unsigned)v;
        else if (number_of(tok, "timeout_ms", &v) && v <= REMUS_MAX_TIMEOUT_MS)
            o->timeout_ms = (unsigned)v;
        else if (number_of(tok, "max_downtime_ms", &v))
            o->max_downtime_ms = (unsigned)v;
        else if (number_of(tok, "max_iters", &v) && v >= 1)
            o->max_iters = (unsigned)v;
        else if (!strcmp(tok, "nocompress"))
            o->compress = false;
        else if (!strcmp(tok, "nonetbuf"))
            o->net_buffer = false;
        else if (!strcmp(tok, "netbuf=vmm"))
            o->net_backend = DOMAIN_NETBUF_VMM;
        else if (!strcmp(tok, "netbuf=plug"))
            o->net_backend = DOMAIN_NETBUF_PLUG;
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

int remus_witness_parse(const char *spec, struct sockaddr_storage *sa, socklen_t *sa_len, char *why,
                        size_t why_len)
{
    char host[256], port[8];
    const char *h, *p;
    size_t hl;
    bool v6 = false;
    if (!spec || !spec[0]) {
        snprintf(why, why_len, "the witness is empty; give ADDR:PORT or [IPv6-ADDR]:PORT");
        return -EINVAL;
    }
    if (spec[0] == '[') {
        /* [v6]:port, as in URLs: the address's own colons need the brackets. */
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') {
            snprintf(why, why_len, "witness '%.100s': an IPv6 address is written [ADDR]:PORT", spec);
            return -EINVAL;
        }
        h = spec + 1;
        hl = (size_t)(close - h);
        p = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon) {
            snprintf(why, why_len, "witness '%.100s' has no port: give ADDR:PORT or [IPv6-ADDR]:PORT", spec);
            return -EINVAL;
        }
        if (memchr(spec, ':', (size_t)(colon - spec))) {
            snprintf(why, why_len, "witness '%.100s': an IPv6 address needs brackets, [ADDR]:PORT", spec);
            return -EINVAL;
        }
        h = spec;
        hl = (size_t)(colon - spec);
        p = colon + 1;
    }
    if (!hl || hl >= sizeof(host)) {
        snprintf(why, why_len, "witness '%.100s': %s address", spec, hl ? "too long an" : "no");
        return -EINVAL;
    }
    char *end;
    unsigned long pn = strtoul(p, &end, 10);
    if (!*p || *end || strspn(p, "0123456789") != strlen(p) || !pn || pn > 65535) {
        snprintf(why, why_len, "witness '%.100s': the port must be a number from 1 to 65535", spec);
        return -EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%lu", pn);
    /* Numeric first: an address is taken as it is, without a resolver. */
    struct addrinfo hints = { .ai_family = v6 ? AF_INET6 : AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g && !v6) {
        /* A host name: resolved once, now, so that the probe at takeover
         * time does not depend on a resolver that may be as cut off as
         * the primary. */
        hints.ai_flags = AI_NUMERICSERV;
        hints.ai_family = AF_UNSPEC;
        g = getaddrinfo(host, port, &hints, &res);
    }
    if (g || !res) {
        snprintf(why, why_len, "witness '%.100s': %s '%.64s': %s", spec, v6 ? "IPv6 address" : "host", host,
                 g ? gai_strerror(g) : "no address");
        if (res)
            freeaddrinfo(res);
        return -EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *sa_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int remus_witness_format(const struct sockaddr_storage *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    int n;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
            return -errno;
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
            return -errno;
        n = snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else
        return -EINVAL;
    return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

/* 1: the primary's domain process answered; 0: silent, refused or
 * unreachable; -errno: no probe could be sent at all. */
static int witness_probe(const struct sockaddr_storage *sa, socklen_t sa_len, const char *spec, const char *name,
                         unsigned tries, unsigned wait_ms, const struct tlog *log)
{
    int fd = socket(sa->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* connect(): only the witness's answers reach us, and an ICMP
     * "port unreachable" (a live host, the process gone) shows as an
     * error rather than a silence: both mean "not alive". */
    if (connect(fd, (const struct sockaddr *)sa, sa_len) < 0) {
        int err = errno;
        close(fd);
        tlog_warn(log, "remus: witness %s unreachable: %s", spec, strerror(err));
        return 0;
    }
    uint64_t nonce = monotonic_usec();
    char probe[200], got[200];
    int pl = domproc_witness_format(probe, sizeof(probe), DOMPROC_WITNESS_PROBE, name, nonce);
    if (pl < 0) {
        close(fd);
        return pl;
    }
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
            ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
            if (n < 0) {
                /* ICMP port unreachable: the host is up but nothing
                 * listens there, so the primary's domain process (whose
                 * life the witness shares) is gone.  Twice, to be sure it
                 * was not a moment of rebinding. */
                if (errno == ECONNREFUSED)
                    refused++;
                break;
            }
            char who[DOMAIN_NAME_MAX + 1];
            uint64_t echoed;
            if (!domproc_witness_parse(got, (size_t)n, DOMPROC_WITNESS_ALIVE, who, &echoed) && echoed == nonce &&
                !strcmp(who, name)) {
                alive = 1;
                break;
            }
        }
    }
    close(fd);
    return alive;
}

/* ---- The fence command -------------------------------------------------- */

/* The environment for the fence command: ours, with TANDEM_* replaced. */
static char **fence_environment(const char *domain, const char *primary, const char *witness)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 4, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TANDEM_DOMAIN=", 14) && strncmp(environ[i], "TANDEM_PRIMARY=", 15) &&
            strncmp(environ[i], "TANDEM_WITNESS=", 15))
            env[k++] = environ[i];
    char *mine[3] = { NULL, NULL, NULL };
    bool ok = asprintf(&mine[0], "TANDEM_DOMAIN=%s", domain ? domain : "") >= 0;
    ok = ok && asprintf(&mine[1], "TANDEM_PRIMARY=%s", primary ? primary : "") >= 0;
    ok = ok && (!witness || asprintf(&mine[2], "TANDEM_WITNESS=%s", witness) >= 0);
    if (!ok) {
        free(mine[0]);
        free(mine[1]);
        free(env);
        return NULL;
    }
    for (int i = 0; i < 3; i++)
        if (mine[i])
            env[k++] = mine[i];
    env[k] = NULL;
    /* Ours are the last ones: fence_environment_free finds them there. */
    return env;
}

static void fence_environment_free(char **env)
{
    if (!env)
        return;
    size_t n = 0;
    while (env[n])
        n++;
    for (size_t i = 0; i < n; i++)
        if (!strncmp(env[i], "TANDEM_DOMAIN=", 14) || !strncmp(env[i], "TANDEM_PRIMARY=", 15) ||
            !strncmp(env[i], "TANDEM_WITNESS=", 15))
            free(env[i]);
    free(env);
}

/* One pipe of the fence command's output, cut into lines for the log. */
struct fence_out {
    int fd;
    const char *what;
    char buf[512];
    size_t used;
    char *last;                  /* where the last non-empty line goes, or NULL */
    size_t last_len;
};

static void fence_line(struct fence_out *f, const char *line, const struct tlog *log)
{
    if (!line[0])
        return;
    tlog_warn(log, "remus: fence command %s: %s", f->what, line);
    if (f->last)
        snprintf(f->last, f->last_len, "%s", line);
}

/* Reads what is there; false at end of file (or an error). */
static bool fence_read(struct fence_out *f, const struct tlog *log)
{
    for (;;) {
        ssize_t n = read(f->fd, f->buf + f->used, sizeof(f->buf) - 1 - f->used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            f->buf[f->used] = '\0';
            fence_line(f, f->buf, log);
            f->used = 0;
            return false;
        }
        f->used += (size_t)n;
        f->buf[f->used] = '\0';
        char *start = f->buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            fence_line(f, start, log);
            start = nl + 1;
        }
        f->used = strlen(start);
        memmove(f->buf, start, f->used + 1);
        if (f->used == sizeof(f->buf) - 1) {
            /* A line longer than the buffer: its start is enough. */
            fence_line(f, f->buf, log);
            f->used = 0;
        }
    }
}

int remus_fence_run(const char *cmd, const char *domain, const char *primary, const char *witness,
                    unsigned timeout_ms, struct remus_fence_result *res, const struct tlog *log)
{
    memset(res, 0, sizeof(*res));
    res->status = -1;
    if (!cmd || !cmd[0])
        return -EINVAL;
    char **env = fence_environment(domain, primary, witness);
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!env || null_fd < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        int e = env ? errno : ENOMEM;
        fence_environment_free(env);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (err[i] >= 0)
                close(err[i]);
        }
        if (null_fd >= 0)
            close(null_fd);
        return -e;
    }
    uint64_t start = monotonic_usec();
    char *argv[] = { "sh", "-c", (char *)cmd, NULL };
    /* posix_spawn, not fork: it does not copy the page tables of the
     * guest's RAM (nor write-protect it) in a process whose vCPU and
     * device threads run on.  A process group of its own, so that a
     * timeout kills what the command started too; the domain process's
     * blocked and ignored signals (SIGTERM, SIGPIPE, ...) are not the
     * command's; and none of its fds (the replication stream, the back
     * channel, KVM's) but the three. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t dfl, none;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaddset(&dfl, sig);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    int se = posix_spawn_file_actions_adddup2(&fa, null_fd, STDIN_FILENO);
    se = se ? se : posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    se = se ? se : posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    se = se ? se : posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    se = se ? se : posix_spawnattr_setpgroup(&at, 0);
    se = se ? se : posix_spawnattr_setsigdefault(&at, &dfl);
    se = se ? se : posix_spawnattr_setsigmask(&at, &none);
    se = se ? se : posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    se = se ? se : posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(null_fd);
    close(out[1]);
    close(err[1]);
    fence_environment_free(env);
    if (se) {
        close(out[0]);
        close(err[0]);
        tlog_error(log, "remus: cannot run the fence command: /bin/sh: %s", strerror(se));
        return -se;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    struct fence_out o = { .fd = out[0], .what = "says" }, e = { .fd = err[0], .what = "stderr",
                                                                 .last = res->last_stderr,
                                                                 .last_len = sizeof(res->last_stderr) };
    bool o_open = true, e_open = true, exited = false;
    int status = 0;
    uint64_t deadline = start + (uint64_t)timeout_ms * 1000u;
    while (!exited) {
        uint64_t now = monotonic_usec();
        if (now >= deadline) {
            res->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);   /* in case the group is not there */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            exited = true;
            break;
        }
        struct pollfd pfd[2];
        nfds_t np = 0;
        if (o_open)
            pfd[np++] = (struct pollfd){ .fd = o.fd, .events = POLLIN };
        if (e_open)
            pfd[np++] = (struct pollfd){ .fd = e.fd, .events = POLLIN };
        /* Short ticks: the command may exit while something it started
         * keeps the pipes open. */
        int tick = (int)((deadline - now) / 1000u) + 1;
        if (tick > 50)
            tick = 50;
        if (np)
            poll(pfd, np, tick);
        else
            nanosleep(&(struct timespec){ .tv_nsec = (long)tick * 1000000L }, NULL);
        if (o_open)
            o_open = fence_read(&o, log);
        if (e_open)
            e_open = fence_read(&e, log);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            exited = true;
        else if (w < 0 && errno != EINTR) {
            int we = errno;
            close(o.fd);
            close(e.fd);
            return -we;
        }
    }
    /* What it wrote last, if it is already there. */
    if (o_open)
        fence_read(&o, log);
    if (e_open)
        fence_read(&e, log);
    if (e.used) {
        e.buf[e.used] = '\0';
        fence_line(&e, e.buf, log);
    }
    close(o.fd);
    close(e.fd);
    res->elapsed_ms = (monotonic_usec() - start) / 1000u;
    if (res->timed_out)
        return -ETIMEDOUT;
    if (WIFEXITED(status))
        res->status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res->signal = WTERMSIG(status);
    return res->status == 0 ? 0 : -ECHILD;
}

/* ---- Secondary ------------------------------------------------------------ */

struct secondary_ctx {
    const struct domproc_remus_report *r;
    const struct tlog *log;
    const char *name;
    char witness[160];
    struct sockaddr_storage witness_sa;
    socklen_t witness_len;
    char fence[400];             /* the fence command, or "" */
    unsigned fence_timeout_s;
    char primary[128];           /* the primary's host, for TANDEM_PRIMARY */
    bool asked;                  /* the guard ran */
    bool alive;                  /* the witness answered */
    bool fence_ran, fenced;
    struct remus_fence_result fr;
    int fence_rc;
    uint64_t committed;
};

/* What the fence command's failure was, in a few words. */
static void fence_failure_text(const struct secondary_ctx *s, char *buf, size_t len)
{
    const struct remus_fence_result *f = &s->fr;
    char how[80];
    if (f->timed_out)
        snprintf(how, sizeof(how), "timed out after %u s (its process group was killed)", s->fence_timeout_s);
    else if (f->signal)
        snprintf(how, sizeof(how), "was killed by signal %d", f->signal);
    else if (f->status >= 0)
        snprintf(how, sizeof(how), "exited with status %d", f->status);
    else
        snprintf(how, sizeof(how), "could not be run: %s", strerror(-s->fence_rc));
    snprintf(buf, len, "the fence command %s%s%.180s%s", how, f->last_stderr[0] ? " (last stderr: " : "",
             f->last_stderr, f->last_stderr[0] ? ")" : "");
}

/* The split-brain guard: witness first (an answer means the primary
 * lives: no takeover, and no fencing of a live primary); silent, or no
 * witness, then the fence command if there is one: only its success lets
 * the takeover go ahead.  True forbids the takeover. */
static bool secondary_primary_alive(void *opaque)
{
    struct secondary_ctx *s = opaque;
    s->asked = true;
    if (s->witness[0]) {
        int rc = witness_probe(&s->witness_sa, s->witness_len, s->witness, s->name, 5, 200, s->log);
        s->alive = rc > 0;
        tlog_warn(s->log, "remus: witness %s says the primary is %s", s->witness, s->alive ? "ALIVE" : "gone");
        if (s->alive)
            return true;
    }
    if (!s->fence[0])
        return false;
    tlog_warn(s->log, "remus: %s: fencing the primary (%s) with '%s', at most %u s", s->name,
              s->primary[0] ? s->primary : "host unknown", s->fence, s->fence_timeout_s);
    s->fence_ran = true;
    s->fence_rc = remus_fence_run(s->fence, s->name, s->primary, s->witness[0] ? s->witness : NULL,
                                  s->fence_timeout_s * 1000u, &s->fr, s->log);
    s->fenced = s->fence_rc == 0;
    if (s->fenced) {
        tlog_warn(s->log, "remus: the fence command succeeded in %llu ms: the primary is off; taking over",
                  (unsigned long long)s->fr.elapsed_ms);
        return false;
    }
    char why[300];
    fence_failure_text(s, why, sizeof(why));
    tlog_error(s->log, "remus: FENCING FAILED: %s: the primary may still run, so this backup does NOT take "
                       "over; the replica will be destroyed", why);
    return true;
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
    struct secondary_ctx s = { .r = r, .log = log, .name = name, .fence_timeout_s = REMUS_FENCE_DEFAULT_TIMEOUT_S };
    unsigned interval = 200;
    char *copy = strdup(options ? options : ""), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    o.compress = true;
    for (char *tok = strtok_r(copy, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        unsigned long long v;
        char why[300];
        if (number_of(tok, "timeout_ms", &v) && v <= REMUS_MAX_TIMEOUT_MS)
            o.timeout_ms = (unsigned)v;
        else if (number_of(tok, "interval_ms", &v) && v >= 1)
            interval = (unsigned)v;
        else if (number_of(tok, "fence_timeout_s", &v) && v >= 1 && v <= REMUS_FENCE_MAX_TIMEOUT_S)
            s.fence_timeout_s = (unsigned)v;
        else if (!strcmp(tok, "nocompress"))
            o.compress = false;
        else if (!strncmp(tok, "witness=", 8)) {
            if (remus_witness_parse(tok + 8, &s.witness_sa, &s.witness_len, why, sizeof(why))) {
                tlog_error(log, "remus-secondary: %s", why);
                rc = -EINVAL;
            } else
                snprintf(s.witness, sizeof(s.witness), "%s", tok + 8);
        } else if (!strncmp(tok, "fence=", 6)) {
            if (remus_option_decode(tok + 6, s.fence, sizeof(s.fence)) || !s.fence[0]) {
                tlog_error(log, "remus-secondary: bad fence command '%s'", tok + 6);
                rc = -EINVAL;
            }
        } else if (!strncmp(tok, "primary=", 8)) {
            if (remus_option_decode(tok + 8, s.primary, sizeof(s.primary))) {
                tlog_error(log, "remus-secondary: bad primary '%s'", tok + 8);
                rc = -EINVAL;
            }
        } else {
            tlog_error(log, "remus-secondary: bad option '%s'", tok);
            rc = -EINVAL;
        }
    }
    free(copy);
    if (rc)
        return rc;
    /* TANDEM_PRIMARY: the witness's host part when there is one (the
     * address the operator named the primary by), else what xl remus said
     * its host is called. */
    if (s.witness[0]) {
        const char *w = s.witness, *colon = strrchr(w, ':');
        size_t hl = (size_t)(colon - w);
        if (w[0] == '[') {
            w++;
            hl = (size_t)(strchr(w, ']') - w);
        }
        snprintf(s.primary, sizeof(s.primary), "%.*s", (int)hl, w);
    }
    /* As the primary's ack timeout: 3 intervals, at least a second (a
     * shorter one gives up on a primary still starting its first copy). */
    if (!o.timeout_ms)
        o.timeout_ms = interval * 3 > 1000 ? interval * 3 : 1000;
    if (s.witness[0] || s.fence[0]) {
        o.primary_alive = secondary_primary_alive;
        tlog_info(log, "remus: before a takeover: %s%s%s%s%s", s.witness[0] ? "ask the witness " : "",
                  s.witness, s.witness[0] && s.fence[0] ? ", then if it is silent " : "",
                  s.fence[0] ? "run the fence command " : "", s.fence);
        if (!s.witness[0])
            tlog_warn(log, "remus: no witness: a cut replication link will look like a dead primary; the "
                           "fence command decides (it must power the primary off)");
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
    bool forbidden = false;
    if (rc == REMUS_SECONDARY_FAILOVER && o.primary_alive && !s.asked)
        forbidden = secondary_primary_alive(&s);   /* the engine did not ask: ask now */
    if (rc == REMUS_SECONDARY_PRIMARY_ALIVE || forbidden) {
        if (s.alive)
            snprintf(summary, len, "stream lost (%s) after epoch %llu, but the witness %s answers for the primary",
                     why, (unsigned long long)sum.last_committed, s.witness);
        else {
            char fw[300];
            fence_failure_text(&s, fw, sizeof(fw));
            snprintf(summary, len, "stream lost (%s) after epoch %llu, the %s, but FENCING FAILED: %s", why,
                     (unsigned long long)sum.last_committed,
                     s.witness[0] ? "witness is silent" : "primary may be gone", fw);
        }
        return DOMPROC_REMUS_PRIMARY_ALIVE;
    }
    if (rc == REMUS_SECONDARY_FAILOVER) {
        snprintf(summary, len, "primary lost after %llu epochs (%s)%s; resumed epoch %llu, %llu ms after the last "
                               "commit", (unsigned long long)sum.epochs, why,
                 s.fenced ? ", fenced by the fence command" : "", (unsigned long long)sum.last_committed,
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
