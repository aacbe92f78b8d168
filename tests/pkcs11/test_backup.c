/*
 * test_backup.c: the backup keys and backup wrap/unwrap of pkcs11/ on two
 * fresh SoftHSM2 tokens that share one pair of backup keys: keys made on
 * one are restored on the other and still sign, verify and decrypt what
 * the originals made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "p11test.h"
#include "tap.h"

static struct p11t X;
static const unsigned char id1[] = { 0xb1, 0x01 }, id2[] = { 0xb1, 0x02 },
    id3[] = { 0xb1, 0x03 }, id4[] = { 0xb1, 0x04 };

static kb_p11_key *
gen(kb_p11_token *t, enum kb_p11_key_type type, unsigned bits,
    enum kb_p11_curve curve, const char *label, const unsigned char *id,
    bool backup)
{
	struct kb_p11_keyspec s;
	kb_p11_key *k = NULL;
	int r;

	memset(&s, 0, sizeof(s));
	s.type = type;
	s.bits = bits;
	s.curve = curve;
	s.label = label;
	s.id = id;
	s.id_len = 2;
	s.token = true;
	s.backup = backup;
	r = kb_p11_generate(t, &s, &k);
	tap_is_int(r, 0, "generate %s (%s)", label, r ? kb_error_detail(r) : "ok");
	return k;
}

/* n/e or x/y of a key's public JWK. */
static int
pub_parts(kb_p11_key *k, const char *a, const char *b, unsigned char **pa,
    size_t *la, unsigned char **pb, size_t *lb)
{
	char *json = NULL;
	cJSON *o = NULL;
	const cJSON *va, *vb;
	int r = -1;

	if (kb_p11_public_jwk(k, &json) != 0 || (o = cJSON_Parse(json)) == NULL)
		goto out;
	va = cJSON_GetObjectItemCaseSensitive(o, a);
	vb = cJSON_GetObjectItemCaseSensitive(o, b);
	if (!cJSON_IsString(va) || !cJSON_IsString(vb) ||
	    kb_b64url_decode(va->valuestring, strlen(va->valuestring), pa, la) != 0 ||
	    kb_b64url_decode(vb->valuestring, strlen(vb->valuestring), pb, lb) != 0)
		goto out;
	r = 0;
 out:
	cJSON_Delete(o);
	free(json);
	return r;
}

static size_t
count(kb_p11_token *t, const char *label)
{
	struct kb_p11_uri f;
	kb_p11_key **keys = NULL;
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	f.object = (char *)label;
	if (kb_p11_find_keys(t, &f, &keys, &n) != 0)
		return (size_t)-1;
	kb_p11_keys_free(keys, n);
	return n;
}

/* Wrap src on token A, unwrap on token B as label/id; NULL on failure. */
static kb_p11_key *
move(kb_p11_key *wa, kb_p11_key *wb, kb_p11_key *src, const char *label,
    const unsigned char *id)
{
	struct kb_p11_keyspec s;
	unsigned char *w = NULL, *pa = NULL, *pb = NULL;
	size_t wl = 0, la = 0, lb = 0;
	kb_p11_key *k = NULL;
	int r;

	memset(&s, 0, sizeof(s));
	s.type = kb_p11_key_type(src);
	s.bits = kb_p11_key_bits(src);
	s.curve = s.type == KB_P11_EC ? KB_P11_P256 : 0;
	s.label = label;
	s.id = id;
	s.id_len = 2;
	s.token = true;
	r = kb_p11_backup_wrap(wa, src, &w, &wl);
	tap_is_int(r, 0, "wrap %s under the trusted key (%zu bytes)", label, wl);
	if (r != 0)
		return NULL;
	if (s.type == KB_P11_RSA)
		r = pub_parts(src, "n", "e", &pa, &la, &pb, &lb);
	else if (s.type == KB_P11_EC)
		r = pub_parts(src, "x", "y", &pa, &la, &pb, &lb);
	if (r == 0)
		r = kb_p11_backup_unwrap(wb, w, wl, &s, pa, la, pb, lb, &k);
	tap_is_int(r, 0, "unwrap %s on the other token (%s)", label,
	    r ? kb_error_detail(r) : "ok");
	tap_ok(k == NULL || kb_p11_key_is_complete(k), "%s is complete", label);
	free(w);
	free(pa);
	free(pb);
	return k;
}

