/*
 * kvrules.c: Key Vault's syntax rules as tables (SoftHSM's P11Attributes
 * style: one row per rule, the spec section beside it).  Pure functions;
 * store.c and the HTTP layer share them.
 */
#include <string.h>
#include <strings.h>

#include "kvrules.h"

enum {
	CS_NAME = 1,   /* 0-9a-zA-Z- */
	CS_HEX,        /* 0-9a-fA-F (versions are compared case-insensitively) */
	CS_TEXT        /* any valid UTF-8 without control characters */
};

enum {
	F_FIRST_LETTER = 1u << 0,  /* must start with a letter */
	F_LAST_ALNUM = 1u << 1,    /* must not end with '-' */
	F_NO_DOUBLE_HYPHEN = 1u << 2
};

struct kv_string_rule {
	enum kv_field field;
	const char *what;
	size_t min, max;   /* in characters */
	int charset;
	unsigned flags;
	const char *source;
};

static const struct kv_string_rule kv_string_rules[KV_FIELD__COUNT] = {
	/* NOTES.md 1 (#1) and 1.3: ^[0-9a-zA-Z-]+$, 1-127 characters. */
	{ KV_FIELD_KEY_NAME, "key name", 1, KV_NAME_MAX, CS_NAME, 0,
	  "1-127 characters of 0-9, a-z, A-Z and '-'" },
	/* NOTES.md 1.3; Key Vault's vault naming rules (start with a letter,
	 * end with a letter or digit, no "--"). */
	{ KV_FIELD_VAULT_NAME, "vault name", KV_VAULT_NAME_MIN,
	  KV_VAULT_NAME_MAX, CS_NAME,
	  F_FIRST_LETTER | F_LAST_ALNUM | F_NO_DOUBLE_HYPHEN,
	  "3-24 characters of 0-9, a-z, A-Z and '-', starting with a letter, "
	  "not ending with '-', without \"--\"" },
	/* NOTES.md 1.3: versions are 32-character strings. */
	{ KV_FIELD_VERSION, "key version", KV_VERSION_LEN, KV_VERSION_LEN,
	  CS_HEX, 0, "32 hexadecimal characters" },
	/* NOTES.md 1.3: tag names and values up to 256 characters. */
	{ KV_FIELD_TAG_NAME, "tag name", 1, KV_TAG_NAME_MAX, CS_TEXT, 0,
	  "1-256 characters without control characters" },
	{ KV_FIELD_TAG_VALUE, "tag value", 0, KV_TAG_VALUE_MAX, CS_TEXT, 0,
	  "at most 256 characters without control characters" },
};

const char *
kv_field_name(enum kv_field field)
{
	if ((unsigned)field >= KV_FIELD__COUNT)
		return "field";
	return kv_string_rules[field].what;
}

static bool
is_name_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '-';
}

static bool
is_hex_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* Length of the UTF-8 sequence at s (1-4), or 0 if it is not valid
 * (overlong forms, surrogates and values above U+10FFFF refused). */
