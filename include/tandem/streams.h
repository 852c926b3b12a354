/* The stream-format layer: Xen's Migration v2 format byte for byte -- the
 * libxc domain image (docs/specs/libxc-migration-stream.pandoc in xen.git),
 * the libxl stream around it (libxl-migration-stream.pandoc) and xl's
 * save-file header in front of both -- with a writer, a strict reader and
 * record printers.  What Tandem puts inside Xen's framing is in
 * docs/stream-extensions.md.
 *
 * Both ends work on pipes and sockets: nothing here ever seeks, and the
 * reader never reads a byte past the record it returns, so whatever
 * follows a stream on the same fd (xl's migration handshake) stays there.
 *
 * Every function returns 0 or a negative errno and logs the reason through
 * the caller's logger.  The reader's errors name the record and its byte
 * offset ("libxc PAGE_DATA at offset 0x1a0: pfn 0x12345 beyond the
 * domain's 0x8000 frames") and mean:
 *   -EPIPE       the stream ended early (end of file inside it)
 *   -EINVAL      the bytes break the format's rules
 *   -EOPNOTSUPP  well-formed, but not something Tandem restores: another
 *                version, big-endian, an x86 PV domain, an unknown
 *                mandatory record type, device-model state not Tandem's
 *   -E2BIG       a count or length beyond the STREAM_MAX_* bounds below
 *   -ERANGE      a pfn at or beyond the domain's max pfn
 *   others       from read(2), write(2), fsync(2) or malloc (-ENOMEM)
 * A reader or sink that failed once keeps failing with the same error. */
#ifndef TANDEM_STREAMS_H
#define TANDEM_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xen/xen.h>          /* xen_cpuid_leaf_t, xen_msr_entry_t */

#include "tandem/log.h"

/* ---- Constants of the format ------------------------------------------ */

/* libxc image header (big-endian) and domain header. */
#define STREAM_LIBXC_MARKER      0xFFFFFFFFFFFFFFFFULL
#define STREAM_LIBXC_ID          0x58454E46u          /* "XENF" */
#define STREAM_LIBXC_VERSION     3u                   /* written; 2 is read too */
#define STREAM_LIBXC_OPT_BIG_ENDIAN 0x0001u
#define STREAM_DOMAIN_X86_PV     1u
#define STREAM_DOMAIN_X86_HVM    2u
#define STREAM_PAGE_SHIFT        12u
#define STREAM_PAGE_SIZE         4096u
#define STREAM_LIBXC_HEADER_SIZE 40u                  /* image + domain header */

