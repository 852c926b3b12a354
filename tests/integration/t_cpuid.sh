#!/bin/bash
# CPU policies: xl cpuid-policy host/guest/level/check; xl.cfg cpuid= in
# both of Xen's forms and cpuid_policy=; host.cfg's cpuid_mask; the guest
# really sees its policy (workload=cpuid reports the leaves it reads);
# wrong settings fail cleanly and leave nothing; and between two hosts
# that differ (B masks a feature), a migration of a guest that has the
# feature is refused before any memory is sent with the source unharmed,
# while a guest given the levelled policy of both moves there and back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
command -v python3 >/dev/null || { log "ERROR: python3 is needed to read the JSON policies"; exit 99; }
new_hosts A B
WORK=$(host_dir A)

# The feature B will lack: lahf-lm, leaf 0x80000001 ECX bit 0.  Some KVMs
# (KVM on PVM) show guests the host's own leaves 1, 7 and 0xd whatever a
# VMM sets; 0x80000001 is one every KVM lets a VMM choose.
FEATURE=lahf-lm

# has_feature FILE NAME: the policy JSON lists feature NAME.
has_feature() { python3 -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1]))["features"] else 1)' "$1" "$2"; }

# guest_cpuid H NAME: the last complete TANDEM-CPUID block the guest printed.
guest_cpuid() {
    complete_lines "$(h_console_log "$1" "$2")" | tr -d '\r' |
        awk '/^TANDEM-CPUID leaf=/ { blk = blk $0 "\n" } /^TANDEM-CPUID end/ { last = blk; blk = "" } END { printf "%s", last }'
}
has_cpuid_block() { [ -n "$(guest_cpuid "$1" "$2")" ]; }

# compare_with_policy H NAME POLICY.json: every leaf the guest reports
# matches the policy, but for what is the vCPU's own (APIC IDs, and the
# OSXSAVE/OSPKE bits that follow its CR4).
compare_with_policy() {
    guest_cpuid "$1" "$2" >"$WORK/seen.txt"
    python3 - "$WORK/seen.txt" "$3" <<'PY' || fail "guest $2 on $1 does not see its policy"
import json, sys
seen = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=") for kv in line.split()[1:])
    seen[(int(f["leaf"], 16), int(f["subleaf"], 16))] = [int(f[r], 16) for r in ("eax", "ebx", "ecx", "edx")]
pol = json.load(open(sys.argv[2]))
leaves = {}
for l in pol["cpuid"]:
    sub = 0 if l["subleaf"] is None else int(l["subleaf"], 16)
    leaves[(int(l["leaf"], 16), sub)] = [int(l[r], 16) for r in ("eax", "ebx", "ecx", "edx")]
ignore = {(1, 0): [0, 0xff000000, 1 << 27, 0], (7, 0): [0, 0, 1 << 4, 0]}
bad = 0
for key, regs in sorted(seen.items()):
    want = leaves.get(key)
    if want is None:
        print("leaf %#x.%x seen by the guest is not in the policy" % key, file=sys.stderr); bad += 1; continue
    for i, r in enumerate("abcd"):
        m = ~ignore.get(key, [0, 0, 0, 0])[i] & 0xffffffff
        if regs[i] & m != want[i] & m:
            print("leaf %#x.%x e%sx: guest sees %#010x, policy says %#010x" % (key[0], key[1], r, regs[i], want[i]), file=sys.stderr)
            bad += 1
print("compared %d leaves" % len(seen), file=sys.stderr)
sys.exit(1 if bad or len(seen) < 5 else 0)
PY
}

# -- One host: the host policy, a guest's policy, what the guest sees -----
on A xl cpuid-policy host -o "$WORK/A.json" || fail "xl cpuid-policy host"
has_feature "$WORK/A.json" "$FEATURE" || { log "SKIP: this host's CPU has no $FEATURE; the test did NOT run"; exit 77; }
on A xl cpuid-policy host --features | grep -q "$FEATURE" || fail "--features does not list $FEATURE"

