#!/bin/bash
# Remus (xl remus) between two "hosts" (tests/integration/hosts.sh: network
# namespaces with their own state dirs, a guest LAN with a client), against
# the same guest unprotected in the same run.
#
#   bench/remus.sh [PREFIX] [RUNS]   (PREFIX defaults to build/prefix, RUNS to 3)
#
# The replication stream goes over pipes (xl remus -s "" between the
# namespaces), so what is measured is the engine, not a network.  Guests:
# 1 vCPU, 128 MiB.  Intervals: 200, 50, 25, 10 ms.  Environment:
# INTERVALS (the list), WINDOW (s, default 5), LAT_SECONDS (default 4),
# PARTS (default "dirty kv failover": which parts to run), FAILOVER
# (failover modes, ';'-separated "kill|stop XL-REMUS-OPTIONS", default
# "kill -i 50;stop -i 200;stop -i 50 --timeout 300"; "kill -F -n -i 50"
# shows what the loss check catches: without output buffering, answers
# the backup never saw are lost, and the script exits 1).
#
# 1. Checkpoints.  workload=dirty wss=32 rate=50000 (one word per page, as
#    tests/unit/test_remus.c), WINDOW s (default 5) of epochs after 1 s of
#    protection at each interval, and -u (no compression) at 50 ms: pause
#    median/max, pages/epoch median, bytes/epoch median, checkpoints/s
#    achieved (epochs acknowledged per second of wall time), ack latency
#    median.  Source: xl remus --debug, one line per acknowledged epoch.
# 2. Guest throughput as a ratio to the unprotected guest:
#    a. the dirty guest's own work: pages written per second (dirtied /
#       uptime_ms between two status lines), paced (rate=50000: does it keep
#       its schedule?) and unpaced (rate=0: how much work gets done), with
#       the longest gap the guest felt (last_gap_us); and the unpaced guest
#       with log_dirty = "bitmap", and with log_dirty_ring = 65536, at 200
#       and 50 ms, against the default dirty ring.  Every page the guest writes first in an epoch costs a
#       write-protection fault (microseconds each, nested); with the ring a
#       working set larger than the ring (4096 pages per vCPU) fills it
#       within every pass, and each ring-full harvest write-protects again
#       the pages the guest is about to rewrite: a fault per page per pass,
#       not per epoch;
#    b. kv requests/s with 32 in flight (bench/udp-load.c tput) from the LAN's
#       client.  Under output commit an answer leaves only when the epoch
#       that computed it is acknowledged, so a window of W requests gets at
#       most about W answers per epoch: the bound W x checkpoints/s is
#       printed next to it.  udp-load waits 1 s (UDP_LOAD_WAIT_MS) for an
#       answer before it counts it lost (and refills its slot): more than
#       the longest interval, so the window stays a steady 32; lost/late
#       are printed.
# 3. Latency with output commit: kv round trip, sequential INCRs (udp-load
#    lat, for LAT_SECONDS, default 4 s), median and p99, unprotected, under
#    Remus at each interval, and under -F -n (no output buffering) at 50 ms.
# 4. Failover, RUNS times each: a client (written here) sends INCRs one at
#    a time, the same id resent every 1 ms until answered, at most one new
#    request per ms, while the primary's domain process is
#      kill   SIGKILLed, -i 50: its end of the stream closes, the backup
#             reads end of file and takes over at once;
#      stop   SIGSTOPped (a host that died or hung: no byte and no end of
#             file ever comes), at the default timeout (-i 200: 1000 ms)
#             and at --timeout 300 -i 50; the stopped process is SIGKILLed
#             after the takeover.
#    No witness (the backup trusts the stream; docs/remus.md).  Figures: the
#    kill to the first answer from the backup (the answer that ends the
#    longest silence after the kill), and the backup's own figure (its
#    log's "failover: ... N ms after the last commit").  After each
#    failover every key must hold the last value answered for it
#    (tests/guests/kv-client.py check): exit 1 if any answered increment
#    was lost.  The guest moves A -> B -> A ... one failover per run.
#    The first answer later than 1 ms after the kill counts as the
#    backup's (the dead primary's last frames take microseconds).
#
# Other work on the machine shows in every figure (2 shared cores here:
# the primary, the backup, the guest and the client compete); the load
# average is printed at the start and the end.  Progress goes to stderr,
# the results table to stdout.  Needs root, /dev/kvm, iproute2, python3, cc.
set -uo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init remus-bench RUNS 3 "$@"
bench_need root ip python3 "${CC:-cc}"
INTERVALS=${INTERVALS:-200 50 25 10}
PARTS=${PARTS:-dirty kv failover}
WINDOW=${WINDOW:-5}
LAT_SECONDS=${LAT_SECONDS:-4}
for v in $INTERVALS $WINDOW $LAT_SECONDS; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "not a positive number: '$v'"; done
FO_MODES=("kill -i 50" "stop -i 200" "stop -i 50 --timeout 300")
[ -n "${FAILOVER:-}" ] && IFS=';' read -r -a FO_MODES <<<"$FAILOVER"
for m in "${FO_MODES[@]}"; do
    case ${m%% *} in kill|stop) ;; *) die "FAILOVER: '$m' does not start with kill or stop" ;; esac
