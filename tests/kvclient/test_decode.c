/*
 * test_decode.c: kv-client's response decoders against every response
 * Key Vault documents (../shared/keyvault/spec/2026-04-01/examples, all
 * 27 operations) and every response recorded from real vaults and
 * Managed HSMs (../shared/keyvault/recordings), each decoded with its
 * operation's decoder and compared field by field with the JSON
 * (kvcheck.h); then the edge cases: a modulus with a leading zero, both
 * base64 alphabets with and without padding, the three ends of paging,
 * times past 2038, wrong types named in the sentence, caps, identifiers
 * and error bodies.
 *
 * Usage: test_kvc_decode SHARED_KEYVAULT_DIR (meson passes
 * ../shared/keyvault beside the source tree; missing: those parts skip).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kb_kvclient.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop
#include "kvcheck.h"
#include "json.h"   /* kv-client's reader, internal */
#include "jsoneq.h"

static cJSON *
load_json(const char *path)
{
	char *text = NULL;
	size_t len;
	cJSON *j;

	if (kb_file_read(path, 16 << 20, &text, &len) != 0)
		return NULL;
	/* As kv-client reads an answer: every file must pass the strict reader. */
	j = kb_kv_json_parse(text, len, NULL);
	free(text);
	return j;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .json files of dir, sorted; *n of them. */
static char **
json_files(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL, **nv;
	size_t len;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if ((nv = realloc(v, (*n + 1) * sizeof(*v))) == NULL)
			break;
		v = nv;
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (v != NULL)
		qsort(v, *n, sizeof(*v), cmp_names);
	return v;
}

static void
free_names(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/* ------------------------------------------------------------- examples */

/*
 * Every example: its operationId picks the decoder; the 200/201 body is
 * compared with the JSON, and with the key name and version the
 * example's parameters name; non-2xx bodies go to the error decoder.
 */
static void
examples(const char *kv)
{
	char dir[1024], path[1400], label[300];
	char **files;
	size_t n, i;
	int count = 0, ops = 0;

	snprintf(dir, sizeof(dir), "%s/spec/2026-04-01/examples", kv);
	files = json_files(dir, &n);
	if (n == 0) {
		tap_ok(1, "# SKIP no examples at %s", dir);
		return;
	}
	for (i = 0; i < n; i++) {
		cJSON *ex, *resp;
		const cJSON *params;
		const char *op;
		struct kvc_req rq;
		enum kvc_kind kind;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if ((ex = load_json(path)) == NULL) {
			tap_ok(0, "%s is JSON", files[i]);
			continue;
		}
		op = kvc_jstr(ex, "operationId");
		params = cJSON_GetObjectItemCaseSensitive(ex, "parameters");
		kind = op ? kvc_kind_of_operation(op) : (enum kvc_kind)-1;
		if ((int)kind < 0) {
			tap_ok(0, "%s: operation %s has a decoder", files[i], op ? op : "?");
			cJSON_Delete(ex);
			continue;
		}
		ops++;
		memset(&rq, 0, sizeof(rq));
		snprintf(rq.name, sizeof(rq.name), "%s",
		    kvc_jstr(params, "key-name") ? kvc_jstr(params, "key-name") : "");
		/* The spec's RotateKey example answers with CreateKey's body
		 * (kid .../CreateSoftKeyTest/...) for key-name Key01. */
		if (strcmp(op, "RotateKey") == 0 && strcmp(rq.name, "Key01") == 0) {
			tap_diag("RotateKey-example: its body is CreateKey's; the key "
			    "name is not compared");
			rq.name[0] = '\0';
		}
		snprintf(rq.version, sizeof(rq.version), "%s",
		    kvc_jstr(params, "key-version") ? kvc_jstr(params, "key-version") : "");
		cJSON_ArrayForEach(resp, cJSON_GetObjectItemCaseSensitive(ex, "responses")) {
			long status = strtol(resp->string, NULL, 10);
			const cJSON *body = cJSON_GetObjectItemCaseSensitive(resp, "body");

			snprintf(label, sizeof(label), "example %s %ld", op, status);
			kvc_check(label, status >= 200 && status < 300 ? kind : KVC_ERROR,
			    body, &rq);
			count++;
		}
		cJSON_Delete(ex);
	}
	tap_ok(ops == 27 && (size_t)ops == n, "all 27 operations of the spec's "
	    "examples have a decoder (%d of %zu files, %d responses)", ops, n, count);
	free_names(files, n);
}

/* ----------------------------------------------------------- recordings */

/* The path of a recorded RequestUri: "https://host/keys/x/?api..." -> "/keys/x/?api...". */
static const char *
uri_path(const char *uri)
{
	const char *p = uri ? strstr(uri, "://") : NULL;

	return p ? (strchr(p + 3, '/') ? strchr(p + 3, '/') : "/") : "/";
}

/*
 * Every response of every recording (the Azure SDKs' test proxy
 * format: Entries[] of RequestUri, RequestMethod, RequestBody,
 * StatusCode, ResponseHeaders, ResponseBody): 2xx with the decoder of
 * the request's operation, everything else with the error decoder.
 */
static void
recordings(const char *kv)
{
	char dir[1024], path[1400], label[400];
	char **files;
	size_t n, i;
	int count = 0;

	snprintf(dir, sizeof(dir), "%s/recordings", kv);
	files = json_files(dir, &n);
	if (n == 0) {
		tap_ok(1, "# SKIP no recordings at %s", dir);
		return;
	}
	for (i = 0; i < n; i++) {
		cJSON *rec, *e;
		int k = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if ((rec = load_json(path)) == NULL) {
			tap_ok(0, "%s is JSON", files[i]);
			continue;
		}
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rec, "Entries")) {
			const char *method = kvc_jstr(e, "RequestMethod");
			const char *p = uri_path(kvc_jstr(e, "RequestUri"));
			long status = (long)cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(e, "StatusCode"));
			const cJSON *body = cJSON_GetObjectItemCaseSensitive(e, "ResponseBody");
			struct kvc_req rq;
			enum kvc_kind kind = kvc_kind_of_request(method ? method : "", p, &rq);

			if (cJSON_IsNull(body))
				body = NULL;
			snprintf(label, sizeof(label), "%s #%d: %s %.*s -> %ld", files[i], k++,
			    method, (int)strcspn(p, "?"), p, status);
			kvc_check(label, status >= 200 && status < 300 ? kind : KVC_ERROR,
			    body, &rq);
			count++;
		}
		cJSON_Delete(rec);
	}
	tap_ok(count >= 30, "%d recorded responses in %zu recordings", count, n);
	free_names(files, n);
}

