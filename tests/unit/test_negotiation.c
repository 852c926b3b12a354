/* Unit tests of the migrate handshake's negotiation line
 * (tools/migrate_negotiation.c, docs/compatibility.md). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "migrate_negotiation.h"
#include "tandem/log.h"

#define V(n) (1u << (n))

/* Parses text (no newline), insisting that it succeeds. */
static struct negotiation_offer parse_ok(const char *text)
{
    struct tlog_buffer lb;
    struct negotiation_offer o;
    tlog_buffer_init(&lb);
    int r = negotiation_parse_line(text, strlen(text), &o, &lb.log);
    ck_assert_msg(r == 0, "<%s> refused (%d): %s", text, r, lb.last);
    ck_assert_str_eq(lb.last, "");
    return o;
}

/* Parses len bytes, insisting that they are refused as malformed for the
 * reason why (a part of the message after "is malformed : "). */
static void parse_refused(const char *text, size_t len, const char *why)
{
    struct tlog_buffer lb;
    struct negotiation_offer o;
    memset(&o, 0x55, sizeof(o));
    tlog_buffer_init(&lb);
    int r = negotiation_parse_line(text, len, &o, &lb.log);
    ck_assert_msg(r == -EPROTO, "<%.*s> gave %d, not -EPROTO", (int)len, text, r);
    ck_assert_msg(strstr(lb.last, "the receiver's negotiation line '") == lb.last, "message: %s", lb.last);
    const char *reason = strstr(lb.last, "' is malformed : ");
    ck_assert_msg(reason, "no 'is malformed :' in %s", lb.last);
    ck_assert_msg(strstr(reason, why), "<%.*s>: expected '%s' in: %s", (int)len, text, why, lb.last);
    /* Nothing of a refused line is left to be used by mistake. */
    ck_assert_str_eq(o.release, "");
    ck_assert_uint_eq(o.streams, 0);
}

START_TEST(valid_lines)
{
    struct negotiation_offer o = parse_ok("tandem-migrate release=1.1.0 streams=2,3");
    ck_assert_str_eq(o.release, "1.1.0");
    ck_assert_uint_eq(o.streams, V(2) | V(3));

    o = parse_ok("tandem-migrate release=1.1.0-v2only streams=2");
    ck_assert_str_eq(o.release, "1.1.0-v2only");
    ck_assert_uint_eq(o.streams, V(2));

    /* Any order of keys and of versions; repeated versions; 1 and 31. */
    o = parse_ok("tandem-migrate streams=3,2,3,31,1 release=2.0.0~rc1+git.abc/x");
    ck_assert_str_eq(o.release, "2.0.0~rc1+git.abc/x");
    ck_assert_uint_eq(o.streams, V(1) | V(2) | V(3) | V(31));

    /* Several spaces between pairs are one separator, as are leading and
     * trailing ones after the word. */
    o = parse_ok("tandem-migrate   release=1   streams=3  ");
    ck_assert_str_eq(o.release, "1");
    ck_assert_uint_eq(o.streams, V(3));

    /* Values may hold '=' and ',' (only the first '=' splits). */
    o = parse_ok("tandem-migrate release=a=b,c streams=2");
    ck_assert_str_eq(o.release, "a=b,c");
}
END_TEST

START_TEST(unknown_keys_and_versions_skipped)
{
    /* What a later release might say: more keys, more versions. */
    struct negotiation_offer o =
        parse_ok("tandem-migrate release=9.0.0 streams=4,3,2 cpu=levelled  x-new=1 under_score=");
    ck_assert_str_eq(o.release, "9.0.0");
    ck_assert_uint_eq(o.streams, V(2) | V(3) | V(4));
    ck_assert_uint_eq(negotiation_pick_version(o.streams, NEGOTIATION_STREAMS_OURS), 3);

    /* Versions that do not fit the mask are skipped, not refused. */
    o = parse_ok("tandem-migrate release=9 streams=32,100,9999,2");
    ck_assert_uint_eq(o.streams, V(2));

    /* Only unknown versions: the line is fine, there is just nothing in
     * common (the caller says so). */
    o = parse_ok("tandem-migrate release=9 streams=4,5");
    ck_assert_uint_eq(o.streams, V(4) | V(5));
    ck_assert_uint_eq(negotiation_pick_version(o.streams, NEGOTIATION_STREAMS_OURS), 0);
    o = parse_ok("tandem-migrate release=9 streams=64");
    ck_assert_uint_eq(o.streams, 0);

    /* An unknown key is skipped even when it repeats. */
    o = parse_ok("tandem-migrate x=1 x=2 release=1 streams=2");
    ck_assert_uint_eq(o.streams, V(2));
}
END_TEST

