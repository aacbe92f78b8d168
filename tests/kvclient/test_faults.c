/*
 * test_faults.c: kv-client over real HTTPS against kvserver.py (started
 * by t-faults.sh): the challenge (bodyless probe, tenant and scope, the
 * resource-domain check, one re-challenge), TLS verification, retries
 * (429 with each retry header, 503, connection reset, the not-idempotent
 * flag), timeouts, truncated and malformed bodies, the body cap, wrong
 * content types, paging, and the client-secret credential against the
 * token endpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_kvclient.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"
#define CLIENT_SECRET "s3cr&t=+/ x%~"

static char url[128], azurl[128], resolve[128], authority[128];
static const char *ca, *other_ca;
static int uniq;

struct tsrc {
	int calls;
	char tenant[64];
	char scope[128];
	const char *token;
};

static int
test_get_token(void *ctx, const char *tenant, const char *scope,
    struct kb_secret **out, int64_t *exp)
{
	struct tsrc *t = ctx;

	t->calls++;
	snprintf(t->tenant, sizeof(t->tenant), "%s", tenant ? tenant : "(none)");
	snprintf(t->scope, sizeof(t->scope), "%s", scope);
	*exp = kb_now_unix() + 3600;
	return kb_secret_from(t->token, strlen(t->token), out);
}

static kb_kv_client *
client(const char *base, struct tsrc *t, int max_retries, long total_ms,
    bool skip_check)
{
	struct kb_kv_options o;
	struct kb_kv_token_source src = { test_get_token, t };
	kb_kv_client *c = NULL;

	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.tokens = t != NULL ? &src : NULL;
	o.max_retries = max_retries;
	o.total_ms = total_ms;
	o.retry_base_ms = 100;
	o.retry_budget_ms = 10000;
	o.skip_resource_check = skip_check;
	o.resolve = resolve;
	if (kb_kv_client_new_url(base, &o, &c) != 0) {
		printf("# client: %s\n", kb_error_detail(KB_ERR_INTERNAL));
		return NULL;
	}
	return c;
}

/* GET /_stats: the server's counters. */
static cJSON *
server_stats(void)
{
	struct kb_kv_response *resp = NULL;
	kb_kv_client *c = client(url, NULL, KB_KV_NO_RETRY, 0, true);
	cJSON *j = NULL;

	if (c != NULL && kb_kv_request_flags(c, "GET", "/_stats", NULL,
	    KB_KV_RAW_PATH, &resp) == 0) {
		j = resp->body;
		resp->body = NULL;
	}
	kb_kv_response_free(resp);
	kb_kv_client_free(c);
	return j;
}

static double
stat_num(const char *name)
{
	cJSON *j = server_stats();
	double v = cJSON_GetNumberValue(cJSON_GetObjectItem(j, name));

	cJSON_Delete(j);
	return v;
}

static int
get(kb_kv_client *c, const char *scen, unsigned flags, const char *method,
    struct kb_kv_response **out)
{
	char path[128];

	snprintf(path, sizeof(path), "/s/%s/%d", scen, ++uniq);
	return kb_kv_request_flags(c, method, path, NULL, flags, out);
}

static int
attempts(const struct kb_kv_response *r)
{
	return r ? (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r->body, "attempts")) : -1;
}

static int n_items;
static int
count_item(void *arg, const cJSON *item)
{
	(void)arg;
	if (!cJSON_IsString(cJSON_GetObjectItem(item, "kid")))
		return KB_ERR_PROTOCOL;
	n_items++;
	return 0;
}

