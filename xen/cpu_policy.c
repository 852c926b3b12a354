/* A domain's CPUID and MSR policies, as Xen's xen_cpuid_leaf_t and
 * xen_msr_entry_t for the X86_CPUID_POLICY and X86_MSR_POLICY records.
 *
 * The CPUID policy is what vCPU 0 was given; setting one checks every
 * feature bit against what this host's KVM can give, names the missing
 * ones, and loads it into every vCPU with its own APIC ID, as
 * xen/domain.c's vcpu_set_cpuid does at creation.  The MSR policy is the
 * feature MSRs KVM lets a VMM choose (ARCH_CAPABILITIES, PLATFORM_INFO,
 * ...). */
#define __XEN_TOOLS__ 1 /* xen_cpuid_leaf_t and friends are toolstack ABI */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xen/xen.h>

#include "domain.h"
#include "hvm_context.h"

_Static_assert(sizeof(struct domain_cpuid_leaf) == sizeof(xen_cpuid_leaf_t), "xen_cpuid_leaf_t layout");
_Static_assert(sizeof(struct domain_msr_entry) == sizeof(xen_msr_entry_t), "xen_msr_entry_t layout");

#define MAX_CPUID_ENTRIES 256  /* KVM_MAX_CPUID_ENTRIES */
#define MAX_MSR_ENTRIES 64

#define MSR_IA32_UCODE_REV 0x8b
#define MSR_PLATFORM_INFO 0xce
#define MSR_ARCH_CAPABILITIES 0x10a
#define MSR_PERF_CAPABILITIES 0x345
#define PLATFORM_INFO_CPUID_FAULTING (1ULL << 31)

/* Xen's feature names, generated at build time from libxen-dev's
 * public/arch-x86/cpufeatureset.h: {NAME, word * 32 + bit}. */
static const struct feature_name {
    const char *name;
    unsigned value;
} feature_names[] = {
#define XEN_CPUFEATURE(name, value) { #name, value },
#include <xen/arch-x86/cpufeatureset.h>
#undef XEN_CPUFEATURE
};

enum reg { EAX, EBX, ECX, EDX };
static const char *const reg_names[] = { "EAX", "EBX", "ECX", "EDX" };

/* Where each featureset word lives (the comments of cpufeatureset.h).
 * Words 16 and 17 are MSR_ARCH_CAPS, handled with the MSR policy. */
static const struct feature_word {
    unsigned word;
    uint32_t leaf, subleaf;          /* XEN_CPUID_NO_SUBLEAF: none */
    enum reg reg;
} feature_words[] = {
    { 0, 0x1, XEN_CPUID_NO_SUBLEAF, EDX },
    { 1, 0x1, XEN_CPUID_NO_SUBLEAF, ECX },
    { 2, 0x80000001, XEN_CPUID_NO_SUBLEAF, EDX },
    { 3, 0x80000001, XEN_CPUID_NO_SUBLEAF, ECX },
    { 4, 0xd, 1, EAX },
    { 5, 0x7, 0, EBX },
    { 6, 0x7, 0, ECX },
    { 7, 0x80000007, XEN_CPUID_NO_SUBLEAF, EDX },
    { 8, 0x80000008, XEN_CPUID_NO_SUBLEAF, EBX },
    { 9, 0x7, 0, EDX },
    { 10, 0x7, 1, EAX },
    { 11, 0x80000021, XEN_CPUID_NO_SUBLEAF, EAX },
    { 12, 0x7, 1, EBX },
    { 13, 0x7, 2, EDX },
    { 14, 0x7, 1, ECX },
    { 15, 0x7, 1, EDX },
    { 18, 0x80000021, XEN_CPUID_NO_SUBLEAF, ECX },
};

/* Bits KVM computes at run time from the vCPU's own state (CR4.OSXSAVE,
 * CR4.PKE) or that Tandem always sets (the hypervisor bit): not features a
 * host can lack. */
