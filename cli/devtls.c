/*
 * devtls.c: what `keybridge dev up --https` needs besides the token:
 * a local CA, a server certificate for 127.0.0.1, ::1 and localhost,
 * and an Administrator's bearer token.
 *
 * OpenSSL's X509 API rather than running openssl(1): no key on a
 * command line, errors as sentences, and the CA key never reaches disk
 * (it signs the one server certificate and is freed, so nothing else
 * can be issued under this CA).  P-256 keys: every TLS stack takes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"

#define DEV_CERT_DAYS 397    /* what browsers and Node accept for a leaf */

static int
ossl_err(const char *what)
{
	return kb_error_set(KB_ERR_CRYPTO, "cannot make the dev TLS files: %s "
	    "failed", what);
}

static EVP_PKEY *
new_p256(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A certificate for key under issuer (NULL: self-signed by sign_key). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *sign_key,
    bool ca)
{
	unsigned char serial[16];
	X509 *x = NULL;
	X509_NAME *name;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;

	if (kb_random(serial, sizeof(serial)) != 0)
		return NULL;
	serial[0] &= 0x7f;    /* positive */
	if ((x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    (bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_set_serialNumber(x, sn) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)DEV_CERT_DAYS * 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"keybridge dev", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name) != 1)
		goto fail;
	if (issuer == NULL)
		issuer = x;
	if (ca) {
		if (add_ext(x, issuer, NID_basic_constraints,
		    "critical,CA:TRUE,pathlen:0") != 0 ||
		    add_ext(x, issuer, NID_key_usage,
		    "critical,keyCertSign,cRLSign") != 0 ||
		    add_ext(x, issuer, NID_subject_key_identifier, "hash") != 0)
			goto fail;
	} else {
		if (add_ext(x, issuer, NID_basic_constraints,
		    "critical,CA:FALSE") != 0 ||
		    add_ext(x, issuer, NID_key_usage,
		    "critical,digitalSignature") != 0 ||
		    add_ext(x, issuer, NID_ext_key_usage, "serverAuth") != 0 ||
		    add_ext(x, issuer, NID_subject_alt_name,
		    "IP:127.0.0.1,IP:::1,DNS:localhost") != 0 ||
		    add_ext(x, issuer, NID_subject_key_identifier, "hash") != 0 ||
		    add_ext(x, issuer, NID_authority_key_identifier,
		    "keyid:always") != 0)
			goto fail;
	}
	if (X509_sign(x, sign_key, EVP_sha256()) <= 0)
		goto fail;
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	return x;
 fail:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	X509_free(x);
	return NULL;
}

static int
write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	BIO *b;
	char *data = NULL;
	long n;
	int r;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return KB_ERR_ALLOC;
	if ((cert != NULL && PEM_write_bio_X509(b, cert) != 1) ||
	    (key != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0,
	    NULL, NULL) != 1)) {
		BIO_free(b);
		return ossl_err("PEM encoding");
	}
	n = BIO_get_mem_data(b, &data);
	r = kb_file_write_atomic(path, data, (size_t)n, 0600);
	if (key != NULL)
		kb_wipe(data, (size_t)n);
	BIO_free(b);
	return r;
}

int
cli_dev_tls_make(const char *ca_path, const char *cert_path,
    const char *key_path)
{
	EVP_PKEY *ca_key = NULL, *srv_key = NULL;
	X509 *ca = NULL, *srv = NULL;
	int r;

	if ((ca_key = new_p256()) == NULL || (srv_key = new_p256()) == NULL) {
		r = ossl_err("P-256 key generation");
		goto out;
	}
	if ((ca = make_cert(ca_key, "keybridge dev CA", NULL, ca_key,
	    true)) == NULL ||
	    (srv = make_cert(srv_key, "127.0.0.1", ca, ca_key, false)) == NULL) {
		r = ossl_err("certificate signing");
		goto out;
	}
	if ((r = write_pem(ca_path, ca, NULL)) != 0 ||
	    (r = write_pem(cert_path, srv, NULL)) != 0 ||
	    (r = write_pem(key_path, NULL, srv_key)) != 0)
		goto out;
	r = 0;
 out:
	EVP_PKEY_free(ca_key);    /* the CA key never reaches the disk */
	EVP_PKEY_free(srv_key);
	X509_free(ca);
	X509_free(srv);
	return r;
}

int
cli_dev_token_make(const char *path, char hash_hex[65])
{
	unsigned char raw[32], dig[SHA256_DIGEST_LENGTH];
	char *tok = NULL, *hex = NULL;
	size_t n;
	int r;

	if ((r = kb_random(raw, sizeof(raw))) != 0)
		return r;
	if ((tok = kb_b64url_encode(raw, sizeof(raw))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	n = strlen(tok);
	SHA256((const unsigned char *)tok, n, dig);
	if ((hex = kb_hex_encode(dig, sizeof(dig))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* The file holds the token alone, no newline: `$(cat F)` works. */
	if ((r = kb_file_write_atomic(path, tok, n, 0600)) != 0)
		goto out;
	snprintf(hash_hex, 65, "%s", hex);
 out:
	kb_wipe(raw, sizeof(raw));
	kb_wipe(dig, sizeof(dig));
	if (tok != NULL)
		kb_freezero_str(tok);
	free(hex);
	return r;
}
