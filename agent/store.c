/*
 * store.c: the metadata store of local vaults (store.h), in SQLite.
 *
 * Why SQLite: the store needs atomic multi-row transactions that survive
 * power loss (intents, versions and audit records commit together),
 * indexed paged queries over 10,000+ keys that need no key in memory,
 * and a file format other tools can inspect (sqlite3 CLI) -- all in one
 * well-tested, public-domain library that every distribution ships.
 * A hand-written log or a key-value store (LMDB) would have meant
 * re-implementing secondary indexes, cursors over ordered names and
 * crash recovery; a server database would be a second daemon for a
 * single-host agent.  Settings: WAL (readers never block the writer, one
 * fsync per commit), synchronous=FULL (an acknowledged operation is on
 * disk before the reply), foreign_keys=ON, a 5 s busy timeout, defensive
 * mode.  docs/internals/store.md describes schema and protocol.
 *
 * Every statement is a constant string with bound parameters; nothing in
 * SQL text comes from input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

/* 'KBST' in PRAGMA application_id marks a keybridge vault store. */
#define STORE_APP_ID 0x4b425354
#define STORE_BUSY_MS 5000
/* Times stay within what JSON doubles carry exactly (year 9999). */
#define STORE_TIME_MAX INT64_C(253402300799)
#define DAY_SECONDS INT64_C(86400)
/* A bound on one key's versions read at once (purge payload, objects). */
#define STORE_VERSIONS_MAX 100000

/*
 * Prepared statements are kept for reuse (SQLite's parser was a tenth of
 * the agent's CPU per request).  A slot is busy while a caller holds its
 * statement; a second user of the same SQL gets a statement of its own,
 * finalized on release.  All under st->mu, like every use of the handle.
 */
#define STMT_CACHE_MAX 64

struct stmt_slot {
	sqlite3_stmt *s;
	const char *sql;    /* the caller's text: literals keep their address */
	bool busy;
};

/*
 * Key rows read by kb_store_get_key() are kept for the next request on
 * the same key (a crypto operation is mostly this lookup).  An entry
 * carries the connection's change count when it was read; any write
 * (sqlite3_total_changes64() moves) makes every entry stale at once.
 * The agent is the store's only writer, so nothing changes behind the
 * count.  Direct-mapped, under its own mutex so that a hit never waits
 * for st->mu.
 */
#define KEY_CACHE_SLOTS 256

struct key_slot {
	bool used;
	int64_t gen;
	char vault[KV_VAULT_NAME_MAX + 1];
	char lc[KV_NAME_MAX + 1];
	char ver[KV_VERSION_LEN + 1];       /* "" for the latest version */
	struct kb_store_key k;
};

struct vault_row {
	int64_t id;
	char name[KV_VAULT_NAME_MAX + 1];
	unsigned retention_days;
	bool purge_protection;
	int64_t created;
};

/* Vault rows by lower-case name: every request looks its vault up, and
 * vault rows change only in kb_store_vault_ensure, which empties it. */
#define VAULT_CACHE_MAX 16

struct vault_slot {
	char lc[KV_VAULT_NAME_MAX + 1];
	struct vault_row row;
};

/*
 * A listing of one vault's active or deleted keys, kept sorted for the
 * next page: a client walking a vault reads each page from memory
 * instead of SQLite (the store's read was half of the agent's CPU a
 * page).  Like the key cache, a listing is good while the connection's
 * change count has not moved.  Building one reads all its rows, so a
 * build may read no more rows than the SQL pages of that listing have
 * read since the last write; one that would is abandoned, and the next
 * try waits until the pages have read twice as many.  However writes,
 * pages and evictions interleave, builds read at most about twice the
 * rows the SQL pages read; a vault that does not change is read from
 * memory from its second walk on.  A budget (st->list_budget) bounds
 * all listings together; a listing that does not fit is served by
 * SQLite.  Under st->mu.
 */
#define LIST_CACHE_SLOTS 4
#define LIST_CACHE_BYTES ((size_t)16 << 20)     /* the default budget */

/* The columns of a list item (ITEM_COLS), and the lower-case name in a
 * listing.  The strings point into the statement's row, or into own. */
struct list_ent {
	const char *name, *lc, *tags;
	char *own;                  /* a kept entry's "name\0lc\0tags" */
	char version[KV_VERSION_LEN + 1];
	bool deleted, enabled, has_nbf, has_exp;
	unsigned key_size;
	int64_t deleted_date, scheduled_purge_date;
	int64_t nbf, exp, created, updated;
};

struct list_slot {
	int64_t vault_id;           /* 0: free */
	bool deleted;               /* the listing of deleted keys */
	uint64_t tick;              /* last use, for eviction */
	struct list_ent *v;         /* NULL: not built */
	size_t n, bytes;
	int64_t gen;                /* change count v was read at */
	int64_t acct_gen;           /* change count sql_rows counts at */
	size_t sql_rows;            /* rows SQL pages read since then */
	size_t next_try;            /* sql_rows at which to build again */
};

struct kb_store {
	sqlite3 *db;
	pthread_mutex_t mu;
	char *path;
	struct stmt_slot cache[STMT_CACHE_MAX];
	size_t ncache;
	/* Change count at the last UNLOCK (written under mu). */
	_Atomic int64_t gen;
	pthread_mutex_t kmu;
	struct key_slot *keys;              /* KEY_CACHE_SLOTS */
	struct vault_slot vaults[VAULT_CACHE_MAX];   /* under mu */
	size_t nvaults;
	struct list_slot lists[LIST_CACHE_SLOTS];    /* under mu */
	size_t list_bytes, list_budget;
	uint64_t list_tick;
	struct kb_store_list_stats list_stats;
};

/* ---------------------------------------------------------------- schema */

/*
 * Migrations: migrations[i] takes user_version i to i + 1.  Add a row to
 * change the schema; never edit a released row.  JSON columns carry no
 * json_valid() CHECK: with trusted_schema off SQLite 3.40 refuses it in
 * a schema, and the C side writes only text cJSON printed.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE vaults ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  name_lc TEXT NOT NULL UNIQUE,"
	"  retention_days INTEGER NOT NULL"
	"    CHECK (retention_days BETWEEN 7 AND 90),"
	"  purge_protection INTEGER NOT NULL CHECK (purge_protection IN (0, 1)),"
	"  created INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE keys ("
	"  id INTEGER PRIMARY KEY,"
	"  vault_id INTEGER NOT NULL REFERENCES vaults(id),"
	"  name TEXT NOT NULL,"
	"  name_lc TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('active', 'deleted')),"
	"  created INTEGER NOT NULL,"
	"  deleted_date INTEGER,"
	"  scheduled_purge_date INTEGER,"
	"  CHECK ((state = 'deleted') = (deleted_date IS NOT NULL AND"
	"         scheduled_purge_date IS NOT NULL)),"
	"  UNIQUE (vault_id, name_lc)"
	") STRICT;"
	"CREATE INDEX keys_list ON keys (vault_id, state, name_lc);"
	"CREATE INDEX keys_due ON keys (scheduled_purge_date)"
	"  WHERE state = 'deleted';"
	"CREATE TABLE versions ("
	"  id INTEGER PRIMARY KEY,"
	"  key_id INTEGER NOT NULL REFERENCES keys(id) ON DELETE CASCADE,"
	"  version TEXT NOT NULL CHECK (length(version) = 32),"
	"  kty TEXT NOT NULL,"
	"  key_size INTEGER NOT NULL DEFAULT 0,"
	"  crv TEXT NOT NULL DEFAULT '',"
	"  key_ops INTEGER NOT NULL,"
	"  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
	"  exportable INTEGER NOT NULL DEFAULT 0 CHECK (exportable IN (0, 1)),"
	"  nbf INTEGER,"
	"  exp INTEGER,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  tags TEXT NOT NULL DEFAULT '{}',"
	"  p11_label TEXT NOT NULL,"
	"  p11_id BLOB NOT NULL CHECK (length(p11_id) = 16),"
	"  UNIQUE (key_id, version)"
	") STRICT;"
	"CREATE INDEX versions_key ON versions (key_id);"
	"CREATE INDEX versions_object ON versions (p11_id);"
	/* Open intents only: a closed intent is deleted with the commit or
	 * abort that closes it (AUTOINCREMENT: ids are never reused). */
	"CREATE TABLE intents ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  op TEXT NOT NULL CHECK (op IN ('create', 'purge')),"
	"  vault_id INTEGER NOT NULL REFERENCES vaults(id),"
	"  key_name TEXT NOT NULL,"
	"  key_name_lc TEXT NOT NULL,"
	"  version TEXT NOT NULL DEFAULT '',"
	"  uid INTEGER NOT NULL,"
	"  role TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  created INTEGER NOT NULL"
	") STRICT;"
	"CREATE INDEX intents_key ON intents (vault_id, key_name_lc);"
	/* Append-only: seq orders records for a later hash chain (hash stays
	 * NULL until then) and export cursors. */
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  role TEXT NOT NULL,"
	"  vault TEXT NOT NULL,"
	"  op TEXT NOT NULL,"
	"  key TEXT,"
	"  version TEXT,"
	"  result TEXT NOT NULL,"
	"  hash BLOB"
	") STRICT;"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;",
	/* 1 -> 2: bearer-token principals (HTTPS) next to uids. */
	"ALTER TABLE audit ADD COLUMN principal TEXT;"
	"ALTER TABLE intents ADD COLUMN principal TEXT;",
	/* 2 -> 3: a key's rotation policy, which goes with the key: kept
	 * across delete, recover and rotate, gone with the purge. */
	"CREATE TABLE rotation_policies ("
	"  key_id INTEGER PRIMARY KEY REFERENCES keys(id) ON DELETE CASCADE,"
	"  policy TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL"
	") STRICT;",
	/* 3 -> 4: a key's latest version kept on the key, so that a listing
	 * reads one version row by rowid instead of searching versions_key
	 * for the largest id of every key.  Versions are only added (they go
	 * with their key), so the trigger is the whole upkeep. */
	"ALTER TABLE keys ADD COLUMN latest_id INTEGER;"
	"UPDATE keys SET latest_id ="
	"  (SELECT max(id) FROM versions WHERE key_id = keys.id);"
	"CREATE TRIGGER versions_latest AFTER INSERT ON versions BEGIN"
	"  UPDATE keys SET latest_id = NEW.id WHERE id = NEW.key_id AND"
	"    (latest_id IS NULL OR latest_id < NEW.id);"
	" END;",
	/* 4 -> 5: the listing index covers every column a listing reads of
	 * a key, so a page reads no keys row, only each latest version. */
	"DROP INDEX keys_list;"
	"CREATE INDEX keys_list ON keys (vault_id, state, name_lc, name,"
	"  latest_id, deleted_date, scheduled_purge_date);",
	/* 5 -> 6: an RSA or EC version's public JWK, recorded the first time
	 * the token shows it, so that a get needs no token lookup (SoftHSM
	 * reads its whole object directory on each). */
	"ALTER TABLE versions ADD COLUMN public_jwk TEXT;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(N_MIGRATIONS == KB_STORE_SCHEMA_VERSION,
    "store.h's schema version names the last migration");

/* ------------------------------------------------------------- helpers */

static int
db_err(struct kb_store *st, int rc, const char *what)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		code = KB_ERR_CONFLICT;
		break;
	case SQLITE_NOMEM:
		code = KB_ERR_ALLOC;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		/* Another process (sqlite3, a backup tool) held the lock for
		 * all of busy_timeout: the caller may well succeed later. */
		return kb_error_set(KB_ERR_BUSY, "vault store %s: %s: %s (another "
		    "process held the lock for %d s); try again", st->path, what,
		    sqlite3_errmsg(st->db), STORE_BUSY_MS / 1000);
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_PROTOCOL:
	case SQLITE_PERM:
		code = KB_ERR_IO;
		break;
	default:
		code = KB_ERR_INTERNAL;
		break;
	}
	return kb_error_set(code, "vault store %s: %s: %s (%s)",
	    st->path, what, sqlite3_errmsg(st->db), sqlite3_errstr(rc));
}

/* A free cached statement for sql, marked busy, or NULL. */
static sqlite3_stmt *
stmt_get(struct kb_store *st, const char *sql)
{
	size_t i;

	/* Same address first (one strcmp per hit), then same text. */
	for (i = 0; i < st->ncache; i++) {
		if (!st->cache[i].busy && st->cache[i].sql == sql &&
		    strcmp(sqlite3_sql(st->cache[i].s), sql) == 0) {
			st->cache[i].busy = true;
			return st->cache[i].s;
		}
	}
	for (i = 0; i < st->ncache; i++) {
		if (!st->cache[i].busy &&
		    strcmp(sqlite3_sql(st->cache[i].s), sql) == 0) {
			st->cache[i].sql = sql;
			st->cache[i].busy = true;
			return st->cache[i].s;
		}
	}
	return NULL;
}

/* Give back a statement from q_prep: reset if cached, else finalized. */
static void
q_release(struct kb_store *st, sqlite3_stmt *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < st->ncache; i++) {
		if (st->cache[i].s == s) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			st->cache[i].busy = false;
			return;
		}
	}
	sqlite3_finalize(s);
}

/*
 * Prepare sql and bind parameters 1..n described by fmt:
 *   t const char * (NULL binds NULL)   i int64_t   u unsigned
 *   d int (bool promotes to int)       b 16-byte blob (const unsigned char *)
 *   n NULL
 */