/* Record types, both layers.  Bit 31 marks an optional record. */
#define STREAM_REC_OPTIONAL      0x80000000u
enum stream_libxc_type {
    STREAM_LIBXC_END = 0x00,
    STREAM_LIBXC_PAGE_DATA = 0x01,
    STREAM_LIBXC_X86_PV_INFO = 0x02,
    STREAM_LIBXC_X86_PV_P2M_FRAMES = 0x03,
    STREAM_LIBXC_X86_PV_VCPU_BASIC = 0x04,
    STREAM_LIBXC_X86_PV_VCPU_EXTENDED = 0x05,
    STREAM_LIBXC_X86_PV_VCPU_XSAVE = 0x06,
    STREAM_LIBXC_SHARED_INFO = 0x07,
    STREAM_LIBXC_X86_TSC_INFO = 0x08,
    STREAM_LIBXC_HVM_CONTEXT = 0x09,
    STREAM_LIBXC_HVM_PARAMS = 0x0a,
    STREAM_LIBXC_TOOLSTACK = 0x0b,
    STREAM_LIBXC_X86_PV_VCPU_MSRS = 0x0c,
    STREAM_LIBXC_VERIFY = 0x0d,
    STREAM_LIBXC_CHECKPOINT = 0x0e,
    STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST = 0x0f,
    STREAM_LIBXC_STATIC_DATA_END = 0x10,
    STREAM_LIBXC_X86_CPUID_POLICY = 0x11,
    STREAM_LIBXC_X86_MSR_POLICY = 0x12,
    /* Tandem's own, far outside Xen's range and mandatory, so that a reader
     * that does not know it fails instead of losing pages: PAGE_DATA with
     * the page data in one LZ4 block (docs/stream-extensions.md).  Written
     * only when both ends agreed on compression; the reader accepts it only
     * with stream_reader_opts.tandem_lz4. */
    STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4 = 0x100,
    /* Remus's checkpoint compression: dirty pages as the XOR against the
     * copy the primary sent last, run-length encoded (layout in
     * docs/stream-extensions.md).  Mandatory for the same reason as the lz4
     * record: a reader that skipped it would keep stale pages.  Accepted only
     * with stream_reader_opts.tandem_delta, in a Remus stream, after the
     * first checkpoint (the base copy must be one the secondary committed). */
    STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA = 0x101,
};
enum stream_libxl_type {
    STREAM_LIBXL_END = 0x00,
    STREAM_LIBXL_LIBXC_CONTEXT = 0x01,
    STREAM_LIBXL_EMULATOR_XENSTORE_DATA = 0x02,
    STREAM_LIBXL_EMULATOR_CONTEXT = 0x03,
    STREAM_LIBXL_CHECKPOINT_END = 0x04,
    STREAM_LIBXL_CHECKPOINT_STATE = 0x05,
    /* Tandem's own, mandatory, in the same range as the libxc ones. */
    /* Blocks of a guest disk (Remus disk replication): u32 disk, u32 flags
     * (0), u64 byte offset, u32 length, u32 reserved (0), data.  Only in a
     * Remus stream: before LIBXC_CONTEXT (the initial copy) or between a
     * CHECKPOINT and its CHECKPOINT_END. */
    STREAM_LIBXL_TANDEM_DISK_DATA = 0x100,
    /* The Remus back channel (secondary -> primary): {u64 epoch} after the
     * secondary committed that epoch.  Never in the forward stream. */
    STREAM_LIBXL_TANDEM_CHECKPOINT_ACK = 0x101,
};

/* PAGE_DATA: each pfn word carries its page type in bits 63-60
 * (XEN_DOMCTL_PFINFO_* >> 28); bits 59-52 are reserved.  Tandem writes
 * NORMAL (with data), XALLOC (no data) and, rarely, XTAB and BROKEN; the
 * page-table types 0x1-0x4 and 0x9-0xC are PV-only. */
enum stream_page_type {
    STREAM_PAGE_NORMAL = 0x0,
    STREAM_PAGE_BROKEN = 0xd,
    STREAM_PAGE_XALLOC = 0xe,
    STREAM_PAGE_XTAB = 0xf,
};
#define STREAM_PFN_MASK          ((1ULL << 52) - 1)
#define STREAM_PFN_TYPE_SHIFT    60

/* libxl stream header (big-endian). */
#define STREAM_LIBXL_IDENT       0x4c6962786c466d74ULL /* "LibxlFmt" */
#define STREAM_LIBXL_VERSION     2u
#define STREAM_LIBXL_OPT_BIG_ENDIAN 0x1u
#define STREAM_LIBXL_OPT_LEGACY  0x2u
#define STREAM_LIBXL_HEADER_SIZE 16u

/* EMULATOR_* records' emulator_id.  Tandem's device models use UNKNOWN
 * (Xen's verifier accepts only 0-2) and start their state with
 * STREAM_TANDEM_DM_MAGIC. */
#define STREAM_EMULATOR_UNKNOWN  0u
#define STREAM_EMULATOR_QEMU_TRADITIONAL 1u
#define STREAM_EMULATOR_QEMU_UPSTREAM 2u
#define STREAM_TANDEM_DM_MAGIC   "TandemDM"           /* 8 bytes, no NUL */
#define STREAM_TANDEM_DM_MAGIC_LEN 8u

