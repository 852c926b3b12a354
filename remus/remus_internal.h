/* What the Remus primary and secondary share, and the parts of the domain
 * process's hooks (hooks.c) that tests drive directly. */
#ifndef TANDEM_REMUS_INTERNAL_H
#define TANDEM_REMUS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "tandem/remus.h"

/* Median of n values (sorts v in place); 0 for none. */
uint64_t remus_median(uint64_t *v, size_t n);

/* ---- The fence command (hooks.c) ----------------------------------------
 * Before a takeover the backup may run the operator's fence command, which
 * must power the primary off and succeed only once it is off. */
struct remus_fence_result {
    int status;                  /* exit status 0..255; -1 if it ended otherwise */
    int signal;                  /* the signal that ended it (0: none) */
    bool timed_out;              /* killed (its process group) at the timeout */
    uint64_t elapsed_ms;
    char last_stderr[200];       /* the last non-empty line it wrote to stderr */
};

/* Runs `sh -c cmd` in a process group of its own with TANDEM_DOMAIN=domain
 * and TANDEM_PRIMARY=primary (and TANDEM_WITNESS=witness if not NULL) added
 * to the environment, stdin from /dev/null, its output lines logged; at
 * timeout_ms the whole group is killed (SIGKILL).  Returns 0 only if it
 * exited with status 0 (the primary is fenced); -ETIMEDOUT, -ECHILD (it
 * exited non-zero or died of a signal: see *res) or -errno (it could not
 * be started) otherwise. */
int remus_fence_run(const char *cmd, const char *domain, const char *primary, const char *witness,
                    unsigned timeout_ms, struct remus_fence_result *res, const struct tlog *log);


#endif
