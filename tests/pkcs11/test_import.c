/*
 * test_import.c: kb_p11_import_rsa / kb_p11_import_ec on a fresh SoftHSM2
 * token.  Keys made by OpenSSL become token objects; the checks are done
 * by others than the code under test: OpenSSL verifies the token's
 * signatures with the original key, the token itself (raw C_* calls)
 * says the private key is sensitive, not extractable now and never
 * again, and refuses to show its private parts; pkcs11-tool lists the
 * pair.  Bad material (d that does not match, a point off the curve,
 * wrong sizes, missing CRT parts) is refused before anything is created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <p11-kit/pkcs11.h>

#include "p11test.h"
#include "tap.h"

static struct p11t X;

static int
skip_all(const char *why)
{
	(void)tap_skip_all(why);
	return 0;
}

/* One big-endian BIGNUM parameter of pk into a new secret (pad: width). */
static struct kb_secret *
bn_param(EVP_PKEY *pk, const char *name, size_t pad)
{
	BIGNUM *b = NULL;
	struct kb_secret *s = NULL;
	size_t n;

	if (EVP_PKEY_get_bn_param(pk, name, &b) != 1)
		return NULL;
	n = pad ? pad : (size_t)BN_num_bytes(b);
	if (kb_secret_new(n, &s) == 0 &&
	    BN_bn2binpad(b, s->data, (int)n) != (int)n)
		kb_secret_free(&s);
	BN_clear_free(b);
	return s;
}

struct rsa_mat {
	struct kb_secret *n, *e, *d, *p, *q, *dp, *dq, *qi;
};

static void
rsa_mat_free(struct rsa_mat *m)
{
	kb_secret_free(&m->n);
	kb_secret_free(&m->e);
	kb_secret_free(&m->d);
	kb_secret_free(&m->p);
	kb_secret_free(&m->q);
	kb_secret_free(&m->dp);
	kb_secret_free(&m->dq);
	kb_secret_free(&m->qi);
}

static int
rsa_mat(EVP_PKEY *pk, struct rsa_mat *m)
{
	memset(m, 0, sizeof(*m));
	m->n = bn_param(pk, OSSL_PKEY_PARAM_RSA_N, 0);
	m->e = bn_param(pk, OSSL_PKEY_PARAM_RSA_E, 0);
	m->d = bn_param(pk, OSSL_PKEY_PARAM_RSA_D, 0);
	m->p = bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, 0);
	m->q = bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, 0);
	m->dp = bn_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0);
	m->dq = bn_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0);
	m->qi = bn_param(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
	return m->n && m->e && m->d && m->p && m->q && m->dp && m->dq && m->qi ?
	    0 : -1;
}

static void
rsa_parts(const struct rsa_mat *m, struct kb_p11_rsa_parts *pp)
{
	memset(pp, 0, sizeof(*pp));
	pp->n = m->n->data;
	pp->n_len = m->n->len;
	pp->e = m->e->data;
	pp->e_len = m->e->len;
	pp->d = m->d;
	pp->p = m->p;
	pp->q = m->q;
	pp->dp = m->dp;
	pp->dq = m->dq;
	pp->qi = m->qi;
}

static void
spec_for(struct kb_p11_keyspec *s, enum kb_p11_key_type type,
    enum kb_p11_curve curve, const char *label, const unsigned char *id)
{
	memset(s, 0, sizeof(*s));
	s->type = type;
	s->curve = curve;
	s->label = label;
	s->id = id;
	s->id_len = 16;
	s->token = true;
	s->ops = type == KB_P11_RSA ? KB_P11_OP_SIGN | KB_P11_OP_VERIFY |
	    KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT : KB_P11_OP_SIGN | KB_P11_OP_VERIFY;
}

/* Objects with this label on the token (any class). */
static size_t
count_label(const char *label)
{
	struct kb_p11_uri f;
	kb_p11_key **keys = NULL;
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	f.object = (char *)label;
	if (kb_p11_find_keys(X.t, &f, &keys, &n) != 0)
		return (size_t)-1;
	kb_p11_keys_free(keys, n);
	return n;
}

