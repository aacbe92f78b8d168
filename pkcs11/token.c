/*
 * token.c: opening a token, its session pool, login state and mechanism
 * cache.
 *
 * Sessions: a bounded stack of open R/W sessions.  A call borrows one (a
 * mutex-protected pop; a new session is opened while fewer than max are
 * open; otherwise the caller waits) and gives it back.  A session the
 * module says is gone (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED) or
 * left unusable is closed, dropped from the pool, and the call is retried
 * once on a fresh session.  Login state is per application in PKCS#11, so
 * it is per token here; if the module forgets it (CKR_USER_NOT_LOGGED_IN
 * after a successful login) the kept PIN logs in again, once.  A PIN that
 * got CKR_PIN_INCORRECT is wiped and never tried again on its own.
 *
 * One more session, the anchor, is opened with the token and never
 * borrowed: login state and object handles live as long as the
 * application has a session open on the slot (PKCS#11 v2.40 section 5.6;
 * SoftHSM forgets every object handle when the last session closes), so
 * replacing a broken pool session must never bring the count to zero.
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "internal.h"

static int
field_match(const char *want, const char *have)
{
	return want == NULL || strcmp(want, have) == 0;
}

static bool
sel_match(const struct kb_p11_uri *sel, const struct kb_p11_token_info *ti)
{
	if (sel == NULL)
		return true;
	return field_match(sel->token, ti->label) &&
	    field_match(sel->serial, ti->serial) &&
	    field_match(sel->model, ti->model) &&
	    field_match(sel->manufacturer, ti->manufacturer) &&
	    (!sel->has_slot_id || sel->slot_id == ti->slot_id);
}

static int
borrow(kb_p11_token *t, struct p11s *s)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	int r;

	memset(s, 0, sizeof(*s));
	s->t = t;
	pthread_mutex_lock(&t->lock);
	while (t->n_idle == 0 && t->n_open >= t->max)
		pthread_cond_wait(&t->cond, &t->lock);
	if (t->n_idle > 0) {
		s->h = t->idle[--t->n_idle];
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	t->n_open++;
	pthread_mutex_unlock(&t->lock);

	if ((r = p11c_open_session(t->m, t->slot, &h)) != 0) {
		pthread_mutex_lock(&t->lock);
		t->n_open--;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	s->h = h;
	return 0;
}

static void
give_back(struct p11s *s)
{
	kb_p11_token *t = s->t;

	pthread_mutex_lock(&t->lock);
	t->idle[t->n_idle++] = s->h;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
discard(struct p11s *s)
{
	kb_p11_token *t = s->t;

	/* Best effort: the handle may be gone already, or hold a stuck operation. */
	p11c_close_session(t->m, s->h);
	pthread_mutex_lock(&t->lock);
	t->n_open--;
	t->reopened++;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static bool
rv_kills_session(CK_RV rv)
{
	return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED ||
	    rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SESSION_HANDLE_INVALID ||
	    rv == CKR_SESSION_CLOSED || rv == CKR_OPERATION_ACTIVE;
}

