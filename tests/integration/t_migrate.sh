#!/bin/bash
# xl migrate between two hosts (network namespaces with their own state
# dirs), A -> B -> A, for idle, dirty and verify (2 vCPUs) guests; one
# migration to the same host; --json figures.  After every hop the guest
# runs on the destination under its name and continues where it was (seq,
# ticks, uptime and the workload's counters go forward, no verify error),
# and the source has nothing left: no domain, no registry record, no
# process, no --incoming / --migratedaway names anywhere.  Then the stream
# version negotiation: the default is v3 with a receiver that says its
# release; receivers that read only v2, that predate negotiation (refuse
# --negotiate with status 2, as 1.0.0 does), or that say something
# malformed, emulated by wrappers around the real receiver; a migration
# that cannot be done fails before sending anything, the guest running on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
command -v python3 >/dev/null || { log "ERROR: python3 is needed to read xl migrate --json"; exit 99; }
new_hosts A B
WORK=$(host_dir A)
RELEASE=$("$XL" --help | sed -n 's/^Tandem \([^:]*\):.*/\1/p')
[ -n "$RELEASE" ] || { log "ERROR: xl --help names no release"; exit 99; }
# A command that runs the receiver for hop (prepended to it, after the
# host prefix); empty: the receiver as it is.
RECEIVER_WRAP=

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
    prefix="$prefix${RECEIVER_WRAP:+ $RECEIVER_WRAP}"

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

# check_negotiated RELEASE N: the last hop negotiated with a receiver that
# said it is RELEASE, and sent stream version N.
check_negotiated() {
    grep -aqx "migration sender: receiver is Tandem $1, stream version $2" "$ERR" ||
        fail "no 'receiver is Tandem $1, stream version $2': $(grep -a '^migration sender:' "$ERR" | head -n 3)"
    [ "$(summary_field "$ERR" stream_version)" = "$2" ] ||
        fail "the summary says stream_version=$(summary_field "$ERR" stream_version), not $2"
    ! grep -aq 'does not negotiate' "$ERR" || fail "a negotiating receiver was retried: $(cat "$ERR")"
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
    check_negotiated "$RELEASE" 3
    if [ $wl = verify ]; then
        # B -> A with --json: one object on stdout, sane figures.
        hop "$name" B A "${keys[@]}" -- --json
        python3 - "$OUT" 128 "$RELEASE" <<'PY' >&2 || fail "bad --json output: $(cat "$OUT")"
import json, sys
j = json.load(open(sys.argv[1]))
mem_pages = int(sys.argv[2]) * 256
def need(cond, what):
    if not cond:
        sys.exit("t_migrate: --json: %s: %s" % (what, json.dumps(j)))
need(j.get("result") == "ok", "result is not ok")
need(j.get("stream_version") == 3, "stream_version is not 3")
need(j.get("receiver_release") == sys.argv[3], "receiver_release is not %s" % sys.argv[3])
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

# ---- Stream version negotiation with other receivers ---------------------
# rewrite-offer FILE CMD...: runs the receiver CMD and puts FILE's bytes in
# place of its negotiation line; FILE without a final newline ends the
# receiver there.  Given as the receiver's wrapper, it makes the
# receiver look like another release.
cat >"$WORK/rewrite-offer.py" <<'PY'
import os, subprocess, sys
BANNER = b"xl migration receiver ready, send binary domain data.\n"
new = open(sys.argv[1], "rb").read()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE)
fd = p.stdout.fileno()
def read_upto(n, stop=None):
    b = b""
    while len(b) < n and not (stop and b.endswith(stop)):
        c = os.read(fd, 1 if stop else n - len(b))
        if not c:
            break
        b += c
    return b
def write(b):
    while b:
        b = b[os.write(1, b):]
try:
    banner = read_upto(len(BANNER))
    write(banner)
    if banner == BANNER:
        read_upto(4096, b"\n")            # the real line, replaced
        write(new)
        if new.endswith(b"\n"):
            while True:
                c = os.read(fd, 65536)
                if not c:
                    break
                write(c)
        else:
            # A receiver that dies in the middle of its line (closing our
            # stdout would not do: ip netns exec holds it too).
            p.kill()
except BrokenPipeError:
    pass
sys.exit(p.wait())
PY
# old-receiver CMD...: a receiver from before negotiation: like 1.0.0, it
# refuses --negotiate with a usage message and status 2, else runs CMD.
# Each call leaves its arguments in old-receiver.calls.
cat >"$WORK/old-receiver" <<SH
#!/bin/sh
echo "\$*" >>"$WORK/old-receiver.calls"
for a in "\$@"; do
    if [ "\$a" = --negotiate ]; then
        echo "migrate-receive: unrecognized option '--negotiate'" >&2
        echo "Usage: xl [-v] migrate-receive [-d] [-e] [-p] [-z]" >&2
        exit 2
    fi
done
exec "\$@"
SH
chmod +x "$WORK/old-receiver"
offer() { printf "$2" >"$WORK/offer-$1"; echo "python3 $WORK/rewrite-offer.py $WORK/offer-$1"; }