static int
q_prep(struct kb_store *st, sqlite3_stmt **out, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *s = NULL;
	va_list ap;
	const char *t;
	const unsigned char *b;
	int rc, i, r = 0;

	if ((s = stmt_get(st, sql)) == NULL) {
		if ((rc = sqlite3_prepare_v3(st->db, sql, -1,
		    st->ncache < STMT_CACHE_MAX ? SQLITE_PREPARE_PERSISTENT : 0,
		    &s, NULL)) != SQLITE_OK)
			return db_err(st, rc, "prepare");
		if (st->ncache < STMT_CACHE_MAX) {
			st->cache[st->ncache].s = s;
			st->cache[st->ncache].sql = sql;
			st->cache[st->ncache].busy = true;
			st->ncache++;
		}
	}
	va_start(ap, fmt);
	for (i = 1; fmt[i - 1] != '\0'; i++) {
		switch (fmt[i - 1]) {
		case 't':
			t = va_arg(ap, const char *);
			rc = t == NULL ? sqlite3_bind_null(s, i) :
			    sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'u':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, unsigned));
			break;
		case 'd':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int));
			break;
		case 'b':
			b = va_arg(ap, const unsigned char *);
			rc = sqlite3_bind_blob(s, i, b, KV_VERSION_BYTES,
			    SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_null(s, i);
			break;
		}
		if (rc != SQLITE_OK) {
			r = db_err(st, rc, "bind");
			break;
		}
	}
	va_end(ap);
	if (r != 0) {
		q_release(st, s);
		return r;
	}
	*out = s;
	return 0;
}

/* Step a statement that returns no row; finalize it in all cases. */
static int
q_done(struct kb_store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s), r = 0;

	if (rc != SQLITE_DONE)
		r = db_err(st, rc == SQLITE_ROW ? SQLITE_INTERNAL : rc, what);
	q_release(st, s);
	return r;
}

/* Step once: 1 for a row, 0 for none, or an error. */
static int
q_row(struct kb_store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_err(st, rc, what);
}

static int
exec(struct kb_store *st, const char *sql, const char *what)
{
	int rc;

	if ((rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return db_err(st, rc, what);
	return 0;
}

/* A write transaction: IMMEDIATE takes the write lock now, so a busy
 * database waits here (busy_timeout) instead of failing at COMMIT. */
static int
tx_begin(struct kb_store *st)
{
	return exec(st, "BEGIN IMMEDIATE", "begin");
}

static int
tx_commit(struct kb_store *st)
{
	return exec(st, "COMMIT", "commit");
}

static void
tx_rollback(struct kb_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A stored string into a fixed buffer; longer than the buffer is a bad
 * store, not input. */
static int
stored_str(char *dst, const char *v, size_t n)
{
	if (kb_strlcpy(dst, v, n) != 0)
		return kb_error_set(KB_ERR_INTERNAL,
		    "vault store: a stored value is longer than allowed");
	return 0;
}

static int
col_str(const sqlite3_stmt *cs, int i, char *dst, size_t n)
{
	sqlite3_stmt *s = (sqlite3_stmt *)cs;
	const unsigned char *t = sqlite3_column_text(s, i);

	return stored_str(dst, t != NULL ? (const char *)t : "", n);
}

static int
hex_to_id(const char *hex, unsigned char id[KV_VERSION_BYTES])
{
	size_t i;
	int hi, lo;

	for (i = 0; i < KV_VERSION_BYTES; i++) {
		hi = hex[2 * i];
		lo = hex[2 * i + 1];
		hi = hi >= 'a' ? hi - 'a' + 10 : hi - '0';
		lo = lo >= 'a' ? lo - 'a' + 10 : lo - '0';
		if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
			return kb_error_set(KB_ERR_INVALID,
			    "the key version is not hexadecimal");
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void
id_to_hex(const unsigned char id[KV_VERSION_BYTES], char hex[KV_VERSION_LEN + 1])
{
	static const char dig[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < KV_VERSION_BYTES; i++) {
		hex[2 * i] = dig[id[i] >> 4];
		hex[2 * i + 1] = dig[id[i] & 15];
	}
	hex[KV_VERSION_LEN] = '\0';
}

static int
check_actor(const struct kb_store_actor *who)
{
	size_t i, n;

	if (who == NULL || who->role == NULL)
		return kb_error_set(KB_ERR_INVALID, "no actor for the audit record");
	n = strnlen(who->role, KB_STORE_WORD_MAX + 1);
	if (n == 0 || n > KB_STORE_WORD_MAX)
		return kb_error_set(KB_ERR_INVALID,
		    "the role must be 1-%d characters", KB_STORE_WORD_MAX);
	for (i = 0; i < n; i++)
		if (who->role[i] <= 0x20 || who->role[i] >= 0x7f)
			return kb_error_set(KB_ERR_INVALID,
			    "the role must be printable ASCII");
	if (who->principal == NULL)
		return 0;
	n = strnlen(who->principal, KB_STORE_PRINCIPAL_MAX + 1);
	if (n > KB_STORE_PRINCIPAL_MAX)
		return kb_error_set(KB_ERR_INVALID,
		    "the principal must be at most %d characters",
		    KB_STORE_PRINCIPAL_MAX);
	for (i = 0; i < n; i++)
		if (who->principal[i] <= 0x20 || who->principal[i] >= 0x7f)
			return kb_error_set(KB_ERR_INVALID,
			    "the principal must be printable ASCII");
	return 0;
}

/* A name checked and lower-cased for lookups. */
static int
name_lc(enum kv_field f, const char *s, char *dst, size_t n)
{
	int r;

	if (s == NULL)
		return kb_error_set(KB_ERR_INVALID, "no %s given", kv_field_name(f));
	if ((r = kv_check(f, s)) != 0)
		return r;
	return kv_lower(s, dst, n);
}

static int
check_limit(unsigned limit)
{
	if (limit < 1 || limit > KB_STORE_PAGE_MAX)
		return kb_error_set(KB_ERR_INVALID,
		    "a page holds 1 to %d items", KB_STORE_PAGE_MAX);
	return 0;
}

static int
check_time(const char *what, int64_t t)
{
	if (t < 0 || t > STORE_TIME_MAX)
		return kb_error_set(KB_ERR_INVALID,
		    "%s must be a Unix time between 1970 and 9999", what);
	return 0;
}

/* Tags JSON text (NULL = none) into canonical text (malloc'd). */
static int
tags_canon(const char *json, char **out)
{
	cJSON *obj = NULL;
	char *txt = NULL;
	int r;

	if (json == NULL)
		json = "{}";
	if (strnlen(json, KV_TAGS_JSON_MAX + 1) > KV_TAGS_JSON_MAX)
		return kb_error_set(KB_ERR_LIMIT, "the tags are too long");
	if ((obj = cJSON_ParseWithOpts(json, NULL, 1)) == NULL) {
		r = kb_error_set(KB_ERR_INVALID, "the tags are not valid JSON");
		goto out;
	}
	if ((r = kv_tags_check(obj)) != 0)
		goto out;
	if ((txt = cJSON_PrintUnformatted(obj)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	*out = txt;
	r = 0;
 out:
	cJSON_Delete(obj);
	return r;
}

/* A new version checked; *tags gets its canonical tags text. */
static int
check_new_version(const struct kb_store_new_version *v, char *version_lc,
    char **tags)
{
	int r;

	if (v == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key version given");
	if ((r = name_lc(KV_FIELD_VERSION, v->version, version_lc,
	    KV_VERSION_LEN + 1)) != 0)
		return r;
	if ((r = kv_key_shape_check(v->kty, v->key_size, v->crv)) != 0)
		return r;
	if ((v->key_ops & ~(unsigned)KV_OP__ALL) != 0)
		return kb_error_set(KB_ERR_INVALID, "key_ops holds unknown bits");
	if (v->has_nbf && (r = check_time("nbf", v->nbf)) != 0)
		return r;
	if (v->has_exp && (r = check_time("exp", v->exp)) != 0)
		return r;
	if ((v->created != 0 && (r = check_time("created", v->created)) != 0) ||
	    (v->updated != 0 && (r = check_time("updated", v->updated)) != 0))
		return r;
	return tags_canon(v->tags_json, tags);
}

static int
vault_find(struct kb_store *st, const char *vault, struct vault_row *out)
{
	char lc[KV_VAULT_NAME_MAX + 1];
	sqlite3_stmt *s = NULL;
	struct vault_row v;
	int r;

	size_t i;

	if ((r = name_lc(KV_FIELD_VAULT_NAME, vault, lc, sizeof(lc))) != 0)
		return r;
	for (i = 0; i < st->nvaults; i++) {
		if (strcmp(st->vaults[i].lc, lc) == 0) {
			*out = st->vaults[i].row;
			return 0;
		}
	}
	if ((r = q_prep(st, &s, "SELECT id, name, retention_days, "
	    "purge_protection, created FROM vaults WHERE name_lc = ?1",
	    "t", lc)) != 0)
		return r;
	if ((r = q_row(st, s, "vault lookup")) < 0)
		goto out;
	if (r == 0) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no vault named %s", vault);
		goto out;
	}
	memset(&v, 0, sizeof(v));
	v.id = sqlite3_column_int64(s, 0);
	if ((r = col_str(s, 1, v.name, sizeof(v.name))) != 0)
		goto out;
	v.retention_days = (unsigned)sqlite3_column_int(s, 2);
	v.purge_protection = sqlite3_column_int(s, 3) != 0;
	v.created = sqlite3_column_int64(s, 4);
	if (st->nvaults < VAULT_CACHE_MAX) {
		memcpy(st->vaults[st->nvaults].lc, lc, sizeof(lc));
		st->vaults[st->nvaults++].row = v;
	}
	*out = v;
	r = 0;
 out:
	q_release(st, s);
	return r;
}

struct key_row {
	int64_t id;
	char name[KV_NAME_MAX + 1];
	bool deleted;
	int64_t scheduled_purge_date;
};

/* 1 and *out if the key exists, 0 if not, or an error. */
static int
key_find(struct kb_store *st, int64_t vault_id, const char *lc,
    struct key_row *out)
{
	sqlite3_stmt *s = NULL;
	struct key_row k;
	int r;

	if ((r = q_prep(st, &s, "SELECT id, name, state = 'deleted', "
	    "scheduled_purge_date FROM keys WHERE vault_id = ?1 AND "
	    "name_lc = ?2", "it", vault_id, lc)) != 0)
		return r;
	if ((r = q_row(st, s, "key lookup")) <= 0)
		goto out;
	memset(&k, 0, sizeof(k));
	k.id = sqlite3_column_int64(s, 0);
	if ((r = col_str(s, 1, k.name, sizeof(k.name))) != 0)
		goto out;
	k.deleted = sqlite3_column_int(s, 2) != 0;
	k.scheduled_purge_date = sqlite3_column_int64(s, 3);
	*out = k;
	r = 1;
 out:
	q_release(st, s);
	return r;
}

/* Number of open intents on a key (op NULL: any op). */
static int
intents_on_key(struct kb_store *st, int64_t vault_id, const char *lc,
    const char *op, int64_t *count)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "SELECT count(*) FROM intents WHERE "
	    "vault_id = ?1 AND key_name_lc = ?2 AND (?3 IS NULL OR op = ?3)",
	    "itt", vault_id, lc, op)) != 0)
		return r;
	if ((r = q_row(st, s, "intent lookup")) == 1) {
		*count = sqlite3_column_int64(s, 0);
		r = 0;
	} else if (r == 0) {
		r = kb_error_set(KB_ERR_INTERNAL, "count returned no row");
	}
	q_release(st, s);
	return r;
}

static int
audit_insert(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *op, const char *key, const char *version,
    const char *result, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "INSERT INTO audit (time, uid, role, vault, "
	    "op, key, version, result, principal) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6, ?7, ?8, ?9)",
	    "iuttttttt", now, (unsigned)who->uid, who->role, vault, op,
	    key != NULL && key[0] != '\0' ? key : NULL,
	    version != NULL && version[0] != '\0' ? version : NULL,
	    result, who->principal != NULL && who->principal[0] != '\0' ?
	    who->principal : NULL)) != 0)
		return r;
	return q_done(st, s, "audit insert");
}

/* ------------------------------------------------------------ key rows */

void
kb_store_key_free(struct kb_store_key *k)
{
	if (k == NULL)
		return;
	free(k->tags_json);
	free(k->public_jwk);
	free(k);
}

void
kb_store_keys_free(struct kb_store_key *ks, size_t n)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(ks[i].tags_json);
		free(ks[i].public_jwk);
	}
	free(ks);
}

/*
 * The columns of a list item (KeyItem, DeletedKeyItem), in item_read()'s
 * order: a listing of keys selects only these (the token's columns and
 * a copy of them for nothing were a sixth of the agent's time a page).
 * Every other key query selects KEY_COLS, the same twelve and then the
 * version's own, in key_read()'s order.  The vault's columns come from
 * the caller's (cached) vault row, not a join.
 */
#define ITEM_COLS \
	"k.name, k.state = 'deleted', k.deleted_date, k.scheduled_purge_date, " \
	"v.version, v.key_size, v.enabled, v.nbf, v.exp, v.created, " \
	"v.updated, v.tags"
#define ITEM_NCOLS 12
#define KEY_COLS ITEM_COLS \
	", v.kty, v.crv, v.key_ops, v.exportable, v.p11_label, v.p11_id"
#define KEY_NCOLS 18
#define KEY_FROM " FROM keys k JOIN versions v ON v.key_id = k.id "
#define KEY_LATEST " v.id = k.latest_id "

typedef int (*row_reader)(sqlite3_stmt *, const struct vault_row *,
    struct kb_store_key *);

/* A row of ITEM_COLS as a list entry (pointing into the row, which
 * stays valid until the statement steps on). */
static int
ent_read(sqlite3_stmt *s, struct list_ent *e)
{
	const unsigned char *t;

	memset(e, 0, sizeof(*e));
	t = sqlite3_column_text(s, 0);
	e->name = t != NULL ? (const char *)t : "";
	t = sqlite3_column_text(s, 11);
	e->tags = t != NULL ? (const char *)t : "{}";
	e->deleted = sqlite3_column_int(s, 1) != 0;
	e->deleted_date = sqlite3_column_int64(s, 2);
	e->scheduled_purge_date = sqlite3_column_int64(s, 3);
	e->key_size = (unsigned)sqlite3_column_int64(s, 5);
	e->enabled = sqlite3_column_int(s, 6) != 0;
	e->has_nbf = sqlite3_column_type(s, 7) != SQLITE_NULL;
	e->nbf = sqlite3_column_int64(s, 7);
	e->has_exp = sqlite3_column_type(s, 8) != SQLITE_NULL;
	e->exp = sqlite3_column_int64(s, 8);
	e->created = sqlite3_column_int64(s, 9);
	e->updated = sqlite3_column_int64(s, 10);
	return col_str(s, 4, e->version, sizeof(e->version));
}

