/* Log-dirty harvesting cost: KVM's dirty ring against the dirty bitmap,
 * for 1, 8 and 64 GiB guests dirtying the same number of pages.
 *
 *   logdirty-cost [--kernel PATH] [--vcpus N] [--rate PAGES_PER_S]
 *                 [--harvests N] [--sizes GIB,GIB,...]
 *
 * For each size and mode it builds a domain in this process (xen/'s
 * domain_create, log_dirty fixed at creation as xl.cfg does), boots the
 * test guest with `workload=dirty wss=64 rate=RATE` (default 50000 pages
 * per second), waits for its second status line, turns log-dirty on, and
 * then harvests every 100 ms, timing each domain_logdirty_harvest() call
 * with CLOCK_MONOTONIC.  The guest memory is mapped NORESERVE and the guest
 * touches only its working set, so a 64 GiB guest costs the host what a
 * 1 GiB one does; what grows with size is what a harvest has to look at.
 * The default rate keeps every vCPU under its ring's 4096 entries per
 * harvest (2 vCPUs x 2500 pages per 100 ms): above that, full rings make
 * vCPUs empty them themselves, and that work escapes this timing (the
 * ring_full_exits figure says when it happens; try --rate 100000).
 *
 * Figures per size and mode (medians over the harvests after a first,
 * discarded one): harvest_us, pages per harvest (distinct pages set in the
 * bitmap the caller gets), ns per dirty page; the count the harvest itself
 * returned; the guest's own dirty_rate; the ring-full exits (ring mode:
 * each is a vCPU emptying its full ring itself, work this timing does not
 * see) and this process's RSS.  Then the
 * ratio bitmap/ring per size.  Built with the tree, never run by make
 * check (see README.md); run as root on a host with /dev/kvm. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "domain.h"          /* xen/, internal: domain_create */
#include "tandem/xen.h"
#include "guest-watch.h"

#ifndef BENCH_GUEST_KERNEL
#define BENCH_GUEST_KERNEL "tests/guests/tandem-guest"
#endif
#define HARVEST_PERIOD_NS 100000000LL
#define MAX_HARVESTS 1000
#define MAX_SIZES 8

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

static unsigned long long rss_mib(void)
{
    unsigned long long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (unsigned long long)sysconf(_SC_PAGESIZE) >> 20;
}

struct opts {
    const char *kernel;
    unsigned vcpus, harvests;
    unsigned long rate;
    unsigned sizes[MAX_SIZES], nr_sizes;
};

struct result {
    bool ok;
    double harvest_us, pages, ns_per_page, counted;
    unsigned long long dirty_rate, ring_full_exits, rss_mib, mem_mb_seen;
};

