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
	/*
	 * The client-side limiter (docs/kv-client.md, "Throttling"): one per
	 * vault (scheme, host, port) in the process, shared by every client
	 * of that vault; the first client's figures apply while any lives.
	 * no_limiter: none for this client (keybridged's own endpoint, which
	 * has no such throttle).  Zero fields: Key Vault's published figures
	 * (20 creates and 4,000 other units per 10 s), or Managed HSM's (1
	 * create, 1,100 others and 10 deletes, purges, backups and restores
	 * per second) for *.managedhsm.* hosts.
	 */
	bool no_limiter;
	unsigned limit_create;    /* creates per window */
	unsigned limit_other;     /* weighted units per window (KB_KV_KEY_*) */
	long limit_window_ms;     /* 0: 10000, or 1000 for Managed HSM */
	/* Managed HSM only: DeleteKey, PurgeDeletedKey, BackupKey and
	 * RestoreKey together, per window (0: 10).  Key Vault has no such
	 * class: there they are other units and this is ignored. */
	unsigned limit_maint;
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
	/* innererror codes, outermost first, joined by '/'
	 * ("ObjectIsDeletedButRecoverable"), or NULL */
	char *error_inner;
	/*
	 * The answer holds secrets: a decrypt, unwrapKey or getRandomBytes
	 * answer (a path whose last segment is decrypt, unwrapkey or rng,
	 * any case).  Its text was read into a buffer wiped when freed and
	 * the parser's copies are zeroed; kb_kv_response_free wipes body's
	 * strings, and a caller that takes body must do the same
	 * (kb_kv_json_wipe) before freeing it.
	 */
	bool secret;
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
 * versions before trying again, or a retry may make a second version
 * (kb_kv_create_key, kb_kv_import_key and kb_kv_rotate_key do that).
 *
 * Every attempt of an HTTPS client first waits for its place under the
 * vault's client-side limit (kb_kv_options, "Throttling" in
 * docs/kv-client.md); a place later than retry_budget_ms is KB_ERR_LIMIT
 * and nothing is sent.
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
 * service's message, code and innererror codes recorded by kb_error_set().
 */
int kb_kv_response_error(const struct kb_kv_response *r);

/* Mapping used by kb_kv_response_error, for tests and other callers. */
int kb_kv_status_to_err(long status, const char *kv_code);

void kb_kv_response_free(struct kb_kv_response *r);

/*
 * Zero every string of a tree (values and member names), before
 * cJSON_Delete, when it held secrets: a request with a plaintext or a
 * private key, an answer with a plaintext.  Accepts NULL.
 */
void kb_kv_json_wipe(cJSON *j);

/*
 * j printed (unformatted, as cJSON_PrintUnformatted) leaving no copy
 * behind: cJSON_Print frees each buffer it outgrows as it is, so this
 * prints into buffers of its own, wiping one too small before it tries a
 * larger.  Free the text with kb_kv_text_free_secret.  NULL: out of
 * memory.
 */
char *kb_kv_json_print_secret(const cJSON *j);
/*
 * Wipes and frees a text from kb_kv_json_print_secret.  Accepts NULL.
 * free()'s type, so that it can be a library's free callback.
 */
void kb_kv_text_free_secret(void *text);

/* ------------------------------------------ limiter and safe create */

/*
 * More kb_kv_request_flags flags, for the limiter (NOTES.md 4.1).
 * KB_KV_CREATE counts the request as a create; CreateKey (POST
 * /keys/N/create), ImportKey (PUT /keys/N) and RotateKey (POST
 * /keys/N/rotate) are counted so without it.  KB_KV_KEY_* say what key
 * the request works on, which sets its weight: on Key Vault an RSA-3072
 * operation costs 4 RSA-2048 ones, RSA-4096 8, an HSM key twice as much
 * as a software key, an HSM create 2; on Managed HSM RSA-3072 3 and
 * RSA-4096 7.  Without them a request weighs what RSA-2048 or EC does.
 */
