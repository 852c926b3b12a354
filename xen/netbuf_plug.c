/* Remus output commit with the kernel's plug qdisc, through rtnetlink
 * (libnl-route-3), never tc(8): see netbuf_plug.h. */
#include "config.h"
#include <errno.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "netbuf_plug.h"
#include "tap.h"

#define PLUG_HANDLE TC_HANDLE(1, 0)
#define INGRESS_HANDLE TC_HANDLE(0xffffU, 0)   /* unsigned: 0xffff << 16 overflows an int */
#define FILTER_PRIO 10

struct netbuf_plug {
    struct nl_sock *sk;
    char tap[IFNAMSIZ], ifb[IFNAMSIZ], kind[16];
    int tap_ifindex, ifb_ifindex;
    bool made_ingress;
};

static int nl_to_errno(int err)
{
    switch (-err) {
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_NODEV: return -ENODEV;
    case NLE_PERM: return -EPERM;
    case NLE_EXIST: return -EEXIST;
    case NLE_NOMEM: return -ENOMEM;
    case NLE_INVAL: return -EINVAL;
    case NLE_BUSY: return -EBUSY;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    default: return -EIO;
    }
}

/* What a refused request means here, in words an operator can act on. */
static void explain(char *err, size_t len, const char *what, int nlerr)
{
    const char *hint = "";
    if (-nlerr == NLE_PERM)
        hint = " (needs CAP_NET_ADMIN)";
    snprintf(err, len, "%s: %s%s", what, nl_geterror(nlerr), hint);
}

static int open_sock(struct nl_sock **out, char *err, size_t len)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) {
        snprintf(err, len, "rtnetlink: out of memory");
        return -ENOMEM;
    }
    int e = nl_connect(sk, NETLINK_ROUTE);
    if (e < 0) {
        explain(err, len, "rtnetlink", e);
        nl_socket_free(sk);
        return nl_to_errno(e);
    }
    *out = sk;
    return 0;
}

static int link_index(struct nl_sock *sk, const char *name, char **kind_out)
{
    struct rtnl_link *l = NULL;
    int e = rtnl_link_get_kernel(sk, 0, name, &l);
    if (e < 0)
        return nl_to_errno(e);
    int i = rtnl_link_get_ifindex(l);
    if (kind_out) {
        const char *k = rtnl_link_get_type(l);
        *kind_out = k ? strdup(k) : NULL;
    }
    rtnl_link_put(l);
    return i;
}

static void link_delete(struct nl_sock *sk, int ifindex)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        return;
    rtnl_link_set_ifindex(l, ifindex);
    rtnl_link_delete(sk, l);
    rtnl_link_put(l);
}

/* An ifb named `name`, down; its ifindex or -errno. */
static int ifb_create(struct nl_sock *sk, const char *name, const char *label, bool *replaced, char *err,
                      size_t len)
{
    char *kind = NULL;
    int old = link_index(sk, name, &kind);
    if (old > 0) {
        bool ours = kind && !strcmp(kind, "ifb");
        free(kind);
        if (!ours) {
            snprintf(err, len, "%s exists and is not an ifb device", name);
            return -EEXIST;
        }
        /* The name carries the domid, unique among live domains: an ifb
         * under it is a dead process's, and holds nothing of ours. */
        link_delete(sk, old);
        *replaced = true;
    }
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l) {
        snprintf(err, len, "out of memory");
        return -ENOMEM;
    }
    rtnl_link_set_name(l, name);
    int e = rtnl_link_set_type(l, "ifb");
    if (e >= 0)
        e = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(l);
    if (e < 0) {
        char what[64];
        snprintf(what, sizeof(what), "creating ifb device %s", label);
        explain(err, len, what, e);
        if (-e == NLE_OPNOTSUPP)
            snprintf(err, len, "no ifb link type in this kernel (CONFIG_IFB): creating %s: %s", label,
                     nl_geterror(e));
        return nl_to_errno(e);
    }
    int i = link_index(sk, name, NULL);
    if (i < 0)
        snprintf(err, len, "the new ifb %s cannot be found: %s", name, strerror(-i));
    return i;
}

static int link_up(struct nl_sock *sk, int ifindex, const char *name, char *err, size_t len)
{
    struct rtnl_link *l = rtnl_link_alloc(), *change = rtnl_link_alloc();
    int e = -NLE_NOMEM;
    if (l && change) {
        rtnl_link_set_ifindex(l, ifindex);
        rtnl_link_set_flags(change, IFF_UP);
        e = rtnl_link_change(sk, l, change, 0);
    }
    if (l)
        rtnl_link_put(l);
    if (change)
        rtnl_link_put(change);
    if (e < 0) {
        char what[64];
        snprintf(what, sizeof(what), "bringing %s up", name);
        explain(err, len, what, e);
        return nl_to_errno(e);
    }
    return 0;
}

