#include "config.h"
#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <string.h>
#include <xen/elfnote.h>
#include <xen/arch-x86/hvm/start_info.h>
#include "pvh.h"

/* A program header, widened to 64 bits whatever the ELF class. */
struct phdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
};

struct elf_view {
    const uint8_t *data;
    size_t len;
    bool is64;
    uint64_t phoff;
    unsigned phnum, phentsize;
};

static bool range_ok(size_t len, uint64_t off, uint64_t size)
{
    return off <= len && size <= len - off;
}

static int elf_open(const uint8_t *elf, size_t len, struct elf_view *v, const struct tlog *log)
{
    memset(v, 0, sizeof(*v));
    v->data = elf;
    v->len = len;
    if (len < EI_NIDENT || memcmp(elf, ELFMAG, SELFMAG) != 0) {
        tlog_error(log, "not an ELF file");
        return -ENOEXEC;
    }
    if (elf[EI_DATA] != ELFDATA2LSB) {
        tlog_error(log, "ELF is not little-endian");
        return -ENOEXEC;
    }
    if (elf[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        if (len < sizeof(eh)) goto truncated;
        memcpy(&eh, elf, sizeof(eh));
        if (eh.e_machine != EM_X86_64) goto machine;
        v->is64 = true;
        v->phoff = eh.e_phoff;
        v->phnum = eh.e_phnum;
        v->phentsize = eh.e_phentsize;
        if (v->phnum && v->phentsize != sizeof(Elf64_Phdr)) goto phent;
    } else if (elf[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        if (len < sizeof(eh)) goto truncated;
        memcpy(&eh, elf, sizeof(eh));
        if (eh.e_machine != EM_386 && eh.e_machine != EM_X86_64) goto machine;
        v->phoff = eh.e_phoff;
        v->phnum = eh.e_phnum;
        v->phentsize = eh.e_phentsize;
        if (v->phnum && v->phentsize != sizeof(Elf32_Phdr)) goto phent;
    } else {
        tlog_error(log, "unknown ELF class %u", elf[EI_CLASS]);
        return -ENOEXEC;
    }
    if (v->phnum == 0 || v->phnum == PN_XNUM) {
        tlog_error(log, "ELF has no program headers");
        return -ENOEXEC;
    }
    if (!range_ok(len, v->phoff, (uint64_t)v->phnum * v->phentsize)) {
        tlog_error(log, "ELF program headers (offset %#llx, %u entries) run past the end of the file",
                   (unsigned long long)v->phoff, v->phnum);
        return -ENOEXEC;
    }
    return 0;
truncated:
    tlog_error(log, "ELF header truncated (%zu bytes)", len);
    return -ENOEXEC;
machine:
    tlog_error(log, "ELF is not for x86");
    return -ENOEXEC;
phent:
    tlog_error(log, "ELF program header size %u is wrong", v->phentsize);
    return -ENOEXEC;
}

static void elf_phdr(const struct elf_view *v, unsigned i, struct phdr *p)
{
    const uint8_t *at = v->data + v->phoff + (uint64_t)i * v->phentsize;
    if (v->is64) {
        Elf64_Phdr ph;
        memcpy(&ph, at, sizeof(ph));
        *p = (struct phdr){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz };
    } else {
        Elf32_Phdr ph;
        memcpy(&ph, at, sizeof(ph));
        *p = (struct phdr){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz };
    }
}

/* Looks for the Xen PHYS32_ENTRY note in one PT_NOTE segment.  Returns 1
 * and sets *entry when found, 0 when not, -ENOEXEC on a malformed note. */
static int find_pvh_note(const struct elf_view *v, const struct phdr *p, uint32_t *entry,
                         const struct tlog *log)
{
    if (!range_ok(v->len, p->offset, p->filesz)) {
        tlog_error(log, "ELF note segment runs past the end of the file");
        return -ENOEXEC;
    }
    const uint8_t *n = v->data + p->offset;
    uint64_t left = p->filesz;
    while (left >= 12) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, n, 4);
        memcpy(&descsz, n + 4, 4);
        memcpy(&type, n + 8, 4);
        uint64_t name_pad = ((uint64_t)namesz + 3) & ~3ULL;
        uint64_t desc_pad = ((uint64_t)descsz + 3) & ~3ULL;
        if (name_pad > left - 12 || desc_pad > left - 12 - name_pad) {
            tlog_error(log, "ELF note overruns its segment");
            return -ENOEXEC;
        }
        const uint8_t *name = n + 12, *desc = name + name_pad;
        if (namesz == 4 && memcmp(name, "Xen", 4) == 0 && type == XEN_ELFNOTE_PHYS32_ENTRY) {
            if (descsz != 4 && descsz != 8) {
                tlog_error(log, "PHYS32_ENTRY note has a %u-byte value", descsz);
                return -ENOEXEC;
            }
            uint64_t e = 0;
            memcpy(&e, desc, descsz);
            if (e > UINT32_MAX) {
                tlog_error(log, "PHYS32_ENTRY %#llx is above 4 GiB", (unsigned long long)e);
                return -ENOEXEC;
            }
            *entry = (uint32_t)e;
            return 1;
        }
        n = desc + desc_pad;
        left -= 12 + name_pad + desc_pad;
    }
    return 0;
}

