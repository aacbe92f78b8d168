/*
 * remote.c: remote vaults (docs/remote-vaults.md).  A [remote NAME]
 * section names a Key Vault or Managed HSM (or another keybridged) and a
 * credential; the agent serves it under /vaults/NAME/ by forwarding each
 * request through kv-client, with its own roles and audit in front and
 * the remote's identifiers rewritten to the agent's.
 *
 * `keybridge vault add` reaches agent_remote_add: the section is checked
 * by the config parser, the credential built, one request made, and only
 * then are the secret files and the section written (the config file
 * replaced atomically).  Remove takes the section out the same way.
 *
 * Remote vaults live in a list under a mutex, counted: a request holds
 * its vault until it is answered, so a remove never frees one in use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "kb_kvclient.h"
#include "store.h"

#define REMOTE_TEXT_MAX 16384
#define REMOTE_PEM_MAX (64 * 1024)

struct agent_remote {
	struct agent_remote_cfg *cfg;
	kb_kv_credential *cred;
	kb_kv_client *client;
	struct kb_kv_token_source src;
	char host[260];               /* from the url, lower case */
	char port[8];                 /* "443" when the url gives none */
	char base[310];               /* https://host[:port][/prefix], no '/' at end */
	char base443[310];            /* the same with the port, as nextLinks have it */
	unsigned refs;
	bool gone;
	struct agent_remote *next;
};

struct agent_remotes {
	pthread_mutex_t lock;         /* the list and refs */
	pthread_mutex_t edit;         /* add and remove, one at a time */
	struct agent_remote *head;
};

/* ------------------------------------------------------------ lifetime */

static void
remote_free(struct agent_remote *r)
{
	if (r == NULL)
		return;
	kb_kv_client_free(r->client);
	kb_kv_credential_free(r->cred);
	agent_remote_cfg_free(r->cfg);
	free(r);
}

/*
 * The url split once: host (lower case) and port (443 when absent), and
 * the two forms its ids come back in: base "https://host[:port][/prefix]"
 * (no ":443", no '/' at the end) and base443 with the port always given.
 */
static int
remote_bases(struct agent_remote *r)
{
	const char *u = r->cfg->url + 8, *path = u + strcspn(u, "/?#"), *colon;
	size_t hl, pl, i;

	colon = memchr(u[0] == '[' ? u + strcspn(u, "]") : u, ':',
	    (size_t)(path - (u[0] == '[' ? u + strcspn(u, "]") : u)));
	hl = (size_t)((colon != NULL ? colon : path) - u);
	pl = colon != NULL ? (size_t)(path - colon - 1) : 0;
	if (hl == 0 || hl >= sizeof(r->host) || (colon != NULL &&
	    (pl == 0 || pl >= sizeof(r->port))))
		return kb_error_set(KB_ERR_INVALID, "the url of remote vault %s has "
		    "no host, or a bad port", r->cfg->name);
	for (i = 0; i < hl; i++)
		r->host[i] = (char)((u[i] >= 'A' && u[i] <= 'Z') ? u[i] + 32 : u[i]);
	r->host[hl] = '\0';
	snprintf(r->port, sizeof(r->port), "%.*s", colon != NULL ? (int)pl : 3,
	    colon != NULL ? colon + 1 : "443");
	snprintf(r->base443, sizeof(r->base443), "https://%s:%s%s", r->host,
	    r->port, path);
	while (strlen(r->base443) > 8 && r->base443[strlen(r->base443) - 1] == '/')
		r->base443[strlen(r->base443) - 1] = '\0';
	if (strcmp(r->port, "443") == 0)
		snprintf(r->base, sizeof(r->base), "https://%s%s", r->host,
		    r->base443 + 8 + hl + 4);
	else
		snprintf(r->base, sizeof(r->base), "%s", r->base443);
	return 0;
}

/* ---------------------------------------- a certificate's key on a token */

/* The client assertion is signed on the token: PS256 over SHA-256. */
static int
hsm_sign(void *ctx, const unsigned char *m, size_t n, unsigned char **sig,
    size_t *sl)
{
	unsigned char md[32];

	if (EVP_Digest(m, n, md, NULL, EVP_sha256(), NULL) != 1)
		return kb_error_set(KB_ERR_CRYPTO, "cannot hash the client "
		    "assertion");
	return kb_p11_sign_digest(ctx, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, md,
	    sizeof(md), sig, sl);
}

