/* xl migrate and xl migrate-receive: live migration with Xen's xl
 * handshake (tools/xl/xl_migrate.c in xen.git):
 *
 *   receiver -> "xl migration receiver ready, send binary domain data.\n"
 *   sender   -> xl save-file header + config, then the live libxl stream
 *   receiver -> "domain received, ready to unpause\0"   (restored, paused)
 *   sender      renames its copy <name>--migratedaway
 *   sender   -> "domain is yours, you are cleared to unpause\0"
 *   receiver    renames <name>--incoming to <name>, unpauses
 *   receiver -> "my copy unpause results are as follows\0" + 1 status byte
 *   sender      on 0 destroys its copy; otherwise waits for the receiver's
 *               "domain is yours..." and resumes its own.
 * Until the receiver reports success the source guest is only paused, and
 * any failure resumes it.
 *
 * --compress (Tandem's) runs the receiver with -z, which tells it to accept
 * lz4-compressed page records; a receiver without -z would refuse them, and
 * one that does not know -z does not start. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "tandem/streams.h"
#include "xl.h"

static const char banner[] = "xl migration receiver ready, send binary domain data.\n";
static const char receiver_ready[] = "domain received, ready to unpause";
static const char permission_to_go[] = "domain is yours, you are cleared to unpause";
static const char report[] = "my copy unpause results are as follows";

#define BANNER_TIMEOUT_MS 60000
#define HANDSHAKE_TIMEOUT_MS 120000

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int write_exact(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    while (len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0)
            return -errno;
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EPIPE;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Reads a fixed message and says what came instead, if anything. */
static int expect_message(struct xl_ctx *ctx, int fd, const char *msg, size_t len, const char *what,
                          int timeout_ms)
{
    char buf[128];
    int rc = read_exact(fd, buf, len, timeout_ms);
    if (rc) {
        tlog_error(&ctx->log, "%s : %s", what,
                   rc == -EPIPE ? "the other end closed the connection"
                   : rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        return rc;
    }
    if (memcmp(buf, msg, len) != 0) {
        tlog_error(&ctx->log, "%s : got something else from the other end", what);
        return -EPROTO;
    }
    return 0;
}

/* ---- Sender ----------------------------------------------------------- */

struct sender {
    struct xl_ctx *ctx;
    bool tty, debug, json;
    uint64_t paused_at;
    char last_progress[400];
};

static void on_progress(void *opaque, const char *line)
{
    struct sender *s = opaque;
    if (strcmp(line, "paused") == 0) {
        s->paused_at = now_usec();
        if (s->tty)
            fprintf(stderr, "\n");
        return;
    }
    snprintf(s->last_progress, sizeof(s->last_progress), "%s", line);
    unsigned iter = 0, thr = 0;
    unsigned long long pages = 0, dirty = 0, remaining = 0;
    double mbps = 0, est = 0;
    sscanf(line, "iteration=%u pages=%llu zero=%*u dirty=%llu mbps=%lf remaining_pages=%llu est_downtime_ms=%lf "
                 "throttle_pct=%u", &iter, &pages, &dirty, &mbps, &remaining, &est, &thr);
    if (s->tty)
        fprintf(stderr, "\rmigration sender: iteration %u: sent %llu pages, %llu dirty, %.1f MB/s, "
                        "%llu left (~%.1f ms), throttle %u%%   ",
                iter, pages, dirty, mbps, remaining, est, thr);
    else if (s->debug)
        fprintf(stderr, "migration sender: %s\n", line);
}

/* Runs the transport: `sh -c rune` with its stdin and stdout as pipes. */
static pid_t start_transport(const char *rune, int *send_fd, int *recv_fd)
{
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(from_child, O_CLOEXEC) < 0) {
        close(to_child[0]);
        close(to_child[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to_child[0], STDIN_FILENO);
        dup2(from_child[1], STDOUT_FILENO);
        execlp("sh", "sh", "-c", rune, (char *)NULL);
        fprintf(stderr, "xl: migrate: cannot run sh : %s\n", strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    if (pid < 0) {
        close(to_child[1]);
        close(from_child[0]);
        return -1;
    }
    *send_fd = to_child[1];
    *recv_fd = from_child[0];
    return pid;
}

static void report_transport(pid_t child, const char *rune)
{
    int status;
    if (child <= 0)
        return;
    /* Give the receiver a moment to finish; then stop waiting for it. */
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) {
            if (WIFEXITED(status) && WEXITSTATUS(status))
                fprintf(stderr, "migration receiver (%s) exited with status %d\n", rune, WEXITSTATUS(status));
            else if (WIFSIGNALED(status))
                fprintf(stderr, "migration receiver (%s) died of signal %d\n", rune, WTERMSIG(status));
            return;
        }
        usleep(10000);
    }
}

static void print_json(const char *result, const char *error, uint64_t total_usec, uint64_t downtime_usec,
                       const char *summary)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "result", json_object_new_string(result));
    json_object_object_add(o, "total_ms", json_object_new_double((double)total_usec / 1000.0));
    json_object_object_add(o, "downtime_ms", json_object_new_double((double)downtime_usec / 1000.0));
    unsigned long long bytes = 0;
    unsigned thr = 0;
    const char *p;
    if ((p = strstr(summary, "bytes=")))
        bytes = strtoull(p + 6, NULL, 10);
    if ((p = strstr(summary, "throttle_pct=")))
        thr = (unsigned)strtoul(p + 13, NULL, 10);
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
    json_object_object_add(o, "throttle_pct", json_object_new_int((int)thr));
    char ld[16] = "";
    if ((p = strstr(summary, "logdirty=")))
        sscanf(p + 9, "%15s", ld);
    json_object_object_add(o, "logdirty", json_object_new_string(ld));
    if ((p = strstr(summary, "stop_copy_ms=")))
        json_object_object_add(o, "stop_copy_ms", json_object_new_double(strtod(p + 13, NULL)));
    if ((p = strstr(summary, "ring_full_exits=")))
        json_object_object_add(o, "ring_full_exits", json_object_new_int64(strtoll(p + 16, NULL, 10)));
    char comp[16] = "none";
    if ((p = strstr(summary, "compress=")))
        sscanf(p + 9, "%15s", comp);
    json_object_object_add(o, "compress", json_object_new_string(comp));
    if ((p = strstr(summary, "stream_version=")))
        json_object_object_add(o, "stream_version", json_object_new_int(atoi(p + 15)));
    /* The page records as sent, and what they would have been plain. */
    unsigned long long page_bytes = 0, page_plain = 0;
    if ((p = strstr(summary, " page_bytes=")))
        page_bytes = strtoull(p + 12, NULL, 10);
    if ((p = strstr(summary, " page_bytes_plain=")))
        page_plain = strtoull(p + 18, NULL, 10);
    json_object_object_add(o, "page_bytes", json_object_new_int64((int64_t)page_bytes));
    json_object_object_add(o, "page_bytes_plain", json_object_new_int64((int64_t)page_plain));
    json_object *iters = json_object_new_array();
    if ((p = strstr(summary, "iter="))) {
        p += 5;
        unsigned i = 0;
        unsigned long long pg, z, d, ms, b;
        int n;
        while (sscanf(p, "%llu:%llu:%llu:%llu:%llu%n", &pg, &z, &d, &ms, &b, &n) == 5) {
            json_object *it = json_object_new_object();
            json_object_object_add(it, "iteration", json_object_new_int((int)i++));
            json_object_object_add(it, "pages", json_object_new_int64((int64_t)pg));
            json_object_object_add(it, "zero_pages", json_object_new_int64((int64_t)z));
            json_object_object_add(it, "dirty_pages", json_object_new_int64((int64_t)d));
            json_object_object_add(it, "ms", json_object_new_int64((int64_t)ms));
            json_object_object_add(it, "bytes", json_object_new_int64((int64_t)b));
            json_object_object_add(it, "mbps", json_object_new_double(ms ? (double)b / 1000.0 / (double)ms : 0));
            json_object_array_add(iters, it);
            p += n;
            if (*p != ',')
                break;
            p++;
        }
    }
    json_object_object_add(o, "iterations", iters);
    if (error)
        json_object_object_add(o, "error", json_object_new_string(error));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void print_summary(uint64_t total_usec, uint64_t downtime_usec, const char *summary)
{
    fprintf(stderr, "migration summary: total_ms=%.1f downtime_ms=%.1f %s\n", (double)total_usec / 1000.0,
            (double)downtime_usec / 1000.0, summary);
    const char *p = strstr(summary, "compress=lz4");
    if (p) {
        const char *pb = strstr(summary, " page_bytes="), *pp = strstr(summary, " page_bytes_plain=");
        unsigned long long sent = pb ? strtoull(pb + 12, NULL, 10) : 0, plain = pp ? strtoull(pp + 18, NULL, 10) : 0;
        fprintf(stderr, "compression: lz4, page records %llu bytes sent for %llu plain (%.1f%%)\n", sent, plain,
                plain ? 100.0 * (double)sent / (double)plain : 100.0);
    }
    p = strstr(summary, "iter=");
    if (!p)
        return;
    fprintf(stderr, "pages per iteration:");
    p += 5;
    unsigned long long pg, z, d, ms, b;
    int n;
    while (sscanf(p, "%llu:%llu:%llu:%llu:%llu%n", &pg, &z, &d, &ms, &b, &n) == 5) {
        fprintf(stderr, " %llu", pg + z);
        p += n;
        if (*p != ',')
            break;
        p++;
    }
    const char *f = strstr(summary, "final_pages=");
    fprintf(stderr, " (stop-and-copy: %llu)\n", f ? strtoull(f + 12, NULL, 10) : 0ULL);
}

