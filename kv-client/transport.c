/*
 * transport.c: HTTP exchanges with libcurl.
 *
 * libcurl because the same client speaks HTTPS to Azure Key Vault (TLS
 * verified with the system store or a private CA, proxies, HTTP/2) and
 * HTTP over the agent's Unix socket (CURLOPT_UNIX_SOCKET_PATH), so the
 * agent's socket and the cloud share one code path.  The response body
 * cap is enforced in the write callback as bytes arrive, as curl's
 * documentation advises; CURLOPT_MAXFILESIZE_LARGE only catches bodies
 * that announce their length.
 *
 * The pool: a client keeps idle easy handles, each with its own open
 * connection, and one share handle for the DNS cache and TLS sessions
 * (so a second connection resumes the first one's session).  Connections
 * themselves are not shared (CURL_LOCK_DATA_CONNECT): libcurl 7.88's
 * documentation says sharing them "is not safe ... between multiple
 * concurrent threads" (a known bug, curl issues #4544, #13840) and that
 * HTTP/2 streams cannot be spread over threads on one connection.  A
 * handle per concurrent request gives the same reuse without that risk.
 */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "internal.h"

#define POOL_IDLE_MAX 16

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

/*
 * libcurl's memory is zeroed as libcurl lets it go.  Its receive buffer
 * (freed when a transfer ends) held the answer, decrypt's plaintext
 * included, and the request it built held the body, encrypt's plaintext
 * and an import's key included; the Authorization header passes through
 * it too.  A hook is the only way in: libcurl has no option to wipe.
 * The size of a block is glibc's malloc_usable_size.  A realloc moves
 * the block itself, so the old one is wiped too.
 */
static void
cm_free(void *p)
{
	if (p != NULL) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *
cm_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if (n <= old)
		return p;        /* glibc would keep it in place, or free a tail */
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old);
	cm_free(p);
	return q;
}

/*
 * OpenSSL keeps the last record it deciphered in its read buffer, and
 * libcurl has it free that buffer when a connection goes idle
 * (SSL_MODE_RELEASE_BUFFERS): with SSL_OP_CLEANSE_PLAINTEXT it is zeroed
 * once handed over.  Only when libcurl's TLS is OpenSSL, where the
 * callback's argument is an SSL_CTX.
 */
static bool curl_openssl;

static CURLcode
cleanse_ctx(CURL *h, void *ctx, void *arg)
{
	(void)h;
	(void)arg;
	SSL_CTX_set_options((SSL_CTX *)ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}

static void
curl_init_once(void)
{
	const curl_version_info_data *v;

	curl_init_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, cm_free,
	    cm_realloc, strdup, calloc);
	v = curl_version_info(CURLVERSION_NOW);
	curl_openssl = v != NULL && v->ssl_version != NULL &&
	    strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
}

static int
curl_ready(void)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return kb_error_set(KB_ERR_INTERNAL, "cannot initialise libcurl: %s",
		    curl_easy_strerror(curl_init_rc));
	return 0;
}

struct kb_http_pool {
	pthread_mutex_t lock;                  /* idle[] */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	CURLSH *share;
	CURL *idle[POOL_IDLE_MAX];
	size_t n_idle;
};

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct kb_http_pool *p = arg;

	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&p->share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct kb_http_pool *p = arg;

	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&p->share_locks[data]);
}

int
kb_http_pool_new(struct kb_http_pool **out)
{
	struct kb_http_pool *p = NULL;
	size_t i;
	int r;

	if ((r = curl_ready()) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return KB_ERR_ALLOC;
	pthread_mutex_init(&p->lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->share_locks[i], NULL);
	if ((p->share = curl_share_init()) == NULL ||
	    curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_USERDATA, p) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_SHARE,
	        CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		kb_http_pool_free(p);
		return kb_error_set(KB_ERR_INTERNAL, "cannot set up libcurl's share handle");
	}
	*out = p;
	return 0;
}

