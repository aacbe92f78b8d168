/*
 * test_store.c: the vault metadata store (agent/store.c) and Key Vault's
 * rules (agent/kvrules.c) against real SQLite files in a temporary
 * directory.  No mocks: crashes are real SIGKILLs of forked children.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "tap.h"
#include "kvrules.h"
#include "store.h"

#define T0 INT64_C(1750000000)
/* A set-up step that must work: counted as a test, so a failure shows. */
#define MUST(x) tap_is_int((x), 0, "set-up at line %d", __LINE__)
#define DAY INT64_C(86400)

static char tmpdir[64];
static const struct kb_store_actor officer = { 1000, "officer", NULL };
static const struct kb_store_actor sys_actor = { 0, "system", NULL };

/* ------------------------------------------------------------- helpers */

static void
path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void
remove_db(const char *path)
{
	char p[512];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* Run SQL on a raw connection; 0 or the SQLite code; *msg gets the error. */
static int
raw_exec(const char *path, const char *sql, char *msg, size_t n)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	if (msg != NULL && n > 0)
		msg[0] = '\0';
	if ((rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL)) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (err != NULL && msg != NULL)
		snprintf(msg, n, "%s", err);
 out:
	sqlite3_free(err);
	sqlite3_close(db);
	return rc;
}

/* First column of the first row as text (into buf), or "" on error. */
static const char *
raw_text(const char *path, const char *sql, char *buf, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	buf[0] = '\0';
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(buf, n, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return buf;
}

static long long
raw_int(const char *path, const char *sql)
{
	char buf[64];

	raw_text(path, sql, buf, sizeof(buf));
	return buf[0] == '\0' ? -1 : strtoll(buf, NULL, 10);
}

static struct kb_store_new_version
nv_rsa(unsigned i)
{
	struct kb_store_new_version v;

	memset(&v, 0, sizeof(v));
	snprintf(v.version, sizeof(v.version), "%032x", i);
	v.kty = "RSA";
	v.key_size = 2048;
	v.key_ops = KV_OP_SIGN | KV_OP_VERIFY;
	v.enabled = true;
	return v;
}

static struct kb_store *
open_fresh(const char *name, char *path, size_t n)
{
	struct kb_store *st = NULL;
	int r;

	path_of(path, n, name);
	remove_db(path);
	if ((r = kb_store_open(path, &st)) != 0) {
		tap_diag("kb_store_open %s: %s", path, kb_error_detail(r));
		return NULL;
	}
	return st;
}

static int64_t
audit_count(const char *path, const char *where)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE %s", where);
	return raw_int(path, sql);
}

/* --------------------------------------------------------------- rules */

static void
test_rules(void)
{
	static const struct {
		enum kv_field f;
		const char *s;
		int want;
	} cases[] = {
		{ KV_FIELD_KEY_NAME, "a", 0 },
		{ KV_FIELD_KEY_NAME, "My-Key-01", 0 },
		{ KV_FIELD_KEY_NAME, "-", 0 },
		{ KV_FIELD_KEY_NAME, "", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "has space", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "under_score", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "dot.name", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "slash/name", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "caf\xc3\xa9", KB_ERR_INVALID },
		{ KV_FIELD_KEY_NAME, "percent%2f", KB_ERR_INVALID },
		{ KV_FIELD_VAULT_NAME, "abc", 0 },
		{ KV_FIELD_VAULT_NAME, "my-vault-1", 0 },
		{ KV_FIELD_VAULT_NAME, "ab", KB_ERR_INVALID },
		{ KV_FIELD_VAULT_NAME, "1vault", KB_ERR_INVALID },
		{ KV_FIELD_VAULT_NAME, "vault-", KB_ERR_INVALID },
		{ KV_FIELD_VAULT_NAME, "va--ult", KB_ERR_INVALID },
		{ KV_FIELD_VAULT_NAME, "abcdefghijklmnopqrstuvwx", 0 },
		{ KV_FIELD_VAULT_NAME, "abcdefghijklmnopqrstuvwxy", KB_ERR_INVALID },
		{ KV_FIELD_VERSION, "78deebed173b48e48f55abf87ed4cf71", 0 },
		{ KV_FIELD_VERSION, "78DEEBED173B48E48F55ABF87ED4CF71", 0 },
		{ KV_FIELD_VERSION, "78deebed173b48e48f55abf87ed4cf7", KB_ERR_INVALID },
		{ KV_FIELD_VERSION, "78deebed173b48e48f55abf87ed4cf711", KB_ERR_INVALID },
		{ KV_FIELD_VERSION, "78deebed173b48e48f55abf87ed4cf7g", KB_ERR_INVALID },
		{ KV_FIELD_TAG_NAME, "purpose", 0 },
		{ KV_FIELD_TAG_NAME, "test name ", 0 },
		{ KV_FIELD_TAG_NAME, "", KB_ERR_INVALID },
		{ KV_FIELD_TAG_NAME, "tab\there", KB_ERR_INVALID },
		{ KV_FIELD_TAG_VALUE, "", 0 },
		{ KV_FIELD_TAG_VALUE, "\xe6\x97\xa5\xe6\x9c\xac", 0 },
		{ KV_FIELD_TAG_VALUE, "bad\xc3", KB_ERR_INVALID },
		{ KV_FIELD_TAG_VALUE, "overlong\xc0\xaf", KB_ERR_INVALID },
		{ KV_FIELD_TAG_VALUE, "surrogate\xed\xa0\x80", KB_ERR_INVALID },
		{ KV_FIELD_TAG_VALUE, "c1\xc2\x85", KB_ERR_INVALID },
		{ KV_FIELD_TAG_VALUE, "del\x7f", KB_ERR_INVALID },
	};
	char buf[600], lc[16];
	size_t i;
	unsigned ops;
	cJSON *j;
	char *txt;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_is_int(kv_check(cases[i].f, cases[i].s), cases[i].want,
		    "rule %s: \"%s\"", kv_field_name(cases[i].f), cases[i].s);

	/* Length edges: 127/128 name chars, 256/257 tag chars (in UTF-8
	 * characters, not bytes). */
	memset(buf, 'k', 127);
	buf[127] = '\0';
	tap_is_int(kv_check(KV_FIELD_KEY_NAME, buf), 0, "127-char key name");
	buf[127] = 'k';
	buf[128] = '\0';
	tap_is_int(kv_check(KV_FIELD_KEY_NAME, buf), KB_ERR_INVALID,
	    "128-char key name refused");
	for (i = 0; i < 256; i++) {
		buf[2 * i] = (char)0xc3;
		buf[2 * i + 1] = (char)0xa9;
	}
	buf[512] = '\0';
	tap_is_int(kv_check(KV_FIELD_TAG_VALUE, buf), 0,
	    "256 two-byte characters are a valid tag value");
	tap_is_int(kv_utf8_chars(buf), 256, "kv_utf8_chars counts characters");
	buf[512] = 'x';
	buf[513] = '\0';
	tap_is_int(kv_check(KV_FIELD_TAG_VALUE, buf), KB_ERR_INVALID,
	    "257 characters refused");
	memset(buf, 'n', 257);
	buf[257] = '\0';
	tap_is_int(kv_check(KV_FIELD_TAG_NAME, buf), KB_ERR_INVALID,
	    "257-char tag name refused");
	buf[256] = '\0';
	tap_is_int(kv_check(KV_FIELD_TAG_NAME, buf), 0, "256-char tag name");

	tap_is_int(kv_lower("AbC-9", lc, sizeof(lc)), 0, "kv_lower");
	tap_is_str(lc, "abc-9", "kv_lower lower-cases ASCII");
	tap_is_int(kv_lower("0123456789abcdefg", lc, sizeof(lc)), KB_ERR_LIMIT,
	    "kv_lower refuses a small buffer");

	/* Tags as JSON objects. */
	{
		static const struct {
			const char *json;
			int want;
		} tc[] = {
			{ "{}", 0 },
			{ "{\"a\":\"1\",\"b\":\"\"}", 0 },
			{ "[]", KB_ERR_INVALID },
			{ "{\"a\":1}", KB_ERR_INVALID },
			{ "{\"a\":null}", KB_ERR_INVALID },
			{ "{\"a\":\"1\",\"a\":\"2\"}", KB_ERR_INVALID },
			{ "{\"\":\"x\"}", KB_ERR_INVALID },
		};

		for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
			j = cJSON_Parse(tc[i].json);
			tap_is_int(kv_tags_check(j), tc[i].want, "tags %s",
			    tc[i].json);
			cJSON_Delete(j);
		}
	}
	j = cJSON_CreateObject();
	for (i = 0; i < 15; i++) {
		snprintf(lc, sizeof(lc), "t%zu", i);
		cJSON_AddStringToObject(j, lc, "v");
	}
	tap_is_int(kv_tags_check(j), 0, "15 tags accepted");
	cJSON_AddStringToObject(j, "t15", "v");
	tap_is_int(kv_tags_check(j), KB_ERR_LIMIT, "16 tags refused (LIMIT)");
	cJSON_Delete(j);

	/* key_ops */
	j = cJSON_Parse("[\"sign\",\"verify\",\"wrapKey\"]");
	tap_is_int(kv_key_ops_parse(j, &ops), 0, "key_ops parse");
	tap_is_int(ops, KV_OP_SIGN | KV_OP_VERIFY | KV_OP_WRAP_KEY, "key_ops mask");
	cJSON_Delete(j);
	j = kv_key_ops_json(KV_OP_UNWRAP_KEY | KV_OP_ENCRYPT);
	txt = cJSON_PrintUnformatted(j);
	tap_is_str(txt, "[\"encrypt\",\"unwrapKey\"]", "key_ops back to JSON");
	free(txt);
	cJSON_Delete(j);
	j = cJSON_Parse("[\"sign\",\"sign\"]");
	tap_is_int(kv_key_ops_parse(j, &ops), KB_ERR_INVALID, "repeated key_op");
	cJSON_Delete(j);
	j = cJSON_Parse("[\"Sign\"]");
	tap_is_int(kv_key_ops_parse(j, &ops), KB_ERR_INVALID,
	    "key_ops are case-sensitive");
	cJSON_Delete(j);
	tap_is_str(kv_key_op_name(KV_OP_EXPORT), "export", "op name");
	tap_ok(kv_key_op_name(3) == NULL, "no name for two bits");

	/* Key shapes. */
	{
		static const struct {
			const char *kty, *crv;
			unsigned size;
			int want;
		} sc[] = {
			{ "RSA", NULL, 2048, 0 }, { "RSA-HSM", "", 4096, 0 },
			{ "RSA", NULL, 1024, KB_ERR_INVALID },
			{ "RSA", "P-256", 2048, KB_ERR_INVALID },
			{ "EC", "P-256", 0, 0 }, { "EC-HSM", "P-256K", 0, 0 },
			{ "EC", "P-224", 0, KB_ERR_INVALID },
			{ "EC", NULL, 0, KB_ERR_INVALID },
			{ "EC", "P-384", 384, KB_ERR_INVALID },
			{ "oct-HSM", NULL, 256, 0 }, { "oct", NULL, 512, KB_ERR_INVALID },
			{ "rsa", NULL, 2048, KB_ERR_INVALID },
			{ "AKP", NULL, 0, KB_ERR_INVALID },
		};

		for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
			tap_is_int(kv_key_shape_check(sc[i].kty, sc[i].size,
			    sc[i].crv), sc[i].want, "shape %s/%u/%s", sc[i].kty,
			    sc[i].size, sc[i].crv ? sc[i].crv : "-");
	}
	tap_is_int(kv_retention_check(6), KB_ERR_INVALID, "retention 6 refused");
	tap_is_int(kv_retention_check(7), 0, "retention 7");
	tap_is_int(kv_retention_check(90), 0, "retention 90");
	tap_is_int(kv_retention_check(91), KB_ERR_INVALID, "retention 91 refused");
	tap_is_str(kv_recovery_level(90, false), "Recoverable+Purgeable",
	    "recoveryLevel 90 days");
	tap_is_str(kv_recovery_level(90, true), "Recoverable",
	    "recoveryLevel 90 days, purge protection");
	tap_is_str(kv_recovery_level(7, false), "CustomizedRecoverable+Purgeable",
	    "recoveryLevel 7 days");
	tap_is_str(kv_recovery_level(30, true), "CustomizedRecoverable",
	    "recoveryLevel 30 days, purge protection");
}

