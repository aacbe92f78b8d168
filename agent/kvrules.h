/*
 * kvrules.h: Azure Key Vault's rules for names, versions, tags, key
 * shapes and key_ops, as tables and pure functions (no I/O, no state).
 *
 * The vault store (store.c) and the HTTP layer both call these, so a
 * name the API accepts is exactly a name the store accepts.  Each rule
 * cites where it comes from (NOTES.md is /work/shared/keyvault/NOTES.md,
 * keys.json is the 2026-04-01 data-plane spec).
 *
 * Every check returns 0 or KB_ERR_INVALID / KB_ERR_LIMIT with a
 * kb_error_set() sentence naming the rule.
 */
#ifndef KB_KVRULES_H
#define KB_KVRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kb_common.h"

/* NOTES.md 1.3: names are 1-127 characters of 0-9a-zA-Z-. */
#define KV_NAME_MAX 127
/* NOTES.md 1.3: vault names are 3-24 characters. */
#define KV_VAULT_NAME_MIN 3
#define KV_VAULT_NAME_MAX 24
/* A version id is 16 random bytes shown as 32 lower-case hex chars. */
#define KV_VERSION_BYTES 16
#define KV_VERSION_LEN 32
/* NOTES.md 1.3 (keys/about-keys-details.md): 15 tags, 256 chars each. */
#define KV_TAGS_MAX 15
#define KV_TAG_NAME_MAX 256
#define KV_TAG_VALUE_MAX 256
/* Longest tags JSON text accepted before parsing (15 * 2 * 256 chars of
 * up to 4 UTF-8 bytes, or 6-byte \u escapes, plus punctuation). */
#define KV_TAGS_JSON_MAX ((size_t)64 * 1024)
/* NOTES.md 5 (managed-hsm/soft-delete-overview.md): 7-90 days, default 90. */
#define KV_RETENTION_MIN 7
#define KV_RETENTION_MAX 90
#define KV_RETENTION_DEFAULT 90

/* The string fields with a syntax rule (rows of kv_string_rules[]). */
enum kv_field {
	KV_FIELD_KEY_NAME = 0,
	KV_FIELD_VAULT_NAME,
	KV_FIELD_VERSION,
	KV_FIELD_TAG_NAME,
	KV_FIELD_TAG_VALUE,
	KV_FIELD__COUNT
};

/* Check s against the rule for field.  s must not be NULL. */
int kv_check(enum kv_field field, const char *s) KB_WARN_UNUSED;
/* Human name of a field ("key name"), for messages. */
const char *kv_field_name(enum kv_field field);

/*
 * Lower-case an ASCII name into dst (size n).  Key Vault compares names
 * and versions case-insensitively (NOTES.md 1.3), so the store looks
 * them up by this form.  Returns KB_ERR_LIMIT if dst is too small.
 */
int kv_lower(const char *s, char *dst, size_t n) KB_WARN_UNUSED;

/* Number of UTF-8 characters in s, or -1 if s is not valid UTF-8. */
long kv_utf8_chars(const char *s);

/*
 * Tags: a JSON object whose members are strings; at most KV_TAGS_MAX,
 * names 1..256 and values 0..256 characters, no duplicate names.
 */
int kv_tags_check(const cJSON *tags) KB_WARN_UNUSED;

/* key_ops as a bit mask (keys.json JsonWebKeyOperation). */
enum {
	KV_OP_ENCRYPT = 1u << 0,
	KV_OP_DECRYPT = 1u << 1,
	KV_OP_SIGN = 1u << 2,
	KV_OP_VERIFY = 1u << 3,
	KV_OP_WRAP_KEY = 1u << 4,
	KV_OP_UNWRAP_KEY = 1u << 5,
	KV_OP_IMPORT = 1u << 6,
	KV_OP_EXPORT = 1u << 7,
	KV_OP__ALL = (1u << 8) - 1
};
/* The bit for an operation name ("wrapKey"), or 0 if unknown. */
unsigned kv_key_op_bit(const char *name);
/* The name of one bit, or NULL. */
const char *kv_key_op_name(unsigned bit);
/* A JSON array of operation names into a mask; unknown or repeated names
 * and non-strings are KB_ERR_INVALID. */
