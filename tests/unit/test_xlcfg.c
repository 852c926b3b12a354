/* Unit tests of the xl.cfg parser (tools/xlcfg.c). */
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
    return s;
}
