/*
 * test_replay.c: kv-client through conversations recorded from real
 * vaults and Managed HSMs, replayed by kvreplay.py (started by
 * t-replay.sh) over loopback HTTPS.  For each recording kv-client sends
 * the recorded requests, in order, with the recorded bodies: the first
 * gets the recorded 401 challenge, kv-client parses it, checks the
 * resource against the vault's host, gets a token for the challenge's
 * tenant and scope from the loopback token endpoint (client secret, the
 * authority host overridden as AZURE_AUTHORITY_HOST does), and resends
 * with the bearer token; every answer is then decoded with its
 * operation's decoder and compared with the recording (kvcheck.h).
 * The server refuses anything that strays from the recording.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_kvclient.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop
#include "kvcheck.h"

#define CLIENT_ID "11111111-2222-3333-4444-555555555555"
#define CLIENT_SECRET "replay-s3cret"
/* The credential's own tenant in the multitenant recordings: not the
 * vault's, as in the SDKs' test_challenge_auth_multitenant. */
#define HOME_TENANT "00000000-1111-2222-3333-444444444444"

static const char *port, *ca, *recdir;
static char ctl_url[128], authority[128];

/* The server's control endpoints, through a client without tokens. */
static cJSON *
control(const char *method, const char *path)
{
	struct kb_kv_options o;
	struct kb_kv_response *resp = NULL;
	kb_kv_client *c = NULL;
	cJSON *j = NULL;

	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.max_retries = KB_KV_NO_RETRY;
	if (kb_kv_client_new_url(ctl_url, &o, &c) == 0 &&
	    kb_kv_request_flags(c, method, path, NULL, KB_KV_RAW_PATH, &resp) == 0 &&
	    resp->status == 200) {
		j = resp->body;
		resp->body = NULL;
	}
	kb_kv_response_free(resp);
	kb_kv_client_free(c);
	return j;
}

static cJSON *
load_json(const char *path)
{
	char *text = NULL;
	size_t len;
	cJSON *j;

	if (kb_file_read(path, 16 << 20, &text, &len) != 0)
		return NULL;
	j = cJSON_ParseWithLength(text, len);
	free(text);
	return j;
}

/* Recorded URI -> host, path without api-version, and the api-version. */
static int
split_uri(const char *uri, char *host, size_t hn, char *path, size_t pn,
    char *apiv, size_t an)
{
	const char *h, *p, *q, *v;
	size_t plen;

	if (uri == NULL || strncmp(uri, "https://", 8) != 0)
		return -1;
	h = uri + 8;
	if ((p = strchr(h, '/')) == NULL)
		return -1;
	snprintf(host, hn, "%.*s", (int)(p - h), h);
	for (size_t i = 0; host[i]; i++)
		host[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
	q = strchr(p, '?');
	plen = q ? (size_t)(q - p) : strlen(p);
	snprintf(path, pn, "%.*s", (int)plen, p);
	apiv[0] = '\0';
	/* The recordings' queries hold api-version alone. */
	if (q != NULL && (v = strstr(q, "api-version=")) != NULL)
		snprintf(apiv, an, "%.*s", (int)strcspn(v + 12, "&"), v + 12);
	return 0;
}

static bool
is_challenge(const cJSON *e)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItem(e, "StatusCode")) == 401 &&
	    cJSON_GetObjectItem(cJSON_GetObjectItem(e, "ResponseHeaders"),
	    "WWW-Authenticate") != NULL;
}

/* Create, import and rotate make versions: never resent blindly. */
static unsigned
flags_for(const char *method, const char *path)
{
	size_t n = strlen(path);

	if ((strcmp(method, "POST") == 0 && ((n > 7 && strcmp(path + n - 7, "/create") == 0) ||
	    (n > 7 && strcmp(path + n - 7, "/rotate") == 0))) ||
	    (strcmp(method, "PUT") == 0 && strncmp(path, "/keys/", 6) == 0 &&
	    strchr(path + 6, '/') == NULL))
		return KB_KV_NOT_IDEMPOTENT;
	return 0;
}

