#!/bin/bash
# xl migrate between two hosts (network namespaces with their own state
# dirs), A -> B -> A, for idle, dirty and verify (2 vCPUs) guests; one
# migration to the same host; --json figures.  After every hop the guest
# runs on the destination under its name and continues where it was (seq,
# ticks, uptime and the workload's counters go forward, no verify error),
# and the source has nothing left: no domain, no registry record, no
# process, no --incoming / --migratedaway names anywhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
command -v python3 >/dev/null || { log "ERROR: python3 is needed to read xl migrate --json"; exit 99; }
new_hosts A B
WORK=$(host_dir A)

# summary_field FILE KEY: KEY=<n> from xl migrate's text summary.
summary_field() { grep -a "^migration summary:" "$1" | grep -o "\b$2=[0-9.]*" | tail -n 1 | cut -d= -f2; }

# check_no_migration_names: neither host shows a --incoming/--migratedaway.
check_no_migration_names() {
    local h
    for h in A B; do
        h_domains "$h" | grep -q -- '--incoming\|--migratedaway' &&
            fail "$1: $h still lists $(h_domains "$h" | tr '\n' ' ')"
    done
    return 0
}

# hop NAME FROM TO KEYS -- [xl migrate options]: migrate NAME from FROM to
# TO with a checked outcome.  KEYS: the status keys that must go forward.
# FROM = TO means a migration to the same host (same state dir).
# Leaves xl migrate's stdout in $OUT and stderr in $ERR.
hop() {
    local name=$1 from=$2 to=$3 keys=() rc t0 ms before final after pid_before pid_after seq prefix
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do keys+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    OUT=$WORK/migrate.out ERR=$WORK/migrate.err
    if [ "$from" = "$to" ]; then prefix="env TANDEM_STATE_DIR=$(host_dir "$to")"; else prefix=$(host_prefix "$to"); fi

    wait_for 15 h_has_status_lines "$from" "$name" 2 || fail "$name on $from prints no status lines"
    before=$(h_last_status "$from" "$name")
    pid_before=$(h_domain_pid "$from" "$name")
    t0=$(date +%s%N)
    on "$from" xl migrate -s "" "$@" "$name" "$prefix" >"$OUT" 2>"$ERR"; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 0 ] || fail "xl migrate $* $name $from -> $to exited $rc: $(tail -n 8 "$ERR")"
    [[ " $* " == *" --json "* ]] || grep -aq '^migration sender: ' "$ERR" ||
        fail "no 'migration sender:' lines on stderr: $(cat "$ERR")"

    # Where it went and what is left behind.
    h_domain_exists "$to" "$name" || fail "$name is not listed on $to after migrating there"
    check_no_migration_names "$name $from -> $to"
    if [ "$from" != "$to" ]; then
        [ -z "$(h_domains "$from")" ] || fail "$from still has domains after migrating away: $(h_domains "$from" | tr '\n' ' ')"
        [ -z "$(h_records "$from")" ] || fail "registry records left on $from: $(h_records "$from" | tr '\n' ' ')"
        wait_for 5 h_no_procs "$from" ||
            fail "processes left in $from's namespace: $(h_procs "$from" | tr '\n' ' ')"
        # The source's log holds the guest's last lines there.
        final=$(h_last_status "$from" "$name")
        [ "$(field "$final" seq)" -ge "$(field "$before" seq)" ] && before=$final
    else
        [ "$(h_domains "$to" | wc -l)" = 1 ] || fail "same-host migration left $(h_domains "$to" | tr '\n' ' ')"
        [ "$(h_records "$to" | wc -l)" = 1 ] || fail "same-host migration left records $(h_records "$to" | tr '\n' ' ')"
    fi
    [ "$(h_records "$to" | wc -l)" = "$(h_domains "$to" | wc -l)" ] ||
        fail "registry records on $to ($(h_records "$to" | tr '\n' ' ')) do not match its domains"
    pid_after=$(h_domain_pid "$to" "$name")
    [ -n "$pid_after" ] && [ "$pid_after" != "$pid_before" ] ||
        fail "$name on $to runs in the same process as before ($pid_before): nothing migrated"

    # The guest continues where it was.
    if [[ " $* " == *" -p "* ]]; then
        [ "$(h_domain_state "$to" "$name")" = "--p---" ] || fail "-p: $name on $to is $(h_domain_state "$to" "$name"), not paused"
        on "$to" xl unpause "$name" || fail "xl unpause $name on $to"
    else
        [ "$(h_domain_state "$to" "$name")" != "--p---" ] || fail "$name is paused on $to"
    fi
    seq=$(field "$before" seq)
    wait_for 20 h_has_lines_after "$to" "$name" "$seq" 3 ||
        fail "$name on $to prints no status lines after seq=$seq: $(h_status_lines "$to" "$name" | tail -n 2)"
    after=$(h_last_status "$to" "$name")
    assert_continues "$before" "$after" "${keys[@]}"
    h_lines_after "$to" "$name" "$seq" | grep -v ' verify_errors=0 ' | head -n 1 | grep . &&
        fail "verify errors on $to after the migration"
    grep -aq 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log "$to" "$name")" &&
        fail "the guest reports a problem on $to: $(grep -a 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log "$to" "$name")" | head -n 3)"
    [ "$(field "$after" cpus)" = "$(field "$before" cpus)" ] || fail "vCPUs lost: $before -> $after"
    FELT=$(h_lines_after "$to" "$name" "$seq" | head -n 2 | tr ' ' '\n' | sed -n 's/^last_gap_us=//p' | sort -n | tail -n 1)
    local figures="(figures: --json below)"
    [[ " $* " == *" --json "* ]] || figures="total_ms=$(summary_field "$ERR" total_ms) downtime_ms=$(summary_field "$ERR" downtime_ms) iterations=$(summary_field "$ERR" iterations) bytes=$(summary_field "$ERR" bytes) throttle_pct=$(summary_field "$ERR" throttle_pct)"
    log "$name $from -> $to${*:+ ($*)}: ok in ${ms} ms wall; $figures;" \
        "guest felt last_gap_us=$FELT; seq $(field "$before" seq) -> $(field "$after" seq)"
}

