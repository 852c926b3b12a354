/* Remus in the devices (xen/virtio_net.c, xen/virtio_blk.c, xen/devices.c):
 * output buffering on a real virtio-net device over a real tap in a
 * private network namespace, and disk write tracking, harvest and the
 * secondary's block writes on real virtio-blk devices over real image
 * files.  The devices are driven through their register file over fake
 * guest memory (tests/unit/rig_virtio.h, shared with test_virtqueue) and
 * gathered into a bare struct domain so the domain_* API is the one under
 * test.
 *
 * The network tests need root and /dev/net/tun; without them they print
 * "SKIP" and are not run. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "devices.h"
#include "domain.h"
#include "rig_domain.h"
#include "rig_time.h"
#include "rig_virtio.h"
#include "tap.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

/* Network tests print "SKIP: ...; output buffering test NOT run" without a netns. */
#define NETNS_WHAT "output buffering test"

/* ---- Fake guest memory (rig_virtio.h) -------------------------------------- */

/* 8 MiB: the block requests' data slots (1 MiB each) start at 3 MiB. */
#define RAM_SIZE (8u << 20)
#define RING_NUM 16u

/* ---- virtio-net on a tap in a private network namespace -------------------- */

static const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x65, 0x43, 0x21 };
#define TX_BUF_GPA 0x400000u
#define TX_BUF_STRIDE 0x10000u

struct net_rig {
    struct rig_ram *f;
    struct rig_log log;
    struct domain *d;
    struct virtio_dev *v;
    struct rig_ring rx, tx;
    unsigned next_tx;        /* descriptors and buffers taken in turn */
    int sock;                /* a packet socket on the tap */
};

static void net_rig_open(struct net_rig *n)
{
    memset(n, 0, sizeof(*n));
    n->f = rig_ram_new(RAM_SIZE);
    rig_log_init(&n->log);
    struct domain_vif vif;
    memset(&vif, 0, sizeof(vif));
    memcpy(vif.mac, guest_mac, 6);
    snprintf(vif.ifname, sizeof(vif.ifname), "vifremus");
    struct virtio_env env = rig_ram_env(n->f, &n->log.log);
    int rc = virtio_net_create(&n->v, &env, 0, 3, 0, &vif, false);
    ck_assert_msg(rc == 0, "virtio_net_create: %s (%s)", strerror(-rc), n->log.last_error);
    n->d = rig_bare_domain(&n->log.log);
    rig_bare_domain_add(n->d, n->v);
    rig_ring_init(&n->rx, n->f->ram, 0x10000, 0x11000, 0x12000, RING_NUM);
    rig_ring_init(&n->tx, n->f->ram, 0x20000, 0x21000, 0x22000, RING_NUM);
    virtio_dev_unpause(n->v);
    struct rig_ring rings[2] = { n->rx, n->tx };
    rig_driver_init(n->v, 1, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS, rings, 2);

    n->sock = rig_packet_socket("vifremus");
}

static void net_rig_close(struct net_rig *n)
{
    close(n->sock);
    rig_bare_domain_free(n->d);
    rig_ram_free(n->f);
}

/* The guest puts frame `seq` (payload bytes behind the Ethernet header)
 * on its transmit queue; kick: notify the device. */
static void guest_tx(struct net_rig *n, uint32_t seq, unsigned payload, bool kick)
{
    unsigned slot = n->next_tx++ % RING_NUM;
    uint64_t gpa = TX_BUF_GPA + TX_BUF_STRIDE * slot;
    uint8_t *p = n->f->ram + gpa;
    memset(p, 0, VIRTIO_NET_HDR_LEN);
    rig_test_frame(p + VIRTIO_NET_HDR_LEN, guest_mac, seq, payload);
    rig_set_desc(&n->tx, slot, gpa, VIRTIO_NET_HDR_LEN + 14 + payload, 0, 0);
    rig_publish(&n->tx, (uint16_t)slot);
    if (kick)
        rig_wr32(n->v, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

/* The guest's test frames (rig_virtio.h) on the tap. */
static void expect_frames(struct net_rig *n, uint32_t first, unsigned count)
{
    rig_expect_test_frames(n->sock, guest_mac, first, count, "the tap");
}

static void expect_no_frame(struct net_rig *n, unsigned ms)
{
    rig_expect_no_test_frame(n->sock, guest_mac, ms, "the tap");
}

START_TEST(test_net_held_until_release)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct net_rig n;
    net_rig_open(&n);
    ck_assert_int_eq(domain_net_buffer_start(n.d, 0), 0);
    ck_assert_int_eq(domain_net_buffer_start(n.d, 0), -EBUSY);
    for (uint32_t i = 0; i < 3; i++)
        guest_tx(&n, i, 100, true);
    /* The guest's descriptors complete at once: it does not wait for acks. */
    ck_assert_msg(rig_wait_used(&n.tx, 3, 5000), "held frames' descriptors not completed (%s)", n.log.last_error);
    expect_no_frame(&n, 300);
    struct domain_net_buffer_stats st;
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 3);
    ck_assert_uint_eq(st.held_bytes, 3 * (14 + 100));
    ck_assert_uint_eq(st.released_frames, 0);

    /* Receive is not buffered: a frame for the guest arrives meanwhile. */
    rig_set_desc(&n.rx, 0, 0x100000, VIRTIO_NET_RX_MIN, VRING_DESC_F_WRITE, 0);
    rig_publish(&n.rx, 0);
    rig_wr32(n.v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    uint8_t in[64];
    memset(in, 0, sizeof(in));
    memcpy(in, guest_mac, 6);
    const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
    memcpy(in + 6, host_mac, 6);
    in[12] = 0x88;
    in[13] = 0xb6;
    ck_assert_int_eq(send(n.sock, in, sizeof(in), 0), (ssize_t)sizeof(in));
    ck_assert_msg(rig_wait_used(&n.rx, 1, 5000), "receive stalled while buffering");
    ck_assert(memcmp(n.f->ram + 0x100000 + VIRTIO_NET_HDR_LEN, in, sizeof(in)) == 0);

    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);
    expect_no_frame(&n, 200);
    domain_net_buffer_release(n.d, 1);
    expect_frames(&n, 0, 3);
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 0);
    ck_assert_uint_eq(st.held_bytes, 0);
    ck_assert_uint_eq(st.released_frames, 3);
    ck_assert_uint_eq(st.max_held_bytes, 3 * (14 + 100));
    ck_assert_uint_eq(st.stalls, 0);
    net_rig_close(&n);
}
END_TEST

