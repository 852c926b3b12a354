/*
 * tandem-guest: descriptor tables, interrupts, LAPIC, time calibration.
 */
#include "guest.h"
#include "virtio.h"

#define MSR_APIC_BASE	0x1b
#define APIC_BASE_EN	(1ULL << 11)
#define APIC_BASE_X2	(1ULL << 10)
#define MSR_GS_BASE	0xc0000101

#define LAPIC_ID	0x020
#define LAPIC_TPR	0x080
#define LAPIC_EOI	0x0b0
#define LAPIC_SVR	0x0f0
#define LAPIC_ESR	0x280
#define LAPIC_LVT_TIMER	0x320
#define LAPIC_LVT_LINT0	0x350
#define LAPIC_LVT_LINT1	0x360
#define LAPIC_LVT_ERR	0x370
#define LAPIC_TMICT	0x380
#define LAPIC_TMCCT	0x390
#define LAPIC_TDCR	0x3e0
#define LVT_MASKED	(1u << 16)
#define LVT_PERIODIC	(1u << 17)
#define LVT_NMI		(4u << 8)
#define TDCR_DIV16	0x3

/* The LAPIC timer counts bus clocks divided by 16: slow enough that
 * hz=1 still fits the 32-bit counter at a 1 GHz bus (KVM's default). */
#define TIMER_DIV	16

uint8_t kstacks[MAX_CPUS][STACK_SIZE] __attribute__((aligned(16)));
uint8_t ustacks[MAX_CPUS][STACK_SIZE] __attribute__((aligned(16)));

uint64_t tsc_khz;
uint64_t lapic_khz;
uint64_t tsc_boot;

static volatile uint32_t *lapic = (volatile uint32_t *)0xfee00000UL;

struct idt_entry {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t h = (uint64_t)(uintptr_t)isr_stubs + 16 * v;
		idt[v].off_lo = (uint16_t)h;
		idt[v].sel = SEL_KCODE;
		idt[v].ist = 0;
		/* Interrupt gates: IF is cleared on entry, so a handler only
		 * nests where it enables interrupts itself (SYS_HALT,
		 * SYS_WRITE).  Only the syscall gate may be used from ring 3
		 * (DPL 3). */
		idt[v].type = v == VEC_SYSCALL ? 0xee : 0x8e;
		idt[v].off_mid = (uint16_t)(h >> 16);
		idt[v].off_hi = (uint32_t)(h >> 32);
		idt[v].zero = 0;
	}
}

/*
 * Give each CPU its own GDT (the boot segments plus ring-3 code/data and
 * a TSS), load the shared IDT, and point %gs at its struct cpu.
 *
 * Why ring 3 at all: on the development host (KVM on nested PVM) guest
 * ring 0 is run by KVM's instruction emulator, around a microsecond per
 * instruction, while ring 3 runs natively.  So the kernel does set-up,
 * interrupts and privileged requests in ring 0, and the workloads run in
 * ring 3 over a map whose pages are all user-accessible.  This is a test
 * guest: there is nothing to protect from the workload.
 */
void cpu_load_tables(struct cpu *c)
{
	struct desc_ptr gdtr, idtr;
	uint64_t tss = (uintptr_t)&c->tss;
	uint64_t limit = sizeof(c->tss) - 1;

	c->self = c;
	memset(c->gdt, 0, sizeof(c->gdt));
	memcpy(c->gdt, gdt_boot, (size_t)(gdt_boot_end - gdt_boot));
	c->gdt[SEL_UCODE >> 3] = 0x00affa000000ffffULL;	/* 64-bit, DPL 3 */
	c->gdt[SEL_UDATA >> 3] = 0x00cff2000000ffffULL;	/* data, DPL 3 */
	/* 16-byte available 64-bit TSS descriptor (type 9). */
	c->gdt[SEL_TSS >> 3] = (limit & 0xffff) | ((tss & 0xffffff) << 16) |
			       (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
			       (((tss >> 24) & 0xff) << 56);
	c->gdt[(SEL_TSS >> 3) + 1] = tss >> 32;

	memset(&c->tss, 0, sizeof(c->tss));
	c->tss.rsp[0] = (uintptr_t)c->kstack_top;
	c->tss.iomap_base = sizeof(c->tss);	/* none: IOPL decides */

	gdtr.limit = sizeof(c->gdt) - 1;
	gdtr.base = (uintptr_t)c->gdt;
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uintptr_t)idt;
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("lidt %0" : : "m"(idtr));
	/* Reload CS from the new table with a far return, then SS; the
	 * other data segments stay null (see entry.S).  Loading %gs zeroes
	 * its base, so the MSR is written last. */
	__asm__ volatile("pushq %[cs]\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %[ds], %%eax\n\t"
			 "movl %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%fs\n\t"
			 "movl %%eax, %%gs\n\t"
			 : : [cs] "i"(SEL_KCODE), [ds] "i"(SEL_KDATA)
			 : "rax", "memory");
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS));
	wrmsr(MSR_GS_BASE, (uintptr_t)c);
}

