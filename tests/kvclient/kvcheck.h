/*
 * kvcheck.h: decode one Key Vault response with kv-client's decoder for
 * its operation and compare every decoded field with the JSON it came
 * from, read independently with cJSON.  Shared by test_decode.c (the
 * spec's examples and the recordings, as files) and test_replay.c (the
 * same recordings, replayed over HTTPS).
 *
 * kvc_check() prints one TAP line per response: "ok" when the decoder
 * accepted the body and every field matched; a "#" line for each field
 * that did not.
 */
#ifndef KVCHECK_H
#define KVCHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kb_kvclient.h"

enum kvc_kind {
	KVC_NONE = 0,      /* no body expected (PurgeDeletedKey's 204) */
	KVC_BUNDLE,        /* KeyBundle */
	KVC_DELETED,       /* DeletedKeyBundle */
	KVC_LIST,          /* KeyListResult, DeletedKeyListResult */
	KVC_OP,            /* KeyOperationResult, SecureKeyOperationResult */
	KVC_VERIFY,
	KVC_RANDOM,
	KVC_BACKUP,
	KVC_RELEASE,
	KVC_POLICY,
	KVC_ERROR,         /* KeyVaultError */
};

static const char *const kvc_kind_names[] = {
	"no body", "KeyBundle", "DeletedKeyBundle", "KeyListResult",
	"KeyOperationResult", "KeyVerifyResult", "RandomBytes",
	"BackupKeyResult", "KeyReleaseResult", "KeyRotationPolicy",
	"KeyVaultError",
};

/* The decoder for an operation of the spec (examples' operationId). */
static enum kvc_kind __attribute__((unused))
kvc_kind_of_operation(const char *op)
{
	static const struct { const char *op; enum kvc_kind kind; } t[] = {
		{ "CreateKey", KVC_BUNDLE }, { "ImportKey", KVC_BUNDLE },
		{ "GetKey", KVC_BUNDLE }, { "UpdateKey", KVC_BUNDLE },
		{ "RecoverDeletedKey", KVC_BUNDLE }, { "RestoreKey", KVC_BUNDLE },
		{ "RotateKey", KVC_BUNDLE }, { "GetKeyAttestation", KVC_BUNDLE },
		{ "DeleteKey", KVC_DELETED }, { "GetDeletedKey", KVC_DELETED },
		{ "GetKeys", KVC_LIST }, { "GetKeyVersions", KVC_LIST },
		{ "GetDeletedKeys", KVC_LIST },
		{ "encrypt", KVC_OP }, { "decrypt", KVC_OP }, { "sign", KVC_OP },
		{ "wrapKey", KVC_OP }, { "unwrapKey", KVC_OP },
		{ "securewrapkey", KVC_OP }, { "secureunwrapkey", KVC_OP },
		{ "verify", KVC_VERIFY }, { "GetRandomBytes", KVC_RANDOM },
		{ "BackupKey", KVC_BACKUP }, { "release", KVC_RELEASE },
		{ "GetKeyRotationPolicy", KVC_POLICY },
		{ "UpdateKeyRotationPolicy", KVC_POLICY },
		{ "PurgeDeletedKey", KVC_NONE },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].op, op) == 0)
			return t[i].kind;
	return (enum kvc_kind)-1;
}

/* What a request names: the key and version in its path. */
struct kvc_req {
	char name[256];
	char version[64];
};

/*
 * The decoder for a request (method and path, query and host removed),
 * as the recordings have them; name and version from the path.
 */