struct release_args { struct domain *d; uint64_t epoch; };
static void *release_thread(void *arg)
{
    struct release_args *a = arg;
    domain_net_buffer_release(a->d, a->epoch);
    return NULL;
}

START_TEST(test_net_release_by_epoch)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct net_rig n;
    net_rig_open(&n);
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 0);   /* not buffering: no epochs */
    ck_assert_int_eq(domain_net_buffer_start(n.d, 0), 0);
    guest_tx(&n, 0, 60, true);
    guest_tx(&n, 1, 60, true);
    ck_assert(rig_wait_used(&n.tx, 2, 5000));
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);
    guest_tx(&n, 2, 60, true);
    guest_tx(&n, 3, 60, true);
    ck_assert(rig_wait_used(&n.tx, 4, 5000));
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 2);
    guest_tx(&n, 4, 60, true);                            /* the open epoch, 3 */
    ck_assert(rig_wait_used(&n.tx, 5, 5000));

    domain_net_buffer_release(n.d, 1);
    expect_frames(&n, 0, 2);
    expect_no_frame(&n, 300);
    domain_net_buffer_release(n.d, 1);                    /* again: nothing more */
    expect_no_frame(&n, 100);
    /* Beyond the last mark: only what was marked goes. */
    domain_net_buffer_release(n.d, 99);
    expect_frames(&n, 2, 2);
    expect_no_frame(&n, 300);
    struct domain_net_buffer_stats st;
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 1);
    ck_assert_uint_eq(st.released_frames, 4);
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 3);
    domain_net_buffer_release(n.d, 3);
    expect_frames(&n, 4, 1);

    /* Releases from two threads at once still keep the guest's order. */
    for (uint32_t i = 5; i < 10; i++)
        guest_tx(&n, i, 60, true);
    ck_assert(rig_wait_used(&n.tx, 10, 5000));
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 4);
    for (uint32_t i = 10; i < 15; i++)
        guest_tx(&n, i, 60, true);
    ck_assert(rig_wait_used(&n.tx, 15, 5000));
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 5);
    struct release_args a4 = { n.d, 4 }, a5 = { n.d, 5 };
    pthread_t t4, t5;
    ck_assert_int_eq(pthread_create(&t5, NULL, release_thread, &a5), 0);
    ck_assert_int_eq(pthread_create(&t4, NULL, release_thread, &a4), 0);
    pthread_join(t4, NULL);
    pthread_join(t5, NULL);
    expect_frames(&n, 5, 10);
    net_rig_close(&n);
}
END_TEST

START_TEST(test_net_backpressure)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct net_rig n;
    net_rig_open(&n);
    const unsigned frame = 14 + 200;
    ck_assert_int_eq(domain_net_buffer_start(n.d, 3 * frame), 0);
    for (uint32_t i = 0; i < 6; i++)
        guest_tx(&n, i, 200, true);
    /* Three fit; the rest stay in the guest's ring, none is dropped. */
    ck_assert(rig_wait_used(&n.tx, 3, 5000));
    rig_sleep_ms(300);
    ck_assert_uint_eq(rig_used_idx(&n.tx), 3);
    rig_wr32(n.v, VIRTIO_MMIO_QUEUE_NOTIFY, 1);               /* kicking does not help */
    rig_sleep_ms(100);
    ck_assert_uint_eq(rig_used_idx(&n.tx), 3);
    struct domain_net_buffer_stats st;
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 3);
    ck_assert_uint_eq(st.held_bytes, 3 * frame);
    ck_assert_uint_eq(st.stalls, 1);
    expect_no_frame(&n, 100);

    /* A release makes room: the device takes the rest, into epoch 2. */
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);
    domain_net_buffer_release(n.d, 1);
    expect_frames(&n, 0, 3);
    ck_assert_msg(rig_wait_used(&n.tx, 6, 5000), "transmit did not resume after the release (used %u)",
                  rig_used_idx(&n.tx));
    expect_no_frame(&n, 200);
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 3);
    ck_assert_uint_eq(st.max_held_bytes, 3 * frame);
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 2);
    domain_net_buffer_release(n.d, 2);
    expect_frames(&n, 3, 3);

    struct virtio_net_stats ns;
    virtio_net_get_stats(n.v, &ns);
    ck_assert_uint_eq(ns.tx_dropped, 0);
    ck_assert_uint_eq(ns.tx_frames, 6);
    net_rig_close(&n);
}
END_TEST

