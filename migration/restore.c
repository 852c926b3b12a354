/* Restore: a libxl stream becomes the state of a domain built for restore.
 * The reader checks the format; this applies what it reads, in order, and
 * insists that the image was complete. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "tandem/migration.h"
#include "tandem/streams.h"
#include "migration_internal.h"

struct migration_restorer {
    struct domain *d;
    const struct tlog *log;
    struct domain_ram_region rr[2];
    unsigned nr;
    bool have_context, libxc_done, have_devices;
    struct migration_stats *st;
    /* The last error a record's restore gave, for the message that names
     * the record (through `keep`, which forwards to the caller's log). */
    struct tlog keep;
    const struct tlog *outer;
    char why[400];
    /* Pages this restore has written.  The domain was built for the
     * restore, so every other page is still zero and an XALLOC for it
     * needs nothing: not even a look, which would fault the page in. */
    uint64_t *written;
    /* One PAGE_DATA record, decoded. */
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    uint32_t enc_len[STREAM_MAX_BATCH];
};

static void keep_error(void *opaque, enum tlog_level level, const char *msg)
{
    struct migration_restorer *r = opaque;
    if (level == TLOG_ERROR)
        snprintf(r->why, sizeof(r->why), "%s", msg);
    tlog(r->outer, level, "%s", msg);
}

