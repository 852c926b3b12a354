/* KVM state as Xen HVM save records: the Tandem extension records that
 * carry what Xen's records cannot hold, and helpers shared between
 * hvm_context.c and cpu_policy.c.  Internal to xen/; the layout of every
 * extension record is documented in docs/hvm-context.md.
 *
 * A blob is Xen's: descriptors {u16 typecode, u16 instance, u32 length}
 * each followed by `length` bytes of record, HEADER first and END last,
 * little-endian.  Typecodes 0x80 and up are Tandem's and never collide
 * with Xen's (which stop at 34, the last reserved for Amazon).  Every
 * extension record starts with a u32 version so its layout can grow. */
#ifndef TANDEM_HVM_CONTEXT_H
#define TANDEM_HVM_CONTEXT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include "tandem/log.h"

struct domain;

#define TANDEM_HVM_EXT_VERSION 1

/* Per vCPU (instance = vCPU id): what a vCPU has beyond Xen's CPU record. */
#define TANDEM_HVM_KVM_VCPU 0x80
#define TANDEM_KVM_VCPU_SREGS2 0x1u   /* sregs came from KVM_GET_SREGS2 */
struct tandem_hvm_kvm_vcpu {
    uint32_t version;                  /* TANDEM_HVM_EXT_VERSION */
    uint32_t flags;                    /* TANDEM_KVM_VCPU_* */
    uint32_t mp_state;                 /* KVM_MP_STATE_* */
    uint32_t pad;                      /* zero */
    struct kvm_vcpu_events events;     /* 64 bytes, as KVM_GET_VCPU_EVENTS */
    struct kvm_sregs2 sregs;           /* 320 bytes, as KVM_GET_SREGS2 */
};

/* Per vCPU: MSRs that no Xen record holds (kvmclock, MISC_ENABLE, ...),
 * and IA32_TSC for a vCPU that has no CPU record. */
#define TANDEM_HVM_KVM_MSRS 0x81
struct tandem_hvm_kvm_msrs {
    uint32_t version;
    uint32_t count;
    struct tandem_hvm_kvm_msr {
        uint32_t index;
        uint32_t reserved;             /* zero */
        uint64_t value;
    } msr[];                           /* sorted by index, no duplicates */
};

/* Instance 0: the in-kernel PIT as KVM_GET_PIT2 returns it, except that
 * each channel's count_load_time (a host ktime, meaningless on any other
 * host, and reset by KVM_SET_PIT2 anyway) is zeroed. */
#define TANDEM_HVM_KVM_PIT 0x82
struct tandem_hvm_kvm_pit {
    uint32_t version;
    uint32_t pad;
    struct kvm_pit_state2 pit;         /* 112 bytes */
};

/* Instance = KVM_IRQCHIP_PIC_MASTER (0), _PIC_SLAVE (1) or _IOAPIC (2):
 * the chip as KVM_GET_IRQCHIP returns it. */
#define TANDEM_HVM_KVM_IRQCHIP 0x83
struct tandem_hvm_kvm_irqchip {
    uint32_t version;
    uint32_t chip_id;                  /* equals the instance */
    uint8_t chip[512];                 /* kvm_irqchip.chip */
};

/* Instance 0: kvmclock, as KVM_GET_CLOCK returns it. */
#define TANDEM_HVM_KVM_CLOCK 0x84
struct tandem_hvm_kvm_clock {
    uint32_t version;
    uint32_t flags;                    /* KVM_CLOCK_* as read */
    uint64_t clock;                    /* ns */
    uint64_t realtime;                 /* valid with KVM_CLOCK_REALTIME */
    uint64_t host_tsc;                 /* valid with KVM_CLOCK_HOST_TSC */
};

#define TANDEM_HVM_EXT_FIRST TANDEM_HVM_KVM_VCPU
#define TANDEM_HVM_EXT_LAST TANDEM_HVM_KVM_CLOCK

/* ---- Shared by hvm_context.c and cpu_policy.c ---- */

/* True once any vCPU of d has entered the guest.  KVM refuses most
 * CPUID/MSR-policy changes from then on. */
bool hvm_vcpus_have_run(struct domain *d);

/* KVM_GET_SUPPORTED_CPUID on the system fd; the result is malloc'd. */
int hvm_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out, const struct tlog *log);
/* The entry for (function, index) in c, honouring SIGNIFCANT_INDEX. */
const struct kvm_cpuid_entry2 *hvm_cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
                                              uint32_t index);

/* KVM_GET_MSR_INDEX_LIST or KVM_GET_MSR_FEATURE_INDEX_LIST (by `req`);
 * malloc'd. */
int hvm_msr_index_list(int kvm_fd, unsigned long req, struct kvm_msr_list **out,
                       const struct tlog *log);

/* Reads the MSRs in idx[0..n) from a vCPU; entries KVM refuses to read are
 * left out.  out[] gets the readable ones in order; returns how many, or
 * -errno. */
int hvm_read_msrs(int vcpu_fd, const uint32_t *idx, unsigned n, struct kvm_msr_entry *out,
                  const struct tlog *log);

#endif
