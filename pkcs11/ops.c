/*
 * ops.c: cryptographic operations with keys on a token.
 *
 * The hot path is lean on purpose (bench/bench_pkcs11.c holds it to 95% of
 * raw calls): key type and size were learned when the key was found or
 * made, the mechanism check hits a per-token cache after its first probe,
 * output buffers are sized from the key so each operation is one Init and
 * one single-part call, and the session comes from the pool.
 */
#include <stdlib.h>
#include <string.h>

/*
 * RSA_padding_check_PKCS1_OAEP_mgf1 is deprecated in OpenSSL 3 but has no
 * public successor that takes a raw RSA block; it is the constant-time
 * OAEP decoder OpenSSL's own provider uses.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "internal.h"

#define AAD_MAX (1024 * 1024)

enum op_kind { OP_ENCRYPT, OP_DECRYPT, OP_SIGN, OP_VERIFY };

struct op_ctx {
	enum op_kind kind;
	CK_MECHANISM mech;
	CK_OBJECT_HANDLE key;
	const unsigned char *in;
	size_t in_len;
	unsigned char *out;
	size_t out_cap, out_len;
	const unsigned char *sig;
	size_t sig_len;
	CK_RV rv;                 /* raw result, for token quirks below */
};

/*
 * SoftHSM 2.6 answers a failed authenticated decryption (bad GCM tag, bad
 * OAEP padding, bad unwrap integrity check) with CKR_GENERAL_ERROR or
 * CKR_FUNCTION_FAILED rather than CKR_ENCRYPTED_DATA_INVALID; in a decrypt
 * these all mean "this ciphertext does not open with this key".
 */
static bool
rv_is_bad_ciphertext(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ||
	    rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
	    rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE ||
	    rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE;
}

/* SoftHSM 2.6 refuses OAEP with anything but SHA-1 (CKR_ARGUMENTS_BAD). */
static int
oaep_refused(kb_p11_key *k, CK_RV rv, enum kb_p11_hash h, int r)
{
	if (h != KB_P11_SHA1 && (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID ||
	    rv == CKR_MECHANISM_INVALID))
		return kb_error_set(KB_ERR_MECHANISM, "token '%s' does not support "
		    "CKM_RSA_PKCS_OAEP with SHA-256; use RSA-OAEP with SHA-1 or pick a "
		    "token that does", k->t->label);
	return r;
}

static int
op_fn(struct p11s *s, void *arg)
{
	struct op_ctx *c = arg;

	static const unsigned char empty[1];
	const unsigned char *in = c->in ? c->in : empty;   /* modules want non-NULL */
	int r = KB_ERR_INTERNAL;

	c->out_len = c->out_cap;
	switch (c->kind) {
	case OP_ENCRYPT:
		r = p11c_encrypt(s, &c->mech, c->key, in, c->in_len, c->out, &c->out_len);
		break;
	case OP_DECRYPT:
		r = p11c_decrypt(s, &c->mech, c->key, in, c->in_len, c->out, &c->out_len);
		break;
	case OP_SIGN:
		r = p11c_sign(s, &c->mech, c->key, in, c->in_len, c->out, &c->out_len);
		break;
	case OP_VERIFY:
		r = p11c_verify(s, &c->mech, c->key, in, c->in_len, c->sig, c->sig_len);
		break;
	}
	c->rv = s->rv;
	return r;
}

static int
run(kb_p11_key *k, struct op_ctx *c)
{
	return kb_p11_with_session(k->t, true, op_fn, c);
}

static int
want_type(const kb_p11_key *k, enum kb_p11_key_type t, const char *what)
{
	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if (k->type != t)
		return kb_error_set(KB_ERR_INVALID, "key '%s' is a%s %s key; %s needs a%s "
		    "%s key", k->label, k->type == KB_P11_AES || k->type == KB_P11_RSA ||
		    k->type == KB_P11_EC ? "n" : "", kb_p11_key_type_name(k->type), what,
		    t == KB_P11_AES || t == KB_P11_RSA || t == KB_P11_EC ? "n" : "",
		    kb_p11_key_type_name(t));
	return 0;
}

static CK_OBJECT_HANDLE
need_half(const kb_p11_key *k, bool pub, int *r)
{
	CK_OBJECT_HANDLE h = pub ? k->pub : k->priv;

	*r = 0;
	if (h == 0)
		*r = kb_error_set(KB_ERR_NOT_FOUND, "the %s half of key '%s' is not on "
		    "the token", pub ? "public" : "private", k->label);
	return h;
}

static size_t
hash_len(enum kb_p11_hash h)
{
	switch (h) {
	case KB_P11_SHA1: return 20;
	case KB_P11_SHA256: return 32;
	case KB_P11_SHA384: return 48;
	case KB_P11_SHA512: return 64;
	}
	return 0;
}

static CK_MECHANISM_TYPE
hash_mech(enum kb_p11_hash h)
{
	switch (h) {
	case KB_P11_SHA1: return CKM_SHA_1;
	case KB_P11_SHA256: return CKM_SHA256;
	case KB_P11_SHA384: return CKM_SHA384;
	case KB_P11_SHA512: return CKM_SHA512;
	}
	return 0;
}

static CK_RSA_PKCS_MGF_TYPE
hash_mgf(enum kb_p11_hash h)
{
	switch (h) {
	case KB_P11_SHA1: return CKG_MGF1_SHA1;
	case KB_P11_SHA256: return CKG_MGF1_SHA256;
	case KB_P11_SHA384: return CKG_MGF1_SHA384;
	case KB_P11_SHA512: return CKG_MGF1_SHA512;
	}
	return 0;
}

static size_t
rsa_bytes(const kb_p11_key *k)
{
	return (k->bits + 7) / 8;
}

/* ------------------------------------------------------------ AES-GCM */

