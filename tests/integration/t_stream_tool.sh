#!/bin/bash
# tandem-stream on real images from xl save: info tells the right name,
# memory, vCPUs and pages; dump and dump --json decode every record; verify
# passes them and fails corrupted copies naming an offset; diff finds the
# pages and registers two saves of a running guest differ in, and nothing
# between an image and itself; convert goes between the layers and down
# to a version 2 image, and what it writes verifies and restores into a
# guest that runs on without a verify error.  Xen's own verifier checks the
# three layers when tests/interop/verify-xen.sh can run it.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
: "${TANDEM_STREAM:=tandem-stream}"
TS=$TANDEM_STREAM
D=$TANDEM_STATE_DIR
err=$D/err

# ---- Two images of one running guest, a few seconds apart.
write_cfg "$D/g.cfg" g "workload=verify wss=16" "vcpus = 2"
"$XL" create -q "$D/g.cfg" || fail "create"
wait_for 15 has_status_lines g 2 || fail "no status lines"
"$XL" save -c g "$D/a.img" || fail "xl save -c (first)"
n=$(nstatus g); wait_for 10 has_status_lines g $((n + 3)) || fail "guest not running after save -c"
"$XL" save -c g "$D/b.img" || fail "xl save -c (second)"
"$XL" destroy g || fail "destroy"
size=$(stat -c %s "$D/a.img")

# ---- --help everywhere; usage errors exit 2.
"$TS" --help >/dev/null || fail "--help"
"$TS" help >/dev/null || fail "help"
for c in info dump verify diff convert help; do
    "$TS" "$c" --help | grep -q "^Usage: tandem-stream $c" || fail "$c --help"
    "$TS" help "$c" | grep -q "^Usage: tandem-stream $c" || fail "help $c"
done
"$TS" 2>/dev/null; [ $? = 2 ] || fail "no command: not exit 2"
"$TS" frobnicate 2>/dev/null; [ $? = 2 ] || fail "unknown command: not exit 2"
"$TS" info 2>/dev/null; [ $? = 2 ] || fail "info without a file: not exit 2"
"$TS" convert --to nowhere "$D/a.img" "$D/x" 2>/dev/null; [ $? = 2 ] || fail "convert --to nowhere: not exit 2"

# ---- info
"$TS" info "$D/a.img" >"$D/info" 2>"$err" || fail "info: $(cat "$err")"
info_val() { sed -n "s/^$1: *//p" "$D/info" | head -n 1; }
[ "$(info_val name)" = g ] || fail "info: name '$(info_val name)'"
[ "$(info_val memory)" = "128 MiB (32768 RAM pages)" ] || fail "info: memory '$(info_val memory)'"
[ "$(info_val vcpus)" = 2 ] || fail "info: vcpus '$(info_val vcpus)'"
[ "$(info_val layers)" = "xl save file, libxl stream v2, libxc image v3" ] ||
    fail "info: layers '$(info_val layers)'"
pages=$(info_val pages)
normal=$(echo "$pages" | sed -n 's/^\([0-9]*\) normal with data, \([0-9]*\) XALLOC zero, \([0-9]*\) other$/\1/p')
zero=$(echo "$pages" | sed -n 's/^\([0-9]*\) normal with data, \([0-9]*\) XALLOC zero, \([0-9]*\) other$/\2/p')
[ -n "$normal" ] && [ "$normal" -gt 0 ] && [ $((normal + zero)) = 32768 ] || fail "info: pages '$pages'"
# the guest's 16 MiB working set is in the pages with data
[ "$normal" -ge 4096 ] || fail "info: only $normal pages with data for a 16 MiB working set"
[ "$(awk '$1 == "total" { print $2 }' "$D/info")" = "$size" ] || fail "info: records' bytes do not add up to $size"
grep -q '^  libxc  HVM_CONTEXT  *1 ' "$D/info" || fail "info: no HVM_CONTEXT in the records table"
log "info: $(info_val memory), $(info_val vcpus) vCPUs, pages: $pages"
"$TS" info - <"$D/a.img" >"$D/info.stdin" || fail "info from stdin"
cat "$D/a.img" | "$TS" info - >"$D/info.pipe" || fail "info from a pipe"
diff <(sed 1d "$D/info") <(sed 1d "$D/info.stdin") >/dev/null || fail "info from stdin differs"
diff <(sed 1d "$D/info") <(sed 1d "$D/info.pipe") >/dev/null || fail "info from a pipe differs"

