/* Unit tests of the stream-format layer (streams/): writer and reader
 * round trips for every record, v2 images, checkpointed streams, pipes,
 * and a table of malformed streams, each of which must fail with the right
 * errno and a message naming the record and its offset; Tandem's
 * lz4-compressed page records (TANDEM_PAGE_DATA_LZ4), well-formed and not.
 *
 * With TANDEM_STREAM_IMAGES=DIR set, test_write_images also leaves sample
 * images in DIR (libxc.img, libxl.img, xl.img, for Xen's verify-stream-v2)
 * and fuzz seeds in DIR/seeds/. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lz4.h>

#include "check_main.h"
#include "tandem/log.h"
#include "tandem/streams.h"

/* ---- A logger that keeps the last error and every message ------------ */

struct test_log {
    struct tlog log;
    char error[1024];
    char all[16384];
    size_t used;
};

static void test_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct test_log *t = opaque;
    int n;

    if (level == TLOG_ERROR)
        snprintf(t->error, sizeof(t->error), "%s", msg);
    n = snprintf(t->all + t->used, sizeof(t->all) - t->used, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof(t->all) - t->used)
        t->used += (size_t)n;
}

static void test_log_init(struct test_log *t)
{
    memset(t, 0, sizeof(*t));
    t->log.fn = test_log_fn;
    t->log.opaque = t;
    t->log.min_level = TLOG_DEBUG;
}

/* ---- Building streams ---------------------------------------------------- */

#define TEST_CONFIG "{\"c_info\":{\"name\":\"g1\",\"type\":\"hvm\"},\"b_info\":{\"max_memkb\":65536}}"

static uint8_t page_a[STREAM_PAGE_SIZE], page_b[STREAM_PAGE_SIZE];
/* Pages lz4 cannot shrink. */
static uint8_t page_r[2][STREAM_PAGE_SIZE];

static void fill_pages(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    for (unsigned i = 0; i < STREAM_PAGE_SIZE; i++) {
        page_a[i] = (uint8_t)(i * 7 + 1);
        page_b[i] = (uint8_t)(0xff - i);
    }
    for (unsigned p = 0; p < 2; p++)
        for (unsigned i = 0; i < STREAM_PAGE_SIZE; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(&page_r[p][i], &x, 8);
        }
}

/* A raw record for the plan step "CU" (what the writer will not make). */
static struct {
    uint32_t type;
    uint8_t *body;
    uint32_t len;
} custom;

static const xen_cpuid_leaf_t test_leaves[] = {
    { 0x0, XEN_CPUID_NO_SUBLEAF, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69 },
    { 0x1, XEN_CPUID_NO_SUBLEAF, 0x000806ec, 0x00010800, 0xfffa3223, 0x0f8bfbff },
    { 0x7, 0, 0, 0x009c27ab, 0, 0xbc000400 },
};
static const xen_msr_entry_t test_msrs[] = {
    { 0xce, 0, 0x0000000080000000ULL },
    { 0x10a, 0, 0x0c000064ULL },
};
static const struct stream_hvm_param test_params[] = {
    { 12, 0xfeffc000 },         /* IDENT_PT */
    { 37, 0xfeff9000 },         /* VM86_TSS_SIZED */
    { 36, 0 },                  /* X87_FIP_WIDTH */
};
static const struct stream_tsc_info test_tsc = { 0, 2999998, 123456789012ULL, 3 };
static const uint8_t test_dm_state[40] = "uart: lcr=03 ier=00 dll=01 ...........";

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Appends one HVM save record (descriptor + body) to blob at *off. */
static void hvm_rec(uint8_t *blob, size_t *off, uint16_t code, uint16_t inst,
                    const void *body, uint32_t len)
{
    put16(blob + *off, code);
    put16(blob + *off + 2, inst);
    put32(blob + *off + 4, len);
    if (len)
        memcpy(blob + *off + 8, body, len);
    *off += 8 + len;
}

/* An HVM context as the xen/ layer makes it: Xen's records from save.h,
 * one Tandem extension record (typecode 0x80, 3 bytes, so that the blob's
 * length is not a multiple of 8), END.  `small` leaves out the big ones. */
static size_t make_hvm_context(uint8_t *blob, bool small)
{
    uint8_t body[1100];
    size_t off = 0;

    memset(body, 0, sizeof(body));
    put32(body, 0x54381286);                 /* HEADER: HVM_FILE_MAGIC */
    put32(body + 4, 1);
    put32(body + 20, 2999998);
    hvm_rec(blob, &off, 1, 0, body, 24);

    memset(body, 0, sizeof(body));           /* CPU: struct hvm_hw_cpu, 1032 bytes */
    put64(body + 512 + 7 * 8, 0x7ff0);       /* rsp */
    put64(body + 512 + 16 * 8, 0x100000);    /* rip */
    put64(body + 512 + 17 * 8, 0x2);         /* rflags */
    put64(body + 512 + 18 * 8, 0x80050033);  /* cr0 */
    put64(body + 512 + 20 * 8, 0x1000);      /* cr3 */
    put64(body + 512 + 21 * 8, 0x20);        /* cr4 */
    hvm_rec(blob, &off, 2, 0, body, 1032);

    memset(body, 0, sizeof(body));           /* LAPIC */
    put64(body, 0xfee00900);
    hvm_rec(blob, &off, 5, 0, body, 24);
    if (!small) {
        memset(body, 0, sizeof(body));       /* LAPIC_REGS */
        put32(body + 0xf0, 0x1ff);
        put32(body + 0x380, 100000);
        put32(body + 0x200 + 0x10, 1u << 16);   /* vector 0x30 requested */
        hvm_rec(blob, &off, 6, 0, body, 1024);
        memset(body, 0, sizeof(body));       /* IOAPIC, 24 pins, pin 2 unmasked */
        put64(body, 0xfec00000);
        for (int i = 0; i < 24; i++)
            put64(body + 16 + 8 * i, i == 2 ? 0x30 : 0x10000);
        hvm_rec(blob, &off, 4, 0, body, 16 + 24 * 8);
    }
    memset(body, 0, sizeof(body));           /* PIT */
    put32(body, 0x10000);
    body[13] = 2;                            /* channel 0 mode */
    hvm_rec(blob, &off, 10, 0, body, 56);
    hvm_rec(blob, &off, 0x80, 0, "kvm", 3);  /* a Tandem extension */
    hvm_rec(blob, &off, 0, 0, NULL, 0);      /* END */
    return off;
}

struct built {
    uint8_t *bytes;
    size_t len;
    uint64_t off[64];            /* offset of each step of the plan */
    int steps;
};

static void built_free(struct built *b)
{
    free(b->bytes);
    b->bytes = NULL;
}

/* Writes raw bytes as one record (for what the writer will not make). */
static int write_raw_record(struct stream_sink *s, uint32_t type, const void *body, uint32_t len)
{
    uint8_t h[8], zeros[8] = { 0 };
    int r;

    memcpy(h, &type, 4);
    memcpy(h + 4, &len, 4);
    r = stream_sink_write(s, h, 8);
    if (!r && len)
        r = stream_sink_write(s, body, len);
    if (!r)
        r = stream_sink_write(s, zeros, (8 - len % 8) % 8);
    return r;
}

/* Builds a stream from a plan: space-separated steps, each one header or
 * record made by the writer (see the switch).  `small` keeps pages and
 * HVM context small (fuzz seeds). */
static void build(struct built *b, const char *plan, bool small)
{
    char buf[512], *save = NULL, *tok;
    struct stream_sink *s;
    struct test_log tl;
    uint8_t blob[4096];
    int fd = memfd_create("stream", 0), r = 0;

    test_log_init(&tl);
    fill_pages();
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(stream_sink_new(fd, &tl.log, &s), 0);
    memset(b, 0, sizeof(*b));
    snprintf(buf, sizeof(buf), "%s", plan);
    for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        ck_assert_int_lt(b->steps, 64);
        b->off[b->steps++] = stream_sink_offset(s);
        if (!strcmp(tok, "XH")) {
            r = stream_write_xl_header(s, TEST_CONFIG);
        } else if (!strcmp(tok, "LH")) {
            r = stream_write_libxl_header(s);
        } else if (!strcmp(tok, "LC")) {
            r = stream_write_libxc_context(s);
        } else if (!strcmp(tok, "EM")) {
            r = stream_write_emulator_context(s, 0, test_dm_state, sizeof(test_dm_state));
        } else if (!strcmp(tok, "XS")) {
            static const uint8_t xs[] = { 0, 0, 0, 0, 0, 0, 0, 0, 'k', 'e', 'y', 0, 'v', 0 };
            r = write_raw_record(s, STREAM_LIBXL_EMULATOR_XENSTORE_DATA, xs, sizeof(xs));
        } else if (!strcmp(tok, "CE")) {
            r = stream_write_checkpoint_end(s);
        } else if (!strcmp(tok, "CS")) {
            r = stream_write_checkpoint_state(s, STREAM_CHECKPOINT_NEW);
        } else if (!strcmp(tok, "LE")) {
            r = stream_write_libxl_end(s);
        } else if (!strcmp(tok, "IH")) {
            r = stream_write_libxc_header(s, TANDEM_VERSION_MAJOR, TANDEM_VERSION_MINOR);
        } else if (!strcmp(tok, "CP")) {
            r = stream_write_cpuid_policy(s, test_leaves, 3);
        } else if (!strcmp(tok, "MP")) {
            r = stream_write_msr_policy(s, test_msrs, 2);
        } else if (!strcmp(tok, "SD")) {
            r = stream_write_static_data_end(s);
        } else if (!strcmp(tok, "PD")) {
            /* 0x10-0x11 with data, 0x12-0x13 XALLOC, 0x14 XTAB, 0x15 BROKEN */
            uint64_t pfns[] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15 };
            uint8_t types[] = { STREAM_PAGE_NORMAL, STREAM_PAGE_NORMAL, STREAM_PAGE_XALLOC,
                                STREAM_PAGE_XALLOC, STREAM_PAGE_XTAB, STREAM_PAGE_BROKEN };
            const void *pages[] = { page_a, page_b, NULL, NULL, NULL, NULL };
            if (small)
                types[1] = STREAM_PAGE_XALLOC;
            r = stream_write_page_data(s, 6, pfns, types, pages);
        } else if (!strcmp(tok, "PL")) {
            /* Compressed: 0x20 and 0x22 with data, 0x21 XALLOC, 0x23 XTAB. */
            uint64_t pfns[] = { 0x20, 0x21, 0x22, 0x23 };
            uint8_t types[] = { STREAM_PAGE_NORMAL, STREAM_PAGE_XALLOC, STREAM_PAGE_NORMAL,
                                STREAM_PAGE_XTAB };
            const void *pages[] = { page_a, NULL, page_b, NULL };
            r = stream_write_page_data_lz4(s, 4, pfns, types, pages);
        } else if (!strcmp(tok, "PR")) {
            /* Through the lz4 writer, but incompressible: a plain PAGE_DATA. */
            uint64_t pfns[] = { 0x30, 0x31, 0x32 };
            uint8_t types[] = { STREAM_PAGE_NORMAL, STREAM_PAGE_XALLOC, STREAM_PAGE_NORMAL };
            const void *pages[] = { page_r[0], NULL, page_r[1] };
            if (small)
                types[2] = STREAM_PAGE_XALLOC;
            r = stream_write_page_data_lz4(s, 3, pfns, types, pages);
        } else if (!strcmp(tok, "PB")) {
            /* A whole batch, compressed: 0x1000-0x13ff, every page with data. */
            uint64_t pfns[STREAM_MAX_BATCH];
            uint8_t types[STREAM_MAX_BATCH];
            const void *pages[STREAM_MAX_BATCH];
            for (unsigned i = 0; i < STREAM_MAX_BATCH; i++) {
                pfns[i] = 0x1000 + i;
                types[i] = STREAM_PAGE_NORMAL;
                pages[i] = i % 3 ? page_a : i % 2 ? page_b : page_r[i % 4 / 2];
            }
            r = stream_write_page_data_lz4(s, STREAM_MAX_BATCH, pfns, types, pages);
        } else if (!strcmp(tok, "CU")) {
            r = write_raw_record(s, custom.type, custom.body, custom.len);
        } else if (!strcmp(tok, "PZ")) {
            /* A batch of zero pages: 0x0-0x9f and 0x100-0x15f, XALLOC. */
            uint64_t pfns[256];
            uint8_t types[256];
            const void *pages[256] = { NULL };
            for (unsigned i = 0; i < 256; i++) {
                pfns[i] = i < 160 ? i : 0x100 + i - 160;
                types[i] = STREAM_PAGE_XALLOC;
            }
            r = stream_write_page_data(s, 256, pfns, types, pages);
        } else if (!strcmp(tok, "TS")) {
            r = stream_write_tsc_info(s, &test_tsc);
        } else if (!strcmp(tok, "HP")) {
            r = stream_write_hvm_params(s, test_params, 3);
        } else if (!strcmp(tok, "HC")) {
            size_t n = make_hvm_context(blob, small);
            r = stream_write_hvm_context(s, blob, n);
        } else if (!strcmp(tok, "VF")) {
            r = stream_write_verify(s);
        } else if (!strcmp(tok, "CK")) {
            r = stream_write_checkpoint(s);
        } else if (!strcmp(tok, "DL")) {
            uint64_t pfns[] = { 1, 2, 3, 9 };
            r = stream_write_dirty_pfn_list(s, pfns, 4);
        } else if (!strcmp(tok, "OP")) {
            r = write_raw_record(s, STREAM_REC_OPTIONAL | 0x1234, "hello", 5);
        } else if (!strcmp(tok, "XE")) {
            r = stream_write_libxc_end(s);
        } else if (!strcmp(tok, "DD")) {
            /* Disk 1, bytes 0x3000-0x4387: a block and a short one (5000 bytes). */
            static uint8_t blocks[5000];
            for (unsigned i = 0; i < sizeof(blocks); i++)
                blocks[i] = (uint8_t)(i * 13 + 5);
            r = stream_write_disk_data(s, 1, 0x3000, blocks, small ? 100 : sizeof(blocks));
        } else if (!strcmp(tok, "PX")) {
            /* Deltas: 0x10 page_a -> page_b, 0x11 page_b -> page_b with 3 bytes changed. */
            static uint8_t enc[2][STREAM_PAGE_SIZE], changed[STREAM_PAGE_SIZE];
            uint64_t pfns[] = { 0x10, 0x11 };
            const uint8_t *e[2] = { enc[0], enc[1] };
            uint32_t l[2];
            memcpy(changed, page_b, sizeof(changed));
            changed[7] ^= 1;
            changed[8] ^= 0x80;
            changed[4000] = 0;
            l[0] = stream_delta_encode(page_a, page_b, enc[0]);
            l[1] = stream_delta_encode(page_b, changed, enc[1]);
            if (!l[0]) {
                /* page_a and page_b differ everywhere: no smaller encoding,
                 * so the first is made of a small change too. */
                memcpy(changed, page_a, sizeof(changed));
                changed[100] ^= 0xff;
                l[0] = stream_delta_encode(page_a, changed, enc[0]);
            }
            r = stream_write_page_delta(s, 2, pfns, e, l);
        } else if (!strcmp(tok, "AK")) {
            r = stream_write_checkpoint_ack(s, 42);
        } else {
            ck_abort_msg("unknown plan step %s", tok);
        }
        ck_assert_msg(r == 0, "step %s: %d: %s", tok, r, tl.error);
    }
    ck_assert_int_eq(stream_sink_flush(s), 0);
    b->len = (size_t)stream_sink_offset(s);
    stream_sink_free(s);
    b->bytes = malloc(b->len ? b->len : 1);
    ck_assert_ptr_nonnull(b->bytes);
    ck_assert_int_eq(pread(fd, b->bytes, b->len, 0), (ssize_t)b->len);
    close(fd);
}

