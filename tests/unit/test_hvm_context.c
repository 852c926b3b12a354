/* Domain state as Xen HVM records (xen/hvm_context.c, xen/cpu_policy.c),
 * on real KVM domains running the test guest: round trips, a running
 * guest copied into a second domain that must carry on, malformed blobs,
 * and CPUID/MSR policies this host cannot give.
 *
 * Needs /dev/kvm: without it the program prints "SKIP: no /dev/kvm" and
 * exits 77, automake's code for a skipped test.  The guest kernel is
 * $TANDEM_GUEST_KERNEL, else ../guests/tandem-guest relative to the
 * working directory (make check runs in <build>/tests/unit). */
#define __XEN_TOOLS__ 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <xen/xen.h>
#include <xen/hvm/save.h>
#include <xen/hvm/params.h>

#include "check_main.h"
#include "domain.h"
#include "hvm_context.h"
#include "rig_domain.h"
#include "rig_time.h"

/* ---- Logging ------------------------------------------------------------------ */

/* Keeps the last warning or error, and shows errors on stderr so a
 * failing test says why. */
struct test_log {
    struct tlog log;
    char last[1024];
    bool quiet;
};

static void test_log_fn(void *opaque, enum tlog_level level, const char *msg)
{
    struct test_log *t = opaque;
    if (level >= TLOG_WARN)
        snprintf(t->last, sizeof(t->last), "%s", msg);
    if (level >= TLOG_ERROR && !t->quiet)
        fprintf(stderr, "  [log] %s\n", msg);
}

static void test_log_init(struct test_log *t, bool quiet)
{
    memset(t, 0, sizeof(*t));
    t->log.fn = test_log_fn;
    t->log.opaque = t;
    t->log.min_level = TLOG_INFO;
    t->quiet = quiet;
}

/* ---- Status lines --------------------------------------------------------- */

struct status {
    bool ok;
    uint64_t seq, uptime_ms, ticks, cpus, verify_errors, ticks_all;
};

static struct status parse_status(const char *line)
{
    struct status s = { 0 };
    s.ok = !strncmp(line, "TANDEM-GUEST seq=", 17) && rig_kv(line, "seq", &s.seq) &&
           rig_kv(line, "uptime_ms", &s.uptime_ms) && rig_kv(line, "ticks", &s.ticks) &&
           rig_kv(line, "cpus", &s.cpus) && rig_kv(line, "verify_errors", &s.verify_errors) &&
           rig_kv(line, "ticks_all", &s.ticks_all);
    return s;
}

/* Calls fn for each complete status line in the console from `from` on. */
static unsigned for_each_status(struct rig_console *c, size_t from,
                                void (*fn)(void *, const char *, struct status), void *arg)
{
    char *copy = rig_console_lines(c, from);
    unsigned n = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct status s = parse_status(line);
        if (s.ok) {
            n++;
            if (fn)
                fn(arg, line, s);
        }
    }
    free(copy);
    return n;
}

static void keep_last(void *arg, const char *line, struct status s)
{
    (void)line;
    *(struct status *)arg = s;
}

static unsigned wait_status_lines(struct rig_console *c, size_t from, unsigned want, unsigned timeout_ms)
{
    unsigned n = 0;
    for (unsigned waited = 0; waited < timeout_ms; waited += 50) {
        n = for_each_status(c, from, NULL, NULL);
        if (n >= want)
            break;
        rig_sleep_ms(50);
    }
    return n;
}

/* ---- Blob surgery ----------------------------------------------------------- */

struct rec {
    struct hvm_save_descriptor desc;  /* may lie about the length */
    uint8_t *body;
    uint32_t size;                    /* bytes of body really there */
};

struct recs {
    struct rec r[512];
    unsigned n;
};

static void split(const uint8_t *blob, size_t len, struct recs *out)
{
    size_t off = 0;
    out->n = 0;
    while (off + sizeof(struct hvm_save_descriptor) <= len) {
        ck_assert_uint_lt(out->n, 512);
        struct rec *r = &out->r[out->n++];
        memcpy(&r->desc, blob + off, sizeof(r->desc));
        off += sizeof(r->desc);
        ck_assert_uint_le(r->desc.length, len - off);
        r->body = malloc(r->desc.length + 1);
        memcpy(r->body, blob + off, r->desc.length);
        r->size = r->desc.length;
        off += r->desc.length;
    }
    ck_assert_uint_eq(off, len);
}

static void recs_free(struct recs *rs)
{
    for (unsigned i = 0; i < rs->n; i++)
        free(rs->r[i].body);
    rs->n = 0;
}

static uint8_t *join(const struct recs *rs, size_t *len)
{
    size_t total = 0;
    for (unsigned i = 0; i < rs->n; i++)
        total += sizeof(struct hvm_save_descriptor) + rs->r[i].size;
    uint8_t *b = malloc(total + 1), *p = b;
    for (unsigned i = 0; i < rs->n; i++) {
        memcpy(p, &rs->r[i].desc, sizeof(rs->r[i].desc));
        p += sizeof(rs->r[i].desc);
        memcpy(p, rs->r[i].body, rs->r[i].size);
        p += rs->r[i].size;
    }
    *len = total;
    return b;
}

/* Keeps only Xen's records, as a blob from a tool that drops what it does
 * not know would. */
static uint8_t *strip_extensions(const uint8_t *blob, size_t len, size_t *out_len)
{
    struct recs rs, only;
    split(blob, len, &rs);
    only.n = 0;
    for (unsigned i = 0; i < rs.n; i++)
        if (rs.r[i].desc.typecode < TANDEM_HVM_EXT_FIRST)
            only.r[only.n++] = rs.r[i];
    uint8_t *b = join(&only, out_len);
    recs_free(&rs);
    return b;
}

static int find_rec(const struct recs *rs, unsigned code, unsigned inst)
{
    for (unsigned i = 0; i < rs->n; i++)
        if (rs->r[i].desc.typecode == code && rs->r[i].desc.instance == inst)
            return (int)i;
    return -1;
}

