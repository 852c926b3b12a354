#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "devices.h"
#include "domain.h"
#include "pvh.h"

/* KVM needs three pages of guest-physical space for its own use on Intel
 * (real-mode TSS, identity map); put them just under the BIOS area where
 * no RAM or device of ours lives. */
#define KVM_TSS_GPA          0xfffbd000ULL
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL
#define KERNEL_MAX_BYTES     (64u << 20)
#define VCPU_KICK_SIGNAL     SIGUSR1

static void kick_handler(int sig) { (void)sig; }

static int read_kernel(const char *path, uint8_t **buf, size_t *len, const struct tlog *log)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        tlog_error(log, "cannot open kernel %s: %s", path, strerror(errno));
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > KERNEL_MAX_BYTES) {
        tlog_error(log, "kernel %s is not a regular file of 1 byte to %u MiB", path,
                   KERNEL_MAX_BYTES >> 20);
        close(fd);
        return -EINVAL;
    }
    uint8_t *b = malloc(st.st_size);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, st.st_size - got);
        if (r <= 0) {
            int err = r < 0 ? -errno : -EIO;
            tlog_error(log, "reading kernel %s: %s", path, r < 0 ? strerror(errno) : "short read");
            free(b);
            close(fd);
            return err;
        }
        got += r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return 0;
}

static void uart_output(void *opaque, uint8_t byte)
{
    struct domain *d = opaque;
    if (d->on_console)
        d->on_console(d->opaque, byte);
}

static void uart_set_irq(void *opaque, bool level)
{
    struct domain *d = opaque;
    struct kvm_irq_level irq = { .irq = UART_COM1_IRQ, .level = level };
    ioctl(d->vm_fd, KVM_IRQ_LINE, &irq);
}

/* The PVH entry state: 32-bit protected mode, paging off, flat segments,
 * %ebx = start_info (Xen's docs/misc/pvh.pandoc). */
static int vcpu_set_pvh_entry(struct domain *d, struct vcpu *v, uint32_t entry, uint64_t start_info)
{
    struct kvm_sregs sr;
    if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
        goto fail;
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    struct kvm_segment data = code;
    data.selector = 0x18;
    data.type = 0x3;
    sr.cs = code;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
    sr.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = 0x20,
                                  .type = 0xb, .present = 1, .s = 0 };
    sr.cr0 = 0x11; /* PE | ET */
    sr.cr4 = 0;
    sr.efer = 0;
    if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
        goto fail;
    struct kvm_regs r = { .rip = entry, .rbx = start_info, .rflags = 0x2 };
    if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
        goto fail;
    return 0;
fail:;
    int err = errno;
    tlog_error(d->log, "vcpu%u: setting the PVH entry state: %s", v->id, strerror(err));
    return -err;
}

static int vcpu_create(struct domain *d, struct vcpu *v, unsigned id)
{
    v->d = d;
    v->id = id;
    v->fd = ioctl(d->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0) {
        int err = errno;
        tlog_error(d->log, "KVM_CREATE_VCPU %u: %s", id, strerror(err));
        v->fd = -1;
        return -err;
    }
    int sz = ioctl(d->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0)
        return -EINVAL;
    v->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        return -errno;
    }
    v->run_size = sz;
    int rc = logdirty_setup_vcpu(d, v);
    if (rc)
        return rc;
    if (id == 0) {
        int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
        d->tsc_khz = khz > 0 ? (unsigned)khz : 0;
    }
    return 0;
}

static uint64_t vcpu_rip(struct vcpu *v)
{
    struct kvm_regs r;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
        return ~0ULL;
    return r.rip;
}

