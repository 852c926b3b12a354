/* Fuzz target for the witness datagrams of Remus's split-brain guard
 * (xen/witness.c): the probe a backup sends to the primary's domain
 * process and its answer both come off the network.  What must hold:
 *
 * - the parser reads only the bytes it is given (it runs on an exact-size
 *   copy; ASan sees any read past it);
 * - no datagram parses as both a probe and an answer;
 * - a datagram that parses has a name of 1 to DOMAIN_NAME_MAX printable
 *   characters without spaces, and formats back to exactly its own bytes
 *   (the grammar has one spelling of each datagram);
 * - a datagram that fails leaves no partial nonce behind. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/xen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_witness: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 512)
        return 0;                    /* a datagram buffer is 200 bytes */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    const char *kinds[2] = { DOMPROC_WITNESS_PROBE, DOMPROC_WITNESS_ALIVE };
    int parsed = 0;
    for (int k = 0; k < 2; k++) {
        char name[DOMAIN_NAME_MAX + 1];
        uint64_t nonce = 12345;
        if (domproc_witness_parse(copy, size, kinds[k], name, &nonce)) {
            if (nonce != 12345)
                fail("a refused datagram wrote the nonce");
            continue;
        }
        parsed++;
        size_t nl = strlen(name);
        if (!nl || nl > DOMAIN_NAME_MAX)
            fail("a name of the wrong length");
        for (size_t i = 0; i < nl; i++)
            if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
                fail("a name with a space or an unprintable character");
        char out[DOMAIN_NAME_MAX + 64];
        int n = domproc_witness_format(out, sizeof(out), kinds[k], name, nonce);
        if (n < 0 || (size_t)n != size || memcmp(out, copy, size))
            fail("a parsed datagram does not format back to itself");
    }
    if (parsed > 1)
        fail("a datagram parsed as both a probe and an answer");
    free(copy);
    return 0;
}
