/* Tandem hypervisor core: a domain is one KVM VM owned by one per-domain
 * process.  This header is the layer's public face: domain configuration,
 * the per-domain process, the host-wide registry and the control socket
 * through which tools talk to a domain process. */
#ifndef TANDEM_XEN_H
#define TANDEM_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tandem/log.h"

#define DOMAIN_NAME_MAX 64
#define DOMID_MAX 0x7FEF                 /* Xen's DOMID_FIRST_RESERVED - 1 */
#define DOMAIN_MAX_VCPUS 64
#define DOMAIN_MAX_MEMORY_MB (64 * 1024)

/* What to do when the guest powers off, reboots or crashes (xl.cfg's
 * on_poweroff / on_reboot / on_crash). */
enum domain_action {
    DOMAIN_ACTION_DESTROY,
    DOMAIN_ACTION_RESTART,
    DOMAIN_ACTION_PRESERVE,
};
const char *domain_action_name(enum domain_action a);
int domain_action_parse(const char *s, enum domain_action *out);

struct domain_config {
    char name[DOMAIN_NAME_MAX];
    uint64_t memory_mb;
    unsigned vcpus;
    char kernel[4096];
    char cmdline[2048];
    enum domain_action on_poweroff, on_reboot, on_crash;
};
void domain_config_init(struct domain_config *c);      /* Xen's defaults */
int domain_config_check(const struct domain_config *c, const struct tlog *log);
bool domain_name_valid(const char *name);

/* Where a host keeps its state: $TANDEM_STATE_DIR, default /var/lib/tandem.
 * Layout: domains/<domid>.json (registry), run/dom<domid>.sock (control
 * sockets), console/<name>.log, log/xl-<name>.log. */
struct host_paths {
    char state_dir[512];
};
int host_paths_init(struct host_paths *p, const char *state_dir, const struct tlog *log);
void host_paths_domain_socket(const struct host_paths *p, unsigned domid, char *buf, size_t len);
void host_paths_console_log(const struct host_paths *p, const char *name, char *buf, size_t len);
void host_paths_domain_log(const struct host_paths *p, const char *name, char *buf, size_t len);

/* ---- Registry ---------------------------------------------------------
 * One JSON file per domain, written atomically by its domain process.
 * A record whose process is gone (pid dead, or reused: the start time
 * differs) is stale and is reaped by the next registry scan, so the
 * registry survives a crashed xl or a killed domain process. */
enum domain_state {
    DOMAIN_STATE_CREATING,
    DOMAIN_STATE_RUNNING,
    DOMAIN_STATE_PAUSED,
    DOMAIN_STATE_SHUTDOWN,   /* powered off, preserved */
    DOMAIN_STATE_CRASHED,    /* crashed, preserved */
    DOMAIN_STATE_DYING,
};
const char *domain_state_name(enum domain_state s);
int domain_state_parse(const char *s, enum domain_state *out);

struct registry_entry {
    unsigned domid;
    char name[DOMAIN_NAME_MAX];
    pid_t pid;
    unsigned long long pid_start;        /* /proc/<pid>/stat start time */
    enum domain_state state;
    uint64_t memory_mb;
    unsigned vcpus;
    long long created;                   /* unix time */
    char reason[256];                    /* why it shut down or crashed */
    char config_json[8192];              /* the domain_config, as JSON */
};

/* Reserve a fresh domid and the name, atomically for the whole host; the
 * record starts in state CREATING owned by `pid`. -EEXIST if the name is
 * taken by a live domain. */
int registry_reserve(const struct host_paths *p, const struct domain_config *c,
                     pid_t pid, unsigned *domid_out, const struct tlog *log);
int registry_write(const struct host_paths *p, const struct registry_entry *e,
                   const struct tlog *log);
int registry_remove(const struct host_paths *p, unsigned domid);
/* Live entries sorted by domid; stale ones are reaped on the way. The
 * caller frees *out. */
int registry_list(const struct host_paths *p, struct registry_entry **out,
                  size_t *n, const struct tlog *log);
/* Find by name or by numeric domid, as xl accepts either. -ENOENT. */
int registry_find(const struct host_paths *p, const char *name_or_id,
                  struct registry_entry *out, const struct tlog *log);
int process_start_time(pid_t pid, unsigned long long *out);
bool registry_entry_alive(const struct registry_entry *e);

int domain_config_to_json(const struct domain_config *c, char *buf, size_t len);
int domain_config_from_json(const char *json, struct domain_config *c, const struct tlog *log);

/* ---- The per-domain process -------------------------------------------- */
struct domproc_args {
    struct host_paths paths;
    struct domain_config config;
    unsigned domid;
    bool start_paused;
    int ready_fd;            /* gets "ok\n" or "error <text>\n", then closed */
    const struct tlog *log;  /* the domain's log file */
};
/* Builds the domain, serves its control socket until it is destroyed.
 * Returns the process exit status. */
int domproc_main(struct domproc_args *a);

/* ---- Control socket client ---------------------------------------------
 * Line protocol: a command, then "ok [detail]" or "error <errno> <text>". */
int control_connect(const struct host_paths *p, unsigned domid, const struct tlog *log);
int control_command(const struct host_paths *p, unsigned domid, const char *cmd,
                    char *reply, size_t reply_len, const struct tlog *log);

/* ---- Host facts (xl info) --------------------------------------------- */
struct kvm_host_info {
    int api_version;
    int max_vcpus, nr_vcpus_recommended;
    int nr_memslots;
    int dirty_ring_max_bytes;        /* KVM_CAP_DIRTY_LOG_RING, 0 = none */
    bool dirty_ring_acq_rel;
    bool manual_dirty_protect;
    bool irqchip, pit2, tsc_control, immediate_exit, xsave, xcrs;
    unsigned tsc_khz;
};
int kvm_host_query(struct kvm_host_info *info, const struct tlog *log);

#endif
