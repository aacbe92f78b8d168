/*
 * challenge.c: Key Vault's bearer challenge (NOTES.md 2.1), pure.
 *
 * WWW-Authenticate follows RFC 9110 11.6.1: a list of challenges, each an
 * auth-scheme then comma-separated auth-params (token = token or
 * quoted-string).  Key Vault sends
 *   Bearer authorization="https://login.microsoftonline.com/<tenant>",
 *          resource="https://vault.azure.net"
 * and some Azure services send authorization_uri and scope instead.
 * This parser does no I/O and no allocation beyond its result, so the
 * fuzzer (fuzz/fuzz_challenge.c) and the tests run it directly.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define CH_MAX_HEADER 8192
#define CH_MAX_VALUE 2048
#define CH_MAX_HOST 253
#define CH_MAX_TENANT 128

/* RFC 9110 5.6.2 tchar. */
static bool
is_tchar(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

struct params {
	char *authorization;
	char *authorization_uri;
	char *resource;
	char *scope;
};

static void
params_clear(struct params *p)
{
	free(p->authorization);
	free(p->authorization_uri);
	free(p->resource);
	free(p->scope);
	memset(p, 0, sizeof(*p));
}

/*
 * Read a token or quoted-string value at s[*i]; the unquoted value goes
 * to *out (malloc'd).  Control characters and NULs are refused.
 */
static int
read_value(const char *s, size_t n, size_t *i, char **out)
{
	char *v = NULL;
	size_t j = *i, o = 0;
	unsigned char c;

	if ((v = malloc(CH_MAX_VALUE + 1)) == NULL)
		return KB_ERR_ALLOC;
	if (j < n && s[j] == '"') {
		for (j++; ; j++) {
			if (j >= n)
				goto bad;              /* unterminated */
			c = (unsigned char)s[j];
			if (c == '"')
				break;
			if (c == '\\') {
				if (++j >= n)
					goto bad;
				c = (unsigned char)s[j];
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f || o >= CH_MAX_VALUE)
				goto bad;
			v[o++] = (char)c;
		}
		j++;                                   /* closing quote */
	} else {
		while (j < n && is_tchar((unsigned char)s[j])) {
			if (o >= CH_MAX_VALUE)
				goto bad;
			v[o++] = s[j++];
		}
		if (o == 0)
			goto bad;
	}
	v[o] = '\0';
	*out = v;
	*i = j;
	return 0;
 bad:
	free(v);
	return KB_ERR_PROTOCOL;
}

/*
 * Split "https://host[:port]/path..." into a lower-case host and the
 * first path segment.  Only https; no userinfo; host of letters,
 * digits, dots and hyphens.
 */
static int
split_url(const char *u, char host[CH_MAX_HOST + 1], char *seg, size_t segcap)
{
	size_t i = 0, h = 0, k = 0;
	const char *p;

	if (strncasecmp(u, "https://", 8) != 0)
		return KB_ERR_PROTOCOL;
	p = u + 8;
	while (p[i] != '\0' && p[i] != '/' && p[i] != ':' && p[i] != '?' &&
	    p[i] != '#') {
		if (!(isalnum((unsigned char)p[i]) || p[i] == '.' || p[i] == '-') ||
		    h >= CH_MAX_HOST)
			return KB_ERR_PROTOCOL;
		host[h++] = (char)tolower((unsigned char)p[i++]);
	}
	host[h] = '\0';
	if (h == 0 || host[0] == '.' || host[0] == '-' || host[h - 1] == '.')
		return KB_ERR_PROTOCOL;
	if (p[i] == ':') {
		for (i++, k = 0; isdigit((unsigned char)p[i]); i++, k++)
			;
		if (k == 0 || k > 5)
			return KB_ERR_PROTOCOL;
	}
	if (seg == NULL)
		return 0;
	seg[0] = '\0';
	if (p[i] != '/')
		return 0;
	for (i++, k = 0; p[i] != '\0' && p[i] != '/' && p[i] != '?' && p[i] != '#'; i++) {
		if (!(isalnum((unsigned char)p[i]) || p[i] == '.' || p[i] == '-' ||
		    p[i] == '_') || k + 1 >= segcap)
			return KB_ERR_PROTOCOL;
		seg[k++] = p[i];
	}
	seg[k] = '\0';
	return 0;
}

static int
set_param(struct params *p, const char *name, size_t nlen, char *value)
{
	char **slot = NULL;

#define NAME(x) (nlen == sizeof(x) - 1 && strncasecmp(name, x, nlen) == 0)
	if (NAME("authorization"))
		slot = &p->authorization;
	else if (NAME("authorization_uri"))
		slot = &p->authorization_uri;
	else if (NAME("resource"))
		slot = &p->resource;
	else if (NAME("scope"))
		slot = &p->scope;
#undef NAME
	if (slot == NULL) {
		free(value);          /* error=, supportspop=, realm=, ... */
		return 0;
	}
	if (*slot != NULL) {
		free(value);          /* a parameter twice: ambiguous */
		return KB_ERR_PROTOCOL;
	}
	*slot = value;
	return 0;
}

int
kb_kv_challenge_parse(const char *s, size_t n, struct kb_kv_challenge **out)
{
	struct params p;
	struct kb_kv_challenge *ch = NULL;
	char host[CH_MAX_HOST + 1], tenant[CH_MAX_TENANT + 1], *value = NULL;
	const char *auth, *name, *src;
	size_t i = 0, nlen, len;
	bool in_bearer = false, seen_bearer = false;
	int r = KB_ERR_PROTOCOL;

	memset(&p, 0, sizeof(p));
	if (s == NULL || n > CH_MAX_HEADER || memchr(s, '\0', n) != NULL)
		goto bad;
	for (;;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		if (i >= n)
			break;
		name = s + i;
		for (nlen = 0; i < n && is_tchar((unsigned char)s[i]); i++)
			nlen++;
		if (nlen == 0)
			goto bad;
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < n && s[i] == '=') {
			/* auth-param; '=' runs after a name are token68 padding */
			i++;
			while (i < n && s[i] == '=')
				i++;
			while (i < n && (s[i] == ' ' || s[i] == '\t'))
				i++;
			if (i >= n || s[i] == ',') {
				if (in_bearer)
					goto bad;    /* "name=" with no value */
				continue;
			}
			if ((r = read_value(s, n, &i, &value)) != 0)
				goto bad;
			if (in_bearer) {
				if ((r = set_param(&p, name, nlen, value)) != 0) {
					value = NULL;
					goto bad;
				}
			} else
				free(value);
			value = NULL;
			/* After a value: end, OWS then ',' only. */
			while (i < n && (s[i] == ' ' || s[i] == '\t'))
				i++;
			if (i < n && s[i] != ',')
				goto bad;
		} else {
			/* A new challenge's scheme (or a token68 we ignore). */
			if (in_bearer)
				in_bearer = false;  /* the Bearer challenge ended */
			if (!seen_bearer && nlen == 6 && strncasecmp(name, "Bearer", 6) == 0)
				in_bearer = seen_bearer = true;
		}
	}
	if (!seen_bearer)
		goto bad;
	auth = p.authorization ? p.authorization : p.authorization_uri;
	if (auth == NULL || (p.resource == NULL && p.scope == NULL))
		goto bad;
	if (split_url(auth, host, tenant, sizeof(tenant)) != 0)
		goto bad;
	/* scope may list several scopes; the first names the resource. */
	src = p.scope ? p.scope : p.resource;
	if (split_url(src, host, NULL, 0) != 0 || strchr(host, '.') == NULL)
		goto bad;
	if (p.scope != NULL && (strchr(p.scope, ' ') != NULL || strchr(p.scope, '\t')))
		goto bad;             /* one resource per token request (NOTES 2.2) */
	r = KB_ERR_ALLOC;
	if ((ch = calloc(1, sizeof(*ch))) == NULL ||
	    (ch->authorization = kb_strdup(auth)) == NULL ||
	    (ch->resource_host = kb_strdup(host)) == NULL ||
	    (tenant[0] != '\0' && (ch->tenant = kb_strdup(tenant)) == NULL))
		goto out;
	if (p.scope != NULL) {
		if ((ch->scope = kb_strdup(p.scope)) == NULL)
			goto out;
	} else {
		len = strlen(p.resource);
		while (len > 8 && p.resource[len - 1] == '/')
			len--;
		if ((ch->scope = malloc(len + sizeof("/.default"))) == NULL)
			goto out;
		memcpy(ch->scope, p.resource, len);
		memcpy(ch->scope + len, "/.default", sizeof("/.default"));
	}
	*out = ch;
	ch = NULL;
	r = 0;
	goto out;
 bad:
	r = kb_error_set(KB_ERR_PROTOCOL, "the server's WWW-Authenticate header is "
	    "not a Key Vault bearer challenge (Bearer authorization=\"...\", "
	    "resource=\"...\" or scope=\"...\")");
 out:
	free(value);
	params_clear(&p);
	kb_kv_challenge_free(ch);
	return r;
}

void
kb_kv_challenge_free(struct kb_kv_challenge *ch)
{
	if (ch == NULL)
		return;
	free(ch->authorization);
	free(ch->tenant);
	free(ch->scope);
	free(ch->resource_host);
	free(ch);
}

int
kb_kv_challenge_check_host(const struct kb_kv_challenge *ch, const char *vault_host)
{
	size_t hl, rl;

	if (ch == NULL || vault_host == NULL)
		return KB_ERR_INTERNAL;
	hl = strlen(vault_host);
	rl = strlen(ch->resource_host);
	/* The vault is a subdomain of the resource: a server elsewhere
	 * cannot ask for a token of Key Vault's audience (NOTES.md 2.1.4). */
	if (rl > 0 && hl > rl + 1 && vault_host[hl - rl - 1] == '.' &&
	    strcasecmp(vault_host + hl - rl, ch->resource_host) == 0)
		return 0;
	return kb_error_set(KB_ERR_DENIED, "%.253s asks for a token for %.253s, "
	    "which is not its domain; no token was sent (check the vault URL)",
	    vault_host, ch->resource_host);
}
