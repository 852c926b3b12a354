/* Names of things in the format, and decoders from a record's body to C
 * values.  The decoders check shapes (lengths, counts) but not the
 * stream-level rules, which are the reader's. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/streams.h"
#include "stream_impl.h"

const char *stream_layer_name(enum stream_layer layer)
{
    switch (layer) {
    case STREAM_LAYER_XL: return "xl";
    case STREAM_LAYER_LIBXL: return "libxl";
    case STREAM_LAYER_LIBXC: return "libxc";
    }
    return "?";
}

const char *stream_record_name(enum stream_layer layer, uint32_t type)
{
    static const char *const libxc[] = {
        "END", "PAGE_DATA", "X86_PV_INFO", "X86_PV_P2M_FRAMES", "X86_PV_VCPU_BASIC",
        "X86_PV_VCPU_EXTENDED", "X86_PV_VCPU_XSAVE", "SHARED_INFO", "X86_TSC_INFO",
        "HVM_CONTEXT", "HVM_PARAMS", "TOOLSTACK", "X86_PV_VCPU_MSRS", "VERIFY", "CHECKPOINT",
        "CHECKPOINT_DIRTY_PFN_LIST", "STATIC_DATA_END", "X86_CPUID_POLICY", "X86_MSR_POLICY",
    };
    static const char *const libxl[] = {
        "END", "LIBXC_CONTEXT", "EMULATOR_XENSTORE_DATA", "EMULATOR_CONTEXT",
        "CHECKPOINT_END", "CHECKPOINT_STATE",
    };

    if (layer == STREAM_LAYER_LIBXC && type < sizeof(libxc) / sizeof(libxc[0]))
        return libxc[type];
    if (layer == STREAM_LAYER_LIBXC && type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4)
        return "TANDEM_PAGE_DATA_LZ4";
    if (layer == STREAM_LAYER_LIBXC && type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA)
        return "TANDEM_PAGE_DATA_DELTA";
    if (layer == STREAM_LAYER_LIBXL && type == STREAM_LIBXL_TANDEM_DISK_DATA)
        return "TANDEM_DISK_DATA";
    if (layer == STREAM_LAYER_LIBXL && type == STREAM_LIBXL_TANDEM_CHECKPOINT_ACK)
        return "TANDEM_CHECKPOINT_ACK";
    if (layer == STREAM_LAYER_LIBXL && type < sizeof(libxl) / sizeof(libxl[0]))
        return libxl[type];
    return NULL;
}

const char *stream_page_type_name(unsigned type)
{
    static const char *const names[16] = {
        "NORMAL", "L1TAB", "L2TAB", "L3TAB", "L4TAB", "reserved-5", "reserved-6",
        "reserved-7", "reserved-8", "L1TAB_PIN", "L2TAB_PIN", "L3TAB_PIN", "L4TAB_PIN",
        "BROKEN", "XALLOC", "XTAB",
    };

    return type < 16 ? names[type] : "?";
}

const char *stream_hvm_typecode_name(unsigned typecode)
{
    /* xen/arch-x86/hvm/save.h's codes; 16 and 20 have no DECLARE_ macro
     * there (variable length) but are named the same way. */
    static const char *const names[] = {
        "END", "HEADER", "CPU", "PIC", "IOAPIC", "LAPIC", "LAPIC_REGS", "PCI_IRQ",
        "ISA_IRQ", "PCI_LINK", "PIT", "RTC", "HPET", "PMTIMER", "MTRR", "VIRIDIAN_DOMAIN",
        "CPU_XSAVE", "VIRIDIAN_VCPU", "VMCE_VCPU", "TSC_ADJUST", "CPU_MSR",
    };

    return typecode < sizeof(names) / sizeof(names[0]) ? names[typecode] : NULL;
}

/* ---- Headers ---------------------------------------------------------- */

int stream_decode_xl_header(const struct stream_record *rec, struct stream_xl_header *h)
{
    const uint8_t *b = rec->body;
    uint32_t config_len;

    if (!rec->header || rec->layer != STREAM_LAYER_XL || rec->length < STREAM_XL_HEADER_SIZE)
        return -EINVAL;
    memset(h, 0, sizeof(*h));
    h->mandatory_flags = get_le32(b + 36);
    h->optional_flags = get_le32(b + 40);
    h->optional_data_len = get_le32(b + 44);
    if (h->optional_data_len != rec->length - STREAM_XL_HEADER_SIZE)
        return -EINVAL;
    if (h->optional_data_len < 4)
        return h->optional_data_len ? -EINVAL : 0;
    config_len = get_le32(b + STREAM_XL_HEADER_SIZE);
    if (config_len > h->optional_data_len - 4)
        return -EINVAL;
    if (config_len) {
        const char *c = (const char *)b + STREAM_XL_HEADER_SIZE + 4;
        if (c[config_len - 1] || memchr(c, 0, config_len - 1))
            return -EINVAL;
        h->config = c;
        h->config_len = config_len - 1;
    }
    return 0;
}

