#!/bin/bash
# xl remus between two hosts (network namespaces) on a guest LAN, the
# replication stream over a TCP link between the hosts (remus-link.py, a
# stand-in for ssh) so that the link can be cut.
#
# 1. Failover.  A kv guest (vif, -i 50), a disklog guest (disk; the backup
#    has its own image, named with -C; -i 100) and a verify guest (-i 200)
#    are protected from A to B, each with a witness on A's LAN address.
#    While a client keeps incrementing kv's counters, every domain process
#    on A is SIGKILLed at a random moment (A "dies"): B takes each guest
#    over within the timeout under its own name; every answered increment
#    is there and the client carries on; the disklog guest's log is intact
#    on B's image; the verify guest finds no error.
# 2. The backup dies.  kv, now on B, is protected back to A; A's replica
#    is SIGKILLed: kv runs on, B says it is unprotected (xl list, xl remus's
#    output and exit status), the client still gets answers.
# 3. The link is cut.  kv is protected to A again; the link between A and B
#    goes down while the witness (B's LAN address, IPv6 where the kernel
#    has it) stays reachable: A does NOT take over (its replica goes away),
#    and does not run its fence command either; kv runs on on B,
#    unprotected.
# 4. Both paths are down, fencing fails.  kv is protected to A with the
#    witness on B's end of the replication link (so the cut silences it
#    too) and a --fence script that exits 1: A does NOT take over, and says
#    why with the script's status and last stderr line.
# 5. Both paths are down, fencing succeeds.  As 4 with a --fence script
#    that kills B's domain process ("powers B off") and exits 0: A takes
#    kv over, and the client gets answers from A.
# The verify guest of 1 has 2 vCPUs (dirty pages from both, one replica).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
command -v python3 >/dev/null || { log "ERROR: python3 is needed"; exit 99; }
KV=${TOP_SRCDIR:?}/tests/guests/kv-client.py
CHECK=$TOP_SRCDIR/tests/guests/disklog-check.py
LINK=$TOP_SRCDIR/tests/integration/remus-link.py
new_hosts A B
new_lan A B
WORK=$(host_dir A)
ip=$(lan_guest_ip 0)
load_pid=
bg_pids=()
trap_prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT\$/\1/")
# (the exit status must survive the kills for the hosts' cleanup to see it)
trap 'rc=$?; for p in $load_pid "${bg_pids[@]}"; do kill $p 2>/dev/null; done; (exit $rc); '"$trap_prev" EXIT

# The hosts' own addresses on the LAN, for the witness.
WITNESS_A=$LAN_NET.201 WITNESS_B=$LAN_NET.202
on A ip addr add "$WITNESS_A/24" dev xenbr0 || { log "ERROR: address on A's xenbr0"; exit 99; }
on B ip addr add "$WITNESS_B/24" dev xenbr0 || { log "ERROR: address on B's xenbr0"; exit 99; }
# The "sshd" of each host: runs `xl migrate-receive -r` for the other.
XLDIR=$(dirname "$XL")
LINK_PORT=7100
for h in A B; do
    on "$h" env PATH="$XLDIR:$PATH" python3 "$LINK" serve $LINK_PORT "$(host_dir "$h")/remus-link.log" &
    bg_pids+=($!)
done
link_addr() { host_addr "$1" "$2"; }   # H's address on its link to the other
sleep 0.5

img_a=$(host_dir A)/d.img img_b=$(host_dir B)/d.img
truncate -s 16M "$img_a"
truncate -s 16M "$img_b"     # the backup's image: sparse, as the devices expect
kvcfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$ip/24" "vif = [ 'bridge=xenbr0' ]")
dcfg=$(h_write_cfg A d.cfg d "workload=disklog rate=100" "disk = [ 'format=raw,vdev=xvda,access=rw,target=$img_a' ]")
dcfg_b=$(h_write_cfg A d-b.cfg d "workload=disklog rate=100" "disk = [ 'format=raw,vdev=xvda,access=rw,target=$img_b' ]")
vcfg=$(h_write_cfg A v.cfg v "workload=verify wss=16" "vcpus = 2")
for c in "$kvcfg" "$dcfg" "$vcfg"; do on A xl create -q "$c" || fail "xl create $c"; done
for g in kv d v; do wait_for 20 h_has_status_lines A $g 2 || fail "$g prints no status lines"; done
client ping -c 1 -W 5 "$ip" >/dev/null || fail "the kv guest does not answer ping"