# ---- dump and dump --json
"$TS" dump "$D/a.img" >"$D/dump" 2>"$err" || fail "dump: $(cat "$err")"
for r in PAGE_DATA HVM_CONTEXT HVM_PARAMS X86_TSC_INFO X86_CPUID_POLICY STATIC_DATA_END EMULATOR_CONTEXT; do
    grep -q "$r" "$D/dump" || fail "dump: no $r"
done
"$TS" dump --json "$D/a.img" >"$D/dump.json" 2>"$err" || fail "dump --json: $(cat "$err")"
cat "$D/a.img" | "$TS" dump --json - | cmp -s - "$D/dump.json" || fail "dump --json from a pipe differs"
python3 - "$D/dump.json" "$size" "$D/g.json" <<'EOF' || fail "dump --json: wrong contents"
import json, sys
recs = [json.loads(line) for line in open(sys.argv[1])]
size = int(sys.argv[2])
def need(c, what):
    if not c:
        sys.exit("dump --json: " + what)
need(recs[0]["layer"] == "xl" and recs[0]["header"], "first is not the xl header")
cfg = recs[0]["decoded"]["config"]
need(cfg["name"] == "g", "config name")
json.dump(cfg, open(sys.argv[3], "w"))
need(all(a["offset"] < b["offset"] or b.get("inferred") for a, b in zip(recs, recs[1:])), "offsets not increasing")
last = recs[-1]
need(last["layer"] == "libxl" and last["name"] == "END" and last.get("last"), "last is not libxl END")
need(last["offset"] + 8 == size, "libxl END not at the end")
for r in recs:
    need(set(r) >= {"offset", "layer", "type", "name", "length"}, "missing members in %r" % r)
hvm = [r for r in recs if r["name"] == "HVM_CONTEXT"]
need(len(hvm) == 1, "HVM_CONTEXT count")
d = hvm[0]["decoded"]
need(d["vcpus"] == 2, "vcpus")
cpus = [s for s in d["records"] if s["name"] == "CPU"]
need(sorted(s["instance"] for s in cpus) == [0, 1], "CPU instances")
for s in cpus:
    for f in ("rip", "rsp", "rax", "cr0", "cr3", "cr4", "msr_efer", "cs_base", "tsc"):
        need(f in s["fields"], "CPU field " + f)
    need(int(s["fields"]["cr0"], 16) & 1, "CR0.PE clear in a running guest")
pages = 0
for r in recs:
    if r["name"] == "PAGE_DATA":
        pages += r["decoded"]["count"]
        need(sum(x["last"] - x["first"] + 1 for x in r["decoded"]["ranges"]) == r["decoded"]["count"], "ranges")
need(pages == 32768, "pages %d" % pages)
cpuid = [r for r in recs if r["name"] == "X86_CPUID_POLICY"]
need(cpuid and any(l["leaf"] == "0x0" for l in cpuid[0]["decoded"]["leaves"]), "CPUID leaf 0")
EOF
log "dump: $(wc -l <"$D/dump.json") records, JSON parses"

# ---- verify, and corrupted copies
for f in a.img b.img; do
    "$TS" verify "$D/$f" >"$D/out" 2>"$err" || fail "verify $f: $(cat "$err")"
    grep -q "valid xl save file" "$D/out" || fail "verify $f says: $(cat "$D/out")"