int stream_decode_libxl_header(const struct stream_record *rec, struct stream_libxl_header *h)
{
    if (!rec->header || rec->layer != STREAM_LAYER_LIBXL ||
        rec->length != STREAM_LIBXL_HEADER_SIZE)
        return -EINVAL;
    h->version = get_be32(rec->body + 8);
    h->options = get_be32(rec->body + 12);
    return 0;
}

int stream_decode_libxc_header(const struct stream_record *rec, struct stream_libxc_header *h)
{
    const uint8_t *b = rec->body;

    if (!rec->header || rec->layer != STREAM_LAYER_LIBXC ||
        rec->length != STREAM_LIBXC_HEADER_SIZE)
        return -EINVAL;
    h->version = get_be32(b + 12);
    h->options = get_be16(b + 16);
    h->domain_type = get_le32(b + 24);
    h->page_shift = get_le16(b + 28);
    h->xen_major = get_le32(b + 32);
    h->xen_minor = get_le32(b + 36);
    return 0;
}

/* ---- libxc records --------------------------------------------------------- */

static bool is_libxc(const struct stream_record *rec, uint32_t type)
{
    return !rec->header && rec->layer == STREAM_LAYER_LIBXC && rec->type == type;
}

int stream_decode_page_data(const struct stream_record *rec, unsigned *count, uint64_t *pfns,
                            uint8_t *types, const uint8_t **data)
{
    const uint8_t *b = rec->body, *pages;
    bool lz4 = is_libxc(rec, STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4);
    uint64_t off, end;
    uint32_t n;

    if ((!lz4 && !is_libxc(rec, STREAM_LIBXC_PAGE_DATA)) || rec->length < 8)
        return -EINVAL;
    n = get_le32(b);
    if (n < 1 || n > STREAM_MAX_BATCH || rec->length < 8 + 8 * (uint64_t)n + (lz4 ? 8 : 0))
        return -EINVAL;
    if (lz4) {
        /* The data is the reader's decompressed copy; the body must still
         * be a whole block after the pfns. */
        if (get_le32(b + 8 + 8 * n) != rec->length - 16 - 8 * (uint64_t)n || !rec->page_data)
            return -EINVAL;
        pages = rec->page_data;
        off = 0;
        end = rec->page_data_len;
    } else {
        pages = b;
        off = 8 + 8 * (uint64_t)n;
        end = rec->length;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t w = get_le64(b + 8 + 8 * i);
        unsigned t = (unsigned)(w >> STREAM_PFN_TYPE_SHIFT);

        pfns[i] = w & STREAM_PFN_MASK;
        types[i] = (uint8_t)t;
        data[i] = NULL;
        if (stream_page_type_has_data(t)) {
            if (off + STREAM_PAGE_SIZE > end)
                return -EINVAL;
            data[i] = pages + off;
            off += STREAM_PAGE_SIZE;
        }
    }
    if (off != end)
        return -EINVAL;
    *count = n;
    return 0;
}

int stream_decode_tsc_info(const struct stream_record *rec, struct stream_tsc_info *t)
{
    if (!is_libxc(rec, STREAM_LIBXC_X86_TSC_INFO) || rec->length != 24)
        return -EINVAL;
    t->mode = get_le32(rec->body);
    t->khz = get_le32(rec->body + 4);
    t->nsec = get_le64(rec->body + 8);
    t->incarnation = get_le32(rec->body + 16);
    return 0;
}

int stream_decode_hvm_params(const struct stream_record *rec, struct stream_hvm_param **out,
                             unsigned *n)
{
    uint32_t count;
    struct stream_hvm_param *p = NULL;

    *out = NULL;
    *n = 0;
    if (!is_libxc(rec, STREAM_LIBXC_HVM_PARAMS) || rec->length < 8)
        return -EINVAL;
    count = get_le32(rec->body);
    if (count > STREAM_MAX_HVM_PARAMS || rec->length != 8 + 16 * count)
        return -EINVAL;
    if (count && !(p = calloc(count, sizeof(*p))))
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        p[i].index = get_le64(rec->body + 8 + 16 * i);
        p[i].value = get_le64(rec->body + 16 + 16 * i);
    }
    *out = p;
    *n = count;
    return 0;
}

