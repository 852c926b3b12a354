/* Host side of a vif: a tap device, brought up and enslaved to a bridge
 * through rtnetlink (libnl-route-3), as Xen's vif-bridge script does with
 * ip(8).  The tap is not persistent: it disappears when its last
 * descriptor closes, so a domain process that dies leaves nothing behind. */
#ifndef TANDEM_TAP_H
#define TANDEM_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include "tandem/log.h"

/* Creates tap `ifname` (IFF_TAP | IFF_NO_PI), non-blocking and close-on-
 * exec, gives it Xen's vif MAC fe:ff:ff:ff:ff:ff (so it never becomes the
 * bridge's own address), brings it up and, unless bridge is "", enslaves
 * it to `bridge`.  -EEXIST if an interface of that name exists, -ENODEV if
 * the bridge does not, -EINVAL if it is no bridge; nothing is left behind
 * on failure.  Returns the descriptor or -errno. */
int tap_create(const char *ifname, const char *bridge, const struct tlog *log);

/* The bridge an interface is enslaved to (ifname into master, "" for
 * none) and whether it is up; for tests and checks. */
int tap_link_info(const char *ifname, char *master, size_t len, bool *up, const struct tlog *log);

/* A bridge created (and brought up), or any link deleted: what tests
 * need to build a network around a domain. */
int tap_bridge_add(const char *name, const struct tlog *log);
int tap_link_delete(const char *name, const struct tlog *log);

#endif
