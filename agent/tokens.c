/*
 * tokens.c: the agent's tokens.  At start every configured token is
 * opened, checked for the mechanisms keybridge needs and logged in; any
 * failure stops the start with one sentence naming the token, its config
 * line and what to do.  A refused PIN is never tried again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "agent.h"

/*
 * What key operations (issue 3) will need from every token: generation
 * of each key type and the Key Vault algorithms that map onto PKCS#11
 * (RSA-OAEP, RS/PS, ES, A*GCM, A*KW).  Checked before login, so an
 * unsuitable token costs no PIN attempt.
 */
static const struct {
	CK_MECHANISM_TYPE mech;
	CK_FLAGS flags;
	bool isolated_may_lack;
} needed_mechs[] = {
	{ CKM_AES_KEY_GEN, CKF_GENERATE, false },
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, false },
	{ CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, false },
	{ CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT, true },
	{ CKM_AES_KEY_WRAP, CKF_WRAP | CKF_UNWRAP, true },
	{ CKM_RSA_PKCS_OAEP, CKF_ENCRYPT | CKF_DECRYPT, false },
	{ CKM_RSA_PKCS, CKF_SIGN | CKF_VERIFY, false },
	{ CKM_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY, false },
	{ CKM_ECDSA, CKF_SIGN | CKF_VERIFY, false },
};

/* Wipe the value of NAME=value in the process environment, then unset it. */
static void
scrub_env(const char *name)
{
	extern char **environ;
	size_t n = strlen(name), i;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		if (strncmp(environ[i], name, n) == 0 && environ[i][n] == '=')
			kb_wipe(environ[i] + n + 1, strlen(environ[i] + n + 1));
	(void)unsetenv(name);
}

/* Re-label the last error as "token 'NAME' (FILE:LINE): detail; hint". */
static int
token_fail(const struct agent *a, const struct agent_token_cfg *t,
    unsigned line, int code, const char *hint)
{
	char detail[1024], where[4200];

	snprintf(detail, sizeof(detail), "%s", kb_error_detail(code));
	return kb_error_set(code, "token '%s' (%s): %s%s%s", t->name,
	    agent_where(a->cfg, line ? line : t->line, where, sizeof(where)),
	    detail, hint ? "; " : "", hint ? hint : "");
}

int
agent_tokens_list(struct agent *a)
{
	size_t i;

	if ((a->tokens = calloc(a->cfg->n_tokens, sizeof(*a->tokens))) == NULL)
		return KB_ERR_ALLOC;
	a->n_tokens = a->cfg->n_tokens;
	for (i = 0; i < a->n_tokens; i++)
		a->tokens[i].cfg = &a->cfg->tokens[i];
	return 0;
}

int
agent_read_pins(struct agent *a, bool may_prompt)
{
	size_t i;
	int r = 0;

	for (i = 0; i < a->n_tokens; i++) {
		struct agent_token *at = &a->tokens[i];
		const struct agent_token_cfg *t = at->cfg;
		char prompt[128];

		switch (t->pin_source) {
		case PIN_FILE:
			r = kb_secret_read_file(t->pin_arg, &at->pin);
			if (r != 0)
				return token_fail(a, t, t->pin_line, r, NULL);
			break;
		case PIN_ENV:
			r = kb_secret_from_env(t->pin_arg, &at->pin);
			scrub_env(t->pin_arg);
			if (r != 0)
				return token_fail(a, t, t->pin_line, r,
				    "set the variable in the agent's environment");
			break;
		case PIN_PROMPT:
			if (!may_prompt)
				return token_fail(a, t, t->pin_line,
				    kb_error_set(KB_ERR_CONFIG,
				    "pin_prompt needs a terminal and cannot be used "
				    "under systemd or in the background"),
				    "use pin_file or pin_env");
			snprintf(prompt, sizeof(prompt), "PIN for token '%s': ",
			    t->name);
			if ((r = kb_secret_prompt(prompt, &at->pin)) != 0)
				return token_fail(a, t, t->pin_line, r, NULL);
			break;
		}
	}
	return 0;
}

/* The token's module, in this process or (isolate = true) in a host
 * process whose socket lives in STATE_DIR/p11host (0700). */
