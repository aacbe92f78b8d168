/*
 * kb_pkcs11.h: keybridge's library over the PKCS#11 C API.
 *
 * One public header.  Only pkcs11/ calls a module's function list; the
 * agent sees modules, tokens and keys through these opaque types.
 * Every function returns 0 or a negative KB_ERR_* code (kb_common.h) and
 * records a sentence with kb_error_set() on failure; raw CK_RV values go
 * to the debug log only.  Outputs are written only on success.
 *
 * Threading: a kb_p11_token may be used from several threads at once;
 * each call borrows a session from the token's pool.
 */
#ifndef KB_PKCS11_H
#define KB_PKCS11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb_common.h"

#define KB_P11_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct kb_p11_module kb_p11_module;
typedef struct kb_p11_token kb_p11_token;
typedef struct kb_p11_key kb_p11_key;

/* ------------------------------------------------------------ PKCS#11 URI */

/*
 * RFC 7512 PKCS#11 URI.  Path attributes kept: token, serial, model,
 * manufacturer, slot-id, object, id, type.  pin-value is refused (a PIN
 * never travels in a URI here); pin-source and module-path are accepted
 * and kept.  Other unknown path attributes are refused (RFC 7512 sect. 2.3
 * lets a parser refuse what it does not understand, and silently
 * widening a selection is worse); unknown query attributes are ignored.
 * Values are percent-decoded; an id may hold any bytes.
 */
struct kb_p11_uri {
	char *token;          /* CKA token label, decoded, or NULL */
	char *serial;
	char *model;
	char *manufacturer;
	bool has_slot_id;
	unsigned long slot_id;
	char *object;         /* CKA_LABEL */
	unsigned char *id;    /* CKA_ID bytes */
	size_t id_len;
	bool has_id;
	char *type;           /* "public", "private", "secret-key", "cert", "data" */
	char *pin_source;
	char *module_path;
};

int kb_p11_uri_parse(const char *s, struct kb_p11_uri **out) KB_WARN_UNUSED;
/* Canonical text; attributes in RFC order, reserved bytes percent-encoded. */
char *kb_p11_uri_format(const struct kb_p11_uri *u);
void kb_p11_uri_free(struct kb_p11_uri *u);

/* ---------------------------------------------------------------- modules */

/*
 * Load a module by path (NULL: KB_P11_DEFAULT_MODULE).  The path is made
 * canonical; the same canonical path loaded twice returns the same module
 * with a reference added.  C_GetInterface is preferred to
 * C_GetFunctionList; CKR_CRYPTOKI_ALREADY_INITIALIZED is accepted, and
 * then C_Finalize is not ours to call.
 */
int kb_p11_module_load(const char *path, kb_p11_module **out) KB_WARN_UNUSED;

/*
 * Load a module in a separate process, as ssh-pkcs11-helper does: the
 * module's memory (SoftHSM keeps every object in memory), its crashes
 * and its code stay out of this process.  host_exe (NULL: the installed
 * keybridge-p11host) loads the module and serves it over p11-kit's RPC
 * protocol on a unix socket made in sock_dir; this process talks to it
 * through p11-kit's client module (p11-kit-client.so), with
 * KB_P11_HOST_CONNS connections used one call at a time each.  Every other
 * kb_p11_* function works on the result as on an in-process module;
 * session and object handles are the host's.
 *
 * sock_dir: absolute path of a directory owned by the effective user with
 * no access for group or others (0700), else KB_ERR_CONFIG.  The socket
 * in it is removed once the connections are made; the host refuses peers
 * of another uid.  The host inherits this process's environment (the
 * module's configuration, e.g. SOFTHSM2_CONF, travels that way: keep
 * secrets out of it) and stderr, and gets nothing secret in argv; PINs
 * reach it over the socket in C_Login.
 *
 * The same canonical path loaded isolated twice returns the same module
 * with a reference added; an isolated and an in-process load of one path
 * are two modules (two C_Initialize's of the library, in two processes).
 *
 * Start-up only: p11-kit's client reads its server address from the
 * environment variable P11_KIT_SERVER_ADDRESS, so this sets it around its
 * own calls (and puts back what was there, or leaves it empty).  The
 * first isolated load adds that variable to the environment, which is
 * unsafe while another thread may read the environment: load isolated
 * modules before starting threads.  Later loads only replace the value.
 * SIGPIPE is set to SIG_IGN if it was at SIG_DFL (a write to a host that
 * died must not kill this process).  The host gets SIGTERM when the
 * thread that loaded the module exits (PR_SET_PDEATHSIG follows the
 * thread), so load from the main thread or one that lives as long.
 *
 * If the host exits, every call on the module fails with KB_ERR_DEVICE
 * and a sentence naming the module host; kb_p11_module_free stops the
 * host (SIGTERM, then SIGKILL after 3 s) and reaps it.
 */
