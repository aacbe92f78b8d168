/*
 * uri.c: PKCS#11 URIs (RFC 7512).  Pure functions: no I/O, no globals, so
 * the fuzz target and the unit tests exercise exactly what the agent runs.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stdio.h>

#include "internal.h"

#define URI_MAX        4096     /* whole URI */
#define OBJECT_MAX     1024     /* decoded CKA_LABEL */
#define ID_MAX         256      /* decoded CKA_ID */
#define PATH_TEXT_MAX  1024     /* pin-source, module-path */

enum attr_kind { A_TEXT, A_ID, A_SLOT, A_TYPE, A_REFUSE_PIN, A_REFUSE };

struct attr_rule {
	const char *name;
	enum attr_kind kind;
	size_t max;          /* decoded bytes */
	size_t off;          /* offsetof the char * in struct kb_p11_uri */
	unsigned bit;        /* duplicate detection */
};

#define OFF(f) offsetof(struct kb_p11_uri, f)

/*
 * RFC 7512 section 2.3: path attributes.  Token field widths come from
 * CK_TOKEN_INFO (v2.40 section 3.2); a longer value could never match.
 * The library-* and slot-* attributes are standard but refused: ignoring
 * them would silently widen a selection.
 */
static const struct attr_rule path_rules[] = {
	{ "token", A_TEXT, 32, OFF(token), 1u << 0 },
	{ "manufacturer", A_TEXT, 32, OFF(manufacturer), 1u << 1 },
	{ "serial", A_TEXT, 16, OFF(serial), 1u << 2 },
	{ "model", A_TEXT, 16, OFF(model), 1u << 3 },
	{ "slot-id", A_SLOT, 20, 0, 1u << 4 },
	{ "object", A_TEXT, OBJECT_MAX, OFF(object), 1u << 5 },
	{ "id", A_ID, ID_MAX, 0, 1u << 6 },
	{ "type", A_TYPE, 16, OFF(type), 1u << 7 },
	{ "pin-value", A_REFUSE_PIN, 0, 0, 0 },
	{ "library-manufacturer", A_REFUSE, 0, 0, 0 },
	{ "library-description", A_REFUSE, 0, 0, 0 },
	{ "library-version", A_REFUSE, 0, 0, 0 },
	{ "slot-description", A_REFUSE, 0, 0, 0 },
	{ "slot-manufacturer", A_REFUSE, 0, 0, 0 },
};

/* RFC 7512 section 2.4: query attributes we keep; others are ignored. */
static const struct attr_rule query_rules[] = {
	{ "pin-source", A_TEXT, PATH_TEXT_MAX, OFF(pin_source), 1u << 8 },
	{ "module-path", A_TEXT, PATH_TEXT_MAX, OFF(module_path), 1u << 9 },
	{ "pin-value", A_REFUSE_PIN, 0, 0, 0 },
};

static const char *const types[] = { "public", "private", "cert", "secret-key", "data" };

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 7512 pk11-pchar / pk11-qchar, minus pct-encoded and the delimiter. */
static bool
is_vchar(unsigned char c, bool query)
{
	if (is_unreserved(c))
		return true;
	if (strchr(":[]@!$'()*+,=", c) != NULL && c != '\0')
		return true;
	if (!query)
		return c == '&';
	return c == '/' || c == '?' || c == '|';
}

/* Decode p[0..n) into a malloc'd, NUL-terminated buffer. */
static int
pct_decode(const char *name, const char *p, size_t n, bool query, bool binary,
    size_t max, unsigned char **out, size_t *outlen)
{
	unsigned char *d = NULL;
	size_t i, o = 0;
	int hi, lo, r = KB_ERR_INVALID;

	if ((d = malloc(n + 1)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			if (n - i < 3 || (hi = kb_hex_value((unsigned char)p[i + 1])) < 0 ||
			    (lo = kb_hex_value((unsigned char)p[i + 2])) < 0) {
				kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' "
				    "has a bad percent escape; write %%XX with two hex digits",
				    name);
				goto out;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (c == 0 && !binary) {
				kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' "
				    "holds a NUL byte (%%00), which a text value cannot", name);
				goto out;
			}
		} else if (!is_vchar(c, query)) {
			if (c >= 0x21 && c < 0x7f)
				kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' "
				    "holds '%c', which must be percent-encoded as %%%02X",
				    name, c, c);
			else
				kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' "
				    "holds byte 0x%02x, which must be percent-encoded as %%%02X",
				    name, c, c);
			goto out;
		}
		if (o >= max) {
			r = kb_error_set(KB_ERR_LIMIT, "PKCS#11 URI attribute '%s' is "
			    "longer than %zu bytes", name, max);
			goto out;
		}
		d[o++] = c;
	}
	d[o] = '\0';
	*out = d;
	d = NULL;
	*outlen = o;
	r = 0;
