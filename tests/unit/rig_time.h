/* Time for unit tests: sleeps that survive signals, and a clock for
 * timeouts and measured intervals.  Inline, so any test can have them
 * without linking a rig. */
#ifndef TANDEM_TESTS_RIG_TIME_H
#define TANDEM_TESTS_RIG_TIME_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

/* Sleeps the whole ms even when a signal interrupts it. */
static inline void rig_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Monotonic milliseconds: for deadlines and gaps, never wall time. */
static inline uint64_t rig_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