/* What the token itself says about the private object (raw calls). */
static void
raw_checks(kb_p11_key *k, const char *what, CK_ATTRIBUTE_TYPE secret_attr)
{
	CK_FUNCTION_LIST_PTR fl = kb_p11_module_function_list(X.m);
	CK_SESSION_HANDLE h = 0;
	CK_BBOOL t = CK_TRUE, ext = CK_TRUE, never = CK_TRUE, sens = CK_FALSE;
	CK_BBOOL asens = CK_TRUE;
	unsigned long priv = 0, pub = 0;
	unsigned char buf[1024];
	CK_ATTRIBUTE get[4] = {
		{ CKA_EXTRACTABLE, &ext, sizeof(ext) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_ALWAYS_SENSITIVE, &asens, sizeof(asens) },
	};
	CK_ATTRIBUTE setx = { CKA_EXTRACTABLE, &t, sizeof(t) };
	CK_ATTRIBUTE val = { secret_attr, buf, sizeof(buf) };
	CK_RV rv;

	kb_p11_key_handles(k, &priv, &pub);
	tap_ok(priv != 0 && pub != 0, "%s: a private and a public object", what);
	if (fl->C_OpenSession(kb_p11_token_slot(X.t), CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &h) != CKR_OK) {
		tap_ok(0, "%s: open a raw session", what);
		return;
	}
	rv = fl->C_GetAttributeValue(h, priv, get, 4);
	tap_ok(rv == CKR_OK, "%s: C_GetAttributeValue of the flags (rv 0x%lx)", what,
	    (unsigned long)rv);
	tap_ok(ext == CK_FALSE, "%s: CKA_EXTRACTABLE is false", what);
	tap_ok(never == CK_FALSE, "%s: CKA_NEVER_EXTRACTABLE is false, as PKCS#11 "
	    "says for a key made with C_CreateObject", what);
	tap_ok(sens == CK_TRUE, "%s: CKA_SENSITIVE is true", what);
	tap_ok(asens == CK_FALSE, "%s: CKA_ALWAYS_SENSITIVE is false (the value "
	    "was known outside the token)", what);
	rv = fl->C_SetAttributeValue(h, priv, &setx, 1);
	tap_ok(rv != CKR_OK, "%s: the token refuses to make it extractable "
	    "(rv 0x%lx)", what, (unsigned long)rv);
	rv = fl->C_GetAttributeValue(h, priv, &val, 1);
	tap_ok(rv == CKR_ATTRIBUTE_SENSITIVE, "%s: the private value cannot be "
	    "read (rv 0x%lx)", what, (unsigned long)rv);
	fl->C_CloseSession(h);
}

/* OpenSSL verifies a token signature over digest with the original key. */
static int
ossl_verify(EVP_PKEY *pk, int pss, const EVP_MD *md, const unsigned char *dg,
    size_t dl, const unsigned char *sig, size_t sl)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	int ok = 0;

	if (c != NULL && EVP_PKEY_verify_init(c) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
	    (!pss || (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1)))
		ok = EVP_PKEY_verify(c, sig, sl, dg, dl) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

static unsigned char *
rs_to_der(const unsigned char *sig, size_t n, size_t *derlen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(n / 2), NULL);
	BIGNUM *s = BN_bin2bn(sig + n / 2, (int)(n / 2), NULL);
	unsigned char *der = NULL;
	int l;

	ECDSA_SIG_set0(es, r, s);
	l = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	*derlen = l > 0 ? (size_t)l : 0;
	return der;
}

/*
 * pkcs11-tool's view of the imported RSA pair: two objects labelled
 * imp-rsa, the private one "sensitive" but neither "extractable" nor
 * "never extractable" nor "local".  The PIN goes through the child's
 * environment (pkcs11-tool 0.23 reads stdin only from a terminal).
 */
static void
tool_check(void)
{
	char out[400], line[512], access[512] = "";
	bool in_priv = false, mine = false;
	int objs = 0, rc;
	FILE *p;

	if (!p11t_have("pkcs11-tool")) {
		tap_ok(1, "# SKIP pkcs11-tool missing");
		return;
	}
	rc = p11t_tool_list(&X, X.module, "tool.out", out, sizeof(out), NULL, 0);
	tap_ok(rc == 0, "pkcs11-tool -O --login ran");
	if ((p = fopen(out, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), p) != NULL) {
		if (line[0] != ' ' && line[0] != '\t') {
			in_priv = strncmp(line, "Private Key Object", 18) == 0;
			mine = false;
			continue;
		}
		if (strstr(line, "label:") != NULL) {
			mine = strstr(line, "imp-rsa") != NULL &&
			    strstr(line, "imp-rsa-") == NULL;
			objs += mine;
		}
		if (in_priv && mine && strstr(line, "Access:") != NULL)
			snprintf(access, sizeof(access), "%s", line);
	}
	fclose(p);
	tap_is_int(objs, 2, "pkcs11-tool lists two objects labelled imp-rsa");
	tap_ok(strstr(access, "sensitive") != NULL &&
	    strstr(access, "never extractable") == NULL &&
	    strstr(access, "always sensitive") == NULL &&
	    strstr(access, "local") == NULL &&
	    strstr(access, ", extractable") == NULL,
	    "pkcs11-tool: the private key is sensitive, not extractable, not "
	    "never-extractable, not local (%.*s)", (int)strcspn(access, "\n"),
	    access);
}

