/* PVH boot: load an ELF kernel that carries Xen's PHYS32_ENTRY note and
 * build the hvm_start_info it expects (Xen's docs/misc/pvh.pandoc). */
#ifndef TANDEM_PVH_H
#define TANDEM_PVH_H

#include <stdint.h>
#include <stddef.h>
#include "guest_memory.h"
#include "tandem/log.h"

/* Where the VMM puts the boot information; the guest may use RAM from
 * PVH_BOOT_AREA_END on, except what its own image covers. */
#define PVH_START_INFO_GPA 0x1000
#define PVH_MEMMAP_GPA     0x1100
#define PVH_CMDLINE_GPA    0x2000
#define PVH_CMDLINE_MAX    0x2000
#define PVH_BOOT_AREA_END  0x10000
#define PVH_MAX_MEMMAP     8

struct pvh_image {
    uint32_t entry;          /* 32-bit physical entry point */
    uint64_t lowest, highest;/* physical range the image covers */
};

/* Validates and loads `elf` into guest memory.  Every offset and size is
 * checked before use: a truncated or hostile file yields -ENOEXEC (or
 * -E2BIG / -ERANGE) and a logged reason, never a wild read or write. */
int pvh_load_elf(const uint8_t *elf, size_t len, const struct guest_memory *mem,
                 struct pvh_image *out, const struct tlog *log);
/* Parse only (no guest memory needed): entry and range. */
int pvh_parse_elf(const uint8_t *elf, size_t len, struct pvh_image *out, const struct tlog *log);

/* Writes hvm_start_info, the memory map and the command line. Returns the
 * guest-physical address of the start_info (for %ebx) or -errno. */
int64_t pvh_build_start_info(const struct guest_memory *mem, const char *cmdline,
                             const struct tlog *log);

#endif
