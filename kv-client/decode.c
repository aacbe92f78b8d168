/*
 * decode.c: Key Vault's response bodies into C structs (keys.json
 * 2026-04-01 definitions, NOTES.md 1.1-1.5).  Pure: a parsed cJSON body
 * in, a struct out, no I/O.
 *
 * Strict about types (a string where a number belongs is the peer
 * speaking something else, and the sentence names the field), lenient
 * about everything Azure really sends: unknown members are skipped, null
 * is absent, base64url comes in both alphabets with or without padding,
 * an RSA modulus may carry a leading zero byte, and every cap is well
 * above the documented limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Decoded sizes of binary fields. */
#define DEC_MAX_JWK_PART 8192          /* a 65536-bit modulus */
#define DEC_MAX_OP_VALUE (1u << 20)
#define DEC_MAX_RANDOM 4096            /* GetRandomBytes asks 1..128 */
#define DEC_MAX_SHORT 64               /* kty, crv, key_ops, durations, alg */
#define DEC_MAX_LEVEL 128              /* recoveryLevel */
#define DEC_MAX_NEXT_LINK 16384
#define DEC_MAX_MESSAGE 2048           /* error messages are cut, not refused */
#define DEC_MAX_RELEASE (1u << 20)

/* Field-path prefixes ("value[24].attributes.") stay short. */
#define PFX_LEN 64

static const char *
json_kind(const cJSON *j)
{
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsArray(j))
		return "an array";
	if (cJSON_IsObject(j))
		return "an object";
	if (cJSON_IsNull(j))
		return "null";
	return "not JSON";
}

/* A peer's text for a sentence: control characters shown as '?'. */
static const char *
shown(const char *s, char *buf, size_t n)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < n; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static int
wrong_type(const char *pfx, const char *name, const cJSON *j, const char *want)
{
	return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is malformed: "
	    "%s%s is %s, not %s", pfx, name, json_kind(j), want);
}

static int
missing(const char *pfx, const char *name)
{
	return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has no %s%s",
	    pfx, name);
}

/* A member, or NULL when absent or null (Azure's optional fields). */
static const cJSON *
member(const cJSON *obj, const char *name)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsNull(j) ? NULL : j;
}

static int
body_object(const cJSON *body)
{
	if (!cJSON_IsObject(body))
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is %s, not "
		    "a JSON object", body == NULL ? "empty" : json_kind(body));
	return 0;
}

/* *out: a copy of the string member, or NULL when absent and optional. */
static int
get_str(const cJSON *obj, const char *pfx, const char *name, size_t max,
    bool required, char **out)
{
	const cJSON *j = member(obj, name);
	char *s;

	if (j == NULL) {
		if (required)
			return missing(pfx, name);
		*out = NULL;
		return 0;
	}
	if (!cJSON_IsString(j) || j->valuestring == NULL)
		return wrong_type(pfx, name, j, "a string");
	if (strlen(j->valuestring) > max)
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s "
		    "longer than %zu bytes", pfx, name, max);
	if ((s = kb_strdup(j->valuestring)) == NULL)
		return KB_ERR_ALLOC;
	*out = s;
	return 0;
}

static int
get_bool(const cJSON *obj, const char *pfx, const char *name, unsigned bit,
    unsigned *present, bool *out)
{
	const cJSON *j = member(obj, name);

	if (j == NULL)
		return 0;
	if (!cJSON_IsBool(j))
		return wrong_type(pfx, name, j, "true or false");
	*out = cJSON_IsTrue(j);
	*present |= bit;
	return 0;
}

/*
 * A whole number in [0, max] from a JSON number.  cJSON keeps numbers
 * as doubles (valueint saturates at INT_MAX, which is 2038): integers
 * up to 2^53 are exact there.
 */
static int
whole_number(const cJSON *j, double max, int64_t *out)
{
	double d = j->valuedouble;

	if (!(d >= 0.0 && d <= max) || (double)(int64_t)d != d)
		return -1;
	*out = (int64_t)d;
	return 0;
}

/* IntDate: Unix seconds (NOTES.md 1.3). */
static int
get_time(const cJSON *obj, const char *pfx, const char *name, unsigned bit,
    unsigned *present, int64_t *out)
{
	const cJSON *j = member(obj, name);
	int64_t t;

	if (j == NULL)
		return 0;
	if (!cJSON_IsNumber(j))
		return wrong_type(pfx, name, j, "a number of seconds");
	if (whole_number(j, 9007199254740992.0, &t) != 0)
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s = "
		    "%g, not a whole number of seconds since 1970", pfx, name,
		    j->valuedouble);
	*out = t;
	*present |= bit;
	return 0;
}

