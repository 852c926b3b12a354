/* Guest I/O, host side: split virtqueues (xen/virtqueue.c) over a fake
 * guest memory, normal chains and hostile ones; the virtio-mmio transport
 * and virtio-blk (xen/virtio_mmio.c, xen/virtio_blk.c) driven through
 * their register file over fake memory, with a real image file; virtio-net
 * with a real tap on a real bridge in a private network namespace; and
 * real KVM domains: devices built from the config, the command line they
 * get, QueueNotify caught by KVM_IOEVENTFD from a guest's own store, the
 * interrupt arriving through KVM_IRQFD, device state from one domain to
 * another, and the VMM's writes in the dirty log.
 *
 * The network tests need root and /dev/net/tun, the domain tests
 * /dev/kvm; without them those tests print "SKIP" and are not run. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "devices.h"
#include "domain.h"
#include "pvh.h"
#include "rig_domain.h"
#include "rig_time.h"
#include "rig_virtio.h"
#include "tap.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

/* Network tests print "SKIP: ...; virtio-net test NOT run" without a netns. */
#define NETNS_WHAT "virtio-net test"

static bool have_kvm;

/* ---- A queue over fake guest memory (rig_virtio.h) ---------------------- */

#define RAM_SIZE (4u << 20)
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x3000u
#define USED_GPA 0x4000u
#define BUF_GPA 0x100000u

static struct virtqueue vq_over(struct rig_ram *f, struct rig_ring *r, unsigned num)
{
    rig_ring_init(r, f->ram, DESC_GPA, AVAIL_GPA, USED_GPA, num);
    struct virtqueue q;
    memset(&q, 0, sizeof(q));
    q.max_chain_bytes = 1u << 20;
    vq_reset(&q);
    q.num = (uint16_t)num;
    q.desc_gpa = DESC_GPA;
    q.avail_gpa = AVAIL_GPA;
    q.used_gpa = USED_GPA;
    char err[200];
    ck_assert_msg(vq_map(&q, &f->m, err, sizeof(err)) == 0, "vq_map: %s", err);
    q.ready = true;
    return q;
}

/* ---- The walker ----------------------------------------------------------- */

START_TEST(test_chain_normal)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct rig_ring r;
    struct virtqueue q = vq_over(f, &r, 8);
    static struct vq_chain c;
    char err[200] = "";
    /* header (readable), two data buffers (readable, writable), status */
    rig_set_desc(&r, 2, BUF_GPA, 16, VRING_DESC_F_NEXT, 5);
    rig_set_desc(&r, 5, BUF_GPA + 0x1000, 100, VRING_DESC_F_NEXT, 1);
    rig_set_desc(&r, 1, BUF_GPA + 0x2000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);
    rig_set_desc(&r, 7, BUF_GPA + 0x3000, 1, VRING_DESC_F_WRITE, 0);
    ck_assert_int_eq(vq_pop(&q, &f->m, VQ_DIR_MIXED, &c, err, sizeof(err)), 0);  /* nothing yet */
    rig_publish(&r, 2);
    ck_assert_int_eq(vq_pop(&q, &f->m, VQ_DIR_MIXED, &c, err, sizeof(err)), 1);
    ck_assert_uint_eq(c.head, 2);
    ck_assert_uint_eq(c.n, 4);
    ck_assert_uint_eq(c.n_read, 2);
    ck_assert_uint_eq(c.read_bytes, 116);
    ck_assert_uint_eq(c.write_bytes, 513);
    ck_assert_ptr_eq(c.buf[2].host, f->ram + BUF_GPA + 0x2000);
    ck_assert_uint_eq(q.last_avail_idx, 1);

    /* Byte access across buffers. */
    memset(f->ram + BUF_GPA, 'a', 16);
    memset(f->ram + BUF_GPA + 0x1000, 'b', 100);
    uint8_t got[20];
    ck_assert_uint_eq(vq_chain_read(&c, 10, got, 20), 20);
    ck_assert_int_eq(got[5], 'a');
    ck_assert_int_eq(got[6], 'b');
    ck_assert_uint_eq(vq_chain_read(&c, 110, got, 20), 6);   /* only 116 readable */
    uint8_t put[4] = { 1, 2, 3, 4 };
    ck_assert_uint_eq(vq_chain_write(&c, 510, put, 4, rig_ram_mark, f), 3);   /* 513 writable */
    ck_assert_int_eq(f->ram[BUF_GPA + 0x2000 + 511], 2);
    ck_assert_int_eq(f->ram[BUF_GPA + 0x3000], 3);
    ck_assert(rig_ram_marked(f, BUF_GPA + 0x2000 + 510, 2));
    ck_assert(rig_ram_marked(f, BUF_GPA + 0x3000, 1));
    struct iovec iov[4];
    uint64_t covered;
    ck_assert_uint_eq(vq_chain_iov(&c, false, 12, 104, iov, 4, &covered), 2);
    ck_assert_uint_eq(covered, 104);
    ck_assert_uint_eq(iov[0].iov_len, 4);
    ck_assert_ptr_eq(iov[1].iov_base, f->ram + BUF_GPA + 0x1000);

    vq_push(&q, c.head, 513, rig_ram_mark, f);
    ck_assert_uint_eq(rig_used_idx(&r), 1);
    uint32_t id, len;
    rig_used_elem(&r, 0, &id, &len);
    ck_assert_uint_eq(id, 2);
    ck_assert_uint_eq(len, 513);
    ck_assert(rig_ram_marked(f, USED_GPA + 2, 2));
    ck_assert(rig_ram_marked(f, USED_GPA + 4, 8));
    ck_assert(vq_wants_interrupt(&q));
    uint16_t no_irq = VRING_AVAIL_F_NO_INTERRUPT;
    memcpy(f->ram + AVAIL_GPA, &no_irq, 2);
    ck_assert(!vq_wants_interrupt(&q));
    rig_ram_free(f);
}
END_TEST