int pvh_parse_elf(const uint8_t *elf, size_t len, struct pvh_image *out, const struct tlog *log)
{
    struct elf_view v;
    int rc = elf_open(elf, len, &v, log);
    if (rc)
        return rc;

    bool have_entry = false, have_load = false;
    memset(out, 0, sizeof(*out));
    out->lowest = UINT64_MAX;
    for (unsigned i = 0; i < v.phnum; i++) {
        struct phdr p;
        elf_phdr(&v, i, &p);
        if (p.type == PT_NOTE && !have_entry) {
            rc = find_pvh_note(&v, &p, &out->entry, log);
            if (rc < 0)
                return rc;
            have_entry = rc == 1;
        } else if (p.type == PT_LOAD) {
            if (p.filesz > p.memsz || !range_ok(len, p.offset, p.filesz)) {
                tlog_error(log, "ELF segment %u (file %#llx+%#llx, memory %#llx) is inconsistent with the file",
                           i, (unsigned long long)p.offset, (unsigned long long)p.filesz,
                           (unsigned long long)p.memsz);
                return -ENOEXEC;
            }
            if (p.memsz > UINT64_MAX - p.paddr) {
                tlog_error(log, "ELF segment %u wraps around the address space", i);
                return -ENOEXEC;
            }
            if (p.memsz == 0)
                continue;
            have_load = true;
            if (p.paddr < out->lowest)
                out->lowest = p.paddr;
            if (p.paddr + p.memsz > out->highest)
                out->highest = p.paddr + p.memsz;
        }
    }
    if (!have_entry) {
        tlog_error(log, "no Xen PHYS32_ENTRY note: not a PVH kernel");
        return -ENOEXEC;
    }
    if (!have_load) {
        tlog_error(log, "ELF has nothing to load");
        return -ENOEXEC;
    }
    if (out->entry < out->lowest || out->entry >= out->highest) {
        tlog_error(log, "PVH entry %#x lies outside the loaded image [%#llx, %#llx)", out->entry,
                   (unsigned long long)out->lowest, (unsigned long long)out->highest);
        return -ENOEXEC;
    }
    if (out->lowest < PVH_BOOT_AREA_END) {
        tlog_error(log, "ELF loads at %#llx, inside the boot information area below %#x",
                   (unsigned long long)out->lowest, PVH_BOOT_AREA_END);
        return -ENOEXEC;
    }
    return 0;
}

int pvh_load_elf(const uint8_t *elf, size_t len, const struct guest_memory *mem,
                 struct pvh_image *out, const struct tlog *log)
{
    int rc = pvh_parse_elf(elf, len, out, log);
    if (rc)
        return rc;

    struct elf_view v;
    elf_open(elf, len, &v, NULL);
    for (unsigned i = 0; i < v.phnum; i++) {
        struct phdr p;
        elf_phdr(&v, i, &p);
        if (p.type != PT_LOAD || p.memsz == 0)
            continue;
        uint8_t *dst = guest_memory_ptr(mem, p.paddr, p.memsz);
        if (!dst) {
            tlog_error(log, "ELF segment %u [%#llx, %#llx) does not fit in the guest's %llu MiB of RAM",
                       i, (unsigned long long)p.paddr, (unsigned long long)(p.paddr + p.memsz),
                       (unsigned long long)(mem->total_bytes >> 20));
            return -E2BIG;
        }
        memcpy(dst, elf + p.offset, p.filesz);
        memset(dst + p.filesz, 0, p.memsz - p.filesz);
    }
    return 0;
}

int64_t pvh_build_start_info(const struct guest_memory *mem, const char *cmdline,
                             const struct tlog *log)
{
    size_t clen = strlen(cmdline) + 1;
    if (clen > PVH_CMDLINE_MAX) {
        tlog_error(log, "kernel command line is %zu bytes; the limit is %d", clen - 1,
                   PVH_CMDLINE_MAX - 1);
        return -E2BIG;
    }
    struct hvm_memmap_table_entry map[PVH_MAX_MEMMAP];
    unsigned n = 0;
    /* Low RAM below the legacy VGA/ROM hole, as a PC has it. */
    map[n++] = (struct hvm_memmap_table_entry){ .addr = 0, .size = 0xA0000,
                                                .type = XEN_HVM_MEMMAP_TYPE_RAM };
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        uint64_t start = mem->region[i].gpa, end = start + mem->region[i].size;
        if (start < 0x100000)
            start = 0x100000;
        if (end > start)
            map[n++] = (struct hvm_memmap_table_entry){ .addr = start, .size = end - start,
                                                        .type = XEN_HVM_MEMMAP_TYPE_RAM };
    }
    struct hvm_start_info si = {
        .magic = XEN_HVM_START_MAGIC_VALUE,
        .version = 1,
        .cmdline_paddr = PVH_CMDLINE_GPA,
        .memmap_paddr = PVH_MEMMAP_GPA,
        .memmap_entries = n,
    };
    void *psi = guest_memory_ptr(mem, PVH_START_INFO_GPA, sizeof(si));
    void *pmap = guest_memory_ptr(mem, PVH_MEMMAP_GPA, sizeof(map[0]) * n);
    void *pcl = guest_memory_ptr(mem, PVH_CMDLINE_GPA, clen);
    if (!psi || !pmap || !pcl) {
        tlog_error(log, "guest memory too small for the boot information");
        return -ENOMEM;
    }
    memcpy(psi, &si, sizeof(si));
    memcpy(pmap, map, sizeof(map[0]) * n);
    memcpy(pcl, cmdline, clen);
    return PVH_START_INFO_GPA;
}