/* --------------------------------------------------------------- open */

static void
test_open(void)
{
	char path[256], buf[160];
	struct kb_store *st = NULL;
	struct stat sb;
	int r;

	st = open_fresh("open.db", path, sizeof(path));
	tap_ok(st != NULL, "open creates a store");
	tap_ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	    "the store file has mode 0600");
	kb_store_close(st);
	st = NULL;
	tap_is_str(raw_text(path, "PRAGMA journal_mode", buf, sizeof(buf)),
	    "wal", "journal mode is WAL (persistent)");
	tap_is_int(raw_int(path, "PRAGMA user_version"), KB_STORE_SCHEMA_VERSION,
	    "user_version is the schema version");
	tap_is_int(raw_int(path, "PRAGMA application_id"), 0x4b425354,
	    "application_id marks a keybridge store");
	tap_is_int(kb_store_open(path, &st), 0, "reopen an existing store");
	kb_store_close(st);
	st = NULL;

	tap_is_int(raw_exec(path, "PRAGMA user_version = 99", NULL, 0), 0,
	    "raw: set a future schema version");
	r = kb_store_open(path, &st);
	tap_is_int(r, KB_ERR_CONFIG, "a newer schema is refused (CONFIG)");
	tap_ok(strstr(kb_error_detail(r), "newer") != NULL,
	    "the message says the store is newer: %s", kb_error_detail(r));

	/* A schema-1 store (before principals) is migrated on open; its keys
	 * (two with three versions each, added out of name order) get their
	 * latest version recorded (schema 4). */
	path_of(path, sizeof(path), "v1.db");
	remove_db(path);
	st = open_fresh("v1.db", path, sizeof(path));
	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	for (r = 0; r < 6; r++) {
		struct kb_store_new_version nv = nv_rsa(100 + (unsigned)r);

		MUST(kb_store_add_version(st, &officer, "kvt", r % 2 ? "mig-a" :
		    "mig-b", &nv, T0 + r, NULL));
	}
	kb_store_close(st);
	st = NULL;
	tap_is_int(raw_exec(path, "DROP TABLE rotation_policies;"
	    "ALTER TABLE versions DROP COLUMN public_jwk;"
	    "DROP INDEX keys_list;"
	    "CREATE INDEX keys_list ON keys (vault_id, state, name_lc);"
	    "DROP TRIGGER versions_latest; ALTER TABLE keys DROP COLUMN latest_id;"
	    "ALTER TABLE audit DROP COLUMN principal;"
	    "ALTER TABLE intents DROP COLUMN principal; PRAGMA user_version = 1",
	    NULL, 0), 0, "store turned back into schema 1");
	tap_is_int(kb_store_open(path, &st), 0, "a schema-1 store opens");
	tap_is_int(raw_int(path, "PRAGMA user_version"), KB_STORE_SCHEMA_VERSION,
	    "and is migrated to the current schema");
	tap_is_int(raw_int(path, "SELECT count(*) FROM pragma_table_info('audit') "
	    "WHERE name = 'principal'"), 1, "audit has the principal column");
	tap_is_int(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE "
	    "type = 'table' AND name = 'rotation_policies'"), 1,
	    "and has the rotation_policies table (schema 3)");
	tap_is_int(raw_int(path, "SELECT count(*) FROM keys k WHERE latest_id IS "
	    "NOT (SELECT max(id) FROM versions WHERE key_id = k.id)"), 0,
	    "every key's latest version is recorded (schema 4)");
	tap_ok(raw_text(path, "SELECT group_concat(name, ',') FROM "
	    "pragma_index_info('keys_list')", buf, sizeof(buf)) != NULL &&
	    strcmp(buf, "vault_id,state,name_lc,name,latest_id,deleted_date,"
	    "scheduled_purge_date") == 0,
	    "the listing index covers a listing's columns (schema 5): %s", buf);
	tap_is_int(raw_int(path, "SELECT count(*) FROM pragma_table_info('versions') "
	    "WHERE name = 'public_jwk'"), 1, "versions have the public_jwk column "
	    "(schema 6)");
	{
		struct kb_store_key *items = NULL;
		char *next = NULL;
		size_t n = 0;

		tap_ok(kb_store_list_keys(st, "kvt", NULL, 25, &items, &n, &next) == 0 &&
		    n == 2 && strcmp(items[0].version, nv_rsa(105).version) == 0 &&
		    strcmp(items[1].version, nv_rsa(104).version) == 0,
		    "after the migration a listing shows each key's latest version");
		kb_store_keys_free(items, n);
		free(next);
	}
	kb_store_close(st);
	st = NULL;

	path_of(path, sizeof(path), "other.db");
	remove_db(path);
	raw_exec(path, "", NULL, 0);
	{
		sqlite3 *db = NULL;

		sqlite3_open(path, &db);
		sqlite3_exec(db, "CREATE TABLE t (x); PRAGMA user_version = 1",
		    NULL, NULL, NULL);
		sqlite3_close(db);
	}
	tap_is_int(kb_store_open(path, &st), KB_ERR_CONFIG,
	    "another application's SQLite file is refused");
	tap_is_str(raw_text(path, "PRAGMA journal_mode", buf, sizeof(buf)),
	    "delete", "and left in its own journal mode");

	path_of(path, sizeof(path), "perm.db");
	remove_db(path);
	st = open_fresh("perm.db", path, sizeof(path));
	kb_store_close(st);
	st = NULL;
	chmod(path, 0666);
	tap_is_int(kb_store_open(path, &st), KB_ERR_CONFIG,
	    "a world-writable store is refused");
	path_of(path, sizeof(path), "nodir/x.db");
	tap_is_int(kb_store_open(path, &st), KB_ERR_IO,
	    "a path in a missing directory is IO");
	tap_is_int(kb_store_open("", &st), KB_ERR_INVALID, "empty path");
	kb_store_close(NULL);
	tap_ok(1, "kb_store_close(NULL) is harmless");
}

/* ------------------------------------------------------------- vaults */

static void
test_vaults(void)
{
	char path[256];
	struct kb_store *st = open_fresh("vaults.db", path, sizeof(path));
	struct kb_store_vault v;

	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "Vault-A", 30, false, T0),
	    0, "create a vault");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "vault-a", 30, false, T0),
	    0, "ensure again (case-insensitive) changes nothing");
	tap_is_int(kb_store_vault_get(st, "VAULT-A", &v), 0, "get the vault");
	tap_is_str(v.name, "Vault-A", "vault keeps its display case");
	tap_is_int(v.retention_days, 30, "retention stored");
	tap_ok(!v.purge_protection, "no purge protection");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "vault-a", 31, false, T0),
	    KB_ERR_CONFLICT, "retention cannot change");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "vault-a", 30, true, T0),
	    0, "purge protection can be turned on");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "vault-a", 30, false, T0),
	    KB_ERR_CONFLICT, "purge protection cannot be turned off");
	tap_is_int(kb_store_vault_get(st, "vault-a", &v), 0, "get again");
	tap_ok(v.purge_protection, "purge protection recorded");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "vault-b", 6, false, T0),
	    KB_ERR_INVALID, "retention 6 refused");
	tap_is_int(kb_store_vault_ensure(st, &sys_actor, "v", 90, false, T0),
	    KB_ERR_INVALID, "bad vault name refused");
	tap_is_int(kb_store_vault_get(st, "nosuch", &v), KB_ERR_NOT_FOUND,
	    "unknown vault NOT_FOUND");
	tap_is_int(audit_count(path, "op = 'vault-create'"), 1,
	    "one vault-create audit record");
	tap_is_int(audit_count(path, "op = 'vault-update'"), 1,
	    "one vault-update audit record");
	kb_store_close(st);
}

/* --------------------------------------------------------------- keys */

/*
 * A get of kvt's mykey (version NULL: the latest) succeeds, and its
 * public JWK is want (NULL: none recorded).
 */
static void
get_jwk_is(struct kb_store *st, const char *version, const char *want,
    const char *get_name, const char *jwk_name)
{
	struct kb_store_key *g = NULL;

	tap_is_int(kb_store_get_key(st, "kvt", "mykey", version, &g), 0, "%s",
	    get_name);
	if (want == NULL)
		tap_ok(g != NULL && g->public_jwk == NULL, "%s", jwk_name);
	else
		tap_ok(g != NULL && g->public_jwk != NULL &&
		    strcmp(g->public_jwk, want) == 0, "%s", jwk_name);
	kb_store_key_free(g);
}

