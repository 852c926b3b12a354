#!/bin/bash
# ./quickstart demo: live migration between two "hosts" on this machine.
#   tests/demo.sh <prefix>      (xl in <prefix>/sbin, installed by quickstart)
# Host A and host B are two network namespaces, each with its own Tandem
# state dir, linked by a veth pair.  A guest that keeps rewriting memory,
# and a second one that verifies every page it rewrites, go A -> B -> A
# with `xl migrate`; the demo then says what each hop cost, as the hosts
# measured it and as the guest felt it.  Everything is cleaned up at the
# end, on failure and on Ctrl-C too.
top=$(cd "$(dirname "$0")" && pwd)
prefix=${1:?usage: tests/demo.sh <prefix>}
prefix=$(cd "$prefix" && pwd) || exit 1
XL=$prefix/sbin/xl
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
[ -x "$XL" ] || die "$XL is missing: run ./quickstart build first"
[ -c /dev/kvm ] && : 2>/dev/null </dev/kvm || die "/dev/kvm is missing or not accessible: Tandem needs KVM"
[ "$(id -u)" = 0 ] || die "run as root (KVM and network namespaces)"
command -v ip >/dev/null || die "iproute2 (ip) is missing"
command -v python3 >/dev/null || die "python3 is missing (it reads xl migrate --json)"
kernel=$prefix/share/tandem/guests/tandem-guest
[ -r "$kernel" ] && export TANDEM_GUEST_KERNEL=$kernel

. "$top/integration/lib.sh"
. "$top/integration/hosts.sh"
TEST_NAME=demo

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n'; bold "[$1] \$ ${*:2}"; }   # step HOST command...

new_hosts A B
printf 'Two hosts on this machine:\n'
for h in A B; do
    printf '  host %s: network namespace %s, state dir %s, address %s\n' \
        "$h" "$(host_ns "$h")" "$(host_dir "$h")" "$(host_addr "$h" "$([ $h = A ] && echo B || echo A)")"
done

cfg=$(h_write_cfg A demo.cfg demo "workload=dirty wss=64 rate=20000" "vcpus = 2")
sed -i 's/^memory = .*/memory = 256/' "$cfg"
vcfg=$(h_write_cfg A check.cfg check "workload=verify wss=32" "vcpus = 2")
step A cat demo.cfg; cat "$cfg"
echo "(the guest rewrites 20000 pages a second across a 64 MiB working set)"
step A xl create demo.cfg; on A xl create -q "$cfg" || fail "xl create demo.cfg"
step A xl create check.cfg "   # a second guest that checks every page it rewrites"
on A xl create -q "$vcfg" || fail "xl create check.cfg"
wait_for 20 h_has_status_lines A demo 2 || fail "demo prints no status lines"
wait_for 20 h_has_status_lines A check 2 || fail "check prints no status lines"
step A xl list; on A xl list
step B xl list; on B xl list
step A "tail -n 1 console/demo.log"; h_last_status A demo