# protection H NAME: the domain's protection state on H ("" for none).
protection() {
    on "$1" xl list -l "$2" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print(d[0].get("protection", {}).get("state", "") if d else "")
except Exception:
    print("")'
}
is_protection() { [ "$(protection "$1" "$2")" = "$3" ]; }

# remus FROM TO NAME WITNESS-ADDR PORT INTERVAL [xl remus options]: start
# xl remus in the background; its output in $WORK/remus-NAME-N.out.
# WITNESS-ADDR is "[ADDR]" for IPv6.
REMUS_N=0
remus() {
    local from=$1 to=$2 name=$3 waddr=$4 wport=$5 iv=$6; shift 6
    REMUS_N=$((REMUS_N + 1))
    REMUS_OUT=$WORK/remus-$name-$REMUS_N.out
    on "$from" xl remus -i "$iv" --witness "$waddr:$wport" -s "python3 $LINK connect" "$@" "$name" \
        "$(link_addr "$to" "$from"):$LINK_PORT" >"$REMUS_OUT" 2>&1 &
    REMUS_PID=$!
    bg_pids+=($REMUS_PID)
}
wait_protected() {
    wait_for 60 is_protection "$1" "$2" protected ||
        fail "$2 on $1 is not protected ($(protection "$1" "$2")): $(cat "$3")"
}

# ---- 1. Failover -----------------------------------------------------------
# One at a time: three initial copies at once on a small machine would
# only test the timeouts.
remus A B kv "$WITNESS_A" 7201 50;  out_kv=$REMUS_OUT pid_kv=$REMUS_PID
wait_protected A kv "$out_kv"
remus A B d "$WITNESS_A" 7202 100 -C "$dcfg_b"; out_d=$REMUS_OUT
wait_protected A d "$out_d"
remus A B v "$WITNESS_A" 7203 200;  out_v=$REMUS_OUT
wait_protected A v "$out_v"
for g in kv d v; do
    wait_for 10 is_protection B "$g--incoming" backup || fail "B has no backup of $g: $(on B xl list 2>&1)"
done
on A xl list | grep -q ' protected$' || fail "xl list on A does not mark the protected domains: $(on A xl list)"
log "protected: $(on A xl list | tail -n +3 | awk '{ print $1 "=" $NF }' | tr '\n' ' ')"

client python3 "$KV" "$ip" load 300 8 "$WORK/load.json" "$WORK/stop" >"$WORK/load.out" 2>&1 &
load_pid=$!
sleep $((3 + RANDOM % 3)).$((RANDOM % 10))
# Host A dies: every domain process there at once.
pids=$(for g in kv d v; do h_domain_pid A $g; done)
[ "$(echo $pids | wc -w)" = 3 ] || fail "cannot find A's domain processes: $pids"
acked=$(on A xl list -l kv | sed -n 's/.*"epochs": *\([0-9]*\).*/\1/p' | head -n 1)
t0=$(date +%s%N)
kill -KILL $pids
for g in kv d v; do
    wait_for 20 h_domain_exists B "$g" || fail "B did not take $g over: $(on B xl list 2>&1)"
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
for g in kv d v; do
    [ "$(h_domain_state B "$g" | cut -c3)" != p ] || fail "$g is still paused on B after the failover"
    is_protection B "$g" unprotected || fail "$g on B: protection '$(protection B "$g")', not unprotected"
    grep -aq "failover: primary lost after" "$(host_dir B)/log/xl-$g--incoming.log" ||
        fail "no failover line in B's log of $g: $(tail -n 5 "$(host_dir B)/log/xl-$g--incoming.log")"
