/*
 * agent.h: keybridged's internal interfaces (not installed).
 *
 * config.c  the config file ([agent] and [token NAME] sections)
 * tokens.c  modules, tokens, login, mechanism checks, their JSON views
 * server.c  the HTTP server on the Unix socket (libmicrohttpd)
 * access.c  who may talk to the agent (the one place that decides)
 * runtime.c start-up order, shutdown, lock file, socket, sd_notify
 * main.c    options, signals, init-token
 */
#ifndef KB_AGENT_H
#define KB_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "kb_common.h"
#include "kb_pkcs11.h"
#include "kvrules.h"

#ifndef KB_SOFTHSM_MODULE
#define KB_SOFTHSM_MODULE KB_P11_DEFAULT_MODULE
#endif

/* The 401 challenge's defaults (Azure public cloud, a placeholder tenant). */
#define AGENT_AUTH_AUTHORIZATION \
	"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000"
#define AGENT_AUTH_RESOURCE "https://vault.azure.net"

/* Request bodies above this get 413 (Key Vault's own limit is lower). */
#define AGENT_MAX_BODY ((size_t)1 << 20)

enum agent_pin_source { PIN_FILE = 1, PIN_ENV, PIN_PROMPT };

struct agent_token_cfg {
	char *name;
	unsigned line;                /* of the [token NAME] header */
	char *module;                 /* absolute path */
	unsigned module_line;         /* 0 if defaulted */
	char *selection;              /* "uri = ..." or "label = ..." text, for messages */
	unsigned selection_line;
	struct kb_p11_uri *sel;       /* token parts only */
	char *label;                  /* from label = (init-token needs it) */
	enum agent_pin_source pin_source;
	char *pin_arg;                /* file path or variable name */
	unsigned pin_line;
	unsigned max_sessions;
	bool isolate;                 /* the module runs in keybridge-p11host */
	unsigned call_timeout;        /* isolated: s before the host is killed; 0 default */
};

/* Roles per vault, in increasing order of rights (docs/vaults.md). */
enum agent_role {
	ROLE_NONE = 0,
	ROLE_READER,
	ROLE_CONTRIBUTOR,
	ROLE_OWNER,
	ROLE_ADMINISTRATOR
};
const char *agent_role_name(enum agent_role r);

/* One entry of a role list: a uid, a gid ("@group"), or a bearer-token
 * principal ("principal:NAME", id = index into agent_config.bearers). */
struct agent_principal {
	bool group;
	bool bearer;
	uint32_t id;
	enum agent_role role;
};

/* [principal NAME]: an HTTPS caller known by the SHA-256 of its token. */
#define AGENT_PRINCIPAL_MAX 64
struct agent_bearer {
	char *name;
	unsigned line;
	unsigned char token_sha256[32];
	int64_t expires;              /* unix seconds; 0: never */
};

struct agent_vault_cfg {
	char *name;
	unsigned line;
	char *token;                  /* [token NAME] it lives on */
	size_t token_index;           /* into agent_config.tokens */
	bool is_default;
	unsigned retention_days;
	bool purge_protection;
	bool backup;                  /* new keys can leave as backups */
	struct agent_principal *principals;
	size_t n_principals;
};

/* [remote NAME]: a Key Vault reached through kv-client. */
enum agent_cred_kind {
	AGENT_CRED_NONE = 0,
	AGENT_CRED_TOKEN_FILE,
	AGENT_CRED_CLIENT_SECRET,
	AGENT_CRED_CLIENT_CERT,
	AGENT_CRED_FEDERATED,
	AGENT_CRED_MANAGED_IDENTITY
};
const char *agent_cred_name(enum agent_cred_kind k);

struct agent_remote_cfg {
	char *name;
	unsigned line;
	char *url;                    /* https://NAME.vault.azure.net */
	enum agent_cred_kind cred;
	char *cred_file;              /* token, secret, certificate or federated token */
	char *client_cert;            /* PKCS#11 URI of the certificate's key */
	char *tenant_id;
	char *client_id;
	char *authority_host;
	char *managed_identity;       /* "system" or a client id */
	char *ca_file;
	char *connect_to;             /* an address for the url's host */
	struct agent_principal *principals;
	size_t n_principals;
};
void agent_remote_cfg_free(struct agent_remote_cfg *r);
struct agent_config;
/* One [remote NAME] section of text, checked against c (its principals). */
int agent_config_parse_remote(const struct agent_config *c, const char *text,
    size_t len, struct agent_remote_cfg **out) KB_WARN_UNUSED;

