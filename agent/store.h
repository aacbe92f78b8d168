/*
 * store.h: the metadata store of local (token) vaults, in SQLite.
 *
 * A local vault is a PKCS#11 token plus this store: the token holds the
 * key material (one object or key pair per key version, CKA_LABEL = the
 * key's name, CKA_ID = the version's 16 bytes), the store holds what Key
 * Vault says about keys and versions (attributes, tags, soft-delete
 * state), the intents that make each lifecycle operation atomic across
 * token and store, and an append-only audit log.  docs/internals/store.md
 * describes the schema and the recovery rule of every operation.
 *
 * Conventions: every function returns 0 or a negative KB_ERR_* code with
 * a kb_error_set() sentence; outputs are written only on success; *_free
 * accept NULL.  Times are 64-bit Unix seconds and are passed in by the
 * caller (so tests and the purge timer control the clock).  Store errors
 * map to Key Vault statuses as follows (the HTTP layer translates):
 *
 *   KB_ERR_INVALID, KB_ERR_LIMIT  400 BadParameter
 *   KB_ERR_NOT_FOUND              404 KeyNotFound
 *   KB_ERR_CONFLICT               409 Conflict (name soft-deleted:
 *                                 ObjectIsDeletedButRecoverable; an
 *                                 operation on the key is in progress:
 *                                 ObjectIsBeingDeleted / Conflict)
 *   KB_ERR_DENIED                 403 Forbidden (purge under purge
 *                                 protection before scheduledPurgeDate)
 *   KB_ERR_IO, KB_ERR_ALLOC,
 *   KB_ERR_INTERNAL               500 InternalServerError
 *   KB_ERR_CONFIG                 (start-up only: schema too new, bad file)
 *
 * Thread safety: one connection per store, serialized by a mutex inside;
 * any thread may call any function.
 */
#ifndef KB_AGENT_STORE_H
#define KB_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb_common.h"
#include "kvrules.h"

struct kb_store;

/* Schema version in PRAGMA user_version. */
#define KB_STORE_SCHEMA_VERSION 6
/* Largest page any list function returns (Key Vault's own cap is 25). */
#define KB_STORE_PAGE_MAX 1000
/* Bounds of the short audit fields (role, op, result). */
#define KB_STORE_WORD_MAX 32
/* Bound of the vault field of audit records (may name an unknown vault). */
#define KB_STORE_AUDIT_VAULT_MAX 64

/* Who asked: written into intents and audit records. */
#define KB_STORE_PRINCIPAL_MAX 64

struct kb_store_actor {
	uint32_t uid;         /* UINT32_MAX for a bearer-token principal */
	const char *role;     /* "officer", "user", "system", ... (1-32 chars) */
	const char *principal;  /* bearer principal's name, or NULL */
};

/*
 * Open (creating if needed, mode 0600) the store at path: WAL journal,
 * synchronous=FULL, foreign keys on, busy timeout 5 s, defensive mode;
 * the schema is created or migrated up to KB_STORE_SCHEMA_VERSION.
 * A store written by a newer schema is KB_ERR_CONFIG.
 */
int kb_store_open(const char *path, struct kb_store **out) KB_WARN_UNUSED;
void kb_store_close(struct kb_store *st);

/* ---------------------------------------------------------------- vaults */

struct kb_store_vault {
	char name[KV_VAULT_NAME_MAX + 1];
	unsigned retention_days;
	bool purge_protection;
	int64_t created;
};

/*
 * Make the store agree with a vault declared in the config.  A new vault
 * is created (audited "vault-create").  For an existing one, as in Key
 * Vault: the retention cannot change and purge protection cannot be
 * turned off (both KB_ERR_CONFLICT); turning it on is recorded and
 * audited ("vault-update").
 */
int kb_store_vault_ensure(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, unsigned retention_days, bool purge_protection,
    int64_t now) KB_WARN_UNUSED;
int kb_store_vault_get(struct kb_store *st, const char *vault,
    struct kb_store_vault *out) KB_WARN_UNUSED;

