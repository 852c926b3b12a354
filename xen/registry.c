/* The host-wide domain registry: $STATE/domains/<domid>.json, one record
 * per domain, replaced atomically (write + rename) by whoever owns it.
 * Allocation and reaping happen under an flock on domains/.lock so two
 * xl processes never hand out one domid or one name twice. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "tandem/xen.h"

static const char *const state_names[] = {
    [DOMAIN_STATE_CREATING] = "creating",
    [DOMAIN_STATE_RUNNING] = "running",
    [DOMAIN_STATE_PAUSED] = "paused",
    [DOMAIN_STATE_SHUTDOWN] = "shutdown",
    [DOMAIN_STATE_CRASHED] = "crashed",
    [DOMAIN_STATE_DYING] = "dying",
};

const char *domain_state_name(enum domain_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

int domain_state_parse(const char *s, enum domain_state *out)
{
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum domain_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *const protection_names[] = {
    [DOMAIN_PROTECTION_NONE] = "none",
    [DOMAIN_PROTECTION_SYNCING] = "syncing",
    [DOMAIN_PROTECTION_PROTECTED] = "protected",
    [DOMAIN_PROTECTION_UNPROTECTED] = "unprotected",
    [DOMAIN_PROTECTION_BACKUP] = "backup",
};

const char *domain_protection_name(enum domain_protection p)
{
    return (unsigned)p < sizeof(protection_names) / sizeof(protection_names[0]) ? protection_names[p] : "?";
}

int domain_protection_parse(const char *s, enum domain_protection *out)
{
    for (unsigned i = 0; i < sizeof(protection_names) / sizeof(protection_names[0]); i++) {
        if (strcmp(s, protection_names[i]) == 0) {
            *out = (enum domain_protection)i;
            return 0;
        }
    }
    return -EINVAL;
}

int process_start_time(pid_t pid, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields resume
     * after the last ')'. Start time is field 22; we are at field 3. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    p++;
    /* A zombie has finished: its parent (init, for a domain process) may
     * take a while to reap it, but nothing of the domain is left. */
    if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
        return -ESRCH;
    for (int field = 2; field < 21 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return -EINVAL;
    *out = strtoull(p + 1, NULL, 10);
    return 0;
}

bool registry_entry_alive(const struct registry_entry *e)
{
    unsigned long long start;
    if (e->pid <= 0)
        return false;
    if (kill(e->pid, 0) < 0 && errno != EPERM)
        return false;
    if (process_start_time(e->pid, &start) < 0)
        return false;
    return start == e->pid_start;
}

static void record_path(const struct host_paths *p, unsigned domid, char *buf, size_t len)
{
    snprintf(buf, len, "%s/domains/%u.json", p->state_dir, domid);
}

static int registry_lock(const struct host_paths *p, const struct tlog *log)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/domains/.lock", p->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        int err = errno;
        tlog_error(log, "cannot lock the domain registry %s: %s", path, strerror(err));
        if (fd >= 0)
            close(fd);
        return -err;
    }
    return fd;
}

static void registry_unlock(int fd)
{
    close(fd); /* drops the flock */
}

int registry_write(const struct host_paths *p, const struct registry_entry *e, const struct tlog *log)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "domid", json_object_new_int((int)e->domid));
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "pid", json_object_new_int((int)e->pid));
    json_object_object_add(o, "pid_start", json_object_new_uint64(e->pid_start));
    json_object_object_add(o, "state", json_object_new_string(domain_state_name(e->state)));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)e->memory_mb));
    json_object_object_add(o, "vcpus", json_object_new_int((int)e->vcpus));
    json_object_object_add(o, "created", json_object_new_int64(e->created));
    json_object_object_add(o, "reason", json_object_new_string(e->reason));
    const struct registry_protection *pr = &e->protection;
    if (pr->state != DOMAIN_PROTECTION_NONE) {
        json_object *po = json_object_new_object();
        json_object_object_add(po, "state", json_object_new_string(domain_protection_name(pr->state)));
        json_object_object_add(po, "epochs", json_object_new_uint64(pr->epochs));
        json_object_object_add(po, "last_commit_ms", json_object_new_int64(pr->last_commit_ms));
        json_object_object_add(po, "interval_ms", json_object_new_int((int)pr->interval_ms));
        json_object_object_add(po, "peer", json_object_new_string(pr->peer));
        json_object_object_add(po, "detail", json_object_new_string(pr->detail));
        json_object_object_add(o, "protection", po);
    }
    json_object *cfg = e->config_json[0] ? json_tokener_parse(e->config_json) : NULL;
    if (cfg)
        json_object_object_add(o, "config", cfg);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);

    char path[600], tmp[620];
    record_path(p, e->domid, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    FILE *f = fopen(tmp, "we");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0) {
        rc = -errno;
        f = NULL;
    } else if (rename(tmp, path) < 0) {
        rc = -errno;
    }
    if (rc) {
        tlog_error(log, "cannot write registry record %s: %s", path, strerror(-rc));
        unlink(tmp);
    }
    json_object_put(o);
    return rc;
}

