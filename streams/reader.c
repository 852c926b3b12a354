/* The strict reader.  It reads exactly the bytes of one header or record
 * at a time (never ahead: what follows the stream on the fd belongs to
 * someone else), checks every length against a bound before it reads or
 * allocates, and checks each record's body, padding and place in the
 * stream before handing it out.  It fails on the first fault, naming the
 * record and its offset. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <lz4.h>

#include "tandem/streams.h"
#include "stream_impl.h"

enum rstate {
    RS_XL_HEADER,
    RS_LIBXL_HEADER,
    RS_LIBXL_RECORDS,
    RS_LIBXC_HEADER,
    RS_LIBXC_RECORDS,
    RS_DONE,
};

struct stream_reader {
    int fd;                          /* -1: reading mem */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    struct stream_reader_opts o;
    uint64_t offset;                 /* bytes consumed */
    int error;                       /* sticky */
    enum rstate state;

    uint8_t *buf;                    /* the current body, padding and all */
    size_t cap;
    uint8_t *pages;                  /* TANDEM_PAGE_DATA_LZ4's data, decompressed */
    size_t pages_cap;

    bool have_xl, have_libxc;
    struct stream_xl_header xl;
    char *xl_config;                 /* a copy that outlives the record */
    struct stream_libxc_header xc;

    /* libxc image */
    bool embedded;                   /* inside a libxl stream */
    bool static_end;                 /* STATIC_DATA_END seen or inferred */
    bool seen_cpuid, seen_msr, seen_verify;
    bool epoch_params, epoch_context;   /* since the image's start or last CHECKPOINT */
    uint64_t context_offset;

    /* libxl stream */
    bool libxc_seen;                 /* LIBXC_CONTEXT */
    bool in_checkpoint;              /* between libxc CHECKPOINT and CHECKPOINT_END */
    bool want_state;                 /* COLO: CHECKPOINT_STATE must come next */
    uint64_t checkpoints_done;       /* CHECKPOINT_ENDs read */
    bool after_checkpoint_end;       /* nothing read since the last CHECKPOINT_END */

    /* A record header read but not yet handed out: the record after an
     * inferred STATIC_DATA_END. */
    bool pending;
    uint32_t pending_type, pending_len;
    uint64_t pending_offset;

    char what[64];                   /* "libxc PAGE_DATA", for messages */
};

/* ---- Errors ---------------------------------------------------------------- */

static const char *describe(struct stream_reader *r, enum stream_layer layer, uint32_t type)
{
    const char *name = stream_record_name(layer, type);

    if (name)
        snprintf(r->what, sizeof(r->what), "%s %s", stream_layer_name(layer), name);
    else
        snprintf(r->what, sizeof(r->what), "%s record type 0x%x", stream_layer_name(layer), type);
    return r->what;
}

/* Logs "<what> at offset 0x..: <why>", makes the error sticky, returns it. */
__attribute__((format(printf, 5, 6)))
static int fail(struct stream_reader *r, int err, const char *what, uint64_t offset,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlog_error(r->o.log, "%s at offset 0x%llx: %s", what, (unsigned long long)offset, msg);
    r->error = err;
    return err;
}

/* ---- Input --------------------------------------------------------------- */

/* Reads exactly len bytes; *got says how many came before an end of
 * stream (-EPIPE) or an error. */
