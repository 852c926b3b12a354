#!/bin/bash
# Live migration of a 1 GiB, 2-vCPU guest, Tandem against QEMU/KVM on the
# same guest kernel, measured in the same run, idle and at three dirty rates.
#
#   bench/migrate.sh [PREFIX] [RUNS]     (PREFIX defaults to build/prefix, RUNS to 3)
#
# Tandem migrates between two state dirs on this machine (two "hosts"):
#   xl migrate -s "" --json mb "env TANDEM_STATE_DIR=B"   (the transport is a pipe)
# QEMU migrates from one qemu-system-x86_64 to a second started with
# -incoming tcp:127.0.0.1:PORT, driven through QMP with downtime-limit 30 ms
# (Tandem's default --max-downtime) and max-bandwidth unlimited (QEMU 7.2's
# default is 32 MiB/s; Tandem has no limit unless --bandwidth is given).
#
# Each run boots a fresh guest, waits until it has printed 3 status lines
# and (dirty workloads) written its whole working set once, then migrates.
# Figures, each the median of RUNS:
#   total_ms     the whole migration (Tandem: --json total_ms, until xl
#                migrate has destroyed its source copy; QEMU: query-migrate
#                total-time, until the source has sent everything)
#   handover_ms  Tandem: from starting xl migrate to the receiver's "Domain
#                started successfully" (the guest runs on the target); the
#                ratio compares it with QEMU's total-time
#   downtime_ms  as the VMM measures it (Tandem: --json downtime_ms, pause to
#                the target's start report; QEMU: query-migrate downtime)
#   felt_ms      as the guest felt it: the largest last_gap_us of its first
#                two status lines on the target (its TSC runs on across a
#                migration with both VMMs).  "base" is the same over the
#                last two lines before the migration: the gaps this guest
#                sees anyway on this host.
#   bytes        stream bytes (Tandem) / ram transferred (QEMU)
#   rounds       precopy rounds, the first full pass included (Tandem: the
#                --json iterations; QEMU: dirty-sync-count minus the final
#                sync of the stop-and-copy)
#   mb_s         bytes / total_ms (MB = 10^6 bytes)
# Then this machine's limits, measured in the same run: loopback TCP
# (python3 sockets, 2 GiB through 127.0.0.1), a pipe (Tandem's transport
# with -s ""; 2 GiB) and memcpy (256 MiB, best of 5, C compiled into the
# work dir), and Tandem's throughput as a ratio to each: its mb_s, and its
# fastest round's MB/s (the --json iterations' mbps).
# QEMU is the peer when qemu-system-x86_64 is installed (apt-get install
# qemu-system-x86); python3 and a C compiler are needed.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init bench RUNS 3 "$@"
cc=${CC:-cc}
bench_need python3 "$cc"
mem_mb=1024
vcpus=2
wss_pages=$((256 * 256))          # wss=256 MiB in 4 KiB pages
names=(idle dirty5k dirty50k dirty200k)
cmdlines=("workload=idle"
          "workload=dirty wss=256 rate=5000"
          "workload=dirty wss=256 rate=50000"
          "workload=dirty wss=256 rate=200000")

work=$(mktemp -d /tmp/tandem-bench-migrate.XXXXXX)
A=$work/A B=$work/B
mkdir -p "$A" "$B"
qemu_pids() { cat "$work"/qemu-*.pid 2>/dev/null || true; }
cleanup() {
    TANDEM_STATE_DIR=$A "$XL" destroy mb >/dev/null 2>&1 || true
    TANDEM_STATE_DIR=$B "$XL" destroy mb >/dev/null 2>&1 || true
    for p in $(qemu_pids); do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1; }
# status_lines LOG: the whole status lines (the console is written a byte at
# a time: the last line may still be growing; unexpected_irqs comes last).
status_lines() { grep -a '^TANDEM-GUEST seq=.* unexpected_irqs=[0-9]' "$1" 2>/dev/null || true; }

# warm LOG CMDLINE: until the guest's last status line has seq >= 3 and, for
# the dirty workload, dirtied >= the working set (every page written once).
warm() {
    local end=$(( $(now_ns) + 120000000000 )) last
    while :; do
        last=$(status_lines "$1" | tail -n 1)
        if [ -n "$last" ] && [ "$(field "$last" seq)" -ge 3 ]; then
            [[ "$2" != *workload=dirty* ]] && return 0
            [ "$(field "$last" dirtied)" -ge $wss_pages ] && return 0
        fi
        [ "$(now_ns)" -lt $end ] || { echo "bench: $1: the guest did not warm up: ${last:-no status line}" >&2; return 1; }
        sleep 0.1
    done
}

