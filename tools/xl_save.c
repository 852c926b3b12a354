/* xl save and xl restore. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tandem/streams.h"
#include "xl.h"
#include "xlcfg.h"

int xl_domain_to_send(struct xl_ctx *ctx, const char *which, const char *verb, const char *cfgfile,
                      struct registry_entry *e, char *config_json, size_t len)
{
    if (xl_open_host(ctx) || xl_find_domain(ctx, which, e))
        return -EINVAL;
    if (e->state != DOMAIN_STATE_RUNNING && e->state != DOMAIN_STATE_PAUSED) {
        tlog_error(&ctx->log, "domain %s is %s: only a running or paused domain can be %s", e->name,
                   domain_state_name(e->state), verb);
        return -EINVAL;
    }
    snprintf(config_json, len, "%s", e->config_json);
    if (cfgfile) {
        /* A new config's vifs without mac= keep the MACs the guest has
         * now: the guest must not see its NICs change under it. */
        struct domain_config c, running;
        if (domain_config_from_json(e->config_json, &running, &ctx->log) ||
            xl_load_config(ctx, cfgfile, 0, NULL, true, &c))
            return -EINVAL;
        xlcfg_keep_macs(&c, &running);
        if (domain_config_to_json(&c, config_json, len))
            return -EINVAL;
    }
    return 0;
}

int xl_write_xl_header(int fd, const char *config_json, const struct tlog *log)
{
    struct stream_sink *s;
    int rc = stream_sink_new(fd, log, &s);
    if (rc)
        return rc;
    rc = stream_write_xl_header(s, config_json);
    if (!rc)
        rc = stream_sink_flush(s);
    stream_sink_free(s);
    return rc;
}

void xl_sync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int xl_cmd_save(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("save");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    bool leave_running = false, leave_paused = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hcp", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': leave_running = true; break;
        case 'p': leave_paused = true; break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc - optind < 2 || argc - optind > 3 || (leave_running && leave_paused))
        return xl_usage(cmd, true);
    const char *which = argv[optind], *file = argv[optind + 1];
    const char *cfgfile = argc - optind == 3 ? argv[optind + 2] : NULL;
    struct registry_entry e;
    char config_json[sizeof(e.config_json)];
    if (xl_domain_to_send(ctx, which, "saved", cfgfile, &e, config_json, sizeof(config_json)))
        return XL_FAILED;

    /* Write under a temporary name in the same directory; only a complete,
     * synced image gets the real name. */
    char tmp[4200];
    char *copy = strdup(file), *base = copy ? basename(copy) : NULL, *dcopy = strdup(file);
    if (!copy || !dcopy) {
        free(copy);
        free(dcopy);
        return XL_FAILED;
    }
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dirname(dcopy), base);
    free(copy);
    free(dcopy);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tlog_error(&ctx->log, "cannot create %s : %s", file, strerror(errno));
        return XL_FAILED;
    }
    fprintf(stderr, "Saving to %s new xl format (info 0x%x/0x0/%zu)\n", file, STREAM_XL_FLAG_JSON,
            strlen(config_json) + 1);
    char summary[400] = "";
    int rc = xl_write_xl_header(fd, config_json, &ctx->log);
    if (!rc)
        rc = control_command_fd(&ctx->paths, e.domid, "save", fd, summary, sizeof(summary), &ctx->log);
    if (!rc && fsync(fd) < 0) {
        rc = -errno;
        tlog_error(&ctx->log, "%s : %s", file, strerror(errno));
    }
    if (close(fd) < 0 && !rc) {
        rc = -errno;
        tlog_error(&ctx->log, "%s : %s", file, strerror(errno));
    }
    if (!rc && rename(tmp, file) < 0) {
        rc = -errno;
        tlog_error(&ctx->log, "cannot rename the image to %s : %s", file, strerror(errno));
    }
    if (rc) {
        unlink(tmp);
        /* The guest goes on as if nothing had happened. */
        if (e.state == DOMAIN_STATE_RUNNING)
            control_command(&ctx->paths, e.domid, "unpause", NULL, 0, NULL);
        tlog_error(&ctx->log, "domain %s was not saved; it is still %s", e.name,
                   e.state == DOMAIN_STATE_RUNNING ? "running" : "paused");
        return XL_FAILED;
    }
    xl_sync_dir_of(file);
    fprintf(stderr, "Saved domain %s to %s: %s\n", e.name, file, summary);
    if (leave_paused)
        return XL_OK;
    if (leave_running) {
        if (e.state == DOMAIN_STATE_RUNNING &&
            control_command(&ctx->paths, e.domid, "unpause", NULL, 0, &ctx->log))
            return XL_FAILED;
        return XL_OK;
    }
    return xl_destroy_domain(ctx, &e) ? XL_FAILED : XL_OK;
}

int xl_read_xl_header(int fd, const char *what, struct domain_config *c, const struct tlog *log)
{
    struct stream_reader *r;
    struct stream_reader_opts o = { .start = STREAM_LAYER_XL, .log = log };
    struct stream_record rec;
    int rc = stream_reader_new(fd, &o, &r);
    if (rc)
        return rc;
    rc = stream_read_record(r, &rec);
    const struct stream_xl_header *h = rc ? NULL : stream_reader_xl_header(r);
    if (!rc && (!h || !h->config)) {
        tlog_error(log, "%s has no domain config", what);
        rc = -EINVAL;
    }
    if (!rc)
        rc = domain_config_from_json(h->config, c, log);
    stream_reader_free(r);
    return rc;
}

int xl_cmd_restore(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("restore");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    bool paused = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hpeV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': paused = true; break;
        case 'e': case 'V': break; /* xl's: no background waiter / no VNC viewer */
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return xl_usage(cmd, true);
    const char *cfgfile = argc - optind == 2 ? argv[optind] : NULL;
    const char *file = argv[argc - 1];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tlog_error(&ctx->log, "cannot open %s : %s", file, strerror(errno));
        return XL_FAILED;
    }
    struct domain_config c, saved;
    int rc = xl_read_xl_header(fd, file, &saved, &ctx->log);
    c = saved;
    if (!rc && cfgfile) {
        rc = xl_load_config(ctx, cfgfile, 0, NULL, false, &c);
        if (!rc)
            xlcfg_keep_macs(&c, &saved);   /* the image's NICs keep their MACs */
    }
    if (!rc)
        rc = xl_open_host(ctx);
    if (rc) {
        close(fd);
        return XL_FAILED;
    }
    fprintf(stderr, "Loading new save file %s (new xl fmt info 0x%x/0x0)\n", file, STREAM_XL_FLAG_JSON);
    unsigned domid = 0;
    char summary[400] = "";
    rc = xl_spawn_domain(ctx, &c, paused, fd, NULL, &domid, summary, sizeof(summary));
    close(fd);
    if (rc)
        return XL_FAILED;
    fprintf(stderr, "Restored domain %s with ID %u: %s\n", c.name, domid, summary);
    return XL_OK;
}
