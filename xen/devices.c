/* A domain's virtio devices: built from its config, placed as the virtio
 * contract says, paused and resumed with its vCPUs, and reached from
 * their MMIO exits; and the domain's side of Remus over them (output
 * buffering in the vifs, write tracking in the disks). */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "devices.h"
#include "domain.h"
#include "netbuf_plug.h"

static void mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    domain_mark_dirty(opaque, gpa, len);
}

static void plug_destroy(struct domain *d);

int devices_alloc(struct domain *d)
{
    struct devices *devs = calloc(1, sizeof(*devs));
    if (!devs)
        return -ENOMEM;
    pthread_mutex_init(&devs->net_lock, NULL);
    pthread_mutex_init(&devs->disk_lock, NULL);
    d->devs = devs;
    return 0;
}

int devices_create(struct domain *d, unsigned domid, bool for_restore)
{
    const struct domain_config *c = &d->cfg;
    if (c->nr_vifs > DOMAIN_MAX_VIFS || c->nr_disks > DOMAIN_MAX_DISKS ||
        c->nr_vifs + c->nr_disks > VIRTIO_MMIO_MAX_DEVICES) {
        tlog_error(d->log, "%u vifs and %u disks: at most %d vifs, %d disks and %d devices in all", c->nr_vifs,
                   c->nr_disks, DOMAIN_MAX_VIFS, DOMAIN_MAX_DISKS, VIRTIO_MMIO_MAX_DEVICES);
        return -EINVAL;
    }
    int rc = devices_alloc(d);
    if (rc)
        return rc;
    struct devices *devs = d->devs;
    struct virtio_env env = { .mem = &d->mem, .log = d->log, .vm_fd = d->vm_fd, .mark_dirty = mark_dirty,
                              .opaque = d };
    for (unsigned i = 0; i < c->nr_vifs && !rc; i++) {
        rc = virtio_net_create(&devs->dev[devs->n], &env, devs->n, domid, i, &c->vifs[i], for_restore);
        if (!rc)
            devs->n++;
    }
    for (unsigned i = 0; i < c->nr_disks && !rc; i++) {
        rc = virtio_blk_create(&devs->dev[devs->n], &env, devs->n, &c->disks[i]);
        if (!rc)
            devs->n++;
    }
    if (rc)
        devices_destroy(d);
    return rc;
}

void devices_destroy(struct domain *d)
{
    struct devices *devs = d->devs;
    if (!devs)
        return;
    plug_destroy(d);   /* a PLUG session's ifbs and redirects go too */
    for (unsigned i = 0; i < devs->n; i++)
        virtio_dev_destroy(devs->dev[i]);
    pthread_mutex_destroy(&devs->net_lock);
    pthread_mutex_destroy(&devs->disk_lock);
    free(devs);
    d->devs = NULL;
}

int devices_append_cmdline(const struct domain_config *cfg, char *buf, size_t len)
{
    unsigned n = cfg->nr_vifs + cfg->nr_disks;
    size_t used = strlen(buf);
    for (unsigned i = 0; i < n && i < VIRTIO_MMIO_MAX_DEVICES; i++) {
        /* Linux's virtio_mmio.device=<size>@<base>:<irq> */
        int w = snprintf(buf + used, len - used, "%svirtio_mmio.device=4K@%#" PRIx64 ":%u", used ? " " : "",
                         (uint64_t)(VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE), VIRTIO_MMIO_GSI_BASE + i);
        if (w < 0 || (size_t)w >= len - used)
            return -E2BIG;
        used += (size_t)w;
    }
    return 0;
}

bool devices_mmio(struct domain *d, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
    struct devices *devs = d->devs;
    if (!devs || gpa < VIRTIO_MMIO_BASE)
        return false;
    uint64_t i = (gpa - VIRTIO_MMIO_BASE) / VIRTIO_MMIO_SIZE;
    if (i >= devs->n)
        return false;
    virtio_mmio_access(devs->dev[i], (gpa - VIRTIO_MMIO_BASE) % VIRTIO_MMIO_SIZE, data, len, is_write);
    return true;
}