int
main(void)
{
	struct kb_secret *wv = NULL, *sv = NULL;
	struct kb_p11_uri sel;
	unsigned long slot_a, slot_b;
	kb_p11_token *ta = NULL, *tb = NULL;
	kb_p11_key *wa = NULL, *sa = NULL, *wb = NULL, *sb = NULL;
	kb_p11_key *rsa = NULL, *ec = NULL, *aes = NULL, *plain = NULL, *other = NULL;
	kb_p11_key *r2 = NULL, *e2 = NULL, *a2 = NULL, *k = NULL;
	unsigned char digest[32], iv[12], tag[16], *sig = NULL, *ct = NULL, *pt = NULL;
	unsigned char *w = NULL;
	size_t sl = 0, cl = 0, pl = 0, wl = 0;
	struct kb_p11_key_attrs at;
	struct stat st;
	int r;

	if (stat(p11t_softhsm(), &st) != 0)
		return tap_skip_all("SoftHSM2 module not installed"), 0;
	if (p11t_prepare(&X) != 0)
		return tap_skip_all("cannot create a temporary token directory"), 0;
	X.module = p11t_softhsm();
	if (kb_p11_module_load(X.module, &X.m) != 0 ||
	    kb_p11_find_free_slot(X.m, &slot_a) != 0 ||
	    kb_p11_init_token(X.m, slot_a, "kb-backup-a", X.so_pin, X.pin) != 0 ||
	    kb_p11_find_free_slot(X.m, &slot_b) != 0 ||
	    kb_p11_init_token(X.m, slot_b, "kb-backup-b", X.so_pin, X.pin) != 0) {
		tap_ok(0, "two fresh tokens: %s", kb_error_detail(KB_ERR_DEVICE));
		goto out;
	}
	/* SoftHSM gives an initialised token a new slot id: find them again. */
	{
		struct kb_p11_token_info *all = NULL;
		size_t n = 0, i;

		if (kb_p11_list_tokens(X.m, &all, &n) == 0)
			for (i = 0; i < n; i++) {
				if (strcmp(all[i].label, "kb-backup-a") == 0)
					slot_a = all[i].slot_id;
				if (strcmp(all[i].label, "kb-backup-b") == 0)
					slot_b = all[i].slot_id;
			}
		free(all);
	}

	/* One pair of values, on both tokens. */
	if (kb_secret_new(32, &wv) != 0 || kb_secret_new(32, &sv) != 0 ||
	    kb_random(wv->data, 32) != 0 || kb_random(sv->data, 32) != 0)
		goto out;
	tap_is_int(kb_p11_backup_keys_init(X.m, slot_a, X.so_pin, X.pin, wv, sv), 0,
	    "backup keys on token A");
	tap_is_int(kb_p11_backup_keys_init(X.m, slot_b, X.so_pin, X.pin, wv, sv), 0,
	    "the same backup keys on token B");
	r = kb_p11_backup_keys_init(X.m, slot_a, X.so_pin, X.pin, wv, sv);
	tap_is_int(r, KB_ERR_CONFLICT, "a second time: conflict (%s)", kb_error_detail(r));
	tap_is_int(kb_p11_backup_keys_init(X.m, slot_a, X.pin, X.pin, wv, sv),
	    KB_ERR_CONFLICT, "checked before the SO logs in");
	kb_secret_free(&wv);
	kb_secret_free(&sv);

	memset(&sel, 0, sizeof(sel));
	sel.token = (char *)"kb-backup-a";
	if (kb_p11_token_open(X.m, &sel, 4, &ta) != 0 || kb_p11_token_login(ta, X.pin) != 0)
		goto out;
	sel.token = (char *)"kb-backup-b";
	if (kb_p11_token_open(X.m, &sel, 4, &tb) != 0 || kb_p11_token_login(tb, X.pin) != 0)
		goto out;
	tap_is_int(kb_p11_backup_keys_find(ta, &wa, &sa), 0, "find A's backup keys");
	tap_is_int(kb_p11_backup_keys_find(tb, &wb, &sb), 0, "find B's backup keys");
	if (wa == NULL || wb == NULL)
		goto out;
	tap_ok(kb_p11_key_get_attrs(wa, &at) == 0 && at.sensitive && !at.extractable &&
	    at.ops == (KB_P11_OP_WRAP | KB_P11_OP_UNWRAP),
	    "the wrapping key: sensitive, not extractable, wrap and unwrap only");
	kb_p11_key_attrs_clear(&at);
	tap_ok(kb_p11_key_get_attrs(sa, &at) == 0 && at.sensitive && !at.extractable &&
	    at.ops == (KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT),
	    "the sealing key: sensitive, not extractable, encrypt and decrypt only");
	kb_p11_key_attrs_clear(&at);

	/* The sealing keys are one key. */
	memset(iv, 7, sizeof(iv));
	r = kb_p11_aes_gcm_encrypt(sa, iv, 12, (const unsigned char *)"ad", 2,
	    (const unsigned char *)"sealed on A", 11, &ct, &cl, tag);
	tap_ok(r == 0 && kb_p11_aes_gcm_decrypt(sb, iv, 12,
	    (const unsigned char *)"ad", 2, ct, cl, tag, &pt, &pl) == 0 &&
	    pl == 11 && memcmp(pt, "sealed on A", 11) == 0, "sealed on A opens on B");
	free(ct);
	free(pt);
	ct = pt = NULL;

	rsa = gen(ta, KB_P11_RSA, 2048, 0, "bk-rsa", id1, true);
	ec = gen(ta, KB_P11_EC, 0, KB_P11_P256, "bk-ec", id2, true);
	aes = gen(ta, KB_P11_AES, 256, 0, "bk-aes", id3, true);
	plain = gen(ta, KB_P11_AES, 256, 0, "bk-plain", id4, false);
	if (rsa == NULL || ec == NULL || aes == NULL || plain == NULL)
		goto out;
	tap_ok(kb_p11_key_get_attrs(rsa, &at) == 0 && at.sensitive && at.extractable &&
	    at.always_sensitive && !at.never_extractable,
	    "a backup-able key: sensitive, extractable (under a trusted key only)");
	kb_p11_key_attrs_clear(&at);

	/* Keys made without backup, or wrapped by an ordinary key: refused. */
	r = kb_p11_backup_wrap(wa, plain, &w, &wl);
	tap_is_int(r, KB_ERR_DENIED, "a key made without backup cannot leave (%s)",
	    kb_error_detail(r));
	{
		struct kb_p11_keyspec s;

		memset(&s, 0, sizeof(s));
		s.type = KB_P11_AES;
		s.bits = 256;
		s.label = "bk-kek";
		s.id = id4;
		s.id_len = 2;
		s.ops = KB_P11_OP_WRAP | KB_P11_OP_UNWRAP;
		if (kb_p11_generate(ta, &s, &other) == 0) {
			r = kb_p11_wrap_key(other, KB_P11_WRAP_AES_KWP, aes, &w, &wl);
			tap_is_int(r, KB_ERR_DENIED, "an untrusted key cannot wrap a "
			    "backup-able key (%s)", kb_error_detail(r));
		}
	}

	r2 = move(wa, wb, rsa, "bk-rsa", id1);
	e2 = move(wa, wb, ec, "bk-ec", id2);
	a2 = move(wa, wb, aes, "bk-aes", id3);
	if (kb_random(digest, sizeof(digest)) != 0)
		goto out;
	if (r2 != NULL) {
		tap_ok(kb_p11_sign_digest(r2, KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256,
		    digest, 32, &sig, &sl) == 0 && kb_p11_verify_digest(rsa,
		    KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256, digest, 32, sig, sl) == 0,
		    "the restored RSA key signs what the original verifies");
		free(sig);
		sig = NULL;
		tap_ok(kb_p11_key_get_attrs(r2, &at) == 0 && at.sensitive &&
		    at.extractable && kb_p11_key_bits(r2) == 2048,
		    "restored RSA: 2048 bits, sensitive, backup-able again");
		kb_p11_key_attrs_clear(&at);
	}
	if (e2 != NULL) {
		tap_ok(kb_p11_sign_digest(e2, KB_P11_SIG_ECDSA, KB_P11_SHA256,
		    digest, 32, &sig, &sl) == 0 && kb_p11_verify_digest(ec,
		    KB_P11_SIG_ECDSA, KB_P11_SHA256, digest, 32, sig, sl) == 0,
		    "the restored EC key signs what the original verifies");
		free(sig);
		sig = NULL;
	}
	if (a2 != NULL) {
		r = kb_p11_aes_gcm_encrypt(aes, iv, 12, NULL, 0, digest, 32, &ct, &cl, tag);
		tap_ok(r == 0 && kb_p11_aes_gcm_decrypt(a2, iv, 12, NULL, 0, ct, cl,
		    tag, &pt, &pl) == 0 && pl == 32 && memcmp(pt, digest, 32) == 0,
		    "the restored AES key opens what the original sealed");
		free(ct);
		free(pt);
		ct = pt = NULL;
	}

	/* A damaged blob makes nothing, not even the public half. */
	if (kb_p11_backup_wrap(wa, rsa, &w, &wl) == 0) {
		struct kb_p11_keyspec s;
		unsigned char *pa = NULL, *pb = NULL;
		size_t la = 0, lb = 0;

		w[wl / 2] ^= 0x40;
		memset(&s, 0, sizeof(s));
		s.type = KB_P11_RSA;
		s.label = "bk-broken";
		s.id = id4;
		s.id_len = 2;
		s.token = true;
		if (pub_parts(rsa, "n", "e", &pa, &la, &pb, &lb) == 0) {
			r = kb_p11_backup_unwrap(wb, w, wl, &s, pa, la, pb, lb, &k);
			tap_ok(r != 0 && k == NULL, "a damaged wrapped key is refused (%s)",
			    kb_error_detail(r));
			tap_is_int((int)count(tb, "bk-broken"), 0,
			    "and leaves no object behind");
		}
		free(pa);
		free(pb);
		kb_p11_key_free(k);
		k = NULL;
	}
	free(w);
	w = NULL;
	r = kb_p11_backup_unwrap(sb, digest, 32, &(struct kb_p11_keyspec){
	    .type = KB_P11_AES, .bits = 256, .label = "x", .id = id4, .id_len = 2 },
	    NULL, 0, NULL, 0, &k);
	tap_ok(r != 0 && k == NULL, "the sealing key cannot unwrap (%s)",
	    kb_error_detail(r));
 out:
	kb_p11_key_free(wa);
	kb_p11_key_free(sa);
	kb_p11_key_free(wb);
	kb_p11_key_free(sb);
	kb_p11_key_free(rsa);
	kb_p11_key_free(ec);
	kb_p11_key_free(aes);
	kb_p11_key_free(plain);
	kb_p11_key_free(other);
	kb_p11_key_free(r2);
	kb_p11_key_free(e2);
	kb_p11_key_free(a2);
	kb_secret_free(&wv);
	kb_secret_free(&sv);
	kb_p11_token_close(ta);
	kb_p11_token_close(tb);
	X.t = NULL;
	p11t_cleanup(&X);
	return tap_done();
}