struct agent_config {
	char *path;
	char *socket;
	unsigned socket_line;         /* 0 if defaulted */
	unsigned socket_mode;
	char *state_dir;
	bool has_log_level;
	enum kb_log_level log_level;
	unsigned max_connections;
	unsigned request_timeout;     /* seconds */
	unsigned threads;
	struct agent_token_cfg *tokens;
	size_t n_tokens;
	struct agent_vault_cfg *vaults;
	size_t n_vaults;
	struct agent_remote_cfg **remotes;
	size_t n_remotes;
	unsigned purge_interval;      /* seconds between purge sweeps */
	/* HTTPS listener (docs/https.md); https_listen NULL: none. */
	char *https_listen;           /* "127.0.0.1:8443", "[::1]:0" */
	struct sockaddr_storage https_addr;  /* the same, parsed */
	unsigned https_line;
	char *https_cert;             /* PEM chain */
	char *https_key;              /* PEM private key */
	unsigned https_max_connections;
	unsigned https_timeout;       /* seconds a connection may idle */
	char *auth_authorization;     /* challenge: authorization="..." */
	char *auth_resource;          /* challenge: resource="..." */
	struct agent_bearer *bearers;
	size_t n_bearers;
};

/* Load and check a config file; every error names file:line. */
int agent_config_load(const char *path, struct agent_config **out) KB_WARN_UNUSED;
void agent_config_free(struct agent_config *c);
const struct agent_token_cfg *agent_config_token(const struct agent_config *c,
    const char *name);
/* Where the socket lives when the config does not say (the CLI agrees). */
/* "FILE:LINE" text for messages into buf. */
const char *agent_where(const struct agent_config *c, unsigned line,
    char *buf, size_t n);

struct agent_token {
	const struct agent_token_cfg *cfg;
	struct kb_secret *pin;        /* read before login, freed after */
	kb_p11_module *module;
	kb_p11_token *token;
	char *uri;                    /* the token's URI, canonical */
};

struct agent_vault {
	const struct agent_vault_cfg *cfg;
	struct agent_token *tok;
	size_t index;
	/*
	 * Token writes and searches, one at a time (vaults never share a
	 * token): SoftHSM 2.6 fails object creation when they run
	 * concurrently (CKR_GENERAL_ERROR, nameless objects; SoftHSMv2
	 * #573).  Crypto operations on found keys do not take it.
	 */
	pthread_mutex_t tokwrite;
};

struct agent_keycache;
struct agent_inflight;
struct agent_remotes;
struct agent;

/* What a libmicrohttpd daemon serves: the Unix socket or HTTPS. */
struct agent_listener {
	struct agent *a;
	bool https;
};

struct agent {
	struct agent_config *cfg;
	struct agent_vault *vaults;
	size_t n_vaults;
	struct kb_store *store;
	struct agent_keycache *keycache;
	struct agent_inflight *inflight;
	struct agent_remotes *remotes;
	bool sweeper_running;
	bool opening;                 /* agent_serve is running */
	bool cut_short;               /* a SIGTERM or SIGINT came meanwhile */
	struct agent_token *tokens;
	size_t n_tokens;
	uid_t uid;
	pid_t pid;
	int64_t started_unix;
	double started_mono;
	struct MHD_Daemon *mhd;
	struct MHD_Daemon *mhd_https;
	struct agent_listener lsn_unix, lsn_https;
	char https_url[96];           /* "" when there is no HTTPS listener */
	int listen_fd;
	bool socket_bound;
	int lock_fd;
	char *lock_path;
};

/* tokens.c */
/* One struct agent_token per configured token, none open yet. */
int agent_tokens_list(struct agent *a) KB_WARN_UNUSED;
int agent_read_pins(struct agent *a, bool may_prompt) KB_WARN_UNUSED;
int agent_tokens_open(struct agent *a) KB_WARN_UNUSED;
void agent_tokens_close(struct agent *a);
int agent_status_json(struct agent *a, cJSON **out) KB_WARN_UNUSED;
int agent_tokens_json(struct agent *a, cJSON **out) KB_WARN_UNUSED;
int agent_init_token(const struct agent_config *cfg, const char *name,
    const char *so_pin_file) KB_WARN_UNUSED;
/* keybridged backup-keys: one shared pair on the named tokens (or all). */
int agent_backup_keys(const struct agent_config *cfg, const char *const *names,
    size_t n_names, const char *so_pin_file) KB_WARN_UNUSED;

/* vault.c: lifecycle across token and store (docs/vaults.md) */
struct kb_store_actor;
struct kb_store_key;
struct kb_store_new_version;
struct kb_store_update;

/* Open the store, declare the vaults, resolve open intents, make the
 * token agree with soft-deleted keys, purge what is due. */