int stream_decode_cpuid_policy(const struct stream_record *rec, xen_cpuid_leaf_t **out,
                               unsigned *n)
{
    unsigned count;
    xen_cpuid_leaf_t *l;

    *out = NULL;
    *n = 0;
    if (!is_libxc(rec, STREAM_LIBXC_X86_CPUID_POLICY) || !rec->length || rec->length % 24 ||
        rec->length / 24 > STREAM_MAX_CPUID_LEAVES)
        return -EINVAL;
    count = rec->length / 24;
    if (!(l = calloc(count, sizeof(*l))))
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *e = rec->body + 24 * i;
        l[i].leaf = get_le32(e);
        l[i].subleaf = get_le32(e + 4);
        l[i].a = get_le32(e + 8);
        l[i].b = get_le32(e + 12);
        l[i].c = get_le32(e + 16);
        l[i].d = get_le32(e + 20);
    }
    *out = l;
    *n = count;
    return 0;
}

int stream_decode_msr_policy(const struct stream_record *rec, xen_msr_entry_t **out, unsigned *n)
{
    unsigned count;
    xen_msr_entry_t *m;

    *out = NULL;
    *n = 0;
    if (!is_libxc(rec, STREAM_LIBXC_X86_MSR_POLICY) || !rec->length || rec->length % 16 ||
        rec->length / 16 > STREAM_MAX_MSRS)
        return -EINVAL;
    count = rec->length / 16;
    if (!(m = calloc(count, sizeof(*m))))
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        m[i].idx = get_le32(rec->body + 16 * i);
        m[i].flags = get_le32(rec->body + 16 * i + 4);
        m[i].val = get_le64(rec->body + 16 * i + 8);
    }
    *out = m;
    *n = count;
    return 0;
}

int stream_decode_dirty_pfn_list(const struct stream_record *rec, uint64_t **out, unsigned *n)
{
    unsigned count;
    uint64_t *p = NULL;

    *out = NULL;
    *n = 0;
    if (!is_libxc(rec, STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST) || rec->length % 8 ||
        rec->length / 8 > STREAM_MAX_DIRTY_PFNS)
        return -EINVAL;
    count = rec->length / 8;
    if (count && !(p = calloc(count, sizeof(*p))))
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++)
        p[i] = get_le64(rec->body + 8 * i);
    *out = p;
    *n = count;
    return 0;
}

/* ---- libxl records ------------------------------------------------------- */

int stream_decode_emulator_context(const struct stream_record *rec, uint32_t *emulator_id,
                                   uint32_t *index, bool *tandem, const uint8_t **state,
                                   size_t *len)
{
    if (rec->header || rec->layer != STREAM_LAYER_LIBXL ||
        (rec->type != STREAM_LIBXL_EMULATOR_CONTEXT &&
         rec->type != STREAM_LIBXL_EMULATOR_XENSTORE_DATA) || rec->length < 8)
        return -EINVAL;
    *emulator_id = get_le32(rec->body);
    *index = get_le32(rec->body + 4);
    *tandem = rec->type == STREAM_LIBXL_EMULATOR_CONTEXT &&
              *emulator_id == STREAM_EMULATOR_UNKNOWN &&
              rec->length >= 8 + STREAM_TANDEM_DM_MAGIC_LEN &&
              !memcmp(rec->body + 8, STREAM_TANDEM_DM_MAGIC, STREAM_TANDEM_DM_MAGIC_LEN);
    *state = rec->body + 8 + (*tandem ? STREAM_TANDEM_DM_MAGIC_LEN : 0);
    *len = rec->length - 8 - (*tandem ? STREAM_TANDEM_DM_MAGIC_LEN : 0);
    return 0;
}

int stream_decode_checkpoint_state(const struct stream_record *rec, uint32_t *control_id)
{
    if (rec->header || rec->layer != STREAM_LAYER_LIBXL ||
        rec->type != STREAM_LIBXL_CHECKPOINT_STATE || (rec->length != 4 && rec->length != 8))
        return -EINVAL;
    *control_id = get_le32(rec->body);
    return 0;
}

/* ---- Remus: checkpoint compression (TANDEM_PAGE_DATA_DELTA) -------------------- */


#define RUN_MAX 128u

