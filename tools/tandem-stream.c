/* tandem-stream: looks inside Migration v2 streams -- xl save files, libxl
 * streams and libxc images -- through the stream layer's strict reader:
 * what an image holds (info), every record decoded (dump), whether it is
 * valid to its final END (verify), how two images differ (diff), and
 * conversions between the layers and the libxc image versions (convert).
 *
 * Every command reads pipes as well as files: nothing here seeks except to
 * rewind a regular file after looking at its first bytes, and a pipe's
 * first bytes are handed back to the reader through a feeder thread. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <xen/xen.h>
#include <xen/hvm/save.h>

#include "tandem/streams.h"

#define PROG "tandem-stream"

enum { ST_OK = 0, ST_FAILED = 1, ST_USAGE = 2 };

/* Inputs larger than this get a progress line when stderr is a terminal. */
#define PROGRESS_MIN (64ull << 20)
#define PROGRESS_EVERY_NS 200000000ull
#define PROGRESS_DELAY_NS 500000000ull      /* none for quick reads */

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "HVM save records are little-endian");

/* ---- Small helpers -------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void errorf(const char *cmd, const char *what, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": %s: %s : ", cmd, what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t get_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * (3 - i)));
}

static unsigned pad8(uint32_t len)
{
    return (8u - (len & 7u)) & 7u;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "128 MiB", "1.5 GiB", "300 KiB", "17 bytes". */
static const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    int u = -1;

    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, len, "%" PRIu64 " bytes", bytes);
    else if (bytes % (1ull << (10 * (u + 1))) == 0)
        snprintf(buf, len, "%.0f %s", v, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

/* Bytes of the stream a header or record takes, padding included. */
static uint64_t rec_stream_bytes(const struct stream_record *rec)
{
    if (rec->inferred)
        return 0;
    if (rec->header)
        return rec->length;
    return 8ull + rec->length + pad8(rec->length);
}

static bool is_page_record(const struct stream_record *rec)
{
    return !rec->header && rec->layer == STREAM_LAYER_LIBXC &&
           (rec->type == STREAM_LIBXC_PAGE_DATA || rec->type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4);
}

/* What a page record would take as a plain PAGE_DATA. */
static uint64_t page_record_plain_bytes(const struct stream_record *rec)
{
    if (rec->type != STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4)
        return rec_stream_bytes(rec);
    return 8ull + 8 + 8ull * get_le(rec->body, 4) + rec->page_data_len;
}

static const char *rec_name(const struct stream_record *rec)
{
    const char *n;

    if (rec->header)
        return "header";
    n = stream_record_name(rec->layer, rec->type);
    return n ? n : "unknown";
}

static ssize_t read_upto(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- HVM save records ------------------------------------------------------
 * HVM_CONTEXT is Xen's save blob: descriptors {u16 typecode, u16 instance,
 * u32 length}, each followed by its record; HEADER first, END last.
 * Typecodes 0x80 and up are Tandem's extensions (docs/hvm-context.md). */

#define HVM_CODE_END 0
#define HVM_CODE_HEADER 1
#define HVM_CODE_CPU 2
#define HVM_CODE_LAPIC 5
#define TANDEM_HVM_FIRST 0x80
#define TANDEM_HVM_KVM_VCPU 0x80
#define TANDEM_HVM_KVM_MSRS 0x81
#define TANDEM_HVM_KVM_PIT 0x82
#define TANDEM_HVM_KVM_IRQCHIP 0x83
#define TANDEM_HVM_KVM_CLOCK 0x84

struct hvm_entry {
    uint16_t code, inst;
    uint32_t len;
    uint32_t off;               /* of its descriptor in the blob */
    const uint8_t *body;
};

static const char *hvm_code_name(unsigned code, char *buf, size_t len)
{
    static const char *const tandem[] = { "KVM_VCPU", "KVM_MSRS", "KVM_PIT", "KVM_IRQCHIP",
                                          "KVM_CLOCK" };
    const char *n = stream_hvm_typecode_name(code);

    if (n)
        return n;
    if (code >= TANDEM_HVM_FIRST && code - TANDEM_HVM_FIRST < sizeof(tandem) / sizeof(tandem[0]))
        snprintf(buf, len, "TANDEM_%s", tandem[code - TANDEM_HVM_FIRST]);
    else
        snprintf(buf, len, "typecode_%u", code);
    return buf;
}

/* Walks the descriptors.  Stops at the END record; *why says what is
 * wrong with a blob that cannot be walked (the entries before the fault
 * are kept). */
static int hvm_parse(const uint8_t *b, uint32_t len, struct hvm_entry **out, unsigned *n,
                     char *why, size_t whylen)
{
    struct hvm_entry *e = NULL;
    unsigned cnt = 0, cap = 0;
    uint32_t off = 0;
    int rc = 0;

    why[0] = 0;
    while (off < len) {
        if (len - off < 8) {
            snprintf(why, whylen, "%u stray bytes at +0x%x, too few for a descriptor",
                     len - off, off);
            rc = -EINVAL;
            break;
        }
        uint16_t code = (uint16_t)get_le(b + off, 2), inst = (uint16_t)get_le(b + off + 2, 2);
        uint32_t rlen = (uint32_t)get_le(b + off + 4, 4);
        if (rlen > len - off - 8) {
            char nb[32];
            snprintf(why, whylen, "the %s record at +0x%x (instance %u) claims %u bytes; "
                     "only %u are left", hvm_code_name(code, nb, sizeof(nb)), off, inst, rlen,
                     len - off - 8);
            rc = -EINVAL;
            break;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 32;
            struct hvm_entry *ne = realloc(e, cap * sizeof(*e));
            if (!ne) {
                snprintf(why, whylen, "out of memory");
                rc = -ENOMEM;
                break;
            }
            e = ne;
        }
        e[cnt++] = (struct hvm_entry){ code, inst, rlen, off, b + off + 8 };
        off += 8 + rlen;
        if (code == HVM_CODE_END) {
            if (off != len) {
                snprintf(why, whylen, "%u bytes after the END record", len - off);
                rc = -EINVAL;
            }
            break;
        }
    }
    *out = e;
    *n = cnt;
    return rc;
}

/* Named fields of the records we know well enough to compare field by
 * field.  Fields wider than 8 bytes are blobs, compared as byte ranges. */
struct field {
    const char *name;
    uint16_t off, size;
};

#define FIELD(type, f) { #f, offsetof(struct type, f), sizeof(((struct type *)0)->f) }
#define CPU(f) FIELD(hvm_hw_cpu, f)
static const struct field cpu_fields[] = {
    CPU(rax), CPU(rbx), CPU(rcx), CPU(rdx), CPU(rbp), CPU(rsi), CPU(rdi), CPU(rsp),
    CPU(r8), CPU(r9), CPU(r10), CPU(r11), CPU(r12), CPU(r13), CPU(r14), CPU(r15),
    CPU(rip), CPU(rflags), CPU(cr0), CPU(cr2), CPU(cr3), CPU(cr4),
    CPU(dr0), CPU(dr1), CPU(dr2), CPU(dr3), CPU(dr6), CPU(dr7),
    CPU(cs_sel), CPU(ds_sel), CPU(es_sel), CPU(fs_sel), CPU(gs_sel), CPU(ss_sel),
    CPU(tr_sel), CPU(ldtr_sel),
    CPU(cs_limit), CPU(ds_limit), CPU(es_limit), CPU(fs_limit), CPU(gs_limit),
    CPU(ss_limit), CPU(tr_limit), CPU(ldtr_limit), CPU(idtr_limit), CPU(gdtr_limit),
    CPU(cs_base), CPU(ds_base), CPU(es_base), CPU(fs_base), CPU(gs_base), CPU(ss_base),
    CPU(tr_base), CPU(ldtr_base), CPU(idtr_base), CPU(gdtr_base),
    CPU(cs_arbytes), CPU(ds_arbytes), CPU(es_arbytes), CPU(fs_arbytes), CPU(gs_arbytes),
    CPU(ss_arbytes), CPU(tr_arbytes), CPU(ldtr_arbytes),
    CPU(sysenter_cs), CPU(sysenter_esp), CPU(sysenter_eip), CPU(shadow_gs),
    CPU(msr_flags), CPU(msr_lstar), CPU(msr_star), CPU(msr_cstar), CPU(msr_syscall_mask),
    CPU(msr_efer), CPU(msr_tsc_aux), CPU(tsc), CPU(pending_event), CPU(error_code),
    CPU(flags), CPU(pad0), CPU(fpu_regs),
};
#undef CPU

static const struct field header_fields[] = {
    FIELD(hvm_save_header, magic), FIELD(hvm_save_header, version),
    FIELD(hvm_save_header, changeset), FIELD(hvm_save_header, cpuid),
    FIELD(hvm_save_header, gtsc_khz),
};

static const struct field lapic_fields[] = {
    FIELD(hvm_hw_lapic, apic_base_msr), FIELD(hvm_hw_lapic, disabled),
    FIELD(hvm_hw_lapic, timer_divisor), FIELD(hvm_hw_lapic, tdt_msr),
};

/* Tandem's extension records, as docs/hvm-context.md lays them out. */
static const struct field kvm_vcpu_fields[] = {
    { "version", 0, 4 }, { "flags", 4, 4 }, { "mp_state", 8, 4 }, { "pad", 12, 4 },
    { "events", 16, 64 }, { "sregs2", 80, 320 },
};

static const struct field kvm_clock_fields[] = {
    { "version", 0, 4 }, { "flags", 4, 4 }, { "clock", 8, 8 }, { "realtime", 16, 8 },
    { "host_tsc", 24, 8 },
};

static const struct field *hvm_fields(unsigned code, unsigned *n)
{
#define TABLE(t) (*n = sizeof(t) / sizeof(t[0]), t)
    switch (code) {
    case HVM_CODE_HEADER: return TABLE(header_fields);
    case HVM_CODE_CPU: return TABLE(cpu_fields);
    case HVM_CODE_LAPIC: return TABLE(lapic_fields);
    case TANDEM_HVM_KVM_VCPU: return TABLE(kvm_vcpu_fields);
    case TANDEM_HVM_KVM_CLOCK: return TABLE(kvm_clock_fields);
    }
#undef TABLE
    *n = 0;
    return NULL;
}

/* ---- Sparse pfn maps ---------------------------------------------------------
 * A set of pfns, optionally with a 64-bit value each (diff keeps a page's
 * hash there), in chunks of 4096 pfns found through an open-addressed
 * hash table: 8 bytes and a bit per page whatever the pfns' spread. */

#define PFN_CHUNK_SHIFT 12
#define PFN_CHUNK (1u << PFN_CHUNK_SHIFT)

struct pfnchunk {
    uint64_t key;               /* pfn >> PFN_CHUNK_SHIFT */
    uint64_t present[PFN_CHUNK / 64];
    uint64_t *values;
};

struct pfnmap {
    struct pfnchunk **slot;
    size_t nslot, nchunk;
    uint64_t count;
    bool with_values;
    struct pfnchunk *last;
};

static size_t pfnmap_slot(uint64_t key, size_t nslot)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;

    return (size_t)(h ^ (h >> 29)) & (nslot - 1);
}

static struct pfnchunk *pfnmap_find(const struct pfnmap *m, uint64_t key)
{
    if (m->last && m->last->key == key)
        return m->last;
    if (!m->nslot)
        return NULL;
    for (size_t i = pfnmap_slot(key, m->nslot);; i = (i + 1) & (m->nslot - 1)) {
        struct pfnchunk *c = m->slot[i];
        if (!c || c->key == key)
            return c;
    }
}

static int pfnmap_insert_chunk(struct pfnmap *m, struct pfnchunk *c)
{
    if (2 * (m->nchunk + 1) > m->nslot) {
        size_t ns = m->nslot ? 2 * m->nslot : 64;
        struct pfnchunk **s = calloc(ns, sizeof(*s));
        if (!s)
            return -ENOMEM;
        for (size_t i = 0; i < m->nslot; i++) {
            if (!m->slot[i])
                continue;
            size_t j = pfnmap_slot(m->slot[i]->key, ns);
            while (s[j])
                j = (j + 1) & (ns - 1);
            s[j] = m->slot[i];
        }
        free(m->slot);
        m->slot = s;
        m->nslot = ns;
    }
    size_t j = pfnmap_slot(c->key, m->nslot);
    while (m->slot[j])
        j = (j + 1) & (m->nslot - 1);
    m->slot[j] = c;
    m->nchunk++;
    return 0;
}

