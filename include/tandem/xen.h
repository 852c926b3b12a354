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

/* How a domain tracks the pages its guest writes (see xen/logdirty.c):
 * KVM's per-vCPU dirty ring (PML-style), or the dirty bitmap. */
enum domain_logdirty_mode {
    DOMAIN_LOGDIRTY_AUTO,      /* the ring where KVM has it */
    DOMAIN_LOGDIRTY_RING,
    DOMAIN_LOGDIRTY_BITMAP,
};
const char *domain_logdirty_mode_name(enum domain_logdirty_mode m);
int domain_logdirty_mode_parse(const char *s, enum domain_logdirty_mode *out);

/* Bits of one CPUID register (reg 0-3 = EAX-EDX) or feature MSR a CPU
 * policy is forced to: set wins over the policy's value, clear removes
 * (see "CPU policies" below). */
#define CPU_OVERRIDES_MAX 64
#define CPU_MSR_OVERRIDES_MAX 8
struct cpu_override { uint32_t leaf, subleaf, reg, set, clear; };
struct cpu_msr_override { uint32_t index; uint64_t set, clear; };
struct cpu_overrides {
    unsigned n, n_msr;
    struct cpu_override cpuid[CPU_OVERRIDES_MAX];
    struct cpu_msr_override msr[CPU_MSR_OVERRIDES_MAX];
};

/* Guest devices (virtio-mmio; xen/virtio*.c).  xl.cfg's vif= and disk=
 * lists in Xen's syntax fill these; the MAC of a vif without mac= is
 * generated once, when the domain is created (Xen's 00:16:3e prefix), and
 * is kept in the config so it moves with the guest. */
#define DOMAIN_MAX_VIFS 4
#define DOMAIN_MAX_DISKS 4
#define DOMAIN_IFNAME_MAX 16                /* IFNAMSIZ */
#define DOMAIN_DISK_PATH_MAX 1024
#define DOMAIN_VDEV_MAX 16

struct domain_vif {
    uint8_t mac[6];
    char bridge[DOMAIN_IFNAME_MAX];      /* "" = the tap stays unattached */
    char ifname[DOMAIN_IFNAME_MAX];      /* vifname=; "" = vif<domid>.<devid> */
};

struct domain_disk {
    char target[DOMAIN_DISK_PATH_MAX];   /* a raw image file */
    char vdev[DOMAIN_VDEV_MAX];          /* xvda, hda, sda, vda ... */
    bool readonly;                       /* access=ro */
};

/* The dirty ring's size per vCPU, in entries (xl.cfg log_dirty_ring): a
 * power of two.  Below 1024 entries KVM's reserve (64, plus Intel's
 * 512-entry PML buffer) leaves too little to log into; 65536 is KVM's
 * largest (1 MiB per vCPU). */
#define DOMAIN_DIRTY_RING_MIN 1024
#define DOMAIN_DIRTY_RING_DEFAULT 4096   /* 64 KiB per vCPU; QEMU's usual size */
#define DOMAIN_DIRTY_RING_MAX 65536

struct domain_config {
    char name[DOMAIN_NAME_MAX];
    uint64_t memory_mb;
    unsigned vcpus;
    char kernel[4096];
    char cmdline[2048];
    enum domain_action on_poweroff, on_reboot, on_crash;
    enum domain_logdirty_mode log_dirty;
    unsigned log_dirty_ring;             /* entries per vCPU ring; 0 = DOMAIN_DIRTY_RING_DEFAULT */
    struct cpu_overrides cpuid;          /* cpuid= and cpuid_policy= */
    unsigned nr_vifs, nr_disks;
    struct domain_vif vifs[DOMAIN_MAX_VIFS];     /* devid = index */
    struct domain_disk disks[DOMAIN_MAX_DISKS];
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

/* Remus protection of a domain (xl remus), as its domain process records
 * it: none; the primary with its initial copy on the way (syncing), with a
 * backup holding its last acknowledged epoch (protected), or having lost
 * it and running on alone (unprotected, also a replica that took over);
 * or the replica itself, paused on the secondary (backup). */
enum domain_protection {
    DOMAIN_PROTECTION_NONE,
    DOMAIN_PROTECTION_SYNCING,
    DOMAIN_PROTECTION_PROTECTED,
    DOMAIN_PROTECTION_UNPROTECTED,
    DOMAIN_PROTECTION_BACKUP,
};
const char *domain_protection_name(enum domain_protection p);
int domain_protection_parse(const char *s, enum domain_protection *out);

struct registry_protection {
    enum domain_protection state;
    uint64_t epochs;                     /* acknowledged (primary) or committed (backup) */
    long long last_commit_ms;            /* unix time in ms of the last one, 0 = none */
    unsigned interval_ms;                /* the checkpoint interval */
    char peer[128];                      /* the other host, as xl remus named it */
    char detail[256];                    /* why it is unprotected, how it took over */
};

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
    struct registry_protection protection;   /* "protection" in the JSON, when not none */
    char config_json[16384];             /* the domain_config, as JSON */
};

