/*
 * limiter.c: the client-side limiter per vault (NOTES.md 4.1, 4.2).
 *
 * Key Vault counts transactions per vault in 10-second windows, CREATE
 * apart from everything else, each weighted by key type and size, and
 * answers 429 above them; Managed HSM publishes per-second figures.  A
 * client that sends as fast as it can bounces off that limit, and every
 * bounce costs a round trip and a wait.  So each vault (scheme, host,
 * port) gets one limiter in the process, shared by every client that
 * talks to it, with a token bucket per class:
 *
 *  - Managed HSM has a third class: deleting, purging, backing up and
 *    restoring a key, ten a second (4.2); Key Vault has no such
 *    figure and counts them with the others;
 *  - the bucket holds at most a tenth of the window's allowance and
 *    refills at nine tenths of it, so no window of the service's length
 *    ever sees more than the published figure;
 *  - a request takes its weight from the bucket, which may go negative:
 *    the debt says how long it sleeps (a reservation, first come first
 *    served), so a waiting request sleeps once, for a computed time, and
 *    never spins;
 *  - a 429 halves the rate (at most once per tenth of a window, down to
 *    1/16), empties the bucket for as long as the server asked to wait,
 *    and makes every sleeping reservation take a new place behind it, so
 *    a 429 storm from many threads ends in one wait instead of a second
 *    volley; each window without a 429 doubles the rate again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* NOTES.md 4.1: per 10 s per vault.  Units: a software RSA-2048 or EC
 * operation is 1; the figures are the software column. */
#define KV_VAULT_WINDOW_MS 10000L
#define KV_VAULT_CREATE 20u
#define KV_VAULT_OTHER 4000u
/* NOTES.md 4.2: per second per Managed HSM (one partition). */
#define KV_MHSM_WINDOW_MS 1000L
#define KV_MHSM_CREATE 1u
#define KV_MHSM_OTHER 1100u
/* "Delete, purge, backup, restore: 10 each", whatever the key type.  One
 * bucket for the four: the figures were measured one operation at a
 * time, so their sum is what is known to pass. */
#define KV_MHSM_MAINT 10u

#define KV_MIN_FACTOR (1.0 / 16)

struct kv_bucket {
	double limit;          /* units per window */
	double factor;         /* 1, less after a 429 */
	double tokens;         /* negative: reserved ahead */
	double last;           /* monotonic seconds of the last refill */
	double last_cut;       /* of the last halving */
	double last_raise;     /* of the last doubling */
	unsigned gen;          /* bumped by a 429: reservations start over */
	unsigned long requests, units, waits, throttled;
};

struct kb_kv_limiter {
	struct kb_kv_limiter *next;
	char *key;             /* "https://host:port" */
	unsigned refs;         /* under registry_lock */
	bool mhsm;
	double window;         /* seconds */
	pthread_mutex_t lock;  /* b[] */
	struct kv_bucket b[KB_KV_LIM_NCLASS];   /* b[MAINT] unused off Managed HSM */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kb_kv_limiter *registry;

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

bool
kb_kv_host_is_mhsm(const char *host)
{
	/* NOTES.md 5: the Managed HSM domains of the three clouds. */
	return host != NULL && (ends_with(host, ".managedhsm.azure.net") ||
	    ends_with(host, ".managedhsm.azure.cn") ||
	    ends_with(host, ".managedhsm.usgovcloudapi.net"));
}

unsigned
kb_kv_key_flags(const char *kty, unsigned size_bits)
{
	unsigned f = 0;

	if (kty == NULL)
		return 0;
	if (ends_with(kty, "-HSM"))
		f |= KB_KV_KEY_HSM;
	if (strncmp(kty, "RSA", 3) == 0) {
		if (size_bits > 3072)
			f |= KB_KV_KEY_RSA4096;
		else if (size_bits > 2048)
			f |= KB_KV_KEY_RSA3072;
	}
	return f;
}

/*
 * The weight of one request.  Key Vault (NOTES.md 4.1): other
 * transactions on RSA-3072 cost 4 and on RSA-4096 8 RSA-2048 ones, an
 * HSM key twice a software one (2,000 against 4,000); an HSM create
 * twice a software create (10 against 20).  Managed HSM (4.2): RSA-3072
 * and RSA-4096 cost 3 and 7 (decrypt and unwrap: 1,100 / 360 / 160).
 */
static unsigned
kv_weight(bool mhsm, int cls, unsigned flags)
{
	unsigned w;

	if (cls == KB_KV_LIM_CREATE)
		return !mhsm && (flags & KB_KV_KEY_HSM) ? 2 : 1;
	if (mhsm && cls == KB_KV_LIM_MAINT)
		return 1;
	if (mhsm)
		return flags & KB_KV_KEY_RSA4096 ? 7 : flags & KB_KV_KEY_RSA3072 ? 3 : 1;
	w = flags & KB_KV_KEY_RSA4096 ? 8 : flags & KB_KV_KEY_RSA3072 ? 4 : 1;
	return flags & KB_KV_KEY_HSM ? 2 * w : w;
}

/* Does path (relative to the vault, query allowed) name the segments? */
static bool
path_is(const char *path, const char *first, const char *last)
{
	size_t n = strlen(first), k;
	const char *p, *slash, *end;

	if (strncmp(path, first, n) != 0)
		return false;
	p = path + n;
	end = p + strcspn(p, "?#");
	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == p)
		return false;         /* an empty name */
	if (last == NULL)
		return slash == NULL && end > p;
	if (slash == NULL)
		return false;
	k = strlen(last);
	return (size_t)(end - slash - 1) == k && strncmp(slash + 1, last, k) == 0;
}

