/* xl.cfg parser: reads domain configuration files in the syntax Xen's xl
 * documents in xl.cfg(5).
 *
 *   # comment to end of line
 *   name = "g1"                      strings in "double" or 'single' quotes,
 *   memory = 512; vcpus = 0x2        with C escapes (\n \t \\ \" \' \xHH \ooo)
 *   disk = [ "file:/img,xvda,w",     lists of strings and numbers, may span
 *            "file:/b,xvdb,r", ]     lines, may end with a comma
 *   memory = \                       a backslash at the end of a line
 *       1024                         joins it to the next one
 *   vif += [ "bridge=br1" ]          += appends to an earlier list or string
 *
 * Settings are separated by newlines or ';'.  Keys are identifiers
 * [A-Za-z_][A-Za-z0-9_]* of at most 128 characters.  Numbers are decimal,
 * 0x hexadecimal or 0-prefixed octal, as in C, without a sign.  Escapes
 * work in both kinds of quotes; \xHH takes exactly two hex digits, \ooo one
 * to three octal ones, and none may give a NUL byte.  The continuation
 * backslash works inside strings too (it and the newline vanish) but not in
 * comments, which always end at the newline.  A later setting of a key
 * replaces an earlier one; += on a key not yet set is a plain =, and += is
 * an error with numbers or with a list and a string.  Lists do not nest.
 * Texts are at most XLCFG_MAX_INPUT bytes, lists XLCFG_MAX_LIST items.
 *
 * As in Xen, a quoted number is accepted where a number is wanted
 * (memory = "512") and a number where a string is wanted (cpus = 3).
 *
 * All functions return 0 or a negative errno.  Parse errors and wrong kinds
 * are reported through the caller's logger as "<file>:<line>: <what>".
 * A missing key returns -ENOENT and is not logged. */
#ifndef TANDEM_TOOLS_XLCFG_H
#define TANDEM_TOOLS_XLCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tandem/log.h"
#include "tandem/xen.h"

#define XLCFG_MAX_INPUT     (1024 * 1024)   /* bytes in one text or file */
#define XLCFG_MAX_KEY       128             /* characters in a key */
#define XLCFG_MAX_LIST      4096            /* items in one list */

struct xlcfg;                   /* a parsed configuration */

enum xlcfg_kind { XLCFG_STRING, XLCFG_NUMBER, XLCFG_LIST };

struct xlcfg_value {
    enum xlcfg_kind kind;
    char *str;                  /* STRING: the text; NUMBER: as written */
    long long num;              /* NUMBER: the value */
    size_t n_items;             /* LIST: the items */
    struct xlcfg_value *items;
    const char *file;           /* where the value was written, for messages */
    unsigned line;
};

/* Parses len bytes of text; filename names it in messages.  On success
 * *out is a new configuration for xlcfg_free(). */
int xlcfg_parse(const char *text, size_t len, const char *filename,
                const struct tlog *log, struct xlcfg **out);
int xlcfg_parse_file(const char *path, const struct tlog *log, struct xlcfg **out);

/* Applies more configuration text on top of cfg, as `xl create cfg
 * key=value ...` does: the text is parsed like extra lines at the end of the
 * file (its messages name "command line").  On failure settings before the
 * error may have been applied. */
int xlcfg_apply_override(struct xlcfg *cfg, const char *text, const struct tlog *log);

/* Look-ups.  Each marks the key used (see xlcfg_for_each_unused).  Returned
 * pointers live as long as cfg and its setting. */
int xlcfg_get_string(struct xlcfg *cfg, const char *key, const char **out,
                     const struct tlog *log);
/* A number in [min, max]; -ERANGE (logged) outside it. */
int xlcfg_get_number(struct xlcfg *cfg, const char *key, long long min,
                     long long max, long long *out, const struct tlog *log);
/* A number, false if 0 and true otherwise (Xen's BOOLEAN). */
int xlcfg_get_bool(struct xlcfg *cfg, const char *key, bool *out,
                   const struct tlog *log);
int xlcfg_get_list(struct xlcfg *cfg, const char *key,
                   const struct xlcfg_value **out, const struct tlog *log);
/* A list of strings (numbers give their text): *out is a malloc'd,
 * NULL-terminated array of pointers into cfg; free() only the array.
 * n may be NULL.  A single value is not a list (-EINVAL), as in Xen. */