static struct result run_case(const struct opts *o, unsigned gib, enum domain_logdirty_mode mode,
                              const struct tlog *log)
{
    struct result r = { 0 };
    struct guest_watch w;
    guest_watch_init(&w, true);
    struct domain_config c;
    domain_config_init(&c);
    snprintf(c.name, sizeof(c.name), "ldc-%u-%s", gib, domain_logdirty_mode_name(mode));
    c.memory_mb = (uint64_t)gib * 1024;
    c.vcpus = o->vcpus;
    c.log_dirty = mode;
    snprintf(c.kernel, sizeof(c.kernel), "%s", o->kernel);
    snprintf(c.cmdline, sizeof(c.cmdline), "workload=dirty wss=64 rate=%lu", o->rate);

    struct domain *d = NULL;
    uint64_t *bitmap = NULL;
    double *us = calloc(o->harvests, sizeof(double)), *pages = calloc(o->harvests, sizeof(double)),
           *nspp = calloc(o->harvests, sizeof(double)), *counted = calloc(o->harvests, sizeof(double));
    char why[1024] = "";
    int rc = us && pages && nspp && counted ? 0 : -ENOMEM;
    if (!rc)
        rc = domain_create(&d, &c, false, NULL, guest_watch_end, guest_watch_console, &w, log);
    if (!rc && domain_logdirty_mode(d) != mode) {
        snprintf(why, sizeof(why), "asked for log_dirty=%s, got %s", domain_logdirty_mode_name(mode),
                 domain_logdirty_mode_name(domain_logdirty_mode(d)));
        rc = -EINVAL;
    }
    if (!rc && !(rc = domain_start_vcpus(d))) {
        domain_unpause(d);
        rc = guest_watch_wait_seq(&w, 2, 60, why, sizeof(why));
    }
    size_t words = rc ? 0 : domain_logdirty_bitmap_words(d);
    if (!rc && !(bitmap = calloc(words, sizeof(uint64_t))))
        rc = -ENOMEM;
    if (!rc)
        rc = domain_logdirty_start(d, log);
    uint64_t rings0 = rc ? 0 : domain_ring_full_exits(d);
    unsigned long long seq0 = w.seq;
    unsigned n = 0;
    if (!rc) {
        int64_t next = bench_now_ns() + HARVEST_PERIOD_NS;
        /* Harvest 0 takes what piled up since log-dirty went on; discarded. */
        for (unsigned i = 0; i <= o->harvests && !rc; i++) {
            bench_sleep_until(next);
            next += HARVEST_PERIOD_NS;
            uint64_t count = 0;
            int64_t t0 = bench_now_ns();
            rc = domain_logdirty_harvest(d, bitmap, &count);
            int64_t t1 = bench_now_ns();
            if (rc) {
                snprintf(why, sizeof(why), "domain_logdirty_harvest: %s", strerror(-rc));
                break;
            }
            /* The distinct pages the caller got (the count the harvest
             * returns is of ring entries in ring mode). */
            uint64_t distinct = 0;
            for (size_t k = 0; k < words; k++)
                distinct += (uint64_t)__builtin_popcountll(bitmap[k]);
            memset(bitmap, 0, words * sizeof(uint64_t));
            if (i == 0)
                continue;
            us[n] = (double)(t1 - t0) / 1e3;
            pages[n] = (double)distinct;
            counted[n] = (double)count;
            nspp[n] = distinct ? (double)(t1 - t0) / (double)distinct : 0;
            n++;
        }
        r.ring_full_exits = domain_ring_full_exits(d) - rings0;
        r.rss_mib = rss_mib();
        domain_logdirty_stop(d);
    }
    pthread_mutex_lock(&w.lock);
    r.dirty_rate = w.dirty_rate;
    r.mem_mb_seen = w.boot_mem_mb;
    bool new_lines = w.seq > seq0;
    if (!rc && w.problem[0])
        snprintf(why, sizeof(why), "%s", w.problem);
    pthread_mutex_unlock(&w.lock);
    if (!rc && !new_lines)
        snprintf(why, sizeof(why), "the guest printed no status line while it was harvested");
    if (!rc && n && !why[0]) {
        r.ok = true;
        r.harvest_us = median(us, n);
        r.pages = median(pages, n);
        r.ns_per_page = median(nspp, n);
        r.counted = median(counted, n);
    } else {
        fprintf(stderr, "logdirty-cost: %u GiB %s: %s\n", gib, domain_logdirty_mode_name(mode),
                why[0] ? why : strerror(-rc));
    }
    domain_destroy(d);
    free(bitmap);
    free(us);
    free(pages);
    free(nspp);
    free(counted);
    guest_watch_destroy(&w);
    return r;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: logdirty-cost [--kernel PATH] [--vcpus N] [--rate PAGES_PER_S] [--harvests N]\n"
               "                     [--sizes GIB,GIB,...]\n"
               "Dirty ring against dirty bitmap: harvest cost for guests of each size (default 1,8,64 GiB)\n"
               "dirtying the same pages (workload=dirty wss=64 rate=50000, 2 vCPUs, 30 harvests 100 ms\n"
               "apart).  Kernel default: %s\n", BENCH_GUEST_KERNEL);
}

