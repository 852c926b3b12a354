/* CPU policies as data: feature names, xl.cfg's cpuid= syntax, levelling,
 * the missing-feature check and the JSON form (docs/cpu-policy.md).
 *
 * Nothing here touches KVM, so the parsers can be fuzzed on their own;
 * xen/cpu_policy.c builds host and guest policies from KVM with these.
 *
 * A feature is a bit of a "feature word": the CPUID registers libxen-dev's
 * public/arch-x86/cpufeatureset.h names, plus the MSR_ARCH_CAPABILITIES
 * bits (its word 16).  Levelling and the host checks look at feature
 * words, the XSAVE components of leaf 0xd.0 and the feature MSRs; the
 * other fields (family, cache geometry, ...) describe a CPU, they do not
 * promise anything a guest could miss after a move. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "tandem/xen.h"
#include "cpu_features.h"

/* {NAME, word * 32 + bit}, generated from libxen-dev's header. */
static const struct feature_name {
    const char *name;
    unsigned value;
} feature_names[] = {
#define XEN_CPUFEATURE(name, value) { #name, value },
#include <xen/arch-x86/cpufeatureset.h>
#undef XEN_CPUFEATURE
};
#define N_FEATURE_NAMES (sizeof(feature_names) / sizeof(feature_names[0]))

/* Where each featureset word lives (the comments of cpufeatureset.h). */
const struct cpu_feature_word cpu_feature_words[] = {
    { 0, 0x1, CPU_NO_SUBLEAF, CPU_EDX },
    { 1, 0x1, CPU_NO_SUBLEAF, CPU_ECX },
    { 2, 0x80000001, CPU_NO_SUBLEAF, CPU_EDX },
    { 3, 0x80000001, CPU_NO_SUBLEAF, CPU_ECX },
    { 4, 0xd, 1, CPU_EAX },
    { 5, 0x7, 0, CPU_EBX },
    { 6, 0x7, 0, CPU_ECX },
    { 7, 0x80000007, CPU_NO_SUBLEAF, CPU_EDX },
    { 8, 0x80000008, CPU_NO_SUBLEAF, CPU_EBX },
    { 9, 0x7, 0, CPU_EDX },
    { 10, 0x7, 1, CPU_EAX },
    { 11, 0x80000021, CPU_NO_SUBLEAF, CPU_EAX },
    { 12, 0x7, 1, CPU_EBX },
    { 13, 0x7, 2, CPU_EDX },
    { 14, 0x7, 1, CPU_ECX },
    { 15, 0x7, 1, CPU_EDX },
    { 18, 0x80000021, CPU_NO_SUBLEAF, CPU_ECX },
};
const unsigned cpu_nr_feature_words = sizeof(cpu_feature_words) / sizeof(cpu_feature_words[0]);

#define ARCH_CAPS_WORD 16
#define MSR_PLATFORM_INFO 0xce
#define PLATFORM_INFO_CPUID_FAULTING (1ULL << 31)

static const char *const reg_names[] = { "eax", "ebx", "ecx", "edx" };
static const char *const reg_names_upper[] = { "EAX", "EBX", "ECX", "EDX" };

uint32_t cpu_dynamic_bits(unsigned word)
{
    switch (word) {
    case 1: return 1u << 27 | 1u << 31;   /* OSXSAVE (from CR4), HYPERVISOR (always ours) */
    case 6: return 1u << 4;               /* OSPKE (from CR4) */
    }
    return 0;
}

/* Feature MSRs whose bits are features a host either has or lacks. */
static uint64_t msr_feature_bits(uint32_t idx)
{
    switch (idx) {
    case CPU_MSR_ARCH_CAPABILITIES: return ~0ULL;
    case MSR_PLATFORM_INFO: return PLATFORM_INFO_CPUID_FAULTING;  /* the rest are ratios */
    }
    return 0;
}

/* "sse4.1", "SSE4-1" and "sse4_1" are one name. */
static bool names_equal(const char *user, size_t len, const char *xen)
{
    size_t i = 0;
    for (; i < len && xen[i]; i++) {
        char a = (char)tolower((unsigned char)user[i]), b = (char)tolower((unsigned char)xen[i]);
        if (a == '-' || a == '.')
            a = '_';
        if (a != b)
            return false;
    }
    return i == len && !xen[i];
}