static int
hsm_spki(void *ctx, unsigned char **spki, size_t *len)
{
	unsigned char *der = NULL;
	EVP_PKEY *p = NULL;
	char *pem = NULL;
	BIO *b = NULL;
	int n, r;

	if ((r = kb_p11_public_pem(ctx, &pem)) != 0)
		return r;
	if ((b = BIO_new_mem_buf(pem, -1)) != NULL)
		p = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	free(pem);
	if (p == NULL || (n = i2d_PUBKEY(p, &der)) <= 0) {
		EVP_PKEY_free(p);
		return kb_error_set(KB_ERR_CRYPTO, "cannot read the public key of "
		    "the certificate's key");
	}
	EVP_PKEY_free(p);
	if ((*spki = malloc((size_t)n)) == NULL) {
		OPENSSL_free(der);
		return KB_ERR_ALLOC;
	}
	memcpy(*spki, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static void
hsm_free(void *ctx)
{
	kb_p11_key_free(ctx);
}

/* The one private RSA key the URI names on one of the agent's tokens. */
static int
hsm_key(struct agent *a, const struct agent_remote_cfg *cfg, kb_p11_key **out)
{
	struct kb_p11_uri *u = NULL, *tu = NULL;
	kb_p11_key **keys = NULL, *found = NULL;
	size_t i, n = 0, hits = 0;
	int r;

	if ((r = kb_p11_uri_parse(cfg->client_cert, &u)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s: client_cert is "
		    "not a PKCS#11 URI: %s", cfg->name, kb_error_detail(r));
	if (u->object == NULL && !u->has_id) {
		kb_p11_uri_free(u);
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s: client_cert "
		    "must name the key (object= or id=)", cfg->name);
	}
	for (i = 0; i < a->n_tokens; i++) {
		struct agent_token *t = &a->tokens[i];

		if (t->token == NULL)
			continue;
		if (u->token != NULL) {
			if (t->uri == NULL || kb_p11_uri_parse(t->uri, &tu) != 0)
				continue;
			if (tu->token == NULL || strcmp(tu->token, u->token) != 0) {
				kb_p11_uri_free(tu);
				tu = NULL;
				continue;
			}
			kb_p11_uri_free(tu);
			tu = NULL;
		}
		if (kb_p11_find_keys(t->token, u, &keys, &n) != 0)
			continue;
		if (n == 1 && hits == 0) {
			found = keys[0];
			keys[0] = NULL;
		}
		hits += n;
		kb_p11_keys_free(keys, n);
		keys = NULL;
	}
	kb_p11_uri_free(u);
	if (hits != 1) {
		kb_p11_key_free(found);
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s: client_cert "
		    "names %s key on the agent's tokens; it must name exactly one "
		    "RSA key", cfg->name, hits == 0 ? "no" : "more than one");
	}
	*out = found;
	return 0;
}

static int
remote_credential(struct agent *a, const struct agent_remote_cfg *cfg,
    kb_kv_credential **out)
{
	struct kb_kv_client_secret_options so;
	struct kb_kv_client_cert_options co;
	struct kb_kv_workload_options wo;
	struct kb_kv_managed_identity_options mo;
	struct kb_kv_signer sg;
	struct kb_secret *secret = NULL;
	kb_p11_key *k = NULL;
	int r;

	switch (cfg->cred) {
	case AGENT_CRED_TOKEN_FILE:
		return kb_kv_credential_token_file(cfg->cred_file, out);
	case AGENT_CRED_CLIENT_SECRET:
		if ((r = kb_secret_read_file(cfg->cred_file, &secret)) != 0)
			return kb_error_set(KB_ERR_CONFIG, "remote vault %s: cannot "
			    "read the client secret: %s", cfg->name, kb_error_detail(r));
		memset(&so, 0, sizeof(so));
		so.tenant_id = cfg->tenant_id;
		so.client_id = cfg->client_id;
		so.client_secret = secret;
		so.authority_host = cfg->authority_host;
		so.ca_file = cfg->ca_file;
		r = kb_kv_credential_client_secret(&so, out);
		kb_secret_free(&secret);
		return r;
	case AGENT_CRED_CLIENT_CERT:
		if ((r = hsm_key(a, cfg, &k)) != 0)
			return r;
		memset(&sg, 0, sizeof(sg));
		sg.sign_ps256 = hsm_sign;
		sg.public_key_der = hsm_spki;
		sg.free_ctx = hsm_free;
		sg.ctx = k;
		memset(&co, 0, sizeof(co));
		co.tenant_id = cfg->tenant_id;
		co.client_id = cfg->client_id;
		co.cert_file = cfg->cred_file;
		co.signer = &sg;
		co.authority_host = cfg->authority_host;
		co.ca_file = cfg->ca_file;
		if ((r = kb_kv_credential_client_cert(&co, out)) != 0)
			kb_p11_key_free(k);    /* on failure the signer is still ours */
		return r;
	case AGENT_CRED_FEDERATED:
		memset(&wo, 0, sizeof(wo));
		wo.tenant_id = cfg->tenant_id;
		wo.client_id = cfg->client_id;
		wo.token_file = cfg->cred_file;
		wo.authority_host = cfg->authority_host;
		wo.ca_file = cfg->ca_file;
		return kb_kv_credential_workload(&wo, out);
	case AGENT_CRED_MANAGED_IDENTITY:
		memset(&mo, 0, sizeof(mo));
		mo.kind = KB_KV_MI_AUTO;
		mo.client_id = strcmp(cfg->managed_identity, "system") == 0 ? NULL :
		    cfg->managed_identity;
		mo.ca_file = cfg->ca_file;
		return kb_kv_credential_managed_identity(&mo, out);
	default:
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s has no "
		    "credential", cfg->name);
	}
}