START_TEST(test_net_frame_bigger_than_bound)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct net_rig n;
    net_rig_open(&n);
    /* A bound below one frame: frames still go, one epoch's worth at a time. */
    ck_assert_int_eq(domain_net_buffer_start(n.d, 50), 0);
    guest_tx(&n, 0, 100, true);
    guest_tx(&n, 1, 100, true);
    ck_assert(rig_wait_used(&n.tx, 1, 5000));
    rig_sleep_ms(200);
    ck_assert_uint_eq(rig_used_idx(&n.tx), 1);
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);
    domain_net_buffer_release(n.d, 1);
    expect_frames(&n, 0, 1);
    ck_assert(rig_wait_used(&n.tx, 2, 5000));
    domain_net_buffer_stop(n.d, true);
    expect_frames(&n, 1, 1);
    net_rig_close(&n);
}
END_TEST

START_TEST(test_net_stop)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct net_rig n;
    net_rig_open(&n);
    ck_assert_int_eq(domain_net_buffer_start(n.d, 0), 0);
    guest_tx(&n, 0, 80, true);
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);   /* on the way to the tap only after ack 1... */
    guest_tx(&n, 1, 80, true);                            /* ...and this one is in the open epoch */
    ck_assert(rig_wait_used(&n.tx, 2, 5000));
    expect_no_frame(&n, 200);
    domain_net_buffer_stop(n.d, true);                    /* the secondary is lost: send everything */
    expect_frames(&n, 0, 2);
    struct domain_net_buffer_stats st;
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 0);
    ck_assert_uint_eq(st.released_frames, 2);
    /* Unbuffered now: straight to the tap. */
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 0);
    guest_tx(&n, 2, 80, true);
    expect_frames(&n, 2, 1);

    /* Again, discarding: epochs count from 1 again. */
    ck_assert_int_eq(domain_net_buffer_start(n.d, 0), 0);
    guest_tx(&n, 3, 80, true);
    guest_tx(&n, 4, 80, true);
    ck_assert(rig_wait_used(&n.tx, 5, 5000));
    ck_assert_uint_eq(domain_net_buffer_mark(n.d), 1);
    domain_net_buffer_stop(n.d, false);
    expect_no_frame(&n, 300);
    domain_net_buffer_stats(n.d, &st);
    ck_assert_uint_eq(st.held_frames, 0);
    ck_assert_uint_eq(st.held_bytes, 0);
    ck_assert_uint_eq(st.released_frames, 0);
    domain_net_buffer_release(n.d, 1);                    /* after the stop: nothing */
    expect_no_frame(&n, 100);
    guest_tx(&n, 5, 80, true);
    expect_frames(&n, 5, 1);
    net_rig_close(&n);
}
END_TEST

/* ---- virtio-blk on an image file ---------------------------------------------- */

#define REQ_HDR_GPA 0x200000u
#define REQ_DATA_GPA 0x300000u      /* up to 1 MiB of data per request slot */
#define REQ_SLOT 0x100000u
#define REQ_STATUS_GPA 0x1f0000u

struct blk_rig {
    struct virtio_dev *v;
    struct rig_ring r;
    unsigned next_desc;
    uint64_t base;              /* this rig's rings */
    unsigned slot;              /* request area */
};

struct disk_env {
    struct rig_ram *f;
    struct rig_log log;
    struct domain *d;
    unsigned n;
    struct blk_rig b[4];
    char path[4][64];
};

static void disk_env_init(struct disk_env *e)
{
    memset(e, 0, sizeof(*e));
    e->f = rig_ram_new(RAM_SIZE);
    rig_log_init(&e->log);
    e->d = rig_bare_domain(&e->log.log);
}

/* Adds a disk over an image of `bytes` (made here) to the bare domain. */
static struct blk_rig *disk_add(struct disk_env *e, uint64_t bytes, bool sparse, bool readonly)
{
    unsigned i = e->n++;
    rig_make_image(e->path[i], sizeof(e->path[i]), bytes, sparse);
    struct domain_disk disk = { .readonly = readonly };
    snprintf(disk.target, sizeof(disk.target), "%s", e->path[i]);
    snprintf(disk.vdev, sizeof(disk.vdev), "xvd%c", 'a' + i);
    struct virtio_env env = rig_ram_env(e->f, &e->log.log);
    struct blk_rig *b = &e->b[i];
    int rc = virtio_blk_create(&b->v, &env, i, &disk);
    ck_assert_msg(rc == 0, "virtio_blk_create: %s (%s)", strerror(-rc), e->log.last_error);
    rig_bare_domain_add(e->d, b->v);
    virtio_dev_unpause(b->v);
    b->base = 0x10000u * (i + 1);
    b->slot = i;
    rig_ring_init(&b->r, e->f->ram, b->base, b->base + 0x1000, b->base + 0x2000, RING_NUM);
    rig_driver_init(b->v, 2, VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH, &b->r, 1);
    return b;
}

static void disk_env_free(struct disk_env *e)
{
    rig_bare_domain_free(e->d);
    for (unsigned i = 0; i < e->n; i++)
        unlink(e->path[i]);
    rig_ram_free(e->f);
}

/* Publishes request k (0 .. RING_NUM/3 - 1 at once) of this rig: a write
 * (or read) of len bytes at `sector`, data filled with `fill`. */
static uint64_t blk_publish(struct disk_env *e, struct blk_rig *b, unsigned k, uint32_t type, uint64_t sector,
                            uint32_t len, uint8_t fill)
{
    uint64_t hdr = REQ_HDR_GPA + 0x1000u * (b->slot * 8 + k);
    uint64_t dat = REQ_DATA_GPA + (uint64_t)REQ_SLOT * k;
    uint64_t st = REQ_STATUS_GPA + 16u * (b->slot * 8 + k);
    ck_assert_uint_le(dat + len, RAM_SIZE);
    uint8_t h[16] = { 0 };
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    memcpy(e->f->ram + hdr, h, 16);
    if (type == VIRTIO_BLK_T_OUT)
        memset(e->f->ram + dat, fill, len);
    e->f->ram[st] = 0xee;
    unsigned d0 = b->next_desc % RING_NUM, d1 = (d0 + 1) % RING_NUM, d2 = (d0 + 2) % RING_NUM;
    b->next_desc += 3;
    rig_set_desc(&b->r, d0, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)d1);
    rig_set_desc(&b->r, d1, dat, len, VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0),
             (uint16_t)d2);
    rig_set_desc(&b->r, d2, st, 1, VRING_DESC_F_WRITE, 0);
    rig_publish(&b->r, (uint16_t)d0);
    return st;
}

