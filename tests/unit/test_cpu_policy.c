/* CPU policies as data (xen/cpu_features.c): xl.cfg's cpuid= in Xen's
 * libxl and xend forms, host masks, levelling, the missing-feature check
 * and the JSON form.  No KVM needed. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cpu_features.h"
#include "tandem/xen.h"

/* A small policy: leaf 0, 1, 7.0, 0xd.0, 0x80000000, 0x80000001, one MSR. */
static void sample_policy(struct cpu_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0, CPU_NO_SUBLEAF, 0xd, 1, 2, 3 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 1, CPU_NO_SUBLEAF, 0x00a10f11, 0x800, 0xf7f83203,
                                                            0x178bfbff };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 7, 0, 1, 0xf1bf03ab, 0x5f46, 0x10 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0xd, 0, 0xe7, 0x240, 0x980, 0 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0x80000000, CPU_NO_SUBLEAF, 0x80000021, 0, 0, 0 };
    p->leaves[p->nr_leaves++] = (struct domain_cpuid_leaf){ 0x80000001, CPU_NO_SUBLEAF, 0, 0, 0x00400393,
                                                            0x23d3fbff };
    p->msrs[p->nr_msrs++] = (struct domain_msr_entry){ .idx = CPU_MSR_ARCH_CAPABILITIES, .val = 0x69 };
}

static const struct cpu_override *find_ov(const struct cpu_overrides *o, uint32_t leaf, uint32_t sub, unsigned reg)
{
    for (unsigned i = 0; i < o->n; i++)
        if (o->cpuid[i].leaf == leaf && o->cpuid[i].subleaf == sub && o->cpuid[i].reg == reg)
            return &o->cpuid[i];
    return NULL;
}

START_TEST(libxl_form)
{
    struct cpu_overrides o = { 0 };
    char err[256];
    ck_assert_int_eq(cpu_overrides_parse_libxl("host,avx512f=0,AVX2=0,x2apic=1,sse4.1=0,lahf-lm=0,fma=x,rtm=k",
                                               &o, err, sizeof(err)), 0);
    const struct cpu_override *l7 = find_ov(&o, 7, 0, CPU_EBX);
    ck_assert_ptr_nonnull(l7);
    ck_assert_uint_eq(l7->clear, 1u << 16 | 1u << 5);     /* avx512f, avx2 */
    ck_assert_uint_eq(l7->set, 0);
    const struct cpu_override *l1 = find_ov(&o, 1, CPU_NO_SUBLEAF, CPU_ECX);
    ck_assert_ptr_nonnull(l1);
    ck_assert_uint_eq(l1->set, 1u << 21);                  /* x2apic */
    ck_assert_uint_eq(l1->clear, 1u << 19);                /* sse4_1 */
    ck_assert_ptr_nonnull(find_ov(&o, 0x80000001, CPU_NO_SUBLEAF, CPU_ECX));
    ck_assert_uint_eq(o.n, 3);                             /* x, k: nothing */
    /* A later setting of the same bit wins. */
    ck_assert_int_eq(cpu_overrides_parse_libxl("host,avx2=1", &o, err, sizeof(err)), 0);
    l7 = find_ov(&o, 7, 0, CPU_EBX);
    ck_assert_uint_eq(l7->set, 1u << 5);
    ck_assert_uint_eq(l7->clear, 1u << 16);
    /* ARCH_CAPS features are MSR bits. */
    ck_assert_int_eq(cpu_overrides_parse_libxl("host,rdcl-no=0", &o, err, sizeof(err)), 0);
    ck_assert_uint_eq(o.n_msr, 1);
    ck_assert_uint_eq(o.msr[0].index, CPU_MSR_ARCH_CAPABILITIES);
    ck_assert_uint_eq(o.msr[0].clear, 1);
}
END_TEST

