/* Fuzz target for what a guest (or an image) hands the virtio devices:
 *
 *   first byte % 3 == 0  the split-ring walker (xen/virtqueue.c): guest
 *                        memory and a queue built from the input, every
 *                        chain popped, read, written and pushed;
 *                   == 1  the virtio-mmio register file (xen/virtio_mmio.c)
 *                        driven by a list of register accesses, with a
 *                        device that completes every chain it is given;
 *                   == 2  the device-state blob: the model framing
 *                        (xen/devices.c's devstate_parse) and each virtio
 *                        model checked, and applied if accepted, on a
 *                        device over fake memory.
 *
 * Guest memory is two exact-size heap regions (64 KiB at 0, 64 KiB at
 * 4 GiB), so the sanitizers catch any access outside guest RAM.  Besides
 * not crashing: every buffer of every chain lies inside RAM, a refused
 * chain takes nothing, a failure is explained, and an accepted device
 * state leaves only rings that are inside RAM. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION 0x10000u

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_virtqueue: %s\n", what);
    abort();
}

static void quiet(void *opaque, enum tlog_level level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
}
static const struct tlog fuzz_log = { .fn = quiet, .min_level = TLOG_DEBUG };

struct mem {
    struct guest_memory m;
    uint8_t *lo, *hi;
};

static void mem_init(struct mem *g, const uint8_t *data, size_t size)
{
    g->lo = calloc(1, REGION);
    g->hi = calloc(1, REGION);
    if (!g->lo || !g->hi)
        fail("out of memory");
    memcpy(g->lo, data, size < REGION ? size : REGION);
    if (size > REGION)
        memcpy(g->hi, data + REGION, size - REGION < REGION ? size - REGION : REGION);
    memset(&g->m, 0, sizeof(g->m));
    g->m.nr_regions = 2;
    g->m.region[0] = (struct guest_region){ .gpa = 0, .size = REGION, .host = g->lo };
    g->m.region[1] = (struct guest_region){ .gpa = GUEST_HIGH_RAM_BASE, .size = REGION, .host = g->hi };
    g->m.total_bytes = 2 * REGION;
}

static void mem_free(struct mem *g)
{
    free(g->lo);
    free(g->hi);
}

static bool in_ram(const struct mem *g, const uint8_t *p, uint64_t len)
{
    for (unsigned i = 0; i < 2; i++) {
        const uint8_t *b = g->m.region[i].host;
        if (p >= b && len <= REGION && (uint64_t)(p - b) <= REGION - len)
            return true;
    }
    return false;
}

static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void mark_nothing(void *opaque, uint64_t gpa, uint64_t len)
{
    (void)opaque;
    (void)gpa;
    (void)len;
}

/* Pops, checks and completes every chain the queue offers. */
static unsigned drain_queue(struct virtqueue *q, const struct mem *g, enum vq_dir dir, struct vq_chain *c)
{
    char err[256];
    unsigned done = 0;
    for (unsigned round = 0; round < 600; round++) {
        uint16_t before = q->last_avail_idx;
        err[0] = 0;
        int rc = vq_pop(q, &g->m, dir, c, err, sizeof(err));
        if (rc < 0) {
            if (rc != -EPROTO || !err[0])
                fail("a refused chain without -EPROTO and a reason");
            if (q->last_avail_idx != before)
                fail("a refused chain was taken");
            break;
        }
        if (rc == 0)
            break;
        if (c->n == 0 || c->n > q->num || c->n_read > c->n)
            fail("chain length out of range");
        uint64_t rb = 0, wb = 0;
        for (unsigned i = 0; i < c->n; i++) {
            if (!c->buf[i].len || !in_ram(g, c->buf[i].host, c->buf[i].len))
                fail("a buffer outside guest RAM");
            if (i < c->n_read)
                rb += c->buf[i].len;
            else
                wb += c->buf[i].len;
        }
        if (rb != c->read_bytes || wb != c->write_bytes || rb + wb > q->max_chain_bytes)
            fail("chain byte counts wrong");
        if ((dir == VQ_DIR_READ && wb) || (dir == VQ_DIR_WRITE && rb))
            fail("direction not enforced");
        uint8_t tmp[512];
        size_t got = vq_chain_read(c, rb > 7 ? 7 : 0, tmp, sizeof(tmp));
        if (got > sizeof(tmp) || got > rb)
            fail("read past the readable part");
        size_t put = vq_chain_write(c, wb > 3 ? 3 : 0, tmp, got, mark_nothing, NULL);
        if (put > wb)
            fail("wrote past the writable part");
        struct iovec iov[8];
        uint64_t covered;
        unsigned n = vq_chain_iov(c, true, 1, wb, iov, 8, &covered);
        if (n > 8 || covered > wb)
            fail("iov past the writable part");
        vq_chain_mark_written(c, 0, wb, mark_nothing, NULL);
        vq_push(q, c->head, (uint32_t)put, mark_nothing, NULL);
        (void)vq_wants_interrupt(q);
        done++;
    }
    return done;
}

