#!/bin/bash
# Bad configs fail with file:line and leave nothing behind; unknown keys
# warn; a config without kernel boots the bundled guest; bad vif= and
# disk= lines are refused, naming their line, before anything is built.
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
# refused CONTENT PATTERN [SETTINGS...]: a config with CONTENT fails with
# status 1 and PATTERN (a grep -E) in its error, and leaves no domain.
refused() {
    local content=$1 pattern=$2; shift 2
    printf '%b' "$content" >"$cfg"
    "$XL" create -q "$cfg" "$@" 2>"$err"
    local rc=$?
    [ $rc = 1 ] || fail "config refused with status $rc, not 1: $content $*: $(cat "$err")"
    grep -Eq "$pattern" "$err" || fail "error for <$content $*> is not /$pattern/: $(cat "$err")"
    [ -z "$(domains)" ] || fail "domains left behind by <$content>: $(domains)"
}

# vif=
refused 'name = "v"\nvif = [ "bridge=xenbr0",\n        "mac=01:00:5e:00:00:01" ]\n' \
    'bad\.cfg:3: vif 1: mac=01:00:5e:00:00:01 is a multicast address'
refused 'name = "v"\nvif = [ "mac=00:16:3e:00:00:01,colour=blue" ]\n' "bad\\.cfg:2: vif 0: unknown key 'colour'"
refused 'name = "v"\nvif = [ "mac=00:16:3e:00:01" ]\n' 'bad\.cfg:2: vif 0: mac=00:16:3e:00:01 is not a MAC address'
refused 'name = "v"\nvif = [ "mac=00:16:3e:00:00:01", "mac=00:16:3E:00:00:01" ]\n' \
    "bad\\.cfg:2: vif 1: mac=00:16:3e:00:00:01 is already vif 0's"
refused 'name = "v"\nvif = [ "vifname=a-very-long-name0" ]\n' 'bad\.cfg:2: vif 0: vifname=a-very-long-name0 is longer than 15'
refused 'name = "v"\nvif = [ "", "", "", "",\n  "" ]\n' 'bad\.cfg:3: more than 4 vifs'
refused 'name = "v"\nvif = [ "" ]\n' 'command line:1: vif 1: mac=ff:ff:ff:ff:ff:ff is a multicast' \
    'vif += [ "mac=ff:ff:ff:ff:ff:ff" ]'
# disk=
img=$TANDEM_STATE_DIR/disk.img
truncate -s 1M "$img"
refused "name = \"d\"\nmemory = 64\n\ndisk = [ '$img,qcow2,xvda,rw' ]\n" \
    'bad\.cfg:4: disk 0: format qcow2 is not supported'
refused "name = \"d\"\ndisk = [ '$img,,hdc,cdrom' ]\n" 'bad\.cfg:2: disk 0: CD-ROM drives are not supported'
refused "name = \"d\"\ndisk = [ 'format=raw,vdev=xvda,access=rw,target=$img',\n   '$img,raw,xvda,ro' ]\n" \
    "bad\\.cfg:3: disk 1: vdev xvda is already disk 0's"
refused "name = \"d\"\ndisk = [ '$img,raw,xvda,rw,bogus=1' ]\n" "bad\\.cfg:2: disk 0: unknown parameter 'bogus='"
refused "name = \"d\"\ndisk = [ '$img,raw,xvda1' ]\n" "bad\\.cfg:2: disk 0: vdev 'xvda1'"
refused "name = \"d\"\ndisk = [ '$img,raw' ]\n" 'bad\.cfg:2: disk 0: no vdev given'
refused "name = \"d\"\n" "command line:1: disk 0: script=block-nbd is not supported" \
    "disk = [ 'script=block-nbd,vdev=xvda,target=host:1234' ]"
# ... and what this host lacks, before anything is built.
refused "name = \"d\"\ndisk = [ '/nonexistent/d.img,raw,xvda,rw' ]\n" \
    'disk 0 \(xvda\): /nonexistent/d\.img: No such file or directory'
refused "name = \"d\"\ndisk = [ 'no-such-disk,,xvda' ]\n" \
    "disk 0 \\(xvda\\): /dev/no-such-disk: No such file or directory \\(a target that does not start with '/'"
refused 'name = "v"\nvif = [ "bridge=nosuchbr9" ]\n' 'vif 0: bridge nosuchbr9: this host has no such interface'
# log_dirty_ring=
refused 'name = "r"\nlog_dirty_ring = 512\n' "bad\\.cfg:2: 'log_dirty_ring' = 512 is out of range \\(1024 to 65536\\)"
refused 'name = "r"\nlog_dirty_ring = 3000\n' 'log_dirty_ring=3000: must be a power of two from 1024 to 65536'
refused 'name = "r"\nlog_dirty_ring = 8192\nlog_dirty = "bitmap"\n' 'log_dirty_ring=8192 with log_dirty="bitmap"'
json=$(printf 'name = "r"\nlog_dirty_ring = 65536\n' >"$cfg"; "$XL" create -n "$cfg" 2>"$err") ||
    fail "log_dirty_ring = 65536 refused: $(cat "$err")"
case $json in *'"log_dirty_ring":65536'*) ;; *) fail "dry run without log_dirty_ring=65536: $json" ;; esac
json=$(printf 'name = "r"\n' >"$cfg"; "$XL" create -n "$cfg" 2>"$err") || fail "plain config refused: $(cat "$err")"
case $json in *log_dirty_ring*) fail "log_dirty_ring in a config that does not set it: $json" ;; esac

# A good one, dry run: the devices as the domain record keeps them, MACs
# given kept and the others left to the real create.
printf "name = \"ok\"\nvif = [ 'mac=00:16:3E:0a:0b:0c', 'model=e1000' ]\ndisk = [ '%s,raw,xvda,ro' ]\n" "$img" >"$cfg"
json=$("$XL" create -n "$cfg" 2>"$err") || fail "dry run refused: $(cat "$err")"
grep -q "bad.cfg:2: vif 1: 'model=' ignored" "$err" || fail "no warning for model=: $(cat "$err")"
case $json in
*'"vifs":[{"mac":"00:16:3e:0a:0b:0c","bridge":"","vifname":""},{"bridge":"","vifname":""}]'*) ;;
*) fail "dry run vifs wrong: $json" ;;
esac
case $json in
*'"disks":[{"target":"'"${img//\//\\/}"'","vdev":"xvda","access":"ro"}]'*) ;;
*) fail "dry run disks wrong: $json" ;;
esac

# Nothing half-built is left.
[ -z "$(domains)" ] || fail "domains left behind: $(domains)"
[ -z "$(ls "$TANDEM_STATE_DIR/domains")" ] || fail "registry records left behind"
exit 0
