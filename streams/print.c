/* Record printers for `tandem-stream dump` and `info`: a one-line gist of
 * each header and record, and a decoding of its body field by field.  The
 * printers never trust the body's shape: a record too short for what it
 * claims is printed as such, not read past. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/hvm/params.h>
#include <xen/hvm/save.h>

#include "tandem/streams.h"
#include "stream_impl.h"

/* HVM save records are decoded by copying them onto libxen-dev's structs,
 * which describe them in the (little-endian) byte order of x86. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "HVM save records are little-endian");

/* Tandem's extra HVM save records take typecodes from here up
 * (docs/stream-extensions.md; the xen/ layer defines them). */
#define TANDEM_HVM_TYPECODE_BASE 0x80

/* ---- pfn ranges --------------------------------------------------------------- */

/* Prints runs of consecutive pfns ("0x0-0x9f, 0x100"), of one page type if
 * type >= 0, at most max_ranges of them before "... N more". */
static void print_ranges(FILE *f, const uint64_t *pfns, const uint8_t *types, unsigned n,
                         int type, unsigned max_ranges)
{
    unsigned shown = 0, more = 0;
    bool have = false;
    uint64_t lo = 0, hi = 0;

    for (unsigned i = 0; i <= n; i++) {
        bool take = i < n && (type < 0 || types[i] == type);
        if (take && have && pfns[i] == hi + 1) {
            hi = pfns[i];
            continue;
        }
        if (have && (take || i == n)) {
            if (shown < max_ranges) {
                fprintf(f, "%s0x%" PRIx64, shown ? ", " : "", lo);
                if (hi != lo)
                    fprintf(f, "-0x%" PRIx64, hi);
                shown++;
            } else {
                more++;
            }
            have = false;
        }
        if (take) {
            lo = hi = pfns[i];
            have = true;
        }
    }
    if (more)
        fprintf(f, ", ... %u more range%s", more, more == 1 ? "" : "s");
}

/* ---- HVM context ---------------------------------------------------------------- */

static const char *hvm_param_name(uint64_t index)
{
    switch (index) {
    case HVM_PARAM_CALLBACK_IRQ: return "CALLBACK_IRQ";
    case HVM_PARAM_STORE_PFN: return "STORE_PFN";
    case HVM_PARAM_STORE_EVTCHN: return "STORE_EVTCHN";
    case 4: return "PAE_ENABLED";          /* only under __XEN_TOOLS__ in params.h */
    case HVM_PARAM_IOREQ_PFN: return "IOREQ_PFN";
    case HVM_PARAM_BUFIOREQ_PFN: return "BUFIOREQ_PFN";
    case HVM_PARAM_VIRIDIAN: return "VIRIDIAN";
    case HVM_PARAM_TIMER_MODE: return "TIMER_MODE";
    case HVM_PARAM_HPET_ENABLED: return "HPET_ENABLED";
    case HVM_PARAM_IDENT_PT: return "IDENT_PT";
    case HVM_PARAM_ACPI_S_STATE: return "ACPI_S_STATE";
    case HVM_PARAM_VM86_TSS: return "VM86_TSS";
    case HVM_PARAM_VPT_ALIGN: return "VPT_ALIGN";
    case HVM_PARAM_CONSOLE_PFN: return "CONSOLE_PFN";
    case HVM_PARAM_CONSOLE_EVTCHN: return "CONSOLE_EVTCHN";
    case HVM_PARAM_ACPI_IOPORTS_LOCATION: return "ACPI_IOPORTS_LOCATION";
    case 24: return "NESTEDHVM";           /* likewise */
    case HVM_PARAM_PAGING_RING_PFN: return "PAGING_RING_PFN";
    case HVM_PARAM_MONITOR_RING_PFN: return "MONITOR_RING_PFN";
    case HVM_PARAM_SHARING_RING_PFN: return "SHARING_RING_PFN";
    case HVM_PARAM_IOREQ_SERVER_PFN: return "IOREQ_SERVER_PFN";
    case HVM_PARAM_NR_IOREQ_SERVER_PAGES: return "NR_IOREQ_SERVER_PAGES";
    case HVM_PARAM_VM_GENERATION_ID_ADDR: return "VM_GENERATION_ID_ADDR";
    case HVM_PARAM_ALTP2M: return "ALTP2M";
    case HVM_PARAM_X87_FIP_WIDTH: return "X87_FIP_WIDTH";
    case HVM_PARAM_VM86_TSS_SIZED: return "VM86_TSS_SIZED";
    case HVM_PARAM_MCA_CAP: return "MCA_CAP";
    }
    return NULL;
}

