#!/bin/bash
# A guest that triple-faults, or runs an instruction this host cannot
# emulate, ends with a message naming the exit and the RIP; on_crash,
# on_poweroff and on_reboot are honoured.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
cfg=$TANDEM_STATE_DIR/c.cfg

write_cfg "$cfg" tf "workload=triplefault after=200" 'on_crash = "destroy"'
"$XL" create -q "$cfg" || fail "create tf"
wait_for 10 domain_gone tf || fail "triple-faulted domain not destroyed"
grep -q "triple fault.*RIP 0x" "$(domain_log tf)" || fail "no triple-fault message with RIP in $(domain_log tf)"

write_cfg "$cfg" tfp "workload=triplefault after=200" 'on_crash = "preserve"'
"$XL" create -q "$cfg" || fail "create tfp"
wait_for 10 sh -c "[ \"\$($XL list tfp | awk 'NR==2 {print \$5}')\" = ----c- ]" || fail "preserved crash not shown as c: $(domain_state tfp)"
"$XL" list -l tfp | grep -q '"reason".*triple fault' || fail "xl list -l lacks the crash reason"
"$XL" pause tfp 2>/dev/null && fail "pausing a crashed domain should fail"
"$XL" destroy tfp || fail "destroy crashed domain"

write_cfg "$cfg" sse "workload=sse after=200" 'on_crash = "destroy"'
"$XL" create -q "$cfg" || fail "create sse"
wait_for 10 domain_gone sse || fail "sse domain not destroyed"
grep -q "KVM_EXIT_INTERNAL_ERROR.*RIP 0x" "$(domain_log sse)" || fail "no internal-error message with RIP"

write_cfg "$cfg" off "workload=poweroff after=300"
"$XL" create -q "$cfg" || fail "create off"
wait_for 10 domain_gone off || fail "powered-off domain not destroyed (on_poweroff default destroy)"

write_cfg "$cfg" rb "workload=poweroff after=300" 'on_poweroff = "restart"'
"$XL" create -q "$cfg" || fail "create rb"
wait_for 10 sh -c "[ \$(grep -ac '^TANDEM-GUEST boot' $(console_log rb)) -ge 2 ]" || fail "on_poweroff=restart did not boot the guest again"
domain_exists rb || fail "restarted domain not listed"
exit 0
