#!/bin/bash
# Hostile guests: a driver that hands its virtio device malformed rings
# (descriptor loops, buffers outside guest RAM, chains longer than the
# queue, indices beyond the table, avail.idx jumps, short headers).  Each
# time the device must stop with DEVICE_NEEDS_RESET and a logged reason;
# the domain process, the guest's other devices and other guests carry on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
KV=${TOP_SRCDIR:?}/tests/guests/kv-client.py
new_hosts A
new_lan A
kvip=$(lan_guest_ip 0) hip=$(lan_guest_ip 1)
img=$(host_dir A)/disk.img
truncate -s 4M "$img"

# A bystander: another guest whose service must not notice.
kvcfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$kvip/24" "vif = [ 'bridge=xenbr0' ]")
on A xl create -q "$kvcfg" || fail "xl create kv"
wait_for 20 h_has_status_lines A kv 1 || fail "kv prints no status lines"

result_line() { grep -a '^TANDEM-GUEST virtio_hostile result=' "$(h_console_log A "$1")" | tail -n 1; }
run_mode() {   # run_mode TARGET MODE
    local target=$1 mode=$2 name=h$1$2 cfg dev pid res
    if [ "$target" = blk ]; then
        # The disk is the target; the vif answers ping meanwhile.
        dev="disk = [ '$img,raw,xvda,rw' ]"
    else
        dev=""
    fi
    cfg=$(h_write_cfg A "$name.cfg" "$name" "workload=virtio_hostile mode=$mode after=300 ip=$hip/24" \
          "vif = [ 'bridge=xenbr0' ]" "$dev")
    on A xl create -q "$cfg" || fail "xl create $name"
    wait_for 20 eval '[ -n "$(result_line '"$name"')" ]' || fail "$name: no result line: $(tail -n 3 "$(h_console_log A "$name")")"
    res=$(result_line "$name")
    [ "$(field "$res" result)" = needs_reset ] || fail "$name: the device did not stop with NEEDS_RESET: $res"
    pid=$(h_domain_pid A "$name")
    process_alive "$pid" || fail "$name: the domain process died"
    grep -aqiE "virtio|queue|descriptor" "$(host_dir A)/log/xl-$name.log" || fail "$name: the domain log gives no reason"
    # The guest still runs and prints status lines after the device stopped.
    local n; n=$(h_nstatus A "$name")
    wait_for 10 h_has_status_lines A "$name" $((n + 1)) || fail "$name: the guest stopped after its device did"
    if [ "$target" = blk ]; then
        client ping -c 1 -W 3 "$hip" >/dev/null || fail "$name: its NIC stopped answering when its disk failed"
    fi
    client python3 "$KV" "$kvip" incr bystander 1 >/dev/null || fail "$name: the bystander kv guest stopped answering"
    log "$name: $(grep -a "$(printf '\\[error\\]')" "$(host_dir A)/log/xl-$name.log" | head -n 1 | cut -c 25-)"
    on A xl destroy "$name" || fail "xl destroy $name"
}

for mode in 1 2 3 4 5 6 7; do
    run_mode blk $mode
    run_mode net $mode
done
log "PASS: 14 malformed rings (7 kinds, blk and net) stopped their device only"
