#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "tandem/xen.h"

static const char *const action_names[] = {
    [DOMAIN_ACTION_DESTROY] = "destroy",
    [DOMAIN_ACTION_RESTART] = "restart",
    [DOMAIN_ACTION_PRESERVE] = "preserve",
};

const char *domain_action_name(enum domain_action a)
{
    return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a] : "?";
}

int domain_action_parse(const char *s, enum domain_action *out)
{
    for (unsigned i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
        if (strcmp(s, action_names[i]) == 0) {
            *out = (enum domain_action)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *domain_logdirty_mode_name(enum domain_logdirty_mode m)
{
    switch (m) {
    case DOMAIN_LOGDIRTY_RING: return "ring";
    case DOMAIN_LOGDIRTY_BITMAP: return "bitmap";
    default: return "auto";
    }
}

int domain_logdirty_mode_parse(const char *s, enum domain_logdirty_mode *out)
{
    if (!strcmp(s, "ring"))
        *out = DOMAIN_LOGDIRTY_RING;
    else if (!strcmp(s, "bitmap"))
        *out = DOMAIN_LOGDIRTY_BITMAP;
    else if (!strcmp(s, "auto"))
        *out = DOMAIN_LOGDIRTY_AUTO;
    else
        return -EINVAL;
    return 0;
}

void domain_config_init(struct domain_config *c)
{
    memset(c, 0, sizeof(*c));
    c->memory_mb = 128;
    c->vcpus = 1;
    c->on_poweroff = DOMAIN_ACTION_DESTROY;
    c->on_reboot = DOMAIN_ACTION_RESTART;
    c->on_crash = DOMAIN_ACTION_DESTROY;
}

bool domain_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= DOMAIN_NAME_MAX)
        return false;
    /* A name must not be mistaken for a domid on the xl command line. */
    bool all_digits = true;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
        if (ch < '0' || ch > '9')
            all_digits = false;
    }
    return !all_digits && name[0] != '.';
}

/* ---- Guest devices ----
 * The same rules as tools/xlcfg.c's parsers, for configs from any source
 * (a registry record, a save file, a migration stream). */

static bool mac_unset(const uint8_t mac[6])
{
    static const uint8_t zero[6];
    return memcmp(mac, zero, 6) == 0;
}

