/*
 * kb-mock-p11: a fault-injecting PKCS#11 module for tests (p11-kit's
 * mock.c idea).  It dlopens the real module named by KB_MOCK_TARGET
 * (default: SoftHSM2) and forwards every call, except that:
 *
 *   KB_MOCK_FAIL="C_Sign=CKR_DEVICE_ERROR,C_Login=CKR_PIN_LOCKED@2"
 *       those functions return that CK_RV without being forwarded
 *       ("@N": only the first N calls fail); the value HANG makes the
 *       call block for ever instead (a hung device: "C_Sign=HANG");
 *   KB_MOCK_HIDE_MECH="CKM_AES_GCM,CKM_RSA_PKCS_PSS"
 *       those mechanisms vanish from C_GetMechanismList, and
 *       C_GetMechanismInfo returns CKR_MECHANISM_INVALID for them;
 *   KB_MOCK_COUNT_FILE=path
 *       every call appends its function name as one line to that file.
 *
 * The environment is read once, at the first C_GetFunctionList /
 * C_GetInterface.  Test code only: never install it.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#ifndef KB_MOCK_DEFAULT_TARGET
#define KB_MOCK_DEFAULT_TARGET "/usr/lib/softhsm/libsofthsm2.so"
#endif

#define EXPORT __attribute__((visibility("default")))

static CK_FUNCTION_LIST *target;
static CK_FUNCTION_LIST mock_list;
static pthread_mutex_t mock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;
static bool mock_ok;
static char count_file[4096];

#define MAX_HIDE 64
static CK_MECHANISM_TYPE hidden[MAX_HIDE];
static size_t n_hidden;

static int mock_pre(int f, CK_RV *rv);
/* Hand-written below; the generated header forwards the rest. */
static CK_RV m_C_Initialize(void *args);
static CK_RV m_C_Finalize(void *reserved);
static CK_RV m_C_GetFunctionList(CK_FUNCTION_LIST **out);
static CK_RV m_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list,
    CK_ULONG *count_p);
static CK_RV m_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
    CK_MECHANISM_INFO *info);

#include "mock_funcs.h"

struct fail_rule {
	bool on;
	CK_RV rv;
	bool hang;      /* block for ever instead of returning */
	long left;      /* -1: always */
};
static struct fail_rule fails[MOCK_NFUNCS + 1];   /* + C_GetInterface */
#define F_C_GetInterface MOCK_NFUNCS

struct name_val {
	const char *name;
	unsigned long v;
};

