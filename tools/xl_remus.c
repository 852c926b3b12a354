/* xl remus, and xl migrate-receive -r (the backup's side).
 *
 * As in Xen's xl (tools/xl/xl_migrate.c, main_remus): the sender runs
 * `<sshcommand> <host> xl migrate-receive -r` with pipes on its standard
 * input and output, reads the receiver's banner, sends the xl save-file
 * header with the domain's config, and then the checkpointed stream: the
 * live migration's rounds, epoch 0, and an epoch every interval.  There is
 * no ready / permission-to-go exchange: the backup stays paused until the
 * stream ends.  The pipe back from the receiver carries its acks.
 *
 * The primary's protection runs in its domain process ("remus" control
 * command, with both pipe ends handed over); xl remus prints the epochs
 * and ends when protection does: Ctrl-C stops it cleanly (exit 0); a lost
 * backup leaves the guest running unprotected (exit 1, said loudly).
 *
 * The backup's domain process reads the stream itself, in a job thread,
 * and decides alone: END records -> the replica is destroyed; the stream
 * gone and the witness silent -> failover (unpause, rename <name>--incoming
 * to <name>); the stream gone but the witness answering for the primary
 * -> no takeover, the replica is destroyed; with --fence, the witness
 * silent (or none) -> the operator's fence command on the backup's host,
 * and a takeover only if it succeeds.  xl migrate-receive -r only
 * reports what it decided, so the failover does not depend on that xl (or
 * the ssh it runs under) living. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include "tandem/remus.h"
#include "xl.h"
#include "xl_transport.h"

/* s in single quotes for sh ('\'' for a quote); -E2BIG if it does not fit. */
static int shell_quote(char *out, size_t len, const char *s)
{
    size_t o = 0;
    if (len < 3)
        return -E2BIG;
    out[o++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t pl = piece ? 4 : 1;
        if (o + pl + 2 > len)
            return -E2BIG;
        if (piece)
            memcpy(out + o, piece, pl);
        else
            out[o] = *s;
        o += pl;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return 0;
}

/* An argument of the receiver's command line: quoted once for the sh that
 * runs the rune, and once more under ssh, which hands the words it is
 * given to the remote shell joined by spaces. */
static int rune_arg(char *out, size_t len, const char *s, bool ssh)
{
    if (!ssh)
        return shell_quote(out, len, s);
    char once[2048];
    int rc = shell_quote(once, sizeof(once), s);
    return rc ? rc : shell_quote(out, len, once);
}

int xl_remus_append_word(char *opts, size_t len, const char *key, const char *value)
{
    size_t o = strlen(opts);
    int n = snprintf(opts + o, len - o, " %s=", key);
    if (n < 0 || (size_t)n >= len - o)
        return -E2BIG;
    o += (size_t)n;
    return remus_option_encode(value, opts + o, len - o);
}

/* ---- Epoch figures ------------------------------------------------------ */

struct remus_view {
    const char *name;
    bool tty, debug, blackhole;
    uint64_t epochs, last_epoch;
    uint64_t pause_us_sum, pause_us_max, ack_us_sum, bytes_sum;
    uint64_t last_line_usec;
};

static unsigned long long field_of(const char *line, const char *key)
{
    char k[40];
    snprintf(k, sizeof(k), "%s=", key);
    const char *p = strstr(line, k);
    while (p && p != line && p[-1] != ' ')
        p = strstr(p + 1, k);
    return p ? strtoull(p + strlen(k), NULL, 10) : 0;
}

static void on_epoch_line(void *opaque, const char *line)
{
    struct remus_view *v = opaque;
    if (strncmp(line, "epoch=", 6) != 0) {
        if (v->debug || !v->tty)
            fprintf(stderr, "remus: %s\n", line);
        return;
    }
    unsigned long long epoch = field_of(line, "epoch"), pause = field_of(line, "pause_us"),
                       pages = field_of(line, "pages"), bytes = field_of(line, "bytes"),
                       disk = field_of(line, "disk_bytes"), ack = field_of(line, "ack_us"),
                       held = field_of(line, "held_frames");
    if (v->epochs++ == 0 && v->blackhole)
        fprintf(stderr, "remus: domain %s is checkpointed to /dev/null: NOT protected\n", v->name);
    else if (v->epochs == 1)
        fprintf(stderr, "remus: domain %s is protected (epoch %llu acknowledged by the backup)\n", v->name, epoch);
    v->last_epoch = epoch;
    v->pause_us_sum += pause;
    v->ack_us_sum += ack;
    v->bytes_sum += bytes;
    if (pause > v->pause_us_max)
        v->pause_us_max = pause;
    uint64_t now = xl_now_usec();
    if (v->tty) {
        fprintf(stderr, "\rremus: epoch %llu: paused %.2f ms, %llu pages, %.1f KiB (disk %.1f KiB), ack %.2f ms, "
                        "%llu frames released   ",
                epoch, pause / 1000.0, pages, bytes / 1024.0, disk / 1024.0, ack / 1000.0, held);
    } else if (v->debug || now - v->last_line_usec >= 10000000u) {
        /* Not a terminal: a line every 10 s (every epoch with --debug). */
        fprintf(stderr, "remus: epoch %llu: paused %.2f ms, %llu pages, %llu bytes, disk %llu bytes, ack %.2f ms, "
                        "%llu frames released\n",
                epoch, pause / 1000.0, pages, bytes, disk, ack / 1000.0, held);
        v->last_line_usec = now;
    }
}

/* Keeps the domain process's answer text, to say it in our own words. */
static void keep_text(void *opaque, enum tlog_level level, const char *msg)
{
    (void)level;
    snprintf(opaque, 300, "%s", msg);
}

/* Ctrl-C (or a TERM) stops protection cleanly: our side of the control
 * connection is shut for sending, which the domain process takes as the
 * end of xl remus; its answer still comes back. */
static volatile sig_atomic_t stop_sock = -1;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_sock >= 0)
        shutdown(stop_sock, SHUT_WR);
}

