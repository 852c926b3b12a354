/* Unit tests of the backup's split-brain guard in remus/hooks.c: the
 * witness spec parser (xl remus --witness) and the fence command runner
 * (xl remus --fence), no KVM needed; and the secondary's longer timeout
 * before its first checkpoint (remus/secondary.c), on a replica domain
 * (needs /dev/kvm; skipped, saying so, without it). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check_main.h"
#include "remus_internal.h"
#include "rig_domain.h"
#include "tandem/log.h"
#include "tandem/remus.h"

/* ---- The witness spec ---------------------------------------------------- */

static void parse_ok(const char *spec, int family, const char *numeric)
{
    struct sockaddr_storage sa;
    socklen_t len = 0;
    char why[300] = "", out[80];
    int rc = remus_witness_parse(spec, &sa, &len, why, sizeof(why));
    ck_assert_msg(rc == 0, "'%s' refused (%d): %s", spec, rc, why);
    ck_assert_int_eq(sa.ss_family, family);
    ck_assert_uint_eq(len, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    ck_assert_int_eq(remus_witness_format(&sa, out, sizeof(out)), 0);
    ck_assert_str_eq(out, numeric);
}

static void parse_refused(const char *spec, const char *why_part)
{
    struct sockaddr_storage sa;
    socklen_t len = 0;
    char why[300] = "";
    int rc = remus_witness_parse(spec, &sa, &len, why, sizeof(why));
    ck_assert_msg(rc == -EINVAL, "'%s' gave %d, not -EINVAL", spec ? spec : "(null)", rc);
    ck_assert_msg(strstr(why, why_part), "'%s': expected '%s' in: %s", spec ? spec : "(null)", why_part, why);
}

START_TEST(witness_ipv4)
{
    parse_ok("10.0.0.1:7201", AF_INET, "10.0.0.1:7201");
    parse_ok("127.0.0.1:1", AF_INET, "127.0.0.1:1");
    parse_ok("192.168.100.201:65535", AF_INET, "192.168.100.201:65535");
    struct sockaddr_storage sa;
    socklen_t len;
    char why[300];
    ck_assert_int_eq(remus_witness_parse("10.1.2.3:80", &sa, &len, why, sizeof(why)), 0);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
    ck_assert_uint_eq(ntohs(in->sin_port), 80);
    ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0x0a010203u);
}
END_TEST

START_TEST(witness_ipv6)
{
    parse_ok("[::1]:7201", AF_INET6, "[::1]:7201");
    parse_ok("[fd00:0:0:0::201]:9", AF_INET6, "[fd00::201]:9");   /* the numeric form is the short one */
    parse_ok("[::ffff:10.0.0.1]:5", AF_INET6, "[::ffff:10.0.0.1]:5");
    struct sockaddr_storage sa;
    socklen_t len;
    char why[300];
    ck_assert_int_eq(remus_witness_parse("[2001:db8::7]:4242", &sa, &len, why, sizeof(why)), 0);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
    ck_assert_uint_eq(ntohs(in6->sin6_port), 4242);
    ck_assert_uint_eq(in6->sin6_addr.s6_addr[0], 0x20);
    ck_assert_uint_eq(in6->sin6_addr.s6_addr[15], 7);
}
END_TEST

START_TEST(witness_host_name)
{
    /* localhost is in /etc/hosts everywhere this runs; no DNS needed. */
    struct sockaddr_storage sa;
    socklen_t len;
    char why[300] = "", out[80];
    ck_assert_msg(remus_witness_parse("localhost:7201", &sa, &len, why, sizeof(why)) == 0, "%s", why);
    ck_assert(sa.ss_family == AF_INET || sa.ss_family == AF_INET6);
    ck_assert_int_eq(remus_witness_format(&sa, out, sizeof(out)), 0);
    ck_assert_msg(!strcmp(out, "127.0.0.1:7201") || !strcmp(out, "[::1]:7201"), "localhost is %s", out);
}
END_TEST