static int pfnmap_set(struct pfnmap *m, uint64_t pfn, uint64_t value)
{
    uint64_t key = pfn >> PFN_CHUNK_SHIFT;
    unsigned i = (unsigned)(pfn & (PFN_CHUNK - 1));
    struct pfnchunk *c = pfnmap_find(m, key);

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return -ENOMEM;
        c->key = key;
        if (m->with_values && !(c->values = calloc(PFN_CHUNK, sizeof(uint64_t)))) {
            free(c);
            return -ENOMEM;
        }
        if (pfnmap_insert_chunk(m, c)) {
            free(c->values);
            free(c);
            return -ENOMEM;
        }
    }
    m->last = c;
    if (!(c->present[i / 64] & (1ull << (i % 64)))) {
        c->present[i / 64] |= 1ull << (i % 64);
        m->count++;
    }
    if (c->values)
        c->values[i] = value;
    return 0;
}

static bool pfnmap_get(const struct pfnmap *m, uint64_t pfn, uint64_t *value)
{
    const struct pfnchunk *c = pfnmap_find(m, pfn >> PFN_CHUNK_SHIFT);
    unsigned i = (unsigned)(pfn & (PFN_CHUNK - 1));

    if (!c || !(c->present[i / 64] & (1ull << (i % 64))))
        return false;
    if (value)
        *value = c->values ? c->values[i] : 0;
    return true;
}

static int chunk_cmp(const void *a, const void *b)
{
    const struct pfnchunk *x = *(struct pfnchunk *const *)a, *y = *(struct pfnchunk *const *)b;

    return x->key < y->key ? -1 : x->key > y->key;
}

/* The chunks in pfn order (malloc'd; NULL with *n = 0 for an empty map). */
static struct pfnchunk **pfnmap_sorted(const struct pfnmap *m, size_t *n)
{
    struct pfnchunk **v;
    size_t k = 0;

    *n = 0;
    if (!m->nchunk)
        return NULL;
    v = malloc(m->nchunk * sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < m->nslot; i++)
        if (m->slot[i])
            v[k++] = m->slot[i];
    qsort(v, k, sizeof(*v), chunk_cmp);
    *n = k;
    return v;
}

static void pfnmap_free(struct pfnmap *m)
{
    for (size_t i = 0; i < m->nslot; i++)
        if (m->slot[i]) {
            free(m->slot[i]->values);
            free(m->slot[i]);
        }
    free(m->slot);
    memset(m, 0, sizeof(*m));
}

/* Calls emit for each run of consecutive pfns, in order; -ENOMEM. */
static int pfnmap_ranges(const struct pfnmap *m, void (*emit)(void *ctx, uint64_t lo, uint64_t hi),
                         void *ctx)
{
    size_t n;
    struct pfnchunk **v = pfnmap_sorted(m, &n);
    bool have = false;
    uint64_t lo = 0, hi = 0;

    if (!v && m->nchunk)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++)
        for (unsigned w = 0; w < PFN_CHUNK / 64; w++) {
            uint64_t bits = v[k]->present[w];
            while (bits) {
                unsigned b = (unsigned)__builtin_ctzll(bits);
                uint64_t pfn = (v[k]->key << PFN_CHUNK_SHIFT) + w * 64 + b;
                bits &= bits - 1;
                if (have && pfn == hi + 1) {
                    hi = pfn;
                    continue;
                }
                if (have)
                    emit(ctx, lo, hi);
                have = true;
                lo = hi = pfn;
            }
        }
    if (have)
        emit(ctx, lo, hi);
    free(v);
    return 0;
}

/* Printing ranges, wrapped, or counting them. */
struct range_printer {
    FILE *f;
    const char *indent;
    unsigned col, shown, max, ranges;
};

static void range_emit(void *ctx, uint64_t lo, uint64_t hi)
{
    struct range_printer *p = ctx;
    char b[48];
    int len;

    p->ranges++;
    if (!p->f || (p->max && p->shown >= p->max))
        return;
    len = lo == hi ? snprintf(b, sizeof(b), "0x%" PRIx64, lo)
                   : snprintf(b, sizeof(b), "0x%" PRIx64 "-0x%" PRIx64, lo, hi);
    if (p->col && p->col + 1 + (unsigned)len > 78) {
        fputc('\n', p->f);
        p->col = 0;
    }
    if (!p->col) {
        fputs(p->indent, p->f);
        p->col = (unsigned)strlen(p->indent);
    } else {
        fputc(' ', p->f);
        p->col++;
    }
    fputs(b, p->f);
    p->col += (unsigned)len;
    p->shown++;
}

/* Prints the ranges of m; at most max of them (0: all). */
static int print_ranges(FILE *f, const struct pfnmap *m, const char *indent, unsigned max)
{
    struct range_printer p = { .f = f, .indent = indent, .max = max };
    int rc = pfnmap_ranges(m, range_emit, &p);

    if (p.ranges > p.shown)
        fprintf(f, "%s... %u more range%s", p.col ? " " : indent, p.ranges - p.shown,
                p.ranges - p.shown == 1 ? "" : "s");
    if (p.ranges)
        fputc('\n', f);
    return rc;
}

static unsigned count_ranges(const struct pfnmap *m)
{
    struct range_printer p = { 0 };

    pfnmap_ranges(m, range_emit, &p);
    return p.ranges;
}

/* ---- Input -------------------------------------------------------------------
 * Opens a file or stdin, looks at its first 8 bytes to tell the layer, and
 * gives the reader the whole stream: a regular file is rewound, anything
 * else is fed through a pipe by a thread that writes the bytes looked at
 * first. */

struct read_opts {
    enum stream_checkpoints checkpoints;
    bool xen_made;
};

struct feeder {
    int src, dst;
    uint8_t peek[8];
    size_t npeek;
    atomic_int err;             /* errno of a failed read of src */
    atomic_int refs;
};

static void feeder_put(struct feeder *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1)
        free(f);
}

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    const size_t size = 256 * 1024;
    uint8_t *buf = malloc(size);

    if (!buf)
        atomic_store(&f->err, ENOMEM);
    else if (!write_all(f->dst, f->peek, f->npeek))
        for (;;) {
            ssize_t n = read(f->src, buf, size);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                atomic_store(&f->err, errno);
                break;
            }
            if (n == 0 || write_all(f->dst, buf, (size_t)n))
                break;          /* the end, or the reader has gone */
        }
    free(buf);
    close(f->dst);
    if (f->src != STDIN_FILENO)
        close(f->src);
    feeder_put(f);
    return NULL;
}

struct input {
    const char *cmd, *path, *label;
    int fd;                     /* what the reader reads */
    bool own_fd;
    struct feeder *feeder;
    uint64_t size;              /* bytes from the stream's start, 0 if unknown */
    enum stream_layer layer;
    struct stream_reader *r;
    struct tlog log;
    char error[1024];
    bool have_error;
    bool quiet_notes;
    bool progress, progress_shown;
    uint64_t next_progress;
};

static void input_progress_clear(struct input *in)
{
    if (in->progress_shown) {
        fputs("\r\033[K", stderr);
        in->progress_shown = false;
    }
}