static int read_exact(struct stream_reader *r, void *buf, size_t len, size_t *got)
{
    uint8_t *p = buf;

    *got = 0;
    if (r->fd < 0) {
        size_t n = r->mem_len - r->mem_pos;
        if (n > len)
            n = len;
        if (n)                       /* mem may be NULL when empty */
            memcpy(p, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->offset += n;
        *got = n;
        return n == len ? 0 : -EPIPE;
    }
    while (*got < len) {
        if (r->o.timeout_ms) {
            struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
            int pr = poll(&pfd, 1, (int)r->o.timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return -errno;
            if (pr == 0)
                return -ETIMEDOUT;
        }
        ssize_t n = read(r->fd, p + *got, len - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        *got += (size_t)n;
        r->offset += (uint64_t)n;
    }
    return 0;
}

/* Reads part of what starts at offset `start` (a header or record), with a
 * message naming it if the bytes do not come. */
static int read_part(struct stream_reader *r, void *buf, size_t len, const char *what,
                     uint64_t start, const char *part)
{
    size_t got;
    uint64_t at = r->offset;
    int e = read_exact(r, buf, len, &got);

    if (e == -EPIPE)
        return fail(r, e, what, start, "stream ends at offset 0x%llx, %zu bytes into its "
                    "%zu-byte %s", (unsigned long long)(at + got), got, len, part);
    if (e)
        return fail(r, e, what, start, "reading its %s: %s", part, strerror(-e));
    return 0;
}

static int grow(struct stream_reader *r, size_t need, const char *what, uint64_t start)
{
    uint8_t *nb;

    if (need <= r->cap)
        return 0;
    nb = realloc(r->buf, need);
    if (!nb)
        return fail(r, -ENOMEM, what, start, "out of memory for %zu bytes", need);
    r->buf = nb;
    r->cap = need;
    return 0;
}

/* Reads a record's body and padding into r->buf (len was checked against
 * the type's bound by the caller) and insists the padding is zero. */
static int read_body(struct stream_reader *r, uint32_t len, const char *what, uint64_t start)
{
    size_t total = (size_t)len + stream_pad(len);
    int e = grow(r, total ? total : 1, what, start);

    if (e)
        return e;
    e = read_part(r, r->buf, total, what, start, "body and padding");
    if (e)
        return e;
    for (size_t i = len; i < total; i++)
        if (r->buf[i])
            return fail(r, -EINVAL, what, start, "padding byte at offset 0x%llx is 0x%02x, "
                        "not zero", (unsigned long long)(start + 8 + i), r->buf[i]);
    return 0;
}

/* Skips an optional record without keeping it: it is read in slices, so
 * its size costs no memory. */
static int skip_body(struct stream_reader *r, uint32_t len, const char *what, uint64_t start)
{
    uint64_t left = (uint64_t)len + stream_pad(len);
    const size_t slice = 64 * 1024;
    int e = grow(r, slice, what, start);

    while (!e && left) {
        size_t n = left < slice ? (size_t)left : slice;
        e = read_part(r, r->buf, n, what, start, "body");
        left -= n;
        /* The last slice (a multiple of 8 bytes, as the record and the
         * slices are) ends with the padding, which must be zero. */
        if (!e && !left)
            for (size_t i = n - stream_pad(len); i < n; i++)
                if (r->buf[i])
                    return fail(r, -EINVAL, what, start, "padding byte 0x%02x is not zero",
                                r->buf[i]);
    }
    return e;
}

/* ---- Construction ------------------------------------------------------- */

static int reader_new(int fd, const void *mem, size_t len, const struct stream_reader_opts *o,
                      struct stream_reader **out)
{
    struct stream_reader *r;

    *out = NULL;
    if (o->start > STREAM_LAYER_LIBXC || o->checkpoints > STREAM_COLO) {
        tlog_error(o->log, "stream reader: bad options");
        return -EINVAL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        tlog_error(o->log, "stream reader: out of memory");
        return -ENOMEM;
    }
    r->fd = fd;
    r->mem = mem;
    r->mem_len = len;
    r->o = *o;
    r->state = o->start == STREAM_LAYER_XL ? RS_XL_HEADER
             : o->start == STREAM_LAYER_LIBXL ? RS_LIBXL_HEADER : RS_LIBXC_HEADER;
    *out = r;
    return 0;
}

int stream_reader_new(int fd, const struct stream_reader_opts *o, struct stream_reader **out)
{
    if (fd < 0) {
        *out = NULL;
        tlog_error(o->log, "stream reader: invalid fd %d", fd);
        return -EBADF;
    }
    return reader_new(fd, NULL, 0, o, out);
}

int stream_reader_new_mem(const void *buf, size_t len, const struct stream_reader_opts *o,
                          struct stream_reader **out)
{
    return reader_new(-1, buf, len, o, out);
}

void stream_reader_free(struct stream_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r->pages);
    free(r->xl_config);
    free(r);
}

void stream_reader_set_max_pfn(struct stream_reader *r, uint64_t max_pfn)
{
    r->o.max_pfn = max_pfn;
}

void stream_reader_set_timeout(struct stream_reader *r, unsigned timeout_ms)
{
    r->o.timeout_ms = timeout_ms;
}

uint64_t stream_reader_offset(const struct stream_reader *r)
{
    return r->offset;
}

const struct stream_libxc_header *stream_reader_libxc_header(const struct stream_reader *r)
{
    return r->have_libxc ? &r->xc : NULL;
}

const struct stream_xl_header *stream_reader_xl_header(const struct stream_reader *r)
{
    return r->have_xl ? &r->xl : NULL;
}

static void set_header(struct stream_reader *r, struct stream_record *rec, enum stream_layer layer,
                       uint32_t len, uint64_t offset)
{
    memset(rec, 0, sizeof(*rec));
    rec->layer = layer;
    rec->header = true;
    rec->length = len;
    rec->body = r->buf;
    rec->offset = offset;
}

/* ---- Headers --------------------------------------------------------------- */

static int read_xl_header(struct stream_reader *r, struct stream_record *rec)
{
    const char *what = "xl save-file header";
    uint64_t start = r->offset;
    uint32_t byteorder, mflags, oflags, optlen, config_len;
    int e = grow(r, STREAM_XL_HEADER_SIZE, what, start);

    if (e)
        return e;
    e = read_part(r, r->buf, STREAM_XL_HEADER_SIZE, what, start, "header");
    if (e)
        return e;
    if (memcmp(r->buf, STREAM_XL_MAGIC, STREAM_XL_MAGIC_LEN))
        return fail(r, -EINVAL, what, start, "no xl save-file magic "
                    "(\"Xen saved domain, xl format\\n \\0 \\r\")");
    byteorder = get_le32(r->buf + 32);
    mflags = get_le32(r->buf + 36);
    oflags = get_le32(r->buf + 40);
    optlen = get_le32(r->buf + 44);
    if (byteorder == 0x04030201u)
        return fail(r, -EOPNOTSUPP, what, start, "written by a big-endian host");
    if (byteorder != STREAM_XL_BYTEORDER)
        return fail(r, -EINVAL, what, start, "byte-order mark 0x%08x, not 0x%08x",
                    byteorder, STREAM_XL_BYTEORDER);
    if (mflags & ~(STREAM_XL_FLAG_JSON | STREAM_XL_FLAG_STREAMV2))
        return fail(r, -EOPNOTSUPP, what, start, "unknown mandatory flags 0x%x",
                    mflags & ~(STREAM_XL_FLAG_JSON | STREAM_XL_FLAG_STREAMV2));
    if (!(mflags & STREAM_XL_FLAG_STREAMV2))
        return fail(r, -EOPNOTSUPP, what, start, "a legacy (pre-Migration-v2) save file: "
                    "the STREAMv2 flag is clear");
    if (oflags)
        return fail(r, -EOPNOTSUPP, what, start, "unknown optional flags 0x%x", oflags);
    if (optlen > STREAM_MAX_XL_OPTIONAL_DATA)
        return fail(r, -E2BIG, what, start, "%u bytes of optional data exceed %u", optlen,
                    STREAM_MAX_XL_OPTIONAL_DATA);
    e = grow(r, STREAM_XL_HEADER_SIZE + optlen + 1, what, start);
    if (!e)
        e = read_part(r, r->buf + STREAM_XL_HEADER_SIZE, optlen, what, start, "optional data");
    if (e)
        return e;
    r->buf[STREAM_XL_HEADER_SIZE + optlen] = 0;
    config_len = 0;
    if (optlen) {
        const uint8_t *opt = r->buf + STREAM_XL_HEADER_SIZE;
        if (optlen < 4)
            return fail(r, -EINVAL, what, start, "%u bytes of optional data cannot hold the "
                        "config's 4-byte length", optlen);
        config_len = get_le32(opt);
        if (config_len > optlen - 4)
            return fail(r, -EINVAL, what, start, "config of %u bytes overruns the %u bytes of "
                        "optional data", config_len, optlen);
        if (config_len) {
            const uint8_t *c = opt + 4;
            if (c[config_len - 1] != 0 || memchr(c, 0, config_len - 1))
                return fail(r, -EINVAL, what, start, "the config is not one NUL-terminated "
                            "text");
        }
        if (optlen - 4 > config_len)
            tlog_info(r->o.log, "%s at offset 0x%llx: skipping %u bytes of optional data "
                      "after the config", what, (unsigned long long)start,
                      optlen - 4 - config_len);
    }
    if ((mflags & STREAM_XL_FLAG_JSON) && !config_len)
        return fail(r, -EINVAL, what, start, "the JSON flag is set but there is no config");
    free(r->xl_config);
    r->xl_config = NULL;
    if (config_len) {
        r->xl_config = strdup((const char *)r->buf + STREAM_XL_HEADER_SIZE + 4);
        if (!r->xl_config)
            return fail(r, -ENOMEM, what, start, "out of memory");
    }
    r->xl.mandatory_flags = mflags;
    r->xl.optional_flags = oflags;
    r->xl.optional_data_len = optlen;
    r->xl.config = r->xl_config;
    r->xl.config_len = config_len ? config_len - 1 : 0;
    r->have_xl = true;
    set_header(r, rec, STREAM_LAYER_XL, STREAM_XL_HEADER_SIZE + optlen, start);
    r->state = RS_LIBXL_HEADER;
    return 0;
}

static int read_libxl_header(struct stream_reader *r, struct stream_record *rec)
{
    const char *what = "libxl stream header";
    uint64_t start = r->offset;
    uint64_t ident;
    uint32_t version, options;
    int e = grow(r, STREAM_LIBXL_HEADER_SIZE, what, start);

    if (!e)
        e = read_part(r, r->buf, STREAM_LIBXL_HEADER_SIZE, what, start, "header");
    if (e)
        return e;
    ident = get_be64(r->buf);
    version = get_be32(r->buf + 8);
    options = get_be32(r->buf + 12);
    if (ident != STREAM_LIBXL_IDENT)
        return fail(r, -EINVAL, what, start, "ident 0x%016llx, not 0x%016llx (\"LibxlFmt\")",
                    (unsigned long long)ident, (unsigned long long)STREAM_LIBXL_IDENT);
    if (version != STREAM_LIBXL_VERSION)
        return fail(r, -EOPNOTSUPP, what, start, "version %u; Tandem reads version %u",
                    version, STREAM_LIBXL_VERSION);
    if (options & ~(STREAM_LIBXL_OPT_BIG_ENDIAN | STREAM_LIBXL_OPT_LEGACY))
        return fail(r, -EINVAL, what, start, "reserved option bits 0x%x set",
                    options & ~(STREAM_LIBXL_OPT_BIG_ENDIAN | STREAM_LIBXL_OPT_LEGACY));
    if (options & STREAM_LIBXL_OPT_BIG_ENDIAN)
        return fail(r, -EOPNOTSUPP, what, start, "a big-endian stream");
    if (options & STREAM_LIBXL_OPT_LEGACY)
        tlog_info(r->o.log, "%s at offset 0x%llx: converted from a legacy stream", what,
                  (unsigned long long)start);
    set_header(r, rec, STREAM_LAYER_LIBXL, STREAM_LIBXL_HEADER_SIZE, start);
    r->state = RS_LIBXL_RECORDS;
    return 0;
}

static int read_libxc_header(struct stream_reader *r, struct stream_record *rec)
{
    const char *what = "libxc image header";
    const char *dwhat = "libxc domain header";
    uint64_t start = r->offset;
    struct stream_libxc_header h;
    uint64_t marker;
    uint32_t id;
    uint16_t res1, dres;
    uint32_t res2;
    int e = grow(r, STREAM_LIBXC_HEADER_SIZE, what, start);

    if (!e)
        e = read_part(r, r->buf, 24, what, start, "header");
    if (e)
        return e;
    marker = get_be64(r->buf);
    id = get_be32(r->buf + 8);
    h.version = get_be32(r->buf + 12);
    h.options = get_be16(r->buf + 16);
    res1 = get_be16(r->buf + 18);
    res2 = get_be32(r->buf + 20);
    if (marker != STREAM_LIBXC_MARKER)
        return fail(r, -EINVAL, what, start, "marker 0x%016llx, not all ones: not a Migration "
                    "v2 image (a legacy one?)", (unsigned long long)marker);
    if (id != STREAM_LIBXC_ID)
        return fail(r, -EINVAL, what, start, "id 0x%08x, not 0x%08x (\"XENF\")", id,
                    STREAM_LIBXC_ID);
    if (h.version != 2 && h.version != 3)
        return fail(r, -EOPNOTSUPP, what, start, "version %u; Tandem reads versions 2 and 3",
                    h.version);
    if (h.options & ~STREAM_LIBXC_OPT_BIG_ENDIAN)
        return fail(r, -EINVAL, what, start, "reserved option bits 0x%x set",
                    h.options & ~STREAM_LIBXC_OPT_BIG_ENDIAN);
    if (h.options & STREAM_LIBXC_OPT_BIG_ENDIAN)
        return fail(r, -EOPNOTSUPP, what, start, "a big-endian image");
    if (res1 || res2)
        return fail(r, -EINVAL, what, start, "reserved fields 0x%04x:0x%08x are not zero",
                    res1, res2);

    e = read_part(r, r->buf + 24, 16, dwhat, start + 24, "header");
    if (e)
        return e;
    h.domain_type = get_le32(r->buf + 24);
    h.page_shift = get_le16(r->buf + 28);
    dres = get_le16(r->buf + 30);
    h.xen_major = get_le32(r->buf + 32);
    h.xen_minor = get_le32(r->buf + 36);
    if (h.domain_type == STREAM_DOMAIN_X86_PV)
        return fail(r, -EOPNOTSUPP, dwhat, start + 24, "an x86 PV domain; Tandem restores "
                    "x86 HVM domains only");
    if (h.domain_type != STREAM_DOMAIN_X86_HVM)
        return fail(r, -EINVAL, dwhat, start + 24, "unknown domain type 0x%x", h.domain_type);
    if (h.page_shift != STREAM_PAGE_SHIFT)
        return fail(r, -EINVAL, dwhat, start + 24, "page shift %u, not %u", h.page_shift,
                    STREAM_PAGE_SHIFT);
    if (dres)
        return fail(r, -EINVAL, dwhat, start + 24, "reserved field 0x%04x is not zero", dres);

    r->xc = h;
    r->have_libxc = true;
    r->static_end = false;
    r->seen_cpuid = r->seen_msr = r->seen_verify = false;
    r->epoch_params = r->epoch_context = false;
    set_header(r, rec, STREAM_LAYER_LIBXC, STREAM_LIBXC_HEADER_SIZE, start);
    r->state = RS_LIBXC_RECORDS;
    return 0;
}

/* ---- Record headers ------------------------------------------------------ */

/* Reads a record header; at a clean end of stream the message says a
 * record was due. */
static int read_rec_header(struct stream_reader *r, enum stream_layer layer, uint32_t *type,
                           uint32_t *len, uint64_t *start)
{
    uint8_t h[8];
    size_t got;
    int e;

    *start = r->offset;
    e = read_exact(r, h, sizeof(h), &got);
    snprintf(r->what, sizeof(r->what), "%s record", stream_layer_name(layer));
    if (e == -EPIPE && got == 0)
        return fail(r, e, r->what, *start, "stream ends where a record should start "
                    "(no %s END)", stream_layer_name(layer));
    if (e == -EPIPE)
        return fail(r, e, r->what, *start, "stream ends %zu bytes into the record's 8-byte "
                    "header", got);
    if (e)
        return fail(r, e, r->what, *start, "reading its header: %s", strerror(-e));
    *type = get_le32(h);
    *len = get_le32(h + 4);
    return 0;
}

static int skip_optional(struct stream_reader *r, enum stream_layer layer, uint32_t type,
                         uint32_t len, uint64_t start)
{
    const char *what = describe(r, layer, type);

    if (len > STREAM_MAX_SKIPPED_RECORD)
        return fail(r, -E2BIG, what, start, "optional record of %u bytes exceeds %u", len,
                    STREAM_MAX_SKIPPED_RECORD);
    tlog_info(r->o.log, "%s at offset 0x%llx: optional, %u bytes, skipped", what,
              (unsigned long long)start, len);
    return skip_body(r, len, what, start);
}

static void set_record(struct stream_reader *r, struct stream_record *rec, enum stream_layer layer,
                       uint32_t type, uint32_t len, uint64_t start)
{
    memset(rec, 0, sizeof(*rec));
    rec->layer = layer;
    rec->type = type;
    rec->length = len;
    rec->body = len ? r->buf : NULL;
    rec->offset = start;
}

/* ---- libxl records -------------------------------------------------------- */

static int check_xenstore_data(struct stream_reader *r, const char *what, uint64_t start,
                               const uint8_t *d, uint32_t len)
{
    uint32_t i = 0, strings = 0;

    if (!len)
        return 0;
    if (d[len - 1])
        return fail(r, -EINVAL, what, start, "key/value data not NUL-terminated");
    while (i < len) {
        uint32_t s = i;
        bool key = strings % 2 == 0;
        for (; d[i]; i++) {
            uint8_t c = d[i];
            bool ok = key ? ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '-' || c == '/' || c == '_' ||
                             c == '@')
                          : (c >= 0x20 && c < 0x7f);
            if (!ok)
                return fail(r, -EINVAL, what, start, "byte 0x%02x at offset 0x%llx is not "
                            "allowed in a xenstore %s", c,
                            (unsigned long long)(start + 16 + i), key ? "key" : "value");
        }
        if (key && i == s)
            return fail(r, -EINVAL, what, start, "an empty xenstore key");
        i++;
        strings++;
    }
    if (strings % 2)
        return fail(r, -EINVAL, what, start, "%u strings: a key without its value", strings);
    return 0;
}

static int check_emulator(struct stream_reader *r, const char *what, uint64_t start,
                          uint32_t type, uint32_t len)
{
    uint32_t id = get_le32(r->buf);

    if (id > STREAM_EMULATOR_QEMU_UPSTREAM)
        return fail(r, -EOPNOTSUPP, what, start, "unknown emulator id %u", id);
    if (type == STREAM_LIBXL_EMULATOR_XENSTORE_DATA)
        return check_xenstore_data(r, what, start, r->buf + 8, len - 8);
    if (r->o.xen_made)
        return 0;
    if (id != STREAM_EMULATOR_UNKNOWN)
        return fail(r, -EOPNOTSUPP, what, start, "state of QEMU (emulator id %u); Tandem "
                    "restores its own device models only", id);
    if (len < 8 + STREAM_TANDEM_DM_MAGIC_LEN ||
        memcmp(r->buf + 8, STREAM_TANDEM_DM_MAGIC, STREAM_TANDEM_DM_MAGIC_LEN))
        return fail(r, -EOPNOTSUPP, what, start, "device-model state without the \"%s\" "
                    "magic: not Tandem's", STREAM_TANDEM_DM_MAGIC);
    return 0;
}

static int read_libxl_record(struct stream_reader *r, struct stream_record *rec)
{
    uint32_t type, len;
    uint64_t start;
    const char *what;
    int e;

    for (;;) {
        e = read_rec_header(r, STREAM_LAYER_LIBXL, &type, &len, &start);
        if (e)
            return e;
        if (!(type & STREAM_REC_OPTIONAL))
            break;
        e = skip_optional(r, STREAM_LAYER_LIBXL, type, len, start);
        if (e)
            return e;
    }
    what = describe(r, STREAM_LAYER_LIBXL, type);
    if (!stream_record_name(STREAM_LAYER_LIBXL, type))
        return fail(r, -EOPNOTSUPP, what, start, "unknown mandatory record");

    /* In COLO, what follows CHECKPOINT_END is known; anything else is out
     * of place whatever its length. */
    if (r->want_state && type != STREAM_LIBXL_CHECKPOINT_STATE)
        return fail(r, -EINVAL, what, start, "a COLO stream has CHECKPOINT_STATE right after "
                    "CHECKPOINT_END");

    /* Lengths, before anything is read. */
    switch (type) {
    case STREAM_LIBXL_END:
    case STREAM_LIBXL_LIBXC_CONTEXT:
    case STREAM_LIBXL_CHECKPOINT_END:
        if (len)
            return fail(r, -EINVAL, what, start, "length %u; this record has no body", len);
        break;
    case STREAM_LIBXL_EMULATOR_XENSTORE_DATA:
    case STREAM_LIBXL_EMULATOR_CONTEXT: {
        uint32_t max = type == STREAM_LIBXL_EMULATOR_CONTEXT ? STREAM_MAX_EMULATOR_CONTEXT
                                                             : STREAM_MAX_XENSTORE_DATA;
        if (len < 8)
            return fail(r, -EINVAL, what, start, "length %u is too short for the 8-byte "
                        "emulator header", len);
        if (len > max)
            return fail(r, -E2BIG, what, start, "length %u exceeds %u", len, max);
        break;
    }
    case STREAM_LIBXL_CHECKPOINT_STATE:
        if (len != 4 && len != 8)
            return fail(r, -EINVAL, what, start, "length %u; a control id is 4 bytes", len);
        break;
    case STREAM_LIBXL_TANDEM_DISK_DATA:
        if (len <= STREAM_DISK_DATA_HEADER)
            return fail(r, -EINVAL, what, start, "length %u leaves no data after the %u-byte "
                        "block header", len, STREAM_DISK_DATA_HEADER);
        if (len > STREAM_DISK_DATA_HEADER + STREAM_MAX_DISK_DATA)
            return fail(r, -E2BIG, what, start, "length %u exceeds %u bytes of blocks", len,
                        STREAM_MAX_DISK_DATA);
        break;
    case STREAM_LIBXL_TANDEM_CHECKPOINT_ACK:
        return fail(r, -EINVAL, what, start, "it belongs to the Remus back channel "
                    "(secondary to primary), not to the stream");
    }

    /* Place in the stream. */
    switch (type) {
    case STREAM_LIBXL_END:
        if (r->in_checkpoint)
            return fail(r, -EINVAL, what, start, "inside a checkpoint (no CHECKPOINT_END "
                        "after the libxc CHECKPOINT)");
        if (!r->libxc_seen)
            return fail(r, -EINVAL, what, start, "the stream has no libxc image "
                        "(LIBXC_CONTEXT)");
        break;
    case STREAM_LIBXL_LIBXC_CONTEXT:
        if (r->libxc_seen)
            return fail(r, -EINVAL, what, start, "a second libxc image");
        break;
    case STREAM_LIBXL_CHECKPOINT_END:
        if (!r->in_checkpoint)
            return fail(r, -EINVAL, what, start, "not in a checkpoint (no libxc CHECKPOINT "
                        "before it)");
        break;
    case STREAM_LIBXL_CHECKPOINT_STATE:
        if (r->o.checkpoints != STREAM_COLO)
            return fail(r, -EINVAL, what, start, "only COLO streams carry it");
        if (!r->want_state)
            return fail(r, -EINVAL, what, start, "only right after CHECKPOINT_END");
        break;
    case STREAM_LIBXL_TANDEM_DISK_DATA:
        if (r->o.checkpoints != STREAM_REMUS)
            return fail(r, -EINVAL, what, start, "only Remus streams carry disk blocks");
        if (r->libxc_seen && !r->in_checkpoint)
            return fail(r, -EINVAL, what, start, "disk blocks stand before LIBXC_CONTEXT (the "
                        "initial copy) or inside a checkpoint, not here");
        break;
    }

    e = read_body(r, len, what, start);
    if (e)
        return e;

    switch (type) {
    case STREAM_LIBXL_EMULATOR_XENSTORE_DATA:
    case STREAM_LIBXL_EMULATOR_CONTEXT:
        e = check_emulator(r, what, start, type, len);
        if (e)
            return e;
        break;
    case STREAM_LIBXL_CHECKPOINT_STATE: {
        uint32_t id = get_le32(r->buf);
        if (len == 8 && get_le32(r->buf + 4))
            return fail(r, -EINVAL, what, start, "its padding field is not zero");
        if (id > STREAM_CHECKPOINT_SVM_RESUMED)
            return fail(r, -EINVAL, what, start, "unknown control id %u", id);
        if (id != STREAM_CHECKPOINT_NEW)
            return fail(r, -EINVAL, what, start, "control id %u belongs to the back channel "
                        "(secondary to primary)", id);
        break;
    }
    case STREAM_LIBXL_TANDEM_DISK_DATA: {
        uint32_t disk = get_le32(r->buf), flags = get_le32(r->buf + 4);
        uint64_t off = get_le64(r->buf + 8);
        uint32_t dlen = get_le32(r->buf + 16), res = get_le32(r->buf + 20);
        if (disk >= STREAM_MAX_DISKS)
            return fail(r, -EINVAL, what, start, "disk %u; a domain has at most %u", disk,
                        STREAM_MAX_DISKS);
        if (flags)
            return fail(r, -EINVAL, what, start, "unknown flags 0x%x", flags);
        if (res)
            return fail(r, -EINVAL, what, start, "reserved field 0x%08x is not zero", res);
        if (dlen != len - STREAM_DISK_DATA_HEADER)
            return fail(r, -EINVAL, what, start, "data length %u, but the body holds %u bytes "
                        "after its header", dlen, len - STREAM_DISK_DATA_HEADER);
        if (off % STREAM_DISK_ALIGN)
            return fail(r, -EINVAL, what, start, "byte offset 0x%llx is not a whole %u-byte "
                        "block", (unsigned long long)off, STREAM_DISK_ALIGN);
        if (off + dlen < off)
            return fail(r, -EINVAL, what, start, "byte offset 0x%llx + %u overflows",
                        (unsigned long long)off, dlen);
        break;
    }
    }

    set_record(r, rec, STREAM_LAYER_LIBXL, type, len, start);
    switch (type) {
    case STREAM_LIBXL_END:
        r->state = RS_DONE;
        rec->last = true;
        break;
    case STREAM_LIBXL_LIBXC_CONTEXT:
        r->libxc_seen = true;
        r->embedded = true;
        r->state = RS_LIBXC_HEADER;
        break;
    case STREAM_LIBXL_CHECKPOINT_END:
        r->in_checkpoint = false;
        r->checkpoints_done++;
        r->after_checkpoint_end = true;
        if (r->o.checkpoints == STREAM_COLO)
            r->want_state = true;
        else
            r->state = RS_LIBXC_RECORDS;
        break;
    case STREAM_LIBXL_CHECKPOINT_STATE:
        r->want_state = false;
        r->state = RS_LIBXC_RECORDS;
        break;
    }
    return 0;
}

/* ---- libxc records -------------------------------------------------------- */

/* Records that hold memory or register state: a v3 image has them only
 * after STATIC_DATA_END, and the first of them fixes where a v2 image's
 * STATIC_DATA_END is inferred. */
static bool is_state_record(uint32_t type)
{
    switch (type) {
    case STREAM_LIBXC_PAGE_DATA:
    case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
    case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
    case STREAM_LIBXC_X86_TSC_INFO:
    case STREAM_LIBXC_HVM_CONTEXT:
    case STREAM_LIBXC_HVM_PARAMS:
    case STREAM_LIBXC_VERIFY:
    case STREAM_LIBXC_CHECKPOINT:
    case STREAM_LIBXC_END:
        return true;
    }
    return false;
}

/* PAGE_DATA, and TANDEM_PAGE_DATA_LZ4 with the same rules for its pfns:
 * for the latter, the LZ4 block must fill the rest of the body and
 * decompress to exactly the data of its data-carrying pages, which it
 * leaves in r->pages (*data_len bytes). */
static int check_page_data(struct stream_reader *r, const char *what, uint64_t start,
                           uint32_t type, uint32_t len, uint32_t *data_len)
{
    const uint8_t *b = r->buf;
    uint32_t count = get_le32(b), res = get_le32(b + 4);
    bool lz4 = type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4;
    uint64_t with_data = 0, expect;

    *data_len = 0;
    if (count == 0)
        return fail(r, -EINVAL, what, start, "count is 0; a PAGE_DATA record has pages");
    if (count > STREAM_MAX_BATCH)
        return fail(r, -E2BIG, what, start, "%u pages exceed %u per record", count,
                    STREAM_MAX_BATCH);
    if (res)
        return fail(r, -EINVAL, what, start, "reserved field 0x%08x is not zero", res);
    if (len < 8 + 8 * (uint64_t)count + (lz4 ? 8 : 0))
        return fail(r, -EINVAL, what, start, "length %u is too short for %u pfns%s", len, count,
                    lz4 ? " and the 8-byte LZ4 block header" : "");
    for (uint32_t i = 0; i < count; i++) {
        uint64_t w = get_le64(b + 8 + 8 * i);
        uint64_t pfn = w & STREAM_PFN_MASK;
        unsigned t = (unsigned)(w >> STREAM_PFN_TYPE_SHIFT);

        if (w & ~STREAM_PFN_MASK & ~(0xfULL << STREAM_PFN_TYPE_SHIFT))
            return fail(r, -EINVAL, what, start, "pfn[%u] 0x%016llx has reserved bits 59-52 "
                        "set", i, (unsigned long long)w);
        if (t >= 0x5 && t <= 0x8)
            return fail(r, -EINVAL, what, start, "pfn[%u] 0x%llx has unknown page type 0x%x",
                        i, (unsigned long long)pfn, t);
        if (t != STREAM_PAGE_NORMAL && t != STREAM_PAGE_BROKEN && t != STREAM_PAGE_XALLOC &&
            t != STREAM_PAGE_XTAB)
            return fail(r, -EINVAL, what, start, "pfn[%u] 0x%llx has page type %s, which "
                        "only x86 PV images have", i, (unsigned long long)pfn,
                        stream_page_type_name(t));
        if (r->o.max_pfn && pfn >= r->o.max_pfn)
            return fail(r, -ERANGE, what, start, "pfn 0x%llx beyond the domain's 0x%llx "
                        "frames", (unsigned long long)pfn, (unsigned long long)r->o.max_pfn);
        if (stream_page_type_has_data(t))
            with_data++;
    }
    if (!lz4) {
        expect = 8 + 8 * (uint64_t)count + STREAM_PAGE_SIZE * with_data;
        if (len != expect)
            return fail(r, -EINVAL, what, start, "length %u, but %u pfns with %llu pages of "
                        "data make %llu", len, count, (unsigned long long)with_data,
                        (unsigned long long)expect);
        return 0;
    }

    /* The LZ4 block: its header, its length, then what it holds. */
    const uint8_t *bh = b + 8 + 8 * (size_t)count;
    uint32_t clen = get_le32(bh), cres = get_le32(bh + 4);
    uint32_t room = len - 16 - 8 * count;
    uint64_t block_at = start + 8 + 16 + 8 * (uint64_t)count;
    size_t want = STREAM_PAGE_SIZE * (size_t)with_data;
    int got;

    if (!with_data)
        return fail(r, -EINVAL, what, start, "none of its %u pages carries data: such a batch "
                    "is a plain PAGE_DATA", count);
    if (cres)
        return fail(r, -EINVAL, what, start, "the LZ4 block header's reserved field 0x%08x is "
                    "not zero", cres);
    if (clen != room)
        return fail(r, -EINVAL, what, start, "compressed_length %u, but the body holds %u bytes "
                    "after the pfns and the block header", clen, room);
    if (!clen)
        return fail(r, -EINVAL, what, start, "an empty LZ4 block for %llu pages of data",
                    (unsigned long long)with_data);
    if (want > r->pages_cap) {
        uint8_t *np = realloc(r->pages, want);
        if (!np)
            return fail(r, -ENOMEM, what, start, "out of memory for %zu bytes of page data",
                        want);
        r->pages = np;
        r->pages_cap = want;
    }
    got = LZ4_decompress_safe((const char *)bh + 8, (char *)r->pages, (int)clen, (int)want);
    if (got < 0)
        return fail(r, -EINVAL, what, start, "the LZ4 block of %u bytes at offset 0x%llx is "
                    "malformed or holds more than the %zu bytes of its %llu data pages", clen,
                    (unsigned long long)block_at, want, (unsigned long long)with_data);
    if ((size_t)got != want)
        return fail(r, -EINVAL, what, start, "the LZ4 block of %u bytes at offset 0x%llx "
                    "decompresses to %d bytes, not the %zu bytes of its %llu data pages", clen,
                    (unsigned long long)block_at, got, want, (unsigned long long)with_data);
    *data_len = (uint32_t)want;
    return 0;
}

/* TANDEM_PAGE_DATA_DELTA: the pfns as PAGE_DATA's (all of them pages with
 * data, so no type bits), then a length per page, the padding word when
 * the count is odd, and the encodings, which must fill the body exactly
 * and each cover exactly one page. */
static int check_page_delta(struct stream_reader *r, const char *what, uint64_t start, uint32_t len)
{
    const uint8_t *b = r->buf;
    uint32_t count = get_le32(b), res = get_le32(b + 4);
    uint64_t head, off;

    if (count == 0)
        return fail(r, -EINVAL, what, start, "count is 0; a delta record has pages");
    if (count > STREAM_MAX_BATCH)
        return fail(r, -E2BIG, what, start, "%u pages exceed %u per record", count,
                    STREAM_MAX_BATCH);
    if (res)
        return fail(r, -EINVAL, what, start, "reserved field 0x%08x is not zero", res);
    head = 8 + 12 * (uint64_t)count + (count & 1 ? 4 : 0);
    if (len < head)
        return fail(r, -EINVAL, what, start, "length %u is too short for %u pfns and their "
                    "lengths", len, count);
    if ((count & 1) && get_le32(b + head - 4))
        return fail(r, -EINVAL, what, start, "the padding word after the lengths is not zero");
    off = head;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t w = get_le64(b + 8 + 8 * i);
        uint32_t l = get_le32(b + 8 + 8 * (size_t)count + 4 * i);

        if (w & ~STREAM_PFN_MASK)
            return fail(r, -EINVAL, what, start, "pfn[%u] 0x%016llx has bits 63-52 set (a "
                        "delta is always of a normal page)", i, (unsigned long long)w);
        if (r->o.max_pfn && w >= r->o.max_pfn)
            return fail(r, -ERANGE, what, start, "pfn 0x%llx beyond the domain's 0x%llx "
                        "frames", (unsigned long long)w, (unsigned long long)r->o.max_pfn);
        if (!l || l > STREAM_PAGE_SIZE)
            return fail(r, -EINVAL, what, start, "pfn 0x%llx: a delta of %u bytes (1-%u)",
                        (unsigned long long)w, l, STREAM_PAGE_SIZE);
        if (off + l > len)
            return fail(r, -EINVAL, what, start, "pfn 0x%llx: its delta of %u bytes at body "
                        "offset %llu overruns the %u-byte body", (unsigned long long)w, l,
                        (unsigned long long)off, len);
        if (!stream_delta_valid(b + off, l))
            return fail(r, -EINVAL, what, start, "pfn 0x%llx: the delta at offset 0x%llx is "
                        "not the run-length encoding of exactly one page",
                        (unsigned long long)w, (unsigned long long)(start + 8 + off));
        off += l;
    }
    if (off != len)
        return fail(r, -EINVAL, what, start, "length %u, but its %u deltas end at %llu", len,
                    count, (unsigned long long)off);
    return 0;
}