/* Is path exactly s, before any query? */
static bool
path_eq(const char *path, const char *s)
{
	size_t n = strlen(s);

	return strncmp(path, s, n) == 0 &&
	    (path[n] == '\0' || path[n] == '?' || path[n] == '#');
}

int
kb_kv_limiter_class(const char *method, const char *path, unsigned flags)
{
	if (flags & KB_KV_CREATE)
		return KB_KV_LIM_CREATE;
	if (method == NULL || path == NULL)
		return KB_KV_LIM_OTHER;
	/* CreateKey, RotateKey, ImportKey (keys.json 2026-04-01). */
	if (strcmp(method, "POST") == 0 &&
	    (path_is(path, "/keys/", "create") || path_is(path, "/keys/", "rotate")))
		return KB_KV_LIM_CREATE;
	if (strcmp(method, "PUT") == 0 && path_is(path, "/keys/", NULL))
		return KB_KV_LIM_CREATE;
	/* DeleteKey, PurgeDeletedKey, BackupKey, RestoreKey: Managed HSM's
	 * ten a second (NOTES.md 4.2); the limiter of a Key Vault counts
	 * them as others. */
	if (strcmp(method, "DELETE") == 0 &&
	    (path_is(path, "/keys/", NULL) || path_is(path, "/deletedkeys/", NULL)))
		return KB_KV_LIM_MAINT;
	if (strcmp(method, "POST") == 0 &&
	    (path_is(path, "/keys/", "backup") || path_eq(path, "/keys/restore")))
		return KB_KV_LIM_MAINT;
	return KB_KV_LIM_OTHER;
}

static void
bucket_init(struct kv_bucket *b, unsigned limit, double now)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
	b->factor = 1;
	b->last = b->last_cut = b->last_raise = now;
	b->tokens = limit / 10.0 < 1 ? 1 : limit / 10.0;
}

static double
bucket_rate(const struct kv_bucket *b, double window)
{
	return 0.9 * b->limit * b->factor / window;
}

static double
bucket_burst(const struct kv_bucket *b)
{
	double burst = b->limit * b->factor / 10.0;

	return burst < 1 ? 1 : burst;
}