#define LIBXC_IMAGE "IH CP MP SD PD PZ TS HP HC XE"
#define LIBXL_STREAM "LH LC " LIBXC_IMAGE " EM LE"
#define XL_FILE "XH " LIBXL_STREAM

/* Reads a whole stream from memory; returns the first error (0 if it
 * reached the final END) and counts the items. */
static int read_all_opts(const uint8_t *bytes, size_t len, struct stream_reader_opts o,
                         struct test_log *tl, unsigned *items)
{
    struct stream_reader *r;
    struct stream_record rec;
    unsigned n = 0;
    int e;

    test_log_init(tl);
    o.log = &tl->log;
    ck_assert_int_eq(stream_reader_new_mem(bytes, len, &o, &r), 0);
    for (;;) {
        e = stream_read_record(r, &rec);
        if (e)
            break;
        n++;
        if (rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4 && rec.layer == STREAM_LAYER_LIBXC && !rec.header) {
            /* Every compressed record decodes, its data in the reader's copy. */
            uint64_t pfns[STREAM_MAX_BATCH];
            uint8_t types[STREAM_MAX_BATCH];
            const uint8_t *data[STREAM_MAX_BATCH];
            unsigned count;
            ck_assert_int_eq(stream_decode_page_data(&rec, &count, pfns, types, data), 0);
            for (unsigned i = 0; i < count; i++)
                ck_assert(!data[i] || (data[i] >= rec.page_data &&
                                       data[i] + STREAM_PAGE_SIZE <= rec.page_data + rec.page_data_len));
        }
        if (rec.last) {
            ck_assert_uint_eq(stream_reader_offset(r), len);
            ck_assert_int_eq(stream_read_record(r, &rec), -ENODATA);
            break;
        }
    }
    stream_reader_free(r);
    if (items)
        *items = n;
    return e;
}

static int read_all(const uint8_t *bytes, size_t len, enum stream_layer start,
                    enum stream_checkpoints cp, uint64_t max_pfn, bool xen_made,
                    struct test_log *tl, unsigned *items)
{
    struct stream_reader_opts o = { .start = start, .checkpoints = cp, .max_pfn = max_pfn,
                                    .xen_made = xen_made };

    return read_all_opts(bytes, len, o, tl, items);
}

/* ---- Round trips ------------------------------------------------------------ */

static void expect_text(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "output lacks \"%s\":\n%s", want, text);
}

static void expect_next(struct stream_reader *r, struct stream_record *rec, enum stream_layer l,
                        bool header, uint32_t type, uint64_t offset, struct test_log *tl)
{
    int e = stream_read_record(r, rec);

    ck_assert_msg(e == 0, "read at 0x%llx: %d: %s", (unsigned long long)offset, e, tl->error);
    ck_assert_int_eq(rec->layer, l);
    ck_assert_int_eq(rec->header, header);
    ck_assert_msg(rec->type == type, "type %u, wanted %u at 0x%llx", rec->type, type,
                  (unsigned long long)offset);
    ck_assert_uint_eq(rec->offset, offset);
}

/* Checks every record of LIBXC_IMAGE, starting at plan step `first`. */
static void check_libxc_records(struct stream_reader *r, const struct built *b, int first,
                                struct test_log *tl)
{
    struct stream_record rec;
    const struct stream_libxc_header *h;
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    unsigned n;
    uint8_t blob[4096];
    size_t blob_len = make_hvm_context(blob, false);

    expect_next(r, &rec, STREAM_LAYER_LIBXC, true, 0, b->off[first], tl);
    ck_assert_uint_eq(rec.length, 40);
    h = stream_reader_libxc_header(r);
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(h->version, 3);
    ck_assert_uint_eq(h->domain_type, STREAM_DOMAIN_X86_HVM);
    ck_assert_uint_eq(h->page_shift, 12);
    ck_assert_uint_eq(h->xen_major, TANDEM_VERSION_MAJOR);
    ck_assert_uint_eq(h->xen_minor, TANDEM_VERSION_MINOR);

    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_X86_CPUID_POLICY,
                b->off[first + 1], tl);
    {
        xen_cpuid_leaf_t *l;
        ck_assert_int_eq(stream_decode_cpuid_policy(&rec, &l, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_mem_eq(l, test_leaves, sizeof(test_leaves));
        free(l);
    }
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_X86_MSR_POLICY,
                b->off[first + 2], tl);
    {
        xen_msr_entry_t *m;
        ck_assert_int_eq(stream_decode_msr_policy(&rec, &m, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_mem_eq(m, test_msrs, sizeof(test_msrs));
        free(m);
    }
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_STATIC_DATA_END,
                b->off[first + 3], tl);
    ck_assert(!rec.inferred);

    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b->off[first + 4], tl);
    ck_assert_uint_eq(rec.length, 8 + 6 * 8 + 2 * STREAM_PAGE_SIZE);
    ck_assert_int_eq(stream_decode_page_data(&rec, &n, pfns, types, data), 0);
    ck_assert_uint_eq(n, 6);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(pfns[i], 0x10 + i);
    ck_assert_uint_eq(types[0], STREAM_PAGE_NORMAL);
    ck_assert_uint_eq(types[2], STREAM_PAGE_XALLOC);
    ck_assert_uint_eq(types[4], STREAM_PAGE_XTAB);
    ck_assert_uint_eq(types[5], STREAM_PAGE_BROKEN);
    ck_assert_mem_eq(data[0], page_a, STREAM_PAGE_SIZE);
    ck_assert_mem_eq(data[1], page_b, STREAM_PAGE_SIZE);
    ck_assert_ptr_null(data[2]);
    ck_assert_ptr_null(data[5]);

    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b->off[first + 5], tl);
    ck_assert_uint_eq(rec.length, 8 + 256 * 8);
    ck_assert_int_eq(stream_decode_page_data(&rec, &n, pfns, types, data), 0);
    ck_assert_uint_eq(n, 256);
    ck_assert_uint_eq(pfns[255], 0x15f);

    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_X86_TSC_INFO, b->off[first + 6], tl);
    {
        struct stream_tsc_info t;
        ck_assert_int_eq(stream_decode_tsc_info(&rec, &t), 0);
        ck_assert_uint_eq(t.khz, test_tsc.khz);
        ck_assert_uint_eq(t.nsec, test_tsc.nsec);
        ck_assert_uint_eq(t.incarnation, test_tsc.incarnation);
        ck_assert_uint_eq(t.mode, test_tsc.mode);
    }
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_HVM_PARAMS, b->off[first + 7], tl);
    {
        struct stream_hvm_param *p;
        ck_assert_int_eq(stream_decode_hvm_params(&rec, &p, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_mem_eq(p, test_params, sizeof(test_params));
        free(p);
    }
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_HVM_CONTEXT, b->off[first + 8], tl);
    ck_assert_uint_eq(rec.length, blob_len);
    ck_assert_mem_eq(rec.body, blob, blob_len);
}

START_TEST(test_libxc_round_trip)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .max_pfn = 0x8000,
                                    .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    int fd = memfd_create("img", 0);

    test_log_init(&tl);
    build(&b, LIBXC_IMAGE, false);
    /* From an fd, as restore reads it. */
    ck_assert_int_eq(write(fd, b.bytes, b.len), (ssize_t)b.len);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(stream_reader_new(fd, &o, &r), 0);
    check_libxc_records(r, &b, 0, &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_END, b.off[9], &tl);
    ck_assert(rec.last);
    ck_assert_uint_eq(stream_reader_offset(r), b.len);
    ck_assert_int_eq(stream_read_record(r, &rec), -ENODATA);
    stream_reader_free(r);
    close(fd);
    built_free(&b);
}
END_TEST

START_TEST(test_libxl_and_xl_round_trip)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_XL, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    const struct stream_xl_header *xh;
    uint32_t id, index;
    bool tandem;
    const uint8_t *state;
    size_t len;

    test_log_init(&tl);
    build(&b, XL_FILE, false);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    ck_assert_ptr_null(stream_reader_xl_header(r));
    expect_next(r, &rec, STREAM_LAYER_XL, true, 0, 0, &tl);
    ck_assert_mem_eq(rec.body, STREAM_XL_MAGIC, 32);
    xh = stream_reader_xl_header(r);
    ck_assert_ptr_nonnull(xh);
    ck_assert_uint_eq(xh->mandatory_flags, STREAM_XL_FLAG_JSON | STREAM_XL_FLAG_STREAMV2);
    ck_assert_str_eq(xh->config, TEST_CONFIG);
    ck_assert_uint_eq(xh->config_len, strlen(TEST_CONFIG));
    ck_assert_uint_eq(xh->optional_data_len, 4 + strlen(TEST_CONFIG) + 1);
    expect_next(r, &rec, STREAM_LAYER_LIBXL, true, 0, b.off[1], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXL, false, STREAM_LIBXL_LIBXC_CONTEXT, b.off[2], &tl);
    check_libxc_records(r, &b, 3, &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_END, b.off[12], &tl);
    ck_assert(!rec.last);              /* the libxl stream goes on */
    expect_next(r, &rec, STREAM_LAYER_LIBXL, false, STREAM_LIBXL_EMULATOR_CONTEXT, b.off[13], &tl);
    ck_assert_int_eq(stream_decode_emulator_context(&rec, &id, &index, &tandem, &state, &len), 0);
    ck_assert_uint_eq(id, STREAM_EMULATOR_UNKNOWN);
    ck_assert_uint_eq(index, 0);
    ck_assert(tandem);
    ck_assert_uint_eq(len, sizeof(test_dm_state));
    ck_assert_mem_eq(state, test_dm_state, len);
    ck_assert_mem_eq(rec.body + 8, "TandemDM", 8);
    expect_next(r, &rec, STREAM_LAYER_LIBXL, false, STREAM_LIBXL_END, b.off[14], &tl);
    ck_assert(rec.last);
    ck_assert_uint_eq(stream_reader_offset(r), b.len);
    stream_reader_free(r);
    built_free(&b);
}
END_TEST

/* Exact bytes of the headers, against the specs' layouts. */
START_TEST(test_header_bytes)
{
    struct built b;
    static const uint8_t libxl_hdr[16] = { 'L', 'i', 'b', 'x', 'l', 'F', 'm', 't',
                                           0, 0, 0, 2, 0, 0, 0, 0 };
    static const uint8_t image_hdr[24] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           'X', 'E', 'N', 'F', 0, 0, 0, 3 };
    uint32_t v;

    build(&b, "XH LH LC IH SD", false);
    ck_assert_mem_eq(b.bytes, "Xen saved domain, xl format\n \0 \r", 32);
    memcpy(&v, b.bytes + 32, 4);
    ck_assert_uint_eq(v, 0x01020304);
    memcpy(&v, b.bytes + 36, 4);
    ck_assert_uint_eq(v, 3);                              /* JSON | STREAMv2 */
    memcpy(&v, b.bytes + 44, 4);
    ck_assert_uint_eq(v, 4 + strlen(TEST_CONFIG) + 1);
    ck_assert_mem_eq(b.bytes + b.off[1], libxl_hdr, 16);
    ck_assert_mem_eq(b.bytes + b.off[2], "\1\0\0\0\0\0\0\0", 8);   /* LIBXC_CONTEXT */
    ck_assert_mem_eq(b.bytes + b.off[3], image_hdr, 24);
    ck_assert_mem_eq(b.bytes + b.off[3] + 24, "\2\0\0\0\x0c\0\0\0", 8);
    ck_assert_mem_eq(b.bytes + b.off[4], "\x10\0\0\0\0\0\0\0", 8); /* STATIC_DATA_END */
    ck_assert_uint_eq(b.len, b.off[4] + 8);
    built_free(&b);

    /* CHECKPOINT_STATE: a 4-byte body and 4 bytes of padding, as libxl. */
    build(&b, "CS", false);
    ck_assert_uint_eq(b.len, 16);
    ck_assert_mem_eq(b.bytes, "\5\0\0\0\4\0\0\0\0\0\0\0\0\0\0\0", 16);
    built_free(&b);
}
END_TEST

