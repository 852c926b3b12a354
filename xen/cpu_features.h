/* Internal to xen/: the feature-word map and policy look-ups shared by
 * cpu_features.c (policies as data) and cpu_policy.c (policies in KVM). */
#ifndef TANDEM_CPU_FEATURES_H
#define TANDEM_CPU_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include "tandem/xen.h"

enum { CPU_EAX, CPU_EBX, CPU_ECX, CPU_EDX };
#define CPU_MSR_ARCH_CAPABILITIES 0x10a

/* A featureset word of cpufeatureset.h and the register it lives in. */
struct cpu_feature_word {
    unsigned word;
    uint32_t leaf, subleaf;           /* CPU_NO_SUBLEAF: none */
    unsigned reg;
};
extern const struct cpu_feature_word cpu_feature_words[];
extern const unsigned cpu_nr_feature_words;

/* Bits of a word KVM computes from the vCPU's own state (CR4.OSXSAVE,
 * CR4.PKE) or that Tandem always sets (the hypervisor bit): not features
 * a host can lack or a policy can take away. */
uint32_t cpu_dynamic_bits(unsigned word);
/* Xen's name of word*32+bit in lower case with '-', or NULL. */
const char *cpu_feature_name(unsigned word, unsigned bit, char *buf, size_t len);
/* A leaf by (leaf, subleaf); "no subleaf" and subleaf 0 stand in for
 * each other when the exact one is absent. */
struct domain_cpuid_leaf *cpu_policy_find(const struct cpu_policy *p, uint32_t leaf, uint32_t subleaf);
uint32_t *cpu_leaf_reg(struct domain_cpuid_leaf *l, unsigned reg);
uint32_t cpu_policy_reg(const struct cpu_policy *p, uint32_t leaf, uint32_t subleaf, unsigned reg);

#endif