static void
test_keys(void)
{
	char path[256];
	struct kb_store *st = open_fresh("keys.db", path, sizeof(path));
	struct kb_store_new_version v;
	struct kb_store_key *k = NULL;
	char big[40];
	int i;

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	v = nv_rsa(1);
	v.tags_json = "{ \"purpose\" : \"unit test\", \"test name \": \"x\" }";
	v.has_exp = true;
	v.exp = INT64_C(2524723200);
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "MyKey", &v, T0, &k),
	    0, "add a first version");
	tap_ok(k != NULL && strcmp(k->name, "MyKey") == 0, "display name kept");
	tap_ok(k != NULL && strcmp(k->tags_json,
	    "{\"purpose\":\"unit test\",\"test name \":\"x\"}") == 0,
	    "tags stored canonically: %s", k ? k->tags_json : "");
	tap_ok(k != NULL && k->has_exp && k->exp == INT64_C(2524723200),
	    "exp past 2038 kept");
	tap_ok(k != NULL && !k->has_nbf, "no nbf");
	tap_ok(k != NULL && strcmp(k->recovery_level, "Recoverable+Purgeable") == 0 &&
	    k->recoverable_days == 90, "recovery level derived from the vault");
	tap_ok(k != NULL && strcmp(k->p11_label, "MyKey") == 0 &&
	    k->p11_id[15] == 1 && k->p11_id[0] == 0,
	    "token object label = name, id = version bytes");
	kb_store_key_free(k);
	k = NULL;

	v = nv_rsa(2);
	v.enabled = false;
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "mykey", &v, T0 + 10,
	    NULL), 0, "create on an existing name (other case) adds a version");
	tap_is_int(kb_store_get_key(st, "kvt", "MYKEY", NULL, &k), 0,
	    "get latest, case-insensitive");
	tap_ok(k != NULL && strcmp(k->version, v.version) == 0 && !k->enabled,
	    "latest is the newest version");
	tap_ok(k != NULL && strcmp(k->name, "MyKey") == 0 &&
	    strcmp(k->p11_label, "MyKey") == 0,
	    "the key keeps its first display case and label");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_get_key(st, "kvt", "mykey",
	    "00000000000000000000000000000001", &k), 0, "get a given version");
	tap_ok(k != NULL && k->enabled && k->created == T0, "it is the first one");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_get_key(st, "kvt", "mykey",
	    "0000000000000000000000000000000A", &k), KB_ERR_NOT_FOUND,
	    "unknown version NOT_FOUND (upper-case accepted)");
	tap_is_int(kb_store_get_key(st, "kvt", "nokey", NULL, &k), KB_ERR_NOT_FOUND,
	    "unknown key NOT_FOUND");
	tap_is_int(kb_store_get_key(st, "kvt", "bad_name", NULL, &k), KB_ERR_INVALID,
	    "bad name INVALID");
	tap_is_int(kb_store_get_key(st, "kvt", "mykey", "xyz", &k), KB_ERR_INVALID,
	    "bad version INVALID");
	tap_is_int(kb_store_get_key(st, "nov", "mykey", NULL, &k), KB_ERR_NOT_FOUND,
	    "unknown vault NOT_FOUND");
	tap_ok(k == NULL, "no output on failure");

	v = nv_rsa(2);
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "mykey", &v, T0, NULL),
	    KB_ERR_CONFLICT, "a version id is unique within a key");
	v = nv_rsa(3);
	v.kty = "EC";
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_INVALID, "EC without a curve refused");
	v = nv_rsa(3);
	v.key_ops = 1u << 12;
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_INVALID, "unknown key_ops bits refused");
	v = nv_rsa(3);
	v.has_nbf = true;
	v.nbf = -1;
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_INVALID, "negative nbf refused");
	v = nv_rsa(3);
	v.tags_json = "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\","
	    "\"e\":\"5\",\"f\":\"6\",\"g\":\"7\",\"h\":\"8\",\"i\":\"9\","
	    "\"j\":\"10\",\"k\":\"11\",\"l\":\"12\",\"m\":\"13\",\"n\":\"14\","
	    "\"o\":\"15\",\"p\":\"16\"}";
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_LIMIT, "16 tags refused (LIMIT)");
	v.tags_json = "{\"a\":";
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_INVALID, "malformed tags JSON refused");
	v.tags_json = NULL;
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "bad name", &v, T0,
	    NULL), KB_ERR_INVALID, "bad key name refused");
	tap_is_int(kb_store_add_version(st, NULL, "kvt", "k2", &v, T0, NULL),
	    KB_ERR_INVALID, "no actor refused");
	{
		struct kb_store_actor bad = { 1, "", NULL };

		tap_is_int(kb_store_add_version(st, &bad, "kvt", "k2", &v, T0,
		    NULL), KB_ERR_INVALID, "empty role refused");
	}
	tap_is_int(raw_int(path, "SELECT count(*) FROM keys WHERE name_lc = 'k2'"),
	    0, "refused creates left nothing");
	tap_is_int(audit_count(path, "op = 'create' AND result = 'ok'"), 2,
	    "two create audit records");

	/* Update. */
	{
		struct kb_store_update u;

		memset(&u, 0, sizeof(u));
		u.set_enabled = true;
		u.enabled = true;
		u.set_tags = true;
		u.tags_json = "{\"env\":\"prod\"}";
		u.set_nbf = true;
		u.has_nbf = true;
		u.nbf = 631180800;
		u.set_key_ops = true;
		u.key_ops = KV_OP_DECRYPT | KV_OP_ENCRYPT;
		tap_is_int(kb_store_update(st, &officer, "kvt", "mykey", NULL, &u,
		    T0 + 100, &k), 0, "update the latest version");
		tap_ok(k != NULL && k->enabled && k->has_nbf && k->nbf == 631180800 &&
		    k->key_ops == (KV_OP_DECRYPT | KV_OP_ENCRYPT) &&
		    strcmp(k->tags_json, "{\"env\":\"prod\"}") == 0 &&
		    k->updated == T0 + 100 && k->created == T0 + 10,
		    "attributes, ops and tags replaced; updated stamped");
		tap_ok(k != NULL && strcmp(k->version, "00000000000000000000000000000002") == 0,
		    "the latest version was updated");
		kb_store_key_free(k);
		k = NULL;
		memset(&u, 0, sizeof(u));
		u.set_nbf = true;  /* has_nbf false: clear */
		tap_is_int(kb_store_update(st, &officer, "kvt", "mykey",
		    "00000000000000000000000000000002", &u, T0 + 200, &k), 0,
		    "update a given version");
		tap_ok(k != NULL && !k->has_nbf && k->enabled &&
		    strcmp(k->tags_json, "{\"env\":\"prod\"}") == 0,
		    "nbf cleared, the rest unchanged");
		kb_store_key_free(k);
		k = NULL;
		u.set_tags = true;
		u.tags_json = "{\"x\":1}";
		tap_is_int(kb_store_update(st, &officer, "kvt", "mykey", NULL, &u,
		    T0, NULL), KB_ERR_INVALID, "update with bad tags refused");
		u.set_tags = false;
		tap_is_int(kb_store_update(st, &officer, "kvt", "mykey",
		    "000000000000000000000000000000ff", &u, T0, NULL),
		    KB_ERR_NOT_FOUND, "update of an unknown version");
		tap_is_int(audit_count(path, "op = 'update'"), 2,
		    "two update audit records");

		/* The key cache: a read, a write, the next read sees it. */
		MUST(kb_store_get_key(st, "kvt", "mykey", NULL, &k));
		kb_store_key_free(k);
		k = NULL;
		MUST(kb_store_get_key(st, "kvt", "mykey", NULL, &k));
		tap_ok(k != NULL && strcmp(k->tags_json, "{\"env\":\"prod\"}") == 0,
		    "a cached read gives the same row");
		kb_store_key_free(k);
		k = NULL;
		MUST(kb_store_get_key(st, "kvt", "mykey",
		    "00000000000000000000000000000002", &k));
		kb_store_key_free(k);
		k = NULL;
		memset(&u, 0, sizeof(u));
		u.set_tags = true;
		u.tags_json = "{\"env\":\"test\"}";
		u.set_enabled = true;
		u.enabled = false;
		MUST(kb_store_update(st, &officer, "kvt", "mykey", NULL, &u,
		    T0 + 300, NULL));
		MUST(kb_store_get_key(st, "kvt", "mykey", NULL, &k));
		tap_ok(k != NULL && !k->enabled &&
		    strcmp(k->tags_json, "{\"env\":\"test\"}") == 0,
		    "after an update the latest version is read afresh");
		kb_store_key_free(k);
		k = NULL;
		MUST(kb_store_get_key(st, "kvt", "mykey",
		    "00000000000000000000000000000002", &k));
		tap_ok(k != NULL && !k->enabled && k->updated == T0 + 300,
		    "and so is the same version asked by id");
		kb_store_key_free(k);
		k = NULL;
		u.enabled = true;
		u.tags_json = "{\"env\":\"prod\"}";
		MUST(kb_store_update(st, &officer, "kvt", "mykey", NULL, &u,
		    T0 + 300, NULL));
	}

	/* Many versions: a 40-char name for display. */
	snprintf(big, sizeof(big), "%s", "Versions-Key");
	for (i = 0; i < 7; i++) {
		v = nv_rsa((unsigned)(0x100 - i));  /* ids descend, creation ascends */
		if (kb_store_add_version(st, &officer, "kvt", big, &v, T0 + i, NULL) != 0)
			break;
	}
	tap_is_int(i, 7, "7 versions added");
	{
		struct kb_store_key *items = NULL;
		char *next = NULL, *cur = NULL;
		size_t n, total = 0;
		int pages = 0, ordered = 1;
		unsigned want = 0x100;

		do {
			items = NULL;
			n = 0;
			if (kb_store_list_versions(st, "kvt", "versions-key", cur, 3,
			    &items, &n, &next) != 0)
				break;
			for (size_t j = 0; j < n; j++) {
				char exp[33];

				snprintf(exp, sizeof(exp), "%032x", want--);
				if (strcmp(items[j].version, exp) != 0)
					ordered = 0;
			}
			total += n;
			pages++;
			kb_store_keys_free(items, n);
			free(cur);
			cur = next;
		} while (cur != NULL);
		tap_is_int(total, 7, "versions listed in pages of 3");
		tap_is_int(pages, 3, "three pages");
		tap_ok(ordered, "versions in creation order, not id order");
		tap_is_int(kb_store_list_versions(st, "kvt", "versions-key",
		    "0000000000000000000000000000abcd", 3, &items, &n, &next),
		    KB_ERR_INVALID, "a cursor naming no version is INVALID");
		tap_is_int(kb_store_list_versions(st, "kvt", "versions-key",
		    "garbage", 3, &items, &n, &next), KB_ERR_INVALID,
		    "a malformed cursor is INVALID");
		tap_is_int(kb_store_list_versions(st, "kvt", "nokey", NULL, 3,
		    &items, &n, &next), KB_ERR_NOT_FOUND, "versions of no key");
		tap_is_int(kb_store_list_versions(st, "kvt", "versions-key", NULL, 0,
		    &items, &n, &next), KB_ERR_INVALID, "limit 0 refused");
	}
	/* The public JWK a get reads instead of the token (schema 6). */
	{
		static const char jwk1[] = "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}";

		get_jwk_is(st, NULL, NULL, "get before a public key is recorded",
		    "no public key yet");
		tap_is_int(kb_store_set_public_jwk(st, "kvt", "MyKey",
		    "00000000000000000000000000000002", jwk1), 0,
		    "record the public key of a version");
		get_jwk_is(st, NULL, jwk1, "get it back", "the get carries it");
		get_jwk_is(st, NULL, jwk1, "a second get (the store's cache)",
		    "the cached copy carries it too");
		tap_is_int(kb_store_set_public_jwk(st, "kvt", "mykey",
		    "00000000000000000000000000000002", "{\"kty\":\"EC\"}"), 0,
		    "recording again is not an error");
		get_jwk_is(st, "00000000000000000000000000000002", jwk1,
		    "get that version", "but the first record stays");
		get_jwk_is(st, "00000000000000000000000000000001", NULL,
		    "get the other version", "which has none");
		tap_is_int(kb_store_set_public_jwk(st, "kvt", "mykey",
		    "00000000000000000000000000000001", "not json"), KB_ERR_INVALID,
		    "a text that is no JSON object is refused");
		tap_is_int(kb_store_set_public_jwk(st, "kvt", "mykey", "xyz", jwk1),
		    KB_ERR_INVALID, "a bad version is refused");
	}
	kb_store_close(st);
}

/* ------------------------------------------------------------- paging */

/* One page of a vault's keys or deleted keys; *items and *n zeroed first. */
static int
list_one(struct kb_store *st, const char *vault, bool deleted, const char *cur,
    unsigned limit, struct kb_store_key **items, size_t *n, char **next)
{
	*items = NULL;
	*n = 0;
	return deleted ?
	    kb_store_list_deleted(st, vault, cur, limit, items, n, next) :
	    kb_store_list_keys(st, vault, cur, limit, items, n, next);
}

static int
page_all(struct kb_store *st, const char *vault, unsigned limit, bool deleted,
    char names[][16], size_t max, size_t *count, int *pages)
{
	struct kb_store_key *items;
	char *next = NULL, *cur = NULL;
	size_t n, i;
	int r = 0;

	*count = 0;
	*pages = 0;
	do {
		r = list_one(st, vault, deleted, cur, limit, &items, &n, &next);
		if (r != 0)
			break;
		for (i = 0; i < n; i++, (*count)++)
			if (*count < max)
				(void)kb_strlcpy(names[*count], items[i].name, 16);
		(*pages)++;
		kb_store_keys_free(items, n);
		free(cur);
		cur = next;
		if (*pages > 1000) {
			r = -1;
			break;
		}
	} while (cur != NULL);
	free(cur);
	return r;
}