__attribute__((format(printf, 2, 3)))
static void input_note(struct input *in, const char *fmt, ...)
{
    va_list ap;

    input_progress_clear(in);
    fprintf(stderr, PROG ": %s: %s : ", in->cmd, in->label);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void input_log(void *opaque, enum tlog_level level, const char *msg)
{
    struct input *in = opaque;

    if (level >= TLOG_ERROR) {
        if (!in->have_error) {
            snprintf(in->error, sizeof(in->error), "%s", msg);
            in->have_error = true;
        }
        return;
    }
    if (!in->quiet_notes)
        input_note(in, "%s", msg);
}

static void input_progress(struct input *in)
{
    uint64_t off, t;
    char a[32], b[32];

    if (!in->progress || (in->size && in->size <= PROGRESS_MIN))
        return;
    off = stream_reader_offset(in->r);
    if (!in->size && off < PROGRESS_MIN)
        return;
    t = now_ns();
    if (t < in->next_progress)
        return;
    in->next_progress = t + PROGRESS_EVERY_NS;
    if (in->size)
        fprintf(stderr, "\r" PROG ": %s: %s: %s of %s read (%u%%)\033[K", in->cmd, in->label,
                fmt_size(off, a, sizeof(a)), fmt_size(in->size, b, sizeof(b)),
                (unsigned)(off * 100 / in->size));
    else
        fprintf(stderr, "\r" PROG ": %s: %s: %s read\033[K", in->cmd, in->label,
                fmt_size(off, a, sizeof(a)));
    in->progress_shown = true;
}

static bool detect_layer(const uint8_t *p, size_t n, enum stream_layer *layer)
{
    static const uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    if (n < 8)
        return false;
    if (!memcmp(p, STREAM_XL_MAGIC, 8))
        *layer = STREAM_LAYER_XL;
    else if (!memcmp(p, "LibxlFmt", 8))
        *layer = STREAM_LAYER_LIBXL;
    else if (!memcmp(p, ones, 8))
        *layer = STREAM_LAYER_LIBXC;
    else
        return false;
    return true;
}

/* Prints its own error; returns 0 or -errno. */
static int input_open(struct input *in, const char *cmd, const char *path, const struct read_opts *ro)
{
    bool is_stdin = !strcmp(path, "-");
    struct stat st;
    off_t pos = -1;
    uint8_t peek[8];
    ssize_t n;
    int fd, rc;

    memset(in, 0, sizeof(*in));
    in->cmd = cmd;
    in->path = path;
    in->label = is_stdin ? "stdin" : path;
    in->fd = -1;
    in->log = (struct tlog){ .fn = input_log, .opaque = in, .min_level = TLOG_INFO };

    fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        errorf(cmd, in->label, "cannot open it: %s", strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        errorf(cmd, in->label, "%s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        errorf(cmd, in->label, "is a directory");
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        pos = lseek(fd, 0, SEEK_CUR);
        if (pos >= 0 && st.st_size > pos)
            in->size = (uint64_t)(st.st_size - pos);
    }
    n = read_upto(fd, peek, sizeof(peek));
    if (n < 0) {
        rc = (int)n;
        errorf(cmd, in->label, "reading it: %s", strerror(-rc));
        goto fail;
    }
    if (n == 0) {
        rc = -EINVAL;
        errorf(cmd, in->label, "empty: no stream in it");
        goto fail;
    }
    if (!detect_layer(peek, (size_t)n, &in->layer)) {
        rc = -EINVAL;
        errorf(cmd, in->label, "not a Migration v2 stream: it starts with neither xl's "
               "save-file magic, nor \"LibxlFmt\", nor a libxc image's all-ones marker");
        goto fail;
    }

    if (pos >= 0 && lseek(fd, pos, SEEK_SET) == pos) {
        in->fd = fd;
        in->own_fd = !is_stdin;
    } else {
        int p[2];
        pthread_t t;
        sigset_t block, old;
        struct feeder *f = calloc(1, sizeof(*f));

        if (!f || pipe2(p, O_CLOEXEC) < 0) {
            rc = f ? -errno : -ENOMEM;
            free(f);
            errorf(cmd, in->label, "cannot set up a pipe: %s", strerror(-rc));
            goto fail;
        }
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        f->src = fd;
        f->dst = p[1];
        memcpy(f->peek, peek, (size_t)n);
        f->npeek = (size_t)n;
        atomic_init(&f->err, 0);
        atomic_init(&f->refs, 2);
        /* The feeder learns that the reader has gone from EPIPE. */
        sigemptyset(&block);
        sigaddset(&block, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        rc = -pthread_create(&t, NULL, feeder_main, f);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc) {
            close(p[0]);
            close(p[1]);
            free(f);
            errorf(cmd, in->label, "cannot start a thread: %s", strerror(-rc));
            goto fail;
        }
        pthread_detach(t);
        in->feeder = f;
        in->fd = p[0];
        in->own_fd = true;
    }

    /* An inspection tool reads Tandem's compressed page records too, and
     * the delta pages of a Remus stream (the reader takes those only in
     * one, after its first checkpoint). */
    struct stream_reader_opts o = { .start = in->layer, .checkpoints = ro->checkpoints,
                                    .xen_made = ro->xen_made, .tandem_lz4 = true, .tandem_delta = true,
                                    .log = &in->log };
    rc = stream_reader_new(in->fd, &o, &in->r);
    if (rc) {
        errorf(cmd, in->label, "%s", in->have_error ? in->error : strerror(-rc));
        if (in->own_fd)
            close(in->fd);
        if (in->feeder)
            feeder_put(in->feeder);
        in->fd = -1;
        in->feeder = NULL;
        return rc;
    }
    in->progress = isatty(STDERR_FILENO);
    in->next_progress = now_ns() + PROGRESS_DELAY_NS;
    return 0;

fail:
    if (!is_stdin)
        close(fd);
    return rc;
}

static int input_read(struct input *in, struct stream_record *rec)
{
    int rc = stream_read_record(in->r, rec);

    if (!rc)
        input_progress(in);
    return rc;
}

/* The error that stopped the reader, as text. */
static const char *input_error(struct input *in, int rc)
{
    int ferr = in->feeder ? atomic_load(&in->feeder->err) : 0;

    if (ferr) {
        snprintf(in->error, sizeof(in->error), "reading it: %s", strerror(ferr));
        return in->error;
    }
    return in->have_error ? in->error : strerror(-rc);
}

static void input_fail(struct input *in, int rc)
{
    input_progress_clear(in);
    errorf(in->cmd, in->label, "%s", input_error(in, rc));
}

/* After the final END: how many bytes follow it (read to the end). */
static uint64_t input_trailing(struct input *in)
{
    uint8_t buf[65536];
    uint64_t total = 0;
    ssize_t n;

    while ((n = read(in->fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        total += (uint64_t)n;
    }
    return total;
}

static void input_close(struct input *in)
{
    input_progress_clear(in);
    stream_reader_free(in->r);
    in->r = NULL;
    if (in->own_fd && in->fd >= 0)
        close(in->fd);
    in->fd = -1;
    if (in->feeder)
        feeder_put(in->feeder);
    in->feeder = NULL;
}

/* ---- Options shared by the commands ------------------------------------------ */

static int parse_checkpoints(const char *cmd, const char *arg, enum stream_checkpoints *c)
{
    if (!strcmp(arg, "plain") || !strcmp(arg, "none"))
        *c = STREAM_PLAIN;
    else if (!strcmp(arg, "remus"))
        *c = STREAM_REMUS;
    else if (!strcmp(arg, "colo"))
        *c = STREAM_COLO;
    else {
        errorf(cmd, "--checkpoints", "'%s' is none of plain, remus, colo", arg);
        return -1;
    }
    return 0;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '" PROG " %s --help'.\n", cmd);
    return ST_USAGE;
}

/* ---- info ------------------------------------------------------------------------ */

struct rec_count {
    enum stream_layer layer;
    bool header, inferred;
    uint32_t type;
    uint64_t count, bytes;
};

struct rec_counts {
    struct rec_count *v;
    unsigned n, cap;
};

static int rec_counts_add(struct rec_counts *c, const struct stream_record *rec)
{
    for (unsigned i = 0; i < c->n; i++) {
        struct rec_count *e = &c->v[i];
        if (e->layer == rec->layer && e->header == rec->header && e->type == rec->type &&
            e->inferred == rec->inferred) {
            e->count++;
            e->bytes += rec_stream_bytes(rec);
            return 0;
        }
    }
    if (c->n == c->cap) {
        unsigned cap = c->cap ? 2 * c->cap : 16;
        struct rec_count *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (struct rec_count){ rec->layer, rec->header, rec->inferred, rec->type, 1,
                                       rec_stream_bytes(rec) };
    return 0;
}

/* Counts of HVM save records by typecode, in order of appearance. */
struct hvm_census {
    unsigned records, cpus;
    unsigned ncodes;
    struct { uint16_t code; unsigned count; } codes[64];
    char why[160];
};

static void hvm_census_take(struct hvm_census *h, const uint8_t *body, uint32_t len)
{
    struct hvm_entry *e;
    unsigned n;

    memset(h, 0, sizeof(*h));
    hvm_parse(body, len, &e, &n, h->why, sizeof(h->why));
    h->records = n;
    for (unsigned i = 0; i < n; i++) {
        unsigned k;
        if (e[i].code == HVM_CODE_CPU)
            h->cpus++;
        for (k = 0; k < h->ncodes && h->codes[k].code != e[i].code; k++)
            ;
        if (k == h->ncodes) {
            if (k == sizeof(h->codes) / sizeof(h->codes[0]))
                continue;
            h->codes[h->ncodes++].code = e[i].code;
        }
        h->codes[k].count++;
    }
    free(e);
}

static const char *config_name(const char *config, char *buf, size_t len)
{
    json_object *o = config ? json_tokener_parse(config) : NULL, *v;

    buf[0] = 0;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "name", &v) &&
        json_object_is_type(v, json_type_string))
        snprintf(buf, len, "%s", json_object_get_string(v));
    json_object_put(o);
    return buf[0] ? buf : NULL;
}

static const char *const info_help =
    "Usage: " PROG " info [OPTIONS] FILE|-\n"
    "Tells what a Migration v2 image holds: its layers (xl save file, libxl\n"
    "stream, libxc image) and their versions, the domain type and the saving\n"
    "host's version, the config name, the memory (from the RAM pages present),\n"
    "the pages by kind, the vCPUs (CPU records in HVM_CONTEXT), the records\n"
    "by type with their counts and bytes, and for a stream with Tandem's\n"
    "lz4-compressed page records what compression saved.  '-' reads stdin.\n"
    "\n"
    "Options:\n"
    "  --checkpoints=plain|remus|colo  the stream is checkpointed (default plain)\n"
    "  -h, --help                      this text\n";

static int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "checkpoints", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct read_opts ro = { .checkpoints = STREAM_PLAIN, .xen_made = true };
    struct input in;
    struct stream_record rec;
    struct rec_counts counts = { 0 };
    struct pfnmap ram = { 0 };
    struct hvm_census hvm = { 0 };
    bool have_hvm = false, have_libxl = false;
    uint32_t libxl_version = 0;
    uint64_t normal = 0, xalloc = 0, other = 0, total = 0, trailing = 0;
    uint64_t page_recs = 0, lz4_recs = 0, page_bytes = 0, page_plain = 0;
    unsigned n;
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    int opt, rc, status = ST_FAILED;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (parse_checkpoints("info", optarg, &ro.checkpoints))
                return ST_USAGE;
            break;
        case 'h':
            fputs(info_help, stdout);
            return ST_OK;
        default:
            return usage_error("info", "bad option");
        }
    }
    if (argc - optind != 1)
        return usage_error("info", "one FILE (or '-') expected");
    if (input_open(&in, "info", argv[optind], &ro))
        return ST_FAILED;

    for (;;) {
        rc = input_read(&in, &rec);
        if (rc) {
            input_fail(&in, rc);
            goto out;
        }
        if (rec_counts_add(&counts, &rec)) {
            errorf("info", in.label, "out of memory");
            goto out;
        }
        total += rec_stream_bytes(&rec);
        if (rec.header && rec.layer == STREAM_LAYER_LIBXL) {
            struct stream_libxl_header h;
            if (!stream_decode_libxl_header(&rec, &h)) {
                have_libxl = true;
                libxl_version = h.version;
            }
        } else if (is_page_record(&rec)) {
            if (stream_decode_page_data(&rec, &n, pfns, types, data))
                continue;
            page_recs++;
            lz4_recs += rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4;
            page_bytes += rec_stream_bytes(&rec);
            page_plain += page_record_plain_bytes(&rec);
            for (unsigned i = 0; i < n; i++) {
                if (types[i] == STREAM_PAGE_NORMAL)
                    normal++;
                else if (types[i] == STREAM_PAGE_XALLOC)
                    xalloc++;
                else
                    other++;
                if ((types[i] == STREAM_PAGE_NORMAL || types[i] == STREAM_PAGE_XALLOC) &&
                    pfnmap_set(&ram, pfns[i], 0)) {
                    errorf("info", in.label, "out of memory");
                    goto out;
                }
            }
        } else if (!rec.header && rec.layer == STREAM_LAYER_LIBXC &&
                   rec.type == STREAM_LIBXC_HVM_CONTEXT) {
            hvm_census_take(&hvm, rec.body, rec.length);
            have_hvm = true;
        }
        if (rec.last)
            break;
    }
    input_progress_clear(&in);
    trailing = input_trailing(&in);

    const struct stream_xl_header *xh = stream_reader_xl_header(in.r);
    const struct stream_libxc_header *ch = stream_reader_libxc_header(in.r);
    char b1[32], b2[64];

    printf("file:          %s (%" PRIu64 " bytes)\n", in.label, total);
    printf("layers:        ");
    if (xh)
        printf("xl save file, ");
    if (have_libxl)
        printf("libxl stream v%u, ", libxl_version);
    if (ch)
        printf("libxc image v%u%s\n", ch->version,
               ch->version < 3 ? " (STATIC_DATA_END inferred)" : "");
    else
        printf("no libxc image\n");
    if (xh) {
        printf("xl header:     flags%s%s%s, %u bytes of optional data\n",
               xh->mandatory_flags & STREAM_XL_FLAG_JSON ? " JSON" : "",
               xh->mandatory_flags & STREAM_XL_FLAG_STREAMV2 ? " STREAMv2" : "",
               xh->mandatory_flags ? "" : " none", xh->optional_data_len);
        printf("config:        %s\n", xh->config ? "present" : "none");
        printf("name:          %s\n",
               config_name(xh->config, b2, sizeof(b2)) ? b2 : "(not in the config)");
    }
    if (ch) {
        printf("domain:        %s, page size %u\n",
               ch->domain_type == STREAM_DOMAIN_X86_HVM ? "x86 HVM"
               : ch->domain_type == STREAM_DOMAIN_X86_PV ? "x86 PV" : "unknown",
               1u << ch->page_shift);
        printf("xen version:   %u.%u (xen_major.xen_minor of the saving host)\n", ch->xen_major,
               ch->xen_minor);
    }
    printf("memory:        %s (%" PRIu64 " RAM pages)\n",
           fmt_size(ram.count * STREAM_PAGE_SIZE, b1, sizeof(b1)), ram.count);
    if (ram.count) {
        printf("ram pfns:      ");
        print_ranges(stdout, &ram, "", 8);
    }
    printf("pages:         %" PRIu64 " normal with data, %" PRIu64 " XALLOC zero, %" PRIu64
           " other\n", normal, xalloc, other);
    if (lz4_recs) {
        char b3[32];
        printf("compression:   lz4 in %" PRIu64 " of %" PRIu64 " page records; page records take "
               "%s, %s as plain PAGE_DATA (%.1f%%, ratio %.2f)\n", lz4_recs, page_recs,
               fmt_size(page_bytes, b1, sizeof(b1)), fmt_size(page_plain, b3, sizeof(b3)),
               page_plain ? 100.0 * (double)page_bytes / (double)page_plain : 100.0,
               page_bytes ? (double)page_plain / (double)page_bytes : 1.0);
        printf("               (Tandem's TANDEM_PAGE_DATA_LZ4: Xen's tools cannot read this "
               "stream)\n");
    }
    if (have_hvm) {
        printf("vcpus:         %u\n", hvm.cpus);
        printf("hvm context:   %u save records:", hvm.records);
        for (unsigned i = 0; i < hvm.ncodes; i++) {
            printf("%s %s", i ? "," : "", hvm_code_name(hvm.codes[i].code, b2, sizeof(b2)));
            if (hvm.codes[i].count > 1)
                printf(" x%u", hvm.codes[i].count);
        }
        printf("\n");
        if (hvm.why[0])
            printf("hvm warning:   %s\n", hvm.why);
    } else {
        printf("vcpus:         unknown (no HVM_CONTEXT)\n");
    }
    printf("records:\n  %-6s %-24s %10s %14s\n", "LAYER", "TYPE", "COUNT", "BYTES");
    for (unsigned i = 0; i < counts.n; i++) {
        const struct rec_count *c = &counts.v[i];
        const char *name = c->header ? "header" : stream_record_name(c->layer, c->type);
        char nb[48];
        if (!name) {
            snprintf(nb, sizeof(nb), "type 0x%x", c->type);
            name = nb;
        } else if (c->inferred) {
            snprintf(nb, sizeof(nb), "%s (inferred)", name);
            name = nb;
        }
        printf("  %-6s %-24s %10" PRIu64 " %14" PRIu64 "\n", stream_layer_name(c->layer), name,
               c->count, c->bytes);
    }
    printf("  %-6s %-24s %10s %14" PRIu64 "\n", "total", "", "", total);
    if (trailing)
        input_note(&in, "%" PRIu64 " bytes follow the stream's final END", trailing);
    status = ST_OK;
out:
    input_close(&in);
    pfnmap_free(&ram);
    free(counts.v);
    return status;
}

/* ---- dump ------------------------------------------------------------------------ */

static json_object *jhex(uint64_t v)
{
    char b[24];

    snprintf(b, sizeof(b), "0x%" PRIx64, v);
    return json_object_new_string(b);
}