START_TEST(witness_malformed)
{
    parse_refused(NULL, "empty");
    parse_refused("", "empty");
    parse_refused("10.0.0.1", "no port");
    parse_refused("10.0.0.1:", "port must be a number");
    parse_refused("10.0.0.1:0", "port must be a number");
    parse_refused("10.0.0.1:65536", "port must be a number");
    parse_refused("10.0.0.1:-5", "port must be a number");
    parse_refused("10.0.0.1:+5", "port must be a number");
    parse_refused("10.0.0.1:80x", "port must be a number");
    parse_refused("10.0.0.1: 80", "port must be a number");
    parse_refused(":80", "no address");
    parse_refused("::1:80", "needs brackets");
    parse_refused("fd00::1:80", "needs brackets");
    parse_refused("[::1]", "[ADDR]:PORT");
    parse_refused("[::1]80", "[ADDR]:PORT");
    parse_refused("[::1:80", "[ADDR]:PORT");
    parse_refused("[]:80", "no address");
    parse_refused("[10.0.0.1]:80", "IPv6 address");       /* brackets are for IPv6 only */
    parse_refused("[not-v6]:80", "IPv6 address");
    parse_refused("[::1]:0", "port must be a number");
    parse_refused("300.1.1.1.invalid:80", "host '300.1.1.1.invalid'");
    /* A name for a witness that no resolver knows (.invalid is reserved). */
    parse_refused("no-such-host.invalid:80", "host 'no-such-host.invalid'");
}
END_TEST

START_TEST(witness_format_bounds)
{
    struct sockaddr_storage sa;
    socklen_t len;
    char why[300], small[8];
    ck_assert_int_eq(remus_witness_parse("[2001:db8::7]:4242", &sa, &len, why, sizeof(why)), 0);
    ck_assert_int_eq(remus_witness_format(&sa, small, sizeof(small)), -E2BIG);
    memset(&sa, 0, sizeof(sa));
    sa.ss_family = AF_UNIX;
    ck_assert_int_eq(remus_witness_format(&sa, small, sizeof(small)), -EINVAL);
}
END_TEST

/* ---- The control line's encoded words ------------------------------------ */

