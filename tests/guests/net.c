/*
 * tandem-guest: virtio-net and a minimal IPv4 stack.
 *
 * Ethernet II; ARP (answers for our address, a small cache that also
 * learns from the frames of on-link senders); IPv4 without fragments or
 * options of our own (options in received headers are skipped); ICMP
 * echo replies; UDP to one bound port.  Static address from `ip=`.
 *
 * Buffers: receive descriptor i always owns rx buffer i and transmit
 * descriptor i tx buffer i, so a buffer can only be where its
 * descriptor is: with the device (posted) or on the queue's free list.
 * Every used receive buffer is handed back at the end of the pass that
 * found it, so the device normally holds all of them (rx_bufs=).
 */
#include "virtio.h"

#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_STATUS	16
#define VIRTIO_NET_S_LINK_UP	1

#define RXQ 0
#define TXQ 1

#define ETH_P_IP	0x0800
#define ETH_P_ARP	0x0806
#define IP_PROTO_ICMP	1
#define IP_PROTO_UDP	17
#define IP_HLEN		20
#define UDP_HLEN	8
#define ARP_LEN		28
#define ARP_RETRY_MS	1000

static const uint8_t eth_broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* RFC 1071 ones-complement sum. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	size_t i;
	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len)
		sum += (uint32_t)p[i] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sum of the UDP pseudo-header. */
static uint64_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto,
			   uint16_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	       proto + len;
}

static bool on_link(const struct net *n, uint32_t ip)
{
	return (ip & n->netmask) == (n->ip & n->netmask);
}

/* ---------------------------------------------------------------- */
/* Device */

static void rx_refill(struct net *n)
{
	struct virtq *q = &n->dev.vq[RXQ];
	uint16_t id;

	while (q->nfree) {
		virtq_alloc_chain(q, 1, &id);
		q->desc[id].addr = (uintptr_t)(n->rx_bufs + (uint64_t)id * NET_RX_BUF);
		q->desc[id].len = NET_RX_BUF;
		q->desc[id].flags = VIRTQ_DESC_F_WRITE;
		virtq_publish(q, id);
		n->rx_kick_pending = true;
	}
	n->rx_posted = (uint16_t)(q->size - q->nfree);
}

static void tx_reclaim(struct net *n)
{
	uint16_t id;
	uint32_t len;
	while (virtq_reap(&n->dev.vq[TXQ], &id, &len))
		;
}

static bool in_poll;

/* Queue one Ethernet frame (header already filled in). */
static int tx_frame(struct net *n, const uint8_t *frame, size_t len)
{
	struct virtq *q = &n->dev.vq[TXQ];
	uint16_t id;

	if (len < ETH_HLEN || len > ETH_MAX_FRAME)
		return -EINVAL;
	if (!q->nfree) {
		/* Full within one poll pass: the device has not even been
		 * told about the waiting frames yet. */
		if (n->tx_kick_pending) {
			virtq_kick(&n->dev, q);
			n->tx_kick_pending = false;
		}
		tx_reclaim(n);
	}
	if (virtq_alloc_chain(q, 1, &id)) {
		n->st.tx_dropped++;
		return -ENOBUFS;
	}
	uint8_t *buf = n->tx_bufs + (uint64_t)id * NET_RX_BUF;
	memset(buf, 0, NET_HDR_LEN);	/* no offloads: all-zero header */
	memcpy(buf + NET_HDR_LEN, frame, len);
	/* Ethernet minimum: pad to 60 bytes so bridges never see runts. */
	size_t wire = len < 60 ? 60 : len;
	if (wire > len)
		memset(buf + NET_HDR_LEN + len, 0, wire - len);
	q->desc[id].addr = (uintptr_t)buf;
	q->desc[id].len = (uint32_t)(NET_HDR_LEN + wire);
	q->desc[id].flags = 0;
	virtq_publish(q, id);
	n->st.tx_frames++;
	if (in_poll)
		n->tx_kick_pending = true;
	else
		virtq_kick(&n->dev, q);
	return 0;
}

