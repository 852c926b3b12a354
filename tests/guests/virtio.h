/*
 * tandem-guest: virtio-mmio (version 2) transport, split virtqueues, and
 * the devices and services built on them (net, blk, kv, disklog).
 *
 * Everything here runs in ring 3 except virtio_map_windows() (called by
 * workload_prepare() in ring 0) and the interrupt handler in arch.c,
 * which only counts and sends EOI.  Device registers are read and
 * written from ring 3 directly: every page of the identity map is
 * user-accessible, and an MMIO access from ring 3 exits to the VMM like
 * one from ring 0 (only port I/O needs ring 0, see README.md).
 */
#ifndef TANDEM_GUEST_VIRTIO_H
#define TANDEM_GUEST_VIRTIO_H

#include "guest.h"

/* ---------------------------------------------------------------- */
/* Register file (virtio 1.x, MMIO transport, version 2) */

#define VIRTIO_MMIO_MAGIC		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL	0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL	0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC_VALUE		0x74726976	/* "virt" */

/* Device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	64
#define VIRTIO_STATUS_FAILED		128

#define VIRTIO_F_VERSION_1		32

#define VIRTIO_ID_NET			1
#define VIRTIO_ID_BLOCK			2

/* Split virtqueue layout (virtio 1.x section 2.7) */
#define VIRTQ_DESC_F_NEXT		1
#define VIRTQ_DESC_F_WRITE		2
#define VIRTQ_AVAIL_F_NO_INTERRUPT	1

/* Our own cap: the contract's QueueNumMax is 256, QEMU's is larger. */
#define VIRTQ_MAX_SIZE			256

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
};

/* Interrupt vectors: one per device slot (the index of its
 * virtio_mmio.device word), handled by arch.c. */
#define VEC_VIRTIO_BASE		0x50
#define MAX_VIRTIO		8

/* How often a driver re-acknowledges InterruptStatus even without a
 * counted interrupt (ms): with an edge-triggered IOAPIC pin and a device
 * that holds its line high until acknowledged (QEMU), one missed
 * acknowledgement would otherwise silence the device for good. */
#define VIRTIO_REACK_MS		100

/* Interrupts taken per device slot and in all, raised by the ring-0
 * handler (BSP only: every pin is routed to it). */
extern volatile uint64_t virtio_irq_count[MAX_VIRTIO];
extern volatile uint64_t virtio_irq_all;

struct virtq {
	uint16_t index;			/* queue number on the device */
	uint16_t size;			/* QueueNum we chose */
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	uint16_t avail_idx;		/* next avail->idx we publish */
	uint16_t used_seen;		/* used->idx we consumed up to */
	/* Driver-private book-keeping, never read back from shared
	 * memory: the device may scribble on the descriptor table. */
	uint16_t free_head;		/* free descriptor list */
	uint16_t nfree;
	uint16_t next_free[VIRTQ_MAX_SIZE];
	uint16_t chain_next[VIRTQ_MAX_SIZE];	/* our copy of desc.next */
	uint16_t chain_len[VIRTQ_MAX_SIZE];	/* per head, 0 = not busy */
	uint64_t bad_used;		/* used entries naming no busy head */
};

struct virtio_dev {
	unsigned slot;			/* index into cfg.virtio[] */
	uint64_t base;
	uint32_t gsi;
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t features;		/* what we accepted */
	bool irq_routed;		/* IOAPIC pin programmed */
	uint64_t irq_seen;		/* virtio_irq_count at the last ack */
	uint64_t last_ack_tsc;
	struct virtq vq[2];
	unsigned nvq;
};

/* Command line: one `virtio_mmio.device=<size>@<base>:<gsi>` word. */
bool virtio_parse_device(const char *v, size_t n, uint64_t *size,
			 uint64_t *base, uint32_t *gsi);

/* Ring 0, from workload_prepare(): map the device windows uncached. */
void virtio_map_windows(void);

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

static inline uint32_t vio_read(const struct virtio_dev *d, uint32_t reg)
{
	return mmio_read32(d->base + reg);
}

static inline void vio_write(const struct virtio_dev *d, uint32_t reg,
			     uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

uint8_t virtio_config_read8(const struct virtio_dev *d, uint32_t off);
uint16_t virtio_config_read16(const struct virtio_dev *d, uint32_t off);
uint32_t virtio_config_read32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_config_read64(const struct virtio_dev *d, uint32_t off);

/* Find the nth (0-based) device with this DeviceID among the command
 * line's windows.  Returns 0, or -ENODEV; prints a warning for windows
 * that hold no valid version-2 device. */
int virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *d);

/* Reset, ACKNOWLEDGE, DRIVER, negotiate (VERSION_1 is required; of the
 * rest, only bits in `wanted` that the device offers are accepted),
 * FEATURES_OK.  Returns 0 or a negative errno. */
int virtio_negotiate(struct virtio_dev *d, uint64_t wanted);

/* Allocate and enable queue `index` with at most `want` entries. */
int virtq_setup(struct virtio_dev *d, unsigned index, uint16_t want);

/* DRIVER_OK, then route the interrupt (unless polling was asked). */
void virtio_go(struct virtio_dev *d);

