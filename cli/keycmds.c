/*
 * keycmds.c: `keybridge key ...` and `keybridge audit list`, clients of
 * the Key Vault keys API that keybridged serves on its socket
 * (docs/vaults.md, docs/keybridge.md).
 *
 * Names, versions, sizes, curves, tags and times are checked here before
 * the agent is contacted, so a typo costs no round trip and gets a
 * sentence that says what is allowed (exit 13, or 2 for a command line
 * that does not parse).  Everything the agent refuses comes back as Key
 * Vault's own message with the exit code of its status (kv-client maps
 * it).  --json prints Key Vault's JSON shapes; tables are for people.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

#define API_VERSION "2026-04-01"
#define KV_PAGE 25                 /* Key Vault's maximum page */
#define AUDIT_PAGE 1000            /* the agent's maximum audit page */
#define MAX_PAGES 1000000          /* a runaway nextLink chain stops here */
#define PATH_CAP 4096              /* kv-client's own limit on a path */
/* Key Vault: "at most 15 tags, names and values at most 256 characters". */
#define MAX_TAGS 15
#define MAX_TAG_LEN 256
#define MAX_CLI_TAGS 64            /* --tag/--untag options kept */
#define MAX_KEY_NAME 127

/* Long options; the letters are internal (only -h is a short option). */
enum {
	O_VAULT = 'W', O_TYPE = 't', O_SIZE = 'z', O_CURVE = 'C', O_OPS = 'o',
	O_TAG = 'g', O_UNTAG = 'u', O_EXPIRES = 'e', O_NBF = 'n',
	O_DISABLED = 'D', O_ENABLE = 'E', O_DISABLE = 'X', O_VERSION = 'r',
	O_DELETED = 'l', O_LIMIT = 'L'
};

struct kopts {
	const char *vault;
	const char *type, *size, *curve, *ops, *expires, *nbf, *version, *limit;
	bool disabled, enable, disable, deleted;
	const char *tags[MAX_CLI_TAGS];
	size_t n_tags;
	const char *untags[MAX_CLI_TAGS];
	size_t n_untags;
	bool too_many;                 /* more than MAX_CLI_TAGS given */
	char **args;
	int nargs;
};

/* One command's connection to the agent. */
struct kc {
	struct cli *c;
	const char *vault;             /* --vault, or NULL for the default */
	kb_kv_client *kv;
	cJSON *vaults;                 /* GET /keybridge/vaults, fetched once */
};

/* ------------------------------------------------------------- checks */

static bool
name_chars(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!isascii((unsigned char)s[n]) ||
		    (!isalnum((unsigned char)s[n]) && s[n] != '-'))
			return false;
	return n >= min && n <= max;
}

/* Key Vault object names: ^[0-9a-zA-Z-]{1,127}$ (about-keys-secrets-certificates). */
static int
check_key_name(const char *s)
{
	if (!name_chars(s, 1, MAX_KEY_NAME))
		return kb_error_set(KB_ERR_INVALID, "'%.140s' is not a key name: "
		    "use 1 to 127 letters, digits and '-'", s);
	return 0;
}

/* Vault names: 3-24 characters of 0-9a-zA-Z- (docs/vaults.md). */
static int
check_vault_name(const char *s)
{
	if (!name_chars(s, 3, 24))
		return kb_error_set(KB_ERR_INVALID, "'%.140s' is not a vault name: "
		    "use 3 to 24 letters, digits and '-'", s);
	return 0;
}

/* Version ids are 32 characters (the hex of 16 bytes here). */
static int
check_version(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!isascii((unsigned char)s[n]) || !isalnum((unsigned char)s[n]))
			break;
	if (s[n] != '\0' || n == 0 || n > 64)
		return kb_error_set(KB_ERR_INVALID, "'%.140s' is not a key version: "
		    "use the 32 characters `keybridge key versions NAME` shows", s);
	return 0;
}

/*
 * A time for --expires/--not-before: RFC 3339, Unix seconds, or +N with
 * a unit s, m, h or d from now.
 */
static int
parse_time(const char *opt, const char *s, int64_t *out)
{
	unsigned long long n, mult = 1;
	char num[32];
	size_t len = strlen(s);
	int64_t t;

	if (s[0] == '+' && len >= 3 && len < sizeof(num)) {
		switch (s[len - 1]) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: mult = 0; break;
		}
		memcpy(num, s + 1, len - 2);
		num[len - 2] = '\0';
		if (mult != 0 && kb_parse_ull(num, 0, 36500ULL * 86400 / mult,
		    &n) == 0) {
			*out = kb_now_unix() + (int64_t)(n * mult);
			return 0;
		}
	} else if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == len) {
		/* Up to 9999-12-31T23:59:59Z. */
		if (kb_parse_ull(s, 0, 253402300799ULL, &n) == 0) {
			*out = (int64_t)n;
			return 0;
		}
	} else if (kb_time_parse(s, &t) == 0 && t >= 0) {
		*out = t;
		return 0;
	}
	return kb_error_set(KB_ERR_INVALID, "%s '%.64s' is not a time: use RFC "
	    "3339 (2027-01-01T00:00:00Z), Unix seconds, or +N followed by s, m, "
	    "h or d (+30d)", opt, s);
}

/* --------------------------------------------------------------- options */

