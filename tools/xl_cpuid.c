/* CPU policies at the command line: host.cfg's cpuid_mask, xl.cfg's
 * cpuid= and cpuid_policy=, and `xl cpuid-policy host|guest|level|check`.
 * The policies themselves are xen/'s (cpu_features.c, cpu_policy.c). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xl.h"
#include "xlcfg.h"

#define POLICY_FILE_MAX (1024 * 1024)

int xl_read_host_config(struct xl_ctx *ctx, struct cpu_overrides *mask)
{
    memset(mask, 0, sizeof(*mask));
    char path[sizeof(ctx->paths.state_dir) + 16];
    snprintf(path, sizeof(path), "%s/host.cfg", ctx->paths.state_dir);
    if (access(path, F_OK) != 0)
        return 0;                        /* no host.cfg: nothing masked */
    struct xlcfg *cfg;
    int rc = xlcfg_parse_file(path, &ctx->log, &cfg);
    if (rc)
        return rc;
    const char *s;
    rc = xlcfg_get_string(cfg, "cpuid_mask", &s, &ctx->log);
    if (rc == 0) {
        char err[256];
        if ((rc = cpu_overrides_parse_mask(s, mask, err, sizeof(err))))
            tlog_error(&ctx->log, "%s: cpuid_mask: %s", path, err);
    } else if (rc == -ENOENT) {
        rc = 0;
    }
    xlcfg_free(cfg);
    return rc;
}

int xl_read_policy_file(struct xl_ctx *ctx, const char *path, struct cpu_policy *p)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
    if (!f) {
        int err = errno;
        tlog_error(&ctx->log, "cannot open CPU policy %s: %s", path, strerror(err));
        return -err;
    }
    char *buf = malloc(POLICY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, POLICY_FILE_MAX + 1, f) : 0;
    int rc = 0;
    char err[256];
    if (!buf) {
        rc = -ENOMEM;
    } else if (ferror(f)) {
        rc = -EIO;
        tlog_error(&ctx->log, "cannot read CPU policy %s", path);
    } else if (n > POLICY_FILE_MAX) {
        rc = -EFBIG;
        tlog_error(&ctx->log, "CPU policy %s: larger than %d bytes", path, POLICY_FILE_MAX);
    } else if ((rc = cpu_policy_from_json(buf, n, p, err, sizeof(err)))) {
        tlog_error(&ctx->log, "CPU policy %s: %s", path, err);
    }
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}

int xl_config_cpuid(struct xl_ctx *ctx, struct xlcfg *cfg, struct cpu_overrides *o)
{
    const struct tlog *log = &ctx->log;
    const char *s;
    memset(o, 0, sizeof(*o));
    /* cpuid_policy= first: a levelled policy takes away what the pool
     * lacks; cpuid= then changes single features on top of it. */
    int rc = xlcfg_get_string(cfg, "cpuid_policy", &s, log);
    if (rc == 0) {
        struct cpu_policy *pool = malloc(sizeof(*pool));
        if (!pool)
            return -ENOMEM;
        rc = xl_read_policy_file(ctx, s, pool);
        if (!rc)
            cpu_overrides_from_policy(pool, o);
        free(pool);
        if (rc)
            return rc;
    } else if (rc != -ENOENT) {
        return rc;
    }

    const struct xlcfg_value *v;
    rc = xlcfg_get_list(cfg, "cpuid", &v, NULL);
    char err[256];
    if (rc == 0) {
        /* The xend form: a list of "leaf[,subleaf]:reg=bits,...". */
        for (size_t i = 0; i < v->n_items; i++) {
            if (v->items[i].kind != XLCFG_STRING) {
                tlog_error(log, "%s:%u: cpuid: each item is a string \"leaf:reg=bits\"", v->items[i].file,
                           v->items[i].line);
                return -EINVAL;
            }
            if ((rc = cpu_overrides_parse_xend(v->items[i].str, o, err, sizeof(err)))) {
                tlog_error(log, "%s:%u: cpuid: %s", v->items[i].file, v->items[i].line, err);
                return rc;
            }
        }
        return 0;
    }
    rc = xlcfg_get_string(cfg, "cpuid", &s, log);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if ((rc = cpu_overrides_parse_libxl(s, o, err, sizeof(err))))
        tlog_error(log, "cpuid: %s", err);
    return rc;
}

/* ---- xl cpuid-policy ---------------------------------------------------- */

/* Writes text to path ("-": stdout) through a temporary name, so a reader
 * never sees half a policy. */
static int write_output(struct xl_ctx *ctx, const char *path, const char *text)
{
    if (!path || !strcmp(path, "-")) {
        fputs(text, stdout);
        fputc('\n', stdout);
        return fflush(stdout) ? -EIO : 0;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f) {
        int err = errno;
        tlog_error(&ctx->log, "cannot write %s: %s", tmp, strerror(err));
        return -err;
    }
    errno = 0;
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno ? errno : EIO;
        unlink(tmp);
        tlog_error(&ctx->log, "cannot write %s: %s", path, strerror(err));
        return -err;
    }
    xl_sync_dir_of(path);
    return 0;
}