static void recs_copy(const struct recs *from, struct recs *to)
{
    to->n = from->n;
    for (unsigned i = 0; i < from->n; i++) {
        to->r[i].desc = from->r[i].desc;
        to->r[i].size = from->r[i].size;
        to->r[i].body = malloc(from->r[i].size + 1);
        memcpy(to->r[i].body, from->r[i].body, from->r[i].size);
    }
}

/* Zeroes what keeps moving while a domain sits paused: the TSC (CPU.tsc and
 * IA32_TSC in TANDEM_KVM_MSRS), kvmclock, and the LAPIC timer's current
 * count.  Returns the TSCs seen, for monotonicity checks. */
static void mask_live(uint8_t *blob, size_t len, uint64_t tsc[DOMAIN_MAX_VCPUS])
{
    size_t off = 0;
    while (off + 8 <= len) {
        struct hvm_save_descriptor d;
        memcpy(&d, blob + off, sizeof(d));
        uint8_t *b = blob + off + 8;
        if (d.typecode == 2) {
            if (tsc)
                memcpy(&tsc[d.instance], b + offsetof(struct hvm_hw_cpu, tsc), 8);
            memset(b + offsetof(struct hvm_hw_cpu, tsc), 0, 8);
        } else if (d.typecode == 6) {
            memset(b + 0x390, 0, 4); /* TMCCT */
        } else if (d.typecode == TANDEM_HVM_KVM_CLOCK) {
            /* The flags too: KVM reports whether its master clock is in
             * use, which a KVM_SET_CLOCK switches on. */
            memset(b + offsetof(struct tandem_hvm_kvm_clock, flags), 0, 28);
        } else if (d.typecode == TANDEM_HVM_KVM_MSRS) {
            uint32_t count;
            memcpy(&count, b + 4, 4);
            for (uint32_t i = 0; i < count; i++) {
                struct tandem_hvm_kvm_msr m;
                memcpy(&m, b + 8 + i * sizeof(m), sizeof(m));
                if (m.index == 0x10) {
                    if (tsc)
                        tsc[d.instance] = m.value;
                    m.value = 0;
                    memcpy(b + 8 + i * sizeof(m), &m, sizeof(m));
                }
            }
        }
        off += 8 + d.length;
    }
}

static void get_masked(struct domain *d, uint8_t **blob, size_t *len, uint64_t tsc[DOMAIN_MAX_VCPUS],
                       const struct tlog *log)
{
    int rc = domain_get_hvm_context(d, blob, len, log);
    ck_assert_msg(rc == 0, "domain_get_hvm_context: %s", strerror(-rc));
    mask_live(*blob, *len, tsc);
}

/* Which record differs first, for a readable failure. */
static void assert_same_blob(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, const char *what)
{
    if (alen == blen && !memcmp(a, b, alen))
        return;
    size_t off = 0;
    while (off + 8 <= alen && off + 8 <= blen) {
        struct hvm_save_descriptor da, db;
        memcpy(&da, a + off, 8);
        memcpy(&db, b + off, 8);
        if (memcmp(&da, &db, 8))
            ck_abort_msg("%s: descriptors differ at offset %zu (typecode %u/%u instance %u/%u length %u/%u)",
                         what, off, da.typecode, db.typecode, da.instance, db.instance, da.length, db.length);
        for (uint32_t i = 0; i < da.length; i++)
            if (a[off + 8 + i] != b[off + 8 + i])
                ck_abort_msg("%s: record typecode %#x instance %u differs at byte %u (%#x vs %#x)", what,
                             da.typecode, da.instance, i, a[off + 8 + i], b[off + 8 + i]);
        off += 8 + da.length;
    }
    ck_abort_msg("%s: blobs differ in length (%zu vs %zu)", what, alen, blen);
}

/* ---- (1) Round trips ---------------------------------------------------- */

static void roundtrip(unsigned vcpus, unsigned run_ms)
{
    struct test_log tl;
    test_log_init(&tl, false);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-rt", vcpus, false, "workload=verify wss=4", NULL, con, &tl.log);
    if (run_ms) {
        domain_unpause(d);
        rig_sleep_ms(run_ms);
        domain_pause(d);
    }
    uint8_t *b1, *b2;
    size_t l1, l2;
    uint64_t tsc1[DOMAIN_MAX_VCPUS] = { 0 }, tsc2[DOMAIN_MAX_VCPUS] = { 0 };
    int rc = domain_get_hvm_context(d, &b1, &l1, &tl.log);
    ck_assert_msg(rc == 0, "get: %s", tl.last);
    rc = domain_set_hvm_context(d, b1, l1, &tl.log);
    ck_assert_msg(rc == 0, "set: %s (%s)", strerror(-rc), tl.last);
    get_masked(d, &b2, &l2, tsc2, &tl.log);
    mask_live(b1, l1, tsc1);
    assert_same_blob(b1, l1, b2, l2, "get/set/get");
    for (unsigned i = 0; i < vcpus; i++)
        ck_assert_msg(tsc2[i] >= tsc1[i], "vcpu%u: TSC went back from %" PRIu64 " to %" PRIu64, i, tsc1[i],
                      tsc2[i]);
    printf("round trip (%u vCPU%s, %s): %zu-byte blob identical apart from the live clocks\n", vcpus,
           vcpus > 1 ? "s" : "", run_ms ? "after running" : "never run", l1);
    free(b1);
    free(b2);
    domain_destroy(d);
    free(con);
}

START_TEST(test_roundtrip_fresh)
{
    roundtrip(2, 0);
}
END_TEST

START_TEST(test_roundtrip_after_run)
{
    roundtrip(2, 1500);
}
END_TEST

/* The records a Tandem blob holds, by typecode and instance, as Xen's
 * tools would list them. */