static int
parse_opts(struct cli *c, const char *name, const char *allowed, int min,
    int max, int argc, char **argv, struct kopts *o)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "vault", required_argument, NULL, O_VAULT },
		{ "type", required_argument, NULL, O_TYPE },
		{ "size", required_argument, NULL, O_SIZE },
		{ "curve", required_argument, NULL, O_CURVE },
		{ "ops", required_argument, NULL, O_OPS },
		{ "tag", required_argument, NULL, O_TAG },
		{ "untag", required_argument, NULL, O_UNTAG },
		{ "expires", required_argument, NULL, O_EXPIRES },
		{ "not-before", required_argument, NULL, O_NBF },
		{ "disabled", no_argument, NULL, O_DISABLED },
		{ "enable", no_argument, NULL, O_ENABLE },
		{ "disable", no_argument, NULL, O_DISABLE },
		{ "version", required_argument, NULL, O_VERSION },
		{ "deleted", no_argument, NULL, O_DELETED },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ NULL, 0, NULL, 0 }
	};
	int ch, r;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'j' || ch == 's' || ch == 'c' || ch == 'h' ||
		    ch == '?' || ch == ':') {
			if ((r = cli_global_opt(c, name, ch, optarg)) != 0)
				return r == 1 ? -1 : r;
			continue;
		}
		/* An option of another key command. */
		if (strchr(allowed, ch) == NULL)
			return cli_usage(name, "this command has no such option");
		switch (ch) {
		case O_VAULT: o->vault = optarg; break;
		case O_TYPE: o->type = optarg; break;
		case O_SIZE: o->size = optarg; break;
		case O_CURVE: o->curve = optarg; break;
		case O_OPS: o->ops = optarg; break;
		case O_EXPIRES: o->expires = optarg; break;
		case O_NBF: o->nbf = optarg; break;
		case O_VERSION: o->version = optarg; break;
		case O_LIMIT: o->limit = optarg; break;
		case O_DISABLED: o->disabled = true; break;
		case O_ENABLE: o->enable = true; break;
		case O_DISABLE: o->disable = true; break;
		case O_DELETED: o->deleted = true; break;
		case O_TAG:
			if (o->n_tags < MAX_CLI_TAGS)
				o->tags[o->n_tags++] = optarg;
			else
				o->too_many = true;
			break;
		case O_UNTAG:
			if (o->n_untags < MAX_CLI_TAGS)
				o->untags[o->n_untags++] = optarg;
			else
				o->too_many = true;
			break;
		default:
			return cli_usage(name, "unknown option");
		}
	}
	if (argc - optind < min)
		return cli_usage(name, min == 1 ? "the key NAME is missing" :
		    "arguments are missing");
	if (argc - optind > max)
		return cli_usage(name, "too many arguments");
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

/* ------------------------------------------------------------- requests */

static void
kc_init(struct kc *k, struct cli *c, const char *vault)
{
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->vault = vault;
}

static void
kc_clear(struct kc *k)
{
	kb_kv_client_free(k->kv);
	cJSON_Delete(k->vaults);
	memset(k, 0, sizeof(*k));
}

/*
 * One request.  0 for a 2xx answer, with *out its JSON body (NULL when
 * the body was empty, as for purge's 204); else the error kv-client
 * derived from the status, with Key Vault's message recorded.
 */
static int
kc_call(struct kc *k, const char *method, const char *path, const cJSON *body,
    cJSON **out)
{
	return cli_agent_request(k->c, &k->kv, method, path, body, out);
}

/* Like kc_call, but a JSON object must come back. */
static int
kc_call_obj(struct kc *k, const char *method, const char *path,
    const cJSON *body, cJSON **out)
{
	cJSON *j = NULL;
	int r;

	if ((r = kc_call(k, method, path, body, &j)) != 0)
		return r;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return kb_error_set(KB_ERR_PROTOCOL, "the agent answered %s %s "
		    "without a JSON object", method, path);
	}
	*out = j;
	return 0;
}

/*
 * A Key Vault path: the vault prefix (none for the default vault, the
 * root paths), the formatted rest, then api-version.  Every name in it
 * was checked against [0-9a-zA-Z-], so no segment needs percent-encoding.
 */
static char *
kv_path(const struct kc *k, const char *fmt, ...) KB_PRINTF(2, 3);

static char *
kv_path(const struct kc *k, const char *fmt, ...)
{
	char rest[1024];
	struct kb_buf b;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(rest))
		return NULL;
	kb_buf_init(&b, PATH_CAP);
	if ((k->vault != NULL && kb_buf_appendf(&b, "/vaults/%s", k->vault) != 0) ||
	    kb_buf_appendf(&b, "%s%capi-version=" API_VERSION, rest,
	    strchr(rest, '?') != NULL ? '&' : '?') != 0) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

/*
 * nextLink is a full URL on the agent ("http://localhost/keys?..."):
 * keep its path and query, and only for the same kind of path.
 */
static int
next_path(const char *link, const char *want_prefix, char **out)
{
	const char *p = link;
	char *s;
	size_t i;

	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strchr(p, ':') + 3;
		p += strcspn(p, "/");
	}
	if (p[0] != '/' || strlen(p) >= PATH_CAP ||
	    strncmp(p, want_prefix, strlen(want_prefix)) != 0)
		goto bad;
	for (i = 0; p[i] != '\0'; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			goto bad;
	if ((s = kb_strdup(p)) == NULL)
		return KB_ERR_ALLOC;
	*out = s;
	return 0;
 bad:
	return kb_error_set(KB_ERR_PROTOCOL, "the agent sent a nextLink that "
	    "is not one of its %s paths", want_prefix);
}

/*
 * Every item of a paged list (value[] + nextLink), in order.  With tail
 * > 0 only the last tail items are kept.
 */