START_TEST(signature)
{
    struct cpu_overrides o = { 0 };
    char err[256];
    ck_assert_int_eq(cpu_overrides_parse_libxl("host,family=6,model=0x55,stepping=1", &o, err, sizeof(err)), 0);
    struct cpu_policy p;
    sample_policy(&p);
    ck_assert_int_eq(cpu_policy_apply(&p, &o), 0);
    ck_assert_uint_eq(cpu_policy_reg(&p, 1, CPU_NO_SUBLEAF, CPU_EAX), 0x00050651);
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(cpu_overrides_parse_libxl("host,family=25,model=17", &o, err, sizeof(err)), 0);
    ck_assert_int_eq(cpu_policy_apply(&p, &o), 0);
    /* family 25 = 0xf + extended 0xa; model 17 = extended 1, base 1. */
    ck_assert_uint_eq(cpu_policy_reg(&p, 1, CPU_NO_SUBLEAF, CPU_EAX), 0x00a10f11);
}
END_TEST

static const char *const bad_libxl[] = {
    "",                          /* empty */
    "avx2=0",                    /* no "host" */
    "hostile,avx2=0",
    "host,avx2",                 /* no value */
    "host,=0",
    "host,avx2=2",
    "host,avx2=00",
    "host,avx2=",
    "host,nosuchfeature=0",
    "host,family=abc",
    "host,family=-1",
    "host,family=999",
    "host,model=256",
    "host,stepping=16",
    "host,maxleaf=7",            /* Xen's, not Tandem's */
    "host,avx2=0,",              /* trailing comma */
    "host,,avx2=0",
};

START_TEST(libxl_errors)
{
    struct cpu_overrides o = { 0 };
    char err[256] = "";
    ck_assert_int_ne(cpu_overrides_parse_libxl(bad_libxl[_i], &o, err, sizeof(err)), 0);
    ck_assert_msg(err[0], "no message for '%s'", bad_libxl[_i]);
}
END_TEST

