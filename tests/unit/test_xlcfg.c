/* Unit tests of the xl.cfg parser (tools/xlcfg.c): the language, the vif=
 * and disk= device specs, and (with libtandem-xen) the domain config's JSON. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "tandem/log.h"
#include "tandem/xen.h"
#include "xlcfg.h"

/* Parses text as "t.cfg", insisting that it succeeds. */
static struct xlcfg *parse_ok(const char *text)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = NULL;
    int r;

    tlog_buffer_init(&lb);
    r = xlcfg_parse(text, strlen(text), "t.cfg", &lb.log, &cfg);
    ck_assert_msg(r == 0, "parse failed (%d): %s", r, lb.last);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(lb.last, "");
    return cfg;
}

/* Parses len bytes as "t.cfg", insisting that it fails with err; returns
 * the message logged. */
static const char *parse_fail(struct tlog_buffer *lb, const char *text, size_t len, int err)
{
    struct xlcfg *cfg = (struct xlcfg *)1;
    int r;

    tlog_buffer_init(lb);
    r = xlcfg_parse(text, len, "t.cfg", &lb->log, &cfg);
    ck_assert_msg(r == err, "expected %d, got %d for <%s>", err, r, text);
    ck_assert_ptr_null(cfg);
    return lb->last;
}

static const char *get_str(struct xlcfg *cfg, const char *key)
{
    const char *s = NULL;
    int r = xlcfg_get_string(cfg, key, &s, NULL);

    ck_assert_msg(r == 0, "get_string(%s) = %d", key, r);
    return s;
}

static long long get_num(struct xlcfg *cfg, const char *key)
{
    long long v = -12345;
    int r = xlcfg_get_number(cfg, key, LLONG_MIN, LLONG_MAX, &v, NULL);

    ck_assert_msg(r == 0, "get_number(%s) = %d", key, r);
    return v;
}

static const struct xlcfg_value *get_list(struct xlcfg *cfg, const char *key)
{
    const struct xlcfg_value *v = NULL;
    int r = xlcfg_get_list(cfg, key, &v, NULL);

    ck_assert_msg(r == 0, "get_list(%s) = %d", key, r);
    ck_assert_int_eq(v->kind, XLCFG_LIST);
    return v;
}

/* ---- values ---- */

START_TEST(test_value_kinds)
{
    struct xlcfg *cfg = parse_ok(
        "name = \"g1\"\n"
        "type = 'pvh'\n"
        "memory = 512\n"
        "maxmem = 0x400\n"
        "mode = 0755\n"
        "zero = 0\n"
        "big = 9223372036854775807\n"
        "disk = [ \"file:/a,xvda,w\", 'file:/b,xvdb,r' ]\n"
        "mixed = [ \"a\", 1, 0x10 ]\n"
        "empty = [ ]\n"
        "UPPER_case_9 = \"ok\"\n");
    const struct xlcfg_value *l;

    ck_assert_uint_eq(xlcfg_count(cfg), 11);
    ck_assert_str_eq(get_str(cfg, "name"), "g1");
    ck_assert_str_eq(get_str(cfg, "type"), "pvh");
    ck_assert_int_eq(get_num(cfg, "memory"), 512);
    ck_assert_int_eq(get_num(cfg, "maxmem"), 1024);
    ck_assert_int_eq(get_num(cfg, "mode"), 0755);
    ck_assert_int_eq(get_num(cfg, "zero"), 0);
    ck_assert(get_num(cfg, "big") == LLONG_MAX);
    ck_assert_str_eq(get_str(cfg, "UPPER_case_9"), "ok");
    /* As in Xen, a number is also its text. */
    ck_assert_str_eq(get_str(cfg, "maxmem"), "0x400");

    l = get_list(cfg, "disk");
    ck_assert_uint_eq(l->n_items, 2);
    ck_assert_int_eq(l->items[0].kind, XLCFG_STRING);
    ck_assert_str_eq(l->items[0].str, "file:/a,xvda,w");
    ck_assert_str_eq(l->items[1].str, "file:/b,xvdb,r");
    ck_assert_uint_eq(l->line, 8);
    ck_assert_str_eq(l->file, "t.cfg");

    l = get_list(cfg, "mixed");
    ck_assert_uint_eq(l->n_items, 3);
    ck_assert_int_eq(l->items[0].kind, XLCFG_STRING);
    ck_assert_int_eq(l->items[1].kind, XLCFG_NUMBER);
    ck_assert_int_eq(l->items[1].num, 1);
    ck_assert_int_eq(l->items[2].kind, XLCFG_NUMBER);
    ck_assert_int_eq(l->items[2].num, 16);
    ck_assert_str_eq(l->items[2].str, "0x10");

    l = get_list(cfg, "empty");
    ck_assert_uint_eq(l->n_items, 0);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_comments_and_separators)
{
    struct xlcfg *cfg = parse_ok(
        "# a comment\n"
        "   # an indented comment\n"
        "\n"
        "name = \"h0\" # after a value\n"
        "hash = \"a#b\"\n"
        "a = 1; b = 2;c=3;;\n"
        ";\n"
        "type=\"hvm\";\n"
        "last = 'no newline at the end'");

    ck_assert_uint_eq(xlcfg_count(cfg), 7);
    ck_assert_str_eq(get_str(cfg, "name"), "h0");
    ck_assert_str_eq(get_str(cfg, "hash"), "a#b");
    ck_assert_int_eq(get_num(cfg, "a"), 1);
    ck_assert_int_eq(get_num(cfg, "b"), 2);
    ck_assert_int_eq(get_num(cfg, "c"), 3);
    ck_assert_str_eq(get_str(cfg, "type"), "hvm");
    ck_assert_str_eq(get_str(cfg, "last"), "no newline at the end");
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_continuation_lines)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok(
        "memory = \\\n"
        "    512\n"
        "cmdline = \"console=hvc0 \\\n"
        "quiet\"\n"
        "blanks = \\   \t\n"
        "  7\n"
        "crlf = \\\r\n"
        " 8\r\n"
        "crlfs = \"a\\\r\nb\"\r\n"
        "# comment ending in a backslash \\\n"
        "after = 1\n");

    ck_assert_int_eq(get_num(cfg, "memory"), 512);
    ck_assert_str_eq(get_str(cfg, "cmdline"), "console=hvc0 quiet");
    ck_assert_int_eq(get_num(cfg, "blanks"), 7);
    ck_assert_int_eq(get_num(cfg, "crlf"), 8);
    ck_assert_str_eq(get_str(cfg, "crlfs"), "ab");
    ck_assert_int_eq(get_num(cfg, "after"), 1);
    xlcfg_free(cfg);

    /* Line numbers still count the joined lines. */
    ck_assert_str_eq(parse_fail(&lb, "a = \\\n1\nb = @\n", 14, -EINVAL),
                     "t.cfg:3: unexpected character '@'");
}
END_TEST

START_TEST(test_crlf_file)
{
    struct xlcfg *cfg = parse_ok("name = \"g\"\r\nmemory = 64\r\n"
                                 "vif = [\r\n  \"bridge=br0\",\r\n]\r\n");

    ck_assert_str_eq(get_str(cfg, "name"), "g");
    ck_assert_int_eq(get_num(cfg, "memory"), 64);
    ck_assert_uint_eq(get_list(cfg, "vif")->n_items, 1);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_multiline_lists)
{
    struct xlcfg *cfg = parse_ok(
        "disk = [\n"
        "    \"file:/a,xvda,w\",   # the root disk\n"
        "    # a comment line in a list\n"
        "\n"
        "    \"file:/b,xvdb,r\"\n"
        "    ,\n"
        "    'file:/c,xvdc,r',\n"
        "]\n"
        "one = [ 1, ]\n"
        "vif = [ 'mac=00:16:3e:00:00:01,bridge=br0' ]\n");
    const struct xlcfg_value *l = get_list(cfg, "disk");

    ck_assert_uint_eq(l->n_items, 3);
    ck_assert_str_eq(l->items[0].str, "file:/a,xvda,w");
    ck_assert_uint_eq(l->items[0].line, 2);
    ck_assert_str_eq(l->items[1].str, "file:/b,xvdb,r");
    ck_assert_uint_eq(l->items[1].line, 5);
    ck_assert_str_eq(l->items[2].str, "file:/c,xvdc,r");
    ck_assert_uint_eq(l->items[2].line, 7);
    l = get_list(cfg, "one");
    ck_assert_uint_eq(l->n_items, 1);
    ck_assert_int_eq(l->items[0].num, 1);
    ck_assert_uint_eq(get_list(cfg, "vif")->n_items, 1);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_escapes)
{
    struct xlcfg *cfg = parse_ok(
        "a = \"q\\\"b\\\\s\\'\"\n"
        "b = \"\\n\\t\\r\\a\\b\\f\\v\"\n"
        "c = \"\\x41\\x7a\\x7A\\101\\60\\0601\\7\"\n"
        "d = 'it\\'s \"quoted\"'\n"
        "e = \"it's\"\n"
        "f = \"\"\n"
        "g = \"caf\xc3\xa9 \t tab\"\n");

    ck_assert_str_eq(get_str(cfg, "a"), "q\"b\\s'");
    ck_assert_str_eq(get_str(cfg, "b"), "\n\t\r\a\b\f\v");
    ck_assert_str_eq(get_str(cfg, "c"), "Azz" "A" "0" "01" "\a");
    ck_assert_str_eq(get_str(cfg, "d"), "it's \"quoted\"");
    ck_assert_str_eq(get_str(cfg, "e"), "it's");
    ck_assert_str_eq(get_str(cfg, "f"), "");
    ck_assert_str_eq(get_str(cfg, "g"), "caf\xc3\xa9 \t tab");
    xlcfg_free(cfg);
}
END_TEST

/* ---- settings ---- */

