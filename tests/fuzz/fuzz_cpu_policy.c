/* Fuzz target for the CPU policy parsers (xen/cpu_features.c): xl.cfg's
 * cpuid= in both of Xen's forms, host.cfg's cpuid_mask and the policy
 * JSON.  The first byte picks the parser.  Whatever parses must survive
 * everything done with it next: applying, checking, levelling, turning a
 * policy into overrides, and a JSON round trip that must give the same
 * policy back. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/xen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_cpu_policy: %s\n", what);
    abort();
}

/* A fixed policy to apply overrides to and check against. */
static void base_policy(struct cpu_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0, CPU_NO_SUBLEAF, 0xd, 0, 0, 0 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 1, CPU_NO_SUBLEAF, 0xa10f11, 0x800, 0xf7f83203, 0x178bfbff };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 7, 0, 1, 0xf1bf03ab, 0x5f46, 0x10 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0xd, 0, 0xe7, 0x240, 0x980, 0 };
    p->msrs[p->nr_msrs++] = (struct domain_msr_entry){ .idx = 0x10a, .val = 0x69 };
}

static void use_overrides(const struct cpu_overrides *o)
{
    static struct cpu_policy p, max;
    char msg[1024], x[96];
    base_policy(&p);
    base_policy(&max);
    (void)cpu_policy_apply(&p, o);
    (void)cpu_policy_missing(&p, &max, msg, sizeof(msg));
    for (unsigned i = 0; i < o->n; i++) {
        struct cpu_overrides back = { 0 };
        char err[256];
        if (cpu_override_format_xend(&o->cpuid[i], x, sizeof(x)))
            fail("an override does not format");
        if (cpu_overrides_parse_xend(x, &back, err, sizeof(err)) && (o->cpuid[i].set || o->cpuid[i].clear))
            fail("a formatted override does not parse back");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char err[256];
    static struct cpu_overrides o;
    memset(&o, 0, sizeof(o));
    switch (data[0] % 4) {
    case 0:
        if (!cpu_overrides_parse_libxl(text, &o, err, sizeof(err)))
            use_overrides(&o);
        else if (!err[0])
            fail("libxl form refused without a message");
        break;
    case 1:
        if (!cpu_overrides_parse_xend(text, &o, err, sizeof(err)))
            use_overrides(&o);
        else if (!err[0])
            fail("xend form refused without a message");
        break;
    case 2:
        if (!cpu_overrides_parse_mask(text, &o, err, sizeof(err))) {
            for (unsigned i = 0; i < o.n; i++)
                if (o.cpuid[i].set)
                    fail("a host mask that sets a bit");
            use_overrides(&o);
        }
        break;
    default: {
        static struct cpu_policy p, back, lvl;
        err[0] = 0;
        if (cpu_policy_from_json(text, size - 1, &p, err, sizeof(err))) {
            if (!err[0])
                fail("JSON refused without a message");
            break;
        }
        char *json = NULL;
        if (cpu_policy_to_json(&p, "guest", "fuzz", &json))
            fail("a parsed policy does not write");
        if (cpu_policy_from_json(json, strlen(json), &back, err, sizeof(err)))
            fail("a written policy does not read back");
        if (back.nr_leaves != p.nr_leaves || back.nr_msrs != p.nr_msrs ||
            memcmp(back.leaves, p.leaves, p.nr_leaves * sizeof(p.leaves[0])) ||
            memcmp(back.msrs, p.msrs, p.nr_msrs * sizeof(p.msrs[0])))
            fail("the JSON round trip changed the policy");
        free(json);
        struct cpu_policy two[2];
        two[0] = p;
        base_policy(&two[1]);
        if (cpu_policy_level(two, 2, &lvl))
            fail("levelling failed");
        char msg[1024];
        if (cpu_policy_missing(&lvl, &p, msg, sizeof(msg)) || cpu_policy_missing(&lvl, &two[1], msg, sizeof(msg)))
            fail("a levelled policy has a feature one of its inputs lacks");
        memset(&o, 0, sizeof(o));
        cpu_overrides_from_policy(&p, &o);
        use_overrides(&o);
        break;
    }
    }
    free(text);
    return 0;
}