static int
token_module_load(struct agent *a, const struct agent_token_cfg *t,
    kb_p11_module **out)
{
	char dir[4200], *exe = NULL;
	int r;

	if (!t->isolate)
		return kb_p11_module_load(t->module, out);
	snprintf(dir, sizeof(dir), "%s/p11host", a->cfg->state_dir);
	if ((r = kb_mkdir_p(a->cfg->state_dir, 0700)) != 0 ||
	    (r = kb_mkdir_p(dir, 0700)) != 0)
		return r;
	/* Beside keybridged or in the build tree, else (NULL) the library's
	 * installed path in libexecdir. */
	if ((r = kb_program_beside("keybridge-p11host", "pkcs11", &exe)) ==
	    KB_ERR_ALLOC)
		return r;
	r = kb_p11_module_load_isolated(t->module, exe, dir, out);
	free(exe);
	if (r == 0 && t->call_timeout > 0)
		kb_p11_module_set_call_timeout(*out, t->call_timeout);
	return r;
}

static int
token_open_one(struct agent *a, struct agent_token *at)
{
	const struct agent_token_cfg *t = at->cfg;
	struct kb_p11_token_info ti;
	size_t i;
	int r;

	/* pkcs11/ sentences already say what to do; we add file:line. */
	if ((r = token_module_load(a, t, &at->module)) != 0)
		return token_fail(a, t, t->module_line, r, NULL);
	if ((r = kb_p11_token_open(at->module, t->sel, t->max_sessions,
	    &at->token)) != 0)
		return token_fail(a, t, t->selection_line, r, NULL);
	if ((r = kb_p11_token_get_info(at->token, &ti)) != 0)
		return token_fail(a, t, t->selection_line, r, NULL);
	if ((at->uri = kb_p11_token_info_uri(&ti)) == NULL)
		return KB_ERR_ALLOC;
	if (ti.user_pin_locked)
		return token_fail(a, t, t->pin_line,
		    kb_error_set(KB_ERR_PIN_LOCKED, "the user PIN of %s is locked",
		    at->uri), "unlock it with the SO PIN (pkcs11-tool --init-pin "
		    "--login --login-type so) and start again");
	for (i = 0; i < sizeof(needed_mechs) / sizeof(needed_mechs[0]); i++) {
		r = kb_p11_token_check_mechanism(at->token, needed_mechs[i].mech,
		    needed_mechs[i].flags);
		/*
		 * An isolated module may lack what p11-kit's RPC cannot carry
		 * (0.24: AES-GCM, AES key wrap).  The token still serves
		 * everything else; those algorithms are refused per request
		 * with a sentence that says why (docs/config.md).
		 */
		if (r == KB_ERR_MECHANISM && t->isolate &&
		    needed_mechs[i].isolated_may_lack) {
			kb_warn("token '%s': %s; requests that need it will be "
			    "refused", t->name, kb_error_detail(r));
			continue;
		}
		if (r != 0)
			return token_fail(a, t, t->selection_line, r,
			    "keybridge needs it for Key Vault keys");
	}
	/* Exactly one login attempt: a refused PIN is never retried. */
	r = kb_p11_token_login(at->token, at->pin);
	kb_secret_free(&at->pin);
	if (r != 0)
		return token_fail(a, t, t->pin_line, r, NULL);
	kb_info("token '%s' ready: %s", t->name, at->uri);
	return 0;
}

int
agent_tokens_open(struct agent *a)
{
	size_t i;
	int r;

	for (i = 0; i < a->n_tokens; i++)
		if ((r = token_open_one(a, &a->tokens[i])) != 0)
			return r;
	return 0;
}

void
agent_tokens_close(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->n_tokens; i++) {
		struct agent_token *at = &a->tokens[i];

		kb_secret_free(&at->pin);
		kb_p11_token_close(at->token);
		at->token = NULL;
		kb_p11_module_free(at->module);
		at->module = NULL;
		free(at->uri);
		at->uri = NULL;
	}
}

/* ---------------------------------------------------------------- JSON */

static int
add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v) != NULL ? 0 : KB_ERR_ALLOC;
}

static int
add_num(cJSON *o, const char *k, double v)
{
	return cJSON_AddNumberToObject(o, k, v) != NULL ? 0 : KB_ERR_ALLOC;
}

static int
add_bool(cJSON *o, const char *k, bool v)
{
	return cJSON_AddBoolToObject(o, k, v) != NULL ? 0 : KB_ERR_ALLOC;
}