/* Drop to ring 3 and call fn(c) on this CPU's user stack, interrupts
 * on.  IOPL 3 is asked for, but PVM ignores it, so port I/O still goes
 * through syscall2().  Never returns. */
void enter_user(struct cpu *c, void (*fn)(struct cpu *))
{
	/* As if fn had been called: RSP + 8 is 16-byte aligned. */
	uint64_t rsp = ((uintptr_t)c->ustack_top & ~15ULL) - 8;

	__asm__ volatile("pushq %[ss]\n\t"
			 "pushq %[rsp]\n\t"
			 "pushq %[flags]\n\t"
			 "pushq %[cs]\n\t"
			 "pushq %[rip]\n\t"
			 "iretq"
			 : : [ss] "i"(SEL_UDATA), [rsp] "r"(rsp),
			     [flags] "i"(0x3202),	/* IOPL 3, IF, bit 1 */
			     [cs] "i"(SEL_UCODE), [rip] "r"(fn), "D"(c)
			 : "memory");
	__builtin_unreachable();
}

/* The 8259s: after a BIOS they deliver IRQs at vectors 0x08-0x0f, right
 * on top of CPU exceptions.  Re-initialise them to 0x30-0x3f and mask
 * every line; the LAPIC timer is the only interrupt source we want. */
void pic_disable(void)
{
	outb(0x20, 0x11);			/* ICW1: init, ICW4 follows */
	outb(0xa0, 0x11);
	outb(0x21, VEC_PIC_BASE);		/* ICW2: vector base */
	outb(0xa1, VEC_PIC_BASE + 8);
	outb(0x21, 0x04);			/* ICW3: slave on IRQ2 */
	outb(0xa1, 0x02);
	outb(0x21, 0x01);			/* ICW4: 8086 mode */
	outb(0xa1, 0x01);
	outb(0x21, 0xff);			/* mask all */
	outb(0xa1, 0xff);
}

uint32_t lapic_read(uint32_t reg)
{
	return lapic[reg / 4];
}

void lapic_write(uint32_t reg, uint32_t v)
{
	lapic[reg / 4] = v;
}

unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

/* Enable this CPU's LAPIC in xAPIC (MMIO) mode with everything masked;
 * lapic_timer_start() then unmasks the timer. */
void lapic_init(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);

	if (!(base & APIC_BASE_EN) || (base & APIC_BASE_X2)) {
		/* Leaving x2APIC needs a detour through disabled. */
		if (base & APIC_BASE_X2)
			wrmsr(MSR_APIC_BASE, base & ~(APIC_BASE_EN | APIC_BASE_X2));
		base = (base & ~APIC_BASE_X2) | APIC_BASE_EN;
		wrmsr(MSR_APIC_BASE, base);
	}
	base &= ~0xfffULL;
	base &= (1ULL << 52) - 1;
	if (base && base < 4 * GiB)
		lapic = (volatile uint32_t *)(uintptr_t)base;

	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	/* LINT1 is wired to NMI on PCs; keep it so a host-injected NMI
	 * still arrives. */
	lapic_write(LAPIC_LVT_LINT1, LVT_NMI);
	lapic_write(LAPIC_LVT_ERR, LVT_MASKED);
	lapic_write(LAPIC_ESR, 0);
	lapic_write(LAPIC_TDCR, TDCR_DIV16);
}

void lapic_timer_start(uint64_t hz)
{
	uint64_t count = lapic_khz * 1000 / TIMER_DIV / hz;

	if (count == 0)
		count = 1;
	if (count > 0xffffffffULL)
		count = 0xffffffffULL;
	lapic_write(LAPIC_TDCR, TDCR_DIV16);
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TMICT, (uint32_t)count);
}

/* ---------------------------------------------------------------- */
/* Time */

void udelay(uint64_t us)
{
	uint64_t start = rdtsc();
	uint64_t cycles = us * tsc_khz / 1000;
	while (rdtsc() - start < cycles)
		cpu_relax();
}

#define PIT_HZ 1193182ULL

/*
 * One measurement against PIT channel 2: it counts `pit_ticks` in mode 0
 * once its gate (port 0x61 bit 0) goes high, and its output (port 0x61
 * bit 5) rises at terminal count.  The TSC and the LAPIC current count
 * are sampled at both ends.  Returns false if the PIT never finished.
 */
