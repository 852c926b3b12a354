#!/bin/bash
# Guest disks: a disklog guest appends checksummed records to a raw image
# through virtio-blk.  The image checks out on the host (every record
# there, in order, none torn); a new guest on the same image finds the log
# and goes on from its end; save/restore keeps the device and the log; a
# read-only disk is scanned, not written; a missing image is refused with
# nothing left.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
CHECK=${TOP_SRCDIR:?}/tests/guests/disklog-check.py
img=$TANDEM_STATE_DIR/disk.img
truncate -s 16M "$img"

status_value() { field "$(last_status "$1")" "$2"; }
disklog_at_least() { local v; v=$(status_value "$1" disklog_last); [ -n "$v" ] && [ "$v" -ge "$2" ]; }

write_cfg "$TANDEM_STATE_DIR/d.cfg" d "workload=disklog rate=200" \
    "disk = [ 'format=raw,vdev=xvda,access=rw,target=$img' ]"
"$XL" create -q "$TANDEM_STATE_DIR/d.cfg" || fail "xl create d.cfg"
wait_for 20 has_status_lines d 1 || fail "the disklog guest prints no status lines"
grep -aq '^TANDEM-GUEST disk up' "$(console_log d)" || fail "the guest found no disk: $(grep -a warning "$(console_log d)")"
wait_for 20 disklog_at_least d 300 || fail "the log does not grow: $(last_status d)"
st=$(last_status d)
[ "$(field "$st" disklog_errors)" = 0 ] || fail "the guest found errors: $st"
[ "$(field "$st" disklog_state)" = running ] || fail "disklog is not running: $st"

# Save and restore: the device state comes back with the guest.
"$XL" save d "$TANDEM_STATE_DIR/d.img" || fail "xl save d"
before=$(status_value d disklog_last)
"$XL" restore "$TANDEM_STATE_DIR/d.img" || fail "xl restore"
wait_for 20 disklog_at_least d $((before + 200)) || fail "the restored guest does not write on: $(last_status d)"
[ "$(status_value d disklog_errors)" = 0 ] || fail "errors after restore: $(last_status d)"

flushed=$(status_value d disklog_flushed)
"$XL" destroy d || fail "xl destroy d"
out=$(python3 "$CHECK" "$img" --min-last "$flushed") || fail "the image does not check out: $out"
log "host check after destroy: $out"
records=$(field "$out" records)

# A new guest on the same image carries on after the last record.  (The
# console log keeps the earlier guests' lines: count the new ones.)
checks() { grep -ac '^TANDEM-GUEST disklog check' "$(console_log d)"; }
n0=$(checks)
"$XL" create -q "$TANDEM_STATE_DIR/d.cfg" || fail "xl create d.cfg again"
wait_for 20 eval '[ "$(checks)" -gt "$n0" ]' || fail "no disklog check line from the second guest"
chk=$(grep -a '^TANDEM-GUEST disklog check' "$(console_log d)" | tail -n 1)
[ "$(field "$chk" records)" = "$records" ] || fail "the guest found $(field "$chk" records) records, the host $records: $chk"
[ "$(field "$chk" errors)" = 0 ] || fail "the guest's scan found errors: $chk"
wait_for 20 disklog_at_least d $((records + 100)) || fail "the second guest does not append: $(last_status d)"
"$XL" destroy d
out=$(python3 "$CHECK" "$img" --runs) || fail "the image of two runs does not check out: $out"
[ "$(grep -c '^run=' <<<"$out")" -ge 2 ] || fail "expected two runs in the log: $out"

# Read-only: the guest sees VIRTIO_BLK_F_RO and only scans.
sum=$(sha256sum <"$img")
write_cfg "$TANDEM_STATE_DIR/ro.cfg" ro "workload=disklog rate=200" \
    "disk = [ '$img,raw,xvda,ro' ]"
"$XL" create -q "$TANDEM_STATE_DIR/ro.cfg" || fail "xl create ro.cfg"
wait_for 20 eval "grep -aq 'disklog_readonly' $(console_log ro)" || fail "the guest did not see a read-only disk"
sleep 1
"$XL" destroy ro
[ "$(sha256sum <"$img")" = "$sum" ] || fail "the read-only image changed"

# A missing image: a clear error, nothing built.
write_cfg "$TANDEM_STATE_DIR/bad.cfg" bad "workload=disklog" \
    "disk = [ 'format=raw,vdev=xvda,access=rw,target=$TANDEM_STATE_DIR/nosuch.img' ]"
out=$("$XL" create -q "$TANDEM_STATE_DIR/bad.cfg" 2>&1) && fail "a missing disk image was accepted"
grep -q "nosuch.img" <<<"$out" || fail "the error does not name the image: $out"
[ -z "$(domains)" ] || fail "a domain is left after the refused create: $(domains)"
log "PASS: $records records checked on the host, log continued by a second guest, save/restore, read-only, missing image"
