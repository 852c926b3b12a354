/* vCPU and platform state of a domain as Xen's HVM context blob, plus the
 * TSC info and HVM params of the libxc stream.
 *
 * Every piece of KVM state has exactly one authoritative home in a blob:
 * a Xen record where that record holds the KVM data exactly (kvm_regs in
 * CPU, the LAPIC page in LAPIC_REGS, the XSAVE area in CPU_XSAVE, ...),
 * otherwise a Tandem extension record (hvm_context.h).  Xen records that
 * only approximate extension data (CPU's segments and pending event, PIC,
 * IOAPIC, PIT) are still filled as Xen would fill them, so Xen's tools read
 * a faithful picture, and a blob with the extensions stripped restores from
 * them alone.  docs/hvm-context.md has the whole mapping. */
#define __XEN_TOOLS__ 1 /* HVM params and policy types are toolstack ABI */
#include "config.h"

#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xen/xen.h>
#include <xen/hvm/save.h>
#include <xen/hvm/params.h>

#include "domain.h"
#include "hvm_context.h"

_Static_assert(sizeof(struct tandem_hvm_kvm_vcpu) == 400, "TANDEM_KVM_VCPU layout");
_Static_assert(sizeof(struct tandem_hvm_kvm_msrs) == 8, "TANDEM_KVM_MSRS layout");
_Static_assert(sizeof(struct tandem_hvm_kvm_msr) == 16, "TANDEM_KVM_MSRS layout");
_Static_assert(sizeof(struct tandem_hvm_kvm_pit) == 120, "TANDEM_KVM_PIT layout");
_Static_assert(sizeof(struct tandem_hvm_kvm_irqchip) == 520, "TANDEM_KVM_IRQCHIP layout");
_Static_assert(sizeof(struct tandem_hvm_kvm_clock) == 32, "TANDEM_KVM_CLOCK layout");
_Static_assert(sizeof(struct kvm_lapic_state) == sizeof(struct hvm_hw_lapic_regs),
               "KVM's and Xen's LAPIC pages are the same 1 KiB");
_Static_assert(KVM_IOAPIC_NUM_PINS <= VIOAPIC_NUM_PINS, "Xen's IOAPIC has room for KVM's pins");

/* Must match xen/domain.c, which hands these to KVM when it builds the VM;
 * KVM offers no way to read them back. */
#define KVM_TSS_GPA 0xfffbd000ULL
#define KVM_TSS_SIZE 0x3000ULL /* KVM uses three pages there */
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL
#define KVM_IOAPIC_BASE 0xfec00000ULL

/* MSR numbers (Intel SDM vol. 4, AMD APM vol. 2). */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_APICBASE 0x1b
#define MSR_IA32_TSC_ADJUST 0x3b
#define MSR_IA32_SPEC_CTRL 0x48
#define MSR_IA32_UCODE_REV 0x8b
#define MSR_MTRRCAP 0xfe
#define MSR_PLATFORM_INFO 0xce
#define MSR_ARCH_CAPABILITIES 0x10a
#define MSR_INTEL_MISC_FEATURES_ENABLES 0x140
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_MTRR_PHYSBASE0 0x200
#define MSR_MTRR_FIX64K_00000 0x250
#define MSR_MTRR_FIX16K_80000 0x258
#define MSR_MTRR_FIX16K_A0000 0x259
#define MSR_MTRR_FIX4K_C0000 0x268
#define MSR_IA32_CR_PAT 0x277
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_PERF_CAPABILITIES 0x345
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_IA32_PKRS 0x6e1
#define MSR_IA32_BNDCFGS 0xd90
#define MSR_IA32_XSS 0xda0
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103
#define MSR_AMD64_DR1_ADDRESS_MASK 0xc0011019
#define MSR_AMD64_DR2_ADDRESS_MASK 0xc001101a
#define MSR_AMD64_DR3_ADDRESS_MASK 0xc001101b
#define MSR_AMD64_DR0_ADDRESS_MASK 0xc0011027
#define MSR_VIRT_SPEC_CTRL 0xc001011f

#define APIC_BASE_BSP (1ULL << 8)
#define APIC_BASE_EXTD (1ULL << 10)
#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_REG_TPR 0x80
#define APIC_REG_SVR 0xf0
#define APIC_REG_TDCR 0x3e0
#define APIC_SVR_ENABLE 0x100
#define VLAPIC_HW_DISABLED 0x1 /* Xen's hvm_hw_lapic.disabled bits */
#define VLAPIC_SW_DISABLED 0x2

#define XSTATE_FP 0x1ULL
#define XSTATE_SSE 0x2ULL
#define XSTATE_YMM 0x4ULL
#define XSAVE_LEGACY_SIZE 512
#define XSAVE_HDR_SIZE 64
#define XEN_XSAVE_HDR offsetof(struct hvm_hw_cpu_xsave, save_area)

#define EFER_KNOWN (1ULL << 0 | 1ULL << 8 | 1ULL << 10 | 1ULL << 11 | 1ULL << 12 | 1ULL << 13 | \
                    1ULL << 14 | 1ULL << 15 | 1ULL << 21)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_PG 0x80000000ULL
/* PE MP EM TS ET NE WP AM NW CD PG: everything else in CR0 is reserved. */
#define CR0_KNOWN 0xe005003fULL

#define KVM_VCPUEVENT_KNOWN (KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | \
                             KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |             \
                             KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

/* Xen's pending_event: the VMX event-injection format. */
#define PENDING_VALID (1u << 31)
#define PENDING_ERRVALID (1u << 11)
#define PENDING_TYPE_EXTINT 0
#define PENDING_TYPE_NMI 2
#define PENDING_TYPE_HWEXC 3
#define PENDING_TYPE_SWINT 4
#define PENDING_TYPE_PRISWEXC 5
#define PENDING_TYPE_SWEXC 6

/* The MSRs Xen carries in CPU_MSR (hvm.c's msrs_to_send); Xen refuses any
 * other index there, so Tandem puts other MSRs in TANDEM_KVM_MSRS. */
static const uint32_t xen_cpu_msr_list[] = {
    MSR_IA32_SPEC_CTRL,  MSR_INTEL_MISC_FEATURES_ENABLES, MSR_IA32_PKRS,
    MSR_IA32_BNDCFGS,    MSR_IA32_XSS,                    MSR_VIRT_SPEC_CTRL,
    MSR_AMD64_DR0_ADDRESS_MASK, MSR_AMD64_DR1_ADDRESS_MASK, MSR_AMD64_DR2_ADDRESS_MASK,
    MSR_AMD64_DR3_ADDRESS_MASK,
};

static const uint32_t mtrr_fixed_msrs[NUM_FIXED_MSR] = {
    MSR_MTRR_FIX64K_00000,     MSR_MTRR_FIX16K_80000,     MSR_MTRR_FIX16K_A0000,
    MSR_MTRR_FIX4K_C0000 + 0, MSR_MTRR_FIX4K_C0000 + 1, MSR_MTRR_FIX4K_C0000 + 2,
    MSR_MTRR_FIX4K_C0000 + 3, MSR_MTRR_FIX4K_C0000 + 4, MSR_MTRR_FIX4K_C0000 + 5,
    MSR_MTRR_FIX4K_C0000 + 6, MSR_MTRR_FIX4K_C0000 + 7,
};

/* Where an MSR lives in a blob. */
enum msr_home {
    HOME_EXT,        /* TANDEM_KVM_MSRS */
    HOME_CPU,        /* CPU record (or TANDEM_KVM_MSRS for a vCPU without one) */
    HOME_MTRR,       /* MTRR record */
    HOME_LAPIC,      /* LAPIC.tdt_msr */
    HOME_TSC_ADJUST, /* TSC_ADJUST record */
    HOME_CPU_MSR,    /* CPU_MSR record */
    HOME_NONE,       /* not per-vCPU state here: sregs, or the MSR policy */
};

static bool is_mtrr_msr(uint32_t idx)
{
    if (idx == MSR_MTRRCAP || idx == MSR_MTRR_DEF_TYPE || idx == MSR_IA32_CR_PAT)
        return true;
    if (idx >= MSR_MTRR_PHYSBASE0 && idx < MSR_MTRR_PHYSBASE0 + 2 * MTRR_VCNT)
        return true;
    for (unsigned i = 0; i < NUM_FIXED_MSR; i++)
        if (mtrr_fixed_msrs[i] == idx)
            return true;
    return false;
}

static enum msr_home msr_home(uint32_t idx)
{
    switch (idx) {
    case MSR_IA32_TSC:
    case MSR_IA32_SYSENTER_CS:
    case MSR_IA32_SYSENTER_ESP:
    case MSR_IA32_SYSENTER_EIP:
    case MSR_STAR:
    case MSR_LSTAR:
    case MSR_CSTAR:
    case MSR_SYSCALL_MASK:
    case MSR_KERNEL_GS_BASE:
    case MSR_TSC_AUX:
        return HOME_CPU;
    case MSR_IA32_TSC_DEADLINE:
        return HOME_LAPIC;
    case MSR_IA32_TSC_ADJUST:
        return HOME_TSC_ADJUST;
    case MSR_EFER:
    case MSR_IA32_APICBASE:
    /* Feature MSRs belong to the MSR policy (cpu_policy.c). */
    case MSR_IA32_UCODE_REV:
    case MSR_PLATFORM_INFO:
    case MSR_ARCH_CAPABILITIES:
    case MSR_PERF_CAPABILITIES:
        return HOME_NONE;
    }
    if (is_mtrr_msr(idx))
        return HOME_MTRR;
    for (size_t i = 0; i < sizeof(xen_cpu_msr_list) / sizeof(xen_cpu_msr_list[0]); i++)
        if (xen_cpu_msr_list[i] == idx)
            return HOME_CPU_MSR;
    return HOME_EXT;
}

/* ---- Small helpers shared with cpu_policy.c ---------------------------- */

bool hvm_vcpus_have_run(struct domain *d)
{
    /* The kvm_run page starts zeroed (KVM_EXIT_UNKNOWN) and KVM writes an
     * exit reason the first time KVM_RUN returns; a vCPU thread parked
     * since creation (a domain built for restore) leaves it untouched. */
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (d->vcpus[i].run && d->vcpus[i].run->exit_reason != KVM_EXIT_UNKNOWN)
            return true;
    return false;
}

int hvm_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out, const struct tlog *log)
{
    for (int nent = 64;; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
        if (!c)
            return -ENOMEM;
        c->nent = nent;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            *out = c;
            return 0;
        }
        int err = errno;
        free(c);
        if (err != E2BIG || nent >= 4096) {
            tlog_error(log, "KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
            return -err;
        }
    }
}

const struct kvm_cpuid_entry2 *hvm_cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
                                              uint32_t index)
{
    for (unsigned i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function != function)
            continue;
        if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
            return e;
    }
    return NULL;
}

int hvm_msr_index_list(int kvm_fd, unsigned long req, struct kvm_msr_list **out,
                       const struct tlog *log)
{
    struct kvm_msr_list probe = { .nmsrs = 0 };
    /* The first call fails with E2BIG and tells how many there are. */
    if (ioctl(kvm_fd, req, &probe) < 0 && errno != E2BIG) {
        int err = errno;
        tlog_error(log, "%s: %s",
                   req == KVM_GET_MSR_INDEX_LIST ? "KVM_GET_MSR_INDEX_LIST" : "KVM_GET_MSR_FEATURE_INDEX_LIST",
                   strerror(err));
        return -err;
    }
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + (probe.nmsrs + 1) * sizeof(l->indices[0]));
    if (!l)
        return -ENOMEM;
    l->nmsrs = probe.nmsrs;
    if (probe.nmsrs && ioctl(kvm_fd, req, l) < 0) {
        int err = errno;
        free(l);
        tlog_error(log, "reading KVM's MSR list: %s", strerror(err));
        return -err;
    }
    *out = l;
    return 0;
}

int hvm_read_msrs(int vcpu_fd, const uint32_t *idx, unsigned n, struct kvm_msr_entry *out,
                  const struct tlog *log)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + (n + 1) * sizeof(m->entries[0]));
    if (!m)
        return -ENOMEM;
    unsigned got = 0, pos = 0;
    while (pos < n) {
        unsigned cnt = n - pos;
        m->nmsrs = cnt;
        for (unsigned i = 0; i < cnt; i++)
            m->entries[i] = (struct kvm_msr_entry){ .index = idx[pos + i] };
        int r = ioctl(vcpu_fd, KVM_GET_MSRS, m);
        if (r < 0) {
            int err = errno;
            free(m);
            tlog_error(log, "KVM_GET_MSRS: %s", strerror(err));
            return -err;
        }
        for (int i = 0; i < r; i++)
            out[got++] = m->entries[i];
        /* KVM stops at the first MSR it cannot read: skip that one. */
        pos += (unsigned)r;
        if ((unsigned)r < cnt)
            pos++;
    }
    free(m);
    return (int)got;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_msr_entry(const void *a, const void *b)
{
    return cmp_u32(&((const struct kvm_msr_entry *)a)->index, &((const struct kvm_msr_entry *)b)->index);
}

static bool msr_list_has(const struct kvm_msr_list *l, uint32_t idx)
{
    for (unsigned i = 0; l && i < l->nmsrs; i++)
        if (l->indices[i] == idx)
            return true;
    return false;
}

static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what,
                      const struct tlog *log)
{
    if (ioctl(v->fd, req, arg) < 0) {
        int err = errno;
        tlog_error(log, "vcpu%u: %s: %s", v->id, what, strerror(err));
        return -err;
    }
    return 0;
}

static int vm_ioctl(struct domain *d, unsigned long req, void *arg, const char *what,
                    const struct tlog *log)
{
    if (ioctl(d->vm_fd, req, arg) < 0) {
        int err = errno;
        tlog_error(log, "%s: %s", what, strerror(err));
        return -err;
    }
    return 0;
}

/* ---- What this host's KVM offers ---------------------------------------- */

