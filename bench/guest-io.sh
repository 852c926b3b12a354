#!/bin/bash
# Guest I/O through Tandem's virtio-net and virtio-blk, against the host
# alone doing the same on the same machine in the same run.
#
#   bench/guest-io.sh [PREFIX] [RUNS]   (PREFIX defaults to build/prefix, RUNS to 3)
#
# The LAN is tests/integration/hosts.sh's: host A (a network namespace)
# with bridge xenbr0, uplinked to a switch namespace (sw0) where a client
# namespace (10.99.0.1) plays the outside world.  On xenbr0 sit
#   guest  a kv guest (workload=kv ip=10.99.0.10, vif = ['bridge=xenbr0'],
#          1 vCPU, 128 MiB): tap + VMM + guest driver and stack
#   host   a plain network namespace (10.99.0.20) on a veth in the same
#          xenbr0: the host's own kernel answers, and bench/io-peer.py
#          kv-serve serves the same kv protocol there (python3); and, for
#          raw frames, a bare tap (tsink0, 10.99.0.30) read by udp-load
# so the two paths differ only by tap + VMM + guest.  The client programs
# are the same for both: ping, and bench/udp-load.c (compiled into the
# work dir; sendmmsg/recvmmsg, so it can outrun the host-side server).
#
# Figures, each the median over RUNS (the two peers alternate in each run):
#   ping        ping -c 500 -i 0.002 from the client: median and p99 RTT (us)
#   kv_lat      udp-load lat: 2000 sequential INCRs with ids, one in flight:
#               median and p99 round trip (us)
#   kv_tput     udp-load tput: 32 INCRs in flight for 3 s: answers/s and
#               UDP payload bytes/s (requests + answers); the client's and
#               the server's CPU (server = the whole domain process, every
#               thread, or the python process) say which side limited
#   rx_fps      udp-load blast: 18-byte UDP datagrams (60-byte frames) to an
#               unused port for 3 s, as fast as one client sends them, per
#               second of blasting: frames the guest took (rx_frames in its
#               status lines, from the line before the blast to the first
#               line after it, so what was still queued in the tap counts)
#               vs frames a bare reader took from a tap in the same xenbr0
#               (udp-load tapsink: one read() per frame until the queue is
#               empty, as the VMM reads its tap, then a 100-us nap, so that
#               the sender never pays for waking it: the most this sender
#               gets through the bridge into a tap); with the sender's rate
#               and the taps' drops (queue full), which say which side limited
#   disk        workload=disklog rate=0 fullpass=0 with flush_every=1 and
#               64 on a fresh sparse 256 MiB raw image: records/s and MB/s
#               over 3 status-line intervals (disklog_written / uptime_ms)
#               vs io-peer.py disk: the same 512-byte records with pwrite,
#               an fdatasync every 1 / 64, into a fresh sparse file of the
#               same size in the same directory (same filesystem), for 3 s
# Ratios are guest/host: above 1 for latencies and below 1 for rates mean
# the guest is slower.  GUEST_OPTS in the environment is appended to both
# guests' command lines (for example GUEST_OPTS=virtio_poll=1: the guest
# spins on its rings instead of waiting for interrupts).  The machine's
# load average is printed at the start and the end: other work on it
# shows in the tails.  Needs root, /dev/kvm, iproute2 (ip, bridge), ping,
# python3, cc.
set -uo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init bench RUNS 3 "$@"
bench_need root ip bridge ping python3 "${CC:-cc}"

work=$(mktemp -d /tmp/tandem-bench-io.XXXXXX) || die "mktemp"
# hosts.sh's cleanup (domains, namespaces and what runs in them, state
# dirs) chains to this trap, and runs on Ctrl-C too.
trap 'rm -rf "$work"' EXIT
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/hosts.sh"
TEST_NAME=guest-io
"${CC:-cc}" -O2 -Wall -Wextra -o "$work/udp-load" "$bench/udp-load.c" || die "cannot compile udp-load.c"
LOAD=$work/udp-load PEER=$bench/io-peer.py
require_kvm

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }
# pctl P: the P-th percentile (nearest rank) of the numbers on stdin.
pctl() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; print a[r] }'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }   # utime + stime, every thread
# machine_ticks: "busy total" clock ticks of all CPUs (busy = not idle, not iowait)
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
HZ_TICKS=$(getconf CLK_TCK)

