/*
 * tandem-guest: application processor start-up.
 *
 * APs are started one at a time with INIT-SIPI-SIPI through the BSP's
 * LAPIC.  They begin in real mode at 0x8000 (ap_tramp16 in entry.S),
 * switch to protected mode with the boot GDT, reuse the BSP's page
 * tables to enter long mode, and arrive in ap_main() on their own stack.
 * One at a time, because the trampoline hands over the stack through
 * single variables (ap_boot_stack/ap_boot_cpu).
 */
#include "guest.h"

#define TRAMP_BASE	0x8000
#define TRAMP_GDTR	0x8f00	/* keep in step with entry.S */
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define ICR_BUSY	(1u << 12)
#define ICR_INIT	0x00004500	/* INIT, level assert */
#define ICR_STARTUP	0x00004600	/* start-up, level assert */

volatile uint64_t cpus_online;

static void send_ipi(unsigned apic_id, uint32_t icr)
{
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	/* Delivery status clears once the LAPIC has sent it; KVM's
	 * in-kernel LAPIC does that at once, but stay bounded. */
	for (unsigned i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		cpu_relax();
}

static bool start_ap(struct cpu *c)
{
	ap_boot_stack = (uintptr_t)c->kstack_top;
	ap_boot_cpu = (uintptr_t)c;
	barrier();

	/* The classic sequence: INIT, 10 ms, then SIPI twice 200 us apart
	 * (a second SIPI is ignored by a CPU that already started). */
	send_ipi(c->apic_id, ICR_INIT);
	udelay(10000);
	for (int i = 0; i < 2 && !c->online; i++) {
		send_ipi(c->apic_id, ICR_STARTUP | (TRAMP_BASE >> 12));
		udelay(200);
	}
	uint64_t deadline = rdtsc() + ms_to_tsc(1000);
	while (!c->online && rdtsc() < deadline)
		cpu_relax();
	if (c->online)
		return true;
	/* Park it again so a late start cannot run on the next AP's
	 * stack. */
	send_ipi(c->apic_id, ICR_INIT);
	return false;
}

unsigned smp_boot(unsigned ncpus)
{
	if (ncpus <= 1)
		return 1;
	if (!mm_is_ram(TRAMP_BASE, TRAMP_BASE + 0x1000)) {
		printk("TANDEM-GUEST warning smp=no_trampoline_ram\n");
		return 1;
	}
	memcpy((void *)(uintptr_t)TRAMP_BASE, ap_tramp16,
	       (size_t)(ap_tramp16_end - ap_tramp16));
	/* GDT pseudo-descriptor (16-bit limit, 32-bit base) for lgdtl. */
	volatile uint16_t *lim = (volatile uint16_t *)(uintptr_t)TRAMP_GDTR;
	volatile uint32_t *base = (volatile uint32_t *)(uintptr_t)(TRAMP_GDTR + 2);
	*lim = (uint16_t)(gdt_boot_end - gdt_boot - 1);
	*base = (uint32_t)(uintptr_t)gdt_boot;

	/* Candidate APIC IDs: the first ncpus - 1 that are not ours. */
	unsigned bsp_id = cpus[0].apic_id, next = 1, tried = 0;
	for (unsigned id = 0; id < 255 && tried < ncpus - 1; id++) {
		if (id == bsp_id)
			continue;
		tried++;
		struct cpu *c = &cpus[next];
		c->index = next;
		c->apic_id = id;
		c->online = 0;
		/* The AP runs ap_main() on its kernel stack; once it drops
		 * to ring 3 the same stack takes its interrupts. */
		c->kstack_top = kstacks[next] + STACK_SIZE;
		c->ustack_top = ustacks[next] + STACK_SIZE;
		if (start_ap(c))
			next++;
		else
			printk("TANDEM-GUEST warning ap_failed apic_id=%u\n", id);
	}
	printk("TANDEM-GUEST smp online=%lu requested=%u\n", cpus_online, ncpus);
	return (unsigned)cpus_online;
}

void ap_main(struct cpu *c)
{
	cpu_load_tables(c);
	lapic_init();
	c->last_progress = rdtsc();
	lapic_timer_start(cfg.hz);
	atomic_add(&cpus_online, 1);
	barrier();
	c->online = 1;
	irq_enable();
	/* Wait for the BSP to share out the work; ticks wake us. */
	while (!workload_go)
		safe_halt();
	enter_user(c, workload_run);
}
