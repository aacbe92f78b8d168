/*
 * test_docs.c: every error code is documented in docs/exit-codes.md, in
 * the row of the exit code it really maps to (curl's meta-tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_common.h"
#include "tap.h"

int
main(int argc, char **argv)
{
	char *doc = NULL, *line, *save = NULL, needle[64];
	size_t len;
	int code, row_exit, found;

	if (argc != 2 || kb_file_read(argv[1], 1 << 20, &doc, &len) != 0)
		return tap_skip_all("usage: test_docs docs/exit-codes.md");
	for (code = 0; code >= KB_ERR__MIN; code--) {
		char *copy = kb_strdup(doc);

		found = 0;
		snprintf(needle, sizeof(needle), "`%s`", kb_err_name(code));
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strstr(line, needle) == NULL ||
			    sscanf(line, "| %d |", &row_exit) != 1)
				continue;
			found = 1;
			tap_is_int(row_exit, kb_err_exit_code(code),
			    "%s documented under exit code %d", kb_err_name(code),
			    kb_err_exit_code(code));
		}
		if (!found)
			tap_ok(0, "%s is documented in a table row", kb_err_name(code));
		free(copy);
	}
	free(doc);
	return tap_done();
}