struct host_caps {
    bool sregs2, xcrs, debugregs;
    size_t xsave_size;               /* bytes of KVM's XSAVE buffer */
    struct kvm_cpuid2 *cpuid;        /* supported CPUID */
    uint64_t xcr0_supported;
    struct kvm_msr_list *msrs;       /* KVM_GET_MSR_INDEX_LIST */
    struct kvm_msr_list *features;   /* KVM_GET_MSR_FEATURE_INDEX_LIST (may be NULL) */
};

static void host_caps_free(struct host_caps *c)
{
    free(c->cpuid);
    free(c->msrs);
    free(c->features);
    memset(c, 0, sizeof(*c));
}

static int host_caps_get(struct domain *d, struct host_caps *c, const struct tlog *log)
{
    memset(c, 0, sizeof(*c));
    c->sregs2 = ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
    c->xcrs = ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    c->debugregs = ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
    if (ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0) {
        /* Every x86-64 KVM of the last decade has it; without it the FPU
         * state would need a second path through KVM_GET_FPU. */
        tlog_error(log, "this host's KVM lacks KVM_CAP_XSAVE, which Tandem needs for the FPU state");
        return -EOPNOTSUPP;
    }
    int xs = ioctl(d->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    c->xsave_size = xs > (int)sizeof(struct kvm_xsave) ? (size_t)xs : sizeof(struct kvm_xsave);
    int rc = hvm_supported_cpuid(d->kvm_fd, &c->cpuid, log);
    if (rc)
        goto fail;
    const struct kvm_cpuid_entry2 *e = hvm_cpuid_find(c->cpuid, 0xd, 0);
    c->xcr0_supported = e ? ((uint64_t)e->edx << 32 | e->eax) : XSTATE_FP | XSTATE_SSE;
    if ((rc = hvm_msr_index_list(d->kvm_fd, KVM_GET_MSR_INDEX_LIST, &c->msrs, log)))
        goto fail;
    if (ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) > 0 &&
        (rc = hvm_msr_index_list(d->kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &c->features, log)))
        goto fail;
    return 0;
fail:
    host_caps_free(c);
    return rc;
}

/* Bytes of the standard (uncompacted) XSAVE image holding the components
 * in `mask`: the legacy area and header, then up to the end of the highest
 * component, as CPUID leaf 0xd lays them out. */
static int xstate_size(const struct host_caps *c, uint64_t mask, size_t *out)
{
    size_t size = XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE;
    for (unsigned i = 2; i < 64; i++) {
        if (!(mask & (1ULL << i)))
            continue;
        const struct kvm_cpuid_entry2 *e = hvm_cpuid_find(c->cpuid, 0xd, i);
        if (!e || !e->eax)
            return -EOPNOTSUPP;
        if ((size_t)e->ebx + e->eax > size)
            size = (size_t)e->ebx + e->eax;
    }
    *out = size;
    return 0;
}

/* ---- A vCPU's KVM state ------------------------------------------------- */

struct vcpu_snap {
    struct kvm_mp_state mp;
    struct kvm_regs regs;
    struct kvm_sregs2 sregs;
    bool sregs2;                     /* read with KVM_GET_SREGS2 */
    struct kvm_debugregs dbg;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    uint64_t xcr0;
    struct kvm_xsave *xsave;         /* host_caps.xsave_size bytes */
    struct kvm_msr_entry *msrs;
    unsigned nmsrs;
};

static void vcpu_snap_free(struct vcpu_snap *s)
{
    free(s->xsave);
    free(s->msrs);
}

static bool mp_state_is_up(uint32_t mp)
{
    /* Waiting for INIT or SIPI is Xen's "down" vCPU, which has no CPU
     * record and is left waiting on restore. */
    return mp != KVM_MP_STATE_UNINITIALIZED && mp != KVM_MP_STATE_INIT_RECEIVED &&
           mp != KVM_MP_STATE_SIPI_RECEIVED;
}

static void sregs_to_sregs2(const struct kvm_sregs *s, struct kvm_sregs2 *s2)
{
    memset(s2, 0, sizeof(*s2));
    s2->cs = s->cs; s2->ds = s->ds; s2->es = s->es; s2->fs = s->fs;
    s2->gs = s->gs; s2->ss = s->ss; s2->tr = s->tr; s2->ldt = s->ldt;
    s2->gdt = s->gdt; s2->idt = s->idt;
    s2->cr0 = s->cr0; s2->cr2 = s->cr2; s2->cr3 = s->cr3; s2->cr4 = s->cr4; s2->cr8 = s->cr8;
    s2->efer = s->efer;
    s2->apic_base = s->apic_base;
}

static void sregs2_to_sregs(const struct kvm_sregs2 *s2, struct kvm_sregs *s)
{
    /* interrupt_bitmap stays empty: an injected interrupt travels in the
     * vCPU events, which are set afterwards. */
    memset(s, 0, sizeof(*s));
    s->cs = s2->cs; s->ds = s2->ds; s->es = s2->es; s->fs = s2->fs;
    s->gs = s2->gs; s->ss = s2->ss; s->tr = s2->tr; s->ldt = s2->ldt;
    s->gdt = s2->gdt; s->idt = s2->idt;
    s->cr0 = s2->cr0; s->cr2 = s2->cr2; s->cr3 = s2->cr3; s->cr4 = s2->cr4; s->cr8 = s2->cr8;
    s->efer = s2->efer;
    s->apic_base = s2->apic_base;
}

static int vcpu_get_sregs(struct vcpu *v, const struct host_caps *c, struct kvm_sregs2 *out,
                          bool *is2, const struct tlog *log)
{
    if (c->sregs2) {
        *is2 = true;
        return vcpu_ioctl(v, KVM_GET_SREGS2, out, "KVM_GET_SREGS2", log);
    }
    struct kvm_sregs s;
    int rc = vcpu_ioctl(v, KVM_GET_SREGS, &s, "KVM_GET_SREGS", log);
    if (rc)
        return rc;
    *is2 = false;
    sregs_to_sregs2(&s, out);
    return 0;
}

/* A port or MMIO exit is finished (RIP moved past the instruction, an IN's
 * data in RAX) only by the next KVM_RUN.  A vCPU parked right after such an
 * exit would otherwise be saved half-way and repeat the access on the
 * destination, e.g. print a console byte twice.  KVM_RUN with immediate_exit
 * completes it without running guest code (KVM's API doc, "immediate_exit").
 * Safe here: the domain is paused, so the vCPU's own thread is parked. */
static void vcpu_complete_pending_io(struct vcpu *v)
{
    if (!v->run)
        return;
    uint32_t why = v->run->exit_reason;
    if (why != KVM_EXIT_IO && why != KVM_EXIT_MMIO)
        return;
    uint8_t old = v->run->immediate_exit;
    v->run->immediate_exit = 1;
    if (ioctl(v->fd, KVM_RUN, 0) == 0) {
        /* Cannot happen with immediate_exit set; nothing to undo if it did. */
    }
    v->run->immediate_exit = old;
}

