/*
 * kvapi.c: the Azure Key Vault keys REST API for local vaults, and
 * keybridge's extensions under /keybridge/ (docs/vaults.md, docs/api.md).
 *
 * One request: split the path into the vault prefix and segments, find
 * the route (method + shape), check api-version, the caller's role on
 * the vault (a denial is audited), parse the body strictly, run the
 * operation, answer with Key Vault's shapes or a KeyVaultError.
 * Nothing is changed before every check has passed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "agent.h"
#include "kb_kvclient.h"
#include "kvroute.h"
#include "store.h"

#define BASE_MAX 400
/* Retry-After (s) of a 503 for a store locked by another process. */
#define BUSY_RETRY_AFTER "2"
#define PAGE_DEFAULT 25
#define PAGE_MAX 25
/* A page: 25 items of at most ~5 kB (kid, 15 tags of 256+256 characters,
 * each escaped to at most 6 bytes a byte). */
#define LIST_TEXT_MAX ((size_t)4 << 20)
#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000
/* IntDate bounds accepted for nbf/exp: 1970 .. 9999-12-31. */
#define TIME_MAX INT64_C(253402300799)

static const char *const api_versions[] = {
	"7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"
};


static const struct opinfo {
	enum kv_op op;
	const char *name;          /* in audit records */
	enum agent_role need;
	unsigned key_op;           /* KV_OP_* a crypto operation needs */
} opinfo[] = {
	{ OP_LIST_KEYS, "list", ROLE_READER, 0 },
	{ OP_GET_KEY, "get", ROLE_READER, 0 },
	{ OP_UPDATE_KEY, "update", ROLE_CONTRIBUTOR, 0 },
	{ OP_DELETE_KEY, "delete", ROLE_CONTRIBUTOR, 0 },
	{ OP_CREATE, "create", ROLE_CONTRIBUTOR, 0 },
	{ OP_ROTATE, "rotate", ROLE_CONTRIBUTOR, 0 },
	{ OP_VERSIONS, "list-versions", ROLE_READER, 0 },
	{ OP_LIST_DELETED, "list-deleted", ROLE_READER, 0 },
	{ OP_GET_DELETED, "get-deleted", ROLE_READER, 0 },
	{ OP_PURGE, "purge", ROLE_OWNER, 0 },
	{ OP_RECOVER, "recover", ROLE_CONTRIBUTOR, 0 },
	{ OP_ENCRYPT, "encrypt", ROLE_CONTRIBUTOR, KV_OP_ENCRYPT },
	{ OP_DECRYPT, "decrypt", ROLE_CONTRIBUTOR, KV_OP_DECRYPT },
	{ OP_SIGN, "sign", ROLE_CONTRIBUTOR, KV_OP_SIGN },
	{ OP_VERIFY, "verify", ROLE_CONTRIBUTOR, KV_OP_VERIFY },
	{ OP_WRAP, "wrapKey", ROLE_CONTRIBUTOR, KV_OP_WRAP_KEY },
	{ OP_UNWRAP, "unwrapKey", ROLE_CONTRIBUTOR, KV_OP_UNWRAP_KEY },
	/* Import writes like create. */
	{ OP_IMPORT, "import", ROLE_CONTRIBUTOR, 0 },
	/* The policy is read like the key and written like UpdateKey. */
	{ OP_GET_POLICY, "rotation-policy-get", ROLE_READER, 0 },
	{ OP_PUT_POLICY, "rotation-policy-update", ROLE_CONTRIBUTOR, 0 },
	/* No key and no vault state: the Reader role is enough (docs/vaults.md). */
	{ OP_RNG, "rng", ROLE_READER, 0 },
	/* A backup is the key, sealed to the token: written like create. */
	{ OP_BACKUP, "backup", ROLE_CONTRIBUTOR, 0 },
	{ OP_RESTORE, "restore", ROLE_CONTRIBUTOR, 0 },
	{ OP_STATUS, "status", ROLE_READER, 0 },
	{ OP_TOKENS, "tokens", ROLE_ADMINISTRATOR, 0 },
	{ OP_VAULTS, "vaults", ROLE_READER, 0 },
	{ OP_AUDIT, "audit", ROLE_ADMINISTRATOR, 0 },
	{ OP_ADOPT, "adopt", ROLE_OWNER, 0 },
	/* Remote vaults: shown to their readers, added and removed by an
	 * Administrator of the agent (docs/remote-vaults.md). */
	{ OP_VAULT_SHOW, "vault-show", ROLE_READER, 0 },
	{ OP_VAULT_ADD, "vault-add", ROLE_ADMINISTRATOR, 0 },
	{ OP_VAULT_REMOVE, "vault-remove", ROLE_ADMINISTRATOR, 0 },
};

struct req {
	struct agent *a;
	struct MHD_Connection *c;
	const struct agent_peer *peer;
	const char *method;
	struct agent_vault *v;
	struct agent_remote *remote;  /* a remote vault instead of v */
	const char *url;              /* the request's path, unsplit */
	const struct opinfo *oi;
	enum agent_role role;
	struct kb_store_actor who;
	char base[BASE_MAX];          /* http[s]://host[/vaults/NAME] */
	const char *api_version;
	struct kv_route rt;
	const char *name, *version;   /* from the path, or NULL */
	const char *raw;
	size_t raw_len;
	cJSON *body;
	/* The answer. */
	unsigned status;
	cJSON *out;
	char *out_text;               /* or the answer printed (list pages) */
	size_t out_len;
	const char *inner;            /* innererror code of an error */
	bool upstream;                /* the error is a remote vault's */
};

/* ---------------------------------------------------------------- errors */

static int
answer_error(struct req *rq, int r)
{
	unsigned status = 500;
	const char *code = "InternalServerError";
	const char *msg = kb_error_detail(r);
	const char *retry_after = NULL;

	switch (r) {
	case KB_ERR_INVALID:
	case KB_ERR_LIMIT:
	case KB_ERR_CRYPTO:
	case KB_ERR_MECHANISM:
	case KB_ERR_UNSUPPORTED:
		status = 400;
		code = "BadParameter";
		break;
	case KB_ERR_NOT_FOUND:
		status = 404;
		code = rq->v != NULL ? "KeyNotFound" : "NotFound";
		break;
	case KB_ERR_DENIED:
		status = 403;
		code = "Forbidden";
		break;
	case KB_ERR_CONFLICT:
		status = 409;
		code = "Conflict";
		break;
	case KB_ERR_CONFIG:
		/* Only vault add meets config errors on a request. */
		status = 400;
		code = "BadParameter";
		break;
	case KB_ERR_UNREACHABLE:
	case KB_ERR_IO:
	case KB_ERR_PROTOCOL:
		/* A remote vault's (kv-client's) failures, also when vault
		 * add tries one; anywhere else the agent's own (its store or
		 * its config file full or unreadable): 500. */
		if (rq->remote != NULL || rq->upstream) {
			status = 502;
			code = "BadGateway";
		}
		break;
	case KB_ERR_BUSY:
		/* The store locked by another process past busy_timeout (or
		 * a remote vault's 503): a retry after a pause may succeed. */
		status = 503;
		code = "ServiceUnavailable";
		retry_after = BUSY_RETRY_AFTER;
		break;
	case KB_ERR_DEVICE:
	case KB_ERR_NOT_LOGGED_IN:
	case KB_ERR_PIN_INCORRECT:
	case KB_ERR_PIN_LOCKED:
	case KB_ERR_NO_TOKEN:
		status = 503;
		code = "HSMError";
		break;
	default:
		break;
	}
	if (status >= 500)
		kb_warn("%s %s: %s", rq->method, rq->oi != NULL ? rq->oi->name : "?",
		    msg);
	return agent_respond_error_hdr(rq->c, status, code, msg,
	    status == 409 ? rq->inner : NULL,
	    retry_after != NULL ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, retry_after);
}

static int
bad(struct req *rq, const char *fmt, ...) KB_PRINTF(2, 3);

static int
bad(struct req *rq, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)rq;
	return kb_error_set(KB_ERR_INVALID, "%s", msg);
}

void
agent_audit_denial(struct agent *a, const struct agent_peer *p,
    const char *vault, const char *op, const char *key, const char *result)
{
	struct kb_store_actor who;
	const struct agent_vault *v;
	struct agent_remote *rv = NULL;
	enum agent_role role;
	int r;

	if (a->store == NULL)
		return;
	/* The caller's role on the vault named (local or remote), else its
	 * best role anywhere. */
	if ((v = agent_vault_find(a, vault)) != NULL) {
		role = agent_access_role(a, v, p);
	} else if ((rv = agent_remote_get(a, vault)) != NULL) {
		const struct agent_remote_cfg *c = agent_remote_config(rv);

		role = agent_access_role_in(a, c->principals, c->n_principals, p);
		agent_remote_put(a, rv);
	} else {
		role = agent_access_max_role(a, p);
	}
	who = agent_peer_actor(p, role);
	if (key != NULL && kv_check(KV_FIELD_KEY_NAME, key) != 0)
		key = NULL;
	if ((r = kb_store_audit_append(a->store, &who, vault, op, key, NULL,
	    result, kb_now_unix())) != 0)
		kb_warn("cannot write an audit record: %s", kb_error_detail(r));
}

static const struct opinfo *info(enum kv_op op);

void
agent_kvapi_deny_audit(struct agent *a, const struct agent_peer *p,
    const char *url, const char *method, const char *result)
{
	const struct agent_vault *dv = agent_vault_default(a);
	const struct opinfo *oi;
	struct kv_route rt;
	const char *vault;
	char *path;

	if ((path = kb_strdup(url)) == NULL)
		return;
	kv_route_parse(path, method, &rt);
	oi = info(rt.op);
	if (rt.vault != NULL)
		vault = rt.vault;
	else if (!rt.ext && dv != NULL)
		vault = dv->cfg->name;
	else
		vault = "*";
	if (strlen(vault) > KB_STORE_AUDIT_VAULT_MAX ||
	    kv_check(KV_FIELD_VAULT_NAME, vault) != 0)
		vault = "*";
	agent_audit_denial(a, p, vault, oi != NULL ? oi->name : "request",
	    rt.name, result);
	free(path);
}

/* ------------------------------------------------------------ JSON input */

/* The member called name, at most once (strict JSON: no duplicates). */
static int
member(struct req *rq, const cJSON *obj, const char *name, const cJSON **out)
{
	const cJSON *it, *found = NULL;

	*out = NULL;
	cJSON_ArrayForEach(it, obj) {
		if (it->string != NULL && strcmp(it->string, name) == 0) {
			if (found != NULL)
				return bad(rq, "the member '%s' appears twice", name);
			found = it;
		}
	}
	*out = found;
	return 0;
}

static int
get_string(struct req *rq, const cJSON *obj, const char *name, bool required,
    const char **out)
{
	const cJSON *it;
	int r;

	*out = NULL;
	if ((r = member(rq, obj, name, &it)) != 0)
		return r;
	if (it == NULL || cJSON_IsNull(it)) {
		if (required)
			return bad(rq, "the member '%s' is required", name);
		return 0;
	}
	if (!cJSON_IsString(it))
		return bad(rq, "the member '%s' must be a string", name);
	*out = it->valuestring;
	return 0;
}

static int
get_bool(struct req *rq, const cJSON *obj, const char *name, bool *set,
    bool *out)
{
	const cJSON *it;
	int r;

	*set = false;
	if ((r = member(rq, obj, name, &it)) != 0)
		return r;
	if (it == NULL || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsBool(it))
		return bad(rq, "the member '%s' must be true or false", name);
	*set = true;
	*out = cJSON_IsTrue(it);
	return 0;
}