static void
bytes_take(struct kb_kv_bytes *b, unsigned char *p, size_t n)
{
	b->data = p;
	b->len = n;
}

/* Base64url text of a member, or NULL (absent and optional). */
static int
get_b64_text(const cJSON *obj, const char *pfx, const char *name, size_t max,
    bool required, const char **text, size_t *len)
{
	const cJSON *j = member(obj, name);
	size_t n;

	*text = NULL;
	*len = 0;
	if (j == NULL)
		return required ? missing(pfx, name) : 0;
	if (!cJSON_IsString(j) || j->valuestring == NULL)
		return wrong_type(pfx, name, j, "a base64url string");
	n = strlen(j->valuestring);
	/* 4 characters carry 3 bytes; bounded before anything is allocated. */
	if (n / 4 > max / 3 + 1)
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s "
		    "longer than %zu bytes", pfx, name, max);
	*text = j->valuestring;
	*len = n;
	return 0;
}

static int
b64_decode(const char *pfx, const char *name, const char *s, size_t n,
    unsigned char **out, size_t *outlen)
{
	char why[160];
	int r;

	if ((r = kb_b64url_decode(s, n, out, outlen)) == 0 || r == KB_ERR_ALLOC)
		return r;
	/* Copied: kb_error_set writes where kb_error_detail reads. */
	snprintf(why, sizeof(why), "%s", kb_error_detail(r));
	return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s that is "
	    "not base64url (%s)", pfx, name, why);
}

/* Lenient base64url (kb_b64url_decode: both alphabets, padding optional). */
static int
get_bytes(const cJSON *obj, const char *pfx, const char *name, size_t max,
    bool required, struct kb_kv_bytes *out)
{
	const char *s;
	unsigned char *p = NULL;
	size_t n, plen;
	int r;

	if ((r = get_b64_text(obj, pfx, name, max, required, &s, &n)) != 0 ||
	    s == NULL)
		return r;
	if ((r = b64_decode(pfx, name, s, n, &p, &plen)) != 0)
		return r;
	if (plen > max) {
		free(p);
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s "
		    "longer than %zu bytes", pfx, name, max);
	}
	bytes_take(out, p, plen);
	return 0;
}

/* The same into wiped memory: plaintexts, unwrapped keys, random bytes. */
static int
get_secret(const cJSON *obj, const char *pfx, const char *name, size_t max,
    struct kb_secret **out)
{
	struct kb_secret *sec = NULL;
	const char *s;
	unsigned char *p = NULL;
	size_t n, plen = 0;
	int r;

	if ((r = get_b64_text(obj, pfx, name, max, true, &s, &n)) != 0)
		return r;
	if ((r = b64_decode(pfx, name, s, n, &p, &plen)) != 0)
		return r;
	if (plen > max)
		r = kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %s%s "
		    "longer than %zu bytes", pfx, name, max);
	else
		r = kb_secret_from(p, plen, &sec);
	kb_wipe(p, plen);
	free(p);
	if (r != 0)
		return r;
	*out = sec;
	return 0;
}