static void mac_format(const uint8_t m[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Exactly "xx:xx:xx:xx:xx:xx". */
static int mac_parse(const char *s, uint8_t m[6])
{
    for (int i = 0; i < 6; i++, s += 3) {
        int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
        if (hi < 0 || lo < 0 || s[2] != (i < 5 ? ':' : '\0'))
            return -EINVAL;
        m[i] = (uint8_t)(hi * 16 + lo);
    }
    return 0;
}

/* Linux's dev_valid_name() rules, within a buffer of DOMAIN_IFNAME_MAX;
 * "" (the default) is allowed. */
static bool ifname_valid(const char *s)
{
    size_t n = strnlen(s, DOMAIN_IFNAME_MAX);
    if (n == DOMAIN_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* xvd, hd, sd or vd and one to three lower-case letters. */
static bool vdev_valid(const char *s)
{
    static const char *const prefixes[] = { "xvd", "hd", "sd", "vd" };
    size_t n = strnlen(s, DOMAIN_VDEV_MAX);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t p = strlen(prefixes[i]);
        if (n <= p || n > p + 3 || strncmp(s, prefixes[i], p) != 0)
            continue;
        for (size_t j = p; j < n; j++)
            if (s[j] < 'a' || s[j] > 'z')
                return false;
        return true;
    }
    return false;
}

/* A vif's MAC may still be all-zero: xl assigns it when the domain is
 * created (tools/xlcfg.c, xlcfg_assign_macs). */
static int check_devices(const struct domain_config *c, const char *what, const struct tlog *log)
{
    if (c->nr_vifs > DOMAIN_MAX_VIFS || c->nr_disks > DOMAIN_MAX_DISKS) {
        tlog_error(log, "%s%u vifs and %u disks: at most %d and %d", what, c->nr_vifs, c->nr_disks,
                   DOMAIN_MAX_VIFS, DOMAIN_MAX_DISKS);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->nr_vifs; i++) {
        const struct domain_vif *v = &c->vifs[i];
        char mac[18];
        mac_format(v->mac, mac);
        if (v->mac[0] & 1) {
            tlog_error(log, "%svif %u: MAC %s is a multicast address", what, i, mac);
            return -EINVAL;
        }
        if (!ifname_valid(v->bridge) || !ifname_valid(v->ifname)) {
            tlog_error(log, "%svif %u: bridge '%.*s' or vifname '%.*s' is not an interface name (at most %d "
                       "characters, no '/', ':' or blanks)", what, i, DOMAIN_IFNAME_MAX, v->bridge,
                       DOMAIN_IFNAME_MAX, v->ifname, DOMAIN_IFNAME_MAX - 1);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            if (!mac_unset(v->mac) && !memcmp(v->mac, c->vifs[j].mac, 6)) {
                tlog_error(log, "%svif %u: MAC %s is already vif %u's", what, i, mac, j);
                return -EINVAL;
            }
            if (v->ifname[0] && !strcmp(v->ifname, c->vifs[j].ifname)) {
                tlog_error(log, "%svif %u: vifname %s is already vif %u's", what, i, v->ifname, j);
                return -EINVAL;
            }
        }
    }
    for (unsigned i = 0; i < c->nr_disks; i++) {
        const struct domain_disk *d = &c->disks[i];
        size_t n = strnlen(d->target, DOMAIN_DISK_PATH_MAX);
        if (n == 0 || n == DOMAIN_DISK_PATH_MAX || d->target[0] != '/') {
            tlog_error(log, "%sdisk %u: the target must be an absolute path of at most %d characters", what,
                       i, DOMAIN_DISK_PATH_MAX - 1);
            return -EINVAL;
        }
        if (!vdev_valid(d->vdev)) {
            tlog_error(log, "%sdisk %u: vdev '%.*s' is not xvd, hd, sd or vd and one to three letters", what,
                       i, DOMAIN_VDEV_MAX, d->vdev);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            if (!strcmp(d->vdev, c->disks[j].vdev)) {
                tlog_error(log, "%sdisk %u: vdev %s is already disk %u's", what, i, d->vdev, j);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* The registry keeps a domain's config as JSON in a fixed buffer (and
 * migrations carry the same text): a config must fit, with the MACs xl has
 * yet to assign counted in. */
static int check_json_fits(const struct domain_config *c, const struct tlog *log)
{
    const size_t cap = sizeof(((struct registry_entry *)0)->config_json);
    struct domain_config *probe = malloc(sizeof(*probe));
    char *json = malloc(cap);
    int rc = -ENOMEM;
    if (probe && json) {
        *probe = *c;
        for (unsigned i = 0; i < probe->nr_vifs; i++)
            if (mac_unset(probe->vifs[i].mac))
                memcpy(probe->vifs[i].mac, "\x00\x16\x3e\x00\x00\x01", 6);
        rc = domain_config_to_json(probe, json, cap);
        if (rc == -E2BIG)
            tlog_error(log, "the domain config is too large: as JSON it takes more than the %zu bytes a "
                       "domain's record holds (shorten kernel, cmdline or disk paths)", cap - 1);
        else if (rc)
            tlog_error(log, "the domain config cannot be written as JSON: %s", strerror(-rc));
    } else {
        tlog_error(log, "domain config: out of memory");
    }
    free(probe);
    free(json);
    return rc;
}

int domain_config_check(const struct domain_config *c, const struct tlog *log)
{
    if (!domain_name_valid(c->name)) {
        tlog_error(log, "invalid domain name '%s': use 1-%d letters, digits, '-', '_' or '.', not all digits",
                   c->name, DOMAIN_NAME_MAX - 1);
        return -EINVAL;
    }
    if (c->memory_mb < 2 || c->memory_mb > DOMAIN_MAX_MEMORY_MB) {
        tlog_error(log, "memory=%llu MiB is out of range (2 to %d)", (unsigned long long)c->memory_mb,
                   DOMAIN_MAX_MEMORY_MB);
        return -EINVAL;
    }
    if (c->vcpus < 1 || c->vcpus > DOMAIN_MAX_VCPUS) {
        tlog_error(log, "vcpus=%u is out of range (1 to %d)", c->vcpus, DOMAIN_MAX_VCPUS);
        return -EINVAL;
    }
    if (!c->kernel[0]) {
        tlog_error(log, "no kernel given");
        return -EINVAL;
    }
    unsigned ring = c->log_dirty_ring;
    if (ring && (ring < DOMAIN_DIRTY_RING_MIN || ring > DOMAIN_DIRTY_RING_MAX || (ring & (ring - 1)))) {
        tlog_error(log, "log_dirty_ring=%u: must be a power of two from %d to %d (entries per vCPU)", ring,
                   DOMAIN_DIRTY_RING_MIN, DOMAIN_DIRTY_RING_MAX);
        return -EINVAL;
    }
    if (ring && c->log_dirty == DOMAIN_LOGDIRTY_BITMAP) {
        tlog_error(log, "log_dirty_ring=%u with log_dirty=\"bitmap\": the bitmap has no ring", ring);
        return -EINVAL;
    }
    int rc = check_devices(c, "", log);
    return rc ? rc : check_json_fits(c, log);
}

int domain_config_to_json(const struct domain_config *c, char *buf, size_t len)
{
    json_object *o = json_object_new_object();
    if (!o)
        return -ENOMEM;
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)c->memory_mb));
    json_object_object_add(o, "vcpus", json_object_new_int((int)c->vcpus));
    json_object_object_add(o, "kernel", json_object_new_string(c->kernel));
    json_object_object_add(o, "cmdline", json_object_new_string(c->cmdline));
    json_object_object_add(o, "on_poweroff", json_object_new_string(domain_action_name(c->on_poweroff)));
    json_object_object_add(o, "on_reboot", json_object_new_string(domain_action_name(c->on_reboot)));
    json_object_object_add(o, "on_crash", json_object_new_string(domain_action_name(c->on_crash)));
    json_object_object_add(o, "log_dirty", json_object_new_string(domain_logdirty_mode_name(c->log_dirty)));
    /* Only when set: a receiver from before log_dirty_ring skips a key it
     * does not know, but there is no need to send it one. */
    if (c->log_dirty_ring)
        json_object_object_add(o, "log_dirty_ring", json_object_new_int64(c->log_dirty_ring));
    /* CPU overrides as Xen's xend strings, the MSR ones as hex pairs. */
    if (c->cpuid.n) {
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < c->cpuid.n; i++) {
            char x[96];
            if (cpu_override_format_xend(&c->cpuid.cpuid[i], x, sizeof(x)) == 0)
                json_object_array_add(a, json_object_new_string(x));
        }
        json_object_object_add(o, "cpuid", a);
    }
    if (c->cpuid.n_msr) {
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < c->cpuid.n_msr; i++) {
            char x[80];
            snprintf(x, sizeof(x), "0x%x:set=0x%llx,clear=0x%llx", c->cpuid.msr[i].index,
                     (unsigned long long)c->cpuid.msr[i].set, (unsigned long long)c->cpuid.msr[i].clear);
            json_object_array_add(a, json_object_new_string(x));
        }
        json_object_object_add(o, "cpuid_msr", a);
    }
    /* Devices only when there are some: a config without any reads the
     * same as before Tandem had devices. */
    if (c->nr_vifs) {
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < c->nr_vifs && i < DOMAIN_MAX_VIFS; i++) {
            const struct domain_vif *v = &c->vifs[i];
            json_object *e = json_object_new_object();
            char mac[18];
            if (!mac_unset(v->mac)) {           /* unset: xl has yet to assign it */
                mac_format(v->mac, mac);
                json_object_object_add(e, "mac", json_object_new_string(mac));
            }
            json_object_object_add(e, "bridge", json_object_new_string_len(v->bridge,
                                   (int)strnlen(v->bridge, DOMAIN_IFNAME_MAX)));
            json_object_object_add(e, "vifname", json_object_new_string_len(v->ifname,
                                   (int)strnlen(v->ifname, DOMAIN_IFNAME_MAX)));
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "vifs", a);
    }
    if (c->nr_disks) {
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < c->nr_disks && i < DOMAIN_MAX_DISKS; i++) {
            const struct domain_disk *d = &c->disks[i];
            json_object *e = json_object_new_object();
            json_object_object_add(e, "target", json_object_new_string_len(d->target,
                                   (int)strnlen(d->target, DOMAIN_DISK_PATH_MAX)));
            json_object_object_add(e, "vdev", json_object_new_string_len(d->vdev,
                                   (int)strnlen(d->vdev, DOMAIN_VDEV_MAX)));
            json_object_object_add(e, "access", json_object_new_string(d->readonly ? "ro" : "rw"));
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "disks", a);
    }
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int rc = 0;
    if ((size_t)snprintf(buf, len, "%s", s) >= len)
        rc = -E2BIG;
    json_object_put(o);
    return rc;
}