static json_object *jnum(uint64_t v)
{
    return json_object_new_int64((int64_t)v);
}

static void jadd(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, v);
}

static json_object *json_fields(const uint8_t *b, uint32_t len, const struct field *f, unsigned n)
{
    json_object *o = json_object_new_object();

    for (unsigned i = 0; i < n; i++)
        if (f[i].size <= 8 && f[i].off + f[i].size <= len)
            jadd(o, f[i].name, jhex(get_le(b + f[i].off, f[i].size)));
    return o;
}

static json_object *json_hvm_context(const struct stream_record *rec)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    struct hvm_entry *e;
    unsigned n, nf, cpus = 0;
    char why[160], nb[32];

    hvm_parse(rec->body, rec->length, &e, &n, why, sizeof(why));
    for (unsigned i = 0; i < n; i++) {
        json_object *r = json_object_new_object();
        const struct field *f = hvm_fields(e[i].code, &nf);

        jadd(r, "offset", jnum(e[i].off));
        jadd(r, "typecode", jnum(e[i].code));
        jadd(r, "name", json_object_new_string(hvm_code_name(e[i].code, nb, sizeof(nb))));
        jadd(r, "instance", jnum(e[i].inst));
        jadd(r, "length", jnum(e[i].len));
        if (f)
            jadd(r, "fields", json_fields(e[i].body, e[i].len, f, nf));
        if (e[i].code == TANDEM_HVM_KVM_MSRS && e[i].len >= 8) {
            uint32_t cnt = (uint32_t)get_le(e[i].body + 4, 4);
            json_object *m = json_object_new_object();
            for (uint32_t k = 0; k < cnt && 8 + 16 * (uint64_t)(k + 1) <= e[i].len; k++) {
                char key[16];
                snprintf(key, sizeof(key), "0x%08x", (uint32_t)get_le(e[i].body + 8 + 16 * k, 4));
                jadd(m, key, jhex(get_le(e[i].body + 8 + 16 * k + 8, 8)));
            }
            jadd(r, "msrs", m);
        }
        if (e[i].code == HVM_CODE_CPU)
            cpus++;
        json_object_array_add(a, r);
    }
    free(e);
    jadd(o, "vcpus", jnum(cpus));
    jadd(o, "records", a);
    if (why[0])
        jadd(o, "error", json_object_new_string(why));
    return o;
}

static void json_page_ranges(json_object *o, const struct stream_record *rec)
{
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    unsigned n, by_type[16] = { 0 };
    json_object *ranges = json_object_new_array(), *t = json_object_new_object();

    if (stream_decode_page_data(rec, &n, pfns, types, data)) {
        jadd(o, "error", json_object_new_string("malformed PAGE_DATA"));
        json_object_put(ranges);
        json_object_put(t);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned j = i;
        by_type[types[i] & 0xf]++;
        while (j + 1 < n && types[j + 1] == types[i] && pfns[j + 1] == pfns[j] + 1) {
            j++;
            by_type[types[j] & 0xf]++;
        }
        json_object *r = json_object_new_object();
        jadd(r, "first", jnum(pfns[i]));
        jadd(r, "last", jnum(pfns[j]));
        jadd(r, "type", json_object_new_string(stream_page_type_name(types[i])));
        json_object_array_add(ranges, r);
        i = j;
    }
    for (unsigned k = 0; k < 16; k++)
        if (by_type[k])
            jadd(t, stream_page_type_name(k), jnum(by_type[k]));
    jadd(o, "count", jnum(n));
    jadd(o, "pages", t);
    jadd(o, "ranges", ranges);
}

static json_object *record_json(const struct stream_record *rec, struct input *in)
{
    json_object *o = json_object_new_object(), *d = NULL;

    jadd(o, "offset", jnum(rec->offset));
    jadd(o, "layer", json_object_new_string(stream_layer_name(rec->layer)));
    jadd(o, "type", rec->header ? NULL : jnum(rec->type));
    jadd(o, "name", json_object_new_string(rec_name(rec)));
    jadd(o, "length", jnum(rec->length));
    if (rec->header)
        jadd(o, "header", json_object_new_boolean(1));
    if (rec->inferred)
        jadd(o, "inferred", json_object_new_boolean(1));
    if (rec->last)
        jadd(o, "last", json_object_new_boolean(1));

    if (rec->header) {
        d = json_object_new_object();
        if (rec->layer == STREAM_LAYER_XL) {
            const struct stream_xl_header *h = stream_reader_xl_header(in->r);
            if (h) {
                jadd(d, "mandatory_flags", jhex(h->mandatory_flags));
                jadd(d, "optional_flags", jhex(h->optional_flags));
                jadd(d, "optional_data_len", jnum(h->optional_data_len));
                if (h->config) {
                    json_object *c = json_tokener_parse(h->config);
                    jadd(d, "config", c ? c : json_object_new_string(h->config));
                }
            }
        } else if (rec->layer == STREAM_LAYER_LIBXL) {
            struct stream_libxl_header h;
            if (!stream_decode_libxl_header(rec, &h)) {
                jadd(d, "version", jnum(h.version));
                jadd(d, "options", jhex(h.options));
            }
        } else {
            struct stream_libxc_header h;
            if (!stream_decode_libxc_header(rec, &h)) {
                jadd(d, "version", jnum(h.version));
                jadd(d, "options", jhex(h.options));
                jadd(d, "domain_type", jnum(h.domain_type));
                jadd(d, "page_shift", jnum(h.page_shift));
                jadd(d, "xen_major", jnum(h.xen_major));
                jadd(d, "xen_minor", jnum(h.xen_minor));
            }
        }
    } else if (rec->layer == STREAM_LAYER_LIBXC) {
        switch (rec->type) {
        case STREAM_LIBXC_PAGE_DATA:
            d = json_object_new_object();
            json_page_ranges(d, rec);
            break;
        case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
            d = json_object_new_object();
            json_page_ranges(d, rec);
            if (rec->length >= 16 + 8 * get_le(rec->body, 4))
                jadd(d, "compressed_length", jnum(rec->length - 16 - 8 * get_le(rec->body, 4)));
            jadd(d, "uncompressed_length", jnum(rec->page_data_len));
            break;
        case STREAM_LIBXC_X86_TSC_INFO: {
            struct stream_tsc_info t;
            if (!stream_decode_tsc_info(rec, &t)) {
                d = json_object_new_object();
                jadd(d, "mode", jnum(t.mode));
                jadd(d, "khz", jnum(t.khz));
                jadd(d, "nsec", jnum(t.nsec));
                jadd(d, "incarnation", jnum(t.incarnation));
            }
            break;
        }
        case STREAM_LIBXC_HVM_PARAMS: {
            struct stream_hvm_param *p;
            unsigned n;
            if (!stream_decode_hvm_params(rec, &p, &n)) {
                json_object *a = json_object_new_array();
                for (unsigned i = 0; i < n; i++) {
                    json_object *x = json_object_new_object();
                    jadd(x, "index", jnum(p[i].index));
                    jadd(x, "value", jhex(p[i].value));
                    json_object_array_add(a, x);
                }
                free(p);
                d = json_object_new_object();
                jadd(d, "params", a);
            }
            break;
        }
        case STREAM_LIBXC_HVM_CONTEXT:
            d = json_hvm_context(rec);
            break;
        case STREAM_LIBXC_X86_CPUID_POLICY: {
            xen_cpuid_leaf_t *l;
            unsigned n;
            if (!stream_decode_cpuid_policy(rec, &l, &n)) {
                json_object *a = json_object_new_array();
                for (unsigned i = 0; i < n; i++) {
                    json_object *x = json_object_new_object();
                    jadd(x, "leaf", jhex(l[i].leaf));
                    jadd(x, "subleaf", jhex(l[i].subleaf));
                    jadd(x, "a", jhex(l[i].a));
                    jadd(x, "b", jhex(l[i].b));
                    jadd(x, "c", jhex(l[i].c));
                    jadd(x, "d", jhex(l[i].d));
                    json_object_array_add(a, x);
                }
                free(l);
                d = json_object_new_object();
                jadd(d, "leaves", a);
            }
            break;
        }
        case STREAM_LIBXC_X86_MSR_POLICY: {
            xen_msr_entry_t *m;
            unsigned n;
            if (!stream_decode_msr_policy(rec, &m, &n)) {
                json_object *a = json_object_new_array();
                for (unsigned i = 0; i < n; i++) {
                    json_object *x = json_object_new_object();
                    jadd(x, "index", jhex(m[i].idx));
                    jadd(x, "flags", jhex(m[i].flags));
                    jadd(x, "value", jhex(m[i].val));
                    json_object_array_add(a, x);
                }
                free(m);
                d = json_object_new_object();
                jadd(d, "msrs", a);
            }
            break;
        }
        }
    } else {
        switch (rec->type) {
        case STREAM_LIBXL_EMULATOR_CONTEXT:
        case STREAM_LIBXL_EMULATOR_XENSTORE_DATA: {
            uint32_t id, index;
            bool tandem = false;
            const uint8_t *state;
            size_t len;
            d = json_object_new_object();
            if (rec->type == STREAM_LIBXL_EMULATOR_CONTEXT &&
                !stream_decode_emulator_context(rec, &id, &index, &tandem, &state, &len)) {
                jadd(d, "emulator_id", jnum(id));
                jadd(d, "index", jnum(index));
                jadd(d, "tandem", json_object_new_boolean(tandem));
                jadd(d, "state_length", jnum(len));
            } else if (rec->length >= 8) {
                jadd(d, "emulator_id", jnum(get_le(rec->body, 4)));
                jadd(d, "index", jnum(get_le(rec->body + 4, 4)));
                jadd(d, "data_length", jnum(rec->length - 8));
            }
            break;
        }
        case STREAM_LIBXL_CHECKPOINT_STATE: {
            uint32_t id;
            if (!stream_decode_checkpoint_state(rec, &id)) {
                d = json_object_new_object();
                jadd(d, "control_id", jnum(id));
            }
            break;
        }
        }
    }
    if (d)
        jadd(o, "decoded", d);
    return o;
}

static const char *const dump_help =
    "Usage: " PROG " dump [OPTIONS] FILE|-\n"
    "Prints every header and record of a stream with its offset, layer, type\n"
    "and length, and decodes its body: pfn ranges of PAGE_DATA, the HVM save\n"
    "records of HVM_CONTEXT (registers, LAPIC, PIT ...), CPUID leaves, MSRs,\n"
    "HVM params, TSC info.  '-' reads stdin.\n"
    "\n"
    "Options:\n"
    "  --json                          one JSON object per record and line\n"
    "  --checkpoints=plain|remus|colo  the stream is checkpointed (default plain)\n"
    "  -h, --help                      this text\n";

static int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "checkpoints", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct read_opts ro = { .checkpoints = STREAM_PLAIN, .xen_made = true };
    struct input in;
    struct stream_record rec;
    bool json = false;
    int opt, rc, status = ST_FAILED;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'c':
            if (parse_checkpoints("dump", optarg, &ro.checkpoints))
                return ST_USAGE;
            break;
        case 'h':
            fputs(dump_help, stdout);
            return ST_OK;
        default:
            return usage_error("dump", "bad option");
        }
    }
    if (argc - optind != 1)
        return usage_error("dump", "one FILE (or '-') expected");
    if (input_open(&in, "dump", argv[optind], &ro))
        return ST_FAILED;
    for (;;) {
        rc = input_read(&in, &rec);
        if (rc) {
            fflush(stdout);
            input_fail(&in, rc);
            goto out;
        }
        input_progress_clear(&in);
        if (json) {
            json_object *o = record_json(&rec, &in);
            fputs(json_object_to_json_string_ext(o, JSON_FLAGS), stdout);
            fputc('\n', stdout);
            json_object_put(o);
        } else {
            stream_print_detail(stdout, &rec);
        }
        if (ferror(stdout)) {
            errorf("dump", "stdout", "%s", strerror(errno));
            goto out;
        }
        if (rec.last)
            break;
    }
    if (fflush(stdout)) {
        errorf("dump", "stdout", "%s", strerror(errno));
        goto out;
    }
    uint64_t trailing = input_trailing(&in);
    if (trailing)
        input_note(&in, "%" PRIu64 " bytes follow the stream's final END", trailing);
    status = ST_OK;
out:
    input_close(&in);
    return status;
}

/* ---- verify ---------------------------------------------------------------------- */