START_TEST(test_v2_image_infers_static_data_end)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;

    build(&b, "IH PD TS HP HC XE", false);
    b.bytes[15] = 2;                      /* version 2 */
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, true, 0, 0, &tl);
    ck_assert_uint_eq(stream_reader_libxc_header(r)->version, 2);
    /* STATIC_DATA_END first, at the PAGE_DATA's offset, then the PAGE_DATA. */
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_STATIC_DATA_END, b.off[1], &tl);
    ck_assert(rec.inferred);
    ck_assert_uint_eq(rec.length, 0);
    ck_assert_uint_eq(stream_reader_offset(r), b.off[1] + 8);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b.off[1], &tl);
    ck_assert(!rec.inferred);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_X86_TSC_INFO, b.off[2], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_HVM_PARAMS, b.off[3], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_HVM_CONTEXT, b.off[4], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_END, b.off[5], &tl);
    ck_assert(rec.last);
    stream_reader_free(r);
    ck_assert_ptr_nonnull(strstr(tl.all, "inferred"));
    built_free(&b);
}
END_TEST

START_TEST(test_optional_records_skipped)
{
    struct built b;
    struct test_log tl;
    unsigned items;

    build(&b, "LH OP LC IH CP OP SD PD TS HP HC OP XE OP LE", false);
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXL, STREAM_PLAIN, 0, false, &tl,
                              &items), 0);
    ck_assert_uint_eq(items, 11);         /* the four optional records are not handed out */
    ck_assert_ptr_nonnull(strstr(tl.all, "libxc record type 0x80001234 at offset 0x"));
    ck_assert_ptr_nonnull(strstr(tl.all, "optional, 5 bytes, skipped"));
    ck_assert_ptr_nonnull(strstr(tl.all, "libxl record type 0x80001234 at offset 0x10:"));
    built_free(&b);
}
END_TEST

START_TEST(test_checkpointed_streams)
{
    struct built b;
    struct test_log tl;
    unsigned items;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                    .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;

    /* Remus: epochs end in CHECKPOINT (libxc), device state, CHECKPOINT_END
     * (libxl); the libxc records go on with no new header. */
    build(&b, "LH LC IH CP MP SD PD TS HP HC CK EM CE PD TS HP HC CK EM CE PD TS HP HC XE EM LE",
          false);
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    for (int i = 0; i < 11; i++)
        ck_assert_int_eq(stream_read_record(r, &rec), 0);
    ck_assert_int_eq(rec.layer, STREAM_LAYER_LIBXC);
    ck_assert_uint_eq(rec.type, STREAM_LIBXC_CHECKPOINT);
    expect_next(r, &rec, STREAM_LAYER_LIBXL, false, STREAM_LIBXL_EMULATOR_CONTEXT, b.off[11], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXL, false, STREAM_LIBXL_CHECKPOINT_END, b.off[12], &tl);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b.off[13], &tl);
    stream_reader_free(r);
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXL, STREAM_REMUS, 0, false, &tl,
                              &items), 0);
    ck_assert_uint_eq(items, 27);
    /* The same stream is no plain stream. */
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXL, STREAM_PLAIN, 0, false, &tl,
                              NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "libxc CHECKPOINT at offset"));
    ck_assert_ptr_nonnull(strstr(tl.error, "not checkpointed"));
    built_free(&b);

    /* COLO: CHECKPOINT_STATE NEW after each CHECKPOINT_END. */
    build(&b, "LH LC IH CP SD PD HP HC CK XS EM CE CS PD TS HP HC CK EM CE CS HC XE LE", false);
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXL, STREAM_COLO, 0, false, &tl,
                              &items), 0);
    ck_assert_uint_eq(items, 24);
    built_free(&b);

    /* A standalone checkpointed libxc image. */
    build(&b, "IH SD PD HP HC CK PD TS HP HC CK HC XE", false);
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXC, STREAM_REMUS, 0, false, &tl,
                              &items), 0);
    ck_assert_uint_eq(items, 13);
    built_free(&b);
}
END_TEST

/* ---- Remus's records ----------------------------------------------------------- */

#define REMUS_STREAM "LH DD LC IH CP MP SD PD TS HP HC CK EM DD CE PX TS HP HC CK EM DD DD CE TS HP HC CK EM CE XE LE"

static int read_remus(const struct built *b, bool delta, enum stream_checkpoints cp, struct test_log *tl)
{
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = cp, .tandem_delta = delta };
    return read_all_opts(b->bytes, b->len, o, tl, NULL);
}

/* The error names the record at the offset of plan step `step`. */
static void expect_remus_error(const struct built *b, bool delta, enum stream_checkpoints cp, int err,
                               const char *what, int step, const char *why)
{
    struct test_log tl;
    char where[128];
    int e = read_remus(b, delta, cp, &tl);
    ck_assert_msg(e == err, "got %d (%s), wanted %d (%s)", e, tl.error, err, why);
    snprintf(where, sizeof(where), "%s at offset 0x%llx: ", what, (unsigned long long)b->off[step]);
    ck_assert_msg(!strncmp(tl.error, where, strlen(where)), "\"%s\" does not start \"%s\"", tl.error, where);
    ck_assert_msg(strstr(tl.error, why) != NULL, "\"%s\" lacks \"%s\"", tl.error, why);
}

START_TEST(test_remus_records_round_trip)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                    .tandem_delta = true, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    unsigned items, disks = 0, deltas = 0;

    build(&b, REMUS_STREAM, false);
    ck_assert_msg(read_remus(&b, true, STREAM_REMUS, &tl) == 0, "%s", tl.error);
    ck_assert_int_eq(read_all_opts(b.bytes, b.len, o, &tl, &items), 0);
    ck_assert_uint_eq(items, 32);
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    do {
        ck_assert_msg(stream_read_record(r, &rec) == 0, "%s", tl.error);
        if (!rec.header && rec.layer == STREAM_LAYER_LIBXL && rec.type == STREAM_LIBXL_TANDEM_DISK_DATA) {
            uint32_t disk, len;
            uint64_t off;
            const uint8_t *data;
            ck_assert_int_eq(stream_decode_disk_data(&rec, &disk, &off, &data, &len), 0);
            ck_assert_uint_eq(disk, 1);
            ck_assert_uint_eq(off, 0x3000);
            ck_assert_uint_eq(len, 5000);
            ck_assert_uint_eq(rec.length, 24 + 5000);
            for (unsigned i = 0; i < len; i++)
                ck_assert_uint_eq(data[i], (uint8_t)(i * 13 + 5));
            disks++;
        }
        if (!rec.header && rec.layer == STREAM_LAYER_LIBXC && rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA) {
            uint64_t pfns[STREAM_MAX_BATCH];
            const uint8_t *enc[STREAM_MAX_BATCH];
            uint32_t enc_len[STREAM_MAX_BATCH];
            unsigned n;
            uint8_t page[STREAM_PAGE_SIZE];
            ck_assert_int_eq(stream_decode_page_delta(&rec, &n, pfns, enc, enc_len), 0);
            ck_assert_uint_eq(n, 2);
            ck_assert_uint_eq(pfns[0], 0x10);
            ck_assert_uint_eq(pfns[1], 0x11);
            /* pfn 0x11: page_b with three bytes changed. */
            memcpy(page, page_b, sizeof(page));
            ck_assert_int_eq(stream_delta_apply(page, enc[1], enc_len[1]), 0);
            for (unsigned i = 0; i < STREAM_PAGE_SIZE; i++)
                if (i == 7 || i == 8 || i == 4000)
                    ck_assert_uint_ne(page[i], page_b[i]);
                else
                    ck_assert_uint_eq(page[i], page_b[i]);
            ck_assert_uint_eq(page[7], page_b[7] ^ 1);
            ck_assert_uint_eq(page[4000], 0);
            ck_assert_uint_lt(enc_len[1], 64);
            deltas++;
        }
    } while (!rec.last);
    stream_reader_free(r);
    ck_assert_uint_eq(disks, 4);
    ck_assert_uint_eq(deltas, 1);

    /* The back channel's ack: 16 bytes, and back. */
    struct built a;
    uint64_t epoch = 0;
    build(&a, "AK", false);
    ck_assert_uint_eq(a.len, STREAM_CHECKPOINT_ACK_SIZE);
    test_log_init(&tl);
    ck_assert_int_eq(stream_parse_checkpoint_ack(a.bytes, &epoch, &tl.log), 0);
    ck_assert_uint_eq(epoch, 42);
    a.bytes[0] ^= 1;
    ck_assert_int_eq(stream_parse_checkpoint_ack(a.bytes, &epoch, &tl.log), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "not TANDEM_CHECKPOINT_ACK"));
    a.bytes[0] ^= 1;
    a.bytes[4] = 16;
    ck_assert_int_eq(stream_parse_checkpoint_ack(a.bytes, &epoch, &tl.log), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "length 16, not 8"));
    built_free(&a);
    built_free(&b);
}
END_TEST

START_TEST(test_delta_encoding)
{
    static uint8_t a[STREAM_PAGE_SIZE], c[STREAM_PAGE_SIZE], enc[STREAM_PAGE_SIZE], page[STREAM_PAGE_SIZE];
    uint64_t x = 88172645463325252ULL;
    fill_pages();
    /* Unchanged: 32 runs of 128 zero bytes. */
    ck_assert_uint_eq(stream_delta_encode(page_a, page_a, enc), 32);
    for (unsigned i = 0; i < 32; i++)
        ck_assert_uint_eq(enc[i], 0x7f);
    /* Changed everywhere: no smaller encoding, the page goes plain. */
    ck_assert_uint_eq(stream_delta_encode(page_r[0], page_r[1], enc), 0);
    /* Random sparse changes, many times: apply(encode) gives the new page. */
    for (unsigned round = 0; round < 200; round++) {
        memcpy(a, page_r[round % 2], sizeof(a));
        memcpy(c, a, sizeof(c));
        unsigned changes = round % 50;
        for (unsigned k = 0; k < changes * 4; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c[x % STREAM_PAGE_SIZE] ^= (uint8_t)(x >> 32) | 1;
        }
        uint32_t len = stream_delta_encode(a, c, enc);
        ck_assert_uint_gt(len, 0);
        ck_assert_uint_lt(len, STREAM_PAGE_SIZE);
        ck_assert(stream_delta_valid(enc, len));
        memcpy(page, a, sizeof(page));
        ck_assert_int_eq(stream_delta_apply(page, enc, len), 0);
        ck_assert_int_eq(memcmp(page, c, sizeof(page)), 0);
    }
    /* Malformed encodings change nothing. */
    memcpy(page, a, sizeof(page));
    static const uint8_t short_run[] = { 0x7f };                  /* 128 of 4096 bytes */
    ck_assert(!stream_delta_valid(short_run, sizeof(short_run)));
    ck_assert_int_eq(stream_delta_apply(page, short_run, sizeof(short_run)), -EINVAL);
    uint8_t over[33];
    memset(over, 0x7f, sizeof(over));                             /* 4224 bytes */
    ck_assert(!stream_delta_valid(over, sizeof(over)));
    uint8_t lit[34];
    memset(lit, 0x7f, 31);
    lit[31] = 0xff;                                               /* 128 literal bytes promised */
    lit[32] = 1;
    lit[33] = 2;
    ck_assert(!stream_delta_valid(lit, sizeof(lit)));
    ck_assert(!stream_delta_valid(lit, 0));
    ck_assert_int_eq(memcmp(page, a, sizeof(page)), 0);
}
END_TEST

