/* The stream-version negotiation line: parser and formatter (see the
 * header and docs/compatibility.md). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_negotiation.h"

static const char key_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_-";

/* Versions are 1 to 9999: four digits are plenty, and a bound keeps
 * strtoul far from overflowing. */
#define VERSION_DIGITS_MAX 4

const char *negotiation_versions_text(unsigned mask, char *buf, size_t buflen)
{
    size_t n = 0;
    if (!buflen)
        return buf;
    buf[0] = '\0';
    for (unsigned v = 0; v < 32 && n < buflen; v++)
        if (mask & (1u << v))
            n += (size_t)snprintf(buf + n, buflen - n, "%s%u", n ? "," : "", v);
    return buf;
}

void negotiation_quote_line(const char *line, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen)
        return;
    for (size_t i = 0; i < len && o + 8 < outlen; i++) {
        unsigned char c = (unsigned char)line[i];
        if (o > 72) {
            o += (size_t)snprintf(out + o, outlen - o, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

unsigned negotiation_pick_version(unsigned theirs, unsigned ours)
{
    unsigned common = theirs & ours;
    for (unsigned v = 31; v > 0; v--)
        if (common & (1u << v))
            return v;
    return 0;
}

/* A release= value the parser would take back: what it reads between
 * spaces, within the bound. */
static bool release_is_valid(const char *release)
{
    size_t len = strnlen(release, NEGOTIATION_RELEASE_MAX + 1);
    if (len == 0 || len > NEGOTIATION_RELEASE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)release[i] <= 0x20 || (unsigned char)release[i] > 0x7e)
            return false;
    return true;
}

int negotiation_format_line(const struct negotiation_offer *offer, char *buf, size_t buflen)
{
    /* Version 0 cannot be written: the parser takes no leading zeros. */
    if (!release_is_valid(offer->release) || !offer->streams || (offer->streams & 1u))
        return -EINVAL;
    char versions[100];  /* "1,2,...,31" at most */
    negotiation_versions_text(offer->streams, versions, sizeof(versions));
    int n = snprintf(buf, buflen, "%s release=%s streams=%s\n", NEGOTIATION_WORD, offer->release, versions);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= buflen)
        return -ENOSPC;
    /* Cannot happen with a valid release (at most 179 bytes), but the
     * limit is the other side's, so it is checked, not assumed. */
    if (n > NEGOTIATION_LINE_MAX)
        return -EINVAL;
    return n;
}

/* Logs why the line is refused, with the line itself. */
static int malformed(const struct tlog *log, const char *line, size_t len, const char *why)
{
    char shown[100];
    negotiation_quote_line(line, len, shown, sizeof(shown));
    tlog_error(log, "the receiver's negotiation line '%s' is malformed : %s", shown, why);
    return -EPROTO;
}

/* Parses a streams= value into *mask; false if it is not a list of versions. */
static bool parse_versions(const char *value, unsigned *mask)
{
    const char *p = value;
    do {
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > VERSION_DIGITS_MAX || *p == '0' || (p[digits] != ',' && p[digits] != '\0'))
            return false;
        unsigned v = (unsigned)strtoul(p, NULL, 10);
        if (v < 32)
            *mask |= 1u << v;
        p += digits;
    } while (*p++ == ',');
    return true;
}

int negotiation_parse_line(const char *line, size_t len, struct negotiation_offer *offer, const struct tlog *log)
{
    char why[160];
    memset(offer, 0, sizeof(*offer));
    /* Before anything else, so that a NUL cannot hide the rest of the line
     * from the string functions below. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e) {
            snprintf(why, sizeof(why), "byte 0x%02x at offset %zu is not printable ASCII",
                     (unsigned char)line[i], i);
            return malformed(log, line, len, why);
        }
    char copy[NEGOTIATION_LINE_MAX];
    if (len >= sizeof(copy)) {  /* its newline would make it one too long */
        snprintf(why, sizeof(why), "longer than %d bytes", NEGOTIATION_LINE_MAX);
        return malformed(log, line, len, why);
    }
    memcpy(copy, line, len);
    copy[len] = '\0';
    char *save = NULL, *tok = strtok_r(copy, " ", &save);
    if (!tok || strcmp(tok, NEGOTIATION_WORD) != 0) {
        snprintf(why, sizeof(why), "it does not start with '%s'", NEGOTIATION_WORD);
        goto fail;
    }
    bool have_release = false, have_streams = false;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || strspn(tok, key_chars) != (size_t)(eq - tok)) {
            snprintf(why, sizeof(why), "'%.40s' is not key=value", tok);
            goto fail;
        }
        *eq = '\0';
        const char *key = tok, *value = eq + 1;
        if ((!strcmp(key, "release") && have_release) || (!strcmp(key, "streams") && have_streams)) {
            snprintf(why, sizeof(why), "%s= given twice", key);
            goto fail;
        }
        if (!strcmp(key, "release")) {
            if (!*value || strlen(value) > NEGOTIATION_RELEASE_MAX) {
                snprintf(why, sizeof(why), "release= must be 1 to %d characters", NEGOTIATION_RELEASE_MAX);
                goto fail;
            }
            memcpy(offer->release, value, strlen(value) + 1);
            have_release = true;
        } else if (!strcmp(key, "streams")) {
            if (!parse_versions(value, &offer->streams)) {
                snprintf(why, sizeof(why), "streams=%.40s is not a list of versions such as 2,3", value);
                goto fail;
            }
            have_streams = true;
        }
        /* Any other key: a later release's; skip it. */
    }
    if (!have_release || !have_streams) {
        snprintf(why, sizeof(why), "it has no %s=", have_release ? "streams" : "release");
        goto fail;
    }
    return 0;

fail:
    memset(offer, 0, sizeof(*offer));
    return malformed(log, line, len, why);
}