/* The first vCPU to end the domain records why and parks everyone. */
static void vcpu_end_domain(struct vcpu *v, enum domain_end end, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vcpu_end_domain(struct vcpu *v, enum domain_end end, const char *fmt, ...)
{
    struct domain *d = v->d;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&d->lock);
    bool first = d->end == DOMAIN_END_NONE;
    if (first) {
        d->end = end;
        snprintf(d->end_reason, sizeof(d->end_reason), "%s", reason);
    }
    pthread_mutex_unlock(&d->lock);
    if (!first)
        return;
    /* Stop the other vCPUs where they are so a preserved domain keeps the
     * state it crashed in. */
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct vcpu *o = &d->vcpus[i];
        if (o != v && o->thread_started) {
            __atomic_store_n(&o->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
            pthread_kill(o->thread, VCPU_KICK_SIGNAL);
        }
    }
    if (d->on_end)
        d->on_end(d->opaque, end, reason);
}

static void vcpu_handle_io(struct vcpu *v)
{
    struct domain *d = v->d;
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    uint16_t port = run->io.port;

    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        bool out = run->io.direction == KVM_EXIT_IO_OUT;
        if (port >= UART_COM1_BASE && port < UART_COM1_BASE + 8 && run->io.size == 1) {
            if (out)
                uart_io_write(&d->uart, port - UART_COM1_BASE, data[0]);
            else
                data[0] = uart_io_read(&d->uart, port - UART_COM1_BASE);
        } else if (port == DOMAIN_SHUTDOWN_PORT && out) {
            switch (data[0]) {
            case 0: vcpu_end_domain(v, DOMAIN_END_POWEROFF, "guest powered off"); break;
            case 1: vcpu_end_domain(v, DOMAIN_END_REBOOT, "guest rebooted"); break;
            default:
                vcpu_end_domain(v, DOMAIN_END_CRASH, "vcpu%u: guest reported a crash (code %u) at RIP %#" PRIx64,
                                v->id, data[0], vcpu_rip(v));
                break;
            }
        } else if (!out) {
            /* Nothing here: reads float high, as on a PC's ISA bus. */
            memset(data, 0xff, run->io.size);
        }
    }
}

static void vcpu_handle_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        vcpu_handle_io(v);
        break;
    case KVM_EXIT_MMIO:
        if (run->mmio.len <= sizeof(run->mmio.data) &&
            devices_mmio(v->d, run->mmio.phys_addr, run->mmio.data, run->mmio.len, run->mmio.is_write))
            break;
        if (!run->mmio.is_write)
            memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
        if (!v->mmio_warned) {
            v->mmio_warned = true;
            tlog_warn(v->d->log, "vcpu%u: MMIO %s at %#llx with no device there (RIP %#" PRIx64 ")",
                      v->id, run->mmio.is_write ? "write" : "read",
                      (unsigned long long)run->mmio.phys_addr, vcpu_rip(v));
        }
        break;
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        break;
    case KVM_EXIT_DIRTY_RING_FULL:
        logdirty_ring_full(v->d, v);
        break;
    case KVM_EXIT_HLT:
        /* Only without an in-kernel LAPIC, which we always have. */
        break;
    case KVM_EXIT_SHUTDOWN:
        vcpu_end_domain(v, DOMAIN_END_CRASH, "vcpu%u: triple fault (KVM_EXIT_SHUTDOWN) at RIP %#" PRIx64,
                        v->id, vcpu_rip(v));
        break;
    case KVM_EXIT_INTERNAL_ERROR: {
        char bytes[64] = "";
        if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
            (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
            size_t off = 0;
            unsigned n = run->emulation_failure.insn_size;
            if (n > 15)
                n = 15;
            off += snprintf(bytes, sizeof(bytes), ", instruction bytes");
            for (unsigned i = 0; i < n && off < sizeof(bytes) - 4; i++)
                off += snprintf(bytes + off, sizeof(bytes) - off, " %02x",
                                run->emulation_failure.insn_bytes[i]);
        }
        vcpu_end_domain(v, DOMAIN_END_CRASH,
                        "vcpu%u: KVM_EXIT_INTERNAL_ERROR (%s, suberror %u) at RIP %#" PRIx64 "%s%s",
                        v->id,
                        run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? "emulation failure" : "internal error",
                        run->internal.suberror, vcpu_rip(v), bytes,
                        run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                            ? "; guests must not use SSE/x87 in ring 0 on this host" : "");
        break;
    }
    case KVM_EXIT_FAIL_ENTRY:
        vcpu_end_domain(v, DOMAIN_END_CRASH,
                        "vcpu%u: KVM_EXIT_FAIL_ENTRY (hardware reason %#llx) at RIP %#" PRIx64, v->id,
                        (unsigned long long)run->fail_entry.hardware_entry_failure_reason, vcpu_rip(v));
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            vcpu_end_domain(v, DOMAIN_END_POWEROFF, "guest powered off (system event)");
        else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            vcpu_end_domain(v, DOMAIN_END_REBOOT, "guest reset (system event)");
        else
            vcpu_end_domain(v, DOMAIN_END_CRASH, "vcpu%u: KVM system event %u at RIP %#" PRIx64, v->id,
                            run->system_event.type, vcpu_rip(v));
        break;
    default:
        vcpu_end_domain(v, DOMAIN_END_CRASH, "vcpu%u: unhandled KVM exit %u at RIP %#" PRIx64, v->id,
                        run->exit_reason, vcpu_rip(v));
        break;
    }
}

