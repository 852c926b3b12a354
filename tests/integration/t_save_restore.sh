#!/bin/bash
# xl save / xl restore: the guest continues exactly where it was (no
# verify error, counters and clock never go back); -c and -p as Xen's xl;
# images are never left half-written; a failed restore leaves nothing.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
img=$TANDEM_STATE_DIR/g.img

write_cfg "$TANDEM_STATE_DIR/g.cfg" g "workload=verify wss=16" "vcpus = 2"
"$XL" create -q "$TANDEM_STATE_DIR/g.cfg" || fail "create"
wait_for 15 has_status_lines g 2 || fail "no status lines"

# Plain save: the image is complete, the domain is gone.
"$XL" save g "$img" || fail "xl save"
domain_gone g || fail "domain still there after xl save"
[ -s "$img" ] || fail "no image"
ls "$TANDEM_STATE_DIR"/g.img.* 2>/dev/null && fail "temporary files left next to the image"
before=$(last_status g)
n_before=$(nstatus g)

"$XL" restore "$img" || fail "xl restore"
domain_exists g || fail "restored domain not listed"
wait_for 15 has_status_lines g $((n_before + 3)) || fail "restored guest prints nothing"
after=$(last_status g)
for key in seq ticks uptime_ms gen verified; do
    [ "$(field "$after" $key)" -gt "$(field "$before" $key)" ] || fail "$key went back: $before -> $after"
done
[ "$(field "$after" verify_errors)" = 0 ] || fail "verify errors after restore: $after"
[ "$(field "$after" cpus)" = 2 ] || fail "an AP was lost: $after"
log "restored guest: $after"

# -c leaves the domain running; -p leaves it paused.
"$XL" save -c g "$img" || fail "xl save -c"
[ "$(domain_state g)" != "--p---" ] && domain_exists g || fail "save -c did not leave it running"
n=$(nstatus g); wait_for 10 has_status_lines g $((n + 2)) || fail "not running after save -c"
"$XL" save -p g "$img" || fail "xl save -p"
[ "$(domain_state g)" = "--p---" ] || fail "save -p left state $(domain_state g)"

# The name is taken while g lives; a config can rename the restored copy.
"$XL" restore "$img" 2>"$TANDEM_STATE_DIR/err" && fail "restored a second 'g'"
grep -q "already exists" "$TANDEM_STATE_DIR/err" || fail "duplicate restore error unclear: $(cat "$TANDEM_STATE_DIR/err")"
write_cfg "$TANDEM_STATE_DIR/g2.cfg" g2 "workload=verify wss=16" "vcpus = 2"
"$XL" restore -p "$TANDEM_STATE_DIR/g2.cfg" "$img" || fail "restore under a new name"
[ "$(domain_state g2)" = "--p---" ] || fail "restore -p left state $(domain_state g2)"
"$XL" unpause g2
n=$(nstatus g2); wait_for 10 has_status_lines g2 $((n + 2)) || fail "g2 does not run"
[ "$(field "$(last_status g2)" verify_errors)" = 0 ] || fail "g2 verify errors"
"$XL" destroy g2

# A truncated image fails with a clear error and leaves no domain behind.
"$XL" destroy g
head -c $(( $(stat -c %s "$img") / 2 )) "$img" >"$img.cut"
"$XL" restore "$img.cut" 2>"$TANDEM_STATE_DIR/err" && fail "restored a truncated image"
log "truncated image: $(cat "$TANDEM_STATE_DIR/err")"
grep -qi "truncated\|end of\|short" "$TANDEM_STATE_DIR/err" || fail "truncation error unclear"
[ -z "$(domains)" ] || fail "a half-restored domain was left: $(domains)"
[ -z "$(ls "$TANDEM_STATE_DIR/domains")" ] || fail "registry records left behind"

# A full disk: the save fails, no image appears, the guest keeps running.
"$XL" restore "$img" || fail "restore for the full-disk test"
full=$TANDEM_STATE_DIR/full
mkdir -p "$full" && mount -t tmpfs -o size=1m tandem-full "$full" || fail "cannot mount a small tmpfs"
trap 'umount "$full" 2>/dev/null; cleanup_host' EXIT
"$XL" save g "$full/g.img" 2>"$TANDEM_STATE_DIR/err" && fail "save to a full disk succeeded"
log "full disk: $(cat "$TANDEM_STATE_DIR/err")"
[ -z "$(ls -A "$full")" ] || fail "a partial image was left: $(ls -A "$full")"
domain_exists g || fail "the guest died with the failed save"
[ "$(domain_state g)" != "--p---" ] || fail "the guest was left paused after the failed save"
n=$(nstatus g); wait_for 10 has_status_lines g $((n + 2)) || fail "guest not running after the failed save"
[ "$(field "$(last_status g)" verify_errors)" = 0 ] || fail "verify errors after the failed save"
exit 0