static void
test_paging(void)
{
	static const unsigned sizes[] = { 1, 7, 13, 25, 59, 60, 61, 1000 };
	char path[256], names[80][16];
	struct kb_store *st = open_fresh("paging.db", path, sizeof(path));
	struct kb_store_new_version v;
	struct kb_store_key *items = NULL;
	char *next = NULL;
	size_t count, i, n;
	int pages, ok, ins = 0;
	char nm[16];

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	MUST(kb_store_vault_ensure(st, &sys_actor, "other", 90, false, T0));
	/* 60 names inserted in a scrambled order, mixed case. */
	for (i = 0; i < 60; i++) {
		unsigned j = (unsigned)((i * 37) % 60);

		snprintf(nm, sizeof(nm), j % 2 ? "Key-%02u" : "key-%02u", j);
		v = nv_rsa((unsigned)i + 1);
		if (kb_store_add_version(st, &officer, "kvt", nm, &v, T0, NULL) == 0)
			ins++;
	}
	tap_is_int(ins, 60, "60 keys created");
	v = nv_rsa(99);
	MUST(kb_store_add_version(st, &officer, "other", "key-00", &v, T0, NULL));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int r = page_all(st, "kvt", sizes[i], false, names, 80, &count,
		    &pages);

		ok = r == 0 && count == 60;
		for (size_t j = 0; ok && j < 60; j++) {
			char want[16];

			snprintf(want, sizeof(want), j % 2 ? "Key-%02zu" : "key-%02zu", j);
			if (strcmp(names[j], want) != 0)
				ok = 0;
		}
		tap_ok(ok, "page size %u: 60 keys, sorted, no duplicates or gaps "
		    "(%zu keys in %d pages)", sizes[i], count, pages);
		tap_is_int(pages, (60 + sizes[i] - 1) / sizes[i],
		    "page size %u: page count", sizes[i]);
	}
	tap_is_int(kb_store_list_keys(st, "kvt", "key-58", 5, &items, &n, &next), 0,
	    "list after a cursor near the end");
	tap_ok(n == 1 && next == NULL && strcmp(items[0].name, "Key-59") == 0,
	    "last page holds one key and no cursor");
	kb_store_keys_free(items, n);
	items = NULL;
	tap_is_int(kb_store_list_keys(st, "kvt", "KEY-29", 1, &items, &n, &next), 0,
	    "cursor is case-insensitive");
	tap_ok(n == 1 && strcmp(items[0].name, "key-30") == 0 && next != NULL &&
	    strcmp(next, "key-30") == 0, "next page and cursor: %s",
	    next ? next : "(null)");
	kb_store_keys_free(items, n);
	free(next);
	items = NULL;
	next = NULL;
	tap_is_int(kb_store_list_keys(st, "kvt", "zzz", 5, &items, &n, &next), 0,
	    "a cursor past the end");
	tap_ok(n == 0 && next == NULL, "gives an empty last page");
	kb_store_keys_free(items, n);
	items = NULL;
	tap_is_int(kb_store_list_keys(st, "kvt", "bad cursor!", 5, &items, &n, &next),
	    KB_ERR_INVALID, "malformed cursor INVALID");
	tap_is_int(kb_store_list_keys(st, "kvt", NULL, 0, &items, &n, &next),
	    KB_ERR_INVALID, "limit 0 INVALID");
	tap_is_int(kb_store_list_keys(st, "kvt", NULL, KB_STORE_PAGE_MAX + 1, &items,
	    &n, &next), KB_ERR_INVALID, "limit above the page maximum INVALID");
	tap_is_int(kb_store_list_keys(st, "nov", NULL, 5, &items, &n, &next),
	    KB_ERR_NOT_FOUND, "list on an unknown vault");
	{
		/* A list item shows what get_key does, less the token's part. */
		struct kb_store_new_version iv = nv_rsa(7001);
		struct kb_store_key *g = NULL;

		iv.key_size = 3072;
		iv.enabled = false;
		iv.has_nbf = iv.has_exp = true;
		iv.nbf = T0 - 60;
		iv.exp = T0 + 86400;
		iv.tags_json = "{\"team\":\"pki\"}";
		MUST(kb_store_vault_ensure(st, &sys_actor, "kvi", 14, true, T0));
		tap_is_int(kb_store_add_version(st, &officer, "kvi", "Item-Fields", &iv,
		    T0, NULL), 0, "a key with every listed attribute set");
		tap_is_int(kb_store_list_keys(st, "kvi", NULL, 5, &items, &n, &next), 0,
		    "listed");
		tap_ok(n == 1 && kb_store_get_key(st, "kvi", "Item-Fields", NULL, &g) == 0 &&
		    strcmp(items[0].name, g->name) == 0 &&
		    strcmp(items[0].version, g->version) == 0 &&
		    strcmp(items[0].vault, "kvi") == 0 &&
		    items[0].key_size == 3072 && !items[0].enabled &&
		    items[0].has_nbf && items[0].nbf == g->nbf &&
		    items[0].has_exp && items[0].exp == g->exp &&
		    items[0].created == g->created && items[0].updated == g->updated &&
		    strcmp(items[0].tags_json, g->tags_json) == 0 &&
		    strcmp(items[0].recovery_level, g->recovery_level) == 0 &&
		    items[0].recoverable_days == 14 && g->recoverable_days == 14 &&
		    !items[0].deleted,
		    "the list item's fields are the key's");
		tap_ok(n == 1 && items[0].kty[0] == '\0' && items[0].p11_label[0] == '\0' &&
		    g != NULL && strcmp(g->kty, "RSA") == 0 && g->p11_label[0] != '\0',
		    "the token's part is left to get_key");
		kb_store_key_free(g);
		g = NULL;
		kb_store_keys_free(items, n);
		items = NULL;
		tap_is_int(kb_store_delete(st, &officer, "kvi", "Item-Fields", T0 + 5, NULL),
		    0, "deleted");
		tap_is_int(kb_store_list_deleted(st, "kvi", NULL, 5, &items, &n, &next), 0,
		    "a listing of deleted keys");
		tap_ok(n == 1 && kb_store_get_deleted(st, "kvi", "Item-Fields", &g) == 0 &&
		    items[0].deleted && items[0].deleted_date == T0 + 5 &&
		    items[0].scheduled_purge_date == g->scheduled_purge_date &&
		    items[0].scheduled_purge_date == T0 + 5 + 14 * 86400 &&
		    strcmp(items[0].version, g->version) == 0 &&
		    strcmp(items[0].tags_json, g->tags_json) == 0,
		    "shows the deletion as get_deleted does");
		kb_store_key_free(g);
		kb_store_keys_free(items, n);
		items = NULL;
	}

	/* Deleted keys leave the key list and enter the deleted list. */
	for (i = 0; i < 60; i += 3) {
		snprintf(nm, sizeof(nm), "KEY-%02zu", i);
		if (kb_store_delete(st, &officer, "kvt", nm, T0 + (int64_t)i, NULL) != 0)
			break;
	}
	tap_is_int(i, 60, "every third key deleted");
	tap_ok(page_all(st, "kvt", 7, false, names, 80, &count, &pages) == 0 &&
	    count == 40, "40 active keys listed (%zu)", count);
	ok = page_all(st, "kvt", 6, true, names, 80, &count, &pages) == 0 &&
	    count == 20;
	for (i = 0; ok && i < 20; i++) {
		char want[16];

		snprintf(want, sizeof(want), (i * 3) % 2 ? "Key-%02zu" : "key-%02zu",
		    i * 3);
		ok = strcmp(names[i], want) == 0;
	}
	tap_ok(ok, "20 deleted keys listed in order, pages of 6 (%d pages)", pages);
	tap_ok(page_all(st, "other", 25, false, names, 80, &count, &pages) == 0 &&
	    count == 1, "vaults are separate");
	kb_store_close(st);
}

/* ------------------------------------------------------- list cache */

/*
 * A listing as one text, a line a key, from a connection of its own and
 * a query of its own (the latest version as the largest id, not the
 * store's latest_id), against the store's pages walked at a page size.
 */
#define LC_TEXT 65536

static void
lc_line(char *buf, size_t n, const char *name, const char *ver, int en,
    long long nbf, long long exp, long long cr, long long up,
    const char *tags, long long size, long long dd, long long spd)
{
	size_t l = strlen(buf);

	snprintf(buf + l, n - l, "%s|%s|%d|%lld|%lld|%lld|%lld|%s|%lld|%lld|%lld\n",
	    name, ver, en, nbf, exp, cr, up, tags, size, dd, spd);
}

static int
lc_ref(const char *path, const char *vault, bool deleted, const char *after,
    unsigned max, char *buf, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	unsigned got = 0;
	int rc;

	buf[0] = '\0';
	if ((rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(db, "SELECT k.name, v.version, v.enabled, "
	    "ifnull(v.nbf, -1), ifnull(v.exp, -1), v.created, v.updated, v.tags, "
	    "v.key_size, ifnull(k.deleted_date, -1), "
	    "ifnull(k.scheduled_purge_date, -1) FROM keys k "
	    "JOIN vaults a ON a.id = k.vault_id "
	    "JOIN versions v ON v.id = (SELECT max(id) FROM versions "
	    "WHERE key_id = k.id) WHERE a.name_lc = ?1 AND k.state = ?2 "
	    "AND k.name_lc > lower(?3) ORDER BY k.name_lc", -1, &s, NULL)) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(s, 1, vault, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, deleted ? "deleted" : "active", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, after, -1, SQLITE_STATIC);
	while (got < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		lc_line(buf, n, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1), sqlite3_column_int(s, 2),
		    sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
		    sqlite3_column_int64(s, 5), sqlite3_column_int64(s, 6),
		    (const char *)sqlite3_column_text(s, 7), sqlite3_column_int64(s, 8),
		    sqlite3_column_int64(s, 9), sqlite3_column_int64(s, 10));
		got++;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
 out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return rc;
}

/* Items as lc_ref's lines; 0, or -1 if an item's derived fields are off. */
static int
lc_items(const struct kb_store_key *it, size_t n, const char *level,
    unsigned days, char *buf, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(it[i].recovery_level, level) != 0 ||
		    it[i].recoverable_days != days)
			return -1;
		lc_line(buf, len, it[i].name, it[i].version, it[i].enabled,
		    it[i].has_nbf ? (long long)it[i].nbf : -1,
		    it[i].has_exp ? (long long)it[i].exp : -1,
		    (long long)it[i].created, (long long)it[i].updated,
		    it[i].tags_json, (long long)it[i].key_size,
		    it[i].deleted ? (long long)it[i].deleted_date : -1,
		    it[i].deleted ? (long long)it[i].scheduled_purge_date : -1);
	}
	return 0;
}

/* Walk a whole listing (or one page after a cursor) and compare it with
 * the reference; 1 if they agree. */