done
h_domains B | grep -q -- '--incoming' && fail "B still lists an --incoming domain: $(h_domains B | tr '\n' ' ')"
log "failover of 3 guests within $ms ms (kv had ~$acked epochs acked): $(grep -ah 'failover:' "$(host_dir B)/log/xl-kv--incoming.log" | tail -n 1 | sed 's/.*failover: //')"
wait_for 20 h_has_status_lines B kv 2 || fail "kv prints nothing on B after the failover"
sleep 3
touch "$WORK/stop"
wait $load_pid
rc=$?
load_pid=
cat "$WORK/load.out" >&2
[ $rc = 0 ] || fail "the client saw errors across the failover: $(cat "$WORK/load.out")"
answered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered"])' "$WORK/load.json")
[ "$answered" -ge 50 ] || fail "only $answered increments were answered"
out=$(client python3 "$KV" "$ip" check "$WORK/load.json") || fail "counters after the failover: $out"
log "kv: $answered increments answered, all there after the failover: $out"

# The xl remus runs on A ended, saying so.
wait $pid_kv; rc=$?
[ $rc = 1 ] || fail "xl remus kv exited $rc after its primary died, not 1: $(cat "$out_kv")"
grep -q 'gone' "$out_kv" || fail "xl remus kv did not say the primary is gone: $(cat "$out_kv")"

wait_for 20 h_has_status_lines B v 3 || fail "v prints nothing on B"
sleep 2
st=$(h_last_status B v)
[ "$(field "$st" verify_errors)" = 0 ] || fail "the verify guest found errors after the failover: $st"
grep -aq 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log B v)" &&
    fail "v reports a problem on B: $(grep -a 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log B v)" | head -n 3)"
wait_for 20 h_has_status_lines B d 3 || fail "d prints nothing on B"
st=$(h_last_status B d)
[ "$(field "$st" disklog_errors)" = 0 ] || fail "the disklog guest found errors after the failover: $st"
[ "$(field "$st" disklog_state)" = running ] || fail "disklog is not running on B: $st"
flushed=$(field "$st" disklog_flushed)
on B xl destroy d
out=$(python3 "$CHECK" "$img_b" --min-last "$flushed" --runs) || fail "the backup's disk does not check out: $out"
[ "$(grep -c '^run=' <<<"$out")" = 1 ] || fail "the backup's log should be one run: $out"
log "disk on the backup's image after the failover: $(head -n 1 <<<"$out")"
on B xl destroy v

# ---- 2. The backup dies ---------------------------------------------------
remus B A kv "$WITNESS_B" 7211 100; out_kv=$REMUS_OUT pid_kv=$REMUS_PID
wait_protected B kv "$out_kv"
wait_for 10 is_protection A kv--incoming backup || fail "A has no backup of kv: $(on A xl list 2>&1)"
sleep 1
kill -KILL "$(h_domain_pid A kv--incoming)"
wait_for 20 is_protection B kv unprotected || fail "B does not say kv is unprotected: $(on B xl list -l kv)"
wait $pid_kv; rc=$?
[ $rc = 1 ] || fail "xl remus exited $rc when its backup died, not 1: $(cat "$out_kv")"
grep -q 'LOST THE BACKUP' "$out_kv" || fail "xl remus did not say the backup is lost: $(cat "$out_kv")"
grep -q 'UNPROTECTED' "$out_kv" || fail "xl remus did not say kv is unprotected: $(cat "$out_kv")"
on B xl list | grep -q 'UNPROTECTED$' || fail "xl list on B does not mark kv unprotected: $(on B xl list)"
out=$(client python3 "$KV" "$ip" incr k0 20) || fail "kv does not answer after losing its backup: $out"
h_domain_gone A kv--incoming || fail "A still lists the killed replica"
log "backup killed: $(grep -a 'LOST THE BACKUP' "$out_kv" | head -n 1)"