# ---- The LAN: host A's xenbr0, and the plain namespace on it -------------
new_hosts A
new_lan A
NS_A=$(host_ns A)
GUEST_IP=$(lan_guest_ip 0) HOST_IP=$LAN_NET.20 KV_PORT=7000 SINK_PORT=9
PEER_NS=tandem-$$-peer
HOSTS_EXTRA_NS+=("$PEER_NS")
ip netns add "$PEER_NS" && ip -n "$PEER_NS" link set lo up &&
    ip -n "$NS_A" link add peer0 type veth peer name eth0 netns "$PEER_NS" &&
    ip -n "$NS_A" link set peer0 master xenbr0 up &&
    ip -n "$PEER_NS" addr add "$HOST_IP/24" dev eth0 &&
    ip -n "$PEER_NS" link set eth0 up || fail "cannot attach the plain namespace to xenbr0"
# The host-alone peer for raw frames: a bare tap in the same xenbr0, read
# by udp-load tapsink as the VMM reads its tap (one read() per frame),
# behind an address the client knows a fixed MAC for (the bridge learns
# it from the one frame tapsink sends first).
SINK_TAP=tsink0 SINK_IP=$LAN_NET.30 SINK_MAC=02:00:00:00:00:30
ip -n "$NS_A" tuntap add dev $SINK_TAP mode tap &&
    ip -n "$NS_A" link set $SINK_TAP master xenbr0 up &&
    client ip neigh replace $SINK_IP lladdr $SINK_MAC dev eth0 nud permanent || fail "cannot set up the tap sink"
# ip netns exec execs python3: $! is the server's own pid (for its CPU
# time); disown, so its end in the cleanup is not reported as a job.
ip netns exec "$PEER_NS" python3 "$PEER" kv-serve $KV_PORT &
SERVER_PID=$!
disown $SERVER_PID

# ---- The kv guest ----------------------------------------------------------
cfg=$(h_write_cfg A kv.cfg kv "workload=kv ip=$GUEST_IP/24${GUEST_OPTS:+ $GUEST_OPTS}" "vif = [ 'bridge=xenbr0' ]" "kernel = \"$kernel\"")
on A xl create -q "$cfg" || fail "xl create kv.cfg"
wait_for 20 h_has_status_lines A kv 1 || fail "the kv guest prints no status lines"
netup=$(grep -a '^TANDEM-GUEST net up' "$(h_console_log A kv)") || fail "the kv guest found no NIC"
VMM_PID=$(h_domain_pid A kv)
domid=$(on A xl list kv | awk 'NR == 2 { print $2 }')
TAP=vif$domid.0
for ip in "$GUEST_IP" "$HOST_IP"; do
    client ping -c 3 -i 0.2 -W 2 "$ip" >/dev/null || fail "no ping answer from $ip"
done
client "$LOAD" lat "$HOST_IP" $KV_PORT 10 2 >/dev/null || fail "the host-side kv server does not answer"
echo "# $(nproc) host CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $runs runs; guest: 1 vCPU, 128 MiB, irq=$(field "$netup" irq)${GUEST_OPTS:+, $GUEST_OPTS}, tap $TAP; host: namespace $HOST_IP on a veth in the same xenbr0"

declare -A V=()   # V[figure]="value value ..." (one per run)
put() { V[$1]="${V[$1]:-} $2"; }
med() { tr ' ' '\n' <<<"${V[$1]:-}" | grep . | median; }

# ping_run PEER ADDR
ping_run() {
    local out t
    out=$(client ping -c 500 -i 0.002 -W 1 "$2" 2>&1)
    t=$(grep -o 'time=[0-9.]*' <<<"$out" | cut -d= -f2 | awk '{ print $1 * 1000 }')
    [ -n "$t" ] || { log "ping $2: no answers: $(tail -n 2 <<<"$out")"; return 1; }
    put "ping_med_$1" "$(pctl 50 <<<"$t")"
    put "ping_p99_$1" "$(pctl 99 <<<"$t")"
    put "ping_loss_$1" "$(grep -o '[0-9.]*% packet loss' <<<"$out" | cut -d% -f1)"
}