void
kb_kv_bytes_clear(struct kb_kv_bytes *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* ------------------------------------------------------------ identifiers */

void
kb_kv_kid_clear(struct kb_kv_kid *kid)
{
	if (kid == NULL)
		return;
	free(kid->id);    /* the one block of all four (kb_kv_kid_parse) */
	memset(kid, 0, sizeof(*kid));
}

static bool
seg_is(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/*
 * https://{vault}[/prefix]/keys/{name}[/{version}] or .../deletedkeys/{name}
 * (about-keys-secrets-certificates.md, "Object identifiers").  Names and
 * versions are taken as they come (Key Vault's own rules, 1-127 of
 * [0-9a-zA-Z-] and 32 hex digits, are the service's to enforce); only
 * what cannot be a path segment is refused.
 */
/* n bytes of s and a NUL at *w, which moves past them. */
static char *
put_str(char **w, const char *s, size_t n)
{
	char *at = *w;

	memcpy(at, s, n);
	at[n] = '\0';
	*w = at + n + 1;
	return at;
}

int
kb_kv_kid_parse(const char *id, struct kb_kv_kid *out)
{
	struct kb_kv_kid k;
	const char *path, *end, *seg[3], *p, *url_end;
	const char *name_at, *version_at = NULL;
	size_t name_len, version_len = 0;
	char show[201], *w;
	size_t len, seglen[3], nseg = 0, i, skip;

	memset(&k, 0, sizeof(k));
	if (id == NULL)
		return kb_error_set(KB_ERR_PROTOCOL, "no key identifier");
	/* Printable ASCII without space, '?' or '#': what a URL path holds. */
	for (i = 0; id[i] != '\0' && i <= KB_KV_MAX_ID_LEN; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
			return kb_error_set(KB_ERR_PROTOCOL, "the key identifier %s has "
			    "a character a URL path cannot have", shown(id, show, 201));
	}
	len = i;
	if (len == 0 || len > KB_KV_MAX_ID_LEN)
		return kb_error_set(KB_ERR_PROTOCOL, "the key identifier is empty "
		    "or longer than %d bytes", KB_KV_MAX_ID_LEN);
	if (strncasecmp(id, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(id, "http://", 7) == 0)
		skip = 7;   /* the agent's socket: http://localhost */
	else
		return kb_error_set(KB_ERR_PROTOCOL, "the key identifier %.200s is "
		    "not an https URL", id);
	path = strchr(id + skip, '/');
	if (path == NULL || path == id + skip)
		return kb_error_set(KB_ERR_PROTOCOL, "the key identifier %.200s has "
		    "no host or no path", id);
	end = id + len;
	if (end > path + 1 && end[-1] == '/')
		end--;
	/* The last three segments, right to left. */
	for (p = end; nseg < 3 && p > path; nseg++) {
		const char *s = p;

		while (s > path && s[-1] != '/')
			s--;
		seg[nseg] = s;
		seglen[nseg] = (size_t)(p - s);
		if (seglen[nseg] == 0)
			return kb_error_set(KB_ERR_PROTOCOL, "the key identifier %.200s "
			    "has an empty path segment", id);
		p = s - 1;
	}
	if (nseg == 3 && seg_is(seg[2], seglen[2], "keys")) {
		/* keys/{name}/{version} */
		name_at = seg[1];
		name_len = seglen[1];
		version_at = seg[0];
		version_len = seglen[0];
		url_end = seg[2] - 1;
	} else if (nseg >= 2 && (seg_is(seg[1], seglen[1], "keys") ||
	    seg_is(seg[1], seglen[1], "deletedkeys"))) {
		name_at = seg[0];
		name_len = seglen[0];
		url_end = seg[1] - 1;
	} else {
		return kb_error_set(KB_ERR_PROTOCOL, "the key identifier %.200s does not "
		    "end in keys/NAME[/VERSION] or deletedkeys/NAME", id);
	}
	/* One block: id, vault_url, name[, version], each NUL-terminated. */
	if ((w = malloc(2 * len + 4)) == NULL)
		return KB_ERR_ALLOC;
	k.id = put_str(&w, id, len);
	k.vault_url = put_str(&w, id, (size_t)(url_end - id));
	k.name = put_str(&w, name_at, name_len);
	if (version_at != NULL)
		k.version = put_str(&w, version_at, version_len);
	*out = k;
	return 0;
}

static int
get_kid(const cJSON *obj, const char *pfx, const char *name, bool required,
    struct kb_kv_kid *out)
{
	char *id = NULL, why[300];
	int r;

	if ((r = get_str(obj, pfx, name, KB_KV_MAX_ID_LEN, required, &id)) != 0 ||
	    id == NULL)
		return r;
	if ((r = kb_kv_kid_parse(id, out)) != 0 && r != KB_ERR_ALLOC) {
		snprintf(why, sizeof(why), "%s", kb_error_detail(r));
		r = kb_error_set(r, "Key Vault's answer has %s%s: %s", pfx, name, why);
	}
	free(id);
	return r;
}

/* ---------------------------------------------------- attributes and tags */

static void
attributes_clear(struct kb_kv_attributes *a)
{
	free(a->recovery_level);
	memset(a, 0, sizeof(*a));
}

/*
 * KeyAttributes.  hsmPlatform (a string "0"/"2" on vaults), attestation,
 * key_size and external_key are read-only extras nothing here needs.
 */
static int
get_attributes(const cJSON *obj, const char *pfx, struct kb_kv_attributes *a)
{
	const cJSON *j = member(obj, "attributes");
	char p[2 * PFX_LEN];
	int64_t days;
	int r;

	if (j == NULL)
		return 0;
	if (!cJSON_IsObject(j))
		return wrong_type(pfx, "attributes", j, "an object");
	snprintf(p, sizeof(p), "%sattributes.", pfx);
	if ((r = get_bool(j, p, "enabled", KB_KV_HAS_ENABLED, &a->present,
	    &a->enabled)) != 0 ||
	    (r = get_bool(j, p, "exportable", KB_KV_HAS_EXPORTABLE, &a->present,
	    &a->exportable)) != 0 ||
	    (r = get_time(j, p, "nbf", KB_KV_HAS_NBF, &a->present, &a->nbf)) != 0 ||
	    (r = get_time(j, p, "exp", KB_KV_HAS_EXP, &a->present, &a->exp)) != 0 ||
	    (r = get_time(j, p, "created", KB_KV_HAS_CREATED, &a->present,
	    &a->created)) != 0 ||
	    (r = get_time(j, p, "updated", KB_KV_HAS_UPDATED, &a->present,
	    &a->updated)) != 0 ||
	    (r = get_str(j, p, "recoveryLevel", DEC_MAX_LEVEL, false,
	    &a->recovery_level)) != 0)
		return r;
	j = member(j, "recoverableDays");
	if (j != NULL) {
		if (!cJSON_IsNumber(j))
			return wrong_type(p, "recoverableDays", j, "a number");
		if (whole_number(j, 1000000.0, &days) != 0)
			return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has "
			    "%srecoverableDays = %g, not a number of days", p,
			    j->valuedouble);
		a->recoverable_days = (int)days;
		a->present |= KB_KV_HAS_RECOVERABLE_DAYS;
	}
	return 0;
}

static void
tags_clear(struct kb_kv_tags *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].value);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/*
 * tags: {string: string}.  Key Vault allows 15 of 256 characters
 * (keys/about-keys-details.md); the caps here are higher so that a
 * service that relaxes them is not refused, but still bounded.
 */
static int
get_tags(const cJSON *obj, const char *pfx, struct kb_kv_tags *t)
{
	const cJSON *j = member(obj, "tags"), *e;
	char show[65];
	size_t n;

	if (j == NULL)
		return 0;
	if (!cJSON_IsObject(j))
		return wrong_type(pfx, "tags", j, "an object");
	n = (size_t)cJSON_GetArraySize(j);
	if (n > KB_KV_MAX_TAGS)
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %zu "
		    "%stags, more than %d", n, pfx, KB_KV_MAX_TAGS);
	if (n == 0)
		return 0;
	if ((t->v = calloc(n, sizeof(*t->v))) == NULL)
		return KB_ERR_ALLOC;
	cJSON_ArrayForEach(e, j) {
		if (!cJSON_IsString(e) || e->valuestring == NULL)
			return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is "
			    "malformed: the tag %s%s is %s, not a string", pfx,
			    shown(e->string, show, 65), json_kind(e));
		if (e->string == NULL || strlen(e->string) > KB_KV_MAX_TAG_LEN ||
		    strlen(e->valuestring) > KB_KV_MAX_TAG_LEN)
			return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has a "
			    "tag name or value longer than %d bytes", KB_KV_MAX_TAG_LEN);
		if ((t->v[t->n].name = kb_strdup(e->string)) == NULL)
			return KB_ERR_ALLOC;
		t->n++;   /* counted now: freed by tags_clear from here on */
		if ((t->v[t->n - 1].value = kb_strdup(e->valuestring)) == NULL)
			return KB_ERR_ALLOC;
	}
	return 0;
}