int agent_vaults_open(struct agent *a) KB_WARN_UNUSED;
/* Start / stop the thread that purges due keys every purge_interval. */
int agent_sweeper_start(struct agent *a) KB_WARN_UNUSED;
void agent_sweeper_stop(struct agent *a);
void agent_vaults_close(struct agent *a);
/* Resolve open intents not in flight, then purge due keys. */
int agent_vaults_sweep(struct agent *a) KB_WARN_UNUSED;
struct agent_vault *agent_vault_find(struct agent *a, const char *name);
struct agent_vault *agent_vault_default(struct agent *a);

int agent_vault_create(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_new_version *nv, struct kb_store_key **out) KB_WARN_UNUSED;
int agent_vault_rotate(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out) KB_WARN_UNUSED;
int agent_vault_update(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name, const char *version,
    const struct kb_store_update *u, struct kb_store_key **out) KB_WARN_UNUSED;
int agent_vault_delete(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out) KB_WARN_UNUSED;
int agent_vault_recover(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out) KB_WARN_UNUSED;
int agent_vault_purge(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name) KB_WARN_UNUSED;
int agent_vault_adopt(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *uri, const char *name,
    struct kb_store_key **out) KB_WARN_UNUSED;
/* Key material for an import (JWK parts; secrets stay the caller's). */
struct agent_import {
	struct kb_p11_rsa_parts rsa;     /* kty RSA */
	struct kb_p11_ec_parts ec;       /* kty EC (curve from nv->crv) */
	const struct kb_secret *k;       /* kty oct */
};
/* Import as a new version, crash-safe like create; audited "import". */
int agent_vault_import(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_new_version *nv, const struct agent_import *mat,
    struct kb_store_key **out) KB_WARN_UNUSED;

/*
 * Backup and restore (docs/backup.md).  backup: every version of an
 * active key as one base64url blob (*out malloc'd), sealed on the
 * vault's token.  restore: all versions of the blob's key onto a free
 * name of v, crash-safe (one intent for all), audited "restore".
 */
int agent_vault_backup(struct agent *a, struct agent_vault *v,
    const char *name, char **out) KB_WARN_UNUSED;
int agent_vault_restore(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *value,
    struct kb_store_key **out) KB_WARN_UNUSED;

/* The token key of a stored version, shared and counted: put it back. */
struct agent_keyref;
int agent_vault_key(struct agent *a, struct agent_vault *v,
    const struct kb_store_key *k, struct agent_keyref **out) KB_WARN_UNUSED;
kb_p11_key *agent_keyref_key(const struct agent_keyref *r);
/* Its public JWK (JSON text), cached with it; valid while r is held. */
int agent_keyref_public_jwk(struct agent *a, struct agent_keyref *r,
    const char **out) KB_WARN_UNUSED;
void agent_keyref_put(struct agent *a, struct agent_keyref *r);
/* The token usage flags a version's key_ops ask for. */
unsigned agent_p11_ops(const char *kty, unsigned key_ops);

/* kvapi.c: the Key Vault keys API and keybridge's extensions */
struct MHD_Connection;
struct agent_peer;
int agent_kvapi_handle(struct agent *a, struct MHD_Connection *c,
    const struct agent_peer *peer, const char *url, const char *method,
    const char *body, size_t body_len) KB_WARN_UNUSED;

/* remote.c: remote vaults (docs/remote-vaults.md) */
struct agent_remote;
/* Build every [remote] of the config (its sections are taken over). */
int agent_remotes_open(struct agent *a) KB_WARN_UNUSED;
void agent_remotes_close(struct agent *a);
/* The remote vault of that name, held until agent_remote_put, or NULL. */
struct agent_remote *agent_remote_get(struct agent *a, const char *name);
void agent_remote_put(struct agent *a, struct agent_remote *r);
const struct agent_remote_cfg *agent_remote_config(const struct agent_remote *r);
/* fn on each remote vault under the list's lock (fn must not block). */
int agent_remotes_each(struct agent *a,
    int (*fn)(void *arg, struct agent_remote *r), void *arg);
/* Its fields for /keybridge/vaults (kind, url, credential, ...). */
int agent_remote_json(const struct agent_remote *r, cJSON *it) KB_WARN_UNUSED;
/*
 * Send one request (path with its query, api-version included) to the
 * remote vault; *status and *out (may be NULL: no body) are its answer,
 * with the remote's URLs rewritten to local_base.  Create, import and
 * rotate of key name go through kv-client's safe calls instead (never
 * two versions); a non-2xx answer to them is its mapped KB_ERR_* code
 * with the remote's message.  Errors: kv-client's (unreachable, no
 * token, ...), with a sentence.
 */