static void print_segment(FILE *f, const char *name, uint32_t sel, uint64_t base, uint32_t limit,
                          uint32_t ar)
{
    fprintf(f, "      %-4s sel 0x%04x base 0x%016" PRIx64 " limit 0x%08x ar 0x%04x\n", name, sel,
            base, limit, ar);
}

static void print_cpu(FILE *f, const uint8_t *d, uint32_t len)
{
    struct hvm_hw_cpu c;

    if (len < sizeof(c)) {
        fprintf(f, "      (%u bytes: too short for struct hvm_hw_cpu's %zu)\n", len, sizeof(c));
        return;
    }
    memcpy(&c, d, sizeof(c));
    fprintf(f, "      rip 0x%016" PRIx64 " rsp 0x%016" PRIx64 " rflags 0x%08" PRIx64 "\n",
            c.rip, c.rsp, c.rflags);
    fprintf(f, "      rax 0x%016" PRIx64 " rbx 0x%016" PRIx64 " rcx 0x%016" PRIx64
            " rdx 0x%016" PRIx64 "\n", c.rax, c.rbx, c.rcx, c.rdx);
    fprintf(f, "      rsi 0x%016" PRIx64 " rdi 0x%016" PRIx64 " rbp 0x%016" PRIx64 "\n",
            c.rsi, c.rdi, c.rbp);
    fprintf(f, "      r8  0x%016" PRIx64 " r9  0x%016" PRIx64 " r10 0x%016" PRIx64
            " r11 0x%016" PRIx64 "\n", c.r8, c.r9, c.r10, c.r11);
    fprintf(f, "      r12 0x%016" PRIx64 " r13 0x%016" PRIx64 " r14 0x%016" PRIx64
            " r15 0x%016" PRIx64 "\n", c.r12, c.r13, c.r14, c.r15);
    fprintf(f, "      cr0 0x%08" PRIx64 " cr2 0x%016" PRIx64 " cr3 0x%016" PRIx64
            " cr4 0x%08" PRIx64 " efer 0x%" PRIx64 "\n", c.cr0, c.cr2, c.cr3, c.cr4, c.msr_efer);
    print_segment(f, "cs", c.cs_sel, c.cs_base, c.cs_limit, c.cs_arbytes);
    print_segment(f, "ds", c.ds_sel, c.ds_base, c.ds_limit, c.ds_arbytes);
    print_segment(f, "es", c.es_sel, c.es_base, c.es_limit, c.es_arbytes);
    print_segment(f, "fs", c.fs_sel, c.fs_base, c.fs_limit, c.fs_arbytes);
    print_segment(f, "gs", c.gs_sel, c.gs_base, c.gs_limit, c.gs_arbytes);
    print_segment(f, "ss", c.ss_sel, c.ss_base, c.ss_limit, c.ss_arbytes);
    print_segment(f, "tr", c.tr_sel, c.tr_base, c.tr_limit, c.tr_arbytes);
    print_segment(f, "ldtr", c.ldtr_sel, c.ldtr_base, c.ldtr_limit, c.ldtr_arbytes);
    fprintf(f, "      gdtr base 0x%016" PRIx64 " limit 0x%04x  idtr base 0x%016" PRIx64
            " limit 0x%04x\n", c.gdtr_base, c.gdtr_limit, c.idtr_base, c.idtr_limit);
    fprintf(f, "      dr0-3 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " dr6 0x%"
            PRIx64 " dr7 0x%" PRIx64 "\n", c.dr0, c.dr1, c.dr2, c.dr3, c.dr6, c.dr7);
    fprintf(f, "      star 0x%" PRIx64 " lstar 0x%" PRIx64 " cstar 0x%" PRIx64 " sfmask 0x%"
            PRIx64 " kernel_gs_base 0x%" PRIx64 "\n", c.msr_star, c.msr_lstar, c.msr_cstar,
            c.msr_syscall_mask, c.shadow_gs);
    fprintf(f, "      sysenter cs 0x%" PRIx64 " esp 0x%" PRIx64 " eip 0x%" PRIx64
            " tsc_aux 0x%" PRIx64 " tsc 0x%" PRIx64 "\n", c.sysenter_cs, c.sysenter_esp,
            c.sysenter_eip, c.msr_tsc_aux, c.tsc);
    if (c.pending_event & 0x80000000u)
        fprintf(f, "      pending event: vector 0x%02x type %u%s error 0x%x\n",
                c.pending_event & 0xff, (c.pending_event >> 8) & 7,
                (c.pending_event & 0x800) ? " with" : ", no", c.error_code);
    fprintf(f, "      flags 0x%x%s\n", c.flags,
            (c.flags & XEN_X86_FPU_INITIALISED) ? " (FPU initialised)" : "");
}