START_TEST(test_remus_records_malformed)
{
    struct built b, t;
    /* Steps of REMUS_STREAM: 0 LH 1 DD 2 LC ... 11 CK 12 EM 13 DD 14 CE 15 PX 16 TS ... */
    build(&b, REMUS_STREAM, false);

    /* Delta without the option: an unknown mandatory record. */
    expect_remus_error(&b, false, STREAM_REMUS, -EOPNOTSUPP, "libxc TANDEM_PAGE_DATA_DELTA", 15,
                       "unknown mandatory record here");
    /* Disk blocks in a plain stream, or in COLO. */
    expect_remus_error(&b, true, STREAM_PLAIN, -EINVAL, "libxl TANDEM_DISK_DATA", 1,
                       "only Remus streams carry disk blocks");
    expect_remus_error(&b, true, STREAM_COLO, -EINVAL, "libxl TANDEM_DISK_DATA", 1,
                       "only Remus streams carry disk blocks");
    built_free(&b);

    /* A delta in epoch 0: there is no committed page to apply it to. */
    build(&b, "LH LC IH SD PD PX TS HP HC CK EM CE XE LE", false);
    expect_remus_error(&b, true, STREAM_REMUS, -EINVAL, "libxc TANDEM_PAGE_DATA_DELTA", 5,
                       "before the first CHECKPOINT_END");
    built_free(&b);
    /* Disk blocks after the image began, outside a checkpoint. */
    build(&b, "LH LC IH SD PD TS HP HC XE DD LE", false);
    expect_remus_error(&b, true, STREAM_REMUS, -EINVAL, "libxl TANDEM_DISK_DATA", 9,
                       "before LIBXC_CONTEXT (the initial copy) or inside a checkpoint");
    built_free(&b);
    /* The ack in the forward stream. */
    build(&b, "LH AK LC IH SD PD TS HP HC XE LE", false);
    expect_remus_error(&b, true, STREAM_REMUS, -EINVAL, "libxl TANDEM_CHECKPOINT_ACK", 1,
                       "belongs to the Remus back channel");
    built_free(&b);

    /* TANDEM_DISK_DATA's fields: body +0 disk, +4 flags, +8 offset, +16 length, +20 reserved. */
    build(&b, "LH DD LC IH SD PD TS HP HC XE LE", false);
    struct { unsigned at; uint32_t v; const char *why; int err; } dd[] = {
        { 8 + 0, 16, "disk 16; a domain has at most 16", -EINVAL },
        { 8 + 4, 1, "unknown flags 0x1", -EINVAL },
        { 8 + 20, 7, "reserved field 0x00000007 is not zero", -EINVAL },
        { 8 + 16, 4999, "data length 4999, but the body holds 5000 bytes", -EINVAL },
        { 8 + 8, 0x3001, "byte offset 0x3001 is not a whole 4096-byte block", -EINVAL },
        { 4, 24, "length 24 leaves no data", -EINVAL },
        { 4, 24 + (1u << 20) + 8, "exceeds 1048576 bytes of blocks", -E2BIG },
    };
    for (unsigned i = 0; i < sizeof(dd) / sizeof(dd[0]); i++) {
        t = b;
        t.bytes = malloc(b.len);
        memcpy(t.bytes, b.bytes, b.len);
        memcpy(t.bytes + b.off[1] + dd[i].at, &dd[i].v, 4);
        expect_remus_error(&t, true, STREAM_REMUS, dd[i].err, "libxl TANDEM_DISK_DATA", 1, dd[i].why);
        built_free(&t);
    }
    {
        /* The offset plus the length wraps. */
        uint64_t off = ~0ULL - 4095;
        t = b;
        t.bytes = malloc(b.len);
        memcpy(t.bytes, b.bytes, b.len);
        memcpy(t.bytes + b.off[1] + 16, &off, 8);
        expect_remus_error(&t, true, STREAM_REMUS, -EINVAL, "libxl TANDEM_DISK_DATA", 1, "overflows");
        built_free(&t);
    }
    built_free(&b);

    /* TANDEM_PAGE_DATA_DELTA's fields, hand-made in epoch 1:
     * +0 count, +4 reserved, +8 pfns, then lengths, padding word, encodings. */
    uint8_t body[8 + 8 + 4 + 4 + 64];
    uint8_t runs[32];
    memset(runs, 0x7f, sizeof(runs));
    uint32_t count = 1, len32 = 32;
    uint64_t pfn = 0x10;
    struct { unsigned at; uint64_t v; unsigned width; uint32_t body_len; const char *why; int err; } px[] = {
        { 0, 0, 4, 56, "count is 0", -EINVAL },
        { 0, 1025, 4, 56, "1025 pages exceed 1024", -E2BIG },
        { 4, 9, 4, 56, "reserved field 0x00000009 is not zero", -EINVAL },
        { 8, 0x10 | (1ULL << 60), 8, 56, "has bits 63-52 set", -EINVAL },
        { 8, 0x9000, 8, 56, "pfn 0x9000 beyond the domain's 0x8000 frames", -ERANGE },
        { 16, 0, 4, 56, "a delta of 0 bytes", -EINVAL },
        { 16, 4097, 4, 56, "a delta of 4097 bytes", -EINVAL },
        { 16, 40, 4, 56, "overruns the 56-byte body", -EINVAL },
        { 20, 5, 4, 56, "the padding word after the lengths is not zero", -EINVAL },
        { 24, 0x7e, 1, 56, "not the run-length encoding of exactly one page", -EINVAL },
        { 16, 32, 4, 64, "length 64, but its 1 deltas end at 56", -EINVAL },
        { 0, 1, 4, 16, "too short for 1 pfns", -EINVAL },
    };
    for (unsigned i = 0; i < sizeof(px) / sizeof(px[0]); i++) {
        memset(body, 0, sizeof(body));
        memcpy(body, &count, 4);
        memcpy(body + 8, &pfn, 8);
        memcpy(body + 16, &len32, 4);
        memcpy(body + 24, runs, sizeof(runs));
        memcpy(body + px[i].at, &px[i].v, px[i].width);
        custom.type = STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA;
        custom.body = body;
        custom.len = px[i].body_len;
        build(&t, "LH LC IH SD PD TS HP HC CK EM CE CU TS HP HC CK EM CE XE LE", false);
        custom.body = NULL;
        if (i == 0) {
            /* First, the record as made is right. */
            struct built ok;
            memcpy(body, &count, 4);
            custom.body = body;
            custom.len = 56;
            memset(body, 0, sizeof(body));
            memcpy(body, &count, 4);
            memcpy(body + 8, &pfn, 8);
            memcpy(body + 16, &len32, 4);
            memcpy(body + 24, runs, sizeof(runs));
            build(&ok, "LH LC IH SD PD TS HP HC CK EM CE CU TS HP HC CK EM CE XE LE", false);
            custom.body = NULL;
            struct test_log tl;
            struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                            .tandem_delta = true, .max_pfn = 0x8000 };
            ck_assert_msg(read_all_opts(ok.bytes, ok.len, o, &tl, NULL) == 0, "%s", tl.error);
            built_free(&ok);
        }
        struct test_log tl;
        struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                        .tandem_delta = true, .max_pfn = 0x8000 };
        char where[96];
        int e = read_all_opts(t.bytes, t.len, o, &tl, NULL);
        ck_assert_msg(e == px[i].err, "case %u: got %d (%s), wanted %d (%s)", i, e, tl.error, px[i].err, px[i].why);
        snprintf(where, sizeof(where), "libxc TANDEM_PAGE_DATA_DELTA at offset 0x%llx: ",
                 (unsigned long long)t.off[11]);
        ck_assert_msg(!strncmp(tl.error, where, strlen(where)), "case %u: \"%s\" does not start \"%s\"", i,
                      tl.error, where);
        ck_assert_msg(strstr(tl.error, px[i].why) != NULL, "case %u: \"%s\" lacks \"%s\"", i, tl.error,
                      px[i].why);
        built_free(&t);
    }
}
END_TEST

START_TEST(test_remus_printers)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                    .tandem_delta = true, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    build(&b, REMUS_STREAM, false);
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    do {
        ck_assert_msg(stream_read_record(r, &rec) == 0, "%s", tl.error);
        ck_assert_int_eq(stream_print_detail(f, &rec), 0);
    } while (!rec.last);
    stream_reader_free(r);
    fclose(f);
    ck_assert_msg(strstr(text, "TANDEM_DISK_DATA: disk 1, bytes 0x3000-0x4387 (5000 bytes, 2 blocks)"), "%s", text);
    ck_assert_msg(strstr(text, "TANDEM_PAGE_DATA_DELTA: 2 pfns, deltas "), "%s", text);
    ck_assert_msg(strstr(text, "    pfn 0x11: "), "%s", text);
    free(text);
    built_free(&b);
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXL, STREAM_LIBXL_TANDEM_CHECKPOINT_ACK),
                     "TANDEM_CHECKPOINT_ACK");
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXC, STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA),
                     "TANDEM_PAGE_DATA_DELTA");
}
END_TEST

/* Xen's saver writes HVM_CONTEXT before HVM_PARAMS; only xen_made
 * readers take that. */
START_TEST(test_xen_made_order)
{
    struct built b;
    struct test_log tl;

    build(&b, "IH SD PD TS HC HP XE", false);
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXC, STREAM_PLAIN, 0, false, &tl,
                              NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "HVM_PARAMS must precede HVM_CONTEXT"));
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXC, STREAM_PLAIN, 0, true, &tl,
                              NULL), 0);
    built_free(&b);
}
END_TEST

/* The reader works on a pipe and leaves what follows the stream unread. */
START_TEST(test_pipe_and_trailing_bytes)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_XL, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    int p[2], status;
    pid_t pid;
    char tail[16] = { 0 };
    unsigned items = 0;

    build(&b, XL_FILE, false);
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        size_t off = 0;
        close(p[0]);
        while (off < b.len) {                 /* in dribbles, to exercise short reads */
            size_t n = b.len - off < 777 ? b.len - off : 777;
            if (write(p[1], b.bytes + off, n) != (ssize_t)n)
                _exit(1);
            off += n;
        }
        _exit(write(p[1], "HANDSHAKE", 9) == 9 ? 0 : 1);
    }
    close(p[1]);
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new(p[0], &o, &r), 0);
    do {
        ck_assert_msg(stream_read_record(r, &rec) == 0, "%s", tl.error);
        items++;
    } while (!rec.last);
    ck_assert_uint_eq(items, 15);
    ck_assert_int_eq(read(p[0], tail, sizeof(tail)), 9);
    ck_assert_str_eq(tail, "HANDSHAKE");
    stream_reader_free(r);
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(status, 0);
    built_free(&b);
}
END_TEST

/* A stream cut anywhere fails with -EPIPE, naming what was cut and where. */
START_TEST(test_truncated_everywhere)
{
    struct built b;
    struct test_log tl;

    build(&b, "XH LH LC IH CP MP SD PD TS HP HC XE EM LE", true);
    for (size_t cut = 0; cut < b.len; cut++) {
        int e = read_all(b.bytes, cut, STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL);
        ck_assert_msg(e == -EPIPE, "cut at %zu: %d (%s)", cut, e, tl.error);
        ck_assert_msg(strstr(tl.error, " at offset 0x") && strstr(tl.error, "stream ends") &&
                      (!strncmp(tl.error, "xl ", 3) || !strncmp(tl.error, "libxl ", 6) ||
                       !strncmp(tl.error, "libxc ", 6)),
                      "cut at %zu: %s", cut, tl.error);
    }
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL), 0);
    /* Some cuts, with the exact words. */
    read_all(b.bytes, b.off[7] + 100, STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL);
    ck_assert_msg(strstr(tl.error, "libxc PAGE_DATA at offset 0x") != NULL, "%s", tl.error);
    read_all(b.bytes, b.off[12] + 3, STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL);
    ck_assert_msg(strstr(tl.error, "libxl record at offset 0x") &&
                  strstr(tl.error, "3 bytes into the record's 8-byte header"), "%s", tl.error);
    read_all(b.bytes, b.off[12], STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL);
    ck_assert_msg(strstr(tl.error, "ends where a record should start (no libxl END)"), "%s",
                  tl.error);
    read_all(b.bytes, b.off[3] + 30, STREAM_LAYER_XL, STREAM_PLAIN, 0, false, &tl, NULL);
    ck_assert_msg(strstr(tl.error, "libxc domain header at offset 0x"), "%s", tl.error);
    built_free(&b);
}
END_TEST


/* ---- Compressed page data (TANDEM_PAGE_DATA_LZ4) -------------------------------- */

#define LZ4_IMAGE "IH CP MP SD PL PR PZ PB TS HP HC XE"  /* steps 4 PL, 5 PR, 7 PB */

