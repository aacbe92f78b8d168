/*
 * credential.c: built-in token sources for Key Vault's challenge.
 *
 *  - token file: a bearer token obtained elsewhere (az account
 *    get-access-token), read on every use so a refreshed file is seen;
 *  - client secret, client certificate (a client assertion signed by a
 *    pluggable signer, assertion.c) and workload identity (a federated
 *    token file as the assertion): OAuth 2.0 client credentials against
 *    Entra ID's v2 token endpoint (NOTES.md 2.2, 2.3);
 *  - managed identity: IMDS or App Service (msi.c);
 *  - the Azure SDKs' environment variables, and the cloud table.
 * Every fetched token is cached per tenant and scope and fetched again
 * 5 minutes before it expires.
 *
 * Tokens, secrets and assertions only ever sit in kb_secret or wiped
 * buffers; no message names them.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cred.h"

#define CRED_CACHE_MAX 8
#define CRED_MAX_FILE (64 * 1024)
#define CRED_MAX_TOKEN KB_CRED_MAX_TOKEN
#define CRED_MARGIN 300          /* refresh 5 minutes before expiry */
#define CRED_MAX_RESPONSE KB_CRED_MAX_RESPONSE
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

enum cred_kind {
	CRED_TOKEN_FILE = 1, CRED_CLIENT_SECRET, CRED_CLIENT_CERT, CRED_WORKLOAD,
	CRED_MANAGED
};

struct cred_cache {
	char *tenant;
	char *scope;
	struct kb_secret *token;
	int64_t expiry;
};

struct kb_kv_credential {
	enum cred_kind kind;
	char *path;                  /* token file, federated token file */
	char *tenant_id;             /* client secret, certificate, workload */
	char *client_id;
	char *authority;             /* https://login.microsoftonline.com */
	char *ca_file;
	struct kb_secret *secret;
	struct kb_cred_cert *cert;   /* certificate */
	struct kb_kv_signer signer;
	pthread_mutex_t sign_lock;   /* one signature at a time */
	struct kb_cred_msi *msi;     /* managed identity */
	unsigned long fetches;       /* under lock */
	bool allow_other_tenants;
	long total_ms;
	struct kb_http_pool *pool;
	pthread_mutex_t lock;        /* cache, fetching */
	/* One token request at a time: the others wait for its answer in
	 * the cache rather than each asking the authority (cached_get). */
	bool fetching;
	pthread_cond_t fetched;
	struct cred_cache cache[CRED_CACHE_MAX];
	size_t n_cache;
};

static bool
tenant_ok(const char *t)
{
	size_t i;

	if (t == NULL || t[0] == '\0' || strlen(t) > 128)
		return false;
	for (i = 0; t[i] != '\0'; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '-' || t[i] == '.' ||
		    t[i] == '_'))
			return false;
	return true;
}

/* A token is printable ASCII without spaces (RFC 6750 b64token and more). */
bool
kb_cred_token_ok(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > CRED_MAX_TOKEN)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

/* A number, or a string of digits (IMDS, az), as int64. */
bool
kb_cred_json_int64(const cJSON *j, int64_t *out)
{
	unsigned long long v;

	if (cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble < 9.2e18) {
		*out = (int64_t)j->valuedouble;   /* valueint saturates (NOTES 6.1) */
		return true;
	}
	if (cJSON_IsString(j) && kb_parse_ull(j->valuestring, 0,
	    (unsigned long long)INT64_MAX, &v) == 0) {
		*out = (int64_t)v;
		return true;
	}
	return false;
}

/*
 * exp of a JWT (header.payload.signature, base64url JSON), or 0 when the
 * token is not a JWT or has no exp: opaque tokens are fine.
 */
