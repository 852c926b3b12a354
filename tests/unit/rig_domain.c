/* Test rig for real KVM domains (rig_domain.h says what each is for). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "rig_domain.h"

char rig_guest_kernel[4096];

void rig_find_guest_kernel(const char *prog)
{
    const char *k = getenv("TANDEM_GUEST_KERNEL");
    snprintf(rig_guest_kernel, sizeof(rig_guest_kernel), "%s", k && *k ? k : "../guests/tandem-guest");
    if (access(rig_guest_kernel, R_OK) != 0)
        fprintf(stderr, "%s: the test guest %s is missing (%s); build it or set "
                        "TANDEM_GUEST_KERNEL — every test that boots it will fail\n", prog, rig_guest_kernel,
                strerror(errno));
}

bool rig_have_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

void rig_require_kvm(const char *prog)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s): %s needs KVM and was NOT run\n", strerror(errno), prog);
        printf("SKIP: no /dev/kvm\n");
        fflush(stdout);
        exit(77);
    }
    close(fd);
}

struct rig_console *rig_console_new(void)
{
    struct rig_console *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void rig_on_console(void *opaque, uint8_t byte)
{
    struct rig_console *c = opaque;
    pthread_mutex_lock(&c->lock);
    if (c->len < sizeof(c->buf) - 1)
        c->buf[c->len++] = (char)byte;
    c->buf[c->len] = 0;
    pthread_mutex_unlock(&c->lock);
}

void rig_on_end(void *opaque, enum domain_end end, const char *reason)
{
    struct rig_console *c = opaque;
    (void)end;
    pthread_mutex_lock(&c->lock);
    snprintf(c->end_reason, sizeof(c->end_reason), "%s", reason);
    pthread_mutex_unlock(&c->lock);
}

void rig_ignore_console(void *opaque, uint8_t byte)
{
    (void)opaque;
    (void)byte;
}

void rig_ignore_end(void *opaque, enum domain_end end, const char *reason)
{
    (void)opaque;
    (void)end;
    (void)reason;
}

char *rig_console_lines(struct rig_console *c, size_t from)
{
    pthread_mutex_lock(&c->lock);
    char *copy = strndup(c->buf + from, c->len - from);
    pthread_mutex_unlock(&c->lock);
    ck_assert_ptr_nonnull(copy);
    char *last_nl = strrchr(copy, '\n');
    if (last_nl)
        last_nl[1] = 0;
    else
        copy[0] = 0;
    return copy;
}

bool rig_kv(const char *line, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += kl)
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            *out = strtoull(p + kl + 1, NULL, 10);
            return true;
        }
    return false;
}

void rig_config(struct domain_config *cfg, const char *name, unsigned vcpus, const char *cmdline)
{
    domain_config_init(cfg);
    snprintf(cfg->name, sizeof(cfg->name), "%s", name);
    cfg->memory_mb = RIG_GUEST_MB;
    cfg->vcpus = vcpus;
    snprintf(cfg->kernel, sizeof(cfg->kernel), "%s", rig_guest_kernel);
    if (cmdline)
        snprintf(cfg->cmdline, sizeof(cfg->cmdline), "%s", cmdline);
}

void rig_config_disk(struct domain_config *cfg, const char *target, const char *vdev)
{
    ck_assert_uint_lt(cfg->nr_disks, DOMAIN_MAX_DISKS);
    struct domain_disk *k = &cfg->disks[cfg->nr_disks++];
    snprintf(k->target, sizeof(k->target), "%s", target);
    snprintf(k->vdev, sizeof(k->vdev), "%s", vdev);
}

struct domain *rig_make_domain(const char *name, unsigned vcpus, bool for_restore, const char *cmdline,
                               const char *disk, struct rig_console *con, const struct tlog *log)
{
    struct domain_config cfg;
    rig_config(&cfg, name, vcpus, cmdline);
    if (disk)
        rig_config_disk(&cfg, disk, "xvda");
    struct domain *d = NULL;
    int rc = domain_create(&d, &cfg, for_restore, NULL, rig_on_end, rig_on_console, con, log);
    ck_assert_msg(rc == 0, "domain_create(%s): %s", name, strerror(-rc));
    ck_assert_int_eq(domain_start_vcpus(d), 0);
    return d;
}

void rig_make_image(char *path, size_t len, uint64_t bytes, bool sparse)
{
    snprintf(path, len, "/tmp/tandem-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    if (sparse) {
        ck_assert_int_eq(ftruncate(fd, (off_t)bytes), 0);
    } else {
        uint8_t buf[4096];
        for (uint64_t off = 0; off < bytes; off += sizeof(buf)) {
            size_t n = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)((off + i) / 512 + 0x40);
            ck_assert_int_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
        }
    }
    close(fd);
}