uint32_t stream_delta_encode(const void *old_page, const void *new_page, uint8_t *out)
{
    const uint8_t *a = old_page, *b = new_page;
    uint32_t i = 0, o = 0;

    while (i < STREAM_PAGE_SIZE) {
        uint32_t n = 0;
        if (a[i] == b[i]) {
            while (i + n < STREAM_PAGE_SIZE && n < RUN_MAX && a[i + n] == b[i + n])
                n++;
            if (o + 1 > STREAM_PAGE_SIZE - 1)
                return 0;
            out[o++] = (uint8_t)(n - 1);
        } else {
            /* A literal runs until two equal bytes in a row: one equal byte
             * costs less inside the literal than as a run of its own. */
            while (i + n < STREAM_PAGE_SIZE && n < RUN_MAX &&
                   (a[i + n] != b[i + n] ||
                    (i + n + 1 < STREAM_PAGE_SIZE && a[i + n + 1] != b[i + n + 1])))
                n++;
            if (o + 1 + n > STREAM_PAGE_SIZE - 1)
                return 0;
            out[o++] = (uint8_t)(0x80 + n - 1);
            for (uint32_t k = 0; k < n; k++)
                out[o++] = a[i + k] ^ b[i + k];
        }
        i += n;
    }
    return o;
}

bool stream_delta_valid(const uint8_t *enc, uint32_t len)
{
    uint32_t covered = 0, o = 0;

    if (!len || len > STREAM_PAGE_SIZE)
        return false;
    while (o < len) {
        uint8_t c = enc[o++];
        uint32_t n = (uint32_t)(c & 0x7f) + 1;
        if (covered + n > STREAM_PAGE_SIZE)
            return false;
        if (c & 0x80) {
            if (len - o < n)
                return false;
            o += n;
        }
        covered += n;
    }
    return covered == STREAM_PAGE_SIZE;
}

int stream_delta_apply(uint8_t *page, const uint8_t *enc, uint32_t len)
{
    uint32_t at = 0, o = 0;

    if (!stream_delta_valid(enc, len))
        return -EINVAL;
    while (o < len) {
        uint8_t c = enc[o++];
        uint32_t n = (uint32_t)(c & 0x7f) + 1;
        if (c & 0x80)
            for (uint32_t k = 0; k < n; k++)
                page[at + k] ^= enc[o++];
        at += n;
    }
    return 0;
}

/* ---- Remus's records -------------------------------------------------------------- */


int stream_decode_page_delta(const struct stream_record *rec, unsigned *count, uint64_t *pfns,
                             const uint8_t **enc, uint32_t *enc_len)
{
    const uint8_t *b = rec->body;
    uint64_t off;
    uint32_t n;

    if (rec->header || rec->layer != STREAM_LAYER_LIBXC ||
        rec->type != STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA || rec->length < 8)
        return -EINVAL;
    n = get_le32(b);
    if (n < 1 || n > STREAM_MAX_BATCH)
        return -EINVAL;
    off = 8 + 12 * (uint64_t)n + (n & 1 ? 4 : 0);
    if (rec->length < off)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = get_le32(b + 8 + 8 * (size_t)n + 4 * i);
        if (off + l > rec->length || !stream_delta_valid(b + off, l))
            return -EINVAL;
        pfns[i] = get_le64(b + 8 + 8 * i) & STREAM_PFN_MASK;
        enc[i] = b + off;
        enc_len[i] = l;
        off += l;
    }
    if (off != rec->length)
        return -EINVAL;
    *count = n;
    return 0;
}

int stream_decode_disk_data(const struct stream_record *rec, uint32_t *disk, uint64_t *offset,
                            const uint8_t **data, uint32_t *len)
{
    const uint8_t *b = rec->body;

    if (rec->header || rec->layer != STREAM_LAYER_LIBXL ||
        rec->type != STREAM_LIBXL_TANDEM_DISK_DATA || rec->length <= STREAM_DISK_DATA_HEADER)
        return -EINVAL;
    if (get_le32(b + 16) != rec->length - STREAM_DISK_DATA_HEADER)
        return -EINVAL;
    *disk = get_le32(b);
    *offset = get_le64(b + 8);
    *len = get_le32(b + 16);
    *data = b + STREAM_DISK_DATA_HEADER;
    return 0;
}

int stream_parse_checkpoint_ack(const uint8_t rec[STREAM_CHECKPOINT_ACK_SIZE], uint64_t *epoch,
                                const struct tlog *log)
{
    uint32_t type = get_le32(rec), len = get_le32(rec + 4);

    if (type != STREAM_LIBXL_TANDEM_CHECKPOINT_ACK) {
        tlog_error(log, "Remus back channel: record type 0x%x, not TANDEM_CHECKPOINT_ACK (0x%x)",
                   type, STREAM_LIBXL_TANDEM_CHECKPOINT_ACK);
        return -EINVAL;
    }
    if (len != 8) {
        tlog_error(log, "Remus back channel: TANDEM_CHECKPOINT_ACK of length %u, not 8", len);
        return -EINVAL;
    }
    *epoch = get_le64(rec + 8);
    return 0;
}