void
kb_http_pool_free(struct kb_http_pool *p)
{
	size_t i;

	if (p == NULL)
		return;
	/* Easy handles first: they hold references into the share. */
	for (i = 0; i < p->n_idle; i++)
		curl_easy_cleanup(p->idle[i]);
	if (p->share != NULL)
		curl_share_cleanup(p->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->share_locks[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static CURL *
pool_take(struct kb_http_pool *p)
{
	CURL *h = NULL;

	if (p != NULL) {
		pthread_mutex_lock(&p->lock);
		if (p->n_idle > 0)
			h = p->idle[--p->n_idle];
		pthread_mutex_unlock(&p->lock);
		if (h != NULL) {
			curl_easy_reset(h);    /* keeps its connection and the share */
			return h;
		}
	}
	if ((h = curl_easy_init()) == NULL)
		return NULL;
	if (p != NULL && curl_easy_setopt(h, CURLOPT_SHARE, p->share) != CURLE_OK) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

static void
pool_give(struct kb_http_pool *p, CURL *h, bool keep)
{
	if (h == NULL)
		return;
	if (p != NULL && keep) {
		pthread_mutex_lock(&p->lock);
		if (p->n_idle < POOL_IDLE_MAX) {
			p->idle[p->n_idle++] = h;
			h = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	if (h != NULL)
		curl_easy_cleanup(h);
}

void
kb_http_resp_init(struct kb_http_resp *r)
{
	memset(r, 0, sizeof(*r));
	kb_buf_init(&r->body, 0);
}

void
kb_http_resp_clear(struct kb_http_resp *r)
{
	if (r == NULL)
		return;
	kb_buf_free(&r->body);
	free(r->www_authenticate);
	kb_http_resp_init(r);
}

struct sink {
	struct kb_buf *buf;
	struct kb_http_resp *resp;
	bool over;
};

static size_t
write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;   /* curl guarantees size == 1 */

	if (kb_buf_append(s->buf, p, n) != 0) {
		s->over = true;
		return 0;      /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Copy a header value (spaces trimmed, no CR/LF) into a fixed field. */
static void
put_field(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;   /* these fields are numbers, dates, ids */
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct kb_http_resp *r = ((struct sink *)arg)->resp;
	size_t n = size * nmemb, nl, vl, old;
	const char *colon, *v;
	char *w;

	/* A new status line (after a 100 Continue or a proxy's CONNECT):
	 * forget the headers of the previous response. */
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		free(r->www_authenticate);
		r->www_authenticate = NULL;
		r->www_auth_over = false;
		r->content_type[0] = r->retry_after[0] = '\0';
		r->retry_after_ms[0] = r->x_ms_retry_after_ms[0] = '\0';
		r->request_id[0] = '\0';
		return n;
	}
	if ((colon = memchr(p, ':', n)) == NULL)
		return n;
	nl = (size_t)(colon - p);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
	    v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (memchr(v, '\0', vl) != NULL)
		return n;      /* not a header we can trust: ignore it */
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(p, name, nl) == 0)
	if (IS("content-type"))
		put_field(r->content_type, sizeof(r->content_type), v, vl);
	else if (IS("retry-after"))
		put_field(r->retry_after, sizeof(r->retry_after), v, vl);
	else if (IS("retry-after-ms"))
		put_field(r->retry_after_ms, sizeof(r->retry_after_ms), v, vl);
	else if (IS("x-ms-retry-after-ms"))
		put_field(r->x_ms_retry_after_ms, sizeof(r->x_ms_retry_after_ms), v, vl);
	else if (IS("x-ms-request-id"))
		put_field(r->request_id, sizeof(r->request_id), v, vl);
	else if (IS("www-authenticate") && !r->www_auth_over) {
		/* Several WWW-Authenticate fields combine as one list (RFC 9110
		 * 5.3), which is how the challenge parser reads them. */
		old = r->www_authenticate ? strlen(r->www_authenticate) : 0;
		if (old + vl + 3 > KB_HTTP_MAX_CHALLENGE) {
			r->www_auth_over = true;
			return n;
		}
		if ((w = realloc(r->www_authenticate, old + vl + 3)) == NULL)
			return 0;
		if (old > 0) {
			memcpy(w + old, ", ", 2);
			old += 2;
		}
		memcpy(w + old, v, vl);
		w[old + vl] = '\0';
		r->www_authenticate = w;
	}
#undef IS
	return n;
}

/* Did the failure happen before any byte of the request left? */
static bool
failed_before_sending(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return true;
	default:
		return false;
	}
}

static bool
transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

int64_t
kb_http_date(const char *s)
{
	time_t t = curl_getdate(s, NULL);

	return t == (time_t)-1 ? -1 : (int64_t)t;
}

int
kb_http_perform(const struct kb_http_req *req, struct kb_http_resp *out,
    struct kb_http_outcome *how)
{
	CURL *h = NULL;
	struct curl_slist *hdrs = NULL, *t, authnode, resolve;
	struct kb_http_resp resp;
	struct sink sink;
	char errbuf[CURL_ERROR_SIZE], ctype[160];
	CURLcode rc = CURLE_OK;
	long code = 0, oserr = 0, nconn = 0;
	bool keep = false;
	size_t i;
	int r = KB_ERR_INTERNAL;

	how->maybe_sent = false;
	how->transient = false;
	kb_http_resp_init(&resp);
	if (req->secret_body)
		kb_buf_init_secret(&resp.body, req->max_body);
	else
		kb_buf_init(&resp.body, req->max_body);
	sink.buf = &resp.body;
	sink.resp = &resp;
	sink.over = false;
	errbuf[0] = '\0';
	memset(&authnode, 0, sizeof(authnode));
	memset(&resolve, 0, sizeof(resolve));
	resolve.data = (char *)(uintptr_t)req->resolve;
	if ((r = curl_ready()) != 0)
		goto out;
	if ((h = pool_take(req->pool)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* An empty Expect: stops curl waiting for "100 Continue". */
	if ((t = curl_slist_append(hdrs, "Expect:")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	hdrs = t;
	if (req->body != NULL || req->empty_body) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		    req->content_type ? req->content_type : "application/json");
		if ((t = curl_slist_append(hdrs, ctype)) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		hdrs = t;
	}
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		if ((t = curl_slist_append(hdrs, req->headers[i])) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		hdrs = t;
	}
	if (req->auth_header != NULL) {
		/* Linked in, not copied: unlinked again before the list is freed. */
		authnode.data = (char *)(uintptr_t)req->auth_header;
		for (t = hdrs; t->next != NULL; t = t->next)
			;
		t->next = &authnode;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
	        req->https_only ? "https" : "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    /* libcurl allocates it for every request and frees it after
	     * (cm_free wipes it): its least, not 64 KiB; bodies are small. */
	    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->total_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
	        (curl_off_t)req->max_body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	if (req->fresh_connect &&
	    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	if (req->no_proxy &&
	    curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	if (req->unix_path != NULL &&
	    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_path) != CURLE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	/*
	 * TLS: peer and host name verification stay at libcurl's defaults
	 * (on); only the trust anchors may change.  TLS 1.2 at least, and
	 * HTTP/2 when the server offers it in ALPN; OpenSSL zeroes what it
	 * deciphered (cleanse_ctx).
	 */
	if (req->unix_path == NULL &&
	    ((curl_openssl &&
	    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, cleanse_ctx) != CURLE_OK) ||
	    curl_easy_setopt(h, CURLOPT_SSLVERSION,
	        (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
	        (long)CURL_HTTP_VERSION_2TLS) != CURLE_OK ||
	    (req->ca_file != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file) != CURLE_OK) ||
	    (req->resolve != NULL &&
	    curl_easy_setopt(h, CURLOPT_RESOLVE, &resolve) != CURLE_OK))) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up TLS for %s",
		    req->endpoint);
		goto out;
	}
	if ((req->body != NULL || req->empty_body) &&
	    (curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
	        (curl_off_t)(req->body != NULL ? req->body_len : 0)) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
	        req->body != NULL ? req->body : "") != CURLE_OK)) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	rc = curl_easy_perform(h);
	(void)curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
	(void)curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
	/* The URL carries no secret; headers are never logged. */
	kb_debug("%s %s via %s: curl %d (%s), errno %ld, request-id %s",
	    req->method, req->url, req->endpoint, (int)rc, errbuf, oserr,
	    resp.request_id[0] ? resp.request_id : "-");
	how->maybe_sent = !failed_before_sending(rc);
	how->transient = transient(rc);
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		r = kb_error_set(KB_ERR_UNREACHABLE, "cannot connect to %s: %s",
		    req->endpoint, oserr != 0 ? strerror((int)oserr) :
		    curl_easy_strerror(rc));
		goto out;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		r = kb_error_set(KB_ERR_UNREACHABLE, "no trusted TLS connection to %s: "
		    "%s; if it uses a private CA, give that CA's certificate (ca_file)",
		    req->endpoint, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	case CURLE_UNSUPPORTED_PROTOCOL:
		r = kb_error_set(KB_ERR_INVALID, "%s: only https:// is allowed here",
		    req->endpoint);
		goto out;
	case CURLE_OPERATION_TIMEDOUT:
		r = kb_error_set(KB_ERR_IO, "no answer from %s within %ld ms",
		    req->endpoint, req->total_ms);
		goto out;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (sink.over || rc == CURLE_FILESIZE_EXCEEDED) {
			r = kb_error_set(KB_ERR_LIMIT,
			    "the response from %s is larger than %zu bytes",
			    req->endpoint, req->max_body);
			goto out;
		}
		/* FALLTHROUGH */
	default:
		r = kb_error_set(KB_ERR_IO, "request to %s failed: %s",
		    req->endpoint, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    code < 100 || code > 599) {
		r = kb_error_set(KB_ERR_PROTOCOL, "%s sent no valid HTTP status",
		    req->endpoint);
		goto out;
	}
	if (resp.www_auth_over) {
		r = kb_error_set(KB_ERR_PROTOCOL, "%s sent a WWW-Authenticate header "
		    "longer than %d bytes", req->endpoint, KB_HTTP_MAX_CHALLENGE);
		goto out;
	}
	keep = true;
	resp.status = code;
	resp.new_connections = nconn;
	*out = resp;        /* transferred */
	kb_http_resp_init(&resp);
	r = 0;
 out:
	kb_http_resp_clear(&resp);
	if (authnode.data != NULL) {
		for (t = hdrs; t != NULL && t->next != &authnode; t = t->next)
			;
		if (t != NULL)
			t->next = NULL;
	}
	curl_slist_free_all(hdrs);
	pool_give(req->pool, h, keep);
	return r;
}

int
kb_http_form_escape(struct kb_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char enc[3];
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			r = kb_buf_append(b, &s[i], 1);
		} else {
			enc[0] = '%';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			r = kb_buf_append(b, enc, 3);
		}
		if (r != 0)
			return r;
	}
	return 0;
}

bool
kb_ascii_ieq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

static int
url_part(CURLU *u, CURLUPart what, char **out, unsigned flags)
{
	char *v = NULL;
	CURLUcode uc = curl_url_get(u, what, &v, flags);

	if (uc == CURLUE_OK) {
		*out = kb_strdup(v);
		curl_free(v);
		return *out != NULL ? 0 : KB_ERR_ALLOC;
	}
	*out = NULL;
	return 0;
}

int
kb_url_parse(const char *url, struct kb_url *out)
{
	struct kb_url u;
	CURLU *h = NULL;
	char *port = NULL, *p;
	unsigned long long pn;
	int r = KB_ERR_ALLOC;

	memset(&u, 0, sizeof(u));
	if ((r = curl_ready()) != 0)
		return r;
	if ((h = curl_url()) == NULL)
		return KB_ERR_ALLOC;
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		r = kb_error_set(KB_ERR_INVALID, "%.200s is not a URL", url);
		goto out;
	}
	if ((r = url_part(h, CURLUPART_SCHEME, &u.scheme, 0)) != 0 ||
	    (r = url_part(h, CURLUPART_HOST, &u.host, 0)) != 0 ||
	    (r = url_part(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) != 0 ||
	    (r = url_part(h, CURLUPART_PATH, &u.path, 0)) != 0 ||
	    (r = url_part(h, CURLUPART_QUERY, &u.query, 0)) != 0)
		goto out;
	if (u.scheme == NULL || u.host == NULL || u.host[0] == '\0' ||
	    u.path == NULL) {
		r = kb_error_set(KB_ERR_INVALID, "%.200s is not a URL with a host", url);
		goto out;
	}
	for (p = u.scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (p = u.host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (port != NULL && kb_parse_ull(port, 1, 65535, &pn) == 0)
		u.port = (long)pn;
	else
		u.port = strcmp(u.scheme, "https") == 0 ? 443 : 80;
	*out = u;
	memset(&u, 0, sizeof(u));
	r = 0;
 out:
	kb_url_clear(&u);
	free(port);
	curl_url_cleanup(h);
	return r;
}

void
kb_url_clear(struct kb_url *u)
{
	if (u == NULL)
		return;
	free(u->scheme);
	free(u->host);
	free(u->path);
	free(u->query);
	memset(u, 0, sizeof(*u));
}