int64_t
kb_cred_jwt_exp(const unsigned char *tok, size_t n)
{
	const unsigned char *d1, *d2;
	unsigned char *hdr = NULL, *pl = NULL;
	size_t hl = 0, pll = 0;
	cJSON *h = NULL, *p = NULL;
	int64_t exp = 0;

	if ((d1 = memchr(tok, '.', n)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL)
		return 0;
	if (kb_b64url_decode((const char *)tok, (size_t)(d1 - tok), &hdr, &hl) != 0 ||
	    kb_b64url_decode((const char *)d1 + 1, (size_t)(d2 - d1 - 1), &pl, &pll) != 0)
		goto out;
	if ((h = cJSON_ParseWithLength((const char *)hdr, hl)) == NULL ||
	    !cJSON_IsObject(h) || !cJSON_IsString(cJSON_GetObjectItem(h, "alg")) ||
	    (p = cJSON_ParseWithLength((const char *)pl, pll)) == NULL ||
	    !cJSON_IsObject(p))
		goto out;
	if (!kb_cred_json_int64(cJSON_GetObjectItemCaseSensitive(p, "exp"), &exp))
		exp = 0;
 out:
	cJSON_Delete(h);
	cJSON_Delete(p);
	if (hdr != NULL)
		kb_wipe(hdr, hl);
	if (pl != NULL)
		kb_wipe(pl, pll);
	free(hdr);
	free(pl);
	return exp;
}

static int
token_file_get(kb_kv_credential *cred, struct kb_secret **out_token,
    int64_t *out_expiry)
{
	struct kb_secret *tok = NULL;
	struct stat st;
	char *text = NULL, when[32];
	const unsigned char *t = NULL;
	size_t len = 0, n = 0, i;
	cJSON *j = NULL, *at;
	int64_t exp = 0, jexp;
	int r;

	if (stat(cred->path, &st) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the token file %s: %s",
		    cred->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kb_error_set(KB_ERR_CONFIG, "the token file %s is not a "
		    "regular file", cred->path);
	if ((st.st_mode & 077) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the token file %s can be read by "
		    "others; chmod 600 it and get a new token", cred->path);
	if ((r = kb_file_read(cred->path, CRED_MAX_FILE, &text, &len)) != 0)
		return kb_error_set(r, "cannot read the token file %s: %s", cred->path,
		    kb_error_detail(r));
	for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
		;
	if (i < len && text[i] == '{') {
		/* `az account get-access-token` output. */
		if ((j = cJSON_ParseWithLength(text, len)) == NULL ||
		    !cJSON_IsString(at = cJSON_GetObjectItemCaseSensitive(j, "accessToken"))) {
			r = kb_error_set(KB_ERR_CONFIG, "the token file %s is JSON without "
			    "an accessToken string", cred->path);
			goto out;
		}
		t = (const unsigned char *)at->valuestring;
		n = strlen(at->valuestring);
		if (!kb_cred_json_int64(cJSON_GetObjectItemCaseSensitive(j, "expires_on"), &exp))
			exp = 0;
	} else {
		t = (const unsigned char *)text + i;
		n = strcspn((const char *)t, "\r\n");
		while (n > 0 && isspace(t[n - 1]))
			n--;
	}
	if (!kb_cred_token_ok(t, n)) {
		r = kb_error_set(KB_ERR_CONFIG, "the token file %s holds no token "
		    "(one line of printable characters, at most %d bytes)", cred->path,
		    CRED_MAX_TOKEN);
		goto out;
	}
	if ((jexp = kb_cred_jwt_exp(t, n)) != 0)
		exp = exp == 0 || jexp < exp ? jexp : exp;
	if (exp != 0 && exp <= kb_now_unix()) {
		if (kb_time_format(exp, when, sizeof(when)) != 0)
			snprintf(when, sizeof(when), "%lld", (long long)exp);
		r = kb_error_set(KB_ERR_CONFIG, "the token in %s expired at %s; get a "
		    "new one (for example: az account get-access-token --resource "
		    "https://vault.azure.net) and write it there", cred->path, when);
		goto out;
	}
	if ((r = kb_secret_from(t, n, &tok)) != 0)
		goto out;
	*out_token = tok;
	*out_expiry = exp;
	r = 0;
 out:
	if (j != NULL) {
		kb_kv_json_wipe(j);
		cJSON_Delete(j);
	}
	if (text != NULL)
		kb_wipe(text, len);
	free(text);
	return r;
}

/* ------------------------------------------------------------------ cache */

static void
cache_entry_clear(struct cred_cache *e)
{
	free(e->tenant);
	free(e->scope);
	kb_secret_free(&e->token);
	memset(e, 0, sizeof(*e));
}

/* Under cred->lock: a copy of a cached token still good for 5 minutes. */
static int
cache_get(kb_kv_credential *cred, const char *tenant, const char *scope,
    struct kb_secret **out, int64_t *expiry)
{
	int64_t now = kb_now_unix();
	size_t i;

	for (i = 0; i < cred->n_cache; i++) {
		struct cred_cache *e = &cred->cache[i];

		if (strcmp(e->tenant, tenant) == 0 && strcmp(e->scope, scope) == 0 &&
		    now < e->expiry - CRED_MARGIN) {
			*expiry = e->expiry;
			return kb_secret_from(e->token->data, e->token->len, out);
		}
	}
	return KB_ERR_NOT_FOUND;
}

static void
cache_put(kb_kv_credential *cred, const char *tenant, const char *scope,
    const struct kb_secret *tok, int64_t expiry)
{
	struct cred_cache e, *slot = NULL;
	size_t i;

	memset(&e, 0, sizeof(e));
	if ((e.tenant = kb_strdup(tenant)) == NULL ||
	    (e.scope = kb_strdup(scope)) == NULL ||
	    kb_secret_from(tok->data, tok->len, &e.token) != 0) {
		cache_entry_clear(&e);
		return;                      /* no cache: fetched again next time */
	}
	e.expiry = expiry;
	for (i = 0; i < cred->n_cache && slot == NULL; i++)
		if (strcmp(cred->cache[i].tenant, tenant) == 0 &&
		    strcmp(cred->cache[i].scope, scope) == 0)
			slot = &cred->cache[i];
	if (slot == NULL && cred->n_cache < CRED_CACHE_MAX)
		slot = &cred->cache[cred->n_cache++];
	if (slot == NULL) {
		/* Full: the entry that expires first goes. */
		slot = &cred->cache[0];
		for (i = 1; i < cred->n_cache; i++)
			if (cred->cache[i].expiry < slot->expiry)
				slot = &cred->cache[i];
	}
	cache_entry_clear(slot);
	*slot = e;
}


/* ------------------------------------------------- OAuth client credentials */

/*
 * The federated token (workload identity), read again every time: the
 * platform rotates the file.  Its mode is not checked (cred.h).
 */
static int
federated_read(kb_kv_credential *cred, struct kb_secret **out)
{
	struct stat st;
	char *text = NULL, when[32];
	const unsigned char *t;
	size_t len = 0, n, i;
	int64_t exp;
	int r;

	if (stat(cred->path, &st) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the federated token "
		    "file %s: %s; check AZURE_FEDERATED_TOKEN_FILE and the projected "
		    "service account token", cred->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kb_error_set(KB_ERR_CONFIG, "the federated token file %s is "
		    "not a regular file", cred->path);
	if ((r = kb_file_read(cred->path, CRED_MAX_FILE, &text, &len)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the federated token "
		    "file %s: %s", cred->path, kb_error_detail(r));
	for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
		;
	t = (const unsigned char *)text + i;
	for (n = len - i; n > 0 && isspace(t[n - 1]); n--)
		;
	if (!kb_cred_token_ok(t, n)) {
		r = kb_error_set(KB_ERR_CONFIG, "the federated token file %s holds no "
		    "token (printable characters without spaces, at most %d bytes)",
		    cred->path, CRED_MAX_TOKEN);
		goto out;
	}
	if ((exp = kb_cred_jwt_exp(t, n)) != 0 && exp <= kb_now_unix()) {
		if (kb_time_format(exp, when, sizeof(when)) != 0)
			snprintf(when, sizeof(when), "%lld", (long long)exp);
		r = kb_error_set(KB_ERR_CONFIG, "the federated token in %s expired at "
		    "%s; the platform should have replaced it: check that the "
		    "service account token is still projected there", cred->path, when);
		goto out;
	}
	r = kb_secret_from(t, n, out);
 out:
	kb_wipe(text, len);
	free(text);
	return r;
}

/* The client's proof on the form: client_secret, or a client assertion. */
static int
client_proof(kb_kv_credential *cred, const char *aud, struct kb_buf *form)
{
	struct kb_secret *a = NULL;
	int r;

	switch (cred->kind) {
	case CRED_CLIENT_SECRET:
		if ((r = kb_buf_appendf(form, "&client_secret=")) != 0)
			return r;
		return kb_http_form_escape(form, (const char *)cred->secret->data,
		    cred->secret->len);
	case CRED_CLIENT_CERT:
		pthread_mutex_lock(&cred->sign_lock);
		r = kb_cred_assertion(cred->cert, &cred->signer, aud, cred->client_id,
		    kb_now_unix(), &a);
		pthread_mutex_unlock(&cred->sign_lock);
		break;
	case CRED_WORKLOAD:
		r = federated_read(cred, &a);
		break;
	default:
		return KB_ERR_INTERNAL;
	}
	if (r == 0 &&
	    (r = kb_buf_appendf(form, "&client_assertion_type=")) == 0 &&
	    (r = kb_http_form_escape(form, ASSERTION_TYPE, strlen(ASSERTION_TYPE))) == 0 &&
	    (r = kb_buf_appendf(form, "&client_assertion=")) == 0)
		r = kb_http_form_escape(form, (const char *)a->data, a->len);
	kb_secret_free(&a);
	return r;
}

/*
 * The token endpoint's answer to a client credentials request (RFC 6749
 * 5.1, 5.2): a bearer access_token and expires_in on 200, else the
 * service's error and description in the sentence.
 */
int
kb_cred_token_answer(const char *endpoint, const char *client_id,
    const char *tenant, long status, const unsigned char *body, size_t len,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	struct kb_secret *tok = NULL;
	cJSON *j = NULL, *at, *err, *desc;
	int64_t expires_in = 0;
	size_t dl;
	int r;

	j = cJSON_ParseWithLength((const char *)body, len);
	if (status != 200) {
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		desc = cJSON_GetObjectItemCaseSensitive(j, "error_description");
		dl = cJSON_IsString(desc) ? strcspn(desc->valuestring, "\r\n") : 0;
		r = kb_error_set(status == 400 || status == 401 ? KB_ERR_DENIED :
		    KB_ERR_UNREACHABLE, "%s refused a token for client %.100s in tenant "
		    "%.100s (HTTP %ld%s%.64s%s%.*s)", endpoint, client_id, tenant,
		    status, cJSON_IsString(err) ? ", " : "",
		    cJSON_IsString(err) ? err->valuestring : "", dl ? ": " : "",
		    (int)(dl > 300 ? 300 : dl), dl ? desc->valuestring : "");
		goto out;
	}
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	if (!cJSON_IsString(at) ||
	    !kb_cred_token_ok((const unsigned char *)at->valuestring, strlen(at->valuestring)) ||
	    !kb_cred_json_int64(cJSON_GetObjectItemCaseSensitive(j, "expires_in"), &expires_in) ||
	    (cJSON_GetObjectItemCaseSensitive(j, "token_type") != NULL &&
	    !kb_ascii_ieq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j,
	        "token_type")), "Bearer"))) {
		r = kb_error_set(KB_ERR_PROTOCOL, "%s answered without a bearer "
		    "access_token and expires_in", endpoint);
		goto out;
	}
	if ((r = kb_secret_from(at->valuestring, strlen(at->valuestring), &tok)) != 0)
		goto out;
	*out_token = tok;
	*out_expiry = kb_now_unix() + (expires_in > 86400 * 365 ? 86400 * 365 : expires_in);
	tok = NULL;
	r = 0;
 out:
	if (j != NULL) {
		kb_kv_json_wipe(j);
		cJSON_Delete(j);
	}
	kb_secret_free(&tok);
	return r;
}

static int
client_fetch(kb_kv_credential *cred, const char *tenant,
    const char *scope, struct kb_secret **out_token, int64_t *out_expiry)
{
	static const char *const hdrs[] = { "Accept: application/json", NULL };
	struct kb_http_req req;
	struct kb_http_resp hr;
	struct kb_http_outcome how;
	struct kb_buf form, url;
	char endpoint[300];
	int r;

	kb_http_resp_init(&hr);
	kb_buf_init_secret(&form, 64 * 1024);
	kb_buf_init(&url, 2048);
	snprintf(endpoint, sizeof(endpoint), "the token endpoint %.200s", cred->authority);
	/* RFC 6749 4.4; the proof as NOTES.md 2.2 says. */
	if ((r = kb_buf_appendf(&url, "%s/%s/oauth2/v2.0/token", cred->authority,
	    tenant)) != 0 ||
	    (r = kb_buf_appendf(&form, "client_id=")) != 0 ||
	    (r = kb_http_form_escape(&form, cred->client_id, strlen(cred->client_id))) != 0 ||
	    (r = kb_buf_appendf(&form, "&scope=")) != 0 ||
	    (r = kb_http_form_escape(&form, scope, strlen(scope))) != 0 ||
	    (r = client_proof(cred, (const char *)url.data, &form)) != 0 ||
	    (r = kb_buf_appendf(&form, "&grant_type=client_credentials")) != 0)
		goto out;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = (const char *)url.data;
	req.endpoint = endpoint;
	req.headers = hdrs;
	req.body = form.data;
	req.body_len = form.len;
	req.content_type = "application/x-www-form-urlencoded";
	req.connect_ms = KB_KV_DEFAULT_CONNECT_MS;
	req.total_ms = cred->total_ms;
	req.max_body = CRED_MAX_RESPONSE;
	req.ca_file = cred->ca_file;
	req.https_only = true;
	req.secret_body = true;
	req.pool = cred->pool;
	if ((r = kb_http_perform(&req, &hr, &how)) != 0)
		goto out;
	r = kb_cred_token_answer(endpoint, cred->client_id, tenant, hr.status,
	    hr.body.data, hr.body.len, out_token, out_expiry);
 out:
	kb_http_resp_clear(&hr);
	kb_buf_free(&form);
	kb_buf_free(&url);
	return r;
}

static const char *
kind_name(enum cred_kind k, const kb_kv_credential *c)
{
	switch (k) {
	case CRED_TOKEN_FILE:
		return "token-file";
	case CRED_CLIENT_SECRET:
		return "client-secret";
	case CRED_CLIENT_CERT:
		return "client-certificate";
	case CRED_WORKLOAD:
		return "workload-identity";
	case CRED_MANAGED:
		return c != NULL && c->msi != NULL && kb_cred_msi_is_app_service(c->msi) ?
		    "managed-identity-app-service" : "managed-identity-imds";
	}
	return "unknown";
}

/* A token from the cache, else fetched (and cached) for tenant and scope. */
static int
cached_get(kb_kv_credential *cred, const char *tenant, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	struct kb_secret *tok = NULL;
	int64_t exp = 0;
	int r;

	pthread_mutex_lock(&cred->lock);
	/*
	 * Threads that start together (a bulk job's first requests) would
	 * each ask the authority for the same token; the first asks, the
	 * others wait and find its token in the cache.  After a failure the
	 * next waiter asks again, for its own answer.
	 */
	while ((r = cache_get(cred, tenant, scope, &tok, &exp)) == KB_ERR_NOT_FOUND &&
	    cred->fetching)
		pthread_cond_wait(&cred->fetched, &cred->lock);
	if (r != KB_ERR_NOT_FOUND) {
		pthread_mutex_unlock(&cred->lock);
		if (r == 0)
			goto done;
		return r;
	}
	cred->fetching = true;
	pthread_mutex_unlock(&cred->lock);
	if (cred->kind == CRED_MANAGED)
		r = kb_cred_msi_fetch(cred->msi, scope, &tok, &exp);
	else
		r = client_fetch(cred, tenant, scope, &tok, &exp);
	pthread_mutex_lock(&cred->lock);
	cred->fetching = false;
	if (r == 0) {
		cred->fetches++;
		cache_put(cred, tenant, scope, tok, exp);
	}
	pthread_cond_broadcast(&cred->fetched);
	pthread_mutex_unlock(&cred->lock);
	if (r != 0)
		return r;
 done:
	*out_token = tok;
	*out_expiry = exp;
	return 0;
}

static int
client_get(kb_kv_credential *cred, const char *tenant, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	if (cred->tenant_id != NULL && tenant != NULL &&
	    strcasecmp(tenant, cred->tenant_id) != 0 && !cred->allow_other_tenants)
		return kb_error_set(KB_ERR_DENIED, "the vault asks for a token from "
		    "tenant %.128s, but the credential is for tenant %.128s; configure "
		    "the vault's tenant, or allow other tenants", tenant, cred->tenant_id);
	if (tenant == NULL)
		tenant = cred->tenant_id;
	if (!tenant_ok(tenant))
		return kb_error_set(KB_ERR_CONFIG, "no tenant for the %s credential: "
		    "the vault's challenge named none; set the tenant "
		    "(AZURE_TENANT_ID)", kind_name(cred->kind, cred));
	return cached_get(cred, tenant, scope, out_token, out_expiry);
}

static int
cred_get_token(void *ctx, const char *tenant, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	kb_kv_credential *cred = ctx;

	if (scope == NULL)
		return kb_error_set(KB_ERR_INTERNAL, "no scope for a token");
	switch (cred->kind) {
	case CRED_TOKEN_FILE:
		return token_file_get(cred, out_token, out_expiry);
	case CRED_CLIENT_SECRET:
	case CRED_CLIENT_CERT:
	case CRED_WORKLOAD:
		return client_get(cred, tenant, scope, out_token, out_expiry);
	case CRED_MANAGED:
		/* The identity's own tenant: the challenge's is not ours to pick. */
		return cached_get(cred, "", scope, out_token, out_expiry);
	}
	return KB_ERR_INTERNAL;
}

static kb_kv_credential *
cred_alloc(enum cred_kind kind)
{
	kb_kv_credential *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->kind = kind;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->fetched, NULL);
	pthread_mutex_init(&c->sign_lock, NULL);
	return c;
}

