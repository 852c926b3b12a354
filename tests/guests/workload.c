/*
 * tandem-guest: workloads and status lines.
 *
 * Everything here runs in ring 3 (see cpu_load_tables() for why); ring 0
 * is reached only through syscall2().  Every CPU runs the same workload
 * on its own share of the pages, so no locks are needed on the hot path.
 * Each loop iteration calls poll(), which records progress (for gap
 * measurement) and, on the BSP, prints the status line when one is due.
 * Status lines come from this loop, never from the timer interrupt, so
 * printing can take a lock.
 */
#include "guest.h"
#include "virtio.h"

volatile uint64_t workload_go;

static struct region region;		/* dirty / verify pages */
static volatile uint64_t *gen_table;	/* verify: expected generation */
static uint64_t wss_mb_used;
static uint64_t workload_start_tsc;

/* ---------------------------------------------------------------- */
/* Status lines (BSP only) */

static uint64_t report_seq;
static uint64_t next_report_tick;
static uint64_t last_report_tsc;
static uint64_t last_report_work;
static uint64_t last_nmis;

static void cpuid_report(uint64_t seq);

static void report(uint64_t now)
{
	uint64_t ticks_all = 0, work = 0, verified = 0, errors = 0;
	uint64_t max_gap = 0, period_gap = 0, nmis = 0, passes = 0, filled = 0;
	uint64_t unexpected = 0;
	unsigned online = 0;

	for (unsigned i = 0; i < MAX_CPUS; i++) {
		struct cpu *c = &cpus[i];
		if (!c->online)
			continue;
		online++;
		ticks_all += c->ticks;
		work += c->work;
		verified += c->verified;
		errors += c->verify_errors;
		passes += c->full_passes;
		filled += c->filled;
		nmis += c->nmis;
		unexpected += c->unexpected_irqs;
		if (c->max_gap > max_gap)
			max_gap = c->max_gap;
		/* Take-and-reset, so each period starts from zero even
		 * while the owning CPU keeps raising it. */
		uint64_t pg = atomic_xchg(&c->period_gap, 0);
		if (pg > period_gap)
			period_gap = pg;
	}

	uint64_t elapsed = now > last_report_tsc ? now - last_report_tsc : 0;
	uint64_t elapsed_us = tsc_to_us(elapsed);
	char line[1024];
	int n = snprintk(line, sizeof(line),
			 "TANDEM-GUEST seq=%lu uptime_ms=%lu ticks=%lu workload=%s "
			 "cpus=%u verify_errors=%lu max_gap_us=%lu last_gap_us=%lu",
			 ++report_seq, tsc_to_ms(now - tsc_boot), cpus[0].ticks,
			 cfg.workload_name, online, errors, tsc_to_us(max_gap),
			 tsc_to_us(period_gap));
	const size_t room = sizeof(line) - (size_t)n;
	char *tail = line + n;

	switch (cfg.workload) {
	case WL_DIRTY: {
		/* Pages per second over this report period. */
		uint64_t d = work - last_report_work;
		uint64_t rate = elapsed_us ? d * 1000000 / elapsed_us : 0;
		snprintk(tail, room, " wss_mb=%lu rate=%lu dirtied=%lu dirty_rate=%lu",
			 wss_mb_used, cfg.rate, work, rate);
		break;
	}
	case WL_VERIFY:
		snprintk(tail, room, " wss_mb=%lu gen=%lu verified=%lu full_passes=%lu "
			 "filled=%lu", wss_mb_used, work, verified, passes, filled);
		break;
	case WL_CPUHOG:
		snprintk(tail, room, " loops=%lu", work);
		break;
	case WL_KV:
		kv_report(tail, room);
		break;
	case WL_DISKLOG:
		disklog_report(tail, room);
		break;
	case WL_VIRTIO_HOSTILE:
		hostile_report(tail, room);
		break;
	default:
		tail[0] = '\0';
		break;
	}
	printk("%s ticks_all=%lu unexpected_irqs=%lu\n", line, ticks_all,
	       unexpected);
	if (nmis != last_nmis) {
		printk("TANDEM-GUEST nmi count=%lu\n", nmis);
		last_nmis = nmis;
	}
	if (cfg.workload == WL_CPUID)
		cpuid_report(report_seq);
	last_report_work = work;
}