static int
lc_check(struct kb_store *st, const char *path, const char *vault,
    bool deleted, unsigned limit, const char *after, bool one_page)
{
	static char got[LC_TEXT], want[LC_TEXT];
	struct kb_store_vault va;
	struct kb_store_key *items;
	char *cur = NULL, *next = NULL;
	size_t n;
	int r, pages = 0;

	got[0] = '\0';
	if (kb_store_vault_get(st, vault, &va) != 0 ||
	    lc_ref(path, vault, deleted, after != NULL ? after : "",
	    one_page ? limit : UINT_MAX, want, sizeof(want)) != SQLITE_OK)
		return 0;
	if (after != NULL && (cur = strdup(after)) == NULL)
		return 0;
	do {
		r = list_one(st, vault, deleted, cur, limit, &items, &n, &next);
		free(cur);
		cur = NULL;
		if (r != 0 || lc_items(items, n, kv_recovery_level(va.retention_days,
		    va.purge_protection), va.retention_days, got, sizeof(got)) != 0 ||
		    (next != NULL && n != limit)) {
			kb_store_keys_free(items, n);
			free(next);
			return 0;
		}
		kb_store_keys_free(items, n);
		cur = next;
		next = NULL;
	} while (cur != NULL && !one_page && ++pages < 10000);
	free(cur);
	if (strcmp(got, want) != 0) {
		tap_diag("%s %s listing, pages of %u after '%s': store and "
		    "reference differ", vault, deleted ? "deleted" : "key",
		    limit, after != NULL ? after : "");
		tap_diag("store:\n%s", got);
		tap_diag("reference:\n%s", want);
		return 0;
	}
	return 1;
}

static uint32_t lc_rng;

static uint32_t
lc_rand(uint32_t n)
{
	lc_rng ^= lc_rng << 13;
	lc_rng ^= lc_rng >> 17;
	lc_rng ^= lc_rng << 5;
	return lc_rng % n;
}

/* One write of a random kind on a random name of kvc (or of kvd); it
 * may fail as the store's rules say, which must change nothing.  0 if
 * it was applied. */
static int
lc_write(struct kb_store *st, unsigned step, unsigned *vers)
{
	static const char *const tags[] = { "{}", "{\"a\":\"1\"}",
	    "{\"team\":\"pki\",\"x\":\"y\"}" };
	const char *vault = lc_rand(5) == 0 ? "kvd" : "kvc";
	struct kb_store_new_version v;
	struct kb_store_update u;
	struct kb_store_intent *in = NULL;
	int64_t now = T0 + step;
	char nm[24];
	int r = -1;

	snprintf(nm, sizeof(nm), lc_rand(2) ? "Name-%02u" : "name-%02u",
	    lc_rand(40));
	switch (lc_rand(6)) {
	case 0:
	case 1:
		v = nv_rsa(++*vers);
		v.enabled = lc_rand(4) != 0;
		v.tags_json = tags[lc_rand(3)];
		r = kb_store_add_version(st, &officer, vault, nm, &v, now, NULL);
		break;
	case 2:
		memset(&u, 0, sizeof(u));
		u.set_tags = true;
		u.tags_json = tags[lc_rand(3)];
		u.set_enabled = true;
		u.enabled = lc_rand(2);
		u.set_exp = true;
		u.has_exp = lc_rand(2);
		u.exp = now + 1000;
		r = kb_store_update(st, &officer, vault, nm, NULL, &u, now, NULL);
		break;
	case 3:
		r = kb_store_delete(st, &officer, vault, nm, now, NULL);
		break;
	case 4:
		r = kb_store_recover(st, &officer, vault, nm, now, NULL);
		break;
	case 5:
		if ((r = kb_store_intent_begin_purge(st, &officer, vault, nm, now,
		    &in)) == 0)
			r = lc_rand(4) == 0 ? kb_store_intent_abort(st, in->id, now) :
			    kb_store_intent_commit(st, in->id, now, NULL);
		kb_store_intent_free(in);
		break;
	}
	return r;
}

/* What building listings may cost: about twice the SQL pages' rows
 * (each try reads at most what the pages had, tries double apart). */
static int
lc_bound(const struct kb_store_list_stats *ls)
{
	return ls->build_rows <= 2 * ls->paged_rows + ls->builds + ls->abandoned;
}

/*
 * Seven vaults of 30 keys walked at once, a page of each in turn, so
 * that each page of a vault finds its listing evicted by the others
 * (four slots): every walk still right, and the builds, which can never
 * finish, read no more than the bound.
 */
static void
lc_thrash(struct kb_store *st, const char *path)
{
	static char got[7][4096], want[4096];
	char *cur[7] = { NULL }, *next, vault[8], nm[16];
	struct kb_store_list_stats a, b;
	struct kb_store_new_version v;
	struct kb_store_key *items;
	struct kb_store_vault va;
	int done = 0, bad = 0, made = 0, turn, i;
	size_t n;

	for (i = 0; i < 7; i++) {
		snprintf(vault, sizeof(vault), "thr%d", i);
		MUST(kb_store_vault_ensure(st, &sys_actor, vault, 7, false, T0));
		for (int k = 0; k < 30; k++) {
			snprintf(nm, sizeof(nm), "t%d-%02d", i, k);
			v = nv_rsa(90000 + (unsigned)(i * 100 + k));
			if (kb_store_add_version(st, &officer, vault, nm, &v, T0,
			    NULL) == 0)
				made++;
		}
		got[i][0] = '\0';
	}
	tap_is_int(made, 210, "seven vaults of 30 keys");
	kb_store_list_stats(st, &a);
	for (turn = 0; done != 0x7f && turn < 1000; turn++) {
		i = turn % 7;
		if (done & (1 << i))
			continue;
		snprintf(vault, sizeof(vault), "thr%d", i);
		items = NULL;
		n = 0;
		next = NULL;
		if (kb_store_list_keys(st, vault, cur[i], 4, &items, &n, &next) != 0 ||
		    kb_store_vault_get(st, vault, &va) != 0 ||
		    lc_items(items, n, kv_recovery_level(7, false), 7, got[i],
		    sizeof(got[i])) != 0)
			bad++;
		kb_store_keys_free(items, n);
		free(cur[i]);
		if ((cur[i] = next) == NULL)
			done |= 1 << i;
	}
	kb_store_list_stats(st, &b);
	for (i = 0; i < 7; i++) {
		snprintf(vault, sizeof(vault), "thr%d", i);
		if (lc_ref(path, vault, false, "", UINT_MAX, want, sizeof(want)) !=
		    SQLITE_OK || strcmp(got[i], want) != 0)
			bad++;
		free(cur[i]);
	}
	tap_ok(done == 0x7f && bad == 0, "seven walks of 30 keys, a page of each "
	    "in turn, all right");
	b.build_rows -= a.build_rows;
	b.paged_rows -= a.paged_rows;
	b.builds -= a.builds;
	b.abandoned -= a.abandoned;
	tap_ok(b.builds == 0 && lc_bound(&b), "no listing kept; builds read %llu "
	    "rows, the SQL pages %llu", (unsigned long long)b.build_rows,
	    (unsigned long long)b.paged_rows);
}

static void
test_list_cache(void)
{
	char path[256], after[24];
	struct kb_store *st = open_fresh("lcache.db", path, sizeof(path));
	struct kb_store_list_stats ls0, ls1;
	unsigned vers = 0, step, bad = 0, checks = 0, applied = 0;
	struct kb_store_new_version v;
	uint32_t seed = (uint32_t)time(NULL) | 1;

	lc_rng = seed;
	tap_diag("list cache: seed %u", (unsigned)seed);
	MUST(kb_store_vault_ensure(st, &sys_actor, "kvc", 7, false, T0));
	MUST(kb_store_vault_ensure(st, &sys_actor, "kvd", 30, false, T0));
	MUST(kb_store_vault_ensure(st, &sys_actor, "kve", 90, false, T0));
	v = nv_rsa(++vers);
	MUST(kb_store_add_version(st, &officer, "kve", "only", &v, T0, NULL));
	/*
	 * Random writes, each followed by listings of both vaults and both
	 * states, whole or one page after a random cursor, at random page
	 * sizes; some listings repeat, so that kept listings are built,
	 * served and dropped at every point of the sequence.  kvc switches
	 * to purge protection half-way (its items' recovery level moves).
	 */
	for (step = 0; step < 400; step++) {
		if (step == 200)
			MUST(kb_store_vault_ensure(st, &sys_actor, "kvc", 7, true,
			    T0 + step));
		if (lc_write(st, step, &vers) == 0)
			applied++;
		for (unsigned k = lc_rand(4); k > 0; k--) {
			const char *vault = lc_rand(3) == 0 ? "kvd" :
			    lc_rand(8) == 0 ? "kve" : "kvc";
			bool del = lc_rand(3) == 0, one = lc_rand(3) == 0;
			unsigned limit = 1 + lc_rand(30);

			snprintf(after, sizeof(after), "name-%02u", lc_rand(42));
			checks++;
			if (!lc_check(st, path, vault, del, limit,
			    one ? after : NULL, one))
				bad++;
		}
	}
	kb_store_list_stats(st, &ls0);
	tap_ok(applied > 100 && applied < 390, "%u of the 400 writes applied, "
	    "the others refused", applied);
	tap_is_int(bad, 0, "%u listings during them match a reference query",
	    checks);
	tap_ok(ls0.builds > 20 && ls0.cached_pages > 100 && ls0.sql_pages > 100,
	    "pages came both from kept listings and from SQLite (builds %llu, "
	    "kept pages %llu, SQLite pages %llu)", (unsigned long long)ls0.builds,
	    (unsigned long long)ls0.cached_pages,
	    (unsigned long long)ls0.sql_pages);
	tap_is_int((long long)ls0.over_budget, 0, "none over the budget");
	tap_ok(lc_bound(&ls0), "builds read %llu rows, the SQL pages %llu",
	    (unsigned long long)ls0.build_rows,
	    (unsigned long long)ls0.paged_rows);

	/*
	 * After a write, pages come from SQLite until they have read as many
	 * rows as the listing had (the first page at least), then the
	 * listing is built again: by the next walk at the latest.
	 */
	tap_ok(lc_check(st, path, "kvc", false, 5, NULL, false) &&
	    lc_check(st, path, "kvc", false, 5, NULL, false), "two walks");
	kb_store_list_stats(st, &ls0);
	tap_ok(ls0.bytes > 0, "listings held: %zu bytes", ls0.bytes);
	v = nv_rsa(++vers);
	MUST(kb_store_add_version(st, &officer, "kvc", "zz-new", &v, T0 + 500, NULL));
	tap_ok(lc_check(st, path, "kvc", false, 5, NULL, false), "a walk after a write");
	kb_store_list_stats(st, &ls1);
	tap_ok(ls1.sql_pages > ls0.sql_pages && ls1.builds <= ls0.builds + 1,
	    "began in SQLite (%llu pages), built at most once",
	    (unsigned long long)(ls1.sql_pages - ls0.sql_pages));
	tap_ok(lc_check(st, path, "kvc", false, 5, NULL, false), "the next walk");
	kb_store_list_stats(st, &ls1);
	tap_ok(ls1.builds == ls0.builds + 1, "the listing was built again once");
	tap_ok(lc_check(st, path, "kvc", false, 5, NULL, false), "a third walk");
	kb_store_list_stats(st, &ls0);
	tap_ok(ls0.builds == ls1.builds && ls0.sql_pages == ls1.sql_pages &&
	    ls0.cached_pages > ls1.cached_pages, "all from the kept listing");

	/* A write that fails changes nothing and keeps the listing. */
	v = nv_rsa(vers);
	tap_ok(kb_store_add_version(st, &officer, "kvc", "zz-new", &v, T0 + 501,
	    NULL) != 0, "a duplicate version is refused");
	tap_ok(lc_check(st, path, "kvc", false, 7, NULL, false), "listing unchanged");

	lc_thrash(st, path);

	/* Six listings in four slots: each still right after eviction. */
	bad = 0;
	for (step = 0; step < 24; step++)
		if (!lc_check(st, path, step % 3 == 0 ? "kvc" : step % 3 == 1 ?
		    "kvd" : "kve", step % 2 == 0, 3 + step % 5, NULL, false))
			bad++;
	tap_is_int(bad, 0, "three vaults, both states, round robin");

	/* A budget too small for kvc: its pages come from SQLite, the
	 * small vaults are still kept, and a failed build backs off. */
	kb_store_list_budget(st, 2048);
	kb_store_list_stats(st, &ls0);
	tap_ok(ls0.bytes == 0, "a new budget drops what was kept");
	bad = 0;
	for (step = 0; step < 12; step++)
		if (!lc_check(st, path, step % 2 ? "kve" : "kvc", false, 4, NULL,
		    false))
			bad++;
	kb_store_list_stats(st, &ls1);
	tap_is_int(bad, 0, "listings right under a 2 KiB budget");
	tap_ok(ls1.over_budget > ls0.over_budget && ls1.bytes <= 2048 &&
	    ls1.cached_pages > ls0.cached_pages, "kvc over the budget (%llu "
	    "tries), kve kept; %zu bytes held",
	    (unsigned long long)(ls1.over_budget - ls0.over_budget), ls1.bytes);
	tap_ok(lc_bound(&ls1), "builds read %llu rows, the SQL pages %llu",
	    (unsigned long long)ls1.build_rows,
	    (unsigned long long)ls1.paged_rows);
	kb_store_list_budget(st, 0);
	kb_store_list_stats(st, &ls0);
	tap_ok(lc_check(st, path, "kve", false, 4, NULL, false) &&
	    lc_check(st, path, "kve", false, 4, NULL, false), "budget 0");
	kb_store_list_stats(st, &ls1);
	tap_ok(ls1.builds == ls0.builds && ls1.cached_pages == ls0.cached_pages &&
	    ls1.bytes == 0, "keeps nothing");
	kb_store_close(st);
}

