/* Test rig for real KVM domains running the test guest: where the guest
 * kernel is, whether there is KVM, a console that captures what the guest
 * prints, the config and the domain most tests want, and image files for
 * their disks.  Used by test_hvm_context, test_remus and the domain tests
 * of test_virtqueue and test_remus_devices.  Failures are Check
 * assertions, so a helper never returns a half-built thing. */
#ifndef TANDEM_TESTS_RIG_DOMAIN_H
#define TANDEM_TESTS_RIG_DOMAIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

/* Memory of the domains rig_config() makes. */
#define RIG_GUEST_MB 64

/* The test guest: $TANDEM_GUEST_KERNEL, else ../guests/tandem-guest
 * relative to the working directory (make check runs in
 * <build>/tests/unit).  Set by rig_find_guest_kernel() in unit_suite(),
 * before any test forks. */
extern char rig_guest_kernel[4096];

/* Sets rig_guest_kernel; says on stderr (naming `prog`) when the file is
 * missing, since every test that boots it will then fail. */
void rig_find_guest_kernel(const char *prog);

/* Whether /dev/kvm can be opened. */
bool rig_have_kvm(void);

/* For programs that are nothing without KVM: exits 77 (automake's
 * "skipped") saying so loudly, so a skip never looks like a pass. */
void rig_require_kvm(const char *prog);

/* What a domain printed on its console, and why it ended. */
struct rig_console {
    pthread_mutex_t lock;
    char buf[1 << 20];
    size_t len;
    char end_reason[256];
};

/* calloc'ed; free() it after the domain is destroyed. */
struct rig_console *rig_console_new(void);

/* domain_create() callbacks, opaque a struct rig_console. */
void rig_on_console(void *opaque, uint8_t byte);
void rig_on_end(void *opaque, enum domain_end end, const char *reason);

/* Callbacks for domains whose console and end no test looks at. */
void rig_ignore_console(void *opaque, uint8_t byte);
void rig_ignore_end(void *opaque, enum domain_end end, const char *reason);

/* A malloc'ed copy of the console from `from` on, cut after its last
 * newline: the line after it may still be printing. */
char *rig_console_lines(struct rig_console *c, size_t from);

/* The number after " key=" (or "key=" at the start) in a guest status
 * line; false if the key is not there. */
bool rig_kv(const char *line, const char *key, uint64_t *out);

/* domain_config_init() plus the test guest, RIG_GUEST_MB, `vcpus` vCPUs and,
 * unless NULL, the command line. */
void rig_config(struct domain_config *cfg, const char *name, unsigned vcpus, const char *cmdline);

/* Adds a writable disk, image `target`, seen by the guest as `vdev`. */
void rig_config_disk(struct domain_config *cfg, const char *target, const char *vdev);

/* A domain from rig_config(), with disk (unless NULL) as its xvda, its
 * vCPU threads started and the domain still paused.  for_restore: no
 * kernel loaded, ready to take a saved state. */
struct domain *rig_make_domain(const char *name, unsigned vcpus, bool for_restore, const char *cmdline,
                               const char *disk, struct rig_console *con, const struct tlog *log);

/* A fresh image file of `bytes` under /tmp, its name into path.  Every
 * byte of sector s is 0x40 + s (truncated to 8 bits), so a test can tell
 * which sector it reads; sparse: a hole instead, reading as zeros. */
void rig_make_image(char *path, size_t len, uint64_t bytes, bool sparse);

#endif