int xlcfg_get_string_list(struct xlcfg *cfg, const char *key, const char ***out,
                          size_t *n, const struct tlog *log);

/* Sets a key from the program (e.g. renaming a domain on restore). */
int xlcfg_set_string(struct xlcfg *cfg, const char *key, const char *value);
int xlcfg_set_number(struct xlcfg *cfg, const char *key, long long value);

/* Calls fn for every key that no look-up asked for, in file order, so the
 * caller can warn about unknown keys. */
void xlcfg_for_each_unused(struct xlcfg *cfg,
                           void (*fn)(void *opaque, const char *key,
                                      const char *file, unsigned line),
                           void *opaque);

/* The configuration as canonical text, one setting a line, in the order
 * keys first appeared; xlcfg_parse() reads it back to the same values.
 * *out is malloc'd and NUL-terminated, *len (may be NULL) its length.
 * -E2BIG if the text would exceed XLCFG_MAX_INPUT. */
int xlcfg_format(const struct xlcfg *cfg, char **out, size_t *len);

/* Number of settings, and equality of two configurations' settings (keys in
 * the same order, same values; where they were written is ignored). */
size_t xlcfg_count(const struct xlcfg *cfg);
bool xlcfg_equal(const struct xlcfg *a, const struct xlcfg *b);

void xlcfg_free(struct xlcfg *cfg);

/* ---- Guest devices: vif= and disk= ------------------------------------
 * The items of xl.cfg's vif and disk lists in Xen's syntax
 * (xl-network-configuration(5), xl-disk-configuration(5)) as Tandem's
 * domain_vif and domain_disk; xl.cfg(5) lists the forms accepted.  Errors
 * and warnings name "<file>:<line>: vif N:" or "disk N:" (N counts from 0,
 * a vif's N is its devid); Xen keys that mean nothing to Tandem are
 * accepted with a warning, unknown ones are errors.  A vif without mac=
 * keeps an all-zero MAC, "not assigned yet": xlcfg_assign_macs() gives it
 * one when the domain is created. */

/* One vifspec, of devid `devid`, written at file:line. */
int xlcfg_parse_vif(const char *spec, unsigned devid, const char *file, unsigned line,
                    struct domain_vif *out, const struct tlog *log);
/* One diskspec, the index-th of its list, written at file:line. */
int xlcfg_parse_disk(const char *spec, unsigned index, const char *file, unsigned line,
                     struct domain_disk *out, const struct tlog *log);
/* cfg's "vif" and "disk" lists into c->vifs / c->disks, checking the list
 * as a whole too (at most DOMAIN_MAX_VIFS / DOMAIN_MAX_DISKS items, no MAC,
 * vifname or vdev twice).  No key: no devices, 0.  On error c's devices
 * are left empty. */
int xlcfg_get_vifs(struct xlcfg *cfg, struct domain_config *c, const struct tlog *log);
int xlcfg_get_disks(struct xlcfg *cfg, struct domain_config *c, const struct tlog *log);

/* A MAC address "00:16:3e:0a:1b:2c": exactly six pairs of hex digits (any
 * case) separated by ':'.  -EINVAL for anything else. */
int xlcfg_parse_mac(const char *text, uint8_t mac[6]);
/* Lower-case "xx:xx:xx:xx:xx:xx" and its NUL. */
void xlcfg_format_mac(const uint8_t mac[6], char buf[18]);
bool xlcfg_mac_unset(const uint8_t mac[6]);

/* Gives every vif of c whose MAC is not assigned one in Xen's range, as
 * libxl does: 00:16:3e and three random bytes (getrandom()), the first of
 * them below 0x80, different from the domain's other MACs.  Assigned MACs
 * are kept, so a domain keeps its MACs for its life and through
 * migrations.  -errno (logged) if no random bytes can be had. */
int xlcfg_assign_macs(struct domain_config *c, const struct tlog *log);
/* For a config file that replaces a domain's own (xl save or migrate -C,
 * xl restore with a config): each vif of c without mac= takes the MAC of
 * `from`'s vif with the same devid, unless another vif of c has it, so the
 * guest keeps its addresses. */
void xlcfg_keep_macs(struct domain_config *c, const struct domain_config *from);

#endif