# ---- 3. The replication link is cut, the witness is reachable -------------
# The fence scripts (run on A, the backup, by its domain process): the
# first records that it ran and fails as a PDU that does not answer would;
# the second "powers the primary off" (kills the domain process whose pid
# is in $WORK/primary.pid) and succeeds.
printf '%s\n' '#!/bin/sh' \
    "echo \"\$1 domain=\$TANDEM_DOMAIN primary=\$TANDEM_PRIMARY\" >'$WORK/fence-fail.ran'" \
    'echo "fence: the PDU at $TANDEM_PRIMARY does not answer" >&2' 'exit 1' >"$WORK/fence-fail.sh"
printf '%s\n' '#!/bin/sh' \
    "echo \"domain=\$TANDEM_DOMAIN primary=\$TANDEM_PRIMARY\" >'$WORK/fence-ok.ran'" \
    "kill -KILL \"\$(cat '$WORK/primary.pid')\" || exit 3" 'echo "fence: $TANDEM_PRIMARY is off"' >"$WORK/fence-ok.sh"
chmod +x "$WORK/fence-fail.sh" "$WORK/fence-ok.sh"
# An IPv6 witness where the namespaces have IPv6 (nodad: usable at once).
w3=$WITNESS_B
if on B ip -6 addr add fd99::202/64 dev xenbr0 nodad 2>/dev/null &&
    on A ip -6 addr add fd99::201/64 dev xenbr0 nodad 2>/dev/null && on A ping -6 -c 1 -W 2 fd99::202 >/dev/null 2>&1; then
    w3="[fd99::202]"
else
    log "no IPv6 in the test namespaces: part 3's witness is IPv4"
fi
remus B A kv "$w3" 7212 100 --fence "$WORK/fence-fail.sh part3"; out_kv=$REMUS_OUT pid_kv=$REMUS_PID
wait_protected B kv "$out_kv"
wait_for 10 is_protection A kv--incoming backup || fail "A has no backup of kv: $(on A xl list 2>&1)"
sleep 1
on B ip link set to-A down
wait_for 20 is_protection B kv unprotected || fail "B does not say kv is unprotected after the cut: $(on B xl list -l kv)"
# The backup notices too, asks the witness, and stands down.
wait_for 20 h_domain_gone A kv--incoming || fail "A's replica is still there after the cut: $(on A xl list)"
h_domain_exists A kv && fail "A took kv over although its primary runs (split brain)"
grep -aq "NOT taking over" "$(host_dir A)/log/xl-kv--incoming.log" ||
    fail "A's log does not say why it did not take over: $(tail -n 5 "$(host_dir A)/log/xl-kv--incoming.log")"
grep -aqF "witness $w3:7212 says the primary is ALIVE" "$(host_dir A)/log/xl-kv--incoming.log" ||
    fail "A's log does not have the witness $w3 answering: $(grep -a witness "$(host_dir A)/log/xl-kv--incoming.log")"
[ ! -e "$WORK/fence-fail.ran" ] || fail "A ran its fence command although the witness answered: $(cat "$WORK/fence-fail.ran")"
h_domain_exists B kv || fail "kv is gone from B after the cut"
[ "$(h_domain_state B kv | cut -c3)" != p ] || fail "kv is paused on B after the cut"
wait $pid_kv; rc=$?
[ $rc = 1 ] || fail "xl remus exited $rc after the cut, not 1: $(cat "$out_kv")"
on B ip link set to-A up
out=$(client python3 "$KV" "$ip" incr k1 20) || fail "kv does not answer after the cut: $out"
log "link cut: $(grep -a 'NOT taking over' "$(host_dir A)/log/xl-kv--incoming.log" | tail -n 1 | sed 's/.*remus: //')"