# kvlat_run PEER ADDR
kvlat_run() {
    local out
    out=$(client "$LOAD" lat "$2" $KV_PORT 2000 5) || { log "kv lat $2: $out"; return 1; }
    put "kvlat_med_$1" "$(field "$out" median_us)"
    put "kvlat_p99_$1" "$(field "$out" p99_us)"
    put "kvlat_retries_$1" "$(field "$out" retries)"
}

# tput_run PEER ADDR SERVER_PID
tput_run() {
    local out t0 t1 c0 c1 m0 m1
    c0=$(ticks "$3") t0=$(now_ms) m0=$(machine_ticks)
    out=$(client "$LOAD" tput "$2" $KV_PORT 32 3) || { log "kv tput $2: $out"; return 1; }
    c1=$(ticks "$3") t1=$(now_ms) m1=$(machine_ticks)
    put "tput_mcpu_$1" "$(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')"
    put "tput_rps_$1" "$(field "$out" req_s)"
    put "tput_bps_$1" "$(field "$out" bytes_s)"
    put "tput_rtt_$1" "$(field "$out" median_us)"
    put "tput_lost_$1" "$(field "$out" lost)"
    put "tput_ccpu_$1" "$(field "$out" cpu_pct)"
    put "tput_scpu_$1" "$(awk -v c=$((c1 - c0)) -v hz="$HZ_TICKS" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", 100 * c / hz / (ms / 1000) }')"
}

guest_rx() { field "$(h_last_status A kv)" rx_frames; }
guest_seq() { field "$(h_last_status A kv)" seq; }
tap_stat() { ip netns exec "$NS_A" cat "/sys/class/net/$1/statistics/$2"; }

# blast_run PEER ADDR TAP: frames per second the peer took out of its tap
# during a 3 s blast (guest: rx_frames; host: udp-load tapsink's count).
blast_run() {
    local out sent got seq dr0 dr1 sink
    if [ "$1" = guest ]; then
        seq=$(guest_seq)
        wait_for 3 eval '[ "$(guest_seq)" -gt "$seq" ]'      # a fresh line just before
        got=$(guest_rx)
    else
        sink=$work/sink.out
        ip netns exec "$NS_A" "$LOAD" tapsink "$3" $SINK_MAC 5 >"$sink" &
        local spid=$!
        wait_for 3 grep -q ready "$sink" || { log "tapsink did not start"; kill $spid; return 1; }
        # Unlearnt, the frames would be flooded to every port of xenbr0.
        bridge -n "$NS_A" fdb show br xenbr0 | grep -q "^$SINK_MAC dev $3 " ||
            { log "xenbr0 has not learnt $SINK_MAC on $3"; wait $spid; return 1; }
    fi
    dr0=$(tap_stat "$3" tx_dropped)
    out=$(client "$LOAD" blast "$2" $SINK_PORT 3 18) || { log "blast $2: $out"; return 1; }
    dr1=$(tap_stat "$3" tx_dropped)
    if [ "$1" = guest ]; then
        sleep 0.2                                   # the tap's queue drains
        seq=$(guest_seq)
        wait_for 3 eval '[ "$(guest_seq)" -gt "$seq" ]'
        got=$(( $(guest_rx) - got ))
    else
        wait $spid
        got=$(field "$(cat "$sink")" frames)
    fi
    put "rx_fps_$1" "$(awk -v g="$got" -v s="$(field "$out" seconds)" 'BEGIN { printf "%.0f", g / s }')"
    put "rx_drop_$1" "$(awk -v d=$((dr1 - dr0)) -v s="$(field "$out" seconds)" 'BEGIN { printf "%.0f", d / s }')"
    put "rx_sent_$1" "$(field "$out" pps)"
}

