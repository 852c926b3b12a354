/*
 * tandem-guest: virtio-mmio transport (version 2) and split virtqueues.
 *
 * Devices are found only through the `virtio_mmio.device=` words of the
 * command line: Tandem places them at 0xD0000000 + 4 KiB * i, QEMU's
 * microvm at 0xFEB00000 + 512 * i, and neither is assumed here.
 *
 * Interrupts, or polling?  Ring 0 is the slow ring on the development
 * host (emulated, about 1 us per instruction) and ring 3 the fast one.
 * So the drivers do all their work in ring 3 and look at the used rings
 * on every pass of their loop, which costs a few native memory reads.
 * An interrupt only ends the wait when there was nothing to do: the
 * handler in arch.c counts and sends EOI (a few dozen emulated
 * instructions), and SYS_WAIT_IRQ sleeps only if no interrupt came since
 * the loop last looked.  Without interrupts a halted guest would notice
 * a packet at the next timer tick (4 ms at hz=250); spinning instead
 * (virtio_poll=1) answers a little sooner but keeps a vCPU busy for
 * ever.  Register accesses (notify, interrupt acknowledge) are made from
 * ring 3 too: an MMIO access exits to the VMM from either ring, unlike
 * port I/O, which PVM refuses to ring 3.
 */
#include "virtio.h"

#define IOAPIC_BASE	0xfec00000ULL
#define IOAPIC_REGSEL	0x00
#define IOAPIC_WIN	0x10
#define IOAPIC_REG_VER	0x01
#define IOAPIC_REDIR(n)	(0x10 + 2 * (n))

volatile uint64_t virtio_irq_count[MAX_VIRTIO];
volatile uint64_t virtio_irq_all;

/* Windows already complained about, so several virtio_find() calls
 * print each warning once. */
static uint32_t warned_slots;

void virtio_wait(uint64_t seen)
{
	if (cfg.virtio_poll) {
		cpu_relax();
		return;
	}
	syscall2(SYS_WAIT_IRQ, (uintptr_t)&virtio_irq_all, seen);
}

/* ---------------------------------------------------------------- */
/* Command line */

/* A number with an optional K/M/G suffix (Linux's memparse), as the
 * size of a virtio_mmio.device word: "4K", "512", "0x1000". */