START_TEST(test_blob_shape)
{
    struct test_log tl;
    test_log_init(&tl, false);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-shape", 2, false, "", NULL, con, &tl.log);
    uint8_t *b;
    size_t l;
    ck_assert_int_eq(domain_get_hvm_context(d, &b, &l, &tl.log), 0);
    struct recs rs;
    split(b, l, &rs);
    ck_assert_uint_eq(rs.r[0].desc.typecode, 1);
    ck_assert_uint_eq(rs.r[rs.n - 1].desc.typecode, 0);
    struct hvm_save_header h;
    memcpy(&h, rs.r[0].body, sizeof(h));
    ck_assert_uint_eq(h.magic, HVM_FILE_MAGIC);
    ck_assert_uint_eq(h.version, HVM_FILE_VERSION);
    ck_assert_uint_eq(h.gtsc_khz, d->tsc_khz);
    /* vCPU 0 runs (PVH entry); vCPU 1 waits for SIPI: no CPU record, as
     * Xen saves no CPU record for a vCPU that is down. */
    ck_assert_int_ge(find_rec(&rs, 2, 0), 0);
    ck_assert_int_lt(find_rec(&rs, 2, 1), 0);
    ck_assert_int_ge(find_rec(&rs, 16, 0), 0);
    for (unsigned v = 0; v < 2; v++) {
        ck_assert_int_ge(find_rec(&rs, 5, v), 0);
        ck_assert_int_ge(find_rec(&rs, 6, v), 0);
        ck_assert_int_ge(find_rec(&rs, 14, v), 0);
        ck_assert_int_ge(find_rec(&rs, TANDEM_HVM_KVM_VCPU, v), 0);
        ck_assert_int_ge(find_rec(&rs, TANDEM_HVM_KVM_MSRS, v), 0);
    }
    ck_assert_int_ge(find_rec(&rs, 3, 0), 0);
    ck_assert_int_ge(find_rec(&rs, 3, 1), 0);
    ck_assert_int_ge(find_rec(&rs, 4, 0), 0);
    ck_assert_int_ge(find_rec(&rs, 10, 0), 0);
    int k = find_rec(&rs, TANDEM_HVM_KVM_VCPU, 1);
    struct tandem_hvm_kvm_vcpu kv1;
    memcpy(&kv1, rs.r[k].body, sizeof(kv1));
    ck_assert_uint_eq(kv1.mp_state, KVM_MP_STATE_UNINITIALIZED);
    int c = find_rec(&rs, 2, 0);
    struct hvm_hw_cpu cpu;
    memcpy(&cpu, rs.r[c].body, sizeof(cpu));
    ck_assert_uint_eq(cpu.cr0 & 1, 1); /* PVH entry: protected mode */
    ck_assert_uint_eq(cpu.cs_sel, 0x10);
    ck_assert_uint_eq(cpu.cs_arbytes, 0xc9b); /* G, D, P, S, type 0xb */
    printf("blob of a fresh 2-vCPU domain: %u records:", rs.n);
    for (unsigned i = 0; i < rs.n; i++)
        printf(" %#x/%u", rs.r[i].desc.typecode, rs.r[i].desc.instance);
    printf("\n");
    recs_free(&rs);
    free(b);
    domain_destroy(d);
    free(con);
}
END_TEST

/* A blob with every Tandem extension stripped restores from Xen's records
 * alone, and the guest still runs. */
START_TEST(test_xen_records_only)
{
    struct test_log tl;
    test_log_init(&tl, false);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-xenonly", 1, false, "workload=idle", NULL, con, &tl.log);
    uint8_t *b;
    size_t l;
    ck_assert_int_eq(domain_get_hvm_context(d, &b, &l, &tl.log), 0);
    size_t ol;
    uint8_t *ob = strip_extensions(b, l, &ol);
    struct rig_console *con2 = rig_console_new();
    struct domain *d2 = rig_make_domain("hvm-xenonly2", 1, true, "", NULL, con2, &tl.log);
    struct domain_ram_region src[2], dst[2];
    unsigned n = domain_ram_regions(d, src);
    ck_assert_uint_eq(domain_ram_regions(d2, dst), n);
    for (unsigned i = 0; i < n; i++)
        memcpy(dst[i].host, src[i].host, src[i].size);
    int rc = domain_set_hvm_context(d2, ob, ol, &tl.log);
    ck_assert_msg(rc == 0, "Xen-records-only set: %s", tl.last);
    /* The fresh guest boots from the PVH entry state it was given. */
    domain_unpause(d2);
    unsigned lines = 0;
    for (unsigned w = 0; w < 20000 && !lines; w += 100) {
        pthread_mutex_lock(&con2->lock);
        lines = strstr(con2->buf, "TANDEM-GUEST start") != NULL;
        pthread_mutex_unlock(&con2->lock);
        rig_sleep_ms(100);
    }
    ck_assert_msg(lines, "the guest did not start from Xen records alone; console: %.400s; end: %s", con2->buf,
                  con2->end_reason);
    domain_pause(d2);
    printf("Xen-records-only restore of a fresh domain boots: %.80s\n", strstr(con2->buf, "TANDEM-GUEST start"));
    free(ob);
    free(b);
    domain_destroy(d2);
    domain_destroy(d);
    free(con);
    free(con2);
}
END_TEST

/* ---- (2) A running guest, copied into a second domain, carries on -------- */

static void print_line(void *arg, const char *line, struct status s)
{
    unsigned *left = arg;
    (void)s;
    if (*left) {
        printf("    %s\n", line);
        (*left)--;
    }
}

struct check_after {
    struct status before, last;
    unsigned n, bad;
    uint64_t ap_ticks_before;
    char why[256];
};

static void check_line_after(void *arg, const char *line, struct status s)
{
    struct check_after *c = arg;
    (void)line;
    c->n++;
    if (!c->bad) {
        const struct status *prev = c->n == 1 ? &c->before : &c->last;
        if (s.seq <= prev->seq || s.uptime_ms < prev->uptime_ms || s.ticks < prev->ticks ||
            s.verify_errors != 0 || s.cpus != c->before.cpus) {
            c->bad++;
            snprintf(c->why, sizeof(c->why), "line %u went wrong: %s", c->n, line);
        }
    }
    c->last = s;
}

