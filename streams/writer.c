/* The writer: one function per header and record, each laying out the
 * bytes as Xen's specs give them.  Arguments are checked against the same
 * bounds the reader enforces, so that Tandem never writes a stream its own
 * reader (or Xen's verifier) would refuse. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "tandem/streams.h"
#include "stream_impl.h"

static const uint8_t zeros[8];

/* Refuses a call whose arguments would make a record the format (or the
 * reader's bounds) forbids; err is -EINVAL or -E2BIG. */
__attribute__((format(printf, 4, 5)))
static int refuse(struct stream_sink *s, int err, const char *what, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlog_error(stream_sink_log(s), "stream writer: %s at offset 0x%llx: %s", what,
               (unsigned long long)stream_sink_offset(s), msg);
    return err;
}

/* The record header; the body follows through put_body(), then put_pad(). */
static int put_rec_header(struct stream_sink *s, uint32_t type, uint32_t len)
{
    uint8_t h[8];

    put_le32(h, type);
    put_le32(h + 4, len);
    return stream_sink_write(s, h, sizeof(h));
}

static int put_pad(struct stream_sink *s, uint32_t len)
{
    return stream_sink_write(s, zeros, stream_pad(len));
}

/* A whole record whose body is an 8-byte-or-less head plus a blob. */
static int put_record(struct stream_sink *s, uint32_t type, const void *head, size_t head_len,
                      const void *blob, size_t blob_len)
{
    uint32_t len = (uint32_t)(head_len + blob_len);
    int r = put_rec_header(s, type, len);

    if (!r && head_len)
        r = stream_sink_write(s, head, head_len);
    if (!r && blob_len)
        r = stream_sink_write(s, blob, blob_len);
    if (!r)
        r = put_pad(s, len);
    return r;
}

/* ---- xl ---------------------------------------------------------------- */

int stream_write_xl_header(struct stream_sink *s, const char *config_json)
{
    uint8_t h[STREAM_XL_HEADER_SIZE + 4];
    size_t config_len = config_json ? strlen(config_json) + 1 : 0;   /* with NUL, as xl */
    uint32_t flags = STREAM_XL_FLAG_STREAMV2;
    uint32_t optlen = 0;
    int r;

    if (config_len > STREAM_MAX_XL_OPTIONAL_DATA - 4)
        return refuse(s, -E2BIG, "xl header", "config of %zu bytes exceeds %u", config_len,
                      STREAM_MAX_XL_OPTIONAL_DATA - 4);
    if (config_len) {
        flags |= STREAM_XL_FLAG_JSON;
        optlen = 4 + (uint32_t)config_len;
    }
    memcpy(h, STREAM_XL_MAGIC, STREAM_XL_MAGIC_LEN);
    put_le32(h + 32, STREAM_XL_BYTEORDER);
    put_le32(h + 36, flags);
    put_le32(h + 40, 0);                       /* optional_flags: none defined */
    put_le32(h + 44, optlen);
    put_le32(h + 48, (uint32_t)config_len);
    r = stream_sink_write(s, h, config_len ? sizeof(h) : STREAM_XL_HEADER_SIZE);
    if (!r && config_len)
        r = stream_sink_write(s, config_json, config_len);
    return r;
}

/* ---- libxl -------------------------------------------------------------- */

int stream_write_libxl_header(struct stream_sink *s)
{
    uint8_t h[STREAM_LIBXL_HEADER_SIZE];

    put_be64(h, STREAM_LIBXL_IDENT);
    put_be32(h + 8, STREAM_LIBXL_VERSION);
    put_be32(h + 12, 0);                       /* little-endian, not legacy */
    return stream_sink_write(s, h, sizeof(h));
}

int stream_write_libxc_context(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXL_LIBXC_CONTEXT, NULL, 0, NULL, 0);
}

int stream_write_emulator_context(struct stream_sink *s, uint32_t index,
                                  const void *state, size_t len)
{
    uint8_t head[8 + STREAM_TANDEM_DM_MAGIC_LEN];

    if (len && !state)
        return refuse(s, -EINVAL, "EMULATOR_CONTEXT", "no state given for %zu bytes", len);
    if (len > STREAM_MAX_EMULATOR_CONTEXT - sizeof(head))
        return refuse(s, -E2BIG, "EMULATOR_CONTEXT", "%zu bytes of state exceed %zu", len,
                      STREAM_MAX_EMULATOR_CONTEXT - sizeof(head));
    put_le32(head, STREAM_EMULATOR_UNKNOWN);
    put_le32(head + 4, index);
    memcpy(head + 8, STREAM_TANDEM_DM_MAGIC, STREAM_TANDEM_DM_MAGIC_LEN);
    return put_record(s, STREAM_LIBXL_EMULATOR_CONTEXT, head, sizeof(head), state, len);
}