/* Reserve a fresh domid and the name, atomically for the whole host; the
 * record starts in state CREATING owned by `pid`. -EEXIST if the name is
 * taken by a live domain. */
int registry_reserve(const struct host_paths *p, const struct domain_config *c,
                     pid_t pid, unsigned *domid_out, const struct tlog *log);
int registry_write(const struct host_paths *p, const struct registry_entry *e,
                   const struct tlog *log);
int registry_remove(const struct host_paths *p, unsigned domid);
/* Writes e after checking, under the registry lock, that no other live
 * domain has its name: -EEXIST if one does.  For renames. */
int registry_write_unique(const struct host_paths *p, const struct registry_entry *e,
                          const struct tlog *log);
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

/* ---- Domain state, for save, restore and migration ---------------------
 * These run inside the domain process, which owns the domain.  State is
 * read and written only while the domain is paused. */
struct domain;

struct domain_ram_region {
    uint64_t gpa, size;
    uint8_t *host;                    /* the domain process's mapping */
};
/* The guest's RAM; returns the number of regions (at most 2). */
unsigned domain_ram_regions(struct domain *d, struct domain_ram_region out[2]);
/* Highest guest frame number + 1. */
uint64_t domain_max_pfn(struct domain *d);
void domain_pause(struct domain *d);     /* returns with every vCPU parked */
void domain_unpause(struct domain *d);
unsigned domain_nr_vcpus(struct domain *d);

/* vCPU and platform state as Xen's HVM context blob: save descriptors
 * {u16 typecode, u16 instance, u32 length} and records from libxen-dev's
 * xen/arch-x86/hvm/save.h (HEADER, CPU, PIC, IOAPIC, LAPIC, LAPIC_REGS,
 * PIT, MTRR, CPU_XSAVE, CPU_MSR, END).  KVM state that has no Xen record
 * travels in extra records with Tandem typecodes (docs/stream-extensions.md),
 * never dropped.  *blob is malloc'd. */
int domain_get_hvm_context(struct domain *d, uint8_t **blob, size_t *len, const struct tlog *log);
/* Strict: every length and typecode is checked; a bad blob changes nothing
 * it has not validated first and returns -EINVAL with a logged reason. */
int domain_set_hvm_context(struct domain *d, const uint8_t *blob, size_t len, const struct tlog *log);

/* X86_TSC_INFO's fields (libxc stream spec). */
struct domain_tsc_info {
    uint32_t mode;                    /* 0 = default */
    uint32_t khz;
    uint64_t nsec;                    /* guest's elapsed ns (kvmclock) */
    uint32_t incarnation;
};
int domain_get_tsc_info(struct domain *d, struct domain_tsc_info *out, const struct tlog *log);
int domain_set_tsc_info(struct domain *d, const struct domain_tsc_info *in, const struct tlog *log);

/* HVM_PARAMS entries that mean something on KVM (e.g. the identity-map
 * and TSS addresses as HVM_PARAM_IDENT_PT / HVM_PARAM_VM86_TSS_SIZED). */