static size_t
utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (c == 0xed && s[1] >= 0xa0)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;
		if (c == 0xf4 && s[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

long
kv_utf8_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;
	size_t l;

	while (*p != '\0') {
		if ((l = utf8_seq(p)) == 0)
			return -1;
		p += l;
		n++;
	}
	return n;
}

int
kv_check(enum kv_field field, const char *s)
{
	const struct kv_string_rule *r;
	const unsigned char *p;
	size_t n = 0, l;

	if ((unsigned)field >= KV_FIELD__COUNT || s == NULL)
		return kb_error_set(KB_ERR_INTERNAL, "kv_check: bad arguments");
	r = &kv_string_rules[field];
	for (p = (const unsigned char *)s; *p != '\0'; p += l, n++) {
		/* Stop counting early: a huge input costs no more than max. */
		if (n >= r->max)
			return kb_error_set(KB_ERR_INVALID,
			    "the %s is too long: it must be %s", r->what,
			    r->source);
		l = 1;
		switch (r->charset) {
		case CS_NAME:
			if (!is_name_char(*p))
				goto bad;
			break;
		case CS_HEX:
			if (!is_hex_char(*p))
				goto bad;
			break;
		default:
			if (*p < 0x20 || *p == 0x7f ||
			    (l = utf8_seq(p)) == 0)
				goto bad;
			/* C1 controls U+0080-U+009F. */
			if (l == 2 && p[0] == 0xc2 && p[1] < 0xa0)
				goto bad;
			break;
		}
	}
	if (n < r->min)
		return kb_error_set(KB_ERR_INVALID, "the %s is %s: it must be %s",
		    r->what, n == 0 ? "empty" : "too short", r->source);
	if ((r->flags & F_FIRST_LETTER) &&
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		goto bad;
	if ((r->flags & F_LAST_ALNUM) && s[strlen(s) - 1] == '-')
		goto bad;
	if ((r->flags & F_NO_DOUBLE_HYPHEN) && strstr(s, "--") != NULL)
		goto bad;
	return 0;
 bad:
	return kb_error_set(KB_ERR_INVALID, "the %s is not valid: it must be %s",
	    r->what, r->source);
}

int
kv_lower(const char *s, char *dst, size_t n)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i + 1 >= n)
			return kb_error_set(KB_ERR_LIMIT, "name too long");
		dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') :
		    s[i];
	}
	if (n == 0)
		return kb_error_set(KB_ERR_LIMIT, "name too long");
	dst[i] = '\0';
	return 0;
}

int
kv_tags_check(const cJSON *tags)
{
	const cJSON *t, *u;
	size_t n = 0;
	int r;

	if (tags == NULL || !cJSON_IsObject(tags))
		return kb_error_set(KB_ERR_INVALID,
		    "tags must be a JSON object of string values");
	for (t = tags->child; t != NULL; t = t->next) {
		if (++n > KV_TAGS_MAX)
			return kb_error_set(KB_ERR_LIMIT,
			    "a key has at most %d tags", KV_TAGS_MAX);
		if (t->string == NULL || !cJSON_IsString(t) ||
		    t->valuestring == NULL)
			return kb_error_set(KB_ERR_INVALID,
			    "every tag value must be a string");
		if ((r = kv_check(KV_FIELD_TAG_NAME, t->string)) != 0)
			return r;
		if ((r = kv_check(KV_FIELD_TAG_VALUE, t->valuestring)) != 0)
			return r;
		/* n <= 15, so the quadratic scan is bounded. */
		for (u = tags->child; u != t; u = u->next)
			if (strcmp(u->string, t->string) == 0)
				return kb_error_set(KB_ERR_INVALID,
				    "the tag name \"%s\" appears twice",
				    t->string);
	}
	return 0;
}

/* keys.json JsonWebKeyOperation, in the order Key Vault's examples use. */
static const struct {
	unsigned bit;
	const char *name;
} kv_op_table[] = {
	{ KV_OP_ENCRYPT, "encrypt" },
	{ KV_OP_DECRYPT, "decrypt" },
	{ KV_OP_SIGN, "sign" },
	{ KV_OP_VERIFY, "verify" },
	{ KV_OP_WRAP_KEY, "wrapKey" },
	{ KV_OP_UNWRAP_KEY, "unwrapKey" },
	{ KV_OP_IMPORT, "import" },
	{ KV_OP_EXPORT, "export" },
};

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

unsigned
kv_key_op_bit(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < N_ELEM(kv_op_table); i++)
		if (strcmp(kv_op_table[i].name, name) == 0)
			return kv_op_table[i].bit;
	return 0;
}

const char *
kv_key_op_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < N_ELEM(kv_op_table); i++)
		if (kv_op_table[i].bit == bit)
			return kv_op_table[i].name;
	return NULL;
}