int stream_write_checkpoint_end(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXL_CHECKPOINT_END, NULL, 0, NULL, 0);
}

int stream_write_checkpoint_state(struct stream_sink *s, uint32_t control_id)
{
    uint8_t b[4];

    if (control_id > STREAM_CHECKPOINT_SVM_RESUMED)
        return refuse(s, -EINVAL, "CHECKPOINT_STATE", "unknown control id %u", control_id);
    /* A 4-byte body and 4 bytes of padding, as libxl writes it. */
    put_le32(b, control_id);
    return put_record(s, STREAM_LIBXL_CHECKPOINT_STATE, b, sizeof(b), NULL, 0);
}

int stream_write_libxl_end(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXL_END, NULL, 0, NULL, 0);
}

/* ---- libxc -------------------------------------------------------------- */

int stream_write_libxc_header(struct stream_sink *s, uint32_t xen_major, uint32_t xen_minor)
{
    return stream_write_libxc_header_version(s, STREAM_LIBXC_VERSION, xen_major, xen_minor);
}

int stream_write_libxc_header_version(struct stream_sink *s, uint32_t version, uint32_t xen_major,
                                      uint32_t xen_minor)
{
    uint8_t h[STREAM_LIBXC_HEADER_SIZE];

    if (version != 2 && version != 3)
        return -EINVAL;

    memset(h, 0, sizeof(h));
    /* Image header: big-endian whatever the options say. */
    put_be64(h, STREAM_LIBXC_MARKER);
    put_be32(h + 8, STREAM_LIBXC_ID);
    put_be32(h + 12, version);
    put_be16(h + 16, 0);                       /* options: little-endian */
    /* Domain header: in the image's (little) endianness. */
    put_le32(h + 24, STREAM_DOMAIN_X86_HVM);
    put_le16(h + 28, STREAM_PAGE_SHIFT);
    put_le32(h + 32, xen_major);
    put_le32(h + 36, xen_minor);
    return stream_sink_write(s, h, sizeof(h));
}