static int vcpu_snap_read(struct vcpu *v, const struct host_caps *c, const uint32_t *msr_idx,
                          unsigned n_msr, struct vcpu_snap *s, const struct tlog *log)
{
    int rc;
    memset(s, 0, sizeof(*s));
    vcpu_complete_pending_io(v);
    /* MP state first: reading it makes KVM act on a latched INIT or SIPI,
     * which rewrites the registers read below. */
    if ((rc = vcpu_ioctl(v, KVM_GET_MP_STATE, &s->mp, "KVM_GET_MP_STATE", log)))
        return rc;
    if ((rc = vcpu_ioctl(v, KVM_GET_REGS, &s->regs, "KVM_GET_REGS", log)))
        return rc;
    if ((rc = vcpu_get_sregs(v, c, &s->sregs, &s->sregs2, log)))
        return rc;
    if (c->debugregs && (rc = vcpu_ioctl(v, KVM_GET_DEBUGREGS, &s->dbg, "KVM_GET_DEBUGREGS", log)))
        return rc;
    if ((rc = vcpu_ioctl(v, KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC", log)))
        return rc;
    if ((rc = vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS", log)))
        return rc;
    s->xsave = calloc(1, c->xsave_size);
    s->msrs = calloc(n_msr + 1, sizeof(*s->msrs));
    if (!s->xsave || !s->msrs)
        return -ENOMEM;
    if (c->xsave_size > sizeof(struct kvm_xsave))
        rc = vcpu_ioctl(v, KVM_GET_XSAVE2, s->xsave, "KVM_GET_XSAVE2", log);
    else
        rc = vcpu_ioctl(v, KVM_GET_XSAVE, s->xsave, "KVM_GET_XSAVE", log);
    if (rc)
        return rc;
    s->xcr0 = XSTATE_FP;
    if (c->xcrs) {
        struct kvm_xcrs x;
        if ((rc = vcpu_ioctl(v, KVM_GET_XCRS, &x, "KVM_GET_XCRS", log)))
            return rc;
        for (unsigned i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (x.xcrs[i].xcr == 0)
                s->xcr0 = x.xcrs[i].value;
    }
    rc = hvm_read_msrs(v->fd, msr_idx, n_msr, s->msrs, log);
    if (rc < 0)
        return rc;
    s->nmsrs = (unsigned)rc;
    return 0;
}

static bool snap_msr(const struct vcpu_snap *s, uint32_t idx, uint64_t *val)
{
    for (unsigned i = 0; i < s->nmsrs; i++)
        if (s->msrs[i].index == idx) {
            *val = s->msrs[i].data;
            return true;
        }
    return false;
}

static uint64_t snap_msr0(const struct vcpu_snap *s, uint32_t idx)
{
    uint64_t v = 0;
    snap_msr(s, idx, &v);
    return v;
}

/* The per-vCPU MSRs to save: what KVM lists, plus the MTRRs and TSC_AUX,
 * which KVM may emulate yet leave out of KVM_GET_MSR_INDEX_LIST (those a
 * vCPU cannot read drop out when read); minus those that are
 * not per-vCPU state here (EFER and APIC base travel in the sregs, feature
 * MSRs in the MSR policy). */
static int save_msr_list(const struct host_caps *c, uint32_t **out, unsigned *n)
{
    unsigned cap = c->msrs->nmsrs + 5 + 2 * MTRR_VCNT + NUM_FIXED_MSR;
    uint32_t *l = calloc(cap, sizeof(*l));
    if (!l)
        return -ENOMEM;
    unsigned k = 0;
    for (unsigned i = 0; i < c->msrs->nmsrs; i++)
        l[k++] = c->msrs->indices[i];
    l[k++] = MSR_MTRRCAP;
    l[k++] = MSR_MTRR_DEF_TYPE;
    l[k++] = MSR_IA32_CR_PAT;
    l[k++] = MSR_TSC_AUX;
    for (unsigned i = 0; i < 2 * MTRR_VCNT; i++)
        l[k++] = MSR_MTRR_PHYSBASE0 + i;
    for (unsigned i = 0; i < NUM_FIXED_MSR; i++)
        l[k++] = mtrr_fixed_msrs[i];
    qsort(l, k, sizeof(*l), cmp_u32);
    unsigned m = 0;
    for (unsigned i = 0; i < k; i++) {
        if (m && l[m - 1] == l[i])
            continue;
        if (msr_home(l[i]) == HOME_NONE || msr_list_has(c->features, l[i]))
            continue;
        l[m++] = l[i];
    }
    *out = l;
    *n = m;
    return 0;
}

/* ---- Blob writer -------------------------------------------------------- */

struct blob {
    uint8_t *p;
    size_t len, cap;
    int err;
};

static void *blob_put(struct blob *b, uint16_t code, uint16_t inst, uint32_t len)
{
    if (b->err)
        return NULL;
    size_t need = b->len + sizeof(struct hvm_save_descriptor) + len;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    struct hvm_save_descriptor desc = { .typecode = code, .instance = inst, .length = len };
    memcpy(b->p + b->len, &desc, sizeof(desc));
    void *body = b->p + b->len + sizeof(desc);
    memset(body, 0, len);
    b->len = need;
    return body;
}

static void blob_add(struct blob *b, uint16_t code, uint16_t inst, const void *data, uint32_t len)
{
    void *p = blob_put(b, code, inst, len);
    if (p)
        memcpy(p, data, len);
}

/* ---- KVM -> Xen records ------------------------------------------------- */

static uint32_t seg_to_arbytes(const struct kvm_segment *s)
{
    /* Xen's segment_register.attr (the SVM VMCB layout).  Xen folds VMX's
     * "unusable" into P=0, and so do we. */
    bool p = s->present && !s->unusable;
    return (s->type & 0xfu) | (s->s & 1u) << 4 | (s->dpl & 3u) << 5 | (uint32_t)p << 7 |
           (s->avl & 1u) << 8 | (s->l & 1u) << 9 | (s->db & 1u) << 10 | (s->g & 1u) << 11;
}

static void arbytes_to_seg(uint32_t ar, uint32_t sel, uint32_t limit, uint64_t base,
                           struct kvm_segment *s)
{
    memset(s, 0, sizeof(*s));
    s->base = base;
    s->limit = limit;
    s->selector = (uint16_t)sel;
    s->type = ar & 0xf;
    s->s = (ar >> 4) & 1;
    s->dpl = (ar >> 5) & 3;
    s->present = (ar >> 7) & 1;
    s->avl = (ar >> 8) & 1;
    s->l = (ar >> 9) & 1;
    s->db = (ar >> 10) & 1;
    s->g = (ar >> 11) & 1;
    s->unusable = !s->present;
}

/* KVM's injected event in Xen's (VMX) pending_event format.  Only events
 * already being injected have a Xen equivalent; an exception still pending
 * (not yet injected) has none and lives in TANDEM_KVM_VCPU alone. */
static void events_to_pending(const struct kvm_vcpu_events *e, uint32_t *pending, uint32_t *error)
{
    *pending = 0;
    *error = 0;
    if (e->exception.injected) {
        /* #BP and #OF come from INT3/INTO: software exceptions. */
        uint32_t type = (e->exception.nr == 3 || e->exception.nr == 4) ? PENDING_TYPE_SWEXC
                                                                         : PENDING_TYPE_HWEXC;
        *pending = PENDING_VALID | type << 8 | e->exception.nr |
                   (e->exception.has_error_code ? PENDING_ERRVALID : 0);
        *error = e->exception.has_error_code ? e->exception.error_code : 0;
    } else if (e->nmi.injected) {
        *pending = PENDING_VALID | PENDING_TYPE_NMI << 8 | 2;
    } else if (e->interrupt.injected) {
        uint32_t type = e->interrupt.soft ? PENDING_TYPE_SWINT : PENDING_TYPE_EXTINT;
        *pending = PENDING_VALID | type << 8 | e->interrupt.nr;
    }
}

static void fill_cpu(const struct vcpu_snap *s, struct hvm_hw_cpu *c)
{
    const struct kvm_regs *r = &s->regs;
    const struct kvm_sregs2 *sr = &s->sregs;

    memset(c, 0, sizeof(*c));
    memcpy(c->fpu_regs, s->xsave->region, sizeof(c->fpu_regs));
    c->rax = r->rax; c->rbx = r->rbx; c->rcx = r->rcx; c->rdx = r->rdx;
    c->rbp = r->rbp; c->rsi = r->rsi; c->rdi = r->rdi; c->rsp = r->rsp;
    c->r8 = r->r8; c->r9 = r->r9; c->r10 = r->r10; c->r11 = r->r11;
    c->r12 = r->r12; c->r13 = r->r13; c->r14 = r->r14; c->r15 = r->r15;
    c->rip = r->rip;
    c->rflags = r->rflags;
    c->cr0 = sr->cr0; c->cr2 = sr->cr2; c->cr3 = sr->cr3; c->cr4 = sr->cr4;
    c->dr0 = s->dbg.db[0]; c->dr1 = s->dbg.db[1]; c->dr2 = s->dbg.db[2]; c->dr3 = s->dbg.db[3];
    c->dr6 = s->dbg.dr6; c->dr7 = s->dbg.dr7;
#define SEG(x, k) \
    c->x##_sel = sr->k.selector; c->x##_limit = sr->k.limit; c->x##_base = sr->k.base; \
    c->x##_arbytes = seg_to_arbytes(&sr->k)
    SEG(cs, cs); SEG(ds, ds); SEG(es, es); SEG(fs, fs); SEG(gs, gs); SEG(ss, ss);
    SEG(tr, tr); SEG(ldtr, ldt);
#undef SEG
    c->idtr_limit = sr->idt.limit; c->idtr_base = sr->idt.base;
    c->gdtr_limit = sr->gdt.limit; c->gdtr_base = sr->gdt.base;
    c->sysenter_cs = snap_msr0(s, MSR_IA32_SYSENTER_CS);
    c->sysenter_esp = snap_msr0(s, MSR_IA32_SYSENTER_ESP);
    c->sysenter_eip = snap_msr0(s, MSR_IA32_SYSENTER_EIP);
    c->shadow_gs = snap_msr0(s, MSR_KERNEL_GS_BASE);
    c->msr_lstar = snap_msr0(s, MSR_LSTAR);
    c->msr_star = snap_msr0(s, MSR_STAR);
    c->msr_cstar = snap_msr0(s, MSR_CSTAR);
    c->msr_syscall_mask = snap_msr0(s, MSR_SYSCALL_MASK);
    c->msr_efer = sr->efer;
    c->msr_tsc_aux = snap_msr0(s, MSR_TSC_AUX);
    c->tsc = snap_msr0(s, MSR_IA32_TSC);
    events_to_pending(&s->events, &c->pending_event, &c->error_code);
    c->flags = XEN_X86_FPU_INITIALISED;
}

static void fill_lapic(const struct vcpu_snap *s, struct hvm_hw_lapic *l)
{
    uint32_t svr, tdcr;
    memcpy(&svr, s->lapic.regs + APIC_REG_SVR, 4);
    memcpy(&tdcr, s->lapic.regs + APIC_REG_TDCR, 4);
    memset(l, 0, sizeof(*l));
    l->apic_base_msr = s->sregs.apic_base;
    l->disabled = (s->sregs.apic_base & APIC_BASE_ENABLE ? 0 : VLAPIC_HW_DISABLED) |
                  (svr & APIC_SVR_ENABLE ? 0 : VLAPIC_SW_DISABLED);
    /* The divide configuration register's bits 0, 1 and 3 encode 2^(n+1),
     * with 0b111 meaning 1 (the SDM's table). */
    unsigned n = ((tdcr & 3) | ((tdcr & 8) >> 1)) + 1;
    l->timer_divisor = 1u << (n & 7);
    l->tdt_msr = snap_msr0(s, MSR_IA32_TSC_DEADLINE);
}

static bool fill_mtrr(const struct vcpu_snap *s, struct hvm_hw_mtrr *m)
{
    memset(m, 0, sizeof(*m));
    if (!snap_msr(s, MSR_IA32_CR_PAT, &m->msr_pat_cr))
        return false;
    m->msr_mtrr_cap = snap_msr0(s, MSR_MTRRCAP);
    m->msr_mtrr_def_type = snap_msr0(s, MSR_MTRR_DEF_TYPE);
    for (unsigned i = 0; i < 2 * MTRR_VCNT; i++)
        m->msr_mtrr_var[i] = snap_msr0(s, MSR_MTRR_PHYSBASE0 + i);
    for (unsigned i = 0; i < NUM_FIXED_MSR; i++)
        m->msr_mtrr_fixed[i] = snap_msr0(s, mtrr_fixed_msrs[i]);
    return true;
}

/* An 8259's interrupt output, as Xen's vpic computes int_output: the
 * highest-priority requested, unmasked line outranks everything in service.
 * KVM keeps no such field (it recomputes the output on every change). */
static uint8_t pic_int_output(const struct kvm_pic_state *p, bool master)
{
    uint8_t pending = p->irr & ~p->imr;
    if (!pending)
        return 0;
    uint8_t isr = p->isr;
    if (master && p->special_fully_nested_mode)
        isr &= ~(1u << 2); /* the cascade input does not block in SFNM */
    if (p->special_mask)
        isr &= ~p->imr;
    for (unsigned i = 0; i < 8; i++) {
        unsigned line = (i + p->priority_add) & 7;
        if (isr & (1u << line))
            return 0;
        if (pending & (1u << line))
            return 1;
    }
    return 0;
}

static void fill_pic(const struct kvm_pic_state *p, bool master, struct hvm_hw_vpic *x)
{
    memset(x, 0, sizeof(*x));
    x->irr = p->irr;
    x->imr = p->imr;
    x->isr = p->isr;
    x->irq_base = p->irq_base;
    /* KVM cascades always (no ICW1.SNGL); init4 is Xen's ICW1.IC4 bit. */
    x->init_state = (p->init_state & 3) | (p->init4 ? 4 : 0);
    x->priority_add = p->priority_add & 7;
    x->readsel_isr = p->read_reg_select & 1;
    x->poll = p->poll & 1;
    x->auto_eoi = p->auto_eoi & 1;
    x->rotate_on_auto_eoi = p->rotate_on_auto_eoi & 1;
    x->special_fully_nested_mode = p->special_fully_nested_mode & 1;
    x->special_mask_mode = p->special_mask & 1;
    x->is_master = master;
    x->elcr = p->elcr;
    x->int_output = pic_int_output(p, master);
}

static void fill_ioapic(const struct kvm_ioapic_state *k, struct hvm_hw_vioapic *x)
{
    memset(x, 0, sizeof(*x));
    x->base_address = k->base_address;
    x->ioregsel = k->ioregsel;
    x->id = k->id;
    for (unsigned i = 0; i < VIOAPIC_NUM_PINS; i++) {
        if (i < KVM_IOAPIC_NUM_PINS)
            x->redirtbl[i].bits = k->redirtbl[i].bits;
        else
            x->redirtbl[i].fields.mask = 1; /* pins KVM lacks: masked, as at reset */
    }
}

static void fill_pit(const struct kvm_pit_state2 *k, struct hvm_hw_pit *x)
{
    memset(x, 0, sizeof(*x));
    for (unsigned i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *c = &k->channels[i];
        struct hvm_hw_pit_channel *o = &x->channels[i];
        o->count = c->count;
        o->latched_count = c->latched_count;
        o->count_latched = c->count_latched;
        o->status_latched = c->status_latched;
        o->status = c->status;
        o->read_state = c->read_state;
        o->write_state = c->write_state;
        o->write_latch = c->write_latch;
        o->rw_mode = c->rw_mode;
        o->mode = c->mode;
        o->bcd = c->bcd;
        o->gate = c->gate;
    }
    x->speaker_data_on = !!(k->flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON);
}

static int vcpu_encode(struct blob *b, const struct host_caps *c, unsigned id,
                       const struct vcpu_snap *s, unsigned pass)
{
    bool up = mp_state_is_up(s->mp.mp_state);
    switch (pass) {
    case 2: /* CPU: only for a running vCPU, as Xen does for one that is up */
        if (up) {
            struct hvm_hw_cpu *cpu = blob_put(b, HVM_SAVE_CODE(CPU), id, sizeof(*cpu));
            if (cpu)
                fill_cpu(s, cpu);
        }
        break;
    case 5: {
        struct hvm_hw_lapic *l = blob_put(b, HVM_SAVE_CODE(LAPIC), id, sizeof(*l));
        if (l)
            fill_lapic(s, l);
        break;
    }
    case 6:
        blob_add(b, HVM_SAVE_CODE(LAPIC_REGS), id, s->lapic.regs, sizeof(s->lapic.regs));
        break;
    case 14: {
        struct hvm_hw_mtrr m;
        if (fill_mtrr(s, &m))
            blob_add(b, HVM_SAVE_CODE(MTRR), id, &m, sizeof(m));
        break;
    }
    case CPU_XSAVE_CODE: {
        if (!up)
            break;
        const struct hvm_hw_cpu_xsave_hdr *h =
            (const void *)((const uint8_t *)s->xsave->region + XSAVE_LEGACY_SIZE);
        /* Xen sizes the record by xcr0_accum, every component the guest
         * ever enabled; KVM does not track that, so take what is enabled
         * now plus what holds non-initial state. */
        uint64_t accum = s->xcr0 | h->xstate_bv | XSTATE_FP | XSTATE_SSE;
        size_t size;
        if (xstate_size(c, accum, &size) || size > c->xsave_size)
            return -EOPNOTSUPP;
        struct hvm_hw_cpu_xsave *x = blob_put(b, CPU_XSAVE_CODE, id, XEN_XSAVE_HDR + size);
        if (x) {
            x->xfeature_mask = c->xcr0_supported;
            x->xcr0 = s->xcr0;
            x->xcr0_accum = accum;
            memcpy(&x->save_area, s->xsave->region, size);
        }
        break;
    }
    case 19: {
        uint64_t v;
        if (snap_msr(s, MSR_IA32_TSC_ADJUST, &v)) {
            struct hvm_tsc_adjust t = { .tsc_adjust = v };
            blob_add(b, HVM_SAVE_CODE(TSC_ADJUST), id, &t, sizeof(t));
        }
        break;
    }
    case CPU_MSR_CODE: {
        /* As Xen: only the MSRs with a value, and no record if none. */
        unsigned n = 0;
        for (unsigned i = 0; i < s->nmsrs; i++)
            if (msr_home(s->msrs[i].index) == HOME_CPU_MSR && s->msrs[i].data)
                n++;
        if (!n)
            break;
        struct hvm_msr *m = blob_put(b, CPU_MSR_CODE, id, offsetof(struct hvm_msr, msr) + n * sizeof(m->msr[0]));
        if (!m)
            break;
        m->count = n;
        unsigned k = 0;
        for (unsigned i = 0; i < s->nmsrs; i++)
            if (msr_home(s->msrs[i].index) == HOME_CPU_MSR && s->msrs[i].data) {
                m->msr[k].index = s->msrs[i].index;
                m->msr[k++].val = s->msrs[i].data;
            }
        break;
    }
    case TANDEM_HVM_KVM_VCPU: {
        struct tandem_hvm_kvm_vcpu *k = blob_put(b, TANDEM_HVM_KVM_VCPU, id, sizeof(*k));
        if (k) {
            k->version = TANDEM_HVM_EXT_VERSION;
            k->flags = s->sregs2 ? TANDEM_KVM_VCPU_SREGS2 : 0;
            k->mp_state = s->mp.mp_state;
            k->events = s->events;
            k->sregs = s->sregs;
        }
        break;
    }
    case TANDEM_HVM_KVM_MSRS: {
        unsigned n = 0;
        for (unsigned i = 0; i < s->nmsrs; i++) {
            enum msr_home h = msr_home(s->msrs[i].index);
            if (h == HOME_EXT || (h == HOME_CPU && !up))
                n++;
        }
        struct tandem_hvm_kvm_msrs *m =
            blob_put(b, TANDEM_HVM_KVM_MSRS, id, sizeof(*m) + n * sizeof(m->msr[0]));
        if (!m)
            break;
        m->version = TANDEM_HVM_EXT_VERSION;
        m->count = n;
        unsigned k = 0;
        /* s->msrs is sorted, so the record is too. */
        for (unsigned i = 0; i < s->nmsrs; i++) {
            enum msr_home h = msr_home(s->msrs[i].index);
            if (h == HOME_EXT || (h == HOME_CPU && !up)) {
                m->msr[k].index = s->msrs[i].index;
                m->msr[k++].value = s->msrs[i].data;
            }
        }
        break;
    }
    }
    return 0;
}

int domain_get_hvm_context(struct domain *d, uint8_t **blob_out, size_t *len_out, const struct tlog *log)
{
    struct host_caps c;
    struct vcpu_snap *snaps = NULL;
    uint32_t *msr_idx = NULL;
    unsigned n_msr = 0;
    struct blob b = { 0 };
    int rc;

    *blob_out = NULL;
    *len_out = 0;
    if (!domain_is_paused(d)) {
        tlog_error(log, "HVM context: the domain must be paused");
        return -EBUSY;
    }
    if ((rc = host_caps_get(d, &c, log)))
        return rc;
    if ((rc = save_msr_list(&c, &msr_idx, &n_msr)))
        goto out;
    snaps = calloc(d->nr_vcpus, sizeof(*snaps));
    if (!snaps) {
        rc = -ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        if ((rc = vcpu_snap_read(&d->vcpus[i], &c, msr_idx, n_msr, &snaps[i], log)))
            goto out;
        qsort(snaps[i].msrs, snaps[i].nmsrs, sizeof(snaps[i].msrs[0]), cmp_msr_entry);
    }

    struct kvm_irqchip chips[3];
    for (unsigned i = 0; i < 3; i++) {
        memset(&chips[i], 0, sizeof(chips[i]));
        chips[i].chip_id = i;
        if ((rc = vm_ioctl(d, KVM_GET_IRQCHIP, &chips[i], "KVM_GET_IRQCHIP", log)))
            goto out;
    }
    struct kvm_pit_state2 pit;
    if ((rc = vm_ioctl(d, KVM_GET_PIT2, &pit, "KVM_GET_PIT2", log)))
        goto out;
    for (unsigned i = 0; i < 3; i++)
        pit.channels[i].count_load_time = 0;
    struct kvm_clock_data clock = { 0 };
    if ((rc = vm_ioctl(d, KVM_GET_CLOCK, &clock, "KVM_GET_CLOCK", log)))
        goto out;

    unsigned eax, ebx, ecx, edx;
    __cpuid(1, eax, ebx, ecx, edx);
    (void)ebx; (void)ecx; (void)edx;
    struct hvm_save_header hdr = {
        .magic = HVM_FILE_MAGIC, .version = HVM_FILE_VERSION,
        .changeset = 0, /* Xen's build id; Tandem has none to offer */
        .cpuid = eax, .gtsc_khz = d->tsc_khz,
    };
    int khz = ioctl(d->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
    if (khz > 0)
        hdr.gtsc_khz = (uint32_t)khz;
    blob_add(&b, HVM_SAVE_CODE(HEADER), 0, &hdr, sizeof(hdr));

    /* Xen's order: by typecode, each per-vCPU type for every vCPU in turn. */
    static const unsigned order[] = {
        2, 3, 4, 5, 6, 10, 14, CPU_XSAVE_CODE, 19, CPU_MSR_CODE,
        TANDEM_HVM_KVM_VCPU, TANDEM_HVM_KVM_MSRS, TANDEM_HVM_KVM_PIT, TANDEM_HVM_KVM_IRQCHIP,
        TANDEM_HVM_KVM_CLOCK,
    };
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        unsigned t = order[o];
        switch (t) {
        case 3:
            for (unsigned i = 0; i < 2; i++) {
                struct hvm_hw_vpic p;
                fill_pic(&chips[i].chip.pic, i == 0, &p);
                blob_add(&b, HVM_SAVE_CODE(PIC), i, &p, sizeof(p));
            }
            break;
        case 4: {
            struct hvm_hw_vioapic io;
            fill_ioapic(&chips[2].chip.ioapic, &io);
            blob_add(&b, HVM_SAVE_CODE(IOAPIC), 0, &io, sizeof(io));
            break;
        }
        case 10: {
            struct hvm_hw_pit p;
            fill_pit(&pit, &p);
            blob_add(&b, HVM_SAVE_CODE(PIT), 0, &p, sizeof(p));
            break;
        }
        case TANDEM_HVM_KVM_PIT: {
            struct tandem_hvm_kvm_pit k = { .version = TANDEM_HVM_EXT_VERSION, .pit = pit };
            blob_add(&b, t, 0, &k, sizeof(k));
            break;
        }
        case TANDEM_HVM_KVM_IRQCHIP:
            for (unsigned i = 0; i < 3; i++) {
                struct tandem_hvm_kvm_irqchip k = { .version = TANDEM_HVM_EXT_VERSION, .chip_id = i };
                memcpy(k.chip, &chips[i].chip, sizeof(k.chip));
                blob_add(&b, t, i, &k, sizeof(k));
            }
            break;
        case TANDEM_HVM_KVM_CLOCK: {
            struct tandem_hvm_kvm_clock k = {
                .version = TANDEM_HVM_EXT_VERSION, .flags = clock.flags, .clock = clock.clock,
                .realtime = clock.realtime, .host_tsc = clock.host_tsc,
            };
            blob_add(&b, t, 0, &k, sizeof(k));
            break;
        }
        default:
            for (unsigned i = 0; i < d->nr_vcpus; i++)
                if ((rc = vcpu_encode(&b, &c, i, &snaps[i], t))) {
                    tlog_error(log, "vcpu%u: its XSAVE state does not fit this host's layout", i);
                    goto out;
                }
            break;
        }
    }
    blob_put(&b, HVM_SAVE_CODE(END), 0, 0);
    rc = b.err;
out:
    if (snaps)
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            vcpu_snap_free(&snaps[i]);
    free(snaps);
    free(msr_idx);
    host_caps_free(&c);
    if (rc) {
        free(b.p);
        return rc;
    }
    *blob_out = b.p;
    *len_out = b.len;
    return 0;
}

/* ---- Blob parser -------------------------------------------------------- */

struct vcpu_in {
    bool has_cpu;
    struct hvm_hw_cpu cpu;
    bool has_lapic;
    struct hvm_hw_lapic lapic;
    bool has_lapic_regs;
    struct kvm_lapic_state lapic_regs;
    bool has_mtrr;
    struct hvm_hw_mtrr mtrr;
    const uint8_t *xsave;            /* the record, in the blob */
    uint32_t xsave_len;
    bool has_tsc_adjust;
    uint64_t tsc_adjust;
    const uint8_t *cpu_msr;          /* struct hvm_msr, in the blob */
    uint32_t n_cpu_msr;
    bool has_kvm;
    struct tandem_hvm_kvm_vcpu kvm;
    const uint8_t *kvm_msrs;         /* struct tandem_hvm_kvm_msrs, in the blob */
    uint32_t n_kvm_msrs;
};

struct hvm_in {
    struct hvm_save_header hdr;
    struct vcpu_in v[DOMAIN_MAX_VCPUS];
    bool has_pic[2];
    struct hvm_hw_vpic pic[2];
    bool has_ioapic;
    struct hvm_hw_vioapic ioapic;
    bool has_pit;
    struct hvm_hw_pit pit;
    bool has_kpit;
    struct tandem_hvm_kvm_pit kpit;
    bool has_kchip[3];
    struct tandem_hvm_kvm_irqchip kchip[3];
    bool has_kclock;
    struct tandem_hvm_kvm_clock kclock;
};

enum rec_scope { SCOPE_DOMAIN, SCOPE_VCPU, SCOPE_PIC, SCOPE_IRQCHIP };

struct rec_type {
    uint16_t code;
    const char *name;
    enum rec_scope scope;
    uint32_t min_len, max_len;       /* exact when equal; variable ones checked later */
    bool ignored;                    /* a Xen record with no KVM counterpart */
};

#define FIXED(code, name, scope, len) { code, name, scope, len, len, false }
#define IGNORED(code, name, scope, len) { code, name, scope, 0, len, true }
static const struct rec_type rec_types[] = {
    FIXED(1, "HEADER", SCOPE_DOMAIN, sizeof(struct hvm_save_header)),
    /* Also Xen's pre-3.4 layout, without msr_tsc_aux. */
    { 2, "CPU", SCOPE_VCPU, sizeof(struct hvm_hw_cpu_compat), sizeof(struct hvm_hw_cpu), false },
    FIXED(3, "PIC", SCOPE_PIC, sizeof(struct hvm_hw_vpic)),
    FIXED(4, "IOAPIC", SCOPE_DOMAIN, sizeof(struct hvm_hw_vioapic)),
    /* Xen before 4.4 had no tdt_msr: 16 bytes. */
    { 5, "LAPIC", SCOPE_VCPU, offsetof(struct hvm_hw_lapic, tdt_msr), sizeof(struct hvm_hw_lapic), false },
    FIXED(6, "LAPIC_REGS", SCOPE_VCPU, sizeof(struct hvm_hw_lapic_regs)),
    IGNORED(7, "PCI_IRQ", SCOPE_DOMAIN, sizeof(struct hvm_hw_pci_irqs)),
    IGNORED(8, "ISA_IRQ", SCOPE_DOMAIN, sizeof(struct hvm_hw_isa_irqs)),
    IGNORED(9, "PCI_LINK", SCOPE_DOMAIN, sizeof(struct hvm_hw_pci_link)),
    FIXED(10, "PIT", SCOPE_DOMAIN, sizeof(struct hvm_hw_pit)),
    IGNORED(11, "RTC", SCOPE_DOMAIN, sizeof(struct hvm_hw_rtc)),
    IGNORED(12, "HPET", SCOPE_DOMAIN, sizeof(struct hvm_hw_hpet)),
    IGNORED(13, "PMTIMER", SCOPE_DOMAIN, sizeof(struct hvm_hw_pmtimer)),
    FIXED(14, "MTRR", SCOPE_VCPU, sizeof(struct hvm_hw_mtrr)),
    IGNORED(15, "VIRIDIAN_DOMAIN", SCOPE_DOMAIN, sizeof(struct hvm_viridian_domain_context)),
    { CPU_XSAVE_CODE, "CPU_XSAVE", SCOPE_VCPU, XEN_XSAVE_HDR + XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE,
      UINT32_MAX, false },
    IGNORED(17, "VIRIDIAN_VCPU", SCOPE_VCPU, sizeof(struct hvm_viridian_vcpu_context)),
    IGNORED(18, "VMCE_VCPU", SCOPE_VCPU, sizeof(struct hvm_vmce_vcpu)),
    FIXED(19, "TSC_ADJUST", SCOPE_VCPU, sizeof(struct hvm_tsc_adjust)),
    { CPU_MSR_CODE, "CPU_MSR", SCOPE_VCPU, offsetof(struct hvm_msr, msr) + sizeof(struct hvm_one_msr),
      UINT32_MAX, false },
    FIXED(TANDEM_HVM_KVM_VCPU, "TANDEM_KVM_VCPU", SCOPE_VCPU, sizeof(struct tandem_hvm_kvm_vcpu)),
    { TANDEM_HVM_KVM_MSRS, "TANDEM_KVM_MSRS", SCOPE_VCPU, sizeof(struct tandem_hvm_kvm_msrs),
      UINT32_MAX, false },
    FIXED(TANDEM_HVM_KVM_PIT, "TANDEM_KVM_PIT", SCOPE_DOMAIN, sizeof(struct tandem_hvm_kvm_pit)),
    FIXED(TANDEM_HVM_KVM_IRQCHIP, "TANDEM_KVM_IRQCHIP", SCOPE_IRQCHIP, sizeof(struct tandem_hvm_kvm_irqchip)),
    FIXED(TANDEM_HVM_KVM_CLOCK, "TANDEM_KVM_CLOCK", SCOPE_DOMAIN, sizeof(struct tandem_hvm_kvm_clock)),
};
#undef FIXED
#undef IGNORED

static const struct rec_type *rec_type_find(uint16_t code)
{
    for (size_t i = 0; i < sizeof(rec_types) / sizeof(rec_types[0]); i++)
        if (rec_types[i].code == code)
            return &rec_types[i];
    return NULL;
}

#define BAD(...) do { tlog_error(log, "HVM context: " __VA_ARGS__); return -EINVAL; } while (0)

static int parse_blob(const uint8_t *blob, size_t len, unsigned nr_vcpus, struct hvm_in *in,
                      const struct tlog *log)
{
    /* (typecode, instance) pairs seen, to refuse duplicates; instances of
     * every accepted record are below 64. */
    uint64_t seen[256];
    size_t off = 0;
    bool first = true, ended = false;

    memset(seen, 0, sizeof(seen));
    while (off < len) {
        struct hvm_save_descriptor desc;
        if (len - off < sizeof(desc))
            BAD("truncated descriptor at offset %zu (%zu bytes left)", off, len - off);
        memcpy(&desc, blob + off, sizeof(desc));
        size_t body_off = off + sizeof(desc);
        if (desc.length > len - body_off)
            BAD("record typecode %u instance %u at offset %zu claims %" PRIu32
                " bytes but only %zu are left", desc.typecode, desc.instance, off, desc.length,
                len - body_off);
        const uint8_t *body = blob + body_off;
        if (first && desc.typecode != HVM_SAVE_CODE(HEADER))
            BAD("the first record is typecode %u, not HEADER", desc.typecode);
        if (desc.typecode == HVM_SAVE_CODE(END)) {
            if (desc.instance || desc.length)
                BAD("END record with instance %u and length %" PRIu32 " (both must be 0)",
                    desc.instance, desc.length);
            if (body_off != len)
                BAD("%zu bytes follow the END record", len - body_off);
            ended = true;
            break;
        }
        const struct rec_type *t = rec_type_find(desc.typecode);
        if (!t)
            BAD("unknown record typecode %u (%#x) at offset %zu", desc.typecode, desc.typecode, off);
        if (desc.length < t->min_len || desc.length > t->max_len) {
            if (t->min_len == t->max_len)
                BAD("%s record (instance %u) is %" PRIu32 " bytes, not %" PRIu32, t->name,
                    desc.instance, desc.length, t->min_len);
            BAD("%s record (instance %u) is %" PRIu32 " bytes, outside %" PRIu32 "..%" PRIu32,
                t->name, desc.instance, desc.length, t->min_len, t->max_len);
        }
        if (t->code == 2 && desc.length != sizeof(struct hvm_hw_cpu) &&
            desc.length != sizeof(struct hvm_hw_cpu_compat))
            BAD("CPU record (instance %u) is %" PRIu32 " bytes, neither %zu nor the old %zu",
                desc.instance, desc.length, sizeof(struct hvm_hw_cpu), sizeof(struct hvm_hw_cpu_compat));
        if (t->code == 5 && desc.length != sizeof(struct hvm_hw_lapic) &&
            desc.length != offsetof(struct hvm_hw_lapic, tdt_msr))
            BAD("LAPIC record (instance %u) is %" PRIu32 " bytes", desc.instance, desc.length);
        unsigned max_inst = t->scope == SCOPE_VCPU ? nr_vcpus : t->scope == SCOPE_PIC ? 2
                          : t->scope == SCOPE_IRQCHIP ? 3 : 1;
        if (desc.instance >= max_inst)
            BAD("%s record instance %u is out of range (%s %u)", t->name, desc.instance,
                t->scope == SCOPE_VCPU ? "the domain has vCPUs 0 to" : "highest valid is",
                max_inst - 1);
        if (seen[desc.typecode] & (1ULL << desc.instance))
            BAD("duplicate %s record for instance %u", t->name, desc.instance);
        seen[desc.typecode] |= 1ULL << desc.instance;
        first = false;

        struct vcpu_in *v = t->scope == SCOPE_VCPU ? &in->v[desc.instance] : NULL;
        switch (t->code) {
        case 1:
            memcpy(&in->hdr, body, sizeof(in->hdr));
            break;
        case 2:
            if (desc.length == sizeof(struct hvm_hw_cpu)) {
                memcpy(&v->cpu, body, sizeof(v->cpu));
            } else {
                /* The old layout lacks msr_tsc_aux (and flags): shift the
                 * tail into place, as Xen's _hvm_hw_fix_cpu does. */
                struct hvm_hw_cpu_compat old;
                memcpy(&old, body, sizeof(old));
                memset(&v->cpu, 0, sizeof(v->cpu));
                memcpy(&v->cpu, &old, offsetof(struct hvm_hw_cpu_compat, tsc));
                v->cpu.tsc = old.tsc;
                v->cpu.pending_event = old.pending_event;
                v->cpu.error_code = old.error_code;
                v->cpu.flags = XEN_X86_FPU_INITIALISED;
            }
            v->has_cpu = true;
            break;
        case 3:
            memcpy(&in->pic[desc.instance], body, sizeof(in->pic[0]));
            in->has_pic[desc.instance] = true;
            break;
        case 4:
            memcpy(&in->ioapic, body, sizeof(in->ioapic));
            in->has_ioapic = true;
            break;
        case 5:
            memset(&v->lapic, 0, sizeof(v->lapic));
            memcpy(&v->lapic, body, desc.length);
            v->has_lapic = true;
            break;
        case 6:
            memcpy(&v->lapic_regs, body, sizeof(v->lapic_regs));
            v->has_lapic_regs = true;
            break;
        case 10:
            memcpy(&in->pit, body, sizeof(in->pit));
            in->has_pit = true;
            break;
        case 14:
            memcpy(&v->mtrr, body, sizeof(v->mtrr));
            v->has_mtrr = true;
            break;
        case CPU_XSAVE_CODE:
            v->xsave = body;
            v->xsave_len = desc.length;
            break;
        case 19:
            memcpy(&v->tsc_adjust, body, sizeof(v->tsc_adjust));
            v->has_tsc_adjust = true;
            break;
        case CPU_MSR_CODE: {
            uint32_t count;
            memcpy(&count, body, sizeof(count));
            if (count == 0 || (desc.length - offsetof(struct hvm_msr, msr)) / sizeof(struct hvm_one_msr) != count ||
                (desc.length - offsetof(struct hvm_msr, msr)) % sizeof(struct hvm_one_msr))
                BAD("CPU_MSR record (instance %u): %" PRIu32 " bytes do not hold the %" PRIu32
                    " MSRs its count says", desc.instance, desc.length, count);
            v->cpu_msr = body;
            v->n_cpu_msr = count;
            break;
        }
        case TANDEM_HVM_KVM_VCPU:
            memcpy(&v->kvm, body, sizeof(v->kvm));
            v->has_kvm = true;
            break;
        case TANDEM_HVM_KVM_MSRS: {
            struct tandem_hvm_kvm_msrs h;
            memcpy(&h, body, sizeof(h));
            if ((desc.length - sizeof(h)) % sizeof(struct tandem_hvm_kvm_msr) ||
                (desc.length - sizeof(h)) / sizeof(struct tandem_hvm_kvm_msr) != h.count)
                BAD("TANDEM_KVM_MSRS record (instance %u): %" PRIu32 " bytes do not hold the %" PRIu32
                    " MSRs its count says", desc.instance, desc.length, h.count);
            if (h.version != TANDEM_HVM_EXT_VERSION)
                BAD("TANDEM_KVM_MSRS record (instance %u) has version %" PRIu32 ", not %d",
                    desc.instance, h.version, TANDEM_HVM_EXT_VERSION);
            v->kvm_msrs = body;
            v->n_kvm_msrs = h.count;
            break;
        }
        case TANDEM_HVM_KVM_PIT:
            memcpy(&in->kpit, body, sizeof(in->kpit));
            in->has_kpit = true;
            break;
        case TANDEM_HVM_KVM_IRQCHIP:
            memcpy(&in->kchip[desc.instance], body, sizeof(in->kchip[0]));
            in->has_kchip[desc.instance] = true;
            break;
        case TANDEM_HVM_KVM_CLOCK:
            memcpy(&in->kclock, body, sizeof(in->kclock));
            in->has_kclock = true;
            break;
        default:
            /* A Xen record whose device KVM does not have (RTC, HPET,
             * Viridian ...): checked for shape, then left alone. */
            tlog_warn(log, "HVM context: ignoring Xen's %s record (instance %u): no such device here",
                      t->name, desc.instance);
            break;
        }
        off = body_off + desc.length;
    }
    if (first)
        BAD("empty blob: no HEADER");
    if (!ended)
        BAD("no END record");
    return 0;
}

/* ---- Value checks (before anything is applied) -------------------------- */

static int check_cr_efer(const char *where, unsigned id, uint64_t cr0, uint64_t cr3, uint64_t cr4,
                         uint64_t efer, const struct tlog *log)
{
    if ((cr0 & ~CR0_KNOWN) || !(cr0 & CR0_ET) || (cr0 & (CR0_PE | CR0_PG)) == CR0_PG)
        BAD("vcpu%u: bad CR0 %#" PRIx64 " in %s", id, cr0, where);
    if (cr3 >> 52)
        BAD("vcpu%u: bad CR3 %#" PRIx64 " in %s", id, cr3, where);
    if ((cr4 >> 32) || (cr4 & (1ULL << 15)))
        BAD("vcpu%u: bad CR4 %#" PRIx64 " in %s", id, cr4, where);
    if (efer & ~EFER_KNOWN)
        BAD("vcpu%u: EFER %#" PRIx64 " has unknown bits in %s", id, efer, where);
    if ((efer & EFER_LMA) && (!(efer & EFER_LME) || !(cr0 & CR0_PG)))
        BAD("vcpu%u: EFER.LMA without LME and CR0.PG in %s", id, where);
    return 0;
}

static int check_apic_base(unsigned id, uint64_t base, const char *where, const struct tlog *log)
{
    if ((base & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) == APIC_BASE_EXTD)
        BAD("vcpu%u: APIC base %#" PRIx64 " in %s has x2APIC on with the APIC off", id, base, where);
    if ((base & 0x2ffULL) || (base >> 52))
        BAD("vcpu%u: APIC base %#" PRIx64 " in %s has reserved bits set", id, base, where);
    return 0;
}

static int check_kvm_segment(unsigned id, const char *name, const struct kvm_segment *s,
                             const struct tlog *log)
{
    if (s->type > 15 || s->present > 1 || s->dpl > 3 || s->db > 1 || s->s > 1 || s->l > 1 ||
        s->g > 1 || s->avl > 1 || s->unusable > 1 || s->padding)
        BAD("vcpu%u: segment %s in TANDEM_KVM_VCPU has out-of-range fields", id, name);
    return 0;
}

static int check_vcpu_records(const struct vcpu_in *v, unsigned id, const struct tlog *log)
{
    int rc;
    if (v->has_cpu) {
        const struct hvm_hw_cpu *c = &v->cpu;
        if (c->pad0)
            BAD("vcpu%u: CPU record padding is not zero", id);
        if (c->flags & ~XEN_X86_FPU_INITIALISED)
            BAD("vcpu%u: CPU record flags %#x unknown", id, c->flags);
        if ((rc = check_cr_efer("the CPU record", id, c->cr0, c->cr3, c->cr4, c->msr_efer, log)))
            return rc;
        if ((c->dr6 >> 32) || (c->dr7 >> 32))
            BAD("vcpu%u: bad DR6 %#" PRIx64 " or DR7 %#" PRIx64, id, c->dr6, c->dr7);
        if (c->msr_tsc_aux >> 32)
            BAD("vcpu%u: bad TSC_AUX %#" PRIx64, id, c->msr_tsc_aux);
        if (c->rflags >> 22)
            BAD("vcpu%u: bad RFLAGS %#" PRIx64, id, c->rflags);
        if (c->pending_event & PENDING_VALID) {
            unsigned type = (c->pending_event >> 8) & 7;
            if (type == 1 || type == 7 || (c->pending_event & 0x7ffff000u))
                BAD("vcpu%u: bad pending event %#x", id, c->pending_event);
        }
        const uint32_t ar[] = { c->cs_arbytes, c->ds_arbytes, c->es_arbytes, c->fs_arbytes,
                                c->gs_arbytes, c->ss_arbytes, c->tr_arbytes, c->ldtr_arbytes };
        for (unsigned i = 0; i < 8; i++) {
            uint32_t a = ar[i];
            /* Old Xen on Intel saved VMCS-format attributes (bits 12-15
             * moved up by 4); accept those as Xen does. */
            if ((a & 0xf000) && !(a & 0x0f00))
                a = (a & 0xff) | ((a >> 4) & 0xf00);
            if (a >> 12)
                BAD("vcpu%u: segment attributes %#x have unknown bits", id, ar[i]);
        }
    }
    if (v->has_lapic) {
        if ((rc = check_apic_base(id, v->lapic.apic_base_msr, "the LAPIC record", log)))
            return rc;
        if (v->lapic.disabled & ~(VLAPIC_HW_DISABLED | VLAPIC_SW_DISABLED))
            BAD("vcpu%u: LAPIC record's disabled field %#x is unknown", id, v->lapic.disabled);
    }
    if (v->has_mtrr) {
        const struct hvm_hw_mtrr *m = &v->mtrr;
        if ((m->msr_mtrr_cap & 0xff) > MTRR_VCNT)
            BAD("vcpu%u: MTRR record has %u variable ranges, more than %u", id,
                (unsigned)(m->msr_mtrr_cap & 0xff), MTRR_VCNT);
        if (m->msr_mtrr_def_type & ~0xcffULL)
            BAD("vcpu%u: MTRR default type %#" PRIx64 " has reserved bits", id, m->msr_mtrr_def_type);
        for (unsigned i = 0; i < 8; i++) {
            unsigned t = (m->msr_pat_cr >> (8 * i)) & 0xff;
            if (t == 2 || t == 3 || t > 7)
                BAD("vcpu%u: PAT %#" PRIx64 " holds an invalid memory type", id, m->msr_pat_cr);
        }
    }
    if (v->xsave) {
        struct hvm_hw_cpu_xsave x;
        memcpy(&x, v->xsave, sizeof(x));
        if (!(x.xcr0 & XSTATE_FP) || ((x.xcr0 & XSTATE_YMM) && !(x.xcr0 & XSTATE_SSE)))
            BAD("vcpu%u: CPU_XSAVE has an impossible XCR0 %#" PRIx64, id, (uint64_t)x.xcr0);
        if (x.xcr0 & ~x.xcr0_accum)
            BAD("vcpu%u: CPU_XSAVE's XCR0 %#" PRIx64 " is not within xcr0_accum %#" PRIx64, id,
                (uint64_t)x.xcr0, (uint64_t)x.xcr0_accum);
        if (x.save_area.xsave_hdr.xstate_bv & ~(x.xcr0_accum | XSTATE_FP | XSTATE_SSE))
            BAD("vcpu%u: CPU_XSAVE holds state (XSTATE_BV %#" PRIx64 ") beyond xcr0_accum", id,
                (uint64_t)x.save_area.xsave_hdr.xstate_bv);
        if (x.save_area.xsave_hdr.xcomp_bv) {
            tlog_error(log, "HVM context: vcpu%u: CPU_XSAVE is in the compacted format, which Xen "
                            "never writes and KVM cannot load", id);
            return -EINVAL;
        }
        for (unsigned i = 0; i < 6; i++)
            if (x.save_area.xsave_hdr.reserved[i])
                BAD("vcpu%u: CPU_XSAVE header has reserved bytes set", id);
    }
    for (uint32_t i = 0; i < v->n_cpu_msr; i++) {
        struct hvm_one_msr m;
        memcpy(&m, v->cpu_msr + offsetof(struct hvm_msr, msr) + i * sizeof(m), sizeof(m));
        if (m._rsvd)
            BAD("vcpu%u: CPU_MSR entry %u has reserved bits", id, i);
        if (msr_home(m.index) != HOME_CPU_MSR)
            BAD("vcpu%u: CPU_MSR holds MSR %#x, which Xen never puts there", id, m.index);
        for (uint32_t j = 0; j < i; j++) {
            struct hvm_one_msr o;
            memcpy(&o, v->cpu_msr + offsetof(struct hvm_msr, msr) + j * sizeof(o), sizeof(o));
            if (o.index == m.index)
                BAD("vcpu%u: CPU_MSR holds MSR %#x twice", id, m.index);
        }
    }
    bool up = v->has_cpu;
    if (v->has_kvm) {
        const struct tandem_hvm_kvm_vcpu *k = &v->kvm;
        if (k->version != TANDEM_HVM_EXT_VERSION)
            BAD("vcpu%u: TANDEM_KVM_VCPU version %u, not %d", id, k->version, TANDEM_HVM_EXT_VERSION);
        if ((k->flags & ~TANDEM_KVM_VCPU_SREGS2) || k->pad)
            BAD("vcpu%u: TANDEM_KVM_VCPU has unknown flags %#x or padding", id, k->flags);
        uint32_t mp = k->mp_state;
        if (mp > KVM_MP_STATE_SUSPENDED || (mp >= KVM_MP_STATE_STOPPED && mp <= KVM_MP_STATE_LOAD))
            BAD("vcpu%u: TANDEM_KVM_VCPU has MP state %u, not an x86 one", id, mp);
        up = mp_state_is_up(mp);
        if (up != v->has_cpu)
            BAD("vcpu%u: %s", id, v->has_cpu ? "has a CPU record, yet its MP state says it waits for INIT/SIPI"
                                             : "has no CPU record, yet its MP state says it runs");
        const struct kvm_vcpu_events *e = &k->events;
        if (e->flags & ~KVM_VCPUEVENT_KNOWN)
            BAD("vcpu%u: vCPU events flags %#x unknown", id, e->flags);
        if (e->exception.nr >= 32 || e->exception.injected > 1 || e->exception.pending > 1 ||
            e->exception.has_error_code > 1 || e->interrupt.injected > 1 || e->interrupt.soft > 1 ||
            (e->interrupt.shadow & ~(KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI)) ||
            e->nmi.injected > 1 || e->nmi.pending > 1 || e->nmi.masked > 1 || e->nmi.pad ||
            e->sipi_vector > 0xff || e->exception_has_payload > 1)
            BAD("vcpu%u: vCPU events have out-of-range fields", id);
        for (unsigned i = 0; i < sizeof(e->reserved); i++)
            if (e->reserved[i])
                BAD("vcpu%u: vCPU events have reserved bytes set", id);
        const struct kvm_sregs2 *s = &k->sregs;
        const struct kvm_segment *segs[] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt };
        static const char *const names[] = { "CS", "DS", "ES", "FS", "GS", "SS", "TR", "LDT" };
        for (unsigned i = 0; i < 8; i++)
            if ((rc = check_kvm_segment(id, names[i], segs[i], log)))
                return rc;
        if (s->gdt.padding[0] || s->gdt.padding[1] || s->gdt.padding[2] || s->idt.padding[0] ||
            s->idt.padding[1] || s->idt.padding[2])
            BAD("vcpu%u: descriptor-table padding in TANDEM_KVM_VCPU is not zero", id);
        if (s->flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID)
            BAD("vcpu%u: sregs flags %#llx unknown", id, (unsigned long long)s->flags);
        if (s->cr8 > 15)
            BAD("vcpu%u: CR8 %#llx out of range", id, (unsigned long long)s->cr8);
        if (up && (rc = check_cr_efer("TANDEM_KVM_VCPU", id, s->cr0, s->cr3, s->cr4, s->efer, log)))
            return rc;
        if ((rc = check_apic_base(id, s->apic_base, "TANDEM_KVM_VCPU", log)))
            return rc;
    }
    uint32_t prev = 0;
    for (uint32_t i = 0; i < v->n_kvm_msrs; i++) {
        struct tandem_hvm_kvm_msr m;
        memcpy(&m, v->kvm_msrs + sizeof(struct tandem_hvm_kvm_msrs) + i * sizeof(m), sizeof(m));
        if (m.reserved)
            BAD("vcpu%u: TANDEM_KVM_MSRS entry %u has reserved bits", id, i);
        if (i && m.index <= prev)
            BAD("vcpu%u: TANDEM_KVM_MSRS is not sorted by index (MSR %#x after %#x)", id, m.index, prev);
        prev = m.index;
        enum msr_home h = msr_home(m.index);
        /* One home per MSR: an MSR that has a Xen record is not accepted
         * here, lest two copies disagree. */
        if (h != HOME_EXT && !(h == HOME_CPU && !up))
            BAD("vcpu%u: TANDEM_KVM_MSRS holds MSR %#x, which belongs in another record", id, m.index);
    }
    return 0;
}

static int check_pic_kvm(unsigned chip, const struct kvm_pic_state *p, const struct tlog *log)
{
    if (p->priority_add > 7 || p->init_state > 3 || p->read_reg_select > 1 || p->poll > 1 ||
        p->special_mask > 1 || p->auto_eoi > 1 || p->rotate_on_auto_eoi > 1 ||
        p->special_fully_nested_mode > 1 || p->init4 > 1 || (p->irq_base & 7))
        BAD("PIC %s in TANDEM_KVM_IRQCHIP has out-of-range fields", chip ? "slave" : "master");
    return 0;
}

static int check_pit_channels(const char *where, const struct kvm_pit_channel_state *k,
                              const struct hvm_hw_pit_channel *x, const struct tlog *log)
{
    for (unsigned i = 0; i < 3; i++) {
        uint32_t count = k ? k[i].count : x[i].count;
        uint8_t mode = k ? k[i].mode : x[i].mode, rw = k ? k[i].rw_mode : x[i].rw_mode;
        uint8_t rs = k ? k[i].read_state : x[i].read_state, ws = k ? k[i].write_state : x[i].write_state;
        uint8_t bcd = k ? k[i].bcd : x[i].bcd, gate = k ? k[i].gate : x[i].gate;
        uint8_t cl = k ? k[i].count_latched : x[i].count_latched;
        /* KVM marks a channel never programmed with mode 0xff. */
        if (count > 0x10000 || (mode > 5 && mode != 0xff) || rw > 3 || rs > 4 || ws > 4 || bcd > 1 ||
            gate > 1 || cl > 4)
            BAD("PIT channel %u in %s has out-of-range fields", i, where);
    }
    return 0;
}

static int check_platform_records(const struct hvm_in *in, const struct tlog *log)
{
    int rc;
    if (in->hdr.magic != HVM_FILE_MAGIC)
        BAD("HEADER magic %#x is not %#x", in->hdr.magic, HVM_FILE_MAGIC);
    if (in->hdr.version != HVM_FILE_VERSION)
        BAD("HEADER version %u is not %u", in->hdr.version, HVM_FILE_VERSION);
    for (unsigned i = 0; i < 2; i++)
        if (in->has_pic[i]) {
            const struct hvm_hw_vpic *p = &in->pic[i];
            if (p->is_master != (i == 0))
                BAD("PIC record instance %u says it is%s the master", i, p->is_master ? "" : " not");
            if ((p->init_state & 3) > 3 || (p->irq_base & 7))
                BAD("PIC record instance %u has out-of-range fields", i);
        }
    if (in->has_ioapic) {
        if (in->ioapic.base_address != KVM_IOAPIC_BASE) {
            tlog_error(log, "HVM context: the IOAPIC is at %#" PRIx64 "; KVM's is fixed at %#llx",
                       in->ioapic.base_address, KVM_IOAPIC_BASE);
            return -EOPNOTSUPP;
        }
        for (unsigned i = KVM_IOAPIC_NUM_PINS; i < VIOAPIC_NUM_PINS; i++)
            if (!in->ioapic.redirtbl[i].fields.mask) {
                tlog_error(log, "HVM context: IOAPIC pin %u is unmasked; KVM's IOAPIC has only %u pins",
                           i, KVM_IOAPIC_NUM_PINS);
                return -EOPNOTSUPP;
            }
    }
    if (in->has_pit) {
        if (in->pit.pad0 || in->pit.speaker_data_on > 1)
            BAD("PIT record has out-of-range fields");
        if ((rc = check_pit_channels("the PIT record", NULL, in->pit.channels, log)))
            return rc;
    }
    if (in->has_kpit) {
        const struct tandem_hvm_kvm_pit *k = &in->kpit;
        if (k->version != TANDEM_HVM_EXT_VERSION || k->pad)
            BAD("TANDEM_KVM_PIT has version %u (not %d) or padding set", k->version, TANDEM_HVM_EXT_VERSION);
        if (k->pit.flags & ~(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON))
            BAD("TANDEM_KVM_PIT flags %#x unknown", k->pit.flags);
        for (unsigned i = 0; i < 9; i++)
            if (k->pit.reserved[i])
                BAD("TANDEM_KVM_PIT has reserved fields set");
        if ((rc = check_pit_channels("TANDEM_KVM_PIT", k->pit.channels, NULL, log)))
            return rc;
    }
    for (unsigned i = 0; i < 3; i++) {
        if (!in->has_kchip[i])
            continue;
        const struct tandem_hvm_kvm_irqchip *k = &in->kchip[i];
        if (k->version != TANDEM_HVM_EXT_VERSION)
            BAD("TANDEM_KVM_IRQCHIP %u has version %u, not %d", i, k->version, TANDEM_HVM_EXT_VERSION);
        if (k->chip_id != i)
            BAD("TANDEM_KVM_IRQCHIP instance %u names chip %u", i, k->chip_id);
        size_t used = i < 2 ? sizeof(struct kvm_pic_state) : sizeof(struct kvm_ioapic_state);
        for (size_t j = used; j < sizeof(k->chip); j++)
            if (k->chip[j])
                BAD("TANDEM_KVM_IRQCHIP %u has bytes set beyond its chip state", i);
        if (i < 2) {
            struct kvm_pic_state p;
            memcpy(&p, k->chip, sizeof(p));
            if ((rc = check_pic_kvm(i, &p, log)))
                return rc;
        } else {
            struct kvm_ioapic_state io;
            memcpy(&io, k->chip, sizeof(io));
            if (io.base_address != KVM_IOAPIC_BASE || io.pad)
                BAD("TANDEM_KVM_IRQCHIP IOAPIC has base %#llx (not %#llx) or padding set",
                    (unsigned long long)io.base_address, KVM_IOAPIC_BASE);
        }
    }
    if (in->has_kclock) {
        if (in->kclock.version != TANDEM_HVM_EXT_VERSION)
            BAD("TANDEM_KVM_CLOCK has version %u, not %d", in->kclock.version, TANDEM_HVM_EXT_VERSION);
        if (in->kclock.flags & ~(uint32_t)(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC))
            BAD("TANDEM_KVM_CLOCK flags %#x unknown", in->kclock.flags);
    }
    return 0;
}

/* ---- Building what to apply --------------------------------------------- */

struct vcpu_target {
    bool touch;
    bool set_regs;
    struct kvm_regs regs;
    bool set_sregs;
    struct kvm_sregs2 sregs;
    bool set_dbg;
    struct kvm_debugregs dbg;
    struct kvm_xsave *xsave;         /* NULL: leave alone */
    bool set_xcr0;
    uint64_t xcr0;
    struct kvm_msr_entry *msrs;
    unsigned nmsrs;
    bool set_lapic;
    struct kvm_lapic_state lapic;
    bool set_tdt;
    uint64_t tdt;
    bool set_events;
    struct kvm_vcpu_events events;
    bool set_mp;
    struct kvm_mp_state mp;
};

static void vcpu_target_free(struct vcpu_target *t)
{
    free(t->xsave);
    free(t->msrs);
}

static void add_msr(struct vcpu_target *t, uint32_t idx, uint64_t val)
{
    /* The array is sized for every source of MSRs by build_vcpu_target. */
    t->msrs[t->nmsrs++] = (struct kvm_msr_entry){ .index = idx, .data = val };
}

static void pending_to_events(uint32_t pending, uint32_t error, struct kvm_vcpu_events *e)
{
    memset(e, 0, sizeof(*e));
    e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    if (!(pending & PENDING_VALID))
        return;
    unsigned vector = pending & 0xff, type = (pending >> 8) & 7;
    switch (type) {
    case PENDING_TYPE_NMI:
        e->nmi.injected = 1;
        break;
    case PENDING_TYPE_EXTINT:
    case PENDING_TYPE_SWINT:
        e->interrupt.injected = 1;
        e->interrupt.nr = vector;
        e->interrupt.soft = type == PENDING_TYPE_SWINT;
        break;
    default: /* hardware, privileged software and software exceptions */
        e->exception.injected = 1;
        e->exception.nr = vector & 31;
        e->exception.has_error_code = !!(pending & PENDING_ERRVALID);
        e->exception.error_code = error;
        break;
    }
}

static void cpu_to_sregs(const struct hvm_hw_cpu *c, struct kvm_sregs2 *s)
{
#define UNFOLD(a) (((a) & 0xf000) && !((a) & 0x0f00) ? (((a) & 0xff) | (((a) >> 4) & 0xf00)) : (a))
    arbytes_to_seg(UNFOLD(c->cs_arbytes), c->cs_sel, c->cs_limit, c->cs_base, &s->cs);
    arbytes_to_seg(UNFOLD(c->ds_arbytes), c->ds_sel, c->ds_limit, c->ds_base, &s->ds);
    arbytes_to_seg(UNFOLD(c->es_arbytes), c->es_sel, c->es_limit, c->es_base, &s->es);
    arbytes_to_seg(UNFOLD(c->fs_arbytes), c->fs_sel, c->fs_limit, c->fs_base, &s->fs);
    arbytes_to_seg(UNFOLD(c->gs_arbytes), c->gs_sel, c->gs_limit, c->gs_base, &s->gs);
    arbytes_to_seg(UNFOLD(c->ss_arbytes), c->ss_sel, c->ss_limit, c->ss_base, &s->ss);
    arbytes_to_seg(UNFOLD(c->tr_arbytes), c->tr_sel, c->tr_limit, c->tr_base, &s->tr);
    arbytes_to_seg(UNFOLD(c->ldtr_arbytes), c->ldtr_sel, c->ldtr_limit, c->ldtr_base, &s->ldt);
#undef UNFOLD
    s->idt = (struct kvm_dtable){ .base = c->idtr_base, .limit = (uint16_t)c->idtr_limit };
    s->gdt = (struct kvm_dtable){ .base = c->gdtr_base, .limit = (uint16_t)c->gdtr_limit };
    s->cr0 = c->cr0;
    s->cr2 = c->cr2;
    s->cr3 = c->cr3;
    s->cr4 = c->cr4;
    s->efer = c->msr_efer;
    /* Without the PDPTRs KVM reloads them from guest memory (restored
     * before the HVM context) when the guest uses PAE paging. */
    s->flags = 0;
}

static int build_vcpu_target(struct domain *d, const struct host_caps *hc, const struct hvm_in *in,
                             unsigned id, const uint64_t *domain_tsc, struct vcpu_target *t,
                             const struct tlog *log)
{
    const struct vcpu_in *v = &in->v[id];
    struct vcpu *vc = &d->vcpus[id];
    int rc;

    memset(t, 0, sizeof(*t));
    t->touch = v->has_cpu || v->has_lapic || v->has_lapic_regs || v->has_mtrr || v->xsave ||
               v->has_tsc_adjust || v->cpu_msr || v->has_kvm || v->kvm_msrs;
    if (!t->touch)
        return 0;
    bool up = v->has_cpu; /* check_vcpu_records made the extension agree */

    t->msrs = calloc(32 + 2 * MTRR_VCNT + NUM_FIXED_MSR + v->n_cpu_msr + v->n_kvm_msrs,
                     sizeof(*t->msrs));
    if (!t->msrs)
        return -ENOMEM;

    if (up) {
        const struct hvm_hw_cpu *c = &v->cpu;
        t->set_regs = true;
        t->regs = (struct kvm_regs){
            .rax = c->rax, .rbx = c->rbx, .rcx = c->rcx, .rdx = c->rdx,
            .rsi = c->rsi, .rdi = c->rdi, .rsp = c->rsp, .rbp = c->rbp,
            .r8 = c->r8, .r9 = c->r9, .r10 = c->r10, .r11 = c->r11,
            .r12 = c->r12, .r13 = c->r13, .r14 = c->r14, .r15 = c->r15,
            .rip = c->rip, .rflags = c->rflags | 0x2, /* bit 1 always reads 1 */
        };
        t->set_dbg = hc->debugregs;
        t->dbg = (struct kvm_debugregs){ .db = { c->dr0, c->dr1, c->dr2, c->dr3 },
                                         .dr6 = c->dr6, .dr7 = c->dr7 };
        t->set_sregs = true;
        if (v->has_kvm) {
            t->sregs = v->kvm.sregs;
        } else {
            /* Start from what the vCPU has, for what Xen does not carry. */
            bool is2;
            if ((rc = vcpu_get_sregs(vc, hc, &t->sregs, &is2, log)))
                return rc;
            cpu_to_sregs(c, &t->sregs);
            if (v->has_lapic)
                t->sregs.apic_base = v->lapic.apic_base_msr;
            if (v->has_lapic_regs)
                t->sregs.cr8 = (uint8_t)v->lapic_regs.regs[APIC_REG_TPR] >> 4;
        }
        add_msr(t, MSR_IA32_SYSENTER_CS, c->sysenter_cs);
        add_msr(t, MSR_IA32_SYSENTER_ESP, c->sysenter_esp);
        add_msr(t, MSR_IA32_SYSENTER_EIP, c->sysenter_eip);
        add_msr(t, MSR_KERNEL_GS_BASE, c->shadow_gs);
        add_msr(t, MSR_LSTAR, c->msr_lstar);
        add_msr(t, MSR_STAR, c->msr_star);
        add_msr(t, MSR_CSTAR, c->msr_cstar);
        add_msr(t, MSR_SYSCALL_MASK, c->msr_syscall_mask);
        add_msr(t, MSR_TSC_AUX, c->msr_tsc_aux);
        /* The guest's TSC continues from where it was: KVM turns a
         * host-initiated write into a TSC offset (and matches the offsets
         * of vCPUs written within a second of each other). */
        add_msr(t, MSR_IA32_TSC, c->tsc);

        t->xsave = calloc(1, hc->xsave_size);
        if (!t->xsave)
            return -ENOMEM;
        if (v->xsave) {
            struct hvm_hw_cpu_xsave x;
            memcpy(&x, v->xsave, sizeof(x));
            if ((x.xcr0_accum | x.xcr0) & ~hc->xcr0_supported) {
                tlog_error(log, "HVM context: vcpu%u uses XSAVE components %#" PRIx64
                                " that this host cannot give (it has %#" PRIx64 ")", id,
                           (uint64_t)((x.xcr0_accum | x.xcr0) & ~hc->xcr0_supported), hc->xcr0_supported);
                return -EOPNOTSUPP;
            }
            size_t size, have = v->xsave_len - XEN_XSAVE_HDR;
            if ((rc = xstate_size(hc, x.xcr0_accum | XSTATE_FP | XSTATE_SSE, &size))) {
                tlog_error(log, "HVM context: vcpu%u: this host does not describe XSAVE components %#" PRIx64,
                           id, (uint64_t)x.xcr0_accum);
                return rc;
            }
            /* Xen 4.3 and older wrote longer records padded with zeros. */
            for (size_t i = size; i < have; i++)
                if (v->xsave[XEN_XSAVE_HDR + i])
                    BAD("vcpu%u: CPU_XSAVE is %zu bytes but xcr0_accum %#" PRIx64 " needs %zu", id,
                        have, (uint64_t)x.xcr0_accum, size);
            if (have < size)
                BAD("vcpu%u: CPU_XSAVE is %zu bytes but xcr0_accum %#" PRIx64 " needs %zu", id, have,
                    (uint64_t)x.xcr0_accum, size);
            if (size > hc->xsave_size) {
                tlog_error(log, "HVM context: vcpu%u: XSAVE area of %zu bytes exceeds KVM's %zu", id,
                           size, hc->xsave_size);
                return -EOPNOTSUPP;
            }
            memcpy(t->xsave->region, v->xsave + XEN_XSAVE_HDR, size);
            t->set_xcr0 = true;
            t->xcr0 = x.xcr0;
        } else {
            /* Only the legacy FXSAVE image: x87 and SSE state. */
            uint8_t *p = (uint8_t *)t->xsave->region;
            if (v->cpu.flags & XEN_X86_FPU_INITIALISED) {
                memcpy(p, c->fpu_regs, sizeof(c->fpu_regs));
                uint64_t bv = XSTATE_FP | XSTATE_SSE;
                memcpy(p + XSAVE_LEGACY_SIZE, &bv, sizeof(bv));
            } else {
                uint16_t fcw = 0x37f;       /* FNINIT's control word */
                uint32_t mxcsr = 0x1f80;    /* and MXCSR's reset value */
                memcpy(p, &fcw, sizeof(fcw));
                memcpy(p + 24, &mxcsr, sizeof(mxcsr));
            }
        }
    } else {
        /* A vCPU waiting for INIT/SIPI: its registers are set by the SIPI,
         * but its APIC base must be right before its LAPIC is loaded. */
        if (v->has_kvm)
            add_msr(t, MSR_IA32_APICBASE, v->kvm.sregs.apic_base);
        else if (v->has_lapic)
            add_msr(t, MSR_IA32_APICBASE, v->lapic.apic_base_msr);
        bool tsc_in_ext = false;
        for (uint32_t i = 0; i < v->n_kvm_msrs; i++) {
            struct tandem_hvm_kvm_msr m;
            memcpy(&m, v->kvm_msrs + sizeof(struct tandem_hvm_kvm_msrs) + i * sizeof(m), sizeof(m));
            tsc_in_ext |= m.index == MSR_IA32_TSC;
        }
        /* Its TSC must agree with the running vCPUs' when it starts: a
         * blob without Tandem's record gets the domain's (Xen's TSC is
         * per domain). */
        if (!tsc_in_ext && domain_tsc)
            add_msr(t, MSR_IA32_TSC, *domain_tsc);
    }

    if (v->has_mtrr) {
        const struct hvm_hw_mtrr *m = &v->mtrr;
        add_msr(t, MSR_IA32_CR_PAT, m->msr_pat_cr);
        add_msr(t, MSR_MTRR_DEF_TYPE, m->msr_mtrr_def_type);
        for (unsigned i = 0; i < NUM_FIXED_MSR; i++)
            add_msr(t, mtrr_fixed_msrs[i], m->msr_mtrr_fixed[i]);
        for (unsigned i = 0; i < 2 * (m->msr_mtrr_cap & 0xff); i++)
            add_msr(t, MSR_MTRR_PHYSBASE0 + i, m->msr_mtrr_var[i]);
    }
    if (v->has_tsc_adjust)
        add_msr(t, MSR_IA32_TSC_ADJUST, v->tsc_adjust);
    for (uint32_t i = 0; i < v->n_cpu_msr; i++) {
        struct hvm_one_msr m;
        memcpy(&m, v->cpu_msr + offsetof(struct hvm_msr, msr) + i * sizeof(m), sizeof(m));
        add_msr(t, m.index, m.val);
    }
    for (uint32_t i = 0; i < v->n_kvm_msrs; i++) {
        struct tandem_hvm_kvm_msr m;
        memcpy(&m, v->kvm_msrs + sizeof(struct tandem_hvm_kvm_msrs) + i * sizeof(m), sizeof(m));
        if (msr_list_has(hc->features, m.index))
            BAD("vcpu%u: TANDEM_KVM_MSRS holds feature MSR %#x, which belongs to the MSR policy",
                id, m.index);
        add_msr(t, m.index, m.value);
    }

    /* Every MSR must exist on this host's KVM; one it lacks may only be
     * dropped if it holds 0, its reset value. */
    if (t->nmsrs) {
        uint32_t *idx = calloc(t->nmsrs, sizeof(*idx));
        struct kvm_msr_entry *readable = calloc(t->nmsrs, sizeof(*readable));
        if (!idx || !readable) {
            free(idx);
            free(readable);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < t->nmsrs; i++)
            idx[i] = t->msrs[i].index;
        rc = hvm_read_msrs(vc->fd, idx, t->nmsrs, readable, log);
        free(idx);
        if (rc < 0) {
            free(readable);
            return rc;
        }
        unsigned n_readable = (unsigned)rc, k = 0;
        for (unsigned i = 0; i < t->nmsrs; i++) {
            bool ok = false;
            for (unsigned j = 0; j < n_readable && !ok; j++)
                ok = readable[j].index == t->msrs[i].index;
            if (ok) {
                t->msrs[k++] = t->msrs[i];
            } else if (t->msrs[i].data) {
                tlog_error(log, "HVM context: vcpu%u: MSR %#x = %#llx cannot be given on this host "
                                "(its KVM does not have that MSR)", id, t->msrs[i].index,
                           (unsigned long long)t->msrs[i].data);
                free(readable);
                return -EOPNOTSUPP;
            }
        }
        t->nmsrs = k;
        free(readable);
    }

    if (v->has_lapic_regs) {
        t->set_lapic = true;
        t->lapic = v->lapic_regs;
    }
    if (v->has_lapic && v->has_lapic_regs) {
        /* Written after the LAPIC (and the TSC): loading the LAPIC page
         * resets the deadline timer. */
        t->set_tdt = true;
        t->tdt = v->lapic.tdt_msr;
    }
    if (v->has_kvm) {
        t->set_events = true;
        t->events = v->kvm.events;
        /* GET never reports the SIPI vector as valid, but it is what an AP
         * waiting for its second SIPI must keep. */
        t->events.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
        t->set_mp = true;
        t->mp.mp_state = v->kvm.mp_state;
    } else if (up) {
        t->set_events = true;
        pending_to_events(v->cpu.pending_event, v->cpu.error_code, &t->events);
        t->set_mp = true;
        t->mp.mp_state = KVM_MP_STATE_RUNNABLE;
    }
    return 0;
}

static void pic_from_xen(const struct hvm_hw_vpic *x, struct kvm_pic_state *p)
{
    /* KVM-only fields (last_irr, elcr_mask) keep the destination's. */
    p->irr = x->irr;
    p->imr = x->imr;
    p->isr = x->isr;
    p->irq_base = x->irq_base;
    p->init_state = x->init_state & 3;
    p->init4 = !!(x->init_state & 4);
    p->priority_add = x->priority_add;
    p->read_reg_select = x->readsel_isr;
    p->poll = x->poll;
    p->auto_eoi = x->auto_eoi;
    p->rotate_on_auto_eoi = x->rotate_on_auto_eoi;
    p->special_fully_nested_mode = x->special_fully_nested_mode;
    p->special_mask = x->special_mask_mode;
    p->elcr = x->elcr & p->elcr_mask;
}

static int apply_vcpu(struct vcpu *v, const struct host_caps *hc, struct vcpu_target *t,
                      const struct tlog *log)
{
    int rc;
    if (t->set_sregs) {
        if (hc->sregs2) {
            rc = vcpu_ioctl(v, KVM_SET_SREGS2, &t->sregs, "KVM_SET_SREGS2", log);
        } else {
            struct kvm_sregs s;
            sregs2_to_sregs(&t->sregs, &s);
            rc = vcpu_ioctl(v, KVM_SET_SREGS, &s, "KVM_SET_SREGS", log);
        }
        if (rc)
            return rc;
    }
    if (t->set_regs && (rc = vcpu_ioctl(v, KVM_SET_REGS, &t->regs, "KVM_SET_REGS", log)))
        return rc;
    if (t->xsave && (rc = vcpu_ioctl(v, KVM_SET_XSAVE, t->xsave, "KVM_SET_XSAVE", log)))
        return rc;
    if (t->set_xcr0 && hc->xcrs) {
        struct kvm_xcrs x = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = t->xcr0 } } };
        if ((rc = vcpu_ioctl(v, KVM_SET_XCRS, &x, "KVM_SET_XCRS", log)))
            return rc;
    }
    if (t->nmsrs) {
        struct kvm_msrs *m = calloc(1, sizeof(*m) + t->nmsrs * sizeof(m->entries[0]));
        if (!m)
            return -ENOMEM;
        /* The APIC base goes first so the LAPIC mode is right for the rest. */
        unsigned k = 0;
        for (unsigned i = 0; i < t->nmsrs; i++)
            if (t->msrs[i].index == MSR_IA32_APICBASE)
                m->entries[k++] = t->msrs[i];
        for (unsigned i = 0; i < t->nmsrs; i++)
            if (t->msrs[i].index != MSR_IA32_APICBASE)
                m->entries[k++] = t->msrs[i];
        m->nmsrs = k;
        int r = ioctl(v->fd, KVM_SET_MSRS, m);
        if (r != (int)k) {
            int err = r < 0 ? errno : EINVAL;
            if (r >= 0)
                tlog_error(log, "vcpu%u: KVM refused MSR %#x = %#llx", v->id, m->entries[r].index,
                           (unsigned long long)m->entries[r].data);
            else
                tlog_error(log, "vcpu%u: KVM_SET_MSRS: %s", v->id, strerror(err));
            free(m);
            return -err;
        }
        free(m);
    }
    if (t->set_dbg && (rc = vcpu_ioctl(v, KVM_SET_DEBUGREGS, &t->dbg, "KVM_SET_DEBUGREGS", log)))
        return rc;
    if (t->set_lapic && (rc = vcpu_ioctl(v, KVM_SET_LAPIC, &t->lapic, "KVM_SET_LAPIC", log)))
        return rc;
    if (t->set_tdt) {
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } m = { .h = { .nmsrs = 1 }, .e = { .index = MSR_IA32_TSC_DEADLINE, .data = t->tdt } };
        if (ioctl(v->fd, KVM_SET_MSRS, &m) != 1 && t->tdt) {
            tlog_error(log, "vcpu%u: KVM refused the TSC deadline %#llx", v->id, (unsigned long long)t->tdt);
            return -EINVAL;
        }
    }
    if (t->set_events && (rc = vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, &t->events, "KVM_SET_VCPU_EVENTS", log)))
        return rc;
    return 0;
}

