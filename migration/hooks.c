/* The engine as the domain process calls it. */
#include "config.h"
#include <errno.h>
#include <string.h>
#include "tandem/migration.h"

static int hook_save(struct domain *d, int fd, const char *options, char *summary, size_t len,
                     const struct tlog *log)
{
    struct migration_stats st;
    if (options[0]) {
        tlog_error(log, "save: unknown options '%s'", options);
        return -EINVAL;
    }
    int rc = migration_save(d, fd, &st, log);
    if (!rc)
        migration_stats_format(&st, summary, len);
    return rc;
}

static int hook_restore(struct domain *d, int fd, char *summary, size_t len, const struct tlog *log)
{
    struct migration_stats st;
    int rc = migration_restore(d, fd, &st, log);
    if (!rc)
        migration_stats_format(&st, summary, len);
    return rc;
}

const struct domproc_hooks migration_domproc_hooks = {
    .save = hook_save,
    .restore = hook_restore,
};