/* ------------------------------------------------------------------ keys */

/* A new key version's attributes (create, rotate, import). */
struct kb_store_new_version {
	char version[KV_VERSION_LEN + 1];   /* 32 hex chars, random */
	const char *kty;                    /* "RSA", "EC-HSM", ... */
	unsigned key_size;                  /* RSA/oct bits, 0 for EC */
	const char *crv;                    /* EC curve or NULL */
	unsigned key_ops;                   /* KV_OP_* mask */
	bool enabled;
	bool exportable;
	bool has_nbf, has_exp;
	int64_t nbf, exp;
	const char *tags_json;              /* JSON object text, NULL = {} */
	/* The audit record's op: NULL for "create", "rotate" or "adopt". */
	const char *audit_op;
	/* Adopting a token object: its label and id before (kept in the
	 * intent's payload as adopt_label and adopt_id in hex). */
	const char *adopt_label;
	const unsigned char *adopt_id;
	size_t adopt_id_len;
	/* Restore: the version's own times (0: now). */
	int64_t created, updated;
};

/* A key as Key Vault shows it: one version plus the key's state. */
struct kb_store_key {
	char vault[KV_VAULT_NAME_MAX + 1];
	char name[KV_NAME_MAX + 1];         /* display case */
	char version[KV_VERSION_LEN + 1];
	char kty[16];
	char crv[16];                       /* "" if none */
	unsigned key_size;
	unsigned key_ops;
	bool enabled;
	bool exportable;
	bool has_nbf, has_exp;
	int64_t nbf, exp;
	int64_t created, updated;
	char *tags_json;                    /* canonical JSON object text */
	/* RSA/EC: the public JWK text as the token showed it (kb_p11_public_jwk),
	 * once recorded; NULL in listings and until then. */
	char *public_jwk;
	/* The token object of this version. */
	char p11_label[KV_NAME_MAX + 1];
	unsigned char p11_id[KV_VERSION_BYTES];
	/* Derived from the vault (KeyAttributes.recoveryLevel/-Days). */
	const char *recovery_level;         /* static string */
	unsigned recoverable_days;
	/* DeletedKeyBundle fields, when deleted is true. */
	bool deleted;
	int64_t deleted_date;
	int64_t scheduled_purge_date;
};

void kb_store_key_free(struct kb_store_key *k);
void kb_store_keys_free(struct kb_store_key *ks, size_t n);

/*
 * Add a version without an intent: for keys whose material needs no
 * token step (tests, bulk loads, import of an object that already
 * exists).  Creates the key if the name is new; an existing active key
 * gets a new version; a soft-deleted name is KB_ERR_CONFLICT.  Audited
 * "create".  *out (optional) receives the stored version.
 */
int kb_store_add_version(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const struct kb_store_new_version *v,
    int64_t now, struct kb_store_key **out) KB_WARN_UNUSED;

/*
 * Record a version's public JWK (kb_store_key.public_jwk) if none is
 * recorded yet: what the token showed, kept so that later gets need no
 * token lookup.  Not audited (nothing about the key changes).
 */
#define KB_STORE_JWK_MAX 4096
int kb_store_set_public_jwk(struct kb_store *st, const char *vault,
    const char *name, const char *version, const char *jwk) KB_WARN_UNUSED;

/* The latest version (version NULL or "") or a given one of an active key. */
int kb_store_get_key(struct kb_store *st, const char *vault, const char *name,
    const char *version, struct kb_store_key **out) KB_WARN_UNUSED;