static int
gcm_check(kb_p11_key *k, const unsigned char *iv, size_t iv_len, const unsigned char *aad,
    size_t aad_len, size_t len, CK_FLAGS flag)
{
	int r;

	if ((r = want_type(k, KB_P11_AES, "AES-GCM")) != 0)
		return r;
	if (iv == NULL || iv_len < 1 || iv_len > 128)
		return kb_error_set(KB_ERR_INVALID, "AES-GCM needs an IV of 1 to 128 "
		    "bytes (12 recommended)");
	if ((aad == NULL && aad_len) || aad_len > AAD_MAX)
		return kb_error_set(KB_ERR_INVALID, "AES-GCM additional data is missing "
		    "or longer than %d bytes", AAD_MAX);
	if (len > KB_P11_MAX_DATA)
		return kb_error_set(KB_ERR_LIMIT, "AES-GCM input is longer than %d bytes",
		    KB_P11_MAX_DATA);
	return kb_p11_need_mech(k->t, CKM_AES_GCM, flag);
}

/* One CKM_AES_GCM operation with a 128-bit tag (PKCS#11 v2.40 2.10.4). */
static void
gcm_setup(struct op_ctx *c, CK_GCM_PARAMS *gp, kb_p11_key *k, enum op_kind kind,
    const unsigned char *iv, size_t iv_len, const unsigned char *aad, size_t aad_len,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap)
{
	memset(gp, 0, sizeof(*gp));
	gp->pIv = (CK_BYTE_PTR)iv;
	gp->ulIvLen = iv_len;
	gp->ulIvBits = iv_len * 8;
	gp->pAAD = (CK_BYTE_PTR)aad;
	gp->ulAADLen = aad_len;
	gp->ulTagBits = 128;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->mech.mechanism = CKM_AES_GCM;
	c->mech.pParameter = gp;
	c->mech.ulParameterLen = sizeof(*gp);
	c->key = k->priv;
	c->in = in;
	c->in_len = in_len;
	c->out = out;
	c->out_cap = out_cap;
}

int
kb_p11_aes_gcm_encrypt(kb_p11_key *k, const unsigned char *iv, size_t iv_len,
    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t in_len,
    unsigned char **ct, size_t *ct_len, unsigned char tag[16])
{
	CK_GCM_PARAMS gp;
	struct op_ctx c;
	unsigned char *buf;
	int r;

	if ((r = gcm_check(k, iv, iv_len, aad, aad_len, in_len, CKF_ENCRYPT)) != 0)
		return r;
	if (in == NULL && in_len)
		return kb_error_set(KB_ERR_INVALID, "no plaintext");
	if ((buf = malloc(in_len + 16)) == NULL)
		return KB_ERR_ALLOC;
	gcm_setup(&c, &gp, k, OP_ENCRYPT, iv, iv_len, aad, aad_len, in, in_len,
	    buf, in_len + 16);
	if ((r = run(k, &c)) != 0) {
		free(buf);
		return r;
	}
	/* PKCS#11 v2.40 section 2.10.6: the output is ciphertext || tag. */
	if (c.out_len != in_len + 16) {
		free(buf);
		return kb_error_set(KB_ERR_PROTOCOL, "token '%s' returned %zu bytes of "
		    "AES-GCM output for %zu bytes of input", k->t->label, c.out_len, in_len);
	}
	memcpy(tag, buf + in_len, 16);
	*ct = buf;
	*ct_len = in_len;
	return 0;
}