static int json_get_string(json_object *o, const char *key, char *dst, size_t len, bool required,
                           const struct tlog *log)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) {
        if (!required)
            return 0;
        tlog_error(log, "domain config: '%s' missing", key);
        return -EINVAL;
    }
    if (!json_object_is_type(v, json_type_string) ||
        (size_t)json_object_get_string_len(v) >= len) {
        tlog_error(log, "domain config: '%s' must be a string shorter than %zu", key, len);
        return -EINVAL;
    }
    memcpy(dst, json_object_get_string(v), json_object_get_string_len(v) + 1);
    return 0;
}

static int json_get_action(json_object *o, const char *key, enum domain_action *a, const struct tlog *log)
{
    char s[32] = "";
    int rc = json_get_string(o, key, s, sizeof(s), false, log);
    if (rc || !s[0])
        return rc;
    if (domain_action_parse(s, a)) {
        tlog_error(log, "domain config: %s='%s' is not an action", key, s);
        return -EINVAL;
    }
    return 0;
}

/* "cpuid" (xend strings) and "cpuid_msr" ("0xINDEX:set=0x..,clear=0x.."). */
static int json_get_cpuid(json_object *o, struct cpu_overrides *ov, const struct tlog *log)
{
    json_object *a;
    if (json_object_object_get_ex(o, "cpuid", &a)) {
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > CPU_OVERRIDES_MAX) {
            tlog_error(log, "domain config: 'cpuid' must be a list of at most %d strings", CPU_OVERRIDES_MAX);
            return -EINVAL;
        }
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            json_object *e = json_object_array_get_idx(a, i);
            char err[256];
            if (!json_object_is_type(e, json_type_string)) {
                tlog_error(log, "domain config: 'cpuid' must be a list of strings");
                return -EINVAL;
            }
            if (cpu_overrides_parse_xend(json_object_get_string(e), ov, err, sizeof(err))) {
                tlog_error(log, "domain config: cpuid: %s", err);
                return -EINVAL;
            }
        }
    }
    if (json_object_object_get_ex(o, "cpuid_msr", &a)) {
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > CPU_MSR_OVERRIDES_MAX) {
            tlog_error(log, "domain config: 'cpuid_msr' must be a list of at most %d strings",
                       CPU_MSR_OVERRIDES_MAX);
            return -EINVAL;
        }
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            json_object *e = json_object_array_get_idx(a, i);
            unsigned idx;
            unsigned long long set, clear;
            int end = 0;
            const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
            if (sscanf(s, "0x%x:set=0x%llx,clear=0x%llx%n", &idx, &set, &clear, &end) != 3 || s[end]) {
                tlog_error(log, "domain config: cpuid_msr '%.64s' is not 0xINDEX:set=0x..,clear=0x..", s);
                return -EINVAL;
            }
            ov->msr[ov->n_msr++] = (struct cpu_msr_override){ idx, set, clear };
        }
    }
    return 0;
}