static enum kvc_kind
kvc_kind_of_request(const char *method, const char *path, struct kvc_req *rq)
{
	char p[1024], *seg[6], *save = NULL, *s;
	size_t n = 0, len;

	memset(rq, 0, sizeof(*rq));
	snprintf(p, sizeof(p), "%s", path);
	p[strcspn(p, "?")] = '\0';
	for (s = strtok_r(p, "/", &save); s != NULL && n < 6;
	    s = strtok_r(NULL, "/", &save))
		seg[n++] = s;
	if (n == 0)
		return (enum kvc_kind)-1;
	if (n == 1 && strcmp(seg[0], "rng") == 0)
		return KVC_RANDOM;
	if (n >= 2) {
		len = strlen(seg[1]);
		snprintf(rq->name, sizeof(rq->name), "%.*s", (int)len, seg[1]);
	}
	if (strcmp(seg[0], "deletedkeys") == 0) {
		if (n == 1)
			return KVC_LIST;
		if (n == 3 && strcmp(seg[2], "recover") == 0)
			return KVC_BUNDLE;
		return strcmp(method, "DELETE") == 0 ? KVC_NONE : KVC_DELETED;
	}
	if (strcmp(seg[0], "keys") != 0)
		return (enum kvc_kind)-1;
	if (n == 1)
		return KVC_LIST;
	if (n == 2) {
		if (strcmp(seg[1], "restore") == 0) {
			rq->name[0] = '\0';
			return KVC_BUNDLE;
		}
		return strcmp(method, "DELETE") == 0 ? KVC_DELETED : KVC_BUNDLE;
	}
	if (n == 3) {
		if (strcmp(seg[2], "create") == 0 || strcmp(seg[2], "rotate") == 0)
			return KVC_BUNDLE;
		if (strcmp(seg[2], "rotationpolicy") == 0)
			return KVC_POLICY;
		if (strcmp(seg[2], "versions") == 0)
			return KVC_LIST;
		if (strcmp(seg[2], "backup") == 0)
			return KVC_BACKUP;
		snprintf(rq->version, sizeof(rq->version), "%s", seg[2]);
		return KVC_BUNDLE;
	}
	snprintf(rq->version, sizeof(rq->version), "%s", seg[2]);
	if (n == 4) {
		if (strcmp(seg[3], "verify") == 0)
			return KVC_VERIFY;
		if (strcmp(seg[3], "release") == 0)
			return KVC_RELEASE;
		if (strcmp(seg[3], "attestation") == 0)
			return KVC_BUNDLE;
		return KVC_OP;
	}
	return (enum kvc_kind)-1;
}

/* ------------------------------------------------------------ comparing */

struct kvc {
	int fields;        /* fields compared */
	int bad;           /* fields that differ */
};

static void kvc_bad(struct kvc *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
kvc_bad(struct kvc *k, const char *fmt, ...)
{
	va_list ap;

	k->bad++;
	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void
kvc_str(struct kvc *k, const char *what, const char *got, const char *want)
{
	k->fields++;
	if (got != NULL && want != NULL ? strcmp(got, want) != 0 : got != want)
		kvc_bad(k, "%s: got '%s', want '%s'", what, got ? got : "(none)",
		    want ? want : "(none)");
}

static void
kvc_int(struct kvc *k, const char *what, long long got, long long want)
{
	k->fields++;
	if (got != want)
		kvc_bad(k, "%s: got %lld, want %lld", what, got, want);
}

static const char *
kvc_jstr(const cJSON *o, const char *name)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* Decoded size of base64url text, by counting (not decoding) it. */
static long long
kvc_b64_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '=')
		n--;
	return (long long)(n * 6 / 8);
}

/* A base64url member against decoded bytes: size, and the first and
 * last byte decoded by hand. */
static int
kvc_b64_char(int c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return c ? (int)(strchr(a, c) - a) : -1;
}

static void
kvc_bytes(struct kvc *k, const char *what, const unsigned char *got,
    size_t got_len, const char *b64)
{
	long long want = b64 ? kvc_b64_len(b64) : 0;
	int first;

	k->fields++;
	if (b64 == NULL) {
		if (got != NULL)
			kvc_bad(k, "%s: present, but absent in the JSON", what);
		return;
	}
	if (got == NULL || (long long)got_len != want) {
		kvc_bad(k, "%s: %zu bytes, want %lld", what, got ? got_len : 0, want);
		return;
	}
	if (want > 0) {
		first = (kvc_b64_char(b64[0]) << 2) | (kvc_b64_char(b64[1]) >> 4);
		if (got[0] != first)
			kvc_bad(k, "%s: first byte %#x, want %#x", what, got[0], first);
	}
}

