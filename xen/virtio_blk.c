/* virtio-blk over a raw image file: one request queue, requests done one
 * at a time on the device thread with preadv/pwritev straight between the
 * file and guest memory.  Each request is completed (status byte, used
 * ring) before the next is taken, so a paused device has nothing in
 * flight, and its state needs no request list.
 *
 * Durability: the device notes writes since the last fdatasync.  A guest
 * FLUSH syncs; so does virtio_blk_sync (domain_disk_sync), which a save or
 * migration calls with the domain paused before it hands the guest over,
 * so that whoever opens the image next sees every write the guest was
 * told had completed.  Taking the device's state does not sync: a Remus
 * checkpoint replicates the blocks instead and must keep its pause short.
 *
 * Replication (Remus).  While tracking, every guest write sets the bits
 * of the DOMAIN_DISK_BLOCK blocks it touched in a bitmap, atomically and
 * before the request completes, so once a pause has returned every write
 * the guest saw complete is in the bitmap.  A harvest clears a block's bit
 * and only then reads the block from the image: a write that lands while
 * the domain runs sets the bit again and goes in the next harvest.  The
 * bitmap pointer changes only with the device thread held.  On the
 * secondary, blocks are written into the image with pwrite and synced at
 * each checkpoint by the caller. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "devices.h"

#define BLK_SECTOR 512u
#define BLK_STATE_SIZE 16
#define HARVEST_RUN_BLOCKS 64u          /* blocks read with one pread */

struct vblk {
    struct virtio_dev dev;
    int fd;
    bool readonly;
    uint64_t capacity;                 /* sectors */
    char vdev[DOMAIN_VDEV_MAX];
    bool unsynced;                     /* written since the last fdatasync */
    bool remote_unsynced;              /* domain_disk_write since the last sync (atomic) */
    bool warned_io;
    uint64_t bytes;                    /* capacity in bytes */
    uint64_t nblocks;                  /* DOMAIN_DISK_BLOCK blocks, the last maybe short */
    uint64_t *dirty;                   /* tracking's bitmap; NULL: not tracking */
    struct vq_chain chain;
    struct iovec iov[VQ_MAX_SIZE];
};

static struct vblk *vblk_of(struct virtio_dev *v) { return v->priv; }