/* ------------------------------------------------- delete/recover/purge */

static void
test_lifecycle(void)
{
	char path[256];
	struct kb_store *st = open_fresh("life.db", path, sizeof(path));
	struct kb_store_new_version v;
	struct kb_store_key *k = NULL;
	struct kb_store_intent *in = NULL;
	struct kb_store_due *due = NULL;
	struct kb_store_object *objs = NULL;
	size_t n = 0;
	int r;

	MUST(kb_store_vault_ensure(st, &sys_actor, "soft", 7, false, T0));
	MUST(kb_store_vault_ensure(st, &sys_actor, "prot", 30, true, T0));
	v = nv_rsa(1);
	MUST(kb_store_add_version(st, &officer, "soft", "k", &v, T0, NULL));
	v = nv_rsa(2);
	MUST(kb_store_add_version(st, &officer, "soft", "k", &v, T0, NULL));

	MUST(kb_store_get_key(st, "soft", "k", NULL, &k));  /* cached */
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_delete(st, &officer, "soft", "K", T0 + 5, &k), 0,
	    "soft delete");
	tap_ok(k != NULL && k->deleted && k->deleted_date == T0 + 5 &&
	    k->scheduled_purge_date == T0 + 5 + 7 * DAY &&
	    strcmp(k->version, "00000000000000000000000000000002") == 0,
	    "deleted bundle: dates from the vault's 7-day retention, latest version");
	tap_ok(k != NULL && strcmp(k->recovery_level,
	    "CustomizedRecoverable+Purgeable") == 0 && k->recoverable_days == 7,
	    "recoveryLevel CustomizedRecoverable+Purgeable, 7 days");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_get_key(st, "soft", "k", NULL, &k), KB_ERR_NOT_FOUND,
	    "a deleted key is not found");
	tap_is_int(kb_store_get_key(st, "soft", "k",
	    "00000000000000000000000000000001", &k), KB_ERR_NOT_FOUND,
	    "nor any of its versions (delete covers all versions)");
	v = nv_rsa(3);
	tap_is_int(kb_store_add_version(st, &officer, "soft", "k", &v, T0, NULL),
	    KB_ERR_CONFLICT, "its name is taken (ObjectIsDeletedButRecoverable)");
	tap_is_int(kb_store_intent_begin_create(st, &officer, "soft", "K", &v, T0,
	    &in), KB_ERR_CONFLICT, "also through an intent");
	tap_is_int(kb_store_delete(st, &officer, "soft", "k", T0, NULL),
	    KB_ERR_NOT_FOUND, "deleting it again: NOT_FOUND");
	{
		struct kb_store_update u;

		memset(&u, 0, sizeof(u));
		u.set_enabled = true;
		tap_is_int(kb_store_update(st, &officer, "soft", "k", NULL, &u, T0,
		    NULL), KB_ERR_NOT_FOUND, "updating it: NOT_FOUND");
	}
	tap_is_int(kb_store_get_deleted(st, "soft", "k", &k), 0, "get deleted");
	tap_ok(k != NULL && k->deleted && strcmp(k->name, "k") == 0,
	    "deleted key found");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_recover(st, &officer, "soft", "k", T0 + 6, &k), 0,
	    "recover");
	tap_ok(k != NULL && !k->deleted && k->deleted_date == 0,
	    "recovered key active again");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_get_key(st, "soft", "k",
	    "00000000000000000000000000000001", &k), 0, "all versions are back");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_recover(st, &officer, "soft", "k", T0, NULL),
	    KB_ERR_NOT_FOUND, "recover of an active key: NOT_FOUND");
	tap_is_int(kb_store_get_deleted(st, "soft", "k", &k), KB_ERR_NOT_FOUND,
	    "get deleted of an active key: NOT_FOUND");
	tap_is_int(kb_store_intent_begin_purge(st, &officer, "soft", "k", T0, &in),
	    KB_ERR_NOT_FOUND, "purge of an active key: NOT_FOUND");

	/* Purge without protection: at any time. */
	tap_is_int(kb_store_delete(st, &officer, "soft", "k", T0 + 10, NULL), 0,
	    "delete again");
	tap_is_int(kb_store_intent_begin_purge(st, &officer, "soft", "k", T0 + 11,
	    &in), 0, "begin purge before the scheduled date (no protection)");
	tap_ok(in != NULL && in->op == KB_STORE_OP_PURGE &&
	    strstr(in->payload, "00000000000000000000000000000001") != NULL &&
	    strstr(in->payload, "00000000000000000000000000000002") != NULL,
	    "the purge intent lists the objects to destroy: %s",
	    in ? in->payload : "");
	tap_is_int(kb_store_recover(st, &officer, "soft", "k", T0, NULL),
	    KB_ERR_CONFLICT, "recover while a purge is in progress: CONFLICT");
	{
		struct kb_store_intent *in2 = NULL;

		tap_is_int(kb_store_intent_begin_purge(st, &officer, "soft", "k",
		    T0 + 11, &in2), KB_ERR_CONFLICT, "a second purge: CONFLICT");
	}
	tap_is_int(kb_store_intent_commit(st, in->id, T0 + 12, &k), 0,
	    "commit the purge");
	tap_ok(k == NULL, "a purge returns no key");
	kb_store_intent_free(in);
	in = NULL;
	tap_is_int(kb_store_get_deleted(st, "soft", "k", &k), KB_ERR_NOT_FOUND,
	    "purged: gone from the deleted list");
	tap_is_int(kb_store_key_objects(st, "soft", "k", &objs, &n),
	    KB_ERR_NOT_FOUND, "and no objects remain in the store");
	tap_is_int(raw_int(path, "SELECT count(*) FROM versions"), 0,
	    "versions removed by the cascade");
	v = nv_rsa(1);
	tap_is_int(kb_store_add_version(st, &officer, "soft", "k", &v, T0 + 13, NULL),
	    0, "the name is free again (even version ids may repeat)");
	tap_is_int(audit_count(path, "op = 'purge' AND result = 'ok'"), 1,
	    "purge audited");

	/* Purge protection. */
	v = nv_rsa(7);
	MUST(kb_store_add_version(st, &officer, "prot", "pk", &v, T0, NULL));
	tap_is_int(kb_store_delete(st, &officer, "prot", "pk", T0 + 100, &k), 0,
	    "delete under purge protection");
	tap_ok(k != NULL && strcmp(k->recovery_level, "CustomizedRecoverable") == 0,
	    "recoveryLevel CustomizedRecoverable (no +Purgeable)");
	kb_store_key_free(k);
	k = NULL;
	r = kb_store_intent_begin_purge(st, &officer, "prot", "pk",
	    T0 + 100 + 30 * DAY - 1, &in);
	tap_is_int(r, KB_ERR_DENIED, "purge before scheduledPurgeDate: DENIED (403)");
	tap_ok(strstr(kb_error_detail(r), "purge protection") != NULL,
	    "message names purge protection: %s", kb_error_detail(r));
	tap_ok(in == NULL, "no intent on denial");
	tap_is_int(audit_count(path, "op = 'purge' AND result = 'denied' AND "
	    "key = 'pk' AND uid = 1000 AND role = 'officer'"), 1,
	    "the denial is audited");
	tap_is_int(raw_int(path, "SELECT count(*) FROM intents"), 0,
	    "and left no intent");
	tap_is_int(kb_store_due_for_purge(st, T0 + 100 + 30 * DAY - 1, 10, &due, &n),
	    0, "due_for_purge before the date");
	tap_is_int(n, 0, "nothing is due");
	free(due);
	due = NULL;
	tap_is_int(kb_store_due_for_purge(st, T0 + 100 + 30 * DAY, 10, &due, &n), 0,
	    "due_for_purge at the date");
	tap_ok(n == 1 && strcmp(due[0].vault, "prot") == 0 &&
	    strcmp(due[0].name, "pk") == 0 &&
	    due[0].scheduled_purge_date == T0 + 100 + 30 * DAY, "the key is due");
	free(due);
	due = NULL;
	tap_is_int(kb_store_intent_begin_purge(st, &sys_actor, "prot", "pk",
	    T0 + 100 + 30 * DAY, &in), 0, "purge allowed once due");
	tap_ok(in != NULL && strcmp(in->role, "system") == 0, "system purge");
	tap_is_int(kb_store_intent_commit(st, in != NULL ? in->id : 0,
	    T0 + 100 + 30 * DAY, NULL), 0, "commit it");
	kb_store_intent_free(in);
	in = NULL;
	tap_is_int(kb_store_due_for_purge(st, T0 + 1000 * DAY, 10, &due, &n), 0,
	    "due_for_purge later");
	tap_is_int(n, 0, "nothing left");
	free(due);
	due = NULL;

	/* due_for_purge: order and limit across vaults. */
	{
		const char *names[] = { "a1", "a2", "a3" };
		int i;

		for (i = 0; i < 3; i++) {
			v = nv_rsa(50u + (unsigned)i);
			MUST(kb_store_add_version(st, &officer, i == 1 ? "prot" : "soft",
			    names[i], &v, T0, NULL));
		}
		/* soft: 7 days, prot: 30 days. */
		MUST(kb_store_delete(st, &officer, "soft", "a1", T0 + 3 * DAY, NULL));
		MUST(kb_store_delete(st, &officer, "prot", "a2", T0 - 25 * DAY, NULL));
		MUST(kb_store_delete(st, &officer, "soft", "a3", T0, NULL));
		tap_is_int(kb_store_due_for_purge(st, T0 + 100 * DAY, 2, &due, &n), 0,
		    "due_for_purge with limit 2");
		/* a2: T0 - 25 d + 30 d; a3: T0 + 7 d; a1: T0 + 3 d + 7 d. */
		tap_ok(n == 2 && strcmp(due[0].name, "a2") == 0 &&
		    strcmp(due[1].name, "a3") == 0,
		    "earliest scheduled purge date first, across vaults");
		free(due);
		due = NULL;
		tap_is_int(kb_store_due_for_purge(st, T0, 0, &due, &n),
		    KB_ERR_INVALID, "limit 0 refused");
	}
	kb_store_close(st);
}