int kv_key_ops_parse(const cJSON *arr, unsigned *out) KB_WARN_UNUSED;
/* A mask into a new JSON array (in table order), or NULL on ENOMEM. */
cJSON *kv_key_ops_json(unsigned mask);

/* kty and crv (keys.json JsonWebKeyType, JsonWebKeyCurveName). */
int kv_kty_check(const char *kty) KB_WARN_UNUSED;
int kv_crv_check(const char *crv) KB_WARN_UNUSED;
/*
 * A whole key shape: RSA* needs key_size 2048/3072/4096 and no curve;
 * EC* needs a curve and key_size 0; oct* needs key_size 128/192/256 and
 * no curve.  crv may be NULL or "" for none.
 */
int kv_key_shape_check(const char *kty, unsigned key_size, const char *crv)
    KB_WARN_UNUSED;

int kv_retention_check(long days) KB_WARN_UNUSED;

/*
 * attributes.recoveryLevel for a vault (keys.json DeletionRecoveryLevel;
 * NOTES.md 1.2): soft-delete is always on for local vaults, so 90 days
 * gives "Recoverable", fewer "CustomizedRecoverable", and without purge
 * protection the suffix "+Purgeable".  Never NULL for valid input.
 */
const char *kv_recovery_level(unsigned retention_days, bool purge_protection);

/* ------------------------------------------------------- rotation policy */

/* Longest ISO 8601 duration accepted ("P999999Y..." is far beyond). */
#define KV_DURATION_MAX 32
/* Longest canonical policy text (two actions and an expiry fit in 300). */
#define KV_POLICY_JSON_MAX 1024
/*
 * keys.json KeyRotationPolicy / NOTES.md 1.5 and Key Vault's key
 * rotation documentation: expiryTime at least 28 days; a Rotate trigger
 * at least 7 days after creation or before expiry (and at least 7 days
 * before expiryTime); a Notify trigger only before expiry, at least 7
 * days.
 */
#define KV_POLICY_EXPIRY_MIN_DAYS 28
#define KV_POLICY_TRIGGER_MIN_DAYS 7
/* The Notify action Key Vault adds when a policy has none. */
#define KV_POLICY_NOTIFY_DEFAULT "P30D"

/*
 * An ISO 8601 duration as Key Vault takes it: P[nY][nM][nD][T[nH][nM][nS]]
 * or PnW, whole numbers of up to 6 digits, upper-case designators, at
 * least one component.  Months count 30 days and years 365 (for the
 * minimums only; the text is kept as given).  *seconds is written on
 * success.
 */
int kv_duration_parse(const char *s, int64_t *seconds) KB_WARN_UNUSED;

/*
 * Check a KeyRotationPolicy request body and build its canonical form:
 * {"lifetimeActions":[{"trigger":{...},"action":{"type":"Rotate"}},...],
 *  "attributes":{"expiryTime":"P2Y"}} (expiryTime only if given).  Rules:
 * lifetimeActions an array of at most two objects, at most one Rotate
 * and one Notify (type compared case-insensitively, written as
 * "Rotate"/"Notify"); each trigger names exactly one of timeAfterCreate
 * or timeBeforeExpiry; Notify only timeBeforeExpiry; the minimums above.
 * A non-empty list without Notify gets Key Vault's Notify P30D (go
 * TestRotateKey recording); [] with {} removes the policy's actions.
 * Read-only members (attributes.created/updated) are refused, "id" and
 * unknown members ignored, duplicate members refused.  *out (new, the
 * caller frees it with cJSON_Delete) is written on success.  Checking the
 * canonical form again gives the same form.
 */
int kv_rotation_policy_check(const cJSON *policy, cJSON **out) KB_WARN_UNUSED;

#endif /* KB_KVRULES_H */