static int apply_cpuid_policy(struct migration_restorer *r, const struct stream_record *rec)
{
    xen_cpuid_leaf_t *xl;
    unsigned n;
    int rc = stream_decode_cpuid_policy(rec, &xl, &n);
    if (rc)
        return rc;
    struct domain_cpuid_leaf *l = calloc(n ? n : 1, sizeof(*l));
    if (!l) {
        free(xl);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        l[i] = (struct domain_cpuid_leaf){ xl[i].leaf, xl[i].subleaf, xl[i].a, xl[i].b, xl[i].c, xl[i].d };
    rc = domain_set_cpuid_policy(r->d, l, n, r->log);
    free(l);
    free(xl);
    return rc;
}

static int apply_msr_policy(struct migration_restorer *r, const struct stream_record *rec)
{
    xen_msr_entry_t *xm;
    unsigned n;
    int rc = stream_decode_msr_policy(rec, &xm, &n);
    if (rc)
        return rc;
    struct domain_msr_entry *m = calloc(n ? n : 1, sizeof(*m));
    if (!m) {
        free(xm);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        m[i] = (struct domain_msr_entry){ xm[i].idx, xm[i].flags, xm[i].val };
    rc = domain_set_msr_policy(r->d, m, n, r->log);
    free(m);
    free(xm);
    return rc;
}

static int apply_pages(struct migration_restorer *r, const struct stream_record *rec)
{
    uint64_t *pfns = r->pfns;
    uint8_t *types = r->types;
    const uint8_t **data = r->data;
    unsigned n;
    int rc = stream_decode_page_data(rec, &n, pfns, types, data);
    if (rc)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *host = migration_pfn_to_host(r->rr, r->nr, pfns[i]);
        switch (types[i]) {
        case STREAM_PAGE_NORMAL:
        case STREAM_PAGE_XALLOC:
            if (!host) {
                tlog_error(r->log, "PAGE_DATA at offset %#" PRIx64 ": pfn %#" PRIx64 " is not RAM in this domain",
                           rec->offset, pfns[i]);
                return -ERANGE;
            }
            if (types[i] == STREAM_PAGE_NORMAL) {
                memcpy(host, data[i], STREAM_PAGE_SIZE);
                r->written[pfns[i] / 64] |= 1ULL << (pfns[i] % 64);
                r->st->pages++;
            } else {
                /* Allocated and zero: only a page an earlier record of
                 * this stream filled can be anything else. */
                if ((r->written[pfns[i] / 64] >> (pfns[i] % 64)) & 1)
                    memset(host, 0, STREAM_PAGE_SIZE);
                r->st->zero_pages++;
            }
            break;
        case STREAM_PAGE_XTAB:
            break; /* a hole in the sender's memory: nothing to do */
        default:
            tlog_error(r->log, "PAGE_DATA at offset %#" PRIx64 ": pfn %#" PRIx64 " has type %s, which an HVM "
                       "restore cannot use", rec->offset, pfns[i], stream_page_type_name(types[i]));
            return -EOPNOTSUPP;
        }
    }
    return 0;
}

/* Remus's compressed pages: each delta XORed into the page the secondary
 * holds, which is the copy the primary last sent (the reader has checked
 * every encoding; a pfn outside RAM changes nothing before it). */
static int apply_page_delta(struct migration_restorer *r, const struct stream_record *rec)
{
    unsigned n;
    int rc = stream_decode_page_delta(rec, &n, r->pfns, r->data, r->enc_len);
    if (rc)
        return rc;
    for (unsigned i = 0; i < n; i++)
        if (!migration_pfn_to_host(r->rr, r->nr, r->pfns[i])) {
            tlog_error(r->log, "TANDEM_PAGE_DATA_DELTA at offset %#" PRIx64 ": pfn %#" PRIx64
                       " is not RAM in this domain", rec->offset, r->pfns[i]);
            return -ERANGE;
        }
    for (unsigned i = 0; i < n; i++) {
        uint64_t pfn = r->pfns[i];
        if ((rc = stream_delta_apply(migration_pfn_to_host(r->rr, r->nr, pfn), r->data[i], r->enc_len[i])))
            return rc;
        r->written[pfn / 64] |= 1ULL << (pfn % 64);
        r->st->pages++;
    }
    return 0;
}

static int apply_libxc_record(struct migration_restorer *r, const struct stream_record *rec)
{
    switch (rec->type) {
    case STREAM_LIBXC_X86_CPUID_POLICY:
        return apply_cpuid_policy(r, rec);
    case STREAM_LIBXC_X86_MSR_POLICY:
        return apply_msr_policy(r, rec);
    case STREAM_LIBXC_PAGE_DATA:
    case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
        return apply_pages(r, rec);
    case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
        return apply_page_delta(r, rec);
    case STREAM_LIBXC_X86_TSC_INFO: {
        struct stream_tsc_info t;
        int rc = stream_decode_tsc_info(rec, &t);
        if (rc)
            return rc;
        struct domain_tsc_info dt = { .mode = t.mode, .khz = t.khz, .nsec = t.nsec, .incarnation = t.incarnation };
        return domain_set_tsc_info(r->d, &dt, r->log);
    }
    case STREAM_LIBXC_HVM_PARAMS: {
        struct stream_hvm_param *p;
        unsigned n;
        int rc = stream_decode_hvm_params(rec, &p, &n);
        if (rc)
            return rc;
        struct domain_hvm_param *dp = calloc(n ? n : 1, sizeof(*dp));
        if (!dp) {
            free(p);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < n; i++)
            dp[i] = (struct domain_hvm_param){ p[i].index, p[i].value };
        rc = domain_set_hvm_params(r->d, dp, n, r->log);
        free(dp);
        free(p);
        return rc;
    }
    case STREAM_LIBXC_HVM_CONTEXT:
        r->have_context = true;
        return domain_set_hvm_context(r->d, rec->body, rec->length, r->log);
    case STREAM_LIBXC_STATIC_DATA_END:
    case STREAM_LIBXC_VERIFY:
        return 0;
    case STREAM_LIBXC_END:
        r->libxc_done = true;
        return 0;
    default:
        tlog_error(r->log, "%s record at offset %#" PRIx64 " has no place in an HVM restore",
                   stream_record_name(STREAM_LAYER_LIBXC, rec->type), rec->offset);
        return -EOPNOTSUPP;
    }
}

static int apply_libxl_record(struct migration_restorer *r, const struct stream_record *rec)
{
    switch (rec->type) {
    case STREAM_LIBXL_LIBXC_CONTEXT:
    case STREAM_LIBXL_END:
        return 0;
    case STREAM_LIBXL_EMULATOR_CONTEXT: {
        uint32_t id, index;
        bool tandem;
        const uint8_t *state;
        size_t len;
        int rc = stream_decode_emulator_context(rec, &id, &index, &tandem, &state, &len);
        if (rc)
            return rc;
        if (!tandem || index != 0) {
            tlog_error(r->log, "EMULATOR_CONTEXT at offset %#" PRIx64 " is not Tandem's device state",
                       rec->offset);
            return -EOPNOTSUPP;
        }
        r->have_devices = true;
        return domain_set_device_state(r->d, state, len, r->log);
    }
    case STREAM_LIBXL_EMULATOR_XENSTORE_DATA:
        return 0; /* xenstore keys mean nothing to a KVM domain */
    default:
        tlog_error(r->log, "libxl %s record at offset %#" PRIx64 " has no place in a restore",
                   stream_record_name(STREAM_LAYER_LIBXL, rec->type), rec->offset);
        return -EOPNOTSUPP;
    }
}

int migration_restorer_new(struct domain *d, struct migration_stats *st, const struct tlog *log,
                           struct migration_restorer **out)
{
    struct migration_restorer *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return -ENOMEM;
    r->d = d;
    r->outer = log;
    r->st = st;
    r->keep = (struct tlog){ .fn = keep_error, .opaque = r, .min_level = TLOG_DEBUG };
    r->log = &r->keep;
    r->nr = domain_ram_regions(d, r->rr);
    r->written = calloc((domain_max_pfn(d) + 63) / 64, sizeof(uint64_t));
    if (!r->written) {
        free(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void migration_restorer_free(struct migration_restorer *r)
{
    if (!r)
        return;
    free(r->written);
    free(r);
}

bool migration_restorer_have_context(const struct migration_restorer *r)
{
    return r->have_context;
}

bool migration_restorer_have_devices(const struct migration_restorer *r)
{
    return r->have_devices;
}

int migration_restorer_apply(struct migration_restorer *r, const struct stream_record *rec)
{
    r->why[0] = 0;
    int rc = rec->layer == STREAM_LAYER_LIBXC ? apply_libxc_record(r, rec) : apply_libxl_record(r, rec);
    if (rc)
        tlog_error(r->outer, "restoring %s record at offset %#" PRIx64 " failed%s%s",
                   stream_record_name(rec->layer, rec->type), rec->offset, r->why[0] ? ": " : "", r->why);
    return rc;
}

int migration_restore(struct domain *d, int fd, const struct migration_restore_opts *ro,
                      struct migration_stats *st, const struct tlog *log)
{
    struct migration_restorer *r;
    struct stream_reader *rd;
    memset(st, 0, sizeof(*st));
    uint64_t start = migration_now_usec();
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_PLAIN,
                                    .max_pfn = domain_max_pfn(d), .tandem_lz4 = ro && ro->compress,
                                    .log = log };
    int rc = migration_restorer_new(d, st, log, &r);
    if (rc)
        return rc;
    rc = stream_reader_new(fd, &o, &rd);
    if (rc) {
        migration_restorer_free(r);
        return rc;
    }
    for (;;) {
        struct stream_record rec;
        rc = stream_read_record(rd, &rec);
        if (rc) {
            if (rc == -EPIPE)
                tlog_error(log, "the image is truncated: it ends at byte %" PRIu64 " inside the stream",
                           stream_reader_offset(rd));
            break;
        }
        if (rec.header) {
            const struct stream_libxc_header *h = stream_reader_libxc_header(rd);
            if (rec.layer == STREAM_LAYER_LIBXC && h && h->domain_type != STREAM_DOMAIN_X86_HVM) {
                tlog_error(log, "the image is of an x86 PV domain; Tandem restores HVM domains only");
                rc = -EOPNOTSUPP;
                break;
            }
            continue;
        }
        if ((rc = migration_restorer_apply(r, &rec)))
            break;
        if (rec.last)
            break;
    }
    if (!rc && (!r->have_context || !r->libxc_done)) {
        tlog_error(log, "the image has no %s", r->have_context ? "libxc END record" : "HVM_CONTEXT record");
        rc = -EINVAL;
    }
    if (!rc && !r->have_devices && domain_nr_virtio_devices(d)) {
        /* Devices that came up reset under a running driver would lose
         * its rings: refuse rather than start a guest that cannot work. */
        tlog_error(log, "the image has no device state (EMULATOR_CONTEXT) for the domain's %u virtio device(s)",
                   domain_nr_virtio_devices(d));
        rc = -EINVAL;
    }
    st->bytes = stream_reader_offset(rd);
    st->usec = migration_now_usec() - start;
    stream_reader_free(rd);
    migration_restorer_free(r);
    return rc;
}
