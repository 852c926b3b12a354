#!/bin/bash
# Migrates a self-checking guest back and forth between two "hosts" (two
# state dirs on this machine) and stops at the first page the guest finds
# stale or wrong: the test for pages lost by dirty tracking.
#
#   bench/migrate-stress.sh [PREFIX] [HOPS]
#   env: WSS (MiB of memory the guest rewrites, default 64),
#        LOG_DIRTY (auto|ring|bitmap, default auto), OPTS (more xl migrate options)
# Prints one line per hop (downtime, rounds, throttle, ring-full exits,
# verify_errors); exit 1 if the guest reported an error.
set -u
. "$(dirname "$0")/bench-lib.sh"
bench_init migrate-stress HOPS 20 "$@"
hops=$runs
base=$(mktemp -d /tmp/tandem-stress.XXXXXX)
a=$base/a b=$base/b
cleanup() { for d in $a $b; do TANDEM_STATE_DIR=$d "$XL" destroy stress >/dev/null 2>&1; done; rm -rf "$base"; }
trap cleanup EXIT
cat >"$base/stress.cfg" <<CFG
name = "stress"
memory = 512
vcpus = 2
log_dirty = "${LOG_DIRTY:-auto}"
cmdline = "workload=verify wss=${WSS:-64}"
CFG
TANDEM_STATE_DIR=$a "$XL" create -q "$base/stress.cfg" || exit 1
sleep 2
src=$a dst=$b
for i in $(seq "$hops"); do
    out=$(TANDEM_STATE_DIR=$src "$XL" migrate ${OPTS:-} -s "" stress "env TANDEM_STATE_DIR=$dst" 2>&1)
    rc=$?
    figures=$(echo "$out" | grep -o "downtime_ms=[0-9.]*\|iterations=[0-9]*\|throttle_pct=[0-9]*\|ring_full_exits=[0-9]*" | tr '\n' ' ')
    sleep 1.5
    errors=$(grep -a "^TANDEM-GUEST verify_error " "$dst/console/stress.log" | head -3)
    last=$(grep -a "^TANDEM-GUEST seq" "$dst/console/stress.log" | tail -1 | grep -o "verify_errors=[0-9]*")
    echo "hop $i rc=$rc $figures$last"
    if [ $rc != 0 ]; then echo "$out" | tail -3; exit 1; fi
    if [ -n "$errors" ]; then echo "$errors"; exit 1; fi
    t=$src; src=$dst; dst=$t
done
echo "$hops hops, no stale or wrong page"
