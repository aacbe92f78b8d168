/*
 * transport.c: one HTTP request with libcurl.
 *
 * libcurl because the same client must later speak HTTPS to Azure Key
 * Vault (TLS, proxies, HTTP/2 and certificate checks done right), and it
 * already speaks HTTP over a Unix socket (CURLOPT_UNIX_SOCKET_PATH), so
 * the agent's socket and the cloud share one code path.  The response
 * body cap is enforced in the write callback as bytes arrive, as curl's
 * documentation advises; CURLOPT_MAXFILESIZE_LARGE only catches bodies
 * that announce their length.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
	struct kb_buf *buf;
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

int
kb_http_perform(const struct kb_http_req *req, long *status,
    struct kb_buf *body)
{
	CURL *h = NULL;
	struct curl_slist *hdrs = NULL, *t;
	struct kb_buf b;
	struct sink sink;
	char errbuf[CURL_ERROR_SIZE];
	CURLcode rc;
	long code = 0, oserr = 0;
	size_t i;
	int r = KB_ERR_INTERNAL;

	kb_buf_init(&b, req->max_body);
	sink.buf = &b;
	sink.over = false;
	errbuf[0] = '\0';
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot initialise libcurl: %s",
		    curl_easy_strerror(curl_init_rc));
		goto out;
	}
	if (req->reuse != NULL && *req->reuse != NULL) {
		/* Same connection cache, fresh options. */
		h = *req->reuse;
		*req->reuse = NULL;
		curl_easy_reset(h);
	} else if ((h = curl_easy_init()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* An empty Expect: stops curl waiting for "100 Continue". */
	if ((t = curl_slist_append(hdrs, "Expect:")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	hdrs = t;
	if (req->body != NULL) {
		if ((t = curl_slist_append(hdrs,
		    "Content-Type: application/json")) == NULL) {
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
	if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->total_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
	        (curl_off_t)req->max_body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK) {
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
	if (req->body != NULL &&
	    (curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
	        (curl_off_t)req->body_len) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body) != CURLE_OK)) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot set up a request to %s",
		    req->endpoint);
		goto out;
	}
	rc = curl_easy_perform(h);
	(void)curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
	kb_debug("%s %s via %s: curl %d (%s), errno %ld", req->method, req->url,
	    req->endpoint, (int)rc, errbuf, oserr);
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
	*status = code;
	*body = b;          /* transferred */
	kb_buf_init(&b, 0);
	r = 0;
 out:
	kb_buf_free(&b);
	curl_slist_free_all(hdrs);
	if (h != NULL && req->reuse != NULL)
		*req->reuse = h;
	else if (h != NULL)
		curl_easy_cleanup(h);
	return r;
}

void
kb_http_handle_free(void *h)
{
	if (h != NULL)
		curl_easy_cleanup(h);
}
