/* Fuzz target for the stream reader (streams/): arbitrary bytes read as an
 * xl save file, a libxl stream and a libxc image, plain and checkpointed,
 * with and without Tandem's lz4-compressed page records and Remus's page
 * deltas accepted.
 * Nothing may crash or read out of bounds; every failure must log a
 * message naming an offset; every record the reader hands out must decode
 * and print; after the final END, reads must fail with -ENODATA. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/log.h"
#include "tandem/streams.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_log {
    struct tlog log;
    char error[1024];
};

static void log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct fuzz_log *l = opaque;

    if (level == TLOG_ERROR)
        snprintf(l->error, sizeof(l->error), "%s", msg);
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_stream: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* A record the reader passed must decode as its type says. */
static void decode(const struct stream_record *rec)
{
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *pages[STREAM_MAX_BATCH];
    unsigned n;
    int e = 0;

    if (rec->header) {
        struct stream_xl_header xh;
        struct stream_libxl_header lh;
        struct stream_libxc_header ch;
        switch (rec->layer) {
        case STREAM_LAYER_XL: e = stream_decode_xl_header(rec, &xh); break;
        case STREAM_LAYER_LIBXL: e = stream_decode_libxl_header(rec, &lh); break;
        case STREAM_LAYER_LIBXC: e = stream_decode_libxc_header(rec, &ch); break;
        }
    } else if (rec->layer == STREAM_LAYER_LIBXC) {
        switch (rec->type) {
        case STREAM_LIBXC_PAGE_DATA:
            e = stream_decode_page_data(rec, &n, pfns, types, pages);
            for (unsigned i = 0; !e && i < n; i++)
                if (pages[i] && (pages[i] < rec->body ||
                                 pages[i] + STREAM_PAGE_SIZE > rec->body + rec->length))
                    fail("page data outside the record", NULL);
            break;
        case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4: {
            /* The data is the reader's decompressed copy, every byte of it. */
            uint32_t with_data = 0;
            e = stream_decode_page_data(rec, &n, pfns, types, pages);
            for (unsigned i = 0; !e && i < n; i++) {
                if (!pages[i])
                    continue;
                if (pages[i] != rec->page_data + (size_t)STREAM_PAGE_SIZE * with_data++)
                    fail("compressed page data not in the reader's buffer, in order", NULL);
                if ((size_t)STREAM_PAGE_SIZE * with_data > rec->page_data_len)
                    fail("compressed page data beyond the decompressed bytes", NULL);
            }
            if (!e && (!with_data || (size_t)STREAM_PAGE_SIZE * with_data != rec->page_data_len))
                fail("a compressed record whose data is not its pages'", NULL);
            break;
        }
        case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA: {
            /* Every delta the reader passed applies to a page. */
            const uint8_t *enc[STREAM_MAX_BATCH];
            uint32_t enc_len[STREAM_MAX_BATCH];
            uint8_t page[STREAM_PAGE_SIZE] = { 0 };
            e = stream_decode_page_delta(rec, &n, pfns, enc, enc_len);
            for (unsigned i = 0; !e && i < n; i++) {
                if (enc[i] < rec->body || enc[i] + enc_len[i] > rec->body + rec->length)
                    fail("a delta outside the record", NULL);
                if (stream_delta_apply(page, enc[i], enc_len[i]))
                    fail("a delta the reader passed does not apply", NULL);
            }
            break;
        }
        case STREAM_LIBXC_X86_TSC_INFO: {
            struct stream_tsc_info t;
            e = stream_decode_tsc_info(rec, &t);
            break;
        }
        case STREAM_LIBXC_HVM_PARAMS: {
            struct stream_hvm_param *p;
            e = stream_decode_hvm_params(rec, &p, &n);
            free(p);
            break;
        }
        case STREAM_LIBXC_X86_CPUID_POLICY: {
            xen_cpuid_leaf_t *l;
            e = stream_decode_cpuid_policy(rec, &l, &n);
            free(l);
            break;
        }
        case STREAM_LIBXC_X86_MSR_POLICY: {
            xen_msr_entry_t *m;
            e = stream_decode_msr_policy(rec, &m, &n);
            free(m);
            break;
        }
        }
    } else if (rec->type == STREAM_LIBXL_EMULATOR_CONTEXT ||
               rec->type == STREAM_LIBXL_EMULATOR_XENSTORE_DATA) {
        uint32_t id, index;
        bool tandem;
        const uint8_t *state;
        size_t len;
        e = stream_decode_emulator_context(rec, &id, &index, &tandem, &state, &len);
    } else if (rec->type == STREAM_LIBXL_CHECKPOINT_STATE) {
        uint32_t id;
        e = stream_decode_checkpoint_state(rec, &id);
    } else if (rec->type == STREAM_LIBXL_TANDEM_DISK_DATA) {
        uint32_t disk, len;
        uint64_t off;
        const uint8_t *d;
        e = stream_decode_disk_data(rec, &disk, &off, &d, &len);
        if (!e && (disk >= STREAM_MAX_DISKS || off % STREAM_DISK_ALIGN || d + len > rec->body + rec->length))
            fail("a disk record the reader passed is out of bounds", NULL);
    } else if (rec->type == STREAM_LIBXL_TANDEM_CHECKPOINT_ACK) {
        fail("an ack in the forward stream", NULL);
    }
    if (e)
        fail("a record the reader accepted does not decode",
             stream_record_name(rec->layer, rec->type));
}