int
kb_p11_aes_gcm_decrypt(kb_p11_key *k, const unsigned char *iv, size_t iv_len,
    const unsigned char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len,
    const unsigned char tag[16], unsigned char **pt, size_t *pt_len)
{
	CK_GCM_PARAMS gp;
	struct op_ctx c;
	unsigned char *in = NULL, *buf = NULL;
	int r;

	if ((r = gcm_check(k, iv, iv_len, aad, aad_len, ct_len, CKF_DECRYPT)) != 0)
		return r;
	if ((ct == NULL && ct_len) || tag == NULL)
		return kb_error_set(KB_ERR_INVALID, "no ciphertext or tag");
	if ((in = malloc(ct_len + 16)) == NULL || (buf = malloc(ct_len + 16)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (ct_len)
		memcpy(in, ct, ct_len);
	memcpy(in + ct_len, tag, 16);
	gcm_setup(&c, &gp, k, OP_DECRYPT, iv, iv_len, aad, aad_len, in, ct_len + 16,
	    buf, ct_len + 16);
	if ((r = run(k, &c)) != 0) {
		/* Tokens differ in what they return for a bad tag; all mean one thing. */
		if (rv_is_bad_ciphertext(c.rv))
			r = kb_error_set(KB_ERR_CRYPTO, "AES-GCM decryption with key '%s' "
			    "failed: the tag does not match (wrong key, IV or additional "
			    "data, or tampered ciphertext)", k->label);
		goto out;
	}
	if (c.out_len != ct_len) {
		r = kb_error_set(KB_ERR_PROTOCOL, "token '%s' returned %zu bytes of "
		    "AES-GCM plaintext for %zu bytes of ciphertext", k->t->label,
		    c.out_len, ct_len);
		goto out;
	}
	*pt = buf;
	buf = NULL;
	*pt_len = ct_len;
	r = 0;
out:
	free(in);
	if (buf != NULL)
		kb_wipe(buf, ct_len + 16);
	free(buf);
	return r;
}

/* ------------------------------------------------------------ RSA-OAEP */

static int
oaep_params(enum kb_p11_hash h, CK_RSA_PKCS_OAEP_PARAMS *p)
{
	if (h != KB_P11_SHA1 && h != KB_P11_SHA256)
		return kb_error_set(KB_ERR_INVALID, "RSA-OAEP uses SHA-1 or SHA-256");
	memset(p, 0, sizeof(*p));
	p->hashAlg = hash_mech(h);
	p->mgf = hash_mgf(h);
	p->source = CKZ_DATA_SPECIFIED;
	return 0;
}

/*
 * Tokens without OAEP over SHA-256 (SoftHSM 2.6 accepts only SHA-1 in
 * CK_RSA_PKCS_OAEP_PARAMS).  Key Vault's RSA-OAEP-256 must still work:
 *  - encryption needs only the public key, so OpenSSL does it with the
 *    public half read from the token;
 *  - decryption runs the private-key operation on the token as raw RSA
 *    (CKM_RSA_X_509) and checks the OAEP encoding with OpenSSL's
 *    constant-time decoder, so no padding oracle appears in our code.
 * The private key never leaves the token either way; the raw block is
 * wiped.
 */
static int
oaep256_encrypt_soft(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len)
{
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	size_t n;
	int r;

	kb_error_clear();
	if ((r = kb_p11_public_evp(k, &pk)) != 0)
		return r;
	n = (size_t)EVP_PKEY_get_size(pk);
	if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
	    (buf = malloc(n)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_encrypt(ctx, buf, &n, in, in_len) <= 0) {
		r = kb_error_set(KB_ERR_CRYPTO, "RSA-OAEP-256 encryption with the "
		    "public key of '%s' failed", k->label);
		goto out;
	}
	*out = buf;
	*out_len = n;
	buf = NULL;
	r = 0;
out:
	free(buf);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

static int
oaep256_decrypt_raw(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len)
{
	struct op_ctx c;
	unsigned char *raw = NULL, *pt = NULL;
	size_t kb = rsa_bytes(k);
	int r, n;

	kb_error_clear();
	memset(&c, 0, sizeof(c));
	c.key = need_half(k, false, &r);
	if (r != 0)
		return r;
	if ((r = kb_p11_need_mech(k->t, CKM_RSA_X_509, CKF_DECRYPT)) != 0)
		return kb_error_set(KB_ERR_MECHANISM, "token '%s' supports neither "
		    "CKM_RSA_PKCS_OAEP with SHA-256 nor CKM_RSA_X_509; RSA-OAEP-256 "
		    "needs one of them", k->t->label);
	if ((raw = malloc(kb)) == NULL || (pt = malloc(kb)) == NULL) {
		free(raw);
		return KB_ERR_ALLOC;
	}
	c.kind = OP_DECRYPT;
	c.mech.mechanism = CKM_RSA_X_509;
	c.in = in;
	c.in_len = in_len;
	c.out = raw;
	c.out_cap = kb;
	if ((r = run(k, &c)) != 0) {
		if (rv_is_bad_ciphertext(c.rv))
			r = kb_error_set(KB_ERR_CRYPTO, "RSA-OAEP decryption with key "
			    "'%s' failed: wrong key or tampered ciphertext", k->label);
		goto out;
	}
	if (c.out_len > kb) {
		r = kb_error_set(KB_ERR_PROTOCOL, "token returned %zu bytes of raw RSA "
		    "for a %zu-byte key", c.out_len, kb);
		goto out;
	}
	/*
	 * The decoder right-aligns a short block (tokens may strip leading
	 * zeros) and checks the leading zero byte itself, in constant time.
	 */
	n = RSA_padding_check_PKCS1_OAEP_mgf1(pt, (int)kb, raw, (int)c.out_len,
	    (int)kb, NULL, 0, EVP_sha256(), EVP_sha256());
	ERR_clear_error();
	if (n < 0) {
		r = kb_error_set(KB_ERR_CRYPTO, "RSA-OAEP decryption with key '%s' "
		    "failed: wrong key or hash, or tampered ciphertext", k->label);
		goto out;
	}
	*out = pt;
	*out_len = (size_t)n;
	pt = NULL;
	r = 0;
out:
	kb_wipe(raw, kb);
	free(raw);
	if (pt != NULL) {
		kb_wipe(pt, kb);
		free(pt);
	}
	return r;
}

static int
oaep(kb_p11_key *k, enum kb_p11_hash h, bool enc, const unsigned char *in,
    size_t in_len, unsigned char **out, size_t *out_len)
{
	CK_RSA_PKCS_OAEP_PARAMS p;
	struct op_ctx c;
	unsigned char *buf;
	size_t kb;
	int r;

	if ((r = want_type(k, KB_P11_RSA, "RSA-OAEP")) != 0 ||
	    (r = oaep_params(h, &p)) != 0)
		return r;
	kb = rsa_bytes(k);
	if (in == NULL || (enc && in_len > kb - 2 * hash_len(h) - 2) ||
	    (!enc && in_len != kb))
		return kb_error_set(KB_ERR_INVALID, enc ? "RSA-OAEP input is too long "
		    "for key '%s'" : "RSA-OAEP ciphertext has a wrong length for key '%s'",
		    k->label);
	memset(&c, 0, sizeof(c));
	c.key = need_half(k, enc, &r);
	if (r != 0)
		return r;
	if ((r = kb_p11_need_mech(k->t, CKM_RSA_PKCS_OAEP,
	    enc ? CKF_ENCRYPT : CKF_DECRYPT)) != 0)
		return r;
	if ((buf = malloc(kb)) == NULL)
		return KB_ERR_ALLOC;
	c.kind = enc ? OP_ENCRYPT : OP_DECRYPT;
	c.mech.mechanism = CKM_RSA_PKCS_OAEP;
	c.mech.pParameter = &p;
	c.mech.ulParameterLen = sizeof(p);
	c.in = in;
	c.in_len = in_len;
	c.out = buf;
	c.out_cap = kb;
	if ((r = run(k, &c)) != 0) {
		kb_wipe(buf, kb);
		free(buf);
		r = oaep_refused(k, c.rv, h, r);
		if (r == KB_ERR_MECHANISM && h == KB_P11_SHA256)
			return enc ? oaep256_encrypt_soft(k, in, in_len, out, out_len) :
			    oaep256_decrypt_raw(k, in, in_len, out, out_len);
		if (r != KB_ERR_MECHANISM && !enc && rv_is_bad_ciphertext(c.rv))
			r = kb_error_set(KB_ERR_CRYPTO, "RSA-OAEP decryption with key '%s' "
			    "failed: wrong key or hash, or tampered ciphertext", k->label);
		return r;
	}
	*out = buf;
	*out_len = c.out_len;
	return 0;
}

int
kb_p11_rsa_oaep_encrypt(kb_p11_key *k, enum kb_p11_hash h, const unsigned char *in,
    size_t in_len, unsigned char **out, size_t *out_len)
{
	return oaep(k, h, true, in, in_len, out, out_len);
}

int
kb_p11_rsa_oaep_decrypt(kb_p11_key *k, enum kb_p11_hash h, const unsigned char *in,
    size_t in_len, unsigned char **out, size_t *out_len)
{
	return oaep(k, h, false, in, in_len, out, out_len);
}

/* ------------------------------------------------------ RSA PKCS#1 v1.5 */

/*
 * Key Vault's RSA1_5: RSAES-PKCS1-v1_5 (RFC 8017 section 7.2) with
 * CKM_RSA_PKCS, encryption with the public half and decryption with the
 * private half, both on the token.  Every failure to open a ciphertext
 * gives the same sentence whatever the token said (bad padding, wrong
 * key, wrong length inside the block): the caller must not become a
 * padding oracle (Bleichenbacher 1998), so no detail of the failure may
 * leave this function.  The raw CK_RV still reaches the debug log through
 * the p11c_* wrapper.
 */
static const char pkcs1_decrypt_failed[] =
    "RSA1_5 decryption failed: wrong key or invalid ciphertext";

static int
rsa_pkcs1(kb_p11_key *k, bool enc, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len)
{
	struct op_ctx c;
	unsigned char *buf = NULL;
	size_t kb;
	int r;

	if ((r = want_type(k, KB_P11_RSA, "RSA1_5")) != 0)
		return r;
	if (out == NULL || out_len == NULL)
		return kb_error_set(KB_ERR_INVALID, "no output for RSA1_5");
	kb = rsa_bytes(k);
	if (kb < 11 + 1)
		return kb_error_set(KB_ERR_INVALID, "key '%s' is too small for RSA1_5",
		    k->label);
	/* RFC 8017 section 7.2.1 step 1: mLen <= k - 11; 7.2.2 step 1: cLen == k. */
	if ((in == NULL && in_len) || (enc && in_len > kb - 11))
		return kb_error_set(KB_ERR_INVALID, "RSA1_5 input for key '%s' has "
		    "%zu bytes; at most %zu fit", k->label, in_len, kb - 11);
	if (!enc && (in == NULL || in_len != kb))
		return kb_error_set(KB_ERR_INVALID, "RSA1_5 ciphertext for key '%s' "
		    "has %zu bytes, not %zu", k->label, in_len, kb);
	memset(&c, 0, sizeof(c));
	c.key = need_half(k, enc, &r);
	if (r != 0)
		return r;
	if ((r = kb_p11_need_mech(k->t, CKM_RSA_PKCS, enc ? CKF_ENCRYPT : CKF_DECRYPT)) != 0)
		return r;
	if ((buf = malloc(kb)) == NULL)
		return KB_ERR_ALLOC;
	c.kind = enc ? OP_ENCRYPT : OP_DECRYPT;
	c.mech.mechanism = CKM_RSA_PKCS;
	c.in = in;
	c.in_len = in_len;
	c.out = buf;
	c.out_cap = kb;
	if ((r = run(k, &c)) != 0) {
		/* Missing rights or a lost session are not about the ciphertext. */
		if (!enc && rv_is_bad_ciphertext(c.rv))
			r = kb_error_set(KB_ERR_CRYPTO, "%s", pkcs1_decrypt_failed);
		goto out;
	}
	if (c.out_len > kb || (enc && c.out_len != kb)) {
		r = kb_error_set(KB_ERR_PROTOCOL, "token '%s' returned %zu bytes of "
		    "RSA1_5 output for a %zu-byte key", k->t->label, c.out_len, kb);
		goto out;
	}
	*out = buf;
	*out_len = c.out_len;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		kb_wipe(buf, kb);
		free(buf);
	}
	return r;
}

int
kb_p11_rsa_pkcs1_encrypt(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len)
{
	return rsa_pkcs1(k, true, in, in_len, out, out_len);
}

int
kb_p11_rsa_pkcs1_decrypt(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len)
{
	return rsa_pkcs1(k, false, in, in_len, out, out_len);
}

/* ---------------------------------------------------------- wrap/unwrap */

struct wrap_mech {
	CK_MECHANISM mech;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	bool rsa;
};

static int
wrap_setup(kb_p11_key *w, enum kb_p11_wrap m, bool wrap, struct wrap_mech *wm,
    CK_OBJECT_HANDLE *h)
{
	int r;

	memset(wm, 0, sizeof(*wm));
	switch (m) {
	case KB_P11_WRAP_AES_KW:
	case KB_P11_WRAP_AES_KWP:
		if ((r = want_type(w, KB_P11_AES, "AES key wrap")) != 0)
			return r;
		wm->mech.mechanism = m == KB_P11_WRAP_AES_KW ? CKM_AES_KEY_WRAP :
		    CKM_AES_KEY_WRAP_PAD;
		*h = need_half(w, false, &r);
		break;
	case KB_P11_WRAP_RSA_OAEP_SHA1:
	case KB_P11_WRAP_RSA_OAEP_SHA256:
		if ((r = want_type(w, KB_P11_RSA, "RSA-OAEP key wrap")) != 0)
			return r;
		(void)oaep_params(m == KB_P11_WRAP_RSA_OAEP_SHA1 ? KB_P11_SHA1 :
		    KB_P11_SHA256, &wm->oaep);
		wm->mech.mechanism = CKM_RSA_PKCS_OAEP;
		wm->mech.pParameter = &wm->oaep;
		wm->mech.ulParameterLen = sizeof(wm->oaep);
		wm->rsa = true;
		*h = need_half(w, wrap, &r);
		break;
	default:
		return kb_error_set(KB_ERR_INVALID, "unknown key wrap algorithm");
	}
	if (r != 0)
		return r;
	return kb_p11_need_mech(w->t, wm->mech.mechanism, wrap ? CKF_WRAP : CKF_UNWRAP);
}

struct wrap_ctx {
	struct wrap_mech *wm;
	CK_OBJECT_HANDLE wrapping, target;
	const unsigned char *value;     /* wrap_bytes: temporary object value */
	size_t value_len;
	const unsigned char *in;        /* unwrap */
	size_t in_len;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG ntmpl;
	bool read_value;                /* unwrap_bytes: read and destroy */
	CK_OBJECT_HANDLE made;
	unsigned char *out;
	size_t out_len;
	CK_RV rv;
};

static CK_BBOOL wt = CK_TRUE, wf = CK_FALSE;

static int
wrap_fn(struct p11s *s, void *arg)
{
	struct wrap_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_OBJECT_HANDLE tmp = 0;
	int r, r2;

	free(c->out);
	c->out = NULL;
	if (c->value == NULL) {
		r = p11c_wrap_key(s, &c->wm->mech, c->wrapping, c->target,
		    &c->out, &c->out_len);
		c->rv = s->rv;
		return r;
	}
	/* Caller-supplied bytes: a short-lived session object, wrapped, destroyed. */
	{
		CK_ATTRIBUTE tm[] = {
			{ CKA_CLASS, &cls, sizeof(cls) },
			{ CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_TOKEN, &wf, sizeof(wf) },
			{ CKA_PRIVATE, &wt, sizeof(wt) },
			{ CKA_SENSITIVE, &wt, sizeof(wt) },
			{ CKA_EXTRACTABLE, &wt, sizeof(wt) },
			{ CKA_VALUE, (void *)c->value, c->value_len },
		};

		if ((r = p11c_create_object(s, tm, sizeof(tm) / sizeof(tm[0]), &tmp)) != 0)
			return r;
	}
	r = p11c_wrap_key(s, &c->wm->mech, c->wrapping, tmp, &c->out, &c->out_len);
	c->rv = s->rv;
	r2 = p11c_destroy_object(s, tmp);
	return r ? r : r2;
}

static int
unwrap_fn(struct p11s *s, void *arg)
{
	struct wrap_ctx *c = arg;
	int r, r2;

	c->made = 0;
	r = p11c_unwrap_key(s, &c->wm->mech, c->wrapping, c->in, c->in_len,
	    c->tmpl, c->ntmpl, &c->made);
	c->rv = s->rv;
	if (r != 0)
		return r;
	if (!c->read_value)
		return 0;
	free(c->out);
	c->out = NULL;
	r = kb_p11_read_attr(s, c->made, CKA_VALUE, KB_P11_MAX_ATTR, &c->out, &c->out_len);
	r2 = p11c_destroy_object(s, c->made);
	c->made = 0;
	return r ? r : r2;
}

static int
wrap_fix(kb_p11_key *k, enum kb_p11_wrap m, CK_RV rv, int r, bool unwrap)
{
	if (m == KB_P11_WRAP_RSA_OAEP_SHA256)
		r = oaep_refused(k, rv, KB_P11_SHA256, r);
	if (r != KB_ERR_MECHANISM && unwrap && rv_is_bad_ciphertext(rv))
		r = kb_error_set(KB_ERR_CRYPTO, "unwrapping with key '%s' failed: wrong "
		    "key or algorithm, or tampered data", k->label);
	return r;
}

int
kb_p11_wrap_key(kb_p11_key *wrapping, enum kb_p11_wrap mech, kb_p11_key *target,
    unsigned char **out, size_t *out_len)
{
	struct wrap_mech wm;
	struct wrap_ctx c;
	int r;

	memset(&c, 0, sizeof(c));
	if ((r = wrap_setup(wrapping, mech, true, &wm, &c.wrapping)) != 0)
		return r;
	if (target == NULL || target->priv == 0)
		return kb_error_set(KB_ERR_INVALID, "only a key with its secret "
		    "half can be wrapped");
	if (target->t != wrapping->t)
		return kb_error_set(KB_ERR_INVALID, "both keys must be on one token");
	c.wm = &wm;
	c.target = target->priv;
	if ((r = kb_p11_with_session(wrapping->t, true, wrap_fn, &c)) != 0) {
		free(c.out);
		return wrap_fix(wrapping, mech, c.rv, r, false);
	}
	*out = c.out;
	*out_len = c.out_len;
	return 0;
}

int
kb_p11_wrap_bytes(kb_p11_key *k, enum kb_p11_wrap mech, const unsigned char *in,
    size_t in_len, unsigned char **out, size_t *out_len)
{
	struct wrap_mech wm;
	struct wrap_ctx c;
	unsigned char aiv[8], *padded = NULL;
	size_t padded_len = 0;
	int r;

	memset(&c, 0, sizeof(c));
	if ((r = wrap_setup(k, mech, true, &wm, &c.wrapping)) != 0)
		return r;
	if (in == NULL || in_len == 0 || in_len > 4096)
		return kb_error_set(KB_ERR_INVALID, "the value to wrap has 1 to 4096 bytes");
	if (mech == KB_P11_WRAP_AES_KW && (in_len < 16 || in_len % 8))
		return kb_error_set(KB_ERR_INVALID, "AES key wrap (RFC 3394) takes a "
		    "multiple of 8 bytes, at least 16; use key wrap with padding");
	c.wm = &wm;
	c.value = in;
	c.value_len = in_len;
	if (mech == KB_P11_WRAP_AES_KWP && in_len % 8 != 0) {
		/*
		 * SoftHSM 2.6's C_WrapKey with CKM_AES_KEY_WRAP_PAD zero-pads the
		 * key value to a multiple of 8 before wrapping, so the length in
		 * its alternative IV is the padded one, not RFC 5649's (its
		 * unwrap is right).  RFC 5649 section 4.1 defines the wrap as
		 * RFC 3394 over the zero-padded value with the IV A65959A6 ||
		 * MLI, which CKM_AES_KEY_WRAP computes when the token takes that
		 * IV as its optional parameter (v2.40 section 2.14.3).  A token
		 * that takes neither gets a clear refusal, never a wrong output.
		 */
		if (in_len < 8)
			return kb_error_set(KB_ERR_UNSUPPORTED, "AES key wrap with padding "
			    "of fewer than 8 bytes is not supported");
		padded_len = (in_len + 7) / 8 * 8;
		if ((padded = calloc(1, padded_len)) == NULL)
			return KB_ERR_ALLOC;
		memcpy(padded, in, in_len);
		aiv[0] = 0xa6; aiv[1] = 0x59; aiv[2] = 0x59; aiv[3] = 0xa6;
		aiv[4] = (unsigned char)(in_len >> 24);
		aiv[5] = (unsigned char)(in_len >> 16);
		aiv[6] = (unsigned char)(in_len >> 8);
		aiv[7] = (unsigned char)in_len;
		wm.mech.mechanism = CKM_AES_KEY_WRAP;
		wm.mech.pParameter = aiv;
		wm.mech.ulParameterLen = sizeof(aiv);
		if ((r = kb_p11_need_mech(k->t, CKM_AES_KEY_WRAP, CKF_WRAP)) != 0)
			goto out;
		c.value = padded;
		c.value_len = padded_len;
	}
	if ((r = kb_p11_with_session(k->t, true, wrap_fn, &c)) != 0) {
		free(c.out);
		if (padded != NULL && (c.rv == CKR_ARGUMENTS_BAD ||
		    c.rv == CKR_MECHANISM_PARAM_INVALID))
			r = kb_error_set(KB_ERR_MECHANISM, "token '%s' cannot wrap %zu "
			    "bytes with RFC 5649 padding (its CKM_AES_KEY_WRAP_PAD pads "
			    "the value first and its CKM_AES_KEY_WRAP takes no IV); wrap "
			    "a value whose length is a multiple of 8, or pick a token "
			    "that does", k->t->label, in_len);
		else
			r = wrap_fix(k, mech, c.rv, r, false);
		goto out;
	}
	*out = c.out;
	*out_len = c.out_len;
	r = 0;
out:
	if (padded != NULL)
		kb_wipe(padded, padded_len);
	free(padded);
	return r;
}

int
kb_p11_unwrap_bytes(kb_p11_key *k, enum kb_p11_wrap mech, const unsigned char *in,
    size_t in_len, unsigned char **out, size_t *out_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &wf, sizeof(wf) },
		{ CKA_PRIVATE, &wt, sizeof(wt) },
		{ CKA_SENSITIVE, &wf, sizeof(wf) },
		{ CKA_EXTRACTABLE, &wt, sizeof(wt) },
	};
	struct wrap_mech wm;
	struct wrap_ctx c;
	int r;

	memset(&c, 0, sizeof(c));
	if ((r = wrap_setup(k, mech, false, &wm, &c.wrapping)) != 0)
		return r;
	if (in == NULL || in_len == 0 || in_len > 8192)
		return kb_error_set(KB_ERR_INVALID, "the wrapped value has 1 to 8192 bytes");
	c.wm = &wm;
	c.in = in;
	c.in_len = in_len;
	c.tmpl = tm;
	c.ntmpl = sizeof(tm) / sizeof(tm[0]);
	c.read_value = true;
	if ((r = kb_p11_with_session(k->t, true, unwrap_fn, &c)) != 0) {
		if (c.out != NULL)
			kb_wipe(c.out, c.out_len);
		free(c.out);
		return wrap_fix(k, mech, c.rv, r, true);
	}
	*out = c.out;
	*out_len = c.out_len;
	return 0;
}

