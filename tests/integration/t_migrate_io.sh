#!/bin/bash
# Live migration and save/restore of guests with devices, under load.
# A client on the LAN keeps incrementing counters in a kv guest (UDP,
# retrying with the same request id) while the guest moves A -> B -> A and
# is then saved and restored: every answer must be exactly one more than
# the last, the counters must hold every answered increment afterwards,
# and the client must see a pause, not an error.  A disklog guest on a
# shared image moves A -> B -> A while writing: its log checks out on the
# host and the guest found no error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
KV=${TOP_SRCDIR:?}/tests/guests/kv-client.py
CHECK=$TOP_SRCDIR/tests/guests/disklog-check.py
new_hosts A B
new_lan A B
ip=$(lan_guest_ip 0)
shared=$(mktemp -d /tmp/tandem-it-shared.XXXXXX)   # both hosts see it: shared storage
load_pid=
trap_prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT\$/\1/")
trap '[ -n "$load_pid" ] && kill $load_pid 2>/dev/null; rm -rf "$shared"; '"$trap_prev" EXIT
img=$shared/disk.img
truncate -s 16M "$img"

kvcfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$ip/24" "vif = [ 'bridge=xenbr0' ]")
dcfg=$(h_write_cfg A d.cfg d "workload=disklog rate=200" "disk = [ 'format=raw,vdev=xvda,access=rw,target=$img' ]")
on A xl create -q "$kvcfg" || fail "xl create kv"
on A xl create -q "$dcfg" || fail "xl create d"
wait_for 20 h_has_status_lines A kv 1 || fail "kv prints no status lines"
wait_for 20 h_has_status_lines A d 2 || fail "d prints no status lines"
client ping -c 1 -W 5 "$ip" >/dev/null || fail "the kv guest does not answer ping"

# migrate FROM TO NAME: live-migrate, print the summary line.
migrate() {
    local out
    out=$(on "$1" xl migrate -s "" "$3" "$(host_prefix "$2")" 2>&1) || fail "migrate $3 $1 -> $2: $out"
    h_domain_exists "$2" "$3" || fail "$3 is not on $2 after the migration"
    h_domain_gone "$1" "$3" || fail "$3 is still on $1 after the migration"
    log "$3 $1 -> $2: $(grep -a 'downtime' <<<"$out" | tail -n 1)"
}

client python3 "$KV" "$ip" load 120 8 "$shared/load.json" "$shared/stop" >"$shared/load.out" 2>&1 &
load_pid=$!
sleep 2
migrate A B kv
sleep 2
migrate B A kv
sleep 1
migrate A B d
sleep 1
migrate B A d
sleep 1
# Save and restore mid-traffic: the guest stops and comes back.
on A xl save kv "$shared/kv.img" >/dev/null || fail "xl save kv"
sleep 0.5
on A xl restore "$shared/kv.img" >/dev/null || fail "xl restore kv"
sleep 2
touch "$shared/stop"
wait $load_pid
rc=$?
load_pid=
cat "$shared/load.out" >&2
[ $rc = 0 ] || fail "the client saw errors: $(cat "$shared/load.out")"
answered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered"])' "$shared/load.json")
[ "$answered" -ge 100 ] || fail "only $answered increments were answered"
out=$(client python3 "$KV" "$ip" check "$shared/load.json") || fail "counters after the moves: $out"
log "$out"

st=$(h_last_status A d)
[ "$(field "$st" disklog_errors)" = 0 ] || fail "the disklog guest found errors: $st"
[ "$(field "$st" disklog_state)" = running ] || fail "disklog is not running: $st"
flushed=$(field "$st" disklog_flushed)
on A xl destroy d
out=$(python3 "$CHECK" "$img" --min-last "$flushed" --runs) || fail "the migrated guest's log does not check out: $out"
[ "$(grep -c '^run=' <<<"$out")" = 1 ] || fail "the log should be one run across the migrations: $out"
log "disk after two migrations: $(head -n 1 <<<"$out")"
log "PASS: $answered increments answered across two migrations and a save/restore, none lost or doubled; disklog intact"