int domain_set_hvm_context(struct domain *d, const uint8_t *blob, size_t len, const struct tlog *log)
{
    struct hvm_in *in = NULL;
    struct vcpu_target *targets = NULL;
    struct host_caps hc;
    bool have_hc = false;
    int rc;

    if (!domain_is_paused(d)) {
        tlog_error(log, "HVM context: the domain must be paused");
        return -EBUSY;
    }
    if (!blob) {
        tlog_error(log, "HVM context: no blob");
        return -EINVAL;
    }
    in = calloc(1, sizeof(*in));
    targets = calloc(d->nr_vcpus, sizeof(*targets));
    if (!in || !targets) {
        rc = -ENOMEM;
        goto out;
    }
    /* 1: shape; 2: values; 3: against this host, building what to apply.
     * Nothing touches KVM state before all three passed. */
    if ((rc = parse_blob(blob, len, d->nr_vcpus, in, log)))
        goto out;
    if ((rc = check_platform_records(in, log)))
        goto out;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if ((rc = check_vcpu_records(&in->v[i], i, log)))
            goto out;
    if ((rc = host_caps_get(d, &hc, log)))
        goto out;
    have_hc = true;

    unsigned eax, ebx, ecx, edx;
    __cpuid(1, eax, ebx, ecx, edx);
    (void)ebx; (void)ecx; (void)edx;
    if (in->hdr.cpuid != eax)
        tlog_debug(log, "HVM context was saved on a CPU with signature %#x; this one's is %#x",
                   in->hdr.cpuid, eax);
    if (in->hdr.gtsc_khz && d->tsc_khz && in->hdr.gtsc_khz != d->tsc_khz)
        tlog_info(log, "HVM context was saved with a %u kHz guest TSC; this host's is %u kHz "
                       "(X86_TSC_INFO decides the scaling)", in->hdr.gtsc_khz, d->tsc_khz);
    const uint64_t *domain_tsc = NULL;
    for (unsigned i = 0; i < d->nr_vcpus && !domain_tsc; i++)
        if (in->v[i].has_cpu)
            domain_tsc = &in->v[i].cpu.tsc;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if ((rc = build_vcpu_target(d, &hc, in, i, domain_tsc, &targets[i], log)))
            goto out;

    struct kvm_irqchip chips[3];
    bool set_chip[3] = { false, false, false };
    for (unsigned i = 0; i < 3; i++) {
        memset(&chips[i], 0, sizeof(chips[i]));
        chips[i].chip_id = i;
        if (in->has_kchip[i]) {
            memcpy(&chips[i].chip, in->kchip[i].chip, sizeof(chips[i].chip));
            set_chip[i] = true;
        } else if ((i < 2 && in->has_pic[i]) || (i == 2 && in->has_ioapic)) {
            /* Xen's record only: start from the chip as it is now. */
            if ((rc = vm_ioctl(d, KVM_GET_IRQCHIP, &chips[i], "KVM_GET_IRQCHIP", log)))
                goto out;
            if (i < 2) {
                pic_from_xen(&in->pic[i], &chips[i].chip.pic);
            } else {
                struct kvm_ioapic_state *io = &chips[2].chip.ioapic;
                io->base_address = in->ioapic.base_address;
                io->ioregsel = in->ioapic.ioregsel;
                io->id = in->ioapic.id;
                io->irr = 0; /* line levels are re-driven by the devices */
                for (unsigned p = 0; p < KVM_IOAPIC_NUM_PINS; p++)
                    io->redirtbl[p].bits = in->ioapic.redirtbl[p].bits;
            }
            set_chip[i] = true;
        }
    }
    struct kvm_pit_state2 pit;
    bool set_pit = false;
    if (in->has_kpit) {
        pit = in->kpit.pit;
        set_pit = true;
    } else if (in->has_pit) {
        memset(&pit, 0, sizeof(pit));
        for (unsigned i = 0; i < 3; i++) {
            const struct hvm_hw_pit_channel *x = &in->pit.channels[i];
            pit.channels[i] = (struct kvm_pit_channel_state){
                .count = x->count, .latched_count = x->latched_count, .count_latched = x->count_latched,
                .status_latched = x->status_latched, .status = x->status, .read_state = x->read_state,
                .write_state = x->write_state, .write_latch = x->write_latch, .rw_mode = x->rw_mode,
                .mode = x->mode, .bcd = x->bcd, .gate = x->gate,
            };
        }
        pit.flags = in->pit.speaker_data_on ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0;
        set_pit = true;
    }

    /* Apply.  Per vCPU: sregs (mode, APIC base) before regs, the FPU,
     * MSRs (the TSC among them), debug registers, the LAPIC, then its TSC
     * deadline and the pending events; then the interrupt controllers,
     * whose pending lines may be delivered into the LAPICs; then the PIT
     * and kvmclock; the MP states last, so no vCPU is made runnable (or
     * left waiting for SIPI) on half-loaded state. */
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (targets[i].touch && (rc = apply_vcpu(&d->vcpus[i], &hc, &targets[i], log)))
            goto out;
    for (unsigned i = 0; i < 3; i++)
        if (set_chip[i] && (rc = vm_ioctl(d, KVM_SET_IRQCHIP, &chips[i], "KVM_SET_IRQCHIP", log)))
            goto out;
    if (set_pit && (rc = vm_ioctl(d, KVM_SET_PIT2, &pit, "KVM_SET_PIT2", log)))
        goto out;
    if (in->has_kclock) {
        /* The guest's clock continues from its saved value, like its TSC;
         * KVM_CLOCK_REALTIME would add the downtime, which the TSC does
         * not see either. */
        struct kvm_clock_data clk = { .clock = in->kclock.clock };
        if ((rc = vm_ioctl(d, KVM_SET_CLOCK, &clk, "KVM_SET_CLOCK", log)))
            goto out;
    }
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (targets[i].set_mp &&
            (rc = vcpu_ioctl(&d->vcpus[i], KVM_SET_MP_STATE, &targets[i].mp, "KVM_SET_MP_STATE", log)))
            goto out;
    rc = 0;
out:
    if (targets)
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            vcpu_target_free(&targets[i]);
    free(targets);
    free(in);
    if (have_hc)
        host_caps_free(&hc);
    return rc;
}