static int
list_all(struct kc *k, const char *first, size_t tail, cJSON **out)
{
	cJSON *all = NULL, *page = NULL, *it;
	const cJSON *value, *nl;
	char *cur = NULL, *next = NULL, prefix[PATH_CAP];
	size_t pages = 0, count = 0;
	int r;

	/* Follow only links to the list that was asked for. */
	snprintf(prefix, sizeof(prefix), "%.*s", (int)strcspn(first, "?"), first);
	if ((all = cJSON_CreateArray()) == NULL || (cur = kb_strdup(first)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (;;) {
		if ((r = kc_call_obj(k, "GET", cur, NULL, &page)) != 0)
			goto out;
		value = cJSON_GetObjectItemCaseSensitive(page, "value");
		if (!cJSON_IsArray(value)) {
			r = kb_error_set(KB_ERR_PROTOCOL, "the agent's list has no "
			    "value array");
			goto out;
		}
		while ((it = cJSON_DetachItemFromArray((cJSON *)value, 0)) != NULL) {
			cJSON_AddItemToArray(all, it);
			if (tail > 0 && ++count > tail) {
				cJSON_DeleteItemFromArray(all, 0);
				count--;
			}
		}
		/* The last page: nextLink null, absent or empty. */
		nl = cJSON_GetObjectItemCaseSensitive(page, "nextLink");
		if (!cJSON_IsString(nl) || nl->valuestring[0] == '\0')
			break;
		if ((r = next_path(nl->valuestring, prefix, &next)) != 0)
			goto out;
		if (strcmp(next, cur) == 0 || ++pages > MAX_PAGES) {
			r = kb_error_set(KB_ERR_PROTOCOL, "the agent's nextLink "
			    "does not advance");
			goto out;
		}
		free(cur);
		cur = next;
		next = NULL;
		cJSON_Delete(page);
		page = NULL;
	}
	*out = all;
	all = NULL;    /* transferred */
	r = 0;
 out:
	cJSON_Delete(all);
	cJSON_Delete(page);
	free(cur);
	free(next);
	return r;
}

/* The vault this command talks to, from GET /keybridge/vaults. */
static int
kc_vault(struct kc *k, const cJSON **out)
{
	const cJSON *v, *val;
	int r;

	if (k->vaults == NULL &&
	    (r = kc_call_obj(k, "GET", "/keybridge/vaults", NULL, &k->vaults)) != 0)
		return r;
	val = cJSON_GetObjectItemCaseSensitive(k->vaults, "value");
	cJSON_ArrayForEach(v, val) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
		if (!cJSON_IsString(n))
			continue;
		if (k->vault != NULL ? strcasecmp(n->valuestring, k->vault) == 0 :
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "default"))) {
			*out = v;
			return 0;
		}
	}
	if (k->vault != NULL)
		return kb_error_set(KB_ERR_NOT_FOUND, "the agent has no vault '%s' "
		    "that you may use", k->vault);
	return kb_error_set(KB_ERR_NOT_FOUND, "the agent has no default vault; "
	    "name one with --vault NAME");
}

/* ------------------------------------------------------------- printing */

/* A Key Vault IntDate as RFC 3339 UTC, or NULL when absent. */
static char *
jtime(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	char buf[40];

	/* valuedouble: times pass 2^31 (cJSON's valueint saturates). */
	if (!cJSON_IsNumber(v) ||
	    kb_time_format((int64_t)v->valuedouble, buf, sizeof(buf)) != 0)
		return NULL;
	return kb_strdup(buf);
}

static char *
jbool(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsBool(v))
		return NULL;
	return kb_strdup(cJSON_IsTrue(v) ? "yes" : "no");
}

static char *
jnumstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	char buf[32];

	if (!cJSON_IsNumber(v))
		return NULL;
	snprintf(buf, sizeof(buf), "%.0f", v->valuedouble);
	return kb_strdup(buf);
}

static int
tag_cmp(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string,
	    (*(const cJSON *const *)b)->string);
}

/* "k=v,k2=v2" sorted by name from a tags object, or NULL when none. */
static char *
tags_str(const cJSON *tags)
{
	const cJSON *t, *v[64];
	struct kb_buf b;
	size_t n = 0, i;
	bool first = true;

	cJSON_ArrayForEach(t, tags)
		if (cJSON_IsString(t) && t->string != NULL && n < 64)
			v[n++] = t;
	qsort(v, n, sizeof(v[0]), tag_cmp);
	kb_buf_init(&b, 64 * 1024);
	for (i = 0; i < n; i++) {
		if (kb_buf_appendf(&b, "%s%s=%s", first ? "" : ",", v[i]->string,
		    v[i]->valuestring) != 0)
			break;
		first = false;
	}
	if (first) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

static char *
strings_str(const cJSON *arr)
{
	const cJSON *t;
	struct kb_buf b;
	bool first = true;

	kb_buf_init(&b, 4096);
	cJSON_ArrayForEach(t, arr) {
		if (!cJSON_IsString(t))
			continue;
		if (kb_buf_appendf(&b, "%s%s", first ? "" : ",", t->valuestring) != 0)
			break;
		first = false;
	}
	if (first) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

/*
 * Name and version from a kid or recoveryId:
 * http://host[/vaults/v]/{keys|deletedkeys}/{name}[/{version}].
 */
static void
kid_parts(const char *kid, char *name, size_t nn, char *ver, size_t vn)
{
	const char *p, *slash;

	name[0] = ver[0] = '\0';
	if (kid == NULL)
		return;
	if ((p = strstr(kid, "/keys/")) != NULL)
		p += 6;
	else if ((p = strstr(kid, "/deletedkeys/")) != NULL)
		p += 13;
	else
		return;
	slash = strchr(p, '/');
	if (slash == NULL) {
		snprintf(name, nn, "%s", p);
		return;
	}
	snprintf(name, nn, "%.*s", (int)(slash - p), p);
	snprintf(ver, vn, "%.*s", (int)strcspn(slash + 1, "/?"), slash + 1);
}

/* RSA modulus size in bits from the JWK's n (leading zero bytes skipped). */
static char *
rsa_bits(const cJSON *key)
{
	const char *n = cli_jstr(key, "n");
	unsigned char *raw = NULL;
	size_t len = 0, i = 0, bits;
	char buf[32];
	int top;

	if (n == NULL || kb_b64url_decode(n, strlen(n), &raw, &len) != 0)
		return NULL;
	while (i < len && raw[i] == 0)
		i++;
	if (i == len) {
		free(raw);
		return NULL;
	}
	bits = (len - i) * 8;
	for (top = 7; top >= 0 && !(raw[i] & (1u << top)); top--)
		bits--;
	free(raw);
	snprintf(buf, sizeof(buf), "%zu", bits);
	return kb_strdup(buf);
}

/* "2048", "P-256" or "256": attributes.key_size first (2026-04-01). */
static char *
size_str(const cJSON *key, const cJSON *attrs)
{
	const char *kty = cli_jstr(key, "kty"), *crv = cli_jstr(key, "crv");

	if (crv != NULL)
		return kb_strdup(crv);
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(attrs, "key_size")))
		return jnumstr(attrs, "key_size");
	if (kty != NULL && strncmp(kty, "RSA", 3) == 0)
		return rsa_bits(key);
	return NULL;
}

