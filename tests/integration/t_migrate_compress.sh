#!/bin/bash
# xl migrate --compress: lz4-compressed page data between two state dirs on
# this machine (host A, host B).
#
#  1. A verify guest (64 MiB of self-checking pages, 2 vCPUs, 512 MiB)
#     goes A -> B compressed, then B -> A plain: it continues each time
#     (seq, ticks, uptime, gen and verified go forward, verify_errors=0),
#     --json says compress=lz4 / none, and the compressed stream is the
#     smaller one.  The verify pages are random and do not compress, and
#     how much a precopy resends depends on how fast the guest dirties
#     while it runs, so the totals of two migrations are not comparable:
#     the comparison is of round 0, the full pass over the same memory,
#     and of page_bytes against page_bytes_plain within each migration.
#  2. A dirty guest (mostly-zero pages, which compress well) goes A -> B
#     compressed with its stream captured on the way, then B -> A plain:
#     the compressed migration sends a fraction of the plain one's bytes,
#     the text summary shows compress=lz4, and tandem-stream reads the
#     captured stream (info, verify, convert to plain PAGE_DATA).
#  3. A receiver without -z refuses a compressed stream, and the guest
#     goes on running on the source.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
A=$TANDEM_STATE_DIR
B=$(mktemp -d /tmp/tandem-it.XXXXXX)
W=$(mktemp -d /tmp/tandem-it-work.XXXXXX)
: "${TANDEM_STREAM:=tandem-stream}"

# B is a second host: its domains go, and its logs are shown on failure,
# before lib.sh's cleanup of A.
cleanup_all() {
    local rc=$?
    clean_state_dir "$B" $rc B
    rm -rf "$W"
    (exit $rc)
    cleanup_host
}
trap cleanup_all EXIT

# on HOST CMD...: run CMD (a shell function or xl) with HOST's state dir.
on() {
    local dir
    case $1 in A) dir=$A ;; B) dir=$B ;; *) fail "no host $1" ;; esac
    shift
    if [ "$1" = xl ]; then shift; TANDEM_STATE_DIR=$dir "$XL" "$@"; else TANDEM_STATE_DIR=$dir "$@"; fi
}
host_dir() { case $1 in A) echo "$A" ;; B) echo "$B" ;; esac; }

# Status lines of NAME on HOST after seq SEQ.
lines_after() { on "$1" status_lines "$2" | awk -v s="$3" '{ for (i = 1; i <= NF; i++) if ($i ~ /^seq=/ && substr($i, 5) + 0 > s) print }'; }
has_lines_after() { [ "$(lines_after "$1" "$2" "$3" | wc -l)" -ge "$4" ]; }

# assert_forward BEFORE AFTER KEYS...: every key's value grew.
assert_forward() {
    local before=$1 after=$2 k; shift 2
    for k in "$@"; do
        local b a
        b=$(field "$before" "$k") a=$(field "$after" "$k")
        [ -n "$b" ] && [ -n "$a" ] || fail "no $k= in '$before' / '$after'"
        [ "$a" -gt "$b" ] || fail "$k did not go forward: $b -> $a"
    done
}

# hop NAME FROM TO KEYS -- [xl migrate options] [-- HOSTCMD]: migrate NAME
# from FROM to TO, check it continues there with KEYS going forward and no
# verify error.  The transport is "env TANDEM_STATE_DIR=<TO's dir>" unless
# HOSTCMD is given.  Leaves stdout in $OUT, stderr in $ERR.
hop() {
    local name=$1 from=$2 to=$3 keys=() opts=() hostcmd before after seq rc
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do keys+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    hostcmd=${1:-env TANDEM_STATE_DIR=$(host_dir "$to")}
    OUT=$W/out.$name.$from$to ERR=$W/err.$name.$from$to
    wait_for 15 on "$from" has_status_lines "$name" 2 || fail "$name on $from prints no status lines"
    before=$(on "$from" last_status "$name")
    on "$from" xl migrate -s "" "${opts[@]}" "$name" "$hostcmd" >"$OUT" 2>"$ERR"; rc=$?
    [ $rc = 0 ] || fail "xl migrate ${opts[*]} $name $from -> $to exited $rc: $(tail -n 8 "$ERR")"
    on "$to" domain_exists "$name" || fail "$name is not on $to after migrating there"
    on "$from" domain_gone "$name" || fail "$name is still on $from after migrating away"
    [ "$(on "$to" domain_state "$name")" != "--p---" ] || fail "$name is paused on $to"
    # The source's console has the guest's last lines there.
    after=$(on "$from" last_status "$name")
    [ "$(field "$after" seq)" -ge "$(field "$before" seq)" ] && before=$after
    seq=$(field "$before" seq)
    wait_for 20 has_lines_after "$to" "$name" "$seq" 3 ||
        fail "$name on $to prints no status lines after seq=$seq"
    after=$(lines_after "$to" "$name" "$seq" | tail -n 1)
    assert_forward "$before" "$after" "${keys[@]}"
    lines_after "$to" "$name" "$seq" | grep -v ' verify_errors=0 ' | head -n 1 | grep . &&
        fail "verify errors on $to after the migration"
    grep -aq 'TANDEM-GUEST \(verify_error\|panic\)' "$(on "$to" console_log "$name")" &&
        fail "the guest reports a problem on $to: $(grep -a 'TANDEM-GUEST \(verify_error\|panic\)' "$(on "$to" console_log "$name")" | head -n 3)"
    log "$name $from -> $to (${opts[*]}): ok; seq $(field "$before" seq) -> $(field "$after" seq)"
}

