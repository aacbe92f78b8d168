/*
 * internal.h: kv-client's inside.  The transport (transport.c) knows
 * libcurl and nothing about Key Vault; client.c knows Key Vault's JSON,
 * error shapes, challenge and retries, and nothing about curl;
 * challenge.c and credential.c sit on the same two.
 */
#ifndef KB_KVCLIENT_INTERNAL_H
#define KB_KVCLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "kb_common.h"
#include "kb_kvclient.h"

/* WWW-Authenticate is kept up to this size; longer ones are refused. */
#define KB_HTTP_MAX_CHALLENGE 8192

/*
 * A pool of curl easy handles over one share handle (DNS cache and TLS
 * session cache).  Each idle handle keeps its own open connection, so a
 * pool of N handles is a pool of N keep-alive connections.  Thread-safe.
 */
struct kb_http_pool;
int kb_http_pool_new(struct kb_http_pool **out) KB_WARN_UNUSED;
void kb_http_pool_free(struct kb_http_pool *p);

/* One HTTP exchange, described without any endpoint policy. */
struct kb_http_req {
	const char *method;         /* "GET", "POST", ... */
	const char *url;            /* absolute URL */
	const char *unix_path;      /* connect through this AF_UNIX socket, or NULL */
	const char *endpoint;       /* how to name the peer in messages */
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	/* "Authorization: Bearer ..." kept in the caller's wiped memory and
	 * never copied by us (libcurl copies it into its request buffer). */
	const char *auth_header;
	const void *body;           /* request body or NULL */
	size_t body_len;
	bool empty_body;            /* send Content-Length: 0 (the challenge probe) */
	const char *content_type;   /* NULL: application/json when a body is sent */
	long connect_ms;
	long total_ms;
	size_t max_body;            /* response body cap */
	const char *ca_file;        /* CAINFO, or NULL for the system store */
	bool https_only;            /* refuse anything but https:// */
	const char *resolve;        /* "HOST:PORT:ADDRESS" or NULL */
	bool secret_body;           /* the response is a secret: wiped buffer */
	/* A new connection: libcurl resends a request whose reused
	 * connection died before an answer, which must never happen to a
	 * request that is not idempotent. */
	bool fresh_connect;
	/* Never through a proxy (IMDS is not served behind one). */
	bool no_proxy;
	struct kb_http_pool *pool;  /* NULL: a handle for this request only */
};

/* What came back. */
struct kb_http_resp {
	long status;
	struct kb_buf body;         /* NUL-terminated */
	char content_type[128];
	char retry_after[64];
	char retry_after_ms[32];
	char x_ms_retry_after_ms[32];
	char request_id[96];
	char *www_authenticate;     /* malloc'd, or NULL */
	bool www_auth_over;         /* longer than KB_HTTP_MAX_CHALLENGE */
	long new_connections;
};

void kb_http_resp_init(struct kb_http_resp *r);
void kb_http_resp_clear(struct kb_http_resp *r);

/* How a failed exchange failed (always written by kb_http_perform). */
struct kb_http_outcome {
	bool maybe_sent;   /* false only when no connection was made */
	bool transient;    /* a retry may succeed (connect, timeout, reset) */
};

/*
 * Perform req.  On success *resp holds the status, headers and body
 * (free with kb_http_resp_clear).  Failures: KB_ERR_UNREACHABLE (no
 * connection, or TLS not trusted), KB_ERR_IO (timeout, reset,
 * truncated), KB_ERR_LIMIT (body over the cap), KB_ERR_PROTOCOL (no
 * valid status), KB_ERR_INVALID (scheme not allowed).
 */
int kb_http_perform(const struct kb_http_req *req, struct kb_http_resp *resp,
    struct kb_http_outcome *how) KB_WARN_UNUSED;

/* An HTTP date (IMF-fixdate and the two obsolete forms) or -1. */
int64_t kb_http_date(const char *s);

/* Percent-encode s (RFC 3986 unreserved kept) onto b. */
int kb_http_form_escape(struct kb_buf *b, const char *s, size_t n) KB_WARN_UNUSED;

