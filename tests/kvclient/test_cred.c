/*
 * test_cred.c: kv-client's credentials against oauthserver.py (started by
 * t-cred.sh): client secret, client certificate with a software key and
 * with the key on a SoftHSM token (PS256 signed by the token), workload
 * identity (the file read again), managed identity through IMDS and App
 * Service (endpoint overrides, string and date expires_on, retries), the
 * environment variables, the cloud table, caching and refresh, and every
 * bad input with its sentence.  The server verifies each client
 * assertion (signature, x5t#S256, aud, iss, sub, exp, nbf, jti) and
 * records what it saw; the test reads the record.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kb_kvclient.h"
#include "kb_pkcs11.h"
#include "p11test.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define SECRET_APP "11111111-0000-0000-0000-000000000001"
#define CERT_APP "11111111-0000-0000-0000-000000000002"
#define HSM_APP "11111111-0000-0000-0000-000000000003"
#define FED_APP "11111111-0000-0000-0000-000000000004"
#define UAMI "22222222-0000-0000-0000-00000000000a"
#define SECRET "s3cr&t=+/ x%~"
#define ID_HEADER "test-identity-header-7f3a"
#define SCOPE "https://vault.azure.net/.default"
#define SCOPE2 "https://managedhsm.azure.net/.default"

static const char *dir;
static char authority[128], imds[128], appsvc[160], ca[300], cfgpath[300],
    recpath[300], tokpath[300];
static cJSON *cfg;
static char token_value[64];

static char *
path_in(const char *name)
{
	static char buf[8][300];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	if (kb_file_write_atomic(path, text, strlen(text), mode) != 0)
		tap_diag("cannot write %s", path);
}

/* The server reads its config at every request. */
static void
cfg_write(void)
{
	char *s = cJSON_Print(cfg);

	write_file(cfgpath, s, 0600);
	free(s);
}

static void
cfg_set_num(const char *k, double v)
{
	cJSON_DeleteItemFromObject(cfg, k);
	cJSON_AddNumberToObject(cfg, k, v);
	cfg_write();
}

static void
cfg_set_str(const char *k, const char *v)
{
	cJSON_DeleteItemFromObject(cfg, k);
	if (v != NULL)
		cJSON_AddStringToObject(cfg, k, v);
	cfg_write();
}

static void
cfg_client(const char *id, const char *field, const char *value)
{
	cJSON *clients = cJSON_GetObjectItem(cfg, "clients"), *c;

	cJSON_DeleteItemFromObject(clients, id);
	c = cJSON_AddObjectToObject(clients, id);
	cJSON_AddStringToObject(c, field, value);
	cfg_write();
}

static void
cfg_fail(const char *id, const char *path, int status, int n)
{
	cJSON *f, *st;
	int i;

	cJSON_DeleteItemFromObject(cfg, "fail");
	f = cJSON_AddObjectToObject(cfg, "fail");
	cJSON_AddStringToObject(f, "id", id);
	cJSON_AddStringToObject(f, "path", path);
	st = cJSON_AddArrayToObject(f, "statuses");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(st, cJSON_CreateNumber(status));
	cfg_write();
}

/* A new token value each time, so a fetch is told from a cached copy. */
static void
new_token_value(void)
{
	static int n;

	snprintf(token_value, sizeof(token_value), "eyJ0ZXN0.token-%d.%d", ++n,
	    (int)getpid());
	write_file(tokpath, token_value, 0600);
}

static void
rec_reset(void)
{
	write_file(recpath, "", 0600);
}

/* The records of one path (token, imds, app), in order; *n of them. */
static cJSON *
recs(const char *kind)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	cJSON *arr = cJSON_CreateArray(), *j;

	if (kb_file_read(recpath, 1 << 20, &text, &len) != 0)
		return arr;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((j = cJSON_Parse(line)) == NULL)
			continue;
		if (kind == NULL || strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j,
		    "path")) ?: "", kind) == 0)
			cJSON_AddItemToArray(arr, j);
		else
			cJSON_Delete(j);
	}
	free(text);
	return arr;
}

