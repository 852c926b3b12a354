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

static void mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    domain_mark_dirty(opaque, gpa, len);
}

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

int domain_net_buffer_start(struct domain *d, size_t max_bytes)
{
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
