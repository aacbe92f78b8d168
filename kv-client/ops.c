/*
 * ops.c: create, import and rotate without ever making two versions.
 *
 * CreateKey, ImportKey and RotateKey each make a new version.  When the
 * answer is lost (a connection reset, a timeout, a 5xx from a gateway),
 * the version may or may not exist, and a blind resend can make a
 * second one.  So the key's versions are read before the request and
 * again after an ambiguous failure: one new version is the answer, none
 * means the request may go again, anything else is reported as an
 * unknown outcome for a person to check.  The request itself goes with
 * KB_KV_NOT_IDEMPOTENT, so the client's own retry loop never resends it
 * after it may have reached the service.
 *
 * What this cannot see: a request still running in the service when
 * the versions are read (the client timed out first).  The read waits a
 * backoff first; the per-attempt timeout (30 s by default) is far above
 * what a create takes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum kv_op { OP_CREATE, OP_IMPORT, OP_ROTATE };

/* Key Vault names are at most 127 characters; a little room above. */
#define KV_MAX_NAME 256
/* A key with more versions than this is not read (KB_ERR_LIMIT). */
#define KV_MAX_VERSIONS 100000
#define KV_MAX_SETTLE_MS 30000L

struct vset {
	char **v;
	size_t n, cap;
};

static void
vset_clear(struct vset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static bool
vset_has(const struct vset *s, const char *v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return true;
	return false;
}

static int
vset_add(struct vset *s, const char *v)
{
	char **nv;
	size_t cap;

	if (vset_has(s, v))
		return 0;
	if (s->n >= KV_MAX_VERSIONS)
		return kb_error_set(KB_ERR_LIMIT, "the key has more than %d versions",
		    KV_MAX_VERSIONS);
	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 16;
		if ((nv = realloc(s->v, cap * sizeof(*nv))) == NULL)
			return KB_ERR_ALLOC;
		s->v = nv;
		s->cap = cap;
	}
	if ((s->v[s->n] = kb_strdup(v)) == NULL)
		return KB_ERR_ALLOC;
	s->n++;
	return 0;
}

static int
collect_version(void *arg, const cJSON *item)
{
	struct vset *s = arg;
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(item, "kid");
	struct kb_kv_kid k;
	int r;

	memset(&k, 0, sizeof(k));
	if (!cJSON_IsString(kid))
		return kb_error_set(KB_ERR_PROTOCOL, "a version of the key has no kid");
	if ((r = kb_kv_kid_parse(kid->valuestring, &k)) != 0)
		return r;
	if (k.version == NULL || k.version[0] == '\0')
		r = kb_error_set(KB_ERR_PROTOCOL, "a version of the key has a kid "
		    "without a version: %.200s", kid->valuestring);
	else
		r = vset_add(s, k.version);
	kb_kv_kid_clear(&k);
	return r;
}

/* Every version of the key (GetKeyVersions, all pages); 404: none. */
static int
read_versions(kb_kv_client *c, const char *enc, struct vset *out)
{
	struct vset s;
	char path[3 * KV_MAX_NAME + 32];
	int r;

	memset(&s, 0, sizeof(s));
	snprintf(path, sizeof(path), "/keys/%s/versions", enc);
	r = kb_kv_list(c, path, 0, collect_version, &s);
	if (r == KB_ERR_NOT_FOUND && s.n == 0)
		r = 0;
	if (r != 0) {
		vset_clear(&s);
		return r;
	}
	*out = s;
	return 0;
}

/* The KB_KV_KEY_* flags of a create or import body (its weight). */
static unsigned
body_flags(enum kv_op op, const cJSON *body)
{
	const cJSON *key, *kty, *size, *n, *hsm;
	unsigned bits = 0, f;

	if (op == OP_CREATE) {
		kty = cJSON_GetObjectItemCaseSensitive(body, "kty");
		size = cJSON_GetObjectItemCaseSensitive(body, "key_size");
		if (cJSON_IsNumber(size) && size->valuedouble > 0 &&
		    size->valuedouble < 65536)
			bits = (unsigned)size->valuedouble;
		return cJSON_IsString(kty) ? kb_kv_key_flags(kty->valuestring, bits) : 0;
	}
	if (op != OP_IMPORT)
		return 0;
	key = cJSON_GetObjectItemCaseSensitive(body, "key");
	kty = cJSON_GetObjectItemCaseSensitive(key, "kty");
	n = cJSON_GetObjectItemCaseSensitive(key, "n");
	hsm = cJSON_GetObjectItemCaseSensitive(body, "Hsm");
	if (cJSON_IsString(n) && strlen(n->valuestring) < 65536)
		bits = (unsigned)(strlen(n->valuestring) * 6 / 8 * 8);
	f = cJSON_IsString(kty) ? kb_kv_key_flags(kty->valuestring, bits) : 0;
	if (cJSON_IsTrue(hsm))
		f |= KB_KV_KEY_HSM;
	return f;
}

static long
settle_ms(long base, int attempt)
{
	long d = base;
	int i;

	for (i = 0; i < attempt && d < KV_MAX_SETTLE_MS; i++)
		d *= 2;
	return d > KV_MAX_SETTLE_MS ? KV_MAX_SETTLE_MS : d;
}

