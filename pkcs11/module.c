/*
 * module.c: loading PKCS#11 modules and listing their slots and tokens.
 *
 * Loading is defensive (p11-kit's modules.c): the path is made canonical
 * and must name a regular file; dlopen(RTLD_NOW | RTLD_LOCAL);
 * C_GetInterface is preferred to C_GetFunctionList; C_Initialize asks for
 * OS locking; CKR_CRYPTOKI_ALREADY_INITIALIZED means someone else in the
 * process owns the module, so we never call C_Finalize on it.  A module is
 * loaded once per canonical path and reference-counted; an isolated load
 * (isolate.c) of a path is a different module from an in-process one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* PKCS#11 v3.0 section 5.4: not in p11-kit's 2.40 header. */
typedef struct {
	CK_UTF8CHAR *pInterfaceName;
	CK_VOID_PTR pFunctionList;
	CK_FLAGS flags;
} kb_ck_interface;
typedef CK_RV (*kb_ck_get_interface)(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
    kb_ck_interface **iface, CK_FLAGS flags);

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static kb_p11_module *reg_head;

static int
get_function_list(kb_p11_module *m)
{
	kb_ck_get_interface gi;
	CK_C_GetFunctionList gfl;
	kb_ck_interface *iface = NULL;
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_RV rv;

	*(void **)&gi = dlsym(m->dl, "C_GetInterface");
	if (gi != NULL) {
		rv = gi((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &iface, 0);
		if (rv == CKR_OK && iface != NULL && iface->pFunctionList != NULL)
			fl = iface->pFunctionList;
		else
			kb_debug("pkcs11: module %s: C_GetInterface returned %s (0x%lx); "
			    "trying C_GetFunctionList", m->path, kb_p11_rv_name(rv),
			    (unsigned long)rv);
	}
	if (fl == NULL) {
		*(void **)&gfl = dlsym(m->dl, "C_GetFunctionList");
		if (gfl == NULL)
			return kb_error_set(KB_ERR_MODULE, "%s is not a PKCS#11 module "
			    "(it exports neither C_GetInterface nor C_GetFunctionList); "
			    "give the path of the token's PKCS#11 library", m->path);
		rv = gfl(&fl);
		if (rv != CKR_OK || fl == NULL)
			return kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s refused to "
			    "give its function list; check the module's installation", m->path);
	}
	/* A v3.x list starts with the v2.40 layout we use. */
	if (fl->version.major != 2 && fl->version.major != 3)
		return kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s implements "
		    "Cryptoki %u.%u, which keybridge does not know", m->path,
		    fl->version.major, fl->version.minor);
	m->fl = fl;
	return 0;
}

static void
p11_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static void
module_destroy(kb_p11_module *m)
{
	if (m == NULL)
		return;
	if (m->isolated) {
		kb_p11_isolate_stop(m);
		pthread_cond_destroy(&m->wd_cond);
		pthread_cond_destroy(&m->pool_cond);
		pthread_mutex_destroy(&m->pool_lock);
	} else {
		if (m->fl != NULL && m->finalize)
			p11c_finalize(m);
		if (m->dl != NULL)
			dlclose(m->dl);
	}
	free(m->path);
	free(m);
}

/* isolated: host_exe and sock_dir as kb_p11_module_load_isolated's. */
static int
module_load(const char *path, bool isolated, const char *host_exe,
    const char *sock_dir, kb_p11_module **out)
{
	kb_p11_module *m = NULL, *it;
	char *canon = NULL;
	struct stat st;
	bool already = false;
	int r;

	if (path == NULL || *path == '\0')
		path = KB_P11_DEFAULT_MODULE;
	if ((canon = realpath(path, NULL)) == NULL) {
		int e = errno;

		return kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s cannot be found "
		    "(%s); install the token's PKCS#11 library or fix the module path",
		    path, strerror(e));
	}
	if (stat(canon, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s is not a regular "
		    "file; give the path of the module's .so file", canon);
		free(canon);
		return r;
	}

	pthread_mutex_lock(&reg_lock);
	for (it = reg_head; it != NULL; it = it->next) {
		if (it->isolated == isolated && strcmp(it->path, canon) == 0) {
			it->refs++;
			*out = it;
			r = 0;
			goto out;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	m->path = canon;
	canon = NULL;
	m->refs = 1;
	if (isolated) {
		m->isolated = true;
		m->call_timeout_ms = KB_P11_HOST_CALL_TIMEOUT_MS;
		pthread_mutex_init(&m->pool_lock, NULL);
		pthread_cond_init(&m->pool_cond, NULL);
		p11_cond_init_mono(&m->wd_cond);
		if ((r = kb_p11_isolate_start(m, host_exe, sock_dir)) != 0) {
			pthread_cond_destroy(&m->wd_cond);
			pthread_cond_destroy(&m->pool_cond);
			pthread_mutex_destroy(&m->pool_lock);
			free(m->path);
			free(m);
			m = NULL;
			goto out;
		}
		m->fl = m->fls[0];
		m->finalize = true;
		goto registered;
	}
	dlerror();
	if ((m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *e = dlerror();

		r = kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s could not be loaded "
		    "(%s); check that it is a library for this system", m->path,
		    e ? e : "dlopen failed");
		goto out;
	}
	if ((r = get_function_list(m)) != 0)
		goto out;
	if ((r = p11c_initialize(m, &already)) != 0) {
		r = kb_error_set(KB_ERR_MODULE, "PKCS#11 module %s failed to initialise: "
		    "%s; check its configuration", m->path, kb_error_detail(r));
		goto out;
	}
	m->finalize = !already;
registered:
	m->next = reg_head;
	reg_head = m;
	*out = m;
	m = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&reg_lock);
	if (m != NULL) {
		m->finalize = false;
		module_destroy(m);
	}
	free(canon);
	return r;
}

