/*
 * tandem-guest: shared declarations.
 *
 * Freestanding: only the compiler's own headers (stdint, stddef, stdbool,
 * stdarg) and Xen's public headers are used.  Everything is identity
 * mapped, so a physical address is also a pointer.
 */
#ifndef TANDEM_GUEST_H
#define TANDEM_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_VERSION	1

#define MAX_CPUS	32
#define PAGE_SIZE	((uint64_t)4096)
#define STACK_SIZE	16384
#define CMDLINE_MAX	1024

#define KiB	((uint64_t)1 << 10)
#define MiB	((uint64_t)1 << 20)
#define GiB	((uint64_t)1 << 30)

/* Segment selectors (per-CPU GDT, built by cpu_load_tables). */
#define SEL_KCODE	0x18
#define SEL_KDATA	0x10
#define SEL_UCODE	(0x28 | 3)
#define SEL_UDATA	(0x30 | 3)
#define SEL_TSS		0x38
#define GDT_ENTRIES	10

/* Interrupt vectors.  0x00-0x1f are exceptions; the legacy PIC is moved
 * to 0x30-0x3f (and masked) so a stray IRQ can never look like one. */
#define VEC_PIC_BASE	0x30
#define VEC_TIMER	0x40
/* Ring 3 asks ring 0 for things with int3 (#BP, the only gate with DPL
 * 3).  Not int $0x80: under PVM a software INT n from ring 3 arrives as
 * #UD, while int3 is delivered as #BP like on hardware. */
#define VEC_SYSCALL	3
#define VEC_SPURIOUS	0xff

/* Requests from ring 3 to ring 0: RAX = number, RDI/RSI = arguments. */
#define SYS_HALT	0	/* sti; hlt; back after the next interrupt */
#define SYS_STOP	1	/* cli; hlt for ever */
#define SYS_SSE		2	/* run sse_probe() in ring 0 */
#define SYS_TRIPLEFAULT	3	/* empty IDT, then int3 */
#define SYS_WRITE	4	/* console_write(RDI, RSI) */
#define SYS_OUTB	5	/* outb(port RDI, value RSI) */
#define SYS_CPUID	6	/* cpuid(leaf RDI[31:0], subleaf RDI[63:32]) into
				   uint32_t[4] at RSI */
#define SYS_WAIT_IRQ	7	/* sti; hlt unless *(u64 *)RDI != RSI */

/* Error numbers (Linux values) for functions returning -errno. */
#define EIO		5
#define EAGAIN		11
#define ENOMEM		12
#define ENODEV		19
#define EINVAL		22
#define ENOSPC		28
#define EROFS		30
#define EPROTO		71
#define ENOBUFS		105

/* Tandem's shutdown port (see README.md). */
#define PORT_SHUTDOWN	0x501
#define SHUTDOWN_POWEROFF 0
#define SHUTDOWN_REBOOT	1
#define SHUTDOWN_CRASH	2

/* ---------------------------------------------------------------- */
/* CPU primitives */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
			 "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static inline void irq_enable(void)
{
	__asm__ volatile("sti" : : : "memory");
}

static inline void irq_disable(void)
{
	__asm__ volatile("cli" : : : "memory");
}

/* Workloads run in ring 3 (see arch.c: on the development host ring 0
 * is emulated instruction by instruction, ring 3 runs natively).  What
 * needs ring 0 goes through syscall(): hlt, port I/O (PVM runs ring 3
 * with IOPL 0 whatever RFLAGS says), CPUID (see guest_cpuid()), and the
 * deliberate faults. */
static inline bool in_user_mode(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) != 0;
}

static inline uint64_t syscall2(uint64_t nr, uint64_t a0, uint64_t a1)
{
	__asm__ volatile("int3" : "+a"(nr) : "D"(a0), "S"(a1) : "memory");
	return nr;
}

static inline uint64_t syscall0(uint64_t nr)
{
	return syscall2(nr, 0, 0);
}

/* CPUID as the guest kernel sees it, from either ring.  Ring 3 must not
 * run CPUID itself: on the development host (nested PVM) a ring-3 CPUID
 * is answered with the host's own values (its CPU policy and the APIC
 * ID of whichever host CPU runs the vCPU), not with the guest's CPUID
 * policy. */
static inline void guest_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	if (in_user_mode())
		syscall2(SYS_CPUID, leaf | (uint64_t)sub << 32, (uintptr_t)r);
	else
		cpuid(leaf, sub, r);
}

/* outb from either ring. */
static inline void port_outb(uint16_t port, uint8_t v)
{
	if (in_user_mode())
		syscall2(SYS_OUTB, port, v);
	else
		outb(port, v);
}

/* sti;hlt back to back: the interrupt shadow of sti means a tick cannot
 * slip in between and leave us halted until the next one. */