struct domain_hvm_param { uint64_t index, value; };
int domain_get_hvm_params(struct domain *d, struct domain_hvm_param **out, unsigned *n, const struct tlog *log);
int domain_set_hvm_params(struct domain *d, const struct domain_hvm_param *p, unsigned n, const struct tlog *log);

/* CPUID and MSR policies, laid out as Xen's xen_cpuid_leaf_t and
 * xen_msr_entry_t (public/arch-x86/xen.h). */
struct domain_cpuid_leaf { uint32_t leaf, subleaf, a, b, c, d; };
struct domain_msr_entry { uint32_t idx, flags; uint64_t val; };
int domain_get_cpuid_policy(struct domain *d, struct domain_cpuid_leaf **out, unsigned *n, const struct tlog *log);
/* Applies a policy from a stream to a domain whose vCPUs have not run;
 * -EOPNOTSUPP naming the features this host cannot give. */
int domain_set_cpuid_policy(struct domain *d, const struct domain_cpuid_leaf *l, unsigned n, const struct tlog *log);
int domain_get_msr_policy(struct domain *d, struct domain_msr_entry **out, unsigned *n, const struct tlog *log);
int domain_set_msr_policy(struct domain *d, const struct domain_msr_entry *m, unsigned n, const struct tlog *log);

/* ---- CPU policies (xen/cpu_features.c, xen/cpu_policy.c) --------------
 * A CPU policy is the CPUID leaves and feature MSRs a guest sees.  This
 * host's maximum is what KVM can give minus the host mask (host.cfg's
 * cpuid_mask), so one machine can play one with an older CPU; a guest's is
 * the maximum changed by its xl.cfg cpuid= and cpuid_policy=.  Policies are
 * written as JSON in the form docs/cpu-policy.md documents. */
#define CPU_NO_SUBLEAF 0xffffffffu          /* Xen's XEN_CPUID_NO_SUBLEAF */
#define CPU_POLICY_MAX_LEAVES 256           /* KVM_MAX_CPUID_ENTRIES */
#define CPU_POLICY_MAX_MSRS 64

struct cpu_policy {
    unsigned nr_leaves, nr_msrs;
    struct domain_cpuid_leaf leaves[CPU_POLICY_MAX_LEAVES];
    struct domain_msr_entry msrs[CPU_POLICY_MAX_MSRS];
};

/* xl.cfg's cpuid= in Xen's two forms, added to o (later settings win):
 * the libxl string "host,avx512f=0,x2apic=1,family=6" (feature names of
 * libxen-dev's cpufeatureset.h in any case, '-', '_' and '.' alike; values
 * 1, 0, x, k, s; numeric family, model and stepping) and one xend string
 * "leaf[,subleaf]:reg=<32 of 1 0 x k s>,...".  On error `err` says what and
 * where, and o may hold part of the text. */
int cpu_overrides_parse_libxl(const char *text, struct cpu_overrides *o, char *err, size_t len);
int cpu_overrides_parse_xend(const char *text, struct cpu_overrides *o, char *err, size_t len);
/* host.cfg's cpuid_mask: "avx512f=0,rtm=0" (only 0s; "host," optional). */
int cpu_overrides_parse_mask(const char *text, struct cpu_overrides *o, char *err, size_t len);
/* One CPUID override as a xend string, for the domain config's JSON. */
int cpu_override_format_xend(const struct cpu_override *ov, char *buf, size_t len);
/* The overrides that take away every feature `pool` lacks (levelling). */
void cpu_overrides_from_policy(const struct cpu_policy *pool, struct cpu_overrides *o);

/* Applies o to p.  -ENOSPC when a leaf or MSR it must add does not fit. */
int cpu_policy_apply(struct cpu_policy *p, const struct cpu_overrides *o);
/* The features `want` has and `max` lacks, named ("leaf 0x7.0 EBX bit 16
 * (avx512f)", ...) into msg; returns how many. */
unsigned cpu_policy_missing(const struct cpu_policy *want, const struct cpu_policy *max, char *msg, size_t len);
/* The features every one of in[0..n) has: in[0] with each feature word
 * ANDed over all of them, the highest leaves the lowest any has. */