static void continue_after_copy(unsigned vcpus, bool xen_only)
{
    struct test_log tl;
    test_log_init(&tl, false);
    struct rig_console *con = rig_console_new();
    struct domain *src = rig_make_domain("hvm-src", vcpus, false, "workload=verify wss=8", NULL, con, &tl.log);
    domain_unpause(src);
    /* Boot, the initial fill of the working set, then about a second of
     * status lines. */
    unsigned n = wait_status_lines(con, 0, 2, 30000);
    ck_assert_msg(n >= 2, "source guest printed %u status lines; console: %.600s; end: %s", n, con->buf,
                  con->end_reason);
    rig_sleep_ms(1000);
    domain_pause(src);

    struct status before = { 0 };
    for_each_status(con, 0, keep_last, &before);
    ck_assert(before.ok);
    ck_assert_uint_eq(before.cpus, vcpus);
    ck_assert_uint_eq(before.verify_errors, 0);

    uint8_t *ctx;
    size_t ctx_len;
    struct domain_tsc_info tsc;
    struct domain_hvm_param *params;
    unsigned n_params, n_leaves, n_msrs;
    struct domain_cpuid_leaf *leaves;
    struct domain_msr_entry *msrs;
    ck_assert_int_eq(domain_get_cpuid_policy(src, &leaves, &n_leaves, &tl.log), 0);
    ck_assert_int_eq(domain_get_msr_policy(src, &msrs, &n_msrs, &tl.log), 0);
    ck_assert_int_eq(domain_get_tsc_info(src, &tsc, &tl.log), 0);
    ck_assert_int_eq(domain_get_hvm_params(src, &params, &n_params, &tl.log), 0);
    int rc = domain_get_hvm_context(src, &ctx, &ctx_len, &tl.log);
    ck_assert_msg(rc == 0, "get: %s", tl.last);
    if (xen_only) {
        size_t l;
        uint8_t *x = strip_extensions(ctx, ctx_len, &l);
        free(ctx);
        ctx = x;
        ctx_len = l;
    }

    /* The destination, built as a restore target: same memory and vCPUs,
     * no kernel loaded, no entry state.  Order as a libxc stream: the
     * policies, memory, TSC info, params, HVM context. */
    struct rig_console *con2 = rig_console_new();
    struct domain *dst = rig_make_domain("hvm-dst", vcpus, true, "workload=verify wss=8", NULL, con2, &tl.log);
    rc = domain_set_cpuid_policy(dst, leaves, n_leaves, &tl.log);
    ck_assert_msg(rc == 0, "set CPUID policy: %s", tl.last);
    rc = domain_set_msr_policy(dst, msrs, n_msrs, &tl.log);
    ck_assert_msg(rc == 0, "set MSR policy: %s", tl.last);
    ck_assert_uint_eq(src->mem.nr_regions, dst->mem.nr_regions);
    for (unsigned i = 0; i < src->mem.nr_regions; i++) {
        ck_assert_uint_eq(src->mem.region[i].size, dst->mem.region[i].size);
        memcpy(dst->mem.region[i].host, src->mem.region[i].host, src->mem.region[i].size);
    }
    rc = domain_set_tsc_info(dst, &tsc, &tl.log);
    ck_assert_msg(rc == 0, "set TSC info: %s", tl.last);
    rc = domain_set_hvm_params(dst, params, n_params, &tl.log);
    ck_assert_msg(rc == 0, "set params: %s", tl.last);
    rc = domain_set_hvm_context(dst, ctx, ctx_len, &tl.log);
    ck_assert_msg(rc == 0, "set HVM context: %s (%s)", strerror(-rc), tl.last);
    /* The source is gone for good, as after a migration. */
    domain_destroy(src);

    domain_unpause(dst);
    unsigned after = wait_status_lines(con2, 0, 3, 15000);
    domain_pause(dst);
    struct check_after ca = { .before = before };
    for_each_status(con2, 0, check_line_after, &ca);
    printf("continue after copy (%u vCPU%s%s): source's last status line, then the copy's first:\n", vcpus,
           vcpus > 1 ? "s" : "", xen_only ? ", Xen records only" : "");
    {
        /* The source's last line, reprinted from its console. */
        pthread_mutex_lock(&con->lock);
        char *last = NULL;
        for (char *p = con->buf; (p = strstr(p, "TANDEM-GUEST seq=")); p++)
            last = p;
        if (last) {
            char *nl = strchr(last, '\n');
            printf("    src: %.*s\n", nl ? (int)(nl - last) : (int)strlen(last), last);
        }
        pthread_mutex_unlock(&con->lock);
    }
    unsigned three = 3;
    printf("    dst:\n");
    for_each_status(con2, 0, print_line, &three);
    ck_assert_msg(strstr(con2->buf, "TANDEM-GUEST boot") == NULL, "the copy rebooted: %.400s", con2->buf);
    ck_assert_msg(strstr(con2->buf, "panic") == NULL, "the copy panicked: %.600s", con2->buf);
    ck_assert_msg(after >= 3, "the copy printed %u status lines in 15 s; console: %.600s; end: %s", after,
                  con2->buf, con2->end_reason);
    ck_assert_msg(!ca.bad, "%s (before: seq=%" PRIu64 " uptime_ms=%" PRIu64 " ticks=%" PRIu64 ")", ca.why,
                  before.seq, before.uptime_ms, before.ticks);
    if (vcpus > 1) {
        /* The APs' timer ticks (all CPUs' minus the BSP's) kept coming. */
        ck_assert_msg(ca.last.ticks_all - ca.last.ticks > before.ticks_all - before.ticks,
                      "the APs took no timer ticks after the copy (%" PRIu64 " then %" PRIu64 ")",
                      before.ticks_all - before.ticks, ca.last.ticks_all - ca.last.ticks);
    }
    free(ctx);
    free(params);
    free(leaves);
    free(msrs);
    domain_destroy(dst);
    free(con);
    free(con2);
}

START_TEST(test_continue_after_copy_1)
{
    continue_after_copy(1, false);
}
END_TEST