static inline void safe_halt(void)
{
	if (in_user_mode())
		syscall0(SYS_HALT);
	else
		__asm__ volatile("sti; hlt" : : : "memory");
}

static inline void __attribute__((noreturn)) halt_forever(void)
{
	if (in_user_mode())
		syscall0(SYS_STOP);
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

/* Atomics: lock-prefixed integer instructions only. */
static inline uint64_t atomic_xchg(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("xchgq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static inline bool atomic_cas(volatile uint64_t *p, uint64_t old, uint64_t new)
{
	uint64_t prev;
	__asm__ volatile("lock cmpxchgq %2, %1"
			 : "=a"(prev), "+m"(*p)
			 : "r"(new), "0"(old)
			 : "memory");
	return prev == old;
}

static inline uint64_t atomic_add(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

/* Raise *p to v if v is larger.  Safe against interrupts on this CPU
 * and against other CPUs, which is what gap tracking needs. */
static inline void atomic_max(volatile uint64_t *p, uint64_t v)
{
	uint64_t cur = *p;
	while (v > cur && !atomic_cas(p, cur, v))
		cur = *p;
}

static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

/* ---------------------------------------------------------------- */
/* Per-CPU state.  %gs:0 points at the running CPU's struct. */

/* 64-bit task state segment: only RSP0 matters (the stack interrupts
 * from ring 3 switch to); no I/O bitmap, ring 3 gets ports by IOPL. */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct cpu {
	struct cpu *self;		/* must stay first: read via %gs:0 */
	unsigned index;
	unsigned apic_id;
	volatile uint64_t online;
	uint64_t gdt[GDT_ENTRIES];
	struct tss tss;
	uint8_t *kstack_top;		/* ring 0: boot and interrupts */
	uint8_t *ustack_top;		/* ring 3: the workload */

	/* Written by this CPU (and its interrupt handlers), read by the
	 * BSP for status lines.  Aligned 64-bit stores are atomic. */
	volatile uint64_t ticks;
	volatile uint64_t last_progress;	/* TSC of last progress */
	volatile uint64_t max_gap;		/* TSC cycles, since start */
	volatile uint64_t period_gap;		/* since the last status */
	volatile uint64_t unexpected_irqs;
	volatile uint64_t nmis;

	/* Workload share and counters. */
	uint64_t first_page;		/* index into the region */
	uint64_t npages;
	uint64_t rate;			/* pages/s for this CPU, 0 = max */
	volatile uint64_t work;		/* dirtied / rewrites / loops */
	volatile uint64_t verified;
	volatile uint64_t verify_errors;
	volatile uint64_t full_passes;
	volatile uint64_t filled;		/* verify: pages initialised */
	uint64_t rng;
} __attribute__((aligned(64)));

extern struct cpu cpus[MAX_CPUS];
extern volatile uint64_t cpus_online;

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ volatile("movq %%gs:0, %0" : "=r"(c));
	return c;
}

/* Record that this CPU made progress now; the time since the previous
 * record is a gap.  xchg makes the read-and-replace one instruction, so
 * the timer interrupt can record in between without corrupting it. */
static inline void progress(struct cpu *c)
{
	uint64_t now = rdtsc();
	uint64_t prev = atomic_xchg(&c->last_progress, now);

	if (now > prev) {
		uint64_t gap = now - prev;
		if (gap > c->period_gap)
			atomic_max(&c->period_gap, gap);
		if (gap > c->max_gap)
			atomic_max(&c->max_gap, gap);
	}
}

/* ---------------------------------------------------------------- */
/* Configuration from the command line */

enum workload {
	WL_IDLE,
	WL_DIRTY,
	WL_VERIFY,
	WL_POWEROFF,
	WL_TRIPLEFAULT,
	WL_SSE,
	WL_CPUHOG,
	WL_CPUID,
	WL_KV,
	WL_DISKLOG,
	WL_VIRTIO_HOSTILE,
};

/* One `virtio_mmio.device=<size>@<base>:<gsi>` word. */
struct virtio_window {
	uint64_t base, size;
	uint32_t gsi;
};
#define MAX_VIRTIO_WINDOWS 8

struct config {
	char cmdline[CMDLINE_MAX];
	enum workload workload;
	const char *workload_name;
	uint64_t wss_mb;
	uint64_t rate;
	uint64_t after_ms;
	uint64_t hz;
	uint64_t ncpus;
	uint64_t fullpass_s;
	uint64_t code;
	uint64_t inject_stale_ms;
	bool crash_on_panic;
	bool rate_given;

	/* virtio devices, in command-line order (the slot numbers). */
	struct virtio_window virtio[MAX_VIRTIO_WINDOWS];
	unsigned nvirtio;
	bool virtio_poll;		/* never wait for interrupts */
	/* Network (host byte order); ip 0 = not configured. */
	uint32_t ip, netmask, gw;
	uint64_t kv_port;
	uint64_t flush_every;		/* disklog */
	uint64_t hostile_mode;		/* virtio_hostile */
};

extern struct config cfg;

/* ---------------------------------------------------------------- */
/* Memory */

struct range {
	uint64_t start, end;		/* [start, end), page aligned */
};

#define MAX_RANGES 64

struct region {
	/* A workload's pages, possibly spread over several free ranges.
	 * Page i of the region lives in the chunk whose [first, first +
	 * npages) holds i. */
	unsigned nchunks;
	struct {
		uint64_t base;
		uint64_t first;
		uint64_t npages;
	} chunk[MAX_RANGES];
	uint64_t npages;
};

extern uint64_t ram_bytes;

void mm_init(const struct range *ram, unsigned nram,
	     const struct range *reserved, unsigned nres);
uint64_t mm_free_bytes(void);
void *mm_alloc_contig(uint64_t bytes);
uint64_t mm_alloc_region(struct region *r, uint64_t npages);
bool mm_is_ram(uint64_t start, uint64_t end);
bool mm_overlaps_ram(uint64_t start, uint64_t end);

static inline uint64_t *region_page(const struct region *r, uint64_t i)
{
	for (unsigned k = 0; k < r->nchunks; k++)
		if (i - r->chunk[k].first < r->chunk[k].npages)
			return (uint64_t *)(uintptr_t)
				(r->chunk[k].base +
				 (i - r->chunk[k].first) * PAGE_SIZE);
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Console and formatting */

void serial_init(void);
void console_write(const char *s, size_t n);
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void printk_unlocked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintk(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsnprintk(char *buf, size_t n, const char *fmt, va_list ap);
void __attribute__((noreturn)) panic(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct spinlock {
	volatile uint64_t held;
};
void spin_lock(struct spinlock *l);
bool spin_trylock_for(struct spinlock *l, uint64_t tsc_cycles);
void spin_unlock(struct spinlock *l);
extern struct spinlock console_lock;

/* ---------------------------------------------------------------- */
/* Library */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
bool str_eq_n(const char *a, size_t alen, const char *b);
bool parse_u64(const char *s, size_t n, uint64_t *out);
bool parse_ipv4(const char *s, size_t n, uint32_t *out);

/* ---------------------------------------------------------------- */
/* Time */

extern uint64_t tsc_khz;
extern uint64_t lapic_khz;
extern uint64_t tsc_boot;

static inline uint64_t tsc_to_ms(uint64_t d)
{
	return d / tsc_khz;
}

/* Split so that d * 1000 never overflows 64 bits. */
static inline uint64_t tsc_to_us(uint64_t d)
{
	return d / tsc_khz * 1000 + d % tsc_khz * 1000 / tsc_khz;
}

static inline uint64_t ms_to_tsc(uint64_t ms)
{
	return ms * tsc_khz;
}

void udelay(uint64_t us);
const char *time_calibrate(void);

/* ---------------------------------------------------------------- */
/* Interrupts, LAPIC, SMP */

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

void idt_init(void);
void cpu_load_tables(struct cpu *c);
void enter_user(struct cpu *c, void (*fn)(struct cpu *)) __attribute__((noreturn));
void pic_disable(void);
void lapic_init(void);
void lapic_timer_start(uint64_t hz);
void lapic_eoi(void);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
unsigned lapic_id(void);
void interrupt_dispatch(struct frame *f);
extern volatile uint64_t panicked;

unsigned smp_boot(unsigned ncpus);
void ap_main(struct cpu *c);

/* ---------------------------------------------------------------- */
/* Workloads */

void workload_prepare(void);
/* One progress point of a workload loop: records progress, stops after
 * a panic elsewhere and prints the status line when due (BSP). */
void workload_poll(struct cpu *c);
void __attribute__((noreturn)) workload_idle(struct cpu *c);

/* Multiply-xorshift mixer (also the disklog payload: see README.md). */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 29;
	x *= 0x9e3779b97f4a7c15ULL;
	x ^= x >> 32;
	return x;
}
void workload_run(struct cpu *c) __attribute__((noreturn));
extern volatile uint64_t workload_go;

extern uint8_t kstacks[MAX_CPUS][STACK_SIZE], ustacks[MAX_CPUS][STACK_SIZE];

/* From entry.S */
extern char ap_tramp16[], ap_tramp16_end[];
extern char gdt_boot[], gdt_boot_end[];
extern uint64_t boot_pml4[512], boot_pdpt[512];
extern volatile uint64_t ap_boot_stack, ap_boot_cpu;
extern char isr_stubs[];
extern char __image_start[], _end[];
void sse_probe(void);

#endif