int
kb_p11_unwrap_key(kb_p11_key *unwrapping, enum kb_p11_wrap mech,
    const unsigned char *wrapped, size_t wrapped_len,
    const struct kb_p11_keyspec *spec, kb_p11_key **out)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt;
	CK_BBOOL tok, ext, ob[7];
	CK_ATTRIBUTE tm[16];
	CK_ULONG n = 0;
	struct wrap_mech wm;
	struct wrap_ctx c;
	kb_p11_key *k = NULL;
	kb_p11_key *tmpk = NULL;
	unsigned ops;
	int r;

	memset(&c, 0, sizeof(c));
	if ((r = wrap_setup(unwrapping, mech, false, &wm, &c.wrapping)) != 0)
		return r;
	if (spec == NULL || (spec->type != KB_P11_AES && spec->type != KB_P11_GENERIC_SECRET))
		return kb_error_set(KB_ERR_INVALID, "only AES and generic secret keys "
		    "can be unwrapped");
	if (spec->label == NULL || spec->id == NULL || spec->id_len == 0 ||
	    spec->id_len > 256 || strlen(spec->label) > 1024)
		return kb_error_set(KB_ERR_INVALID, "an unwrapped key needs a label and an id");
	if (wrapped == NULL || wrapped_len == 0 || wrapped_len > 8192)
		return kb_error_set(KB_ERR_INVALID, "the wrapped key has 1 to 8192 bytes");
	ops = spec->ops ? spec->ops : (spec->type == KB_P11_AES ?
	    (KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_WRAP | KB_P11_OP_UNWRAP) :
	    (KB_P11_OP_SIGN | KB_P11_OP_VERIFY));
	kt = spec->type == KB_P11_AES ? CKK_AES : CKK_GENERIC_SECRET;
	tok = spec->token ? CK_TRUE : CK_FALSE;
	ext = spec->extractable ? CK_TRUE : CK_FALSE;