/* idx fields are free-running u16s: wrapping must not look like a jump. */
START_TEST(test_chain_index_wrap)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct rig_ring r;
    struct virtqueue q = vq_over(f, &r, 4);
    static struct vq_chain c;
    char err[200];
    q.last_avail_idx = q.used_idx = 65534;
    rig_set_avail_idx(&r, 65534);
    rig_set_desc(&r, 0, BUF_GPA, 64, 0, 0);
    for (int i = 0; i < 4; i++)
        rig_publish(&r, 0);
    ck_assert_uint_eq(r.avail_idx, 2);
    unsigned avail;
    ck_assert_int_eq(vq_avail_count(&q, &avail, err, sizeof(err)), 0);
    ck_assert_uint_eq(avail, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(vq_pop(&q, &f->m, VQ_DIR_READ, &c, err, sizeof(err)), 1);
        vq_push(&q, c.head, 0, NULL, NULL);
    }
    ck_assert_int_eq(vq_pop(&q, &f->m, VQ_DIR_READ, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(rig_used_idx(&r), 2);
    rig_ram_free(f);
}
END_TEST

/* Each hostile chain: -EPROTO, a reason, nothing taken, nothing written. */
struct hostile {
    const char *what, *reason;
    enum vq_dir dir;
    void (*build)(struct rig_ring *r);
};

static void h_loop(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, VRING_DESC_F_NEXT, 1);
    rig_set_desc(r, 1, BUF_GPA, 64, VRING_DESC_F_NEXT, 0);
    rig_publish(r, 0);
}
static void h_self_loop(struct rig_ring *r)
{
    rig_set_desc(r, 3, BUF_GPA, 64, VRING_DESC_F_NEXT, 3);
    rig_publish(r, 3);
}
static void h_longer_than_queue(struct rig_ring *r)
{
    for (unsigned i = 0; i < r->num; i++)
        rig_set_desc(r, i, BUF_GPA + 64 * i, 64, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % r->num));
    rig_publish(r, 0);
}
static void h_next_out_of_range(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, VRING_DESC_F_NEXT, (uint16_t)r->num);
    rig_publish(r, 0);
}
static void h_head_out_of_range(struct rig_ring *r)
{
    rig_publish(r, (uint16_t)r->num);
}
static void h_beyond_ram(struct rig_ring *r)
{
    rig_set_desc(r, 0, RAM_SIZE, 64, 0, 0);
    rig_publish(r, 0);
}
static void h_across_ram_end(struct rig_ring *r)
{
    rig_set_desc(r, 0, RAM_SIZE - 32, 64, 0, 0);
    rig_publish(r, 0);
}
static void h_wrapping_address(struct rig_ring *r)
{
    rig_set_desc(r, 0, 0xffffffffffffff00ull, 0x200, 0, 0);
    rig_publish(r, 0);
}
static void h_zero_length(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
    rig_set_desc(r, 1, BUF_GPA, 0, 0, 0);
    rig_publish(r, 0);
}
static void h_huge_length(struct rig_ring *r)
{
    rig_set_desc(r, 0, 0, 0xffffffffu, 0, 0);
    rig_publish(r, 0);
}
static void h_too_many_bytes(struct rig_ring *r)
{
    /* each fits, together they pass max_chain_bytes (1 MiB) */
    rig_set_desc(r, 0, BUF_GPA, 600 * 1024, VRING_DESC_F_NEXT, 1);
    rig_set_desc(r, 1, BUF_GPA, 600 * 1024, 0, 0);
    rig_publish(r, 0);
}
static void h_write_in_read_queue(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, VRING_DESC_F_NEXT, 1);
    rig_set_desc(r, 1, BUF_GPA + 64, 64, VRING_DESC_F_WRITE, 0);
    rig_publish(r, 0);
}
static void h_read_in_write_queue(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, 0, 0);
    rig_publish(r, 0);
}
static void h_read_after_write(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    rig_set_desc(r, 1, BUF_GPA + 64, 64, 0, 0);
    rig_publish(r, 0);
}
static void h_indirect(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, VRING_DESC_F_INDIRECT, 0);
    rig_publish(r, 0);
}
static void h_avail_jump(struct rig_ring *r)
{
    rig_set_desc(r, 0, BUF_GPA, 64, 0, 0);
    rig_set_avail_idx(r, (uint16_t)(r->num + 1));
}
static void h_avail_backwards(struct rig_ring *r)
{
    rig_set_avail_idx(r, 0xffff);   /* "65535 entries ahead" of 0 */
}

static const struct hostile hostiles[] = {
    { "loop of two", "longer than the queue", VQ_DIR_READ, h_loop },
    { "descriptor pointing at itself", "longer than the queue", VQ_DIR_READ, h_self_loop },
    { "chain through the whole table and back", "longer than the queue", VQ_DIR_READ, h_longer_than_queue },
    { "next beyond the table", "beyond the", VQ_DIR_READ, h_next_out_of_range },
    { "head beyond the table", "names descriptor", VQ_DIR_READ, h_head_out_of_range },
    { "buffer beyond RAM", "not in guest RAM", VQ_DIR_READ, h_beyond_ram },
    { "buffer across the end of RAM", "not in guest RAM", VQ_DIR_READ, h_across_ram_end },
    { "address that wraps", "not in guest RAM", VQ_DIR_READ, h_wrapping_address },
    { "zero length", "length 0", VQ_DIR_READ, h_zero_length },
    { "4 GiB length", "more than", VQ_DIR_READ, h_huge_length },
    { "chain over the byte bound", "more than", VQ_DIR_READ, h_too_many_bytes },
    { "writable buffer in a read queue", "device-writable in a queue", VQ_DIR_READ, h_write_in_read_queue },
    { "readable buffer in a write queue", "device-readable in a queue", VQ_DIR_WRITE, h_read_in_write_queue },
    { "readable after writable", "follows a device-writable", VQ_DIR_MIXED, h_read_after_write },
    { "indirect descriptor", "indirect", VQ_DIR_READ, h_indirect },
    { "avail idx jumps past the queue", "jumped", VQ_DIR_READ, h_avail_jump },
    { "avail idx runs backwards", "jumped", VQ_DIR_READ, h_avail_backwards },
};

START_TEST(test_chain_hostile)
{
    const struct hostile *h = &hostiles[_i];
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct rig_ring r;
    struct virtqueue q = vq_over(f, &r, 8);
    static struct vq_chain c;
    char err[200] = "";
    h->build(&r);
    uint8_t *before = malloc(RAM_SIZE);
    ck_assert_ptr_nonnull(before);
    memcpy(before, f->ram, RAM_SIZE);
    int rc = vq_pop(&q, &f->m, h->dir, &c, err, sizeof(err));
    ck_assert_msg(rc == -EPROTO, "%s: vq_pop returned %d", h->what, rc);
    ck_assert_msg(strstr(err, h->reason), "%s: reason '%s' lacks '%s'", h->what, err, h->reason);
    ck_assert_uint_eq(q.last_avail_idx, 0);
    ck_assert_msg(memcmp(before, f->ram, RAM_SIZE) == 0, "%s: guest memory changed", h->what);
    /* It stays refused: the walker does not skip over it. */
    ck_assert_int_eq(vq_pop(&q, &f->m, h->dir, &c, err, sizeof(err)), -EPROTO);
    free(before);
    rig_ram_free(f);
}
END_TEST

START_TEST(test_map_rejects)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct virtqueue q;
    char err[200];
    struct { uint16_t num; uint64_t desc, avail, used; const char *reason; } cases[] = {
        { 0, DESC_GPA, AVAIL_GPA, USED_GPA, "power of two" },
        { 6, DESC_GPA, AVAIL_GPA, USED_GPA, "power of two" },
        { 512, DESC_GPA, AVAIL_GPA, USED_GPA, "power of two" },
        { 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, "aligned" },
        { 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, "aligned" },
        { 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, "aligned" },
        { 8, RAM_SIZE - 64, AVAIL_GPA, USED_GPA, "not in guest RAM" },
        { 8, DESC_GPA, RAM_SIZE, USED_GPA, "not in guest RAM" },
        { 8, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ull, "not in guest RAM" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&q, 0, sizeof(q));
        vq_reset(&q);
        q.num = cases[i].num;
        q.desc_gpa = cases[i].desc;
        q.avail_gpa = cases[i].avail;
        q.used_gpa = cases[i].used;
        err[0] = 0;
        ck_assert_msg(vq_map(&q, &f->m, err, sizeof(err)) == -EPROTO, "case %u accepted", i);
        ck_assert_msg(strstr(err, cases[i].reason), "case %u: '%s'", i, err);
        ck_assert_ptr_null(q.desc);
    }
    rig_ram_free(f);
}
END_TEST

/* ---- Transport + virtio-blk over fake memory ------------------------------ */

static bool wait_status_bit(struct virtio_dev *v, uint32_t bit, unsigned timeout_ms)
{
    for (unsigned t = 0; t < timeout_ms; t += 2) {
        if (rig_rd32(v, VIRTIO_MMIO_STATUS) & bit)
            return true;
        rig_sleep_ms(2);
    }
    return false;
}

#define BLK_SECTORS 64
struct blk_rig {
    struct rig_ram *f;
    struct rig_log log;
    char path[64];
    struct virtio_dev *v;
    struct rig_ring r;
    uint64_t req_gpa;     /* header, data, status laid out from here */
    unsigned next_desc;
};