/* ---- X86_TSC_INFO ------------------------------------------------------- */

int domain_get_tsc_info(struct domain *d, struct domain_tsc_info *out, const struct tlog *log)
{
    memset(out, 0, sizeof(*out));
    out->mode = 0; /* Xen's TSC_MODE_DEFAULT: the guest reads a native TSC */
    /* Ask KVM rather than trust d->tsc_khz: a restored domain may have been
     * scaled to its source's frequency. */
    int khz = d->nr_vcpus ? ioctl(d->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : -1;
    out->khz = khz > 0 ? (uint32_t)khz : d->tsc_khz;
    struct kvm_clock_data clk = { 0 };
    int rc = vm_ioctl(d, KVM_GET_CLOCK, &clk, "KVM_GET_CLOCK", log);
    if (rc)
        return rc;
    out->nsec = clk.clock;
    out->incarnation = 0;
    return 0;
}

int domain_set_tsc_info(struct domain *d, const struct domain_tsc_info *in, const struct tlog *log)
{
    /* Xen's modes: 0 default, 1 always emulate, 2 never emulate, 3 the
     * removed PVRDTSCP.  KVM never emulates RDTSC, which is what 0 means
     * on a host with an invariant TSC, and exactly what 2 means. */
    if (in->mode != 0 && in->mode != 2) {
        tlog_error(log, "TSC mode %u (%s) is not available: KVM gives guests the native TSC", in->mode,
                   in->mode == 1 ? "always emulate" : "unknown");
        return -EOPNOTSUPP;
    }
    int cur = d->nr_vcpus ? ioctl(d->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : -1;
    if (in->khz && cur > 0 && in->khz != (uint32_t)cur) {
        bool can = ioctl(d->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
        int err = 0;
        for (unsigned i = 0; can && i < d->nr_vcpus && !err; i++)
            if (ioctl(d->vcpus[i].fd, KVM_SET_TSC_KHZ, (unsigned long)in->khz) < 0)
                err = errno;
        if (!can || err)
            tlog_warn(log, "the guest's TSC ran at %u kHz and now runs at this host's %d kHz: %s; "
                           "its sense of time will be off by that ratio", in->khz, cur,
                      can ? strerror(err) : "this host's KVM cannot scale the TSC (no KVM_CAP_TSC_CONTROL)");
        else
            tlog_info(log, "guest TSC scaled to %u kHz (host: %d kHz)", in->khz, cur);
    }
    struct kvm_clock_data clk = { .clock = in->nsec };
    return vm_ioctl(d, KVM_SET_CLOCK, &clk, "KVM_SET_CLOCK", log);
}

/* ---- HVM_PARAMS --------------------------------------------------------- */

int domain_get_hvm_params(struct domain *d, struct domain_hvm_param **out, unsigned *n,
                          const struct tlog *log)
{
    (void)d;
    (void)log;
    static const struct domain_hvm_param params[] = {
        /* KVM's in-kernel PIT re-injects ticks it could not deliver and
         * the guest's time follows the host's: Xen's
         * no_delay_for_missed_ticks. */
        { HVM_PARAM_TIMER_MODE, HVMPTM_no_delay_for_missed_ticks },
        { HVM_PARAM_HPET_ENABLED, 0 },
        { HVM_PARAM_IDENT_PT, KVM_IDENTITY_MAP_GPA },
        { HVM_PARAM_NESTEDHVM, 0 },
        { HVM_PARAM_VM86_TSS_SIZED, KVM_TSS_SIZE << 32 | KVM_TSS_GPA },
    };
    *out = malloc(sizeof(params));
    if (!*out)
        return -ENOMEM;
    memcpy(*out, params, sizeof(params));
    *n = sizeof(params) / sizeof(params[0]);
    return 0;
}

int domain_set_hvm_params(struct domain *d, const struct domain_hvm_param *p, unsigned n,
                          const struct tlog *log)
{
    int timer_mode = -1;
    for (unsigned i = 0; i < n; i++) {
        uint64_t idx = p[i].index, val = p[i].value;
        if (idx >= HVM_NR_PARAMS) {
            tlog_error(log, "HVM param %" PRIu64 " is unknown (Xen has %d)", idx, HVM_NR_PARAMS);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (p[j].index == idx) {
                tlog_error(log, "HVM param %" PRIu64 " is given twice", idx);
                return -EINVAL;
            }
        switch (idx) {
        case HVM_PARAM_IDENT_PT:
        case HVM_PARAM_VM86_TSS_SIZED: {
            uint64_t gpa = idx == HVM_PARAM_IDENT_PT ? val : (val & 0xffffffffULL);
            uint64_t mine = idx == HVM_PARAM_IDENT_PT ? KVM_IDENTITY_MAP_GPA : KVM_TSS_GPA;
            if ((gpa & 0xfff) || gpa >= (1ULL << 32)) {
                tlog_error(log, "HVM param %s %#" PRIx64 " is not a page address below 4 GiB",
                           idx == HVM_PARAM_IDENT_PT ? "IDENT_PT" : "VM86_TSS_SIZED", val);
                return -EINVAL;
            }
            /* KVM fixes these before the vCPUs exist and only VMX without
             * unrestricted guest ever uses them; the guest never sees them. */
            if (gpa && gpa != mine)
                tlog_warn(log, "HVM param %s asks for %#" PRIx64 "; KVM keeps its own at %#" PRIx64,
                          idx == HVM_PARAM_IDENT_PT ? "IDENT_PT" : "VM86_TSS_SIZED", gpa, mine);
            break;
        }
        case HVM_PARAM_TIMER_MODE:
            if (val > HVMPTM_one_missed_tick_pending) {
                tlog_error(log, "HVM param TIMER_MODE %" PRIu64 " is not a timer mode", val);
                return -EINVAL;
            }
            timer_mode = (int)val;
            break;
        case HVM_PARAM_NESTEDHVM:
        case HVM_PARAM_HPET_ENABLED:
        case HVM_PARAM_VIRIDIAN:
        case HVM_PARAM_ALTP2M:
        case HVM_PARAM_MCA_CAP:
            if (val) {
                static const char *const what[HVM_NR_PARAMS] = {
                    [HVM_PARAM_NESTEDHVM] = "nested virtualisation", [HVM_PARAM_HPET_ENABLED] = "an HPET",
                    [HVM_PARAM_VIRIDIAN] = "Viridian (Hyper-V) enlightenments",
                    [HVM_PARAM_ALTP2M] = "alternate p2m", [HVM_PARAM_MCA_CAP] = "LMCE",
                };
                tlog_error(log, "HVM param %" PRIu64 " = %#" PRIx64 " asks for %s, which Tandem does not offer",
                           idx, val, what[idx]);
                return -EOPNOTSUPP;
            }
            break;
        default:
            /* Xen's ring, store and console pages etc. mean nothing here. */
            tlog_debug(log, "HVM param %" PRIu64 " = %#" PRIx64 " ignored (no meaning on KVM)", idx, val);
            break;
        }
    }
    if (timer_mode == HVMPTM_no_missed_ticks_pending || timer_mode == HVMPTM_one_missed_tick_pending) {
        /* Closest KVM has: drop missed PIT ticks instead of re-injecting.
         * KVM cannot report it back, so HVM params read later say 1. */
        struct kvm_reinject_control rc = { .pit_reinject = 0 };
        if (ioctl(d->vm_fd, KVM_REINJECT_CONTROL, &rc) < 0) {
            int err = errno;
            tlog_error(log, "KVM_REINJECT_CONTROL: %s", strerror(err));
            return -err;
        }
    }
    return 0;
}
