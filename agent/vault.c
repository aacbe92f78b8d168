/*
 * vault.c: local vaults, each a token plus the metadata store, with Key
 * Vault's lifecycle made atomic across the two (docs/vaults.md,
 * docs/internals/store.md).
 *
 *   create, rotate,        intent recorded -> token object made,
 *   import, adopt          imported (or relabelled) -> intent committed
 *   purge                  intent recorded -> token objects destroyed ->
 *                          intent committed
 *   delete                 store commit -> usage flags cleared on the token
 *   recover                usage flags restored -> store commit
 *   update (key_ops)       token flags -> store commit (reverted on failure)
 *
 * After a crash: open intents are rolled forward when the token step is
 * found done and back (object destroyed) when not; every version of a
 * soft-deleted key gets its usage flags cleared again, which covers a
 * delete cut short after its commit and a recover cut short before its
 * commit.  So an active key's objects always carry their flags, and a
 * deleted key's objects never do once the agent serves requests.
 *
 * Lifecycle operations on one name are serialized (lock stripes by the
 * name's hash); crypto operations are not.  Token keys used by crypto are
 * cached with a reference count, so a purge never frees a key in use.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent.h"
#include "store.h"

#define NAME_STRIPES 64
#define KEYCACHE_SLOTS 4096
#define INFLIGHT_MAX 256
#define LIST_PAGE 500

struct agent_keyref {
	size_t vault;
	unsigned char id[KV_VERSION_BYTES];
	kb_p11_key *key;
	char *jwk;          /* public JWK text, read from the token once */
	unsigned refs;
	bool dead;
};

struct agent_keycache {
	pthread_mutex_t mu;
	struct agent_keyref *slot[KEYCACHE_SLOTS];
};

struct agent_inflight {
	pthread_mutex_t mu;
	pthread_mutex_t stripes[NAME_STRIPES];
	int64_t ids[INFLIGHT_MAX];
	size_t n;
	/* The sweeper. */
	pthread_t thread;
	pthread_cond_t wake;
	bool stop;
};

/* ------------------------------------------------------------ utilities */

static uint32_t
fnv1a(const void *p, size_t n, uint32_t h)
{
	const unsigned char *b = p;

	while (n-- > 0) {
		h ^= *b++;
		h *= 16777619u;
	}
	return h;
}

static pthread_mutex_t *
name_lock(struct agent *a, const struct agent_vault *v, const char *name)
{
	char lc[KV_NAME_MAX + 1];
	uint32_t h = 2166136261u;

	if (kv_lower(name, lc, sizeof(lc)) != 0)
		lc[0] = '\0';
	h = fnv1a(&v->index, sizeof(v->index), h);
	h = fnv1a(lc, strlen(lc), h);
	return &a->inflight->stripes[h % NAME_STRIPES];
}

static void
inflight_add(struct agent *a, int64_t id)
{
	pthread_mutex_lock(&a->inflight->mu);
	if (a->inflight->n < INFLIGHT_MAX)
		a->inflight->ids[a->inflight->n++] = id;
	pthread_mutex_unlock(&a->inflight->mu);
}

static void
inflight_del(struct agent *a, int64_t id)
{
	struct agent_inflight *f = a->inflight;
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->n; i++)
		if (f->ids[i] == id) {
			f->ids[i] = f->ids[--f->n];
			break;
		}
	pthread_mutex_unlock(&f->mu);
}

/* In flight, or the table was full (then every intent counts as busy). */
static bool
inflight_has(struct agent *a, int64_t id)
{
	struct agent_inflight *f = a->inflight;
	bool found = false;
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->n; i++)
		if (f->ids[i] == id)
			found = true;
	if (f->n == INFLIGHT_MAX)
		found = true;
	pthread_mutex_unlock(&f->mu);
	return found;
}

static kb_p11_token *
vtoken(const struct agent_vault *v)
{
	return v->tok->token;
}

static void
tw_lock(struct agent_vault *v)
{
	pthread_mutex_lock(&v->tokwrite);
}

static void
tw_unlock(struct agent_vault *v)
{
	pthread_mutex_unlock(&v->tokwrite);
}

struct agent_vault *
agent_vault_find(struct agent *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->n_vaults; i++)
		if (strcasecmp(a->vaults[i].cfg->name, name) == 0)
			return &a->vaults[i];
	return NULL;
}

struct agent_vault *
agent_vault_default(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->n_vaults; i++)
		if (a->vaults[i].cfg->is_default)
			return &a->vaults[i];
	return NULL;
}

static bool
kty_is(const char *kty, const char *base)
{
	size_t n = strlen(base);

	return strncmp(kty, base, n) == 0 &&
	    (kty[n] == '\0' || strcmp(kty + n, "-HSM") == 0);
}

unsigned
agent_p11_ops(const char *kty, unsigned key_ops)
{
	unsigned ops = 0;
	bool rsa = kty_is(kty, "RSA");

	if (key_ops & KV_OP_ENCRYPT)
		ops |= KB_P11_OP_ENCRYPT;
	if (key_ops & KV_OP_DECRYPT)
		ops |= KB_P11_OP_DECRYPT;
	if (key_ops & KV_OP_SIGN)
		ops |= KB_P11_OP_SIGN;
	if (key_ops & KV_OP_VERIFY)
		ops |= KB_P11_OP_VERIFY;
	/* RSA wrapKey/unwrapKey are OAEP encrypt/decrypt of the bytes given. */
	if (key_ops & KV_OP_WRAP_KEY)
		ops |= KB_P11_OP_WRAP | (rsa ? KB_P11_OP_ENCRYPT : 0);
	if (key_ops & KV_OP_UNWRAP_KEY)
		ops |= KB_P11_OP_UNWRAP | (rsa ? KB_P11_OP_DECRYPT : 0);
	return ops;
}

static int
p11_spec(const char *kty, unsigned key_size, const char *crv,
    struct kb_p11_keyspec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->token = true;
	if (kty_is(kty, "RSA")) {
		spec->type = KB_P11_RSA;
		spec->bits = key_size;
	} else if (kty_is(kty, "oct")) {
		spec->type = KB_P11_AES;
		spec->bits = key_size;
	} else if (kty_is(kty, "EC")) {
		spec->type = KB_P11_EC;
		if (crv != NULL && strcmp(crv, "P-256") == 0)
			spec->curve = KB_P11_P256;
		else if (crv != NULL && strcmp(crv, "P-384") == 0)
			spec->curve = KB_P11_P384;
		else if (crv != NULL && strcmp(crv, "P-521") == 0)
			spec->curve = KB_P11_P521;
		else
			return kb_error_set(KB_ERR_INVALID, "local vaults support the "
			    "curves P-256, P-384 and P-521");
	} else {
		return kb_error_set(KB_ERR_INVALID, "unknown key type %s", kty);
	}
	return 0;
}

/* Every token key (object or pair) labelled label with id: 0..n found. */
static int
find_objects(struct agent_vault *v, const char *label,
    const unsigned char id[KV_VERSION_BYTES], kb_p11_key ***keys, size_t *n)
{
	struct kb_p11_uri f;

	int r;

	memset(&f, 0, sizeof(f));
	f.object = (char *)label;
	f.id = (unsigned char *)id;
	f.id_len = KV_VERSION_BYTES;
	f.has_id = true;
	/* SoftHSM's object store also trips over searches that run while
	 * another thread writes (seen by t-crash): searches take the lock. */
	tw_lock(v);
	r = kb_p11_find_keys(vtoken(v), &f, keys, n);
	tw_unlock(v);
	return r;
}

/* Destroy every object labelled label with id (none is fine). */
static int
destroy_objects(struct agent_vault *v, const char *label,
    const unsigned char id[KV_VERSION_BYTES])
{
	kb_p11_key **keys = NULL;
	size_t n = 0, i;
	int r;

	if ((r = find_objects(v, label, id, &keys, &n)) != 0)
		return r;
	tw_lock(v);
	for (i = 0; i < n && r == 0; i++)
		r = kb_p11_key_destroy(keys[i]);
	tw_unlock(v);
	kb_p11_keys_free(keys, n);
	return r;
}

/*
 * Set usage flags on every object labelled label with id.  need_all: the
 * version's key must be there, whole (recover and update must not make
 * a key active whose material is gone).
 */
