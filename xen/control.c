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

/* Sends "cmd\n" in one message, with fds[0..nfds) attached. */
static int send_command(int sock, const char *cmd, const int *fds, unsigned nfds)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s\n", cmd);
    if (n >= (int)sizeof(line))
        return -E2BIG;
    if (nfds > CONTROL_MAX_FDS)
        return -EINVAL;
    struct iovec iov = { .iov_base = line, .iov_len = (size_t)n };
    union {
        char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == n ? 0 : -errno;
}

int control_command(const struct host_paths *p, unsigned domid, const char *cmd, char *reply,
                    size_t reply_len, const struct tlog *log)
{
    return control_command_fd(p, domid, cmd, -1, reply, reply_len, log);
}

int control_command_fd(const struct host_paths *p, unsigned domid, const char *cmd, int pass_fd,
                       char *reply, size_t reply_len, const struct tlog *log)
{
    return control_command_progress(p, domid, cmd, pass_fd, NULL, NULL, reply, reply_len, log);
}

int control_command_progress(const struct host_paths *p, unsigned domid, const char *cmd, int pass_fd,
                             void (*on_progress)(void *opaque, const char *line), void *opaque,
                             char *reply, size_t reply_len, const struct tlog *log)
{
    return control_command_fds(p, domid, cmd, &pass_fd, pass_fd >= 0 ? 1 : 0, on_progress, opaque, reply,
                               reply_len, log);
}

int control_send_fds(const struct host_paths *p, unsigned domid, const char *cmd, const int *fds, unsigned nfds,
                     const struct tlog *log)
{
    int fd = control_connect(p, domid, log);
    if (fd < 0)
        return fd;
    int rc = send_command(fd, cmd, fds, nfds);
    if (rc) {
        tlog_error(log, "cannot send '%s' to domain %u: %s", cmd, domid, strerror(-rc));
        close(fd);
        return rc;
    }
    return fd;
}

int control_command_fds(const struct host_paths *p, unsigned domid, const char *cmd, const int *fds,
                        unsigned nfds, void (*on_progress)(void *opaque, const char *line), void *opaque,
                        char *reply, size_t reply_len, const struct tlog *log)
{
    int fd = control_send_fds(p, domid, cmd, fds, nfds, log);
    if (fd < 0)
        return fd;
    /* A save of a large guest takes a while; the timeout only guards
     * against a wedged process. */
    return control_wait_reply(fd, domid, cmd, nfds ? -1 : CONTROL_REPLY_TIMEOUT_MS, on_progress, opaque, reply,
                              reply_len, log);
}

int control_wait_reply(int fd, unsigned domid, const char *cmd, int timeout_ms,
                       void (*on_progress)(void *opaque, const char *line), void *opaque, char *reply,
                       size_t reply_len, const struct tlog *log)
{
    char line[4096];
    int rc;
    for (;;) {
        rc = read_line(fd, line, sizeof(line), timeout_ms);
        if (rc || strncmp(line, "progress ", 9) != 0)
            break;
        if (on_progress)
            on_progress(opaque, line + 9);
    }
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
