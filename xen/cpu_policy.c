/* CPU policies in KVM: this host's maximum, a new domain's policy, and the
 * X86_CPUID_POLICY / X86_MSR_POLICY records of a stream.
 *
 * The host's maximum is what a default vCPU gets here (KVM's supported
 * CPUID with Tandem's hypervisor leaves) united with what KVM reports as
 * supported and what a vCPU loaded with it reads back (on some hosts, KVM
 * on PVM among them, the supported list is smaller than what vCPUs really
 * get), its feature MSRs as KVM gives them, minus the host mask.  Every
 * policy a domain takes, from its config at creation or from a stream on
 * restore, is checked against it first, naming each feature it lacks, so
 * a migration to a host with fewer features stops before any memory is
 * sent.  KVM takes a CPUID only before a vCPU first runs. */
#define __XEN_TOOLS__ 1 /* xen_cpuid_leaf_t and friends are toolstack ABI */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xen/xen.h>

#include "cpu_features.h"
#include "domain.h"
#include "hvm_context.h"

_Static_assert(sizeof(struct domain_cpuid_leaf) == sizeof(xen_cpuid_leaf_t), "xen_cpuid_leaf_t layout");
_Static_assert(sizeof(struct domain_msr_entry) == sizeof(xen_msr_entry_t), "xen_msr_entry_t layout");
_Static_assert(CPU_NO_SUBLEAF == XEN_CPUID_NO_SUBLEAF, "Xen's no-subleaf marker");

static uint32_t entry_reg(const struct kvm_cpuid_entry2 *e, unsigned r)
{
    return !e ? 0 : r == CPU_EAX ? e->eax : r == CPU_EBX ? e->ebx : r == CPU_ECX ? e->ecx : e->edx;
}

static void leaf_from_entry(struct domain_cpuid_leaf *l, const struct kvm_cpuid_entry2 *e)
{
    *l = (struct domain_cpuid_leaf){
        .leaf = e->function,
        .subleaf = (e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ? e->index : CPU_NO_SUBLEAF,
        .a = e->eax, .b = e->ebx, .c = e->ecx, .d = e->edx,
    };
}

/* What a new vCPU here sees: KVM's supported CPUID with its paravirt
 * leaves replaced by Tandem's (signature, and 0x40000010 with the TSC and
 * APIC bus frequencies so guests need not calibrate), and the hypervisor
 * bit set.  APIC IDs are per vCPU (vcpu_load_policy). */
static int default_policy(int kvm_fd, unsigned tsc_khz, struct cpu_policy *p, struct kvm_cpuid2 **sup_out,
                          const struct tlog *log)
{
    struct kvm_cpuid2 *sup = NULL;
    int rc = hvm_supported_cpuid(kvm_fd, &sup, log);
    if (rc)
        return rc;
    memset(p, 0, sizeof(*p));
    for (unsigned i = 0; i < sup->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &sup->entries[i];
        if (e->function >= 0x40000000 && e->function < 0x50000000)
            continue;
        if (p->nr_leaves + 2 >= CPU_POLICY_MAX_LEAVES)
            break;
        leaf_from_entry(&p->leaves[p->nr_leaves++], e);
    }
    struct domain_cpuid_leaf *l1 = cpu_policy_find(p, 1, CPU_NO_SUBLEAF);
    if (l1)
        l1->c |= 1u << 31;     /* running under a hypervisor */
    /* "TandemTandem" */
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0x40000000, CPU_NO_SUBLEAF, 0x40000010, 0x646e6154,
                                                            0x61546d65, 0x6d65646e };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0x40000010, CPU_NO_SUBLEAF, tsc_khz, LAPIC_BUS_KHZ,
                                                            0, 0 };
    if (sup_out)
        *sup_out = sup;
    else
        free(sup);
    return 0;
}