static int
set_object_ops(struct agent_vault *v, const char *label,
    const unsigned char id[KV_VERSION_BYTES], unsigned ops, bool need_all)
{
	kb_p11_key **keys = NULL;
	size_t n = 0, i;
	int r;

	if ((r = find_objects(v, label, id, &keys, &n)) != 0)
		return r;
	if (need_all && (n != 1 || !kb_p11_key_is_complete(keys[0]))) {
		kb_p11_keys_free(keys, n);
		return kb_error_set(KB_ERR_DEVICE, "a version of key %s has no "
		    "complete object on the token; its key material is lost", label);
	}
	tw_lock(v);
	for (i = 0; i < n && r == 0; i++) {
		struct kb_p11_key_attrs at;

		/* Read first: SoftHSM rewrites the whole object file on every
		 * C_SetAttributeValue, so write only what must change. */
		memset(&at, 0, sizeof(at));
		if (kb_p11_key_get_attrs(keys[i], &at) == 0 && at.ops == ops) {
			kb_p11_key_attrs_clear(&at);
			continue;
		}
		kb_p11_key_attrs_clear(&at);
		r = kb_p11_key_set_ops(keys[i], ops);
		if (r == KB_ERR_UNSUPPORTED) {
			/* "where the token allows it" (the store stays the judge). */
			kb_warn("token %s refuses to change the usage flags of %s",
			    v->tok->cfg->name, label);
			r = 0;
		}
	}
	tw_unlock(v);
	kb_p11_keys_free(keys, n);
	return r;
}

/* ------------------------------------------------------------ key cache */

static void
keyref_free(struct agent_keyref *e)
{
	if (e == NULL)
		return;
	kb_p11_key_free(e->key);
	free(e->jwk);
	free(e);
}

static size_t
cache_slot(size_t vault, const unsigned char id[KV_VERSION_BYTES])
{
	uint32_t h = fnv1a(&vault, sizeof(vault), 2166136261u);

	return fnv1a(id, KV_VERSION_BYTES, h) % KEYCACHE_SLOTS;
}

/*
 * Enter key (taken on success) in the cache, replacing the slot's entry;
 * with hold, the caller gets a reference too.  NULL if out of memory.
 */
static struct agent_keyref *
cache_insert(struct agent_keycache *kc, size_t vault,
    const unsigned char id[KV_VERSION_BYTES], kb_p11_key *key, bool hold)
{
	struct agent_keyref *e, *old;
	size_t h = cache_slot(vault, id);

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->vault = vault;
	memcpy(e->id, id, KV_VERSION_BYTES);
	e->key = key;
	e->refs = hold ? 2 : 1;    /* the cache's, and the caller's */

	pthread_mutex_lock(&kc->mu);
	old = kc->slot[h];
	if (old != NULL) {
		old->dead = true;
		if (--old->refs == 0)
			keyref_free(old);
	}
	kc->slot[h] = e;
	pthread_mutex_unlock(&kc->mu);
	return e;
}

int
agent_vault_key(struct agent *a, struct agent_vault *v,
    const struct kb_store_key *k, struct agent_keyref **out)
{
	struct agent_keycache *kc = a->keycache;
	struct agent_keyref *e;
	kb_p11_key **keys = NULL;
	size_t n = 0, h = cache_slot(v->index, k->p11_id);
	int r;

	pthread_mutex_lock(&kc->mu);
	e = kc->slot[h];
	if (e != NULL && e->vault == v->index &&
	    memcmp(e->id, k->p11_id, KV_VERSION_BYTES) == 0) {
		e->refs++;
		pthread_mutex_unlock(&kc->mu);
		*out = e;
		return 0;
	}
	pthread_mutex_unlock(&kc->mu);

	if ((r = find_objects(v, k->p11_label, k->p11_id, &keys, &n)) != 0)
		return r;
	if (n != 1) {
		kb_p11_keys_free(keys, n);
		return kb_error_set(KB_ERR_INTERNAL, "the token holds %zu objects "
		    "for version %s of key %s; expected one", n, k->version,
		    k->name);
	}
	e = cache_insert(kc, v->index, k->p11_id, keys[0], true);
	if (e != NULL)
		keys[0] = NULL;
	kb_p11_keys_free(keys, n);
	if (e == NULL)
		return KB_ERR_ALLOC;
	*out = e;
	return 0;
}

kb_p11_key *
agent_keyref_key(const struct agent_keyref *r)
{
	return r->key;
}

/*
 * The public half never changes: read it from the token once per cache
 * entry.  SoftHSM's file backend walks its object files on every
 * attribute read, so a GET that asked the token cost more the more keys
 * the token held.  Valid while the caller holds r.
 */
int
agent_keyref_public_jwk(struct agent *a, struct agent_keyref *r,
    const char **out)
{
	char *text = NULL;
	int ret;

	pthread_mutex_lock(&a->keycache->mu);
	if (r->jwk != NULL) {
		*out = r->jwk;
		pthread_mutex_unlock(&a->keycache->mu);
		return 0;
	}
	pthread_mutex_unlock(&a->keycache->mu);
	if ((ret = kb_p11_public_jwk(r->key, &text)) != 0)
		return ret;
	pthread_mutex_lock(&a->keycache->mu);
	if (r->jwk == NULL)
		r->jwk = text;
	else
		free(text);    /* another thread was first */
	*out = r->jwk;
	pthread_mutex_unlock(&a->keycache->mu);
	return 0;
}

void
agent_keyref_put(struct agent *a, struct agent_keyref *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&a->keycache->mu);
	if (--e->refs == 0)
		keyref_free(e);
	pthread_mutex_unlock(&a->keycache->mu);
}

/*
 * The cache holds one reference to each entry it lists (refs starts at
 * 2 for a new entry: cache + caller).  cache_forget and replacement drop
 * the cache's reference; so refs == 0 means nobody holds it.
 */
static void
cache_forget_ref(struct agent *a, size_t vault, const unsigned char id[KV_VERSION_BYTES])
{
	struct agent_keycache *kc = a->keycache;
	struct agent_keyref *e;
	size_t h = cache_slot(vault, id);

	pthread_mutex_lock(&kc->mu);
	e = kc->slot[h];
	if (e != NULL && e->vault == vault && memcmp(e->id, id, KV_VERSION_BYTES) == 0) {
		kc->slot[h] = NULL;
		e->dead = true;
		if (--e->refs == 0)
			keyref_free(e);
	}
	pthread_mutex_unlock(&kc->mu);
}

/* ------------------------------------------------------------- create */

static int
new_version_id(struct agent_vault *v, struct kb_store_new_version *nv,
    unsigned char id[KV_VERSION_BYTES])
{
	static const char hx[] = "0123456789abcdef";
	size_t i;
	int r;

	/* The token's RNG, with the system's as a fallback for tokens without. */
	if (kb_p11_random(vtoken(v), id, KV_VERSION_BYTES) != 0 &&
	    (r = kb_random(id, KV_VERSION_BYTES)) != 0)
		return r;
	for (i = 0; i < KV_VERSION_BYTES; i++) {
		nv->version[2 * i] = hx[id[i] >> 4];
		nv->version[2 * i + 1] = hx[id[i] & 15];
	}
	nv->version[KV_VERSION_LEN] = '\0';
	return 0;
}

/* The token step of a create intent failed or cannot be finished. */
static void
create_roll_back(struct agent *a, struct agent_vault *v,
    const struct kb_store_intent *in)
{
	int r;

	if ((r = destroy_objects(v, in->p11_label, in->p11_id)) != 0) {
		kb_warn("cannot remove the token object of %s version %s (%s); "
		    "the agent retries later", in->name, in->version,
		    kb_error_detail(r));
		return;    /* intent stays open: the sweep retries */
	}
	if ((r = kb_store_intent_abort(a->store, in->id, kb_now_unix())) != 0)
		kb_warn("cannot close the intent of %s version %s: %s", in->name,
		    in->version, kb_error_detail(r));
}

/* The token step of a create: generate, or import the caller's material. */
static int
make_object(struct agent_vault *v, const struct kb_p11_keyspec *spec,
    const struct agent_import *mat, kb_p11_key **key)
{
	int r;

	tw_lock(v);
	if (mat == NULL)
		r = kb_p11_generate(vtoken(v), spec, key);
	else if (spec->type == KB_P11_RSA)
		r = kb_p11_import_rsa(vtoken(v), spec, &mat->rsa, key);
	else if (spec->type == KB_P11_EC)
		r = kb_p11_import_ec(vtoken(v), spec, &mat->ec, key);
	else
		r = kb_p11_import_secret(vtoken(v), spec, mat->k, key);
	tw_unlock(v);
	return r;
}

/*
 * Create, rotate and import: intent recorded -> token object made ->
 * intent committed.  The intent's payload is the version's metadata
 * only (store.c nv_to_json): never key material, so start-up resolution
 * treats an import as any create (object complete: roll forward; else
 * destroy and abort).
 */
