/*
 * kvroute.h: the agent's request paths as operations (docs/vaults.md).
 *
 * Pure functions, no I/O: the HTTP layer (kvapi.c) and the fuzz target
 * call the same code.  Paths arrive URL-decoded from libmicrohttpd,
 * without the query string.
 */
#ifndef KB_KVROUTE_H
#define KB_KVROUTE_H

#include <stdbool.h>
#include <stddef.h>

enum kv_op {
	OP_NONE = 0,
	OP_LIST_KEYS, OP_GET_KEY, OP_UPDATE_KEY, OP_DELETE_KEY, OP_CREATE,
	OP_ROTATE, OP_VERSIONS, OP_LIST_DELETED, OP_GET_DELETED, OP_PURGE,
	OP_RECOVER, OP_ENCRYPT, OP_DECRYPT, OP_SIGN, OP_VERIFY, OP_WRAP,
	OP_UNWRAP, OP_IMPORT, OP_GET_POLICY, OP_PUT_POLICY, OP_RNG,
	OP_BACKUP, OP_RESTORE,
	/* keybridge's extensions under /keybridge/ */
	OP_STATUS, OP_TOKENS, OP_VAULTS, OP_AUDIT, OP_ADOPT,
	OP_VAULT_SHOW, OP_VAULT_ADD, OP_VAULT_REMOVE
};

#define KV_ROUTE_SEG_MAX 8
#define KV_ROUTE_PATH_MAX 2048

struct kv_route {
	enum kv_op op;          /* OP_NONE: unknown path or wrong method */
	const char *allow;      /* methods the path takes (for 405), or NULL */
	bool ext;               /* a /keybridge/ path */
	bool prefixed;          /* the vault came from /vaults/NAME */
	const char *vault;      /* vault named in the path, or NULL (default);
	                         * for OP_VAULT_*, the vault shown, added or
	                         * removed */
	const char *name;       /* key name from the path, or NULL */
	const char *version;    /* version from the path, or NULL (latest) */
};

/*
 * Route method + path.  path is modified (split at '/'); the strings in
 * *out point into it.  Names and versions are not checked here (kvrules
 * does that, so the error names the rule).  Never fails: an unknown or
 * oversized path is OP_NONE with allow NULL.
 */
void kv_route_parse(char *path, const char *method, struct kv_route *out);

#endif /* KB_KVROUTE_H */