static uint32_t lapic_reg(const uint8_t *regs, unsigned off)
{
    return get_le32(regs + off);
}

/* Vectors set in one of the LAPIC's 256-bit registers (ISR, TMR, IRR). */
static void print_vectors(FILE *f, const char *name, const uint8_t *regs, unsigned base)
{
    unsigned n = 0;

    for (unsigned v = 0; v < 256; v++)
        if (lapic_reg(regs, base + 0x10 * (v / 32)) & (1u << (v % 32)))
            fprintf(f, "%s0x%02x", n++ ? " " : name, v);
    if (n)
        fputc('\n', f);
}

static void print_lapic_regs(FILE *f, const uint8_t *d, uint32_t len)
{
    if (len < 1024) {
        fprintf(f, "      (%u bytes: too short for the 1024-byte register page)\n", len);
        return;
    }
    fprintf(f, "      id 0x%x version 0x%08x tpr 0x%02x ldr 0x%08x dfr 0x%08x svr 0x%03x (%s)\n",
            lapic_reg(d, 0x20) >> 24, lapic_reg(d, 0x30), lapic_reg(d, 0x80),
            lapic_reg(d, 0xd0), lapic_reg(d, 0xe0), lapic_reg(d, 0xf0),
            (lapic_reg(d, 0xf0) & 0x100) ? "enabled" : "software-disabled");
    fprintf(f, "      lvt timer 0x%08x lint0 0x%08x lint1 0x%08x error 0x%08x\n",
            lapic_reg(d, 0x320), lapic_reg(d, 0x350), lapic_reg(d, 0x360), lapic_reg(d, 0x370));
    fprintf(f, "      timer initial %u current %u divide 0x%x; esr 0x%x icr 0x%08x:%08x\n",
            lapic_reg(d, 0x380), lapic_reg(d, 0x390), lapic_reg(d, 0x3e0), lapic_reg(d, 0x280),
            lapic_reg(d, 0x310), lapic_reg(d, 0x300));
    print_vectors(f, "      in service: ", d, 0x100);
    print_vectors(f, "      requested: ", d, 0x200);
}

static void print_pit(FILE *f, const uint8_t *d, uint32_t len)
{
    struct hvm_hw_pit p;

    if (len < sizeof(p)) {
        fprintf(f, "      (%u bytes: too short for struct hvm_hw_pit)\n", len);
        return;
    }
    memcpy(&p, d, sizeof(p));
    for (int i = 0; i < 3; i++)
        fprintf(f, "      channel %d: count %u mode %u rw %u gate %u%s\n", i, p.channels[i].count,
                p.channels[i].mode, p.channels[i].rw_mode, p.channels[i].gate,
                p.channels[i].bcd ? " bcd" : "");
    fprintf(f, "      speaker %u\n", p.speaker_data_on);
}

