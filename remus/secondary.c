/* The Remus secondary: the initial image is applied as it arrives (until
 * epoch 0 commits there is nothing to fail over to); from then on each
 * epoch's records are kept in memory, checked by the strict reader, and
 * applied only when its CHECKPOINT_END has come: pages, vCPU and platform
 * state, device state, then the disk blocks, made durable, and only then
 * the ack.  A stream that breaks inside an epoch loses that epoch and
 * nothing else. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration_internal.h"
#include "remus_internal.h"
#include "tandem/streams.h"

#define EPOCH_SLACK (64ull << 20)         /* state, device models, disk blocks */
#define DEFAULT_TIMEOUT_MS 1000u

struct held_record {
    enum stream_layer layer;
    uint32_t type, length;
    uint64_t offset;
    size_t at;                            /* body in bytes[] */
};

struct epoch_buffer {
    struct held_record *recs;
    size_t n, cap;
    uint8_t *bytes;
    size_t len, bytes_cap;
    uint64_t max;
};

struct secondary {
    struct domain *d;
    const struct remus_secondary_opts *o;
    const struct tlog *log;
    struct migration_restorer *r;
    struct migration_stats st;
    struct stream_sink *ack;
    struct domain_ram_region rr[2];
    unsigned nr;
    bool ack_broken;
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    uint32_t enc_len[STREAM_MAX_BATCH];
};