static void
t_challenge(void)
{
	struct tsrc t = { .token = "test-token" };
	struct kb_kv_response *resp = NULL;
	struct kb_kv_stats st;
	kb_kv_client *c;
	cJSON *body;
	double probes_with_body = stat_num("probe_with_body");
	int r;

	/* A vault host under vault.azure.net, resolved to the server. */
	c = client(azurl, &t, 0, 0, false);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "kty", "EC");
	r = c ? kb_kv_request_flags(c, "POST", "/s/ok/create", body,
	    KB_KV_NOT_IDEMPOTENT, &resp) : -99;
	tap_is_int(r, 0, "challenge answered: POST with a token after the probe");
	tap_is_int(resp ? resp->status : 0, 200, "200 after the challenge");
	tap_is_str(t.tenant, TENANT, "tenant from the authorization URL");
	tap_is_str(t.scope, "https://vault.azure.net/.default", "scope from resource");
	tap_ok(resp && cJSON_IsObject(cJSON_GetObjectItem(resp->body, "body")) &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(resp->body,
	    "body"), "kty")), "EC") == 0, "the body reached the server with the token");
	tap_ok(stat_num("probe_with_body") == probes_with_body,
	    "the unauthenticated probe carried no body");
	tap_ok(resp && (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(resp->body, "exp"))
	    == 2524723200LL, "times past 2038 read through valuedouble");
	tap_ok(resp && (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(resp->body, "far"))
	    == 4102444800123LL, "and millisecond times past 2100");
	kb_kv_response_free(resp);
	resp = NULL;
	r = c ? kb_kv_request(c, "GET", "/s/ok/again", NULL, &resp) : -99;
	kb_kv_client_stats(c, &st);
	tap_ok(r == 0 && t.calls == 1 && st.challenges == 1,
	    "the token is reused: one challenge, one token for two requests "
	    "(calls %d, challenges %lu)", t.calls, st.challenges);
	/* The probe's connection, then a fresh one for the create (libcurl
	 * would resend it on a reused connection that died), which the GET
	 * reuses. */
	tap_ok(st.connections == 2, "%lu exchanges over 2 TLS connections "
	    "(%lu opened)", st.requests, st.connections);
	kb_kv_response_free(resp);
	resp = NULL;

	/* A later 401 (expired token): one re-challenge, then the answer. */
	r = c ? get(c, "rechallenge", 0, "GET", &resp) : -99;
	kb_kv_client_stats(c, &st);
	tap_ok(r == 0 && resp && resp->status == 200 && attempts(resp) == 2,
	    "a later 401 re-challenges once and succeeds");
	tap_ok(t.calls == 2 && st.challenges == 2, "a new token after the "
	    "re-challenge (calls %d)", t.calls);
	kb_kv_response_free(resp);
	resp = NULL;
	cJSON_Delete(body);
	kb_kv_client_free(c);

	/* A token the server never issued: one re-challenge, then 401. */
	t.token = "forged";
	t.calls = 0;
	c = client(azurl, &t, 0, 0, false);
	r = c ? kb_kv_request(c, "GET", "/s/ok/x", NULL, &resp) : -99;
	tap_ok(r == 0 && resp && resp->status == 401 && t.calls == 2,
	    "a refused token: re-challenged once, then the 401 comes back "
	    "(calls %d)", t.calls);
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_is_int(r, KB_ERR_DENIED, "401 maps to DENIED: %s", kb_error_detail(r));
	kb_kv_response_free(resp);
	resp = NULL;
	kb_kv_client_free(c);

	/* A challenge naming a foreign resource: refused, no token asked. */
	t.token = "test-token";
	t.calls = 0;
	c = client(azurl, &t, 0, 0, false);
	r = c ? get(c, "foreign", 0, "GET", &resp) : -99;
	tap_is_int(r, KB_ERR_DENIED, "a challenge for vault.evil.example is refused");
	tap_ok(strstr(kb_error_detail(r), "vault.evil.example") != NULL,
	    "the sentence names the foreign resource: %s", kb_error_detail(r));
	tap_is_int(t.calls, 0, "no token was asked for");
	kb_kv_client_free(c);

	/* 127.0.0.1 is not under vault.azure.net: refused unless the check
	 * is off (local test doubles). */
	c = client(url, &t, 0, 0, false);
	r = c ? get(c, "ok", 0, "GET", &resp) : -99;
	tap_is_int(r, KB_ERR_DENIED, "vault.azure.net's challenge from 127.0.0.1 "
	    "is refused by default");
	kb_kv_client_free(c);
	c = client(url, &t, 0, 0, true);
	r = c ? get(c, "ok", 0, "GET", &resp) : -99;
	tap_is_int(r, 0, "and accepted with skip_resource_check");
	kb_kv_response_free(resp);
	resp = NULL;
	kb_kv_client_free(c);
}

