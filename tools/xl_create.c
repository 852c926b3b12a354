/* xl create: parse an xl.cfg, reserve a domid, start the domain process. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tandem/migration.h"
#include "xl.h"
#include "xlcfg.h"

#define CREATE_TIMEOUT_MS 60000

/* The bundled test guest; $TANDEM_GUEST_KERNEL overrides it, which is how
 * tests run from a build tree that was not installed. */
static const char *default_kernel(void)
{
    const char *env = getenv("TANDEM_GUEST_KERNEL");
    return env && env[0] ? env : TANDEM_GUEST_PATH;
}

static int get_action(struct xlcfg *cfg, const char *key, enum domain_action *out, const struct tlog *log)
{
    const char *s;
    int rc = xlcfg_get_string(cfg, key, &s, log);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (domain_action_parse(s, out) == 0)
        return 0;
    if (!strcmp(s, "rename-restart") || !strcmp(s, "coredump-destroy") || !strcmp(s, "coredump-restart") ||
        !strcmp(s, "soft-reset"))
        tlog_error(log, "%s=\"%s\" is a Xen action Tandem does not support (use destroy, restart or preserve)",
                   key, s);
    else
        tlog_error(log, "%s=\"%s\" is not an action (destroy, restart or preserve)", key, s);
    return -EINVAL;
}

