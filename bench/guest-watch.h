/* What the bench programs that build domains in-process (xen/'s
 * domain_create) need from the test guest's console, and their clocks.
 * Shared by logdirty-cost and dirty-ring-check only: tests/unit keeps its
 * own copy, so that tests do not depend on bench/. */
#ifndef BENCH_GUEST_WATCH_H
#define BENCH_GUEST_WATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "domain.h"          /* xen/, internal: enum domain_end */
#include "tandem/log.h"

/* The guest's console as status lines.  The callbacks run on vCPU threads
 * (and the domain's end on its own), hence the lock around every field. */
struct guest_watch {
    pthread_mutex_t lock;
    char line[1024];
    size_t len;
    unsigned long long seq, dirty_rate, boot_mem_mb;
    bool warnings;                  /* a "TANDEM-GUEST warning" counts as a problem */
    char problem[1024];             /* a panic, (warning) or the domain's end */
};

void guest_watch_init(struct guest_watch *w, bool warnings);
void guest_watch_destroy(struct guest_watch *w);
/* domain_create's on_console and on_end, with the watch as opaque. */
void guest_watch_console(void *opaque, uint8_t byte);
void guest_watch_end(void *opaque, enum domain_end end, const char *reason);
/* Until the guest has printed status line `seq`: 0; -EIO if it panicked or
 * the domain ended, -ETIMEDOUT after `seconds`; the reason in `why` (may be
 * NULL).  A warning does not end the wait. */
int guest_watch_wait_seq(struct guest_watch *w, unsigned long long seq, int seconds,
                         char *why, size_t len);

/* A tlog fn: "PROGRAM: [error: ]message" on stderr, PROGRAM the opaque
 * (a char array). */
void bench_log_stderr(void *opaque, enum tlog_level level, const char *msg);

int64_t bench_now_ns(void);                 /* CLOCK_MONOTONIC */
void bench_sleep_ms(unsigned ms);           /* the whole time, across signals */
void bench_sleep_until(int64_t t_ns);       /* an absolute bench_now_ns() time */

#endif