static int
create_version(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_new_version *nv, const struct agent_import *mat,
    struct kb_store_key **out)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	struct kb_store_intent *in = NULL;
	struct kb_p11_keyspec spec;
	unsigned char id[KV_VERSION_BYTES];
	kb_p11_key *key = NULL;
	char *jwk = NULL;
	int r, r2;

	if ((r = p11_spec(nv->kty, nv->key_size, nv->crv, &spec)) != 0 ||
	    (r = new_version_id(v, nv, id)) != 0)
		return r;
	spec.label = name;
	spec.id = id;
	spec.id_len = KV_VERSION_BYTES;
	spec.ops = agent_p11_ops(nv->kty, nv->key_ops);
	spec.backup = v->cfg->backup;
	if (spec.ops == 0)
		return kb_error_set(KB_ERR_INVALID,
		    "key_ops must name at least one operation of the key type");

	pthread_mutex_lock(lk);
	if ((r = kb_store_intent_begin_create(a->store, who, v->cfg->name, name,
	    nv, kb_now_unix(), &in)) != 0)
		goto out;
	inflight_add(a, in->id);
	r = make_object(v, &spec, mat, &key);
	if (r != 0) {
		/* The request was checked: a refusal now is the token's fault. */
		if (r == KB_ERR_INVALID)
			r = kb_error_set(KB_ERR_DEVICE, "the token could not %s "
			    "the key: %s", mat != NULL ? "import" : "make",
			    kb_error_detail(r));
		create_roll_back(a, v, in);
		goto out;
	}
	/* The public half goes into the store with the version (a get then
	 * needs no token lookup); without it the first get records it. */
	if ((spec.type == KB_P11_RSA || spec.type == KB_P11_EC) &&
	    (r2 = kb_p11_public_jwk(key, &jwk)) != 0) {
		kb_warn("vault %s: %s version %s: the token does not show the "
		    "public key now: %s", v->cfg->name, name, nv->version,
		    kb_error_detail(r2));
		jwk = NULL;
	}
	r = kb_store_intent_commit_jwk(a->store, in->id, kb_now_unix(), jwk, out);
	free(jwk);
	jwk = NULL;
	if (r != 0) {
		kb_warn("cannot record %s version %s: %s", name, nv->version,
		    kb_error_detail(r));
		r2 = r;
		create_roll_back(a, v, in);
		r = kb_error_set(r2, "%s", kb_error_detail(r2));
		goto out;
	}
	kb_info("vault %s: %s %s version %s (uid %u)", v->cfg->name,
	    mat != NULL ? "imported" : "created", name, nv->version,
	    (unsigned)who->uid);
	/* The answer needs the public half: no token search for it. */
	if (cache_insert(a->keycache, v->index, id, key, false) != NULL)
		key = NULL;
 out:
	if (in != NULL)
		inflight_del(a, in->id);
	pthread_mutex_unlock(lk);
	kb_p11_key_free(key);
	kb_store_intent_free(in);
	return r;
}

int
agent_vault_create(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_new_version *nv, struct kb_store_key **out)
{
	return create_version(a, v, who, name, nv, NULL, out);
}

int
agent_vault_import(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_new_version *nv, const struct agent_import *mat,
    struct kb_store_key **out)
{
	struct kb_p11_keyspec spec;
	unsigned bits = 0;
	int r;

	if (mat == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key material to import");
	if ((r = p11_spec(nv->kty, nv->key_size, nv->crv, &spec)) != 0)
		return r;
	/* Check the material before an intent exists: a bad key changes
	 * nothing, not even the audit log. */
	switch (spec.type) {
	case KB_P11_RSA:
		if ((r = kb_p11_rsa_parts_check(&mat->rsa, &bits)) != 0)
			return r;
		if (bits != nv->key_size)
			return kb_error_set(KB_ERR_INVALID, "the RSA key has %u "
			    "bits", bits);
		break;
	case KB_P11_EC:
		if ((r = kb_p11_ec_parts_check(spec.curve, &mat->ec)) != 0)
			return r;
		break;
	default:
		if (mat->k == NULL || mat->k->len * 8 != nv->key_size)
			return kb_error_set(KB_ERR_INVALID, "an oct key is 16, 24 "
			    "or 32 bytes");
		break;
	}
	nv->audit_op = "import";
	return create_version(a, v, who, name, nv, mat, out);
}

int
agent_vault_rotate(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out)
{
	struct kb_store_new_version nv;
	struct kb_store_key *cur = NULL;
	int r;

	if ((r = kb_store_get_key(a->store, v->cfg->name, name, NULL, &cur)) != 0)
		return r;
	memset(&nv, 0, sizeof(nv));
	nv.kty = cur->kty;
	nv.key_size = cur->key_size;
	nv.crv = cur->crv[0] != '\0' ? cur->crv : NULL;
	nv.key_ops = cur->key_ops;
	nv.enabled = true;
	nv.tags_json = cur->tags_json;
	nv.audit_op = "rotate";
	r = agent_vault_create(a, v, who, cur->name, &nv, out);
	kb_store_key_free(cur);
	return r;
}

/* ------------------------------------------------------------- update */

int
agent_vault_update(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name, const char *version,
    const struct kb_store_update *u, struct kb_store_key **out)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	struct kb_store_key *k = NULL;
	int r, r2;

	pthread_mutex_lock(lk);
	/*
	 * The store first, then the token: a crash in between leaves flags
	 * the start-up check puts back in line with the store (never the
	 * other way round, which nothing could detect).
	 */
	if ((r = kb_store_update(a->store, who, v->cfg->name, name, version, u,
	    kb_now_unix(), &k)) != 0)
		goto out;
	if (u->set_key_ops && (r2 = set_object_ops(v, k->p11_label, k->p11_id,
	    agent_p11_ops(k->kty, k->key_ops), false)) != 0)
		kb_warn("vault %s: %s version %s: key_ops recorded but the token's "
		    "usage flags could not follow yet (%s); the agent retries at "
		    "start", v->cfg->name, name, k->version, kb_error_detail(r2));
	if (out != NULL) {
		*out = k;
		k = NULL;
	}
 out:
	pthread_mutex_unlock(lk);
	kb_store_key_free(k);
	return r;
}

/* ------------------------------------------------------ delete, recover */

/* Usage flags of every version of a key: cleared, or as key_ops say. */
static int
key_flags(struct agent *a, struct agent_vault *v, const char *name, bool on)
{
	struct kb_store_object *objs = NULL;
	size_t n = 0, i;
	int r;

	if ((r = kb_store_key_objects(a->store, v->cfg->name, name, &objs, &n)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++)
		r = set_object_ops(v, objs[i].p11_label, objs[i].p11_id,
		    on ? agent_p11_ops(objs[i].kty, objs[i].key_ops) : 0, on);
	free(objs);
	return r;
}

int
agent_vault_delete(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	int r, r2;

	pthread_mutex_lock(lk);
	r = kb_store_delete(a->store, who, v->cfg->name, name, kb_now_unix(), out);
	if (r == 0 && (r2 = key_flags(a, v, name, false)) != 0)
		kb_warn("vault %s: %s is deleted but its usage flags could not be "
		    "cleared yet (%s); the agent retries at the next sweep",
		    v->cfg->name, name, kb_error_detail(r2));
	pthread_mutex_unlock(lk);
	if (r == 0)
		kb_info("vault %s: deleted %s (uid %u)", v->cfg->name, name,
		    (unsigned)who->uid);
	return r;
}

int
agent_vault_recover(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name,
    struct kb_store_key **out)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	struct kb_store_key *dk = NULL;
	int r;

	pthread_mutex_lock(lk);
	/* Only a deleted key: an active one must not be touched. */
	if ((r = kb_store_get_deleted(a->store, v->cfg->name, name, &dk)) != 0)
		goto out;
	if ((r = key_flags(a, v, name, true)) != 0)
		goto undo;
	if ((r = kb_store_recover(a->store, who, v->cfg->name, name,
	    kb_now_unix(), out)) != 0)
		goto undo;
	kb_info("vault %s: recovered %s (uid %u)", v->cfg->name, name,
	    (unsigned)who->uid);
	goto out;
 undo:
	if (key_flags(a, v, name, false) != 0)
		kb_warn("vault %s: cannot clear the usage flags of deleted key %s "
		    "again; the agent retries at the next sweep", v->cfg->name, name);
 out:
	pthread_mutex_unlock(lk);
	kb_store_key_free(dk);
	return r;
}

/* ---------------------------------------------------------------- purge */