/* "HOST:PORT:ADDRESS" for curl from the url and connect_to. */
static int
remote_resolve(const struct agent_remote *r, char *buf, size_t n)
{
	if (r->host[0] == '[')
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s: connect_to "
		    "needs a url with a host name", r->cfg->name);
	if ((size_t)snprintf(buf, n, "%s:%s:%s", r->host, r->port,
	    r->cfg->connect_to) >= n)
		return kb_error_set(KB_ERR_CONFIG, "remote vault %s: connect_to is "
		    "too long", r->cfg->name);
	return 0;
}

/* A remote vault from its config (taken over, also on failure). */
static int
remote_new(struct agent *a, struct agent_remote_cfg *cfg,
    struct agent_remote **out)
{
	struct kb_kv_options o;
	struct agent_remote *r;
	char resolve[400];
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		agent_remote_cfg_free(cfg);
		return KB_ERR_ALLOC;
	}
	r->cfg = cfg;
	if ((rc = remote_bases(r)) != 0 ||
	    (rc = remote_credential(a, cfg, &r->cred)) != 0)
		goto fail;
	kb_kv_credential_source(r->cred, &r->src);
	memset(&o, 0, sizeof(o));
	o.ca_file = cfg->ca_file;
	o.tokens = &r->src;
	if (cfg->connect_to != NULL) {
		if ((rc = remote_resolve(r, resolve, sizeof(resolve))) != 0)
			goto fail;
		o.resolve = resolve;
	}
	if ((rc = kb_kv_client_new_url(cfg->url, &o, &r->client)) != 0)
		goto fail;
	*out = r;
	return 0;
 fail:
	remote_free(r);
	return rc;
}

int
agent_remotes_open(struct agent *a)
{
	struct agent_remotes *rs;
	struct agent_remote *r, **tail;
	size_t i;
	int rc;

	if ((rs = calloc(1, sizeof(*rs))) == NULL)
		return KB_ERR_ALLOC;
	pthread_mutex_init(&rs->lock, NULL);
	pthread_mutex_init(&rs->edit, NULL);
	a->remotes = rs;
	tail = &rs->head;
	for (i = 0; i < a->cfg->n_remotes; i++) {
		struct agent_remote_cfg *cfg = a->cfg->remotes[i];

		a->cfg->remotes[i] = NULL;
		if ((rc = remote_new(a, cfg, &r)) != 0) {
			char where[4200];

			/* remote_new freed cfg; the sentence names the vault. */
			return kb_error_set(KB_ERR_CONFIG, "%s: %s",
			    agent_where(a->cfg, 0, where, sizeof(where)),
			    kb_error_detail(rc));
		}
		*tail = r;
		tail = &r->next;
		kb_info("remote vault %s: %s (%s)", r->cfg->name, r->base,
		    agent_cred_name(r->cfg->cred));
	}
	a->cfg->n_remotes = 0;
	return 0;
}