static cJSON *
last_rec(cJSON *arr)
{
	int n = cJSON_GetArraySize(arr);

	return n > 0 ? cJSON_GetArrayItem(arr, n - 1) : NULL;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static double
jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* get_token through the credential's source. */
static int
get(kb_kv_credential *cred, const char *tenant, const char *scope,
    char *out, size_t n, int64_t *exp)
{
	struct kb_kv_token_source src;
	struct kb_secret *tok = NULL;
	int64_t e = 0;
	int r;

	kb_kv_credential_source(cred, &src);
	r = src.get_token(src.ctx, tenant, scope, &tok, &e);
	if (r == 0) {
		snprintf(out, n, "%s", (const char *)tok->data);
		if (exp != NULL)
			*exp = e;
	} else {
		snprintf(out, n, "(error)");
	}
	kb_secret_free(&tok);
	return r;
}

/* get_token from several threads at once (the single-flight test). */
struct racer {
	kb_kv_credential *cred;
	char tok[4096];
	int r;
};
static pthread_barrier_t race_line;

static void *
race_get(void *arg)
{
	struct racer *rc = arg;

	pthread_barrier_wait(&race_line);
	rc->r = get(rc->cred, NULL, SCOPE, rc->tok, sizeof(rc->tok), NULL);
	return NULL;
}

static bool
has(const char *msg, const char *part)
{
	return msg != NULL && strstr(msg, part) != NULL;
}

/* ------------------------------------------------------------------ clouds */

static void
t_clouds(void)
{
	const struct kb_kv_cloud *c;
	struct kb_kv_client_secret_options so;
	struct kb_secret *sec = NULL;
	kb_kv_credential *cred = NULL;
	char tok[128];
	size_t n = 0;
	int r;

	c = kb_kv_clouds(&n);
	tap_ok(n == 3 && strcmp(c[0].name, "public") == 0, "three clouds, public first");
	c = kb_kv_cloud_by_name("china");
	tap_ok(c && strcmp(c->authority_host, "https://login.chinacloudapi.cn") == 0 &&
	    strcmp(c->vault_suffix, ".vault.azure.cn") == 0 &&
	    strcmp(c->mhsm_suffix, ".managedhsm.azure.cn") == 0,
	    "china: login.chinacloudapi.cn, .vault.azure.cn, .managedhsm.azure.cn");
	c = kb_kv_cloud_by_name("AzureUSGovernment");
	tap_ok(c && strcmp(c->name, "usgov") == 0 &&
	    strcmp(c->authority_host, "https://login.microsoftonline.us") == 0 &&
	    strcmp(c->mhsm_scope, "https://managedhsm.usgovcloudapi.net/.default") == 0,
	    "usgov by its Azure name, with its login host and scopes");
	tap_ok(kb_kv_cloud_by_name("PUBLIC") == kb_kv_cloud_by_name("AzureCloud") &&
	    kb_kv_cloud_by_name("germany") == NULL && kb_kv_cloud_by_name(NULL) == NULL,
	    "lookup ignores case; unknown names give NULL");
	tap_ok(kb_kv_cloud_for_host("myvault.vault.azure.cn") == kb_kv_cloud_by_name("china") &&
	    kb_kv_cloud_for_host("x.managedhsm.usgovcloudapi.net") == kb_kv_cloud_by_name("usgov") &&
	    kb_kv_cloud_for_host("MyVault.Vault.Azure.Net") == kb_kv_cloud_by_name("public") &&
	    kb_kv_cloud_for_host("vault.azure.net") == kb_kv_cloud_by_name("public"),
	    "the cloud of a vault host");
	tap_ok(kb_kv_cloud_for_host("vault.azure.net.evil.example") == NULL &&
	    kb_kv_cloud_for_host("evilvault.azure.net") == NULL &&
	    kb_kv_cloud_for_host(".vault.azure.net") == NULL,
	    "look-alike hosts belong to no cloud");

	/* The authority defaults to the cloud's login host. */
	if (kb_secret_from(SECRET, strlen(SECRET), &sec) != 0)
		return;
	memset(&so, 0, sizeof(so));
	so.tenant_id = TENANT;
	so.client_id = SECRET_APP;
	so.client_secret = sec;
	so.cloud = "usgov";
	so.total_ms = 3000;
	/* Through a proxy that is not there: nothing leaves the machine. */
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	setenv("https_proxy", "http://127.0.0.1:1", 1);
	r = kb_kv_credential_client_secret(&so, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	unsetenv("https_proxy");
	setenv("NO_PROXY", "*", 1);
	tap_ok(r != 0 && has(kb_error_detail(r), "login.microsoftonline.us"),
	    "cloud usgov: the token is asked from login.microsoftonline.us (%s)",
	    kb_error_detail(r));
	kb_kv_credential_free(cred);
	cred = NULL;
	so.cloud = "mars";
	r = kb_kv_credential_client_secret(&so, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "unknown cloud mars"),
	    "an unknown cloud: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
	kb_secret_free(&sec);
}

/* ---------------------------------------------------------- client secret */

static void
t_client_secret(void)
{
	struct kb_kv_client_secret_options so;
	struct kb_secret *sec = NULL;
	kb_kv_credential *cred = NULL;
	char tok[128];
	cJSON *rs;
	int64_t exp = 0;
	int r, i;

	cfg_client(SECRET_APP, "secret", SECRET);
	cfg_set_str("access_token_file", tokpath);
	new_token_value();
	rec_reset();
	if (kb_secret_from(SECRET, strlen(SECRET), &sec) != 0)
		return;
	memset(&so, 0, sizeof(so));
	so.tenant_id = TENANT;
	so.client_id = SECRET_APP;
	so.client_secret = sec;
	so.authority_host = authority;
	so.ca_file = ca;
	r = kb_kv_credential_client_secret(&so, &cred);
	tap_is_int(r, 0, "client secret credential");
	if (r != 0)
		return;
	tap_is_str(kb_kv_credential_kind(cred), "client-secret", "its kind");
	r = get(cred, NULL, SCOPE, tok, sizeof(tok), &exp);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0,
	    "the server's token, for the credential's tenant: %s",
	    r ? kb_error_detail(r) : tok);
	tap_ok(exp > kb_now_unix() + 3500 && exp <= kb_now_unix() + 3600,
	    "expiry from expires_in");
	/* Many requests, one fetch. */
	for (i = 0; i < 20; i++)
		r |= get(cred, TENANT, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && kb_kv_credential_fetches(cred) == 1,
	    "21 get_token calls, one token request (cached per tenant and scope)");
	r = get(cred, TENANT, SCOPE2, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && kb_kv_credential_fetches(cred) == 2,
	    "another scope: its own token request");
	rs = recs("token");
	tap_ok(cJSON_GetArraySize(rs) == 2 &&
	    strcmp(jstr(last_rec(rs), "auth") ?: "", "secret") == 0 &&
	    strcmp(jstr(last_rec(rs), "tenant") ?: "", TENANT) == 0 &&
	    strcmp(jstr(last_rec(rs), "scope") ?: "", SCOPE2) == 0,
	    "the server saw two secret requests, tenant and scope right");
	cJSON_Delete(rs);
	kb_kv_credential_free(cred);
	cred = NULL;

	/* Four threads at once, the authority slow: one token request. */
	cfg_set_num("delay_ms", 300);
	rec_reset();
	r = kb_kv_credential_client_secret(&so, &cred);
	if (r == 0) {
		struct racer rc[4];
		pthread_t th[4];
		int ok = 0, n = 0;

		pthread_barrier_init(&race_line, NULL, 4);
		for (i = 0; i < 4; i++) {
			rc[i].cred = cred;
			rc[i].r = -1;
			if (pthread_create(&th[i], NULL, race_get, &rc[i]) == 0)
				n++;
		}
		for (i = 0; i < n; i++) {
			pthread_join(th[i], NULL);
			ok += rc[i].r == 0 && strcmp(rc[i].tok, rc[0].tok) == 0;
		}
		pthread_barrier_destroy(&race_line);
		rs = recs("token");
		tap_ok(n == 4 && ok == 4 && kb_kv_credential_fetches(cred) == 1 &&
		    cJSON_GetArraySize(rs) == 1,
		    "4 threads at once: one token request, the same token for all "
		    "(%d of 4 got it, %lu fetches, %d requests)", ok,
		    kb_kv_credential_fetches(cred), cJSON_GetArraySize(rs));
		cJSON_Delete(rs);
	}
	kb_kv_credential_free(cred);
	cred = NULL;
	cfg_set_num("delay_ms", 0);

	/* Refresh: a token that lives less than the 5-minute margin. */
	cfg_set_num("expires_in", 200);
	r = kb_kv_credential_client_secret(&so, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && kb_kv_credential_fetches(cred) == 2,
	    "a token within 5 minutes of its expiry is fetched again");
	cfg_set_num("expires_in", 3599);
	kb_kv_credential_free(cred);
	cred = NULL;
	kb_secret_free(&sec);

	/* Wrong secret. */
	if (kb_secret_from("wr0ng-s3cret", 12, &sec) != 0)
		return;
	so.client_secret = sec;
	r = kb_kv_credential_client_secret(&so, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_DENIED && has(kb_error_detail(r), "AADSTS7000215") &&
	    !has(kb_error_detail(r), "wr0ng"),
	    "a wrong secret: DENIED, the service's code, not the secret: %s",
	    kb_error_detail(r));
	kb_kv_credential_free(cred);
	cred = NULL;
	so.authority_host = "http://127.0.0.1:1";
	r = kb_kv_credential_client_secret(&so, &cred);
	tap_ok(r == KB_ERR_INVALID && has(kb_error_detail(r), "not an https://"),
	    "an http authority: %s", kb_error_detail(r));
	kb_secret_free(&sec);
}

/* ----------------------------------------------------- certificates, soft */

/* A signer that hides its public key: the check falls to the signature. */
struct hide {
	struct kb_kv_signer in;
};

static int
hide_sign(void *ctx, const unsigned char *m, size_t n, unsigned char **s,
    size_t *sl)
{
	struct hide *h = ctx;

	return h->in.sign_ps256(h->in.ctx, m, n, s, sl);
}

static void
hide_free(void *ctx)
{
	struct hide *h = ctx;

	h->in.free_ctx(h->in.ctx);
	free(h);
}

static int
cert_cred(const char *cert, const struct kb_kv_signer *s, const char *client,
    kb_kv_credential **out)
{
	struct kb_kv_client_cert_options co;

	memset(&co, 0, sizeof(co));
	co.tenant_id = TENANT;
	co.client_id = client;
	co.cert_file = cert;
	co.signer = s;
	co.authority_host = authority;
	co.ca_file = ca;
	return kb_kv_credential_client_cert(&co, out);
}

static bool
guid_shape(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx";
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (pat[i] == '-' || pat[i] == '4') {
			if (s[i] != pat[i])
				return false;
		} else if (pat[i] == 'N') {
			if (strchr("89ab", s[i]) == NULL)
				return false;
		} else if (strchr("0123456789abcdef", s[i]) == NULL) {
			return false;
		}
	}
	return true;
}

