/*
 * assertion.c: client assertions for the certificate credential
 * (NOTES.md 2.3), and a software signer for a PEM key file.
 *
 * OpenSSL (libcrypto) for the X.509 parsing, the thumbprint and the
 * check of every signature before it leaves: the agent signs on a
 * PKCS#11 token through struct kb_kv_signer, and a signer whose key is
 * not the certificate's would otherwise only show as Entra ID's
 * AADSTS700027 sentence.  The private key never passes through here
 * unless it is the software signer's own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cred.h"

#define CERT_MAX_FILE (256 * 1024)
#define ASSERTION_LIFETIME 600     /* "5-10 minutes after nbf" */

struct kb_cred_cert {
	char *path;
	char x5t_s256[64];             /* base64url(SHA-256(DER)) */
	EVP_PKEY *pub;
	size_t sig_len;
};

static bool
is_rsa(const EVP_PKEY *k)
{
	int id = EVP_PKEY_get_base_id(k);

	return id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS;
}

/* "Jun 20 02:57:58 2019 GMT" for a message. */
static void
asn1_time_text(const ASN1_TIME *t, char *buf, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len = 0;

	buf[0] = '\0';
	if (b != NULL && ASN1_TIME_print(b, t) == 1 &&
	    (len = BIO_read(b, buf, (int)n - 1)) > 0)
		buf[len] = '\0';
	else
		snprintf(buf, n, "(unknown)");
	BIO_free(b);
}

/* The file's bytes; the whole file is wiped after (a key may sit in it). */
static int
read_pem(const char *path, const char *what, char **out, size_t *len)
{
	int r;

	if ((r = kb_file_read(path, CERT_MAX_FILE, out, len)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the %s %s: %s; give "
		    "a readable PEM file", what, path, kb_error_detail(r));
	return 0;
}

int
kb_cred_cert_load(const char *path, const struct kb_kv_signer *signer,
    struct kb_cred_cert **out)
{
	struct kb_cred_cert *c = NULL;
	unsigned char *der = NULL, *spki = NULL, md[32];
	const unsigned char *p;
	char *text = NULL, *b64 = NULL, when[64];
	size_t len = 0, spki_len = 0;
	EVP_PKEY *skey = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	int dl, r = KB_ERR_ALLOC;

	if ((r = read_pem(path, "certificate file", &text, &len)) != 0)
		return r;
	r = KB_ERR_ALLOC;
	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL)
		goto out;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		r = kb_error_set(KB_ERR_CONFIG, "%s holds no PEM certificate; give "
		    "the client certificate registered for the application "
		    "(-----BEGIN CERTIFICATE-----)", path);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = kb_strdup(path)) == NULL)
		goto out;
	if ((c->pub = X509_get_pubkey(x)) == NULL || !is_rsa(c->pub)) {
		r = kb_error_set(KB_ERR_CONFIG, "the certificate in %s does not hold "
		    "an RSA key; client assertions are signed PS256, so the "
		    "certificate and its key must be RSA", path);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		asn1_time_text(X509_get0_notAfter(x), when, sizeof(when));
		r = kb_error_set(KB_ERR_CONFIG, "the certificate in %s expired on %s; "
		    "register a new certificate for the application and give it here",
		    path, when);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		asn1_time_text(X509_get0_notBefore(x), when, sizeof(when));
		r = kb_error_set(KB_ERR_CONFIG, "the certificate in %s is not valid "
		    "before %s; check the clock, or use a certificate valid now",
		    path, when);
		goto out;
	}
	c->sig_len = (size_t)EVP_PKEY_get_size(c->pub);
	if ((dl = i2d_X509(x, &der)) <= 0 ||
	    EVP_Digest(der, (size_t)dl, md, NULL, EVP_sha256(), NULL) != 1 ||
	    (b64 = kb_b64url_encode(md, sizeof(md))) == NULL ||
	    kb_strlcpy(c->x5t_s256, b64, sizeof(c->x5t_s256)) != 0) {
		r = kb_error_set(KB_ERR_CRYPTO, "cannot compute the thumbprint of "
		    "the certificate in %s", path);
		goto out;
	}
	if (signer->public_key_der != NULL) {
		if ((r = signer->public_key_der(signer->ctx, &spki, &spki_len)) != 0)
			goto out;
		p = spki;
		if (spki_len > (size_t)INT32_MAX ||
		    (skey = d2i_PUBKEY(NULL, &p, (long)spki_len)) == NULL) {
			r = kb_error_set(KB_ERR_CRYPTO, "the signer for %s gave a public "
			    "key that is not SubjectPublicKeyInfo DER", path);
			goto out;
		}
		if (EVP_PKEY_eq(c->pub, skey) != 1) {
			r = kb_error_set(KB_ERR_CONFIG, "the certificate in %s does not "
			    "match the key that signs for it (their public keys differ); "
			    "give the certificate issued for that key, or the key the "
			    "certificate was issued for", path);
			goto out;
		}
	}
	*out = c;
	c = NULL;
	r = 0;
 out:
	ERR_clear_error();
	kb_cred_cert_free(c);
	EVP_PKEY_free(skey);
	free(spki);
	OPENSSL_free(der);
	free(b64);
	X509_free(x);
	BIO_free(bio);
	kb_wipe(text, len);
	free(text);
	return r;
}