int
kv_key_ops_parse(const cJSON *arr, unsigned *out)
{
	const cJSON *e;
	unsigned mask = 0, bit;

	if (arr == NULL || !cJSON_IsArray(arr))
		return kb_error_set(KB_ERR_INVALID,
		    "key_ops must be a JSON array of operation names");
	for (e = arr->child; e != NULL; e = e->next) {
		if (!cJSON_IsString(e) || e->valuestring == NULL ||
		    (bit = kv_key_op_bit(e->valuestring)) == 0)
			return kb_error_set(KB_ERR_INVALID,
			    "key_ops holds an unknown operation; use encrypt, "
			    "decrypt, sign, verify, wrapKey, unwrapKey, import "
			    "or export");
		if (mask & bit)
			return kb_error_set(KB_ERR_INVALID,
			    "key_ops names \"%s\" twice", e->valuestring);
		mask |= bit;
	}
	*out = mask;
	return 0;
}

cJSON *
kv_key_ops_json(unsigned mask)
{
	cJSON *arr = NULL, *s;
	size_t i;

	if ((arr = cJSON_CreateArray()) == NULL)
		return NULL;
	for (i = 0; i < N_ELEM(kv_op_table); i++) {
		if (!(mask & kv_op_table[i].bit))
			continue;
		if ((s = cJSON_CreateString(kv_op_table[i].name)) == NULL) {
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, s);
	}
	return arr;
}

enum { SHAPE_RSA = 1, SHAPE_EC, SHAPE_OCT };

/* keys.json JsonWebKeyType (AKP is 2026-05-01-preview only: left out). */
static const struct {
	const char *kty;
	int shape;
} kv_kty_table[] = {
	{ "RSA", SHAPE_RSA }, { "RSA-HSM", SHAPE_RSA },
	{ "EC", SHAPE_EC }, { "EC-HSM", SHAPE_EC },
	{ "oct", SHAPE_OCT }, { "oct-HSM", SHAPE_OCT },
};

/* keys.json JsonWebKeyCurveName. */
static const char *const kv_crv_table[] = { "P-256", "P-384", "P-521", "P-256K" };
/* about-keys-details.md: RSA 2K/3K/4K; AES 128/192/256 (Managed HSM). */
static const unsigned kv_rsa_sizes[] = { 2048, 3072, 4096 };
static const unsigned kv_oct_sizes[] = { 128, 192, 256 };

static int
kty_shape(const char *kty)
{
	size_t i;

	for (i = 0; kty != NULL && i < N_ELEM(kv_kty_table); i++)
		if (strcmp(kv_kty_table[i].kty, kty) == 0)
			return kv_kty_table[i].shape;
	return 0;
}

int
kv_kty_check(const char *kty)
{
	if (kty_shape(kty) == 0)
		return kb_error_set(KB_ERR_INVALID,
		    "unknown kty; use RSA, RSA-HSM, EC, EC-HSM, oct or oct-HSM");
	return 0;
}

int
kv_crv_check(const char *crv)
{
	size_t i;

	for (i = 0; crv != NULL && i < N_ELEM(kv_crv_table); i++)
		if (strcmp(kv_crv_table[i], crv) == 0)
			return 0;
	return kb_error_set(KB_ERR_INVALID,
	    "unknown crv; use P-256, P-384, P-521 or P-256K");
}

static bool
size_in(unsigned v, const unsigned *tab, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tab[i] == v)
			return true;
	return false;
}

int
kv_key_shape_check(const char *kty, unsigned key_size, const char *crv)
{
	bool has_crv = crv != NULL && crv[0] != '\0';
	int r;

	if ((r = kv_kty_check(kty)) != 0)
		return r;
	switch (kty_shape(kty)) {
	case SHAPE_RSA:
		if (has_crv || !size_in(key_size, kv_rsa_sizes, N_ELEM(kv_rsa_sizes)))
			return kb_error_set(KB_ERR_INVALID,
			    "an %s key needs key_size 2048, 3072 or 4096 and "
			    "no crv", kty);
		return 0;
	case SHAPE_EC:
		if (key_size != 0 || !has_crv)
			return kb_error_set(KB_ERR_INVALID,
			    "an %s key needs a crv and no key_size", kty);
		return kv_crv_check(crv);
	default:
		if (has_crv || !size_in(key_size, kv_oct_sizes, N_ELEM(kv_oct_sizes)))
			return kb_error_set(KB_ERR_INVALID,
			    "an %s key needs key_size 128, 192 or 256 and no "
			    "crv", kty);
		return 0;
	}
}