static void
kvc_time(struct kvc *k, const char *what, const cJSON *o, const char *name,
    unsigned present, unsigned bit, int64_t got)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
	char w[128];

	snprintf(w, sizeof(w), "%s.%s", what, name);
	k->fields++;
	if (!cJSON_IsNumber(j)) {
		if (present & bit)
			kvc_bad(k, "%s: present, but absent in the JSON", w);
		return;
	}
	if (!(present & bit)) {
		kvc_bad(k, "%s: absent, but %.0f in the JSON", w, j->valuedouble);
		return;
	}
	kvc_int(k, w, got, (long long)j->valuedouble);
}

static void
kvc_flag(struct kvc *k, const char *what, const cJSON *o, const char *name,
    unsigned present, unsigned bit, bool got)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);

	k->fields++;
	if (!cJSON_IsBool(j)) {
		if (present & bit)
			kvc_bad(k, "%s.%s: present, but absent in the JSON", what, name);
		return;
	}
	if (!(present & bit) || got != (bool)cJSON_IsTrue(j))
		kvc_bad(k, "%s.%s: got %s, want %s", what, name,
		    !(present & bit) ? "(none)" : got ? "true" : "false",
		    cJSON_IsTrue(j) ? "true" : "false");
}

static void
kvc_attributes(struct kvc *k, const char *what, const cJSON *o,
    const struct kb_kv_attributes *a)
{
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(o, "attributes");
	const cJSON *rd = cJSON_GetObjectItemCaseSensitive(attrs, "recoverableDays");

	kvc_flag(k, what, attrs, "enabled", a->present, KB_KV_HAS_ENABLED, a->enabled);
	kvc_flag(k, what, attrs, "exportable", a->present, KB_KV_HAS_EXPORTABLE,
	    a->exportable);
	kvc_time(k, what, attrs, "nbf", a->present, KB_KV_HAS_NBF, a->nbf);
	kvc_time(k, what, attrs, "exp", a->present, KB_KV_HAS_EXP, a->exp);
	kvc_time(k, what, attrs, "created", a->present, KB_KV_HAS_CREATED, a->created);
	kvc_time(k, what, attrs, "updated", a->present, KB_KV_HAS_UPDATED, a->updated);
	kvc_str(k, "recoveryLevel", a->recovery_level, kvc_jstr(attrs, "recoveryLevel"));
	kvc_int(k, "recoverableDays", a->present & KB_KV_HAS_RECOVERABLE_DAYS ?
	    a->recoverable_days : -1, cJSON_IsNumber(rd) ? (long long)rd->valuedouble : -1);
}

static void
kvc_tags(struct kvc *k, const cJSON *o, const struct kb_kv_tags *t)
{
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags"), *e;
	size_t i = 0;

	kvc_int(k, "number of tags", (long long)t->n,
	    cJSON_IsObject(tags) ? cJSON_GetArraySize(tags) : 0);
	cJSON_ArrayForEach(e, tags) {
		if (i >= t->n)
			break;
		kvc_str(k, "tag name", t->v[i].name, e->string);
		kvc_str(k, "tag value", t->v[i].value, e->valuestring);
		i++;
	}
}

/* kid split: id as sent, and id == vault_url/keys/name[/version]. */
static void
kvc_kid(struct kvc *k, const char *what, const struct kb_kv_kid *kid,
    const char *want_id, const struct kvc_req *rq)
{
	char joined[4200];

	kvc_str(k, what, kid->id, want_id);
	if (kid->id == NULL)
		return;
	snprintf(joined, sizeof(joined), "%s/keys/%s%s%s", kid->vault_url, kid->name,
	    kid->version ? "/" : "", kid->version ? kid->version : "");
	kvc_str(k, "vault URL + /keys/ + name + / + version", joined, want_id);
	k->fields++;
	if (strncmp(kid->vault_url, "https://", 8) != 0 || strchr(kid->vault_url + 8, '/'))
		kvc_bad(k, "vault URL %s is not https://HOST", kid->vault_url);
	/* The name (and version) the request's path named. */
	if (rq != NULL && rq->name[0] != '\0')
		kvc_str(k, "kid name = the request's key name", kid->name, rq->name);
	if (rq != NULL && rq->version[0] != '\0')
		kvc_str(k, "kid version = the request's version", kid->version,
		    rq->version);
}

