# shellcheck shell=bash disable=SC2034   # the variables set here are for the scripts that source this
# The shared start of the bench/*.sh scripts, sourced right after their
# `set` line:
#
#   . "$(dirname "$0")/bench-lib.sh"
#   bench_init NAME COUNT DEFAULT "$@"    # e.g. bench_init remus-bench RUNS 3 "$@"
#   bench_need [root] COMMAND...
#
# A script's usage is its header comment (line 2 up to its `set` line), so
# -h or --help prints that and exits.  Otherwise bench_init reads
# [PREFIX] [COUNT] (PREFIX defaults to build/prefix, COUNT to DEFAULT),
# sets top (the source tree), bench, prefix (absolute), runs (COUNT), XL
# and kernel (both exported: tests/integration/lib.sh reads XL and
# TANDEM_GUEST_KERNEL), and checks the prefix, xl, the guest kernel,
# /dev/kvm and COUNT.  die prints "NAME: message" on stderr and exits 1.
# bench_need: root (KVM and network namespaces), then each command.

die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

bench_init() {
    local count=$2 default=$3
    BENCH_NAME=$1
    shift 3
    case "${1:-}" in -h|--help) sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$0"; exit 0;; esac
    top=$(cd "$(dirname "$0")/.." && pwd)
    bench=$top/bench
    prefix=${1:-$top/build/prefix}
    runs=${2:-$default}
    [ -d "$prefix" ] || die "$prefix: no such install prefix (./quickstart build, or make install)"
    prefix=$(cd "$prefix" && pwd)
    XL=$prefix/sbin/xl
    kernel=$prefix/share/tandem/guests/tandem-guest
    [ -x "$XL" ] && [ -r "$kernel" ] || die "build first: $XL or $kernel is missing"
    [ -c /dev/kvm ] || die "/dev/kvm is missing"
    [[ $runs =~ ^[1-9][0-9]*$ ]] || die "$count must be a positive number, not '$runs'"
    export XL TANDEM_GUEST_KERNEL=$kernel
}

bench_need() {
    local c
    for c in "$@"; do
        if [ "$c" = root ]; then
            [ "$(id -u)" = 0 ] || die "run as root (KVM, network namespaces)"
        else
            command -v "$c" >/dev/null || die "$c is missing"
        fi
    done
}
