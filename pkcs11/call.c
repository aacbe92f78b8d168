/*
 * call.c: the only place in keybridge that calls a module's function list.
 *
 * Each wrapper calls one C_* function, logs the raw CK_RV at debug level,
 * maps it to a KB_ERR_* code and records a sentence that says what went
 * wrong and what to do; nothing above this file sees a CK_RV except through
 * struct p11s.rv (used by the session runner to decide on a retry).
 *
 * An isolated module (isolate.c) has several function lists, one
 * connection to its host each; every call borrows a free one (fl_get)
 * and gives it back right after, because the host answers one call at a
 * time per connection.  Handles are the host's, so consecutive calls of
 * one operation (C_SignInit, C_Sign) may go through different lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct rv_row {
	CK_RV rv;
	const char *name;
	int err;
	const char *say;     /* sentence for the user; NULL: kb_err(err) */
};

/* PKCS#11 v2.40 section 5.1 return values that tokens actually produce. */
static const struct rv_row rv_table[] = {
	{ CKR_OK, "CKR_OK", 0, NULL },
	{ CKR_CANCEL, "CKR_CANCEL", KB_ERR_INTERNAL, "the call was cancelled" },
	{ CKR_HOST_MEMORY, "CKR_HOST_MEMORY", KB_ERR_ALLOC, "the module ran out of memory" },
	{ CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", KB_ERR_NO_TOKEN, "the slot no longer exists; list tokens again" },
	{ CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", KB_ERR_DEVICE, "the module reported a general error" },
	{ CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", KB_ERR_CRYPTO, "the token could not perform the function" },
	{ CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", KB_ERR_INTERNAL, "the module refused the arguments (a keybridge bug)" },
	{ CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY", KB_ERR_UNSUPPORTED, "the token does not allow changing this attribute" },
	{ CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE", KB_ERR_DENIED, "the attribute is sensitive and cannot be read" },
	{ CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID", KB_ERR_INVALID, "the token does not know an attribute of this request" },
	{ CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID", KB_ERR_INVALID, "the token refused an attribute value" },
	{ CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED", KB_ERR_DENIED, "the token's policy prohibits this action" },
	{ CKR_DATA_INVALID, "CKR_DATA_INVALID", KB_ERR_INVALID, "the token refused the input data" },
	{ CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE", KB_ERR_INVALID, "the input has a length this operation does not accept" },
	{ CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", KB_ERR_DEVICE, "the token reported a device error; check the device" },
	{ CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", KB_ERR_DEVICE, "the token is out of memory; free objects on it" },
	{ CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", KB_ERR_DEVICE, "the token was removed; insert it again" },
	{ CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID", KB_ERR_CRYPTO, "the ciphertext is not valid for this key (wrong key, or tampered data)" },
	{ CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE", KB_ERR_CRYPTO, "the ciphertext has a wrong length for this key" },
	{ CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED", KB_ERR_INTERNAL, "the call was cancelled" },
	{ CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL", KB_ERR_UNSUPPORTED, NULL },
	{ CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED", KB_ERR_UNSUPPORTED, "the module does not implement this function" },
	{ CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", KB_ERR_NOT_FOUND, "the key no longer exists on the token" },
	{ CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE", KB_ERR_INVALID, "the token does not support this key size" },
	{ CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT", KB_ERR_INVALID, "the key type does not fit this mechanism" },
	{ CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED", KB_ERR_INTERNAL, NULL },
	{ CKR_KEY_CHANGED, "CKR_KEY_CHANGED", KB_ERR_CONFLICT, "the key changed on the token" },
	{ CKR_KEY_NEEDED, "CKR_KEY_NEEDED", KB_ERR_INTERNAL, NULL },
	{ CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE", KB_ERR_UNSUPPORTED, NULL },
	{ CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", KB_ERR_DENIED, "the key's usage flags do not allow this operation" },
	{ CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE", KB_ERR_DENIED, "the key cannot be wrapped" },
	{ CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE", KB_ERR_DENIED, "the key is not extractable, so it cannot be wrapped" },
	{ CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", KB_ERR_MECHANISM, "the token does not support the mechanism" },
	{ CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID", KB_ERR_MECHANISM, "the token does not support these mechanism parameters" },
	{ CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", KB_ERR_NOT_FOUND, "the object no longer exists on the token" },
	{ CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE", KB_ERR_INTERNAL, "another operation is active on the session" },
	{ CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED", KB_ERR_INTERNAL, NULL },
	{ CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", KB_ERR_PIN_INCORRECT, "the token refused the PIN; it was not retried, check it before trying again (tokens lock after a few wrong tries)" },
	{ CKR_PIN_INVALID, "CKR_PIN_INVALID", KB_ERR_INVALID, "the PIN has characters the token does not accept" },
	{ CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", KB_ERR_INVALID, "the PIN is too short or too long for the token" },
	{ CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", KB_ERR_DENIED, "the PIN has expired; change it with the token's tools" },
	{ CKR_PIN_LOCKED, "CKR_PIN_LOCKED", KB_ERR_PIN_LOCKED, "the PIN is locked on the token; unlock it with the SO PIN" },
	{ CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", KB_ERR_DEVICE, "the token closed the session" },
	{ CKR_SESSION_COUNT, "CKR_SESSION_COUNT", KB_ERR_LIMIT, "the token has no free sessions; lower max_sessions" },
	{ CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", KB_ERR_DEVICE, "the token dropped the session" },
	{ CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED", KB_ERR_UNSUPPORTED, NULL },
	{ CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", KB_ERR_DENIED, "the session is read-only" },
	{ CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS", KB_ERR_CONFLICT, "sessions are open on the token; close them first" },
	{ CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS", KB_ERR_CONFLICT, NULL },
	{ CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS", KB_ERR_CONFLICT, "the security officer is logged in elsewhere" },
	{ CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID", KB_ERR_SIGNATURE, "the signature does not verify" },
	{ CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE", KB_ERR_SIGNATURE, "the signature has a wrong length for this key" },
	{ CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE", KB_ERR_INVALID, "the token wants an attribute this request lacks" },
	{ CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT", KB_ERR_INVALID, "the token found the requested attributes inconsistent" },
	{ CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", KB_ERR_DEVICE, "the token is not present; insert it" },
	{ CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", KB_ERR_DEVICE, "the module does not recognise the token" },
	{ CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED", KB_ERR_DENIED, "the token is write-protected" },
	{ CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID", KB_ERR_NOT_FOUND, "the unwrapping key no longer exists" },
	{ CKR_UNWRAPPING_KEY_SIZE_RANGE, "CKR_UNWRAPPING_KEY_SIZE_RANGE", KB_ERR_INVALID, NULL },
	{ CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT", KB_ERR_INVALID, "the unwrapping key type does not fit this mechanism" },
	{ CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN", 0, NULL },
	{ CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", KB_ERR_NOT_LOGGED_IN, "log in to the token first" },
	{ CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED", KB_ERR_CONFIG, "the token's user PIN is not initialised; initialise the token" },
	{ CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", KB_ERR_INTERNAL, NULL },
	{ CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN", KB_ERR_CONFLICT, "another user is logged in to the token" },
	{ CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES", KB_ERR_CONFLICT, NULL },
	{ CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID", KB_ERR_CRYPTO, "the wrapped key is not valid for this unwrapping key (wrong key, or tampered data)" },
	{ CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE", KB_ERR_CRYPTO, "the wrapped key has a wrong length" },
	{ CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID", KB_ERR_NOT_FOUND, "the wrapping key no longer exists" },
	{ CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE", KB_ERR_INVALID, NULL },
	{ CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT", KB_ERR_INVALID, "the wrapping key type does not fit this mechanism" },
	{ CKR_RANDOM_SEED_NOT_SUPPORTED, "CKR_RANDOM_SEED_NOT_SUPPORTED", KB_ERR_UNSUPPORTED, NULL },
	{ CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG", KB_ERR_UNSUPPORTED, "the token has no random number generator" },
	{ CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID", KB_ERR_MECHANISM, "the token does not support this curve" },
	{ CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED", KB_ERR_MECHANISM, "the token does not support this curve" },
	{ CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", KB_ERR_INTERNAL, NULL },
	{ CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID", KB_ERR_INTERNAL, NULL },
	{ CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE", KB_ERR_DENIED, NULL },
	{ CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE", KB_ERR_UNSUPPORTED, NULL },
	{ CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", KB_ERR_MODULE, "the module is not initialised" },
	{ CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED", 0, NULL },
	{ CKR_MUTEX_BAD, "CKR_MUTEX_BAD", KB_ERR_INTERNAL, NULL },
	{ CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED", KB_ERR_INTERNAL, NULL },
	{ CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED", KB_ERR_DENIED, "the token rejected the function" },
};

static const struct rv_row *
rv_find(CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
		if (rv_table[i].rv == rv)
			return &rv_table[i];
	return NULL;
}

int
kb_p11_rv_to_err(CK_RV rv)
{
	const struct rv_row *r = rv_find(rv);

	return r ? r->err : KB_ERR_INTERNAL;
}

const char *
kb_p11_rv_name(CK_RV rv)
{
	const struct rv_row *r = rv_find(rv);

	return r ? r->name : "CKR_(unknown)";
}

/*
 * The choke point: log the raw value, map it, record a sentence.
 * who: "token 'x'" or "module /p.so"; fn: the C_* name.  For an
 * isolated module whose host has exited, the sentence says so instead
 * (p11-kit's client reports a dead connection as CKR_DEVICE_ERROR).
 */
static int
done(kb_p11_module *m, const char *who, const char *fn, CK_RV rv)
{
	const struct rv_row *r;
	int err;

	if (rv == CKR_OK)
		return 0;
	r = rv_find(rv);
	kb_debug("pkcs11: %s: %s returned %s (0x%lx)", who, fn,
	    r ? r->name : "unknown CK_RV", (unsigned long)rv);
	if (m->isolated && kb_p11_host_gone(m, rv)) {
		if (__atomic_load_n(&m->host_timed_out, __ATOMIC_ACQUIRE))
			return kb_error_set(KB_ERR_DEVICE, "the PKCS#11 module "
			    "host for %s did not answer a call within %u s and "
			    "was stopped; check the token, then restart the agent",
			    m->path, m->call_timeout_ms / 1000);
		return kb_error_set(KB_ERR_DEVICE, "the PKCS#11 module host for %s "
		    "exited; restart the agent", m->path);
	}
	/* p11-kit's client refuses what its RPC cannot carry this way. */
	if (m->isolated && rv == CKR_MECHANISM_INVALID)
		return kb_error_set(KB_ERR_MECHANISM, "%s: %s: the mechanism does "
		    "not reach the module, which runs isolated, through this "
		    "p11-kit's RPC (Debian 12's p11-kit 0.24 carries no AES-GCM "
		    "or AES key wrap); load the module in-process", who, fn);
	err = r ? r->err : KB_ERR_INTERNAL;
	if (err == 0)
		return 0;
	return kb_error_set(err, "%s: %s failed: %s", who, fn,
	    r && r->say ? r->say : kb_err(err));
}

static char *
who_module(const kb_p11_module *m, char *buf, size_t n)
{
	snprintf(buf, n, "module %s", m->path);
	return buf;
}

static int
sdone(struct p11s *s, const char *fn, CK_RV rv)
{
	char who[64];
	int err;

	s->rv = rv;
	if (rv == CKR_OK)
		return 0;
	snprintf(who, sizeof(who), "token '%s'", s->t->label);
	err = done(s->t->m, who, fn, rv);
	/* No session retry once the host is gone: nothing answers. */
	if (err == KB_ERR_DEVICE &&
	    __atomic_load_n(&s->t->m->host_gone, __ATOMIC_ACQUIRE))
		return err;
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_OPERATION_ACTIVE:
		return KB_P11_RETRY_SESSION;
	case CKR_USER_NOT_LOGGED_IN:
		return KB_P11_RETRY_LOGIN;
	default:
		return err;
	}
}

/* f's slot in m->fls (the watchdog's clock for it). */
static unsigned
fl_index(const kb_p11_module *m, CK_FUNCTION_LIST_PTR f)
{
	unsigned i;

	for (i = 0; i + 1 < m->n_fls && m->fls[i] != f; i++)
		;
	return i;
}

/*
 * The function list for one call.  In-process: the module's own (it is
 * thread-safe, C_Initialize asked for OS locking).  Isolated: a free
 * connection to the host, waited for if all are busy; NULL once the host
 * is gone, which the caller reports as CKR_DEVICE_ERROR.
 */
static CK_FUNCTION_LIST_PTR
fl_get(kb_p11_module *m)
{
	CK_FUNCTION_LIST_PTR f = NULL;

	if (!m->isolated)
		return m->fl;
	pthread_mutex_lock(&m->pool_lock);
	while (m->n_free == 0 && !m->host_gone)
		pthread_cond_wait(&m->pool_cond, &m->pool_lock);
	if (!m->host_gone) {
		f = m->free_fl[--m->n_free];
		m->busy_since[fl_index(m, f)] = kb_now_mono();
	}
	pthread_mutex_unlock(&m->pool_lock);
	return f;
}

static void
fl_put(kb_p11_module *m, CK_FUNCTION_LIST_PTR f)
{
	if (!m->isolated)
		return;
	pthread_mutex_lock(&m->pool_lock);
	m->busy_since[fl_index(m, f)] = 0;
	m->free_fl[m->n_free++] = f;
	pthread_cond_signal(&m->pool_cond);
	pthread_mutex_unlock(&m->pool_lock);
}

/* rv = one C_* call on a borrowed list. */
#define CALL(m, rv, fn, ...) do { \
	CK_FUNCTION_LIST_PTR f_ = fl_get(m); \
	if (f_ == NULL) \
		(rv) = CKR_DEVICE_ERROR; \
	else { \
		(rv) = f_->fn(__VA_ARGS__); \
		fl_put((m), f_); \
	} \
} while (0)
#define SM(s) ((s)->t->m)

static CK_RV
init_list(CK_FUNCTION_LIST_PTR f)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	return f->C_Initialize(&args);
}

int
p11c_initialize(kb_p11_module *m, bool *already)
{
	CK_RV rv = init_list(m->fl);
	char who[300];

	*already = rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
		kb_debug("pkcs11: module %s was already initialised; C_Finalize is not ours",
		    m->path);
	return done(m, who_module(m, who, sizeof(who)), "C_Initialize", rv);
}

void
p11c_finalize(kb_p11_module *m)
{
	char who[300];

	(void)done(m, who_module(m, who, sizeof(who)), "C_Finalize",
	    m->fl->C_Finalize(NULL));
}

int
p11c_initialize_lists(kb_p11_module *m)
{
	/* p11-kit's client when it could not connect (rpc-client.c). */
	static const char stand_in[] = "p11-kit (no connection)";
	CK_INFO info;
	CK_RV rv;
	unsigned i;
	int r = 0;

	for (i = 0; i < m->n_fls; i++) {
		if ((rv = init_list(m->fls[i])) != CKR_OK) {
			kb_debug("pkcs11: module host for %s: C_Initialize of connection "
			    "%u returned %s (0x%lx)", m->path, i, kb_p11_rv_name(rv),
			    (unsigned long)rv);
			r = KB_ERR_MODULE;
			break;
		}
		rv = m->fls[i]->C_GetInfo(&info);
		if (rv != CKR_OK || memcmp(info.libraryDescription, stand_in,
		    sizeof(stand_in) - 1) == 0) {
			kb_debug("pkcs11: module host for %s: connection %u is not "
			    "connected (C_GetInfo: %s)", m->path, i, kb_p11_rv_name(rv));
			(void)m->fls[i]->C_Finalize(NULL);
			r = KB_ERR_MODULE;
			break;
		}
	}
	if (r != 0) {
		while (i-- > 0)
			(void)m->fls[i]->C_Finalize(NULL);
		return kb_error_set(r, "could not connect to the PKCS#11 module host "
		    "for %s", m->path);
	}
	for (i = 0; i < m->n_fls; i++)
		m->free_fl[i] = m->fls[i];
	m->n_free = m->n_fls;
	return 0;
}

void
p11c_finalize_lists(kb_p11_module *m)
{
	unsigned i;
	CK_RV rv;

	/* p11-kit's client returns CKR_OK even when the host is gone. */
	for (i = 0; i < m->n_fls; i++)
		if ((rv = m->fls[i]->C_Finalize(NULL)) != CKR_OK)
			kb_debug("pkcs11: module host for %s: C_Finalize returned %s",
			    m->path, kb_p11_rv_name(rv));
	m->n_free = 0;
}

int
p11c_get_slot_list(kb_p11_module *m, CK_SLOT_ID *slots, CK_ULONG *n)
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_GetSlotList, CK_FALSE, slots, n);
	return done(m, who_module(m, who, sizeof(who)), "C_GetSlotList", rv);
}

int
p11c_get_slot_info(kb_p11_module *m, CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_GetSlotInfo, slot, info);
	return done(m, who_module(m, who, sizeof(who)), "C_GetSlotInfo", rv);
}

int
p11c_get_token_info(kb_p11_module *m, CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_GetTokenInfo, slot, info);
	return done(m, who_module(m, who, sizeof(who)), "C_GetTokenInfo", rv);
}

int
p11c_get_mechanism_info(kb_p11_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE mech,
    CK_MECHANISM_INFO *info, CK_RV *rvp)
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_GetMechanismInfo, slot, mech, info);
	*rvp = rv;
	return done(m, who_module(m, who, sizeof(who)), "C_GetMechanismInfo", rv);
}

int
p11c_init_token(kb_p11_module *m, CK_SLOT_ID slot, const struct kb_secret *so_pin,
    const unsigned char label[33])
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_InitToken, slot, so_pin->data, so_pin->len, (CK_UTF8CHAR_PTR)label);
	return done(m, who_module(m, who, sizeof(who)), "C_InitToken", rv);
}

int
p11c_open_session(kb_p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE *h)
{
	char who[300];
	CK_RV rv;

	CALL(m, rv, C_OpenSession, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, h);
	return done(m, who_module(m, who, sizeof(who)), "C_OpenSession", rv);
}

void
p11c_close_session(kb_p11_module *m, CK_SESSION_HANDLE h)
{
	CK_RV rv;

	CALL(m, rv, C_CloseSession, h);
	if (rv != CKR_OK)
		kb_debug("pkcs11: module %s: C_CloseSession returned %s (0x%lx)",
		    m->path, kb_p11_rv_name(rv), (unsigned long)rv);
}

int
p11c_login(struct p11s *s, CK_USER_TYPE who, const struct kb_secret *pin)
{
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_Login, s->h, who, pin ? pin->data : NULL, pin ? pin->len : 0);
	r = sdone(s, "C_Login", rv);
	/* Not a "log in again" case: this is the login itself. */
	return r == KB_P11_RETRY_LOGIN ? KB_ERR_NOT_LOGGED_IN : r;
}

int
p11c_logout(struct p11s *s)
{
	CK_RV rv;

	CALL(SM(s), rv, C_Logout, s->h);
	return sdone(s, "C_Logout", rv);
}

int
p11c_init_pin(struct p11s *s, const struct kb_secret *pin)
{
	CK_RV rv;

	CALL(SM(s), rv, C_InitPIN, s->h, pin->data, pin->len);
	return sdone(s, "C_InitPIN", rv);
}

int
p11c_get_session_info(struct p11s *s, CK_SESSION_INFO *info)
{
	CK_RV rv;

	CALL(SM(s), rv, C_GetSessionInfo, s->h, info);
	return sdone(s, "C_GetSessionInfo", rv);
}

int
p11c_generate_key(struct p11s *s, CK_MECHANISM *mech, CK_ATTRIBUTE *tmpl,
    CK_ULONG n, CK_OBJECT_HANDLE *h)
{
	CK_RV rv;

	CALL(SM(s), rv, C_GenerateKey, s->h, mech, tmpl, n, h);
	return sdone(s, "C_GenerateKey", rv);
}

int
p11c_generate_key_pair(struct p11s *s, CK_MECHANISM *mech,
    CK_ATTRIBUTE *pub, CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv,
    CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv)
{
	CK_RV rv;

	CALL(SM(s), rv, C_GenerateKeyPair, s->h, mech, pub, npub, priv, npriv, hpub, hpriv);
	return sdone(s, "C_GenerateKeyPair", rv);
}

int
p11c_create_object(struct p11s *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *h)
{
	CK_RV rv;

	CALL(SM(s), rv, C_CreateObject, s->h, tmpl, n, h);
	return sdone(s, "C_CreateObject", rv);
}

int
p11c_destroy_object(struct p11s *s, CK_OBJECT_HANDLE h)
{
	CK_RV rv;

	CALL(SM(s), rv, C_DestroyObject, s->h, h);
	return sdone(s, "C_DestroyObject", rv);
}

int
p11c_get_attrs(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv;

	CALL(SM(s), rv, C_GetAttributeValue, s->h, h, tmpl, n);
	/*
	 * SENSITIVE / TYPE_INVALID still fill the other attributes (v2.40
	 * section 5.7); callers look at ulValueLen == CK_UNAVAILABLE_INFORMATION.
	 */
	if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
		s->rv = rv;
		kb_debug("pkcs11: token '%s': C_GetAttributeValue returned %s",
		    s->t->label, kb_p11_rv_name(rv));
		return 0;
	}
	return sdone(s, "C_GetAttributeValue", rv);
}

int
p11c_set_attrs(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv;

	CALL(SM(s), rv, C_SetAttributeValue, s->h, h, tmpl, n);
	return sdone(s, "C_SetAttributeValue", rv);
}

int
p11c_find(struct p11s *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, size_t max,
    CK_OBJECT_HANDLE **out, size_t *nout)
{
	CK_OBJECT_HANDLE *hs = NULL, *tmp;
	size_t have = 0, alloc = 0;
	CK_ULONG got;
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_FindObjectsInit, s->h, tmpl, n);
	if ((r = sdone(s, "C_FindObjectsInit", rv)) != 0)
		return r;
	for (;;) {
		if (have == alloc) {
			if (alloc >= max) {
				r = kb_error_set(KB_ERR_LIMIT,
				    "token '%s' holds more than %zu matching objects; "
				    "narrow the selection", s->t->label, max);
				break;
			}
			alloc = alloc ? alloc * 2 : 32;
			if (alloc > max)
				alloc = max;
			if ((tmp = realloc(hs, alloc * sizeof(*hs))) == NULL) {
				r = KB_ERR_ALLOC;
				break;
			}
			hs = tmp;
		}
		got = 0;
		CALL(SM(s), rv, C_FindObjects, s->h, hs + have, alloc - have, &got);
		if ((r = sdone(s, "C_FindObjects", rv)) != 0)
			break;
		if (got > alloc - have) {
			r = kb_error_set(KB_ERR_PROTOCOL, "token '%s': C_FindObjects "
			    "returned more handles than asked", s->t->label);
			break;
		}
		if (got == 0)
			break;
		have += got;
	}
	CALL(SM(s), rv, C_FindObjectsFinal, s->h);
	if (r == 0)
		r = sdone(s, "C_FindObjectsFinal", rv);
	if (r != 0) {
		free(hs);
		return r;
	}
	*out = hs;
	*nout = have;
	return 0;
}

int
p11c_encrypt(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
	CK_ULONG ol = *out_len;
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_EncryptInit, s->h, mech, key);
	if ((r = sdone(s, "C_EncryptInit", rv)) != 0)
		return r;
	CALL(SM(s), rv, C_Encrypt, s->h, (CK_BYTE_PTR)in, in_len, out, &ol);
	if ((r = sdone(s, "C_Encrypt", rv)) != 0)
		return r;
	*out_len = ol;
	return 0;
}

int
p11c_decrypt(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
	CK_ULONG ol = *out_len;
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_DecryptInit, s->h, mech, key);
	if ((r = sdone(s, "C_DecryptInit", rv)) != 0)
		return r;
	CALL(SM(s), rv, C_Decrypt, s->h, (CK_BYTE_PTR)in, in_len, out, &ol);
	if ((r = sdone(s, "C_Decrypt", rv)) != 0)
		return r;
	*out_len = ol;
	return 0;
}

int
p11c_sign(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
	CK_ULONG ol = *out_len;
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_SignInit, s->h, mech, key);
	if ((r = sdone(s, "C_SignInit", rv)) != 0)
		return r;
	CALL(SM(s), rv, C_Sign, s->h, (CK_BYTE_PTR)in, in_len, out, &ol);
	if ((r = sdone(s, "C_Sign", rv)) != 0)
		return r;
	*out_len = ol;
	return 0;
}

int
p11c_verify(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, const unsigned char *sig, size_t sig_len)
{
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_VerifyInit, s->h, mech, key);
	if ((r = sdone(s, "C_VerifyInit", rv)) != 0)
		return r;
	CALL(SM(s), rv, C_Verify, s->h, (CK_BYTE_PTR)in, in_len, (CK_BYTE_PTR)sig, sig_len);
	return sdone(s, "C_Verify", rv);
}

int
p11c_wrap_key(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE wrapping,
    CK_OBJECT_HANDLE key, unsigned char **out, size_t *out_len)
{
	unsigned char *buf = NULL;
	CK_ULONG len = 0;
	CK_RV rv;
	int r;

	CALL(SM(s), rv, C_WrapKey, s->h, mech, wrapping, key, NULL, &len);
	if ((r = sdone(s, "C_WrapKey", rv)) != 0)
		return r;
	if (len == 0 || len > KB_P11_MAX_ATTR)
		return kb_error_set(KB_ERR_PROTOCOL, "token '%s': C_WrapKey announced "
		    "%lu bytes", s->t->label, (unsigned long)len);
	if ((buf = malloc(len)) == NULL)
		return KB_ERR_ALLOC;
	CALL(SM(s), rv, C_WrapKey, s->h, mech, wrapping, key, buf, &len);
	if ((r = sdone(s, "C_WrapKey", rv)) != 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int
p11c_unwrap_key(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE unwrapping,
    const unsigned char *in, size_t in_len, CK_ATTRIBUTE *tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE *h)
{
	CK_RV rv;

	CALL(SM(s), rv, C_UnwrapKey, s->h, mech, unwrapping, (CK_BYTE_PTR)in, in_len,
	    tmpl, n, h);
	return sdone(s, "C_UnwrapKey", rv);
}

int
p11c_generate_random(struct p11s *s, unsigned char *out, size_t n)
{
	CK_RV rv;

	CALL(SM(s), rv, C_GenerateRandom, s->h, out, n);
	return sdone(s, "C_GenerateRandom", rv);
}