static const struct name_val rv_names[] = {
	{ "CKR_OK", CKR_OK },
	{ "CKR_HOST_MEMORY", CKR_HOST_MEMORY },
	{ "CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID },
	{ "CKR_GENERAL_ERROR", CKR_GENERAL_ERROR },
	{ "CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED },
	{ "CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD },
	{ "CKR_ATTRIBUTE_READ_ONLY", CKR_ATTRIBUTE_READ_ONLY },
	{ "CKR_DATA_LEN_RANGE", CKR_DATA_LEN_RANGE },
	{ "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
	{ "CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY },
	{ "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
	{ "CKR_ENCRYPTED_DATA_INVALID", CKR_ENCRYPTED_DATA_INVALID },
	{ "CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED },
	{ "CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID },
	{ "CKR_KEY_FUNCTION_NOT_PERMITTED", CKR_KEY_FUNCTION_NOT_PERMITTED },
	{ "CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID },
	{ "CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID },
	{ "CKR_OPERATION_ACTIVE", CKR_OPERATION_ACTIVE },
	{ "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT },
	{ "CKR_PIN_LOCKED", CKR_PIN_LOCKED },
	{ "CKR_SESSION_CLOSED", CKR_SESSION_CLOSED },
	{ "CKR_SESSION_COUNT", CKR_SESSION_COUNT },
	{ "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
	{ "CKR_SIGNATURE_INVALID", CKR_SIGNATURE_INVALID },
	{ "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
	{ "CKR_TOKEN_WRITE_PROTECTED", CKR_TOKEN_WRITE_PROTECTED },
	{ "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
	{ "CKR_USER_ALREADY_LOGGED_IN", CKR_USER_ALREADY_LOGGED_IN },
	{ "CKR_CRYPTOKI_ALREADY_INITIALIZED", CKR_CRYPTOKI_ALREADY_INITIALIZED },
	{ "CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED },
	{ "CKR_BUFFER_TOO_SMALL", CKR_BUFFER_TOO_SMALL },
	{ NULL, 0 }
};

static const struct name_val mech_names[] = {
	{ "CKM_RSA_PKCS_KEY_PAIR_GEN", CKM_RSA_PKCS_KEY_PAIR_GEN },
	{ "CKM_RSA_PKCS", CKM_RSA_PKCS },
	{ "CKM_RSA_PKCS_OAEP", CKM_RSA_PKCS_OAEP },
	{ "CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS },
	{ "CKM_SHA256_HMAC", CKM_SHA256_HMAC },
	{ "CKM_GENERIC_SECRET_KEY_GEN", CKM_GENERIC_SECRET_KEY_GEN },
	{ "CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN },
	{ "CKM_ECDSA", CKM_ECDSA },
	{ "CKM_AES_KEY_GEN", CKM_AES_KEY_GEN },
	{ "CKM_AES_CBC", CKM_AES_CBC },
	{ "CKM_AES_GCM", CKM_AES_GCM },
	{ "CKM_AES_KEY_WRAP", CKM_AES_KEY_WRAP },
	{ "CKM_AES_KEY_WRAP_PAD", CKM_AES_KEY_WRAP_PAD },
	{ NULL, 0 }
};

/* "NAME" from the table, or a number ("0x30", "48"). */
static bool
lookup(const struct name_val *t, const char *s, size_t n, unsigned long *v)
{
	char buf[64], *end;
	size_t i;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (i = 0; t[i].name != NULL; i++) {
		if (strcmp(t[i].name, buf) == 0) {
			*v = t[i].v;
			return true;
		}
	}
	*v = strtoul(buf, &end, 0);
	return *end == '\0';
}

static int
fname_index(const char *s, size_t n)
{
	int i;

	if (n == strlen("C_GetInterface") && memcmp(s, "C_GetInterface", n) == 0)
		return F_C_GetInterface;
	for (i = 0; i < MOCK_NFUNCS; i++)
		if (strlen(mock_fnames[i]) == n && memcmp(mock_fnames[i], s, n) == 0)
			return i;
	return -1;
}

static void
parse_fail(const char *s)
{
	while (s && *s) {
		const char *end = strchr(s, ','), *eq, *at;
		size_t n = end ? (size_t)(end - s) : strlen(s);
		unsigned long rv;
		long left = -1;
		int f;

		eq = memchr(s, '=', n);
		if (eq != NULL) {
			size_t vn = n - (size_t)(eq + 1 - s);

			at = memchr(eq, '@', vn + 1);
			if (at != NULL) {
				left = strtol(at + 1, NULL, 10);
				vn = (size_t)(at - eq - 1);
			}
			f = fname_index(s, (size_t)(eq - s));
			if (f >= 0 && vn == 4 && memcmp(eq + 1, "HANG", 4) == 0) {
				fails[f].on = true;
				fails[f].hang = true;
				fails[f].left = left;
			} else if (f >= 0 && lookup(rv_names, eq + 1, vn, &rv)) {
				fails[f].on = true;
				fails[f].rv = rv;
				fails[f].left = left;
			} else
				fprintf(stderr, "kb-mock-p11: ignoring KB_MOCK_FAIL entry "
				    "'%.*s'\n", (int)n, s);
		}
		s = end ? end + 1 : NULL;
	}
}

static void
parse_hide(const char *s)
{
	while (s && *s) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		unsigned long m;

		if (lookup(mech_names, s, n, &m) && n_hidden < MAX_HIDE)
			hidden[n_hidden++] = m;
		else
			fprintf(stderr, "kb-mock-p11: ignoring KB_MOCK_HIDE_MECH entry "
			    "'%.*s'\n", (int)n, s);
		s = end ? end + 1 : NULL;
	}
}

static void
mock_init(void)
{
	const char *path = getenv("KB_MOCK_TARGET"), *cf;
	CK_C_GetFunctionList gfl;
	void *dl;

	if (path == NULL || *path == '\0')
		path = KB_MOCK_DEFAULT_TARGET;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "kb-mock-p11: cannot load %s: %s\n", path, dlerror());
		return;
	}
	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	if (gfl == NULL || gfl(&target) != CKR_OK || target == NULL) {
		fprintf(stderr, "kb-mock-p11: %s has no usable C_GetFunctionList\n", path);
		return;
	}
	parse_fail(getenv("KB_MOCK_FAIL"));
	parse_hide(getenv("KB_MOCK_HIDE_MECH"));
	if ((cf = getenv("KB_MOCK_COUNT_FILE")) != NULL)
		snprintf(count_file, sizeof(count_file), "%s", cf);
	mock_list.version = target->version;
	mock_fill(&mock_list);
	mock_ok = true;
}

static void
count(const char *name)
{
	char line[64];
	int fd, n;

	if (count_file[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "%s\n", name);
	if ((fd = open(count_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return;
	if (write(fd, line, (size_t)n) != n)
		fprintf(stderr, "kb-mock-p11: short write to the count file\n");
	close(fd);
}

/* Count the call; true (with *rv) when the call must fail. */
static int
mock_pre(int f, CK_RV *rv)
{
	int fail = 0;

	count(f == F_C_GetInterface ? "C_GetInterface" : mock_fnames[f]);
	pthread_mutex_lock(&mock_lock);
	if (fails[f].on && fails[f].left != 0) {
		if (fails[f].left > 0)
			fails[f].left--;
		*rv = fails[f].rv;
		fail = fails[f].hang ? 2 : 1;
	}
	pthread_mutex_unlock(&mock_lock);
	while (fail == 2)
		pause();
	return fail;
}

static bool
is_hidden(CK_MECHANISM_TYPE m)
{
	size_t i;

	for (i = 0; i < n_hidden; i++)
		if (hidden[i] == m)
			return true;
	return false;
}

static CK_RV
m_C_Initialize(void *args)
{
	CK_RV rv;

	if (mock_pre(F_C_Initialize, &rv))
		return rv;
	return target->C_Initialize(args);
}

static CK_RV
m_C_Finalize(void *reserved)
{
	CK_RV rv;

	if (mock_pre(F_C_Finalize, &rv))
		return rv;
	return target->C_Finalize(reserved);
}

static CK_RV
m_C_GetFunctionList(CK_FUNCTION_LIST **out)
{
	CK_RV rv;

	if (mock_pre(F_C_GetFunctionList, &rv))
		return rv;
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = &mock_list;
	return CKR_OK;
}

static CK_RV
m_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count_p)
{
	CK_MECHANISM_TYPE *all = NULL;
	CK_ULONG n = 0, i, k = 0;
	CK_RV rv;

	if (mock_pre(F_C_GetMechanismList, &rv))
		return rv;
	if (count_p == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = target->C_GetMechanismList(slot, NULL, &n)) != CKR_OK)
		return rv;
	if ((all = calloc(n ? n : 1, sizeof(*all))) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = target->C_GetMechanismList(slot, all, &n)) != CKR_OK)
		goto out;
	for (i = 0; i < n; i++)
		if (!is_hidden(all[i]))
			all[k++] = all[i];
	if (list == NULL) {
		*count_p = k;
	} else if (*count_p < k) {
		*count_p = k;
		rv = CKR_BUFFER_TOO_SMALL;
	} else {
		memcpy(list, all, k * sizeof(*all));
		*count_p = k;
	}
out:
	free(all);
	return rv;
}

static CK_RV
m_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
	CK_RV rv;

	if (mock_pre(F_C_GetMechanismInfo, &rv))
		return rv;
	if (is_hidden(type))
		return CKR_MECHANISM_INVALID;
	return target->C_GetMechanismInfo(slot, type, info);
}

EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST **out)
{
	pthread_once(&mock_once, mock_init);
	if (!mock_ok)
		return CKR_GENERAL_ERROR;
	return m_C_GetFunctionList(out);
}

/* PKCS#11 v3.0 C_GetInterface, offering the v2.40 list as "PKCS 11". */
typedef struct {
	CK_UTF8CHAR *pInterfaceName;
	void *pFunctionList;
	CK_FLAGS flags;
} mock_interface;
static mock_interface mock_iface = { (CK_UTF8CHAR *)"PKCS 11", &mock_list, 0 };

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version,
    mock_interface **iface, CK_FLAGS flags);

EXPORT CK_RV
C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version, mock_interface **iface,
    CK_FLAGS flags)
{
	CK_RV rv;

	pthread_once(&mock_once, mock_init);
	if (!mock_ok)
		return CKR_GENERAL_ERROR;
	if (mock_pre(F_C_GetInterface, &rv))
		return rv;
	if (iface == NULL)
		return CKR_ARGUMENTS_BAD;
	if (name != NULL && strcmp((const char *)name, "PKCS 11") != 0)
		return CKR_ARGUMENTS_BAD;
	if (version != NULL && version->major != mock_list.version.major)
		return CKR_ARGUMENTS_BAD;
	if (flags & ~mock_iface.flags)
		return CKR_ARGUMENTS_BAD;
	*iface = &mock_iface;
	return CKR_OK;
}
