/*
 * tandem-guest: workload=kv, a UDP key-value counter service.
 *
 * Requests and replies are single ASCII datagrams (see README.md, "kv
 * protocol"):
 *     INCR <key> [id=<n>]   ->  <key> <new value> [id=<n>]
 *     GET <key> [id=<n>]    ->  <key> <value> [id=<n>]
 *     anything else         ->  ERR <reason> [id=<n>]
 * Values live in guest RAM, so they migrate with it.  A request with an
 * id is remembered per client address (IP and port): the same id again
 * gets the same answer without being executed twice, which is what
 * lets a client retry over UDP across a migration.
 */
#include "virtio.h"

#define KV_KEYS		1024		/* power of two: hash & (KV_KEYS-1) */
#define KV_KEY_MAX	32
#define KV_CLIENTS	64
#define KV_ANSWER_MAX	96
#define KV_REQ_MAX	128

struct kv_entry {
	uint8_t len;			/* 0 = empty slot */
	char key[KV_KEY_MAX];
	uint64_t value;
};

struct kv_client {
	uint32_t ip;
	uint16_t port;
	bool used;
	uint64_t last_id;
	uint64_t request_hash;		/* of the request that used the id */
	uint64_t last_use;		/* kv_requests at the time: LRU */
	uint16_t answer_len;
	char answer[KV_ANSWER_MAX];
};

/* Allocated at start rather than in .bss: ring 0 zeroes .bss at boot,
 * emulated, while ring 3 zeroes these natively. */
static struct kv_entry *table;
static struct kv_client *clients;
static struct net *kv_net;

static struct {
	uint64_t requests;		/* datagrams on the port */
	uint64_t incrs;			/* increments done */
	uint64_t retries;		/* answered from the client table */
	uint64_t errors;		/* ERR answers */
	uint64_t keys;			/* keys in the table */
} kv;

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The key's slot, or the empty slot where it would go; NULL if it is
 * absent and the table is full. */
static struct kv_entry *kv_slot(const char *key, size_t len)
{
	uint64_t h = fnv1a(key, len);
	for (unsigned probe = 0; probe < KV_KEYS; probe++) {
		struct kv_entry *e = &table[(h + probe) & (KV_KEYS - 1)];
		if (!e->len || (e->len == len && !memcmp(e->key, key, len)))
			return e;
	}
	return NULL;
}

static struct kv_client *client_find(uint32_t ip, uint16_t port, bool create)
{
	struct kv_client *victim = &clients[0];