/* The token step of a purge intent, then its commit. */
static int
purge_finish(struct agent *a, struct agent_vault *v,
    const struct kb_store_intent *in)
{
	struct kb_store_object *objs = NULL;
	size_t n = 0, i;
	int r;

	if ((r = kb_store_key_objects(a->store, v->cfg->name, in->name, &objs,
	    &n)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		cache_forget_ref(a, v->index, objs[i].p11_id);
		r = destroy_objects(v, objs[i].p11_label, objs[i].p11_id);
	}
	free(objs);
	if (r != 0)
		return r;    /* the intent stays open; the sweep finishes it */
	return kb_store_intent_commit(a->store, in->id, kb_now_unix(), NULL);
}

int
agent_vault_purge(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *name)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	struct kb_store_intent *in = NULL;
	int r;

	pthread_mutex_lock(lk);
	if ((r = kb_store_intent_begin_purge(a->store, who, v->cfg->name, name,
	    kb_now_unix(), &in)) != 0)
		goto out;
	inflight_add(a, in->id);
	if ((r = purge_finish(a, v, in)) != 0) {
		kb_warn("vault %s: purge of %s not finished (%s); the agent "
		    "finishes it at the next sweep", v->cfg->name, name,
		    kb_error_detail(r));
		r = kb_error_set(KB_ERR_DEVICE, "the purge of %s could not finish "
		    "on the token; the agent retries it", name);
		goto out;
	}
	kb_info("vault %s: purged %s (uid %u)", v->cfg->name, name,
	    (unsigned)who->uid);
 out:
	if (in != NULL)
		inflight_del(a, in->id);
	pthread_mutex_unlock(lk);
	kb_store_intent_free(in);
	return r;
}

/* ---------------------------------------------------------------- adopt */

static const char *
curve_name(enum kb_p11_curve c)
{
	switch (c) {
	case KB_P11_P256: return "P-256";
	case KB_P11_P384: return "P-384";
	case KB_P11_P521: return "P-521";
	default: return NULL;
	}
}

static unsigned
kv_ops_from_p11(enum kb_p11_key_type t, unsigned ops)
{
	unsigned k = 0;

	if (ops & KB_P11_OP_ENCRYPT)
		k |= KV_OP_ENCRYPT;
	if (ops & KB_P11_OP_DECRYPT)
		k |= KV_OP_DECRYPT;
	if (ops & KB_P11_OP_SIGN)
		k |= KV_OP_SIGN;
	if (ops & KB_P11_OP_VERIFY)
		k |= KV_OP_VERIFY;
	if (ops & KB_P11_OP_WRAP)
		k |= KV_OP_WRAP_KEY;
	if (ops & KB_P11_OP_UNWRAP)
		k |= KV_OP_UNWRAP_KEY;
	if (t == KB_P11_RSA && (ops & KB_P11_OP_ENCRYPT))
		k |= KV_OP_WRAP_KEY;
	if (t == KB_P11_RSA && (ops & KB_P11_OP_DECRYPT))
		k |= KV_OP_UNWRAP_KEY;
	return k;
}

int
agent_vault_adopt(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *uri, const char *name,
    struct kb_store_key **out)
{
	pthread_mutex_t *lk = name_lock(a, v, name);
	struct kb_p11_uri *u = NULL;
	struct kb_p11_key_attrs at;
	struct kb_store_new_version nv;
	struct kb_store_intent *in = NULL;
	struct kb_p11_token_info ti;
	unsigned char id[KV_VERSION_BYTES];
	kb_p11_key **keys = NULL;
	size_t n = 0;
	int r;

	memset(&at, 0, sizeof(at));
	memset(&nv, 0, sizeof(nv));
	if ((r = kv_check(KV_FIELD_KEY_NAME, name)) != 0)
		return r;
	if ((r = kb_p11_uri_parse(uri, &u)) != 0)
		return r;
	if (u->object == NULL && !u->has_id) {
		r = kb_error_set(KB_ERR_INVALID, "the URI must name an object "
		    "(object= and/or id=)");
		goto out;
	}
	/* Token parts, if given, must be this vault's token. */
	if ((r = kb_p11_token_get_info(vtoken(v), &ti)) != 0)
		goto out;
	if ((u->token != NULL && strcmp(u->token, ti.label) != 0) ||
	    (u->serial != NULL && strcmp(u->serial, ti.serial) != 0)) {
		r = kb_error_set(KB_ERR_NOT_FOUND, "the URI names another token "
		    "than vault %s's", v->cfg->name);
		goto out;
	}
	pthread_mutex_lock(lk);
	tw_lock(v);
	r = kb_p11_find_keys(vtoken(v), u, &keys, &n);
	tw_unlock(v);
	if (r != 0)
		goto unlock;
	if (n != 1) {
		r = n == 0 ? kb_error_set(KB_ERR_NOT_FOUND, "no key on vault %s's "
		    "token matches the URI", v->cfg->name) :
		    kb_error_set(KB_ERR_INVALID, "%zu keys match the URI; it must "
		    "name exactly one", n);
		goto unlock;
	}
	if ((r = kb_p11_key_get_attrs(keys[0], &at)) != 0)
		goto unlock;
	if (at.extractable || !at.sensitive) {
		r = kb_error_set(KB_ERR_INVALID, "the key is extractable or not "
		    "sensitive; only keys that cannot leave the token can join a "
		    "vault");
		goto unlock;
	}
	if (at.id_len == KV_VERSION_BYTES && at.label != NULL &&
	    kb_store_object_known(a->store, v->cfg->name, at.label, at.id) == 0) {
		r = kb_error_set(KB_ERR_CONFLICT, "the key already belongs to "
		    "vault %s", v->cfg->name);
		goto unlock;
	}
	switch (at.type) {
	case KB_P11_RSA:
		nv.kty = "RSA-HSM";
		nv.key_size = at.bits;
		break;
	case KB_P11_EC:
		nv.kty = "EC-HSM";
		nv.crv = curve_name(at.curve);
		break;
	case KB_P11_AES:
		nv.kty = "oct-HSM";
		nv.key_size = at.bits;
		break;
	default:
		r = kb_error_set(KB_ERR_UNSUPPORTED, "only RSA, EC and AES keys can "
		    "join a vault");
		goto unlock;
	}
	if ((r = kv_key_shape_check(nv.kty, nv.key_size, nv.crv)) != 0)
		goto unlock;
	nv.key_ops = kv_ops_from_p11(at.type, at.ops);
	nv.enabled = true;
	if (nv.key_ops == 0) {
		r = kb_error_set(KB_ERR_INVALID, "the key allows no operation on "
		    "the token (all usage flags are off)");
		goto unlock;
	}
	if ((r = new_version_id(v, &nv, id)) != 0)
		goto unlock;
	nv.audit_op = "adopt";
	nv.adopt_label = at.label != NULL ? at.label : "";
	nv.adopt_id = at.id;
	nv.adopt_id_len = at.id_len;
	if ((r = kb_store_intent_begin_create(a->store, who, v->cfg->name, name,
	    &nv, kb_now_unix(), &in)) != 0)
		goto unlock;
	inflight_add(a, in->id);
	tw_lock(v);
	r = kb_p11_key_set_label_id(keys[0], name, id, KV_VERSION_BYTES);
	tw_unlock(v);
	if (r != 0) {
		/* set_label_id put the public half back; the sweep undoes the
		 * rest if the abort cannot be recorded. */
		if (kb_store_intent_abort(a->store, in->id, kb_now_unix()) != 0)
			kb_warn("vault %s: the failed adoption of %s stays open",
			    v->cfg->name, name);
		goto unlock;
	}
	if ((r = kb_store_intent_commit(a->store, in->id, kb_now_unix(), out)) != 0) {
		/* Left open: at start the relabelled object rolls it forward. */
		goto unlock;
	}
	kb_info("vault %s: adopted a token key as %s version %s (uid %u)",
	    v->cfg->name, name, nv.version, (unsigned)who->uid);
 unlock:
	if (in != NULL)
		inflight_del(a, in->id);
	pthread_mutex_unlock(lk);
 out:
	kb_p11_key_attrs_clear(&at);
	kb_p11_keys_free(keys, n);
	kb_p11_uri_free(u);
	kb_store_intent_free(in);
	return r;
}

/* ------------------------------------------------- recovery and sweeps */

/*
 * A create intent of an adoption: give any object already relabelled its
 * old label and id back (never destroy a key the agent did not make).
 * 1 if the intent was an adoption and is undone, 0 if not an adoption.
 */
static int
adopt_undo(struct agent_vault *v, const struct kb_store_intent *in)
{
	const cJSON *lab, *idh;
	unsigned char *id = NULL;
	kb_p11_key **keys = NULL;
	size_t idlen = 0, n = 0, i;
	cJSON *o;
	int r;

	if ((o = cJSON_Parse(in->payload)) == NULL)
		return KB_ERR_ALLOC;
	lab = cJSON_GetObjectItemCaseSensitive(o, "adopt_label");
	idh = cJSON_GetObjectItemCaseSensitive(o, "adopt_id");
	if (!cJSON_IsString(lab) || !cJSON_IsString(idh)) {
		cJSON_Delete(o);
		return 0;
	}
	if ((r = kb_hex_decode(idh->valuestring, &id, &idlen)) != 0 ||
	    (r = find_objects(v, in->p11_label, in->p11_id, &keys, &n)) != 0)
		goto out;
	tw_lock(v);
	for (i = 0; i < n && r == 0; i++)
		r = kb_p11_key_set_label_id(keys[i], lab->valuestring, id, idlen);
	tw_unlock(v);
	if (r == 0)
		r = 1;
 out:
	kb_p11_keys_free(keys, n);
	free(id);
	cJSON_Delete(o);
	return r;
}