# check_summary: the text summary has its figures.
check_summary() {
    local k
    for k in total_ms downtime_ms iterations bytes throttle_pct; do
        [ -n "$(summary_field "$ERR" $k)" ] || fail "the summary has no $k=: $(tail -n 5 "$ERR")"
    done
    grep -aq 'pages per iteration: [0-9]' "$ERR" || fail "the summary has no 'pages per iteration:': $(tail -n 5 "$ERR")"
    log "  $(grep -ao 'pages per iteration:.*' "$ERR" | head -n 1)"
}

common=(seq ticks uptime_ms)
for wl in idle dirty verify; do
    case $wl in
        idle) cfg=$(h_write_cfg A i.cfg i "workload=idle"); name=i; keys=("${common[@]}") ;;
        dirty) cfg=$(h_write_cfg A d.cfg d "workload=dirty wss=32"); name=d; keys=("${common[@]}" dirtied) ;;
        verify) cfg=$(h_write_cfg A v.cfg v "workload=verify wss=32" "vcpus = 2"); name=v; keys=("${common[@]}" gen verified) ;;
    esac
    on A xl create -q "$cfg" || fail "create $name on A"
    wait_for 15 h_has_status_lines A "$name" 2 || fail "$name prints no status lines on A"
    hop "$name" A B "${keys[@]}"
    check_summary
    if [ $wl = verify ]; then
        # B -> A with --json: one object on stdout, sane figures.
        hop "$name" B A "${keys[@]}" -- --json
        python3 - "$OUT" 128 <<'PY' >&2 || fail "bad --json output: $(cat "$OUT")"
import json, sys
j = json.load(open(sys.argv[1]))
mem_pages = int(sys.argv[2]) * 256
def need(cond, what):
    if not cond:
        sys.exit("t_migrate: --json: %s: %s" % (what, json.dumps(j)))
need(j.get("result") == "ok", "result is not ok")
for k in ("bytes", "throttle_pct"):
    need(isinstance(j.get(k), int) and j[k] >= 0, "%s is not a count" % k)
for k in ("total_ms", "downtime_ms"):
    need(isinstance(j.get(k), (int, float)) and j[k] >= 0, "%s is not a time" % k)
need(j["downtime_ms"] > 0, "downtime_ms is 0")
need(j["downtime_ms"] <= j["total_ms"], "downtime_ms > total_ms")
need(j.get("logdirty") in ("ring", "bitmap"), "logdirty is not ring|bitmap")
its = j.get("iterations")
need(isinstance(its, list) and len(its) >= 1, "no iterations")
for n, it in enumerate(its):
    need(it.get("iteration") == n, "iterations not numbered 0..n-1")
    for k in ("pages", "zero_pages", "dirty_pages", "ms"):
        need(isinstance(it.get(k), int) and it[k] >= 0, "iteration %d: %s" % (n, k))
    need(isinstance(it.get("mbps"), (int, float)) and it["mbps"] >= 0, "iteration %d: mbps" % n)
first = its[0]["pages"] + its[0]["zero_pages"]
need(0.9 * mem_pages <= first <= mem_pages, "iteration 0 sent %d pages of a %d-page guest" % (first, mem_pages))
data_pages = sum(it["pages"] for it in its)
need(j["bytes"] > data_pages * 4096, "bytes=%d is not more than the %d pages of data sent" % (j["bytes"], data_pages))
need(j["total_ms"] < 60000, "total_ms absurd")
print("t_migrate: --json: total_ms=%.1f downtime_ms=%.1f bytes=%d logdirty=%s throttle_pct=%d iterations=%d pages=%s"
      % (j["total_ms"], j["downtime_ms"], j["bytes"], j["logdirty"], j["throttle_pct"], len(its),
         " ".join(str(it["pages"]) for it in its)))
PY
        [ "$(wc -l <"$OUT")" -le 1 ] || log "note: --json printed $(wc -l <"$OUT") lines"
    else
        hop "$name" B A "${keys[@]}"
        check_summary
    fi
    # Each workload's guest ends on A; keep the hosts small.
    on A xl destroy "$name" || fail "destroy $name on A"
done

# The same host: the domain must find its way past its own name
# (--incoming / --migratedaway); -p leaves it paused at the destination.
cfg=$(h_write_cfg A l.cfg l "workload=verify wss=16" "vcpus = 2")
on A xl create -q "$cfg" || fail "create l on A"
hop l A A seq ticks uptime_ms gen verified
check_summary
hop l A A seq ticks uptime_ms gen verified -- -p
[ -z "$(h_domains B)" ] || fail "the same-host migration touched B: $(h_domains B)"
# (hop unpaused it to check that it continues.)

# A v2 stream (for receivers that only take v2): no STATIC_DATA_END, no
# policies; the receiver infers the end of the static data.
hop l A B seq ticks uptime_ms gen verified -- --json --stream-version 2
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j.get("stream_version") == 2 else "stream_version is %r" % j.get("stream_version"))' "$OUT" ||
    fail "--stream-version 2 did not send a v2 stream: $(cat "$OUT")"
exit 0
