/* xl console: the terminal joined to a domain's serial console. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "xl.h"

#define CONSOLE_ESCAPE 0x1d /* Ctrl-], as Xen's console client uses */

int xl_console_attach(struct xl_ctx *ctx, unsigned domid)
{
    int fd = control_connect(&ctx->paths, domid, &ctx->log);
    if (fd < 0)
        return fd;
    char hello[] = "console\n", ack[4];
    if (write(fd, hello, sizeof(hello) - 1) != sizeof(hello) - 1 || read(fd, ack, 3) != 3 ||
        memcmp(ack, "ok\n", 3) != 0) {
        tlog_error(&ctx->log, "domain %u refused the console", domid);
        close(fd);
        return -EIO;
    }
    struct termios saved;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    bool stdin_open = true;
    for (;;) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
        if (poll(p, stdin_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        char buf[4096];
        if (p[0].revents) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                break; /* the domain is gone */
            if (write(STDOUT_FILENO, buf, r) < 0)
                break;
        }
        if (stdin_open && p[1].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0) {
                stdin_open = false; /* keep showing output until the end */
                continue;
            }
            char *esc = tty ? memchr(buf, CONSOLE_ESCAPE, r) : NULL;
            if (esc)
                r = esc - buf;
            if (r > 0 && write(fd, buf, r) < 0)
                break;
            if (esc)
                break;
        }
    }
    if (tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    close(fd);
    return 0;
}

int xl_cmd_console(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("console");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+ht:n:", longopts, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (strcmp(optarg, "serial") != 0) {
                tlog_error(&ctx->log, "console type '%s': Tandem guests have a serial console only", optarg);
                return XL_FAILED;
            }
            break;
        case 'n':
            if (strcmp(optarg, "0") != 0) {
                tlog_error(&ctx->log, "console %s: guests have one console, number 0", optarg);
                return XL_FAILED;
            }
            break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc - optind != 1)
        return xl_usage(cmd, true);
    if (xl_open_host(ctx))
        return XL_FAILED;
    struct registry_entry e;
    if (xl_find_domain(ctx, argv[optind], &e))
        return XL_FAILED;
    return xl_console_attach(ctx, e.domid) ? XL_FAILED : XL_OK;
}
