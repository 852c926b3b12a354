/* Dirty-ring soundness check: does every guest write show up in a harvest?
 *
 *   dirty-ring-check [--kernel PATH] [--vcpus N] [--memory MIB] [--wss MIB]
 *                    [--rate PAGES_PER_S] [--interval MS] [--epochs N]
 *                    [--log-dirty ring|bitmap]
 *
 * Builds a domain in this process (xen/'s domain_create), boots the test
 * guest with `workload=dirty wss=WSS rate=RATE`, and does what a Remus
 * primary does, without Remus: every INTERVAL ms it pauses the domain,
 * harvests (domain_logdirty_harvest), copies the harvested pages into a shadow copy of guest RAM, and unpauses.  After
 * each such paused copy the whole of guest RAM must equal the shadow: a
 * page that differs was written without being reported, i.e. a lost dirty
 * page.  It is counted, re-copied (so each loss is counted once) and
 * reported with its guest-physical address.
 *
 * The defaults make the vCPU's ring fill between pauses (wss 32 MiB =
 * 8192 pages > the 4096-entry ring, rate 0 = unpaced), so ring-full exits,
 * which harvest and reset on the vCPU's own thread, race with the pause's
 * kick signal: the case that lost pages under Remus (a reset interrupted
 * by a signal; see reset_rings).  Before that fix, about half the runs of
 * 100 epochs lost pages.
 *
 * Prints one line per epoch with losses and a summary line
 *   lost_pages=N epochs_with_loss=E epochs=... ring_full_exits=...
 * exit 0 when nothing was lost, 1 when something was, 2 on bad usage, 3 on
 * a setup failure.  Run as root on a host with /dev/kvm; built with the
 * tree, never run by make check. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "domain.h"          /* xen/, internal: domain_create, guest memory */
#include "tandem/xen.h"
#include "guest-watch.h"

#ifndef BENCH_GUEST_KERNEL
#define BENCH_GUEST_KERNEL "tests/guests/tandem-guest"
#endif

struct opts {
    const char *kernel;
    unsigned vcpus, memory_mb, wss_mb, interval_ms, epochs;
    unsigned long rate;
    enum domain_logdirty_mode mode;
};

/* Copies the pages set in `bitmap` from guest RAM into the shadow. */
static void copy_dirty(struct domain *d, uint8_t **shadow, const uint64_t *bitmap, size_t words)
{
    for (unsigned r = 0; r < d->mem.nr_regions; r++) {
        const struct guest_region *g = &d->mem.region[r];
        uint64_t first = g->gpa / GUEST_PAGE_SIZE, n = g->size / GUEST_PAGE_SIZE;
        for (uint64_t p = 0; p < n; p++) {
            uint64_t pfn = first + p;
            if (pfn / 64 < words && (bitmap[pfn / 64] >> (pfn % 64) & 1))
                memcpy(shadow[r] + p * GUEST_PAGE_SIZE, g->host + p * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE);
        }
    }
}

/* Every page of guest RAM that differs from the shadow was written and not
 * reported; re-syncs each so it is counted once.  Returns how many. */
static uint64_t compare_all(struct domain *d, uint8_t **shadow, unsigned epoch, unsigned *printed)
{
    uint64_t lost = 0;
    for (unsigned r = 0; r < d->mem.nr_regions; r++) {
        const struct guest_region *g = &d->mem.region[r];
        for (uint64_t off = 0; off < g->size; off += GUEST_PAGE_SIZE) {
            if (memcmp(shadow[r] + off, g->host + off, GUEST_PAGE_SIZE) == 0)
                continue;
            if (*printed < 40) {
                printf("epoch %u: lost gpa %#" PRIx64 "\n", epoch, g->gpa + off);
                (*printed)++;
            }
            memcpy(shadow[r] + off, g->host + off, GUEST_PAGE_SIZE);
            lost++;
        }
    }
    return lost;
}

