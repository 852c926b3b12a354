/* Save: a paused domain becomes a libxl stream with the libxc image
 * inline, in the order Xen's spec sets:
 *   libxl header, LIBXC_CONTEXT,
 *     libxc headers, X86_CPUID_POLICY, X86_MSR_POLICY, STATIC_DATA_END,
 *     PAGE_DATA..., X86_TSC_INFO, HVM_PARAMS, HVM_CONTEXT, END,
 *   EMULATOR_CONTEXT (Tandem's device models), END. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tandem/migration.h"
#include "tandem/streams.h"
#include "migration_internal.h"

uint64_t migration_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void migration_stats_format(const struct migration_stats *st, char *buf, size_t len)
{
    snprintf(buf, len, "pages=%" PRIu64 " zero_pages=%" PRIu64 " bytes=%" PRIu64 " time_ms=%" PRIu64,
             st->pages, st->zero_pages, st->bytes, st->usec / 1000);
}

/* CPUID and MSR policies, then STATIC_DATA_END: what the receiver checks
 * before any memory is sent. */
int migration_write_static_data(struct domain *d, struct stream_sink *s, const struct tlog *log)
{
    struct domain_cpuid_leaf *leaves = NULL;
    struct domain_msr_entry *msrs = NULL;
    xen_cpuid_leaf_t *xl = NULL;
    xen_msr_entry_t *xm = NULL;
    unsigned nl = 0, nm = 0;
    int rc = domain_get_cpuid_policy(d, &leaves, &nl, log);
    if (!rc)
        rc = domain_get_msr_policy(d, &msrs, &nm, log);
    if (!rc && (!(xl = calloc(nl ? nl : 1, sizeof(*xl))) || !(xm = calloc(nm ? nm : 1, sizeof(*xm)))))
        rc = -ENOMEM;
    if (rc)
        goto out;
    for (unsigned i = 0; i < nl; i++)
        xl[i] = (xen_cpuid_leaf_t){ .leaf = leaves[i].leaf, .subleaf = leaves[i].subleaf,
                                    .a = leaves[i].a, .b = leaves[i].b, .c = leaves[i].c, .d = leaves[i].d };
    for (unsigned i = 0; i < nm; i++)
        xm[i] = (xen_msr_entry_t){ .idx = msrs[i].idx, .flags = msrs[i].flags, .val = msrs[i].val };
    if (nl)
        rc = stream_write_cpuid_policy(s, xl, nl);
    if (!rc && nm)
        rc = stream_write_msr_policy(s, xm, nm);
    if (!rc)
        rc = stream_write_static_data_end(s);
out:
    free(leaves);
    free(msrs);
    free(xl);
    free(xm);
    return rc;
}

/* Sends pages, batched as Xen does; all-zero pages go as XALLOC with no
 * data.  `want(pfn)` selects pages (NULL: all RAM). */
/* One batch, compressed if asked and worth it; counts what it took. */
static int write_batch(struct stream_sink *s, unsigned n, const uint64_t *pfns, const uint8_t *types,
                       const void *const *pages, bool compress, struct migration_stats *st)
{
    uint64_t before = stream_sink_offset(s), plain = 8 + 8 + 8 * (uint64_t)n;
    int rc = compress ? stream_write_page_data_lz4(s, n, pfns, types, pages)
                      : stream_write_page_data(s, n, pfns, types, pages);
    for (unsigned i = 0; i < n; i++)
        if (types[i] == STREAM_PAGE_NORMAL)
            plain += STREAM_PAGE_SIZE;
    st->page_bytes += stream_sink_offset(s) - before;
    st->page_bytes_plain += plain;
    return rc;
}

/* Which host pages were never touched, from /proc/self/pagemap: neither
 * present nor swapped out means the kernel has nothing there, so the page
 * reads as zeros.  Asking costs 8 bytes a page; reading an untouched page
 * to check it would fault in the zero page for every one of them (most of
 * an idle guest).  Entries are read 512 at a time as pages are visited. */
#define PAGEMAP_WINDOW 512
struct pagemap_cache {
    int fd;
    uintptr_t base;
    size_t n;
    uint64_t e[PAGEMAP_WINDOW];
};

static bool page_untouched(struct pagemap_cache *c, const void *host)
{
    const uintptr_t page = 4096;
    uintptr_t a = (uintptr_t)host & ~(page - 1);
    if (c->fd < 0)
        return false;
    if (!c->n || a < c->base || a >= c->base + c->n * page) {
        ssize_t r = pread(c->fd, c->e, sizeof(c->e), (off_t)(a / page) * 8);
        c->base = a;
        c->n = r > 0 ? (size_t)r / 8 : 0;
        if (!c->n)
            return false;
    }
    /* bit 63: present, bit 62: swapped */
    return !(c->e[(a - c->base) / page] & (3ULL << 62));
}

int migration_write_pages(struct domain *d, struct stream_sink *s, const uint64_t *pfn_list, uint64_t n_list,
                          bool compress, struct migration_stats *st)
{
    struct pagemap_cache pm = { .fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) };
    struct domain_ram_region rr[2];
    unsigned nr = domain_ram_regions(d, rr);
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const void *pages[STREAM_MAX_BATCH];
    unsigned n = 0;
    int rc = 0;

#define FLUSH_BATCH()                                                        \
    do {                                                                     \
        if (n && (rc = write_batch(s, n, pfns, types, pages, compress, st))) \
            goto out;                                                        \
        n = 0;                                                               \
    } while (0)