/*
 * The version's PKCS#11 URI: the vault's token URI, then id (every byte
 * %XX, as kb_p11_uri_format does) and object (the label, percent-encoded
 * outside RFC 3986's unreserved set).
 */
static char *
version_uri(struct kc *k, const char *name, const char *ver)
{
	const cJSON *v = NULL;
	const char *tok;
	unsigned char *id = NULL;
	size_t idlen = 0, i;
	struct kb_buf b;
	char *s = NULL;
	int r;

	if (kc_vault(k, &v) != 0 || (tok = cli_jstr(v, "token_uri")) == NULL ||
	    strncmp(tok, "pkcs11:", 7) != 0) {
		kb_error_clear();
		return NULL;
	}
	if (kb_hex_decode(ver, &id, &idlen) != 0) {
		kb_error_clear();
		return NULL;
	}
	kb_buf_init(&b, PATH_CAP);
	r = kb_buf_appendf(&b, "%s%sid=", tok, tok[7] != '\0' ? ";" : "");
	for (i = 0; r == 0 && i < idlen; i++)
		r = kb_buf_appendf(&b, "%%%02X", id[i]);
	if (r == 0)
		r = kb_buf_append(&b, ";object=", 8);
	for (i = 0; r == 0 && name[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (isascii(ch) && (isalnum(ch) || strchr("-._~", ch) != NULL))
			r = kb_buf_append(&b, &ch, 1);
		else
			r = kb_buf_appendf(&b, "%%%02X", ch);
	}
	if (r == 0)
		s = kb_buf_steal(&b, NULL);
	kb_buf_free(&b);
	free(id);
	return s;
}

struct row {
	const char *label;
	char *value;
};

static void
print_rows(struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		printf("%-16s", rows[i].label);
		cli_put(rows[i].value != NULL && rows[i].value[0] != '\0' ?
		    rows[i].value : "-");
		putchar('\n');
		free(rows[i].value);
		rows[i].value = NULL;
	}
}

static char *
recovery_str(const cJSON *attrs)
{
	const char *lvl = cli_jstr(attrs, "recoveryLevel");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(attrs, "recoverableDays");
	char buf[160];

	if (lvl == NULL)
		return NULL;
	if (cJSON_IsNumber(d))
		snprintf(buf, sizeof(buf), "%.100s (%.0f days)", lvl, d->valuedouble);
	else
		snprintf(buf, sizeof(buf), "%.100s", lvl);
	return kb_strdup(buf);
}

/* A KeyBundle (or DeletedKeyBundle) for people, or as JSON. */
static int
print_bundle(struct kc *k, const cJSON *b)
{
	const cJSON *key, *attrs;
	char name[160], ver[80];
	struct row rows[20];
	size_t n = 0;
	bool deleted;

	if (k->c->json) {
		cli_print_json(b);
		return 0;
	}
	key = cJSON_GetObjectItemCaseSensitive(b, "key");
	attrs = cJSON_GetObjectItemCaseSensitive(b, "attributes");
	kid_parts(cli_jstr(key, "kid"), name, sizeof(name), ver, sizeof(ver));
	deleted = cJSON_GetObjectItemCaseSensitive(b, "recoveryId") != NULL;
	rows[n++] = (struct row){ "name", kb_strdup(name) };
	rows[n++] = (struct row){ "version", kb_strdup(ver) };
	rows[n++] = (struct row){ "kid", cli_jstr(key, "kid") ? kb_strdup(cli_jstr(key, "kid")) : NULL };
	rows[n++] = (struct row){ "kty", cli_jstr(key, "kty") ? kb_strdup(cli_jstr(key, "kty")) : NULL };
	rows[n++] = (struct row){ cli_jstr(key, "crv") ? "curve" : "size", size_str(key, attrs) };
	rows[n++] = (struct row){ "key_ops", strings_str(cJSON_GetObjectItemCaseSensitive(key, "key_ops")) };
	rows[n++] = (struct row){ "enabled", jbool(attrs, "enabled") };
	rows[n++] = (struct row){ "not before", jtime(attrs, "nbf") };
	rows[n++] = (struct row){ "expires", jtime(attrs, "exp") };
	rows[n++] = (struct row){ "created", jtime(attrs, "created") };
	rows[n++] = (struct row){ "updated", jtime(attrs, "updated") };
	rows[n++] = (struct row){ "recovery level", recovery_str(attrs) };
	rows[n++] = (struct row){ "tags", tags_str(cJSON_GetObjectItemCaseSensitive(b, "tags")) };
	if (deleted) {
		rows[n++] = (struct row){ "deleted", jtime(b, "deletedDate") };
		rows[n++] = (struct row){ "purge date", jtime(b, "scheduledPurgeDate") };
		rows[n++] = (struct row){ "recovery id", cli_jstr(b, "recoveryId") ?
		    kb_strdup(cli_jstr(b, "recoveryId")) : NULL };
	} else if (name[0] != '\0' && ver[0] != '\0') {
		rows[n++] = (struct row){ "pkcs11 uri", version_uri(k, name, ver) };
	}
	print_rows(rows, n);
	return 0;
}

/* Item lists (keys, versions, deleted keys) as tables. */
enum list_kind { LIST_KEYS, LIST_VERSIONS, LIST_DELETED };

