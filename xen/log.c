#include "config.h"
#include <stdio.h>
#include <string.h>
#include "tandem/log.h"

void tlogv(const struct tlog *log, enum tlog_level level, const char *fmt, va_list ap)
{
    char msg[1024];

    if (!log || !log->fn || level < log->min_level)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log->fn(log->opaque, level, msg);
}

void tlog(const struct tlog *log, enum tlog_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tlogv(log, level, fmt, ap);
    va_end(ap);
}

static void tlog_buffer_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct tlog_buffer *b = opaque;

    if (level >= TLOG_WARN)
        snprintf(b->last, sizeof(b->last), "%s", msg);
}

void tlog_buffer_init(struct tlog_buffer *b)
{
    memset(b, 0, sizeof(*b));
    b->log.fn = tlog_buffer_fn;
    b->log.opaque = b;
    b->log.min_level = TLOG_WARN;
}