/* The claims of the last assertion the server accepted, checked. */
static void
check_assertion(const char *client, const char *what)
{
	cJSON *rs = recs("token"), *last = last_rec(rs), *h, *c;
	char aud[256];
	double now = (double)kb_now_unix();

	snprintf(aud, sizeof(aud), "%s/%s/oauth2/v2.0/token", authority, TENANT);
	h = cJSON_GetObjectItem(last, "jwt_header");
	c = cJSON_GetObjectItem(last, "jwt_claims");
	tap_ok(last && jnum(last, "status") == 200 &&
	    strcmp(jstr(last, "auth") ?: "", "assertion") == 0,
	    "%s: the server verified the assertion (signature, x5t-S256, aud, "
	    "iss, sub, exp, nbf, jti) and issued a token", what);
	tap_ok(strcmp(jstr(h, "alg") ?: "", "PS256") == 0 &&
	    strcmp(jstr(h, "typ") ?: "", "JWT") == 0 && jstr(h, "x5t#S256") &&
	    strlen(jstr(h, "x5t#S256")) == 43, "%s: header PS256, JWT, x5t-S256", what);
	tap_ok(strcmp(jstr(c, "aud") ?: "", aud) == 0 &&
	    strcmp(jstr(c, "iss") ?: "", client) == 0 &&
	    strcmp(jstr(c, "sub") ?: "", client) == 0,
	    "%s: aud is the token endpoint, iss = sub = the client id", what);
	tap_ok(jnum(c, "nbf") == jnum(c, "iat") && jnum(c, "nbf") >= now - 5 &&
	    jnum(c, "nbf") <= now && jnum(c, "exp") == jnum(c, "nbf") + 600 &&
	    guid_shape(jstr(c, "jti")),
	    "%s: nbf = iat = now, exp = now + 600, jti a random GUID", what);
	cJSON_Delete(rs);
}