static uint8_t blk_io(struct disk_env *e, struct blk_rig *b, uint32_t type, uint64_t sector, uint32_t len,
                      uint8_t fill)
{
    if (b->next_desc + 3 > RING_NUM / 3 * 3)
        b->next_desc = 0;    /* one request at a time: the ring is free again */
    uint16_t want = (uint16_t)(rig_used_idx(&b->r) + 1);
    uint64_t st = blk_publish(e, b, 0, type, sector, len, fill);
    rig_wr32(b->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    ck_assert_msg(rig_wait_used(&b->r, want, 5000), "request not completed (%s)", e->log.last_error);
    return e->f->ram[st];
}

/* What a harvest handed. */
struct harvested {
    unsigned n;
    struct { unsigned disk; uint64_t offset; uint32_t len; uint8_t data[DOMAIN_DISK_BLOCK]; } blk[600];
    int refuse_at;           /* >= 0: return refuse_rc for that block (index into this harvest) */
    int refuse_rc;
    unsigned calls;
};

static int collect(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len)
{
    struct harvested *h = opaque;
    if (h->refuse_at >= 0 && h->calls++ == (unsigned)h->refuse_at)
        return h->refuse_rc;
    ck_assert_uint_lt(h->n, 600);
    ck_assert_uint_le(len, DOMAIN_DISK_BLOCK);
    h->blk[h->n].disk = disk;
    h->blk[h->n].offset = offset;
    h->blk[h->n].len = len;
    memcpy(h->blk[h->n].data, data, len);
    h->n++;
    return 0;
}

static struct harvested *harvest(struct disk_env *e, size_t max_bytes, bool *more, int want_rc)
{
    struct harvested *h = calloc(1, sizeof(*h));
    ck_assert_ptr_nonnull(h);
    h->refuse_at = -1;
    int rc = domain_disk_harvest(e->d, max_bytes, collect, h, more, &e->log.log);
    ck_assert_msg(rc == want_rc, "harvest: %d, expected %d (%s)", rc, want_rc, e->log.last_error);
    return h;
}

static void expect_blocks(const struct harvested *h, unsigned disk, const uint64_t *blocks, unsigned n)
{
    ck_assert_msg(h->n == n, "harvest handed %u blocks, expected %u", h->n, n);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_uint_eq(h->blk[i].disk, disk);
        ck_assert_msg(h->blk[i].offset == blocks[i] * DOMAIN_DISK_BLOCK, "block %u at %" PRIu64 ", expected %"
                      PRIu64, i, h->blk[i].offset, blocks[i] * DOMAIN_DISK_BLOCK);
    }
}

/* The image's bytes [off, off+len). */
static void image_read(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* 83 sectors: ten whole blocks and a last one of 1536 bytes. */
#define ODD_DISK_BYTES (83u * 512u)

START_TEST(test_blk_writes_set_blocks)
{
    struct disk_env e;
    disk_env_init(&e);
    struct blk_rig *b = disk_add(&e, ODD_DISK_BYTES, false, false);
    ck_assert_uint_eq(domain_nr_disks(e.d), 1);
    /* Not tracking yet: a write leaves no trace. */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 0, 512, 0x11), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(domain_disk_track_start(e.d, false), 0);
    bool more = true;
    struct harvested *h = harvest(&e, 0, &more, 0);
    ck_assert_uint_eq(h->n, 0);
    ck_assert(!more);
    free(h);

    /* One sector inside block 1; a write across blocks 1|2; the last
     * sector, in the short block 10; a read, which dirties nothing. */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 9, 512, 0xa1), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 15, 1024, 0xa2), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 82, 512, 0xa3), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_IN, 40, 4096, 0), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 83, 512, 0xa4), VIRTIO_BLK_S_IOERR);   /* beyond: none */
    virtio_dev_pause(b->v);          /* as at a checkpoint */
    h = harvest(&e, 0, &more, 0);
    const uint64_t want[] = { 1, 2, 10 };
    expect_blocks(h, 0, want, 3);
    ck_assert(!more);
    /* Current contents, as the image has them, and what the guest wrote. */
    uint8_t img[DOMAIN_DISK_BLOCK];
    for (unsigned i = 0; i < 3; i++) {
        image_read(e.path[0], h->blk[i].offset, img, h->blk[i].len);
        ck_assert(memcmp(img, h->blk[i].data, h->blk[i].len) == 0);
    }
    ck_assert_uint_eq(h->blk[0].len, 4096);
    ck_assert_uint_eq(h->blk[2].len, 1536);
    ck_assert(all_bytes(h->blk[0].data + 512, 512, 0xa1));         /* sector 9 */
    ck_assert_int_eq(h->blk[0].data[0], 0x40 + 8);                  /* sector 8: untouched */
    ck_assert(all_bytes(h->blk[0].data + 3584, 512, 0xa2));        /* sector 15 */
    ck_assert(all_bytes(h->blk[1].data, 512, 0xa2));               /* sector 16 */
    ck_assert_int_eq(h->blk[1].data[512], 0x40 + 17);
    ck_assert(all_bytes(h->blk[2].data + 1024, 512, 0xa3));        /* sector 82 */
    free(h);
    /* Cleared by the harvest. */
    h = harvest(&e, 0, &more, 0);
    ck_assert_uint_eq(h->n, 0);
    free(h);
    virtio_dev_unpause(b->v);

    /* Rewritten after a harvest: dirty again, with the new contents. */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 9, 512, 0xb1), VIRTIO_BLK_S_OK);
    h = harvest(&e, 0, &more, 0);
    const uint64_t again[] = { 1 };
    expect_blocks(h, 0, again, 1);
    ck_assert(all_bytes(h->blk[0].data + 512, 512, 0xb1));
    free(h);

    /* Stopped: writes leave no trace again. */
    domain_disk_track_stop(e.d);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 0, 512, 0x12), VIRTIO_BLK_S_OK);
    h = harvest(&e, 0, &more, 0);
    ck_assert_uint_eq(h->n, 0);
    free(h);
    disk_env_free(&e);
}
END_TEST

