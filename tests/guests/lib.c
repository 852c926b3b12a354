/*
 * tandem-guest: the few C library pieces a freestanding kernel needs.
 *
 * The compiler may emit calls to memset/memcpy/memmove/memcmp even with
 * -ffreestanding (structure copies, zeroing), so they must exist.  The
 * bodies use rep movs/stos so GCC cannot turn them back into calls to
 * themselves, and they use no vector registers.
 */
#include "guest.h"

void *memset(void *d, int c, size_t n)
{
	void *p = d;
	__asm__ volatile("rep stosb"
			 : "+D"(p), "+c"(n)
			 : "a"(c)
			 : "memory");
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *p = d;
	__asm__ volatile("rep movsb"
			 : "+D"(p), "+S"(s), "+c"(n)
			 :
			 : "memory");
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	if ((uintptr_t)d <= (uintptr_t)s || (uintptr_t)d >= (uintptr_t)s + n)
		return memcpy(d, s, n);
	/* Overlapping with the destination above: copy backwards. */
	unsigned char *dp = (unsigned char *)d + n - 1;
	const unsigned char *sp = (const unsigned char *)s + n - 1;
	__asm__ volatile("std; rep movsb; cld"
			 : "+D"(dp), "+S"(sp), "+c"(n)
			 :
			 : "memory");
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* Does the (not terminated) string a[0..alen) equal the C string b? */
bool str_eq_n(const char *a, size_t alen, const char *b)
{
	size_t i;
	for (i = 0; i < alen; i++)
		if (b[i] != a[i])
			return false;
	return b[i] == '\0';
}

/* Decimal, or hex with 0x.  Rejects empty strings, junk and overflow so
 * a typo on the command line falls back to the default instead of
 * becoming some odd number. */
bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, base = 10;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		return false;
	for (; i < n; i++) {
		unsigned d;
		char ch = s[i];
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (base == 16 && ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (base == 16 && ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

/* ---------------------------------------------------------------- */
/* A small printf: %s %c %d %i %u %x %p with l/ll/z modifiers, '0' flag
 * and a width.  Enough for status lines; no floating point on purpose. */

struct outbuf {
	char *buf;
	size_t size, len;
};

static void put(struct outbuf *o, char ch)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = ch;
	o->len++;
}

static void put_uint(struct outbuf *o, uint64_t v, unsigned base,
		     unsigned width, char pad)
{
	char tmp[24];
	unsigned n = 0;

	do {
		unsigned d = v % base;
		tmp[n++] = d < 10 ? '0' + d : 'a' + d - 10;
		v /= base;
	} while (v);
	while (width > n) {
		put(o, pad);
		width--;
	}
	while (n)
		put(o, tmp[--n]);
}

int vsnprintk(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		unsigned width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			size_t len = strlen(s);
			while (width > len) {
				put(&o, ' ');
				width--;
			}
			while (*s)
				put(&o, *s++);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t u = (uint64_t)v;
			if (v < 0) {
				put(&o, '-');
				u = -u;
			}
			put_uint(&o, u, 10, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t)
					 : va_arg(ap, unsigned);
			put_uint(&o, v, *fmt == 'x' ? 16 : 10, width, pad);
			break;
		}
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_uint(&o, (uintptr_t)va_arg(ap, void *), 16, width,
				 pad);
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintk(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintk(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

/* ---------------------------------------------------------------- */
/* Spinlocks (test-and-test-and-set with xchg). */

void spin_lock(struct spinlock *l)
{
	while (atomic_xchg(&l->held, 1))
		while (l->held)
			cpu_relax();
}

/* For the panic path: a CPU that faults while holding the console lock
 * must still get its message out, so give up waiting after a while. */
bool spin_trylock_for(struct spinlock *l, uint64_t cycles)
{
	uint64_t start = rdtsc();
	while (atomic_xchg(&l->held, 1)) {
		if (rdtsc() - start > cycles)
			return false;
		cpu_relax();
	}
	return true;
}

void spin_unlock(struct spinlock *l)
{
	barrier();
	l->held = 0;
}

/* Dotted quad a.b.c.d, each part decimal 0..255; host byte order. */
bool parse_ipv4(const char *s, size_t n, uint32_t *out)
{
	uint32_t addr = 0;
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		uint32_t v = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (uint32_t)(s[i++] - '0');
		if (i == start || v > 255)
			return false;
		addr = addr << 8 | v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
	}
	if (i != n)
		return false;
	*out = addr;
	return true;
}