/* Log in with the kept PIN after the module forgot us.  login_lock held by caller. */
static int
relogin_locked(kb_p11_token *t)
{
	struct p11s s;
	int r, attempt;

	if (t->pin_bad || t->pin_locked || !t->logged_in)
		return kb_error_set(KB_ERR_NOT_LOGGED_IN, "token '%s' needs a login; "
		    "log in again", t->label);
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = borrow(t, &s)) != 0)
			return r;
		r = p11c_login(&s, CKU_USER, t->pin);
		if (r == KB_P11_RETRY_SESSION) {
			discard(&s);
			continue;
		}
		give_back(&s);
		break;
	}
	if (r == KB_P11_RETRY_SESSION)
		r = KB_ERR_DEVICE;
	pthread_mutex_lock(&t->lock);
	if (r == 0) {
		t->login_gen++;
		kb_debug("pkcs11: token '%s': logged in again after the module forgot "
		    "the login", t->label);
	} else if (r == KB_ERR_PIN_INCORRECT || r == KB_ERR_PIN_LOCKED) {
		t->pin_bad = r == KB_ERR_PIN_INCORRECT;
		t->pin_locked = r == KB_ERR_PIN_LOCKED;
		t->logged_in = false;
		kb_secret_free(&t->pin);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int
kb_p11_with_session(kb_p11_token *t, bool need_login, p11_session_fn fn, void *ctx)
{
	struct p11s s;
	unsigned long gen;
	unsigned session_retries = 0, login_retries = 0;
	int r = 0;

	for (;;) {
		if (need_login) {
			bool bad, locked;

			pthread_mutex_lock(&t->lock);
			bad = t->pin_bad;
			locked = t->pin_locked;
			gen = t->login_gen;
			pthread_mutex_unlock(&t->lock);
			if (bad)
				return kb_error_set(KB_ERR_PIN_INCORRECT, "token '%s' refused "
				    "the last PIN given; log in with the right PIN", t->label);
			if (locked)
				return kb_error_set(KB_ERR_PIN_LOCKED, "the PIN of token '%s' "
				    "is locked; unlock it with the SO PIN", t->label);
		} else
			gen = 0;
		if ((r = borrow(t, &s)) != 0)
			return r;
		r = fn(&s, ctx);
		if (r == KB_P11_RETRY_SESSION) {
			/*
			 * Every idle session may be dead (a token that was pulled and
			 * put back): one more try than the pool holds always reaches
			 * a freshly opened session.
			 */
			discard(&s);
			if (++session_retries <= t->max + 1)
				continue;
			return kb_error_set(KB_ERR_DEVICE, "token '%s' keeps dropping "
			    "sessions; check the device", t->label);
		}
		if (rv_kills_session(s.rv))
			discard(&s);
		else
			give_back(&s);
		if (r == KB_P11_RETRY_LOGIN) {
			int lr;

			if (++login_retries > 1)
				return kb_error_set(KB_ERR_NOT_LOGGED_IN, "token '%s' keeps "
				    "forgetting the login", t->label);
			pthread_mutex_lock(&t->login_lock);
			if (t->login_gen != gen)
				lr = 0;      /* another thread logged in meanwhile */
			else
				lr = relogin_locked(t);
			pthread_mutex_unlock(&t->login_lock);
			if (lr != 0)
				return lr;
			continue;
		}
		return r;
	}
}

int
kb_p11_token_open(kb_p11_module *m, const struct kb_p11_uri *sel,
    unsigned max_sessions, kb_p11_token **out)
{
	struct kb_p11_token_info *ti = NULL;
	kb_p11_token *t = NULL;
	size_t n = 0, i, found = 0, pick = 0;
	struct p11s s;
	char *uri = NULL;
	int r;

	if (m == NULL)
		return kb_error_set(KB_ERR_INVALID, "no PKCS#11 module");
	if ((r = kb_p11_list_tokens(m, &ti, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (!ti[i].present || !ti[i].initialized)
			continue;
		if (sel_match(sel, &ti[i])) {
			if (found++ == 0)
				pick = i;
		}
	}
	if (found != 1) {
		uri = sel ? kb_p11_uri_format(sel) : NULL;
		if (found == 0)
			r = kb_error_set(KB_ERR_NO_TOKEN, "no initialised token of module "
			    "%s matches %s; list the module's tokens and pick one",
			    m->path, uri ? uri : "the selection");
		else
			r = kb_error_set(KB_ERR_INVALID, "%zu tokens of module %s match %s; "
			    "narrow the selection with serial= or token=", found, m->path,
			    uri ? uri : "the (empty) selection");
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	t->max = max_sessions ? max_sessions : 8;
	if (t->max > 1024)
		t->max = 1024;
	if ((t->idle = calloc(t->max, sizeof(*t->idle))) == NULL) {
		free(t);
		t = NULL;
		r = KB_ERR_ALLOC;
		goto out;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->login_lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->m = m;
	kb_p11_module_ref(m);
	t->slot = ti[pick].slot_id;
	memcpy(t->label, ti[pick].label, sizeof(t->label));
	memcpy(t->serial, ti[pick].serial, sizeof(t->serial));
	memcpy(t->model, ti[pick].model, sizeof(t->model));
	memcpy(t->manufacturer, ti[pick].manufacturer, sizeof(t->manufacturer));

	/* The anchor: proves the token answers, and holds login state and handles. */
	if ((r = p11c_open_session(m, t->slot, &t->anchor)) != 0)
		goto out;
	if ((r = borrow(t, &s)) != 0)
		goto out;
	give_back(&s);
	*out = t;
	t = NULL;
	r = 0;
out:
	kb_p11_token_close(t);
	free(ti);
	free(uri);
	return r;
}

void
kb_p11_token_close(kb_p11_token *t)
{
	unsigned i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_idle; i++)
		p11c_close_session(t->m, t->idle[i]);
	if (t->n_open != t->n_idle)
		kb_warn("pkcs11: token '%s' closed with %u sessions still borrowed",
		    t->label, t->n_open - t->n_idle);
	if (t->anchor != CK_INVALID_HANDLE)
		p11c_close_session(t->m, t->anchor);
	kb_secret_free(&t->pin);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->login_lock);
	pthread_cond_destroy(&t->cond);
	free(t->idle);
	kb_p11_module_free(t->m);
	free(t);
}

int
kb_p11_token_get_info(kb_p11_token *t, struct kb_p11_token_info *out)
{
	if (t == NULL || out == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	return kb_p11_slot_info(t->m, t->slot, out);
}

unsigned long
kb_p11_token_slot(const kb_p11_token *t)
{
	return t ? t->slot : 0;
}

int
kb_p11_token_login(kb_p11_token *t, const struct kb_secret *pin)
{
	struct kb_secret *copy = NULL;
	struct p11s s;
	int r = 0, attempt;

	if (t == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	if (pin != NULL && (r = kb_secret_from(pin->data, pin->len, &copy)) != 0)
		return r;
	pthread_mutex_lock(&t->login_lock);
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = borrow(t, &s)) != 0)
			goto out;
		r = p11c_login(&s, CKU_USER, pin);
		if (r == KB_P11_RETRY_SESSION) {
			discard(&s);
			continue;
		}
		give_back(&s);
		break;
	}
	if (r == KB_P11_RETRY_SESSION)
		r = kb_error_set(KB_ERR_DEVICE, "token '%s' keeps dropping sessions; "
		    "check the device", t->label);
	pthread_mutex_lock(&t->lock);
	if (r == 0) {
		kb_secret_free(&t->pin);
		t->pin = copy;
		copy = NULL;
		t->logged_in = true;
		t->pin_bad = false;
		t->pin_locked = false;
		t->login_gen++;
	} else if (r == KB_ERR_PIN_INCORRECT || r == KB_ERR_PIN_LOCKED) {
		/* Never retried on our own: forget the PIN, refuse until a new login. */
		kb_secret_free(&t->pin);
		t->logged_in = false;
		t->pin_bad = r == KB_ERR_PIN_INCORRECT;
		t->pin_locked = r == KB_ERR_PIN_LOCKED;
	}
	pthread_mutex_unlock(&t->lock);
out:
	pthread_mutex_unlock(&t->login_lock);
	kb_secret_free(&copy);
	return r;
}

bool
kb_p11_token_logged_in(kb_p11_token *t)
{
	bool v;

	if (t == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	v = t->logged_in && !t->pin_bad && !t->pin_locked;
	pthread_mutex_unlock(&t->lock);
	return v;
}

void
kb_p11_token_pool_stats(kb_p11_token *t, struct kb_p11_pool_stats *out)
{
	if (t == NULL || out == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	out->open = t->n_open;
	out->idle = t->n_idle;
	out->max = t->max;
	out->reopened = t->reopened;
	pthread_mutex_unlock(&t->lock);
}

static const char *
flag_word(CK_FLAGS f)
{
	if (f & CKF_ENCRYPT)
		return "encryption";
	if (f & CKF_DECRYPT)
		return "decryption";
	if (f & CKF_SIGN)
		return "signing";
	if (f & CKF_VERIFY)
		return "verification";
	if (f & CKF_WRAP)
		return "wrapping";
	if (f & CKF_UNWRAP)
		return "unwrapping";
	if (f & CKF_GENERATE)
		return "key generation";
	if (f & CKF_GENERATE_KEY_PAIR)
		return "key pair generation";
	return "this use";
}

int
kb_p11_need_mech(kb_p11_token *t, CK_MECHANISM_TYPE mech, CK_FLAGS need)
{
	struct kb_p11_mech_entry e;
	CK_MECHANISM_INFO info;
	CK_RV rv = CKR_OK;
	const char *name;
	char hex[32];
	unsigned i;
	bool hit = false;
	int r;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->n_mechs; i++) {
		if (t->mechs[i].mech == mech) {
			e = t->mechs[i];
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);

	if (!hit) {
		memset(&info, 0, sizeof(info));
		r = p11c_get_mechanism_info(t->m, t->slot, mech, &info, &rv);
		if (r != 0 && rv != CKR_MECHANISM_INVALID)
			return r;
		e.mech = mech;
		e.present = r == 0;
		e.flags = r == 0 ? info.flags : 0;
		pthread_mutex_lock(&t->lock);
		if (t->n_mechs < KB_P11_MECH_CACHE)
			t->mechs[t->n_mechs++] = e;
		pthread_mutex_unlock(&t->lock);
	}
	if (e.present && (e.flags & need) == need)
		return 0;
	name = kb_p11_mech_name_or_null(mech);
	if (name == NULL) {
		snprintf(hex, sizeof(hex), "mechanism 0x%lx", (unsigned long)mech);
		name = hex;
	}
	/*
	 * p11-kit's RPC drops every mechanism whose parameters it cannot
	 * serialise (an allow-list in rpc-message.c; 0.24 lacks CKM_AES_GCM
	 * and the AES key wraps): say so rather than blame the token.
	 */
	if (!e.present && t->m->isolated)
		return kb_error_set(KB_ERR_MECHANISM, "token '%s' does not offer %s "
		    "through p11-kit's RPC (the module is isolated; this p11-kit "
		    "cannot carry the mechanism); load the module in-process or "
		    "use a newer p11-kit", t->label, name);
	if (!e.present)
		return kb_error_set(KB_ERR_MECHANISM, "token '%s' does not support %s; "
		    "pick a token that does", t->label, name);
	return kb_error_set(KB_ERR_MECHANISM, "token '%s' supports %s but not for %s; "
	    "pick a token that does", t->label, name, flag_word(need & ~e.flags));
}

int
kb_p11_token_check_mechanism(kb_p11_token *t, unsigned long mech, unsigned long need_flags)
{
	if (t == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	return kb_p11_need_mech(t, mech, need_flags);
}