/* ------------------------------------------------------------- intents */

static void
test_intents(void)
{
	char path[256];
	struct kb_store *st = open_fresh("intents.db", path, sizeof(path));
	struct kb_store_new_version v;
	struct kb_store_intent *in = NULL, *in2 = NULL, *list = NULL;
	struct kb_store_key *k = NULL;
	struct kb_store_object *objs = NULL;
	unsigned char id[16];
	size_t n = 0;
	int64_t id1, id2;
	char msg[256];

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	v = nv_rsa(0xa1);
	v.tags_json = "{\"t\":\"v\"}";
	v.has_nbf = true;
	v.nbf = 5;
	tap_is_int(kb_store_intent_begin_create(st, &officer, "kvt", "NewKey", &v, T0,
	    &in), 0, "begin a create intent");
	tap_ok(in != NULL && in->op == KB_STORE_OP_CREATE &&
	    strcmp(in->p11_label, "NewKey") == 0 && in->p11_id[15] == 0xa1 &&
	    strcmp(in->version, "000000000000000000000000000000a1") == 0 &&
	    in->uid == 1000 && strcmp(in->role, "officer") == 0,
	    "the intent names the object to create");
	id1 = in != NULL ? in->id : 0;
	tap_is_int(kb_store_get_key(st, "kvt", "newkey", NULL, &k), KB_ERR_NOT_FOUND,
	    "before commit the key does not exist");
	tap_is_int(kb_store_object_known(st, "kvt", "NewKey", in->p11_id), 0,
	    "the intent's object is known (the start-up sweep keeps it)");
	memset(id, 0x55, sizeof(id));
	tap_is_int(kb_store_object_known(st, "kvt", "NewKey", id), KB_ERR_NOT_FOUND,
	    "an unknown object is not");
	tap_is_int(kb_store_intent_begin_create(st, &officer, "kvt", "newkey", &v, T0,
	    &in2), KB_ERR_CONFLICT, "the same version in a second intent: CONFLICT");
	tap_is_int(kb_store_add_version(st, &officer, "kvt", "newkey", &v, T0, NULL),
	    KB_ERR_CONFLICT, "or directly");
	v = nv_rsa(0xa2);
	tap_is_int(kb_store_intent_begin_create(st, &officer, "kvt", "NEWKEY", &v, T0,
	    &in2), 0, "a second create of the same new name (other case)");
	tap_ok(in2 != NULL && strcmp(in2->p11_label, "NewKey") == 0,
	    "labels its object like the first intent: %s",
	    in2 ? in2->p11_label : "");
	id2 = in2 != NULL ? in2->id : 0;
	kb_store_intent_free(in);
	kb_store_intent_free(in2);
	in = in2 = NULL;

	/* Simulated crash: close without committing, reopen. */
	kb_store_close(st);
	st = NULL;
	tap_is_int(kb_store_open(path, &st), 0, "reopen after a 'crash'");
	tap_is_int(kb_store_intents_open(st, &list, &n), 0, "list open intents");
	tap_ok(n == 2 && list[0].id == id1 && list[1].id == id2 &&
	    list[0].op == KB_STORE_OP_CREATE && list[0].p11_id[15] == 0xa1 &&
	    strcmp(list[0].p11_label, "NewKey") == 0 &&
	    strstr(list[0].payload, "\"tags\":{\"t\":\"v\"}") != NULL,
	    "both intents survived, oldest first, with their payload");
	kb_store_intents_free(list, n);
	list = NULL;

	/* Roll forward the first (object found), back the second. */
	tap_is_int(audit_count(path, "op = 'create'"), 0, "no audit before commit");
	tap_is_int(kb_store_intent_commit(st, id1, T0 + 1, &k), 0,
	    "roll forward: commit");
	tap_ok(k != NULL && strcmp(k->name, "NewKey") == 0 && k->has_nbf &&
	    k->nbf == 5 && strcmp(k->tags_json, "{\"t\":\"v\"}") == 0 &&
	    k->created == T0 + 1, "the version is applied from the payload alone");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(kb_store_intent_abort(st, id2, T0 + 2), 0, "roll back: abort");
	tap_is_int(kb_store_key_objects(st, "kvt", "newkey", &objs, &n), 0,
	    "the key's objects");
	tap_ok(n == 1 && objs[0].p11_id[15] == 0xa1, "only the committed version");
	free(objs);
	objs = NULL;
	tap_is_int(audit_count(path, "op = 'create' AND result = 'ok' AND "
	    "version = '000000000000000000000000000000a1' AND uid = 1000"), 1,
	    "commit audited with the requester");
	tap_is_int(audit_count(path, "op = 'create' AND result = 'failed' AND "
	    "version = '000000000000000000000000000000a2'"), 1, "abort audited");
	tap_is_int(kb_store_intents_open(st, &list, &n), 0, "list again");
	tap_is_int(n, 0, "no intent left open");
	kb_store_intents_free(list, n);
	list = NULL;
	tap_is_int(kb_store_intent_commit(st, id1, T0, NULL), KB_ERR_NOT_FOUND,
	    "committing a closed intent: NOT_FOUND");
	tap_is_int(kb_store_intent_abort(st, id2, T0), KB_ERR_NOT_FOUND,
	    "aborting a closed intent: NOT_FOUND");

	/* Rotate: a create intent on an existing key. */
	v = nv_rsa(0xa3);
	tap_is_int(kb_store_intent_begin_create(st, &officer, "kvt", "newkey", &v, T0,
	    &in), 0, "rotate: begin a create on an existing key");
	tap_ok(in != NULL && strcmp(in->p11_label, "NewKey") == 0,
	    "labelled with the key's display name");

	/* A failed apply writes nothing, not even its audit record. */
	tap_is_int(raw_exec(path, "CREATE TRIGGER fail_versions BEFORE INSERT ON "
	    "versions BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
	    msg, sizeof(msg)), 0, "raw: inject a failure into version inserts");
	tap_is_int(kb_store_intent_commit(st, in->id, T0 + 3, &k), KB_ERR_CONFLICT,
	    "the commit fails");
	tap_is_int(audit_count(path, "op = 'create' AND version = "
	    "'000000000000000000000000000000a3'"), 0,
	    "no audit record of the failed apply");
	tap_is_int(raw_int(path, "SELECT count(*) FROM intents"), 1,
	    "the intent is still open");
	v = nv_rsa(0xb1);
	tap_is_int(kb_store_intent_begin_create(st, &officer, "kvt", "Fresh", &v, T0,
	    &in2), 0, "a create of a new key");
	tap_ok(kb_store_intent_commit(st, in2->id, T0, NULL) != 0,
	    "its commit fails after inserting the key row");
	tap_is_int(raw_int(path, "SELECT count(*) FROM keys WHERE name_lc = 'fresh'"),
	    0, "the key row was rolled back with it");
	tap_is_int(raw_exec(path, "DROP TRIGGER fail_versions", NULL, 0), 0,
	    "raw: remove the failure");
	tap_is_int(kb_store_intent_commit(st, in->id, T0 + 4, NULL), 0,
	    "the retried commit succeeds");
	tap_is_int(kb_store_intent_commit(st, in2->id, T0 + 4, NULL), 0,
	    "so does the other");
	tap_is_int(audit_count(path, "op = 'create' AND result = 'ok'"), 3,
	    "exactly one audit record per applied create");
	kb_store_intent_free(in);
	kb_store_intent_free(in2);
	in = in2 = NULL;

	/* Delete races a create intent: the version joins the deleted key. */
	v = nv_rsa(0xa4);
	MUST(kb_store_intent_begin_create(st, &officer, "kvt", "newkey", &v, T0, &in));
	tap_is_int(kb_store_delete(st, &officer, "kvt", "newkey", T0 + 5, NULL), 0,
	    "delete while a create intent is open");
	tap_is_int(kb_store_intent_begin_purge(st, &officer, "kvt", "newkey", T0 + 6,
	    &in2), KB_ERR_CONFLICT, "purge waits for the open create");
	tap_is_int(kb_store_intent_commit(st, in->id, T0 + 6, &k), 0,
	    "the create commits");
	tap_ok(k != NULL && k->deleted, "its version belongs to the deleted key");
	kb_store_key_free(k);
	k = NULL;
	kb_store_intent_free(in);
	in = NULL;
	tap_is_int(kb_store_intent_begin_purge(st, &officer, "kvt", "newkey", T0 + 7,
	    &in), 0, "now the purge may begin");
	tap_ok(in != NULL && strstr(in->payload, "a4") != NULL,
	    "and covers the late version");
	tap_is_int(kb_store_intent_abort(st, in->id, T0 + 8), 0,
	    "a failed purge rolls back");
	tap_is_int(kb_store_get_deleted(st, "kvt", "newkey", &k), 0,
	    "the key is still deleted, not purged");
	kb_store_key_free(k);
	k = NULL;
	tap_is_int(audit_count(path, "op = 'purge' AND result = 'failed'"), 1,
	    "the failed purge is audited");
	kb_store_intent_free(in);
	in = NULL;
	tap_is_int(kb_store_intent_begin_create(st, &officer, "nov", "x", &v, T0,
	    &in), KB_ERR_NOT_FOUND, "create intent in an unknown vault");
	kb_store_close(st);
}

/* --------------------------------------------------------------- audit */

