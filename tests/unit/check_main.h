/* The main() shared by Check unit-test programs: each program defines
 * unit_suite() and links check_main.c. */
#ifndef TANDEM_TESTS_CHECK_MAIN_H
#define TANDEM_TESTS_CHECK_MAIN_H

#include <check.h>

Suite *unit_suite(void);

#endif