static void
bucket_refill(struct kv_bucket *b, double window, double now)
{
	double burst;

	if (now > b->last) {
		b->tokens += (now - b->last) * bucket_rate(b, window);
		b->last = now;
	}
	/* A window without a 429: back towards the full rate. */
	if (b->factor < 1 && now - b->last_cut >= window &&
	    now - b->last_raise >= window) {
		b->factor = b->factor * 2 > 1 ? 1 : b->factor * 2;
		b->last_raise = now;
	}
	burst = bucket_burst(b);
	if (b->tokens > burst)
		b->tokens = burst;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
kb_kv_limiter_get(const char *scheme, const char *host, long port,
    const struct kb_kv_options *opt, struct kb_kv_limiter **out)
{
	struct kb_kv_limiter *l;
	unsigned create, other, maint;
	long window_ms;
	bool mhsm = kb_kv_host_is_mhsm(host);
	double now = kb_now_mono();
	char *key = NULL;
	size_t n;
	int r = KB_ERR_ALLOC;

	window_ms = opt->limit_window_ms > 0 ? opt->limit_window_ms :
	    mhsm ? KV_MHSM_WINDOW_MS : KV_VAULT_WINDOW_MS;
	create = opt->limit_create > 0 ? opt->limit_create :
	    mhsm ? KV_MHSM_CREATE : KV_VAULT_CREATE;
	other = opt->limit_other > 0 ? opt->limit_other :
	    mhsm ? KV_MHSM_OTHER : KV_VAULT_OTHER;
	/* Key Vault: no such class (kv_bucket_of). */
	maint = !mhsm ? 0 : opt->limit_maint > 0 ? opt->limit_maint : KV_MHSM_MAINT;
	n = strlen(scheme) + strlen(host) + 32;
	if ((key = malloc(n)) == NULL)
		return KB_ERR_ALLOC;
	snprintf(key, n, "%s://%s:%ld", scheme, host, port);
	pthread_mutex_lock(&registry_lock);
	for (l = registry; l != NULL; l = l->next)
		if (strcmp(l->key, key) == 0)
			break;
	if (l != NULL) {
		/* The first client's limits stay while any client lives. */
		if (l->b[KB_KV_LIM_CREATE].limit != create ||
		    l->b[KB_KV_LIM_OTHER].limit != other ||
		    l->b[KB_KV_LIM_MAINT].limit != maint ||
		    l->window * 1000 != (double)window_ms)
			kb_debug("limiter for %s: keeping the limits of the first "
			    "client (%.0f creates, %.0f others, %.0f deletes, purges, "
			    "backups and restores per %.0f ms)", key,
			    l->b[KB_KV_LIM_CREATE].limit, l->b[KB_KV_LIM_OTHER].limit,
			    l->b[KB_KV_LIM_MAINT].limit, l->window * 1000);
		l->refs++;
		pthread_mutex_unlock(&registry_lock);
		free(key);
		*out = l;
		return 0;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto out;
	pthread_mutex_init(&l->lock, NULL);
	l->key = key;       /* transferred */
	key = NULL;
	l->refs = 1;
	l->mhsm = mhsm;
	l->window = (double)window_ms / 1000.0;
	bucket_init(&l->b[KB_KV_LIM_CREATE], create, now);
	bucket_init(&l->b[KB_KV_LIM_OTHER], other, now);
	bucket_init(&l->b[KB_KV_LIM_MAINT], maint, now);
	l->next = registry;
	registry = l;
	if (mhsm)
		kb_debug("limiter for %s: %u creates, %u other units and %u deletes, "
		    "purges, backups and restores per %ld ms (Managed HSM)", l->key,
		    create, other, maint, window_ms);
	else
		kb_debug("limiter for %s: %u creates and %u other units per %ld ms",
		    l->key, create, other, window_ms);
	*out = l;
	r = 0;
 out:
	pthread_mutex_unlock(&registry_lock);
	free(key);
	return r;
}

/* The bucket of class cls: Key Vault counts MAINT with the others. */
static struct kv_bucket *
kv_bucket_of(struct kb_kv_limiter *l, int cls)
{
	if (cls == KB_KV_LIM_CREATE)
		return &l->b[KB_KV_LIM_CREATE];
	if (cls == KB_KV_LIM_MAINT && l->mhsm)
		return &l->b[KB_KV_LIM_MAINT];
	return &l->b[KB_KV_LIM_OTHER];
}

static const char *
kv_bucket_units(const struct kb_kv_limiter *l, const struct kv_bucket *b)
{
	if (b == &l->b[KB_KV_LIM_CREATE])
		return "creates";
	if (b == &l->b[KB_KV_LIM_MAINT])
		return "deletes, purges, backups and restores";
	return "units";
}

void
kb_kv_limiter_put(struct kb_kv_limiter *l)
{
	struct kb_kv_limiter **pp;

	if (l == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--l->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	pthread_mutex_destroy(&l->lock);
	free(l->key);
	free(l);
}

int
kb_kv_limiter_acquire(struct kb_kv_limiter *l, int cls, unsigned flags,
    double deadline)
{
	struct kv_bucket *b;
	unsigned w, gen;
	double now, wait, rate;
	bool waited = false;

	if (l == NULL)
		return 0;
	b = kv_bucket_of(l, cls);
	w = kv_weight(l->mhsm, cls, flags);
	for (;;) {
		pthread_mutex_lock(&l->lock);
		now = kb_now_mono();
		bucket_refill(b, l->window, now);
		rate = bucket_rate(b, l->window);
		b->tokens -= w;
		wait = b->tokens < 0 ? -b->tokens / rate : 0;
		gen = b->gen;
		if (wait > 0 && now + wait > deadline) {
			b->tokens += w;     /* not taken */
			pthread_mutex_unlock(&l->lock);
			return kb_error_set(KB_ERR_BUSY, "too many requests to %s: "
			    "the client-side limit (%.0f %s per %.0f s) would hold this "
			    "request past its retry budget", l->key, b->limit * b->factor,
			    kv_bucket_units(l, b), l->window);
		}
		if (wait <= 0) {
			b->requests++;
			b->units += w;
			if (waited)
				b->waits++;
			pthread_mutex_unlock(&l->lock);
			return 0;
		}
		pthread_mutex_unlock(&l->lock);
		waited = true;
		sleep_s(wait);
		pthread_mutex_lock(&l->lock);
		if (b->gen == gen) {
			/* Our reserved place came up. */
			b->requests++;
			b->units += w;
			b->waits++;
			pthread_mutex_unlock(&l->lock);
			return 0;
		}
		/* A 429 came while we slept: the place was given up with the
		 * bucket, take a new one behind the server's wait. */
		pthread_mutex_unlock(&l->lock);
	}
}

void
kb_kv_limiter_throttled(struct kb_kv_limiter *l, int cls, long server_wait_ms)
{
	struct kv_bucket *b;
	double now, hold;

	if (l == NULL)
		return;
	b = kv_bucket_of(l, cls);
	hold = server_wait_ms > 0 ? (double)server_wait_ms / 1000.0 : 0;
	if (hold > l->window * 6)
		hold = l->window * 6;
	pthread_mutex_lock(&l->lock);
	now = kb_now_mono();
	bucket_refill(b, l->window, now);
	b->throttled++;
	if (now - b->last_cut >= l->window / 10 || b->throttled == 1) {
		b->factor = b->factor / 2 < KV_MIN_FACTOR ? KV_MIN_FACTOR : b->factor / 2;
		b->last_cut = now;
	}
	/* Every sleeping reservation is void (gen) and will take a new
	 * place, so the debt starts over: nothing goes before the server's
	 * wait is over, then one request after another at the new rate. */
	b->tokens = -hold * bucket_rate(b, l->window);
	b->gen++;
	pthread_mutex_unlock(&l->lock);
	kb_debug("limiter for %s: 429, rate of %s now %.0f%% for a while", l->key,
	    kv_bucket_units(l, b), b->factor * 100);
}

void
kb_kv_limiter_info_get(struct kb_kv_limiter *l, struct kb_kv_limiter_info *out)
{
	const struct kv_bucket *c = &l->b[KB_KV_LIM_CREATE];
	const struct kv_bucket *o = &l->b[KB_KV_LIM_OTHER];
	const struct kv_bucket *m = &l->b[KB_KV_LIM_MAINT];

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&registry_lock);
	out->clients = l->refs;
	pthread_mutex_unlock(&registry_lock);
	pthread_mutex_lock(&l->lock);
	out->managed_hsm = l->mhsm;
	out->window_ms = (long)(l->window * 1000 + 0.5);
	out->limit_create = (unsigned)c->limit;
	out->limit_other = (unsigned)o->limit;
	out->factor_create = c->factor;
	out->factor_other = o->factor;
	out->requests_create = c->requests;
	out->requests_other = o->requests;
	out->units_create = c->units;
	out->units_other = o->units;
	out->waits = c->waits + o->waits + m->waits;
	out->throttled = c->throttled + o->throttled + m->throttled;
	if (l->mhsm) {
		out->limit_maint = (unsigned)m->limit;
		out->factor_maint = m->factor;
		out->requests_maint = m->requests;
		out->units_maint = m->units;
		out->waits_maint = m->waits;
	}
	pthread_mutex_unlock(&l->lock);
}
