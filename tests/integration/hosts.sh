# Two (or more) "hosts" on this machine for migration tests: each host is a
# network namespace with its own TANDEM_STATE_DIR.  Source after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/hosts.sh"
#   require_kvm; new_hosts A B
#   on A xl create g.cfg                     # xl = $XL, run inside A
#   on A xl migrate -s "" g "$(host_prefix B)"
#   h_last_status B g                        # B's console log of g
#
# new_hosts links every pair of hosts with a veth pair on its own /30
# (addresses exist only inside these namespaces) and registers a cleanup
# that destroys every domain on every host, ends what is left in the
# namespaces, deletes them and removes the state dirs.  It chains with
# whatever EXIT trap was set before (lib.sh's cleanup_host ends with exit,
# so it runs last): call lib.sh's new_host, if at all, before new_hosts.

HOSTS=()
declare -A HOST_NS=() HOST_DIR=() HOST_IFADDR=()
HOSTS_PREV_TRAP=
HOSTS_EXTRA_NS=()          # namespaces of the guest LAN (new_lan), cleaned up too

# host_ns H / host_dir H: H's namespace and state dir.
host_ns() { printf '%s\n' "${HOST_NS[$1]:?unknown host $1}"; }
host_dir() { printf '%s\n' "${HOST_DIR[$1]:?unknown host $1}"; }

# host_prefix H: the command prefix that runs a command on H, for
# xl migrate -s "" <dom> "$(host_prefix H)".
host_prefix() {
    printf 'ip netns exec %s env TANDEM_STATE_DIR=%s\n' "$(host_ns "$1")" "$(host_dir "$1")"
}

# host_addr H PEER: H's address on its link to PEER.
host_addr() { printf '%s\n' "${HOST_IFADDR[$1:$2]:?no link $1-$2}"; }

# on H CMD...: run CMD on host H; a leading "xl" means $XL.
on() {
    local h=$1; shift
    [ "${1:-}" = xl ] && { shift; set -- "$XL" "$@"; }
    ip netns exec "$(host_ns "$h")" env TANDEM_STATE_DIR="$(host_dir "$h")" "$@"
}

