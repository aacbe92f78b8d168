/*
 * credential.c: built-in token sources for Key Vault's challenge.
 *
 *  - token file: a bearer token obtained elsewhere (az account
 *    get-access-token), read on every use so a refreshed file is seen;
 *  - client secret: OAuth 2.0 client credentials against Entra ID's v2
 *    token endpoint (NOTES.md 2.2), tokens cached per tenant and scope.
 *
 * Tokens and the client secret only ever sit in kb_secret or wiped
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

#include "internal.h"

#define CRED_CACHE_MAX 8
#define CRED_MAX_FILE (64 * 1024)
#define CRED_MAX_TOKEN 16384
#define CRED_MARGIN 300          /* refresh 5 minutes before expiry */
#define CRED_MAX_RESPONSE (256 * 1024)

enum cred_kind { CRED_TOKEN_FILE = 1, CRED_CLIENT_SECRET };

struct cred_cache {
	char *tenant;
	char *scope;
	struct kb_secret *token;
	int64_t expiry;
};

struct kb_kv_credential {
	enum cred_kind kind;
	char *path;                  /* token file */
	char *tenant_id;             /* client secret */
	char *client_id;
	char *authority;             /* https://login.microsoftonline.com */
	char *ca_file;
	struct kb_secret *secret;
	bool allow_other_tenants;
	long total_ms;
	struct kb_http_pool *pool;
	pthread_mutex_t lock;        /* cache */
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
static bool
token_ok(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > CRED_MAX_TOKEN)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

/* Wipe a cJSON string before the tree goes (cJSON's free does not). */
static void
json_wipe_string(cJSON *j)
{
	if (cJSON_IsString(j) && j->valuestring != NULL)
		kb_wipe(j->valuestring, strlen(j->valuestring));
}

/* A number, or a string of digits (IMDS, az), as int64. */
static bool
json_int64(const cJSON *j, int64_t *out)
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
static int64_t
jwt_exp(const unsigned char *tok, size_t n)
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
	if (!json_int64(cJSON_GetObjectItemCaseSensitive(p, "exp"), &exp))
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
		if (!json_int64(cJSON_GetObjectItemCaseSensitive(j, "expires_on"), &exp))
			exp = 0;
	} else {
		t = (const unsigned char *)text + i;
		n = strcspn((const char *)t, "\r\n");
		while (n > 0 && isspace(t[n - 1]))
			n--;
	}
	if (!token_ok(t, n)) {
		r = kb_error_set(KB_ERR_CONFIG, "the token file %s holds no token "
		    "(one line of printable characters, at most %d bytes)", cred->path,
		    CRED_MAX_TOKEN);
		goto out;
	}
	if ((jexp = jwt_exp(t, n)) != 0)
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
		json_wipe_string(cJSON_GetObjectItemCaseSensitive(j, "accessToken"));
		cJSON_Delete(j);
	}
	if (text != NULL)
		kb_wipe(text, len);
	free(text);
	return r;
}

/* ----------------------------------------------------------- client secret */

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
	if (slot == NULL)
		slot = &cred->cache[0];      /* full: the oldest entry goes */
	cache_entry_clear(slot);
	*slot = e;
}