/* A list entry as the members store.h names for key listings. */
static int
item_fill(const struct list_ent *e, const struct vault_row *vr,
    struct kb_store_key *k)
{
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = stored_str(k->vault, vr->name, sizeof(k->vault))) != 0 ||
	    (r = stored_str(k->name, e->name, sizeof(k->name))) != 0)
		return r;
	memcpy(k->version, e->version, sizeof(k->version));
	k->recovery_level = kv_recovery_level(vr->retention_days,
	    vr->purge_protection);
	k->recoverable_days = vr->retention_days;
	k->deleted = e->deleted;
	k->deleted_date = e->deleted_date;
	k->scheduled_purge_date = e->scheduled_purge_date;
	k->key_size = e->key_size;
	k->enabled = e->enabled;
	k->has_nbf = e->has_nbf;
	k->nbf = e->nbf;
	k->has_exp = e->has_exp;
	k->exp = e->exp;
	k->created = e->created;
	k->updated = e->updated;
	if ((k->tags_json = kb_strdup(e->tags)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

/* A row of ITEM_COLS: the members store.h names for key listings. */
static int
item_read(sqlite3_stmt *s, const struct vault_row *vr, struct kb_store_key *k)
{
	struct list_ent e;
	int r;

	if ((r = ent_read(s, &e)) != 0)
		return r;
	return item_fill(&e, vr, k);
}

/* A row of KEY_COLS: the whole version but its public JWK. */
static int
key_read(sqlite3_stmt *s, const struct vault_row *vr, struct kb_store_key *k)
{
	const void *blob;
	int r;

	if ((r = item_read(s, vr, k)) != 0 ||
	    (r = col_str(s, ITEM_NCOLS, k->kty, sizeof(k->kty))) != 0 ||
	    (r = col_str(s, ITEM_NCOLS + 1, k->crv, sizeof(k->crv))) != 0 ||
	    (r = col_str(s, ITEM_NCOLS + 4, k->p11_label, sizeof(k->p11_label))) != 0)
		return r;
	k->key_ops = (unsigned)sqlite3_column_int64(s, ITEM_NCOLS + 2);
	k->exportable = sqlite3_column_int(s, ITEM_NCOLS + 3) != 0;
	blob = sqlite3_column_blob(s, ITEM_NCOLS + 5);
	if (blob == NULL || sqlite3_column_bytes(s, ITEM_NCOLS + 5) != KV_VERSION_BYTES)
		return kb_error_set(KB_ERR_INTERNAL,
		    "vault store: a version has a bad token object id");
	memcpy(k->p11_id, blob, KV_VERSION_BYTES);
	return 0;
}

/*
 * One key of a vault by lower-cased name: the latest version (version
 * NULL) or a given one; state "active", "deleted" or NULL for either.
 */
static int
key_get(struct kb_store *st, const struct vault_row *vr, const char *lc,
    const char *version, const char *state, struct kb_store_key **out)
{
	sqlite3_stmt *s = NULL;
	struct kb_store_key *k = NULL;
	int r;

	if ((r = q_prep(st, &s, "SELECT " KEY_COLS ", v.public_jwk" KEY_FROM
	    "WHERE k.vault_id = ?1 AND k.name_lc = ?2 AND "
	    "(?3 IS NULL OR k.state = ?3) AND "
	    "CASE WHEN ?4 IS NULL THEN" KEY_LATEST "ELSE v.version = ?4 END",
	    "itt" "t", vr->id, lc, state, version)) != 0)
		return r;
	if ((r = q_row(st, s, "key read")) < 0)
		goto out;
	if (r == 0) {
		const char *del = state != NULL &&
		    strcmp(state, "deleted") == 0 ? "deleted " : "";

		if (version != NULL)
			r = kb_error_set(KB_ERR_NOT_FOUND,
			    "no version %s of a %skey named %s", version, del, lc);
		else
			r = kb_error_set(KB_ERR_NOT_FOUND,
			    "no %skey named %s", del, lc);
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = key_read(s, vr, k)) != 0)
		goto out;
	if (sqlite3_column_type(s, KEY_NCOLS) == SQLITE_TEXT &&
	    (k->public_jwk = kb_strdup((const char *)sqlite3_column_text(s,
	    KEY_NCOLS))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
 out:
	kb_store_key_free(k);
	q_release(st, s);
	return r;
}

/*
 * Add one version (caller holds the transaction).  A new name creates
 * the key with display name `display`; a soft-deleted key is a conflict
 * unless allow_deleted (an intent committed after a concurrent delete:
 * the version joins the deleted key, which covers all versions).
 */
static int
apply_create(struct kb_store *st, const struct vault_row *vr,
    const char *display, const char *lc, const struct kb_store_new_version *v,
    const char *version_lc, const char *tags, const char *label,
    bool allow_deleted, const struct kb_store_actor *who, int64_t now)
{
	sqlite3_stmt *s = NULL;
	struct key_row kr;
	unsigned char id[KV_VERSION_BYTES];
	int64_t key_id;
	int r;

	if ((r = hex_to_id(version_lc, id)) != 0)
		return r;
	if ((r = key_find(st, vr->id, lc, &kr)) < 0)
		return r;
	if (r == 0) {
		if ((r = q_prep(st, &s, "INSERT INTO keys (vault_id, name, "
		    "name_lc, state, created) VALUES (?1, ?2, ?3, 'active', ?4)",
		    "itti", vr->id, display, lc, now)) != 0)
			return r;
		if ((r = q_done(st, s, "key insert")) != 0)
			return r;
		key_id = sqlite3_last_insert_rowid(st->db);
	} else {
		if (kr.deleted && !allow_deleted)
			return kb_error_set(KB_ERR_CONFLICT,
			    "the key %s is deleted but recoverable; its name "
			    "cannot be reused until it is recovered or purged",
			    kr.name);
		key_id = kr.id;
	}
	if ((r = q_prep(st, &s, "INSERT INTO versions (key_id, version, kty, "
	    "key_size, crv, key_ops, enabled, exportable, nbf, exp, created, "
	    "updated, tags, p11_label, p11_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	    "?7, ?8, ?9, ?10, ?11, ?15, ?12, ?13, ?14)",
	    "ittutuddnnitt" "bi", key_id, version_lc, v->kty, v->key_size,
	    v->crv != NULL ? v->crv : "", v->key_ops, (int)v->enabled,
	    (int)v->exportable, v->created > 0 ? v->created : now, tags, label,
	    id, v->updated > 0 ? v->updated : now)) != 0)
		return r;
	/* nbf and exp are bound separately: they may be NULL. */
	if ((v->has_nbf && sqlite3_bind_int64(s, 9, v->nbf) != SQLITE_OK) ||
	    (v->has_exp && sqlite3_bind_int64(s, 10, v->exp) != SQLITE_OK)) {
		q_release(st, s);
		return kb_error_set(KB_ERR_INTERNAL, "bind nbf/exp");
	}
	if ((r = q_done(st, s, "version insert")) != 0) {
		if (r == KB_ERR_CONFLICT)
			r = kb_error_set(KB_ERR_CONFLICT,
			    "the key %s already has a version %s", display,
			    version_lc);
		return r;
	}
	return audit_insert(st, who, vr->name,
	    v->audit_op != NULL ? v->audit_op : "create", display, version_lc,
	    "ok", now);
}

/*
 * What create (direct or intent) checks before anything changes: the
 * name is not soft-deleted, no purge of it is in progress, and the
 * version id is not already taken by a version or an open intent.
 */
static int
create_precheck(struct kb_store *st, const struct vault_row *vr,
    const char *lc, const char *display, const char *ver)
{
	sqlite3_stmt *s = NULL;
	struct key_row kr;
	int64_t busy;
	int r;

	if ((r = key_find(st, vr->id, lc, &kr)) < 0)
		return r;
	if (r == 1 && kr.deleted)
		return kb_error_set(KB_ERR_CONFLICT,
		    "the key %s is deleted but recoverable; its name cannot "
		    "be reused until it is recovered or purged", kr.name);
	if ((r = intents_on_key(st, vr->id, lc, "purge", &busy)) != 0)
		return r;
	if (busy > 0)
		return kb_error_set(KB_ERR_CONFLICT, "the key %s is being purged",
		    display);
	if ((r = q_prep(st, &s, "SELECT 1 FROM intents WHERE vault_id = ?1 "
	    "AND key_name_lc = ?2 AND version = ?3 UNION ALL "
	    "SELECT 1 FROM versions v JOIN keys k ON k.id = v.key_id "
	    "WHERE k.vault_id = ?1 AND k.name_lc = ?2 AND v.version = ?3",
	    "itt", vr->id, lc, ver)) != 0)
		return r;
	r = q_row(st, s, "version lookup");
	q_release(st, s);
	if (r < 0)
		return r;
	if (r == 1)
		return kb_error_set(KB_ERR_CONFLICT,
		    "the key %s already has a version %s", display, ver);
	return 0;
}

/*
 * The display name (and so the token object's CKA_LABEL) a create uses:
 * an existing key's, else that of an open create of the same new name
 * (so racing creates label their objects alike), else the request's.
 */
static int
resolve_display(struct kb_store *st, int64_t vault_id, const char *lc,
    const char *name, char *display, size_t n)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "SELECT name FROM keys WHERE vault_id = ?1 "
	    "AND name_lc = ?2 UNION ALL SELECT key_name FROM (SELECT "
	    "key_name FROM intents WHERE vault_id = ?1 AND key_name_lc = ?2 "
	    "ORDER BY id LIMIT 1)", "it", vault_id, lc)) != 0)
		return r;
	if ((r = q_row(st, s, "display name")) == 1)
		r = col_str(s, 0, display, n);
	else if (r == 0)
		r = kb_strlcpy(display, name, n);
	q_release(st, s);
	return r;
}

/* ------------------------------------------------------------- open/close */

static int
open_file_check(const char *path)
{
	struct stat sb;
	int fd, r = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return kb_error_set(KB_ERR_IO, "cannot open the vault store %s: %s",
		    path, strerror(errno));
	if (fstat(fd, &sb) == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot stat %s: %s", path,
		    strerror(errno));
	} else if (!S_ISREG(sb.st_mode)) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "the vault store %s is not a regular file", path);
	} else if ((sb.st_mode & 022) != 0) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "the vault store %s is writable by group or others; "
		    "chmod 600 it", path);
	}
	close(fd);
	return r;
}

static int
pragma_int(struct kb_store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, sql, "")) != 0)
		return r;
	if ((r = q_row(st, s, sql)) == 1) {
		*out = sqlite3_column_int64(s, 0);
		r = 0;
	} else if (r == 0) {
		r = kb_error_set(KB_ERR_INTERNAL, "%s returned no row", sql);
	}
	q_release(st, s);
	return r;
}

static int
identity_read(struct kb_store *st, int64_t *ver, int64_t *app)
{
	int r;

	if ((r = pragma_int(st, "PRAGMA user_version", ver)) != 0 ||
	    (r = pragma_int(st, "PRAGMA application_id", app)) != 0)
		return r;
	if (*ver > KB_STORE_SCHEMA_VERSION)
		return kb_error_set(KB_ERR_CONFIG, "the vault store %s has "
		    "schema version %" PRId64 ", newer than this keybridged "
		    "knows (%d); run a newer keybridged", st->path, *ver,
		    KB_STORE_SCHEMA_VERSION);
	if ((*ver > 0 || *app != 0) && *app != STORE_APP_ID)
		return kb_error_set(KB_ERR_CONFIG,
		    "%s is an SQLite file but not a keybridge vault store",
		    st->path);
	return 0;
}

static int
identity_check(struct kb_store *st)
{
	int64_t ver, app;

	return identity_read(st, &ver, &app);
}

static int
migrate(struct kb_store *st)
{
	char sql[64];
	int64_t ver, app;
	int r;

	if ((r = tx_begin(st)) != 0)
		return r;
	if ((r = identity_read(st, &ver, &app)) != 0)
		goto out;
	for (; ver < N_MIGRATIONS; ver++) {
		if ((r = exec(st, migrations[ver], "schema migration")) != 0)
			goto out;
		/* PRAGMA takes no parameters; the value is our own constant. */
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    (int)ver + 1);
		if ((r = exec(st, sql, "schema version")) != 0)
			goto out;
	}
	if (app != STORE_APP_ID) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
		    STORE_APP_ID);
		if ((r = exec(st, sql, "application id")) != 0)
			goto out;
	}
	r = tx_commit(st);
 out:
	if (r != 0)
		tx_rollback(st);
	return r;
}

static int
journal_wal(struct kb_store *st)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *mode;
	int r;

	if ((r = q_prep(st, &s, "PRAGMA journal_mode = WAL", "")) != 0)
		return r;
	if ((r = q_row(st, s, "journal mode")) < 0)
		goto out;
	mode = r == 1 ? sqlite3_column_text(s, 0) : NULL;
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		r = kb_error_set(KB_ERR_IO, "the vault store %s cannot use a "
		    "write-ahead log (is its file system a network one?)",
		    st->path);
		goto out;
	}
	r = 0;
 out:
	q_release(st, s);
	return r;
}