static int copy_string(struct xlcfg *cfg, const char *key, char *dst, size_t len, const struct tlog *log)
{
    const char *s;
    int rc = xlcfg_get_string(cfg, key, &s, log);
    if (rc)
        return rc;
    if (strlen(s) >= len) {
        tlog_error(log, "%s is longer than %zu characters", key, len - 1);
        return -E2BIG;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

struct unused_ctx {
    const struct tlog *log;
};

static void warn_unused(void *opaque, const char *key, const char *file, unsigned line)
{
    struct unused_ctx *u = opaque;
    tlog_warn(u->log, "%s:%u: unknown key '%s' ignored", file, line, key);
}

/* Maps a parsed xl.cfg onto a domain config; warns about unknown keys. */
static int config_from_xlcfg(struct xl_ctx *ctx, struct xlcfg *cfg, struct domain_config *c)
{
    const struct tlog *log = &ctx->log;
    long long n;
    int rc;
    const char *s;

    domain_config_init(c);
    rc = copy_string(cfg, "name", c->name, sizeof(c->name), log);
    if (rc == -ENOENT) {
        tlog_error(log, "the config has no 'name'");
        return -EINVAL;
    }
    if (rc)
        return rc;
    /* Tandem runs every guest the PVH way; say so if asked for another. */
    rc = xlcfg_get_string(cfg, "type", &s, log);
    if (rc == 0 && strcmp(s, "pvh") != 0) {
        tlog_error(log, "type=\"%s\": Tandem runs PVH guests only (type=\"pvh\")", s);
        return -EINVAL;
    }
    if (rc && rc != -ENOENT)
        return rc;
    rc = xlcfg_get_number(cfg, "memory", 2, DOMAIN_MAX_MEMORY_MB, &n, log);
    if (rc == 0)
        c->memory_mb = (uint64_t)n;
    else if (rc != -ENOENT)
        return rc;
    rc = xlcfg_get_number(cfg, "vcpus", 1, DOMAIN_MAX_VCPUS, &n, log);
    if (rc == 0)
        c->vcpus = (unsigned)n;
    else if (rc != -ENOENT)
        return rc;
    rc = copy_string(cfg, "kernel", c->kernel, sizeof(c->kernel), log);
    if (rc == -ENOENT)
        snprintf(c->kernel, sizeof(c->kernel), "%s", default_kernel());
    else if (rc)
        return rc;
    /* cmdline, or Xen's older "extra" where cmdline is absent. */
    rc = copy_string(cfg, "cmdline", c->cmdline, sizeof(c->cmdline), log);
    if (rc == -ENOENT)
        rc = copy_string(cfg, "extra", c->cmdline, sizeof(c->cmdline), log);
    else if (rc == 0 && xlcfg_get_string(cfg, "extra", &s, log) == 0)
        tlog_warn(log, "'extra' is ignored because 'cmdline' is set (as in Xen)");
    if (rc && rc != -ENOENT)
        return rc;
    if ((rc = get_action(cfg, "on_poweroff", &c->on_poweroff, log)) ||
        (rc = get_action(cfg, "on_reboot", &c->on_reboot, log)) ||
        (rc = get_action(cfg, "on_crash", &c->on_crash, log)))
        return rc;

    rc = xlcfg_get_string(cfg, "log_dirty", &s, log);
    if (rc == 0 && domain_logdirty_mode_parse(s, &c->log_dirty)) {
        tlog_error(log, "log_dirty=\"%s\" is not \"auto\", \"ring\" or \"bitmap\"", s);
        return -EINVAL;
    }
    if (rc && rc != -ENOENT)
        return rc;
    rc = xlcfg_get_number(cfg, "log_dirty_ring", DOMAIN_DIRTY_RING_MIN, DOMAIN_DIRTY_RING_MAX, &n, log);
    if (rc == 0)
        c->log_dirty_ring = (unsigned)n;   /* a power of two: domain_config_check */
    else if (rc != -ENOENT)
        return rc;
    if ((rc = xl_config_cpuid(ctx, cfg, &c->cpuid)))
        return rc;
    /* vif= and disk= in Xen's syntax; MACs not given are assigned when
     * the domain is created (xl_spawn_domain), not here, so a config file
     * read again for xl save or migrate -C does not invent new ones. */
    if ((rc = xlcfg_get_vifs(cfg, c, log)) || (rc = xlcfg_get_disks(cfg, c, log)))
        return rc;

    struct unused_ctx u = { log };
    xlcfg_for_each_unused(cfg, warn_unused, &u);
    return domain_config_check(c, log);
}

int xl_load_config(struct xl_ctx *ctx, const char *file, int n_overrides, char **overrides, bool quiet,
                   struct domain_config *c)
{
    struct xlcfg *cfg;
    if (!quiet)
        fprintf(stderr, "Parsing config from %s\n", file);
    int rc = xlcfg_parse_file(file, &ctx->log, &cfg);
    if (rc)
        return rc;
    for (int i = 0; i < n_overrides && !rc; i++)
        rc = xlcfg_apply_override(cfg, overrides[i], &ctx->log);
    if (!rc)
        rc = config_from_xlcfg(ctx, cfg, c);
    xlcfg_free(cfg);
    return rc;
}

/* A logger writing timestamped lines to the domain's log file. */
static void file_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    static const char *const names[] = { "debug", "info", "warning", "error" };
    FILE *f = opaque;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    fprintf(f, "%04d-%02d-%02d %02d:%02d:%02d.%03ld [%s] %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level], msg);
    fflush(f);
}

/* In the grandchild: become the domain process. Never returns. */
static void become_domain_process(struct xl_ctx *ctx, const struct domain_config *c,
                                  const struct cpu_overrides *host_mask, unsigned domid,
                                  bool paused, int ready_fd, int restore_fd, const char *restore_options)
{
    /* migrate-receive restores from its stdin: keep that stream out of
     * the way of the redirections below. */
    if (restore_fd >= 0 && restore_fd <= STDERR_FILENO)
        restore_fd = fcntl(restore_fd, F_DUPFD_CLOEXEC, 3);
    char path[600];
    host_paths_domain_log(&ctx->paths, c->name, path, sizeof(path));
    int logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nullfd = open("/dev/null", O_RDWR);
    if (nullfd >= 0) {
        dup2(nullfd, STDIN_FILENO);
        dup2(nullfd, STDOUT_FILENO);
        dup2(logfd >= 0 ? logfd : nullfd, STDERR_FILENO);
    }
    /* Nothing of xl's may stay open: a pipe held here would keep a shell
     * that captures xl's output waiting forever. */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != ready_fd && fd != logfd && fd != restore_fd)
            close(fd);
    FILE *logf = logfd >= 0 ? fdopen(logfd, "a") : stderr;
    struct tlog log = { .fn = file_log_fn, .opaque = logf, .min_level = TLOG_INFO };
    struct domproc_args a = {
        .paths = ctx->paths, .config = *c, .domid = domid, .start_paused = paused,
        .ready_fd = ready_fd, .restore_fd = restore_fd, .restore_options = restore_options,
        .hooks = &migration_domproc_hooks, .remus_hooks = &remus_domproc_hooks, .log = &log,
        .host_mask = *host_mask,
    };
    _exit(domproc_main(&a));
}

/* Reads the domain process's one-line answer. */
/* A restore takes as long as its stream does (a live migration over a
 * slow link takes minutes): it has no time limit; the domain process
 * reports, or dies and the pipe closes. */
static int wait_ready(int fd, char *line, size_t len, bool limited)
{
    size_t n = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n + 1 < len) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = CREATE_TIMEOUT_MS - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (!limited)
            left = -1;
        else if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr < 0 ? -errno : -ETIMEDOUT;
        ssize_t r = read(fd, line + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += r;
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = '\0';
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    return n ? 0 : -ECONNRESET;
}

/* The domain as it will be built: every vif with a MAC.  A config from a
 * save file or a migration stream keeps the MACs it has; only those never
 * assigned (a new config file) are generated, once, here. */
static int config_with_macs(struct xl_ctx *ctx, const struct domain_config *c, struct domain_config **out)
{
    *out = malloc(sizeof(**out));
    if (!*out) {
        tlog_error(&ctx->log, "out of memory");
        return -ENOMEM;
    }
    **out = *c;
    int rc = xlcfg_assign_macs(*out, &ctx->log);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int spawn_domain(struct xl_ctx *ctx, const struct domain_config *c, bool paused, int restore_fd,
                        const char *restore_options, unsigned *domid_out, char *summary, size_t summary_len);

int xl_spawn_domain(struct xl_ctx *ctx, const struct domain_config *c, bool paused, int restore_fd,
                    const char *restore_options, unsigned *domid_out, char *summary, size_t summary_len)
{
    struct domain_config *built;
    int rc = config_with_macs(ctx, c, &built);
    if (rc)
        return rc;
    rc = spawn_domain(ctx, built, paused, restore_fd, restore_options, domid_out, summary, summary_len);
    free(built);
    return rc;
}

static int spawn_domain(struct xl_ctx *ctx, const struct domain_config *c, bool paused, int restore_fd,
                        const char *restore_options, unsigned *domid_out, char *summary, size_t summary_len)
{
    unsigned domid;
    /* The host's own config first: a wrong host.cfg leaves nothing behind. */
    struct cpu_overrides host_mask;
    int rc = xl_read_host_config(ctx, &host_mask);
    if (rc)
        return rc;
    rc = registry_reserve(&ctx->paths, c, getpid(), &domid, &ctx->log);
    if (rc)
        return rc;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        rc = -errno;
        registry_remove(&ctx->paths, domid);
        return rc;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        rc = -errno;
        tlog_error(&ctx->log, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        registry_remove(&ctx->paths, domid);
        return rc;
    }
    if (child == 0) {
        /* Detach twice, as a daemon does: new session, then a grandchild
         * that init adopts, so it outlives xl and never becomes a zombie. */
        close(pfd[0]);
        setsid();
        pid_t g = fork();
        if (g != 0)
            _exit(g < 0 ? 1 : 0);
        become_domain_process(ctx, c, &host_mask, domid, paused, pfd[1], restore_fd, restore_options);
    }
    close(pfd[1]);
    waitpid(child, NULL, 0);
    char line[512];
    rc = wait_ready(pfd[0], line, sizeof(line), restore_fd < 0);
    close(pfd[0]);
    if (rc == 0 && strncmp(line, "ok", 2) == 0) {
        *domid_out = domid;
        const char *rest = strchr(line + 2, ' ');
        rest = rest ? strchr(rest + 1, ' ') : NULL; /* past "ok <domid>" */
        if (summary)
            snprintf(summary, summary_len, "%s", rest ? rest + 1 : "");
        return 0;
    }
    if (rc == 0 && strncmp(line, "error ", 6) == 0) {
        tlog_error(&ctx->log, "%s", line + 6);
        rc = -EIO;
    } else {
        char logpath[600];
        host_paths_domain_log(&ctx->paths, c->name, logpath, sizeof(logpath));
        tlog_error(&ctx->log, "the domain process %s (see %s)",
                   rc == -ETIMEDOUT ? "did not report within 60 s" : "died while building the domain", logpath);
        if (rc == 0)
            rc = -EIO;
    }
    /* If the process died before owning its record, the record is still
     * ours: remove it so no half-built domain stays listed. */
    struct registry_entry e;
    if (registry_find(&ctx->paths, c->name, &e, NULL) == 0 && e.domid == domid) {
        if (e.pid == getpid() || !registry_entry_alive(&e))
            registry_remove(&ctx->paths, domid);
        else if (rc == -ETIMEDOUT) {
            kill(e.pid, SIGKILL);
            xl_wait_gone(&e, 5000);
            registry_remove(&ctx->paths, domid);
        }
    }
    return rc;
}

/* What the domain process would find missing, said before anything is
 * built: a disk's image that is not there or not readable (writable for
 * access=rw), a bridge this host (network namespace) does not have. */
static int check_devices_on_host(struct xl_ctx *ctx, const struct domain_config *c)
{
    for (unsigned i = 0; i < c->nr_disks; i++) {
        const struct domain_disk *d = &c->disks[i];
        struct stat st;
        int err = 0;
        if (stat(d->target, &st) < 0)
            err = errno;
        else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
            err = EINVAL;
        else if (access(d->target, d->readonly ? R_OK : R_OK | W_OK) < 0)
            err = errno;
        if (err == EINVAL)
            tlog_error(&ctx->log, "disk %u (%s): %s is neither a regular file nor a block device", i, d->vdev,
                       d->target);
        else if (err)
            tlog_error(&ctx->log, "disk %u (%s): %s: %s%s", i, d->vdev, d->target, strerror(err),
                       err == ENOENT && !strncmp(d->target, "/dev/", 5)
                           ? " (a target that does not start with '/' names a file under /dev, as in Xen)" : "");
        if (err)
            return -err;
    }
    for (unsigned i = 0; i < c->nr_vifs; i++) {
        const char *br = c->vifs[i].bridge;
        if (br[0] && if_nametoindex(br) == 0) {
            tlog_error(&ctx->log, "vif %u: bridge %s: %s", i, br,
                       errno == ENODEV || errno == ENXIO ? "this host has no such interface" : strerror(errno));
            return -ENODEV;
        }
    }
    return 0;
}

int xl_cmd_create(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("create");
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    bool paused = false, console = false, quiet = false, dry_run = false;
    const char *file = NULL;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+hpcqnf:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': paused = true; break;
        case 'c': console = true; break;
        case 'q': quiet = true; break;
        case 'n': dry_run = true; break;
        case 'f': file = optarg; break;
        case 'h': return xl_usage(cmd, false);
        default: return xl_usage(cmd, true);
        }
    }
    if (!file) {
        if (optind >= argc || strchr(argv[optind], '='))
            return xl_usage(cmd, true);
        file = argv[optind++];
    }

    for (int i = optind; i < argc; i++) {
        if (!strchr(argv[i], '=')) {
            tlog_error(&ctx->log, "'%s' is not a key=value setting", argv[i]);
            return XL_USAGE;
        }
    }
    struct domain_config c;
    if (xl_load_config(ctx, file, argc - optind, argv + optind, quiet, &c))
        return XL_FAILED;
    if (access(c.kernel, R_OK) != 0) {
        tlog_error(&ctx->log, "kernel %s: %s", c.kernel, strerror(errno));
        return XL_FAILED;
    }
    if (check_devices_on_host(ctx, &c))
        return XL_FAILED;
    if (dry_run) {
        /* As the registry would keep it; MACs not given are not assigned
         * yet (each real create assigns its own). */
        struct registry_entry *e = malloc(sizeof(*e));
        int rc = e ? domain_config_to_json(&c, e->config_json, sizeof(e->config_json)) : -ENOMEM;
        if (rc == 0)
            printf("%s\n", e->config_json);
        else
            tlog_error(&ctx->log, "cannot write the config as JSON: %s", strerror(-rc));
        free(e);
        return rc ? XL_FAILED : XL_OK;
    }
    if (xl_open_host(ctx))
        return XL_FAILED;
    unsigned domid = 0;
    char summary[512] = "";
    if (xl_spawn_domain(ctx, &c, paused, -1, NULL, &domid, summary, sizeof(summary)))
        return XL_FAILED;
    if (!strncmp(summary, "cpuid_forced=", 13))
        tlog_warn(&ctx->log, "this host's KVM shows the guest CPU features its cpuid settings take away "
                  "(migrations check what the guest really sees): %s", summary + 13);
    if (ctx->verbose)
        fprintf(stderr, "xl: create: domain %s created with ID %u\n", c.name, domid);
    if (console)
        return xl_console_attach(ctx, domid) ? XL_FAILED : XL_OK;
    return XL_OK;
}
