/* A domain's guest devices: virtio-mmio net (tap) and blk (raw file)
 * devices built from its config's vif= and disk= lists, placed as the
 * virtio contract says (device i at 0xD0000000 + i*0x1000, GSI 16+i, vifs
 * first in devid order, then disks in order).  Internal to xen/. */
#ifndef TANDEM_DEVICES_H
#define TANDEM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "virtio_mmio.h"
#include "tandem/xen.h"

struct domain;

/* ---- Device types ------------------------------------------------------ */

#define VIRTIO_NET_F_MAC       (1ULL << 5)
#define VIRTIO_NET_F_STATUS    (1ULL << 16)
#define VIRTIO_NET_S_LINK_UP   1
#define VIRTIO_NET_HDR_LEN     12
#define VIRTIO_NET_RX_MIN      (VIRTIO_NET_HDR_LEN + 1514)
#define VIRTIO_NET_ANNOUNCE_ROUNDS 5

#define VIRTIO_BLK_F_SEG_MAX   (1ULL << 2)
#define VIRTIO_BLK_F_RO        (1ULL << 5)
#define VIRTIO_BLK_F_BLK_SIZE  (1ULL << 6)
#define VIRTIO_BLK_F_FLUSH     (1ULL << 9)
#define VIRTIO_BLK_SEG_MAX     126
#define VIRTIO_BLK_T_IN        0
#define VIRTIO_BLK_T_OUT       1
#define VIRTIO_BLK_T_FLUSH     4
#define VIRTIO_BLK_T_GET_ID    8
#define VIRTIO_BLK_S_OK        0
#define VIRTIO_BLK_S_IOERR     1
#define VIRTIO_BLK_S_UNSUPP    2
#define VIRTIO_BLK_ID_BYTES    20
#define VIRTIO_BLK_MAX_REQUEST (32u << 20)   /* bytes in one chain */

/* A tap named ifname ("" = vif<domid>.<devid>) on vif->bridge, and the
 * device in slot `index`.  announce: send RARP frames with the guest's
 * MAC when the device first runs (the domain was restored). */
int virtio_net_create(struct virtio_dev **out, const struct virtio_env *env, unsigned index, unsigned domid,
                      unsigned devid, const struct domain_vif *vif, bool announce);
const char *virtio_net_ifname(const struct virtio_dev *v);
/* Frames and drops so far, for tests and logs.  tx_frames counts the
 * frames taken from the guest, those held for output commit included. */
struct virtio_net_stats { uint64_t rx_frames, rx_dropped, tx_frames, tx_dropped, announced; };
void virtio_net_get_stats(struct virtio_dev *v, struct virtio_net_stats *out);

int virtio_blk_create(struct virtio_dev **out, const struct virtio_env *env, unsigned index,
                      const struct domain_disk *disk);

/* ---- Remus: output buffering in one vif (virtio_net.c) ------------------
 * While buffering, each frame the guest transmits is copied out of its
 * buffers into the vif's FIFO, tagged with the open epoch, and its
 * descriptor is completed at once; nothing reaches the tap until a
 * release.  Held bytes are bounded by max_bytes: at the bound the device
 * leaves TX descriptors in the ring (the guest waits) until a release
 * makes room; a frame always fits into an empty FIFO.  Receive is never
 * buffered.  Locks: the FIFO's own (held only to link or unlink frames)
 * and a flush lock that orders writers to the tap; neither is held while
 * the device thread waits, and the device thread never takes the flush
 * lock. */
/* max_bytes 0 = DOMAIN_NET_BUFFER_DEFAULT; frames go into first_epoch
 * until the next mark.  -EBUSY if already buffering. */
int virtio_net_buffer_start(struct virtio_dev *v, size_t max_bytes, uint64_t first_epoch);
/* Frames held from now on belong to epoch `next_epoch`. */
void virtio_net_buffer_mark(struct virtio_dev *v, uint64_t next_epoch);
/* Writes every held frame of epochs <= epoch to the tap, in order, from
 * the caller's thread. */
void virtio_net_buffer_release(struct virtio_dev *v, uint64_t epoch);
/* Buffering off; the held frames are written (release) or freed.  The
 * device thread is held meanwhile, so no frame sent after the stop can
 * overtake a held one. */
