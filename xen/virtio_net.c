/* virtio-net over a tap: queue 0 receives, queue 1 transmits.  No
 * offloads, no mergeable buffers: every frame travels behind a 12-byte
 * virtio_net_hdr (VERSION_1 layout) that is all zeros but num_buffers = 1
 * on receive and ignored on transmit.
 *
 * Receive takes a frame from the tap only when the guest has a buffer
 * posted, so frames that arrive while there is none, or while the domain
 * is paused, wait in the tap's kernel queue (txqueuelen frames, 1000 by
 * default; beyond that the kernel drops them, as a full NIC ring would).
 * Nothing is read from the tap that could not be delivered, so a pause or
 * a migration loses no frame that was already taken.
 *
 * After a restore the device announces the guest, as QEMU's
 * announce-self does: RARP frames from the guest's MAC into the tap, so
 * that switches and bridges learn where it went.
 *
 * Output commit (Remus).  While buffering, transmit copies each frame out
 * of the guest's buffers into a FIFO of held frames tagged with the open
 * epoch and completes the descriptor at once, so the guest never waits for
 * the backup's ack while there is room.  A release writes the frames of
 * the epochs the backup has acknowledged to the tap, from the releasing
 * thread: the device thread only links frames in and never waits for the
 * tap on the FIFO's behalf.  Two locks: buf_lock over the FIFO (taken only
 * to link or unlink frames, by both sides) and flush_lock, which keeps
 * releasers' writes in FIFO order.  The bound (buf_max): a frame that
 * would take the held bytes past it is left in the ring and transmit
 * stops there (the ring fills, the guest waits); the release that makes
 * room kicks the transmit queue.  A stop holds the device thread while it
 * empties the FIFO, so a frame sent unbuffered after the stop cannot reach
 * the tap before one held from before it. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "devices.h"
#include "tap.h"

#define NET_FRAME_MAX 65535
#define NET_QUEUE_RX 0
#define NET_QUEUE_TX 1
#define NET_STATE_SIZE 8
#define ANNOUNCE_FIRST_GAP_MS 50
#define ANNOUNCE_GAP_STEP_MS 100
#define FLUSH_BATCH 64              /* held frames unlinked per lock hold */
#define NOMEM_RETRY_MS 10

/* A frame held for output commit. */
struct held_frame {
    struct held_frame *next;
    uint64_t epoch;
    uint32_t len;
    uint8_t data[];
};

struct vnet {
    struct virtio_dev dev;
    int tap_fd;
    char ifname[DOMAIN_IFNAME_MAX];
    uint8_t mac[6];
    uint16_t link;
    bool rx_waiting;             /* buffers posted, tap empty: wait for it */
    bool announce_pending;
    unsigned announce_left, announce_gap_ms;
    uint64_t announce_next_ms;
    struct virtio_net_stats stats;
    bool warned_tx, warned_rx;
    struct vq_chain chain;
    struct iovec iov[VQ_MAX_SIZE];
    uint8_t frame[VIRTIO_NET_HDR_LEN + NET_FRAME_MAX];

    /* Output buffering; all but tx_nomem under buf_lock.  buffering is
     * also read without it (atomically) by the device thread's fast path:
     * only a start can change it while the thread runs. */
    pthread_mutex_t buf_lock, flush_lock;
    bool buffering;
    bool tx_stalled;                 /* a frame waits in the ring for room */
    bool tx_nomem;                   /* the device thread's: retry soon */
    bool warned_release;
    size_t buf_max;
    uint64_t buf_epoch;              /* the open epoch */
    struct held_frame *held_head, **held_tail;
    struct domain_net_buffer_stats buf_stats;
};

static struct vnet *vnet_of(struct virtio_dev *v) { return v->priv; }

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void mark(void *opaque, uint64_t gpa, uint64_t len)
{
    struct virtio_dev *v = opaque;
    if (v->env.mark_dirty)
        v->env.mark_dirty(v->env.opaque, gpa, len);
}

static void config_read(struct virtio_dev *v, unsigned off, uint8_t *out, unsigned len)
{
    struct vnet *n = vnet_of(v);
    uint8_t cfg[8];
    memcpy(cfg, n->mac, 6);
    cfg[6] = (uint8_t)n->link;
    cfg[7] = (uint8_t)(n->link >> 8);
    memcpy(out, cfg + off, len);
}