static void print_ioapic(FILE *f, const uint8_t *d, uint32_t len)
{
    unsigned pins, masked = 0;

    if (len < 16 || (len - 16) % 8) {
        fprintf(f, "      (%u bytes: not 16 + 8 per pin)\n", len);
        return;
    }
    pins = (len - 16) / 8;
    fprintf(f, "      base 0x%" PRIx64 " id %u ioregsel 0x%x, %u pins\n", get_le64(d),
            get_le32(d + 12), get_le32(d + 8), pins);
    for (unsigned i = 0; i < pins; i++) {
        uint64_t e = get_le64(d + 16 + 8 * i);
        if (e & (1u << 16)) {
            masked++;
            continue;
        }
        fprintf(f, "      pin %2u -> vector 0x%02x mode %u %s %s dest 0x%02x%s\n", i,
                (unsigned)(e & 0xff), (unsigned)(e >> 8) & 7, (e & (1u << 15)) ? "level" : "edge",
                (e & (1u << 13)) ? "active-low" : "active-high", (unsigned)(e >> 56),
                (e & (1u << 14)) ? " remote-irr" : "");
    }
    fprintf(f, "      %u pins masked\n", masked);
}

static void print_pic(FILE *f, const uint8_t *d, uint32_t len)
{
    struct hvm_hw_vpic p;

    if (len < sizeof(p)) {
        fprintf(f, "      (%u bytes: too short for struct hvm_hw_vpic)\n", len);
        return;
    }
    memcpy(&p, d, sizeof(p));
    fprintf(f, "      %s: irr 0x%02x imr 0x%02x isr 0x%02x base 0x%02x elcr 0x%02x init %u%s\n",
            p.is_master ? "master" : "slave", p.irr, p.imr, p.isr, p.irq_base, p.elcr,
            p.init_state, p.auto_eoi ? " auto-eoi" : "");
}

static void print_hvm_record(FILE *f, unsigned code, const uint8_t *d, uint32_t len)
{
    switch (code) {
    case 1:   /* HEADER */
        if (len >= sizeof(struct hvm_save_header)) {
            struct hvm_save_header h;
            memcpy(&h, d, sizeof(h));
            fprintf(f, "      magic 0x%08x%s version %u changeset 0x%" PRIx64 " cpuid 0x%08x "
                    "gtsc_khz %u\n", h.magic, h.magic == HVM_FILE_MAGIC ? "" : " (not Xen's)",
                    h.version, h.changeset, h.cpuid, h.gtsc_khz);
        }
        break;
    case 2:
        print_cpu(f, d, len);
        break;
    case 3:
        print_pic(f, d, len);
        break;
    case 4:
        print_ioapic(f, d, len);
        break;
    case 5:   /* LAPIC */
        if (len >= sizeof(struct hvm_hw_lapic)) {
            struct hvm_hw_lapic l;
            memcpy(&l, d, sizeof(l));
            fprintf(f, "      apic_base 0x%" PRIx64 " (%s%s) disabled 0x%x divisor %u "
                    "tsc_deadline 0x%" PRIx64 "\n", l.apic_base_msr,
                    (l.apic_base_msr & 0x800) ? "enabled" : "disabled",
                    (l.apic_base_msr & 0x400) ? ", x2apic" : "", l.disabled, l.timer_divisor,
                    l.tdt_msr);
        }
        break;
    case 6:
        print_lapic_regs(f, d, len);
        break;
    case 10:
        print_pit(f, d, len);
        break;
    case 11:  /* RTC */
        if (len >= sizeof(struct hvm_hw_rtc)) {
            struct hvm_hw_rtc rtc;
            memcpy(&rtc, d, sizeof(rtc));
            fprintf(f, "      cmos index 0x%02x offset %" PRId64 " s\n", rtc.cmos_index,
                    rtc.rtc_offset);
        }
        break;
    case 14:  /* MTRR */
        if (len >= sizeof(struct hvm_hw_mtrr)) {
            struct hvm_hw_mtrr m;
            memcpy(&m, d, sizeof(m));
            fprintf(f, "      pat 0x%016" PRIx64 " def_type 0x%" PRIx64 " cap 0x%" PRIx64 "\n",
                    m.msr_pat_cr, m.msr_mtrr_def_type, m.msr_mtrr_cap);
        }
        break;
    case CPU_XSAVE_CODE:
        if (len >= 24)
            fprintf(f, "      xcr0 0x%" PRIx64 " xcr0_accum 0x%" PRIx64 ", %u bytes of save "
                    "area\n", get_le64(d + 8), get_le64(d + 16), len - 24);
        if (len >= 24 + 512 + 8)
            fprintf(f, "      xstate_bv 0x%" PRIx64 "\n", get_le64(d + 24 + 512));
        break;
    case CPU_MSR_CODE:
        if (len >= 8) {
            uint32_t n = get_le32(d);
            fprintf(f, "      %u MSRs\n", n);
            for (uint32_t i = 0; i < n && 8 + 16 * (uint64_t)(i + 1) <= len; i++)
                fprintf(f, "      msr 0x%08x = 0x%016" PRIx64 "\n", get_le32(d + 8 + 16 * i),
                        get_le64(d + 16 + 16 * i));
        }
        break;
    case 19:  /* TSC_ADJUST */
        if (len >= 8)
            fprintf(f, "      tsc_adjust 0x%" PRIx64 "\n", get_le64(d));
        break;
    }
}