#define T(ty, p, l) do { tm[n].type = (ty); tm[n].pValue = (void *)(p); \
	tm[n++].ulValueLen = (l); } while (0)
	T(CKA_CLASS, &cls, sizeof(cls));
	T(CKA_KEY_TYPE, &kt, sizeof(kt));
	T(CKA_TOKEN, &tok, 1);
	T(CKA_PRIVATE, &wt, 1);
	T(CKA_SENSITIVE, &wt, 1);
	T(CKA_EXTRACTABLE, &ext, 1);
	T(CKA_LABEL, spec->label, strlen(spec->label));
	T(CKA_ID, spec->id, spec->id_len);
	if (spec->type == KB_P11_AES) {
		if (ops & ~(KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_WRAP |
		    KB_P11_OP_UNWRAP))
			return kb_error_set(KB_ERR_INVALID, "AES keys do not allow some of "
			    "the requested key operations");
		ob[0] = (ops & KB_P11_OP_ENCRYPT) != 0;
		ob[1] = (ops & KB_P11_OP_DECRYPT) != 0;
		ob[2] = (ops & KB_P11_OP_WRAP) != 0;
		ob[3] = (ops & KB_P11_OP_UNWRAP) != 0;
		T(CKA_ENCRYPT, &ob[0], 1);
		T(CKA_DECRYPT, &ob[1], 1);
		T(CKA_WRAP, &ob[2], 1);
		T(CKA_UNWRAP, &ob[3], 1);
	} else {
		if (ops & ~(KB_P11_OP_SIGN | KB_P11_OP_VERIFY | KB_P11_OP_DERIVE))
			return kb_error_set(KB_ERR_INVALID, "generic secrets do not allow "
			    "some of the requested key operations");
		ob[4] = (ops & KB_P11_OP_SIGN) != 0;
		ob[5] = (ops & KB_P11_OP_VERIFY) != 0;
		ob[6] = (ops & KB_P11_OP_DERIVE) != 0;
		T(CKA_SIGN, &ob[4], 1);
		T(CKA_VERIFY, &ob[5], 1);
		T(CKA_DERIVE, &ob[6], 1);
	}
