#include "config.h"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include "guest_memory.h"

void guest_memory_layout(struct guest_memory *m, uint64_t bytes)
{
    memset(m, 0, sizeof(*m));
    m->total_bytes = bytes;
    uint64_t low = bytes < GUEST_LOW_RAM_END ? bytes : GUEST_LOW_RAM_END;
    m->region[0] = (struct guest_region){ .gpa = 0, .size = low };
    m->nr_regions = 1;
    if (bytes > low) {
        m->region[1] = (struct guest_region){ .gpa = GUEST_HIGH_RAM_BASE, .size = bytes - low };
        m->nr_regions = 2;
    }
}

int guest_memory_alloc(struct guest_memory *m, uint64_t bytes)
{
    guest_memory_layout(m, bytes);
    for (unsigned i = 0; i < m->nr_regions; i++) {
        /* NORESERVE: a guest only costs the host the pages it touches. */
        void *p = mmap(NULL, m->region[i].size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            int err = -errno;
            guest_memory_free(m);
            return err;
        }
        m->region[i].host = p;
    }
    return 0;
}

void guest_memory_free(struct guest_memory *m)
{
    for (unsigned i = 0; i < m->nr_regions; i++) {
        if (m->region[i].host)
            munmap(m->region[i].host, m->region[i].size);
        m->region[i].host = NULL;
    }
}
