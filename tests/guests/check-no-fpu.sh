#!/bin/sh
# Fail if the guest image contains any x87, MMX, SSE or AVX instruction.
#
# On the development host such instructions in guest ring 0 end the VM
# with KVM_EXIT_INTERNAL_ERROR, so the guest must be built from general
# purpose registers only.  The compiler flags should guarantee that; this
# check proves it on the final image.  Each code section is disassembled
# in the mode it runs in.  The only exception is the single deliberate
# instruction inside sse_probe (workload=sse), which must be exactly one.
#
# usage: check-no-fpu.sh OBJDUMP ELF

set -e
objdump=${1:?objdump}
elf=${2:?elf}

sections=$("$objdump" -h "$elf" | awk '$1 ~ /^[0-9]+$/ { print $2 }')
has() { printf '%s\n' "$sections" | grep -qx "$1"; }

list=$(
	if has .tramp16; then "$objdump" -d -w -M i8086 -j .tramp16 "$elf"; fi &&
	if has .boot32; then "$objdump" -d -w -M i386 -j .boot32 "$elf"; fi &&
	"$objdump" -d -w -j .text "$elf"
) || { echo "$elf: objdump failed" >&2; exit 1; }

printf '%s\n' "$list" | awk -v elf="$elf" '
	/^[0-9a-f]+ <.*>:$/ {
		sym = $2; sub(/^</, "", sym); sub(/>:$/, "", sym)
		next
	}
	/^ *[0-9a-f]+:\t/ {
		n = split($0, f, "\t")
		if (n < 3)
			next			# continuation of a long encoding
		insn = f[3]
		sub(/#.*/, "", insn)		# objdump comments (addresses)
		m = insn
		# Skip prefixes to find the mnemonic.
		while (m ~ /^(lock|rep|repz|repnz|repe|repne|data16|data32|addr16|addr32|cs|ds|es|fs|gs|ss|notrack|bnd) /)
			sub(/^[a-z0-9]+ +/, "", m)
		split(m, w, " ")
		mn = w[1]
		bad = ""
		if (insn ~ /%[xyz]mm[0-9]/ || insn ~ /%mm[0-7]/ || insn ~ /%st(\(|,| |$)/ || insn ~ /%k[0-7]/)
			bad = "vector/x87 register"
		else if (mn ~ /^f/ || mn ~ /^(wait|emms|ldmxcsr|stmxcsr|vldmxcsr|vstmxcsr|vzeroupper|vzeroall)$/ || mn ~ /^(xsave|xrstor)/)
			bad = "x87/SIMD state instruction"
		else if (mn == "(bad)")
			bad = "undecodable bytes"
		if (bad == "")
			next
		if (sym == "sse_probe" && mn == "xorps") {
			probes++
			next
		}
		printf "%s: %s in <%s>: %s\n", elf, bad, sym, $0 > "/dev/stderr"
		errors++
	}
	END {
		if (probes != 1) {
			printf "%s: expected exactly one xorps in <sse_probe>, found %d\n", elf, probes > "/dev/stderr"
			errors++
		}
		exit errors ? 1 : 0
	}'
