/* Guest-physical memory as the VMM sees it: up to two host mappings, RAM
 * below the 32-bit MMIO hole and RAM above 4 GiB. */
#ifndef TANDEM_GUEST_MEMORY_H
#define TANDEM_GUEST_MEMORY_H

#include <stdint.h>
#include <stddef.h>

/* RAM above this goes to 4 GiB and up, leaving room for the LAPIC, IOAPIC
 * and (later) device MMIO below 4 GiB. */
#define GUEST_LOW_RAM_END   0xC0000000ULL
#define GUEST_HIGH_RAM_BASE 0x100000000ULL
#define GUEST_PAGE_SIZE     4096ULL

struct guest_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

struct guest_memory {
    struct guest_region region[2];
    unsigned nr_regions;
    uint64_t total_bytes;
};

/* Host pointer for [gpa, gpa+len) if it lies within one region, else NULL. */
static inline void *guest_memory_ptr(const struct guest_memory *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->nr_regions; i++) {
        const struct guest_region *r = &m->region[i];
        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
            return r->host + (gpa - r->gpa);
    }
    return NULL;
}

/* Lay out `bytes` of RAM over the regions (without host mappings). */
void guest_memory_layout(struct guest_memory *m, uint64_t bytes);
/* Allocate host mappings for the layout (anonymous, lazily backed);
 * returns 0 or -errno. guest_memory_free undoes it. */
int guest_memory_alloc(struct guest_memory *m, uint64_t bytes);
void guest_memory_free(struct guest_memory *m);

#endif
