/* fuzz_ini.c: the config reader over arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_ini *ini = NULL;
	size_t i, j;

	if (kb_ini_parse("fuzz.conf", (const char *)data, size, &ini) == 0) {
		/* Touch everything the parser produced. */
		for (i = 0; i < ini->n_sections; i++)
			for (j = 0; j < ini->sections[i].n_entries; j++)
				if (kb_ini_get(&ini->sections[i],
				    ini->sections[i].entries[j].key) == NULL)
					abort();
		kb_ini_free(ini);
	}
	return 0;
}