/* CHECKPOINT_STATE control ids (COLO). */
enum stream_checkpoint_state {
    STREAM_CHECKPOINT_NEW = 0,            /* primary -> secondary */
    STREAM_CHECKPOINT_SVM_SUSPENDED = 1,  /* secondary -> primary */
    STREAM_CHECKPOINT_SVM_READY = 2,
    STREAM_CHECKPOINT_SVM_RESUMED = 3,
};

/* xl save-file header: magic, then u32 byteorder, mandatory_flags,
 * optional_flags, optional_data_len in host order (little-endian here),
 * then the optional data: u32 config length + the config (JSON text with
 * its NUL). */
#define STREAM_XL_MAGIC          "Xen saved domain, xl format\n \0 \r"
#define STREAM_XL_MAGIC_LEN      32u
#define STREAM_XL_BYTEORDER      0x01020304u
#define STREAM_XL_FLAG_JSON      0x1u
#define STREAM_XL_FLAG_STREAMV2  0x2u
#define STREAM_XL_HEADER_SIZE    48u                  /* without optional data */

/* ---- Bounds -------------------------------------------------------------
 * Nothing the reader allocates is sized by the stream beyond these; the
 * writer refuses to write what its reader would refuse. */
#define STREAM_MAX_BATCH         1024u   /* pages per PAGE_DATA, as Xen's MAX_BATCH_SIZE */
#define STREAM_MAX_PAGE_DATA_LEN (8u + 8u * STREAM_MAX_BATCH + STREAM_PAGE_SIZE * STREAM_MAX_BATCH)
/* TANDEM_PAGE_DATA_LZ4: the pfns, the block header and an LZ4 block no
 * larger than LZ4_COMPRESSBOUND() of a whole batch of data. */
#define STREAM_MAX_PAGE_DATA_LZ4_LEN (8u + 8u * STREAM_MAX_BATCH + 8u + \
                                      STREAM_PAGE_SIZE * STREAM_MAX_BATCH + \
                                      STREAM_PAGE_SIZE * STREAM_MAX_BATCH / 255u + 16u)
/* TANDEM_PAGE_DATA_DELTA: the pfns, a u32 length per page (and a u32 of
 * padding when the count is odd) and at most a page of encoding each (the
 * writer sends a page plain when its encoding would not be smaller). */
#define STREAM_MAX_PAGE_DATA_DELTA_LEN (8u + 8u * STREAM_MAX_BATCH + 4u * STREAM_MAX_BATCH + \
                                        STREAM_PAGE_SIZE * STREAM_MAX_BATCH)
/* TANDEM_DISK_DATA: the 24-byte header and up to 1 MiB of blocks. */
#define STREAM_DISK_DATA_HEADER  24u
#define STREAM_MAX_DISK_DATA     (1u << 20)
#define STREAM_MAX_DISKS         16u
#define STREAM_DISK_ALIGN        4096u               /* offsets: whole 4 KiB blocks */
/* A checkpoint ack as it travels: 8-byte header + {u64 epoch}. */
#define STREAM_CHECKPOINT_ACK_SIZE 16u
#define STREAM_MAX_HVM_CONTEXT   (8u << 20)
#define STREAM_MAX_HVM_PARAMS    1024u
#define STREAM_MAX_CPUID_LEAVES  1024u
#define STREAM_MAX_MSRS          1024u
#define STREAM_MAX_DIRTY_PFNS    (16u << 20)          /* 128 MiB of pfns: Xen's REC_LENGTH_MAX */
#define STREAM_MAX_EMULATOR_CONTEXT (32u << 20)
#define STREAM_MAX_XENSTORE_DATA (1u << 20)
#define STREAM_MAX_XL_OPTIONAL_DATA (1u << 20)
#define STREAM_MAX_SKIPPED_RECORD (128u << 20)        /* optional records we skip */

