/* xl destroy, pause, unpause. */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "xl.h"

#define DESTROY_TIMEOUT_MS 10000

static int simple_command(struct xl_ctx *ctx, int argc, char **argv, const char *what)
{
    int rc = xl_help_only(ctx, argc, argv, 1, 1);
    if (rc >= 0)
        return rc;
    if (xl_open_host(ctx))
        return XL_FAILED;
    struct registry_entry e;
    if (xl_find_domain(ctx, argv[optind], &e))
        return XL_FAILED;
    return control_command(&ctx->paths, e.domid, what, NULL, 0, &ctx->log) ? XL_FAILED : XL_OK;
}

int xl_cmd_pause(struct xl_ctx *ctx, int argc, char **argv)
{
    return simple_command(ctx, argc, argv, "pause");
}

int xl_cmd_unpause(struct xl_ctx *ctx, int argc, char **argv)
{
    return simple_command(ctx, argc, argv, "unpause");
}

/* Asks the domain process to destroy its domain; if it does not answer or
 * does not go, it is killed: destroy must work on a wedged process too. */
int xl_cmd_destroy(struct xl_ctx *ctx, int argc, char **argv)
{
    int rc = xl_help_only(ctx, argc, argv, 1, 1);
    if (rc >= 0)
        return rc;
    if (xl_open_host(ctx))
        return XL_FAILED;
    struct registry_entry e;
    if (xl_find_domain(ctx, argv[optind], &e))
        return XL_FAILED;
    return xl_destroy_domain(ctx, &e) ? XL_FAILED : XL_OK;
}

int xl_destroy_domain(struct xl_ctx *ctx, const struct registry_entry *ep)
{
    struct registry_entry e = *ep;
    struct tlog quiet = ctx->log;
    quiet.min_level = ctx->verbose ? TLOG_WARN : TLOG_ERROR + 1;
    if (control_command(&ctx->paths, e.domid, "destroy", NULL, 0, &quiet) == 0 &&
        xl_wait_gone(&e, DESTROY_TIMEOUT_MS))
        goto gone;
    tlog_warn(&ctx->log, "domain %u's process %d did not stop by itself; killing it", e.domid, (int)e.pid);
    if (registry_entry_alive(&e))
        kill(e.pid, SIGKILL);
    if (!xl_wait_gone(&e, DESTROY_TIMEOUT_MS)) {
        tlog_error(&ctx->log, "domain %u's process %d survived SIGKILL", e.domid, (int)e.pid);
        return -EBUSY;
    }
gone:
    /* The process removes its own record; after a kill we do. */
    registry_remove(&ctx->paths, e.domid);
    return 0;
}