static struct rtnl_qdisc *qdisc_obj(int ifindex, uint32_t parent, uint32_t handle, const char *kind)
{
    struct rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        return NULL;
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), parent);
    rtnl_tc_set_handle(TC_CAST(q), handle);
    if (rtnl_tc_set_kind(TC_CAST(q), kind) < 0) {
        rtnl_qdisc_put(q);
        return NULL;
    }
    return q;
}

/* A new qdisc (never a change of one that is there: NLM_F_EXCL). */
static int qdisc_create(struct nl_sock *sk, int ifindex, const char *dev, uint32_t parent, uint32_t handle,
                        const char *kind, size_t limit, char *err, size_t len)
{
    struct rtnl_qdisc *q = qdisc_obj(ifindex, parent, handle, kind);
    if (!q) {
        snprintf(err, len, "out of memory");
        return -ENOMEM;
    }
    int e = 0;
    if (!strcmp(kind, "plug"))
        e = rtnl_qdisc_plug_set_limit(q, limit > INT32_MAX ? INT32_MAX : (int)limit);
    else if (!strcmp(kind, "pfifo"))
        e = rtnl_qdisc_fifo_set_limit(q, 1000);   /* libnl sends no pfifo without one */
    if (e >= 0)
        e = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_qdisc_put(q);
    if (e < 0) {
        char what[80];
        snprintf(what, sizeof(what), "adding a %s qdisc on %s", kind, dev);
        explain(err, len, what, e);
        if (!strcmp(kind, "plug") && -e == NLE_OBJ_NOTFOUND)
            snprintf(err, len, "no plug qdisc in this kernel (sch_plug, CONFIG_NET_SCH_PLUG): %s: %s", what,
                     nl_geterror(e));
        else if (!strcmp(kind, "ingress") && -e == NLE_EXIST)
            snprintf(err, len, "%s already has an ingress qdisc (someone else's): it is left alone", dev);
        return nl_to_errno(e);
    }
    return 0;
}

static void qdisc_remove(struct nl_sock *sk, int ifindex, uint32_t parent, uint32_t handle, const char *kind)
{
    struct rtnl_qdisc *q = qdisc_obj(ifindex, parent, handle, kind);
    if (!q)
        return;
    rtnl_qdisc_delete(sk, q);
    rtnl_qdisc_put(q);
}

/* On the tap's ingress: every frame, whatever its protocol (ARP too: the
 * guest's output is all held, as in the VMM's backend), to the ifb. */
static int redirect_add(struct nl_sock *sk, int tap_ifindex, const char *tap, int ifb_ifindex, char *err,
                        size_t len)
{
    struct rtnl_cls *cls = rtnl_cls_alloc();
    struct rtnl_act *act = rtnl_act_alloc();
    int e = -NLE_NOMEM;
    if (!cls || !act)
        goto out;
    rtnl_tc_set_ifindex(TC_CAST(cls), tap_ifindex);
    rtnl_tc_set_parent(TC_CAST(cls), INGRESS_HANDLE);
    if ((e = rtnl_tc_set_kind(TC_CAST(cls), "u32")) < 0)
        goto out;
    rtnl_cls_set_protocol(cls, ETH_P_ALL);
    rtnl_cls_set_prio(cls, FILTER_PRIO);
    if ((e = rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0)) < 0 || (e = rtnl_u32_set_cls_terminal(cls)) < 0)
        goto out;
    if ((e = rtnl_tc_set_kind(TC_CAST(act), "mirred")) < 0 ||
        (e = rtnl_mirred_set_action(act, TCA_EGRESS_REDIR)) < 0 ||
        (e = rtnl_mirred_set_policy(act, TC_ACT_STOLEN)) < 0 ||
        (e = rtnl_mirred_set_ifindex(act, (uint32_t)ifb_ifindex)) < 0)
        goto out;
    if ((e = rtnl_u32_add_action(cls, act)) < 0)   /* takes its own reference */
        goto out;
    e = rtnl_cls_add(sk, cls, NLM_F_CREATE | NLM_F_EXCL);
out:
    if (act)
        rtnl_act_put(act);
    if (cls)
        rtnl_cls_put(cls);
    if (e < 0) {
        char what[96];
        snprintf(what, sizeof(what), "redirecting %s's ingress (u32 filter, mirred action)", tap);
        explain(err, len, what, e);
        return nl_to_errno(e);
    }
    return 0;
}

