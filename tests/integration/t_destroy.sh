#!/bin/bash
# Destroy leaves nothing: process, control socket and registry record go.
# The registry survives a killed domain process; names are unique.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host

write_cfg "$TANDEM_STATE_DIR/d.cfg" d "workload=idle"
"$XL" create -q "$TANDEM_STATE_DIR/d.cfg" || fail "create"
wait_for 10 has_status_lines d 1 || fail "no status"
pid=$(domain_pid d)
domid=$("$XL" list d | awk 'NR == 2 { print $2 }')
[ -n "$pid" ] && kill -0 "$pid" || fail "no domain process"
[ -S "$TANDEM_STATE_DIR/run/dom$domid.sock" ] || fail "no control socket"
"$XL" create -q "$TANDEM_STATE_DIR/d.cfg" 2>"$TANDEM_STATE_DIR/err" && fail "a second 'd' was created"
grep -q "already exists" "$TANDEM_STATE_DIR/err" || fail "duplicate name error unclear: $(cat "$TANDEM_STATE_DIR/err")"
"$XL" destroy d || fail "destroy"
process_alive "$pid" && fail "domain process $pid still alive"
[ -e "$TANDEM_STATE_DIR/run/dom$domid.sock" ] && fail "control socket left behind"
[ -e "$TANDEM_STATE_DIR/domains/$domid.json" ] && fail "registry record left behind"
domain_gone d || fail "still listed"

# A domain process killed outright is reaped by the next registry scan.
"$XL" create -q "$TANDEM_STATE_DIR/d.cfg" || fail "re-create"
wait_for 10 domain_exists d || fail "not listed"
pid=$(domain_pid d)
domid2=$("$XL" list d | awk 'NR == 2 { print $2 }')
[ "$domid2" -gt "$domid" ] || fail "domid did not grow ($domid then $domid2)"
kill -9 "$pid"
wait_for 5 domain_gone d || fail "killed domain still listed"
[ -e "$TANDEM_STATE_DIR/domains/$domid2.json" ] && fail "stale record not reaped"
"$XL" destroy d 2>/dev/null && fail "destroying a gone domain should fail"
exit 0