/*
 * Real data for two rules: the python recordings import an RSA key whose
 * n has a leading 0x00 (257 bytes); the service answers with the same
 * modulus in 256 bytes.  And the decrypt answer is the plaintext the
 * encrypt request sent.
 */
static void
recorded_roundtrips(const char *kv)
{
	char path[1200];
	cJSON *rec, *e, *req_key, *fake = NULL;
	struct kb_kv_key_bundle *sent = NULL, *got = NULL;
	struct kb_kv_key_op_result *dec = NULL, *plain = NULL;
	const char *kid = NULL;
	int r1 = -1, r2 = -1;

	snprintf(path, sizeof(path), "%s/recordings/python_test_crypto_encrypt_and_decrypt_7.6_vault.json", kv);
	if ((rec = load_json(path)) == NULL) {
		tap_ok(1, "# SKIP no crypto recording");
		return;
	}
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "Entries"), 1);
	req_key = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "RequestBody"), "key");
	kid = kvc_jstr(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "ResponseBody"), "key"), "kid");
	/* The request's key as if a vault had answered with it. */
	if (req_key != NULL && kid != NULL) {
		fake = cJSON_CreateObject();
		cJSON_AddItemToObject(fake, "key", cJSON_Duplicate(req_key, 1));
		cJSON_AddStringToObject(cJSON_GetObjectItem(fake, "key"), "kid", kid);
		r1 = kb_kv_key_bundle_parse(fake, &sent);
		r2 = kb_kv_key_bundle_parse(cJSON_GetObjectItem(e, "ResponseBody"), &got);
	}
	tap_ok(r1 == 0 && kvc_b64_len(kvc_jstr(req_key, "n")) == 257 &&
	    sent->key.n.len == 256 && sent->key.n_bits == 2048,
	    "the recorded import's n: 257 bytes with a leading zero, decoded to "
	    "256 bytes, 2048 bits");
	tap_ok(r1 == 0 && r2 == 0 && got->key.n.len == 256 &&
	    memcmp(sent->key.n.data, got->key.n.data, 256) == 0,
	    "the same modulus as the one the service answered with");
	kb_kv_key_bundle_free(sent);
	kb_kv_key_bundle_free(got);
	cJSON_Delete(fake);

	/* Entries 2 (encrypt) and 3 (decrypt). */
	{
		cJSON *enc = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "Entries"), 2);
		cJSON *de = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "Entries"), 3);

		r1 = kb_kv_key_op_result_parse(cJSON_GetObjectItem(de, "ResponseBody"), &dec);
		/* The request body is {alg, value}: the same shape minus kid. */
		r2 = kb_kv_key_op_result_parse(cJSON_GetObjectItem(enc, "RequestBody"), &plain);
		tap_ok(r1 == 0 && r2 == 0 && dec->value->len == plain->value->len &&
		    dec->value->len > 0 &&
		    memcmp(dec->value->data, plain->value->data, dec->value->len) == 0,
		    "decrypt's recorded answer is the plaintext encrypt sent (%zu bytes)",
		    r1 == 0 ? dec->value->len : 0);
	}
	kb_kv_key_op_result_free(dec);
	kb_kv_key_op_result_free(plain);
	cJSON_Delete(rec);
}

/* ----------------------------------------------------------- edge cases */

static struct kb_kv_key_bundle *
bundle(const char *json, int *rc)
{
	struct kb_kv_key_bundle *kb = NULL;
	cJSON *j = cJSON_Parse(json);

	*rc = j ? kb_kv_key_bundle_parse(j, &kb) : -99;
	cJSON_Delete(j);
	return kb;
}

#define KID "\"kid\":\"https://v.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef\""

static void
t_modulus(void)
{
	struct kb_kv_key_bundle *kb;
	int r;

	/* 00 00 01 02: two leading zeros, 9 bits. */
	kb = bundle("{\"key\":{" KID ",\"kty\":\"RSA\",\"n\":\"AAABAg\",\"e\":\"AQAB\"}}", &r);
	tap_ok(r == 0 && kb->key.n.len == 2 && kb->key.n.data[0] == 1 &&
	    kb->key.n.data[1] == 2 && kb->key.n_bits == 9,
	    "leading zero bytes of n are stripped; n_bits counts the rest");
	kb_kv_key_bundle_free(kb);
	/* 0x00 0x80 ...: a DER-style sign byte before a full top byte. */
	kb = bundle("{\"key\":{" KID ",\"kty\":\"RSA\",\"n\":\"AIAAAQ\"}}", &r);
	tap_ok(r == 0 && kb->key.n.len == 3 && kb->key.n_bits == 24,
	    "00 80 00 01: 3 bytes, 24 bits");
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAE\",\"y\":\"AAI\"}}", &r);
	tap_ok(r == 0 && kb->key.x.len == 2 && kb->key.x.data[0] == 0 &&
	    kb->key.n_bits == 0, "EC coordinates keep their leading zeros");
	kb_kv_key_bundle_free(kb);
}