int kb_p11_module_load_isolated(const char *path, const char *host_exe,
    const char *sock_dir, kb_p11_module **out) KB_WARN_UNUSED;
void kb_p11_module_free(kb_p11_module *m);
const char *kb_p11_module_path(const kb_p11_module *m);
bool kb_p11_module_isolated(const kb_p11_module *m);
/* The host's pid (isolated modules whose host runs), else 0.  For tests. */
long kb_p11_module_host_pid(kb_p11_module *m);
/*
 * Isolated modules: a call that has not returned after seconds (1 to 3600;
 * default 60) gets the host killed, and that call and every later one on
 * the module fail with KB_ERR_DEVICE and a sentence that says so.  Two
 * users of one module: the longer timeout holds.  No-op in-process.
 */
void kb_p11_module_set_call_timeout(kb_p11_module *m, unsigned seconds);

/* Token flags we report (subset of CKF_*). */
struct kb_p11_token_info {
	unsigned long slot_id;
	bool present;
	char slot_description[65];
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	unsigned long flags;          /* CK_TOKEN_INFO.flags */
	bool initialized;
	bool login_required;
	bool user_pin_initialized;
	bool user_pin_locked;
	bool user_pin_count_low;
	bool user_pin_final_try;
	bool write_protected;
};

/* All slots (tokens present or not).  *out is freed with free(). */
int kb_p11_list_tokens(kb_p11_module *m, struct kb_p11_token_info **out,
    size_t *n) KB_WARN_UNUSED;
/* "CKF_RNG|CKF_LOGIN_REQUIRED|..." into a malloc'd string. */
char *kb_p11_token_flags_str(unsigned long flags);
/* URI of a token: pkcs11:model=..;manufacturer=..;serial=..;token=.. */
char *kb_p11_token_info_uri(const struct kb_p11_token_info *ti);

/* Initialise the token in a slot (C_InitToken + C_InitPIN), for dev envs. */
int kb_p11_init_token(kb_p11_module *m, unsigned long slot_id,
    const char *label, const struct kb_secret *so_pin,
    const struct kb_secret *user_pin) KB_WARN_UNUSED;
/* Slot id of the first present token that is not initialised. */
int kb_p11_find_free_slot(kb_p11_module *m, unsigned long *slot_id) KB_WARN_UNUSED;

/* ----------------------------------------------------------------- tokens */

/*
 * Open the one token matching the token parts of sel (token, serial,
 * model, manufacturer, slot-id).  Zero matches: KB_ERR_NO_TOKEN; more than
 * one: KB_ERR_INVALID with a sentence listing how to narrow it.
 * max_sessions bounds the session pool (0: 8).
 */
int kb_p11_token_open(kb_p11_module *m, const struct kb_p11_uri *sel,
    unsigned max_sessions, kb_p11_token **out) KB_WARN_UNUSED;
void kb_p11_token_close(kb_p11_token *t);
int kb_p11_token_get_info(kb_p11_token *t, struct kb_p11_token_info *out) KB_WARN_UNUSED;