static void vcpu_throttle_sleep(struct vcpu *v);

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct domain *d = v->d;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%u", v->id);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        pthread_mutex_lock(&d->lock);
        if ((d->pause_count || d->stopping) && v->io_pending) {
            /* KVM finishes a port or MMIO instruction only on the next
             * KVM_RUN; do that now, without running the guest further,
             * so a parked vCPU's state never holds half an instruction
             * that a restored copy would execute twice. */
            pthread_mutex_unlock(&d->lock);
            __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
            ioctl(v->fd, KVM_RUN, 0);
            __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
            v->io_pending = false;
            continue;
        }
        while ((d->pause_count || d->end != DOMAIN_END_NONE) && !d->stopping) {
            if (!v->parked) {
                v->parked = true;
                pthread_cond_broadcast(&d->cond);
            }
            pthread_cond_wait(&d->cond, &d->lock);
        }
        if (d->stopping) {
            v->parked = true;
            pthread_cond_broadcast(&d->cond);
            pthread_mutex_unlock(&d->lock);
            return NULL;
        }
        v->parked = false;
        pthread_mutex_unlock(&d->lock);

        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                /* A kick: the flags it set are re-read under the lock.
                 * Entering KVM_RUN completed any earlier port access. */
                __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
                v->io_pending = false;
                vcpu_throttle_sleep(v);
                continue;
            }
            vcpu_end_domain(v, DOMAIN_END_CRASH, "vcpu%u: KVM_RUN failed: %s at RIP %#" PRIx64, v->id,
                            strerror(errno), vcpu_rip(v));
            continue;
        }
        v->io_pending = v->run->exit_reason == KVM_EXIT_IO || v->run->exit_reason == KVM_EXIT_MMIO;
        vcpu_handle_exit(v);
    }
}

#define THROTTLE_PERIOD_US 10000

/* A throttled vCPU, kicked once a period, gives up its share of it. */
static void vcpu_throttle_sleep(struct vcpu *v)
{
    unsigned pct = __atomic_load_n(&v->throttle_pct, __ATOMIC_RELAXED);
    if (pct)
        usleep(THROTTLE_PERIOD_US * pct / 100);
}

static void *throttle_thread(void *arg)
{
    struct domain *d = arg;
    pthread_setname_np(pthread_self(), "throttle");
    while (!__atomic_load_n(&d->throttle_stop, __ATOMIC_ACQUIRE)) {
        usleep(THROTTLE_PERIOD_US);
        for (unsigned i = 0; i < d->nr_vcpus; i++) {
            struct vcpu *v = &d->vcpus[i];
            if (v->thread_started && __atomic_load_n(&v->throttle_pct, __ATOMIC_RELAXED)) {
                __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
                pthread_kill(v->thread, VCPU_KICK_SIGNAL);
            }
        }
    }
    return NULL;
}

