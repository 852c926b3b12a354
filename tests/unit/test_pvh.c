/* Unit tests of the PVH ELF loader and start_info builder (xen/pvh.c),
 * including truncated and hostile ELF files. */
#include "config.h"
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xen/elfnote.h>
#include <xen/arch-x86/hvm/start_info.h>

#include "check_main.h"
#include "guest_memory.h"
#include "pvh.h"

#define LOAD_ADDR 0x100000u

/* A small ELF64 image: one PT_LOAD of `code` at LOAD_ADDR with `bss` extra
 * bytes of memory, and one PT_NOTE holding the Xen PHYS32_ENTRY note. */
struct img {
    uint8_t buf[4096];
    size_t len;
    Elf64_Ehdr *eh;
    Elf64_Phdr *load, *note;
    uint32_t *note_words; /* namesz, descsz, type, "Xen\0", desc */
};

static void make_elf64(struct img *m, uint32_t entry)
{
    memset(m, 0, sizeof(*m));
    m->eh = (Elf64_Ehdr *)m->buf;
    memcpy(m->eh->e_ident, ELFMAG, SELFMAG);
    m->eh->e_ident[EI_CLASS] = ELFCLASS64;
    m->eh->e_ident[EI_DATA] = ELFDATA2LSB;
    m->eh->e_ident[EI_VERSION] = EV_CURRENT;
    m->eh->e_type = ET_EXEC;
    m->eh->e_machine = EM_X86_64;
    m->eh->e_version = EV_CURRENT;
    m->eh->e_entry = entry;
    m->eh->e_phoff = sizeof(Elf64_Ehdr);
    m->eh->e_phentsize = sizeof(Elf64_Phdr);
    m->eh->e_phnum = 2;
    m->eh->e_ehsize = sizeof(Elf64_Ehdr);
    m->load = (Elf64_Phdr *)(m->buf + sizeof(Elf64_Ehdr));
    m->note = m->load + 1;
    size_t note_off = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
    m->note_words = (uint32_t *)(m->buf + note_off);
    m->note_words[0] = 4;
    m->note_words[1] = 4;
    m->note_words[2] = XEN_ELFNOTE_PHYS32_ENTRY;
    memcpy(&m->note_words[3], "Xen", 4);
    m->note_words[4] = entry;
    *m->note = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = 20, .p_align = 4 };
    size_t code_off = 512;
    for (int i = 0; i < 64; i++)
        m->buf[code_off + i] = (uint8_t)(0xA0 + i);
    *m->load = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = code_off, .p_paddr = LOAD_ADDR,
                             .p_vaddr = LOAD_ADDR, .p_filesz = 64, .p_memsz = 64 + 4096 };
    m->len = code_off + 64;
}

static struct guest_memory mem;

static void setup(void)
{
    ck_assert_int_eq(guest_memory_alloc(&mem, 16 << 20), 0);
    /* Dirty the memory the loader must zero (the bss). */
    memset(guest_memory_ptr(&mem, LOAD_ADDR, 8192), 0x5a, 8192);
}

static void teardown(void)
{
    guest_memory_free(&mem);
}

static int load(struct img *m, struct tlog_buffer *lb, struct pvh_image *out)
{
    tlog_buffer_init(lb);
    return pvh_load_elf(m->buf, m->len, &mem, out, &lb->log);
}

START_TEST(loads_elf64)
{
    struct img m;
    struct pvh_image pi;
    struct tlog_buffer lb;
    make_elf64(&m, LOAD_ADDR + 4);
    ck_assert_int_eq(load(&m, &lb, &pi), 0);
    ck_assert_uint_eq(pi.entry, LOAD_ADDR + 4);
    ck_assert_uint_eq(pi.lowest, LOAD_ADDR);
    ck_assert_uint_eq(pi.highest, LOAD_ADDR + 64 + 4096);
    uint8_t *g = guest_memory_ptr(&mem, LOAD_ADDR, 64 + 4096);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(g[i], 0xA0 + i);
    for (int i = 64; i < 64 + 4096; i++)
        ck_assert_msg(g[i] == 0, "bss byte %d not zeroed", i);
    ck_assert_uint_eq(g[64 + 4096], 0x5a); /* nothing past memsz touched */
}
END_TEST

START_TEST(loads_elf32)
{
    uint8_t buf[1024] = { 0 };
    Elf32_Ehdr *eh = (Elf32_Ehdr *)buf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_machine = EM_386;
    eh->e_phoff = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf32_Phdr);
    eh->e_phnum = 2;
    Elf32_Phdr *ph = (Elf32_Phdr *)(buf + sizeof(*eh));
    uint32_t *note = (uint32_t *)(buf + 200);
    note[0] = 4; note[1] = 8; note[2] = XEN_ELFNOTE_PHYS32_ENTRY;
    memcpy(&note[3], "Xen", 4);
    note[4] = LOAD_ADDR; note[5] = 0; /* an 8-byte desc is allowed */
    ph[0] = (Elf32_Phdr){ .p_type = PT_NOTE, .p_offset = 200, .p_filesz = 24 };
    ph[1] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = 512, .p_paddr = LOAD_ADDR, .p_filesz = 16, .p_memsz = 16 };
    buf[512] = 0xf4;
    struct pvh_image pi;
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(pvh_load_elf(buf, sizeof(buf), &mem, &pi, &lb.log), 0);
    ck_assert_uint_eq(pi.entry, LOAD_ADDR);
    ck_assert_uint_eq(*(uint8_t *)guest_memory_ptr(&mem, LOAD_ADDR, 1), 0xf4);
}
END_TEST