int cpu_policy_level(const struct cpu_policy *in, unsigned n, struct cpu_policy *out);
/* JSON.  kind is "host", "guest" or "levelled"; about names the host or
 * domain (may be NULL).  *out is malloc'd.  from_json is strict: a wrong
 * format, version, value or duplicate is an error in err. */
int cpu_policy_to_json(const struct cpu_policy *p, const char *kind, const char *about, char **out);
int cpu_policy_from_json(const char *text, size_t len, struct cpu_policy *p, char *err, size_t errlen);
/* Named features a policy has (for people), comma-separated. */
void cpu_policy_feature_names(const struct cpu_policy *p, char *buf, size_t len);

/* This host's maximum policy (a scratch VM is built to ask KVM). */
int cpu_policy_host(const struct cpu_overrides *host_mask, struct cpu_policy *out, const struct tlog *log);
/* The policy a domain's vCPU 0 has. */
int domain_get_cpu_policy(struct domain *d, struct cpu_policy *out, const struct tlog *log);

/* Log-dirty.  Start before the first pass over memory; each harvest ORs
 * the pfns dirtied since the previous one into `bitmap` (max_pfn bits)
 * and re-protects them, so a page is copied only after its harvest. */
enum domain_logdirty_mode domain_logdirty_mode(struct domain *d);   /* the one in use */
size_t domain_logdirty_bitmap_words(struct domain *d);
int domain_logdirty_start(struct domain *d, const struct tlog *log);
int domain_logdirty_harvest(struct domain *d, uint64_t *bitmap, uint64_t *count);
void domain_logdirty_stop(struct domain *d);
/* Pages vCPU `vcpu` has dirtied since creation (ring mode; 0 in bitmap
 * mode), for per-vCPU dirty rates; and how often a ring filled up. */
uint64_t domain_vcpu_dirtied(struct domain *d, unsigned vcpu);
uint64_t domain_ring_full_exits(struct domain *d);

/* Throttling: vCPU `vcpu` sleeps pct% (0-99) of the time; the precopy
 * loop uses it on guests that dirty memory faster than the link sends. */
int domain_set_vcpu_throttle(struct domain *d, unsigned vcpu, unsigned pct);
void domain_throttle_off(struct domain *d);
/* A dirty-rate limit for vCPU `vcpu` (ring log-dirty): when its ring fills
 * it waits until it is back under pages_per_sec (0 = no limit).  Cleared
 * by domain_throttle_off. */
int domain_set_vcpu_dirty_limit(struct domain *d, unsigned vcpu, uint64_t pages_per_sec);

/* Device models' state (the UART and the virtio devices), for
 * EMULATOR_CONTEXT; layout in docs/stream-extensions.md.  It does not
 * sync the disks: a save that hands the guest over calls
 * domain_disk_sync first. */
/* The guest's virtio devices (vifs and disks); a restore of a domain
 * that has any needs their state from the image. */
unsigned domain_nr_virtio_devices(struct domain *d);
int domain_get_device_state(struct domain *d, uint8_t **blob, size_t *len, const struct tlog *log);
int domain_set_device_state(struct domain *d, const uint8_t *blob, size_t len, const struct tlog *log);

/* ---- Remus support in the devices (xen/devices.c, virtio_net.c, virtio_blk.c)
 * Output commit: while buffering, frames the guest transmits are copied
 * out of its buffers (its TX descriptors complete at once) into a FIFO per
 * vif, tagged with the open output epoch, and reach the tap only when
 * their epoch is released.  Bounded: when a vif holds max_bytes it stops
 * taking TX descriptors (the guest's ring fills and it waits) until a
 * release makes room: never a drop.  Receive is never buffered.  mark,
 * release and stop may be called from any threads, concurrently. */
/* 0 = the default, 16 MiB (per vif).  Epochs count from 1 again at each
 * start.  -EBUSY if already buffering.  A domain without vifs: 0. */
