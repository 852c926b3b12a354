/* xl: command dispatch and what every subcommand shares. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "xl.h"

static const struct xl_command commands[] = {
    { "create", xl_cmd_create, "Create a domain from a config file",
      "[options] <ConfigFile> [key=value ...]",
      "  -p             leave the domain paused after it is created\n"
      "  -c             attach to the domain's console after creation\n"
      "  -q             quiet: print no progress messages\n"
      "  -f FILE        use FILE as the config file\n"
      "  -n             dry run: parse and check the config, print it, create nothing\n"
      "  key=value      extra config lines, applied after the file\n" },
    { "list", xl_cmd_list, "List information about all or some domains",
      "[options] [Domain ...]",
      "  -l, --long     print the domains' full records as JSON\n" },
    { "destroy", xl_cmd_destroy, "Terminate a domain immediately", "<Domain>", "" },
    { "pause", xl_cmd_pause, "Pause execution of a domain", "<Domain>", "" },
    { "unpause", xl_cmd_unpause, "Unpause a paused domain", "<Domain>", "" },
    { "console", xl_cmd_console, "Attach to a domain's console",
      "[options] <Domain>",
      "  -t TYPE        console type; only 'serial' exists\n"
      "Detach with Ctrl-].\n" },
    { "save", xl_cmd_save, "Save a domain's state to a file, to restore later",
      "[options] <Domain> <CheckpointFile> [<ConfigFile>]",
      "  -c             leave the domain running after the save\n"
      "  -p             leave the domain paused after the save\n"
      "Without -c or -p the domain is destroyed once its image is safely on disk.\n"
      "<ConfigFile> replaces the domain's config stored in the image.\n" },
    { "restore", xl_cmd_restore, "Restore a domain from a saved state",
      "[options] [<ConfigFile>] <CheckpointFile>",
      "  -p             leave the domain paused after the restore\n"
      "  -e             do not wait in the background for the domain's death (accepted for xl compatibility)\n"
      "<ConfigFile> replaces the config stored in the image.\n" },
    { "migrate", xl_cmd_migrate, "Migrate a domain to another host, live",
      "[options] <Domain> <host>",
      "  -s SSHCOMMAND      use SSHCOMMAND instead of ssh; with \"\" run '<host> xl migrate-receive'\n"
      "                     directly (<host> is then a command prefix, e.g. 'ip netns exec B')\n"
      "  -C CONFIG          send this config instead of the domain's own\n"
      "  -e                 accepted for xl compatibility\n"
      "  -p                 leave the domain paused on the destination\n"
      "  --debug            print every precopy round\n"
      "  --max-downtime MS  downtime target for the stop-and-copy (default 30)\n"
      "  --max-iters N      precopy rounds at most (default 30)\n"
      "  --bandwidth MBPS   limit the send rate to MBPS megabytes per second\n"
      "  --logdirty MODE    ring or bitmap: insist on this dirty-page log\n"
      "  --json             print the result as one JSON object on stdout\n"
      "  --stream-version N send libxc image version N (2 or 3) instead of the highest\n"
      "                     version the receiver says it reads (see --negotiate below)\n"
      "  --compress         send page data lz4-compressed where that is smaller; the\n"
      "                     receiver must be Tandem's (it is run with -z), and the\n"
      "                     stream is no longer one Xen's tools can read\n" },
    { "migrate-receive", xl_cmd_migrate_receive, "Receive a migrating domain (run by xl migrate and xl remus)",
      "[-d] [-e] [-p] [-z] [--negotiate] | -r [-e] [-u] [--interval MS] [--timeout MS] [--witness ADDR:PORT]\n"
      "       [--fence CMD [--fence-timeout S] [--primary HOST]]",
      "  -p             leave the domain paused once received\n"
      "  -z             accept lz4-compressed page data (xl migrate --compress)\n"
      "  --negotiate    after Xen's banner, say this release and the stream versions\n"
      "                 it reads (xl migrate asks for it)\n"
      "  -r             be a Remus backup: keep the domain paused as <name>--incoming,\n"
      "                 apply checkpoints until the stream ends; take over when the\n"
      "                 primary is gone, destroy the replica when it stops protection\n"
      "  -u             (with -r) the primary sends no compressed pages (xl remus -u)\n"
      "  --interval MS  (with -r) the primary's checkpoint interval (default 200)\n"
      "  --timeout MS   (with -r) declare the primary dead after MS without a\n"
      "                 checkpoint (default 3 x interval, at least 1000); until the\n"
      "                 first checkpoint, wait up to max(60 s, MS) between records\n"
      "  --witness ADDR:PORT  (with -r) before taking over, ask the primary's domain\n"
      "                 process there (UDP) whether it still runs; it does: no takeover\n"
      "                 ([ADDR]:PORT for IPv6, HOST:PORT resolved at the start)\n"
      "  --fence CMD    (with -r) if the witness is silent (or there is none), run\n"
      "                 'sh -c CMD' here before taking over; only its exit status 0\n"
      "                 (the primary is off) lets the takeover go ahead\n"
      "  --fence-timeout S  (with -r) kill the fence command after S seconds (default 30):\n"
      "                 no takeover\n"
      "  --primary HOST (with -r) the primary's host, for the fence command's\n"
      "                 TANDEM_PRIMARY when there is no witness (xl remus sends it)\n"
      "Reads the stream on standard input and answers on standard output.\n" },
    { "remus", xl_cmd_remus, "Enable Remus HA for a domain: a backup on another host, checkpointed",
      "[options] <Domain> [<host>]",
      "  -i MS              checkpoint every MS milliseconds (default 200)\n"
      "  -u                 no checkpoint compression\n"
      "  -s SSHCOMMAND      use SSHCOMMAND instead of ssh; with \"\" run '<host> xl migrate-receive -r'\n"
      "                     directly (<host> is then a command prefix, e.g. 'ip netns exec B')\n"
      "  -e                 passed to the receiver (accepted for xl compatibility)\n"
      "  -C CONFIG          the backup's config (e.g. its own disk paths) instead of the domain's\n"
      "  --witness ADDR:PORT  the primary's domain process answers UDP probes on ADDR:PORT;\n"
      "                     the backup takes over only if they go unanswered (split-brain guard);\n"
      "                     [ADDR]:PORT for IPv6, or HOST:PORT\n"
      "  --fence CMD        before taking over (the witness silent, or none), the backup runs\n"
      "                     'sh -c CMD' on its host with TANDEM_DOMAIN and TANDEM_PRIMARY set;\n"
      "                     CMD must power the primary off and exit 0 only once it is off:\n"
      "                     any other end (or the timeout) means NO takeover\n"
      "  --fence-timeout S  the fence command's time limit in seconds (default 30)\n"
      "  --netbuf vmm|plug  hold the guest's output in Tandem's virtio-net backend (vmm, the\n"
      "                     default) or in the kernel's plug qdisc on an ifb, as Xen does (plug)\n"
      "  --timeout MS       the backup (or the primary, waiting for acks) is lost after MS\n"
      "  --max-downtime MS  the initial live migration's downtime target (default 30)\n"
      "  --debug            print every epoch (on a terminal they replace each other)\n"
      "  -F                 unsafe mode; allows:\n"
      "  -b                 (with -F) checkpoints to /dev/null; <host> is not needed\n"
      "  -n                 (with -F) no network output buffering\n"
      "  -d                 (with -F) no disk replication\n"
      "  -N SCRIPT          accepted for xl compatibility, ignored (no script is needed)\n"
      "Runs until Ctrl-C (protection stops cleanly, exit 0) or until the backup is lost\n"
      "(the domain runs on unprotected, exit 1).\n" },
    { "cpuid-policy", xl_cmd_cpuid_policy, "Print, level or check CPU policies",
      "[options] host | guest <Domain> | level <policy.json> ... | check <policy.json>",
      "  host           this host's policy: what KVM gives, less host.cfg's cpuid_mask\n"
      "  guest DOMAIN   the policy the domain's vCPUs have\n"
      "  level A B ...  the features every one of the policy files has: name the\n"
      "                 result in xl.cfg's cpuid_policy= to let a guest move among them\n"
      "  check FILE     fail, naming them, if this host lacks features of FILE\n"
      "  -o, --output FILE  write to FILE (atomically) instead of standard output\n"
      "  -f, --features     print the named features only, not the JSON policy\n" },
    { "info", xl_cmd_info, "Get information about the host", "", "" },
    { "help", xl_cmd_help, "Print this help", "[command]", "" },
};
#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct xl_command *xl_find_command(const char *name)
{
    for (size_t i = 0; i < NR_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int xl_usage(const struct xl_command *cmd, bool error)
{
    FILE *f = error ? stderr : stdout;
    fprintf(f, "Usage: xl [-v] %s %s\n\n%s.\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->help[0])
        fprintf(f, "\nOptions:\n%s", cmd->help);
    return error ? XL_USAGE : XL_OK;
}

static void print_general_help(FILE *f)
{
    fprintf(f, "Usage: xl [-v] [-h] <subcommand> [args]\n\n"
               "Tandem %s: live migration and high availability for virtual machines on KVM.\n\n"
               "xl full list of subcommands:\n\n", PACKAGE_VERSION);
    for (size_t i = 0; i < NR_COMMANDS; i++)
        fprintf(f, " %-20s%s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nEach subcommand takes --help. The state directory is $TANDEM_STATE_DIR "
               "(default /var/lib/tandem).\n");
}

int xl_cmd_help(struct xl_ctx *ctx, int argc, char **argv)
{
    if (argc > 1) {
        const struct xl_command *c = xl_find_command(argv[1]);
        if (!c) {
            tlog_error(&ctx->log, "unknown command '%s'", argv[1]);
            return XL_USAGE;
        }
        return xl_usage(c, false);
    }
    print_general_help(stdout);
    return XL_OK;
}

int xl_help_only(struct xl_ctx *ctx, int argc, char **argv, int min_args, int max_args)
{
    const struct xl_command *cmd = xl_find_command(ctx->command);
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return xl_usage(cmd, false);
        return xl_usage(cmd, true);
    }
    int n = argc - optind;
    if (n < min_args || n > max_args)
        return xl_usage(cmd, true);
    return -1;
}

static void xl_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct xl_ctx *ctx = opaque;
    const char *kind = level >= TLOG_ERROR ? "" : level == TLOG_WARN ? "warning: " : "";
    fprintf(stderr, "xl: %s: %s%s\n", ctx->command, kind, msg);
}

int xl_open_host(struct xl_ctx *ctx)
{
    return host_paths_init(&ctx->paths, getenv("TANDEM_STATE_DIR"), &ctx->log);
}

int xl_find_domain(struct xl_ctx *ctx, const char *which, struct registry_entry *e)
{
    int rc = registry_find(&ctx->paths, which, e, &ctx->log);
    if (rc == -ENOENT)
        tlog_error(&ctx->log, "domain '%s' does not exist", which);
    return rc;
}

int xl_parse_uint(struct xl_ctx *ctx, const char *opt, const char *arg, unsigned min, unsigned max,
                  unsigned *out)
{
    /* strtoul alone takes " 5", "+5", "-5" (as a huge number) and "5x". */
    const char *p = arg;
    while (*p >= '0' && *p <= '9')
        p++;
    errno = 0;
    unsigned long v = p != arg && !*p ? strtoul(arg, NULL, 10) : 0;
    if (p == arg || *p || errno == ERANGE || v < min || v > max) {
        tlog_error(&ctx->log, "%s %s : must be a whole number from %u to %u", opt, arg, min, max);
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

bool xl_wait_gone(const struct registry_entry *e, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (!registry_entry_alive(e))
            return true;
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
    return false;
}

int main(int argc, char **argv)
{
    struct xl_ctx ctx = { .command = "xl" };
    ctx.log = (struct tlog){ .fn = xl_log_fn, .opaque = &ctx, .min_level = TLOG_WARN };
    int i = 1;

    signal(SIGPIPE, SIG_IGN);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            ctx.verbose++;
            ctx.log.min_level = TLOG_INFO;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_general_help(stdout);
            return XL_OK;
        } else {
            fprintf(stderr, "xl: unknown option '%s'\n", argv[i]);
            print_general_help(stderr);
            return XL_USAGE;
        }
    }
    if (i >= argc) {
        print_general_help(stderr);
        return XL_USAGE;
    }
    const struct xl_command *cmd = xl_find_command(argv[i]);
    if (!cmd) {
        fprintf(stderr, "xl: unknown command '%s'\n", argv[i]);
        print_general_help(stderr);
        return XL_USAGE;
    }
    ctx.command = cmd->name;
    return cmd->run(&ctx, argc - i, argv + i);
}