/* ---- Record contents, decoded ----------------------------------------- */

struct stream_tsc_info {
    uint32_t mode;              /* Xen's TSC_MODE_*; 0 = default */
    uint32_t khz;
    uint64_t nsec;
    uint32_t incarnation;
};

struct stream_hvm_param {
    uint64_t index;             /* HVM_PARAM_* */
    uint64_t value;
};

/* The libxc image and domain headers together. */
struct stream_libxc_header {
    uint32_t version;           /* 2 or 3 */
    uint16_t options;
    uint32_t domain_type;       /* STREAM_DOMAIN_* */
    uint16_t page_shift;
    uint32_t xen_major, xen_minor;   /* of the saving side; Tandem's own release */
};

struct stream_libxl_header {
    uint32_t version;
    uint32_t options;
};

struct stream_xl_header {
    uint32_t mandatory_flags;   /* STREAM_XL_FLAG_* */
    uint32_t optional_flags;
    uint32_t optional_data_len;
    const char *config;         /* NUL-terminated, inside the record; NULL if none */
    uint32_t config_len;        /* without the NUL */
};

/* ---- Output sink: buffered, write-all, EINTR-safe ---------------------- */

struct stream_sink;
/* The sink never closes fd.  Writes to a pipe whose reader went away fail
 * with -EPIPE only if the program ignores SIGPIPE. */
int stream_sink_new(int fd, const struct tlog *log, struct stream_sink **out);
/* Frees without flushing: call stream_sink_flush() first to keep data. */
void stream_sink_free(struct stream_sink *s);
int stream_sink_write(struct stream_sink *s, const void *buf, size_t len);
int stream_sink_flush(struct stream_sink *s);
/* Flush, then fsync(2) if fd is a file (pipes and sockets need none). */
int stream_sink_sync(struct stream_sink *s);
/* Bytes written so far, buffered ones included. */
uint64_t stream_sink_offset(const struct stream_sink *s);

/* ---- Writer ---------------------------------------------------------------
 * One function per record; each writes header, body and padding.  They
 * check their arguments against the format and the bounds above, never
 * the order of records, which is the caller's (the layout the reader
 * checks is in docs/stream-extensions.md). */

/* xl save-file header; config_json (may be NULL: no config) is stored with
 * its NUL and XL_MANDATORY_FLAG_JSON, as xl does. */
int stream_write_xl_header(struct stream_sink *s, const char *config_json);

int stream_write_libxl_header(struct stream_sink *s);
/* The marker after which the libxc image follows, inline. */
int stream_write_libxc_context(struct stream_sink *s);
/* A Tandem device model's state: {UNKNOWN, index} + "TandemDM" + state. */
int stream_write_emulator_context(struct stream_sink *s, uint32_t index,
                                  const void *state, size_t len);
int stream_write_checkpoint_end(struct stream_sink *s);
int stream_write_checkpoint_state(struct stream_sink *s, uint32_t control_id);
int stream_write_libxl_end(struct stream_sink *s);

/* Image header (version 3, little-endian) and x86 HVM domain header. */
int stream_write_libxc_header(struct stream_sink *s, uint32_t xen_major, uint32_t xen_minor);
/* The same with version 2 or 3 (-EINVAL otherwise).  A v2 image must not
 * carry STATIC_DATA_END nor the CPUID/MSR policy records: the caller
 * leaves them out. */
int stream_write_libxc_header_version(struct stream_sink *s, uint32_t version, uint32_t xen_major,
                                      uint32_t xen_minor);
/* count (1..STREAM_MAX_BATCH) pages: pfns[i] < 2^52, types[i] one of
 * enum stream_page_type, pages[i] a page of data for NORMAL pages (ignored,
 * may be NULL, for the others). */