/*
 * Log the user in.  The token keeps a wiped-on-free copy of the PIN only
 * to log in again after the module dropped all sessions.  A PIN that got
 * CKR_PIN_INCORRECT is never retried on its own: the token is marked and
 * later operations fail with KB_ERR_PIN_INCORRECT until a new login.
 * CKR_USER_ALREADY_LOGGED_IN is success.
 */
int kb_p11_token_login(kb_p11_token *t, const struct kb_secret *pin) KB_WARN_UNUSED;
bool kb_p11_token_logged_in(kb_p11_token *t);

struct kb_p11_pool_stats {
	unsigned open;      /* sessions open now */
	unsigned idle;      /* of those, not borrowed */
	unsigned max;
	unsigned long reopened;  /* sessions replaced after HANDLE_INVALID/CLOSED */
};
void kb_p11_token_pool_stats(kb_p11_token *t, struct kb_p11_pool_stats *out);

/*
 * Check a mechanism with C_GetMechanismInfo; KB_ERR_MECHANISM with a
 * sentence naming it ("token 'x' does not support CKM_AES_GCM") if absent
 * or lacking the needed CKF_* flags.
 */
int kb_p11_token_check_mechanism(kb_p11_token *t, unsigned long mech,
    unsigned long need_flags) KB_WARN_UNUSED;
const char *kb_p11_mech_name(unsigned long mech);

/* ------------------------------------------------------------------- keys */

enum kb_p11_key_type { KB_P11_AES = 1, KB_P11_RSA, KB_P11_EC, KB_P11_GENERIC_SECRET };
enum kb_p11_curve { KB_P11_P256 = 1, KB_P11_P384, KB_P11_P521 };

/* Key operations, as Key Vault's key_ops map onto PKCS#11 usage flags. */
enum {
	KB_P11_OP_ENCRYPT = 1u << 0,   /* CKA_ENCRYPT */
	KB_P11_OP_DECRYPT = 1u << 1,   /* CKA_DECRYPT */
	KB_P11_OP_SIGN    = 1u << 2,   /* CKA_SIGN */
	KB_P11_OP_VERIFY  = 1u << 3,   /* CKA_VERIFY */
	KB_P11_OP_WRAP    = 1u << 4,   /* CKA_WRAP */
	KB_P11_OP_UNWRAP  = 1u << 5,   /* CKA_UNWRAP */
	KB_P11_OP_DERIVE  = 1u << 6,   /* CKA_DERIVE */
	KB_P11_OP_ALL     = 0x3f
};

struct kb_p11_keyspec {
	enum kb_p11_key_type type;
	unsigned bits;                 /* AES 128/192/256, RSA 2048/3072/4096 */
	enum kb_p11_curve curve;       /* EC */
	const char *label;             /* CKA_LABEL, required */
	const unsigned char *id;       /* CKA_ID, required */
	size_t id_len;
	unsigned ops;                  /* KB_P11_OP_*; 0 = all the type allows */
	bool extractable;              /* default false: CKA_EXTRACTABLE */
	bool token;                    /* true: CKA_TOKEN (default callers set it) */
	/*
	 * Backup-able: CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED, so that only
	 * a key the SO marked CKA_TRUSTED (the token's backup wrapping key,
	 * below) can wrap it, and never in the clear (CKA_SENSITIVE stays).
	 */
	bool backup;
};

/* Generate a key (or key pair) on the token with CKA_SENSITIVE=true. */
int kb_p11_generate(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    kb_p11_key **out) KB_WARN_UNUSED;

/*
 * Import a secret key value (AES or generic secret, e.g. for HMAC) as a
 * token object with CKA_SENSITIVE=true; value bytes are wiped by the
 * caller's kb_secret.
 */
int kb_p11_import_secret(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_secret *value, kb_p11_key **out) KB_WARN_UNUSED;