static void
t_b64(void)
{
	static const struct { const char *text; size_t len; unsigned char b0, b1; } ok[] = {
		{ "-_8", 2, 0xfb, 0xff },      /* base64url, no padding */
		{ "+/8", 2, 0xfb, 0xff },      /* base64, no padding */
		{ "+/8=", 2, 0xfb, 0xff },     /* base64, padded */
		{ "-_8=", 2, 0xfb, 0xff },     /* base64url, padded */
		{ "Zg", 1, 'f', 0 },
		{ "Zg==", 1, 'f', 0 },
		{ "Zm8", 2, 'f', 'o' },
		{ "Zm8=", 2, 'f', 'o' },
		{ "", 0, 0, 0 },
	};
	static const char *bad[] = { "Zg=", "Z", "Zm9v!", "Zm 9v", "Zg===" };
	char json[256];
	struct kb_kv_bytes b;
	cJSON *j;
	size_t i;
	int r;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&b, 0, sizeof(b));
		snprintf(json, sizeof(json), "{\"value\":\"%s\"}", ok[i].text);
		j = cJSON_Parse(json);
		r = kb_kv_backup_result_parse(j, &b);
		tap_ok(r == 0 && b.len == ok[i].len && (b.len < 1 || b.data[0] == ok[i].b0) &&
		    (b.len < 2 || b.data[1] == ok[i].b1), "base64 \"%s\" decodes to %zu bytes",
		    ok[i].text, ok[i].len);
		kb_kv_bytes_clear(&b);
		cJSON_Delete(j);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), "{\"key\":{" KID ",\"kty\":\"RSA\",\"n\":\"%s\"}}",
		    bad[i]);
		{
			struct kb_kv_key_bundle *kb = bundle(json, &r);

			tap_ok(r == KB_ERR_PROTOCOL && kb == NULL &&
			    strstr(kb_error_detail(r), "key.n") != NULL,
			    "\"%s\" is refused, naming key.n: %s", bad[i], kb_error_detail(r));
			kb_kv_key_bundle_free(kb);
		}
	}
	/* The same secret bytes from both alphabets (RandomBytes). */
	{
		struct kb_secret *s1 = NULL, *s2 = NULL;
		cJSON *a = cJSON_Parse("{\"value\":\"oW1QMtvH9T6b-_8\"}");
		cJSON *c = cJSON_Parse("{\"value\":\"oW1QMtvH9T6b+/8=\"}");

		r = kb_kv_random_bytes_parse(a, &s1);
		r = r ? r : kb_kv_random_bytes_parse(c, &s2);
		tap_ok(r == 0 && s1->len == 11 && s2->len == 11 &&
		    memcmp(s1->data, s2->data, 11) == 0,
		    "random bytes: both alphabets give the same 11 bytes");
		kb_secret_free(&s1);
		kb_secret_free(&s2);
		cJSON_Delete(a);
		cJSON_Delete(c);
	}
}

static struct kb_kv_key_list *
list(const char *json, int *rc)
{
	struct kb_kv_key_list *l = NULL;
	cJSON *j = cJSON_Parse(json);

	*rc = j ? kb_kv_key_list_parse(j, &l) : -99;
	cJSON_Delete(j);
	return l;
}

static void
t_paging(void)
{
	static const char *ends[] = {
		"{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/a\"}],\"nextLink\":null}",
		"{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/a\"}]}",
		"{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/a\"}],\"nextLink\":\"\"}",
	};
	static const char *names[] = { "null", "absent", "empty" };
	struct kb_kv_key_list *l;
	size_t i;
	int r;

	for (i = 0; i < 3; i++) {
		l = list(ends[i], &r);
		tap_ok(r == 0 && l->n_items == 1 && l->next_link == NULL &&
		    strcmp(l->items[0].kid.name, "a") == 0 && l->items[0].kid.version == NULL,
		    "a %s nextLink ends paging", names[i]);
		kb_kv_key_list_free(l);
	}
	l = list("{\"value\":[],\"nextLink\":\"https://v.vault.azure.net/keys?$skiptoken=x\"}", &r);
	tap_ok(r == 0 && l->n_items == 0 && l->next_link &&
	    strcmp(l->next_link, "https://v.vault.azure.net/keys?$skiptoken=x") == 0,
	    "an empty page with a nextLink goes on");
	kb_kv_key_list_free(l);
	l = list("{\"value\":[],\"nextLink\":7}", &r);
	tap_ok(r == KB_ERR_PROTOCOL && strstr(kb_error_detail(r), "nextLink is a number") != NULL,
	    "a number as nextLink: %s", kb_error_detail(r));
	kb_kv_key_list_free(l);
	l = list("{\"nextLink\":null}", &r);
	tap_ok(r == KB_ERR_PROTOCOL && strstr(kb_error_detail(r), "value") != NULL,
	    "a page without value: %s", kb_error_detail(r));
	kb_kv_key_list_free(l);
	l = list("{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/a\"},\"x\"]}", &r);
	tap_ok(r == KB_ERR_PROTOCOL && strstr(kb_error_detail(r), "value[1]") != NULL,
	    "an item that is not an object: %s", kb_error_detail(r));
	kb_kv_key_list_free(l);
	l = list("{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/a\"},"
	    "{\"attributes\":{\"exp\":\"soon\"},\"kid\":\"https://v.vault.azure.net/keys/b\"}]}", &r);
	tap_ok(r == KB_ERR_PROTOCOL &&
	    strstr(kb_error_detail(r), "value[1].attributes.exp is a string") != NULL,
	    "the item's field is named: %s", kb_error_detail(r));
	kb_kv_key_list_free(l);
	{
		struct kb_buf b;

		kb_buf_init(&b, 1 << 20);
		if (kb_buf_appendf(&b, "{\"value\":[") == 0) {
			for (i = 0; i <= KB_KV_MAX_PAGE_ITEMS; i++)
				if (kb_buf_appendf(&b, "%s{\"kid\":\"https://v/keys/k%zu\"}",
				    i ? "," : "", i) != 0)
					break;
			if (kb_buf_appendf(&b, "]}") == 0) {
				l = list((const char *)b.data, &r);
				tap_ok(r == KB_ERR_PROTOCOL, "a page of %d items is refused: %s",
				    KB_KV_MAX_PAGE_ITEMS + 1, kb_error_detail(r));
				kb_kv_key_list_free(l);
			}
		}
		kb_buf_free(&b);
	}
}