const char *cpu_feature_name(unsigned word, unsigned bit, char *buf, size_t len)
{
    for (size_t i = 0; i < N_FEATURE_NAMES; i++)
        if (feature_names[i].value == word * 32 + bit) {
            size_t k = 0;
            for (const char *p = feature_names[i].name; *p && k + 1 < len; p++)
                buf[k++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
            buf[k] = 0;
            return buf;
        }
    return NULL;
}

static bool subleaf_matches(uint32_t want, uint32_t have)
{
    /* Leaves with subleaves (7, 0xd) list subleaf 0 where a leaf without
     * them says "none": a feature of "leaf 7" is one of 7.0. */
    if (want == have)
        return true;
    return (want == CPU_NO_SUBLEAF && have == 0) || (want == 0 && have == CPU_NO_SUBLEAF);
}

struct domain_cpuid_leaf *cpu_policy_find(const struct cpu_policy *p, uint32_t leaf, uint32_t subleaf)
{
    const struct domain_cpuid_leaf *near = NULL;
    for (unsigned i = 0; i < p->nr_leaves; i++) {
        if (p->leaves[i].leaf != leaf)
            continue;
        if (p->leaves[i].subleaf == subleaf)
            return (struct domain_cpuid_leaf *)&p->leaves[i];
        if (!near && subleaf_matches(subleaf, p->leaves[i].subleaf))
            near = &p->leaves[i];
    }
    return (struct domain_cpuid_leaf *)near;
}

uint32_t *cpu_leaf_reg(struct domain_cpuid_leaf *l, unsigned reg)
{
    return reg == CPU_EAX ? &l->a : reg == CPU_EBX ? &l->b : reg == CPU_ECX ? &l->c : &l->d;
}

uint32_t cpu_policy_reg(const struct cpu_policy *p, uint32_t leaf, uint32_t subleaf, unsigned reg)
{
    struct domain_cpuid_leaf *l = cpu_policy_find(p, leaf, subleaf);
    return l ? *cpu_leaf_reg(l, reg) : 0;
}

static struct domain_msr_entry *policy_msr(const struct cpu_policy *p, uint32_t idx)
{
    for (unsigned i = 0; i < p->nr_msrs; i++)
        if (p->msrs[i].idx == idx)
            return (struct domain_msr_entry *)&p->msrs[i];
    return NULL;
}

/* ---- Overrides ---------------------------------------------------------- */

static int add_override(struct cpu_overrides *o, uint32_t leaf, uint32_t subleaf, unsigned reg, uint32_t set,
                        uint32_t clear)
{
    if (!set && !clear)
        return 0;
    for (unsigned i = 0; i < o->n; i++) {
        struct cpu_override *ov = &o->cpuid[i];
        if (ov->leaf == leaf && ov->subleaf == subleaf && ov->reg == reg) {
            /* The later setting of a bit wins. */
            ov->set = (ov->set & ~clear) | set;
            ov->clear = (ov->clear & ~set) | clear;
            return 0;
        }
    }
    if (o->n >= CPU_OVERRIDES_MAX)
        return -ENOSPC;
    o->cpuid[o->n++] = (struct cpu_override){ leaf, subleaf, reg, set, clear };
    return 0;
}

static int add_msr_override(struct cpu_overrides *o, uint32_t idx, uint64_t set, uint64_t clear)
{
    if (!set && !clear)
        return 0;
    for (unsigned i = 0; i < o->n_msr; i++)
        if (o->msr[i].index == idx) {
            o->msr[i].set = (o->msr[i].set & ~clear) | set;
            o->msr[i].clear = (o->msr[i].clear & ~set) | clear;
            return 0;
        }
    if (o->n_msr >= CPU_MSR_OVERRIDES_MAX)
        return -ENOSPC;
    o->msr[o->n_msr++] = (struct cpu_msr_override){ idx, set, clear };
    return 0;
}

static const struct cpu_feature_word *word_info(unsigned word)
{
    for (unsigned i = 0; i < cpu_nr_feature_words; i++)
        if (cpu_feature_words[i].word == word)
            return &cpu_feature_words[i];
    return NULL;
}

/* A feature by name: -ENOENT if cpufeatureset.h has no such name. */
static int set_feature(struct cpu_overrides *o, const char *name, size_t len, char value, char *err, size_t errlen)
{
    const struct feature_name *f = NULL;
    for (size_t i = 0; i < N_FEATURE_NAMES && !f; i++)
        if (names_equal(name, len, feature_names[i].name))
            f = &feature_names[i];
    if (!f) {
        snprintf(err, errlen, "unknown CPU feature '%.*s' (names are those of Xen's cpufeatureset.h)", (int)len,
                 name);
        return -ENOENT;
    }
    if (value != '0' && value != '1')
        return 0;   /* x, k, s: what the host gives by default */
    unsigned word = f->value / 32, bit = f->value % 32;
    int rc;
    if (word == ARCH_CAPS_WORD || word == ARCH_CAPS_WORD + 1) {
        uint64_t m = 1ULL << ((word - ARCH_CAPS_WORD) * 32 + bit);
        rc = add_msr_override(o, CPU_MSR_ARCH_CAPABILITIES, value == '1' ? m : 0, value == '0' ? m : 0);
    } else {
        const struct cpu_feature_word *w = word_info(word);
        if (!w) {
            snprintf(err, errlen, "CPU feature '%.*s' is in a feature word Tandem does not map", (int)len, name);
            return -EINVAL;
        }
        uint32_t m = 1u << bit;
        rc = add_override(o, w->leaf, w->subleaf, w->reg, value == '1' ? m : 0, value == '0' ? m : 0);
    }
    if (rc)
        snprintf(err, errlen, "too many CPUID settings (at most %d registers)", CPU_OVERRIDES_MAX);
    return rc;
}

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (buf[0] == '-' || buf[0] == '+' || isspace((unsigned char)buf[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 0);
    if (*end || errno || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* family, model and stepping live in leaf 1 EAX, with the extended
 * family and model fields as the SDM defines them. */
static int set_signature(struct cpu_overrides *o, const char *key, size_t klen, const char *val, size_t vlen,
                         char *err, size_t errlen)
{
    uint32_t v;
    if (!parse_u32(val, vlen, &v)) {
        snprintf(err, errlen, "%.*s=%.*s: not a number", (int)klen, key, (int)vlen, val);
        return -EINVAL;
    }
    uint32_t set, clear;
    if (names_equal(key, klen, "family")) {
        if (v > 0xff + 0xf) {
            snprintf(err, errlen, "family=%u: at most %u", v, 0xff + 0xf);
            return -EINVAL;
        }
        clear = 0x0ff00f00;
        set = v <= 0xf ? v << 8 : 0xf << 8 | (v - 0xf) << 20;
    } else if (names_equal(key, klen, "model")) {
        if (v > 0xff) {
            snprintf(err, errlen, "model=%u: at most 255", v);
            return -EINVAL;
        }
        clear = 0x000f00f0;
        set = (v & 0xf) << 4 | (v >> 4) << 16;
    } else {
        if (v > 0xf) {
            snprintf(err, errlen, "stepping=%u: at most 15", v);
            return -EINVAL;
        }
        clear = 0xf;
        set = v;
    }
    if (add_override(o, 1, CPU_NO_SUBLEAF, CPU_EAX, set, clear & ~set)) {
        snprintf(err, errlen, "too many CPUID settings (at most %d registers)", CPU_OVERRIDES_MAX);
        return -ENOSPC;
    }
    return 0;
}

/* Xen's keys that take a number, and the ones Tandem implements. */
static const char *const numeric_keys[] = { "apicidsize", "brandid", "clflush", "family", "localapicid",
                                            "maxleaf", "maxhvleaf", "model", "nc", "proccount",
                                            "procpkg", "stepping" };

static int parse_feature_list(const char *text, struct cpu_overrides *o, bool mask, char *err, size_t len)
{
    const char *p = text;
    bool first = true;
    if (!*p) {
        snprintf(err, len, "empty CPUID setting");
        return -EINVAL;
    }
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (first && names_equal(p, n, "host")) {
            /* The libxl form starts with "host": the host's default. */
        } else if (!eq || eq == p) {
            snprintf(err, len, "'%.*s': expected name=value", (int)n, p);
            return -EINVAL;
        } else {
            size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
            const char *val = eq + 1;
            bool numeric = false;
            for (size_t i = 0; i < sizeof(numeric_keys) / sizeof(numeric_keys[0]); i++)
                numeric |= names_equal(p, klen, numeric_keys[i]);
            if (numeric) {
                if (mask || !(names_equal(p, klen, "family") || names_equal(p, klen, "model") ||
                              names_equal(p, klen, "stepping"))) {
                    snprintf(err, len, "'%.*s': Tandem %s", (int)klen, p,
                             mask ? "masks only features" : "sets only family, model and stepping");
                    return -EINVAL;
                }
                int rc = set_signature(o, p, klen, val, vlen, err, len);
                if (rc)
                    return rc;
            } else {
                if (vlen != 1 || !strchr("01xks", *val)) {
                    snprintf(err, len, "'%.*s': the value must be one of 1, 0, x, k, s", (int)n, p);
                    return -EINVAL;
                }
                if (mask && *val != '0') {
                    snprintf(err, len, "'%.*s': a host mask only removes features (=0)", (int)n, p);
                    return -EINVAL;
                }
                int rc = set_feature(o, p, klen, *val, err, len);
                if (rc)
                    return rc;
            }
        }
        first = false;
        if (!end)
            return 0;
        p = end + 1;
    }
}

int cpu_overrides_parse_libxl(const char *text, struct cpu_overrides *o, char *err, size_t len)
{
    size_t n = strcspn(text, ",");
    if (!names_equal(text, n, "host")) {
        snprintf(err, len, "'%s': the libxl form starts with \"host\" (e.g. \"host,avx512f=0\")", text);
        return -EINVAL;
    }
    return parse_feature_list(text, o, false, err, len);
}

int cpu_overrides_parse_mask(const char *text, struct cpu_overrides *o, char *err, size_t len)
{
    return parse_feature_list(text, o, true, err, len);
}

int cpu_overrides_parse_xend(const char *text, struct cpu_overrides *o, char *err, size_t len)
{
    const char *colon = strchr(text, ':');
    if (!colon) {
        snprintf(err, len, "'%s': expected leaf[,subleaf]:reg=bits", text);
        return -EINVAL;
    }
    uint32_t leaf, subleaf = CPU_NO_SUBLEAF;
    const char *comma = memchr(text, ',', (size_t)(colon - text));
    if (!parse_u32(text, (size_t)((comma ? comma : colon) - text), &leaf) ||
        (comma && !parse_u32(comma + 1, (size_t)(colon - comma - 1), &subleaf))) {
        snprintf(err, len, "'%.*s': a leaf is a number, decimal or 0x hex, with an optional ,subleaf",
                 (int)(colon - text), text);
        return -EINVAL;
    }
    const char *p = colon + 1;
    for (;;) {
        /* reg=32 characters, most significant bit first. */
        unsigned reg = 4;
        for (unsigned r = 0; r < 4; r++)
            if (strncmp(p, reg_names[r], 3) == 0 && p[3] == '=')
                reg = r;
        if (reg == 4) {
            snprintf(err, len, "'%s': expected eax=, ebx=, ecx= or edx= after '%.*s'", text, (int)(p - text), text);
            return -EINVAL;
        }
        const char *bits = p + 4;
        size_t nb = strcspn(bits, ",");
        if (nb != 32) {
            snprintf(err, len, "'%s': %s takes exactly 32 characters of 1, 0, x, k, s (it has %zu)", text,
                     reg_names[reg], nb);
            return -EINVAL;
        }
        uint32_t set = 0, clear = 0;
        for (unsigned i = 0; i < 32; i++) {
            uint32_t m = 1u << (31 - i);
            switch (bits[i]) {
            case '1': set |= m; break;
            case '0': clear |= m; break;
            case 'x': case 'k': case 's': break;
            default:
                snprintf(err, len, "'%s': '%c' is not one of 1, 0, x, k, s", text, bits[i]);
                return -EINVAL;
            }
        }
        if (add_override(o, leaf, subleaf, reg, set, clear)) {
            snprintf(err, len, "too many CPUID settings (at most %d registers)", CPU_OVERRIDES_MAX);
            return -ENOSPC;
        }
        if (!bits[nb])
            return 0;
        p = bits + nb + 1;
    }
}

int cpu_override_format_xend(const struct cpu_override *ov, char *buf, size_t len)
{
    char bits[33];
    for (unsigned i = 0; i < 32; i++) {
        uint32_t m = 1u << (31 - i);
        bits[i] = (ov->set & m) ? '1' : (ov->clear & m) ? '0' : 'x';
    }
    bits[32] = 0;
    int n = ov->subleaf == CPU_NO_SUBLEAF
                ? snprintf(buf, len, "0x%08" PRIx32 ":%s=%s", ov->leaf, reg_names[ov->reg & 3], bits)
                : snprintf(buf, len, "0x%08" PRIx32 ",%" PRIu32 ":%s=%s", ov->leaf, ov->subleaf,
                           reg_names[ov->reg & 3], bits);
    return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

void cpu_overrides_from_policy(const struct cpu_policy *pool, struct cpu_overrides *o)
{
    /* Every feature word, and the XSAVE components: what the pool lacks
     * goes (a leaf it lacks entirely takes all its features with it).
     * There are fewer of them than CPU_OVERRIDES_MAX, so these adds fit
     * unless the caller has filled o already. */
    for (unsigned w = 0; w < cpu_nr_feature_words; w++) {
        const struct cpu_feature_word *fw = &cpu_feature_words[w];
        uint32_t have = cpu_policy_reg(pool, fw->leaf, fw->subleaf, fw->reg);
        add_override(o, fw->leaf, fw->subleaf, fw->reg, 0, ~have & ~cpu_dynamic_bits(fw->word));
    }
    add_override(o, 0xd, 0, CPU_EAX, 0, ~cpu_policy_reg(pool, 0xd, 0, CPU_EAX));
    add_override(o, 0xd, 0, CPU_EDX, 0, ~cpu_policy_reg(pool, 0xd, 0, CPU_EDX));
    struct domain_msr_entry *m = policy_msr(pool, CPU_MSR_ARCH_CAPABILITIES);
    add_msr_override(o, CPU_MSR_ARCH_CAPABILITIES, 0, m ? ~m->val : ~0ULL);
}

/* ---- Policies ----------------------------------------------------------- */

int cpu_policy_apply(struct cpu_policy *p, const struct cpu_overrides *o)
{
    for (unsigned i = 0; i < o->n; i++) {
        const struct cpu_override *ov = &o->cpuid[i];
        struct domain_cpuid_leaf *l = cpu_policy_find(p, ov->leaf, ov->subleaf);
        if (!l) {
            if (!ov->set)
                continue;       /* nothing to take away */
            if (p->nr_leaves >= CPU_POLICY_MAX_LEAVES)
                return -ENOSPC;
            l = &p->leaves[p->nr_leaves++];
            *l = (struct domain_cpuid_leaf){ .leaf = ov->leaf, .subleaf = ov->subleaf };
        }
        uint32_t *r = cpu_leaf_reg(l, ov->reg & 3);
        *r = (*r & ~ov->clear) | ov->set;
    }
    for (unsigned i = 0; i < o->n_msr; i++) {
        const struct cpu_msr_override *mo = &o->msr[i];
        struct domain_msr_entry *m = policy_msr(p, mo->index);
        if (!m) {
            if (!mo->set)
                continue;
            if (p->nr_msrs >= CPU_POLICY_MAX_MSRS)
                return -ENOSPC;
            m = &p->msrs[p->nr_msrs++];
            *m = (struct domain_msr_entry){ .idx = mo->index };
        }
        m->val = (m->val & ~mo->clear) | mo->set;
    }
    return 0;
}

/* Appends "what" to a growing message; keeps it bounded. */
static void msg_add(char *msg, size_t len, size_t *used, const char *what)
{
    if (*used >= len)
        return;
    int w = snprintf(msg + *used, len - *used, "%s%s", *used ? ", " : "", what);
    if (w > 0)
        *used += (size_t)w;
}

static void describe_bit(char *what, size_t len, const struct cpu_feature_word *fw, unsigned bit)
{
    char name[40];
    const char *nm = cpu_feature_name(fw->word, bit, name, sizeof(name));
    char where[32];
    if (fw->subleaf == CPU_NO_SUBLEAF)
        snprintf(where, sizeof(where), "%#" PRIx32, fw->leaf);
    else
        snprintf(where, sizeof(where), "%#" PRIx32 ".%" PRIu32, fw->leaf, fw->subleaf);
    snprintf(what, len, "leaf %s %s bit %u%s%s%s", where, reg_names_upper[fw->reg], bit, nm ? " (" : "",
             nm ? nm : "", nm ? ")" : "");
}

unsigned cpu_policy_missing(const struct cpu_policy *want, const struct cpu_policy *max, char *msg, size_t len)
{
    size_t used = 0;
    unsigned missing = 0;
    if (len)
        msg[0] = 0;
    for (unsigned w = 0; w < cpu_nr_feature_words; w++) {
        const struct cpu_feature_word *fw = &cpu_feature_words[w];
        uint32_t lack = cpu_policy_reg(want, fw->leaf, fw->subleaf, fw->reg) & ~cpu_dynamic_bits(fw->word) &
                        ~cpu_policy_reg(max, fw->leaf, fw->subleaf, fw->reg);
        for (unsigned bit = 0; bit < 32; bit++)
            if (lack & (1u << bit)) {
                char what[96];
                describe_bit(what, sizeof(what), fw, bit);
                msg_add(msg, len, &used, what);
                missing++;
            }
    }
    /* The XSAVE components the guest may enable (leaf 0xd.0 EDX:EAX). */
    uint64_t want_x = (uint64_t)cpu_policy_reg(want, 0xd, 0, CPU_EDX) << 32 | cpu_policy_reg(want, 0xd, 0, CPU_EAX);
    uint64_t have_x = (uint64_t)cpu_policy_reg(max, 0xd, 0, CPU_EDX) << 32 | cpu_policy_reg(max, 0xd, 0, CPU_EAX);
    for (unsigned bit = 0; bit < 64; bit++)
        if ((want_x & ~have_x) & (1ULL << bit)) {
            char what[64];
            snprintf(what, sizeof(what), "leaf 0xd.0 %s bit %u (XSAVE component %u)", bit < 32 ? "EAX" : "EDX",
                     bit % 32, bit);
            msg_add(msg, len, &used, what);
            missing++;
        }
    for (unsigned i = 0; i < want->nr_msrs; i++) {
        const struct domain_msr_entry *m = &want->msrs[i];
        const struct domain_msr_entry *h = policy_msr(max, m->idx);
        if (!h) {
            /* A feature MSR this host does not have: fine if it says
             * "nothing", as a missing MSR does. */
            if (m->val & msr_feature_bits(m->idx)) {
                char what[64];
                snprintf(what, sizeof(what), "MSR %#x (not on this host)", m->idx);
                msg_add(msg, len, &used, what);
                missing++;
            }
            continue;
        }
        uint64_t lack = m->val & ~h->val & msr_feature_bits(m->idx);
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(lack & (1ULL << bit)))
                continue;
            char name[40], what[96];
            const char *nm = m->idx == CPU_MSR_ARCH_CAPABILITIES
                                 ? cpu_feature_name(ARCH_CAPS_WORD + bit / 32, bit % 32, name, sizeof(name))
                                 : NULL;
            snprintf(what, sizeof(what), "MSR %#x bit %u%s%s%s", m->idx, bit, nm ? " (" : "", nm ? nm : "",
                     nm ? ")" : "");
            msg_add(msg, len, &used, what);
            missing++;
        }
    }
    return missing;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

int cpu_policy_level(const struct cpu_policy *in, unsigned n, struct cpu_policy *out)
{
    if (n == 0)
        return -EINVAL;
    *out = in[0];
    for (unsigned k = 1; k < n; k++) {
        for (unsigned w = 0; w < cpu_nr_feature_words; w++) {
            const struct cpu_feature_word *fw = &cpu_feature_words[w];
            struct domain_cpuid_leaf *l = cpu_policy_find(out, fw->leaf, fw->subleaf);
            if (l)
                *cpu_leaf_reg(l, fw->reg) &= cpu_policy_reg(&in[k], fw->leaf, fw->subleaf, fw->reg);
        }
        struct domain_cpuid_leaf *x = cpu_policy_find(out, 0xd, 0);
        if (x) {
            x->a &= cpu_policy_reg(&in[k], 0xd, 0, CPU_EAX);
            x->d &= cpu_policy_reg(&in[k], 0xd, 0, CPU_EDX);
        }
        /* The highest basic and extended leaves every host has. */
        struct domain_cpuid_leaf *b = cpu_policy_find(out, 0, CPU_NO_SUBLEAF);
        if (b)
            b->a = min_u32(b->a, cpu_policy_reg(&in[k], 0, CPU_NO_SUBLEAF, CPU_EAX));
        struct domain_cpuid_leaf *e = cpu_policy_find(out, 0x80000000, CPU_NO_SUBLEAF);
        if (e) {
            uint32_t other = cpu_policy_reg(&in[k], 0x80000000, CPU_NO_SUBLEAF, CPU_EAX);
            e->a = other >= 0x80000000 ? min_u32(e->a, other) : 0x80000000;
        }
        for (unsigned i = 0; i < out->nr_msrs; i++) {
            struct domain_msr_entry *m = &out->msrs[i];
            const struct domain_msr_entry *o = policy_msr(&in[k], m->idx);
            m->val &= (o ? o->val : 0) | ~msr_feature_bits(m->idx);
        }
    }
    return 0;
}

void cpu_policy_feature_names(const struct cpu_policy *p, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < N_FEATURE_NAMES; i++) {
        unsigned word = feature_names[i].value / 32, bit = feature_names[i].value % 32;
        bool has;
        if (word == ARCH_CAPS_WORD || word == ARCH_CAPS_WORD + 1) {
            struct domain_msr_entry *m = policy_msr(p, CPU_MSR_ARCH_CAPABILITIES);
            has = m && (m->val >> ((word - ARCH_CAPS_WORD) * 32 + bit) & 1);
        } else {
            const struct cpu_feature_word *fw = word_info(word);
            has = fw && (cpu_policy_reg(p, fw->leaf, fw->subleaf, fw->reg) >> bit & 1);
        }
        char name[40];
        if (has && cpu_feature_name(word, bit, name, sizeof(name)))
            msg_add(buf, len, &used, name);
    }
}

/* ---- JSON --------------------------------------------------------------- */

#define POLICY_FORMAT "tandem-cpu-policy"
#define POLICY_VERSION 1

static json_object *hex32(uint32_t v)
{
    char b[16];
    snprintf(b, sizeof(b), "0x%08" PRIx32, v);
    return json_object_new_string(b);
}

int cpu_policy_to_json(const struct cpu_policy *p, const char *kind, const char *about, char **out)
{
    *out = NULL;
    json_object *o = json_object_new_object(), *leaves = json_object_new_array(),
                *msrs = json_object_new_array(), *feats = json_object_new_array();
    if (!o || !leaves || !msrs || !feats) {
        json_object_put(o);
        json_object_put(leaves);
        json_object_put(msrs);
        json_object_put(feats);
        return -ENOMEM;
    }
    json_object_object_add(o, "format", json_object_new_string(POLICY_FORMAT));
    json_object_object_add(o, "version", json_object_new_int(POLICY_VERSION));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    if (about)
        json_object_object_add(o, "about", json_object_new_string(about));
    json_object_object_add(o, "release", json_object_new_string(PACKAGE_VERSION));
    char names[8192];
    cpu_policy_feature_names(p, names, sizeof(names));
    for (char *s = names, *save = NULL, *t; (t = strtok_r(s, ", ", &save)); s = NULL)
        json_object_array_add(feats, json_object_new_string(t));
    json_object_object_add(o, "features", feats);
    for (unsigned i = 0; i < p->nr_leaves; i++) {
        const struct domain_cpuid_leaf *l = &p->leaves[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "leaf", hex32(l->leaf));
        json_object_object_add(e, "subleaf", l->subleaf == CPU_NO_SUBLEAF ? NULL : hex32(l->subleaf));
        json_object_object_add(e, "eax", hex32(l->a));
        json_object_object_add(e, "ebx", hex32(l->b));
        json_object_object_add(e, "ecx", hex32(l->c));
        json_object_object_add(e, "edx", hex32(l->d));
        json_object_array_add(leaves, e);
    }
    json_object_object_add(o, "cpuid", leaves);
    for (unsigned i = 0; i < p->nr_msrs; i++) {
        json_object *e = json_object_new_object();
        char b[24];
        json_object_object_add(e, "index", hex32(p->msrs[i].idx));
        snprintf(b, sizeof(b), "0x%016" PRIx64, p->msrs[i].val);
        json_object_object_add(e, "value", json_object_new_string(b));
        json_object_array_add(msrs, e);
    }
    json_object_object_add(o, "msr", msrs);
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
    *out = s ? strdup(s) : NULL;
    json_object_put(o);
    return *out ? 0 : -ENOMEM;
}

/* "0x" and 1 to `digits` hex digits. */
static bool json_hex(json_object *v, unsigned digits, uint64_t *out)
{
    if (!v || !json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n < 3 || n > 2 + digits || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return false;
    uint64_t r = 0;
    for (size_t i = 2; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!isxdigit(c))
            return false;
        r = r << 4 | (uint64_t)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
    }
    *out = r;
    return true;
}

int cpu_policy_from_json(const char *text, size_t len, struct cpu_policy *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (len > 1024 * 1024) {
        snprintf(err, errlen, "a CPU policy is at most 1 MiB");
        return -EINVAL;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t consumed = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc = -EINVAL;
    json_object *v, *arr;
    if (!o || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
            snprintf(err, errlen, "not JSON: it ends too early");
        else
            snprintf(err, errlen, "not JSON: %s", json_tokener_error_desc(jerr));
        goto out;
    }
    for (; consumed < len; consumed++)
        if (!isspace((unsigned char)text[consumed]) && text[consumed]) {
            snprintf(err, errlen, "text after the JSON object at byte %zu", consumed);
            goto out;
        }
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(o, "format", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), POLICY_FORMAT)) {
        snprintf(err, errlen, "\"format\" is not \"" POLICY_FORMAT "\"");
        goto out;
    }
    if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 1) {
        snprintf(err, errlen, "\"version\" must be a positive integer");
        goto out;
    }
    if (json_object_get_int64(v) > POLICY_VERSION) {
        snprintf(err, errlen, "version %" PRId64 " was written by a newer Tandem (this one reads %d)",
                 json_object_get_int64(v), POLICY_VERSION);
        goto out;
    }
    if (!json_object_object_get_ex(o, "cpuid", &arr) || !json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "\"cpuid\" must be an array of leaves");
        goto out;
    }
    size_t n = json_object_array_length(arr);
    if (n == 0 || n > CPU_POLICY_MAX_LEAVES) {
        snprintf(err, errlen, "\"cpuid\" has %zu leaves (1 to %d)", n, CPU_POLICY_MAX_LEAVES);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        uint64_t val[6];
        static const char *const keys[] = { "leaf", "subleaf", "eax", "ebx", "ecx", "edx" };
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(err, errlen, "cpuid[%zu] is not an object", i);
            goto out;
        }
        for (unsigned k = 0; k < 6; k++) {
            json_object *f = NULL;
            bool present = json_object_object_get_ex(e, keys[k], &f);
            if (k == 1 && (!present || !f)) {
                val[k] = CPU_NO_SUBLEAF;
                continue;
            }
            if (!json_hex(f, 8, &val[k])) {
                snprintf(err, errlen, "cpuid[%zu].%s must be a string \"0x\" and 1 to 8 hex digits", i, keys[k]);
                goto out;
            }
        }
        for (unsigned j = 0; j < p->nr_leaves; j++)
            if (p->leaves[j].leaf == val[0] && p->leaves[j].subleaf == val[1]) {
                snprintf(err, errlen, "cpuid[%zu] gives leaf %#" PRIx64 " subleaf %#" PRIx64 " again", i, val[0],
                         val[1]);
                goto out;
            }
        p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){
            (uint32_t)val[0], (uint32_t)val[1], (uint32_t)val[2], (uint32_t)val[3], (uint32_t)val[4],
            (uint32_t)val[5],
        };
    }
    if (json_object_object_get_ex(o, "msr", &arr)) {
        if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > CPU_POLICY_MAX_MSRS) {
            snprintf(err, errlen, "\"msr\" must be an array of at most %d MSRs", CPU_POLICY_MAX_MSRS);
            goto out;
        }
        n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(arr, i), *f;
            uint64_t idx, value;
            if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "index", &f) ||
                !json_hex(f, 8, &idx) || !json_object_object_get_ex(e, "value", &f) || !json_hex(f, 16, &value)) {
                snprintf(err, errlen, "msr[%zu] must be {\"index\": \"0x...\" (32 bits), \"value\": \"0x...\" "
                         "(64 bits)}", i);
                goto out;
            }
            if (policy_msr(p, (uint32_t)idx)) {
                snprintf(err, errlen, "msr[%zu] gives MSR %#" PRIx64 " again", i, idx);
                goto out;
            }
            p->msrs[p->nr_msrs++] = (struct domain_msr_entry){ .idx = (uint32_t)idx, .val = value };
        }
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}
