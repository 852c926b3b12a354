/* Split virtqueues, device side: see virtqueue.h for the rules enforced. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "virtqueue.h"

static int violation(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int violation(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EPROTO;
}

void vq_reset(struct virtqueue *q)
{
    uint64_t max = q->max_chain_bytes;
    memset(q, 0, sizeof(*q));
    q->num = VQ_MAX_SIZE;
    q->max_chain_bytes = max;
}

static int map_ring(const struct guest_memory *m, const char *what, uint64_t gpa, uint64_t bytes, uint64_t align,
                    uint8_t **host, char *err, size_t errlen)
{
    if (gpa % align)
        return violation(err, errlen, "%s ring at %#" PRIx64 " is not %" PRIu64 "-byte aligned", what, gpa, align);
    *host = guest_memory_ptr(m, gpa, bytes);
    if (!*host)
        return violation(err, errlen, "%s ring [%#" PRIx64 ", +%#" PRIx64 ") is not in guest RAM", what, gpa, bytes);
    return 0;
}

int vq_map(struct virtqueue *q, const struct guest_memory *m, char *err, size_t errlen)
{
    q->desc = q->avail = q->used = NULL;
    if (q->num == 0 || q->num > VQ_MAX_SIZE || (q->num & (q->num - 1)))
        return violation(err, errlen, "queue size %u is not a power of two from 1 to %u", q->num, VQ_MAX_SIZE);
    uint8_t *d, *a, *u;
    int rc;
    if ((rc = map_ring(m, "descriptor", q->desc_gpa, vring_desc_bytes(q->num), VRING_DESC_ALIGN, &d, err, errlen)) ||
        (rc = map_ring(m, "available", q->avail_gpa, vring_avail_bytes(q->num), VRING_AVAIL_ALIGN, &a, err, errlen)) ||
        (rc = map_ring(m, "used", q->used_gpa, vring_used_bytes(q->num), VRING_USED_ALIGN, &u, err, errlen)))
        return rc;
    q->desc = d;
    q->avail = a;
    q->used = u;
    return 0;
}

static uint16_t avail_idx(const struct virtqueue *q)
{
    /* Acquire: the entries and descriptors the driver published before
     * moving idx are read after it. */
    return __atomic_load_n((const uint16_t *)(q->avail + 2), __ATOMIC_ACQUIRE);
}

int vq_avail_count(const struct virtqueue *q, unsigned *count, char *err, size_t errlen)
{
    *count = 0;
    if (!q->ready || !q->avail)
        return 0;
    uint16_t idx = avail_idx(q);
    uint16_t n = (uint16_t)(idx - q->last_avail_idx);
    if (n > q->num)
        return violation(err, errlen, "available idx jumped from %u to %u, more than the queue's %u entries",
                         q->last_avail_idx, idx, q->num);
    *count = n;
    return 0;
}

static struct vring_desc read_desc(const struct virtqueue *q, uint16_t i)
{
    /* One copy, checked afterwards: the guest may rewrite it meanwhile. */
    struct vring_desc d;
    memcpy(&d, q->desc + 16u * i, sizeof(d));
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return d;
}

int vq_pop(struct virtqueue *q, const struct guest_memory *m, enum vq_dir dir, struct vq_chain *c,
           char *err, size_t errlen)
{
    unsigned avail;
    int rc = vq_avail_count(q, &avail, err, errlen);
    if (rc || !avail)
        return rc;
    uint16_t slot = q->last_avail_idx % q->num;
    uint16_t head = __atomic_load_n((const uint16_t *)(q->avail + 4 + 2u * slot), __ATOMIC_RELAXED);
    if (head >= q->num)
        return violation(err, errlen, "available ring entry %u names descriptor %u of a %u-entry table", slot, head,
                         q->num);
    c->head = head;
    c->n = c->n_read = 0;
    c->read_bytes = c->write_bytes = 0;
    uint16_t i = head;
    bool seen_write = false;
    for (;;) {
        if (c->n >= q->num)
            return violation(err, errlen, "descriptor chain from %u is longer than the queue's %u entries (a loop?)",
                             head, q->num);
        struct vring_desc d = read_desc(q, i);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return violation(err, errlen, "descriptor %u is indirect, which was not negotiated", i);
        if (d.len == 0)
            return violation(err, errlen, "descriptor %u has length 0", i);
        uint64_t total = c->read_bytes + c->write_bytes + d.len;
        if (total > q->max_chain_bytes)
            return violation(err, errlen, "descriptor chain from %u holds more than %" PRIu64 " bytes", head,
                             q->max_chain_bytes);
        uint8_t *host = guest_memory_ptr(m, d.addr, d.len);
        if (!host)
            return violation(err, errlen, "descriptor %u's buffer [%#" PRIx64 ", +%#x) is not in guest RAM", i,
                             d.addr, d.len);
        bool writable = d.flags & VRING_DESC_F_WRITE;
        if (writable && dir == VQ_DIR_READ)
            return violation(err, errlen, "descriptor %u is device-writable in a queue the device only reads", i);
        if (!writable && dir == VQ_DIR_WRITE)
            return violation(err, errlen, "descriptor %u is device-readable in a queue the device only writes", i);
        if (!writable && seen_write)
            return violation(err, errlen, "descriptor %u is device-readable but follows a device-writable one", i);
        c->buf[c->n++] = (struct vq_buf){ .gpa = d.addr, .host = host, .len = d.len };
        if (writable) {
            seen_write = true;
            c->write_bytes += d.len;
        } else {
            c->n_read++;
            c->read_bytes += d.len;
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= q->num)
            return violation(err, errlen, "descriptor %u's next is %u, beyond the %u-entry table", i, d.next, q->num);
        i = d.next;
    }
    q->last_avail_idx++;
    return 1;
}