static void
test_rsa(void)
{
	static const unsigned char id[16] = { 0x71, 1 };
	static const unsigned char id_bad[16] = { 0x71, 2 };
	struct kb_p11_keyspec s;
	struct kb_p11_rsa_parts pp;
	struct rsa_mat m;
	struct kb_secret *saved = NULL;
	kb_p11_key *k = NULL;
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	unsigned char dg[32], *sig = NULL, *ct = NULL, *pt = NULL;
	size_t sl = 0, cl = 0, pl = 0;
	int r;

	tap_ok(pk != NULL && rsa_mat(pk, &m) == 0, "OpenSSL makes an RSA-2048 key");
	if (pk == NULL)
		return;
	rsa_parts(&m, &pp);
	spec_for(&s, KB_P11_RSA, 0, "imp-rsa", id);
	r = kb_p11_import_rsa(X.t, &s, &pp, &k);
	tap_is_int(r, 0, "import the RSA key (%s)", r ? kb_error_detail(r) : "ok");
	if (r == 0) {
		tap_is_int(kb_p11_key_bits(k), 2048, "2048 bits");
		tap_ok(kb_p11_key_is_complete(k), "the pair is complete");
		raw_checks(k, "rsa", CKA_PRIVATE_EXPONENT);
		memset(dg, 0x5a, sizeof(dg));
		r = kb_p11_sign_digest(k, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, dg,
		    sizeof(dg), &sig, &sl);
		tap_ok(r == 0 && ossl_verify(pk, 1, EVP_sha256(), dg, sizeof(dg),
		    sig, sl), "OpenSSL verifies the token's PS256 signature with the "
		    "original public key");
		free(sig);
		sig = NULL;
		r = kb_p11_sign_digest(k, KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256, dg,
		    sizeof(dg), &sig, &sl);
		tap_ok(r == 0 && ossl_verify(pk, 0, EVP_sha256(), dg, sizeof(dg),
		    sig, sl), "OpenSSL verifies the token's RS256 signature");
		free(sig);
		/* The original key encrypts; the imported key decrypts. */
		{
			EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
			static const unsigned char msg[] = "to the imported key";
			unsigned char buf[512];
			size_t bl = sizeof(buf);

			if (c != NULL && EVP_PKEY_encrypt_init(c) == 1 &&
			    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
			    EVP_PKEY_encrypt(c, buf, &bl, msg, sizeof(msg)) == 1) {
				ct = malloc(bl);
				if (ct != NULL) {
					memcpy(ct, buf, bl);
					cl = bl;
				}
			}
			EVP_PKEY_CTX_free(c);
			r = kb_p11_rsa_oaep_decrypt(k, KB_P11_SHA1, ct, cl, &pt, &pl);
			tap_ok(r == 0 && pl == sizeof(msg) && memcmp(pt, msg, pl) == 0,
			    "the token decrypts what OpenSSL encrypted to the original key");
			free(ct);
			if (pt != NULL)
				kb_wipe(pt, pl);
			free(pt);
		}
		tool_check();
	}
	kb_p11_key_free(k);
	k = NULL;

	/* A d that does not belong to n and e: refused, nothing created. */
	spec_for(&s, KB_P11_RSA, 0, "imp-rsa-bad", id_bad);
	saved = m.d;
	{
		struct kb_secret *d2 = NULL;

		if (kb_secret_from(saved->data, saved->len, &d2) == 0) {
			d2->data[d2->len - 1] ^= 0x02;
			pp.d = d2;
			r = kb_p11_import_rsa(X.t, &s, &pp, &k);
			tap_is_int(r, KB_ERR_INVALID, "a changed d is refused");
			kb_secret_free(&d2);
		}
	}
	pp.d = saved;
	{
		struct kb_secret *dp2 = NULL;

		if (kb_secret_from(m.dp->data, m.dp->len, &dp2) == 0) {
			dp2->data[dp2->len - 1] ^= 0x01;
			pp.dp = dp2;
			r = kb_p11_import_rsa(X.t, &s, &pp, &k);
			tap_is_int(r, KB_ERR_INVALID, "a changed dp is refused");
			kb_secret_free(&dp2);
		}
	}
	pp.dp = m.dp;
	pp.qi = NULL;
	r = kb_p11_import_rsa(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "a key without qi is refused");
	pp.qi = m.qi;
	pp.n_len = m.n->len - 1;
	r = kb_p11_import_rsa(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "a truncated n is refused");
	pp.n_len = m.n->len;
	s.extractable = true;
	r = kb_p11_import_rsa(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "an extractable import is refused");
	tap_is_int(count_label("imp-rsa-bad"), 0, "no object was created by the "
	    "refused imports");
	rsa_mat_free(&m);
	EVP_PKEY_free(pk);
}