/* "CKF_RNG|CKF_LOGIN_REQUIRED" as ["CKF_RNG","CKF_LOGIN_REQUIRED"]. */
static int
add_flags(cJSON *o, unsigned long flags)
{
	cJSON *arr;
	char *s, *tok, *save = NULL;
	int r = 0;

	if ((arr = cJSON_AddArrayToObject(o, "flags")) == NULL)
		return KB_ERR_ALLOC;
	if ((s = kb_p11_token_flags_str(flags)) == NULL)
		return KB_ERR_ALLOC;
	for (tok = strtok_r(s, "|", &save); tok != NULL && r == 0;
	    tok = strtok_r(NULL, "|", &save)) {
		cJSON *item = cJSON_CreateString(tok);
		if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			r = KB_ERR_ALLOC;
		}
	}
	free(s);
	return r;
}

static int
token_status(struct agent_token *at, cJSON *o)
{
	struct kb_p11_token_info ti;
	struct kb_p11_pool_stats ps;
	const char *state;
	bool logged_in;
	cJSON *sess;
	int r, ir;

	ir = kb_p11_token_get_info(at->token, &ti);
	logged_in = kb_p11_token_logged_in(at->token);
	if (ir != 0)
		state = "unavailable";
	else if (ti.user_pin_locked)
		state = "pin-locked";
	else if (!logged_in)
		state = "not-logged-in";
	else
		state = "ready";
	if ((r = add_str(o, "name", at->cfg->name)) != 0 ||
	    (r = add_str(o, "uri", at->uri)) != 0 ||
	    (r = add_str(o, "module", at->cfg->module)) != 0 ||
	    (r = add_str(o, "state", state)) != 0 ||
	    (r = add_bool(o, "logged_in", logged_in)) != 0)
		return r;
	if (ir == 0) {
		if ((r = add_str(o, "label", ti.label)) != 0 ||
		    (r = add_str(o, "serial", ti.serial)) != 0 ||
		    (r = add_str(o, "manufacturer", ti.manufacturer)) != 0 ||
		    (r = add_str(o, "model", ti.model)) != 0 ||
		    (r = add_num(o, "slot_id", (double)ti.slot_id)) != 0)
			return r;
	} else if ((r = add_str(o, "error", kb_error_detail(ir))) != 0)
		return r;
	kb_p11_token_pool_stats(at->token, &ps);
	if ((sess = cJSON_AddObjectToObject(o, "sessions")) == NULL)
		return KB_ERR_ALLOC;
	if ((r = add_num(sess, "open", ps.open)) != 0 ||
	    (r = add_num(sess, "idle", ps.idle)) != 0 ||
	    (r = add_num(sess, "max", ps.max)) != 0 ||
	    (r = add_num(sess, "reopened", (double)ps.reopened)) != 0)
		return r;
	return 0;
}