static void
test_audit(void)
{
	char path[256], msg[256];
	struct kb_store *st = open_fresh("audit.db", path, sizeof(path));
	struct kb_store_audit *a = NULL;
	size_t n = 0, total = 0;
	int64_t next = 0, after = 0, last = 0;
	int i, pages = 0, mono = 1;

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	for (i = 0; i < 10; i++)
		if (kb_store_audit_append(st, &officer, "kvt", "get", "somekey", NULL,
		    "denied", T0 + i) != 0)
			break;
	tap_is_int(i, 10, "ten denials appended");
	tap_is_int(kb_store_audit_append(st, &officer, "no-such-vault-is-fine",
	    "list", NULL, NULL, "denied", T0), 0,
	    "a denial may name an unknown vault");
	tap_is_int(kb_store_audit_append(st, &officer, "kvt", "get", "k", NULL,
	    "bad\nresult", T0), KB_ERR_INVALID, "control characters refused");
	tap_is_int(kb_store_audit_append(st, &officer, "kvt", "", "k", NULL, "ok",
	    T0), KB_ERR_INVALID, "empty op refused");
	tap_is_int(kb_store_audit_append(st, &officer, "kvt",
	    "an-operation-name-longer-than-32-chars", NULL, NULL, "ok", T0),
	    KB_ERR_INVALID, "overlong op refused");
	do {
		a = NULL;
		if (kb_store_audit_list(st, after, 4, &a, &n, &next) != 0)
			break;
		for (size_t j = 0; j < n; j++) {
			if (a[j].seq <= last)
				mono = 0;
			last = a[j].seq;
		}
		total += n;
		pages++;
		if (total == 1 && n > 0)
			tap_ok(strcmp(a[0].op, "vault-create") == 0 &&
			    a[0].uid == 0 && strcmp(a[0].role, "system") == 0 &&
			    a[0].time == T0, "first record: vault-create by system");
		free(a);
		after = next;
	} while (next != 0 && pages < 100);
	tap_is_int(total, 12, "twelve records listed");
	tap_is_int(pages, 3, "in three pages of 4");
	tap_ok(mono, "seq strictly increases");
	tap_is_int(kb_store_audit_list(st, 0, 0, &a, &n, &next), KB_ERR_INVALID,
	    "limit 0 refused");

	{
		/* A bearer-token principal is recorded by name. */
		static const struct kb_store_actor bot = { UINT32_MAX, "Reader",
		    "ci-bot" };
		static const struct kb_store_actor badp = { UINT32_MAX, "Reader",
		    "ci bot" };

		tap_is_int(kb_store_audit_append(st, &bot, "kvt", "authenticate",
		    NULL, NULL, "ok", T0), 0, "a principal's record appended");
		tap_is_int(kb_store_audit_append(st, &badp, "kvt", "get", NULL,
		    NULL, "ok", T0), KB_ERR_INVALID,
		    "a principal name with a space refused");
		a = NULL;
		tap_ok(kb_store_audit_list(st, last, 4, &a, &n, &next) == 0 &&
		    n == 1 && strcmp(a[0].principal, "ci-bot") == 0 &&
		    a[0].uid == UINT32_MAX && strcmp(a[0].role, "Reader") == 0,
		    "the record names the principal");
		free(a);
		a = NULL;
		tap_ok(kb_store_audit_list(st, 0, 1, &a, &n, &next) == 0 &&
		    n == 1 && a[0].principal[0] == '\0',
		    "a uid's record has no principal");
		free(a);
	}
	tap_ok(raw_exec(path, "UPDATE audit SET result = 'ok'", msg, sizeof(msg))
	    != SQLITE_OK && strstr(msg, "append-only") != NULL,
	    "UPDATE of audit refused by trigger: %s", msg);
	tap_ok(raw_exec(path, "DELETE FROM audit WHERE seq = 1", msg, sizeof(msg))
	    != SQLITE_OK && strstr(msg, "append-only") != NULL,
	    "DELETE from audit refused by trigger: %s", msg);
	tap_is_int(audit_count(path, "1"), 13, "all records still there");
	tap_is_int(audit_count(path, "hash IS NULL"), 13,
	    "hash column present, NULL until the hash chain lands");
	kb_store_close(st);
}

/* ------------------------------------------------------------- crashes */

/* Read acknowledged indexes from fd until EOF; the highest one. */
static int
drain_acks(int fd, int *count)
{
	int v, last = -1;

	*count = 0;
	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		last = v;
		(*count)++;
	}
	return last;
}

static void
test_crash(void)
{
	char path[256], buf[64];
	struct kb_store *st = open_fresh("crash.db", path, sizeof(path));
	struct kb_store_key *items = NULL;
	char *next = NULL;
	int pfd[2], status, acks, last, v, i, missing = 0;
	size_t n;
	pid_t pid;

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	kb_store_close(st);
	st = NULL;

	/* 1. A child committing keys as fast as it can, killed at a random
	 * point (mid-statement, mid-commit or between transactions). */
	if (pipe(pfd) != 0) {
		tap_ok(0, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct kb_store *cst = NULL;
		struct kb_store_new_version cv;
		char nm[32];

		close(pfd[0]);
		if (kb_store_open(path, &cst) != 0)
			_exit(2);
		for (i = 0; i < 1000000; i++) {
			snprintf(nm, sizeof(nm), "crash-%06d", i);
			cv = nv_rsa((unsigned)i + 1);
			if (kb_store_add_version(cst, &officer, "kvt", nm, &cv, T0,
			    NULL) != 0)
				_exit(3);
			/* Acknowledged only now: the commit returned. */
			if (write(pfd[1], &i, sizeof(i)) != (ssize_t)sizeof(i))
				_exit(4);
		}
		_exit(0);
	}
	close(pfd[1]);
	/* Let it acknowledge at least 40 keys, then kill it. */
	for (acks = 0; acks < 40 && read(pfd[0], &v, sizeof(v)) == (ssize_t)sizeof(v);)
		acks++;
	usleep((useconds_t)(rand() % 20000));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	last = drain_acks(pfd[0], &i);
	acks += i;
	if (last < 0)
		last = v;
	close(pfd[0]);
	tap_ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "the writer child was killed with SIGKILL after %d acknowledged keys",
	    acks);
	tap_is_str(raw_text(path, "PRAGMA integrity_check", buf, sizeof(buf)), "ok",
	    "integrity_check ok after the kill");
	tap_is_int(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0,
	    "foreign_key_check clean");
	tap_is_int(kb_store_open(path, &st), 0, "the store reopens");
	for (i = 0; i <= last; i++) {
		char nm[32];
		struct kb_store_key *k = NULL;

		snprintf(nm, sizeof(nm), "crash-%06d", i);
		if (kb_store_get_key(st, "kvt", nm, NULL, &k) != 0)
			missing++;
		kb_store_key_free(k);
	}
	tap_is_int(missing, 0, "every acknowledged key (0..%d) survived", last);
	{
		long long keys = raw_int(path, "SELECT count(*) FROM keys");
		long long vers = raw_int(path, "SELECT count(*) FROM versions");
		long long aud = audit_count(path, "op = 'create'");

		tap_ok(keys == last + 1 || keys == last + 2,
		    "at most one unacknowledged commit beyond them (%lld keys)", keys);
		tap_ok(vers == keys && aud == keys,
		    "one version and one audit record per key (%lld, %lld)", vers, aud);
	}

	/* 2. A child holding an open write transaction with many changes. */
	kb_store_close(st);
	st = NULL;
	if (pipe(pfd) != 0)
		return;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		sqlite3 *db = NULL;
		char sql[256];

		close(pfd[0]);
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(2);
		for (i = 0; i < 3000; i++) {
			snprintf(sql, sizeof(sql), "INSERT INTO keys (vault_id, name, "
			    "name_lc, state, created) VALUES (1, 'tx-%d', 'tx-%d', "
			    "'active', 0)", i, i);
			if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
				_exit(3);
		}
		sqlite3_exec(db, "DELETE FROM versions", NULL, NULL, NULL);
		/* Push pages into the WAL without committing. */
		sqlite3_exec(db, "PRAGMA cache_spill = 1", NULL, NULL, NULL);
		v = 1;
		if (write(pfd[1], &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(4);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	v = 0;
	tap_ok(read(pfd[0], &v, sizeof(v)) == (ssize_t)sizeof(v) && v == 1,
	    "a child holds an uncommitted transaction");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(pfd[0]);
	tap_is_str(raw_text(path, "PRAGMA integrity_check", buf, sizeof(buf)), "ok",
	    "integrity_check ok after killing it mid-transaction");
	tap_is_int(raw_int(path, "SELECT count(*) FROM keys WHERE name LIKE 'tx-%'"),
	    0, "none of its changes are visible");
	tap_ok(raw_int(path, "SELECT count(*) FROM versions") >= last + 1,
	    "its uncommitted delete of every version left them intact");
	tap_is_int(kb_store_open(path, &st), 0, "the store reopens");
	tap_is_int(kb_store_list_keys(st, "kvt", NULL, 5, &items, &n, &next), 0,
	    "and lists");
	tap_ok(n == 5 && strcmp(items[0].name, "crash-000000") == 0,
	    "the last committed state is intact");
	kb_store_keys_free(items, n);
	free(next);
	kb_store_close(st);
}

/* ---------------------------------------------------------------- bulk */

static void
test_bulk(void)
{
	char path[256], nm[32];
	struct kb_store *st = open_fresh("bulk.db", path, sizeof(path));
	struct kb_store_new_version v;
	struct kb_store_key *items;
	char *next = NULL, *cur = NULL;
	size_t n, total = 0;
	double t0, t1, t2;
	int i, ok = 0, pages = 0, sorted = 1;
	char prev[KV_NAME_MAX + 1] = "";

	MUST(kb_store_vault_ensure(st, &sys_actor, "kvt", 90, false, T0));
	t0 = kb_now_mono();
	for (i = 0; i < 10000; i++) {
		snprintf(nm, sizeof(nm), "bulk-%05d", (i * 7919) % 10000);
		v = nv_rsa((unsigned)i + 1);
		if (kb_store_add_version(st, &officer, "kvt", nm, &v, T0, NULL) != 0)
			break;
		ok++;
	}
	t1 = kb_now_mono();
	tap_is_int(ok, 10000, "10,000 keys inserted (one transaction each)");
	do {
		items = NULL;
		if (kb_store_list_keys(st, "kvt", cur, 25, &items, &n, &next) != 0)
			break;
		for (size_t j = 0; j < n; j++) {
			if (strcmp(prev, items[j].name) >= 0)
				sorted = 0;
			snprintf(prev, sizeof(prev), "%s", items[j].name);
		}
		total += n;
		pages++;
		kb_store_keys_free(items, n);
		free(cur);
		cur = next;
	} while (cur != NULL);
	t2 = kb_now_mono();
	tap_is_int(total, 10000, "all 10,000 listed in pages of 25");
	tap_is_int(pages, 400, "400 pages");
	tap_ok(sorted, "strictly ascending: no duplicate, no gap");
	{
		/* The first walk reads SQLite (a build may read no more
		 * rows than the pages did); the listing is kept during the
		 * second, and the third reads only memory. */
		struct kb_store_list_stats a, b;
		size_t cnt;
		int pg;

		kb_store_list_stats(st, &a);
		tap_ok(a.builds == 0 && a.sql_pages == 400 && a.cached_pages == 0,
		    "first walk from SQLite");
		tap_ok(page_all(st, "kvt", 25, false, NULL, 0, &cnt, &pg) == 0 &&
		    cnt == 10000, "second walk");
		kb_store_list_stats(st, &b);
		tap_ok(b.builds == 1 && b.cached_pages >= 200 &&
		    b.bytes < (size_t)4 << 20 && lc_bound(&b),
		    "the listing was kept (%llu pages from it): %zu bytes for "
		    "10,000 keys", (unsigned long long)b.cached_pages, b.bytes);
		tap_ok(page_all(st, "kvt", 25, false, NULL, 0, &cnt, &pg) == 0 &&
		    cnt == 10000, "third walk");
		kb_store_list_stats(st, &a);
		tap_ok(a.cached_pages == b.cached_pages + 400 &&
		    a.sql_pages == b.sql_pages, "all from memory");
	}
	tap_diag("bulk: insert %.2f s (%.0f/s), full paged listing %.3f s "
	    "(informal; sanitizers slow both)", t1 - t0, 10000 / (t1 - t0), t2 - t1);
	kb_store_close(st);
	remove_db(path);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/kbstore.XXXXXX",
	    base != NULL && strlen(base) < 40 ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return tap_skip_all("cannot create a temporary directory");
	srand((unsigned)time(NULL));
	test_rules();
	test_open();
	test_vaults();
	test_keys();
	test_paging();
	test_list_cache();
	test_lifecycle();
	test_intents();
	test_audit();
	test_crash();
	test_bulk();
	{
		static const char *const files[] = { "open.db", "other.db",
		    "perm.db", "vaults.db", "keys.db", "paging.db", "lcache.db", "life.db",
		    "intents.db", "audit.db", "crash.db", "bulk.db" };
		char p[256];

		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			path_of(p, sizeof(p), files[i]);
			remove_db(p);
		}
		rmdir(tmpdir);
	}
	return tap_done();
}
