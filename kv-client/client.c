/*
 * client.c: the Key Vault client over the transport.  Builds URLs,
 * encodes and parses JSON bodies, maps Key Vault error bodies
 * ({"error":{"code":..,"message":..}}) to KB_ERR_* codes, answers Key
 * Vault's bearer challenge (NOTES.md 2.1) and retries what may be
 * retried (NOTES.md 4.1, 6.6).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "json.h"

enum kv_endpoint_kind { KV_UNIX = 1, KV_HTTPS };

struct kb_kv_client {
	enum kv_endpoint_kind kind;
	char *socket_path;     /* KV_UNIX */
	char *base_url;        /* "http://localhost" for KV_UNIX; no trailing '/' */
	struct kb_url base;    /* base_url parsed, for every page's nextLink */
	char *host;            /* KV_HTTPS: lower case, no port */
	char *api_version;     /* KV_HTTPS */
	char *ca_file;
	char *resolve;
	long connect_ms;
	long total_ms;
	size_t max_body;
	int max_retries;
	long retry_base_ms;
	long retry_budget_ms;
	bool skip_resource_check;
	bool has_tokens;
	struct kb_kv_token_source tokens;
	struct kb_http_pool *pool;
	struct kb_kv_limiter *limiter;  /* NULL: none (Unix socket, no_limiter) */

	pthread_mutex_t lock;  /* everything below, and kv_auth.refs */
	struct kb_kv_challenge *challenge;
	struct kv_auth *auth;
	int64_t auth_expiry;      /* 0: unknown */
	struct kb_kv_stats stats;
};

/*
 * What kb_kv_request hands out: a kb_kv_response, and the arena its body
 * was parsed into when the request asked for one (KV_F_ARENA).
 */
struct kv_response {
	struct kb_kv_response pub;
	struct kb_jarena arena;
};

/*
 * "Authorization: Bearer <token>", shared by the requests in flight: a
 * locked, wiped copy per request cost two syscalls and split the heap's
 * mappings (mlock) for every request.  Read-only once made; freed (and
 * wiped) by the last reference, after a newer token or a challenge
 * replaced it in the client.
 */
struct kv_auth {
	struct kb_secret *hdr;
	unsigned refs;            /* under the client's lock */
};

/* Under the client's lock. */
static void
kv_auth_unref_locked(struct kv_auth *a)
{
	if (a != NULL && --a->refs == 0) {
		kb_secret_free(&a->hdr);
		free(a);
	}
}

/* A request path is printable ASCII without spaces, at most 4 KiB. */
#define KV_MAX_PATH 4096
/* Tokens are fetched again when fewer than 5 minutes remain (NOTES 2.1.5). */
#define KV_TOKEN_MARGIN 300
/* Backoff never grows beyond this between two attempts. */
#define KV_MAX_BACKOFF_MS 30000L
#define KV_MAX_TOKEN 16384

static kb_kv_client *
client_alloc(void)
{
	kb_kv_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->connect_ms = KB_KV_DEFAULT_CONNECT_MS;
	c->total_ms = KB_KV_DEFAULT_TOTAL_MS;
	c->max_body = KB_KV_DEFAULT_MAX_BODY;
	return c;
}