out:
	free(d);
	return r;
}

void
kb_p11_uri_free(struct kb_p11_uri *u)
{
	if (u == NULL)
		return;
	free(u->token);
	free(u->serial);
	free(u->model);
	free(u->manufacturer);
	free(u->object);
	free(u->id);
	free(u->type);
	free(u->pin_source);
	free(u->module_path);
	free(u);
}

static const struct attr_rule *
rule_find(const struct attr_rule *rules, size_t n, const char *name, size_t nlen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(rules[i].name) == nlen && memcmp(rules[i].name, name, nlen) == 0)
			return &rules[i];
	return NULL;
}

/* Attribute names are short ASCII words; print them bounded. */
static int
name_is_sane(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!(is_unreserved((unsigned char)p[i])))
			return 0;
	return 1;
}

static int
one_attr(struct kb_p11_uri *u, unsigned *seen, const char *p, size_t n, bool query)
{
	const struct attr_rule *rule;
	const char *eq;
	size_t nlen;
	unsigned char *v = NULL;
	size_t vlen = 0;
	int r;

	if (n == 0) {
		/* "pkcs11:token=a;;id=b" or a trailing ';': tolerated by nobody. */
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI has an empty attribute "
		    "(two separators in a row)");
	}
	eq = memchr(p, '=', n);
	if (eq == NULL)
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute without '=' "
		    "(write name=value)");
	nlen = (size_t)(eq - p);
	if (!name_is_sane(p, nlen))
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI has a malformed "
		    "attribute name");
	if (query)
		rule = rule_find(query_rules, sizeof(query_rules) / sizeof(query_rules[0]),
		    p, nlen);
	else
		rule = rule_find(path_rules, sizeof(path_rules) / sizeof(path_rules[0]),
		    p, nlen);
	if (rule == NULL) {
		if (query)   /* RFC 7512 section 2.4: unknown query attributes are ignored */
			return 0;
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI path attribute '%.*s' "
		    "is not known here; remove it (known: token, manufacturer, serial, "
		    "model, slot-id, object, id, type)", (int)nlen, p);
	}
	if (rule->kind == A_REFUSE_PIN)
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI carries a pin-value; "
		    "a PIN never travels in a URI here, give it with a PIN file instead");
	if (rule->kind == A_REFUSE)
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' is not "
		    "supported here; select the token with token, serial, model, "
		    "manufacturer or slot-id", rule->name);
	if (*seen & rule->bit)
		return kb_error_set(KB_ERR_INVALID, "PKCS#11 URI attribute '%s' appears "
		    "twice; give it once", rule->name);
	*seen |= rule->bit;

	r = pct_decode(rule->name, eq + 1, n - nlen - 1, query, rule->kind == A_ID,
	    rule->max ? rule->max : 1, &v, &vlen);
	if (r != 0)
		return r;
	switch (rule->kind) {
	case A_ID:
		u->id = v;
		u->id_len = vlen;
		u->has_id = true;
		v = NULL;
		break;
	case A_SLOT: {
		unsigned long long sl;

		if (vlen == 0 || kb_parse_ull((char *)v, 0, (unsigned long)-1, &sl) != 0) {
			r = kb_error_set(KB_ERR_INVALID, "PKCS#11 URI slot-id must be a "
			    "decimal number");
			break;
		}
		u->has_slot_id = true;
		u->slot_id = (unsigned long)sl;
		break;
	}
	case A_TYPE: {
		size_t i;

		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp((char *)v, types[i]) == 0)
				break;
		if (i == sizeof(types) / sizeof(types[0])) {
			r = kb_error_set(KB_ERR_INVALID, "PKCS#11 URI type must be public, "
			    "private, cert, secret-key or data");
			break;
		}
	}
	/* FALLTHROUGH */
	case A_TEXT:
		*(char **)((char *)u + rule->off) = (char *)v;
		v = NULL;
		break;
	default:
		r = KB_ERR_INTERNAL;
		break;
	}
	free(v);
	return r;
}

