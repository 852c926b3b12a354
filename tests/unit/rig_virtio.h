/* Test rig for virtio devices without a guest: a log that keeps what the
 * devices said, fake guest RAM that records the VMM's writes and
 * interrupts, split rings laid out in it by hand, the driver's side of the
 * virtio-mmio register file, a bare domain that only holds devices, and a
 * private network namespace for taps with test frames to send and count.
 * Used by test_virtqueue, test_remus_devices and test_netbuf_plug.
 * Failures are Check assertions. */
#ifndef TANDEM_TESTS_RIG_VIRTIO_H
#define TANDEM_TESTS_RIG_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices.h"
#include "domain.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

/* ---- Log ------------------------------------------------------------------ */

/* Everything from TLOG_DEBUG up, in `all` (as much as fits), and the last
 * error alone, for messages a test expects.  With `echo` set (after
 * rig_log_init), warnings and errors also go to stderr as they come, so
 * the test's log file shows what the code said before an assertion. */
struct rig_log {
    struct tlog log;
    pthread_mutex_t lock;
    char last_error[1024];
    char all[16384];
    unsigned errors;
    bool echo;
};

void rig_log_init(struct rig_log *t);
bool rig_log_has(struct rig_log *t, const char *what);

/* ---- Fake guest RAM --------------------------------------------------------- */

#define RIG_RAM_MAX_MARKS 4096

/* One region from gpa 0, zeroed.  The VMM's writes (rig_ram_mark) and
 * interrupts (rig_ram_irq) are counted, so a test can check that devices
 * report what they write. */
struct rig_ram {
    struct guest_memory m;
    uint8_t *ram;
    uint64_t size;
    pthread_mutex_t lock;
    unsigned nmarks;                 /* marks beyond RIG_RAM_MAX_MARKS are dropped */
    struct { uint64_t gpa, len; } marks[RIG_RAM_MAX_MARKS];
    unsigned irqs;                   /* atomic */
};

struct rig_ram *rig_ram_new(uint64_t bytes);
void rig_ram_free(struct rig_ram *f);
void rig_ram_mark(void *opaque, uint64_t gpa, uint64_t len);     /* a vq_mark_fn, opaque the rig_ram */
void rig_ram_irq(void *opaque, unsigned gsi);
/* Whether every byte of [gpa, gpa+len) was reported written. */
bool rig_ram_marked(struct rig_ram *f, uint64_t gpa, uint64_t len);
/* A device environment over this RAM: no KVM, writes and interrupts to
 * the functions above. */
struct virtio_env rig_ram_env(struct rig_ram *f, const struct tlog *log);

/* ---- Split rings, from the driver's side ------------------------------------ */

struct rig_ring {
    uint8_t *base;                   /* host address of gpa 0 */
    uint64_t desc, avail, used;      /* gpas */
    unsigned num;
    uint16_t avail_idx;              /* the driver's copy */
};

/* Zeroes the three areas. */
void rig_ring_init(struct rig_ring *r, uint8_t *base, uint64_t desc, uint64_t avail, uint64_t used,
                   unsigned num);
void rig_set_desc(struct rig_ring *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Makes the chain at head available (release store of avail->idx). */
void rig_publish(struct rig_ring *r, uint16_t head);
void rig_set_avail_idx(struct rig_ring *r, uint16_t idx);
uint16_t rig_used_idx(const struct rig_ring *r);
void rig_used_elem(const struct rig_ring *r, unsigned slot, uint32_t *id, uint32_t *len);
/* Whether used->idx reaches `want` (u16 arithmetic) within timeout_ms. */
bool rig_wait_used(const struct rig_ring *r, uint16_t want, unsigned timeout_ms);

/* ---- The virtio-mmio register file -------------------------------------------- */

uint32_t rig_rd32(struct virtio_dev *v, uint64_t off);
void rig_wr32(struct virtio_dev *v, uint64_t off, uint32_t val);

/* Queue qi onto ring r, as the spec orders it; checks the queue was not
 * ready before and offers 256 entries.  Returns QueueReady afterwards
 * (0: the device refused the ring). */
uint32_t rig_setup_queue(struct virtio_dev *v, unsigned qi, const struct rig_ring *r);

/* The whole driver start-up: identity (device id want_id), reset,
 * feature negotiation (features must be accepted), queue i onto rings[i]
 * (each must become ready), DRIVER_OK. */
void rig_driver_init(struct virtio_dev *v, uint32_t want_id, uint64_t features, const struct rig_ring *rings,
                     unsigned nq);

/* ---- A bare domain ------------------------------------------------------------ */

/* Only a log and a device list, which is all the domain_* device API
 * (pause, Remus buffering and disk tracking) looks at.  Devices added
 * belong to it: rig_bare_domain_free() destroys them. */
struct domain *rig_bare_domain(const struct tlog *log);
void rig_bare_domain_add(struct domain *d, struct virtio_dev *v);
void rig_bare_domain_free(struct domain *d);

/* ---- Networks ------------------------------------------------------------------ */

/* Moves the test into a network namespace of its own (Check forks every
 * test, so it dies with the test), IPv6 off so no chatter reaches the
 * guest's buffers.  Without root or /dev/net/tun: prints "SKIP: ...;
 * <what> NOT run" and returns false. */
bool rig_enter_netns(const char *what);

/* A raw packet socket bound to ifname, all ethertypes. */
int rig_packet_socket(const char *ifname);

/* Test frames: broadcast from a guest's MAC with an ethertype for local
 * experiments (so nothing else on the link passes for one), the sequence
 * number in the first 4 payload bytes and its low byte in the rest. */
#define RIG_TEST_ETHERTYPE 0x88b5

/* Writes test frame seq from src at e: 14 + payload bytes, payload >= 4. */
void rig_test_frame(uint8_t *e, const uint8_t src[6], uint32_t seq, unsigned payload);
/* The test frames from src that packet socket s receives within
 * timeout_ms (stops once `want` came); their sequence numbers in seqs. */
unsigned rig_test_frames_recv(int s, const uint8_t src[6], uint32_t *seqs, unsigned want, unsigned timeout_ms);
/* Frames first .. first+count-1 (count <= 64) from src reach s, in order,
 * within 5 s; `where` names s in the failure message. */
void rig_expect_test_frames(int s, const uint8_t src[6], uint32_t first, unsigned count, const char *where);
/* No test frame from src reaches s within ms (frames that should be held). */
void rig_expect_no_test_frame(int s, const uint8_t src[6], unsigned ms, const char *where);

#endif
