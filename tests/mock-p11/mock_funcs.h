/* Generated from p11-kit's pkcs11.h (v2.40 function list) by
 * tests/mock-p11/gen_funcs.py: one forwarding wrapper per function.  Do not edit. */

#define MOCK_NFUNCS 68
static const char *const mock_fnames[MOCK_NFUNCS] = {
	"C_Initialize",
	"C_Finalize",
	"C_GetInfo",
	"C_GetFunctionList",
	"C_GetSlotList",
	"C_GetSlotInfo",
	"C_GetTokenInfo",
	"C_GetMechanismList",
	"C_GetMechanismInfo",
	"C_InitToken",
	"C_InitPIN",
	"C_SetPIN",
	"C_OpenSession",
	"C_CloseSession",
	"C_CloseAllSessions",
	"C_GetSessionInfo",
	"C_GetOperationState",
	"C_SetOperationState",
	"C_Login",
	"C_Logout",
	"C_CreateObject",
	"C_CopyObject",
	"C_DestroyObject",
	"C_GetObjectSize",
	"C_GetAttributeValue",
	"C_SetAttributeValue",
	"C_FindObjectsInit",
	"C_FindObjects",
	"C_FindObjectsFinal",
	"C_EncryptInit",
	"C_Encrypt",
	"C_EncryptUpdate",
	"C_EncryptFinal",
	"C_DecryptInit",
	"C_Decrypt",
	"C_DecryptUpdate",
	"C_DecryptFinal",
	"C_DigestInit",
	"C_Digest",
	"C_DigestUpdate",
	"C_DigestKey",
	"C_DigestFinal",
	"C_SignInit",
	"C_Sign",
	"C_SignUpdate",
	"C_SignFinal",
	"C_SignRecoverInit",
	"C_SignRecover",
	"C_VerifyInit",
	"C_Verify",
	"C_VerifyUpdate",
	"C_VerifyFinal",
	"C_VerifyRecoverInit",
	"C_VerifyRecover",
	"C_DigestEncryptUpdate",
	"C_DecryptDigestUpdate",
	"C_SignEncryptUpdate",
	"C_DecryptVerifyUpdate",
	"C_GenerateKey",
	"C_GenerateKeyPair",
	"C_WrapKey",
	"C_UnwrapKey",
	"C_DeriveKey",
	"C_SeedRandom",
	"C_GenerateRandom",
	"C_GetFunctionStatus",
	"C_CancelFunction",
	"C_WaitForSlotEvent",
};
#define F_C_Initialize 0
#define F_C_Finalize 1
#define F_C_GetInfo 2
#define F_C_GetFunctionList 3
#define F_C_GetSlotList 4
#define F_C_GetSlotInfo 5
#define F_C_GetTokenInfo 6
#define F_C_GetMechanismList 7
#define F_C_GetMechanismInfo 8
#define F_C_InitToken 9
#define F_C_InitPIN 10
#define F_C_SetPIN 11
#define F_C_OpenSession 12
#define F_C_CloseSession 13
#define F_C_CloseAllSessions 14
#define F_C_GetSessionInfo 15
#define F_C_GetOperationState 16
#define F_C_SetOperationState 17
#define F_C_Login 18
#define F_C_Logout 19
#define F_C_CreateObject 20
#define F_C_CopyObject 21
#define F_C_DestroyObject 22
#define F_C_GetObjectSize 23
#define F_C_GetAttributeValue 24
#define F_C_SetAttributeValue 25
#define F_C_FindObjectsInit 26
#define F_C_FindObjects 27
#define F_C_FindObjectsFinal 28
#define F_C_EncryptInit 29
#define F_C_Encrypt 30
#define F_C_EncryptUpdate 31
#define F_C_EncryptFinal 32
#define F_C_DecryptInit 33
#define F_C_Decrypt 34
#define F_C_DecryptUpdate 35
#define F_C_DecryptFinal 36
#define F_C_DigestInit 37
#define F_C_Digest 38
#define F_C_DigestUpdate 39
#define F_C_DigestKey 40
#define F_C_DigestFinal 41
#define F_C_SignInit 42
#define F_C_Sign 43
#define F_C_SignUpdate 44
#define F_C_SignFinal 45
#define F_C_SignRecoverInit 46
#define F_C_SignRecover 47
#define F_C_VerifyInit 48
#define F_C_Verify 49
#define F_C_VerifyUpdate 50
#define F_C_VerifyFinal 51
#define F_C_VerifyRecoverInit 52
#define F_C_VerifyRecover 53
#define F_C_DigestEncryptUpdate 54
#define F_C_DecryptDigestUpdate 55
#define F_C_SignEncryptUpdate 56
#define F_C_DecryptVerifyUpdate 57
#define F_C_GenerateKey 58
#define F_C_GenerateKeyPair 59
#define F_C_WrapKey 60
#define F_C_UnwrapKey 61
#define F_C_DeriveKey 62
#define F_C_SeedRandom 63
#define F_C_GenerateRandom 64
#define F_C_GetFunctionStatus 65
#define F_C_CancelFunction 66
#define F_C_WaitForSlotEvent 67