/*
 * Paged listings.  after is the cursor: NULL or "" for the first page,
 * else the *next of the previous page.  limit is 1..KB_STORE_PAGE_MAX.
 * *next is a new string (free it) when more items follow, NULL at the
 * end.  Cursor formats (docs/internals/store.md): keys and deleted keys,
 * the lower-cased name of the last item; versions, the last version id.
 * Keys are ordered by lower-cased name, versions by creation.
 *
 * Items of kb_store_list_keys and kb_store_list_deleted carry what a
 * list item shows (KeyItem, DeletedKeyItem): vault, name, version,
 * key_size, enabled, nbf, exp, created, updated, tags_json, the
 * recovery fields and the deleted ones.  kty, crv, key_ops, exportable,
 * p11_label and p11_id are left zero: kb_store_get_key or
 * kb_store_key_objects has them.  kb_store_list_versions fills all but
 * public_jwk.
 */
int kb_store_list_keys(struct kb_store *st, const char *vault,
    const char *after, unsigned limit, struct kb_store_key **items,
    size_t *n, char **next) KB_WARN_UNUSED;
int kb_store_list_versions(struct kb_store *st, const char *vault,
    const char *name, const char *after, unsigned limit,
    struct kb_store_key **items, size_t *n, char **next) KB_WARN_UNUSED;
int kb_store_list_deleted(struct kb_store *st, const char *vault,
    const char *after, unsigned limit, struct kb_store_key **items,
    size_t *n, char **next) KB_WARN_UNUSED;

/*
 * Listings of keys and deleted keys are kept in memory between pages,
 * within a budget (16 MiB unless set; 0 keeps none), and are good until
 * the next write: the agent is the store's only writer.  Setting the
 * budget drops what is kept.  The counters say how pages were served
 * and what building the listings cost (docs/internals/store.md).
 */
struct kb_store_list_stats {
	uint64_t builds;         /* listings read whole and kept */
	uint64_t abandoned;      /* tries that kept nothing */
	uint64_t over_budget;    /* of which over the budget */
	uint64_t build_rows;     /* rows all tries read */
	uint64_t cached_pages;   /* pages from a kept listing */
	uint64_t sql_pages;      /* pages read through SQLite */
	uint64_t paged_rows;     /* rows those pages read */
	size_t bytes;            /* held now */
};
void kb_store_list_budget(struct kb_store *st, size_t bytes);
void kb_store_list_stats(struct kb_store *st, struct kb_store_list_stats *out);

/* UpdateKey: set only the members flagged. tags_json replaces all tags. */
struct kb_store_update {
	bool set_enabled, set_nbf, set_exp, set_key_ops, set_tags;
	bool enabled;
	bool has_nbf, has_exp;   /* false with set_* clears the attribute */
	int64_t nbf, exp;
	unsigned key_ops;
	const char *tags_json;
};

/* Update one version (NULL = latest) of an active key; audited "update". */
int kb_store_update(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const char *version,
    const struct kb_store_update *u, int64_t now,
    struct kb_store_key **out) KB_WARN_UNUSED;

/*
 * Soft delete (all versions): deletedDate = now, scheduledPurgeDate =
 * now + retention.  Store only (the token objects stay until purge), one
 * transaction, audited "delete".  *out (optional) gets the deleted
 * bundle (latest version).  Deleting a key with an open purge intent is
 * impossible (it is already deleted): KB_ERR_NOT_FOUND.
 */
int kb_store_delete(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, int64_t now,
    struct kb_store_key **out) KB_WARN_UNUSED;
int kb_store_get_deleted(struct kb_store *st, const char *vault,
    const char *name, struct kb_store_key **out) KB_WARN_UNUSED;
/* Back to active (all versions); store only; audited "recover". */
int kb_store_recover(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, int64_t now,
    struct kb_store_key **out) KB_WARN_UNUSED;

/* A soft-deleted key whose scheduled purge date has come. */
struct kb_store_due {
	char vault[KV_VAULT_NAME_MAX + 1];
	char name[KV_NAME_MAX + 1];
	int64_t scheduled_purge_date;
};
/* Up to limit keys with scheduled_purge_date <= now, oldest first. */
int kb_store_due_for_purge(struct kb_store *st, int64_t now, unsigned limit,
    struct kb_store_due **out, size_t *n) KB_WARN_UNUSED;

/* ------------------------------------------------------------ token objects */