#define KB_KV_CREATE 0x04u
#define KB_KV_KEY_HSM 0x10u
#define KB_KV_KEY_RSA3072 0x20u
#define KB_KV_KEY_RSA4096 0x40u
/* The KB_KV_KEY_* flags for a key of kty ("RSA-HSM", "EC", ...) and
 * size in bits (RSA; 0 when unknown). */
unsigned kb_kv_key_flags(const char *kty, unsigned size_bits);

/* The limiter a client shares with the other clients of its vault. */
struct kb_kv_limiter_info {
	bool managed_hsm;          /* figures of Managed HSM (host suffix) */
	long window_ms;
	unsigned limit_create;     /* creates per window */
	unsigned limit_other;      /* units per window */
	double factor_create;      /* 1, less while recovering from a 429 */
	double factor_other;
	unsigned clients;          /* clients sharing it now */
	unsigned long requests_create, requests_other;
	unsigned long units_create, units_other;
	unsigned long waits;       /* requests that had to wait */
	unsigned long throttled;   /* 429s seen */
	/* Managed HSM's deletes, purges, backups and restores (DELETE
	 * /keys/N, DELETE /deletedkeys/N, POST /keys/N/backup, POST
	 * /keys/restore), each weighing 1.  All 0 on Key Vault, which counts
	 * them in requests_other and units_other. */
	unsigned limit_maint;      /* per window */
	double factor_maint;
	unsigned long requests_maint, units_maint;
	unsigned long waits_maint; /* of waits, those of this class */
};
/* KB_ERR_NOT_FOUND when the client has no limiter (Unix socket, or
 * no_limiter). */
int kb_kv_client_limiter(kb_kv_client *c, struct kb_kv_limiter_info *out) KB_WARN_UNUSED;

/*
 * Create, import and rotate without ever making two versions.  Create
 * (POST /keys/{name}/create with body), import (PUT /keys/{name} with
 * body) and rotate (POST /keys/{name}/rotate) may have worked when the
 * answer is lost (a reset, a timeout, a 5xx).  So these first read the
 * key's versions (GET /keys/{name}/versions, all pages; 404: none),
 * send once (KB_KV_NOT_IDEMPOTENT), and after an ambiguous failure read
 * them again: exactly one new version means it worked, and that version
 * is fetched and returned; none means nothing was made, and the request
 * is sent again (within max_retries and retry_budget_ms); anything else
 * (the versions cannot be read, several new ones) is KB_ERR_IO with a
 * sentence saying the outcome is unknown and which key to check: never
 * a blind resend.
 *
 * name is a key name (URL-encoded here).  flags: KB_KV_KEY_* (the weight;
 * create and import take it from the body's kty and key_size/n when 0).
 * On success *out is the 2xx answer, the new version's KeyBundle.  A
 * non-2xx answer is returned as kb_kv_response_error maps it.
 */
int kb_kv_create_key(kb_kv_client *c, const char *name, const cJSON *body,
    unsigned flags, struct kb_kv_response **out) KB_WARN_UNUSED;
int kb_kv_import_key(kb_kv_client *c, const char *name, const cJSON *body,
    unsigned flags, struct kb_kv_response **out) KB_WARN_UNUSED;
int kb_kv_rotate_key(kb_kv_client *c, const char *name, unsigned flags,
    struct kb_kv_response **out) KB_WARN_UNUSED;

/* ---------------------------------------------------------------- paging */

