#!/bin/sh
# Builds the libFuzzer fuzz targets and fuzzes each for a while.
#
#   run-fuzz.sh [-b BUILDDIR] SECONDS [TARGET...]
#
# BUILDDIR is a configured build tree (default: $BUILDDIR, else the current
# directory or the build tree whose tests/fuzz is the current directory).
# TARGETs default to every corpus/<name>/ next to this script.  Each target
# runs for SECONDS over a scratch copy of its seed corpus (the seeds are
# never changed); its log, the inputs it found and any crash are left in
# BUILDDIR/tests/fuzz/fuzz-out/<name>/.  Exit status: 0 if every target ran
# clean, 1 if one failed, 2 on usage errors.
set -u

usage() {
    echo "usage: $0 [-b BUILDDIR] SECONDS [TARGET...]" >&2
    exit 2
}

srcdir=$(cd "$(dirname "$0")" && pwd) || exit 2
builddir=${BUILDDIR:-}
while getopts b:h opt; do
    case $opt in
    b) builddir=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
seconds=$1
shift
case $seconds in
''|*[!0-9]*) echo "run-fuzz.sh: SECONDS must be a whole number" >&2; exit 2 ;;
esac

if [ -z "$builddir" ]; then
    if [ -f tests/fuzz/Makefile ]; then
        builddir=.
    elif [ -f Makefile ] && [ -f ../../config.status ]; then
        builddir=../..
    else
        echo "run-fuzz.sh: not in a configured build tree; use -b BUILDDIR" >&2
        exit 2
    fi
fi
fuzzdir=$(cd "$builddir/tests/fuzz" 2>/dev/null && pwd) || {
    echo "run-fuzz.sh: $builddir/tests/fuzz: no such build directory" >&2
    exit 2
}

if [ $# -eq 0 ]; then
    for d in "$srcdir"/corpus/*/; do
        [ -d "$d" ] && set -- "$@" "$(basename "$d")"
    done
fi
[ $# -ge 1 ] || { echo "run-fuzz.sh: no fuzz targets found" >&2; exit 2; }

targets=$*
make_targets=
for t in $targets; do
    make_targets="$make_targets libfuzzer/fuzz_$t"
done
# shellcheck disable=SC2086
${MAKE:-make} -C "$fuzzdir" $make_targets || {
    echo "run-fuzz.sh: building the libFuzzer targets failed" >&2
    exit 1
}

status=0
for t in $targets; do
    bin=$fuzzdir/libfuzzer/fuzz_$t
    out=$fuzzdir/fuzz-out/$t
    rm -rf "$out"
    mkdir -p "$out/corpus" "$out/artifacts"
    cp "$srcdir/corpus/$t"/* "$out/corpus/" 2>/dev/null
    set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$out/artifacts/"
    [ -f "$srcdir/$t.dict" ] && set -- "$@" -dict="$srcdir/$t.dict"
    echo "run-fuzz.sh: fuzz_$t for ${seconds}s (log: $out/log)"
    "$bin" "$@" "$out/corpus" >"$out/log" 2>&1
    rc=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$out/log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "run-fuzz.sh: fuzz_$t: ok, ${runs:-no summary}, corpus $(ls "$out/corpus" | wc -l) inputs"
    else
        status=1
        echo "run-fuzz.sh: fuzz_$t: FAILED (exit $rc); crash inputs in $out/artifacts:" >&2
        ls -l "$out/artifacts" >&2
        tail -n 40 "$out/log" >&2
    fi
done
exit $status