struct kb_store_object {
	char version[KV_VERSION_LEN + 1];
	char kty[16];
	unsigned key_ops;                  /* KV_OP_* of this version */
	char p11_label[KV_NAME_MAX + 1];
	unsigned char p11_id[KV_VERSION_BYTES];
};
/* Every version's token object of a key, active or deleted. */
int kb_store_key_objects(struct kb_store *st, const char *vault,
    const char *name, struct kb_store_object **out, size_t *n) KB_WARN_UNUSED;
/*
 * 0 if the store knows a token object (a version of any key of vault, or
 * an open create intent), KB_ERR_NOT_FOUND if not: the start-up sweep
 * destroys objects with our label that the store does not know.
 */
int kb_store_object_known(struct kb_store *st, const char *vault,
    const char *label, const unsigned char id[KV_VERSION_BYTES]) KB_WARN_UNUSED;

/* --------------------------------------------------------------- intents */

enum kb_store_op { KB_STORE_OP_CREATE = 1, KB_STORE_OP_PURGE };

struct kb_store_intent {
	int64_t id;
	enum kb_store_op op;
	char vault[KV_VAULT_NAME_MAX + 1];
	char name[KV_NAME_MAX + 1];        /* display case */
	char version[KV_VERSION_LEN + 1];  /* create: the new version; purge: "" */
	/* create: the object to make (label, id); purge: unused. */
	char p11_label[KV_NAME_MAX + 1];
	unsigned char p11_id[KV_VERSION_BYTES];
	uint32_t uid;
	char role[KB_STORE_WORD_MAX + 1];
	char principal[KB_STORE_PRINCIPAL_MAX + 1];  /* "" for a uid */
	char *payload;                     /* JSON text (docs/internals/store.md) */
	int64_t created;
	/* A restore (a create of several versions, all or none): the
	 * token objects' ids, oldest version first; version/p11_id above
	 * are the last of them. */
	size_t n_restore;
	unsigned char (*restore_ids)[KV_VERSION_BYTES];
};
void kb_store_intent_free(struct kb_store_intent *in);
void kb_store_intents_free(struct kb_store_intent *ins, size_t n);

/*
 * Record an intent in its own committed transaction, before touching the
 * token.  Create (also rotate, import): same checks as add_version
 * (name rules, soft-deleted name KB_ERR_CONFLICT, no purge in progress),
 * the payload keeps the whole new version so the intent can be rolled
 * forward after a crash without the request.  Purge: the key must be
 * soft-deleted (else KB_ERR_NOT_FOUND), have no open create intent
 * (KB_ERR_CONFLICT) and, under purge protection, be due (else an audit
 * record "denied" is written and KB_ERR_DENIED returned; Key Vault 403);
 * the payload lists the versions whose objects must be destroyed.
 */
int kb_store_intent_begin_create(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    const struct kb_store_new_version *v, int64_t now,
    struct kb_store_intent **out) KB_WARN_UNUSED;
/*
 * One version's metadata as JSON and back, in the shape intents keep it
 * (members kty, key_size, crv, key_ops, enabled, exportable, nbf, exp,
 * created, updated, tags, version), for documents that carry versions
 * elsewhere (backups).  to_json checks v first.  from_json: strings point
 * into o, *tags is the new canonical tags text (v->tags_json is NULL);
 * a malformed object is KB_ERR_INVALID.
 */
int kb_store_version_to_json(const struct kb_store_new_version *v,
    cJSON **out) KB_WARN_UNUSED;
int kb_store_version_from_json(const cJSON *o, struct kb_store_new_version *v,
    char **tags) KB_WARN_UNUSED;

/*
 * Restore (Key Vault's RestoreKey): every version of a key from a backup,
 * oldest first, with its id, attributes, tags and times, under the
 * intent's one label (the name).  The name must be unknown to the vault,
 * active or deleted, with no open intent (else KB_ERR_CONFLICT).  The
 * commit adds all versions or none; the audit says "restore".
 */