static void
t_tls(void)
{
	struct kb_kv_options o;
	struct kb_kv_response *resp = NULL;
	kb_kv_client *c = NULL;
	int r;

	r = kb_kv_client_new_url("http://127.0.0.1:1/", NULL, &c);
	tap_is_int(r, KB_ERR_INVALID, "http:// is refused");
	tap_ok(strstr(kb_error_detail(r), "https://") != NULL,
	    "with a sentence saying what to give: %s", kb_error_detail(r));
	tap_ok(c == NULL, "no client on failure");
	r = kb_kv_client_new_url("ftp://x", NULL, &c);
	tap_is_int(r, KB_ERR_INVALID, "ftp:// is refused");
	r = kb_kv_client_new_url("https://user@host/", NULL, &c);
	tap_is_int(r, KB_ERR_INVALID, "userinfo is refused");

	memset(&o, 0, sizeof(o));
	o.ca_file = other_ca;
	o.max_retries = KB_KV_NO_RETRY;
	r = kb_kv_client_new_url(url, &o, &c);
	r = r ? r : get(c, "ok", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_UNREACHABLE, "a server whose CA is not trusted");
	tap_ok(strstr(kb_error_detail(r), "CA") != NULL, "the sentence says "
	    "what to do: %s", kb_error_detail(r));
	kb_kv_client_free(c);
	c = NULL;
	o.ca_file = "/nonexistent/ca.pem";
	r = kb_kv_client_new_url(url, &o, &c);
	tap_is_int(r, KB_ERR_CONFIG, "an unreadable CA file");
	/* The system store does not know the test CA either. */
	o.ca_file = NULL;
	r = kb_kv_client_new_url(url, &o, &c);
	r = r ? r : get(c, "ok", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_UNREACHABLE, "the system store does not trust the test CA");
	kb_kv_client_free(c);
}

