/*
 * tandem-guest: workload=virtio_hostile, a driver that breaks the rules
 * on purpose, for host tests that check a device stops with an error
 * (DEVICE_NEEDS_RESET) while the VMM process and the other devices
 * carry on.
 *
 * The target is the first virtio-blk disk, or else the first vif.  With
 * ip= and a vif that is not the target, the guest also runs the network
 * stack (ping, no kv), so a test can see another device keep working.
 * `after` ms after start, one malformed request is made available on
 * the target's first usable queue and notified; see README.md for the
 * modes.  From then on the device's Status register is watched.
 */
#include "virtio.h"

#define HOSTILE_FAR_ADDR	(1ULL << 40)	/* 1 TiB: outside any test guest's RAM */
#define HOSTILE_WATCH_MS	100
#define HOSTILE_GIVE_UP_MS	10000

static struct blk hb;
static struct net *hn;
static bool have_net;

static struct {
	struct virtio_dev *dev;
	struct virtq *q;
	const char *target;
	bool injected;
	const char *result;		/* NULL until decided */
	uint32_t status;
	uint16_t used_at_inject;
	uint64_t inject_tsc;
} h;

/* A descriptor written by hand: no free list, no private links. */
static void put_desc(struct virtq *q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	q->desc[i].addr = addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

static void inject(uint64_t mode)
{
	struct virtq *q = h.q;
	const uint16_t n = q->size;
	const uint16_t NEXT = VIRTQ_DESC_F_NEXT, WRITE = VIRTQ_DESC_F_WRITE;
	/* Something the device may read (a valid request header for blk,
	 * an all-zero net header for the vif) and something it may write
	 * (blk's status byte; the vif's transmit queue needs none). */
	uint64_t rd, wr;
	uint32_t rd_len;
	bool blk = h.dev == &hb.dev;

	if (blk) {
		*hb.status = 0xff;
		hb.hdr->type = VIRTIO_BLK_T_IN;
		hb.hdr->reserved = 0;
		hb.hdr->sector = 0;
		rd = (uintptr_t)hb.hdr;
		rd_len = sizeof(*hb.hdr);
		wr = (uintptr_t)hb.status;
	} else {
		memset(hn->tx_bufs, 0, 64);
		rd = (uintptr_t)hn->tx_bufs;
		rd_len = 64;
		wr = rd;
	}
	uint16_t wflag = blk ? WRITE : 0;

	switch (mode) {
	case 1:		/* two descriptors that point at each other; both
			 * readable, so only the loop is wrong */
		put_desc(q, 0, rd, rd_len, NEXT, 1);
		put_desc(q, 1, rd, rd_len, NEXT, 0);
		break;
	case 2:		/* a buffer outside guest RAM */
		put_desc(q, 0, rd, rd_len, NEXT, 1);
		put_desc(q, 1, HOSTILE_FAR_ADDR, 512, wflag | NEXT, 2);
		put_desc(q, 2, wr, 1, wflag, 0);
		if (!blk)
			put_desc(q, 0, HOSTILE_FAR_ADDR, 64, 0, 0);
		break;
	case 3:		/* every descriptor in one ring: longer than the queue */
		for (uint16_t i = 0; i < n; i++)
			put_desc(q, i, rd, rd_len, NEXT, (uint16_t)((i + 1) % n));
		break;
	case 4:		/* next beyond the table */
		put_desc(q, 0, rd, rd_len, NEXT, (uint16_t)(n + 7));
		break;
	case 5:		/* avail index far ahead of anything possible */
		put_desc(q, 0, rd, rd_len, blk ? NEXT : 0, 1);
		put_desc(q, 1, wr, 1, wflag, 0);
		q->avail->ring[q->avail_idx & (n - 1)] = 0;
		barrier();
		q->avail->idx = (uint16_t)(q->avail_idx + n + 1);
		virtq_kick(h.dev, q);
		return;
	case 6:		/* header shorter than the device's header */
		put_desc(q, 0, rd, 4, blk ? NEXT : 0, 1);
		put_desc(q, 1, wr, 1, wflag, 0);
		break;
	default:	/* head index beyond the table */
		q->avail->ring[q->avail_idx & (n - 1)] = (uint16_t)(n + 1);
		barrier();
		q->avail->idx = ++q->avail_idx;
		virtq_kick(h.dev, q);
		return;
	}
	q->avail->ring[q->avail_idx & (n - 1)] = 0;
	barrier();
	q->avail->idx = ++q->avail_idx;
	virtq_kick(h.dev, q);
}

static void watch(void)
{
	uint64_t now = rdtsc();

	h.status = vio_read(h.dev, VIRTIO_MMIO_STATUS);
	if (h.result)
		return;
	if (h.status & VIRTIO_STATUS_NEEDS_RESET)
		h.result = "needs_reset";
	else if (h.status & VIRTIO_STATUS_FAILED)
		h.result = "failed";
	else if (h.q->used->idx != h.used_at_inject)
		h.result = "completed";	/* the device took it as valid */
	else if (now - h.inject_tsc > ms_to_tsc(HOSTILE_GIVE_UP_MS))
		h.result = "no_reaction";
	/* For blk, what the device wrote into the status byte (0xff:
	 * nothing) says how it completed a request it accepted. */
	if (h.result)
		printk("TANDEM-GUEST virtio_hostile result=%s mode=%lu target=%s "
		       "status=0x%x blk_status=%u\n", h.result, cfg.hostile_mode,
		       h.target, h.status, h.dev == &hb.dev ? *hb.status : 0xff);
}

void run_virtio_hostile(struct cpu *c)
{
	hn = alloc_zeroed(sizeof(*hn));
	if (cfg.ip && hn)
		have_net = !net_service_start(hn, "virtio_hostile");
	if (!blk_init(&hb)) {
		h.dev = &hb.dev;
		h.q = &hb.dev.vq[0];
		h.target = "blk";
	} else if (have_net) {
		h.dev = &hn->dev;
		h.q = &hn->dev.vq[1];		/* transmitq */
		h.target = "net";
		have_net = false;		/* it is about to break */
	} else {
		printk("TANDEM-GUEST warning no_device workload=virtio_hostile\n");
		workload_idle(c);
	}
	printk("TANDEM-GUEST virtio_hostile target=%s slot=%u mode=%lu after_ms=%lu\n",
	       h.target, h.dev->slot, cfg.hostile_mode, cfg.after_ms);

	const uint64_t start = rdtsc(), at = start + ms_to_tsc(cfg.after_ms);
	uint64_t next_watch = 0;
	for (;;) {
		uint64_t seen = virtio_irq_total();
		bool busy = have_net && net_poll(hn);
		uint64_t now = rdtsc();
		if (!h.injected && now >= at) {
			h.used_at_inject = h.q->used->idx;
			h.inject_tsc = now;
			printk("TANDEM-GUEST virtio_hostile inject mode=%lu target=%s\n",
			       cfg.hostile_mode, h.target);
			inject(cfg.hostile_mode);
			h.injected = true;
		}
		if (h.injected && now >= next_watch) {
			watch();
			next_watch = now + ms_to_tsc(HOSTILE_WATCH_MS);
		}
		workload_poll(c);
		if (!busy)
			virtio_wait(seen);
	}
}

int hostile_report(char *buf, size_t len)
{
	int k = snprintk(buf, len, " hostile_mode=%lu hostile_target=%s "
			 "hostile_injected=%u hostile_status=0x%x hostile_result=%s",
			 cfg.hostile_mode, h.target ? h.target : "none", h.injected,
			 h.status, h.result ? h.result : "pending");
	if (k < 0 || (size_t)k >= len || !have_net)
		return k;
	return k + net_report(hn, buf + k, len - (size_t)k);
}
