# Shared helpers for Tandem's integration tests: real guests on /dev/kvm,
# driven through the real xl.  Each test gets its own host state dir.
# Exit codes follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.

set -u
: "${XL:=xl}"
TEST_NAME=$(basename "$0" .sh)

log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# Without a usable /dev/kvm nothing real can run: skip, loudly.
require_kvm() {
    if [ ! -c /dev/kvm ] || ! : 2>/dev/null </dev/kvm; then
        log "SKIP: /dev/kvm is missing or not accessible; this integration test did NOT run"
        exit 77
    fi
    if [ "$(id -u)" != 0 ]; then
        log "SKIP: needs root (KVM, network namespaces); this integration test did NOT run"
        exit 77
    fi
    [ -r "${TANDEM_GUEST_KERNEL:-/nonexistent}" ] || { log "ERROR: TANDEM_GUEST_KERNEL not set or unreadable"; exit 99; }
}

# A fresh host: its own state dir, cleaned up (every domain destroyed) at exit.
new_host() {
    TANDEM_STATE_DIR=$(mktemp -d /tmp/tandem-it.XXXXXX)
    export TANDEM_STATE_DIR
    trap cleanup_host EXIT
}

# clean_state_dir DIR RC [LABEL]: destroys every domain of the host whose
# state is in DIR, shows its logs when the test failed (RC not 0 or 77),
# and removes DIR.
clean_state_dir() {
    local dir=$1 rc=$2 label=${3:+$3: }
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    for d in $(TANDEM_STATE_DIR=$dir domains); do TANDEM_STATE_DIR=$dir "$XL" destroy "$d" >/dev/null 2>&1; done
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        for f in "$dir"/log/*.log "$dir"/console/*.log; do
            [ -f "$f" ] || continue
            log "---- $label$f (last 15 lines)"
            tail -n 15 "$f" >&2
        done
    fi
    rm -rf "$dir"
}

cleanup_host() {
    local rc=$?
    clean_state_dir "${TANDEM_STATE_DIR:-}" $rc
    exit $rc
}

# Names of the domains on this host (not Domain-0).
domains() { "$XL" list 2>/dev/null | awk 'NR > 2 { print $1 }'; }

# write_cfg FILE NAME CMDLINE [extra xl.cfg lines...]
write_cfg() {
    local file=$1 name=$2 cmdline=$3; shift 3
    {
        echo "name = \"$name\""
        echo "memory = 128"
        echo "cmdline = \"$cmdline\""
        for l in "$@"; do echo "$l"; done
    } >"$file"
}

console_log() { echo "$TANDEM_STATE_DIR/console/$1.log"; }
domain_log() { echo "$TANDEM_STATE_DIR/log/xl-$1.log"; }

# Status lines of a domain's console (TANDEM-GUEST seq=...).  Only whole
# lines count: a guest paused (or saved) mid-line finishes it later.
complete_lines() {
    [ -f "$1" ] || return 0
    if [ -n "$(tail -c 1 "$1")" ]; then head -n -1 "$1"; else cat "$1"; fi
}
status_lines() { complete_lines "$(console_log "$1")" | grep -a '^TANDEM-GUEST seq=' | tr -d '\r'; }
last_status() { status_lines "$1" | tail -n 1; }
nstatus() { status_lines "$1" | wc -l; }

# field LINE KEY: the value of key=value in a status line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
    local t=$1; shift
    local end=$(( $(date +%s%N) / 1000000 + t * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt $end ]; do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

has_status_lines() { [ "$(nstatus "$1")" -ge "${2:-1}" ]; }
# process_alive PID: running (a zombie has finished: only its parent, init,
# has not reaped it yet).
process_alive() {
    local st
    st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
domain_exists() { "$XL" list "$1" >/dev/null 2>&1; }
domain_gone() { ! domain_exists "$1"; }

# domain_pid NAME: the domain process's pid, from xl list -l.
domain_pid() { "$XL" list -l "$1" | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' | head -n 1; }
domain_state() { "$XL" list "$1" | awk 'NR == 2 { print $5 }'; }
