/* What the Remus primary and secondary share. */
#ifndef TANDEM_REMUS_INTERNAL_H
#define TANDEM_REMUS_INTERNAL_H

#include <stdint.h>
#include "tandem/remus.h"

/* Median of n values (sorts v in place); 0 for none. */
uint64_t remus_median(uint64_t *v, size_t n);

#endif
