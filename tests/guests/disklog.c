/*
 * tandem-guest: workload=disklog, an append-only log of self-checking
 * records on the first virtio-blk disk.
 *
 * One record per 512-byte sector; the record with sequence number n is
 * in sector n - 1.  The format is in README.md ("disklog on-disk
 * format") for host-side checkers; in short: magic, seq, run id, first
 * seq of the run, uptime, version, a payload that is a pure function of
 * seq, and a CRC-32 (zlib's) over everything before it.
 *
 * At start the whole log is read back and checked, and appending goes
 * on after the last good record, so a restarted or migrated guest (or
 * a guest on a copied disk) continues the same log.  Records are
 * written one at a time and each write completes before the next
 * starts, so a correct system never leaves a hole: a record found after
 * empty sectors means writes were lost, and the empty sectors count as
 * errors.  With flush_every=N a FLUSH follows every N-th record
 * (default 1: every record is durable before the next is written).
 */
#include "virtio.h"

#define DL_MAGIC		"TGDISKLG"
#define DL_VERSION		1
#define DL_PAYLOAD_WORDS	57
#define DL_SCAN_SECTORS		128	/* per read: 64 KiB */
/* Empty sectors after which the scan decides the log has ended.
 * Anything with the magic within this distance after a hole is still
 * found (and the hole reported). */
#define DL_LOOKAHEAD		256
#define DL_DETAIL_LINES		8
#define DL_RETRY_MS		1000

struct dl_record {
	char magic[8];
	uint64_t seq;
	uint64_t run_id;
	uint64_t run_first_seq;
	uint64_t uptime_ms;
	uint32_t version;
	uint32_t reserved0;
	uint64_t payload[DL_PAYLOAD_WORDS];
	uint32_t reserved1;
	uint32_t crc;
} __attribute__((packed));

_Static_assert(sizeof(struct dl_record) == BLK_SECTOR, "one record per sector");

static struct blk disk;

static struct {
	const char *state;
	uint64_t last;			/* last seq known on disk and good */
	uint64_t flushed;		/* last seq covered by a completed FLUSH */
	uint64_t errors;		/* bad records found + failed requests */
	uint64_t found;			/* good records found by the start scan */
	uint64_t written;		/* records this run wrote */
	uint64_t verified;		/* records re-read and found good */
	uint64_t run_id;
	uint64_t details;		/* detail lines printed */
} dl = { .state = "nodisk" };

/* CRC-32, the IEEE polynomial reflected, as zlib's crc32(). */
static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static uint64_t payload_word(uint64_t seq, unsigned i)
{
	return mix64(seq * 0x9e3779b97f4a7c15ULL + i);
}

static void record_fill(struct dl_record *r, uint64_t seq, uint64_t run_first)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->magic, DL_MAGIC, 8);
	r->seq = seq;
	r->run_id = dl.run_id;
	r->run_first_seq = run_first;
	r->uptime_ms = tsc_to_ms(rdtsc() - tsc_boot);
	r->version = DL_VERSION;
	for (unsigned i = 0; i < DL_PAYLOAD_WORDS; i++)
		r->payload[i] = payload_word(seq, i);
	r->crc = crc32((const uint8_t *)r, offsetof(struct dl_record, crc));
}

static bool has_magic(const struct dl_record *r)
{
	return !memcmp(r->magic, DL_MAGIC, 8);
}

/* NULL if the record in `sector` is good, else why not. */
static const char *record_check(const struct dl_record *r, uint64_t sector)
{
	if (!has_magic(r))
		return "magic";
	if (r->crc != crc32((const uint8_t *)r, offsetof(struct dl_record, crc)))
		return "crc";
	if (r->version != DL_VERSION)
		return "version";
	if (r->seq != sector + 1)
		return "seq";
	for (unsigned i = 0; i < DL_PAYLOAD_WORDS; i++)
		if (r->payload[i] != payload_word(r->seq, i))
			return "payload";
	return NULL;
}