START_TEST(option_decode)
{
    char out[64];
    ck_assert_int_eq(remus_option_decode("/usr/bin/fence%20--host%20%25x", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/usr/bin/fence --host %x");
    ck_assert_int_eq(remus_option_decode("a%27b%0Ac", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "a'b\nc");
    ck_assert_int_eq(remus_option_decode("", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(remus_option_decode("bad%2", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(remus_option_decode("bad%", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(remus_option_decode("bad%zz", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(remus_option_decode("nul%00", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(remus_option_decode("toolong", out, 4), -EINVAL);
    ck_assert_int_eq(remus_option_decode("fits", out, 5), 0);
    ck_assert_str_eq(out, "fits");
    ck_assert_int_eq(remus_option_decode("%4a%4A", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "JJ");
}
END_TEST

START_TEST(option_encode)
{
    char out[64], back[64];
    ck_assert_int_eq(remus_option_encode("/usr/bin/fence --host %x\n\xff", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/usr/bin/fence%20--host%20%25x%0A%FF");
    ck_assert_int_eq(remus_option_decode(out, back, sizeof(back)), 0);
    ck_assert_str_eq(back, "/usr/bin/fence --host %x\n\xff");
    ck_assert_int_eq(remus_option_encode("", out, 1), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(remus_option_encode("abc", out, 4), 0);
    ck_assert_int_eq(remus_option_encode("abcd", out, 4), -E2BIG);
    ck_assert_int_eq(remus_option_encode("a b", out, 5), -E2BIG);   /* "a%20b" needs 6 */
    ck_assert_int_eq(remus_option_encode("a b", out, 6), 0);
    ck_assert_int_eq(remus_option_encode("x", out, 0), -E2BIG);
}
END_TEST

/* ---- The fence command ---------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_remus_hooks.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) { /* a leftover in /tmp: harmless */ }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(fence_success)
{
    struct tlog_buffer lb;
    struct remus_fence_result r;
    tlog_buffer_init(&lb);
    int rc = remus_fence_run("echo powering off; echo done >&2; exit 0", "kv", "10.0.0.1", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert(!r.timed_out);
    ck_assert_int_eq(r.signal, 0);
    ck_assert_str_eq(r.last_stderr, "done");
    ck_assert_msg(r.elapsed_ms < 4000, "took %llu ms", (unsigned long long)r.elapsed_ms);
}
END_TEST

START_TEST(fence_failure)
{
    struct tlog_buffer lb;
    struct remus_fence_result r;
    tlog_buffer_init(&lb);
    int rc = remus_fence_run("echo first >&2; echo 'ipmi: no answer from the BMC' >&2; echo stdout line; exit 1",
                             "kv", "10.0.0.1", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_int_eq(r.status, 1);
    ck_assert(!r.timed_out);
    ck_assert_str_eq(r.last_stderr, "ipmi: no answer from the BMC");
    /* Its output lines are in the log, naming the stream they came on. */
    rc = remus_fence_run("exit 7", "kv", "p", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_int_eq(r.status, 7);
    ck_assert_str_eq(r.last_stderr, "");
    /* A line without its newline still counts. */
    rc = remus_fence_run("printf 'no newline' >&2; exit 2", "kv", "p", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_str_eq(r.last_stderr, "no newline");
    /* A command that does not exist: sh says so, status 127. */
    rc = remus_fence_run("/nonexistent/fence-it", "kv", "p", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_int_eq(r.status, 127);
    ck_assert_msg(strstr(r.last_stderr, "fence-it"), "last stderr: %s", r.last_stderr);
    /* Killed by a signal: not a success either. */
    rc = remus_fence_run("kill -KILL $$", "kv", "p", NULL, 5000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_int_eq(r.status, -1);
    ck_assert_int_eq(r.signal, SIGKILL);
    ck_assert_int_eq(remus_fence_run("", "kv", "p", NULL, 5000, &r, &lb.log), -EINVAL);
}
END_TEST

START_TEST(fence_timeout_kills_the_group)
{
    struct tlog_buffer lb;
    struct remus_fence_result r;
    char cmd[512], pidfile[128];
    make_tmpdir();
    tlog_buffer_init(&lb);
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", tmpdir);
    /* The command starts a child of its own (as a fence agent's helper
     * would), then both hang. */
    snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > '%s'; echo waiting for the PDU >&2; sleep 60", pidfile);
    uint64_t t0 = now_ms();
    int rc = remus_fence_run(cmd, "kv", "10.0.0.1", NULL, 700, &r, &lb.log);
    uint64_t took = now_ms() - t0;
    ck_assert_int_eq(rc, -ETIMEDOUT);
    ck_assert(r.timed_out);
    ck_assert_int_eq(r.status, -1);
    ck_assert_msg(took >= 650 && took < 5000, "the timeout of 700 ms took %llu ms", (unsigned long long)took);
    ck_assert_str_eq(r.last_stderr, "waiting for the PDU");
    char *pid_text = slurp(pidfile);
    ck_assert_ptr_nonnull(pid_text);
    pid_t child = (pid_t)atoi(pid_text);
    ck_assert_int_gt(child, 1);
    /* The background sleep was in the group: killed too (it may take a
     * moment to be reaped by init, so look for a while). */
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        char stat_path[64], *st;
        snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)child);
        st = slurp(stat_path);
        const char *close_paren = st ? strrchr(st, ')') : NULL;
        gone = !st || (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
        if (!gone)
            usleep(20000);
    }
    ck_assert_msg(gone, "the fence command's own child %d outlived the timeout", (int)child);
    remove_tmpdir();
}
END_TEST

START_TEST(fence_environment)
{
    struct tlog_buffer lb;
    struct remus_fence_result r;
    char cmd[512], out[128];
    make_tmpdir();
    tlog_buffer_init(&lb);
    snprintf(out, sizeof(out), "%s/env", tmpdir);
    /* What the caller's environment had is replaced, the rest is kept. */
    setenv("TANDEM_DOMAIN", "stale", 1);
    setenv("TEST_REMUS_HOOKS_KEPT", "yes", 1);
    snprintf(cmd, sizeof(cmd), "echo \"d=$TANDEM_DOMAIN p=$TANDEM_PRIMARY w=${TANDEM_WITNESS-unset} "
                               "k=$TEST_REMUS_HOOKS_KEPT\" > '%s'", out);
    ck_assert_int_eq(remus_fence_run(cmd, "kv", "10.0.0.1", NULL, 5000, &r, &lb.log), 0);
    ck_assert_str_eq(slurp(out), "d=kv p=10.0.0.1 w=unset k=yes\n");
    ck_assert_int_eq(remus_fence_run(cmd, "web--1", "fd00::201", "[fd00::201]:7201", 5000, &r, &lb.log), 0);
    ck_assert_str_eq(slurp(out), "d=web--1 p=fd00::201 w=[fd00::201]:7201 k=yes\n");
    /* The caller's own environment is untouched. */
    ck_assert_str_eq(getenv("TANDEM_DOMAIN"), "stale");
    unsetenv("TANDEM_DOMAIN");
    unsetenv("TEST_REMUS_HOOKS_KEPT");
    remove_tmpdir();
}
END_TEST

START_TEST(fence_clean_process_state)
{
    /* The domain process blocks SIGTERM (a signalfd takes it), ignores
     * SIGPIPE and holds fds without close-on-exec: none of that may reach
     * the command, or `kill` and pipes in a fence script misbehave. */
    struct tlog_buffer lb;
    struct remus_fence_result r;
    tlog_buffer_init(&lb);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    int fd = open("/dev/null", O_RDONLY);   /* no O_CLOEXEC */
    ck_assert_int_ge(fd, 3);
    int rc = remus_fence_run("kill -TERM $$; sleep 5; exit 0", "kv", "p", NULL, 3000, &r, &lb.log);
    ck_assert_int_eq(rc, -ECHILD);
    ck_assert_int_eq(r.signal, SIGTERM);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "test ! -e /proc/$$/fd/%d", fd);
    rc = remus_fence_run(cmd, "kv", "p", NULL, 3000, &r, &lb.log);
    ck_assert_msg(rc == 0, "fd %d reached the fence command (status %d)", fd, r.status);
    /* stdin is /dev/null: a command that reads it does not hang. */
    ck_assert_int_eq(remus_fence_run("cat; exit 0", "kv", "p", NULL, 3000, &r, &lb.log), 0);
    close(fd);
    signal(SIGPIPE, old_pipe);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

START_TEST(fence_exits_while_a_child_holds_its_pipes)
{
    /* The command is done when it exits, even if something it started in
     * the background still has its stderr. */
    struct tlog_buffer lb;
    struct remus_fence_result r;
    tlog_buffer_init(&lb);
    uint64_t t0 = now_ms();
    int rc = remus_fence_run("sleep 3 & echo off >&2; exit 0", "kv", "p", NULL, 10000, &r, &lb.log);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(r.last_stderr, "off");
    ck_assert_msg(now_ms() - t0 < 2500, "waited %llu ms for the background child",
                  (unsigned long long)(now_ms() - t0));
}
END_TEST

/* ---- The first-byte timeout ---------------------------------------------- */

struct late_writer {
    int fd;
    unsigned after_ms;
};

/* Closes the stream's write end after a while: the primary gave up. */
static void *close_late(void *arg)
{
    struct late_writer *w = arg;
    usleep(w->after_ms * 1000u);
    close(w->fd);
    return NULL;
}

/* A replica waiting for a primary that says nothing: with first_ms set,
 * with the per-epoch timeout much shorter.  Returns the result and how
 * long it took; close_after_ms (0: never) ends the stream instead. */
static int silent_primary(unsigned timeout_ms, unsigned first_ms, unsigned close_after_ms, uint64_t *took_ms,
                          struct remus_secondary_summary *sum)
{
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("first-byte", 1, true, NULL, NULL, con, &lb.log);
    int p[2], ack[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(pipe(ack), 0);
    struct late_writer w = { .fd = p[1], .after_ms = close_after_ms };
    pthread_t t;
    if (close_after_ms)
        ck_assert_int_eq(pthread_create(&t, NULL, close_late, &w), 0);
    struct remus_secondary_opts o = { .timeout_ms = timeout_ms, .first_timeout_ms = first_ms, .compress = true };
    uint64_t t0 = now_ms();
    int rc = remus_secondary_run(d, p[0], ack[1], &o, sum, &lb.log);
    *took_ms = now_ms() - t0;
    if (close_after_ms)
        pthread_join(t, NULL);
    else
        close(p[1]);
    close(p[0]);
    close(ack[0]);
    close(ack[1]);
    domain_destroy(d);
    free(con);
    return rc;
}

START_TEST(first_byte_waits_longer_than_an_epoch)
{
    if (!rig_have_kvm()) {
        fprintf(stderr, "test_remus_hooks: SKIP first_byte_waits_longer_than_an_epoch: no /dev/kvm\n");
        return;
    }
    struct remus_secondary_summary sum;
    uint64_t took;
    /* Silent for 4 per-epoch timeouts, then the stream ends: the replica
     * waited (no -ETIMEDOUT) and saw the end. */
    int rc = silent_primary(200, 3000, 800, &took, &sum);
    ck_assert_msg(rc == -EPIPE, "gave %d (%s), not -EPIPE, after %llu ms", rc, sum.why_text,
                  (unsigned long long)took);
    ck_assert_msg(took >= 750, "returned after %llu ms, before the stream ended", (unsigned long long)took);
    /* Silent for good: the first-byte timeout ends it, and says so. */
    rc = silent_primary(200, 700, 0, &took, &sum);
    ck_assert_msg(rc == -ETIMEDOUT, "gave %d (%s), not -ETIMEDOUT", rc, sum.why_text);
    ck_assert_msg(took >= 650 && took < 3000, "the first-byte timeout of 700 ms took %llu ms",
                  (unsigned long long)took);
    ck_assert_msg(strstr(sum.why_text, "for 700 ms before its first checkpoint"), "why: %s", sum.why_text);
}
END_TEST

Suite *unit_suite(void)
{
    rig_find_guest_kernel("test_remus_hooks");
    Suite *s = suite_create("remus_hooks");
    TCase *w = tcase_create("witness");
    tcase_add_test(w, witness_ipv4);
    tcase_add_test(w, witness_ipv6);
    tcase_add_test(w, witness_host_name);
    tcase_add_test(w, witness_malformed);
    tcase_add_test(w, witness_format_bounds);
    tcase_add_test(w, option_decode);
    tcase_add_test(w, option_encode);
    suite_add_tcase(s, w);
    TCase *f = tcase_create("fence");
    tcase_set_timeout(f, 30);
    tcase_add_test(f, fence_success);
    tcase_add_test(f, fence_failure);
    tcase_add_test(f, fence_timeout_kills_the_group);
    tcase_add_test(f, fence_environment);
    tcase_add_test(f, fence_clean_process_state);
    tcase_add_test(f, fence_exits_while_a_child_holds_its_pipes);
    suite_add_tcase(s, f);
    TCase *fb = tcase_create("first_byte");
    tcase_set_timeout(fb, 60);
    tcase_add_test(fb, first_byte_waits_longer_than_an_epoch);
    suite_add_tcase(s, fb);
    return s;
}