	for (unsigned i = 0; i < KV_CLIENTS; i++) {
		struct kv_client *c = &clients[i];
		if (c->used && c->ip == ip && c->port == port)
			return c;
		if (!c->used) {
			if (victim->used)
				victim = c;
		} else if (victim->used && c->last_use < victim->last_use) {
			victim = c;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	victim->ip = ip;
	victim->port = port;
	return victim;
}

static bool key_ok(const char *k, size_t n)
{
	if (!n || n > KV_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return false;
	return true;
}

/* Execute one request into ans (no id, no newline).  Returns NULL, or
 * the reason for an ERR answer. */
static const char *kv_execute(const char *cmd, size_t cmdlen, const char *key,
			      size_t keylen, char *ans, size_t anslen)
{
	bool incr = str_eq_n(cmd, cmdlen, "INCR");

	if (!incr && !str_eq_n(cmd, cmdlen, "GET"))
		return "bad_request";
	if (!key_ok(key, keylen))
		return "bad_key";

	struct kv_entry *e = kv_slot(key, keylen);
	uint64_t value = 0;
	if (incr) {
		if (!e)
			return "table_full";
		if (!e->len) {
			memcpy(e->key, key, keylen);
			e->value = 0;
			e->len = (uint8_t)keylen;
			kv.keys++;
		}
		/* Counters never go back, not even by wrapping. */
		if (e->value == UINT64_MAX)
			return "overflow";
		e->value++;
		kv.incrs++;
		value = e->value;
	} else if (e && e->len) {
		value = e->value;
	}

	char k[KV_KEY_MAX + 1];
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	snprintk(ans, anslen, "%s %lu", k, value);
	return NULL;
}

/* Split at runs of spaces (and tabs) into at most `max` words; returns
 * how many there were (possibly more than max). */
static unsigned split_words(const char *s, size_t n, const char **w,
			    size_t *wl, unsigned max)
{
	unsigned count = 0;
	size_t i = 0;

	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == n)
			break;
		size_t start = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		if (count < max) {
			w[count] = s + start;
			wl[count] = i - start;
		}
		count++;
	}
	return count;
}

static void kv_answer(struct net *n, uint32_t ip, uint16_t port,
		      const char *ans, size_t len)
{
	net_udp_send(n, ip, (uint16_t)cfg.kv_port, port, ans, len);
}

static void kv_udp(struct net *n, uint32_t src, uint16_t sport,
		   uint16_t dport, const uint8_t *data, size_t len)
{
	const char *w[3];
	size_t wl[3];
	char ans[KV_ANSWER_MAX], body[KV_ANSWER_MAX];
	uint64_t id = 0;
	bool has_id = false;
	int alen;

	(void)dport;
	kv.requests++;
	/* One line; a trailing newline (CR LF too) is allowed. */
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	unsigned nw = len > KV_REQ_MAX ? 0 :
		split_words((const char *)data, len, w, wl, 3);
	if (nw == 3 && wl[2] > 3 && !memcmp(w[2], "id=", 3) &&
	    parse_u64(w[2] + 3, wl[2] - 3, &id))
		has_id = true;
	if (nw != 2 && !(nw == 3 && has_id)) {
		kv.errors++;
		alen = snprintk(ans, sizeof(ans), "ERR bad_request\n");
		kv_answer(n, src, sport, ans, (size_t)alen);
		return;
	}

	/* The request's identity, to tell a retry from a reused id. */
	uint64_t h = fnv1a(w[0], wl[0]) ^ mix64(fnv1a(w[1], wl[1]));
	if (has_id) {
		struct kv_client *c = client_find(src, sport, false);
		if (c && c->answer_len && c->last_id == id) {
			c->last_use = kv.requests;
			if (c->request_hash == h) {
				kv.retries++;
				kv_answer(n, src, sport, c->answer, c->answer_len);
			} else {
				kv.errors++;
				alen = snprintk(ans, sizeof(ans), "ERR id_reused id=%lu\n", id);
				kv_answer(n, src, sport, ans, (size_t)alen);
			}
			return;
		}
	}

	const char *err = kv_execute(w[0], wl[0], w[1], wl[1], body, sizeof(body));
	if (err) {
		kv.errors++;
		snprintk(body, sizeof(body), "ERR %s", err);
	}
	if (has_id)
		alen = snprintk(ans, sizeof(ans), "%s id=%lu\n", body, id);
	else
		alen = snprintk(ans, sizeof(ans), "%s\n", body);
	if (alen >= (int)sizeof(ans))
		alen = sizeof(ans) - 1;

	if (has_id) {
		struct kv_client *c = client_find(src, sport, true);
		c->last_id = id;
		c->request_hash = h;
		c->last_use = kv.requests;
		memcpy(c->answer, ans, (size_t)alen);
		c->answer_len = (uint16_t)alen;
	}
	kv_answer(n, src, sport, ans, (size_t)alen);
}

int kv_report(char *buf, size_t len)
{
	int k = snprintk(buf, len, " kv_requests=%lu kv_incrs=%lu kv_retries=%lu "
			 "kv_errors=%lu kv_keys=%lu", kv.requests, kv.incrs,
			 kv.retries, kv.errors, kv.keys);
	if (k < 0 || (size_t)k >= len || !kv_net || !kv_net->dev.base)
		return k;
	return k + net_report(kv_net, buf + k, len - (size_t)k);
}

/* Bring up the first virtio-net device with the command line's
 * address; prints the outcome.  Shared with workload=virtio_hostile. */
int net_service_start(struct net *n, const char *workload)
{
	if (!cfg.ip) {
		printk("TANDEM-GUEST warning no_ip workload=%s need=ip=ADDR/PREFIX\n",
		       workload);
		return -EINVAL;
	}
	int r = net_init(n);
	if (r == -ENODEV) {
		printk("TANDEM-GUEST warning no_vif workload=%s\n", workload);
		return r;
	}
	if (r) {
		printk("TANDEM-GUEST warning net_init_failed workload=%s err=%d\n",
		       workload, r);
		memset(n, 0, sizeof(*n));
		return r;
	}
	uint32_t prefix = 0;
	for (uint32_t m = n->netmask; m & 0x80000000u; m <<= 1)
		prefix++;
	printk("TANDEM-GUEST net up slot=%u base=0x%lx gsi=%u vendor=0x%08x irq=%s "
	       "mac=%02x:%02x:%02x:%02x:%02x:%02x ip=%u.%u.%u.%u/%u link=%u "
	       "rxq=%u txq=%u\n", n->dev.slot, n->dev.base, n->dev.gsi, n->dev.vendor_id,
	       n->dev.irq_routed ? "ioapic" : "polled",
	       n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
	       n->ip >> 24, (n->ip >> 16) & 255, (n->ip >> 8) & 255, n->ip & 255,
	       prefix, n->link_up, n->dev.vq[0].size, n->dev.vq[1].size);
	net_announce(n);
	return 0;
}

void *alloc_zeroed(uint64_t bytes)
{
	void *p = mm_alloc_contig(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

void run_kv(struct cpu *c)
{
	struct net *n = alloc_zeroed(sizeof(*n));
	table = alloc_zeroed(sizeof(*table) * KV_KEYS);
	clients = alloc_zeroed(sizeof(*clients) * KV_CLIENTS);
	if (!n || !table || !clients) {
		printk("TANDEM-GUEST warning kv_no_memory\n");
		workload_idle(c);
	}
	if (net_service_start(n, "kv"))
		workload_idle(c);
	kv_net = n;
	n->udp_port = (uint16_t)cfg.kv_port;
	n->udp_rx = kv_udp;
	printk("TANDEM-GUEST kv ready port=%lu keys_max=%u\n", cfg.kv_port, KV_KEYS);
	for (;;) {
		uint64_t seen = virtio_irq_total();
		bool busy = net_poll(n);
		workload_poll(c);
		if (!busy)
			virtio_wait(seen);
	}
}