static int
print_items(const cJSON *items, enum list_kind kind)
{
	static const char *const h_keys[] = {
		"NAME", "ENABLED", "CREATED", "UPDATED", "EXPIRES", "TAGS"
	};
	static const char *const h_vers[] = {
		"VERSION", "ENABLED", "CREATED", "NOT BEFORE", "EXPIRES", "TAGS"
	};
	static const char *const h_del[] = {
		"NAME", "DELETED", "PURGE DATE", "RECOVERY LEVEL", "TAGS"
	};
	const char *const *head = kind == LIST_KEYS ? h_keys :
	    kind == LIST_VERSIONS ? h_vers : h_del;
	size_t cols = kind == LIST_DELETED ? 5 : 6, n, i = 0, c;
	const cJSON *it, *attrs, *tags;
	char **cells = NULL, name[160], ver[80];

	n = (size_t)cJSON_GetArraySize(items);
	if ((cells = calloc(n * cols + 1, sizeof(*cells))) == NULL)
		return KB_ERR_ALLOC;
	cJSON_ArrayForEach(it, items) {
		if (i >= n)
			break;
		attrs = cJSON_GetObjectItemCaseSensitive(it, "attributes");
		tags = cJSON_GetObjectItemCaseSensitive(it, "tags");
		kid_parts(cli_jstr(it, "kid"), name, sizeof(name), ver, sizeof(ver));
		c = i * cols;
		cells[c] = kb_strdup(kind == LIST_VERSIONS ? ver : name);
		if (kind == LIST_DELETED) {
			cells[c + 1] = jtime(it, "deletedDate");
			cells[c + 2] = jtime(it, "scheduledPurgeDate");
			cells[c + 3] = kb_strdup(cli_jstr(attrs, "recoveryLevel") ?
			    cli_jstr(attrs, "recoveryLevel") : "");
			cells[c + 4] = tags_str(tags);
		} else {
			cells[c + 1] = jbool(attrs, "enabled");
			cells[c + 2] = jtime(attrs, "created");
			cells[c + 3] = jtime(attrs, kind == LIST_KEYS ? "updated" : "nbf");
			cells[c + 4] = jtime(attrs, "exp");
			cells[c + 5] = tags_str(tags);
		}
		i++;
	}
	cli_table(head, cols, cells, i);
	cli_cells_free(cells, n * cols);
	return 0;
}

static int
finish(int r)
{
	return r == 0 ? 0 : cli_print_error(r);
}

/* ------------------------------------------------------------- bodies */

static const struct {
	const char *word;     /* --type */
	const char *kty;
} key_types[] = {
	{ "rsa", "RSA-HSM" }, { "ec", "EC-HSM" }, { "aes", "oct-HSM" },
	/* Key Vault's own names are accepted as they are. */
	{ "RSA", "RSA" }, { "RSA-HSM", "RSA-HSM" }, { "EC", "EC" },
	{ "EC-HSM", "EC-HSM" }, { "oct", "oct" }, { "oct-HSM", "oct-HSM" },
};

/* JsonWebKeyOperation (keys.json); the agent refuses import/export. */
static const char *const key_ops[] = {
	"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey",
	"import", "export", NULL
};