static void
kvc_deleted(struct kvc *k, const cJSON *o, unsigned present,
    const struct kb_kv_deleted *d, const struct kb_kv_attributes *a)
{
	kvc_str(k, "recoveryId", d->recovery_id, kvc_jstr(o, "recoveryId"));
	kvc_time(k, "", o, "deletedDate", present, KB_KV_HAS_DELETED_DATE,
	    d->deleted_date);
	kvc_time(k, "", o, "scheduledPurgeDate", present, KB_KV_HAS_PURGE_DATE,
	    d->scheduled_purge_date);
	/* NOTES.md 1.5: purge date = deletion + recoverableDays days. */
	if ((present & KB_KV_HAS_PURGE_DATE) &&
	    (a->present & KB_KV_HAS_RECOVERABLE_DAYS))
		kvc_int(k, "scheduledPurgeDate - deletedDate",
		    d->scheduled_purge_date - d->deleted_date,
		    (long long)a->recoverable_days * 86400);
}

static void
kvc_check_bundle(struct kvc *k, const cJSON *body, const struct kvc_req *rq,
    bool deleted)
{
	struct kb_kv_key_bundle *kb = NULL;
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "key"), *ops, *e;
	const char *kty;
	size_t i = 0;
	int r;

	if ((r = kb_kv_key_bundle_parse(body, &kb)) != 0) {
		kvc_bad(k, "kb_kv_key_bundle_parse: %s", kb_error_detail(r));
		return;
	}
	kvc_kid(k, "kid", &kb->kid, kvc_jstr(key, "kid"), rq);
	kty = kvc_jstr(key, "kty");
	kvc_str(k, "kty", kb->key.kty, kty);
	kvc_str(k, "crv", kb->key.crv, kvc_jstr(key, "crv"));
	ops = cJSON_GetObjectItemCaseSensitive(key, "key_ops");
	kvc_int(k, "number of key_ops", (long long)kb->key.n_key_ops,
	    cJSON_GetArraySize(ops));
	cJSON_ArrayForEach(e, ops) {
		if (i < kb->key.n_key_ops)
			kvc_str(k, "key_ops[i]", kb->key.key_ops[i], e->valuestring);
		i++;
	}
	kvc_bytes(k, "e", kb->key.e.data, kb->key.e.len, kvc_jstr(key, "e"));
	kvc_bytes(k, "x", kb->key.x.data, kb->key.x.len, kvc_jstr(key, "x"));
	kvc_bytes(k, "y", kb->key.y.data, kb->key.y.len, kvc_jstr(key, "y"));
	if (kty != NULL && strncmp(kty, "RSA", 3) == 0) {
		/* Every RSA key in the examples and recordings is 2048 bits. */
		kvc_int(k, "n's length in bytes", (long long)kb->key.n.len, 256);
		kvc_int(k, "n's length in bits", kb->key.n_bits, 2048);
		kvc_int(k, "e = 65537", kb->key.e.len == 3 ? (kb->key.e.data[0] << 16) |
		    (kb->key.e.data[1] << 8) | kb->key.e.data[2] : -1, 65537);
	} else
		kvc_bytes(k, "n", kb->key.n.data, kb->key.n.len, kvc_jstr(key, "n"));
	if (kty != NULL && strncmp(kty, "EC", 2) == 0 && kb->key.crv != NULL &&
	    strcmp(kb->key.crv, "P-256") == 0) {
		kvc_int(k, "P-256 x is 32 bytes", (long long)kb->key.x.len, 32);
		kvc_int(k, "P-256 y is 32 bytes", (long long)kb->key.y.len, 32);
	}
	kvc_attributes(k, "attributes", body, &kb->attributes);
	kvc_tags(k, body, &kb->tags);
	kvc_flag(k, "", body, "managed", kb->present, KB_KV_HAS_MANAGED, kb->managed);
	kvc_deleted(k, body, kb->present, &kb->deleted, &kb->attributes);
	k->fields++;
	if (deleted && kb->deleted.recovery_id == NULL)
		kvc_bad(k, "a DeletedKeyBundle without recoveryId");
	kb_kv_key_bundle_free(kb);
}