int
kb_store_open(const char *path, struct kb_store **out)
{
	struct kb_store *st = NULL;
	int rc, r;

	if (path == NULL || path[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no vault store path");
	if ((r = open_file_check(path)) != 0)
		return r;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return KB_ERR_ALLOC;
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		return kb_error_set(KB_ERR_INTERNAL, "pthread_mutex_init failed");
	}
	if (pthread_mutex_init(&st->kmu, NULL) != 0) {
		pthread_mutex_destroy(&st->mu);
		free(st);
		return kb_error_set(KB_ERR_INTERNAL, "pthread_mutex_init failed");
	}
	atomic_init(&st->gen, -1);
	st->list_budget = LIST_CACHE_BYTES;
	if ((st->keys = calloc(KEY_CACHE_SLOTS, sizeof(*st->keys))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((st->path = kb_strdup(path)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		r = st->db != NULL ? db_err(st, rc, "open") :
		    kb_error_set(KB_ERR_ALLOC, "sqlite3_open_v2 failed");
		goto out;
	}
	/* Defensive: no writable_schema tricks, no untrusted SQL functions
	 * in schema; the schema is ours alone. */
	if (sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
	    sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_QPSG, 1, NULL) != SQLITE_OK) {
		r = kb_error_set(KB_ERR_INTERNAL, "sqlite3_db_config failed");
		goto out;
	}
	if ((rc = sqlite3_busy_timeout(st->db, STORE_BUSY_MS)) != SQLITE_OK) {
		r = db_err(st, rc, "busy timeout");
		goto out;
	}
	/* Refuse a foreign or newer file before changing its journal mode
	 * (migrate() checks again inside its transaction). */
	if ((r = identity_check(st)) != 0 ||
	    (r = journal_wal(st)) != 0 ||
	    (r = exec(st, "PRAGMA synchronous = FULL", "synchronous")) != 0 ||
	    (r = exec(st, "PRAGMA foreign_keys = ON", "foreign keys")) != 0 ||
	    (r = migrate(st)) != 0)
		goto out;
	*out = st;
	st = NULL;
	r = 0;
 out:
	kb_store_close(st);
	return r;
}

static void list_drop(struct kb_store *, struct list_slot *);

void
kb_store_close(struct kb_store *st)
{
	size_t i;

	if (st == NULL)
		return;
	/* Cached statements go first; the others are finalized already. */
	for (i = 0; i < st->ncache; i++)
		sqlite3_finalize(st->cache[i].s);
	if (st->db != NULL)
		sqlite3_close_v2(st->db);
	for (i = 0; i < LIST_CACHE_SLOTS; i++)
		list_drop(st, &st->lists[i]);
	pthread_mutex_destroy(&st->mu);
	if (st->keys != NULL)
		for (i = 0; i < KEY_CACHE_SLOTS; i++) {
			free(st->keys[i].k.tags_json);
			free(st->keys[i].k.public_jwk);
		}
	free(st->keys);
	pthread_mutex_destroy(&st->kmu);
	free(st->path);
	free(st);
}

#define LOCK(st) pthread_mutex_lock(&(st)->mu)
/* Publishes the change count for the key cache before letting go. */
#define UNLOCK(st) do { \
	atomic_store(&(st)->gen, (int64_t)sqlite3_total_changes64((st)->db)); \
	pthread_mutex_unlock(&(st)->mu); \
} while (0)

/* ----------------------------------------------------------------- vaults */

int
kb_store_vault_ensure(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, unsigned retention_days, bool purge_protection,
    int64_t now)
{
	char lc[KV_VAULT_NAME_MAX + 1];
	sqlite3_stmt *s = NULL;
	struct vault_row vr;
	int r;

	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_VAULT_NAME, vault, lc, sizeof(lc))) != 0 ||
	    (r = kv_retention_check((long)retention_days)) != 0 ||
	    (r = check_time("now", now)) != 0)
		return r;
	LOCK(st);
	st->nvaults = 0;
	if ((r = tx_begin(st)) != 0)
		goto out;
	r = vault_find(st, vault, &vr);
	if (r == KB_ERR_NOT_FOUND) {
		if ((r = q_prep(st, &s, "INSERT INTO vaults (name, name_lc, "
		    "retention_days, purge_protection, created) VALUES "
		    "(?1, ?2, ?3, ?4, ?5)", "ttudi", vault, lc, retention_days,
		    (int)purge_protection, now)) != 0 ||
		    (r = q_done(st, s, "vault insert")) != 0 ||
		    (r = audit_insert(st, who, vault,
		    "vault-create", NULL, NULL, "ok", now)) != 0)
			goto out;
	} else if (r != 0) {
		goto out;
	} else if (vr.retention_days != retention_days) {
		/* Key Vault: set at creation, immutable afterwards. */
		r = kb_error_set(KB_ERR_CONFLICT, "the vault %s keeps deleted "
		    "keys %u days; the retention cannot change once set "
		    "(the config says %u)", vr.name, vr.retention_days,
		    retention_days);
		goto out;
	} else if (vr.purge_protection && !purge_protection) {
		r = kb_error_set(KB_ERR_CONFLICT, "the vault %s has purge "
		    "protection, which cannot be turned off", vr.name);
		goto out;
	} else if (!vr.purge_protection && purge_protection) {
		if ((r = q_prep(st, &s, "UPDATE vaults SET purge_protection = 1 "
		    "WHERE id = ?1", "i", vr.id)) != 0 ||
		    (r = q_done(st, s, "vault update")) != 0 ||
		    (r = audit_insert(st, who, vr.name,
		    "vault-update", NULL, NULL, "ok", now)) != 0)
			goto out;
	}
	r = tx_commit(st);
 out:
	if (r != 0)
		tx_rollback(st);
	st->nvaults = 0;      /* rows read inside the transaction */
	UNLOCK(st);
	return r;
}

int
kb_store_vault_get(struct kb_store *st, const char *vault,
    struct kb_store_vault *out)
{
	struct vault_row vr;
	int r;

	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) == 0) {
		memset(out, 0, sizeof(*out));
		memcpy(out->name, vr.name, sizeof(out->name));
		out->retention_days = vr.retention_days;
		out->purge_protection = vr.purge_protection;
		out->created = vr.created;
	}
	UNLOCK(st);
	return r;
}

/* ------------------------------------------------------------------- keys */

int
kb_store_add_version(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const struct kb_store_new_version *v,
    int64_t now, struct kb_store_key **out)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	char *tags = NULL;
	char display[KV_NAME_MAX + 1];
	struct vault_row vr;
	struct kb_store_key *k = NULL;
	int r;

	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0 ||
	    (r = check_new_version(v, ver, &tags)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = resolve_display(st, vr.id, lc, name, display,
	    sizeof(display))) != 0)
		goto out;
	if ((r = create_precheck(st, &vr, lc, display, ver)) != 0)
		goto out;
	if ((r = apply_create(st, &vr, display, lc, v, ver, tags, display,
	    false, who, now)) != 0)
		goto out;
	if ((r = tx_commit(st)) != 0)
		goto out;
	if (out != NULL && (r = key_get(st, &vr, lc, ver, NULL, &k)) == 0) {
		*out = k;
		k = NULL;
	}
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	kb_store_key_free(k);
	free(tags);
	return r;
}

/* ----------------------------------------------------------- key cache */

static struct key_slot *
key_slot(struct kb_store *st, const char *vault, const char *lc,
    const char *ver)
{
	const char *parts[3] = { vault, lc, ver };
	uint32_t h = 2166136261u;
	const unsigned char *p;
	size_t i;

	for (i = 0; i < 3; i++) {
		for (p = (const unsigned char *)parts[i]; *p != '\0'; p++)
			h = (h ^ *p) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	return &st->keys[h % KEY_CACHE_SLOTS];
}

/* *dst = *src with its own copies of the strings; dst untouched on failure. */
static int
key_dup(struct kb_store_key *dst, const struct kb_store_key *src)
{
	char *tags, *jwk = NULL;

	if ((tags = kb_strdup(src->tags_json)) == NULL)
		return KB_ERR_ALLOC;
	if (src->public_jwk != NULL && (jwk = kb_strdup(src->public_jwk)) == NULL) {
		free(tags);
		return KB_ERR_ALLOC;
	}
	*dst = *src;
	dst->tags_json = tags;
	dst->public_jwk = jwk;
	return 0;
}

static int
key_copy(const struct kb_store_key *src, struct kb_store_key **out)
{
	struct kb_store_key *k;

	if ((k = malloc(sizeof(*k))) == NULL)
		return KB_ERR_ALLOC;
	if (key_dup(k, src) != 0) {
		free(k);
		return KB_ERR_ALLOC;
	}
	*out = k;
	return 0;
}

/* 0 and a copy in *out on a fresh hit, 1 on a miss, <0 on error. */
static int
key_cache_get(struct kb_store *st, const char *vault, const char *lc,
    const char *ver, struct kb_store_key **out)
{
	struct key_slot *e = key_slot(st, vault, lc, ver);
	int r = 1;

	pthread_mutex_lock(&st->kmu);
	if (e->used && e->gen == atomic_load(&st->gen) &&
	    strcmp(e->lc, lc) == 0 && strcmp(e->ver, ver) == 0 &&
	    strcmp(e->vault, vault) == 0)
		r = key_copy(&e->k, out);
	pthread_mutex_unlock(&st->kmu);
	return r;
}

/* Keeps a copy of k as read at change count gen (best effort). */
static void
key_cache_put(struct kb_store *st, const char *vault, const char *lc,
    const char *ver, int64_t gen, const struct kb_store_key *k)
{
	struct key_slot *e = key_slot(st, vault, lc, ver);
	struct kb_store_key copy;

	if (strlen(vault) >= sizeof(e->vault) || key_dup(&copy, k) != 0)
		return;
	pthread_mutex_lock(&st->kmu);
	free(e->k.tags_json);
	free(e->k.public_jwk);
	e->k = copy;
	e->gen = gen;
	snprintf(e->vault, sizeof(e->vault), "%s", vault);
	snprintf(e->lc, sizeof(e->lc), "%s", lc);
	snprintf(e->ver, sizeof(e->ver), "%s", ver);
	e->used = true;
	pthread_mutex_unlock(&st->kmu);
}

int
kb_store_get_key(struct kb_store *st, const char *vault, const char *name,
    const char *version, struct kb_store_key **out)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	bool latest = version == NULL || version[0] == '\0';
	struct vault_row vr;
	int64_t gen;
	int r;

	if ((r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (!latest && (r = name_lc(KV_FIELD_VERSION, version, ver,
	    sizeof(ver))) != 0))
		return r;
	if (latest)
		ver[0] = '\0';
	if ((r = key_cache_get(st, vault, lc, ver, out)) != 1)
		return r;
	LOCK(st);
	gen = (int64_t)sqlite3_total_changes64(st->db);
	if ((r = vault_find(st, vault, &vr)) == 0)
		r = key_get(st, &vr, lc, latest ? NULL : ver, "active", out);
	UNLOCK(st);
	if (r == 0)
		key_cache_put(st, vault, lc, ver, gen, *out);
	return r;
}

/* A public JWK as the store keeps it: a JSON object's text, bounded. */
static int
jwk_check(const char *jwk)
{
	if (jwk == NULL || jwk[0] != '{' || strlen(jwk) > KB_STORE_JWK_MAX)
		return kb_error_set(KB_ERR_INVALID, "not a public JWK");
	return 0;
}

/* Record a version's public JWK unless it has one (caller holds the lock;
 * outside a transaction the statement is its own). */
static int
jwk_record(struct kb_store *st, int64_t vault_id, const char *lc,
    const char *ver, const char *jwk)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "UPDATE versions SET public_jwk = ?4 WHERE "
	    "public_jwk IS NULL AND version = ?3 AND key_id = (SELECT id FROM "
	    "keys WHERE vault_id = ?1 AND name_lc = ?2)", "ittt", vault_id, lc,
	    ver, jwk)) != 0)
		return r;
	return q_done(st, s, "public key record");
}

int
kb_store_set_public_jwk(struct kb_store *st, const char *vault,
    const char *name, const char *version, const char *jwk)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	struct vault_row vr;
	int r;

	if ((r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = name_lc(KV_FIELD_VERSION, version, ver, sizeof(ver))) != 0 ||
	    (r = jwk_check(jwk)) != 0)
		return r;
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) == 0)
		r = jwk_record(st, vr.id, lc, ver, jwk);
	UNLOCK(st);
	return r;
}

enum cursor_kind { CURSOR_NAME, CURSOR_VERSION };

/*
 * Read up to limit rows of s (which asks for limit + 1) into a new array;
 * *next gets the cursor of the last item when a further row exists.
 */
static int
list_page(struct kb_store *st, const struct vault_row *vr, sqlite3_stmt *s,
    unsigned limit, enum cursor_kind kind, row_reader read,
    struct kb_store_key **items, size_t *n, char **next)
{
	struct kb_store_key *arr = NULL;
	char cur[KV_NAME_MAX + 1];
	char *nx = NULL;
	size_t got = 0;
	bool more = false;
	int r;

