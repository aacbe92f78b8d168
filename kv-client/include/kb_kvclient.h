/*
 * kb_kvclient.h: keybridge's Key Vault REST client.
 *
 * One public header.  A client talks HTTP to one endpoint: the agent's
 * Unix socket (http://localhost/... over AF_UNIX), or an HTTPS endpoint
 * (Azure Key Vault, Managed HSM, or keybridged's own HTTPS listener) with
 * Key Vault's bearer challenge, retries and paging.  The transport
 * (libcurl) is kept apart from the endpoint specifics, so an endpoint
 * kind adds a constructor, not a second client.
 *
 * Every function returns 0 or a negative KB_ERR_* code (kb_common.h) and
 * records a sentence with kb_error_set() on failure.  Outputs are written
 * only on success.  Never includes PKCS#11 or agent headers.
 */
#ifndef KB_KVCLIENT_H
#define KB_KVCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kb_common.h"

#define KB_KV_DEFAULT_CONNECT_MS 5000L
#define KB_KV_DEFAULT_TOTAL_MS 30000L
/* Response bodies above this are refused while they arrive (4 MiB). */
#define KB_KV_DEFAULT_MAX_BODY ((size_t)4 << 20)
/* api-version appended to every request of an HTTPS client. */
#define KB_KV_API_VERSION "2026-04-01"
/* Retries of an HTTPS client (a Unix-socket client does not retry). */
#define KB_KV_DEFAULT_MAX_RETRIES 4
#define KB_KV_DEFAULT_RETRY_BASE_MS 800L
#define KB_KV_DEFAULT_RETRY_BUDGET_MS 60000L
/* In kb_kv_options.max_retries: no retries at all. */
#define KB_KV_NO_RETRY (-1)

/*
 * A client keeps a small pool of connections (HTTP keep-alive; TLS
 * sessions and DNS answers shared between them), and may be used by
 * several threads at once: each request borrows a connection.
 */
typedef struct kb_kv_client kb_kv_client;

/*
 * Where bearer tokens come from.  get_token returns a token for tenant
 * (NULL when the challenge named none) and scope
 * ("https://vault.azure.net/.default"): on success *out_token holds it
 * (the caller frees it with kb_secret_free) and *out_expiry its expiry in
 * Unix seconds (0 when unknown).  It may be called from several threads
 * at once, and never with a client lock held.  Failures return a
 * KB_ERR_* code with a sentence, which the request returns as is.
 * kb_kv_credential_source() gives the source of a built-in credential;
 * anything else (the agent's HSM-held credentials) can plug in here.
 */
struct kb_kv_token_source {
	int (*get_token)(void *ctx, const char *tenant, const char *scope,
	    struct kb_secret **out_token, int64_t *out_expiry);
	void *ctx;
};

/*
 * Options of an HTTPS client.  Zero everything, then set what you need:
 * every zero field means "the default".
 */
struct kb_kv_options {
	/* PEM file of CAs to trust (a private CA); NULL: the system store.
	 * Certificates and host names are always verified. */
	const char *ca_file;
	/* Token source for Key Vault's challenge (copied; its ctx must outlive
	 * the client).  NULL: requests go without a token, and a 401 is
	 * returned as a response. */
	const struct kb_kv_token_source *tokens;
	/* Appended as ?api-version= to every path; NULL: KB_KV_API_VERSION. */
	const char *api_version;
	long connect_ms;          /* 0: KB_KV_DEFAULT_CONNECT_MS */
	long total_ms;            /* one attempt; 0: KB_KV_DEFAULT_TOTAL_MS */
	size_t max_body;          /* response cap; 0: KB_KV_DEFAULT_MAX_BODY */
	int max_retries;          /* 0: default; KB_KV_NO_RETRY: none */
	long retry_base_ms;       /* first backoff; 0: default */
	long retry_budget_ms;     /* all attempts and waits of one request */
	/*
	 * Do not check that the challenge's resource belongs to the vault's
	 * domain.  Only for local test doubles (keybridged's HTTPS listener
	 * says resource="https://vault.azure.net" from 127.0.0.1): without
	 * the check, any server can ask for a Key Vault token.
	 */
	bool skip_resource_check;
	/* "HOST:PORT:ADDRESS" to connect there instead of asking DNS
	 * (curl's CURLOPT_RESOLVE): tests, and addresses pinned by config.
	 * TLS still checks HOST against the certificate. */
	const char *resolve;
};