/* Walks the blob's save descriptors; with f_detail, decodes each record. */
static void print_hvm_context(FILE *f, const uint8_t *b, uint32_t len, bool detail,
                              unsigned *records, unsigned *cpus, bool *well_formed)
{
    uint32_t off = 0;

    *records = *cpus = 0;
    *well_formed = false;
    while (off + 8 <= len) {
        unsigned code = get_le16(b + off), inst = get_le16(b + off + 2);
        uint32_t rlen = get_le32(b + off + 4);
        const char *name = stream_hvm_typecode_name(code);

        if (rlen > len - off - 8) {
            if (detail)
                fprintf(f, "    +0x%x: typecode %u claims %u bytes, only %u left: truncated\n",
                        off, code, rlen, len - off - 8);
            return;
        }
        (*records)++;
        if (code == 2)
            (*cpus)++;
        if (detail) {
            if (code >= TANDEM_HVM_TYPECODE_BASE)
                fprintf(f, "    +0x%x: tandem-extension typecode %u, instance %u, len %u\n",
                        off, code, inst, rlen);
            else if (name)
                fprintf(f, "    +0x%x: %s instance %u, len %u\n", off, name, inst, rlen);
            else
                fprintf(f, "    +0x%x: unknown typecode %u, instance %u, len %u\n", off, code,
                        inst, rlen);
            print_hvm_record(f, code, b + off + 8, rlen);
        }
        off += 8 + rlen;
        if (code == 0) {
            *well_formed = off == len;
            if (detail && off != len)
                fprintf(f, "    %u bytes after the END save record\n", len - off);
            return;
        }
    }
    if (detail)
        fprintf(f, "    no END save record\n");
}

/* ---- Summaries and details ------------------------------------------------------ */

static void print_page_data(FILE *f, const struct stream_record *rec, bool detail)
{
    /* 17 KiB of stack: the printers keep no state between calls. */
    uint64_t pfns[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH];
    const uint8_t *data[STREAM_MAX_BATCH];
    unsigned n, per_type[16] = { 0 }, with_data = 0;

    if (stream_decode_page_data(rec, &n, pfns, types, data)) {
        fprintf(f, "malformed, %u bytes\n", rec->length);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        per_type[types[i] & 15]++;
        with_data += data[i] != NULL;
    }
    fprintf(f, "%u pfn%s (%u with data", n, n == 1 ? "" : "s", with_data);
    for (unsigned t = 1; t < 16; t++)
        if (per_type[t])
            fprintf(f, ", %u %s", per_type[t], stream_page_type_name(t));
    fputs(")", f);
    if (rec->type == STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4) {
        uint32_t packed = rec->length - 16 - 8 * n;
        fprintf(f, ", lz4 %u of %u bytes (%.1f%%)", packed, rec->page_data_len,
                rec->page_data_len ? 100.0 * packed / rec->page_data_len : 0.0);
    }
    if (!detail) {
        fputs(": ", f);
        print_ranges(f, pfns, types, n, -1, 4);
    }
    fputc('\n', f);
    if (!detail)
        return;
    for (unsigned t = 0; t < 16; t++) {
        if (!per_type[t])
            continue;
        fprintf(f, "    %s: ", stream_page_type_name(t));
        print_ranges(f, pfns, types, n, (int)t, 64);
        fputc('\n', f);
    }
}