static void read_stream(const uint8_t *data, size_t size, enum stream_layer start,
                        enum stream_checkpoints cp, uint64_t max_pfn, bool xen_made, bool lz4,
                        bool delta, FILE *out)
{
    struct fuzz_log l = { .log = { log_fn, NULL, TLOG_ERROR } };
    struct stream_reader_opts o = { .start = start, .checkpoints = cp, .max_pfn = max_pfn,
                                    .xen_made = xen_made, .tandem_lz4 = lz4, .tandem_delta = delta,
                                    .log = &l.log };
    struct stream_reader *r;
    struct stream_record rec;
    int e;

    l.log.opaque = &l;
    if (stream_reader_new_mem(data, size, &o, &r))
        fail("stream_reader_new_mem failed", NULL);
    for (;;) {
        uint64_t before = stream_reader_offset(r);
        l.error[0] = 0;
        e = stream_read_record(r, &rec);
        if (e) {
            if (e != -EPIPE && e != -EINVAL && e != -EOPNOTSUPP && e != -E2BIG && e != -ERANGE)
                fail("unexpected errno", strerror(-e));
            if (!strstr(l.error, " at offset 0x"))
                fail("an error without a message naming its offset", l.error);
            if (stream_read_record(r, &rec) != e)
                fail("an error that did not stick", NULL);
            break;
        }
        if (stream_reader_offset(r) > size || stream_reader_offset(r) < before ||
            rec.offset > stream_reader_offset(r) ||
            (!rec.inferred && rec.offset + rec.length > stream_reader_offset(r)))
            fail("offsets out of order", NULL);
        if (rec.length && !rec.body)
            fail("a body without bytes", NULL);
        if (rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4 && !rec.header &&
            rec.layer == STREAM_LAYER_LIBXC && !lz4)
            fail("a compressed page record the reader was not set to accept", NULL);
        if (rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA && !rec.header &&
            rec.layer == STREAM_LAYER_LIBXC && (!delta || cp != STREAM_REMUS))
            fail("a page delta the reader was not set to accept", NULL);
        if (rec.type == STREAM_LIBXL_TANDEM_DISK_DATA && !rec.header && rec.layer == STREAM_LAYER_LIBXL &&
            cp != STREAM_REMUS)
            fail("disk blocks outside a Remus stream", NULL);
        decode(&rec);
        if (stream_print_detail(out, &rec) || stream_print_summary(out, &rec))
            fail("printing failed", NULL);
        if (rec.last) {
            if (stream_read_record(r, &rec) != -ENODATA)
                fail("a read after the final END did not fail", NULL);
            break;
        }
    }
    stream_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *out;
    static const enum stream_layer starts[] = { STREAM_LAYER_XL, STREAM_LAYER_LIBXL,
                                                STREAM_LAYER_LIBXC };
    static const enum stream_checkpoints cps[] = { STREAM_PLAIN, STREAM_REMUS, STREAM_COLO };

    if (!out && !(out = fopen("/dev/null", "w")))
        fail("cannot open /dev/null", NULL);
    /* lz4 in four of the nine modes, among them each layer and each kind
     * of checkpointing once; Remus's deltas in every mode but the first
     * libxl one (where they must be refused), and once more with lz4 off. */
    for (unsigned i = 0; i < 3; i++)
        for (unsigned j = 0; j < 3; j++)
            read_stream(data, size, starts[i], cps[j], (i + j) % 2 ? 0x100 : 0, j == 2,
                        i == j || (i == 1 && j == 0), !(i == 1 && j == 0), out);
    read_stream(data, size, STREAM_LAYER_LIBXL, STREAM_REMUS, 0, false, false, false, out);
    return 0;
}
