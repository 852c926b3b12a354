/* Fuzz target for the percent-encoded words of the backup's options line
 * (remus/option_word.c): the backup's domain process decodes a fence
 * command or a primary's name that came over the other host's command
 * line.  What must hold:
 *
 * - the decoder reads only the NUL-terminated text it is given (an
 *   exact-size copy; ASan sees any read past it) and writes only within
 *   the size it is given, however small;
 * - a decoded value is no longer than its encoding and holds no NUL;
 * - encoding a decoded value and decoding that gives the same value, and
 *   the encoding is one word (no space, no control character, no byte
 *   above 0x7e): what the backup runs is what the operator wrote. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/remus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_remus_option: %s: %.200s\n", what, text);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || !size)
        return 0;
    /* The first byte picks the output size: the decoder's bounds matter
     * most where the room is short. */
    size_t room = data[0] % 64 + 1;
    data++;
    size--;
    char *text = malloc(size + 1), *out = malloc(room), *enc = malloc(3 * size + 1), *back = malloc(size + 1);
    if (!text || !out || !enc || !back)
        goto done;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t tl = strlen(text);
    if (remus_option_decode(text, out, room))
        goto done;
    size_t ol = strlen(out);
    if (ol >= room || ol > tl)
        fail("a decoded value longer than its room or its encoding", text);
    if (remus_option_encode(out, enc, 3 * ol + 1))
        fail("a decoded value does not encode in three bytes a byte", text);
    for (const unsigned char *p = (const unsigned char *)enc; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            fail("an encoding that is not one printable word", text);
    if (remus_option_decode(enc, back, ol + 1) || strcmp(back, out))
        fail("encoding and decoding again changes the value", text);
done:
    free(text);
    free(out);
    free(enc);
    free(back);
    return 0;
}