static CK_RV
m_C_GetInfo(CK_INFO *info)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetInfo, &rv_))
		return rv_;
	return target->C_GetInfo(info);
}

static CK_RV
m_C_GetSlotList(unsigned char token_present, CK_SLOT_ID *slot_list, unsigned long *count)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetSlotList, &rv_))
		return rv_;
	return target->C_GetSlotList(token_present, slot_list, count);
}

static CK_RV
m_C_GetSlotInfo(CK_SLOT_ID slot_id, CK_SLOT_INFO *info)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetSlotInfo, &rv_))
		return rv_;
	return target->C_GetSlotInfo(slot_id, info);
}

static CK_RV
m_C_GetTokenInfo(CK_SLOT_ID slot_id, CK_TOKEN_INFO *info)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetTokenInfo, &rv_))
		return rv_;
	return target->C_GetTokenInfo(slot_id, info);
}

static CK_RV
m_C_InitToken(CK_SLOT_ID slot_id, unsigned char *pin, unsigned long pin_len, unsigned char *label)
{
	CK_RV rv_;

	if (mock_pre(F_C_InitToken, &rv_))
		return rv_;
	return target->C_InitToken(slot_id, pin, pin_len, label);
}

static CK_RV
m_C_InitPIN(CK_SESSION_HANDLE session, unsigned char *pin, unsigned long pin_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_InitPIN, &rv_))
		return rv_;
	return target->C_InitPIN(session, pin, pin_len);
}

static CK_RV
m_C_SetPIN(CK_SESSION_HANDLE session, unsigned char *old_pin, unsigned long old_len, unsigned char *new_pin, unsigned long new_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SetPIN, &rv_))
		return rv_;
	return target->C_SetPIN(session, old_pin, old_len, new_pin, new_len);
}

static CK_RV
m_C_OpenSession(CK_SLOT_ID slot_id, CK_FLAGS flags, void *application, CK_NOTIFY notify, CK_SESSION_HANDLE *session)
{
	CK_RV rv_;

	if (mock_pre(F_C_OpenSession, &rv_))
		return rv_;
	return target->C_OpenSession(slot_id, flags, application, notify, session);
}

static CK_RV
m_C_CloseSession(CK_SESSION_HANDLE session)
{
	CK_RV rv_;

	if (mock_pre(F_C_CloseSession, &rv_))
		return rv_;
	return target->C_CloseSession(session);
}

static CK_RV
m_C_CloseAllSessions(CK_SLOT_ID slot_id)
{
	CK_RV rv_;

	if (mock_pre(F_C_CloseAllSessions, &rv_))
		return rv_;
	return target->C_CloseAllSessions(slot_id);
}