int xl_cmd_remus(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("remus");
    enum { OPT_WITNESS = 256, OPT_DEBUG, OPT_TIMEOUT, OPT_DOWNTIME, OPT_FENCE, OPT_FENCE_TIMEOUT, OPT_NETBUF };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "witness", required_argument, NULL, OPT_WITNESS },
        { "fence", required_argument, NULL, OPT_FENCE },
        { "fence-timeout", required_argument, NULL, OPT_FENCE_TIMEOUT },
        { "netbuf", required_argument, NULL, OPT_NETBUF },
        { "debug", no_argument, NULL, OPT_DEBUG },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "max-downtime", required_argument, NULL, OPT_DOWNTIME },
        { 0 } };
    const char *ssh = "ssh", *cfgfile = NULL, *witness = NULL, *fence = NULL;
    bool unsafe = false, blackhole = false, no_netbuf = false, no_disk = false, no_compress = false,
         no_daemon = false, netbuf_plug = false;
    unsigned interval = 200, timeout = 0, downtime = 30, fence_timeout = REMUS_FENCE_DEFAULT_TIMEOUT_S;
    struct remus_view v = { 0 };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hFbundi:s:N:ecpC:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            if (xl_parse_uint(ctx, "-i", optarg, 1, REMUS_MAX_INTERVAL_MS, &interval))
                return XL_USAGE;
            break;
        case 'F': unsafe = true; break;
        case 'b': blackhole = true; break;
        case 'u': no_compress = true; break;
        case 'n': no_netbuf = true; break;
        case 'd': no_disk = true; break;
        case 's': ssh = optarg; break;
        case 'e': no_daemon = true; break;
        case 'C': cfgfile = optarg; break;
        case 'N':
            fprintf(stderr, "remus: -N %s ignored: Tandem buffers network output in its own device model, "
                            "no script is needed\n", optarg);
            break;
        case 'c': case 'p':
            tlog_error(&ctx->log, "-%c : COLO is not supported by this xl", opt);
            return XL_USAGE;
        case OPT_WITNESS: witness = optarg; break;
        case OPT_FENCE: fence = optarg; break;
        case OPT_FENCE_TIMEOUT:
            if (xl_parse_uint(ctx, "--fence-timeout", optarg, 1, REMUS_FENCE_MAX_TIMEOUT_S, &fence_timeout))
                return XL_USAGE;
            break;
        case OPT_NETBUF:
            if (strcmp(optarg, "vmm") && strcmp(optarg, "plug")) {
                tlog_error(&ctx->log, "--netbuf : 'vmm' or 'plug', not '%s'", optarg);
                return XL_USAGE;
            }
            netbuf_plug = !strcmp(optarg, "plug");
            break;
        case OPT_DEBUG: v.debug = true; break;
        case OPT_TIMEOUT:
            if (xl_parse_uint(ctx, "--timeout", optarg, 0, REMUS_MAX_TIMEOUT_MS, &timeout))
                return XL_USAGE;
            break;
        case OPT_DOWNTIME:
            if (xl_parse_uint(ctx, "--max-downtime", optarg, 0, 600000, &downtime))
                return XL_USAGE;
            break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if ((blackhole || no_netbuf || no_disk) && !unsafe) {
        tlog_error(&ctx->log, "-%s : needs unsafe mode (-F)", blackhole ? "b" : no_netbuf ? "n" : "d");
        return XL_USAGE;
    }
    if (netbuf_plug && no_netbuf) {
        tlog_error(&ctx->log, "--netbuf plug : -n turns output buffering off");
        return XL_USAGE;
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2 || (nargs == 1 && !blackhole))
        return xl_usage(cmd, true);
    if (netbuf_plug) {
        /* Asked here, before anything starts: the domain process asks
         * again (it is the one that builds the queues). */
        char why_not[200];
        if (!domain_net_buffer_probe(why_not, sizeof(why_not))) {
            tlog_error(&ctx->log, "--netbuf plug : not available on this host: %s", why_not);
            return XL_FAILED;
        }
    }
    const char *which = argv[optind], *host = nargs == 2 ? argv[optind + 1] : "/dev/null";
    char witness_addr[80];
    if (witness) {
        /* Here, not only in the backup: a typo would otherwise show only
         * at the failover that it breaks.  A host name is resolved once,
         * here, so that the address the domain process binds is the one
         * the backup probes. */
        struct sockaddr_storage wsa;
        socklen_t wlen;
        char why[300] = "its address cannot be written out";
        if (remus_witness_parse(witness, &wsa, &wlen, why, sizeof(why)) ||
            remus_witness_format(&wsa, witness_addr, sizeof(witness_addr))) {
            tlog_error(&ctx->log, "--witness : %s", why);
            return XL_USAGE;
        }
        if (wsa.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&wsa)->sin6_scope_id) {
            tlog_error(&ctx->log, "--witness %s : link-local addresses with a scope are not supported", witness);
            return XL_USAGE;
        }
        if (strcmp(witness_addr, witness))
            fprintf(stderr, "remus: witness %s is %s\n", witness, witness_addr);
        witness = witness_addr;
    }
    char fence_word[260] = "";
    if (fence && (!fence[0] || xl_remus_append_word(fence_word, 200, "fence", fence))) {
        /* It travels as one word of the backup's control line. */
        tlog_error(&ctx->log, "--fence : %s", fence[0] ? "the command is too long; put it in a script on the "
                                                         "backup's host and name that" : "the command is empty");
        return XL_USAGE;
    }
    if ((fence || witness) && blackhole)
        fprintf(stderr, "remus: -b: there is no backup; --witness and --fence do nothing\n");
    struct registry_entry e;
    char config_json[sizeof(e.config_json)];
    if (xl_domain_to_send(ctx, which, "protected", cfgfile, &e, config_json, sizeof(config_json)))
        return XL_FAILED;
    if (e.state != DOMAIN_STATE_RUNNING) {
        tlog_error(&ctx->log, "%s : the domain is %s; Remus protects a running domain", e.name,
                   domain_state_name(e.state));
        return XL_FAILED;
    }
    if (e.protection.state == DOMAIN_PROTECTION_SYNCING || e.protection.state == DOMAIN_PROTECTION_PROTECTED ||
        e.protection.state == DOMAIN_PROTECTION_BACKUP) {
        tlog_error(&ctx->log, "%s : already %s", e.name, domain_protection_name(e.protection.state));
        return XL_FAILED;
    }
    v.name = e.name;
    v.blackhole = blackhole;
    v.tty = isatty(STDERR_FILENO);
    if (unsafe)
        fprintf(stderr, "remus: UNSAFE mode (-F)%s%s%s: failover may not work as intended\n",
                blackhole ? ", checkpoints to /dev/null" : "", no_netbuf ? ", no network buffering" : "",
                no_disk ? ", no disk replication" : "");

    struct transport t = { .pid = -1, .send_fd = -1, .recv_fd = -1 };
    char self[4096], rune[8192], extra[4096] = "";
    if (blackhole) {
        t.send_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        t.recv_fd = t.send_fd >= 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
        if (t.send_fd < 0 || t.recv_fd < 0) {
            tlog_error(&ctx->log, "/dev/null : %s", strerror(errno));
            return XL_FAILED;
        }
    } else {
        int n = snprintf(extra, sizeof(extra), " --interval %u", interval);
        if (timeout)
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, " --timeout %u", timeout);
        char q[1800];
        /* Quoted: [v6]:port is a pattern to sh, and CMD has words. */
        if (witness && !rune_arg(q, sizeof(q), witness, ssh[0] != '\0'))
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, " --witness %s", q);
        if (fence) {
            char host[128] = "";
            if (gethostname(host, sizeof(host) - 1) < 0)
                host[0] = '\0';
            if (rune_arg(q, sizeof(q), fence, ssh[0] != '\0')) {
                tlog_error(&ctx->log, "--fence : the command is too long");
                return XL_USAGE;
            }
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, " --fence %s --fence-timeout %u", q, fence_timeout);
            if (host[0] && strlen(host) < 64 && !rune_arg(q, sizeof(q), host, ssh[0] != '\0'))
                n += snprintf(extra + n, sizeof(extra) - (size_t)n, " --primary %s", q);
        }
        if (no_compress)
            snprintf(extra + n, sizeof(extra) - (size_t)n, " -u");
        const char *xl_there = ssh[0] ? "xl" : xl_self_path(self, sizeof(self));
        int rn;
        if (!ssh[0])
            rn = snprintf(rune, sizeof(rune), "%s %s%s migrate-receive -r%s%s", host, xl_there,
                          v.debug ? " -v" : "", no_daemon ? " -e" : "", extra);
        else
            rn = snprintf(rune, sizeof(rune), "exec %s %s %s%s migrate-receive -r%s%s", ssh, host, xl_there,
                          v.debug ? " -v" : "", no_daemon ? " -e" : "", extra);
        /* A cut command line would run something other than asked. */
        if (rn < 0 || (size_t)rn >= sizeof(rune)) {
            tlog_error(&ctx->log, "the receiver's command line is longer than %zu bytes", sizeof(rune) - 1);
            return XL_USAGE;
        }
        /* Ctrl-C is for xl remus to turn into a clean stop; the receiver
         * must outlive it long enough to see the END records. */
        int rc = xl_transport_start(&t, rune, false, true);
        if (rc) {
            tlog_error(&ctx->log, "cannot start the transport '%s' : %s", rune, strerror(-rc));
            return XL_FAILED;
        }
        char got_banner[sizeof(XL_BANNER) - 1];
        rc = xl_read_exact(t.recv_fd, got_banner, sizeof(got_banner), XL_BANNER_TIMEOUT_MS);
        if (!rc && memcmp(got_banner, XL_BANNER, sizeof(got_banner)))
            rc = -EPROTO;
        if (!rc)
            rc = xl_write_xl_header(t.send_fd, config_json, &ctx->log);
        if (rc) {
            tlog_error(&ctx->log, "the backup did not start ('%s') : %s", rune,
                       rc == -EPROTO ? "it sent something other than the banner" : xl_transport_error(rc));
            xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
            return XL_FAILED;
        }
    }

    /* Where the backup is, for xl list: one word. */
    char peer[128];
    snprintf(peer, sizeof(peer), "%s", host);
    for (char *p = peer; *p; p++)
        if (*p == ' ' || *p == '\t')
            *p = '+';
    char opts[700];
    int on = snprintf(opts, sizeof(opts), "remus interval_ms=%u max_downtime_ms=%u peer=%s", interval, downtime, peer);
    if (timeout)
        on += snprintf(opts + on, sizeof(opts) - (size_t)on, " timeout_ms=%u", timeout);
    if (witness)
        on += snprintf(opts + on, sizeof(opts) - (size_t)on, " witness=%s", witness);
    snprintf(opts + on, sizeof(opts) - (size_t)on, "%s%s%s%s%s", no_compress ? " nocompress" : "",
             no_netbuf ? " nonetbuf" : "", netbuf_plug ? " netbuf=plug" : "", no_disk ? " nodisk" : "",
             blackhole ? " blackhole" : "");
    fprintf(stderr, "remus: protecting domain %s (%u) with a backup on '%s', a checkpoint every %u ms%s%s\n",
            e.name, e.domid, blackhole ? "/dev/null" : host, interval, witness ? ", witness " : "",
            witness ? witness : "");
    if (fence && !blackhole)
        fprintf(stderr, "remus: before a takeover the backup runs the fence command '%s' (at most %u s)%s\n", fence,
                fence_timeout, witness ? " if the witness is silent"
                : "; without a witness it powers this host off whenever the backup loses the stream, a cut "
                  "link too");
    int fds[2] = { t.send_fd, t.recv_fd };
    int sock = control_send_fds(&ctx->paths, e.domid, opts, fds, 2, &ctx->log);
    /* The domain process has its own copies now: when it goes, the
     * backup sees the stream end at once, not when xl remus does. */
    xl_close_fd(&t.send_fd);
    xl_close_fd(&t.recv_fd);
    if (sock < 0) {
        xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
        return XL_FAILED;
    }
    stop_sock = sock;
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    uint64_t start = xl_now_usec();
    char reply[2048] = "";
    char answer[300] = "";
    struct tlog keep = { .fn = keep_text, .opaque = answer, .min_level = TLOG_ERROR };
    int rc = control_wait_reply(sock, e.domid, opts, -1, on_epoch_line, &v, reply, sizeof(reply), &keep);
    stop_sock = -1;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (v.tty && v.epochs)
        fprintf(stderr, "\n");
    double secs = (double)(xl_now_usec() - start) / 1e6;
    char figures[300] = "";
    if (v.epochs)
        snprintf(figures, sizeof(figures), "%llu epochs in %.1f s, pause mean %.2f ms max %.2f ms, ack mean %.2f ms, "
                 "%.1f MiB sent", (unsigned long long)v.epochs, secs, v.pause_us_sum / 1000.0 / (double)v.epochs,
                 v.pause_us_max / 1000.0, v.ack_us_sum / 1000.0 / (double)v.epochs, v.bytes_sum / 1048576.0);
    if (rc == 0) {
        const char *how = strncmp(reply, "stopped", 7) == 0 ? reply + 7 + (reply[7] == ' ') : reply;
        fprintf(stderr, "remus: protection of domain %s stopped (%s)%s%s\n", e.name, how, figures[0] ? "; " : "",
                figures);
        xl_transport_end(&t, true, 2 * XL_TRANSPORT_EXIT_WAIT_MS);
        return XL_OK;
    }
    /* The domain process's answer, "error <errno> lost-backup|not-protected <why>". */
    struct registry_entry now;
    bool answered = strncmp(answer, "lost-backup ", 12) == 0 || strncmp(answer, "not-protected ", 14) == 0;
    /* No answer: the connection broke; a killed domain process may take
     * a moment to be gone from /proc. */
    bool alive = (answered || !xl_wait_gone(&e, 3000)) && registry_find(&ctx->paths, e.name, &now, NULL) == 0 &&
                 now.domid == e.domid;
    if (!alive) {
        fprintf(stderr, "remus: domain %s (%u) is gone: its domain process ended%s%s\n", e.name, e.domid,
                figures[0] ? "; " : "", figures);
        tlog_error(&ctx->log, "%s : the primary domain is gone (destroyed or its process died); the backup takes "
                   "over if it was protected", e.name);
    } else if (now.protection.state == DOMAIN_PROTECTION_UNPROTECTED) {
        fprintf(stderr, "remus: %s\n", figures[0] ? figures : "no epoch acknowledged");
        tlog_error(&ctx->log, "LOST THE BACKUP : %s; domain %s runs on UNPROTECTED", now.protection.detail, e.name);
    } else {
        /* "not-protected <why>", or a refusal before anything started. */
        const char *why = strncmp(answer, "not-protected ", 14) == 0 ? answer + 14 : answer;
        tlog_error(&ctx->log, "could not protect %s : %s; domain %s runs on unprotected, as before", e.name,
                   why[0] ? why : "the backup never acknowledged a checkpoint", e.name);
    }
    xl_transport_end(&t, true, XL_TRANSPORT_EXIT_WAIT_MS);
    return XL_FAILED;
}