int stream_write_page_data(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                           const uint8_t *types, const void *const *pages);
/* The same pages as one TANDEM_PAGE_DATA_LZ4 record: the data of the
 * NORMAL pages, concatenated, as one LZ4 block.  A batch goes as a plain
 * PAGE_DATA instead when it has no data, when none of up to 8 of its data
 * pages (evenly spread) shrinks by an eighth alone (random-looking memory:
 * not worth a try), or when its block would not be smaller than the data.
 * Only for a receiver that agreed to compression; the sink keeps the
 * buffers (8 MiB) until it is freed. */
int stream_write_page_data_lz4(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                               const uint8_t *types, const void *const *pages);
/* Whether a page is all zeros (a candidate for XALLOC). */
bool stream_page_is_zero(const void *page);
int stream_write_tsc_info(struct stream_sink *s, const struct stream_tsc_info *t);
/* These three write nothing when n is 0: the spec asks that data records
 * with no content be left out. */
int stream_write_hvm_params(struct stream_sink *s, const struct stream_hvm_param *p, unsigned n);
int stream_write_hvm_context(struct stream_sink *s, const void *blob, size_t len);
int stream_write_cpuid_policy(struct stream_sink *s, const xen_cpuid_leaf_t *l, unsigned n);
int stream_write_msr_policy(struct stream_sink *s, const xen_msr_entry_t *m, unsigned n);
int stream_write_static_data_end(struct stream_sink *s);
int stream_write_verify(struct stream_sink *s);
int stream_write_checkpoint(struct stream_sink *s);
/* TANDEM_PAGE_DATA_DELTA: count (1..STREAM_MAX_BATCH) pages, each pfns[i]
 * with enc[i] of enc_len[i] bytes (1..STREAM_PAGE_SIZE) made by
 * stream_delta_encode(). */
int stream_write_page_delta(struct stream_sink *s, unsigned count, const uint64_t *pfns,
                            const uint8_t *const *enc, const uint32_t *enc_len);
/* TANDEM_DISK_DATA: len (1..STREAM_MAX_DISK_DATA) bytes of disk `disk` at
 * byte `offset` (a multiple of STREAM_DISK_ALIGN). */
int stream_write_disk_data(struct stream_sink *s, uint32_t disk, uint64_t offset, const void *data,
                           uint32_t len);
/* The Remus back channel's ack, a whole libxl-format record. */
int stream_write_checkpoint_ack(struct stream_sink *s, uint64_t epoch);
/* COLO's back channel (secondary -> primary). */
int stream_write_dirty_pfn_list(struct stream_sink *s, const uint64_t *pfns, unsigned n);
int stream_write_libxc_end(struct stream_sink *s);

/* ---- Reader ---------------------------------------------------------------- */

enum stream_layer {
    STREAM_LAYER_XL,            /* xl save file: header, then a libxl stream */
    STREAM_LAYER_LIBXL,         /* libxl stream: header, records, libxc image inline */
    STREAM_LAYER_LIBXC,         /* libxc image: headers, records */
};

enum stream_checkpoints {
    STREAM_PLAIN,               /* no CHECKPOINT records: save and migration */
    STREAM_REMUS,               /* epochs: CHECKPOINT .. CHECKPOINT_END */
    STREAM_COLO,                /* as Remus, and CHECKPOINT_STATE NEW after each CHECKPOINT_END */
};

struct stream_reader_opts {
    enum stream_layer start;    /* what the bytes begin with */
    enum stream_checkpoints checkpoints;
    uint64_t max_pfn;           /* every pfn must be below it; 0 = any 52-bit pfn
                                 * (see stream_reader_set_max_pfn) */
    /* For inspection tools, never for restore: also accept what Xen's own
     * tools write but Tandem cannot restore -- QEMU's device-model state
     * and HVM_CONTEXT ahead of HVM_PARAMS (Xen's saver writes them in that
     * order despite the spec). */
    bool xen_made;
    /* Accept TANDEM_PAGE_DATA_LZ4 (compressed page data): for a receiver
     * that asked the sender for compression, and for inspection tools.
     * Without it such a record is an unknown mandatory one (-EOPNOTSUPP). */
    bool tandem_lz4;
    /* Accept TANDEM_PAGE_DATA_DELTA (Remus checkpoint compression; only with
     * checkpoints == STREAM_REMUS).  Without it: -EOPNOTSUPP. */
    bool tandem_delta;
    /* Reading an fd: no byte for this long fails the read with -ETIMEDOUT
     * (sticky, as every error); 0 = wait for ever. */
    unsigned timeout_ms;
    const struct tlog *log;
};

