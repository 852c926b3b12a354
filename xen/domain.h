/* A running domain inside its domain process: the KVM VM, its memory, its
 * vCPU threads and its devices.  Internal to xen/. */
#ifndef TANDEM_DOMAIN_H
#define TANDEM_DOMAIN_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include "guest_memory.h"
#include "uart.h"
#include "tandem/xen.h"

/* Guest port the test guest (and any Tandem-aware guest) writes to end
 * itself: 0 = power off, 1 = reboot, 2 = crash. */
#define DOMAIN_SHUTDOWN_PORT 0x501
#define LAPIC_BUS_KHZ 1000000u   /* KVM's APIC timer runs at 1 GHz */

enum domain_end {
    DOMAIN_END_NONE,
    DOMAIN_END_POWEROFF,
    DOMAIN_END_REBOOT,
    DOMAIN_END_CRASH,
};

struct domain;

struct vcpu {
    struct domain *d;
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    bool parked;
    bool mmio_warned;
    bool io_pending;          /* last exit was port/MMIO: KVM_RUN must complete it */
    unsigned throttle_pct;    /* share of each throttle period it must sleep */
    uint64_t dirty_limit;     /* pages/s, enforced at ring-full exits; 0 = none */
    uint64_t limit_t0_usec, limit_d0;   /* the window it is measured over */
    /* Its dirty ring (ring mode), the next entry to harvest, and how many
     * entries it has yielded; ring_lock serialises harvesters. */
    struct kvm_dirty_gfn *ring;
    uint32_t ring_fetch;
    uint64_t dirtied;
    pthread_mutex_t ring_lock;
};

struct domain {
    struct domain_config cfg;
    const struct tlog *log;
    int kvm_fd, vm_fd;
    struct guest_memory mem;
    unsigned nr_vcpus;
    struct vcpu *vcpus;
    struct uart uart;
    struct devices *devs;          /* virtio devices (devices.c); NULL: none */
    unsigned domid;
    unsigned tsc_khz;
    struct cpu_policy *host_max;   /* what this host can give (cpu_policy.c) */
    char cpu_forced[512];          /* features KVM shows though the policy removed them */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned pause_count;      /* vCPUs run only while it is 0 */
    bool stopping;             /* threads exit */
    enum domain_end end;       /* set once, by the first vCPU that ends it */
    char end_reason[256];

    /* Log-dirty (logdirty.c).  pending collects what vCPUs harvest on
     * ring-full exits until the next domain_logdirty_harvest. */
    enum domain_logdirty_mode logdirty_mode;
    uint32_t ring_entries;
    bool logdirty_on;
    pthread_mutex_t logdirty_lock;
    uint64_t *logdirty_pending;
    uint64_t logdirty_pending_count;  /* entries behind its bits; 0 = empty */
    uint64_t ring_full_exits;
    int reset_cut_short;      /* a dirty-ring reset freed fewer entries than
                               * marked: the next harvest re-protects all */

    /* Throttling (for migrations that would not converge): a thread kicks
     * throttled vCPUs every period; each then sleeps its share of it. */
    pthread_t throttle_thread;
    bool throttle_running, throttle_stop;

    /* Called from a vCPU thread, without locks held, when the guest ends
     * itself; and for every console byte (with the UART lock held). */
    void (*on_end)(void *opaque, enum domain_end end, const char *reason);
    void (*on_console)(void *opaque, uint8_t byte);
    void *opaque;
};

/* Builds the VM, creates the vCPUs paused (pause_count 1) and, unless
 * for_restore, loads the kernel and sets the PVH entry state; a domain
 * built for restore gets its memory and state from a stream instead.  On
 * failure everything built so far is torn down. */
int domain_create(struct domain **out, const struct domain_config *cfg, bool for_restore,
                  const struct cpu_overrides *host_mask,
                  void (*on_end)(void *, enum domain_end, const char *),
                  void (*on_console)(void *, uint8_t), void *opaque,
                  const struct tlog *log);
/* The same for domain `domid`, which names its taps (vif<domid>.<devid>,
 * as Xen does); domain_create is domain_create_as with domid 0, for
 * callers whose domains have no vifs.  Its devices are built from the
 * config's vif= and disk= lists (a missing bridge or disk image fails the
 * create); a domain built for restore announces its vifs' MACs when it is
 * first unpaused. */
int domain_create_as(struct domain **out, unsigned domid, const struct domain_config *cfg, bool for_restore,
                     const struct cpu_overrides *host_mask,
                     void (*on_end)(void *, enum domain_end, const char *),
                     void (*on_console)(void *, uint8_t), void *opaque,
                     const struct tlog *log);
/* cpu_policy.c's part: works out this host's maximum policy (minus
 * host_mask, which may be NULL) and loads the domain's own policy, the
 * default changed by its config's cpuid overrides, into every vCPU. */
int domain_setup_cpu_policy(struct domain *d, const struct cpu_overrides *host_mask);
/* Starts the vCPU threads (still paused). */
int domain_start_vcpus(struct domain *d);
bool domain_is_paused(struct domain *d);

/* logdirty.c's part of building and tearing down. */
int logdirty_setup_vm(struct domain *d, enum domain_logdirty_mode want, unsigned ring_entries);
int logdirty_setup_vcpu(struct domain *d, struct vcpu *v);
void logdirty_teardown_vcpu(struct domain *d, struct vcpu *v);
void logdirty_ring_full(struct domain *d, struct vcpu *v);
/* The VMM wrote [gpa, gpa+len) of guest memory (a device model): while
 * log-dirty is on, those pages go in the next harvest.  Call it after the
 * write, never before. */
void domain_mark_dirty(struct domain *d, uint64_t gpa, uint64_t len);
void domain_destroy(struct domain *d);   /* stops threads, frees all */

#endif