/* The tenant in the recording's challenge. */
static void
recorded_tenant(const cJSON *e, char *out, size_t n)
{
	const char *h = cJSON_GetStringValue(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(e, "ResponseHeaders"), "WWW-Authenticate"));
	const char *a = h ? strstr(h, "microsoftonline.com/") : NULL;

	snprintf(out, n, "%.*s", a ? (int)strcspn(a + 20, "\"/") : 0, a ? a + 20 : "");
}

static kb_kv_client *
vault_client(const char *host, const char *apiv, kb_kv_credential *cred)
{
	struct kb_kv_options o;
	struct kb_kv_token_source src;
	char url[300], resolve[300];
	kb_kv_client *c = NULL;

	kb_kv_credential_source(cred, &src);
	snprintf(url, sizeof(url), "https://%s:%s", host, port);
	snprintf(resolve, sizeof(resolve), "%s:%s:127.0.0.1", host, port);
	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.tokens = &src;
	o.resolve = resolve;
	o.api_version = apiv;
	o.max_retries = KB_KV_NO_RETRY;   /* a retry would stray from the recording */
	if (kb_kv_client_new_url(url, &o, &c) != 0) {
		tap_diag("client for %s: %s", url, kb_error_detail(KB_ERR_INTERNAL));
		return NULL;
	}
	return c;
}

static kb_kv_credential *
credential(const char *tenant, bool allow_others)
{
	struct kb_kv_client_secret_options so;
	struct kb_secret *sec = NULL;
	kb_kv_credential *cred = NULL;

	if (kb_secret_from(CLIENT_SECRET, strlen(CLIENT_SECRET), &sec) != 0)
		return NULL;
	memset(&so, 0, sizeof(so));
	so.tenant_id = tenant;
	so.client_id = CLIENT_ID;
	so.client_secret = sec;
	so.authority_host = authority;
	so.ca_file = ca;
	so.allow_other_tenants = allow_others;
	if (kb_kv_credential_client_secret(&so, &cred) != 0)
		cred = NULL;
	kb_secret_free(&sec);
	return cred;
}

static bool
load(const char *name)
{
	char path[512];
	cJSON *j;
	bool ok;

	snprintf(path, sizeof(path), "/_replay/load?name=%s", name);
	j = control("POST", path);
	ok = j != NULL;
	cJSON_Delete(j);
	return ok;
}

/*
 * A multitenant recording with a credential for another tenant that may
 * not follow challenges elsewhere: refused before any token is asked.
 */
static void
refuse_other_tenant(const char *name, const char *host, const char *path,
    const char *method, const char *apiv, const cJSON *body)
{
	kb_kv_credential *cred = credential(HOME_TENANT, false);
	kb_kv_client *c;
	struct kb_kv_response *resp = NULL;
	cJSON *st;
	int r;

	if (!load(name) || cred == NULL) {
		tap_ok(0, "%s: set up the refusal", name);
		kb_kv_credential_free(cred);
		return;
	}
	c = vault_client(host, apiv, cred);
	r = c ? kb_kv_request_flags(c, method, path, body, flags_for(method, path), &resp) : -99;
	st = control("GET", "/_replay/state");
	tap_ok(r == KB_ERR_DENIED && strstr(kb_error_detail(r), HOME_TENANT) != NULL &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(st, "token_requests")) == 0,
	    "%s: a credential bound to tenant %s refuses the vault's tenant: %s",
	    name, HOME_TENANT, kb_error_detail(r));
	cJSON_Delete(st);
	kb_kv_response_free(resp);
	kb_kv_client_free(c);
	kb_kv_credential_free(cred);
}