static int hold(struct secondary *s, struct epoch_buffer *b, const struct stream_record *rec)
{
    if ((uint64_t)b->len + rec->length > b->max) {
        tlog_error(s->log, "Remus: the epoch at offset %#" PRIx64 " exceeds %" PRIu64 " bytes: refused",
                   rec->offset, b->max);
        return -E2BIG;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct held_record *nr = realloc(b->recs, cap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        b->recs = nr;
        b->cap = cap;
    }
    if (b->len + rec->length > b->bytes_cap) {
        size_t cap = b->bytes_cap ? b->bytes_cap : 1u << 20;
        while (cap < b->len + rec->length)
            cap *= 2;
        uint8_t *nb = realloc(b->bytes, cap);
        if (!nb)
            return -ENOMEM;
        b->bytes = nb;
        b->bytes_cap = cap;
    }
    if (rec->length)
        memcpy(b->bytes + b->len, rec->body, rec->length);
    b->recs[b->n++] = (struct held_record){ rec->layer, rec->type, rec->length, rec->offset, b->len };
    b->len += rec->length;
    return 0;
}

static struct stream_record held(const struct epoch_buffer *b, size_t i)
{
    const struct held_record *h = &b->recs[i];
    return (struct stream_record){ .layer = h->layer, .type = h->type, .length = h->length,
                                   .body = h->length ? b->bytes + h->at : NULL, .offset = h->offset };
}

static int apply_disk(struct secondary *s, const struct stream_record *rec)
{
    uint32_t disk, len;
    uint64_t off;
    const uint8_t *data;
    int rc = stream_decode_disk_data(rec, &disk, &off, &data, &len);
    if (!rc)
        rc = domain_disk_write(s->d, disk, off, data, len, s->log);
    if (rc)
        tlog_error(s->log, "Remus: TANDEM_DISK_DATA at offset %#" PRIx64 " (disk %u, byte %#" PRIx64
                   "): %s", rec->offset, disk, off, strerror(-rc));
    return rc;
}

/* What the reader cannot know: that each pfn is RAM here and each disk
 * exists.  Checked over the whole epoch before any of it is applied. */
static int check_epoch(struct secondary *s, const struct epoch_buffer *b, uint64_t epoch)
{
    unsigned disks = domain_nr_disks(s->d);
    for (size_t i = 0; i < b->n; i++) {
        struct stream_record rec = held(b, i);
        unsigned n = 0;
        int rc = 0;
        if (rec.layer == STREAM_LAYER_LIBXC && rec.type == STREAM_LIBXC_PAGE_DATA)
            rc = stream_decode_page_data(&rec, &n, s->pfns, s->types, s->data);
        else if (rec.layer == STREAM_LAYER_LIBXC && rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA)
            rc = stream_decode_page_delta(&rec, &n, s->pfns, s->data, s->enc_len);
        else if (rec.layer == STREAM_LAYER_LIBXL && rec.type == STREAM_LIBXL_TANDEM_DISK_DATA) {
            uint32_t disk, len;
            uint64_t off;
            const uint8_t *data;
            if ((rc = stream_decode_disk_data(&rec, &disk, &off, &data, &len)))
                return rc;
            if (disk >= disks) {
                tlog_error(s->log, "Remus: epoch %" PRIu64 ": TANDEM_DISK_DATA at offset %#" PRIx64
                           " is for disk %u; the replica has %u: refused", epoch, rec.offset, disk, disks);
                return -EINVAL;
            }
        }
        if (rc)
            return rc;
        for (unsigned k = 0; k < n; k++)
            if ((rec.type == STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA || s->types[k] != STREAM_PAGE_XTAB) &&
                !migration_pfn_to_host(s->rr, s->nr, s->pfns[k])) {
                tlog_error(s->log, "Remus: epoch %" PRIu64 ": %s at offset %#" PRIx64 ": pfn %#" PRIx64
                           " is not RAM in the replica: the epoch is refused", epoch,
                           stream_record_name(rec.layer, rec.type), rec.offset, s->pfns[k]);
                return -ERANGE;
            }
    }
    return 0;
}

static int apply_record(struct secondary *s, const struct stream_record *rec)
{
    if (rec->layer == STREAM_LAYER_LIBXL && rec->type == STREAM_LIBXL_TANDEM_DISK_DATA)
        return apply_disk(s, rec);
    if ((rec->layer == STREAM_LAYER_LIBXC && rec->type == STREAM_LIBXC_CHECKPOINT) ||
        (rec->layer == STREAM_LAYER_LIBXL && rec->type == STREAM_LIBXL_CHECKPOINT_END))
        return 0;
    return migration_restorer_apply(s->r, rec);
}

static int commit(struct secondary *s, uint64_t epoch, struct remus_secondary_summary *sum)
{
    int rc = domain_disk_sync(s->d, s->log);
    if (rc) {
        tlog_error(s->log, "Remus: epoch %" PRIu64 ": making the replica's disks durable failed: %s", epoch,
                   strerror(-rc));
        return rc;
    }
    sum->epochs++;
    sum->last_committed = epoch;
    sum->last_commit_usec = migration_now_usec();
    if (!s->ack_broken &&
        (stream_write_checkpoint_ack(s->ack, epoch) || stream_sink_flush(s->ack))) {
        /* The primary may be gone: the stream will tell. */
        tlog_warn(s->log, "Remus: the ack for epoch %" PRIu64 " could not be sent", epoch);
        s->ack_broken = true;
    }
    if (s->o->on_epoch)
        s->o->on_epoch(s->o->opaque, epoch);
    return 0;
}

int remus_secondary_run(struct domain *d, int in_fd, int ack_fd, const struct remus_secondary_opts *o,
                        struct remus_secondary_summary *sum, const struct tlog *log)
{
    struct secondary s = { .d = d, .o = o, .log = log };
    struct epoch_buffer b = { 0 };
    struct stream_reader *rd = NULL;
    bool committed = false, in_epoch = false;
    uint64_t epoch = 0, ram = 0;
    int rc;
    unsigned timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    unsigned first_ms = o->first_timeout_ms ? o->first_timeout_ms
                        : timeout_ms > REMUS_FIRST_BYTE_TIMEOUT_MS ? timeout_ms : REMUS_FIRST_BYTE_TIMEOUT_MS;
    bool first_timed_out = false;

    memset(sum, 0, sizeof(*sum));
    s.nr = domain_ram_regions(d, s.rr);
    for (unsigned i = 0; i < s.nr; i++)
        ram += s.rr[i].size;
    b.max = o->max_epoch_bytes ? o->max_epoch_bytes : ram + EPOCH_SLACK;
    struct stream_reader_opts ro = { .start = STREAM_LAYER_LIBXL, .checkpoints = STREAM_REMUS,
                                     .max_pfn = domain_max_pfn(d), .tandem_delta = o->compress,
                                     .timeout_ms = first_ms, .log = log };
    if ((rc = migration_restorer_new(d, &s.st, log, &s.r)) || (rc = stream_sink_new(ack_fd, log, &s.ack)) ||
        (rc = stream_reader_new(in_fd, &ro, &rd)))
        goto out;

    for (;;) {
        struct stream_record rec;
        if ((rc = stream_read_record(rd, &rec))) {
            first_timed_out = !committed && rc == -ETIMEDOUT;
            break;
        }
        if (rec.header) {
            const struct stream_libxc_header *h = stream_reader_libxc_header(rd);
            if (rec.layer == STREAM_LAYER_LIBXC && h && h->domain_type != STREAM_DOMAIN_X86_HVM) {
                tlog_error(log, "Remus: the image is of an x86 PV domain");
                rc = -EOPNOTSUPP;
                break;
            }
            continue;
        }
        bool end_of_epoch = rec.layer == STREAM_LAYER_LIBXL && rec.type == STREAM_LIBXL_CHECKPOINT_END;
        if (!committed) {
            /* The initial image and epoch 0: applied as they come. */
            if ((rc = apply_record(&s, &rec)))
                break;
            if (end_of_epoch) {
                if (!migration_restorer_have_context(s.r) ||
                    (!migration_restorer_have_devices(s.r) && domain_nr_virtio_devices(d))) {
                    tlog_error(log, "Remus: checkpoint 0 at offset %#" PRIx64 " lacks the %s", rec.offset,
                               migration_restorer_have_context(s.r) ? "device state" : "HVM context");
                    rc = -EINVAL;
                    break;
                }
                if ((rc = commit(&s, 0, sum)))
                    break;
                committed = true;
                epoch = 1;
                /* Before the first commit there were ssh's start-up, the
                 * initial disk copy, the precopy's first pass and epoch
                 * 0's pause, each of which may outlast an epoch's wait;
                 * from here on the primary sends at least an epoch per
                 * interval. */
                stream_reader_set_timeout(rd, timeout_ms);
            }
            if (rec.last)
                break;
            continue;
        }
        if (!in_epoch && rec.layer == STREAM_LAYER_LIBXC && rec.type == STREAM_LIBXC_END)
            continue;            /* protection stopped: libxl END follows */
        if (rec.last)
            break;               /* the clean end, after a whole epoch */
        in_epoch = true;
        if ((rc = hold(&s, &b, &rec)))
            break;
        if (!end_of_epoch)
            continue;
        /* A whole epoch, every record checked: now it may touch the replica. */
        if ((rc = check_epoch(&s, &b, epoch)))
            break;
        for (size_t i = 0; i < b.n && !rc; i++) {
            struct stream_record h = held(&b, i);
            rc = apply_record(&s, &h);
        }
        if (rc) {
            tlog_error(log, "Remus: epoch %" PRIu64 " failed half-applied: the replica is not consistent", epoch);
            rc = -EIO;
            committed = false;   /* nothing to fail over to */
            break;
        }
        if ((rc = commit(&s, epoch, sum)))
            break;
        b.n = b.len = 0;
        in_epoch = false;
        epoch++;
    }

out:
    if (!rc) {
        sum->why = 0;
        snprintf(sum->why_text, sizeof(sum->why_text), "the primary ended protection after epoch %" PRIu64,
                 sum->last_committed);
        rc = committed ? REMUS_SECONDARY_STOPPED : -EINVAL;
        if (!committed)
            tlog_error(log, "Remus: the stream ended before the first checkpoint");
    } else {
        sum->why = rc;
        if (rc == -ETIMEDOUT && first_timed_out)
            snprintf(sum->why_text, sizeof(sum->why_text), "no bytes from the primary for %u ms before its first "
                     "checkpoint (at byte %" PRIu64 ")", first_ms, rd ? stream_reader_offset(rd) : 0);
        else if (rc == -ETIMEDOUT)
            snprintf(sum->why_text, sizeof(sum->why_text), "no bytes from the primary for %u ms", timeout_ms);
        else if (rc == -EPIPE)
            snprintf(sum->why_text, sizeof(sum->why_text), "the stream ended (end of file) at byte %" PRIu64,
                     rd ? stream_reader_offset(rd) : 0);
        else
            snprintf(sum->why_text, sizeof(sum->why_text), "%s at byte %" PRIu64, strerror(-rc),
                     rd ? stream_reader_offset(rd) : 0);
        if (committed) {
            if (in_epoch)
                tlog_warn(log, "Remus: epoch %" PRIu64 " was incomplete (%zu records held): discarded", epoch, b.n);
            if (o->primary_alive && o->primary_alive(o->opaque)) {
                tlog_error(log, "Remus: the stream broke (%s) but the split-brain guard forbids a takeover "
                           "(the witness answers for the primary, or it could not be fenced)", sum->why_text);
                rc = REMUS_SECONDARY_PRIMARY_ALIVE;
            } else {
                tlog_info(log, "Remus: the primary is gone (%s): failing over to epoch %" PRIu64, sum->why_text,
                          sum->last_committed);
                rc = REMUS_SECONDARY_FAILOVER;
            }
        }
    }
    stream_reader_free(rd);
    stream_sink_free(s.ack);
    migration_restorer_free(s.r);
    free(b.recs);
    free(b.bytes);
    return rc;
}