void devices_pause(struct domain *d)
{
    if (!d->devs)
        return;
    for (unsigned i = 0; i < d->devs->n; i++)
        virtio_dev_pause(d->devs->dev[i]);
}

void devices_unpause(struct domain *d)
{
    if (!d->devs)
        return;
    for (unsigned i = 0; i < d->devs->n; i++)
        virtio_dev_unpause(d->devs->dev[i]);
}

/* ---- Remus: output buffering --------------------------------------------
 * The epoch numbers are the domain's (all vifs close an epoch together);
 * net_lock guards them and is never held while frames are written, so a
 * mark at a checkpoint never waits for a release that is busy sending. */

static bool is_net(const struct virtio_dev *v) { return v->device_id == VIRTIO_ID_NET; }
static bool is_blk(const struct virtio_dev *v) { return v->device_id == VIRTIO_ID_BLOCK; }

/* The PLUG backend's state for a domain that buffers with it (struct
 * devices' net_plug).  plug_lock guards it and orders the barriers and
 * releases with the epoch bookkeeping; it is held across the netlink
 * requests (each a round trip of microseconds); when both are held
 * (start), net_lock is taken first. */
struct plug_session {
    unsigned n;
    struct netbuf_plug *vif[DOMAIN_MAX_VIFS];
    struct netbuf_plug_epochs ep;
    uint64_t max_backlog;
};
static pthread_mutex_t plug_lock = PTHREAD_MUTEX_INITIALIZER;

static struct plug_session *plug_find_locked(const struct devices *devs)
{
    return devs->net_plug;
}

static struct plug_session *plug_unlink_locked(struct devices *devs)
{
    struct plug_session *s = devs->net_plug;
    devs->net_plug = NULL;
    return s;
}

const char *domain_netbuf_backend_name(enum domain_netbuf_backend backend)
{
    return backend == DOMAIN_NETBUF_PLUG ? "plug" : backend == DOMAIN_NETBUF_VMM ? "vmm" : "?";
}

/* The last probe's answer (-1: none yet).  A probe costs tens of ms
 * (devices made and deleted) and start_on runs in the paused guest's epoch
 * 0: a caller that probed at start-up (for its log line) spares the guest
 * that pause.  The kernel's abilities do not change under a running
 * process, short of a module loaded meanwhile: probing again refreshes. */
static int probe_cached = -1;
static char probe_reason[256];

bool domain_net_buffer_probe(char *reason, size_t len)
{
    char why[256];
    bool ok = netbuf_plug_probe(why, sizeof(why));
    pthread_mutex_lock(&plug_lock);
    probe_cached = ok;
    snprintf(probe_reason, sizeof(probe_reason), "%s", why);
    pthread_mutex_unlock(&plug_lock);
    if (reason && len)
        snprintf(reason, len, "%s", why);
    return ok;
}

/* Builds the plumbing on every vif; net_lock held, not buffering. */
static int plug_start(struct domain *d, size_t max_bytes)
{
    struct devices *devs = d->devs;
    char why[256];
    pthread_mutex_lock(&plug_lock);
    int known = probe_cached;
    snprintf(why, sizeof(why), "%s", probe_reason);
    pthread_mutex_unlock(&plug_lock);
    if (known < 0)
        known = domain_net_buffer_probe(why, sizeof(why));
    if (!known) {
        tlog_error(d->log, "output buffering with the plug qdisc is not available here: %s", why);
        return -EOPNOTSUPP;
    }
    struct plug_session *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t limit = max_bytes ? max_bytes : (size_t)DOMAIN_NET_BUFFER_DEFAULT;
    char names[DOMAIN_MAX_VIFS * 40] = "";
    int rc = 0;
    for (unsigned i = 0; i < devs->n && !rc; i++) {
        if (!is_net(devs->dev[i]))
            continue;
        char ifb[DOMAIN_IFNAME_MAX];
        /* vifs come first, in devid order: s->n is the devid. */
        snprintf(ifb, sizeof(ifb), "ifb%u.%u", d->domid, s->n);
        const char *tap = virtio_net_ifname(devs->dev[i]);
        rc = netbuf_plug_setup(&s->vif[s->n], tap, ifb, limit, "plug", why, sizeof(why));
        if (rc) {
            tlog_error(d->log, "output buffering (plug) on %s: %s", tap, why);
            break;
        }
        if (why[0])
            tlog_warn(d->log, "output buffering (plug) on %s: %s", tap, why);
        size_t used = strlen(names);
        snprintf(names + used, sizeof(names) - used, "%s%s -> %s", used ? ", " : "", tap, ifb);
        s->n++;
    }
    if (rc) {
        for (unsigned k = 0; k < s->n; k++)
            netbuf_plug_teardown(s->vif[k], 0);
        free(s);
        return rc;
    }
    pthread_mutex_lock(&plug_lock);
    devs->net_plug = s;
    pthread_mutex_unlock(&plug_lock);
    if (s->n)
        tlog_info(d->log, "output buffering in the kernel (plug qdisc) on %u vif%s (%s), up to %zu bytes queued "
                  "each, frames beyond that are dropped", s->n, s->n == 1 ? "" : "s", names, limit);
    return 0;
}

