/* virtio-mmio (virtio 1.x "4.2 Virtio Over MMIO", version 2, no legacy):
 * one device's register file, its feature and status handshake, its
 * queues, its interrupt and the I/O thread that does its work.  The
 * device types (virtio_net.c, virtio_blk.c) plug in through
 * struct virtio_dev_ops; the placement of devices in a domain is
 * devices.c's (the contract in /work/notes/virtio-contract.md).
 *
 * Threads.  vCPU threads call virtio_mmio_access(); the device's own
 * thread does the requests.  The thread touches guest memory only inside
 * ops->run(), and ops->run() stops between two requests as soon as
 * virtio_dev_held() says so.  Everything that must not race with a
 * request (a pause, a reset, a queue being set up) holds the device: it
 * waits for run() to return and keeps it from starting again.
 *
 * Errors.  A driver that breaks the rules (virtio_dev_fail) puts the
 * device into DEVICE_NEEDS_RESET with a config-change interrupt and a
 * logged reason; the device then does nothing until the driver resets it.
 * Other devices and the VMM carry on. */
#ifndef TANDEM_VIRTIO_MMIO_H
#define TANDEM_VIRTIO_MMIO_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "guest_memory.h"
#include "virtqueue.h"
#include "tandem/log.h"

#define VIRTIO_MMIO_BASE        0xD0000000ULL
#define VIRTIO_MMIO_SIZE        0x1000ULL
#define VIRTIO_MMIO_GSI_BASE    16
#define VIRTIO_MMIO_MAX_DEVICES 8
#define VIRTIO_MMIO_MAGIC       0x74726976u   /* "virt" */
#define VIRTIO_MMIO_VENDOR      0x4d444e54u   /* "TNDM" */
#define VIRTIO_MAX_QUEUES       2

enum {
    VIRTIO_MMIO_MAGIC_VALUE = 0x000, VIRTIO_MMIO_VERSION = 0x004, VIRTIO_MMIO_DEVICE_ID = 0x008,
    VIRTIO_MMIO_VENDOR_ID = 0x00c, VIRTIO_MMIO_DEVICE_FEATURES = 0x010, VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014,
    VIRTIO_MMIO_DRIVER_FEATURES = 0x020, VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024, VIRTIO_MMIO_QUEUE_SEL = 0x030,
    VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034, VIRTIO_MMIO_QUEUE_NUM = 0x038, VIRTIO_MMIO_QUEUE_READY = 0x044,
    VIRTIO_MMIO_QUEUE_NOTIFY = 0x050, VIRTIO_MMIO_INTERRUPT_STATUS = 0x060, VIRTIO_MMIO_INTERRUPT_ACK = 0x064,
    VIRTIO_MMIO_STATUS = 0x070, VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080, VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084,
    VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090, VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094,
    VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0, VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc, VIRTIO_MMIO_CONFIG = 0x100,
};

/* Device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE  1u
#define VIRTIO_STATUS_DRIVER       2u
#define VIRTIO_STATUS_DRIVER_OK    4u
#define VIRTIO_STATUS_FEATURES_OK  8u
#define VIRTIO_STATUS_NEEDS_RESET  64u
#define VIRTIO_STATUS_FAILED       128u
#define VIRTIO_STATUS_KNOWN        0xcfu

/* InterruptStatus bits */
#define VIRTIO_INT_USED_BUFFER     1u
#define VIRTIO_INT_CONFIG          2u

#define VIRTIO_F_VERSION_1         (1ULL << 32)

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2

struct virtio_dev;

/* What a device type provides.  run/wait_fds run on the device thread. */
struct virtio_dev_ops {
    /* Config space (offset from 0x100), 1, 2 or 4 bytes; beyond
     * config_size reads are zero.  Writes are ignored (nothing we offer
     * is writable). */
    unsigned config_size;
    void (*config_read)(struct virtio_dev *v, unsigned off, uint8_t *out, unsigned len);
    /* Does what there is to do; live = the driver is done with setup and
     * the device is not broken.  Stops early when virtio_dev_held(). */
    void (*run)(struct virtio_dev *v, bool live);
    /* Adds descriptors the thread must also wait on (the tap); may lower
     * *timeout_ms (-1 = none).  Returns how many it added. */
    unsigned (*wait_fds)(struct virtio_dev *v, bool live, struct pollfd *fds, unsigned max, int *timeout_ms);
    /* The device's part of the migration state: size, writing it (may
     * fail: a disk that cannot be made durable), checking a saved one
     * against this device and applying it (after every check passed). */
    unsigned state_size;
    int (*state_save)(struct virtio_dev *v, uint8_t *out, const struct tlog *log);
    int (*state_check)(struct virtio_dev *v, const uint8_t *in, char *err, size_t errlen);
    void (*state_load)(struct virtio_dev *v, const uint8_t *in);
    void (*destroy)(struct virtio_dev *v);   /* frees priv */
};