#undef T
	c.wm = &wm;
	c.in = wrapped;
	c.in_len = wrapped_len;
	c.tmpl = tm;
	c.ntmpl = n;
	if ((r = kb_p11_with_session(unwrapping->t, true, unwrap_fn, &c)) != 0)
		return wrap_fix(unwrapping, mech, c.rv, r, true);
	/* CKA_VALUE_LEN may not be given on unwrap: check the size afterwards. */
	if ((r = kb_p11_key_from_handle(unwrapping->t, c.made, spec, true, &k)) != 0)
		goto fail;
	/*
	 * SoftHSM 2.6 leaves CKA_VALUE_LEN unreadable on an unwrapped AES key;
	 * then the length follows from the wrapped size (RFC 3394: n + 8) or
	 * the spec, since the value itself is sensitive.
	 */
	if (k->bits == 0 && mech == KB_P11_WRAP_AES_KW && wrapped_len > 8)
		k->bits = (unsigned)(wrapped_len - 8) * 8;
	if (k->bits == 0)
		k->bits = spec->bits;
	if (spec->bits && k->bits != spec->bits) {
		r = kb_error_set(KB_ERR_INVALID, "the unwrapped key has %u bits, not %u",
		    k->bits, spec->bits);
		goto fail;
	}
	if (k->type == KB_P11_AES && k->bits != 128 && k->bits != 192 && k->bits != 256) {
		r = kb_error_set(KB_ERR_INVALID, "the unwrapped AES key has %u bits",
		    k->bits);
		goto fail;
	}
	*out = k;
	return 0;