static void __attribute__((noinline)) maybe_report(struct cpu *c)
{
	uint64_t now = rdtsc();

	/* Due when a second's worth of ticks arrived, or a second of TSC
	 * passed (so a dead timer still cannot silence us).  A TSC that
	 * went backwards counts as due, and resets the reference. */
	if (c->ticks < next_report_tick && now >= last_report_tsc &&
	    now - last_report_tsc < tsc_khz * 1000)
		return;
	report(now);
	next_report_tick = c->ticks + cfg.hz;
	last_report_tsc = now;
}

static inline void poll(struct cpu *c)
{
	progress(c);
	if (panicked)
		halt_forever();
	if (c->index == 0)
		maybe_report(c);
}

void workload_poll(struct cpu *c)
{
	poll(c);
}

/* ---------------------------------------------------------------- */
/* Helpers */

static inline uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static uint64_t deadline_after(uint64_t ms)
{
	return workload_start_tsc + ms_to_tsc(ms);
}

static void __attribute__((noreturn)) run_idle(struct cpu *c)
{
	for (;;) {
		safe_halt();
		poll(c);
	}
}

void workload_idle(struct cpu *c)
{
	run_idle(c);
}

/* Idle until `ms` after the workload started. */
static void idle_until(struct cpu *c, uint64_t ms)
{
	uint64_t deadline = deadline_after(ms);
	while (rdtsc() < deadline) {
		safe_halt();
		poll(c);
	}
}

/* ---------------------------------------------------------------- */
/* dirty: one 8-byte store per page, page after page, paced by TSC. */

static void __attribute__((noreturn)) run_dirty(struct cpu *c)
{
	const uint64_t hz = tsc_khz * 1000;
	const uint64_t tick = hz / cfg.hz;
	const uint64_t rate = c->rate;
	/* Pace with an integer step plus a remainder accumulator, so the
	 * long-run rate is exact without any division in the loop. */
	const uint64_t step = rate ? hz / rate : 0;
	const uint64_t step_rem = rate ? hz % rate : 0;
	uint64_t acc = 0, next = rdtsc(), i = 0;

	if (!c->npages)
		run_idle(c);
	for (;;) {
		if (rate) {
			uint64_t now = rdtsc();
			if (now < next && next - now > step + hz) {
				/* More than a step and a second ahead: the TSC
				 * went back (a restore on a host whose TSC the
				 * guest cannot be shielded from: nested PVM
				 * runs ring 3 on the host's TSC).  Start afresh. */
				next = now;
			}
			if (now < next) {
				/* Ahead of schedule: sleep through long waits,
				 * spin through short ones. */
				if (next - now > tick)
					safe_halt();
				else
					cpu_relax();
				poll(c);
				continue;
			}
			/* Far behind (we were paused or migrated): start
			 * afresh instead of bursting to catch up. */
			if (now - next > hz / 20)
				next = now;
			next += step;
			acc += step_rem;
			if (acc >= rate) {
				acc -= rate;
				next++;
			}
		}
		volatile uint64_t *p = region_page(&region, c->first_page + i);
		uint64_t w = c->work + 1;
		*p = w;
		c->work = w;
		if (++i == c->npages)
			i = 0;
		poll(c);
	}
}

/* ---------------------------------------------------------------- */
/* verify: self-checking pages.
 *
 * Page layout (512 words): [0] page number, [1] generation,
 * [2] checksum over words 0, 1 and 3..511, [3..511] a pattern that is a
 * pure function of (page, generation).  gen_table[page] says which
 * generation the page must hold; it lives outside the region.
 */

#define PAGE_WORDS 512
#define W_PAGE 0
#define W_GEN 1
#define W_SUM 2
#define W_DATA 3

static inline uint64_t pattern_seed(uint64_t page, uint64_t gen)
{
	return mix64(page * 0x9e3779b97f4a7c15ULL + gen + 1) | 1;
}

static inline uint64_t sum_step(uint64_t s, uint64_t w)
{
	return ((s << 7) | (s >> 57)) ^ w;
}

static inline uint64_t sum_final(uint64_t s)
{
	return mix64(s);
}