# ---- Network figures ------------------------------------------------------
for r in $(seq "$runs"); do
    ping_run guest "$GUEST_IP"; ping_run host "$HOST_IP"
    kvlat_run guest "$GUEST_IP"; kvlat_run host "$HOST_IP"
    tput_run guest "$GUEST_IP" "$VMM_PID"; tput_run host "$HOST_IP" "$SERVER_PID"
    blast_run guest "$GUEST_IP" "$TAP"; blast_run host "$SINK_IP" "$SINK_TAP"
    printf 'run %s: ping %s/%s us, kv %s/%s us, kv_tput %s/%s req/s, rx %s/%s frames/s (guest/host)\n' "$r" \
        "$(awk '{ print $NF }' <<<"${V[ping_med_guest]}")" "$(awk '{ print $NF }' <<<"${V[ping_med_host]}")" \
        "$(awk '{ print $NF }' <<<"${V[kvlat_med_guest]}")" "$(awk '{ print $NF }' <<<"${V[kvlat_med_host]}")" \
        "$(awk '{ print $NF }' <<<"${V[tput_rps_guest]}")" "$(awk '{ print $NF }' <<<"${V[tput_rps_host]}")" \
        "$(awk '{ print $NF }' <<<"${V[rx_fps_guest]}")" "$(awk '{ print $NF }' <<<"${V[rx_fps_host]}")"
done
st=$(h_last_status A kv)
for k in kv_errors rx_dropped tx_dropped rx_bad_csum; do
    [ "$(field "$st" $k)" = 0 ] || log "note: the kv guest counts $k=$(field "$st" $k): $st"
done
on A xl destroy kv || fail "xl destroy kv"

# ---- Block figures ----------------------------------------------------------
DISK_MB=256
running_line() {   # the first status line with disklog_state=running
    h_status_lines A "$1" | grep -a 'disklog_state=running' | grep -av 'disklog_written=0 ' | head -n 1
}
# disk_guest FLUSH_EVERY: records/s of workload=disklog rate=0
disk_guest() {
    local img=$work/guest-$1.img name=dl$1 cfg l0 l1 s0
    rm -f "$img"; truncate -s ${DISK_MB}M "$img"
    cfg=$(h_write_cfg A "$name.cfg" "$name" "workload=disklog rate=0 flush_every=$1 fullpass=0${GUEST_OPTS:+ $GUEST_OPTS}" \
        "disk = [ 'format=raw,vdev=xvda,access=rw,target=$img' ]" "kernel = \"$kernel\"")
    rm -f "$(h_console_log A "$name")"
    on A xl create -q "$cfg" || { log "xl create $name.cfg failed"; return 1; }
    wait_for 30 eval '[ -n "$(running_line '"$name"')" ]' || { log "disklog does not run: $(h_last_status A "$name")"; on A xl destroy "$name"; return 1; }
    l0=$(running_line "$name") s0=$(field "$l0" seq)
    wait_for 10 h_has_lines_after A "$name" $((s0 + 2)) || { log "disklog: no 3 more status lines"; on A xl destroy "$name"; return 1; }
    l1=$(h_lines_after A "$name" $((s0 + 2)) | head -n 1)
    on A xl destroy "$name"
    [ "$(field "$l1" disklog_errors)" = 0 ] && [ "$(field "$l1" disklog_state)" = running ] ||
        log "note: disklog flush_every=$1 is not clean: $l1"
    rm -f "$img"
    awk -v w0="$(field "$l0" disklog_written)" -v w1="$(field "$l1" disklog_written)" \
        -v u0="$(field "$l0" uptime_ms)" -v u1="$(field "$l1" uptime_ms)" \
        'BEGIN { printf "%.0f\n", (w1 - w0) * 1000 / (u1 - u0) }'
}
disk_host() {
    local f=$work/host-$1.img out
    rm -f "$f"; truncate -s ${DISK_MB}M "$f"
    out=$(python3 "$PEER" disk "$f" 3 "$1") || { log "io-peer.py disk: $out"; return 1; }
    rm -f "$f"
    field "$out" rec_s
}
for r in $(seq "$runs"); do
    line="run $r: disk records/s (guest/host)"
    for fe in 1 64; do
        g=$(disk_guest $fe) && put "disk_${fe}_guest" "$g"
        h=$(disk_host $fe) && put "disk_${fe}_host" "$h"
        line+=" flush_every=$fe ${g:-nan}/${h:-nan}"
    done
    echo "$line"
