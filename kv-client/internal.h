/*
 * internal.h: kv-client's inside.  The transport (transport.c) knows
 * libcurl and nothing about Key Vault; client.c knows Key Vault's JSON
 * and error shapes and nothing about curl.
 */
#ifndef KB_KVCLIENT_INTERNAL_H
#define KB_KVCLIENT_INTERNAL_H

#include <stddef.h>

#include "kb_common.h"
#include "kb_kvclient.h"

/* One HTTP exchange, described without any endpoint policy. */
struct kb_http_req {
	const char *method;         /* "GET", "POST", ... */
	const char *url;            /* absolute URL */
	const char *unix_path;      /* connect through this AF_UNIX socket, or NULL */
	const char *endpoint;       /* how to name the peer in messages */
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	const void *body;           /* request body or NULL */
	size_t body_len;
	long connect_ms;
	long total_ms;
	size_t max_body;            /* response body cap */
	/* A curl easy handle kept between requests (keep-alive), or NULL:
	 * *reuse NULL on entry gets a new handle left there for the next
	 * request; free it with kb_http_handle_free. */
	void **reuse;
};

void kb_http_handle_free(void *h);

/*
 * Perform req.  On success *status is the HTTP status and *body the
 * response body (kb_buf, NUL-terminated; caller frees with kb_buf_free).
 */
int kb_http_perform(const struct kb_http_req *req, long *status,
    struct kb_buf *body) KB_WARN_UNUSED;

#endif /* KB_KVCLIENT_INTERNAL_H */
