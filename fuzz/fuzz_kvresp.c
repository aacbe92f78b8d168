/*
 * fuzz_kvresp.c: kv-client's decoders for Key Vault's response bodies.
 * The first byte picks the decoder, the rest is the body (JSON text, or
 * a key identifier for kb_kv_kid_parse).  Invariants: a decoded struct
 * keeps the caps, an RSA modulus never keeps a leading zero and n_bits
 * fits it, paging never goes on to an empty nextLink, a split kid
 * joins back to the identifier.  List pages are parsed as kb_kv_list
 * parses them, into a page arena (jarena.c), whose overflow to malloc
 * (a dense page) and failure half-way must leave nothing behind.
 * Bodies are read as kv-client reads them (kb_kv_json_parse, simdjson);
 * a body it takes must give cJSON_Parse's tree, and the same when read as
 * a secret answer (kb_kv_json_parse_secret).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "json.h"
#include "jsoneq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_kid(const struct kb_kv_kid *k)
{
	size_t vl, nl;

	if (k->id == NULL)
		return;
	if (k->vault_url == NULL || k->name == NULL || k->name[0] == '\0' ||
	    strchr(k->name, '/') != NULL ||
	    (k->version != NULL && (k->version[0] == '\0' || strchr(k->version, '/'))))
		abort();
	vl = strlen(k->vault_url);
	nl = strlen(k->name);
	if (strncmp(k->id, k->vault_url, vl) != 0 || strstr(k->id + vl, k->name) == NULL ||
	    strlen(k->id) < vl + nl)
		abort();
}

static void
check_attrs(const struct kb_kv_attributes *a)
{
	if (((a->present & KB_KV_HAS_EXP) && a->exp < 0) ||
	    ((a->present & KB_KV_HAS_NBF) && a->nbf < 0) ||
	    (!(a->present & KB_KV_HAS_EXP) && a->exp != 0))
		abort();
}

static void
check_tags(const struct kb_kv_tags *t)
{
	size_t i;

	if (t->n > KB_KV_MAX_TAGS)
		abort();
	for (i = 0; i < t->n; i++)
		if (t->v[i].name == NULL || t->v[i].value == NULL ||
		    strlen(t->v[i].value) > KB_KV_MAX_TAG_LEN)
			abort();
}

static void
bundle(const cJSON *j)
{
	struct kb_kv_key_bundle *kb = NULL;

	if (kb_kv_key_bundle_parse(j, &kb) != 0)
		return;
	if (kb->kid.id == NULL || kb->key.kty == NULL ||
	    kb->key.n_key_ops > KB_KV_MAX_KEY_OPS ||
	    (kb->key.n.len > 1 && kb->key.n.data[0] == 0) ||
	    kb->key.n_bits > kb->key.n.len * 8 ||
	    (kb->key.n.len > 0 && kb->key.n_bits + 8 <= kb->key.n.len * 8 &&
	    kb->key.n.data[0] != 0))
		abort();
	check_kid(&kb->kid);
	check_attrs(&kb->attributes);
	check_tags(&kb->tags);
	kb_kv_key_bundle_free(kb);
}

static void
list(const cJSON *j)
{
	struct kb_kv_key_list *l = NULL;
	size_t i;

	if (kb_kv_key_list_parse(j, &l) != 0)
		return;
	if (l->n_items > KB_KV_MAX_PAGE_ITEMS ||
	    (l->next_link != NULL && l->next_link[0] == '\0'))
		abort();
	for (i = 0; i < l->n_items; i++) {
		if (l->items[i].kid.id == NULL)
			abort();
		check_kid(&l->items[i].kid);
		check_attrs(&l->items[i].attributes);
		check_tags(&l->items[i].tags);
	}
	kb_kv_key_list_free(l);
}

static void
others(unsigned which, const cJSON *j)
{
	struct kb_kv_key_op_result *op = NULL;
	struct kb_kv_rotation_policy *p = NULL;
	struct kb_kv_error *e = NULL;
	struct kb_secret *s = NULL;
	struct kb_kv_bytes b = { NULL, 0 };
	char *rel = NULL;
	bool v;
	size_t i;

	switch (which) {
	case 2:
		if (kb_kv_key_op_result_parse(j, &op) == 0) {
			if (op->value == NULL)
				abort();
			check_kid(&op->kid);
			kb_kv_key_op_result_free(op);
		}
		break;
	case 3:
		if (kb_kv_verify_result_parse(j, &v) == 0 &&
		    (bool)cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "value")) != v)
			abort();
		break;
	case 4:
		if (kb_kv_random_bytes_parse(j, &s) == 0 && s == NULL)
			abort();
		kb_secret_free(&s);
		break;
	case 5:
		if (kb_kv_backup_result_parse(j, &b) == 0 && b.data == NULL)
			abort();
		kb_kv_bytes_clear(&b);
		break;
	case 6:
		if (kb_kv_release_result_parse(j, &rel) == 0 && rel == NULL)
			abort();
		free(rel);
		break;
	case 7:
		if (kb_kv_rotation_policy_parse(j, &p) == 0) {
			if (p->n_actions > KB_KV_MAX_LIFETIME_ACTIONS)
				abort();
			for (i = 0; i < p->n_actions; i++)
				if (p->actions[i].type == NULL)
					abort();
			kb_kv_rotation_policy_free(p);
		}
		break;
	default:
		if (kb_kv_error_parse(j, &e) == 0) {
			if (e->n_inner > KB_KV_MAX_INNER_ERRORS)
				abort();
			for (i = 0; i < e->n_inner; i++)
				if (e->inner[i] == NULL)
					abort();
			kb_kv_error_free(e);
		}
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_kv_kid k;
	const char *why = NULL;
	size_t bom;
	unsigned which;
	cJSON *j, *ref;
	char *text;

	if (size < 1 || size > (1u << 20))
		return 0;
	which = data[0] % 10;
	if (which == 9) {
		/* A key identifier as text. */
		if ((text = malloc(size)) == NULL)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		memset(&k, 0, sizeof(k));
		if (kb_kv_kid_parse(text, &k) == 0) {
			if (strcmp(k.id, text) != 0)
				abort();
			check_kid(&k);
			kb_kv_kid_clear(&k);
		}
		free(text);
		return 0;
	}
	if (which == 1) {
		struct kb_jarena a;

		if ((j = kb_jarena_parse(&a, (const char *)data + 1, size - 1,
		    &why)) == NULL) {
			if (why == NULL)
				abort();
			return 0;
		}
		list(j);
		kb_jarena_discard(&a, j);
		return 0;
	}
	if ((j = kb_kv_json_parse((const char *)data + 1, size - 1, &why)) == NULL) {
		if (why == NULL)
			abort();
		return 0;
	}
	/*
	 * json.cc against cJSON's own parser: what simdjson takes, cJSON
	 * takes too (it is the laxer), and the trees are the same.
	 */
	/* (cJSON skips a byte order mark only when 2 bytes or more follow it) */
	bom = size - 1 >= 3 && memcmp(data + 1, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	ref = cJSON_ParseWithLength((const char *)data + 1 + bom, size - 1 - bom);
	if (ref == NULL || !jsoneq(j, ref))
		abort();
	cJSON_Delete(ref);
	/* A secret answer's reading (its parser's strings zeroed after) gives
	 * the same tree, and the next reading is not disturbed by it. */
	if ((ref = kb_kv_json_parse_secret((const char *)data + 1, size - 1,
	    &why)) == NULL || !jsoneq(j, ref))
		abort();
	kb_kv_json_wipe(ref);
	cJSON_Delete(ref);
	if (which == 0)
		bundle(j);
	else
		others(which, j);
	cJSON_Delete(j);
	return 0;
}