done

# ---- Report -----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
mbs() { awk -v r="$1" 'BEGIN { if (r == "nan") print "nan"; else printf "%.2f\n", r * 512 / 1e6 }'; }
# limit PEER: which side limited the windowed kv run
limit() {
    local c s m
    c=$(med "tput_ccpu_$1") s=$(med "tput_scpu_$1") m=$(med "tput_mcpu_$1")
    awk -v c="$c" -v s="$s" -v m="$m" -v p="$1" -v n="$(nproc)" 'BEGIN {
        if (c >= 90) print "the client (its CPU " c "%)"
        else if (p == "host" && s >= 90) print "the server (python at " s "% of a CPU)"
        else if (p == "guest" && s >= 90) print "the guest side (domain process at " s "% CPU)"
        else if (m >= 90) print "the machine (all " n " CPUs " m "% busy: client " c "%, server " s "%, the rest kernel/other)"
        else print "round trips (client " c "%, server " s "%, machine " m "% busy)" }'
}
echo
echo "# medians of $runs runs; guest = Tandem kv/disklog guest, host = the host alone (plain namespace / python / file)"
printf '%-28s %12s %12s %10s\n' figure guest host guest/host
row() { printf '%-28s %12s %12s %10s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
row "ping median (us)" "$(med ping_med_guest)" "$(med ping_med_host)"
row "ping p99 (us)" "$(med ping_p99_guest)" "$(med ping_p99_host)"
row "kv round trip median (us)" "$(med kvlat_med_guest)" "$(med kvlat_med_host)"
row "kv round trip p99 (us)" "$(med kvlat_p99_guest)" "$(med kvlat_p99_host)"
row "kv x32 requests/s" "$(med tput_rps_guest)" "$(med tput_rps_host)"
row "kv x32 payload bytes/s" "$(med tput_bps_guest)" "$(med tput_bps_host)"
row "kv x32 rtt median (us)" "$(med tput_rtt_guest)" "$(med tput_rtt_host)"
row "rx 60-byte frames/s (tap)" "$(med rx_fps_guest)" "$(med rx_fps_host)"
row "disk fe=1 records/s" "$(med disk_1_guest)" "$(med disk_1_host)"
row "disk fe=1 MB/s" "$(mbs "$(med disk_1_guest)")" "$(mbs "$(med disk_1_host)")"
row "disk fe=64 records/s" "$(med disk_64_guest)" "$(med disk_64_host)"
row "disk fe=64 MB/s" "$(mbs "$(med disk_64_guest)")" "$(mbs "$(med disk_64_host)")"
echo
echo "# kv x32 limited by: guest: $(limit guest); host: $(limit host)"
echo "#   CPU guest/host runs: client $(med tput_ccpu_guest)%/$(med tput_ccpu_host)%, server $(med tput_scpu_guest)%/$(med tput_scpu_host)%, machine $(med tput_mcpu_guest)%/$(med tput_mcpu_host)% of $(nproc) CPUs; lost $(med tput_lost_guest)/$(med tput_lost_host) per run"
# rx_limit PEER: did the peer take all the sender sent (then the sender limited)?
rx_limit() {
    awk -v g="$(med "rx_fps_$1")" -v s="$(med "rx_sent_$1")" -v d="$(med "rx_drop_$1")" 'BEGIN {
        if (s > 0 && g >= 0.99 * s) print "the sender (took all of " s "/s)"
        else printf "the reader (took %.0f%% of %s/s; the tap dropped %s/s, its queue full)\n", (s > 0 ? 100 * g / s : 0), s, d }'
}
echo "# rx frames limited by: guest: $(rx_limit guest); host: $(rx_limit host)"
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ping loss guest/host $(med ping_loss_guest)%/$(med ping_loss_host)%; kv_lat retries guest/host $(med kvlat_retries_guest)/$(med kvlat_retries_host)"