/*
 * GET path and every page after it through nextLink, calling each() on
 * every element of "value" (each returns 0 to go on, or a KB_ERR_* code
 * that stops the walk and is returned).  null, absent and empty nextLink
 * all end the list.  A nextLink on another scheme, host or port, a
 * non-2xx page (mapped as kb_kv_response_error does), or more than
 * max_pages pages (0: 100000) fail.  item lives until each() returns:
 * copy (cJSON_Duplicate) what must outlive it, never detach from it.
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
	/* Cloud name (kb_kv_cloud_by_name) whose login host is the default
	 * authority when neither authority_host nor $AZURE_AUTHORITY_HOST is
	 * set; NULL: public. */
	const char *cloud;
};
int kb_kv_credential_client_secret(const struct kb_kv_client_secret_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/* ---- credentials: certificates, workload and managed identity, env ---- */

/*
 * Sovereign clouds (NOTES.md 2.5).  Prefer what a vault's challenge says;
 * the table gives the defaults: the authority, and the DNS suffixes that
 * tell which cloud a vault is in.
 */
struct kb_kv_cloud {
	const char *name;            /* "public", "china", "usgov" */
	const char *azure_name;      /* "AzureCloud", "AzureChinaCloud", ... */
	const char *authority_host;  /* "https://login.microsoftonline.com" */
	const char *vault_suffix;    /* ".vault.azure.net" */
	const char *mhsm_suffix;     /* ".managedhsm.azure.net" */
	const char *vault_scope;     /* "https://vault.azure.net/.default" */
	const char *mhsm_scope;
};
/* By name or Azure name, any case; NULL when unknown (or name NULL). */
const struct kb_kv_cloud *kb_kv_cloud_by_name(const char *name);
/* The cloud a vault or Managed HSM host name belongs to, or NULL. */
const struct kb_kv_cloud *kb_kv_cloud_for_host(const char *host);
/* The whole table: *n entries, public first. */
const struct kb_kv_cloud *kb_kv_clouds(size_t *n);

/*
 * Signs client assertions for a certificate credential, so that the
 * private key can stay where it is (a PKCS#11 token: the agent plugs its
 * token key in here; kv-client never sees PKCS#11).
 *
 * sign_ps256: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
 * (JWS PS256, RFC 7518 3.5) over msg, which the signer hashes itself;
 * *sig malloc'd (freed by the caller with free()), the modulus' size.
 * Returns 0 or a KB_ERR_* code with a sentence.
 * public_key_der (optional, may be NULL): the key's SubjectPublicKeyInfo
 * DER, malloc'd; used to refuse a certificate for another key up front.
 * free_ctx (optional): called once when the credential that took the
 * signer is freed.  The callbacks may be called from several threads at
 * once (one at a time per credential: the credential serialises them).
 */
struct kb_kv_signer {
	int (*sign_ps256)(void *ctx, const unsigned char *msg, size_t len,
	    unsigned char **sig, size_t *sig_len);
	int (*public_key_der)(void *ctx, unsigned char **spki, size_t *len);
	void (*free_ctx)(void *ctx);
	void *ctx;
};

/*
 * A software signer from a PEM file holding a private RSA key (and
 * usually its certificate: what AZURE_CLIENT_CERTIFICATE_PATH names in
 * the Azure SDKs).  The file must be readable by its owner only.
 * password: for an encrypted key, or NULL.  On success *out owns an
 * OpenSSL key, released through out->free_ctx (which a credential calls;
 * call it yourself if no credential took the signer).  KB_ERR_CONFIG
 * with a sentence: unreadable file, readable by others, no RSA key.
 */
int kb_kv_signer_pem_file(const char *path, const struct kb_secret *password,
    struct kb_kv_signer *out) KB_WARN_UNUSED;

/*
 * OAuth 2.0 client credentials with a certificate (NOTES.md 2.2, 2.3):
 * each token request carries a fresh client assertion JWT, header
 * {alg: PS256, typ: JWT, x5t#S256: base64url(SHA-256(DER cert))}, claims
 * aud = {authority}/{tenant}/oauth2/v2.0/token, iss = sub = client_id,
 * jti = a random GUID, nbf = iat = now, exp = now + 600, signed by the
 * signer and checked against the certificate's key before it is sent.
 * cert_file: PEM holding the certificate (the first CERTIFICATE block;
 * a private key in the same file is ignored here).  The certificate must
 * hold an RSA key, be within its validity, and, when the signer gives
 * its public key, be that key's: otherwise KB_ERR_CONFIG with a sentence.
 * The other fields are as in kb_kv_client_secret_options.  On success the
 * credential owns the signer (its free_ctx is called at the end); on
 * failure the caller still does.
 */
struct kb_kv_client_cert_options {
	const char *tenant_id;
	const char *client_id;
	const char *cert_file;
	const struct kb_kv_signer *signer;
	const char *authority_host;
	const char *cloud;
	const char *ca_file;
	bool allow_other_tenants;
	long total_ms;
};
int kb_kv_credential_client_cert(const struct kb_kv_client_cert_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/*
 * Workload identity: a federated token in a file (Kubernetes projects
 * one and names it in AZURE_FEDERATED_TOKEN_FILE) is the client
 * assertion.  The file is read again at every token request, since the
 * platform rotates it; a JWT in it whose exp has passed is KB_ERR_CONFIG.
 * Its mode is not checked: Kubernetes projects it 0644 into the pod's
 * own mount, and the token is short-lived and audience-bound.
 */
struct kb_kv_workload_options {
	const char *tenant_id;
	const char *client_id;
	const char *token_file;
	const char *authority_host;
	const char *cloud;
	const char *ca_file;
	bool allow_other_tenants;
	long total_ms;
};
int kb_kv_credential_workload(const struct kb_kv_workload_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/*
 * Managed identity (NOTES.md 2.4).  The resource asked for is the scope
 * without "/.default"; the challenge's tenant is not used.
 *  - IMDS: GET {imds_authority}/metadata/identity/oauth2/token
 *    ?api-version=2018-02-01&resource=R[&client_id=ID] with
 *    "Metadata: true", never through a proxy; 404, 410, 429 and 5xx are
 *    retried (max_retries, waits retry_base_ms, doubling).
 *  - App Service: GET {app_service_endpoint}?api-version=2019-08-01
 *    &resource=R[&client_id=ID] with X-IDENTITY-HEADER.
 * Plain http is allowed for 169.254.169.254 and loopback addresses only;
 * every other endpoint must be https (KB_ERR_CONFIG otherwise).
 */
enum kb_kv_mi_kind {
	KB_KV_MI_AUTO = 0,   /* App Service when its endpoint and header are
	                        known (options or IDENTITY_ENDPOINT and
	                        IDENTITY_HEADER), else IMDS */
	KB_KV_MI_IMDS,
	KB_KV_MI_APP_SERVICE,
};
#define KB_KV_IMDS_AUTHORITY "http://169.254.169.254"
#define KB_KV_MI_DEFAULT_RETRIES 4       /* 5 tries */
#define KB_KV_MI_DEFAULT_RETRY_BASE_MS 2000L  /* 2, 4, 8, 16 s */
struct kb_kv_managed_identity_options {
	enum kb_kv_mi_kind kind;
	const char *client_id;          /* user-assigned identity; NULL: system */
	/* NULL: $AZURE_POD_IDENTITY_AUTHORITY_HOST, else KB_KV_IMDS_AUTHORITY */
	const char *imds_authority;
	const char *app_service_endpoint;   /* NULL: $IDENTITY_ENDPOINT */
	const struct kb_secret *app_service_header;  /* NULL: $IDENTITY_HEADER */
	const char *ca_file;
	int max_retries;                /* 0: default; KB_KV_NO_RETRY: none */
	long retry_base_ms;             /* 0: KB_KV_MI_DEFAULT_RETRY_BASE_MS */
	long total_ms;                  /* one attempt; 0: default */
};
int kb_kv_credential_managed_identity(
    const struct kb_kv_managed_identity_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/*
 * The credential the Azure SDKs' environment variables describe, in
 * EnvironmentCredential's and then DefaultAzureCredential's order:
 *  1. AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: client secret;
 *  2. AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH
 *     (a PEM with certificate and key; AZURE_CLIENT_CERTIFICATE_PASSWORD
 *     if encrypted): certificate with a software signer;
 *  3. AZURE_FEDERATED_TOKEN_FILE with AZURE_TENANT_ID, AZURE_CLIENT_ID:
 *     workload identity;
 *  4. IDENTITY_ENDPOINT and IDENTITY_HEADER: App Service managed
 *     identity (AZURE_CLIENT_ID picks a user-assigned identity).
 * AZURE_AUTHORITY_HOST applies to 1-3.  IMDS is not guessed: with none
 * of these, KB_ERR_CONFIG says which variables to set (or use
 * kb_kv_credential_managed_identity on an Azure VM).  o may be NULL.
 */
struct kb_kv_env_options {
	const char *ca_file;
	const char *cloud;
	bool allow_other_tenants;
	long total_ms;
};
int kb_kv_credential_from_env(const struct kb_kv_env_options *o,
    kb_kv_credential **out) KB_WARN_UNUSED;

/* "token-file", "client-secret", "client-certificate",
 * "workload-identity", "managed-identity-imds",
 * "managed-identity-app-service"; never NULL. */
const char *kb_kv_credential_kind(const kb_kv_credential *cred);
/* Token requests the credential has sent (tests, benchmarks). */
unsigned long kb_kv_credential_fetches(kb_kv_credential *cred);

/*
 * The credential as a token source, for kb_kv_options.tokens.  The
 * credential must outlive every client using it; it is thread-safe.
 */
void kb_kv_credential_source(kb_kv_credential *cred,
    struct kb_kv_token_source *out);
/* Wipes cached tokens and the secret.  Accepts NULL. */
void kb_kv_credential_free(kb_kv_credential *cred);

/* --------------------------------------------------------------- decoders */

/*
 * Typed decoders for Key Vault's response bodies (keys.json 2026-04-01
 * definitions; NOTES.md 1.1).  Pure: no I/O, so the client, the tests
 * and the fuzzer share them.  Each takes the parsed body (kb_kv_response
 * .body) and on success gives a malloc'd struct the caller frees with
 * the matching _free (which accepts NULL).
 *
 * Rules, the same for every decoder:
 *  - a field of the wrong JSON type is KB_ERR_PROTOCOL with a sentence
 *    naming the field ("key.n is a number, not a base64url string");
 *  - unknown fields are ignored (forward compatibility: hsmPlatform,
 *    key_hsm, release_policy, attestation, key_size, ... are skipped);
 *  - JSON null counts as absent, as Azure sends it for optional fields;
 *  - binary fields are base64url, decoded leniently (both alphabets,
 *    optional padding; kb_b64url_decode);
 *  - times are Unix seconds as int64 (whole numbers up to 2^53, so 2100
 *    and later work);
 *  - every list and string a peer controls is capped, above what Key
 *    Vault documents (15 tags of 256 characters, 25 items a page), so
 *    valid service output is never refused.
 */

/* Caps of the decoders (KB_ERR_PROTOCOL above them). */
#define KB_KV_MAX_TAGS 64          /* Key Vault allows 15 */
#define KB_KV_MAX_TAG_LEN 1024     /* Key Vault allows 256 */
#define KB_KV_MAX_KEY_OPS 32
#define KB_KV_MAX_PAGE_ITEMS 1000  /* Key Vault sends at most 25 */
#define KB_KV_MAX_LIFETIME_ACTIONS 32
#define KB_KV_MAX_INNER_ERRORS 8
#define KB_KV_MAX_ID_LEN 4096

/* Bytes from a base64url field; data NULL and len 0 when absent. */
struct kb_kv_bytes {
	unsigned char *data;
	size_t len;
};

/*
 * A key identifier, https://{vault}[/prefix]/keys/{name}[/{version}]
 * (or .../deletedkeys/{name}), split.  vault_url is everything before
 * "/keys/" ("https://myvault.vault.azure.net"); version is NULL for a
 * kid without one (the items of GetKeys).  All NULL when absent.
 */
struct kb_kv_kid {
	char *id;          /* as received */
	char *vault_url;
	char *name;
	char *version;
};

/*
 * Split a key identifier (pure).  KB_ERR_PROTOCOL when it is not an
 * http(s) URL whose path ends in keys/NAME[/VERSION] or
 * deletedkeys/NAME.  On success *out is filled; its four strings share
 * one allocation: clear it with kb_kv_kid_clear, never free a member.
 */
int kb_kv_kid_parse(const char *id, struct kb_kv_kid *out) KB_WARN_UNUSED;
void kb_kv_kid_clear(struct kb_kv_kid *kid);

/* Which fields of the structs below were present. */
#define KB_KV_HAS_ENABLED          0x0001u
#define KB_KV_HAS_NBF              0x0002u
#define KB_KV_HAS_EXP              0x0004u
#define KB_KV_HAS_CREATED          0x0008u
#define KB_KV_HAS_UPDATED          0x0010u
#define KB_KV_HAS_RECOVERABLE_DAYS 0x0020u
#define KB_KV_HAS_EXPORTABLE       0x0040u
#define KB_KV_HAS_MANAGED          0x0080u
#define KB_KV_HAS_DELETED_DATE     0x0100u
#define KB_KV_HAS_PURGE_DATE       0x0200u

/* KeyAttributes (hsmPlatform, attestation, key_size, external_key ignored). */
struct kb_kv_attributes {
	unsigned present;          /* KB_KV_HAS_* */
	bool enabled;
	bool exportable;
	int64_t nbf, exp, created, updated;
	int recoverable_days;
	char *recovery_level;      /* "Recoverable+Purgeable", or NULL */
};

struct kb_kv_tag {
	char *name;
	char *value;
};

struct kb_kv_tags {
	struct kb_kv_tag *v;       /* in the order received */
	size_t n;
};

/*
 * The public JsonWebKey of a KeyBundle (key_hsm and private members
 * ignored).  n has any leading zero bytes removed (the service may send
 * a modulus with one, NOTES.md 1.5), and n_bits is its real length.
 */
struct kb_kv_jwk {
	char *kty;                 /* "RSA", "EC-HSM", ... as sent */
	char *crv;                 /* "P-256", ... or NULL */
	char **key_ops;            /* as sent, in the order sent */
	size_t n_key_ops;
	struct kb_kv_bytes n, e, x, y;
	unsigned n_bits;           /* 0 without n */
};

/* DeletedKeyBundle / DeletedKeyItem additions; zero when not deleted. */
struct kb_kv_deleted {
	char *recovery_id;         /* "https://.../deletedkeys/NAME", or NULL */
	int64_t deleted_date;      /* KB_KV_HAS_DELETED_DATE in present */
	int64_t scheduled_purge_date;  /* KB_KV_HAS_PURGE_DATE */
};

/*
 * KeyBundle and DeletedKeyBundle (the latter is the former plus
 * recoveryId, deletedDate and scheduledPurgeDate, decoded when present).
 * key.kid and key.kty are required: a bundle without them names no key.
 */
struct kb_kv_key_bundle {
	struct kb_kv_kid kid;      /* key.kid, split */
	struct kb_kv_jwk key;
	struct kb_kv_attributes attributes;
	struct kb_kv_tags tags;
	unsigned present;          /* KB_KV_HAS_MANAGED, _DELETED_DATE, _PURGE_DATE */
	bool managed;
	struct kb_kv_deleted deleted;
};
int kb_kv_key_bundle_parse(const cJSON *body,
    struct kb_kv_key_bundle **out) KB_WARN_UNUSED;
void kb_kv_key_bundle_free(struct kb_kv_key_bundle *kb);

/* KeyItem and DeletedKeyItem: kid is required. */
struct kb_kv_key_item {
	struct kb_kv_kid kid;
	struct kb_kv_attributes attributes;
	struct kb_kv_tags tags;
	unsigned present;          /* as in kb_kv_key_bundle */
	bool managed;
	struct kb_kv_deleted deleted;
};

/*
 * KeyListResult and DeletedKeyListResult: value (required, an array) and
 * nextLink.  next_link is NULL at the end: null, absent and "" all end
 * paging (NOTES.md 1.3).  It is not checked here; kb_kv_next_link does
 * that before it is followed.
 */
struct kb_kv_key_list {
	struct kb_kv_key_item *items;
	size_t n_items;
	char *next_link;
};
int kb_kv_key_list_parse(const cJSON *body,
    struct kb_kv_key_list **out) KB_WARN_UNUSED;
void kb_kv_key_list_free(struct kb_kv_key_list *l);

/*
 * KeyOperationResult (encrypt, decrypt, sign, wrapKey, unwrapKey) and
 * SecureKeyOperationResult: value is required.  value is kept as a
 * secret (decrypt and unwrapKey give plaintext and key bytes): the
 * decoded bytes only ever sit in it.  kid is optional (all NULL when
 * absent); iv, tag, aad as sent (AES-GCM/CBC on Managed HSM).
 */
struct kb_kv_key_op_result {
	struct kb_kv_kid kid;
	struct kb_secret *value;
	struct kb_kv_bytes iv, tag, aad;
	char *alg;                 /* securewrapkey's alg, or NULL */
};
int kb_kv_key_op_result_parse(const cJSON *body,
    struct kb_kv_key_op_result **out) KB_WARN_UNUSED;
void kb_kv_key_op_result_free(struct kb_kv_key_op_result *r);

/* KeyVerifyResult: *out is value (required). */
int kb_kv_verify_result_parse(const cJSON *body, bool *out) KB_WARN_UNUSED;

/* RandomBytes: value (required) as a secret (random bytes become keys). */
int kb_kv_random_bytes_parse(const cJSON *body,
    struct kb_secret **out) KB_WARN_UNUSED;

/* BackupKeyResult: value (required), the opaque protected blob. */
int kb_kv_backup_result_parse(const cJSON *body,
    struct kb_kv_bytes *out) KB_WARN_UNUSED;
/* KeyReleaseResult: value (required), a JWS string, malloc'd. */
int kb_kv_release_result_parse(const cJSON *body, char **out) KB_WARN_UNUSED;
/* Frees b->data and zeroes b; accepts NULL. */
void kb_kv_bytes_clear(struct kb_kv_bytes *b);

/* One of KeyRotationPolicy's lifetimeActions. */
struct kb_kv_lifetime_action {
	char *type;                /* "Rotate" or "Notify" as sent (any case) */
	char *time_after_create;   /* ISO 8601 duration, or NULL */
	char *time_before_expiry;
};

/* KeyRotationPolicy: every field optional (the removal policy is
 * {"lifetimeActions":[],"attributes":{}}); id is not split (recordings
 * sanitize it to a non-URL). */
struct kb_kv_rotation_policy {
	char *id;
	struct kb_kv_lifetime_action *actions;
	size_t n_actions;
	char *expiry_time;         /* attributes.expiryTime, or NULL */
	unsigned present;          /* KB_KV_HAS_CREATED, KB_KV_HAS_UPDATED */
	int64_t created, updated;
};
int kb_kv_rotation_policy_parse(const cJSON *body,
    struct kb_kv_rotation_policy **out) KB_WARN_UNUSED;
void kb_kv_rotation_policy_free(struct kb_kv_rotation_policy *p);

/*
 * KeyVaultError: {"error": {"code", "message", "innererror": {...}}}.
 * A body without an "error" object (a proxy's page, Managed HSM's empty
 * 401, "error": null) gives an empty struct; inner holds the
 * innererror codes, outermost first, at most KB_KV_MAX_INNER_ERRORS.
 * kb_kv_request fills kb_kv_response's error fields through it.
 */
struct kb_kv_error {
	char *code;
	char *message;
	char *inner[KB_KV_MAX_INNER_ERRORS];
	size_t n_inner;
};
int kb_kv_error_parse(const cJSON *body, struct kb_kv_error **out) KB_WARN_UNUSED;
void kb_kv_error_free(struct kb_kv_error *e);

#endif /* KB_KVCLIENT_H */