START_TEST(test_blk_harvest_bounded)
{
    struct disk_env e;
    disk_env_init(&e);
    struct blk_rig *b = disk_add(&e, 64u * 512u, false, false);   /* 8 blocks */
    ck_assert_int_eq(domain_disk_track_start(e.d, false), 0);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 0, 16384, 0xc0), VIRTIO_BLK_S_OK);   /* blocks 0-3 */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 40, 512, 0xc5), VIRTIO_BLK_S_OK);    /* block 5 */
    virtio_dev_pause(b->v);
    bool more = false;
    struct harvested *h = harvest(&e, 8192, &more, 0);
    const uint64_t first[] = { 0, 1 }, second[] = { 2, 3 }, third[] = { 5 };
    expect_blocks(h, 0, first, 2);
    ck_assert(more);
    free(h);
    h = harvest(&e, 8192, &more, 0);
    expect_blocks(h, 0, second, 2);
    ck_assert(more);
    free(h);
    h = harvest(&e, 8192, &more, 0);
    expect_blocks(h, 0, third, 1);
    ck_assert(!more);
    free(h);

    /* A bound below one block still hands one per call. */
    virtio_dev_unpause(b->v);
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 8, 1024, 0xd0), VIRTIO_BLK_S_OK);    /* block 1 */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 56, 512, 0xd7), VIRTIO_BLK_S_OK);    /* block 7 */
    h = harvest(&e, 100, &more, 0);
    const uint64_t b1[] = { 1 }, b7[] = { 7 };
    expect_blocks(h, 0, b1, 1);
    ck_assert(more);
    free(h);
    h = harvest(&e, 100, &more, 0);
    expect_blocks(h, 0, b7, 1);
    ck_assert(!more);
    free(h);

    /* fn stops it: what it refused stays dirty; its value comes back. */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 0, 8192, 0xe0), VIRTIO_BLK_S_OK);    /* blocks 0, 1 */
    h = calloc(1, sizeof(*h));
    h->refuse_at = 1;
    h->refuse_rc = 7;
    ck_assert_int_eq(domain_disk_harvest(e.d, 0, collect, h, &more, &e.log.log), 7);
    expect_blocks(h, 0, (const uint64_t[]){ 0 }, 1);
    ck_assert(more);
    free(h);
    h = harvest(&e, 0, &more, 0);
    expect_blocks(h, 0, b1, 1);
    ck_assert(all_bytes(h->blk[0].data, 4096, 0xe0));
    ck_assert(!more);
    free(h);
    disk_env_free(&e);
}
END_TEST

START_TEST(test_blk_all_dirty_sparse)
{
    struct disk_env e;
    disk_env_init(&e);
    const uint64_t mib = 1u << 20;
    /* A 16 MiB sparse image with data in two places, and a written one. */
    struct blk_rig *b = disk_add(&e, 16 * mib, true, false);
    (void)b;
    int fd = open(e.path[0], O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    uint8_t blk[4096];
    memset(blk, 0x5d, sizeof(blk));
    ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), (off_t)mib), 4096);
    ck_assert_int_eq(pwrite(fd, blk, 100, (off_t)(8 * mib + 100)), 100);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    struct blk_rig *w = disk_add(&e, 8u * 4096u, false, false);    /* 8 blocks, all data */
    ck_assert_int_eq(domain_disk_track_start(e.d, true), 0);
    virtio_dev_pause(b->v);
    virtio_dev_pause(w->v);
    bool more = true;
    struct harvested *h = harvest(&e, 0, &more, 0);
    ck_assert(!more);
    /* Disk 0: blocks 256 and 2048 only (never the 4096 blocks of the
     * image); then every block of disk 1. */
    ck_assert_msg(h->n == 2 + 8, "initial copy handed %u blocks", h->n);
    ck_assert_uint_eq(h->blk[0].disk, 0);
    ck_assert_uint_eq(h->blk[0].offset, mib);
    ck_assert(all_bytes(h->blk[0].data, 4096, 0x5d));
    ck_assert_uint_eq(h->blk[1].offset, 8 * mib);
    ck_assert(all_bytes(h->blk[1].data, 100, 0));
    ck_assert(all_bytes(h->blk[1].data + 100, 100, 0x5d));
    for (unsigned i = 0; i < 8; i++) {
        ck_assert_uint_eq(h->blk[2 + i].disk, 1);
        ck_assert_uint_eq(h->blk[2 + i].offset, i * 4096u);
        ck_assert_int_eq(h->blk[2 + i].data[0], 0x40 + 8 * i);
    }
    free(h);
    virtio_dev_unpause(b->v);
    virtio_dev_unpause(w->v);
    /* A write into a hole is tracked like any other. */
    ck_assert_uint_eq(blk_io(&e, b, VIRTIO_BLK_T_OUT, 4 * mib / 512, 512, 0x6e), VIRTIO_BLK_S_OK);
    h = harvest(&e, 0, &more, 0);
    expect_blocks(h, 0, (const uint64_t[]){ 4 * mib / 4096 }, 1);
    free(h);
    disk_env_free(&e);

    /* 1 GiB, sparse, one block of data: the initial copy is that block. */
    disk_env_init(&e);
    disk_add(&e, 1024 * mib, true, false);
    fd = open(e.path[0], O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), (off_t)(700 * mib)), 4096);
    close(fd);
    uint64_t t0 = rig_now_ms();
    ck_assert_int_eq(domain_disk_track_start(e.d, true), 0);
    h = harvest(&e, 0, &more, 0);
    expect_blocks(h, 0, (const uint64_t[]){ 700 * mib / 4096 }, 1);
    ck_assert_msg(rig_now_ms() - t0 < 2000, "the initial copy of a nearly empty 1 GiB image took %" PRIu64 " ms",
                  rig_now_ms() - t0);
    free(h);
    disk_env_free(&e);
}
END_TEST

