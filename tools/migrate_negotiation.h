/* The stream-version negotiation line of the migrate handshake
 * (docs/compatibility.md).  A receiver run with --negotiate writes it right
 * after Xen's banner:
 *
 *   tandem-migrate release=1.1.0 streams=2,3\n
 *
 * The word tandem-migrate, then space-separated key=value pairs; printable
 * ASCII only; at most NEGOTIATION_LINE_MAX bytes with the newline.  Keys
 * are [a-z0-9_-]+, values anything printable but a space.  release= (1 to
 * NEGOTIATION_RELEASE_MAX characters) and streams= (a comma-separated list
 * of libxc image versions 1 to 9999, no leading zeros) must be there, once
 * each; other keys belong to later releases and are skipped, and so are
 * versions above 31, which neither end can have in common with us.
 *
 * The line comes from the other host, so the parser is strict about what it
 * needs and trusts nothing: it reads only the bytes it is given.  This file
 * is kept apart from xl_migrate.c so that it can be fuzzed
 * (tests/fuzz/fuzz_negotiation.c) and unit-tested without a transport. */
#ifndef TANDEM_TOOLS_MIGRATE_NEGOTIATION_H
#define TANDEM_TOOLS_MIGRATE_NEGOTIATION_H

#include <stddef.h>
#include "tandem/log.h"

#define NEGOTIATION_WORD "tandem-migrate"
#define NEGOTIATION_LINE_MAX 256        /* bytes, the newline included */
#define NEGOTIATION_RELEASE_MAX 63      /* characters in release= */

/* The libxc image versions this release reads (streams/reader.c), which
 * are also the ones its save engine writes: bit N = version N. */
#define NEGOTIATION_STREAMS_OURS ((1u << 2) | (1u << 3))

/* What a negotiating receiver says about itself. */
struct negotiation_offer {
    char release[NEGOTIATION_RELEASE_MAX + 1];
    unsigned streams;   /* bit N set: reads libxc image version N (0 < N < 32) */
};

/* Parses the line without its newline, len bytes of it (no NUL needed).
 * 0, or -EPROTO logged as "the receiver's negotiation line '<line>' is
 * malformed : <why>"; *offer is zeroed on failure. */
int negotiation_parse_line(const char *line, size_t len, struct negotiation_offer *offer,
                           const struct tlog *log);

/* Writes the receiver's line for offer, newline included, NUL-terminated,
 * into buf.  The number of bytes written (without the NUL), -EINVAL if the
 * offer could not be parsed back (release empty, too long or not printable
 * without spaces; no versions, or version 0), -ENOSPC if buf is too small.
 * Nothing is logged: the values are the caller's own. */
int negotiation_format_line(const struct negotiation_offer *offer, char *buf, size_t buflen);

/* The highest version in both masks, or 0 if they have none in common. */
unsigned negotiation_pick_version(unsigned theirs, unsigned ours);

/* "2,3" for the versions in mask ("" for none), cut short to fit; buf. */
const char *negotiation_versions_text(unsigned mask, char *buf, size_t buflen);

/* len bytes of a line as printable text for an error message: anything
 * else as \xHH, cut short with "..." after about 72 characters. */
void negotiation_quote_line(const char *line, size_t len, char *out, size_t outlen);

#endif