int netbuf_plug_setup(struct netbuf_plug **out, const char *tap, const char *ifb, size_t limit_bytes,
                      const char *root_kind, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!root_kind)
        root_kind = "plug";
    if (!tap[0] || strlen(tap) >= IFNAMSIZ || !ifb[0] || strlen(ifb) >= IFNAMSIZ ||
        strlen(root_kind) >= sizeof(((struct netbuf_plug *)0)->kind)) {
        snprintf(err, errlen, "'%s' / '%s': no valid interface names", tap, ifb);
        return -EINVAL;
    }
    struct netbuf_plug *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(p->tap, sizeof(p->tap), "%s", tap);
    snprintf(p->ifb, sizeof(p->ifb), "%s", ifb);
    snprintf(p->kind, sizeof(p->kind), "%s", root_kind);
    p->ifb_ifindex = -1;
    int rc = open_sock(&p->sk, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    bool replaced = false;
    p->tap_ifindex = link_index(p->sk, tap, NULL);
    if (p->tap_ifindex < 0) {
        rc = p->tap_ifindex;
        snprintf(err, errlen, "tap %s: %s", tap, strerror(-rc));
        goto fail;
    }
    /* The queue first, the redirect into it last: no frame is ever sent
     * to an ifb that cannot hold it yet. */
    if ((rc = p->ifb_ifindex = ifb_create(p->sk, ifb, ifb, &replaced, err, errlen)) < 0 ||
        (rc = qdisc_create(p->sk, p->ifb_ifindex, ifb, TC_H_ROOT, PLUG_HANDLE, root_kind, limit_bytes, err,
                           errlen)) ||
        (rc = link_up(p->sk, p->ifb_ifindex, ifb, err, errlen)) ||
        (rc = qdisc_create(p->sk, p->tap_ifindex, tap, TC_H_INGRESS, INGRESS_HANDLE, "ingress", 0, err, errlen)))
        goto fail;
    p->made_ingress = true;
    if ((rc = redirect_add(p->sk, p->tap_ifindex, tap, p->ifb_ifindex, err, errlen)))
        goto fail;
    if (replaced)
        snprintf(err, errlen, "replaced a stale %s (left by a process that died?)", ifb);
    *out = p;
    return 0;
fail:
    netbuf_plug_teardown(p, 0);
    return rc < 0 ? rc : -EIO;
}

const char *netbuf_plug_ifb_name(const struct netbuf_plug *p) { return p->ifb; }

/* A change of the plug qdisc there: the message its `set` made. */
static int plug_op(struct netbuf_plug *p, int (*set)(struct rtnl_qdisc *), const char *what, char *err,
                   size_t errlen)
{
    if (strcmp(p->kind, "plug")) {
        snprintf(err, errlen, "%s: %s's root qdisc is %s, not plug", what, p->ifb, p->kind);
        return -EINVAL;
    }
    struct rtnl_qdisc *q = qdisc_obj(p->ifb_ifindex, TC_H_ROOT, PLUG_HANDLE, "plug");
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int e = set(q);
    if (e >= 0)
        e = rtnl_qdisc_add(p->sk, q, 0);   /* same parent and handle, no NLM_F_CREATE: a change */
    rtnl_qdisc_put(q);
    if (e < 0) {
        char w[64];
        snprintf(w, sizeof(w), "%s on %s", what, p->ifb);
        explain(err, errlen, w, e);
        return nl_to_errno(e);
    }
    return 0;
}

int netbuf_plug_barrier(struct netbuf_plug *p, char *err, size_t errlen)
{
    return plug_op(p, rtnl_qdisc_plug_buffer, "plug buffer", err, errlen);
}

int netbuf_plug_release_one(struct netbuf_plug *p, char *err, size_t errlen)
{
    return plug_op(p, rtnl_qdisc_plug_release_one, "plug release_one", err, errlen);
}

int netbuf_plug_release_indefinite(struct netbuf_plug *p, char *err, size_t errlen)
{
    return plug_op(p, rtnl_qdisc_plug_release_indefinite, "plug release_indefinite", err, errlen);
}

int netbuf_plug_counters(struct netbuf_plug *p, struct netbuf_plug_counters *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct nl_cache *cache = NULL;
    int e = rtnl_qdisc_alloc_cache(p->sk, &cache);
    if (e < 0) {
        explain(err, errlen, "listing qdiscs", e);
        return nl_to_errno(e);
    }
    struct rtnl_qdisc *q = rtnl_qdisc_get_by_parent(cache, p->ifb_ifindex, TC_H_ROOT);
    int rc = 0;
    if (!q) {
        snprintf(err, errlen, "%s has no root qdisc any more", p->ifb);
        rc = -ENOENT;
    } else {
        out->qlen = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_QLEN);
        out->backlog = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_BACKLOG);
        out->sent = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_PACKETS);
        out->drops = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_DROPS);
        rtnl_qdisc_put(q);
    }
    nl_cache_free(cache);
    return rc;
}