/* The bound on each record's length, checked before its body is read. */
static int check_libxc_length(struct stream_reader *r, const char *what, uint64_t start,
                              uint32_t type, uint32_t len)
{
    switch (type) {
    case STREAM_LIBXC_END:
    case STREAM_LIBXC_STATIC_DATA_END:
    case STREAM_LIBXC_VERIFY:
    case STREAM_LIBXC_CHECKPOINT:
        if (len)
            return fail(r, -EINVAL, what, start, "length %u; this record has no body", len);
        return 0;
    case STREAM_LIBXC_PAGE_DATA:
        if (len < 8)
            return fail(r, -EINVAL, what, start, "length %u is too short for its 8-byte "
                        "header", len);
        if (len > STREAM_MAX_PAGE_DATA_LEN)
            return fail(r, -E2BIG, what, start, "length %u exceeds the %u bytes of %u pages",
                        len, STREAM_MAX_PAGE_DATA_LEN, STREAM_MAX_BATCH);
        return 0;
    case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
        if (len < 16)
            return fail(r, -EINVAL, what, start, "length %u is too short for its 8-byte "
                        "header and 8-byte LZ4 block header", len);
        if (len > STREAM_MAX_PAGE_DATA_LZ4_LEN)
            return fail(r, -E2BIG, what, start, "length %u exceeds the %u bytes of %u pages "
                        "compressed", len, STREAM_MAX_PAGE_DATA_LZ4_LEN, STREAM_MAX_BATCH);
        return 0;
    case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
        if (len < 8)
            return fail(r, -EINVAL, what, start, "length %u is too short for its 8-byte "
                        "header", len);
        if (len > STREAM_MAX_PAGE_DATA_DELTA_LEN)
            return fail(r, -E2BIG, what, start, "length %u exceeds the %u bytes of %u deltas",
                        len, STREAM_MAX_PAGE_DATA_DELTA_LEN, STREAM_MAX_BATCH);
        return 0;
    case STREAM_LIBXC_X86_TSC_INFO:
        if (len != 24)
            return fail(r, -EINVAL, what, start, "length %u, not 24", len);
        return 0;
    case STREAM_LIBXC_HVM_CONTEXT:
        if (!len)
            return fail(r, -EINVAL, what, start, "an empty HVM context");
        if (len > STREAM_MAX_HVM_CONTEXT)
            return fail(r, -E2BIG, what, start, "length %u exceeds %u", len,
                        STREAM_MAX_HVM_CONTEXT);
        return 0;
    case STREAM_LIBXC_HVM_PARAMS:
        if (len < 8)
            return fail(r, -EINVAL, what, start, "length %u is too short for its 8-byte "
                        "header", len);
        if (len > 8 + 16 * STREAM_MAX_HVM_PARAMS)
            return fail(r, -E2BIG, what, start, "length %u exceeds %u params", len,
                        STREAM_MAX_HVM_PARAMS);
        if ((len - 8) % 16)
            return fail(r, -EINVAL, what, start, "length %u is not 8 + 16 per param", len);
        return 0;
    case STREAM_LIBXC_X86_CPUID_POLICY:
        if (!len || len % 24)
            return fail(r, -EINVAL, what, start, "length %u is not a positive multiple of "
                        "24 (xen_cpuid_leaf_t)", len);
        if (len / 24 > STREAM_MAX_CPUID_LEAVES)
            return fail(r, -E2BIG, what, start, "%u leaves exceed %u", len / 24,
                        STREAM_MAX_CPUID_LEAVES);
        return 0;
    case STREAM_LIBXC_X86_MSR_POLICY:
        if (!len || len % 16)
            return fail(r, -EINVAL, what, start, "length %u is not a positive multiple of "
                        "16 (xen_msr_entry_t)", len);
        if (len / 16 > STREAM_MAX_MSRS)
            return fail(r, -E2BIG, what, start, "%u MSRs exceed %u", len / 16, STREAM_MAX_MSRS);
        return 0;
    }
    return 0;
}