void
agent_remotes_close(struct agent *a)
{
	struct agent_remotes *rs = a->remotes;
	struct agent_remote *r, *next;

	if (rs == NULL)
		return;
	for (r = rs->head; r != NULL; r = next) {
		next = r->next;
		remote_free(r);
	}
	pthread_mutex_destroy(&rs->lock);
	pthread_mutex_destroy(&rs->edit);
	free(rs);
	a->remotes = NULL;
}

struct agent_remote *
agent_remote_get(struct agent *a, const char *name)
{
	struct agent_remotes *rs = a->remotes;
	struct agent_remote *r;

	if (rs == NULL || name == NULL)
		return NULL;
	pthread_mutex_lock(&rs->lock);
	for (r = rs->head; r != NULL; r = r->next)
		if (strcasecmp(r->cfg->name, name) == 0) {
			r->refs++;
			break;
		}
	pthread_mutex_unlock(&rs->lock);
	return r;
}

void
agent_remote_put(struct agent *a, struct agent_remote *r)
{
	bool free_it;

	if (r == NULL)
		return;
	pthread_mutex_lock(&a->remotes->lock);
	free_it = --r->refs == 0 && r->gone;
	pthread_mutex_unlock(&a->remotes->lock);
	if (free_it)
		remote_free(r);
}

const struct agent_remote_cfg *
agent_remote_config(const struct agent_remote *r)
{
	return r->cfg;
}

enum agent_role
agent_remotes_max_role(const struct agent *a, const struct agent_peer *p)
{
	struct agent_remotes *rs = a->remotes;
	enum agent_role best = ROLE_NONE, x;
	struct agent_remote *r;

	if (rs == NULL)
		return ROLE_NONE;
	pthread_mutex_lock(&rs->lock);
	for (r = rs->head; r != NULL; r = r->next)
		if ((x = agent_access_role_in(a, r->cfg->principals,
		    r->cfg->n_principals, p)) > best)
			best = x;
	pthread_mutex_unlock(&rs->lock);
	return best;
}

/* ---------------------------------------------------------- forwarding */

/* Strings that start with the remote's base get the agent's instead. */
static int
rewrite_ids(cJSON *j, const struct agent_remote *r, const char *local)
{
	const char *bases[2] = { r->base443, r->base };
	cJSON *it;
	size_t i, bl;
	char *s;

	if (cJSON_IsString(j) && j->valuestring != NULL) {
		for (i = 0; i < 2; i++) {
			bl = strlen(bases[i]);
			if (strncasecmp(j->valuestring, bases[i], bl) != 0 ||
			    (j->valuestring[bl] != '/' && j->valuestring[bl] != '?' &&
			    j->valuestring[bl] != '\0'))
				continue;
			if ((s = malloc(strlen(local) + strlen(j->valuestring + bl) +
			    1)) == NULL)
				return KB_ERR_ALLOC;
			strcpy(s, local);
			strcat(s, j->valuestring + bl);
			free(j->valuestring);
			j->valuestring = s;
			break;
		}
		return 0;
	}
	cJSON_ArrayForEach(it, j)
		if (rewrite_ids(it, r, local) != 0)
			return KB_ERR_ALLOC;
	return 0;
}

int
agent_remote_forward(struct agent_remote *r, const char *method,
    const char *path, const cJSON *body, enum agent_remote_make make,
    const char *name, const char *local_base, unsigned *status, cJSON **out)
{
	struct kb_kv_response *resp = NULL;
	int rc;

	/* A new version is never asked for twice (kv-client reads the
	 * versions around an ambiguous failure); its errors are the
	 * remote's answer mapped, or no answer. */
	switch (make) {
	case REMOTE_CREATE:
		rc = kb_kv_create_key(r->client, name, body, 0, &resp);
		break;
	case REMOTE_IMPORT:
		rc = kb_kv_import_key(r->client, name, body, 0, &resp);
		break;
	case REMOTE_ROTATE:
		rc = kb_kv_rotate_key(r->client, name, 0, &resp);
		break;
	default:
		rc = kb_kv_request_flags(r->client, method, path, body,
		    KB_KV_RAW_PATH | (make == REMOTE_ONCE ? KB_KV_NOT_IDEMPOTENT :
		    0), &resp);
		break;
	}
	if (rc != 0)
		return rc;
	if (resp->status < 100 || resp->status > 599) {
		kb_kv_response_free(resp);
		return kb_error_set(KB_ERR_PROTOCOL, "remote vault %s answered "
		    "with a status that is not HTTP", r->cfg->name);
	}
	if (resp->body != NULL &&
	    (rc = rewrite_ids(resp->body, r, local_base)) != 0) {
		kb_kv_response_free(resp);
		return rc;
	}
	*status = (unsigned)resp->status;
	*out = resp->body;
	resp->body = NULL;
	kb_kv_response_free(resp);
	return 0;
}