static void print_page_delta(FILE *f, const struct stream_record *rec, bool detail)
{
    uint64_t pfns[STREAM_MAX_BATCH];
    const uint8_t *enc[STREAM_MAX_BATCH];
    uint32_t enc_len[STREAM_MAX_BATCH];
    uint8_t types[STREAM_MAX_BATCH] = { 0 };
    unsigned n;
    uint64_t total = 0;

    if (stream_decode_page_delta(rec, &n, pfns, enc, enc_len)) {
        fprintf(f, "malformed, %u bytes\n", rec->length);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        total += enc_len[i];
    fprintf(f, "%u pfn%s, deltas %llu of %llu bytes (%.1f%%): ", n, n == 1 ? "" : "s",
            (unsigned long long)total, (unsigned long long)n * STREAM_PAGE_SIZE,
            100.0 * (double)total / ((double)n * STREAM_PAGE_SIZE));
    print_ranges(f, pfns, types, n, -1, detail ? 64 : 4);
    fputc('\n', f);
    for (unsigned i = 0; detail && i < n; i++)
        fprintf(f, "    pfn 0x%llx: %u bytes\n", (unsigned long long)pfns[i], enc_len[i]);
}

static void print_emulator(FILE *f, const struct stream_record *rec, bool detail)
{
    uint32_t id, index;
    bool tandem;
    const uint8_t *state;
    size_t len;
    static const char *const emulators[] = { "unknown", "QEMU traditional", "QEMU upstream" };

    if (stream_decode_emulator_context(rec, &id, &index, &tandem, &state, &len)) {
        fprintf(f, "malformed, %u bytes\n", rec->length);
        return;
    }
    if (tandem)
        fprintf(f, "Tandem device model, index %u, %zu bytes of state\n", index, len);
    else
        fprintf(f, "emulator %u (%s), index %u, %zu bytes\n", id,
                id < 3 ? emulators[id] : "reserved", index, len);
    if (!detail)
        return;
    if (rec->type == STREAM_LIBXL_EMULATOR_XENSTORE_DATA) {
        /* Key/value pairs, each NUL-terminated; printed as far as they go. */
        size_t i = 0;
        bool key = true;
        while (i < len) {
            const uint8_t *end = memchr(state + i, 0, len - i);
            size_t n = end ? (size_t)(end - (state + i)) : len - i;
            fprintf(f, key ? "    %.*s" : " = %.*s\n", (int)n, (const char *)state + i);
            key = !key;
            i += n + 1;
        }
        if (!key)
            fputc('\n', f);
        return;
    }
    for (size_t i = 0; i < len && i < 256; i += 16) {
        fprintf(f, "    +0x%03zx:", i);
        for (size_t j = i; j < i + 16 && j < len; j++)
            fprintf(f, " %02x", state[j]);
        fputc('\n', f);
    }
    if (len > 256)
        fprintf(f, "    ... %zu more bytes\n", len - 256);
}

static int print_record(FILE *f, const struct stream_record *rec, bool detail)
{
    const char *name = stream_record_name(rec->layer, rec->type);

    fprintf(f, "0x%08" PRIx64 " %-5s ", rec->offset, stream_layer_name(rec->layer));
    if (rec->header) {
        switch (rec->layer) {
        case STREAM_LAYER_XL: {
            struct stream_xl_header h;
            if (stream_decode_xl_header(rec, &h)) {
                fprintf(f, "header: malformed\n");
                break;
            }
            fprintf(f, "header: xl save file, flags%s%s, %u bytes of config\n",
                    (h.mandatory_flags & STREAM_XL_FLAG_STREAMV2) ? " STREAMv2" : "",
                    (h.mandatory_flags & STREAM_XL_FLAG_JSON) ? " JSON" : "", h.config_len);
            if (detail && h.config)
                fprintf(f, "%.*s\n", (int)h.config_len, h.config);
            break;
        }
        case STREAM_LAYER_LIBXL: {
            struct stream_libxl_header h;
            if (stream_decode_libxl_header(rec, &h)) {
                fprintf(f, "header: malformed\n");
                break;
            }
            fprintf(f, "header: LibxlFmt version %u, %s-endian%s\n", h.version,
                    (h.options & STREAM_LIBXL_OPT_BIG_ENDIAN) ? "big" : "little",
                    (h.options & STREAM_LIBXL_OPT_LEGACY) ? ", converted from legacy" : "");
            break;
        }
        case STREAM_LAYER_LIBXC: {
            struct stream_libxc_header h;
            if (stream_decode_libxc_header(rec, &h)) {
                fprintf(f, "header: malformed\n");
                break;
            }
            fprintf(f, "header: XENF version %u, %s-endian, %s, page shift %u, saved by "
                    "%u.%u\n", h.version, (h.options & 1) ? "big" : "little",
                    h.domain_type == STREAM_DOMAIN_X86_HVM ? "x86 HVM"
                    : h.domain_type == STREAM_DOMAIN_X86_PV ? "x86 PV" : "unknown type",
                    h.page_shift, h.xen_major, h.xen_minor);
            break;
        }
        }
        return ferror(f) ? -EIO : 0;
    }

    if (name)
        fprintf(f, "%s", name);
    else
        fprintf(f, "type 0x%x%s", rec->type,
                (rec->type & STREAM_REC_OPTIONAL) ? " (optional)" : "");
    fputs(rec->inferred ? " (inferred): " : ": ", f);

    if (rec->layer == STREAM_LAYER_LIBXC) {
        switch (rec->type) {
        case STREAM_LIBXC_PAGE_DATA:
        case STREAM_LIBXC_TANDEM_PAGE_DATA_LZ4:
            print_page_data(f, rec, detail);
            break;
        case STREAM_LIBXC_TANDEM_PAGE_DATA_DELTA:
            print_page_delta(f, rec, detail);
            break;
        case STREAM_LIBXC_X86_TSC_INFO: {
            struct stream_tsc_info t;
            if (stream_decode_tsc_info(rec, &t))
                fprintf(f, "malformed\n");
            else
                fprintf(f, "mode %u, %u kHz, %" PRIu64 " ns, incarnation %u\n", t.mode, t.khz,
                        t.nsec, t.incarnation);
            break;
        }
        case STREAM_LIBXC_HVM_PARAMS: {
            struct stream_hvm_param *p;
            unsigned n;
            if (stream_decode_hvm_params(rec, &p, &n)) {
                fprintf(f, "malformed\n");
                break;
            }
            fprintf(f, "%u param%s\n", n, n == 1 ? "" : "s");
            for (unsigned i = 0; detail && i < n; i++) {
                const char *pn = hvm_param_name(p[i].index);
                fprintf(f, "    %" PRIu64 " (%s) = 0x%" PRIx64 "\n", p[i].index,
                        pn ? pn : "unknown", p[i].value);
            }
            free(p);
            break;
        }
        case STREAM_LIBXC_HVM_CONTEXT: {
            unsigned records, cpus;
            bool ok;
            print_hvm_context(f, rec->body, rec->length, false, &records, &cpus, &ok);
            fprintf(f, "%u bytes, %u save records, %u vCPU%s%s\n", rec->length, records, cpus,
                    cpus == 1 ? "" : "s", ok ? "" : " (malformed)");
            if (detail)
                print_hvm_context(f, rec->body, rec->length, true, &records, &cpus, &ok);
            break;
        }
        case STREAM_LIBXC_X86_CPUID_POLICY: {
            xen_cpuid_leaf_t *l;
            unsigned n;
            if (stream_decode_cpuid_policy(rec, &l, &n)) {
                fprintf(f, "malformed\n");
                break;
            }
            fprintf(f, "%u lea%s\n", n, n == 1 ? "f" : "ves");
            for (unsigned i = 0; detail && i < n; i++) {
                if (l[i].subleaf == XEN_CPUID_NO_SUBLEAF)
                    fprintf(f, "    leaf 0x%08x         ", l[i].leaf);
                else
                    fprintf(f, "    leaf 0x%08x.%-8u", l[i].leaf, l[i].subleaf);
                fprintf(f, " eax 0x%08x ebx 0x%08x ecx 0x%08x edx 0x%08x\n", l[i].a, l[i].b,
                        l[i].c, l[i].d);
            }
            free(l);
            break;
        }
        case STREAM_LIBXC_X86_MSR_POLICY: {
            xen_msr_entry_t *m;
            unsigned n;
            if (stream_decode_msr_policy(rec, &m, &n)) {
                fprintf(f, "malformed\n");
                break;
            }
            fprintf(f, "%u MSR%s\n", n, n == 1 ? "" : "s");
            for (unsigned i = 0; detail && i < n; i++)
                fprintf(f, "    msr 0x%08x = 0x%016" PRIx64 "%s\n", m[i].idx, m[i].val,
                        m[i].flags ? " (flags set)" : "");
            free(m);
            break;
        }
        case STREAM_LIBXC_CHECKPOINT_DIRTY_PFN_LIST: {
            uint64_t *p;
            unsigned n;
            if (stream_decode_dirty_pfn_list(rec, &p, &n)) {
                fprintf(f, "malformed\n");
                break;
            }
            fprintf(f, "%u pfns", n);
            if (n) {
                fputs(": ", f);
                print_ranges(f, p, NULL, n, -1, detail ? 64 : 4);
            }
            fputc('\n', f);
            free(p);
            break;
        }
        default:
            fprintf(f, "%u bytes\n", rec->length);
        }
    } else {
        switch (rec->type) {
        case STREAM_LIBXL_EMULATOR_CONTEXT:
        case STREAM_LIBXL_EMULATOR_XENSTORE_DATA:
            print_emulator(f, rec, detail);
            break;
        case STREAM_LIBXL_CHECKPOINT_STATE: {
            static const char *const states[] = { "NEW", "SVM_SUSPENDED", "SVM_READY",
                                                  "SVM_RESUMED" };
            uint32_t id;
            if (stream_decode_checkpoint_state(rec, &id))
                fprintf(f, "malformed\n");
            else
                fprintf(f, "%s\n", id < 4 ? states[id] : "unknown control id");
            break;
        }
        case STREAM_LIBXL_TANDEM_DISK_DATA: {
            uint32_t disk, len;
            uint64_t off;
            const uint8_t *data;
            if (stream_decode_disk_data(rec, &disk, &off, &data, &len))
                fprintf(f, "malformed, %u bytes\n", rec->length);
            else
                fprintf(f, "disk %u, bytes 0x%" PRIx64 "-0x%" PRIx64 " (%u bytes, %u block%s)\n",
                        disk, off, off + len - 1, len, (len + STREAM_DISK_ALIGN - 1) / STREAM_DISK_ALIGN,
                        len > STREAM_DISK_ALIGN ? "s" : "");
            break;
        }
        case STREAM_LIBXL_TANDEM_CHECKPOINT_ACK:
            if (rec->length == 8 && rec->body)
                fprintf(f, "epoch %" PRIu64 "\n", get_le64(rec->body));
            else
                fprintf(f, "malformed, %u bytes\n", rec->length);
            break;
        default:
            fprintf(f, "%u bytes\n", rec->length);
        }
    }
    return ferror(f) ? -EIO : 0;
}

int stream_print_summary(FILE *f, const struct stream_record *rec)
{
    return print_record(f, rec, false);
}

int stream_print_detail(FILE *f, const struct stream_record *rec)
{
    return print_record(f, rec, true);
}