/*
 * Private key material to import (JWK parts, RFC 7518 section 6).
 * Integers are unsigned big-endian; leading zero bytes are ignored.
 * RSA needs every CRT part (tokens compute with them; the agent does not
 * derive p and q from n, e, d).  EC x, y and d are exactly the curve's
 * size in bytes (32, 48, 66).
 */
struct kb_p11_rsa_parts {
	const unsigned char *n, *e;
	size_t n_len, e_len;
	const struct kb_secret *d, *p, *q, *dp, *dq, *qi;
};
struct kb_p11_ec_parts {
	const unsigned char *x, *y;
	size_t x_len, y_len;
	const struct kb_secret *d;
};

/*
 * Import an RSA or EC key pair as two token objects with spec's label,
 * id and usage flags: the private key CKA_PRIVATE, CKA_SENSITIVE and not
 * extractable (spec->extractable is refused: an imported key stays on
 * the token), the public key next to it.  The material is checked with
 * OpenSSL first (RSA: n = p*q, e*d = 1 mod lambda(n), CRT parts and the
 * key size 2048/3072/4096; EC: the point is on spec->curve and d*G is
 * that point); a key that fails is KB_ERR_INVALID, with a sentence that
 * names the check and never a byte of the key, and nothing is created.
 * The public object is made first; if the private one is refused, the
 * public one is destroyed again (a crash in between leaves a half pair,
 * which kb_p11_key_is_complete reports).  CKA_ALWAYS_SENSITIVE and
 * CKA_NEVER_EXTRACTABLE are the token's (false for imported keys).
 */
/*
 * The checks the imports make, alone (no token): callers that record an
 * intent before the token step check first.  *bits gets the RSA size.
 */
int kb_p11_rsa_parts_check(const struct kb_p11_rsa_parts *parts,
    unsigned *bits) KB_WARN_UNUSED;
int kb_p11_ec_parts_check(enum kb_p11_curve curve,
    const struct kb_p11_ec_parts *parts) KB_WARN_UNUSED;
int kb_p11_import_rsa(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_p11_rsa_parts *parts, kb_p11_key **out) KB_WARN_UNUSED;
int kb_p11_import_ec(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_p11_ec_parts *parts, kb_p11_key **out) KB_WARN_UNUSED;

/*
 * Find keys.  Matches on CKA_LABEL (object), CKA_ID (id) and class (type)
 * from filter; NULL filter: every key object.  A key pair is one
 * kb_p11_key.  *out is an array of n keys, freed with kb_p11_keys_free.
 */
int kb_p11_find_keys(kb_p11_token *t, const struct kb_p11_uri *filter,
    kb_p11_key ***out, size_t *n) KB_WARN_UNUSED;
void kb_p11_keys_free(kb_p11_key **keys, size_t n);
void kb_p11_key_free(kb_p11_key *k);

struct kb_p11_key_attrs {
	enum kb_p11_key_type type;
	unsigned bits;
	enum kb_p11_curve curve;
	char *label;
	unsigned char *id;
	size_t id_len;
	unsigned ops;                  /* usage flags now set */
	bool sensitive;
	bool extractable;
	bool always_sensitive;
	bool never_extractable;
	bool has_start_date, has_end_date;
	char start_date[9], end_date[9];   /* YYYYMMDD */
};
/* Read attributes from the token (not cached). Free with _attrs_clear. */
int kb_p11_key_get_attrs(kb_p11_key *k, struct kb_p11_key_attrs *out) KB_WARN_UNUSED;
void kb_p11_key_attrs_clear(struct kb_p11_key_attrs *a);
enum kb_p11_key_type kb_p11_key_type(const kb_p11_key *k);
unsigned kb_p11_key_bits(const kb_p11_key *k);
/* CKA_LABEL and CKA_ID as found or set (NULL / 0 if the object has none). */
const char *kb_p11_key_label(const kb_p11_key *k);
const unsigned char *kb_p11_key_id(const kb_p11_key *k, size_t *len);
/* PKCS#11 URI naming the key on its token (token parts + object + id). */
char *kb_p11_key_uri(const kb_p11_key *k);