int net_init(struct net *n)
{
	int r;

	memset(n, 0, sizeof(*n));
	r = virtio_find(VIRTIO_ID_NET, 0, &n->dev);
	if (r)
		return r;
	r = virtio_negotiate(&n->dev, 1ULL << VIRTIO_NET_F_MAC |
					 1ULL << VIRTIO_NET_F_STATUS);
	if (r)
		return r;
	if ((r = virtq_setup(&n->dev, RXQ, VIRTQ_MAX_SIZE)) ||
	    (r = virtq_setup(&n->dev, TXQ, VIRTQ_MAX_SIZE)))
		return r;

	if (n->dev.features & (1ULL << VIRTIO_NET_F_MAC)) {
		for (unsigned i = 0; i < 6; i++)
			n->mac[i] = virtio_config_read8(&n->dev, i);
	} else {
		/* Locally administered, unicast, and stable for this
		 * run (it migrates with the rest of RAM). */
		uint64_t x = mix64(rdtsc());
		n->mac[0] = 0x02;
		for (unsigned i = 1; i < 6; i++)
			n->mac[i] = (uint8_t)(x >> (8 * i));
	}
	n->link_known = n->dev.features & (1ULL << VIRTIO_NET_F_STATUS);
	n->link_up = !n->link_known ||
		     (virtio_config_read16(&n->dev, 6) & VIRTIO_NET_S_LINK_UP);

	const uint16_t rxn = n->dev.vq[RXQ].size, txn = n->dev.vq[TXQ].size;
	n->rx_bufs = mm_alloc_contig((uint64_t)rxn * NET_RX_BUF);
	n->tx_bufs = mm_alloc_contig((uint64_t)txn * NET_RX_BUF);
	if (!n->rx_bufs || !n->tx_bufs)
		return -ENOMEM;
	/* Transmit completions are collected lazily, when a send needs
	 * a descriptor: ask the device not to interrupt for them. */
	n->dev.vq[TXQ].avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	n->ip = cfg.ip;
	n->netmask = cfg.netmask;
	n->gw = cfg.gw;
	rx_refill(n);
	virtio_go(&n->dev);
	virtq_kick(&n->dev, &n->dev.vq[RXQ]);
	n->rx_kick_pending = false;
	return 0;
}

/* ---------------------------------------------------------------- */
/* ARP */

static struct arp_entry *arp_find(struct net *n, uint32_t ip)
{
	for (unsigned i = 0; i < ARP_CACHE_SIZE; i++)
		if (n->arp[i].ip == ip)
			return &n->arp[i];
	return NULL;
}

/* A free entry, or else the one least recently used. */
static struct arp_entry *arp_new(struct net *n, uint32_t ip)
{
	struct arp_entry *victim = &n->arp[0];

	for (unsigned i = 0; i < ARP_CACHE_SIZE; i++) {
		struct arp_entry *e = &n->arp[i];
		if (!e->ip) {
			victim = e;
			break;
		}
		if (e->last_use_tsc < victim->last_use_tsc)
			victim = e;
	}
	if (victim->ip && victim->pending_len)
		n->st.tx_dropped++;
	memset(victim, 0, sizeof(*victim) - sizeof(victim->pending));
	victim->ip = ip;
	victim->last_use_tsc = rdtsc();
	return victim;
}

static void arp_send(struct net *n, uint16_t op, const uint8_t *dst_mac,
		     const uint8_t *target_mac, uint32_t target_ip)
{
	uint8_t f[ETH_HLEN + ARP_LEN];

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, n->mac, 6);
	put16(f + 12, ETH_P_ARP);
	uint8_t *a = f + ETH_HLEN;
	put16(a, 1);			/* Ethernet */
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, n->mac, 6);
	put32(a + 14, n->ip);
	memcpy(a + 18, target_mac, 6);
	put32(a + 24, target_ip);
	tx_frame(n, f, sizeof(f));
}

/* Record ip -> mac; with `create`, even for an address not yet cached.
 * A frame waiting for the address goes out now. */
static void arp_learn(struct net *n, uint32_t ip, const uint8_t *mac,
		      bool create)
{
	if (!ip || ip == n->ip || (mac[0] & 1))
		return;			/* no multicast/broadcast MACs */
	struct arp_entry *e = arp_find(n, ip);
	if (!e) {
		if (!create)
			return;
		e = arp_new(n, ip);
	}
	memcpy(e->mac, mac, 6);
	e->resolved = true;
	e->last_use_tsc = rdtsc();
	if (e->pending_len) {
		memcpy(e->pending, mac, 6);
		tx_frame(n, e->pending, e->pending_len);
		e->pending_len = 0;
	}
}

/* Announce our address (gratuitous ARP request): switches learn where
 * the MAC is, peers refresh their caches. */
void net_announce(struct net *n)
{
	static const uint8_t zero[6];
	arp_send(n, 1, eth_broadcast, zero, n->ip);
}

static void arp_input(struct net *n, const uint8_t *f, size_t len)
{
	const uint8_t *a = f + ETH_HLEN;

	if (len < ETH_HLEN + ARP_LEN || get16(a) != 1 ||
	    get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
		n->st.rx_dropped++;
		return;
	}
	uint16_t op = get16(a + 6);
	uint32_t spa = get32(a + 14), tpa = get32(a + 24);
	const uint8_t *sha = a + 8;
	bool for_us = n->ip && tpa == n->ip;

	/* RFC 826: refresh an existing entry from any ARP packet; only
	 * packets for us create one. */
	arp_learn(n, spa, sha, for_us);
	if (!for_us) {
		n->st.rx_ignored++;
		return;
	}
	if (op == 1 && spa != n->ip) {
		arp_send(n, 2, sha, sha, spa);
		n->st.arp_replies++;
	}
}