done

work=$(mktemp -d /tmp/tandem-bench-remus.XXXXXX) || die "mktemp"
# Processes this script started in the background (xl remus, clients):
# ended by pid at exit, before hosts.sh's cleanup removes the hosts.
BG=()
trap 'for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/hosts.sh"
TEST_NAME=remus-bench
KV=$top/tests/guests/kv-client.py
"${CC:-cc}" -O2 -Wall -Wextra -o "$work/udp-load" "$bench/udp-load.c" || die "cannot compile udp-load.c"
LOAD=$work/udp-load
# Under output commit an answer takes about an interval: udp-load's
# default wait (200 ms) would count -i 200's answers lost and resend.
export UDP_LOAD_WAIT_MS=1000

# The failover client: sequential INCRs over NKEYS keys, each resent with
# the same id every RESEND ms until answered (the guest answers a resent
# id from its memory, never incrementing twice), a new request at most
# every RESEND ms.  Writes kv-client.py's summary format (so `check` reads
# it) plus the wall-clock time (ns, CLOCK_REALTIME, as date +%s%N) of every
# answer.
cat >"$work/fo-client.py" <<'PY'
import json, os, socket, sys, time
ip, port, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
resend = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.001
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ip, port))
rid = int(time.time() * 1000) & 0xFFFFFFFF
retries = 0

def request(cmd, key):
    global rid, retries
    rid += 1
    msg = f"{cmd} {key} id={rid}".encode()
    want = f"id={rid}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s.send(msg)
        until = time.monotonic() + resend
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(512)
            except (socket.timeout, ConnectionRefusedError):
                continue
            w = data.decode(errors="replace").split()
            if not w or w[-1] != want:
                continue        # a late answer to an earlier request
            if len(w) != 3 or w[0] != key:
                raise RuntimeError("bad answer: " + " ".join(w))
            return int(w[1]), time.time_ns()
        retries += 1
    raise RuntimeError(f"no answer to {msg.decode()!r} within 30 s")

keys = [f"f{i}" for i in range(8)]
errors, times = [], []
last = {k: request("GET", k)[0] for k in keys}
i = 0
try:
    while not os.path.exists(stop):
        k = keys[i % len(keys)]
        i += 1
        t0 = time.monotonic()
        v, t = request("INCR", k)
        if v != last[k] + 1:
            errors.append(f"key {k}: answered {v} after {last[k]}")
        last[k] = v
        times.append(t)
        pause = t0 + resend - time.monotonic()
        if pause > 0:
            time.sleep(pause)
except RuntimeError as e:
    errors.append(str(e))