static uint32_t dynamic_bits(unsigned word)
{
    switch (word) {
    case 1: return 1u << 27 | 1u << 31;   /* OSXSAVE, HYPERVISOR */
    case 6: return 1u << 4;               /* OSPKE */
    }
    return 0;
}

static const char *feature_name(unsigned word, unsigned bit, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
        if (feature_names[i].value == word * 32 + bit) {
            size_t k = 0;
            for (const char *p = feature_names[i].name; *p && k + 1 < len; p++)
                buf[k++] = (char)tolower((unsigned char)*p);
            buf[k] = 0;
            return buf;
        }
    return NULL;
}

static uint32_t leaf_reg(const struct domain_cpuid_leaf *l, enum reg r)
{
    return r == EAX ? l->a : r == EBX ? l->b : r == ECX ? l->c : l->d;
}

static uint32_t entry_reg(const struct kvm_cpuid_entry2 *e, enum reg r)
{
    return !e ? 0 : r == EAX ? e->eax : r == EBX ? e->ebx : r == ECX ? e->ecx : e->edx;
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

static int vcpu_get_cpuid(struct vcpu *v, struct kvm_cpuid2 **out, const struct tlog *log)
{
    for (int nent = 64;; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
        if (!c)
            return -ENOMEM;
        c->nent = nent;
        if (ioctl(v->fd, KVM_GET_CPUID2, c) == 0) {
            *out = c;
            return 0;
        }
        int err = errno;
        free(c);
        if (err != E2BIG || nent >= 4096) {
            tlog_error(log, "vcpu%u: KVM_GET_CPUID2: %s", v->id, strerror(err));
            return -err;
        }
    }
}

int domain_get_cpuid_policy(struct domain *d, struct domain_cpuid_leaf **out, unsigned *n,
                            const struct tlog *log)
{
    struct kvm_cpuid2 *c = NULL;
    *out = NULL;
    *n = 0;
    if (!d->nr_vcpus)
        return -EINVAL;
    int rc = vcpu_get_cpuid(&d->vcpus[0], &c, log);
    if (rc)
        return rc;
    struct domain_cpuid_leaf *l = calloc(c->nent + 1, sizeof(*l));
    if (!l) {
        free(c);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        l[i] = (struct domain_cpuid_leaf){
            .leaf = e->function,
            .subleaf = (e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ? e->index : XEN_CPUID_NO_SUBLEAF,
            .a = e->eax, .b = e->ebx, .c = e->ecx, .d = e->edx,
        };
    }
    *out = l;
    *n = c->nent;
    free(c);
    return 0;
}

/* What this host can give for (leaf, subleaf)'s register r: what KVM
 * reports as supported, and what it shows a vCPU of this domain as built.
 * The two agree on most hosts; on some (KVM on PVM) the supported list is
 * far smaller than what vCPUs really get, and a policy read from a domain
 * on such a host must still load into another domain there. */
static uint32_t host_reg(const struct kvm_cpuid2 *sup, const struct kvm_cpuid2 *cur, uint32_t leaf,
                         uint32_t subleaf, enum reg r)
{
    return entry_reg(hvm_cpuid_find(sup, leaf, subleaf), r) |
           (cur ? entry_reg(hvm_cpuid_find(cur, leaf, subleaf), r) : 0);
}

/* Collects into msg every feature of the policy that this host lacks. */
static unsigned cpuid_missing_features(const struct domain_cpuid_leaf *l, unsigned n,
                                       const struct kvm_cpuid2 *sup, const struct kvm_cpuid2 *cur,
                                       char *msg, size_t len)
{
    size_t used = 0;
    unsigned missing = 0;
    for (unsigned i = 0; i < n; i++) {
        for (size_t w = 0; w < sizeof(feature_words) / sizeof(feature_words[0]); w++) {
            const struct feature_word *fw = &feature_words[w];
            if (l[i].leaf != fw->leaf)
                continue;
            bool match = fw->subleaf == XEN_CPUID_NO_SUBLEAF
                             ? (l[i].subleaf == XEN_CPUID_NO_SUBLEAF || l[i].subleaf == 0)
                             : l[i].subleaf == fw->subleaf;
            if (!match)
                continue;
            uint32_t want = leaf_reg(&l[i], fw->reg) & ~dynamic_bits(fw->word);
            uint32_t have = host_reg(sup, cur, fw->leaf, fw->subleaf == XEN_CPUID_NO_SUBLEAF ? 0 : fw->subleaf,
                                     fw->reg);
            uint32_t lack = want & ~have;
            for (unsigned bit = 0; bit < 32; bit++) {
                if (!(lack & (1u << bit)))
                    continue;
                char name[40], what[96];
                const char *nm = feature_name(fw->word, bit, name, sizeof(name));
                if (fw->subleaf == XEN_CPUID_NO_SUBLEAF)
                    snprintf(what, sizeof(what), "leaf %#" PRIx32 " %s bit %u%s%s%s", fw->leaf,
                             reg_names[fw->reg], bit, nm ? " (" : "", nm ? nm : "", nm ? ")" : "");
                else
                    snprintf(what, sizeof(what), "leaf %#" PRIx32 ".%" PRIu32 " %s bit %u%s%s%s", fw->leaf,
                             fw->subleaf, reg_names[fw->reg], bit, nm ? " (" : "", nm ? nm : "",
                             nm ? ")" : "");
                msg_add(msg, len, &used, what);
                missing++;
            }
        }
        /* The XSAVE components the guest may enable (leaf 0xd.0 EDX:EAX). */
        if (l[i].leaf == 0xd && l[i].subleaf == 0) {
            uint64_t want = (uint64_t)l[i].d << 32 | l[i].a;
            uint64_t have = (uint64_t)host_reg(sup, cur, 0xd, 0, EDX) << 32 | host_reg(sup, cur, 0xd, 0, EAX);
            for (unsigned bit = 0; bit < 64; bit++)
                if ((want & ~have) & (1ULL << bit)) {
                    char what[64];
                    snprintf(what, sizeof(what), "leaf 0xd.0 %s bit %u (XSAVE component %u)",
                             bit < 32 ? "EAX" : "EDX", bit % 32, bit);
                    msg_add(msg, len, &used, what);
                    missing++;
                }
        }
    }
    return missing;
}

int domain_set_cpuid_policy(struct domain *d, const struct domain_cpuid_leaf *l, unsigned n,
                            const struct tlog *log)
{
    if (n == 0 || n > MAX_CPUID_ENTRIES) {
        tlog_error(log, "CPUID policy with %u leaves (KVM takes 1 to %d)", n, MAX_CPUID_ENTRIES);
        return -EINVAL;
    }
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < i; j++)
            if (l[i].leaf == l[j].leaf && l[i].subleaf == l[j].subleaf) {
                tlog_error(log, "CPUID policy gives leaf %#x subleaf %#x twice", l[i].leaf, l[i].subleaf);
                return -EINVAL;
            }

    struct kvm_cpuid2 *sup = NULL, *cur = NULL;
    int rc = hvm_supported_cpuid(d->kvm_fd, &sup, log);
    if (rc)
        return rc;
    if ((rc = vcpu_get_cpuid(&d->vcpus[0], &cur, log))) {
        free(sup);
        return rc;
    }
    char msg[1024] = "";
    unsigned missing = cpuid_missing_features(l, n, sup, cur, msg, sizeof(msg));
    free(sup);
    free(cur);
    if (missing) {
        tlog_error(log, "this host cannot give the CPU features the domain was given: %s", msg);
        return -EOPNOTSUPP;
    }

    bool ran = hvm_vcpus_have_run(d);
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
    if (!c)
        return -ENOMEM;
    for (unsigned id = 0; id < d->nr_vcpus; id++) {
        struct vcpu *v = &d->vcpus[id];
        c->nent = n;
        for (unsigned i = 0; i < n; i++) {
            struct kvm_cpuid_entry2 *e = &c->entries[i];
            *e = (struct kvm_cpuid_entry2){
                .function = l[i].leaf, .eax = l[i].a, .ebx = l[i].b, .ecx = l[i].c, .edx = l[i].d,
            };
            if (l[i].subleaf != XEN_CPUID_NO_SUBLEAF) {
                e->index = l[i].subleaf;
                e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
            }
            /* Each vCPU's own APIC ID, as xen/domain.c gives it. */
            if (e->function == 1)
                e->ebx = (e->ebx & 0x00ffffff) | (id << 24);
            else if (e->function == 0xb || e->function == 0x1f)
                e->edx = id;
        }
        if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
            int err = errno;
            free(c);
            if (ran) {
                /* KVM takes a new CPUID only before the first KVM_RUN (or
                 * the same one again). */
                tlog_error(log, "vcpu%u: the CPUID policy can change only before the domain first runs", id);
                return -EBUSY;
            }
            tlog_error(log, "vcpu%u: KVM_SET_CPUID2: %s", id, strerror(err));
            return -err;
        }
    }
    free(c);
    return 0;
}

