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

struct restore {
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
};

static void keep_error(void *opaque, enum tlog_level level, const char *msg)
{
    struct restore *r = opaque;
    if (level == TLOG_ERROR)
        snprintf(r->why, sizeof(r->why), "%s", msg);
    tlog(r->outer, level, "%s", msg);
}

static int apply_cpuid_policy(struct restore *r, const struct stream_record *rec)
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

static int apply_msr_policy(struct restore *r, const struct stream_record *rec)
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

static int apply_pages(struct restore *r, const struct stream_record *rec)
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

static int apply_libxc_record(struct restore *r, const struct stream_record *rec)
{
    switch (rec->type) {
    case STREAM_LIBXC_X86_CPUID_POLICY:
        return apply_cpuid_policy(r, rec);
    case STREAM_LIBXC_X86_MSR_POLICY:
        return apply_msr_policy(r, rec);
    case STREAM_LIBXC_PAGE_DATA:
    case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
        return apply_pages(r, rec);
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

static int apply_libxl_record(struct restore *r, const struct stream_record *rec)
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

int migration_restore(struct domain *d, int fd, const struct migration_restore_opts *ro,
                      struct migration_stats *st, const struct tlog *log)
{
    struct restore r = { .d = d, .outer = log, .st = st };
    r.keep = (struct tlog){ .fn = keep_error, .opaque = &r, .min_level = TLOG_DEBUG };
    r.log = &r.keep;
    struct stream_reader *rd;
    memset(st, 0, sizeof(*st));
    uint64_t start = migration_now_usec();
    r.nr = domain_ram_regions(d, r.rr);
    struct stream_reader_opts o = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_PLAIN,
                                    .max_pfn = domain_max_pfn(d), .tandem_lz4 = ro && ro->compress,
                                    .log = log };
    r.written = calloc((domain_max_pfn(d) + 63) / 64, sizeof(uint64_t));
    if (!r.written)
        return -ENOMEM;
    int rc = stream_reader_new(fd, &o, &rd);
    if (rc) {
        free(r.written);
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
        rc = rec.layer == STREAM_LAYER_LIBXC ? apply_libxc_record(&r, &rec) : apply_libxl_record(&r, &rec);
        if (rc) {
            tlog_error(log, "restoring %s record at offset %#" PRIx64 " failed%s%s",
                       stream_record_name(rec.layer, rec.type), rec.offset, r.why[0] ? ": " : "", r.why);
            break;
        }
        if (rec.last)
            break;
    }
    if (!rc && (!r.have_context || !r.libxc_done)) {
        tlog_error(log, "the image has no %s", r.have_context ? "libxc END record" : "HVM_CONTEXT record");
        rc = -EINVAL;
    }
    if (!rc && !r.have_devices && domain_nr_virtio_devices(d)) {
        /* Devices that came up reset under a running driver would lose
         * its rings: refuse rather than start a guest that cannot work. */
        tlog_error(log, "the image has no device state (EMULATOR_CONTEXT) for the domain's %u virtio device(s)",
                   domain_nr_virtio_devices(d));
        rc = -EINVAL;
    }
    st->bytes = stream_reader_offset(rd);
    st->usec = migration_now_usec() - start;
    stream_reader_free(rd);
    free(r.written);
    return rc;
}
