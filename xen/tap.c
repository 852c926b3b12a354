/* Tap devices and their bridge, through /dev/net/tun and rtnetlink. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "tap.h"

/* Xen's vif-common.sh gives every vif this address: the bridge then never
 * takes a guest's port address for its own, and it moves with no guest. */
static const uint8_t vif_host_mac[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };

static int nl_open(struct nl_sock **out, const struct tlog *log)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return -ENOMEM;
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) {
        tlog_error(log, "rtnetlink: %s", nl_geterror(err));
        nl_socket_free(sk);
        return -EIO;
    }
    *out = sk;
    return 0;
}

static int nl_errno(int err)
{
    switch (-err) {
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV: return -ENODEV;
    case NLE_PERM: return -EPERM;
    case NLE_EXIST: return -EEXIST;
    case NLE_NOMEM: return -ENOMEM;
    case NLE_INVAL: return -EINVAL;
    case NLE_BUSY: return -EBUSY;
    default: return -EIO;
    }
}

/* The bridge, which must exist and be one. */
static int get_bridge(struct nl_sock *sk, const char *bridge, struct rtnl_link **out, const struct tlog *log)
{
    struct rtnl_link *br = NULL;
    int err = rtnl_link_get_kernel(sk, 0, bridge, &br);
    if (err < 0) {
        int rc = nl_errno(err);
        if (rc == -ENODEV)
            tlog_error(log, "bridge %s does not exist", bridge);
        else
            tlog_error(log, "looking up bridge %s: %s", bridge, nl_geterror(err));
        return rc;
    }
    if (!rtnl_link_is_bridge(br)) {
        tlog_error(log, "%s is not a bridge", bridge);
        rtnl_link_put(br);
        return -EINVAL;
    }
    *out = br;
    return 0;
}

static int open_tap(const char *ifname, const struct tlog *log)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        tlog_error(log, "vif %s: cannot open /dev/net/tun: %s", ifname, strerror(err));
        return -err;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        tlog_error(log, "vif %s: creating the tap: %s", ifname, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

int tap_create(const char *ifname, const char *bridge, const struct tlog *log)
{
    if (!ifname[0] || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/') || strchr(ifname, ' ')) {
        tlog_error(log, "'%s' is no valid interface name", ifname);
        return -EINVAL;
    }
    struct nl_sock *sk;
    struct rtnl_link *br = NULL, *tap = NULL, *change = NULL;
    struct nl_addr *addr = NULL;
    int fd = -1, rc = nl_open(&sk, log);
    if (rc)
        return rc;
    /* Everything that can be checked comes before the tap exists. */
    if (bridge[0] && (rc = get_bridge(sk, bridge, &br, log)))
        goto out;
    struct rtnl_link *other = NULL;
    if (rtnl_link_get_kernel(sk, 0, ifname, &other) == 0) {
        rtnl_link_put(other);
        tlog_error(log, "vif %s: an interface of that name already exists", ifname);
        rc = -EEXIST;
        goto out;
    }
    fd = open_tap(ifname, log);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    int err = rtnl_link_get_kernel(sk, 0, ifname, &tap);
    if (err < 0) {
        tlog_error(log, "vif %s: the new tap cannot be found: %s", ifname, nl_geterror(err));
        rc = nl_errno(err);
        goto out;
    }
    change = rtnl_link_alloc();
    addr = nl_addr_build(AF_LLC, vif_host_mac, sizeof(vif_host_mac));
    if (!change || !addr) {
        rc = -ENOMEM;
        goto out;
    }
    rtnl_link_set_addr(change, addr);
    rtnl_link_set_flags(change, IFF_UP);
    if (br)
        rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
    err = rtnl_link_change(sk, tap, change, 0);
    if (err < 0) {
        rc = nl_errno(err);
        tlog_error(log, "vif %s: bringing it up%s%s: %s", ifname, br ? " on bridge " : "", br ? bridge : "",
                   nl_geterror(err));
        goto out;
    }
    rc = 0;
out:
    if (addr)
        nl_addr_put(addr);
    if (change)
        rtnl_link_put(change);
    if (tap)
        rtnl_link_put(tap);
    if (br)
        rtnl_link_put(br);
    nl_socket_free(sk);
    if (rc) {
        if (fd >= 0)
            close(fd);  /* not persistent: the tap goes with it */
        return rc;
    }
    return fd;
}

int tap_link_info(const char *ifname, char *master, size_t len, bool *up, const struct tlog *log)
{
    struct nl_sock *sk;
    struct rtnl_link *l = NULL, *m = NULL;
    int rc = nl_open(&sk, log);
    if (rc)
        return rc;
    int err = rtnl_link_get_kernel(sk, 0, ifname, &l);
    if (err < 0) {
        rc = nl_errno(err);
        goto out;
    }
    if (up)
        *up = rtnl_link_get_flags(l) & IFF_UP;
    if (master && len) {
        master[0] = '\0';
        int mi = rtnl_link_get_master(l);
        if (mi > 0 && rtnl_link_get_kernel(sk, mi, NULL, &m) == 0)
            snprintf(master, len, "%s", rtnl_link_get_name(m));
    }
out:
    if (m)
        rtnl_link_put(m);
    if (l)
        rtnl_link_put(l);
    nl_socket_free(sk);
    return rc;
}

int tap_bridge_add(const char *name, const struct tlog *log)
{
    struct nl_sock *sk;
    struct rtnl_link *br = NULL, *change = NULL;
    int rc = nl_open(&sk, log);
    if (rc)
        return rc;
    int err = rtnl_link_bridge_add(sk, name);
    if (err < 0 || (err = rtnl_link_get_kernel(sk, 0, name, &br)) < 0) {
        tlog_error(log, "creating bridge %s: %s", name, nl_geterror(err));
        rc = nl_errno(err);
        goto out;
    }
    change = rtnl_link_alloc();
    if (!change) {
        rc = -ENOMEM;
        goto out;
    }
    rtnl_link_set_flags(change, IFF_UP);
    if ((err = rtnl_link_change(sk, br, change, 0)) < 0) {
        tlog_error(log, "bringing bridge %s up: %s", name, nl_geterror(err));
        rc = nl_errno(err);
    }
out:
    if (change)
        rtnl_link_put(change);
    if (br)
        rtnl_link_put(br);
    nl_socket_free(sk);
    return rc;
}

int tap_link_delete(const char *name, const struct tlog *log)
{
    struct nl_sock *sk;
    struct rtnl_link *l = NULL;
    int rc = nl_open(&sk, log);
    if (rc)
        return rc;
    int err = rtnl_link_get_kernel(sk, 0, name, &l);
    if (err >= 0)
        err = rtnl_link_delete(sk, l);
    if (err < 0) {
        tlog_error(log, "deleting %s: %s", name, nl_geterror(err));
        rc = nl_errno(err);
    }
    if (l)
        rtnl_link_put(l);
    nl_socket_free(sk);
    return rc;
}