fail:
	kb_p11_key_free(k);
	if (kb_p11_key_from_handle(unwrapping->t, c.made, spec, false, &tmpk) == 0) {
		if (kb_p11_key_destroy(tmpk) != 0)
			kb_debug("pkcs11: could not destroy a refused unwrapped key");
		kb_p11_key_free(tmpk);
	}
	return r;
}

/* ------------------------------------------------------------ signatures */

/* RFC 8017 section 9.2 note 1: DER DigestInfo prefixes. */
static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const unsigned char di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const unsigned char di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

struct sig_setup {
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	unsigned char buf[19 + 64];
	const unsigned char *in;
	size_t in_len;
	size_t sig_len;
};

static int
sig_prepare(kb_p11_key *k, enum kb_p11_sig alg, enum kb_p11_hash h,
    const unsigned char *digest, size_t digest_len, bool sign, struct sig_setup *ss)
{
	const unsigned char *di = NULL;
	size_t dl = 0;
	int r;

	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if (h != KB_P11_SHA256 && h != KB_P11_SHA384 && h != KB_P11_SHA512)
		return kb_error_set(KB_ERR_INVALID, "signatures use SHA-256, SHA-384 or "
		    "SHA-512");
	if (digest == NULL || digest_len != hash_len(h))
		return kb_error_set(KB_ERR_INVALID, "a SHA-%u digest has %zu bytes, "
		    "not %zu", h == KB_P11_SHA256 ? 256 : h == KB_P11_SHA384 ? 384 : 512,
		    hash_len(h), digest_len);
	ss->in = digest;
	ss->in_len = digest_len;
	switch (alg) {
	case KB_P11_SIG_RSA_PKCS1:
		if ((r = want_type(k, KB_P11_RSA, "RSA PKCS#1 v1.5 signing")) != 0)
			return r;
		di = h == KB_P11_SHA256 ? di_sha256 : h == KB_P11_SHA384 ? di_sha384 : di_sha512;
		dl = sizeof(di_sha256);
		memcpy(ss->buf, di, dl);
		memcpy(ss->buf + dl, digest, digest_len);
		ss->in = ss->buf;
		ss->in_len = dl + digest_len;
		ss->mech.mechanism = CKM_RSA_PKCS;
		ss->sig_len = rsa_bytes(k);
		break;
	case KB_P11_SIG_RSA_PSS:
		if ((r = want_type(k, KB_P11_RSA, "RSA-PSS signing")) != 0)
			return r;
		ss->pss.hashAlg = hash_mech(h);
		ss->pss.mgf = hash_mgf(h);
		ss->pss.sLen = digest_len;
		ss->mech.mechanism = CKM_RSA_PKCS_PSS;
		ss->mech.pParameter = &ss->pss;
		ss->mech.ulParameterLen = sizeof(ss->pss);
		ss->sig_len = rsa_bytes(k);
		break;
	case KB_P11_SIG_ECDSA:
		if ((r = want_type(k, KB_P11_EC, "ECDSA")) != 0)
			return r;
		ss->mech.mechanism = CKM_ECDSA;
		/* v2.40 section 2.3.1: r || s, each the size of the curve order. */
		ss->sig_len = 2 * (size_t)kb_p11_curve_bytes(k->curve);
		break;
	default:
		return kb_error_set(KB_ERR_INVALID, "unknown signature algorithm");
	}
	return kb_p11_need_mech(k->t, ss->mech.mechanism, sign ? CKF_SIGN : CKF_VERIFY);
}