bool stream_page_is_zero(const void *page)
{
    const uint64_t *w = page;

    for (unsigned i = 0; i < STREAM_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* The count, reserved word and pfn words of a PAGE_DATA-shaped record,
 * after checking the pages; *with_data counts the NORMAL pages. */
static int page_words(struct stream_sink *s, const char *what, unsigned count,
                      const uint64_t *pfns, const uint8_t *types, const void *const *pages,
                      uint8_t *words, unsigned *with_data)
{
    *with_data = 0;
    if (count < 1 || count > STREAM_MAX_BATCH)
        return refuse(s, -EINVAL, what, "%u pages (1-%u per record)", count, STREAM_MAX_BATCH);
    put_le32(words, count);
    put_le32(words + 4, 0);
    for (unsigned i = 0; i < count; i++) {
        unsigned t = types[i];

        if (pfns[i] > STREAM_PFN_MASK)
            return refuse(s, -EINVAL, what, "pfn 0x%llx has more than 52 bits",
                          (unsigned long long)pfns[i]);
        if (t != STREAM_PAGE_NORMAL && t != STREAM_PAGE_XALLOC && t != STREAM_PAGE_XTAB &&
            t != STREAM_PAGE_BROKEN)
            return refuse(s, -EINVAL, what, "pfn 0x%llx: page type 0x%x is not one an HVM "
                          "image has", (unsigned long long)pfns[i], t);
        if (t == STREAM_PAGE_NORMAL) {
            if (!pages[i])
                return refuse(s, -EINVAL, what, "pfn 0x%llx: no data for a normal page",
                              (unsigned long long)pfns[i]);
            (*with_data)++;
        }
        put_le64(words + 8 + 8 * i, pfns[i] | (uint64_t)t << STREAM_PFN_TYPE_SHIFT);
    }
    return 0;
}

int stream_write_page_data(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                           const uint8_t *types, const void *const *pages)
{
    uint8_t words[8 + 8 * STREAM_MAX_BATCH];
    unsigned with_data;
    uint32_t len;
    int r = page_words(s, "PAGE_DATA", count, pfns, types, pages, words, &with_data);

    if (r)
        return r;
    len = 8 + 8 * count + STREAM_PAGE_SIZE * with_data;
    r = put_rec_header(s, STREAM_LIBXC_PAGE_DATA, len);
    if (!r)
        r = stream_sink_write(s, words, 8 + 8 * count);
    for (unsigned i = 0; !r && i < count; i++)
        if (types[i] == STREAM_PAGE_NORMAL)
            r = stream_sink_write(s, pages[i], STREAM_PAGE_SIZE);
    return r;          /* len is a multiple of 8: no padding */
}

_Static_assert(STREAM_SINK_SCRATCH >= 2 * STREAM_PAGE_SIZE * STREAM_MAX_BATCH,
               "the sink's scratch holds a batch and its compressed form");
_Static_assert(STREAM_MAX_PAGE_DATA_LZ4_LEN ==
               16 + 8 * STREAM_MAX_BATCH + LZ4_COMPRESSBOUND(STREAM_PAGE_SIZE * STREAM_MAX_BATCH),
               "the bound on TANDEM_PAGE_DATA_LZ4 is LZ4's own");

/* Whether a batch is worth compressing: some of up to LZ4_PROBES of its
 * data pages, evenly spread, shrink by an eighth on their own.  Memory of
 * random bytes (encrypted, compressed, the verify workload's) fails this
 * for a few pages' worth of work, instead of a copy and a compression of
 * the whole batch for nothing. */
#define LZ4_PROBES 8
static bool batch_compresses(unsigned count, const uint8_t *types, const void *const *pages,
                             unsigned with_data, uint8_t *out)
{
    unsigned step = with_data > LZ4_PROBES ? with_data / LZ4_PROBES : 1, k = 0;

    for (unsigned i = 0; i < count; i++) {
        if (types[i] != STREAM_PAGE_NORMAL)
            continue;
        if (k++ % step)
            continue;
        if (LZ4_compress_default(pages[i], (char *)out, STREAM_PAGE_SIZE,
                                 STREAM_PAGE_SIZE - STREAM_PAGE_SIZE / 8) > 0)
            return true;
    }
    return false;
}

int stream_write_page_data_lz4(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                               const uint8_t *types, const void *const *pages)
{
    const char *what = "TANDEM_PAGE_DATA_LZ4";
    uint8_t words[8 + 8 * STREAM_MAX_BATCH + 8];
    uint8_t *raw, *packed;
    unsigned with_data, n = 0;
    size_t raw_len;
    uint32_t len;
    int packed_len;
    int r = page_words(s, what, count, pfns, types, pages, words, &with_data);

    if (r)
        return r;
    if (!with_data)
        return stream_write_page_data(s, count, pfns, types, pages);
    raw = stream_sink_scratch(s);
    if (!raw)
        return refuse(s, -ENOMEM, what, "out of memory for the compression buffers");
    packed = raw + STREAM_PAGE_SIZE * STREAM_MAX_BATCH;
    if (!batch_compresses(count, types, pages, with_data, packed))
        return stream_write_page_data(s, count, pfns, types, pages);
    for (unsigned i = 0; i < count; i++)
        if (types[i] == STREAM_PAGE_NORMAL)
            memcpy(raw + STREAM_PAGE_SIZE * n++, pages[i], STREAM_PAGE_SIZE);
    raw_len = (size_t)STREAM_PAGE_SIZE * with_data;
    /* Room for 16 bytes less than the data: what does not fit (LZ4 then
     * returns 0) would make a record no smaller than PAGE_DATA's, whose
     * data takes raw_len where this takes 8 + packed_len + padding. */
    packed_len = LZ4_compress_default((const char *)raw, (char *)packed, (int)raw_len,
                                      (int)raw_len - 16);
    if (packed_len <= 0)
        return stream_write_page_data(s, count, pfns, types, pages);
    put_le32(words + 8 + 8 * count, (uint32_t)packed_len);
    put_le32(words + 8 + 8 * count + 4, 0);
    len = 8 + 8 * count + 8 + (uint32_t)packed_len;
    r = put_rec_header(s, STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4, len);
    if (!r)
        r = stream_sink_write(s, words, 8 + 8 * count + 8);
    if (!r)
        r = stream_sink_write(s, packed, (size_t)packed_len);
    if (!r)
        r = put_pad(s, len);
    return r;
}

int stream_write_tsc_info(struct stream_sink *s, const struct stream_tsc_info *t)
{
    uint8_t b[24];

    put_le32(b, t->mode);
    put_le32(b + 4, t->khz);
    put_le64(b + 8, t->nsec);
    put_le32(b + 16, t->incarnation);
    put_le32(b + 20, 0);
    return put_record(s, STREAM_LIBXC_X86_TSC_INFO, b, sizeof(b), NULL, 0);
}

int stream_write_hvm_params(struct stream_sink *s, const struct stream_hvm_param *p, unsigned n)
{
    uint8_t *b;
    int r;

    if (!n)                      /* the spec: data records with no content are elided */
        return 0;
    if (n > STREAM_MAX_HVM_PARAMS)
        return refuse(s, -E2BIG, "HVM_PARAMS", "%u params exceed %u", n, STREAM_MAX_HVM_PARAMS);
    b = malloc(8 + 16 * (size_t)n);
    if (!b)
        return refuse(s, -ENOMEM, "record", "out of memory");
    put_le32(b, n);
    put_le32(b + 4, 0);
    for (unsigned i = 0; i < n; i++) {
        put_le64(b + 8 + 16 * i, p[i].index);
        put_le64(b + 16 + 16 * i, p[i].value);
    }
    r = put_record(s, STREAM_LIBXC_HVM_PARAMS, NULL, 0, b, 8 + 16 * (size_t)n);
    free(b);
    return r;
}

int stream_write_hvm_context(struct stream_sink *s, const void *blob, size_t len)
{
    if (!len || !blob)
        return refuse(s, -EINVAL, "HVM_CONTEXT", "an empty context");
    if (len > STREAM_MAX_HVM_CONTEXT)
        return refuse(s, -E2BIG, "HVM_CONTEXT", "%zu bytes exceed %u", len,
                      STREAM_MAX_HVM_CONTEXT);
    return put_record(s, STREAM_LIBXC_HVM_CONTEXT, NULL, 0, blob, len);
}

int stream_write_cpuid_policy(struct stream_sink *s, const xen_cpuid_leaf_t *l, unsigned n)
{
    uint8_t *b;
    int r;

    if (!n)                      /* elided, as above */
        return 0;
    if (n > STREAM_MAX_CPUID_LEAVES)
        return refuse(s, -E2BIG, "X86_CPUID_POLICY", "%u leaves exceed %u", n,
                      STREAM_MAX_CPUID_LEAVES);
    b = malloc(24 * (size_t)n);
    if (!b)
        return refuse(s, -ENOMEM, "record", "out of memory");
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = b + 24 * i;
        put_le32(e, l[i].leaf);
        put_le32(e + 4, l[i].subleaf);
        put_le32(e + 8, l[i].a);
        put_le32(e + 12, l[i].b);
        put_le32(e + 16, l[i].c);
        put_le32(e + 20, l[i].d);
    }
    r = put_record(s, STREAM_LIBXC_X86_CPUID_POLICY, NULL, 0, b, 24 * (size_t)n);
    free(b);
    return r;
}

int stream_write_msr_policy(struct stream_sink *s, const xen_msr_entry_t *m, unsigned n)
{
    uint8_t *b;
    int r;

    if (!n)                      /* elided, as above */
        return 0;
    if (n > STREAM_MAX_MSRS)
        return refuse(s, -E2BIG, "X86_MSR_POLICY", "%u MSRs exceed %u", n, STREAM_MAX_MSRS);
    for (unsigned i = 0; i < n; i++)
        if (m[i].flags)
            return refuse(s, -EINVAL, "X86_MSR_POLICY", "MSR 0x%x: flags 0x%x are reserved "
                          "(must be zero)", m[i].idx, m[i].flags);
    b = malloc(16 * (size_t)n);
    if (!b)
        return refuse(s, -ENOMEM, "record", "out of memory");
    for (unsigned i = 0; i < n; i++) {
        put_le32(b + 16 * i, m[i].idx);
        put_le32(b + 16 * i + 4, 0);
        put_le64(b + 16 * i + 8, m[i].val);
    }
    r = put_record(s, STREAM_LIBXC_X86_MSR_POLICY, NULL, 0, b, 16 * (size_t)n);
    free(b);
    return r;
}

int stream_write_static_data_end(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXC_STATIC_DATA_END, NULL, 0, NULL, 0);
}