/* Descriptor chains: take n descriptors from the free list into ids[]
 * (ids[0] is the head); -ENOBUFS if there are not enough.  The caller
 * fills desc[].addr/len/flags (WRITE or 0); virtq_publish() sets the
 * links. */
int virtq_alloc_chain(struct virtq *q, unsigned n, uint16_t *ids);
/* Make a chain available to the device (no notification yet). */
void virtq_publish(struct virtq *q, uint16_t head);
/* Tell the device about queue q. */
void virtq_kick(const struct virtio_dev *d, const struct virtq *q);
/* Next used chain: its head and written length; frees the chain.
 * Returns false when there is nothing new. */
bool virtq_reap(struct virtq *q, uint16_t *head, uint32_t *len);

/* Read and acknowledge InterruptStatus when an interrupt was counted
 * since the last time, or VIRTIO_REACK_MS have passed. */
void virtio_ack(struct virtio_dev *d);
/* Has the device given up (DEVICE_NEEDS_RESET or FAILED)? */
bool virtio_broken(const struct virtio_dev *d);

/* Read virtio_irq_all before looking at the rings; pass it to
 * virtio_wait() after finding nothing to do. */
static inline uint64_t virtio_irq_total(void)
{
	return virtio_irq_all;
}
/* Sleep until the next interrupt (device or timer), unless a device
 * interrupt already arrived since `seen` was read.  With virtio_poll=1,
 * only pause briefly. */
void virtio_wait(uint64_t seen);

/* ---------------------------------------------------------------- */
/* virtio-net and the network stack (net.c) */

#define NET_RX_BUF	2048		/* >= 12 + 1514 */
#define NET_HDR_LEN	12
#define ETH_HLEN	14
#define ETH_MAX_FRAME	1514
#define ARP_CACHE_SIZE	16

struct net_stats {
	uint64_t rx_frames, tx_frames, rx_dropped, rx_ignored, tx_dropped;
	uint64_t rx_bad_csum, arp_replies, arp_requests, icmp_echo;
	uint64_t udp_rx, udp_no_port;
};

struct arp_entry {
	uint32_t ip;			/* 0 = free */
	uint8_t mac[6];
	bool resolved;
	uint64_t last_use_tsc;
	uint64_t asked_tsc;		/* last request we sent */
	/* One frame waiting for this address to resolve. */
	uint16_t pending_len;
	uint8_t pending[ETH_MAX_FRAME];
};

struct net;
/* A datagram for a bound port.  src_ip/dst_ip in host order. */
typedef void (*udp_handler)(struct net *n, uint32_t src_ip, uint16_t src_port,
			    uint16_t dst_port, const uint8_t *data, size_t len);

struct net {
	struct virtio_dev dev;
	uint8_t mac[6];
	uint32_t ip, netmask, gw;	/* host order; gw 0 = none */
	bool link_known, link_up;
	uint8_t *rx_bufs;		/* rx queue size * NET_RX_BUF */
	uint8_t *tx_bufs;		/* tx queue size * NET_RX_BUF */
	uint16_t rx_posted;		/* buffers the device holds */
	bool tx_kick_pending, rx_kick_pending;
	struct net_stats st;
	struct arp_entry arp[ARP_CACHE_SIZE];
	uint16_t udp_port;
	udp_handler udp_rx;
};

/* Find and start the first virtio-net device; -ENODEV if none. */
int net_init(struct net *n);
/* Process everything the device has done; true if there was work. */
bool net_poll(struct net *n);
int net_udp_send(struct net *n, uint32_t dst_ip, uint16_t src_port,
		 uint16_t dst_port, const void *data, size_t len);
void net_announce(struct net *n);
/* net_init() with cfg's address, plus the "net up" line or a warning. */
int net_service_start(struct net *n, const char *workload);
int net_report(const struct net *n, char *buf, size_t len);

/* ---------------------------------------------------------------- */
/* virtio-blk (blk.c) */

#define BLK_SECTOR	512
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8

struct blk {
	struct virtio_dev dev;
	uint64_t capacity;		/* sectors */
	bool readonly, can_flush;
	/* One request at a time: header and status live here. */
	struct {
		uint32_t type;
		uint32_t reserved;
		uint64_t sector;
	} *hdr;
	volatile uint8_t *status;
	uint64_t requests, io_errors;
};

int blk_init(struct blk *b);
/* Synchronous request; while it waits, the status loop keeps running.
 * Returns 0, -EIO (device said IOERR/UNSUPP or broke), -EINVAL. */
int blk_rw(struct blk *b, struct cpu *c, uint32_t type, uint64_t sector,
	   void *buf, uint32_t len);

/* ---------------------------------------------------------------- */
/* Workloads (kv.c, disklog.c, hostile.c) */

/* mm_alloc_contig() and zero it (in ring 3, natively); NULL if short. */
void *alloc_zeroed(uint64_t bytes);

void run_kv(struct cpu *c) __attribute__((noreturn));
int kv_report(char *buf, size_t len);
void run_disklog(struct cpu *c) __attribute__((noreturn));
int disklog_report(char *buf, size_t len);
void run_virtio_hostile(struct cpu *c) __attribute__((noreturn));
int hostile_report(char *buf, size_t len);

#endif