with open(out, "w") as f:
    json.dump({"answered": len(times), "retries": retries, "errors": errors[:20], "last": last,
               "times_ns": times}, f)
print(f"answered={len(times)} retries={retries} errors={len(errors)}")
sys.exit(1 if errors or not times else 0)
PY

# fo_figures SUMMARY KILL_NS: "ms=<kill -> first answer from the backup>
# before=<answers in the first ms after the kill> gaps=<silences>".  The
# first answer later than 1 ms after the kill is the backup's: a killed or
# stopped primary sends nothing more, and what it released just before
# crosses the bridges in well under a millisecond.  (The longest silence
# would not do: a failover on end of file is quicker than an epoch.)
fo_figures() {
    python3 - "$1" "$2" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["times_ns"]
kill = int(sys.argv[2])
after = [x for x in t if x > kill + 1e6]
# Silences over 20 ms from 100 ms before the kill on: "<start>+<length>" ms
# relative to the kill, for the progress line.
gaps, prev = [], None
for x in t:
    if prev is not None and x > kill - 100e6 and x - prev > 20e6:
        gaps.append(f"{(prev - kill) / 1e6:.0f}+{(x - prev) / 1e6:.0f}")
    prev = x
ms = f"{(after[0] - kill) / 1e6:.1f}" if after else "nan"
print(f"ms={ms} before={sum(1 for x in t if kill < x <= kill + 1e6)} gaps={','.join(gaps[:8]) or '-'}")
PY
}

