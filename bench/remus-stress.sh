#!/bin/bash
# Remus failover soak: protects a self-checking guest with xl remus between
# two "hosts" (network namespaces), SIGKILLs the primary's domain process
# after a few seconds, and reads what the replica's guest finds after the
# failover.  A stale page there is a dirty page the primary never sent: the
# test for dirty tracking across many paused harvests (docs/remus.md).
#
#   bench/remus-stress.sh [PREFIX] [RUNS]
#   env: INTERVAL (xl remus -i, default 200), OPTS (more xl remus options,
#        e.g. -u), WSS (MiB, default 16), VCPUS (default 1),
#        MEMORY (MiB, default 128), RUNFOR (seconds protected, default 4)
# Prints one line per run (failover, epochs, pauses, verify_errors) and a
# total; exit 1 if any replica found an error.
set -u
. "$(dirname "$0")/bench-lib.sh"
bench_init remus-stress RUNS 10 "$@"
bench_need root
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/hosts.sh"
TEST_NAME=remus-stress

# One run in a subshell, so each gets fresh hosts and its own cleanup.
one_run() {
    new_hosts A B
    local cfg pid st out
    cfg=$(h_write_cfg A v.cfg v "workload=verify wss=${WSS:-16}" "vcpus = ${VCPUS:-1}" "memory = ${MEMORY:-128}")
    on A xl create -q "$cfg" || fail "xl create"
    wait_for 20 h_has_status_lines A v 2 || fail "the guest prints no status lines"
    out=$(host_dir A)/remus.out
    # shellcheck disable=SC2086
    on A xl remus -i "${INTERVAL:-200}" ${OPTS:-} -s "" v "$(host_prefix B)" >"$out" 2>&1 &
    local rp=$!
    sleep "${RUNFOR:-4}"
    pid=$(h_domain_pid A v)
    kill -KILL "$pid"
    wait $rp
    wait_for 20 h_domain_exists B v || fail "no failover: $(tail -n 2 "$out")"
    local n; n=$(h_nstatus B v)
    wait_for 20 h_has_status_lines B v $((n + 3)) || fail "the replica does not run"
    st=$(h_last_status B v)
    printf 'verify_errors=%s %s | %s\n' "$(field "$st" verify_errors)" \
        "$(cat "$(host_dir B)"/log/xl-v*.log 2>/dev/null | grep -a 'failover:' | tail -n 1 | sed 's/^.*failover:/failover:/')" \
        "$(grep -a 'epochs in' "$out" | tail -n 1 | sed 's/^.*: //')"
}

bad=0
for ((i = 1; i <= runs; i++)); do
    line=$( (one_run) 2>&1 | grep -a '^verify_errors=\|FAIL' | tail -n 1)
    printf 'run %d: %s\n' "$i" "$line"
    case $line in verify_errors=0\ *) ;; *) bad=$((bad + 1)) ;; esac
done
printf 'remus-stress: %d of %d runs failed (interval %s ms, options "%s", wss %s MiB, %s vCPU(s), %s MiB)\n' \
    "$bad" "$runs" "${INTERVAL:-200}" "${OPTS:-}" "${WSS:-16}" "${VCPUS:-1}" "${MEMORY:-128}"
[ "$bad" = 0 ]