/* What the reader leaves to its users: the HVM_CONTEXT blob's own frame. */
static int check_hvm_context(const struct stream_record *rec, char *why, size_t len)
{
    struct hvm_entry *e;
    unsigned n;
    char inner[160], nb[32];
    int rc = hvm_parse(rec->body, rec->length, &e, &n, inner, sizeof(inner));

    if (rc)
        snprintf(why, len, "%s", inner);
    else if (!n || e[0].code != HVM_CODE_HEADER)
        snprintf(why, len, "its first save record is %s, not HEADER",
                 n ? hvm_code_name(e[0].code, nb, sizeof(nb)) : "missing"), rc = -EINVAL;
    else if (e[n - 1].code != HVM_CODE_END)
        snprintf(why, len, "no END save record"), rc = -EINVAL;
    for (unsigned i = 0; !rc && i < n; i++)
        for (unsigned j = 0; j < i; j++)
            if (e[i].code == e[j].code && e[i].inst == e[j].inst) {
                snprintf(why, len, "the %s record of instance %u at +0x%x repeats the one at "
                         "+0x%x", hvm_code_name(e[i].code, nb, sizeof(nb)), e[i].inst, e[i].off,
                         e[j].off);
                rc = -EINVAL;
                break;
            }
    free(e);
    return rc;
}

static const char *const verify_help =
    "Usage: " PROG " verify [OPTIONS] FILE|-\n"
    "Reads a whole stream through the strict reader to its final END and\n"
    "checks every header, record, padding and the records' order, and the\n"
    "HVM_CONTEXT blob's frame.  Exit status 0 if valid, 1 at the first fault,\n"
    "whose message names the record and its offset.  Tandem's lz4-compressed\n"
    "page records are valid (and decompressed to check them), but named in the\n"
    "result: Xen's tools cannot read such a stream.  '-' reads stdin.\n"
    "\n"
    "Options:\n"
    "  --xen-made                      also accept what Xen's own tools write but\n"
    "                                  Tandem cannot restore (QEMU state ...)\n"
    "  --checkpoints=plain|remus|colo  the stream is checkpointed (default plain)\n"
    "  -q, --quiet                     print nothing when the stream is valid\n"
    "  -h, --help                      this text\n";

