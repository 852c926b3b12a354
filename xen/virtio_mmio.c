/* virtio-mmio version 2 transport: register file, handshake, interrupts,
 * the device thread, and the transport's part of the migration state.
 * See virtio_mmio.h for the threading rules. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "virtio_mmio.h"

#define FAILURES_LOGGED 8     /* then only every power of two: a guest may loop */

static void signal_fd(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) { /* saturated: already signalled */ }
}

static void drain_fd(int fd)
{
    uint64_t v;
    if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) { /* nothing pending */ }
}

/* ---- Interrupts --------------------------------------------------------- */

static void pulse_irq(struct virtio_dev *v)
{
    if (v->irq_fd >= 0) {
        signal_fd(v->irq_fd);
    } else if (v->env.vm_fd >= 0) {
        /* An edge on the IOAPIC pin, as KVM_IRQFD would make it. */
        struct kvm_irq_level l = { .irq = v->gsi, .level = 1 };
        ioctl(v->env.vm_fd, KVM_IRQ_LINE, &l);
        l.level = 0;
        ioctl(v->env.vm_fd, KVM_IRQ_LINE, &l);
    } else if (v->env.raise_irq) {
        v->env.raise_irq(v->env.opaque, v->gsi);
    }
}

/* Called with the lock held. */
static void interrupt_locked(struct virtio_dev *v, uint32_t bits)
{
    v->interrupt_status |= bits;
    pulse_irq(v);
}

void virtio_dev_notify_used(struct virtio_dev *v, unsigned q)
{
    if (!vq_wants_interrupt(&v->vq[q]))
        return;
    pthread_mutex_lock(&v->lock);
    interrupt_locked(v, VIRTIO_INT_USED_BUFFER);
    pthread_mutex_unlock(&v->lock);
}

/* ---- Failure: DEVICE_NEEDS_RESET ---------------------------------------- */

static void fail_locked(struct virtio_dev *v, const char *why)
{
    v->failures++;
    if (v->failures <= FAILURES_LOGGED || !(v->failures & (v->failures - 1)))
        tlog_error(v->env.log, "%s (device %u at %#" PRIx64 "): %s; the device needs a reset (failure %llu)",
                   v->name, v->index, v->base, why, v->failures);
    bool was_live = v->status & VIRTIO_STATUS_DRIVER_OK;
    v->status |= VIRTIO_STATUS_NEEDS_RESET;
    /* The spec asks for a configuration change notification when the
     * driver is live; before that, the driver finds the bit when it next
     * reads Status. */
    if (was_live)
        interrupt_locked(v, VIRTIO_INT_CONFIG);
    else
        v->interrupt_status |= VIRTIO_INT_CONFIG;
}

void virtio_dev_fail(struct virtio_dev *v, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&v->lock);
    fail_locked(v, why);
    pthread_mutex_unlock(&v->lock);
}