static void
replay(const char *name)
{
	char path[1024], host[256], apiv[64], apiv2[64], tenant[64], label[1600];
	char first_host[256];
	cJSON *rec, *e, *st;
	kb_kv_credential *cred = NULL;
	kb_kv_client *c = NULL;
	struct kb_kv_stats stats;
	bool multitenant = strstr(name, "multitenant") != NULL;
	int i = 0, total, sent = 0, r;

	snprintf(path, sizeof(path), "%s/%s", recdir, name);
	if ((rec = load_json(path)) == NULL) {
		tap_ok(0, "%s is JSON", name);
		return;
	}
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "Entries"), 0);
	total = cJSON_GetArraySize(cJSON_GetObjectItem(rec, "Entries"));
	if (split_uri(cJSON_GetStringValue(cJSON_GetObjectItem(e, "RequestUri")),
	    first_host, sizeof(first_host), path, sizeof(path), apiv, sizeof(apiv)) != 0 ||
	    !is_challenge(e)) {
		tap_ok(0, "%s starts with a challenge", name);
		cJSON_Delete(rec);
		return;
	}
	recorded_tenant(e, tenant, sizeof(tenant));
	if (multitenant) {
		const cJSON *second = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "Entries"), 1);

		refuse_other_tenant(name, first_host, path,
		    cJSON_GetStringValue(cJSON_GetObjectItem(second, "RequestMethod")), apiv,
		    cJSON_GetObjectItem(second, "RequestBody"));
	}
	/* Multitenant: the credential's home tenant is another, and it may
	 * follow the vault's challenge; otherwise it has no tenant of its
	 * own and takes the challenge's. */
	cred = multitenant ? credential(HOME_TENANT, true) : credential(NULL, false);
	if (!load(name) || cred == NULL ||
	    (c = vault_client(first_host, apiv, cred)) == NULL) {
		tap_ok(0, "%s: loaded, with a client", name);
		goto out;
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(rec, "Entries")) {
		const char *method = cJSON_GetStringValue(cJSON_GetObjectItem(e, "RequestMethod"));
		long status = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "StatusCode"));
		cJSON *body = cJSON_GetObjectItem(e, "RequestBody");
		struct kb_kv_response *resp = NULL;
		struct kvc_req rq;
		enum kvc_kind kind;

		i++;
		/* kv-client provokes the challenge itself. */
		if (is_challenge(e))
			continue;
		if (split_uri(cJSON_GetStringValue(cJSON_GetObjectItem(e, "RequestUri")),
		    host, sizeof(host), path, sizeof(path), apiv2, sizeof(apiv2)) != 0 ||
		    strcmp(host, first_host) != 0 || strcmp(apiv, apiv2) != 0) {
			tap_ok(0, "%s #%d: the same vault", name, i - 1);
			continue;
		}
		if (cJSON_IsNull(body))
			body = NULL;
		sent++;
		r = kb_kv_request_flags(c, method, path, body, flags_for(method, path), &resp);
		snprintf(label, sizeof(label), "replayed %s #%d: %s %s -> %ld", name, i - 1,
		    method, path, status);
		if (r != 0 || resp->status != status) {
			tap_ok(0, "%s: %s", label, r ? kb_error_detail(r) : "another status");
			if (r == 0)
				tap_diag("got HTTP %ld: %s", resp->status,
				    resp->error_message ? resp->error_message : "");
			kb_kv_response_free(resp);
			continue;
		}
		kind = kvc_kind_of_request(method, path, &rq);
		if (status >= 200 && status < 300)
			kvc_check(label, kind, resp->body, &rq);
		else {
			const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(e, "ResponseBody"), "error"),
			    "code"));

			r = kb_kv_response_error(resp);
			tap_ok(r == kb_kv_status_to_err(status, code) && r != 0 &&
			    resp->error_code && code && strcmp(resp->error_code, code) == 0 &&
			    strstr(kb_error_detail(r), code) != NULL,
			    "%s: %s, with the service's code: %s", label, kb_err_name(r),
			    kb_error_detail(r));
			kvc_check(label, KVC_ERROR, resp->body, NULL);
		}
		kb_kv_response_free(resp);
	}
	st = control("GET", "/_replay/state");
	kb_kv_client_stats(c, &stats);
	tap_ok(cJSON_GetArraySize(cJSON_GetObjectItem(st, "mismatches")) == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(st, "pos")) == total,
	    "%s: the whole conversation, %d of %d entries, as recorded", name,
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "pos")), total);
	{
		const cJSON *m;

		cJSON_ArrayForEach(m, cJSON_GetObjectItem(st, "mismatches"))
			tap_diag("%s", cJSON_GetStringValue(m));
	}
	tap_ok(stats.challenges == 1 && stats.requests == (unsigned long)sent + 1,
	    "%s: one challenge, %d requests after the probe (challenges %lu, "
	    "requests %lu)", name, sent, stats.challenges, stats.requests);
	tap_ok(cJSON_GetNumberValue(cJSON_GetObjectItem(st, "token_requests")) == 1 &&
	    cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(st,
	    "token_tenants"), 0)) != NULL && strcmp(cJSON_GetStringValue(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(st, "token_tenants"), 0)), tenant) == 0,
	    "%s: one token, for the challenge's tenant %s%s", name, tenant,
	    multitenant ? " (not the credential's own)" : "");
	{
		const char *scope = cJSON_GetStringValue(cJSON_GetArrayItem(
		    cJSON_GetObjectItem(st, "token_scopes"), 0));

		tap_diag("%s: token scope %s", name, scope ? scope : "(none)");
	}
	cJSON_Delete(st);
 out:
	kb_kv_client_free(c);
	kb_kv_credential_free(cred);
	cJSON_Delete(rec);
}