/* The feature MSRs KVM lets a VMM choose, with the values this host gives. */
static int host_msrs(int kvm_fd, struct cpu_policy *p, const struct tlog *log)
{
    p->nr_msrs = 0;
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) <= 0)
        return 0;
    struct kvm_msr_list *f = NULL;
    int rc = hvm_msr_index_list(kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &f, log);
    if (rc)
        return rc;
    for (unsigned i = 0; i < f->nmsrs && p->nr_msrs < CPU_POLICY_MAX_MSRS; i++) {
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } one = { .h = { .nmsrs = 1 }, .e = { .index = f->indices[i] } };
        if (ioctl(kvm_fd, KVM_GET_MSRS, &one) == 1)
            p->msrs[p->nr_msrs++] = (struct domain_msr_entry){ .idx = f->indices[i], .val = one.e.data };
    }
    free(f);
    return 0;
}

/* The feature MSRs as a vCPU has them (KVM's default for a new vCPU may
 * differ from the system-wide values host_msrs reads); ones it cannot
 * read keep the host's value. */
static int vcpu_msrs(int kvm_fd, int vcpu_fd, struct cpu_policy *p, const struct tlog *log)
{
    int rc = host_msrs(kvm_fd, p, log);
    if (rc || !p->nr_msrs)
        return rc;
    uint32_t idx[CPU_POLICY_MAX_MSRS];
    struct kvm_msr_entry vals[CPU_POLICY_MAX_MSRS];
    for (unsigned i = 0; i < p->nr_msrs; i++)
        idx[i] = p->msrs[i].idx;
    rc = hvm_read_msrs(vcpu_fd, idx, p->nr_msrs, vals, log);
    if (rc < 0)
        return rc;
    for (int j = 0; j < rc; j++)
        for (unsigned i = 0; i < p->nr_msrs; i++)
            if (p->msrs[i].idx == vals[j].index)
                p->msrs[i].val = vals[j].data;
    return 0;
}

static int vcpu_read_cpuid(int vcpu_fd, struct kvm_cpuid2 **out, const struct tlog *log)
{
    for (int nent = 64;; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
        if (!c)
            return -ENOMEM;
        c->nent = nent;
        if (ioctl(vcpu_fd, KVM_GET_CPUID2, c) == 0) {
            *out = c;
            return 0;
        }
        int err = errno;
        free(c);
        if (err != E2BIG || nent >= 4096) {
            tlog_error(log, "KVM_GET_CPUID2: %s", strerror(err));
            return -err;
        }
    }
}

/* Loads p into one vCPU, with that vCPU's own APIC ID as xen/domain.c
 * numbers them. */
static int vcpu_load_policy(int vcpu_fd, unsigned id, const struct cpu_policy *p)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + p->nr_leaves * sizeof(c->entries[0]));
    if (!c)
        return -ENOMEM;
    c->nent = p->nr_leaves;
    for (unsigned i = 0; i < p->nr_leaves; i++) {
        const struct domain_cpuid_leaf *l = &p->leaves[i];
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        *e = (struct kvm_cpuid_entry2){ .function = l->leaf, .eax = l->a, .ebx = l->b, .ecx = l->c, .edx = l->d };
        if (l->subleaf != CPU_NO_SUBLEAF) {
            e->index = l->subleaf;
            e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        }
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffff) | (id << 24);
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = id;
    }
    int rc = ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
    free(c);
    return rc;
}

/* Sets the policy's feature MSRs on a vCPU; *bad gets the one KVM refused. */
static int vcpu_load_msrs(int vcpu_fd, const struct cpu_policy *p, uint32_t *bad)
{
    if (!p->nr_msrs)
        return 0;
    struct kvm_msrs *set = calloc(1, sizeof(*set) + p->nr_msrs * sizeof(set->entries[0]));
    if (!set)
        return -ENOMEM;
    set->nmsrs = p->nr_msrs;
    for (unsigned i = 0; i < p->nr_msrs; i++)
        set->entries[i] = (struct kvm_msr_entry){ .index = p->msrs[i].idx, .data = p->msrs[i].val };
    int r = ioctl(vcpu_fd, KVM_SET_MSRS, set);
    int rc = r == (int)p->nr_msrs ? 0 : r < 0 ? -errno : -EINVAL;
    if (r >= 0 && r < (int)p->nr_msrs)
        *bad = set->entries[r].index;
    free(set);
    return rc;
}