# refused NAME FROM TO PATTERN [xl migrate options]: the migration fails
# before anything is sent, saying PATTERN; NAME runs on at FROM in the same
# process, and TO is left with nothing.
refused() {
    local name=$1 from=$2 to=$3 pattern=$4 rc before pid seq; shift 4
    wait_for 15 h_has_status_lines "$from" "$name" 2 || fail "$name on $from prints no status lines"
    before=$(h_last_status "$from" "$name"); pid=$(h_domain_pid "$from" "$name")
    on "$from" xl migrate -s "" "$@" "$name" "$(host_prefix "$to") $RECEIVER_WRAP" >"$WORK/refused.out" 2>"$WORK/refused.err"
    rc=$?
    [ $rc = 1 ] || fail "xl migrate $* to a receiver that should refuse it exited $rc: $(tail -n 8 "$WORK/refused.err")"
    grep -aq -- "$pattern" "$WORK/refused.err" || fail "the error does not say '$pattern': $(cat "$WORK/refused.err")"
    grep -aq "domain $name is still running here" "$WORK/refused.err" ||
        fail "the error does not say that $name is still running: $(cat "$WORK/refused.err")"
    ! grep -aq '^migration sender: sending domain' "$WORK/refused.err" || fail "it started sending: $(cat "$WORK/refused.err")"
    [ "$(h_domain_pid "$from" "$name")" = "$pid" ] || fail "$name on $from is not the same process after a refused migration"
    [ "$(h_domain_state "$from" "$name")" != "--p---" ] || fail "$name is paused on $from after a refused migration"
    seq=$(field "$before" seq)
    wait_for 10 h_has_lines_after "$from" "$name" "$seq" 2 || fail "$name on $from does not run on after a refused migration"
    assert_continues "$before" "$(h_last_status "$from" "$name")" seq ticks uptime_ms
    assert_host_empty "$to" "refused migration of $name"
    check_no_migration_names "refused migration of $name"
    log "refused, $name runs on at $from${*:+ ($*)}: $(grep -a "^xl: migrate: " "$WORK/refused.err" | head -n 1)"
}

# A receiver that reads only v2: negotiated down to v2; asking for v3 fails.
RECEIVER_WRAP=$(offer v2 "tandem-migrate release=$RELEASE-v2only streams=2\n")
hop l B A seq ticks uptime_ms gen verified
check_negotiated "$RELEASE-v2only" 2
refused l A B "does not read\|reads stream version 2, not 3" --stream-version 3
# A later release with more versions and keys this one does not know.
RECEIVER_WRAP=$(offer future "tandem-migrate release=9.0.0 streams=4,3,2 cpu=levelled  x-new=1\n")
hop l A B seq ticks uptime_ms gen verified
check_negotiated 9.0.0 3

# A receiver from before negotiation (1.0.0): it refuses --negotiate, the
# sender says so once, hides the usage text and retries with v2; asked for
# v3 it retries with v3.
for forced in "" 3; do
    RECEIVER_WRAP=$WORK/old-receiver
    rm -f "$WORK/old-receiver.calls"
    from=B to=A; [ -n "$forced" ] && { from=A to=B; }
    hop l $from $to seq ticks uptime_ms gen verified ${forced:+-- --stream-version $forced}
    want=${forced:-2}
    [ "$(grep -ac 'does not negotiate stream versions' "$ERR")" = 1 ] ||
        fail "no single 'does not negotiate' message: $(cat "$ERR")"
    grep -aq "retrying with stream version $want\$" "$ERR" || fail "it does not retry with v$want: $(cat "$ERR")"
    [ "$(summary_field "$ERR" stream_version)" = "$want" ] ||
        fail "the old receiver got stream_version=$(summary_field "$ERR" stream_version), not $want"
    ! grep -aq 'Usage:\|unrecognized option' "$ERR" || fail "the old receiver's usage text was shown: $(cat "$ERR")"
    ! grep -aq 'receiver is Tandem' "$ERR" || fail "an old receiver was named: $(cat "$ERR")"
    [ "$(wc -l <"$WORK/old-receiver.calls")" = 2 ] && grep -q -- '--negotiate' <(head -n 1 "$WORK/old-receiver.calls") &&
        ! grep -q -- '--negotiate' <(tail -n 1 "$WORK/old-receiver.calls") ||
        fail "the receiver was not run with, then without --negotiate: $(cat "$WORK/old-receiver.calls")"
done
# (l is on B.)

# Malformed negotiation lines: each a clear error, the guest runs on.
RECEIVER_WRAP=$(offer long "tandem-migrate release=$RELEASE streams=2,3 pad=$(printf '%0300d' 0)\n")
refused l B A "longer than 256 bytes"
RECEIVER_WRAP=$(offer cut "tandem-migrate release=$RELEASE streams=2,3")
refused l B A "has no end : the other end closed the connection"
RECEIVER_WRAP=$(offer binary '\001\377garbage\n')
refused l B A "is malformed : byte 0x01 at offset 0"
RECEIVER_WRAP=$(offer word "xl-migrate release=$RELEASE streams=2,3\n")
refused l B A "is malformed : it does not start with 'tandem-migrate'"
RECEIVER_WRAP=$(offer nostreams "tandem-migrate release=$RELEASE\n")
refused l B A "is malformed : it has no streams="
RECEIVER_WRAP=$(offer badlist "tandem-migrate release=$RELEASE streams=2,,3\n")
refused l B A "is malformed : streams=2,,3 is not a list"
RECEIVER_WRAP=$(offer nokv "tandem-migrate release=$RELEASE streams=2,3 junk\n")
refused l B A "is malformed : 'junk' is not key=value"
RECEIVER_WRAP=$(offer none "tandem-migrate release=$RELEASE streams=4,5\n")
refused l B A "no stream version in common"
RECEIVER_WRAP=
exit 0