START_TEST(every_truncation_fails_cleanly)
{
    struct img m;
    struct pvh_image pi;
    make_elf64(&m, LOAD_ADDR);
    /* Copy each prefix to an exact-size heap block so ASan sees any read
     * past the end. */
    for (size_t len = 0; len < m.len; len++) {
        uint8_t *p = malloc(len ? len : 1);
        memcpy(p, m.buf, len);
        struct tlog_buffer lb;
        tlog_buffer_init(&lb);
        int rc = pvh_parse_elf(p, len, &pi, &lb.log);
        ck_assert_msg(rc == -ENOEXEC, "prefix of %zu bytes gave %d", len, rc);
        ck_assert_msg(lb.last[0], "prefix of %zu bytes failed without a reason", len);
        free(p);
    }
}
END_TEST

/* Each hostile variant must fail with the expected error and message. */
struct hostile {
    const char *what;
    void (*mutate)(struct img *);
    int err;
    const char *msg;
};

static void no_note(struct img *m) { m->note->p_type = PT_NULL; }
static void wrong_note_type(struct img *m) { m->note_words[2] = 17; }
static void big_endian(struct img *m) { m->eh->e_ident[EI_DATA] = ELFDATA2MSB; }
static void arm(struct img *m) { m->eh->e_machine = EM_AARCH64; }
static void bad_class(struct img *m) { m->eh->e_ident[EI_CLASS] = 7; }
static void no_phdrs(struct img *m) { m->eh->e_phnum = 0; }
static void huge_phnum(struct img *m) { m->eh->e_phnum = 0xfffe; }
static void phoff_past_end(struct img *m) { m->eh->e_phoff = 1u << 30; }
static void phoff_wraps(struct img *m) { m->eh->e_phoff = UINT64_MAX - 8; }
static void bad_phentsize(struct img *m) { m->eh->e_phentsize = 12; }
static void filesz_gt_memsz(struct img *m) { m->load->p_memsz = 10; }
static void offset_past_end(struct img *m) { m->load->p_offset = m->len; }
static void offset_wraps(struct img *m) { m->load->p_offset = UINT64_MAX - 10; }
static void paddr_wraps(struct img *m) { m->load->p_paddr = UINT64_MAX - 100; }
static void beyond_ram(struct img *m) { m->load->p_paddr = 15u << 20; m->load->p_memsz = 2u << 20; m->note_words[4] = 15u << 20; }
static void in_boot_area(struct img *m) { m->load->p_paddr = 0x1000; m->note_words[4] = 0x1000; }
static void entry_outside(struct img *m) { m->note_words[4] = 0x50000; }
static void note_namesz_huge(struct img *m) { m->note_words[0] = 0xfffffff0u; }
static void note_descsz_huge(struct img *m) { m->note_words[1] = 0xfffffffdu; }
static void note_desc_3(struct img *m) { m->note_words[1] = 3; }
static void note_past_end(struct img *m) { m->note->p_filesz = 1u << 20; }
static void entry_above_4g(struct img *m) { m->note_words[1] = 8; m->note->p_filesz = 24; m->note_words[5] = 1; }
static void nothing_to_load(struct img *m) { m->load->p_memsz = 0; m->load->p_filesz = 0; }

static const struct hostile hostiles[] = {
    { "no PT_NOTE", no_note, -ENOEXEC, "not a PVH kernel" },
    { "other note", wrong_note_type, -ENOEXEC, "not a PVH kernel" },
    { "big-endian", big_endian, -ENOEXEC, "little-endian" },
    { "ARM", arm, -ENOEXEC, "not for x86" },
    { "bad class", bad_class, -ENOEXEC, "unknown ELF class" },
    { "no phdrs", no_phdrs, -ENOEXEC, "no program headers" },
    { "huge phnum", huge_phnum, -ENOEXEC, "run past the end" },
    { "phoff past end", phoff_past_end, -ENOEXEC, "run past the end" },
    { "phoff wraps", phoff_wraps, -ENOEXEC, "run past the end" },
    { "phentsize", bad_phentsize, -ENOEXEC, "program header size" },
    { "filesz > memsz", filesz_gt_memsz, -ENOEXEC, "inconsistent" },
    { "offset past end", offset_past_end, -ENOEXEC, "inconsistent" },
    { "offset wraps", offset_wraps, -ENOEXEC, "inconsistent" },
    { "paddr wraps", paddr_wraps, -ENOEXEC, "wraps" },
    { "beyond RAM", beyond_ram, -E2BIG, "does not fit" },
    { "in boot area", in_boot_area, -ENOEXEC, "boot information area" },
    { "entry outside", entry_outside, -ENOEXEC, "outside the loaded image" },
    { "note namesz", note_namesz_huge, -ENOEXEC, "overruns" },
    { "note descsz", note_descsz_huge, -ENOEXEC, "overruns" },
    { "note desc 3", note_desc_3, -ENOEXEC, "3-byte" },
    { "note past end", note_past_end, -ENOEXEC, "past the end" },
    { "entry above 4G", entry_above_4g, -ENOEXEC, "above 4 GiB" },
    { "nothing to load", nothing_to_load, -ENOEXEC, "nothing to load" },
};