/* Where a record may stand: the rules of the spec's layout and of
 * checkpointed streams. */
static int check_libxc_place(struct stream_reader *r, const char *what, uint64_t start,
                             uint32_t type)
{
    if (is_state_record(type) && !r->static_end)
        return fail(r, -EINVAL, what, start, "before STATIC_DATA_END (a v3 image ends its "
                    "static data before memory and register state)");
    switch (type) {
    case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
        if (r->o.checkpoints != STREAM_REMUS)
            return fail(r, -EINVAL, what, start, "page deltas belong to Remus streams only");
        if (!r->checkpoints_done)
            return fail(r, -EINVAL, what, start, "before the first CHECKPOINT_END: a delta "
                        "needs a page the secondary has committed");
        break;
    case STREAM_LIBXC_STATIC_DATA_END:
        if (r->xc.version < 3)
            return fail(r, -EINVAL, what, start, "in a version 2 image");
        if (r->static_end)
            return fail(r, -EINVAL, what, start, "a second STATIC_DATA_END");
        break;
    case STREAM_LIBXC_X86_CPUID_POLICY:
    case STREAM_LIBXC_X86_MSR_POLICY:
        if (r->xc.version < 3)
            return fail(r, -EINVAL, what, start, "in a version 2 image (CPU policies came "
                        "with version 3)");
        if (r->static_end)
            return fail(r, -EINVAL, what, start, "after STATIC_DATA_END; CPU policies are "
                        "static data");
        if (type == STREAM_LIBXC_X86_CPUID_POLICY ? r->seen_cpuid : r->seen_msr)
            return fail(r, -EINVAL, what, start, "a second one");
        break;
    case STREAM_LIBXC_VERIFY:
        if (r->seen_verify)
            return fail(r, -EINVAL, what, start, "a second VERIFY");
        break;
    case STREAM_LIBXC_HVM_PARAMS:
        if (r->epoch_params)
            return fail(r, -EINVAL, what, start, "a second HVM_PARAMS before the next "
                        "CHECKPOINT");
        if (r->epoch_context && !r->o.xen_made)
            return fail(r, -EINVAL, what, start, "after HVM_CONTEXT at offset 0x%llx; "
                        "HVM_PARAMS must precede HVM_CONTEXT",
                        (unsigned long long)r->context_offset);
        break;
    case STREAM_LIBXC_HVM_CONTEXT:
        if (r->epoch_context)
            return fail(r, -EINVAL, what, start, "a second HVM_CONTEXT before the next "
                        "CHECKPOINT");
        break;
    case STREAM_LIBXC_CHECKPOINT:
        if (r->o.checkpoints == STREAM_PLAIN)
            return fail(r, -EINVAL, what, start, "in a stream that is not checkpointed");
        /* fall through */
    case STREAM_LIBXC_END:
        /* A checkpointed stream may end right after a whole checkpoint
         * (protection stopped): the last epoch holds the state. */
        if (type == STREAM_LIBXC_END && r->after_checkpoint_end)
            break;
        if (!r->epoch_context)
            return fail(r, -EINVAL, what, start, "no HVM_CONTEXT before it: the vCPUs' "
                        "state is missing");
        break;
    }
    return 0;
}

