/* Unit tests of the host domain registry (xen/registry.c) and the domain
 * config helpers it stores (xen/config.c). */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "tandem/xen.h"

static char dir[64];
static struct host_paths paths;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tandem-unit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(host_paths_init(&paths, dir, NULL), 0);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct domain_config cfg(const char *name)
{
    struct domain_config c;
    domain_config_init(&c);
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.kernel, sizeof(c.kernel), "/k");
    return c;
}

static bool exists(const char *fmt, unsigned v)
{
    char rel[64], path[256];
    struct stat st;
    snprintf(rel, sizeof(rel), fmt, v);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return stat(path, &st) == 0;
}

START_TEST(paths_layout)
{
    struct stat st;
    const char *sub[] = { "domains", "run", "console", "log" };
    for (int i = 0; i < 4; i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
    }
    char buf[256];
    host_paths_domain_socket(&paths, 7, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "/run/dom7.sock"));
    host_paths_console_log(&paths, "g1", buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "/console/g1.log"));
    struct host_paths longp;
    char longdir[200];
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    ck_assert_int_eq(host_paths_init(&longp, longdir, NULL), -ENAMETOOLONG);
}
END_TEST

START_TEST(reserve_grows_and_names_are_unique)
{
    unsigned a, b, c;
    struct domain_config g1 = cfg("g1"), g2 = cfg("g2");
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &a, NULL), 0);
    ck_assert_int_eq(registry_reserve(&paths, &g2, getpid(), &b, NULL), 0);
    ck_assert_uint_eq(a, 1);
    ck_assert_uint_eq(b, 2);
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &c, &lb.log), -EEXIST);
    ck_assert_ptr_nonnull(strstr(lb.last, "already exists with ID 1"));
    /* IDs are not reused at once after a removal, as in Xen. */
    ck_assert_int_eq(registry_remove(&paths, a), 0);
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &c, NULL), 0);
    ck_assert_uint_eq(c, 3);

    struct registry_entry *v;
    size_t n;
    ck_assert_int_eq(registry_list(&paths, &v, &n, NULL), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(v[0].domid, 2);
    ck_assert_str_eq(v[0].name, "g2");
    ck_assert_int_eq(v[0].state, DOMAIN_STATE_CREATING);
    ck_assert_int_eq(v[0].pid, getpid());
    ck_assert_uint_eq(v[1].domid, 3);
    ck_assert_ptr_nonnull(strstr(v[1].config_json, "\"name\":\"g1\""));
    free(v);
}
END_TEST

START_TEST(find_by_name_and_id)
{
    unsigned a;
    struct domain_config g = cfg("web");
    ck_assert_int_eq(registry_reserve(&paths, &g, getpid(), &a, NULL), 0);
    struct registry_entry e;
    char id[16];
    snprintf(id, sizeof(id), "%u", a);
    ck_assert_int_eq(registry_find(&paths, "web", &e, NULL), 0);
    ck_assert_uint_eq(e.domid, a);
    ck_assert_int_eq(registry_find(&paths, id, &e, NULL), 0);
    ck_assert_str_eq(e.name, "web");
    ck_assert_int_eq(registry_find(&paths, "nope", &e, NULL), -ENOENT);
    ck_assert_int_eq(registry_find(&paths, "999", &e, NULL), -ENOENT);
}
END_TEST

START_TEST(stale_records_are_reaped)
{
    unsigned a, b;
    struct domain_config g1 = cfg("dead"), g2 = cfg("reused");
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &a, NULL), 0);
    ck_assert_int_eq(registry_reserve(&paths, &g2, getpid(), &b, NULL), 0);

    /* Look both up first: every registry scan reaps what is stale. */
    struct registry_entry dead, reused;
    ck_assert_int_eq(registry_find(&paths, "dead", &dead, NULL), 0);
    ck_assert_int_eq(registry_find(&paths, "reused", &reused, NULL), 0);
    ck_assert(registry_entry_alive(&reused));

    /* "dead" belongs to a process that has exited. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    dead.pid = child;
    ck_assert_int_eq(registry_write(&paths, &dead, NULL), 0);
    ck_assert(!registry_entry_alive(&dead));

    /* "reused": a live pid with another start time is a reused pid. */
    reused.pid_start += 12345;
    ck_assert_int_eq(registry_write(&paths, &reused, NULL), 0);
    ck_assert(!registry_entry_alive(&reused));

    ck_assert(exists("domains/%u.json", a));
    ck_assert(exists("domains/%u.json", b));
    struct registry_entry *v;
    size_t n;
    ck_assert_int_eq(registry_list(&paths, &v, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
    free(v);
    ck_assert(!exists("domains/%u.json", a));
    ck_assert(!exists("domains/%u.json", b));
    /* The name is free again. */
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &a, NULL), 0);
}
END_TEST