static void
t_cert_soft(void)
{
	struct kb_kv_signer s, s2;
	struct hide *hd;
	kb_kv_credential *cred = NULL;
	const char *client_pem = path_in("client.pem");
	char tok[128], jti1[40] = "";
	cJSON *rs;
	int r;

	cfg_client(CERT_APP, "cert", path_in("client.crt"));
	new_token_value();
	rec_reset();
	r = kb_kv_signer_pem_file(client_pem, NULL, &s);
	tap_is_int(r, 0, "software signer from the certificate+key PEM");
	if (r != 0)
		return;
	r = cert_cred(client_pem, &s, CERT_APP, &cred);
	tap_is_int(r, 0, "certificate credential (certificate from the same PEM)");
	if (r != 0) {
		s.free_ctx(s.ctx);
		return;
	}
	tap_is_str(kb_kv_credential_kind(cred), "client-certificate", "its kind");
	r = get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0, "a token for a signed "
	    "client assertion: %s", r ? kb_error_detail(r) : "ok");
	check_assertion(CERT_APP, "software key");
	rs = recs("token");
	snprintf(jti1, sizeof(jti1), "%s", jstr(cJSON_GetObjectItem(last_rec(rs),
	    "jwt_claims"), "jti") ?: "");
	cJSON_Delete(rs);
	r = get(cred, NULL, SCOPE2, tok, sizeof(tok), NULL);
	rs = recs("token");
	tap_ok(r == 0 && cJSON_GetArraySize(rs) == 2 &&
	    strcmp(jti1, jstr(cJSON_GetObjectItem(last_rec(rs), "jwt_claims"),
	        "jti") ?: "") != 0,
	    "a second fetch signs a new assertion with a new jti (the server "
	    "refuses replays)");
	cJSON_Delete(rs);

	/* The server holds another certificate for the app: x5t refused. */
	cfg_client(CERT_APP, "cert", path_in("other.crt"));
	r = get(cred, NULL, "https://other.example/.default", tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_DENIED && has(kb_error_detail(r), "AADSTS700027"),
	    "a certificate the app did not register: the server refuses it: %s",
	    kb_error_detail(r));
	cfg_client(CERT_APP, "cert", path_in("client.crt"));
	kb_kv_credential_free(cred);
	cred = NULL;

	/* Mismatch, found up front from the signer's public key. */
	if (kb_kv_signer_pem_file(client_pem, NULL, &s) != 0)
		return;
	r = cert_cred(path_in("other.crt"), &s, CERT_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "does not match the key"),
	    "a certificate for another key: %s", kb_error_detail(r));
	/* ... and from the signature when the signer does not say. */
	hd = calloc(1, sizeof(*hd));
	hd->in = s;
	memset(&s2, 0, sizeof(s2));
	s2.sign_ps256 = hide_sign;
	s2.free_ctx = hide_free;
	s2.ctx = hd;
	r = cert_cred(path_in("other.crt"), &s2, CERT_APP, &cred);
	tap_is_int(r, 0, "a signer without public_key_der is taken");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "does not verify"),
	    "its signatures are checked against the certificate before they "
	    "leave: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
	cred = NULL;

	if (kb_kv_signer_pem_file(client_pem, NULL, &s) != 0)
		return;
	r = cert_cred(path_in("expired.crt"), &s, CERT_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "expired on"),
	    "an expired certificate: %s", kb_error_detail(r));
	r = cert_cred(path_in("ec.crt"), &s, CERT_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "RSA"),
	    "an EC certificate: %s", kb_error_detail(r));
	r = cert_cred(path_in("missing.crt"), &s, CERT_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "cannot read"),
	    "an unreadable certificate file: %s", kb_error_detail(r));
	r = cert_cred(path_in("client.key"), &s, CERT_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "no PEM certificate"),
	    "a file without a certificate: %s", kb_error_detail(r));
	s.free_ctx(s.ctx);

	chmod(path_in("other.key"), 0644);
	r = kb_kv_signer_pem_file(path_in("other.key"), NULL, &s);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "chmod 600"),
	    "a key file others can read: %s", kb_error_detail(r));
	chmod(path_in("other.key"), 0600);
	r = kb_kv_signer_pem_file(path_in("client.crt"), NULL, &s);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "no private key"),
	    "a file without a key: %s", kb_error_detail(r));
	r = kb_kv_signer_pem_file(path_in("ec.key"), NULL, &s);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "not an RSA key"),
	    "an EC key: %s", kb_error_detail(r));
}

/* ------------------------------------------------- certificates, SoftHSM */

static int
hsm_sign(void *ctx, const unsigned char *m, size_t n, unsigned char **sig,
    size_t *sl)
{
	unsigned char md[32];

	if (EVP_Digest(m, n, md, NULL, EVP_sha256(), NULL) != 1)
		return KB_ERR_CRYPTO;
	return kb_p11_sign_digest(ctx, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, md,
	    sizeof(md), sig, sl);
}

static EVP_PKEY *
hsm_pub(kb_p11_key *k)
{
	char *pem = NULL;
	BIO *b;
	EVP_PKEY *p = NULL;

	if (kb_p11_public_pem(k, &pem) != 0)
		return NULL;
	if ((b = BIO_new_mem_buf(pem, -1)) != NULL)
		p = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	free(pem);
	return p;
}

static int
hsm_spki(void *ctx, unsigned char **spki, size_t *len)
{
	EVP_PKEY *p = hsm_pub(ctx);
	unsigned char *der = NULL;
	int n;

	if (p == NULL || (n = i2d_PUBKEY(p, &der)) <= 0) {
		EVP_PKEY_free(p);
		return KB_ERR_CRYPTO;
	}
	*spki = malloc((size_t)n);
	memcpy(*spki, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	EVP_PKEY_free(p);
	return 0;
}

/* A certificate for the token's key, issued by the test CA. */
static int
hsm_cert(kb_p11_key *k, const char *out)
{
	EVP_PKEY *pub = hsm_pub(k), *cakey = NULL;
	X509 *x = X509_new(), *cax = NULL;
	FILE *f;
	int ok = 0;

	if ((f = fopen(path_in("ca.key"), "r")) != NULL) {
		cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(path_in("ca.pem"), "r")) != NULL) {
		cax = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (pub && cakey && cax && x &&
	    X509_set_version(x, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242) &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	        (const unsigned char *)"kv-client HSM app", -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(cax)) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
	    X509_set_pubkey(x, pub) && X509_sign(x, cakey, EVP_sha256()) > 0 &&
	    (f = fopen(out, "w")) != NULL) {
		ok = PEM_write_X509(f, x);
		fclose(f);
	}
	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(cakey);
	return ok ? 0 : -1;
}