static void record_error(uint64_t sector, const char *reason, uint64_t seq,
			 uint64_t count)
{
	dl.errors += count;
	if (dl.details++ < DL_DETAIL_LINES)
		printk("TANDEM-GUEST disklog_error sector=%lu reason=%s seq=%lu "
		       "count=%lu\n", sector, reason, seq, count);
}

/* Read and check the log from sector 0; sets dl.found, dl.last and the
 * error count.  Returns the number of sectors that hold the log. */
static uint64_t scan(struct cpu *c, uint8_t *buf)
{
	uint64_t s = 0, hole = 0;
	bool in_hole = false;

	while (s < disk.capacity) {
		uint64_t n = disk.capacity - s;
		if (n > DL_SCAN_SECTORS)
			n = DL_SCAN_SECTORS;
		int r = blk_rw(&disk, c, VIRTIO_BLK_T_IN, s, buf, (uint32_t)(n * BLK_SECTOR));
		if (r) {
			printk("TANDEM-GUEST warning disklog_read_failed sector=%lu err=%d\n",
			       s, r);
			dl.errors++;
			break;
		}
		for (uint64_t i = 0; i < n; i++) {
			const struct dl_record *rec =
				(const struct dl_record *)(buf + i * BLK_SECTOR);
			uint64_t sector = s + i;
			if (!has_magic(rec)) {
				if (!in_hole) {
					in_hole = true;
					hole = sector;
				}
				if (sector - hole + 1 >= DL_LOOKAHEAD)
					return hole;
				continue;
			}
			if (in_hole) {
				/* Records after empty sectors: those writes
				 * were lost. */
				record_error(hole, "missing", hole + 1, sector - hole);
				in_hole = false;
			}
			const char *why = record_check(rec, sector);
			if (why) {
				record_error(sector, why, rec->seq, 1);
			} else {
				dl.found++;
				dl.last = rec->seq;
			}
		}
		s += n;
	}
	return in_hole ? hole : s;
}

/* Read back up to DL_SCAN_SECTORS records before dl.last. */
static void recheck(struct cpu *c, uint8_t *buf)
{
	uint64_t n = dl.last < DL_SCAN_SECTORS ? dl.last : DL_SCAN_SECTORS;
	uint64_t first = dl.last - n;

	if (!n)
		return;
	if (blk_rw(&disk, c, VIRTIO_BLK_T_IN, first, buf, (uint32_t)(n * BLK_SECTOR))) {
		dl.errors++;
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		const struct dl_record *rec =
			(const struct dl_record *)(buf + i * BLK_SECTOR);
		const char *why = record_check(rec, first + i);
		/* An earlier bad record was counted by the scan already. */
		if (!why)
			dl.verified++;
		else if (first + i + 1 > dl.last - dl.written)
			record_error(first + i, why, rec->seq, 1);
	}
}

static void __attribute__((noreturn)) stop(struct cpu *c, const char *state)
{
	dl.state = state;
	workload_idle(c);
}