int
kb_p11_module_load(const char *path, kb_p11_module **out)
{
	return module_load(path, false, NULL, NULL, out);
}

int
kb_p11_module_load_isolated(const char *path, const char *host_exe,
    const char *sock_dir, kb_p11_module **out)
{
	if (sock_dir == NULL || *sock_dir != '/')
		return kb_error_set(KB_ERR_CONFIG, "an isolated PKCS#11 module needs "
		    "the absolute path of a private socket directory");
	return module_load(path, true, host_exe, sock_dir, out);
}

void
kb_p11_module_free(kb_p11_module *m)
{
	kb_p11_module **pp;

	if (m == NULL)
		return;
	pthread_mutex_lock(&reg_lock);
	if (--m->refs > 0) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	/* Finalize under the lock: a concurrent load of the same path waits. */
	module_destroy(m);
	pthread_mutex_unlock(&reg_lock);
}

void
kb_p11_module_ref(kb_p11_module *m)
{
	pthread_mutex_lock(&reg_lock);
	m->refs++;
	pthread_mutex_unlock(&reg_lock);
}

void
kb_p11_module_set_call_timeout(kb_p11_module *m, unsigned seconds)
{
	if (m == NULL || !m->isolated || seconds < 1 || seconds > 3600)
		return;
	pthread_mutex_lock(&m->pool_lock);
	/* The first setting replaces the default; later ones only raise it. */
	if (!m->call_timeout_set || seconds * 1000 > m->call_timeout_ms)
		m->call_timeout_ms = seconds * 1000;
	m->call_timeout_set = true;
	pthread_mutex_unlock(&m->pool_lock);
}

const char *
kb_p11_module_path(const kb_p11_module *m)
{
	return m ? m->path : NULL;
}

void *
kb_p11_module_function_list(kb_p11_module *m)
{
	return m ? (void *)m->fl : NULL;
}

bool
kb_p11_module_isolated(const kb_p11_module *m)
{
	return m != NULL && m->isolated;
}

long
kb_p11_module_host_pid(kb_p11_module *m)
{
	long pid = 0;

	if (m == NULL || !m->isolated)
		return 0;
	pthread_mutex_lock(&m->pool_lock);
	if (!m->host_gone)
		pid = (long)m->host_pid;
	pthread_mutex_unlock(&m->pool_lock);
	return pid;
}

static void
fill_info(struct kb_p11_token_info *ti, CK_SLOT_ID slot, const CK_SLOT_INFO *si,
    const CK_TOKEN_INFO *tk)
{
	memset(ti, 0, sizeof(*ti));
	ti->slot_id = slot;
	kb_copy_padded(ti->slot_description, sizeof(ti->slot_description),
	    si->slotDescription, sizeof(si->slotDescription));
	ti->present = (si->flags & CKF_TOKEN_PRESENT) != 0;
	if (!ti->present || tk == NULL)
		return;
	kb_copy_padded(ti->label, sizeof(ti->label), tk->label, sizeof(tk->label));
	kb_copy_padded(ti->manufacturer, sizeof(ti->manufacturer), tk->manufacturerID,
	    sizeof(tk->manufacturerID));
	kb_copy_padded(ti->model, sizeof(ti->model), tk->model, sizeof(tk->model));
	kb_copy_padded(ti->serial, sizeof(ti->serial), tk->serialNumber,
	    sizeof(tk->serialNumber));
	ti->flags = tk->flags;
	ti->initialized = (tk->flags & CKF_TOKEN_INITIALIZED) != 0;
	ti->login_required = (tk->flags & CKF_LOGIN_REQUIRED) != 0;
	ti->user_pin_initialized = (tk->flags & CKF_USER_PIN_INITIALIZED) != 0;
	ti->user_pin_locked = (tk->flags & CKF_USER_PIN_LOCKED) != 0;
	ti->user_pin_count_low = (tk->flags & CKF_USER_PIN_COUNT_LOW) != 0;
	ti->user_pin_final_try = (tk->flags & CKF_USER_PIN_FINAL_TRY) != 0;
	ti->write_protected = (tk->flags & CKF_WRITE_PROTECTED) != 0;
}