# json FILE EXPR: a value from xl migrate --json's object, by Python expression on j.
json() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- 1. verify guest: compressed there, plain back -----------------------------
cat >"$W/v.cfg" <<EOF
name = "v"
memory = 512
vcpus = 2
cmdline = "workload=verify wss=64"
EOF
on A xl create -q "$W/v.cfg" || fail "create v on A"
# Every verify page written, so that round 0 of both migrations sees the
# same memory.
filled() { local l; l=$(on A last_status v); [ -n "$l" ] && [ "$(field "$l" filled)" = "$(( $(field "$l" wss_mb) * 256 ))" ]; }
wait_for 30 filled || fail "v never filled its pages: $(on A last_status v)"

hop v A B seq ticks uptime_ms gen verified -- --compress --json
LZ=$OUT
[ "$(json "$LZ" 'j["result"]')" = ok ] || fail "--json: result is not ok: $(cat "$LZ")"
[ "$(json "$LZ" 'j["compress"]')" = lz4 ] || fail "--json: compress is not lz4: $(cat "$LZ")"
grep -q -- ' -z' "$ERR" || grep -q 'lz4 compression accepted' "$ERR" ||
    fail "the receiver was not told to accept compression: $(cat "$ERR")"
hop v B A seq ticks uptime_ms gen verified -- --json
PL=$OUT
[ "$(json "$PL" 'j["compress"]')" = none ] || fail "--json: a plain migration says compress=$(json "$PL" 'j["compress"]')"

python3 - "$LZ" "$PL" <<'PY' >&2 || fail "compressed vs plain: $(cat "$LZ") $(cat "$PL")"
import json, sys
lz, pl = (json.load(open(f)) for f in sys.argv[1:3])
def need(cond, what):
    if not cond:
        sys.exit("t_migrate_compress: " + what)
for j in (lz, pl):
    for k in ("bytes", "page_bytes", "page_bytes_plain"):
        need(isinstance(j.get(k), int) and j[k] > 0, "%s is not a count" % k)
    need(j["page_bytes"] < j["bytes"], "page_bytes %d not below bytes %d" % (j["page_bytes"], j["bytes"]))
    for it in j["iterations"]:
        need(isinstance(it.get("bytes"), int), "an iteration without bytes")
need(lz["page_bytes"] < lz["page_bytes_plain"],
     "compressed page records %d are not smaller than plain %d" % (lz["page_bytes"], lz["page_bytes_plain"]))
need(pl["page_bytes"] == pl["page_bytes_plain"], "a plain migration's page_bytes differ from page_bytes_plain")
l0, p0 = lz["iterations"][0], pl["iterations"][0]
need(l0["pages"] + l0["zero_pages"] == p0["pages"] + p0["zero_pages"],
     "round 0 sent %d and %d pages" % (l0["pages"] + l0["zero_pages"], p0["pages"] + p0["zero_pages"]))
need(l0["bytes"] < p0["bytes"], "round 0 (all memory): compressed %d bytes, not fewer than plain %d"
     % (l0["bytes"], p0["bytes"]))
print("t_migrate_compress: verify guest, round 0 (all 512 MiB): lz4 %d bytes, plain %d bytes (%d fewer);"
      " whole migration: lz4 bytes=%d (page records %d of %d plain, %.2f%%, %d rounds), plain bytes=%d (%d rounds)"
      % (l0["bytes"], p0["bytes"], p0["bytes"] - l0["bytes"], lz["bytes"], lz["page_bytes"], lz["page_bytes_plain"],
         100.0 * lz["page_bytes"] / lz["page_bytes_plain"], len(lz["iterations"]), pl["bytes"], len(pl["iterations"])))
PY
on A xl destroy v || fail "destroy v"