int stream_write_verify(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXC_VERIFY, NULL, 0, NULL, 0);
}

int stream_write_checkpoint(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXC_CHECKPOINT, NULL, 0, NULL, 0);
}

int stream_write_dirty_pfn_list(struct stream_sink *s, const uint64_t *pfns, unsigned n)
{
    uint8_t *b;
    int r;

    if (n > STREAM_MAX_DIRTY_PFNS)
        return refuse(s, -E2BIG, "CHECKPOINT_DIRTY_PFN_LIST", "%u pfns exceed %u", n,
                      STREAM_MAX_DIRTY_PFNS);
    b = malloc(8 * (size_t)n + 1);
    if (!b)
        return refuse(s, -ENOMEM, "record", "out of memory");
    for (unsigned i = 0; i < n; i++) {
        if (pfns[i] > STREAM_PFN_MASK) {
            free(b);
            return refuse(s, -EINVAL, "CHECKPOINT_DIRTY_PFN_LIST",
                          "pfn 0x%llx has more than 52 bits", (unsigned long long)pfns[i]);
        }
        put_le64(b + 8 * i, pfns[i]);
    }
    r = put_record(s, STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST, NULL, 0, b, 8 * (size_t)n);
    free(b);
    return r;
}

int stream_write_libxc_end(struct stream_sink *s)
{
    return put_record(s, STREAM_LIBXC_END, NULL, 0, NULL, 0);
}