/* ----------------------------------------------------------- the views */

int
agent_remote_json(const struct agent_remote *r, cJSON *it)
{
	const struct agent_remote_cfg *c = r->cfg;

	if (cJSON_AddStringToObject(it, "kind", "remote") == NULL ||
	    cJSON_AddStringToObject(it, "url", r->base) == NULL ||
	    cJSON_AddStringToObject(it, "credential",
	    agent_cred_name(c->cred)) == NULL ||
	    (c->tenant_id != NULL &&
	    cJSON_AddStringToObject(it, "tenant_id", c->tenant_id) == NULL) ||
	    (c->client_id != NULL &&
	    cJSON_AddStringToObject(it, "client_id", c->client_id) == NULL) ||
	    (c->client_cert != NULL &&
	    cJSON_AddStringToObject(it, "client_cert", c->client_cert) == NULL) ||
	    (c->managed_identity != NULL &&
	    cJSON_AddStringToObject(it, "managed_identity",
	    c->managed_identity) == NULL) ||
	    (c->ca_file != NULL &&
	    cJSON_AddStringToObject(it, "ca_file", c->ca_file) == NULL) ||
	    (c->connect_to != NULL &&
	    cJSON_AddStringToObject(it, "connect_to", c->connect_to) == NULL))
		return KB_ERR_ALLOC;
	return 0;
}

int
agent_remotes_each(struct agent *a,
    int (*fn)(void *arg, struct agent_remote *r), void *arg)
{
	struct agent_remotes *rs = a->remotes;
	struct agent_remote *r;
	int rc = 0;

	if (rs == NULL)
		return 0;
	pthread_mutex_lock(&rs->lock);
	for (r = rs->head; r != NULL && rc == 0; r = r->next)
		rc = fn(arg, r);
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

/* ------------------------------------------------------ add and remove */

/* A value for a config line: no newline, no control character. */
static int
line_value(const char *what, const char *v)
{
	size_t i;

	if (v == NULL || v[0] == '\0' || strlen(v) > 1024)
		return kb_error_set(KB_ERR_INVALID, "%s must be 1 to 1024 "
		    "characters", what);
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return kb_error_set(KB_ERR_INVALID, "%s must not hold "
			    "control characters or line breaks", what);
	return 0;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Append "key = value\n" when value is set, after checking it. */
static int
put_line(struct kb_buf *b, const char *key, const char *value)
{
	int r;

	if (value == NULL)
		return 0;
	if ((r = line_value(key, value)) != 0)
		return r;
	return kb_buf_appendf(b, "%s = %s\n", key, value);
}

static int
remote_dir(struct agent *a, char *buf, size_t n)
{
	if ((size_t)snprintf(buf, n, "%s/remote", a->cfg->state_dir) >= n)
		return kb_error_set(KB_ERR_CONFIG, "the state directory's path is "
		    "too long");
	return kb_mkdir_p(buf, 0700);
}

/* A file for the vault in the agent's state directory, mode 0600. */
static int
write_private(struct agent *a, const char *vault, const char *suffix,
    const void *p, size_t n, char *path, size_t pn)
{
	char dir[4200];
	int r;

	if ((r = remote_dir(a, dir, sizeof(dir))) != 0)
		return r;
	if ((size_t)snprintf(path, pn, "%s/%s.%s", dir, vault, suffix) >= pn)
		return kb_error_set(KB_ERR_CONFIG, "the state directory's path is "
		    "too long");
	return kb_file_write_atomic(path, p, n, 0600);
}

static void
unlink_private(struct agent *a, const char *vault)
{
	static const char *const sfx[] = { "secret", "cert.pem", "ca.pem" };
	char path[4400];
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s/remote/%s.%s", a->cfg->state_dir,
		    vault, sfx[i]);
		(void)unlink(path);
	}
}

/* A PEM text from the request (a certificate or CAs), checked lightly. */
static int
pem_text(const char *what, const char *s)
{
	if (s == NULL || strlen(s) > REMOTE_PEM_MAX ||
	    strstr(s, "-----BEGIN CERTIFICATE-----") == NULL)
		return kb_error_set(KB_ERR_INVALID, "%s must be PEM certificates "
		    "(at most 64 KiB)", what);
	if (strstr(s, "PRIVATE KEY") != NULL)
		return kb_error_set(KB_ERR_INVALID, "%s holds a private key; give "
		    "the certificate alone (the key stays on the token)", what);
	return 0;
}