static int read_libxc_record(struct stream_reader *r, struct stream_record *rec)
{
    uint32_t type, len, page_data_len = 0;
    uint64_t start;
    const char *what;
    int e;

    for (;;) {
        if (r->pending) {
            r->pending = false;
            type = r->pending_type;
            len = r->pending_len;
            start = r->pending_offset;
        } else {
            e = read_rec_header(r, STREAM_LAYER_LIBXC, &type, &len, &start);
            if (e)
                return e;
        }
        if (!(type & STREAM_REC_OPTIONAL))
            break;
        e = skip_optional(r, STREAM_LAYER_LIBXC, type, len, start);
        if (e)
            return e;
    }
    what = describe(r, STREAM_LAYER_LIBXC, type);
    if (!stream_record_name(STREAM_LAYER_LIBXC, type))
        return fail(r, -EOPNOTSUPP, what, start, "unknown mandatory record");
    if (type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4 && !r->o.tandem_lz4)
        return fail(r, -EOPNOTSUPP, what, start, "unknown mandatory record here: Tandem's "
                    "lz4-compressed page data, for a receiver that asked for compression "
                    "(xl migrate-receive -z)");
    if (type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA && !r->o.tandem_delta)
        return fail(r, -EOPNOTSUPP, what, start, "unknown mandatory record here: Remus's "
                    "compressed checkpoint pages, for a secondary that accepts them");

    /* Records an x86 HVM image never has. */
    switch (type) {
    case STREAM_LIBXC_X86_PV_INFO:
    case STREAM_LIBXC_X86_PV_P2M_FRAMES:
    case STREAM_LIBXC_X86_PV_VCPU_BASIC:
    case STREAM_LIBXC_X86_PV_VCPU_EXTENDED:
    case STREAM_LIBXC_X86_PV_VCPU_XSAVE:
    case STREAM_LIBXC_X86_PV_VCPU_MSRS:
    case STREAM_LIBXC_SHARED_INFO:
        return fail(r, -EINVAL, what, start, "an x86 PV record in an x86 HVM image");
    case STREAM_LIBXC_TOOLSTACK:
        return fail(r, -EOPNOTSUPP, what, start, "the deprecated TOOLSTACK record");
    case STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST:
        return fail(r, -EINVAL, what, start, "it belongs to COLO's back channel, not to an "
                    "image");
    }

    /* A version 2 image: STATIC_DATA_END is inferred at its first memory or
     * register record (the spec: at the first PAGE_DATA), and handed out
     * before it so that readers see one layout for both versions. */
    if (r->xc.version < 3 && !r->static_end && is_state_record(type)) {
        r->static_end = true;
        r->pending = true;
        r->pending_type = type;
        r->pending_len = len;
        r->pending_offset = start;
        set_record(r, rec, STREAM_LAYER_LIBXC, STREAM_LIBXC_STATIC_DATA_END, 0, start);
        rec->inferred = true;
        tlog_debug(r->o.log, "libxc STATIC_DATA_END inferred at offset 0x%llx (version 2 "
                   "image)", (unsigned long long)start);
        return 0;
    }

    e = check_libxc_length(r, what, start, type, len);
    if (!e)
        e = check_libxc_place(r, what, start, type);
    if (!e)
        e = read_body(r, len, what, start);
    if (e)
        return e;

    switch (type) {
    case STREAM_LIBXC_PAGE_DATA:
    case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
        e = check_page_data(r, what, start, type, len, &page_data_len);
        break;
    case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
        e = check_page_delta(r, what, start, len);
        break;
    case STREAM_LIBXC_X86_TSC_INFO:
        if (get_le32(r->buf + 20))
            e = fail(r, -EINVAL, what, start, "reserved field 0x%08x is not zero",
                     get_le32(r->buf + 20));
        break;
    case STREAM_LIBXC_HVM_PARAMS: {
        uint32_t count = get_le32(r->buf), res = get_le32(r->buf + 4);
        if (res)
            e = fail(r, -EINVAL, what, start, "reserved field 0x%08x is not zero", res);
        else if (count > STREAM_MAX_HVM_PARAMS)
            e = fail(r, -E2BIG, what, start, "%u params exceed %u", count,
                     STREAM_MAX_HVM_PARAMS);
        else if (len != 8 + 16 * count)
            e = fail(r, -EINVAL, what, start, "length %u, but %u params make %u", len, count,
                     8 + 16 * count);
        else if (!count)
            tlog_info(r->o.log, "%s at offset 0x%llx: no params (tolerated, as the spec's "
                      "errata ask)", what, (unsigned long long)start);
        break;
    }
    case STREAM_LIBXC_X86_MSR_POLICY:
        for (uint32_t i = 0; !e && i < len / 16; i++)
            if (get_le32(r->buf + 16 * i + 4))
                e = fail(r, -EINVAL, what, start, "MSR 0x%08x has reserved flags 0x%x",
                         get_le32(r->buf + 16 * i), get_le32(r->buf + 16 * i + 4));
        break;
    }
    if (e)
        return e;

    set_record(r, rec, STREAM_LAYER_LIBXC, type, len, start);
    r->after_checkpoint_end = false;
    if (type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4) {
        rec->page_data = r->pages;
        rec->page_data_len = page_data_len;
    }
    switch (type) {
    case STREAM_LIBXC_STATIC_DATA_END:
        r->static_end = true;
        break;
    case STREAM_LIBXC_X86_CPUID_POLICY:
        r->seen_cpuid = true;
        break;
    case STREAM_LIBXC_X86_MSR_POLICY:
        r->seen_msr = true;
        break;
    case STREAM_LIBXC_VERIFY:
        r->seen_verify = true;
        break;
    case STREAM_LIBXC_HVM_PARAMS:
        r->epoch_params = true;
        break;
    case STREAM_LIBXC_HVM_CONTEXT:
        r->epoch_context = true;
        r->context_offset = start;
        break;
    case STREAM_LIBXC_CHECKPOINT:
        r->epoch_params = r->epoch_context = false;
        if (r->embedded) {
            r->in_checkpoint = true;
            r->state = RS_LIBXL_RECORDS;
        }
        break;
    case STREAM_LIBXC_END:
        if (r->embedded) {
            r->state = RS_LIBXL_RECORDS;
        } else {
            r->state = RS_DONE;
            rec->last = true;
        }
        break;
    }
    return 0;
}

int stream_read_record(struct stream_reader *r, struct stream_record *rec)
{
    if (r->error)
        return r->error;
    switch (r->state) {
    case RS_XL_HEADER:
        return read_xl_header(r, rec);
    case RS_LIBXL_HEADER:
        return read_libxl_header(r, rec);
    case RS_LIBXL_RECORDS:
        return read_libxl_record(r, rec);
    case RS_LIBXC_HEADER:
        return read_libxc_header(r, rec);
    case RS_LIBXC_RECORDS:
        return read_libxc_record(r, rec);
    case RS_DONE:
        break;
    }
    tlog_error(r->o.log, "stream at offset 0x%llx: read past the stream's final END",
               (unsigned long long)r->offset);
    return -ENODATA;
}