static void write_page(volatile uint64_t *p, uint64_t page, uint64_t gen)
{
	uint64_t x = pattern_seed(page, gen);
	uint64_t s = sum_step(sum_step(0, page), gen);

	for (unsigned i = W_DATA; i < PAGE_WORDS; i++) {
		x = xorshift(x);
		p[i] = x;
		s = sum_step(s, x);
	}
	p[W_PAGE] = page;
	p[W_GEN] = gen;
	p[W_SUM] = sum_final(s);
}

enum verdict {
	V_OK,
	V_PAGE,		/* word 0 is another page's number */
	V_STALE,	/* older generation than the table: a lost write */
	V_FUTURE,	/* newer than the table: the table page was lost */
	V_PATTERN,	/* a data word differs from the expected pattern */
	V_CHECKSUM,	/* data fine, stored checksum wrong */
};

static const char *const verdict_names[] = {
	"ok", "page_number", "stale_generation", "future_generation",
	"pattern", "checksum",
};

static enum verdict check_page(const volatile uint64_t *p, uint64_t page,
			       uint64_t gen, uint64_t *found_gen,
			       unsigned *bad_word)
{
	uint64_t w_page = p[W_PAGE];

	*found_gen = p[W_GEN];
	*bad_word = 0;
	if (w_page != page)
		return V_PAGE;
	if (*found_gen != gen)
		return *found_gen < gen ? V_STALE : V_FUTURE;

	uint64_t x = pattern_seed(page, gen);
	uint64_t s = sum_step(sum_step(0, w_page), *found_gen);
	unsigned first_bad = 0;
	for (unsigned i = W_DATA; i < PAGE_WORDS; i++) {
		uint64_t w = p[i];
		x = xorshift(x);
		if (w != x && !first_bad)
			first_bad = i;
		s = sum_step(s, w);
	}
	if (first_bad) {
		*bad_word = first_bad;
		return V_PATTERN;
	}
	if (sum_final(s) != p[W_SUM]) {
		*bad_word = W_SUM;
		return V_CHECKSUM;
	}
	return V_OK;
}

/* At most this many detail lines per second across all CPUs; the
 * counter in the status line still counts every error. */
#define ERR_LINES_PER_SEC 5
static struct spinlock err_lock;
static uint64_t err_window_tsc, err_lines;

static void verify_error(struct cpu *c, uint64_t page, volatile uint64_t *p,
			 enum verdict v, uint64_t expected, uint64_t found,
			 unsigned word)
{
	uint64_t now = rdtsc();
	bool print;

	c->verify_errors++;
	spin_lock(&err_lock);
	if (now - err_window_tsc >= tsc_khz * 1000) {
		err_window_tsc = now;
		err_lines = 0;
	}
	print = err_lines < ERR_LINES_PER_SEC;
	if (print)
		err_lines++;
	spin_unlock(&err_lock);
	if (print)
		printk("TANDEM-GUEST verify_error page=%lu expected_gen=%lu "
		       "found_gen=%lu reason=%s addr=0x%lx word=%u cpu=%u\n",
		       page, expected, found, verdict_names[v],
		       (uint64_t)(uintptr_t)p, word, c->index);
}

/* Verify one page; on a mismatch report it and rewrite the page at the
 * table's generation so one lost page is counted once, not forever. */
static void verify_one(struct cpu *c, uint64_t page)
{
	volatile uint64_t *p = region_page(&region, page);
	uint64_t gen = gen_table[page], found;
	unsigned word;
	enum verdict v = check_page(p, page, gen, &found, &word);

	c->verified++;
	if (v != V_OK) {
		verify_error(c, page, p, v, gen, found, word);
		write_page(p, page, gen);
	}
}

static void verify_and_rewrite(struct cpu *c, uint64_t page)
{
	verify_one(c, page);
	uint64_t gen = gen_table[page] + 1;
	write_page(region_page(&region, page), page, gen);
	/* The table follows the page: a migration that catches the page
	 * but not the table shows up as future_generation. */
	gen_table[page] = gen;
	c->work++;
}

/*
 * inject_stale=<ms> (verify, CPU 0 only): a self-test of the detector.
 * At that time copy the first page aside; once the page has been
 * rewritten, put the old copy back behind the table's back, exactly what
 * a migration that missed the page's last write would leave.  The next
 * check of that page must report reason=stale_generation.
 */