static int
ops_array(const char *list, cJSON **out)
{
	cJSON *a = NULL;
	char *copy = NULL, *tok, *save = NULL;
	size_t i;
	int r;

	if ((a = cJSON_CreateArray()) == NULL || (copy = kb_strdup(list)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (list[0] == '\0' || list[strlen(list) - 1] == ',' || strstr(list, ",,") ||
	    list[0] == ',') {
		r = kb_error_set(KB_ERR_INVALID, "--ops takes operations separated "
		    "by commas: encrypt,decrypt,sign,verify,wrapKey,unwrapKey");
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; key_ops[i] != NULL; i++)
			if (strcasecmp(tok, key_ops[i]) == 0)
				break;
		if (key_ops[i] == NULL) {
			r = kb_error_set(KB_ERR_INVALID, "--ops: '%.64s' is not a key "
			    "operation: use encrypt, decrypt, sign, verify, wrapKey, "
			    "unwrapKey", tok);
			goto out;
		}
		cJSON_AddItemToArray(a, cJSON_CreateString(key_ops[i]));
	}
	*out = a;
	a = NULL;
	r = 0;
 out:
	cJSON_Delete(a);
	free(copy);
	return r;
}

/* Apply --tag k=v and --untag k to a tags object; check Key Vault's limits. */
static int
apply_tags(const struct kopts *o, cJSON *tags)
{
	const cJSON *t;
	cJSON *nv;
	char key[MAX_TAG_LEN + 2];
	const char *eq;
	size_t i, n = 0;

	if (o->too_many)
		return kb_error_set(KB_ERR_INVALID, "a key has at most %d tags",
		    MAX_TAGS);
	for (i = 0; i < o->n_untags; i++) {
		if (o->untags[i][0] == '\0' || strlen(o->untags[i]) > MAX_TAG_LEN)
			return kb_error_set(KB_ERR_INVALID, "--untag takes a tag name "
			    "of 1 to %d characters", MAX_TAG_LEN);
		cJSON_DeleteItemFromObjectCaseSensitive(tags, o->untags[i]);
	}
	for (i = 0; i < o->n_tags; i++) {
		eq = strchr(o->tags[i], '=');
		if (eq == NULL || eq == o->tags[i])
			return kb_error_set(KB_ERR_INVALID, "--tag takes NAME=VALUE, "
			    "not '%.64s'", o->tags[i]);
		if ((size_t)(eq - o->tags[i]) > MAX_TAG_LEN || strlen(eq + 1) > MAX_TAG_LEN)
			return kb_error_set(KB_ERR_INVALID, "tag names and values are "
			    "at most %d characters (Key Vault's limit)", MAX_TAG_LEN);
		snprintf(key, sizeof(key), "%.*s", (int)(eq - o->tags[i]), o->tags[i]);
		if ((nv = cJSON_CreateString(eq + 1)) == NULL)
			return KB_ERR_ALLOC;
		/* A tag set again keeps its place. */
		if (cJSON_GetObjectItemCaseSensitive(tags, key) != NULL)
			cJSON_ReplaceItemInObjectCaseSensitive(tags, key, nv);
		else
			cJSON_AddItemToObject(tags, key, nv);
	}
	cJSON_ArrayForEach(t, tags)
		n++;
	if (n > MAX_TAGS)
		return kb_error_set(KB_ERR_INVALID, "a key has at most %d tags "
		    "(Key Vault's limit); this one would have %zu", MAX_TAGS, n);
	return 0;
}

/* attributes.nbf / exp; "none" (update only) sends null to clear it. */
static int
add_time(cJSON *attrs, const char *member, const char *opt, const char *val,
    bool none_ok)
{
	int64_t t = 0;
	int r;

	if (val == NULL)
		return 0;
	if (none_ok && strcmp(val, "none") == 0)
		return cJSON_AddNullToObject(attrs, member) ? 0 : KB_ERR_ALLOC;
	if ((r = parse_time(opt, val, &t)) != 0)
		return r;
	return cJSON_AddNumberToObject(attrs, member, (double)t) ? 0 : KB_ERR_ALLOC;
}

static int
create_body(const struct kopts *o, cJSON **out)
{
	static const unsigned rsa_sizes[] = { 2048, 3072, 4096 };
	static const unsigned aes_sizes[] = { 128, 192, 256 };
	static const char *const curves[] = { "P-256", "P-384", "P-521" };
	cJSON *b = NULL, *attrs = NULL, *tags = NULL, *ops = NULL;
	const char *kty = NULL;
	unsigned long long size = 0;
	size_t i, ci = 0;
	bool rsa, ec;
	int r;

	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (strcmp(o->type, key_types[i].word) == 0)
			kty = key_types[i].kty;
	if (kty == NULL)
		return kb_error_set(KB_ERR_INVALID, "--type '%.32s' is not a key "
		    "type: use rsa, ec or aes", o->type);
	rsa = strncmp(kty, "RSA", 3) == 0;
	ec = strncmp(kty, "EC", 2) == 0;
	if (o->size != NULL) {
		bool okay = false;
		if (ec)
			return kb_error_set(KB_ERR_INVALID, "EC keys have no --size; "
			    "choose --curve P-256, P-384 or P-521");
		if (kb_parse_ull(o->size, 1, 65536, &size) == 0)
			for (i = 0; i < 3; i++)
				okay |= size == (rsa ? rsa_sizes[i] : aes_sizes[i]);
		if (!okay)
			return kb_error_set(KB_ERR_INVALID, "--size %.16s: %s keys are %s "
			    "bits", o->size, rsa ? "RSA" : "AES",
			    rsa ? "2048, 3072 or 4096" : "128, 192 or 256");
	}
	if (o->curve != NULL) {
		if (!ec)
			return kb_error_set(KB_ERR_INVALID, "--curve is for EC keys; "
			    "%s keys take --size", rsa ? "RSA" : "AES");
		for (ci = 0; ci < 3 && strcasecmp(o->curve, curves[ci]) != 0; ci++)
			;
		if (ci == 3)
			return kb_error_set(KB_ERR_INVALID, "--curve %.16s: use P-256, "
			    "P-384 or P-521", o->curve);
	}
	if ((b = cJSON_CreateObject()) == NULL || (attrs = cJSON_CreateObject()) == NULL ||
	    (tags = cJSON_CreateObject()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = apply_tags(o, tags)) != 0 ||
	    (r = add_time(attrs, "nbf", "--not-before", o->nbf, false)) != 0 ||
	    (r = add_time(attrs, "exp", "--expires", o->expires, false)) != 0)
		goto out;
	if (o->ops != NULL && (r = ops_array(o->ops, &ops)) != 0)
		goto out;
	r = KB_ERR_ALLOC;
	if (cJSON_AddStringToObject(b, "kty", kty) == NULL ||
	    (size != 0 && cJSON_AddNumberToObject(b, "key_size", (double)size) == NULL) ||
	    (o->curve != NULL && cJSON_AddStringToObject(b, "crv", curves[ci]) == NULL))
		goto out;
	if (ops != NULL) {
		cJSON_AddItemToObject(b, "key_ops", ops);
		ops = NULL;
	}
	if (o->disabled && cJSON_AddFalseToObject(attrs, "enabled") == NULL)
		goto out;
	cJSON_AddItemToObject(b, "attributes", attrs);
	attrs = NULL;
	if (tags->child != NULL) {
		cJSON_AddItemToObject(b, "tags", tags);
		tags = NULL;
	}
	*out = b;
	b = NULL;
	r = 0;
 out:
	cJSON_Delete(b);
	cJSON_Delete(attrs);
	cJSON_Delete(tags);
	cJSON_Delete(ops);
	return r;
}

/* --------------------------------------------------------------- commands */

#define VAULT_ALLOWED "W"

/* Options common to every key command: --vault, checked before any request. */
static int
start(struct cli *c, const char *name, const char *allowed, int min, int max,
    int argc, char **argv, struct kopts *o, struct kc *k)
{
	int r;

	if ((r = parse_opts(c, name, allowed, min, max, argc, argv, o)) != 0)
		return r;
	if (o->vault != NULL && (r = check_vault_name(o->vault)) != 0)
		return cli_print_error(r);
	if (o->version != NULL && (r = check_version(o->version)) != 0)
		return cli_print_error(r);
	kc_init(k, c, o->vault);
	return 0;
}

int
cmd_key_create(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *body = NULL, *res = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, "key create", VAULT_ALLOWED "tzCogenDX", 1, 1, argc,
	    argv, &o, &k)) != 0)
		return r < 0 ? 0 : r;
	o.disabled |= o.disable;
	if (o.type == NULL)
		return cli_usage("key create", "--type rsa|ec|aes is required");
	if ((r = check_key_name(o.args[0])) != 0 ||
	    (r = create_body(&o, &body)) != 0)
		goto out;
	if ((path = kv_path(&k, "/keys/%s/create", o.args[0])) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = kc_call_obj(&k, "POST", path, body, &res)) == 0)
		r = print_bundle(&k, res);
 out:
	free(path);
	cJSON_Delete(body);
	cJSON_Delete(res);
	kc_clear(&k);
	return finish(r);
}