static void
deleted_clear(struct kb_kv_deleted *d)
{
	free(d->recovery_id);
	memset(d, 0, sizeof(*d));
}

/* managed, recoveryId, deletedDate, scheduledPurgeDate. */
static int
get_item_extras(const cJSON *obj, const char *pfx, unsigned *present,
    bool *managed, struct kb_kv_deleted *d)
{
	int r;

	if ((r = get_bool(obj, pfx, "managed", KB_KV_HAS_MANAGED, present,
	    managed)) != 0 ||
	    (r = get_str(obj, pfx, "recoveryId", KB_KV_MAX_ID_LEN, false,
	    &d->recovery_id)) != 0 ||
	    (r = get_time(obj, pfx, "deletedDate", KB_KV_HAS_DELETED_DATE, present,
	    &d->deleted_date)) != 0 ||
	    (r = get_time(obj, pfx, "scheduledPurgeDate", KB_KV_HAS_PURGE_DATE,
	    present, &d->scheduled_purge_date)) != 0)
		return r;
	return 0;
}

/* ---------------------------------------------------------------- the JWK */

static void
jwk_clear(struct kb_kv_jwk *k)
{
	size_t i;

	free(k->kty);
	free(k->crv);
	for (i = 0; i < k->n_key_ops; i++)
		free(k->key_ops[i]);
	free(k->key_ops);
	kb_kv_bytes_clear(&k->n);
	kb_kv_bytes_clear(&k->e);
	kb_kv_bytes_clear(&k->x);
	kb_kv_bytes_clear(&k->y);
	memset(k, 0, sizeof(*k));
}