/* An integer member: *set false if absent; *null true if JSON null. */
static int
get_int(struct req *rq, const cJSON *obj, const char *name, int64_t min,
    int64_t max, bool *set, bool *null, int64_t *out)
{
	const cJSON *it;
	double d;
	int r;

	*set = false;
	if (null != NULL)
		*null = false;
	if ((r = member(rq, obj, name, &it)) != 0)
		return r;
	if (it == NULL)
		return 0;
	if (cJSON_IsNull(it)) {
		if (null == NULL)
			return 0;
		*set = true;
		*null = true;
		return 0;
	}
	if (!cJSON_IsNumber(it))
		return bad(rq, "the member '%s' must be a number", name);
	d = it->valuedouble;
	/* Written so that NaN and infinities fail too (no libm needed). */
	if (!(d >= (double)min && d <= (double)max) || (double)(int64_t)d != d)
		return bad(rq, "the member '%s' must be a whole number from %" PRId64
		    " to %" PRId64, name, min, max);
	*set = true;
	*out = (int64_t)d;
	return 0;
}

/* A base64url member (standard base64 accepted too), decoded. */
static int
get_bytes(struct req *rq, const cJSON *obj, const char *name, bool required,
    unsigned char **out, size_t *len, bool *present)
{
	const char *s;
	int r;

	*out = NULL;
	*len = 0;
	if (present != NULL)
		*present = false;
	if ((r = get_string(rq, obj, name, required, &s)) != 0)
		return r;
	if (s == NULL)
		return 0;
	if (kb_b64url_decode(s, strlen(s), out, len) != 0)
		return bad(rq, "the member '%s' is not base64url", name);
	if (present != NULL)
		*present = true;
	return 0;
}

/* Read-only members a client may not set. */
static int
refuse_members(struct req *rq, const cJSON *obj, const char *const *names,
    size_t n, const char *why)
{
	const cJSON *it;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if ((r = member(rq, obj, names[i], &it)) != 0)
			return r;
		if (it != NULL && !cJSON_IsNull(it))
			return bad(rq, "the member '%s' %s", names[i], why);
	}
	return 0;
}

static int
parse_body(struct req *rq, bool required)
{
	const char *end = NULL;
	size_t i;

	if (rq->raw_len == 0) {
		if (required)
			return bad(rq, "the request needs a JSON body");
		return 0;
	}
	rq->body = cJSON_ParseWithLengthOpts(rq->raw, rq->raw_len, &end, false);
	if (rq->body == NULL)
		return bad(rq, "the request body is not valid JSON");
	for (i = (size_t)(end - rq->raw); i < rq->raw_len; i++)
		if (rq->raw[i] != ' ' && rq->raw[i] != '\t' && rq->raw[i] != '\r' &&
		    rq->raw[i] != '\n')
			return bad(rq, "the request body has data after the JSON value");
	if (!cJSON_IsObject(rq->body))
		return bad(rq, "the request body must be a JSON object");
	return 0;
}

/* attributes {enabled, nbf, exp, exportable}: shared by create and update. */
struct attrs {
	bool set_enabled, enabled;
	bool set_nbf, nbf_null, set_exp, exp_null;
	int64_t nbf, exp;
};

static int
parse_attributes(struct req *rq, const cJSON *body, struct attrs *at)
{
	static const char *const ro[] = {
		"created", "updated", "recoveryLevel", "recoverableDays",
		"hsmPlatform", "attestation", "key_size"
	};
	const cJSON *o;
	bool set, exportable = false;
	int r;

	memset(at, 0, sizeof(*at));
	if ((r = member(rq, body, "attributes", &o)) != 0)
		return r;
	if (o == NULL || cJSON_IsNull(o))
		return 0;
	if (!cJSON_IsObject(o))
		return bad(rq, "the member 'attributes' must be an object");
	if ((r = refuse_members(rq, o, ro, sizeof(ro) / sizeof(ro[0]),
	    "is read-only")) != 0)
		return r;
	if ((r = get_bool(rq, o, "enabled", &at->set_enabled, &at->enabled)) != 0 ||
	    (r = get_int(rq, o, "nbf", 0, TIME_MAX, &at->set_nbf, &at->nbf_null,
	    &at->nbf)) != 0 ||
	    (r = get_int(rq, o, "exp", 0, TIME_MAX, &at->set_exp, &at->exp_null,
	    &at->exp)) != 0 ||
	    (r = get_bool(rq, o, "exportable", &set, &exportable)) != 0)
		return r;
	if (set && exportable)
		return bad(rq, "keys of a local vault cannot be exportable");
	if ((r = member(rq, o, "external_key", &o)) != 0)
		return r;
	if (o != NULL && !cJSON_IsNull(o))
		return bad(rq, "external keys are not supported by local vaults");
	return 0;
}

/* tags: checked with Key Vault's rules, returned as JSON text. */
static int
parse_tags(struct req *rq, const cJSON *body, bool *set, char **json)
{
	const cJSON *t;
	int r;

	*set = false;
	*json = NULL;
	if ((r = member(rq, body, "tags", &t)) != 0)
		return r;
	if (t == NULL)
		return 0;
	*set = true;
	if (cJSON_IsNull(t))
		t = NULL;
	else if ((r = kv_tags_check(t)) != 0)
		return r;
	*json = t != NULL ? cJSON_PrintUnformatted(t) : kb_strdup("{}");
	return *json != NULL ? 0 : KB_ERR_ALLOC;
}

/* The key_ops a key type allows (docs/vaults.md). */
static unsigned
ops_allowed(const char *kty)
{
	if (strncmp(kty, "RSA", 3) == 0)
		return KV_OP_ENCRYPT | KV_OP_DECRYPT | KV_OP_SIGN | KV_OP_VERIFY |
		    KV_OP_WRAP_KEY | KV_OP_UNWRAP_KEY;
	if (strncmp(kty, "EC", 2) == 0)
		return KV_OP_SIGN | KV_OP_VERIFY;
	return KV_OP_ENCRYPT | KV_OP_DECRYPT | KV_OP_WRAP_KEY | KV_OP_UNWRAP_KEY;
}

static int
parse_key_ops(struct req *rq, const cJSON *body, const char *kty, bool *set,
    unsigned *ops)
{
	const cJSON *k;
	int r;

	*set = false;
	if ((r = member(rq, body, "key_ops", &k)) != 0)
		return r;
	if (k == NULL || cJSON_IsNull(k))
		return 0;
	if (!cJSON_IsArray(k))
		return bad(rq, "the member 'key_ops' must be an array of strings");
	if ((r = kv_key_ops_parse(k, ops)) != 0)
		return r;
	if (*ops & (KV_OP_IMPORT | KV_OP_EXPORT))
		return bad(rq, "keys of a local vault never leave the token: "
		    "key_ops 'import' and 'export' are not supported");
	if (*ops & ~ops_allowed(kty))
		return bad(rq, "key_ops names an operation that keys of type %s "
		    "cannot do", kty);
	if (*ops == 0)
		return bad(rq, "key_ops must name at least one operation");
	*set = true;
	return 0;
}

/* ----------------------------------------------------------- JSON output */

static int
add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v) != NULL ? 0 : KB_ERR_ALLOC;
}

/*
 * Every number the API answers with is a whole one (times, sizes, days).
 * cJSON keeps numbers as doubles and prints each with "%1.15g" checked
 * by sscanf: a tenth of a list page's CPU.  A raw member printed from
 * the integer gives the same bytes.
 */
static int
add_num(cJSON *o, const char *k, int64_t v)
{
	char t[24];

	snprintf(t, sizeof(t), "%" PRId64, v);
	return cJSON_AddRawToObject(o, k, t) != NULL ? 0 : KB_ERR_ALLOC;
}

static int
add_b64(cJSON *o, const char *k, const unsigned char *p, size_t n)
{
	char *s = kb_b64url_encode(p, n);
	int r;

	if (s == NULL)
		return KB_ERR_ALLOC;
	r = add_str(o, k, s);
	kb_wipe(s, strlen(s));     /* a plaintext, a key or random bytes */
	free(s);
	return r;
}

/*
 * The parts of an identifier, one after the other, cut as snprintf would
 * cut them: snprintf itself was a thirtieth of a list page's CPU.
 */
static void
id_join(char *buf, size_t n, const char *const *parts, size_t nparts)
{
	size_t i, len, at = 0;

	if (n == 0)
		return;
	for (i = 0; i < nparts && at < n - 1; i++) {
		len = strlen(parts[i]);
		if (len > n - 1 - at)
			len = n - 1 - at;
		memcpy(buf + at, parts[i], len);
		at += len;
	}
	buf[at] = '\0';
}

static void
kid_of(const struct req *rq, const struct kb_store_key *k, bool with_version,
    char *buf, size_t n)
{
	const char *parts[] = { rq->base, "/keys/", k->name, "/", k->version };

	id_join(buf, n, parts, with_version ? 5 : 3);
}

/* A deleted key's recoveryId. */
static void
recovery_id_of(const struct req *rq, const struct kb_store_key *k, char *buf,
    size_t n)
{
	const char *parts[] = { rq->base, "/deletedkeys/", k->name };

	id_join(buf, n, parts, 3);
}

/*
 * JSON printed straight into a buffer, for list pages: building a cJSON
 * tree of 25 items, printing it and freeing it was a third of the
 * agent's CPU per page, most of it malloc and free.  Strings are escaped
 * as cJSON prints them (", \ and control characters; other bytes as they
 * are).  The first error sticks in err, which callers check at the end.
 */
struct jw {
	struct kb_buf b;
	int err;
};

static void
jw_raw(struct jw *w, const char *p, size_t n)
{
	if (w->err == 0 && n > 0)
		w->err = kb_buf_append(&w->b, p, n);
}

static void
jw_lit(struct jw *w, const char *lit)
{
	jw_raw(w, lit, strlen(lit));
}

static void
jw_str(struct jw *w, const char *v)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = v;
	char esc[6];

	jw_raw(w, "\"", 1);
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jw_raw(w, run, (size_t)(v - run));
		run = v + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': case '\\': esc[1] = (char)c; jw_raw(w, esc, 2); break;
		case '\b': jw_raw(w, "\\b", 2); break;
		case '\f': jw_raw(w, "\\f", 2); break;
		case '\n': jw_raw(w, "\\n", 2); break;
		case '\r': jw_raw(w, "\\r", 2); break;
		case '\t': jw_raw(w, "\\t", 2); break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jw_raw(w, esc, 6);
			break;
		}
	}
	jw_raw(w, run, (size_t)(v - run));
	jw_raw(w, "\"", 1);
}

/* Decimal by hand: snprintf was a twentieth of a list page. */
static void
jw_i64(struct jw *w, int64_t v)
{
	char t[24], *p = t + sizeof(t);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	jw_raw(w, p, (size_t)(t + sizeof(t) - p));
}

/* ,"name": */
static void
jw_key(struct jw *w, const char *name)
{
	jw_raw(w, ",\"", 2);
	jw_lit(w, name);
	jw_raw(w, "\":", 2);
}

/* Stored tags are text cJSON printed (store.c); spliced as they are. */
static int
tags_text(const struct kb_store_key *k, const char **out)
{
	size_t n;

	*out = NULL;
	if (k->tags_json == NULL || strcmp(k->tags_json, "{}") == 0)
		return 0;    /* Key Vault omits empty tags */
	n = strlen(k->tags_json);
	if (n < 2 || k->tags_json[0] != '{' || k->tags_json[n - 1] != '}')
		return kb_error_set(KB_ERR_INTERNAL, "stored tags are not JSON");
	*out = k->tags_json;
	return 0;
}

