/* Log-dirty: which guest pages changed since the last look.
 *
 * The default is KVM's dirty ring, one per vCPU, harvested and reset as
 * Intel's PML log is: the cost of a harvest grows with the pages dirtied,
 * not with the guest's size, and each entry says which vCPU dirtied the
 * page, which gives per-vCPU dirty rates for throttling.  Where the ring
 * is missing, the per-slot dirty bitmap with manual re-protection is the
 * fallback.  KVM makes the choice permanent for a VM (the ring must be on
 * before any vCPU exists), so it is made when the domain is created. */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#include "domain.h"

enum domain_logdirty_mode domain_logdirty_mode(struct domain *d)
{
    return d->logdirty_mode;
}

/* Called before any vCPU exists: picks the mode and turns the ring on. */
int logdirty_setup_vm(struct domain *d, enum domain_logdirty_mode want, unsigned ring_entries)
{
    int acq_rel = ioctl(d->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
    int max = ioctl(d->vm_fd, KVM_CHECK_EXTENSION,
                    acq_rel > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING);
    /* A size asked for (log_dirty_ring) is a promise about the cost of
     * tracking: a host that cannot give it says so rather than giving
     * the bitmap or another size. */
    bool asked = ring_entries != 0;
    if (!asked)
        ring_entries = DOMAIN_DIRTY_RING_DEFAULT;
    bool ring_ok = max >= (int)(ring_entries * sizeof(struct kvm_dirty_gfn));

    if ((want == DOMAIN_LOGDIRTY_RING || asked) && !ring_ok) {
        if (max > 0)
            tlog_error(d->log, "log_dirty_ring=%u: this host's KVM takes at most %d entries per vCPU", ring_entries,
                       max / (int)sizeof(struct kvm_dirty_gfn));
        else
            tlog_error(d->log, "log_dirty=\"ring\": this host's KVM has no dirty ring");
        return -EOPNOTSUPP;
    }
    if (want != DOMAIN_LOGDIRTY_BITMAP && ring_ok) {
        struct kvm_enable_cap cap = {
            .cap = acq_rel > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING,
            .args = { ring_entries * sizeof(struct kvm_dirty_gfn) },
        };
        if (ioctl(d->vm_fd, KVM_ENABLE_CAP, &cap) == 0) {
            d->logdirty_mode = DOMAIN_LOGDIRTY_RING;
            d->ring_entries = ring_entries;
            return 0;
        }
        if (want == DOMAIN_LOGDIRTY_RING) {
            int err = errno;
            tlog_error(d->log, "enabling the dirty ring: %s", strerror(err));
            return -err;
        }
        tlog_warn(d->log, "dirty ring refused (%s); using the dirty bitmap", strerror(errno));
    }
    /* Bitmap: re-protect only what we harvest (manual protect), so a
     * harvest never write-protects all of memory at once. */
    struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                                  .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
    if (ioctl(d->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
        int err = errno;
        tlog_error(d->log, "this host's KVM has neither a dirty ring nor manual dirty-log protection: %s",
                   strerror(err));
        return -err;
    }
    d->logdirty_mode = DOMAIN_LOGDIRTY_BITMAP;
    return 0;
}

int logdirty_setup_vcpu(struct domain *d, struct vcpu *v)
{
    if (d->logdirty_mode != DOMAIN_LOGDIRTY_RING)
        return 0;
    size_t len = d->ring_entries * sizeof(struct kvm_dirty_gfn);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
                   (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * getpagesize());
    if (p == MAP_FAILED) {
        int err = errno;
        tlog_error(d->log, "vcpu%u: mapping its dirty ring: %s", v->id, strerror(err));
        return -err;
    }
    v->ring = p;
    return 0;
}

void logdirty_teardown_vcpu(struct domain *d, struct vcpu *v)
{
    if (v->ring)
        munmap(v->ring, d->ring_entries * sizeof(struct kvm_dirty_gfn));
    v->ring = NULL;
}

static void set_pfn(uint64_t *bitmap, uint64_t max_pfn, uint64_t pfn)
{
    if (bitmap && pfn < max_pfn)
        bitmap[pfn / 64] |= 1ULL << (pfn % 64);
}

/* Moves one vCPU's dirty entries into bitmap (NULL: drop them) and marks
 * them for reset.  Returns how many there were. */
static uint64_t harvest_ring(struct domain *d, struct vcpu *v, uint64_t *bitmap)
{
    uint64_t n = 0, max_pfn = domain_max_pfn(d);
    pthread_mutex_lock(&v->ring_lock);
    for (;;) {
        struct kvm_dirty_gfn *e = &v->ring[v->ring_fetch % d->ring_entries];
        uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
        if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
            break;
        uint32_t slot = e->slot & 0xffff;
        if (slot < d->mem.nr_regions)
            set_pfn(bitmap, max_pfn, d->mem.region[slot].gpa / GUEST_PAGE_SIZE + e->offset);
        __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
        v->ring_fetch++;
        n++;
    }
    v->dirtied += n;
    pthread_mutex_unlock(&v->ring_lock);
    return n;
}

/* KVM_RESET_DIRTY_RINGS for the n entries just marked for reset, with
 * every signal blocked.  KVM (virt/kvm/dirty_ring.c, kvm_dirty_ring_reset;
 * upstream since about 6.16, this host runs 6.18) stops a reset when the
 * calling thread has a signal pending, and does so after it has freed the
 * entries of the batch it is gathering (up to 64 pages of one slot) but
 * before it write-protects their pages; the ioctl still succeeds,
 * returning how many entries it freed.  Those pages then stay writable
 * with no entry left to say so, and every later write to them is lost;
 * the entries after the stop stay unreset until the next reset, so their
 * pages go unlogged meanwhile, and a ring left soft-full makes its vCPU
 * exit again at once.  The vCPU threads reset here at ring-full exits and
 * are the threads domain_pause and the throttle kick with a signal, so a
 * kick landing in a reset lost pages for good: stale pages in a Remus
 * replica after failover.  A blocked signal does not count as pending for
 * KVM; a kick sent meanwhile is delivered right after, and the
 * immediate_exit it set still stops the next KVM_RUN.
 * tests/unit/test_logdirty_ring and bench/dirty-ring-check catch the
 * loss: 1 vCPU dirtying 32 MiB flat out, paused and harvested every 50 ms,
 * lost pages in 4 of 8 runs of 100 epochs before, 0 of 8 since.  (The
 * workaround this replaces, all slots re-protected and the vCPUs' sregs
 * reloaded at each Remus checkpoint, hid it at 3.8 ms of pause per
 * harvest against 0.55 ms now.)
 * A reset that stops short all the same sets d->reset_cut_short, and the
 * next harvest repairs it (repair_short_reset). */
static void reset_rings(struct domain *d, uint64_t n)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = ioctl(d->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
    int err = errno, first = r;
    uint64_t done = r > 0 ? (uint64_t)r : 0;
    bool short_reset = r < 0 || done < n;
    /* Should it stop anyway, what it left is picked up at once. */
    while (r > 0 && done < n) {
        r = ioctl(d->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
        err = errno;
        done += r > 0 ? (uint64_t)r : 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (short_reset) {
        __atomic_store_n(&d->reset_cut_short, 1, __ATOMIC_RELEASE);
        if (r < 0)
            tlog_error(d->log, "KVM_RESET_DIRTY_RINGS: %s; the next harvest re-protects all", strerror(err));
        else
            tlog_error(d->log, "KVM_RESET_DIRTY_RINGS stopped short (%d of %llu entries); the next harvest re-protects all",
                       first, (unsigned long long)n);
    }
}

/* Harvests every vCPU's ring into `bitmap` and re-arms the harvested
 * pages, as one step under logdirty_lock.  Only one thread at a time may
 * be between reading entries and KVM_RESET_DIRTY_RINGS: a reset that lands
 * while another thread is part-way through its harvest would re-arm pages
 * whose entries that thread has not yet copied out, and QEMU serialises
 * its reaping the same way. */
static uint64_t harvest_all_locked(struct domain *d, uint64_t *bitmap, bool ring_full)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        n += harvest_ring(d, &d->vcpus[i], bitmap);
    /* Nothing new to reset, but a ring-full exit, or a reset that stopped
     * short: entries harvested before may still be waiting for their
     * reset, and the ring stays full until they get it (the vCPU would
     * exit again at once, for ever). */
    if (n || ring_full || __atomic_load_n(&d->reset_cut_short, __ATOMIC_ACQUIRE))
        reset_rings(d, n);
    return n;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A vCPU over its dirty-rate limit waits here (on its own thread, at a
 * ring-full exit, the one place it is sure to come by often) until it is
 * back under it, or until the domain is paused or the limit lifted, so
 * that the stop-and-copy never waits for it. */
static void dirty_limit_wait(struct domain *d, struct vcpu *v)
{
    uint64_t limit = __atomic_load_n(&v->dirty_limit, __ATOMIC_RELAXED);
    uint64_t now = now_usec(), dirtied = v->dirtied;
    if (!limit) {
        v->limit_t0_usec = 0;
        return;
    }
    if (!v->limit_t0_usec || now - v->limit_t0_usec > 2000000) {
        v->limit_t0_usec = now; /* a fresh window */
        v->limit_d0 = dirtied;
        return;
    }
    uint64_t due = v->limit_t0_usec + (dirtied - v->limit_d0) * 1000000u / limit;
    if (due <= now)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    uint64_t wait = due - now;
    until.tv_sec += (time_t)(wait / 1000000u);
    until.tv_nsec += (long)(wait % 1000000u) * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    while (!d->pause_count && !d->stopping && __atomic_load_n(&v->dirty_limit, __ATOMIC_RELAXED) &&
           pthread_cond_timedwait(&d->cond, &d->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&d->lock);
}

/* A vCPU whose ring filled up empties every ring into the pending bitmap
 * and goes on: no page is lost and no vCPU waits for the migration. */
void logdirty_ring_full(struct domain *d, struct vcpu *v)
{
    (void)v;
    pthread_mutex_lock(&d->logdirty_lock);
    uint64_t n = harvest_all_locked(d, d->logdirty_pending, true);
    if (n && d->logdirty_pending)
        __atomic_fetch_add(&d->logdirty_pending_count, n, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&d->logdirty_lock);
    __atomic_fetch_add(&d->ring_full_exits, 1, __ATOMIC_RELAXED);
    dirty_limit_wait(d, v);
}

static int set_slot_logging(struct domain *d, bool on)
{
    for (unsigned i = 0; i < d->mem.nr_regions; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = i, .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
            .guest_phys_addr = d->mem.region[i].gpa, .memory_size = d->mem.region[i].size,
            .userspace_addr = (uintptr_t)d->mem.region[i].host,
        };
        if (ioctl(d->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
            int err = errno;
            tlog_error(d->log, "%s dirty logging on slot %u: %s", on ? "enabling" : "disabling", i,
                       strerror(err));
            return -err;
        }
    }
    return 0;
}

size_t domain_logdirty_bitmap_words(struct domain *d)
{
    return (size_t)((domain_max_pfn(d) + 63) / 64);
}

int domain_logdirty_start(struct domain *d, const struct tlog *log)
{
    if (d->logdirty_on)
        return -EBUSY;
    uint64_t *pending = calloc(domain_logdirty_bitmap_words(d), sizeof(uint64_t));
    if (!pending)
        return -ENOMEM;
    /* Entries left from an earlier round describe writes that round
     * already sent; drop them before logging anew. */
    pthread_mutex_lock(&d->logdirty_lock);
    if (d->logdirty_mode == DOMAIN_LOGDIRTY_RING)
        harvest_all_locked(d, NULL, false);
    d->logdirty_pending_count = 0;
    __atomic_store_n(&d->logdirty_pending, pending, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->logdirty_lock);
    int rc = set_slot_logging(d, true);
    if (rc) {
        domain_logdirty_stop(d);
        return rc;
    }
    d->logdirty_on = true;
    tlog_debug(log, "log-dirty on (%s)", domain_logdirty_mode_name(d->logdirty_mode));
    return 0;
}

void domain_logdirty_stop(struct domain *d)
{
    set_slot_logging(d, false);
    pthread_mutex_lock(&d->logdirty_lock);
    if (d->logdirty_mode == DOMAIN_LOGDIRTY_RING)
        harvest_all_locked(d, NULL, false);
    free(d->logdirty_pending);
    __atomic_store_n(&d->logdirty_pending, NULL, __ATOMIC_RELEASE);
    d->logdirty_pending_count = 0;
    pthread_mutex_unlock(&d->logdirty_lock);
    d->logdirty_on = false;
}

/* Bitmap mode: fetch and re-protect each slot's dirty bits. */
static int harvest_bitmaps(struct domain *d, uint64_t *bitmap, uint64_t *count)
{
    for (unsigned i = 0; i < d->mem.nr_regions; i++) {
        uint64_t pages = d->mem.region[i].size / GUEST_PAGE_SIZE;
        size_t words = (pages + 63) / 64;
        uint64_t *slot_bits = calloc(words, sizeof(uint64_t));
        if (!slot_bits)
            return -ENOMEM;
        struct kvm_dirty_log dl = { .slot = i, .dirty_bitmap = slot_bits };
        if (ioctl(d->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0) {
            int err = errno;
            free(slot_bits);
            tlog_error(d->log, "KVM_GET_DIRTY_LOG slot %u: %s", i, strerror(err));
            return -err;
        }
        /* Re-protect exactly what was reported, before anyone copies it. */
        struct kvm_clear_dirty_log cl = { .slot = i, .num_pages = (uint32_t)pages, .first_page = 0,
                                          .dirty_bitmap = slot_bits };
        if (ioctl(d->vm_fd, KVM_CLEAR_DIRTY_LOG, &cl) < 0) {
            int err = errno;
            free(slot_bits);
            tlog_error(d->log, "KVM_CLEAR_DIRTY_LOG slot %u: %s", i, strerror(err));
            return -err;
        }
        uint64_t base = d->mem.region[i].gpa / GUEST_PAGE_SIZE; /* a multiple of 64 */
        for (size_t w = 0; w < words; w++) {
            if (!slot_bits[w])
                continue;
            bitmap[base / 64 + w] |= slot_bits[w];
            *count += (uint64_t)__builtin_popcountll(slot_bits[w]);
        }
        free(slot_bits);
    }
    return 0;
}

/* After a ring reset that stopped short, some pages may have been written
 * with no entry and may still be writable.  Switching the slots' logging
 * off and on write-protects every page again, and reporting every page
 * dirty makes the caller copy them all after this returns, so no write,
 * before or after, is missed: one full copy, for what should not happen. */
static int repair_short_reset(struct domain *d, uint64_t *bitmap, uint64_t *count)
{
    tlog_warn(d->log, "a dirty-ring reset stopped short: re-protecting guest memory, all of it reported dirty");
    int rc = set_slot_logging(d, false);
    if (!rc)
        rc = set_slot_logging(d, true);
    if (rc)
        return rc;
    for (unsigned i = 0; i < d->mem.nr_regions; i++) {
        uint64_t first = d->mem.region[i].gpa / GUEST_PAGE_SIZE, n = d->mem.region[i].size / GUEST_PAGE_SIZE;
        for (uint64_t pfn = first; pfn < first + n; pfn++)
            set_pfn(bitmap, domain_max_pfn(d), pfn);
        *count += n;
    }
    return 0;
}

int domain_logdirty_harvest(struct domain *d, uint64_t *bitmap, uint64_t *count_out)
{
    uint64_t count = 0;
    if (!d->logdirty_on)
        return -EINVAL;
    if (d->logdirty_mode == DOMAIN_LOGDIRTY_BITMAP) {
        int rc = harvest_bitmaps(d, bitmap, &count);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&d->logdirty_lock);
    if (d->logdirty_mode == DOMAIN_LOGDIRTY_RING) {
        count = harvest_all_locked(d, bitmap, false);
        if (__atomic_exchange_n(&d->reset_cut_short, 0, __ATOMIC_ACQ_REL)) {
            int rc = repair_short_reset(d, bitmap, &count);
            if (rc) {
                __atomic_store_n(&d->reset_cut_short, 1, __ATOMIC_RELEASE);
                pthread_mutex_unlock(&d->logdirty_lock);
                return rc;
            }
        }
    }
    /* What ring-full exits and the VMM's own writes (domain_mark_dirty)
     * collected since the last harvest; skipped when there is none, so a
     * harvest costs what was dirtied, not what the guest's size is. */
    if (d->logdirty_pending_count) {
        size_t words = domain_logdirty_bitmap_words(d);
        for (size_t w = 0; w < words; w++) {
            uint64_t bits = d->logdirty_pending[w];
            if (bits) {
                d->logdirty_pending[w] = 0;
                bitmap[w] |= bits;
            }
        }
        count += d->logdirty_pending_count;
        d->logdirty_pending_count = 0;
    }
    pthread_mutex_unlock(&d->logdirty_lock);
    if (count_out)
        *count_out = count;
    return 0;
}

/* The device models write guest memory from the VMM (used rings, received
 * frames, disk reads, status bytes), which KVM's dirty log never sees.
 * They call this after each write, so the write lands in the next
 * harvest: marking before writing could let a harvest send the page
 * between the mark and the write.  Cheap when log-dirty is off. */
void domain_mark_dirty(struct domain *d, uint64_t gpa, uint64_t len)
{
    if (!len || !__atomic_load_n(&d->logdirty_pending, __ATOMIC_ACQUIRE))
        return;
    uint64_t max_pfn = domain_max_pfn(d);
    uint64_t first = gpa / GUEST_PAGE_SIZE, last = (gpa + len - 1) / GUEST_PAGE_SIZE;
    pthread_mutex_lock(&d->logdirty_lock);
    uint64_t *pending = d->logdirty_pending;
    for (uint64_t pfn = first; pending && pfn <= last && pfn < max_pfn; pfn++) {
        uint64_t bit = 1ULL << (pfn % 64);
        if (!(pending[pfn / 64] & bit)) {
            pending[pfn / 64] |= bit;
            d->logdirty_pending_count++;
        }
    }
    pthread_mutex_unlock(&d->logdirty_lock);
}

uint64_t domain_vcpu_dirtied(struct domain *d, unsigned vcpu)
{
    if (vcpu >= d->nr_vcpus)
        return 0;
    pthread_mutex_lock(&d->vcpus[vcpu].ring_lock);
    uint64_t n = d->vcpus[vcpu].dirtied;
    pthread_mutex_unlock(&d->vcpus[vcpu].ring_lock);
    return n;
}

uint64_t domain_ring_full_exits(struct domain *d)
{
    return __atomic_load_n(&d->ring_full_exits, __ATOMIC_RELAXED);
}