# felt_ms LOG: the largest last_gap_us of the first two status lines in LOG
# (the target's console), in ms; waits for them (30 s).
felt_ms() {
    local end=$(( $(now_ns) + 30000000000 ))
    until [ "$(status_lines "$1" | wc -l)" -ge 2 ]; do
        [ "$(now_ns)" -lt $end ] || { echo "bench: $1: no two status lines after the migration" >&2; return 1; }
        sleep 0.1
    done
    status_lines "$1" | head -n 2 | tr ' ' '\n' | sed -n 's/^last_gap_us=//p' | sort -n | tail -n 1 |
        awk '{ printf "%.1f\n", $1 / 1000 }'
}

# base_ms LOG: the same over the last two status lines before the migration
# (the gaps the guest sees anyway on this host).
base_ms() {
    status_lines "$1" | tail -n 2 | tr ' ' '\n' | sed -n 's/^last_gap_us=//p' | sort -n | tail -n 1 |
        awk '{ printf "%.1f\n", $1 / 1000 }'
}

# QMP and the machine's limits, in python3.
cat >"$work/qmp.py" <<'PY'
import json, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(200):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit(f"qmp: cannot connect to {path}")
    f = s.makefile("rw")
    json.loads(f.readline())

    def cmd(name, **args):
        f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                sys.exit(f"qmp: {name}: {r['error'].get('desc', r['error'])}")
    cmd("qmp_capabilities")
    return cmd

# migrate SOCKET URI: one migration with Tandem's defaults; prints JSON.
src, uri = sys.argv[1], sys.argv[2]
q = connect(src)
q("migrate-set-parameters", **{"downtime-limit": 30, "max-bandwidth": 1 << 40})
q("migrate", uri=uri)
end = time.time() + 600
while True:
    r = q("query-migrate")
    if r.get("status") in ("completed", "failed", "cancelled") or time.time() > end:
        break
    time.sleep(0.01)
ram = r.get("ram", {})
print(json.dumps({"result": "ok" if r.get("status") == "completed" else r.get("status", "timeout"),
                  "total_ms": r.get("total-time", 0), "downtime_ms": r.get("downtime", 0),
                  "setup_ms": r.get("setup-time", 0), "bytes": ram.get("transferred", 0),
                  "rounds": max(ram.get("dirty-sync-count", 1) - 1, 0),
                  "error": r.get("error-desc", "")}))
PY
# xl-migrate.py CMD...: runs `xl migrate --json`, adds handover_ms: from the
# start to the receiver's "Domain started successfully" line on stderr (the
# guest runs on the target; xl then still destroys its source copy).
cat >"$work/xl-migrate.py" <<'PY'
import json, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
handover, err = None, []
for line in p.stderr:
    err.append(line)
    if handover is None and "Domain started successfully" in line:
        handover = (time.monotonic() - t0) * 1000
out = p.stdout.read()
rc = p.wait()
sys.stderr.write("".join(err))
try:
    j = json.loads(out)
except ValueError:
    sys.exit(f"xl migrate exited {rc} with no JSON: {out!r}")
j["handover_ms"] = handover if handover is not None else 0
print(json.dumps(j))
sys.exit(rc)
PY
cat >"$work/limits.py" <<'PY'
import os, socket, sys, threading, time
N, CHUNK = 2 << 30, 1 << 20

def tcp():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    def sink():
        c, _ = srv.accept()
        mv, got = memoryview(bytearray(CHUNK)), 0
        while got < N:
            n = c.recv_into(mv)
            if not n:
                break
            got += n
        c.close()
    t = threading.Thread(target=sink)
    t.start()
    c = socket.create_connection(srv.getsockname())
    buf, sent, t0 = bytes(CHUNK), 0, time.perf_counter()
    while sent < N:
        c.sendall(buf)
        sent += CHUNK
    c.shutdown(socket.SHUT_WR)
    t.join()
    return N / (time.perf_counter() - t0) / 1e6

def pipe():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        mv, got = memoryview(bytearray(CHUNK)), 0
        while got < N:
            n = os.readv(r, [mv])
            if not n:
                break
            got += n
        os._exit(0)
    os.close(r)
    buf, sent, t0 = bytes(CHUNK), 0, time.perf_counter()
    while sent < N:
        sent += os.write(w, buf)
    os.close(w)
    os.waitpid(pid, 0)
    return N / (time.perf_counter() - t0) / 1e6