/* Tears a session down: release = the held frames go out first. */
static void plug_stop(const struct tlog *log, struct plug_session *s, bool release)
{
    uint64_t held = 0;
    for (unsigned k = 0; k < s->n; k++) {
        struct netbuf_plug_counters c;
        char why[256];
        if (!netbuf_plug_counters(s->vif[k], &c, why, sizeof(why)))
            held += c.qlen;
        if (release && netbuf_plug_release_indefinite(s->vif[k], why, sizeof(why)))
            tlog_error(log, "output buffering (plug): %s: the frames it holds are lost", why);
        netbuf_plug_teardown(s->vif[k], release ? 1000 : 0);
    }
    if (held)
        tlog_info(log, "output buffering (plug) stopped: %" PRIu64 " held frames %s", held,
                  release ? "sent" : "discarded");
    free(s);
}

static void plug_destroy(struct domain *d)
{
    pthread_mutex_lock(&plug_lock);
    struct plug_session *s = plug_unlink_locked(d->devs);
    pthread_mutex_unlock(&plug_lock);
    if (s)
        plug_stop(d->log, s, false);
}

int domain_net_buffer_start(struct domain *d, size_t max_bytes)
{
    return domain_net_buffer_start_on(d, max_bytes, DOMAIN_NETBUF_VMM);
}

int domain_net_buffer_start_on(struct domain *d, size_t max_bytes, enum domain_netbuf_backend backend)
{
    if (backend != DOMAIN_NETBUF_VMM && backend != DOMAIN_NETBUF_PLUG) {
        tlog_error(d->log, "output buffering: unknown backend %d", (int)backend);
        return -EINVAL;
    }
    struct devices *devs = d->devs;
    if (!devs)
        return 0;
    pthread_mutex_lock(&devs->net_lock);
    if (devs->net_buffering) {
        pthread_mutex_unlock(&devs->net_lock);
        return -EBUSY;
    }
    int rc = 0;
    unsigned started = 0;
    if (backend == DOMAIN_NETBUF_PLUG) {
        rc = plug_start(d, max_bytes);
        if (!rc) {
            devs->net_buffering = true;
            devs->net_open_epoch = 1;
        }
        pthread_mutex_unlock(&devs->net_lock);
        return rc;
    }
    for (unsigned i = 0; i < devs->n && !rc; i++) {
        if (!is_net(devs->dev[i]))
            continue;
        rc = virtio_net_buffer_start(devs->dev[i], max_bytes, 1);
        if (!rc)
            started++;
    }
    if (rc) {
        for (unsigned i = 0; i < devs->n; i++)
            if (is_net(devs->dev[i]))
                virtio_net_buffer_stop(devs->dev[i], true);
    } else {
        devs->net_buffering = true;
        devs->net_open_epoch = 1;
        if (started)
            tlog_info(d->log, "output buffering on %u vif%s, up to %zu bytes held each", started,
                      started == 1 ? "" : "s", max_bytes ? max_bytes : (size_t)DOMAIN_NET_BUFFER_DEFAULT);
    }
    pthread_mutex_unlock(&devs->net_lock);
    return rc;
}

