#!/bin/bash
# Cross-version compatibility with the previous release (the promise in
# docs/compatibility.md): this build and the previous release migrate a
# running guest both ways, and this build restores an image the previous
# release saved.  Two hosts in network namespaces, OLD running the previous
# release's xl (and its test guest), NEW this build's:
#
#   previous -> current  the old sender does not negotiate: stream v3
#   current -> previous  the old receiver refuses --negotiate; the sender
#                        retries without it and sends stream v2
#   xl save on OLD, xl restore on NEW
#
# for verify-workload guests (2 vCPUs) booted by either release's kernel,
# which must run on after every step with no verify error (one with a
# config setting the previous release does not know).
#
# The previous release is built from git (a temporary worktree of the
# commit below, removed again), out of tree into a cache that later runs
# reuse: $TANDEM_PREV_BUILD, default <top builddir>/prev-<release>.  No git
# checkout, or a clone without that commit (a shallow one): SKIP, loudly.
# If the previous release does not build, the test fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"

PREVIOUS_RELEASE=1.0.0
PREVIOUS_COMMIT=22627ec9736e38386727b8a1f343100da9f3429d   # release 1.0.0

require_kvm
: "${TOP_SRCDIR:?TOP_SRCDIR is not set (run through make check)}"
top_builddir=$(cd "$(dirname "$XL")/.." && pwd)
PREV=${TANDEM_PREV_BUILD:-$top_builddir/prev-$PREVIOUS_RELEASE}

# ---- The previous release's build ---------------------------------------
skip() { log "SKIP: $*; the cross-version test did NOT run"; exit 77; }

# build_previous: builds $PREVIOUS_COMMIT into $PREV/obj unless a build of
# it is there already.
build_previous() {
    local src t0 rc=0
    mkdir -p "$PREV" || { log "ERROR: cannot create $PREV"; exit 99; }
    # One build at a time: a second run waits, then reuses it.
    exec 9>"$PREV/.lock"
    if command -v flock >/dev/null; then flock 9; fi
    if [ "$(cat "$PREV/.built" 2>/dev/null)" = "$PREVIOUS_COMMIT" ] && [ -x "$PREV/obj/tools/xl" ] &&
       [ -r "$PREV/obj/tests/guests/tandem-guest" ]; then
        log "previous release $PREVIOUS_RELEASE: reusing the build in $PREV/obj"
        exec 9>&-
        return 0
    fi
    command -v git >/dev/null || skip "git is missing: cannot build the previous release"
    git -C "$TOP_SRCDIR" rev-parse --git-dir >/dev/null 2>&1 ||
        skip "$TOP_SRCDIR is not a git checkout: cannot build the previous release $PREVIOUS_RELEASE"
    git -C "$TOP_SRCDIR" cat-file -e "$PREVIOUS_COMMIT^{commit}" 2>/dev/null ||
        skip "commit $PREVIOUS_COMMIT (release $PREVIOUS_RELEASE) is not in this repository (a shallow clone? 'git fetch --unshallow' brings it)"
    for tool in autoreconf make; do command -v $tool >/dev/null || skip "$tool is missing"; done

    rm -rf "$PREV/obj" "$PREV/.built" "$PREV/build.log"
    src=$(mktemp -d "/tmp/tandem-prev-$PREVIOUS_RELEASE.XXXXXX") || { log "ERROR: mktemp"; exit 99; }
    rmdir "$src"
    # The worktree goes, whatever happens (the hosts' trap comes later).
    trap 'git -C "$TOP_SRCDIR" worktree remove --force "'"$src"'" >/dev/null 2>&1; rm -rf "'"$src"'"; git -C "$TOP_SRCDIR" worktree prune' EXIT
    log "previous release $PREVIOUS_RELEASE: building commit $PREVIOUS_COMMIT in $PREV/obj (log: $PREV/build.log)"
    t0=$(date +%s)
    {
        git -C "$TOP_SRCDIR" worktree add --detach "$src" "$PREVIOUS_COMMIT" &&
        (cd "$src" && autoreconf -fi) &&
        mkdir -p "$PREV/obj" &&
        (cd "$PREV/obj" && env -u CFLAGS -u CPPFLAGS -u LDFLAGS "$src/configure" -q --prefix="$PREV/prefix") &&
        make -C "$PREV/obj" -j"$(nproc 2>/dev/null || echo 2)"
    } >"$PREV/build.log" 2>&1 || rc=$?
    git -C "$TOP_SRCDIR" worktree remove --force "$src" >/dev/null 2>&1
    rm -rf "$src"
    git -C "$TOP_SRCDIR" worktree prune
    trap - EXIT
    if [ $rc != 0 ]; then
        tail -n 25 "$PREV/build.log" >&2
        fail "the previous release $PREVIOUS_RELEASE ($PREVIOUS_COMMIT) does not build here (above: the end of $PREV/build.log)"
    fi
    echo "$PREVIOUS_COMMIT" >"$PREV/.built"
    log "previous release $PREVIOUS_RELEASE: built in $(( $(date +%s) - t0 )) s"
    exec 9>&-
}
build_previous
PREV_XL=$PREV/obj/tools/xl
PREV_KERNEL=$PREV/obj/tests/guests/tandem-guest
"$PREV_XL" --help | grep -q "^Tandem $PREVIOUS_RELEASE:" ||
    fail "$PREV_XL is not release $PREVIOUS_RELEASE: $("$PREV_XL" --help | sed -n 3p)"