static const char *self_path(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0)
        return "xl";
    buf[n] = '\0';
    return buf;
}

int xl_cmd_migrate(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("migrate");
    enum { OPT_DEBUG = 256, OPT_DOWNTIME, OPT_LOGDIRTY, OPT_BANDWIDTH, OPT_ITERS, OPT_JSON, OPT_COMPRESS,
           OPT_STREAM_VERSION };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "debug", no_argument, NULL, OPT_DEBUG },
        { "max-downtime", required_argument, NULL, OPT_DOWNTIME },
        { "logdirty", required_argument, NULL, OPT_LOGDIRTY },
        { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
        { "max-iters", required_argument, NULL, OPT_ITERS },
        { "json", no_argument, NULL, OPT_JSON },
        { "compress", no_argument, NULL, OPT_COMPRESS },
        { "stream-version", required_argument, NULL, OPT_STREAM_VERSION },
        { 0 } };
    const char *ssh = "ssh", *cfgfile = NULL;
    bool dest_paused = false, compress = false;
    unsigned stream_version = 3;
    unsigned downtime = 30, iters = 30;
    unsigned long long bandwidth_mb = 0;
    enum domain_logdirty_mode logdirty = DOMAIN_LOGDIRTY_AUTO;
    struct sender s = { .ctx = ctx };
    int opt;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hs:C:ep", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': ssh = optarg; break;
        case 'C': cfgfile = optarg; break;
        case 'e': break;
        case 'p': dest_paused = true; break;
        case OPT_DEBUG: s.debug = true; break;
        case OPT_JSON: s.json = true; break;
        case OPT_COMPRESS: compress = true; break;
        case OPT_STREAM_VERSION:
            stream_version = (unsigned)strtoul(optarg, &end, 10);
            if (*end || (stream_version != 2 && stream_version != 3)) {
                tlog_error(&ctx->log, "--stream-version must be 2 or 3");
                return XL_USAGE;
            }
            break;
        case OPT_DOWNTIME:
            downtime = (unsigned)strtoul(optarg, &end, 10);
            if (*end || end == optarg) return xl_usage(cmd, true);
            break;
        case OPT_ITERS:
            iters = (unsigned)strtoul(optarg, &end, 10);
            if (*end || end == optarg || !iters) return xl_usage(cmd, true);
            break;
        case OPT_BANDWIDTH:
            bandwidth_mb = strtoull(optarg, &end, 10);
            if (*end || end == optarg) return xl_usage(cmd, true);
            break;
        case OPT_LOGDIRTY:
            if (domain_logdirty_mode_parse(optarg, &logdirty) || logdirty == DOMAIN_LOGDIRTY_AUTO) {
                tlog_error(&ctx->log, "--logdirty must be ring or bitmap");
                return XL_USAGE;
            }
            break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc - optind != 2)
        return xl_usage(cmd, true);
    const char *which = argv[optind], *host = argv[optind + 1];
    struct registry_entry e;
    char config_json[sizeof(e.config_json)];
    if (xl_domain_to_send(ctx, which, "migrated", cfgfile, &e, config_json, sizeof(config_json)))
        return XL_FAILED;
    bool was_running = e.state == DOMAIN_STATE_RUNNING;
    char self[4096], rune[8192];
    /* -z: the receiver accepts lz4-compressed pages (one that does not
     * know -z refuses to start, and the guest stays here). */
    char flags[8];
    snprintf(flags, sizeof(flags), "%s%s", dest_paused ? " -p" : "", compress ? " -z" : "");
    if (!ssh[0])
        snprintf(rune, sizeof(rune), "%s %s%s migrate-receive%s", host, self_path(self, sizeof(self)),
                 s.debug ? " -v" : "", flags);
    else
        snprintf(rune, sizeof(rune), "exec %s %s xl%s migrate-receive%s", ssh, host, s.debug ? " -v" : "", flags);
    s.tty = isatty(STDERR_FILENO) && !s.json;

    uint64_t start = now_usec(), downtime_usec = 0;
    int send_fd = -1, recv_fd = -1;
    char summary[2048] = "", away[DOMAIN_NAME_MAX + 32], opts[256];
    bool renamed = false;
    const char *failure = NULL;
    pid_t child = start_transport(rune, &send_fd, &recv_fd);
    if (child < 0) {
        tlog_error(&ctx->log, "cannot start the transport '%s' : %s", rune, strerror(errno));
        return XL_FAILED;
    }
    int rc = expect_message(ctx, recv_fd, banner, sizeof(banner) - 1, "waiting for the receiver's banner",
                            BANNER_TIMEOUT_MS);
    if (!rc)
        rc = xl_write_xl_header(send_fd, config_json, &ctx->log);
    if (rc) {
        failure = "the receiver did not start";
        goto failed_resume;
    }
    snprintf(opts, sizeof(opts), "save live max_downtime_ms=%u max_iters=%u bandwidth=%llu stream_version=%u%s%s%s",
             downtime, iters, bandwidth_mb * 1000000ULL, stream_version,
             logdirty != DOMAIN_LOGDIRTY_AUTO ? " logdirty=" : "",
             logdirty != DOMAIN_LOGDIRTY_AUTO ? domain_logdirty_mode_name(logdirty) : "", compress ? " compress" : "");
    if (!s.json)
        fprintf(stderr, "migration sender: sending domain %s (%u) to '%s'\n", e.name, e.domid, host);
    rc = control_command_progress(&ctx->paths, e.domid, opts, send_fd, on_progress, &s, summary, sizeof(summary),
                                  &ctx->log);
    if (rc) {
        failure = "sending the domain failed";
        goto failed_resume;
    }
    if ((rc = expect_message(ctx, recv_fd, receiver_ready, sizeof(receiver_ready), "waiting for the receiver's "
                             "ready message", HANDSHAKE_TIMEOUT_MS))) {
        failure = "the receiver could not restore the domain";
        goto failed_resume;
    }
    if (!s.json)
        fprintf(stderr, "migration sender: Target has acknowledged transfer.\n");
    snprintf(away, sizeof(away), "%s--migratedaway", e.name);
    char rename_cmd[DOMAIN_NAME_MAX + 64];
    snprintf(rename_cmd, sizeof(rename_cmd), "rename %s", away);
    if ((rc = control_command(&ctx->paths, e.domid, rename_cmd, NULL, 0, &ctx->log))) {
        failure = "cannot rename the source domain";
        goto failed_resume;
    }
    renamed = true;
    /* The point of no return: once told to go, the receiver may run it. */
    if (!s.json)
        fprintf(stderr, "migration sender: Giving target permission to start.\n");
    char status = 1;
    if ((rc = write_exact(send_fd, permission_to_go, sizeof(permission_to_go))) ||
        (rc = expect_message(ctx, recv_fd, report, sizeof(report), "waiting for the receiver's report",
                             HANDSHAKE_TIMEOUT_MS)) ||
        (rc = read_exact(recv_fd, &status, 1, HANDSHAKE_TIMEOUT_MS))) {
        /* We cannot know whether the target runs the guest: leave ours
         * paused and renamed, as Xen does, for the operator to decide. */
        tlog_error(&ctx->log, "lost the receiver after giving it permission to start; the source domain is "
                   "left paused as %s", away);
        failure = "lost the receiver after permission to start";
        close(send_fd);
        report_transport(child, rune);
        if (s.json)
            print_json("failed", failure, now_usec() - start, 0, summary);
        return XL_FAILED;
    }
    downtime_usec = s.paused_at ? now_usec() - s.paused_at : 0;
    if (status) {
        tlog_error(&ctx->log, "the target reports startup failure (status %d)", status);
        expect_message(ctx, recv_fd, permission_to_go, sizeof(permission_to_go),
                       "waiting for permission to resume", HANDSHAKE_TIMEOUT_MS);
        failure = "the target could not start the domain";
        goto failed_resume;
    }
    if (!s.json)
        fprintf(stderr, "migration sender: Target reports successful startup.\n");
    xl_destroy_domain(ctx, &e);
    close(send_fd);
    close(recv_fd);
    report_transport(child, rune);
    if (s.json) {
        print_json("ok", NULL, now_usec() - start, downtime_usec, summary);
    } else {
        fprintf(stderr, "Migration successful.\n");
        print_summary(now_usec() - start, downtime_usec, summary);
    }
    return XL_OK;