void vq_unpop(struct virtqueue *q)
{
    q->last_avail_idx--;
}

void vq_push(struct virtqueue *q, uint16_t head, uint32_t len, vq_mark_fn *mark, void *opaque)
{
    uint16_t slot = q->used_idx % q->num;
    uint8_t *elem = q->used + 4 + 8u * slot;
    uint32_t id32 = head;
    memcpy(elem, &id32, 4);
    memcpy(elem + 4, &len, 4);
    q->used_idx++;
    /* Release: the buffers' data and the element are visible before the
     * driver can see idx move. */
    __atomic_store_n((uint16_t *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
    if (mark) {
        mark(opaque, q->used_gpa + 4 + 8u * slot, 8);
        mark(opaque, q->used_gpa + 2, 2);
    }
}

bool vq_wants_interrupt(const struct virtqueue *q)
{
    /* The used idx store must be ordered before reading the flags, or a
     * driver re-enabling interrupts could miss this notification. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n((const uint16_t *)q->avail, __ATOMIC_RELAXED);
    return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
}

/* Walks the readable (or writable) buffers covering [off, off+len) of a
 * chain, one piece per buffer. */
struct chain_walk {
    const struct vq_chain *c;
    unsigned b, end;
    uint64_t skip, left, done;
};
struct chain_piece {
    uint8_t *host;
    uint64_t gpa, len, at;         /* at: bytes of the range before it */
};

static void walk_start(struct chain_walk *w, const struct vq_chain *c, bool writable, uint64_t off, uint64_t len)
{
    *w = (struct chain_walk){ .c = c, .b = writable ? c->n_read : 0, .end = writable ? c->n : c->n_read,
                              .skip = off, .left = len };
}

static bool walk_next(struct chain_walk *w, struct chain_piece *p)
{
    for (; w->b < w->end && w->left; w->b++) {
        const struct vq_buf *buf = &w->c->buf[w->b];
        if (w->skip >= buf->len) {
            w->skip -= buf->len;
            continue;
        }
        uint64_t n = buf->len - w->skip;
        if (n > w->left)
            n = w->left;
        *p = (struct chain_piece){ .host = buf->host + w->skip, .gpa = buf->gpa + w->skip, .len = n, .at = w->done };
        w->done += n;
        w->left -= n;
        w->skip = 0;
        w->b++;
        return true;
    }
    return false;
}

size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t len)
{
    struct chain_walk w;
    struct chain_piece p;
    walk_start(&w, c, false, off, len);
    while (walk_next(&w, &p))
        memcpy((uint8_t *)dst + p.at, p.host, p.len);
    return (size_t)w.done;
}

size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t len, vq_mark_fn *mark,
                      void *opaque)
{
    struct chain_walk w;
    struct chain_piece p;
    walk_start(&w, c, true, off, len);
    while (walk_next(&w, &p)) {
        memcpy(p.host, (const uint8_t *)src + p.at, p.len);
        if (mark)
            mark(opaque, p.gpa, p.len);
    }
    return (size_t)w.done;
}

unsigned vq_chain_iov(const struct vq_chain *c, bool writable, uint64_t off, uint64_t len, struct iovec *iov,
                      unsigned max, uint64_t *covered)
{
    struct chain_walk w;
    struct chain_piece p;
    unsigned n = 0;
    uint64_t sum = 0;
    walk_start(&w, c, writable, off, len);
    while (n < max && walk_next(&w, &p)) {
        iov[n++] = (struct iovec){ .iov_base = p.host, .iov_len = p.len };
        sum += p.len;
    }
    if (covered)
        *covered = sum;
    return n;
}

void vq_chain_mark_written(const struct vq_chain *c, uint64_t off, uint64_t len, vq_mark_fn *mark, void *opaque)
{
    struct chain_walk w;
    struct chain_piece p;
    if (!mark)
        return;
    walk_start(&w, c, true, off, len);
    while (walk_next(&w, &p))
        mark(opaque, p.gpa, p.len);
}
