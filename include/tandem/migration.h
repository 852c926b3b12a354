/* Tandem's save/restore engine: turns a paused domain into a Migration v2
 * stream (the libxl stream with the libxc image inline) and back.  Live
 * migration builds its precopy loop on the same pieces. */
#ifndef TANDEM_MIGRATION_H
#define TANDEM_MIGRATION_H

#include <stdint.h>
#include "tandem/log.h"
#include "tandem/xen.h"

struct migration_stats {
    uint64_t pages;             /* pages sent with data */
    uint64_t zero_pages;        /* sent as XALLOC, no data */
    uint64_t bytes;             /* stream bytes */
    uint64_t usec;              /* wall time */
};

/* Writes the domain's whole state to fd as a libxl stream.  The domain
 * must be paused and stays paused. */
int migration_save(struct domain *d, int fd, struct migration_stats *st, const struct tlog *log);
/* Reads a libxl stream from fd into a domain built for restore (its
 * vCPUs have not run).  Strict: any error leaves the domain unusable and
 * the caller destroys it. */
int migration_restore(struct domain *d, int fd, struct migration_stats *st, const struct tlog *log);

/* Formats stats as the one-line summary tools print. */
void migration_stats_format(const struct migration_stats *st, char *buf, size_t len);

/* The engine as a domain process calls it (see struct domproc_hooks). */
extern const struct domproc_hooks migration_domproc_hooks;

#endif