static void
t_retries(void)
{
	static const char *hdrs[] = { "429-ra", "429-ms", "429-xms", "429-date", "429-none" };
	static const long min_ms[] = { 950, 280, 280, 950, 80 };
	struct tsrc t = { .token = "test-token" };
	struct kb_kv_response *resp = NULL;
	struct kb_kv_stats st;
	kb_kv_client *c = client(url, &t, 0, 0, true);
	double t0, dt;
	size_t i;
	int r;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		t0 = kb_now_mono();
		r = get(c, hdrs[i], 0, "GET", &resp);
		dt = (kb_now_mono() - t0) * 1000;
		tap_ok(r == 0 && resp && resp->status == 200 && attempts(resp) == 2,
		    "%s: 429 then 200", hdrs[i]);
		tap_ok(dt >= (double)min_ms[i] && dt < 4000, "%s: waited %.0f ms "
		    "(at least %ld)", hdrs[i], dt, min_ms[i]);
		kb_kv_response_free(resp);
		resp = NULL;
	}
	/* Create on a throttled vault: a 429 did nothing, so it is resent. */
	r = get(c, "429-ms", KB_KV_NOT_IDEMPOTENT, "POST", &resp);
	tap_ok(r == 0 && resp && resp->status == 200 && attempts(resp) == 2,
	    "a not-idempotent request is resent after a 429");
	kb_kv_response_free(resp);
	resp = NULL;

	r = get(c, "503", 0, "GET", &resp);
	tap_ok(r == 0 && resp && resp->status == 200 && attempts(resp) == 2,
	    "503 then 200");
	kb_kv_response_free(resp);
	resp = NULL;
	r = get(c, "503-always", KB_KV_NOT_IDEMPOTENT, "POST", &resp);
	tap_ok(r == 0 && resp && resp->status == 503,
	    "a not-idempotent request after a 503 is not resent: the 503 comes back");
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_is_int(r, KB_ERR_BUSY, "503 maps to BUSY");
	kb_kv_response_free(resp);
	resp = NULL;
	{
		cJSON *j = server_stats();
		cJSON *h = cJSON_GetObjectItem(j, "hits");
		char key[64];

		snprintf(key, sizeof(key), "/s/503-always/%d", uniq);
		tap_is_int((int)cJSON_GetNumberValue(cJSON_GetObjectItem(h, key)), 1,
		    "the server saw it exactly once");
		cJSON_Delete(j);
	}
	r = get(c, "reset", 0, "GET", &resp);
	tap_ok(r == 0 && resp && resp->status == 200 && attempts(resp) == 2,
	    "a connection reset is retried: %s", r ? kb_error_detail(r) : "ok");
	kb_kv_response_free(resp);
	resp = NULL;
	r = get(c, "reset", KB_KV_NOT_IDEMPOTENT, "POST", &resp);
	tap_is_int(r, KB_ERR_IO, "a reset after a not-idempotent request was "
	    "sent is not resent: %s", kb_error_detail(r));
	kb_kv_client_stats(c, &st);
	kb_kv_client_free(c);

	/* The budget: 429 with Retry-After 1 s, budget 1.5 s. */
	{
		struct kb_kv_options o;
		struct kb_kv_token_source src = { test_get_token, &t };

		memset(&o, 0, sizeof(o));
		o.ca_file = ca;
		o.tokens = &src;
		o.skip_resource_check = true;
		o.retry_budget_ms = 1500;
		o.max_retries = 10;
		c = NULL;
		r = kb_kv_client_new_url(url, &o, &c);
		t0 = kb_now_mono();
		r = r ? r : get(c, "429-always", 0, "GET", &resp);
		dt = kb_now_mono() - t0;
		tap_ok(r == 0 && resp && resp->status == 429 && dt < 2.5,
		    "the retry budget ends a throttled request (%.1f s)", dt);
		r = resp ? kb_kv_response_error(resp) : 0;
		tap_is_int(r, KB_ERR_BUSY, "429 maps to BUSY: %s", kb_error_detail(r));
		kb_kv_response_free(resp);
		resp = NULL;
		kb_kv_client_free(c);
	}
	/* Connection refused: retried, then UNREACHABLE. */
	{
		struct kb_kv_options o;

		memset(&o, 0, sizeof(o));
		o.ca_file = ca;
		o.retry_base_ms = 50;
		o.max_retries = 2;
		c = NULL;
		r = kb_kv_client_new_url("https://127.0.0.1:1", &o, &c);
		r = r ? r : kb_kv_request(c, "GET", "/s/ok/1", NULL, &resp);
		kb_kv_client_stats(c, &st);
		tap_is_int(r, KB_ERR_UNREACHABLE, "nothing listening: UNREACHABLE");
		tap_is_int(st.retries, 2, "after max_retries retries");
		kb_kv_client_free(c);
	}
}

static void
t_bodies(void)
{
	struct tsrc t = { .token = "test-token" };
	struct kb_kv_response *resp = NULL;
	/* The 800 ms timeout only where it is what is tested: a loaded
	 * machine can take that long to answer the other requests. */
	kb_kv_client *cs = client(url, &t, KB_KV_NO_RETRY, 800, true);
	kb_kv_client *c = client(url, &t, KB_KV_NO_RETRY, 30000, true);
	double t0;
	int r;

	t0 = kb_now_mono();
	r = get(cs, "stall", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_IO, "a stall past the total timeout: %s", kb_error_detail(r));
	tap_ok(kb_now_mono() - t0 < 2.5, "ended by the timeout");
	kb_kv_client_free(cs);
	r = get(c, "trunc", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_IO, "a body cut short: %s", kb_error_detail(r));
	r = get(c, "badjson", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_PROTOCOL, "truncated JSON: %s", kb_error_detail(r));
	r = get(c, "conflict", 0, "POST", &resp);
	tap_ok(r == 0 && resp && resp->status == 409 && resp->error_code &&
	    strcmp(resp->error_code, "Conflict") == 0 && resp->error_inner &&
	    strcmp(resp->error_inner, "ObjectIsDeletedButRecoverable") == 0,
	    "a 409's innererror code is kept");
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_ok(r == KB_ERR_CONFLICT &&
	    strstr(kb_error_detail(r), "Conflict: ObjectIsDeletedButRecoverable") != NULL,
	    "and named in the sentence: %s", kb_error_detail(r));
	kb_kv_response_free(resp);
	resp = NULL;
	r = get(c, "html", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_PROTOCOL, "text/html: %s", kb_error_detail(r));
	kb_kv_client_set_max_body(c, 64 * 1024);
	r = get(c, "big", 0, "GET", &resp);
	tap_is_int(r, KB_ERR_LIMIT, "a chunked body over the cap: %s", kb_error_detail(r));
	tap_ok(resp == NULL, "no response on failure");
	kb_kv_client_set_max_body(c, 1024 * 1024);
	r = get(c, "big", 0, "GET", &resp);
	tap_ok(r == 0 && resp && cJSON_GetArraySize(resp->body) == 65,
	    "the same body under a larger cap");
	kb_kv_response_free(resp);
	resp = NULL;
	kb_kv_client_free(c);
}