START_TEST(test_later_setting_wins)
{
    struct xlcfg *cfg = parse_ok("memory = 128\nname = \"a\"\nmemory = 256\n"
                                 "name = [ \"now a list\" ]\n");
    const struct xlcfg_value *l;
    char *text;

    ck_assert_uint_eq(xlcfg_count(cfg), 2);
    ck_assert_int_eq(get_num(cfg, "memory"), 256);
    l = get_list(cfg, "name");
    ck_assert_uint_eq(l->line, 4);
    ck_assert_int_eq(xlcfg_format(cfg, &text, NULL), 0);
    /* Keys stay where they first appeared. */
    ck_assert_str_eq(text, "memory = 256\nname = [ \"now a list\" ]\n");
    free(text);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_append)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok(
        "vif = [ \"bridge=br0\" ]\n"
        "extra = \"console=hvc0\"\n"
        "vif += [ \"bridge=br1\", \"bridge=br2\" ]\n"
        "extra += \" quiet\"\n"
        "extra += ''\n"
        "fresh += [ 1 ]\n"
        "freshs += \"s\"\n"
        "vif += [ ]\n");
    const struct xlcfg_value *l = get_list(cfg, "vif");

    ck_assert_uint_eq(l->n_items, 3);
    ck_assert_str_eq(l->items[0].str, "bridge=br0");
    ck_assert_str_eq(l->items[1].str, "bridge=br1");
    ck_assert_str_eq(l->items[2].str, "bridge=br2");
    ck_assert_uint_eq(l->items[2].line, 3);
    ck_assert_uint_eq(l->line, 8);
    ck_assert_str_eq(get_str(cfg, "extra"), "console=hvc0 quiet");
    ck_assert_uint_eq(get_list(cfg, "fresh")->n_items, 1);
    ck_assert_str_eq(get_str(cfg, "freshs"), "s");
    xlcfg_free(cfg);

    /* Many appends stay cheap and correct. */
    {
        size_t n = 20000, i;
        char *text = malloc(n * 12 + 16), *p = text;
        const char *s;
        p += sprintf(p, "s = \"\"\n");
        for (i = 0; i < n; i++)
            p += sprintf(p, "s += \"%c\"\n", 'a' + (int)(i % 26));
        cfg = parse_ok(text);
        s = get_str(cfg, "s");
        ck_assert_uint_eq(strlen(s), n);
        ck_assert_int_eq(s[27], 'b');
        xlcfg_free(cfg);
        free(text);
    }

    ck_assert_str_eq(parse_fail(&lb, "a = \"s\"\na += [ \"l\" ]\n", 21, -EINVAL),
                     "t.cfg:2: '+=' cannot add a list to 'a', which is a string");
    ck_assert_str_eq(parse_fail(&lb, "a = [ ]\na += 's'\n", 17, -EINVAL),
                     "t.cfg:2: '+=' cannot add a string to 'a', which is a list");
    ck_assert_str_eq(parse_fail(&lb, "n = 1\nn += 2\n", 13, -EINVAL),
                     "t.cfg:2: '+=' cannot be used with a number ('n')");
    ck_assert_str_eq(parse_fail(&lb, "n = 1\nn += \"2\"\n", 15, -EINVAL),
                     "t.cfg:2: '+=' cannot add to 'n', which is a number");
}
END_TEST

