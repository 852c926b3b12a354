#!/bin/sh
# Checks a stream with Xen's own verifier, verify-stream-v2, taken from
# Debian's xen-utils-4.17 package without installing Xen: the .deb is
# fetched with `apt-get download` (or reused from the cache), unpacked with
# dpkg-deb -x into the cache, and its Python run with PYTHONPATH set.
#
#   verify-xen.sh [-v] -f libxc|libxl|xl FILE
#
# -v passes --verbose to the verifier (a summary of every record).
# The cache is $XEN_UTILS_CACHE, default <top>/build/xen-utils.
# Exit status: 0 the verifier accepts FILE, 1 it rejects it (or failed),
# 2 usage, 77 xen-utils-4.17 could not be fetched (the check was skipped).
set -u

usage() {
    echo "usage: $0 [-v] -f libxc|libxl|xl FILE" >&2
    exit 2
}

format=
verbose=
while getopts f:vh opt; do
    case $opt in
    f) format=$OPTARG ;;
    v) verbose=--verbose ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
case $format in
libxc|libxl|xl) ;;
*) usage ;;
esac
file=$1
[ -r "$file" ] || { echo "verify-xen.sh: $file: cannot read it" >&2; exit 2; }

top=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
cache=${XEN_UTILS_CACHE:-$top/build/xen-utils}
pkg=xen-utils-4.17

# Run as root without sudo here; elsewhere through sudo if there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 1
    fi
}

if ! command -v python3 >/dev/null 2>&1; then
    echo "verify-xen.sh: installing python3" >&2
    as_root apt-get update -qq >/dev/null 2>&1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null 2>&1 || {
        echo "verify-xen.sh: python3 is missing and could not be installed" >&2
        exit 1
    }
fi

skip() {
    echo "" >&2
    echo "verify-xen.sh: SKIPPED: $*" >&2
    echo "verify-xen.sh: SKIPPED: Xen's verify-stream-v2 did NOT check $file" >&2
    echo "" >&2
    exit 77
}

find_verifier() {
    verifier=$(find "$cache/root" -type f -name verify-stream-v2 2>/dev/null | head -n 1)
    libxc_py=$(find "$cache/root" -type f -path '*/xen/migration/libxc.py' 2>/dev/null | head -n 1)
}

mkdir -p "$cache" || exit 1
find_verifier
if [ -z "$verifier" ] || [ -z "$libxc_py" ]; then
    deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
    if [ -z "$deb" ]; then
        echo "verify-xen.sh: fetching $pkg with apt-get download" >&2
        # apt-get download writes to the current directory.
        if ! (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1); then
            as_root apt-get update -qq >/dev/null 2>&1
            (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) ||
                skip "apt-get download $pkg failed (no network or no such package)"
        fi
        deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
        [ -n "$deb" ] || skip "apt-get download $pkg left no .deb in $cache"
    fi
    rm -rf "$cache/root"
    dpkg-deb -x "$deb" "$cache/root" || skip "dpkg-deb -x $deb failed"
    find_verifier
    if [ -z "$verifier" ] || [ -z "$libxc_py" ]; then
        skip "$deb has no verify-stream-v2 or xen/migration"
    fi
fi

# PYTHONPATH is the directory that holds xen/migration/.
pythonpath=$(dirname "$(dirname "$(dirname "$libxc_py")")")
echo "verify-xen.sh: $(basename "$verifier") -f $format $file" >&2
PYTHONPATH=$pythonpath python3 "$verifier" $verbose -f "$format" -i "$file"
rc=$?
case $rc in
0) echo "verify-xen.sh: accepted ($format): $file" >&2; exit 0 ;;
*) echo "verify-xen.sh: REJECTED ($format, exit $rc): $file" >&2; exit 1 ;;
esac