/*
 * A client for the agent's socket at path (not contacted here).
 * Requests go to http://localhost<path-of-request> through the socket.
 */
int kb_kv_client_new_unix(const char *socket_path, kb_kv_client **out) KB_WARN_UNUSED;

/*
 * A client for an HTTPS vault ("https://NAME.vault.azure.net", an
 * optional path prefix, no query); opt may be NULL.  Not contacted here.
 * Anything but https:// is KB_ERR_INVALID: tokens never cross a network
 * in clear.  Unreadable ca_file: KB_ERR_CONFIG.
 */
int kb_kv_client_new_url(const char *base_url, const struct kb_kv_options *opt,
    kb_kv_client **out) KB_WARN_UNUSED;

/*
 * A client for the agent's socket at path (not contacted here).
 * Requests go to http://localhost<path-of-request> through the socket.
 */
int kb_kv_client_new_unix(const char *socket_path, kb_kv_client **out) KB_WARN_UNUSED;
void kb_kv_client_free(kb_kv_client *c);

/* Connect and per-attempt timeouts in milliseconds (> 0). */
void kb_kv_client_set_timeouts(kb_kv_client *c, long connect_ms, long total_ms);
/* Cap on the response body, enforced as data arrives (> 0). */
void kb_kv_client_set_max_body(kb_kv_client *c, size_t max_body);
/* The endpoint as people know it: the socket path or the base URL. */
const char *kb_kv_client_endpoint(const kb_kv_client *c);
/* Counters for tests and benchmarks: HTTP exchanges made, TLS or TCP
 * connections opened, and retries. */
struct kb_kv_stats {
	unsigned long requests;
	unsigned long connections;
	unsigned long retries;
	unsigned long challenges;
};
void kb_kv_client_stats(kb_kv_client *c, struct kb_kv_stats *out);

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
 * kb_kv_request with flags.  On an HTTPS client, 429, 500, 502, 503,
 * 504 and transport failures are retried with exponential backoff and
 * jitter, waiting what Retry-After (seconds or an HTTP date),
 * retry-after-ms or x-ms-retry-after-ms ask for, within max_retries and
 * retry_budget_ms; the last answer (or error) is returned.
 *
 * KB_KV_NOT_IDEMPOTENT (create, import, rotate): the request is resent
 * only when it certainly had no effect (429, 401 challenge, no
 * connection made).  After a 5xx or a transport failure once the request
 * was sent, the outcome is unknown: kb_kv_request_flags returns that
 * answer or error (KB_ERR_IO), and the caller must read the key's
 * versions before trying again, or a retry may make a second version.
 *
 * KB_KV_RAW_PATH: do not append api-version (the agent's /keybridge/
 * paths, or a path that already has one).
 */
#define KB_KV_NOT_IDEMPOTENT 0x1u
#define KB_KV_RAW_PATH 0x2u
int kb_kv_request_flags(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, unsigned flags, struct kb_kv_response **out) KB_WARN_UNUSED;

/*
 * 0 for a 2xx response.  Otherwise the KB_ERR_* code for the status and
 * Key Vault error code (400 INVALID, 401/403 DENIED, 404 NOT_FOUND,
 * 409 CONFLICT, 413 LIMIT, 429 LIMIT (throttled), 5xx DEVICE or
 * INTERNAL, ...), with the
 * service's message recorded by kb_error_set().
 */
int kb_kv_response_error(const struct kb_kv_response *r);

/* Mapping used by kb_kv_response_error, for tests and other callers. */
int kb_kv_status_to_err(long status, const char *kv_code);

void kb_kv_response_free(struct kb_kv_response *r);

/* ---------------------------------------------------------------- paging */

/*
 * GET path and every page after it through nextLink, calling each() on
 * every element of "value" (each returns 0 to go on, or a KB_ERR_* code
 * that stops the walk and is returned).  null, absent and empty nextLink
 * all end the list.  A nextLink on another scheme, host or port, a
 * non-2xx page (mapped as kb_kv_response_error does), or more than
 * max_pages pages (0: 100000) fail.
 */
int kb_kv_list(kb_kv_client *c, const char *path, unsigned max_pages,
    int (*each)(void *arg, const cJSON *item), void *arg) KB_WARN_UNUSED;

