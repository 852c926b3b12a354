/* Test rig for virtio devices without a guest (rig_virtio.h says what each
 * is for). */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "rig_time.h"
#include "rig_virtio.h"

/* ---- Log ------------------------------------------------------------------ */

static void rig_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct rig_log *t = opaque;
    pthread_mutex_lock(&t->lock);
    if (level >= TLOG_ERROR) {
        snprintf(t->last_error, sizeof(t->last_error), "%s", msg);
        t->errors++;
    }
    size_t n = strlen(t->all);
    snprintf(t->all + n, sizeof(t->all) - n, "%s\n", msg);
    bool echo = t->echo && level >= TLOG_WARN;
    pthread_mutex_unlock(&t->lock);
    if (echo)
        fprintf(stderr, "  log: %s\n", msg);
}

void rig_log_init(struct rig_log *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->log = (struct tlog){ .fn = rig_log_fn, .opaque = t, .min_level = TLOG_DEBUG };
}

bool rig_log_has(struct rig_log *t, const char *what)
{
    pthread_mutex_lock(&t->lock);
    bool r = strstr(t->all, what) != NULL;
    pthread_mutex_unlock(&t->lock);
    return r;
}

/* ---- Fake guest RAM --------------------------------------------------------- */

struct rig_ram *rig_ram_new(uint64_t bytes)
{
    struct rig_ram *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    f->ram = calloc(1, bytes);
    ck_assert_ptr_nonnull(f->ram);
    f->size = bytes;
    f->m.nr_regions = 1;
    f->m.region[0] = (struct guest_region){ .gpa = 0, .size = bytes, .host = f->ram };
    f->m.total_bytes = bytes;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

void rig_ram_free(struct rig_ram *f)
{
    free(f->ram);
    free(f);
}

void rig_ram_mark(void *opaque, uint64_t gpa, uint64_t len)
{
    struct rig_ram *f = opaque;
    pthread_mutex_lock(&f->lock);
    if (f->nmarks < RIG_RAM_MAX_MARKS)
        f->marks[f->nmarks++] = (typeof(f->marks[0])){ gpa, len };
    pthread_mutex_unlock(&f->lock);
}

void rig_ram_irq(void *opaque, unsigned gsi)
{
    struct rig_ram *f = opaque;
    (void)gsi;
    __atomic_add_fetch(&f->irqs, 1, __ATOMIC_SEQ_CST);
}

bool rig_ram_marked(struct rig_ram *f, uint64_t gpa, uint64_t len)
{
    pthread_mutex_lock(&f->lock);
    for (uint64_t a = gpa; a < gpa + len; a++) {
        bool hit = false;
        for (unsigned i = 0; i < f->nmarks && !hit; i++)
            hit = a >= f->marks[i].gpa && a < f->marks[i].gpa + f->marks[i].len;
        if (!hit) {
            pthread_mutex_unlock(&f->lock);
            return false;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return true;
}

struct virtio_env rig_ram_env(struct rig_ram *f, const struct tlog *log)
{
    return (struct virtio_env){ .mem = &f->m, .log = log, .vm_fd = -1, .mark_dirty = rig_ram_mark, .opaque = f,
                                .raise_irq = rig_ram_irq };
}

/* ---- Split rings -------------------------------------------------------------- */

void rig_ring_init(struct rig_ring *r, uint8_t *base, uint64_t desc, uint64_t avail, uint64_t used, unsigned num)
{
    *r = (struct rig_ring){ .base = base, .desc = desc, .avail = avail, .used = used, .num = num };
    memset(base + desc, 0, vring_desc_bytes(num));
    memset(base + avail, 0, vring_avail_bytes(num));
    memset(base + used, 0, vring_used_bytes(num));
}

void rig_set_desc(struct rig_ring *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };
    memcpy(r->base + r->desc + 16u * i, &d, sizeof(d));
}

void rig_publish(struct rig_ring *r, uint16_t head)
{
    memcpy(r->base + r->avail + 4 + 2u * (r->avail_idx % r->num), &head, 2);
    r->avail_idx++;
    __atomic_store_n((uint16_t *)(r->base + r->avail + 2), r->avail_idx, __ATOMIC_RELEASE);
}

void rig_set_avail_idx(struct rig_ring *r, uint16_t idx)
{
    r->avail_idx = idx;
    __atomic_store_n((uint16_t *)(r->base + r->avail + 2), idx, __ATOMIC_RELEASE);
}

uint16_t rig_used_idx(const struct rig_ring *r)
{
    return __atomic_load_n((uint16_t *)(r->base + r->used + 2), __ATOMIC_ACQUIRE);
}

void rig_used_elem(const struct rig_ring *r, unsigned slot, uint32_t *id, uint32_t *len)
{
    memcpy(id, r->base + r->used + 4 + 8u * (slot % r->num), 4);
    memcpy(len, r->base + r->used + 8 + 8u * (slot % r->num), 4);
}

bool rig_wait_used(const struct rig_ring *r, uint16_t want, unsigned timeout_ms)
{
    for (unsigned t = 0; t < timeout_ms; t += 2) {
        if ((uint16_t)(rig_used_idx(r) - want) < 0x8000)
            return true;
        rig_sleep_ms(2);
    }
    return false;
}

/* ---- The virtio-mmio register file -------------------------------------------- */

uint32_t rig_rd32(struct virtio_dev *v, uint64_t off)
{
    uint8_t b[4];
    virtio_mmio_access(v, off, b, 4, false);
    uint32_t x;
    memcpy(&x, b, 4);
    return x;
}

void rig_wr32(struct virtio_dev *v, uint64_t off, uint32_t val)
{
    uint8_t b[4];
    memcpy(b, &val, 4);
    virtio_mmio_access(v, off, b, 4, true);
}

uint32_t rig_setup_queue(struct virtio_dev *v, unsigned qi, const struct rig_ring *r)
{
    rig_wr32(v, VIRTIO_MMIO_QUEUE_SEL, qi);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_QUEUE_READY), 0);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_NUM, r->num);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(r->desc >> 32));
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)r->avail);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)r->used);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
    rig_wr32(v, VIRTIO_MMIO_QUEUE_READY, 1);
    return rig_rd32(v, VIRTIO_MMIO_QUEUE_READY);
}