#define ADD_PAGE(pfn, host)                                                  \
    do {                                                                     \
        const void *pg_ = (host);                                            \
        bool zero_ = page_untouched(&pm, pg_) || stream_page_is_zero(pg_);   \
        pfns[n] = (pfn);                                                     \
        types[n] = zero_ ? STREAM_PAGE_XALLOC : STREAM_PAGE_NORMAL;          \
        pages[n] = zero_ ? NULL : pg_;                                       \
        if (zero_) st->zero_pages++; else st->pages++;                       \
        if (++n == STREAM_MAX_BATCH) FLUSH_BATCH();                          \
    } while (0)

    if (!pfn_list) {
        for (unsigned r = 0; r < nr; r++) {
            uint64_t first = rr[r].gpa / STREAM_PAGE_SIZE, count = rr[r].size / STREAM_PAGE_SIZE;
            for (uint64_t i = 0; i < count; i++)
                ADD_PAGE(first + i, rr[r].host + i * STREAM_PAGE_SIZE);
        }
    } else {
        for (uint64_t i = 0; i < n_list; i++) {
            uint8_t *host = migration_pfn_to_host(rr, nr, pfn_list[i]);
            if (host)
                ADD_PAGE(pfn_list[i], host);
        }
    }
    FLUSH_BATCH();
out:
    if (pm.fd >= 0)
        close(pm.fd);
    return rc;
#undef ADD_PAGE
#undef FLUSH_BATCH
}

uint8_t *migration_pfn_to_host(const struct domain_ram_region *rr, unsigned nr, uint64_t pfn)
{
    uint64_t gpa = pfn * STREAM_PAGE_SIZE;
    for (unsigned r = 0; r < nr; r++)
        if (gpa >= rr[r].gpa && gpa - rr[r].gpa < rr[r].size)
            return rr[r].host + (gpa - rr[r].gpa);
    return NULL;
}

int migration_get_cpu_state(struct domain *d, struct migration_cpu_state *cs, const struct tlog *log)
{
    memset(cs, 0, sizeof(*cs));
    int rc = domain_get_tsc_info(d, &cs->tsc, log);
    if (!rc)
        rc = domain_get_hvm_params(d, &cs->params, &cs->nr_params, log);
    if (!rc)
        rc = domain_get_hvm_context(d, &cs->context, &cs->context_len, log);
    if (rc)
        migration_cpu_state_free(cs);
    return rc;
}

void migration_cpu_state_free(struct migration_cpu_state *cs)
{
    free(cs->params);
    free(cs->context);
    cs->params = NULL;
    cs->context = NULL;
    cs->nr_params = 0;
    cs->context_len = 0;
}

int migration_put_cpu_state(struct stream_sink *s, const struct migration_cpu_state *cs)
{
    struct stream_tsc_info st = { .mode = cs->tsc.mode, .khz = cs->tsc.khz, .nsec = cs->tsc.nsec,
                                  .incarnation = cs->tsc.incarnation };
    struct stream_hvm_param *sp = NULL;
    unsigned np = cs->nr_params;
    int rc = stream_write_tsc_info(s, &st);
    if (rc)
        return rc;
    if (np) {
        if (!(sp = calloc(np, sizeof(*sp))))
            return -ENOMEM;
        for (unsigned i = 0; i < np; i++)
            sp[i] = (struct stream_hvm_param){ .index = cs->params[i].index, .value = cs->params[i].value };
        rc = stream_write_hvm_params(s, sp, np);
        free(sp);
        if (rc)
            return rc;
    }
    return stream_write_hvm_context(s, cs->context, cs->context_len);
}

/* The end of a libxc image: TSC info, HVM params, HVM context, END. */
int migration_write_cpu_state(struct domain *d, struct stream_sink *s, const struct tlog *log)
{
    struct migration_cpu_state cs;
    int rc = migration_get_cpu_state(d, &cs, log);
    if (rc)
        return rc;
    rc = migration_put_cpu_state(s, &cs);
    if (!rc)
        rc = stream_write_libxc_end(s);
    migration_cpu_state_free(&cs);
    return rc;
}

int migration_write_device_state(struct domain *d, struct stream_sink *s, const struct tlog *log)
{
    uint8_t *dev = NULL;
    size_t len = 0;
    /* The guest is handed over with this state: every write it was told
     * is done must be on its disks first. */
    int rc = domain_disk_sync(d, log);
    if (!rc)
        rc = domain_get_device_state(d, &dev, &len, log);
    if (!rc)
        rc = stream_write_emulator_context(s, 0, dev, len);
    free(dev);
    return rc;
}

int migration_save(struct domain *d, int fd, struct migration_stats *st, const struct tlog *log)
{
    struct stream_sink *s;
    uint64_t start = migration_now_usec();
    memset(st, 0, sizeof(*st));
    int rc = stream_sink_new(fd, log, &s);
    if (rc)
        return rc;
    if ((rc = stream_write_libxl_header(s)) || (rc = stream_write_libxc_context(s)) ||
        (rc = stream_write_libxc_header(s, TANDEM_VERSION_MAJOR, TANDEM_VERSION_MINOR)) ||
        (rc = migration_write_static_data(d, s, log)) ||
        (rc = migration_write_pages(d, s, NULL, 0, false, st)) ||
        (rc = migration_write_cpu_state(d, s, log)) ||
        (rc = migration_write_device_state(d, s, log)) ||
        (rc = stream_write_libxl_end(s)) || (rc = stream_sink_flush(s)))
        tlog_error(log, "writing the image at byte %" PRIu64 ": %s", stream_sink_offset(s), strerror(-rc));
    st->bytes = stream_sink_offset(s);
    st->usec = migration_now_usec() - start;
    stream_sink_free(s);
    return rc;
}