static int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "xen-made", no_argument, NULL, 'x' }, { "checkpoints", required_argument, NULL, 'c' },
        { "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct read_opts ro = { .checkpoints = STREAM_PLAIN };
    struct input in;
    struct stream_record rec;
    bool quiet = false;
    uint64_t records = 0, total = 0, trailing, lz4_recs = 0;
    int opt, rc, status = ST_FAILED;

    while ((opt = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
        switch (opt) {
        case 'x':
            ro.xen_made = true;
            break;
        case 'c':
            if (parse_checkpoints("verify", optarg, &ro.checkpoints))
                return ST_USAGE;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(verify_help, stdout);
            return ST_OK;
        default:
            return usage_error("verify", "bad option");
        }
    }
    if (argc - optind != 1)
        return usage_error("verify", "one FILE (or '-') expected");
    if (input_open(&in, "verify", argv[optind], &ro))
        return ST_FAILED;
    in.quiet_notes = quiet;
    for (;;) {
        rc = input_read(&in, &rec);
        if (rc) {
            input_fail(&in, rc);
            goto out;
        }
        total += rec_stream_bytes(&rec);
        if (!rec.header && !rec.inferred)
            records++;
        if (is_page_record(&rec) && rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4)
            lz4_recs++;
        if (!rec.header && rec.layer == STREAM_LAYER_LIBXC && rec.type == STREAM_LIBXC_HVM_CONTEXT) {
            char why[256];
            if (check_hvm_context(&rec, why, sizeof(why))) {
                input_progress_clear(&in);
                errorf("verify", in.label, "libxc HVM_CONTEXT at offset 0x%" PRIx64 ": %s",
                       rec.offset, why);
                goto out;
            }
        }
        if (rec.last)
            break;
    }
    input_progress_clear(&in);
    trailing = input_trailing(&in);
    if (trailing) {
        errorf("verify", in.label, "%" PRIu64 " bytes follow the stream's final END at offset "
               "0x%" PRIx64, trailing, rec.offset);
        goto out;
    }
    if (!quiet) {
        const struct stream_libxc_header *ch = stream_reader_libxc_header(in.r);
        char inner[64] = "";
        if (in.layer == STREAM_LAYER_XL)
            snprintf(inner, sizeof(inner), " (libxl stream, libxc image v%u)", ch ? ch->version : 0);
        else if (in.layer == STREAM_LAYER_LIBXL)
            snprintf(inner, sizeof(inner), " (libxc image v%u)", ch ? ch->version : 0);
        else
            snprintf(inner, sizeof(inner), " v%u", ch ? ch->version : 0);
        printf("%s: valid %s%s, %" PRIu64 " records, %" PRIu64 " bytes\n", in.label,
               in.layer == STREAM_LAYER_XL ? "xl save file"
               : in.layer == STREAM_LAYER_LIBXL ? "libxl stream" : "libxc image",
               inner, records, total);
        if (lz4_recs)
            printf("%s: %" PRIu64 " TANDEM_PAGE_DATA_LZ4 records (lz4-compressed pages): for "
                   "Tandem only, Xen's tools refuse them\n", in.label, lz4_recs);
    }
    status = ST_OK;
out:
    input_close(&in);
    return status;
}

/* ---- diff ------------------------------------------------------------------------ */

/* A 64-bit hash of a page (not cryptographic: two different pages get the
 * same hash with a chance of about 2^-64). */
static uint64_t page_hash(const uint8_t *p)
{
    uint64_t h1 = 0x9e3779b97f4a7c15ull, h2 = 0xc2b2ae3d27d4eb4full;

    for (unsigned i = 0; i < STREAM_PAGE_SIZE; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        h1 ^= a * 0x87c37b91114253d5ull;
        h1 = ((h1 << 31) | (h1 >> 33)) * 0x4cf5ad432745937full;
        h2 ^= b * 0x4cf5ad432745937full;
        h2 = ((h2 << 33) | (h2 >> 31)) * 0x87c37b91114253d5ull;
    }
    h1 ^= (h2 << 17) | (h2 >> 47);
    h1 ^= h1 >> 33;
    h1 *= 0xff51afd7ed558ccdull;
    h1 ^= h1 >> 33;
    h1 *= 0xc4ceb9fe1a85ec53ull;
    h1 ^= h1 >> 33;
    return h1;
}

/* libxl records compared as blobs: EMULATOR_* by (type, emulator, index). */
struct blob {
    uint32_t type, id, index;
    uint8_t *data;
    size_t len;
};

struct image {
    const char *label;
    enum stream_layer layer;
    bool have_libxl;
    uint32_t libxl_version;
    bool have_xc;
    struct stream_libxc_header xc;
    char *config;
    struct pfnmap pages;        /* pfn -> hash of its contents */
    uint8_t *hvm;
    uint32_t hvm_len;
    bool have_hvm;
    xen_cpuid_leaf_t *cpuid;
    unsigned ncpuid;
    bool have_cpuid;
    xen_msr_entry_t *msrs;
    unsigned nmsrs;
    bool have_msrs;
    struct stream_tsc_info tsc;
    bool have_tsc;
    struct stream_hvm_param *params;
    unsigned nparams;
    bool have_params;
    struct blob *blobs;
    unsigned nblobs;
};

static void image_free(struct image *im)
{
    pfnmap_free(&im->pages);
    free(im->config);
    free(im->hvm);
    free(im->cpuid);
    free(im->msrs);
    free(im->params);
    for (unsigned i = 0; i < im->nblobs; i++)
        free(im->blobs[i].data);
    free(im->blobs);
}

/* Later records of a checkpointed stream replace earlier ones. */
static int image_add_blob(struct image *im, const struct stream_record *rec)
{
    uint32_t id = rec->length >= 8 ? (uint32_t)get_le(rec->body, 4) : 0;
    uint32_t index = rec->length >= 8 ? (uint32_t)get_le(rec->body + 4, 4) : 0;
    uint8_t *copy = malloc(rec->length ? rec->length : 1);
    struct blob *b = NULL;

    if (!copy)
        return -ENOMEM;
    if (rec->length)
        memcpy(copy, rec->body, rec->length);
    for (unsigned i = 0; i < im->nblobs; i++)
        if (im->blobs[i].type == rec->type && im->blobs[i].id == id && im->blobs[i].index == index)
            b = &im->blobs[i];
    if (!b) {
        struct blob *v = realloc(im->blobs, (im->nblobs + 1) * sizeof(*v));
        if (!v) {
            free(copy);
            return -ENOMEM;
        }
        im->blobs = v;
        b = &v[im->nblobs++];
        *b = (struct blob){ rec->type, id, index, NULL, 0 };
    }
    free(b->data);
    b->data = copy;
    b->len = rec->length;
    return 0;
}

static int image_load(struct image *im, const char *path, const struct read_opts *ro)
{
    static const uint8_t zero_page[STREAM_PAGE_SIZE];
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    const uint64_t zero_hash = page_hash(zero_page);
    struct input in;
    struct stream_record rec;
    unsigned n;
    int rc;

    memset(im, 0, sizeof(*im));
    im->pages.with_values = true;
    if (input_open(&in, "diff", path, ro))
        return -EINVAL;
    im->label = in.label;
    im->layer = in.layer;
    for (;;) {
        rc = input_read(&in, &rec);
        if (rc) {
            input_fail(&in, rc);
            break;
        }
        if (rec.header) {
            if (rec.layer == STREAM_LAYER_LIBXL) {
                struct stream_libxl_header h;
                if (!stream_decode_libxl_header(&rec, &h)) {
                    im->have_libxl = true;
                    im->libxl_version = h.version;
                }
            } else if (rec.layer == STREAM_LAYER_LIBXC) {
                im->have_xc = !stream_decode_libxc_header(&rec, &im->xc);
            } else {
                const struct stream_xl_header *h = stream_reader_xl_header(in.r);
                if (h && h->config && !(im->config = strdup(h->config)))
                    rc = -ENOMEM;
            }
        } else if (rec.layer == STREAM_LAYER_LIBXC) {
            switch (rec.type) {
            case STREAM_LIBXC_PAGE_DATA:
            case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
                rc = stream_decode_page_data(&rec, &n, pfns, types, data);
                for (unsigned i = 0; !rc && i < n; i++) {
                    uint64_t h = types[i] == STREAM_PAGE_NORMAL ? page_hash(data[i])
                               : types[i] == STREAM_PAGE_XALLOC ? zero_hash
                               : 0x5459504500000000ull | types[i];
                    rc = pfnmap_set(&im->pages, pfns[i], h);
                }
                break;
            case STREAM_LIBXC_HVM_CONTEXT:
                free(im->hvm);
                im->hvm = malloc(rec.length);
                if (!im->hvm) {
                    rc = -ENOMEM;
                    break;
                }
                memcpy(im->hvm, rec.body, rec.length);
                im->hvm_len = rec.length;
                im->have_hvm = true;
                break;
            case STREAM_LIBXC_X86_CPUID_POLICY:
                free(im->cpuid);
                im->cpuid = NULL;
                rc = stream_decode_cpuid_policy(&rec, &im->cpuid, &im->ncpuid);
                im->have_cpuid = !rc;
                break;
            case STREAM_LIBXC_X86_MSR_POLICY:
                free(im->msrs);
                im->msrs = NULL;
                rc = stream_decode_msr_policy(&rec, &im->msrs, &im->nmsrs);
                im->have_msrs = !rc;
                break;
            case STREAM_LIBXC_X86_TSC_INFO:
                rc = stream_decode_tsc_info(&rec, &im->tsc);
                im->have_tsc = !rc;
                break;
            case STREAM_LIBXC_HVM_PARAMS:
                free(im->params);
                im->params = NULL;
                rc = stream_decode_hvm_params(&rec, &im->params, &im->nparams);
                im->have_params = !rc;
                break;
            }
        } else if (rec.type == STREAM_LIBXL_EMULATOR_CONTEXT ||
                   rec.type == STREAM_LIBXL_EMULATOR_XENSTORE_DATA) {
            rc = image_add_blob(im, &rec);
        }
        if (rc) {
            input_progress_clear(&in);
            errorf("diff", in.label, "%s at offset 0x%" PRIx64 ": %s", rec_name(&rec),
                   rec.offset, strerror(-rc));
            break;
        }
        if (rec.last)
            break;
    }
    input_close(&in);
    return rc;
}

struct diffout {
    bool quiet;
    uint64_t state;             /* differing state fields and records */
};

__attribute__((format(printf, 2, 3)))
static void differ(struct diffout *d, const char *fmt, ...)
{
    va_list ap;

    d->state++;
    if (d->quiet)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

__attribute__((format(printf, 2, 3)))
static void diff_note(struct diffout *d, const char *fmt, ...)
{
    va_list ap;

    if (d->quiet)
        return;
    printf("note: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* "0x10-0x17, 0x40" for the bytes of a and b that differ in [from, to),
 * offsets shown relative to base; "" if none. */
static const char *byte_ranges(const uint8_t *a, const uint8_t *b, size_t from, size_t to,
                               char *buf, size_t len)
{
    size_t used = 0;
    unsigned shown = 0, more = 0;

    buf[0] = 0;
    for (size_t i = from; i < to; i++) {
        if (a[i] == b[i])
            continue;
        size_t j = i;
        while (j + 1 < to && a[j + 1] != b[j + 1])
            j++;
        if (shown < 8 && used + 40 < len) {
            used += (size_t)snprintf(buf + used, len - used, "%s0x%zx", shown ? ", " : "", i);
            if (j > i)
                used += (size_t)snprintf(buf + used, len - used, "-0x%zx", j);
            shown++;
        } else {
            more++;
        }
        i = j;
    }
    if (more && used + 32 < len)
        snprintf(buf + used, len - used, " and %u more range%s", more, more == 1 ? "" : "s");
    return buf;
}

static void diff_hvm_entry(struct diffout *d, const struct hvm_entry *a, const struct hvm_entry *b)
{
    char nb[32], rb[512];
    const char *name = hvm_code_name(a->code, nb, sizeof(nb));
    uint32_t common = a->len < b->len ? a->len : b->len;
    unsigned nf;
    const struct field *f = hvm_fields(a->code, &nf);

    if (a->len != b->len)
        differ(d, "hvm %s %u: length %u -> %u", name, a->inst, a->len, b->len);
    if (f) {
        uint8_t covered[2048] = { 0 };
        for (unsigned i = 0; i < nf; i++) {
            if (f[i].off + f[i].size > common)
                continue;
            if (f[i].off + f[i].size <= sizeof(covered))
                memset(covered + f[i].off, 1, f[i].size);
            if (f[i].size <= 8) {
                uint64_t va = get_le(a->body + f[i].off, f[i].size);
                uint64_t vb = get_le(b->body + f[i].off, f[i].size);
                if (va != vb)
                    differ(d, "hvm %s %u %s: 0x%" PRIx64 " -> 0x%" PRIx64, name, a->inst,
                           f[i].name, va, vb);
            } else if (memcmp(a->body + f[i].off, b->body + f[i].off, f[i].size)) {
                differ(d, "hvm %s %u %s: bytes %s differ", name, a->inst, f[i].name,
                       byte_ranges(a->body + f[i].off, b->body + f[i].off, 0, f[i].size, rb,
                                   sizeof(rb)));
            }
        }
        /* Whatever the table leaves out, as bytes of the record. */
        for (uint32_t i = 0; i < common; i++) {
            if ((i < sizeof(covered) && covered[i]) || a->body[i] == b->body[i])
                continue;
            uint32_t j = i;
            while (j + 1 < common && !(j + 1 < sizeof(covered) && covered[j + 1]))
                j++;
            if (memcmp(a->body + i, b->body + i, j - i + 1))
                differ(d, "hvm %s %u: bytes %s differ", name, a->inst,
                       byte_ranges(a->body, b->body, i, j + 1, rb, sizeof(rb)));
            i = j;
        }
        return;
    }
    if (a->code == TANDEM_HVM_KVM_MSRS && a->len >= 8 && b->len >= 8) {
        /* MSR by MSR: {u32 version, u32 count, {u32 index, u32 rsvd, u64 value}[]}. */
        uint32_t na = (a->len - 8) / 16, nb2 = (b->len - 8) / 16;
        if (get_le(a->body, 4) != get_le(b->body, 4))
            differ(d, "hvm %s %u version: %" PRIu64 " -> %" PRIu64, name, a->inst,
                   get_le(a->body, 4), get_le(b->body, 4));
        for (uint32_t i = 0; i < na; i++) {
            uint32_t idx = (uint32_t)get_le(a->body + 8 + 16 * i, 4);
            uint64_t va = get_le(a->body + 16 + 16 * i, 8);
            uint32_t k;
            for (k = 0; k < nb2 && get_le(b->body + 8 + 16 * k, 4) != idx; k++)
                ;
            if (k == nb2)
                differ(d, "hvm %s %u msr 0x%08x: only in A", name, a->inst, idx);
            else if (va != get_le(b->body + 16 + 16 * k, 8))
                differ(d, "hvm %s %u msr 0x%08x: 0x%" PRIx64 " -> 0x%" PRIx64, name, a->inst, idx,
                       va, get_le(b->body + 16 + 16 * k, 8));
        }
        for (uint32_t k = 0; k < nb2; k++) {
            uint32_t idx = (uint32_t)get_le(b->body + 8 + 16 * k, 4), i;
            for (i = 0; i < na && get_le(a->body + 8 + 16 * i, 4) != idx; i++)
                ;
            if (i == na)
                differ(d, "hvm %s %u msr 0x%08x: only in B", name, a->inst, idx);
        }
        return;
    }
    if (memcmp(a->body, b->body, common))
        differ(d, "hvm %s %u: bytes %s differ", name, a->inst,
               byte_ranges(a->body, b->body, 0, common, rb, sizeof(rb)));
}

static void diff_hvm(struct diffout *d, const struct image *A, const struct image *B)
{
    struct hvm_entry *ea = NULL, *eb = NULL;
    unsigned na = 0, nb = 0;
    char why[160], nbuf[32], rb[512];

    if (!A->have_hvm || !B->have_hvm) {
        if (A->have_hvm || B->have_hvm)
            differ(d, "HVM_CONTEXT: only in %s", A->have_hvm ? "A" : "B");
        return;
    }
    if (hvm_parse(A->hvm, A->hvm_len, &ea, &na, why, sizeof(why)) ||
        hvm_parse(B->hvm, B->hvm_len, &eb, &nb, why, sizeof(why))) {
        /* Not walkable: compare the blobs as bytes. */
        uint32_t common = A->hvm_len < B->hvm_len ? A->hvm_len : B->hvm_len;
        diff_note(d, "HVM_CONTEXT: %s; compared as bytes", why);
        if (A->hvm_len != B->hvm_len)
            differ(d, "HVM_CONTEXT: length %u -> %u", A->hvm_len, B->hvm_len);
        if (memcmp(A->hvm, B->hvm, common))
            differ(d, "HVM_CONTEXT: bytes %s differ",
                   byte_ranges(A->hvm, B->hvm, 0, common, rb, sizeof(rb)));
        free(ea);
        free(eb);
        return;
    }
    for (unsigned i = 0; i < na; i++) {
        unsigned k;
        for (k = 0; k < nb && !(eb[k].code == ea[i].code && eb[k].inst == ea[i].inst); k++)
            ;
        if (k == nb)
            differ(d, "hvm %s %u: only in A", hvm_code_name(ea[i].code, nbuf, sizeof(nbuf)),
                   ea[i].inst);
        else
            diff_hvm_entry(d, &ea[i], &eb[k]);
    }
    for (unsigned k = 0; k < nb; k++) {
        unsigned i;
        for (i = 0; i < na && !(eb[k].code == ea[i].code && eb[k].inst == ea[i].inst); i++)
            ;
        if (i == na)
            differ(d, "hvm %s %u: only in B", hvm_code_name(eb[k].code, nbuf, sizeof(nbuf)),
                   eb[k].inst);
    }
    free(ea);
    free(eb);
}

static void diff_cpuid(struct diffout *d, const struct image *A, const struct image *B)
{
    if (!A->have_cpuid || !B->have_cpuid) {
        if (A->have_cpuid || B->have_cpuid)
            differ(d, "X86_CPUID_POLICY: only in %s (%u leaves)", A->have_cpuid ? "A" : "B",
                   A->have_cpuid ? A->ncpuid : B->ncpuid);
        return;
    }
    for (unsigned i = 0; i < A->ncpuid; i++) {
        const xen_cpuid_leaf_t *a = &A->cpuid[i], *b = NULL;
        for (unsigned k = 0; k < B->ncpuid && !b; k++)
            if (B->cpuid[k].leaf == a->leaf && B->cpuid[k].subleaf == a->subleaf)
                b = &B->cpuid[k];
        if (!b) {
            differ(d, "cpuid 0x%08x/0x%x: only in A", a->leaf, a->subleaf);
            continue;
        }
        const uint32_t va[4] = { a->a, a->b, a->c, a->d }, vb[4] = { b->a, b->b, b->c, b->d };
        for (int r = 0; r < 4; r++)
            if (va[r] != vb[r])
                differ(d, "cpuid 0x%08x/0x%x e%cx: 0x%08x -> 0x%08x", a->leaf, a->subleaf,
                       "abcd"[r], va[r], vb[r]);
    }
    for (unsigned k = 0; k < B->ncpuid; k++) {
        bool found = false;
        for (unsigned i = 0; i < A->ncpuid && !found; i++)
            found = A->cpuid[i].leaf == B->cpuid[k].leaf &&
                    A->cpuid[i].subleaf == B->cpuid[k].subleaf;
        if (!found)
            differ(d, "cpuid 0x%08x/0x%x: only in B", B->cpuid[k].leaf, B->cpuid[k].subleaf);
    }
}

static void diff_msrs(struct diffout *d, const struct image *A, const struct image *B)
{
    if (!A->have_msrs || !B->have_msrs) {
        if (A->have_msrs || B->have_msrs)
            differ(d, "X86_MSR_POLICY: only in %s (%u MSRs)", A->have_msrs ? "A" : "B",
                   A->have_msrs ? A->nmsrs : B->nmsrs);
        return;
    }
    for (unsigned i = 0; i < A->nmsrs; i++) {
        const xen_msr_entry_t *a = &A->msrs[i], *b = NULL;
        for (unsigned k = 0; k < B->nmsrs && !b; k++)
            if (B->msrs[k].idx == a->idx)
                b = &B->msrs[k];
        if (!b)
            differ(d, "msr policy 0x%08x: only in A", a->idx);
        else if (a->val != b->val || a->flags != b->flags)
            differ(d, "msr policy 0x%08x: 0x%" PRIx64 " -> 0x%" PRIx64, a->idx,
                   (uint64_t)a->val, (uint64_t)b->val);
    }
    for (unsigned k = 0; k < B->nmsrs; k++) {
        bool found = false;
        for (unsigned i = 0; i < A->nmsrs && !found; i++)
            found = A->msrs[i].idx == B->msrs[k].idx;
        if (!found)
            differ(d, "msr policy 0x%08x: only in B", B->msrs[k].idx);
    }
}

static void diff_params(struct diffout *d, const struct image *A, const struct image *B)
{
    if (!A->have_params || !B->have_params) {
        if (A->have_params || B->have_params)
            differ(d, "HVM_PARAMS: only in %s", A->have_params ? "A" : "B");
        return;
    }
    for (unsigned i = 0; i < A->nparams; i++) {
        const struct stream_hvm_param *a = &A->params[i], *b = NULL;
        for (unsigned k = 0; k < B->nparams && !b; k++)
            if (B->params[k].index == a->index)
                b = &B->params[k];
        if (!b)
            differ(d, "hvm param %" PRIu64 ": only in A", a->index);
        else if (a->value != b->value)
            differ(d, "hvm param %" PRIu64 ": 0x%" PRIx64 " -> 0x%" PRIx64, a->index, a->value,
                   b->value);
    }
    for (unsigned k = 0; k < B->nparams; k++) {
        bool found = false;
        for (unsigned i = 0; i < A->nparams && !found; i++)
            found = A->params[i].index == B->params[k].index;
        if (!found)
            differ(d, "hvm param %" PRIu64 ": only in B", B->params[k].index);
    }
}

static void diff_tsc(struct diffout *d, const struct image *A, const struct image *B)
{
    if (!A->have_tsc || !B->have_tsc) {
        if (A->have_tsc || B->have_tsc)
            differ(d, "X86_TSC_INFO: only in %s", A->have_tsc ? "A" : "B");
        return;
    }
    if (A->tsc.mode != B->tsc.mode)
        differ(d, "tsc_info mode: %u -> %u", A->tsc.mode, B->tsc.mode);
    if (A->tsc.khz != B->tsc.khz)
        differ(d, "tsc_info khz: %u -> %u", A->tsc.khz, B->tsc.khz);
    if (A->tsc.nsec != B->tsc.nsec)
        differ(d, "tsc_info nsec: %" PRIu64 " -> %" PRIu64, A->tsc.nsec, B->tsc.nsec);
    if (A->tsc.incarnation != B->tsc.incarnation)
        differ(d, "tsc_info incarnation: %u -> %u", A->tsc.incarnation, B->tsc.incarnation);
}

static void diff_blobs(struct diffout *d, const struct image *A, const struct image *B)
{
    char rb[512];

    for (unsigned i = 0; i < A->nblobs; i++) {
        const struct blob *a = &A->blobs[i], *b = NULL;
        const char *name = stream_record_name(STREAM_LAYER_LIBXL, a->type);
        for (unsigned k = 0; k < B->nblobs && !b; k++)
            if (B->blobs[k].type == a->type && B->blobs[k].id == a->id &&
                B->blobs[k].index == a->index)
                b = &B->blobs[k];
        if (!b) {
            differ(d, "%s %u/%u: only in A", name, a->id, a->index);
            continue;
        }
        size_t common = a->len < b->len ? a->len : b->len;
        if (a->len != b->len)
            differ(d, "%s %u/%u: length %zu -> %zu", name, a->id, a->index, a->len, b->len);
        if (memcmp(a->data, b->data, common))
            differ(d, "%s %u/%u: bytes %s differ", name, a->id, a->index,
                   byte_ranges(a->data, b->data, 0, common, rb, sizeof(rb)));
    }
    for (unsigned k = 0; k < B->nblobs; k++) {
        bool found = false;
        for (unsigned i = 0; i < A->nblobs && !found; i++)
            found = A->blobs[i].type == B->blobs[k].type && A->blobs[i].id == B->blobs[k].id &&
                    A->blobs[i].index == B->blobs[k].index;
        if (!found)
            differ(d, "%s %u/%u: only in B", stream_record_name(STREAM_LAYER_LIBXL,
                   B->blobs[k].type), B->blobs[k].id, B->blobs[k].index);
    }
}

static void diff_config(struct diffout *d, const struct image *A, const struct image *B)
{
    json_object *a, *b;

    if (!A->config || !B->config) {
        if (A->config || B->config)
            diff_note(d, "only %s has an xl header with a domain config", A->config ? "A" : "B");
        return;
    }
    if (!strcmp(A->config, B->config))
        return;
    a = json_tokener_parse(A->config);
    b = json_tokener_parse(B->config);
    if (!a || !b || !json_object_is_type(a, json_type_object) ||
        !json_object_is_type(b, json_type_object)) {
        differ(d, "config: the texts differ");
    } else {
        json_object_object_foreach(a, key, va) {
            json_object *vb;
            if (!json_object_object_get_ex(b, key, &vb)) {
                differ(d, "config %s: only in A", key);
                continue;
            }
            const char *sa = json_object_to_json_string_ext(va, JSON_FLAGS);
            char *copy = strdup(sa ? sa : "");
            const char *sb = json_object_to_json_string_ext(vb, JSON_FLAGS);
            if (copy && sb && strcmp(copy, sb))
                differ(d, "config %s: %s -> %s", key, copy, sb);
            free(copy);
        }
        json_object_object_foreach(b, keyb, vbb) {
            (void)vbb;
            if (!json_object_object_get_ex(a, keyb, NULL))
                differ(d, "config %s: only in B", keyb);
        }
    }
    json_object_put(a);
    json_object_put(b);
}

static const char *layers_of(const struct image *im, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", im->config || im->layer == STREAM_LAYER_XL ? "xl " : "",
             im->have_libxl ? "libxl " : "", im->have_xc ? "libxc" : "");
    return buf;
}

static const char *const diff_help =
    "Usage: " PROG " diff [OPTIONS] A B\n"
    "Compares two images: which pages differ (pfn ranges, and pages present in\n"
    "one only), which HVM save records and fields differ (CPU registers by\n"
    "name, other records as byte ranges), and differing CPUID and MSR policies,\n"
    "TSC info, HVM params, device-model state and domain configs.  Layers and\n"
    "versions are compared as notes only.  Pages are kept as a 64-bit hash each,\n"
    "so images of any size fit.  At most one of A and B may be '-' (stdin).\n"
    "Exit status 0 if the images hold the same state, 1 if they differ, 2 on\n"
    "errors.\n"
    "\n"
    "Options:\n"
    "  --checkpoints=plain|remus|colo  the streams are checkpointed (default plain)\n"
    "  -q, --quiet                     print nothing; the exit status tells\n"
    "  -h, --help                      this text\n";

struct page_diff {
    const struct image *A, *B;
    struct pfnmap differ, only_a, only_b;
};

static int page_diff_walk(const struct pfnmap *from, const struct pfnmap *other,
                          struct pfnmap *missing, struct pfnmap *changed)
{
    size_t n;
    struct pfnchunk **v = pfnmap_sorted(from, &n);

    if (!v && from->nchunk)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++)
        for (unsigned i = 0; i < PFN_CHUNK; i++) {
            if (!(v[k]->present[i / 64] & (1ull << (i % 64))))
                continue;
            uint64_t pfn = (v[k]->key << PFN_CHUNK_SHIFT) + i, h;
            int rc = 0;
            if (!pfnmap_get(other, pfn, &h))
                rc = pfnmap_set(missing, pfn, 0);
            else if (changed && h != v[k]->values[i])
                rc = pfnmap_set(changed, pfn, 0);
            if (rc) {
                free(v);
                return rc;
            }
        }
    free(v);
    return 0;
}

static void print_page_set(const char *what, const struct pfnmap *m)
{
    unsigned r = count_ranges(m);

    printf("pages %s: %" PRIu64 " in %u range%s\n", what, m->count, r, r == 1 ? "" : "s");
    print_ranges(stdout, m, "  ", 0);
}

static int cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "checkpoints", required_argument, NULL, 'c' }, { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct read_opts ro = { .checkpoints = STREAM_PLAIN, .xen_made = true };
    struct image A, B;
    struct diffout d = { 0 };
    struct pfnmap changed = { 0 }, only_a = { 0 }, only_b = { 0 };
    char la[32], lb[32];
    int opt, status = ST_USAGE;

    while ((opt = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (parse_checkpoints("diff", optarg, &ro.checkpoints))
                return ST_USAGE;
            break;
        case 'q':
            d.quiet = true;
            break;
        case 'h':
            fputs(diff_help, stdout);
            return ST_OK;
        default:
            return usage_error("diff", "bad option");
        }
    }
    if (argc - optind != 2)
        return usage_error("diff", "two images, A and B, expected");
    if (!strcmp(argv[optind], "-") && !strcmp(argv[optind + 1], "-"))
        return usage_error("diff", "at most one of A and B can be '-' (stdin)");
    if (image_load(&A, argv[optind], &ro)) {
        image_free(&A);
        return ST_USAGE;
    }
    if (image_load(&B, argv[optind + 1], &ro)) {
        image_free(&A);
        image_free(&B);
        return ST_USAGE;
    }
    if (page_diff_walk(&A.pages, &B.pages, &only_a, &changed) ||
        page_diff_walk(&B.pages, &A.pages, &only_b, NULL)) {
        errorf("diff", "pages", "out of memory");
        goto out;
    }

    if (!d.quiet) {
        printf("A: %s\nB: %s\n", A.label, B.label);
        if (strcmp(layers_of(&A, la, sizeof(la)), layers_of(&B, lb, sizeof(lb))))
            diff_note(&d, "layers differ: A has %s, B has %s", la, lb);
        if (A.have_xc && B.have_xc && A.xc.version != B.xc.version)
            diff_note(&d, "libxc image version %u -> %u", A.xc.version, B.xc.version);
        if (A.have_xc && B.have_xc &&
            (A.xc.xen_major != B.xc.xen_major || A.xc.xen_minor != B.xc.xen_minor))
            diff_note(&d, "saved by version %u.%u -> %u.%u", A.xc.xen_major, A.xc.xen_minor,
                      B.xc.xen_major, B.xc.xen_minor);
        if (changed.count)
            print_page_set("differ", &changed);
        if (only_a.count)
            print_page_set("only in A", &only_a);
        if (only_b.count)
            print_page_set("only in B", &only_b);
    }
    diff_config(&d, &A, &B);
    diff_cpuid(&d, &A, &B);
    diff_msrs(&d, &A, &B);
    diff_tsc(&d, &A, &B);
    diff_params(&d, &A, &B);
    diff_hvm(&d, &A, &B);
    diff_blobs(&d, &A, &B);
    bool same = !changed.count && !only_a.count && !only_b.count && !d.state;
    if (!d.quiet) {
        if (same)
            printf("no differences (%" PRIu64 " pages compared)\n", A.pages.count);
        else
            printf("differences: %" PRIu64 " pages differ, %" PRIu64 " only in A, %" PRIu64
                   " only in B; %" PRIu64 " state fields differ\n", changed.count, only_a.count,
                   only_b.count, d.state);
    }
    status = same ? ST_OK : ST_FAILED;
    if (fflush(stdout)) {
        errorf("diff", "stdout", "%s", strerror(errno));
        status = ST_USAGE;
    }
out:
    pfnmap_free(&changed);
    pfnmap_free(&only_a);
    pfnmap_free(&only_b);
    image_free(&A);
    image_free(&B);
    return status;
}

/* ---- convert ---------------------------------------------------------------------- */

struct output {
    const char *path, *label;
    int fd;
    char tmp[PATH_MAX];
    struct stream_sink *s;
    struct tlog log;
    char error[512];
    bool have_error;
};

static void output_log(void *opaque, enum tlog_level level, const char *msg)
{
    struct output *o = opaque;

    if (level >= TLOG_ERROR && !o->have_error) {
        snprintf(o->error, sizeof(o->error), "%s", msg);
        o->have_error = true;
    }
}

static int output_open(struct output *o, const char *path)
{
    memset(o, 0, sizeof(*o));
    o->path = path;
    o->fd = -1;
    o->log = (struct tlog){ .fn = output_log, .opaque = o, .min_level = TLOG_ERROR };
    if (!strcmp(path, "-")) {
        o->label = "stdout";
        if (isatty(STDOUT_FILENO)) {
            errorf("convert", o->label, "is a terminal; not writing a binary image there");
            return -EINVAL;
        }
        o->fd = STDOUT_FILENO;
    } else {
        char *d = strdup(path), *b = strdup(path);
        o->label = path;
        if (!d || !b) {
            free(d);
            free(b);
            errorf("convert", path, "out of memory");
            return -ENOMEM;
        }
        snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.tmp.XXXXXX", dirname(d), basename(b));
        free(d);
        free(b);
        o->fd = mkstemp(o->tmp);
        if (o->fd < 0) {
            int e = errno;
            errorf("convert", path, "cannot create it: %s", strerror(e));
            o->tmp[0] = 0;
            return -e;
        }
    }
    if (stream_sink_new(o->fd, &o->log, &o->s)) {
        errorf("convert", o->label, "%s", o->have_error ? o->error : "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static void output_fail(struct output *o, int rc)
{
    errorf("convert", o->label, "%s", o->have_error ? o->error : strerror(-rc));
}

/* Makes the image appear under its name, complete, or not at all. */
static int output_close(struct output *o, bool keep)
{
    int rc = 0;

    if (keep && o->s)
        rc = o->tmp[0] ? stream_sink_sync(o->s) : stream_sink_flush(o->s);
    if (keep && rc)
        output_fail(o, rc);
    if (o->s)
        stream_sink_free(o->s);
    o->s = NULL;
    if (o->tmp[0]) {
        if (close(o->fd) < 0 && keep && !rc) {
            rc = -errno;
            errorf("convert", o->label, "%s", strerror(errno));
        }
        if (keep && !rc && rename(o->tmp, o->path) < 0) {
            rc = -errno;
            errorf("convert", o->label, "cannot rename %s to it: %s", o->tmp, strerror(errno));
        }
        if (!keep || rc) {
            unlink(o->tmp);
        } else {
            char *d = strdup(o->path);
            int dfd = d ? open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(d);
        }
    }
    o->fd = -1;
    return rc;
}

/* A TANDEM_PAGE_DATA_LZ4 record, decompressed, as the PAGE_DATA it stands for. */
static int write_plain_pages(struct stream_sink *s, const struct stream_record *rec)
{
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    const void *pages[STREAM_MAX_BATCH];
    unsigned n;
    int rc = stream_decode_page_data(rec, &n, pfns, types, data);

    if (rc)
        return rc;
    for (unsigned i = 0; i < n; i++)
        pages[i] = data[i];
    return stream_write_page_data(s, n, pfns, types, pages);
}

static int sink_record(struct stream_sink *s, uint32_t type, const void *body, uint32_t len)
{
    static const uint8_t zeros[8];
    uint8_t h[8];
    int rc;

    put_le32(h, type);
    put_le32(h + 4, len);
    rc = stream_sink_write(s, h, sizeof(h));
    if (!rc && len)
        rc = stream_sink_write(s, body, len);
    if (!rc && pad8(len))
        rc = stream_sink_write(s, zeros, pad8(len));
    return rc;
}

static int parse_layer(const char *s, enum stream_layer *l)
{
    if (!strcmp(s, "xl"))
        *l = STREAM_LAYER_XL;
    else if (!strcmp(s, "libxl"))
        *l = STREAM_LAYER_LIBXL;
    else if (!strcmp(s, "libxc"))
        *l = STREAM_LAYER_LIBXC;
    else
        return -1;
    return 0;
}

/* A JSON object from a file, as text. */
static char *load_config(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_object *o;

    if (!f) {
        errorf("convert", path, "cannot open the config: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                errorf("convert", path, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (len > STREAM_MAX_XL_OPTIONAL_DATA - 5) {
            errorf("convert", path, "a config larger than an xl header holds (%u bytes)",
                   STREAM_MAX_XL_OPTIONAL_DATA - 5);
            goto fail;
        }
    }
    if (ferror(f)) {
        errorf("convert", path, "reading the config: %s", strerror(errno));
        goto fail;
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        errorf("convert", path, "the config has a NUL byte: not JSON text");
        goto fail;
    }
    o = json_tokener_parse(buf);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        errorf("convert", path, "the config is not a JSON object (xl's domain config, as an "
               "xl header holds it)");
        goto fail;
    }
    json_object_put(o);
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static const char *const convert_help =
    "Usage: " PROG " convert --to xl|libxl|libxc [OPTIONS] IN OUT|-\n"
    "Converts a stream between the layers: strips the xl header (--to libxl),\n"
    "extracts the inline libxc image (--to libxc), wraps a libxc image in a\n"
    "libxl stream (header, LIBXC_CONTEXT, the image, END) and a libxl stream in\n"
    "an xl save file, whose domain config comes from --config or from IN's own\n"
    "xl header.  --stream-version 2 writes a version 2 libxc image, without\n"
    "what version 2 lacks (STATIC_DATA_END, X86_CPUID_POLICY, X86_MSR_POLICY);\n"
    "--stream-version 3 turns a version 2 image into version 3.  Whatever is\n"
    "dropped is listed on stderr.  Records are copied byte for byte, except\n"
    "Tandem's lz4-compressed page records, which become plain PAGE_DATA (so\n"
    "that Xen's tools can read the result), and the input is checked by the\n"
    "strict reader on the way.  OUT is written under a\n"
    "temporary name and renamed once complete; '-' writes stdout and IN '-'\n"
    "reads stdin.\n"
    "\n"
    "Options:\n"
    "  --to=xl|libxl|libxc             the layer to write (default: IN's)\n"
    "  --stream-version=2|3            the libxc image version to write\n"
    "                                  (default: IN's)\n"
    "  --config=FILE                   the domain config (JSON) for an xl header\n"
    "  --checkpoints=plain|remus|colo  the stream is checkpointed (default plain)\n"
    "  -h, --help                      this text\n";

static int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "to", required_argument, NULL, 't' }, { "stream-version", required_argument, NULL, 'v' },
        { "config", required_argument, NULL, 'C' }, { "checkpoints", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct read_opts ro = { .checkpoints = STREAM_PLAIN, .xen_made = true };
    enum stream_layer to = STREAM_LAYER_XL;
    bool have_to = false, xl_done = false;
    unsigned version = 0, out_version = 0;
    const char *config_path = NULL;
    char *config = NULL;
    struct input in;
    struct output out;
    struct stream_record rec;
    uint64_t lz4_recs = 0;
    int opt, rc, status = ST_FAILED;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (parse_layer(optarg, &to))
                return usage_error("convert", "--to %s: none of xl, libxl, libxc", optarg);
            have_to = true;
            break;
        case 'v':
            if (strcmp(optarg, "2") && strcmp(optarg, "3"))
                return usage_error("convert", "--stream-version %s: 2 or 3 expected", optarg);
            version = (unsigned)atoi(optarg);
            break;
        case 'C':
            config_path = optarg;
            break;
        case 'c':
            if (parse_checkpoints("convert", optarg, &ro.checkpoints))
                return ST_USAGE;
            break;
        case 'h':
            fputs(convert_help, stdout);
            return ST_OK;
        default:
            return usage_error("convert", "bad option");
        }
    }
    if (argc - optind != 2)
        return usage_error("convert", "IN and OUT expected");
    if (!have_to && !version)
        return usage_error("convert", "--to or --stream-version expected");
    if (config_path && !(config = load_config(config_path)))
        return ST_FAILED;
    if (input_open(&in, "convert", argv[optind], &ro)) {
        free(config);
        return ST_FAILED;
    }
    if (!have_to)
        to = in.layer;
    if (to == STREAM_LAYER_XL && !config && in.layer != STREAM_LAYER_XL) {
        errorf("convert", in.label, "a %s has no domain config for the xl header: give one "
               "with --config FILE", in.layer == STREAM_LAYER_LIBXL ? "libxl stream"
               : "libxc image");
        input_close(&in);
        return ST_FAILED;
    }
    if (output_open(&out, argv[optind + 1])) {
        output_close(&out, false);
        input_close(&in);
        free(config);
        return ST_FAILED;
    }

    for (;;) {
        rc = input_read(&in, &rec);
        if (rc) {
            input_fail(&in, rc);
            goto out;
        }
        rc = 0;
        if (rec.header) {
            switch (rec.layer) {
            case STREAM_LAYER_XL:
                if (to == STREAM_LAYER_XL) {
                    const struct stream_xl_header *h = stream_reader_xl_header(in.r);
                    const char *c = config ? config : h ? h->config : NULL;
                    if (!c) {
                        input_progress_clear(&in);
                        errorf("convert", in.label, "its xl header has no domain config: give "
                               "one with --config FILE");
                        goto out;
                    }
                    rc = stream_write_xl_header(out.s, c);
                    xl_done = true;
                }
                break;
            case STREAM_LAYER_LIBXL:
                if (to == STREAM_LAYER_XL && !xl_done) {
                    rc = stream_write_xl_header(out.s, config);
                    xl_done = true;
                }
                if (!rc && to != STREAM_LAYER_LIBXC)
                    rc = stream_sink_write(out.s, rec.body, rec.length);
                break;
            case STREAM_LAYER_LIBXC: {
                const struct stream_libxc_header *h = stream_reader_libxc_header(in.r);
                uint8_t hdr[STREAM_LIBXC_HEADER_SIZE];
                if (in.layer == STREAM_LAYER_LIBXC && to != STREAM_LAYER_LIBXC) {
                    if (to == STREAM_LAYER_XL && !xl_done) {
                        rc = stream_write_xl_header(out.s, config);
                        xl_done = true;
                    }
                    if (!rc)
                        rc = stream_write_libxl_header(out.s);
                    if (!rc)
                        rc = stream_write_libxc_context(out.s);
                }
                out_version = version ? version : h ? h->version : STREAM_LIBXC_VERSION;
                memcpy(hdr, rec.body, sizeof(hdr));
                put_be32(hdr + 12, out_version);
                if (!rc)
                    rc = stream_sink_write(out.s, hdr, sizeof(hdr));
                if (h && h->version != out_version)
                    input_note(&in, "libxc image version %u written as version %u", h->version,
                               out_version);
                break;
            }
            }
        } else if (rec.layer == STREAM_LAYER_LIBXL) {
            if (to != STREAM_LAYER_LIBXC)
                rc = sink_record(out.s, rec.type, rec.body, rec.length);
            else if (rec.type != STREAM_LIBXL_LIBXC_CONTEXT && rec.type != STREAM_LIBXL_END)
                input_note(&in, "dropped libxl %s at offset 0x%" PRIx64 " (%u bytes): a libxc "
                           "image has no place for it", rec_name(&rec), rec.offset, rec.length);
        } else {
            bool v2 = out_version < 3;
            switch (rec.type) {
            case STREAM_LIBXC_STATIC_DATA_END:
                if (rec.inferred) {
                    if (!v2) {
                        rc = sink_record(out.s, rec.type, NULL, 0);
                        input_note(&in, "added libxc STATIC_DATA_END at offset 0x%" PRIx64
                                   " (version 3 has it; version 2 implied it)", rec.offset);
                    }
                } else if (v2) {
                    input_note(&in, "dropped libxc STATIC_DATA_END at offset 0x%" PRIx64
                               ": version 2 has none", rec.offset);
                } else {
                    rc = sink_record(out.s, rec.type, NULL, 0);
                }
                break;
            case STREAM_LIBXC_X86_CPUID_POLICY:
            case STREAM_LIBXC_X86_MSR_POLICY:
                if (v2) {
                    bool cpuid = rec.type == STREAM_LIBXC_X86_CPUID_POLICY;
                    input_note(&in, "dropped libxc %s at offset 0x%" PRIx64 " (%u %s): "
                               "version 2 has no CPU policies", rec_name(&rec), rec.offset,
                               rec.length / (cpuid ? 24 : 16), cpuid ? "CPUID leaves" : "MSRs");
                    break;
                }
                /* fall through */
            default:
                if (rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4) {
                    rc = write_plain_pages(out.s, &rec);
                    lz4_recs++;
                    break;
                }
                rc = sink_record(out.s, rec.type, rec.body, rec.length);
                if (!rc && rec.type == STREAM_LIBXC_END && in.layer == STREAM_LAYER_LIBXC &&
                    to != STREAM_LAYER_LIBXC)
                    rc = stream_write_libxl_end(out.s);
            }
        }
        if (rc) {
            input_progress_clear(&in);
            output_fail(&out, rc);
            goto out;
        }
        if (rec.last)
            break;
    }
    input_progress_clear(&in);
    uint64_t trailing = input_trailing(&in);
    if (lz4_recs)
        input_note(&in, "%" PRIu64 " lz4-compressed page records (TANDEM_PAGE_DATA_LZ4) written "
                   "as plain PAGE_DATA", lz4_recs);
    if (trailing)
        input_note(&in, "%" PRIu64 " bytes after the stream's final END not copied", trailing);
    status = ST_OK;
out:
    if (output_close(&out, status == ST_OK))
        status = ST_FAILED;
    input_close(&in);
    free(config);
    return status;
}

/* ---- Main ----------------------------------------------------------------------- */

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *const *help;
};