/*
 * The [remote NAME] text for a request body (docs/api.md "Remote
 * vaults"), writing the secret and certificate files it names.
 */
static int
section_text(struct agent *a, const char *name, const cJSON *spec,
    struct kb_buf *b)
{
	static const char *const roles[] = {
		"readers", "contributors", "owners", "administrators"
	};
	const cJSON *cred = cJSON_GetObjectItemCaseSensitive(spec, "credential");
	const cJSON *rl = cJSON_GetObjectItemCaseSensitive(spec, "roles");
	const char *type, *s;
	char path[4400];
	size_t i;
	int r;

	if (!cJSON_IsObject(cred) || (type = jstr(cred, "type")) == NULL)
		return kb_error_set(KB_ERR_INVALID, "the request needs a "
		    "credential object with a type");
	if ((r = kb_buf_appendf(b, "[remote %s]\n", name)) != 0 ||
	    (r = put_line(b, "url", jstr(spec, "url"))) != 0 ||
	    (r = put_line(b, "tenant_id", jstr(cred, "tenant_id"))) != 0 ||
	    (r = put_line(b, "client_id", jstr(cred, "client_id"))) != 0 ||
	    (r = put_line(b, "authority_host", jstr(cred,
	    "authority_host"))) != 0 ||
	    (r = put_line(b, "connect_to", jstr(spec, "connect_to"))) != 0)
		return r;
	if (strcmp(type, "client_secret") == 0) {
		struct kb_secret *sec = NULL;

		s = jstr(cred, "secret");
		if (s == NULL || s[0] == '\0' || strlen(s) > 255 ||
		    strpbrk(s, "\r\n") != NULL)
			return kb_error_set(KB_ERR_INVALID, "a client secret is 1 "
			    "to 255 characters on one line");
		if ((r = kb_secret_from(s, strlen(s), &sec)) != 0)
			return r;
		r = write_private(a, name, "secret", sec->data, sec->len, path,
		    sizeof(path));
		kb_secret_free(&sec);
		if (r != 0 || (r = put_line(b, "client_secret_file", path)) != 0)
			return r;
	} else if (strcmp(type, "token_file") == 0 ||
	    strcmp(type, "federated_token_file") == 0) {
		s = jstr(cred, "file");
		if (s == NULL || s[0] != '/')
			return kb_error_set(KB_ERR_INVALID, "a %s credential needs "
			    "the file's absolute path", type);
		if ((r = put_line(b, type, s)) != 0)
			return r;
	} else if (strcmp(type, "client_certificate") == 0) {
		s = jstr(cred, "certificate");
		if ((r = pem_text("the certificate", s)) != 0 ||
		    (r = write_private(a, name, "cert.pem", s, strlen(s), path,
		    sizeof(path))) != 0 ||
		    (r = put_line(b, "client_cert", jstr(cred,
		    "client_cert"))) != 0 ||
		    (r = put_line(b, "cert_file", path)) != 0)
			return r;
	} else if (strcmp(type, "managed_identity") == 0) {
		s = jstr(cred, "client_id");
		if ((r = put_line(b, "managed_identity", s != NULL ? s :
		    "system")) != 0)
			return r;
	} else {
		return kb_error_set(KB_ERR_INVALID, "unknown credential type; "
		    "expected client_secret, client_certificate, "
		    "federated_token_file, managed_identity or token_file");
	}
	if ((s = jstr(spec, "ca")) != NULL) {
		if ((r = pem_text("the CA file", s)) != 0 ||
		    (r = write_private(a, name, "ca.pem", s, strlen(s), path,
		    sizeof(path))) != 0 ||
		    (r = put_line(b, "ca_file", path)) != 0)
			return r;
	}
	if (cJSON_IsObject(rl))
		for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
			if ((r = put_line(b, roles[i], jstr(rl, roles[i]))) != 0)
				return r;
	return 0;
}

