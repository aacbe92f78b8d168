/*
 * key.c: generating, importing, finding, describing, changing and
 * destroying keys on a token.
 *
 * New keys are private token objects with CKA_SENSITIVE=true and
 * CKA_EXTRACTABLE=false unless asked; usage flags come from the requested
 * key operations and every flag is set explicitly (a token's defaults are
 * not ours to trust).  A key pair is one kb_p11_key: the two objects share
 * CKA_ID (and CKA_LABEL), as pkcs11-tool and p11tool expect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define LABEL_MAX 1024
#define ID_MAX 256

static const unsigned allowed_ops[] = {
	[KB_P11_AES] = KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_WRAP | KB_P11_OP_UNWRAP,
	[KB_P11_RSA] = KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_SIGN |
	    KB_P11_OP_VERIFY | KB_P11_OP_WRAP | KB_P11_OP_UNWRAP,
	[KB_P11_EC] = KB_P11_OP_SIGN | KB_P11_OP_VERIFY | KB_P11_OP_DERIVE,
	[KB_P11_GENERIC_SECRET] = KB_P11_OP_SIGN | KB_P11_OP_VERIFY | KB_P11_OP_DERIVE,
};
static const unsigned default_ops[] = {
	[KB_P11_AES] = KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_WRAP | KB_P11_OP_UNWRAP,
	[KB_P11_RSA] = KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT | KB_P11_OP_SIGN |
	    KB_P11_OP_VERIFY | KB_P11_OP_WRAP | KB_P11_OP_UNWRAP,
	[KB_P11_EC] = KB_P11_OP_SIGN | KB_P11_OP_VERIFY,
	[KB_P11_GENERIC_SECRET] = KB_P11_OP_SIGN | KB_P11_OP_VERIFY,
};

/* Usage flag <-> attribute, and which half of a pair carries it. */
static const struct {
	unsigned op;
	CK_ATTRIBUTE_TYPE attr;
	bool on_public;
} op_attrs[] = {
	{ KB_P11_OP_ENCRYPT, CKA_ENCRYPT, true },
	{ KB_P11_OP_DECRYPT, CKA_DECRYPT, false },
	{ KB_P11_OP_SIGN, CKA_SIGN, false },
	{ KB_P11_OP_VERIFY, CKA_VERIFY, true },
	{ KB_P11_OP_WRAP, CKA_WRAP, true },
	{ KB_P11_OP_UNWRAP, CKA_UNWRAP, false },
	{ KB_P11_OP_DERIVE, CKA_DERIVE, false },
};
#define N_OPS (sizeof(op_attrs) / sizeof(op_attrs[0]))

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

const char *
kb_p11_key_type_name(enum kb_p11_key_type t)
{
	switch (t) {
	case KB_P11_AES: return "AES";
	case KB_P11_RSA: return "RSA";
	case KB_P11_EC: return "EC";
	case KB_P11_GENERIC_SECRET: return "generic secret";
	}
	return "unknown";
}

struct tmpl {
	CK_ATTRIBUTE a[32];
	CK_ULONG n;
};

static void
tadd(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t len)
{
	t->a[t->n].type = type;
	t->a[t->n].pValue = (void *)p;
	t->a[t->n].ulValueLen = len;
	t->n++;
}

static void
tbool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, bool v)
{
	tadd(t, type, v ? &ck_true : &ck_false, sizeof(CK_BBOOL));
}

/* Usage flags for one object; pub: which half (secret keys: both sets). */
static void
tops(struct tmpl *t, enum kb_p11_key_type type, unsigned ops, int half)
{
	size_t i;

	/* Every flag explicit: tokens' defaults differ (SoftHSM: CKA_SIGN true). */
	for (i = 0; i < N_OPS; i++) {
		if (half == 1 && !op_attrs[i].on_public)
			continue;
		if (half == 0 && op_attrs[i].on_public)
			continue;
		tbool(t, op_attrs[i].attr, (ops & allowed_ops[type] & op_attrs[i].op) != 0);
	}
}

static int
check_spec(const struct kb_p11_keyspec *spec, unsigned *ops, bool generate)
{
	if (spec == NULL || spec->type < KB_P11_AES || spec->type > KB_P11_GENERIC_SECRET)
		return kb_error_set(KB_ERR_INVALID, "unknown key type");
	if (spec->label == NULL || strlen(spec->label) > LABEL_MAX)
		return kb_error_set(KB_ERR_INVALID, "a key needs a label of at most %d bytes",
		    LABEL_MAX);
	if (spec->id == NULL || spec->id_len == 0 || spec->id_len > ID_MAX)
		return kb_error_set(KB_ERR_INVALID, "a key needs an id of 1 to %d bytes",
		    ID_MAX);
	*ops = spec->ops ? spec->ops : default_ops[spec->type];
	if (*ops & ~allowed_ops[spec->type])
		return kb_error_set(KB_ERR_INVALID, "%s keys do not allow some of the "
		    "requested key operations", kb_p11_key_type_name(spec->type));
	if (!generate)
		return 0;
	switch (spec->type) {
	case KB_P11_AES:
		if (spec->bits != 128 && spec->bits != 192 && spec->bits != 256)
			return kb_error_set(KB_ERR_INVALID, "AES keys have 128, 192 or 256 bits");
		break;
	case KB_P11_RSA:
		if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096)
			return kb_error_set(KB_ERR_INVALID, "RSA keys have 2048, 3072 or "
			    "4096 bits");
		break;
	case KB_P11_EC:
		if (spec->curve < KB_P11_P256 || spec->curve > KB_P11_P521)
			return kb_error_set(KB_ERR_INVALID, "EC keys use P-256, P-384 or P-521");
		break;
	case KB_P11_GENERIC_SECRET:
		if (spec->bits < 128 || spec->bits > 4096 || spec->bits % 8)
			return kb_error_set(KB_ERR_INVALID, "generic secrets have 128 to "
			    "4096 bits, a multiple of 8");
		break;
	}
	return 0;
}

static int
key_new(kb_p11_token *t, enum kb_p11_key_type type, unsigned bits,
    enum kb_p11_curve curve, const char *label, const unsigned char *id,
    size_t id_len, kb_p11_key **out)
{
	kb_p11_key *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return KB_ERR_ALLOC;
	k->t = t;
	k->type = type;
	k->bits = bits;
	k->curve = curve;
	if ((k->label = kb_strdup(label ? label : "")) == NULL ||
	    (k->id = malloc(id_len ? id_len : 1)) == NULL) {
		kb_p11_key_free(k);
		return KB_ERR_ALLOC;
	}
	if (id_len)
		memcpy(k->id, id, id_len);
	k->id_len = id_len;
	*out = k;
	return 0;
}

struct gen_ctx {
	CK_MECHANISM mech;
	struct tmpl pub, priv;
	bool pair;
	CK_OBJECT_HANDLE hpub, hpriv;
};

static int
gen_fn(struct p11s *s, void *arg)
{
	struct gen_ctx *c = arg;

	if (c->pair)
		return p11c_generate_key_pair(s, &c->mech, c->pub.a, c->pub.n,
		    c->priv.a, c->priv.n, &c->hpub, &c->hpriv);
	return p11c_generate_key(s, &c->mech, c->priv.a, c->priv.n, &c->hpriv);
}