/* Writes the guest saw complete before a pause are in the harvest that
 * follows it, while the device works through a queue of them. */
START_TEST(test_blk_completed_before_pause)
{
    struct disk_env e;
    disk_env_init(&e);
    struct blk_rig *b = disk_add(&e, 256u * 4096u, false, false);
    ck_assert_int_eq(domain_disk_track_start(e.d, false), 0);
    unsigned checked = 0;
    for (unsigned round = 0; round < 20; round++) {
        b->next_desc = 0;
        uint16_t start = rig_used_idx(&b->r);
        /* Five writes of 256 KiB (64 blocks each) to blocks 0..255, in a
         * different order each round. */
        for (unsigned k = 0; k < 5; k++) {
            unsigned region = (k + round) % 4;
            blk_publish(&e, b, k, VIRTIO_BLK_T_OUT, region * 512u, 256u * 1024u, (uint8_t)(round * 8 + k));
        }
        rig_wr32(b->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        if (round % 5 == 4)
            ck_assert(rig_wait_used(&b->r, (uint16_t)(start + 1), 5000));   /* some rounds: one done at least */
        else
            rig_sleep_ms(round % 4);
        devices_pause(e.d);
        uint16_t done = (uint16_t)(rig_used_idx(&b->r) - start);
        bool more;
        struct harvested *h = harvest(&e, 0, &more, 0);
        for (unsigned k = 0; k < done && k < 4; k++) {
            /* Request k's 64 blocks must all be there. */
            unsigned region = (k + round) % 4;
            for (unsigned blkno = region * 64; blkno < region * 64 + 64; blkno++) {
                bool found = false;
                for (unsigned i = 0; i < h->n && !found; i++)
                    found = h->blk[i].offset == blkno * 4096ull;
                ck_assert_msg(found, "round %u: block %u of a completed write is not dirty", round, blkno);
                checked++;
            }
        }
        free(h);
        devices_unpause(e.d);
        ck_assert(rig_wait_used(&b->r, (uint16_t)(start + 5), 5000));
        h = harvest(&e, 0, &more, 0);    /* the rest, for the next round */
        free(h);
    }
    ck_assert_uint_gt(checked, 0);
    disk_env_free(&e);
}
END_TEST

START_TEST(test_disk_write_bounds)
{
    struct disk_env e;
    disk_env_init(&e);
    disk_add(&e, ODD_DISK_BYTES, false, false);
    disk_add(&e, 8u * 512u, false, true);
    ck_assert_uint_eq(domain_nr_disks(e.d), 2);
    uint8_t data[4096], back[4096];
    memset(data, 0x7a, sizeof(data));
    ck_assert_int_eq(domain_disk_write(e.d, 0, 4096, data, 4096, &e.log.log), 0);
    image_read(e.path[0], 4096, back, 4096);
    ck_assert(memcmp(back, data, 4096) == 0);
    image_read(e.path[0], 4095, back, 1);
    ck_assert_int_eq(back[0], 0x40 + 7);
    /* The short last block, to the very end. */
    ck_assert_int_eq(domain_disk_write(e.d, 0, ODD_DISK_BYTES - 1536, data, 1536, &e.log.log), 0);
    ck_assert_int_eq(domain_disk_sync(e.d, &e.log.log), 0);
    /* One byte beyond; an offset past the end; one that would wrap. */
    e.log.last_error[0] = 0;
    ck_assert_int_eq(domain_disk_write(e.d, 0, ODD_DISK_BYTES - 1535, data, 1536, &e.log.log), -EINVAL);
    ck_assert_msg(strstr(e.log.last_error, "beyond") && strstr(e.log.last_error, "xvda"), "error: %s",
                  e.log.last_error);
    ck_assert_int_eq(domain_disk_write(e.d, 0, ODD_DISK_BYTES + 4096, data, 1, &e.log.log), -EINVAL);
    ck_assert_int_eq(domain_disk_write(e.d, 0, UINT64_MAX - 10, data, 4096, &e.log.log), -EINVAL);
    ck_assert_int_eq(domain_disk_write(e.d, 2, 0, data, 512, &e.log.log), -EINVAL);
    ck_assert_msg(strstr(e.log.last_error, "disk 2"), "error: %s", e.log.last_error);
    /* Read-only: refused, the image untouched. */
    ck_assert_int_eq(domain_disk_write(e.d, 1, 0, data, 512, &e.log.log), -EROFS);
    image_read(e.path[1], 0, back, 512);
    ck_assert(all_bytes(back, 512, 0x40));
    image_read(e.path[0], ODD_DISK_BYTES - 1536, back, 1536);
    ck_assert(all_bytes(back, 1536, 0x7a));
    struct stat st;
    ck_assert_int_eq(stat(e.path[0], &st), 0);
    ck_assert_int_eq(st.st_size, ODD_DISK_BYTES);           /* never grown */
    ck_assert_int_eq(domain_disk_sync(e.d, &e.log.log), 0);
    disk_env_free(&e);
}
END_TEST

START_TEST(test_disk_readonly_untracked)
{
    struct disk_env e;
    disk_env_init(&e);
    struct blk_rig *ro = disk_add(&e, 16u * 512u, false, true);
    struct blk_rig *rw = disk_add(&e, 16u * 512u, false, false);
    ck_assert_int_eq(domain_disk_track_start(e.d, true), 0);
    bool more;
    struct harvested *h = harvest(&e, 0, &more, 0);
    /* Only disk 1's two blocks: the read-only disk is never copied. */
    ck_assert_uint_eq(h->n, 2);
    ck_assert_uint_eq(h->blk[0].disk, 1);
    ck_assert_uint_eq(h->blk[1].disk, 1);
    free(h);
    ck_assert_uint_eq(blk_io(&e, ro, VIRTIO_BLK_T_OUT, 0, 512, 0x99), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_io(&e, rw, VIRTIO_BLK_T_OUT, 8, 512, 0x98), VIRTIO_BLK_S_OK);
    h = harvest(&e, 0, &more, 0);
    ck_assert_uint_eq(h->n, 1);
    ck_assert_uint_eq(h->blk[0].disk, 1);
    ck_assert_uint_eq(h->blk[0].offset, 4096);
    free(h);
    disk_env_free(&e);
}
END_TEST

/* ---- A real guest ----------------------------------------------------------------
 * The test guest's disklog workload appends records to its disk as fast
 * as it can; at each pause the harvest, applied with domain_disk_write to
 * a second image (the "secondary"), must make it equal to the guest's. */

static bool have_kvm;

struct apply_ctx { struct domain *secondary; const struct tlog *log; unsigned blocks; };

static int apply_block(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len)
{
    struct apply_ctx *a = opaque;
    a->blocks++;
    return domain_disk_write(a->secondary, disk, offset, data, len, a->log);
}

static bool images_equal(const char *a, const char *b, uint64_t bytes, uint64_t *first_diff)
{
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fa, 0);
    ck_assert_int_ge(fb, 0);
    static uint8_t ba[65536], bb[65536];
    bool eq = true;
    for (uint64_t off = 0; off < bytes && eq; off += sizeof(ba)) {
        ssize_t ra = pread(fa, ba, sizeof(ba), (off_t)off), rb = pread(fb, bb, sizeof(bb), (off_t)off);
        ck_assert_int_eq(ra, rb);
        if (memcmp(ba, bb, (size_t)ra)) {
            eq = false;
            for (ssize_t i = 0; i < ra; i++)
                if (ba[i] != bb[i]) {
                    *first_diff = off + (uint64_t)i;
                    break;
                }
        }
    }
    close(fa);
    close(fb);
    return eq;
}