	if ((arr = calloc(limit, sizeof(*arr))) == NULL)
		return KB_ERR_ALLOC;
	while ((r = q_row(st, s, "list")) == 1) {
		if (got == limit) {
			more = true;
			break;
		}
		if ((r = read(s, vr, &arr[got])) != 0) {
			free(arr[got].tags_json);
			goto out;
		}
		got++;
	}
	if (r < 0)
		goto out;
	if (more) {
		if (kind == CURSOR_NAME)
			r = kv_lower(arr[got - 1].name, cur, sizeof(cur));
		else
			r = kb_strlcpy(cur, arr[got - 1].version, sizeof(cur));
		if (r != 0)
			goto out;
		if ((nx = kb_strdup(cur)) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	}
	*items = arr;
	arr = NULL;
	*n = got;
	*next = nx;
	r = 0;
 out:
	kb_store_keys_free(arr, got);
	return r;
}

/* A name cursor checked and lower-cased; "" when absent. */
static int
name_cursor(const char *after, char *dst, size_t n)
{
	int r;

	if (after == NULL || after[0] == '\0') {
		dst[0] = '\0';
		return 0;
	}
	if ((r = name_lc(KV_FIELD_KEY_NAME, after, dst, n)) != 0)
		return kb_error_set(KB_ERR_INVALID, "the paging cursor is not "
		    "valid (it must come from a previous page)");
	return r;
}

/* ---------------------------------------------------------- listings */

static void
list_drop(struct kb_store *st, struct list_slot *ls)
{
	size_t i;

	for (i = 0; ls->v != NULL && i < ls->n; i++)
		free(ls->v[i].own);
	free(ls->v);
	st->list_bytes -= ls->bytes;
	ls->v = NULL;
	ls->n = ls->bytes = 0;
}

/* The slot of a vault's listing: its own, a free one or the least
 * recently used, emptied. */
static struct list_slot *
list_slot(struct kb_store *st, int64_t vault_id, bool deleted)
{
	struct list_slot *ls, *pick = NULL;
	size_t i;

	for (i = 0; i < LIST_CACHE_SLOTS; i++) {
		ls = &st->lists[i];
		if (ls->vault_id == vault_id && ls->deleted == deleted) {
			pick = ls;
			goto out;
		}
		/* A free slot first, else the least recently used. */
		if (pick == NULL || (pick->vault_id != 0 &&
		    (ls->vault_id == 0 || ls->tick < pick->tick)))
			pick = ls;
	}
	list_drop(st, pick);
	memset(pick, 0, sizeof(*pick));
	pick->vault_id = vault_id;
	pick->deleted = deleted;
	pick->acct_gen = -1;
 out:
	pick->tick = ++st->list_tick;
	return pick;
}

/* e with its strings copied into one allocation of its own. */
static int
ent_keep(const struct list_ent *e, struct list_ent *dst, size_t *bytes)
{
	size_t ln = strlen(e->name) + 1, ll = strlen(e->lc) + 1,
	    lt = strlen(e->tags) + 1;
	char *m;

	if ((m = malloc(ln + ll + lt)) == NULL)
		return KB_ERR_ALLOC;
	*dst = *e;
	dst->own = m;
	dst->name = memcpy(m, e->name, ln);
	dst->lc = memcpy(m + ln, e->lc, ll);
	dst->tags = memcpy(m + ln + ll, e->tags, lt);
	*bytes += sizeof(*dst) + ln + ll + lt;
	return 0;
}

/*
 * Read the listing into ls at change count gen if it has at most max
 * rows and fits in what is left of the budget.  Otherwise keep nothing
 * (not an error) and try again when the SQL pages have read twice the
 * rows they had.
 */
static int
list_build(struct kb_store *st, struct list_slot *ls, int64_t gen, size_t max)
{
	struct list_ent e, *nv;
	sqlite3_stmt *s = NULL;
	size_t cap = 0, rows = 0;
	const unsigned char *lc;
	bool all = false;       /* every row read, within max and the budget */
	int r;

	if ((r = q_prep(st, &s, "SELECT " ITEM_COLS ", k.name_lc" KEY_FROM
	    "WHERE k.vault_id = ?1 AND k.state = ?2 AND" KEY_LATEST
	    "ORDER BY k.name_lc LIMIT ?3", "iti", ls->vault_id,
	    ls->deleted ? "deleted" : "active", (int64_t)max + 1)) != 0)
		return r;
	for (;;) {
		if ((r = q_row(st, s, "list")) != 1) {
			all = r == 0;
			break;
		}
		if (++rows > max)
			break;
		if ((r = ent_read(s, &e)) != 0)
			break;
		lc = sqlite3_column_text(s, ITEM_NCOLS);
		e.lc = lc != NULL ? (const char *)lc : "";
		if (ls->n == cap) {
			cap = cap != 0 ? cap * 2 : 256;
			if ((nv = reallocarray(ls->v, cap, sizeof(*nv))) == NULL) {
				r = KB_ERR_ALLOC;
				break;
			}
			ls->v = nv;
		}
		if ((r = ent_keep(&e, &ls->v[ls->n], &ls->bytes)) != 0)
			break;
		ls->n++;
		if (st->list_bytes + ls->bytes > st->list_budget) {
			st->list_stats.over_budget++;
			break;
		}
	}
	q_release(st, s);
	st->list_stats.build_rows += rows;
	st->list_bytes += ls->bytes;
	if (all && ls->v == NULL && (ls->v = malloc(sizeof(*ls->v))) == NULL)
		r = KB_ERR_ALLOC;
	if (!all || r != 0) {
		list_drop(st, ls);
		st->list_stats.abandoned++;
		ls->next_try = 2 * ls->sql_rows;
		return r < 0 ? r : 0;
	}
	/* The doubling's slack back: 0.9 MB at 10,000 keys. */
	if (ls->n > 0 && (nv = reallocarray(ls->v, ls->n, sizeof(*nv))) != NULL)
		ls->v = nv;
	ls->gen = gen;
	st->list_stats.builds++;
	return 0;
}

/* A page of a built listing: the names after cur, as list_page gives. */
static int
list_cached(const struct list_slot *ls, const struct vault_row *vr,
    const char *cur, unsigned limit, struct kb_store_key **items,
    size_t *n, char **next)
{
	struct kb_store_key *arr;
	size_t lo = 0, hi = ls->n, mid, got;
	char *nx = NULL;
	int r;

	while (lo < hi) {           /* the first name above cur */
		mid = lo + (hi - lo) / 2;
		if (strcmp(ls->v[mid].lc, cur) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if ((arr = calloc(limit, sizeof(*arr))) == NULL)
		return KB_ERR_ALLOC;
	for (got = 0; got < limit && lo + got < ls->n; got++)
		if ((r = item_fill(&ls->v[lo + got], vr, &arr[got])) != 0) {
			kb_store_keys_free(arr, got + 1);
			return r;
		}
	if (lo + got < ls->n && (nx = kb_strdup(ls->v[lo + got - 1].lc)) == NULL) {
		kb_store_keys_free(arr, got);
		return KB_ERR_ALLOC;
	}
	*items = arr;
	*n = got;
	*next = nx;
	return 0;
}

static int
list_keys_state(struct kb_store *st, const char *vault, const char *after,
    unsigned limit, bool deleted, struct kb_store_key **items,
    size_t *n, char **next)
{
	char cur[KV_NAME_MAX + 1];
	sqlite3_stmt *s = NULL;
	struct list_slot *ls;
	struct vault_row vr;
	int64_t gen;
	int r;

	if ((r = check_limit(limit)) != 0 ||
	    (r = name_cursor(after, cur, sizeof(cur))) != 0)
		return r;
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) != 0)
		goto out;
	ls = list_slot(st, vr.id, deleted);
	gen = (int64_t)sqlite3_total_changes64(st->db);
	if (ls->v != NULL && ls->gen != gen)
		list_drop(st, ls);
	if (ls->v == NULL && ls->acct_gen != gen) {
		ls->acct_gen = gen;
		ls->sql_rows = 0;
		ls->next_try = 1;
	}
	/* Never inside a transaction, whose rows a rollback could undo
	 * without moving the count. */
	if (ls->v == NULL && ls->sql_rows >= ls->next_try &&
	    st->list_budget > 0 && sqlite3_get_autocommit(st->db) &&
	    (r = list_build(st, ls, gen, ls->sql_rows)) != 0)
		goto out;
	if (ls->v != NULL) {
		if ((r = list_cached(ls, &vr, cur, limit, items, n, next)) == 0)
			st->list_stats.cached_pages++;
		goto out;
	}
	/* keys_list index (vault_id, state, name_lc, ...): a range scan
	 * of a covering index, then each latest version by rowid. */
	if ((r = q_prep(st, &s, "SELECT " ITEM_COLS KEY_FROM
	    "WHERE k.vault_id = ?1 AND k.state = ?2 AND k.name_lc > ?3 AND"
	    KEY_LATEST "ORDER BY k.name_lc LIMIT ?4",
	    "ittu", vr.id, deleted ? "deleted" : "active", cur, limit + 1)) != 0)
		goto out;
	if ((r = list_page(st, &vr, s, limit, CURSOR_NAME, item_read, items, n,
	    next)) == 0) {
		size_t rows = *n + (*next != NULL);   /* the look-ahead row */

		ls->sql_rows += rows;
		st->list_stats.sql_pages++;
		st->list_stats.paged_rows += rows;
	}
 out:
	q_release(st, s);
	UNLOCK(st);
	return r;
}

void
kb_store_list_budget(struct kb_store *st, size_t bytes)
{
	size_t i;

	LOCK(st);
	for (i = 0; i < LIST_CACHE_SLOTS; i++) {
		list_drop(st, &st->lists[i]);
		memset(&st->lists[i], 0, sizeof(st->lists[i]));
	}
	st->list_budget = bytes;
	UNLOCK(st);
}

void
kb_store_list_stats(struct kb_store *st, struct kb_store_list_stats *out)
{
	LOCK(st);
	*out = st->list_stats;
	out->bytes = st->list_bytes;
	UNLOCK(st);
}

int
kb_store_list_keys(struct kb_store *st, const char *vault, const char *after,
    unsigned limit, struct kb_store_key **items, size_t *n, char **next)
{
	return list_keys_state(st, vault, after, limit, false, items, n, next);
}

int
kb_store_list_deleted(struct kb_store *st, const char *vault,
    const char *after, unsigned limit, struct kb_store_key **items,
    size_t *n, char **next)
{
	return list_keys_state(st, vault, after, limit, true, items, n,
	    next);
}

int
kb_store_list_versions(struct kb_store *st, const char *vault,
    const char *name, const char *after, unsigned limit,
    struct kb_store_key **items, size_t *n, char **next)
{
	char lc[KV_NAME_MAX + 1], cur[KV_VERSION_LEN + 1];
	sqlite3_stmt *s = NULL;
	struct vault_row vr;
	struct key_row kr;
	int64_t after_id = 0;
	int r;

	if ((r = check_limit(limit)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0)
		return r;
	if (after != NULL && after[0] != '\0' &&
	    name_lc(KV_FIELD_VERSION, after, cur, sizeof(cur)) != 0)
		return kb_error_set(KB_ERR_INVALID, "the paging cursor is not "
		    "valid (it must come from a previous page)");
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	if (r == 0 || kr.deleted) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no key named %s", name);
		goto out;
	}
	if (after != NULL && after[0] != '\0') {
		if ((r = q_prep(st, &s, "SELECT id FROM versions WHERE "
		    "key_id = ?1 AND version = ?2", "it", kr.id, cur)) != 0)
			goto out;
		if ((r = q_row(st, s, "cursor lookup")) == 1)
			after_id = sqlite3_column_int64(s, 0);
		q_release(st, s);
		s = NULL;
		if (r < 0)
			goto out;
		if (r == 0) {
			r = kb_error_set(KB_ERR_INVALID, "the paging cursor "
			    "does not name a version of the key %s", kr.name);
			goto out;
		}
	}
	/* Creation order: the rowid grows with every version added. */
	if ((r = q_prep(st, &s, "SELECT " KEY_COLS KEY_FROM
	    "WHERE k.id = ?1 AND v.id > ?2 ORDER BY v.id LIMIT ?3",
	    "iiu", kr.id, after_id, limit + 1)) != 0)
		goto out;
	r = list_page(st, &vr, s, limit, CURSOR_VERSION, key_read,
	    items, n, next);
 out:
	q_release(st, s);
	UNLOCK(st);
	return r;
}

int
kb_store_update(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const char *version,
    const struct kb_store_update *u, int64_t now, struct kb_store_key **out)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	bool latest = version == NULL || version[0] == '\0';
	char *tags = NULL;
	sqlite3_stmt *s = NULL;
	struct kb_store_key *k = NULL;
	struct vault_row vr;
	int r;

	if (u == NULL)
		return kb_error_set(KB_ERR_INVALID, "no update given");
	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (!latest && (r = name_lc(KV_FIELD_VERSION, version, ver,
	    sizeof(ver))) != 0) ||
	    (r = check_time("now", now)) != 0)
		return r;
	if (u->set_nbf && u->has_nbf && (r = check_time("nbf", u->nbf)) != 0)
		return r;
	if (u->set_exp && u->has_exp && (r = check_time("exp", u->exp)) != 0)
		return r;
	if (u->set_key_ops && (u->key_ops & ~(unsigned)KV_OP__ALL) != 0)
		return kb_error_set(KB_ERR_INVALID, "key_ops holds unknown bits");
	if (u->set_tags && (r = tags_canon(u->tags_json, &tags)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_get(st, &vr, lc, latest ? NULL : ver, "active", &k)) != 0)
		goto out;
	if ((r = q_prep(st, &s, "UPDATE versions SET "
	    "enabled = CASE WHEN ?1 THEN ?2 ELSE enabled END, "
	    "nbf = CASE WHEN ?3 THEN ?4 ELSE nbf END, "
	    "exp = CASE WHEN ?5 THEN ?6 ELSE exp END, "
	    "key_ops = CASE WHEN ?7 THEN ?8 ELSE key_ops END, "
	    "tags = CASE WHEN ?9 THEN ?10 ELSE tags END, "
	    "updated = ?11 "
	    "WHERE key_id = (SELECT id FROM keys WHERE vault_id = ?12 AND "
	    "name_lc = ?13) AND version = ?14",
	    "ddd" "n" "d" "n" "du" "dt" "iitt",
	    (int)u->set_enabled, (int)u->enabled,
	    (int)u->set_nbf, (int)u->set_exp,
	    (int)u->set_key_ops, u->key_ops,
	    (int)u->set_tags, tags,
	    now, vr.id, lc, k->version)) != 0)
		goto out;
	if ((u->has_nbf && sqlite3_bind_int64(s, 4, u->nbf) != SQLITE_OK) ||
	    (u->has_exp && sqlite3_bind_int64(s, 6, u->exp) != SQLITE_OK)) {
		r = kb_error_set(KB_ERR_INTERNAL, "bind nbf/exp");
		goto out;
	}
	r = q_done(st, s, "version update");
	s = NULL;
	if (r != 0 ||
	    (r = audit_insert(st, who, vr.name, "update",
	    k->name, k->version, "ok", now)) != 0 ||
	    (r = tx_commit(st)) != 0)
		goto out;
	if (out != NULL) {
		char v2[KV_VERSION_LEN + 1];

		memcpy(v2, k->version, sizeof(v2));
		kb_store_key_free(k);
		k = NULL;
		if ((r = key_get(st, &vr, lc, v2, NULL, &k)) != 0)
			goto out;
		*out = k;
		k = NULL;
	}
 out:
	q_release(st, s);
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	kb_store_key_free(k);
	free(tags);
	return r;
}