done
"$TS" verify - <"$D/a.img" >/dev/null 2>"$err" || fail "verify from stdin: $(cat "$err")"
# offset of the first record of a type, from the JSON dump
rec_offset() { python3 -c 'import json,sys
print(next(r["offset"] for r in map(json.loads, open(sys.argv[1])) if r["name"] == sys.argv[2] and not r.get("header")))' "$D/dump.json" "$1"; }
# flip_byte FILE OFFSET: xor one byte with 0x55
flip_byte() { python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x55]))' "$1" "$2"; }
# expect_invalid FILE OFFSET WHAT: verify fails, and names the offset
expect_invalid() {
    "$TS" verify "$1" >/dev/null 2>"$err"
    local rc=$?
    [ $rc = 1 ] || fail "verify of $3: exit $rc, not 1: $(cat "$err")"
    grep -q "^tandem-stream: verify: .* : .*offset $(printf '0x%x' "$2")" "$err" ||
        fail "verify of $3: no offset $(printf '0x%x' "$2") in: $(cat "$err")"
    log "verify of $3: $(cat "$err")"
}
off=$(rec_offset HVM_PARAMS)
cp "$D/a.img" "$D/c.img"; flip_byte "$D/c.img" $((off + 1))
expect_invalid "$D/c.img" "$off" "a flipped type byte"
off=$(rec_offset X86_TSC_INFO)
cp "$D/a.img" "$D/c.img"; flip_byte "$D/c.img" $((off + 4))
expect_invalid "$D/c.img" "$off" "a flipped length byte"
off=$(rec_offset HVM_CONTEXT)
cp "$D/a.img" "$D/c.img"; flip_byte "$D/c.img" $((off + 8))
expect_invalid "$D/c.img" "$off" "a broken HVM save descriptor"
head -c $((size / 2)) "$D/a.img" >"$D/c.img"
"$TS" verify "$D/c.img" >/dev/null 2>"$err"; [ $? = 1 ] || fail "verify of a truncated image did not fail"
grep -q "offset 0x.*stream ends" "$err" || fail "verify of a truncated image: $(cat "$err")"
log "verify of a truncated image: $(cat "$err")"
head -c $((size / 2)) "$D/a.img" | "$TS" verify - >/dev/null 2>&1; [ $? = 1 ] || fail "verify of a truncated pipe did not fail"
{ cat "$D/a.img"; echo junk; } >"$D/c.img"
"$TS" verify "$D/c.img" >/dev/null 2>"$err"; [ $? = 1 ] || fail "verify of an image with trailing bytes did not fail"
echo "not an image at all" >"$D/c.img"
"$TS" verify "$D/c.img" >/dev/null 2>"$err"; [ $? = 1 ] || fail "verify of garbage did not fail"
grep -q "not a Migration v2 stream" "$err" || fail "verify of garbage: $(cat "$err")"