int domain_set_vcpu_throttle(struct domain *d, unsigned vcpu, unsigned pct)
{
    if (vcpu >= d->nr_vcpus || pct > 99)
        return -EINVAL;
    __atomic_store_n(&d->vcpus[vcpu].throttle_pct, pct, __ATOMIC_RELAXED);
    if (pct && !d->throttle_running) {
        d->throttle_stop = false;
        int rc = pthread_create(&d->throttle_thread, NULL, throttle_thread, d);
        if (rc)
            return -rc;
        d->throttle_running = true;
    }
    return 0;
}

int domain_set_vcpu_dirty_limit(struct domain *d, unsigned vcpu, uint64_t pages_per_sec)
{
    if (vcpu >= d->nr_vcpus)
        return -EINVAL;
    if (d->logdirty_mode != DOMAIN_LOGDIRTY_RING)
        return -EOPNOTSUPP;
    __atomic_store_n(&d->vcpus[vcpu].dirty_limit, pages_per_sec, __ATOMIC_RELAXED);
    return 0;
}

void domain_throttle_off(struct domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        __atomic_store_n(&d->vcpus[i].throttle_pct, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&d->vcpus[i].dirty_limit, 0, __ATOMIC_RELAXED);
    }
    /* A vCPU waiting out its dirty limit goes on at once. */
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (d->throttle_running) {
        __atomic_store_n(&d->throttle_stop, true, __ATOMIC_RELEASE);
        pthread_join(d->throttle_thread, NULL);
        d->throttle_running = false;
    }
}

/* Makes every running vCPU leave KVM_RUN and look at the flags again.  The
 * caller has changed them under the lock before calling. */
static void domain_kick_all(struct domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct vcpu *v = &d->vcpus[i];
        if (!v->thread_started)
            continue;
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
    }
}

static bool all_parked(struct domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (d->vcpus[i].thread_started && !d->vcpus[i].parked)
            return false;
    return true;
}

void domain_pause(struct domain *d)
{
    pthread_mutex_lock(&d->lock);
    d->pause_count++;
    pthread_cond_broadcast(&d->cond); /* wakes vCPUs waiting out a dirty limit */
    pthread_mutex_unlock(&d->lock);
    domain_kick_all(d);
    pthread_mutex_lock(&d->lock);
    while (!all_parked(d))
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
    /* Then the devices: with the vCPUs parked no new request comes; each
     * device finishes the one it is doing (completed into its used ring,
     * so marked dirty before a final harvest) and then stays out of guest
     * memory.  vCPUs first, so none waits in an MMIO access for a device
     * that is already held. */
    devices_pause(d);
}

void domain_unpause(struct domain *d)
{
    pthread_mutex_lock(&d->lock);
    bool was_paused = d->pause_count > 0;
    if (d->pause_count)
        d->pause_count--;
    pthread_mutex_unlock(&d->lock);
    if (was_paused)
        devices_unpause(d);
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

bool domain_is_paused(struct domain *d)
{
    pthread_mutex_lock(&d->lock);
    bool p = d->pause_count > 0;
    pthread_mutex_unlock(&d->lock);
    return p;
}

int domain_start_vcpus(struct domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct vcpu *v = &d->vcpus[i];
        int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
        if (rc) {
            tlog_error(d->log, "starting vcpu%u thread: %s", i, strerror(rc));
            return -rc;
        }
        v->thread_started = true;
    }
    return 0;
}

void domain_destroy(struct domain *d)
{
    if (!d)
        return;
    domain_throttle_off(d);
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    domain_kick_all(d);
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct vcpu *v = &d->vcpus[i];
        if (v->thread_started)
            pthread_join(v->thread, NULL);
        if (v->run)
            munmap(v->run, v->run_size);
        if (v->fd >= 0) {
            logdirty_teardown_vcpu(d, v);
            close(v->fd);
        }
        pthread_mutex_destroy(&v->ring_lock);
    }
    /* After the vCPUs (one may wait in an MMIO access for its device),
     * before the VM (the devices' ioeventfds and irqfds are on it). */
    devices_destroy(d);
    free(d->vcpus);
    free(d->host_max);
    free(d->logdirty_pending);
    pthread_mutex_destroy(&d->logdirty_lock);
    if (d->vm_fd >= 0)
        close(d->vm_fd);
    if (d->kvm_fd >= 0)
        close(d->kvm_fd);
    guest_memory_free(&d->mem);
    uart_destroy(&d->uart);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static int kvm_vm_ioctl(struct domain *d, unsigned long req, unsigned long arg, const char *what)
{
    if (ioctl(d->vm_fd, req, arg) < 0) {
        int err = errno;
        tlog_error(d->log, "%s: %s", what, strerror(err));
        return -err;
    }
    return 0;
}