#define DOMAIN_NET_BUFFER_DEFAULT (16u << 20)
int domain_net_buffer_start(struct domain *d, size_t max_bytes);
/* Where the frames are held.  VMM (the default, what domain_net_buffer_start
 * does): in the vif, as above.  PLUG: in the kernel, as Xen's Remus does
 * it: the tap's ingress is redirected to an ifb (ifb<domid>.<devid>)
 * whose root qdisc is `plug`; mark puts a barrier in each plug queue,
 * release lets a closed epoch's frames out (release_one), stop(true)
 * opens the queues for good (release_indefinite) before removing it all,
 * stop(false) removes it all and the held frames with it.  VMM is the
 * default because it has back-pressure: at max_bytes the guest waits and
 * no frame is lost; the plug qdisc drops what goes beyond max_bytes (the
 * guest's TCP retransmits, its UDP is lost), and it holds one barrier
 * only, so when acks lag more than an interval the epochs closed meanwhile
 * go out together with a later one (later than necessary, never early).
 * PLUG needs sch_plug and ifb in the kernel: when domain_net_buffer_probe
 * says no, start_on logs why and returns -EOPNOTSUPP; any other failure
 * while building leaves nothing behind. */
enum domain_netbuf_backend { DOMAIN_NETBUF_VMM, DOMAIN_NETBUF_PLUG };
int domain_net_buffer_start_on(struct domain *d, size_t max_bytes, enum domain_netbuf_backend backend);
/* Whether this kernel can do PLUG (it builds and deletes a throw-away
 * tap, ifb and qdiscs, tens of ms; nothing stays): true, or false with
 * the reason in reason ("no plug qdisc in this kernel ..."), for start-up
 * lines and diagnostics.  start_on(PLUG) uses the last answer (probing
 * itself only if none was asked for): probe before the guest is paused.
 * "vmm" / "plug", for logs. */
bool domain_net_buffer_probe(char *reason, size_t len);
const char *domain_netbuf_backend_name(enum domain_netbuf_backend backend);
/* Called with the domain paused at a checkpoint: closes the open epoch
 * (frames held so far belong to it) and returns its number (1, 2, ...);
 * 0 when not buffering. */
uint64_t domain_net_buffer_mark(struct domain *d);
/* Writes every held frame of epochs <= epoch to the tap, in the order the
 * guest sent them, from the caller's thread.  An epoch not yet closed by
 * a mark is never released (epoch is clamped to the last one marked). */
void domain_net_buffer_release(struct domain *d, uint64_t epoch);
/* Stops buffering: release = true writes everything held (the open epoch
 * too), false discards it. */
void domain_net_buffer_stop(struct domain *d, bool release);
/* Summed over the vifs: frames and bytes held now, frames released to the
 * tap so far, the high-water marks of held bytes, how often a vif stalled
 * its transmit queue at max_bytes, frames dropped (VMM: never).  PLUG: the
 * plug qdiscs' own counters, read from the kernel at each call (a netlink
 * dump): held_* are what is queued now, released_frames what has left the
 * queues, which trails a release by the time the kernel takes to send
 * (so a count taken right after a release may miss some of its frames);
 * max_held_bytes is the highest backlog a call saw, not a true high-water
 * mark; stalls is 0 (the qdisc never stalls the guest, it drops). */
struct domain_net_buffer_stats {
    uint64_t held_frames, held_bytes, released_frames, max_held_bytes, stalls, dropped;
};
void domain_net_buffer_stats(struct domain *d, struct domain_net_buffer_stats *out);

/* Disk replication.  Tracking records which 4 KiB blocks of each disk the
 * guest wrote: a write's bits are set before the request completes to the
 * guest, so with the domain paused every write the guest was told about
 * is in the bitmap.  Read-only disks are never tracked (nor written).
 * Disks are numbered as the config's disk= list (0 = the first). */
#define DOMAIN_DISK_BLOCK 4096
/* all_dirty: the first harvest returns every block holding data (the
 * initial copy); holes of a sparse image (SEEK_HOLE) are skipped, so the
 * secondary's image must read zeros there: a fresh sparse file of the
 * same size, or a copy of the primary's. Calling it again while tracking
 * keeps the bits (and with all_dirty adds every data block). */