static bool parse_size(const char *s, size_t n, uint64_t *out)
{
	unsigned shift = 0;

	/* k, m and g are no hex digits, so "0x4K" is unambiguous too. */
	if (n > 1) {
		switch (s[n - 1]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		}
		if (shift)
			n--;
	}
	uint64_t v;
	if (!parse_u64(s, n, &v) || v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* <size>@<base>:<gsi>, optionally followed by ":<id>" (Linux allows a
 * platform device id there), which is ignored. */
bool virtio_parse_device(const char *v, size_t n, uint64_t *size,
			 uint64_t *base, uint32_t *gsi)
{
	size_t at = 0, colon, end;
	uint64_t irq;

	while (at < n && v[at] != '@')
		at++;
	if (at == n)
		return false;
	colon = at + 1;
	while (colon < n && v[colon] != ':')
		colon++;
	if (colon == n)
		return false;
	end = colon + 1;
	while (end < n && v[end] != ':')
		end++;
	if (!parse_size(v, at, size) || !*size ||
	    !parse_u64(v + at + 1, colon - at - 1, base) ||
	    !parse_u64(v + colon + 1, end - colon - 1, &irq) || irq > 255)
		return false;
	*gsi = (uint32_t)irq;
	return *base + *size > *base;
}

/* ---------------------------------------------------------------- */
/* Ring 0, once: the identity map is write-back everywhere below 4 GiB
 * except its top 32 MiB; device registers must not be cached.  Each 2
 * MiB page that holds a window (and no RAM) becomes uncached. */
void virtio_map_windows(void)
{
	bool changed = false;

	for (unsigned i = 0; i < cfg.nvirtio; i++) {
		const struct virtio_window *w = &cfg.virtio[i];
		if (w->base + w->size > 4 * GiB) {
			printk("TANDEM-GUEST warning virtio_window_above_4g slot=%u "
			       "base=0x%lx\n", i, w->base);
			continue;
		}
		for (uint64_t p = w->base & ~(2 * MiB - 1); p < w->base + w->size;
		     p += 2 * MiB) {
			if (mm_overlaps_ram(p, p + 2 * MiB)) {
				/* Still works (the access exits anyway), but
				 * say so: it is a strange placement. */
				printk("TANDEM-GUEST warning virtio_window_near_ram "
				       "slot=%u base=0x%lx\n", i, w->base);
				continue;
			}
			uint64_t *pd = (uint64_t *)(uintptr_t)
				(boot_pdpt[p >> 30] & ~0xfffULL);
			pd[(p >> 21) & 511] |= 0x18;	/* PCD | PWT */
			changed = true;
		}
	}
	if (changed)
		write_cr3(read_cr3());	/* no global pages: flushes all */
}

/* ---------------------------------------------------------------- */
/* Config space: 1/2/4-byte accesses; 64 bits as two halves under the
 * generation counter so a change in between is seen and retried. */

uint8_t virtio_config_read8(const struct virtio_dev *d, uint32_t off)
{
	return *(volatile uint8_t *)(uintptr_t)(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t virtio_config_read16(const struct virtio_dev *d, uint32_t off)
{
	return *(volatile uint16_t *)(uintptr_t)(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config_read32(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio_config_read64(const struct virtio_dev *d, uint32_t off)
{
	uint32_t gen, lo, hi;
	unsigned tries = 0;

	do {
		gen = vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
		lo = virtio_config_read32(d, off);
		hi = virtio_config_read32(d, off + 4);
	} while (vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION) != gen && ++tries < 100);
	return (uint64_t)hi << 32 | lo;
}

/* ---------------------------------------------------------------- */
/* Discovery and initialisation (virtio 1.x section 3.1.1) */

static void warn_slot(unsigned slot, const char *what, uint64_t base,
		      uint32_t value)
{
	if (warned_slots & (1u << slot))
		return;
	warned_slots |= 1u << slot;
	printk("TANDEM-GUEST warning virtio_%s slot=%u base=0x%lx value=0x%x\n",
	       what, slot, base, value);
}

int virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *d)
{
	for (unsigned i = 0; i < cfg.nvirtio && i < MAX_VIRTIO; i++) {
		const struct virtio_window *w = &cfg.virtio[i];
		if (w->size < VIRTIO_MMIO_CONFIG || w->base + w->size > 4 * GiB) {
			warn_slot(i, "bad_window", w->base, (uint32_t)w->size);
			continue;
		}
		uint32_t magic = mmio_read32(w->base + VIRTIO_MMIO_MAGIC);
		if (magic != VIRTIO_MMIO_MAGIC_VALUE) {
			warn_slot(i, "bad_magic", w->base, magic);
			continue;
		}
		uint32_t version = mmio_read32(w->base + VIRTIO_MMIO_VERSION);
		if (version != 2) {
			/* 1 is the legacy interface; QEMU needs
			 * -global virtio-mmio.force-legacy=false. */
			warn_slot(i, "unsupported_version", w->base, version);
			continue;
		}
		uint32_t id = mmio_read32(w->base + VIRTIO_MMIO_DEVICE_ID);
		if (id != device_id)
			continue;
		if (nth--)
			continue;
		memset(d, 0, sizeof(*d));
		d->slot = i;
		d->base = w->base;
		d->gsi = w->gsi;
		d->device_id = id;
		d->vendor_id = mmio_read32(w->base + VIRTIO_MMIO_VENDOR_ID);
		return 0;
	}
	return -ENODEV;
}

static void set_status(struct virtio_dev *d, uint32_t bits)
{
	vio_write(d, VIRTIO_MMIO_STATUS, vio_read(d, VIRTIO_MMIO_STATUS) | bits);
}

int virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
	const uint64_t version_1 = 1ULL << VIRTIO_F_VERSION_1;

	/* Reset and wait for it to finish (a device may take its time). */
	vio_write(d, VIRTIO_MMIO_STATUS, 0);
	for (unsigned i = 0; vio_read(d, VIRTIO_MMIO_STATUS) != 0; i++) {
		if (i > 1000)
			return -EIO;
		cpu_relax();
	}
	set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(d, VIRTIO_STATUS_DRIVER);

	vio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = vio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	vio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)vio_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	if (!(offered & version_1)) {
		set_status(d, VIRTIO_STATUS_FAILED);
		return -EPROTO;
	}

	uint64_t accept = offered & (wanted | version_1);
	vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
	vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
	set_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (!(vio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		set_status(d, VIRTIO_STATUS_FAILED);
		return -EPROTO;
	}
	d->features = accept;
	return 0;
}

int virtq_setup(struct virtio_dev *d, unsigned index, uint16_t want)
{
	if (index >= sizeof(d->vq) / sizeof(d->vq[0]))
		return -EINVAL;
	struct virtq *q = &d->vq[index];

	vio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (vio_read(d, VIRTIO_MMIO_QUEUE_READY))
		return -EIO;		/* still live after a reset? */
	uint32_t max = vio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!max)
		return -ENODEV;
	uint32_t size = want;
	if (size > max)
		size = max;
	if (size > VIRTQ_MAX_SIZE)
		size = VIRTQ_MAX_SIZE;
	/* Split rings have power-of-two sizes. */
	while (size & (size - 1))
		size &= size - 1;
	if (!size)
		return -EINVAL;

	/* Descriptors (16-byte aligned), then the driver ring (2), then
	 * the device ring (4), in one zeroed allocation. */
	uint64_t desc_bytes = 16ULL * size;
	uint64_t avail_bytes = (6 + 2ULL * size + 3) & ~3ULL;
	uint64_t used_bytes = 6 + 8ULL * size;
	uint64_t total = desc_bytes + avail_bytes + used_bytes;
	uint8_t *mem = mm_alloc_contig(total);
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, (total + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));

	memset(q, 0, sizeof(*q));
	q->index = (uint16_t)index;
	q->size = (uint16_t)size;
	q->desc = (volatile struct virtq_desc *)mem;
	q->avail = (volatile struct virtq_avail *)(mem + desc_bytes);
	q->used = (volatile struct virtq_used *)(mem + desc_bytes + avail_bytes);
	for (uint16_t i = 0; i < size; i++)
		q->next_free[i] = i + 1;
	q->free_head = 0;
	q->nfree = (uint16_t)size;

	uint64_t desc = (uintptr_t)q->desc, avail = (uintptr_t)q->avail;
	uint64_t used = (uintptr_t)q->used;
	vio_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
	vio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	vio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	vio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	vio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	vio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	vio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	vio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (index + 1 > d->nvq)
		d->nvq = index + 1;
	return 0;
}

static uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(IOAPIC_BASE + IOAPIC_WIN);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

/* Edge-triggered, active high, fixed delivery to the BSP in physical
 * destination mode, on the slot's own vector.  Only the BSP touches the
 * IOAPIC, so the select/window pair needs no lock. */
static bool route_irq(struct virtio_dev *d)
{
	uint32_t ver = ioapic_read(IOAPIC_REG_VER);
	uint32_t max_pin = (ver >> 16) & 0xff;

	if (ver == 0xffffffffu || d->gsi > max_pin || d->slot >= MAX_VIRTIO)
		return false;
	ioapic_write(IOAPIC_REDIR(d->gsi) + 1, cpus[0].apic_id << 24);
	ioapic_write(IOAPIC_REDIR(d->gsi), VEC_VIRTIO_BASE + d->slot);
	return true;
}

void virtio_go(struct virtio_dev *d)
{
	set_status(d, VIRTIO_STATUS_DRIVER_OK);
	d->irq_routed = !cfg.virtio_poll && route_irq(d);
	if (!cfg.virtio_poll && !d->irq_routed)
		printk("TANDEM-GUEST warning virtio_irq_unroutable slot=%u gsi=%u "
		       "mode=tick_polling\n", d->slot, d->gsi);
	/* Whatever the device raised before the pin was programmed is
	 * acknowledged here, so the next event makes a fresh edge. */
	uint32_t isr = vio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr)
		vio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	d->irq_seen = virtio_irq_count[d->slot];
	d->last_ack_tsc = rdtsc();
}

void virtio_ack(struct virtio_dev *d)
{
	if (!d->irq_routed)
		return;
	uint64_t count = virtio_irq_count[d->slot], now = rdtsc();
	if (count == d->irq_seen && now - d->last_ack_tsc < ms_to_tsc(VIRTIO_REACK_MS))
		return;
	d->irq_seen = count;
	d->last_ack_tsc = now;
	uint32_t isr = vio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr)
		vio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
}

