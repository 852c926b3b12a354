#!/bin/bash
# Bad configs fail with file:line and leave nothing behind; unknown keys
# warn; a config without kernel boots the bundled guest.
. "$(dirname "$0")/lib.sh"
require_kvm
new_host
cfg=$TANDEM_STATE_DIR/bad.cfg
err=$TANDEM_STATE_DIR/err

printf 'name = "x"\nmemory = 128\nvcpus = \n' >"$cfg"
"$XL" create -q "$cfg" 2>"$err"; [ $? = 1 ] || fail "broken config not rejected with status 1"
grep -q "bad.cfg:3:" "$err" || fail "error does not name bad.cfg:3: $(cat "$err")"

printf 'memory = 128\n' >"$cfg"
"$XL" create -q "$cfg" 2>"$err" && fail "config without name accepted"
grep -q "no 'name'" "$err" || fail "missing name error unclear: $(cat "$err")"

printf 'name = "k"\nkernel = "/nonexistent/k"\n' >"$cfg"
"$XL" create -q "$cfg" 2>"$err" && fail "missing kernel accepted"
grep -q "/nonexistent/k" "$err" || fail "missing kernel error unclear"

printf 'name = "u"\nmemory = 64\nfrobnicate = 1\ncmdline = "workload=idle"\n' >"$cfg"
"$XL" create -q "$cfg" 2>"$err" || fail "config with an unknown key refused: $(cat "$err")"
grep -q "bad.cfg:3: unknown key 'frobnicate'" "$err" || fail "no warning for unknown key: $(cat "$err")"
wait_for 10 has_status_lines u 1 || fail "bundled guest did not boot"
"$XL" destroy u

printf 'name = "t"\ntype = "hvm"\n' >"$cfg"
"$XL" create -q "$cfg" 2>"$err" && fail "type=hvm accepted"
"$XL" create -q "$cfg" 'type="pvh"' 'on_crash="coredump-restart"' 2>"$err" && fail "unsupported action accepted"
grep -q "coredump-restart" "$err" || fail "unsupported action error unclear"
# Nothing half-built is left.
[ -z "$(domains)" ] || fail "domains left behind: $(domains)"
[ -z "$(ls "$TANDEM_STATE_DIR/domains")" ] || fail "registry records left behind"
exit 0