failed_resume:
    close(send_fd);
    if (renamed) {
        snprintf(rename_cmd, sizeof(rename_cmd), "rename %s", e.name);
        control_command(&ctx->paths, e.domid, rename_cmd, NULL, 0, &ctx->log);
    }
    /* The live save left the guest paused; it goes on as if nothing had
     * happened. */
    struct registry_entry now;
    if (was_running && registry_find(&ctx->paths, e.name, &now, NULL) == 0 && now.state == DOMAIN_STATE_PAUSED)
        control_command(&ctx->paths, e.domid, "unpause", NULL, 0, &ctx->log);
    close(recv_fd);
    report_transport(child, rune);
    tlog_error(&ctx->log, "%s; domain %s is still %s here", failure, e.name, was_running ? "running" : "paused");
    if (s.json)
        print_json("failed", failure, now_usec() - start, 0, summary);
    else
        fprintf(stderr, "Migration failed.\n");
    return XL_FAILED;
}

/* ---- Receiver ---------------------------------------------------------- */

int xl_cmd_migrate_receive(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("migrate-receive");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    bool paused = false, compress = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hdepz", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': case 'e': break; /* xl's debug / no-daemonize: accepted */
        case 'p': paused = true; break;
        case 'z': compress = true; break; /* Tandem's: accept lz4-compressed pages */
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc != optind)
        return xl_usage(cmd, true);
    const int recv_fd = STDIN_FILENO, send_fd = STDOUT_FILENO;
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "migration target: Ready to receive domain%s.\n", compress ? " (lz4 compression accepted)" : "");
    if (xl_open_host(ctx) || write_exact(send_fd, banner, sizeof(banner) - 1))
        return XL_FAILED;

    struct domain_config c;
    int rc = xl_read_xl_header(recv_fd, "the migration stream", &c, &ctx->log);
    if (rc)
        return XL_FAILED;
    char name[DOMAIN_NAME_MAX];
    snprintf(name, sizeof(name), "%s", c.name);
    if (strlen(name) + sizeof("--incoming") > sizeof(c.name)) {
        tlog_error(&ctx->log, "domain name %s is too long to migrate", name);
        return XL_FAILED;
    }
    char incoming[DOMAIN_NAME_MAX + 16];
    snprintf(incoming, sizeof(incoming), "%s--incoming", name);
    memcpy(c.name, incoming, strlen(incoming) + 1);

    unsigned domid = 0;
    char summary[400] = "";
    if (xl_spawn_domain(ctx, &c, true, recv_fd, compress ? "compress" : NULL, &domid, summary, sizeof(summary))) {
        fprintf(stderr, "migration target: Domain creation failed.\n");
        return XL_FAILED;
    }
    fprintf(stderr, "migration target: Transfer complete, requesting permission to start domain (%s).\n", summary);
    if (write_exact(send_fd, receiver_ready, sizeof(receiver_ready)))
        goto destroy;
    rc = expect_message(ctx, recv_fd, permission_to_go, sizeof(permission_to_go), "waiting for permission to go",
                        -1);
    char rename_cmd[DOMAIN_NAME_MAX + 64];
    snprintf(rename_cmd, sizeof(rename_cmd), "rename %s", name);
    if (!rc)
        rc = control_command(&ctx->paths, domid, rename_cmd, NULL, 0, &ctx->log);
    if (!rc && !paused)
        rc = control_command(&ctx->paths, domid, "unpause", NULL, 0, &ctx->log);
    if (!rc)
        fprintf(stderr, "migration target: Domain started successfully.\n");
    char status = rc ? 1 : 0;
    if (write_exact(send_fd, report, sizeof(report)) || write_exact(send_fd, &status, 1))
        return XL_FAILED;
    if (!rc)
        return XL_OK;
    fprintf(stderr, "migration target: Failure, destroying our copy.\n");
    struct registry_entry e;
    if (registry_find(&ctx->paths, c.name, &e, NULL) == 0 || registry_find(&ctx->paths, name, &e, NULL) == 0)
        xl_destroy_domain(ctx, &e);
    write_exact(send_fd, permission_to_go, sizeof(permission_to_go));
    return XL_FAILED;

destroy: {
        struct registry_entry e;
        if (registry_find(&ctx->paths, c.name, &e, NULL) == 0)
            xl_destroy_domain(ctx, &e);
        return XL_FAILED;
    }
}
