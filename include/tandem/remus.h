/* Remus: a running guest checkpointed to a backup many times a second
 * (docs/remus.md).  The primary sends the initial live migration and then
 * one epoch per interval over out_fd, and reads the secondary's acks from
 * in_fd; the secondary applies an epoch only once it is whole and valid,
 * acks it, and when the primary goes away its domain holds the last
 * committed epoch, ready to take over.  This library is the engine only;
 * the domain process and xl wire it to their fds and jobs. */
#ifndef TANDEM_REMUS_H
#define TANDEM_REMUS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "tandem/log.h"
#include "tandem/xen.h"

#define REMUS_DEFAULT_INTERVAL_MS 200u
/* The bounds xl and the domain process accept for -i and --timeout. */
#define REMUS_MAX_INTERVAL_MS 60000u
#define REMUS_MAX_TIMEOUT_MS 600000u
/* The backup's fence command (xl remus --fence) may take this long. */
#define REMUS_FENCE_DEFAULT_TIMEOUT_S 30u
#define REMUS_FENCE_MAX_TIMEOUT_S 3600u
/* Until epoch 0 commits the backup waits at least this long for the
 * primary's next record (ssh start-up, a big guest's initial copy). */
#define REMUS_FIRST_BYTE_TIMEOUT_MS 60000u

/* The witness address of xl remus --witness: "A.B.C.D:PORT",
 * "[IPv6]:PORT" or "HOST:PORT" (HOST resolved now, its first address).
 * 0, or -EINVAL with the reason in why. */
int remus_witness_parse(const char *spec, struct sockaddr_storage *sa, socklen_t *sa_len, char *why,
                        size_t why_len);
/* The numeric form of a parsed witness ("A.B.C.D:PORT", "[IPv6]:PORT"):
 * what the primary binds and the backup probes.  -E2BIG, -EINVAL. */
int remus_witness_format(const struct sockaddr_storage *sa, char *buf, size_t len);

/* A value as one word of the backup's options line (remus/option_word.c):
 * every byte that is not printable ASCII other than space and '%' becomes
 * %XX.  encode: -E2BIG if out (len bytes, NUL included) is too small;
 * decode: -EINVAL for a malformed escape, a %00, or a result that does
 * not fit. */
int remus_option_encode(const char *value, char *out, size_t len);
int remus_option_decode(const char *in, char *out, size_t len);

struct remus_epoch_stats {
    uint64_t epoch;          /* 1, 2, ... (0 = the initial live migration's checkpoint) */
    uint64_t pause_us;       /* guest paused for this checkpoint */
    uint64_t pages;          /* dirty pages sent */
    uint64_t bytes;          /* stream bytes of the epoch */
    uint64_t disk_bytes;     /* disk blocks sent */
    uint64_t ack_us;         /* from the end of sending to the secondary's ack */
    uint64_t held_frames;    /* network frames released by this ack */
    uint64_t delta_pages;    /* of pages, sent as deltas (compress) */
    uint64_t page_bytes;     /* what the page records took */
};

struct remus_opts {
    unsigned interval_ms;        /* -i; 0 = REMUS_DEFAULT_INTERVAL_MS */
    bool compress;               /* XOR/RLE delta pages; -u turns it off */
    bool net_buffer;             /* output commit; -n (with -F) turns it off */
    enum domain_netbuf_backend net_backend; /* where output is held (--netbuf); 0 = VMM */
    bool disk_replication;       /* -d (with -F) turns it off */
    bool blackhole;              /* -b (with -F): out_fd is /dev/null, no acks (in_fd ignored) */
    unsigned timeout_ms;         /* no ack for this long: the secondary is lost
                                  * (0 = max(3 x interval, 1000)) */
    /* Called after each acked epoch (from the engine's thread). */
    void (*on_epoch)(void *opaque, const struct remus_epoch_stats *e);
    void *opaque;
    const bool *stop;            /* set by another thread: end protection cleanly */
    /* the initial live migration's knobs (0: 30 ms, 30 rounds) */
    unsigned max_downtime_ms, max_iters;
    /* Bound on the copies of sent pages kept for compression (0 = 64 MiB,
     * at most the guest's RAM); pages beyond it go plain. */
    uint64_t delta_cache_bytes;
};

struct remus_summary {
    uint64_t epochs, last_acked;
    uint64_t pause_us_median, pause_us_max;
    uint64_t pages_median, pages_max;
    int lost_reason;             /* 0, or -errno: why the secondary was lost */
    char lost_text[200];
};

/* Primary.  The initial live migration (precopy rounds, then epoch 0's
 * stop-and-copy), then an epoch every interval (start to start; an epoch
 * that overruns starts the next at once) until *stop (returns 0 after
 * writing END records), or until the secondary is lost (returns -EPIPE,
 * -ETIMEDOUT, ...: held output released, buffering and tracking off, the
 * guest runs on unprotected).  The domain is running when it returns,
 * either way (unlike migration_save_live).  A failure before epoch 0 is
 * acked leaves the guest running unprotected and the error says why. */
int remus_primary_run(struct domain *d, int out_fd, int in_fd, const struct remus_opts *o,
                      struct remus_summary *sum, const struct tlog *log);

struct remus_secondary_opts {
    unsigned timeout_ms;         /* no complete epoch and no bytes for this long: the primary
                                  * is gone (0 = 1000) */
    unsigned first_timeout_ms;   /* until epoch 0 commits, between records
                                  * (0 = max(REMUS_FIRST_BYTE_TIMEOUT_MS, timeout)) */
    bool compress;               /* accept the delta record */
    /* Split-brain guard, asked once before taking over: true forbids the
     * takeover (the witness says the primary lives, or the fence command
     * could not fence it); NULL = trust the stream alone, documented as
     * unsafe without an independent path. */
    bool (*primary_alive)(void *opaque);
    void *opaque;
    void (*on_epoch)(void *opaque, uint64_t epoch);   /* after each commit */
    /* Bound on one buffered epoch (0 = the guest's RAM + 64 MiB): an epoch
     * beyond it is refused (-E2BIG), never an out-of-memory. */
    uint64_t max_epoch_bytes;
};

struct remus_secondary_summary {
    uint64_t epochs, last_committed;
    uint64_t last_commit_usec;   /* monotonic time of the last commit */
    int why;                     /* -errno: why the stream ended (0: END records: stopped cleanly) */
    char why_text[200];
};

/* remus_secondary_run's results (the values of xen.h's enum domproc_remus_end). */
#define REMUS_SECONDARY_STOPPED       0   /* END records: the caller destroys the replica */
#define REMUS_SECONDARY_FAILOVER      1   /* the primary is gone: resume the replica */
#define REMUS_SECONDARY_PRIMARY_ALIVE 2   /* the stream broke but primary_alive forbids a
                                           * takeover */

/* Secondary.  Reads the initial image and then epochs into d (built for
 * restore, paused throughout); applies an epoch only when it is whole and
 * valid, then acks it on ack_fd.  Returns when the stream ends: 0 for a
 * clean END, 1 when the primary is gone and the caller must fail over (d
 * holds the last committed epoch), 2 when primary_alive forbids the
 * takeover, -errno when not even epoch 0 committed (nothing to fail over
 * to). */
int remus_secondary_run(struct domain *d, int in_fd, int ack_fd, const struct remus_secondary_opts *o,
                        struct remus_secondary_summary *sum, const struct tlog *log);

#endif