START_TEST(malformed_lines)
{
    static const struct {
        const char *line, *why;
    } cases[] = {
        { "xl-migrate release=1.1.0 streams=2,3", "it does not start with 'tandem-migrate'" },
        { "tandem-migrate-x release=1.1.0 streams=2,3", "it does not start with 'tandem-migrate'" },
        { "", "it does not start with 'tandem-migrate'" },
        { "   ", "it does not start with 'tandem-migrate'" },
        { "tandem-migrate", "it has no release=" },
        { "tandem-migrate streams=2,3", "it has no release=" },
        { "tandem-migrate release=1.1.0", "it has no streams=" },
        { "tandem-migrate release=1.1.0 streams=2,3 junk", "'junk' is not key=value" },
        { "tandem-migrate release=1.1.0 =1 streams=2", "'=1' is not key=value" },
        { "tandem-migrate Release=1.1.0 streams=2", "'Release=1.1.0' is not key=value" },
        { "tandem-migrate release=1.1.0 streams=2 x.y=1", "'x.y=1' is not key=value" },
        { "tandem-migrate release=1.1.0 release=1.2.0 streams=2,3", "release= given twice" },
        { "tandem-migrate release=1.1.0 streams=2 streams=3", "streams= given twice" },
        { "tandem-migrate release= streams=2,3", "release= must be 1 to 63 characters" },
        { "tandem-migrate release=1.1.0 streams=", "streams= is not a list of versions such as 2,3" },
        { "tandem-migrate release=1.1.0 streams=2,,3", "streams=2,,3 is not a list" },
        { "tandem-migrate release=1.1.0 streams=2,3,", "streams=2,3, is not a list" },
        { "tandem-migrate release=1.1.0 streams=,2", "streams=,2 is not a list" },
        { "tandem-migrate release=1.1.0 streams=0", "streams=0 is not a list" },
        { "tandem-migrate release=1.1.0 streams=02,3", "streams=02,3 is not a list" },
        { "tandem-migrate release=1.1.0 streams=2,10000", "streams=2,10000 is not a list" },
        { "tandem-migrate release=1.1.0 streams=+2", "streams=+2 is not a list" },
        { "tandem-migrate release=1.1.0 streams=2;3", "streams=2;3 is not a list" },
        { "tandem-migrate release=1.1.0 streams=v3", "streams=v3 is not a list" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_refused(cases[i].line, strlen(cases[i].line), cases[i].why);

    /* A release one character too long. */
    char line[200];
    snprintf(line, sizeof(line), "tandem-migrate release=%064d streams=2", 7);
    parse_refused(line, strlen(line), "release= must be 1 to 63 characters");
    snprintf(line, sizeof(line), "tandem-migrate release=%063d streams=2", 7);
    ck_assert_uint_eq(strlen(parse_ok(line).release), 63);
}
END_TEST

START_TEST(unprintable_bytes)
{
    parse_refused("\001\377garbage", 9, "byte 0x01 at offset 0 is not printable ASCII");
    /* A NUL inside the line must not hide what follows it. */
    static const char nul[] = "tandem-migrate release=1.1.0\0 streams=2,3";
    parse_refused(nul, sizeof(nul) - 1, "byte 0x00 at offset 28 is not printable ASCII");
    parse_refused("tandem-migrate\trelease=1 streams=2", 34, "byte 0x09 at offset 14");
    parse_refused("tandem-migrate release=1 streams=2\r", 35, "byte 0x0d at offset 34");
    parse_refused("tandem-migrate release=1 streams=2\n", 35, "byte 0x0a at offset 34");
    parse_refused("tandem-migrate release=\x7f streams=2", 34, "byte 0x7f at offset 23");
    /* The line shown in the message is escaped. */
    struct tlog_buffer lb;
    struct negotiation_offer o;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(negotiation_parse_line("\001\377garbage", 9, &o, &lb.log), -EPROTO);
    ck_assert_msg(strstr(lb.last, "'\\x01\\xffgarbage'"), "message: %s", lb.last);
}
END_TEST

START_TEST(length_limit)
{
    /* 256 bytes with the newline is the longest line: 255 without. */
    char line[NEGOTIATION_LINE_MAX + 8];
    const char *head = "tandem-migrate release=1.1.0 streams=2,3 pad=";
    size_t head_len = strlen(head);
    memcpy(line, head, head_len);
    memset(line + head_len, '0', sizeof(line) - head_len);

    struct tlog_buffer lb;
    struct negotiation_offer o;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(negotiation_parse_line(line, NEGOTIATION_LINE_MAX - 1, &o, &lb.log), 0);
    ck_assert_str_eq(o.release, "1.1.0");
    ck_assert_uint_eq(o.streams, V(2) | V(3));

    parse_refused(line, NEGOTIATION_LINE_MAX, "longer than 256 bytes");
    parse_refused(line, sizeof(line), "longer than 256 bytes");
    /* Unprintable bytes are the first thing said, even in a long line. */
    line[sizeof(line) - 1] = '\001';
    parse_refused(line, sizeof(line), "byte 0x01 at offset 263 ");

    /* The parser reads len bytes and no more: the same prefix parses the
     * same whatever follows it. */
    static const char full[] = "tandem-migrate release=1.1.0 streams=2,3";
    o = parse_ok("tandem-migrate release=1.1.0 streams=2");
    tlog_buffer_init(&lb);
    struct negotiation_offer cut;
    ck_assert_int_eq(negotiation_parse_line(full, sizeof(full) - 3, &cut, &lb.log), 0);
    ck_assert_str_eq(cut.release, o.release);
    ck_assert_uint_eq(cut.streams, o.streams);
}
END_TEST

START_TEST(format_and_round_trip)
{
    char buf[NEGOTIATION_LINE_MAX + 1];
    struct negotiation_offer ours = { .release = "1.1.0", .streams = NEGOTIATION_STREAMS_OURS };
    int n = negotiation_format_line(&ours, buf, sizeof(buf));
    /* Byte for byte what 1.1.0 receivers write. */
    ck_assert_str_eq(buf, "tandem-migrate release=1.1.0 streams=2,3\n");
    ck_assert_int_eq(n, (int)strlen(buf));

    static const struct negotiation_offer offers[] = {
        { "1.1.0", V(2) | V(3) },
        { "x", V(1) },
        { "9.0.0-rc1+a=b,c", V(2) | V(4) | V(31) },
        { "123456789012345678901234567890123456789012345678901234567890123", 0xfffffffeu },
    };
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        n = negotiation_format_line(&offers[i], buf, sizeof(buf));
        ck_assert_msg(n > 0 && n <= NEGOTIATION_LINE_MAX, "offer %zu: %d", i, n);
        ck_assert_int_eq(buf[n - 1], '\n');
        struct tlog_buffer lb;
        struct negotiation_offer back;
        tlog_buffer_init(&lb);
        ck_assert_msg(negotiation_parse_line(buf, (size_t)n - 1, &back, &lb.log) == 0, "%s: %s", buf, lb.last);
        ck_assert_str_eq(back.release, offers[i].release);
        ck_assert_uint_eq(back.streams, offers[i].streams);
    }

    /* What the parser could not read back is not written. */
    static const struct negotiation_offer bad[] = {
        { "", V(2) },
        { "1.1 0", V(2) },
        { "1.1\t0", V(2) },
        { "1.1.0", 0 },
        { "1.1.0", V(0) | V(2) },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(negotiation_format_line(&bad[i], buf, sizeof(buf)) == -EINVAL, "bad offer %zu formats", i);
    struct negotiation_offer unterminated;
    memset(unterminated.release, 'a', sizeof(unterminated.release));
    unterminated.streams = V(2);
    ck_assert_int_eq(negotiation_format_line(&unterminated, buf, sizeof(buf)), -EINVAL);

    /* A buffer too small is said so, not overrun. */
    char small[16];
    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(negotiation_format_line(&ours, small, sizeof(small)), -ENOSPC);
}
END_TEST

START_TEST(pick_and_text)
{
    ck_assert_uint_eq(negotiation_pick_version(V(2) | V(3), NEGOTIATION_STREAMS_OURS), 3);
    ck_assert_uint_eq(negotiation_pick_version(V(2), NEGOTIATION_STREAMS_OURS), 2);
    ck_assert_uint_eq(negotiation_pick_version(V(2) | V(3) | V(4), NEGOTIATION_STREAMS_OURS), 3);
    ck_assert_uint_eq(negotiation_pick_version(V(1) | V(4), NEGOTIATION_STREAMS_OURS), 0);
    ck_assert_uint_eq(negotiation_pick_version(0, NEGOTIATION_STREAMS_OURS), 0);

    char buf[100];
    ck_assert_str_eq(negotiation_versions_text(V(3) | V(2), buf, sizeof(buf)), "2,3");
    ck_assert_str_eq(negotiation_versions_text(0, buf, sizeof(buf)), "");
    ck_assert_str_eq(negotiation_versions_text(V(1) | V(31), buf, sizeof(buf)), "1,31");
    char small[4];
    ck_assert_str_eq(negotiation_versions_text(V(2) | V(3) | V(4), small, sizeof(small)), "2,3");

    /* Quoting: bounded, escaped. */
    char line[300], shown[100];
    memset(line, 'a', sizeof(line));
    negotiation_quote_line(line, sizeof(line), shown, sizeof(shown));
    ck_assert_msg(strlen(shown) < 80 && strstr(shown, "...") != NULL, "shown: %s", shown);
    negotiation_quote_line("a\\b\n", 4, shown, sizeof(shown));
    ck_assert_str_eq(shown, "a\\x5cb\\x0a");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("negotiation");
    TCase *tc = tcase_create("line");
    tcase_add_test(tc, valid_lines);
    tcase_add_test(tc, unknown_keys_and_versions_skipped);
    tcase_add_test(tc, malformed_lines);
    tcase_add_test(tc, unprintable_bytes);
    tcase_add_test(tc, length_limit);
    tcase_add_test(tc, format_and_round_trip);
    tcase_add_test(tc, pick_and_text);
    suite_add_tcase(s, tc);
    return s;
}