static int
client_secret_fetch(kb_kv_credential *cred, const char *tenant,
    const char *scope, struct kb_secret **out_token, int64_t *out_expiry)
{
	static const char *const hdrs[] = { "Accept: application/json", NULL };
	struct kb_http_req req;
	struct kb_http_resp hr;
	struct kb_http_outcome how;
	struct kb_buf form, url;
	struct kb_secret *tok = NULL;
	cJSON *j = NULL, *at, *err, *desc;
	char endpoint[300];
	int64_t expires_in = 0;
	size_t dl;
	int r;

	kb_http_resp_init(&hr);
	kb_buf_init_secret(&form, 64 * 1024);
	kb_buf_init(&url, 2048);
	snprintf(endpoint, sizeof(endpoint), "the token endpoint %.200s", cred->authority);
	/* RFC 6749 4.4 with client_secret in the body (NOTES.md 2.2). */
	if ((r = kb_buf_appendf(&url, "%s/%s/oauth2/v2.0/token", cred->authority,
	    tenant)) != 0 ||
	    (r = kb_buf_appendf(&form, "client_id=")) != 0 ||
	    (r = kb_http_form_escape(&form, cred->client_id, strlen(cred->client_id))) != 0 ||
	    (r = kb_buf_appendf(&form, "&scope=")) != 0 ||
	    (r = kb_http_form_escape(&form, scope, strlen(scope))) != 0 ||
	    (r = kb_buf_appendf(&form, "&client_secret=")) != 0 ||
	    (r = kb_http_form_escape(&form, (const char *)cred->secret->data,
	        cred->secret->len)) != 0 ||
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
	j = cJSON_ParseWithLength((const char *)hr.body.data, hr.body.len);
	if (hr.status != 200) {
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		desc = cJSON_GetObjectItemCaseSensitive(j, "error_description");
		dl = cJSON_IsString(desc) ? strcspn(desc->valuestring, "\r\n") : 0;
		r = kb_error_set(hr.status == 400 || hr.status == 401 ? KB_ERR_DENIED :
		    KB_ERR_UNREACHABLE, "%s refused a token for client %.100s in tenant "
		    "%.100s (HTTP %ld%s%.64s%s%.*s)", endpoint, cred->client_id, tenant,
		    hr.status, cJSON_IsString(err) ? ", " : "",
		    cJSON_IsString(err) ? err->valuestring : "", dl ? ": " : "",
		    (int)(dl > 300 ? 300 : dl), dl ? desc->valuestring : "");
		goto out;
	}
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	if (!cJSON_IsString(at) ||
	    !token_ok((const unsigned char *)at->valuestring, strlen(at->valuestring)) ||
	    !json_int64(cJSON_GetObjectItemCaseSensitive(j, "expires_in"), &expires_in) ||
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
		json_wipe_string(cJSON_GetObjectItemCaseSensitive(j, "access_token"));
		cJSON_Delete(j);
	}
	kb_secret_free(&tok);
	kb_http_resp_clear(&hr);
	kb_buf_free(&form);
	kb_buf_free(&url);
	return r;
}

static int
client_secret_get(kb_kv_credential *cred, const char *tenant, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	struct kb_secret *tok = NULL;
	int64_t exp = 0;
	int r;

	if (cred->tenant_id != NULL && tenant != NULL &&
	    strcasecmp(tenant, cred->tenant_id) != 0 && !cred->allow_other_tenants)
		return kb_error_set(KB_ERR_DENIED, "the vault asks for a token from "
		    "tenant %.128s, but the credential is for tenant %.128s; configure "
		    "the vault's tenant, or allow other tenants", tenant, cred->tenant_id);
	if (tenant == NULL)
		tenant = cred->tenant_id;
	if (!tenant_ok(tenant))
		return kb_error_set(KB_ERR_CONFIG, "no tenant for the client secret "
		    "credential: the vault's challenge named none; set the tenant "
		    "(AZURE_TENANT_ID)");
	pthread_mutex_lock(&cred->lock);
	r = cache_get(cred, tenant, scope, &tok, &exp);
	pthread_mutex_unlock(&cred->lock);
	if (r == 0)
		goto done;
	if (r != KB_ERR_NOT_FOUND)
		return r;
	if ((r = client_secret_fetch(cred, tenant, scope, &tok, &exp)) != 0)
		return r;
	pthread_mutex_lock(&cred->lock);
	cache_put(cred, tenant, scope, tok, exp);
	pthread_mutex_unlock(&cred->lock);
 done:
	*out_token = tok;
	*out_expiry = exp;
	return 0;
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
		return client_secret_get(cred, tenant, scope, out_token, out_expiry);
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

int
kb_kv_credential_client_secret(const struct kb_kv_client_secret_options *o,
    kb_kv_credential **out)
{
	kb_kv_credential *c = NULL;
	const char *auth;
	size_t len;
	int r = KB_ERR_ALLOC;

	if (o == NULL || o->client_id == NULL || o->client_id[0] == '\0' ||
	    o->client_secret == NULL || o->client_secret->len == 0)
		return kb_error_set(KB_ERR_INVALID, "a client secret credential needs "
		    "a client id and a secret");
	if (strlen(o->client_id) > 256)
		return kb_error_set(KB_ERR_INVALID, "the client id is too long");
	if (o->tenant_id != NULL && !tenant_ok(o->tenant_id))
		return kb_error_set(KB_ERR_INVALID, "the tenant %.128s is not a tenant "
		    "id or domain", o->tenant_id);
	auth = o->authority_host;
	if (auth == NULL)
		auth = secure_getenv("AZURE_AUTHORITY_HOST");
	if (auth == NULL || auth[0] == '\0')
		auth = "https://login.microsoftonline.com";
	if (strncasecmp(auth, "https://", 8) != 0 || strlen(auth) > 512 ||
	    strpbrk(auth, "?#@ ") != NULL)
		return kb_error_set(KB_ERR_INVALID, "the authority host %.200s is not "
		    "an https:// URL; client secrets are never sent in clear", auth);
	if ((c = cred_alloc(CRED_CLIENT_SECRET)) == NULL)
		goto out;
	len = strlen(auth);
	while (len > 8 && auth[len - 1] == '/')
		len--;
	if ((c->authority = strndup(auth, len)) == NULL ||
	    (c->client_id = kb_strdup(o->client_id)) == NULL ||
	    (o->tenant_id != NULL && (c->tenant_id = kb_strdup(o->tenant_id)) == NULL) ||
	    (o->ca_file != NULL && (c->ca_file = kb_strdup(o->ca_file)) == NULL))
		goto out;
	if ((r = kb_secret_from(o->client_secret->data, o->client_secret->len,
	    &c->secret)) != 0 || (r = kb_http_pool_new(&c->pool)) != 0)
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

void
kb_kv_credential_source(kb_kv_credential *cred, struct kb_kv_token_source *out)
{
	out->get_token = cred_get_token;
	out->ctx = cred;
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
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c->tenant_id);
	free(c->client_id);
	free(c->authority);
	free(c->ca_file);
	free(c);
}