/* The host's maximum (see the top of the file), given a vCPU that holds
 * the default policy; mask's clear bits are taken away.  The vCPU's own
 * feature MSRs, read on the way, go to own. */
static int host_max_policy(int kvm_fd, int vcpu_fd, const struct cpu_policy *def, const struct kvm_cpuid2 *sup,
                           const struct cpu_overrides *mask, struct cpu_policy *out, struct cpu_policy *own,
                           const struct tlog *log)
{
    struct kvm_cpuid2 *cur = NULL;
    int rc = vcpu_read_cpuid(vcpu_fd, &cur, log);
    if (rc)
        return rc;
    *out = *def;
    for (unsigned w = 0; w < cpu_nr_feature_words; w++) {
        const struct cpu_feature_word *fw = &cpu_feature_words[w];
        struct domain_cpuid_leaf *l = cpu_policy_find(out, fw->leaf, fw->subleaf);
        uint32_t sub = fw->subleaf == CPU_NO_SUBLEAF ? 0 : fw->subleaf;
        if (l)
            *cpu_leaf_reg(l, fw->reg) |= entry_reg(hvm_cpuid_find(sup, fw->leaf, sub), fw->reg) |
                                         entry_reg(hvm_cpuid_find(cur, fw->leaf, sub), fw->reg);
    }
    struct domain_cpuid_leaf *x = cpu_policy_find(out, 0xd, 0);
    if (x) {
        x->a |= entry_reg(hvm_cpuid_find(cur, 0xd, 0), CPU_EAX);
        x->d |= entry_reg(hvm_cpuid_find(cur, 0xd, 0), CPU_EDX);
    }
    free(cur);
    if ((rc = host_msrs(kvm_fd, out, log)) || (rc = vcpu_msrs(kvm_fd, vcpu_fd, own, log)))
        return rc;
    for (unsigned i = 0; i < out->nr_msrs && i < own->nr_msrs; i++)
        if (own->msrs[i].idx == out->msrs[i].idx)
            out->msrs[i].val |= own->msrs[i].val;
    if (mask) {
        struct cpu_overrides only_clear = *mask;
        for (unsigned i = 0; i < only_clear.n; i++)
            only_clear.cpuid[i].set = 0;
        for (unsigned i = 0; i < only_clear.n_msr; i++)
            only_clear.msr[i].set = 0;
        cpu_policy_apply(out, &only_clear);
    }
    return 0;
}

int cpu_policy_host(const struct cpu_overrides *host_mask, struct cpu_policy *out, const struct tlog *log)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, vcpu = -1, rc;
    struct cpu_policy *def = NULL, *own = NULL;
    struct kvm_cpuid2 *sup = NULL;
    if (kvm < 0) {
        rc = -errno;
        tlog_error(log, "cannot open /dev/kvm: %s", strerror(errno));
        return rc;
    }
    /* A scratch VM with one vCPU: what a vCPU reads back is part of what
     * this host gives. */
    if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0 || (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL)) < 0) {
        rc = -errno;
        tlog_error(log, "cannot build a scratch VM to read the CPU policy: %s", strerror(errno));
        goto out;
    }
    int khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    if (!(def = malloc(sizeof(*def))) || !(own = malloc(sizeof(*own)))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = default_policy(kvm, khz > 0 ? (unsigned)khz : 0, def, &sup, log)))
        goto out;
    if ((rc = vcpu_load_policy(vcpu, 0, def))) {
        tlog_error(log, "KVM_SET_CPUID2: %s", strerror(-rc));
        goto out;
    }
    rc = host_max_policy(kvm, vcpu, def, sup, host_mask, out, own, log);
out:
    free(own);
    free(def);
    free(sup);
    if (vcpu >= 0)
        close(vcpu);
    if (vm >= 0)
        close(vm);
    close(kvm);
    return rc;
}

