/*
 * kvroute.c: Key Vault's key paths and keybridge's extensions as
 * operations.  Key Vault matches its fixed path words case-insensitively
 * ("/keys/k/Create"); SDKs send "/keys/NAME/" for the latest version and
 * "/keys/NAME//sign" for crypto without a version.
 */
#include <string.h>
#include <strings.h>

#include "kvroute.h"

static const struct {
	const char *seg;
	enum kv_op op;
} crypto_ops[] = {
	{ "encrypt", OP_ENCRYPT }, { "decrypt", OP_DECRYPT }, { "sign", OP_SIGN },
	{ "verify", OP_VERIFY }, { "wrapkey", OP_WRAP }, { "unwrapkey", OP_UNWRAP },
};

static enum kv_op
crypto_op(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(crypto_ops) / sizeof(crypto_ops[0]); i++)
		if (strcasecmp(s, crypto_ops[i].seg) == 0)
			return crypto_ops[i].op;
	return OP_NONE;
}

/* One method: the op if m is it, else OP_NONE with allow set. */
static enum kv_op
only(struct kv_route *rt, const char *m, const char *want, enum kv_op op)
{
	rt->allow = want;
	return strcmp(m, want) == 0 ? op : OP_NONE;
}

static enum kv_op
route_keys(struct kv_route *rt, char **s, size_t n, const char *m)
{
	enum kv_op op;

	if (n == 1)
		return only(rt, m, "GET", OP_LIST_KEYS);
	/* POST /keys/restore restores; a key named "restore" is still
	 * reached by the other methods. */
	if (n == 2 && strcasecmp(s[1], "restore") == 0 && strcmp(m, "POST") == 0)
		return only(rt, m, "POST", OP_RESTORE);
	rt->name = s[1];
	if (n == 2) {
		rt->allow = "GET, PUT, PATCH, DELETE";
		if (strcmp(m, "GET") == 0)
			return OP_GET_KEY;
		if (strcmp(m, "PUT") == 0)
			return OP_IMPORT;
		if (strcmp(m, "PATCH") == 0)
			return OP_UPDATE_KEY;
		return strcmp(m, "DELETE") == 0 ? OP_DELETE_KEY : OP_NONE;
	}
	if (n == 3 && strcasecmp(s[2], "rotationpolicy") == 0) {
		rt->allow = "GET, PUT";
		if (strcmp(m, "GET") == 0)
			return OP_GET_POLICY;
		return strcmp(m, "PUT") == 0 ? OP_PUT_POLICY : OP_NONE;
	}
	if (n == 3 && strcasecmp(s[2], "create") == 0)
		return only(rt, m, "POST", OP_CREATE);
	if (n == 3 && strcasecmp(s[2], "rotate") == 0)
		return only(rt, m, "POST", OP_ROTATE);
	if (n == 3 && strcasecmp(s[2], "backup") == 0)
		return only(rt, m, "POST", OP_BACKUP);
	if (n == 3 && strcasecmp(s[2], "versions") == 0)
		return only(rt, m, "GET", OP_VERSIONS);
	if (n == 3 && (op = crypto_op(s[2])) != OP_NONE)
		return only(rt, m, "POST", op);
	if (n == 3) {
		rt->version = s[2];
		rt->allow = "GET, PATCH";
		if (strcmp(m, "GET") == 0)
			return OP_GET_KEY;
		return strcmp(m, "PATCH") == 0 ? OP_UPDATE_KEY : OP_NONE;
	}
	if (n == 4 && (op = crypto_op(s[3])) != OP_NONE) {
		rt->version = s[2][0] != '\0' ? s[2] : NULL;
		return only(rt, m, "POST", op);
	}
	rt->name = NULL;
	return OP_NONE;
}

static enum kv_op
route_deleted(struct kv_route *rt, char **s, size_t n, const char *m)
{
	if (n == 1)
		return only(rt, m, "GET", OP_LIST_DELETED);
	rt->name = s[1];
	if (n == 2) {
		rt->allow = "GET, DELETE";
		if (strcmp(m, "GET") == 0)
			return OP_GET_DELETED;
		return strcmp(m, "DELETE") == 0 ? OP_PURGE : OP_NONE;
	}
	if (n == 3 && strcasecmp(s[2], "recover") == 0)
		return only(rt, m, "POST", OP_RECOVER);
	rt->name = NULL;
	return OP_NONE;
}

static enum kv_op
route_ext(struct kv_route *rt, char **s, size_t n, const char *m)
{
	if (n == 2 && strcmp(s[1], "status") == 0)
		return only(rt, m, "GET", OP_STATUS);
	if (n == 2 && strcmp(s[1], "tokens") == 0)
		return only(rt, m, "GET", OP_TOKENS);
	if (n == 2 && strcmp(s[1], "vaults") == 0)
		return only(rt, m, "GET", OP_VAULTS);
	if (n == 2 && strcmp(s[1], "audit") == 0)
		return only(rt, m, "GET", OP_AUDIT);
	if (n == 3 && strcmp(s[1], "vaults") == 0 && s[2][0] != '\0') {
		rt->vault = s[2];
		rt->allow = "GET, PUT, DELETE";
		if (strcmp(m, "GET") == 0)
			return OP_VAULT_SHOW;
		if (strcmp(m, "PUT") == 0)
			return OP_VAULT_ADD;
		return strcmp(m, "DELETE") == 0 ? OP_VAULT_REMOVE : OP_NONE;
	}
	if (n == 4 && strcmp(s[1], "vaults") == 0 && strcmp(s[3], "adopt") == 0) {
		rt->vault = s[2];
		return only(rt, m, "POST", OP_ADOPT);
	}
	return OP_NONE;
}

void
kv_route_parse(char *path, const char *method, struct kv_route *rt)
{
	char *seg[KV_ROUTE_SEG_MAX], *p, *slash, **s = seg;
	size_t n = 0;

	memset(rt, 0, sizeof(*rt));
	if (path == NULL || method == NULL || path[0] != '/' ||
	    strlen(path) > KV_ROUTE_PATH_MAX)
		return;
	for (p = path + 1;; p = slash + 1) {
		if (n == KV_ROUTE_SEG_MAX)
			return;
		seg[n++] = p;
		if ((slash = strchr(p, '/')) == NULL)
			break;
		*slash = '\0';
	}
	if (strcmp(s[0], "keybridge") == 0) {
		rt->ext = true;
		rt->op = route_ext(rt, s, n, method);
		return;
	}
	if (n >= 2 && strcmp(s[0], "vaults") == 0) {
		rt->vault = s[1];
		rt->prefixed = true;
		s += 2;
		n -= 2;
	}
	/* "/keys/NAME/" (GetKey without a version) is "/keys/NAME". */
	if (n >= 2 && s[n - 1][0] == '\0')
		n--;
	if (n == 0)
		return;
	if (strcmp(s[0], "keys") == 0)
		rt->op = route_keys(rt, s, n, method);
	else if (n == 1 && strcasecmp(s[0], "rng") == 0)
		rt->op = only(rt, method, "POST", OP_RNG);
	else if (strcmp(s[0], "deletedkeys") == 0)
		rt->op = route_deleted(rt, s, n, method);
}
