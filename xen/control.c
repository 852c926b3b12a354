/* Client side of a domain process's control socket. */
#include "config.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "tandem/xen.h"

#define CONTROL_REPLY_TIMEOUT_MS 30000

int control_connect(const struct host_paths *p, unsigned domid, const struct tlog *log)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    host_paths_domain_socket(p, domid, sa.sun_path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        tlog_error(log, "cannot reach domain %u's process at %s: %s", domid, sa.sun_path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

/* Reads one '\n'-terminated line (without it) into buf. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t r = read(fd, buf + n, 1);
        if (r == 0)
            return -ECONNRESET;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -E2BIG;
}

int control_command(const struct host_paths *p, unsigned domid, const char *cmd, char *reply,
                    size_t reply_len, const struct tlog *log)
{
    char line[1024];
    int fd = control_connect(p, domid, log);
    if (fd < 0)
        return fd;
    size_t len = strlen(cmd);
    if (write(fd, cmd, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        int err = -errno;
        close(fd);
        return err;
    }
    int rc = read_line(fd, line, sizeof(line), CONTROL_REPLY_TIMEOUT_MS);
    close(fd);
    if (rc) {
        tlog_error(log, "domain %u did not answer '%s': %s", domid, cmd, strerror(-rc));
        return rc;
    }
    if (strncmp(line, "ok", 2) == 0 && (line[2] == '\0' || line[2] == ' ')) {
        if (reply)
            snprintf(reply, reply_len, "%s", line[2] ? line + 3 : "");
        return 0;
    }
    int err = EIO;
    const char *text = line;
    if (strncmp(line, "error ", 6) == 0) {
        char *end;
        err = (int)strtol(line + 6, &end, 10);
        text = *end == ' ' ? end + 1 : end;
        if (err <= 0)
            err = EIO;
    }
    tlog_error(log, "%s", text);
    return -err;
}