static CK_RV
m_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO *info)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetSessionInfo, &rv_))
		return rv_;
	return target->C_GetSessionInfo(session, info);
}

static CK_RV
m_C_GetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long *operation_state_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetOperationState, &rv_))
		return rv_;
	return target->C_GetOperationState(session, operation_state, operation_state_len);
}

static CK_RV
m_C_SetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long operation_state_len, CK_OBJECT_HANDLE encryption_key, CK_OBJECT_HANDLE authentiation_key)
{
	CK_RV rv_;

	if (mock_pre(F_C_SetOperationState, &rv_))
		return rv_;
	return target->C_SetOperationState(session, operation_state, operation_state_len, encryption_key, authentiation_key);
}

static CK_RV
m_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, unsigned char *pin, unsigned long pin_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Login, &rv_))
		return rv_;
	return target->C_Login(session, user_type, pin, pin_len);
}

static CK_RV
m_C_Logout(CK_SESSION_HANDLE session)
{
	CK_RV rv_;

	if (mock_pre(F_C_Logout, &rv_))
		return rv_;
	return target->C_Logout(session);
}

static CK_RV
m_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *object)
{
	CK_RV rv_;

	if (mock_pre(F_C_CreateObject, &rv_))
		return rv_;
	return target->C_CreateObject(session, templ, count, object);
}

static CK_RV
m_C_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *new_object)
{
	CK_RV rv_;

	if (mock_pre(F_C_CopyObject, &rv_))
		return rv_;
	return target->C_CopyObject(session, object, templ, count, new_object);
}

static CK_RV
m_C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	CK_RV rv_;

	if (mock_pre(F_C_DestroyObject, &rv_))
		return rv_;
	return target->C_DestroyObject(session, object);
}

static CK_RV
m_C_GetObjectSize(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, unsigned long *size)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetObjectSize, &rv_))
		return rv_;
	return target->C_GetObjectSize(session, object, size);
}

static CK_RV
m_C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetAttributeValue, &rv_))
		return rv_;
	return target->C_GetAttributeValue(session, object, templ, count);
}

static CK_RV
m_C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv_;

	if (mock_pre(F_C_SetAttributeValue, &rv_))
		return rv_;
	return target->C_SetAttributeValue(session, object, templ, count);
}

static CK_RV
m_C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv_;

	if (mock_pre(F_C_FindObjectsInit, &rv_))
		return rv_;
	return target->C_FindObjectsInit(session, templ, count);
}

static CK_RV
m_C_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *object, unsigned long max_object_count, unsigned long *object_count)
{
	CK_RV rv_;

	if (mock_pre(F_C_FindObjects, &rv_))
		return rv_;
	return target->C_FindObjects(session, object, max_object_count, object_count);
}

static CK_RV
m_C_FindObjectsFinal(CK_SESSION_HANDLE session)
{
	CK_RV rv_;

	if (mock_pre(F_C_FindObjectsFinal, &rv_))
		return rv_;
	return target->C_FindObjectsFinal(session);
}

static CK_RV
m_C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_EncryptInit, &rv_))
		return rv_;
	return target->C_EncryptInit(session, mechanism, key);
}

static CK_RV
m_C_Encrypt(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *encrypted_data, unsigned long *encrypted_data_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Encrypt, &rv_))
		return rv_;
	return target->C_Encrypt(session, data, data_len, encrypted_data, encrypted_data_len);
}

static CK_RV
m_C_EncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_EncryptUpdate, &rv_))
		return rv_;
	return target->C_EncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
}

static CK_RV
m_C_EncryptFinal(CK_SESSION_HANDLE session, unsigned char *last_encrypted_part, unsigned long *last_encrypted_part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_EncryptFinal, &rv_))
		return rv_;
	return target->C_EncryptFinal(session, last_encrypted_part, last_encrypted_part_len);
}

static CK_RV
m_C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_DecryptInit, &rv_))
		return rv_;
	return target->C_DecryptInit(session, mechanism, key);
}