/* Soft delete or recover: flip the key's state. */
static int
set_deleted(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, bool del, int64_t now,
    struct kb_store_key **out)
{
	char lc[KV_NAME_MAX + 1];
	sqlite3_stmt *s = NULL;
	struct kb_store_key *k = NULL;
	struct vault_row vr;
	struct key_row kr;
	int64_t busy;
	int r;

	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	if (r == 0 || kr.deleted == del) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no %skey named %s",
		    del ? "" : "deleted ", name);
		goto out;
	}
	if (!del) {
		/* Recovering a key whose purge is under way would leave a
		 * key without objects. */
		if ((r = intents_on_key(st, vr.id, lc, "purge", &busy)) != 0)
			goto out;
		if (busy > 0) {
			r = kb_error_set(KB_ERR_CONFLICT,
			    "the key %s is being purged", kr.name);
			goto out;
		}
	}
	if (del) {
		r = q_prep(st, &s, "UPDATE keys SET state = 'deleted', "
		    "deleted_date = ?1, scheduled_purge_date = ?2 WHERE id = ?3",
		    "iii", now, now + (int64_t)vr.retention_days * DAY_SECONDS,
		    kr.id);
	} else {
		r = q_prep(st, &s, "UPDATE keys SET state = 'active', "
		    "deleted_date = NULL, scheduled_purge_date = NULL "
		    "WHERE id = ?1", "i", kr.id);
	}
	if (r != 0)
		goto out;
	if ((r = q_done(st, s, del ? "delete" : "recover")) != 0 ||
	    (r = audit_insert(st, who, vr.name,
	    del ? "delete" : "recover", kr.name, NULL, "ok", now)) != 0 ||
	    (r = tx_commit(st)) != 0)
		goto out;
	if (out != NULL) {
		if ((r = key_get(st, &vr, lc, NULL, del ? "deleted" : "active",
		    &k)) != 0)
			goto out;
		*out = k;
	}
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	return r;
}

int
kb_store_delete(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, int64_t now,
    struct kb_store_key **out)
{
	return set_deleted(st, who, vault, name, true, now, out);
}

int
kb_store_recover(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, int64_t now,
    struct kb_store_key **out)
{
	return set_deleted(st, who, vault, name, false, now, out);
}

int
kb_store_get_deleted(struct kb_store *st, const char *vault,
    const char *name, struct kb_store_key **out)
{
	char lc[KV_NAME_MAX + 1];
	struct vault_row vr;
	int r;

	if ((r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0)
		return r;
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) == 0)
		r = key_get(st, &vr, lc, NULL, "deleted", out);
	UNLOCK(st);
	return r;
}

int
kb_store_due_for_purge(struct kb_store *st, int64_t now, unsigned limit,
    struct kb_store_due **out, size_t *n)
{
	struct kb_store_due *arr = NULL;
	sqlite3_stmt *s = NULL;
	size_t got = 0;
	int r;

	if ((r = check_limit(limit)) != 0)
		return r;
	if ((arr = calloc(limit, sizeof(*arr))) == NULL)
		return KB_ERR_ALLOC;
	LOCK(st);
	/* keys_due partial index. */
	if ((r = q_prep(st, &s, "SELECT vt.name, k.name, "
	    "k.scheduled_purge_date FROM keys k JOIN vaults vt ON "
	    "vt.id = k.vault_id WHERE k.state = 'deleted' AND "
	    "k.scheduled_purge_date <= ?1 ORDER BY k.scheduled_purge_date, "
	    "k.id LIMIT ?2", "iu", now, limit)) != 0)
		goto out;
	while ((r = q_row(st, s, "due for purge")) == 1) {
		if ((r = col_str(s, 0, arr[got].vault, sizeof(arr[got].vault))) != 0 ||
		    (r = col_str(s, 1, arr[got].name, sizeof(arr[got].name))) != 0)
			goto out;
		arr[got].scheduled_purge_date = sqlite3_column_int64(s, 2);
		got++;
	}
	if (r < 0)
		goto out;
	*out = arr;
	arr = NULL;
	*n = got;
	r = 0;
 out:
	q_release(st, s);
	UNLOCK(st);
	free(arr);
	return r;
}

/* ---------------------------------------------------------- token objects */

/* Every version's object of a key (caller holds the lock). */
static int
objects_read(struct kb_store *st, int64_t key_id, struct kb_store_object **out,
    size_t *n)
{
	struct kb_store_object *arr = NULL, *tmp;
	sqlite3_stmt *s = NULL;
	size_t got = 0, alloc = 0;
	const void *blob;
	int r;

	if ((r = q_prep(st, &s, "SELECT version, p11_label, p11_id, key_ops, "
	    "kty FROM versions WHERE key_id = ?1 ORDER BY id", "i", key_id)) != 0)
		return r;
	while ((r = q_row(st, s, "objects")) == 1) {
		if (got == alloc) {
			if (alloc >= STORE_VERSIONS_MAX) {
				r = kb_error_set(KB_ERR_LIMIT,
				    "a key has more than %d versions",
				    STORE_VERSIONS_MAX);
				goto out;
			}
			alloc = alloc == 0 ? 8 : alloc * 2;
			if ((tmp = reallocarray(arr, alloc, sizeof(*arr))) == NULL) {
				r = KB_ERR_ALLOC;
				goto out;
			}
			arr = tmp;
		}
		memset(&arr[got], 0, sizeof(arr[got]));
		if ((r = col_str(s, 0, arr[got].version,
		    sizeof(arr[got].version))) != 0 ||
		    (r = col_str(s, 1, arr[got].p11_label,
		    sizeof(arr[got].p11_label))) != 0 ||
		    (r = col_str(s, 4, arr[got].kty, sizeof(arr[got].kty))) != 0)
			goto out;
		arr[got].key_ops = (unsigned)sqlite3_column_int64(s, 3);
		blob = sqlite3_column_blob(s, 2);
		if (blob == NULL || sqlite3_column_bytes(s, 2) != KV_VERSION_BYTES) {
			r = kb_error_set(KB_ERR_INTERNAL,
			    "vault store: a version has a bad token object id");
			goto out;
		}
		memcpy(arr[got].p11_id, blob, KV_VERSION_BYTES);
		got++;
	}
	if (r < 0)
		goto out;
	*out = arr;
	arr = NULL;
	*n = got;
	r = 0;
 out:
	q_release(st, s);
	free(arr);
	return r;
}

int
kb_store_key_objects(struct kb_store *st, const char *vault,
    const char *name, struct kb_store_object **out, size_t *n)
{
	char lc[KV_NAME_MAX + 1];
	struct vault_row vr;
	struct key_row kr;
	int r;

	if ((r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0)
		return r;
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	if (r == 0) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no key named %s", name);
		goto out;
	}
	r = objects_read(st, kr.id, out, n);
 out:
	UNLOCK(st);
	return r;
}

int
kb_store_object_known(struct kb_store *st, const char *vault,
    const char *label, const unsigned char id[KV_VERSION_BYTES])
{
	char hex[KV_VERSION_LEN + 1];
	sqlite3_stmt *s = NULL;
	struct vault_row vr;
	int r;

	if (label == NULL || id == NULL)
		return kb_error_set(KB_ERR_INVALID, "no object given");
	id_to_hex(id, hex);
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) != 0)
		goto out;
	if ((r = q_prep(st, &s, "SELECT 1 FROM versions v JOIN keys k ON "
	    "k.id = v.key_id WHERE k.vault_id = ?1 AND v.p11_id = ?2 AND "
	    "v.p11_label = ?3 UNION ALL SELECT 1 FROM intents WHERE "
	    "vault_id = ?1 AND op = 'create' AND "
	    "json_extract(payload, '$.label') = ?3 AND (version = ?4 OR "
	    "EXISTS (SELECT 1 FROM json_each(payload, '$.restore') WHERE "
	    "json_extract(value, '$.version') = ?4))",
	    "ibtt", vr.id, id, label, hex)) != 0)
		goto out;
	if ((r = q_row(st, s, "object lookup")) == 0)
		r = kb_error_set(KB_ERR_NOT_FOUND, "the store knows no object "
		    "labelled %s with id %s", label, hex);
	else if (r == 1)
		r = 0;
 out:
	q_release(st, s);
	UNLOCK(st);
	return r;
}

/* ---------------------------------------------------------------- intents */

void
kb_store_intent_free(struct kb_store_intent *in)
{
	if (in == NULL)
		return;
	free(in->payload);
	free(in->restore_ids);
	free(in);
}

void
kb_store_intents_free(struct kb_store_intent *ins, size_t n)
{
	size_t i;

	if (ins == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(ins[i].payload);
		free(ins[i].restore_ids);
	}
	free(ins);
}

#define INTENT_COLS \
	"i.id, i.op, vt.name, i.key_name, i.version, i.uid, i.role, " \
	"i.payload, i.created, json_extract(i.payload, '$.label'), " \
	"i.principal " \
	"FROM intents i JOIN vaults vt ON vt.id = i.vault_id "

/* A restore intent's object ids, from its payload's "restore" array. */
static int
restore_ids_read(struct kb_store_intent *in)
{
	const cJSON *arr, *e, *ver;
	cJSON *root;
	size_t n, i = 0;
	int r = 0;

	if ((root = cJSON_Parse(in->payload)) == NULL)
		return 0;    /* nv_from_json reports it when it matters */
	arr = cJSON_GetObjectItemCaseSensitive(root, "restore");
	if (!cJSON_IsArray(arr) || (n = (size_t)cJSON_GetArraySize(arr)) == 0)
		goto out;
	if (n > STORE_VERSIONS_MAX ||
	    (in->restore_ids = calloc(n, sizeof(*in->restore_ids))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	cJSON_ArrayForEach(e, arr) {
		ver = cJSON_GetObjectItemCaseSensitive(e, "version");
		if (!cJSON_IsString(ver) ||
		    hex_to_id(ver->valuestring, in->restore_ids[i]) != 0) {
			r = kb_error_set(KB_ERR_INTERNAL, "vault store: restore "
			    "intent %" PRId64 " has a bad version", in->id);
			goto out;
		}
		i++;
	}
	in->n_restore = n;
 out:
	cJSON_Delete(root);
	return r;
}

static int
intent_read(sqlite3_stmt *s, struct kb_store_intent *in)
{
	const unsigned char *op, *payload;
	int r;

	memset(in, 0, sizeof(*in));
	in->id = sqlite3_column_int64(s, 0);
	op = sqlite3_column_text(s, 1);
	in->op = op != NULL && strcmp((const char *)op, "purge") == 0 ?
	    KB_STORE_OP_PURGE : KB_STORE_OP_CREATE;
	if ((r = col_str(s, 2, in->vault, sizeof(in->vault))) != 0 ||
	    (r = col_str(s, 3, in->name, sizeof(in->name))) != 0 ||
	    (r = col_str(s, 4, in->version, sizeof(in->version))) != 0 ||
	    (r = col_str(s, 6, in->role, sizeof(in->role))) != 0 ||
	    (r = col_str(s, 9, in->p11_label, sizeof(in->p11_label))) != 0 ||
	    (r = col_str(s, 10, in->principal, sizeof(in->principal))) != 0)
		return r;
	in->uid = (uint32_t)sqlite3_column_int64(s, 5);
	in->created = sqlite3_column_int64(s, 8);
	if (in->op == KB_STORE_OP_CREATE &&
	    (r = hex_to_id(in->version, in->p11_id)) != 0)
		return kb_error_set(KB_ERR_INTERNAL,
		    "vault store: intent %" PRId64 " has a bad version", in->id);
	payload = sqlite3_column_text(s, 7);
	if ((in->payload = kb_strdup(payload != NULL ?
	    (const char *)payload : "{}")) == NULL)
		return KB_ERR_ALLOC;
	if (in->op == KB_STORE_OP_CREATE)
		return restore_ids_read(in);
	return 0;
}

static int
intent_get(struct kb_store *st, int64_t id, struct kb_store_intent **out)
{
	struct kb_store_intent *in = NULL;
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "SELECT " INTENT_COLS "WHERE i.id = ?1",
	    "i", id)) != 0)
		return r;
	if ((r = q_row(st, s, "intent read")) < 0)
		goto out;
	if (r == 0) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no open intent %" PRId64, id);
		goto out;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = intent_read(s, in)) != 0)
		goto out;
	*out = in;
	in = NULL;
	r = 0;
 out:
	kb_store_intent_free(in);
	q_release(st, s);
	return r;
}

static int
intent_insert(struct kb_store *st, const struct kb_store_actor *who,
    const char *op, int64_t vault_id, const char *display, const char *lc,
    const char *version, const cJSON *payload, int64_t now, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	char *txt = NULL;
	int r;

	if ((txt = cJSON_PrintUnformatted(payload)) == NULL)
		return KB_ERR_ALLOC;
	if ((r = q_prep(st, &s, "INSERT INTO intents (op, vault_id, key_name, "
	    "key_name_lc, version, uid, role, payload, created, principal) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", "tittt" "utti" "t",
	    op, vault_id, display, lc, version, (unsigned)who->uid, who->role,
	    txt, now, who->principal != NULL && who->principal[0] != '\0' ?
	    who->principal : NULL)) != 0)
		goto out;
	if ((r = q_done(st, s, "intent insert")) != 0)
		goto out;
	*id = sqlite3_last_insert_rowid(st->db);
 out:
	free(txt);
	return r;
}