static unsigned
bit_length(const struct kb_kv_bytes *b)
{
	unsigned top;
	unsigned bits;

	if (b->len == 0)
		return 0;
	bits = (unsigned)(b->len - 1) * 8;
	for (top = b->data[0]; top != 0; top >>= 1)
		bits++;
	return bits;
}

static int
get_key_ops(const cJSON *obj, const char *pfx, struct kb_kv_jwk *k)
{
	const cJSON *j = member(obj, "key_ops"), *e;
	size_t n;

	if (j == NULL)
		return 0;
	if (!cJSON_IsArray(j))
		return wrong_type(pfx, "key_ops", j, "an array");
	n = (size_t)cJSON_GetArraySize(j);
	if (n > KB_KV_MAX_KEY_OPS)
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %zu "
		    "%skey_ops, more than %d", n, pfx, KB_KV_MAX_KEY_OPS);
	if (n == 0)
		return 0;
	if ((k->key_ops = calloc(n, sizeof(*k->key_ops))) == NULL)
		return KB_ERR_ALLOC;
	cJSON_ArrayForEach(e, j) {
		if (!cJSON_IsString(e) || e->valuestring == NULL)
			return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is "
			    "malformed: %skey_ops[%zu] is %s, not a string", pfx, k->n_key_ops,
			    json_kind(e));
		if (strlen(e->valuestring) > DEC_MAX_SHORT)
			return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has "
			    "%skey_ops[%zu] longer than %d bytes", pfx, k->n_key_ops,
			    DEC_MAX_SHORT);
		if ((k->key_ops[k->n_key_ops] = kb_strdup(e->valuestring)) == NULL)
			return KB_ERR_ALLOC;
		k->n_key_ops++;
	}
	return 0;
}

/*
 * JsonWebKey (keys.json): the public members.  key_hsm (BYOK) and the
 * private members are never needed from a response and are skipped.
 */
static int
get_jwk(const cJSON *key, const char *pfx, struct kb_kv_jwk *k,
    struct kb_kv_kid *kid)
{
	size_t z;
	int r;

	if ((r = get_kid(key, pfx, "kid", true, kid)) != 0 ||
	    (r = get_str(key, pfx, "kty", DEC_MAX_SHORT, true, &k->kty)) != 0 ||
	    (r = get_str(key, pfx, "crv", DEC_MAX_SHORT, false, &k->crv)) != 0 ||
	    (r = get_key_ops(key, pfx, k)) != 0 ||
	    (r = get_bytes(key, pfx, "n", DEC_MAX_JWK_PART, false, &k->n)) != 0 ||
	    (r = get_bytes(key, pfx, "e", DEC_MAX_JWK_PART, false, &k->e)) != 0 ||
	    (r = get_bytes(key, pfx, "x", DEC_MAX_JWK_PART, false, &k->x)) != 0 ||
	    (r = get_bytes(key, pfx, "y", DEC_MAX_JWK_PART, false, &k->y)) != 0)
		return r;
	/*
	 * An imported n with a leading 0x00 (a DER INTEGER's sign byte) is
	 * accepted by the service (NOTES.md 1.5); whoever sends us one, the
	 * modulus is the same number without it.
	 */
	for (z = 0; z + 1 < k->n.len && k->n.data[z] == 0; z++)
		;
	if (z > 0) {
		memmove(k->n.data, k->n.data + z, k->n.len - z);
		k->n.len -= z;
	}
	k->n_bits = bit_length(&k->n);
	return 0;
}

/* ------------------------------------------------------------- KeyBundle */

void
kb_kv_key_bundle_free(struct kb_kv_key_bundle *kb)
{
	if (kb == NULL)
		return;
	kb_kv_kid_clear(&kb->kid);
	jwk_clear(&kb->key);
	attributes_clear(&kb->attributes);
	tags_clear(&kb->tags);
	deleted_clear(&kb->deleted);
	free(kb);
}

