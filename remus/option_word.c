/* One word of the backup's options line: a value that may hold spaces and
 * any other byte but NUL (a fence command, a host name) travels
 * percent-encoded, so that the line stays split on spaces.  The sender's
 * xl encodes; the backup's domain process decodes what came over the
 * other host's command line: outside input (tests/fuzz/fuzz_remus_option). */
#include "config.h"
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "tandem/remus.h"

int remus_option_encode(const char *value, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (!len)
        return -E2BIG;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        bool plain = *p > ' ' && *p < 0x7f && *p != '%';
        if (o + (plain ? 1 : 3) >= len)
            return -E2BIG;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int remus_option_decode(const char *in, char *out, size_t len)
{
    size_t o = 0;
    if (!len)
        return -EINVAL;
    for (const char *p = in; *p; p++) {
        unsigned c = (unsigned char)*p;
        if (c == '%') {
            int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned)(hi * 16 + lo);
            if (!c)
                return -EINVAL;    /* no NUL inside a value */
            p += 2;
        }
        if (o + 1 >= len)
            return -EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}