static int cmd_help(int argc, char **argv);

static const char *const main_help =
    "Usage: " PROG " COMMAND [OPTIONS] ARGS...\n"
    "Inspects, checks, compares and converts Migration v2 streams: xl save\n"
    "files, libxl streams and libxc images.  FILE '-' reads stdin.\n"
    "\n"
    "Commands:\n"
    "  info FILE|-          what an image holds: layers, versions, memory, vCPUs,\n"
    "                       pages and records by type\n"
    "  dump [--json] FILE|- every record with its offset, type, length, decoded\n"
    "  verify FILE|-        validate the whole stream; exit 1 at the first fault\n"
    "  diff A B             which pages, registers and state differ\n"
    "  convert --to xl|libxl|libxc [--stream-version 2|3] [--config FILE] IN OUT|-\n"
    "                       convert between layers and image versions\n"
    "  help [COMMAND]       this text, or a command's\n"
    "\n"
    "Run '" PROG " COMMAND --help' for a command's options.  Exit status: 0 ok,\n"
    "1 failed (invalid stream; diff: the images differ), 2 usage error (diff:\n"
    "any error).\n";

static const char *const help_help =
    "Usage: " PROG " help [COMMAND]\n"
    "Prints the list of commands, or a command's help.\n";

static const struct command commands[] = {
    { "info", cmd_info, &info_help },
    { "dump", cmd_dump, &dump_help },
    { "verify", cmd_verify, &verify_help },
    { "diff", cmd_diff, &diff_help },
    { "convert", cmd_convert, &convert_help },
    { "help", cmd_help, &help_help },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(argc < 2 ? main_help : help_help, stdout);
        return ST_OK;
    }
    if (argc > 2)
        return usage_error("help", "one COMMAND at most");
    c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, PROG ": help: %s : no such command\nTry '" PROG " help'.\n", argv[1]);
        return ST_USAGE;
    }
    fputs(*c->help, stdout);
    return ST_OK;
}

int main(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        fputs(main_help, stderr);
        return ST_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(main_help, stdout);
        return ST_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
        return ST_OK;
    }
    c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, PROG ": %s : no such command\nTry '" PROG " --help'.\n", argv[1]);
        return ST_USAGE;
    }
    optind = 1;
    return c->run(argc - 1, argv + 1);
}