/* The attributes object, the one rendering for bundles and list items. */
static void
jw_attributes(struct jw *w, const struct req *rq, const struct kb_store_key *k)
{
	jw_lit(w, k->enabled ? "{\"enabled\":true" : "{\"enabled\":false");
	if (k->has_nbf) {
		jw_key(w, "nbf");
		jw_i64(w, k->nbf);
	}
	if (k->has_exp) {
		jw_key(w, "exp");
		jw_i64(w, k->exp);
	}
	jw_key(w, "created");
	jw_i64(w, k->created);
	jw_key(w, "updated");
	jw_i64(w, k->updated);
	jw_key(w, "recoveryLevel");
	jw_str(w, k->recovery_level);
	jw_key(w, "recoverableDays");
	jw_i64(w, k->recoverable_days);
	jw_lit(w, ",\"exportable\":false");
	/* Read-only key_size, added in 2026-04-01 (NOTES.md 0.1). */
	if (k->key_size > 0 && rq->api_version != NULL &&
	    rq->api_version[0] == '2' && strcmp(rq->api_version, "2026-04-01") >= 0) {
		jw_key(w, "key_size");
		jw_i64(w, k->key_size);
	}
	jw_raw(w, "}", 1);
}

static int
add_attributes(const struct req *rq, cJSON *o, const struct kb_store_key *k)
{
	struct jw w = { .err = 0 };
	int r;

	kb_buf_init(&w.b, 4096);
	jw_attributes(&w, rq, k);
	if ((r = w.err) == 0 && cJSON_AddRawToObject(o, "attributes",
	    (const char *)w.b.data) == NULL)
		r = KB_ERR_ALLOC;
	kb_buf_free(&w.b);
	return r;
}