int main(int argc, char **argv)
{
    struct opts o = { .kernel = BENCH_GUEST_KERNEL, .vcpus = 2, .harvests = 30, .rate = 50000,
                      .sizes = { 1, 8, 64 }, .nr_sizes = 3 };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },         { "kernel", required_argument, NULL, 'k' },
        { "vcpus", required_argument, NULL, 'v' },  { "rate", required_argument, NULL, 'r' },
        { "harvests", required_argument, NULL, 'n' }, { "sizes", required_argument, NULL, 's' },
        { 0 } };
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return 0;
        case 'k': o.kernel = optarg; break;
        case 'v':
            o.vcpus = (unsigned)strtoul(optarg, &end, 10);
            if (*end || !o.vcpus || o.vcpus > DOMAIN_MAX_VCPUS) goto bad;
            break;
        case 'r':
            o.rate = strtoul(optarg, &end, 10);
            if (*end || end == optarg) goto bad;
            break;
        case 'n':
            o.harvests = (unsigned)strtoul(optarg, &end, 10);
            if (*end || !o.harvests || o.harvests > MAX_HARVESTS) goto bad;
            break;
        case 's': {
            o.nr_sizes = 0;
            char *p = optarg;
            for (;;) {
                unsigned long g = strtoul(p, &end, 10);
                if (end == p || !g || g * 1024 > DOMAIN_MAX_MEMORY_MB || o.nr_sizes == MAX_SIZES) goto bad;
                o.sizes[o.nr_sizes++] = (unsigned)g;
                if (!*end) break;
                if (*end != ',') goto bad;
                p = end + 1;
            }
            break;
        }
        default: goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (access(o.kernel, R_OK) != 0) {
        fprintf(stderr, "logdirty-cost: kernel %s : %s (build first, or give --kernel)\n", o.kernel,
                strerror(errno));
        return 1;
    }
    static char prog[] = "logdirty-cost";
    struct tlog log = { .fn = bench_log_stderr, .opaque = prog, .min_level = TLOG_WARN };
    printf("# guest: workload=dirty wss=64 rate=%lu, %u vCPUs; %u harvests %lld ms apart; medians\n", o.rate,
           o.vcpus, o.harvests, HARVEST_PERIOD_NS / 1000000);
    int status = 0;
    for (unsigned s = 0; s < o.nr_sizes; s++) {
        struct result res[2];
        enum domain_logdirty_mode modes[2] = { DOMAIN_LOGDIRTY_RING, DOMAIN_LOGDIRTY_BITMAP };
        for (unsigned m = 0; m < 2; m++) {
            res[m] = run_case(&o, o.sizes[s], modes[m], &log);
            if (!res[m].ok) {
                status = 1;
                printf("%-7s %2u GiB  failed (see stderr)\n", domain_logdirty_mode_name(modes[m]), o.sizes[s]);
                continue;
            }
            printf("%-7s %2u GiB  harvest_us=%.1f pages=%.0f ns_per_page=%.1f  (count returned %.0f; guest mem_mb=%llu "
                   "dirty_rate=%llu; ring_full_exits=%llu; rss_mib=%llu)\n",
                   domain_logdirty_mode_name(modes[m]), o.sizes[s], res[m].harvest_us, res[m].pages,
                   res[m].ns_per_page, res[m].counted, res[m].mem_mb_seen, res[m].dirty_rate,
                   res[m].ring_full_exits, res[m].rss_mib);
            fflush(stdout);
        }
        if (res[0].ok && res[1].ok)
            printf("ratio   %2u GiB  bitmap/ring harvest=%.2f ns_per_page=%.2f\n", o.sizes[s],
                   res[0].harvest_us > 0 ? res[1].harvest_us / res[0].harvest_us : 0,
                   res[0].ns_per_page > 0 ? res[1].ns_per_page / res[0].ns_per_page : 0);
        fflush(stdout);
    }
    return status;
bad:
    usage(stderr);
    return 2;
}