static void blk_rig_open(struct blk_rig *b, struct rig_ram *f, unsigned index, bool readonly)
{
    memset(b, 0, sizeof(*b));
    b->f = f;
    rig_log_init(&b->log);
    rig_make_image(b->path, sizeof(b->path), BLK_SECTORS * 512u, false);
    struct domain_disk disk = { .readonly = readonly };
    snprintf(disk.target, sizeof(disk.target), "%s", b->path);
    snprintf(disk.vdev, sizeof(disk.vdev), "xvd%c", 'a' + index);
    struct virtio_env env = rig_ram_env(f, &b->log.log);
    int rc = virtio_blk_create(&b->v, &env, index, &disk);
    ck_assert_msg(rc == 0, "virtio_blk_create: %s (%s)", strerror(-rc), b->log.last_error);
    virtio_dev_unpause(b->v);   /* devices start paused, as domains do */
    /* Each rig has its own 64 KiB of rings and requests. */
    uint64_t base = 0x10000u * (index + 1);
    rig_ring_init(&b->r, f->ram, base, base + 0x1000, base + 0x2000, 16);
    b->req_gpa = 0x200000u + 0x40000u * index;
}

static void blk_rig_close(struct blk_rig *b)
{
    if (b->v)
        virtio_dev_destroy(b->v);
    unlink(b->path);
}

/* Builds a request {type, 0, sector} + data + status in the rig's area and
 * publishes it; returns the gpa of its status byte. */
static uint64_t blk_submit(struct blk_rig *b, uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
                           const void *data)
{
    uint64_t hdr = b->req_gpa, dat = b->req_gpa + 0x1000, st = b->req_gpa + 0x30000;
    uint8_t h[16] = { 0 };
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    memcpy(b->f->ram + hdr, h, 16);
    if (data && data_len)
        memcpy(b->f->ram + dat, data, data_len);
    b->f->ram[st] = 0xee;
    unsigned d0 = b->next_desc % 16, d1 = (d0 + 1) % 16, d2 = (d0 + 2) % 16;
    b->next_desc += 3;
    if (data_len) {
        rig_set_desc(&b->r, d0, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)d1);
        rig_set_desc(&b->r, d1, dat, data_len, VRING_DESC_F_NEXT | (data_writable ? VRING_DESC_F_WRITE : 0),
                 (uint16_t)d2);
        rig_set_desc(&b->r, d2, st, 1, VRING_DESC_F_WRITE, 0);
    } else {
        rig_set_desc(&b->r, d0, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)d1);
        rig_set_desc(&b->r, d1, st, 1, VRING_DESC_F_WRITE, 0);
    }
    rig_publish(&b->r, (uint16_t)d0);
    return st;
}

static uint8_t blk_do(struct blk_rig *b, uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
                      const void *data)
{
    uint16_t want = (uint16_t)(rig_used_idx(&b->r) + 1);
    uint64_t st = blk_submit(b, type, sector, data_len, data_writable, data);
    rig_wr32(b->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    ck_assert_msg(rig_wait_used(&b->r, want, 5000), "request type %u not completed (%s)", type, b->log.last_error);
    return b->f->ram[st];
}

START_TEST(test_blk_requests)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig b;
    blk_rig_open(&b, f, 0, false);
    struct virtio_dev *v = b.v;

    /* Config space in every width the contract allows. */
    uint8_t c8[8];
    virtio_mmio_access(v, 0x100, c8, 4, false);
    uint32_t cap_lo;
    memcpy(&cap_lo, c8, 4);
    ck_assert_uint_eq(cap_lo, BLK_SECTORS);
    virtio_mmio_access(v, 0x10c, c8, 4, false);
    ck_assert_uint_eq(c8[0], 126);
    virtio_mmio_access(v, 0x114, c8, 2, false);
    ck_assert_uint_eq(c8[0] | c8[1] << 8, 512);
    virtio_mmio_access(v, 0x100, c8, 1, false);
    ck_assert_uint_eq(c8[0], BLK_SECTORS);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << 5), 0);   /* not RO */

    rig_driver_init(v, 2, VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_BLK_SIZE, &b.r, 1);

    uint8_t data[1024];
    memset(data, 0x5a, sizeof(data));
    unsigned irqs0 = __atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_OUT, 3, 1024, false, data), VIRTIO_BLK_S_OK);
    ck_assert_uint_gt(__atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST), irqs0);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 1);
    rig_wr32(v, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    uint32_t id, len;
    rig_used_elem(&b.r, 0, &id, &len);
    ck_assert_uint_eq(len, 1);
    int fd = open(b.path, O_RDONLY);
    uint8_t back[1024];
    ck_assert_int_eq(pread(fd, back, 1024, 3 * 512), 1024);
    ck_assert(memcmp(back, data, 1024) == 0);
    ck_assert_int_eq(pread(fd, back, 512, 2 * 512), 512);
    ck_assert_int_eq(back[0], 0x42);   /* the sector before is untouched */
    close(fd);

    /* IN reads the file into guest memory and reports it written. */
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 5, 1024, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000], 0x45);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000 + 1023], 0x46);
    rig_used_elem(&b.r, 1, &id, &len);
    ck_assert_uint_eq(len, 1025);
    ck_assert(rig_ram_marked(f, b.req_gpa + 0x1000, 1024));
    ck_assert(rig_ram_marked(f, b.req_gpa + 0x30000, 1));
    ck_assert(rig_ram_marked(f, b.r.used + 2, 2));

    /* GET_ID: the vdev name, zero-padded to 20 bytes. */
    memset(f->ram + b.req_gpa + 0x1000, 0x77, 20);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_GET_ID, 0, 20, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_str_eq((char *)f->ram + b.req_gpa + 0x1000, "xvda");
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000 + 19], 0);

    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_do(&b, 77, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
    /* Out of bounds is an I/O error, not a crash or a short read. */
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, BLK_SECTORS, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, BLK_SECTORS - 1, 1024, true, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_OUT, ~0ull, 512, false, data), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 0, 100, true, NULL), VIRTIO_BLK_S_IOERR);   /* not sectors */
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, BLK_SECTORS - 1, 512, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

START_TEST(test_blk_readonly)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig b;
    blk_rig_open(&b, f, 0, true);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << 5), 1u << 5);
    rig_driver_init(b.v, 2, VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_RO, &b.r, 1);
    uint8_t data[512];
    memset(data, 0x11, sizeof(data));
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_OUT, 0, 512, false, data), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000], 0x40);   /* still the original */
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

START_TEST(test_blk_missing_target)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct rig_log log;
    rig_log_init(&log);
    struct domain_disk disk = { .readonly = false };
    snprintf(disk.target, sizeof(disk.target), "/nonexistent/tandem/disk.img");
    snprintf(disk.vdev, sizeof(disk.vdev), "xvdb");
    struct virtio_env env = { .mem = &f->m, .log = &log.log, .vm_fd = -1 };
    struct virtio_dev *v = NULL;
    ck_assert_int_eq(virtio_blk_create(&v, &env, 0, &disk), -ENOENT);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(log.last_error, "xvdb") && strstr(log.last_error, "/nonexistent/tandem/disk.img"),
                  "error: %s", log.last_error);
    rig_ram_free(f);
}
END_TEST

/* A hostile chain breaks its device only: DEVICE_NEEDS_RESET with a
 * config interrupt, nothing written, later requests left alone; the other
 * device goes on; a reset brings the broken one back. */