START_TEST(test_continue_after_copy_2)
{
    continue_after_copy(2, false);
}
END_TEST

/* The same with every Tandem record stripped: KVM state rebuilt from
 * Xen's records alone. */
START_TEST(test_continue_after_copy_xen_only)
{
    continue_after_copy(2, true);
}
END_TEST

/* ---- (3) Malformed blobs ------------------------------------------------- */

struct mutation {
    const char *what;
    void (*fn)(struct recs *rs, unsigned nr_vcpus);
};

static struct rec *rec_at(struct recs *rs, unsigned code, unsigned inst)
{
    int i = find_rec(rs, code, inst);
    ck_assert_msg(i >= 0, "no record %#x/%u to mutate", code, inst);
    return &rs->r[i];
}

static void rec_delete(struct recs *rs, unsigned i)
{
    free(rs->r[i].body);
    memmove(&rs->r[i], &rs->r[i + 1], (rs->n - i - 1) * sizeof(rs->r[0]));
    rs->n--;
}

static void rec_insert(struct recs *rs, unsigned at, const struct rec *r)
{
    memmove(&rs->r[at + 1], &rs->r[at], (rs->n - at) * sizeof(rs->r[0]));
    rs->r[at].desc = r->desc;
    rs->r[at].size = r->size;
    rs->r[at].body = malloc(r->size + 1);
    memcpy(rs->r[at].body, r->body, r->size);
    rs->n++;
}

static void m_bad_typecode(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 10, 0)->desc.typecode = 0x55; }
static void m_typecode_21(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 10, 0)->desc.typecode = 21; }
static void m_tandem_unused(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_CLOCK, 0)->desc.typecode = 0x9f; }
static void m_cpu_short(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 2, 0)->desc.length -= 8; }
static void m_cpu_long(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, 2, 0);
    r->body = realloc(r->body, r->size + 8);
    memset(r->body + r->size, 0, 8);
    r->desc.length += 8;
    r->size += 8;
}
static void m_pic_long(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, 3, 1);
    r->body = realloc(r->body, r->size + 1);
    r->body[r->size] = 0;
    r->desc.length += 1;
    r->size += 1;
}
static void m_ext_vcpu_short(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_VCPU, 0)->desc.length -= 8; }
static void m_length_overrun(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 10, 0)->desc.length += 4096; }
static void m_cpu_instance(struct recs *rs, unsigned nv) { rec_at(rs, 2, 0)->desc.instance = (uint16_t)nv; }
static void m_lapic_instance(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 6, 0)->desc.instance = 64; }
static void m_pic_instance(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 3, 1)->desc.instance = 2; }
static void m_ioapic_instance(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 4, 0)->desc.instance = 1; }
static void m_irqchip_instance(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_IRQCHIP, 2)->desc.instance = 3; }
static void m_missing_end(struct recs *rs, unsigned nv) { (void)nv; rec_delete(rs, rs->n - 1); }
static void m_end_early(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec end = rs->r[rs->n - 1];
    end.body = (uint8_t *)"";
    end.size = 0;
    rec_insert(rs, (unsigned)find_rec(rs, 10, 0), &end);
}
static void m_end_length(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = &rs->r[rs->n - 1];
    r->body = realloc(r->body, 8);
    memset(r->body, 0, 8);
    r->desc.length = 8;
    r->size = 8;
}
static void m_duplicate_cpu(struct recs *rs, unsigned nv)
{
    (void)nv;
    int i = find_rec(rs, 2, 0);
    rec_insert(rs, (unsigned)i + 1, &rs->r[i]);
}
static void m_duplicate_ext(struct recs *rs, unsigned nv)
{
    (void)nv;
    int i = find_rec(rs, TANDEM_HVM_KVM_MSRS, 0);
    rec_insert(rs, (unsigned)i + 1, &rs->r[i]);
}
static void m_header_not_first(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec t = rs->r[0];
    rs->r[0] = rs->r[1];
    rs->r[1] = t;
}
static void m_no_header(struct recs *rs, unsigned nv) { (void)nv; rec_delete(rs, 0); }
static void m_header_magic(struct recs *rs, unsigned nv) { (void)nv; rs->r[0].body[0] ^= 1; }
static void m_header_version(struct recs *rs, unsigned nv) { (void)nv; rs->r[0].body[4] = 2; }
static void m_cpu_cr0(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, 2, 0);
    uint64_t cr0;
    memcpy(&cr0, r->body + offsetof(struct hvm_hw_cpu, cr0), 8);
    cr0 |= 1ULL << 40;
    memcpy(r->body + offsetof(struct hvm_hw_cpu, cr0), &cr0, 8);
}
static void m_cpu_pad(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, 2, 0)->body[offsetof(struct hvm_hw_cpu, pad0)] = 1; }
static void m_cpu_missing_but_running(struct recs *rs, unsigned nv)
{
    (void)nv;
    rec_delete(rs, (unsigned)find_rec(rs, 2, 0));
}
static void m_ext_version(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_VCPU, 0)->body[0] = 2; }
static void m_ext_mp_state(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_VCPU, 0)->body[8] = 7; }
static void m_msrs_count(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_MSRS, 0)->body[4] += 1; }
static void m_msrs_unsorted(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, TANDEM_HVM_KVM_MSRS, 0);
    uint32_t count;
    memcpy(&count, r->body + 4, 4);
    ck_assert_uint_ge(count, 2);
    uint8_t t[16];
    memcpy(t, r->body + 8, 16);
    memcpy(r->body + 8, r->body + 24, 16);
    memcpy(r->body + 24, t, 16);
}
static void m_msrs_wrong_home(struct recs *rs, unsigned nv)
{
    /* IA32_TSC belongs in vCPU 0's CPU record, not in the extension. */
    (void)nv;
    struct rec *r = rec_at(rs, TANDEM_HVM_KVM_MSRS, 0);
    struct tandem_hvm_kvm_msr m;
    memcpy(&m, r->body + 8, sizeof(m));
    m.index = 0x10;
    memcpy(r->body + 8, &m, sizeof(m));
}
static void m_cpu_msr_count(struct recs *rs, unsigned nv)
{
    (void)nv;
    /* A CPU_MSR whose count disagrees with its length. */
    struct rec r = { .desc = { .typecode = 20, .instance = 0, .length = 8 + 16 }, .size = 8 + 16 };
    uint8_t body[24] = { 2, 0, 0, 0 };
    r.body = body;
    rec_insert(rs, rs->n - 1, &r);
}
static void m_pic_master_flag(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, 3, 1);
    struct hvm_hw_vpic p;
    memcpy(&p, r->body, sizeof(p));
    p.is_master = 1;
    memcpy(r->body, &p, sizeof(p));
}
static void m_irqchip_tail(struct recs *rs, unsigned nv) { (void)nv; rec_at(rs, TANDEM_HVM_KVM_IRQCHIP, 0)->body[8 + 500] = 1; }
static void m_xsave_compacted(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, 16, 0);
    uint64_t bv = 1ULL << 63 | 3;
    memcpy(r->body + offsetof(struct hvm_hw_cpu_xsave, save_area.xsave_hdr.xcomp_bv), &bv, 8);
}
static void m_pit_mode(struct recs *rs, unsigned nv)
{
    (void)nv;
    struct rec *r = rec_at(rs, TANDEM_HVM_KVM_PIT, 0);
    r->body[8 + offsetof(struct kvm_pit_channel_state, mode)] = 9;
}