int
kv_retention_check(long days)
{
	if (days < KV_RETENTION_MIN || days > KV_RETENTION_MAX)
		return kb_error_set(KB_ERR_INVALID,
		    "soft-delete retention must be %d to %d days",
		    KV_RETENTION_MIN, KV_RETENTION_MAX);
	return 0;
}

const char *
kv_recovery_level(unsigned retention_days, bool purge_protection)
{
	if (retention_days >= KV_RETENTION_MAX)
		return purge_protection ? "Recoverable" : "Recoverable+Purgeable";
	return purge_protection ? "CustomizedRecoverable" :
	    "CustomizedRecoverable+Purgeable";
}

/* ------------------------------------------------------- rotation policy */

#define DAY INT64_C(86400)

int
kv_duration_parse(const char *s, int64_t *seconds)
{
	/* Designators in the order ISO 8601 writes them, and their seconds
	 * (months 30 days, years 365, for the minimums only). */
	static const struct {
		char c;
		bool time;
		int64_t secs;
	} units[] = {
		{ 'Y', false, 365 * DAY }, { 'M', false, 30 * DAY },
		{ 'D', false, DAY }, { 'H', true, 3600 }, { 'M', true, 60 },
		{ 'S', true, 1 },
	};
	const char *p;
	size_t u = 0, i, digits, n = 0;
	bool in_time = false, any_time = false;
	int64_t total = 0, v;

	if (s == NULL || s[0] != 'P' || strlen(s) > KV_DURATION_MAX)
		goto bad;
	p = s + 1;
	/* PnW stands alone. */
	for (digits = 0, v = 0; p[digits] >= '0' && p[digits] <= '9'; digits++)
		if (digits < 6)    /* longer runs are refused below: no overflow */
			v = v * 10 + (p[digits] - '0');
	if (digits > 0 && digits <= 6 && p[digits] == 'W' && p[digits + 1] == '\0') {
		*seconds = v * 7 * DAY;
		return 0;
	}
	while (*p != '\0') {
		if (*p == 'T') {
			if (in_time)
				goto bad;
			in_time = true;
			p++;
			continue;
		}
		for (digits = 0, v = 0; p[digits] >= '0' && p[digits] <= '9'; digits++)
			if (digits < 6)
				v = v * 10 + (p[digits] - '0');
		if (digits == 0 || digits > 6)
			goto bad;
		p += digits;
		for (i = u; i < sizeof(units) / sizeof(units[0]); i++)
			if (units[i].c == *p && units[i].time == in_time)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			goto bad;
		u = i + 1;
		total += v * units[i].secs;
		any_time |= in_time;
		n++;
		p++;
	}
	/* At least one component; "T" must be followed by one. */
	if (n == 0 || (in_time && !any_time))
		goto bad;
	*seconds = total;
	return 0;
 bad:
	return kb_error_set(KB_ERR_INVALID, "durations are ISO 8601, for "
	    "example P90D, P3M, P1Y10D or PT48H");
}

/* The member name of obj, once at most (cJSON keeps duplicates). */
static int
member_once(const cJSON *obj, const char *name, const cJSON **out)
{
	const cJSON *it, *found = NULL;

	cJSON_ArrayForEach(it, obj) {
		if (it->string != NULL && strcmp(it->string, name) == 0) {
			if (found != NULL)
				return kb_error_set(KB_ERR_INVALID,
				    "the member '%s' appears twice", name);
			found = it;
		}
	}
	*out = cJSON_IsNull(found) ? NULL : found;
	return 0;
}

/* A duration member: NULL if absent, else checked, with its seconds. */
static int
duration_member(const cJSON *obj, const char *name, const char **s,
    int64_t *secs)
{
	const cJSON *it = NULL;
	int r;

	*s = NULL;
	if ((r = member_once(obj, name, &it)) != 0)
		return r;
	if (it == NULL)
		return 0;
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return kb_error_set(KB_ERR_INVALID, "%s must be an ISO 8601 "
		    "duration string", name);
	if (kv_duration_parse(it->valuestring, secs) != 0)
		return kb_error_set(KB_ERR_INVALID, "%s is not an ISO 8601 "
		    "duration (for example P90D, P3M, P1Y10D or PT48H)", name);
	*s = it->valuestring;
	return 0;
}

