/*
 * config.c: keybridged's configuration (docs/config.md).
 *
 *   [agent]                 socket, socket_mode, state_dir, log_level,
 *                           max_connections, request_timeout, threads,
 *                           https_listen, https_cert, https_key,
 *                           https_max_connections, https_timeout,
 *                           auth_authorization, auth_resource
 *   [token NAME]            module, uri | label, pin_file | pin_env |
 *                           pin_prompt, max_sessions, isolate,
 *                           call_timeout
 *   [vault NAME]            token, default, retention_days,
 *                           purge_protection, backup, readers, contributors,
 *                           owners, administrators
 *   [remote NAME]           url, one credential (token_file,
 *                           client_secret_file, cert_file + client_cert,
 *                           federated_token_file, managed_identity),
 *                           tenant_id, client_id, authority_host, ca_file,
 *                           connect_to, readers, contributors, owners,
 *                           administrators (docs/remote-vaults.md)
 *   [principal NAME]        token_sha256, expires (an HTTPS caller)
 *
 * Rules as tables (name, handler), so an unknown key is an error that
 * names file:line and a new key is one row.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent.h"

#define CFG_MAX_TOKENS 64
#define CFG_MAX_FILE ((size_t)1 << 20)
#define CFG_MAX_VAULTS 64
#define CFG_MAX_PRINCIPALS 256
#define CFG_MAX_BEARERS 256

const char *
agent_where(const struct agent_config *c, unsigned line, char *buf, size_t n)
{
	if (line > 0)
		snprintf(buf, n, "%s:%u", c->path, line);
	else
		snprintf(buf, n, "%s", c->path);
	return buf;
}

static int
cfg_err(const struct agent_config *c, unsigned line, const char *fmt,
    const char *a, const char *b) KB_PRINTF(3, 0);

/* One sentence "FILE:LINE: what" with up to two string arguments. */
static int
cfg_err(const struct agent_config *c, unsigned line, const char *fmt,
    const char *a, const char *b)
{
	char where[4200], what[1024];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(what, sizeof(what), fmt, a, b);
#pragma GCC diagnostic pop
	return kb_error_set(KB_ERR_CONFIG, "%s: %s",
	    agent_where(c, line, where, sizeof(where)), what);
}

static int
cfg_abs_path(const struct agent_config *c, const struct kb_ini_entry *e,
    char **out)
{
	if (e->value[0] != '/')
		return cfg_err(c, e->line, "%s must be an absolute path, not '%s'",
		    e->key, e->value);
	if (strlen(e->value) >= 4096)
		return cfg_err(c, e->line, "%s is too long", e->key, NULL);
	free(*out);
	if ((*out = kb_strdup(e->value)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

static int
cfg_uint(const struct agent_config *c, const struct kb_ini_entry *e,
    unsigned long long min, unsigned long long max, unsigned *out)
{
	unsigned long long v;
	char range[64];

	if (kb_parse_ull(e->value, min, max, &v) != 0) {
		snprintf(range, sizeof(range), "%llu to %llu", min, max);
		return cfg_err(c, e->line, "%s must be a number from %s", e->key,
		    range);
	}
	*out = (unsigned)v;
	return 0;
}

/* ------------------------------------------------------------- [agent] */

static int
agent_socket(struct agent_config *c, const struct kb_ini_entry *e)
{
	int r;

	if ((r = cfg_abs_path(c, e, &c->socket)) != 0)
		return r;
	/* sockaddr_un.sun_path holds 107 bytes and a NUL. */
	if (strlen(c->socket) >= 108)
		return cfg_err(c, e->line,
		    "socket path '%s' is longer than 107 bytes; choose a shorter one",
		    c->socket, NULL);
	c->socket_line = e->line;
	return 0;
}

static int
agent_socket_mode(struct agent_config *c, const struct kb_ini_entry *e)
{
	/*
	 * 0600 by default.  0660/0666 only let other users reach the
	 * peer-credential check, which still refuses them for now.
	 */
	if (strcmp(e->value, "0600") == 0)
		c->socket_mode = 0600;
	else if (strcmp(e->value, "0660") == 0)
		c->socket_mode = 0660;
	else if (strcmp(e->value, "0666") == 0)
		c->socket_mode = 0666;
	else
		return cfg_err(c, e->line,
		    "socket_mode must be 0600, 0660 or 0666, not '%s'", e->value,
		    NULL);
	return 0;
}

static int
agent_state_dir(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_abs_path(c, e, &c->state_dir);
}

static int
agent_log_level(struct agent_config *c, const struct kb_ini_entry *e)
{
	if (kb_log_level_parse(e->value, &c->log_level) != 0)
		return cfg_err(c, e->line,
		    "log_level must be error, warn, info or debug, not '%s'",
		    e->value, NULL);
	c->has_log_level = true;
	return 0;
}

static int
agent_max_connections(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 4096, &c->max_connections);
}

static int
agent_request_timeout(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 3600, &c->request_timeout);
}

static int
agent_threads(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 64, &c->threads);
}

static int
agent_purge_interval(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 7 * 86400, &c->purge_interval);
}

/*
 * "8443", "127.0.0.1:8443", "[::1]:8443" (port 0: any free port), into
 * c->https_addr; https_listen keeps the canonical text for messages.
 */