static uint64_t stale_copy[PAGE_WORDS];
static uint64_t stale_gen;
static int stale_state;			/* 0 waiting, 1 copied, 2 done */

static void inject_stale(struct cpu *c)
{
	uint64_t page = c->first_page;
	volatile uint64_t *p = region_page(&region, page);

	if (stale_state == 0 && rdtsc() >= deadline_after(cfg.inject_stale_ms)) {
		for (unsigned i = 0; i < PAGE_WORDS; i++)
			stale_copy[i] = p[i];
		stale_gen = gen_table[page];
		stale_state = 1;
	} else if (stale_state == 1 && gen_table[page] != stale_gen) {
		for (unsigned i = 0; i < PAGE_WORDS; i++)
			p[i] = stale_copy[i];
		stale_state = 2;
		printk("TANDEM-GUEST inject_stale page=%lu gen=%lu table_gen=%lu\n",
		       page, stale_gen, gen_table[page]);
	}
}

static void __attribute__((noreturn)) run_verify(struct cpu *c)
{
	const bool inject = cfg.inject_stale_ms && c->index == 0;
	const uint64_t first = c->first_page, n = c->npages;
	const uint64_t pass_every = cfg.fullpass_s * tsc_khz * 1000;
	uint64_t next_pass = rdtsc() + pass_every, sweep = 0;

	if (!n)
		run_idle(c);
	/* Generation 0 everywhere before the first check. */
	for (uint64_t i = 0; i < n; i++) {
		gen_table[first + i] = 0;
		write_page(region_page(&region, first + i), first + i, 0);
		c->filled = i + 1;
		poll(c);
	}
	for (;;) {
		/* Alternate a sweep (every page is touched regularly)
		 * with a random pick (dirtying order a tracker cannot
		 * predict). */
		verify_and_rewrite(c, first + sweep);
		if (++sweep == n)
			sweep = 0;
		poll(c);
		c->rng = xorshift(c->rng);
		verify_and_rewrite(c, first + c->rng % n);
		poll(c);
		if (inject && stale_state < 2)
			inject_stale(c);

		if (pass_every && rdtsc() >= next_pass) {
			for (uint64_t i = 0; i < n; i++) {
				verify_one(c, first + i);
				poll(c);
			}
			c->full_passes++;
			next_pass = rdtsc() + pass_every;
		}
	}
}

/* ---------------------------------------------------------------- */
/* cpuhog: integer work only, no memory traffic to speak of. */

static void __attribute__((noreturn)) run_cpuhog(struct cpu *c)
{
	for (;;) {
		uint64_t x = c->rng;
		for (int i = 0; i < 4096; i++)
			x = xorshift(x);
		c->rng = x;
		c->work++;
		poll(c);
	}
}

/* ---------------------------------------------------------------- */
/* cpuid: report the CPUID leaves the guest really sees, so tests can
 * compare them with the policy the host gave it.  The BSP runs CPUID
 * afresh at every status line, so a migrated guest shows what the new
 * host gives it.  CPUID runs in ring 0 (guest_cpuid(), one request per
 * leaf, about a dozen a second): a ring-3 CPUID on the development host
 * returns the host's values, not the guest's. */

static const struct {
	uint32_t leaf, subleaf;
} cpuid_leaves[] = {
	{ 0x00000000, 0 }, { 0x00000001, 0 }, { 0x00000007, 0 },
	{ 0x00000007, 1 }, { 0x0000000d, 0 }, { 0x0000000d, 1 },
	{ 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000007, 0 },
	{ 0x80000008, 0 }, { 0x80000021, 0 }, { 0x40000000, 0 },
};

#define NCPUID_LEAVES (sizeof(cpuid_leaves) / sizeof(cpuid_leaves[0]))

/* The BSP raises cpuid_request at each status line; each AP answers at
 * its next wake-up with apic_sample[index] = request << 8 | CPUID.1.EBX
 * bits 31:24.  One 64-bit store, so the BSP never pairs one request's
 * number with another's APIC ID.  0 means "never answered". */
static volatile uint64_t cpuid_request;
static volatile uint64_t apic_sample[MAX_CPUS];