/* ---- MSR policy --------------------------------------------------------- */

int domain_get_msr_policy(struct domain *d, struct domain_msr_entry **out, unsigned *n,
                          const struct tlog *log)
{
    struct kvm_msr_list *f = NULL;
    *out = NULL;
    *n = 0;
    if (ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) <= 0) {
        /* Nothing a VMM can choose: an empty policy. */
        *out = calloc(1, sizeof(**out));
        return *out ? 0 : -ENOMEM;
    }
    int rc = hvm_msr_index_list(d->kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &f, log);
    if (rc)
        return rc;
    struct kvm_msr_entry *vals = calloc(f->nmsrs + 1, sizeof(*vals));
    struct domain_msr_entry *m = calloc(f->nmsrs + 1, sizeof(*m));
    if (!vals || !m) {
        rc = -ENOMEM;
        goto out;
    }
    /* The domain's values (what its vCPUs were given); the host's for one
     * a vCPU cannot read. */
    rc = hvm_read_msrs(d->vcpus[0].fd, f->indices, f->nmsrs, vals, log);
    if (rc < 0)
        goto out;
    unsigned nv = (unsigned)rc;
    for (unsigned i = 0; i < f->nmsrs; i++) {
        uint32_t idx = f->indices[i];
        bool found = false;
        m[i] = (struct domain_msr_entry){ .idx = idx };
        for (unsigned j = 0; j < nv && !found; j++)
            if (vals[j].index == idx) {
                m[i].val = vals[j].data;
                found = true;
            }
        if (!found) {
            struct {
                struct kvm_msrs h;
                struct kvm_msr_entry e;
            } one = { .h = { .nmsrs = 1 }, .e = { .index = idx } };
            if (ioctl(d->kvm_fd, KVM_GET_MSRS, &one) == 1)
                m[i].val = one.e.data;
        }
    }
    *out = m;
    *n = f->nmsrs;
    m = NULL;
    rc = 0;
