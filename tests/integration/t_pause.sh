#!/bin/bash
# Pause stops the guest (no ticks, no output), unpause resumes it where it
# was, and the guest feels the pause as one long gap.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host

write_cfg "$TANDEM_STATE_DIR/p.cfg" p "workload=verify wss=8"
"$XL" create -q "$TANDEM_STATE_DIR/p.cfg" || fail "create"
wait_for 10 has_status_lines p 2 || fail "no status lines"
"$XL" pause p || fail "xl pause"
[ "$(domain_state p)" = "--p---" ] || fail "state after pause is $(domain_state p)"
sleep 0.3
before=$(last_status p)
n_before=$(nstatus p)
sleep 2.5
[ "$(nstatus p)" = "$n_before" ] || fail "the guest printed while paused"
"$XL" unpause p || fail "xl unpause"
"$XL" unpause p 2>/dev/null && fail "unpausing a running domain should fail"
wait_for 10 has_status_lines p $((n_before + 2)) || fail "no status lines after unpause"
after=$(last_status p)
for key in seq ticks uptime_ms; do
    [ "$(field "$after" $key)" -gt "$(field "$before" $key)" ] || fail "$key went back: $before -> $after"
done
gap=$(field "$after" max_gap_us)
[ "$gap" -ge 2000000 ] || fail "the guest felt no 2.5 s pause (max_gap_us=$gap)"
[ "$(field "$after" verify_errors)" = 0 ] || fail "verify errors after unpause: $after"
log "pause felt as max_gap_us=$gap"
exit 0