int kb_p11_key_set_label(kb_p11_key *k, const char *label) KB_WARN_UNUSED;
/*
 * Give every object of the key a new CKA_LABEL and CKA_ID (id: 1 to 256
 * bytes), both in one C_SetAttributeValue per object, the public half
 * before the private half; for adopting objects the agent did not create.
 * If the private half refuses, the public half is put back as it was
 * (best effort: a crash in between leaves the public half renamed).  On
 * success the key's cached label and id (kb_p11_key_uri) follow.
 */
int kb_p11_key_set_label_id(kb_p11_key *k, const char *label,
    const unsigned char *id, size_t id_len) KB_WARN_UNUSED;
/*
 * True when the key has every object its type needs: an RSA or EC key
 * both its private and its public half (a crash inside
 * C_GenerateKeyPair, or another application, may leave one), a secret
 * key its object.  From the handles found; the token is not asked.
 */
bool kb_p11_key_is_complete(const kb_p11_key *k);
/* Set usage flags (all objects of a pair). Tokens may refuse: KB_ERR_UNSUPPORTED. */
int kb_p11_key_set_ops(kb_p11_key *k, unsigned ops) KB_WARN_UNUSED;
/* CKA_START_DATE / CKA_END_DATE from Unix time; 0 clears the date. */
int kb_p11_key_set_dates(kb_p11_key *k, int64_t start, int64_t end) KB_WARN_UNUSED;
/* Destroy every object of the key on the token. */
int kb_p11_key_destroy(kb_p11_key *k) KB_WARN_UNUSED;

/* ------------------------------------------------------------- operations */

/*
 * AES-GCM, 128-bit tag.  The IV is always the caller's (1 to 128 bytes; use
 * 12 random bytes from kb_p11_random and never reuse one under a key): the
 * function cannot hand back an IV it made.  *ct is malloc'd (ct_len ==
 * in_len).
 */
int kb_p11_aes_gcm_encrypt(kb_p11_key *k, const unsigned char *iv, size_t iv_len,
    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t in_len,
    unsigned char **ct, size_t *ct_len, unsigned char tag[16]) KB_WARN_UNUSED;
/* Fails with KB_ERR_CRYPTO (and no output) if the tag does not match. */
int kb_p11_aes_gcm_decrypt(kb_p11_key *k, const unsigned char *iv, size_t iv_len,
    const unsigned char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len,
    const unsigned char tag[16], unsigned char **pt, size_t *pt_len) KB_WARN_UNUSED;

enum kb_p11_hash { KB_P11_SHA1 = 1, KB_P11_SHA256, KB_P11_SHA384, KB_P11_SHA512 };

/*
 * RSA-OAEP with MGF1 of the same hash (SHA-1 or SHA-256), empty label.
 * A token without OAEP-SHA-256 (SoftHSM 2.6) gives KB_ERR_MECHANISM.
 * Decryption of a ciphertext that does not open gives KB_ERR_CRYPTO.
 */
int kb_p11_rsa_oaep_encrypt(kb_p11_key *k, enum kb_p11_hash h,
    const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len) KB_WARN_UNUSED;
int kb_p11_rsa_oaep_decrypt(kb_p11_key *k, enum kb_p11_hash h,
    const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len) KB_WARN_UNUSED;

/*
 * Key Vault's RSA1_5: RSAES-PKCS1-v1_5 (RFC 8017 section 7.2) with
 * CKM_RSA_PKCS on the token; encryption with the public half (in_len at
 * most the modulus size - 11 bytes; empty is allowed), decryption with the
 * private half (in_len exactly the modulus size).  A length outside those
 * bounds is KB_ERR_INVALID before the token is asked.  A ciphertext that
 * does not open gives KB_ERR_CRYPTO with one fixed sentence that never
 * says why (no padding oracle); missing CKA_DECRYPT stays KB_ERR_DENIED.
 * *out is malloc'd (encrypt: the modulus size); wipe a plaintext
 * (kb_wipe) before freeing it.
 */