static int
agent_https_listen(struct agent_config *c, const struct kb_ini_entry *e)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->https_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->https_addr;
	unsigned long long port;
	const char *v = e->value, *colon;
	char host[64], buf[80];
	bool v6 = false;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':' || (size_t)(close - v) > 48)
			goto bad;
		colon = close + 1;
		snprintf(host, sizeof(host), "%.*s", (int)(close - v - 1), v + 1);
		v6 = true;
	} else if ((colon = strrchr(v, ':')) != NULL) {
		if ((size_t)(colon - v) > 15 || colon == v)
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - v), v);
	} else {
		colon = NULL;
		snprintf(host, sizeof(host), "127.0.0.1");
	}
	if (kb_parse_ull(colon != NULL ? colon + 1 : v, 0, 65535, &port) != 0)
		goto bad;
	memset(&c->https_addr, 0, sizeof(c->https_addr));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return cfg_err(c, e->line, "https_listen: '%s' is not an "
			    "IPv6 address", host, NULL);
		snprintf(buf, sizeof(buf), "[%s]:%llu", host, port);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return cfg_err(c, e->line, "https_listen: '%s' is not an "
			    "IPv4 address", host, NULL);
		snprintf(buf, sizeof(buf), "%s:%llu", host, port);
	}
	free(c->https_listen);
	if ((c->https_listen = kb_strdup(buf)) == NULL)
		return KB_ERR_ALLOC;
	c->https_line = e->line;
	return 0;
 bad:
	return cfg_err(c, e->line, "https_listen must be PORT, IPV4:PORT or "
	    "[IPV6]:PORT, not '%s'", v, NULL);
}

static int
agent_https_cert(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_abs_path(c, e, &c->https_cert);
}

static int
agent_https_key(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_abs_path(c, e, &c->https_key);
}

static int
agent_https_max_connections(struct agent_config *c,
    const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 4096, &c->https_max_connections);
}

static int
agent_https_timeout(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 3600, &c->https_timeout);
}