static void
test_ec(const char *group, enum kb_p11_curve curve, enum kb_p11_hash h,
    const EVP_MD *md, size_t dlen, unsigned char idb)
{
	unsigned char id[16] = { 0x72, idb }, id_bad[16] = { 0x73, idb };
	char label[32], bad_label[32];
	struct kb_p11_keyspec s;
	struct kb_p11_ec_parts pp;
	struct kb_secret *d = NULL, *x = NULL, *y = NULL;
	size_t len = curve == KB_P11_P256 ? 32 : curve == KB_P11_P384 ? 48 : 66;
	unsigned char dg[64], *sig = NULL, *der = NULL;
	size_t sl = 0, dl = 0;
	kb_p11_key *k = NULL;
	EVP_PKEY *pk = EVP_EC_gen(group);
	int r;

	snprintf(label, sizeof(label), "imp-%s", group);
	snprintf(bad_label, sizeof(bad_label), "imp-bad-%s", group);
	x = pk ? bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, len) : NULL;
	y = pk ? bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, len) : NULL;
	d = pk ? bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, len) : NULL;
	tap_ok(pk && x && y && d, "OpenSSL makes an EC %s key", group);
	if (!(pk && x && y && d))
		goto out;
	memset(&pp, 0, sizeof(pp));
	pp.x = x->data;
	pp.x_len = len;
	pp.y = y->data;
	pp.y_len = len;
	pp.d = d;
	spec_for(&s, KB_P11_EC, curve, label, id);
	r = kb_p11_import_ec(X.t, &s, &pp, &k);
	tap_is_int(r, 0, "import the %s key (%s)", group, r ? kb_error_detail(r) : "ok");
	if (r == 0) {
		raw_checks(k, group, CKA_VALUE);
		memset(dg, 0xa5, sizeof(dg));
		r = kb_p11_sign_digest(k, KB_P11_SIG_ECDSA, h, dg, dlen, &sig, &sl);
		der = r == 0 ? rs_to_der(sig, sl, &dl) : NULL;
		tap_ok(der != NULL && ossl_verify(pk, 0, md, dg, dlen, der, dl),
		    "OpenSSL verifies the token's %s ECDSA signature with the original "
		    "public key", group);
		free(sig);
		OPENSSL_free(der);
		{
			char *jwk = NULL, *xb = kb_b64url_encode(x->data, len);

			tap_ok(kb_p11_public_jwk(k, &jwk) == 0 && xb != NULL &&
			    strstr(jwk, xb) != NULL, "%s: the public JWK carries the "
			    "imported x", group);
			free(jwk);
			free(xb);
		}
	}
	kb_p11_key_free(k);
	k = NULL;
	spec_for(&s, KB_P11_EC, curve, bad_label, id_bad);
	/* A point off the curve. */
	y->data[len - 1] ^= 0x01;
	r = kb_p11_import_ec(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "%s: a point off the curve is refused", group);
	y->data[len - 1] ^= 0x01;
	/* d of another key. */
	d->data[len - 1] ^= 0x01;
	r = kb_p11_import_ec(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "%s: a d that does not give the point is "
	    "refused", group);
	d->data[len - 1] ^= 0x01;
	pp.x_len = len - 1;
	r = kb_p11_import_ec(X.t, &s, &pp, &k);
	tap_is_int(r, KB_ERR_INVALID, "%s: a short x is refused", group);
	pp.x_len = len;
	tap_is_int(count_label(bad_label), 0, "%s: no object was created by the "
	    "refused imports", group);
 out:
	kb_secret_free(&x);
	kb_secret_free(&y);
	kb_secret_free(&d);
	EVP_PKEY_free(pk);
}

int
main(void)
{
	struct stat st;
	int r;

	if (stat(p11t_softhsm(), &st) != 0)
		return skip_all("SoftHSM2 module not installed");
	if (p11t_prepare(&X) != 0)
		return skip_all("cannot create a temporary token directory");
	r = p11t_token(&X, p11t_softhsm(), "kb-import");
	tap_is_int(r, 0, "fresh SoftHSM token (%s)", r ? kb_error_detail(r) : "ok");
	if (r == 0) {
		test_rsa();
		test_ec("P-256", KB_P11_P256, KB_P11_SHA256, EVP_sha256(), 32, 1);
		test_ec("P-384", KB_P11_P384, KB_P11_SHA384, EVP_sha384(), 48, 2);
		test_ec("P-521", KB_P11_P521, KB_P11_SHA512, EVP_sha512(), 64, 3);
	}
	p11t_cleanup(&X);
	return tap_done();
}