/* ---- Remus's records (layouts in docs/stream-extensions.md) ---------------- */


int stream_write_page_delta(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                            const uint8_t *const *enc, const uint32_t *enc_len)
{
    const char *what = "TANDEM_PAGE_DATA_DELTA";
    uint8_t head[8 + 8 * STREAM_MAX_BATCH + 4 * STREAM_MAX_BATCH + 4];
    uint64_t total = 0;
    size_t h;
    int r;

    if (count < 1 || count > STREAM_MAX_BATCH)
        return refuse(s, -EINVAL, what, "%u pages (1-%u per record)", count, STREAM_MAX_BATCH);
    put_le32(head, count);
    put_le32(head + 4, 0);
    for (unsigned i = 0; i < count; i++) {
        if (pfns[i] > STREAM_PFN_MASK)
            return refuse(s, -EINVAL, what, "pfn 0x%" PRIx64 " has more than 52 bits", pfns[i]);
        if (!enc[i] || !stream_delta_valid(enc[i], enc_len[i]))
            return refuse(s, -EINVAL, what, "pfn 0x%" PRIx64 ": its delta of %u bytes is not the "
                          "encoding of one page", pfns[i], enc_len[i]);
        put_le64(head + 8 + 8 * i, pfns[i]);
        put_le32(head + 8 + 8 * count + 4 * i, enc_len[i]);
        total += enc_len[i];
    }
    h = 8 + 12 * (size_t)count;
    if (count & 1) {
        put_le32(head + h, 0);
        h += 4;
    }
    uint32_t len = (uint32_t)(h + total);
    uint8_t rh[8];
    put_le32(rh, STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA);
    put_le32(rh + 4, len);
    r = stream_sink_write(s, rh, 8);
    if (!r)
        r = stream_sink_write(s, head, h);
    for (unsigned i = 0; !r && i < count; i++)
        r = stream_sink_write(s, enc[i], enc_len[i]);
    if (!r)
        r = stream_sink_write(s, zeros, stream_pad(len));
    return r;
}

int stream_write_disk_data(struct stream_sink *s, uint32_t disk, uint64_t offset, const void *data,
                           uint32_t len)
{
    const char *what = "TANDEM_DISK_DATA";
    uint8_t h[8 + STREAM_DISK_DATA_HEADER];
    int r;

    if (!len || len > STREAM_MAX_DISK_DATA)
        return refuse(s, -EINVAL, what, "%u bytes of blocks (1-%u per record)", len, STREAM_MAX_DISK_DATA);
    if (disk >= STREAM_MAX_DISKS)
        return refuse(s, -EINVAL, what, "disk %u (at most %u disks)", disk, STREAM_MAX_DISKS);
    if (offset % STREAM_DISK_ALIGN || offset + len < offset)
        return refuse(s, -EINVAL, what, "byte offset 0x%" PRIx64 " is not a whole %u-byte block", offset,
                      STREAM_DISK_ALIGN);
    put_le32(h, STREAM_LIBXL_TANDEM_DISK_DATA);
    put_le32(h + 4, STREAM_DISK_DATA_HEADER + len);
    put_le32(h + 8, disk);
    put_le32(h + 12, 0);
    put_le64(h + 16, offset);
    put_le32(h + 24, len);
    put_le32(h + 28, 0);
    r = stream_sink_write(s, h, sizeof(h));
    if (!r)
        r = stream_sink_write(s, data, len);
    if (!r)
        r = stream_sink_write(s, zeros, stream_pad(len));
    return r;
}

int stream_write_checkpoint_ack(struct stream_sink *s, uint64_t epoch)
{
    uint8_t b[STREAM_CHECKPOINT_ACK_SIZE];

    put_le32(b, STREAM_LIBXL_TANDEM_CHECKPOINT_ACK);
    put_le32(b + 4, 8);
    put_le64(b + 8, epoch);
    return stream_sink_write(s, b, sizeof(b));
}