# ---- diff
"$TS" diff "$D/a.img" "$D/a.img" >"$D/out" 2>"$err" || fail "diff of an image with itself: exit $?: $(cat "$err")"
grep -q "^no differences" "$D/out" || fail "diff with itself: $(cat "$D/out")"
grep -q "^pages \|^hvm " "$D/out" && fail "diff with itself reports differences: $(cat "$D/out")"
"$TS" diff "$D/a.img" "$D/b.img" >"$D/diff" 2>"$err"; rc=$?
[ $rc = 1 ] || fail "diff of two saves: exit $rc: $(cat "$err")"
grep -q "^pages differ: [1-9]" "$D/diff" || fail "diff: no differing pages: $(cat "$D/diff")"
grep -q "^  0x" "$D/diff" || fail "diff: no pfn ranges"
grep -q "^hvm CPU [01] [a-z0-9_]*: 0x" "$D/diff" || fail "diff: no differing registers: $(cat "$D/diff")"
grep -q "^hvm CPU [01] tsc: " "$D/diff" || fail "diff: the vCPUs' TSCs did not move"
log "diff of two saves: $(grep '^pages differ' "$D/diff"); $(grep -c '^hvm CPU' "$D/diff") register differences"
"$TS" diff "$D/a.img" - <"$D/b.img" >"$D/out" 2>"$err"; [ $? = 1 ] || fail "diff with stdin: $(cat "$err")"
diff <(sed 2d "$D/diff") <(sed 2d "$D/out") >/dev/null || fail "diff with stdin reports otherwise"
"$TS" diff -q "$D/a.img" "$D/b.img" >"$D/out"; [ $? = 1 ] && [ ! -s "$D/out" ] || fail "diff -q"
"$TS" diff - - </dev/null 2>/dev/null; [ $? = 2 ] || fail "diff - -: not exit 2"
"$TS" diff "$D/a.img" "$D/c.img" >/dev/null 2>&1; [ $? = 2 ] || fail "diff with garbage: not exit 2"

# ---- convert between the layers
conv() { "$TS" convert "$@" 2>"$err" || fail "convert $*: $(cat "$err")"; }
conv --to libxl "$D/a.img" "$D/a.libxl"
conv --to libxc "$D/a.img" "$D/a.libxc"
grep -q "dropped libxl EMULATOR_CONTEXT" "$err" || fail "convert --to libxc did not say what it dropped: $(cat "$err")"
conv --to libxc "$D/a.libxl" - >"$D/a2.libxc"
cmp -s "$D/a.libxc" "$D/a2.libxc" || fail "libxc from xl and from libxl differ"
"$TS" convert --to xl "$D/a.libxl" "$D/x.img" 2>"$err"; [ $? = 1 ] || fail "convert to xl without a config did not fail"
grep -q -- "--config" "$err" || fail "convert to xl without a config: $(cat "$err")"
[ -e "$D/x.img" ] && fail "a failed convert left its output"
conv --to xl --config "$D/g.json" "$D/a.libxl" "$D/rt-libxl.img"
conv --to libxl "$D/a.libxc" "$D/a2.libxl"
conv --to xl --config "$D/g.json" "$D/a2.libxl" "$D/rt-libxc.img"
cat "$D/a.libxc" | "$TS" convert --to xl --config "$D/g.json" - - >"$D/rt-pipe.img" 2>"$err" || fail "convert in a pipe: $(cat "$err")"
cmp -s "$D/rt-libxc.img" "$D/rt-pipe.img" || fail "convert in a pipe writes otherwise"
conv --to xl "$D/a.img" "$D/same.img"
cmp -s "$D/a.img" "$D/same.img" || fail "convert xl to xl changed the image"
expect_layers() {
    "$TS" info "$1" | grep -q "^layers: *$2\$" || fail "$1: layers: $("$TS" info "$1" | grep '^layers')"
}
expect_layers "$D/a.libxl" "libxl stream v2, libxc image v3"
expect_layers "$D/a.libxc" "libxc image v3"
expect_layers "$D/rt-libxc.img" "xl save file, libxl stream v2, libxc image v3"
for f in a.libxl a.libxc a2.libxl rt-libxl.img rt-libxc.img; do
    "$TS" verify "$D/$f" >/dev/null 2>"$err" || fail "verify $f: $(cat "$err")"
done
"$TS" diff "$D/a.img" "$D/rt-libxl.img" >"$D/out" || fail "a.img and its round trip through libxl differ: $(cat "$D/out")"
"$TS" diff "$D/a.img" "$D/a.libxc" >"$D/out"; [ $? = 1 ] || fail "diff a.img a.libxc: device state not missed"
[ "$(grep -v '^A: \|^B: \|^note: \|^differences: ' "$D/out")" = "EMULATOR_CONTEXT 0/0: only in A" ] ||
    fail "a.img and its libxc image differ in more than device state: $(cat "$D/out")"