START_TEST(test_lz4_round_trip)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .max_pfn = 0x8000,
                                    .tandem_lz4 = true, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    unsigned n, items;
    uint32_t clen;
    int p[2], status;
    pid_t pid;

    test_log_init(&tl);
    build(&b, LZ4_IMAGE, false);

    /* The layout: {count, 0}, pfns, {compressed_length, 0}, block, padding. */
    memcpy(&clen, b.bytes + b.off[4] + 16 + 4 * 8, 4);
    {
        uint32_t type, len, count;
        memcpy(&type, b.bytes + b.off[4], 4);
        memcpy(&len, b.bytes + b.off[4] + 4, 4);
        memcpy(&count, b.bytes + b.off[4] + 8, 4);
        ck_assert_uint_eq(type, 0x100);
        ck_assert_uint_eq(count, 4);
        ck_assert_uint_eq(len, 8 + 4 * 8 + 8 + clen);
        ck_assert_uint_lt(clen, 2 * STREAM_PAGE_SIZE);
        ck_assert_uint_eq(b.off[5] - b.off[4], 8 + len + (8 - len % 8) % 8);
        ck_assert_mem_eq(b.bytes + b.off[4] + 16 + 4 * 8 + 4, "\0\0\0\0", 4);
    }

    /* From a pipe, as a receiver reads it. */
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        _exit(write(p[1], b.bytes, b.len) == (ssize_t)b.len ? 0 : 1);
    }
    close(p[1]);
    ck_assert_int_eq(stream_reader_new(p[0], &o, &r), 0);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, true, 0, 0, &tl);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(stream_read_record(r, &rec), 0);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4, b.off[4],
                &tl);
    ck_assert_uint_eq(rec.page_data_len, 2 * STREAM_PAGE_SIZE);
    ck_assert_int_eq(stream_decode_page_data(&rec, &n, pfns, types, data), 0);
    ck_assert_uint_eq(n, 4);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(pfns[i], 0x20 + i);
    ck_assert_uint_eq(types[1], STREAM_PAGE_XALLOC);
    ck_assert_uint_eq(types[3], STREAM_PAGE_XTAB);
    ck_assert_mem_eq(data[0], page_a, STREAM_PAGE_SIZE);
    ck_assert_mem_eq(data[2], page_b, STREAM_PAGE_SIZE);
    ck_assert_ptr_null(data[1]);
    ck_assert_ptr_null(data[3]);
    ck_assert(data[0] == rec.page_data && data[2] == rec.page_data + STREAM_PAGE_SIZE);
    {
        char *text = NULL, want[160];
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        ck_assert_int_eq(stream_print_summary(f, &rec), 0);
        ck_assert_int_eq(stream_print_detail(f, &rec), 0);
        fclose(f);
        snprintf(want, sizeof(want), "TANDEM_PAGE_DATA_LZ4: 4 pfns (2 with data, 1 XALLOC, 1 XTAB), "
                 "lz4 %u of 8192 bytes (", clen);
        expect_text(text, want);
        expect_text(text, "0x20-0x23");
        expect_text(text, "    NORMAL: 0x20, 0x22");
        free(text);
    }

    /* Incompressible pages went plain, through the same writer. */
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b.off[5], &tl);
    ck_assert_ptr_null(rec.page_data);
    ck_assert_int_eq(stream_decode_page_data(&rec, &n, pfns, types, data), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_mem_eq(data[0], page_r[0], STREAM_PAGE_SIZE);
    ck_assert_mem_eq(data[2], page_r[1], STREAM_PAGE_SIZE);
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_PAGE_DATA, b.off[6], &tl);

    /* A whole batch: 4 MiB of data, in far less. */
    expect_next(r, &rec, STREAM_LAYER_LIBXC, false, STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4, b.off[7],
                &tl);
    ck_assert_uint_eq(rec.page_data_len, STREAM_MAX_BATCH * STREAM_PAGE_SIZE);
    ck_assert_uint_lt(rec.length, STREAM_MAX_PAGE_DATA_LEN / 4);
    ck_assert_int_eq(stream_decode_page_data(&rec, &n, pfns, types, data), 0);
    ck_assert_uint_eq(n, STREAM_MAX_BATCH);
    for (unsigned i = 0; i < STREAM_MAX_BATCH; i++)
        ck_assert_mem_eq(data[i], i % 3 ? page_a : i % 2 ? page_b : page_r[i % 4 / 2],
                         STREAM_PAGE_SIZE);
    for (int i = 8; i < 12; i++)
        ck_assert_msg(stream_read_record(r, &rec) == 0, "%s", tl.error);
    ck_assert(rec.last);
    stream_reader_free(r);
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(status, 0);

    /* Without the option it is an unknown mandatory record. */
    ck_assert_int_eq(read_all(b.bytes, b.len, STREAM_LAYER_LIBXC, STREAM_PLAIN, 0, true, &tl,
                              NULL), -EOPNOTSUPP);
    ck_assert_msg(!strncmp(tl.error, "libxc TANDEM_PAGE_DATA_LZ4 at offset 0x", 39) &&
                  strstr(tl.error, "unknown mandatory record"), "%s", tl.error);
    built_free(&b);

    /* In a libxl stream and an xl file, checkpointed, and in a v2 image
     * (where it makes STATIC_DATA_END inferred, as PAGE_DATA does). */
    build(&b, "XH LH LC IH SD PL HP HC XE EM LE", false);
    o = (struct stream_reader_opts){ .start = STREAM_LAYER_XL, .tandem_lz4 = true };
    ck_assert_int_eq(read_all_opts(b.bytes, b.len, o, &tl, &items), 0);
    ck_assert_uint_eq(items, 11);
    built_free(&b);
    build(&b, "LH LC IH SD PL HP HC CK EM CE PL PB HP HC XE LE", false);
    o = (struct stream_reader_opts){ .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                     .tandem_lz4 = true };
    ck_assert_int_eq(read_all_opts(b.bytes, b.len, o, &tl, &items), 0);
    ck_assert_uint_eq(items, 16);
    built_free(&b);
    build(&b, "IH PL HP HC XE", false);
    b.bytes[15] = 2;
    o = (struct stream_reader_opts){ .start = STREAM_LAYER_LIBXC, .tandem_lz4 = true };
    ck_assert_int_eq(read_all_opts(b.bytes, b.len, o, &tl, &items), 0);
    ck_assert_uint_eq(items, 6);
    ck_assert_ptr_nonnull(strstr(tl.all, "inferred"));
    built_free(&b);

    /* Before STATIC_DATA_END it is out of place, as PAGE_DATA is. */
    build(&b, "IH PL SD HP HC XE", false);
    ck_assert_int_eq(read_all_opts(b.bytes, b.len, o, &tl, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "before STATIC_DATA_END"));
    built_free(&b);
}
END_TEST

/* A batch without data, or one lz4 cannot shrink, goes as PAGE_DATA; bad
 * arguments are refused as by stream_write_page_data. */
START_TEST(test_lz4_writer)
{
    struct test_log tl;
    struct stream_sink *s;
    int fd = memfd_create("w", 0);
    uint64_t pfns[STREAM_MAX_BATCH + 1] = { 0 };
    uint8_t types[STREAM_MAX_BATCH + 1] = { 0 };
    const void *pages[STREAM_MAX_BATCH + 1] = { page_a };
    uint8_t h[8];

    fill_pages();
    test_log_init(&tl);
    ck_assert_int_eq(stream_sink_new(fd, &tl.log, &s), 0);
    ck_assert_int_eq(stream_write_page_data_lz4(s, 0, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "TANDEM_PAGE_DATA_LZ4 at offset 0x0: 0 pages"));
    ck_assert_int_eq(stream_write_page_data_lz4(s, STREAM_MAX_BATCH + 1, pfns, types, pages),
                     -EINVAL);
    pfns[0] = 1ULL << 52;
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "more than 52 bits"));
    pfns[0] = 0;
    types[0] = 0x9;
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), -EINVAL);
    types[0] = STREAM_PAGE_NORMAL;
    pages[0] = NULL;
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "no data for a normal page"));
    ck_assert_uint_eq(stream_sink_offset(s), 0);

    /* No data: plain. */
    types[0] = STREAM_PAGE_XALLOC;
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), 0);
    ck_assert_uint_eq(stream_sink_offset(s), 8 + 16);
    /* One compressible page: compressed.  One random page: plain. */
    types[0] = STREAM_PAGE_NORMAL;
    pages[0] = page_a;
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), 0);
    pages[0] = page_r[0];
    ck_assert_int_eq(stream_write_page_data_lz4(s, 1, pfns, types, pages), 0);
    ck_assert_int_eq(stream_sink_flush(s), 0);
    ck_assert_int_eq(pread(fd, h, 8, 0), 8);
    ck_assert_mem_eq(h, "\1\0\0\0\x10\0\0\0", 8);
    ck_assert_int_eq(pread(fd, h, 8, 24), 8);
    ck_assert_mem_eq(h, "\0\x01\0\0", 4);                 /* type 0x100 */
    {
        uint32_t len;
        memcpy(&len, h + 4, 4);
        ck_assert_uint_lt(len, 8 + 8 + 8 + 512);
        ck_assert_int_eq(pread(fd, h, 8, 24 + 8 + len + (8 - len % 8) % 8), 8);
        ck_assert_mem_eq(h, "\1\0\0\0\x10\x10\0\0", 8); /* PAGE_DATA, 16 + 4096 */
    }
    stream_sink_free(s);
    close(fd);
}
END_TEST

/* Streams "IH SD CU HP HC XE" with a hand-made TANDEM_PAGE_DATA_LZ4 as CU:
 * pfns 0x40.. (types as given), the block from `raw_pages` pages of
 * page_a, page_b, ... compressed, or the given block. */
static void build_lz4_custom(struct built *b, unsigned count, const uint64_t *words,
                             unsigned raw_pages, const uint8_t *block, int block_len)
{
    uint8_t raw[4 * STREAM_PAGE_SIZE];
    uint8_t packed[LZ4_COMPRESSBOUND(4 * STREAM_PAGE_SIZE)];
    int plen = block_len;

    fill_pages();
    ck_assert_uint_le(raw_pages, 4);
    if (!block) {
        for (unsigned i = 0; i < raw_pages; i++)
            memcpy(raw + i * STREAM_PAGE_SIZE, i % 2 ? page_b : page_a, STREAM_PAGE_SIZE);
        plen = LZ4_compress_default((const char *)raw, (char *)packed,
                                    (int)(raw_pages * STREAM_PAGE_SIZE), (int)sizeof(packed));
        ck_assert_int_gt(plen, 0);
        block = packed;
    }
    custom.type = STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4;
    custom.len = 16 + 8 * count + (uint32_t)plen;
    custom.body = calloc(1, custom.len);
    ck_assert_ptr_nonnull(custom.body);
    memcpy(custom.body, &count, 4);
    memcpy(custom.body + 8, words, 8 * count);
    memcpy(custom.body + 8 + 8 * count, &plen, 4);
    memcpy(custom.body + 16 + 8 * count, block, (size_t)plen);
    build(b, "IH SD CU HP HC XE", false);
    free(custom.body);
    custom.body = NULL;
}

static void expect_lz4_error(struct built *b, int err, const char *why, uint64_t max_pfn)
{
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .max_pfn = max_pfn,
                                    .tandem_lz4 = true };
    char where[96];
    int e = read_all_opts(b->bytes, b->len, o, &tl, NULL);

    ck_assert_msg(e == err, "got %d (%s), wanted %d (%s)", e, tl.error, err, why);
    snprintf(where, sizeof(where), "libxc TANDEM_PAGE_DATA_LZ4 at offset 0x%llx: ",
             (unsigned long long)b->off[2]);
    ck_assert_msg(!strncmp(tl.error, where, strlen(where)), "\"%s\" does not start \"%s\"",
                  tl.error, where);
    ck_assert_msg(strstr(tl.error, why) != NULL, "\"%s\" lacks \"%s\"", tl.error, why);
    built_free(b);
}

#define TN(t) ((uint64_t)(t) << STREAM_PFN_TYPE_SHIFT)

/* A copy of b with the u32 at off[2] + at (the custom record) set to v. */
static void mutate32(struct built *dst, const struct built *b, unsigned at, uint32_t v)
{
    *dst = *b;
    dst->bytes = malloc(b->len);
    ck_assert_ptr_nonnull(dst->bytes);
    memcpy(dst->bytes, b->bytes, b->len);
    memcpy(dst->bytes + b->off[2] + at, &v, 4);
}

START_TEST(test_lz4_malformed)
{
    /* pfns 0x40 (data), 0x41 (XALLOC), 0x42 (data); the record's body:
     * +0 count, +4 reserved, +8 pfns, +32 compressed_length, +36 reserved,
     * +40 the block (add 8 for the record header). */
    const uint64_t two[] = { 0x40, 0x41 | TN(STREAM_PAGE_XALLOC), 0x42 };
    struct built b, t;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .tandem_lz4 = true };
    char why[128];
    uint32_t clen, len;

    /* The hand-made record is right as it is. */
    build_lz4_custom(&b, 3, two, 2, NULL, 0);
    ck_assert_msg(read_all_opts(b.bytes, b.len, o, &tl, NULL) == 0, "%s", tl.error);
    memcpy(&len, b.bytes + b.off[2] + 4, 4);
    memcpy(&clen, b.bytes + b.off[2] + 8 + 32, 4);
    ck_assert_uint_eq(len, 40 + clen);

    /* A truncated block: the lengths agree, the block stops short. */
    build_lz4_custom(&t, 3, two, 2, b.bytes + b.off[2] + 48, (int)clen - 5);
    snprintf(why, sizeof(why), "the LZ4 block of %u bytes at offset 0x%llx is malformed or "
             "holds more than the 8192 bytes of its 2 data pages", clen - 5,
             (unsigned long long)(t.off[2] + 48));
    expect_lz4_error(&t, -EINVAL, why, 0);
    /* compressed_length overruns the body, or falls short of it. */
    mutate32(&t, &b, 8 + 32, clen + 1);
    snprintf(why, sizeof(why), "compressed_length %u, but the body holds %u bytes after the "
             "pfns and the block header", clen + 1, clen);
    expect_lz4_error(&t, -EINVAL, why, 0);
    mutate32(&t, &b, 8 + 32, clen - 1);
    expect_lz4_error(&t, -EINVAL, "but the body holds", 0);
    mutate32(&t, &b, 8 + 32, 0xffffffffu);
    expect_lz4_error(&t, -EINVAL, "compressed_length 4294967295", 0);
    /* The record's length overruns its block, over its padding and into
     * the next record's header. */
    mutate32(&t, &b, 4, len + (8 - len % 8) % 8 + 8);
    expect_lz4_error(&t, -EINVAL, "but the body holds", 0);
    /* A block that decompresses to less, or more, than its data pages. */
    build_lz4_custom(&t, 3, two, 1, NULL, 0);
    expect_lz4_error(&t, -EINVAL, "decompresses to 4096 bytes, not the 8192 bytes of its 2 data "
                     "pages", 0);
    build_lz4_custom(&t, 3, two, 3, NULL, 0);
    expect_lz4_error(&t, -EINVAL, "is malformed or holds more than the 8192 bytes", 0);
    {
        const uint64_t three[] = { 0x40, 0x41, 0x42 };   /* 0x41 now has data */
        build_lz4_custom(&t, 3, three, 2, NULL, 0);
        expect_lz4_error(&t, -EINVAL, "decompresses to 8192 bytes, not the 12288 bytes of its "
                         "3 data pages", 0);
    }
    /* Garbage, and nothing. */
    {
        uint8_t junk[64];
        memset(junk, 0xff, sizeof(junk));
        build_lz4_custom(&t, 3, two, 0, junk, sizeof(junk));
        expect_lz4_error(&t, -EINVAL, "is malformed or holds more than", 0);
        build_lz4_custom(&t, 3, two, 0, junk, 0);
        expect_lz4_error(&t, -EINVAL, "an empty LZ4 block for 2 pages of data", 0);
    }
    /* The block header's reserved word. */
    mutate32(&t, &b, 8 + 36, 1);
    expect_lz4_error(&t, -EINVAL, "the LZ4 block header's reserved field 0x00000001", 0);
    /* No page with data: a plain PAGE_DATA's job. */
    {
        const uint64_t none[] = { 0x40 | TN(STREAM_PAGE_XALLOC), 0x41 | TN(STREAM_PAGE_XTAB) };
        build_lz4_custom(&t, 2, none, 1, NULL, 0);
        expect_lz4_error(&t, -EINVAL, "none of its 2 pages carries data", 0);
    }
    /* Bad pfns, as in PAGE_DATA. */
    {
        uint64_t w[3];
        memcpy(w, two, sizeof(w));
        w[2] |= 1ULL << 55;
        build_lz4_custom(&t, 3, w, 2, NULL, 0);
        expect_lz4_error(&t, -EINVAL, "pfn[2] 0x0080000000000042 has reserved bits 59-52", 0);
        memcpy(w, two, sizeof(w));
        w[0] |= TN(1);
        build_lz4_custom(&t, 3, w, 2, NULL, 0);
        expect_lz4_error(&t, -EINVAL, "pfn[0] 0x40 has page type L1TAB", 0);
        memcpy(w, two, sizeof(w));
        w[1] = 0x41 | TN(6);
        build_lz4_custom(&t, 3, w, 2, NULL, 0);
        expect_lz4_error(&t, -EINVAL, "pfn[1] 0x41 has unknown page type 0x6", 0);
        build_lz4_custom(&t, 3, two, 2, NULL, 0);
        expect_lz4_error(&t, -ERANGE, "pfn 0x42 beyond the domain's 0x42 frames", 0x42);
    }
    mutate32(&t, &b, 8 + 0, 0);
    expect_lz4_error(&t, -EINVAL, "count is 0", 0);
    mutate32(&t, &b, 8 + 0, 2000);
    expect_lz4_error(&t, -E2BIG, "2000 pages exceed 1024", 0);
    mutate32(&t, &b, 8 + 0, 1000);
    expect_lz4_error(&t, -EINVAL, "too short for 1000 pfns and the 8-byte LZ4 block header", 0);
    mutate32(&t, &b, 8 + 4, 7);
    expect_lz4_error(&t, -EINVAL, "reserved field 0x00000007 is not zero", 0);
    /* Lengths, before anything is read. */
    mutate32(&t, &b, 4, 8);
    expect_lz4_error(&t, -EINVAL, "too short for its 8-byte header and 8-byte LZ4 block header",
                     0);
    mutate32(&t, &b, 4, STREAM_MAX_PAGE_DATA_LZ4_LEN + 1);
    snprintf(why, sizeof(why), "length %u exceeds the %u bytes of 1024 pages compressed",
             STREAM_MAX_PAGE_DATA_LZ4_LEN + 1, STREAM_MAX_PAGE_DATA_LZ4_LEN);
    expect_lz4_error(&t, -E2BIG, why, 0);
    built_free(&b);
}
END_TEST