/* Send an IPv4 packet (ip points at a complete header + payload) to
 * its destination's next hop: the address itself on the link, else the
 * gateway.  An unresolved next hop gets an ARP request and keeps the
 * frame until the answer (one frame per address; a newer one replaces
 * it). */
static int ip_output(struct net *n, uint32_t dst, uint8_t *frame, size_t len)
{
	uint32_t hop = dst;

	memcpy(frame + 6, n->mac, 6);
	put16(frame + 12, ETH_P_IP);
	if (dst == 0xffffffffu) {
		memcpy(frame, eth_broadcast, 6);
		return tx_frame(n, frame, len);
	}
	if (!on_link(n, dst)) {
		if (!n->gw) {
			n->st.tx_dropped++;
			return -EINVAL;	/* no route */
		}
		hop = n->gw;
	}
	struct arp_entry *e = arp_find(n, hop);
	uint64_t now = rdtsc();
	if (e && e->resolved) {
		e->last_use_tsc = now;
		memcpy(frame, e->mac, 6);
		return tx_frame(n, frame, len);
	}
	if (!e)
		e = arp_new(n, hop);
	if (e->pending_len)
		n->st.tx_dropped++;
	memcpy(e->pending, frame, len);
	e->pending_len = (uint16_t)len;
	if (!e->asked_tsc || now - e->asked_tsc >= ms_to_tsc(ARP_RETRY_MS)) {
		static const uint8_t zero[6];
		e->asked_tsc = now ? now : 1;
		arp_send(n, 1, eth_broadcast, zero, hop);
		n->st.arp_requests++;
	}
	return 0;
}

static uint16_t ip_ident;

/* Fill an IPv4 header in front of a payload of `plen` bytes. */
static void ip_header(struct net *n, uint8_t *ip, uint32_t dst, uint8_t proto,
		      size_t plen)
{
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_HLEN + plen));
	put16(ip + 4, ip_ident++);
	put16(ip + 6, 0x4000);		/* DF: we never fragment */
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	put32(ip + 12, n->ip);
	put32(ip + 16, dst);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
}

/* Scratch frame for what we send (one at a time: single-threaded). */
static uint8_t out_frame[ETH_MAX_FRAME];

static void icmp_input(struct net *n, const uint8_t *f, uint32_t src,
		       const uint8_t *icmp, size_t len)
{
	(void)f;
	if (len < 8 || csum_fold(csum_add(0, icmp, len)) != 0) {
		n->st.rx_bad_csum++;
		n->st.rx_dropped++;
		return;
	}
	if (icmp[0] != 8 || icmp[1] != 0) {	/* echo request only */
		n->st.rx_ignored++;
		return;
	}
	if (ETH_HLEN + IP_HLEN + len > sizeof(out_frame)) {
		n->st.rx_dropped++;
		return;
	}
	uint8_t *ip = out_frame + ETH_HLEN, *reply = ip + IP_HLEN;
	memcpy(reply, icmp, len);
	reply[0] = 0;			/* echo reply */
	put16(reply + 2, 0);
	put16(reply + 2, csum_fold(csum_add(0, reply, len)));
	ip_header(n, ip, src, IP_PROTO_ICMP, len);
	n->st.icmp_echo++;
	ip_output(n, src, out_frame, ETH_HLEN + IP_HLEN + len);
}

static void udp_input(struct net *n, uint32_t src, uint32_t dst,
		      const uint8_t *udp, size_t len)
{
	if (len < UDP_HLEN) {
		n->st.rx_dropped++;
		return;
	}
	uint16_t ulen = get16(udp + 4);
	if (ulen < UDP_HLEN || ulen > len) {
		n->st.rx_dropped++;
		return;
	}
	/* Checksum 0 means the sender did not compute one (IPv4). */
	if (get16(udp + 6) &&
	    csum_fold(csum_add(pseudo_sum(src, dst, IP_PROTO_UDP, ulen), udp, ulen))) {
		n->st.rx_bad_csum++;
		n->st.rx_dropped++;
		return;
	}
	uint16_t sport = get16(udp), dport = get16(udp + 2);
	if (!n->udp_rx || dport != n->udp_port) {
		n->st.udp_no_port++;
		n->st.rx_ignored++;
		return;
	}
	n->st.udp_rx++;
	n->udp_rx(n, src, sport, dport, udp + UDP_HLEN, ulen - UDP_HLEN);
}

