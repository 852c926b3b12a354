/*
 * tandem-guest: 16550 console at 0x3f8, polled.
 *
 * Polled output keeps the console usable from any context (including
 * exception handlers) and needs no interrupt routing.  Lines end in a
 * bare "\n": the consumers are log parsers, not terminals.
 */
#include "guest.h"

#define COM1		0x3f8
#define UART_THR	0	/* transmit holding (DLAB = 0) */
#define UART_DLL	0	/* divisor low (DLAB = 1) */
#define UART_IER	1
#define UART_DLM	1	/* divisor high (DLAB = 1) */
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define LSR_THRE	0x20

struct spinlock console_lock;

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);	/* no interrupts: we poll */
	outb(COM1 + UART_LCR, 0x80);	/* DLAB on to reach the divisor */
	outb(COM1 + UART_DLL, 0x01);	/* 115200 = 115200 / 1 */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, 0x03);	/* 8N1, DLAB off */
	outb(COM1 + UART_FCR, 0x07);	/* FIFO on, both cleared */
	outb(COM1 + UART_MCR, 0x03);	/* DTR, RTS */
	/* Firmware (SeaBIOS under QEMU) may have left a partial line; our
	 * lines must start at column 0 to be found. */
	console_write("\n", 1);
}

static void serial_putc(char ch)
{
	/* Bounded wait: with no UART the port reads 0xff (THRE set), but an
	 * emulation that never sets THRE must not stall us for long.  A
	 * character takes 87 us at 115200 baud; allow 2 ms (or a fixed
	 * number of polls before the TSC rate is known). */
	uint64_t start = rdtsc(), limit = tsc_khz * 2;
	for (unsigned i = 0; !(inb(COM1 + UART_LSR) & LSR_THRE); i++) {
		if (limit ? rdtsc() - start > limit : i > 1000)
			break;
		cpu_relax();
	}
	outb(COM1 + UART_THR, (uint8_t)ch);
}

void console_write(const char *s, size_t n)
{
	if (in_user_mode()) {
		/* Ports need ring 0; one request per chunk, not per byte. */
		while (n) {
			size_t k = n > 4096 ? 4096 : n;
			syscall2(SYS_WRITE, (uintptr_t)s, k);
			s += k;
			n -= k;
		}
		return;
	}
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}

static void vprintk(bool lock, const char *fmt, va_list ap)
{
	char buf[1536];
	int n = vsnprintk(buf, sizeof(buf), fmt, ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	/* Whole lines under the lock so CPUs never interleave mid-line. */
	if (lock)
		spin_lock(&console_lock);
	console_write(buf, (size_t)n);
	if (lock)
		spin_unlock(&console_lock);
}

void printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintk(true, fmt, ap);
	va_end(ap);
}

void printk_unlocked(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintk(false, fmt, ap);
	va_end(ap);
}

volatile uint64_t panicked;

/* Print one "TANDEM-GUEST panic=<what> ..." line and stop this CPU with
 * interrupts off.  The other CPUs notice `panicked` at their next
 * progress point and stop too, so no status line follows a panic. */
void panic(const char *what, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	struct cpu *c = this_cpu();

	if (!in_user_mode())
		irq_disable();
	atomic_add(&panicked, 1);
	va_start(ap, fmt);
	vsnprintk(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	/* ~100 ms at 1 GHz, and still bounded if the TSC is not yet known. */
	bool locked = spin_trylock_for(&console_lock, 100000000ULL);
	printk_unlocked("TANDEM-GUEST panic=%s cpu=%u %s\n", what,
			c ? c->index : 0, buf);
	if (locked)
		spin_unlock(&console_lock);
	if (cfg.crash_on_panic)
		port_outb(PORT_SHUTDOWN, SHUTDOWN_CRASH);
	halt_forever();
}