uint64_t domain_net_buffer_mark(struct domain *d)
{
    struct devices *devs = d->devs;
    if (!devs)
        return 0;
    pthread_mutex_lock(&devs->net_lock);
    uint64_t closed = 0;
    if (devs->net_buffering) {
        closed = devs->net_open_epoch++;
        for (unsigned i = 0; i < devs->n; i++)
            if (is_net(devs->dev[i]))
                virtio_net_buffer_mark(devs->dev[i], devs->net_open_epoch);
    }
    pthread_mutex_unlock(&devs->net_lock);
    if (closed) {
        pthread_mutex_lock(&plug_lock);
        struct plug_session *s = plug_find_locked(devs);
        /* A barrier that fails leaves the epoch's frames with the next
         * one: held longer, never let out early. */
        if (s && netbuf_plug_epochs_mark(&s->ep, closed))
            for (unsigned k = 0; k < s->n; k++) {
                char why[256];
                if (netbuf_plug_barrier(s->vif[k], why, sizeof(why)))
                    tlog_error(d->log, "output buffering (plug), epoch %" PRIu64 ": %s", closed, why);
            }
        pthread_mutex_unlock(&plug_lock);
    }
    return closed;
}

void domain_net_buffer_release(struct domain *d, uint64_t epoch)
{
    struct devices *devs = d->devs;
    if (!devs)
        return;
    pthread_mutex_lock(&devs->net_lock);
    bool on = devs->net_buffering;
    uint64_t last_closed = devs->net_open_epoch - 1;
    pthread_mutex_unlock(&devs->net_lock);
    if (!on)
        return;
    if (epoch > last_closed)
        epoch = last_closed;   /* the open epoch has no ack yet, whatever the caller says */
    pthread_mutex_lock(&plug_lock);
    struct plug_session *s = plug_find_locked(devs);
    if (s) {
        /* Release is cumulative (epochs <= epoch); the qdisc's release_one
         * lets out what lies before the one barrier it holds. */
        if (netbuf_plug_epochs_release(&s->ep, epoch))
            for (unsigned k = 0; k < s->n; k++) {
                char why[256];
                if (netbuf_plug_release_one(s->vif[k], why, sizeof(why)))
                    tlog_error(d->log, "output buffering (plug), release of epoch %" PRIu64 ": %s",
                               s->ep.released, why);
            }
        pthread_mutex_unlock(&plug_lock);
        return;
    }
    pthread_mutex_unlock(&plug_lock);
    /* The device list is fixed for the domain's life: no lock needed. */
    for (unsigned i = 0; i < devs->n; i++)
        if (is_net(devs->dev[i]))
            virtio_net_buffer_release(devs->dev[i], epoch);
}

void domain_net_buffer_stop(struct domain *d, bool release)
{
    struct devices *devs = d->devs;
    if (!devs)
        return;
    pthread_mutex_lock(&devs->net_lock);
    bool was_on = devs->net_buffering;
    devs->net_buffering = false;
    pthread_mutex_unlock(&devs->net_lock);
    if (!was_on)
        return;
    pthread_mutex_lock(&plug_lock);
    struct plug_session *s = plug_unlink_locked(devs);
    pthread_mutex_unlock(&plug_lock);
    if (s) {
        plug_stop(d->log, s, release);
        return;
    }
    for (unsigned i = 0; i < devs->n; i++)
        if (is_net(devs->dev[i]))
            virtio_net_buffer_stop(devs->dev[i], release);
}