static const struct mutation mutations[] = {
    { "unknown typecode 0x55", m_bad_typecode },
    { "typecode 21 (undefined by Xen)", m_typecode_21 },
    { "unused Tandem typecode 0x9f", m_tandem_unused },
    { "CPU record 8 bytes short", m_cpu_short },
    { "CPU record 8 bytes long", m_cpu_long },
    { "PIC record 1 byte long", m_pic_long },
    { "TANDEM_KVM_VCPU 8 bytes short", m_ext_vcpu_short },
    { "length beyond the blob", m_length_overrun },
    { "CPU instance = nr_vcpus", m_cpu_instance },
    { "LAPIC_REGS instance 64", m_lapic_instance },
    { "PIC instance 2", m_pic_instance },
    { "IOAPIC instance 1", m_ioapic_instance },
    { "TANDEM_KVM_IRQCHIP instance 3", m_irqchip_instance },
    { "missing END", m_missing_end },
    { "END before the last record", m_end_early },
    { "END with a body", m_end_length },
    { "duplicate CPU record", m_duplicate_cpu },
    { "duplicate TANDEM_KVM_MSRS", m_duplicate_ext },
    { "HEADER not first", m_header_not_first },
    { "no HEADER", m_no_header },
    { "bad HEADER magic", m_header_magic },
    { "HEADER version 2", m_header_version },
    { "CR0 with a reserved bit", m_cpu_cr0 },
    { "CPU padding set", m_cpu_pad },
    { "running vCPU without a CPU record", m_cpu_missing_but_running },
    { "TANDEM_KVM_VCPU version 2", m_ext_version },
    { "MP state 7 (not x86)", m_ext_mp_state },
    { "TANDEM_KVM_MSRS count off by one", m_msrs_count },
    { "TANDEM_KVM_MSRS unsorted", m_msrs_unsorted },
    { "IA32_TSC in TANDEM_KVM_MSRS of a running vCPU", m_msrs_wrong_home },
    { "CPU_MSR count/length mismatch", m_cpu_msr_count },
    { "slave PIC claiming to be master", m_pic_master_flag },
    { "TANDEM_KVM_IRQCHIP bytes past the chip", m_irqchip_tail },
    { "compacted XSAVE", m_xsave_compacted },
    { "PIT channel mode 9", m_pit_mode },
};

START_TEST(test_malformed)
{
    struct test_log tl, quiet;
    test_log_init(&tl, false);
    test_log_init(&quiet, true);
    /* The blobs come from a guest that ran; the target is a fresh domain
     * whose state differs, so anything applied would show. */
    struct rig_console *con = rig_console_new(), *con2 = rig_console_new();
    struct domain *a = rig_make_domain("hvm-mal-a", 2, false, "workload=verify wss=4", NULL, con, &tl.log);
    domain_unpause(a);
    wait_status_lines(con, 0, 1, 30000);
    domain_pause(a);
    uint8_t *good;
    size_t good_len;
    ck_assert_int_eq(domain_get_hvm_context(a, &good, &good_len, &tl.log), 0);
    struct domain *b = rig_make_domain("hvm-mal-b", 2, true, "", NULL, con2, &tl.log);
    uint8_t *before, *after;
    size_t before_len, after_len;
    get_masked(b, &before, &before_len, NULL, &tl.log);

    /* Truncated at every offset. */
    unsigned rejected = 0;
    for (size_t cut = 0; cut < good_len; cut++) {
        int rc = domain_set_hvm_context(b, good, cut, &quiet.log);
        ck_assert_msg(rc == -EINVAL, "blob cut at %zu of %zu: rc %d (%s)", cut, good_len, rc, quiet.last);
        rejected++;
    }
    get_masked(b, &after, &after_len, NULL, &tl.log);
    assert_same_blob(before, before_len, after, after_len, "after truncated blobs");
    free(after);

    struct recs base;
    split(good, good_len, &base);
    for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
        struct recs rs;
        recs_copy(&base, &rs);
        mutations[i].fn(&rs, 2);
        size_t len;
        uint8_t *bad = join(&rs, &len);
        quiet.last[0] = 0;
        int rc = domain_set_hvm_context(b, bad, len, &quiet.log);
        ck_assert_msg(rc == -EINVAL, "%s: rc %d, want -EINVAL (log: %s)", mutations[i].what, rc, quiet.last);
        ck_assert_msg(quiet.last[0], "%s: rejected without a logged reason", mutations[i].what);
        printf("  rejected: %-48s -> %s\n", mutations[i].what, quiet.last);
        get_masked(b, &after, &after_len, NULL, &tl.log);
        assert_same_blob(before, before_len, after, after_len, mutations[i].what);
        free(after);
        free(bad);
        recs_free(&rs);
        rejected++;
    }
    /* The control: the unmodified blob is accepted and does change b. */
    int rc = domain_set_hvm_context(b, good, good_len, &tl.log);
    ck_assert_msg(rc == 0, "the good blob: %s", tl.last);
    get_masked(b, &after, &after_len, NULL, &tl.log);
    ck_assert_msg(after_len != before_len || memcmp(after, before, before_len),
                  "applying the good blob changed nothing: the checks above prove nothing");
    printf("malformed HVM contexts: %u rejected with -EINVAL, nothing applied\n", rejected);
    free(after);
    recs_free(&base);
    free(before);
    free(good);
    domain_destroy(b);
    domain_destroy(a);
    free(con);
    free(con2);
}
END_TEST

