#!/bin/bash
# Makes Tandem's golden images: one xl save image per test-guest workload,
# saved by the Tandem that is built in BUILDDIR, compressed with xz -9e, in
# tests/data/streams/<version>/<workload>.xl.xz.  tests/integration/
# t_golden.sh restores every one of them (every version's) and checks that
# the guest runs on.  See tests/data/README.md.
#
#   tests/data/make-golden.sh policy BUILDDIR   (re)write policies/baseline.json
#   tests/data/make-golden.sh images BUILDDIR   save streams/<version>/*.xl.xz
#
# Needs root, /dev/kvm, python3 and xz.  "images" refuses to touch a
# version directory that exists: a release's images never change.
set -eu
DATA=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 policy|images BUILDDIR" >&2; exit 2; }
[ $# = 2 ] || usage
what=$1 BUILD=$(cd "$2" && pwd)
XL=$BUILD/tools/xl
TANDEM_STREAM=$BUILD/tools/tandem-stream
KERNEL=$BUILD/tests/guests/tandem-guest
for f in "$XL" "$TANDEM_STREAM" "$KERNEL"; do [ -x "$f" ] || [ -r "$f" ] || { echo "$0: $f is missing" >&2; exit 1; }; done
BASELINE=$DATA/policies/baseline.json

WORK=$(mktemp -d /tmp/tandem-golden.XXXXXX)
export TANDEM_STATE_DIR=$WORK/state
mkdir -p "$TANDEM_STATE_DIR"
cleanup() {
    for d in $("$XL" list 2>/dev/null | awk 'NR > 2 { print $1 }'); do "$XL" destroy "$d" >/dev/null 2>&1 || :; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- policies/baseline.json ---------------------------------------------
# This host's policy with every feature word cut down to what any 64-bit
# KVM host has (x86-64-v1 plus SSE3/SSSE3/CX16/SSE4.1/SSE4.2/POPCNT/LAHF-LM
# of v2): no XSAVE, no AVX, nothing of leaves 7, 0xd.1, 0x80000007/8/21;
# XSAVE components x87|SSE only; ARCH_CAPABILITIES 0.  A guest config's
# cpuid_policy= takes from the guest whatever this file lacks.  Bits are
# those of Xen's public/arch-x86/cpufeatureset.h.
make_policy() {
    "$XL" cpuid-policy host -o "$WORK/host.json"
    python3 - "$WORK/host.json" "$WORK/raw.json" <<'PY'
import json, sys
KEEP = {  # (leaf, subleaf or None, register): {bit: name}
    (0x1, None, "edx"): {0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
                         8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
                         16: "pat", 17: "pse36", 19: "clflush", 23: "mmx", 24: "fxsr", 25: "sse", 26: "sse2"},
    (0x1, None, "ecx"): {0: "sse3", 9: "ssse3", 13: "cx16", 19: "sse4-1", 20: "sse4-2", 23: "popcnt",
                         31: "hypervisor"},
    (0x80000001, None, "edx"): {11: "syscall", 20: "nx", 29: "lm"},
    (0x80000001, None, "ecx"): {0: "lahf-lm"},
}
# Tandem's feature words (xen/cpu_features.c, cpu_feature_words): all the
# ones not in KEEP become 0.
WORDS = [(0x1, None, "edx"), (0x1, None, "ecx"), (0x80000001, None, "edx"), (0x80000001, None, "ecx"),
         (0xd, 1, "eax"), (0x7, 0, "ebx"), (0x7, 0, "ecx"), (0x80000007, None, "edx"),
         (0x80000008, None, "ebx"), (0x7, 0, "edx"), (0x7, 1, "eax"), (0x80000021, None, "eax"),
         (0x7, 1, "ebx"), (0x7, 2, "edx"), (0x7, 1, "ecx"), (0x7, 1, "edx"), (0x80000021, None, "ecx")]
host = json.load(open(sys.argv[1]))
def key(l):
    return (int(l["leaf"], 16), None if l["subleaf"] is None else int(l["subleaf"], 16))
leaves = []
for l in host["cpuid"]:
    leaf, sub = key(l)
    if leaf == 0xd and sub is not None and sub >= 2:
        continue                # components the baseline does not have
    l = dict(l)
    for (wl, ws, reg) in WORDS:
        if (wl, ws) == (leaf, sub):
            mask = sum(1 << b for b in KEEP.get((wl, ws, reg), {}))
            v = int(l[reg], 16)
            missing = [n for b, n in KEEP.get((wl, ws, reg), {}).items() if not v >> b & 1 and n != "hypervisor"]
            if missing:
                sys.exit("this host lacks baseline features %s" % ", ".join(missing))
            l[reg] = "0x%08x" % (v & mask)
    if (leaf, sub) == (0x1, None):
        l["ebx"] = "0x%08x" % (int(l["ebx"], 16) & 0x00ffffff)  # not the APIC ID of the CPU it ran on
    if (leaf, sub) == (0xd, 0):
        l["eax"], l["edx"] = "0x00000003", "0x00000000"     # x87 | SSE
        l["ebx"] = l["ecx"] = "0x00000240"                   # legacy area + XSAVE header
    if (leaf, sub) == (0xd, 1):
        l["ebx"] = l["ecx"] = l["edx"] = "0x00000000"
    leaves.append(l)
out = {"format": host["format"], "version": host["version"], "kind": "baseline",
       "about": "x86-64 baseline for Tandem's golden images (tests/data/make-golden.sh)",
       "release": host.get("release", ""), "cpuid": leaves,
       "msr": [{"index": "0x0000010a", "value": "0x0000000000000000"}]}
json.dump(out, open(sys.argv[2], "w"), indent=2)
PY
    # Let Tandem read it back and name what it has: the names must be the
    # baseline's and nothing else.
    "$XL" cpuid-policy level -f "$WORK/raw.json" >"$WORK/names"
    python3 - "$WORK/raw.json" "$WORK/names" "$BASELINE" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
names = [n.strip() for n in open(sys.argv[2]).read().replace(",", " ").split()]
want = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 "
        "sse3 ssse3 cx16 sse4-1 sse4-2 popcnt hypervisor syscall nx lm lahf-lm").split()
if sorted(set(names) - {"hypervisor"}) != sorted(set(want) - {"hypervisor"}):
    sys.exit("Tandem reads the baseline as %s" % " ".join(names))
ordered = {k: p[k] for k in ("format", "version", "kind", "about", "release")}
ordered["features"] = names
ordered["cpuid"] = p["cpuid"]
ordered["msr"] = p["msr"]
with open(sys.argv[3] + ".tmp", "w") as f:
    json.dump(ordered, f, indent=2)
    f.write("\n")
PY
    mv "$BASELINE.tmp" "$BASELINE"
    "$XL" cpuid-policy check "$BASELINE"
    echo "wrote $BASELINE"
}

case $what in
policy) make_policy; exit 0 ;;
images) ;;
*) usage ;;
esac