/* ---- Announcement ------------------------------------------------------- */

/* A RARP "reverse request" (RFC 903) from the guest's MAC about itself,
 * broadcast, padded to Ethernet's 60-byte minimum. */
static void send_rarp(struct vnet *n)
{
    uint8_t f[60];
    memset(f, 0, sizeof(f));
    memset(f, 0xff, 6);
    memcpy(f + 6, n->mac, 6);
    f[12] = 0x80; f[13] = 0x35;        /* ethertype RARP */
    f[14] = 0x00; f[15] = 0x01;        /* hardware: Ethernet */
    f[16] = 0x08; f[17] = 0x00;        /* protocol: IPv4 */
    f[18] = 6; f[19] = 4;              /* address lengths */
    f[20] = 0x00; f[21] = 0x03;        /* op: reverse request */
    memcpy(f + 22, n->mac, 6);         /* sender hardware address */
    memcpy(f + 32, n->mac, 6);         /* target hardware address */
    if (write(n->tap_fd, f, sizeof(f)) == (ssize_t)sizeof(f))
        n->stats.announced++;
}

static void announce_step(struct vnet *n)
{
    uint64_t now = now_ms();
    if (n->announce_pending) {
        n->announce_pending = false;
        n->announce_left = VIRTIO_NET_ANNOUNCE_ROUNDS;
        n->announce_gap_ms = ANNOUNCE_FIRST_GAP_MS;
        n->announce_next_ms = now;
        tlog_info(n->dev.env.log, "%s: announcing %02x:%02x:%02x:%02x:%02x:%02x after the restore: %u RARP frames",
                  n->dev.name, n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
                  VIRTIO_NET_ANNOUNCE_ROUNDS);
    }
    while (n->announce_left && now >= n->announce_next_ms) {
        send_rarp(n);
        n->announce_left--;
        n->announce_next_ms = now + n->announce_gap_ms;
        n->announce_gap_ms += ANNOUNCE_GAP_STEP_MS;
        if (!n->announce_left)
            tlog_info(n->dev.env.log, "%s: announced (%" PRIu64 " RARP frames sent)", n->dev.name,
                      n->stats.announced);
    }
}

/* ---- Output buffering --------------------------------------------------- */

/* The device thread's side: the frame of n->chain (frame bytes behind the
 * header) into the FIFO.  1 = held, 0 = not buffering (send it now),
 * -ENOSPC = no room (stalled), -ENOMEM. */