START_TEST(xend_form)
{
    struct cpu_overrides o = { 0 };
    char err[256];
    ck_assert_int_eq(cpu_overrides_parse_xend("1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0,edx=xx0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                              &o, err, sizeof(err)), 0);
    ck_assert_uint_eq(find_ov(&o, 1, CPU_NO_SUBLEAF, CPU_ECX)->clear, 1);
    ck_assert_uint_eq(find_ov(&o, 1, CPU_NO_SUBLEAF, CPU_EDX)->clear, 1u << 29);
    ck_assert_int_eq(cpu_overrides_parse_xend("7,0:ebx=1kxsxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &o, err, sizeof(err)), 0);
    ck_assert_uint_eq(find_ov(&o, 7, 0, CPU_EBX)->set, 1u << 31);
    ck_assert_int_eq(cpu_overrides_parse_xend("0x80000001:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0", &o, err, sizeof(err)),
                     0);
    ck_assert_ptr_nonnull(find_ov(&o, 0x80000001, CPU_NO_SUBLEAF, CPU_ECX));
    /* Formatting gives text that parses back to the same override. */
    for (unsigned i = 0; i < o.n; i++) {
        char text[96];
        struct cpu_overrides back = { 0 };
        ck_assert_int_eq(cpu_override_format_xend(&o.cpuid[i], text, sizeof(text)), 0);
        ck_assert_int_eq(cpu_overrides_parse_xend(text, &back, err, sizeof(err)), 0);
        ck_assert_uint_eq(back.n, 1);
        ck_assert_mem_eq(&back.cpuid[0], &o.cpuid[i], sizeof(back.cpuid[0]));
    }
}
END_TEST

static const char *const bad_xend[] = {
    "1",
    ":ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "x:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "1,:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "0x100000000:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "1:esx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",        /* 31 */
    "1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",      /* 33 */
    "1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2",
    "1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,",
    "1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,edx",
    "1:",
};

START_TEST(xend_errors)
{
    struct cpu_overrides o = { 0 };
    char err[256] = "";
    ck_assert_int_ne(cpu_overrides_parse_xend(bad_xend[_i], &o, err, sizeof(err)), 0);
    ck_assert_msg(err[0], "no message for '%s'", bad_xend[_i]);
}
END_TEST

START_TEST(too_many)
{
    struct cpu_overrides o = { 0 };
    char err[256], text[64];
    int rc = 0;
    for (unsigned i = 0; i <= CPU_OVERRIDES_MAX && !rc; i++) {
        snprintf(text, sizeof(text), "%u:eax=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1", 0x80000100 + i);
        rc = cpu_overrides_parse_xend(text, &o, err, sizeof(err));
    }
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_uint_eq(o.n, CPU_OVERRIDES_MAX);
}
END_TEST

START_TEST(host_mask)
{
    struct cpu_overrides o = { 0 };
    char err[256];
    ck_assert_int_eq(cpu_overrides_parse_mask("avx512f=0,rtm=0", &o, err, sizeof(err)), 0);
    ck_assert_int_eq(cpu_overrides_parse_mask("host,avx2=0", &o, err, sizeof(err)), 0);
    /* avx512f, rtm, avx2 */
    ck_assert_uint_eq(find_ov(&o, 7, 0, CPU_EBX)->clear, 1u << 16 | 1u << 11 | 1u << 5);
    ck_assert_int_ne(cpu_overrides_parse_mask("avx2=1", &o, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "only removes"));
    ck_assert_int_ne(cpu_overrides_parse_mask("family=6", &o, err, sizeof(err)), 0);
}
END_TEST

START_TEST(apply_and_missing)
{
    struct cpu_policy host, guest;
    sample_policy(&host);
    guest = host;
    char msg[1024];
    ck_assert_uint_eq(cpu_policy_missing(&guest, &host, msg, sizeof(msg)), 0);
    ck_assert_str_eq(msg, "");
    /* The host loses avx2 (leaf 7.0 EBX bit 5): a guest that has it
     * cannot come, and the message names it. */
    struct cpu_overrides mask = { 0 };
    char err[256];
    ck_assert_int_eq(cpu_overrides_parse_mask("avx2=0,lahf-lm=0", &mask, err, sizeof(err)), 0);
    ck_assert_int_eq(cpu_policy_apply(&host, &mask), 0);
    ck_assert_uint_eq(cpu_policy_missing(&guest, &host, msg, sizeof(msg)), 2);
    ck_assert_ptr_nonnull(strstr(msg, "leaf 0x7.0 EBX bit 5 (avx2)"));
    ck_assert_ptr_nonnull(strstr(msg, "leaf 0x80000001 ECX bit 0 (lahf-lm)"));
    /* The hypervisor and OSXSAVE bits are not features a host lacks. */
    guest = host;
    guest.leaves[1].c |= 1u << 31 | 1u << 27;
    host.leaves[1].c &= ~(1u << 31 | 1u << 27);
    ck_assert_uint_eq(cpu_policy_missing(&guest, &host, msg, sizeof(msg)), 0);
    /* XSAVE components and ARCH_CAPS bits count. */
    sample_policy(&host);
    guest = host;
    guest.leaves[3].a |= 1u << 9;
    guest.msrs[0].val |= 1u << 1;
    ck_assert_uint_eq(cpu_policy_missing(&guest, &host, msg, sizeof(msg)), 2);
    ck_assert_ptr_nonnull(strstr(msg, "XSAVE component 9"));
    ck_assert_ptr_nonnull(strstr(msg, "MSR 0x10a bit 1 (eibrs)"));
    /* A feature MSR the host does not have at all. */
    host.nr_msrs = 0;
    ck_assert_uint_eq(cpu_policy_missing(&guest, &host, msg, sizeof(msg)), 2);
    ck_assert_ptr_nonnull(strstr(msg, "not on this host"));
    /* Setting a bit in a leaf the policy lacks adds the leaf; clearing
     * one does not. */
    struct cpu_overrides o = { 0 };
    ck_assert_int_eq(cpu_overrides_parse_xend("0x80000008:ebx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1", &o, err,
                                              sizeof(err)), 0);
    ck_assert_int_eq(cpu_overrides_parse_xend("0x80000007:edx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0", &o, err,
                                              sizeof(err)), 0);
    unsigned before = guest.nr_leaves;
    ck_assert_int_eq(cpu_policy_apply(&guest, &o), 0);
    ck_assert_uint_eq(guest.nr_leaves, before + 1);
    ck_assert_uint_eq(cpu_policy_reg(&guest, 0x80000008, CPU_NO_SUBLEAF, CPU_EBX), 1);
}
END_TEST

START_TEST(levelling)
{
    struct cpu_policy a, b, l;
    sample_policy(&a);
    sample_policy(&b);
    b.leaves[2].b &= ~(1u << 16 | 1u << 5);   /* b lacks avx512f and avx2 */
    b.leaves[0].a = 0x7;                      /* and has fewer basic leaves */
    b.leaves[3].a &= ~0xe0u;                  /* and no AVX-512 state */
    b.msrs[0].val = 0x1;
    b.nr_leaves = 5;                          /* and no leaf 0x80000001 */
    struct cpu_policy in[2] = { a, b };
    ck_assert_int_eq(cpu_policy_level(in, 2, &l), 0);
    char msg[1024];
    ck_assert_uint_eq(cpu_policy_missing(&l, &a, msg, sizeof(msg)), 0);
    ck_assert_uint_eq(cpu_policy_missing(&l, &b, msg, sizeof(msg)), 0);
    ck_assert_uint_eq(cpu_policy_reg(&l, 0, CPU_NO_SUBLEAF, CPU_EAX), 0x7);
    ck_assert_uint_eq(cpu_policy_reg(&l, 0x80000001, CPU_NO_SUBLEAF, CPU_ECX), 0);
    ck_assert_uint_eq(l.msrs[0].val, 0x1);
    /* A guest on a's host given the levelled policy can move to b. */
    struct cpu_overrides o = { 0 };
    cpu_overrides_from_policy(&l, &o);
    struct cpu_policy guest = a;
    ck_assert_int_eq(cpu_policy_apply(&guest, &o), 0);
    ck_assert_uint_eq(cpu_policy_missing(&guest, &b, msg, sizeof(msg)), 0);
    ck_assert_uint_ne(cpu_policy_missing(&a, &b, msg, sizeof(msg)), 0);
    ck_assert_int_eq(cpu_policy_level(in, 0, &l), -EINVAL);
}
END_TEST

START_TEST(json_round_trip)
{
    struct cpu_policy p, back;
    sample_policy(&p);
    char *text = NULL, err[256];
    ck_assert_int_eq(cpu_policy_to_json(&p, "host", "hostA", &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "\"avx2\""));
    ck_assert_ptr_nonnull(strstr(text, "\"tandem-cpu-policy\""));
    ck_assert_int_eq(cpu_policy_from_json(text, strlen(text), &back, err, sizeof(err)), 0);
    ck_assert_uint_eq(back.nr_leaves, p.nr_leaves);
    ck_assert_uint_eq(back.nr_msrs, p.nr_msrs);
    ck_assert_mem_eq(back.leaves, p.leaves, p.nr_leaves * sizeof(p.leaves[0]));
    ck_assert_mem_eq(back.msrs, p.msrs, p.nr_msrs * sizeof(p.msrs[0]));
    free(text);
}
END_TEST

#define L1 "{\"leaf\":\"0x1\",\"eax\":\"0x0\",\"ebx\":\"0x0\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}"
#define HDR "{\"format\":\"tandem-cpu-policy\",\"version\":1,"
static const char *const bad_json[] = {
    "",
    "not json",
    "[]",
    "{}",
    "{\"format\":\"other\",\"version\":1,\"cpuid\":[" L1 "]}",
    "{\"format\":\"tandem-cpu-policy\",\"cpuid\":[" L1 "]}",
    "{\"format\":\"tandem-cpu-policy\",\"version\":2,\"cpuid\":[" L1 "]}",
    "{\"format\":\"tandem-cpu-policy\",\"version\":\"1\",\"cpuid\":[" L1 "]}",
    HDR "\"cpuid\":[]}",
    HDR "\"cpuid\":{}}",
    HDR "\"cpuid\":[1]}",
    HDR "\"cpuid\":[{\"leaf\":\"0x1\"}]}",
    HDR "\"cpuid\":[{\"leaf\":1,\"eax\":\"0x0\",\"ebx\":\"0x0\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}]}",
    HDR "\"cpuid\":[{\"leaf\":\"0x100000000\",\"eax\":\"0x0\",\"ebx\":\"0x0\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}]}",
    HDR "\"cpuid\":[{\"leaf\":\"0xg\",\"eax\":\"0x0\",\"ebx\":\"0x0\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}]}",
    HDR "\"cpuid\":[{\"leaf\":\"1\",\"eax\":\"0x0\",\"ebx\":\"0x0\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}]}",
    HDR "\"cpuid\":[" L1 "," L1 "]}",
    HDR "\"cpuid\":[" L1 "],\"msr\":{}}",
    HDR "\"cpuid\":[" L1 "],\"msr\":[{\"index\":\"0x10a\"}]}",
    HDR "\"cpuid\":[" L1 "],\"msr\":[{\"index\":\"0x10a\",\"value\":\"0x10000000000000000\"}]}",
    HDR "\"cpuid\":[" L1 "],\"msr\":[{\"index\":\"0x10a\",\"value\":\"0x1\"},{\"index\":\"0x10a\",\"value\":\"0x1\"}]}",
    HDR "\"cpuid\":[" L1 "]} trailing",
    HDR "\"cpuid\":[" L1 "]",
};

START_TEST(json_errors)
{
    struct cpu_policy p;
    char err[256] = "";
    ck_assert_int_ne(cpu_policy_from_json(bad_json[_i], strlen(bad_json[_i]), &p, err, sizeof(err)), 0);
    ck_assert_msg(err[0], "no message for '%s'", bad_json[_i]);
}
END_TEST

START_TEST(json_minimal)
{
    struct cpu_policy p;
    char err[256] = "";
    const char *ok = HDR "\"future_key\":[1,2],\"cpuid\":[" L1 "," "{\"leaf\":\"0x7\",\"subleaf\":\"0x0\",\"eax\":\"0x0\","
                     "\"ebx\":\"0x20\",\"ecx\":\"0x0\",\"edx\":\"0x0\"}]}";
    ck_assert_msg(cpu_policy_from_json(ok, strlen(ok), &p, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(p.nr_leaves, 2);
    ck_assert_uint_eq(p.leaves[0].subleaf, CPU_NO_SUBLEAF);
    ck_assert_uint_eq(cpu_policy_reg(&p, 7, 0, CPU_EBX), 0x20);
    char names[256];
    cpu_policy_feature_names(&p, names, sizeof(names));
    ck_assert_str_eq(names, "avx2");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("cpu_policy");
    TCase *t = tcase_create("cpu_policy");
    tcase_add_test(t, libxl_form);
    tcase_add_test(t, signature);
    tcase_add_loop_test(t, libxl_errors, 0, sizeof(bad_libxl) / sizeof(bad_libxl[0]));
    tcase_add_test(t, xend_form);
    tcase_add_loop_test(t, xend_errors, 0, sizeof(bad_xend) / sizeof(bad_xend[0]));
    tcase_add_test(t, too_many);
    tcase_add_test(t, host_mask);
    tcase_add_test(t, apply_and_missing);
    tcase_add_test(t, levelling);
    tcase_add_test(t, json_round_trip);
    tcase_add_loop_test(t, json_errors, 0, sizeof(bad_json) / sizeof(bad_json[0]));
    tcase_add_test(t, json_minimal);
    suite_add_tcase(s, t);
    return s;
}
