#!/bin/bash
# Guest networking: a kv guest's virtio-net NIC on a tap in xenbr0, reached
# from a client on the LAN (ping, the kv service, a retried request done
# once); the tap is enslaved while the guest lives and gone after destroy;
# a vif naming a bridge that does not exist is refused with nothing left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
KV=${TOP_SRCDIR:?}/tests/guests/kv-client.py
new_hosts A
new_lan A
ip=$(lan_guest_ip 0)

cfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$ip/24" "vif = [ 'bridge=xenbr0' ]")
on A xl create -q "$cfg" || fail "xl create kv.cfg"
wait_for 20 h_has_status_lines A kv 1 || fail "the kv guest prints no status lines"
grep -aq '^TANDEM-GUEST net up' "$(h_console_log A kv)" || fail "the guest found no NIC: $(grep -a warning "$(h_console_log A kv)")"

# The MAC was generated once, with Xen's prefix, and is in the config.
mac=$(on A xl list -l kv | sed -n 's/.*"mac": *"\([0-9a-f:]*\)".*/\1/p' | head -n 1)
[[ $mac == 00:16:3e:* ]] || fail "the generated MAC '$mac' lacks Xen's 00:16:3e prefix"
domid=$(on A xl domid kv 2>/dev/null || on A xl list kv | awk 'NR == 2 { print $2 }')
tap=vif$domid.0
ip -n "$(host_ns A)" -d link show "$tap" | grep -q "master xenbr0" || fail "$tap is not in xenbr0: $(ip -n "$(host_ns A)" link show "$tap" 2>&1)"
ip -n "$(host_ns A)" link show "$tap" | grep -qi "$mac" && fail "$tap carries the guest's MAC; the tap's own must differ"

client ping -c 3 -i 0.2 -W 2 "$ip" >/dev/null || fail "ping $ip from the LAN"
client ping -c 2 -s 1472 -W 2 "$ip" >/dev/null || fail "a full-size (1500-byte) ping"
v=$(client python3 "$KV" "$ip" incr k1 50) || fail "kv incr: $v"
log "kv: $v"
client python3 "$KV" "$ip" retry-test k2 >/dev/null || fail "a retried INCR was applied twice"
[ "$(client python3 "$KV" "$ip" get k1)" = "k1 50" ] || fail "GET k1 is not 50"
# The status line (once a second) counts them.
incrs_counted() { local v; v=$(field "$(h_last_status A kv)" kv_incrs); [ -n "$v" ] && [ "$v" -ge 51 ]; }
wait_for 5 incrs_counted || fail "the status lines do not count the increments: $(h_last_status A kv)"

# Destroy: the tap goes with the domain.
on A xl destroy kv || fail "xl destroy kv"
wait_for 10 eval "! ip -n $(host_ns A) link show $tap >/dev/null 2>&1" || fail "$tap is left after destroy"
assert_host_empty A "after destroy"

# A missing bridge is a clear error before anything is built.
bad=$(h_write_cfg A bad.cfg bad "workload=kv ip=$ip/24" "vif = [ 'bridge=nosuchbr' ]")
out=$(on A xl create -q "$bad" 2>&1) && fail "a vif on a missing bridge was accepted"
grep -q "nosuchbr" <<<"$out" || fail "the error does not name the bridge: $out"
assert_host_empty A "after the refused vif"
[ -z "$(ip -n "$(host_ns A)" link show type tun 2>/dev/null)" ] || fail "a tap is left after the refused create"
log "PASS: ping and kv over the guest's NIC ($mac on $tap), tap removed on destroy, missing bridge refused"
