#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "tandem/xen.h"

static int mkdir_p(const char *path, const struct tlog *log)
{
    char tmp[600];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:;
    int err = errno;
    tlog_error(log, "cannot create %s: %s", tmp, strerror(err));
    return -err;
}

int host_paths_init(struct host_paths *p, const char *state_dir, const struct tlog *log)
{
    static const char *const subdirs[] = { "domains", "run", "console", "log" };

    if (!state_dir || !state_dir[0])
        state_dir = "/var/lib/tandem";
    /* Control sockets live below it and sun_path holds 108 bytes. */
    if (strlen(state_dir) > 80) {
        tlog_error(log, "state directory %s: path longer than 80 characters", state_dir);
        return -ENAMETOOLONG;
    }
    snprintf(p->state_dir, sizeof(p->state_dir), "%s", state_dir);
    for (unsigned i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/%s", state_dir, subdirs[i]);
        int rc = mkdir_p(dir, log);
        if (rc)
            return rc;
    }
    return 0;
}

void host_paths_domain_socket(const struct host_paths *p, unsigned domid, char *buf, size_t len)
{
    snprintf(buf, len, "%s/run/dom%u.sock", p->state_dir, domid);
}

void host_paths_console_log(const struct host_paths *p, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/console/%s.log", p->state_dir, name);
}

void host_paths_domain_log(const struct host_paths *p, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/log/xl-%s.log", p->state_dir, name);
}