START_TEST(hostile_elf)
{
    const struct hostile *h = &hostiles[_i];
    struct img m;
    struct pvh_image pi;
    struct tlog_buffer lb;
    make_elf64(&m, LOAD_ADDR);
    h->mutate(&m);
    int rc = load(&m, &lb, &pi);
    ck_assert_msg(rc == h->err, "%s: got %d, want %d (%s)", h->what, rc, h->err, lb.last);
    ck_assert_msg(strstr(lb.last, h->msg), "%s: message '%s' lacks '%s'", h->what, lb.last, h->msg);
}
END_TEST

START_TEST(start_info_small_guest)
{
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    int64_t si = pvh_build_start_info(&mem, "workload=idle hz=100", &lb.log);
    ck_assert_int_eq(si, PVH_START_INFO_GPA);
    struct hvm_start_info *s = guest_memory_ptr(&mem, si, sizeof(*s));
    ck_assert_uint_eq(s->magic, XEN_HVM_START_MAGIC_VALUE);
    ck_assert_uint_eq(s->version, 1);
    ck_assert_uint_eq(s->nr_modules, 0);
    ck_assert_str_eq((char *)guest_memory_ptr(&mem, s->cmdline_paddr, 1), "workload=idle hz=100");
    ck_assert_uint_eq(s->memmap_entries, 2);
    struct hvm_memmap_table_entry *e = guest_memory_ptr(&mem, s->memmap_paddr, 2 * sizeof(*e));
    ck_assert_uint_eq(e[0].addr, 0);
    ck_assert_uint_eq(e[0].size, 0xA0000);
    ck_assert_uint_eq(e[0].type, XEN_HVM_MEMMAP_TYPE_RAM);
    ck_assert_uint_eq(e[1].addr, 0x100000);
    ck_assert_uint_eq(e[1].size, (16u << 20) - 0x100000);
    ck_assert_uint_eq(e[1].type, XEN_HVM_MEMMAP_TYPE_RAM);
}
END_TEST

START_TEST(start_info_above_4g)
{
    struct guest_memory big;
    /* 4 GiB: 3 GiB below the hole, 1 GiB from 4 GiB up. Lazily mapped, so
     * this costs the test only the pages it writes. */
    ck_assert_int_eq(guest_memory_alloc(&big, 4ULL << 30), 0);
    ck_assert_uint_eq(big.nr_regions, 2);
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(pvh_build_start_info(&big, "", &lb.log), PVH_START_INFO_GPA);
    struct hvm_start_info *s = guest_memory_ptr(&big, PVH_START_INFO_GPA, sizeof(*s));
    ck_assert_uint_eq(s->memmap_entries, 3);
    struct hvm_memmap_table_entry *e = guest_memory_ptr(&big, s->memmap_paddr, 3 * sizeof(*e));
    ck_assert_uint_eq(e[1].addr + e[1].size, GUEST_LOW_RAM_END);
    ck_assert_uint_eq(e[2].addr, GUEST_HIGH_RAM_BASE);
    ck_assert_uint_eq(e[2].size, (4ULL << 30) - GUEST_LOW_RAM_END);
    ck_assert_ptr_null(guest_memory_ptr(&big, GUEST_LOW_RAM_END, 1));
    ck_assert_ptr_null(guest_memory_ptr(&big, GUEST_HIGH_RAM_BASE - 8, 16));
    guest_memory_free(&big);
}
END_TEST

START_TEST(cmdline_too_long)
{
    char *c = malloc(PVH_CMDLINE_MAX + 1);
    memset(c, 'x', PVH_CMDLINE_MAX);
    c[PVH_CMDLINE_MAX] = '\0';
    struct tlog_buffer lb;
    tlog_buffer_init(&lb);
    ck_assert_int_eq(pvh_build_start_info(&mem, c, &lb.log), -E2BIG);
    ck_assert_ptr_nonnull(strstr(lb.last, "command line"));
    c[PVH_CMDLINE_MAX - 1] = '\0';
    ck_assert_int_eq(pvh_build_start_info(&mem, c, &lb.log), PVH_START_INFO_GPA);
    free(c);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("pvh");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loads_elf64);
    tcase_add_test(tc, loads_elf32);
    tcase_add_test(tc, every_truncation_fails_cleanly);
    tcase_add_loop_test(tc, hostile_elf, 0, sizeof(hostiles) / sizeof(hostiles[0]));
    tcase_add_test(tc, start_info_small_guest);
    tcase_add_test(tc, start_info_above_4g);
    tcase_add_test(tc, cmdline_too_long);
    suite_add_tcase(s, tc);
    return s;
}
