/*
 * tandem-guest: physical memory.
 *
 * The memory map is the only source of truth: a loader may hand us
 * unsorted, overlapping entries, RAM that a reserved entry overlaps, or
 * sizes that are not page multiples.  We reduce it to a sorted set of
 * disjoint, page-aligned free ranges and hand out pages from those.
 * Nothing is ever freed: workloads allocate once at start.
 */
#include "guest.h"

uint64_t ram_bytes;

static struct range usable[MAX_RANGES];	/* RAM minus reserved */
static unsigned nusable;
static struct range freer[MAX_RANGES];	/* usable minus what we keep */
static unsigned nfree;

/* Page directories for RAM above 4 GiB: 4 KiB each maps 1 GiB.  A static
 * pool keeps the allocator out of page-table bootstrapping; 64 of them
 * cover guests up to 68 GiB, far more than a test guest needs. */
#define PD_POOL 64
static uint64_t pd_pool[PD_POOL][512] __attribute__((aligned(4096)));
static unsigned pd_used;

static void ranges_add(struct range *r, unsigned *n, uint64_t s, uint64_t e)
{
	if (s >= e || *n >= MAX_RANGES)
		return;
	r[*n].start = s;
	r[*n].end = e;
	(*n)++;
}

/* Insertion sort and merge of overlapping or touching ranges. */
static void ranges_normalise(struct range *r, unsigned *n)
{
	for (unsigned i = 1; i < *n; i++) {
		struct range t = r[i];
		unsigned j = i;
		while (j > 0 && r[j - 1].start > t.start) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = t;
	}
	unsigned out = 0;
	for (unsigned i = 0; i < *n; i++) {
		if (out && r[i].start <= r[out - 1].end) {
			if (r[i].end > r[out - 1].end)
				r[out - 1].end = r[i].end;
		} else {
			r[out++] = r[i];
		}
	}
	*n = out;
}

/* Remove [s, e) from a normalised set, splitting a range if needed. */
static void ranges_remove(struct range *r, unsigned *n, uint64_t s, uint64_t e)
{
	if (s >= e)
		return;
	for (unsigned i = 0; i < *n; i++) {
		if (r[i].end <= s || r[i].start >= e)
			continue;
		if (r[i].start >= s && r[i].end <= e) {
			/* Fully covered: drop it. */
			for (unsigned j = i + 1; j < *n; j++)
				r[j - 1] = r[j];
			(*n)--;
			i--;
		} else if (r[i].start < s && r[i].end > e) {
			/* Hole in the middle: split in two. */
			if (*n >= MAX_RANGES) {
				r[i].end = s;	/* no room: lose the top */
				continue;
			}
			for (unsigned j = *n; j > i + 1; j--)
				r[j] = r[j - 1];
			r[i + 1].start = e;
			r[i + 1].end = r[i].end;
			r[i].end = s;
			(*n)++;
			i++;
		} else if (r[i].start < s) {
			r[i].end = s;
		} else {
			r[i].start = e;
		}
	}
}

/* Identity-map [4 GiB, end) with 2 MiB pages.  Returns how far mapping
 * got: the pool or the one PDPT (512 GiB) may run out. */
static uint64_t map_high(uint64_t start, uint64_t end)
{
	if (start < 4 * GiB)
		start = 4 * GiB;
	for (uint64_t gb = start >> 30; gb < (end + GiB - 1) >> 30; gb++) {
		if (gb >= 512)
			return 512 * GiB;
		if (boot_pdpt[gb] & 1)
			continue;
		if (pd_used >= PD_POOL)
			return gb << 30;
		uint64_t *pd = pd_pool[pd_used++];
		for (uint64_t i = 0; i < 512; i++)
			pd[i] = ((gb << 30) + (i << 21)) | 0x87;
		barrier();
		/* present | writable | user, as in entry.S */
		boot_pdpt[gb] = (uintptr_t)pd | 7;
	}
	return end;
}