void rig_driver_init(struct virtio_dev *v, uint32_t want_id, uint64_t features, const struct rig_ring *rings,
                     unsigned nq)
{
    const uint32_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_VERSION), 2);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_DEVICE_ID), want_id);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_VENDOR_ID), 0x4d444e54);
    rig_wr32(v, VIRTIO_MMIO_STATUS, 0);
    rig_wr32(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    rig_wr32(v, VIRTIO_MMIO_STATUS, s);
    rig_wr32(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_DEVICE_FEATURES) & 1, 1);   /* VERSION_1 */
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    rig_wr32(v, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_FEATURES_OK);
    ck_assert_msg(rig_rd32(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, "features %#" PRIx64 " refused",
                  features);
    for (unsigned i = 0; i < nq; i++)
        ck_assert_msg(rig_setup_queue(v, i, &rings[i]) == 1, "queue %u not ready", i);
    rig_wr32(v, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- A bare domain ------------------------------------------------------------ */

struct domain *rig_bare_domain(const struct tlog *log)
{
    struct domain *d = calloc(1, sizeof(*d));
    ck_assert_ptr_nonnull(d);
    d->log = log;
    ck_assert_int_eq(devices_alloc(d), 0);
    return d;
}

void rig_bare_domain_add(struct domain *d, struct virtio_dev *v)
{
    ck_assert_uint_lt(d->devs->n, VIRTIO_MMIO_MAX_DEVICES);
    d->devs->dev[d->devs->n++] = v;
}

void rig_bare_domain_free(struct domain *d)
{
    devices_destroy(d);
    free(d);
}

/* ---- Networks ------------------------------------------------------------------ */

static void write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) { /* best effort */ }
        close(fd);
    }
}

bool rig_enter_netns(const char *what)
{
    if (unshare(CLONE_NEWNET) < 0) {
        printf("SKIP: unshare(CLONE_NEWNET): %s; %s NOT run\n", strerror(errno), what);
        return false;
    }
    if (access("/dev/net/tun", R_OK | W_OK) < 0) {
        printf("SKIP: /dev/net/tun: %s; %s NOT run\n", strerror(errno), what);
        return false;
    }
    write_proc("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    write_proc("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    return true;
}

int rig_packet_socket(const char *ifname)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ck_assert_int_ge(s, 0);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex(ifname) };
    ck_assert_int_gt(sll.sll_ifindex, 0);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
    return s;
}

void rig_test_frame(uint8_t *e, const uint8_t src[6], uint32_t seq, unsigned payload)
{
    ck_assert_uint_ge(payload, sizeof(seq));
    memset(e, 0xff, 6);
    memcpy(e + 6, src, 6);
    e[12] = RIG_TEST_ETHERTYPE >> 8;
    e[13] = RIG_TEST_ETHERTYPE & 0xff;
    memset(e + 14, (int)(seq & 0xff), payload);
    memcpy(e + 14, &seq, sizeof(seq));
}

unsigned rig_test_frames_recv(int s, const uint8_t src[6], uint32_t *seqs, unsigned want, unsigned timeout_ms)
{
    unsigned got = 0;
    uint64_t end = rig_now_ms() + timeout_ms;
    uint8_t buf[2048];
    while (got < want && rig_now_ms() < end) {
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, (int)(end - rig_now_ms())) <= 0)
            continue;
        ssize_t r = recv(s, buf, sizeof(buf), 0);
        if (r >= 18 && (buf[12] << 8 | buf[13]) == RIG_TEST_ETHERTYPE && !memcmp(buf + 6, src, 6))
            memcpy(&seqs[got++], buf + 14, 4);
    }
    return got;
}

void rig_expect_test_frames(int s, const uint8_t src[6], uint32_t first, unsigned count, const char *where)
{
    uint32_t seqs[64];
    ck_assert_uint_le(count, 64);
    unsigned got = rig_test_frames_recv(s, src, seqs, count, 5000);
    ck_assert_msg(got == count, "%u of %u frames reached %s", got, count, where);
    for (unsigned i = 0; i < count; i++)
        ck_assert_msg(seqs[i] == first + i, "frame %u on %s is seq %u, expected %u", i, where, seqs[i], first + i);
}

void rig_expect_no_test_frame(int s, const uint8_t src[6], unsigned ms, const char *where)
{
    uint32_t seq;
    ck_assert_msg(rig_test_frames_recv(s, src, &seq, 1, ms) == 0, "frame seq %u reached %s while it should be held",
                  seq, where);
}