out:
    free(m);
    free(vals);
    free(f);
    return rc;
}

/* Names the bits of `lack` in a feature MSR. */
static void msr_bits_missing(uint32_t idx, uint64_t lack, char *msg, size_t len, size_t *used)
{
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!(lack & (1ULL << bit)))
            continue;
        char name[40], what[96];
        /* ARCH_CAPS is featureset words 16 (low half) and 17 (high half,
         * named as 16*32+32..63). */
        const char *nm = idx == MSR_ARCH_CAPABILITIES ? feature_name(16, bit, name, sizeof(name)) : NULL;
        snprintf(what, sizeof(what), "MSR %#x bit %u%s%s%s", idx, bit, nm ? " (" : "", nm ? nm : "",
                 nm ? ")" : "");
        msg_add(msg, len, used, what);
    }
}

int domain_set_msr_policy(struct domain *d, const struct domain_msr_entry *m, unsigned n,
                          const struct tlog *log)
{
    if (n > MAX_MSR_ENTRIES) {
        tlog_error(log, "MSR policy with %u entries (at most %d)", n, MAX_MSR_ENTRIES);
        return -EINVAL;
    }
    for (unsigned i = 0; i < n; i++) {
        if (m[i].flags) {
            tlog_error(log, "MSR policy entry for %#x has flags %#x (must be 0)", m[i].idx, m[i].flags);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (m[j].idx == m[i].idx) {
                tlog_error(log, "MSR policy gives MSR %#x twice", m[i].idx);
                return -EINVAL;
            }
    }
    if (n == 0)
        return 0;

    struct kvm_msr_list *f = NULL;
    if (ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) > 0) {
        int rc = hvm_msr_index_list(d->kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &f, log);
        if (rc)
            return rc;
    }
    struct kvm_msrs *set = calloc(1, sizeof(*set) + n * sizeof(set->entries[0]));
    if (!set) {
        free(f);
        return -ENOMEM;
    }
    char msg[1024] = "";
    size_t used = 0;
    unsigned k = 0, bad = 0;
    for (unsigned i = 0; i < n; i++) {
        bool known = false;
        for (unsigned j = 0; f && j < f->nmsrs && !known; j++)
            known = f->indices[j] == m[i].idx;
        if (!known) {
            /* A feature MSR this host does not have: fine if it says
             * "nothing", as a missing MSR does. */
            if (m[i].val) {
                char what[64];
                snprintf(what, sizeof(what), "MSR %#x (not on this host)", m[i].idx);
                msg_add(msg, sizeof(msg), &used, what);
                bad++;
            }
            continue;
        }
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } host = { .h = { .nmsrs = 1 }, .e = { .index = m[i].idx } };
        uint64_t have = ioctl(d->kvm_fd, KVM_GET_MSRS, &host) == 1 ? host.e.data : 0;
        uint64_t lack = 0;
        switch (m[i].idx) {
        case MSR_ARCH_CAPABILITIES:
        case MSR_PERF_CAPABILITIES:
            lack = m[i].val & ~have;                   /* bit masks of features */
            break;
        case MSR_PLATFORM_INFO:
            lack = m[i].val & ~have & PLATFORM_INFO_CPUID_FAULTING; /* the rest are ratios */
            break;
        default:
            break;                                     /* e.g. the microcode revision */
        }
        if (lack) {
            msr_bits_missing(m[i].idx, lack, msg, sizeof(msg), &used);
            bad++;
            continue;
        }
        set->entries[k++] = (struct kvm_msr_entry){ .index = m[i].idx, .data = m[i].val };
    }
    free(f);
    if (bad) {
        tlog_error(log, "this host cannot give the MSR features the domain was given: %s", msg);
        free(set);
        return -EOPNOTSUPP;
    }
    set->nmsrs = k;
    bool ran = hvm_vcpus_have_run(d);
    for (unsigned id = 0; k && id < d->nr_vcpus; id++) {
        int r = ioctl(d->vcpus[id].fd, KVM_SET_MSRS, set);
        if (r != (int)k) {
            int err = r < 0 ? errno : EINVAL;
            if (r >= 0)
                tlog_error(log, "vcpu%u: KVM refused MSR %#x = %#llx%s", id, set->entries[r].index,
                           (unsigned long long)set->entries[r].data,
                           ran ? " (feature MSRs can change only before the domain first runs)" : "");
            else
                tlog_error(log, "vcpu%u: KVM_SET_MSRS: %s", id, strerror(err));
            free(set);
            return ran ? -EBUSY : -err;
        }
    }
    free(set);
    return 0;
}