int
cmd_key_list(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *all = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, "key list", VAULT_ALLOWED "l", 0, 0, argc, argv, &o,
	    &k)) != 0)
		return r < 0 ? 0 : r;
	path = kv_path(&k, "%s?maxresults=%d", o.deleted ? "/deletedkeys" : "/keys",
	    KV_PAGE);
	if (path == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = list_all(&k, path, 0, &all)) != 0)
		goto out;
	if (c->json)
		cli_print_json(all);
	else
		r = print_items(all, o.deleted ? LIST_DELETED : LIST_KEYS);
 out:
	free(path);
	cJSON_Delete(all);
	kc_clear(&k);
	return finish(r);
}

int
cmd_key_show(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *res = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, "key show", VAULT_ALLOWED "rl", 1, 1, argc, argv, &o,
	    &k)) != 0)
		return r < 0 ? 0 : r;
	if (o.deleted && o.version != NULL)
		return cli_usage("key show", "--deleted shows the deleted key as "
		    "a whole; it takes no --version");
	if ((r = check_key_name(o.args[0])) != 0)
		goto out;
	if (o.deleted)
		path = kv_path(&k, "/deletedkeys/%s", o.args[0]);
	else
		path = kv_path(&k, "/keys/%s/%s", o.args[0],
		    o.version != NULL ? o.version : "");
	if (path == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = kc_call_obj(&k, "GET", path, NULL, &res)) == 0)
		r = print_bundle(&k, res);
 out:
	free(path);
	cJSON_Delete(res);
	kc_clear(&k);
	return finish(r);
}

int
cmd_key_versions(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *all = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, "key versions", VAULT_ALLOWED, 1, 1, argc, argv, &o,
	    &k)) != 0)
		return r < 0 ? 0 : r;
	if ((r = check_key_name(o.args[0])) != 0)
		goto out;
	if ((path = kv_path(&k, "/keys/%s/versions?maxresults=%d", o.args[0],
	    KV_PAGE)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = list_all(&k, path, 0, &all)) != 0)
		goto out;
	if (c->json)
		cli_print_json(all);
	else
		r = print_items(all, LIST_VERSIONS);
 out:
	free(path);
	cJSON_Delete(all);
	kc_clear(&k);
	return finish(r);
}