RELEASE=$("$XL" --help | sed -n 's/^Tandem \([^:]*\):.*/\1/p')
[ "$RELEASE" != "$PREVIOUS_RELEASE" ] || fail "this build is release $RELEASE too: bump configure.ac's version"

# ---- Two hosts, one per release -----------------------------------------
new_hosts OLD NEW
WORK=$(host_dir NEW)
declare -A XL_OF=([OLD]=$PREV_XL [NEW]=$XL) KERNEL_OF=([OLD]=$PREV_KERNEL [NEW]=$TANDEM_GUEST_KERNEL) \
    REL_OF=([OLD]=$PREVIOUS_RELEASE [NEW]=$RELEASE)

# xl_on H ARGS...: H's own xl, with H's own test guest.
xl_on() { local h=$1; shift; on "$h" env TANDEM_GUEST_KERNEL="${KERNEL_OF[$h]}" "${XL_OF[$h]}" "$@"; }
# hosts.sh's helpers, with H's own xl.
x_domains() { XL=${XL_OF[$1]} h_domains "$1"; }
x_domain_exists() { XL=${XL_OF[$1]} h_domain_exists "$@"; }
x_domain_pid() { XL=${XL_OF[$1]} h_domain_pid "$@"; }
x_domain_state() { XL=${XL_OF[$1]} h_domain_state "$@"; }

# The receiver on a host is that host's xl: xl migrate -s "" runs
# "<prefix> <the sender's own xl> migrate-receive ...", so the prefix ends
# in a wrapper that puts the host's xl in place of the sender's.
for h in OLD NEW; do
    cat >"$WORK/as-$h-xl" <<SH
#!/bin/sh
shift
TANDEM_GUEST_KERNEL='${KERNEL_OF[$h]}' exec '${XL_OF[$h]}' "\$@"
SH
    chmod +x "$WORK/as-$h-xl"
done
receiver_prefix() { echo "$(host_prefix "$1") $WORK/as-$1-xl"; }

summary_field() { grep -a "^migration summary:" "$1" | grep -o "\b$2=[0-9.]*" | tail -n 1 | cut -d= -f2; }

# runs_on H NAME BEFORE WHAT: NAME runs on H and continues from status line
# BEFORE (counters forward, both vCPUs, no verify error since).
runs_on() {
    local h=$1 name=$2 before=$3 what=$4 seq after
    x_domain_exists "$h" "$name" || fail "$what: $name is not on $h"
    [ "$(x_domain_state "$h" "$name")" != "--p---" ] || fail "$what: $name is paused on $h"
    seq=$(field "$before" seq)
    wait_for 20 h_has_lines_after "$h" "$name" "$seq" 3 ||
        fail "$what: $name on $h prints no status lines after seq=$seq: $(h_status_lines "$h" "$name" | tail -n 2)"
    after=$(h_last_status "$h" "$name")
    assert_continues "$before" "$after" seq ticks uptime_ms gen verified
    [ "$(field "$after" cpus)" = 2 ] || fail "$what: $name runs with cpus=$(field "$after" cpus), not 2: $after"
    h_lines_after "$h" "$name" "$seq" | grep -v ' verify_errors=0 ' | head -n 1 | grep . &&
        fail "$what: verify errors on $h"
    grep -aq 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log "$h" "$name")" &&
        fail "$what: $name reports a problem on $h: $(grep -a 'TANDEM-GUEST \(verify_error\|panic\)' "$(h_console_log "$h" "$name")" | head -n 3)"
    LAST_SEQ="$(field "$before" seq) -> $(field "$after" seq)"
}