enum { ACT_ROTATE = 1, ACT_NOTIFY = 2 };

struct policy_action {
	int type;
	const char *after, *before;   /* timeAfterCreate / timeBeforeExpiry */
	int64_t after_s, before_s;
};

static int
action_parse(const cJSON *a, struct policy_action *pa)
{
	const cJSON *trig = NULL, *act = NULL, *type = NULL;
	int r;

	memset(pa, 0, sizeof(*pa));
	if (!cJSON_IsObject(a))
		return kb_error_set(KB_ERR_INVALID, "each of lifetimeActions is an "
		    "object with a trigger and an action");
	if ((r = member_once(a, "trigger", &trig)) != 0 ||
	    (r = member_once(a, "action", &act)) != 0)
		return r;
	if (!cJSON_IsObject(trig) || !cJSON_IsObject(act))
		return kb_error_set(KB_ERR_INVALID, "each of lifetimeActions needs a "
		    "trigger object and an action object");
	if ((r = member_once(act, "type", &type)) != 0)
		return r;
	/* keys.json LifetimeActionsType: compared case-insensitively. */
	if (cJSON_IsString(type) && strcasecmp(type->valuestring, "Rotate") == 0)
		pa->type = ACT_ROTATE;
	else if (cJSON_IsString(type) && strcasecmp(type->valuestring, "Notify") == 0)
		pa->type = ACT_NOTIFY;
	else
		return kb_error_set(KB_ERR_INVALID, "an action's type is Rotate or "
		    "Notify");
	if ((r = duration_member(trig, "timeAfterCreate", &pa->after,
	    &pa->after_s)) != 0 ||
	    (r = duration_member(trig, "timeBeforeExpiry", &pa->before,
	    &pa->before_s)) != 0)
		return r;
	if ((pa->after != NULL) == (pa->before != NULL))
		return kb_error_set(KB_ERR_INVALID, "a trigger names exactly one of "
		    "timeAfterCreate and timeBeforeExpiry");
	/* keys.json LifetimeActionsTrigger: timeAfterCreate "only applies to
	 * rotate"; notifications come before expiry. */
	if (pa->type == ACT_NOTIFY && pa->after != NULL)
		return kb_error_set(KB_ERR_INVALID, "a Notify action takes "
		    "timeBeforeExpiry, not timeAfterCreate");
	if ((pa->after != NULL && pa->after_s < KV_POLICY_TRIGGER_MIN_DAYS * DAY) ||
	    (pa->before != NULL && pa->before_s < KV_POLICY_TRIGGER_MIN_DAYS * DAY))
		return kb_error_set(KB_ERR_INVALID, "a %s trigger is at least %d "
		    "days (P%dD)", pa->type == ACT_ROTATE ? "rotation" :
		    "notification", KV_POLICY_TRIGGER_MIN_DAYS,
		    KV_POLICY_TRIGGER_MIN_DAYS);
	return 0;
}