static CK_RV
m_C_Decrypt(CK_SESSION_HANDLE session, unsigned char *encrypted_data, unsigned long encrypted_data_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Decrypt, &rv_))
		return rv_;
	return target->C_Decrypt(session, encrypted_data, encrypted_data_len, data, data_len);
}

static CK_RV
m_C_DecryptUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DecryptUpdate, &rv_))
		return rv_;
	return target->C_DecryptUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
}

static CK_RV
m_C_DecryptFinal(CK_SESSION_HANDLE session, unsigned char *last_part, unsigned long *last_part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DecryptFinal, &rv_))
		return rv_;
	return target->C_DecryptFinal(session, last_part, last_part_len);
}

static CK_RV
m_C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism)
{
	CK_RV rv_;

	if (mock_pre(F_C_DigestInit, &rv_))
		return rv_;
	return target->C_DigestInit(session, mechanism);
}

static CK_RV
m_C_Digest(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *digest, unsigned long *digest_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Digest, &rv_))
		return rv_;
	return target->C_Digest(session, data, data_len, digest, digest_len);
}

static CK_RV
m_C_DigestUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DigestUpdate, &rv_))
		return rv_;
	return target->C_DigestUpdate(session, part, part_len);
}

static CK_RV
m_C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_DigestKey, &rv_))
		return rv_;
	return target->C_DigestKey(session, key);
}

static CK_RV
m_C_DigestFinal(CK_SESSION_HANDLE session, unsigned char *digest, unsigned long *digest_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DigestFinal, &rv_))
		return rv_;
	return target->C_DigestFinal(session, digest, digest_len);
}

static CK_RV
m_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignInit, &rv_))
		return rv_;
	return target->C_SignInit(session, mechanism, key);
}

static CK_RV
m_C_Sign(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Sign, &rv_))
		return rv_;
	return target->C_Sign(session, data, data_len, signature, signature_len);
}

static CK_RV
m_C_SignUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignUpdate, &rv_))
		return rv_;
	return target->C_SignUpdate(session, part, part_len);
}

static CK_RV
m_C_SignFinal(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignFinal, &rv_))
		return rv_;
	return target->C_SignFinal(session, signature, signature_len);
}

static CK_RV
m_C_SignRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignRecoverInit, &rv_))
		return rv_;
	return target->C_SignRecoverInit(session, mechanism, key);
}

static CK_RV
m_C_SignRecover(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignRecover, &rv_))
		return rv_;
	return target->C_SignRecover(session, data, data_len, signature, signature_len);
}

static CK_RV
m_C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_VerifyInit, &rv_))
		return rv_;
	return target->C_VerifyInit(session, mechanism, key);
}

static CK_RV
m_C_Verify(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long signature_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_Verify, &rv_))
		return rv_;
	return target->C_Verify(session, data, data_len, signature, signature_len);
}

static CK_RV
m_C_VerifyUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_VerifyUpdate, &rv_))
		return rv_;
	return target->C_VerifyUpdate(session, part, part_len);
}

static CK_RV
m_C_VerifyFinal(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_VerifyFinal, &rv_))
		return rv_;
	return target->C_VerifyFinal(session, signature, signature_len);
}

static CK_RV
m_C_VerifyRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv_;

	if (mock_pre(F_C_VerifyRecoverInit, &rv_))
		return rv_;
	return target->C_VerifyRecoverInit(session, mechanism, key);
}

static CK_RV
m_C_VerifyRecover(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_VerifyRecover, &rv_))
		return rv_;
	return target->C_VerifyRecover(session, signature, signature_len, data, data_len);
}

static CK_RV
m_C_DigestEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DigestEncryptUpdate, &rv_))
		return rv_;
	return target->C_DigestEncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
}

static CK_RV
m_C_DecryptDigestUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DecryptDigestUpdate, &rv_))
		return rv_;
	return target->C_DecryptDigestUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
}