require_kvm
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }
maxof() { sort -g | tail -n 1 | grep . || echo nan; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
prog() { printf 'remus-bench: %s\n' "$*" >&2; }

# ---- Hosts, LAN ------------------------------------------------------------
new_hosts A B
new_lan A B
KV_IP=$(lan_guest_ip 0) KV_PORT=7000
echo "# remus-bench $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) host CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); RUNS=$runs; intervals $INTERVALS ms; stream over pipes (-s \"\")"

# remus_bg FROM TO NAME OUT [xl remus options]: xl remus --debug in the
# background, its pid in REMUS_PID (exec'd through ip netns and env, so the
# pid is xl's own and a TERM reaches it), its output in OUT.
REMUS_PID='' REMUS_TO=''
remus_bg() {
    local from=$1 to=$2 name=$3 out=$4; shift 4
    : >"$out"
    ip netns exec "$(host_ns "$from")" env TANDEM_STATE_DIR="$(host_dir "$from")" \
        "$XL" remus --debug "$@" -s "" "$name" "$(host_prefix "$to")" >"$out" 2>&1 &
    REMUS_PID=$! REMUS_TO=$to
    BG+=("$REMUS_PID")
}
epoch_lines() { grep -a '^remus: epoch [0-9]*:' "$1"; }
epoch_count() { epoch_lines "$1" | wc -l; }
has_epochs() { [ "$(epoch_count "$1")" -ge "$2" ]; }
no_incoming() { ! h_domains "$1" | grep -q -- '--incoming'; }
# remus_protect OUT: wait for the first acknowledged epoch, then 1 s more
# (the first epochs carry what the precopy left behind).
remus_protect() {
    wait_for 60 has_epochs "$1" 1 || fail "no epoch acknowledged within 60 s: $(tail -n 5 "$1")"
    sleep 1
    process_alive "$REMUS_PID" || fail "xl remus ended early: $(tail -n 5 "$1")"
}
# remus_stop: stop protection (TERM: a clean stop), the replica goes.
remus_stop() {
    kill -TERM "$REMUS_PID" 2>/dev/null
    wait "$REMUS_PID"
    wait_for 20 no_incoming "$REMUS_TO" || fail "the replica on $REMUS_TO is still there: $(h_domains "$REMUS_TO" | tr '\n' ' ')"
}
# epoch_stats OUT N0 N1 SECONDS: figures of epoch lines N0+1..N1.
# Fields: remus: epoch N: paused X ms, P pages, B bytes, disk D bytes, ack A ms, F frames released
epoch_stats() {
    local l; l=$(epoch_lines "$1" | sed -n "$(($2 + 1)),$3p")
    [ -n "$l" ] || { echo "pause_med=nan pause_max=nan pages=nan bytes=nan ack=nan frames=nan cps=nan"; return; }
    printf 'pause_med=%s pause_max=%s pages=%s bytes=%s ack=%s frames=%s cps=%s\n' \
        "$(awk '{ print $5 }' <<<"$l" | median)" "$(awk '{ print $5 }' <<<"$l" | maxof)" \
        "$(awk '{ print $7 }' <<<"$l" | median)" "$(awk '{ print $9 }' <<<"$l" | median)" \
        "$(awk '{ print $15 }' <<<"$l" | median)" "$(awk '{ print $17 }' <<<"$l" | median)" \
        "$(awk -v n=$(($3 - $2)) -v s="$4" 'BEGIN { printf "%.1f", n / s }')"
}

# ---- 1 + 2a: the dirty guest -------------------------------------------------
# guest_window H NAME SECONDS: the guest's pages/s and longest gap over the
# next SECONDS (status lines at both ends).
guest_window() {
    local l0 l1 s0
    s0=$(field "$(h_last_status "$1" "$2")" seq)
    sleep "$3"
    l0=$(h_status_lines "$1" "$2" | awk -v s="$s0" '{ for (i = 2; i <= NF; i++) if ($i ~ /^seq=/) { split($i, kv, "="); if (kv[2] + 0 >= s + 0) print; break } }')
    l1=$(tail -n 1 <<<"$l0")
    printf 'rate=%s gap_ms=%s\n' \
        "$(awk -v d0="$(field "$(head -n 1 <<<"$l0")" dirtied)" -v d1="$(field "$l1" dirtied)" \
             -v u0="$(field "$(head -n 1 <<<"$l0")" uptime_ms)" -v u1="$(field "$l1" uptime_ms)" \
             'BEGIN { if (u1 > u0) printf "%.0f", (d1 - d0) * 1000 / (u1 - u0); else print "nan" }')" \
        "$(tail -n +2 <<<"$l0" | tr ' ' '\n' | sed -n 's/^last_gap_us=//p' | maxof | awk '{ if ($1 == "nan") print; else printf "%.1f", $1 / 1000 }')"
}

declare -A R=()   # R[section:mode:figure]
part() { [[ " $PARTS " == *" $1 "* ]]; }
# dirty_guest RATE TAG [CFG_LINE MODES...]: the guest (with the xl.cfg
# line CFG_LINE, if not empty) unprotected, then under xl remus in each
# mode (default: every interval, and -u at 50 ms for the paced guest).
dirty_guest() {
    local rate=$1 tag=$2 ld=${3:-} cfg name=dirty$2 modes=() m out n0 n1 t0 t1 st gw
    shift 2; [ $# -gt 0 ] && shift
    cfg=$(h_write_cfg A "$name.cfg" "$name" "workload=dirty wss=32 rate=$rate" "kernel = \"$kernel\"" \
        ${ld:+"$ld"})
    on A xl create -q "$cfg" || fail "xl create $name"
    wait_for 20 h_has_status_lines A "$name" 2 || fail "$name prints no status lines"
    gw=$(guest_window A "$name" "$WINDOW")
    R[$tag:none:rate]=$(field "$gw" rate) R[$tag:none:gap]=$(field "$gw" gap_ms)
    prog "dirty rate=$rate ${ld:+$ld: }unprotected: $gw"
    if [ $# -gt 0 ]; then
        modes=("$@")
    else
        for m in $INTERVALS; do modes+=("-i $m"); done
        [ "$rate" != 0 ] && modes+=("-i 50 -u")
    fi
    for m in "${modes[@]}"; do
        out=$work/$name-${m// /}.out
        # shellcheck disable=SC2086
        remus_bg A B "$name" "$out" $m
        remus_protect "$out"
        n0=$(epoch_count "$out") t0=$(now_ms)
        gw=$(guest_window A "$name" "$WINDOW")
        n1=$(epoch_count "$out") t1=$(now_ms)
        st=$(epoch_stats "$out" "$n0" "$n1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 }')")
        remus_stop
        R[$tag:$m:stats]=$st R[$tag:$m:rate]=$(field "$gw" rate) R[$tag:$m:gap]=$(field "$gw" gap_ms)
        prog "dirty rate=$rate ${ld:+$ld: }xl remus $m: $st $gw"
        # A guest that printed nothing for the whole window has stopped
        # running: a product bug, not a figure.  Say so, count it, and go
        # on with a fresh guest.
        if [ "$(field "$gw" rate)" = nan ]; then
            STALLED+=("dirty rate=$rate ${ld:+$ld: }under xl remus $m")
            prog "STALLED: the guest printed no status line for ${WINDOW} s under xl remus $m (domain state $(h_domain_state A "$name")); starting it afresh"
            on A xl destroy "$name" || fail "xl destroy $name"
            on A xl create -q "$cfg" || fail "xl create $name"
            wait_for 20 h_has_status_lines A "$name" 2 || fail "$name prints no status lines"
        fi
    done
    on A xl destroy "$name" || fail "xl destroy $name"
    MODES[$tag]=$(printf '%s\n' "${modes[@]}")
}
declare -A MODES=()
STALLED=()
if part dirty; then
    dirty_guest 50000 paced
    dirty_guest 0 unpaced
    # The same unpaced guest with the dirty bitmap instead of the dirty ring,
    # and with a ring 16 times the default (xl.cfg(5) log_dirty,
    # log_dirty_ring), for contrast: see the note in the report.
    dirty_guest 0 bitmap 'log_dirty = "bitmap"' "-i 200" "-i 50"
    dirty_guest 0 ring64k 'log_dirty_ring = 65536' "-i 200" "-i 50"
fi

# ---- 2b + 3: the kv guest ------------------------------------------------------
if part kv || part failover; then
cfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$KV_IP/24" "vif = [ 'bridge=xenbr0' ]" "kernel = \"$kernel\"")
on A xl create -q "$cfg" || fail "xl create kv.cfg"
wait_for 20 h_has_status_lines A kv 1 || fail "the kv guest prints no status lines"
client ping -c 3 -i 0.2 -W 2 "$KV_IP" >/dev/null || fail "no ping answer from the kv guest"
fi
kv_figures() {   # kv_figures MODE: tput then lat, into R[kv:MODE:*]
    local t l
    t=$(client "$LOAD" tput "$KV_IP" $KV_PORT 32 3) || log "note: udp-load tput ($1) failed: $t"
    l=$(client "$LOAD" lat "$KV_IP" $KV_PORT 20000 "$LAT_SECONDS") || log "note: udp-load lat ($1) failed: $l"
    R[kv:$1:rps]=$(field "$t" req_s) R[kv:$1:lost]=$(field "$t" lost) R[kv:$1:late]=$(field "$t" late)
    R[kv:$1:trtt]=$(field "$t" median_us)
    R[kv:$1:lat]=$(field "$l" median_us) R[kv:$1:p99]=$(field "$l" p99_us) R[kv:$1:n]=$(field "$l" requests)
    R[kv:$1:retries]=$(field "$l" retries)
    prog "kv $1: tput: $t"
    prog "kv $1: lat: $l"
}
KV_MODES=()
for m in $INTERVALS; do KV_MODES+=("-i $m"); done
KV_MODES+=("-F -n -i 50")
part kv && kv_figures none
part kv && for m in "${KV_MODES[@]}"; do
    out=$work/kv-${m// /}.out
    # shellcheck disable=SC2086
    remus_bg A B kv "$out" $m
    remus_protect "$out"
    n0=$(epoch_count "$out") t0=$(now_ms)
    kv_figures "$m"
    n1=$(epoch_count "$out") t1=$(now_ms)
    R[kv:$m:stats]=$(epoch_stats "$out" "$n0" "$n1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 }')")
    remus_stop
    prog "kv xl remus $m: ${R[kv:$m:stats]}"
done
# The peer once more at the end (the machine's load drifts): the figure
# the ratios use is the mean of the two.
if part kv; then
    for k in rps lat p99 trtt lost late n; do R[kv:none1:$k]=${R[kv:none:$k]:-}; done
    kv_figures none2
    for k in rps lat p99 trtt; do
        R[kv:none:$k]=$(awk -v a="${R[kv:none1:$k]:-}" -v b="${R[kv:none2:$k]:-}" 'BEGIN { if (a == "" || b == "") print (a == "" ? b : a); else printf "%.1f", (a + b) / 2 }')
    done
fi

# ---- 4. Failover -----------------------------------------------------------------
# The guest is on $cur; each run protects it to $oth and fails over there.
cur=A oth=B LOST=0 FAILED=0
is_running_on() { h_domain_exists "$1" kv && [ "$(h_domain_state "$1" kv | cut -c3)" != p ]; }
failover_run() {   # failover_run SIGNAL XL-REMUS-OPTIONS...
    local sig=$1 out pid kill_ns fo back chk sum cpid; shift
    out=$work/fo-$FO_N.out sum=$work/fo-$FO_N.json
    rm -f "$work/stop"
    remus_bg "$cur" "$oth" kv "$out" "$@"
    remus_protect "$out"
    wait_for 10 h_domain_exists "$oth" kv--incoming || { log "no replica on $oth"; return 1; }
    client python3 "$work/fo-client.py" "$KV_IP" $KV_PORT "$sum" "$work/stop" 1 >"$work/fo-$FO_N.client" 2>&1 &
    cpid=$!
    BG+=("$cpid")
    sleep 2
    pid=$(h_domain_pid "$cur" kv)
    [ -n "$pid" ] || { log "no domain process of kv on $cur"; return 1; }
    kill_ns=$(date +%s%N)
    kill -"$sig" "$pid"
    wait_for 20 is_running_on "$oth" || { log "no failover to $oth within 20 s: $(tail -n 3 "$out")"; kill -KILL "$pid"; return 1; }
    [ "$sig" = STOP ] && kill -KILL "$pid"
    sleep 1.5
    touch "$work/stop"
    wait "$cpid" || log "note: the failover client reports: $(cat "$work/fo-$FO_N.client")"
    wait "$REMUS_PID"
    fo=$(fo_figures "$sum" "$kill_ns")
    back=$(grep -a 'failover:' "$(host_dir "$oth")/log/xl-kv--incoming.log" | tail -n 1)
    chk=$(client python3 "$KV" "$KV_IP" check "$sum" 2>&1)
    local rc=$? cerr
    # An answered increment the backup lost shows either way: as a key
    # that holds less than its last answer (check), or, if the client went
    # on incrementing it after the failover, as an answer that is not the
    # last one plus one (the client's errors).
    local wrong nerr
    wrong=$(sed -n 's/^check: [0-9]* keys, \([0-9]*\) wrong/\1/p' <<<"$chk" | tail -n 1)
    cerr=$(python3 -c 'import json,sys; print("; ".join(json.load(open(sys.argv[1]))["errors"]))' "$sum" 2>&1)
    nerr=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["errors"]))' "$sum" 2>/dev/null || echo 1)
    [ -z "$cerr" ] || { rc=1; chk="the client saw: $cerr; $chk"; }
    [ $rc = 0 ] || LOST=$((LOST + 1))
    FO_MS+=" $(field "$fo" ms)"
    FO_BACK+=" $(sed -n 's/.* \([0-9]*\) ms after the last commit.*/\1/p' <<<"$back")"
    FO_ANS+=" $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered"])' "$sum")"
    FO_CHECK+=" $(( ${wrong:-1} + nerr ))"
    prog "failover $FO_N ($sig, xl remus $*, $cur -> $oth): kill -> first answer $(field "$fo" ms) ms ($(field "$fo" before) answers within 1 ms of it; silences start+length ms: $(field "$fo" gaps)); backup: ${back#*failover: }; $(cat "$work/fo-$FO_N.client"); $(tail -n 1 <<<"$chk")"
    [ $rc = 0 ] || prog "LOST: an answered increment is missing after failover $FO_N: $chk"
    local t=$cur; cur=$oth oth=$t
}
FO_N=0
part failover && for m in "${FO_MODES[@]}"; do
    FO_MS='' FO_BACK='' FO_ANS='' FO_CHECK=''
    sig=${m%% *} opts=${m#* }
    for ((r = 1; r <= runs; r++)); do
        FO_N=$((FO_N + 1))
        # shellcheck disable=SC2086
        failover_run "${sig^^}" $opts || { FAILED=$((FAILED + 1)); prog "failover $FO_N ($m) did not complete"; break; }
    done
    R[fo:$m:ms]=$FO_MS R[fo:$m:back]=$FO_BACK R[fo:$m:ans]=$FO_ANS R[fo:$m:check]=$FO_CHECK
    [ "$FAILED" = 0 ] || break
done

# ---- Report -------------------------------------------------------------------------
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
mx() { tr ' ' '\n' <<<"$1" | grep . | maxof; }
f() { field "${R[$1]:-}" "$2"; }
if part dirty; then
echo
echo "# 1+2a. workload=dirty wss=32 (1 vCPU, 128 MiB): epochs of a ${WINDOW}-s window after 1 s of protection; guest pages/s vs unprotected"
for g in paced unpaced bitmap ring64k; do
    case $g in
    paced) echo "## rate=50000 (paced)" ;;
    unpaced) echo "## rate=0 (as fast as it can)" ;;
    bitmap) echo "## rate=0, log_dirty=\"bitmap\" (the others use the dirty ring, 4096 entries per vCPU unless said)" ;;
    ring64k) echo "## rate=0, log_dirty_ring=65536 (a ring of 256 MiB of writes per vCPU: larger than the working set)" ;;
    esac
    printf '%-12s %9s %9s %9s %10s %8s %8s %10s %9s %6s\n' mode pause_ms pause_max pages/ep bytes/ep ckpt/s ack_ms guest_p/s gap_ms ratio
    printf '%-12s %9s %9s %9s %10s %8s %8s %10s %9s %6s\n' unprotected - - - - - - "${R[$g:none:rate]}" "${R[$g:none:gap]}" 1.00
    mapfile -t modes <<<"${MODES[$g]}"
    for m in "${modes[@]}"; do
        printf '%-12s %9s %9s %9s %10s %8s %8s %10s %9s %6s\n' "$m" "$(f "$g:$m:stats" pause_med)" "$(f "$g:$m:stats" pause_max)" \
            "$(f "$g:$m:stats" pages)" "$(f "$g:$m:stats" bytes)" "$(f "$g:$m:stats" cps)" "$(f "$g:$m:stats" ack)" \
            "${R[$g:$m:rate]}" "${R[$g:$m:gap]}" "$(ratio "${R[$g:$m:rate]}" "${R[$g:none:rate]}")"
    done