/*
 * The next page's request path from a page, for kb_kv_list and callers
 * walking pages themselves: *out is NULL at the end, or a malloc'd
 * path+query relative to base_url with its api-version removed (the
 * client appends its own).  KB_ERR_PROTOCOL when the link leaves
 * base_url's scheme, host and port, or is not a string.
 */
int kb_kv_next_link(const char *base_url, const cJSON *page, char **out) KB_WARN_UNUSED;

/* ------------------------------------------------------ bearer challenge */

/*
 * A parsed WWW-Authenticate: Bearer challenge (Key Vault's, NOTES.md
 * 2.1).  scope is the challenge's scope, else resource + "/.default";
 * tenant the first path segment of authorization (NULL if none);
 * resource_host the host of the resource or scope URL, lower case.
 */
struct kb_kv_challenge {
	char *authorization;
	char *tenant;
	char *scope;
	char *resource_host;
};

/*
 * Parse the value of one WWW-Authenticate header (pure, no I/O).  Scheme
 * and parameter names are case-insensitive; values may be quoted strings
 * (with backslash escapes) or tokens; other schemes before or after the
 * Bearer challenge are skipped.  KB_ERR_PROTOCOL when there is no Bearer
 * challenge with an authorization (or authorization_uri) and a resource
 * or scope, or any of them is malformed; at most 8 KiB of header.
 */
int kb_kv_challenge_parse(const char *header, size_t len,
    struct kb_kv_challenge **out) KB_WARN_UNUSED;
void kb_kv_challenge_free(struct kb_kv_challenge *ch);
/*
 * 0 when the challenge may be answered for vault_host: vault_host ends
 * with "." + resource_host (myvault.vault.azure.net and vault.azure.net,
 * x.managedhsm.azure.cn and managedhsm.azure.cn, ...).  Otherwise
 * KB_ERR_DENIED with a sentence.
 */
int kb_kv_challenge_check_host(const struct kb_kv_challenge *ch,
    const char *vault_host);

/*
 * Seconds to wait from a Retry-After value (delta-seconds or an HTTP
 * date, relative to now), in milliseconds; -1 when it is neither.
 */
long kb_kv_retry_after_ms(const char *value, int64_t now);

/* ------------------------------------------------------------ credentials */

typedef struct kb_kv_credential kb_kv_credential;

/*
 * A bearer token kept in a file: the token alone (first line), or the
 * JSON printed by `az account get-access-token` (accessToken,
 * expires_on).  The file is read on every get_token, so a refreshed file
 * is picked up; it must be readable by its owner only.  A JWT whose exp
 * has passed is KB_ERR_CONFIG with a sentence saying to get a new one;
 * an opaque token (not a JWT) is used as it is.
 */
int kb_kv_credential_token_file(const char *path, kb_kv_credential **out) KB_WARN_UNUSED;

/*
 * OAuth 2.0 client credentials with a client secret: POST
 * {authority}/{tenant}/oauth2/v2.0/token.  tenant_id may be NULL (the
 * challenge's tenant is used); when set, a challenge naming another
 * tenant is refused, as the Azure SDKs do, unless allow_other_tenants.
 * authority_host NULL: $AZURE_AUTHORITY_HOST, else
 * https://login.microsoftonline.com; it must be https.  ca_file: as in
 * kb_kv_options.  The secret is copied.  Tokens are cached per tenant and
 * scope and fetched again 5 minutes before they expire.
 */
struct kb_kv_client_secret_options {
	const char *tenant_id;
	const char *client_id;
	const struct kb_secret *client_secret;
	const char *authority_host;
	const char *ca_file;
	bool allow_other_tenants;
	long total_ms;            /* 0: KB_KV_DEFAULT_TOTAL_MS */
};
int kb_kv_credential_client_secret(const struct kb_kv_client_secret_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/*
 * The credential as a token source, for kb_kv_options.tokens.  The
 * credential must outlive every client using it; it is thread-safe.
 */
void kb_kv_credential_source(kb_kv_credential *cred,
    struct kb_kv_token_source *out);
/* Wipes cached tokens and the secret.  Accepts NULL. */
void kb_kv_credential_free(kb_kv_credential *cred);

#endif /* KB_KVCLIENT_H */