static cJSON *
nv_to_json(const struct kb_store_new_version *v, const char *tags,
    const char *label)
{
	cJSON *o = NULL, *t = NULL;

	if ((o = cJSON_CreateObject()) == NULL ||
	    (t = cJSON_Parse(tags)) == NULL)
		goto fail;
	if ((label != NULL &&
	    cJSON_AddStringToObject(o, "label", label) == NULL) ||
	    cJSON_AddStringToObject(o, "kty", v->kty) == NULL ||
	    cJSON_AddNumberToObject(o, "key_size", v->key_size) == NULL ||
	    cJSON_AddStringToObject(o, "crv", v->crv != NULL ? v->crv : "") == NULL ||
	    cJSON_AddNumberToObject(o, "key_ops", v->key_ops) == NULL ||
	    cJSON_AddBoolToObject(o, "enabled", v->enabled) == NULL ||
	    cJSON_AddBoolToObject(o, "exportable", v->exportable) == NULL ||
	    (v->has_nbf && cJSON_AddNumberToObject(o, "nbf", (double)v->nbf) == NULL) ||
	    (v->has_exp && cJSON_AddNumberToObject(o, "exp", (double)v->exp) == NULL) ||
	    (v->created > 0 && cJSON_AddNumberToObject(o, "created",
	    (double)v->created) == NULL) ||
	    (v->updated > 0 && cJSON_AddNumberToObject(o, "updated",
	    (double)v->updated) == NULL))
		goto fail;
	if (v->audit_op != NULL &&
	    cJSON_AddStringToObject(o, "op", v->audit_op) == NULL)
		goto fail;
	/* adopt: the object's names before, to put back if the intent fails. */
	if (v->adopt_label != NULL) {
		char *hex = kb_hex_encode(v->adopt_id, v->adopt_id_len);

		if (hex == NULL ||
		    cJSON_AddStringToObject(o, "adopt_label", v->adopt_label) == NULL ||
		    cJSON_AddStringToObject(o, "adopt_id", hex) == NULL) {
			free(hex);
			goto fail;
		}
		free(hex);
	}
	cJSON_AddItemToObject(o, "tags", t);
	return o;
 fail:
	cJSON_Delete(t);
	cJSON_Delete(o);
	return NULL;
}

/* Numbers the payload holds (written by nv_to_json, so exact). */
static bool
json_uint(const cJSON *o, const char *k, unsigned max, unsigned *out)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > max)
		return false;
	*out = (unsigned)n->valuedouble;
	return true;
}

static bool
json_time(const cJSON *o, const char *k, bool *has, int64_t *out)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	*has = false;
	if (n == NULL)
		return true;
	if (!cJSON_IsNumber(n) || n->valuedouble < 0 ||
	    n->valuedouble > (double)STORE_TIME_MAX)
		return false;
	*has = true;
	*out = (int64_t)n->valuedouble;
	return true;
}

/*
 * A version's metadata from its JSON object o (nv_to_json's shape).
 * Strings point into o; *tags is a new canonical text.  A member of the
 * wrong type is error bad with sentence what; the values are checked as
 * any new version's.
 */
static int
nv_from_obj(const cJSON *o, const char *version,
    struct kb_store_new_version *v, char **tags, int bad, const char *what)
{
	const cJSON *kty, *crv, *en, *ex, *tg, *op;
	char *tagtxt = NULL, ver[KV_VERSION_LEN + 1];
	bool has_c, has_u;
	int r;

	memset(v, 0, sizeof(*v));
	if (!cJSON_IsString(kty = cJSON_GetObjectItemCaseSensitive(o, "kty")) ||
	    !cJSON_IsString(crv = cJSON_GetObjectItemCaseSensitive(o, "crv")) ||
	    !cJSON_IsBool(en = cJSON_GetObjectItemCaseSensitive(o, "enabled")) ||
	    !cJSON_IsBool(ex = cJSON_GetObjectItemCaseSensitive(o, "exportable")) ||
	    !cJSON_IsObject(tg = cJSON_GetObjectItemCaseSensitive(o, "tags")) ||
	    !json_uint(o, "key_size", 65536, &v->key_size) ||
	    !json_uint(o, "key_ops", KV_OP__ALL, &v->key_ops) ||
	    !json_time(o, "nbf", &v->has_nbf, &v->nbf) ||
	    !json_time(o, "exp", &v->has_exp, &v->exp) ||
	    !json_time(o, "created", &has_c, &v->created) ||
	    !json_time(o, "updated", &has_u, &v->updated))
		return kb_error_set(bad, "%s", what);
	if (version == NULL || kb_strlcpy(v->version, version,
	    sizeof(v->version)) != 0)
		return kb_error_set(bad, "%s (version id)", what);
	if ((tagtxt = cJSON_PrintUnformatted(tg)) == NULL)
		return KB_ERR_ALLOC;
	v->kty = kty->valuestring;
	v->crv = crv->valuestring;
	op = cJSON_GetObjectItemCaseSensitive(o, "op");
	if (cJSON_IsString(op) && (strcmp(op->valuestring, "rotate") == 0 ||
	    strcmp(op->valuestring, "adopt") == 0 ||
	    strcmp(op->valuestring, "import") == 0 ||
	    strcmp(op->valuestring, "restore") == 0))
		v->audit_op = op->valuestring;
	v->enabled = cJSON_IsTrue(en);
	v->exportable = cJSON_IsTrue(ex);
	v->tags_json = tagtxt;
	/* Checked again: the object came from disk or from a backup. */
	r = check_new_version(v, ver, tags);
	v->tags_json = NULL;
	free(tagtxt);
	return r;
}

#define INTENT_MALFORMED "vault store: a create intent has a malformed payload"

/*
 * The new version kept in a create intent's payload.  Strings point into
 * *root (free it with cJSON_Delete); *tags is a new canonical text.
 */
static int
nv_from_json(const char *payload, const char *version,
    struct kb_store_new_version *v, cJSON **root, char **tags)
{
	cJSON *o;
	int r;

	if ((o = cJSON_Parse(payload)) == NULL)
		return kb_error_set(KB_ERR_INTERNAL, INTENT_MALFORMED);
	if ((r = nv_from_obj(o, version, v, tags, KB_ERR_INTERNAL,
	    INTENT_MALFORMED)) != 0) {
		cJSON_Delete(o);
		return r;
	}
	*root = o;
	return 0;
}

int
kb_store_version_to_json(const struct kb_store_new_version *v, cJSON **out)
{
	char ver[KV_VERSION_LEN + 1], *tags = NULL;
	cJSON *o;
	int r;

	if ((r = check_new_version(v, ver, &tags)) != 0)
		return r;
	o = nv_to_json(v, tags, NULL);
	free(tags);
	if (o == NULL || cJSON_AddStringToObject(o, "version", ver) == NULL) {
		cJSON_Delete(o);
		return KB_ERR_ALLOC;
	}
	*out = o;
	return 0;
}

int
kb_store_version_from_json(const cJSON *o, struct kb_store_new_version *v,
    char **tags)
{
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");

	return nv_from_obj(o, cJSON_IsString(ver) ? ver->valuestring : NULL, v,
	    tags, KB_ERR_INVALID, "a version's metadata is malformed");
}

int
kb_store_intent_begin_create(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    const struct kb_store_new_version *v, int64_t now,
    struct kb_store_intent **out)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	char display[KV_NAME_MAX + 1];
	char *tags = NULL;
	cJSON *payload = NULL;
	struct vault_row vr;
	int64_t id;
	int r;

	if (out == NULL)
		return kb_error_set(KB_ERR_INVALID, "no intent output");
	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0 ||
	    (r = check_new_version(v, ver, &tags)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0)
		goto out;
	if ((r = resolve_display(st, vr.id, lc, name, display,
	    sizeof(display))) != 0)
		goto out;
	if ((r = create_precheck(st, &vr, lc, display, ver)) != 0)
		goto out;
	if ((payload = nv_to_json(v, tags, display)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = intent_insert(st, who, "create", vr.id, display, lc, ver,
	    payload, now, &id)) != 0 ||
	    (r = tx_commit(st)) != 0 ||
	    (r = intent_get(st, id, out)) != 0)
		goto out;
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	cJSON_Delete(payload);
	free(tags);
	return r;
}

int
kb_store_intent_begin_purge(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    int64_t now, struct kb_store_intent **out)
{
	char lc[KV_NAME_MAX + 1], hex[KV_VERSION_LEN + 1];
	struct kb_store_object *objs = NULL;
	size_t nobj = 0, i;
	cJSON *payload = NULL, *arr, *o;
	struct vault_row vr;
	struct key_row kr;
	int64_t busy, id;
	int r;

	if (out == NULL)
		return kb_error_set(KB_ERR_INVALID, "no intent output");
	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	if (r == 0 || !kr.deleted) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no deleted key named %s", name);
		goto out;
	}
	if ((r = intents_on_key(st, vr.id, lc, NULL, &busy)) != 0)
		goto out;
	if (busy > 0) {
		r = kb_error_set(KB_ERR_CONFLICT, "an operation on the key %s "
		    "is in progress; try again", kr.name);
		goto out;
	}
	if (vr.purge_protection && now < kr.scheduled_purge_date) {
		/* A denial is audited; it is the only change this makes. */
		if ((r = audit_insert(st, who, vr.name, "purge",
		    kr.name, NULL, "denied", now)) != 0 ||
		    (r = tx_commit(st)) != 0)
			goto out;
		r = kb_error_set(KB_ERR_DENIED, "the vault %s has purge "
		    "protection: the key %s cannot be purged before its "
		    "scheduled purge date; it will be purged then",
		    vr.name, kr.name);
		goto out;
	}
	if ((r = objects_read(st, kr.id, &objs, &nobj)) != 0)
		goto out;
	if ((payload = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(payload, "versions")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < nobj; i++) {
		id_to_hex(objs[i].p11_id, hex);
		if ((o = cJSON_CreateObject()) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		cJSON_AddItemToArray(arr, o);
		if (cJSON_AddStringToObject(o, "version", objs[i].version) == NULL ||
		    cJSON_AddStringToObject(o, "label", objs[i].p11_label) == NULL ||
		    cJSON_AddStringToObject(o, "id", hex) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	}
	if ((r = intent_insert(st, who, "purge", vr.id, kr.name, lc, "",
	    payload, now, &id)) != 0 ||
	    (r = tx_commit(st)) != 0 ||
	    (r = intent_get(st, id, out)) != 0)
		goto out;
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	cJSON_Delete(payload);
	free(objs);
	return r;
}

static int
intent_close(struct kb_store *st, int64_t id)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = q_prep(st, &s, "DELETE FROM intents WHERE id = ?1", "i",
	    id)) != 0)
		return r;
	if ((r = q_done(st, s, "intent close")) != 0)
		return r;
	if (sqlite3_changes(st->db) != 1)
		return kb_error_set(KB_ERR_NOT_FOUND, "no open intent %" PRId64, id);
	return 0;
}

/* The actor an intent recorded, for its audit record. */
static struct kb_store_actor
intent_actor(const struct kb_store_intent *in)
{
	struct kb_store_actor who;

	who.uid = in->uid;
	who.role = in->role;
	who.principal = in->principal[0] != '\0' ? in->principal : NULL;
	return who;
}

/* Every version of a restore intent (caller holds the transaction). */
static int
restore_apply(struct kb_store *st, const struct vault_row *vr,
    const struct kb_store_intent *in, const char *lc,
    const struct kb_store_actor *who, int64_t now)
{
	struct kb_store_new_version v;
	const cJSON *arr, *e, *ver;
	cJSON *root = NULL;
	char *tags = NULL;
	int r = 0;

	if ((root = cJSON_Parse(in->payload)) == NULL ||
	    !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(root, "restore")))
		r = kb_error_set(KB_ERR_INTERNAL, "vault store: a restore intent "
		    "has a malformed payload");
	else
		cJSON_ArrayForEach(e, arr) {
			ver = cJSON_GetObjectItemCaseSensitive(e, "version");
			if (!cJSON_IsString(ver)) {
				r = kb_error_set(KB_ERR_INTERNAL, "vault store: a "
				    "restore intent has a version without id");
				break;
			}
			if ((r = nv_from_obj(e, ver->valuestring, &v, &tags,
			    KB_ERR_INTERNAL, INTENT_MALFORMED)) != 0)
				break;
			v.audit_op = "restore";
			r = apply_create(st, vr, in->name, lc, &v, ver->valuestring,
			    tags, in->p11_label, false, who, now);
			free(tags);
			tags = NULL;
			if (r != 0)
				break;
		}
	cJSON_Delete(root);
	return r;
}

int
kb_store_intent_begin_restore(struct kb_store *st,
    const struct kb_store_actor *who, const char *vault, const char *name,
    const struct kb_store_new_version *vs, size_t n, int64_t now,
    struct kb_store_intent **out)
{
	char lc[KV_NAME_MAX + 1], ver[KV_VERSION_LEN + 1];
	char *tags = NULL;
	cJSON *payload = NULL, *arr, *o;
	struct vault_row vr;
	struct key_row kr;
	int64_t busy, id;
	size_t i, j;
	int r;

	if (out == NULL || vs == NULL || n == 0 || n > STORE_VERSIONS_MAX)
		return kb_error_set(KB_ERR_INVALID, "a restore has 1 to %d "
		    "versions", STORE_VERSIONS_MAX);
	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0)
		return r;
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (strcasecmp(vs[i].version, vs[j].version) == 0)
				return kb_error_set(KB_ERR_INVALID, "the backup "
				    "holds version %s twice", vs[i].version);
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	if (r == 1) {
		r = kb_error_set(KB_ERR_CONFLICT, "the vault %s has a key named "
		    "%s already%s; restore needs a free name", vr.name, kr.name,
		    kr.deleted ? " (deleted but recoverable)" : "");
		goto out;
	}
	if ((r = intents_on_key(st, vr.id, lc, NULL, &busy)) != 0)
		goto out;
	if (busy > 0) {
		r = kb_error_set(KB_ERR_CONFLICT, "an operation on the key %s "
		    "is in progress; try again", name);
		goto out;
	}
	/* The last version's fields at the top, as any create intent. */
	if ((r = check_new_version(&vs[n - 1], ver, &tags)) != 0)
		goto out;
	if ((payload = nv_to_json(&vs[n - 1], tags, name)) == NULL ||
	    cJSON_AddStringToObject(payload, "op", "restore") == NULL ||
	    (arr = cJSON_AddArrayToObject(payload, "restore")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = kb_store_version_to_json(&vs[i], &o)) != 0)
			goto out;
		cJSON_AddItemToArray(arr, o);
	}
	/* ver is still the last version's: the intent's version column. */
	if ((r = intent_insert(st, who, "create", vr.id, name, lc, ver,
	    payload, now, &id)) != 0 ||
	    (r = tx_commit(st)) != 0 ||
	    (r = intent_get(st, id, out)) != 0)
		goto out;
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	cJSON_Delete(payload);
	free(tags);
	return r;
}