int
kb_kv_key_bundle_parse(const cJSON *body, struct kb_kv_key_bundle **out)
{
	struct kb_kv_key_bundle *kb = NULL;
	const cJSON *key;
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	key = member(body, "key");
	if (key == NULL)
		return missing("", "key");
	if (!cJSON_IsObject(key))
		return wrong_type("", "key", key, "an object");
	if ((kb = calloc(1, sizeof(*kb))) == NULL)
		return KB_ERR_ALLOC;
	if ((r = get_jwk(key, "key.", &kb->key, &kb->kid)) != 0 ||
	    (r = get_attributes(body, "", &kb->attributes)) != 0 ||
	    (r = get_tags(body, "", &kb->tags)) != 0 ||
	    (r = get_item_extras(body, "", &kb->present, &kb->managed,
	    &kb->deleted)) != 0)
		goto out;
	*out = kb;
	kb = NULL;
 out:
	kb_kv_key_bundle_free(kb);
	return r;
}

/* --------------------------------------------------------- KeyListResult */

static void
item_clear(struct kb_kv_key_item *it)
{
	kb_kv_kid_clear(&it->kid);
	attributes_clear(&it->attributes);
	tags_clear(&it->tags);
	deleted_clear(&it->deleted);
}

void
kb_kv_key_list_free(struct kb_kv_key_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n_items; i++)
		item_clear(&l->items[i]);
	free(l->items);
	free(l->next_link);
	free(l);
}

int
kb_kv_key_list_parse(const cJSON *body, struct kb_kv_key_list **out)
{
	struct kb_kv_key_list *l = NULL;
	struct kb_kv_key_item *it;
	const cJSON *value, *e;
	char pfx[PFX_LEN];
	size_t n;
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	value = member(body, "value");
	if (value == NULL)
		return missing("", "value");
	if (!cJSON_IsArray(value))
		return wrong_type("", "value", value, "an array");
	n = (size_t)cJSON_GetArraySize(value);
	if (n > KB_KV_MAX_PAGE_ITEMS)
		return kb_error_set(KB_ERR_PROTOCOL, "a page of Key Vault's answer has "
		    "%zu items, more than %d", n, KB_KV_MAX_PAGE_ITEMS);
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (n > 0 && (l->items = calloc(n, sizeof(*l->items))) == NULL)) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	cJSON_ArrayForEach(e, value) {
		snprintf(pfx, sizeof(pfx), "value[%zu].", l->n_items);
		if (!cJSON_IsObject(e)) {
			r = kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is "
			    "malformed: value[%zu] is %s, not an object", l->n_items,
			    json_kind(e));
			goto out;
		}
		it = &l->items[l->n_items++];
		if ((r = get_kid(e, pfx, "kid", true, &it->kid)) != 0 ||
		    (r = get_attributes(e, pfx, &it->attributes)) != 0 ||
		    (r = get_tags(e, pfx, &it->tags)) != 0 ||
		    (r = get_item_extras(e, pfx, &it->present, &it->managed,
		    &it->deleted)) != 0)
			goto out;
	}
	/* null, absent and "" all end the list (NOTES.md 1.3). */
	if ((r = get_str(body, "", "nextLink", DEC_MAX_NEXT_LINK, false,
	    &l->next_link)) != 0)
		goto out;
	if (l->next_link != NULL && l->next_link[0] == '\0') {
		free(l->next_link);
		l->next_link = NULL;
	}
	*out = l;
	l = NULL;
	r = 0;
 out:
	kb_kv_key_list_free(l);
	return r;
}

/* ---------------------------------------------------- operation results */

void
kb_kv_key_op_result_free(struct kb_kv_key_op_result *res)
{
	if (res == NULL)
		return;
	kb_kv_kid_clear(&res->kid);
	kb_secret_free(&res->value);
	kb_kv_bytes_clear(&res->iv);
	kb_kv_bytes_clear(&res->tag);
	kb_kv_bytes_clear(&res->aad);
	free(res->alg);
	free(res);
}

