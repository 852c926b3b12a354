/* Remus output commit in the kernel, as Xen's Remus does it: the guest's
 * frames reach the host at the tap's ingress; an ingress qdisc there with
 * a match-everything u32 filter redirects them (mirred egress redirect)
 * to an ifb device whose root qdisc is `plug`.  A "buffer" message puts
 * an epoch barrier in the plug queue, "release_one" lets out the frames
 * before the oldest barrier not yet released, "release_indefinite" opens
 * it for good.  Internal to xen/ (xen/devices.c's PLUG backend).
 *
 * The plug qdisc remembers only two counts: the frames of the current
 * epoch and of the one before the last barrier.  A second barrier before
 * that one is released would merge the counts and let frames out early,
 * so struct netbuf_plug_epochs below never asks for one then: the epochs
 * closed meanwhile stay with the open one and go out with a later ack.
 *
 * Errors come back as -errno with the reason in err (errlen bytes); none
 * of these functions logs. */
#ifndef TANDEM_NETBUF_PLUG_H
#define TANDEM_NETBUF_PLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether this kernel can do it: a throw-away tap and ifb are made, the
 * plug qdisc, the ingress qdisc, the u32 filter and the mirred action are
 * tried on them, and everything is deleted again (also when a step
 * fails).  false with the reason ("no plug qdisc (...)") when not. */
bool netbuf_plug_probe(char *reason, size_t len);

/* One vif's plumbing, with its own rtnetlink socket: one caller at a
 * time (xen/devices.c serialises them under its plug_lock). */
struct netbuf_plug;

/* Builds it for tap `tap` (which must exist): ifb `ifb` (made here; a
 * stale ifb of that name, left by a process that died, is replaced),
 * `root_kind` as its root qdisc ("plug", or NULL for it; tests on kernels
 * without sch_plug pass "pfifo" to check the rest), limit_bytes its bound
 * (the plug qdisc drops beyond it), then the redirect on the tap.  On
 * failure nothing it made is left. */
int netbuf_plug_setup(struct netbuf_plug **out, const char *tap, const char *ifb, size_t limit_bytes,
                      const char *root_kind, char *err, size_t errlen);
const char *netbuf_plug_ifb_name(const struct netbuf_plug *p);

/* The plug messages (root_kind "plug" only). */
int netbuf_plug_barrier(struct netbuf_plug *p, char *err, size_t errlen);
int netbuf_plug_release_one(struct netbuf_plug *p, char *err, size_t errlen);
int netbuf_plug_release_indefinite(struct netbuf_plug *p, char *err, size_t errlen);

/* The root qdisc's counters, from the kernel: frames and bytes queued
 * now, frames it has let out since setup, frames it dropped. */
struct netbuf_plug_counters { uint64_t qlen, backlog, sent, drops; };
int netbuf_plug_counters(struct netbuf_plug *p, struct netbuf_plug_counters *out, char *err, size_t errlen);

/* Removes the redirect and the ifb (its queue with it) and frees p.
 * drain_ms > 0: first waits up to that long for the queue to empty (after
 * a release_indefinite); 0 drops whatever is queued.  Never fails: what
 * cannot be removed (the tap is already gone, say) is skipped. */
void netbuf_plug_teardown(struct netbuf_plug *p, unsigned drain_ms);

/* ---- Epoch bookkeeping for a domain's vifs (no kernel) -------------------
 * barrier: the epoch whose end the one barrier in the qdiscs marks (0 =
 * none); released: every epoch <= it is out; last_closed: the last epoch
 * a mark closed; merged: how often a mark found a barrier pending. */
struct netbuf_plug_epochs { uint64_t barrier, released, last_closed, merged; };
/* Epoch `closed` has ended (marks come in order): true if a barrier is to
 * be inserted now. */
bool netbuf_plug_epochs_mark(struct netbuf_plug_epochs *e, uint64_t closed);
/* Epochs <= upto are acknowledged: true if a release_one is to be sent
 * (the pending barrier's epoch is covered); `released` moves to it. */
bool netbuf_plug_epochs_release(struct netbuf_plug_epochs *e, uint64_t upto);

#endif
