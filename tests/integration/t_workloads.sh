#!/bin/bash
# Each workload boots, reports well-formed status lines at least once a
# second, and checks itself clean.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host

check_workload() {
    local wl=$1 args=$2 name=wl-$1
    write_cfg "$TANDEM_STATE_DIR/$name.cfg" "$name" "workload=$wl $args"
    "$XL" create -q "$TANDEM_STATE_DIR/$name.cfg" || fail "$wl: xl create failed"
    wait_for 15 has_status_lines "$name" 4 || fail "$wl: fewer than 4 status lines in 15 s"
    local first last
    first=$(status_lines "$name" | head -n 1)
    last=$(last_status "$name")
    for key in seq uptime_ms ticks workload verify_errors max_gap_us; do
        [ -n "$(field "$last" $key)" ] || fail "$wl: status line lacks $key: $last"
    done
    [ "$(field "$last" workload)" = "$wl" ] || fail "$wl: status says workload=$(field "$last" workload)"
    [ "$(field "$last" verify_errors)" = 0 ] || fail "$wl: verify_errors in: $last"
    [ "$(field "$last" ticks)" -gt "$(field "$first" ticks)" ] || fail "$wl: ticks did not advance"
    [ "$(field "$last" uptime_ms)" -gt "$(field "$first" uptime_ms)" ] || fail "$wl: uptime did not advance"
    # At least one line a second: 4 lines cover no more than ~4 s of uptime.
    local span=$(( $(field "$last" uptime_ms) - $(field "$first" uptime_ms) ))
    local lines=$(nstatus "$name")
    [ $(( span / 1000 )) -le "$lines" ] || fail "$wl: $lines lines over $span ms"
    log "$wl ok: $last"
    echo "$last"
}

check_workload idle ""
last=$(check_workload dirty "wss=16")
[ "$(field "$last" dirtied)" -gt 0 ] || fail "dirty: nothing dirtied: $last"
last=$(check_workload verify "wss=16")
[ "$(field "$last" verified)" -gt 0 ] || fail "verify: nothing verified: $last"
[ "$(field "$last" gen)" -gt 0 ] || fail "verify: no page rewritten: $last"
# Every guest runs at once here: three domains listed, distinct IDs.
[ "$(domains | wc -l)" = 3 ] || fail "expected 3 domains, have: $(domains | tr '\n' ' ')"
[ "$("$XL" list | awk 'NR > 2 { print $2 }' | sort -u | wc -l)" = 3 ] || fail "domain IDs are not distinct"
exit 0