void virtio_net_buffer_stop(struct virtio_dev *v, bool release);
/* Adds this vif's figures to *out. */
void virtio_net_buffer_add_stats(struct virtio_dev *v, struct domain_net_buffer_stats *out);

/* ---- Remus: disk write tracking (virtio_blk.c) ---------------------------
 * A bitmap of DOMAIN_DISK_BLOCK blocks; a guest write sets its blocks'
 * bits (atomically, before the request completes to the guest).  A
 * read-only disk is never tracked: start returns 0 and does nothing. */
int virtio_blk_track_start(struct virtio_dev *v, bool all_dirty, const struct tlog *log);
void virtio_blk_track_stop(struct virtio_dev *v);
/* domain_disk_harvest for one disk.  *budget: bytes it may still hand
 * (SIZE_MAX = no bound), lowered by what it handed; a block past it is
 * handed only while *handed_any is false (every block handed sets it).
 * Sets *left when it stopped for the budget with blocks left.  Returns 0,
 * fn's non-zero value (the block fn refused stays dirty) or -errno. */
int virtio_blk_harvest(struct virtio_dev *v, unsigned disk, size_t *budget, bool *handed_any, bool *left,
                       int (*fn)(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len),
                       void *opaque, const struct tlog *log);
int virtio_blk_write_at(struct virtio_dev *v, uint64_t offset, const void *data, uint32_t len,
                        const struct tlog *log);
int virtio_blk_sync(struct virtio_dev *v, const struct tlog *log);

/* ---- A domain's devices ------------------------------------------------ */

struct devices {
    unsigned n;
    struct virtio_dev *dev[VIRTIO_MMIO_MAX_DEVICES];
    /* Remus.  net_lock guards the output epochs (held briefly, never
     * while frames are written); disk_lock serialises the disk-tracking
     * calls among themselves (the device threads never take it). */
    pthread_mutex_t net_lock, disk_lock;
    bool net_buffering;
    uint64_t net_open_epoch;       /* the epoch frames go into now */
    struct plug_session *net_plug; /* buffering in the kernel (devices.c), or NULL */
};

/* An empty device list for d (devices_create's first step; tests that
 * build devices by hand add them to d->devs->dev[] themselves). */
int devices_alloc(struct domain *d);

/* The devices of cfg, their threads started paused.  for_restore: the
 * nets announce the guest when it first runs.  On failure, nothing is
 * left (taps closed, so deleted). */
int devices_create(struct domain *d, unsigned domid, bool for_restore);
void devices_destroy(struct domain *d);
/* The virtio_mmio.device= words for cfg's devices, appended to buf. */
int devices_append_cmdline(const struct domain_config *cfg, char *buf, size_t len);
/* An MMIO exit: true if it was a device's. */
bool devices_mmio(struct domain *d, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);
/* domain_pause / domain_unpause: every device finishes the request it is
 * doing and then leaves guest memory alone until unpaused. */
void devices_pause(struct domain *d);
void devices_unpause(struct domain *d);

/* ---- The device-state blob ---------------------------------------------
 * domain_get_device_state's models, each {u32 id, u32 version, u32 length}
 * + state, little-endian (docs/stream-extensions.md). */
enum {
    DEVSTATE_UART = 1,
    DEVSTATE_VIRTIO_NET = 2,
    DEVSTATE_VIRTIO_BLK = 3,
};
#define DEVSTATE_UART_VERSION 1
#define DEVSTATE_VIRTIO_VERSION 1
#define DEVSTATE_HDR 12u
#define DEVSTATE_MAX_MODELS (1 + VIRTIO_MMIO_MAX_DEVICES)

struct devstate_model {
    uint32_t id, version, length;
    const uint8_t *body;
};
/* Splits a blob into its models, checking the framing only: -EINVAL with
 * the reason in err. */
int devstate_parse(const uint8_t *blob, size_t len, struct devstate_model *models, unsigned max, unsigned *n,
                   char *err, size_t errlen);
/* Writes one model header at out. */
void devstate_put_header(uint8_t *out, uint32_t id, uint32_t version, uint32_t length);
uint32_t devstate_model_of(const struct virtio_dev *v);

#endif