/* Some KVMs (KVM on PVM here) show a vCPU the host's own leaves 1, 7 and
 * 0xd whatever the VMM loads.  What a vCPU reads back is what its guest
 * sees, and that is what a stream carries and a destination checks, so a
 * migration stays safe; but the operator who took a feature away must
 * know it is still there. */
static void note_forced_features(struct domain *d, const struct cpu_policy *asked)
{
    struct cpu_policy *got = malloc(sizeof(*got));
    struct kvm_cpuid2 *c = NULL;
    d->cpu_forced[0] = 0;
    if (!got || vcpu_read_cpuid(d->vcpus[0].fd, &c, d->log)) {
        free(got);
        return;
    }
    got->nr_leaves = got->nr_msrs = 0;
    for (unsigned i = 0; i < c->nent && i < CPU_POLICY_MAX_LEAVES; i++)
        leaf_from_entry(&got->leaves[got->nr_leaves++], &c->entries[i]);
    free(c);
    cpu_policy_missing(got, asked, d->cpu_forced, sizeof(d->cpu_forced));
    if (d->cpu_forced[0])
        tlog_warn(d->log, "this host's KVM shows the guest CPU features its policy takes away: %s", d->cpu_forced);
    free(got);
}

int domain_setup_cpu_policy(struct domain *d, const struct cpu_overrides *host_mask)
{
    struct cpu_policy *guest = malloc(sizeof(*guest)), *own = malloc(sizeof(*own));
    struct kvm_cpuid2 *sup = NULL;
    int rc = -ENOMEM;
    d->host_max = malloc(sizeof(*d->host_max));
    if (!guest || !own || !d->host_max)
        goto out;
    if ((rc = default_policy(d->kvm_fd, d->tsc_khz, guest, &sup, d->log)))
        goto out;
    if ((rc = vcpu_load_policy(d->vcpus[0].fd, 0, guest))) {
        tlog_error(d->log, "vcpu0: KVM_SET_CPUID2: %s", strerror(-rc));
        goto out;
    }
    if ((rc = host_max_policy(d->kvm_fd, d->vcpus[0].fd, guest, sup, host_mask, d->host_max, own, d->log)))
        goto out;

    /* The guest's: everything this host gives (as Xen's default), which
     * is already without what the host mask takes away, then its own
     * cpuid= / cpuid_policy=.  Its feature MSRs start as the vCPU has
     * them and are set only where the mask or the config changes them. */
    *guest = *d->host_max;
    memcpy(guest->msrs, own->msrs, sizeof(own->msrs));
    guest->nr_msrs = own->nr_msrs;
    if ((host_mask && (rc = cpu_policy_apply(guest, host_mask))) || (rc = cpu_policy_apply(guest, &d->cfg.cpuid))) {
        tlog_error(d->log, "the CPU policy has too many leaves or MSRs");
        goto out;
    }
    char msg[1024];
    if (cpu_policy_missing(guest, d->host_max, msg, sizeof(msg))) {
        tlog_error(d->log, "cpuid: this host cannot give %s", msg);
        rc = -EOPNOTSUPP;
        goto out;
    }
    /* Only the feature MSRs the mask or the config changed are set: KVM
     * refuses some (ARCH_CAPABILITIES where the vCPU's CPUID lacks it)
     * even with the value the vCPU already has. */
    unsigned k = 0;
    for (unsigned i = 0; i < guest->nr_msrs; i++)
        if (i >= own->nr_msrs || own->msrs[i].idx != guest->msrs[i].idx || own->msrs[i].val != guest->msrs[i].val)
            guest->msrs[k++] = guest->msrs[i];
    guest->nr_msrs = k;
    for (unsigned id = 0; id < d->nr_vcpus; id++) {
        uint32_t bad = 0;
        if ((rc = vcpu_load_policy(d->vcpus[id].fd, id, guest))) {
            tlog_error(d->log, "vcpu%u: KVM_SET_CPUID2: %s", id, strerror(-rc));
            goto out;
        }
        if (id == 0)
            note_forced_features(d, guest);
        if ((rc = vcpu_load_msrs(d->vcpus[id].fd, guest, &bad))) {
            tlog_error(d->log, "vcpu%u: KVM refused feature MSR %#x: %s", id, bad, strerror(-rc));
            goto out;
        }
    }
    rc = 0;
out:
    free(sup);
    free(own);
    free(guest);
    return rc;
}