static void
common_attrs(struct tmpl *t, const struct kb_p11_keyspec *spec, bool priv)
{
	tbool(t, CKA_TOKEN, spec->token);
	tbool(t, CKA_PRIVATE, priv);
	tadd(t, CKA_LABEL, spec->label, strlen(spec->label));
	tadd(t, CKA_ID, spec->id, spec->id_len);
	if (priv) {
		tbool(t, CKA_SENSITIVE, true);
		tbool(t, CKA_EXTRACTABLE, spec->extractable || spec->backup);
		if (spec->backup)
			tbool(t, CKA_WRAP_WITH_TRUSTED, true);
	}
}

int
kb_p11_generate(kb_p11_token *t, const struct kb_p11_keyspec *spec, kb_p11_key **out)
{
	static const CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	CK_OBJECT_CLASS secret = CKO_SECRET_KEY, pubc = CKO_PUBLIC_KEY, privc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt;
	CK_ULONG value_len, modbits;
	const unsigned char *params;
	size_t params_len;
	struct gen_ctx c;
	kb_p11_key *k = NULL;
	unsigned ops;
	int r;

	if (t == NULL || out == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	if ((r = check_spec(spec, &ops, true)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	switch (spec->type) {
	case KB_P11_AES:
	case KB_P11_GENERIC_SECRET:
		kt = spec->type == KB_P11_AES ? CKK_AES : CKK_GENERIC_SECRET;
		c.mech.mechanism = spec->type == KB_P11_AES ? CKM_AES_KEY_GEN :
		    CKM_GENERIC_SECRET_KEY_GEN;
		if ((r = kb_p11_need_mech(t, c.mech.mechanism, CKF_GENERATE)) != 0)
			return r;
		value_len = spec->bits / 8;
		tadd(&c.priv, CKA_CLASS, &secret, sizeof(secret));
		tadd(&c.priv, CKA_KEY_TYPE, &kt, sizeof(kt));
		tadd(&c.priv, CKA_VALUE_LEN, &value_len, sizeof(value_len));
		common_attrs(&c.priv, spec, true);
		tops(&c.priv, spec->type, ops, 2);
		break;
	case KB_P11_RSA:
		kt = CKK_RSA;
		c.pair = true;
		c.mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		if ((r = kb_p11_need_mech(t, c.mech.mechanism, CKF_GENERATE_KEY_PAIR)) != 0)
			return r;
		modbits = spec->bits;
		tadd(&c.pub, CKA_CLASS, &pubc, sizeof(pubc));
		tadd(&c.pub, CKA_KEY_TYPE, &kt, sizeof(kt));
		tadd(&c.pub, CKA_MODULUS_BITS, &modbits, sizeof(modbits));
		tadd(&c.pub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
		common_attrs(&c.pub, spec, false);
		tops(&c.pub, spec->type, ops, 1);
		tadd(&c.priv, CKA_CLASS, &privc, sizeof(privc));
		tadd(&c.priv, CKA_KEY_TYPE, &kt, sizeof(kt));
		common_attrs(&c.priv, spec, true);
		tops(&c.priv, spec->type, ops, 0);
		break;
	case KB_P11_EC:
		kt = CKK_EC;
		c.pair = true;
		c.mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		if ((r = kb_p11_need_mech(t, c.mech.mechanism, CKF_GENERATE_KEY_PAIR)) != 0)
			return r;
		if ((r = kb_p11_curve_params(spec->curve, &params, &params_len)) != 0)
			return r;
		tadd(&c.pub, CKA_CLASS, &pubc, sizeof(pubc));
		tadd(&c.pub, CKA_KEY_TYPE, &kt, sizeof(kt));
		tadd(&c.pub, CKA_EC_PARAMS, params, params_len);
		common_attrs(&c.pub, spec, false);
		tops(&c.pub, spec->type, ops, 1);
		tadd(&c.priv, CKA_CLASS, &privc, sizeof(privc));
		tadd(&c.priv, CKA_KEY_TYPE, &kt, sizeof(kt));
		common_attrs(&c.priv, spec, true);
		tops(&c.priv, spec->type, ops, 0);
		break;
	}
	if ((r = key_new(t, spec->type, spec->type == KB_P11_EC ?
	    kb_p11_curve_bits(spec->curve) : spec->bits, spec->curve, spec->label, spec->id, spec->id_len, &k)) != 0)
		return r;
	if ((r = kb_p11_with_session(t, true, gen_fn, &c)) != 0) {
		kb_p11_key_free(k);
		return r;
	}
	k->priv = c.hpriv;
	k->pub = c.pair ? c.hpub : 0;
	*out = k;
	return 0;
}

struct create_ctx {
	struct tmpl tm;
	CK_OBJECT_HANDLE h;
};

static int
create_fn(struct p11s *s, void *arg)
{
	struct create_ctx *c = arg;

	return p11c_create_object(s, c->tm.a, c->tm.n, &c->h);
}

int
kb_p11_import_secret(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_secret *value, kb_p11_key **out)
{
	CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	CK_KEY_TYPE kt;
	struct create_ctx c;
	kb_p11_key *k = NULL;
	unsigned ops, bits;
	int r;

	if (t == NULL || out == NULL || value == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token or no key value");
	if ((r = check_spec(spec, &ops, false)) != 0)
		return r;
	if (spec->type != KB_P11_AES && spec->type != KB_P11_GENERIC_SECRET)
		return kb_error_set(KB_ERR_INVALID, "only AES and generic secret keys "
		    "can be imported as values");
	bits = (unsigned)value->len * 8;
	if (spec->type == KB_P11_AES && bits != 128 && bits != 192 && bits != 256)
		return kb_error_set(KB_ERR_INVALID, "an AES key value has 16, 24 or 32 bytes");
	if (spec->type == KB_P11_GENERIC_SECRET && (value->len == 0 || value->len > 512))
		return kb_error_set(KB_ERR_INVALID, "a generic secret has 1 to 512 bytes");
	if (spec->bits && spec->bits != bits)
		return kb_error_set(KB_ERR_INVALID, "the key value has %u bits, not %u",
		    bits, spec->bits);
	kt = spec->type == KB_P11_AES ? CKK_AES : CKK_GENERIC_SECRET;
	memset(&c, 0, sizeof(c));
	tadd(&c.tm, CKA_CLASS, &secret, sizeof(secret));
	tadd(&c.tm, CKA_KEY_TYPE, &kt, sizeof(kt));
	tadd(&c.tm, CKA_VALUE, value->data, value->len);
	common_attrs(&c.tm, spec, true);
	tops(&c.tm, spec->type, ops, 2);
	if ((r = key_new(t, spec->type, bits, 0, spec->label, spec->id, spec->id_len,
	    &k)) != 0)
		return r;
	if ((r = kb_p11_with_session(t, true, create_fn, &c)) != 0) {
		kb_p11_key_free(k);
		return r;
	}
	k->priv = c.h;
	*out = k;
	return 0;
}

/* ------------------------------------------------------- import (pairs) */

struct pair_ctx {
	struct tmpl pub, priv;
	CK_OBJECT_HANDLE hpub, hpriv;
};

/*
 * Both objects in one session borrow.  The public one first: a crash
 * after it leaves an incomplete pair (never a lone private key nobody
 * can find the public half of); a refused private one takes the public
 * one with it.
 */
static int
pair_fn(struct p11s *s, void *arg)
{
	struct pair_ctx *c = arg;
	CK_RV rv;
	int r;

	if (c->hpub == 0 &&
	    (r = p11c_create_object(s, c->pub.a, c->pub.n, &c->hpub)) != 0)
		return r;
	if ((r = p11c_create_object(s, c->priv.a, c->priv.n, &c->hpriv)) != 0) {
		rv = s->rv;
		if (r == KB_P11_RETRY_SESSION || r == KB_P11_RETRY_LOGIN) {
			/* The session is gone: a token object stays; retry the
			 * private half only (the runner calls us again). */
			return r;
		}
		if (p11c_destroy_object(s, c->hpub) == 0)
			c->hpub = 0;
		s->rv = rv;
		return r;
	}
	return 0;
}

static int
import_pair(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    struct pair_ctx *c, unsigned bits, kb_p11_key **out)
{
	kb_p11_key *k = NULL;
	int r;

	if ((r = key_new(t, spec->type, bits, spec->curve, spec->label, spec->id,
	    spec->id_len, &k)) != 0)
		return r;
	if ((r = kb_p11_with_session(t, true, pair_fn, c)) != 0) {
		kb_p11_key_free(k);
		return r;
	}
	k->pub = c->hpub;
	k->priv = c->hpriv;
	*out = k;
	return 0;
}

/* Templates shared by RSA and EC: class, type, names, flags. */
static void
pair_common(struct pair_ctx *c, const struct kb_p11_keyspec *spec,
    const CK_OBJECT_CLASS *pubc, const CK_OBJECT_CLASS *privc,
    const CK_KEY_TYPE *kt, unsigned ops)
{
	tadd(&c->pub, CKA_CLASS, pubc, sizeof(*pubc));
	tadd(&c->pub, CKA_KEY_TYPE, kt, sizeof(*kt));
	common_attrs(&c->pub, spec, false);
	tops(&c->pub, spec->type, ops, 1);
	tadd(&c->priv, CKA_CLASS, privc, sizeof(*privc));
	tadd(&c->priv, CKA_KEY_TYPE, kt, sizeof(*kt));
	common_attrs(&c->priv, spec, true);
	tops(&c->priv, spec->type, ops, 0);
}

static const unsigned char *
skip_zeros(const unsigned char *p, size_t *n)
{
	while (*n > 1 && p[0] == 0) {
		p++;
		(*n)--;
	}
	return p;
}

int
kb_p11_import_rsa(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_p11_rsa_parts *pp, kb_p11_key **out)
{
	static const CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY, privc = CKO_PRIVATE_KEY;
	static const CK_KEY_TYPE kt = CKK_RSA;
	const struct kb_secret *sec[6];
	static const CK_ATTRIBUTE_TYPE sec_attr[6] = {
		CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
		CKA_EXPONENT_2, CKA_COEFFICIENT
	};
	const unsigned char *np, *ep, *v;
	size_t nl, el, vl, i;
	struct pair_ctx c;
	unsigned ops, bits = 0;
	int r;

	if (t == NULL || out == NULL || pp == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token or no key");
	if ((r = check_spec(spec, &ops, false)) != 0)
		return r;
	if (spec->type != KB_P11_RSA || spec->extractable)
		return kb_error_set(KB_ERR_INVALID, "an imported RSA key is an RSA "
		    "key that is not extractable");
	if ((r = kb_p11_rsa_parts_check(pp, &bits)) != 0)
		return r;
	if (spec->bits && spec->bits != bits)
		return kb_error_set(KB_ERR_INVALID, "the RSA key has %u bits, not %u",
		    bits, spec->bits);
	sec[0] = pp->d;
	sec[1] = pp->p;
	sec[2] = pp->q;
	sec[3] = pp->dp;
	sec[4] = pp->dq;
	sec[5] = pp->qi;
	memset(&c, 0, sizeof(c));
	nl = pp->n_len;
	el = pp->e_len;
	np = skip_zeros(pp->n, &nl);
	ep = skip_zeros(pp->e, &el);
	pair_common(&c, spec, &pubc, &privc, &kt, ops);
	tadd(&c.pub, CKA_MODULUS, np, nl);
	tadd(&c.pub, CKA_PUBLIC_EXPONENT, ep, el);
	tadd(&c.priv, CKA_MODULUS, np, nl);
	tadd(&c.priv, CKA_PUBLIC_EXPONENT, ep, el);
	for (i = 0; i < 6; i++) {
		vl = sec[i]->len;
		v = skip_zeros(sec[i]->data, &vl);
		tadd(&c.priv, sec_attr[i], v, vl);
	}
	r = import_pair(t, spec, &c, bits, out);
	/* The template pointed into the caller's secrets: nothing to wipe. */
	return r;
}

/* DER OCTET STRING of 04 || x || y (at most 136 bytes for P-521). */
#define EC_POINT_DER_MAX (3 + 1 + 2 * 66)

/*
 * CKA_EC_POINT (PKCS#11 v2.40 section 2.3.3: DER-encoded) from x and y,
 * each the curve's size; returns the length.
 */
static size_t
ec_point_der(enum kb_p11_curve curve, const unsigned char *x,
    const unsigned char *y, unsigned char point[EC_POINT_DER_MAX])
{
	size_t len = kb_p11_curve_bytes(curve), hdr;

	point[0] = 0x04;
	if (1 + 2 * len < 0x80) {
		point[1] = (unsigned char)(1 + 2 * len);
		hdr = 2;
	} else {
		point[1] = 0x81;
		point[2] = (unsigned char)(1 + 2 * len);
		hdr = 3;
	}
	point[hdr] = 0x04;
	memcpy(point + hdr + 1, x, len);
	memcpy(point + hdr + 1 + len, y, len);
	return hdr + 1 + 2 * len;
}

int
kb_p11_import_ec(kb_p11_token *t, const struct kb_p11_keyspec *spec,
    const struct kb_p11_ec_parts *pp, kb_p11_key **out)
{
	static const CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY, privc = CKO_PRIVATE_KEY;
	static const CK_KEY_TYPE kt = CKK_EC;
	/* DER OCTET STRING of 04 || x || y (at most 133 bytes for P-521). */
	unsigned char point[EC_POINT_DER_MAX];
	const unsigned char *params;
	size_t params_len, len;
	struct pair_ctx c;
	unsigned ops = 0;
	int r;

	if (t == NULL || out == NULL || pp == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token or no key");
	if ((r = check_spec(spec, &ops, false)) != 0)
		return r;
	if (spec->type != KB_P11_EC || spec->extractable)
		return kb_error_set(KB_ERR_INVALID, "an imported EC key is an EC "
		    "key that is not extractable");
	if ((r = kb_p11_curve_params(spec->curve, &params, &params_len)) != 0 ||
	    (r = kb_p11_ec_parts_check(spec->curve, pp)) != 0)
		return r;
	len = ec_point_der(spec->curve, pp->x, pp->y, point);
	memset(&c, 0, sizeof(c));
	pair_common(&c, spec, &pubc, &privc, &kt, ops);
	tadd(&c.pub, CKA_EC_PARAMS, params, params_len);
	tadd(&c.pub, CKA_EC_POINT, point, len);
	tadd(&c.priv, CKA_EC_PARAMS, params, params_len);
	tadd(&c.priv, CKA_VALUE, pp->d->data, pp->d->len);
	return import_pair(t, spec, &c, kb_p11_curve_bits(spec->curve), out);
}

/* ------------------------------------------------------------- backups */

int
kb_p11_backup_wrap(kb_p11_key *wrap, kb_p11_key *target, unsigned char **out,
    size_t *out_len)
{
	return kb_p11_wrap_key(wrap, KB_P11_WRAP_AES_KWP, target, out, out_len);
}

struct restore_ctx {
	CK_MECHANISM mech;
	CK_OBJECT_HANDLE kek;
	const unsigned char *in;
	size_t in_len;
	struct tmpl pub, priv;
	bool pair;
	CK_OBJECT_HANDLE hpub, hpriv;
};

/* As pair_fn: the public half first, gone again if the unwrap fails. */
static int
restore_fn(struct p11s *s, void *arg)
{
	struct restore_ctx *c = arg;
	CK_RV rv;
	int r;

	if (c->pair && c->hpub == 0 &&
	    (r = p11c_create_object(s, c->pub.a, c->pub.n, &c->hpub)) != 0)
		return r;
	if ((r = p11c_unwrap_key(s, &c->mech, c->kek, c->in, c->in_len,
	    c->priv.a, c->priv.n, &c->hpriv)) != 0) {
		rv = s->rv;
		if (r == KB_P11_RETRY_SESSION || r == KB_P11_RETRY_LOGIN)
			return r;
		if (c->pair && p11c_destroy_object(s, c->hpub) == 0)
			c->hpub = 0;
		s->rv = rv;
		return r;
	}
	return 0;
}

int
kb_p11_backup_unwrap(kb_p11_key *wrap, const unsigned char *wrapped,
    size_t wrapped_len, const struct kb_p11_keyspec *spec_in,
    const unsigned char *pa, size_t pa_len, const unsigned char *pb,
    size_t pb_len, kb_p11_key **out)
{
	static const CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY, privc = CKO_PRIVATE_KEY,
	    secc = CKO_SECRET_KEY;
	static const CK_KEY_TYPE rsa = CKK_RSA, ec = CKK_EC, aes = CKK_AES,
	    gen = CKK_GENERIC_SECRET;
	unsigned char point[EC_POINT_DER_MAX];
	const unsigned char *params;
	struct kb_p11_keyspec spec;
	struct restore_ctx c;
	kb_p11_key *k = NULL;
	size_t params_len, len;
	unsigned ops, bits;
	int r;

	if (wrap == NULL || wrap->type != KB_P11_AES || wrap->priv == 0 ||
	    spec_in == NULL || out == NULL)
		return kb_error_set(KB_ERR_INVALID, "restoring needs the token's "
		    "backup wrapping key and a key description");
	if (wrapped == NULL || wrapped_len < 16 || wrapped_len > 8192)
		return kb_error_set(KB_ERR_INVALID, "a wrapped key has 16 to 8192 bytes");
	spec = *spec_in;
	spec.backup = true;
	spec.extractable = false;
	if ((r = check_spec(&spec, &ops, false)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.mech.mechanism = CKM_AES_KEY_WRAP_PAD;
	c.kek = wrap->priv;
	c.in = wrapped;
	c.in_len = wrapped_len;
	bits = spec.bits;
	switch (spec.type) {
	case KB_P11_RSA:
		if (pa == NULL || pb == NULL || pb_len == 0 || pb_len > 8)
			return kb_error_set(KB_ERR_INVALID, "an RSA backup needs the "
			    "public modulus and exponent");
		pa = skip_zeros(pa, &pa_len);
		pb = skip_zeros(pb, &pb_len);
		bits = (unsigned)pa_len * 8;
		if (bits != 2048 && bits != 3072 && bits != 4096)
			return kb_error_set(KB_ERR_INVALID, "an RSA modulus has 2048, "
			    "3072 or 4096 bits");
		c.pair = true;
		tadd(&c.pub, CKA_CLASS, &pubc, sizeof(pubc));
		tadd(&c.pub, CKA_KEY_TYPE, &rsa, sizeof(rsa));
		tadd(&c.pub, CKA_MODULUS, pa, pa_len);
		tadd(&c.pub, CKA_PUBLIC_EXPONENT, pb, pb_len);
		tadd(&c.priv, CKA_CLASS, &privc, sizeof(privc));
		tadd(&c.priv, CKA_KEY_TYPE, &rsa, sizeof(rsa));
		break;
	case KB_P11_EC:
		if ((r = kb_p11_curve_params(spec.curve, &params, &params_len)) != 0)
			return r;
		len = kb_p11_curve_bytes(spec.curve);
		if (pa == NULL || pb == NULL || pa_len != len || pb_len != len)
			return kb_error_set(KB_ERR_INVALID, "an EC backup needs the "
			    "public point, %zu bytes per coordinate", len);
		bits = kb_p11_curve_bits(spec.curve);
		c.pair = true;
		tadd(&c.pub, CKA_CLASS, &pubc, sizeof(pubc));
		tadd(&c.pub, CKA_KEY_TYPE, &ec, sizeof(ec));
		tadd(&c.pub, CKA_EC_PARAMS, params, params_len);
		tadd(&c.pub, CKA_EC_POINT, point, ec_point_der(spec.curve, pa, pb, point));
		tadd(&c.priv, CKA_CLASS, &privc, sizeof(privc));
		tadd(&c.priv, CKA_KEY_TYPE, &ec, sizeof(ec));
		break;
	case KB_P11_AES:
	case KB_P11_GENERIC_SECRET:
		tadd(&c.priv, CKA_CLASS, &secc, sizeof(secc));
		tadd(&c.priv, CKA_KEY_TYPE, spec.type == KB_P11_AES ? &aes : &gen,
		    sizeof(aes));
		break;
	}
	if (c.pair) {
		common_attrs(&c.pub, &spec, false);
		tops(&c.pub, spec.type, ops, 1);
		common_attrs(&c.priv, &spec, true);
		tops(&c.priv, spec.type, ops, 0);
	} else {
		common_attrs(&c.priv, &spec, true);
		tops(&c.priv, spec.type, ops, 2);
	}
	if ((r = kb_p11_need_mech(wrap->t, CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP)) != 0 ||
	    (r = key_new(wrap->t, spec.type, bits, spec.curve, spec.label, spec.id,
	    spec.id_len, &k)) != 0)
		return r;
	if ((r = kb_p11_with_session(wrap->t, true, restore_fn, &c)) != 0) {
		kb_p11_key_free(k);
		return r;
	}
	k->pub = c.pair ? c.hpub : 0;
	k->priv = c.hpriv;
	*out = k;
	return 0;
}

int
kb_p11_read_attr(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
    size_t cap, unsigned char **out, size_t *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	unsigned char *buf = NULL;
	int r;

	if ((r = p11c_get_attrs(s, h, &a, 1)) != 0)
		return r;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return kb_error_set(KB_ERR_NOT_FOUND, "token '%s' does not give "
		    "attribute 0x%lx of the key", s->t->label, (unsigned long)type);
	if (a.ulValueLen > cap)
		return kb_error_set(KB_ERR_PROTOCOL, "token '%s' gave an attribute of "
		    "%lu bytes, more than %zu", s->t->label, (unsigned long)a.ulValueLen, cap);
	if ((buf = malloc(a.ulValueLen + 1)) == NULL)
		return KB_ERR_ALLOC;
	a.pValue = buf;
	if ((r = p11c_get_attrs(s, h, &a, 1)) != 0 ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > cap) {
		free(buf);
		return r ? r : kb_error_set(KB_ERR_PROTOCOL, "token '%s' changed an "
		    "attribute while it was read", s->t->label);
	}
	buf[a.ulValueLen] = '\0';
	*out = buf;
	*len = a.ulValueLen;
	return 0;
}

static int key_size(struct p11s *s, kb_p11_key *k);

static int
size_fn(struct p11s *s, void *arg)
{
	return key_size(s, arg);
}

int
kb_p11_key_from_handle(kb_p11_token *t, CK_OBJECT_HANDLE h,
    const struct kb_p11_keyspec *spec, bool read_size, kb_p11_key **out)
{
	kb_p11_key *k = NULL;
	int r;

	if ((r = key_new(t, spec->type, 0, 0, spec->label, spec->id, spec->id_len,
	    &k)) != 0)
		return r;
	k->priv = h;
	if (read_size && (r = kb_p11_with_session(t, true, size_fn, k)) != 0) {
		kb_p11_key_free(k);
		return r;
	}
	*out = k;
	return 0;
}

/* ----------------------------------------------------------------- find */

struct obj {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	unsigned char *id;
	size_t id_len;
	char *label;
	bool used;
};

struct find_ctx {
	const struct kb_p11_uri *filter;
	kb_p11_key **keys;
	size_t n;
};

static void
objs_free(struct obj *o, size_t n)
{
	size_t i;

	for (i = 0; o != NULL && i < n; i++) {
		free(o[i].id);
		free(o[i].label);
	}
	free(o);
}

static int
obj_load(struct p11s *s, CK_OBJECT_HANDLE h, struct obj *o)
{
	CK_ATTRIBUTE a[2] = {
		{ CKA_CLASS, &o->cls, sizeof(o->cls) },
		{ CKA_KEY_TYPE, &o->kt, sizeof(o->kt) },
	};
	size_t l;
	int r;

	memset(o, 0, sizeof(*o));
	o->h = h;
	a[0].pValue = &o->cls;
	a[1].pValue = &o->kt;
	if ((r = p11c_get_attrs(s, h, a, 2)) != 0)
		return r;
	if (a[0].ulValueLen != sizeof(o->cls) || a[1].ulValueLen != sizeof(o->kt)) {
		o->cls = (CK_OBJECT_CLASS)-1;
		return 0;
	}
	if ((r = kb_p11_read_attr(s, h, CKA_ID, ID_MAX, &o->id, &o->id_len)) != 0 &&
	    r != KB_ERR_NOT_FOUND)
		return r;
	if ((r = kb_p11_read_attr(s, h, CKA_LABEL, LABEL_MAX, (unsigned char **)&o->label,
	    &l)) != 0 && r != KB_ERR_NOT_FOUND)
		return r;
	if (o->label != NULL && memchr(o->label, '\0', l) != NULL)
		o->label[0] = '\0';   /* labels with NUL bytes: shown as empty */
	return 0;
}

static enum kb_p11_key_type
our_type(CK_KEY_TYPE kt)
{
	switch (kt) {
	case CKK_AES: return KB_P11_AES;
	case CKK_RSA: return KB_P11_RSA;
	case CKK_EC: return KB_P11_EC;
	case CKK_GENERIC_SECRET: return KB_P11_GENERIC_SECRET;
	default: return 0;
	}
}

/* Size and curve of a key, from whichever object says. */
static int
key_size(struct p11s *s, kb_p11_key *k)
{
	unsigned char *v = NULL;
	size_t n = 0;
	int r = 0;

	switch (k->type) {
	case KB_P11_AES:
	case KB_P11_GENERIC_SECRET: {
		CK_ULONG vl = 0;
		CK_ATTRIBUTE a = { CKA_VALUE_LEN, &vl, sizeof(vl) };

		if ((r = p11c_get_attrs(s, k->priv, &a, 1)) != 0)
			return r;
		k->bits = a.ulValueLen == sizeof(vl) ? (unsigned)vl * 8 : 0;
		return 0;
	}
	case KB_P11_RSA:
		r = kb_p11_read_attr(s, k->pub ? k->pub : k->priv, CKA_MODULUS, 2048, &v, &n);
		if (r == 0) {
			size_t i = 0;

			while (i < n && v[i] == 0)
				i++;
			k->bits = (unsigned)(n - i) * 8;
			if (i < n) {
				unsigned char c = v[i];

				while (!(c & 0x80)) {
					k->bits--;
					c = (unsigned char)(c << 1);
				}
			}
		}
		break;
	case KB_P11_EC:
		r = kb_p11_read_attr(s, k->pub ? k->pub : k->priv, CKA_EC_PARAMS, 256, &v, &n);
		if (r == 0 && kb_p11_curve_from_params(v, n, &k->curve) == 0)
			k->bits = kb_p11_curve_bits(k->curve);
		r = 0;
		break;
	}
	free(v);
	return r;
}

/* The other half of a pair, by CKA_ID and key type, searched on the token. */
static int
find_partner(struct p11s *s, const struct obj *o, CK_OBJECT_CLASS want,
    CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_HANDLE *hs = NULL;
	CK_KEY_TYPE kt = o->kt;
	size_t n = 0;
	CK_ATTRIBUTE tm[3] = {
		{ CKA_CLASS, &want, sizeof(want) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_ID, o->id, o->id_len },
	};
	int r;

	*h = 0;
	if ((r = p11c_find(s, tm, 3, 16, &hs, &n)) != 0)
		return r;
	if (n >= 1)
		*h = hs[0];
	free(hs);
	return 0;
}

/*
 * Pairing a listing's public and private halves: an index sorted by key
 * type, CKA_ID and class, so each half finds its partner by binary
 * search instead of a scan of the whole listing (tokens hold tens of
 * thousands of objects).
 */
struct pair_ix {
	const struct obj *objs;
	const struct obj **ix;
	size_t n;
};

static int
obj_pair_cmp(const struct obj *a, CK_KEY_TYPE kt, const unsigned char *id,
    size_t id_len, CK_OBJECT_CLASS cls)
{
	if (a->kt != kt)
		return a->kt < kt ? -1 : 1;
	if (a->id_len != id_len)
		return a->id_len < id_len ? -1 : 1;
	if (id_len > 0) {
		int c = memcmp(a->id, id, id_len);

		if (c != 0)
			return c;
	}
	if (a->cls != cls)
		return a->cls < cls ? -1 : 1;
	return 0;
}

/* Sorts pointers into one array: equal keys keep the token's order. */
static int
pair_sort_cmp(const void *x, const void *y)
{
	const struct obj *a = *(const struct obj *const *)x;
	const struct obj *b = *(const struct obj *const *)y;
	int c = obj_pair_cmp(a, b->kt, b->id, b->id_len, b->cls);

	return c != 0 ? c : a < b ? -1 : a > b;
}

static int
pair_ix_build(struct pair_ix *p, const struct obj *objs, size_t n)
{
	size_t i;

	p->objs = objs;
	p->n = n;
	if ((p->ix = calloc(n ? n : 1, sizeof(*p->ix))) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < n; i++)
		p->ix[i] = &objs[i];
	qsort(p->ix, n, sizeof(*p->ix), pair_sort_cmp);
	return 0;
}

/* The first unused object after position i that pairs with objs[i]. */
static size_t
pair_ix_partner(const struct pair_ix *p, size_t i, CK_OBJECT_CLASS want)
{
	const struct obj *o = &p->objs[i];
	size_t lo = 0, hi = p->n, k;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (obj_pair_cmp(p->ix[mid], o->kt, o->id, o->id_len, want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (k = lo; k < p->n; k++) {
		const struct obj *c = p->ix[k];

		if (obj_pair_cmp(c, o->kt, o->id, o->id_len, want) != 0)
			break;
		if (c > o && !c->used)
			return (size_t)(c - p->objs);
	}
	return (size_t)-1;
}

static int
find_fn(struct p11s *s, void *arg)
{
	struct find_ctx *c = arg;
	const struct kb_p11_uri *f = c->filter;
	CK_ATTRIBUTE tm[2];
	CK_ULONG ntm = 0;
	CK_OBJECT_HANDLE *hs = NULL;
	struct obj *objs = NULL;
	kb_p11_key **keys = NULL, *k = NULL;
	struct pair_ix px = { NULL, NULL, 0 };
	size_t n = 0, i, j, nk = 0;
	int r;

	if (f != NULL && f->object != NULL) {
		tm[ntm].type = CKA_LABEL;
		tm[ntm].pValue = f->object;
		tm[ntm++].ulValueLen = strlen(f->object);
	}
	if (f != NULL && f->has_id) {
		tm[ntm].type = CKA_ID;
		tm[ntm].pValue = f->id;
		tm[ntm++].ulValueLen = f->id_len;
	}
	if ((r = p11c_find(s, tm, ntm, KB_P11_MAX_OBJECTS, &hs, &n)) != 0)
		goto out;
	if ((objs = calloc(n ? n : 1, sizeof(*objs))) == NULL ||
	    (keys = calloc(n ? n : 1, sizeof(*keys))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = obj_load(s, hs[i], &objs[i])) != 0) {
			n = i + 1;
			goto out;
		}
	if ((r = pair_ix_build(&px, objs, n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct obj *o = &objs[i];
		enum kb_p11_key_type t;

		if (o->used)
			continue;
		if (o->cls != CKO_SECRET_KEY && o->cls != CKO_PRIVATE_KEY &&
		    o->cls != CKO_PUBLIC_KEY)
			continue;
		if ((t = our_type(o->kt)) == 0) {
			kb_debug("pkcs11: token '%s': skipping a key of type 0x%lx",
			    s->t->label, (unsigned long)o->kt);
			continue;
		}
		if ((o->cls == CKO_SECRET_KEY) != (t == KB_P11_AES || t == KB_P11_GENERIC_SECRET))
			continue;
		o->used = true;
		if ((r = key_new(s->t, t, 0, 0, o->label, o->id, o->id_len, &k)) != 0)
			goto out;
		if (o->cls == CKO_PUBLIC_KEY)
			k->pub = o->h;
		else
			k->priv = o->h;
		if (o->cls != CKO_SECRET_KEY) {
			CK_OBJECT_CLASS other = o->cls == CKO_PUBLIC_KEY ? CKO_PRIVATE_KEY :
			    CKO_PUBLIC_KEY;
			CK_OBJECT_HANDLE ph = 0;

			if ((j = pair_ix_partner(&px, i, other)) != (size_t)-1) {
				objs[j].used = true;
				ph = objs[j].h;
			} else if (ntm > 0 && o->id_len > 0) {
				/* A filtered listing may miss the partner (another
				 * label); a full one holds it if the token does. */
				if ((r = find_partner(s, o, other, &ph)) != 0)
					goto out;
				/* Skip the partner if the loop meets it later. */
				for (j = i + 1; j < n && ph != 0; j++)
					if (objs[j].h == ph)
						objs[j].used = true;
			}
			if (other == CKO_PUBLIC_KEY)
				k->pub = ph;
			else
				k->priv = ph;
		}
		if ((r = key_size(s, k)) != 0)
			goto out;
		if (f != NULL && f->type != NULL) {
			bool keep = (strcmp(f->type, "secret-key") == 0 && o->cls == CKO_SECRET_KEY) ||
			    (strcmp(f->type, "private") == 0 && k->priv && o->cls != CKO_SECRET_KEY) ||
			    (strcmp(f->type, "public") == 0 && k->pub);

			if (!keep) {
				kb_p11_key_free(k);
				k = NULL;
				continue;
			}
		}
		keys[nk++] = k;
		k = NULL;
	}
	c->keys = keys;
	keys = NULL;
	c->n = nk;
	r = 0;
out:
	kb_p11_key_free(k);
	kb_p11_keys_free(keys, nk);
	objs_free(objs, n);
	free(px.ix);
	free(hs);
	return r;
}

int
kb_p11_find_keys(kb_p11_token *t, const struct kb_p11_uri *filter,
    kb_p11_key ***out, size_t *n)
{
	struct find_ctx c;
	int r;

	if (t == NULL || out == NULL || n == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	memset(&c, 0, sizeof(c));
	c.filter = filter;
	if (filter != NULL && filter->type != NULL &&
	    (strcmp(filter->type, "cert") == 0 || strcmp(filter->type, "data") == 0)) {
		*out = calloc(1, sizeof(**out));
		if (*out == NULL)
			return KB_ERR_ALLOC;
		*n = 0;
		return 0;
	}
	if ((r = kb_p11_with_session(t, true, find_fn, &c)) != 0)
		return r;
	*out = c.keys;
	*n = c.n;
	return 0;
}

void
kb_p11_key_free(kb_p11_key *k)
{
	if (k == NULL)
		return;
	free(k->label);
	free(k->id);
	free(k);
}

void
kb_p11_keys_free(kb_p11_key **keys, size_t n)
{
	size_t i;

	if (keys == NULL)
		return;
	for (i = 0; i < n; i++)
		kb_p11_key_free(keys[i]);
	free(keys);
}

enum kb_p11_key_type
kb_p11_key_type(const kb_p11_key *k)
{
	return k ? k->type : 0;
}

unsigned
kb_p11_key_bits(const kb_p11_key *k)
{
	return k ? k->bits : 0;
}

const char *
kb_p11_key_label(const kb_p11_key *k)
{
	return k != NULL ? k->label : NULL;
}

const unsigned char *
kb_p11_key_id(const kb_p11_key *k, size_t *len)
{
	*len = k != NULL && k->id != NULL ? k->id_len : 0;
	return k != NULL ? k->id : NULL;
}

void
kb_p11_key_handles(const kb_p11_key *k, unsigned long *priv, unsigned long *pub)
{
	if (priv)
		*priv = k ? k->priv : 0;
	if (pub)
		*pub = k ? k->pub : 0;
}

char *
kb_p11_key_uri(const kb_p11_key *k)
{
	struct kb_p11_uri u;

	if (k == NULL)
		return NULL;
	memset(&u, 0, sizeof(u));
	u.model = k->t->model;
	u.manufacturer = k->t->manufacturer;
	u.serial = k->t->serial;
	u.token = k->t->label;
	u.id = k->id;
	u.id_len = k->id_len;
	u.has_id = true;
	u.object = k->label;
	if (k->type == KB_P11_AES || k->type == KB_P11_GENERIC_SECRET)
		u.type = "secret-key";
	return kb_p11_uri_format(&u);
}

/* ---------------------------------------------------------- attributes */

struct attrs_ctx {
	kb_p11_key *k;
	struct kb_p11_key_attrs a;
};

static void
date_str(const CK_DATE *d, char out[9], bool *has)
{
	size_t i;

	memcpy(out, d->year, 4);
	memcpy(out + 4, d->month, 2);
	memcpy(out + 6, d->day, 2);
	out[8] = '\0';
	*has = true;
	for (i = 0; i < 8; i++)
		if (out[i] < '0' || out[i] > '9')
			*has = false;
	if (!*has)
		out[0] = '\0';
}

static int
attrs_fn(struct p11s *s, void *arg)
{
	struct attrs_ctx *c = arg;
	kb_p11_key *k = c->k;
	CK_OBJECT_HANDLE main = k->priv ? k->priv : k->pub;
	CK_BBOOL b[4] = { 0, 0, 0, 0 }, ob[N_OPS];
	CK_DATE sd, ed;
	CK_ATTRIBUTE a[6 + N_OPS];
	size_t i, l;
	int r, half;

	memset(&c->a, 0, sizeof(c->a));
	c->a.type = k->type;
	c->a.bits = k->bits;
	c->a.curve = k->curve;
	if ((r = kb_p11_read_attr(s, main, CKA_LABEL, LABEL_MAX,
	    (unsigned char **)&c->a.label, &l)) != 0 && r != KB_ERR_NOT_FOUND)
		return r;
	if ((r = kb_p11_read_attr(s, main, CKA_ID, ID_MAX, &c->a.id, &c->a.id_len)) != 0 &&
	    r != KB_ERR_NOT_FOUND)
		return r;
	/* Both halves: usage flags live on either. */
	for (half = 0; half < 2; half++) {
		CK_OBJECT_HANDLE h = half == 0 ? k->priv : k->pub;
		CK_ULONG n = 0;

		if (h == 0)
			continue;
		for (i = 0; i < N_OPS; i++) {
			ob[i] = CK_FALSE;
			a[n].type = op_attrs[i].attr;
			a[n].pValue = &ob[i];
			a[n++].ulValueLen = sizeof(CK_BBOOL);
		}
		if (half == 0) {
			CK_ATTRIBUTE_TYPE bt[4] = { CKA_SENSITIVE, CKA_EXTRACTABLE,
			    CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE };

			for (i = 0; i < 4; i++) {
				a[n].type = bt[i];
				a[n].pValue = &b[i];
				a[n++].ulValueLen = sizeof(CK_BBOOL);
			}
		}
		if ((r = p11c_get_attrs(s, h, a, n)) != 0)
			return r;
		for (i = 0; i < N_OPS; i++)
			if (a[i].ulValueLen == sizeof(CK_BBOOL) && ob[i])
				c->a.ops |= op_attrs[i].op;
		if (half == 0) {
			c->a.sensitive = a[N_OPS].ulValueLen == 1 && b[0];
			c->a.extractable = a[N_OPS + 1].ulValueLen == 1 && b[1];
			c->a.always_sensitive = a[N_OPS + 2].ulValueLen == 1 && b[2];
			c->a.never_extractable = a[N_OPS + 3].ulValueLen == 1 && b[3];
		}
	}
	c->a.ops &= allowed_ops[k->type];
	/*
	 * Dates one at a time: SoftHSM 2.6 fails C_GetAttributeValue with
	 * CKR_GENERAL_ERROR for a date set on a private object after creation,
	 * so the public half is asked first and a failing date reads as unset.
	 */
	for (half = 0; half < 2; half++) {
		CK_DATE *d = half ? &ed : &sd;
		CK_OBJECT_HANDLE hs[2] = { k->pub, k->priv };

		for (i = 0; i < 2; i++) {
			if (hs[i] == 0)
				continue;
			a[0].type = half ? CKA_END_DATE : CKA_START_DATE;
			a[0].pValue = d;
			a[0].ulValueLen = sizeof(*d);
			if (p11c_get_attrs(s, hs[i], a, 1) != 0) {
				if (s->rv == CKR_SESSION_HANDLE_INVALID || s->rv == CKR_SESSION_CLOSED)
					return KB_P11_RETRY_SESSION;
				continue;
			}
			if (a[0].ulValueLen == sizeof(*d)) {
				if (half)
					date_str(d, c->a.end_date, &c->a.has_end_date);
				else
					date_str(d, c->a.start_date, &c->a.has_start_date);
			}
			break;
		}
	}
	return 0;
}

int
kb_p11_key_get_attrs(kb_p11_key *k, struct kb_p11_key_attrs *out)
{
	struct attrs_ctx c;
	int r;

	if (k == NULL || out == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	memset(&c, 0, sizeof(c));
	c.k = k;
	r = kb_p11_with_session(k->t, true, attrs_fn, &c);
	if (r != 0) {
		kb_p11_key_attrs_clear(&c.a);
		return r;
	}
	*out = c.a;
	return 0;
}

void
kb_p11_key_attrs_clear(struct kb_p11_key_attrs *a)
{
	if (a == NULL)
		return;
	free(a->label);
	free(a->id);
	memset(a, 0, sizeof(*a));
}

struct set_ctx {
	kb_p11_key *k;
	struct tmpl priv, pub;
};

static int
set_fn(struct p11s *s, void *arg)
{
	struct set_ctx *c = arg;
	int r;

	if (c->k->priv && c->priv.n &&
	    (r = p11c_set_attrs(s, c->k->priv, c->priv.a, c->priv.n)) != 0)
		return r;
	if (c->k->pub && c->pub.n &&
	    (r = p11c_set_attrs(s, c->k->pub, c->pub.a, c->pub.n)) != 0)
		return r;
	return 0;
}

int
kb_p11_key_set_label(kb_p11_key *k, const char *label)
{
	struct set_ctx c;
	char *copy;
	int r;

	if (k == NULL || label == NULL || strlen(label) > LABEL_MAX)
		return kb_error_set(KB_ERR_INVALID, "a label has at most %d bytes", LABEL_MAX);
	if ((copy = kb_strdup(label)) == NULL)
		return KB_ERR_ALLOC;
	memset(&c, 0, sizeof(c));
	c.k = k;
	tadd(&c.priv, CKA_LABEL, label, strlen(label));
	tadd(&c.pub, CKA_LABEL, label, strlen(label));
	if ((r = kb_p11_with_session(k->t, true, set_fn, &c)) != 0) {
		free(copy);
		return r;
	}
	free(k->label);
	k->label = copy;
	return 0;
}

/*
 * Adopting a foreign object: CKA_LABEL and CKA_ID change together, one
 * C_SetAttributeValue per object so that no object is ever seen with the
 * new label and the old id.  The public half goes first: a crash between
 * the two calls leaves the private half (the one that matters) under its
 * old name, which the caller's intent recovery can finish or undo.
 */
struct label_id_ctx {
	kb_p11_key *k;
	CK_ATTRIBUTE set[2], old_pub[2];
	bool pub_done;
};

static int
label_id_fn(struct p11s *s, void *arg)
{
	struct label_id_ctx *c = arg;
	int r;

	if (c->k->pub && !c->pub_done) {
		if ((r = p11c_set_attrs(s, c->k->pub, c->set, 2)) != 0)
			return r;
		c->pub_done = true;
	}
	if (c->k->priv && (r = p11c_set_attrs(s, c->k->priv, c->set, 2)) != 0)
		return r;
	return 0;
}

static int
label_id_undo_fn(struct p11s *s, void *arg)
{
	struct label_id_ctx *c = arg;

	return p11c_set_attrs(s, c->k->pub, c->old_pub, 2);
}

int
kb_p11_key_set_label_id(kb_p11_key *k, const char *label, const unsigned char *id,
    size_t id_len)
{
	struct label_id_ctx c;
	char *lcopy = NULL;
	unsigned char *icopy = NULL;
	int r;

	if (k == NULL || label == NULL || strlen(label) > LABEL_MAX)
		return kb_error_set(KB_ERR_INVALID, "a label has at most %d bytes", LABEL_MAX);
	if (id == NULL || id_len == 0 || id_len > ID_MAX)
		return kb_error_set(KB_ERR_INVALID, "a key needs an id of 1 to %d bytes",
		    ID_MAX);
	if (k->priv == 0 && k->pub == 0)
		return kb_error_set(KB_ERR_NOT_FOUND, "key '%s' has no object on the "
		    "token", k->label);
	if ((lcopy = kb_strdup(label)) == NULL || (icopy = malloc(id_len)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	memcpy(icopy, id, id_len);
	memset(&c, 0, sizeof(c));
	c.k = k;
	c.set[0].type = CKA_LABEL;
	c.set[0].pValue = lcopy;
	c.set[0].ulValueLen = strlen(lcopy);
	c.set[1].type = CKA_ID;
	c.set[1].pValue = icopy;
	c.set[1].ulValueLen = id_len;
	c.old_pub[0].type = CKA_LABEL;
	c.old_pub[0].pValue = k->label;
	c.old_pub[0].ulValueLen = strlen(k->label);
	c.old_pub[1].type = CKA_ID;
	c.old_pub[1].pValue = k->id;
	c.old_pub[1].ulValueLen = k->id_len;
	if ((r = kb_p11_with_session(k->t, true, label_id_fn, &c)) != 0) {
		/* Best effort: do not leave the halves of a pair under two names. */
		if (c.pub_done && k->priv) {
			char *msg = kb_strdup(kb_error_detail(r));

			if (kb_p11_with_session(k->t, true, label_id_undo_fn, &c) != 0)
				kb_debug("pkcs11: token '%s': the public half of '%s' keeps "
				    "its new label and id", k->t->label, k->label);
			if (msg != NULL)
				(void)kb_error_set(r, "%s", msg);
			free(msg);
		}
		goto out;
	}
	free(k->label);
	free(k->id);
	k->label = lcopy;   /* transferred */
	k->id = icopy;      /* transferred */
	k->id_len = id_len;
	lcopy = NULL;
	icopy = NULL;
	r = 0;
out:
	free(lcopy);
	free(icopy);
	return r;
}

bool
kb_p11_key_is_complete(const kb_p11_key *k)
{
	if (k == NULL)
		return false;
	switch (k->type) {
	case KB_P11_RSA:
	case KB_P11_EC:
		return k->priv != 0 && k->pub != 0;
	case KB_P11_AES:
	case KB_P11_GENERIC_SECRET:
		return k->priv != 0;
	}
	return false;
}

int
kb_p11_key_set_ops(kb_p11_key *k, unsigned ops)
{
	struct set_ctx c;
	bool secret;

	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if (ops & ~allowed_ops[k->type])
		return kb_error_set(KB_ERR_INVALID, "%s keys do not allow some of the "
		    "requested key operations", kb_p11_key_type_name(k->type));
	memset(&c, 0, sizeof(c));
	c.k = k;
	secret = k->type == KB_P11_AES || k->type == KB_P11_GENERIC_SECRET;
	tops(&c.priv, k->type, ops, secret ? 2 : 0);
	if (!secret)
		tops(&c.pub, k->type, ops, 1);
	return kb_p11_with_session(k->t, true, set_fn, &c);
}

static int
to_date(int64_t t, CK_DATE *d)
{
	struct tm tm;
	char buf[48];
	time_t tt = (time_t)t;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999)
		return kb_error_set(KB_ERR_INVALID, "a key date must fall between "
		    "1970 and 9999");
	snprintf(buf, sizeof(buf), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday);
	memcpy(d->year, buf, 4);
	memcpy(d->month, buf + 4, 2);
	memcpy(d->day, buf + 6, 2);
	return 0;
}

int
kb_p11_key_set_dates(kb_p11_key *k, int64_t start, int64_t end)
{
	struct set_ctx c;
	CK_DATE sd, ed;
	int r;

	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	if ((start && (r = to_date(start, &sd)) != 0) ||
	    (end && (r = to_date(end, &ed)) != 0))
		return r;
	if (start && end && end < start)
		return kb_error_set(KB_ERR_INVALID, "a key's end date comes before its "
		    "start date");
	memset(&c, 0, sizeof(c));
	c.k = k;
	/* An empty value clears a date (v2.40 section 4.7). */
	tadd(&c.priv, CKA_START_DATE, start ? &sd : NULL, start ? sizeof(sd) : 0);
	tadd(&c.priv, CKA_END_DATE, end ? &ed : NULL, end ? sizeof(ed) : 0);
	tadd(&c.pub, CKA_START_DATE, start ? &sd : NULL, start ? sizeof(sd) : 0);
	tadd(&c.pub, CKA_END_DATE, end ? &ed : NULL, end ? sizeof(ed) : 0);
	return kb_p11_with_session(k->t, true, set_fn, &c);
}

static int
destroy_fn(struct p11s *s, void *arg)
{
	kb_p11_key *k = arg;
	int r;

	if (k->priv) {
		if ((r = p11c_destroy_object(s, k->priv)) != 0)
			return r;
		k->priv = 0;
	}
	if (k->pub) {
		if ((r = p11c_destroy_object(s, k->pub)) != 0)
			return r;
		k->pub = 0;
	}
	return 0;
}

int
kb_p11_key_destroy(kb_p11_key *k)
{
	if (k == NULL)
		return kb_error_set(KB_ERR_INVALID, "no key");
	return kb_p11_with_session(k->t, true, destroy_fn, k);
}