static void
t_cert_hsm(void)
{
	static const unsigned char id[] = { 0xc3, 0x01 };
	struct p11t x;
	struct kb_p11_keyspec spec;
	struct kb_kv_signer s;
	kb_p11_key *k = NULL;
	kb_kv_credential *cred = NULL;
	const char *certp = path_in("hsm.crt");
	char tok[128];
	int r;

	if (access(p11t_softhsm(), R_OK) != 0) {
		tap_ok(1, "# SKIP SoftHSM2 not installed");
		return;
	}
	if (p11t_prepare(&x) != 0 || p11t_token(&x, p11t_softhsm(), "kvc-cred") != 0) {
		tap_ok(0, "a SoftHSM token: %s", kb_error_detail(KB_ERR_INTERNAL));
		p11t_cleanup(&x);
		return;
	}
	memset(&spec, 0, sizeof(spec));
	spec.type = KB_P11_RSA;
	spec.bits = 2048;
	spec.label = "kvc app key";
	spec.id = id;
	spec.id_len = sizeof(id);
	spec.ops = KB_P11_OP_SIGN | KB_P11_OP_VERIFY;
	spec.token = true;
	r = kb_p11_generate(x.t, &spec, &k);
	tap_ok(r == 0 && hsm_cert(k, certp) == 0,
	    "an RSA key on SoftHSM, and a certificate for it from the test CA");
	if (r != 0)
		goto out;
	cfg_client(HSM_APP, "cert", certp);
	new_token_value();
	rec_reset();
	memset(&s, 0, sizeof(s));
	s.sign_ps256 = hsm_sign;
	s.public_key_der = hsm_spki;
	s.ctx = k;        /* the test keeps the key: no free_ctx */
	r = cert_cred(certp, &s, HSM_APP, &cred);
	tap_is_int(r, 0, "certificate credential with the key on the token");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0, "a token for an assertion "
	    "signed on the token (CKM_RSA_PKCS_PSS): %s", r ? kb_error_detail(r) : "ok");
	check_assertion(HSM_APP, "SoftHSM key");
	kb_kv_credential_free(cred);
	cred = NULL;
	r = cert_cred(path_in("client.crt"), &s, HSM_APP, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "does not match the key"),
	    "the token's key with another certificate: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
 out:
	kb_p11_key_free(k);
	p11t_cleanup(&x);
}

/* ---------------------------------------------------------------- workload */

static void
t_workload(void)
{
	struct kb_kv_workload_options wo;
	kb_kv_credential *cred = NULL;
	const char *fed = path_in("fed.token"), *accepted = path_in("fed.accepted");
	char tok[128], expired[400], *h = NULL, *p = NULL;
	cJSON *rs;
	int r;

	write_file(accepted, "fed-token-A\nfed-token-B\n", 0600);
	cfg_client(FED_APP, "federated_file", accepted);
	write_file(fed, "fed-token-A\n", 0644);
	new_token_value();
	rec_reset();
	memset(&wo, 0, sizeof(wo));
	wo.tenant_id = TENANT;
	wo.client_id = FED_APP;
	wo.token_file = fed;
	wo.authority_host = authority;
	wo.ca_file = ca;
	r = kb_kv_credential_workload(&wo, &cred);
	tap_is_int(r, 0, "workload identity credential");
	if (r != 0)
		return;
	tap_is_str(kb_kv_credential_kind(cred), "workload-identity", "its kind");
	r = get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	rs = recs("token");
	tap_ok(r == 0 && strcmp(tok, token_value) == 0 &&
	    strcmp(jstr(last_rec(rs), "auth") ?: "", "federated") == 0 &&
	    strcmp(jstr(last_rec(rs), "assertion") ?: "", "fed-token-A") == 0,
	    "the federated token (a 0644 file, as Kubernetes projects it) is the "
	    "client assertion: %s", r ? kb_error_detail(r) : "ok");
	cJSON_Delete(rs);
	write_file(fed, "fed-token-B", 0644);
	r = get(cred, NULL, SCOPE2, tok, sizeof(tok), NULL);
	rs = recs("token");
	tap_ok(r == 0 && strcmp(jstr(last_rec(rs), "assertion") ?: "",
	    "fed-token-B") == 0, "the file is read again at the next fetch");
	cJSON_Delete(rs);
	write_file(fed, "fed-token-C", 0644);
	r = get(cred, NULL, "https://c.example/.default", tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_DENIED && has(kb_error_detail(r), "AADSTS700211") &&
	    !has(kb_error_detail(r), "fed-token-C"),
	    "a federated token the app does not trust: %s", kb_error_detail(r));
	h = kb_b64url_encode((const unsigned char *)"{\"alg\":\"RS256\"}", 15);
	snprintf(expired, sizeof(expired), "{\"exp\":%lld,\"sub\":\"x\"}",
	    (long long)kb_now_unix() - 60);
	p = kb_b64url_encode((const unsigned char *)expired, strlen(expired));
	snprintf(expired, sizeof(expired), "%s.%s.c2ln", h, p);
	write_file(fed, expired, 0644);
	r = get(cred, NULL, "https://d.example/.default", tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "expired at") &&
	    !has(kb_error_detail(r), h),
	    "an expired federated token: %s", kb_error_detail(r));
	unlink(fed);
	r = get(cred, NULL, "https://e.example/.default", tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "cannot read the "
	    "federated token file"), "a missing federated token file: %s",
	    kb_error_detail(r));
	r = get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0, "a cached token is still served while the file is gone");
	free(h);
	free(p);
	kb_kv_credential_free(cred);
}