static void
t_times(void)
{
	struct kb_kv_key_bundle *kb;
	int r;

	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"enabled\":true,"
	    "\"exp\":4102444800,\"nbf\":2524723200,\"created\":9007199254740992}}", &r);
	tap_ok(r == 0 && kb->attributes.exp == 4102444800LL &&
	    kb->attributes.nbf == 2524723200LL &&
	    kb->attributes.created == 9007199254740992LL &&
	    (kb->attributes.present & (KB_KV_HAS_EXP | KB_KV_HAS_NBF | KB_KV_HAS_CREATED |
	    KB_KV_HAS_ENABLED)) == (KB_KV_HAS_EXP | KB_KV_HAS_NBF | KB_KV_HAS_CREATED |
	    KB_KV_HAS_ENABLED) && !(kb->attributes.present & KB_KV_HAS_UPDATED),
	    "exp 4102444800 (2100), nbf in 2050, 2^53: exact; updated absent");
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"exp\":1.5}}", &r);
	tap_ok(r == KB_ERR_PROTOCOL && strstr(kb_error_detail(r), "attributes.exp") != NULL,
	    "a fraction of a second: %s", kb_error_detail(r));
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"exp\":-1}}", &r);
	tap_is_int(r, KB_ERR_PROTOCOL, "a time before 1970");
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"exp\":1e300}}", &r);
	tap_is_int(r, KB_ERR_PROTOCOL, "1e300 seconds");
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"exp\":null,"
	    "\"nbf\":null}}", &r);
	tap_ok(r == 0 && kb->attributes.present == 0, "null times are absent");
	kb_kv_key_bundle_free(kb);
	{
		struct kb_kv_rotation_policy *p = NULL;
		cJSON *j = cJSON_Parse("{\"lifetimeActions\":[],\"attributes\":{"
		    "\"created\":4102444800,\"updated\":4102444801}}");

		r = kb_kv_rotation_policy_parse(j, &p);
		tap_ok(r == 0 && p->n_actions == 0 && p->created == 4102444800LL &&
		    p->updated == 4102444801LL && p->expiry_time == NULL,
		    "the removal policy, with times in 2100");
		kb_kv_rotation_policy_free(p);
		cJSON_Delete(j);
	}
}

/* body must fail with KB_ERR_PROTOCOL and a sentence naming field. */
static void
wrong(const char *what, const char *json, const char *field)
{
	struct kb_kv_key_bundle *kb = NULL;
	struct kb_kv_key_op_result *op = NULL;
	struct kb_kv_rotation_policy *p = NULL;
	struct kb_kv_error *e = NULL;
	struct kb_secret *s = NULL;
	struct kb_kv_bytes b = { NULL, 0 };
	cJSON *j = cJSON_Parse(json);
	char *rel = NULL;
	bool v;
	int r;

	if (strcmp(what, "bundle") == 0)
		r = kb_kv_key_bundle_parse(j, &kb);
	else if (strcmp(what, "op") == 0)
		r = kb_kv_key_op_result_parse(j, &op);
	else if (strcmp(what, "policy") == 0)
		r = kb_kv_rotation_policy_parse(j, &p);
	else if (strcmp(what, "error") == 0)
		r = kb_kv_error_parse(j, &e);
	else if (strcmp(what, "verify") == 0)
		r = kb_kv_verify_result_parse(j, &v);
	else if (strcmp(what, "random") == 0)
		r = kb_kv_random_bytes_parse(j, &s);
	else if (strcmp(what, "backup") == 0)
		r = kb_kv_backup_result_parse(j, &b);
	else
		r = kb_kv_release_result_parse(j, &rel);
	tap_ok(r == KB_ERR_PROTOCOL && strstr(kb_error_detail(r), field) != NULL &&
	    kb == NULL && op == NULL && p == NULL && e == NULL && s == NULL &&
	    b.data == NULL && rel == NULL,
	    "%s %s: refused naming %s: %s", what, json, field, kb_error_detail(r));
	cJSON_Delete(j);
}