/* ---- (4) Policies ---------------------------------------------------------- */

static struct kvm_cpuid2 *host_supported_cpuid(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    struct kvm_cpuid2 *c = NULL;
    ck_assert_int_eq(hvm_supported_cpuid(fd, &c, NULL), 0);
    close(fd);
    return c;
}

START_TEST(test_cpuid_policy_missing_feature)
{
    struct test_log tl;
    test_log_init(&tl, true);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-cpuid", 2, true, "", NULL, con, &tl.log);
    struct domain_cpuid_leaf *l, *l2;
    unsigned n, n2;
    ck_assert_int_eq(domain_get_cpuid_policy(d, &l, &n, &tl.log), 0);
    ck_assert_uint_gt(n, 4);

    /* Its own policy goes back in. */
    int rc = domain_set_cpuid_policy(d, l, n, &tl.log);
    ck_assert_msg(rc == 0, "own policy: %s", tl.last);

    /* A leaf-7 feature this host cannot give: in neither KVM's supported
     * list nor what the domain's vCPUs got (hvm_cpuid_find's view). */
    int i7 = -1;
    for (unsigned i = 0; i < n; i++)
        if (l[i].leaf == 7 && l[i].subleaf == 0)
            i7 = (int)i;
    ck_assert_int_ge(i7, 0);
    struct kvm_cpuid2 *sup = host_supported_cpuid();
    const struct kvm_cpuid_entry2 *e7 = hvm_cpuid_find(sup, 7, 0);
    uint32_t have = (e7 ? e7->ebx : 0) | l[i7].b;
    static const unsigned candidates[] = { 16, 26, 27, 4, 11, 14, 2, 10 };
    static const char *const names[] = { "avx512f", "avx512pf", "avx512er", "hle", "rtm", "mpx", "sgx",
                                         "invpcid" };
    int pick = -1;
    for (unsigned i = 0; i < sizeof(candidates) / sizeof(candidates[0]) && pick < 0; i++)
        if (!(have & (1u << candidates[i])))
            pick = (int)i;
    free(sup);
    ck_assert_msg(pick >= 0, "this host has every candidate leaf-7 feature; pick another");
    struct domain_cpuid_leaf *bad = malloc(n * sizeof(*bad));
    memcpy(bad, l, n * sizeof(*bad));
    bad[i7].b |= 1u << candidates[pick];
    rc = domain_set_cpuid_policy(d, bad, n, &tl.log);
    ck_assert_int_eq(rc, -EOPNOTSUPP);
    char want[96];
    snprintf(want, sizeof(want), "leaf 0x7.0 EBX bit %u (%s)", candidates[pick], names[pick]);
    ck_assert_msg(strstr(tl.last, want), "message '%s' does not name '%s'", tl.last, want);
    printf("CPUID policy refused: %s\n", tl.last);

    /* Nothing changed. */
    ck_assert_int_eq(domain_get_cpuid_policy(d, &l2, &n2, &tl.log), 0);
    ck_assert_uint_eq(n2, n);
    ck_assert(!memcmp(l, l2, n * sizeof(*l)));

    /* Duplicates are malformed. */
    bad[1] = bad[0];
    ck_assert_int_eq(domain_set_cpuid_policy(d, bad, n, &tl.log), -EINVAL);

    /* vCPU 1 got its own APIC ID. */
    struct kvm_cpuid2 *c1 = calloc(1, sizeof(*c1) + 256 * sizeof(c1->entries[0]));
    c1->nent = 256;
    ck_assert_int_eq(ioctl(d->vcpus[1].fd, KVM_GET_CPUID2, c1), 0);
    const struct kvm_cpuid_entry2 *e1 = hvm_cpuid_find(c1, 1, 0);
    ck_assert_ptr_nonnull(e1);
    ck_assert_uint_eq(e1->ebx >> 24, 1);
    free(c1);
    free(bad);
    free(l);
    free(l2);
    domain_destroy(d);
    free(con);
}
END_TEST

START_TEST(test_msr_policy)
{
    struct test_log tl;
    test_log_init(&tl, true);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-msr", 1, true, "", NULL, con, &tl.log);
    struct domain_msr_entry *m;
    unsigned n;
    ck_assert_int_eq(domain_get_msr_policy(d, &m, &n, &tl.log), 0);
    int rc = domain_set_msr_policy(d, m, n, &tl.log);
    ck_assert_msg(rc == 0, "own MSR policy: %s", tl.last);
    printf("MSR policy:");
    for (unsigned i = 0; i < n; i++)
        printf(" %#x=%#" PRIx64, m[i].idx, m[i].val);
    printf("\n");
    for (unsigned i = 0; i < n; i++) {
        if (m[i].idx != 0x10a)
            continue;
        /* An ARCH_CAPABILITIES bit the host does not report. */
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } host = { .h = { .nmsrs = 1 }, .e = { .index = 0x10a } };
        ck_assert_int_eq(ioctl(fd, KVM_GET_MSRS, &host), 1);
        close(fd);
        unsigned bit = 0;
        while (bit < 32 && ((m[i].val | host.e.data) & (1ULL << bit)))
            bit++;
        struct domain_msr_entry *bad = malloc(n * sizeof(*bad));
        memcpy(bad, m, n * sizeof(*bad));
        bad[i].val |= 1ULL << bit;
        ck_assert_int_eq(domain_set_msr_policy(d, bad, n, &tl.log), -EOPNOTSUPP);
        char want[32];
        snprintf(want, sizeof(want), "MSR 0x10a bit %u", bit);
        ck_assert_msg(strstr(tl.last, want), "message '%s' does not name '%s'", tl.last, want);
        printf("MSR policy refused: %s\n", tl.last);
        bad[i].flags = 1;
        ck_assert_int_eq(domain_set_msr_policy(d, bad, n, &tl.log), -EINVAL);
        free(bad);
    }
    free(m);
    domain_destroy(d);
    free(con);
}
END_TEST