int domain_get_cpuid_policy(struct domain *d, struct domain_cpuid_leaf **out, unsigned *n, const struct tlog *log)
{
    struct kvm_cpuid2 *c = NULL;
    *out = NULL;
    *n = 0;
    if (!d->nr_vcpus)
        return -EINVAL;
    int rc = vcpu_read_cpuid(d->vcpus[0].fd, &c, log);
    if (rc)
        return rc;
    struct domain_cpuid_leaf *l = calloc(c->nent + 1, sizeof(*l));
    if (!l) {
        free(c);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < c->nent; i++)
        leaf_from_entry(&l[i], &c->entries[i]);
    *out = l;
    *n = c->nent;
    free(c);
    return 0;
}

int domain_set_cpuid_policy(struct domain *d, const struct domain_cpuid_leaf *l, unsigned n,
                            const struct tlog *log)
{
    if (n == 0 || n > CPU_POLICY_MAX_LEAVES) {
        tlog_error(log, "CPUID policy with %u leaves (KVM takes 1 to %d)", n, CPU_POLICY_MAX_LEAVES);
        return -EINVAL;
    }
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < i; j++)
            if (l[i].leaf == l[j].leaf && l[i].subleaf == l[j].subleaf) {
                tlog_error(log, "CPUID policy gives leaf %#x subleaf %#x twice", l[i].leaf, l[i].subleaf);
                return -EINVAL;
            }
    struct cpu_policy *want = calloc(1, sizeof(*want));
    if (!want)
        return -ENOMEM;
    want->nr_leaves = n;
    memcpy(want->leaves, l, n * sizeof(*l));
    char msg[1024];
    int rc = 0;
    if (cpu_policy_missing(want, d->host_max, msg, sizeof(msg))) {
        tlog_error(log, "this host cannot give the CPU features the domain was given: %s", msg);
        rc = -EOPNOTSUPP;
        goto out;
    }
    bool ran = hvm_vcpus_have_run(d);
    for (unsigned id = 0; id < d->nr_vcpus; id++) {
        if ((rc = vcpu_load_policy(d->vcpus[id].fd, id, want))) {
            /* KVM takes a new CPUID only before the first KVM_RUN (or the
             * same one again). */
            if (ran) {
                tlog_error(log, "vcpu%u: the CPUID policy can change only before the domain first runs", id);
                rc = -EBUSY;
            } else {
                tlog_error(log, "vcpu%u: KVM_SET_CPUID2: %s", id, strerror(-rc));
            }
            goto out;
        }
    }
out:
    free(want);
    return rc;
}

/* ---- MSR policy --------------------------------------------------------- */

int domain_get_msr_policy(struct domain *d, struct domain_msr_entry **out, unsigned *n,
                          const struct tlog *log)
{
    *out = NULL;
    *n = 0;
    struct cpu_policy *host = calloc(1, sizeof(*host));
    if (!host)
        return -ENOMEM;
    int rc = host_msrs(d->kvm_fd, host, log);
    struct kvm_msr_entry *vals = calloc(host->nr_msrs + 1, sizeof(*vals));
    struct domain_msr_entry *m = calloc(host->nr_msrs + 1, sizeof(*m));
    uint32_t *idx = calloc(host->nr_msrs + 1, sizeof(*idx));
    if (rc || !vals || !m || !idx) {
        rc = rc ? rc : -ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < host->nr_msrs; i++)
        idx[i] = host->msrs[i].idx;
    /* The domain's values (what its vCPUs were given); the host's for one
     * a vCPU cannot read. */
    rc = hvm_read_msrs(d->vcpus[0].fd, idx, host->nr_msrs, vals, log);
    if (rc < 0)
        goto out;
    unsigned nv = (unsigned)rc;
    for (unsigned i = 0; i < host->nr_msrs; i++) {
        m[i] = host->msrs[i];
        for (unsigned j = 0; j < nv; j++)
            if (vals[j].index == m[i].idx)
                m[i].val = vals[j].data;
    }
    *out = m;
    *n = host->nr_msrs;
    m = NULL;
    rc = 0;
out:
    free(idx);
    free(m);
    free(vals);
    free(host);
    return rc;
}