/* ---- xl migrate-receive -r ------------------------------------------------ */

int xl_remus_receive(struct xl_ctx *ctx, unsigned domid, const char *name, const char *options, int ack_fd)
{
    char cmd[600];
    /* The backup's domain process keeps at most 399 bytes of it (after the
     * command word): too long an option line must fail here, not lose its
     * end there. */
    int cl = snprintf(cmd, sizeof(cmd), "remus-secondary name=%s %s", name, options);
    if (cl < 0 || (size_t)cl - strlen("remus-secondary ") >= 400) {
        tlog_error(&ctx->log, "remus : the backup's options are too long (%d bytes; a long --fence command? put it "
                   "in a script): %s", cl, options);
        close(ack_fd);
        return XL_FAILED;
    }
    fprintf(stderr, "migration target: Remus backup of %s is domain %u; receiving checkpoints\n", name, domid);
    char reply[2048] = "";
    int rc = control_command_fds(&ctx->paths, domid, cmd, &ack_fd, 1, NULL, NULL, reply, sizeof(reply), &ctx->log);
    /* The domain process owns the back channel now. */
    close(ack_fd);
    if (rc) {
        fprintf(stderr, "migration target: Remus backup failed; nothing is left of it\n");
        return XL_FAILED;
    }
    if (strncmp(reply, "failover ", 9) == 0) {
        fprintf(stderr, "migration target: Remus Failover for domain %u: %s\n", domid, reply + 9);
        return XL_OK;
    }
    if (strncmp(reply, "stopped", 7) == 0) {
        fprintf(stderr, "migration target: Remus stopped by the primary (%s); the replica is destroyed\n",
                reply[7] ? reply + 8 : "");
        return XL_OK;
    }
    if (strncmp(reply, "primary-alive ", 14) == 0) {
        /* The witness answered, or the fence command failed: the reply says which. */
        tlog_error(&ctx->log, "remus : %s : NOT taking over (split brain avoided); the replica is destroyed",
                   reply + 14);
        return XL_FAILED;
    }
    tlog_error(&ctx->log, "remus : unexpected answer from the backup's domain process: %s", reply);
    return XL_FAILED;
}
