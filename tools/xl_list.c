/* xl list and xl info. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <json-c/json.h>
#include "xl.h"

/* CPU time of a domain: the time its vCPU threads ran, as Xen counts it. */
static double vcpu_seconds(pid_t pid, bool *any_running)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    double total = 0;
    long hz = sysconf(_SC_CLK_TCK);
    struct dirent *de;
    *any_running = false;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[384], buf[512];
        snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || strncmp(open + 1, "vcpu", 4) != 0)
            continue;
        char state;
        unsigned long utime, stime;
        /* after ") ": state, then fields 4..13, then utime stime */
        if (sscanf(close + 2, "%c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %lu", &state, &utime,
                   &stime) == 3) {
            total += (double)(utime + stime) / (double)hz;
            if (state == 'R')
                *any_running = true;
        }
    }
    closedir(d);
    return total;
}

static void state_string(const struct registry_entry *e, bool running, char out[7])
{
    memcpy(out, "------", 7);
    switch (e->state) {
    case DOMAIN_STATE_RUNNING: out[running ? 0 : 1] = running ? 'r' : 'b'; break;
    case DOMAIN_STATE_CREATING:
    case DOMAIN_STATE_PAUSED: out[2] = 'p'; break;
    case DOMAIN_STATE_SHUTDOWN: out[3] = 's'; break;
    case DOMAIN_STATE_CRASHED: out[4] = 'c'; break;
    case DOMAIN_STATE_DYING: out[5] = 'd'; break;
    }
}

static unsigned long long meminfo_kib(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    unsigned long long v = 0;
    size_t klen = strlen(key);
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Domain-0 is the host itself, as Xen's control domain is. */
static void print_domain0(void)
{
    FILE *f = fopen("/proc/stat", "re");
    unsigned long long user = 0, nice = 0, sys = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu", &user, &nice, &sys) != 3)
            user = nice = sys = 0;
        fclose(f);
    }
    printf("%-40s %5d %5llu %5ld     %s %8.1f\n", "Domain-0", 0, meminfo_kib("MemTotal") / 1024,
           sysconf(_SC_NPROCESSORS_ONLN), "r-----",
           (double)(user + nice + sys) / (double)sysconf(_SC_CLK_TCK));
}

static json_object *entry_json(const struct registry_entry *e)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "domid", json_object_new_int((int)e->domid));
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "state", json_object_new_string(domain_state_name(e->state)));
    json_object_object_add(o, "pid", json_object_new_int((int)e->pid));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)e->memory_mb));
    json_object_object_add(o, "vcpus", json_object_new_int((int)e->vcpus));
    json_object_object_add(o, "created", json_object_new_int64(e->created));
    if (e->reason[0])
        json_object_object_add(o, "reason", json_object_new_string(e->reason));
    /* Remus: "protection": {"state": ..., "epochs", "last_commit_ms" (unix
     * ms), "interval_ms", "peer", "detail"}, when the domain has one. */
    const struct registry_protection *pr = &e->protection;
    if (pr->state != DOMAIN_PROTECTION_NONE) {
        json_object *po = json_object_new_object();
        json_object_object_add(po, "state", json_object_new_string(domain_protection_name(pr->state)));
        json_object_object_add(po, "epochs", json_object_new_int64((int64_t)pr->epochs));
        json_object_object_add(po, "last_commit_ms", json_object_new_int64(pr->last_commit_ms));
        json_object_object_add(po, "interval_ms", json_object_new_int((int)pr->interval_ms));
        if (pr->peer[0])
            json_object_object_add(po, "peer", json_object_new_string(pr->peer));
        if (pr->detail[0])
            json_object_object_add(po, "detail", json_object_new_string(pr->detail));
        json_object_object_add(o, "protection", po);
    }
    json_object *cfg = e->config_json[0] ? json_tokener_parse(e->config_json) : NULL;
    if (cfg)
        json_object_object_add(o, "config", cfg);
    return o;
}