static void
kvc_check_list(struct kvc *k, const cJSON *body)
{
	struct kb_kv_key_list *l = NULL;
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(body, "value"), *e;
	const char *next = kvc_jstr(body, "nextLink");
	size_t i = 0;
	int r;

	if ((r = kb_kv_key_list_parse(body, &l)) != 0) {
		kvc_bad(k, "kb_kv_key_list_parse: %s", kb_error_detail(r));
		return;
	}
	kvc_int(k, "number of items", (long long)l->n_items, cJSON_GetArraySize(value));
	cJSON_ArrayForEach(e, value) {
		if (i >= l->n_items)
			break;
		kvc_kid(k, "value[i].kid", &l->items[i].kid, kvc_jstr(e, "kid"), NULL);
		kvc_attributes(k, "value[i].attributes", e, &l->items[i].attributes);
		kvc_tags(k, e, &l->items[i].tags);
		kvc_flag(k, "value[i]", e, "managed", l->items[i].present,
		    KB_KV_HAS_MANAGED, l->items[i].managed);
		kvc_deleted(k, e, l->items[i].present, &l->items[i].deleted,
		    &l->items[i].attributes);
		i++;
	}
	kvc_str(k, "nextLink", l->next_link, next != NULL && next[0] ? next : NULL);
	kb_kv_key_list_free(l);
}

static void
kvc_check_policy(struct kvc *k, const cJSON *body)
{
	struct kb_kv_rotation_policy *p = NULL;
	const cJSON *acts = cJSON_GetObjectItemCaseSensitive(body, "lifetimeActions"), *e;
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attributes");
	size_t i = 0;
	int r;

	if ((r = kb_kv_rotation_policy_parse(body, &p)) != 0) {
		kvc_bad(k, "kb_kv_rotation_policy_parse: %s", kb_error_detail(r));
		return;
	}
	kvc_str(k, "id", p->id, kvc_jstr(body, "id"));
	kvc_int(k, "number of lifetimeActions", (long long)p->n_actions,
	    cJSON_GetArraySize(acts));
	cJSON_ArrayForEach(e, acts) {
		const cJSON *trig = cJSON_GetObjectItemCaseSensitive(e, "trigger");

		if (i >= p->n_actions)
			break;
		kvc_str(k, "action.type", p->actions[i].type,
		    kvc_jstr(cJSON_GetObjectItemCaseSensitive(e, "action"), "type"));
		kvc_str(k, "trigger.timeAfterCreate", p->actions[i].time_after_create,
		    kvc_jstr(trig, "timeAfterCreate"));
		kvc_str(k, "trigger.timeBeforeExpiry", p->actions[i].time_before_expiry,
		    kvc_jstr(trig, "timeBeforeExpiry"));
		i++;
	}
	kvc_str(k, "attributes.expiryTime", p->expiry_time, kvc_jstr(attrs, "expiryTime"));
	kvc_time(k, "attributes", attrs, "created", p->present, KB_KV_HAS_CREATED,
	    p->created);
	kvc_time(k, "attributes", attrs, "updated", p->present, KB_KV_HAS_UPDATED,
	    p->updated);
	kb_kv_rotation_policy_free(p);
}

static void
kvc_check_op(struct kvc *k, const cJSON *body, const struct kvc_req *rq)
{
	struct kb_kv_key_op_result *res = NULL;
	const char *kid = kvc_jstr(body, "kid");
	int r;

	if ((r = kb_kv_key_op_result_parse(body, &res)) != 0) {
		kvc_bad(k, "kb_kv_key_op_result_parse: %s", kb_error_detail(r));
		return;
	}
	if (kid != NULL)
		kvc_kid(k, "kid", &res->kid, kid, rq);
	else
		kvc_str(k, "no kid", res->kid.id, NULL);
	kvc_bytes(k, "value", res->value->data, res->value->len, kvc_jstr(body, "value"));
	kvc_bytes(k, "iv", res->iv.data, res->iv.len, kvc_jstr(body, "iv"));
	kvc_bytes(k, "tag", res->tag.data, res->tag.len, kvc_jstr(body, "tag"));
	kvc_bytes(k, "aad", res->aad.data, res->aad.len, kvc_jstr(body, "aad"));
	kvc_str(k, "alg", res->alg, kvc_jstr(body, "alg"));
	kb_kv_key_op_result_free(res);
}