static CK_RV
m_C_SignEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SignEncryptUpdate, &rv_))
		return rv_;
	return target->C_SignEncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
}

static CK_RV
m_C_DecryptVerifyUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_DecryptVerifyUpdate, &rv_))
		return rv_;
	return target->C_DecryptVerifyUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
}

static CK_RV
m_C_GenerateKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv_;

	if (mock_pre(F_C_GenerateKey, &rv_))
		return rv_;
	return target->C_GenerateKey(session, mechanism, templ, count, key);
}

static CK_RV
m_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *public_key_template, unsigned long public_key_attribute_count, CK_ATTRIBUTE *private_key_template, unsigned long private_key_attribute_count, CK_OBJECT_HANDLE *public_key, CK_OBJECT_HANDLE *private_key)
{
	CK_RV rv_;

	if (mock_pre(F_C_GenerateKeyPair, &rv_))
		return rv_;
	return target->C_GenerateKeyPair(session, mechanism, public_key_template, public_key_attribute_count, private_key_template, private_key_attribute_count, public_key, private_key);
}

static CK_RV
m_C_WrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, unsigned char *wrapped_key, unsigned long *wrapped_key_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_WrapKey, &rv_))
		return rv_;
	return target->C_WrapKey(session, mechanism, wrapping_key, key, wrapped_key, wrapped_key_len);
}

static CK_RV
m_C_UnwrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE unwrapping_key, unsigned char *wrapped_key, unsigned long wrapped_key_len, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv_;

	if (mock_pre(F_C_UnwrapKey, &rv_))
		return rv_;
	return target->C_UnwrapKey(session, mechanism, unwrapping_key, wrapped_key, wrapped_key_len, templ, attribute_count, key);
}

static CK_RV
m_C_DeriveKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv_;

	if (mock_pre(F_C_DeriveKey, &rv_))
		return rv_;
	return target->C_DeriveKey(session, mechanism, base_key, templ, attribute_count, key);
}

static CK_RV
m_C_SeedRandom(CK_SESSION_HANDLE session, unsigned char *seed, unsigned long seed_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_SeedRandom, &rv_))
		return rv_;
	return target->C_SeedRandom(session, seed, seed_len);
}

static CK_RV
m_C_GenerateRandom(CK_SESSION_HANDLE session, unsigned char *random_data, unsigned long random_len)
{
	CK_RV rv_;

	if (mock_pre(F_C_GenerateRandom, &rv_))
		return rv_;
	return target->C_GenerateRandom(session, random_data, random_len);
}

static CK_RV
m_C_GetFunctionStatus(CK_SESSION_HANDLE session)
{
	CK_RV rv_;

	if (mock_pre(F_C_GetFunctionStatus, &rv_))
		return rv_;
	return target->C_GetFunctionStatus(session);
}

static CK_RV
m_C_CancelFunction(CK_SESSION_HANDLE session)
{
	CK_RV rv_;

	if (mock_pre(F_C_CancelFunction, &rv_))
		return rv_;
	return target->C_CancelFunction(session);
}

static CK_RV
m_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
	CK_RV rv_;

	if (mock_pre(F_C_WaitForSlotEvent, &rv_))
		return rv_;
	return target->C_WaitForSlotEvent(flags, slot, reserved);
}