static int
add_tags(cJSON *o, const struct kb_store_key *k)
{
	const char *t;
	int r;

	if ((r = tags_text(k, &t)) != 0)
		return r;
	if (t != NULL && cJSON_AddRawToObject(o, "tags", t) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

static int
add_deleted(struct req *rq, cJSON *o, const struct kb_store_key *k)
{
	char rid[BASE_MAX + 160];

	recovery_id_of(rq, k, rid, sizeof(rid));
	if (add_str(o, "recoveryId", rid) != 0 ||
	    add_num(o, "deletedDate", k->deleted_date) != 0 ||
	    add_num(o, "scheduledPurgeDate", k->scheduled_purge_date) != 0)
		return KB_ERR_ALLOC;
	return 0;
}

/* The "key" member: kid, kty, key_ops, public parts (never for oct). */
static int
add_jwk(struct req *rq, cJSON *o, const struct kb_store_key *k)
{
	static const char *const pub[] = { "n", "e", "crv", "x", "y" };
	struct agent_keyref *ref = NULL;
	char kid[BASE_MAX + 200], *text = NULL;
	cJSON *key, *ops, *parsed = NULL, *it;
	size_t i;
	int r = 0, r2;

	kid_of(rq, k, true, kid, sizeof(kid));
	if ((key = cJSON_AddObjectToObject(o, "key")) == NULL ||
	    add_str(key, "kid", kid) != 0 || add_str(key, "kty", k->kty) != 0 ||
	    (ops = kv_key_ops_json(k->key_ops)) == NULL)
		return KB_ERR_ALLOC;
	cJSON_AddItemToObject(key, "key_ops", ops);
	if (strncmp(k->kty, "oct", 3) == 0)
		return 0;
	/*
	 * The public JWK the store recorded the first time the token showed
	 * it; else the token's (then recorded: a lookup on SoftHSM reads its
	 * whole object directory).  The store is the record: a token that
	 * cannot show the public half (object lost, device error) must not
	 * turn a committed change into an error answer.  The bundle then
	 * lacks the public parts.
	 */
	if (k->public_jwk != NULL) {
		if ((text = kb_strdup(k->public_jwk)) == NULL)
			return KB_ERR_ALLOC;
	} else if ((r = agent_vault_key(rq->a, rq->v, k, &ref)) == 0) {
		const char *jwk;

		if ((r = agent_keyref_public_jwk(rq->a, ref, &jwk)) == 0 &&
		    (text = kb_strdup(jwk)) == NULL)
			r = KB_ERR_ALLOC;
		agent_keyref_put(rq->a, ref);
		if (r == 0 && (r2 = kb_store_set_public_jwk(rq->a->store,
		    rq->v->cfg->name, k->name, k->version, text)) != 0)
			kb_warn("vault %s: the public key of %s version %s is not "
			    "recorded: %s", rq->v->cfg->name, k->name, k->version,
			    kb_error_detail(r2));
	}
	if (r != 0) {
		kb_warn("vault %s: cannot read the public key of %s version %s "
		    "from the token: %s", rq->v->cfg->name, k->name, k->version,
		    kb_error_detail(r));
		return 0;
	}
	if ((parsed = cJSON_Parse(text)) == NULL) {
		free(text);
		return kb_error_set(KB_ERR_INTERNAL, "the public key is not JSON");
	}
	free(text);
	for (i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
		it = cJSON_GetObjectItemCaseSensitive(parsed, pub[i]);
		if (cJSON_IsString(it) && add_str(key, pub[i], it->valuestring) != 0) {
			cJSON_Delete(parsed);
			return KB_ERR_ALLOC;
		}
	}
	cJSON_Delete(parsed);
	return 0;
}

/* KeyBundle, or DeletedKeyBundle when k->deleted. */
static int
bundle(struct req *rq, const struct kb_store_key *k, cJSON **out)
{
	cJSON *o;
	int r;

	if ((o = cJSON_CreateObject()) == NULL)
		return KB_ERR_ALLOC;
	if ((k->deleted && (r = add_deleted(rq, o, k)) != 0) ||
	    (r = add_jwk(rq, o, k)) != 0 || (r = add_attributes(rq, o, k)) != 0 ||
	    (r = add_tags(o, k)) != 0) {
		cJSON_Delete(o);
		return r;
	}
	*out = o;
	return 0;
}

static int
answer(struct req *rq, unsigned status, cJSON *body)
{
	rq->status = status;
	rq->out = body;
	return 0;
}

/* An answer printed already (taken). */
static void
answer_text(struct req *rq, unsigned status, char *text, size_t len)
{
	rq->status = status;
	rq->out_text = text;
	rq->out_len = len;
}

/* ------------------------------------------------------------- handlers */

static int
page_args(struct req *rq, unsigned def, unsigned max, unsigned *limit,
    const char **skip)
{
	const char *m, *s;
	unsigned long long v;

	m = MHD_lookup_connection_value(rq->c, MHD_GET_ARGUMENT_KIND, "maxresults");
	s = MHD_lookup_connection_value(rq->c, MHD_GET_ARGUMENT_KIND, "$skiptoken");
	*limit = def;
	if (m != NULL) {
		if (kb_parse_ull(m, 1, max, &v) != 0)
			return bad(rq, "maxresults must be a number from 1 to %u", max);
		*limit = (unsigned)v;
	}
	*skip = NULL;
	if (s != NULL && s[0] != '\0') {
		if (kv_check(KV_FIELD_KEY_NAME, s) != 0)
			return bad(rq, "the $skiptoken is not one this vault gave");
		*skip = s;
	}
	return 0;
}

/* A list item: [deleted fields,] kid, attributes[, tags]. */
static int
jw_item(struct jw *w, const struct req *rq, const struct kb_store_key *k,
    bool with_version)
{
	char kid[BASE_MAX + 200];
	const char *tags;
	int r;

	if ((r = tags_text(k, &tags)) != 0)
		return r;
	jw_raw(w, "{", 1);
	if (k->deleted) {
		recovery_id_of(rq, k, kid, sizeof(kid));
		jw_lit(w, "\"recoveryId\":");
		jw_str(w, kid);
		jw_key(w, "deletedDate");
		jw_i64(w, k->deleted_date);
		jw_key(w, "scheduledPurgeDate");
		jw_i64(w, k->scheduled_purge_date);
		jw_raw(w, ",", 1);
	}
	kid_of(rq, k, with_version, kid, sizeof(kid));
	jw_lit(w, "\"kid\":");
	jw_str(w, kid);
	jw_key(w, "attributes");
	jw_attributes(w, rq, k);
	if (tags != NULL) {
		jw_key(w, "tags");
		jw_lit(w, tags);
	}
	jw_raw(w, "}", 1);
	return 0;
}

/* KeyListResult / DeletedKeyListResult, printed directly (see struct jw). */
static int
list_answer(struct req *rq, const char *what, struct kb_store_key *items,
    size_t n, const char *next, unsigned limit, bool with_version)
{
	char link[BASE_MAX + 400];
	struct jw w = { .err = 0 };
	size_t i, len;
	char *text;
	int r = 0;

	kb_buf_init(&w.b, LIST_TEXT_MAX);
	/* An item without tags takes about 250 bytes: grown once, not 8 times. */
	kb_buf_reserve(&w.b, 1024 + n * 384);
	jw_lit(&w, "{\"value\":[");
	for (i = 0; i < n && r == 0; i++) {
		if (i > 0)
			jw_raw(&w, ",", 1);
		r = jw_item(&w, rq, &items[i], with_version);
	}
	jw_lit(&w, "],\"nextLink\":");
	if (next != NULL) {
		snprintf(link, sizeof(link), "%s/%s?api-version=%s&$skiptoken=%s"
		    "&maxresults=%u", rq->base, what, rq->api_version, next, limit);
		jw_str(&w, link);
	} else {
		jw_lit(&w, "null");
	}
	jw_raw(&w, "}", 1);
	if (r == 0 && (r = w.err) == 0) {
		if ((text = kb_buf_steal(&w.b, &len)) == NULL)
			r = KB_ERR_ALLOC;
		else
			answer_text(rq, 200, text, len);
	}
	kb_buf_free(&w.b);
	return r;
}

static int
h_list(struct req *rq)
{
	struct kb_store_key *items = NULL;
	const char *skip, *what = "keys";
	char *next = NULL, name[KV_NAME_MAX + 1 + 16];
	unsigned limit;
	size_t n = 0;
	int r;

	if ((r = page_args(rq, PAGE_DEFAULT, PAGE_MAX, &limit, &skip)) != 0)
		return r;
	switch (rq->oi->op) {
	case OP_LIST_KEYS:
		r = kb_store_list_keys(rq->a->store, rq->v->cfg->name, skip, limit,
		    &items, &n, &next);
		break;
	case OP_LIST_DELETED:
		what = "deletedkeys";
		r = kb_store_list_deleted(rq->a->store, rq->v->cfg->name, skip,
		    limit, &items, &n, &next);
		break;
	default:
		snprintf(name, sizeof(name), "keys/%s/versions", rq->name);
		what = name;
		r = kb_store_list_versions(rq->a->store, rq->v->cfg->name, rq->name,
		    skip, limit, &items, &n, &next);
		break;
	}
	if (r == 0)
		r = list_answer(rq, what, items, n, next, limit,
		    rq->oi->op == OP_VERSIONS);
	kb_store_keys_free(items, n);
	free(next);
	return r;
}

static int
h_get(struct req *rq)
{
	struct kb_store_key *k = NULL;
	cJSON *o = NULL;
	int r;

	if (rq->oi->op == OP_GET_DELETED)
		r = kb_store_get_deleted(rq->a->store, rq->v->cfg->name, rq->name, &k);
	else
		r = kb_store_get_key(rq->a->store, rq->v->cfg->name, rq->name,
		    rq->version, &k);
	if (r == 0 && (r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
	kb_store_key_free(k);
	return r;
}

/* A 409 on a name: say why as Key Vault does. */
static int
conflict_inner(struct req *rq, int r)
{
	struct kb_store_key *dk = NULL;

	if (r == KB_ERR_CONFLICT && kb_store_get_deleted(rq->a->store,
	    rq->v->cfg->name, rq->name, &dk) == 0)
		rq->inner = "ObjectIsDeletedButRecoverable";
	kb_store_key_free(dk);
	return r;
}

static int
h_create(struct req *rq)
{
	static const char *const unsupported[] = { "release_policy" };
	struct kb_store_new_version nv;
	struct kb_store_key *k = NULL;
	struct attrs at;
	const char *kty, *crv;
	char *tags = NULL;
	bool set, ops_set;
	int64_t size = 0, pe = 0;
	cJSON *o = NULL;
	int r;

	memset(&nv, 0, sizeof(nv));
	if ((r = parse_body(rq, true)) != 0 ||
	    (r = get_string(rq, rq->body, "kty", true, &kty)) != 0)
		goto out;
	if ((r = kv_kty_check(kty)) != 0)
		goto out;
	if (strncmp(kty, "AKP", 3) == 0) {
		r = bad(rq, "local vaults do not support kty %s", kty);
		goto out;
	}
	if ((r = get_string(rq, rq->body, "crv", false, &crv)) != 0 ||
	    (r = get_int(rq, rq->body, "key_size", 0, 65536, &set, NULL, &size)) != 0)
		goto out;
	if (!set)
		size = strncmp(kty, "RSA", 3) == 0 ? 2048 :
		    strncmp(kty, "oct", 3) == 0 ? 256 : 0;
	if (strncmp(kty, "EC", 2) == 0 && crv == NULL)
		crv = "P-256";
	if (crv != NULL && (r = kv_crv_check(crv)) != 0)
		goto out;
	if ((r = kv_key_shape_check(kty, (unsigned)size, crv)) != 0)
		goto out;
	if (crv != NULL && strcmp(crv, "P-256K") == 0) {
		r = bad(rq, "local vaults do not support the curve P-256K");
		goto out;
	}
	if ((r = get_int(rq, rq->body, "public_exponent", 0, INT32_MAX, &set, NULL,
	    &pe)) != 0)
		goto out;
	if (set && (strncmp(kty, "RSA", 3) != 0 || pe != 65537)) {
		r = bad(rq, "public_exponent must be 65537, and only for RSA keys");
		goto out;
	}
	if ((r = refuse_members(rq, rq->body, unsupported, 1,
	    "is not supported: keys of a local vault cannot be released")) != 0 ||
	    (r = parse_key_ops(rq, rq->body, kty, &ops_set, &nv.key_ops)) != 0 ||
	    (r = parse_attributes(rq, rq->body, &at)) != 0 ||
	    (r = parse_tags(rq, rq->body, &set, &tags)) != 0)
		goto out;
	nv.kty = kty;
	nv.key_size = (unsigned)size;
	nv.crv = crv;
	if (!ops_set)
		nv.key_ops = ops_allowed(kty);
	nv.enabled = at.set_enabled ? at.enabled : true;
	nv.has_nbf = at.set_nbf && !at.nbf_null;
	nv.nbf = at.nbf;
	nv.has_exp = at.set_exp && !at.exp_null;
	nv.exp = at.exp;
	nv.tags_json = tags;
	if ((r = agent_vault_create(rq->a, rq->v, &rq->who, rq->name, &nv, &k)) != 0) {
		r = conflict_inner(rq, r);
		goto out;
	}
	if ((r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
 out:
	kb_store_key_free(k);
	free(tags);
	return r;
}

static int
h_update(struct req *rq)
{
	static const char *const unsupported[] = { "release_policy" };
	struct kb_store_update u;
	struct kb_store_key *k = NULL, *cur = NULL;
	struct attrs at;
	char *tags = NULL;
	cJSON *o = NULL;
	int r;

	memset(&u, 0, sizeof(u));
	if ((r = parse_body(rq, true)) != 0 ||
	    (r = refuse_members(rq, rq->body, unsupported, 1,
	    "is not supported: keys of a local vault cannot be released")) != 0)
		goto out;
	/* key_ops depend on the key type: read the version first. */
	if ((r = kb_store_get_key(rq->a->store, rq->v->cfg->name, rq->name,
	    rq->version, &cur)) != 0)
		goto out;
	if ((r = parse_key_ops(rq, rq->body, cur->kty, &u.set_key_ops,
	    &u.key_ops)) != 0 ||
	    (r = parse_attributes(rq, rq->body, &at)) != 0 ||
	    (r = parse_tags(rq, rq->body, &u.set_tags, &tags)) != 0)
		goto out;
	u.set_enabled = at.set_enabled;
	u.enabled = at.enabled;
	u.set_nbf = at.set_nbf;
	u.has_nbf = at.set_nbf && !at.nbf_null;
	u.nbf = at.nbf;
	u.set_exp = at.set_exp;
	u.has_exp = at.set_exp && !at.exp_null;
	u.exp = at.exp;
	u.tags_json = tags;
	/* The version found above, even if a newer one appears meanwhile. */
	if ((r = agent_vault_update(rq->a, rq->v, &rq->who, rq->name,
	    cur->version, &u, &k)) != 0)
		goto out;
	if ((r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
 out:
	kb_store_key_free(k);
	kb_store_key_free(cur);
	free(tags);
	return r;
}

static int
h_lifecycle(struct req *rq)
{
	struct kb_store_key *k = NULL;
	cJSON *o = NULL;
	int r;

	/* These take no body; an empty object is tolerated (SDKs send one). */
	if ((r = parse_body(rq, false)) != 0)
		return r;
	switch (rq->oi->op) {
	case OP_DELETE_KEY:
		r = agent_vault_delete(rq->a, rq->v, &rq->who, rq->name, &k);
		break;
	case OP_RECOVER:
		r = agent_vault_recover(rq->a, rq->v, &rq->who, rq->name, &k);
		r = conflict_inner(rq, r);
		break;
	case OP_ROTATE:
		r = agent_vault_rotate(rq->a, rq->v, &rq->who, rq->name, &k);
		break;
	case OP_PURGE:
		if ((r = agent_vault_purge(rq->a, rq->v, &rq->who, rq->name)) == 0)
			return answer(rq, 204, NULL);
		return r;
	default:
		return KB_ERR_INTERNAL;
	}
	if (r == 0 && (r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
	kb_store_key_free(k);
	return r;
}

/* ----------------------------------------------------------------- crypto */

enum alg_kind { ALG_OAEP1, ALG_OAEP256, ALG_RSA15, ALG_RS, ALG_PS, ALG_ES,
	ALG_GCM, ALG_KW };

static const struct alg {
	const char *name;
	enum alg_kind kind;
	unsigned param;     /* hash bits, or AES key bits */
} algs[] = {
	{ "RSA-OAEP", ALG_OAEP1, 1 },
	{ "RSA-OAEP-256", ALG_OAEP256, 256 },
	{ "RSA1_5", ALG_RSA15, 0 },
	{ "RS256", ALG_RS, 256 }, { "RS384", ALG_RS, 384 }, { "RS512", ALG_RS, 512 },
	{ "PS256", ALG_PS, 256 }, { "PS384", ALG_PS, 384 }, { "PS512", ALG_PS, 512 },
	{ "ES256", ALG_ES, 256 }, { "ES384", ALG_ES, 384 }, { "ES512", ALG_ES, 512 },
	{ "A128GCM", ALG_GCM, 128 }, { "A192GCM", ALG_GCM, 192 },
	{ "A256GCM", ALG_GCM, 256 },
	{ "A128KW", ALG_KW, 128 }, { "A192KW", ALG_KW, 192 }, { "A256KW", ALG_KW, 256 },
};

static enum kb_p11_hash
hash_of(unsigned bits)
{
	return bits == 384 ? KB_P11_SHA384 : bits == 512 ? KB_P11_SHA512 :
	    KB_P11_SHA256;
}

/* Is alg valid for this operation on this key?  Key Vault's table. */
static int
alg_check(struct req *rq, const struct kb_store_key *k, const struct alg *al)
{
	bool rsa = strncmp(k->kty, "RSA", 3) == 0;
	bool ec = strncmp(k->kty, "EC", 2) == 0;
	bool oct = strncmp(k->kty, "oct", 3) == 0;
	enum kv_op op = rq->oi->op;
	bool ok = false;

	switch (al->kind) {
	case ALG_OAEP1: case ALG_OAEP256: case ALG_RSA15:
		ok = rsa && (op == OP_ENCRYPT || op == OP_DECRYPT || op == OP_WRAP ||
		    op == OP_UNWRAP);
		break;
	case ALG_RS: case ALG_PS:
		ok = rsa && (op == OP_SIGN || op == OP_VERIFY);
		break;
	case ALG_ES:
		ok = ec && (op == OP_SIGN || op == OP_VERIFY) &&
		    ((al->param == 256 && strcmp(k->crv, "P-256") == 0) ||
		    (al->param == 384 && strcmp(k->crv, "P-384") == 0) ||
		    (al->param == 512 && strcmp(k->crv, "P-521") == 0));
		break;
	case ALG_GCM:
		ok = oct && (op == OP_ENCRYPT || op == OP_DECRYPT) &&
		    al->param == k->key_size;
		break;
	case ALG_KW:
		ok = oct && (op == OP_WRAP || op == OP_UNWRAP) &&
		    al->param == k->key_size;
		break;
	}
	if (!ok)
		return bad(rq, "the algorithm %s cannot be used for %s with this "
		    "%s key", al->name, rq->oi->name, k->kty);
	return 0;
}

/* Usable now?  Enabled, within nbf..exp, and the operation in key_ops. */
static int
usable(struct req *rq, const struct kb_store_key *k)
{
	int64_t now = kb_now_unix();

	if (!k->enabled)
		return kb_error_set(KB_ERR_DENIED, "Operation %s is not allowed on a "
		    "disabled key.", rq->oi->name);
	if (k->has_nbf && now < k->nbf)
		return kb_error_set(KB_ERR_DENIED, "Operation %s is not allowed: the "
		    "key is not valid yet (nbf).", rq->oi->name);
	if (k->has_exp && now >= k->exp)
		return kb_error_set(KB_ERR_DENIED, "Operation %s is not allowed: the "
		    "key has expired (exp).", rq->oi->name);
	if (!(k->key_ops & rq->oi->key_op))
		return kb_error_set(KB_ERR_DENIED, "Operation %s is not permitted on "
		    "this key (key_ops).", rq->oi->name);
	return 0;
}

struct cbufs {
	unsigned char *value, *iv, *tag, *aad, *digest, *out;
	size_t value_len, iv_len, tag_len, aad_len, digest_len, out_len;
	bool has_iv, has_tag, has_aad;
};

static void
cbufs_free(struct cbufs *b)
{
	/* Plaintexts pass through here: wipe everything. */
	if (b->value != NULL)
		kb_wipe(b->value, b->value_len);
	if (b->out != NULL)
		kb_wipe(b->out, b->out_len);
	free(b->value);
	free(b->iv);
	free(b->tag);
	free(b->aad);
	free(b->digest);
	free(b->out);
}

static int
do_crypto(struct req *rq, kb_p11_key *key, const struct kb_store_key *k,
    const struct alg *al, struct cbufs *b, cJSON *o)
{
	enum kv_op op = rq->oi->op;
	unsigned char tag[16];
	size_t want;
	int r;

	switch (al->kind) {
	case ALG_RS: case ALG_PS: case ALG_ES:
		want = al->param / 8;
		if (b->digest_len != want)
			return bad(rq, "%s needs a digest of %zu bytes, not %zu",
			    al->name, want, b->digest_len);
		if (op == OP_SIGN)
			return kb_p11_sign_digest(key, al->kind == ALG_RS ?
			    KB_P11_SIG_RSA_PKCS1 : al->kind == ALG_PS ?
			    KB_P11_SIG_RSA_PSS : KB_P11_SIG_ECDSA, hash_of(al->param),
			    b->digest, b->digest_len, &b->out, &b->out_len);
		r = kb_p11_verify_digest(key, al->kind == ALG_RS ?
		    KB_P11_SIG_RSA_PKCS1 : al->kind == ALG_PS ? KB_P11_SIG_RSA_PSS :
		    KB_P11_SIG_ECDSA, hash_of(al->param), b->digest, b->digest_len,
		    b->value, b->value_len);
		if (r == 0 || r == KB_ERR_SIGNATURE || r == KB_ERR_INVALID) {
			/* A malformed signature does not verify either. */
			return cJSON_AddBoolToObject(o, "value", r == 0) != NULL ?
			    0 : KB_ERR_ALLOC;
		}
		return r;
	case ALG_OAEP1: case ALG_OAEP256:
		if (op == OP_ENCRYPT || op == OP_WRAP)
			return kb_p11_rsa_oaep_encrypt(key, al->kind == ALG_OAEP1 ?
			    KB_P11_SHA1 : KB_P11_SHA256, b->value, b->value_len,
			    &b->out, &b->out_len);
		return kb_p11_rsa_oaep_decrypt(key, al->kind == ALG_OAEP1 ?
		    KB_P11_SHA1 : KB_P11_SHA256, b->value, b->value_len, &b->out,
		    &b->out_len);
	case ALG_RSA15:
		if (op == OP_ENCRYPT || op == OP_WRAP)
			return kb_p11_rsa_pkcs1_encrypt(key, b->value, b->value_len,
			    &b->out, &b->out_len);
		return kb_p11_rsa_pkcs1_decrypt(key, b->value, b->value_len, &b->out,
		    &b->out_len);
	case ALG_KW:
		if (b->value_len < 16 || b->value_len % 8 != 0)
			return bad(rq, "%s takes a value of at least 16 bytes, a "
			    "multiple of 8", al->name);
		if (op == OP_WRAP)
			return kb_p11_wrap_bytes(key, KB_P11_WRAP_AES_KW, b->value,
			    b->value_len, &b->out, &b->out_len);
		return kb_p11_unwrap_bytes(key, KB_P11_WRAP_AES_KW, b->value,
		    b->value_len, &b->out, &b->out_len);
	case ALG_GCM:
		if (op == OP_ENCRYPT) {
			if (b->has_iv)
				return bad(rq, "%s encryption draws its own IV; do not "
				    "send one", al->name);
			if ((b->iv = malloc(12)) == NULL)
				return KB_ERR_ALLOC;
			b->iv_len = 12;
			if ((r = kb_p11_random(rq->v->tok->token, b->iv, 12)) != 0 ||
			    (r = kb_p11_aes_gcm_encrypt(key, b->iv, 12, b->aad,
			    b->aad_len, b->value, b->value_len, &b->out, &b->out_len,
			    tag)) != 0)
				return r;
			if ((r = add_b64(o, "iv", b->iv, b->iv_len)) != 0 ||
			    (r = add_b64(o, "tag", tag, sizeof(tag))) != 0 ||
			    (b->has_aad && (r = add_b64(o, "aad", b->aad,
			    b->aad_len)) != 0))
				return r;
			return 0;
		}
		if (!b->has_iv || b->iv_len == 0 || b->iv_len > 128)
			return bad(rq, "%s decryption needs the iv (1 to 128 bytes)",
			    al->name);
		if (!b->has_tag || b->tag_len != 16)
			return bad(rq, "%s decryption needs the 16-byte tag", al->name);
		return kb_p11_aes_gcm_decrypt(key, b->iv, b->iv_len, b->aad,
		    b->aad_len, b->value, b->value_len, b->tag, &b->out, &b->out_len);
	}
	(void)k;
	return KB_ERR_INTERNAL;
}

static int
h_crypto(struct req *rq)
{
	struct kb_store_key *k = NULL;
	struct agent_keyref *ref = NULL;
	const struct alg *al = NULL;
	struct cbufs b;
	const char *alg;
	char kid[BASE_MAX + 200];
	cJSON *o = NULL;
	size_t i;
	int r;

	memset(&b, 0, sizeof(b));
	if ((r = parse_body(rq, true)) != 0 ||
	    (r = get_string(rq, rq->body, "alg", true, &alg)) != 0)
		goto out;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(alg, algs[i].name) == 0)
			al = &algs[i];
	if (al == NULL) {
		r = bad(rq, "unknown or unsupported algorithm '%.40s'", alg);
		goto out;
	}
	if (rq->oi->op == OP_VERIFY) {
		if ((r = get_bytes(rq, rq->body, "digest", true, &b.digest,
		    &b.digest_len, NULL)) != 0 ||
		    (r = get_bytes(rq, rq->body, "value", true, &b.value,
		    &b.value_len, NULL)) != 0)
			goto out;
	} else if (rq->oi->op == OP_SIGN) {
		if ((r = get_bytes(rq, rq->body, "value", true, &b.digest,
		    &b.digest_len, NULL)) != 0)
			goto out;
	} else if ((r = get_bytes(rq, rq->body, "value", true, &b.value,
	    &b.value_len, NULL)) != 0 ||
	    (r = get_bytes(rq, rq->body, "iv", false, &b.iv, &b.iv_len,
	    &b.has_iv)) != 0 ||
	    (r = get_bytes(rq, rq->body, "tag", false, &b.tag, &b.tag_len,
	    &b.has_tag)) != 0 ||
	    (r = get_bytes(rq, rq->body, "aad", false, &b.aad, &b.aad_len,
	    &b.has_aad)) != 0)
		goto out;
	if ((r = kb_store_get_key(rq->a->store, rq->v->cfg->name, rq->name,
	    rq->version, &k)) != 0 ||
	    (r = alg_check(rq, k, al)) != 0 || (r = usable(rq, k)) != 0)
		goto out;
	if ((r = agent_vault_key(rq->a, rq->v, k, &ref)) != 0)
		goto out;
	kid_of(rq, k, true, kid, sizeof(kid));
	if ((o = cJSON_CreateObject()) == NULL || add_str(o, "kid", kid) != 0) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = do_crypto(rq, agent_keyref_key(ref), k, al, &b, o)) != 0)
		goto out;
	if (rq->oi->op != OP_VERIFY &&
	    (r = add_b64(o, "value", b.out, b.out_len)) != 0)
		goto out;
	r = answer(rq, 200, o);
	o = NULL;
 out:
	if (r == KB_ERR_CRYPTO)
		r = kb_error_set(KB_ERR_CRYPTO, "The %s operation failed: the data "
		    "does not open with this key.", rq->oi->name);
	agent_keyref_put(rq->a, ref);
	cJSON_Delete(o);
	kb_store_key_free(k);
	cbufs_free(&b);
	return r;
}

/* ------------------------------------------------------------- import */

/* A base64url private part of a JWK into a secret (the decoded copy is
 * wiped); absent: *out NULL, or 400 if required. */
static int
get_secret(struct req *rq, const cJSON *obj, const char *name, bool required,
    struct kb_secret **out)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	bool present;
	int r;

	*out = NULL;
	if ((r = get_bytes(rq, obj, name, required, &raw, &len, &present)) != 0)
		return r;
	if (!present)
		return 0;
	r = len == 0 ? bad(rq, "the member '%s' is empty", name) :
	    kb_secret_from(raw, len, out);
	if (raw != NULL)
		kb_wipe(raw, len);
	free(raw);
	return r;
}

struct import_bufs {
	unsigned char *n, *e, *x, *y;
	size_t n_len, e_len, x_len, y_len;
	struct kb_secret *d, *p, *q, *dp, *dq, *qi, *k;
};

static void
import_bufs_free(struct import_bufs *b)
{
	free(b->n);
	free(b->e);
	free(b->x);
	free(b->y);
	kb_secret_free(&b->d);
	kb_secret_free(&b->p);
	kb_secret_free(&b->q);
	kb_secret_free(&b->dp);
	kb_secret_free(&b->dq);
	kb_secret_free(&b->qi);
	kb_secret_free(&b->k);
}

/* Bits of an unsigned big-endian integer. */
static unsigned
int_bits(const unsigned char *p, size_t n)
{
	unsigned bits;
	unsigned char c;

	while (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	if (n == 0 || n > 4096)
		return 0;
	bits = (unsigned)n * 8;
	for (c = p[0]; !(c & 0x80); c = (unsigned char)(c << 1))
		bits--;
	return bits;
}

/*
 * ImportKey: PUT /keys/{name} with KeyImportParameters {key (a JWK with
 * its private parts), Hsm, attributes, tags, release_policy}.  The stored
 * kty follows create's rule (the kty asked for is repeated): the JWK's
 * kty, with -HSM when Hsm is true.
 */
static int
h_import(struct req *rq)
{
	static const char *const unsupported[] = { "release_policy" };
	static const char *const byok[] = { "key_hsm" };
	struct kb_store_new_version nv;
	struct kb_store_key *k = NULL;
	struct import_bufs b;
	struct agent_import mat;
	struct attrs at;
	const cJSON *key;
	const char *kty, *crv = NULL;
	char *tags = NULL, stored[16];
	bool set, hsm = false, hsm_kty, ops_set;
	unsigned bits = 0;
	size_t base;
	cJSON *o = NULL;
	int r;

	memset(&nv, 0, sizeof(nv));
	memset(&b, 0, sizeof(b));
	memset(&mat, 0, sizeof(mat));
	if ((r = parse_body(rq, true)) != 0 ||
	    (r = refuse_members(rq, rq->body, unsupported, 1,
	    "is not supported: keys of a local vault cannot be released")) != 0 ||
	    (r = member(rq, rq->body, "key", &key)) != 0)
		goto out;
	if (!cJSON_IsObject(key)) {
		r = bad(rq, "the member 'key' must be a JSON Web Key object");
		goto out;
	}
	if ((r = get_string(rq, key, "kty", true, &kty)) != 0 ||
	    (r = kv_kty_check(kty)) != 0)
		goto out;
	if ((r = refuse_members(rq, key, byok, 1, "(BYOK, a key wrapped for "
	    "an HSM) is not supported: import the plain JWK")) != 0)
		goto out;
	/* keys.json KeyImportParameters: "Hsm" (the SDKs send it so). */
	if ((r = get_bool(rq, rq->body, "Hsm", &set, &hsm)) != 0)
		goto out;
	base = strcspn(kty, "-");
	hsm_kty = kty[base] != '\0';
	if (set && !hsm && hsm_kty) {
		r = bad(rq, "kty %s asks for an HSM key but Hsm is false", kty);
		goto out;
	}
	snprintf(stored, sizeof(stored), "%.*s%s", (int)base, kty,
	    hsm || hsm_kty ? "-HSM" : "");
	if ((r = parse_key_ops(rq, key, stored, &ops_set, &nv.key_ops)) != 0 ||
	    (r = parse_attributes(rq, rq->body, &at)) != 0 ||
	    (r = parse_tags(rq, rq->body, &set, &tags)) != 0)
		goto out;
	if (strncmp(stored, "RSA", 3) == 0) {
		if ((r = get_bytes(rq, key, "n", true, &b.n, &b.n_len, NULL)) != 0 ||
		    (r = get_bytes(rq, key, "e", true, &b.e, &b.e_len, NULL)) != 0 ||
		    (r = get_secret(rq, key, "d", true, &b.d)) != 0 ||
		    (r = get_secret(rq, key, "p", false, &b.p)) != 0 ||
		    (r = get_secret(rq, key, "q", false, &b.q)) != 0 ||
		    (r = get_secret(rq, key, "dp", false, &b.dp)) != 0 ||
		    (r = get_secret(rq, key, "dq", false, &b.dq)) != 0 ||
		    (r = get_secret(rq, key, "qi", false, &b.qi)) != 0)
			goto out;
		if (b.p == NULL || b.q == NULL || b.dp == NULL || b.dq == NULL ||
		    b.qi == NULL) {
			r = bad(rq, "an RSA key to import needs its CRT parts p, q, "
			    "dp, dq and qi besides n, e and d");
			goto out;
		}
		bits = int_bits(b.n, b.n_len);
		mat.rsa.n = b.n;
		mat.rsa.n_len = b.n_len;
		mat.rsa.e = b.e;
		mat.rsa.e_len = b.e_len;
		mat.rsa.d = b.d;
		mat.rsa.p = b.p;
		mat.rsa.q = b.q;
		mat.rsa.dp = b.dp;
		mat.rsa.dq = b.dq;
		mat.rsa.qi = b.qi;
	} else if (strncmp(stored, "EC", 2) == 0) {
		if ((r = get_string(rq, key, "crv", true, &crv)) != 0 ||
		    (r = kv_crv_check(crv)) != 0)
			goto out;
		if (strcmp(crv, "P-256K") == 0) {
			r = bad(rq, "local vaults do not support the curve P-256K");
			goto out;
		}
		if ((r = get_bytes(rq, key, "x", true, &b.x, &b.x_len, NULL)) != 0 ||
		    (r = get_bytes(rq, key, "y", true, &b.y, &b.y_len, NULL)) != 0 ||
		    (r = get_secret(rq, key, "d", true, &b.d)) != 0)
			goto out;
		mat.ec.x = b.x;
		mat.ec.x_len = b.x_len;
		mat.ec.y = b.y;
		mat.ec.y_len = b.y_len;
		mat.ec.d = b.d;
	} else {
		if ((r = get_secret(rq, key, "k", true, &b.k)) != 0)
			goto out;
		if (b.k == NULL) {
			r = bad(rq, "the member 'k' is required");
			goto out;
		}
		bits = (unsigned)(b.k->len > 4096 ? 0 : b.k->len * 8);
		mat.k = b.k;
	}
	if ((r = kv_key_shape_check(stored, bits, crv)) != 0) {
		r = bad(rq, "%s", strncmp(stored, "oct", 3) == 0 ? "an oct key to "
		    "import is 16, 24 or 32 bytes (k)" : strncmp(stored, "RSA", 3) == 0 ?
		    "an RSA key to import has 2048, 3072 or 4096 bits (n)" :
		    kb_error_detail(r));
		goto out;
	}
	nv.kty = stored;
	nv.key_size = bits;
	nv.crv = crv;
	if (!ops_set)
		nv.key_ops = ops_allowed(stored);
	nv.enabled = at.set_enabled ? at.enabled : true;
	nv.has_nbf = at.set_nbf && !at.nbf_null;
	nv.nbf = at.nbf;
	nv.has_exp = at.set_exp && !at.exp_null;
	nv.exp = at.exp;
	nv.tags_json = tags;
	if ((r = agent_vault_import(rq->a, rq->v, &rq->who, rq->name, &nv, &mat,
	    &k)) != 0) {
		r = conflict_inner(rq, r);
		goto out;
	}
	if ((r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
 out:
	import_bufs_free(&b);
	kb_store_key_free(k);
	free(tags);
	return r;
}

/* ------------------------------------------------------- rotation policy */

static int
policy_answer(struct req *rq, const struct kb_store_policy *p)
{
	static const char default_policy[] = "{\"lifetimeActions\":[{\"trigger\":"
	    "{\"timeBeforeExpiry\":\"" KV_POLICY_NOTIFY_DEFAULT "\"},\"action\":"
	    "{\"type\":\"Notify\"}}],\"attributes\":{}}";
	char id[BASE_MAX + 200];
	cJSON *o = NULL, *in = NULL, *acts, *at;
	int64_t created = p->json != NULL ? p->created : p->key_created;
	int64_t updated = p->json != NULL ? p->updated : p->key_created;

	snprintf(id, sizeof(id), "%s/keys/%s/rotationpolicy", rq->base, p->name);
	/* A key without a stored policy has Key Vault's default one. */
	if ((in = cJSON_Parse(p->json != NULL ? p->json : default_policy)) == NULL)
		return kb_error_set(KB_ERR_INTERNAL, "a stored rotation policy is "
		    "not JSON");
	acts = cJSON_DetachItemFromObjectCaseSensitive(in, "lifetimeActions");
	at = cJSON_DetachItemFromObjectCaseSensitive(in, "attributes");
	cJSON_Delete(in);
	if (acts == NULL || at == NULL || (o = cJSON_CreateObject()) == NULL ||
	    add_str(o, "id", id) != 0) {
		cJSON_Delete(acts);
		cJSON_Delete(at);
		cJSON_Delete(o);
		return KB_ERR_ALLOC;
	}
	cJSON_AddItemToObject(o, "lifetimeActions", acts);
	cJSON_AddItemToObject(o, "attributes", at);
	if (add_num(at, "created", created) != 0 ||
	    add_num(at, "updated", updated) != 0) {
		cJSON_Delete(o);
		return KB_ERR_ALLOC;
	}
	return answer(rq, 200, o);
}

static int
h_policy(struct req *rq)
{
	struct kb_store_policy *p = NULL;
	cJSON *canon = NULL;
	char *text = NULL;
	int r;

	if (rq->oi->op == OP_GET_POLICY) {
		r = kb_store_policy_get(rq->a->store, rq->v->cfg->name, rq->name, &p);
	} else {
		/* Checked here for the 400's sentence; the store checks again. */
		if ((r = parse_body(rq, true)) != 0 ||
		    (r = kv_rotation_policy_check(rq->body, &canon)) != 0)
			goto out;
		if ((text = cJSON_PrintUnformatted(canon)) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		r = kb_store_policy_put(rq->a->store, &rq->who, rq->v->cfg->name,
		    rq->name, text, kb_now_unix(), &p);
	}
	if (r == 0)
		r = policy_answer(rq, p);
 out:
	kb_store_policy_free(p);
	cJSON_Delete(canon);
	free(text);
	return r;
}

/* ------------------------------------------------------------------ rng */

/* GetRandomBytes: {"count": 1..128} -> {"value": base64url}, from the
 * vault's token (C_GenerateRandom). */
static int
h_rng(struct req *rq)
{
	unsigned char buf[128];
	const cJSON *it;
	bool set;
	int64_t count = 0;
	cJSON *o = NULL;
	int r;

	if ((r = parse_body(rq, true)) != 0)
		return r;
	cJSON_ArrayForEach(it, rq->body)
		if (it->string == NULL || strcmp(it->string, "count") != 0)
			return bad(rq, "GetRandomBytesRequest has one member, 'count'");
	if ((r = get_int(rq, rq->body, "count", 1, 128, &set, NULL, &count)) != 0)
		return r;
	if (!set)
		return bad(rq, "the member 'count' is required (1 to 128)");
	if ((r = kb_p11_random(rq->v->tok->token, buf, (size_t)count)) != 0)
		return r;
	if ((o = cJSON_CreateObject()) == NULL ||
	    (r = add_b64(o, "value", buf, (size_t)count)) != 0) {
		r = KB_ERR_ALLOC;
		cJSON_Delete(o);
		o = NULL;
	}
	kb_wipe(buf, sizeof(buf));
	return o != NULL ? answer(rq, 200, o) : r;
}

/* ------------------------------------------------------- backup, restore */

static int
h_backup(struct req *rq)
{
	struct kb_store_key *k = NULL;
	const cJSON *it;
	const char *value;
	char *blob = NULL;
	cJSON *o = NULL;
	int r;

	if (rq->oi->op == OP_BACKUP) {
		if ((r = parse_body(rq, false)) != 0 ||
		    (r = agent_vault_backup(rq->a, rq->v, rq->name, &blob)) != 0)
			return r;
		if ((o = cJSON_CreateObject()) == NULL ||
		    cJSON_AddStringToObject(o, "value", blob) == NULL) {
			cJSON_Delete(o);
			free(blob);
			return KB_ERR_ALLOC;
		}
		free(blob);
		return answer(rq, 200, o);
	}
	if ((r = parse_body(rq, true)) != 0)
		return r;
	cJSON_ArrayForEach(it, rq->body)
		if (it->string == NULL || strcmp(it->string, "value") != 0)
			return bad(rq, "KeyRestoreParameters has one member, 'value'");
	if ((r = get_string(rq, rq->body, "value", true, &value)) != 0)
		return r;
	if ((r = agent_vault_restore(rq->a, rq->v, &rq->who, value, &k)) != 0)
		return r;
	if ((r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
	kb_store_key_free(k);
	return r;
}

/* ------------------------------------------------------------ extensions */

static int
h_status(struct req *rq)
{
	cJSON *o = NULL;
	int r;

	if (rq->oi->op == OP_STATUS)
		r = agent_status_json(rq->a, &o);
	else
		r = agent_tokens_json(rq->a, &o);
	if (r != 0)
		return r;
	return answer(rq, 200, o);
}

struct remote_list {
	struct req *rq;
	cJSON *arr;
	const char *only;     /* one vault's name, or NULL for all */
};

/* A remote vault in /keybridge/vaults, if the caller has a role on it. */
static int
remote_item(void *arg, struct agent_remote *r)
{
	struct remote_list *rl = arg;
	const struct agent_remote_cfg *cfg = agent_remote_config(r);
	enum agent_role role;
	cJSON *it;

	if (rl->only != NULL && strcasecmp(rl->only, cfg->name) != 0)
		return 0;
	role = agent_access_role_in(rl->rq->a, cfg->principals,
	    cfg->n_principals, rl->rq->peer);
	if (role == ROLE_NONE)
		return 0;
	if ((it = cJSON_CreateObject()) == NULL)
		return KB_ERR_ALLOC;
	cJSON_AddItemToArray(rl->arr, it);
	if (add_str(it, "name", cfg->name) != 0 ||
	    cJSON_AddBoolToObject(it, "default", false) == NULL ||
	    agent_remote_json(r, it) != 0 ||
	    add_str(it, "role", agent_role_name(role)) != 0)
		return KB_ERR_ALLOC;
	return 0;
}

/* The local vaults the caller has a role on (only: that one). */
static int
local_items(struct req *rq, cJSON *arr, const char *only)
{
	cJSON *it;
	enum agent_role role;
	size_t i;

	for (i = 0; i < rq->a->n_vaults; i++) {
		const struct agent_vault *v = &rq->a->vaults[i];

		if (only != NULL && strcasecmp(only, v->cfg->name) != 0)
			continue;
		role = agent_access_role(rq->a, v, rq->peer);
		if (role == ROLE_NONE)
			continue;
		if ((it = cJSON_CreateObject()) == NULL)
			return KB_ERR_ALLOC;
		cJSON_AddItemToArray(arr, it);
		if (add_str(it, "name", v->cfg->name) != 0 ||
		    add_str(it, "kind", "local") != 0 ||
		    cJSON_AddBoolToObject(it, "default", v->cfg->is_default) == NULL ||
		    add_str(it, "token", v->tok->cfg->name) != 0 ||
		    (v->tok->uri != NULL ?
		    add_str(it, "token_uri", v->tok->uri) != 0 :
		    cJSON_AddNullToObject(it, "token_uri") == NULL) ||
		    add_num(it, "retention_days", v->cfg->retention_days) != 0 ||
		    cJSON_AddBoolToObject(it, "purge_protection",
		    v->cfg->purge_protection) == NULL ||
		    add_str(it, "recovery_level", kv_recovery_level(
		    v->cfg->retention_days, v->cfg->purge_protection)) != 0 ||
		    add_str(it, "role", agent_role_name(role)) != 0)
			return KB_ERR_ALLOC;
	}
	return 0;
}

static int
h_vaults(struct req *rq)
{
	cJSON *o, *arr;

	if ((o = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(o, "value")) == NULL ||
	    local_items(rq, arr, NULL) != 0)
		goto fail;
	if (agent_remotes_each(rq->a, remote_item, &(struct remote_list){
	    rq, arr, NULL }) != 0)
		goto fail;
	return answer(rq, 200, o);
 fail:
	cJSON_Delete(o);
	return KB_ERR_ALLOC;
}

/* GET, PUT, DELETE /keybridge/vaults/NAME */
static int
h_vault(struct req *rq)
{
	struct remote_list rl = { rq, NULL, rq->rt.vault };
	const char *name = rq->rt.vault;
	cJSON *o, *arr;
	int r;

	if (rq->oi->op == OP_VAULT_ADD) {
		if ((r = parse_body(rq, true)) != 0)
			return r;
		if ((r = agent_remote_add(rq->a, name, rq->body, &rq->who,
		    &rq->upstream)) != 0)
			return r;
	} else if (rq->oi->op == OP_VAULT_REMOVE) {
		if ((r = agent_remote_remove(rq->a, name, &rq->who)) != 0)
			return r;
		return answer(rq, 200, cJSON_CreateObject());
	}
	/* Show (also the answer to an add): through the listing's code. */
	if ((o = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(o, "value")) == NULL) {
		cJSON_Delete(o);
		return KB_ERR_ALLOC;
	}
	rl.arr = arr;
	if ((r = local_items(rq, arr, name)) != 0 ||
	    (r = agent_remotes_each(rq->a, remote_item, &rl)) != 0) {
		cJSON_Delete(o);
		return r;
	}
	if (cJSON_GetArraySize(arr) != 1) {
		cJSON_Delete(o);
		return kb_error_set(KB_ERR_NOT_FOUND, "no vault named %.64s that "
		    "you have a role on", name);
	}
	r = answer(rq, rq->oi->op == OP_VAULT_ADD ? 201 : 200,
	    cJSON_DetachItemFromArray(arr, 0));
	cJSON_Delete(o);
	return r;
}

/* The caller's role on a local vault, or else on the remote one named. */
static enum agent_role
vault_role(struct req *rq, const struct agent_vault *v, const char *name)
{
	struct agent_remote *rv;
	enum agent_role role = ROLE_NONE;

	if (v != NULL)
		return agent_access_role(rq->a, v, rq->peer);
	if ((rv = agent_remote_get(rq->a, name)) != NULL) {
		const struct agent_remote_cfg *c = agent_remote_config(rv);

		role = agent_access_role_in(rq->a, c->principals, c->n_principals,
		    rq->peer);
		agent_remote_put(rq->a, rv);
	}
	return role;
}

static int
h_audit(struct req *rq)
{
	struct kb_store_audit *recs = NULL;
	const char *skip, *vault;
	unsigned long long after = 0;
	char link[BASE_MAX + 200];
	int64_t next = 0, cursor;
	unsigned limit;
	size_t n = 0, i, got = 0;
	cJSON *o = NULL, *arr, *it;
	int r;

	if ((r = page_args(rq, AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, &limit,
	    &skip)) != 0)
		return r;
	if (skip != NULL && kb_parse_ull(skip, 0, INT64_MAX, &after) != 0)
		return bad(rq, "the $skiptoken is not one this agent gave");
	vault = MHD_lookup_connection_value(rq->c, MHD_GET_ARGUMENT_KIND, "vault");
	if (vault != NULL) {
		const struct agent_vault *fv = agent_vault_find(rq->a, vault);
		struct agent_remote *rv = NULL;

		if (fv == NULL && (rv = agent_remote_get(rq->a, vault)) == NULL)
			return kb_error_set(KB_ERR_NOT_FOUND, "no vault named %.64s",
			    vault);
		agent_remote_put(rq->a, rv);
	}
	if ((o = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(o, "value")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* Only records of vaults the caller administers (all for the agent's
	 * own uid, including connection-level denials). */
	cursor = (int64_t)after;
	do {
		if ((r = kb_store_audit_list(rq->a->store, cursor, limit, &recs, &n,
		    &next)) != 0)
			goto out;
		for (i = 0; i < n && got < limit; i++) {
			struct agent_vault *v = agent_vault_find(rq->a, recs[i].vault);

			cursor = recs[i].seq;
			if (vault != NULL && strcasecmp(vault, recs[i].vault) != 0)
				continue;
			if ((rq->peer->principal != NULL ||
			    rq->peer->uid != rq->a->uid) &&
			    vault_role(rq, v, recs[i].vault) != ROLE_ADMINISTRATOR)
				continue;
			if ((it = cJSON_CreateObject()) == NULL) {
				r = KB_ERR_ALLOC;
				goto out;
			}
			cJSON_AddItemToArray(arr, it);
			if (add_num(it, "seq", recs[i].seq) != 0 ||
			    add_num(it, "time", recs[i].time) != 0 ||
			    add_num(it, "uid", recs[i].uid) != 0 ||
			    add_str(it, "role", recs[i].role) != 0 ||
			    add_str(it, "vault", recs[i].vault) != 0 ||
			    add_str(it, "op", recs[i].op) != 0 ||
			    (recs[i].key[0] != '\0' ?
			    add_str(it, "key", recs[i].key) :
			    (cJSON_AddNullToObject(it, "key") ? 0 : KB_ERR_ALLOC)) != 0 ||
			    (recs[i].version[0] != '\0' ?
			    add_str(it, "version", recs[i].version) :
			    (cJSON_AddNullToObject(it, "version") ? 0 : KB_ERR_ALLOC)) != 0 ||
			    add_str(it, "result", recs[i].result) != 0 ||
			    (recs[i].principal[0] != '\0' &&
			    add_str(it, "principal", recs[i].principal) != 0)) {
				r = KB_ERR_ALLOC;
				goto out;
			}
			got++;
		}
		/* Stopped inside the batch: more follow from cursor. */
		if (i < n)
			next = cursor;
		free(recs);
		recs = NULL;
	} while (got < limit && next != 0);
	if (next != 0) {
		snprintf(link, sizeof(link), "%s/keybridge/audit?maxresults=%u"
		    "&$skiptoken=%" PRId64 "%s%s", rq->base, limit, next,
		    vault != NULL ? "&vault=" : "", vault != NULL ? vault : "");
		r = add_str(o, "nextLink", link);
	} else {
		r = cJSON_AddNullToObject(o, "nextLink") != NULL ? 0 : KB_ERR_ALLOC;
	}
	if (r == 0) {
		r = answer(rq, 200, o);
		o = NULL;
	}
 out:
	free(recs);
	cJSON_Delete(o);
	return r;
}

static int
h_adopt(struct req *rq)
{
	struct kb_store_key *k = NULL;
	const char *uri, *name;
	cJSON *o = NULL;
	int r;

	if ((r = parse_body(rq, true)) != 0 ||
	    (r = get_string(rq, rq->body, "uri", true, &uri)) != 0 ||
	    (r = get_string(rq, rq->body, "name", true, &name)) != 0)
		return r;
	if ((r = kv_check(KV_FIELD_KEY_NAME, name)) != 0)
		return r;
	rq->name = name;
	if ((r = agent_vault_adopt(rq->a, rq->v, &rq->who, uri, name, &k)) != 0)
		return conflict_inner(rq, r);
	if ((r = bundle(rq, k, &o)) == 0)
		r = answer(rq, 200, o);
	kb_store_key_free(k);
	return r;
}

/* ---------------------------------------------------------------- routing */

/* ------------------------------------------------------- remote vaults */

#define REMOTE_QUERY_MAX 2048

struct query {
	struct kb_buf *b;
	int err;
};

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static int
put_escaped(struct kb_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];
	int r;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~$", ch) != NULL)
			r = kb_buf_append(b, s, 1);
		else {
			e[0] = '%';
			e[1] = hex[ch >> 4];
			e[2] = hex[ch & 15];
			r = kb_buf_append(b, e, 3);
		}
		if (r != 0)
			return r;
	}
	return 0;
}

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct query *q = cls;

	(void)kind;
	if (q->err == 0 &&
	    ((q->err = kb_buf_append(q->b, q->b->len == 0 ? "" : "&",
	    q->b->len == 0 ? 0 : 1)) != 0 ||
	    (q->err = put_escaped(q->b, key)) != 0 ||
	    (value != NULL && ((q->err = kb_buf_append(q->b, "=", 1)) != 0 ||
	    (q->err = put_escaped(q->b, value)) != 0))))
		return MHD_NO;
	return MHD_YES;
}

/* A safe create's error that is the remote's answer, not its silence. */
static bool
remote_said(int r)
{
	return r == KB_ERR_CONFLICT || r == KB_ERR_NOT_FOUND ||
	    r == KB_ERR_INVALID || r == KB_ERR_DENIED || r == KB_ERR_LIMIT ||
	    r == KB_ERR_UNSUPPORTED;
}

/* Operations a remote vault's audit trail records (changes, as locally). */
static bool
audited(enum kv_op op)
{
	switch (op) {
	case OP_CREATE: case OP_IMPORT: case OP_ROTATE: case OP_UPDATE_KEY:
	case OP_DELETE_KEY: case OP_RECOVER: case OP_PURGE: case OP_RESTORE:
	case OP_PUT_POLICY: case OP_BACKUP:
		return true;
	default:
		return false;
	}
}

/*
 * A request for a remote vault: the role was checked, names and
 * versions too; the rest is the remote's to judge.  Sent with the
 * caller's path below /vaults/NAME and query, answered with the
 * remote's status and body (its URLs made the agent's).
 */
static int
h_remote(struct req *rq)
{
	const struct agent_remote_cfg *cfg = agent_remote_config(rq->remote);
	const char *tail = rq->url, *slash;
	struct kb_buf path, q;
	struct query qa;
	unsigned status = 0;
	cJSON *out = NULL;
	char res[64];
	int r;

	if (rq->rt.ext)
		return bad(rq, "vault %s is a remote vault; %s works on the "
		    "agent's own vaults", cfg->name, rq->oi->name);
	/* "/vaults/NAME/keys/..." -> "/keys/..." */
	if (rq->rt.prefixed && (slash = strchr(tail + 8, '/')) != NULL)
		tail = slash;
	kb_buf_init(&path, KV_ROUTE_PATH_MAX + REMOTE_QUERY_MAX + 8);
	kb_buf_init(&q, REMOTE_QUERY_MAX);
	qa.b = &q;
	qa.err = 0;
	MHD_get_connection_values(rq->c, MHD_GET_ARGUMENT_KIND, query_arg, &qa);
	if (qa.err != 0) {
		r = bad(rq, "the query string is longer than %d bytes",
		    REMOTE_QUERY_MAX);
		goto out;
	}
	if ((r = kb_buf_append(&path, tail, strlen(tail))) != 0 ||
	    (q.len > 0 && ((r = kb_buf_append(&path, "?", 1)) != 0 ||
	    (r = kb_buf_append(&path, q.data, q.len)) != 0)))
		goto out;
	if (rq->raw_len > 0 && (r = parse_body(rq, false)) != 0)
		goto out;
	r = agent_remote_forward(rq->remote, rq->method,
	    (const char *)path.data, rq->body,
	    rq->oi->op == OP_CREATE ? REMOTE_CREATE :
	    rq->oi->op == OP_IMPORT ? REMOTE_IMPORT :
	    rq->oi->op == OP_ROTATE ? REMOTE_ROTATE :
	    rq->oi->op == OP_RESTORE ? REMOTE_ONCE : REMOTE_PLAIN, rq->name,
	    rq->base, &status, &out);
	if (audited(rq->oi->op)) {
		int ar;

		if (r != 0)
			snprintf(res, sizeof(res), "failed: %s", !remote_said(r) ?
			    "no answer" : r == KB_ERR_CONFLICT ? "HTTP 409" :
			    r == KB_ERR_NOT_FOUND ? "HTTP 404" : r == KB_ERR_DENIED ?
			    "HTTP 401/403" : r == KB_ERR_LIMIT ? "HTTP 413/429" :
			    "HTTP 400");
		else if (status >= 200 && status < 300)
			snprintf(res, sizeof(res), "ok");
		else
			snprintf(res, sizeof(res), "failed: HTTP %u", status);
		if ((ar = kb_store_audit_append(rq->a->store, &rq->who, cfg->name,
		    rq->oi->name, rq->name, rq->version, res,
		    kb_now_unix())) != 0)
			kb_warn("cannot write an audit record: %s",
			    kb_error_detail(ar));
	}
	if (r != 0 && remote_said(r))
		goto out;    /* the remote's answer to a create, mapped */
	if (r != 0) {
		char why[700], msg[800];
		cJSON *e;

		/* No answer (or no token for it): 502 with kv-client's sentence. */
		snprintf(why, sizeof(why), "%s", kb_error_detail(r));
		kb_info("remote vault %s: %s %s: %s", cfg->name, rq->method, tail,
		    why);
		snprintf(msg, sizeof(msg), "remote vault %s did not answer: %s",
		    cfg->name, why);
		if ((out = cJSON_CreateObject()) == NULL ||
		    (e = cJSON_AddObjectToObject(out, "error")) == NULL ||
		    cJSON_AddStringToObject(e, "code", "BadGateway") == NULL ||
		    cJSON_AddStringToObject(e, "message", msg) == NULL) {
			cJSON_Delete(out);
			r = KB_ERR_ALLOC;
			goto out;
		}
		status = 502;
	}
	rq->status = status;
	rq->out = out;
	r = 0;
 out:
	kb_buf_free(&path);
	kb_buf_free(&q);
	return r;
}

/* Answers that hold a plaintext, a key or random bytes (kv-client's
 * kb_kv_response.secret names the same three on the client's side). */
static bool
secret_answer(enum kv_op op)
{
	return op == OP_DECRYPT || op == OP_UNWRAP || op == OP_RNG;
}

static const struct opinfo *
info(enum kv_op op)
{
	size_t i;

	for (i = 0; i < sizeof(opinfo) / sizeof(opinfo[0]); i++)
		if (opinfo[i].op == op)
			return &opinfo[i];
	return NULL;
}

/* The Host header if it is a plain host[:port], else "localhost". */
static const char *
host_of(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	size_t i;

	if (h == NULL || h[0] == '\0' || strlen(h) > 255)
		return "localhost";
	for (i = 0; h[i] != '\0'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		    (h[i] >= '0' && h[i] <= '9') || strchr(".-:[]", h[i]) != NULL))
			return "localhost";
	return h;
}

static int
run(struct req *rq)
{
	if (rq->remote != NULL)
		return h_remote(rq);
	switch (rq->oi->op) {
	case OP_LIST_KEYS: case OP_LIST_DELETED: case OP_VERSIONS:
		return h_list(rq);
	case OP_GET_KEY: case OP_GET_DELETED:
		return h_get(rq);
	case OP_CREATE:
		return h_create(rq);
	case OP_UPDATE_KEY:
		return h_update(rq);
	case OP_DELETE_KEY: case OP_RECOVER: case OP_ROTATE: case OP_PURGE:
		return h_lifecycle(rq);
	case OP_ENCRYPT: case OP_DECRYPT: case OP_SIGN: case OP_VERIFY:
	case OP_WRAP: case OP_UNWRAP:
		return h_crypto(rq);
	case OP_STATUS: case OP_TOKENS:
		return h_status(rq);
	case OP_VAULTS:
		return h_vaults(rq);
	case OP_AUDIT:
		return h_audit(rq);
	case OP_ADOPT:
		return h_adopt(rq);
	case OP_IMPORT:
		return h_import(rq);
	case OP_GET_POLICY: case OP_PUT_POLICY:
		return h_policy(rq);
	case OP_RNG:
		return h_rng(rq);
	case OP_BACKUP: case OP_RESTORE:
		return h_backup(rq);
	case OP_VAULT_SHOW: case OP_VAULT_ADD: case OP_VAULT_REMOVE:
		return h_vault(rq);
	case OP_NONE:
		break;
	}
	return KB_ERR_INTERNAL;
}

int
agent_kvapi_handle(struct agent *a, struct MHD_Connection *c,
    const struct agent_peer *peer, const char *url, const char *method,
    const char *body, size_t body_len)
{
	struct req rq;
	char *path = NULL, msg[256];
	enum kv_op op;
	size_t i;
	int r, ret;

	memset(&rq, 0, sizeof(rq));
	rq.a = a;
	rq.c = c;
	rq.peer = peer;
	rq.method = method;
	rq.raw = body;
	rq.raw_len = body_len;
	rq.url = url;
	if ((path = kb_strdup(url)) == NULL)
		return -1;
	kv_route_parse(path, method, &rq.rt);
	op = rq.rt.op;
	rq.name = rq.rt.name;
	rq.version = rq.rt.version;
	if (op == OP_VAULT_SHOW || op == OP_VAULT_ADD || op == OP_VAULT_REMOVE) {
		/* The vault is the subject, not the place: see h_vault. */
	} else if (rq.rt.vault != NULL) {
		if ((rq.v = agent_vault_find(a, rq.rt.vault)) == NULL &&
		    (rq.remote = agent_remote_get(a, rq.rt.vault)) == NULL &&
		    (op != 0 || rq.rt.allow != NULL)) {
			snprintf(msg, sizeof(msg), "no vault named %.64s", rq.rt.vault);
			free(path);
			return agent_respond_error(c, 404, rq.rt.ext ? "NotFound" :
			    "VaultNotFound", msg, NULL, NULL);
		}
	} else if (!rq.rt.ext) {
		rq.v = agent_vault_default(a);
	}
	if (rq.rt.ext || (rq.v == NULL && rq.remote == NULL) || !rq.rt.prefixed)
		snprintf(rq.base, sizeof(rq.base), "%s://%s",
		    peer->https ? "https" : "http", host_of(c));
	else
		snprintf(rq.base, sizeof(rq.base), "%s://%s/vaults/%s",
		    peer->https ? "https" : "http", host_of(c), rq.v != NULL ?
		    rq.v->cfg->name : agent_remote_config(rq.remote)->name);
	if (op == 0) {
		if (rq.rt.allow != NULL) {
			snprintf(msg, sizeof(msg), "this path takes %s, not %.32s",
			    rq.rt.allow, method);
			ret = agent_respond_error(c, 405, "MethodNotAllowed", msg, NULL,
			    rq.rt.allow);
		} else {
			snprintf(msg, sizeof(msg), "no such path: %.128s", url);
			ret = agent_respond_error(c, 404, "NotFound", msg, NULL, NULL);
		}
		free(path);
		agent_remote_put(a, rq.remote);
		return ret;
	}
	rq.oi = info(op);
	if (!rq.rt.ext) {
		rq.api_version = MHD_lookup_connection_value(c,
		    MHD_GET_ARGUMENT_KIND, "api-version");
		if (rq.api_version == NULL) {
			r = bad(&rq, "The api-version query parameter is missing; "
			    "this agent supports 7.4, 7.5, 7.6, 2025-07-01 and 2026-04-01");
			goto fail;
		}
		for (i = 0; i < sizeof(api_versions) / sizeof(api_versions[0]); i++)
			if (strcmp(rq.api_version, api_versions[i]) == 0)
				break;
		if (i == sizeof(api_versions) / sizeof(api_versions[0])) {
			r = bad(&rq, "The specified version (%.32s) is not recognized. "
			    "Consider using the latest supported version (2026-04-01); "
			    "this agent supports 7.4, 7.5, 7.6, 2025-07-01 and "
			    "2026-04-01", rq.api_version);
			goto fail;
		}
		if (rq.v == NULL && rq.remote == NULL) {
			ret = agent_respond_error(c, 404, "VaultNotFound", "this agent "
			    "has no default vault; use /vaults/NAME/...", NULL, NULL);
			free(path);
			return ret;
		}
	}
	/* Who: the role on the vault, or the best role anywhere. */
	if (rq.remote != NULL) {
		const struct agent_remote_cfg *rc = agent_remote_config(rq.remote);

		rq.role = agent_access_role_in(a, rc->principals, rc->n_principals,
		    peer);
	} else {
		rq.role = rq.v != NULL ? agent_access_role(a, rq.v, peer) :
		    agent_access_max_role(a, peer);
	}
	rq.who = agent_peer_actor(peer, rq.role);
	if (rq.role < rq.oi->need) {
		const char *vn = rq.v != NULL ? rq.v->cfg->name : rq.remote != NULL ?
		    agent_remote_config(rq.remote)->name : NULL;
		char caller[96];

		agent_peer_name(peer, caller, sizeof(caller));
		kb_info("denied %s %s to %s (%s)", rq.oi->name,
		    vn != NULL ? vn : "agent", caller, rq.who.role);
		agent_audit_denial(a, peer, vn != NULL ? vn : "*", rq.oi->name,
		    rq.name, "denied");
		snprintf(msg, sizeof(msg), "The caller (%s, role %s) does not have "
		    "%s permission on %s %s.", caller, rq.who.role,
		    rq.oi->name, vn != NULL ? "vault" : "this",
		    vn != NULL ? vn : "agent");
		free(path);
		agent_remote_put(a, rq.remote);
		return agent_respond_error(c, 403, "Forbidden", msg, NULL, NULL);
	}
	/* Names and versions from the path, before anything else. */
	if (rq.name != NULL && (r = kv_check(KV_FIELD_KEY_NAME, rq.name)) != 0)
		goto fail;
	if (rq.version != NULL && (r = kv_check(KV_FIELD_VERSION, rq.version)) != 0)
		goto fail;
	if ((r = run(&rq)) != 0)
		goto fail;
	if (rq.out_text != NULL)
		ret = agent_respond_text(c, rq.status, rq.out_text, rq.out_len);
	else if (secret_answer(rq.oi->op))
		ret = agent_respond_secret(c, rq.status, rq.out);
	else
		ret = agent_respond(c, rq.status, rq.out, NULL);
	kb_kv_json_wipe(rq.body);
	cJSON_Delete(rq.body);
	free(path);
	agent_remote_put(a, rq.remote);
	return ret;
 fail:
	ret = answer_error(&rq, r);
	kb_kv_json_wipe(rq.out);     /* may be a secret answer half made */
	cJSON_Delete(rq.out);
	free(rq.out_text);
	kb_kv_json_wipe(rq.body);
	cJSON_Delete(rq.body);
	free(path);
	agent_remote_put(a, rq.remote);
	return ret;
}