done
echo "#   guest_p/s: pages the guest wrote per second (dirtied / uptime_ms); gap_ms: the longest the guest stood still (last_gap_us); ratio: guest_p/s over unprotected"
fi
if part kv; then
echo
echo "# 2b+3. kv guest (1 vCPU, 128 MiB) from the LAN's client: x32 = udp-load tput, 32 in flight, 3 s; lat = sequential INCRs, ${LAT_SECONDS} s"
echo "#   output commit: an answer leaves when its epoch is acknowledged, so x32 is bounded by ~32 x ckpt/s (column bound)"
printf '%-12s %8s %9s %7s %9s %9s %9s %6s %9s %8s %9s %10s\n' mode ckpt/s x32_req/s ratio bound lost/late lat_med lat_n lat_p99 ratio x_nobuf x32_rtt_med
nb=${R[kv:-F -n -i 50:lat]:-}
for m in none1 none2 "${KV_MODES[@]}"; do
    cps=$(f "kv:$m:stats" cps)
    [ "${m#none}" != "$m" ] && cps=-
    bound=$(awk -v c="$cps" 'BEGIN { if (c == "-" || c == "" || c == "nan") print "-"; else printf "%.0f", 32 * c }')
    [ "$m" = "-F -n -i 50" ] && bound=-
    printf '%-12s %8s %9s %7s %9s %9s %9s %6s %9s %8s %9s %10s\n' "$(case $m in none1) echo unprotected ;; none2) echo "unprot. again" ;; *) echo "$m" ;; esac)" "$cps" \
        "${R[kv:$m:rps]:-nan}" "$(ratio "${R[kv:$m:rps]:-}" "${R[kv:none:rps]:-}")" "$bound" "${R[kv:$m:lost]:-}/${R[kv:$m:late]:-}" \
        "${R[kv:$m:lat]:-nan}" "${R[kv:$m:n]:-}" "${R[kv:$m:p99]:-nan}" "$(ratio "${R[kv:$m:lat]:-}" "${R[kv:none:lat]:-}")" \
        "$(ratio "${R[kv:$m:lat]:-}" "$nb")" "${R[kv:$m:trtt]:-nan}"
