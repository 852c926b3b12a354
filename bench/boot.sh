#!/bin/bash
# Boot latency and per-domain memory overhead, Tandem against QEMU/KVM on
# the same guest kernel, measured in the same run.
#
#   bench/boot.sh [PREFIX] [RUNS]     (PREFIX defaults to build/prefix)
#
# Figures:
#   create_to_boot_ms    from starting `xl create` (or qemu) to the guest's
#                        boot line on its console (the VMM's part)
#   create_to_status_ms  ... to its first status line (the guest reports once
#                        a second, so this adds about a second of guest time)
#   overhead_kib         resident memory of the domain process (or qemu)
#                        minus what the guest's own RAM mapping has resident
# QEMU is the peer when qemu-system-x86_64 is installed (apt-get install
# qemu-system-x86); it is not installed by the build or by CI.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init bench RUNS 5 "$@"
mem_mb=128

now_ns() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# overhead PID: RSS minus the RSS of the guest-RAM mapping (the largest
# mapping of at least the guest's memory size).
overhead_kib() {
    awk -v min=$((mem_mb * 1024)) '
        /^[0-9a-f]+-[0-9a-f]+ / { cur = "" }
        /^Size:/ { size = $2 }
        /^Rss:/ { total += $2; if (size >= min && size > best) { best = size; guest = $2 } }
        END { print total - guest }' "/proc/$1/smaps"
}

wait_line() {   # wait_line FILE PATTERN: until a console line matches (20 s)
    local end=$(( $(now_ns) + 20000000000 ))
    until grep -aq "$2" "$1" 2>/dev/null; do
        [ "$(now_ns)" -lt $end ] || { echo "bench: no '$2' in $1" >&2; return 1; }
        sleep 0.002
    done
}

export TANDEM_STATE_DIR=$(mktemp -d /tmp/tandem-bench.XXXXXX)
cleanup() { "$XL" destroy bench >/dev/null 2>&1 || true; pkill -f "tandem-bench-qemu" 2>/dev/null || true; rm -rf "$TANDEM_STATE_DIR"; }
trap cleanup EXIT
cat >"$TANDEM_STATE_DIR/bench.cfg" <<CFG
name = "bench"
memory = $mem_mb
vcpus = 1
kernel = "$kernel"
cmdline = "workload=idle"
CFG

# One boot: records the boot-line and status-line latencies and overhead.
record() {   # record CONSOLE_LOG START_NS PID_COMMAND
    wait_line "$1" '^TANDEM-GUEST boot'
    boot+=($(( ($(now_ns) - $2) / 1000000 )))
    wait_line "$1" '^TANDEM-GUEST seq='
    status+=($(( ($(now_ns) - $2) / 1000000 )))
    sleep 1
    ovh+=($(overhead_kib "$($3)"))
}
report() {   # report NAME: prints the medians, sets m_boot m_status m_ovh
    m_boot=$(printf '%s\n' "${boot[@]}" | median)
    m_status=$(printf '%s\n' "${status[@]}" | median)
    m_ovh=$(printf '%s\n' "${ovh[@]}" | median)
    printf '%-7s create_to_boot_ms=%s create_to_status_ms=%s overhead_kib=%s  (median of %s runs)\n' \
        "$1" "$m_boot" "$m_status" "$m_ovh" "$runs"
}

tandem_pid() { "$XL" list -l bench | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' | head -1; }
boot=(); status=(); ovh=()
for i in $(seq "$runs"); do
    rm -f "$TANDEM_STATE_DIR/console/bench.log"
    s=$(now_ns)
    "$XL" create -q "$TANDEM_STATE_DIR/bench.cfg"
    record "$TANDEM_STATE_DIR/console/bench.log" "$s" tandem_pid
    "$XL" destroy bench
done
report tandem
t_boot=$m_boot t_status=$m_status t_ovh=$m_ovh

if command -v qemu-system-x86_64 >/dev/null; then
    qemu_pid() { cat "$TANDEM_STATE_DIR/qemu.pid"; }
    boot=(); status=(); ovh=()
    for i in $(seq "$runs"); do
        log=$TANDEM_STATE_DIR/qemu.log
        rm -f "$log" "$TANDEM_STATE_DIR/qemu.pid"
        s=$(now_ns)
        # A PC machine: the guest calibrates its clock against its PIT gate.
        qemu-system-x86_64 -name tandem-bench-qemu -accel kvm -M pc \
            -m $mem_mb -smp 1 -nodefaults -no-user-config -display none \
            -kernel "$kernel" -append "workload=idle" -serial "file:$log" -daemonize \
            -pidfile "$TANDEM_STATE_DIR/qemu.pid"
        record "$log" "$s" qemu_pid
        qpid=$(qemu_pid)
        kill "$qpid"; while kill -0 "$qpid" 2>/dev/null; do sleep 0.05; done
    done
    report qemu
    awk -v a="$t_boot" -v b="$m_boot" -v c="$t_status" -v d="$m_status" -v e="$t_ovh" -v f="$m_ovh" \
        'BEGIN { printf "ratio   boot tandem/qemu=%.2f  status tandem/qemu=%.2f  overhead tandem/qemu=%.3f\n", a / b, c / d, e / f }'
else
    echo "qemu    not installed (apt-get install qemu-system-x86): no peer figures this run"
fi
