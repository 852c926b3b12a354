/* xl: Tandem's toolstack command, following Xen's xl(1). */
#ifndef TANDEM_XL_H
#define TANDEM_XL_H

#include <stdbool.h>
#include "tandem/xen.h"

/* Exit status, as every Tandem program uses it. */
enum { XL_OK = 0, XL_FAILED = 1, XL_USAGE = 2 };

struct xl_ctx {
    const char *command;       /* the subcommand, for "xl: <command>: ..." */
    struct host_paths paths;
    struct tlog log;           /* prints "xl: <command>: <msg>" on stderr */
    int verbose;
};

struct xl_command {
    const char *name;
    int (*run)(struct xl_ctx *ctx, int argc, char **argv);
    const char *summary;
    const char *usage;         /* after "Usage: xl <name> " */
    const char *help;          /* options, one per line */
};

/* Prints the command's usage; to stdout for --help, stderr on misuse.
 * Returns the exit status to use. */
int xl_usage(const struct xl_command *cmd, bool error);
const struct xl_command *xl_find_command(const char *name);
/* Handles -h/--help for commands that take no other options: returns -1
 * to continue, else the exit status. */
int xl_help_only(struct xl_ctx *ctx, int argc, char **argv, int min_args, int max_args);
/* Prepares the state directory; logs and returns -errno on failure. */
int xl_open_host(struct xl_ctx *ctx);
/* Looks a domain up by name or ID; logs "domain X does not exist". */
int xl_find_domain(struct xl_ctx *ctx, const char *which, struct registry_entry *e);
/* An unsigned option's value: digits only, min <= value <= max, else
 * "xl: <command>: <opt> <arg> : ..." on stderr and -EINVAL (the caller
 * returns XL_USAGE).  opt names the option as the user wrote it ("-i"). */
int xl_parse_uint(struct xl_ctx *ctx, const char *opt, const char *arg, unsigned min, unsigned max,
                  unsigned *out);
/* Waits up to timeout_ms for the domain's process to be gone. */
bool xl_wait_gone(const struct registry_entry *e, int timeout_ms);

int xl_cmd_create(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_list(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_info(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_destroy(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_pause(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_unpause(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_console(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_help(struct xl_ctx *ctx, int argc, char **argv);

/* Reads an xl.cfg (plus key=value overrides) into a domain config. */
int xl_load_config(struct xl_ctx *ctx, const char *file, int n_overrides, char **overrides, bool quiet,
                   struct domain_config *c);
/* The domain xl save or xl migrate sends (running or paused, else a
 * logged error naming `verb`) and its config as JSON: its own, or the one
 * in cfgfile when given. */
int xl_domain_to_send(struct xl_ctx *ctx, const char *which, const char *verb, const char *cfgfile,
                      struct registry_entry *e, char *config_json, size_t len);
/* The xl save-file header with a domain config (JSON), as xl save and xl
 * migrate write it; reading leaves fd at the libxl stream behind it.
 * `what` names the source in messages. */
int xl_write_xl_header(int fd, const char *config_json, const struct tlog *log);
int xl_read_xl_header(int fd, const char *what, struct domain_config *c, const struct tlog *log);
/* fsyncs the directory of path, so the rename that published a file
 * survives a crash as well as the file's bytes do. */
void xl_sync_dir_of(const char *path);
/* Destroys a domain: asks its process, kills it if it will not go. */
int xl_destroy_domain(struct xl_ctx *ctx, const struct registry_entry *e);

/* Starts a domain process for config c: it boots the kernel, or restores
 * from restore_fd when that is >= 0, with restore_options (NULL: none;
 * "compress": accept lz4-compressed pages).  Waits until the domain runs
 * (or is paused) and fills *domid_out and the process's one-line summary. */
int xl_spawn_domain(struct xl_ctx *ctx, const struct domain_config *c, bool paused, int restore_fd,
                    const char *restore_options, unsigned *domid_out, char *summary, size_t summary_len);

int xl_cmd_save(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_restore(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_migrate(struct xl_ctx *ctx, int argc, char **argv);
int xl_cmd_migrate_receive(struct xl_ctx *ctx, int argc, char **argv);
/* xl remus (xl_remus.c), and migrate-receive -r's part once the backup's
 * domain process runs: hands it the back channel (ack_fd, closed here)
 * with "remus-secondary name=<name> <options>" and reports the outcome. */
int xl_cmd_remus(struct xl_ctx *ctx, int argc, char **argv);
int xl_remus_receive(struct xl_ctx *ctx, unsigned domid, const char *name, const char *options, int ack_fd);
/* Appends " key=<value percent-encoded>" to opts (one word of a control
 * line, whatever value holds); -E2BIG if it does not fit in len. */
int xl_remus_append_word(char *opts, size_t len, const char *key, const char *value);
/* Remus's side of the domain processes xl starts (remus/hooks.c). */
extern const struct domproc_remus_hooks remus_domproc_hooks;

/* CPU policies (xl_cpuid.c).  host.cfg in the state directory is the
 * host's own config; its cpuid_mask takes features away from this host. */
struct xlcfg;
int xl_read_host_config(struct xl_ctx *ctx, struct cpu_overrides *mask);
/* A policy JSON file ("-": stdin), errors logged naming the file. */
int xl_read_policy_file(struct xl_ctx *ctx, const char *path, struct cpu_policy *p);
/* xl.cfg's cpuid_policy= and cpuid= as overrides. */
int xl_config_cpuid(struct xl_ctx *ctx, struct xlcfg *cfg, struct cpu_overrides *o);
int xl_cmd_cpuid_policy(struct xl_ctx *ctx, int argc, char **argv);

/* Attaches the terminal to a domain's console until Ctrl-] or its end. */
int xl_console_attach(struct xl_ctx *ctx, unsigned domid);

#endif
