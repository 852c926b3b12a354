#!/bin/bash
# ./quickstart demo: boot a Tandem guest on this machine's KVM, show its
# console for a few seconds, and destroy it.
set -euo pipefail
prefix=$1
xl=$prefix/sbin/xl
[ -c /dev/kvm ] || { echo "demo: /dev/kvm is missing: Tandem needs KVM" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (KVM and, later, network namespaces)" >&2; exit 1; }

export TANDEM_STATE_DIR=$(mktemp -d /tmp/tandem-demo.XXXXXX)
trap '"$xl" destroy demo >/dev/null 2>&1 || true; rm -rf "$TANDEM_STATE_DIR"' EXIT
cfg=$TANDEM_STATE_DIR/demo.cfg
cat >"$cfg" <<CFG
# A small guest running Tandem's self-checking memory workload.
name = "demo"
memory = 256
vcpus = 2
cmdline = "workload=verify wss=64"
CFG

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step "cat demo.cfg"; cat "$cfg"
step "xl create demo.cfg"
start=$(date +%s%N)
"$xl" create "$cfg"
until grep -aq '^TANDEM-GUEST seq=' "$TANDEM_STATE_DIR/console/demo.log" 2>/dev/null; do sleep 0.01; done
echo "(first status line $(( ($(date +%s%N) - start) / 1000000 )) ms after xl create)"
step "xl list"; "$xl" list
step "xl console demo   (for 4 seconds)"
timeout 4 "$xl" console demo </dev/null || true
step "xl pause demo; sleep 2; xl unpause demo"
"$xl" pause demo; "$xl" list demo; sleep 2; "$xl" unpause demo
sleep 1.5
step "tail -n 2 console/demo.log   (the guest felt the pause: max_gap_us)"
grep -a '^TANDEM-GUEST seq=' "$TANDEM_STATE_DIR/console/demo.log" | tail -n 2
step "xl destroy demo"; "$xl" destroy demo
step "xl list"; "$xl" list
echo
echo "Live migration between two hosts arrives with 'xl migrate' (see README)."