/* -------------------------------------------------------- managed identity */

static int
mi_cred(enum kb_kv_mi_kind kind, const char *client_id, const char *ep,
    const struct kb_secret *hdr, int retries, kb_kv_credential **out)
{
	struct kb_kv_managed_identity_options mo;

	memset(&mo, 0, sizeof(mo));
	mo.kind = kind;
	mo.client_id = client_id;
	if (kind == KB_KV_MI_IMDS)
		mo.imds_authority = ep;
	else
		mo.app_service_endpoint = ep;
	mo.app_service_header = hdr;
	mo.max_retries = retries;
	mo.retry_base_ms = 10;
	mo.total_ms = 5000;
	return kb_kv_credential_managed_identity(&mo, out);
}

static void
t_imds(void)
{
	kb_kv_credential *cred = NULL;
	char tok[128];
	int64_t exp = 0;
	cJSON *rs, *last;
	double t0;
	int r, i, ok;

	cJSON_DeleteItemFromObject(cfg, "identities");
	cJSON_AddItemToObject(cfg, "identities", cJSON_CreateStringArray(
	    (const char *[]){ UAMI }, 1));
	cfg_write();
	new_token_value();
	rec_reset();
	r = mi_cred(KB_KV_MI_IMDS, NULL, imds, NULL, 0, &cred);
	tap_is_int(r, 0, "IMDS credential, endpoint on loopback http");
	if (r != 0)
		return;
	tap_is_str(kb_kv_credential_kind(cred), "managed-identity-imds", "its kind");
	r = get(cred, "some-tenant", SCOPE, tok, sizeof(tok), &exp);
	rs = recs("imds");
	last = last_rec(rs);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0, "a token from IMDS: %s",
	    r ? kb_error_detail(r) : "ok");
	tap_ok(strcmp(jstr(last, "resource") ?: "", "https://vault.azure.net") == 0 &&
	    strcmp(jstr(last, "metadata") ?: "", "true") == 0 &&
	    strcmp(jstr(last, "api_version") ?: "", "2018-02-01") == 0 &&
	    jstr(last, "client_id") == NULL,
	    "GET with Metadata: true, api-version 2018-02-01, resource = the "
	    "scope without /.default, no client_id");
	tap_ok(exp >= kb_now_unix() + 3590 && exp <= kb_now_unix() + 3600,
	    "the expiry from IMDS's string expires_on");
	cJSON_Delete(rs);
	for (i = 0, ok = 0; i < 5; i++)
		ok |= get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(ok == 0 && kb_kv_credential_fetches(cred) == 1, "cached");
	kb_kv_credential_free(cred);
	cred = NULL;

	/* User-assigned identity. */
	r = mi_cred(KB_KV_MI_IMDS, UAMI, imds, NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE2, tok, sizeof(tok), NULL);
	rs = recs("imds");
	tap_ok(r == 0 && strcmp(jstr(last_rec(rs), "client_id") ?: "", UAMI) == 0 &&
	    strcmp(jstr(last_rec(rs), "resource") ?: "", "https://managedhsm.azure.net") == 0,
	    "a user-assigned identity: client_id sent");
	cJSON_Delete(rs);
	kb_kv_credential_free(cred);
	cred = NULL;
	r = mi_cred(KB_KV_MI_IMDS, "33333333-dead-beef-0000-000000000000", imds,
	    NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "Identity not found"),
	    "an identity the VM does not have: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
	cred = NULL;

	/* Retries: two 503s, then the token. */
	cfg_fail("imds-503", "imds", 503, 2);
	rec_reset();
	t0 = kb_now_mono();
	r = mi_cred(KB_KV_MI_IMDS, NULL, imds, NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	rs = recs("imds");
	tap_ok(r == 0 && cJSON_GetArraySize(rs) == 3 &&
	    jnum(cJSON_GetArrayItem(rs, 0), "status") == 503 &&
	    jnum(cJSON_GetArrayItem(rs, 1), "status") == 503 &&
	    jnum(cJSON_GetArrayItem(rs, 2), "status") == 200,
	    "IMDS: 503, 503, then 200 (%s)", r ? kb_error_detail(r) : "ok");
	tap_ok(kb_now_mono() - t0 < 3.0, "with the test's 10 ms backoff base");
	cJSON_Delete(rs);
	kb_kv_credential_free(cred);
	cred = NULL;
	cfg_fail("imds-404", "imds", 404, 1);
	r = mi_cred(KB_KV_MI_IMDS, NULL, imds, NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0, "IMDS: a 404 (identity not ready yet) is retried");
	kb_kv_credential_free(cred);
	cred = NULL;
	cfg_fail("imds-many", "imds", 503, 10);
	rec_reset();
	r = mi_cred(KB_KV_MI_IMDS, NULL, imds, NULL, 2, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	rs = recs("imds");
	tap_ok(r == KB_ERR_UNREACHABLE && cJSON_GetArraySize(rs) == 3 &&
	    has(kb_error_detail(r), "HTTP 503"),
	    "max_retries 2: three tries, then the last answer: %s", kb_error_detail(r));
	cJSON_Delete(rs);
	kb_kv_credential_free(cred);
	cred = NULL;
	cJSON_DeleteItemFromObject(cfg, "fail");
	cfg_write();

	/* AZURE_POD_IDENTITY_AUTHORITY_HOST moves IMDS. */
	setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds, 1);
	r = mi_cred(KB_KV_MI_IMDS, NULL, NULL, NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0, "AZURE_POD_IDENTITY_AUTHORITY_HOST names the IMDS endpoint: %s",
	    r ? kb_error_detail(r) : "ok");
	unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
	kb_kv_credential_free(cred);
	cred = NULL;

	/* Plain http elsewhere is refused; https anywhere is fine. */
	r = mi_cred(KB_KV_MI_IMDS, NULL, "http://10.1.2.3", NULL, 0, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "use an https URL"),
	    "IMDS on plain http off loopback: %s", kb_error_detail(r));
	r = mi_cred(KB_KV_MI_IMDS, NULL, "http://169.254.169.254.evil.example", NULL,
	    0, &cred);
	tap_is_int(r, KB_ERR_CONFIG, "a host that starts like IMDS's address");
	r = mi_cred(KB_KV_MI_IMDS, NULL, "ftp://127.0.0.1", NULL, 0, &cred);
	tap_is_int(r, KB_ERR_CONFIG, "another scheme");
	r = mi_cred(KB_KV_MI_IMDS, NULL, "https://pod-identity.example", NULL, 0, &cred);
	tap_is_int(r, 0, "https on any host");
	kb_kv_credential_free(cred);
	cred = NULL;
	r = mi_cred(KB_KV_MI_IMDS, NULL, "http://[::1]:1", NULL, 0, &cred);
	tap_is_int(r, 0, "http on ::1");
	kb_kv_credential_free(cred);
	cred = NULL;
	/* Nothing listens: the sentence says where a managed identity exists. */
	r = mi_cred(KB_KV_MI_IMDS, NULL, "http://127.0.0.1:1", NULL, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_UNREACHABLE && has(kb_error_detail(r), "only on Azure"),
	    "no IMDS: %s", kb_error_detail(r));
	kb_kv_credential_free(cred);
}

