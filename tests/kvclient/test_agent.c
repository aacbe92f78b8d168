/*
 * test_agent.c: kv-client against keybridged's HTTPS listener (run by
 * t-agent.sh after `keybridge dev up --https`): Key Vault's challenge
 * answered by the token-file credential, create/get/list with paging
 * over more than 25 keys, and 404/409 mapped to project errors with the
 * service's code and message kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_kvclient.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop
#include "kvcheck.h"

#define N_KEYS 30

static char prefix[32];
static int seen;

static int
count_ours(void *arg, const cJSON *item)
{
	const char *kid = cJSON_GetStringValue(cJSON_GetObjectItem(item, "kid"));

	(void)arg;
	if (kid == NULL)
		return KB_ERR_PROTOCOL;
	if (strstr(kid, prefix) != NULL)
		seen++;
	return 0;
}

int
main(void)
{
	const char *url = getenv("KEYBRIDGE_URL"), *ca = getenv("KEYBRIDGE_CA");
	const char *tf = getenv("KEYBRIDGE_TOKEN_FILE");
	struct kb_kv_options o;
	struct kb_kv_token_source src;
	struct kb_kv_response *resp = NULL;
	struct kb_kv_stats st;
	kb_kv_credential *cred = NULL;
	kb_kv_client *c = NULL;
	cJSON *body;
	char path[256];
	int i, r, created = 0;

	if (url == NULL || ca == NULL || tf == NULL)
		return tap_skip_all("run through t-agent.sh");
	snprintf(prefix, sizeof(prefix), "kvc%ld", (long)kb_now_unix() % 100000);
	r = kb_kv_credential_token_file(tf, &cred);
	tap_is_int(r, 0, "token file credential for %s", tf);
	kb_kv_credential_source(cred, &src);
	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.tokens = &src;
	o.skip_resource_check = true;     /* resource vault.azure.net on 127.0.0.1 */
	r = kb_kv_client_new_url(url, &o, &c);
	tap_is_int(r, 0, "client for %s", url);
	if (r != 0)
		return tap_done();

	/* Without skip_resource_check the agent's challenge is refused. */
	{
		kb_kv_client *strict = NULL;

		o.skip_resource_check = false;
		r = kb_kv_client_new_url(url, &o, &strict);
		r = r ? r : kb_kv_request(strict, "GET", "/keys", NULL, &resp);
		tap_is_int(r, KB_ERR_DENIED, "the resource check refuses vault.azure.net "
		    "on 127.0.0.1: %s", kb_error_detail(r));
		kb_kv_client_free(strict);
		o.skip_resource_check = true;
	}

	body = cJSON_Parse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"tags\":{\"t\":\"kvc\"}}");
	for (i = 0; i < N_KEYS; i++) {
		snprintf(path, sizeof(path), "/keys/%s-%02d/create", prefix, i);
		r = kb_kv_request_flags(c, "POST", path, body, KB_KV_NOT_IDEMPOTENT, &resp);
		if (r == 0 && kb_kv_response_error(resp) == 0 &&
		    cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(resp->body,
		    "key"), "kid")))
			created++;
		else if (r == 0)
			printf("# create %d: HTTP %ld %s\n", i, resp->status,
			    resp->error_message ? resp->error_message : "");
		else
			printf("# create %d: %s\n", i, kb_error_detail(r));
		kb_kv_response_free(resp);
		resp = NULL;
	}
	tap_is_int(created, N_KEYS, "created %d EC keys through the challenge", N_KEYS);
	kb_kv_client_stats(c, &st);
	tap_ok(st.challenges == 1, "one challenge for all of them (%lu)", st.challenges);

	snprintf(path, sizeof(path), "/keys/%s-07/", prefix);
	r = kb_kv_request(c, "GET", path, NULL, &resp);
	tap_ok(r == 0 && resp->status == 200 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(resp->body,
	    "key"), "crv")) ?: "", "P-256") == 0, "get the latest version");
	if (r == 0 && resp->status == 200) {
		struct kvc_req rq;

		(void)kvc_kind_of_request("GET", path, &rq);
		kvc_check("keybridged's GetKey", KVC_BUNDLE, resp->body, &rq);
	}
	kb_kv_response_free(resp);
	resp = NULL;

	seen = 0;
	kb_kv_client_stats(c, &st);
	{
		unsigned long before = st.requests;

		r = kb_kv_list(c, "/keys?maxresults=10", 0, count_ours, NULL);
		kb_kv_client_stats(c, &st);
		tap_is_int(r, 0, "list all keys: %s", r ? kb_error_detail(r) : "ok");
		tap_is_int(seen, N_KEYS, "every key created is listed once");
		tap_ok(st.requests - before >= 3, "through nextLink paging (%lu pages)",
		    st.requests - before);
	}

	snprintf(path, sizeof(path), "/keys/%s-missing/", prefix);
	r = kb_kv_request(c, "GET", path, NULL, &resp);
	tap_ok(r == 0 && resp->status == 404, "a missing key: 404");
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_is_int(r, KB_ERR_NOT_FOUND, "404 maps to NOT_FOUND: %s", kb_error_detail(r));
	tap_ok(resp && resp->error_code && strcmp(resp->error_code, "KeyNotFound") == 0,
	    "Key Vault's code kept (%s)", resp && resp->error_code ? resp->error_code : "none");
	kb_kv_response_free(resp);
	resp = NULL;

	/* Delete, then create the same name: 409 while it is soft-deleted. */
	snprintf(path, sizeof(path), "/keys/%s-00", prefix);
	r = kb_kv_request(c, "DELETE", path, NULL, &resp);
	tap_ok(r == 0 && resp->status == 200 &&
	    cJSON_IsString(cJSON_GetObjectItem(resp->body, "recoveryId")),
	    "delete gives a recoveryId");
	if (r == 0 && resp->status == 200) {
		struct kvc_req rq;

		(void)kvc_kind_of_request("DELETE", path, &rq);
		kvc_check("keybridged's DeleteKey", KVC_DELETED, resp->body, &rq);
	}
	kb_kv_response_free(resp);
	resp = NULL;
	snprintf(path, sizeof(path), "/keys/%s-00/create", prefix);
	r = kb_kv_request_flags(c, "POST", path, body, KB_KV_NOT_IDEMPOTENT, &resp);
	tap_ok(r == 0 && resp->status == 409, "create on a soft-deleted name: 409");
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_is_int(r, KB_ERR_CONFLICT, "409 maps to CONFLICT: %s", kb_error_detail(r));
	kb_kv_response_free(resp);
	resp = NULL;
	cJSON_Delete(body);

	/* Answers that hold secrets are marked (and wiped when freed). */
	body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "count", 16);
	r = kb_kv_request(c, "POST", "/rng", body, &resp);
	tap_ok(r == 0 && resp->status == 200 && resp->secret,
	    "getRandomBytes: its answer is marked secret");
	kb_kv_response_free(resp);
	resp = NULL;
	cJSON_Delete(body);
	snprintf(path, sizeof(path), "/keys/%s-01/DeCrypt?x=1", prefix);
	r = kb_kv_request(c, "POST", path, NULL, &resp);
	tap_ok(r == 0 && resp->status == 400 && resp->secret,
	    "a decrypt path in any case, with a query: marked secret (HTTP %ld)",
	    resp != NULL ? resp->status : 0L);
	kb_kv_response_free(resp);
	resp = NULL;
	snprintf(path, sizeof(path), "/keys/%s-01/unwrapkey", prefix);
	r = kb_kv_request(c, "POST", path, NULL, &resp);
	tap_ok(r == 0 && resp->secret, "an unwrapKey path: marked secret");
	kb_kv_response_free(resp);
	resp = NULL;
	snprintf(path, sizeof(path), "/keys/%s-01", prefix);
	r = kb_kv_request(c, "GET", path, NULL, &resp);
	tap_ok(r == 0 && resp->status == 200 && !resp->secret,
	    "a key's answer: not marked");
	kb_kv_response_free(resp);
	resp = NULL;

	kb_kv_client_stats(c, &st);
	tap_ok(st.connections <= N_KEYS + 3, "%lu requests over %lu TLS connections "
	    "(each create on a fresh one)", st.requests, st.connections);
	kb_kv_client_free(c);
	kb_kv_credential_free(cred);
	return tap_done();
}