int kb_p11_rsa_pkcs1_encrypt(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len) KB_WARN_UNUSED;
int kb_p11_rsa_pkcs1_decrypt(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char **out, size_t *out_len) KB_WARN_UNUSED;

enum kb_p11_wrap {
	KB_P11_WRAP_AES_KW = 1,     /* RFC 3394, CKM_AES_KEY_WRAP */
	KB_P11_WRAP_AES_KWP,        /* RFC 5649, CKM_AES_KEY_WRAP_PAD */
	KB_P11_WRAP_RSA_OAEP_SHA1,
	KB_P11_WRAP_RSA_OAEP_SHA256
};
/* Wrap the key 'target' under 'wrapping' (target must be extractable). */
int kb_p11_wrap_key(kb_p11_key *wrapping, enum kb_p11_wrap mech, kb_p11_key *target,
    unsigned char **out, size_t *out_len) KB_WARN_UNUSED;
/* Unwrap into a new token secret key described by spec (type, bits, label, id, ops). */
int kb_p11_unwrap_key(kb_p11_key *unwrapping, enum kb_p11_wrap mech,
    const unsigned char *wrapped, size_t wrapped_len,
    const struct kb_p11_keyspec *spec, kb_p11_key **out) KB_WARN_UNUSED;
/*
 * Raw wrap/unwrap of caller-supplied bytes (Key Vault's wrapKey takes a
 * value, not a key): the bytes become a short-lived session secret key that
 * is wrapped (C_WrapKey) or unwrapped into (C_UnwrapKey, then read) and
 * destroyed, so the key's CKA_WRAP/CKA_UNWRAP govern, as for keys.
 * AES-KW takes a multiple of 8 bytes (>= 16).  AES-KWP of a length that is
 * not a multiple of 8 needs a token that does RFC 5649 right or takes an
 * IV for CKM_AES_KEY_WRAP; SoftHSM 2.6 does neither: KB_ERR_MECHANISM.
 * unwrap_bytes' output is secret: wipe it (kb_wipe) before freeing.
 */
int kb_p11_wrap_bytes(kb_p11_key *k, enum kb_p11_wrap mech,
    const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len) KB_WARN_UNUSED;
int kb_p11_unwrap_bytes(kb_p11_key *k, enum kb_p11_wrap mech,
    const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len) KB_WARN_UNUSED;

/*
 * Backups (docs/backup.md).  A token that allows them holds two AES-256
 * keys, found by label:
 * - the wrapping key, made by the SO: CKA_TRUSTED, public (an SO cannot
 *   make private objects; SoftHSM then keeps its value unencrypted on
 *   disk), sensitive, never extractable, CKA_WRAP/CKA_UNWRAP only, with a
 *   CKA_UNWRAP_TEMPLATE that keeps whatever it unwraps sensitive and
 *   wrappable only by trusted keys;
 * - the sealing key, made by the user: private, sensitive, never
 *   extractable, CKA_ENCRYPT/CKA_DECRYPT only (AES-GCM over the whole
 *   backup, so a blob needs the user PIN as well as the wrapping key).
 * kb_p11_backup_keys_init makes both from the caller's values, so that
 * several tokens can share them and restore each other's backups; the
 * caller wipes the values.  A token that has them already: KB_ERR_CONFLICT.
 */
#define KB_P11_BACKUP_WRAP_LABEL "keybridge backup wrap"
#define KB_P11_BACKUP_SEAL_LABEL "keybridge backup seal"
int kb_p11_backup_keys_init(kb_p11_module *m, unsigned long slot_id,
    const struct kb_secret *so_pin, const struct kb_secret *user_pin,
    const struct kb_secret *wrap_value, const struct kb_secret *seal_value) KB_WARN_UNUSED;
/* Both keys of a token; none or more than one of either: KB_ERR_NOT_FOUND. */
int kb_p11_backup_keys_find(kb_p11_token *t, kb_p11_key **wrap,
    kb_p11_key **seal) KB_WARN_UNUSED;