ls -A "$D" | grep -q '\.tmp\.' && fail "temporary files left: $(ls -A "$D")"
head -c $((size / 2)) "$D/a.img" >"$D/c.img"
"$TS" convert --to libxl "$D/c.img" "$D/x.img" 2>/dev/null && fail "converted a truncated image"
[ -e "$D/x.img" ] && fail "a failed convert left its output"
ls -A "$D" | grep -q '\.tmp\.' && fail "a failed convert left a temporary file"

# ---- convert to a version 2 image, and back to 3
conv --stream-version 2 "$D/a.img" "$D/v2.img"
for r in STATIC_DATA_END X86_CPUID_POLICY X86_MSR_POLICY; do
    grep -q "dropped libxc $r" "$err" || fail "convert --stream-version 2 did not list $r as dropped: $(cat "$err")"
done
log "convert --stream-version 2: $(grep -c dropped "$err") records dropped"
"$TS" verify "$D/v2.img" >/dev/null 2>"$err" || fail "verify of the v2 image: $(cat "$err")"
expect_layers "$D/v2.img" "xl save file, libxl stream v2, libxc image v2 (STATIC_DATA_END inferred)"
"$TS" dump --json "$D/v2.img" | python3 -c 'import json, sys
recs = [json.loads(l) for l in sys.stdin]
assert not any(r["name"] in ("X86_CPUID_POLICY", "X86_MSR_POLICY") for r in recs)
assert [r.get("inferred") for r in recs if r["name"] == "STATIC_DATA_END"] == [True]' ||
    fail "the v2 image still has v3 records"
conv --stream-version 3 "$D/v2.img" "$D/v3.img"
"$TS" verify "$D/v3.img" >/dev/null 2>"$err" || fail "verify of v2 -> v3: $(cat "$err")"
"$TS" diff "$D/v2.img" "$D/v3.img" >/dev/null || fail "v2 -> v3 changed the state"

# ---- Xen's own verifier, when it can run.
interop=${TOP_SRCDIR:-}/tests/interop/verify-xen.sh
if [ -n "${TOP_SRCDIR:-}" ] && [ -f "$interop" ]; then
    for pair in "xl a.img" "libxl a.libxl" "libxc a.libxc" "xl rt-libxc.img" "xl v2.img"; do
        set -- $pair
        sh "$interop" -f "$1" "$D/$2" >"$D/out" 2>&1
        rc=$?
        if [ $rc = 77 ]; then
            log "SKIP: Xen's verify-stream-v2 is not available (xen-utils-4.17 not fetchable); Xen's verifier did NOT check these images"
            break
        fi
        [ $rc = 0 ] || fail "Xen's verify-stream-v2 -f $1 rejects $2: $(tail -n 5 "$D/out")"
        log "Xen's verify-stream-v2 -f $1 accepts $2"
    done
else
    log "NOTE: $interop not found; Xen's verifier not run"
fi

# ---- The converted images restore, and the guest runs on.
# restore_runs FILE WHAT
restore_runs() {
    local n
    "$XL" restore "$1" 2>"$err" || fail "xl restore of $2: $(cat "$err")"
    n=$(nstatus g)
    wait_for 15 has_status_lines g $((n + 3)) || fail "the guest restored from $2 prints nothing"
    local st; st=$(last_status g)
    [ "$(field "$st" verify_errors)" = 0 ] || fail "verify errors after restoring $2: $st"
    [ "$(field "$st" cpus)" = 2 ] || fail "an AP was lost restoring $2: $st"
    log "restored $2: $st"
    "$XL" destroy g || fail "destroy after restoring $2"
}
restore_runs "$D/rt-libxl.img" "the image converted to libxl and back"
restore_runs "$D/rt-libxc.img" "the image converted to libxc and back"
restore_runs "$D/v2.img" "the version 2 image"
exit 0