static void
t_app_service(void)
{
	struct kb_secret *hdr = NULL, *bad = NULL;
	kb_kv_credential *cred = NULL;
	char tok[128];
	int64_t exp = 0, now;
	cJSON *rs;
	int r;

	cfg_set_str("identity_header", ID_HEADER);
	if (kb_secret_from(ID_HEADER, strlen(ID_HEADER), &hdr) != 0 ||
	    kb_secret_from("wrong-header", 12, &bad) != 0)
		return;
	new_token_value();
	rec_reset();
	r = mi_cred(KB_KV_MI_APP_SERVICE, NULL, appsvc, hdr, 0, &cred);
	tap_is_int(r, 0, "App Service credential");
	if (r != 0)
		goto out;
	tap_is_str(kb_kv_credential_kind(cred), "managed-identity-app-service", "its kind");
	r = get(cred, NULL, SCOPE, tok, sizeof(tok), &exp);
	now = kb_now_unix();
	rs = recs("app");
	tap_ok(r == 0 && strcmp(tok, token_value) == 0 &&
	    strcmp(jstr(last_rec(rs), "api_version") ?: "", "2019-08-01") == 0 &&
	    strcmp(jstr(last_rec(rs), "resource") ?: "", "https://vault.azure.net") == 0,
	    "a token from App Service (api-version 2019-08-01, X-IDENTITY-HEADER): %s",
	    r ? kb_error_detail(r) : "ok");
	tap_ok(exp >= now + 3590 && exp <= now + 3600, "integer expires_on");
	cJSON_Delete(rs);
	cfg_set_str("app_service_expires_on", "date");
	r = get(cred, NULL, SCOPE2, tok, sizeof(tok), &exp);
	now = kb_now_unix();
	tap_ok(r == 0 && exp >= now + 3590 && exp <= now + 3600,
	    "expires_on as \"MM/DD/YYYY hh:mm:ss +00:00\" (%lld from now)",
	    (long long)(exp - now));
	cfg_set_str("app_service_expires_on", "string");
	r = get(cred, NULL, "https://x.example/.default", tok, sizeof(tok), &exp);
	now = kb_now_unix();
	tap_ok(r == 0 && exp >= now + 3590 && exp <= now + 3600,
	    "expires_on as a string of digits");
	cfg_set_str("app_service_expires_on", "date12");
	r = get(cred, NULL, "https://y.example/.default", tok, sizeof(tok), &exp);
	now = kb_now_unix();
	tap_ok(r == 0 && exp >= now + 3590 && exp <= now + 3600,
	    "expires_on as Windows' \"M/D/YYYY h:mm:ss AM +00:00\" (%lld from now)",
	    (long long)(exp - now));
	cfg_set_str("app_service_expires_on", NULL);
	kb_kv_credential_free(cred);
	cred = NULL;

	cfg_fail("app-503", "app", 503, 1);
	r = mi_cred(KB_KV_MI_APP_SERVICE, UAMI, appsvc, hdr, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	rs = recs("app");
	tap_ok(r == 0 && strcmp(jstr(last_rec(rs), "client_id") ?: "", UAMI) == 0,
	    "a 503 retried, and a user-assigned identity: %s",
	    r ? kb_error_detail(r) : "ok");
	cJSON_Delete(rs);
	kb_kv_credential_free(cred);
	cred = NULL;

	r = mi_cred(KB_KV_MI_APP_SERVICE, NULL, appsvc, bad, 0, &cred);
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == KB_ERR_DENIED && !has(kb_error_detail(r), "wrong-header"),
	    "a wrong identity header: DENIED, header not in the sentence: %s",
	    kb_error_detail(r));
	kb_kv_credential_free(cred);
	cred = NULL;

	/* From IDENTITY_ENDPOINT and IDENTITY_HEADER, kind auto. */
	setenv("IDENTITY_ENDPOINT", appsvc, 1);
	setenv("IDENTITY_HEADER", ID_HEADER, 1);
	r = mi_cred(KB_KV_MI_AUTO, NULL, NULL, NULL, 0, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred),
	    "managed-identity-app-service") == 0, "auto: App Service from its "
	    "environment variables");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_is_int(r, 0, "and a token");
	kb_kv_credential_free(cred);
	cred = NULL;
	setenv("IDENTITY_ENDPOINT", "http://192.0.2.1/msi/token", 1);
	r = mi_cred(KB_KV_MI_AUTO, NULL, NULL, NULL, 0, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "App Service identity "
	    "endpoint"), "App Service on plain http off loopback: %s",
	    kb_error_detail(r));
	unsetenv("IDENTITY_ENDPOINT");
	unsetenv("IDENTITY_HEADER");
	r = mi_cred(KB_KV_MI_APP_SERVICE, NULL, NULL, NULL, 0, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "IDENTITY_HEADER"),
	    "App Service without its endpoint: %s", kb_error_detail(r));
	r = mi_cred(KB_KV_MI_AUTO, NULL, imds, NULL, 0, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred),
	    "managed-identity-imds") == 0, "auto without App Service: IMDS");
	kb_kv_credential_free(cred);
 out:
	kb_secret_free(&hdr);
	kb_secret_free(&bad);
}

