/*
 * names.c: names of mechanisms and token flags, for messages and listings.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct name_row {
	unsigned long v;
	const char *name;
};

static const struct name_row mech_names[] = {
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN" },
	{ CKM_RSA_PKCS, "CKM_RSA_PKCS" },
	{ CKM_RSA_X_509, "CKM_RSA_X_509" },
	{ CKM_RSA_PKCS_OAEP, "CKM_RSA_PKCS_OAEP" },
	{ CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS" },
	{ CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS" },
	{ CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS" },
	{ CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS" },
	{ CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS" },
	{ CKM_SHA_1, "CKM_SHA_1" },
	{ CKM_SHA256, "CKM_SHA256" },
	{ CKM_SHA384, "CKM_SHA384" },
	{ CKM_SHA512, "CKM_SHA512" },
	{ CKM_SHA256_HMAC, "CKM_SHA256_HMAC" },
	{ CKM_SHA384_HMAC, "CKM_SHA384_HMAC" },
	{ CKM_SHA512_HMAC, "CKM_SHA512_HMAC" },
	{ CKM_GENERIC_SECRET_KEY_GEN, "CKM_GENERIC_SECRET_KEY_GEN" },
	{ CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN" },
	{ CKM_ECDSA, "CKM_ECDSA" },
	{ CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256" },
	{ CKM_ECDH1_DERIVE, "CKM_ECDH1_DERIVE" },
	{ CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN" },
	{ CKM_AES_ECB, "CKM_AES_ECB" },
	{ CKM_AES_CBC, "CKM_AES_CBC" },
	{ CKM_AES_CBC_PAD, "CKM_AES_CBC_PAD" },
	{ CKM_AES_CTR, "CKM_AES_CTR" },
	{ CKM_AES_GCM, "CKM_AES_GCM" },
	{ CKM_AES_CMAC, "CKM_AES_CMAC" },
	{ CKM_AES_KEY_WRAP, "CKM_AES_KEY_WRAP" },
	{ CKM_AES_KEY_WRAP_PAD, "CKM_AES_KEY_WRAP_PAD" },
	{ 0x1054UL, "CKM_RSA_AES_KEY_WRAP" },
};

const char *
kb_p11_mech_name_or_null(unsigned long mech)
{
	size_t i;

	for (i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
		if (mech_names[i].v == mech)
			return mech_names[i].name;
	return NULL;
}

const char *
kb_p11_mech_name(unsigned long mech)
{
	const char *n = kb_p11_mech_name_or_null(mech);

	return n ? n : "an unnamed mechanism";
}

static const struct name_row token_flags[] = {
	{ CKF_RNG, "CKF_RNG" },
	{ CKF_WRITE_PROTECTED, "CKF_WRITE_PROTECTED" },
	{ CKF_LOGIN_REQUIRED, "CKF_LOGIN_REQUIRED" },
	{ CKF_USER_PIN_INITIALIZED, "CKF_USER_PIN_INITIALIZED" },
	{ CKF_RESTORE_KEY_NOT_NEEDED, "CKF_RESTORE_KEY_NOT_NEEDED" },
	{ CKF_CLOCK_ON_TOKEN, "CKF_CLOCK_ON_TOKEN" },
	{ CKF_PROTECTED_AUTHENTICATION_PATH, "CKF_PROTECTED_AUTHENTICATION_PATH" },
	{ CKF_DUAL_CRYPTO_OPERATIONS, "CKF_DUAL_CRYPTO_OPERATIONS" },
	{ CKF_TOKEN_INITIALIZED, "CKF_TOKEN_INITIALIZED" },
	{ CKF_SECONDARY_AUTHENTICATION, "CKF_SECONDARY_AUTHENTICATION" },
	{ CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_COUNT_LOW" },
	{ CKF_USER_PIN_FINAL_TRY, "CKF_USER_PIN_FINAL_TRY" },
	{ CKF_USER_PIN_LOCKED, "CKF_USER_PIN_LOCKED" },
	{ CKF_USER_PIN_TO_BE_CHANGED, "CKF_USER_PIN_TO_BE_CHANGED" },
	{ CKF_SO_PIN_COUNT_LOW, "CKF_SO_PIN_COUNT_LOW" },
	{ CKF_SO_PIN_FINAL_TRY, "CKF_SO_PIN_FINAL_TRY" },
	{ CKF_SO_PIN_LOCKED, "CKF_SO_PIN_LOCKED" },
	{ CKF_SO_PIN_TO_BE_CHANGED, "CKF_SO_PIN_TO_BE_CHANGED" },
};

char *
kb_p11_token_flags_str(unsigned long flags)
{
	struct kb_buf b;
	size_t i;
	unsigned long left = flags;

	kb_buf_init(&b, 4096);
	for (i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++) {
		if (!(flags & token_flags[i].v))
			continue;
		left &= ~token_flags[i].v;
		if (kb_buf_appendf(&b, "%s%s", b.len ? "|" : "", token_flags[i].name) != 0)
			goto fail;
	}
	if (left && kb_buf_appendf(&b, "%s0x%lx", b.len ? "|" : "", left) != 0)
		goto fail;
	if (b.len == 0 && kb_buf_append(&b, "0", 1) != 0)
		goto fail;
	return kb_buf_steal(&b, NULL);
fail:
	kb_buf_free(&b);
	return NULL;
}
