/* Tandem's logger: libraries never print or exit; they report through the
 * logger their caller hands them.  A NULL logger, or one with no function,
 * discards messages. */
#ifndef TANDEM_LOG_H
#define TANDEM_LOG_H

#include <stdarg.h>

enum tlog_level { TLOG_DEBUG, TLOG_INFO, TLOG_WARN, TLOG_ERROR };

struct tlog {
    void (*fn)(void *opaque, enum tlog_level level, const char *msg);
    void *opaque;
    enum tlog_level min_level;   /* messages below this are dropped */
};

void tlog(const struct tlog *log, enum tlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tlogv(const struct tlog *log, enum tlog_level level, const char *fmt, va_list ap);

#define tlog_error(l, ...) tlog((l), TLOG_ERROR, __VA_ARGS__)
#define tlog_warn(l, ...)  tlog((l), TLOG_WARN, __VA_ARGS__)
#define tlog_info(l, ...)  tlog((l), TLOG_INFO, __VA_ARGS__)
#define tlog_debug(l, ...) tlog((l), TLOG_DEBUG, __VA_ARGS__)

/* A logger that keeps the last error message in a caller's buffer; useful
 * in tests and wherever an error must be carried further as text. */
struct tlog_buffer {
    struct tlog log;
    char last[512];
};
void tlog_buffer_init(struct tlog_buffer *b);

#endif