static bool live_locked(const struct virtio_dev *v)
{
    const uint32_t ok = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK;
    return (v->status & ok) == ok && !(v->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

/* ---- Holding the thread ------------------------------------------------- */

bool virtio_dev_held(struct virtio_dev *v)
{
    return __atomic_load_n(&v->pause_depth, __ATOMIC_ACQUIRE) || __atomic_load_n(&v->holds, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&v->stop, __ATOMIC_ACQUIRE);
}

/* With the lock held: wait until the thread is outside run() and keep it
 * there. */
static void hold_enter(struct virtio_dev *v)
{
    __atomic_add_fetch(&v->holds, 1, __ATOMIC_RELEASE);
    signal_fd(v->ctl_fd);
    while (v->in_run)
        pthread_cond_wait(&v->cond, &v->lock);
}

static void hold_exit(struct virtio_dev *v)
{
    if (__atomic_sub_fetch(&v->holds, 1, __ATOMIC_RELEASE) == 0) {
        pthread_cond_broadcast(&v->cond);
        signal_fd(v->ctl_fd);
    }
}

void virtio_dev_pause(struct virtio_dev *v)
{
    pthread_mutex_lock(&v->lock);
    __atomic_add_fetch(&v->pause_depth, 1, __ATOMIC_RELEASE);
    signal_fd(v->ctl_fd);
    while (v->in_run)
        pthread_cond_wait(&v->cond, &v->lock);
    pthread_mutex_unlock(&v->lock);
}

void virtio_dev_unpause(struct virtio_dev *v)
{
    pthread_mutex_lock(&v->lock);
    if (v->pause_depth && __atomic_sub_fetch(&v->pause_depth, 1, __ATOMIC_RELEASE) == 0) {
        pthread_cond_broadcast(&v->cond);
        signal_fd(v->ctl_fd);
    }
    pthread_mutex_unlock(&v->lock);
}

void virtio_dev_kick(struct virtio_dev *v, unsigned q)
{
    if (q < v->nr_queues)
        signal_fd(v->kick_fd[q]);
}

/* ---- The device thread -------------------------------------------------- */

static void *device_thread(void *arg)
{
    struct virtio_dev *v = arg;
    char tname[16];
    snprintf(tname, sizeof(tname), "virtio%u", v->index);
    pthread_setname_np(pthread_self(), tname);

    pthread_mutex_lock(&v->lock);
    for (;;) {
        while (!v->stop && (v->pause_depth || v->holds))
            pthread_cond_wait(&v->cond, &v->lock);
        if (v->stop)
            break;
        bool live = live_locked(v);
        if (v->reraise_irq) {
            /* After a restore: an interrupt the source raised may have
             * been in flight inside KVM when its state was read. */
            v->reraise_irq = false;
            if (v->interrupt_status)
                pulse_irq(v);
        }
        v->in_run = true;
        pthread_mutex_unlock(&v->lock);

        v->ops->run(v, live);
        struct pollfd fds[8];
        unsigned n = 0;
        int timeout = -1;
        fds[n++] = (struct pollfd){ .fd = v->ctl_fd, .events = POLLIN };
        for (unsigned q = 0; q < v->nr_queues; q++)
            if (live)
                fds[n++] = (struct pollfd){ .fd = v->kick_fd[q], .events = POLLIN };
        if (v->ops->wait_fds)
            n += v->ops->wait_fds(v, live, fds + n, 8 - n, &timeout);

        pthread_mutex_lock(&v->lock);
        v->in_run = false;
        pthread_cond_broadcast(&v->cond);
        bool wait = !v->stop && !v->pause_depth && !v->holds;
        pthread_mutex_unlock(&v->lock);
        /* Outside run(): a pause or reset may go ahead while we wait. */
        if (wait && poll(fds, n, timeout) < 0 && errno != EINTR)
            usleep(1000);
        drain_fd(v->ctl_fd);
        for (unsigned q = 0; q < v->nr_queues; q++)
            drain_fd(v->kick_fd[q]);
        pthread_mutex_lock(&v->lock);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* ---- Setup and teardown ------------------------------------------------- */

int virtio_dev_init(struct virtio_dev *v, const struct virtio_env *env, unsigned index, uint32_t device_id,
                    uint64_t device_features, unsigned nr_queues, const struct virtio_queue_setup *qs,
                    const struct virtio_dev_ops *ops, void *priv, const char *name)
{
    memset(v, 0, sizeof(*v));
    v->irq_fd = v->ctl_fd = -1;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        v->kick_fd[q] = -1;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->ops = ops;
    v->priv = priv;
    v->env = *env;
    if (index >= VIRTIO_MMIO_MAX_DEVICES || nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES)
        return -EINVAL;
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->index = index;
    v->base = VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_SIZE;
    v->gsi = VIRTIO_MMIO_GSI_BASE + index;
    v->device_id = device_id;
    v->device_features = device_features | VIRTIO_F_VERSION_1;
    v->nr_queues = nr_queues;
    v->pause_depth = 1;
    for (unsigned q = 0; q < nr_queues; q++) {
        v->qsetup[q] = qs[q];
        v->vq[q].max_chain_bytes = qs[q].max_chain_bytes;
        vq_reset(&v->vq[q]);
    }
    v->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->ctl_fd < 0)
        return -errno;
    for (unsigned q = 0; q < nr_queues; q++) {
        v->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (v->kick_fd[q] < 0)
            return -errno;
    }
    return 0;
}

static int set_ioeventfd(struct virtio_dev *v, unsigned q, bool assign)
{
    struct kvm_ioeventfd io = {
        .datamatch = q, .addr = v->base + VIRTIO_MMIO_QUEUE_NOTIFY, .len = 4, .fd = v->kick_fd[q],
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    return ioctl(v->env.vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int virtio_dev_start(struct virtio_dev *v)
{
    if (v->env.vm_fd >= 0) {
        for (unsigned q = 0; q < v->nr_queues; q++) {
            int rc = set_ioeventfd(v, q, true);
            v->ioeventfd[q] = rc == 0;
            if (rc)
                tlog_warn(v->env.log, "%s: KVM_IOEVENTFD for queue %u refused (%s); notifications go through "
                          "MMIO exits", v->name, q, strerror(-rc));
        }
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct kvm_irqfd irq = { .fd = (uint32_t)fd, .gsi = v->gsi };
        if (fd >= 0 && ioctl(v->env.vm_fd, KVM_IRQFD, &irq) == 0) {
            v->irq_fd = fd;
        } else {
            tlog_warn(v->env.log, "%s: KVM_IRQFD on GSI %u refused (%s); interrupts go through KVM_IRQ_LINE",
                      v->name, v->gsi, strerror(errno));
            if (fd >= 0)
                close(fd);
        }
    }
    int rc = pthread_create(&v->thread, NULL, device_thread, v);
    if (rc) {
        tlog_error(v->env.log, "%s: starting its thread: %s", v->name, strerror(rc));
        return -rc;
    }
    v->thread_started = true;
    return 0;
}

void virtio_dev_destroy(struct virtio_dev *v)
{
    if (v->thread_started) {
        pthread_mutex_lock(&v->lock);
        __atomic_store_n(&v->stop, true, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&v->cond);
        signal_fd(v->ctl_fd);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
        v->thread_started = false;
    }
    if (v->env.vm_fd >= 0) {
        for (unsigned q = 0; q < v->nr_queues; q++)
            if (v->ioeventfd[q])
                set_ioeventfd(v, q, false);
        if (v->irq_fd >= 0) {
            struct kvm_irqfd irq = { .fd = (uint32_t)v->irq_fd, .gsi = v->gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };
            ioctl(v->env.vm_fd, KVM_IRQFD, &irq);
        }
    }
    if (v->irq_fd >= 0)
        close(v->irq_fd);
    if (v->ctl_fd >= 0)
        close(v->ctl_fd);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        if (v->kick_fd[q] >= 0)
            close(v->kick_fd[q]);
    v->irq_fd = v->ctl_fd = -1;
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->lock);
    /* Last: it may free the structure v lives in. */
    if (v->ops && v->ops->destroy)
        v->ops->destroy(v);
}

/* ---- Register file ------------------------------------------------------ */

/* Status=0: every register and queue back to its initial state.  The
 * thread is held. */
static void reset_locked(struct virtio_dev *v)
{
    v->status = 0;
    v->device_features_sel = v->driver_features_sel = v->queue_sel = 0;
    v->driver_features = 0;
    v->interrupt_status = 0;
    for (unsigned q = 0; q < v->nr_queues; q++)
        vq_reset(&v->vq[q]);
}

static void write_status(struct virtio_dev *v, uint32_t val)
{
    if (val == 0) {
        reset_locked(v);
        return;
    }
    uint32_t old = v->status, new = val & 0xff;
    if ((new & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t extra = v->driver_features & ~v->device_features;
        if (extra || !(v->driver_features & VIRTIO_F_VERSION_1)) {
            /* The driver learns it from Status reading back without
             * FEATURES_OK; nothing else is wrong with the device. */
            tlog_warn(v->env.log, "%s: driver features %#" PRIx64 " refused (%s)", v->name, v->driver_features,
                      extra ? "it asks for features not offered" : "VIRTIO_F_VERSION_1 not accepted");
            new &= ~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    new |= old & VIRTIO_STATUS_NEEDS_RESET;   /* only a reset clears it */
    v->status = new;
}

static uint32_t read_reg(struct virtio_dev *v, uint64_t off)
{
    struct virtqueue *q = v->queue_sel < v->nr_queues ? &v->vq[v->queue_sel] : NULL;
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return 2;
    case VIRTIO_MMIO_DEVICE_ID: return v->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return v->device_features_sel == 0 ? (uint32_t)v->device_features
             : v->device_features_sel == 1 ? (uint32_t)(v->device_features >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? VQ_MAX_SIZE : 0;
    case VIRTIO_MMIO_QUEUE_NUM: return q ? q->num : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return v->interrupt_status;
    case VIRTIO_MMIO_STATUS: return v->status;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? (uint32_t)q->desc_gpa : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return q ? (uint32_t)q->avail_gpa : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return q ? (uint32_t)q->used_gpa : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return q ? (uint32_t)(q->used_gpa >> 32) : 0;
    case VIRTIO_MMIO_CONFIG_GENERATION: return v->config_generation;
    default: return 0;   /* write-only or reserved */
    }
}

static void set_half(uint64_t *addr, bool high, uint32_t val)
{
    *addr = high ? (*addr & 0xffffffffULL) | ((uint64_t)val << 32) : (*addr & ~0xffffffffULL) | val;
}

/* Registers that change what the thread works on: the thread is held. */
static void write_queue_reg(struct virtio_dev *v, uint64_t off, uint32_t val)
{
    if (v->queue_sel >= v->nr_queues)
        return;  /* no such queue: QueueNumMax told the driver so */
    struct virtqueue *q = &v->vq[v->queue_sel];
    if (off == VIRTIO_MMIO_QUEUE_READY) {
        if (!(val & 1)) {
            q->ready = false;
            return;
        }
        if (q->ready)
            return;
        char err[200];
        if (vq_map(q, v->env.mem, err, sizeof(err))) {
            char why[260];
            snprintf(why, sizeof(why), "queue %u: %s", v->queue_sel, err);
            fail_locked(v, why);
            return;
        }
        q->last_avail_idx = q->used_idx = 0;
        q->ready = true;
        return;
    }
    if (q->ready)
        return;  /* the spec forbids changing a live queue; ignore it */
    switch (off) {
    case VIRTIO_MMIO_QUEUE_NUM: q->num = val > 0xffff ? 0 : (uint16_t)val; break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: set_half(&q->desc_gpa, false, val); break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_half(&q->desc_gpa, true, val); break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW: set_half(&q->avail_gpa, false, val); break;
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: set_half(&q->avail_gpa, true, val); break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW: set_half(&q->used_gpa, false, val); break;
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: set_half(&q->used_gpa, true, val); break;
    }
}

static void write_reg(struct virtio_dev *v, uint64_t off, uint32_t val)
{
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: v->device_features_sel = val; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (v->status & VIRTIO_STATUS_FEATURES_OK)
            break;  /* negotiation is over */
        if (v->driver_features_sel == 0)
            v->driver_features = (v->driver_features & ~0xffffffffULL) | val;
        else if (v->driver_features_sel == 1)
            v->driver_features = (v->driver_features & 0xffffffffULL) | ((uint64_t)val << 32);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: v->driver_features_sel = val; break;
    case VIRTIO_MMIO_QUEUE_SEL: v->queue_sel = val; break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Only without KVM_IOEVENTFD (or for an index it does not match). */
        if (val < v->nr_queues)
            signal_fd(v->kick_fd[val]);
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK: v->interrupt_status &= ~val; break;
    case VIRTIO_MMIO_STATUS:
    case VIRTIO_MMIO_QUEUE_NUM:
    case VIRTIO_MMIO_QUEUE_READY:
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        hold_enter(v);
        if (off == VIRTIO_MMIO_STATUS)
            write_status(v, val);
        else
            write_queue_reg(v, off, val);
        hold_exit(v);
        break;
    default:
        break;   /* read-only or reserved: ignored, as the spec asks */
    }
}

void virtio_mmio_access(struct virtio_dev *v, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
    pthread_mutex_lock(&v->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        unsigned coff = (unsigned)(off - VIRTIO_MMIO_CONFIG);
        if (!is_write) {
            memset(data, 0, len);
            if ((len == 1 || len == 2 || len == 4) && coff < v->ops->config_size &&
                len <= v->ops->config_size - coff)
                v->ops->config_read(v, coff, data, len);
        }
    } else if (len != 4 || off % 4) {
        if (!is_write)
            memset(data, 0, len);
        if (!v->warned_access) {
            v->warned_access = true;
            tlog_warn(v->env.log, "%s: %u-byte %s at register %#" PRIx64 " ignored (registers take 32-bit "
                      "accesses)", v->name, len, is_write ? "write" : "read", off);
        }
    } else if (is_write) {
        uint32_t val;
        memcpy(&val, data, 4);
        write_reg(v, off, val);
    } else {
        uint32_t val = read_reg(v, off);
        memcpy(data, &val, 4);
    }
    pthread_mutex_unlock(&v->lock);
}

/* ---- Migration state ---------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

size_t virtio_dev_state_size(const struct virtio_dev *v)
{
    return VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * v->nr_queues + v->ops->state_size;
}

int virtio_dev_state_save(struct virtio_dev *v, uint8_t *out, const struct tlog *log)
{
    memset(out, 0, virtio_dev_state_size(v));
    pthread_mutex_lock(&v->lock);
    put32(out + 0, v->index);
    put32(out + 4, v->device_id);
    put32(out + 8, v->status);
    put32(out + 12, v->device_features_sel);
    put32(out + 16, v->driver_features_sel);
    put32(out + 20, v->queue_sel);
    put64(out + 24, v->driver_features);
    put32(out + 32, v->interrupt_status);
    put32(out + 36, v->config_generation);
    put32(out + 40, v->nr_queues);
    for (unsigned i = 0; i < v->nr_queues; i++) {
        const struct virtqueue *q = &v->vq[i];
        uint8_t *p = out + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * i;
        put32(p + 0, q->num);
        put32(p + 4, q->ready);
        put64(p + 8, q->desc_gpa);
        put64(p + 16, q->avail_gpa);
        put64(p + 24, q->used_gpa);
        put16(p + 32, q->last_avail_idx);
        put16(p + 34, q->used_idx);
    }
    pthread_mutex_unlock(&v->lock);
    uint8_t *dev = out + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * v->nr_queues;
    return v->ops->state_save ? v->ops->state_save(v, dev, log) : 0;
}

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int virtio_dev_state_check(struct virtio_dev *v, const uint8_t *in, size_t len, char *err, size_t errlen)
{
    if (len != virtio_dev_state_size(v))
        return bad(err, errlen, "%zu bytes of state, %zu expected", len, virtio_dev_state_size(v));
    uint32_t index = get32(in), id = get32(in + 4), status = get32(in + 8), nq = get32(in + 40);
    uint64_t drv = get64(in + 24);
    uint32_t isr = get32(in + 32);
    if (index != v->index)
        return bad(err, errlen, "state of device slot %u, this is slot %u", index, v->index);
    if (id != v->device_id)
        return bad(err, errlen, "state of a device of type %u, this one is type %u", id, v->device_id);
    if (nq != v->nr_queues)
        return bad(err, errlen, "state has %u queues, this device has %u", nq, v->nr_queues);
    if (status & ~VIRTIO_STATUS_KNOWN)
        return bad(err, errlen, "status %#x has unknown bits", status);
    if ((status & VIRTIO_STATUS_FEATURES_OK) &&
        ((drv & ~v->device_features) || !(drv & VIRTIO_F_VERSION_1)))
        return bad(err, errlen, "negotiated features %#" PRIx64 " are not a subset of this device's %#" PRIx64
                   " with VERSION_1", drv, v->device_features);
    if (isr & ~(VIRTIO_INT_USED_BUFFER | VIRTIO_INT_CONFIG))
        return bad(err, errlen, "interrupt status %#x has unknown bits", isr);
    if (get32(in + 44))
        return bad(err, errlen, "reserved header word is not zero");
    for (unsigned i = 0; i < nq; i++) {
        const uint8_t *p = in + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * i;
        uint32_t num = get32(p), ready = get32(p + 4);
        if (num > 0xffff || ready > 1 || get32(p + 36))
            return bad(err, errlen, "queue %u: size %u, ready %u or reserved word out of range", i, num, ready);
        if (!ready)
            continue;
        struct virtqueue q = { .num = (uint16_t)num, .desc_gpa = get64(p + 8), .avail_gpa = get64(p + 16),
                               .used_gpa = get64(p + 24) };
        char why[200];
        if (vq_map(&q, v->env.mem, why, sizeof(why)))
            return bad(err, errlen, "queue %u: %s", i, why);
        uint16_t last_avail = get16(p + 32), used = get16(p + 34);
        /* Every request a device takes is completed before a pause
         * returns, so nothing can be in flight in a saved state. */
        if (last_avail != used)
            return bad(err, errlen, "queue %u: %u requests in flight (avail %u, used %u)", i,
                       (uint16_t)(last_avail - used), last_avail, used);
    }
    if (v->ops->state_check)
        return v->ops->state_check(v, in + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * nq, err, errlen);
    return 0;
}

void virtio_dev_state_load(struct virtio_dev *v, const uint8_t *in)
{
    pthread_mutex_lock(&v->lock);
    v->status = get32(in + 8);
    v->device_features_sel = get32(in + 12);
    v->driver_features_sel = get32(in + 16);
    v->queue_sel = get32(in + 20);
    v->driver_features = get64(in + 24);
    v->interrupt_status = get32(in + 32);
    v->config_generation = get32(in + 36);
    for (unsigned i = 0; i < v->nr_queues; i++) {
        const uint8_t *p = in + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * i;
        struct virtqueue *q = &v->vq[i];
        vq_reset(q);
        q->num = (uint16_t)get32(p);
        q->desc_gpa = get64(p + 8);
        q->avail_gpa = get64(p + 16);
        q->used_gpa = get64(p + 24);
        q->last_avail_idx = get16(p + 32);
        q->used_idx = get16(p + 34);
        q->ready = get32(p + 4) && vq_map(q, v->env.mem, NULL, 0) == 0;  /* checked already */
        if (q->ready) {
            uint16_t guest_used = __atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_RELAXED);
            if (guest_used != q->used_idx)
                tlog_warn(v->env.log, "%s: queue %u: the used ring's idx in guest memory is %u, the device's %u "
                          "(a page the source wrote did not arrive?)", v->name, i, guest_used, q->used_idx);
        }
    }
    v->reraise_irq = true;
    pthread_mutex_unlock(&v->lock);
    if (v->ops->state_load)
        v->ops->state_load(v, in + VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE * v->nr_queues);
}