void
kb_cred_cert_free(struct kb_cred_cert *c)
{
	if (c == NULL)
		return;
	EVP_PKEY_free(c->pub);
	free(c->path);
	free(c);
}

/* RFC 4122 version 4 GUID, as Microsoft's samples make jti. */
static int
guid(char out[37])
{
	unsigned char b[16];
	int r;

	if ((r = kb_random(b, sizeof(b))) != 0)
		return r;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
	    b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* PS256 parameters (RFC 7518 3.5): MGF1 with SHA-256, salt = 32 bytes. */
static int
pss_params(EVP_PKEY_CTX *pctx)
{
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 ? 0 : -1;
}

static bool
ps256_verify(EVP_PKEY *pub, const unsigned char *msg, size_t len,
    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok;

	ok = m != NULL &&
	    EVP_DigestVerifyInit(m, &pctx, EVP_sha256(), NULL, pub) == 1 &&
	    pss_params(pctx) == 0 &&
	    EVP_DigestVerify(m, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return ok;
}

static char *
json_text(cJSON *o)
{
	char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return s;
}

int
kb_cred_assertion(const struct kb_cred_cert *c, const struct kb_kv_signer *signer,
    const char *aud, const char *client_id, int64_t now, struct kb_secret **out)
{
	struct kb_buf jwt;
	cJSON *h = NULL, *p = NULL;
	char *hs = NULL, *ps = NULL, *hb = NULL, *pb = NULL, *sb = NULL, jti[37];
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int r = KB_ERR_ALLOC;

	kb_buf_init_secret(&jwt, 64 * 1024);
	if ((r = guid(jti)) != 0)
		goto out;
	r = KB_ERR_ALLOC;
	if ((h = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(h, "alg", "PS256") == NULL ||
	    cJSON_AddStringToObject(h, "typ", "JWT") == NULL ||
	    cJSON_AddStringToObject(h, "x5t#S256", c->x5t_s256) == NULL)
		goto out;
	hs = json_text(h);
	h = NULL;
	if (hs == NULL || (p = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(p, "aud", aud) == NULL ||
	    cJSON_AddNumberToObject(p, "exp", (double)(now + ASSERTION_LIFETIME)) == NULL ||
	    cJSON_AddStringToObject(p, "iss", client_id) == NULL ||
	    cJSON_AddStringToObject(p, "jti", jti) == NULL ||
	    cJSON_AddNumberToObject(p, "nbf", (double)now) == NULL ||
	    cJSON_AddNumberToObject(p, "iat", (double)now) == NULL ||
	    cJSON_AddStringToObject(p, "sub", client_id) == NULL)
		goto out;
	ps = json_text(p);
	p = NULL;
	if (ps == NULL ||
	    (hb = kb_b64url_encode((const unsigned char *)hs, strlen(hs))) == NULL ||
	    (pb = kb_b64url_encode((const unsigned char *)ps, strlen(ps))) == NULL)
		goto out;
	if ((r = kb_buf_appendf(&jwt, "%s.%s", hb, pb)) != 0)
		goto out;
	if ((r = signer->sign_ps256(signer->ctx, jwt.data, jwt.len, &sig,
	    &sig_len)) != 0)
		goto out;
	if (sig == NULL || sig_len != c->sig_len ||
	    !ps256_verify(c->pub, jwt.data, jwt.len, sig, sig_len)) {
		r = kb_error_set(KB_ERR_CONFIG, "the client assertion signed for the "
		    "certificate in %s does not verify with that certificate's key; "
		    "the signing key is not the certificate's (or does not sign "
		    "RSA-PSS with SHA-256): give the matching certificate and key",
		    c->path);
		goto out;
	}
	if ((sb = kb_b64url_encode(sig, sig_len)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = kb_buf_appendf(&jwt, ".%s", sb)) != 0 ||
	    (r = kb_secret_from(jwt.data, jwt.len, out)) != 0)
		goto out;
	r = 0;
 out:
	cJSON_Delete(h);
	cJSON_Delete(p);
	free(hs);
	free(ps);
	free(hb);
	free(pb);
	free(sb);
	free(sig);
	kb_buf_free(&jwt);
	return r;
}

/* ------------------------------------------------------- software signer */

static int
sw_sign(void *ctx, const unsigned char *msg, size_t len, unsigned char **sig,
    size_t *sig_len)
{
	EVP_PKEY *key = ctx;
	EVP_MD_CTX *m = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *s = NULL;
	size_t sl = 0;
	int r = KB_ERR_CRYPTO;

	if ((m = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(m, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    pss_params(pctx) != 0 ||
	    EVP_DigestSign(m, NULL, &sl, msg, len) != 1 ||
	    (s = malloc(sl)) == NULL ||
	    EVP_DigestSign(m, s, &sl, msg, len) != 1) {
		r = kb_error_set(KB_ERR_CRYPTO, "cannot sign the client assertion "
		    "with the software key (RSA-PSS, SHA-256)");
		goto out;
	}
	*sig = s;
	*sig_len = sl;
	s = NULL;
	r = 0;
 out:
	ERR_clear_error();
	free(s);
	EVP_MD_CTX_free(m);
	return r;
}

static int
sw_public(void *ctx, unsigned char **spki, size_t *len)
{
	unsigned char *der = NULL, *copy;
	int n;

	if ((n = i2d_PUBKEY(ctx, &der)) <= 0)
		return kb_error_set(KB_ERR_CRYPTO, "cannot encode the software key's "
		    "public half");
	if ((copy = malloc((size_t)n)) == NULL) {
		OPENSSL_free(der);
		return KB_ERR_ALLOC;
	}
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*spki = copy;
	*len = (size_t)n;
	return 0;
}

static void
sw_free(void *ctx)
{
	EVP_PKEY_free(ctx);
}

static int
pw_cb(char *buf, int size, int rwflag, void *u)
{
	const struct kb_secret *pw = u;

	(void)rwflag;
	if (pw == NULL || size <= 0 || pw->len > (size_t)size)
		return -1;
	memcpy(buf, pw->data, pw->len);
	return (int)pw->len;
}

int
kb_kv_signer_pem_file(const char *path, const struct kb_secret *password,
    struct kb_kv_signer *out)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	int r;

	if (path == NULL || path[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no key file given");
	if (stat(path, &st) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read the key file %s: %s",
		    path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kb_error_set(KB_ERR_CONFIG, "the key file %s is not a regular "
		    "file", path);
	if ((st.st_mode & 077) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the key file %s can be read by "
		    "others; chmod 600 it (it holds a private key), and replace the "
		    "key if others may have read it", path);
	if ((r = read_pem(path, "key file", &text, &len)) != 0)
		return r;
	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* pw_cb fails without a password: a prompt is never what we want. */
	if ((key = PEM_read_bio_PrivateKey(bio, NULL, pw_cb,
	    (void *)(uintptr_t)password)) == NULL) {
		r = kb_error_set(KB_ERR_CONFIG, "%s holds no private key this can "
		    "read (a PEM private key block, and its password if it is "
		    "encrypted: AZURE_CLIENT_CERTIFICATE_PASSWORD)", path);
		goto out;
	}
	if (!is_rsa(key)) {
		r = kb_error_set(KB_ERR_CONFIG, "the key in %s is not an RSA key; "
		    "client assertions are signed PS256", path);
		goto out;
	}
	out->sign_ps256 = sw_sign;
	out->public_key_der = sw_public;
	out->free_ctx = sw_free;
	out->ctx = key;
	key = NULL;
	r = 0;
 out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	BIO_free(bio);
	kb_wipe(text, len);
	free(text);
	return r;
}