new_hosts() {
    command -v ip >/dev/null || { log "SKIP: iproute2 (ip) is missing; this integration test did NOT run"; exit 77; }
    local h i j pair=$(( ${#HOST_IFADDR[@]} / 2 ))
    for h in "$@"; do
        [ -z "${HOST_NS[$h]:-}" ] || { log "ERROR: host $h defined twice"; exit 99; }
        HOST_NS[$h]=tandem-$$-$h
        HOST_DIR[$h]=$(mktemp -d "/tmp/tandem-it-$h.XXXXXX") || { log "ERROR: mktemp"; exit 99; }
        HOSTS+=("$h")
        # Install the cleanup as soon as there is something to clean.
        [ ${#HOSTS[@]} = 1 ] && hosts_install_trap
        ip netns add "${HOST_NS[$h]}" || { log "ERROR: cannot create network namespace ${HOST_NS[$h]}"; exit 99; }
        ip -n "${HOST_NS[$h]}" link set lo up || { log "ERROR: lo in ${HOST_NS[$h]}"; exit 99; }
    done
    # One veth pair per pair of hosts, 10.223.<pair>.1/30 and .2/30.
    for ((i = 0; i < $#; i++)); do
        for ((j = i + 1; j < $#; j++)); do
            local a=${HOSTS[${#HOSTS[@]} - $# + i]} b=${HOSTS[${#HOSTS[@]} - $# + j]}
            pair=$((pair + 1))
            ip -n "${HOST_NS[$a]}" link add "to-$b" type veth peer name "to-$a" netns "${HOST_NS[$b]}" ||
                { log "ERROR: veth between $a and $b"; exit 99; }
            ip -n "${HOST_NS[$a]}" addr add "10.223.$pair.1/30" dev "to-$b"
            ip -n "${HOST_NS[$b]}" addr add "10.223.$pair.2/30" dev "to-$a"
            ip -n "${HOST_NS[$a]}" link set "to-$b" up
            ip -n "${HOST_NS[$b]}" link set "to-$a" up
            HOST_IFADDR[$a:$b]=10.223.$pair.1
            HOST_IFADDR[$b:$a]=10.223.$pair.2
        done
    done
}

hosts_install_trap() {
    HOSTS_PREV_TRAP=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT\$/\1/")
    trap cleanup_hosts EXIT
    # Ctrl-C and kill still clean up (through the EXIT trap).
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup_hosts() {
    local rc=$? h d f pid
    trap '' INT TERM
    for h in "${HOSTS[@]}"; do
        [ -d "${HOST_DIR[$h]}" ] || continue
        if [ $rc != 0 ] && [ $rc != 77 ] && [ $rc != 130 ] && [ $rc != 143 ]; then
            log "==== host $h (${HOST_NS[$h]}, ${HOST_DIR[$h]}): xl list"
            on "$h" "$XL" list >&2 2>/dev/null
            for f in "${HOST_DIR[$h]}"/log/*.log "${HOST_DIR[$h]}"/console/*.log; do
                [ -f "$f" ] || continue
                log "---- host $h: $f (last 15 lines)"
                tail -n 15 "$f" >&2
            done
        fi
        for d in $(h_domains "$h"); do on "$h" "$XL" destroy "$d" >/dev/null 2>&1; done
    done
    for h in "${HOSTS[@]}"; do
        # Whatever still runs in the namespace was started by this test.
        if ip netns pids "${HOST_NS[$h]}" >/dev/null 2>&1; then
            for pid in $(ip netns pids "${HOST_NS[$h]}"); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "${HOST_NS[$h]}" 2>/dev/null
        fi
        rm -rf "${HOST_DIR[$h]}"
    done
    for f in "${HOSTS_EXTRA_NS[@]}"; do
        for pid in $(ip netns pids "$f" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$f" 2>/dev/null
    done
    (exit $rc)
    eval "$HOSTS_PREV_TRAP"
    exit $rc
}

# Per-host versions of lib.sh's helpers: h_<helper> HOST ARGS...
h_domains() { on "$1" "$XL" list 2>/dev/null | awk 'NR > 2 { print $1 }'; }
h_domain_exists() { on "$1" "$XL" list "$2" >/dev/null 2>&1; }
h_domain_gone() { ! h_domain_exists "$@"; }
h_domain_state() { on "$1" "$XL" list "$2" 2>/dev/null | awk 'NR == 2 { print $5 }'; }
h_domain_pid() { on "$1" "$XL" list -l "$2" | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' | head -n 1; }
h_console_log() { echo "$(host_dir "$1")/console/$2.log"; }
h_status_lines() { complete_lines "$(h_console_log "$1" "$2")" | grep -a '^TANDEM-GUEST seq=' | tr -d '\r'; }
h_last_status() { h_status_lines "$1" "$2" | tail -n 1; }
h_nstatus() { h_status_lines "$1" "$2" | wc -l; }
h_has_status_lines() { [ "$(h_nstatus "$1" "$2")" -ge "${3:-1}" ]; }
# h_lines_after H NAME SEQ: status lines of NAME on H with seq > SEQ.
h_lines_after() { h_status_lines "$1" "$2" | awk -v s="$3" '{ for (i = 2; i <= NF; i++) if ($i ~ /^seq=/) { split($i, kv, "="); if (kv[2] + 0 > s + 0) print; break } }'; }
h_has_lines_after() { [ "$(h_lines_after "$1" "$2" "$3" | wc -l)" -ge "${4:-1}" ]; }

# h_records H: the registry records on H (one per domain).
h_records() { ls "$(host_dir "$1")/domains" 2>/dev/null; }
# h_procs H: pids of processes still running in H's namespace.
h_procs() { ip netns pids "$(host_ns "$1")" 2>/dev/null; }
h_no_procs() { [ -z "$(h_procs "$1")" ]; }

# h_write_cfg H FILE NAME CMDLINE [lines...]: write_cfg into H's state dir
# (FILE is relative to it); prints the full path.
h_write_cfg() {
    local h=$1 file; file=$(host_dir "$1")/$2; shift 2
    write_cfg "$file" "$@"
    echo "$file"
}

# assert_host_empty H WHAT: H has no domain, no registry record, no
# process left in its namespace.
assert_host_empty() {
    local h=$1 what=$2 d r p s
    wait_for 10 h_no_procs "$h"
    d=$(h_domains "$h"); r=$(h_records "$h"); p=$(h_procs "$h"); s=$(ls "$(host_dir "$h")/run" 2>/dev/null)
    [ -z "$d" ] || fail "$what: domains left on $h: $(echo $d)"
    [ -z "$r" ] || fail "$what: registry records left on $h: $(echo $r)"
    [ -z "$p" ] || fail "$what: processes left in $h's namespace: $(ps -o pid=,args= -p "$(echo $p | tr ' ' ,)")"
    [ -z "$s" ] || fail "$what: control sockets left on $h: $(echo $s)"
}

# assert_continues BEFORE AFTER KEYS...: every KEY is strictly greater in
# status line AFTER than in BEFORE.
assert_continues() {
    local before=$1 after=$2 key b a; shift 2
    for key in "$@"; do
        b=$(field "$before" "$key"); a=$(field "$after" "$key")
        [ -n "$b" ] && [ -n "$a" ] || fail "$key missing: '$before' -> '$after'"
        [ "$a" -gt "$b" ] || fail "$key did not go forward ($b -> $a): $before -> $after"
    done
}

# ---- The guests' LAN ------------------------------------------------------
# new_lan [HOST...]: one Ethernet segment for guests, as a rack's switch
# would give: a "switch" namespace with bridge sw0; on every host (default:
# all of them) a bridge xenbr0 (what vif = ['bridge=xenbr0'] names) with an
# uplink into sw0; and a client namespace, address $LAN_CLIENT_IP/24 on sw0,
# that plays the outside world.  Guests take addresses from lan_guest_ip.
# A guest that moves hosts is found again once its new host announces its
# MAC (the switch's bridge learns the new port).
LAN_NET=10.99.0
LAN_CLIENT_IP=$LAN_NET.1
LAN_SW_NS= LAN_CLIENT_NS=
new_lan() {
    local h
    [ $# -gt 0 ] || set -- "${HOSTS[@]}"
    LAN_SW_NS=tandem-$$-sw LAN_CLIENT_NS=tandem-$$-client
    HOSTS_EXTRA_NS+=("$LAN_SW_NS" "$LAN_CLIENT_NS")
    ip netns add "$LAN_SW_NS" && ip netns add "$LAN_CLIENT_NS" || { log "ERROR: cannot create the LAN namespaces"; exit 99; }
    # No STP: ports forward at once, and a guest's new port is learnt from
    # its first frame.
    ip -n "$LAN_SW_NS" link add sw0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 &&
        ip -n "$LAN_SW_NS" link set sw0 up || { log "ERROR: bridge sw0"; exit 99; }
    ip -n "$LAN_CLIENT_NS" link set lo up
    ip -n "$LAN_CLIENT_NS" link add eth0 type veth peer name client netns "$LAN_SW_NS" &&
        ip -n "$LAN_SW_NS" link set client master sw0 up &&
        ip -n "$LAN_CLIENT_NS" addr add "$LAN_CLIENT_IP/24" dev eth0 &&
        ip -n "$LAN_CLIENT_NS" link set eth0 up || { log "ERROR: the client's link to sw0"; exit 99; }
    for h in "$@"; do
        local ns; ns=$(host_ns "$h")
        ip -n "$ns" link add xenbr0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 &&
            ip -n "$ns" link add uplink type veth peer name "up-$h" netns "$LAN_SW_NS" &&
            ip -n "$ns" link set uplink master xenbr0 up &&
            ip -n "$ns" link set xenbr0 up &&
            ip -n "$LAN_SW_NS" link set "up-$h" master sw0 up || { log "ERROR: host $h's xenbr0"; exit 99; }
    done
}

# lan_guest_ip N: the address of the N-th guest on the LAN (N from 0).
lan_guest_ip() { echo "$LAN_NET.$((10 + $1))"; }
# client CMD...: run CMD in the client namespace.
client() { ip netns exec "$LAN_CLIENT_NS" "$@"; }