static int hold_frame(struct vnet *n, uint32_t frame)
{
    if (!__atomic_load_n(&n->buffering, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&n->buf_lock);
    /* Only this thread adds, and a stop holds this thread: the room seen
     * here can only grow before the frame is linked below. */
    bool room = !n->buf_stats.held_bytes || n->buf_stats.held_bytes + frame <= n->buf_max;
    if (!room && !n->tx_stalled) {
        n->tx_stalled = true;
        n->buf_stats.stalls++;
    }
    pthread_mutex_unlock(&n->buf_lock);
    if (!room)
        return -ENOSPC;
    struct held_frame *f = malloc(sizeof(*f) + frame);
    n->tx_nomem = !f;
    if (!f) {
        if (!n->warned_tx) {
            n->warned_tx = true;
            tlog_warn(n->dev.env.log, "%s: no memory to hold a %u-byte frame; the guest's transmit waits",
                      n->dev.name, frame);
        }
        return -ENOMEM;
    }
    vq_chain_read(&n->chain, VIRTIO_NET_HDR_LEN, f->data, frame);
    f->len = frame;
    f->next = NULL;
    pthread_mutex_lock(&n->buf_lock);
    f->epoch = n->buf_epoch;
    *n->held_tail = f;
    n->held_tail = &f->next;
    n->buf_stats.held_frames++;
    n->buf_stats.held_bytes += frame;
    if (n->buf_stats.held_bytes > n->buf_stats.max_held_bytes)
        n->buf_stats.max_held_bytes = n->buf_stats.held_bytes;
    pthread_mutex_unlock(&n->buf_lock);
    return 1;
}

static void write_held(struct vnet *n, struct held_frame *f, bool send)
{
    while (f) {
        struct held_frame *next = f->next;
        if (send && write(n->tap_fd, f->data, f->len) != (ssize_t)f->len) {
            /* Lost, as on a wire; said once. */
            pthread_mutex_lock(&n->buf_lock);
            bool warn = !n->warned_release;
            n->warned_release = true;
            pthread_mutex_unlock(&n->buf_lock);
            if (warn)
                tlog_warn(n->dev.env.log, "%s: writing a released %u-byte frame to the tap: %s", n->dev.name,
                          f->len, strerror(errno));
        }
        free(f);
        f = next;
    }
}

/* Unlinks up to FLUSH_BATCH frames from the head whose epoch is <= upto
 * (all: any epoch); their count in *n_out.  With buf_lock held. */
static struct held_frame *unlink_head_locked(struct vnet *n, uint64_t upto, bool all, unsigned max,
                                             unsigned *n_out)
{
    struct held_frame *first = n->held_head, *last = NULL;
    unsigned cnt = 0;
    uint64_t bytes = 0;
    for (struct held_frame *f = first; f && (all || f->epoch <= upto) && cnt < max; f = f->next) {
        last = f;
        cnt++;
        bytes += f->len;
    }
    *n_out = cnt;
    if (!cnt)
        return NULL;
    n->held_head = last->next;
    if (!n->held_head)
        n->held_tail = &n->held_head;
    last->next = NULL;
    n->buf_stats.held_frames -= cnt;
    n->buf_stats.held_bytes -= bytes;
    return first;
}

int virtio_net_buffer_start(struct virtio_dev *v, size_t max_bytes, uint64_t first_epoch)
{
    struct vnet *n = vnet_of(v);
    pthread_mutex_lock(&n->buf_lock);
    if (n->buffering) {
        pthread_mutex_unlock(&n->buf_lock);
        return -EBUSY;
    }
    n->buf_max = max_bytes ? max_bytes : DOMAIN_NET_BUFFER_DEFAULT;
    n->buf_epoch = first_epoch;
    n->tx_stalled = false;
    n->warned_release = false;
    memset(&n->buf_stats, 0, sizeof(n->buf_stats));
    __atomic_store_n(&n->buffering, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&n->buf_lock);
    return 0;
}

void virtio_net_buffer_mark(struct virtio_dev *v, uint64_t next_epoch)
{
    struct vnet *n = vnet_of(v);
    pthread_mutex_lock(&n->buf_lock);
    n->buf_epoch = next_epoch;
    pthread_mutex_unlock(&n->buf_lock);
}

void virtio_net_buffer_release(struct virtio_dev *v, uint64_t epoch)
{
    struct vnet *n = vnet_of(v);
    pthread_mutex_lock(&n->flush_lock);
    for (;;) {
        unsigned cnt;
        pthread_mutex_lock(&n->buf_lock);
        struct held_frame *batch = unlink_head_locked(n, epoch, false, FLUSH_BATCH, &cnt);
        n->buf_stats.released_frames += cnt;
        bool wake = cnt && n->tx_stalled;
        if (wake)
            n->tx_stalled = false;
        pthread_mutex_unlock(&n->buf_lock);
        if (!batch)
            break;
        if (wake)
            virtio_dev_kick(v, NET_QUEUE_TX);   /* room again: transmit goes on */
        write_held(n, batch, true);
    }
    pthread_mutex_unlock(&n->flush_lock);
}

void virtio_net_buffer_stop(struct virtio_dev *v, bool release)
{
    struct vnet *n = vnet_of(v);
    virtio_dev_pause(v);
    pthread_mutex_lock(&n->flush_lock);
    unsigned cnt;
    pthread_mutex_lock(&n->buf_lock);
    __atomic_store_n(&n->buffering, false, __ATOMIC_RELEASE);
    struct held_frame *all = unlink_head_locked(n, 0, true, UINT_MAX, &cnt);
    if (release)
        n->buf_stats.released_frames += cnt;
    bool wake = n->tx_stalled;
    n->tx_stalled = false;
    pthread_mutex_unlock(&n->buf_lock);
    write_held(n, all, release);
    pthread_mutex_unlock(&n->flush_lock);
    virtio_dev_unpause(v);
    if (wake)
        virtio_dev_kick(v, NET_QUEUE_TX);
    if (cnt)
        tlog_info(v->env.log, "%s: output buffering stopped: %u held frames %s", v->name, cnt,
                  release ? "sent" : "discarded");
}

void virtio_net_buffer_add_stats(struct virtio_dev *v, struct domain_net_buffer_stats *out)
{
    struct vnet *n = vnet_of(v);
    pthread_mutex_lock(&n->buf_lock);
    out->held_frames += n->buf_stats.held_frames;
    out->held_bytes += n->buf_stats.held_bytes;
    out->released_frames += n->buf_stats.released_frames;
    out->max_held_bytes += n->buf_stats.max_held_bytes;
    out->stalls += n->buf_stats.stalls;
    pthread_mutex_unlock(&n->buf_lock);
}

/* ---- Transmit ----------------------------------------------------------- */

static void transmit(struct vnet *n)
{
    struct virtio_dev *v = &n->dev;
    struct virtqueue *q = &v->vq[NET_QUEUE_TX];
    bool pushed = false;
    char err[200];
    for (unsigned batch = 0; q->ready && !virtio_dev_held(v); batch++) {
        if (batch == VQ_MAX_SIZE) {
            /* A queue's worth: let receive have its turn, and come back. */
            virtio_dev_kick(v, NET_QUEUE_TX);
            break;
        }
        int rc = vq_pop(q, v->env.mem, VQ_DIR_READ, &n->chain, err, sizeof(err));
        if (rc < 0) {
            virtio_dev_fail(v, "transmit queue: %s", err);
            break;
        }
        if (rc == 0)
            break;
        if (n->chain.read_bytes < VIRTIO_NET_HDR_LEN) {
            vq_unpop(q);
            virtio_dev_fail(v, "transmit queue: a %" PRIu64 "-byte buffer cannot hold the %u-byte virtio_net_hdr",
                            n->chain.read_bytes, VIRTIO_NET_HDR_LEN);
            break;
        }
        uint64_t frame = n->chain.read_bytes - VIRTIO_NET_HDR_LEN, covered;
        if (frame >= 14 && frame <= NET_FRAME_MAX) {
            int held = hold_frame(n, (uint32_t)frame);
            if (held < 0) {
                /* No room (or no memory): the frame stays the guest's, in
                 * the ring, until a release (or the retry) runs us again. */
                vq_unpop(q);
                break;
            }
            if (held) {
                n->stats.tx_frames++;
                vq_push(q, n->chain.head, 0, mark, v);
                pushed = true;
                continue;
            }
        }
        unsigned niov = vq_chain_iov(&n->chain, false, VIRTIO_NET_HDR_LEN, frame, n->iov, VQ_MAX_SIZE, &covered);
        if (frame < 14 || frame > NET_FRAME_MAX || writev(n->tap_fd, n->iov, (int)niov) != (ssize_t)frame) {
            /* A frame the tap cannot take is lost, as on a wire. */
            n->stats.tx_dropped++;
            if (!n->warned_tx) {
                n->warned_tx = true;
                tlog_warn(v->env.log, "%s: dropped a %" PRIu64 "-byte frame from the guest%s%s", v->name, frame,
                          frame < 14 || frame > NET_FRAME_MAX ? " (no Ethernet frame)" : ": ",
                          frame < 14 || frame > NET_FRAME_MAX ? "" : strerror(errno));
            }
        } else {
            n->stats.tx_frames++;
        }
        vq_push(q, n->chain.head, 0, mark, v);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(v, NET_QUEUE_TX);
}

/* ---- Receive ------------------------------------------------------------ */

static void receive(struct vnet *n)
{
    struct virtio_dev *v = &n->dev;
    struct virtqueue *q = &v->vq[NET_QUEUE_RX];
    bool pushed = false;
    char err[200];
    n->rx_waiting = false;
    while (q->ready && !virtio_dev_held(v)) {
        unsigned avail;
        if (vq_avail_count(q, &avail, err, sizeof(err)) < 0) {
            virtio_dev_fail(v, "receive queue: %s", err);
            break;
        }
        if (!avail)
            break;  /* frames wait in the tap until the guest posts buffers */
        ssize_t r = read(n->tap_fd, n->frame + VIRTIO_NET_HDR_LEN, NET_FRAME_MAX);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            /* Empty: wait for the tap.  Any other error (the tap deleted
             * under us) would make poll() return at once, forever; stop
             * waiting on it until the guest posts buffers again. */
            n->rx_waiting = r < 0 && errno == EAGAIN;
            if (!n->rx_waiting && !n->warned_rx) {
                n->warned_rx = true;
                tlog_warn(v->env.log, "%s: reading the tap: %s", v->name, r < 0 ? strerror(errno) : "end of file");
            }
            break;
        }
        int rc = vq_pop(q, v->env.mem, VQ_DIR_WRITE, &n->chain, err, sizeof(err));
        if (rc <= 0) {
            n->stats.rx_dropped++;
            if (rc < 0)
                virtio_dev_fail(v, "receive queue: %s", err);
            break;
        }
        if (n->chain.write_bytes < VIRTIO_NET_RX_MIN) {
            vq_unpop(q);
            n->stats.rx_dropped++;
            virtio_dev_fail(v, "receive queue: a %" PRIu64 "-byte buffer; every one must hold %u bytes",
                            n->chain.write_bytes, VIRTIO_NET_RX_MIN);
            break;
        }
        uint64_t total = VIRTIO_NET_HDR_LEN + (uint64_t)r;
        if (total > n->chain.write_bytes) {
            /* Bigger than the MTU the buffers are made for: dropped, the
             * buffer stays the guest's for the next frame. */
            vq_unpop(q);
            n->stats.rx_dropped++;
            continue;
        }
        memset(n->frame, 0, VIRTIO_NET_HDR_LEN);
        n->frame[10] = 1;                  /* num_buffers, u16 LE */
        vq_chain_write(&n->chain, 0, n->frame, total, mark, v);
        vq_push(q, n->chain.head, (uint32_t)total, mark, v);
        n->stats.rx_frames++;
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(v, NET_QUEUE_RX);
}

static void run(struct virtio_dev *v, bool live)
{
    struct vnet *n = vnet_of(v);
    announce_step(n);
    if (!live) {
        n->rx_waiting = false;
        return;
    }
    transmit(n);
    receive(n);
}

static unsigned wait_fds(struct virtio_dev *v, bool live, struct pollfd *fds, unsigned max, int *timeout_ms)
{
    struct vnet *n = vnet_of(v);
    unsigned k = 0;
    if (live && n->rx_waiting && k < max)
        fds[k++] = (struct pollfd){ .fd = n->tap_fd, .events = POLLIN };
    if (live && n->tx_nomem && (*timeout_ms < 0 || *timeout_ms > NOMEM_RETRY_MS))
        *timeout_ms = NOMEM_RETRY_MS;
    if (n->announce_left) {
        uint64_t now = now_ms();
        int wait = n->announce_next_ms > now ? (int)(n->announce_next_ms - now) : 0;
        if (*timeout_ms < 0 || wait < *timeout_ms)
            *timeout_ms = wait;
    }
    return k;
}

/* ---- State -------------------------------------------------------------- */

static int state_save(struct virtio_dev *v, uint8_t *out, const struct tlog *log)
{
    struct vnet *n = vnet_of(v);
    memcpy(out, n->mac, 6);
    out[6] = (uint8_t)n->link;
    out[7] = (uint8_t)(n->link >> 8);
    (void)log;
    return 0;
}

static int state_check(struct virtio_dev *v, const uint8_t *in, char *err, size_t errlen)
{
    struct vnet *n = vnet_of(v);
    uint16_t link = (uint16_t)(in[6] | in[7] << 8);
    if (memcmp(in, n->mac, 6)) {
        snprintf(err, errlen, "state of MAC %02x:%02x:%02x:%02x:%02x:%02x, this vif has "
                 "%02x:%02x:%02x:%02x:%02x:%02x", in[0], in[1], in[2], in[3], in[4], in[5], n->mac[0], n->mac[1],
                 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
        return -EINVAL;
    }
    if (link & ~VIRTIO_NET_S_LINK_UP) {
        snprintf(err, errlen, "link status %#x has unknown bits", link);
        return -EINVAL;
    }
    return 0;
}

static void state_load(struct virtio_dev *v, const uint8_t *in)
{
    vnet_of(v)->link = (uint16_t)(in[6] | in[7] << 8);
}

static void destroy(struct virtio_dev *v)
{
    struct vnet *n = vnet_of(v);
    if (n->tap_fd >= 0)
        close(n->tap_fd);   /* the tap is not persistent: it goes now */
    write_held(n, n->held_head, false);   /* the guest is gone: so is its held output */
    pthread_mutex_destroy(&n->buf_lock);
    pthread_mutex_destroy(&n->flush_lock);
    free(n);
}

static const struct virtio_dev_ops net_ops = {
    .config_size = 8,
    .config_read = config_read,
    .run = run,
    .wait_fds = wait_fds,
    .state_size = NET_STATE_SIZE,
    .state_save = state_save,
    .state_check = state_check,
    .state_load = state_load,
    .destroy = destroy,
};

int virtio_net_create(struct virtio_dev **out, const struct virtio_env *env, unsigned index, unsigned domid,
                      unsigned devid, const struct domain_vif *vif, bool announce)
{
    char ifname[DOMAIN_IFNAME_MAX];
    int w = vif->ifname[0] ? snprintf(ifname, sizeof(ifname), "%.*s", DOMAIN_IFNAME_MAX - 1, vif->ifname)
                           : snprintf(ifname, sizeof(ifname), "vif%u.%u", domid, devid);
    if (w < 0 || (size_t)w >= sizeof(ifname)) {
        tlog_error(env->log, "vif %u: its interface name would be longer than %d characters", devid,
                   DOMAIN_IFNAME_MAX - 1);
        return -EINVAL;
    }
    if (vif->mac[0] & 1) {
        tlog_error(env->log, "vif %s: MAC %02x:%02x:%02x:%02x:%02x:%02x is a multicast address", ifname,
                   vif->mac[0], vif->mac[1], vif->mac[2], vif->mac[3], vif->mac[4], vif->mac[5]);
        return -EINVAL;
    }
    struct vnet *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->tap_fd = -1;
    pthread_mutex_init(&n->buf_lock, NULL);
    pthread_mutex_init(&n->flush_lock, NULL);
    n->held_tail = &n->held_head;
    memcpy(n->ifname, ifname, sizeof(ifname));
    memcpy(n->mac, vif->mac, 6);
    n->link = VIRTIO_NET_S_LINK_UP;
    n->announce_pending = announce;

    char name[48];
    snprintf(name, sizeof(name), "virtio-net %s", ifname);
    const struct virtio_queue_setup qs[2] = {
        { VQ_DIR_WRITE, VIRTIO_NET_HDR_LEN + NET_FRAME_MAX },
        { VQ_DIR_READ, VIRTIO_NET_HDR_LEN + NET_FRAME_MAX },
    };
    int rc = virtio_dev_init(&n->dev, env, index, VIRTIO_ID_NET, VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS, 2, qs,
                             &net_ops, n, name);
    if (rc) {
        virtio_dev_destroy(&n->dev);
        return rc;
    }
    n->tap_fd = tap_create(ifname, vif->bridge, env->log);
    if (n->tap_fd < 0) {
        rc = n->tap_fd;
        n->tap_fd = -1;
        virtio_dev_destroy(&n->dev);
        return rc;
    }
    if ((rc = virtio_dev_start(&n->dev))) {
        virtio_dev_destroy(&n->dev);
        return rc;
    }
    tlog_info(env->log, "%s: tap %s%s%s, MAC %02x:%02x:%02x:%02x:%02x:%02x, device %u at %#" PRIx64 " GSI %u",
              name, ifname, vif->bridge[0] ? " on bridge " : " (no bridge)", vif->bridge, n->mac[0], n->mac[1],
              n->mac[2], n->mac[3], n->mac[4], n->mac[5], index, n->dev.base, n->dev.gsi);
    *out = &n->dev;
    return 0;
}

const char *virtio_net_ifname(const struct virtio_dev *v)
{
    return ((const struct vnet *)v->priv)->ifname;
}

void virtio_net_get_stats(struct virtio_dev *v, struct virtio_net_stats *out)
{
    /* Written by the device thread; a held device reads them stable. */
    virtio_dev_pause(v);
    *out = vnet_of(v)->stats;
    virtio_dev_unpause(v);
}