static int parse_record(const char *path, struct registry_entry *e)
{
    json_object *o = json_object_from_file(path);
    if (!o)
        return -EINVAL;
    int rc = -EINVAL;
    json_object *v;
    memset(e, 0, sizeof(*e));
    if (!json_object_object_get_ex(o, "domid", &v) || !json_object_is_type(v, json_type_int))
        goto out;
    e->domid = (unsigned)json_object_get_int(v);
    if (!json_object_object_get_ex(o, "name", &v) || !json_object_is_type(v, json_type_string))
        goto out;
    snprintf(e->name, sizeof(e->name), "%s", json_object_get_string(v));
    if (json_object_object_get_ex(o, "pid", &v))
        e->pid = json_object_get_int(v);
    if (json_object_object_get_ex(o, "pid_start", &v))
        e->pid_start = json_object_get_uint64(v);
    if (!json_object_object_get_ex(o, "state", &v) ||
        domain_state_parse(json_object_get_string(v), &e->state))
        goto out;
    if (json_object_object_get_ex(o, "memory", &v))
        e->memory_mb = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "vcpus", &v))
        e->vcpus = (unsigned)json_object_get_int(v);
    if (json_object_object_get_ex(o, "created", &v))
        e->created = json_object_get_int64(v);
    if (json_object_object_get_ex(o, "reason", &v))
        snprintf(e->reason, sizeof(e->reason), "%s", json_object_get_string(v));
    if (json_object_object_get_ex(o, "protection", &v) && json_object_is_type(v, json_type_object)) {
        struct registry_protection *pr = &e->protection;
        json_object *f;
        if (!json_object_object_get_ex(v, "state", &f) || domain_protection_parse(json_object_get_string(f), &pr->state))
            goto out;
        if (json_object_object_get_ex(v, "epochs", &f))
            pr->epochs = json_object_get_uint64(f);
        if (json_object_object_get_ex(v, "last_commit_ms", &f))
            pr->last_commit_ms = json_object_get_int64(f);
        if (json_object_object_get_ex(v, "interval_ms", &f))
            pr->interval_ms = (unsigned)json_object_get_int(f);
        if (json_object_object_get_ex(v, "peer", &f))
            snprintf(pr->peer, sizeof(pr->peer), "%s", json_object_get_string(f));
        if (json_object_object_get_ex(v, "detail", &f))
            snprintf(pr->detail, sizeof(pr->detail), "%s", json_object_get_string(f));
    }
    if (json_object_object_get_ex(o, "config", &v))
        snprintf(e->config_json, sizeof(e->config_json), "%s",
                 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

static int cmp_domid(const void *a, const void *b)
{
    const struct registry_entry *x = a, *y = b;
    return (x->domid > y->domid) - (x->domid < y->domid);
}

/* Reads every record, reaping the stale ones; called with the lock held. */
static int scan_locked(const struct host_paths *p, struct registry_entry **out, size_t *n,
                       const struct tlog *log)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/domains", p->state_dir);
    DIR *dp = opendir(dir);
    if (!dp) {
        int err = errno;
        tlog_error(log, "cannot read %s: %s", dir, strerror(err));
        return -err;
    }
    struct registry_entry *v = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        char *end;
        unsigned long id = strtoul(de->d_name, &end, 10);
        if (end == de->d_name || strcmp(end, ".json") != 0)
            continue;
        char path[900];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct registry_entry e;
        if (parse_record(path, &e) || e.domid != id) {
            tlog_warn(log, "ignoring unreadable registry record %s", path);
            continue;
        }
        if (!registry_entry_alive(&e)) {
            tlog_debug(log, "reaping domain %u (%s): its process %d is gone", e.domid, e.name, (int)e.pid);
            registry_remove(p, e.domid);
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct registry_entry *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                closedir(dp);
                return -ENOMEM;
            }
            v = nv;
        }
        v[count++] = e;
    }
    closedir(dp);
    if (count)
        qsort(v, count, sizeof(*v), cmp_domid);
    *out = v;
    *n = count;
    return 0;
}