# ---- streams/<version>/*.xl.xz ------------------------------------------
# Each guest: 32 MiB, the baseline CPU policy, a small working set, run for
# a few seconds, then a plain `xl save` (the guest is destroyed).  The
# kernel is a copy under $WORK that is deleted afterwards, so the path the
# images carry in their config exists nowhere: restore never reads the
# kernel (the image's memory holds it), and t_golden.sh proves it.
WORKLOADS="idle:1:workload=idle
dirty:2:workload=dirty wss=2 rate=2000
verify:2:workload=verify wss=1
cpuhog:1:workload=cpuhog"

[ -r "$BASELINE" ] || { echo "$0: $BASELINE is missing: run '$0 policy $2' first" >&2; exit 1; }
"$XL" cpuid-policy check "$BASELINE"
VERSION=$("$XL" info | sed -n 's/^tandem_version *: *//p')
[ -n "$VERSION" ] || { echo "$0: xl info names no tandem_version" >&2; exit 1; }
OUT=$DATA/streams/$VERSION
[ ! -e "$OUT" ] || { echo "$0: $OUT exists: a release's golden images never change" >&2; exit 1; }
cp "$KERNEL" "$WORK/tandem-guest"
mkdir -p "$WORK/out"
export TANDEM_GUEST_KERNEL=$WORK/tandem-guest

complete_status() { # the status lines of complete lines only
    local f=$TANDEM_STATE_DIR/console/$1.log
    [ -f "$f" ] || return 0
    if [ -n "$(tail -c 1 "$f")" ]; then head -n -1 "$f"; else cat "$f"; fi | tr -d '\r' | grep -a '^TANDEM-GUEST seq=' || :
}
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

{
    echo "# Golden images saved by Tandem $VERSION (tests/data/make-golden.sh); one line per image:"
    echo "# file sha256 vcpus workload, and the guest's last status line before the save (seq, uptime_ms)."
    echo "# tests/integration/t_golden.sh checks the sha256 (images never change) and that the"
    echo "# restored guest goes on from last_seq."
} >"$WORK/out/MANIFEST"
while IFS=: read -r wl vcpus cmdline <&3; do
    name=golden-$wl
    cfg=$WORK/$wl.cfg
    printf 'name = "%s"\nmemory = 32\nvcpus = %s\ncmdline = "%s"\nkernel = "%s"\ncpuid_policy = "%s"\n' \
        "$name" "$vcpus" "$cmdline" "$WORK/tandem-guest" "$BASELINE" >"$cfg"
    echo "== $wl:"; sed 's/^/    /' "$cfg"
    "$XL" create -q "$cfg" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    # Five status lines: the workload has started (verify: filled) and run.
    for _ in $(seq 200); do [ "$(complete_status "$name" | wc -l)" -ge 5 ] && break; sleep 0.1; done
    [ "$(complete_status "$name" | wc -l)" -ge 5 ] || { echo "$0: $name prints no status lines" >&2; exit 1; }
    "$XL" save "$name" "$WORK/$wl.xl"
    last=$(complete_status "$name" | tail -n 1)
    [ "$(field "$last" verify_errors)" = 0 ] || { echo "$0: $name: $last" >&2; exit 1; }
    "$TANDEM_STREAM" verify "$WORK/$wl.xl"
    xz -9e -T1 -c "$WORK/$wl.xl" >"$WORK/out/$wl.xl.xz"
    printf '%s.xl.xz sha256=%s vcpus=%s workload=%s last_seq=%s last_uptime_ms=%s\n' "$wl" \
        "$(sha256sum "$WORK/out/$wl.xl.xz" | cut -d' ' -f1)" "$vcpus" "$wl" "$(field "$last" seq)" \
        "$(field "$last" uptime_ms)" >>"$WORK/out/MANIFEST"
    echo "   saved: $(stat -c %s "$WORK/$wl.xl") bytes, $(stat -c %s "$WORK/out/$wl.xl.xz") compressed; last: $last"
done 3<<<"$WORKLOADS"
mkdir -p "$DATA/streams"
mv "$WORK/out" "$OUT"
echo "wrote $OUT:"; ls -l "$OUT"