/* An open intent found at start or by the sweep. */
static int restore_undo(struct agent_vault *v, const char *label,
    unsigned char (*ids)[KV_VERSION_BYTES], size_t n);

/* A restore left open: all its objects made, or none kept. */
static int
resolve_restore(struct agent *a, struct agent_vault *v,
    const struct kb_store_intent *in)
{
	kb_p11_key **keys = NULL;
	size_t n = 0, i;
	bool all = true;
	int r;

	for (i = 0; i < in->n_restore && all; i++) {
		if ((r = find_objects(v, in->p11_label, in->restore_ids[i], &keys,
		    &n)) != 0)
			return r;
		all = n == 1 && kb_p11_key_is_complete(keys[0]);
		kb_p11_keys_free(keys, n);
		keys = NULL;
	}
	if (all) {
		kb_info("vault %s: completing the restore of %s", v->cfg->name,
		    in->name);
		return kb_store_intent_commit(a->store, in->id, kb_now_unix(), NULL);
	}
	kb_info("vault %s: rolling back the restore of %s", v->cfg->name, in->name);
	if ((r = restore_undo(v, in->p11_label, in->restore_ids,
	    in->n_restore)) != 0)
		return r;
	return kb_store_intent_abort(a->store, in->id, kb_now_unix());
}

static int
resolve_intent(struct agent *a, const struct kb_store_intent *in)
{
	struct agent_vault *v = agent_vault_find(a, in->vault);
	kb_p11_key **keys = NULL;
	size_t n = 0;
	int r;

	if (v == NULL) {
		kb_warn("an open %s intent for %s names vault %s, which the config "
		    "no longer declares; left as it is",
		    in->op == KB_STORE_OP_CREATE ? "create" : "purge", in->name,
		    in->vault);
		return 0;
	}
	if (in->op == KB_STORE_OP_PURGE) {
		kb_info("vault %s: finishing the purge of %s", v->cfg->name, in->name);
		return purge_finish(a, v, in);
	}
	if (in->n_restore > 0)
		return resolve_restore(a, v, in);
	if ((r = find_objects(v, in->p11_label, in->p11_id, &keys, &n)) != 0)
		return r;
	if (n == 1 && kb_p11_key_is_complete(keys[0])) {
		kb_p11_keys_free(keys, n);
		kb_info("vault %s: completing the creation of %s version %s",
		    v->cfg->name, in->name, in->version);
		return kb_store_intent_commit(a->store, in->id, kb_now_unix(), NULL);
	}
	kb_p11_keys_free(keys, n);
	kb_info("vault %s: rolling back the creation of %s version %s",
	    v->cfg->name, in->name, in->version);
	if ((r = adopt_undo(v, in)) == 1)
		r = 0;    /* an adopted object: its old names are back */
	else if (r == 0)
		r = destroy_objects(v, in->p11_label, in->p11_id);
	if (r != 0)
		return r;
	return kb_store_intent_abort(a->store, in->id, kb_now_unix());
}

static int
resolve_intents(struct agent *a, bool skip_inflight)
{
	struct kb_store_intent *ins = NULL;
	size_t n = 0, i;
	int r, first = 0;

	if ((r = kb_store_intents_open(a->store, &ins, &n)) != 0)
		return r;
	for (i = 0; i < n && !agent_start_cut_short(a); i++) {
		struct agent_vault *v = agent_vault_find(a, ins[i].vault);
		pthread_mutex_t *lk;

		if (v == NULL) {
			(void)resolve_intent(a, &ins[i]);
			continue;
		}
		lk = name_lock(a, v, ins[i].name);
		pthread_mutex_lock(lk);
		if (!skip_inflight || !inflight_has(a, ins[i].id))
			r = resolve_intent(a, &ins[i]);
		else
			r = 0;
		pthread_mutex_unlock(lk);
		if (r != 0) {
			kb_warn("cannot resolve the open intent for %s: %s",
			    ins[i].name, kb_error_detail(r));
			if (first == 0)
				first = r;
		}
	}
	kb_store_intents_free(ins, n);
	return first;
}

/* Every version of every soft-deleted key: usage flags off. */
static int
reconcile_deleted(struct agent *a, struct agent_vault *v)
{
	struct kb_store_key *items = NULL;
	char *after = NULL, *next = NULL;
	size_t n = 0, i;
	int r;

	do {
		if ((r = kb_store_list_deleted(a->store, v->cfg->name, after,
		    LIST_PAGE, &items, &n, &next)) != 0)
			break;
		for (i = 0; i < n && r == 0; i++) {
			pthread_mutex_t *lk = name_lock(a, v, items[i].name);

			pthread_mutex_lock(lk);
			r = key_flags(a, v, items[i].name, false);
			pthread_mutex_unlock(lk);
			if (r == KB_ERR_NOT_FOUND)
				r = 0;    /* purged meanwhile */
		}
		kb_store_keys_free(items, n);
		items = NULL;
		free(after);
		after = next;
		next = NULL;
	} while (r == 0 && after != NULL && !agent_start_cut_short(a));
	free(after);
	return r;
}

/* ------------------------------------------------ start-up verification */

struct tobj {
	const char *label;
	const unsigned char *id;
	bool complete;
	kb_p11_key *key;
};

static int
tobj_cmp(const void *x, const void *y)
{
	const struct tobj *a = x, *b = y;
	int c = strcmp(a->label, b->label);

	return c != 0 ? c : memcmp(a->id, b->id, KV_VERSION_BYTES);
}

/* One version looked up alone (when the whole listing failed). */
static bool
fallback_find(struct agent_vault *v, const struct kb_store_object *o,
    struct tobj *t)
{
	kb_p11_key **keys = NULL;
	size_t n = 0;

	memset(t, 0, sizeof(*t));
	if (find_objects(v, o->p11_label, o->p11_id, &keys, &n) != 0 || n == 0) {
		kb_p11_keys_free(keys, n);
		return false;
	}
	t->complete = n == 1 && kb_p11_key_is_complete(keys[0]);
	t->key = keys[0];
	keys[0] = NULL;
	kb_p11_keys_free(keys, n);
	return true;
}

/* Usage flags as the store says: key_ops if active, none if deleted. */
static void
fix_flags(struct agent_vault *v, kb_p11_key *k, const char *name,
    const struct kb_store_object *o, bool deleted)
{
	struct kb_p11_key_attrs at;
	unsigned want = deleted ? 0 : agent_p11_ops(o->kty, o->key_ops);
	int r;

	memset(&at, 0, sizeof(at));
	if (kb_p11_key_get_attrs(k, &at) != 0)
		return;
	if (at.ops != want) {
		tw_lock(v);
		r = kb_p11_key_set_ops(k, want);
		tw_unlock(v);
		if (r != 0)
			kb_warn("vault %s: cannot put the usage flags of %s version %s "
			    "in line with the store: %s", v->cfg->name, name,
			    o->version, kb_error_detail(r));
		else
			kb_info("vault %s: usage flags of %s version %s put back in "
			    "line with the store", v->cfg->name, name, o->version);
	}
	kb_p11_key_attrs_clear(&at);
}

/* Check every version of the keys of one listing against the token. */
static size_t
verify_listing(struct agent *a, struct agent_vault *v, struct tobj *objs,
    size_t nobj, bool deleted)
{
	struct kb_store_key *items = NULL;
	struct kb_store_object *vers = NULL;
	char *after = NULL, *next = NULL;
	size_t n = 0, nv = 0, i, j, bad = 0;
	struct tobj key, *hit, hit_buf;
	int r;

	do {
		r = deleted ? kb_store_list_deleted(a->store, v->cfg->name, after,
		    LIST_PAGE, &items, &n, &next) :
		    kb_store_list_keys(a->store, v->cfg->name, after, LIST_PAGE,
		    &items, &n, &next);
		if (r != 0)
			break;
		for (i = 0; i < n; i++) {
			if (kb_store_key_objects(a->store, v->cfg->name, items[i].name,
			    &vers, &nv) != 0)
				continue;
			for (j = 0; j < nv; j++) {
				key.label = vers[j].p11_label;
				key.id = vers[j].p11_id;
				hit = objs != NULL ? bsearch(&key, objs, nobj,
				    sizeof(*objs), tobj_cmp) : NULL;
				if (objs == NULL && fallback_find(v, &vers[j], &hit_buf))
					hit = &hit_buf;
				/* Half a key pair too: what is left of a version
				 * is no more usable than the store says. */
				if (hit != NULL)
					fix_flags(v, hit->key, items[i].name, &vers[j], deleted);
				if (objs == NULL && hit == &hit_buf)
					kb_p11_key_free(hit_buf.key);
				if (hit == NULL || !hit->complete) {
					kb_error("vault %s: key %s version %s has no "
					    "object on the token%s; its key material is lost",
					    v->cfg->name, items[i].name, vers[j].version,
					    hit != NULL ? " (only half of its key pair)" : "");
					bad++;
				}
			}
			free(vers);
			vers = NULL;
		}
		kb_store_keys_free(items, n);
		items = NULL;
		free(after);
		after = next;
		next = NULL;
	} while (after != NULL && !agent_start_cut_short(a));
	free(after);
	return bad;
}