START_TEST(domid_wraps_below_reserved)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/domains/.next-domid", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "%u\n", DOMID_MAX);
    fclose(f);
    unsigned a, b;
    struct domain_config g1 = cfg("a"), g2 = cfg("b");
    ck_assert_int_eq(registry_reserve(&paths, &g1, getpid(), &a, NULL), 0);
    ck_assert_int_eq(registry_reserve(&paths, &g2, getpid(), &b, NULL), 0);
    ck_assert_uint_eq(a, DOMID_MAX);
    ck_assert_uint_eq(b, 1);
}
END_TEST

START_TEST(garbage_records_are_ignored)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/domains/5.json", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{ not json");
    fclose(f);
    struct registry_entry *v;
    size_t n;
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(registry_list(&paths, &v, &n, &lb.log), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(lb.last, "unreadable"));
    free(v);
}
END_TEST

START_TEST(config_json_round_trip)
{
    struct domain_config c = cfg("g1"), d;
    c.memory_mb = 512;
    c.vcpus = 4;
    c.on_crash = DOMAIN_ACTION_PRESERVE;
    snprintf(c.cmdline, sizeof(c.cmdline), "workload=verify \"quoted\" \\ back");
    char json[8192];
    ck_assert_int_eq(domain_config_to_json(&c, json, sizeof(json)), 0);
    ck_assert_int_eq(domain_config_from_json(json, &d, NULL), 0);
    ck_assert_mem_eq(&c, &d, sizeof(c));
    ck_assert_int_eq(domain_config_to_json(&c, json, 20), -E2BIG);
}
END_TEST

START_TEST(config_json_rejects_bad)
{
    const char *bad[] = {
        "", "[]", "{\"kernel\":\"/k\"}", "{\"name\":1,\"kernel\":\"/k\"}",
        "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":-1}",
        "{\"name\":\"a\",\"kernel\":\"/k\",\"vcpus\":1000}",
        "{\"name\":\"a\",\"kernel\":\"/k\",\"on_crash\":\"explode\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct domain_config d;
        struct tlog_buffer lb;
        tlog_buffer_init(&lb);
        ck_assert_msg(domain_config_from_json(bad[i], &d, &lb.log) == -EINVAL, "accepted %s", bad[i]);
        ck_assert_msg(lb.last[0], "no reason for %s", bad[i]);
    }
}
END_TEST

START_TEST(config_checks)
{
    struct domain_config c = cfg("ok-name_1.x");
    ck_assert_int_eq(domain_config_check(&c, NULL), 0);
    ck_assert(!domain_name_valid("123"));
    ck_assert(!domain_name_valid(""));
    ck_assert(!domain_name_valid("a b"));
    ck_assert(!domain_name_valid("a/b"));
    ck_assert(!domain_name_valid(".hidden"));
    ck_assert(domain_name_valid("g1"));
    c.memory_mb = 1;
    ck_assert_int_eq(domain_config_check(&c, NULL), -EINVAL);
    c.memory_mb = 128;
    c.vcpus = 0;
    ck_assert_int_eq(domain_config_check(&c, NULL), -EINVAL);
    c.vcpus = DOMAIN_MAX_VCPUS + 1;
    ck_assert_int_eq(domain_config_check(&c, NULL), -EINVAL);
    c.vcpus = 1;
    c.kernel[0] = '\0';
    ck_assert_int_eq(domain_config_check(&c, NULL), -EINVAL);
    enum domain_action a;
    ck_assert_int_eq(domain_action_parse("restart", &a), 0);
    ck_assert_int_eq(a, DOMAIN_ACTION_RESTART);
    ck_assert_int_eq(domain_action_parse("rename-restart", &a), -EINVAL);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, paths_layout);
    tcase_add_test(tc, reserve_grows_and_names_are_unique);
    tcase_add_test(tc, find_by_name_and_id);
    tcase_add_test(tc, stale_records_are_reaped);
    tcase_add_test(tc, domid_wraps_below_reserved);
    tcase_add_test(tc, garbage_records_are_ignored);
    suite_add_tcase(s, tc);
    TCase *cc = tcase_create("config");
    tcase_add_test(cc, config_json_round_trip);
    tcase_add_test(cc, config_json_rejects_bad);
    tcase_add_test(cc, config_checks);
    suite_add_tcase(s, cc);
    return s;
}
