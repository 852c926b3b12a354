/* The transport of xl migrate and xl remus, as in Xen's xl: the receiver
 * runs as `sh -c <rune>` (ssh host xl migrate-receive ..., or a command
 * prefix with -s ""), its stdin and stdout our pipes; exact reads and
 * writes on them with timeouts; the banner it starts with. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "xl_transport.h"

uint64_t xl_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int xl_write_exact(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads len bytes; *got (if not NULL) says how many came before an error,
 * which tells "the other end closed without a word" from a cut message. */
int xl_read_exact_count(int fd, void *buf, size_t len, int timeout_ms, size_t *got)
{
    char *p = buf;
    size_t want = len;
    if (got)
        *got = 0;
    while (len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0)
            return -errno;
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EPIPE;
        p += r;
        len -= (size_t)r;
        if (got)
            *got = want - len;
    }
    return 0;
}

int xl_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    return xl_read_exact_count(fd, buf, len, timeout_ms, NULL);
}

const char *xl_transport_error(int rc)
{
    return rc == -EPIPE ? "the other end closed the connection" : rc == -ETIMEDOUT ? "timed out" : strerror(-rc);
}

/* The receiver's stderr during the first attempt.  Its text is held back
 * until we know what kind of receiver it is: a receiver that does not know
 * --negotiate prints its usage and exits 2, and that noise is no use to
 * the user, who gets a one-line explanation and a retry instead.  Once the
 * banner has come, the held text and all that follows go to our stderr as
 * they come (a thread copies them: the main thread is busy sending the
 * domain while the receiver reports its progress). */

struct stderr_relay {
    int fd;                     /* read end of the receiver's stderr */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ended_cond;
    bool ended;                 /* the pipe reached its end */
    enum relay_mode mode;
    size_t held_len;
    char held[16384];
};

static void *relay_run(void *opaque)
{
    struct stderr_relay *r = opaque;
    char buf[4096];
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pthread_mutex_lock(&r->lock);
        /* More than any usage message: it is something to read after all. */
        if (r->mode == RELAY_HOLD && r->held_len + (size_t)n > sizeof(r->held)) {
            xl_write_exact(STDERR_FILENO, r->held, r->held_len);
            r->held_len = 0;
            r->mode = RELAY_LIVE;
        }
        if (r->mode == RELAY_HOLD) {
            memcpy(r->held + r->held_len, buf, (size_t)n);
            r->held_len += (size_t)n;
        } else if (r->mode == RELAY_LIVE) {
            xl_write_exact(STDERR_FILENO, buf, (size_t)n);
        }
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    r->ended = true;
    pthread_cond_broadcast(&r->ended_cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static struct stderr_relay *relay_start(int fd)
{
    struct stderr_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->fd = fd;
    r->mode = RELAY_HOLD;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->ended_cond, NULL);
    /* Signals stay the main thread's business: the relay starts with all
     * of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, relay_run, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->ended_cond);
        free(r);
        return NULL;
    }
    return r;
}

/* Live: the held text now, the rest as it comes.  Drop: none of it. */
void xl_relay_set(struct stderr_relay *r, enum relay_mode mode)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->mode == RELAY_HOLD) {
        if (mode == RELAY_LIVE)
            xl_write_exact(STDERR_FILENO, r->held, r->held_len);
        r->held_len = 0;
        r->mode = mode;
    } else if (r->mode == RELAY_LIVE) {
        r->mode = mode;
    }
    pthread_mutex_unlock(&r->lock);
}

/* Waits a moment for the receiver's last words, then lets go of the relay. */
static void relay_finish(struct stderr_relay *r, int timeout_ms)
{
    if (!r)
        return;
    xl_relay_set(r, RELAY_LIVE);   /* unless dropped: what it held, it says now */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->ended && pthread_cond_timedwait(&r->ended_cond, &r->lock, &until) == 0)
        ;
    bool ended = r->ended;
    pthread_mutex_unlock(&r->lock);
    if (!ended) {
        /* Something on the far side still holds the pipe open: leave the
         * thread copying until xl exits, and its memory to it. */
        pthread_detach(r->thread);
        return;
    }
    pthread_join(r->thread, NULL);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->ended_cond);
    free(r);
}


int xl_transport_start(struct transport *t, const char *rune, bool hold_stderr, bool ignore_sigint)
{
    int to_child[2], from_child[2], err[2] = { -1, -1 };
    *t = (struct transport){ .rune = rune, .pid = -1, .send_fd = -1, .recv_fd = -1 };
    if (pipe2(to_child, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(from_child, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(to_child[0]);
        close(to_child[1]);
        return rc;
    }
    if (hold_stderr && pipe2(err, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        return rc;
    }
    /* The relay reads before the receiver can write: without it (no
     * thread) the receiver's stderr is simply ours, as it always was. */
    if (hold_stderr && !(t->relay = relay_start(err[0]))) {
        close(err[0]);
        close(err[1]);
        hold_stderr = false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (ignore_sigint)
            signal(SIGINT, SIG_IGN);
        dup2(to_child[0], STDIN_FILENO);
        dup2(from_child[1], STDOUT_FILENO);
        if (hold_stderr)
            dup2(err[1], STDERR_FILENO);
        execlp("sh", "sh", "-c", rune, (char *)NULL);
        fprintf(stderr, "xl: cannot run sh : %s\n", strerror(errno));
        _exit(127);
    }
    int rc = pid < 0 ? -errno : 0;
    close(to_child[0]);
    close(from_child[1]);
    if (hold_stderr)
        close(err[1]);
    if (pid < 0) {
        close(to_child[1]);
        close(from_child[0]);
        relay_finish(t->relay, 1000);   /* its pipe has no writer left: it ends */
        t->relay = NULL;
        return rc;
    }
    t->pid = pid;
    t->send_fd = to_child[1];
    t->recv_fd = from_child[0];
    return 0;
}

/* True once the transport has exited (within timeout_ms). */
bool xl_transport_wait(struct transport *t, int timeout_ms)
{
    for (int waited = 0; !t->reaped && t->pid > 0; waited += 10) {
        pid_t r = waitpid(t->pid, &t->status, WNOHANG);
        if (r == t->pid || (r < 0 && errno == ECHILD)) {
            t->reaped = true;
            break;
        }
        if (waited >= timeout_ms)
            break;
        usleep(10000);
    }
    return t->reaped;
}

void xl_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Closes our ends, gives the receiver a moment to finish, and says how it
 * ended if that was not well. */
void xl_transport_end(struct transport *t, bool report_failure, int wait_ms)
{
    xl_close_fd(&t->send_fd);
    xl_close_fd(&t->recv_fd);
    if (xl_transport_wait(t, wait_ms) && report_failure) {
        if (WIFEXITED(t->status) && WEXITSTATUS(t->status))
            fprintf(stderr, "migration receiver (%s) exited with status %d\n", t->rune, WEXITSTATUS(t->status));
        else if (WIFSIGNALED(t->status))
            fprintf(stderr, "migration receiver (%s) died of signal %d\n", t->rune, WTERMSIG(t->status));
    }
    relay_finish(t->relay, 1000);
    t->relay = NULL;
}

const char *xl_self_path(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0)
        return "xl";
    buf[n] = '\0';
    return buf;
}