/* ---- The table of malformed streams ------------------------------------------- */

struct mutation {
    int step;                    /* plan step whose offset `at` is from; -1: none */
    unsigned at;
    int width;                   /* 1, 2, 4, 8 bytes */
    bool big_endian;
    uint64_t value;
};

struct bad_case {
    const char *name;
    const char *plan;
    enum stream_layer start;
    enum stream_checkpoints cp;
    uint64_t max_pfn;
    struct mutation m[2];
    int err;
    int where_step;              /* the message names this step's offset ... */
    unsigned where_delta;        /* ... plus this */
    const char *what;            /* "libxc PAGE_DATA" */
    const char *why;             /* a phrase of the reason */
};

#define NOMUT { -1, 0, 0, false, 0 }
#define M(step, at, width, value) { step, at, width, false, value }
#define MBE(step, at, width, value) { step, at, width, true, value }
#define IMG LIBXC_IMAGE          /* steps: 0 IH 1 CP 2 MP 3 SD 4 PD 5 PZ 6 TS 7 HP 8 HC 9 XE */
#define LXL LIBXL_STREAM         /* steps: 0 LH 1 LC 2 IH ... 11 XE 12 EM 13 LE */
#define XLF XL_FILE              /* steps: 0 XH 1 LH 2 LC 3 IH ... */
#define C STREAM_LAYER_LIBXC
#define L STREAM_LAYER_LIBXL
#define X STREAM_LAYER_XL