/*
 * At start: every version the store knows has its object on the token,
 * and no object with a 16-byte id and the name of a vault key is unknown
 * to the store.  Reported, not repaired: key material cannot be made up,
 * and an unknown object might be another application's.
 */
static void
verify_objects(struct agent *a, struct agent_vault *v)
{
	kb_p11_key **keys = NULL;
	struct tobj *objs = NULL;
	size_t n = 0, i, nobj = 0, idlen, bad;
	const unsigned char *id;
	const char *label;
	int r;

	tw_lock(v);
	r = kb_p11_find_keys(vtoken(v), NULL, &keys, &n);
	tw_unlock(v);
	if (r != 0) {
		/* One unreadable object (a torn write) fails the whole listing:
		 * then look every version up alone. */
		kb_warn("vault %s: cannot list the token's objects (%s); checking "
		    "each version alone", v->cfg->name, kb_error_detail(r));
		keys = NULL;
		n = 0;
		goto check;
	}
	if ((objs = calloc(n + 1, sizeof(*objs))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		label = kb_p11_key_label(keys[i]);
		id = kb_p11_key_id(keys[i], &idlen);
		if (label == NULL || id == NULL || idlen != KV_VERSION_BYTES)
			continue;
		objs[nobj].label = label;
		objs[nobj].id = id;
		objs[nobj].complete = kb_p11_key_is_complete(keys[i]);
		objs[nobj].key = keys[i];
		nobj++;
		if (kv_check(KV_FIELD_KEY_NAME, label) == 0 &&
		    kb_store_object_known(a->store, v->cfg->name, label, id) ==
		    KB_ERR_NOT_FOUND) {
			struct kb_store_key *k = NULL;

			/* Only names of this vault's keys: others are not ours. */
			if (kb_store_get_key(a->store, v->cfg->name, label, NULL,
			    &k) == 0 || kb_store_get_deleted(a->store, v->cfg->name,
			    label, &k) == 0)
				kb_warn("vault %s: the token holds an object labelled %s "
				    "that is no version of that key; left untouched",
				    v->cfg->name, label);
			kb_store_key_free(k);
		}
	}
	qsort(objs, nobj, sizeof(*objs), tobj_cmp);
 check:
	bad = verify_listing(a, v, objs, nobj, false) +
	    verify_listing(a, v, objs, nobj, true);
	if (bad > 0)
		kb_error("vault %s: %zu version%s without key material; purge "
		    "or restore them", v->cfg->name, bad, bad == 1 ? "" : "s");
 out:
	free(objs);
	kb_p11_keys_free(keys, n);
}

static int
purge_due(struct agent *a)
{
	static const struct kb_store_actor sys = { .uid = 0, .role = "system" };
	struct kb_store_actor who = sys;
	struct kb_store_due *due = NULL;
	size_t n = 0, i;
	int r, first = 0;

	who.uid = (uint32_t)a->uid;
	do {
		if ((r = kb_store_due_for_purge(a->store, kb_now_unix(), 100, &due,
		    &n)) != 0)
			return r;
		for (i = 0; i < n; i++) {
			struct agent_vault *v = agent_vault_find(a, due[i].vault);

			if (v == NULL)
				continue;
			if ((r = agent_vault_purge(a, v, &who, due[i].name)) != 0 &&
			    r != KB_ERR_NOT_FOUND) {
				kb_warn("vault %s: scheduled purge of %s failed: %s",
				    v->cfg->name, due[i].name, kb_error_detail(r));
				if (first == 0)
					first = r;
			}
		}
		free(due);
		due = NULL;
		/* A batch that failed entirely would repeat forever. */
	} while (n == 100 && first == 0 && !agent_start_cut_short(a));
	return first;
}

int
agent_vaults_sweep(struct agent *a)
{
	size_t i;
	int r, first;

	first = resolve_intents(a, true);
	for (i = 0; i < a->n_vaults; i++)
		if ((r = reconcile_deleted(a, &a->vaults[i])) != 0 && first == 0)
			first = r;
	if ((r = purge_due(a)) != 0 && first == 0)
		first = r;
	return first;
}

int
agent_vaults_open(struct agent *a)
{
	struct kb_store_actor who = { .uid = (uint32_t)a->uid, .role = "system" };
	const struct agent_vault_cfg *vc;
	char *path = NULL;
	size_t i, n;
	int r;

	if ((a->keycache = calloc(1, sizeof(*a->keycache))) == NULL ||
	    (a->inflight = calloc(1, sizeof(*a->inflight))) == NULL)
		return KB_ERR_ALLOC;
	pthread_mutex_init(&a->keycache->mu, NULL);
	pthread_mutex_init(&a->inflight->mu, NULL);
	pthread_cond_init(&a->inflight->wake, NULL);
	for (i = 0; i < NAME_STRIPES; i++)
		pthread_mutex_init(&a->inflight->stripes[i], NULL);
	if ((a->vaults = calloc(a->cfg->n_vaults, sizeof(*a->vaults))) == NULL)
		return KB_ERR_ALLOC;
	a->n_vaults = a->cfg->n_vaults;
	for (i = 0; i < a->n_vaults; i++) {
		vc = &a->cfg->vaults[i];
		a->vaults[i].cfg = vc;
		a->vaults[i].index = i;
		a->vaults[i].tok = &a->tokens[vc->token_index];
		pthread_mutex_init(&a->vaults[i].tokwrite, NULL);
	}
	n = strlen(a->cfg->state_dir) + sizeof("/vaults.db");
	if ((path = malloc(n)) == NULL)
		return KB_ERR_ALLOC;
	snprintf(path, n, "%s/vaults.db", a->cfg->state_dir);
	r = kb_store_open(path, &a->store);
	free(path);
	if (r != 0)
		return r;
	for (i = 0; i < a->n_vaults; i++) {
		vc = a->vaults[i].cfg;
		if ((r = kb_store_vault_ensure(a->store, &who, vc->name,
		    vc->retention_days, vc->purge_protection, kb_now_unix())) != 0) {
			char where[1024];

			return kb_error_set(KB_ERR_CONFIG, "%s: [vault %s]: %s",
			    agent_where(a->cfg, vc->line, where, sizeof(where)),
			    vc->name, kb_error_detail(r));
		}
	}
	/*
	 * Before serving: nothing is in flight, every open intent is a
	 * crash's.  Each step may be cut short by a signal between two
	 * keys: what is done is consistent, the rest waits for the next
	 * start.
	 */
	if ((r = resolve_intents(a, false)) != 0)
		return r;
	for (i = 0; i < a->n_vaults && !agent_start_cut_short(a); i++)
		if ((r = reconcile_deleted(a, &a->vaults[i])) != 0)
			return r;
	for (i = 0; i < a->n_vaults && !agent_start_cut_short(a); i++)
		verify_objects(a, &a->vaults[i]);
	if (a->cut_short)
		return 0;
	if ((r = purge_due(a)) != 0)
		kb_warn("some scheduled purges failed; the agent retries them");
	return 0;
}

static void *
sweeper(void *arg)
{
	struct agent *a = arg;
	struct agent_inflight *f = a->inflight;
	struct timespec until;
	int r;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += a->cfg->purge_interval;
		while (!f->stop &&
		    pthread_cond_timedwait(&f->wake, &f->mu, &until) != ETIMEDOUT)
			;
		if (f->stop)
			break;
		pthread_mutex_unlock(&f->mu);
		if ((r = agent_vaults_sweep(a)) != 0)
			kb_warn("vault sweep: %s", kb_error_detail(r));
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int
agent_sweeper_start(struct agent *a)
{
	if (pthread_create(&a->inflight->thread, NULL, sweeper, a) != 0)
		return kb_error_set(KB_ERR_INTERNAL, "cannot start the purge thread");
	a->sweeper_running = true;
	return 0;
}

void
agent_sweeper_stop(struct agent *a)
{
	if (!a->sweeper_running)
		return;
	pthread_mutex_lock(&a->inflight->mu);
	a->inflight->stop = true;
	pthread_cond_signal(&a->inflight->wake);
	pthread_mutex_unlock(&a->inflight->mu);
	pthread_join(a->inflight->thread, NULL);
	a->sweeper_running = false;
}

void
agent_vaults_close(struct agent *a)
{
	size_t i;

	agent_sweeper_stop(a);
	if (a->keycache != NULL) {
		for (i = 0; i < KEYCACHE_SLOTS; i++)
			keyref_free(a->keycache->slot[i]);
		pthread_mutex_destroy(&a->keycache->mu);
		free(a->keycache);
		a->keycache = NULL;
	}
	if (a->inflight != NULL) {
		for (i = 0; i < NAME_STRIPES; i++)
			pthread_mutex_destroy(&a->inflight->stripes[i]);

		pthread_mutex_destroy(&a->inflight->mu);
		pthread_cond_destroy(&a->inflight->wake);
		free(a->inflight);
		a->inflight = NULL;
	}
	kb_store_close(a->store);
	a->store = NULL;
	for (i = 0; i < a->n_vaults; i++)
		pthread_mutex_destroy(&a->vaults[i].tokwrite);
	free(a->vaults);
	a->vaults = NULL;
	a->n_vaults = 0;
}

/* ------------------------------------------------------ backup, restore */

/*
 * A backup (docs/backup.md) is "KBB1" || IV (12) || GCM tag (16) || the
 * AES-256-GCM encryption, under the token's sealing key, of a JSON
 * document: the key's name and every version's metadata, public half
 * and secret half wrapped under the token's trusted wrapping key.  The
 * magic is the GCM additional data.
 */
#define BACKUP_MAGIC "KBB1"
#define BACKUP_HDR (4 + 12 + 16)
#define BACKUP_FORMAT "keybridge-key-backup"
/* Base64url of the blob plus the request's JSON stays under AGENT_MAX_BODY. */
#define BACKUP_MAX ((AGENT_MAX_BODY - 1024) / 4 * 3)
#define BACKUP_VERSIONS_MAX 1000

static int
backup_keys(struct agent_vault *v, kb_p11_key **wrap, kb_p11_key **seal)
{
	int r;

	tw_lock(v);
	r = kb_p11_backup_keys_find(vtoken(v), wrap, seal);
	tw_unlock(v);
	if (r == KB_ERR_NOT_FOUND)
		r = kb_error_set(KB_ERR_CONFLICT, "the vault %s cannot make or "
		    "open backups: its token has no backup keys (%s); see "
		    "docs/backup.md, keybridge token backup-keys",
		    v->cfg->name, kb_error_detail(r));
	return r;
}

static int
add_b64(cJSON *o, const char *k, const unsigned char *p, size_t n)
{
	char *s = kb_b64url_encode(p, n);
	int r = 0;

	if (s == NULL || cJSON_AddStringToObject(o, k, s) == NULL)
		r = KB_ERR_ALLOC;
	free(s);
	return r;
}

/* One version into the backup document: the store's shape, plus keys. */
static int
backup_version(struct agent *a, struct agent_vault *v, kb_p11_key *wrap,
    const struct kb_store_key *k, cJSON *arr)
{
	struct kb_store_new_version nv;
	struct agent_keyref *ref = NULL;
	unsigned char *w = NULL;
	size_t wl = 0;
	const char *jwk;
	cJSON *o = NULL, *pub = NULL;
	int r;

	memset(&nv, 0, sizeof(nv));
	memcpy(nv.version, k->version, sizeof(nv.version));
	nv.kty = k->kty;
	nv.key_size = k->key_size;
	nv.crv = k->crv[0] != '\0' ? k->crv : NULL;
	nv.key_ops = k->key_ops;
	nv.enabled = k->enabled;
	nv.exportable = k->exportable;
	nv.has_nbf = k->has_nbf;
	nv.nbf = k->nbf;
	nv.has_exp = k->has_exp;
	nv.exp = k->exp;
	nv.created = k->created;
	nv.updated = k->updated;
	nv.tags_json = k->tags_json;
	if ((r = kb_store_version_to_json(&nv, &o)) != 0)
		return r;
	cJSON_AddItemToArray(arr, o);
	if ((r = agent_vault_key(a, v, k, &ref)) != 0)
		goto out;
	if ((r = kb_p11_backup_wrap(wrap, agent_keyref_key(ref), &w, &wl)) != 0) {
		if (r == KB_ERR_DENIED)
			r = kb_error_set(KB_ERR_CONFLICT, "version %s of key %s "
			    "cannot leave the token: it was made before backups "
			    "were possible, or in a vault with backup = false",
			    k->version, k->name);
		goto out;
	}
	if ((r = add_b64(o, "wrapped", w, wl)) != 0)
		goto out;
	if (kb_p11_key_type(agent_keyref_key(ref)) != KB_P11_AES) {
		if ((r = agent_keyref_public_jwk(a, ref, &jwk)) != 0)
			goto out;
		if ((pub = cJSON_Parse(jwk)) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		cJSON_AddItemToObject(o, "pub", pub);
	}
 out:
	agent_keyref_put(a, ref);
	free(w);
	return r;
}

/* Every version of an active key, the latest last. */
static int
backup_versions(struct agent *a, struct agent_vault *v, const char *name,
    struct kb_store_key **out, size_t *nout)
{
	struct kb_store_key *all = NULL, *page = NULL, *latest = NULL, *tmp;
	char *next = NULL, *after = NULL;
	size_t n = 0, np = 0, i;
	int r;

	if ((r = kb_store_get_key(a->store, v->cfg->name, name, NULL, &latest)) != 0)
		return r;
	do {
		free(after);
		after = next;
		next = NULL;
		if ((r = kb_store_list_versions(a->store, v->cfg->name, name, after,
		    25, &page, &np, &next)) != 0)
			goto out;
		if (n + np > BACKUP_VERSIONS_MAX) {
			r = kb_error_set(KB_ERR_LIMIT, "the key %s has more than %d "
			    "versions, too many for one backup", name,
			    BACKUP_VERSIONS_MAX);
			goto out;
		}
		if ((tmp = realloc(all, (n + np + 1) * sizeof(*all))) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		all = tmp;
		for (i = 0; i < np; i++) {
			if (strcmp(page[i].version, latest->version) == 0) {
				free(page[i].tags_json);
				continue;
			}
			all[n++] = page[i];
		}
		free(page);    /* its tags moved to all */
		page = NULL;
		np = 0;
	} while (next != NULL);
	/* Oldest first by creation (ties keep the listing's order), the
	 * latest last: restore makes them in this order. */
	for (i = 1; i < n; i++) {
		struct kb_store_key x = all[i];
		size_t j = i;

		while (j > 0 && all[j - 1].created > x.created) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = x;
	}
	if (all == NULL && (all = malloc(sizeof(*all))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	all[n] = *latest;
	latest->tags_json = NULL;
	latest->public_jwk = NULL;
	n++;
	*out = all;
	*nout = n;
	all = NULL;
	n = 0;
 out:
	kb_store_keys_free(all, n);
	kb_store_keys_free(page, np);
	kb_store_key_free(latest);
	free(after);
	free(next);
	return r;
}

int
agent_vault_backup(struct agent *a, struct agent_vault *v, const char *name,
    char **out)
{
	struct kb_store_key *ks = NULL;
	kb_p11_key *wrap = NULL, *seal = NULL;
	unsigned char iv[12], tag[16], *ct = NULL, *blob = NULL;
	size_t n = 0, i, cl = 0, tl;
	cJSON *doc = NULL, *arr;
	char *text = NULL;
	int r;

	if ((r = backup_versions(a, v, name, &ks, &n)) != 0 ||
	    (r = backup_keys(v, &wrap, &seal)) != 0)
		goto out;
	if ((doc = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(doc, "format", BACKUP_FORMAT) == NULL ||
	    cJSON_AddNumberToObject(doc, "v", 1) == NULL ||
	    cJSON_AddStringToObject(doc, "name", ks[0].name) == NULL ||
	    (arr = cJSON_AddArrayToObject(doc, "versions")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = backup_version(a, v, wrap, &ks[i], arr)) != 0)
			goto out;
	if ((text = cJSON_PrintUnformatted(doc)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	tl = strlen(text);
	if (tl + BACKUP_HDR > BACKUP_MAX) {
		r = kb_error_set(KB_ERR_LIMIT, "the backup of %s would have %zu "
		    "bytes, more than a restore request can carry", name,
		    tl + BACKUP_HDR);
		goto out;
	}
	if ((r = kb_p11_random(vtoken(v), iv, sizeof(iv))) != 0 ||
	    (r = kb_p11_aes_gcm_encrypt(seal, iv, sizeof(iv),
	    (const unsigned char *)BACKUP_MAGIC, 4, (const unsigned char *)text,
	    tl, &ct, &cl, tag)) != 0)
		goto out;
	if ((blob = malloc(BACKUP_HDR + cl)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	memcpy(blob, BACKUP_MAGIC, 4);
	memcpy(blob + 4, iv, 12);
	memcpy(blob + 16, tag, 16);
	memcpy(blob + BACKUP_HDR, ct, cl);
	if ((*out = kb_b64url_encode(blob, BACKUP_HDR + cl)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	r = 0;
 out:
	kb_store_keys_free(ks, n);
	kb_p11_key_free(wrap);
	kb_p11_key_free(seal);
	cJSON_Delete(doc);
	free(text);
	free(ct);
	free(blob);
	return r;
}

/* A base64url string member of o into a new buffer. */
static int
doc_bytes(const cJSON *o, const char *k, unsigned char **out, size_t *len)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsString(s) || kb_b64url_decode(s->valuestring,
	    strlen(s->valuestring), out, len) != 0)
		return kb_error_set(KB_ERR_INVALID, "the backup's %s is missing "
		    "or not base64url", k);
	return 0;
}

/* The token object of one restored version. */
static int
restore_object(struct agent_vault *v, kb_p11_key *wrap, const char *name,
    const struct kb_store_new_version *nv, const cJSON *e)
{
	struct kb_p11_keyspec spec;
	unsigned char id[KV_VERSION_BYTES], *w = NULL, *pa = NULL, *pb = NULL;
	size_t wl = 0, la = 0, lb = 0;
	const cJSON *pub;
	kb_p11_key *k = NULL;
	int r;

	if ((r = p11_spec(nv->kty, nv->key_size, nv->crv, &spec)) != 0)
		return r;
	{
		unsigned char *raw = NULL;
		size_t rl = 0;

		if (kb_hex_decode(nv->version, &raw, &rl) != 0 ||
		    rl != KV_VERSION_BYTES) {
			free(raw);
			return kb_error_set(KB_ERR_INVALID, "the backup has a bad "
			    "version id");
		}
		memcpy(id, raw, KV_VERSION_BYTES);
		free(raw);
	}
	spec.label = name;
	spec.id = id;
	spec.id_len = KV_VERSION_BYTES;
	spec.ops = agent_p11_ops(nv->kty, nv->key_ops);
	spec.backup = true;
	if ((r = doc_bytes(e, "wrapped", &w, &wl)) != 0)
		goto out;
	pub = cJSON_GetObjectItemCaseSensitive(e, "pub");
	if (spec.type == KB_P11_RSA &&
	    ((r = doc_bytes(pub, "n", &pa, &la)) != 0 ||
	    (r = doc_bytes(pub, "e", &pb, &lb)) != 0))
		goto out;
	if (spec.type == KB_P11_EC &&
	    ((r = doc_bytes(pub, "x", &pa, &la)) != 0 ||
	    (r = doc_bytes(pub, "y", &pb, &lb)) != 0))
		goto out;
	tw_lock(v);
	r = kb_p11_backup_unwrap(wrap, w, wl, &spec, pa, la, pb, lb, &k);
	tw_unlock(v);
 out:
	kb_p11_key_free(k);
	free(w);
	free(pa);
	free(pb);
	return r;
}

/* Remove what a restore made (none is fine); 0 when all are gone. */
static int
restore_undo(struct agent_vault *v, const char *label,
    unsigned char (*ids)[KV_VERSION_BYTES], size_t n)
{
	size_t i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++)
		r = destroy_objects(v, label, ids[i]);
	return r;
}

int
agent_vault_restore(struct agent *a, struct agent_vault *v,
    const struct kb_store_actor *who, const char *value,
    struct kb_store_key **out)
{
	struct kb_store_new_version *nvs = NULL;
	struct kb_store_intent *in = NULL;
	kb_p11_key *wrap = NULL, *seal = NULL;
	unsigned char *blob = NULL, *pt = NULL;
	size_t bl = 0, pl = 0, n = 0, i, made = 0;
	char **tags = NULL;
	const cJSON *name, *arr, *e, *fmt, *ver;
	cJSON *doc = NULL;
	pthread_mutex_t *lk = NULL;
	int r, r2;

	if (value == NULL || strlen(value) > AGENT_MAX_BODY ||
	    kb_b64url_decode(value, strlen(value), &blob, &bl) != 0 ||
	    bl <= BACKUP_HDR || memcmp(blob, BACKUP_MAGIC, 4) != 0) {
		r = kb_error_set(KB_ERR_INVALID, "the value is not a keybridge "
		    "key backup");
		goto out;
	}
	if ((r = backup_keys(v, &wrap, &seal)) != 0)
		goto out;
	if ((r = kb_p11_aes_gcm_decrypt(seal, blob + 4, 12,
	    (const unsigned char *)BACKUP_MAGIC, 4, blob + BACKUP_HDR,
	    bl - BACKUP_HDR, blob + 16, &pt, &pl)) != 0) {
		if (r == KB_ERR_CRYPTO)
			r = kb_error_set(KB_ERR_INVALID, "the backup does not open "
			    "in vault %s: it is damaged, or its token does not "
			    "share the backup keys of the vault that made it",
			    v->cfg->name);
		goto out;
	}
	if ((doc = cJSON_ParseWithLength((const char *)pt, pl)) == NULL ||
	    !cJSON_IsString(fmt = cJSON_GetObjectItemCaseSensitive(doc, "format")) ||
	    strcmp(fmt->valuestring, BACKUP_FORMAT) != 0 ||
	    !cJSON_IsNumber(ver = cJSON_GetObjectItemCaseSensitive(doc, "v")) ||
	    ver->valuedouble != 1 ||
	    !cJSON_IsString(name = cJSON_GetObjectItemCaseSensitive(doc, "name")) ||
	    !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(doc, "versions")) ||
	    (n = (size_t)cJSON_GetArraySize(arr)) == 0 || n > BACKUP_VERSIONS_MAX) {
		r = kb_error_set(KB_ERR_INVALID, "the backup's contents are not "
		    "a key backup this agent knows");
		n = 0;
		goto out;
	}
	if ((nvs = calloc(n, sizeof(*nvs))) == NULL ||
	    (tags = calloc(n, sizeof(*tags))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	i = 0;
	cJSON_ArrayForEach(e, arr) {
		if ((r = kb_store_version_from_json(e, &nvs[i], &tags[i])) != 0) {
			if (r == KB_ERR_INVALID)
				r = kb_error_set(KB_ERR_INVALID, "the backup has a "
				    "malformed version: %s", kb_error_detail(r));
			goto out;
		}
		nvs[i].tags_json = tags[i];
		nvs[i].audit_op = "restore";
		i++;
	}
	lk = name_lock(a, v, name->valuestring);
	pthread_mutex_lock(lk);
	if ((r = kb_store_intent_begin_restore(a->store, who, v->cfg->name,
	    name->valuestring, nvs, n, kb_now_unix(), &in)) != 0)
		goto out;
	inflight_add(a, in->id);
	i = 0;
	cJSON_ArrayForEach(e, arr) {
		if ((r = restore_object(v, wrap, in->p11_label, &nvs[i], e)) != 0)
			break;
		i++;
		made = i;
	}
	if (r == 0 && (r = kb_store_intent_commit(a->store, in->id,
	    kb_now_unix(), out)) != 0)
		kb_warn("cannot record the restore of %s: %s", in->name,
		    kb_error_detail(r));
	if (r != 0) {
		r2 = r;
		if (restore_undo(v, in->p11_label, in->restore_ids,
		    in->n_restore) == 0 &&
		    kb_store_intent_abort(a->store, in->id, kb_now_unix()) != 0)
			kb_warn("cannot close the restore intent of %s", in->name);
		if (r2 == KB_ERR_CRYPTO || r2 == KB_ERR_INVALID)
			r2 = kb_error_set(KB_ERR_INVALID, "the backup's version %s "
			    "of %s does not unwrap on this token: %s",
			    made < n ? nvs[made].version : "?", in->name,
			    kb_error_detail(r2));
		r = r2;
		goto out;
	}
	kb_info("vault %s: restored %s, %zu version%s (uid %u)", v->cfg->name,
	    in->name, n, n == 1 ? "" : "s", (unsigned)who->uid);
 out:
	if (in != NULL)
		inflight_del(a, in->id);
	if (lk != NULL)
		pthread_mutex_unlock(lk);
	kb_store_intent_free(in);
	if (tags != NULL)
		for (i = 0; i < n; i++)
			free(tags[i]);
	free(tags);
	free(nvs);
	cJSON_Delete(doc);
	if (pt != NULL)
		kb_wipe(pt, pl);
	free(pt);
	free(blob);
	kb_p11_key_free(wrap);
	kb_p11_key_free(seal);
	return r;
}