START_TEST(test_policy_after_run)
{
    struct test_log tl;
    test_log_init(&tl, true);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-ran", 1, false, "workload=idle", NULL, con, &tl.log);
    domain_unpause(d);
    rig_sleep_ms(300);
    domain_pause(d);
    struct domain_cpuid_leaf *l;
    unsigned n;
    ck_assert_int_eq(domain_get_cpuid_policy(d, &l, &n, &tl.log), 0);
    /* The same policy again is harmless; a different one is refused. */
    ck_assert_int_eq(domain_set_cpuid_policy(d, l, n, &tl.log), 0);
    for (unsigned i = 0; i < n; i++)
        if (l[i].leaf == 0x40000010)
            l[i].a += 1;
    ck_assert_int_eq(domain_set_cpuid_policy(d, l, n, &tl.log), -EBUSY);
    free(l);
    domain_destroy(d);
    free(con);
}
END_TEST

START_TEST(test_params_and_tsc)
{
    struct test_log tl;
    test_log_init(&tl, true);
    struct rig_console *con = rig_console_new();
    struct domain *d = rig_make_domain("hvm-params", 1, true, "", NULL, con, &tl.log);
    struct domain_hvm_param *p;
    unsigned n;
    ck_assert_int_eq(domain_get_hvm_params(d, &p, &n, &tl.log), 0);
    bool ident = false, tss = false;
    for (unsigned i = 0; i < n; i++) {
        ident |= p[i].index == HVM_PARAM_IDENT_PT && p[i].value == 0xfffbc000ULL;
        tss |= p[i].index == HVM_PARAM_VM86_TSS_SIZED && (p[i].value & 0xffffffffULL) == 0xfffbd000ULL;
    }
    ck_assert(ident && tss);
    ck_assert_int_eq(domain_set_hvm_params(d, p, n, &tl.log), 0);
    struct domain_hvm_param bad[] = { { HVM_PARAM_IDENT_PT, 0xfffbc010ULL } };
    ck_assert_int_eq(domain_set_hvm_params(d, bad, 1, &tl.log), -EINVAL);
    struct domain_hvm_param nested[] = { { HVM_PARAM_NESTEDHVM, 1 } };
    ck_assert_int_eq(domain_set_hvm_params(d, nested, 1, &tl.log), -EOPNOTSUPP);
    struct domain_hvm_param twice[] = { { HVM_PARAM_TIMER_MODE, 1 }, { HVM_PARAM_TIMER_MODE, 1 } };
    ck_assert_int_eq(domain_set_hvm_params(d, twice, 2, &tl.log), -EINVAL);
    struct domain_hvm_param unknown[] = { { HVM_NR_PARAMS, 0 } };
    ck_assert_int_eq(domain_set_hvm_params(d, unknown, 1, &tl.log), -EINVAL);

    struct domain_tsc_info t, t2;
    ck_assert_int_eq(domain_get_tsc_info(d, &t, &tl.log), 0);
    ck_assert_uint_eq(t.mode, 0);
    ck_assert_uint_eq(t.khz, d->tsc_khz);
    ck_assert_int_eq(domain_set_tsc_info(d, &t, &tl.log), 0);
    ck_assert_int_eq(domain_get_tsc_info(d, &t2, &tl.log), 0);
    ck_assert_uint_ge(t2.nsec, t.nsec);
    ck_assert_uint_lt(t2.nsec - t.nsec, 5000000000ULL);
    t2.mode = 1;
    ck_assert_int_eq(domain_set_tsc_info(d, &t2, &tl.log), -EOPNOTSUPP);

    /* Another frequency: scaled where KVM can, else a warning. */
    struct domain_tsc_info t3 = t;
    t3.khz = t.khz + 100000;
    tl.last[0] = 0;
    ck_assert_int_eq(domain_set_tsc_info(d, &t3, &tl.log), 0);
    int khz = ioctl(d->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
    ck_assert_msg((unsigned)khz == t3.khz || strstr(tl.last, "kHz"),
                  "TSC neither scaled to %u kHz (it runs at %d) nor warned about", t3.khz, khz);
    printf("TSC info at another frequency: %s\n", (unsigned)khz == t3.khz ? "scaled" : tl.last);
    free(p);
    domain_destroy(d);
    free(con);
}
END_TEST

Suite *unit_suite(void)
{
    /* Test output interleaves with Check's; forked tests must not lose it. */
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Skipping must be loud, never a quiet pass. */
    rig_require_kvm("test_hvm_context");
    rig_find_guest_kernel("test_hvm_context");

    Suite *s = suite_create("hvm_context");
    TCase *tc = tcase_create("kvm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_blob_shape);
    tcase_add_test(tc, test_roundtrip_fresh);
    tcase_add_test(tc, test_roundtrip_after_run);
    tcase_add_test(tc, test_xen_records_only);
    tcase_add_test(tc, test_continue_after_copy_1);
    tcase_add_test(tc, test_continue_after_copy_2);
    tcase_add_test(tc, test_continue_after_copy_xen_only);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_cpuid_policy_missing_feature);
    tcase_add_test(tc, test_msr_policy);
    tcase_add_test(tc, test_policy_after_run);
    tcase_add_test(tc, test_params_and_tsc);
    suite_add_tcase(s, tc);
    return s;
}