/* A string member of a device object into dst[len]; false (logged) if it
 * is not a string or too long. */
static bool device_string(json_object *v, const char *list, unsigned i, const char *key, char *dst,
                          size_t len, const struct tlog *log)
{
    if (!json_object_is_type(v, json_type_string) || (size_t)json_object_get_string_len(v) >= len ||
        strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
        tlog_error(log, "domain config: %s[%u].%s must be a string shorter than %zu", list, i, key, len);
        return false;
    }
    memcpy(dst, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
    return true;
}

/* The device list `key` (at most max objects), or none when absent. */
static int device_list(json_object *o, const char *key, unsigned max, json_object **out, unsigned *n,
                       const struct tlog *log)
{
    *out = NULL;
    *n = 0;
    if (!json_object_object_get_ex(o, key, out))
        return 0;
    if (!json_object_is_type(*out, json_type_array) || json_object_array_length(*out) > max) {
        tlog_error(log, "domain config: '%s' must be a list of at most %u objects", key, max);
        return -EINVAL;
    }
    *n = (unsigned)json_object_array_length(*out);
    for (unsigned i = 0; i < *n; i++) {
        if (!json_object_is_type(json_object_array_get_idx(*out, i), json_type_object)) {
            tlog_error(log, "domain config: %s[%u] must be an object", key, i);
            return -EINVAL;
        }
    }
    return 0;
}

/* "vifs": [{"mac": "00:16:3e:..", "bridge": "..", "vifname": ".."}] (a
 * missing mac is one xl has yet to assign) and "disks": [{"target": "/..",
 * "vdev": "xvda", "access": "rw" or "ro"}], strictly: no other keys. */
static int json_get_devices(json_object *o, struct domain_config *c, const struct tlog *log)
{
    json_object *a;
    unsigned n;
    int rc = device_list(o, "vifs", DOMAIN_MAX_VIFS, &a, &n, log);
    for (unsigned i = 0; !rc && i < n; i++) {
        struct domain_vif *v = &c->vifs[i];
        json_object_object_foreach(json_object_array_get_idx(a, i), key, val) {
            char mac[24];
            if (!strcmp(key, "mac")) {
                if (!device_string(val, "vifs", i, key, mac, sizeof(mac), log)) {
                    rc = -EINVAL;
                } else if (mac_parse(mac, v->mac) || mac_unset(v->mac)) {
                    tlog_error(log, "domain config: vifs[%u].mac '%s' is not a MAC address", i, mac);
                    rc = -EINVAL;
                }
            } else if (!strcmp(key, "bridge")) {
                if (!device_string(val, "vifs", i, key, v->bridge, sizeof(v->bridge), log))
                    rc = -EINVAL;
            } else if (!strcmp(key, "vifname")) {
                if (!device_string(val, "vifs", i, key, v->ifname, sizeof(v->ifname), log))
                    rc = -EINVAL;
            } else {
                tlog_error(log, "domain config: vifs[%u]: unknown key '%.64s'", i, key);
                rc = -EINVAL;
            }
            if (rc)
                break;
        }
    }
    if (!rc)
        c->nr_vifs = n;
    if (!rc)
        rc = device_list(o, "disks", DOMAIN_MAX_DISKS, &a, &n, log);
    for (unsigned i = 0; !rc && i < n; i++) {
        struct domain_disk *d = &c->disks[i];
        bool have_target = false, have_vdev = false, have_access = false;
        json_object_object_foreach(json_object_array_get_idx(a, i), key, val) {
            char access[4];
            if (!strcmp(key, "target")) {
                have_target = device_string(val, "disks", i, key, d->target, sizeof(d->target), log);
                rc = have_target ? 0 : -EINVAL;
            } else if (!strcmp(key, "vdev")) {
                have_vdev = device_string(val, "disks", i, key, d->vdev, sizeof(d->vdev), log);
                rc = have_vdev ? 0 : -EINVAL;
            } else if (!strcmp(key, "access")) {
                have_access = device_string(val, "disks", i, key, access, sizeof(access), log);
                if (have_access && strcmp(access, "rw") && strcmp(access, "ro")) {
                    tlog_error(log, "domain config: disks[%u].access '%s' is not rw or ro", i, access);
                    have_access = false;
                }
                d->readonly = have_access && !strcmp(access, "ro");
                rc = have_access ? 0 : -EINVAL;
            } else {
                tlog_error(log, "domain config: disks[%u]: unknown key '%.64s'", i, key);
                rc = -EINVAL;
            }
            if (rc)
                break;
        }
        if (!rc && (!have_target || !have_vdev || !have_access)) {
            tlog_error(log, "domain config: disks[%u] needs target, vdev and access", i);
            rc = -EINVAL;
        }
    }
    if (!rc)
        c->nr_disks = n;
    if (!rc)
        rc = check_devices(c, "domain config: ", log);
    if (rc) {
        c->nr_vifs = c->nr_disks = 0;
        memset(c->vifs, 0, sizeof(c->vifs));
        memset(c->disks, 0, sizeof(c->disks));
    }
    return rc;
}

int domain_config_from_json(const char *json, struct domain_config *c, const struct tlog *log)
{
    domain_config_init(c);
    json_object *o = json_tokener_parse(json);
    if (!o || !json_object_is_type(o, json_type_object)) {
        tlog_error(log, "domain config: not a JSON object");
        json_object_put(o);
        return -EINVAL;
    }
    int rc = json_get_string(o, "name", c->name, sizeof(c->name), true, log);
    if (!rc) rc = json_get_string(o, "kernel", c->kernel, sizeof(c->kernel), true, log);
    if (!rc) rc = json_get_string(o, "cmdline", c->cmdline, sizeof(c->cmdline), false, log);
    if (!rc) rc = json_get_action(o, "on_poweroff", &c->on_poweroff, log);
    if (!rc) rc = json_get_action(o, "on_reboot", &c->on_reboot, log);
    if (!rc) rc = json_get_action(o, "on_crash", &c->on_crash, log);
    char ld[16] = "";
    if (!rc) rc = json_get_string(o, "log_dirty", ld, sizeof(ld), false, log);
    if (!rc && ld[0] && domain_logdirty_mode_parse(ld, &c->log_dirty)) {
        tlog_error(log, "domain config: log_dirty='%s' is not auto, ring or bitmap", ld);
        rc = -EINVAL;
    }
    json_object *v;
    if (!rc)
        rc = json_get_cpuid(o, &c->cpuid, log);
    if (!rc)
        rc = json_get_devices(o, c, log);
    if (!rc && json_object_object_get_ex(o, "memory", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0) {
            tlog_error(log, "domain config: 'memory' must be a positive integer");
            rc = -EINVAL;
        } else {
            c->memory_mb = (uint64_t)json_object_get_int64(v);
        }
    }
    if (!rc && json_object_object_get_ex(o, "log_dirty_ring", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < DOMAIN_DIRTY_RING_MIN ||
            json_object_get_int64(v) > DOMAIN_DIRTY_RING_MAX) {
            tlog_error(log, "domain config: 'log_dirty_ring' must be %d to %d", DOMAIN_DIRTY_RING_MIN,
                       DOMAIN_DIRTY_RING_MAX);
            rc = -EINVAL;
        } else {
            c->log_dirty_ring = (unsigned)json_object_get_int64(v);
        }
    }
    if (!rc && json_object_object_get_ex(o, "vcpus", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
            json_object_get_int64(v) > DOMAIN_MAX_VCPUS) {
            tlog_error(log, "domain config: 'vcpus' must be 1 to %d", DOMAIN_MAX_VCPUS);
            rc = -EINVAL;
        } else {
            c->vcpus = (unsigned)json_object_get_int64(v);
        }
    }
    json_object_put(o);
    return rc;
}