static void
t_types(void)
{
	wrong("bundle", "[]", "not a JSON object");
	wrong("bundle", "{}", "no key");
	wrong("bundle", "{\"key\":\"x\"}", "key is a string");
	wrong("bundle", "{\"key\":{\"kty\":\"RSA\"}}", "no key.kid");
	wrong("bundle", "{\"key\":{\"kid\":7,\"kty\":\"RSA\"}}", "key.kid is a number");
	wrong("bundle", "{\"key\":{" KID "}}", "no key.kty");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":[\"RSA\"]}}", "key.kty is an array");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"RSA\",\"key_ops\":\"sign\"}}",
	    "key.key_ops is a string");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"RSA\",\"key_ops\":[\"sign\",1]}}",
	    "key.key_ops[1] is a number");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"RSA\",\"n\":true}}", "key.n is a boolean");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"RSA\",\"e\":{}}}", "key.e is an object");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\",\"crv\":256}}", "key.crv");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":[]}",
	    "attributes is an array");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"enabled\":\"true\"}}",
	    "attributes.enabled is a string");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"exp\":\"4102444800\"}}",
	    "attributes.exp is a string");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"recoverableDays\":\"7\"}}",
	    "attributes.recoverableDays");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"attributes\":{\"recoveryLevel\":1}}",
	    "attributes.recoveryLevel");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":[\"a\"]}", "tags is an array");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":{\"a\":1}}", "tag a is a number");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"managed\":1}", "managed is a number");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"deletedDate\":\"x\"}", "deletedDate");
	wrong("bundle", "{\"key\":{" KID ",\"kty\":\"EC\"},\"recoveryId\":{}}", "recoveryId");
	wrong("bundle", "{\"key\":{\"kid\":\"https://v.vault.azure.net/secrets/s/1\",\"kty\":\"EC\"}}",
	    "key.kid");
	wrong("op", "{\"kid\":\"https://v/keys/k/1\"}", "no value");
	wrong("op", "{\"value\":[1]}", "value is an array");
	wrong("op", "{\"value\":\"AA\",\"iv\":5}", "iv is a number");
	wrong("op", "{\"value\":\"AA\",\"kid\":\"not a url\"}", "kid");
	wrong("verify", "{\"value\":\"true\"}", "value is a string");
	wrong("verify", "{}", "no value");
	wrong("random", "{\"value\":1234}", "value is a number");
	wrong("backup", "{\"value\":null}", "no value");
	wrong("release", "{\"value\":{}}", "value is an object");
	wrong("policy", "{\"lifetimeActions\":{}}", "lifetimeActions is an object");
	wrong("policy", "{\"lifetimeActions\":[7]}", "lifetimeActions[0] is a number");
	wrong("policy", "{\"lifetimeActions\":[{\"trigger\":{\"timeAfterCreate\":30},"
	    "\"action\":{\"type\":\"Rotate\"}}]}", "lifetimeActions[0].trigger.timeAfterCreate");
	wrong("policy", "{\"lifetimeActions\":[{\"trigger\":{}}]}", "lifetimeActions[0].action");
	wrong("policy", "{\"attributes\":{\"expiryTime\":90}}", "attributes.expiryTime");
	wrong("policy", "{\"id\":false}", "id is a boolean");
	wrong("error", "{\"error\":\"invalid_client\"}", "error is a string");
	wrong("error", "{\"error\":{\"code\":1}}", "error.code is a number");
	wrong("error", "{\"error\":{\"code\":\"Conflict\",\"innererror\":\"x\"}}",
	    "error.innererror is a string");
}

