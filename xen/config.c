#include "config.h"
#include <errno.h>
#include <stdio.h>
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
    return 0;
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
    if (!rc && json_object_object_get_ex(o, "memory", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0) {
            tlog_error(log, "domain config: 'memory' must be a positive integer");
            rc = -EINVAL;
        } else {
            c->memory_mb = (uint64_t)json_object_get_int64(v);
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