int domain_create(struct domain **out, const struct domain_config *cfg, bool for_restore,
                  const struct cpu_overrides *host_mask,
                  void (*on_end)(void *, enum domain_end, const char *),
                  void (*on_console)(void *, uint8_t), void *opaque,
                  const struct tlog *log)
{
    return domain_create_as(out, 0, cfg, for_restore, host_mask, on_end, on_console, opaque, log);
}

int domain_create_as(struct domain **out, unsigned domid, const struct domain_config *cfg, bool for_restore,
                     const struct cpu_overrides *host_mask,
                     void (*on_end)(void *, enum domain_end, const char *),
                     void (*on_console)(void *, uint8_t), void *opaque,
                     const struct tlog *log)
{
    int rc;
    uint8_t *kernel = NULL;
    size_t kernel_len = 0;

    *out = NULL;
    rc = domain_config_check(cfg, log);
    if (rc)
        return rc;
    if (!for_restore) {
        rc = read_kernel(cfg->kernel, &kernel, &kernel_len, log);
        if (rc)
            return rc;
    }

    struct domain *d = calloc(1, sizeof(*d));
    if (!d) {
        free(kernel);
        return -ENOMEM;
    }
    d->cfg = *cfg;
    d->domid = domid;
    d->log = log;
    d->kvm_fd = d->vm_fd = -1;
    d->on_end = on_end;
    d->on_console = on_console;
    d->opaque = opaque;
    d->pause_count = 1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    pthread_mutex_init(&d->logdirty_lock, NULL);
    uart_init(&d->uart, uart_output, uart_set_irq, d);

    /* vCPU kicks must interrupt KVM_RUN, so no SA_RESTART. */
    struct sigaction sa = { .sa_handler = kick_handler };
    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);

    d->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (d->kvm_fd < 0) {
        rc = -errno;
        tlog_error(log, "cannot open /dev/kvm: %s", strerror(errno));
        goto fail;
    }
    if (ioctl(d->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        tlog_error(log, "/dev/kvm speaks an API version other than %d", KVM_API_VERSION);
        rc = -ENOTSUP;
        goto fail;
    }
    d->vm_fd = ioctl(d->kvm_fd, KVM_CREATE_VM, 0);
    if (d->vm_fd < 0) {
        rc = -errno;
        tlog_error(log, "KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    /* Best effort: only Intel's VMX needs them, and some hosts refuse. */
    ioctl(d->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA);
    uint64_t idmap = KVM_IDENTITY_MAP_GPA;
    ioctl(d->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
    if ((rc = kvm_vm_ioctl(d, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP")))
        goto fail;
    struct kvm_pit_config pit = { .flags = 0 };
    if ((rc = kvm_vm_ioctl(d, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2")))
        goto fail;
    if ((rc = logdirty_setup_vm(d, cfg->log_dirty, cfg->log_dirty_ring)))
        goto fail;

    rc = guest_memory_alloc(&d->mem, cfg->memory_mb << 20);
    if (rc) {
        tlog_error(log, "cannot map %llu MiB of guest memory: %s",
                   (unsigned long long)cfg->memory_mb, strerror(-rc));
        goto fail;
    }
    for (unsigned i = 0; i < d->mem.nr_regions; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = i, .guest_phys_addr = d->mem.region[i].gpa,
            .memory_size = d->mem.region[i].size,
            .userspace_addr = (uintptr_t)d->mem.region[i].host,
        };
        if ((rc = kvm_vm_ioctl(d, KVM_SET_USER_MEMORY_REGION, (unsigned long)&r,
                               "KVM_SET_USER_MEMORY_REGION")))
            goto fail;
    }

    d->vcpus = calloc(cfg->vcpus, sizeof(*d->vcpus));
    if (!d->vcpus) {
        rc = -ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < cfg->vcpus; i++) {
        d->vcpus[i].fd = -1;
        pthread_mutex_init(&d->vcpus[i].ring_lock, NULL);
    }
    d->nr_vcpus = cfg->vcpus;
    for (unsigned i = 0; i < cfg->vcpus; i++)
        if ((rc = vcpu_create(d, &d->vcpus[i], i)))
            goto fail;
    if ((rc = domain_setup_cpu_policy(d, host_mask)))
        goto fail;
    if ((rc = devices_create(d, domid, for_restore)))
        goto fail;
    if (for_restore) {
        *out = d;
        return 0;
    }

    struct pvh_image img;
    struct tlog_buffer why;
    tlog_buffer_init(&why);
    rc = pvh_load_elf(kernel, kernel_len, &d->mem, &img, &why.log);
    if (rc) {
        tlog_error(log, "kernel %s cannot be booted: %s", cfg->kernel, why.last);
        goto fail;
    }
    /* The guest learns how many vCPUs to bring up, and where its devices
     * are, from its command line. */
    char cmdline[sizeof(cfg->cmdline) + 32 + 48 * VIRTIO_MMIO_MAX_DEVICES];
    snprintf(cmdline, sizeof(cmdline), "%s%sncpus=%u", cfg->cmdline,
             cfg->cmdline[0] ? " " : "", cfg->vcpus);
    if ((rc = devices_append_cmdline(cfg, cmdline, sizeof(cmdline))))
        goto fail;
    int64_t si = pvh_build_start_info(&d->mem, cmdline, log);
    if (si < 0) {
        rc = (int)si;
        goto fail;
    }

    if ((rc = vcpu_set_pvh_entry(d, &d->vcpus[0], img.entry, (uint64_t)si)))
        goto fail;

    free(kernel);
    *out = d;
    return 0;
fail:
    free(kernel);
    domain_destroy(d);
    return rc;
}

unsigned domain_ram_regions(struct domain *d, struct domain_ram_region out[2])
{
    for (unsigned i = 0; i < d->mem.nr_regions; i++)
        out[i] = (struct domain_ram_region){ .gpa = d->mem.region[i].gpa, .size = d->mem.region[i].size,
                                             .host = d->mem.region[i].host };
    return d->mem.nr_regions;
}

uint64_t domain_max_pfn(struct domain *d)
{
    const struct guest_region *last = &d->mem.region[d->mem.nr_regions - 1];
    return (last->gpa + last->size) / GUEST_PAGE_SIZE;
}

unsigned domain_nr_vcpus(struct domain *d)
{
    return d->nr_vcpus;
}

unsigned domain_nr_virtio_devices(struct domain *d)
{
    return d->cfg.nr_vifs + d->cfg.nr_disks;
}

/* Device state blob: the models in a fixed order (the UART, then each
 * virtio device in slot order), each as {u32 id, u32 version, u32 length,
 * state}, so later models can be added without breaking older images.
 * Layout in docs/stream-extensions.md. */
int domain_get_device_state(struct domain *d, uint8_t **blob, size_t *len, const struct tlog *log)
{
    struct uart_state us;
    uart_save(&d->uart, &us);
    unsigned ndev = d->devs ? d->devs->n : 0;
    size_t n = DEVSTATE_HDR + sizeof(us);
    for (unsigned i = 0; i < ndev; i++)
        n += DEVSTATE_HDR + virtio_dev_state_size(d->devs->dev[i]);
    uint8_t *b = calloc(1, n);
    if (!b)
        return -ENOMEM;
    size_t off = 0;
    devstate_put_header(b, DEVSTATE_UART, DEVSTATE_UART_VERSION, sizeof(us));
    memcpy(b + DEVSTATE_HDR, &us, sizeof(us));
    off = DEVSTATE_HDR + sizeof(us);
    for (unsigned i = 0; i < ndev; i++) {
        struct virtio_dev *v = d->devs->dev[i];
        size_t sz = virtio_dev_state_size(v);
        devstate_put_header(b + off, devstate_model_of(v), DEVSTATE_VIRTIO_VERSION, (uint32_t)sz);
        int rc = virtio_dev_state_save(v, b + off + DEVSTATE_HDR, log);
        if (rc) {
            free(b);
            return rc;
        }
        off += DEVSTATE_HDR + sz;
    }
    *blob = b;
    *len = n;
    return 0;
}

static const char *model_name(uint32_t id)
{
    return id == DEVSTATE_VIRTIO_NET ? "virtio-net" : id == DEVSTATE_VIRTIO_BLK ? "virtio-blk" : "UART";
}

int domain_set_device_state(struct domain *d, const uint8_t *blob, size_t len, const struct tlog *log)
{
    struct devstate_model m[DEVSTATE_MAX_MODELS];
    const struct devstate_model *virtio[VIRTIO_MMIO_MAX_DEVICES];
    unsigned nm = 0, nvirtio = 0, ndev = d->devs ? d->devs->n : 0;
    const struct devstate_model *uart = NULL;
    char err[300];
    struct uart_state us;
    /* Validate the whole blob against this domain before changing any
     * device. */
    if (devstate_parse(blob, len, m, DEVSTATE_MAX_MODELS, &nm, err, sizeof(err))) {
        tlog_error(log, "device state: %s", err);
        return -EINVAL;
    }
    for (unsigned i = 0; i < nm; i++) {
        if (m[i].id == DEVSTATE_UART) {
            if (m[i].version != DEVSTATE_UART_VERSION || m[i].length != sizeof(us) || uart) {
                tlog_error(log, "device state: bad or repeated UART state (version %u, %u bytes)", m[i].version,
                           m[i].length);
                return -EINVAL;
            }
            uart = &m[i];
        } else if (m[i].id == DEVSTATE_VIRTIO_NET || m[i].id == DEVSTATE_VIRTIO_BLK) {
            if (m[i].version != DEVSTATE_VIRTIO_VERSION) {
                tlog_error(log, "device state: %s state version %u; this Tandem reads version %u",
                           model_name(m[i].id), m[i].version, DEVSTATE_VIRTIO_VERSION);
                return -EINVAL;
            }
            if (nvirtio == VIRTIO_MMIO_MAX_DEVICES) {
                tlog_error(log, "device state: more than %d virtio devices", VIRTIO_MMIO_MAX_DEVICES);
                return -EINVAL;
            }
            virtio[nvirtio++] = &m[i];
        } else {
            tlog_error(log, "device state: unknown device model %u", m[i].id);
            return -EINVAL;
        }
    }
    if (nvirtio != ndev) {
        tlog_error(log, "device state: the image holds %u virtio devices, this domain has %u (the config's vif= "
                   "and disk= must be the guest's)", nvirtio, ndev);
        return -EINVAL;
    }
    for (unsigned i = 0; i < nvirtio; i++) {
        struct virtio_dev *v = d->devs->dev[i];
        if (virtio[i]->id != devstate_model_of(v)) {
            tlog_error(log, "device state: device %u of the guest is %s, of this domain %s", i,
                       model_name(virtio[i]->id), model_name(devstate_model_of(v)));
            return -EINVAL;
        }
        if (virtio_dev_state_check(v, virtio[i]->body, virtio[i]->length, err, sizeof(err))) {
            tlog_error(log, "device state: %s (device %u): %s", v->name, i, err);
            return -EINVAL;
        }
    }
    if (uart) {
        memcpy(&us, uart->body, sizeof(us));
        uart_load(&d->uart, &us);
    }
    for (unsigned i = 0; i < nvirtio; i++)
        virtio_dev_state_load(d->devs->dev[i], virtio[i]->body);
    return 0;
}