void run_disklog(struct cpu *c)
{
	int r = blk_init(&disk);
	if (r == -ENODEV) {
		printk("TANDEM-GUEST warning no_disk workload=disklog\n");
		stop(c, "nodisk");
	}
	if (r) {
		printk("TANDEM-GUEST warning blk_init_failed workload=disklog err=%d\n", r);
		stop(c, "failed");
	}
	printk("TANDEM-GUEST disk up slot=%u base=0x%lx gsi=%u vendor=0x%08x irq=%s "
	       "capacity=%lu readonly=%u flush=%u\n", disk.dev.slot, disk.dev.base,
	       disk.dev.gsi, disk.dev.vendor_id,
	       disk.dev.irq_routed ? "ioapic" : "polled", disk.capacity,
	       disk.readonly, disk.can_flush);

	uint8_t *buf = mm_alloc_contig(DL_SCAN_SECTORS * BLK_SECTOR);
	struct dl_record *rec = mm_alloc_contig(PAGE_SIZE);
	if (!buf || !rec) {
		printk("TANDEM-GUEST warning disklog_no_memory\n");
		stop(c, "failed");
	}

	dl.state = "scanning";
	uint64_t end = scan(c, buf);
	printk("TANDEM-GUEST disklog check records=%lu last=%lu errors=%lu end=%lu "
	       "capacity=%lu\n", dl.found, dl.last, dl.errors, end, disk.capacity);
	if (disk.readonly) {
		printk("TANDEM-GUEST warning disklog_readonly\n");
		stop(c, "readonly");
	}
	if (!disk.can_flush && cfg.flush_every)
		printk("TANDEM-GUEST warning disklog_no_flush\n");

	const uint64_t run_first = dl.last + 1;
	dl.run_id = mix64(rdtsc() ^ mix64(run_first)) | 1;
	dl.flushed = dl.last;
	dl.state = "running";
	printk("TANDEM-GUEST disklog start run=0x%016lx next=%lu flush_every=%lu "
	       "rate=%lu\n", dl.run_id, run_first, cfg.flush_every, cfg.rate);

	const uint64_t hz = tsc_khz * 1000;
	const uint64_t step = cfg.rate ? hz / cfg.rate : 0;
	const uint64_t recheck_every = cfg.fullpass_s * hz;
	uint64_t next = rdtsc(), next_recheck = next + recheck_every;
	uint64_t since_flush = 0;

	for (;;) {
		if (step) {
			uint64_t now = rdtsc();
			if (now < next && next - now > step + hz)
				next = now;	/* the TSC went back (see run_dirty) */
			if (now < next) {
				safe_halt();
				workload_poll(c);
				continue;
			}
			/* Far behind (paused, migrated): no burst. */
			next = now - next > hz / 20 ? now + step : next + step;
		}
		uint64_t seq = dl.last + 1;
		if (seq - 1 >= disk.capacity) {
			if (since_flush && disk.can_flush &&
			    !blk_rw(&disk, c, VIRTIO_BLK_T_FLUSH, 0, NULL, 0))
				dl.flushed = dl.last;
			printk("TANDEM-GUEST warning disklog_full capacity=%lu last=%lu\n",
			       disk.capacity, dl.last);
			stop(c, "full");
		}
		record_fill(rec, seq, run_first);
		r = blk_rw(&disk, c, VIRTIO_BLK_T_OUT, seq - 1, rec, BLK_SECTOR);
		if (!r) {
			dl.last = seq;
			dl.written++;
			since_flush++;
			if (cfg.flush_every && since_flush >= cfg.flush_every &&
			    disk.can_flush) {
				r = blk_rw(&disk, c, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
				if (!r) {
					dl.flushed = dl.last;
					since_flush = 0;
				}
			}
		}
		if (r) {
			dl.errors++;
			printk("TANDEM-GUEST warning disklog_io_failed seq=%lu err=%d\n",
			       seq, r);
			if (virtio_broken(&disk.dev))
				stop(c, "failed");
			/* Try the same record again a little later. */
			uint64_t until = rdtsc() + ms_to_tsc(DL_RETRY_MS);
			while (rdtsc() < until) {
				safe_halt();
				workload_poll(c);
			}
			next = rdtsc();
			continue;
		}
		if (recheck_every && rdtsc() >= next_recheck) {
			recheck(c, buf);
			next_recheck = rdtsc() + recheck_every;
		}
		workload_poll(c);
	}
}

int disklog_report(char *buf, size_t len)
{
	return snprintk(buf, len, " disklog_last=%lu disklog_flushed=%lu "
			"disklog_errors=%lu disklog_found=%lu disklog_written=%lu "
			"disklog_verified=%lu disklog_run=0x%016lx disklog_state=%s "
			"virtio_irqs=%lu", dl.last, dl.flushed, dl.errors, dl.found,
			dl.written, dl.verified, dl.run_id, dl.state,
			disk.dev.base ? virtio_irq_count[disk.dev.slot] : 0);
}
