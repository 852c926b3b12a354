/* Tandem's save/restore engine: turns a paused domain into a Migration v2
 * stream (the libxl stream with the libxc image inline) and back.  Live
 * migration builds its precopy loop on the same pieces. */
#ifndef TANDEM_MIGRATION_H
#define TANDEM_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>
#include "tandem/log.h"
#include "tandem/xen.h"

struct migration_stats {
    uint64_t pages;             /* pages sent with data */
    uint64_t zero_pages;        /* sent as XALLOC, no data */
    uint64_t bytes;             /* stream bytes */
    uint64_t usec;              /* wall time */
    /* The page records as written (PAGE_DATA and TANDEM_PAGE_DATA_LZ4),
     * and what they would have taken as plain PAGE_DATA: equal unless
     * the pages went compressed. */
    uint64_t page_bytes, page_bytes_plain;
};

/* How to restore. */
struct migration_restore_opts {
    /* Accept lz4-compressed page data (TANDEM_PAGE_DATA_LZ4): only when
     * this receiver asked the sender for it (xl migrate-receive -z). */
    bool compress;
};

/* Writes the domain's whole state to fd as a libxl stream.  The domain
 * must be paused and stays paused. */
int migration_save(struct domain *d, int fd, struct migration_stats *st, const struct tlog *log);
/* Reads a libxl stream from fd into a domain built for restore (its
 * vCPUs have not run).  Strict: any error leaves the domain unusable and
 * the caller destroys it.  o may be NULL: a plain stream only. */
int migration_restore(struct domain *d, int fd, const struct migration_restore_opts *o,
                      struct migration_stats *st, const struct tlog *log);

/* ---- Live save (precopy) ---------------------------------------------- */
#define MIGRATION_MAX_ITER_STATS 64

struct migration_live_opts {
    unsigned max_downtime_ms;            /* stop when the rest fits in this */
    unsigned max_iters;                  /* or after this many rounds */
    uint64_t bandwidth_bytes_per_sec;    /* send-rate limit, 0 = none */
    enum domain_logdirty_mode logdirty;  /* AUTO = the domain's own */
    /* Page data as TANDEM_PAGE_DATA_LZ4 where that makes a batch smaller:
     * only for a receiver that asked for it (not Xen-verifiable). */
    bool compress;
    /* One line per round ("iteration=N pages=... est_downtime_ms=..."),
     * and "paused" when the stop-and-copy starts. */
    void (*progress)(void *opaque, const char *line);
    void *progress_opaque;
    /* Set (by another thread) to give up: the save fails with -ECANCELED
     * at its next batch. */
    const bool *cancel;
    /* libxc image version: 3 (0 means 3) or 2 for receivers that only
     * take v2; v2 leaves out STATIC_DATA_END and the CPUID/MSR policies. */
    unsigned stream_version;
};

struct migration_iteration {
    unsigned iteration;
    uint64_t pages, zero_pages, dirty_pages, usec, bytes;
};

struct migration_live_stats {
    struct migration_stats total;
    unsigned iterations;                 /* precopy rounds, the first full pass included */
    struct migration_iteration iter[MIGRATION_MAX_ITER_STATS];
    uint64_t pause_usec;                 /* when the stop-and-copy paused the guest */
    uint64_t stop_copy_usec;             /* how long it took */
    uint64_t final_pages;
    unsigned throttle_pct;               /* the most any vCPU was throttled */
    unsigned stream_version;             /* libxc image version written */
    uint64_t dirty_limit;                /* the lowest dirty-rate limit set, pages/s (0 = none) */
    enum domain_logdirty_mode logdirty;
    uint64_t ring_full_exits;
    bool compress;                       /* the pages went through lz4 */
};

/* Writes the domain's state to fd while it runs; returns with the domain
 * paused (after success or failure alike: the caller resumes it if the
 * migration does not go through). */
int migration_save_live(struct domain *d, int fd, const struct migration_live_opts *o,
                        struct migration_live_stats *st, const struct tlog *log);
/* "key=value ..." with iter=pages:zero:dirty:ms:bytes,... (bytes: as
 * sent, compressed or not; compress=lz4|none, page_bytes= and
 * page_bytes_plain= tell what compression saved). */
void migration_live_stats_format(const struct migration_live_stats *st, char *buf, size_t len);

/* Formats stats as the one-line summary tools print. */
void migration_stats_format(const struct migration_stats *st, char *buf, size_t len);

/* The engine as a domain process calls it (see struct domproc_hooks). */
extern const struct domproc_hooks migration_domproc_hooks;

#endif