cfg=$(h_write_cfg A c.cfg c "workload=cpuid" "vcpus = 2" "cpuid = \"host,$FEATURE=0,family=6,model=0x55,stepping=3\"")
on A xl create -q "$cfg" || fail "create with cpuid="
wait_for 20 has_cpuid_block A c || fail "the cpuid guest reports no CPUID block"
on A xl cpuid-policy guest c -o "$WORK/c.json" || fail "xl cpuid-policy guest"
has_feature "$WORK/c.json" "$FEATURE" && fail "the guest's policy still has $FEATURE"
compare_with_policy A c "$WORK/c.json"
guest_cpuid A c | grep -q '^TANDEM-CPUID leaf=0x00000001 subleaf=0x0 eax=0x00050653 ' ||
    fail "family 6 model 0x55 stepping 3 not seen: $(guest_cpuid A c | grep leaf=0x00000001)"
ecx=$(guest_cpuid A c | sed -n 's/^TANDEM-CPUID leaf=0x80000001 .* ecx=\(0x[0-9a-f]*\).*/\1/p')
[ -n "$ecx" ] && [ $((ecx & 1)) = 0 ] || fail "the guest still sees $FEATURE (0x80000001 ECX=$ecx)"
on A xl destroy c

# The xend form, as a list.
cfg=$(h_write_cfg A x.cfg x "workload=cpuid" \
      "cpuid = [ '0x80000001:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0', '1:eax=xxxxxxxxxxxxxxxxxxxxxxxxxxxx0010' ]")
on A xl create -q "$cfg" || fail "create with the xend form"
wait_for 20 has_cpuid_block A x || fail "x reports no CPUID block"
on A xl cpuid-policy guest x -o "$WORK/x.json" || fail "xl cpuid-policy guest x"
has_feature "$WORK/x.json" "$FEATURE" && fail "xend form: $FEATURE still there"
compare_with_policy A x "$WORK/x.json"
guest_cpuid A x | grep -q '^TANDEM-CPUID leaf=0x00000001 subleaf=0x0 eax=0x[0-9a-f]*2 ' || fail "xend form: stepping 2 not seen"
on A xl destroy x

# -- Wrong settings fail cleanly -----------------------------------------
# bad_create WHAT EXPECT CFG-LINE: create fails, names EXPECT, leaves nothing.
bad_create() {
    local what=$1 expect=$2 line=$3 rc
    cfg=$(h_write_cfg A bad.cfg bad "workload=idle" "$line")
    on A xl create -q "$cfg" 2>"$WORK/err"; rc=$?
    [ $rc = 1 ] || fail "$what: xl create exited $rc: $(cat "$WORK/err")"
    grep -q -- "$expect" "$WORK/err" || fail "$what: the error does not say '$expect': $(cat "$WORK/err")"
    log "$what: $(head -n 1 "$WORK/err")"
    assert_host_empty A "$what"
}
bad_create "unknown feature" "unknown CPU feature 'no-such-thing'" 'cpuid = "host,no-such-thing=0"'
bad_create "no host prefix" 'starts with "host"' 'cpuid = "avx2=0"'
bad_create "bad value" "one of 1, 0, x, k, s" "cpuid = \"host,$FEATURE=2\""
bad_create "bad xend bits" "exactly 32 characters" "cpuid = [ '1:ecx=xx0' ]"
bad_create "missing policy file" "cannot open CPU policy" 'cpuid_policy = "/nonexistent/pool.json"'
echo '{"format": "tandem-cpu-policy", "version": 1, "cpuid": [' >"$WORK/broken.json"
bad_create "broken policy file" "broken.json: not JSON: it ends too early" "cpuid_policy = \"$WORK/broken.json\""
# A feature this host cannot give.
echo "cpuid_mask = \"$FEATURE=0\"" >"$WORK/host.cfg"
on A xl cpuid-policy host -o "$WORK/A-masked.json" || fail "host policy with a mask"
has_feature "$WORK/A-masked.json" "$FEATURE" && fail "host.cfg's cpuid_mask did not take $FEATURE away"
bad_create "feature the host lacks" "this host cannot give .*($FEATURE)" "cpuid = \"host,$FEATURE=1\""
echo 'cpuid_mask = "avx2=1"' >"$WORK/host.cfg"
bad_create "host.cfg that adds" "only removes features" ""
rm -f "$WORK/host.cfg"