/* The replay server does refuse what strays from the recording. */
static void
harness(void)
{
	static const char name[] = "go_TestRotateKey_KV.json";
	kb_kv_credential *cred = credential(NULL, false);
	kb_kv_client *c = NULL;
	struct kb_kv_response *resp = NULL;
	cJSON *body = cJSON_Parse("{\"kty\":\"RSA\"}"), *st;
	int r = -99;

	if (load(name) && cred != NULL &&
	    (c = vault_client("sanitized.vault.azure.net", "7.5", cred)) != NULL)
		r = kb_kv_request_flags(c, "POST", "/keys/testrotatekey2561576831/create",
		    body, KB_KV_NOT_IDEMPOTENT, &resp);
	st = control("GET", "/_replay/state");
	tap_ok(r == 0 && resp->status == 400 && resp->error_code &&
	    strcmp(resp->error_code, "ReplayMismatch") == 0 &&
	    cJSON_GetArraySize(cJSON_GetObjectItem(st, "mismatches")) == 1 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(st, "pos")) == 1,
	    "the replay server refuses a body other than the recorded one (%s)",
	    resp && resp->error_message ? resp->error_message : "no answer");
	cJSON_Delete(st);
	cJSON_Delete(body);
	kb_kv_response_free(resp);
	kb_kv_client_free(c);
	kb_kv_credential_free(cred);
}

int
main(void)
{
	static const char *required[] = {
		"python_test_key_crud_operations_7.6_vault.json",
		"go_TestRotateKey_KV.json",
		"python_test_challenge_auth_multitenant_7.6_vault.json",
		"python_test_challenge_auth_multitenant_7.6_mhsm.json",
	};
	DIR *d;
	struct dirent *de;
	size_t i, n = 0;
	int found = 0;

	port = getenv("KVR_PORT");
	ca = getenv("KVR_CA");
	recdir = getenv("KVR_RECORDINGS");
	if (port == NULL || ca == NULL || recdir == NULL)
		return tap_skip_all("run through t-replay.sh");
	snprintf(ctl_url, sizeof(ctl_url), "https://127.0.0.1:%s", port);
	snprintf(authority, sizeof(authority), "https://127.0.0.1:%s", port);
	if ((d = opendir(recdir)) == NULL)
		return tap_skip_all("no recordings");
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		n++;
		for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
			if (strcmp(de->d_name, required[i]) == 0)
				found++;
		replay(de->d_name);
	}
	closedir(d);
	harness();
	tap_ok(found == 4, "the CRUD, rotate and both multitenant recordings were "
	    "among the %zu replayed", n);
	return tap_done();
}