static const struct bad_case bad_cases[] = {
    /* libxc image header */
    { "bad marker", IMG, C, 0, 0, { M(0, 0, 1, 0xfe), NOMUT }, -EINVAL, 0, 0,
      "libxc image header", "not a Migration v2 image" },
    { "bad id", IMG, C, 0, 0, { MBE(0, 8, 4, 0x58454E47), NOMUT }, -EINVAL, 0, 0,
      "libxc image header", "id 0x58454e47" },
    { "version 4", IMG, C, 0, 0, { MBE(0, 12, 4, 4), NOMUT }, -EOPNOTSUPP, 0, 0,
      "libxc image header", "version 4" },
    { "version 1", IMG, C, 0, 0, { MBE(0, 12, 4, 1), NOMUT }, -EOPNOTSUPP, 0, 0,
      "libxc image header", "version 1" },
    { "big-endian image", IMG, C, 0, 0, { MBE(0, 16, 2, 1), NOMUT }, -EOPNOTSUPP, 0, 0,
      "libxc image header", "big-endian" },
    { "reserved option bit", IMG, C, 0, 0, { MBE(0, 16, 2, 0x8), NOMUT }, -EINVAL, 0, 0,
      "libxc image header", "reserved option bits 0x8" },
    { "image header reserved", IMG, C, 0, 0, { M(0, 21, 1, 1), NOMUT }, -EINVAL, 0, 0,
      "libxc image header", "reserved fields" },
    { "PV domain", IMG, C, 0, 0, { M(0, 24, 4, 1), NOMUT }, -EOPNOTSUPP, 0, 24,
      "libxc domain header", "x86 PV domain" },
    { "unknown domain type", IMG, C, 0, 0, { M(0, 24, 4, 3), NOMUT }, -EINVAL, 0, 24,
      "libxc domain header", "unknown domain type 0x3" },
    { "page shift 13", IMG, C, 0, 0, { M(0, 28, 2, 13), NOMUT }, -EINVAL, 0, 24,
      "libxc domain header", "page shift 13" },
    { "domain header reserved", IMG, C, 0, 0, { M(0, 30, 2, 1), NOMUT }, -EINVAL, 0, 24,
      "libxc domain header", "reserved field" },
    /* record framing */
    { "bad padding", IMG, C, 0, 0, { M(8, 8 + 2436, 1, 0x5a), NOMUT }, -EINVAL, 8, 0,
      "libxc HVM_CONTEXT", "padding byte at offset" },
    { "unknown mandatory record", IMG, C, 0, 0, { M(1, 0, 4, 0x13), NOMUT }, -EOPNOTSUPP, 1, 0,
      "libxc record type 0x13", "unknown mandatory record" },
    { "huge mandatory record", IMG, C, 0, 0, { M(8, 4, 4, 0xfffffff0), NOMUT }, -E2BIG, 8, 0,
      "libxc HVM_CONTEXT", "exceeds" },
    { "huge optional record", IMG, C, 0, 0, { M(8, 0, 4, 0x80000009), M(8, 4, 4, 0xfffffff0) },
      -E2BIG, 8, 0, "libxc record type 0x80000009", "optional record of 4294967280 bytes" },
    { "END with a body", IMG, C, 0, 0, { M(9, 4, 4, 8), NOMUT }, -EINVAL, 9, 0, "libxc END",
      "no body" },
    { "PV record", IMG, C, 0, 0, { M(6, 0, 4, STREAM_LIBXC_X86_PV_INFO), NOMUT }, -EINVAL, 6, 0,
      "libxc X86_PV_INFO", "x86 PV record" },
    { "SHARED_INFO", IMG, C, 0, 0, { M(6, 0, 4, STREAM_LIBXC_SHARED_INFO), NOMUT }, -EINVAL, 6, 0,
      "libxc SHARED_INFO", "x86 PV record" },
    { "TOOLSTACK", IMG, C, 0, 0, { M(6, 0, 4, STREAM_LIBXC_TOOLSTACK), NOMUT }, -EOPNOTSUPP, 6, 0,
      "libxc TOOLSTACK", "deprecated" },
    { "dirty pfn list in an image", "IH SD DL PD HP HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 2,
      0, "libxc CHECKPOINT_DIRTY_PFN_LIST", "back channel" },
    /* PAGE_DATA */
    { "count 0", IMG, C, 0, 0, { M(4, 8, 4, 0), NOMUT }, -EINVAL, 4, 0, "libxc PAGE_DATA",
      "count is 0" },
    { "count beyond the batch", IMG, C, 0, 0, { M(4, 8, 4, 2000), NOMUT }, -E2BIG, 4, 0,
      "libxc PAGE_DATA", "2000 pages exceed 1024" },
    { "count beyond the body", IMG, C, 0, 0, { M(5, 8, 4, 1000), NOMUT }, -EINVAL, 5, 0,
      "libxc PAGE_DATA", "too short for 1000 pfns" },
    { "PAGE_DATA reserved", IMG, C, 0, 0, { M(4, 12, 4, 1), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "reserved field 0x00000001" },
    { "pfn reserved bits", IMG, C, 0, 0, { M(4, 16 + 8 * 2 + 6, 1, 0x10), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "reserved bits 59-52" },
    { "unknown page type", IMG, C, 0, 0, { M(4, 16 + 8 * 2 + 7, 1, 0x50), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "unknown page type 0x5" },
    { "PV page type", IMG, C, 0, 0, { M(4, 16 + 8 * 2 + 7, 1, 0x10), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "page type L1TAB" },
    { "pfn beyond the domain", IMG, C, 0, 0x8000, { M(4, 16 + 8, 4, 0x12345), NOMUT }, -ERANGE,
      4, 0, "libxc PAGE_DATA", "pfn 0x12345 beyond the domain's 0x8000 frames" },
    { "pfn at max_pfn", IMG, C, 0, 0x15, { NOMUT, NOMUT }, -ERANGE, 4, 0, "libxc PAGE_DATA",
      "pfn 0x15 beyond the domain's 0x15 frames" },
    { "data page turned XALLOC", IMG, C, 0, 0, { M(4, 16 + 7, 1, 0xe0), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "but 6 pfns with 1 pages of data make" },
    { "length overruns", IMG, C, 0, 0, { M(4, 4, 4, 8 + 48 + 8192 + 8), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "but 6 pfns with 2 pages of data make" },
    { "length beyond a batch", IMG, C, 0, 0, { M(4, 4, 4, STREAM_MAX_PAGE_DATA_LEN + 8), NOMUT },
      -E2BIG, 4, 0, "libxc PAGE_DATA", "exceeds" },
    { "length under its header", IMG, C, 0, 0, { M(4, 4, 4, 4), NOMUT }, -EINVAL, 4, 0,
      "libxc PAGE_DATA", "too short for its 8-byte header" },
    /* other records' bodies */
    { "TSC length", IMG, C, 0, 0, { M(6, 4, 4, 16), NOMUT }, -EINVAL, 6, 0, "libxc X86_TSC_INFO",
      "length 16, not 24" },
    { "TSC reserved", IMG, C, 0, 0, { M(6, 8 + 20, 4, 1), NOMUT }, -EINVAL, 6, 0,
      "libxc X86_TSC_INFO", "reserved field" },
    { "HVM_PARAMS reserved", IMG, C, 0, 0, { M(7, 12, 4, 1), NOMUT }, -EINVAL, 7, 0,
      "libxc HVM_PARAMS", "reserved field" },
    { "HVM_PARAMS count", IMG, C, 0, 0, { M(7, 8, 4, 5), NOMUT }, -EINVAL, 7, 0,
      "libxc HVM_PARAMS", "but 5 params make 88" },
    { "HVM_PARAMS huge count", IMG, C, 0, 0, { M(7, 8, 4, 100000), NOMUT }, -E2BIG, 7, 0,
      "libxc HVM_PARAMS", "100000 params exceed" },
    { "HVM_PARAMS odd length", IMG, C, 0, 0, { M(7, 4, 4, 60), NOMUT }, -EINVAL, 7, 0,
      "libxc HVM_PARAMS", "not 8 + 16 per param" },
    { "empty HVM_CONTEXT", IMG, C, 0, 0, { M(8, 4, 4, 0), NOMUT }, -EINVAL, 8, 0,
      "libxc HVM_CONTEXT", "empty" },
    { "CPUID length", IMG, C, 0, 0, { M(1, 4, 4, 25), NOMUT }, -EINVAL, 1, 0,
      "libxc X86_CPUID_POLICY", "multiple of 24" },
    { "MSR length", IMG, C, 0, 0, { M(2, 4, 4, 0), NOMUT }, -EINVAL, 2, 0, "libxc X86_MSR_POLICY",
      "multiple of 16" },
    { "MSR flags", IMG, C, 0, 0, { M(2, 8 + 16 + 4, 4, 1), NOMUT }, -EINVAL, 2, 0,
      "libxc X86_MSR_POLICY", "MSR 0x0000010a has reserved flags 0x1" },
    /* order */
    { "memory before STATIC_DATA_END", "IH CP MP PD SD TS HP HC XE", C, 0, 0, { NOMUT, NOMUT },
      -EINVAL, 3, 0, "libxc PAGE_DATA", "before STATIC_DATA_END" },
    { "END before STATIC_DATA_END", "IH XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 1, 0,
      "libxc END", "before STATIC_DATA_END" },
    { "policy after STATIC_DATA_END", "IH CP SD MP PD HP HC XE", C, 0, 0, { NOMUT, NOMUT },
      -EINVAL, 3, 0, "libxc X86_MSR_POLICY", "after STATIC_DATA_END" },
    { "two CPUID policies", "IH CP CP SD PD HP HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 2, 0,
      "libxc X86_CPUID_POLICY", "a second one" },
    { "two STATIC_DATA_ENDs", "IH SD SD PD HP HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 2, 0,
      "libxc STATIC_DATA_END", "a second STATIC_DATA_END" },
    { "HVM_PARAMS after HVM_CONTEXT", "IH SD PD TS HC HP XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL,
      5, 0, "libxc HVM_PARAMS", "HVM_PARAMS must precede HVM_CONTEXT" },
    { "two HVM_CONTEXTs", "IH SD PD HP HC HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 5, 0,
      "libxc HVM_CONTEXT", "a second HVM_CONTEXT" },
    { "two HVM_PARAMS", "IH SD PD HP HP HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 4, 0,
      "libxc HVM_PARAMS", "a second HVM_PARAMS" },
    { "two VERIFYs", "IH SD PD VF PD VF HP HC XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 5, 0,
      "libxc VERIFY", "a second VERIFY" },
    { "END without HVM_CONTEXT", "IH SD PD TS HP XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL, 5, 0,
      "libxc END", "no HVM_CONTEXT" },
    { "CHECKPOINT in a plain stream", "IH SD PD HP HC CK XE", C, 0, 0, { NOMUT, NOMUT }, -EINVAL,
      5, 0, "libxc CHECKPOINT", "not checkpointed" },
    { "CHECKPOINT without HVM_CONTEXT", "IH SD PD HP HC CK PD CK XE", C, STREAM_REMUS, 0,
      { NOMUT, NOMUT }, -EINVAL, 7, 0, "libxc CHECKPOINT", "no HVM_CONTEXT" },
    { "STATIC_DATA_END in v2", "IH SD PD HP HC XE", C, 0, 0, { MBE(0, 12, 4, 2), NOMUT }, -EINVAL,
      1, 0, "libxc STATIC_DATA_END", "in a version 2 image" },
    { "CPUID policy in v2", "IH CP PD HP HC XE", C, 0, 0, { MBE(0, 12, 4, 2), NOMUT }, -EINVAL,
      1, 0, "libxc X86_CPUID_POLICY", "in a version 2 image" },
    /* libxl stream */
    { "bad libxl ident", LXL, L, 0, 0, { M(0, 0, 1, 'l'), NOMUT }, -EINVAL, 0, 0,
      "libxl stream header", "ident 0x6c6962786c466d74" },
    { "libxl version 3", LXL, L, 0, 0, { MBE(0, 8, 4, 3), NOMUT }, -EOPNOTSUPP, 0, 0,
      "libxl stream header", "version 3" },
    { "big-endian libxl", LXL, L, 0, 0, { MBE(0, 12, 4, 1), NOMUT }, -EOPNOTSUPP, 0, 0,
      "libxl stream header", "big-endian" },
    { "libxl reserved option", LXL, L, 0, 0, { MBE(0, 12, 4, 0x10000), NOMUT }, -EINVAL, 0, 0,
      "libxl stream header", "reserved option bits 0x10000" },
    { "LIBXC_CONTEXT with a body", LXL, L, 0, 0, { M(1, 4, 4, 8), NOMUT }, -EINVAL, 1, 0,
      "libxl LIBXC_CONTEXT", "no body" },
    { "unknown libxl record", LXL, L, 0, 0, { M(12, 0, 4, 6), NOMUT }, -EOPNOTSUPP, 12, 0,
      "libxl record type 0x6", "unknown mandatory record" },
    { "no libxc image", "LH EM LE", L, 0, 0, { NOMUT, NOMUT }, -EINVAL, 2, 0, "libxl END",
      "no libxc image" },
    { "two libxc images", "LH LC IH SD PD HP HC XE LC", L, 0, 0, { NOMUT, NOMUT }, -EINVAL, 8, 0,
      "libxl LIBXC_CONTEXT", "a second libxc image" },
    { "CHECKPOINT_END outside a checkpoint", "LH LC IH SD PD HP HC XE CE LE", L, 0, 0,
      { NOMUT, NOMUT }, -EINVAL, 8, 0, "libxl CHECKPOINT_END", "not in a checkpoint" },
    { "END inside a checkpoint", "LH LC IH SD PD HP HC CK EM LE", L, STREAM_REMUS, 0,
      { NOMUT, NOMUT }, -EINVAL, 9, 0, "libxl END", "inside a checkpoint" },
    { "CHECKPOINT_STATE in a plain stream", "LH LC IH SD PD HP HC XE CS LE", L, 0, 0,
      { NOMUT, NOMUT }, -EINVAL, 8, 0, "libxl CHECKPOINT_STATE", "only COLO streams" },
    { "COLO without CHECKPOINT_STATE", "LH LC IH SD PD HP HC CK CE PD", L, STREAM_COLO, 0,
      { NOMUT, NOMUT }, -EINVAL, 9, 0, "libxl LIBXC_CONTEXT", "right after CHECKPOINT_END" },
    { "COLO record instead of CHECKPOINT_STATE", "LH LC IH SD PD HP HC CK CE EM", L, STREAM_COLO,
      0, { NOMUT, NOMUT }, -EINVAL, 9, 0, "libxl EMULATOR_CONTEXT", "right after CHECKPOINT_END" },
    { "back-channel state forward", "LH LC IH SD PD HP HC CK CE CS", L, STREAM_COLO, 0,
      { M(9, 8, 4, STREAM_CHECKPOINT_SVM_READY), NOMUT }, -EINVAL, 9, 0,
      "libxl CHECKPOINT_STATE", "back channel" },
    { "unknown control id", "LH LC IH SD PD HP HC CK CE CS", L, STREAM_COLO, 0,
      { M(9, 8, 4, 9), NOMUT }, -EINVAL, 9, 0, "libxl CHECKPOINT_STATE", "unknown control id 9" },
    { "QEMU state", LXL, L, 0, 0, { M(12, 8, 4, STREAM_EMULATOR_QEMU_UPSTREAM), NOMUT },
      -EOPNOTSUPP, 12, 0, "libxl EMULATOR_CONTEXT", "state of QEMU" },
    { "unknown emulator", LXL, L, 0, 0, { M(12, 8, 4, 7), NOMUT }, -EOPNOTSUPP, 12, 0,
      "libxl EMULATOR_CONTEXT", "unknown emulator id 7" },
    { "not Tandem's state", LXL, L, 0, 0, { M(12, 16, 1, 't'), NOMUT }, -EOPNOTSUPP, 12, 0,
      "libxl EMULATOR_CONTEXT", "magic" },
    { "emulator record too short", LXL, L, 0, 0, { M(12, 4, 4, 4), NOMUT }, -EINVAL, 12, 0,
      "libxl EMULATOR_CONTEXT", "too short for the 8-byte emulator header" },
    { "xenstore data without NUL", "LH XS", L, 0, 0, { M(1, 8 + 13, 1, 'x'), NOMUT }, -EINVAL, 1,
      0, "libxl EMULATOR_XENSTORE_DATA", "not NUL-terminated" },
    { "xenstore key with a bad byte", "LH XS", L, 0, 0, { M(1, 8 + 9, 1, '*'), NOMUT }, -EINVAL,
      1, 0, "libxl EMULATOR_XENSTORE_DATA", "byte 0x2a" },
    { "empty xenstore key", "LH XS", L, 0, 0, { M(1, 8 + 12, 1, 0), NOMUT }, -EINVAL,
      1, 0, "libxl EMULATOR_XENSTORE_DATA", "an empty xenstore key" },
    /* xl save-file header */
    { "bad xl magic", XLF, X, 0, 0, { M(0, 4, 1, 'X'), NOMUT }, -EINVAL, 0, 0,
      "xl save-file header", "no xl save-file magic" },
    { "big-endian xl", XLF, X, 0, 0, { M(0, 32, 4, 0x04030201), NOMUT }, -EOPNOTSUPP, 0, 0,
      "xl save-file header", "big-endian host" },
    { "bad byte-order mark", XLF, X, 0, 0, { M(0, 32, 4, 0x01020305), NOMUT }, -EINVAL, 0, 0,
      "xl save-file header", "byte-order mark 0x01020305" },
    { "unknown mandatory xl flag", XLF, X, 0, 0, { M(0, 36, 4, 7), NOMUT }, -EOPNOTSUPP, 0, 0,
      "xl save-file header", "unknown mandatory flags 0x4" },
    { "legacy xl file", XLF, X, 0, 0, { M(0, 36, 4, 1), NOMUT }, -EOPNOTSUPP, 0, 0,
      "xl save-file header", "STREAMv2 flag is clear" },
    { "optional xl flags", XLF, X, 0, 0, { M(0, 40, 4, 1), NOMUT }, -EOPNOTSUPP, 0, 0,
      "xl save-file header", "unknown optional flags 0x1" },
    { "huge xl optional data", XLF, X, 0, 0, { M(0, 44, 4, 0x7fffffff), NOMUT }, -E2BIG, 0, 0,
      "xl save-file header", "2147483647 bytes of optional data exceed" },
    { "xl optional data too short", XLF, X, 0, 0, { M(0, 44, 4, 2), NOMUT }, -EINVAL, 0, 0,
      "xl save-file header", "cannot hold" },
    { "xl config overruns", XLF, X, 0, 0, { M(0, 48, 4, 5000), NOMUT }, -EINVAL, 0, 0,
      "xl save-file header", "config of 5000 bytes overruns" },
    { "xl config without NUL", XLF, X, 0, 0, { M(0, 48 + 4 + sizeof(TEST_CONFIG) - 1, 1, '}'),
      NOMUT }, -EINVAL, 0, 0, "xl save-file header", "not one NUL-terminated text" },
};

static void apply(uint8_t *bytes, size_t len, const struct built *b, const struct mutation *m)
{
    uint64_t at;

    if (m->step < 0)
        return;
    at = b->off[m->step] + m->at;
    ck_assert_uint_le(at + (uint64_t)m->width, len);
    for (int i = 0; i < m->width; i++) {
        int shift = m->big_endian ? 8 * (m->width - 1 - i) : 8 * i;
        bytes[at + i] = (uint8_t)(m->value >> shift);
    }
}

START_TEST(test_malformed_table)
{
    const struct bad_case *c = &bad_cases[_i];
    struct built b;
    struct test_log tl;
    char where[128];
    int e;

    build(&b, c->plan, false);
    apply(b.bytes, b.len, &b, &c->m[0]);
    apply(b.bytes, b.len, &b, &c->m[1]);
    e = read_all(b.bytes, b.len, c->start, c->cp, c->max_pfn, false, &tl, NULL);
    ck_assert_msg(e == c->err, "%s: got %d (%s), wanted %d", c->name, e, tl.error, c->err);
    snprintf(where, sizeof(where), "%s at offset 0x%llx: ", c->what,
             (unsigned long long)(b.off[c->where_step] + c->where_delta));
    ck_assert_msg(!strncmp(tl.error, where, strlen(where)), "%s: message \"%s\" does not start "
                  "\"%s\"", c->name, tl.error, where);
    ck_assert_msg(strstr(tl.error, c->why) != NULL, "%s: message \"%s\" lacks \"%s\"", c->name,
                  tl.error, c->why);
    built_free(&b);
}
END_TEST

/* A failed reader stays failed. */
START_TEST(test_errors_are_sticky)
{
    struct built b;
    struct test_log tl;
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXC, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;

    build(&b, IMG, false);
    b.bytes[0] = 0;
    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b.bytes, b.len, &o, &r), 0);
    ck_assert_int_eq(stream_read_record(r, &rec), -EINVAL);
    b.bytes[0] = 0xff;
    ck_assert_int_eq(stream_read_record(r, &rec), -EINVAL);
    stream_reader_free(r);
    built_free(&b);
}
END_TEST

/* ---- Writer and sink ---------------------------------------------------------------- */

START_TEST(test_writer_refuses_bad_arguments)
{
    struct test_log tl;
    struct stream_sink *s;
    int fd = memfd_create("w", 0);
    uint64_t pfns[STREAM_MAX_BATCH + 1] = { 0 };
    uint8_t types[STREAM_MAX_BATCH + 1] = { 0 };
    const void *pages[STREAM_MAX_BATCH + 1] = { page_a };
    xen_msr_entry_t msr = { 0x10, 1, 0 };

    test_log_init(&tl);
    ck_assert_int_eq(stream_sink_new(fd, &tl.log, &s), 0);
    ck_assert_int_eq(stream_write_page_data(s, 0, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "PAGE_DATA at offset 0x0: 0 pages"));
    ck_assert_int_eq(stream_write_page_data(s, STREAM_MAX_BATCH + 1, pfns, types, pages), -EINVAL);
    pfns[0] = 1ULL << 52;
    ck_assert_int_eq(stream_write_page_data(s, 1, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "more than 52 bits"));
    pfns[0] = 0;
    types[0] = 0x1;
    ck_assert_int_eq(stream_write_page_data(s, 1, pfns, types, pages), -EINVAL);
    types[0] = STREAM_PAGE_NORMAL;
    pages[0] = NULL;
    ck_assert_int_eq(stream_write_page_data(s, 1, pfns, types, pages), -EINVAL);
    ck_assert_ptr_nonnull(strstr(tl.error, "no data for a normal page"));
    ck_assert_int_eq(stream_write_msr_policy(s, &msr, 1), -EINVAL);
    ck_assert_int_eq(stream_write_cpuid_policy(s, test_leaves, 0), 0);   /* elided */
    ck_assert_int_eq(stream_write_msr_policy(s, test_msrs, 0), 0);
    ck_assert_int_eq(stream_write_hvm_params(s, test_params, 0), 0);
    ck_assert_int_eq(stream_write_hvm_context(s, page_a, 0), -EINVAL);
    ck_assert_int_eq(stream_write_hvm_context(s, page_a, STREAM_MAX_HVM_CONTEXT + 1), -E2BIG);
    ck_assert_int_eq(stream_write_hvm_params(s, test_params, STREAM_MAX_HVM_PARAMS + 1), -E2BIG);
    ck_assert_int_eq(stream_write_checkpoint_state(s, 4), -EINVAL);
    ck_assert_int_eq(stream_write_emulator_context(s, 0, NULL, 5), -EINVAL);
    ck_assert_uint_eq(stream_sink_offset(s), 0);        /* nothing was written */
    ck_assert_int_eq(stream_sink_sync(s), 0);
    stream_sink_free(s);
    close(fd);
}
END_TEST

START_TEST(test_sink)
{
    struct test_log tl;
    struct stream_sink *s;
    int fd = memfd_create("s", 0), p[2];
    static uint8_t big[600 * 1024];
    uint8_t back[16];

    test_log_init(&tl);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 251);
    ck_assert_int_eq(stream_sink_new(fd, &tl.log, &s), 0);
    ck_assert_int_eq(stream_sink_write(s, "abc", 3), 0);
    ck_assert_int_eq(stream_sink_write(s, big, sizeof(big)), 0);    /* bypasses the buffer */
    ck_assert_int_eq(stream_sink_write(s, "xyz", 3), 0);
    ck_assert_uint_eq(stream_sink_offset(s), sizeof(big) + 6);
    ck_assert_int_eq(stream_sink_sync(s), 0);
    ck_assert_int_eq(pread(fd, back, 6, 0), 6);
    ck_assert_mem_eq(back, "abc\0\1\2", 6);
    ck_assert_int_eq(pread(fd, back, 3, sizeof(big) + 3), 3);
    ck_assert_mem_eq(back, "xyz", 3);
    ck_assert_int_eq(pread(fd, back, 4, 3 + 300000), 4);
    ck_assert_uint_eq(back[0], 300000 % 251);
    stream_sink_free(s);
    close(fd);

    /* A pipe with no reader: -EPIPE (SIGPIPE ignored), and it sticks. */
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    ck_assert_int_eq(stream_sink_new(p[1], &tl.log, &s), 0);
    ck_assert_int_eq(stream_write_libxl_header(s), 0);              /* buffered */
    ck_assert_int_eq(stream_sink_flush(s), -EPIPE);
    ck_assert_ptr_nonnull(strstr(tl.error, "stream write at offset 0x0"));
    ck_assert_int_eq(stream_write_libxl_end(s), -EPIPE);
    ck_assert_int_eq(stream_sink_sync(s), -EPIPE);                  /* fsync skipped on pipes */
    stream_sink_free(s);
    close(p[1]);
    ck_assert_int_eq(stream_sink_new(-1, &tl.log, &s), -EBADF);
}
END_TEST

START_TEST(test_other_records_round_trip)
{
    struct built b;
    struct stream_record rec = { .layer = STREAM_LAYER_LIBXC };
    uint64_t *p;
    unsigned n;
    uint32_t id;

    build(&b, "DL", false);
    ck_assert_uint_eq(b.len, 8 + 32);
    rec.type = STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST;
    rec.length = 32;
    rec.body = b.bytes + 8;
    ck_assert_int_eq(stream_decode_dirty_pfn_list(&rec, &p, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(p[3], 9);
    free(p);
    built_free(&b);

    build(&b, "CS VF CK", false);
    rec.layer = STREAM_LAYER_LIBXL;
    rec.type = STREAM_LIBXL_CHECKPOINT_STATE;
    rec.length = 4;
    rec.body = b.bytes + 8;
    ck_assert_int_eq(stream_decode_checkpoint_state(&rec, &id), 0);
    ck_assert_uint_eq(id, STREAM_CHECKPOINT_NEW);
    ck_assert_mem_eq(b.bytes + 16, "\x0d\0\0\0\0\0\0\0\x0e\0\0\0\0\0\0\0", 16);
    built_free(&b);
}
END_TEST

/* ---- Names and printers --------------------------------------------------------------- */

START_TEST(test_names)
{
    static const char *const libxc[] = {
        "END", "PAGE_DATA", "X86_PV_INFO", "X86_PV_P2M_FRAMES", "X86_PV_VCPU_BASIC",
        "X86_PV_VCPU_EXTENDED", "X86_PV_VCPU_XSAVE", "SHARED_INFO", "X86_TSC_INFO",
        "HVM_CONTEXT", "HVM_PARAMS", "TOOLSTACK", "X86_PV_VCPU_MSRS", "VERIFY", "CHECKPOINT",
        "CHECKPOINT_DIRTY_PFN_LIST", "STATIC_DATA_END", "X86_CPUID_POLICY", "X86_MSR_POLICY",
    };

    for (unsigned t = 0; t <= 0x12; t++)
        ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXC, t), libxc[t]);
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXC, 0x13));
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXC, 0x80000001));
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXC, 0x100), "TANDEM_PAGE_DATA_LZ4");
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXC, 0xff));
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXC, 0x101), "TANDEM_PAGE_DATA_DELTA");
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXC, 0x102));
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXL, 0x100), "TANDEM_DISK_DATA");
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXL, 0x101), "TANDEM_CHECKPOINT_ACK");
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXL, 0x102));
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXL, 3), "EMULATOR_CONTEXT");
    ck_assert_str_eq(stream_record_name(STREAM_LAYER_LIBXL, 5), "CHECKPOINT_STATE");
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_LIBXL, 6));
    ck_assert_ptr_null(stream_record_name(STREAM_LAYER_XL, 0));
    ck_assert_str_eq(stream_page_type_name(STREAM_PAGE_XALLOC), "XALLOC");
    ck_assert_str_eq(stream_hvm_typecode_name(6), "LAPIC_REGS");
    ck_assert_str_eq(stream_hvm_typecode_name(20), "CPU_MSR");
    ck_assert_ptr_null(stream_hvm_typecode_name(0x80));
}
END_TEST