static bool pit_measure(uint32_t pit_ticks, uint64_t *tsc_delta,
			uint64_t *apic_delta)
{
	uint8_t p61 = inb(0x61) & ~0x03;	/* gate low, speaker off */

	outb(0x61, p61);
	outb(0x43, 0xb0);			/* ch2, lo/hi byte, mode 0 */
	outb(0x42, pit_ticks & 0xff);
	outb(0x42, (pit_ticks >> 8) & 0xff);

	/* One-shot from the top so the counter cannot wrap while we
	 * measure; the LVT stays masked. */
	lapic_write(LAPIC_TDCR, TDCR_DIV16);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TMICT, 0xffffffffu);

	uint32_t a0 = lapic_read(LAPIC_TMCCT);
	uint64_t t0 = rdtsc();
	outb(0x61, p61 | 0x01);			/* gate high: go */

	/* Give up after 4e9 cycles: seconds at any plausible TSC rate. */
	while (!(inb(0x61) & 0x20))
		if (rdtsc() - t0 > 4000000000ULL)
			return false;

	uint64_t t1 = rdtsc();
	uint32_t a1 = lapic_read(LAPIC_TMCCT);
	outb(0x61, p61);
	lapic_write(LAPIC_TMICT, 0);

	*tsc_delta = t1 - t0;
	*apic_delta = (uint64_t)(a0 - a1) * TIMER_DIV;
	return t1 > t0;
}

static uint64_t median3(uint64_t a, uint64_t b, uint64_t c)
{
	if (a > b) { uint64_t t = a; a = b; b = t; }
	if (b > c) { uint64_t t = b; b = c; c = t; }
	if (a > b) { uint64_t t = a; a = b; b = t; }
	return b;
}

/*
 * Find the TSC and LAPIC bus frequencies.  A hypervisor that publishes
 * them (CPUID 0x40000010, as Tandem and VMware do) is believed.
 * Otherwise measure against the PIT.  Each measurement carries a fixed
 * error (the exits around starting and polling the PIT cost tens of
 * microseconds under virtualisation), so measure a short and a long
 * window and use the difference, which cancels it; the median of three
 * such pairs keeps one slow exit from skewing the result.
 */
const char *time_calibrate(void)
{
	uint32_t r[4];

	/* No check of the CPUID.1 "hypervisor" bit: a VMM may publish the
	 * leaf without it.  Without a hypervisor, 0x40000000 repeats the
	 * highest basic leaf, which will not pass the range check. */
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40010000) {
		cpuid(0x40000010, 0, r);
		if (r[0] >= 1000 && r[0] < 100000000) {	/* 1 MHz .. 100 GHz */
			tsc_khz = r[0];
			lapic_khz = r[1] ? r[1] : 1000000;
			return "cpuid";
		}
	}

	const uint32_t short_ticks = (uint32_t)(PIT_HZ / 100);	/* 10 ms */
	const uint32_t long_ticks = (uint32_t)(PIT_HZ / 20);	/* 50 ms */
	uint64_t t[3], a[3];
	for (int i = 0; i < 3; i++) {
		uint64_t ts, as, tl, al;
		if (!pit_measure(short_ticks, &ts, &as) ||
		    !pit_measure(long_ticks, &tl, &al)) {
			/* No PIT: assume KVM's defaults rather than stop. */
			tsc_khz = 2000000;
			lapic_khz = 1000000;
			return "guess";
		}
		t[i] = tl > ts ? tl - ts : 0;
		a[i] = al > as ? al - as : 0;
	}
	const uint64_t dticks = long_ticks - short_ticks;
	tsc_khz = median3(t[0], t[1], t[2]) * PIT_HZ / dticks / 1000;
	lapic_khz = median3(a[0], a[1], a[2]) * PIT_HZ / dticks / 1000;
	/* A machine without the port 0x61 gate (QEMU's microvm) reads 0xff
	 * there, so the "PIT" seems to finish at once: no real CPU runs its
	 * TSC below 100 MHz, so such a result means there was no PIT. */
	if (tsc_khz < 100000) {
		tsc_khz = 2000000;
		lapic_khz = 1000000;
		return "guess";
	}
	if (!lapic_khz)
		lapic_khz = 1000000;
	return "pit";
}

/* ---------------------------------------------------------------- */
/* Interrupt dispatch */

static const char *const exception_names[32] = {
	"divide_error", "debug", "nmi", "breakpoint", "overflow",
	"bound_range", "invalid_opcode", "device_not_available",
	"double_fault", "coprocessor_overrun", "invalid_tss",
	"segment_not_present", "stack_fault", "general_protection",
	"page_fault", "reserved15", "x87_fpu_error", "alignment_check",
	"machine_check", "simd_fpu_error", "virtualization",
	"control_protection", "reserved22", "reserved23", "reserved24",
	"reserved25", "reserved26", "reserved27", "hv_injection",
	"vmm_communication", "security", "reserved31",
};