static cJSON *
action_json(int type, const char *after, const char *before)
{
	cJSON *o = NULL, *t, *a;

	if ((o = cJSON_CreateObject()) == NULL ||
	    (t = cJSON_AddObjectToObject(o, "trigger")) == NULL ||
	    (after != NULL &&
	    cJSON_AddStringToObject(t, "timeAfterCreate", after) == NULL) ||
	    (before != NULL &&
	    cJSON_AddStringToObject(t, "timeBeforeExpiry", before) == NULL) ||
	    (a = cJSON_AddObjectToObject(o, "action")) == NULL ||
	    cJSON_AddStringToObject(a, "type",
	    type == ACT_ROTATE ? "Rotate" : "Notify") == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int
kv_rotation_policy_check(const cJSON *policy, cJSON **out)
{
	static const char *const ro[] = { "created", "updated" };
	struct policy_action pa[2];
	const cJSON *acts = NULL, *attrs = NULL, *it, *x;
	const char *expiry = NULL;
	int64_t expiry_s = 0;
	cJSON *o = NULL, *arr, *at, *e;
	size_t n = 0, i;
	bool rotate = false, notify = false;
	int r;

	if (!cJSON_IsObject(policy))
		return kb_error_set(KB_ERR_INVALID, "a rotation policy is a JSON "
		    "object");
	if ((r = member_once(policy, "lifetimeActions", &acts)) != 0 ||
	    (r = member_once(policy, "attributes", &attrs)) != 0)
		return r;
	if (acts != NULL && !cJSON_IsArray(acts))
		return kb_error_set(KB_ERR_INVALID, "lifetimeActions is an array");
	if (attrs != NULL && !cJSON_IsObject(attrs))
		return kb_error_set(KB_ERR_INVALID, "the policy's attributes are "
		    "an object");
	if (attrs != NULL) {
		for (i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
			if ((r = member_once(attrs, ro[i], &x)) != 0)
				return r;
			if (x != NULL)
				return kb_error_set(KB_ERR_INVALID, "the attribute "
				    "'%s' of a rotation policy is read-only", ro[i]);
		}
		if ((r = duration_member(attrs, "expiryTime", &expiry,
		    &expiry_s)) != 0)
			return r;
		if (expiry != NULL && expiry_s < KV_POLICY_EXPIRY_MIN_DAYS * DAY)
			return kb_error_set(KB_ERR_INVALID, "expiryTime is at least "
			    "%d days (P%dD)", KV_POLICY_EXPIRY_MIN_DAYS,
			    KV_POLICY_EXPIRY_MIN_DAYS);
	}
	cJSON_ArrayForEach(it, acts) {
		/* keys.json: "at maximum two items: one for rotate, one for
		 * notify". */
		if (n == 2)
			return kb_error_set(KB_ERR_INVALID, "lifetimeActions holds "
			    "at most two actions, one Rotate and one Notify");
		if ((r = action_parse(it, &pa[n])) != 0)
			return r;
		if ((pa[n].type == ACT_ROTATE && rotate) ||
		    (pa[n].type == ACT_NOTIFY && notify))
			return kb_error_set(KB_ERR_INVALID, "lifetimeActions holds "
			    "at most one Rotate and one Notify action");
		rotate |= pa[n].type == ACT_ROTATE;
		notify |= pa[n].type == ACT_NOTIFY;
		/* A rotation comes at least 7 days before the new version's
		 * expiry, whichever way it is triggered. */
		if (pa[n].type == ACT_ROTATE && expiry != NULL &&
		    ((pa[n].after != NULL && pa[n].after_s >
		    expiry_s - KV_POLICY_TRIGGER_MIN_DAYS * DAY) ||
		    (pa[n].before != NULL && pa[n].before_s >
		    expiry_s - KV_POLICY_TRIGGER_MIN_DAYS * DAY)))
			return kb_error_set(KB_ERR_INVALID, "the rotation must come "
			    "at least %d days before expiryTime",
			    KV_POLICY_TRIGGER_MIN_DAYS);
		n++;
	}
	if ((o = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(o, "lifetimeActions")) == NULL ||
	    (at = cJSON_AddObjectToObject(o, "attributes")) == NULL ||
	    (expiry != NULL &&
	    cJSON_AddStringToObject(at, "expiryTime", expiry) == NULL))
		goto nomem;
	for (i = 0; i < n; i++) {
		if ((e = action_json(pa[i].type, pa[i].after, pa[i].before)) == NULL)
			goto nomem;
		cJSON_AddItemToArray(arr, e);
	}
	/* Key Vault adds a Notify 30 days before expiry (NOTES.md 1.5). */
	if (n > 0 && !notify) {
		if ((e = action_json(ACT_NOTIFY, NULL,
		    KV_POLICY_NOTIFY_DEFAULT)) == NULL)
			goto nomem;
		cJSON_AddItemToArray(arr, e);
	}
	*out = o;
	return 0;
 nomem:
	cJSON_Delete(o);
	return KB_ERR_ALLOC;
}