# ---- 4. Link and witness cut, the fence command fails ---------------------
# The witness on B's end of the replication link: the cut silences it too
# (both paths down, B alive).  A fence command with words in quotes, as an
# operator would write it, through the ssh-like transport's second shell.
wlink=$(link_addr B A)
alog=$(host_dir A)/log/xl-kv--incoming.log
remus B A kv "$wlink" 7213 100 --fence "'$WORK/fence-fail.sh' 'part 4'" --fence-timeout 10
out_kv=$REMUS_OUT pid_kv=$REMUS_PID
wait_protected B kv "$out_kv"
wait_for 10 is_protection A kv--incoming backup || fail "A has no backup of kv: $(on A xl list 2>&1)"
grep -q "fence command" "$out_kv" || fail "xl remus does not mention the fence command: $(cat "$out_kv")"
on B ip link set to-A down
wait_for 20 h_domain_gone A kv--incoming || fail "A's replica is still there after the cut: $(on A xl list)"
h_domain_exists A kv && fail "A took kv over although fencing failed (split brain)"
grep -aqF "exited with status 1 (last stderr: fence: the PDU at $wlink does not answer)" "$alog" ||
    fail "A's log does not say that fencing failed and why: $(grep -a 'remus' "$alog" | tail -n 5)"
grep -aq "FENCING FAILED" "$alog" || fail "A's log does not say FENCING FAILED: $(tail -n 5 "$alog")"
[ "$(cat "$WORK/fence-fail.ran" 2>/dev/null)" = "part 4 domain=kv primary=$wlink" ] ||
    fail "the fence command did not run as expected: $(cat "$WORK/fence-fail.ran" 2>&1)"
h_domain_exists B kv || fail "kv is gone from B after the cut"
wait $pid_kv; rc=$?
[ $rc = 1 ] || fail "xl remus exited $rc after the cut, not 1: $(cat "$out_kv")"
on B ip link set to-A up
log "fencing failed: $(grep -a 'FENCING FAILED' "$alog" | tail -n 1 | sed 's/.*remus: //')"

# ---- 5. Link and witness cut, the fence command powers B off ---------------
remus B A kv "$wlink" 7214 100 --fence "$WORK/fence-ok.sh"; out_kv=$REMUS_OUT pid_kv=$REMUS_PID
wait_protected B kv "$out_kv"
wait_for 10 is_protection A kv--incoming backup || fail "A has no backup of kv: $(on A xl list 2>&1)"
h_domain_pid B kv >"$WORK/primary.pid"
out=$(client python3 "$KV" "$ip" incr k2 10) || fail "kv does not answer before the fenced failover: $out"
on B ip link set to-A down
wait_for 30 h_domain_exists A kv || fail "A did not take kv over after fencing B: $(on A xl list 2>&1; tail -n 5 "$alog")"
# (the killed process may take a moment to be gone from B's list)
wait_for 10 h_domain_gone B kv || fail "kv still runs on B after the fence command succeeded"
[ "$(cat "$WORK/fence-ok.ran" 2>/dev/null)" = "domain=kv primary=$wlink" ] ||
    fail "the fence command did not run as expected: $(cat "$WORK/fence-ok.ran" 2>&1)"
grep -aq "fence command succeeded" "$alog" || fail "A's log does not say fencing succeeded: $(tail -n 5 "$alog")"
grep -aq "failover: primary lost after .*fenced by the fence command" "$alog" ||
    fail "A's failover line does not say it fenced: $(grep -a failover "$alog")"
out=$(client python3 "$KV" "$ip" incr k2 10) || fail "kv does not answer on A after the fenced failover: $out"
wait $pid_kv; rc=$?
[ $rc = 1 ] || fail "xl remus exited $rc after its primary was fenced, not 1: $(cat "$out_kv")"
on B ip link set to-A up
log "fenced failover: $(grep -a 'failover:' "$alog" | tail -n 1 | sed 's/.*failover: //')"
log "PASS: failover of kv, disklog and a 2-vCPU verify guest with no answered increment lost; backup death and a cut link leave the primary running unprotected, no split brain; with both paths cut a failing fence command stops the takeover and a succeeding one allows it"