print(f"{tcp():.0f} {pipe():.0f}")
PY
cat >"$work/memcpy.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(void)
{
    size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b)
        return 1;
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 0;
    for (int i = 0; i < 5; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        memcpy(b, a, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        __asm__ volatile("" : : "r"(b) : "memory");
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (n / s / 1e6 > best)
            best = n / s / 1e6;
    }
    printf("%.0f\n", best);
    return b[n / 2] == 1 ? 0 : 1;
}
C
"$cc" -O2 -o "$work/memcpy" "$work/memcpy.c"

# One figure set per run: "total_ms handover_ms downtime_ms felt_ms base_ms bytes
# rounds best_mb_s" (QEMU: handover = total; best = bytes / total).
tandem_run() {   # tandem_run CMDLINE
    cat >"$A/mb.cfg" <<CFG
name = "mb"
memory = $mem_mb
vcpus = $vcpus
kernel = "$kernel"
cmdline = "$1"
CFG
    rm -f "$A/console/mb.log" "$B/console/mb.log"
    TANDEM_STATE_DIR=$A "$XL" create -q "$A/mb.cfg" || return 1
    warm "$A/console/mb.log" "$1" || { TANDEM_STATE_DIR=$A "$XL" destroy mb; return 1; }
    local base
    base=$(base_ms "$A/console/mb.log")
    if ! TANDEM_STATE_DIR=$A python3 "$work/xl-migrate.py" "$XL" migrate -s "" --json mb \
            "env TANDEM_STATE_DIR=$B" >"$work/out.json" 2>"$work/err"; then
        echo "bench: tandem: xl migrate failed: $(tail -n 3 "$work/err") $(cat "$work/out.json")" >&2
        TANDEM_STATE_DIR=$A "$XL" destroy mb >/dev/null 2>&1 || true
        return 1
    fi
    local felt
    felt=$(felt_ms "$B/console/mb.log") || felt=nan
    TANDEM_STATE_DIR=$B "$XL" destroy mb || return 1
    python3 - "$work/out.json" "$felt" "$base" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
best = max([i["mbps"] for i in j["iterations"]] or [0])
print(f'{j["total_ms"]:.1f} {j["handover_ms"]:.1f} {j["downtime_ms"]:.1f} {sys.argv[2]} {sys.argv[3]} '
      f'{j["bytes"]} {len(j["iterations"])} {best:.0f}')
PY
}

qemu_start() {   # qemu_start ROLE CMDLINE [qemu args...]
    local role=$1 append=$2
    shift 2
    qemu-system-x86_64 -name "tandem-bench-qemu-$role" -accel kvm -M pc -m $mem_mb -smp $vcpus \
        -nodefaults -no-user-config -display none -kernel "$kernel" -append "$append ncpus=$vcpus" \
        -serial "file:$work/qemu-$role.log" -qmp "unix:$work/qemu-$role.qmp,server=on,wait=off" \
        -daemonize -pidfile "$work/qemu-$role.pid" "$@" 2>>"$work/qemu.err" ||
        { echo "bench: qemu ($role) did not start: $(tail -n 3 "$work/qemu.err")" >&2; return 1; }
}
qemu_stop() {
    local p
    for p in $(qemu_pids); do
        kill "$p" 2>/dev/null || true
        while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    done
    rm -f "$work"/qemu-*.pid "$work"/qemu-*.qmp
}
qemu_run() {   # qemu_run CMDLINE
    local port out felt base
    rm -f "$work"/qemu-*.log
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    qemu_start dst "$1" -incoming "tcp:127.0.0.1:$port" || return 1
    qemu_start src "$1" || { qemu_stop; return 1; }
    warm "$work/qemu-src.log" "$1" || { qemu_stop; return 1; }
    base=$(base_ms "$work/qemu-src.log")
    out=$(python3 "$work/qmp.py" "$work/qemu-src.qmp" "tcp:127.0.0.1:$port") || { qemu_stop; return 1; }
    if [ "$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["result"])' "$out")" != ok ]; then
        echo "bench: qemu: migration failed: $out" >&2
        qemu_stop
        return 1
    fi
    felt=$(felt_ms "$work/qemu-dst.log") || felt=nan
    qemu_stop
    python3 - "$out" "$felt" "$base" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
best = j["bytes"] / max(j["total_ms"], 1) / 1000
print(f'{j["total_ms"]:.1f} {j["total_ms"]:.1f} {j["downtime_ms"]:.1f} {sys.argv[2]} {sys.argv[3]} '
      f'{j["bytes"]} {j["rounds"]} {best:.0f}')
PY
}