static void mark(void *opaque, uint64_t gpa, uint64_t len)
{
    struct virtio_dev *v = opaque;
    if (v->env.mark_dirty)
        v->env.mark_dirty(v->env.opaque, gpa, len);
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void config_read(struct virtio_dev *v, unsigned off, uint8_t *out, unsigned len)
{
    struct vblk *b = vblk_of(v);
    uint8_t cfg[24];
    memset(cfg, 0, sizeof(cfg));
    put64(cfg + 0, b->capacity);          /* capacity */
    put32(cfg + 12, VIRTIO_BLK_SEG_MAX);  /* seg_max; size_max (8) and geometry (16) stay 0 */
    put32(cfg + 20, BLK_SECTOR);          /* blk_size */
    memcpy(out, cfg + off, len);
}

/* All of iov[0..n) at `off`, however many calls it takes. */
static int transfer(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
    while (n) {
        ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)off) : preadv(fd, iov, (int)n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;     /* the file shrank under us */
        off += (uint64_t)r;
        while (n && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* ---- Dirty blocks ------------------------------------------------------- */

static void set_blocks(uint64_t *bm, uint64_t first, uint64_t last)
{
    for (uint64_t w = first / 64; w <= last / 64; w++) {
        uint64_t lo = w == first / 64 ? first % 64 : 0, hi = w == last / 64 ? last % 64 : 63;
        uint64_t mask = (hi == 63 ? ~0ULL : (1ULL << (hi + 1)) - 1) & ~((1ULL << lo) - 1);
        __atomic_fetch_or(&bm[w], mask, __ATOMIC_RELEASE);
    }
}

static void clear_blocks(uint64_t *bm, uint64_t first, uint64_t last)
{
    for (uint64_t w = first / 64; w <= last / 64; w++) {
        uint64_t lo = w == first / 64 ? first % 64 : 0, hi = w == last / 64 ? last % 64 : 63;
        uint64_t mask = (hi == 63 ? ~0ULL : (1ULL << (hi + 1)) - 1) & ~((1ULL << lo) - 1);
        __atomic_fetch_and(&bm[w], ~mask, __ATOMIC_ACQ_REL);
    }
}

static bool block_dirty(const uint64_t *bm, uint64_t i)
{
    return __atomic_load_n(&bm[i / 64], __ATOMIC_ACQUIRE) >> (i % 64) & 1;
}

/* The first dirty block at or after i, or nblocks. */
static uint64_t next_dirty(const struct vblk *b, uint64_t i)
{
    while (i < b->nblocks) {
        uint64_t w = __atomic_load_n(&b->dirty[i / 64], __ATOMIC_ACQUIRE) >> (i % 64);
        if (w)
            return i + (uint64_t)__builtin_ctzll(w) < b->nblocks ? i + (uint64_t)__builtin_ctzll(w) : b->nblocks;
        i = (i / 64 + 1) * 64;
    }
    return b->nblocks;
}

static uint32_t block_len(const struct vblk *b, uint64_t i)
{
    uint64_t left = b->bytes - i * DOMAIN_DISK_BLOCK;
    return left < DOMAIN_DISK_BLOCK ? (uint32_t)left : DOMAIN_DISK_BLOCK;
}

/* The device thread, for a guest write of [off, off+len) (in bounds). */
static void track_write(struct vblk *b, uint64_t off, uint64_t len)
{
    if (b->dirty && len)
        set_blocks(b->dirty, off / DOMAIN_DISK_BLOCK, (off + len - 1) / DOMAIN_DISK_BLOCK);
}

static bool in_bounds(const struct vblk *b, uint64_t sector, uint64_t bytes)
{
    uint64_t n = bytes / BLK_SECTOR;
    return bytes % BLK_SECTOR == 0 && sector <= b->capacity && n <= b->capacity - sector;
}

static void io_warn(struct vblk *b, const char *what, uint64_t sector, int err)
{
    if (b->warned_io)
        return;
    b->warned_io = true;
    tlog_warn(b->dev.env.log, "%s: %s at sector %" PRIu64 " failed: %s (IOERR to the guest)", b->dev.name, what,
              sector, strerror(-err));
}

/* One request; returns its status and the bytes written into the guest's
 * buffers before the status byte. */
static uint8_t do_request(struct vblk *b, uint32_t type, uint64_t sector, uint64_t data_in, uint64_t data_out,
                          uint32_t *written)
{
    struct vq_chain *c = &b->chain;
    uint64_t covered;
    unsigned n;
    int rc;
    *written = 0;
    switch (type) {
    case VIRTIO_BLK_T_IN:
        if (!in_bounds(b, sector, data_in))
            return VIRTIO_BLK_S_IOERR;
        n = vq_chain_iov(c, true, 0, data_in, b->iov, VQ_MAX_SIZE, &covered);
        rc = transfer(b->fd, b->iov, n, sector * BLK_SECTOR, false);
        /* Whatever preadv got to, it wrote: all of it counts as dirty. */
        vq_chain_mark_written(c, 0, data_in, mark, &b->dev);
        if (rc) {
            io_warn(b, "read", sector, rc);
            return VIRTIO_BLK_S_IOERR;
        }
        *written = (uint32_t)data_in;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_OUT:
        if (b->readonly || !in_bounds(b, sector, data_out))
            return VIRTIO_BLK_S_IOERR;
        n = vq_chain_iov(c, false, 16, data_out, b->iov, VQ_MAX_SIZE, &covered);
        __atomic_store_n(&b->unsynced, true, __ATOMIC_RELEASE);
        rc = transfer(b->fd, b->iov, n, sector * BLK_SECTOR, true);
        /* Before the guest hears of it, even a failed write (part of it
         * may be on the image): a pause then finds it in the bitmap. */
        track_write(b, sector * BLK_SECTOR, data_out);
        if (rc) {
            io_warn(b, "write", sector, rc);
            return VIRTIO_BLK_S_IOERR;
        }
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_FLUSH:
        if (!b->readonly) {
            __atomic_store_n(&b->unsynced, false, __ATOMIC_RELEASE);
            if (fdatasync(b->fd) < 0) {
                __atomic_store_n(&b->unsynced, true, __ATOMIC_RELEASE);
                io_warn(b, "flush", 0, -errno);
                return VIRTIO_BLK_S_IOERR;
            }
        }
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES];
        memset(id, 0, sizeof(id));
        memcpy(id, b->vdev, strnlen(b->vdev, sizeof(b->vdev)));   /* vdev is shorter than an id */
        uint64_t len = data_in < sizeof(id) ? data_in : sizeof(id);
        *written = (uint32_t)vq_chain_write(c, 0, id, len, mark, &b->dev);
        return VIRTIO_BLK_S_OK;
    }
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static void run(struct virtio_dev *v, bool live)
{
    struct vblk *b = vblk_of(v);
    struct virtqueue *q = &v->vq[0];
    bool pushed = false;
    char err[200];
    if (!live)
        return;
    while (q->ready && !virtio_dev_held(v)) {
        int rc = vq_pop(q, v->env.mem, VQ_DIR_MIXED, &b->chain, err, sizeof(err));
        if (rc < 0) {
            virtio_dev_fail(v, "request queue: %s", err);
            break;
        }
        if (rc == 0)
            break;
        struct vq_chain *c = &b->chain;
        if (c->read_bytes < 16 || c->write_bytes < 1) {
            vq_unpop(q);
            virtio_dev_fail(v, "request queue: a request of %" PRIu64 " readable and %" PRIu64 " writable bytes; "
                            "it needs a 16-byte header and a status byte", c->read_bytes, c->write_bytes);
            break;
        }
        uint8_t hdr[16];
        vq_chain_read(c, 0, hdr, sizeof(hdr));
        uint32_t type = get32(hdr), written;
        uint64_t sector = get64(hdr + 8);
        uint64_t data_in = c->write_bytes - 1, data_out = c->read_bytes - 16;
        uint8_t status = do_request(b, type, sector, data_in, data_out, &written);
        vq_chain_write(c, data_in, &status, 1, mark, v);
        vq_push(q, c->head, written + 1, mark, v);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(v, 0);
}

/* ---- State -------------------------------------------------------------- */

static int state_save(struct virtio_dev *v, uint8_t *out, const struct tlog *log)
{
    struct vblk *b = vblk_of(v);
    put64(out, b->capacity);
    put32(out + 8, b->readonly);
    put32(out + 12, 0);
    /* No sync here: whoever hands the guest over makes the disks durable
     * first (domain_disk_sync; migration's save path does), while a Remus
     * checkpoint on the primary needs none inside its pause. */
    return 0;
}

static int state_check(struct virtio_dev *v, const uint8_t *in, char *err, size_t errlen)
{
    struct vblk *b = vblk_of(v);
    uint64_t cap = get64(in);
    uint32_t flags = get32(in + 8);
    if (cap != b->capacity) {
        snprintf(err, errlen, "the guest had a disk of %" PRIu64 " sectors, this one has %" PRIu64, cap,
                 b->capacity);
        return -EINVAL;
    }
    if (flags > 1 || get32(in + 12)) {
        snprintf(err, errlen, "flags %#x or reserved word out of range", flags);
        return -EINVAL;
    }
    if ((flags == 1) != b->readonly) {
        snprintf(err, errlen, "the guest had the disk %s, this one is %s", flags ? "read-only" : "writable",
                 b->readonly ? "read-only" : "writable");
        return -EINVAL;
    }
    return 0;
}

static void destroy(struct virtio_dev *v)
{
    struct vblk *b = vblk_of(v);
    if (b->fd >= 0)
        close(b->fd);
    free(b->dirty);
    free(b);
}

static const struct virtio_dev_ops blk_ops = {
    .config_size = 24,
    .config_read = config_read,
    .run = run,
    .state_size = BLK_STATE_SIZE,
    .state_save = state_save,
    .state_check = state_check,
    .destroy = destroy,
};

int virtio_blk_create(struct virtio_dev **out, const struct virtio_env *env, unsigned index,
                      const struct domain_disk *disk)
{
    const char *vdev = disk->vdev[0] ? disk->vdev : "disk";
    if (!disk->target[0]) {
        tlog_error(env->log, "disk %s: no target", vdev);
        return -EINVAL;
    }
    int fd = open(disk->target, (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        tlog_error(env->log, "disk %s: cannot open %s%s: %s", vdev, disk->target,
                   disk->readonly ? " read-only" : " read-write", strerror(err));
        return -err;
    }
    struct stat st;
    uint64_t bytes = 0;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        tlog_error(env->log, "disk %s: %s is not a regular file or block device", vdev, disk->target);
        close(fd);
        return -EINVAL;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
            bytes = 0;
    } else {
        bytes = (uint64_t)st.st_size;
    }
    if (bytes < BLK_SECTOR) {
        tlog_error(env->log, "disk %s: %s holds no whole 512-byte sector", vdev, disk->target);
        close(fd);
        return -EINVAL;
    }
    struct vblk *b = calloc(1, sizeof(*b));
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    b->fd = fd;
    b->readonly = disk->readonly;
    b->capacity = bytes / BLK_SECTOR;
    b->bytes = b->capacity * BLK_SECTOR;
    b->nblocks = (b->bytes + DOMAIN_DISK_BLOCK - 1) / DOMAIN_DISK_BLOCK;
    snprintf(b->vdev, sizeof(b->vdev), "%s", vdev);
    char name[48];
    snprintf(name, sizeof(name), "virtio-blk %s", vdev);
    const struct virtio_queue_setup qs[1] = { { VQ_DIR_MIXED, VIRTIO_BLK_MAX_REQUEST } };
    uint64_t features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH |
                        (disk->readonly ? VIRTIO_BLK_F_RO : 0);
    int rc = virtio_dev_init(&b->dev, env, index, VIRTIO_ID_BLOCK, features, 1, qs, &blk_ops, b, name);
    if (!rc)
        rc = virtio_dev_start(&b->dev);
    if (rc) {
        virtio_dev_destroy(&b->dev);
        return rc;
    }
    tlog_info(env->log, "%s: %s%s, %" PRIu64 " sectors, device %u at %#" PRIx64 " GSI %u", name, disk->target,
              disk->readonly ? " (read-only)" : "", b->capacity, index, b->dev.base, b->dev.gsi);
    *out = &b->dev;
    return 0;
}

/* ---- Replication (Remus) ------------------------------------------------ */

/* Every block holding data, as SEEK_DATA / SEEK_HOLE see the image: a
 * sparse image's holes are not copied.  Where the file system cannot say,
 * every block from there on. */
static void mark_data_blocks(struct vblk *b, const struct tlog *log)
{
    uint64_t pos = 0, data_bytes = 0;
    while (pos < b->bytes) {
        off_t data = lseek(b->fd, (off_t)pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;                               /* only a hole is left */
        uint64_t start = data < 0 ? pos : (uint64_t)data, end = b->bytes;
        if (start >= b->bytes)
            break;
        if (data >= 0) {
            off_t hole = lseek(b->fd, data, SEEK_HOLE);
            if (hole >= 0 && (uint64_t)hole < end)
                end = (uint64_t)hole;
        }
        if (end <= start)
            end = b->bytes;                      /* no progress: take the rest */
        set_blocks(b->dirty, start / DOMAIN_DISK_BLOCK, (end - 1) / DOMAIN_DISK_BLOCK);
        data_bytes += end - start;
        pos = end;
    }
    tlog_info(log, "%s: tracking writes; the initial copy has %" PRIu64 " of %" PRIu64 " bytes holding data",
              b->dev.name, data_bytes, b->bytes);
}

int virtio_blk_track_start(struct virtio_dev *v, bool all_dirty, const struct tlog *log)
{
    struct vblk *b = vblk_of(v);
    if (b->readonly)
        return 0;
    if (!b->dirty) {
        uint64_t *bm = calloc((b->nblocks + 63) / 64, sizeof(uint64_t));
        if (!bm) {
            tlog_error(log, "%s: no memory for a dirty bitmap of %" PRIu64 " blocks", v->name, b->nblocks);
            return -ENOMEM;
        }
        /* The device thread reads the pointer in run(): swap it held. */
        virtio_dev_pause(v);
        b->dirty = bm;
        virtio_dev_unpause(v);
    }
    /* After the bitmap is in place: a write meanwhile sets its own bit. */
    if (all_dirty)
        mark_data_blocks(b, log);
    return 0;
}

void virtio_blk_track_stop(struct virtio_dev *v)
{
    struct vblk *b = vblk_of(v);
    virtio_dev_pause(v);
    uint64_t *bm = b->dirty;
    b->dirty = NULL;
    virtio_dev_unpause(v);
    free(bm);
}

/* All of [off, off+len) of the image. */
static int read_full(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
    while (len) {
        ssize_t r = pread(fd, buf, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;   /* the image shrank under us */
        buf += r;
        len -= (uint64_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int virtio_blk_harvest(struct virtio_dev *v, unsigned disk, size_t *budget, bool *handed_any, bool *left,
                       int (*fn)(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len),
                       void *opaque, const struct tlog *log)
{
    struct vblk *b = vblk_of(v);
    if (!b->dirty)
        return 0;
    uint8_t *buf = NULL;
    int rc = 0;
    for (uint64_t i = next_dirty(b, 0); i < b->nblocks; i = next_dirty(b, i)) {
        /* A run of dirty blocks the budget allows, read at once. */
        uint64_t j = i, bytes = 0;
        while (j < b->nblocks && j - i < HARVEST_RUN_BLOCKS && block_dirty(b->dirty, j) &&
               (bytes + block_len(b, j) <= *budget || (!*handed_any && j == i))) {
            bytes += block_len(b, j);
            j++;
        }
        if (j == i) {
            *left = true;              /* the budget is spent; blocks are left */
            break;
        }
        if (!buf && !(buf = malloc((size_t)HARVEST_RUN_BLOCKS * DOMAIN_DISK_BLOCK))) {
            rc = -ENOMEM;
            break;
        }
        clear_blocks(b->dirty, i, j - 1);       /* before the read: see above */
        rc = read_full(b->fd, buf, bytes, i * DOMAIN_DISK_BLOCK);
        if (rc) {
            set_blocks(b->dirty, i, j - 1);
            tlog_error(log, "%s: reading %" PRIu64 " dirty bytes at offset %" PRIu64 " of the image: %s", v->name,
                       bytes, i * DOMAIN_DISK_BLOCK, strerror(-rc));
            break;
        }
        for (uint64_t k = i; k < j; k++) {
            uint32_t len = block_len(b, k);
            rc = fn(opaque, disk, k * DOMAIN_DISK_BLOCK, buf + (k - i) * DOMAIN_DISK_BLOCK, len);
            if (rc) {
                set_blocks(b->dirty, k, j - 1);   /* not taken: still dirty */
                break;
            }
            *budget -= len < *budget ? len : *budget;
            *handed_any = true;
        }
        if (rc)
            break;
        i = j;
    }
    free(buf);
    return rc;
}

int virtio_blk_write_at(struct virtio_dev *v, uint64_t offset, const void *data, uint32_t len,
                        const struct tlog *log)
{
    struct vblk *b = vblk_of(v);
    if (b->readonly) {
        tlog_error(log, "%s: a block for a read-only disk", v->name);
        return -EROFS;
    }
    if (offset > b->bytes || len > b->bytes - offset) {
        tlog_error(log, "%s: %" PRIu32 " bytes at offset %" PRIu64 " go beyond the disk's end (%" PRIu64 " bytes)",
                   v->name, len, offset, b->bytes);
        return -EINVAL;
    }
    if (len && !data) {
        tlog_error(log, "%s: %" PRIu32 " bytes to write and no data", v->name, len);
        return -EINVAL;
    }
    const uint8_t *p = data;
    __atomic_store_n(&b->remote_unsynced, true, __ATOMIC_RELEASE);
    while (len) {
        ssize_t w = pwrite(b->fd, p, len, (off_t)offset);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            tlog_error(log, "%s: writing %" PRIu32 " bytes at offset %" PRIu64 " of the image: %s", v->name, len,
                       offset, strerror(err));
            return -err;
        }
        p += w;
        len -= (uint32_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

int virtio_blk_sync(struct virtio_dev *v, const struct tlog *log)
{
    struct vblk *b = vblk_of(v);
    if (b->readonly)
        return 0;
    /* Taken first: a write racing this sync marks the disk again. */
    bool local = __atomic_exchange_n(&b->unsynced, false, __ATOMIC_ACQ_REL);
    bool remote = __atomic_exchange_n(&b->remote_unsynced, false, __ATOMIC_ACQ_REL);
    if (!local && !remote)
        return 0;
    if (fdatasync(b->fd) < 0) {
        int err = errno;
        __atomic_store_n(&b->unsynced, true, __ATOMIC_RELEASE);
        __atomic_store_n(&b->remote_unsynced, true, __ATOMIC_RELEASE);
        tlog_error(log, "%s: fdatasync of the image: %s", v->name, strerror(err));
        return -err;
    }
    return 0;
}