static void
t_lenient(void)
{
	struct kb_kv_key_bundle *kb;
	struct kb_buf b;
	int r, i;

	/* Members nothing here knows, and ones that are deliberately skipped. */
	kb = bundle("{\"key\":{" KID ",\"kty\":\"RSA-HSM\",\"key_hsm\":\"AAAA\","
	    "\"d\":\"secret\",\"future\":{\"a\":[1,2]},\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	    "\"attributes\":{\"hsmPlatform\":\"2\",\"attestation\":{\"version\":\"1\"},"
	    "\"key_size\":2048,\"external_key\":{\"id\":\"x\"},\"exportable\":true},"
	    "\"release_policy\":{\"data\":\"e30\",\"immutable\":true},\"managed\":true,"
	    "\"newTopLevel\":42}", &r);
	tap_ok(r == 0 && strcmp(kb->key.kty, "RSA-HSM") == 0 && kb->managed &&
	    (kb->present & KB_KV_HAS_MANAGED) && kb->attributes.exportable &&
	    kb->key.n_bits == 17, "unknown and skipped members are ignored");
	kb_kv_key_bundle_free(kb);
	kb = bundle("{\"key\":{" KID ",\"kty\":\"AKP-HSM\",\"key_ops\":[\"secureWrapKey\"]}}", &r);
	tap_ok(r == 0 && strcmp(kb->key.kty, "AKP-HSM") == 0 &&
	    strcmp(kb->key.key_ops[0], "secureWrapKey") == 0,
	    "a key type and operation newer than this client are kept as sent");
	kb_kv_key_bundle_free(kb);
	/* 20 tags of 300 characters: above Key Vault's 15 and 256, accepted. */
	kb_buf_init(&b, 1 << 20);
	r = kb_buf_appendf(&b, "{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":{");
	for (i = 0; r == 0 && i < 20; i++)
		r = kb_buf_appendf(&b, "%s\"t%02d\":\"%0300d\"", i ? "," : "", i, i);
	r = r ? r : kb_buf_appendf(&b, "}}");
	kb = r == 0 ? bundle((const char *)b.data, &r) : NULL;
	tap_ok(r == 0 && kb->tags.n == 20 && strcmp(kb->tags.v[19].name, "t19") == 0 &&
	    strlen(kb->tags.v[19].value) == 300,
	    "20 tags of 300 characters (more than Key Vault allows) are accepted");
	kb_kv_key_bundle_free(kb);
	kb_buf_reset(&b);
	r = kb_buf_appendf(&b, "{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":{");
	for (i = 0; r == 0 && i <= KB_KV_MAX_TAGS; i++)
		r = kb_buf_appendf(&b, "%s\"t%d\":\"v\"", i ? "," : "", i);
	r = r ? r : kb_buf_appendf(&b, "}}");
	kb = r == 0 ? bundle((const char *)b.data, &r) : NULL;
	tap_ok(r == KB_ERR_PROTOCOL && kb == NULL, "%d tags are refused: %s",
	    KB_KV_MAX_TAGS + 1, kb_error_detail(r));
	kb_kv_key_bundle_free(kb);
	kb_buf_reset(&b);
	r = kb_buf_appendf(&b, "{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":{\"a\":\"%0*d\"}}",
	    KB_KV_MAX_TAG_LEN + 1, 0);
	kb = r == 0 ? bundle((const char *)b.data, &r) : NULL;
	tap_ok(r == KB_ERR_PROTOCOL && kb == NULL, "a tag value of %d bytes is refused",
	    KB_KV_MAX_TAG_LEN + 1);
	kb_kv_key_bundle_free(kb);
	kb_buf_free(&b);
	/* The example's tag name with a trailing space is kept as it is. */
	kb = bundle("{\"key\":{" KID ",\"kty\":\"EC\"},\"tags\":{\"test name \":\"x\"},"
	    "\"attributes\":null}", &r);
	tap_ok(r == 0 && kb->tags.n == 1 && strcmp(kb->tags.v[0].name, "test name ") == 0 &&
	    kb->attributes.present == 0, "tag names as sent; null attributes are absent");
	kb_kv_key_bundle_free(kb);
}

static void
kid(const char *id, int want, const char *vault, const char *name, const char *version)
{
	struct kb_kv_kid k;
	int r;

	memset(&k, 0, sizeof(k));
	r = kb_kv_kid_parse(id, &k);
	if (want != 0) {
		tap_ok(r == want && k.id == NULL, "kid %s refused: %s", id, kb_error_detail(r));
		return;
	}
	tap_ok(r == 0 && strcmp(k.vault_url, vault) == 0 && strcmp(k.name, name) == 0 &&
	    ((version == NULL && k.version == NULL) ||
	    (version && k.version && strcmp(k.version, version) == 0)),
	    "kid %s: %s | %s | %s", id, r ? "?" : k.vault_url, r ? "?" : k.name,
	    r || !k.version ? "-" : k.version);
	kb_kv_kid_clear(&k);
}

static void
t_kids(void)
{
	kid("https://myvault.vault.azure.net/keys/CreateSoftKeyTest/78deebed173b48e48f55abf87ed4cf71",
	    0, "https://myvault.vault.azure.net", "CreateSoftKeyTest",
	    "78deebed173b48e48f55abf87ed4cf71");
	kid("https://myvault.vault.azure.net:443/keys/sdktestkey", 0,
	    "https://myvault.vault.azure.net:443", "sdktestkey", NULL);
	kid("https://myvault.vault.azure.net/deletedkeys/k1", 0,
	    "https://myvault.vault.azure.net", "k1", NULL);
	kid("https://127.0.0.1:8443/prefix/keys/k/v1/", 0, "https://127.0.0.1:8443/prefix",
	    "k", "v1");
	kid("http://localhost/keys/k/v", 0, "http://localhost", "k", "v");
	kid("https://h/keys/keys/v", 0, "https://h", "keys", "v");
	kid("HTTPS://H.vault.azure.net/Keys/n", 0, "HTTPS://H.vault.azure.net", "n", NULL);
	kid("https://h/secrets/s/v", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h/keys//v", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h/keys", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https:///keys/k", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("ftp://h/keys/k", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h/keys/k?x=1", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h/keys/k v", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("", KB_ERR_PROTOCOL, NULL, NULL, NULL);
	kid("https://h/a/b/c/d", KB_ERR_PROTOCOL, NULL, NULL, NULL);
}

static void
t_errors(void)
{
	struct kb_kv_error *e = NULL;
	struct kb_buf b;
	cJSON *j;
	int r;

	j = cJSON_Parse("{\"error\":{\"code\":\"Conflict\",\"message\":\"Key is in a deleted "
	    "but recoverable state\",\"innererror\":{\"code\":\"ObjectIsDeletedButRecoverable\","
	    "\"innererror\":{\"code\":\"Deeper\",\"innererror\":null}}}}");
	r = kb_kv_error_parse(j, &e);
	tap_ok(r == 0 && strcmp(e->code, "Conflict") == 0 && e->n_inner == 2 &&
	    strcmp(e->inner[0], "ObjectIsDeletedButRecoverable") == 0 &&
	    strcmp(e->inner[1], "Deeper") == 0, "the innererror chain, outermost first");
	kb_kv_error_free(e);
	e = NULL;
	cJSON_Delete(j);
	r = kb_kv_error_parse(NULL, &e);
	tap_ok(r == 0 && e->code == NULL && e->message == NULL && e->n_inner == 0,
	    "an empty body (Managed HSM's 401): no code, no error");
	kb_kv_error_free(e);
	e = NULL;
	j = cJSON_Parse("{\"error\":null}");
	r = kb_kv_error_parse(j, &e);
	tap_ok(r == 0 && e->code == NULL, "\"error\": null (x-nullable)");
	kb_kv_error_free(e);
	e = NULL;
	cJSON_Delete(j);
	/* Ten levels: the first KB_KV_MAX_INNER_ERRORS kept. */
	kb_buf_init(&b, 1 << 16);
	r = kb_buf_appendf(&b, "{\"error\":{\"code\":\"A\"");
	for (int i = 0; r == 0 && i < 10; i++)
		r = kb_buf_appendf(&b, ",\"innererror\":{\"code\":\"I%d\"", i);
	for (int i = 0; r == 0 && i < 11; i++)
		r = kb_buf_appendf(&b, "}");
	r = r ? r : kb_buf_appendf(&b, "}");
	j = cJSON_Parse((const char *)b.data);
	r = kb_kv_error_parse(j, &e);
	tap_ok(r == 0 && e->n_inner == KB_KV_MAX_INNER_ERRORS &&
	    strcmp(e->inner[7], "I7") == 0, "a deep chain is cut at %d",
	    KB_KV_MAX_INNER_ERRORS);
	kb_kv_error_free(e);
	e = NULL;
	cJSON_Delete(j);
	/* A long message is cut, not refused. */
	kb_buf_reset(&b);
	r = kb_buf_appendf(&b, "{\"error\":{\"code\":\"X\",\"message\":\"%05000d\"}}", 1);
	j = cJSON_Parse((const char *)b.data);
	r = kb_kv_error_parse(j, &e);
	tap_ok(r == 0 && strlen(e->message) == 2048, "a 5000-byte message is cut to 2048");
	kb_kv_error_free(e);
	cJSON_Delete(j);
	kb_buf_free(&b);
}

static void
t_op_result(void)
{
	struct kb_kv_key_op_result *op = NULL;
	cJSON *j = cJSON_Parse("{\"kid\":\"https://h.managedhsm.azure.net/keys/aes/1\","
	    "\"value\":\"AAEC\",\"iv\":\"AAAAAAAAAAAAAAAA\",\"tag\":\"_-_-\",\"aad\":\"YWFk\"}");
	int r = kb_kv_key_op_result_parse(j, &op);

	tap_ok(r == 0 && op->value->len == 3 && op->value->data[2] == 2 &&
	    op->iv.len == 12 && op->tag.len == 3 && op->aad.len == 3 &&
	    memcmp(op->aad.data, "aad", 3) == 0 && strcmp(op->kid.name, "aes") == 0 &&
	    op->alg == NULL, "an AES-GCM result: value (a secret), iv, tag, aad");
	kb_kv_key_op_result_free(op);
	cJSON_Delete(j);
	kb_kv_key_bundle_free(NULL);
	kb_kv_key_list_free(NULL);
	kb_kv_key_op_result_free(NULL);
	kb_kv_rotation_policy_free(NULL);
	kb_kv_error_free(NULL);
	kb_kv_bytes_clear(NULL);
	kb_kv_kid_clear(NULL);
	tap_ok(1, "every _free and _clear accepts NULL");
}

/* kb_kv_json_parse: cJSON's tree for JSON, a reason for the rest. */
static void
t_json(void)
{
	static const struct { const char *text, *why; } bad[] = {
		{ "{} x", "not one JSON value" },
		{ "{\"a\":\"\xff\"}", "not valid UTF-8" },
		{ "[\"\\ud800\"]", "a malformed string" },
		{ "[01]", "a number JSON does not allow or that does not fit" },
		{ "[1.]", "a number JSON does not allow or that does not fit" },
		{ "[1e400]", "a number JSON does not allow or that does not fit" },
		{ "[18446744073709551616]",
		    "a number JSON does not allow or that does not fit" },
		{ "{\"a\":\"x\\u0000y\"}", "a string holds U+0000" },
		{ "{\"a\\u0000\":1}", "a member name holds U+0000" },
		{ "", "empty" },
		{ "[1,]", "not one JSON value" },
		{ "{\"a\":1", "not one JSON value" },
	};
	static const char *const good[] = {
		"{\"value\":[{\"kid\":\"https://v.vault.azure.net/keys/k\",\"attributes\":"
		    "{\"enabled\":true,\"created\":1493937656,\"exp\":4102444800,"
		    "\"recoveryLevel\":\"Recoverable+Purgeable\"},\"tags\":{\"a\":\"\xc3\xa9\\n\"}}],"
		    "\"nextLink\":null}",
		"[1,-2,3.5,-0.25e-3,18446744073709551615,-9223372036854775808,true,false,null,"
		    "\"\\ud83d\\ude00\",[],{},{\"d\":1,\"d\":2}]",
		" \t\r\n\"s\" ",
	};
	char deep[2 * KB_KV_JSON_DEPTH + 3], *big;
	const char *why;
	cJSON *a, *b;
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		a = kb_kv_json_parse(bad[i].text, strlen(bad[i].text), &why);
		tap_ok(a == NULL && why != NULL && strcmp(why, bad[i].why) == 0,
		    "json: %s refused: %s", bad[i].text, why ? why : "(taken)");
		cJSON_Delete(a);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		a = kb_kv_json_parse(good[i], strlen(good[i]), &why);
		b = cJSON_Parse(good[i]);
		tap_ok(a != NULL && b != NULL && jsoneq(a, b),
		    "json: good text %zu gives cJSON's tree", i);
		cJSON_Delete(a);
		cJSON_Delete(b);
	}
	a = kb_kv_json_parse("\xef\xbb\xbf{\"a\":1}", 10, &why);
	tap_ok(a != NULL && cJSON_GetObjectItem(a, "a") != NULL &&
	    cJSON_GetObjectItem(a, "a")->valuedouble == 1, "json: a byte order mark is skipped");
	cJSON_Delete(a);
	a = kb_kv_json_parse("[4102444800]", 12, &why);
	tap_ok(a != NULL && a->child->valuedouble == 4102444800.0,
	    "json: a time past 2038 is exact");
	cJSON_Delete(a);
	/* KB_KV_JSON_DEPTH arrays nest; one more is refused. */
	for (n = KB_KV_JSON_DEPTH, i = 0; i < n; i++) {
		deep[i] = '[';
		deep[n + i] = ']';
	}
	a = kb_kv_json_parse(deep, 2 * n, &why);
	tap_ok(a != NULL, "json: %d levels of nesting taken", KB_KV_JSON_DEPTH);
	cJSON_Delete(a);
	memmove(deep + 1, deep, 2 * n);
	deep[0] = '[';
	deep[2 * n + 1] = ']';
	a = kb_kv_json_parse(deep, 2 * n + 2, &why);
	tap_ok(a == NULL && why != NULL && strcmp(why, "nested too deeply") == 0,
	    "json: %d refused: %s", KB_KV_JSON_DEPTH + 1, why ? why : "(taken)");
	cJSON_Delete(a);
	/* Past the thread's 64 KiB buffer: its own parser, same tree. */
	n = 300 * 1024;
	if ((big = malloc(n + 1)) != NULL) {
		size_t at = 0;

		at += (size_t)sprintf(big, "{\"value\":[");
		for (i = 0; at < n - 200; i++)
			at += (size_t)sprintf(big + at, "%s{\"kid\":\"https://v/keys/k%zu\","
			    "\"n\":%zu}", i ? "," : "", i, i);
		at += (size_t)sprintf(big + at, "]}");
		a = kb_kv_json_parse(big, at, &why);
		b = cJSON_ParseWithLength(big, at);
		tap_ok(a != NULL && b != NULL && jsoneq(a, b) &&
		    cJSON_GetArraySize(cJSON_GetObjectItem(a, "value")) == (int)i,
		    "json: a %zu-byte answer (%zu items) gives cJSON's tree", at, i);
		cJSON_Delete(a);
		cJSON_Delete(b);
		/* and a small one again after it, on the thread's parser */
		a = kb_kv_json_parse(good[0], strlen(good[0]), &why);
		tap_ok(a != NULL, "json: then a small one");
		cJSON_Delete(a);
		free(big);
	}
	a = kb_kv_json_parse(NULL, 0, &why);
	tap_ok(a == NULL && why != NULL, "json: no text refused");
}

/*
 * Secret answers (kb_kv_json_parse_secret): no copy of a string stays in
 * the process.  The marker is kept XOR 0x5a, so the search's own copy is
 * no match, and the search reads every writable mapping of the process
 * (uninstrumented: under ASan it reads redzones and freed memory too).
 */
#define XMARK_LEN 24

__attribute__((no_sanitize("address")))
static int
mem_holds(const unsigned char *xmark)
{
	unsigned long lo, hi;
	char line[512], perms[8];
	const unsigned char *p, *end;
	int found = 0;
	size_t i;
	FILE *f;

	if ((f = fopen("/proc/self/maps", "r")) == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[0] != 'r' || perms[1] != 'w' || hi - lo > (256UL << 20) ||
		    strstr(line, "[v") != NULL)
			continue;
		end = (const unsigned char *)hi - XMARK_LEN;
		for (p = (const unsigned char *)lo; !found && p <= end; p++) {
			for (i = 0; i < XMARK_LEN && p[i] == (xmark[i] ^ 0x5a); i++)
				;
			found = i == XMARK_LEN;
		}
	}
	fclose(f);
	return found;
}

/* {"kid":"k","value":"MARK"} padded with pad bytes of filler; parsed
 * with parse, the tree wiped and the text too. */
static int
parse_marked(const unsigned char *xmark, size_t pad,
    cJSON *(*parse)(const char *, size_t, const char **))
{
	static const char pre[] = "{\"kid\":\"k\",\"value\":\"";
	static const char mid[] = "\",\"filler\":\"";
	size_t len = strlen(pre) + XMARK_LEN + strlen(mid) + pad + 2, at = 0, i;
	char *text = malloc(len);
	const cJSON *v;
	cJSON *tree;
	int ok;

	if (text == NULL)
		return 0;
	memcpy(text, pre, strlen(pre));
	at = strlen(pre);
	for (i = 0; i < XMARK_LEN; i++)
		text[at++] = (char)(xmark[i] ^ 0x5a);
	memcpy(text + at, mid, strlen(mid));
	at += strlen(mid);
	memset(text + at, 'f', pad);
	at += pad;
	memcpy(text + at, "\"}", 2);
	tree = parse(text, len, NULL);
	explicit_bzero(text, len);
	free(text);
	v = cJSON_GetObjectItemCaseSensitive(tree, "value");
	ok = cJSON_IsString(v) && strlen(v->valuestring) == XMARK_LEN;
	kb_kv_json_wipe(tree);
	cJSON_Delete(tree);
	return ok;
}

static void
t_secret_json(void)
{
	unsigned char xm[XMARK_LEN];
	size_t i;

	for (i = 0; i < XMARK_LEN; i++)
		xm[i] = (unsigned char)(('a' + (i * 7) % 26) ^ 0x5a);
	xm[0] ^= 1;     /* 'a' ^ 1 = '`': differs from the next markers */
	tap_ok(parse_marked(xm, 10, kb_kv_json_parse_secret) &&
	    mem_holds(xm) == 0, "json: a secret answer leaves no copy of its "
	    "strings in memory");
	xm[0] ^= 3;
	tap_ok(parse_marked(xm, 100 * 1024, kb_kv_json_parse_secret) &&
	    mem_holds(xm) == 0, "json: nor does a secret answer over 64 KiB "
	    "(a parser of its own)");
	xm[0] ^= 5;
	tap_ok(parse_marked(xm, 10, kb_kv_json_parse) && mem_holds(xm) == 1,
	    "json: the control: an ordinary answer's strings stay in the "
	    "parser's buffer, and the search finds them");
}

int
main(int argc, char **argv)
{
	struct stat st;
	const char *kv = argc > 1 ? argv[1] : NULL;

	if (kv != NULL && stat(kv, &st) == 0 && S_ISDIR(st.st_mode)) {
		examples(kv);
		recordings(kv);
		recorded_roundtrips(kv);
	} else
		tap_ok(1, "# SKIP no Key Vault reference data at %s", kv ? kv : "(unset)");
	t_modulus();
	t_b64();
	t_paging();
	t_times();
	t_types();
	t_lenient();
	t_kids();
	t_errors();
	t_op_result();
	t_json();
	t_secret_json();
	return tap_done();
}