/*
 * A key's secret half wrapped under the wrapping key (AES key wrap with
 * padding, the token's PKCS#8 for private keys).  A key made without
 * spec.backup: KB_ERR_DENIED.
 */
int kb_p11_backup_wrap(kb_p11_key *wrap, kb_p11_key *target,
    unsigned char **out, size_t *out_len) KB_WARN_UNUSED;
/*
 * The reverse, as a new token key described by spec (spec.backup is
 * implied): a secret key, or a pair whose public half is made from
 * pa/pb (RSA: n and e; EC: x and y, the curve's size each) before the
 * private half is unwrapped, and destroyed again if that fails.
 */
int kb_p11_backup_unwrap(kb_p11_key *wrap, const unsigned char *wrapped,
    size_t wrapped_len, const struct kb_p11_keyspec *spec,
    const unsigned char *pa, size_t pa_len, const unsigned char *pb,
    size_t pb_len, kb_p11_key **out) KB_WARN_UNUSED;

enum kb_p11_sig {
	KB_P11_SIG_RSA_PKCS1 = 1,   /* RS256/384/512: DigestInfo + CKM_RSA_PKCS */
	KB_P11_SIG_RSA_PSS,         /* PS256/384/512: CKM_RSA_PKCS_PSS, salt = hash len */
	KB_P11_SIG_ECDSA            /* ES256/384/512: CKM_ECDSA, raw r||s */
};
/* Sign a digest (its length must match hash). */
int kb_p11_sign_digest(kb_p11_key *k, enum kb_p11_sig alg, enum kb_p11_hash h,
    const unsigned char *digest, size_t digest_len,
    unsigned char **sig, size_t *sig_len) KB_WARN_UNUSED;
/* 0 if valid, KB_ERR_SIGNATURE if not, another code on failure. */
int kb_p11_verify_digest(kb_p11_key *k, enum kb_p11_sig alg, enum kb_p11_hash h,
    const unsigned char *digest, size_t digest_len,
    const unsigned char *sig, size_t sig_len) KB_WARN_UNUSED;

/* HMAC-SHA-256 over data with a secret key (AES or generic secret). */
int kb_p11_hmac_sha256(kb_p11_key *k, const unsigned char *in, size_t in_len,
    unsigned char mac[32]) KB_WARN_UNUSED;
int kb_p11_hmac_sha256_verify(kb_p11_key *k, const unsigned char *in,
    size_t in_len, const unsigned char mac[32]) KB_WARN_UNUSED;

int kb_p11_random(kb_p11_token *t, unsigned char *out, size_t n) KB_WARN_UNUSED;

/* -------------------------------------------------------------- public keys */

/*
 * The public half of an RSA or EC key as a JWK JSON object text
 * ({"kty":"RSA","n":..,"e":..} / {"kty":"EC","crv":"P-256","x":..,"y":..}),
 * or as PEM SubjectPublicKeyInfo.  Both malloc'd.  Secret keys:
 * KB_ERR_INVALID.
 */
int kb_p11_public_jwk(kb_p11_key *k, char **json) KB_WARN_UNUSED;
int kb_p11_public_pem(kb_p11_key *k, char **pem) KB_WARN_UNUSED;

/* ------------------------------------------------------------- raw access */

/*
 * For benchmarks and tests that compare against raw calls into the same
 * module: the CK_FUNCTION_LIST_PTR (as void *), and the token's slot.
 * For an isolated module: the first connection's list (p11-kit's client;
 * its calls queue behind the library's own calls on that connection).
 * Nothing in the agent uses these.
 */
void *kb_p11_module_function_list(kb_p11_module *m);
unsigned long kb_p11_token_slot(const kb_p11_token *t);
/* Object handles of a key: private (or secret) and public (0 if none). */
void kb_p11_key_handles(const kb_p11_key *k, unsigned long *priv,
    unsigned long *pub);

#endif /* KB_PKCS11_H */