static void
t_paging(void)
{
	static const char *ends[] = { "null", "absent", "empty" };
	struct tsrc t = { .token = "test-token" };
	struct kb_kv_stats st;
	kb_kv_client *c = client(url, &t, 0, 0, true);
	char path[128];
	cJSON *page;
	char *next = NULL;
	size_t i;
	int r;

	for (i = 0; i < 3; i++) {
		n_items = 0;
		snprintf(path, sizeof(path), "/s/pages/%d?end=%s", ++uniq, ends[i]);
		r = kb_kv_list(c, path, 0, count_item, NULL);
		tap_ok(r == 0 && n_items == 53, "paging ends on a %s nextLink: %d items",
		    ends[i], n_items);
	}
	kb_kv_client_stats(c, &st);
	tap_ok(st.connections == 1, "every page over one connection");
	/* Pages whose tree outgrows the page arena (client.c, jarena.c):
	 * all items seen; under ASan, nothing leaked or freed twice. */
	n_items = 0;
	snprintf(path, sizeof(path), "/s/dense/%d?bad=0", ++uniq);
	r = kb_kv_list(c, path, 0, count_item, NULL);
	tap_ok(r == 0 && n_items == 903, "a page of 900 small items, then 3: %d items",
	    n_items);
	n_items = 0;
	snprintf(path, sizeof(path), "/s/dense/%d?bad=1", ++uniq);
	r = kb_kv_list(c, path, 0, count_item, NULL);
	tap_ok(r == KB_ERR_PROTOCOL && n_items == 900,
	    "the same 900 cut short on the next page: %s", kb_error_detail(r));
	n_items = 0;
	snprintf(path, sizeof(path), "/s/pages/%d?end=foreign", ++uniq);
	r = kb_kv_list(c, path, 0, count_item, NULL);
	tap_is_int(r, KB_ERR_PROTOCOL, "a nextLink to another host is not followed: %s",
	    kb_error_detail(r));
	kb_kv_client_free(c);

	page = cJSON_Parse("{\"value\":[],\"nextLink\":\"https://v.vault.azure.net/keys?"
	    "api-version=7.2&$skiptoken=eyJ&maxresults=1\"}");
	r = kb_kv_next_link("https://V.vault.azure.net:443", page, &next);
	tap_is_str(next, "/keys?$skiptoken=eyJ&maxresults=1",
	    "next link: same host (any case, default port), api-version dropped");
	free(next);
	next = NULL;
	cJSON_Delete(page);
	page = cJSON_Parse("{\"nextLink\":\"https://v.vault.azure.net:8443/keys\"}");
	r = kb_kv_next_link("https://v.vault.azure.net", page, &next);
	tap_is_int(r, KB_ERR_PROTOCOL, "another port is another server");
	cJSON_Delete(page);
	page = cJSON_Parse("{\"nextLink\":\"http://v.vault.azure.net/keys\"}");
	r = kb_kv_next_link("https://v.vault.azure.net", page, &next);
	tap_is_int(r, KB_ERR_PROTOCOL, "http is another scheme");
	cJSON_Delete(page);
	page = cJSON_Parse("{\"nextLink\":42}");
	r = kb_kv_next_link("https://v.vault.azure.net", page, &next);
	tap_is_int(r, KB_ERR_PROTOCOL, "a number is no link");
	cJSON_Delete(page);
	page = cJSON_Parse("{\"nextLink\":\"https://h/p/keys?x=1\"}");
	r = kb_kv_next_link("https://h/p", page, &next);
	tap_is_str(next, "/keys?x=1", "relative to the base URL's path prefix");
	free(next);
	next = NULL;
	cJSON_Delete(page);
}