done
echo "#   ratios against the mean of the two unprotected runs; lat ratio: median over the unprotected guest's; x_nobuf: over -F -n -i 50's (the cost of output commit at that interval: the same checkpoints, no buffering); times in us"
fi
if part failover; then
echo
echo "# 4. failover, no witness: the primary's domain process SIGKILLed (its stream ends: EOF) or SIGSTOPped (a dead host: the stream goes silent, the backup's timeout decides)"
echo "#   first_answer: kill -> first answer from the backup (client resending every 1 ms); backup_log: the backup's own 'N ms after the last commit'"
printf '%-26s %5s %17s %17s %9s %s\n' mode runs first_answer_ms backup_log_ms answered lost
for m in "${FO_MODES[@]}"; do
    printf '%-26s %5s %17s %17s %9s %s\n' "$m" "$(wc -w <<<"${R[fo:$m:ms]:-}")" \
        "$(med "${R[fo:$m:ms]:-}")/$(mx "${R[fo:$m:ms]:-}")" "$(med "${R[fo:$m:back]:-}")/$(mx "${R[fo:$m:back]:-}")" \
        "$(med "${R[fo:$m:ans]:-}")" "$(tr ' ' '\n' <<<"${R[fo:$m:check]:-}" | grep . | tr '\n' ' ')"
done
echo "#   (median/max over runs; answered: increments answered per run, median; lost: per run, keys not holding their last answer plus answers that were not the last one plus one)"
fi
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg); figures are noisy on a shared machine"
if [ ${#STALLED[@]} != 0 ]; then
    echo "# STALLED: the guest stopped running (no status line for a whole window) in: $(printf '%s; ' "${STALLED[@]}")"
    echo "remus-bench: FAIL: ${#STALLED[@]} guest(s) stopped running under xl remus" >&2
fi
if [ "$LOST" != 0 ] || [ "$FAILED" != 0 ] || [ ${#STALLED[@]} != 0 ]; then
    [ "$LOST" = 0 ] && [ "$FAILED" = 0 ] || echo "remus-bench: FAIL: $LOST failover(s) lost an answered increment, $FAILED did not complete" >&2
    exit 1
fi
exit 0
