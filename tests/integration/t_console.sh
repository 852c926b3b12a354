#!/bin/bash
# xl console streams the guest's serial output; xl create -c attaches.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
write_cfg "$TANDEM_STATE_DIR/c.cfg" con "workload=idle"
"$XL" create -q "$TANDEM_STATE_DIR/c.cfg" || fail "create"
out=$TANDEM_STATE_DIR/out
timeout 3 "$XL" console con </dev/null >"$out"
grep -aq '^TANDEM-GUEST seq=' "$out" || fail "xl console showed no status line"
timeout 3 "$XL" console -t pv con </dev/null 2>/dev/null && fail "console type pv accepted"
"$XL" destroy con
write_cfg "$TANDEM_STATE_DIR/c.cfg" con2 "workload=poweroff after=1500"
timeout 10 "$XL" create -q -c "$TANDEM_STATE_DIR/c.cfg" </dev/null >"$out" || fail "create -c did not end with the domain"
grep -aq '^TANDEM-GUEST boot' "$out" || fail "create -c missed the boot line"
exit 0