static void
t_client_secret(void)
{
	struct kb_kv_client_secret_options so;
	struct kb_kv_options o;
	struct kb_kv_token_source src;
	struct kb_kv_response *resp = NULL;
	struct kb_secret *sec = NULL;
	kb_kv_credential *cred = NULL;
	kb_kv_client *c = NULL;
	double before = stat_num("token_requests");
	int r;

	memset(&so, 0, sizeof(so));
	if (kb_secret_from(CLIENT_SECRET, strlen(CLIENT_SECRET), &sec) != 0)
		return;
	so.tenant_id = TENANT;
	so.client_id = CLIENT_ID;
	so.client_secret = sec;
	so.authority_host = "http://127.0.0.1:1";
	r = kb_kv_credential_client_secret(&so, &cred);
	tap_is_int(r, KB_ERR_INVALID, "an http authority is refused");
	so.authority_host = authority;
	so.ca_file = ca;
	r = kb_kv_credential_client_secret(&so, &cred);
	tap_is_int(r, 0, "client secret credential");
	kb_kv_credential_source(cred, &src);
	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.tokens = &src;
	o.resolve = resolve;
	r = r ? r : kb_kv_client_new_url(azurl, &o, &c);
	r = r ? r : kb_kv_request(c, "GET", "/s/ok/cs1", NULL, &resp);
	tap_ok(r == 0 && resp && resp->status == 200,
	    "a request with a token from the client secret: %s",
	    r ? kb_error_detail(r) : "ok");
	kb_kv_response_free(resp);
	resp = NULL;
	kb_kv_client_free(c);
	c = NULL;
	/* A second client, same credential: the cached token. */
	r = kb_kv_client_new_url(azurl, &o, &c);
	r = r ? r : kb_kv_request(c, "GET", "/s/ok/cs2", NULL, &resp);
	tap_ok(r == 0 && resp && resp->status == 200, "a second client");
	tap_ok(stat_num("token_requests") == before + 1,
	    "one token request for both: cached per tenant and scope");
	tap_ok(stat_num("token_bad_form") == 0, "the token endpoint found every "
	    "form field right (client_id, scope, client_secret, grant_type)");
	kb_kv_response_free(resp);
	resp = NULL;
	kb_kv_client_free(c);
	c = NULL;
	kb_kv_credential_free(cred);
	cred = NULL;
	kb_secret_free(&sec);

	/* A wrong secret: the endpoint's AADSTS sentence, DENIED. */
	if (kb_secret_from("wrong", 5, &sec) != 0)
		return;
	so.client_secret = sec;
	r = kb_kv_credential_client_secret(&so, &cred);
	kb_kv_credential_source(cred, &src);
	r = r ? r : kb_kv_client_new_url(azurl, &o, &c);
	r = r ? r : kb_kv_request(c, "GET", "/s/ok/cs3", NULL, &resp);
	tap_is_int(r, KB_ERR_DENIED, "a wrong client secret: %s", kb_error_detail(r));
	tap_ok(strstr(kb_error_detail(r), "AADSTS7000215") != NULL &&
	    strstr(kb_error_detail(r), "wrong") == NULL,
	    "the sentence has the service's code, not the secret");
	kb_kv_client_free(c);
	c = NULL;
	kb_kv_credential_free(cred);
	cred = NULL;

	/* The credential's tenant differs from the challenge's. */
	so.tenant_id = "other-tenant";
	r = kb_kv_credential_client_secret(&so, &cred);
	kb_kv_credential_source(cred, &src);
	r = r ? r : kb_kv_client_new_url(azurl, &o, &c);
	r = r ? r : kb_kv_request(c, "GET", "/s/ok/cs4", NULL, &resp);
	tap_is_int(r, KB_ERR_DENIED, "a challenge from another tenant is refused: %s",
	    kb_error_detail(r));
	kb_kv_client_free(c);
	kb_kv_credential_free(cred);
	kb_secret_free(&sec);
}