int domain_set_msr_policy(struct domain *d, const struct domain_msr_entry *m, unsigned n,
                          const struct tlog *log)
{
    if (n > CPU_POLICY_MAX_MSRS) {
        tlog_error(log, "MSR policy with %u entries (at most %d)", n, CPU_POLICY_MAX_MSRS);
        return -EINVAL;
    }
    struct cpu_policy *want = calloc(1, sizeof(*want));
    if (!want)
        return -ENOMEM;
    int rc = -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (m[i].flags) {
            tlog_error(log, "MSR policy entry for %#x has flags %#x (must be 0)", m[i].idx, m[i].flags);
            goto out;
        }
        for (unsigned j = 0; j < i; j++)
            if (m[j].idx == m[i].idx) {
                tlog_error(log, "MSR policy gives MSR %#x twice", m[i].idx);
                goto out;
            }
        /* Only MSRs this host lets a VMM choose are set; one it lacks is
         * fine if it says "nothing" (cpu_policy_missing checks that). */
        bool known = false;
        for (unsigned j = 0; j < d->host_max->nr_msrs && !known; j++)
            known = d->host_max->msrs[j].idx == m[i].idx;
        if (known)
            want->msrs[want->nr_msrs++] = m[i];
    }
    struct cpu_policy *check = calloc(1, sizeof(*check));
    if (!check) {
        rc = -ENOMEM;
        goto out;
    }
    check->nr_msrs = n;
    memcpy(check->msrs, m, n * sizeof(*m));
    char msg[1024];
    unsigned missing = cpu_policy_missing(check, d->host_max, msg, sizeof(msg));
    free(check);
    if (missing) {
        tlog_error(log, "this host cannot give the MSR features the domain was given: %s", msg);
        rc = -EOPNOTSUPP;
        goto out;
    }
    bool ran = hvm_vcpus_have_run(d);
    rc = 0;
    for (unsigned id = 0; id < d->nr_vcpus && !rc; id++) {
        uint32_t bad = 0;
        if ((rc = vcpu_load_msrs(d->vcpus[id].fd, want, &bad))) {
            tlog_error(log, "vcpu%u: KVM refused MSR %#x%s", id, bad,
                       ran ? " (feature MSRs can change only before the domain first runs)" : "");
            rc = ran ? -EBUSY : rc;
        }
    }
out:
    free(want);
    return rc;
}

int domain_get_cpu_policy(struct domain *d, struct cpu_policy *out, const struct tlog *log)
{
    struct domain_cpuid_leaf *l = NULL;
    struct domain_msr_entry *m = NULL;
    unsigned nl = 0, nm = 0;
    memset(out, 0, sizeof(*out));
    int rc = domain_get_cpuid_policy(d, &l, &nl, log);
    if (!rc)
        rc = domain_get_msr_policy(d, &m, &nm, log);
    if (!rc) {
        out->nr_leaves = nl < CPU_POLICY_MAX_LEAVES ? nl : CPU_POLICY_MAX_LEAVES;
        memcpy(out->leaves, l, out->nr_leaves * sizeof(*l));
        out->nr_msrs = nm < CPU_POLICY_MAX_MSRS ? nm : CPU_POLICY_MAX_MSRS;
        memcpy(out->msrs, m, out->nr_msrs * sizeof(*m));
    }
    free(l);
    free(m);
    return rc;
}