/* Parsed parts of a URL, lower-cased scheme and host; malloc'd. */
struct kb_url {
	char *scheme;
	char *host;
	long port;       /* explicit or the scheme's default */
	char *path;      /* "/" at least */
	char *query;     /* without '?', or NULL */
};
int kb_url_parse(const char *url, struct kb_url *out) KB_WARN_UNUSED;
void kb_url_clear(struct kb_url *u);

/* Case-insensitive ASCII comparison helpers. */
bool kb_ascii_ieq(const char *a, const char *b);

/* ---------------------------------- limiter (limiter.c), ops (ops.c) */

/* The limiter's classes: Key Vault counts creates apart (NOTES.md 4.1),
 * Managed HSM also deletes, purges, backups and restores (4.2); a Key
 * Vault limiter counts KB_KV_LIM_MAINT as KB_KV_LIM_OTHER. */
#define KB_KV_LIM_CREATE 0
#define KB_KV_LIM_OTHER 1
#define KB_KV_LIM_MAINT 2
#define KB_KV_LIM_NCLASS 3

/* One per vault in the process, reference-counted, thread-safe. */
struct kb_kv_limiter;

/* The limiter for scheme://host:port, made with opt's figures (or the
 * published ones) if no client of that vault holds one yet. */
int kb_kv_limiter_get(const char *scheme, const char *host, long port,
    const struct kb_kv_options *opt, struct kb_kv_limiter **out) KB_WARN_UNUSED;
/* Drops a reference; the last one frees it.  Accepts NULL. */
void kb_kv_limiter_put(struct kb_kv_limiter *l);
/* KB_KV_LIM_* of a request (path relative to the vault). */
int kb_kv_limiter_class(const char *method, const char *path, unsigned flags);
/*
 * Wait (sleeping, never spinning) for the request's place; 0, or
 * KB_ERR_LIMIT when the place comes after deadline (kb_now_mono()
 * seconds), and then nothing was taken.  l NULL: 0 at once.
 */
int kb_kv_limiter_acquire(struct kb_kv_limiter *l, int cls, unsigned flags,
    double deadline) KB_WARN_UNUSED;
/* A 429 for class cls; server_wait_ms what the server asked (-1: none). */
void kb_kv_limiter_throttled(struct kb_kv_limiter *l, int cls, long server_wait_ms);
void kb_kv_limiter_info_get(struct kb_kv_limiter *l, struct kb_kv_limiter_info *out);
/* *.managedhsm.azure.net, .azure.cn, .usgovcloudapi.net */
bool kb_kv_host_is_mhsm(const char *host);

/*
 * kb_kv_request_flags that also says whether the request may have
 * reached the server with its body (*maybe_sent; false when it
 * certainly did not, whatever the result).  ops.c needs it to tell a
 * failure that made nothing from one whose outcome is unknown.
 */
int kb_kv_request_ex(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, unsigned flags, struct kb_kv_response **out,
    bool *maybe_sent) KB_WARN_UNUSED;
/*
 * Internal request flag (beside KB_KV_NOT_IDEMPOTENT and KB_KV_RAW_PATH):
 * parse the answer into an arena (jarena.c).  Only for kb_kv_list, whose
 * pages never leave kv-client: nothing may be detached from such a body.
 */
#define KV_F_ARENA 0x80000000u

/*
 * cJSON trees parsed into one block (jarena.c).  kb_jarena_parse: the
 * tree (kb_kv_json_parse, json.h), or NULL (not JSON, or out of memory;
 * *why says which) with nothing held;
 * kb_jarena_discard frees the tree and the block (on any thread).
 */
struct kb_jarena {
	unsigned char *base;
	size_t cap, used;
	unsigned long spilled;   /* allocations that went to malloc */
};
cJSON *kb_jarena_parse(struct kb_jarena *a, const char *text, size_t len,
    const char **why);
void kb_jarena_discard(struct kb_jarena *a, cJSON *tree);

/* The client's retry figures, for ops.c. */
void kb_kv_client_retry_policy(const kb_kv_client *c, int *max_retries,
    long *base_ms, long *budget_ms);

#endif /* KB_KVCLIENT_INTERNAL_H */
