#!/bin/bash
# Auto-converge: a guest that dirties 256 MiB as fast as it can, migrated
# at 20 MB/s, can only finish because the sender throttles its vCPUs.  The
# migration must succeed (the guest continues on B), report the throttle
# it applied (throttle_pct > 0), and the guest must run unthrottled again
# at the destination.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hosts.sh"
require_kvm
command -v python3 >/dev/null || { log "ERROR: python3 is needed to read xl migrate --json"; exit 99; }
new_hosts A B
WORK=$(host_dir A)
cfg=$(h_write_cfg A t.cfg t "workload=dirty wss=256 rate=0" "vcpus = 2")
sed -i 's/^memory = .*/memory = 512/' "$cfg"
on A xl create -q "$cfg" || fail "create t on A"
wait_for 30 h_has_status_lines A t 3 || fail "t prints no status lines on A"
before=$(h_last_status A t)
log "before: dirty_rate=$(field "$before" dirty_rate) pages/s over $(field "$before" wss_mb) MiB"

# Bounded: a migration that cannot converge would otherwise take 30 rounds
# of 13 s each.
LIMIT=300
t0=$(date +%s%N)
on A timeout -k 10 $LIMIT "$XL" migrate -s "" --bandwidth 20 --json t "$(host_prefix B)" >"$WORK/out.json" 2>"$WORK/err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 124 ] || [ $rc = 137 ] && fail "xl migrate did not finish within $LIMIT s; stderr: $(tail -n 5 "$WORK/err")"

report=$(python3 - "$WORK/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
its = j.get("iterations") or []
mb = j.get("bytes", 0) / 1e6
print(j.get("result"), j.get("throttle_pct", "none"), int(j.get("downtime_ms", -1)), int(j.get("total_ms", 0)), len(its),
      "%.1f" % mb, "%.1f" % (mb * 1000.0 / max(j.get("total_ms", 1), 1)),
      ",".join(str(i["pages"]) for i in its) or "-", ",".join(str(i["dirty_pages"]) for i in its) or "-",
      (j.get("error") or "-").replace(" ", "_"))
PY
) || fail "xl migrate exited $rc after $ms ms; bad --json output: $(cat "$WORK/out.json"); stderr: $(tail -n 5 "$WORK/err")"
read -r result pct downtime total iters mb mbps pages dirty error <<<"$report"
log "result $result after $total ms (exit $rc): vCPUs throttled by up to ${pct}%; downtime ${downtime} ms;" \
    "$iters precopy rounds; $mb MB at $mbps MB/s; pages per round: ${pages//,/ }; dirty per round: ${dirty//,/ }"
[ $rc = 0 ] && [ "$result" = ok ] ||
    fail "the migration did not complete (exit $rc, error: ${error//_/ }); stderr: $(grep -a '^xl: ' "$WORK/err" | tail -n 3)"
[ "$pct" != none ] || fail "no throttle_pct in the --json output"
[ "$pct" -gt 0 ] || fail "throttle_pct is 0: the sender never throttled a guest that outruns 20 MB/s"
[ "$pct" -le 100 ] || fail "throttle_pct=$pct is not a percentage"
# 20 MB/s is the cap: the sender must honour it (within 15%).
python3 -c "import sys; sys.exit(0 if float('$mbps') <= 23.0 else 1)" ||
    fail "sent $mb MB in $total ms = $mbps MB/s with --bandwidth 20"
# Converged means it did not stop-and-copy the whole working set: 256 MiB
# at 20 MB/s would be more than 12 s of downtime.
[ "$downtime" -lt 5000 ] || fail "downtime ${downtime} ms: the migration did not converge"

# The guest continues on B, and runs at full speed again.
seq=$(field "$before" seq); last=$(h_last_status A t)
[ -n "$last" ] && seq=$(field "$last" seq) && before=$last
wait_for 20 h_has_lines_after B t "$seq" 3 || fail "t prints nothing on B"
after=$(h_last_status B t)
assert_continues "$before" "$after" seq ticks uptime_ms dirtied
sleep 2
after=$(h_last_status B t)
log "after: dirty_rate=$(field "$after" dirty_rate) pages/s on B; guest felt max_gap_us=$(field "$after" max_gap_us)"
[ $(( $(field "$after" dirty_rate) * 2 )) -ge "$(field "$before" dirty_rate)" ] ||
    fail "the guest is still throttled on B: dirty_rate $(field "$before" dirty_rate) -> $(field "$after" dirty_rate)"
assert_host_empty A "after the migration"
exit 0