# -- Two hosts that differ: B lacks the feature ------------------------------
echo "cpuid_mask = \"$FEATURE=0\"" >"$(host_dir B)/host.cfg"
on B xl cpuid-policy host -o "$WORK/B.json" || fail "xl cpuid-policy host on B"
has_feature "$WORK/B.json" "$FEATURE" && fail "B's policy has $FEATURE"
on B xl cpuid-policy check "$WORK/A.json" 2>"$WORK/err" && fail "B says it can give all of A's features"
grep -q "($FEATURE)" "$WORK/err" || fail "check does not name $FEATURE: $(cat "$WORK/err")"

# A guest with everything A has cannot move to B.
cfg=$(h_write_cfg A g.cfg g "workload=verify wss=8" "vcpus = 2" "memory = 256")
on A xl create -q "$cfg" || fail "create g on A"
wait_for 20 h_has_status_lines A g 2 || fail "g prints no status lines"
PID=$(h_domain_pid A g)
t0=$(date +%s%N)
on A xl migrate -s "" g "$(host_prefix B)" >"$WORK/out" 2>"$WORK/err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "refused migration: exit $rc after $ms ms:"; sed 's/^/    /' "$WORK/err" >&2
[ $rc = 1 ] || fail "migrating to a host without $FEATURE exited $rc"
grep -q "cannot give .*($FEATURE)" "$WORK/err" || fail "the refusal does not name $FEATURE"
# Refused at the policy records, before the receiver took any memory.
grep -aq "X86_CPUID_POLICY\|CPU features" "$WORK/err" || fail "the refusal does not come from the policy check"
[ "$(h_domain_pid A g)" = "$PID" ] || fail "g on A is not the same process after the refusal"
cur=$(h_last_status A g)
wait_for 10 h_has_lines_after A g "$(field "$cur" seq)" 2 || fail "g stopped on A after the refusal"
[ "$(h_domain_state A g)" = "r-----" ] || [ "$(h_domain_state A g)" = "-b----" ] || fail "g on A is $(h_domain_state A g)"
assert_host_empty B "refused migration"
on A xl destroy g

# The levelled policy of A and B: a guest given it moves both ways.
on A xl cpuid-policy level "$WORK/A.json" "$WORK/B.json" -o "$WORK/pool.json" || fail "xl cpuid-policy level"
has_feature "$WORK/pool.json" "$FEATURE" && fail "the levelled policy has $FEATURE"
on A xl cpuid-policy check "$WORK/pool.json" || fail "A cannot give the levelled policy"
on B xl cpuid-policy check "$WORK/pool.json" || fail "B cannot give the levelled policy"
cfg=$(h_write_cfg A p.cfg p "workload=cpuid" "vcpus = 2" "cpuid_policy = \"$WORK/pool.json\"")
on A xl create -q "$cfg" || fail "create p with cpuid_policy="
wait_for 20 has_cpuid_block A p || fail "p reports no CPUID block"
on A xl cpuid-policy guest p -o "$WORK/p.json" || fail "xl cpuid-policy guest p"
compare_with_policy A p "$WORK/p.json"
on A xl migrate -s "" p "$(host_prefix B)" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "levelled guest A -> B"; }
wait_for 20 h_has_status_lines B p 2 || fail "p runs not on B"
sleep 1.5
compare_with_policy B p "$WORK/p.json"
on B xl cpuid-policy guest p -o "$WORK/p-on-B.json" || fail "xl cpuid-policy guest p on B"
python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(0 if a["features"]==b["features"] else "features differ after the move")' \
    "$WORK/p.json" "$WORK/p-on-B.json" || fail "p's policy changed on the way to B"
seq=$(field "$(h_last_status B p)" seq)
on B xl migrate -s "" p "$(host_prefix A)" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "levelled guest B -> A"; }
wait_for 20 h_has_lines_after A p "$seq" 2 || fail "p runs not on A again"
log "PASS: cpuid= and cpuid_policy= seen by the guest; refused before memory on a host without $FEATURE; levelled guest moved A -> B -> A"
