/*
 * tandem-guest: virtio-blk, one synchronous request at a time.
 *
 * A request is a chain of three descriptors: the 16-byte header
 * (device-readable), the data (readable for OUT, writable for IN) and
 * the status byte (writable); FLUSH has no data.  The caller's loop
 * keeps running while it waits (status lines, gap tracking), and the
 * wait sleeps until the completion interrupt.
 */
#include "virtio.h"

#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_FLUSH	9
#define BLK_QUEUE_SIZE		16
#define BLK_BROKEN_CHECK_MS	100

int blk_init(struct blk *b)
{
	int r;

	memset(b, 0, sizeof(*b));
	r = virtio_find(VIRTIO_ID_BLOCK, 0, &b->dev);
	if (r)
		return r;
	r = virtio_negotiate(&b->dev, 1ULL << VIRTIO_BLK_F_RO |
					 1ULL << VIRTIO_BLK_F_FLUSH);
	if (r)
		return r;
	r = virtq_setup(&b->dev, 0, BLK_QUEUE_SIZE);
	if (r)
		return r;
	uint8_t *page = mm_alloc_contig(PAGE_SIZE);
	if (!page)
		return -ENOMEM;
	memset(page, 0, PAGE_SIZE);
	b->hdr = (void *)page;
	b->status = page + 64;
	b->capacity = virtio_config_read64(&b->dev, 0);
	b->readonly = b->dev.features & (1ULL << VIRTIO_BLK_F_RO);
	b->can_flush = b->dev.features & (1ULL << VIRTIO_BLK_F_FLUSH);
	virtio_go(&b->dev);
	return 0;
}

int blk_rw(struct blk *b, struct cpu *c, uint32_t type, uint64_t sector,
	   void *buf, uint32_t len)
{
	struct virtq *q = &b->dev.vq[0];
	const bool has_data = type != VIRTIO_BLK_T_FLUSH;
	uint16_t ids[3], head;
	uint32_t written;

	if (has_data && (!len || (type != VIRTIO_BLK_T_GET_ID && len % BLK_SECTOR)))
		return -EINVAL;
	if (virtq_alloc_chain(q, has_data ? 3 : 2, ids))
		return -ENOBUFS;	/* an earlier request never came back */

	b->hdr->type = type;
	b->hdr->reserved = 0;
	b->hdr->sector = sector;
	*b->status = 0xff;		/* not a valid status: must be written */
	q->desc[ids[0]].addr = (uintptr_t)b->hdr;
	q->desc[ids[0]].len = sizeof(*b->hdr);
	q->desc[ids[0]].flags = 0;
	unsigned k = 1;
	if (has_data) {
		q->desc[ids[1]].addr = (uintptr_t)buf;
		q->desc[ids[1]].len = len;
		q->desc[ids[1]].flags = type == VIRTIO_BLK_T_OUT ? 0 : VIRTQ_DESC_F_WRITE;
		k = 2;
	}
	q->desc[ids[k]].addr = (uintptr_t)b->status;
	q->desc[ids[k]].len = 1;
	q->desc[ids[k]].flags = VIRTQ_DESC_F_WRITE;
	virtq_publish(q, ids[0]);
	virtq_kick(&b->dev, q);

	uint64_t next_check = rdtsc() + ms_to_tsc(BLK_BROKEN_CHECK_MS);
	for (;;) {
		uint64_t seen = virtio_irq_total();
		virtio_ack(&b->dev);
		if (virtq_reap(q, &head, &written))
			break;
		/* A device that gave up will never answer: look now and
		 * then (one register read, an exit). */
		if (rdtsc() >= next_check) {
			if (virtio_broken(&b->dev)) {
				b->io_errors++;
				return -EIO;
			}
			next_check = rdtsc() + ms_to_tsc(BLK_BROKEN_CHECK_MS);
		}
		workload_poll(c);
		virtio_wait(seen);
	}
	barrier();
	b->requests++;
	if (head != ids[0] || *b->status != 0) {
		b->io_errors++;
		return -EIO;
	}
	return 0;
}