/* What a device needs from the domain it sits in. */
struct virtio_env {
    const struct guest_memory *mem;
    const struct tlog *log;
    int vm_fd;                               /* -1: no KVM (tests) */
    vq_mark_fn *mark_dirty;                  /* every VMM write to guest memory */
    void *opaque;
    /* Interrupts where there is no vm_fd (tests). */
    void (*raise_irq)(void *opaque, unsigned gsi);
};

struct virtio_queue_setup {
    enum vq_dir dir;
    uint64_t max_chain_bytes;
};

struct virtio_dev {
    struct virtio_env env;
    const struct virtio_dev_ops *ops;
    void *priv;
    char name[48];                           /* "virtio-net vif3.0", for logs */
    unsigned index;                          /* slot: base and GSI follow */
    uint64_t base;
    unsigned gsi;
    uint32_t device_id;
    uint64_t device_features;
    unsigned nr_queues;
    struct virtio_queue_setup qsetup[VIRTIO_MAX_QUEUES];

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Transport registers (under lock). */
    uint32_t status, device_features_sel, driver_features_sel, queue_sel;
    uint64_t driver_features;
    uint32_t interrupt_status, config_generation;
    struct virtqueue vq[VIRTIO_MAX_QUEUES];  /* the thread's while it runs */

    /* Notifications in, interrupts out. */
    int kick_fd[VIRTIO_MAX_QUEUES];          /* eventfds; KVM_IOEVENTFD signals them */
    bool ioeventfd[VIRTIO_MAX_QUEUES];
    int irq_fd;                              /* KVM_IRQFD's eventfd, -1 if refused */
    int ctl_fd;                              /* wakes the thread */

    /* The thread and what holds it. */
    pthread_t thread;
    bool thread_started;
    bool in_run;                             /* inside ops->run() */
    unsigned pause_depth, holds;
    bool stop;
    bool reraise_irq;                        /* after a restore: interrupt again */
    unsigned long long failures;
    bool warned_access;
};

/* Sets up the transport for device slot `index` (not the thread). */
int virtio_dev_init(struct virtio_dev *v, const struct virtio_env *env, unsigned index, uint32_t device_id,
                    uint64_t device_features, unsigned nr_queues, const struct virtio_queue_setup *qs,
                    const struct virtio_dev_ops *ops, void *priv, const char *name);
/* KVM_IOEVENTFD on QueueNotify and KVM_IRQFD on the GSI (each falls back
 * to the MMIO exit / KVM_IRQ_LINE if KVM refuses), then the thread, which
 * starts paused (pause depth 1, as a new domain's vCPUs). */
int virtio_dev_start(struct virtio_dev *v);
/* Stops the thread, undoes KVM's registrations, then calls ops->destroy
 * (which may free the structure v is part of).  Also undoes a
 * virtio_dev_init whose device never started. */
void virtio_dev_destroy(struct virtio_dev *v);

/* A vCPU's access to [base, base+0x1000). */
void virtio_mmio_access(struct virtio_dev *v, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

/* Pause: returns once the thread is outside ops->run() and will not enter
 * it again until the matching unpause.  Nests. */
void virtio_dev_pause(struct virtio_dev *v);
void virtio_dev_unpause(struct virtio_dev *v);
/* For ops->run(): stop before the next request. */
bool virtio_dev_held(struct virtio_dev *v);

/* For ops->run(): a driver error; the device needs a reset. */
void virtio_dev_fail(struct virtio_dev *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For ops->run(): the used ring of queue q moved; interrupts the guest
 * unless it asked not to be. */
void virtio_dev_notify_used(struct virtio_dev *v, unsigned q);
/* Signals queue q as the driver's QueueNotify does (for tests). */
void virtio_dev_kick(struct virtio_dev *v, unsigned q);

/* Migration state of one device (transport + ops->state_size bytes).
 * Layout in docs/stream-extensions.md. */
#define VIRTIO_STATE_HEADER 48u
#define VIRTIO_STATE_QUEUE  40u
size_t virtio_dev_state_size(const struct virtio_dev *v);
int virtio_dev_state_save(struct virtio_dev *v, uint8_t *out, const struct tlog *log);
/* Checks a saved state against this device, changing nothing: length,
 * slot, device type, queue count, status bits, features this device
 * offers, queue sizes, ring addresses against guest RAM, nothing in flight;
 * then the device's part (ops->state_check). */
int virtio_dev_state_check(struct virtio_dev *v, const uint8_t *in, size_t len, char *err, size_t errlen);
/* Applies a state virtio_dev_state_check accepted; the domain is paused. */
void virtio_dev_state_load(struct virtio_dev *v, const uint8_t *in);

#endif
