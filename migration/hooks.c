/* The engine as the domain process calls it. */
#include "config.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tandem/migration.h"

/* "live [max_downtime_ms=N] [max_iters=N] [bandwidth=BYTES/S] [logdirty=M] [compress]" */
static int hook_save_live(struct domain *d, int fd, const char *options,
                          void (*progress)(void *, const char *), void *progress_opaque, const bool *cancel,
                          char *summary,
                          size_t len, const struct tlog *log)
{
    struct migration_live_opts o = { .max_downtime_ms = 30, .max_iters = 30, .progress = progress,
                                      .progress_opaque = progress_opaque, .cancel = cancel };
    char *copy = strdup(options), *save = NULL;
    if (!copy) {
        domain_pause(d);
        return -ENOMEM;
    }
    int rc = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long long v = eq ? strtoull(eq + 1, &end, 10) : 0;
        bool num = eq && end && end != eq + 1 && !*end;
        if (!strncmp(tok, "max_downtime_ms=", 16) && num)
            o.max_downtime_ms = (unsigned)v;
        else if (!strncmp(tok, "max_iters=", 10) && num && v >= 1)
            o.max_iters = (unsigned)v;
        else if (!strncmp(tok, "bandwidth=", 10) && num)
            o.bandwidth_bytes_per_sec = v;
        else if (!strncmp(tok, "stream_version=", 15) && num && (v == 2 || v == 3))
            o.stream_version = (unsigned)v;
        else if (!strncmp(tok, "logdirty=", 9) && !domain_logdirty_mode_parse(tok + 9, &o.logdirty))
            ;
        else if (!strcmp(tok, "compress") || !strcmp(tok, "compress=lz4"))
            o.compress = true;
        else {
            tlog_error(log, "save: bad live option '%s'", tok);
            rc = -EINVAL;
        }
    }
    free(copy);
    if (rc) {
        domain_pause(d);
        return rc;
    }
    struct migration_live_stats st;
    rc = migration_save_live(d, fd, &o, &st, log);
    if (!rc)
        migration_live_stats_format(&st, summary, len);
    return rc;
}

static int hook_save(struct domain *d, int fd, const char *options,
                     void (*progress)(void *, const char *), void *progress_opaque, const bool *cancel,
                     char *summary,
                     size_t len, const struct tlog *log)
{
    struct migration_stats st;
    if (strncmp(options, "live", 4) == 0 && (options[4] == ' ' || !options[4]))
        return hook_save_live(d, fd, options + 4, progress, progress_opaque, cancel, summary, len, log);
    if (options[0]) {
        tlog_error(log, "save: unknown options '%s'", options);
        return -EINVAL;
    }
    int rc = migration_save(d, fd, &st, log);
    if (!rc)
        migration_stats_format(&st, summary, len);
    return rc;
}

/* "" or "compress": accept lz4-compressed page data, which only a
 * receiver that asked the sender for it gets. */
static int hook_restore(struct domain *d, int fd, const char *options, char *summary, size_t len,
                        const struct tlog *log)
{
    struct migration_stats st;
    struct migration_restore_opts o = { 0 };
    char *copy = strdup(options ? options : ""), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        if (!strcmp(tok, "compress") || !strcmp(tok, "compress=lz4"))
            o.compress = true;
        else {
            tlog_error(log, "restore: bad option '%s'", tok);
            rc = -EINVAL;
        }
    }
    free(copy);
    if (rc)
        return rc;
    rc = migration_restore(d, fd, &o, &st, log);
    if (!rc)
        migration_stats_format(&st, summary, len);
    return rc;
}

const struct domproc_hooks migration_domproc_hooks = {
    .save = hook_save,
    .restore = hook_restore,
};