/* ------------------------------------------------------------- environment */

static void
env_clear(void)
{
	static const char *const v[] = { "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
		"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", NULL };
	int i;

	for (i = 0; v[i] != NULL; i++)
		unsetenv(v[i]);
}

static void
t_env(void)
{
	struct kb_kv_env_options eo;
	kb_kv_credential *cred = NULL;
	char tok[128];
	int r;

	memset(&eo, 0, sizeof(eo));
	eo.ca_file = ca;
	env_clear();
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "no Azure credential "
	    "in the environment"), "nothing set: %s", kb_error_detail(r));
	setenv("AZURE_CLIENT_SECRET", SECRET, 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "AZURE_TENANT_ID") &&
	    !has(kb_error_detail(r), SECRET), "a secret without tenant and client "
	    "id: %s", kb_error_detail(r));
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", SECRET_APP, 1);
	setenv("AZURE_CLIENT_CERTIFICATE_PATH", path_in("client.pem"), 1);
	setenv("AZURE_AUTHORITY_HOST", authority, 1);
	new_token_value();
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred), "client-secret") == 0,
	    "tenant, client id, secret (and a certificate): the client secret first");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0,
	    "a token from AZURE_AUTHORITY_HOST: %s", r ? kb_error_detail(r) : "ok");
	kb_kv_credential_free(cred);
	cred = NULL;

	unsetenv("AZURE_CLIENT_SECRET");
	setenv("AZURE_CLIENT_ID", CERT_APP, 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred), "client-certificate") == 0,
	    "AZURE_CLIENT_CERTIFICATE_PATH: a certificate with the PEM's key");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0 && strcmp(tok, token_value) == 0, "and a token: %s",
	    r ? kb_error_detail(r) : "ok");
	kb_kv_credential_free(cred);
	cred = NULL;
	setenv("AZURE_CLIENT_CERTIFICATE_PATH", path_in("client.crt"), 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "no private key"),
	    "a certificate path without the key: %s", kb_error_detail(r));

	unsetenv("AZURE_CLIENT_CERTIFICATE_PATH");
	setenv("AZURE_FEDERATED_TOKEN_FILE", path_in("fed.token"), 1);
	write_file(path_in("fed.token"), "fed-token-A", 0644);
	setenv("AZURE_CLIENT_ID", FED_APP, 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred), "workload-identity") == 0,
	    "AZURE_FEDERATED_TOKEN_FILE: workload identity");
	r = r ? r : get(cred, NULL, SCOPE, tok, sizeof(tok), NULL);
	tap_ok(r == 0, "and a token: %s", r ? kb_error_detail(r) : "ok");
	kb_kv_credential_free(cred);
	cred = NULL;

	setenv("AZURE_AUTHORITY_HOST", "http://login.example", 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == KB_ERR_CONFIG && has(kb_error_detail(r), "AZURE_AUTHORITY_HOST"),
	    "an http AZURE_AUTHORITY_HOST: %s", kb_error_detail(r));
	unsetenv("AZURE_AUTHORITY_HOST");

	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	setenv("IDENTITY_ENDPOINT", appsvc, 1);
	setenv("IDENTITY_HEADER", ID_HEADER, 1);
	r = kb_kv_credential_from_env(&eo, &cred);
	tap_ok(r == 0 && strcmp(kb_kv_credential_kind(cred),
	    "managed-identity-app-service") == 0,
	    "IDENTITY_ENDPOINT and IDENTITY_HEADER: App Service managed identity");
	kb_kv_credential_free(cred);
	env_clear();
}

int
main(void)
{
	const char *port = getenv("OAS_PORT"), *hport = getenv("OAS_HTTP_PORT");
	char *text = NULL;
	size_t len = 0;

	dir = getenv("OAS_DIR");
	if (dir == NULL || port == NULL || hport == NULL)
		return tap_skip_all("run through t-cred.sh");
	snprintf(authority, sizeof(authority), "https://127.0.0.1:%s", port);
	snprintf(imds, sizeof(imds), "http://127.0.0.1:%s", hport);
	snprintf(appsvc, sizeof(appsvc), "http://127.0.0.1:%s/msi/token", hport);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cfgpath, sizeof(cfgpath), "%s/config.json", dir);
	snprintf(recpath, sizeof(recpath), "%s/record.jsonl", dir);
	snprintf(tokpath, sizeof(tokpath), "%s/access.token", dir);
	if (kb_file_read(cfgpath, 1 << 16, &text, &len) != 0 ||
	    (cfg = cJSON_Parse(text)) == NULL)
		return tap_skip_all("no server config");
	free(text);

	t_clouds();
	t_client_secret();
	t_cert_soft();
	t_cert_hsm();
	t_workload();
	t_imds();
	t_app_service();
	t_env();
	cJSON_Delete(cfg);
	return tap_done();
}
