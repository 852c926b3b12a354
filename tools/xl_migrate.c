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
 * Stream version negotiation (Tandem's, since 1.1.0; docs/compatibility.md).
 * The sender runs the receiver with --negotiate, and such a receiver adds one
 * line right after Xen's banner, before anything else is sent:
 *
 *   tandem-migrate release=<its release> streams=<libxc versions it reads>\n
 *
 * e.g. "tandem-migrate release=1.1.0 streams=2,3".  Space-separated
 * key=value pairs after the word tandem-migrate, printable ASCII, at most
 * NEGOTIATION_LINE_MAX bytes with the newline; release and streams must be
 * there, other keys are for later releases and readers skip them (the
 * parser and formatter are in migrate_negotiation.c, to be fuzzed).  The
 * sender sends the highest version both ends read (--stream-version forces
 * one, and fails before sending anything if the receiver does not read it).
 * A receiver that does not know --negotiate (Tandem 1.0.0, Xen's xl) exits
 * with status 2 before its banner; the sender then starts it again without
 * the option, Xen's handshake byte for byte, and sends version 2, the one
 * every reader takes.  Without --negotiate the receiver writes no line, so a
 * 1.0.0 sender still migrates to a 1.1.0 receiver.
 *
 * --compress (Tandem's) runs the receiver with -z, which tells it to accept
 * lz4-compressed page records; a receiver without -z would refuse them, and
 * one that does not know -z does not start. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "tandem/streams.h"
#include "migrate_negotiation.h"
#include "tandem/remus.h"
#include "xl.h"
#include "xl_transport.h"

static const char receiver_ready[] = "domain received, ready to unpause";
static const char permission_to_go[] = "domain is yours, you are cleared to unpause";
static const char report[] = "my copy unpause results are as follows";

/* What a receiver that does not negotiate is sent: every reader takes v2,
 * Xen's and Tandem's alike. */
#define FALLBACK_STREAM_VERSION 2u

#define HANDSHAKE_TIMEOUT_MS 120000

/* Reads a fixed message and says what came instead, if anything. */
static int expect_message(struct xl_ctx *ctx, int fd, const char *msg, size_t len, const char *what,
                          int timeout_ms)
{
    char buf[128];
    int rc = xl_read_exact(fd, buf, len, timeout_ms);
    if (rc) {
        tlog_error(&ctx->log, "%s : %s", what, xl_transport_error(rc));
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
        s->paused_at = xl_now_usec();
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

/* ---- Negotiation ------------------------------------------------------ */

/* Reads the negotiation line that follows the banner, a byte at a time so
 * as to take nothing of what comes after it, and parses it. */
static int read_offer(struct xl_ctx *ctx, int fd, struct negotiation_offer *o)
{
    char line[NEGOTIATION_LINE_MAX], shown[100];
    size_t n = 0;
    uint64_t deadline = xl_now_usec() + (uint64_t)XL_BANNER_TIMEOUT_MS * 1000u;
    for (;;) {
        uint64_t now = xl_now_usec();
        int rc = now >= deadline ? -ETIMEDOUT : xl_read_exact(fd, line + n, 1, (int)((deadline - now) / 1000u) + 1);
        if (rc) {
            negotiation_quote_line(line, n, shown, sizeof(shown));
            if (n == 0)
                tlog_error(&ctx->log, "waiting for the receiver's negotiation line : %s", xl_transport_error(rc));
            else
                tlog_error(&ctx->log, "the receiver's negotiation line '%s' has no end : %s", shown,
                           xl_transport_error(rc));
            return rc;
        }
        if (line[n] == '\n')
            break;
        if (++n == NEGOTIATION_LINE_MAX) {
            negotiation_quote_line(line, n, shown, sizeof(shown));
            tlog_error(&ctx->log, "the receiver's negotiation line '%s' : longer than %d bytes", shown,
                       NEGOTIATION_LINE_MAX);
            return -EPROTO;
        }
    }
    return negotiation_parse_line(line, n, o, &ctx->log);
}

/* The stream version to send to a receiver that made this offer: the one
 * asked for (0: the highest both ends take).  0 or -EPROTO, logged. */
static int choose_stream_version(struct xl_ctx *ctx, const struct negotiation_offer *o, unsigned asked,
                                 unsigned *version)
{
    char theirs[100], ours[100];  /* "1,2,...,31" at most */
    negotiation_versions_text(o->streams, theirs, sizeof(theirs));
    const char *listed = theirs[0] ? theirs : "only versions this xl does not know";
    if (asked) {
        if (!(o->streams & (1u << asked))) {
            tlog_error(&ctx->log, "--stream-version %u : the receiver (Tandem %s) reads stream version%s %s, not %u",
                       asked, o->release, strchr(theirs, ',') ? "s" : "", listed, asked);
            return -EPROTO;
        }
        *version = asked;
        return 0;
    }
    unsigned highest = negotiation_pick_version(o->streams, NEGOTIATION_STREAMS_OURS);
    if (!highest) {
        tlog_error(&ctx->log, "no stream version in common : the receiver (Tandem %s) reads %s, this xl sends %s",
                   o->release, listed, negotiation_versions_text(NEGOTIATION_STREAMS_OURS, ours, sizeof(ours)));
        return -EPROTO;
    }
    *version = highest;
    return 0;
}

/* receiver_release: what a negotiating receiver said it is, else NULL. */
static void print_json(const char *result, const char *error, uint64_t total_usec, uint64_t downtime_usec,
                       const char *summary, const char *receiver_release)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "result", json_object_new_string(result));
    json_object_object_add(o, "receiver_release",
                           receiver_release ? json_object_new_string(receiver_release) : NULL);
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
    unsigned stream_version = 0;    /* 0: negotiated; else --stream-version */
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
            if (xl_parse_uint(ctx, "--stream-version", optarg, 2, 3, &stream_version))
                return XL_USAGE;
            break;
        case OPT_DOWNTIME:
            if (xl_parse_uint(ctx, "--max-downtime", optarg, 0, 600000, &downtime))
                return XL_USAGE;
            break;
        case OPT_ITERS:
            if (xl_parse_uint(ctx, "--max-iters", optarg, 1, 100000, &iters))
                return XL_USAGE;
            break;
        case OPT_BANDWIDTH:
            bandwidth_mb = strtoull(optarg, &end, 10);
            if (*end || end == optarg || optarg[0] == '-') {
                tlog_error(&ctx->log, "--bandwidth %s : must be a whole number of megabytes per second", optarg);
                return XL_USAGE;
            }
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
    const char *xl_there = ssh[0] ? "xl" : xl_self_path(self, sizeof(self));
    /* The first attempt asks the receiver to negotiate. */
    if (!ssh[0])
        snprintf(rune, sizeof(rune), "%s %s%s migrate-receive --negotiate%s", host, xl_there, s.debug ? " -v" : "",
                 flags);
    else
        snprintf(rune, sizeof(rune), "exec %s %s %s%s migrate-receive --negotiate%s", ssh, host, xl_there,
                 s.debug ? " -v" : "", flags);
    s.tty = isatty(STDERR_FILENO) && !s.json;

    uint64_t start = xl_now_usec(), downtime_usec = 0;
    char summary[2048] = "", away[DOMAIN_NAME_MAX + 32], opts[256];
    bool renamed = false;
    const char *failure = NULL;
    struct negotiation_offer offer;
    const char *receiver_release = NULL;
    struct transport t;
    int rc = xl_transport_start(&t, rune, true, false);
    if (rc) {
        tlog_error(&ctx->log, "cannot start the transport '%s' : %s", rune, strerror(-rc));
        return XL_FAILED;
    }
    char got_banner[sizeof(XL_BANNER) - 1];
    size_t got = 0;
    rc = xl_read_exact_count(t.recv_fd, got_banner, sizeof(got_banner), XL_BANNER_TIMEOUT_MS, &got);
    if (rc == -EPIPE && got == 0 && xl_transport_wait(&t, XL_TRANSPORT_EXIT_WAIT_MS) && WIFEXITED(t.status) &&
        WEXITSTATUS(t.status) == XL_USAGE) {
        /* Gone without a word, with a usage error: a receiver from before
         * negotiation (Tandem 1.0.0, or Xen's xl) refusing --negotiate.
         * Its usage text is of no use here; ask again the way Xen's xl
         * asks, and send the version every reader takes. */
        xl_relay_set(t.relay, RELAY_DROP);
        xl_transport_end(&t, false, XL_TRANSPORT_EXIT_WAIT_MS);
        if (!stream_version)
            stream_version = FALLBACK_STREAM_VERSION;
        fprintf(stderr, "migration sender: the receiver does not negotiate stream versions (Tandem 1.0.0 or Xen's "
                        "xl): retrying with stream version %u\n", stream_version);
        if (!ssh[0])
            snprintf(rune, sizeof(rune), "%s %s%s migrate-receive%s", host, xl_there, s.debug ? " -v" : "", flags);
        else
            snprintf(rune, sizeof(rune), "exec %s %s %s%s migrate-receive%s", ssh, host, xl_there,
                     s.debug ? " -v" : "", flags);
        if ((rc = xl_transport_start(&t, rune, false, false))) {
            tlog_error(&ctx->log, "cannot start the transport '%s' : %s", rune, strerror(-rc));
            return XL_FAILED;
        }
        rc = expect_message(ctx, t.recv_fd, XL_BANNER, sizeof(XL_BANNER) - 1, "waiting for the receiver's banner",
                            XL_BANNER_TIMEOUT_MS);
        if (rc) {
            failure = "the receiver did not start";
            goto failed_resume;
        }
    } else {
        /* Whatever the receiver said on stderr is worth reading now. */
        xl_relay_set(t.relay, RELAY_LIVE);
        if (rc) {
            tlog_error(&ctx->log, "waiting for the receiver's banner : %s", xl_transport_error(rc));
            failure = "the receiver did not start";
            goto failed_resume;
        }
        if (memcmp(got_banner, XL_BANNER, sizeof(got_banner)) != 0) {
            tlog_error(&ctx->log, "waiting for the receiver's banner : got something else from the other end");
            failure = "the receiver did not start";
            goto failed_resume;
        }
        if (read_offer(ctx, t.recv_fd, &offer)) {
            failure = "the receiver did not negotiate the stream version";
            goto failed_resume;
        }
        if (choose_stream_version(ctx, &offer, stream_version, &stream_version)) {
            failure = "the receiver cannot read the stream version needed";
            goto failed_resume;
        }
        receiver_release = offer.release;
        if (!s.json)
            fprintf(stderr, "migration sender: receiver is Tandem %s, stream version %u\n", offer.release,
                    stream_version);
    }
    if ((rc = xl_write_xl_header(t.send_fd, config_json, &ctx->log))) {
        failure = "the receiver did not start";
        goto failed_resume;
    }
    snprintf(opts, sizeof(opts), "save live max_downtime_ms=%u max_iters=%u bandwidth=%llu stream_version=%u%s%s%s",
             downtime, iters, bandwidth_mb * 1000000ULL, stream_version,
             logdirty != DOMAIN_LOGDIRTY_AUTO ? " logdirty=" : "",
             logdirty != DOMAIN_LOGDIRTY_AUTO ? domain_logdirty_mode_name(logdirty) : "", compress ? " compress" : "");
    if (!s.json)
        fprintf(stderr, "migration sender: sending domain %s (%u) to '%s'\n", e.name, e.domid, host);
    rc = control_command_progress(&ctx->paths, e.domid, opts, t.send_fd, on_progress, &s, summary, sizeof(summary),
                                  &ctx->log);
    if (rc) {
        failure = "sending the domain failed";
        goto failed_resume;
    }
    if ((rc = expect_message(ctx, t.recv_fd, receiver_ready, sizeof(receiver_ready), "waiting for the receiver's "
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
    if ((rc = xl_write_exact(t.send_fd, permission_to_go, sizeof(permission_to_go))) ||
        (rc = expect_message(ctx, t.recv_fd, report, sizeof(report), "waiting for the receiver's report",
                             HANDSHAKE_TIMEOUT_MS)) ||
        (rc = xl_read_exact(t.recv_fd, &status, 1, HANDSHAKE_TIMEOUT_MS))) {
        /* We cannot know whether the target runs the guest: leave ours
         * paused and renamed, as Xen does, for the operator to decide. */
        tlog_error(&ctx->log, "lost the receiver after giving it permission to start; the source domain is "
                   "left paused as %s", away);
        failure = "lost the receiver after permission to start";
        xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
        if (s.json)
            print_json("failed", failure, xl_now_usec() - start, 0, summary, receiver_release);
        return XL_FAILED;
    }
    downtime_usec = s.paused_at ? xl_now_usec() - s.paused_at : 0;
    if (status) {
        tlog_error(&ctx->log, "the target reports startup failure (status %d)", status);
        expect_message(ctx, t.recv_fd, permission_to_go, sizeof(permission_to_go),
                       "waiting for permission to resume", HANDSHAKE_TIMEOUT_MS);
        failure = "the target could not start the domain";
        goto failed_resume;
    }
    if (!s.json)
        fprintf(stderr, "migration sender: Target reports successful startup.\n");
    xl_destroy_domain(ctx, &e);
    xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
    if (s.json) {
        print_json("ok", NULL, xl_now_usec() - start, downtime_usec, summary, receiver_release);
    } else {
        fprintf(stderr, "Migration successful.\n");
        print_summary(xl_now_usec() - start, downtime_usec, summary);
    }
    return XL_OK;

failed_resume:
    /* Our end of the stream first: the receiver sees it end and gives up. */
    xl_close_fd(&t.send_fd);
    if (renamed) {
        snprintf(rename_cmd, sizeof(rename_cmd), "rename %s", e.name);
        control_command(&ctx->paths, e.domid, rename_cmd, NULL, 0, &ctx->log);
    }
    /* The live save left the guest paused; it goes on as if nothing had
     * happened. */
    struct registry_entry now;
    if (was_running && registry_find(&ctx->paths, e.name, &now, NULL) == 0 && now.state == DOMAIN_STATE_PAUSED)
        control_command(&ctx->paths, e.domid, "unpause", NULL, 0, &ctx->log);
    xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
    tlog_error(&ctx->log, "%s; domain %s is still %s here", failure, e.name, was_running ? "running" : "paused");
    if (s.json)
        print_json("failed", failure, xl_now_usec() - start, 0, summary, receiver_release);
    else
        fprintf(stderr, "Migration failed.\n");
    return XL_FAILED;
}

/* ---- Receiver ---------------------------------------------------------- */

int xl_cmd_migrate_receive(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("migrate-receive");
    enum { OPT_NEGOTIATE = 256, OPT_INTERVAL, OPT_TIMEOUT, OPT_WITNESS, OPT_FENCE, OPT_FENCE_TIMEOUT, OPT_PRIMARY };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "negotiate", no_argument, NULL, OPT_NEGOTIATE },
        { "interval", required_argument, NULL, OPT_INTERVAL },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "witness", required_argument, NULL, OPT_WITNESS },
        { "fence", required_argument, NULL, OPT_FENCE },
        { "fence-timeout", required_argument, NULL, OPT_FENCE_TIMEOUT },
        { "primary", required_argument, NULL, OPT_PRIMARY },
        { 0 } };
    bool paused = false, compress = false, negotiate = false, remus = false, remus_nocompress = false;
    unsigned remus_interval = 200, remus_timeout = 0, fence_timeout = 0;
    const char *witness = NULL, *fence = NULL, *primary = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hdepzru", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': case 'e': break; /* xl's debug / no-daemonize: accepted */
        case 'p': paused = true; break;
        case 'z': compress = true; break; /* Tandem's: accept lz4-compressed pages */
        case OPT_NEGOTIATE: negotiate = true; break; /* Tandem's, since 1.1.0: say what we read */
        case 'r': remus = true; break;   /* Xen's: a Remus backup (xl remus runs us so) */
        case 'u': remus_nocompress = true; break;
        case OPT_INTERVAL:
            if (xl_parse_uint(ctx, "--interval", optarg, 1, REMUS_MAX_INTERVAL_MS, &remus_interval))
                return XL_USAGE;
            break;
        case OPT_TIMEOUT:
            if (xl_parse_uint(ctx, "--timeout", optarg, 0, REMUS_MAX_TIMEOUT_MS, &remus_timeout))
                return XL_USAGE;
            break;
        case OPT_WITNESS: witness = optarg; break;
        case OPT_FENCE: fence = optarg; break;
        case OPT_FENCE_TIMEOUT:
            if (xl_parse_uint(ctx, "--fence-timeout", optarg, 1, REMUS_FENCE_MAX_TIMEOUT_S, &fence_timeout))
                return XL_USAGE;
            break;
        case OPT_PRIMARY: primary = optarg; break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc != optind ||
        (!remus && (witness || remus_timeout || remus_nocompress || fence || fence_timeout || primary)) ||
        (remus && (paused || negotiate)) || ((fence_timeout || primary) && !fence))
        return xl_usage(cmd, true);
    /* The same options as the control line will carry them, checked
     * before the banner: a refusal now leaves the primary unprotected but
     * told why, rather than a backup that fails at its first checkpoint. */
    char remus_opts[400] = "";
    if (remus) {
        int n = snprintf(remus_opts, sizeof(remus_opts), "interval_ms=%u", remus_interval);
        if (remus_timeout)
            n += snprintf(remus_opts + n, sizeof(remus_opts) - (size_t)n, " timeout_ms=%u", remus_timeout);
        if (remus_nocompress)
            n += snprintf(remus_opts + n, sizeof(remus_opts) - (size_t)n, " nocompress");
        if (witness) {
            struct sockaddr_storage wsa;
            socklen_t wlen;
            char why[300];
            if (remus_witness_parse(witness, &wsa, &wlen, why, sizeof(why))) {
                tlog_error(&ctx->log, "--witness : %s", why);
                return XL_USAGE;
            }
            n += snprintf(remus_opts + n, sizeof(remus_opts) - (size_t)n, " witness=%s", witness);
        }
        if (fence) {
            n += snprintf(remus_opts + n, sizeof(remus_opts) - (size_t)n, " fence_timeout_s=%u",
                          fence_timeout ? fence_timeout : REMUS_FENCE_DEFAULT_TIMEOUT_S);
            if (!fence[0] || xl_remus_append_word(remus_opts, sizeof(remus_opts), "fence", fence) ||
                (primary && xl_remus_append_word(remus_opts, sizeof(remus_opts), "primary", primary))) {
                tlog_error(&ctx->log, "--fence : the command is %s", fence[0] ? "too long" : "empty");
                return XL_USAGE;
            }
        }
    }
    const int recv_fd = STDIN_FILENO, send_fd = STDOUT_FILENO;
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "migration target: Ready to receive domain%s.\n",
            remus ? " (Remus backup)" : compress ? " (lz4 compression accepted)" : "");
    if (xl_open_host(ctx) || xl_write_exact(send_fd, XL_BANNER, sizeof(XL_BANNER) - 1))
        return XL_FAILED;
    if (negotiate) {
        /* Right after the banner, before the sender writes a byte: who we
         * are and which libxc image versions we read (see the top). */
        _Static_assert(sizeof(PACKAGE_VERSION) <= sizeof(((struct negotiation_offer *)0)->release),
                       "the release must fit in the negotiation line's release=");
        struct negotiation_offer ours = { .release = PACKAGE_VERSION, .streams = NEGOTIATION_STREAMS_OURS };
        char line[NEGOTIATION_LINE_MAX + 1];
        int n = negotiation_format_line(&ours, line, sizeof(line));
        if (n < 0) {
            tlog_error(&ctx->log, "cannot write the negotiation line for release %s : %s", PACKAGE_VERSION,
                       strerror(-n));
            return XL_FAILED;
        }
        if (xl_write_exact(send_fd, line, (size_t)n))
            return XL_FAILED;
    }

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
    if (remus) {
        /* The backup's domain process reads the stream itself, paused
         * throughout, and serves its control socket meanwhile. */
        if (xl_spawn_domain(ctx, &c, true, recv_fd, "remus", &domid, summary, sizeof(summary))) {
            fprintf(stderr, "migration target: Domain creation failed.\n");
            return XL_FAILED;
        }
        return xl_remus_receive(ctx, domid, name, remus_opts, send_fd);
    }
    if (xl_spawn_domain(ctx, &c, true, recv_fd, compress ? "compress" : NULL, &domid, summary, sizeof(summary))) {
        fprintf(stderr, "migration target: Domain creation failed.\n");
        return XL_FAILED;
    }
    fprintf(stderr, "migration target: Transfer complete, requesting permission to start domain (%s).\n", summary);
    if (xl_write_exact(send_fd, receiver_ready, sizeof(receiver_ready)))
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
    if (xl_write_exact(send_fd, report, sizeof(report)) || xl_write_exact(send_fd, &status, 1))
        return XL_FAILED;
    if (!rc)
        return XL_OK;
    fprintf(stderr, "migration target: Failure, destroying our copy.\n");
    struct registry_entry e;
    if (registry_find(&ctx->paths, c.name, &e, NULL) == 0 || registry_find(&ctx->paths, name, &e, NULL) == 0)
        xl_destroy_domain(ctx, &e);
    xl_write_exact(send_fd, permission_to_go, sizeof(permission_to_go));
    return XL_FAILED;

destroy: {
        struct registry_entry e;
        if (registry_find(&ctx->paths, c.name, &e, NULL) == 0)
            xl_destroy_domain(ctx, &e);
        return XL_FAILED;
    }
}