static void
kvc_check_error(struct kvc *k, const cJSON *body)
{
	struct kb_kv_error *e = NULL;
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error"), *in;
	size_t n = 0;
	int r;

	if ((r = kb_kv_error_parse(body, &e)) != 0) {
		kvc_bad(k, "kb_kv_error_parse: %s", kb_error_detail(r));
		return;
	}
	kvc_str(k, "error.code", e->code, kvc_jstr(err, "code"));
	kvc_str(k, "error.message", e->message, kvc_jstr(err, "message"));
	for (in = cJSON_GetObjectItemCaseSensitive(err, "innererror"); in != NULL;
	    in = cJSON_GetObjectItemCaseSensitive(in, "innererror")) {
		if (n < e->n_inner)
			kvc_str(k, "innererror code", e->inner[n], kvc_jstr(in, "code"));
		n++;
	}
	kvc_int(k, "innererror depth", (long long)e->n_inner, (long long)n);
	kb_kv_error_free(e);
}

/*
 * Decode body as kind and compare with the JSON; one TAP line named
 * label.  rq (may be NULL) has the name and version the request named.
 */
static void
kvc_check(const char *label, enum kvc_kind kind, const cJSON *body,
    const struct kvc_req *rq)
{
	struct kvc k = { 0, 0 };
	struct kb_kv_bytes b = { NULL, 0 };
	struct kb_secret *sec = NULL;
	char *s = NULL;
	bool v = false;
	int r;

	switch (kind) {
	case KVC_NONE:
		k.fields++;
		if (body != NULL)
			kvc_bad(&k, "a body where none was expected");
		break;
	case KVC_BUNDLE:
	case KVC_DELETED:
		kvc_check_bundle(&k, body, rq, kind == KVC_DELETED);
		break;
	case KVC_LIST:
		kvc_check_list(&k, body);
		break;
	case KVC_OP:
		kvc_check_op(&k, body, rq);
		break;
	case KVC_VERIFY:
		if ((r = kb_kv_verify_result_parse(body, &v)) != 0)
			kvc_bad(&k, "kb_kv_verify_result_parse: %s", kb_error_detail(r));
		else
			kvc_int(&k, "value", v, cJSON_IsTrue(cJSON_GetObjectItem(body, "value")));
		break;
	case KVC_RANDOM:
		if ((r = kb_kv_random_bytes_parse(body, &sec)) != 0)
			kvc_bad(&k, "kb_kv_random_bytes_parse: %s", kb_error_detail(r));
		else
			kvc_bytes(&k, "value", sec->data, sec->len, kvc_jstr(body, "value"));
		kb_secret_free(&sec);
		break;
	case KVC_BACKUP:
		if ((r = kb_kv_backup_result_parse(body, &b)) != 0)
			kvc_bad(&k, "kb_kv_backup_result_parse: %s", kb_error_detail(r));
		else {
			kvc_bytes(&k, "value", b.data, b.len, kvc_jstr(body, "value"));
			/* Key Vault's backup blobs start with their format's name. */
			k.fields++;
			if (b.len < 26 || memcmp(b.data, "&AzureKeyVaultKeyBackupV1", 25) != 0)
				kvc_bad(&k, "the blob is not an AzureKeyVaultKeyBackupV1");
		}
		kb_kv_bytes_clear(&b);
		break;
	case KVC_RELEASE:
		if ((r = kb_kv_release_result_parse(body, &s)) != 0)
			kvc_bad(&k, "kb_kv_release_result_parse: %s", kb_error_detail(r));
		else
			kvc_str(&k, "value", s, kvc_jstr(body, "value"));
		free(s);
		break;
	case KVC_POLICY:
		kvc_check_policy(&k, body);
		break;
	case KVC_ERROR:
		kvc_check_error(&k, body);
		break;
	default:
		kvc_bad(&k, "no decoder for this response");
	}
	tap_ok(k.bad == 0 && k.fields > 0, "%s: %s decodes, %d fields match",
	    label, (unsigned)kind <= KVC_ERROR ? kvc_kind_names[kind] : "?",
	    k.fields - k.bad);
}

#endif /* KVCHECK_H */