int
cmd_key_update(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *body = NULL, *attrs = NULL, *cur = NULL, *tags = NULL, *ops = NULL;
	cJSON *res = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, "key update", VAULT_ALLOWED "rguenEXDo", 1, 1, argc,
	    argv, &o, &k)) != 0)
		return r < 0 ? 0 : r;
	o.disable |= o.disabled;
	if (o.enable && o.disable)
		return cli_usage("key update", "--enable and --disable exclude "
		    "each other");
	if (!o.enable && !o.disable && o.expires == NULL && o.nbf == NULL &&
	    o.n_tags == 0 && o.n_untags == 0 && !o.too_many && o.ops == NULL)
		return cli_usage("key update", "nothing to update: give --tag, "
		    "--untag, --enable, --disable, --expires, --not-before or --ops");
	if ((r = check_key_name(o.args[0])) != 0)
		goto out;
	if ((path = kv_path(&k, "/keys/%s/%s", o.args[0],
	    o.version != NULL ? o.version : "")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((body = cJSON_CreateObject()) == NULL ||
	    (attrs = cJSON_CreateObject()) == NULL ||
	    (tags = cJSON_CreateObject()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* The new tags alone must pass before the agent is asked anything. */
	if ((r = apply_tags(&o, tags)) != 0)
		goto out;
	cJSON_Delete(tags);
	tags = NULL;
	if ((r = add_time(attrs, "nbf", "--not-before", o.nbf, true)) != 0 ||
	    (r = add_time(attrs, "exp", "--expires", o.expires, true)) != 0)
		goto out;
	if (o.ops != NULL && (r = ops_array(o.ops, &ops)) != 0)
		goto out;
	if (o.n_tags > 0 || o.n_untags > 0 || o.too_many) {
		/*
		 * PATCH replaces the tags as a whole (Key Vault): read the
		 * version's tags, change them here, send them all.  Two
		 * updates at once: the last one wins, as with Key Vault.
		 */
		if ((r = kc_call_obj(&k, "GET", path, NULL, &cur)) != 0)
			goto out;
		tags = cJSON_DetachItemFromObjectCaseSensitive(cur, "tags");
		if (!cJSON_IsObject(tags)) {
			cJSON_Delete(tags);
			if ((tags = cJSON_CreateObject()) == NULL) {
				r = KB_ERR_ALLOC;
				goto out;
			}
		}
		if ((r = apply_tags(&o, tags)) != 0)
			goto out;
		cJSON_AddItemToObject(body, "tags", tags);
		tags = NULL;
	}
	if ((o.enable || o.disable) &&
	    cJSON_AddBoolToObject(attrs, "enabled", o.enable) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (ops != NULL) {
		cJSON_AddItemToObject(body, "key_ops", ops);
		ops = NULL;
	}
	if (attrs->child != NULL) {
		cJSON_AddItemToObject(body, "attributes", attrs);
		attrs = NULL;
	}
	if ((r = kc_call_obj(&k, "PATCH", path, body, &res)) == 0)
		r = print_bundle(&k, res);
 out:
	free(path);
	cJSON_Delete(body);
	cJSON_Delete(attrs);
	cJSON_Delete(cur);
	cJSON_Delete(tags);
	cJSON_Delete(ops);
	cJSON_Delete(res);
	kc_clear(&k);
	return finish(r);
}

/* rotate, delete, recover, purge: NAME only, one request. */
static int
simple(struct cli *c, const char *cmd, const char *method, const char *coll,
    const char *action, bool body_expected, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	cJSON *res = NULL;
	char *path = NULL;
	int r;

	if ((r = start(c, cmd, VAULT_ALLOWED, 1, 1, argc, argv, &o, &k)) != 0)
		return r < 0 ? 0 : r;
	if ((r = check_key_name(o.args[0])) != 0)
		goto out;
	if ((path = kv_path(&k, "/%s/%s%s", coll, o.args[0], action)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (body_expected) {
		if ((r = kc_call_obj(&k, method, path, NULL, &res)) == 0)
			r = print_bundle(&k, res);
	} else if ((r = kc_call(&k, method, path, NULL, &res)) == 0 && !c->json) {
		/* Purge: 204 and no body, so a sentence for people only. */
		printf("purged key ");
		cli_put(o.args[0]);
		if (o.vault != NULL)
			printf(" from vault %s", o.vault);
		putchar('\n');
	}
 out:
	free(path);
	cJSON_Delete(res);
	kc_clear(&k);
	return finish(r);
}

int
cmd_key_rotate(struct cli *c, int argc, char **argv)
{
	return simple(c, "key rotate", "POST", "keys", "/rotate", true, argc, argv);
}

int
cmd_key_delete(struct cli *c, int argc, char **argv)
{
	return simple(c, "key delete", "DELETE", "keys", "", true, argc, argv);
}

int
cmd_key_recover(struct cli *c, int argc, char **argv)
{
	return simple(c, "key recover", "POST", "deletedkeys", "/recover", true,
	    argc, argv);
}

int
cmd_key_purge(struct cli *c, int argc, char **argv)
{
	return simple(c, "key purge", "DELETE", "deletedkeys", "", false, argc,
	    argv);
}

int
cmd_key_adopt(struct cli *c, int argc, char **argv)
{
	struct kopts o;
	struct kc k;
	const cJSON *v = NULL;
	cJSON *body = NULL, *res = NULL;
	char path[256];
	const char *uri, *vname;
	int r;

	if ((r = start(c, "key adopt", VAULT_ALLOWED, 2, 2, argc, argv, &o,
	    &k)) != 0)
		return r < 0 ? 0 : r;
	uri = o.args[0];
	if (strncmp(uri, "pkcs11:", 7) != 0 || strlen(uri) > 2048) {
		r = kb_error_set(KB_ERR_INVALID, "'%.64s' is not a PKCS#11 URI "
		    "(pkcs11:token=...;object=...;id=...)", uri);
		goto out;
	}
	/* A PIN never travels on a command line. */
	if (strcasestr(uri, "pin-value") != NULL) {
		r = kb_error_set(KB_ERR_INVALID, "the URI holds a pin-value: the "
		    "agent logs in with its own PIN, leave it out");
		goto out;
	}
	if ((r = check_key_name(o.args[1])) != 0)
		goto out;
	if (o.vault != NULL)
		vname = o.vault;
	else if ((r = kc_vault(&k, &v)) != 0)
		goto out;
	else
		vname = cli_jstr(v, "name");
	if (vname == NULL || check_vault_name(vname) != 0) {
		r = kb_error_set(KB_ERR_PROTOCOL, "the agent's default vault has "
		    "no usable name");
		goto out;
	}
	snprintf(path, sizeof(path), "/keybridge/vaults/%s/adopt", vname);
	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "uri", uri) == NULL ||
	    cJSON_AddStringToObject(body, "name", o.args[1]) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = kc_call_obj(&k, "POST", path, body, &res)) == 0)
		r = print_bundle(&k, res);
 out:
	cJSON_Delete(body);
	cJSON_Delete(res);
	kc_clear(&k);
	return finish(r);
}

int
cmd_audit_list(struct cli *c, int argc, char **argv)
{
	static const char *const head[] = {
		"SEQ", "TIME", "UID", "ROLE", "VAULT", "OP", "KEY", "VERSION",
		"RESULT"
	};
	struct kopts o;
	struct kc k;
	cJSON *all = NULL;
	const cJSON *it;
	unsigned long long limit = 0;
	char path[256], **cells = NULL, *line;
	size_t n = 0, i = 0, x;
	int r;

	if ((r = start(c, "audit list", VAULT_ALLOWED "L", 0, 0, argc, argv, &o,
	    &k)) != 0)
		return r < 0 ? 0 : r;
	if (o.limit != NULL && kb_parse_ull(o.limit, 1, 100000000, &limit) != 0) {
		r = kb_error_set(KB_ERR_INVALID, "--limit takes a number of records "
		    "from 1 to 100000000");
		goto out;
	}
	/* /keybridge/ paths are the agent's own: no vault prefix, no api-version. */
	k.vault = NULL;
	snprintf(path, sizeof(path), "/keybridge/audit?maxresults=%d%s%s",
	    AUDIT_PAGE, o.vault ? "&vault=" : "", o.vault ? o.vault : "");
	if ((r = list_all(&k, path, (size_t)limit, &all)) != 0)
		goto out;
	if (c->json) {
		/* JSON lines: one record per line, for grep and jq -c. */
		cJSON_ArrayForEach(it, all) {
			if ((line = cJSON_PrintUnformatted(it)) == NULL) {
				r = KB_ERR_ALLOC;
				goto out;
			}
			puts(line);
			cJSON_free(line);
		}
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(all);
	if ((cells = calloc(n * 9 + 1, sizeof(*cells))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	cJSON_ArrayForEach(it, all) {
		if (i >= n)
			break;
		x = i * 9;
		cells[x] = jnumstr(it, "seq");
		cells[x + 1] = jtime(it, "time");
		cells[x + 2] = jnumstr(it, "uid");
		cells[x + 3] = cli_jstr(it, "role") ? kb_strdup(cli_jstr(it, "role")) : NULL;
		cells[x + 4] = cli_jstr(it, "vault") ? kb_strdup(cli_jstr(it, "vault")) : NULL;
		cells[x + 5] = cli_jstr(it, "op") ? kb_strdup(cli_jstr(it, "op")) : NULL;
		cells[x + 6] = cli_jstr(it, "key") ? kb_strdup(cli_jstr(it, "key")) : NULL;
		cells[x + 7] = cli_jstr(it, "version") ? kb_strdup(cli_jstr(it, "version")) : NULL;
		cells[x + 8] = cli_jstr(it, "result") ? kb_strdup(cli_jstr(it, "result")) : NULL;
		i++;
	}
	cli_table(head, 9, cells, i);
 out:
	cli_cells_free(cells, n * 9);
	cJSON_Delete(all);
	kc_clear(&k);
	return finish(r);
}
