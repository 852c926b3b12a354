/*
 * tandem-guest: boot (start info, command line, bring-up order).
 */
#include "guest.h"
#include "virtio.h"

#include <xen/arch-x86/hvm/start_info.h>

struct config cfg;
struct cpu cpus[MAX_CPUS];

/* Memory-map input to mm_init(), collected before anything can
 * overwrite the loader's tables. */
static struct range ram_in[MAX_RANGES], res_in[MAX_RANGES];
static unsigned nram_in, nres_in;
static uint32_t memmap_seen;

static const struct {
	const char *name;
	enum workload wl;
	uint64_t after_ms;		/* default for after= */
} workloads[] = {
	{ "idle", WL_IDLE, 0 },
	{ "dirty", WL_DIRTY, 0 },
	{ "verify", WL_VERIFY, 0 },
	{ "poweroff", WL_POWEROFF, 1000 },
	{ "triplefault", WL_TRIPLEFAULT, 500 },
	{ "sse", WL_SSE, 500 },
	{ "cpuhog", WL_CPUHOG, 0 },
	{ "cpuid", WL_CPUID, 0 },
	{ "kv", WL_KV, 0 },
	{ "disklog", WL_DISKLOG, 0 },
	{ "virtio_hostile", WL_VIRTIO_HOSTILE, 500 },
};

/* Pointers handed over by the loader are below 4 GiB by the PVH ABI; we
 * only map that much at this point, so refuse anything else rather than
 * fault. */
static bool low_ptr_ok(uint64_t pa, uint64_t len)
{
	return pa && pa < 4 * GiB && len <= 4 * GiB - pa;
}

/* Copy what we need out of hvm_start_info: the command line and the
 * memory map may sit in RAM we are about to hand to workloads. */
static void read_start_info(uint32_t pa)
{
	const struct hvm_start_info *si =
		(const struct hvm_start_info *)(uintptr_t)pa;

	cfg.cmdline[0] = '\0';
	if (!pa || si->magic != XEN_HVM_START_MAGIC_VALUE) {
		printk("TANDEM-GUEST warning bad_start_info addr=0x%x\n", pa);
		return;
	}
	if (low_ptr_ok(si->cmdline_paddr, 1)) {
		const char *s = (const char *)(uintptr_t)si->cmdline_paddr;
		size_t i;
		for (i = 0; i + 1 < CMDLINE_MAX && s[i]; i++)
			cfg.cmdline[i] = s[i];
		cfg.cmdline[i] = '\0';
	}
	if (si->version < 1 || !si->memmap_entries ||
	    !low_ptr_ok(si->memmap_paddr, (uint64_t)si->memmap_entries *
			sizeof(struct hvm_memmap_table_entry)))
		return;

	const struct hvm_memmap_table_entry *e =
		(const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
	memmap_seen = si->memmap_entries;
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		uint64_t start = e[i].addr, end = e[i].addr + e[i].size;
		if (end < start)
			end = UINT64_MAX;	/* wrapped: clamp */
		if (e[i].type == XEN_HVM_MEMMAP_TYPE_RAM) {
			/* RAM shrinks to whole pages, ... */
			start = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
			end &= ~(PAGE_SIZE - 1);
			if (start < end && nram_in < MAX_RANGES) {
				ram_in[nram_in].start = start;
				ram_in[nram_in++].end = end;
			}
		} else {
			/* ... anything else grows to whole pages. */
			start &= ~(PAGE_SIZE - 1);
			if (end != UINT64_MAX)
				end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
			if (start < end && nres_in < MAX_RANGES) {
				res_in[nres_in].start = start;
				res_in[nres_in++].end = end;
			}
		}
	}
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void parse_kv(const char *k, size_t kl, const char *v, size_t vl)
{
	uint64_t n;

#define NUM(key, field, lo, hi)						\
	if (str_eq_n(k, kl, key)) {					\
		if (parse_u64(v, vl, &n))				\
			cfg.field = clamp_u64(n, lo, hi);		\
		return;							\
	}

	if (str_eq_n(k, kl, "workload")) {
		for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
			if (str_eq_n(v, vl, workloads[i].name)) {
				cfg.workload = workloads[i].wl;
				cfg.workload_name = workloads[i].name;
				return;
			}
		}
		printk("TANDEM-GUEST warning unknown_workload using=idle\n");
		return;
	}
	if (str_eq_n(k, kl, "on_panic")) {
		cfg.crash_on_panic = str_eq_n(v, vl, "crash");
		return;
	}
	/* Linux's form, as the VMM appends it: one word per device. */
	if (str_eq_n(k, kl, "virtio_mmio.device")) {
		struct virtio_window w;
		if (!virtio_parse_device(v, vl, &w.size, &w.base, &w.gsi)) {
			printk("TANDEM-GUEST warning bad_virtio_mmio_device\n");
		} else if (cfg.nvirtio >= MAX_VIRTIO_WINDOWS) {
			printk("TANDEM-GUEST warning too_many_virtio_devices max=%u\n",
			       MAX_VIRTIO_WINDOWS);
		} else {
			cfg.virtio[cfg.nvirtio++] = w;
		}
		return;
	}
	if (str_eq_n(k, kl, "ip")) {
		/* ADDR or ADDR/PREFIX (default /24). */
		size_t slash = 0;
		uint64_t prefix = 24;
		uint32_t addr;
		while (slash < vl && v[slash] != '/')
			slash++;
		if (!parse_ipv4(v, slash, &addr) || !addr ||
		    (slash < vl && (!parse_u64(v + slash + 1, vl - slash - 1, &prefix) ||
				    prefix < 1 || prefix > 32))) {
			printk("TANDEM-GUEST warning bad_ip\n");
			return;
		}
		cfg.ip = addr;
		cfg.netmask = prefix == 32 ? 0xffffffffu
					   : ~(0xffffffffu >> prefix);
		return;
	}
	if (str_eq_n(k, kl, "gw")) {
		uint32_t addr;
		if (parse_ipv4(v, vl, &addr))
			cfg.gw = addr;
		else
			printk("TANDEM-GUEST warning bad_gw\n");
		return;
	}
	if (str_eq_n(k, kl, "rate"))
		cfg.rate_given = true;
	/* Bounds keep arithmetic sane: hz within what a LAPIC timer does
	 * (KVM refuses periods under ~200 us), wss below 1 TiB. */
	NUM("wss", wss_mb, 1, 1ULL << 20)
	NUM("rate", rate, 0, 1ULL << 32)
	NUM("after", after_ms, 0, 1ULL << 32)
	NUM("hz", hz, 1, 5000)
	NUM("ncpus", ncpus, 1, MAX_CPUS)
	NUM("fullpass", fullpass_s, 0, 1ULL << 20)
	NUM("code", code, 0, 255)
	NUM("inject_stale", inject_stale_ms, 0, 1ULL << 32)
	NUM("kv_port", kv_port, 1, 65535)
	NUM("flush_every", flush_every, 0, 1ULL << 32)
	NUM("mode", hostile_mode, 0, 255)
	if (str_eq_n(k, kl, "virtio_poll")) {
		cfg.virtio_poll = str_eq_n(v, vl, "1");
		return;
	}
#undef NUM
	/* Unknown keys are the VMM's or a later version's: ignore. */
}