int
agent_status_json(struct agent *a, cJSON **out)
{
	cJSON *root = NULL, *arr, *o;
	char ts[32];
	size_t i;
	int r = KB_ERR_ALLOC;

	if ((root = cJSON_CreateObject()) == NULL)
		goto out;
	if (kb_time_format(a->started_unix, ts, sizeof(ts)) != 0)
		ts[0] = '\0';
	if ((r = add_str(root, "version", KB_VERSION)) != 0 ||
	    (r = add_num(root, "pid", (double)a->pid)) != 0 ||
	    (r = add_str(root, "started", ts)) != 0 ||
	    (r = add_num(root, "uptime_seconds",
	        (double)(long long)(kb_now_mono() - a->started_mono))) != 0 ||
	    (r = add_str(root, "socket", a->cfg->socket)) != 0 ||
	    (r = add_str(root, "config", a->cfg->path)) != 0) {
		goto out;
	}
	if (a->https_url[0] != '\0' ?
	    (r = add_str(root, "https", a->https_url)) != 0 :
	    cJSON_AddNullToObject(root, "https") == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	r = KB_ERR_ALLOC;
	if ((arr = cJSON_AddArrayToObject(root, "tokens")) == NULL)
		goto out;
	for (i = 0; i < a->n_tokens; i++) {
		if ((o = cJSON_CreateObject()) == NULL)
			goto out;
		if (!cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			goto out;
		}
		if ((r = token_status(&a->tokens[i], o)) != 0)
			goto out;
	}
	*out = root;
	root = NULL;
	r = 0;
 out:
	cJSON_Delete(root);
	return r;
}

static const char *
configured_name(struct agent *a, kb_p11_module *m, unsigned long slot)
{
	size_t i;

	for (i = 0; i < a->n_tokens; i++)
		if (a->tokens[i].module == m && a->tokens[i].token != NULL &&
		    kb_p11_token_slot(a->tokens[i].token) == slot)
			return a->tokens[i].cfg->name;
	return NULL;
}

static int
module_tokens(struct agent *a, kb_p11_module *m, cJSON *arr)
{
	struct kb_p11_token_info *ti = NULL;
	size_t n = 0, i;
	cJSON *o;
	char *uri;
	const char *name;
	int r;

	if ((r = kb_p11_list_tokens(m, &ti, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		r = KB_ERR_ALLOC;
		if ((o = cJSON_CreateObject()) == NULL)
			goto out;
		if (!cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			goto out;
		}
		name = configured_name(a, m, ti[i].slot_id);
		if ((r = add_str(o, "module", kb_p11_module_path(m))) != 0 ||
		    (r = add_num(o, "slot_id", (double)ti[i].slot_id)) != 0 ||
		    (r = add_str(o, "slot_description",
		        ti[i].slot_description)) != 0 ||
		    (r = add_bool(o, "present", ti[i].present)) != 0)
			goto out;
		if (name != NULL)
			r = add_str(o, "name", name);
		else
			r = cJSON_AddNullToObject(o, "name") ? 0 : KB_ERR_ALLOC;
		if (r != 0 || !ti[i].present)
			goto next;
		if ((r = add_str(o, "label", ti[i].label)) != 0 ||
		    (r = add_str(o, "serial", ti[i].serial)) != 0 ||
		    (r = add_str(o, "manufacturer", ti[i].manufacturer)) != 0 ||
		    (r = add_str(o, "model", ti[i].model)) != 0 ||
		    (r = add_bool(o, "initialized", ti[i].initialized)) != 0 ||
		    (r = add_flags(o, ti[i].flags)) != 0)
			goto out;
		if ((uri = kb_p11_token_info_uri(&ti[i])) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		r = add_str(o, "uri", uri);
		free(uri);
 next:
		if (r != 0)
			goto out;
	}
	r = 0;
 out:
	free(ti);
	return r;
}

int
agent_tokens_json(struct agent *a, cJSON **out)
{
	cJSON *root = NULL, *arr;
	size_t i, j;
	int r = KB_ERR_ALLOC;

	if ((root = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(root, "tokens")) == NULL)
		goto out;
	for (i = 0; i < a->n_tokens; i++) {
		/* Each module once, even when several tokens share it. */
		for (j = 0; j < i; j++)
			if (a->tokens[j].module == a->tokens[i].module)
				break;
		if (j < i || a->tokens[i].module == NULL)
			continue;
		if ((r = module_tokens(a, a->tokens[i].module, arr)) != 0)
			goto out;
	}
	*out = root;
	root = NULL;
	r = 0;
 out:
	cJSON_Delete(root);
	return r;
}

/* ---------------------------------------------------------- init-token */

int
agent_init_token(const struct agent_config *cfg, const char *name,
    const char *so_pin_file)
{
	const struct agent_token_cfg *t;
	struct kb_secret *so = NULL, *user = NULL;
	kb_p11_module *m = NULL;
	kb_p11_token *existing = NULL;
	unsigned long slot;
	char detail[1024];
	int r;

	if ((t = agent_config_token(cfg, name)) == NULL) {
		r = kb_error_set(KB_ERR_CONFIG, "%s has no [token %s] section",
		    cfg->path, name);
		goto out;
	}
	if (t->label == NULL) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "[token %s] in %s must select its token by label = to be "
		    "initialised", name, cfg->path);
		goto out;
	}
	if (t->pin_source != PIN_FILE && t->pin_source != PIN_ENV) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "[token %s] in %s needs pin_file or pin_env to be initialised",
		    name, cfg->path);
		goto out;
	}
	if ((r = kb_secret_read_file(so_pin_file, &so)) != 0)
		goto out;
	if (t->pin_source == PIN_FILE)
		r = kb_secret_read_file(t->pin_arg, &user);
	else {
		r = kb_secret_from_env(t->pin_arg, &user);
		scrub_env(t->pin_arg);
	}
	if (r != 0)
		goto out;
	if ((r = kb_p11_module_load(t->module, &m)) != 0)
		goto out;
	/* Never a second token with the same label: selection would fail. */
	if ((r = kb_p11_token_open(m, t->sel, 1, &existing)) == 0) {
		r = kb_error_set(KB_ERR_CONFLICT,
		    "a token labelled '%s' already exists in %s", t->label,
		    t->module);
		goto out;
	} else if (r != KB_ERR_NO_TOKEN)
		goto out;
	if ((r = kb_p11_find_free_slot(m, &slot)) != 0)
		goto out;
	if ((r = kb_p11_init_token(m, slot, t->label, so, user)) != 0)
		goto out;
	kb_info("initialised token '%s' in slot %lu of %s", t->label, slot,
	    t->module);
	r = 0;
 out:
	if (r != 0 && r != KB_ERR_ALLOC) {
		snprintf(detail, sizeof(detail), "%s", kb_error_detail(r));
		r = kb_error_set(r, "cannot initialise token '%s': %s", name,
		    detail);
	}
	kb_p11_token_close(existing);
	kb_p11_module_free(m);
	kb_secret_free(&so);
	kb_secret_free(&user);
	return r;
}

