/* Fuzz target for the domain config as JSON (xen/config.c,
 * domain_config_from_json): it arrives from outside in every incoming
 * migration, Remus stream and saved image (the libxl layer's xl header
 * carries it), and is read back from the registry.  What must hold:
 *
 * - the parser reads only the NUL-terminated text it is given (it runs
 *   on an exact-size copy; ASan sees any read past it);
 * - a config that parses and passes domain_config_check writes out as
 *   JSON within a registry record's size, and that JSON reads back to the
 *   same config and writes out to the same text again: what a receiver
 *   stores is what it was sent, and a domain moved twice is the same
 *   domain. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/xen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *json)
{
    fprintf(stderr, "fuzz_domain_config: %s: %.300s\n", what, json);
    abort();
}

/* No message is of use here, and the parser's many refusals would
 * drown a libFuzzer run. */
static void quiet(void *opaque, enum tlog_level level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
}
static const struct tlog quiet_log = { .fn = quiet, .min_level = TLOG_ERROR };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { CAP = sizeof(((struct registry_entry *)0)->config_json) };
    if (size > 4 * CAP)
        return 0;
    char *text = malloc(size + 1);
    struct domain_config *c = malloc(sizeof(*c)), *again = malloc(sizeof(*again));
    char *json = malloc(CAP), *json2 = malloc(CAP);
    if (!text || !c || !again || !json || !json2)
        goto out;
    memcpy(text, data, size);
    text[size] = '\0';
    if (domain_config_from_json(text, c, &quiet_log) || domain_config_check(c, &quiet_log))
        goto out;
    if (domain_config_to_json(c, json, CAP))
        fail("a config that passed the check does not write out in a registry record's size", text);
    if (domain_config_from_json(json, again, &quiet_log))
        fail("the JSON a config writes out does not read back", json);
    if (domain_config_check(again, &quiet_log))
        fail("a config read back from its own JSON fails the check", json);
    if (domain_config_to_json(again, json2, CAP) || strcmp(json, json2))
        fail("a config read back from its own JSON writes out differently", json);
    if (memcmp(c, again, sizeof(*c)))
        fail("a config read back from its own JSON is not the same config", json);
out:
    free(text);
    free(c);
    free(again);
    free(json);
    free(json2);
    return 0;
}