/* One item of the stream: a layer's header or one of its records. */
struct stream_record {
    enum stream_layer layer;
    bool header;                /* the layer's header, not a record */
    bool inferred;              /* a v2 image's STATIC_DATA_END, not in the bytes */
    bool last;                  /* the END of the outermost layer: the stream is over */
    uint32_t type;              /* enum stream_libxc_type / stream_libxl_type; 0 for headers */
    uint32_t length;            /* body bytes (for headers, the header's bytes) */
    const uint8_t *body;        /* valid until the next read or free */
    uint64_t offset;            /* where the header or record starts in the bytes */
    /* TANDEM_PAGE_DATA_LZ4: its pages' data, decompressed by the reader
     * (valid until the next read or free); NULL and 0 for other records. */
    const uint8_t *page_data;
    uint32_t page_data_len;
};

struct stream_reader;
/* The reader never closes fd. */
int stream_reader_new(int fd, const struct stream_reader_opts *o, struct stream_reader **out);
/* Reads from memory instead of an fd (tests, fuzzing, tools). */
int stream_reader_new_mem(const void *buf, size_t len, const struct stream_reader_opts *o,
                          struct stream_reader **out);
void stream_reader_free(struct stream_reader *r);
/* Sets the bound for pfns once it is known, e.g. after the xl header's
 * config has made the domain. */
void stream_reader_set_max_pfn(struct stream_reader *r, uint64_t max_pfn);
/* Changes the wait for bytes (opts.timeout_ms; 0 = wait for ever) from the
 * next read on, e.g. a long one until a Remus replica first commits and
 * the per-epoch one after. */
void stream_reader_set_timeout(struct stream_reader *r, unsigned timeout_ms);
/* Reads and validates the next header or record.  Optional records (bit
 * 31) are skipped with a note in the log.  After the record with .last,
 * further reads fail with -ENODATA. */
int stream_read_record(struct stream_reader *r, struct stream_record *rec);
/* Bytes consumed so far. */
uint64_t stream_reader_offset(const struct stream_reader *r);
/* The headers read so far (NULL until read). */
const struct stream_libxc_header *stream_reader_libxc_header(const struct stream_reader *r);
const struct stream_xl_header *stream_reader_xl_header(const struct stream_reader *r);

/* ---- Decoding a record's body -------------------------------------------
 * These check lengths (records from stream_read_record have passed every
 * check already) and return -EINVAL for a body of the wrong shape. */
int stream_decode_xl_header(const struct stream_record *rec, struct stream_xl_header *h);
int stream_decode_libxl_header(const struct stream_record *rec, struct stream_libxl_header *h);
int stream_decode_libxc_header(const struct stream_record *rec, struct stream_libxc_header *h);
/* PAGE_DATA or TANDEM_PAGE_DATA_LZ4, into arrays of at least
 * STREAM_MAX_BATCH entries; data[i] is NULL for pages without data, and
 * for a compressed record points into rec->page_data. */
int stream_decode_page_data(const struct stream_record *rec, unsigned *count, uint64_t *pfns,
                            uint8_t *types, const uint8_t **data);