static void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
kv_safe(kb_kv_client *c, enum kv_op op, const char *name, const cJSON *body,
    unsigned flags, struct kb_kv_response **out)
{
	static const char *verbs[] = { "creating", "importing", "rotating" };
	const char *verb = verbs[op], *method;
	struct kb_kv_response *resp = NULL;
	struct vset before, after;
	struct kb_buf enc;
	char path[3 * KV_MAX_NAME + 32], why[512];
	const char *fresh = NULL;
	double deadline;
	long base_ms, budget_ms, wait;
	size_t i, n_new;
	bool sent;
	int max_retries, attempt, err, r;

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	kb_buf_init(&enc, 3 * KV_MAX_NAME + 1);
	if (name == NULL || name[0] == '\0' || strlen(name) > KV_MAX_NAME) {
		r = kb_error_set(KB_ERR_INVALID, "a key name of 1 to %d characters is "
		    "needed for %s a key", KV_MAX_NAME, verb);
		goto out;
	}
	if ((op != OP_ROTATE && body == NULL)) {
		r = kb_error_set(KB_ERR_INVALID, "%s key %s needs a request body",
		    verb, name);
		goto out;
	}
	if ((r = kb_http_form_escape(&enc, name, strlen(name))) != 0 ||
	    (r = kb_buf_append(&enc, "", 1)) != 0)
		goto out;
	method = op == OP_IMPORT ? "PUT" : "POST";
	snprintf(path, sizeof(path), "/keys/%s%s", (const char *)enc.data,
	    op == OP_CREATE ? "/create" : op == OP_ROTATE ? "/rotate" : "");
	if ((flags & (KB_KV_KEY_HSM | KB_KV_KEY_RSA3072 | KB_KV_KEY_RSA4096)) == 0)
		flags |= body_flags(op, body);
	flags = (flags & ~KB_KV_RAW_PATH) | KB_KV_NOT_IDEMPOTENT | KB_KV_CREATE;
	kb_kv_client_retry_policy(c, &max_retries, &base_ms, &budget_ms);
	deadline = kb_now_mono() + (double)budget_ms / 1000.0;

	if ((r = read_versions(c, (const char *)enc.data, &before)) != 0) {
		r = kb_error_set(r, "cannot read the versions of key %s before %s it, "
		    "so nothing was sent: %s", name, verb, kb_error_detail(r));
		goto out;
	}
	for (attempt = 0; ; attempt++) {
		kb_kv_response_free(resp);
		resp = NULL;
		r = kb_kv_request_ex(c, method, path, body, flags, &resp, &sent);
		if (r == 0 && resp->status >= 200 && resp->status < 300) {
			*out = resp;      /* transferred */
			resp = NULL;
			goto out;
		}
		if (r == 0 && resp->status < 500 && resp->status != 408) {
			/* The service said no: nothing was made. */
			r = kb_kv_response_error(resp);
			goto out;
		}
		if (r == 0)
			r = kb_kv_response_error(resp);
		else if (!sent)
			goto out;         /* never reached the service */
		err = r;
		snprintf(why, sizeof(why), "%s", kb_error_detail(r));
		kb_debug("%s key %s: %s; outcome unknown, reading its versions",
		    verb, name, why);

		/* Ambiguous: let the service finish, then look. */
		sleep_ms(settle_ms(base_ms, attempt));
		vset_clear(&after);
		if ((r = read_versions(c, (const char *)enc.data, &after)) != 0) {
			r = kb_error_set(KB_ERR_IO, "the outcome of %s key %s at %s is "
			    "unknown: %s, and then its versions could not be read (%s); "
			    "check the versions of key %s before trying again",
			    verb, name, kb_kv_client_endpoint(c), why,
			    kb_error_detail(r), name);
			goto out;
		}
		n_new = 0;
		for (i = 0; i < after.n; i++)
			if (!vset_has(&before, after.v[i])) {
				n_new++;
				fresh = after.v[i];
			}
		if (n_new == 1) {
			snprintf(path, sizeof(path), "/keys/%s/%s",
			    (const char *)enc.data, fresh);
			kb_kv_response_free(resp);
			resp = NULL;
			if ((r = kb_kv_request(c, "GET", path, NULL, &resp)) != 0 ||
			    (r = kb_kv_response_error(resp)) != 0) {
				r = kb_error_set(KB_ERR_IO, "%s key %s made version %s, but "
				    "reading it failed (%s); do not try again, read that "
				    "version instead", verb, name, fresh, kb_error_detail(r));
				goto out;
			}
			kb_debug("%s key %s: the answer was lost, version %s was made",
			    verb, name, fresh);
			*out = resp;      /* transferred */
			resp = NULL;
			r = 0;
			goto out;
		}
		if (n_new > 1) {
			r = kb_error_set(KB_ERR_IO, "the outcome of %s key %s at %s is "
			    "unknown: %s, and %zu new versions appeared meanwhile (another "
			    "writer?); check the versions of key %s", verb, name,
			    kb_kv_client_endpoint(c), why, n_new, name);
			goto out;
		}
		/* No new version: the request did nothing, it may go again. */
		wait = settle_ms(base_ms, attempt + 1);
		if (attempt >= max_retries ||
		    kb_now_mono() + (double)wait / 1000.0 >= deadline) {
			r = kb_error_set(err, "%s key %s failed: %s; no new version was "
			    "made, so it is safe to try again", verb, name, why);
			goto out;
		}
		kb_debug("%s key %s: no new version, sending it again", verb, name);
	}
 out:
	kb_kv_response_free(resp);
	vset_clear(&before);
	vset_clear(&after);
	kb_buf_free(&enc);
	return r;
}

int
kb_kv_create_key(kb_kv_client *c, const char *name, const cJSON *body,
    unsigned flags, struct kb_kv_response **out)
{
	return kv_safe(c, OP_CREATE, name, body, flags, out);
}

int
kb_kv_import_key(kb_kv_client *c, const char *name, const cJSON *body,
    unsigned flags, struct kb_kv_response **out)
{
	return kv_safe(c, OP_IMPORT, name, body, flags, out);
}

int
kb_kv_rotate_key(kb_kv_client *c, const char *name, unsigned flags,
    struct kb_kv_response **out)
{
	return kv_safe(c, OP_ROTATE, name, NULL, flags, out);
}
