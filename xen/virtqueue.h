/* Split virtqueues (virtio 1.x, "2.7 Split Virtqueues") as the device
 * side sees them.  Everything here reads rings the guest writes while it
 * runs, so every index, address and length is checked before it is used,
 * and every descriptor is copied out of guest memory once and checked on
 * the copy: a guest changing a ring under us can make its own device fail,
 * never make the VMM read or write outside guest RAM.
 *
 * No indirect descriptors and no event idx (neither is offered), so a
 * descriptor with VRING_DESC_F_INDIRECT is a violation.  A violation is
 * returned as -EPROTO with a sentence in `err`; the caller puts the device
 * into DEVICE_NEEDS_RESET.  Pure code over struct guest_memory: no threads
 * and no KVM, so tests and fuzzers drive it over fake memory. */
#ifndef TANDEM_VIRTQUEUE_H
#define TANDEM_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "guest_memory.h"

#define VQ_MAX_SIZE 256                  /* QueueNumMax of every queue */

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* Guest memory layout (little-endian, as x86 is). */
struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
#define VRING_DESC_ALIGN  16
#define VRING_AVAIL_ALIGN 2
#define VRING_USED_ALIGN  4
static inline uint64_t vring_desc_bytes(unsigned num) { return 16ull * num; }
/* flags, idx, ring[num], used_event */
static inline uint64_t vring_avail_bytes(unsigned num) { return 6ull + 2ull * num; }
/* flags, idx, ring[num] of {u32 id, u32 len}, avail_event */
static inline uint64_t vring_used_bytes(unsigned num) { return 6ull + 8ull * num; }

/* Which way a queue's buffers go, as the device requires. */
enum vq_dir {
    VQ_DIR_MIXED,       /* device-readable ones, then device-writable ones */
    VQ_DIR_READ,        /* device-readable only (e.g. net transmitq) */
    VQ_DIR_WRITE,       /* device-writable only (e.g. net receiveq) */
};

/* A chain popped from the avail ring, every buffer checked to lie in
 * guest RAM.  The readable buffers come first (n_read of them). */
struct vq_buf {
    uint64_t gpa;
    uint8_t *host;
    uint32_t len;
};
struct vq_chain {
    uint16_t head;
    unsigned n, n_read;
    uint64_t read_bytes, write_bytes;
    struct vq_buf buf[VQ_MAX_SIZE];
};

/* Called for every range of guest memory the device wrote, after it was
 * written: KVM's dirty log does not see the VMM's own writes. */
typedef void vq_mark_fn(void *opaque, uint64_t gpa, uint64_t len);

struct virtqueue {
    /* What the driver programmed (QueueNum, QueueReady, Queue*Low/High). */
    uint16_t num;
    bool ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* The device's side: next avail entry to take, next used entry to
     * fill (both free-running u16s, as the rings' idx fields are). */
    uint16_t last_avail_idx, used_idx;
    /* Bound on the bytes of one chain, set by the device. */
    uint64_t max_chain_bytes;
    /* Host mappings of the rings, valid while ready. */
    uint8_t *desc, *avail, *used;
};

/* The state after a device reset (num = VQ_MAX_SIZE, not ready). */
void vq_reset(struct virtqueue *q);
/* Checks what the driver programmed (num a power of two up to
 * VQ_MAX_SIZE, rings aligned and inside guest RAM) and maps the rings.
 * 0, or -EPROTO with the reason. */
int vq_map(struct virtqueue *q, const struct guest_memory *m, char *err, size_t errlen);
/* How many chains wait in the avail ring; -EPROTO when the driver's idx
 * ran more than a queue's worth ahead of the device. */
int vq_avail_count(const struct virtqueue *q, unsigned *count, char *err, size_t errlen);
/* Takes the next chain: 1 with *c filled, 0 when there is none, -EPROTO
 * (nothing taken) when the chain breaks the rules: head or next out of
 * range, more descriptors than the queue holds (a loop), indirect, a zero
 * length, more than max_chain_bytes, a buffer outside guest RAM, or a
 * direction other than `dir` allows. */
int vq_pop(struct virtqueue *q, const struct guest_memory *m, enum vq_dir dir, struct vq_chain *c,
           char *err, size_t errlen);
/* Puts back the chain last popped, untouched (a receive buffer that got
 * no frame after all). */
void vq_unpop(struct virtqueue *q);
/* Returns chain `head` to the driver with `len` bytes written into it. */
void vq_push(struct virtqueue *q, uint16_t head, uint32_t len, vq_mark_fn *mark, void *opaque);
/* Whether the driver wants an interrupt for what was pushed (it may set
 * VRING_AVAIL_F_NO_INTERRUPT). */
bool vq_wants_interrupt(const struct virtqueue *q);

/* Byte-level access to a chain's readable part (offset 0 = its first
 * readable byte) and writable part.  Return the bytes done. */
size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t len, vq_mark_fn *mark,
                      void *opaque);
/* iovecs over [off, off+len) of the readable or writable part; returns
 * how many (at most max), the bytes covered in *covered. */
unsigned vq_chain_iov(const struct vq_chain *c, bool writable, uint64_t off, uint64_t len, struct iovec *iov,
                      unsigned max, uint64_t *covered);
/* Marks [off, off+len) of the writable part dirty (after a preadv into it). */
void vq_chain_mark_written(const struct vq_chain *c, uint64_t off, uint64_t len, vq_mark_fn *mark,
                           void *opaque);

#endif