int kb_store_intent_begin_restore(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    const struct kb_store_new_version *vs, size_t n, int64_t now,
    struct kb_store_intent **out) KB_WARN_UNUSED;
int kb_store_intent_begin_purge(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    int64_t now, struct kb_store_intent **out) KB_WARN_UNUSED;
/*
 * The token step succeeded (or, at start-up, was found done): apply the
 * change, write the audit record and close the intent in one
 * transaction.  For create, *out (optional) gets the new version.  On
 * failure nothing is applied and the intent stays open.
 */
int kb_store_intent_commit(struct kb_store *st, int64_t id, int64_t now,
    struct kb_store_key **out) KB_WARN_UNUSED;
/* The same, recording the new version's public JWK (RSA/EC; create with
 * no restore) in that transaction; jwk NULL: none. */
int kb_store_intent_commit_jwk(struct kb_store *st, int64_t id, int64_t now,
    const char *jwk, struct kb_store_key **out) KB_WARN_UNUSED;
/* The token step failed or was found undone: close the intent and audit
 * the operation with result "failed", in one transaction. */
int kb_store_intent_abort(struct kb_store *st, int64_t id, int64_t now)
    KB_WARN_UNUSED;
/* Every open intent, oldest first, for recovery at start-up. */
int kb_store_intents_open(struct kb_store *st, struct kb_store_intent **out,
    size_t *n) KB_WARN_UNUSED;

/* ------------------------------------------------------- rotation policy */

/*
 * A key's rotation policy (keys.json KeyRotationPolicy), kept per key: it
 * survives delete, recover and rotate and goes with the purge.  The text
 * is the canonical form of kv_rotation_policy_check.
 */
struct kb_store_policy {
	char name[KV_NAME_MAX + 1];   /* the key's display name */
	int64_t key_created;          /* the key's creation */
	char *json;                   /* NULL: the key has no stored policy */
	int64_t created, updated;     /* of the stored policy */
};
void kb_store_policy_free(struct kb_store_policy *p);
/* The policy of an active key (KB_ERR_NOT_FOUND if none is active). */
int kb_store_policy_get(struct kb_store *st, const char *vault,
    const char *name, struct kb_store_policy **out) KB_WARN_UNUSED;
/*
 * Set the policy of an active key (a missing or soft-deleted key is
 * KB_ERR_NOT_FOUND, as UpdateKey): json is checked again with
 * kv_rotation_policy_check and stored in canonical form; audited
 * "rotation-policy-update".  *out (optional) gets the stored policy.
 */
int kb_store_policy_put(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const char *json, int64_t now,
    struct kb_store_policy **out) KB_WARN_UNUSED;

/* ----------------------------------------------------------------- audit */

struct kb_store_audit {
	int64_t seq;
	int64_t time;
	uint32_t uid;
	char role[KB_STORE_WORD_MAX + 1];
	char vault[KB_STORE_AUDIT_VAULT_MAX + 1];
	char op[KB_STORE_WORD_MAX + 1];
	char key[KV_NAME_MAX + 1];           /* "" if none */
	char version[KV_VERSION_LEN + 1];    /* "" if none */
	char result[KB_STORE_WORD_MAX + 1];  /* "ok", "denied", "failed", ... */
	char principal[KB_STORE_PRINCIPAL_MAX + 1];  /* "" for a uid */
};

/*
 * Append a record the store does not write itself (an access denial by
 * the HTTP layer, for instance).  key and version may be NULL.  Fields
 * are bounded and must be printable ASCII.
 */
int kb_store_audit_append(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *op, const char *key, const char *version,
    const char *result, int64_t now) KB_WARN_UNUSED;
/* Records with seq > after, oldest first; *next is the last seq returned
 * when more follow, else 0. */
int kb_store_audit_list(struct kb_store *st, int64_t after, unsigned limit,
    struct kb_store_audit **out, size_t *n, int64_t *next) KB_WARN_UNUSED;

#endif /* KB_AGENT_STORE_H */
