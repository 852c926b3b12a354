/* Fuzz target for the migrate handshake's negotiation line
 * (tools/migrate_negotiation.c), which comes from the other host.  The
 * input is the line as a receiver sends it; one final newline is dropped,
 * as the sender's reader does.  What must hold:
 *
 * - the parser reads only the bytes it is given: it runs on an exact-size
 *   copy (ASan sees any read past it), and a prefix parsed in place, with
 *   the rest of the input after it, gives what the prefix alone gives;
 * - a line that parses logs nothing, has a release of 1 to 63 printable
 *   characters without spaces that is in the line as release=, no version
 *   0, and the version picked from it is 0 or the highest of {2,3} it has;
 * - a line that fails returns -EPROTO, a zeroed offer and a printable
 *   "is malformed : " message;
 * - a parsed offer formats to a line of at most 256 bytes that parses back
 *   to the same offer and formats to the same text again;
 * - the formatter, given an offer made of the input's bytes, writes exactly
 *   the offers the parser can read back, and reads them back the same. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/log.h"
#include "migrate_negotiation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_negotiation: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static bool all_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* What the parser must take as release=, said independently of it. */
static bool release_acceptable(const char *release, size_t room)
{
    size_t len = strnlen(release, room);
    if (len == 0 || len > NEGOTIATION_RELEASE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)release[i] <= 0x20 || (unsigned char)release[i] > 0x7e)
            return false;
    return true;
}

static bool same_offer(const struct negotiation_offer *a, const struct negotiation_offer *b)
{
    return a->streams == b->streams && strcmp(a->release, b->release) == 0;
}

static int parse(const char *line, size_t len, struct negotiation_offer *o, struct tlog_buffer *lb)
{
    tlog_buffer_init(lb);
    return negotiation_parse_line(line, len, o, &lb->log);
}

/* Parses an exact-size heap copy of line[0..len). */
static int parse_exact(const char *line, size_t len, struct negotiation_offer *o, struct tlog_buffer *lb)
{
    char *exact = malloc(len ? len : 1);
    if (!exact)
        fail("out of memory", NULL);
    memcpy(exact, line, len);
    /* With len 0 the one byte is not the line's: make it one the parser
     * would complain about, should it read it. */
    if (!len)
        exact[0] = '\x01';
    int r = parse(exact, len, o, lb);
    free(exact);
    return r;
}

/* Formats o, which must succeed, and parses the result back. */
static void round_trip(const struct negotiation_offer *o)
{
    char text[NEGOTIATION_LINE_MAX + 1], again[NEGOTIATION_LINE_MAX + 1];
    struct negotiation_offer back;
    struct tlog_buffer lb;
    int n = negotiation_format_line(o, text, sizeof(text));
    if (n <= 0)
        fail("a valid offer does not format", o->release);
    if ((size_t)n > NEGOTIATION_LINE_MAX || strlen(text) != (size_t)n || text[n - 1] != '\n' ||
        memchr(text, '\n', (size_t)n - 1))
        fail("a formatted line is not one line of at most 256 bytes", text);
    if (parse_exact(text, (size_t)n - 1, &back, &lb) != 0)
        fail("a formatted line does not parse back", lb.last);
    if (!same_offer(o, &back))
        fail("a formatted line parses back to another offer", text);
    if (negotiation_format_line(&back, again, sizeof(again)) != n || memcmp(text, again, (size_t)n) != 0)
        fail("formatting is not stable", text);
}

static void check_parsed(int r, const struct negotiation_offer *o, const struct tlog_buffer *lb,
                         const char *line, size_t len)
{
    static const struct negotiation_offer zero;
    if (r != 0) {
        if (r != -EPROTO)
            fail("a refused line gives something else than -EPROTO", lb->last);
        if (memcmp(o, &zero, sizeof(zero)) != 0)
            fail("a refused line leaves an offer behind", lb->last);
        if (!strstr(lb->last, "is malformed : ") || !all_printable(lb->last))
            fail("a refused line is not reported as malformed, printably", lb->last);
        return;
    }
    if (lb->last[0])
        fail("a line that parses logs an error", lb->last);
    if (!release_acceptable(o->release, sizeof(o->release)))
        fail("a parsed release is empty, too long or not printable", NULL);
    /* The release is the line's: " release=<it>" followed by a space or
     * the end of the line. */
    char want[sizeof(o->release) + 16];
    size_t wlen = (size_t)snprintf(want, sizeof(want), " release=%s", o->release);
    bool found = false;
    for (size_t i = 0; !found && i + wlen <= len; i++)
        found = memcmp(line + i, want, wlen) == 0 && (i + wlen == len || line[i + wlen] == ' ');
    if (!found)
        fail("the parsed release is not in the line", o->release);
    if (o->streams & 1u)
        fail("version 0 was taken", NULL);
    unsigned picked = negotiation_pick_version(o->streams, NEGOTIATION_STREAMS_OURS);
    unsigned common = o->streams & NEGOTIATION_STREAMS_OURS;
    if (picked ? (picked != 2 && picked != 3) || !(common & (1u << picked)) || (common >> picked) != 1u : common)
        fail("the picked version is not the highest of {2,3} both ends read", NULL);
    if (o->streams)
        round_trip(o);
    else {
        char text[NEGOTIATION_LINE_MAX + 1];
        if (negotiation_format_line(o, text, sizeof(text)) != -EINVAL)
            fail("an offer without versions formats", NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    size_t len = size && data[size - 1] == '\n' ? size - 1 : size;
    struct negotiation_offer offer, in_place, alone;
    struct tlog_buffer lb, lb_in_place, lb_alone;

    int r = parse_exact(line, len, &offer, &lb);
    check_parsed(r, &offer, &lb, line, len);

    /* A prefix, cut anywhere, must not see the bytes after it. */
    size_t cut = len ? ((size_t)data[0] * 131u + size) % (len + 1) : 0;
    int r_in_place = parse(line, cut, &in_place, &lb_in_place);
    int r_alone = parse_exact(line, cut, &alone, &lb_alone);
    if (r_in_place != r_alone || memcmp(&in_place, &alone, sizeof(alone)) != 0 ||
        strcmp(lb_in_place.last, lb_alone.last) != 0)
        fail("a prefix parses differently with bytes after it", lb_in_place.last);
    check_parsed(r_alone, &alone, &lb_alone, line, cut);

    /* The quoting of lines for error messages: bounded and printable. */
    char shown[100];
    memset(shown, 'x', sizeof(shown));
    negotiation_quote_line(line, len, shown, sizeof(shown));
    if (!memchr(shown, '\0', sizeof(shown)) || !all_printable(shown) || strlen(shown) > 80)
        fail("a quoted line is unbounded or not printable", NULL);

    /* The formatter on an offer made of the input: versions from its first
     * four bytes, the release from the next ones. */
    struct negotiation_offer made = { 0 };
    char text[NEGOTIATION_LINE_MAX + 1];
    if (size >= 4)
        made.streams = (unsigned)data[0] | (unsigned)data[1] << 8 | (unsigned)data[2] << 16 |
                       (unsigned)data[3] << 24;
    if (size > 4)
        memcpy(made.release, data + 4, size - 4 < sizeof(made.release) - 1 ? size - 4 : sizeof(made.release) - 1);
    bool valid = release_acceptable(made.release, sizeof(made.release)) && made.streams && !(made.streams & 1u);
    int n = negotiation_format_line(&made, text, sizeof(text));
    if (valid)
        round_trip(&made);
    else if (n != -EINVAL)
        fail("an offer the parser could not read back formats", text);
    return 0;
}