static void drain(struct netbuf_plug *p, unsigned ms)
{
    struct timespec t0, now, tick = { .tv_nsec = 1000000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct netbuf_plug_counters c;
        char err[128];
        if (netbuf_plug_counters(p, &c, err, sizeof(err)) || !c.qlen)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
            return;
        nanosleep(&tick, NULL);
    }
}

void netbuf_plug_teardown(struct netbuf_plug *p, unsigned drain_ms)
{
    if (!p)
        return;
    if (p->sk) {
        if (drain_ms && p->ifb_ifindex > 0)
            drain(p, drain_ms);
        /* The redirect goes first: from then on frames go straight to the
         * bridge, and the ifb's queue (emptied above, or dropped) goes
         * with it.  Deleting the ingress qdisc deletes its filter. */
        if (p->made_ingress)
            qdisc_remove(p->sk, p->tap_ifindex, TC_H_INGRESS, INGRESS_HANDLE, "ingress");
        if (drain_ms && p->ifb_ifindex > 0)
            drain(p, drain_ms < 20 ? drain_ms : 20);   /* a frame caught in flight */
        if (p->ifb_ifindex > 0)
            link_delete(p->sk, p->ifb_ifindex);
        nl_socket_free(p->sk);
    }
    free(p);
}

/* ---- The probe ------------------------------------------------------------ */

bool netbuf_plug_probe(char *reason, size_t len)
{
    static unsigned seq;
    unsigned n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED) % 1000;
    char tap[IFNAMSIZ], ifb[IFNAMSIZ];
    snprintf(tap, sizeof(tap), "tpt%u.%u", (unsigned)getpid() % 10000000u, n);
    snprintf(ifb, sizeof(ifb), "tpi%u.%u", (unsigned)getpid() % 10000000u, n);
    reason[0] = '\0';

    struct tlog_buffer tb;
    tlog_buffer_init(&tb);
    int fd = tap_create(tap, "", &tb.log);
    if (fd < 0) {
        snprintf(reason, len, "cannot make a probe tap: %s", tb.last[0] ? tb.last : strerror(-fd));
        return false;
    }
    struct nl_sock *sk = NULL;
    bool ok = false;
    if (open_sock(&sk, reason, len))
        goto out;
    int tapi = link_index(sk, tap, NULL);
    if (tapi < 0) {
        snprintf(reason, len, "the probe tap %s cannot be found: %s", tap, strerror(-tapi));
        goto out;
    }
    /* The two parts apart first, so that the reason names each one that
     * is missing. */
    char plug_err[200] = "", ifb_err[200] = "";
    int rc_plug = qdisc_create(sk, tapi, "a throw-away tap", TC_H_ROOT, PLUG_HANDLE, "plug", 65536, plug_err,
                               sizeof(plug_err));
    if (!rc_plug)
        qdisc_remove(sk, tapi, TC_H_ROOT, PLUG_HANDLE, "plug");
    bool replaced = false;
    int ifbi = ifb_create(sk, ifb, "a throw-away ifb", &replaced, ifb_err, sizeof(ifb_err));
    if (ifbi > 0)
        link_delete(sk, ifbi);
    if (rc_plug || ifbi < 0) {
        snprintf(reason, len, "%s%s%s", rc_plug ? plug_err : "", rc_plug && ifbi < 0 ? "; " : "",
                 ifbi < 0 ? ifb_err : "");
        goto out;
    }
    /* Then the whole chain, ingress qdisc, u32 and mirred included. */
    struct netbuf_plug *p;
    if (netbuf_plug_setup(&p, tap, ifb, 65536, "plug", reason, len) == 0) {
        netbuf_plug_teardown(p, 0);
        reason[0] = '\0';
        ok = true;
    }
out:
    if (sk)
        nl_socket_free(sk);
    close(fd);   /* the tap goes, and with it whatever is left on it */
    return ok;
}

/* ---- Epochs ----------------------------------------------------------------- */

bool netbuf_plug_epochs_mark(struct netbuf_plug_epochs *e, uint64_t closed)
{
    if (closed <= e->last_closed)
        return false;
    e->last_closed = closed;
    if (e->barrier) {
        e->merged++;
        return false;
    }
    e->barrier = closed;
    return true;
}

bool netbuf_plug_epochs_release(struct netbuf_plug_epochs *e, uint64_t upto)
{
    if (!e->barrier || upto < e->barrier)
        return false;
    e->released = e->barrier;
    e->barrier = 0;
    return true;
}