/* How long the BSP waits for the APs' answers.  They wake at every
 * tick, so at the default hz this is a few milliseconds at most; a
 * late AP is reported with its previous answer. */
#define APIC_WAIT_MS 100

static void ap_sample_apic(struct cpu *c)
{
	uint64_t req = cpuid_request;
	uint32_t r[4];

	if (!req || apic_sample[c->index] >> 8 == req)
		return;
	guest_cpuid(1, 0, r);
	apic_sample[c->index] = req << 8 | r[1] >> 24;
}

/* Is the leaf within what CPUID.0 / CPUID.0x80000000 say exists?
 * Hypervisor leaves (0x40000000) are always asked. */
static bool cpuid_leaf_present(uint32_t leaf, uint32_t max_basic,
			       uint32_t max_ext)
{
	if (leaf >= 0x80000000)
		return (max_ext & 0xffff0000) == 0x80000000 && leaf <= max_ext;
	if (leaf >= 0x40000000)
		return true;
	return leaf <= max_basic;
}

static void cpuid_report(uint64_t seq)
{
	uint32_t val[NCPUID_LEAVES][4], r[4];
	bool present[NCPUID_LEAVES];
	uint64_t apic[MAX_CPUS];
	const uint64_t req = cpuid_request + 1;

	/* Ask the APs first, so they answer while we run our own. */
	cpuid_request = req;

	guest_cpuid(0, 0, r);
	const uint32_t max_basic = r[0];
	guest_cpuid(0x80000000, 0, r);
	const uint32_t max_ext = r[0];
	for (unsigned i = 0; i < NCPUID_LEAVES; i++) {
		present[i] = cpuid_leaf_present(cpuid_leaves[i].leaf,
						max_basic, max_ext);
		if (present[i])
			guest_cpuid(cpuid_leaves[i].leaf,
				    cpuid_leaves[i].subleaf, val[i]);
	}

	const uint64_t start = rdtsc(), limit = ms_to_tsc(APIC_WAIT_MS);
	for (unsigned i = 1; i < MAX_CPUS; i++) {
		apic[i] = 0;
		if (!cpus[i].online)
			continue;
		/* A TSC that went backwards ends the wait too. */
		while ((apic[i] = apic_sample[i]) >> 8 != req &&
		       rdtsc() - start < limit)
			cpu_relax();
	}

	/* One block under the console lock, so a reader always finds the
	 * set whole and in order. */
	spin_lock(&console_lock);
	for (unsigned i = 0; i < NCPUID_LEAVES; i++) {
		if (!present[i])
			continue;
		printk_unlocked("TANDEM-CPUID leaf=0x%08x subleaf=0x%x eax=0x%08x "
				"ebx=0x%08x ecx=0x%08x edx=0x%08x\n",
				cpuid_leaves[i].leaf, cpuid_leaves[i].subleaf,
				val[i][0], val[i][1], val[i][2], val[i][3]);
	}
	for (unsigned i = 1; i < MAX_CPUS; i++)
		if (cpus[i].online && apic[i])
			printk_unlocked("TANDEM-CPUID-APIC cpu=%u apic_id=0x%02x\n",
					i, (unsigned)(apic[i] & 0xff));
	printk_unlocked("TANDEM-CPUID end seq=%lu\n", seq);
	spin_unlock(&console_lock);
}

/* Every CPU idles; the APs answer the BSP's APIC ID requests after each
 * wake-up, and the BSP prints the report with its status line. */
static void __attribute__((noreturn)) run_cpuid(struct cpu *c)
{
	for (;;) {
		safe_halt();
		if (c->index)
			ap_sample_apic(c);
		poll(c);
	}
}

/* ---------------------------------------------------------------- */
/* One-shot events on the BSP. */

static void __attribute__((noreturn)) run_poweroff(struct cpu *c)
{
	idle_until(c, cfg.after_ms);
	printk("TANDEM-GUEST poweroff code=%lu\n", cfg.code);
	port_outb(PORT_SHUTDOWN, (uint8_t)cfg.code);
	halt_forever();
}

static void __attribute__((noreturn)) run_triplefault(struct cpu *c)
{
	idle_until(c, cfg.after_ms);
	printk("TANDEM-GUEST triplefault\n");
	syscall0(SYS_TRIPLEFAULT);
	halt_forever();
}

