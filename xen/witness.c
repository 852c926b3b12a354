/* The witness datagrams of Remus's split-brain guard (xl remus --witness):
 * the backup's probe and the primary's domain process's answer, each
 * "<kind> <name> <nonce>".  They come off the network, so the parser is
 * strict and has a fuzz target (tests/fuzz/fuzz_witness.c). */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tandem/xen.h"

int domproc_witness_parse(const char *buf, size_t len, const char *kind, char name[DOMAIN_NAME_MAX + 1],
                          uint64_t *nonce)
{
    size_t kl = strlen(kind), i = kl + 1, n = 0;
    if (len <= i || memcmp(buf, kind, kl) != 0 || buf[kl] != ' ')
        return -EINVAL;
    /* The name: printable, no spaces, as xl.cfg's name= allows. */
    while (i < len && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i];
        if (c <= ' ' || c >= 0x7f || n == DOMAIN_NAME_MAX)
            return -EINVAL;
        name[n++] = (char)c;
        i++;
    }
    name[n] = '\0';
    if (!n || i == len)
        return -EINVAL;
    i++;
    /* The nonce: decimal, no leading zero, no sign, 64 bits. */
    if (i == len || (buf[i] == '0' && i + 1 < len))
        return -EINVAL;
    uint64_t v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)buf[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *nonce = v;
    return 0;
}

int domproc_witness_format(char *out, size_t len, const char *kind, const char *name, uint64_t nonce)
{
    int n = snprintf(out, len, "%s %s %llu", kind, name, (unsigned long long)nonce);
    return n < 0 || (size_t)n >= len ? -E2BIG : n;
}