void domain_net_buffer_stats(struct domain *d, struct domain_net_buffer_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct devices *devs = d->devs;
    if (!devs)
        return;
    pthread_mutex_lock(&plug_lock);
    struct plug_session *s = plug_find_locked(devs);
    if (s) {
        for (unsigned k = 0; k < s->n; k++) {
            struct netbuf_plug_counters c;
            char why[256];
            if (netbuf_plug_counters(s->vif[k], &c, why, sizeof(why))) {
                tlog_warn(d->log, "output buffering (plug): %s", why);
                continue;
            }
            out->held_frames += c.qlen;
            out->held_bytes += c.backlog;
            out->released_frames += c.sent;
            out->dropped += c.drops;
        }
        if (out->held_bytes > s->max_backlog)
            s->max_backlog = out->held_bytes;
        out->max_held_bytes = s->max_backlog;
        pthread_mutex_unlock(&plug_lock);
        return;
    }
    pthread_mutex_unlock(&plug_lock);
    for (unsigned i = 0; i < devs->n; i++)
        if (is_net(devs->dev[i]))
            virtio_net_buffer_add_stats(devs->dev[i], out);
}

/* ---- Remus: disk replication ---------------------------------------------- */

/* Disk `disk` in the config's order (the disks follow the vifs). */
static struct virtio_dev *disk_dev(struct devices *devs, unsigned disk)
{
    unsigned k = 0;
    for (unsigned i = 0; devs && i < devs->n; i++)
        if (is_blk(devs->dev[i]) && k++ == disk)
            return devs->dev[i];
    return NULL;
}

unsigned domain_nr_disks(struct domain *d)
{
    unsigned k = 0;
    for (unsigned i = 0; d->devs && i < d->devs->n; i++)
        k += is_blk(d->devs->dev[i]);
    return k;
}

int domain_disk_track_start(struct domain *d, bool all_dirty)
{
    struct devices *devs = d->devs;
    if (!devs)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&devs->disk_lock);
    for (unsigned i = 0; i < devs->n && !rc; i++)
        if (is_blk(devs->dev[i]))
            rc = virtio_blk_track_start(devs->dev[i], all_dirty, d->log);
    if (rc)
        for (unsigned i = 0; i < devs->n; i++)
            if (is_blk(devs->dev[i]))
                virtio_blk_track_stop(devs->dev[i]);
    pthread_mutex_unlock(&devs->disk_lock);
    return rc;
}

void domain_disk_track_stop(struct domain *d)
{
    struct devices *devs = d->devs;
    if (!devs)
        return;
    pthread_mutex_lock(&devs->disk_lock);
    for (unsigned i = 0; i < devs->n; i++)
        if (is_blk(devs->dev[i]))
            virtio_blk_track_stop(devs->dev[i]);
    pthread_mutex_unlock(&devs->disk_lock);
}

int domain_disk_harvest(struct domain *d, size_t max_bytes,
                        int (*fn)(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len),
                        void *opaque, bool *more, const struct tlog *log)
{
    struct devices *devs = d->devs;
    size_t budget = max_bytes ? max_bytes : SIZE_MAX;
    bool handed = false, left = false;
    int rc = 0;
    if (more)
        *more = false;
    if (!devs)
        return 0;
    pthread_mutex_lock(&devs->disk_lock);
    unsigned disk = 0;
    for (unsigned i = 0; i < devs->n && !rc && !left; i++) {
        if (!is_blk(devs->dev[i]))
            continue;
        rc = virtio_blk_harvest(devs->dev[i], disk++, &budget, &handed, &left, fn, opaque, log);
    }
    pthread_mutex_unlock(&devs->disk_lock);
    if ((rc || left) && more)
        *more = true;            /* stopped early: blocks are left */
    return rc;
}

int domain_disk_write(struct domain *d, unsigned disk, uint64_t offset, const void *data, uint32_t len,
                      const struct tlog *log)
{
    struct virtio_dev *v = disk_dev(d->devs, disk);
    if (!v) {
        tlog_error(log, "disk block for disk %u: the domain has %u disk%s", disk, domain_nr_disks(d),
                   domain_nr_disks(d) == 1 ? "" : "s");
        return -EINVAL;
    }
    return virtio_blk_write_at(v, offset, data, len, log);
}

int domain_disk_sync(struct domain *d, const struct tlog *log)
{
    int first = 0;
    for (unsigned i = 0; d->devs && i < d->devs->n; i++) {
        if (!is_blk(d->devs->dev[i]))
            continue;
        int rc = virtio_blk_sync(d->devs->dev[i], log);
        if (rc && !first)
            first = rc;        /* the others are still synced */
    }
    return first;
}
