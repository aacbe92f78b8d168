/*
 * pubkey.c: the public half of RSA and EC keys as JWK and PEM.
 *
 * The EVP_PKEY is built with OpenSSL 3's EVP_PKEY_fromdata from
 * CKA_MODULUS / CKA_PUBLIC_EXPONENT or CKA_EC_PARAMS / CKA_EC_POINT, read
 * through our own session pool.  libp11 was not used: it would dlopen,
 * C_Initialize and (on its own schedule) C_Finalize the same module a
 * second time in this process, with its own sessions and login state
 * beside our pool, only to read four public attributes.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "internal.h"

/* DER OIDs (RFC 5480 section 2.1.1.1) as CKA_EC_PARAMS namedCurve. */
static const unsigned char oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };

int
kb_p11_curve_params(enum kb_p11_curve c, const unsigned char **p, size_t *n)
{
	switch (c) {
	case KB_P11_P256: *p = oid_p256; *n = sizeof(oid_p256); return 0;
	case KB_P11_P384: *p = oid_p384; *n = sizeof(oid_p384); return 0;
	case KB_P11_P521: *p = oid_p521; *n = sizeof(oid_p521); return 0;
	}
	return kb_error_set(KB_ERR_INVALID, "EC keys use P-256, P-384 or P-521");
}

int
kb_p11_curve_from_params(const unsigned char *p, size_t n, enum kb_p11_curve *c)
{
	if (n == sizeof(oid_p256) && memcmp(p, oid_p256, n) == 0)
		*c = KB_P11_P256;
	else if (n == sizeof(oid_p384) && memcmp(p, oid_p384, n) == 0)
		*c = KB_P11_P384;
	else if (n == sizeof(oid_p521) && memcmp(p, oid_p521, n) == 0)
		*c = KB_P11_P521;
	else
		return kb_error_set(KB_ERR_UNSUPPORTED, "the key's curve is not P-256, "
		    "P-384 or P-521");
	return 0;
}

unsigned
kb_p11_curve_bytes(enum kb_p11_curve c)
{
	switch (c) {
	case KB_P11_P256: return 32;
	case KB_P11_P384: return 48;
	case KB_P11_P521: return 66;
	}
	return 0;
}

unsigned
kb_p11_curve_bits(enum kb_p11_curve c)
{
	switch (c) {
	case KB_P11_P256: return 256;
	case KB_P11_P384: return 384;
	case KB_P11_P521: return 521;
	}
	return 0;
}

static const char *
curve_group(enum kb_p11_curve c)
{
	return c == KB_P11_P256 ? "prime256v1" : c == KB_P11_P384 ? "secp384r1" : "secp521r1";
}

static const char *
curve_jwk(enum kb_p11_curve c)
{
	return c == KB_P11_P256 ? "P-256" : c == KB_P11_P384 ? "P-384" : "P-521";
}

/*
 * CKA_EC_POINT: v2.40 says DER OCTET STRING holding the X9.62 point
 * (SoftHSM does that); some tokens give the raw point.  Accept both,
 * telling them apart by exact length, and only uncompressed points.
 */
static int
ec_point_unwrap(const unsigned char *p, size_t n, unsigned flen,
    const unsigned char **pt)
{
	size_t raw = 1 + 2 * (size_t)flen, hdr;

	if (n == raw && p[0] == 0x04) {
		*pt = p;
		return 0;
	}
	if (n < 2 || p[0] != 0x04)
		goto bad;
	if (p[1] < 0x80) {
		hdr = 2;
		if (p[1] != raw)
			goto bad;
	} else if (p[1] == 0x81) {
		hdr = 3;
		if (n < 3 || p[2] != raw || raw < 0x80)
			goto bad;
	} else
		goto bad;
	if (n != hdr + raw || p[hdr] != 0x04)
		goto bad;
	*pt = p + hdr;
	return 0;
bad:
	return kb_error_set(KB_ERR_PROTOCOL, "the token gave an EC point keybridge "
	    "cannot read (not an uncompressed point of the key's curve)");
}

struct pub_ctx {
	kb_p11_key *k;
	unsigned char *a, *b;     /* n, e  or  params, point */
	size_t alen, blen;
};

