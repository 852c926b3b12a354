/* A domain's virtio devices: built from its config, placed as the virtio
 * contract says, paused and resumed with its vCPUs, and reached from
 * their MMIO exits. */
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

int devices_create(struct domain *d, unsigned domid, bool for_restore)
{
    const struct domain_config *c = &d->cfg;
    if (c->nr_vifs > DOMAIN_MAX_VIFS || c->nr_disks > DOMAIN_MAX_DISKS ||
        c->nr_vifs + c->nr_disks > VIRTIO_MMIO_MAX_DEVICES) {
        tlog_error(d->log, "%u vifs and %u disks: at most %d vifs, %d disks and %d devices in all", c->nr_vifs,
                   c->nr_disks, DOMAIN_MAX_VIFS, DOMAIN_MAX_DISKS, VIRTIO_MMIO_MAX_DEVICES);
        return -EINVAL;
    }
    struct devices *devs = calloc(1, sizeof(*devs));
    if (!devs)
        return -ENOMEM;
    d->devs = devs;
    struct virtio_env env = { .mem = &d->mem, .log = d->log, .vm_fd = d->vm_fd, .mark_dirty = mark_dirty,
                              .opaque = d };
    int rc = 0;
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