enum agent_remote_make {
	REMOTE_PLAIN = 0,    /* may be retried */
	REMOTE_ONCE,         /* never resent after an ambiguous failure */
	REMOTE_CREATE,
	REMOTE_IMPORT,
	REMOTE_ROTATE
};
int agent_remote_forward(struct agent_remote *r, const char *method,
    const char *path, const cJSON *body, enum agent_remote_make make,
    const char *name, const char *local_base, unsigned *status,
    cJSON **out) KB_WARN_UNUSED;
/* keybridge vault add / remove: check, write the config, serve.  An add
 * that failed because the vault did not answer as it should sets
 * *upstream (the caller's 502, not its own 500). */
struct kb_store_actor;
int agent_remote_add(struct agent *a, const char *name, const cJSON *spec,
    const struct kb_store_actor *who, bool *upstream) KB_WARN_UNUSED;
int agent_remote_remove(struct agent *a, const char *name,
    const struct kb_store_actor *who) KB_WARN_UNUSED;

/* access.c */
struct agent_peer {
	bool known;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	/* HTTPS: the principal a valid bearer token names (uid unused). */
	bool https;
	const char *principal;        /* NULL on the Unix socket */
	size_t bearer;                /* index into agent_config.bearers */
};
/* 0 if the peer may use the agent at all (a role on some vault). */
int agent_access_check(const struct agent *a, const struct agent_peer *p) KB_WARN_UNUSED;
/* The peer's role on a vault (ROLE_NONE if unknown peer). */
enum agent_role agent_access_role(const struct agent *a,
    const struct agent_vault *v, const struct agent_peer *p);
/* The peer's role from a role list (local or remote vault). */
enum agent_role agent_access_role_in(const struct agent *a,
    const struct agent_principal *list, size_t n, const struct agent_peer *p);
/* The highest role the peer holds on any vault. */
enum agent_role agent_access_max_role(const struct agent *a,
    const struct agent_peer *p);
enum agent_role agent_remotes_max_role(const struct agent *a,
    const struct agent_peer *p);
/* Who the peer is in audit records (a principal has uid UINT32_MAX). */
struct kb_store_actor agent_peer_actor(const struct agent_peer *p,
    enum agent_role role);
/* "principal NAME" or "uid N", for logs and messages, into buf. */
const char *agent_peer_name(const struct agent_peer *p, char *buf, size_t n);

/* server.c */
int agent_server_start(struct agent *a) KB_WARN_UNUSED;
/* The HTTPS listener, if the config asks for one. */
int agent_https_start(struct agent *a) KB_WARN_UNUSED;
void agent_server_stop(struct agent *a);

/* server.c: answers (0, or -1: drop the connection) */
int agent_respond(struct MHD_Connection *c, unsigned status, cJSON *body,
    const char *allow);
/*
 * An answer that holds a secret (decrypt, unwrapKey, getRandomBytes):
 * its tree and its printed text are wiped, and it is not held back in
 * GnuTLS to share a record with the headers.
 */
int agent_respond_secret(struct MHD_Connection *c, unsigned status,
    cJSON *body);
/* An answer already printed as JSON (taken, freed with free()). */
int agent_respond_text(struct MHD_Connection *c, unsigned status, char *json,
    size_t len);
int agent_respond_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message, const char *inner,
    const char *allow);
/* The same with one more header (hname NULL: none). */
int agent_respond_error_hdr(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message, const char *inner,
    const char *hname, const char *hval);
/* kvapi.c: an audit record for a refused request (best effort); the
 * second names the operation and vault from the request's path. */
void agent_audit_denial(struct agent *a, const struct agent_peer *p,
    const char *vault, const char *op, const char *key, const char *result);
void agent_kvapi_deny_audit(struct agent *a, const struct agent_peer *p,
    const char *url, const char *method, const char *result);

/* runtime.c */
/* No file, socket or token open yet; shutdown is safe from here. */
void agent_init(struct agent *a);
/* After the config, PINs and lock: everything up to serving requests.
 * Returns 0 with a->cut_short set if a SIGTERM or SIGINT (blocked by
 * then) came during the long start-up work: the caller shuts down. */
int agent_serve(struct agent *a) KB_WARN_UNUSED;
/* During agent_serve: has a SIGTERM or SIGINT come?  Sets a->cut_short.
 * Long start-up loops ask between steps that leave a consistent state. */
bool agent_start_cut_short(struct agent *a);
/* Stops and frees all of it, whatever agent_serve reached. */
void agent_shutdown(struct agent *a);
int agent_lock_acquire(struct agent *a) KB_WARN_UNUSED;
void agent_lock_release(struct agent *a);
int agent_socket_create(struct agent *a) KB_WARN_UNUSED;
void agent_socket_remove(struct agent *a);
void agent_notify(const char *state);

#endif /* KB_AGENT_H */
