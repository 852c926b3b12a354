/* Pieces shared by the save, restore and (later) live-migration code. */
#ifndef TANDEM_MIGRATION_INTERNAL_H
#define TANDEM_MIGRATION_INTERNAL_H

#include "tandem/migration.h"
#include "tandem/streams.h"

uint64_t migration_now_usec(void);
uint8_t *migration_pfn_to_host(const struct domain_ram_region *rr, unsigned nr, uint64_t pfn);
int migration_write_static_data(struct domain *d, struct stream_sink *s, const struct tlog *log);
/* pfn_list NULL: every RAM page.  compress: as TANDEM_PAGE_DATA_LZ4
 * where that is smaller (for a receiver that agreed to it). */
int migration_write_pages(struct domain *d, struct stream_sink *s, const uint64_t *pfn_list, uint64_t n_list,
                          bool compress, struct migration_stats *st);
int migration_write_cpu_state(struct domain *d, struct stream_sink *s, const struct tlog *log);
int migration_write_device_state(struct domain *d, struct stream_sink *s, const struct tlog *log);

/* The vCPU and platform state of a paused domain, taken at once and
 * written later (Remus copies it while paused and sends it running). */
struct migration_cpu_state {
    struct domain_tsc_info tsc;
    struct domain_hvm_param *params;
    unsigned nr_params;
    uint8_t *context;
    size_t context_len;
};
int migration_get_cpu_state(struct domain *d, struct migration_cpu_state *cs, const struct tlog *log);
/* X86_TSC_INFO, HVM_PARAMS, HVM_CONTEXT (no END: the caller ends the epoch). */
int migration_put_cpu_state(struct stream_sink *s, const struct migration_cpu_state *cs);
void migration_cpu_state_free(struct migration_cpu_state *cs);

/* The precopy loop the live save and Remus share (precopy.c):
 *   init; headers (libxl header, [before_libxc], LIBXC_CONTEXT, libxc
 *   header, static data); rounds (log-dirty on, the rounds until the rest
 *   would fit in the downtime); then the caller's stop-and-copy, using
 *   bitmap and send_dirty; fini (throttle and log-dirty off, frees). */
struct migration_precopy {
    struct domain *d;
    struct stream_sink *s;
    const struct migration_live_opts *o;
    struct migration_live_stats *st;
    const struct tlog *log;
    uint64_t start_usec, rings0;
    uint64_t *bitmap;            /* domain_logdirty_bitmap_words() words */
    size_t words;
    uint64_t *vcpu_dirtied;      /* per-vCPU counts at the last harvest */
    unsigned *throttle;          /* per-vCPU throttle, % */
    uint64_t *dirty_limit;       /* per-vCPU dirty-rate limit, pages/s (0 = none) */
    bool unpaced;                /* stop-and-copy: send at full speed */
    bool logging;                /* log-dirty started by rounds() */
};
int migration_precopy_init(struct migration_precopy *p, struct domain *d, struct stream_sink *s,
                           const struct migration_live_opts *o, struct migration_live_stats *st,
                           const struct tlog *log);
int migration_precopy_headers(struct migration_precopy *p,
                              int (*before_libxc)(void *opaque, struct stream_sink *s), void *opaque);
int migration_precopy_rounds(struct migration_precopy *p);
/* Sends the pages set in p->bitmap, clearing it. */
int migration_precopy_send_dirty(struct migration_precopy *p, struct migration_stats *it);
void migration_precopy_fini(struct migration_precopy *p);

/* Restore, record by record (restore.c): what migration_restore does for
 * each record, for Remus's secondary, which applies epochs it buffered.
 * Knows PAGE_DATA (and lz4), TANDEM_PAGE_DATA_DELTA, the CPU policies,
 * TSC, HVM params and context, EMULATOR_CONTEXT; a failure is logged
 * naming the record and its offset. */
struct migration_restorer;
int migration_restorer_new(struct domain *d, struct migration_stats *st, const struct tlog *log,
                           struct migration_restorer **out);
int migration_restorer_apply(struct migration_restorer *r, const struct stream_record *rec);
/* Whether an HVM_CONTEXT / EMULATOR_CONTEXT has been applied so far. */
bool migration_restorer_have_context(const struct migration_restorer *r);
bool migration_restorer_have_devices(const struct migration_restorer *r);
void migration_restorer_free(struct migration_restorer *r);

#endif