/* Prints every record of a stream into a string. */
static char *print_stream(const struct built *b, enum stream_layer start, bool detail)
{
    struct test_log tl;
    struct stream_reader_opts o = { .start = start, .log = &tl.log };
    struct stream_reader *r;
    struct stream_record rec;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    test_log_init(&tl);
    ck_assert_int_eq(stream_reader_new_mem(b->bytes, b->len, &o, &r), 0);
    do {
        ck_assert_msg(stream_read_record(r, &rec) == 0, "%s", tl.error);
        ck_assert_int_eq(detail ? stream_print_detail(f, &rec) : stream_print_summary(f, &rec), 0);
    } while (!rec.last);
    stream_reader_free(r);
    fclose(f);
    return text;
}


START_TEST(test_printers)
{
    struct built b;
    char *text;
    unsigned lines = 0;

    build(&b, XL_FILE, false);
    text = print_stream(&b, STREAM_LAYER_XL, false);
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, 15);                     /* one line per header and record */
    expect_text(text, "0x00000000 xl    header: xl save file, flags STREAMv2 JSON");
    expect_text(text, "libxl header: LibxlFmt version 2, little-endian");
    expect_text(text, "libxc header: XENF version 3, little-endian, x86 HVM, page shift 12");
    expect_text(text, "PAGE_DATA: 6 pfns (2 with data, 1 BROKEN, 2 XALLOC, 1 XTAB): 0x10-0x15");
    expect_text(text, "PAGE_DATA: 256 pfns (0 with data, 256 XALLOC): 0x0-0x9f, 0x100-0x15f");
    expect_text(text, "X86_TSC_INFO: mode 0, 2999998 kHz, 123456789012 ns, incarnation 3");
    expect_text(text, "HVM_CONTEXT: 2435 bytes, 8 save records, 1 vCPU");
    expect_text(text, "X86_CPUID_POLICY: 3 leaves");
    expect_text(text, "EMULATOR_CONTEXT: Tandem device model, index 0, 40 bytes of state");
    free(text);

    text = print_stream(&b, STREAM_LAYER_XL, true);
    expect_text(text, TEST_CONFIG);
    expect_text(text, "rip 0x0000000000100000 rsp 0x0000000000007ff0");
    expect_text(text, "cr0 0x80050033");
    expect_text(text, "cr3 0x0000000000001000");
    expect_text(text, "cs   sel 0x0000");
    expect_text(text, "tandem-extension typecode 128, instance 0, len 3");
    expect_text(text, "LAPIC_REGS instance 0, len 1024");
    expect_text(text, "svr 0x1ff (enabled)");
    expect_text(text, "timer initial 100000");
    expect_text(text, "requested: 0x30");
    expect_text(text, "pin  2 -> vector 0x30");
    expect_text(text, "23 pins masked");
    expect_text(text, "channel 0: count 65536 mode 2");
    expect_text(text, "apic_base 0xfee00900 (enabled)");
    expect_text(text, "leaf 0x00000007.0        eax 0x00000000 ebx 0x009c27ab");
    expect_text(text, "msr 0x0000010a = 0x000000000c000064");
    expect_text(text, "12 (IDENT_PT) = 0xfeffc000");
    expect_text(text, "    XALLOC: 0x0-0x9f, 0x100-0x15f");
    expect_text(text, "    NORMAL: 0x10-0x11");
    expect_text(text, "    +0x000: 75 61 72 74");
    free(text);
    built_free(&b);

    /* A malformed HVM context prints as such, without reading past it. */
    {
        uint8_t blob[16] = { 2, 0, 0, 0, 0xff, 0xff, 0, 0 };
        struct stream_record rec = { .layer = STREAM_LAYER_LIBXC,
                                     .type = STREAM_LIBXC_HVM_CONTEXT, .length = 12,
                                     .body = blob };
        char *t = NULL;
        size_t tl = 0;
        FILE *f = open_memstream(&t, &tl);
        ck_assert_int_eq(stream_print_detail(f, &rec), 0);
        fclose(f);
        expect_text(t, "(malformed)");
        expect_text(t, "typecode 2 claims 65535 bytes, only 4 left: truncated");
        free(t);
    }
}
END_TEST

/* ---- Sample images ----------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const struct built *b)
{
    char *path;
    FILE *f;

    ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
    f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(b->bytes, 1, b->len, f), b->len);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

/* Every image written here must read back clean; with TANDEM_STREAM_IMAGES
 * set they are kept for verify-xen.sh and as fuzz seeds. */
START_TEST(test_write_images)
{
    static const struct {
        const char *name, *plan;
        enum stream_layer start;
        enum stream_checkpoints cp;
        bool small, seed, v2, lz4;
    } images[] = {
        { "libxc.img", LIBXC_IMAGE, STREAM_LAYER_LIBXC, STREAM_PLAIN, false, false, false, false },
        { "libxl.img", LIBXL_STREAM, STREAM_LAYER_LIBXL, STREAM_PLAIN, false, false, false, false },
        { "xl.img", XL_FILE, STREAM_LAYER_XL, STREAM_PLAIN, false, false, false, false },
        { "xl-small", "XH LH LC IH CP MP SD PD TS HP HC XE EM LE", STREAM_LAYER_XL, STREAM_PLAIN,
          true, true, false, false },
        { "libxl-remus", "LH LC IH CP SD PZ HP HC CK EM CE TS HP HC CK EM CE HC XE LE",
          STREAM_LAYER_LIBXL, STREAM_REMUS, true, true, false, false },
        { "libxl-colo", "LH OP LC IH SD PZ HP HC CK XS EM CE CS HP HC XE LE", STREAM_LAYER_LIBXL,
          STREAM_COLO, true, true, false, false },
        { "libxc-v3", "IH CP MP SD PZ VF PD TS HP HC OP XE", STREAM_LAYER_LIBXC,
          STREAM_PLAIN, true, true, false, false },
        { "libxc-v2", "IH PZ TS HP HC XE", STREAM_LAYER_LIBXC, STREAM_PLAIN, true, true, true, false },
        /* Tandem's compressed pages: a fuzz seed, never one for Xen's verifier. */
        { "libxl-lz4", "LH LC IH SD PL PR TS HP HC XE EM LE", STREAM_LAYER_LIBXL, STREAM_PLAIN,
          true, true, false, true },
        /* Remus with Tandem's records: disk blocks, page deltas, the clean end. */
        { "libxl-remus-tandem", "LH DD LC IH SD PZ HP HC CK EM DD CE PX HP HC CK EM DD CE XE LE",
          STREAM_LAYER_LIBXL, STREAM_REMUS, true, true, false, false },
    };
    const char *dir = getenv("TANDEM_STREAM_IMAGES");
    char *seeds = NULL;
    struct test_log tl;

    if (dir) {
        ck_assert_int_ge(asprintf(&seeds, "%s/seeds", dir), 0);
        mkdir(dir, 0755);
        mkdir(seeds, 0755);
    }
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        struct built b;
        int e;

        build(&b, images[i].plan, images[i].small);
        if (images[i].v2)
            b.bytes[15] = 2;
        e = read_all_opts(b.bytes, b.len, (struct stream_reader_opts){
                              .start = images[i].start, .checkpoints = images[i].cp,
                              .tandem_lz4 = images[i].lz4, .tandem_delta = true }, &tl, NULL);
        ck_assert_msg(e == 0, "%s: %d %s", images[i].name, e, tl.error);
        if (images[i].seed)
            ck_assert_msg(b.len <= 8192, "seed %s is %zu bytes", images[i].name, b.len);
        if (dir)
            write_file(images[i].seed ? seeds : dir, images[i].name, &b);
        built_free(&b);
    }
    free(seeds);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("streams");
    TCase *tc;

    tc = tcase_create("round trips");
    tcase_add_test(tc, test_libxc_round_trip);
    tcase_add_test(tc, test_libxl_and_xl_round_trip);
    tcase_add_test(tc, test_header_bytes);
    tcase_add_test(tc, test_v2_image_infers_static_data_end);
    tcase_add_test(tc, test_optional_records_skipped);
    tcase_add_test(tc, test_checkpointed_streams);
    tcase_add_test(tc, test_remus_records_round_trip);
    tcase_add_test(tc, test_delta_encoding);
    tcase_add_test(tc, test_remus_records_malformed);
    tcase_add_test(tc, test_remus_printers);
    tcase_add_test(tc, test_xen_made_order);
    tcase_add_test(tc, test_other_records_round_trip);
    tcase_add_test(tc, test_pipe_and_trailing_bytes);
    tcase_add_test(tc, test_lz4_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_loop_test(tc, test_malformed_table, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_errors_are_sticky);
    tcase_add_test(tc, test_lz4_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, test_writer_refuses_bad_arguments);
    tcase_add_test(tc, test_sink);
    tcase_add_test(tc, test_lz4_writer);
    suite_add_tcase(s, tc);

    tc = tcase_create("printers");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_printers);
    tcase_add_test(tc, test_write_images);
    suite_add_tcase(s, tc);
    return s;
}
