/*
 * fuzz_kvrules.c: Key Vault's rules (agent/kvrules.c) on hostile JSON,
 * as the API hands request members to them: tags objects, key_ops
 * arrays, names, versions, kty/crv/size shapes.  An accepted tags object
 * must print back to JSON the rules accept again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvrules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Results go here (the functions are warn_unused_result). */
static volatile int sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const cJSON *it;
	cJSON *j, *back;
	unsigned ops, bits = 0;
	char lc[KV_NAME_MAX + 1], *txt;
	int f;

	if ((j = cJSON_ParseWithLength((const char *)data, size)) == NULL)
		return 0;
	if (cJSON_IsObject(j) && kv_tags_check(j) == 0) {
		if ((txt = cJSON_PrintUnformatted(j)) != NULL) {
			if ((back = cJSON_Parse(txt)) == NULL || kv_tags_check(back) != 0)
				abort();
			cJSON_Delete(back);
			free(txt);
		}
	}
	if (cJSON_IsArray(j) && kv_key_ops_parse(j, &ops) == 0) {
		if (ops & ~KV_OP__ALL)
			abort();
		cJSON_Delete(kv_key_ops_json(ops));
	}
	cJSON_ArrayForEach(it, j) {
		if (cJSON_IsNumber(it) && it->valuedouble >= 0 &&
		    it->valuedouble < 100000)
			bits = (unsigned)it->valuedouble;
		if (!cJSON_IsString(it))
			continue;
		for (f = 0; f < KV_FIELD__COUNT; f++)
			sink += kv_check((enum kv_field)f, it->valuestring);
		sink += kv_lower(it->valuestring, lc, sizeof(lc));
		sink += (int)kv_utf8_chars(it->valuestring);
		sink += (int)kv_key_op_bit(it->valuestring);
		if (kv_kty_check(it->valuestring) == 0)
			sink += kv_key_shape_check(it->valuestring, bits, "P-256");
		sink += kv_crv_check(it->valuestring);
	}
	cJSON_Delete(j);
	return 0;
}