int
kb_p11_slot_info(kb_p11_module *m, CK_SLOT_ID slot, struct kb_p11_token_info *out)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO tk;
	int r;

	if ((r = p11c_get_slot_info(m, slot, &si)) != 0)
		return r;
	if (si.flags & CKF_TOKEN_PRESENT) {
		if ((r = p11c_get_token_info(m, slot, &tk)) != 0)
			return r;
		fill_info(out, slot, &si, &tk);
	} else
		fill_info(out, slot, &si, NULL);
	return 0;
}

int
kb_p11_list_tokens(kb_p11_module *m, struct kb_p11_token_info **out, size_t *n)
{
	CK_SLOT_ID *slots = NULL;
	struct kb_p11_token_info *infos = NULL;
	CK_ULONG ns = 0, i;
	int r, tries;

	if (m == NULL)
		return kb_error_set(KB_ERR_INVALID, "no PKCS#11 module");
	/* Slots can appear between the two calls: retry a few times. */
	for (tries = 0; ; tries++) {
		CK_ULONG want = 0;

		if ((r = p11c_get_slot_list(m, NULL, &want)) != 0)
			goto out;
		if (want > KB_P11_MAX_SLOTS) {
			r = kb_error_set(KB_ERR_LIMIT, "PKCS#11 module %s reports %lu slots, "
			    "more than %d", m->path, (unsigned long)want, KB_P11_MAX_SLOTS);
			goto out;
		}
		free(slots);
		if ((slots = calloc(want ? want : 1, sizeof(*slots))) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		ns = want;
		r = p11c_get_slot_list(m, slots, &ns);
		if (r == 0 && ns <= want)
			break;
		if (tries >= 3) {
			if (r == 0)
				r = kb_error_set(KB_ERR_PROTOCOL, "PKCS#11 module %s keeps "
				    "changing its slot list", m->path);
			goto out;
		}
	}
	if ((infos = calloc(ns ? ns : 1, sizeof(*infos))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < ns; i++)
		if ((r = kb_p11_slot_info(m, slots[i], &infos[i])) != 0)
			goto out;
	*out = infos;
	infos = NULL;
	*n = ns;
	r = 0;
out:
	free(slots);
	free(infos);
	return r;
}

int
kb_p11_find_free_slot(kb_p11_module *m, unsigned long *slot_id)
{
	struct kb_p11_token_info *ti = NULL;
	size_t n = 0, i;
	int r;

	if ((r = kb_p11_list_tokens(m, &ti, &n)) != 0)
		return r;
	r = kb_error_set(KB_ERR_NO_TOKEN, "module %s has no slot with an "
	    "uninitialised token", m->path);
	for (i = 0; i < n; i++) {
		if (ti[i].present && !ti[i].initialized) {
			*slot_id = ti[i].slot_id;
			r = 0;
			break;
		}
	}
	free(ti);
	return r;
}

int
kb_p11_init_token(kb_p11_module *m, unsigned long slot_id, const char *label,
    const struct kb_secret *so_pin, const struct kb_secret *user_pin)
{
	/*
	 * 32 blank-padded bytes (v2.40 section 5.6), plus a NUL that modules
	 * never read: p11-kit's RPC client sends the label with strlen().
	 */
	unsigned char lab[33];
	kb_p11_token tmp;
	struct p11s s;
	size_t ll;
	int r;

	if (m == NULL || label == NULL || so_pin == NULL || user_pin == NULL)
		return kb_error_set(KB_ERR_INVALID, "initialising a token needs a "
		    "label, an SO PIN and a user PIN");
	ll = strlen(label);
	if (ll == 0 || ll > 32)
		return kb_error_set(KB_ERR_INVALID, "a token label has 1 to 32 bytes");
	memset(lab, ' ', 32);
	lab[32] = '\0';
	memcpy(lab, label, ll);
	if ((r = p11c_init_token(m, slot_id, so_pin, lab)) != 0)
		return r;

	memset(&tmp, 0, sizeof(tmp));
	tmp.m = m;
	memcpy(tmp.label, label, ll);
	memset(&s, 0, sizeof(s));
	s.t = &tmp;
	if ((r = p11c_open_session(m, slot_id, &s.h)) != 0)
		return r;
	if ((r = p11c_login(&s, CKU_SO, so_pin)) == 0) {
		r = p11c_init_pin(&s, user_pin);
		(void)p11c_logout(&s);
	}
	p11c_close_session(m, s.h);
	if (r < 0 && r <= KB_P11_RETRY_SESSION)
		r = KB_ERR_DEVICE;
	return r;
}