int
kb_store_intent_commit(struct kb_store *st, int64_t id, int64_t now,
    struct kb_store_key **out)
{
	return kb_store_intent_commit_jwk(st, id, now, NULL, out);
}

int
kb_store_intent_commit_jwk(struct kb_store *st, int64_t id, int64_t now,
    const char *jwk, struct kb_store_key **out)
{
	struct kb_store_actor in_who;
	char lc[KV_NAME_MAX + 1];
	struct kb_store_intent *in = NULL;
	struct kb_store_new_version v;
	struct kb_store_key *k = NULL;
	sqlite3_stmt *s = NULL;
	cJSON *root = NULL;
	char *tags = NULL;
	struct vault_row vr;
	struct key_row kr;
	int r;

	if ((r = check_time("now", now)) != 0)
		return r;
	if (jwk != NULL && (r = jwk_check(jwk)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = intent_get(st, id, &in)) != 0 ||
	    (r = vault_find(st, in->vault, &vr)) != 0 ||
	    (r = kv_lower(in->name, lc, sizeof(lc))) != 0)
		goto out;
	in_who = intent_actor(in);
	if (in->op == KB_STORE_OP_CREATE) {
		if (in->n_restore > 0) {
			if ((r = restore_apply(st, &vr, in, lc, &in_who, now)) != 0)
				goto out;
		} else {
			if ((r = nv_from_json(in->payload, in->version, &v,
			    &root, &tags)) != 0)
				goto out;
			if ((r = apply_create(st, &vr, in->name, lc, &v, in->version,
			    tags, in->p11_label, true, &in_who, now)) != 0)
				goto out;
			if (jwk != NULL && (r = jwk_record(st, vr.id, lc,
			    in->version, jwk)) != 0)
				goto out;
		}
	} else {
		if ((r = key_find(st, vr.id, lc, &kr)) < 0)
			goto out;
		if (r == 0 || !kr.deleted) {
			r = kb_error_set(KB_ERR_INTERNAL, "vault store: purge "
			    "intent %" PRId64 " names no deleted key", id);
			goto out;
		}
		/* ON DELETE CASCADE removes the versions. */
		if ((r = q_prep(st, &s, "DELETE FROM keys WHERE id = ?1", "i",
		    kr.id)) != 0 || (r = q_done(st, s, "purge")) != 0 ||
		    (r = audit_insert(st, &in_who, vr.name, "purge",
		    in->name, NULL, "ok", now)) != 0)
			goto out;
	}
	if ((r = intent_close(st, id)) != 0 || (r = tx_commit(st)) != 0)
		goto out;
	if (out != NULL && in->op == KB_STORE_OP_CREATE) {
		if ((r = key_get(st, &vr, lc, in->version, NULL, &k)) != 0)
			goto out;
		*out = k;
	} else if (out != NULL) {
		*out = NULL;
	}
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	kb_store_intent_free(in);
	cJSON_Delete(root);
	free(tags);
	return r;
}

int
kb_store_intent_abort(struct kb_store *st, int64_t id, int64_t now)
{
	struct kb_store_actor in_who;
	struct kb_store_intent *in = NULL;
	const cJSON *o;
	cJSON *root = NULL;
	const char *op;
	int r;

	if ((r = check_time("now", now)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = intent_get(st, id, &in)) != 0)
		goto out;
	in_who = intent_actor(in);
	/* A failed rotate, import or adopt says so, not "create". */
	op = in->op == KB_STORE_OP_CREATE ? "create" : "purge";
	if (in->op == KB_STORE_OP_CREATE &&
	    (root = cJSON_Parse(in->payload)) != NULL &&
	    cJSON_IsString(o = cJSON_GetObjectItemCaseSensitive(root, "op")) &&
	    (strcmp(o->valuestring, "rotate") == 0 ||
	    strcmp(o->valuestring, "adopt") == 0 ||
	    strcmp(o->valuestring, "import") == 0 ||
	    strcmp(o->valuestring, "restore") == 0))
		op = o->valuestring;
	if ((r = audit_insert(st, &in_who, in->vault, op, in->name,
	    in->version, "failed", now)) != 0 ||
	    (r = intent_close(st, id)) != 0)
		goto out;
	r = tx_commit(st);
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	cJSON_Delete(root);
	kb_store_intent_free(in);
	return r;
}

int
kb_store_intents_open(struct kb_store *st, struct kb_store_intent **out,
    size_t *n)
{
	struct kb_store_intent *arr = NULL, *tmp;
	sqlite3_stmt *s = NULL;
	size_t got = 0, alloc = 0;
	int r;

	LOCK(st);
	if ((r = q_prep(st, &s, "SELECT " INTENT_COLS "ORDER BY i.id", "")) != 0)
		goto out;
	while ((r = q_row(st, s, "intents")) == 1) {
		if (got == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			if ((tmp = reallocarray(arr, alloc, sizeof(*arr))) == NULL) {
				r = KB_ERR_ALLOC;
				goto out;
			}
			arr = tmp;
		}
		if ((r = intent_read(s, &arr[got])) != 0) {
			free(arr[got].payload);
			goto out;
		}
		got++;
	}
	if (r < 0)
		goto out;
	*out = arr;
	arr = NULL;
	*n = got;
	r = 0;
 out:
	q_release(st, s);
	UNLOCK(st);
	kb_store_intents_free(arr, got);
	return r;
}

/* ------------------------------------------------------ rotation policy */

void
kb_store_policy_free(struct kb_store_policy *p)
{
	if (p == NULL)
		return;
	free(p->json);
	free(p);
}

/* The policy row of an active key (caller holds the lock). */
static int
policy_read(struct kb_store *st, const struct vault_row *vr, const char *lc,
    const char *name, struct kb_store_policy **out)
{
	struct kb_store_policy *p = NULL;
	sqlite3_stmt *s = NULL;
	const unsigned char *t;
	int r;

	if ((r = q_prep(st, &s, "SELECT k.name, k.created, p.policy, p.created, "
	    "p.updated FROM keys k LEFT JOIN rotation_policies p ON "
	    "p.key_id = k.id WHERE k.vault_id = ?1 AND k.name_lc = ?2 AND "
	    "k.state = 'active'", "it", vr->id, lc)) != 0)
		return r;
	if ((r = q_row(st, s, "rotation policy read")) < 0)
		goto out;
	if (r == 0) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no key named %s", name);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = col_str(s, 0, p->name, sizeof(p->name))) != 0)
		goto out;
	p->key_created = sqlite3_column_int64(s, 1);
	if ((t = sqlite3_column_text(s, 2)) != NULL) {
		if ((p->json = kb_strdup((const char *)t)) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		p->created = sqlite3_column_int64(s, 3);
		p->updated = sqlite3_column_int64(s, 4);
	}
	*out = p;
	p = NULL;
	r = 0;
 out:
	kb_store_policy_free(p);
	q_release(st, s);
	return r;
}

int
kb_store_policy_get(struct kb_store *st, const char *vault, const char *name,
    struct kb_store_policy **out)
{
	char lc[KV_NAME_MAX + 1];
	struct vault_row vr;
	int r;

	if ((r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0)
		return r;
	LOCK(st);
	if ((r = vault_find(st, vault, &vr)) == 0)
		r = policy_read(st, &vr, lc, name, out);
	UNLOCK(st);
	return r;
}

/* The policy text checked again and in canonical form (it is stored). */
static int
policy_canon(const char *json, char **out)
{
	cJSON *in = NULL, *c = NULL;
	char *txt = NULL;
	int r;

	if (json == NULL || strlen(json) > KV_POLICY_JSON_MAX)
		return kb_error_set(KB_ERR_INVALID, "a rotation policy is at most "
		    "%d bytes of JSON", KV_POLICY_JSON_MAX);
	if ((in = cJSON_Parse(json)) == NULL) {
		r = kb_error_set(KB_ERR_INVALID, "the rotation policy is not JSON");
		goto out;
	}
	if ((r = kv_rotation_policy_check(in, &c)) != 0)
		goto out;
	if ((txt = cJSON_PrintUnformatted(c)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	*out = txt;
	r = 0;
 out:
	cJSON_Delete(in);
	cJSON_Delete(c);
	return r;
}

int
kb_store_policy_put(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *name, const char *json, int64_t now,
    struct kb_store_policy **out)
{
	char lc[KV_NAME_MAX + 1];
	char *canon = NULL;
	sqlite3_stmt *s = NULL;
	struct vault_row vr;
	struct key_row kr;
	int r;

	if ((r = check_actor(who)) != 0 ||
	    (r = name_lc(KV_FIELD_KEY_NAME, name, lc, sizeof(lc))) != 0 ||
	    (r = check_time("now", now)) != 0 ||
	    (r = policy_canon(json, &canon)) != 0)
		return r;
	LOCK(st);
	if ((r = tx_begin(st)) != 0)
		goto out;
	if ((r = vault_find(st, vault, &vr)) != 0 ||
	    (r = key_find(st, vr.id, lc, &kr)) < 0)
		goto out;
	/* As UpdateKey: only an active key (a deleted one is not found). */
	if (r == 0 || kr.deleted) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "no key named %s", name);
		goto out;
	}
	if ((r = q_prep(st, &s, "INSERT INTO rotation_policies (key_id, policy, "
	    "created, updated) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (key_id) DO "
	    "UPDATE SET policy = excluded.policy, updated = excluded.updated",
	    "iti", kr.id, canon, now)) != 0 ||
	    (r = q_done(st, s, "rotation policy write")) != 0 ||
	    (r = audit_insert(st, who, vr.name, "rotation-policy-update",
	    kr.name, NULL, "ok", now)) != 0 ||
	    (r = tx_commit(st)) != 0)
		goto out;
	if (out != NULL)
		r = policy_read(st, &vr, lc, name, out);
 out:
	if (r != 0)
		tx_rollback(st);
	UNLOCK(st);
	free(canon);
	return r;
}

/* ------------------------------------------------------------------ audit */

static int
check_word(const char *what, const char *s, size_t max, bool optional)
{
	size_t i, n;

	if (s == NULL && optional)
		return 0;
	if (s == NULL)
		return kb_error_set(KB_ERR_INVALID, "no audit %s given", what);
	n = strnlen(s, max + 1);
	if ((n == 0 && !optional) || n > max)
		return kb_error_set(KB_ERR_INVALID,
		    "the audit %s must be 1-%zu characters", what, max);
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return kb_error_set(KB_ERR_INVALID,
			    "the audit %s must be printable ASCII", what);
	return 0;
}

int
kb_store_audit_append(struct kb_store *st, const struct kb_store_actor *who,
    const char *vault, const char *op, const char *key, const char *version,
    const char *result, int64_t now)
{
	int r;

	if ((r = check_actor(who)) != 0 ||
	    (r = check_word("vault", vault, KB_STORE_AUDIT_VAULT_MAX, false)) != 0 ||
	    (r = check_word("operation", op, KB_STORE_WORD_MAX, false)) != 0 ||
	    (r = check_word("key", key, KV_NAME_MAX, true)) != 0 ||
	    (r = check_word("version", version, KV_VERSION_LEN, true)) != 0 ||
	    (r = check_word("result", result, KB_STORE_WORD_MAX, false)) != 0 ||
	    (r = check_time("now", now)) != 0)
		return r;
	LOCK(st);
	r = audit_insert(st, who, vault, op, key, version,
	    result, now);
	UNLOCK(st);
	return r;
}

int
kb_store_audit_list(struct kb_store *st, int64_t after, unsigned limit,
    struct kb_store_audit **out, size_t *n, int64_t *next)
{
	struct kb_store_audit *arr = NULL;
	sqlite3_stmt *s = NULL;
	size_t got = 0;
	bool more = false;
	int r;

	if ((r = check_limit(limit)) != 0)
		return r;
	if ((arr = calloc(limit, sizeof(*arr))) == NULL)
		return KB_ERR_ALLOC;
	LOCK(st);
	if ((r = q_prep(st, &s, "SELECT seq, time, uid, role, vault, op, key, "
	    "version, result, principal FROM audit WHERE seq > ?1 ORDER BY seq "
	    "LIMIT ?2",
	    "iu", after, limit + 1)) != 0)
		goto out;
	while ((r = q_row(st, s, "audit list")) == 1) {
		struct kb_store_audit *a = &arr[got];

		if (got == limit) {
			more = true;
			break;
		}
		a->seq = sqlite3_column_int64(s, 0);
		a->time = sqlite3_column_int64(s, 1);
		a->uid = (uint32_t)sqlite3_column_int64(s, 2);
		if ((r = col_str(s, 3, a->role, sizeof(a->role))) != 0 ||
		    (r = col_str(s, 4, a->vault, sizeof(a->vault))) != 0 ||
		    (r = col_str(s, 5, a->op, sizeof(a->op))) != 0 ||
		    (r = col_str(s, 6, a->key, sizeof(a->key))) != 0 ||
		    (r = col_str(s, 7, a->version, sizeof(a->version))) != 0 ||
		    (r = col_str(s, 8, a->result, sizeof(a->result))) != 0 ||
		    (r = col_str(s, 9, a->principal, sizeof(a->principal))) != 0)
			goto out;
		got++;
	}
	if (r < 0)
		goto out;
	*out = arr;
	arr = NULL;
	*n = got;
	*next = more ? (*out)[got - 1].seq : 0;
	r = 0;
 out:
	q_release(st, s);
	UNLOCK(st);
	free(arr);
	return r;
}