int registry_list(const struct host_paths *p, struct registry_entry **out, size_t *n,
                  const struct tlog *log)
{
    int lock = registry_lock(p, log);
    if (lock < 0)
        return lock;
    int rc = scan_locked(p, out, n, log);
    registry_unlock(lock);
    return rc;
}

int registry_remove(const struct host_paths *p, unsigned domid)
{
    char path[600];
    record_path(p, domid, path, sizeof(path));
    int rc = unlink(path) < 0 ? -errno : 0;
    host_paths_domain_socket(p, domid, path, sizeof(path));
    unlink(path);
    return rc;
}

static unsigned read_next_domid(const struct host_paths *p)
{
    char path[600];
    unsigned next = 1;
    snprintf(path, sizeof(path), "%s/domains/.next-domid", p->state_dir);
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%u", &next) != 1 || next < 1 || next > DOMID_MAX)
            next = 1;
        fclose(f);
    }
    return next;
}

static void write_next_domid(const struct host_paths *p, unsigned next)
{
    char path[600], tmp[620];
    snprintf(path, sizeof(path), "%s/domains/.next-domid", p->state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    fprintf(f, "%u\n", next);
    if (fclose(f) == 0)
        rename(tmp, path);
}

int registry_reserve(const struct host_paths *p, const struct domain_config *c, pid_t pid,
                     unsigned *domid_out, const struct tlog *log)
{
    int lock = registry_lock(p, log);
    if (lock < 0)
        return lock;
    struct registry_entry *v = NULL;
    size_t n = 0;
    int rc = scan_locked(p, &v, &n, log);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, c->name) == 0) {
            tlog_error(log, "domain '%s' already exists with ID %u", c->name, v[i].domid);
            rc = -EEXIST;
            goto out;
        }
    }
    /* Domids grow as Xen's do, wrapping below the reserved range. */
    unsigned id = read_next_domid(p);
    for (unsigned tries = 0;; tries++) {
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = v[i].domid == id;
        if (!used)
            break;
        if (tries > DOMID_MAX) {
            tlog_error(log, "no free domain ID");
            rc = -ENOSPC;
            goto out;
        }
        id = id >= DOMID_MAX ? 1 : id + 1;
    }
    struct registry_entry e = {
        .domid = id, .pid = pid, .state = DOMAIN_STATE_CREATING,
        .memory_mb = c->memory_mb, .vcpus = c->vcpus, .created = (long long)time(NULL),
    };
    snprintf(e.name, sizeof(e.name), "%s", c->name);
    domain_config_to_json(c, e.config_json, sizeof(e.config_json));
    if ((rc = process_start_time(pid, &e.pid_start)))
        goto out;
    if ((rc = registry_write(p, &e, log)))
        goto out;
    write_next_domid(p, id >= DOMID_MAX ? 1 : id + 1);
    *domid_out = id;
out:
    free(v);
    registry_unlock(lock);
    return rc;
}

int registry_find(const struct host_paths *p, const char *name_or_id, struct registry_entry *out,
                  const struct tlog *log)
{
    struct registry_entry *v;
    size_t n;
    int rc = registry_list(p, &v, &n, log);
    if (rc)
        return rc;
    char *end;
    unsigned long id = strtoul(name_or_id, &end, 10);
    bool numeric = end != name_or_id && *end == '\0';
    rc = -ENOENT;
    for (size_t i = 0; i < n; i++) {
        if ((numeric && v[i].domid == id) || (!numeric && strcmp(v[i].name, name_or_id) == 0)) {
            *out = v[i];
            rc = 0;
            break;
        }
    }
    free(v);
    return rc;
}

int registry_write_unique(const struct host_paths *p, const struct registry_entry *e, const struct tlog *log)
{
    int lock = registry_lock(p, log);
    if (lock < 0)
        return lock;
    struct registry_entry *v = NULL;
    size_t n = 0;
    int rc = scan_locked(p, &v, &n, log);
    for (size_t i = 0; !rc && i < n; i++) {
        if (v[i].domid != e->domid && strcmp(v[i].name, e->name) == 0) {
            tlog_error(log, "domain '%s' already exists with ID %u", e->name, v[i].domid);
            rc = -EEXIST;
        }
    }
    if (!rc)
        rc = registry_write(p, e, log);
    free(v);
    registry_unlock(lock);
    return rc;
}