static void
t_token_file(void)
{
	const char *dir = getenv("KVS_DIR");
	char path[512], jwt[1024];
	struct tsrc dummy = { .token = "x" };
	struct kb_kv_token_source src;
	kb_kv_credential *cred = NULL;
	struct kb_secret *tok = NULL;
	int64_t exp = 0;
	FILE *f;
	int r;

	(void)dummy;
	snprintf(path, sizeof(path), "%s/token", dir);
	/* {"alg":"RS256","typ":"JWT"} . {"aud":"https://vault.azure.net","exp":1000} . sig */
	snprintf(jwt, sizeof(jwt), "%s.%s.c2ln",
	    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
	    "eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCIsImV4cCI6MTAwMH0");
	if ((f = fopen(path, "w")) == NULL)
		return;
	fprintf(f, "%s\n", jwt);
	fclose(f);
	chmod(path, 0600);
	r = kb_kv_credential_token_file(path, &cred);
	kb_kv_credential_source(cred, &src);
	r = r ? r : src.get_token(src.ctx, TENANT, "https://vault.azure.net/.default",
	    &tok, &exp);
	tap_is_int(r, KB_ERR_CONFIG, "an expired JWT in the token file");
	tap_ok(strstr(kb_error_detail(r), "expired at 1970-01-01T00:16:40Z") != NULL &&
	    strstr(kb_error_detail(r), "get-access-token") != NULL,
	    "the sentence says when and what to do: %s", kb_error_detail(r));
	/* exp 4102444800 (2100): past 2038. */
	f = fopen(path, "w");
	fprintf(f, "%s.%s.c2ln", "eyJhbGciOiJSUzI1NiJ9",
	    "eyJleHAiOjQxMDI0NDQ4MDB9");
	fclose(f);
	r = src.get_token(src.ctx, NULL, "s", &tok, &exp);
	tap_ok(r == 0 && exp == 4102444800LL, "a JWT valid until 2100: expiry %lld",
	    (long long)exp);
	kb_secret_free(&tok);
	f = fopen(path, "w");
	fprintf(f, "  opaque-token_123~  \r\n");
	fclose(f);
	r = src.get_token(src.ctx, NULL, "s", &tok, &exp);
	tap_ok(r == 0 && tok && strcmp((char *)tok->data, "opaque-token_123~") == 0 &&
	    exp == 0, "an opaque token is used as it is, expiry unknown");
	kb_secret_free(&tok);
	f = fopen(path, "w");
	fprintf(f, "{\"accessToken\":\"az-token\",\"expiresOn\":\"2100-01-01 00:00:00.000000\","
	    "\"expires_on\":4102444800,\"tokenType\":\"Bearer\"}");
	fclose(f);
	r = src.get_token(src.ctx, NULL, "s", &tok, &exp);
	tap_ok(r == 0 && tok && strcmp((char *)tok->data, "az-token") == 0 &&
	    exp == 4102444800LL, "az account get-access-token JSON");
	kb_secret_free(&tok);
	chmod(path, 0644);
	r = src.get_token(src.ctx, NULL, "s", &tok, &exp);
	tap_is_int(r, KB_ERR_CONFIG, "a token file others can read: %s",
	    kb_error_detail(r));
	unlink(path);
	r = src.get_token(src.ctx, NULL, "s", &tok, &exp);
	tap_is_int(r, KB_ERR_CONFIG, "no token file: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
}

int
main(void)
{
	const char *port = getenv("KVS_PORT");

	ca = getenv("KVS_CA");
	other_ca = getenv("KVS_OTHER_CA");
	if (port == NULL || ca == NULL || other_ca == NULL || getenv("KVS_DIR") == NULL)
		return tap_skip_all("run through t-faults.sh");
	snprintf(url, sizeof(url), "https://127.0.0.1:%s", port);
	snprintf(azurl, sizeof(azurl), "https://kvtest.vault.azure.net:%s/", port);
	snprintf(resolve, sizeof(resolve), "kvtest.vault.azure.net:%s:127.0.0.1", port);
	snprintf(authority, sizeof(authority), "https://127.0.0.1:%s/", port);
	t_challenge();
	t_tls();
	t_retries();
	t_bodies();
	t_paging();
	t_client_secret();
	t_token_file();
	return tap_done();
}