# measure PEER WORKLOAD CMDLINE: RUNS runs; prints the medians and sets
# m[total handover down felt base bytes rounds best] (empty if every run failed).
keys=(total handover down felt base bytes rounds best)
declare -A m
measure() {
    local peer=$1 name=$2 cmdline=$3 i r k rows=()
    for i in $(seq "$runs"); do
        if r=$(${peer}_run "$cmdline"); then rows+=("$r"); fi
    done
    for k in "${!keys[@]}"; do
        m[${keys[$k]}]=
        [ ${#rows[@]} = 0 ] || m[${keys[$k]}]=$(printf '%s\n' "${rows[@]}" | awk -v c=$((k + 1)) '{ print $c }' | median)
    done
    if [ ${#rows[@]} = 0 ]; then
        printf '%-7s %-9s every run failed\n' "$peer" "$name"
        return 0
    fi
    printf '%-7s %-9s total_ms=%s handover_ms=%s downtime_ms=%s felt_ms=%s (base %s) bytes=%s rounds=%s mb_s=%.0f  (median of %s/%s runs)\n' \
        "$peer" "$name" "${m[total]}" "${m[handover]}" "${m[down]}" "${m[felt]}" "${m[base]}" "${m[bytes]}" \
        "${m[rounds]}" "$(awk -v b="${m[bytes]}" -v t="${m[total]}" 'BEGIN { print b / t / 1000 }')" "${#rows[@]}" "$runs"
}

have_qemu=false
command -v qemu-system-x86_64 >/dev/null && have_qemu=true
echo "# ${mem_mb} MiB guest, $vcpus vCPUs; downtime target 30 ms; $runs runs each; $(nproc) host CPUs"
declare -A t_total t_bytes t_best
for w in "${!names[@]}"; do
    name=${names[$w]} cmdline=${cmdlines[$w]}
    echo "# $name: $cmdline"
    measure tandem "$name" "$cmdline"
    declare -A t=()
    for k in "${keys[@]}"; do t[$k]=${m[$k]}; done
    t_total[$name]=${t[total]} t_bytes[$name]=${t[bytes]} t_best[$name]=${t[best]}
    if $have_qemu; then
        measure qemu "$name" "$cmdline"
        if [ -n "${t[total]}" ] && [ -n "${m[total]}" ]; then
            awk -v n="$name" -v a="${t[total]}" -v b="${m[total]}" -v h="${t[handover]}" -v c="${t[down]}" \
                -v d="${m[down]}" -v e="${t[felt]}" -v f="${m[felt]}" -v g="${t[bytes]}" -v hh="${m[bytes]}" \
                -v i="${t[rounds]}" -v j="${m[rounds]}" '
                function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "n/a" }
                BEGIN { printf "ratio   %-9s tandem/qemu: total=%s handover=%s downtime=%s felt=%s bytes=%s rounds=%s\n",
                        n, r(a, b), r(h, b), r(c, d), r(e, f), r(g, hh), r(i, j) }'
        fi
    fi
done
$have_qemu || echo "qemu    not installed (apt-get install qemu-system-x86): no peer figures this run"

read -r tcp_mb_s pipe_mb_s < <(python3 "$work/limits.py")
memcpy_mb_s=$("$work/memcpy")
echo "# this machine: loopback TCP ${tcp_mb_s} MB/s, pipe ${pipe_mb_s} MB/s, memcpy ${memcpy_mb_s} MB/s"
for name in "${names[@]}"; do
    [ -n "${t_total[$name]}" ] || continue
    awk -v b="${t_bytes[$name]}" -v t="${t_total[$name]}" -v best="${t_best[$name]}" -v tcp="$tcp_mb_s" \
        -v pipe="$pipe_mb_s" -v mem="$memcpy_mb_s" -v n="$name" '
        BEGIN { mb = b / t / 1000
                printf "ratio   %-9s tandem mb_s=%.0f: /tcp=%.3f /pipe=%.3f /memcpy=%.3f; fastest round %.0f MB/s: /tcp=%.3f /pipe=%.3f /memcpy=%.3f\n",
                       n, mb, mb / tcp, mb / pipe, mb / mem, best, best / tcp, best / pipe, best / mem }'
done