int
kb_p11_uri_parse(const char *s, struct kb_p11_uri **out)
{
	struct kb_p11_uri *u = NULL;
	const char *p, *end, *q, *sep;
	unsigned seen = 0;
	size_t len;
	int r;

	if (s == NULL)
		return kb_error_set(KB_ERR_INVALID, "no PKCS#11 URI given");
	len = strnlen(s, URI_MAX + 1);
	if (len > URI_MAX)
		return kb_error_set(KB_ERR_LIMIT, "PKCS#11 URI is longer than %d bytes",
		    URI_MAX);
	if (len < 7 || strncasecmp(s, "pkcs11:", 7) != 0)
		return kb_error_set(KB_ERR_INVALID, "not a PKCS#11 URI: it must start "
		    "with 'pkcs11:'");
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return KB_ERR_ALLOC;

	p = s + 7;
	end = s + len;
	q = memchr(p, '?', (size_t)(end - p));
	/* Path: ';'-separated; may be empty. */
	if (q == NULL)
		q = end;
	while (p < q) {
		sep = memchr(p, ';', (size_t)(q - p));
		if (sep == NULL)
			sep = q;
		if ((r = one_attr(u, &seen, p, (size_t)(sep - p), false)) != 0)
			goto out;
		p = sep + 1;
		if (p == q && sep != q) {
			r = kb_error_set(KB_ERR_INVALID, "PKCS#11 URI path ends with ';'");
			goto out;
		}
	}
	if (q < end) {
		/* Query: '&'-separated. */
		p = q + 1;
		if (p == end) {
			r = kb_error_set(KB_ERR_INVALID, "PKCS#11 URI has an empty query "
			    "after '?'");
			goto out;
		}
		while (p <= end) {
			sep = memchr(p, '&', (size_t)(end - p));
			if (sep == NULL)
				sep = end;
			if ((r = one_attr(u, &seen, p, (size_t)(sep - p), true)) != 0)
				goto out;
			if (sep == end)
				break;
			p = sep + 1;
		}
	}
	*out = u;
	u = NULL;
	r = 0;
out:
	kb_p11_uri_free(u);
	return r;
}

int
kb_p11_uri_append_enc(struct kb_buf *b, const unsigned char *p, size_t n, bool all)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (!all && is_unreserved(p[i]))
			r = kb_buf_append(b, &p[i], 1);
		else
			r = kb_buf_appendf(b, "%%%02X", p[i]);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
add(struct kb_buf *b, bool *first, char sep, const char *name,
    const unsigned char *v, size_t n, bool all)
{
	int r;

	if ((r = kb_buf_appendf(b, "%s%s=", *first ? "" : (sep == ';' ? ";" : "&"),
	    name)) != 0)
		return r;
	*first = false;
	return kb_p11_uri_append_enc(b, v, n, all);
}

#define ADDS(b, first, sep, name, s) \
	((s) ? add(b, first, sep, name, (const unsigned char *)(s), strlen(s), false) : 0)

char *
kb_p11_uri_format(const struct kb_p11_uri *u)
{
	struct kb_buf b;
	bool first = true;
	char slot[24];
	int r = 0;

	if (u == NULL)
		return NULL;
	kb_buf_init(&b, 4 * URI_MAX);
	if ((r = kb_buf_append(&b, "pkcs11:", 7)) != 0)
		goto fail;
	/* p11tool's order: token parts, then object parts. */
	if ((r = ADDS(&b, &first, ';', "model", u->model)) != 0 ||
	    (r = ADDS(&b, &first, ';', "manufacturer", u->manufacturer)) != 0 ||
	    (r = ADDS(&b, &first, ';', "serial", u->serial)) != 0 ||
	    (r = ADDS(&b, &first, ';', "token", u->token)) != 0)
		goto fail;
	if (u->has_slot_id) {
		snprintf(slot, sizeof(slot), "%lu", u->slot_id);
		if ((r = add(&b, &first, ';', "slot-id", (unsigned char *)slot,
		    strlen(slot), false)) != 0)
			goto fail;
	}
	if (u->has_id && (r = add(&b, &first, ';', "id", u->id, u->id_len, true)) != 0)
		goto fail;
	if ((r = ADDS(&b, &first, ';', "object", u->object)) != 0 ||
	    (r = ADDS(&b, &first, ';', "type", u->type)) != 0)
		goto fail;
	if (u->pin_source || u->module_path) {
		first = true;
		if ((r = kb_buf_append(&b, "?", 1)) != 0 ||
		    (r = ADDS(&b, &first, '&', "pin-source", u->pin_source)) != 0 ||
		    (r = ADDS(&b, &first, '&', "module-path", u->module_path)) != 0)
			goto fail;
	}
	return kb_buf_steal(&b, NULL);
fail:
	kb_buf_free(&b);
	return NULL;
}

char *
kb_p11_token_info_uri(const struct kb_p11_token_info *ti)
{
	struct kb_p11_uri u;

	if (ti == NULL)
		return NULL;
	memset(&u, 0, sizeof(u));
	u.model = (char *)ti->model;
	u.manufacturer = (char *)ti->manufacturer;
	u.serial = (char *)ti->serial;
	u.token = (char *)ti->label;
	return kb_p11_uri_format(&u);
}