static int
pub_fn(struct p11s *s, void *arg)
{
	struct pub_ctx *c = arg;
	kb_p11_key *k = c->k;
	CK_OBJECT_HANDLE h = k->pub ? k->pub : k->priv;
	int r;

	free(c->a);
	free(c->b);
	c->a = c->b = NULL;
	if (k->type == KB_P11_RSA) {
		if ((r = kb_p11_read_attr(s, h, CKA_MODULUS, 1024, &c->a, &c->alen)) != 0)
			return r;
		return kb_p11_read_attr(s, h, CKA_PUBLIC_EXPONENT, 64, &c->b, &c->blen);
	}
	if (k->pub == 0)
		return kb_error_set(KB_ERR_NOT_FOUND, "the public half of EC key '%s' "
		    "is not on the token", k->label);
	if ((r = kb_p11_read_attr(s, h, CKA_EC_PARAMS, 256, &c->a, &c->alen)) != 0)
		return r;
	return kb_p11_read_attr(s, h, CKA_EC_POINT, 256, &c->b, &c->blen);
}

static void
strip_zeros(const unsigned char **p, size_t *n)
{
	while (*n > 1 && **p == 0) {
		(*p)++;
		(*n)--;
	}
}

/* Reads the public attributes and builds the EVP_PKEY and JWK members. */
static int
load_public(kb_p11_key *k, EVP_PKEY **pkey, char **jwk)
{
	struct pub_ctx c;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	char *x = NULL, *y = NULL;
	struct kb_buf j;
	int r;

	kb_buf_init(&j, 8192);
	memset(&c, 0, sizeof(c));
	c.k = k;
	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if (k->type != KB_P11_RSA && k->type != KB_P11_EC)
		return kb_error_set(KB_ERR_INVALID, "key '%s' is a %s key and has no "
		    "public half", k->label, kb_p11_key_type_name(k->type));
	if ((r = kb_p11_with_session(k->t, false, pub_fn, &c)) != 0)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (k->type == KB_P11_RSA) {
		const unsigned char *np = c.a, *ep = c.b;
		size_t nl = c.alen, el = c.blen;

		if (nl == 0 || el == 0) {
			r = kb_error_set(KB_ERR_PROTOCOL, "the token gave an empty RSA "
			    "modulus or exponent");
			goto out;
		}
		strip_zeros(&np, &nl);
		strip_zeros(&ep, &el);
		if ((bn_n = BN_bin2bn(np, (int)nl, NULL)) == NULL ||
		    (bn_e = BN_bin2bn(ep, (int)el, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		x = kb_b64url_encode(np, nl);
		y = kb_b64url_encode(ep, el);
		if (x == NULL || y == NULL ||
		    kb_buf_appendf(&j, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", x, y) != 0) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	} else {
		enum kb_p11_curve cv;
		const unsigned char *pt = NULL;
		unsigned fl;

		if ((r = kb_p11_curve_from_params(c.a, c.alen, &cv)) != 0)
			goto out;
		fl = kb_p11_curve_bytes(cv);
		if ((r = ec_point_unwrap(c.b, c.blen, fl, &pt)) != 0)
			goto out;
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    curve_group(cv), 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
		    1 + 2 * (size_t)fl)) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		x = kb_b64url_encode(pt + 1, fl);
		y = kb_b64url_encode(pt + 1 + fl, fl);
		if (x == NULL || y == NULL ||
		    kb_buf_appendf(&j, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
		    curve_jwk(cv), x, y) != 0) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, k->type == KB_P11_RSA ? "RSA" : "EC",
	    NULL)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* fromdata decodes the point, so a point off the curve is refused here. */
	if (EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		r = kb_error_set(KB_ERR_PROTOCOL, "the public key of '%s' given by the "
		    "token is not a valid %s key", k->label, kb_p11_key_type_name(k->type));
		goto out;
	}
	if (pkey != NULL) {
		*pkey = pk;
		pk = NULL;
	}
	if (jwk != NULL)
		*jwk = kb_buf_steal(&j, NULL);
	r = 0;
out:
	kb_buf_free(&j);
	free(x);
	free(y);
	free(c.a);
	free(c.b);
	BN_free(bn_n);
	BN_free(bn_e);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
kb_p11_public_evp(kb_p11_key *k, EVP_PKEY **out)
{
	return load_public(k, out, NULL);
}

int
kb_p11_public_jwk(kb_p11_key *k, char **json)
{
	char *j = NULL;
	int r;

	if (json == NULL)
		return kb_error_set(KB_ERR_INVALID, "no output");
	if ((r = load_public(k, NULL, &j)) != 0)
		return r;
	if (j == NULL)
		return KB_ERR_ALLOC;
	*json = j;
	return 0;
}

int
kb_p11_public_pem(kb_p11_key *k, char **pem)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *p = NULL, *out = NULL;
	long n;
	int r;

	if (pem == NULL)
		return kb_error_set(KB_ERR_INVALID, "no output");
	if ((r = load_public(k, &pk, NULL)) != 0)
		return r;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1 ||
	    (n = BIO_get_mem_data(bio, &p)) <= 0 ||
	    (out = malloc((size_t)n + 1)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*pem = out;
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return r;
}