# xhop NAME FROM TO VERSION [xl migrate options]: FROM's xl sends NAME to
# TO's xl, which must get stream version VERSION; the guest runs on at TO
# and nothing is left at FROM.
xhop() {
    local name=$1 from=$2 to=$3 version=$4 before pid_before t0 ms rc final; shift 4
    OUT=$WORK/migrate.out ERR=$WORK/migrate.err
    wait_for 15 h_has_status_lines "$from" "$name" 2 || fail "$name on $from prints no status lines"
    before=$(h_last_status "$from" "$name")
    pid_before=$(x_domain_pid "$from" "$name")
    t0=$(date +%s%N)
    xl_on "$from" migrate -s "" "$@" "$name" "$(receiver_prefix "$to")" >"$OUT" 2>"$ERR"; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 0 ] || fail "$name $from -> $to: xl migrate exited $rc: $(tail -n 12 "$ERR")"
    [ "$(summary_field "$ERR" stream_version)" = "$version" ] ||
        fail "$name $from -> $to: sent stream_version=$(summary_field "$ERR" stream_version), not $version: $(cat "$ERR")"
    ! x_domain_exists "$from" "$name" || fail "$name $from -> $to: $from still has $name"
    x_domains "$from" | grep -q -- '--incoming\|--migratedaway' && fail "$name $from -> $to: $from lists $(x_domains "$from" | tr '\n' ' ')"
    x_domains "$to" | grep -q -- '--incoming\|--migratedaway' && fail "$name $from -> $to: $to lists $(x_domains "$to" | tr '\n' ' ')"
    wait_for 10 eval "! process_alive $pid_before" || fail "$name $from -> $to: its process $pid_before still runs on $from"
    [ "$(x_domain_pid "$to" "$name")" != "$pid_before" ] || fail "$name $from -> $to: the same process"
    final=$(h_last_status "$from" "$name")
    [ "$(field "$final" seq)" -ge "$(field "$before" seq)" ] && before=$final
    runs_on "$to" "$name" "$before" "$name $from -> $to"
    log "$name $from (${REL_OF[$from]}) -> $to (${REL_OF[$to]}): ok in $ms ms, stream v$version," \
        "downtime_ms=$(summary_field "$ERR" downtime_ms), seq $LAST_SEQ"
}
T0=$(date +%s)

# Guests booted by each release's test kernel, each on its own release;
# n's config has a setting 1.0.0 does not know (cpuid=, new in 1.1.0),
# which it must skip.  Both track dirty pages with the bitmap: 1.0.0's
# dirty ring can lose pages on KVM 6.16 and later (docs/compatibility.md,
# "Known defects"), which would show here as verify errors after a hop
# from OLD that no fix in this release can cure.  The stream is the same
# whichever way the sender tracks.
cfg_old=$(h_write_cfg OLD o.cfg o "workload=verify wss=32" "vcpus = 2" 'log_dirty = "bitmap"')
cfg_new=$(h_write_cfg NEW n.cfg n "workload=verify wss=32" "vcpus = 2" 'cpuid = "host,lahf_lm=0"' \
    'log_dirty = "bitmap"')
xl_on OLD create -q "$cfg_old" || fail "xl create o on OLD (release $PREVIOUS_RELEASE)"
xl_on NEW create -q "$cfg_new" || fail "xl create n on NEW (release $RELEASE)"
wait_for 15 h_has_status_lines OLD o 2 || fail "o prints no status lines on OLD"
wait_for 15 h_has_status_lines NEW n 2 || fail "n prints no status lines on NEW"

# previous -> current: Xen's handshake as 1.0.0 speaks it, stream v3.
xhop o OLD NEW 3
! grep -aq 'negotiat' "$ERR" || fail "the $PREVIOUS_RELEASE sender talks of negotiation: $(cat "$ERR")"

# current -> previous: 1.0.0 refuses --negotiate; one retry, v2, and none
# of the old receiver's usage text.
for name in o n; do
    xhop "$name" NEW OLD 2
    [ "$(grep -ac 'migration sender: the receiver does not negotiate stream versions' "$ERR")" = 1 ] ||
        fail "$name NEW -> OLD: no single 'does not negotiate' message: $(cat "$ERR")"
    ! grep -aq 'Usage:\|unrecognized option' "$ERR" || fail "$name NEW -> OLD: the old receiver's usage text shows: $(cat "$ERR")"
done
# and back: the guest booted on this release, sent by the previous one.
xhop n OLD NEW 3

# The previous release's xl save, this release's xl restore (o is on OLD).
img=$(host_dir OLD)/o.img
wait_for 15 h_has_status_lines OLD o 2 || fail "o prints no status lines on OLD"
xl_on OLD save o "$img" >"$WORK/save.err" 2>&1 || fail "xl save o on OLD ($PREVIOUS_RELEASE): $(cat "$WORK/save.err")"
x_domain_exists OLD o && fail "xl save left o on OLD"
before=$(h_last_status OLD o) saved_by=
if [ -n "${TANDEM_STREAM:-}" ] && [ -x "$TANDEM_STREAM" ]; then
    saved_by=$("$TANDEM_STREAM" info "$img" 2>/dev/null | sed -n 's/^xen version: *\([0-9.]*\).*/\1/p')
    [ "$saved_by" = "${PREVIOUS_RELEASE%.*}" ] || fail "tandem-stream info says the image was saved by '$saved_by', not ${PREVIOUS_RELEASE%.*}"
fi
xl_on NEW restore "$img" >"$WORK/restore.err" 2>&1 || fail "xl restore on NEW ($RELEASE) of a $PREVIOUS_RELEASE image: $(cat "$WORK/restore.err")"
runs_on NEW o "$before" "restore of a $PREVIOUS_RELEASE image"
log "o saved by $PREVIOUS_RELEASE on OLD${saved_by:+ (image header: xen_major.xen_minor $saved_by)}, restored by $RELEASE on NEW: runs on, seq $LAST_SEQ"

xl_on NEW destroy o; xl_on NEW destroy n
log "all steps in $(( $(date +%s) - T0 )) s (previous release build not counted)"
exit 0