START_TEST(test_blk_hostile_needs_reset)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig a, b;
    blk_rig_open(&a, f, 0, false);
    blk_rig_open(&b, f, 1, false);
    rig_driver_init(a.v, 2, VIRTIO_F_VERSION_1, &a.r, 1);
    rig_driver_init(b.v, 2, VIRTIO_F_VERSION_1, &b.r, 1);

    /* A loop in a's descriptor table. */
    rig_set_desc(&a.r, 0, a.req_gpa, 16, VRING_DESC_F_NEXT, 1);
    rig_set_desc(&a.r, 1, a.req_gpa + 0x30000, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    f->ram[a.req_gpa + 0x30000] = 0xee;
    rig_publish(&a.r, 0);
    rig_wr32(a.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    ck_assert_msg(wait_status_bit(a.v, VIRTIO_STATUS_NEEDS_RESET, 5000), "no DEVICE_NEEDS_RESET");
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG, VIRTIO_INT_CONFIG);
    ck_assert_msg(strstr(a.log.last_error, "virtio-blk xvda") && strstr(a.log.last_error, "longer than the queue") &&
                  strstr(a.log.last_error, "needs a reset"), "error: %s", a.log.last_error);
    ck_assert_uint_eq(rig_used_idx(&a.r), 0);
    ck_assert_int_eq(f->ram[a.req_gpa + 0x30000], 0xee);
    /* Stopped: a good request after it is not touched. */
    a.next_desc = 4;
    uint64_t st = blk_submit(&a, VIRTIO_BLK_T_IN, 0, 512, true, NULL);
    rig_wr32(a.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    rig_sleep_ms(100);
    ck_assert_uint_eq(rig_used_idx(&a.r), 0);
    ck_assert_int_eq(f->ram[st], 0xee);
    /* b does not care. */
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 1, 512, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000], 0x41);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);

    /* Reset returns every register and queue to its initial state. */
    rig_wr32(a.v, VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_STATUS), 0);
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    rig_wr32(a.v, VIRTIO_MMIO_QUEUE_SEL, 0);
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_QUEUE_NUM), 256);
    ck_assert_uint_eq(rig_rd32(a.v, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
    rig_ring_init(&a.r, f->ram, a.r.desc, a.r.avail, a.r.used, 16);
    a.next_desc = 0;
    rig_driver_init(a.v, 2, VIRTIO_F_VERSION_1, &a.r, 1);
    ck_assert_uint_eq(blk_do(&a, VIRTIO_BLK_T_IN, 2, 512, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(f->ram[a.req_gpa + 0x1000], 0x42);
    blk_rig_close(&a);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

/* Ring setup errors surface at QueueReady. */
START_TEST(test_queue_ready_rejects_bad_ring)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig b;
    blk_rig_open(&b, f, 0, false);
    rig_wr32(b.v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    struct rig_ring bad = b.r;
    bad.used = RAM_SIZE + 0x1000;   /* beyond RAM */
    rig_setup_queue(b.v, 0, &bad);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert(rig_rd32(b.v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    ck_assert_msg(strstr(b.log.last_error, "used ring"), "error: %s", b.log.last_error);
    /* Queue index beyond the device: QueueNumMax 0, writes ignored. */
    rig_wr32(b.v, VIRTIO_MMIO_QUEUE_SEL, 1);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    rig_wr32(b.v, VIRTIO_MMIO_QUEUE_READY, 1);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_QUEUE_READY), 0);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

START_TEST(test_feature_negotiation)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig b;
    blk_rig_open(&b, f, 0, false);
    struct virtio_dev *v = b.v;
    rig_wr32(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* Without VERSION_1: FEATURES_OK does not stick. */
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)VIRTIO_BLK_F_FLUSH);
    rig_wr32(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* A feature not offered (indirect descriptors, bit 28): refused too. */
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 28);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    rig_wr32(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    rig_wr32(v, VIRTIO_MMIO_DRIVER_FEATURES, 0);
    rig_wr32(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_FEATURES_OK);
    /* Sub-word register accesses are ignored and read as zero. */
    uint8_t byte = 0x55;
    virtio_mmio_access(v, VIRTIO_MMIO_STATUS, &byte, 1, false);
    ck_assert_uint_eq(byte, 0);
    byte = 0;
    virtio_mmio_access(v, VIRTIO_MMIO_STATUS, &byte, 1, true);
    ck_assert_uint_ne(rig_rd32(v, VIRTIO_MMIO_STATUS), 0);
    /* Device features beyond word 1 are zero. */
    rig_wr32(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

/* A paused device leaves guest memory alone; what was made available
 * meanwhile is done after the unpause. */
START_TEST(test_blk_pause)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig b;
    blk_rig_open(&b, f, 0, false);
    rig_driver_init(b.v, 2, VIRTIO_F_VERSION_1, &b.r, 1);
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 1, 512, true, NULL), VIRTIO_BLK_S_OK);
    virtio_dev_pause(b.v);
    virtio_dev_pause(b.v);       /* nests */
    uint64_t st = blk_submit(&b, VIRTIO_BLK_T_IN, 7, 512, true, NULL);
    rig_wr32(b.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    rig_sleep_ms(150);
    ck_assert_uint_eq(rig_used_idx(&b.r), 1);
    ck_assert_int_eq(f->ram[st], 0xee);
    virtio_dev_unpause(b.v);
    rig_sleep_ms(100);
    ck_assert_uint_eq(rig_used_idx(&b.r), 1);
    virtio_dev_unpause(b.v);
    ck_assert(rig_wait_used(&b.r, 2, 5000));
    ck_assert_int_eq(f->ram[st], VIRTIO_BLK_S_OK);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000], 0x47);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

/* Transport state from one device to another, and hostile states. */
START_TEST(test_state_roundtrip)
{
    struct rig_ram *f = rig_ram_new(RAM_SIZE);
    struct blk_rig a, b;
    blk_rig_open(&a, f, 0, false);
    blk_rig_open(&b, f, 0, false);
    rig_driver_init(a.v, 2, VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH, &a.r, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(blk_do(&a, VIRTIO_BLK_T_IN, (uint64_t)i, 512, true, NULL), VIRTIO_BLK_S_OK);
    virtio_dev_pause(a.v);
    size_t n = virtio_dev_state_size(a.v);
    ck_assert_uint_eq(n, VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE + 16);
    uint8_t *st = calloc(1, n), *bad = calloc(1, n);
    ck_assert_int_eq(virtio_dev_state_save(a.v, st, &a.log.log), 0);

    char err[300];
    ck_assert_msg(virtio_dev_state_check(b.v, st, n, err, sizeof(err)) == 0, "%s", err);
    /* Hostile or mismatched states, each refused with its reason. */
    struct { size_t off; uint32_t val; const char *reason; } cases[] = {
        { 0, 3, "slot" },
        { 4, 1, "type" },
        { 8, 0x10f, "unknown bits" },
        { 40, 2, "queues" },
        { 32, 4, "interrupt status" },
        { VIRTIO_STATE_HEADER + 0, 3, "power of two" },
        { VIRTIO_STATE_HEADER + 8, RAM_SIZE - 16, "not in guest RAM" },
        { VIRTIO_STATE_HEADER + 28, 1, "not in guest RAM" },     /* used ring above 4 GiB */
        { VIRTIO_STATE_HEADER + 32, 9, "in flight" },
        { VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE, 99, "sectors" },
        { VIRTIO_STATE_HEADER + VIRTIO_STATE_QUEUE + 8, 1, "read-only" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, st, n);
        memcpy(bad + cases[i].off, &cases[i].val, 4);
        err[0] = 0;
        ck_assert_msg(virtio_dev_state_check(b.v, bad, n, err, sizeof(err)) == -EINVAL, "case %u accepted", i);
        ck_assert_msg(strstr(err, cases[i].reason), "case %u: '%s'", i, err);
    }
    ck_assert_int_eq(virtio_dev_state_check(b.v, st, n - 1, err, sizeof(err)), -EINVAL);
    /* Features the device does not offer. */
    memcpy(bad, st, n);
    uint64_t feat = VIRTIO_F_VERSION_1 | (1ull << 28);
    memcpy(bad + 24, &feat, 8);
    ck_assert_int_eq(virtio_dev_state_check(b.v, bad, n, err, sizeof(err)), -EINVAL);

    /* b takes over where a stopped: the next request is the 4th. */
    blk_rig_close(&a);
    virtio_dev_pause(b.v);
    virtio_dev_state_load(b.v, st);
    virtio_dev_unpause(b.v);
    ck_assert_uint_eq(rig_rd32(b.v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
    b.r = a.r;
    b.req_gpa = a.req_gpa;
    b.next_desc = a.next_desc;
    ck_assert_uint_eq(blk_do(&b, VIRTIO_BLK_T_IN, 9, 512, true, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(rig_used_idx(&b.r), 4);
    ck_assert_int_eq(f->ram[b.req_gpa + 0x1000], 0x49);
    free(st);
    free(bad);
    blk_rig_close(&b);
    rig_ram_free(f);
}
END_TEST

START_TEST(test_devstate_framing)
{
    uint8_t blob[64];
    struct devstate_model m[4];
    unsigned n;
    char err[200];
    devstate_put_header(blob, 1, 1, 4);
    memset(blob + 12, 7, 4);
    devstate_put_header(blob + 16, 2, 1, 0);
    ck_assert_int_eq(devstate_parse(blob, 28, m, 4, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(m[1].id, 2);
    ck_assert_int_eq(devstate_parse(blob, 27, m, 4, &n, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(devstate_parse(blob, 15, m, 4, &n, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(devstate_parse(blob, 28, m, 1, &n, err, sizeof(err)), -EINVAL);
    devstate_put_header(blob, 1, 1, 0xfffffff0u);
    ck_assert_int_eq(devstate_parse(blob, 28, m, 4, &n, err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "claims"));
}
END_TEST

/* ---- virtio-net on a tap, in a private network namespace ----------------- */

/* Reads frames on s until one has this ethertype and source (or timeout). */
static ssize_t recv_frame(int s, uint16_t ethertype, const uint8_t *src, uint8_t *buf, size_t len, unsigned timeout_ms)
{
    uint64_t end = rig_now_ms() + timeout_ms;
    while (rig_now_ms() < end) {
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, (int)(end - rig_now_ms())) <= 0)
            continue;
        ssize_t r = recv(s, buf, len, 0);
        if (r >= 14 && (buf[12] << 8 | buf[13]) == ethertype && (!src || !memcmp(buf + 6, src, 6)))
            return r;
    }
    return -1;
}

static const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x12, 0x34, 0x56 };

struct net_rig {
    struct rig_ram *f;
    struct rig_log log;
    struct virtio_dev *v;
    struct rig_ring rx, tx;
};

static int net_rig_open(struct net_rig *n, const char *bridge, const char *ifname, bool announce)
{
    memset(n, 0, sizeof(*n));
    n->f = rig_ram_new(RAM_SIZE);
    rig_log_init(&n->log);
    struct domain_vif vif;
    memset(&vif, 0, sizeof(vif));
    memcpy(vif.mac, guest_mac, 6);
    snprintf(vif.bridge, sizeof(vif.bridge), "%s", bridge);
    snprintf(vif.ifname, sizeof(vif.ifname), "%s", ifname);
    struct virtio_env env = rig_ram_env(n->f, &n->log.log);
    int rc = virtio_net_create(&n->v, &env, 0, 7, 0, &vif, announce);
    if (rc)
        return rc;
    rig_ring_init(&n->rx, n->f->ram, 0x10000, 0x11000, 0x12000, 16);
    rig_ring_init(&n->tx, n->f->ram, 0x20000, 0x21000, 0x22000, 16);
    return 0;
}

static void net_rig_close(struct net_rig *n)
{
    if (n->v)
        virtio_dev_destroy(n->v);
    rig_ram_free(n->f);
}

START_TEST(test_net_tap_bridge)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    struct net_rig n;
    int rc = net_rig_open(&n, "xenbr0", "", false);
    ck_assert_msg(rc == 0, "virtio_net_create: %s (%s)", strerror(-rc), n.log.last_error);
    ck_assert_str_eq(virtio_net_ifname(n.v), "vif7.0");
    char master[IFNAMSIZ];
    bool up = false;
    ck_assert_int_eq(tap_link_info("vif7.0", master, sizeof(master), &up, &log.log), 0);
    ck_assert_str_eq(master, "xenbr0");
    ck_assert(up);

    /* Config space: MAC and link up. */
    uint8_t cfg[8];
    for (unsigned i = 0; i < 8; i++)
        virtio_mmio_access(n.v, 0x100 + i, cfg + i, 1, false);
    ck_assert(memcmp(cfg, guest_mac, 6) == 0);
    ck_assert_uint_eq(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
    ck_assert_uint_eq(rig_rd32(n.v, VIRTIO_MMIO_DEVICE_ID), 1);

    virtio_dev_unpause(n.v);
    struct rig_ring rings[2] = { n.rx, n.tx };
    rig_driver_init(n.v, 1, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS, rings, 2);
    /* Receive buffers of 1526 bytes, one descriptor each. */
    for (unsigned i = 0; i < 4; i++) {
        rig_set_desc(&n.rx, i, 0x100000 + 0x800 * i, VIRTIO_NET_RX_MIN, VRING_DESC_F_WRITE, 0);
        rig_publish(&n.rx, (uint16_t)i);
    }
    rig_wr32(n.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);

    int s = rig_packet_socket("xenbr0");
    /* Host -> guest: a broadcast from the bridge floods to the tap. */
    uint8_t frame[100];
    memset(frame, 0, sizeof(frame));
    memset(frame, 0xff, 6);
    const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x99 };
    memcpy(frame + 6, host_mac, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;               /* local experimental ethertype */
    memcpy(frame + 14, "to the guest", 12);
    ck_assert_int_eq(send(s, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    /* Ours among whatever else the bridge floods (there should be nothing). */
    uint32_t id = 0, len = 0;
    const uint8_t *buf = NULL;
    for (uint16_t seen = 0; !buf && seen < 4; seen++) {
        ck_assert_msg(rig_wait_used(&n.rx, (uint16_t)(seen + 1), 5000), "no frame received (%s)", n.log.last_error);
        rig_used_elem(&n.rx, seen, &id, &len);
        ck_assert_uint_lt(id, 4);
        const uint8_t *p = n.f->ram + 0x100000 + 0x800 * id;
        if (len >= 26 && p[24] == 0x88 && p[25] == 0xb5)
            buf = p;
    }
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
    static const uint8_t hdr[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    ck_assert(memcmp(buf, hdr, 12) == 0);
    ck_assert(memcmp(buf + 12, frame, sizeof(frame)) == 0);
    ck_assert(rig_ram_marked(n.f, 0x100000 + 0x800 * id, len));
    ck_assert(rig_ram_marked(n.f, n.rx.used + 2, 2));

    /* Guest -> host: a frame behind a zero header, split over two buffers. */
    uint8_t out[12 + 64];
    memset(out, 0, sizeof(out));
    memset(out + 12, 0xff, 6);
    memcpy(out + 18, guest_mac, 6);
    out[24] = 0x88;
    out[25] = 0xb5;
    memcpy(out + 26, "from the guest", 14);
    memcpy(n.f->ram + 0x200000, out, 12);
    memcpy(n.f->ram + 0x201000, out + 12, 64);
    rig_set_desc(&n.tx, 0, 0x200000, 12, VRING_DESC_F_NEXT, 1);
    rig_set_desc(&n.tx, 1, 0x201000, 64, 0, 0);
    rig_publish(&n.tx, 0);
    rig_wr32(n.v, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    uint8_t got[2048];
    ssize_t r = recv_frame(s, 0x88b5, guest_mac, got, sizeof(got), 5000);
    ck_assert_int_eq(r, 64);
    ck_assert(memcmp(got, out + 12, 64) == 0);
    ck_assert(rig_wait_used(&n.tx, 1, 5000));

    struct virtio_net_stats st;
    virtio_net_get_stats(n.v, &st);
    ck_assert_uint_ge(st.rx_frames, 1);
    ck_assert_uint_eq(st.tx_frames, 1);
    close(s);

    /* The tap goes with the device. */
    net_rig_close(&n);
    ck_assert_int_eq(if_nametoindex("vif7.0"), 0);
}
END_TEST

START_TEST(test_net_rx_hostile)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    struct net_rig n;
    ck_assert_int_eq(net_rig_open(&n, "xenbr0", "guest0", false), 0);
    ck_assert_str_eq(virtio_net_ifname(n.v), "guest0");
    virtio_dev_unpause(n.v);
    struct rig_ring rings[2] = { n.rx, n.tx };
    rig_driver_init(n.v, 1, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC, rings, 2);
    /* A receive buffer too small for a full frame. */
    rig_set_desc(&n.rx, 0, 0x100000, 200, VRING_DESC_F_WRITE, 0);
    rig_publish(&n.rx, 0);
    memset(n.f->ram + 0x100000, 0xcc, 200);
    rig_wr32(n.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    int s = rig_packet_socket("xenbr0");
    uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5 };
    ck_assert_int_eq(send(s, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    ck_assert_msg(wait_status_bit(n.v, VIRTIO_STATUS_NEEDS_RESET, 5000), "no DEVICE_NEEDS_RESET");
    ck_assert_msg(strstr(n.log.last_error, "virtio-net guest0") && strstr(n.log.last_error, "1526"),
                  "error: %s", n.log.last_error);
    ck_assert_uint_eq(rig_used_idx(&n.rx), 0);
    ck_assert_int_eq(n.f->ram[0x100000], 0xcc);
    close(s);
    net_rig_close(&n);
}
END_TEST

START_TEST(test_net_create_errors)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    struct net_rig n;
    /* A missing bridge: a clear error, and no tap left behind. */
    ck_assert_int_eq(net_rig_open(&n, "nosuchbr", "", false), -ENODEV);
    ck_assert_msg(strstr(n.log.last_error, "bridge nosuchbr does not exist"), "error: %s", n.log.last_error);
    ck_assert_int_eq(if_nametoindex("vif7.0"), 0);
    rig_ram_free(n.f);
    /* Not a bridge. */
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    struct net_rig a;
    ck_assert_int_eq(net_rig_open(&a, "", "", false), 0);   /* vif7.0, unattached */
    char master[IFNAMSIZ] = "x";
    ck_assert_int_eq(tap_link_info("vif7.0", master, sizeof(master), NULL, &log.log), 0);
    ck_assert_str_eq(master, "");
    ck_assert_int_eq(net_rig_open(&n, "vif7.0", "vif7.1", false), -EINVAL);
    ck_assert_msg(strstr(n.log.last_error, "not a bridge"), "error: %s", n.log.last_error);
    ck_assert_int_eq(if_nametoindex("vif7.1"), 0);
    rig_ram_free(n.f);
    /* The name is taken. */
    ck_assert_int_eq(net_rig_open(&n, "xenbr0", "", false), -EEXIST);
    ck_assert_msg(strstr(n.log.last_error, "already exists"), "error: %s", n.log.last_error);
    rig_ram_free(n.f);
    char up_master[IFNAMSIZ];
    ck_assert_int_eq(tap_link_info("vif7.0", up_master, sizeof(up_master), NULL, &log.log), 0);  /* still a's */
    net_rig_close(&a);
}
END_TEST

/* After a restore: RARP frames from the guest's MAC, 50/150/250/350 ms
 * apart, once the device first runs. */
START_TEST(test_net_announce)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    struct net_rig n;
    ck_assert_int_eq(net_rig_open(&n, "xenbr0", "", true), 0);
    int s = rig_packet_socket("xenbr0");
    uint8_t buf[256];
    /* Paused (a restored domain not yet unpaused): nothing. */
    ck_assert_int_lt(recv_frame(s, 0x8035, guest_mac, buf, sizeof(buf), 300), 0);
    virtio_dev_unpause(n.v);
    uint64_t t[VIRTIO_NET_ANNOUNCE_ROUNDS];
    for (unsigned i = 0; i < VIRTIO_NET_ANNOUNCE_ROUNDS; i++) {
        ssize_t r = recv_frame(s, 0x8035, guest_mac, buf, sizeof(buf), 2000);
        ck_assert_msg(r >= 42, "RARP %u missing", i);
        t[i] = rig_now_ms();
        ck_assert(memcmp(buf, "\xff\xff\xff\xff\xff\xff", 6) == 0);
        ck_assert_uint_eq(buf[21], 3);                 /* reverse request */
        ck_assert(memcmp(buf + 22, guest_mac, 6) == 0);
        ck_assert(memcmp(buf + 32, guest_mac, 6) == 0);
    }
    for (unsigned i = 1; i < VIRTIO_NET_ANNOUNCE_ROUNDS; i++) {
        uint64_t gap = t[i] - t[i - 1], want = 50 + 100 * (i - 1);
        ck_assert_msg(gap + 25 >= want && gap <= want + 150, "gap %u is %" PRIu64 " ms, want %" PRIu64, i, gap,
                      want);
    }
    ck_assert_int_lt(recv_frame(s, 0x8035, guest_mac, buf, sizeof(buf), 700), 0);   /* and no more */
    ck_assert(rig_log_has(&n.log, "announcing 00:16:3e:12:34:56"));
    close(s);
    net_rig_close(&n);
}
END_TEST

/* ---- Real domains ------------------------------------------------------------ */

START_TEST(test_domain_devices)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    char disk[64];
    rig_make_image(disk, sizeof(disk), 32 * 512u, false);
    struct domain_config cfg;
    rig_config(&cfg, "vqdom", 1, NULL);
    snprintf(cfg.cmdline, sizeof(cfg.cmdline), "workload=idle");
    cfg.nr_vifs = 2;
    for (unsigned i = 0; i < 2; i++) {
        memcpy(cfg.vifs[i].mac, guest_mac, 6);
        cfg.vifs[i].mac[5] = (uint8_t)i;
        snprintf(cfg.vifs[i].bridge, sizeof(cfg.vifs[i].bridge), "xenbr0");
    }
    rig_config_disk(&cfg, disk, "xvda");
    struct domain *d = NULL;
    int rc = domain_create_as(&d, 12, &cfg, false, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_msg(rc == 0, "domain_create_as: %s (%s)", strerror(-rc), log.last_error);
    /* The taps, on the bridge, named as Xen names them. */
    char master[IFNAMSIZ];
    ck_assert_int_eq(tap_link_info("vif12.0", master, sizeof(master), NULL, &log.log), 0);
    ck_assert_str_eq(master, "xenbr0");
    ck_assert_int_eq(tap_link_info("vif12.1", master, sizeof(master), NULL, &log.log), 0);
    ck_assert_str_eq(master, "xenbr0");
    /* The command line: vifs first, then the disk. */
    const char *cl = guest_memory_ptr(&d->mem, PVH_CMDLINE_GPA, 1);
    ck_assert_msg(strstr(cl, "workload=idle ncpus=1 virtio_mmio.device=4K@0xd0000000:16 "
                             "virtio_mmio.device=4K@0xd0001000:17 virtio_mmio.device=4K@0xd0002000:18"),
                  "cmdline: %s", cl);
    ck_assert(!strstr(cl, ":19"));
    /* The register files sit where the command line says. */
    uint8_t b[4];
    ck_assert(devices_mmio(d, 0xd0002008, b, 4, false));
    ck_assert_uint_eq(b[0], 2);
    ck_assert(devices_mmio(d, 0xd0001008, b, 4, false));
    ck_assert_uint_eq(b[0], 1);
    ck_assert(!devices_mmio(d, 0xd0003000, b, 4, false));
    ck_assert(!devices_mmio(d, 0xcffff000, b, 4, false));
    domain_destroy(d);
    ck_assert_int_eq(if_nametoindex("vif12.0"), 0);
    ck_assert_int_eq(if_nametoindex("vif12.1"), 0);

    /* A missing bridge or disk fails the create, leaving no tap. */
    snprintf(cfg.vifs[1].bridge, sizeof(cfg.vifs[1].bridge), "gone0");
    ck_assert_int_eq(domain_create_as(&d, 13, &cfg, false, NULL, rig_ignore_end, rig_ignore_console, NULL,
                                      &log.log), -ENODEV);
    ck_assert(strstr(log.last_error, "bridge gone0 does not exist"));
    ck_assert_int_eq(if_nametoindex("vif13.0"), 0);
    snprintf(cfg.vifs[1].bridge, sizeof(cfg.vifs[1].bridge), "xenbr0");
    snprintf(cfg.disks[0].target, sizeof(cfg.disks[0].target), "%s.missing", disk);
    ck_assert_int_eq(domain_create_as(&d, 14, &cfg, false, NULL, rig_ignore_end, rig_ignore_console, NULL,
                                      &log.log), -ENOENT);
    ck_assert(strstr(log.last_error, "xvda"));
    ck_assert_int_eq(if_nametoindex("vif14.0"), 0);
    ck_assert_int_eq(if_nametoindex("vif14.1"), 0);
    unlink(disk);
}
END_TEST

/* A guest's own store to QueueNotify (caught by KVM_IOEVENTFD), the
 * request done in guest RAM, and the interrupt through KVM_IRQFD and the
 * IOAPIC into the vCPU's LAPIC.  The "guest" is four instructions. */
#define TINY_CODE_GPA  0x10000u
#define TINY_VECTOR    0x40
START_TEST(test_domain_ioeventfd_irqfd)
{
    struct rig_log log;
    rig_log_init(&log);
    char disk[64];
    rig_make_image(disk, sizeof(disk), 16 * 512u, false);
    struct domain_config cfg;
    rig_config(&cfg, "vqtiny", 1, NULL);
    rig_config_disk(&cfg, disk, "vda");
    struct domain *d = NULL;
    /* Built for restore: no kernel is loaded, the test writes the code. */
    int rc = domain_create_as(&d, 3, &cfg, true, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_msg(rc == 0, "domain_create_as: %s (%s)", strerror(-rc), log.last_error);
    struct virtio_dev *v = d->devs->dev[0];
    ck_assert_msg(v->ioeventfd[0], "KVM_IOEVENTFD not registered");
    ck_assert_int_ge(v->irq_fd, 0);

    /* mov dword [0xd0000050], 0 ; 1: hlt ; jmp 1b */
    static const uint8_t code[] = { 0xc7, 0x05, 0x50, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00, 0xf4, 0xeb, 0xfd };
    memcpy(guest_memory_ptr(&d->mem, TINY_CODE_GPA, sizeof(code)), code, sizeof(code));
    struct vcpu *cpu = &d->vcpus[0];
    struct kvm_sregs sr;
    ck_assert_int_eq(ioctl(cpu->fd, KVM_GET_SREGS, &sr), 0);
    struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1,
                              .db = 1, .s = 1, .g = 1 };
    struct kvm_segment ds = cs;
    ds.selector = 0x18;
    ds.type = 0x3;
    sr.cs = cs;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
    sr.cr0 = 0x11;
    ck_assert_int_eq(ioctl(cpu->fd, KVM_SET_SREGS, &sr), 0);
    struct kvm_regs regs = { .rip = TINY_CODE_GPA, .rflags = 0x2 };   /* IF=0: the interrupt stays pending */
    ck_assert_int_eq(ioctl(cpu->fd, KVM_SET_REGS, &regs), 0);
    /* LAPIC software-enabled; IOAPIC pin 16: edge, fixed, vector 0x40, to APIC 0. */
    struct kvm_lapic_state lapic;
    ck_assert_int_eq(ioctl(cpu->fd, KVM_GET_LAPIC, &lapic), 0);
    lapic.regs[0xf0] = 0xff;
    lapic.regs[0xf1] = 0x01;
    ck_assert_int_eq(ioctl(cpu->fd, KVM_SET_LAPIC, &lapic), 0);
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    ck_assert_int_eq(ioctl(d->vm_fd, KVM_GET_IRQCHIP, &chip), 0);
    chip.chip.ioapic.redirtbl[16].bits = TINY_VECTOR;
    ck_assert_int_eq(ioctl(d->vm_fd, KVM_SET_IRQCHIP, &chip), 0);

    /* The driver's setup, done from here, and one GET_ID request. */
    struct rig_ring r;
    uint8_t *ram = guest_memory_ptr(&d->mem, 0, 1 << 20);
    rig_ring_init(&r, ram, 0x20000, 0x21000, 0x22000, 8);
    uint8_t *hdr = ram + 0x30000;
    memset(hdr, 0, 16);
    hdr[0] = VIRTIO_BLK_T_GET_ID;
    rig_set_desc(&r, 0, 0x30000, 16, VRING_DESC_F_NEXT, 1);
    rig_set_desc(&r, 1, 0x31000, 20, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    rig_set_desc(&r, 2, 0x32000, 1, VRING_DESC_F_WRITE, 0);
    ram[0x32000] = 0xee;
    rig_driver_init(v, 2, VIRTIO_F_VERSION_1, &r, 1);
    rig_publish(&r, 0);

    ck_assert_int_eq(domain_start_vcpus(d), 0);
    domain_unpause(d);
    ck_assert_msg(rig_wait_used(&r, 1, 10000), "the guest's notify did not reach the device");
    ck_assert_int_eq(ram[0x32000], VIRTIO_BLK_S_OK);
    ck_assert_str_eq((char *)ram + 0x31000, "vda");
    /* The interrupt: in the LAPIC's IRR once the edge has gone through. */
    bool pending = false;
    for (unsigned t = 0; t < 5000 && !pending; t += 10) {
        domain_pause(d);
        ck_assert_int_eq(ioctl(cpu->fd, KVM_GET_LAPIC, &lapic), 0);
        domain_unpause(d);
        uint32_t irr;
        memcpy(&irr, lapic.regs + 0x200 + 0x10 * (TINY_VECTOR / 32), 4);
        pending = irr & (1u << (TINY_VECTOR % 32));
        if (!pending)
            rig_sleep_ms(10);
    }
    ck_assert_msg(pending, "vector %#x not pending in the LAPIC", TINY_VECTOR);
    ck_assert_uint_eq(rig_rd32(v, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);
    domain_destroy(d);
    unlink(disk);
}
END_TEST

/* The VMM's writes reach the dirty log (ring and bitmap modes), and the
 * device state moves to a domain built for restore. */
static void dirty_and_state(enum domain_logdirty_mode mode)
{
    struct rig_log log;
    rig_log_init(&log);
    char disk[64];
    rig_make_image(disk, sizeof(disk), 16 * 512u, false);
    struct domain_config cfg;
    rig_config(&cfg, "vqdirty", 1, NULL);
    cfg.log_dirty = mode;
    rig_config_disk(&cfg, disk, "xvda");
    struct domain *d = NULL, *d2 = NULL;
    int rc = domain_create_as(&d, 4, &cfg, true, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_msg(rc == 0, "domain_create_as: %s (%s)", strerror(-rc), log.last_error);
    ck_assert_int_eq(domain_start_vcpus(d), 0);
    struct virtio_dev *v = d->devs->dev[0];
    uint8_t *ram = guest_memory_ptr(&d->mem, 0, 8 << 20);
    struct blk_rig b = { .v = v, .req_gpa = 0x400000 };
    b.f = NULL;
    rig_ring_init(&b.r, ram, 0x20000, 0x21000, 0x23000, 16);
    rig_driver_init(v, 2, VIRTIO_F_VERSION_1, &b.r, 1);
    devices_unpause(d);      /* the devices alone; the vCPU stays parked */

    size_t words = domain_logdirty_bitmap_words(d);
    uint64_t *bm = calloc(words, sizeof(uint64_t));
    ck_assert_int_eq(domain_logdirty_start(d, &log.log), 0);
    ck_assert_int_eq(domain_logdirty_harvest(d, bm, NULL), 0);
    memset(bm, 0, words * 8);
    /* IN into a buffer at 0x600000: data, status and used ring pages. */
    uint8_t *h = ram + 0x400000;
    memset(h, 0, 16);
    h[0] = VIRTIO_BLK_T_IN;
    h[8] = 2;
    rig_set_desc(&b.r, 0, 0x400000, 16, VRING_DESC_F_NEXT, 1);
    rig_set_desc(&b.r, 1, 0x600000, 1024, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    rig_set_desc(&b.r, 2, 0x700000, 1, VRING_DESC_F_WRITE, 0);
    rig_publish(&b.r, 0);
    virtio_dev_kick(v, 0);
    ck_assert(rig_wait_used(&b.r, 1, 5000));
    ck_assert_int_eq(ram[0x600000], 0x42);
    uint64_t count = 0;
    ck_assert_int_eq(domain_logdirty_harvest(d, bm, &count), 0);
    uint64_t pfns[] = { 0x600, 0x700, 0x23 };
    for (unsigned i = 0; i < 3; i++)
        ck_assert_msg(bm[pfns[i] / 64] & (1ull << (pfns[i] % 64)), "pfn %#" PRIx64 " not in the dirty log (%s)",
                      pfns[i], domain_logdirty_mode_name(domain_logdirty_mode(d)));
    ck_assert_uint_ge(count, 3);
    ck_assert_uint_eq(bm[0x400 / 64] & (1ull << (0x400 % 64)), 0);   /* only read by the device */
    /* Nothing new: nothing dirty. */
    memset(bm, 0, words * 8);
    ck_assert_int_eq(domain_logdirty_harvest(d, bm, &count), 0);
    ck_assert_uint_eq(bm[0x600 / 64] & (1ull << (0x600 % 64)), 0);
    domain_logdirty_stop(d);
    free(bm);

    /* The state, into a second domain built for restore with this config. */
    devices_pause(d);
    uint8_t *blob;
    size_t len;
    ck_assert_int_eq(domain_get_device_state(d, &blob, &len, &log.log), 0);
    rc = domain_create_as(&d2, 5, &cfg, true, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(domain_start_vcpus(d2), 0);
    struct domain_ram_region rr[2];
    unsigned nr = domain_ram_regions(d2, rr);
    ck_assert_uint_eq(nr, 1);
    memcpy(rr[0].host, ram, rr[0].size);     /* "the pages arrived" */
    ck_assert_msg(domain_set_device_state(d2, blob, len, &log.log) == 0, "%s", log.last_error);
    struct virtio_dev *v2 = d2->devs->dev[0];
    ck_assert_uint_eq(rig_rd32(v2, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
    /* Carries on with the next request in d2's copy of the rings. */
    uint8_t *ram2 = rr[0].host;
    b.r.base = ram2;
    b.v = v2;
    rig_set_desc(&b.r, 3, 0x400000, 16, VRING_DESC_F_NEXT, 4);
    rig_set_desc(&b.r, 4, 0x600000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
    rig_set_desc(&b.r, 5, 0x700000, 1, VRING_DESC_F_WRITE, 0);
    ram2[0x400008] = 5;
    rig_publish(&b.r, 3);
    devices_unpause(d2);
    virtio_dev_kick(v2, 0);
    ck_assert(rig_wait_used(&b.r, 2, 5000));
    ck_assert_int_eq(ram2[0x600000], 0x45);
    ck_assert_int_eq(ram2[0x700000], VIRTIO_BLK_S_OK);
    domain_destroy(d2);

    /* A domain without the disk refuses it; an image with only the UART
     * (an older Tandem) restores into a domain without devices. */
    struct domain_config plain;
    rig_config(&plain, "vqplain", 1, NULL);
    ck_assert_int_eq(domain_create_as(&d2, 6, &plain, true, NULL, rig_ignore_end, rig_ignore_console, NULL,
                                      &log.log), 0);
    ck_assert_int_eq(domain_set_device_state(d2, blob, len, &log.log), -EINVAL);
    ck_assert_msg(strstr(log.last_error, "1 virtio devices, this domain has 0"), "%s", log.last_error);
    size_t uart_only = 12 + sizeof(struct uart_state);
    ck_assert_int_eq(domain_set_device_state(d2, blob, uart_only, &log.log), 0);
    domain_destroy(d2);
    ck_assert_int_eq(domain_set_device_state(d, blob, uart_only, &log.log), -EINVAL);
    free(blob);
    domain_destroy(d);
    unlink(disk);
}

START_TEST(test_domain_dirty_ring) { dirty_and_state(DOMAIN_LOGDIRTY_AUTO); }
END_TEST
START_TEST(test_domain_dirty_bitmap) { dirty_and_state(DOMAIN_LOGDIRTY_BITMAP); }
END_TEST

Suite *unit_suite(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    rig_find_guest_kernel("test_virtqueue");
    have_kvm = rig_have_kvm();

    Suite *s = suite_create("virtqueue");
    TCase *tc = tcase_create("walker");
    tcase_add_test(tc, test_chain_normal);
    tcase_add_test(tc, test_chain_index_wrap);
    tcase_add_loop_test(tc, test_chain_hostile, 0, (int)(sizeof(hostiles) / sizeof(hostiles[0])));
    tcase_add_test(tc, test_map_rejects);
    tcase_add_test(tc, test_devstate_framing);
    suite_add_tcase(s, tc);

    tc = tcase_create("transport_blk");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_blk_requests);
    tcase_add_test(tc, test_blk_readonly);
    tcase_add_test(tc, test_blk_missing_target);
    tcase_add_test(tc, test_blk_hostile_needs_reset);
    tcase_add_test(tc, test_queue_ready_rejects_bad_ring);
    tcase_add_test(tc, test_feature_negotiation);
    tcase_add_test(tc, test_blk_pause);
    tcase_add_test(tc, test_state_roundtrip);
    suite_add_tcase(s, tc);

    tc = tcase_create("net");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_net_tap_bridge);
    tcase_add_test(tc, test_net_rx_hostile);
    tcase_add_test(tc, test_net_create_errors);
    tcase_add_test(tc, test_net_announce);
    suite_add_tcase(s, tc);

    if (have_kvm) {
        tc = tcase_create("domain");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_domain_devices);
        tcase_add_test(tc, test_domain_ioeventfd_irqfd);
        tcase_add_test(tc, test_domain_dirty_ring);
        tcase_add_test(tc, test_domain_dirty_bitmap);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "SKIP: no /dev/kvm: test_virtqueue's domain tests were NOT run\n");
    }
    return s;
}