static int run(const struct opts *o, const struct tlog *log)
{
    struct guest_watch w;
    /* Only a panic or the domain's end fails the run: a guest warning does
     * not make the comparison of RAM with the shadow wrong. */
    guest_watch_init(&w, false);
    struct domain_config c;
    domain_config_init(&c);
    snprintf(c.name, sizeof(c.name), "dirty-ring-check");
    c.memory_mb = o->memory_mb;
    c.vcpus = o->vcpus;
    c.log_dirty = o->mode;
    snprintf(c.kernel, sizeof(c.kernel), "%s", o->kernel);
    snprintf(c.cmdline, sizeof(c.cmdline), "workload=dirty wss=%u rate=%lu", o->wss_mb, o->rate);

    struct domain *d = NULL;
    uint8_t *shadow[2] = { NULL, NULL };
    uint64_t *bitmap = NULL;
    int rc = domain_create(&d, &c, false, NULL, guest_watch_end, guest_watch_console, &w, log);
    if (rc) {
        fprintf(stderr, "dirty-ring-check: domain_create: %s\n", strerror(-rc));
        return 3;
    }
    if (domain_logdirty_mode(d) != o->mode) {
        fprintf(stderr, "dirty-ring-check: asked for log_dirty=%s, got %s\n", domain_logdirty_mode_name(o->mode),
                domain_logdirty_mode_name(domain_logdirty_mode(d)));
        domain_destroy(d);
        return 3;
    }
    int status = 3;
    if ((rc = domain_start_vcpus(d)))
        goto out;
    domain_unpause(d);
    if ((rc = guest_watch_wait_seq(&w, 2, 60, NULL, 0))) {
        fprintf(stderr, "dirty-ring-check: the guest did not start: %s\n", w.problem[0] ? w.problem : strerror(-rc));
        goto out;
    }
    size_t words = domain_logdirty_bitmap_words(d);
    bitmap = calloc(words, sizeof(uint64_t));
    for (unsigned r = 0; r < d->mem.nr_regions; r++)
        shadow[r] = malloc(d->mem.region[r].size);
    if (!bitmap || !shadow[0] || (d->mem.nr_regions > 1 && !shadow[1])) {
        fprintf(stderr, "dirty-ring-check: out of memory\n");
        goto out;
    }
    /* The shadow starts as a full copy taken with log-dirty on and the
     * guest paused, as a Remus epoch 0 or a precopy's first pass. */
    domain_pause(d);
    rc = domain_logdirty_start(d, log);
    if (!rc)
        rc = domain_logdirty_harvest(d, bitmap, NULL);
    if (rc) {
        fprintf(stderr, "dirty-ring-check: log-dirty: %s\n", strerror(-rc));
        domain_unpause(d);
        goto out;
    }
    for (unsigned r = 0; r < d->mem.nr_regions; r++)
        memcpy(shadow[r], d->mem.region[r].host, d->mem.region[r].size);
    memset(bitmap, 0, words * sizeof(uint64_t));
    uint64_t rings0 = domain_ring_full_exits(d), lost = 0, harvested = 0;
    unsigned bad_epochs = 0, printed = 0, first_bad = 0;
    int64_t pause_ns = 0;
    for (unsigned e = 1; e <= o->epochs; e++) {
        domain_unpause(d);
        bench_sleep_ms(o->interval_ms);
        int64_t t0 = bench_now_ns();
        domain_pause(d);
        uint64_t count = 0;
        rc = domain_logdirty_harvest(d, bitmap, &count);
        pause_ns += bench_now_ns() - t0;
        if (rc) {
            fprintf(stderr, "dirty-ring-check: epoch %u: %s\n", e, strerror(-rc));
            domain_unpause(d);
            goto out;
        }
        harvested += count;
        copy_dirty(d, shadow, bitmap, words);
        memset(bitmap, 0, words * sizeof(uint64_t));
        uint64_t n = compare_all(d, shadow, e, &printed);
        if (n) {
            if (!bad_epochs)
                first_bad = e;
            bad_epochs++;
            lost += n;
        }
    }
    uint64_t rings = domain_ring_full_exits(d) - rings0;
    domain_logdirty_stop(d);
    domain_unpause(d);
    pthread_mutex_lock(&w.lock);
    bool guest_ok = !w.problem[0];
    pthread_mutex_unlock(&w.lock);
    printf("lost_pages=%" PRIu64 " epochs_with_loss=%u first_loss_epoch=%u epochs=%u interval_ms=%u "
           "log_dirty=%s ring_full_exits=%" PRIu64 " harvested=%" PRIu64 " harvest_pause_us_avg=%.0f vcpus=%u "
           "wss_mb=%u rate=%lu\n",
           lost, bad_epochs, first_bad, o->epochs, o->interval_ms,
           domain_logdirty_mode_name(o->mode), rings, harvested,
           o->epochs ? (double)pause_ns / 1e3 / o->epochs : 0.0, o->vcpus, o->wss_mb, o->rate);
    if (!guest_ok)
        fprintf(stderr, "dirty-ring-check: the guest reported: %s\n", w.problem);
    status = !guest_ok ? 3 : lost ? 1 : 0;
out:
    domain_destroy(d);
    free(bitmap);
    free(shadow[0]);
    free(shadow[1]);
    guest_watch_destroy(&w);
    return status;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dirty-ring-check [--kernel PATH] [--vcpus N] [--memory MIB] [--wss MIB]\n"
               "                        [--rate PAGES_PER_S] [--interval MS] [--epochs N]\n"
               "                        [--log-dirty ring|bitmap]\n"
               "Pauses, harvests and copies like a Remus primary; counts guest writes no harvest reported.\n"
               "Defaults: 1 vCPU, 128 MiB, wss 32, rate 0 (unpaced), interval 50 ms, 100 epochs, ring.\n"
               "Kernel default: %s\n", BENCH_GUEST_KERNEL);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct opts o = { .kernel = BENCH_GUEST_KERNEL, .vcpus = 1, .memory_mb = 128, .wss_mb = 32,
                      .interval_ms = 50, .epochs = 100, .rate = 0, .mode = DOMAIN_LOGDIRTY_RING };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },          { "kernel", required_argument, NULL, 'k' },
        { "vcpus", required_argument, NULL, 'v' },   { "memory", required_argument, NULL, 'm' },
        { "wss", required_argument, NULL, 'w' },     { "rate", required_argument, NULL, 'r' },
        { "interval", required_argument, NULL, 'i' }, { "epochs", required_argument, NULL, 'n' },
        { "log-dirty", required_argument, NULL, 'l' },
        { 0 } };
    int opt;
    unsigned long v;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return 0;
        case 'k': o.kernel = optarg; break;
        case 'v': if (!parse_uint(optarg, DOMAIN_MAX_VCPUS, &v) || !v) goto bad; o.vcpus = (unsigned)v; break;
        case 'm': if (!parse_uint(optarg, 65536, &v) || v < 16) goto bad; o.memory_mb = (unsigned)v; break;
        case 'w': if (!parse_uint(optarg, 65536, &v) || !v) goto bad; o.wss_mb = (unsigned)v; break;
        case 'r': if (!parse_uint(optarg, 1ul << 32, &v)) goto bad; o.rate = v; break;
        case 'i': if (!parse_uint(optarg, 60000, &v) || !v) goto bad; o.interval_ms = (unsigned)v; break;
        case 'n': if (!parse_uint(optarg, 1000000, &v) || !v) goto bad; o.epochs = (unsigned)v; break;
        case 'l':
            if (domain_logdirty_mode_parse(optarg, &o.mode) || o.mode == DOMAIN_LOGDIRTY_AUTO) {
                fprintf(stderr, "dirty-ring-check: --log-dirty: ring or bitmap, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        default: goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (o.wss_mb >= o.memory_mb) {
        fprintf(stderr, "dirty-ring-check: --wss (%u MiB) must be below --memory (%u MiB)\n", o.wss_mb, o.memory_mb);
        return 2;
    }
    if (access(o.kernel, R_OK) != 0) {
        fprintf(stderr, "dirty-ring-check: kernel %s: %s (build first, or give --kernel)\n", o.kernel, strerror(errno));
        return 3;
    }
    static char prog[] = "dirty-ring-check";
    struct tlog log = { .fn = bench_log_stderr, .opaque = prog, .min_level = TLOG_WARN };
    return run(&o, &log);
bad:
    usage(stderr);
    return 2;
}