static void __attribute__((noreturn)) run_sse(struct cpu *c)
{
	idle_until(c, cfg.after_ms);
	printk("TANDEM-GUEST sse begin\n");
	/* In ring 0 on purpose: that is where the host cannot cope. */
	syscall0(SYS_SSE);
	printk("TANDEM-GUEST sse survived\n");
	run_idle(c);
}

/* ---------------------------------------------------------------- */

void workload_prepare(void)
{
	const unsigned n = (unsigned)cpus_online;
	uint64_t pages = 0;

	if (cfg.workload == WL_DIRTY || cfg.workload == WL_VERIFY) {
		uint64_t want = cfg.wss_mb * (MiB / PAGE_SIZE);
		uint64_t avail = mm_free_bytes() / PAGE_SIZE;
		if (cfg.workload == WL_VERIFY) {
			/* Each page costs one page plus 8 bytes of table. */
			uint64_t fit = avail > 2 ? (avail - 2) * 512 / 513 : 0;
			if (want > fit)
				want = fit;
			gen_table = mm_alloc_contig(want * sizeof(uint64_t));
			while (!gen_table && want) {
				want /= 2;
				gen_table = mm_alloc_contig(want * sizeof(uint64_t));
			}
		}
		pages = mm_alloc_region(&region, want);
		if (pages < cfg.wss_mb * (MiB / PAGE_SIZE))
			printk("TANDEM-GUEST warning wss_clamped requested_mb=%lu "
			       "pages=%lu\n", cfg.wss_mb, pages);
		wss_mb_used = pages * PAGE_SIZE / MiB;
	}

	for (unsigned i = 0; i < n; i++) {
		struct cpu *c = &cpus[i];
		c->first_page = pages * i / n;
		c->npages = pages * (i + 1) / n - c->first_page;
		c->rate = cfg.rate / n + (i < cfg.rate % n ? 1 : 0);
		if (cfg.workload == WL_DIRTY && cfg.rate && !c->rate)
			c->npages = 0;	/* rate smaller than CPU count */
		c->rng = mix64(0x5eed0000ULL + i) | 1;
	}

	if (cfg.workload == WL_KV || cfg.workload == WL_DISKLOG ||
	    cfg.workload == WL_VIRTIO_HOSTILE)
		virtio_map_windows();

	printk("TANDEM-GUEST start workload=%s cpus=%u wss_mb=%lu pages=%lu "
	       "chunks=%u after_ms=%lu\n", cfg.workload_name, n, wss_mb_used,
	       pages, region.nchunks, cfg.after_ms);

	/* Gaps count from here: bring-up is not downtime. */
	uint64_t now = rdtsc();
	for (unsigned i = 0; i < n; i++) {
		atomic_xchg(&cpus[i].last_progress, now);
		atomic_xchg(&cpus[i].max_gap, 0);
		atomic_xchg(&cpus[i].period_gap, 0);
	}
	workload_start_tsc = now;
	last_report_tsc = now;
	next_report_tick = cpus[0].ticks + cfg.hz;
	barrier();
	workload_go = 1;
}

void workload_run(struct cpu *c)
{
	bool bsp = c->index == 0;

	switch (cfg.workload) {
	case WL_DIRTY:
		run_dirty(c);
	case WL_VERIFY:
		run_verify(c);
	case WL_CPUHOG:
		run_cpuhog(c);
	case WL_CPUID:
		run_cpuid(c);
	case WL_POWEROFF:
		if (bsp)
			run_poweroff(c);
		break;
	case WL_TRIPLEFAULT:
		if (bsp)
			run_triplefault(c);
		break;
	case WL_SSE:
		if (bsp)
			run_sse(c);
		break;
	/* The virtio services run on the BSP, which takes the device
	 * interrupts; the APs idle. */
	case WL_KV:
		if (bsp)
			run_kv(c);
		break;
	case WL_DISKLOG:
		if (bsp)
			run_disklog(c);
		break;
	case WL_VIRTIO_HOSTILE:
		if (bsp)
			run_virtio_hostile(c);
		break;
	case WL_IDLE:
		break;
	}
	run_idle(c);
}