int stream_decode_tsc_info(const struct stream_record *rec, struct stream_tsc_info *t);
/* *out is malloc'd (NULL when n is 0). */
int stream_decode_hvm_params(const struct stream_record *rec, struct stream_hvm_param **out, unsigned *n);
int stream_decode_cpuid_policy(const struct stream_record *rec, xen_cpuid_leaf_t **out, unsigned *n);
int stream_decode_msr_policy(const struct stream_record *rec, xen_msr_entry_t **out, unsigned *n);
int stream_decode_dirty_pfn_list(const struct stream_record *rec, uint64_t **out, unsigned *n);
/* EMULATOR_CONTEXT or EMULATOR_XENSTORE_DATA: state points past the
 * "TandemDM" magic when the state is Tandem's (then *tandem is true), else
 * at the bytes after the emulator header. */
int stream_decode_emulator_context(const struct stream_record *rec, uint32_t *emulator_id,
                                   uint32_t *index, bool *tandem, const uint8_t **state,
                                   size_t *len);
int stream_decode_checkpoint_state(const struct stream_record *rec, uint32_t *control_id);
/* TANDEM_PAGE_DATA_DELTA into arrays of at least STREAM_MAX_BATCH entries:
 * enc[i] points into the body; apply each with stream_delta_apply(). */
int stream_decode_page_delta(const struct stream_record *rec, unsigned *count, uint64_t *pfns,
                             const uint8_t **enc, uint32_t *enc_len);
int stream_decode_disk_data(const struct stream_record *rec, uint32_t *disk, uint64_t *offset,
                            const uint8_t **data, uint32_t *len);
/* A back-channel ack: exactly STREAM_CHECKPOINT_ACK_SIZE bytes as read from
 * the fd.  -EINVAL (logged, naming what is wrong) for anything else. */
int stream_parse_checkpoint_ack(const uint8_t rec[STREAM_CHECKPOINT_ACK_SIZE], uint64_t *epoch,
                                const struct tlog *log);

/* ---- Checkpoint compression (TANDEM_PAGE_DATA_DELTA) -----------------------
 * A page's delta is old XOR new, run-length encoded: byte c < 0x80 stands for
 * c + 1 zero bytes, byte c >= 0x80 is followed by c - 0x7f literal bytes;
 * the codes cover exactly one page. */
/* Encodes into out (room for STREAM_PAGE_SIZE bytes); returns the length,
 * or 0 when the encoding would not be smaller than a page (send it plain). */
uint32_t stream_delta_encode(const void *old_page, const void *new_page, uint8_t *out);
/* Whether enc is a well-formed encoding of exactly one page. */
bool stream_delta_valid(const uint8_t *enc, uint32_t len);
/* XORs the delta into page (old -> new); -EINVAL, changing nothing, when
 * enc is malformed. */
int stream_delta_apply(uint8_t *page, const uint8_t *enc, uint32_t len);

/* ---- Names and printers ---------------------------------------------------- */

/* "PAGE_DATA", "EMULATOR_CONTEXT" ...; NULL for types the layer lacks. */
const char *stream_record_name(enum stream_layer layer, uint32_t type);
const char *stream_layer_name(enum stream_layer layer);   /* "xl", "libxl", "libxc" */
const char *stream_page_type_name(unsigned type);          /* "NORMAL", "XALLOC" ... */
/* Name of an HVM save record typecode (xen/arch-x86/hvm/save.h): "CPU",
 * "LAPIC_REGS" ...; NULL for unknown ones and Tandem's (>= 0x80). */
const char *stream_hvm_typecode_name(unsigned typecode);

/* One line: offset, layer, name and the gist ("1024 pfns: 0x0-0x3ff ..."). */
int stream_print_summary(FILE *f, const struct stream_record *rec);
/* The summary line, then the body decoded field by field: HVM_CONTEXT's
 * save records (registers, LAPIC, PIT, IOAPIC ...), CPUID leaves, MSRs,
 * pfn ranges per page type, HVM params ... */
int stream_print_detail(FILE *f, const struct stream_record *rec);

#endif