int domain_disk_track_start(struct domain *d, bool all_dirty);
/* Hands each block written since the previous harvest, with its current
 * contents (read from the image), to fn, in (disk, offset) order; the last
 * block of a disk may be short.  A block's bit is cleared before it is
 * read, so while the domain runs (a precopy round) a block written
 * meanwhile is simply dirty again; call it with the domain paused for an
 * exact checkpoint.  max_bytes bounds the bytes handed in one call (0 = no
 * bound; at least one block is handed); *more (may be NULL) tells whether
 * blocks are left.  fn returning non-zero stops it: the block it refused
 * stays dirty and harvest returns fn's value.  A read error: -errno, the
 * blocks not handed stay dirty. */
int domain_disk_harvest(struct domain *d, size_t max_bytes,
                        int (*fn)(void *opaque, unsigned disk, uint64_t offset, const void *data, uint32_t len),
                        void *opaque, bool *more, const struct tlog *log);
void domain_disk_track_stop(struct domain *d);
/* Secondary: writes data into disk `disk` of a domain built for restore;
 * -EINVAL naming what was wrong (no such disk, beyond its end), -EROFS for
 * a read-only disk.  domain_disk_sync makes every writable disk durable
 * (fdatasync). */
int domain_disk_write(struct domain *d, unsigned disk, uint64_t offset, const void *data, uint32_t len,
                      const struct tlog *log);
int domain_disk_sync(struct domain *d, const struct tlog *log);
unsigned domain_nr_disks(struct domain *d);

/* ---- The per-domain process -------------------------------------------- */
/* What the layers above provide to save and restore a domain; the domain
 * process calls them, so xen/ never depends on migration/.  Each returns 0
 * or -errno and may fill `summary` with a one-line result for the client. */
struct domproc_hooks {
    /* Writes the domain's image to fd.  `options` is the rest of the
     * client's "save" line.  Called with the domain paused. */
    int (*save)(struct domain *d, int fd, const char *options,
                void (*progress)(void *opaque, const char *line), void *progress_opaque,
                const bool *cancel, char *summary, size_t len, const struct tlog *log);
    /* Reads an image from fd into a domain built for restore.  `options`
     * is domproc_args.restore_options ("" for none). */
    int (*restore)(struct domain *d, int fd, const char *options, char *summary, size_t len,
                   const struct tlog *log);
};

/* Remus (remus/hooks.c) as the domain process calls it.  `options` is
 * the rest of the client's command line.  Progress lines go to the client
 * ("progress <line>"); epoch() is called after each acknowledged (primary)
 * or committed (secondary) epoch, from the job's thread. */
struct domproc_remus_report {
    void (*progress)(void *opaque, const char *line);
    void (*epoch)(void *opaque, uint64_t epoch, uint64_t commit_unix_ms);
    void *opaque;
};
/* What the secondary's job ended with (domproc acts on it). */
enum domproc_remus_end {
    DOMPROC_REMUS_STOPPED = 0,     /* the primary ended protection: destroy the replica */
    DOMPROC_REMUS_FAILOVER = 1,    /* the primary is gone: resume the replica */
    DOMPROC_REMUS_PRIMARY_ALIVE = 2, /* the stream broke but the witness says the primary
                                      * runs, or fencing it failed: no takeover, destroy
                                      * the replica */
};
/* The witness (xl remus --witness ADDR:PORT): the primary's domain
 * process answers UDP datagrams "<PROBE> <name> <nonce>" on ADDR:PORT with
 * "<ALIVE> <name> <nonce>" for as long as it lives; the backup asks before
 * it takes over. */
#define DOMPROC_WITNESS_PROBE "tandem-remus-witness probe"
#define DOMPROC_WITNESS_ALIVE "tandem-remus-witness alive"
/* One witness datagram of `kind` (len bytes, not NUL-terminated): a name
 * of 1 to DOMAIN_NAME_MAX printable characters without spaces, and a
 * decimal nonce without sign or leading zero that fits 64 bits.  0, or
 * -EINVAL for anything else (xen/witness.c, fuzzed). */