START_TEST(test_guest_disk_replica)
{
    struct rig_log log;
    rig_log_init(&log);
    const uint64_t bytes = 2u << 20;
    char primary_img[64], secondary_img[64];
    rig_make_image(primary_img, sizeof(primary_img), bytes, true);
    rig_make_image(secondary_img, sizeof(secondary_img), bytes, true);
    struct domain_config cfg;
    rig_config(&cfg, "remusdisk", 1, "workload=disklog rate=0 fullpass=0 flush_every=0");
    rig_config_disk(&cfg, primary_img, "xvda");
    struct domain *d = NULL;
    int rc = domain_create_as(&d, 21, &cfg, false, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_msg(rc == 0, "domain_create_as: %s (%s)", strerror(-rc), log.last_error);

    /* The secondary: a bare domain over the second image. */
    struct disk_env sec;
    disk_env_init(&sec);
    struct domain_disk disk = { .readonly = false };
    snprintf(disk.target, sizeof(disk.target), "%s", secondary_img);
    snprintf(disk.vdev, sizeof(disk.vdev), "xvda");
    struct virtio_env env = rig_ram_env(sec.f, &sec.log.log);
    struct virtio_dev *sv = NULL;
    ck_assert_int_eq(virtio_blk_create(&sv, &env, 0, &disk), 0);
    rig_bare_domain_add(sec.d, sv);

    ck_assert_int_eq(domain_disk_track_start(d, true), 0);
    ck_assert_int_eq(domain_start_vcpus(d), 0);
    domain_unpause(d);
    struct apply_ctx a = { .secondary = sec.d, .log = &log.log };
    unsigned busy_epochs = 0, epochs = 0;
    uint64_t end = rig_now_ms() + 30000;
    while (busy_epochs < 8 && rig_now_ms() < end) {
        rig_sleep_ms(40);
        domain_pause(d);
        unsigned before = a.blocks;
        bool more = true;
        rc = domain_disk_harvest(d, 64 * 1024, apply_block, &a, &more, &log.log);
        while (rc == 0 && more)
            rc = domain_disk_harvest(d, 64 * 1024, apply_block, &a, &more, &log.log);
        ck_assert_msg(rc == 0, "harvest: %d (%s)", rc, log.last_error);
        ck_assert_int_eq(domain_disk_sync(sec.d, &log.log), 0);
        uint64_t diff = 0;
        ck_assert_msg(images_equal(primary_img, secondary_img, bytes, &diff),
                      "epoch %u: the replica differs from the guest's disk at byte %" PRIu64, epochs, diff);
        epochs++;
        if (a.blocks - before > 0 && epochs > 1)
            busy_epochs++;
        domain_unpause(d);
    }
    ck_assert_msg(busy_epochs >= 8, "the guest wrote in only %u of %u epochs", busy_epochs, epochs);
    printf("guest disk replica: %u epochs, %u blocks applied, images equal at every one\n", epochs, a.blocks);
    domain_disk_track_stop(d);
    domain_destroy(d);
    disk_env_free(&sec);
    unlink(primary_img);
    unlink(secondary_img);
}
END_TEST

/* A real guest's network output is held until its epoch is released: a
 * ping from the host (on the guest's bridge) gets its reply only after
 * the release, however early the guest answered; none without one. */
struct ping_job { const char *cmd; int status; uint64_t ms; };

static void *ping_thread(void *arg)
{
    struct ping_job *j = arg;
    uint64_t t0 = rig_now_ms();
    j->status = system(j->cmd);
    j->ms = rig_now_ms() - t0;
    return NULL;
}

START_TEST(test_guest_output_commit)
{
    if (!rig_enter_netns(NETNS_WHAT))
        return;
    struct rig_log log;
    rig_log_init(&log);
    ck_assert_int_eq(tap_bridge_add("xenbr0", &log.log), 0);
    ck_assert_int_eq(system("ip addr add 10.77.0.1/24 dev xenbr0 && ip link set lo up && ip link set xenbr0 up"), 0);
    struct domain_config cfg;
    rig_config(&cfg, "remusnet", 1, "workload=kv ip=10.77.0.2/24");
    cfg.nr_vifs = 1;
    memcpy(cfg.vifs[0].mac, guest_mac, 6);
    snprintf(cfg.vifs[0].bridge, sizeof(cfg.vifs[0].bridge), "xenbr0");
    struct domain *d = NULL;
    int rc = domain_create_as(&d, 22, &cfg, false, NULL, rig_ignore_end, rig_ignore_console, NULL, &log.log);
    ck_assert_msg(rc == 0, "domain_create_as: %s (%s)", strerror(-rc), log.last_error);
    ck_assert_int_eq(domain_start_vcpus(d), 0);
    domain_unpause(d);
    /* Up, unbuffered (this also fills the host's ARP cache). */
    bool up = false;
    for (unsigned i = 0; i < 30 && !up; i++)
        up = system("ping -c 1 -W 1 10.77.0.2 >/dev/null 2>&1") == 0;
    ck_assert_msg(up, "the guest never answered a ping (%s)", log.last_error);

    domain_pause(d);
    ck_assert_int_eq(domain_net_buffer_start(d, 0), 0);
    domain_unpause(d);
    /* No release: no reply. */
    ck_assert_int_ne(system("ping -c 1 -W 1 10.77.0.2 >/dev/null 2>&1"), 0);
    struct domain_net_buffer_stats st;
    domain_net_buffer_stats(d, &st);
    ck_assert_uint_ge(st.held_frames, 1);
    /* The reply arrives only once its epoch is released, a second on. */
    domain_pause(d);
    ck_assert_uint_eq(domain_net_buffer_mark(d), 1);    /* the unanswered ping's reply */
    domain_unpause(d);
    struct ping_job j = { .cmd = "ping -c 1 -W 5 10.77.0.2 >/dev/null 2>&1" };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, ping_thread, &j), 0);
    rig_sleep_ms(1000);
    domain_pause(d);
    uint64_t e = domain_net_buffer_mark(d);
    domain_unpause(d);
    ck_assert_uint_eq(e, 2);
    domain_net_buffer_release(d, e);
    pthread_join(t, NULL);
    ck_assert_msg(j.status == 0, "no reply after the release");
    ck_assert_msg(j.ms >= 900, "the reply came after %" PRIu64 " ms, before its epoch was released", j.ms);
    domain_net_buffer_stats(d, &st);
    ck_assert_uint_ge(st.released_frames, 2);
    printf("guest output commit: reply held %" PRIu64 " ms until the release; %" PRIu64 " frames released\n",
           j.ms, st.released_frames);
    /* Stopped: straight through again. */
    domain_net_buffer_stop(d, true);
    ck_assert_int_eq(system("ping -c 1 -W 2 10.77.0.2 >/dev/null 2>&1"), 0);
    domain_destroy(d);
}
END_TEST

Suite *unit_suite(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    Suite *s = suite_create("remus_devices");
    TCase *tc = tcase_create("net_buffer");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_net_held_until_release);
    tcase_add_test(tc, test_net_release_by_epoch);
    tcase_add_test(tc, test_net_backpressure);
    tcase_add_test(tc, test_net_frame_bigger_than_bound);
    tcase_add_test(tc, test_net_stop);
    suite_add_tcase(s, tc);

    tc = tcase_create("disk");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_blk_writes_set_blocks);
    tcase_add_test(tc, test_blk_harvest_bounded);
    tcase_add_test(tc, test_blk_all_dirty_sparse);
    tcase_add_test(tc, test_blk_completed_before_pause);
    tcase_add_test(tc, test_disk_write_bounds);
    tcase_add_test(tc, test_disk_readonly_untracked);
    suite_add_tcase(s, tc);

    rig_find_guest_kernel("test_remus_devices");
    have_kvm = rig_have_kvm();
    if (have_kvm) {
        tc = tcase_create("guest");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_guest_disk_replica);
        tcase_add_test(tc, test_guest_output_commit);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "SKIP: no /dev/kvm: test_remus_devices' guest test was NOT run\n");
    }
    return s;
}
