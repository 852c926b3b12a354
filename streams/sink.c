/* The output sink: a buffer in front of an fd, so that the many small
 * fields of a record cost one write(2), not one each. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tandem/streams.h"
#include "stream_impl.h"

/* Big enough for a dozen pages per write(2); a pipe takes 64 KiB at once. */
#define SINK_BUFFER (256u * 1024u)

struct stream_sink {
    int fd;
    const struct tlog *log;
    uint8_t *buf;
    size_t used;
    uint64_t offset;            /* bytes accepted, buffered ones included */
    int error;                  /* sticky: a stream with a hole is garbage */
    uint8_t *scratch;           /* the lz4 writer's buffers, made on first use */
};

int stream_sink_new(int fd, const struct tlog *log, struct stream_sink **out)
{
    struct stream_sink *s;

    *out = NULL;
    if (fd < 0) {
        tlog_error(log, "stream sink: invalid fd %d", fd);
        return -EBADF;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->buf = malloc(SINK_BUFFER))) {
        free(s);
        tlog_error(log, "stream sink: out of memory");
        return -ENOMEM;
    }
    s->fd = fd;
    s->log = log;
    *out = s;
    return 0;
}

void stream_sink_free(struct stream_sink *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s->scratch);
    free(s);
}

uint64_t stream_sink_offset(const struct stream_sink *s)
{
    return s->offset;
}

/* Writes all of buf to the fd, through EINTR and short writes. */
static int write_all(struct stream_sink *s, const uint8_t *buf, size_t len)
{
    uint64_t at = s->offset - s->used;   /* stream offset of buf[0] when flushing */

    while (len) {
        ssize_t n = write(s->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s->error = -errno;
            tlog_error(s->log, "stream write at offset 0x%llx: %s",
                       (unsigned long long)at, strerror(errno));
            return s->error;
        }
        if (n == 0) {
            s->error = -EIO;
            tlog_error(s->log, "stream write at offset 0x%llx: write returned 0",
                       (unsigned long long)at);
            return s->error;
        }
        buf += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return 0;
}

int stream_sink_flush(struct stream_sink *s)
{
    int r;

    if (s->error)
        return s->error;
    if (!s->used)
        return 0;
    r = write_all(s, s->buf, s->used);
    if (r == 0)
        s->used = 0;
    return r;
}

int stream_sink_write(struct stream_sink *s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int r;

    if (s->error)
        return s->error;
    if (len > SINK_BUFFER - s->used) {
        r = stream_sink_flush(s);
        if (r)
            return r;
    }
    if (len >= SINK_BUFFER) {
        /* Large pieces go straight out rather than through the buffer. */
        r = write_all(s, p, len);
        if (r)
            return r;
        s->offset += len;
        return 0;
    }
    memcpy(s->buf + s->used, p, len);
    s->used += len;
    s->offset += len;
    return 0;
}

int stream_sink_sync(struct stream_sink *s)
{
    struct stat st;
    int r = stream_sink_flush(s);

    if (r)
        return r;
    /* Only files keep data worth syncing; fsync fails on pipes. */
    if (fstat(s->fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return 0;
    if (fsync(s->fd) < 0) {
        s->error = -errno;
        tlog_error(s->log, "stream fsync at offset 0x%llx: %s",
                   (unsigned long long)s->offset, strerror(errno));
        return s->error;
    }
    return 0;
}

uint8_t *stream_sink_scratch(struct stream_sink *s)
{
    if (!s->scratch)
        s->scratch = malloc(STREAM_SINK_SCRATCH);
    return s->scratch;
}

const struct tlog *stream_sink_log(const struct stream_sink *s)
{
    return s->log;
}