START_TEST(test_overrides)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok("name = \"g1\"\nmemory = 128\nvif = [ \"bridge=br0\" ]\n");
    const struct xlcfg_value *l;
    char *text;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_apply_override(cfg, "memory=1024", &lb.log), 0);
    ck_assert_int_eq(xlcfg_apply_override(cfg, "vif += ['bridge=br1']", &lb.log), 0);
    ck_assert_int_eq(xlcfg_apply_override(cfg, "on_crash=\"preserve\"; vcpus=2", &lb.log), 0);
    ck_assert_str_eq(lb.last, "");

    ck_assert_int_eq(get_num(cfg, "memory"), 1024);
    ck_assert_int_eq(get_num(cfg, "vcpus"), 2);
    ck_assert_str_eq(get_str(cfg, "on_crash"), "preserve");
    l = get_list(cfg, "vif");
    ck_assert_uint_eq(l->n_items, 2);
    ck_assert_str_eq(l->items[0].file, "t.cfg");
    ck_assert_str_eq(l->items[1].file, "command line");
    ck_assert_str_eq(l->file, "command line");
    ck_assert_int_eq(xlcfg_format(cfg, &text, NULL), 0);
    ck_assert_str_eq(text, "name = \"g1\"\nmemory = 1024\n"
                     "vif = [ \"bridge=br0\", \"bridge=br1\" ]\n"
                     "on_crash = \"preserve\"\nvcpus = 2\n");
    free(text);

    ck_assert_int_eq(xlcfg_apply_override(cfg, "memory=", &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "command line:1: missing value for 'memory'");
    ck_assert_int_eq(xlcfg_apply_override(cfg, "memory 5", &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "command line:1: expected '=' after 'memory'");
    ck_assert_int_eq(get_num(cfg, "memory"), 1024);
    xlcfg_free(cfg);
}
END_TEST

/* ---- look-ups ---- */

START_TEST(test_get_number)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok("vcpus = 4\nmemory = '512'\nneg = \"-3\"\n"
                                 "hexq = \" 0x10\"\nbad = \"512M\"\nlist = [ 1 ]\n"
                                 "huge = \"99999999999999999999\"\n");
    long long v = 0;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_get_number(cfg, "vcpus", 1, 128, &v, &lb.log), 0);
    ck_assert_int_eq(v, 4);
    /* Xen's xl reads quoted numbers as numbers too. */
    ck_assert_int_eq(xlcfg_get_number(cfg, "memory", 0, LLONG_MAX, &v, &lb.log), 0);
    ck_assert_int_eq(v, 512);
    ck_assert_int_eq(xlcfg_get_number(cfg, "neg", LLONG_MIN, 0, &v, &lb.log), 0);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(xlcfg_get_number(cfg, "hexq", 0, 100, &v, &lb.log), 0);
    ck_assert_int_eq(v, 16);
    ck_assert_str_eq(lb.last, "");

    v = 77;
    ck_assert_int_eq(xlcfg_get_number(cfg, "vcpus", 1, 2, &v, &lb.log), -ERANGE);
    ck_assert_str_eq(lb.last, "t.cfg:1: 'vcpus' = 4 is out of range (1 to 2)");
    ck_assert_int_eq(v, 77);
    ck_assert_int_eq(xlcfg_get_number(cfg, "bad", 0, 10, &v, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:5: 'bad' should be a number, not \"512M\"");
    ck_assert_int_eq(xlcfg_get_number(cfg, "list", 0, 10, &v, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:6: 'list' is a list but should be a number");
    ck_assert_int_eq(xlcfg_get_number(cfg, "huge", 0, 10, &v, &lb.log), -ERANGE);
    ck_assert_str_eq(lb.last, "t.cfg:7: 'huge': number out of range");

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_get_number(cfg, "absent", 0, 10, &v, &lb.log), -ENOENT);
    ck_assert_str_eq(lb.last, "");
    ck_assert_int_eq(v, 77);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_get_bool)
{
    struct xlcfg *cfg = parse_ok("on = 1\noff = 0\nyes = 7\nq = \"0\"\ns = \"yes\"\n");
    bool b = false;

    ck_assert_int_eq(xlcfg_get_bool(cfg, "on", &b, NULL), 0);
    ck_assert(b);
    ck_assert_int_eq(xlcfg_get_bool(cfg, "off", &b, NULL), 0);
    ck_assert(!b);
    ck_assert_int_eq(xlcfg_get_bool(cfg, "yes", &b, NULL), 0);
    ck_assert(b);
    ck_assert_int_eq(xlcfg_get_bool(cfg, "q", &b, NULL), 0);
    ck_assert(!b);
    ck_assert_int_eq(xlcfg_get_bool(cfg, "s", &b, NULL), -EINVAL);
    ck_assert_int_eq(xlcfg_get_bool(cfg, "none", &b, NULL), -ENOENT);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_get_wrong_kind)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok("name = \"g\"\n\ndisk = [ \"a\" ]\n");
    const struct xlcfg_value *l = NULL;
    const char *s = NULL;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_get_string(cfg, "disk", &s, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:3: 'disk' is a list but should be a single value");
    ck_assert_ptr_null(s);
    ck_assert_int_eq(xlcfg_get_list(cfg, "name", &l, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:1: 'name' is a single value but should be a list");
    ck_assert_ptr_null(l);
    ck_assert_int_eq(xlcfg_get_string(cfg, "nothing", &s, &lb.log), -ENOENT);
    ck_assert_int_eq(xlcfg_get_list(cfg, "nothing", &l, &lb.log), -ENOENT);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_get_string_list)
{
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok("cpus = [ \"2\", 3, \"4-7,^5\" ]\nempty = []\none = \"x\"\n");
    const char **strs = NULL;
    size_t n = 99;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_get_string_list(cfg, "cpus", &strs, &n, &lb.log), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(strs[0], "2");
    ck_assert_str_eq(strs[1], "3");
    ck_assert_str_eq(strs[2], "4-7,^5");
    ck_assert_ptr_null(strs[3]);
    free(strs);

    ck_assert_int_eq(xlcfg_get_string_list(cfg, "empty", &strs, NULL, &lb.log), 0);
    ck_assert_ptr_null(strs[0]);
    free(strs);

    /* A single value is not a list, as in Xen. */
    ck_assert_int_eq(xlcfg_get_string_list(cfg, "one", &strs, &n, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:3: 'one' is a single value but should be a list");
    ck_assert_int_eq(xlcfg_get_string_list(cfg, "none", &strs, &n, &lb.log), -ENOENT);
    xlcfg_free(cfg);
}
END_TEST

struct unused_seen {
    char keys[8][32];
    unsigned lines[8];
    char files[8][32];
    int n;
};

static void collect_unused(void *opaque, const char *key, const char *file, unsigned line)
{
    struct unused_seen *u = opaque;

    ck_assert_int_lt(u->n, 8);
    snprintf(u->keys[u->n], sizeof(u->keys[0]), "%s", key);
    snprintf(u->files[u->n], sizeof(u->files[0]), "%s", file);
    u->lines[u->n++] = line;
}

START_TEST(test_unused_keys)
{
    struct xlcfg *cfg = parse_ok("name = \"g\"\nmemroy = 512\nmemory = 5\n"
                                 "vcpus = [ 1 ]\nbogus = 1\n");
    struct unused_seen u = { .n = 0 };
    const char *s;
    long long v;

    ck_assert_int_eq(xlcfg_apply_override(cfg, "typo = 1", NULL), 0);
    get_str(cfg, "name");
    get_num(cfg, "memory");
    /* A look-up of the wrong kind still counts as a use. */
    ck_assert_int_eq(xlcfg_get_string(cfg, "vcpus", &s, NULL), -EINVAL);
    ck_assert_int_eq(xlcfg_get_number(cfg, "absent", 0, 1, &v, NULL), -ENOENT);
    xlcfg_for_each_unused(cfg, collect_unused, &u);
    ck_assert_int_eq(u.n, 3);
    ck_assert_str_eq(u.keys[0], "memroy");
    ck_assert_uint_eq(u.lines[0], 2);
    ck_assert_str_eq(u.files[0], "t.cfg");
    ck_assert_str_eq(u.keys[1], "bogus");
    ck_assert_uint_eq(u.lines[1], 5);
    ck_assert_str_eq(u.keys[2], "typo");
    ck_assert_str_eq(u.files[2], "command line");
    ck_assert_uint_eq(u.lines[2], 1);
    xlcfg_free(cfg);
}
END_TEST

START_TEST(test_set_values)
{
    struct xlcfg *cfg = parse_ok("name = \"g1\"\nmemory = 64\n");
    struct unused_seen u = { .n = 0 };
    char *text;

    ck_assert_int_eq(xlcfg_set_string(cfg, "name", "g1--incoming \"x\""), 0);
    ck_assert_int_eq(xlcfg_set_number(cfg, "vcpus", 3), 0);
    ck_assert_int_eq(xlcfg_set_number(cfg, "vcpus", -1), -ERANGE);
    ck_assert_int_eq(xlcfg_set_string(cfg, "bad key", "x"), -EINVAL);
    ck_assert_int_eq(xlcfg_set_string(cfg, "9key", "x"), -EINVAL);
    ck_assert_int_eq(xlcfg_set_string(cfg, "", "x"), -EINVAL);
    ck_assert_int_eq(xlcfg_format(cfg, &text, NULL), 0);
    ck_assert_str_eq(text, "name = \"g1--incoming \\\"x\\\"\"\nmemory = 64\nvcpus = 3\n");
    free(text);
    xlcfg_for_each_unused(cfg, collect_unused, &u);
    ck_assert_int_eq(u.n, 1);
    ck_assert_str_eq(u.keys[0], "memory");
    xlcfg_free(cfg);
}
END_TEST

/* ---- formatting ---- */

START_TEST(test_format_round_trip)
{
    static const char text[] =
        "name = \"g1\"\n"
        "ctl = \"\\x01\\x1f\\x7f\\n\\t\\r\\\\\\\"'\xc3\xa9 end\"\n"
        "bell = '\\7\\10\\x0c\\v'\n"
        "single = 'x'\n"
        "numbers = [ 0, 010, 0x1F, 18446744073709551 ]\n"
        "disk = [ \"file:/var/lib/tandem/images/guest-one.img,xvda,w\",\n"
        "         \"file:/var/lib/tandem/images/guest-two.img,xvdb,r\", ]\n"
        "empty = []\n"
        "one = [ 'only' ]\n"
        "s = \"\"\n";
    struct xlcfg *a = parse_ok(text), *b;
    struct tlog_buffer lb;
    char *out, *out2;
    size_t len;

    ck_assert_int_eq(xlcfg_format(a, &out, &len), 0);
    ck_assert_uint_eq(strlen(out), len);
    ck_assert_str_eq(out,
        "name = \"g1\"\n"
        "ctl = \"\\x01\\x1f\\x7f\\n\\t\\r\\\\\\\"'\xc3\xa9 end\"\n"
        "bell = \"\\a\\b\\f\\v\"\n"
        "single = \"x\"\n"
        "numbers = [ 0, 010, 0x1F, 18446744073709551 ]\n"
        "disk = [\n"
        "    \"file:/var/lib/tandem/images/guest-one.img,xvda,w\",\n"
        "    \"file:/var/lib/tandem/images/guest-two.img,xvdb,r\",\n"
        "]\n"
        "empty = [ ]\n"
        "one = [ \"only\" ]\n"
        "s = \"\"\n");
    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_parse(out, len, "saved", &lb.log, &b), 0);
    ck_assert(xlcfg_equal(a, b));
    ck_assert_int_eq(xlcfg_format(b, &out2, NULL), 0);
    ck_assert_str_eq(out, out2);

    /* xlcfg_equal really compares. */
    ck_assert_int_eq(xlcfg_apply_override(b, "one = [ 'other' ]", NULL), 0);
    ck_assert(!xlcfg_equal(a, b));
    free(out);
    free(out2);
    xlcfg_free(a);
    xlcfg_free(b);
}
END_TEST

START_TEST(test_empty_input)
{
    struct xlcfg *cfg = NULL;
    char *text;

    ck_assert_int_eq(xlcfg_parse("", 0, "e.cfg", NULL, &cfg), 0);
    ck_assert_uint_eq(xlcfg_count(cfg), 0);
    ck_assert_int_eq(xlcfg_format(cfg, &text, NULL), 0);
    ck_assert_str_eq(text, "");
    free(text);
    xlcfg_free(cfg);
    cfg = parse_ok("\n\n# only comments\n;;\n");
    ck_assert_uint_eq(xlcfg_count(cfg), 0);
    xlcfg_free(cfg);
    xlcfg_free(NULL);
}
END_TEST

/* ---- errors ---- */

struct bad_input {
    const char *text;
    const char *message;        /* the start of what must be logged */
};

static const struct bad_input bad_inputs[] = {
    { "memory 512\n",                       "t.cfg:1: expected '=' after 'memory'" },
    { "name = \"g1\"\nmemory\n",            "t.cfg:2: expected '=' after 'memory'" },
    { "a\n= 1\n",                           "t.cfg:1: expected '=' after 'a'" },
    { "a = 1\nname = \"abc\n",              "t.cfg:2: unterminated string" },
    { "name = 'abc",                        "t.cfg:1: unterminated string" },
    { "x = \"abc\\\n",                      "t.cfg:1: unterminated string" },
    { "x = \"abc\\",                        "t.cfg:1: unterminated string" },
    { "a = 1\n\ndisk = [ \"a\",\n  \"b\"\n",  "t.cfg:4: unterminated list opened at line 3" },
    { "disk = [",                           "t.cfg:1: unterminated list opened at line 1" },
    { "disk = [ \"a\",\n\n",                "t.cfg:2: unterminated list opened at line 1" },
    { "memory = 512M\n",                    "t.cfg:1: invalid number '512M'" },
    { "a = 0x\n",                           "t.cfg:1: invalid number '0x'" },
    { "a = 09\n",                           "t.cfg:1: invalid number '09'" },
    { "a = 0xfg\n",                         "t.cfg:1: invalid number '0xfg'" },
    { "a = 1.5\n",                          "t.cfg:1: invalid number '1.5'" },
    { "a = 9223372036854775808\n",          "t.cfg:1: number out of range" },
    { "a = 0x10000000000000000\n",          "t.cfg:1: number out of range" },
    { "x = -1\n",                           "t.cfg:1: numbers have no sign" },
    { "a = 1\nb = @\n",                     "t.cfg:2: unexpected character '@'" },
    { "a = 1\n+ = 2\n",                     "t.cfg:2: unexpected character '+'" },
    { "a = \"x\"\n\n\n\x01\n",              "t.cfg:4: unexpected byte 0x01" },
    { "a = \xff\n",                         "t.cfg:1: unexpected byte 0xff" },
    { "a = 1 \\ b\n",                       "t.cfg:1: unexpected character '\\'" },
    { "memory = 512 * 2\n",                 "t.cfg:1: unexpected character '*'" },
    { "cpus = [ [ 1 ] ]\n",                 "t.cfg:1: nested lists are not allowed" },
    { "v = [\n [\"pnode=0\"],\n]\n",        "t.cfg:2: nested lists are not allowed" },
    { "type = hvm\n",                       "t.cfg:1: unquoted string 'hvm'" },
    { "a = 1 b = 2\n",                      "t.cfg:1: expected a new line or ';' after the value of 'a', found 'b'" },
    { "a = [ 1 ] [ 2 ]\n",                  "t.cfg:1: expected a new line or ';' after the value of 'a', found '['" },
    { "= 5\n",                              "t.cfg:1: expected a key, found '='" },
    { "\"x\" = 1\n",                        "t.cfg:1: expected a key, found a string" },
    { "\n5 = 1\n",                          "t.cfg:2: expected a key, found number 5" },
    { "]\n",                                "t.cfg:1: expected a key, found ']'" },
    { "memory =\n",                         "t.cfg:1: missing value for 'memory'" },
    { "memory = ;\n",                       "t.cfg:1: missing value for 'memory'" },
    { "memory = # nothing\n",               "t.cfg:1: missing value for 'memory'" },
    { "memory =",                           "t.cfg:1: missing value for 'memory'" },
    { "a == 1\n",                           "t.cfg:1: expected a value for 'a', found '='" },
    { "a = ]\n",                            "t.cfg:1: expected a value for 'a', found ']'" },
    { "disk = [ , ]\n",                     "t.cfg:1: expected a value or ']' in the list opened at line 1, found ','" },
    { "a = [1,,2]\n",                       "t.cfg:1: expected a value or ']' in the list opened at line 1, found ','" },
    { "a = [\n1;\n]\n",                     "t.cfg:2: expected ',' or ']' in the list opened at line 1, found ';'" },
    { "disk = [ \"a\" \"b\" ]\n",           "t.cfg:1: expected ',' or ']' in the list opened at line 1, found a string" },
    { "disk = [\n\"a\",\nname = \"x\"\n]\n", "t.cfg:3: unquoted string 'name'" },
    { "disk = [\n\"a\"\nname = \"x\"\n",  "t.cfg:3: expected ',' or ']' in the list opened at line 1, found 'name' (is a ']' missing?)" },
    { "x = \"a\\qb\"\n",                    "t.cfg:1: invalid escape '\\q' in string" },
    { "x = \"\\x4\"\n",                     "t.cfg:1: \\x in a string needs two hex digits" },
    { "x = \"\\x\"\n",                      "t.cfg:1: \\x in a string needs two hex digits" },
    { "x = \"\\0\"\n",                      "t.cfg:1: escape in string gives a NUL byte" },
    { "x = \"\\x00\"\n",                    "t.cfg:1: escape in string gives a NUL byte" },
    { "x = \"\\400\"\n",                    "t.cfg:1: octal escape in a string is out of range" },
    { "a = 'x'\nb = \"s\"\na += [ 1 ]\n",   "t.cfg:3: '+=' cannot add a list to 'a'" },
    { "x += 5\n",                           "t.cfg:1: '+=' cannot be used with a number" },
    { "x = \"a\\\rb\"\n",                  "t.cfg:1: invalid escape in string" },
    { "x = \"a\\\x01" "b\"\n",            "t.cfg:1: invalid escape in string" },
    { "a = 1\n+= 2\n",                      "t.cfg:2: expected a key, found '+='" },
    { "a = [ 1,\n @ ]\n",                   "t.cfg:2: unexpected character '@'" },
    { "a = [ 1\n\n 'x ]\n",                 "t.cfg:3: unterminated string" },
    { "a = -x\n",                           "t.cfg:1: unexpected character '-'" },
};

START_TEST(test_bad_input)
{
    const struct bad_input *b = &bad_inputs[_i];
    struct tlog_buffer lb;
    const char *msg = parse_fail(&lb, b->text, strlen(b->text), -EINVAL);

    ck_assert_msg(strncmp(msg, b->message, strlen(b->message)) == 0,
                  "input <%s>\n  logged   <%s>\n  expected <%s...>", b->text, msg, b->message);
}
END_TEST

START_TEST(test_nul_byte)
{
    static const char text[] = "a = 1\nb = \"x\0y\"\n";
    struct tlog_buffer lb;

    ck_assert_str_eq(parse_fail(&lb, text, sizeof(text) - 1, -EINVAL),
                     "t.cfg:2: NUL byte in the text");
    ck_assert_str_eq(parse_fail(&lb, "a = 1\n", 7, -EINVAL),
                     "t.cfg:2: NUL byte in the text");
}
END_TEST

START_TEST(test_limits)
{
    struct tlog_buffer lb;
    char key[200], *text, *p;
    struct xlcfg *cfg;
    size_t i;

    /* Keys of 128 characters, not 129. */
    memset(key, 'k', sizeof(key));
    sprintf(key + 128, " = 1\n");
    cfg = parse_ok(key);
    ck_assert_uint_eq(xlcfg_count(cfg), 1);
    xlcfg_free(cfg);
    memset(key, 'k', sizeof(key));
    sprintf(key + 129, " = 1\n");
    ck_assert_str_eq(parse_fail(&lb, key, strlen(key), -EINVAL),
                     "t.cfg:1: key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' is too long "
                     "(more than 128 characters)");

    /* Lists of 4096 items, not 4097, also through +=. */
    text = malloc(4097 * 3 + 64);
    p = text + sprintf(text, "l = [");
    for (i = 0; i < 4096; i++)
        p += sprintf(p, "1,");
    sprintf(p, "]\n");
    cfg = parse_ok(text);
    ck_assert_uint_eq(get_list(cfg, "l")->n_items, 4096);
    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_apply_override(cfg, "l += [ 2 ]", &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "command line:1: '+=' would give 'l' more than 4096 items");
    ck_assert_int_eq(xlcfg_apply_override(cfg, "l += [ ]", &lb.log), 0);
    xlcfg_free(cfg);
    sprintf(p, "\n3]\n");
    ck_assert_str_eq(parse_fail(&lb, text, strlen(text), -EINVAL),
                     "t.cfg:2: list opened at line 1 has more than 4096 items");
    free(text);

    /* Texts of 1 MiB, not more. */
    text = malloc(XLCFG_MAX_INPUT + 2);
    memset(text, '\n', XLCFG_MAX_INPUT + 1);
    memcpy(text, "a = 1", 5);
    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_parse(text, XLCFG_MAX_INPUT, "big.cfg", &lb.log, &cfg), 0);
    ck_assert_int_eq(get_num(cfg, "a"), 1);
    xlcfg_free(cfg);
    ck_assert_int_eq(xlcfg_parse(text, XLCFG_MAX_INPUT + 1, "big.cfg", &lb.log, &cfg), -EFBIG);
    ck_assert_str_eq(lb.last, "big.cfg: too large (more than 1048576 bytes)");
    ck_assert_ptr_null(cfg);
    free(text);
}
END_TEST

START_TEST(test_many_keys)
{
    size_t n = 50000, i;
    char *text = malloc(n * 24), *p = text;
    struct xlcfg *cfg;
    char key[32];

    for (i = 0; i < n; i++)
        p += sprintf(p, "key_%zu = %zu\n", i, i);
    cfg = parse_ok(text);
    ck_assert_uint_eq(xlcfg_count(cfg), n);
    for (i = 0; i < n; i += 997) {
        snprintf(key, sizeof(key), "key_%zu", i);
        ck_assert_int_eq(get_num(cfg, key), (long long)i);
    }
    xlcfg_free(cfg);
    free(text);
}
END_TEST

/* ---- files ---- */

static char *write_temp(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    int fd;

    ck_assert_int_ge(asprintf(&path, "%s/test_xlcfg.XXXXXX", dir ? dir : "/tmp"), 0);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(test_parse_file)
{
    static const char text[] = "name = \"g1\"\nmemory = 64\nbad = @\n";
    struct tlog_buffer lb;
    struct xlcfg *cfg = NULL;
    char *path = write_temp(text, 24), *expect, *big;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_parse_file(path, &lb.log, &cfg), 0);
    ck_assert_str_eq(get_str(cfg, "name"), "g1");
    ck_assert_int_eq(get_num(cfg, "memory"), 64);
    xlcfg_free(cfg);
    unlink(path);
    free(path);

    path = write_temp(text, strlen(text));
    ck_assert_int_eq(xlcfg_parse_file(path, &lb.log, &cfg), -EINVAL);
    ck_assert_int_ge(asprintf(&expect, "%s:3: unexpected character '@'", path), 0);
    ck_assert_str_eq(lb.last, expect);
    ck_assert_ptr_null(cfg);
    free(expect);
    unlink(path);

    ck_assert_int_eq(xlcfg_parse_file(path, &lb.log, &cfg), -ENOENT);
    ck_assert_int_ge(asprintf(&expect, "%s: cannot open: No such file or directory", path), 0);
    ck_assert_str_eq(lb.last, expect);
    free(expect);
    free(path);

    ck_assert_int_eq(xlcfg_parse_file("/", &lb.log, &cfg), -EISDIR);
    ck_assert_str_eq(lb.last, "/: is a directory");

    big = malloc(XLCFG_MAX_INPUT + 1);
    memset(big, '#', XLCFG_MAX_INPUT + 1);
    path = write_temp(big, XLCFG_MAX_INPUT + 1);
    ck_assert_int_eq(xlcfg_parse_file(path, &lb.log, &cfg), -EFBIG);
    ck_assert_ptr_nonnull(strstr(lb.last, "too large"));
    unlink(path);
    free(path);
    path = write_temp(big, XLCFG_MAX_INPUT);
    ck_assert_int_eq(xlcfg_parse_file(path, &lb.log, &cfg), 0);
    ck_assert_uint_eq(xlcfg_count(cfg), 0);
    xlcfg_free(cfg);
    unlink(path);
    free(path);
    free(big);
}
END_TEST


/* ---- guest devices: vif= ---- */

/* Parses one vifspec as vif `devid` at t.cfg:7; lb keeps the last warning
 * or error. */
static int vif_of(const char *spec, unsigned devid, struct domain_vif *v, struct tlog_buffer *lb)
{
    tlog_buffer_init(lb);
    memset(v, 0xa5, sizeof(*v));
    return xlcfg_parse_vif(spec, devid, "t.cfg", 7, v, &lb->log);
}

struct good_vif {
    const char *spec;
    const char *mac;            /* "" = not assigned */
    const char *bridge, *ifname;
};

static const struct good_vif good_vifs[] = {
    { "mac=00:16:3e:01:02:03,bridge=xenbr0",          "00:16:3e:01:02:03", "xenbr0", "" },
    { "mac=00:16:3E:74:3d:76",                        "00:16:3e:74:3d:76", "", "" },
    { "",                                             "", "", "" },
    { "bridge=br0",                                   "", "br0", "" },
    { "vifname=g1-eth0",                              "", "", "g1-eth0" },
    { " mac = 02:00:00:00:00:01 , bridge=br1 ,vifname=v1 ,", "02:00:00:00:00:01", "br1", "v1" },
    { ",,bridge=br0,,",                               "", "br0", "" },
    { "bridge=,vifname=",                             "", "", "" },
    { "bridge=a23456789012345",                       "", "a23456789012345", "" },
    { "devid=0,bridge=x",                             "", "x", "" },
    { "mac=fe:ff:ff:ff:ff:ff",                        "fe:ff:ff:ff:ff:ff", "", "" },
};

START_TEST(test_vif_forms)
{
    const struct good_vif *g = &good_vifs[_i];
    struct tlog_buffer lb;
    struct domain_vif v;
    char mac[18];
    int r = vif_of(g->spec, 0, &v, &lb);

    ck_assert_msg(r == 0, "<%s> refused: %s", g->spec, lb.last);
    ck_assert_str_eq(lb.last, "");
    if (g->mac[0]) {
        xlcfg_format_mac(v.mac, mac);
        ck_assert_str_eq(mac, g->mac);
    } else {
        ck_assert(xlcfg_mac_unset(v.mac));
    }
    ck_assert_str_eq(v.bridge, g->bridge);
    ck_assert_str_eq(v.ifname, g->ifname);
}
END_TEST

/* Xen's keys that mean nothing here: accepted, with a warning. */
static const struct bad_input ignored_vif_keys[] = {
    { "type=ioemu,bridge=b",            "t.cfg:7: vif 2: 'type=' ignored: " },
    { "model=e1000",                    "t.cfg:7: vif 2: 'model=' ignored: " },
    { "script=vif-bridge",              "t.cfg:7: vif 2: 'script=' ignored: no hotplug script" },
    { "ip=10.0.0.2",                    "t.cfg:7: vif 2: 'ip=' ignored: " },
    { "backend=dom0",                   "t.cfg:7: vif 2: 'backend=' ignored: " },
    { "rate=10Mb/s@20ms",               "t.cfg:7: vif 2: 'rate=' ignored: " },
    { "gatewaydev=eth0",                "t.cfg:7: vif 2: 'gatewaydev=' ignored: " },
    { "netdev=eth0",                    "t.cfg:7: vif 2: 'netdev=' ignored: " },
    { "accel=x",                        "t.cfg:7: vif 2: 'accel=' ignored: " },
    { "mtu=9000",                       "t.cfg:7: vif 2: 'mtu=' ignored: " },
    { "forwarddev=eth1",                "t.cfg:7: vif 2: 'forwarddev=' ignored: " },
    { "colo_sock_mirror_id=m1",         "t.cfg:7: vif 2: 'colo_sock_mirror_id=' ignored: " },
    { "trusted",                        "t.cfg:7: vif 2: 'trusted' ignored: " },
    { "untrusted,bridge=b",             "t.cfg:7: vif 2: 'untrusted' ignored: " },
};

START_TEST(test_vif_ignored_keys)
{
    const struct bad_input *b = &ignored_vif_keys[_i];
    struct tlog_buffer lb;
    struct domain_vif v;
    int r = vif_of(b->text, 2, &v, &lb);

    ck_assert_msg(r == 0, "<%s> refused: %s", b->text, lb.last);
    ck_assert_msg(strncmp(lb.last, b->message, strlen(b->message)) == 0,
                  "<%s>\n  warned   <%s>\n  expected <%s...>", b->text, lb.last, b->message);
    ck_assert(xlcfg_mac_unset(v.mac));
}
END_TEST

static const struct bad_input bad_vifs[] = {
    { "foo=1",                          "t.cfg:7: vif 1: unknown key 'foo' (Tandem's vifs take mac=, bridge= and vifname=)" },
    { "bridge=br0,Mac=00:16:3e:00:00:01", "t.cfg:7: vif 1: unknown key 'Mac'" },
    { "bridge",                         "t.cfg:7: vif 1: 'bridge' is not a key=value setting" },
    { "mac=00:16:3e:01:02",             "t.cfg:7: vif 1: mac=00:16:3e:01:02 is not a MAC address" },
    { "mac=00:16:3e:01:02:03:04",       "t.cfg:7: vif 1: mac=00:16:3e:01:02:03:04 is not a MAC address" },
    { "mac=0:16:3e:1:2:3",              "t.cfg:7: vif 1: mac=0:16:3e:1:2:3 is not a MAC address" },
    { "mac=00-16-3e-01-02-03",          "t.cfg:7: vif 1: mac=00-16-3e-01-02-03 is not a MAC address" },
    { "mac=00:16:3g:01:02:03",          "t.cfg:7: vif 1: mac=00:16:3g:01:02:03 is not a MAC address" },
    { "mac=",                           "t.cfg:7: vif 1: mac= is not a MAC address" },
    { "mac=00:16:3e:01:02:0",           "t.cfg:7: vif 1: mac=00:16:3e:01:02:0 is not a MAC address" },
    { "mac=01:00:5e:00:00:01",          "t.cfg:7: vif 1: mac=01:00:5e:00:00:01 is a multicast address" },
    { "mac=FF:FF:FF:FF:FF:FF",          "t.cfg:7: vif 1: mac=FF:FF:FF:FF:FF:FF is a multicast address" },
    { "mac=33:33:00:00:00:01",          "t.cfg:7: vif 1: mac=33:33:00:00:00:01 is a multicast address" },
    { "mac=00:00:00:00:00:00",          "t.cfg:7: vif 1: mac=00:00:00:00:00:00 is not a usable address" },
    { "mac=00:16:3e:00:00:01,mac=00:16:3e:00:00:01", "t.cfg:7: vif 1: mac= is given twice" },
    { "bridge=a,bridge=b",              "t.cfg:7: vif 1: bridge= is given twice" },
    { "vifname=a,vifname=a",            "t.cfg:7: vif 1: vifname= is given twice" },
    { "bridge=a234567890123456",        "t.cfg:7: vif 1: bridge=a234567890123456 is longer than 15 characters" },
    { "vifname=a234567890123456",       "t.cfg:7: vif 1: vifname=a234567890123456 is longer than 15 characters" },
    { "vifname=a/b",                    "t.cfg:7: vif 1: vifname=a/b may not contain" },
    { "bridge=br:0",                    "t.cfg:7: vif 1: bridge=br:0 may not contain" },
    { "bridge=br 0",                    "t.cfg:7: vif 1: bridge=br 0 may not contain" },
    { "vifname=..",                     "t.cfg:7: vif 1: vifname=.. is not an interface name" },
    { "devid=0",                        "t.cfg:7: vif 1: devid=0: Tandem numbers vifs by their place in the list, and this one is 1" },
    { "devid=x",                        "t.cfg:7: vif 1: devid=x: Tandem numbers vifs" },
};

START_TEST(test_vif_errors)
{
    const struct bad_input *b = &bad_vifs[_i];
    struct tlog_buffer lb;
    struct domain_vif v, before;
    int r = vif_of(b->text, 1, &v, &lb);

    memset(&before, 0xa5, sizeof(before));
    ck_assert_msg(r == -EINVAL, "<%s> accepted (%d)", b->text, r);
    ck_assert_msg(strncmp(lb.last, b->message, strlen(b->message)) == 0,
                  "<%s>\n  logged   <%s>\n  expected <%s...>", b->text, lb.last, b->message);
    /* A failed parse leaves *out alone. */
    ck_assert_mem_eq(&v, &before, sizeof(v));
}
END_TEST

START_TEST(test_mac_text)
{
    uint8_t mac[6] = { 0 };
    char buf[18];

    ck_assert_int_eq(xlcfg_parse_mac("00:16:3E:aB:cd:EF", mac), 0);
    xlcfg_format_mac(mac, buf);
    ck_assert_str_eq(buf, "00:16:3e:ab:cd:ef");
    ck_assert(!xlcfg_mac_unset(mac));
    ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:ab:cd:ef ", mac), -EINVAL);
    ck_assert_int_eq(xlcfg_parse_mac(" 00:16:3e:ab:cd:ef", mac), -EINVAL);
    ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:ab:cd", mac), -EINVAL);
    ck_assert_int_eq(xlcfg_parse_mac("", mac), -EINVAL);
    ck_assert_int_eq(xlcfg_parse_mac("0016:3e:ab:cd:ef:00", mac), -EINVAL);
    ck_assert_str_eq(buf, "00:16:3e:ab:cd:ef");
    xlcfg_format_mac(mac, buf);
    ck_assert_str_eq(buf, "00:16:3e:ab:cd:ef");       /* failures change nothing */
    memset(mac, 0, sizeof(mac));
    ck_assert(xlcfg_mac_unset(mac));
}
END_TEST

/* The vif and disk lists of a config text; lb keeps the last message. */
static int devices_of(const char *text, struct domain_config *c, struct tlog_buffer *lb)
{
    struct xlcfg *cfg = parse_ok(text);
    int r;

    tlog_buffer_init(lb);
    memset(c, 0, sizeof(*c));
    r = xlcfg_get_vifs(cfg, c, &lb->log);
    if (r == 0)
        r = xlcfg_get_disks(cfg, c, &lb->log);
    xlcfg_free(cfg);
    return r;
}

START_TEST(test_vif_list)
{
    struct domain_config *c = calloc(1, sizeof(*c));
    struct tlog_buffer lb;
    struct xlcfg *cfg;
    char mac[18];

    ck_assert_int_eq(devices_of("name = \"g\"\n", c, &lb), 0);
    ck_assert_uint_eq(c->nr_vifs, 0);
    ck_assert_int_eq(devices_of("vif = [ ]\n", c, &lb), 0);
    ck_assert_uint_eq(c->nr_vifs, 0);

    ck_assert_int_eq(devices_of("vif = [\n"
                                "  'mac=00:16:3e:00:00:01,bridge=xenbr0',\n"
                                "  '',\n"
                                "  \"vifname=g-2\",\n"
                                "  'bridge=xenbr0,mac=02:00:00:00:00:09',\n"
                                "]\n", c, &lb), 0);
    ck_assert_str_eq(lb.last, "");
    ck_assert_uint_eq(c->nr_vifs, 4);
    xlcfg_format_mac(c->vifs[0].mac, mac);
    ck_assert_str_eq(mac, "00:16:3e:00:00:01");
    ck_assert_str_eq(c->vifs[0].bridge, "xenbr0");
    ck_assert(xlcfg_mac_unset(c->vifs[1].mac));
    ck_assert_str_eq(c->vifs[1].bridge, "");
    ck_assert_str_eq(c->vifs[2].ifname, "g-2");
    xlcfg_format_mac(c->vifs[3].mac, mac);
    ck_assert_str_eq(mac, "02:00:00:00:00:09");

    /* Errors name the item's own line. */
    ck_assert_int_eq(devices_of("name = \"g\"\nvif = [ 'bridge=b',\n\n  'bridge=c,oops=1' ]\n", c, &lb),
                     -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:4: vif 1: unknown key 'oops' (Tandem's vifs take mac=, bridge= and "
                     "vifname=)");
    ck_assert_uint_eq(c->nr_vifs, 0);
    ck_assert_int_eq(devices_of("vif = [ '', '', '', '',\n '' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:2: more than 4 vifs: Tandem gives a guest at most 4");
    ck_assert_uint_eq(c->nr_vifs, 0);
    ck_assert_int_eq(devices_of("vif = [ 'mac=00:16:3e:0a:0b:0c', '',\n"
                                "        'mac=00:16:3E:0A:0B:0C' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:2: vif 2: mac=00:16:3e:0a:0b:0c is already vif 0's");
    ck_assert_int_eq(devices_of("vif = [ 'vifname=v0', 'vifname=v0' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:1: vif 1: vifname=v0 is already vif 0's");
    ck_assert_int_eq(devices_of("vif = 'bridge=xenbr0'\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:1: 'vif' is a single value but should be a list");
    /* Numbers are their text, here no vifspec. */
    ck_assert_int_eq(devices_of("vif = [ 1 ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:1: vif 0: '1' is not a key=value setting");

    /* Command-line settings add to the list and are named as such. */
    cfg = parse_ok("vif = [ 'bridge=br0' ]\n");
    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_apply_override(cfg, "vif += [ 'bridge=br1', 'mac=01:02:03:04:05:06' ]", &lb.log), 0);
    ck_assert_int_eq(xlcfg_get_vifs(cfg, c, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "command line:1: vif 2: mac=01:02:03:04:05:06 is a multicast address (the "
                     "first byte must be even)");
    xlcfg_free(cfg);
    free(c);
}
END_TEST

/* ---- guest devices: disk= ---- */

static int disk_of(const char *spec, unsigned index, struct domain_disk *d, struct tlog_buffer *lb)
{
    tlog_buffer_init(lb);
    memset(d, 0xa5, sizeof(*d));
    return xlcfg_parse_disk(spec, index, "t.cfg", 3, d, &lb->log);
}

struct good_disk {
    const char *spec;
    const char *target, *vdev;
    bool readonly;
    const char *warning;        /* the start of the last warning, or "" */
};

static const struct good_disk good_disks[] = {
    /* xl-disk-configuration(5)'s equivalent forms */
    { "/dev/vg/guest-volume,,hda",                 "/dev/vg/guest-volume", "hda", false, "" },
    { "/dev/vg/guest-volume,raw,hda,rw",           "/dev/vg/guest-volume", "hda", false, "" },
    { "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume", "/dev/vg/guest-volume", "hda", false, "" },
    { "raw:/dev/vg/guest-volume,hda,w",            "/dev/vg/guest-volume", "hda", false, "" },
    /* positional */
    { "/srv/g1.img,raw,xvda,rw",                   "/srv/g1.img", "xvda", false, "" },
    { "/srv/g1.img,raw,xvda",                      "/srv/g1.img", "xvda", false, "" },
    { "/srv/g1.img,raw,xvdb,ro",                   "/srv/g1.img", "xvdb", true, "" },
    { "/srv/g1.img,raw,xvdb,r",                    "/srv/g1.img", "xvdb", true, "" },
    { "/srv/g1.img,raw,xvdb,w",                    "/srv/g1.img", "xvdb", false, "" },
    { "/srv/g1.img,raw,xvdb,",                     "/srv/g1.img", "xvdb", false, "" },
    { " /srv/g1.img , raw , sdb , ro ",            "/srv/g1.img", "sdb", true, "" },
    { "/srv/g1.img,raw,xvda:disk,rw",              "/srv/g1.img", "xvda", false, "" },
    /* named, in any order, mixed with positional ones */
    { "vdev=vdc,access=ro,target=/srv/g1.img",     "/srv/g1.img", "vdc", true, "" },
    { "access=r,/srv/g1.img,raw,xvde",             "/srv/g1.img", "xvde", true, "" },
    { "/srv/g1.img,raw,vdev=xvdf,ro",              "/srv/g1.img", "xvdf", true, "" },
    { "format=raw,/srv/g1.img,xvdg",               "/srv/g1.img", "xvdg", false, "" },
    { ",raw,xvda,rw,target=/srv/g1.img",           "/srv/g1.img", "xvda", false, "" },
    { "devtype=disk,/srv/g1.img,,vda",             "/srv/g1.img", "vda", false, "" },
    { "format=raw,format=raw,vdev=xvda,target=/a", "/a", "xvda", false, "" },
    { "format=,vdev=xvda,access=,target=/a",       "/a", "xvda", false, "" },
    /* target= takes the rest: commas, '=' and trailing blanks */
    { "vdev=xvda, target=/srv/a,b=c.img",          "/srv/a,b=c.img", "xvda", false, "" },
    { "vdev=xvda,target=/srv/a.img,",              "/srv/a.img", "xvda", false, "" },
    { "vdev=xvda,target=/srv/a b ",                "/srv/a b ", "xvda", false, "" },
    { "vdev=xvda,target = /srv/a",                 "/srv/a", "xvda", false, "" },
    { "vdev=xvda,target=\t/srv/a",                "/srv/a", "xvda", false, "" },
    /* Xen's deprecated prefixes */
    { "file:/srv/g1.img,xvda,w",                   "/srv/g1.img", "xvda", false, "" },
    { "phy:/dev/vg/g1,xvda,r",                     "/dev/vg/g1", "xvda", true, "" },
    { "tap:aio:/srv/g1.img,xvda,w",                "/srv/g1.img", "xvda", false, "" },
    { "tap2:tapdisk:aio:/srv/g1.img,xvda,w",       "/srv/g1.img", "xvda", false, "" },
    { "ioemu:/srv/g1.img,hda:disk,w",              "/srv/g1.img", "hda", false, "" },
    /* as in Xen, a target not starting with '/' is under /dev */
    { "vg/guest-volume,,hda",                      "/dev/vg/guest-volume", "hda", false, "" },
    { "phy:sdb,xvda,w",                            "/dev/sdb", "xvda", false, "" },
    /* vdevs */
    { "/a,,xvdaa",                                 "/a", "xvdaa", false, "" },
    { "/a,,xvdzzz",                                "/a", "xvdzzz", false, "" },
    { "/a,,sdz",                                   "/a", "sdz", false, "" },
    { "/a,,hdt",                                   "/a", "hdt", false, "" },
    /* Xen settings that mean nothing here */
    { "/a,raw,xvda,backendtype=qdisk",             "/a", "xvda", false, "t.cfg:3: disk 1: 'backendtype=qdisk' ignored: " },
    { "backendtype=phy,/a,raw,xvda",               "/a", "xvda", false, "t.cfg:3: disk 1: 'backendtype=phy' ignored: " },
    { "/a,raw,xvda,specification=virtio",          "/a", "xvda", false, "" },
    { "/a,raw,xvda,specification=xen",             "/a", "xvda", false, "t.cfg:3: disk 1: 'specification=xen' ignored: " },
    { "/a,raw,xvda,backend=dom0",                  "/a", "xvda", false, "t.cfg:3: disk 1: 'backend=' ignored: " },
    { "/a,raw,xvda,grant_usage=1",                 "/a", "xvda", false, "t.cfg:3: disk 1: 'grant_usage=' ignored: " },
    { "/a,raw,xvda,direct-io-safe",                "/a", "xvda", false, "t.cfg:3: disk 1: 'direct-io-safe' ignored: " },
    { "/a,raw,xvda,discard",                       "/a", "xvda", false, "t.cfg:3: disk 1: 'discard' ignored: " },
    { "no-discard,/a,raw,xvda",                    "/a", "xvda", false, "t.cfg:3: disk 1: 'no-discard' ignored: " },
    { "/a,raw,xvda,ro,trusted",                    "/a", "xvda", true, "t.cfg:3: disk 1: 'trusted' ignored: " },
    { "/a,raw,xvda,untrusted",                     "/a", "xvda", false, "t.cfg:3: disk 1: 'untrusted' ignored: " },
    { "/a,raw,xvda,colo,colo-host=h,colo-port=9", "/a", "xvda", false, "t.cfg:3: disk 1: 'colo-port=' ignored: " },
    { "/a,raw,xvda,active-disk=/x,hidden-disk=/y", "/a", "xvda", false, "t.cfg:3: disk 1: 'hidden-disk=' ignored: " },
    { "/a,raw,xvda,colo-export=e,no-colo",         "/a", "xvda", false, "t.cfg:3: disk 1: 'no-colo' ignored: " },
    { "script=,/a,raw,xvda",                       "/a", "xvda", false, "" },
};

START_TEST(test_disk_forms)
{
    const struct good_disk *g = &good_disks[_i];
    struct tlog_buffer lb;
    struct domain_disk d;
    int r = disk_of(g->spec, 1, &d, &lb);

    ck_assert_msg(r == 0, "<%s> refused: %s", g->spec, lb.last);
    ck_assert_msg(strncmp(lb.last, g->warning, strlen(g->warning)) == 0 && (g->warning[0] || !lb.last[0]),
                  "<%s>\n  warned   <%s>\n  expected <%s...>", g->spec, lb.last, g->warning);
    ck_assert_str_eq(d.target, g->target);
    ck_assert_str_eq(d.vdev, g->vdev);
    ck_assert_int_eq(d.readonly, g->readonly);
}
END_TEST

static const struct bad_input bad_disks[] = {
    { "/srv/a.qcow2,qcow2,xvda,rw",     "t.cfg:3: disk 0: format qcow2 is not supported: Tandem reads raw images only" },
    { "format=vhd,vdev=xvda,target=/a", "t.cfg:3: disk 0: format vhd is not supported" },
    { "qcow2:/a,xvda,w",                "t.cfg:3: disk 0: format qcow2 is not supported" },
    { "/a,qcow,xvda",                   "t.cfg:3: disk 0: format qcow is not supported" },
    { "/a,qed,xvda",                    "t.cfg:3: disk 0: format qed is not supported" },
    { "/a,empty,xvda",                  "t.cfg:3: disk 0: format empty (a drive without a medium) is not supported" },
    { "/a,vmdk,xvda",                   "t.cfg:3: disk 0: unknown format 'vmdk' (Tandem reads raw images)" },
    { "/a,raw,xvda,rx",                 "t.cfg:3: disk 0: access=rx is not r, ro, rw or w" },
    { "access=RW,vdev=xvda,target=/a",  "t.cfg:3: disk 0: access=RW is not r, ro, rw or w" },
    { "/a,raw,xvda1",                   "t.cfg:3: disk 0: vdev 'xvda1' is not xvd, hd, sd or vd followed by one to three lower-case letters" },
    { "/a,raw,xvd",                     "t.cfg:3: disk 0: vdev 'xvd' is not" },
    { "/a,raw,nvme0n1",                 "t.cfg:3: disk 0: vdev 'nvme0n1' is not" },
    { "/a,raw,xvdabcd",                 "t.cfg:3: disk 0: vdev 'xvdabcd' is not" },
    { "/a,raw,XVDA",                    "t.cfg:3: disk 0: vdev 'XVDA' is not" },
    { "/a,raw",                         "t.cfg:3: disk 0: no vdev given" },
    { "/a",                             "t.cfg:3: disk 0: no vdev given" },
    { "",                               "t.cfg:3: disk 0: no vdev given" },
    { ",raw,xvda",                      "t.cfg:3: disk 0: no target given (the raw image file)" },
    { "vdev=xvda",                      "t.cfg:3: disk 0: no target given" },
    { "vdev=xvda,target=",              "t.cfg:3: disk 0: no target given" },
    { "vdev=xvda,target= ,",            "t.cfg:3: disk 0: no target given" },
    { ",xvda:disk,rw",                  "t.cfg:3: disk 0: no target given" },
    { "/root/image.iso,,hdc,cdrom",     "t.cfg:3: disk 0: CD-ROM drives are not supported" },
    { "/root/image.iso,,hdc,,cdrom",    "t.cfg:3: disk 0: CD-ROM drives are not supported" },
    { "/root/image.iso,raw,hdc,devtype=cdrom", "t.cfg:3: disk 0: CD-ROM drives are not supported" },
    { "/root/image.iso,,hdc:cdrom",     "t.cfg:3: disk 0: CD-ROM drives are not supported" },
    { ",hdc:cdrom,r",                   "t.cfg:3: disk 0: CD-ROM drives are not supported" },
    { "/a,raw,xvda,devtype=floppy",     "t.cfg:3: disk 0: devtype=floppy is not a device type (disk)" },
    { "/a,raw,xvda:usb",                "t.cfg:3: disk 0: unknown device type 'usb' in 'xvda:usb' (disk)" },
    { "script=block-iscsi,vdev=xvda,target=iqn.x:y", "t.cfg:3: disk 0: script=block-iscsi is not supported" },
    { "iscsi:iqn.2001-04.com.example:g1,xvda,w", "t.cfg:3: disk 0: 'iscsi:' names a block script (script=block-iscsi)" },
    { "nbd:host:1234,xvda,w",           "t.cfg:3: disk 0: 'nbd:' names a block script" },
    { "drbd:r0,xvda,w",                 "t.cfg:3: disk 0: 'drbd:' names a block script" },
    { "foo:/a,xvda,w",                  "t.cfg:3: disk 0: unknown prefix 'foo:'" },
    { "xvda:",                          "t.cfg:3: disk 0: unknown prefix 'xvda:'" },
    { "bogus=1,/a,raw,xvda",            "t.cfg:3: disk 0: unknown parameter 'bogus=' (Tandem's disks take target=, format=, vdev= and access=)" },
    { "/a,raw,xvda,rw,extra",           "t.cfg:3: disk 0: too many positional parameters at 'extra' (target, format, vdev, access)" },
    { "vdev=xvda,vdev=xvdb,target=/a",  "t.cfg:3: disk 0: vdev is given twice ('xvda' and 'xvdb')" },
    { "/a,raw,xvda,target=/b",          "t.cfg:3: disk 0: target is given twice ('/a' and '/b')" },
    { "/a,raw,xvda,format=qcow2",       "t.cfg:3: disk 0: format is given twice ('raw' and 'qcow2')" },
    { "/a,raw,xvda,ro,access=rw",       "t.cfg:3: disk 0: access is given twice ('ro' and 'rw')" },
    { "/a,raw,xvda,backendtype=foo",    "t.cfg:3: disk 0: backendtype=foo is not one of Xen's (phy, tap, qdisk, standalone)" },
    { "/a,raw,xvda,specification=scsi", "t.cfg:3: disk 0: specification=scsi is not xen or virtio" },
    { "/a,raw,xvda,grant_usage=2",      "t.cfg:3: disk 0: grant_usage=2 is not 0 or 1" },
    { "/a=b,raw,xvda",                  "t.cfg:3: disk 0: unknown parameter '/a='" },
};

START_TEST(test_disk_errors)
{
    const struct bad_input *b = &bad_disks[_i];
    struct tlog_buffer lb;
    struct domain_disk d, before;
    int r = disk_of(b->text, 0, &d, &lb);

    memset(&before, 0xa5, sizeof(before));
    ck_assert_msg(r == -EINVAL, "<%s> accepted (%d)", b->text, r);
    ck_assert_msg(strncmp(lb.last, b->message, strlen(b->message)) == 0,
                  "<%s>\n  logged   <%s>\n  expected <%s...>", b->text, lb.last, b->message);
    ck_assert_mem_eq(&d, &before, sizeof(d));
}
END_TEST

START_TEST(test_disk_target_length)
{
    char spec[DOMAIN_DISK_PATH_MAX + 64];
    struct tlog_buffer lb;
    struct domain_disk d;

    /* 1023 characters fit, 1024 do not; a relative one counts its /dev/. */
    memset(spec, 'a', sizeof(spec));
    memcpy(spec, "vdev=xvda,target=/", 18);
    spec[17 + DOMAIN_DISK_PATH_MAX - 1] = '\0';
    ck_assert_int_eq(disk_of(spec, 0, &d, &lb), 0);
    ck_assert_uint_eq(strlen(d.target), DOMAIN_DISK_PATH_MAX - 1);
    memset(spec, 'a', sizeof(spec));
    memcpy(spec, "vdev=xvda,target=/", 18);
    spec[17 + DOMAIN_DISK_PATH_MAX] = '\0';
    ck_assert_int_eq(disk_of(spec, 0, &d, &lb), -EINVAL);
    ck_assert_ptr_nonnull(strstr(lb.last, "t.cfg:3: disk 0: target /aaaa"));
    ck_assert_ptr_nonnull(strstr(lb.last, "is longer than 1023 characters"));
    memset(spec, 'a', sizeof(spec));
    memcpy(spec, "vdev=xvda,target=", 17);
    spec[17 + DOMAIN_DISK_PATH_MAX - 5] = '\0';
    ck_assert_int_eq(disk_of(spec, 0, &d, &lb), -EINVAL);
    ck_assert_ptr_nonnull(strstr(lb.last, "t.cfg:3: disk 0: target /dev/aaaa"));
    spec[17 + DOMAIN_DISK_PATH_MAX - 6] = '\0';
    ck_assert_int_eq(disk_of(spec, 0, &d, &lb), 0);
    ck_assert_uint_eq(strlen(d.target), DOMAIN_DISK_PATH_MAX - 1);
    ck_assert(strncmp(d.target, "/dev/aaa", 8) == 0);
}
END_TEST

START_TEST(test_disk_list)
{
    struct domain_config *c = calloc(1, sizeof(*c));
    struct tlog_buffer lb;

    ck_assert_int_eq(devices_of("disk = [\n"
                                "    '/srv/g1.img,raw,xvda,rw',     # the root disk\n"
                                "    'format=raw, vdev=xvdb, access=ro, target=/srv/data,1.img',\n"
                                "    'file:/srv/swap.img,hda,w',\n"
                                "    'vg/g1-logs,,sda',\n"
                                "]\n", c, &lb), 0);
    ck_assert_str_eq(lb.last, "");
    ck_assert_uint_eq(c->nr_disks, 4);
    ck_assert_str_eq(c->disks[0].target, "/srv/g1.img");
    ck_assert_str_eq(c->disks[0].vdev, "xvda");
    ck_assert(!c->disks[0].readonly);
    ck_assert_str_eq(c->disks[1].target, "/srv/data,1.img");
    ck_assert(c->disks[1].readonly);
    ck_assert_str_eq(c->disks[2].vdev, "hda");
    ck_assert_str_eq(c->disks[3].target, "/dev/vg/g1-logs");

    ck_assert_int_eq(devices_of("disk = [ '/a,,xvda', '/b,,xvdb', '/c,,xvdc',\n"
                                "  '/d,,xvdd',\n  '/e,,xvde' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:3: more than 4 disks: Tandem gives a guest at most 4");
    ck_assert_uint_eq(c->nr_disks, 0);
    ck_assert_int_eq(devices_of("disk = [ '/a,,xvda',\n"
                                "  'vdev=xvda,target=/b' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:2: disk 1: vdev xvda is already disk 0's");
    ck_assert_uint_eq(c->nr_disks, 0);
    ck_assert_int_eq(devices_of("memory = 64\ndisk = '/a,,xvda'\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:2: 'disk' is a single value but should be a list");
    ck_assert_int_eq(devices_of("disk = [\n\n'/a,raw,xvda,rw', '/b,qcow2,xvdb,rw' ]\n", c, &lb), -EINVAL);
    ck_assert_str_eq(lb.last, "t.cfg:3: disk 1: format qcow2 is not supported: Tandem reads raw images "
                     "only (qemu-img convert -O raw makes one)");
    free(c);
}
END_TEST

/* ---- MACs assigned at create ---- */

START_TEST(test_assign_macs)
{
    struct domain_config *c = calloc(1, sizeof(*c));
    struct tlog_buffer lb;
    uint8_t first[DOMAIN_MAX_VIFS][6];
    unsigned i, j, round, differ = 0;

    c->nr_vifs = 4;
    ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:7f:00:01", c->vifs[1].mac), 0);
    ck_assert_int_eq(xlcfg_parse_mac("02:00:00:00:00:02", c->vifs[3].mac), 0);
    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
    ck_assert_str_eq(lb.last, "");
    for (i = 0; i < 4; i++) {
        char mac[18];
        xlcfg_format_mac(c->vifs[i].mac, mac);
        if (i == 1) {
            ck_assert_str_eq(mac, "00:16:3e:7f:00:01");
        } else if (i == 3) {
            ck_assert_str_eq(mac, "02:00:00:00:00:02");
        } else {
            /* Xen's prefix; libxl's half of its range. */
            ck_assert_msg(strncmp(mac, "00:16:3e:", 9) == 0, "generated %s", mac);
            ck_assert_msg(c->vifs[i].mac[3] < 0x80, "generated %s", mac);
        }
        for (j = 0; j < i; j++)
            ck_assert_msg(memcmp(c->vifs[i].mac, c->vifs[j].mac, 6) != 0, "vif %u and %u share %s", i, j, mac);
    }
    /* Assigned once, kept: assigning again changes nothing. */
    for (i = 0; i < 4; i++)
        memcpy(first[i], c->vifs[i].mac, 6);
    ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
    for (i = 0; i < 4; i++)
        ck_assert_mem_eq(first[i], c->vifs[i].mac, 6);

    /* Random: fresh domains get other MACs (2^23 choices; 32 alike would
     * mean the bytes are not random). */
    for (round = 0; round < 32; round++) {
        memset(c, 0, sizeof(*c));
        c->nr_vifs = 1;
        ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
        ck_assert(!xlcfg_mac_unset(c->vifs[0].mac));
        ck_assert(memcmp(c->vifs[0].mac, "\x00\x16\x3e", 3) == 0 && c->vifs[0].mac[3] < 0x80);
        differ += memcmp(c->vifs[0].mac, first[0], 6) != 0;
    }
    ck_assert_uint_gt(differ, 16);

    /* A config file replacing a running domain's keeps its MACs: same
     * devid, not given in the file, not taken by another of its vifs. */
    {
        struct domain_config *from = calloc(1, sizeof(*from));
        char mac[18];
        from->nr_vifs = 3;
        ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:00:00:0a", from->vifs[0].mac), 0);
        ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:00:00:0b", from->vifs[1].mac), 0);
        ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:00:00:0c", from->vifs[2].mac), 0);
        memset(c, 0, sizeof(*c));
        c->nr_vifs = 4;
        ck_assert_int_eq(xlcfg_parse_mac("02:00:00:00:00:01", c->vifs[1].mac), 0);
        ck_assert_int_eq(xlcfg_parse_mac("00:16:3e:00:00:0c", c->vifs[3].mac), 0);
        xlcfg_keep_macs(c, from);
        xlcfg_format_mac(c->vifs[0].mac, mac);
        ck_assert_str_eq(mac, "00:16:3e:00:00:0a");
        xlcfg_format_mac(c->vifs[1].mac, mac);
        ck_assert_str_eq(mac, "02:00:00:00:00:01");     /* its own mac= wins */
        ck_assert(xlcfg_mac_unset(c->vifs[2].mac));      /* vif 3 has it */
        xlcfg_format_mac(c->vifs[3].mac, mac);
        ck_assert_str_eq(mac, "00:16:3e:00:00:0c");
        free(from);
    }

    /* Only vifs that exist get one. */
    memset(c, 0, sizeof(*c));
    c->nr_vifs = 2;
    ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
    ck_assert(!xlcfg_mac_unset(c->vifs[1].mac));
    ck_assert(xlcfg_mac_unset(c->vifs[2].mac));
    free(c);
}
END_TEST

/* ---- the domain config's JSON (xen/config.c) ---- */

static struct domain_config *config_from_text(const char *text)
{
    struct domain_config *c = malloc(sizeof(*c));
    struct tlog_buffer lb;
    struct xlcfg *cfg = parse_ok(text);

    domain_config_init(c);
    snprintf(c->name, sizeof(c->name), "g1");
    snprintf(c->kernel, sizeof(c->kernel), "/boot/k");
    tlog_buffer_init(&lb);
    ck_assert_msg(xlcfg_get_vifs(cfg, c, &lb.log) == 0 && xlcfg_get_disks(cfg, c, &lb.log) == 0, "%s", lb.last);
    xlcfg_free(cfg);
    return c;
}

START_TEST(test_json_devices_round_trip)
{
    struct domain_config *c = config_from_text(
        "vif = [ 'mac=00:16:3e:01:02:03,bridge=xenbr0', 'vifname=g1-e1', '' ]\n"
        "disk = [ '/srv/g1.img,raw,xvda,rw', 'vdev=xvdb,access=ro,target=/srv/a \"b\",c.img' ]\n");
    struct domain_config *d = malloc(sizeof(*d));
    struct tlog_buffer lb;
    char *json = malloc(16384), *json2 = malloc(16384);

    tlog_buffer_init(&lb);
    ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
    ck_assert_int_eq(domain_config_check(c, &lb.log), 0);
    ck_assert_int_eq(domain_config_to_json(c, json, 16384), 0);
    ck_assert_ptr_nonnull(strstr(json, "\"vifs\":[{\"mac\":\"00:16:3e:01:02:03\",\"bridge\":\"xenbr0\",\"vifname\":\"\"}"));
    ck_assert_ptr_nonnull(strstr(json, "\"access\":\"ro\""));
    ck_assert_int_eq(domain_config_from_json(json, d, &lb.log), 0);
    ck_assert_str_eq(lb.last, "");
    ck_assert_mem_eq(c, d, sizeof(*c));
    ck_assert_uint_eq(d->nr_vifs, 3);
    ck_assert_uint_eq(d->nr_disks, 2);
    ck_assert_str_eq(d->disks[1].target, "/srv/a \"b\",c.img");
    ck_assert(d->disks[1].readonly);
    ck_assert_int_eq(domain_config_to_json(d, json2, 16384), 0);
    ck_assert_str_eq(json, json2);

    /* A MAC not yet assigned (xl create -n, a config file for xl
     * migrate -C) is left out and reads back unassigned. */
    memset(c->vifs[2].mac, 0, 6);
    ck_assert_int_eq(domain_config_to_json(c, json, 16384), 0);
    ck_assert_ptr_nonnull(strstr(json, "{\"bridge\":\"\",\"vifname\":\"\"}"));
    ck_assert_int_eq(domain_config_from_json(json, d, &lb.log), 0);
    ck_assert(xlcfg_mac_unset(d->vifs[2].mac));
    ck_assert_mem_eq(c, d, sizeof(*c));
    free(json);
    free(json2);
    free(c);
    free(d);
}
END_TEST

START_TEST(test_json_without_devices)
{
    /* A config from before Tandem had devices: no devices. */
    static const char old[] =
        "{\"name\":\"g1\",\"memory\":128,\"vcpus\":1,\"kernel\":\"\\/k\",\"cmdline\":\"\","
        "\"on_poweroff\":\"destroy\",\"on_reboot\":\"restart\",\"on_crash\":\"destroy\",\"log_dirty\":\"auto\"}";
    struct domain_config *c = malloc(sizeof(*c));
    struct tlog_buffer lb;
    char json[4096];

    tlog_buffer_init(&lb);
    memset(c, 0x5a, sizeof(*c));
    ck_assert_int_eq(domain_config_from_json(old, c, &lb.log), 0);
    ck_assert_uint_eq(c->nr_vifs, 0);
    ck_assert_uint_eq(c->nr_disks, 0);
    ck_assert(xlcfg_mac_unset(c->vifs[0].mac));
    /* ... and writes the same text again: no empty device lists. */
    ck_assert_int_eq(domain_config_to_json(c, json, sizeof(json)), 0);
    ck_assert_str_eq(json, old);
    ck_assert_int_eq(domain_config_from_json("{\"name\":\"g1\",\"kernel\":\"/k\",\"vifs\":[],\"disks\":[]}",
                                             c, &lb.log), 0);
    ck_assert_uint_eq(c->nr_vifs + c->nr_disks, 0);
    free(c);
}
END_TEST

START_TEST(test_json_log_dirty_ring)
{
    struct domain_config *c = config_from_text(""), *d = malloc(sizeof(*d));
    struct tlog_buffer lb;
    char json[4096];

    tlog_buffer_init(&lb);
    c->log_dirty_ring = DOMAIN_DIRTY_RING_MAX;
    ck_assert_int_eq(domain_config_check(c, &lb.log), 0);
    ck_assert_int_eq(domain_config_to_json(c, json, sizeof(json)), 0);
    ck_assert_ptr_nonnull(strstr(json, "\"log_dirty_ring\":65536"));
    ck_assert_int_eq(domain_config_from_json(json, d, &lb.log), 0);
    ck_assert_uint_eq(d->log_dirty_ring, DOMAIN_DIRTY_RING_MAX);
    ck_assert_mem_eq(c, d, sizeof(*c));

    /* In range for the reader, but not a power of two: the check refuses
     * it, as it refuses it from xl.cfg. */
    ck_assert_int_eq(domain_config_from_json("{\"name\":\"g1\",\"kernel\":\"/k\",\"log_dirty_ring\":3000}", d,
                                             &lb.log), 0);
    ck_assert_int_eq(domain_config_check(d, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "log_dirty_ring=3000: must be a power of two from 1024 to 65536 (entries per vCPU)");
    d->log_dirty_ring = 8192;
    d->log_dirty = DOMAIN_LOGDIRTY_BITMAP;
    ck_assert_int_eq(domain_config_check(d, &lb.log), -EINVAL);
    ck_assert_ptr_nonnull(strstr(lb.last, "the bitmap has no ring"));
    static const char *const bad[] = { "512", "131072", "\"4096\"", "-4096", "4096.5" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{\"name\":\"g1\",\"kernel\":\"/k\",\"log_dirty_ring\":%s}", bad[i]);
        ck_assert_msg(domain_config_from_json(json, d, &lb.log) == -EINVAL, "accepted %s", json);
        ck_assert_str_eq(lb.last, "domain config: 'log_dirty_ring' must be 1024 to 65536");
    }
    free(c);
    free(d);
}
END_TEST

static const struct bad_input bad_json[] = {
    { "\"vifs\":{}",                                        "domain config: 'vifs' must be a list of at most 4 objects" },
    { "\"vifs\":[{},{},{},{},{}]",                          "domain config: 'vifs' must be a list of at most 4 objects" },
    { "\"vifs\":[\"bridge=br0\"]",                          "domain config: vifs[0] must be an object" },
    { "\"vifs\":[{\"bridge\":\"br0\",\"model\":\"e1000\"}]", "domain config: vifs[0]: unknown key 'model'" },
    { "\"vifs\":[{\"mac\":\"00:16:3e:01:02\"}]",            "domain config: vifs[0].mac '00:16:3e:01:02' is not a MAC address" },
    { "\"vifs\":[{\"mac\":\"00:00:00:00:00:00\"}]",         "domain config: vifs[0].mac '00:00:00:00:00:00' is not a MAC address" },
    { "\"vifs\":[{\"mac\":5}]",                             "domain config: vifs[0].mac must be a string" },
    { "\"vifs\":[{},{\"mac\":\"01:00:5e:00:00:01\"}]",      "domain config: vif 1: MAC 01:00:5e:00:00:01 is a multicast address" },
    { "\"vifs\":[{\"mac\":\"00:16:3e:00:00:01\"},{\"mac\":\"00:16:3E:00:00:01\"}]", "domain config: vif 1: MAC 00:16:3e:00:00:01 is already vif 0's" },
    { "\"vifs\":[{\"bridge\":\"a234567890123456\"}]",       "domain config: vifs[0].bridge must be a string shorter than 16" },
    { "\"vifs\":[{\"vifname\":\"a/b\"}]",                   "domain config: vif 0: bridge '' or vifname 'a/b' is not an interface name" },
    { "\"vifs\":[{\"vifname\":\"v\"},{\"vifname\":\"v\"}]", "domain config: vif 1: vifname v is already vif 0's" },
    { "\"vifs\":[{\"bridge\":\"a\\u0000b\"}]",              "domain config: vifs[0].bridge must be a string" },
    { "\"disks\":[{\"target\":\"/a\",\"vdev\":\"xvda\"}]",  "domain config: disks[0] needs target, vdev and access" },
    { "\"disks\":[{\"target\":\"/a\",\"vdev\":\"xvda\",\"access\":\"w\"}]", "domain config: disks[0].access 'w' is not rw or ro" },
    { "\"disks\":[{\"target\":\"/a\",\"vdev\":\"xvda\",\"access\":\"rw\",\"format\":\"raw\"}]", "domain config: disks[0]: unknown key 'format'" },
    { "\"disks\":[{\"target\":\"a\",\"vdev\":\"xvda\",\"access\":\"rw\"}]", "domain config: disk 0: the target must be an absolute path" },
    { "\"disks\":[{\"target\":\"\",\"vdev\":\"xvda\",\"access\":\"rw\"}]", "domain config: disk 0: the target must be an absolute path" },
    { "\"disks\":[{\"target\":\"/a\",\"vdev\":\"xvda1\",\"access\":\"rw\"}]", "domain config: disk 0: vdev 'xvda1' is not" },
    { "\"disks\":[{\"target\":\"/a\",\"vdev\":\"xvda\",\"access\":\"rw\"},{\"target\":\"/b\",\"vdev\":\"xvda\",\"access\":\"ro\"}]", "domain config: disk 1: vdev xvda is already disk 0's" },
    { "\"disks\":[{\"target\":true,\"vdev\":\"xvda\",\"access\":\"rw\"}]", "domain config: disks[0].target must be a string" },
    { "\"disks\":[1]",                                      "domain config: disks[0] must be an object" },
    { "\"disks\":\"/a,,xvda\"",                             "domain config: 'disks' must be a list of at most 4 objects" },
};

START_TEST(test_json_bad_devices)
{
    const struct bad_input *b = &bad_json[_i];
    struct domain_config *c = malloc(sizeof(*c));
    struct tlog_buffer lb;
    char json[1024];

    snprintf(json, sizeof(json), "{\"name\":\"g1\",\"kernel\":\"/k\",%s}", b->text);
    tlog_buffer_init(&lb);
    ck_assert_msg(domain_config_from_json(json, c, &lb.log) == -EINVAL, "accepted %s", json);
    ck_assert_msg(strncmp(lb.last, b->message, strlen(b->message)) == 0,
                  "<%s>\n  logged   <%s>\n  expected <%s...>", json, lb.last, b->message);
    ck_assert_uint_eq(c->nr_vifs + c->nr_disks, 0);
    free(c);
}
END_TEST

START_TEST(test_json_fits_registry)
{
    struct domain_config *c = config_from_text("vif = [ '', '', '', '' ]\n");
    struct registry_entry *e = malloc(sizeof(*e));
    struct tlog_buffer lb;
    size_t room;
    unsigned i;

    /* Four disks with the longest paths of slashes (which JSON writes as
     * two characters each), a long kernel path: the JSON cannot fit. */
    c->nr_disks = 4;
    for (i = 0; i < 4; i++) {
        memset(c->disks[i].target, '/', DOMAIN_DISK_PATH_MAX - 1);
        snprintf(c->disks[i].vdev, sizeof(c->disks[i].vdev), "xvd%c", 'a' + i);
    }
    memset(c->kernel, '/', 4000);
    c->kernel[4000] = '\0';
    tlog_buffer_init(&lb);
    ck_assert_int_eq(domain_config_check(c, &lb.log), -E2BIG);
    ck_assert_ptr_nonnull(strstr(lb.last, "the domain config is too large"));

    /* Shrink the kernel path until it fits: then the registry can keep it,
     * with the MACs that are still to be assigned. */
    for (room = 4000; room > 0 && domain_config_check(c, NULL) != 0; room -= 50)
        c->kernel[room] = '\0';
    ck_assert_uint_gt(room, 0);
    tlog_buffer_init(&lb);
    ck_assert_int_eq(domain_config_check(c, &lb.log), 0);
    ck_assert_int_eq(xlcfg_assign_macs(c, &lb.log), 0);
    ck_assert_int_eq(domain_config_to_json(c, e->config_json, sizeof(e->config_json)), 0);
    free(e);
    free(c);
}
END_TEST

START_TEST(test_config_check_devices)
{
    struct domain_config *c = config_from_text("vif = [ 'bridge=b' ]\ndisk = [ '/a,,xvda' ]\n");
    struct tlog_buffer lb;

    tlog_buffer_init(&lb);
    ck_assert_int_eq(domain_config_check(c, &lb.log), 0);
    c->nr_vifs = DOMAIN_MAX_VIFS + 1;
    ck_assert_int_eq(domain_config_check(c, &lb.log), -EINVAL);
    c->nr_vifs = 1;
    c->disks[0].target[0] = 'a';
    ck_assert_int_eq(domain_config_check(c, &lb.log), -EINVAL);
    ck_assert_str_eq(lb.last, "disk 0: the target must be an absolute path of at most 1023 characters");
    c->disks[0].target[0] = '/';
    memset(c->vifs[0].bridge, 'b', sizeof(c->vifs[0].bridge));
    ck_assert_int_eq(domain_config_check(c, &lb.log), -EINVAL);
    free(c);
}
END_TEST


Suite *unit_suite(void)
{
    Suite *s = suite_create("xlcfg");
    TCase *tc;

    tc = tcase_create("values");
    tcase_add_test(tc, test_value_kinds);
    tcase_add_test(tc, test_comments_and_separators);
    tcase_add_test(tc, test_continuation_lines);
    tcase_add_test(tc, test_crlf_file);
    tcase_add_test(tc, test_multiline_lists);
    tcase_add_test(tc, test_escapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("settings");
    tcase_add_test(tc, test_later_setting_wins);
    tcase_add_test(tc, test_append);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_set_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookups");
    tcase_add_test(tc, test_get_number);
    tcase_add_test(tc, test_get_bool);
    tcase_add_test(tc, test_get_wrong_kind);
    tcase_add_test(tc, test_get_string_list);
    tcase_add_test(tc, test_unused_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, test_format_round_trip);
    tcase_add_test(tc, test_empty_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_bad_input, 0, (int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])));
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_many_keys);
    tcase_add_test(tc, test_parse_file);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("devices");
    tcase_add_loop_test(tc, test_vif_forms, 0, (int)(sizeof(good_vifs) / sizeof(good_vifs[0])));
    tcase_add_loop_test(tc, test_vif_ignored_keys, 0,
                        (int)(sizeof(ignored_vif_keys) / sizeof(ignored_vif_keys[0])));
    tcase_add_loop_test(tc, test_vif_errors, 0, (int)(sizeof(bad_vifs) / sizeof(bad_vifs[0])));
    tcase_add_test(tc, test_mac_text);
    tcase_add_test(tc, test_vif_list);
    tcase_add_loop_test(tc, test_disk_forms, 0, (int)(sizeof(good_disks) / sizeof(good_disks[0])));
    tcase_add_loop_test(tc, test_disk_errors, 0, (int)(sizeof(bad_disks) / sizeof(bad_disks[0])));
    tcase_add_test(tc, test_disk_target_length);
    tcase_add_test(tc, test_disk_list);
    tcase_add_test(tc, test_assign_macs);
    tcase_add_test(tc, test_json_devices_round_trip);
    tcase_add_test(tc, test_json_without_devices);
    tcase_add_test(tc, test_json_log_dirty_ring);
    tcase_add_loop_test(tc, test_json_bad_devices, 0, (int)(sizeof(bad_json) / sizeof(bad_json[0])));
    tcase_add_test(tc, test_json_fits_registry);
    tcase_add_test(tc, test_config_check_devices);
    suite_add_tcase(s, tc);
    return s;
}
