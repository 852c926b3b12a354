/*
 * tandem-guest: PVH entry, AP start-up trampoline, interrupt stubs.
 *
 * The code lives in three sections by CPU mode so that the no-FPU check
 * (check-no-fpu.sh) can disassemble each in the mode it really runs in:
 *   .tramp16  16-bit real mode (copied to 0x8000, started by SIPI)
 *   .boot32   32-bit protected mode (PVH entry, AP path to long mode)
 *   .text     64-bit long mode (everything else)
 */

#include <xen/elfnote.h>

#define SEL_CODE32	0x08
#define SEL_DATA	0x10
#define SEL_CODE64	0x18

#define MSR_EFER	0xC0000080
#define EFER_LME	0x100
#define CR4_PAE		0x20
#define CR0_PE_PG	0x80000001

/* Where the BSP writes the GDT pseudo-descriptor for the trampoline.  It
 * has to sit below 64 KiB so real-mode code can reach it with DS = 0,
 * and it is kept out of the trampoline's code so disassembly stays
 * clean. smp.c writes it; keep the two in step. */
#define TRAMP_GDTR	0x8f00

/*
 * Xen PVH entry note: the loader (QEMU, Tandem) enters pvh_entry in 32-bit
 * protected mode with EBX = struct hvm_start_info.  The descriptor is 4
 * bytes, as the PVH ABI describes it.  QEMU reads the descriptor of a
 * 64-bit ELF as a native word (8 bytes), so an empty note follows to make
 * the 4 bytes after the address zero for such readers.
 */
	.section .note.xen, "a", @note
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 4				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_entry
	.long 0, 0, 0			/* empty note: name "", no desc, type 0 */

/* ------------------------------------------------------------------ */
	.data
	.balign 16
	/* Flat segments; the same table boots every CPU.  Each CPU later
	 * loads a private copy (see cpu_load_tables), but the values match. */
	.globl gdt_boot, gdt_boot_end
gdt_boot:
	.quad 0
	.quad 0x00CF9A000000FFFF	/* 0x08: 32-bit code, 4 GiB */
	.quad 0x00CF92000000FFFF	/* 0x10: data, 4 GiB */
	.quad 0x00AF9A000000FFFF	/* 0x18: 64-bit code */
gdt_boot_end:
	/* cpu_load_tables() appends the ring-3 segments and a TSS to each
	 * CPU's copy; see the SEL_* values in guest.h. */

	.balign 8
boot_gdtr:
	.word gdt_boot_end - gdt_boot - 1
	.long gdt_boot

	/* Handed to a starting AP by smp.c: its stack and struct cpu. */
	.balign 8
	.globl ap_boot_stack, ap_boot_cpu
ap_boot_stack:	.quad 0
ap_boot_cpu:	.quad 0

/* ------------------------------------------------------------------ */
	.bss
	.balign 4096
	/* Identity map of the low 4 GiB in 2 MiB pages, built before C runs.
	 * mm.c adds PDPT entries for RAM above 4 GiB.  Every level has the
	 * user bit set: workloads run in ring 3 (see arch.c) and touch the
	 * whole image and their memory directly. */
	.globl boot_pml4, boot_pdpt
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096

	.balign 16
boot_stack:	.skip 16384
boot_stack_top:

/* ------------------------------------------------------------------ */
/* Paging on, long mode on, then far jump into 64-bit code.  Needs no
 * stack, so the AP path can use it before it has one. */
.macro ENTER_LONG_MODE target
	/* CR4 = PAE only: in particular no SMEP/SMAP, which would stop
	 * ring 0 from touching the user-accessible identity map. */
	movl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $CR0_PE_PG, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE64, $\target
.endm

	.section .boot32, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	/* The loader's GDT may be anywhere (even gone once we reuse RAM). */
	lgdtl boot_gdtr
	ljmpl $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss

	/* EBX (start_info) must survive: rep stos and rdmsr use EAX/ECX/
	 * EDX/EDI, so park it in EBP until C is called. */
	movl %ebx, %ebp

	/* Zero .bss ourselves: a loader need not, and after a reboot by
	 * the VMM the old contents could still be there. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx		/* both ends are 8-aligned (linker script) */
	xorl %eax, %eax
	/* Dwords, not bytes: where ring 0 is emulated each iteration is an
	 * exit's worth of work, and the bss is over a megabyte. */
	rep stosl

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories.
	 * 7 = present | writable | user. */
	movl $boot_pdpt + 7, boot_pml4
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $12, %eax
	addl $boot_pd + 7, %eax
	movl %eax, boot_pdpt(, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jne 2b

	/* 2048 entries of 2 MiB (present, writable, user, large).  The
	 * top 32 MiB hold the IOAPIC and LAPIC: map that uncached so MMIO
	 * is never cached whatever the MTRRs say. */
	xorl %ecx, %ecx
3:	movl %ecx, %eax
	shll $21, %eax
	orl $0x87, %eax
	cmpl $(0xFE000000 >> 21), %ecx
	jb 4f
	orl $0x18, %eax			/* PCD | PWT */
4:	movl %eax, boot_pd(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jne 3b

	ENTER_LONG_MODE bsp_entry64

	/* An AP arrives here from the real-mode trampoline, already in
	 * protected mode with CS = SEL_CODE32. The page tables exist. */
	.globl ap_entry32
ap_entry32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	ENTER_LONG_MODE ap_entry64

/* ------------------------------------------------------------------ */
	/* Copied to 0x8000 by smp.c; a SIPI with vector 0x08 starts an AP
	 * here in real mode with CS = 0x0800, IP = 0. */
	.section .tramp16, "ax"
	.code16
	.globl ap_tramp16, ap_tramp16_end
ap_tramp16:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl TRAMP_GDTR
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $ap_entry32
ap_tramp16_end:

/* ------------------------------------------------------------------ */
	.text
	.code64
	/* DS/ES/FS/GS are null in long mode: nothing uses them but %gs's
	 * base, and a null selector survives the drop to ring 3 (iretq
	 * would null a DPL-0 one, possibly with its base). */
bsp_entry64:
	movl $SEL_DATA, %eax
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movq $boot_stack_top, %rsp
	movl %ebp, %edi			/* start_info physical address */
	call kernel_main
5:	cli
	hlt
	jmp 5b

ap_entry64:
	movl $SEL_DATA, %eax
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movq ap_boot_stack(%rip), %rsp
	movq ap_boot_cpu(%rip), %rdi
	call ap_main
6:	cli
	hlt
	jmp 6b

/*
 * Interrupt stubs, 16 bytes apart so the IDT entry for vector v is
 * isr_stubs + 16 * v.  Each pushes a dummy error code when the CPU does
 * not, then the vector, so every frame has the same layout
 * (struct frame in guest.h).
 */
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call interrupt_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector and error code */
	iretq

/*
 * The one deliberate SSE instruction (workload=sse).  Raw bytes so that
 * no compiler flag is involved; check-no-fpu.sh allows exactly this one
 * instruction inside this symbol and nowhere else.
 */
	.globl sse_probe
	.type sse_probe, @function
sse_probe:
	.byte 0x0f, 0x57, 0xc0		/* xorps %xmm0, %xmm0 */
	ret
	.size sse_probe, . - sse_probe

	.section .note.GNU-stack, "", @progbits