bool virtio_broken(const struct virtio_dev *d)
{
	uint32_t st = vio_read(d, VIRTIO_MMIO_STATUS);
	return (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) ||
	       !(st & VIRTIO_STATUS_DRIVER_OK);
}

/* ---------------------------------------------------------------- */
/* Descriptor chains */

int virtq_alloc_chain(struct virtq *q, unsigned n, uint16_t *ids)
{
	if (!n || n > q->nfree)
		return -ENOBUFS;
	for (unsigned k = 0; k < n; k++) {
		ids[k] = q->free_head;
		q->free_head = q->next_free[q->free_head];
	}
	q->nfree -= (uint16_t)n;
	for (unsigned k = 0; k + 1 < n; k++)
		q->chain_next[ids[k]] = ids[k + 1];
	q->chain_len[ids[0]] = (uint16_t)n;
	return 0;
}

static void free_chain(struct virtq *q, uint16_t head)
{
	uint16_t id = head, n = q->chain_len[head];

	q->chain_len[head] = 0;
	for (uint16_t k = 0; k < n; k++) {
		uint16_t next = q->chain_next[id];
		q->next_free[id] = q->free_head;
		q->free_head = id;
		q->nfree++;
		id = next;
	}
}

void virtq_publish(struct virtq *q, uint16_t head)
{
	/* Links come from our private copy: what the device may have
	 * written into the table since last time does not matter. */
	uint16_t id = head, n = q->chain_len[head];
	for (uint16_t k = 0; k < n; k++) {
		if (k + 1 < n) {
			q->desc[id].next = q->chain_next[id];
			q->desc[id].flags |= VIRTQ_DESC_F_NEXT;
			id = q->chain_next[id];
		} else {
			q->desc[id].next = 0;
			q->desc[id].flags &= (uint16_t)~VIRTQ_DESC_F_NEXT;
		}
	}
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	/* x86 keeps stores in order; the compiler must too: descriptors
	 * and the ring entry before the index. */
	barrier();
	q->avail->idx = ++q->avail_idx;
}

void virtq_kick(const struct virtio_dev *d, const struct virtq *q)
{
	/* The index store must reach memory before the doorbell; on x86
	 * an uncached store is not reordered with earlier stores. */
	barrier();
	vio_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

bool virtq_reap(struct virtq *q, uint16_t *head, uint32_t *len)
{
	for (;;) {
		uint16_t used_idx = q->used->idx;
		if (used_idx == q->used_seen)
			return false;
		/* Loads stay in order on x86: the entry is read after the
		 * index that published it. */
		barrier();
		volatile struct virtq_used_elem *e =
			&q->used->ring[q->used_seen & (q->size - 1)];
		uint32_t id = e->id, n = e->len;
		q->used_seen++;
		if (id >= q->size || !q->chain_len[id]) {
			/* Not a chain we gave it: count, never trust. */
			q->bad_used++;
			continue;
		}
		free_chain(q, (uint16_t)id);
		*head = (uint16_t)id;
		*len = n;
		return true;
	}
}
