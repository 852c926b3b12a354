/* main() for Check unit-test programs: runs the program's unit_suite().
 * CK_FORK, CK_RUN_SUITE, CK_RUN_CASE and CK_VERBOSITY work as usual. */
#include "config.h"

#include <stdlib.h>

#include "check_main.h"

int main(void)
{
    SRunner *runner = srunner_create(unit_suite());
    int failed;

    srunner_run_all(runner, CK_ENV);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