int
kb_p11_sign_digest(kb_p11_key *k, enum kb_p11_sig alg, enum kb_p11_hash h,
    const unsigned char *digest, size_t digest_len, unsigned char **sig, size_t *sig_len)
{
	struct sig_setup ss;
	struct op_ctx c;
	unsigned char *buf;
	int r;

	memset(&ss, 0, sizeof(ss));
	if ((r = sig_prepare(k, alg, h, digest, digest_len, true, &ss)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.key = need_half(k, false, &r);
	if (r != 0)
		return r;
	if ((buf = malloc(ss.sig_len)) == NULL)
		return KB_ERR_ALLOC;
	c.kind = OP_SIGN;
	c.mech = ss.mech;
	c.in = ss.in;
	c.in_len = ss.in_len;
	c.out = buf;
	c.out_cap = ss.sig_len;
	if ((r = run(k, &c)) != 0) {
		free(buf);
		return r;
	}
	if (c.out_len != ss.sig_len) {
		free(buf);
		return kb_error_set(KB_ERR_PROTOCOL, "token '%s' returned a %zu-byte "
		    "signature where %zu bytes were expected", k->t->label, c.out_len,
		    ss.sig_len);
	}
	*sig = buf;
	*sig_len = c.out_len;
	return 0;
}

int
kb_p11_verify_digest(kb_p11_key *k, enum kb_p11_sig alg, enum kb_p11_hash h,
    const unsigned char *digest, size_t digest_len, const unsigned char *sig, size_t sig_len)
{
	struct sig_setup ss;
	struct op_ctx c;
	int r;

	memset(&ss, 0, sizeof(ss));
	if ((r = sig_prepare(k, alg, h, digest, digest_len, false, &ss)) != 0)
		return r;
	if (sig == NULL || sig_len != ss.sig_len)
		return kb_error_set(KB_ERR_SIGNATURE, "the signature has %zu bytes; key "
		    "'%s' makes %zu-byte signatures", sig_len, k->label, ss.sig_len);
	memset(&c, 0, sizeof(c));
	c.key = need_half(k, true, &r);
	if (r != 0)
		return r;
	c.kind = OP_VERIFY;
	c.mech = ss.mech;
	c.in = ss.in;
	c.in_len = ss.in_len;
	c.sig = sig;
	c.sig_len = sig_len;
	return run(k, &c);
}

/* ------------------------------------------------------------------ HMAC */

static int
hmac_prepare(kb_p11_key *k, const unsigned char *in, size_t in_len, CK_FLAGS f)
{
	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if (k->type != KB_P11_GENERIC_SECRET && k->type != KB_P11_AES)
		return kb_error_set(KB_ERR_INVALID, "key '%s' is an %s key; HMAC needs a "
		    "secret key", k->label, kb_p11_key_type_name(k->type));
	if ((in == NULL && in_len) || in_len > KB_P11_MAX_DATA)
		return kb_error_set(KB_ERR_INVALID, "HMAC input is missing or too long");
	return kb_p11_need_mech(k->t, CKM_SHA256_HMAC, f);
}

int
kb_p11_hmac_sha256(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char mac[32])
{
	struct op_ctx c;
	unsigned char buf[32];
	int r;

	if ((r = hmac_prepare(k, in, in_len, CKF_SIGN)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.kind = OP_SIGN;
	c.mech.mechanism = CKM_SHA256_HMAC;
	c.key = k->priv;
	c.in = in ? in : buf;
	c.in_len = in_len;
	c.out = buf;
	c.out_cap = sizeof(buf);
	if ((r = run(k, &c)) != 0)
		return r;
	if (c.out_len != 32)
		return kb_error_set(KB_ERR_PROTOCOL, "token '%s' returned a %zu-byte "
		    "HMAC-SHA-256", k->t->label, c.out_len);
	memcpy(mac, buf, 32);
	return 0;
}

int
kb_p11_hmac_sha256_verify(kb_p11_key *k, const unsigned char *in, size_t in_len,
    const unsigned char mac[32])
{
	struct op_ctx c;
	int r;

	if ((r = hmac_prepare(k, in, in_len, CKF_VERIFY)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.kind = OP_VERIFY;
	c.mech.mechanism = CKM_SHA256_HMAC;
	c.key = k->priv;
	c.in = in ? in : mac;
	c.in_len = in_len;
	c.sig = mac;
	c.sig_len = 32;
	return run(k, &c);
}

/* ---------------------------------------------------------------- random */

struct rand_ctx {
	unsigned char *out;
	size_t n;
};

static int
rand_fn(struct p11s *s, void *arg)
{
	struct rand_ctx *c = arg;

	return p11c_generate_random(s, c->out, c->n);
}

int
kb_p11_random(kb_p11_token *t, unsigned char *out, size_t n)
{
	struct rand_ctx c;
	size_t done = 0;
	int r;

	if (t == NULL || (out == NULL && n))
		return kb_error_set(KB_ERR_INVALID, "no token or no buffer");
	if (n > 1024 * 1024)
		return kb_error_set(KB_ERR_LIMIT, "at most 1 MiB of random bytes at once");
	while (done < n) {
		c.out = out + done;
		c.n = n - done > 4096 ? 4096 : n - done;
		if ((r = kb_p11_with_session(t, false, rand_fn, &c)) != 0) {
			kb_wipe(out, n);
			return r;
		}
		done += c.n;
	}
	return 0;
}