int net_udp_send(struct net *n, uint32_t dst_ip, uint16_t src_port,
		 uint16_t dst_port, const void *data, size_t len)
{
	if (ETH_HLEN + IP_HLEN + UDP_HLEN + len > sizeof(out_frame))
		return -EINVAL;
	uint8_t *ip = out_frame + ETH_HLEN, *udp = ip + IP_HLEN;
	uint16_t ulen = (uint16_t)(UDP_HLEN + len);

	put16(udp, src_port);
	put16(udp + 2, dst_port);
	put16(udp + 4, ulen);
	put16(udp + 6, 0);
	memcpy(udp + UDP_HLEN, data, len);
	uint16_t sum = csum_fold(csum_add(pseudo_sum(n->ip, dst_ip, IP_PROTO_UDP,
						     ulen), udp, ulen));
	put16(udp + 6, sum ? sum : 0xffff);
	ip_header(n, ip, dst_ip, IP_PROTO_UDP, ulen);
	return ip_output(n, dst_ip, out_frame, ETH_HLEN + IP_HLEN + ulen);
}

static void ip_input(struct net *n, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH_HLEN;

	if (len < ETH_HLEN + IP_HLEN || ip[0] >> 4 != 4) {
		n->st.rx_dropped++;
		return;
	}
	size_t hl = (size_t)(ip[0] & 15) * 4;
	size_t total = get16(ip + 2);
	/* Frames may carry padding after the packet, never less. */
	if (hl < IP_HLEN || total < hl || ETH_HLEN + total > len) {
		n->st.rx_dropped++;
		return;
	}
	if (csum_fold(csum_add(0, ip, hl)) != 0) {
		n->st.rx_bad_csum++;
		n->st.rx_dropped++;
		return;
	}
	uint32_t src = get32(ip + 12), dst = get32(ip + 16);
	if (!n->ip || dst != n->ip) {
		n->st.rx_ignored++;
		return;
	}
	/* No reassembly: drop any fragment (MF set or an offset). */
	if (get16(ip + 6) & 0x3fff) {
		n->st.rx_dropped++;
		return;
	}
	/* Glean the sender's MAC so a reply needs no ARP round trip. */
	if (on_link(n, src))
		arp_learn(n, src, f + 6, true);
	switch (ip[9]) {
	case IP_PROTO_ICMP:
		icmp_input(n, f, src, ip + hl, total - hl);
		break;
	case IP_PROTO_UDP:
		udp_input(n, src, dst, ip + hl, total - hl);
		break;
	default:
		n->st.rx_ignored++;
		break;
	}
}

static void eth_input(struct net *n, const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN) {
		n->st.rx_dropped++;
		return;
	}
	if (memcmp(f, n->mac, 6) && memcmp(f, eth_broadcast, 6)) {
		n->st.rx_ignored++;	/* another host's or multicast */
		return;
	}
	switch (get16(f + 12)) {
	case ETH_P_ARP:
		arp_input(n, f, len);
		break;
	case ETH_P_IP:
		ip_input(n, f, len);
		break;
	default:
		n->st.rx_ignored++;	/* IPv6, VLANs, ... */
		break;
	}
}

bool net_poll(struct net *n)
{
	struct virtq *rxq = &n->dev.vq[RXQ];
	bool work = false;
	uint16_t id;
	uint32_t len;

	virtio_ack(&n->dev);
	in_poll = true;
	while (virtq_reap(rxq, &id, &len)) {
		work = true;
		n->st.rx_frames++;
		if (len < NET_HDR_LEN + ETH_HLEN || len > NET_RX_BUF) {
			n->st.rx_dropped++;
			continue;
		}
		eth_input(n, n->rx_bufs + (uint64_t)id * NET_RX_BUF + NET_HDR_LEN,
			  len - NET_HDR_LEN);
	}
	in_poll = false;
	/* Hand every buffer back before anything else can happen. */
	rx_refill(n);
	tx_reclaim(n);
	if (n->rx_kick_pending) {
		virtq_kick(&n->dev, rxq);
		n->rx_kick_pending = false;
	}
	if (n->tx_kick_pending) {
		virtq_kick(&n->dev, &n->dev.vq[TXQ]);
		n->tx_kick_pending = false;
	}
	return work;
}

int net_report(const struct net *n, char *buf, size_t len)
{
	const uint64_t bad_used = n->dev.vq[RXQ].bad_used + n->dev.vq[TXQ].bad_used;

	return snprintk(buf, len, " rx_frames=%lu tx_frames=%lu rx_dropped=%lu "
			"rx_ignored=%lu tx_dropped=%lu rx_bad_csum=%lu arp_replies=%lu "
			"icmp_echo=%lu rx_bufs=%u virtio_irqs=%lu virtio_bad_used=%lu",
			n->st.rx_frames, n->st.tx_frames, n->st.rx_dropped,
			n->st.rx_ignored, n->st.tx_dropped, n->st.rx_bad_csum,
			n->st.arp_replies, n->st.icmp_echo, n->rx_posted,
			virtio_irq_count[n->dev.slot], bad_used);
}