int domproc_witness_parse(const char *buf, size_t len, const char *kind, char name[DOMAIN_NAME_MAX + 1],
                          uint64_t *nonce);
/* Writes one, NUL-terminated: its length, or -E2BIG. */
int domproc_witness_format(char *out, size_t len, const char *kind, const char *name, uint64_t nonce);

struct domproc_remus_hooks {
    /* Protects running domain d: its checkpoints to out_fd, acks from
     * in_fd, until *stop (0) or until the backup is lost (-errno); the
     * domain runs on either way.  `name` is the domain's, for the witness. */
    int (*primary)(struct domain *d, const char *name, int out_fd, int in_fd, const char *options,
                   const struct domproc_remus_report *r, const bool *stop, char *summary, size_t len,
                   const struct tlog *log);
    /* Receives the checkpoints into d (built for restore, paused) from
     * in_fd, acks on ack_fd; returns an enum domproc_remus_end, or -errno
     * when not even the first checkpoint committed.  summary says what
     * happened ("epoch=E since_commit_ms=N ..."). */
    int (*secondary)(struct domain *d, const char *name, int in_fd, int ack_fd, const char *options,
                     const struct domproc_remus_report *r, char *summary, size_t len, const struct tlog *log);
};

struct domproc_args {
    struct host_paths paths;
    struct domain_config config;
    unsigned domid;
    bool start_paused;
    int ready_fd;            /* gets "ok <domid> [summary]\n" or "error <text>\n" */
    int restore_fd;          /* >= 0: build the domain from this image, don't boot */
    const char *restore_options; /* for hooks->restore, e.g. "compress"; NULL: none */
    const struct domproc_hooks *hooks;
    const struct domproc_remus_hooks *remus_hooks;   /* NULL: this process cannot do Remus */
    const struct tlog *log;  /* the domain's log file */
    struct cpu_overrides host_mask;  /* host.cfg's cpuid_mask */
};
/* Builds the domain, serves its control socket until it is destroyed.
 * Returns the process exit status. */
int domproc_main(struct domproc_args *a);

/* ---- Control socket client ---------------------------------------------
 * Line protocol: a command, then "ok [detail]" or "error <errno> <text>". */
int control_connect(const struct host_paths *p, unsigned domid, const struct tlog *log);
int control_command(const struct host_paths *p, unsigned domid, const char *cmd,
                    char *reply, size_t reply_len, const struct tlog *log);
/* The same, handing `fd` to the domain process with the command. */
int control_command_fd(const struct host_paths *p, unsigned domid, const char *cmd, int fd,
                       char *reply, size_t reply_len, const struct tlog *log);
/* And passing each "progress ..." line that comes before the answer to
 * on_progress (without the "progress " prefix). */
int control_command_progress(const struct host_paths *p, unsigned domid, const char *cmd, int fd,
                             void (*on_progress)(void *opaque, const char *line), void *opaque,
                             char *reply, size_t reply_len, const struct tlog *log);

/* With up to CONTROL_MAX_FDS descriptors (fds[0..nfds)) handed over in
 * one message, e.g. xl remus's stream to the secondary and its back
 * channel.  In two steps, so the caller can close its copies of the fds
 * once they are sent (an end of stream then reaches the other side when
 * the domain process closes its own): control_send_fds returns the
 * connected socket, control_wait_reply reads the progress lines and the
 * answer and closes it (timeout_ms < 0: no limit). */
#define CONTROL_MAX_FDS 4
int control_command_fds(const struct host_paths *p, unsigned domid, const char *cmd, const int *fds,
                        unsigned nfds, void (*on_progress)(void *opaque, const char *line), void *opaque,
                        char *reply, size_t reply_len, const struct tlog *log);
int control_send_fds(const struct host_paths *p, unsigned domid, const char *cmd, const int *fds, unsigned nfds,
                     const struct tlog *log);
int control_wait_reply(int sock, unsigned domid, const char *cmd, int timeout_ms,
                       void (*on_progress)(void *opaque, const char *line), void *opaque, char *reply,
                       size_t reply_len, const struct tlog *log);

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
