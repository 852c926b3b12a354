/* Fuzz target for the xl.cfg parser.  Every input must parse or fail
 * cleanly; a configuration that parses must format to text that parses
 * back to the same configuration and formats to the same text again, and
 * applying that text as an override must change nothing. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/log.h"
#include "xlcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail, const char *text)
{
    fprintf(stderr, "fuzz_xlcfg: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    if (text)
        fprintf(stderr, "--- formatted text ---\n%s--- end ---\n", text);
    abort();
}

/* Looks every key up in every way, as a program reading the file would. */
static void look_up(void *opaque, const char *key, const char *file, unsigned line)
{
    struct xlcfg *cfg = opaque;
    const struct xlcfg_value *list;
    const char *s, **strs;
    long long n;
    bool b;
    size_t count;

    if (!key || !file || (!line && strcmp(file, "(set by program)") != 0))
        fail("bad unused-key report", key, NULL);
    if (xlcfg_get_string(cfg, key, &s, NULL) == 0 && !s)
        fail("get_string gave NULL", key, NULL);
    (void)xlcfg_get_number(cfg, key, 0, 1000, &n, NULL);
    (void)xlcfg_get_bool(cfg, key, &b, NULL);
    if (xlcfg_get_list(cfg, key, &list, NULL) == 0 && list->kind != XLCFG_LIST)
        fail("get_list gave a non-list", key, NULL);
    if (xlcfg_get_string_list(cfg, key, &strs, &count, NULL) == 0) {
        if (strs[count])
            fail("string list not NULL-terminated", key, NULL);
        free(strs);
    }
}

static void never_called(void *opaque, const char *key, const char *file, unsigned line)
{
    (void)opaque; (void)file; (void)line;
    fail("key still unused after look-up", key, NULL);
}

/* The vif= and disk= parsers: a refusal says why, and the formatted
 * configuration gives the same devices as the original. */
static void check_devices(struct xlcfg *a, struct xlcfg *b)
{
    static struct domain_config ca, cb;   /* large; the fuzzer runs one input at a time */
    struct tlog_buffer la, lb;
    int (*const get[2])(struct xlcfg *, struct domain_config *, const struct tlog *) = {
        xlcfg_get_vifs, xlcfg_get_disks,
    };
    for (unsigned i = 0; i < 2; i++) {
        memset(&ca, 0, sizeof(ca));
        memset(&cb, 0, sizeof(cb));
        tlog_buffer_init(&la);
        tlog_buffer_init(&lb);
        int ra = get[i](a, &ca, &la.log), rb = get[i](b, &cb, &lb.log);
        if (ra < 0 && !la.last[0])
            fail(i ? "disk= refused without a reason" : "vif= refused without a reason", NULL, NULL);
        if ((ra < 0) != (rb < 0))
            fail("the formatted configuration's devices parse differently", lb.last, NULL);
        if (ra == 0 && (ca.nr_vifs != cb.nr_vifs || ca.nr_disks != cb.nr_disks ||
                        memcmp(ca.vifs, cb.vifs, sizeof(ca.vifs)) || memcmp(ca.disks, cb.disks, sizeof(ca.disks))))
            fail("the formatted configuration has other devices", NULL, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlog_buffer lb;
    struct xlcfg *a = NULL, *b = NULL;
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    int r;

    tlog_buffer_init(&lb);
    r = xlcfg_parse((const char *)data, size, "fuzz.cfg", &lb.log, &a);
    if (r < 0) {
        if (a)
            fail("failed parse returned a configuration", NULL, NULL);
        if (!lb.last[0])
            fail("failed parse logged nothing", NULL, NULL);
        return 0;
    }

    r = xlcfg_format(a, &text, &len);
    if (r == -E2BIG)
        goto out;
    if (r < 0 || !text || strlen(text) != len)
        fail("format failed", NULL, NULL);

    tlog_buffer_init(&lb);
    if (xlcfg_parse(text, len, "formatted", &lb.log, &b) < 0)
        fail("formatted text does not parse", lb.last, text);
    if (!xlcfg_equal(a, b))
        fail("formatted text parses to another configuration", NULL, text);
    if (xlcfg_format(b, &text2, &len2) < 0 || len2 != len || memcmp(text, text2, len) != 0)
        fail("formatting is not stable", NULL, text);

    tlog_buffer_init(&lb);
    if (xlcfg_apply_override(b, text, &lb.log) < 0)
        fail("formatted text fails as an override", lb.last, text);
    if (!xlcfg_equal(a, b))
        fail("override with the same settings changed the configuration", NULL, text);

    check_devices(a, b);
    xlcfg_for_each_unused(a, look_up, a);
    xlcfg_for_each_unused(a, never_called, NULL);

out:
    free(text);
    free(text2);
    xlcfg_free(a);
    xlcfg_free(b);
    return 0;
}