/* The config file's text, for an edit. */
static int
config_read(struct agent *a, char **text, size_t *len, mode_t *mode)
{
	struct stat st;
	int r;

	if (stat(a->cfg->path, &st) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the config file "
		    "%s: %s", a->cfg->path, strerror(errno));
	*mode = st.st_mode & 07777;
	if ((r = kb_file_read(a->cfg->path, (size_t)1 << 20, text, len)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the config file: %s",
		    kb_error_detail(r));
	return 0;
}

static int
config_write(struct agent *a, const char *text, size_t len, mode_t mode)
{
	int r;

	if ((r = kb_file_write_atomic(a->cfg->path, text, len, mode)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot write the config file "
		    "(%s); the agent needs to write its config for vault add and "
		    "remove, or add the [remote] section by hand",
		    kb_error_detail(r));
	return 0;
}

static bool
name_taken(struct agent *a, const char *name)
{
	struct agent_remote *r;

	if (agent_vault_find(a, name) != NULL)
		return true;
	if ((r = agent_remote_get(a, name)) != NULL) {
		agent_remote_put(a, r);
		return true;
	}
	return false;
}

int
agent_remote_add(struct agent *a, const char *name, const cJSON *spec,
    const struct kb_store_actor *who, bool *upstream)
{
	struct agent_remotes *rs = a->remotes;
	struct agent_remote_cfg *cfg = NULL;
	struct agent_remote *r = NULL, **tail;
	struct kb_kv_response *resp = NULL;
	struct kb_buf sec, all;
	char *text = NULL, ts[40];
	const cJSON *chk;
	size_t len = 0;
	mode_t mode = 0600;
	bool wrote = false;
	int rc;

	*upstream = false;
	kb_buf_init(&sec, REMOTE_TEXT_MAX);
	kb_buf_init(&all, ((size_t)1 << 20) + REMOTE_TEXT_MAX);
	pthread_mutex_lock(&rs->edit);
	if (kv_check(KV_FIELD_VAULT_NAME, name) != 0) {
		rc = KB_ERR_INVALID;
		goto out;
	}
	if (name_taken(a, name)) {
		rc = kb_error_set(KB_ERR_CONFLICT, "the agent already has a vault "
		    "named %s", name);
		goto out;
	}
	wrote = true;
	if ((rc = section_text(a, name, spec, &sec)) != 0)
		goto out;
	if ((rc = agent_config_parse_remote(a->cfg, (const char *)sec.data,
	    sec.len, &cfg)) != 0)
		goto out;
	if ((rc = remote_new(a, cfg, &r)) != 0)
		goto out;
	/* One request, unless told not to: the credential works, the vault answers. */
	chk = cJSON_GetObjectItemCaseSensitive(spec, "check");
	if (!cJSON_IsFalse(chk)) {
		if ((rc = kb_kv_request(r->client, "GET", "/keys?maxresults=1", NULL,
		    &resp)) != 0 || (rc = kb_kv_response_error(resp)) != 0) {
			char why[700];

			snprintf(why, sizeof(why), "%s", kb_error_detail(rc));
			rc = kb_error_set(rc, "vault %s was not added: listing its "
			    "keys failed: %s", name, why);
			*upstream = true;
			goto out;
		}
	}
	if ((rc = config_read(a, &text, &len, &mode)) != 0)
		goto out;
	kb_time_format(kb_now_unix(), ts, sizeof(ts));
	if ((rc = kb_buf_append(&all, text, len)) != 0 ||
	    (len > 0 && text[len - 1] != '\n' &&
	    (rc = kb_buf_append(&all, "\n", 1)) != 0) ||
	    (rc = kb_buf_appendf(&all, "\n# added by keybridge vault add, %s\n",
	    ts)) != 0 ||
	    (rc = kb_buf_append(&all, sec.data, sec.len)) != 0)
		goto out;
	if ((rc = config_write(a, (const char *)all.data, all.len, mode)) != 0)
		goto out;
	wrote = false;
	pthread_mutex_lock(&rs->lock);
	for (tail = &rs->head; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = r;
	pthread_mutex_unlock(&rs->lock);
	kb_info("remote vault %s added: %s (%s)", name, r->base,
	    agent_cred_name(r->cfg->cred));
	r = NULL;
	rc = 0;
 out:
	{
		int ar = kb_store_audit_append(a->store, who, name, "vault-add", NULL,
		    NULL, rc == 0 ? "ok" : "failed", kb_now_unix());

		if (ar != 0)
			kb_warn("cannot write an audit record: %s",
			    kb_error_detail(ar));
	}
	if (wrote)
		unlink_private(a, name);
	pthread_mutex_unlock(&rs->edit);
	kb_kv_response_free(resp);
	remote_free(r);
	kb_buf_free(&sec);
	kb_buf_free(&all);
	free(text);
	return rc;
}

/* [start, end) lines of section [remote NAME] in text, with its "added" comment. */
static int
section_lines(struct agent *a, const char *text, size_t len, const char *name,
    unsigned *start, unsigned *end)
{
	struct kb_ini *ini = NULL;
	size_t i;
	int r;

	if ((r = kb_ini_parse(a->cfg->path, text, len, &ini)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the config file no longer "
		    "parses (%s); fix it by hand", kb_error_detail(r));
	*start = *end = 0;
	for (i = 0; i < ini->n_sections; i++) {
		const struct kb_ini_section *s = &ini->sections[i];

		if (*start != 0 && *end == 0 && s->line > *start)
			*end = s->line;
		if (*start == 0 && strcmp(s->type, "remote") == 0 &&
		    s->name != NULL && strcasecmp(s->name, name) == 0)
			*start = s->line;
	}
	kb_ini_free(ini);
	if (*start == 0)
		return kb_error_set(KB_ERR_CONFIG, "the config file has no [remote "
		    "%s] section any more; it was edited by hand", name);
	return 0;
}

/* Offset of the start of line n (1-based) in text, or len. */
static size_t
line_off(const char *text, size_t len, unsigned n)
{
	size_t off = 0;
	unsigned l = 1;

	while (l < n && off < len) {
		if (text[off++] == '\n')
			l++;
	}
	return off;
}

int
agent_remote_remove(struct agent *a, const char *name,
    const struct kb_store_actor *who)
{
	struct agent_remotes *rs = a->remotes;
	struct agent_remote *r = NULL, **pp;
	struct kb_buf out;
	char *text = NULL;
	size_t len = 0, s0, s1, p;
	unsigned start = 0, end = 0;
	mode_t mode;
	bool free_it = false;
	int rc;

	kb_buf_init(&out, (size_t)1 << 20);
	pthread_mutex_lock(&rs->edit);
	if ((r = agent_remote_get(a, name)) == NULL) {
		rc = kb_error_set(agent_vault_find(a, name) != NULL ?
		    KB_ERR_CONFLICT : KB_ERR_NOT_FOUND, agent_vault_find(a,
		    name) != NULL ? "vault %s is a local vault; it is removed by "
		    "editing the config file" : "there is no remote vault named %s",
		    name);
		goto out;
	}
	if ((rc = config_read(a, &text, &len, &mode)) != 0 ||
	    (rc = section_lines(a, text, len, r->cfg->name, &start, &end)) != 0)
		goto out;
	s0 = line_off(text, len, start);
	s1 = end != 0 ? line_off(text, len, end) : len;
	/* The comment line vault add wrote, and the blank line before it. */
	if (s0 > 0) {
		p = s0 - 1;
		while (p > 0 && text[p - 1] != '\n')
			p--;
		if (strncmp(text + p, "# added by keybridge vault add", 30) == 0) {
			s0 = p;
			if (s0 >= 1 && s0 < len && s0 > 1 && text[s0 - 1] == '\n' &&
			    text[s0 - 2] == '\n')
				s0--;
		}
	}
	if ((rc = kb_buf_append(&out, text, s0)) != 0 ||
	    (rc = kb_buf_append(&out, text + s1, len - s1)) != 0 ||
	    (rc = config_write(a, (const char *)out.data, out.len, mode)) != 0)
		goto out;
	unlink_private(a, r->cfg->name);
	pthread_mutex_lock(&rs->lock);
	for (pp = &rs->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->gone = true;
	pthread_mutex_unlock(&rs->lock);
	kb_info("remote vault %s removed", name);
	rc = 0;
 out:
	if (r != NULL) {
		int ar = kb_store_audit_append(a->store, who, r->cfg->name,
		    "vault-remove", NULL, NULL, rc == 0 ? "ok" : "failed",
		    kb_now_unix());

		if (ar != 0)
			kb_warn("cannot write an audit record: %s",
			    kb_error_detail(ar));
		pthread_mutex_lock(&rs->lock);
		free_it = --r->refs == 0 && r->gone;
		pthread_mutex_unlock(&rs->lock);
	}
	pthread_mutex_unlock(&rs->edit);
	if (free_it)
		remote_free(r);
	kb_buf_free(&out);
	free(text);
	return rc;
}