static void parse_cmdline(void)
{
	bool after_given = false;
	const char *s = cfg.cmdline;

	cfg.workload = WL_IDLE;
	cfg.workload_name = "idle";
	cfg.wss_mb = 64;
	cfg.rate = 0;
	cfg.after_ms = UINT64_MAX;
	cfg.hz = 250;
	cfg.ncpus = 1;
	cfg.fullpass_s = 10;
	cfg.code = SHUTDOWN_POWEROFF;
	cfg.kv_port = 7000;
	cfg.flush_every = 1;
	cfg.hostile_mode = 1;

	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		const char *tok = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			s++;
		const char *eq = tok;
		while (eq < s && *eq != '=')
			eq++;
		if (eq == s || eq == tok)
			continue;		/* bare word: nothing to set */
		if (str_eq_n(tok, eq - tok, "after"))
			after_given = true;
		parse_kv(tok, eq - tok, eq + 1, s - eq - 1);
	}
	/* disklog: records per second; a plain default rather than "as
	 * fast as possible", which would only measure the disk. */
	if (cfg.workload == WL_DISKLOG && !cfg.rate_given)
		cfg.rate = 100;
	if (!after_given || cfg.after_ms == UINT64_MAX) {
		cfg.after_ms = 0;
		for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
			if (workloads[i].wl == cfg.workload)
				cfg.after_ms = workloads[i].after_ms;
	}
}

void kernel_main(uint32_t start_info_pa)
{
	struct cpu *bsp = &cpus[0];

	tsc_boot = rdtsc();
	/* Tables first: from here on a fault prints a panic line instead
	 * of silently triple-faulting, and %gs finds struct cpu. */
	bsp->index = 0;
	bsp->kstack_top = kstacks[0] + STACK_SIZE;
	bsp->ustack_top = ustacks[0] + STACK_SIZE;
	idt_init();
	cpu_load_tables(bsp);
	serial_init();

	read_start_info(start_info_pa);
	parse_cmdline();
	if (!memmap_seen) {
		/* Without a map only the legacy 640 KiB are certain. */
		printk("TANDEM-GUEST warning no_memmap\n");
		ram_in[0].start = 0;
		ram_in[0].end = 0xa0000;
		nram_in = 1;
	}
	mm_init(ram_in, nram_in, res_in, nres_in);

	pic_disable();
	lapic_init();
	bsp->apic_id = lapic_id();
	const char *tsc_source = time_calibrate();

	printk("TANDEM-GUEST boot version=%d workload=%s mem_mb=%lu tsc_khz=%lu "
	       "hz=%lu cmdline=\"%s\"\n", GUEST_VERSION, cfg.workload_name,
	       ram_bytes / MiB, tsc_khz, cfg.hz, cfg.cmdline);
	printk("TANDEM-GUEST info tsc_source=%s lapic_khz=%lu free_mb=%lu "
	       "memmap_entries=%u ncpus=%lu bsp_apic_id=%u image_end=0x%lx\n",
	       tsc_source, lapic_khz, mm_free_bytes() / MiB, memmap_seen,
	       cfg.ncpus, bsp->apic_id, (uint64_t)(uintptr_t)_end);

	bsp->last_progress = rdtsc();
	bsp->online = 1;
	cpus_online = 1;
	lapic_timer_start(cfg.hz);
	irq_enable();

	smp_boot((unsigned)cfg.ncpus);
	workload_prepare();
	enter_user(bsp, workload_run);
}