int
kb_kv_client_new_unix(const char *socket_path, kb_kv_client **out)
{
	kb_kv_client *c = NULL;
	int r = KB_ERR_ALLOC;

	if (socket_path == NULL || socket_path[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no agent socket path given");
	/* sockaddr_un.sun_path is 108 bytes on Linux. */
	if (strlen(socket_path) >= 108)
		return kb_error_set(KB_ERR_INVALID,
		    "socket path %s is too long (at most 107 bytes)", socket_path);
	if ((c = client_alloc()) == NULL)
		goto out;
	c->kind = KV_UNIX;
	if ((c->socket_path = kb_strdup(socket_path)) == NULL ||
	    (c->base_url = kb_strdup("http://localhost")) == NULL ||
	    kb_url_parse(c->base_url, &c->base) != 0)
		goto out;
	/* The agent is local: a failure is an answer, not a hiccup. */
	c->max_retries = 0;
	if ((r = kb_http_pool_new(&c->pool)) != 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
 out:
	kb_kv_client_free(c);
	return r;
}

int
kb_kv_client_new_url(const char *base_url, const struct kb_kv_options *opt,
    kb_kv_client **out)
{
	static const struct kb_kv_options none;
	kb_kv_client *c = NULL;
	struct kb_url u;
	size_t len;
	int r = KB_ERR_ALLOC;

	memset(&u, 0, sizeof(u));
	if (opt == NULL)
		opt = &none;
	if (base_url == NULL || base_url[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no vault URL given");
	if (strncasecmp(base_url, "https://", 8) != 0)
		return kb_error_set(KB_ERR_INVALID, "the vault URL %.200s is not https; "
		    "give its https:// URL (tokens are never sent in clear)", base_url);
	len = strlen(base_url);
	if (len > 1024 || strchr(base_url, '?') != NULL ||
	    strchr(base_url, '#') != NULL || strchr(base_url, '@') != NULL)
		return kb_error_set(KB_ERR_INVALID, "the vault URL %.200s must be "
		    "https://HOST[:PORT][/PATH], without user, query or fragment",
		    base_url);
	if ((r = kb_url_parse(base_url, &u)) != 0)
		goto out;
	r = KB_ERR_ALLOC;
	if ((c = client_alloc()) == NULL)
		goto out;
	c->kind = KV_HTTPS;
	while (len > 8 && base_url[len - 1] == '/')
		len--;
	if ((c->base_url = strndup(base_url, len)) == NULL ||
	    (c->host = kb_strdup(u.host)) == NULL ||
	    (c->api_version = kb_strdup(opt->api_version ? opt->api_version :
	        KB_KV_API_VERSION)) == NULL ||
	    (opt->ca_file != NULL && (c->ca_file = kb_strdup(opt->ca_file)) == NULL) ||
	    (opt->resolve != NULL && (c->resolve = kb_strdup(opt->resolve)) == NULL))
		goto out;
	if ((r = kb_url_parse(c->base_url, &c->base)) != 0)
		goto out;
	r = KB_ERR_ALLOC;
	if (opt->ca_file != NULL && access(opt->ca_file, R_OK) != 0) {
		r = kb_error_set(KB_ERR_CONFIG, "cannot read the CA file %s: %s",
		    opt->ca_file, strerror(errno));
		goto out;
	}
	if (opt->connect_ms > 0)
		c->connect_ms = opt->connect_ms;
	if (opt->total_ms > 0)
		c->total_ms = opt->total_ms;
	if (opt->max_body > 0)
		c->max_body = opt->max_body;
	c->max_retries = opt->max_retries == 0 ? KB_KV_DEFAULT_MAX_RETRIES :
	    opt->max_retries < 0 ? 0 : opt->max_retries;
	c->retry_base_ms = opt->retry_base_ms > 0 ? opt->retry_base_ms :
	    KB_KV_DEFAULT_RETRY_BASE_MS;
	c->retry_budget_ms = opt->retry_budget_ms > 0 ? opt->retry_budget_ms :
	    KB_KV_DEFAULT_RETRY_BUDGET_MS;
	c->skip_resource_check = opt->skip_resource_check;
	if (opt->tokens != NULL && opt->tokens->get_token != NULL) {
		c->tokens = *opt->tokens;
		c->has_tokens = true;
	}
	if ((r = kb_http_pool_new(&c->pool)) != 0)
		goto out;
	if (!opt->no_limiter &&
	    (r = kb_kv_limiter_get(u.scheme, u.host, u.port, opt, &c->limiter)) != 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
 out:
	kb_url_clear(&u);
	kb_kv_client_free(c);
	return r;
}

void
kb_kv_client_free(kb_kv_client *c)
{
	if (c == NULL)
		return;
	kb_http_pool_free(c->pool);
	kb_kv_limiter_put(c->limiter);
	kb_kv_challenge_free(c->challenge);
	kv_auth_unref_locked(c->auth);
	pthread_mutex_destroy(&c->lock);
	free(c->socket_path);
	free(c->base_url);
	kb_url_clear(&c->base);
	free(c->host);
	free(c->api_version);
	free(c->ca_file);
	free(c->resolve);
	free(c);
}

void
kb_kv_client_set_timeouts(kb_kv_client *c, long connect_ms, long total_ms)
{
	if (connect_ms > 0)
		c->connect_ms = connect_ms;
	if (total_ms > 0)
		c->total_ms = total_ms;
}

void
kb_kv_client_set_max_body(kb_kv_client *c, size_t max_body)
{
	if (max_body > 0)
		c->max_body = max_body;
}

const char *
kb_kv_client_endpoint(const kb_kv_client *c)
{
	return c->kind == KV_UNIX ? c->socket_path : c->base_url;
}

void
kb_kv_client_stats(kb_kv_client *c, struct kb_kv_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

int
kb_kv_client_limiter(kb_kv_client *c, struct kb_kv_limiter_info *out)
{
	if (c->limiter == NULL)
		return kb_error_set(KB_ERR_NOT_FOUND, "%s has no client-side limiter",
		    kb_kv_client_endpoint(c));
	kb_kv_limiter_info_get(c->limiter, out);
	return 0;
}

void
kb_kv_client_retry_policy(const kb_kv_client *c, int *max_retries,
    long *base_ms, long *budget_ms)
{
	*max_retries = c->max_retries;
	*base_ms = c->retry_base_ms > 0 ? c->retry_base_ms : KB_KV_DEFAULT_RETRY_BASE_MS;
	*budget_ms = c->retry_budget_ms > 0 ? c->retry_budget_ms :
	    KB_KV_DEFAULT_RETRY_BUDGET_MS;
}

void
kb_kv_response_free(struct kb_kv_response *r)
{
	struct kv_response *kr;

	if (r == NULL)
		return;
	kr = (struct kv_response *)(void *)((char *)r - offsetof(struct kv_response, pub));
	if (kr->arena.base != NULL)
		kb_jarena_discard(&kr->arena, r->body);
	else {
		if (r->secret)
			kb_kv_json_wipe(r->body);
		cJSON_Delete(r->body);
	}
	free(r->error_code);
	free(r->error_message);
	free(r->error_inner);
	free(kr);
}

void
kb_kv_json_wipe(cJSON *j)
{
	cJSON *it;

	if (j == NULL)
		return;
	if (j->valuestring != NULL)
		kb_wipe(j->valuestring, strlen(j->valuestring));
	if (j->string != NULL)
		kb_wipe(j->string, strlen(j->string));
	/* Depth is bounded by the parser's nesting limit. */
	for (it = j->child; it != NULL; it = it->next)
		kb_kv_json_wipe(it);
}

char *
kb_kv_json_print_secret(const cJSON *j)
{
	size_t n;
	char *p;

	/* cJSON_PrintPreallocated wants some 5 bytes more than it writes. */
	for (n = 1024; n <= ((size_t)1 << 30); n *= 2) {
		if ((p = malloc(n)) == NULL)
			return NULL;
		if (cJSON_PrintPreallocated((cJSON *)(uintptr_t)j, p, (int)n, 0))
			return p;
		explicit_bzero(p, n);
		free(p);
	}
	return NULL;
}

void
kb_kv_text_free_secret(void *text)
{
	if (text != NULL) {
		kb_wipe(text, strlen(text));
		free(text);
	}
}

/*
 * Does the answer to path hold secrets?  Decrypt and UnwrapKey give a
 * plaintext or a key, GetRandomBytes (POST /rng) bytes that become keys:
 * the last segment of the path, query left out.  Nothing else of the
 * keys API answers with a secret (a release answer is wrapped for its
 * target).  A key named "rng" read with GET only costs a wipe.
 */
static bool
kv_secret_path(const char *path)
{
	static const char *const segs[] = { "decrypt", "unwrapkey", "rng" };
	size_t end, beg, i;

	end = strcspn(path, "?");
	for (beg = end; beg > 0 && path[beg - 1] != '/'; beg--)
		;
	for (i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		if (end - beg == strlen(segs[i]) &&
		    strncasecmp(path + beg, segs[i], end - beg) == 0)
			return true;
	return false;
}

static bool
kv_path_ok(const char *p)
{
	size_t i;

	if (p == NULL || p[0] != '/')
		return false;
	for (i = 0; p[i] != '\0'; i++)
		if (i >= KV_MAX_PATH || (unsigned char)p[i] <= 0x20 ||
		    (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

/*
 * Key Vault's error body into resp (kb_kv_error_parse).  A body of
 * another shape keeps no code or message: the status still maps to an
 * error, and a proxy's page must not hide it behind a protocol error.
 */
static int
kv_take_error(struct kb_kv_response *resp)
{
	struct kb_kv_error *e = NULL;
	struct kb_buf inner;
	size_t i;
	int r;

	kb_buf_init(&inner, 4096);   /* 8 codes of at most 128 bytes */
	if ((r = kb_kv_error_parse(resp->body, &e)) != 0) {
		if (r == KB_ERR_ALLOC)
			goto out;
		kb_debug("HTTP %ld: an error body of another shape: %s", resp->status,
		    kb_error_detail(r));
		r = 0;
		goto out;
	}
	for (i = 0; i < e->n_inner; i++)
		if ((r = kb_buf_appendf(&inner, "%s%s", i ? "/" : "", e->inner[i])) != 0)
			goto out;
	if (inner.len > 0 && (resp->error_inner = kb_buf_steal(&inner, NULL)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	resp->error_code = e->code;        /* transferred */
	resp->error_message = e->message;  /* transferred */
	e->code = e->message = NULL;
 out:
	kb_kv_error_free(e);
	kb_buf_free(&inner);
	return r;
}

int
kb_kv_request(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, struct kb_kv_response **out)
{
	return kb_kv_request_flags(c, method, path, body, 0, out);
}

static bool
json_content_type(const char *ct)
{
	size_t n = strcspn(ct, "; \t");

	/* application/json, application/problem+json, ... */
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* Turn an HTTP answer into a kb_kv_response. */
static int
kv_response(const kb_kv_client *c, struct kb_http_resp *hr, bool arena,
    bool secret, struct kb_kv_response **out)
{
	struct kb_kv_response *resp = NULL;
	struct kv_response *kr;
	bool ok = hr->status >= 200 && hr->status < 300;
	const char *why = NULL;
	int r;

	if ((kr = calloc(1, sizeof(*kr))) == NULL)
		return KB_ERR_ALLOC;
	resp = &kr->pub;
	resp->status = hr->status;
	resp->secret = secret;
	if (hr->body.len > 0) {
		if (hr->content_type[0] != '\0' && !json_content_type(hr->content_type)) {
			/* An error page from a proxy still yields its status. */
			if (ok) {
				r = kb_error_set(KB_ERR_PROTOCOL, "%s answered HTTP %ld "
				    "with %.64s, not JSON; is this URL a Key Vault?",
				    kb_kv_client_endpoint(c), hr->status, hr->content_type);
				goto out;
			}
		} else if (memchr(hr->body.data, '\0', hr->body.len) == NULL)
			resp->body = secret ? kb_kv_json_parse_secret(
			    (const char *)hr->body.data, hr->body.len, &why) :
			    arena ? kb_jarena_parse(&kr->arena,
			    (const char *)hr->body.data, hr->body.len, &why) :
			    kb_kv_json_parse((const char *)hr->body.data,
			    hr->body.len, &why);
		/*
		 * A success must carry JSON; an error page from something
		 * that is not Key Vault (a proxy) still yields its status.
		 */
		if (resp->body == NULL && ok) {
			r = kb_error_set(KB_ERR_PROTOCOL,
			    "%s answered HTTP %ld with a body that is not JSON (%s)",
			    kb_kv_client_endpoint(c), hr->status,
			    why != NULL ? why : "it holds a NUL byte");
			goto out;
		}
	}
	if ((r = kv_take_error(resp)) != 0)
		goto out;
	*out = resp;
	resp = NULL;
	r = 0;
 out:
	kb_kv_response_free(resp);
	return r;
}

/*
 * The Authorization header for the next attempt: *out NULL when no
 * challenge was seen yet (the request goes without one, as a probe).
 * A token is fetched when none is held or it expires within 5 minutes;
 * the token source runs without the client's lock.
 */
static void
kv_auth_put(kb_kv_client *c, struct kv_auth **a)
{
	if (*a == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	kv_auth_unref_locked(*a);
	pthread_mutex_unlock(&c->lock);
	*a = NULL;
}

static int
kv_auth_header(kb_kv_client *c, struct kv_auth **out)
{
	struct kb_secret *tok = NULL, *hdr = NULL;
	struct kv_auth *a = NULL;
	char *tenant = NULL, *scope = NULL;
	int64_t now = kb_now_unix(), exp = 0;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->challenge == NULL) {
		pthread_mutex_unlock(&c->lock);
		*out = NULL;
		return 0;
	}
	if (c->auth != NULL && (c->auth_expiry == 0 ||
	    now < c->auth_expiry - KV_TOKEN_MARGIN)) {
		c->auth->refs++;
		*out = c->auth;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if ((c->challenge->tenant != NULL &&
	    (tenant = kb_strdup(c->challenge->tenant)) == NULL) ||
	    (scope = kb_strdup(c->challenge->scope)) == NULL)
		r = KB_ERR_ALLOC;
	pthread_mutex_unlock(&c->lock);
	if (r != 0)
		goto out;
	if ((r = c->tokens.get_token(c->tokens.ctx, tenant, scope, &tok, &exp)) != 0)
		goto out;
	if (tok == NULL || tok->len == 0 || tok->len > KV_MAX_TOKEN ||
	    memchr(tok->data, '\0', tok->len) != NULL ||
	    strpbrk((const char *)tok->data, "\r\n") != NULL) {
		r = kb_error_set(KB_ERR_PROTOCOL, "the credential gave an empty or "
		    "malformed token for %s", scope);
		goto out;
	}
	if ((r = kb_secret_new(tok->len + 22, &hdr)) != 0)
		goto out;
	memcpy(hdr->data, "Authorization: Bearer ", 22);
	memcpy(hdr->data + 22, tok->data, tok->len);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	a->hdr = hdr;
	hdr = NULL;
	a->refs = 2;             /* the client's and the caller's */
	pthread_mutex_lock(&c->lock);
	kv_auth_unref_locked(c->auth);
	c->auth = a;
	c->auth_expiry = exp;
	pthread_mutex_unlock(&c->lock);
	*out = a;
	r = 0;
 out:
	kb_secret_free(&tok);
	kb_secret_free(&hdr);
	free(tenant);
	free(scope);
	return r;
}

/* A 401 with a challenge: parse, check, keep it, drop the old token. */
static int
kv_take_challenge(kb_kv_client *c, const struct kb_http_resp *hr)
{
	struct kb_kv_challenge *ch = NULL;
	int r;

	if (hr->www_authenticate == NULL)
		return kb_error_set(KB_ERR_DENIED, "%s answered 401 without a "
		    "WWW-Authenticate challenge", c->base_url);
	if ((r = kb_kv_challenge_parse(hr->www_authenticate,
	    strlen(hr->www_authenticate), &ch)) != 0)
		return r;
	if (!c->skip_resource_check &&
	    (r = kb_kv_challenge_check_host(ch, c->host)) != 0) {
		kb_kv_challenge_free(ch);
		return r;
	}
	kb_debug("challenge from %s: tenant %s, scope %s", c->host,
	    ch->tenant ? ch->tenant : "-", ch->scope);
	pthread_mutex_lock(&c->lock);
	kb_kv_challenge_free(c->challenge);
	c->challenge = ch;       /* transferred */
	kv_auth_unref_locked(c->auth);
	c->auth = NULL;
	c->auth_expiry = 0;
	c->stats.challenges++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

long
kb_kv_retry_after_ms(const char *v, int64_t now)
{
	unsigned long long n;
	int64_t t;

	if (v == NULL || v[0] == '\0')
		return -1;
	if (kb_parse_ull(v, 0, 86400, &n) == 0)
		return (long)n * 1000;
	if ((t = kb_http_date(v)) < 0)
		return -1;
	if (t <= now)
		return 0;
	return t - now > 86400 ? 86400000L : (long)(t - now) * 1000;
}

/* What the server asked us to wait, in ms, or -1 (NOTES.md 4.1). */
static long
kv_server_wait(const struct kb_http_resp *hr)
{
	unsigned long long n;

	/* azure-core's order: retry-after-ms, x-ms-retry-after-ms, Retry-After. */
	if (kb_parse_ull(hr->retry_after_ms, 0, 86400000, &n) == 0)
		return (long)n;
	if (kb_parse_ull(hr->x_ms_retry_after_ms, 0, 86400000, &n) == 0)
		return (long)n;
	return kb_kv_retry_after_ms(hr->retry_after, kb_now_unix());
}

/* Exponential backoff with +-20% jitter. */
static long
kv_backoff(const kb_kv_client *c, int attempt)
{
	long d = c->retry_base_ms;
	uint32_t rnd = 0;
	int i;

	for (i = 0; i < attempt && d < KV_MAX_BACKOFF_MS; i++)
		d *= 2;
	if (d > KV_MAX_BACKOFF_MS)
		d = KV_MAX_BACKOFF_MS;
	if (kb_random(&rnd, sizeof(rnd)) != 0)
		rnd = 0x80000000u;
	return d * 8 / 10 + (long)((double)d * 0.4 * ((double)rnd / 4294967296.0));
}

static void
kv_sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool
retryable_status(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

int
kb_kv_request_flags(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, unsigned flags, struct kb_kv_response **out)
{
	return kb_kv_request_ex(c, method, path, body, flags, out, NULL);
}

int
kb_kv_request_ex(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, unsigned flags, struct kb_kv_response **out,
    bool *maybe_sent)
{
	struct kb_http_req req;
	struct kb_http_resp hr;
	struct kb_http_outcome how;
	struct kv_auth *auth = NULL;
	struct kb_buf url;
	char *text = NULL;
	double deadline;
	bool probe, retry, rechallenged = false, notidem, secret = false;
	bool has_body_method, sent = false;
	long wait;
	int attempt = 0, challenges = 0, cls, r;

	kb_http_resp_init(&hr);
	kb_buf_init(&url, 3 * KV_MAX_PATH);
	notidem = (flags & KB_KV_NOT_IDEMPOTENT) != 0;
	has_body_method = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0;
	if (!kv_path_ok(path)) {
		r = kb_error_set(KB_ERR_INVALID, "bad request path");
		goto out;
	}
	secret = kv_secret_path(path);
	if ((r = kb_buf_appendf(&url, "%s%s", c->base_url, path)) != 0)
		goto out;
	if (c->kind == KV_HTTPS && !(flags & KB_KV_RAW_PATH) &&
	    (r = kb_buf_appendf(&url, "%capi-version=%s",
	    strchr(path, '?') != NULL ? '&' : '?', c->api_version)) != 0)
		goto out;
	/* Requests carry plaintexts (encrypt, wrapKey) and keys (import). */
	if (body != NULL && (text = kb_kv_json_print_secret(body)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	deadline = kb_now_mono() + (double)c->retry_budget_ms / 1000.0;
	cls = kb_kv_limiter_class(method, path, flags);
	for (;;) {
		probe = false;
		/* A not-idempotent request is only resent after an attempt
		 * that certainly did nothing (429, 401, no connection). */
		sent = false;
		/* Each attempt takes its place under the vault's limit. */
		if ((r = kb_kv_limiter_acquire(c->limiter, cls, flags, deadline)) != 0)
			goto out;
		if (c->has_tokens) {
			if ((r = kv_auth_header(c, &auth)) != 0)
				goto out;
			probe = auth == NULL;
		}
		memset(&req, 0, sizeof(req));
		req.method = method;
		req.url = (const char *)url.data;
		req.unix_path = c->kind == KV_UNIX ? c->socket_path : NULL;
		req.endpoint = kb_kv_client_endpoint(c);
		req.auth_header = auth != NULL ? (const char *)auth->hdr->data : NULL;
		/* The challenge probe goes without a body, as the SDKs send it
		 * (NOTES.md 2.1.1): no payload ever reaches a server before it
		 * proved to be the vault's. */
		req.body = probe ? NULL : text;
		req.body_len = !probe && text != NULL ? strlen(text) : 0;
		req.empty_body = (probe || text == NULL) && has_body_method;
		req.connect_ms = c->connect_ms;
		req.total_ms = c->total_ms;
		req.max_body = c->max_body;
		req.ca_file = c->ca_file;
		req.resolve = c->resolve;
		req.fresh_connect = notidem && !probe;
		req.https_only = c->kind == KV_HTTPS;
		req.secret_body = secret;
		req.pool = c->pool;
		kb_http_resp_clear(&hr);
		r = kb_http_perform(&req, &hr, &how);
		/* Only a body-carrying attempt can have done anything; an
		 * attempt resent below certainly did not (see retry). */
		sent = !probe && (r == 0 || how.maybe_sent);
		kv_auth_put(c, &auth);
		pthread_mutex_lock(&c->lock);
		c->stats.requests++;
		if (r == 0)
			c->stats.connections += (unsigned long)hr.new_connections;
		pthread_mutex_unlock(&c->lock);

		if (r == 0 && hr.status == 401 && c->has_tokens &&
		    (probe || !rechallenged) && challenges < 3) {
			/* First challenge, or one re-challenge on a later 401:
			 * the token expired or the vault moved tenants. */
			if (!probe)
				rechallenged = true;
			challenges++;
			if ((r = kv_take_challenge(c, &hr)) != 0)
				goto out;
			continue;
		}
		if (r == 0 && hr.status == 429)
			kb_kv_limiter_throttled(c->limiter, cls, kv_server_wait(&hr));
		retry = false;
		if (r != 0)
			retry = how.transient && (!notidem || probe || !how.maybe_sent);
		else if (retryable_status(hr.status))
			retry = !notidem || probe || hr.status == 429;
		if (retry && attempt < c->max_retries) {
			wait = r == 0 ? kv_server_wait(&hr) : -1;
			if (wait < 0)
				wait = kv_backoff(c, attempt);
			if (kb_now_mono() + (double)wait / 1000.0 < deadline) {
				kb_debug("%s %s: %s, retrying in %ld ms", method,
				    path, r != 0 ? kb_error_detail(r) : "throttled or busy",
				    wait);
				kv_sleep_ms(wait);
				attempt++;
				pthread_mutex_lock(&c->lock);
				c->stats.retries++;
				pthread_mutex_unlock(&c->lock);
				continue;
			}
		}
		if (r != 0)
			goto out;
		if (probe && hr.status != 401 && has_body_method) {
			/* The server took a request without a token: the answer
			 * is to a bodyless copy, not to what the caller sent. */
			r = kb_error_set(KB_ERR_PROTOCOL, "%s answered HTTP %ld to a "
			    "request without a token instead of a challenge; it does "
			    "not behave like Key Vault", c->base_url, hr.status);
			goto out;
		}
		break;
	}
	if (r == 0 && notidem && hr.status >= 500)
		kb_debug("%s %s: HTTP %ld, outcome unknown; the caller checks versions",
		    method, path, hr.status);
	r = kv_response(c, &hr, (flags & KV_F_ARENA) != 0 && !secret, secret,
	    out);
 out:
	if (maybe_sent != NULL)
		*maybe_sent = sent;
	kv_auth_put(c, &auth);
	kb_http_resp_clear(&hr);
	kb_kv_text_free_secret(text);
	kb_buf_free(&url);
	return r;
}

/* Error codes of a 5xx that mean the token behind the vault. */
static bool
kv_device_code(const char *kv_code)
{
	static const char *codes[] = {
		"HSMError", "TokenUnavailable", "DeviceError", NULL
	};
	size_t i;

	for (i = 0; kv_code != NULL && codes[i] != NULL; i++)
		if (strcmp(kv_code, codes[i]) == 0)
			return true;
	return false;
}

int
kb_kv_status_to_err(long status, const char *kv_code)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
		return KB_ERR_INVALID;
	case 401:
	case 403:
		return KB_ERR_DENIED;
	case 404:
		return KB_ERR_NOT_FOUND;
	case 405:
	case 501:
		return KB_ERR_UNSUPPORTED;
	case 409:
		return KB_ERR_CONFLICT;
	case 413:
		return KB_ERR_LIMIT;
	case 429:
		return KB_ERR_BUSY;     /* throttled past every retry */
	case 503:
		/* A vault (or an agent whose store is locked) that asks to
		 * be tried later, unless it names its token. */
		return kv_device_code(kv_code) ? KB_ERR_DEVICE : KB_ERR_BUSY;
	case 502:
	case 504:
		return KB_ERR_DEVICE;
	default:
		break;
	}
	if (status >= 500) {
		if (kv_device_code(kv_code))
			return KB_ERR_DEVICE;
		if (kv_code != NULL && strcmp(kv_code, "ServiceUnavailable") == 0)
			return KB_ERR_BUSY;
		return KB_ERR_INTERNAL;
	}
	if (status >= 400)
		return KB_ERR_INVALID;
	return KB_ERR_PROTOCOL;    /* 1xx or 3xx: nothing we asked for */
}

int
kb_kv_response_error(const struct kb_kv_response *r)
{
	int code = kb_kv_status_to_err(r->status, r->error_code);

	if (code == 0)
		return 0;
	if (r->error_message != NULL)
		return kb_error_set(code, "%s (%s%s%s, HTTP %ld)", r->error_message,
		    r->error_code ? r->error_code : "no code",
		    r->error_inner ? ": " : "", r->error_inner ? r->error_inner : "",
		    r->status);
	return kb_error_set(code, "%s (HTTP %ld)", kb_err(code), r->status);
}

/* ---------------------------------------------------------------- paging */

static bool
query_param_is(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n >= k && strncasecmp(p, name, k) == 0 && (n == k || p[k] == '=');
}

static int
kv_next_link(const struct kb_url *b, const char *base_url, const cJSON *page,
    bool strip_version, char **out)
{
	const cJSON *nl = cJSON_GetObjectItemCaseSensitive(page, "nextLink");
	struct kb_url u;
	struct kb_buf path;
	const char *q, *amp, *rest;
	size_t bl, n;
	bool first = true;
	int r;

	memset(&u, 0, sizeof(u));
	kb_buf_init(&path, 3 * KV_MAX_PATH);
	/* null, absent and empty all end the list (NOTES.md 1.3). */
	if (nl == NULL || cJSON_IsNull(nl) ||
	    (cJSON_IsString(nl) && nl->valuestring[0] == '\0')) {
		*out = NULL;
		return 0;
	}
	if (!cJSON_IsString(nl)) {
		r = kb_error_set(KB_ERR_PROTOCOL, "nextLink is not a string");
		goto out;
	}
	if ((r = kb_url_parse(nl->valuestring, &u)) != 0) {
		r = kb_error_set(KB_ERR_PROTOCOL, "nextLink is not a URL");
		goto out;
	}
	/* A page must not send us, and our token, to another server. */
	if (strcmp(b->scheme, u.scheme) != 0 || strcmp(b->host, u.host) != 0 ||
	    b->port != u.port) {
		r = kb_error_set(KB_ERR_PROTOCOL, "nextLink points to %.200s://%.200s:%ld, "
		    "not to the vault %.200s; not followed", u.scheme, u.host, u.port,
		    base_url);
		goto out;
	}
	/* Relative to base_url's path prefix, if it has one. */
	bl = strlen(b->path);
	while (bl > 0 && b->path[bl - 1] == '/')
		bl--;
	if (strncmp(u.path, b->path, bl) != 0 || (u.path[bl] != '/' && u.path[bl] != '\0')) {
		r = kb_error_set(KB_ERR_PROTOCOL, "nextLink leaves the vault's path %.200s",
		    b->path);
		goto out;
	}
	rest = u.path + bl;
	if ((r = kb_buf_appendf(&path, "%s", rest[0] ? rest : "/")) != 0)
		goto out;
	for (q = u.query; q != NULL && *q != '\0'; q = amp ? amp + 1 : q + n) {
		amp = strchr(q, '&');
		n = amp ? (size_t)(amp - q) : strlen(q);
		if (n == 0 || (strip_version && query_param_is(q, n, "api-version")))
			continue;
		if ((r = kb_buf_appendf(&path, "%c%.*s", first ? '?' : '&', (int)n, q)) != 0)
			goto out;
		first = false;
		if (amp == NULL)
			break;
	}
	*out = kb_buf_steal(&path, NULL);
	r = *out != NULL ? 0 : KB_ERR_ALLOC;
 out:
	kb_url_clear(&u);
	kb_buf_free(&path);
	return r;
}

int
kb_kv_next_link(const char *base_url, const cJSON *page, char **out)
{
	struct kb_url b;
	int r;

	memset(&b, 0, sizeof(b));
	if (kb_url_parse(base_url, &b) != 0)
		r = kb_error_set(KB_ERR_PROTOCOL, "%.200s is not a URL", base_url);
	else
		r = kv_next_link(&b, base_url, page, true, out);
	kb_url_clear(&b);
	return r;
}

int
kb_kv_list(kb_kv_client *c, const char *path, unsigned max_pages,
    int (*each)(void *arg, const cJSON *item), void *arg)
{
	struct kb_kv_response *resp = NULL;
	const cJSON *value, *item;
	char *cur = NULL, *next = NULL;
	unsigned pages;
	int r;

	if (max_pages == 0)
		max_pages = 100000;
	if ((cur = kb_strdup(path)) == NULL)
		return KB_ERR_ALLOC;
	for (pages = 0; ; pages++) {
		if (pages >= max_pages) {
			r = kb_error_set(KB_ERR_LIMIT, "the list at %s has more than %u "
			    "pages", path, max_pages);
			goto out;
		}
		/* The first path is the caller's; later ones keep their own
		 * query and get this client's api-version (HTTPS) again. */
		if ((r = kb_kv_request_flags(c, "GET", cur, NULL, KV_F_ARENA,
		    &resp)) != 0 ||
		    (r = kb_kv_response_error(resp)) != 0)
			goto out;
		value = cJSON_GetObjectItemCaseSensitive(resp->body, "value");
		if (!cJSON_IsArray(value)) {
			r = kb_error_set(KB_ERR_PROTOCOL, "a page of %s has no value array",
			    path);
			goto out;
		}
		cJSON_ArrayForEach(item, value)
			if ((r = each(arg, item)) != 0)
				goto out;
		if ((r = kv_next_link(&c->base, c->base_url, resp->body,
		    c->kind == KV_HTTPS, &next)) != 0)
			goto out;
		if (next == NULL)
			break;
		if (strcmp(next, cur) == 0) {
			r = kb_error_set(KB_ERR_PROTOCOL, "nextLink of %s points to the "
			    "same page again", path);
			goto out;
		}
		free(cur);
		cur = next;
		next = NULL;
		kb_kv_response_free(resp);
		resp = NULL;
	}
	r = 0;
 out:
	kb_kv_response_free(resp);
	free(cur);
	free(next);
	return r;
}