void mm_init(const struct range *ram, unsigned nram,
	     const struct range *reserved, unsigned nres)
{
	nusable = 0;
	for (unsigned i = 0; i < nram; i++)
		ranges_add(usable, &nusable, ram[i].start, ram[i].end);
	ranges_normalise(usable, &nusable);
	ram_bytes = 0;
	for (unsigned i = 0; i < nusable; i++)
		ram_bytes += usable[i].end - usable[i].start;
	/* Where a map says both RAM and reserved, reserved wins. */
	for (unsigned i = 0; i < nres; i++)
		ranges_remove(usable, &nusable, reserved[i].start,
			      reserved[i].end);

	uint64_t limit = UINT64_MAX;
	for (unsigned i = 0; i < nusable; i++) {
		if (usable[i].end <= 4 * GiB)
			continue;
		uint64_t got = map_high(usable[i].start, usable[i].end);
		if (got < usable[i].end) {
			limit = got > usable[i].start ? got : usable[i].start;
			if (limit < 4 * GiB)
				limit = 4 * GiB;
			break;
		}
	}
	if (limit != UINT64_MAX) {
		printk("TANDEM-GUEST warning unmapped_ram_above=0x%lx\n", limit);
		ranges_remove(usable, &nusable, limit, UINT64_MAX);
	}
	write_cr3(read_cr3());		/* new entries only, but be plain */

	nfree = nusable;
	for (unsigned i = 0; i < nusable; i++)
		freer[i] = usable[i];
	/* The first 64 KiB hold the VMM's start info and our AP
	 * trampoline; the legacy VGA/BIOS hole is never ours; nor is the
	 * image itself (text, data, bss, stacks, page tables). */
	ranges_remove(freer, &nfree, 0, 0x10000);
	ranges_remove(freer, &nfree, 0xa0000, 0x100000);
	ranges_remove(freer, &nfree, (uintptr_t)__image_start & ~(PAGE_SIZE - 1),
		      ((uintptr_t)_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
}

bool mm_is_ram(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < nusable; i++)
		if (usable[i].start <= start && end <= usable[i].end)
			return true;
	return false;
}

bool mm_overlaps_ram(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < nusable; i++)
		if (usable[i].start < end && start < usable[i].end)
			return true;
	return false;
}

uint64_t mm_free_bytes(void)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < nfree; i++)
		sum += freer[i].end - freer[i].start;
	return sum;
}

/* Search order: above 1 MiB first (low memory is small and fragmented),
 * then low memory last. */
static bool pass_accepts(unsigned pass, const struct range *r)
{
	return pass == 0 ? r->start >= 0x100000 : r->start < 0x100000;
}

void *mm_alloc_contig(uint64_t bytes)
{
	bytes = (bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < nfree; i++) {
			if (!pass_accepts(pass, &freer[i]) ||
			    freer[i].end - freer[i].start < bytes)
				continue;
			uint64_t p = freer[i].start;
			freer[i].start += bytes;
			return (void *)(uintptr_t)p;
		}
	}
	return NULL;
}

/* Gather up to npages pages from the free ranges into r; returns how
 * many were found. */
uint64_t mm_alloc_region(struct region *r, uint64_t npages)
{
	r->nchunks = 0;
	r->npages = 0;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < nfree && r->npages < npages; i++) {
			if (!pass_accepts(pass, &freer[i]) ||
			    r->nchunks >= MAX_RANGES)
				continue;
			uint64_t avail = (freer[i].end - freer[i].start) / PAGE_SIZE;
			uint64_t take = npages - r->npages;
			if (take > avail)
				take = avail;
			if (!take)
				continue;
			r->chunk[r->nchunks].base = freer[i].start;
			r->chunk[r->nchunks].first = r->npages;
			r->chunk[r->nchunks].npages = take;
			r->nchunks++;
			r->npages += take;
			freer[i].start += take * PAGE_SIZE;
		}
	}
	return r->npages;
}