int xl_cmd_list(struct xl_ctx *ctx, int argc, char **argv)
{
    const struct xl_command *cmd = xl_find_command("list");
    static const struct option longopts[] = {
        { "long", no_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' }, { 0 } };
    bool longfmt = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+lh", longopts, NULL)) != -1) {
        if (opt == 'l')
            longfmt = true;
        else
            return xl_usage(cmd, opt != 'h');
    }
    if (xl_open_host(ctx))
        return XL_FAILED;
    struct registry_entry *v;
    size_t n;
    if (registry_list(&ctx->paths, &v, &n, &ctx->log))
        return XL_FAILED;

    /* Named domains only, when some are named; each must exist. */
    bool *show = calloc(n ? n : 1, sizeof(bool));
    int status = XL_OK;
    for (size_t i = 0; i < n; i++)
        show[i] = optind >= argc;
    for (int a = optind; a < argc; a++) {
        bool found = false;
        char *end;
        unsigned long id = strtoul(argv[a], &end, 10);
        bool numeric = end != argv[a] && *end == '\0';
        for (size_t i = 0; i < n; i++)
            if ((numeric && v[i].domid == id) || (!numeric && strcmp(v[i].name, argv[a]) == 0))
                show[i] = found = true;
        if (!found) {
            tlog_error(&ctx->log, "domain '%s' does not exist", argv[a]);
            status = XL_FAILED;
        }
    }
    if (longfmt) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            if (show[i])
                json_object_array_add(arr, entry_json(&v[i]));
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(arr);
    } else if (status == XL_OK || optind < argc) {
        /* A Remus column only when a listed domain has a protection state,
         * so the usual listing stays Xen's. */
        bool ha = false;
        for (size_t i = 0; i < n; i++)
            ha |= show[i] && v[i].protection.state != DOMAIN_PROTECTION_NONE;
        printf("%-40s %5s %5s %5s     %-6s %8s%s\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)",
               ha ? "  Remus" : "");
        if (optind >= argc)
            print_domain0();
        for (size_t i = 0; i < n; i++) {
            if (!show[i])
                continue;
            bool running;
            double secs = vcpu_seconds(v[i].pid, &running);
            char st[7];
            state_string(&v[i], running, st);
            char mark[32] = "";
            if (ha && v[i].protection.state != DOMAIN_PROTECTION_NONE)
                snprintf(mark, sizeof(mark), "  %s", v[i].protection.state == DOMAIN_PROTECTION_UNPROTECTED
                                                          ? "UNPROTECTED"
                                                          : domain_protection_name(v[i].protection.state));
            printf("%-40s %5u %5llu %5u     %s %8.1f%s\n", v[i].name, v[i].domid,
                   (unsigned long long)v[i].memory_mb, v[i].vcpus, st, secs, mark);
        }
    }
    free(show);
    free(v);
    return status;
}

int xl_cmd_info(struct xl_ctx *ctx, int argc, char **argv)
{
    int rc = xl_help_only(ctx, argc, argv, 0, 0);
    if (rc >= 0)
        return rc;
    struct utsname u;
    uname(&u);
    struct kvm_host_info k;
    if (kvm_host_query(&k, &ctx->log))
        return XL_FAILED;
    char ring[64];
    if (k.dirty_ring_max_bytes)
        snprintf(ring, sizeof(ring), "yes (up to %d entries per vCPU%s)", k.dirty_ring_max_bytes / 16,
                 k.dirty_ring_acq_rel ? ", acquire/release" : "");
    else
        snprintf(ring, sizeof(ring), "no (bitmap log-dirty only)");
#define KV(key, fmt, ...) printf("%-23s: " fmt "\n", key, __VA_ARGS__)
    KV("host", "%s", u.nodename);
    KV("release", "%s", u.release);
    KV("version", "%s", u.version);
    KV("machine", "%s", u.machine);
    KV("nr_cpus", "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    KV("cpu_khz", "%u", k.tsc_khz);
    KV("hypervisor", "Linux KVM, API version %d", k.api_version);
    KV("total_memory", "%llu", meminfo_kib("MemTotal") / 1024);
    KV("free_memory", "%llu", meminfo_kib("MemAvailable") / 1024);
    KV("tandem_version", "%s", PACKAGE_VERSION);
    KV("xen_major", "%d", TANDEM_VERSION_MAJOR);
    KV("xen_minor", "%d", TANDEM_VERSION_MINOR);
    KV("kvm_max_vcpus", "%d", k.max_vcpus);
    KV("kvm_recommended_vcpus", "%d", k.nr_vcpus_recommended);
    KV("kvm_memslots", "%d", k.nr_memslots);
    KV("kvm_irqchip", "%s", k.irqchip && k.pit2 ? "in-kernel LAPIC, IOAPIC, PIC and PIT" : "missing");
    KV("kvm_dirty_ring", "%s", ring);
    KV("kvm_dirty_log_manual", "%s", k.manual_dirty_protect ? "yes" : "no");
    KV("kvm_tsc_scaling", "%s", k.tsc_control ? "yes" : "no");
    KV("kvm_xsave", "%s", k.xsave && k.xcrs ? "yes" : "no");
    /* For xl remus --netbuf plug: whether this kernel has sch_plug and ifb. */
    char why_not[200];
    bool plug = domain_net_buffer_probe(why_not, sizeof(why_not));
    KV("remus_netbuf_plug", "%s%s%s", plug ? "available" : "not available (", plug ? "" : why_not, plug ? "" : ")");
    KV("state_dir", "%s", getenv("TANDEM_STATE_DIR") && getenv("TANDEM_STATE_DIR")[0]
                              ? getenv("TANDEM_STATE_DIR") : "/var/lib/tandem");
#undef KV
    return XL_OK;
}
