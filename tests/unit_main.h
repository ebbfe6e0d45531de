/*
 * unit_main.h: the main() every Check program of the relay shares: make a private
 * temporary directory if the tests want one, run one suite (TAP goes where
 * CK_TAP_LOG_FILE_NAME says), remove the directory, exit 0 only if every test passed.
 */
#ifndef TESTS_UNIT_MAIN_H
#define TESTS_UNIT_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/*
 * Run s. With dir, first make $TMPDIR/name.XXXXXX into dir (len bytes) and remove it
 * afterwards (a failing test ends its forked child before any teardown could).
 */
static inline int
check_main(Suite *s, const char *name, char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	char *cmd;
	int failed;

	if (dir != NULL) {
		snprintf(dir, len, "%s/%s.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp", name);
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			return 99;
		}
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (dir != NULL) {
		cmd = xasprintf("rm -rf '%s'", dir);
		(void)!system(cmd);
		free(cmd);
	}
	return failed == 0 ? 0 : 1;
}

#endif