# report NAME FROM TO BEFORE AFTER JSON: what a hop did, in words.
report() {
    python3 - "$@" <<'PY'
import json, sys
name, src, dst, before, after = sys.argv[1:6]
j = json.loads(sys.argv[6])
def kv(line):
    return dict(w.split("=", 1) for w in line.split() if "=" in w)
b = kv(before)
lines = [kv(l) for l in after.splitlines()]
felt = max(int(l["last_gap_us"]) for l in lines) / 1000.0
its = j["iterations"]
print()
print("Hop %s -> %s of guest '%s': %s" % (src, dst, name, j["result"]))
row = lambda what, val, unit, why: print("  %-20s %9s %-3s %s" % (what, val, unit, why))
row("total time", "%.0f" % j["total_ms"], "ms", "xl migrate, from the first page to the guest running on " + dst)
row("downtime (hosts)", "%.1f" % j["downtime_ms"], "ms", "source paused -> destination running, as the hosts measured it")
row("downtime (guest)", "%.1f" % felt, "ms", "as the guest felt it: the largest last_gap_us of its first two")
row("", "", "", "status lines on %s (the longest stretch its own clock saw it not run)" % dst)
row("guest's max_gap", "%.1f" % (int(b["max_gap_us"]) / 1000.0), "ms",
    "-> %.1f ms: its worst gap ever, before -> after the hop" % (int(lines[-1]["max_gap_us"]) / 1000.0))
row("precopy rounds", "%d" % len(its), "", "then stop-and-copy; dirty pages tracked with the KVM dirty %s"
    % {"ring": "ring", "bitmap": "log bitmap"}.get(j.get("logdirty"), j.get("logdirty", "?")))
row("pages per round", "", "", " ".join(str(i["pages"]) for i in its)
    + "  (pages with data; round 0 also had %d zero pages)" % its[0]["zero_pages"])
if "stop_copy_ms" in j:
    row("stop-and-copy", "%.1f" % j["stop_copy_ms"], "ms", "the last dirty pages and the vCPU/device state, guest paused")
row("data sent", "%.1f" % (j["bytes"] / 1e6), "MB", "")
row("vCPU throttle", "%d" % j.get("throttle_pct", 0), "%", "the most the sender slowed a vCPU to converge")
row("guest continues", "", "", "seq %s -> %s, uptime_ms %s -> %s, verify_errors=%s"
    % (b["seq"], lines[-1]["seq"], b["uptime_ms"], lines[-1]["uptime_ms"], lines[-1]["verify_errors"]))
PY
}
# The second guest, briefly.
hop_quiet() {
    local name=$1 from=$2 to=$3 before final after seq json
    before=$(h_last_status "$from" "$name")
    step "$from" xl migrate -s \"\" --json "$name" \"$(host_prefix "$to")\"
    json=$(on "$from" xl migrate -s "" --json "$name" "$(host_prefix "$to")" 2>"$(host_dir "$from")/migrate.err") ||
        fail "xl migrate $name from $from to $to failed: $(tail -n 5 "$(host_dir "$from")/migrate.err")"
    final=$(h_last_status "$from" "$name")
    [ -n "$final" ] && [ "$(field "$final" seq)" -ge "$(field "$before" seq)" ] && before=$final
    seq=$(field "$before" seq)
    wait_for 20 h_has_lines_after "$to" "$name" "$seq" 2 || fail "$name does not run on $to"
    after=$(h_last_status "$to" "$name")
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
print("  %s: %s in %d ms, downtime %d ms, %.1f MB; the guest rewrote and checked %d more pages: verify_errors=%s"
      % (sys.argv[2], j["result"], j["total_ms"], j["downtime_ms"], j["bytes"] / 1e6,
         int(sys.argv[4]) - int(sys.argv[3]), sys.argv[5]))' \
        "$json" "$name" "$(field "$before" gen)" "$(field "$after" gen)" "$(field "$after" verify_errors)"
    [ "$(field "$after" verify_errors)" = 0 ] || fail "$name found corrupted pages after the hop"
}
# hop NAME FROM TO: migrate with --json and explain what happened.
hop() {
    local name=$1 from=$2 to=$3 before final after seq json
    before=$(h_last_status "$from" "$name")
    step "$from" xl migrate -s \"\" --json "$name" \"$(host_prefix "$to")\"
    json=$(on "$from" xl migrate -s "" --json "$name" "$(host_prefix "$to")" 2>"$(host_dir "$from")/migrate.err") ||
        fail "xl migrate $name from $from to $to failed: $(tail -n 5 "$(host_dir "$from")/migrate.err")"
    printf '%s\n' "$json"
    final=$(h_last_status "$from" "$name")
    [ -n "$final" ] && [ "$(field "$final" seq)" -ge "$(field "$before" seq)" ] && before=$final
    seq=$(field "$before" seq)
    wait_for 20 h_has_lines_after "$to" "$name" "$seq" 2 || fail "$name does not run on $to"
    after=$(h_lines_after "$to" "$name" "$seq" | head -n 2)
    report "$name" "$from" "$to" "$before" "$after" "$json" || fail "cannot read xl migrate's JSON: $json"
}

bold $'\n=== A -> B ==='
hop demo A B
hop_quiet check A B
step A xl list; on A xl list
step B xl list; on B xl list

bold $'\n=== B -> A ==='
hop demo B A
hop_quiet check B A
step A xl list; on A xl list
step B xl list; on B xl list

step A "tail -n 2 console/demo.log"; h_status_lines A demo | tail -n 2
step A "xl destroy demo; xl destroy check"; on A xl destroy demo; on A xl destroy check

# A guest the outside world talks to: a UDP counter service on a virtio NIC
# in each host's bridge xenbr0, all on one LAN with a client.
bold $'\n=== A network service, moved while a client uses it ==='
new_lan A B
kvip=$(lan_guest_ip 0)
kv=$top/guests/kv-client.py
[ -r "$kv" ] || kv=$prefix/share/tandem/guests/kv-client.py
kvcfg=$(h_write_cfg A kv.cfg counters "workload=kv ip=$kvip/24" "vif = [ 'bridge=xenbr0' ]")
step A cat kv.cfg; cat "$kvcfg"
step A xl create kv.cfg; on A xl create -q "$kvcfg" || fail "xl create kv.cfg"
wait_for 20 h_has_status_lines A counters 1 || fail "the counter guest prints no status lines"
printf 'A client at %s sends "INCR k<n> id=<n>" to %s:7000 without a break, retrying unanswered ones.\n' "$LAN_CLIENT_IP" "$kvip"
load_out=$(host_dir A)/load.json stop=$(host_dir A)/load.stop
client python3 "$kv" "$kvip" load 60 4 "$load_out" "$stop" >"$(host_dir A)/load.txt" 2>&1 &
load=$!
sleep 2
for hop in "A B" "B A"; do
    set -- $hop
    step "$1" xl migrate -s \"\" counters \"$(host_prefix "$2")\"
    on "$1" xl migrate -s "" counters "$(host_prefix "$2")" 2>&1 | grep -a 'migration summary' | tr ' ' '\n' |
        grep -E '^(total_ms|downtime_ms)=' | tr '\n' ' '
    echo
    sleep 2
done
touch "$stop"; wait $load
python3 - "$load_out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print()
print("The client's view of two live migrations:")
print("  %d increments answered, each exactly one more than the last (%d errors)" % (s["answered"], len(s["errors"])))
print("  longest wait for one answer %.1f ms; %d resent requests, none applied twice" % (s["max_wait_ms"], s["retries"]))
print("  the counters now: " + ", ".join("%s=%d" % kv for kv in sorted(s["last"].items())))
PY
client python3 "$kv" "$kvip" check "$load_out" | sed 's/^/  /' || fail "the counters lost an answered increment"
on A xl destroy counters
printf '\nDone: the guests went A -> B -> A live; the hosts and their state dirs are removed on exit.\n'
exit 0
