/* Console watcher and clocks for the in-process bench programs (see
 * guest-watch.h). */
#include "config.h"
#include "guest-watch.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void guest_watch_init(struct guest_watch *w, bool warnings)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    w->warnings = warnings;
}

void guest_watch_destroy(struct guest_watch *w)
{
    pthread_mutex_destroy(&w->lock);
}

/* Called with the line complete and the lock held. */
static void parse_line(struct guest_watch *w)
{
    const char *p;
    if (strncmp(w->line, "TANDEM-GUEST seq=", 17) == 0) {
        w->seq = strtoull(w->line + 17, NULL, 10);
        if ((p = strstr(w->line, " dirty_rate=")))
            w->dirty_rate = strtoull(p + 12, NULL, 10);
    } else if (strncmp(w->line, "TANDEM-GUEST boot ", 18) == 0) {
        if ((p = strstr(w->line, " mem_mb=")))
            w->boot_mem_mb = strtoull(p + 8, NULL, 10);
    } else if (strncmp(w->line, "TANDEM-GUEST panic", 18) == 0 ||
               (w->warnings && strncmp(w->line, "TANDEM-GUEST warning", 20) == 0)) {
        /* The first problem is the one worth reading: later ones follow from it. */
        if (!w->problem[0])
            snprintf(w->problem, sizeof(w->problem), "%s", w->line + 13);
    }
}

void guest_watch_console(void *opaque, uint8_t byte)
{
    struct guest_watch *w = opaque;
    pthread_mutex_lock(&w->lock);
    if (byte != '\n') {
        if (w->len < sizeof(w->line) - 1)
            w->line[w->len++] = (char)byte;
    } else {
        w->line[w->len] = '\0';
        w->len = 0;
        parse_line(w);
    }
    pthread_mutex_unlock(&w->lock);
}

void guest_watch_end(void *opaque, enum domain_end end, const char *reason)
{
    struct guest_watch *w = opaque;
    (void)end;
    pthread_mutex_lock(&w->lock);
    snprintf(w->problem, sizeof(w->problem), "the domain ended: %s", reason);
    pthread_mutex_unlock(&w->lock);
}

int guest_watch_wait_seq(struct guest_watch *w, unsigned long long seq, int seconds,
                         char *why, size_t len)
{
    int64_t end = bench_now_ns() + seconds * 1000000000LL;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool done = w->seq >= seq, bad = strncmp(w->problem, "the domain ended", 16) == 0 ||
                                         strncmp(w->problem, "panic", 5) == 0;
        if (bad && why)
            snprintf(why, len, "%s", w->problem);
        pthread_mutex_unlock(&w->lock);
        if (bad)
            return -EIO;
        if (done)
            return 0;
        if (bench_now_ns() > end) {
            if (why)
                snprintf(why, len, "no status line seq=%llu within %d s", seq, seconds);
            return -ETIMEDOUT;
        }
        usleep(20000);
    }
}

void bench_log_stderr(void *opaque, enum tlog_level level, const char *msg)
{
    fprintf(stderr, "%s: %s%s\n", (const char *)opaque, level >= TLOG_ERROR ? "error: " : "", msg);
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void bench_sleep_until(int64_t t_ns)
{
    struct timespec ts = { .tv_sec = t_ns / 1000000000LL, .tv_nsec = t_ns % 1000000000LL };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
