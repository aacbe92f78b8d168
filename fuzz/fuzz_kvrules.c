/*
 * fuzz_kvrules.c: Key Vault's rules (agent/kvrules.c) on hostile JSON,
 * as the API hands request members to them: tags objects, key_ops
 * arrays, names, versions, kty/crv/size shapes, rotation policies and
 * ISO 8601 durations.  An accepted tags object must print back to JSON
 * the rules accept again; an accepted rotation policy's canonical form
 * must be accepted again and be its own canonical form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvrules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Results go here (the functions are warn_unused_result). */
static volatile int sink;

/* Check a policy; if accepted, its canonical text is a fixed point. */
static void
policy_roundtrip(const cJSON *p)
{
	cJSON *c = NULL, *c2 = NULL, *back = NULL;
	char *t1 = NULL, *t2 = NULL;

	if (kv_rotation_policy_check(p, &c) != 0)
		return;
	if ((t1 = cJSON_PrintUnformatted(c)) == NULL)
		goto out;
	if (strlen(t1) > KV_POLICY_JSON_MAX)
		abort();
	if ((back = cJSON_Parse(t1)) == NULL)
		abort();
	if (kv_rotation_policy_check(back, &c2) != 0)
		abort();
	if ((t2 = cJSON_PrintUnformatted(c2)) != NULL && strcmp(t1, t2) != 0)
		abort();
 out:
	free(t1);
	free(t2);
	cJSON_Delete(c);
	cJSON_Delete(c2);
	cJSON_Delete(back);
}

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
	policy_roundtrip(j);
	cJSON_ArrayForEach(it, j) {
		int64_t secs;

		if (cJSON_IsObject(it))
			policy_roundtrip(it);
		if (cJSON_IsString(it) &&
		    kv_duration_parse(it->valuestring, &secs) == 0 && secs < 0)
			abort();
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