static void
mock_fill(CK_FUNCTION_LIST *fl)
{
	fl->C_Initialize = m_C_Initialize;
	fl->C_Finalize = m_C_Finalize;
	fl->C_GetInfo = m_C_GetInfo;
	fl->C_GetFunctionList = m_C_GetFunctionList;
	fl->C_GetSlotList = m_C_GetSlotList;
	fl->C_GetSlotInfo = m_C_GetSlotInfo;
	fl->C_GetTokenInfo = m_C_GetTokenInfo;
	fl->C_GetMechanismList = m_C_GetMechanismList;
	fl->C_GetMechanismInfo = m_C_GetMechanismInfo;
	fl->C_InitToken = m_C_InitToken;
	fl->C_InitPIN = m_C_InitPIN;
	fl->C_SetPIN = m_C_SetPIN;
	fl->C_OpenSession = m_C_OpenSession;
	fl->C_CloseSession = m_C_CloseSession;
	fl->C_CloseAllSessions = m_C_CloseAllSessions;
	fl->C_GetSessionInfo = m_C_GetSessionInfo;
	fl->C_GetOperationState = m_C_GetOperationState;
	fl->C_SetOperationState = m_C_SetOperationState;
	fl->C_Login = m_C_Login;
	fl->C_Logout = m_C_Logout;
	fl->C_CreateObject = m_C_CreateObject;
	fl->C_CopyObject = m_C_CopyObject;
	fl->C_DestroyObject = m_C_DestroyObject;
	fl->C_GetObjectSize = m_C_GetObjectSize;
	fl->C_GetAttributeValue = m_C_GetAttributeValue;
	fl->C_SetAttributeValue = m_C_SetAttributeValue;
	fl->C_FindObjectsInit = m_C_FindObjectsInit;
	fl->C_FindObjects = m_C_FindObjects;
	fl->C_FindObjectsFinal = m_C_FindObjectsFinal;
	fl->C_EncryptInit = m_C_EncryptInit;
	fl->C_Encrypt = m_C_Encrypt;
	fl->C_EncryptUpdate = m_C_EncryptUpdate;
	fl->C_EncryptFinal = m_C_EncryptFinal;
	fl->C_DecryptInit = m_C_DecryptInit;
	fl->C_Decrypt = m_C_Decrypt;
	fl->C_DecryptUpdate = m_C_DecryptUpdate;
	fl->C_DecryptFinal = m_C_DecryptFinal;
	fl->C_DigestInit = m_C_DigestInit;
	fl->C_Digest = m_C_Digest;
	fl->C_DigestUpdate = m_C_DigestUpdate;
	fl->C_DigestKey = m_C_DigestKey;
	fl->C_DigestFinal = m_C_DigestFinal;
	fl->C_SignInit = m_C_SignInit;
	fl->C_Sign = m_C_Sign;
	fl->C_SignUpdate = m_C_SignUpdate;
	fl->C_SignFinal = m_C_SignFinal;
	fl->C_SignRecoverInit = m_C_SignRecoverInit;
	fl->C_SignRecover = m_C_SignRecover;
	fl->C_VerifyInit = m_C_VerifyInit;
	fl->C_Verify = m_C_Verify;
	fl->C_VerifyUpdate = m_C_VerifyUpdate;
	fl->C_VerifyFinal = m_C_VerifyFinal;
	fl->C_VerifyRecoverInit = m_C_VerifyRecoverInit;
	fl->C_VerifyRecover = m_C_VerifyRecover;
	fl->C_DigestEncryptUpdate = m_C_DigestEncryptUpdate;
	fl->C_DecryptDigestUpdate = m_C_DecryptDigestUpdate;
	fl->C_SignEncryptUpdate = m_C_SignEncryptUpdate;
	fl->C_DecryptVerifyUpdate = m_C_DecryptVerifyUpdate;
	fl->C_GenerateKey = m_C_GenerateKey;
	fl->C_GenerateKeyPair = m_C_GenerateKeyPair;
	fl->C_WrapKey = m_C_WrapKey;
	fl->C_UnwrapKey = m_C_UnwrapKey;
	fl->C_DeriveKey = m_C_DeriveKey;
	fl->C_SeedRandom = m_C_SeedRandom;
	fl->C_GenerateRandom = m_C_GenerateRandom;
	fl->C_GetFunctionStatus = m_C_GetFunctionStatus;
	fl->C_CancelFunction = m_C_CancelFunction;
	fl->C_WaitForSlotEvent = m_C_WaitForSlotEvent;
}