/* Challenge parameters go inside a quoted header value. */
static int
cfg_url_text(struct agent_config *c, const struct kb_ini_entry *e, char **out)
{
	size_t i, n = strlen(e->value);

	if (n == 0 || n > 512 || strncmp(e->value, "https://", 8) != 0)
		return cfg_err(c, e->line, "%s must be an https:// URL of at most "
		    "512 characters, not '%s'", e->key, e->value);
	for (i = 0; i < n; i++)
		if (e->value[i] <= 0x20 || e->value[i] >= 0x7f ||
		    e->value[i] == '"' || e->value[i] == '\\')
			return cfg_err(c, e->line, "%s must not contain spaces, "
			    "quotes or backslashes", e->key, NULL);
	free(*out);
	if ((*out = kb_strdup(e->value)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

static int
agent_auth_authorization(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_url_text(c, e, &c->auth_authorization);
}

static int
agent_auth_resource(struct agent_config *c, const struct kb_ini_entry *e)
{
	return cfg_url_text(c, e, &c->auth_resource);
}

static const struct {
	const char *key;
	int (*set)(struct agent_config *, const struct kb_ini_entry *);
} agent_keys[] = {
	{ "auth_authorization", agent_auth_authorization },
	{ "auth_resource", agent_auth_resource },
	{ "https_cert", agent_https_cert },
	{ "https_key", agent_https_key },
	{ "https_listen", agent_https_listen },
	{ "https_max_connections", agent_https_max_connections },
	{ "https_timeout", agent_https_timeout },
	{ "purge_interval", agent_purge_interval },
	{ "socket", agent_socket },
	{ "socket_mode", agent_socket_mode },
	{ "state_dir", agent_state_dir },
	{ "log_level", agent_log_level },
	{ "max_connections", agent_max_connections },
	{ "request_timeout", agent_request_timeout },
	{ "threads", agent_threads },
};

/* -------------------------------------------------------- [token NAME] */

static int
token_module(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	t->module_line = e->line;
	return cfg_abs_path(c, e, &t->module);
}

static int
label_to_uri(const char *label, struct kb_p11_uri **out)
{
	static const char hex[] = "0123456789ABCDEF";
	struct kb_buf b;
	size_t i;
	int r;

	kb_buf_init(&b, 256);
	if ((r = kb_buf_appendf(&b, "pkcs11:token=")) != 0)
		goto out;
	for (i = 0; label[i] != '\0' && r == 0; i++) {
		unsigned char ch = (unsigned char)label[i];
		char enc[3] = { '%', hex[ch >> 4], hex[ch & 15] };

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~')
			r = kb_buf_append(&b, &ch, 1);
		else
			r = kb_buf_append(&b, enc, sizeof(enc));
	}
	if (r == 0)
		r = kb_p11_uri_parse((const char *)b.data, out);
 out:
	kb_buf_free(&b);
	return r;
}

static int
token_select(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	struct kb_p11_uri *u = NULL;
	char sel[4200];
	int r;

	if (t->sel != NULL)
		return cfg_err(c, e->line,
		    "give either uri or label for token '%s', not both",
		    t->name, NULL);
	if (strcmp(e->key, "uri") == 0) {
		if ((r = kb_p11_uri_parse(e->value, &u)) != 0) {
			char why[900];
			snprintf(why, sizeof(why), "%s", kb_error_detail(r));
			return cfg_err(c, e->line, "bad uri: %s", why, NULL);
		}
		if (u->object != NULL || u->has_id || u->type != NULL) {
			kb_p11_uri_free(u);
			return cfg_err(c, e->line,
			    "uri for token '%s' must name a token, not an object "
			    "(drop object=, id= and type=)", t->name, NULL);
		}
		if (u->token == NULL && u->serial == NULL && u->model == NULL &&
		    u->manufacturer == NULL && !u->has_slot_id) {
			kb_p11_uri_free(u);
			return cfg_err(c, e->line,
			    "uri for token '%s' selects no token; add token= or serial=",
			    t->name, NULL);
		}
	} else {
		if (strlen(e->value) > 32)
			return cfg_err(c, e->line,
			    "label '%s' is longer than 32 bytes (PKCS#11 limit)",
			    e->value, NULL);
		/* Through the URI parser, so a label selects like token= does. */
		if ((r = label_to_uri(e->value, &u)) != 0)
			return r;
		if ((t->label = kb_strdup(e->value)) == NULL) {
			kb_p11_uri_free(u);
			return KB_ERR_ALLOC;
		}
	}
	snprintf(sel, sizeof(sel), "%s = %s", e->key, e->value);
	if ((t->selection = kb_strdup(sel)) == NULL) {
		kb_p11_uri_free(u);
		return KB_ERR_ALLOC;
	}
	t->sel = u;
	t->selection_line = e->line;
	return 0;
}

static int
token_pin(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	enum agent_pin_source src;
	int r;

	if (t->pin_source != 0)
		return cfg_err(c, e->line,
		    "give one of pin_file, pin_env or pin_prompt for token '%s'",
		    t->name, NULL);
	if (strcmp(e->key, "pin_file") == 0) {
		src = PIN_FILE;
		if ((r = cfg_abs_path(c, e, &t->pin_arg)) != 0)
			return r;
	} else if (strcmp(e->key, "pin_env") == 0) {
		size_t i;

		src = PIN_ENV;
		for (i = 0; e->value[i] != '\0'; i++)
			if (!(e->value[i] == '_' ||
			    (e->value[i] >= 'A' && e->value[i] <= 'Z') ||
			    (e->value[i] >= 'a' && e->value[i] <= 'z') ||
			    (i > 0 && e->value[i] >= '0' && e->value[i] <= '9')))
				return cfg_err(c, e->line,
				    "pin_env must be an environment variable name, not '%s'",
				    e->value, NULL);
		if ((t->pin_arg = kb_strdup(e->value)) == NULL)
			return KB_ERR_ALLOC;
	} else {
		src = PIN_PROMPT;
		if (strcmp(e->value, "yes") != 0)
			return cfg_err(c, e->line,
			    "pin_prompt takes 'yes' (leave it out otherwise), not '%s'",
			    e->value, NULL);
	}
	t->pin_source = src;
	t->pin_line = e->line;
	return 0;
}

static int
token_max_sessions(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 1024, &t->max_sessions);
}

static int cfg_bool(const struct agent_config *c, const struct kb_ini_entry *e,
    bool *out);

static int
token_isolate(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	return cfg_bool(c, e, &t->isolate);
}

static int
token_call_timeout(struct agent_config *c, struct agent_token_cfg *t,
    const struct kb_ini_entry *e)
{
	return cfg_uint(c, e, 1, 3600, &t->call_timeout);
}

static const struct {
	const char *key;
	int (*set)(struct agent_config *, struct agent_token_cfg *,
	    const struct kb_ini_entry *);
} token_keys[] = {
	{ "call_timeout", token_call_timeout },
	{ "isolate", token_isolate },
	{ "module", token_module },
	{ "uri", token_select },
	{ "label", token_select },
	{ "pin_file", token_pin },
	{ "pin_env", token_pin },
	{ "pin_prompt", token_pin },
	{ "max_sessions", token_max_sessions },
};

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
cfg_agent_section(struct agent_config *c, const struct kb_ini_section *s)
{
	size_t i, k;
	int r;

	if (s->name != NULL)
		return cfg_err(c, s->line, "[agent] takes no name", NULL, NULL);
	for (i = 0; i < s->n_entries; i++) {
		for (k = 0; k < N_ELEM(agent_keys); k++)
			if (strcmp(s->entries[i].key, agent_keys[k].key) == 0)
				break;
		if (k == N_ELEM(agent_keys))
			return cfg_err(c, s->entries[i].line,
			    "unknown key '%s' in [agent]", s->entries[i].key, NULL);
		if ((r = agent_keys[k].set(c, &s->entries[i])) != 0)
			return r;
	}
	return 0;
}

static int
cfg_token_section(struct agent_config *c, const struct kb_ini_section *s)
{
	struct agent_token_cfg *t, *nt;
	size_t i, k;
	int r;

	if (s->name == NULL)
		return cfg_err(c, s->line,
		    "[token] needs a name, as in [token main]", NULL, NULL);
	if (c->n_tokens >= CFG_MAX_TOKENS)
		return cfg_err(c, s->line, "too many [token] sections", NULL, NULL);
	nt = realloc(c->tokens, (c->n_tokens + 1) * sizeof(*nt));
	if (nt == NULL)
		return KB_ERR_ALLOC;
	c->tokens = nt;
	t = &nt[c->n_tokens++];
	memset(t, 0, sizeof(*t));
	t->line = s->line;
	if ((t->name = kb_strdup(s->name)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < s->n_entries; i++) {
		for (k = 0; k < N_ELEM(token_keys); k++)
			if (strcmp(s->entries[i].key, token_keys[k].key) == 0)
				break;
		if (k == N_ELEM(token_keys))
			return cfg_err(c, s->entries[i].line,
			    "unknown key '%s' in [token %s]", s->entries[i].key,
			    s->name);
		if ((r = token_keys[k].set(c, t, &s->entries[i])) != 0)
			return r;
	}
	if (t->sel == NULL)
		return cfg_err(c, s->line,
		    "[token %s] needs label = LABEL or uri = pkcs11:token=...",
		    s->name, NULL);
	if (t->pin_source == 0)
		return cfg_err(c, s->line,
		    "[token %s] needs a PIN source: pin_file, pin_env or pin_prompt",
		    s->name, NULL);
	if (t->module == NULL && (t->module = kb_strdup(KB_SOFTHSM_MODULE)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

/* -------------------------------------------------------- [vault NAME] */

const char *
agent_role_name(enum agent_role r)
{
	switch (r) {
	case ROLE_READER: return "Reader";
	case ROLE_CONTRIBUTOR: return "Contributor";
	case ROLE_OWNER: return "Owner";
	case ROLE_ADMINISTRATOR: return "Administrator";
	default: return "none";
	}
}

static int
cfg_bool(const struct agent_config *c, const struct kb_ini_entry *e, bool *out)
{
	if (strcmp(e->value, "true") == 0 || strcmp(e->value, "yes") == 0 ||
	    strcmp(e->value, "1") == 0)
		*out = true;
	else if (strcmp(e->value, "false") == 0 || strcmp(e->value, "no") == 0 ||
	    strcmp(e->value, "0") == 0)
		*out = false;
	else
		return cfg_err(c, e->line, "%s must be true or false, not '%s'",
		    e->key, e->value);
	return 0;
}

/* One role-list item: "alice", "1001", "@staff", "@100", "principal:ci". */
static int
cfg_principal(const struct agent_config *c, const struct kb_ini_entry *e,
    const char *item, struct agent_principal *p)
{
	unsigned long long v;
	char buf[4096];
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	const char *name = item;
	size_t i;

	p->bearer = false;
	if (strncmp(item, "principal:", 10) == 0) {
		for (i = 0; i < c->n_bearers; i++)
			if (strcmp(c->bearers[i].name, item + 10) == 0)
				break;
		if (i == c->n_bearers)
			return cfg_err(c, e->line, "%s: no [principal %s] section",
			    e->key, item + 10);
		p->bearer = true;
		p->group = false;
		p->id = (uint32_t)i;
		return 0;
	}
	p->group = item[0] == '@';
	if (p->group)
		name++;
	if (name[0] == '\0')
		return cfg_err(c, e->line, "empty entry in %s", e->key, NULL);
	if (kb_parse_ull(name, 0, 0xfffffffeULL, &v) == 0) {
		p->id = (uint32_t)v;
		return 0;
	}
	if (p->group) {
		if (getgrnam_r(name, &gr, buf, sizeof(buf), &grr) != 0 || grr == NULL)
			return cfg_err(c, e->line, "%s: no group named '%s'", e->key,
			    name);
		p->id = (uint32_t)grr->gr_gid;
	} else {
		if (getpwnam_r(name, &pw, buf, sizeof(buf), &pwr) != 0 || pwr == NULL)
			return cfg_err(c, e->line, "%s: no user named '%s'", e->key,
			    name);
		p->id = (uint32_t)pwr->pw_uid;
	}
	return 0;
}

static int
cfg_role_list_in(const struct agent_config *c, const char *what,
    struct agent_principal **list, size_t *n_list,
    const struct kb_ini_entry *e, enum agent_role role)
{
	struct agent_principal *np;
	char *copy, *item, *save = NULL, *end;
	int r = 0;

	if ((copy = kb_strdup(e->value)) == NULL)
		return KB_ERR_ALLOC;
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*item == '\0')
			continue;
		if (*n_list >= CFG_MAX_PRINCIPALS) {
			r = cfg_err(c, e->line, "too many entries in the role lists "
			    "of %s", what, NULL);
			break;
		}
		np = realloc(*list, (*n_list + 1) * sizeof(*np));
		if (np == NULL) {
			r = KB_ERR_ALLOC;
			break;
		}
		*list = np;
		np[*n_list].role = role;
		if ((r = cfg_principal(c, e, item, &np[*n_list])) != 0)
			break;
		(*n_list)++;
	}
	free(copy);
	return r;
}

static const struct {
	const char *key;
	enum agent_role role;
} role_lists[] = {
	{ "readers", ROLE_READER },
	{ "contributors", ROLE_CONTRIBUTOR },
	{ "owners", ROLE_OWNER },
	{ "administrators", ROLE_ADMINISTRATOR },
};

/* 1 if e is a role list (and parsed), 0 if not one, or an error. */
static int
cfg_role_entry(const struct agent_config *c, const char *what,
    struct agent_principal **list, size_t *n_list, const struct kb_ini_entry *e)
{
	size_t k;
	int r;

	for (k = 0; k < N_ELEM(role_lists); k++)
		if (strcmp(e->key, role_lists[k].key) == 0)
			break;
	if (k == N_ELEM(role_lists))
		return 0;
	if ((r = cfg_role_list_in(c, what, list, n_list, e,
	    role_lists[k].role)) != 0)
		return r;
	return 1;
}

static int
cfg_vault_section(struct agent_config *c, const struct kb_ini_section *s)
{
	struct agent_vault_cfg *v, *nv;
	const struct kb_ini_entry *e;
	char what[64];
	size_t i;
	int r;

	if (s->name == NULL)
		return cfg_err(c, s->line,
		    "[vault] needs a name, as in [vault main]", NULL, NULL);
	if (kv_check(KV_FIELD_VAULT_NAME, s->name) != 0)
		return cfg_err(c, s->line, "vault name '%s': %s", s->name,
		    kb_error_detail(KB_ERR_INVALID));
	for (i = 0; i < c->n_vaults; i++)
		if (strcasecmp(c->vaults[i].name, s->name) == 0)
			return cfg_err(c, s->line, "[vault %s] is declared twice",
			    s->name, NULL);
	if (c->n_vaults >= CFG_MAX_VAULTS)
		return cfg_err(c, s->line, "too many [vault] sections", NULL, NULL);
	nv = realloc(c->vaults, (c->n_vaults + 1) * sizeof(*nv));
	if (nv == NULL)
		return KB_ERR_ALLOC;
	c->vaults = nv;
	v = &nv[c->n_vaults++];
	memset(v, 0, sizeof(*v));
	v->line = s->line;
	v->retention_days = KV_RETENTION_DEFAULT;
	v->backup = true;
	if ((v->name = kb_strdup(s->name)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < s->n_entries; i++) {
		e = &s->entries[i];
		if (strcmp(e->key, "token") == 0) {
			free(v->token);
			if ((v->token = kb_strdup(e->value)) == NULL)
				return KB_ERR_ALLOC;
			continue;
		}
		if (strcmp(e->key, "default") == 0) {
			if ((r = cfg_bool(c, e, &v->is_default)) != 0)
				return r;
			continue;
		}
		if (strcmp(e->key, "purge_protection") == 0) {
			if ((r = cfg_bool(c, e, &v->purge_protection)) != 0)
				return r;
			continue;
		}
		if (strcmp(e->key, "backup") == 0) {
			if ((r = cfg_bool(c, e, &v->backup)) != 0)
				return r;
			continue;
		}
		if (strcmp(e->key, "retention_days") == 0) {
			if ((r = cfg_uint(c, e, KV_RETENTION_MIN, KV_RETENTION_MAX,
			    &v->retention_days)) != 0)
				return r;
			continue;
		}
		snprintf(what, sizeof(what), "[vault %s]", v->name);
		if ((r = cfg_role_entry(c, what, &v->principals, &v->n_principals,
		    e)) < 0)
			return r;
		if (r == 0)
			return cfg_err(c, e->line, "unknown key '%s' in [vault %s]",
			    e->key, s->name);
	}
	if (v->token == NULL)
		return cfg_err(c, s->line, "[vault %s] needs token = NAME", s->name,
		    NULL);
	return 0;
}

/* ------------------------------------------------------- [remote NAME] */

/*
 * A vault in Azure (or another keybridged) reached through kv-client
 * (docs/remote-vaults.md): url, one credential, roles.
 */
static const struct {
	const char *key;
	enum agent_cred_kind kind;
} cred_keys[] = {
	{ "token_file", AGENT_CRED_TOKEN_FILE },
	{ "client_secret_file", AGENT_CRED_CLIENT_SECRET },
	{ "cert_file", AGENT_CRED_CLIENT_CERT },
	{ "federated_token_file", AGENT_CRED_FEDERATED },
	{ "managed_identity", AGENT_CRED_MANAGED_IDENTITY },
};

const char *
agent_cred_name(enum agent_cred_kind k)
{
	switch (k) {
	case AGENT_CRED_TOKEN_FILE: return "token file";
	case AGENT_CRED_CLIENT_SECRET: return "client secret";
	case AGENT_CRED_CLIENT_CERT: return "client certificate";
	case AGENT_CRED_FEDERATED: return "workload identity";
	case AGENT_CRED_MANAGED_IDENTITY: return "managed identity";
	default: return "none";
	}
}

void
agent_remote_cfg_free(struct agent_remote_cfg *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->url);
	free(r->cred_file);
	free(r->client_cert);
	free(r->tenant_id);
	free(r->client_id);
	free(r->authority_host);
	free(r->managed_identity);
	free(r->ca_file);
	free(r->connect_to);
	free(r->principals);
	free(r);
}

static int
cfg_str(const struct agent_config *c, const struct kb_ini_entry *e,
    size_t max, char **out)
{
	size_t i;

	if (e->value[0] == '\0' || strlen(e->value) > max)
		return cfg_err(c, e->line, "%s must be 1 to %s characters",
		    e->key, max > 1000 ? "4096" : max > 200 ? "256" : "128");
	for (i = 0; e->value[i] != '\0'; i++)
		if ((unsigned char)e->value[i] <= 0x20 ||
		    (unsigned char)e->value[i] == 0x7f)
			return cfg_err(c, e->line, "%s must not hold spaces or "
			    "control characters", e->key, NULL);
	free(*out);
	if ((*out = kb_strdup(e->value)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

static int
cfg_remote_section(const struct agent_config *c, const struct kb_ini_section *s,
    struct agent_remote_cfg **out)
{
	struct agent_remote_cfg *v;
	const struct kb_ini_entry *e;
	char what[64];
	size_t i, k;
	int r;

	if (s->name == NULL)
		return cfg_err(c, s->line,
		    "[remote] needs a name, as in [remote prod]", NULL, NULL);
	if (kv_check(KV_FIELD_VAULT_NAME, s->name) != 0)
		return cfg_err(c, s->line, "vault name '%s': %s", s->name,
		    kb_error_detail(KB_ERR_INVALID));
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return KB_ERR_ALLOC;
	v->line = s->line;
	snprintf(what, sizeof(what), "[remote %s]", s->name);
	if ((v->name = kb_strdup(s->name)) == NULL) {
		r = KB_ERR_ALLOC;
		goto fail;
	}
	for (i = 0; i < s->n_entries; i++) {
		e = &s->entries[i];
		for (k = 0; k < N_ELEM(cred_keys); k++)
			if (strcmp(e->key, cred_keys[k].key) == 0)
				break;
		if (k < N_ELEM(cred_keys)) {
			if (v->cred != AGENT_CRED_NONE) {
				r = cfg_err(c, e->line, "%s: a remote vault has one "
				    "credential, and %s already names one", e->key, what);
				goto fail;
			}
			v->cred = cred_keys[k].kind;
			if (v->cred == AGENT_CRED_MANAGED_IDENTITY)
				r = cfg_str(c, e, 128, &v->managed_identity);
			else
				r = cfg_abs_path(c, e, &v->cred_file);
		} else if (strcmp(e->key, "url") == 0)
			r = cfg_str(c, e, 256, &v->url);
		else if (strcmp(e->key, "client_cert") == 0)
			r = cfg_str(c, e, 1024, &v->client_cert);
		else if (strcmp(e->key, "tenant_id") == 0)
			r = cfg_str(c, e, 128, &v->tenant_id);
		else if (strcmp(e->key, "client_id") == 0)
			r = cfg_str(c, e, 128, &v->client_id);
		else if (strcmp(e->key, "authority_host") == 0)
			r = cfg_str(c, e, 256, &v->authority_host);
		else if (strcmp(e->key, "ca_file") == 0)
			r = cfg_abs_path(c, e, &v->ca_file);
		else if (strcmp(e->key, "connect_to") == 0)
			r = cfg_str(c, e, 64, &v->connect_to);
		else if ((r = cfg_role_entry(c, what, &v->principals,
		    &v->n_principals, e)) == 0)
			r = cfg_err(c, e->line, "unknown key '%s' in [remote %s]",
			    e->key, s->name);
		if (r < 0)
			goto fail;
	}
	if (v->url == NULL) {
		r = cfg_err(c, s->line, "%s needs url = https://NAME.vault.azure.net",
		    what, NULL);
		goto fail;
	}
	if (strncasecmp(v->url, "https://", 8) != 0) {
		r = cfg_err(c, s->line, "%s: the url must start with https:// "
		    "(tokens never cross a network in clear), not '%s'", what,
		    v->url);
		goto fail;
	}
	if (v->cred == AGENT_CRED_NONE) {
		r = cfg_err(c, s->line, "%s needs a credential: token_file, "
		    "client_secret_file, cert_file (with client_cert), "
		    "federated_token_file or managed_identity", what, NULL);
		goto fail;
	}
	if ((v->cred == AGENT_CRED_CLIENT_CERT) != (v->client_cert != NULL)) {
		r = cfg_err(c, s->line, "%s: client_cert (the PKCS#11 URI of the "
		    "certificate's key) and cert_file go together", what, NULL);
		goto fail;
	}
	if ((v->cred == AGENT_CRED_CLIENT_SECRET ||
	    v->cred == AGENT_CRED_CLIENT_CERT || v->cred == AGENT_CRED_FEDERATED) &&
	    v->client_id == NULL) {
		r = cfg_err(c, s->line, "%s: a %s needs client_id (the application "
		    "id)", what, agent_cred_name(v->cred));
		goto fail;
	}
	*out = v;
	return 0;
 fail:
	agent_remote_cfg_free(v);
	return r;
}

/* Append one [remote] section, its name unused by any vault. */
static int
cfg_add_remote(struct agent_config *c, struct agent_remote_cfg *v)
{
	struct agent_remote_cfg **nr;
	size_t i;

	for (i = 0; i < c->n_vaults; i++)
		if (strcasecmp(c->vaults[i].name, v->name) == 0)
			return cfg_err(c, v->line, "[remote %s]: a [vault] of this "
			    "name exists", v->name, NULL);
	for (i = 0; i < c->n_remotes; i++)
		if (strcasecmp(c->remotes[i]->name, v->name) == 0)
			return cfg_err(c, v->line, "[remote %s] is declared twice",
			    v->name, NULL);
	if (c->n_remotes >= CFG_MAX_VAULTS)
		return cfg_err(c, v->line, "too many [remote] sections", NULL, NULL);
	if ((nr = realloc(c->remotes, (c->n_remotes + 1) * sizeof(*nr))) == NULL)
		return KB_ERR_ALLOC;
	c->remotes = nr;
	nr[c->n_remotes++] = v;
	return 0;
}

int
agent_config_parse_remote(const struct agent_config *c, const char *text,
    size_t len, struct agent_remote_cfg **out)
{
	struct kb_ini *ini = NULL;
	int r;

	if ((r = kb_ini_parse(c->path, text, len, &ini)) != 0)
		return r;
	if (ini->n_sections != 1 || strcmp(ini->sections[0].type, "remote") != 0)
		r = kb_error_set(KB_ERR_INVALID, "expected one [remote NAME] section");
	else
		r = cfg_remote_section(c, &ini->sections[0], out);
	kb_ini_free(ini);
	return r;
}

/* ---------------------------------------------------- [principal NAME] */

static int
cfg_principal_section(struct agent_config *c, const struct kb_ini_section *s)
{
	const struct kb_ini_entry *e;
	struct agent_bearer *b, *nb;
	unsigned char *raw = NULL;
	size_t i, rawlen = 0;
	bool have_hash = false;

	if (s->name == NULL || strlen(s->name) > AGENT_PRINCIPAL_MAX ||
	    s->name[strspn(s->name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")] != '\0')
		return cfg_err(c, s->line, "[principal] needs a name of 1-64 "
		    "letters, digits, '.', '_' or '-', as in [principal ci-bot]",
		    NULL, NULL);
	for (i = 0; i < c->n_bearers; i++)
		if (strcmp(c->bearers[i].name, s->name) == 0)
			return cfg_err(c, s->line, "[principal %s] is declared twice",
			    s->name, NULL);
	if (c->n_bearers >= CFG_MAX_BEARERS)
		return cfg_err(c, s->line, "too many [principal] sections", NULL,
		    NULL);
	if ((nb = realloc(c->bearers, (c->n_bearers + 1) * sizeof(*nb))) == NULL)
		return KB_ERR_ALLOC;
	c->bearers = nb;
	b = &nb[c->n_bearers++];
	memset(b, 0, sizeof(*b));
	b->line = s->line;
	if ((b->name = kb_strdup(s->name)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < s->n_entries; i++) {
		e = &s->entries[i];
		if (strcmp(e->key, "token_sha256") == 0) {
			if (strlen(e->value) != 64 ||
			    kb_hex_decode(e->value, &raw, &rawlen) != 0 ||
			    rawlen != 32) {
				free(raw);
				return cfg_err(c, e->line, "token_sha256 must be 64 "
				    "hex digits (sha256sum of the token file)", NULL,
				    NULL);
			}
			memcpy(b->token_sha256, raw, 32);
			free(raw);
			raw = NULL;
			have_hash = true;
		} else if (strcmp(e->key, "expires") == 0) {
			if (kb_time_parse(e->value, &b->expires) != 0 ||
			    b->expires <= 0)
				return cfg_err(c, e->line, "expires must be an RFC 3339 "
				    "time such as 2027-01-31T00:00:00Z, not '%s'",
				    e->value, NULL);
		} else {
			return cfg_err(c, e->line, "unknown key '%s' in [principal "
			    "%s]; expected token_sha256 or expires", e->key, s->name);
		}
	}
	if (!have_hash)
		return cfg_err(c, s->line, "[principal %s] needs token_sha256 = "
		    "the SHA-256 of its bearer token (the config never holds the "
		    "token itself)", s->name, NULL);
	return 0;
}

/* The HTTPS listener needs its certificate and key; defaults otherwise. */
static int
cfg_https_check(struct agent_config *c)
{
	if (c->https_listen == NULL) {
		if (c->https_cert != NULL || c->https_key != NULL)
			return cfg_err(c, 0, "https_cert and https_key need "
			    "https_listen in [agent]", NULL, NULL);
		return 0;
	}
	if (c->https_cert == NULL || c->https_key == NULL)
		return cfg_err(c, c->https_line, "https_listen needs https_cert "
		    "and https_key in [agent]", NULL, NULL);
	if (c->auth_authorization == NULL && (c->auth_authorization =
	    kb_strdup(AGENT_AUTH_AUTHORIZATION)) == NULL)
		return KB_ERR_ALLOC;
	if (c->auth_resource == NULL &&
	    (c->auth_resource = kb_strdup(AGENT_AUTH_RESOURCE)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

/* Every vault on a declared token, no token shared, one default. */
static int
cfg_vaults_check(struct agent_config *c)
{
	struct agent_vault_cfg *v;
	size_t i, j, n_default = 0;

	if (c->n_vaults == 0 && c->n_tokens == 1) {
		/* The implicit vault of a one-token config (docs/vaults.md). */
		if ((c->vaults = calloc(1, sizeof(*c->vaults))) == NULL)
			return KB_ERR_ALLOC;
		v = &c->vaults[0];
		c->n_vaults = 1;
		v->retention_days = KV_RETENTION_DEFAULT;
	v->backup = true;
		v->is_default = true;
		if ((v->name = kb_strdup("default")) == NULL ||
		    (v->token = kb_strdup(c->tokens[0].name)) == NULL)
			return KB_ERR_ALLOC;
		return 0;
	}
	for (i = 0; i < c->n_vaults; i++) {
		v = &c->vaults[i];
		for (j = 0; j < c->n_tokens; j++)
			if (strcmp(c->tokens[j].name, v->token) == 0)
				break;
		if (j == c->n_tokens)
			return cfg_err(c, v->line, "[vault %s] names token '%s', "
			    "which has no [token] section", v->name, v->token);
		v->token_index = j;
		for (j = 0; j < i; j++)
			if (c->vaults[j].token_index == v->token_index)
				return cfg_err(c, v->line, "[vault %s] uses the token "
				    "of another vault; two vaults cannot share a token",
				    v->name, NULL);
		if (v->is_default)
			n_default++;
	}
	if (n_default > 1)
		return cfg_err(c, 0, "more than one vault says default = true",
		    NULL, NULL);
	if (n_default == 0 && c->n_vaults == 1)
		c->vaults[0].is_default = true;
	return 0;
}

/*
 * The state directory when the config names none: systemd's
 * $STATE_DIRECTORY, /var/lib/keybridge for root, else
 * $XDG_STATE_HOME/keybridge or ~/.local/state/keybridge.
 */
static char *
default_state_dir(void)
{
	const char *e;
	char *out;
	size_t n;

	if ((e = secure_getenv("STATE_DIRECTORY")) != NULL && e[0] == '/' &&
	    strchr(e, ':') == NULL)
		return kb_strdup(e);
	if (geteuid() == 0)
		return kb_strdup("/var/lib/keybridge");
	if ((e = secure_getenv("XDG_STATE_HOME")) != NULL && e[0] == '/') {
		n = strlen(e) + sizeof("/keybridge");
		if ((out = malloc(n)) != NULL)
			snprintf(out, n, "%s/keybridge", e);
		return out;
	}
	if ((e = secure_getenv("HOME")) == NULL || e[0] != '/')
		e = "/tmp";
	n = strlen(e) + sizeof("/.local/state/keybridge");
	if ((out = malloc(n)) != NULL)
		snprintf(out, n, "%s/.local/state/keybridge", e);
	return out;
}

int
agent_config_load(const char *path, struct agent_config **out)
{
	struct agent_config *c = NULL;
	struct kb_ini *ini = NULL;
	char detail[1024], *text = NULL;
	size_t i, len = 0;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return KB_ERR_ALLOC;
	c->socket_mode = 0600;
	c->max_connections = 64;
	c->request_timeout = 30;
	c->threads = 4;
	c->purge_interval = 3600;
	c->https_max_connections = 64;
	c->https_timeout = 30;
	if ((c->path = kb_strdup(path)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* kb_file_read + kb_ini_parse rather than kb_ini_load: our own sentence. */
	if ((r = kb_file_read(path, CFG_MAX_FILE, &text, &len)) != 0) {
		if (r == KB_ERR_ALLOC)
			goto out;
		snprintf(detail, sizeof(detail), "%s", kb_error_detail(r));
		r = kb_error_set(KB_ERR_CONFIG,
		    "cannot read the config file: %s; give an existing file with --config",
		    detail);
		goto out;
	}
	if ((r = kb_ini_parse(path, text, len, &ini)) != 0)
		goto out;    /* the sentence names file:line */
	/* Principals first: the vaults' role lists name them. */
	for (i = 0; i < ini->n_sections; i++)
		if (strcmp(ini->sections[i].type, "principal") == 0 &&
		    (r = cfg_principal_section(c, &ini->sections[i])) != 0)
			goto out;
	for (i = 0; i < ini->n_sections; i++) {
		const struct kb_ini_section *s = &ini->sections[i];

		if (strcmp(s->type, "agent") == 0)
			r = cfg_agent_section(c, s);
		else if (strcmp(s->type, "token") == 0)
			r = cfg_token_section(c, s);
		else if (strcmp(s->type, "vault") == 0)
			r = cfg_vault_section(c, s);
		else if (strcmp(s->type, "principal") == 0 ||
		    strcmp(s->type, "remote") == 0)
			r = 0;
		else
			r = cfg_err(c, s->line, "unknown section [%s]; expected "
			    "[agent], [token NAME], [vault NAME], [remote NAME] or "
			    "[principal NAME]", s->type, NULL);
		if (r != 0)
			goto out;
	}
	/* Remote vaults after the vaults: their names must differ. */
	for (i = 0; i < ini->n_sections; i++) {
		struct agent_remote_cfg *rv = NULL;

		if (strcmp(ini->sections[i].type, "remote") != 0)
			continue;
		if ((r = cfg_remote_section(c, &ini->sections[i], &rv)) != 0)
			goto out;
		if ((r = cfg_add_remote(c, rv)) != 0) {
			agent_remote_cfg_free(rv);
			goto out;
		}
	}
	if ((r = cfg_https_check(c)) != 0)
		goto out;
	/* libmicrohttpd shares the connection limit among its threads. */
	if (c->threads > c->max_connections) {
		r = cfg_err(c, 0, "threads must not exceed max_connections in [agent]",
		    NULL, NULL);
		goto out;
	}
	if (c->n_tokens == 0) {
		r = cfg_err(c, 0, "no [token NAME] section; declare at least one token",
		    NULL, NULL);
		goto out;
	}
	if ((r = cfg_vaults_check(c)) != 0)
		goto out;
	if (c->socket == NULL && (c->socket = kb_default_socket()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (c->state_dir == NULL && (c->state_dir = default_state_dir()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
 out:
	free(text);
	kb_ini_free(ini);
	agent_config_free(c);
	return r;
}

void
agent_config_free(struct agent_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_tokens; i++) {
		struct agent_token_cfg *t = &c->tokens[i];

		free(t->name);
		free(t->module);
		free(t->selection);
		kb_p11_uri_free(t->sel);
		free(t->label);
		free(t->pin_arg);
	}
	free(c->tokens);
	for (i = 0; i < c->n_vaults; i++) {
		free(c->vaults[i].name);
		free(c->vaults[i].token);
		free(c->vaults[i].principals);
	}
	free(c->vaults);
	for (i = 0; i < c->n_remotes; i++)
		agent_remote_cfg_free(c->remotes[i]);
	free(c->remotes);
	for (i = 0; i < c->n_bearers; i++)
		free(c->bearers[i].name);
	free(c->bearers);
	free(c->https_listen);
	free(c->https_cert);
	free(c->https_key);
	free(c->auth_authorization);
	free(c->auth_resource);
	free(c->path);
	free(c->socket);
	free(c->state_dir);
	free(c);
}

const struct agent_token_cfg *
agent_config_token(const struct agent_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_tokens; i++)
		if (strcmp(c->tokens[i].name, name) == 0)
			return &c->tokens[i];
	return NULL;
}