static void fuzz_walker(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    static struct vq_chain chain;
    struct mem g;
    mem_init(&g, data + 16, size - 16);
    struct virtqueue q;
    memset(&q, 0, sizeof(q));
    q.max_chain_bytes = 1 + get32(data + 12) % (4 * REGION);
    vq_reset(&q);
    q.num = (uint16_t)(1u << (data[1] % 9));          /* 1 .. 256 */
    if (data[2] & 0x80)
        q.num = (uint16_t)(data[2] | data[3] << 8);   /* anything, for vq_map */
    enum vq_dir dir = (enum vq_dir)(data[2] % 3);
    /* Ring addresses: offsets into one region or the other. */
    q.desc_gpa = (data[4] & 1 ? GUEST_HIGH_RAM_BASE : 0) + (uint64_t)(data[5] | data[6] << 8);
    q.avail_gpa = (data[4] & 2 ? GUEST_HIGH_RAM_BASE : 0) + (uint64_t)(data[7] | data[8] << 8);
    q.used_gpa = (data[4] & 4 ? GUEST_HIGH_RAM_BASE : 0) + (uint64_t)(data[9] | data[10] << 8);
    if (data[4] & 8)
        q.used_gpa += (uint64_t)data[11] << 32;       /* anywhere at all */
    q.last_avail_idx = q.used_idx = (uint16_t)(data[11] * 257u);
    char err[256];
    if (vq_map(&q, &g.m, err, sizeof(err)) == 0) {
        if (!in_ram(&g, q.desc, vring_desc_bytes(q.num)) || !in_ram(&g, q.avail, vring_avail_bytes(q.num)) ||
            !in_ram(&g, q.used, vring_used_bytes(q.num)))
            fail("vq_map accepted a ring outside guest RAM");
        q.ready = true;
        drain_queue(&q, &g, dir, &chain);
    } else if (!err[0]) {
        fail("vq_map refused without a reason");
    }
    mem_free(&g);
}

/* ---- The register file, with a device that completes every chain ---- */

struct echo_dev {
    struct virtio_dev dev;
    struct mem *g;
    struct vq_chain chain;
};