/*
 * Give tokens of the config one shared pair of backup keys (docs/backup.md):
 * the named ones, or all.  Each must be free of backup keys; the values
 * exist only in this process, wiped before it returns.  All tokens take
 * the one SO PIN file.
 */
int
agent_backup_keys(const struct agent_config *cfg, const char *const *names,
    size_t n_names, const char *so_pin_file)
{
	const struct agent_token_cfg *t;
	struct kb_secret *so = NULL, *user = NULL, *wv = NULL, *sv = NULL;
	kb_p11_module *m = NULL;
	kb_p11_token *tok = NULL;
	char detail[1024];
	const char *name = NULL;
	unsigned long slot;
	size_t i, n = n_names > 0 ? n_names : cfg->n_tokens;
	int r;

	if ((r = kb_secret_read_file(so_pin_file, &so)) != 0 ||
	    (r = kb_secret_new(32, &wv)) != 0 ||
	    (r = kb_secret_new(32, &sv)) != 0 ||
	    (r = kb_random(wv->data, 32)) != 0 ||
	    (r = kb_random(sv->data, 32)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		name = n_names > 0 ? names[i] : cfg->tokens[i].name;
		if ((t = agent_config_token(cfg, name)) == NULL) {
			r = kb_error_set(KB_ERR_CONFIG, "%s has no [token %s] "
			    "section", cfg->path, name);
			goto out;
		}
		if (t->pin_source != PIN_FILE && t->pin_source != PIN_ENV) {
			r = kb_error_set(KB_ERR_CONFIG, "[token %s] in %s needs "
			    "pin_file or pin_env for backup keys", name, cfg->path);
			goto out;
		}
		if (t->pin_source == PIN_FILE)
			r = kb_secret_read_file(t->pin_arg, &user);
		else
			r = kb_secret_from_env(t->pin_arg, &user);
		if (r != 0 ||
		    (r = kb_p11_module_load(t->module, &m)) != 0 ||
		    (r = kb_p11_token_open(m, t->sel, 1, &tok)) != 0)
			goto out;
		slot = kb_p11_token_slot(tok);
		kb_p11_token_close(tok);
		tok = NULL;
		if ((r = kb_p11_backup_keys_init(m, slot, so, user, wv, sv)) != 0)
			goto out;
		kb_info("token %s: backup keys made", name);
		kb_secret_free(&user);
		kb_p11_module_free(m);
		m = NULL;
	}
	for (i = 0; i < cfg->n_tokens; i++)
		if (cfg->tokens[i].pin_source == PIN_ENV)
			scrub_env(cfg->tokens[i].pin_arg);
	r = 0;
 out:
	if (r != 0 && r != KB_ERR_ALLOC) {
		snprintf(detail, sizeof(detail), "%s", kb_error_detail(r));
		r = kb_error_set(r, "cannot make backup keys%s%s: %s",
		    name != NULL ? " on token " : "", name != NULL ? name : "",
		    detail);
	}
	kb_p11_token_close(tok);
	kb_p11_module_free(m);
	kb_secret_free(&so);
	kb_secret_free(&user);
	kb_secret_free(&wv);
	kb_secret_free(&sv);
	return r;
}