int
kb_kv_key_op_result_parse(const cJSON *body, struct kb_kv_key_op_result **out)
{
	struct kb_kv_key_op_result *res = NULL;
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	if ((res = calloc(1, sizeof(*res))) == NULL)
		return KB_ERR_ALLOC;
	if ((r = get_kid(body, "", "kid", false, &res->kid)) != 0 ||
	    (r = get_secret(body, "", "value", DEC_MAX_OP_VALUE, &res->value)) != 0 ||
	    (r = get_bytes(body, "", "iv", DEC_MAX_SHORT, false, &res->iv)) != 0 ||
	    (r = get_bytes(body, "", "tag", DEC_MAX_SHORT, false, &res->tag)) != 0 ||
	    (r = get_bytes(body, "", "aad", DEC_MAX_OP_VALUE, false, &res->aad)) != 0 ||
	    (r = get_str(body, "", "alg", DEC_MAX_SHORT, false, &res->alg)) != 0)
		goto out;
	*out = res;
	res = NULL;
 out:
	kb_kv_key_op_result_free(res);
	return r;
}

int
kb_kv_verify_result_parse(const cJSON *body, bool *out)
{
	const cJSON *j;
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	if ((j = member(body, "value")) == NULL)
		return missing("", "value");
	if (!cJSON_IsBool(j))
		return wrong_type("", "value", j, "true or false");
	*out = cJSON_IsTrue(j);
	return 0;
}

int
kb_kv_random_bytes_parse(const cJSON *body, struct kb_secret **out)
{
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	return get_secret(body, "", "value", DEC_MAX_RANDOM, out);
}

int
kb_kv_backup_result_parse(const cJSON *body, struct kb_kv_bytes *out)
{
	struct kb_kv_bytes b = { NULL, 0 };
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	/* The blob holds every version of the key; the body cap bounds it. */
	if ((r = get_bytes(body, "", "value", SIZE_MAX / 2, true, &b)) != 0)
		return r;
	*out = b;
	return 0;
}

int
kb_kv_release_result_parse(const cJSON *body, char **out)
{
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	return get_str(body, "", "value", DEC_MAX_RELEASE, true, out);
}

/* ------------------------------------------------------- rotation policy */

void
kb_kv_rotation_policy_free(struct kb_kv_rotation_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_actions; i++) {
		free(p->actions[i].type);
		free(p->actions[i].time_after_create);
		free(p->actions[i].time_before_expiry);
	}
	free(p->actions);
	free(p->id);
	free(p->expiry_time);
	free(p);
}

static int
get_action(const cJSON *e, const char *pfx, struct kb_kv_lifetime_action *a)
{
	const cJSON *trig = member(e, "trigger"), *act = member(e, "action");
	char p[2 * PFX_LEN];
	int r;

	if (!cJSON_IsObject(e))
		return kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer is malformed: "
		    "%.*s is %s, not an object", (int)strlen(pfx) - 1, pfx, json_kind(e));
	if (trig != NULL) {
		if (!cJSON_IsObject(trig))
			return wrong_type(pfx, "trigger", trig, "an object");
		snprintf(p, sizeof(p), "%strigger.", pfx);
		if ((r = get_str(trig, p, "timeAfterCreate", DEC_MAX_SHORT, false,
		    &a->time_after_create)) != 0 ||
		    (r = get_str(trig, p, "timeBeforeExpiry", DEC_MAX_SHORT, false,
		    &a->time_before_expiry)) != 0)
			return r;
	}
	/* A lifetime action without its type says nothing to do. */
	if (act == NULL)
		return missing(pfx, "action");
	if (!cJSON_IsObject(act))
		return wrong_type(pfx, "action", act, "an object");
	snprintf(p, sizeof(p), "%saction.", pfx);
	return get_str(act, p, "type", DEC_MAX_SHORT, true, &a->type);
}

/*
 * KeyRotationPolicy.  Durations stay text: agent/kvrules.c has the
 * ISO 8601 rules, and the service adds actions of its own (a Notify
 * next to a Rotate, NOTES.md 1.5) that a caller must see as sent.
 */