/* workload=sse: make SSE architecturally legal (as an SSE-using OS
 * would: CR4.OSFXSR|OSXMMEXCPT, CR0.MP, !EM, !TS) and execute one SSE
 * instruction in ring 0.  On hardware it simply runs; a hypervisor that
 * emulates ring 0 without SSE support fails the VM, which is the point. */
static void sse_in_ring0(void)
{
	write_cr4(read_cr4() | (1u << 9) | (1u << 10));
	write_cr0((read_cr0() | (1u << 1)) & ~((1ULL << 2) | (1ULL << 3)));
	sse_probe();
}

/* workload=triplefault: with an empty IDT, the #UD from ud2 cannot be
 * delivered (#GP), nor can that (#DF), nor that: the CPU shuts down.
 * ud2 rather than int3 because this runs in ring 0, which the
 * development host emulates, and KVM's emulator cannot execute INT n in
 * protected mode (it reports an emulation failure instead). */
static void __attribute__((noreturn)) triple_fault(void)
{
	struct desc_ptr empty = { 0, 0 };

	irq_disable();
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty) : "memory");
	halt_forever();
}

static void syscall_dispatch(struct frame *f)
{
	switch (f->rax) {
	case SYS_HALT:
		/* The next interrupt nests here on this kernel stack and
		 * then we return to ring 3. */
		__asm__ volatile("sti; hlt; cli" : : : "memory");
		break;
	case SYS_WAIT_IRQ:
		/* Interrupts are off here (interrupt gate), so an interrupt
		 * that raised the counter after ring 3 read it is either
		 * already counted (no sleep) or pending and ends the hlt:
		 * no lost wake-up between checking and sleeping. */
		if (*(volatile uint64_t *)(uintptr_t)f->rdi == f->rsi)
			__asm__ volatile("sti; hlt; cli" : : : "memory");
		break;
	case SYS_STOP:
		halt_forever();
	case SYS_SSE:
		sse_in_ring0();
		break;
	case SYS_TRIPLEFAULT:
		triple_fault();
	case SYS_WRITE:
		/* The buffer is ring 3's, but every page is mapped for both
		 * rings; bound the length so a bad call cannot run away. */
		if (f->rsi > 4096)
			break;
		/* A line takes milliseconds of port exits; let ticks in
		 * meanwhile so printing never looks like the guest stopped.
		 * The timer handler prints nothing, so it cannot deadlock
		 * with the console lock the caller holds. */
		irq_enable();
		console_write((const char *)(uintptr_t)f->rdi, f->rsi);
		irq_disable();
		break;
	case SYS_OUTB:
		outb((uint16_t)f->rdi, (uint8_t)f->rsi);
		break;
	case SYS_CPUID: {
		/* In ring 0 so the hypervisor answers with the guest's CPUID
		 * policy (see guest_cpuid()).  Every page is mapped for
		 * both rings, so the result goes straight to the caller. */
		uint32_t r[4];
		cpuid((uint32_t)f->rdi, (uint32_t)(f->rdi >> 32), r);
		memcpy((void *)(uintptr_t)f->rsi, r, sizeof(r));
		break;
	}
	}
	f->rax = 0;
}

void interrupt_dispatch(struct frame *f)
{
	struct cpu *c = this_cpu();

	if (f->vector == VEC_SYSCALL) {
		syscall_dispatch(f);
		return;
	}

	if (f->vector == VEC_TIMER) {
		c->ticks++;
		progress(c);
		lapic_eoi();
		return;
	}
	if (f->vector - VEC_VIRTIO_BASE < MAX_VIRTIO) {
		/* A virtio device (edge-triggered IOAPIC pin).  Count and
		 * return: ring 0 is the slow ring, the driver in ring 3
		 * reads and acknowledges InterruptStatus itself. */
		virtio_irq_count[f->vector - VEC_VIRTIO_BASE]++;
		virtio_irq_all++;
		lapic_eoi();
		return;
	}
	if (f->vector == 2) {
		/* NMI: counted and reported by the status loop, not fatal,
		 * so a hypervisor's "trigger nmi" can be observed. */
		c->nmis++;
		return;
	}
	if (f->vector < 32) {
		panic("exception", "vector=%lu name=%s error=0x%lx rip=0x%lx "
		      "cs=0x%lx rflags=0x%lx rsp=0x%lx cr2=0x%lx",
		      f->vector, exception_names[f->vector], f->error, f->rip,
		      f->cs, f->rflags, f->rsp, read_cr2());
	}
	if (f->vector == VEC_SPURIOUS)
		return;			/* spurious: no EOI by definition */
	c->unexpected_irqs++;
	/* PIC vectors never set a LAPIC ISR bit; everything else did. */
	if (f->vector < VEC_PIC_BASE || f->vector >= VEC_PIC_BASE + 16)
		lapic_eoi();
}