static int print_policy(struct xl_ctx *ctx, const struct cpu_policy *p, const char *kind, const char *about,
                        const char *out, bool names)
{
    char *text = NULL;
    int rc;
    if (names) {
        text = malloc(16384);
        if (!text)
            return -ENOMEM;
        cpu_policy_feature_names(p, text, 16384);
        rc = 0;
    } else {
        rc = cpu_policy_to_json(p, kind, about, &text);
    }
    if (!rc)
        rc = write_output(ctx, out, text);
    free(text);
    return rc;
}

static int guest_policy(struct xl_ctx *ctx, const char *which, struct cpu_policy *p)
{
    struct registry_entry e;
    if (xl_find_domain(ctx, which, &e))
        return -ENOENT;
    int fd = memfd_create("tandem-cpu-policy", MFD_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        tlog_error(&ctx->log, "memfd_create: %s", strerror(err));
        return -err;
    }
    char reply[256];
    int rc = control_command_fd(&ctx->paths, e.domid, "cpu-policy", fd, reply, sizeof(reply), &ctx->log);
    if (!rc) {
        struct stat st;
        char *buf = NULL;
        if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > POLICY_FILE_MAX ||
            !(buf = malloc((size_t)st.st_size)) || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
            tlog_error(&ctx->log, "domain %s sent no CPU policy", e.name);
            rc = -EIO;
        } else {
            char err[256];
            if ((rc = cpu_policy_from_json(buf, (size_t)st.st_size, p, err, sizeof(err))))
                tlog_error(&ctx->log, "domain %s's CPU policy: %s", e.name, err);
        }
        free(buf);
    }
    close(fd);
    return rc;
}

int xl_cmd_cpuid_policy(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("cpuid-policy");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
                                              { "output", required_argument, NULL, 'o' },
                                              { "features", no_argument, NULL, 'f' },
                                              { 0 } };
    const char *out = NULL;
    bool names = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ho:f", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'f': names = true; break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (optind >= argc)
        return xl_usage(cmd, true);
    const char *what = argv[optind++];
    int nargs = argc - optind;
    struct cpu_policy *p = calloc(1, sizeof(*p));
    struct cpu_overrides mask;
    int rc = XL_FAILED;
    if (!p)
        return XL_FAILED;
    if (xl_open_host(ctx))
        goto out;

    if (!strcmp(what, "host")) {
        if (nargs != 0) {
            rc = xl_usage(cmd, true);
            goto out;
        }
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        if (xl_read_host_config(ctx, &mask) || cpu_policy_host(&mask, p, &ctx->log) ||
            print_policy(ctx, p, "host", host, out, names))
            goto out;
    } else if (!strcmp(what, "guest")) {
        if (nargs != 1) {
            rc = xl_usage(cmd, true);
            goto out;
        }
        if (guest_policy(ctx, argv[optind], p) || print_policy(ctx, p, "guest", argv[optind], out, names))
            goto out;
    } else if (!strcmp(what, "level")) {
        if (nargs < 1) {
            rc = xl_usage(cmd, true);
            goto out;
        }
        struct cpu_policy *in = calloc((size_t)nargs, sizeof(*in));
        if (!in)
            goto out;
        int r = 0;
        for (int i = 0; i < nargs && !r; i++)
            r = xl_read_policy_file(ctx, argv[optind + i], &in[i]);
        if (!r)
            r = cpu_policy_level(in, (unsigned)nargs, p);
        free(in);
        if (r || print_policy(ctx, p, "levelled", NULL, out, names))
            goto out;
    } else if (!strcmp(what, "check")) {
        /* Could a guest with this policy run here, or move here? */
        if (nargs != 1 || out || names) {
            rc = xl_usage(cmd, true);
            goto out;
        }
        struct cpu_policy *want = calloc(1, sizeof(*want));
        char msg[2048];
        if (!want || xl_read_policy_file(ctx, argv[optind], want) || xl_read_host_config(ctx, &mask) ||
            cpu_policy_host(&mask, p, &ctx->log)) {
            free(want);
            goto out;
        }
        unsigned missing = cpu_policy_missing(want, p, msg, sizeof(msg));
        free(want);
        if (missing) {
            tlog_error(&ctx->log, "this host cannot give %u feature%s of %s: %s", missing, missing == 1 ? "" : "s",
                       argv[optind], msg);
            goto out;
        }
        printf("%s: this host can give every feature\n", argv[optind]);
    } else {
        tlog_error(&ctx->log, "unknown subcommand '%s' (host, guest, level or check)", what);
        rc = xl_usage(cmd, true);
        goto out;
    }
    rc = XL_OK;
out:
    free(p);
    return rc;
}