# ---- 2. dirty guest: compressible pages, stream captured ----------------------
cat >"$W/d.cfg" <<EOF
name = "d"
memory = 128
cmdline = "workload=dirty wss=32 rate=4000"
EOF
on A xl create -q "$W/d.cfg" || fail "create d on A"
wait_for 15 on A has_status_lines d 3 || fail "d prints no status lines"
# The transport tees the stream (and the handshake after it) into a file.
hop d A B seq ticks uptime_ms dirtied -- --compress -- \
    "sh -c 'tee $W/d.stream | env TANDEM_STATE_DIR=$B \"\$@\"' sh"
grep -aq '^migration summary: .* compress=lz4 ' "$ERR" || fail "the text summary lacks compress=lz4: $(tail -n 4 "$ERR")"
grep -aq '^compression: lz4, page records [0-9]* bytes sent for [0-9]* plain' "$ERR" ||
    fail "no 'compression:' line after the summary: $(tail -n 4 "$ERR")"
DLZ=$(grep -ao '^migration summary: .*' "$ERR" | grep -o '\bbytes=[0-9]*' | head -n 1 | cut -d= -f2)
hop d B A seq ticks uptime_ms dirtied -- --json
DPL=$(json "$OUT" 'j["bytes"]')
[ -n "$DLZ" ] && [ -n "$DPL" ] || fail "no bytes in the summaries"
[ $((DLZ * 4)) -lt "$DPL" ] || fail "dirty guest: compressed bytes=$DLZ, plain bytes=$DPL: not a quarter"
log "dirty guest (128 MiB, mostly-zero pages): lz4 bytes=$DLZ, plain bytes=$DPL (ratio $(python3 -c "print('%.1f' % ($DPL / $DLZ))"))"

# What tandem-stream makes of the captured stream (the handshake follows it).
"$TANDEM_STREAM" info "$W/d.stream" >"$W/info" 2>"$W/info.err" || fail "tandem-stream info: $(cat "$W/info.err")"
grep -q '^compression:   lz4 in [0-9]* of [0-9]* page records' "$W/info" || fail "info shows no compression: $(cat "$W/info")"
grep -q 'TANDEM_PAGE_DATA_LZ4' "$W/info" || fail "info lists no TANDEM_PAGE_DATA_LZ4 records"
size=$(sed -n 's/^file: .* (\([0-9]*\) bytes)$/\1/p' "$W/info")
head -c "$size" "$W/d.stream" >"$W/d.xl"
"$TANDEM_STREAM" verify "$W/d.xl" >"$W/verify" 2>&1 || fail "tandem-stream verify: $(cat "$W/verify")"
grep -q 'TANDEM_PAGE_DATA_LZ4 records' "$W/verify" || fail "verify does not name the compressed records: $(cat "$W/verify")"
"$TANDEM_STREAM" convert --to xl "$W/d.xl" "$W/d-plain.xl" 2>"$W/convert.err" || fail "tandem-stream convert: $(cat "$W/convert.err")"
"$TANDEM_STREAM" verify "$W/d-plain.xl" >"$W/verify2" 2>&1 || fail "the converted stream does not verify: $(cat "$W/verify2")"
grep -q 'TANDEM_PAGE_DATA_LZ4' "$W/verify2" && fail "the converted stream still has compressed records"
"$TANDEM_STREAM" diff "$W/d.xl" "$W/d-plain.xl" >"$W/diff" 2>&1 || fail "compressed and converted streams differ: $(cat "$W/diff")"
log "tandem-stream: $(grep '^compression:' "$W/info" | sed 's/  */ /g')"

# ---- 3. a receiver without -z -------------------------------------------------
before=$(on A last_status d)
on A xl migrate -s "" --compress d \
    "sh -c 'a=; for x in \"\$@\"; do [ \"\$x\" = -z ] || a=\"\$a \$x\"; done; exec env TANDEM_STATE_DIR=$B \$a' sh" \
    >"$W/noz.out" 2>"$W/noz.err" && fail "a receiver without -z took a compressed stream: $(cat "$W/noz.err")"
grep -aq 'TANDEM_PAGE_DATA_LZ4 at offset 0x[0-9a-f]*: unknown mandatory record' "$W/noz.err" ||
    fail "the receiver's refusal does not name the record: $(cat "$W/noz.err")"
on A domain_exists d || fail "d is gone from A after the failed migration"
[ -z "$(on B domains)" ] || fail "B kept something: $(on B domains | tr '\n' ' ')"
[ "$(on A domain_state d)" != "--p---" ] || fail "d stays paused on A after the failed migration"
seq=$(field "$before" seq)
wait_for 20 has_lines_after A d "$seq" 2 || fail "d on A prints nothing after the failed migration"
assert_forward "$before" "$(on A last_status d)" seq ticks uptime_ms dirtied
log "a receiver without -z refused the compressed stream; d runs on A"
exit 0