int
kb_kv_rotation_policy_parse(const cJSON *body, struct kb_kv_rotation_policy **out)
{
	struct kb_kv_rotation_policy *p = NULL;
	const cJSON *acts, *attrs, *e;
	char pfx[PFX_LEN];
	size_t n;
	int r;

	if ((r = body_object(body)) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return KB_ERR_ALLOC;
	if ((r = get_str(body, "", "id", KB_KV_MAX_ID_LEN, false, &p->id)) != 0)
		goto out;
	acts = member(body, "lifetimeActions");
	if (acts != NULL) {
		if (!cJSON_IsArray(acts)) {
			r = wrong_type("", "lifetimeActions", acts, "an array");
			goto out;
		}
		n = (size_t)cJSON_GetArraySize(acts);
		if (n > KB_KV_MAX_LIFETIME_ACTIONS) {
			r = kb_error_set(KB_ERR_PROTOCOL, "Key Vault's answer has %zu "
			    "lifetimeActions, more than %d", n, KB_KV_MAX_LIFETIME_ACTIONS);
			goto out;
		}
		if (n > 0 && (p->actions = calloc(n, sizeof(*p->actions))) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		cJSON_ArrayForEach(e, acts) {
			snprintf(pfx, sizeof(pfx), "lifetimeActions[%zu].", p->n_actions);
			if ((r = get_action(e, pfx, &p->actions[p->n_actions++])) != 0)
				goto out;
		}
	}
	attrs = member(body, "attributes");
	if (attrs != NULL) {
		if (!cJSON_IsObject(attrs)) {
			r = wrong_type("", "attributes", attrs, "an object");
			goto out;
		}
		if ((r = get_str(attrs, "attributes.", "expiryTime", DEC_MAX_SHORT,
		    false, &p->expiry_time)) != 0 ||
		    (r = get_time(attrs, "attributes.", "created", KB_KV_HAS_CREATED,
		    &p->present, &p->created)) != 0 ||
		    (r = get_time(attrs, "attributes.", "updated", KB_KV_HAS_UPDATED,
		    &p->present, &p->updated)) != 0)
			goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
 out:
	kb_kv_rotation_policy_free(p);
	return r;
}

/* ---------------------------------------------------------- KeyVaultError */

void
kb_kv_error_free(struct kb_kv_error *e)
{
	size_t i;

	if (e == NULL)
		return;
	free(e->code);
	free(e->message);
	for (i = 0; i < e->n_inner; i++)
		free(e->inner[i]);
	free(e);
}

/* Error messages are cut rather than refused, on a UTF-8 boundary. */
static int
get_message(const cJSON *obj, char **out)
{
	const cJSON *j = member(obj, "message");
	size_t n;
	char *s;

	if (j == NULL)
		return 0;
	if (!cJSON_IsString(j) || j->valuestring == NULL)
		return wrong_type("error.", "message", j, "a string");
	n = strlen(j->valuestring);
	if (n > DEC_MAX_MESSAGE) {
		n = DEC_MAX_MESSAGE;
		while (n > 0 && ((unsigned char)j->valuestring[n] & 0xc0) == 0x80)
			n--;
	}
	if ((s = strndup(j->valuestring, n)) == NULL)
		return KB_ERR_ALLOC;
	*out = s;
	return 0;
}

/*
 * KeyVaultError (keys.json): {"error": Error}, Error = {code, message,
 * innererror: Error}, x-nullable.  Only the codes of the inner errors
 * are kept ("ObjectIsDeletedButRecoverable" under "Conflict").
 */
int
kb_kv_error_parse(const cJSON *body, struct kb_kv_error **out)
{
	struct kb_kv_error *e = NULL;
	const cJSON *err, *in;
	char pfx[PFX_LEN];
	size_t depth;
	int r;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return KB_ERR_ALLOC;
	/* No "error" object: a proxy's page, an empty 401 (Managed HSM). */
	err = cJSON_IsObject(body) ? member(body, "error") : NULL;
	if (err == NULL)
		goto done;
	if (!cJSON_IsObject(err)) {
		r = wrong_type("", "error", err, "an object");
		goto out;
	}
	if ((r = get_str(err, "error.", "code", DEC_MAX_LEVEL, false, &e->code)) != 0 ||
	    (r = get_message(err, &e->message)) != 0)
		goto out;
	snprintf(pfx, sizeof(pfx), "error.");
	for (in = member(err, "innererror"), depth = 0;
	    in != NULL && depth < KB_KV_MAX_INNER_ERRORS;
	    in = member(in, "innererror"), depth++) {
		if (!cJSON_IsObject(in)) {
			r = wrong_type(pfx, "innererror", in, "an object");
			goto out;
		}
		snprintf(pfx, sizeof(pfx), "error.innererror[%zu].", depth);
		if ((r = get_str(in, pfx, "code", DEC_MAX_LEVEL, false,
		    &e->inner[e->n_inner])) != 0)
			goto out;
		if (e->inner[e->n_inner] != NULL)
			e->n_inner++;
	}
 done:
	*out = e;
	e = NULL;
	r = 0;
 out:
	kb_kv_error_free(e);
	return r;
}
