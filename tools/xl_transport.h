/* The transport of xl migrate and xl remus (xl_transport.c). */
#ifndef TANDEM_XL_TRANSPORT_H
#define TANDEM_XL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What Xen's receiver says first, and how long the sender waits for it
 * (ssh's start-up included). */
#define XL_BANNER "xl migration receiver ready, send binary domain data.\n"
#define XL_BANNER_TIMEOUT_MS 60000
/* How long the transport may take to exit once its output has ended. */
#define XL_TRANSPORT_EXIT_WAIT_MS 5000

uint64_t xl_now_usec(void);      /* monotonic */
/* Through EINTR and short writes: 0, or -errno (-EPIPE for 0 written). */
int xl_write_exact(int fd, const void *buf, size_t len);
/* len bytes, each wait for bytes at most timeout_ms: 0, -ETIMEDOUT,
 * -EPIPE (end of file) or -errno; *got (if not NULL) says how many came
 * before an error, which tells "the other end closed without a word"
 * from a cut message. */
int xl_read_exact_count(int fd, void *buf, size_t len, int timeout_ms, size_t *got);
int xl_read_exact(int fd, void *buf, size_t len, int timeout_ms);
/* The words for a transport error from the functions above. */
const char *xl_transport_error(int rc);

/* The receiver's stderr, held back (RELAY_HOLD) until the sender knows
 * what kind of receiver it is, then copied as it comes (LIVE) or dropped. */
enum relay_mode { RELAY_HOLD, RELAY_LIVE, RELAY_DROP };
struct stderr_relay;
void xl_relay_set(struct stderr_relay *r, enum relay_mode mode);

/* The transport: `sh -c rune` with its stdin and stdout as pipes, and its
 * stderr ours, or through a relay that holds it back. */
struct transport {
    const char *rune;
    pid_t pid;
    int send_fd, recv_fd;
    bool reaped;
    int status;                 /* once reaped */
    struct stderr_relay *relay;
};
/* hold_stderr: the receiver's stderr through a relay (starts held);
 * ignore_sigint: the receiver ignores SIGINT, for a sender that turns
 * Ctrl-C into a clean stop the receiver must outlive.  0 or -errno. */
int xl_transport_start(struct transport *t, const char *rune, bool hold_stderr, bool ignore_sigint);
/* True once the transport has exited (within timeout_ms). */
bool xl_transport_wait(struct transport *t, int timeout_ms);
void xl_close_fd(int *fd);
/* Closes our ends, gives the receiver wait_ms to finish, and, with
 * report_failure, says how it ended if that was not well. */
void xl_transport_end(struct transport *t, bool report_failure, int wait_ms);
/* This xl's own path (for -s "": the receiver runs the same build), or "xl". */
const char *xl_self_path(char *buf, size_t len);

#endif
