/*
 * cred.h: what credential.c, assertion.c and msi.c share.  Private to
 * the credential files (internal.h is the rest of kv-client's).
 */
#ifndef KB_KVCLIENT_CRED_H
#define KB_KVCLIENT_CRED_H

#include "internal.h"

#define KB_CRED_MAX_TOKEN 16384
#define KB_CRED_MAX_RESPONSE (256 * 1024)

/* A bearer token: printable ASCII without spaces, 1..KB_CRED_MAX_TOKEN. */
bool kb_cred_token_ok(const unsigned char *p, size_t n);
/* A JSON number, or a string of digits (IMDS), as int64. */
bool kb_cred_json_int64(const cJSON *j, int64_t *out);
/* exp of a JWT, or 0 when the token is no JWT or has none. */
int64_t kb_cred_jwt_exp(const unsigned char *tok, size_t n);
/*
 * The token endpoint's answer (status, body) to a client credentials
 * request.  200 with a bearer access_token and expires_in: 0, the token
 * and now + expires_in (at most a year).  200 without them:
 * KB_ERR_PROTOCOL.  Another status: KB_ERR_DENIED (400, 401) or
 * KB_ERR_UNREACHABLE, with the service's error and description;
 * client_id and tenant only name things in that sentence.  Outputs are
 * written only on success.  (Fuzzed by fuzz/fuzz_tokenresp.c.)
 */
int kb_cred_token_answer(const char *endpoint, const char *client_id,
    const char *tenant, long status, const unsigned char *body, size_t len,
    struct kb_secret **out_token, int64_t *out_expiry) KB_WARN_UNUSED;

/* ------------------------------------------------------------ assertion.c */

/* A client certificate: its thumbprint, key, file name. */
struct kb_cred_cert;

/*
 * Load the certificate in path (PEM) for signer: RSA key, valid now,
 * and the signer's key when it can say.  KB_ERR_CONFIG with a sentence.
 */
int kb_cred_cert_load(const char *path, const struct kb_kv_signer *signer,
    struct kb_cred_cert **out) KB_WARN_UNUSED;
void kb_cred_cert_free(struct kb_cred_cert *c);

/*
 * A signed client assertion for aud and client_id (NOTES.md 2.3), in a
 * secret; the signature is verified with the certificate's key first.
 */
int kb_cred_assertion(const struct kb_cred_cert *c,
    const struct kb_kv_signer *signer, const char *aud, const char *client_id,
    int64_t now, struct kb_secret **out) KB_WARN_UNUSED;

/* -------------------------------------------------------------------- msi.c */

struct kb_cred_msi;

int kb_cred_msi_new(const struct kb_kv_managed_identity_options *o,
    struct kb_cred_msi **out) KB_WARN_UNUSED;
void kb_cred_msi_free(struct kb_cred_msi *m);
bool kb_cred_msi_is_app_service(const struct kb_cred_msi *m);
/* A token for scope ("https://vault.azure.net/.default"). */
int kb_cred_msi_fetch(struct kb_cred_msi *m, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry) KB_WARN_UNUSED;
/*
 * "06/20/2019 02:57:58 +00:00" (App Service's expires_on) as Unix
 * seconds, or -1.
 */
int64_t kb_cred_msi_date(const char *s);
/*
 * IMDS's or App Service's 200 answer: a bearer access_token and an
 * expiry in the future (expires_on as a number, digits or App Service's
 * date, else expires_in).  KB_ERR_PROTOCOL otherwise.  Outputs are
 * written only on success.
 */
int kb_cred_msi_answer(const char *endpoint, const unsigned char *body,
    size_t len, struct kb_secret **out_token, int64_t *out_expiry) KB_WARN_UNUSED;
/*
 * The error for a refusal (status not 200) with body: KB_ERR_CONFIG
 * (400), KB_ERR_DENIED (401, 403) or KB_ERR_UNREACHABLE, with the
 * service's error and description; retried says " after retries".
 */
int kb_cred_msi_refusal(const char *endpoint, const char *client_id,
    long status, const unsigned char *body, size_t len, bool retried);

#endif /* KB_KVCLIENT_CRED_H */
