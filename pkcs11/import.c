/*
 * import.c: checking RSA and EC key material with OpenSSL before it
 * becomes token objects (key.c makes the objects).
 *
 * A token takes whatever C_CreateObject is given: SoftHSM 2.6 accepts an
 * RSA key whose d does not match n and e, or an EC point off the curve,
 * and the failure shows up only at the first signature.  So the parts
 * are assembled into an EVP_PKEY and run through EVP_PKEY_check (public,
 * private and pairwise checks: for RSA n = p*q, d*e = 1 mod lambda(n)
 * and the CRT parts, SP 800-56B; for EC the point on the curve and
 * d*G = Q).  Private integers go into BN_secure_new() numbers, so
 * OSSL_PARAM_BLD keeps them in its secure block, which OSSL_PARAM_free
 * wipes; OpenSSL's RSA and EC keys clear theirs when freed.  No message
 * here ever holds a byte of the key.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "internal.h"

/* RSA 4096 is 512 bytes; e fits in 8 (Key Vault's keys use 65537). */
#define RSA_PART_MAX 512
#define RSA_E_MAX 8

static const unsigned char *
strip(const unsigned char *p, size_t *n)
{
	while (*n > 0 && p[0] == 0) {
		p++;
		(*n)--;
	}
	return p;
}

static BIGNUM *
bn_secret(const struct kb_secret *s)
{
	const unsigned char *p;
	size_t n;
	BIGNUM *b;

	if (s == NULL || s->data == NULL)
		return NULL;
	n = s->len;
	p = strip(s->data, &n);
	if (n == 0 || n > RSA_PART_MAX || (b = BN_secure_new()) == NULL)
		return NULL;
	if (BN_bin2bn(p, (int)n, b) == NULL) {
		BN_clear_free(b);
		return NULL;
	}
	return b;
}

/* Build a key of type name from params and run EVP_PKEY_check on it. */
static int
fromdata_check(const char *name, OSSL_PARAM *params, const char *what,
    EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = NULL, *cctx = NULL;
	EVP_PKEY *pk = NULL;
	int r;

	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1) {
		r = kb_error_set(KB_ERR_CRYPTO, "OpenSSL cannot check %s keys", name);
		goto out;
	}
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params) != 1) {
		r = kb_error_set(KB_ERR_INVALID, "the %s is not a valid key", what);
		goto out;
	}
	if ((cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (EVP_PKEY_check(cctx) != 1) {
		r = kb_error_set(KB_ERR_INVALID, "the %s does not hold together: "
		    "its private and public parts do not form one valid key", what);
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
 out:
	/* OpenSSL's reasons may quote numbers: never into our messages. */
	ERR_clear_error();
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
kb_p11_rsa_parts_check(const struct kb_p11_rsa_parts *pp, unsigned *bits)
{
	const struct kb_secret *sec[6];
	static const char *const names[6] = {
		OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1,
		OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
		OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1
	};
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = NULL, *e = NULL, *b[6] = { NULL };
	EVP_PKEY *pk = NULL;
	const unsigned char *np, *ep;
	size_t nl, el, i;
	int r, kbits;

	if (pp == NULL || pp->n == NULL || pp->e == NULL)
		return kb_error_set(KB_ERR_INVALID, "an RSA key needs n and e");
	sec[0] = pp->d;
	sec[1] = pp->p;
	sec[2] = pp->q;
	sec[3] = pp->dp;
	sec[4] = pp->dq;
	sec[5] = pp->qi;
	for (i = 0; i < 6; i++)
		if (sec[i] == NULL || sec[i]->len == 0)
			return kb_error_set(KB_ERR_INVALID, "an RSA private key needs "
			    "d, p, q, dp, dq and qi");
	nl = pp->n_len;
	el = pp->e_len;
	np = strip(pp->n, &nl);
	ep = strip(pp->e, &el);
	if (nl == 0 || nl > RSA_PART_MAX || el == 0 || el > RSA_E_MAX)
		return kb_error_set(KB_ERR_INVALID, "the RSA key's n or e has a "
		    "size no RSA key of 2048 to 4096 bits has");
	if ((n = BN_bin2bn(np, (int)nl, NULL)) == NULL ||
	    (e = BN_bin2bn(ep, (int)el, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < 6; i++) {
		if ((b[i] = bn_secret(sec[i])) == NULL) {
			r = kb_error_set(KB_ERR_INVALID, "a private part of the RSA "
			    "key is zero or longer than %d bytes", RSA_PART_MAX);
			goto out;
		}
	}
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < 6; i++)
		if (!OSSL_PARAM_BLD_push_BN(bld, names[i], b[i])) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = fromdata_check("RSA", params, "RSA key", &pk)) != 0)
		goto out;
	kbits = EVP_PKEY_get_bits(pk);
	if (kbits != 2048 && kbits != 3072 && kbits != 4096) {
		r = kb_error_set(KB_ERR_INVALID, "the RSA key has %d bits; keys of "
		    "2048, 3072 or 4096 bits can be imported", kbits);
		goto out;
	}
	*bits = (unsigned)kbits;
	r = 0;
 out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	for (i = 0; i < 6; i++)
		BN_clear_free(b[i]);
	BN_free(n);
	BN_free(e);
	return r;
}

int
kb_p11_ec_parts_check(enum kb_p11_curve curve, const struct kb_p11_ec_parts *pp)
{
	const char *group;
	unsigned char pub[1 + 2 * 66];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *d = NULL;
	size_t len;
	int r;

	switch (curve) {
	case KB_P11_P256: group = "P-256"; break;
	case KB_P11_P384: group = "P-384"; break;
	case KB_P11_P521: group = "P-521"; break;
	default:
		return kb_error_set(KB_ERR_INVALID, "EC keys use P-256, P-384 or P-521");
	}
	len = kb_p11_curve_bytes(curve);
	if (pp == NULL || pp->x == NULL || pp->y == NULL || pp->d == NULL)
		return kb_error_set(KB_ERR_INVALID, "an EC private key needs x, y and d");
	/* RFC 7518 6.2.1.2, 6.2.1.3, 6.2.2.1: full length, leading zeros kept. */
	if (pp->x_len != len || pp->y_len != len || pp->d->len != len)
		return kb_error_set(KB_ERR_INVALID, "on %s, x, y and d are %zu bytes "
		    "each", group, len);
	pub[0] = 0x04;
	memcpy(pub + 1, pp->x, len);
	memcpy(pub + 1 + len, pp->y, len);
	if ((d = BN_secure_new()) == NULL ||
	    BN_bin2bn(pp->d->data, (int)len, d) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
	    1 + 2 * len) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	r = fromdata_check("EC", params, "EC key", &pk);
 out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	return r;
}
