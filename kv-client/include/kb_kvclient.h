/*
 * kb_kvclient.h: keybridge's Key Vault REST client.
 *
 * One public header.  A client talks HTTP to one endpoint: for now the
 * agent's Unix socket (http://localhost/... over AF_UNIX); a later issue
 * adds HTTPS endpoints (Azure Key Vault, Managed HSM) with bearer tokens.
 * The transport (libcurl) is kept apart from the endpoint specifics, so
 * adding an endpoint kind adds a constructor, not a second client.
 *
 * Every function returns 0 or a negative KB_ERR_* code (kb_common.h) and
 * records a sentence with kb_error_set() on failure.  Outputs are written
 * only on success.  Never includes PKCS#11 or agent headers.
 */
#ifndef KB_KVCLIENT_H
#define KB_KVCLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "kb_common.h"

#define KB_KV_DEFAULT_CONNECT_MS 5000L
#define KB_KV_DEFAULT_TOTAL_MS 30000L
/* Response bodies above this are refused while they arrive (4 MiB). */
#define KB_KV_DEFAULT_MAX_BODY ((size_t)4 << 20)

/*
 * A client keeps its connection open between requests (HTTP keep-alive),
 * so one client must not be used by two threads at once.
 */
typedef struct kb_kv_client kb_kv_client;

/*
 * A client for the agent's socket at path (not contacted here).
 * Requests go to http://localhost<path-of-request> through the socket.
 */
int kb_kv_client_new_unix(const char *socket_path, kb_kv_client **out) KB_WARN_UNUSED;
void kb_kv_client_free(kb_kv_client *c);

/* Connect and whole-request timeouts in milliseconds (> 0). */
void kb_kv_client_set_timeouts(kb_kv_client *c, long connect_ms, long total_ms);
/* Cap on the response body, enforced as data arrives (> 0). */
void kb_kv_client_set_max_body(kb_kv_client *c, size_t max_body);
/* The endpoint as people know it: the socket path or the base URL. */
const char *kb_kv_client_endpoint(const kb_kv_client *c);

struct kb_kv_response {
	long status;          /* HTTP status */
	cJSON *body;          /* parsed JSON body, or NULL if the body was empty */
	char *error_code;     /* Key Vault error code ("Forbidden"), or NULL */
	char *error_message;  /* Key Vault error message, or NULL */
};

/*
 * Send one request.  path starts with '/' and may hold a query string;
 * body (may be NULL) is sent as application/json.  Any HTTP status
 * received with a well-formed body counts as success here: *out holds
 * it and the caller looks at status (or uses kb_kv_response_error).
 * Failures: KB_ERR_UNREACHABLE (cannot connect; the sentence names the
 * endpoint and the system error), KB_ERR_IO (timeout, broken transfer),
 * KB_ERR_LIMIT (body above the cap), KB_ERR_PROTOCOL (body not JSON).
 */
int kb_kv_request(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, struct kb_kv_response **out) KB_WARN_UNUSED;

/*
 * 0 for a 2xx response.  Otherwise the KB_ERR_* code for the status and
 * Key Vault error code (400 INVALID, 401/403 DENIED, 404 NOT_FOUND,
 * 409 CONFLICT, 413 LIMIT, 5xx DEVICE or INTERNAL, ...), with the
 * service's message recorded by kb_error_set().
 */
int kb_kv_response_error(const struct kb_kv_response *r);

/* Mapping used by kb_kv_response_error, for tests and other callers. */
int kb_kv_status_to_err(long status, const char *kv_code);

void kb_kv_response_free(struct kb_kv_response *r);

#endif /* KB_KVCLIENT_H */