static void echo_config(struct virtio_dev *v, unsigned off, uint8_t *out, unsigned len)
{
    static const uint8_t cfg[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    (void)v;
    memcpy(out, cfg + off, len);
}

static void echo_run(struct virtio_dev *v, bool live)
{
    struct echo_dev *e = v->priv;
    if (!live)
        return;
    for (unsigned i = 0; i < v->nr_queues; i++)
        if (v->vq[i].ready)
            drain_queue(&v->vq[i], e->g, v->qsetup[i].dir, &e->chain);
}

static int echo_save(struct virtio_dev *v, uint8_t *out, const struct tlog *log)
{
    (void)v;
    (void)log;
    memset(out, 0, 4);
    return 0;
}

static int echo_check(struct virtio_dev *v, const uint8_t *in, char *err, size_t errlen)
{
    (void)v;
    if (get32(in)) {
        snprintf(err, errlen, "device word not zero");
        return -EINVAL;
    }
    return 0;
}

static const struct virtio_dev_ops echo_ops = {
    .config_size = 8, .config_read = echo_config, .run = echo_run,
    .state_size = 4, .state_save = echo_save, .state_check = echo_check,
};

static void irq_nothing(void *opaque, unsigned gsi)
{
    (void)opaque;
    (void)gsi;
}

static struct echo_dev *echo_new(struct mem *g, unsigned nq)
{
    struct echo_dev *e = calloc(1, sizeof(*e));
    if (!e)
        fail("out of memory");
    e->g = g;
    struct virtio_env env = { .mem = &g->m, .log = &fuzz_log, .vm_fd = -1, .mark_dirty = mark_nothing,
                              .raise_irq = irq_nothing };
    const struct virtio_queue_setup qs[2] = { { VQ_DIR_MIXED, 3 * REGION }, { VQ_DIR_READ, 1500 } };
    if (virtio_dev_init(&e->dev, &env, 0, VIRTIO_ID_BLOCK, 1ull << 9, nq, qs, &echo_ops, e, "fuzz") != 0)
        fail("virtio_dev_init");
    virtio_dev_unpause(&e->dev);
    return e;
}

static void echo_free(struct echo_dev *e)
{
    virtio_dev_destroy(&e->dev);   /* never started: no thread */
    free(e);
}

static void fuzz_mmio(const uint8_t *data, size_t size)
{
    /* Accesses of 8 bytes {u16 offset, u8 len, u8 write, u32 value}, then
     * guest memory. */
    if (size < 2)
        return;
    size_t nops = data[1] % 64;
    if (size < 2 + 8 * nops)
        nops = (size - 2) / 8;
    const uint8_t *ops = data + 2;
    size_t used = 2 + 8 * nops;
    struct mem g;
    mem_init(&g, data + used, size - used);
    struct echo_dev *e = echo_new(&g, 2);
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *op = ops + 8 * i;
        uint64_t off = (op[0] | op[1] << 8) & 0xfff;
        unsigned len = 1u << (op[2] % 4);                /* 1, 2, 4, 8 */
        bool write = op[3] & 1;
        uint8_t buf[8];
        memcpy(buf, op + 4, 4);
        memcpy(buf + 4, op + 4, 4);
        virtio_mmio_access(&e->dev, off, buf, len, write);
        if (op[3] & 2)
            echo_run(&e->dev, (e->dev.status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK)) ==
                                  (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK) &&
                              !(e->dev.status & VIRTIO_STATUS_NEEDS_RESET));
        for (unsigned q = 0; q < e->dev.nr_queues; q++) {
            const struct virtqueue *vq = &e->dev.vq[q];
            if (vq->ready && (!in_ram(&g, vq->desc, vring_desc_bytes(vq->num)) ||
                              !in_ram(&g, vq->used, vring_used_bytes(vq->num))))
                fail("a ready queue with rings outside guest RAM");
        }
        if (e->dev.status & ~0xffu)
            fail("status beyond a byte");
    }
    echo_free(e);
    mem_free(&g);
}

/* ---- The device-state blob ------------------------------------------ */

static void fuzz_state(const uint8_t *data, size_t size)
{
    struct devstate_model m[DEVSTATE_MAX_MODELS];
    unsigned n = 0;
    char err[300];
    err[0] = 0;
    if (devstate_parse(data + 1, size - 1, m, DEVSTATE_MAX_MODELS, &n, err, sizeof(err))) {
        if (!err[0])
            fail("devstate_parse refused without a reason");
        return;
    }
    struct mem g;
    /* The rings a saved state names must be where the (fake) pages are. */
    mem_init(&g, data, size);
    for (unsigned i = 0; i < n; i++) {
        if (m[i].id != DEVSTATE_VIRTIO_NET && m[i].id != DEVSTATE_VIRTIO_BLK)
            continue;
        if (m[i].body < data + 1 || m[i].body + m[i].length > data + size)
            fail("a model's body outside the blob");
        struct echo_dev *e = echo_new(&g, m[i].id == DEVSTATE_VIRTIO_NET ? 2 : 1);
        err[0] = 0;
        if (virtio_dev_state_check(&e->dev, m[i].body, m[i].length, err, sizeof(err)) == 0) {
            virtio_dev_state_load(&e->dev, m[i].body);
            for (unsigned q = 0; q < e->dev.nr_queues; q++) {
                const struct virtqueue *vq = &e->dev.vq[q];
                if (vq->ready && (!in_ram(&g, vq->desc, vring_desc_bytes(vq->num)) ||
                                  !in_ram(&g, vq->avail, vring_avail_bytes(vq->num)) ||
                                  !in_ram(&g, vq->used, vring_used_bytes(vq->num))))
                    fail("an accepted state with rings outside guest RAM");
            }
            /* What was loaded runs. */
            echo_run(&e->dev, true);
            uint8_t *again = calloc(1, virtio_dev_state_size(&e->dev));
            if (!again || virtio_dev_state_save(&e->dev, again, &fuzz_log))
                fail("saving a loaded state");
            free(again);
        } else if (!err[0]) {
            fail("a refused state without a reason");
        }
        echo_free(e);
    }
    mem_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4 * REGION)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_walker(data, size); break;
    case 1: fuzz_mmio(data, size); break;
    default: fuzz_state(data, size); break;
    }
    return 0;
}