int
kb_kv_credential_token_file(const char *path, kb_kv_credential **out)
{
	kb_kv_credential *c = NULL;

	if (path == NULL || path[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no token file given");
	if ((c = cred_alloc(CRED_TOKEN_FILE)) == NULL ||
	    (c->path = kb_strdup(path)) == NULL) {
		kb_kv_credential_free(c);
		return KB_ERR_ALLOC;
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------ clouds */

/* NOTES.md 2.5 (azure-cli's cloud.py; Key Vault's DNS suffixes). */
static const struct kb_kv_cloud clouds[] = {
	{ "public", "AzureCloud", "https://login.microsoftonline.com",
	  ".vault.azure.net", ".managedhsm.azure.net",
	  "https://vault.azure.net/.default", "https://managedhsm.azure.net/.default" },
	{ "china", "AzureChinaCloud", "https://login.chinacloudapi.cn",
	  ".vault.azure.cn", ".managedhsm.azure.cn",
	  "https://vault.azure.cn/.default", "https://managedhsm.azure.cn/.default" },
	{ "usgov", "AzureUSGovernment", "https://login.microsoftonline.us",
	  ".vault.usgovcloudapi.net", ".managedhsm.usgovcloudapi.net",
	  "https://vault.usgovcloudapi.net/.default",
	  "https://managedhsm.usgovcloudapi.net/.default" },
};
#define N_CLOUDS (sizeof(clouds) / sizeof(clouds[0]))

const struct kb_kv_cloud *
kb_kv_clouds(size_t *n)
{
	*n = N_CLOUDS;
	return clouds;
}

const struct kb_kv_cloud *
kb_kv_cloud_by_name(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < N_CLOUDS; i++)
		if (strcasecmp(name, clouds[i].name) == 0 ||
		    strcasecmp(name, clouds[i].azure_name) == 0)
			return &clouds[i];
	return NULL;
}

/* host ends with suffix (".vault.azure.net") after a label, or is it
 * without its dot. */
static bool
host_in(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl = strlen(suffix);

	if (hl == sl - 1)
		return strcasecmp(host, suffix + 1) == 0;
	return hl > sl && strcasecmp(host + hl - sl, suffix) == 0 &&
	    host[hl - sl - 1] != '.';
}

const struct kb_kv_cloud *
kb_kv_cloud_for_host(const char *host)
{
	size_t i;

	for (i = 0; host != NULL && i < N_CLOUDS; i++)
		if (host_in(host, clouds[i].vault_suffix) ||
		    host_in(host, clouds[i].mhsm_suffix))
			return &clouds[i];
	return NULL;
}

/*
 * The authority: the caller's, else the cloud's, else
 * $AZURE_AUTHORITY_HOST, else the public cloud's.  https only.
 */
static int
authority_pick(const char *opt, const char *cloud, char **out)
{
	const struct kb_kv_cloud *cl = NULL;
	const char *auth = opt;
	bool from_env = false;
	size_t len;

	if (cloud != NULL && (cl = kb_kv_cloud_by_name(cloud)) == NULL)
		return kb_error_set(KB_ERR_CONFIG, "unknown cloud %.64s; the clouds "
		    "are public, china and usgov", cloud);
	if ((auth == NULL || auth[0] == '\0') && cl == NULL) {
		auth = secure_getenv("AZURE_AUTHORITY_HOST");
		from_env = auth != NULL && auth[0] != '\0';
	}
	if (auth == NULL || auth[0] == '\0')
		auth = cl != NULL ? cl->authority_host : clouds[0].authority_host;
	if (strncasecmp(auth, "https://", 8) != 0 || strlen(auth) > 512 ||
	    strpbrk(auth, "?#@ \t\r\n") != NULL)
		return kb_error_set(from_env ? KB_ERR_CONFIG : KB_ERR_INVALID,
		    "the authority host %.200s%s is not an https:// URL; credentials "
		    "are never sent in clear", auth,
		    from_env ? " (AZURE_AUTHORITY_HOST)" : "");
	len = strlen(auth);
	while (len > 8 && auth[len - 1] == '/')
		len--;
	if ((*out = strndup(auth, len)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

/* What the three client-credential kinds share. */
struct app_opts {
	const char *what;
	const char *tenant_id;
	const char *client_id;
	const char *authority_host;
	const char *cloud;
	const char *ca_file;
	bool allow_other_tenants;
	long total_ms;
};

static int
app_new(enum cred_kind kind, const struct app_opts *o, kb_kv_credential **out)
{
	kb_kv_credential *c = NULL;
	int r = KB_ERR_ALLOC;

	if (o->client_id == NULL || o->client_id[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "a %s credential needs a client id",
		    o->what);
	if (strlen(o->client_id) > 256)
		return kb_error_set(KB_ERR_INVALID, "the client id is too long");
	if (o->tenant_id != NULL && !tenant_ok(o->tenant_id))
		return kb_error_set(KB_ERR_INVALID, "the tenant %.128s is not a tenant "
		    "id or domain", o->tenant_id);
	if ((c = cred_alloc(kind)) == NULL)
		goto out;
	if ((r = authority_pick(o->authority_host, o->cloud, &c->authority)) != 0)
		goto out;
	r = KB_ERR_ALLOC;
	if ((c->client_id = kb_strdup(o->client_id)) == NULL ||
	    (o->tenant_id != NULL && (c->tenant_id = kb_strdup(o->tenant_id)) == NULL) ||
	    (o->ca_file != NULL && (c->ca_file = kb_strdup(o->ca_file)) == NULL))
		goto out;
	if ((r = kb_http_pool_new(&c->pool)) != 0)
		goto out;
	c->allow_other_tenants = o->allow_other_tenants;
	c->total_ms = o->total_ms > 0 ? o->total_ms : KB_KV_DEFAULT_TOTAL_MS;
	*out = c;
	c = NULL;
	r = 0;
 out:
	kb_kv_credential_free(c);
	return r;
}

int
kb_kv_credential_client_secret(const struct kb_kv_client_secret_options *o,
    kb_kv_credential **out)
{
	struct app_opts a;
	kb_kv_credential *c = NULL;
	int r;

	if (o == NULL || o->client_id == NULL || o->client_id[0] == '\0' ||
	    o->client_secret == NULL || o->client_secret->len == 0)
		return kb_error_set(KB_ERR_INVALID, "a client secret credential needs "
		    "a client id and a secret");
	a = (struct app_opts){ "client secret", o->tenant_id, o->client_id,
	    o->authority_host, o->cloud, o->ca_file, o->allow_other_tenants,
	    o->total_ms };
	if ((r = app_new(CRED_CLIENT_SECRET, &a, &c)) != 0)
		return r;
	if ((r = kb_secret_from(o->client_secret->data, o->client_secret->len,
	    &c->secret)) != 0) {
		kb_kv_credential_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int
kb_kv_credential_client_cert(const struct kb_kv_client_cert_options *o,
    kb_kv_credential **out)
{
	struct app_opts a;
	kb_kv_credential *c = NULL;
	int r;

	if (o == NULL || o->cert_file == NULL || o->cert_file[0] == '\0' ||
	    o->signer == NULL || o->signer->sign_ps256 == NULL)
		return kb_error_set(KB_ERR_INVALID, "a certificate credential needs a "
		    "certificate file and a signer");
	a = (struct app_opts){ "certificate", o->tenant_id, o->client_id,
	    o->authority_host, o->cloud, o->ca_file, o->allow_other_tenants,
	    o->total_ms };
	if ((r = app_new(CRED_CLIENT_CERT, &a, &c)) != 0)
		return r;
	if ((r = kb_cred_cert_load(o->cert_file, o->signer, &c->cert)) != 0) {
		kb_kv_credential_free(c);
		return r;
	}
	c->signer = *o->signer;          /* transferred */
	*out = c;
	return 0;
}

int
kb_kv_credential_workload(const struct kb_kv_workload_options *o,
    kb_kv_credential **out)
{
	struct app_opts a;
	kb_kv_credential *c = NULL;
	int r;

	if (o == NULL || o->token_file == NULL || o->token_file[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "a workload identity credential "
		    "needs a federated token file");
	a = (struct app_opts){ "workload identity", o->tenant_id, o->client_id,
	    o->authority_host, o->cloud, o->ca_file, o->allow_other_tenants,
	    o->total_ms };
	if ((r = app_new(CRED_WORKLOAD, &a, &c)) != 0)
		return r;
	if ((c->path = kb_strdup(o->token_file)) == NULL) {
		kb_kv_credential_free(c);
		return KB_ERR_ALLOC;
	}
	*out = c;
	return 0;
}

int
kb_kv_credential_managed_identity(const struct kb_kv_managed_identity_options *o,
    kb_kv_credential **out)
{
	struct kb_kv_managed_identity_options none;
	kb_kv_credential *c = NULL;
	int r;

	if (o == NULL) {
		memset(&none, 0, sizeof(none));
		o = &none;
	}
	if ((c = cred_alloc(CRED_MANAGED)) == NULL)
		return KB_ERR_ALLOC;
	if ((r = kb_cred_msi_new(o, &c->msi)) != 0) {
		kb_kv_credential_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------------- environment */

static const char *
env(const char *name)
{
	const char *v = secure_getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
kb_kv_credential_from_env(const struct kb_kv_env_options *eo,
    kb_kv_credential **out)
{
	struct kb_kv_env_options none;
	const char *tenant = env("AZURE_TENANT_ID"), *client = env("AZURE_CLIENT_ID");
	const char *secret = env("AZURE_CLIENT_SECRET");
	const char *cert = env("AZURE_CLIENT_CERTIFICATE_PATH");
	const char *fed = env("AZURE_FEDERATED_TOKEN_FILE");
	const char *pw = env("AZURE_CLIENT_CERTIFICATE_PASSWORD");
	struct kb_secret *s = NULL;
	struct kb_kv_signer signer;
	int r;

	if (eo == NULL) {
		memset(&none, 0, sizeof(none));
		eo = &none;
	}
	memset(&signer, 0, sizeof(signer));
	if ((secret != NULL || cert != NULL || fed != NULL) &&
	    (tenant == NULL || client == NULL))
		return kb_error_set(KB_ERR_CONFIG, "%s is set but AZURE_TENANT_ID and "
		    "AZURE_CLIENT_ID are not both set; set them to the application's "
		    "tenant and client id", secret != NULL ? "AZURE_CLIENT_SECRET" :
		    cert != NULL ? "AZURE_CLIENT_CERTIFICATE_PATH" :
		    "AZURE_FEDERATED_TOKEN_FILE");
	if (secret != NULL) {
		struct kb_kv_client_secret_options o;

		memset(&o, 0, sizeof(o));
		if ((r = kb_secret_from(secret, strlen(secret), &s)) != 0)
			return r;
		o.tenant_id = tenant;
		o.client_id = client;
		o.client_secret = s;
		o.cloud = eo->cloud;
		o.ca_file = eo->ca_file;
		o.allow_other_tenants = eo->allow_other_tenants;
		o.total_ms = eo->total_ms;
		r = kb_kv_credential_client_secret(&o, out);
		kb_secret_free(&s);
		return r;
	}
	if (cert != NULL) {
		struct kb_kv_client_cert_options o;

		if (pw != NULL && (r = kb_secret_from(pw, strlen(pw), &s)) != 0)
			return r;
		r = kb_kv_signer_pem_file(cert, s, &signer);
		kb_secret_free(&s);
		if (r != 0)
			return r;
		memset(&o, 0, sizeof(o));
		o.tenant_id = tenant;
		o.client_id = client;
		o.cert_file = cert;
		o.signer = &signer;
		o.cloud = eo->cloud;
		o.ca_file = eo->ca_file;
		o.allow_other_tenants = eo->allow_other_tenants;
		o.total_ms = eo->total_ms;
		if ((r = kb_kv_credential_client_cert(&o, out)) != 0)
			signer.free_ctx(signer.ctx);
		return r;
	}
	if (fed != NULL) {
		struct kb_kv_workload_options o;

		memset(&o, 0, sizeof(o));
		o.tenant_id = tenant;
		o.client_id = client;
		o.token_file = fed;
		o.cloud = eo->cloud;
		o.ca_file = eo->ca_file;
		o.allow_other_tenants = eo->allow_other_tenants;
		o.total_ms = eo->total_ms;
		return kb_kv_credential_workload(&o, out);
	}
	if (env("IDENTITY_ENDPOINT") != NULL && env("IDENTITY_HEADER") != NULL) {
		struct kb_kv_managed_identity_options o;

		memset(&o, 0, sizeof(o));
		o.kind = KB_KV_MI_APP_SERVICE;
		o.client_id = client;
		o.ca_file = eo->ca_file;
		o.total_ms = eo->total_ms;
		return kb_kv_credential_managed_identity(&o, out);
	}
	return kb_error_set(KB_ERR_CONFIG, "no Azure credential in the environment: "
	    "set AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, "
	    "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE (on an "
	    "Azure VM, use its managed identity instead)");
}

/* ------------------------------------------------------------------ common */

void
kb_kv_credential_source(kb_kv_credential *cred, struct kb_kv_token_source *out)
{
	out->get_token = cred_get_token;
	out->ctx = cred;
}

const char *
kb_kv_credential_kind(const kb_kv_credential *cred)
{
	return cred != NULL ? kind_name(cred->kind, cred) : "none";
}

unsigned long
kb_kv_credential_fetches(kb_kv_credential *cred)
{
	unsigned long n;

	pthread_mutex_lock(&cred->lock);
	n = cred->fetches;
	pthread_mutex_unlock(&cred->lock);
	return n;
}

void
kb_kv_credential_free(kb_kv_credential *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_cache; i++)
		cache_entry_clear(&c->cache[i]);
	kb_secret_free(&c->secret);
	kb_http_pool_free(c->pool);
	kb_cred_cert_free(c->cert);
	if (c->signer.free_ctx != NULL)
		c->signer.free_ctx(c->signer.ctx);
	kb_cred_msi_free(c->msi);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->fetched);
	pthread_mutex_destroy(&c->sign_lock);
	free(c->path);
	free(c->tenant_id);
	free(c->client_id);
	free(c->authority);
	free(c->ca_file);
	free(c);
}
