/*
 * backup.c: the two keys that let a token's keys leave it as backups
 * (kb_pkcs11.h, "Backups"; docs/backup.md).
 *
 * PKCS#11 has no way to copy a key that is not extractable; its answer
 * is CKA_WRAP_WITH_TRUSTED: such a key may leave the token only wrapped
 * under a key the security officer marked CKA_TRUSTED.  The SO can make
 * only public objects, so the wrapping key is public; the sealing key,
 * which the user makes, is what keeps a backup blob closed to anyone
 * without the user PIN.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static CK_BBOOL bt = CK_TRUE, bf = CK_FALSE;
static const CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
static const CK_KEY_TYPE aes_type = CKK_AES;

/* Objects of the session's view with this label (secret keys), at most 4. */
static int
count_label(struct p11s *s, const char *label, size_t *n)
{
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, (void *)&secret_class, sizeof(secret_class) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE *h = NULL;
	int r;

	if ((r = p11c_find(s, tm, 2, 4, &h, n)) != 0)
		return r;
	free(h);
	return 0;
}

static int
make_wrap_key(struct p11s *s, const struct kb_secret *value)
{
	/* Whatever it unwraps stays sensitive and wrappable by trusted keys only. */
	CK_ATTRIBUTE unwrap_tm[] = {
		{ CKA_SENSITIVE, &bt, sizeof(bt) },
		{ CKA_WRAP_WITH_TRUSTED, &bt, sizeof(bt) },
	};
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, (void *)&secret_class, sizeof(secret_class) },
		{ CKA_KEY_TYPE, (void *)&aes_type, sizeof(aes_type) },
		{ CKA_TOKEN, &bt, sizeof(bt) },
		{ CKA_PRIVATE, &bf, sizeof(bf) },
		{ CKA_TRUSTED, &bt, sizeof(bt) },
		{ CKA_SENSITIVE, &bt, sizeof(bt) },
		{ CKA_EXTRACTABLE, &bf, sizeof(bf) },
		{ CKA_MODIFIABLE, &bf, sizeof(bf) },
		{ CKA_WRAP, &bt, sizeof(bt) },
		{ CKA_UNWRAP, &bt, sizeof(bt) },
		{ CKA_ENCRYPT, &bf, sizeof(bf) },
		{ CKA_DECRYPT, &bf, sizeof(bf) },
		{ CKA_SIGN, &bf, sizeof(bf) },
		{ CKA_VERIFY, &bf, sizeof(bf) },
		{ CKA_DERIVE, &bf, sizeof(bf) },
		{ CKA_LABEL, (void *)KB_P11_BACKUP_WRAP_LABEL,
		    sizeof(KB_P11_BACKUP_WRAP_LABEL) - 1 },
		{ CKA_UNWRAP_TEMPLATE, unwrap_tm, sizeof(unwrap_tm) },
		{ CKA_VALUE, value->data, value->len },
	};
	CK_OBJECT_HANDLE h;

	return p11c_create_object(s, tm, sizeof(tm) / sizeof(tm[0]), &h);
}

static int
make_seal_key(struct p11s *s, const struct kb_secret *value)
{
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, (void *)&secret_class, sizeof(secret_class) },
		{ CKA_KEY_TYPE, (void *)&aes_type, sizeof(aes_type) },
		{ CKA_TOKEN, &bt, sizeof(bt) },
		{ CKA_PRIVATE, &bt, sizeof(bt) },
		{ CKA_SENSITIVE, &bt, sizeof(bt) },
		{ CKA_EXTRACTABLE, &bf, sizeof(bf) },
		{ CKA_MODIFIABLE, &bf, sizeof(bf) },
		{ CKA_ENCRYPT, &bt, sizeof(bt) },
		{ CKA_DECRYPT, &bt, sizeof(bt) },
		{ CKA_WRAP, &bf, sizeof(bf) },
		{ CKA_UNWRAP, &bf, sizeof(bf) },
		{ CKA_SIGN, &bf, sizeof(bf) },
		{ CKA_VERIFY, &bf, sizeof(bf) },
		{ CKA_DERIVE, &bf, sizeof(bf) },
		{ CKA_LABEL, (void *)KB_P11_BACKUP_SEAL_LABEL,
		    sizeof(KB_P11_BACKUP_SEAL_LABEL) - 1 },
		{ CKA_VALUE, value->data, value->len },
	};
	CK_OBJECT_HANDLE h;

	return p11c_create_object(s, tm, sizeof(tm) / sizeof(tm[0]), &h);
}

int
kb_p11_backup_keys_init(kb_p11_module *m, unsigned long slot_id,
    const struct kb_secret *so_pin, const struct kb_secret *user_pin,
    const struct kb_secret *wrap_value, const struct kb_secret *seal_value)
{
	kb_p11_token tmp;
	struct p11s s;
	size_t n = 0;
	int r;

	if (m == NULL || so_pin == NULL || user_pin == NULL ||
	    wrap_value == NULL || seal_value == NULL)
		return kb_error_set(KB_ERR_INVALID, "backup keys need the SO PIN, "
		    "the user PIN and two key values");
	if (wrap_value->len != 32 || seal_value->len != 32)
		return kb_error_set(KB_ERR_INVALID, "backup keys are AES-256 keys");
	memset(&tmp, 0, sizeof(tmp));
	tmp.m = m;
	memset(&s, 0, sizeof(s));
	s.t = &tmp;
	if ((r = p11c_open_session(m, slot_id, &s.h)) != 0)
		return r;
	/* The user's view first: it sees both keys, the SO's only the public one. */
	if ((r = p11c_login(&s, CKU_USER, user_pin)) != 0)
		goto out;
	if ((r = count_label(&s, KB_P11_BACKUP_SEAL_LABEL, &n)) == 0 && n == 0)
		r = count_label(&s, KB_P11_BACKUP_WRAP_LABEL, &n);
	(void)p11c_logout(&s);
	if (r != 0)
		goto out;
	if (n != 0) {
		r = kb_error_set(KB_ERR_CONFLICT, "the token has backup keys already");
		goto out;
	}
	if ((r = p11c_login(&s, CKU_SO, so_pin)) != 0)
		goto out;
	r = make_wrap_key(&s, wrap_value);
	(void)p11c_logout(&s);
	if (r != 0)
		goto out;
	if ((r = p11c_login(&s, CKU_USER, user_pin)) != 0)
		goto out;
	r = make_seal_key(&s, seal_value);
	(void)p11c_logout(&s);
	/*
	 * A wrapping key without its sealing key is harmless (nothing can be
	 * sealed) and a second run reports the conflict: the SO removes it.
	 */
 out:
	p11c_close_session(m, s.h);
	if (r < 0 && r <= KB_P11_RETRY_SESSION)
		r = KB_ERR_DEVICE;
	return r;
}

static int
find_one(kb_p11_token *t, const char *label, kb_p11_key **out)
{
	struct kb_p11_uri f;
	kb_p11_key **keys = NULL;
	size_t n = 0;
	int r;

	memset(&f, 0, sizeof(f));
	f.object = (char *)label;
	f.type = (char *)"secret-key";
	if ((r = kb_p11_find_keys(t, &f, &keys, &n)) != 0)
		return r;
	if (n != 1 || kb_p11_key_type(keys[0]) != KB_P11_AES) {
		kb_p11_keys_free(keys, n);
		return kb_error_set(KB_ERR_NOT_FOUND, "the token has %s key '%s'",
		    n == 0 ? "no" : "more than one", label);
	}
	*out = keys[0];
	free(keys);
	return 0;
}

int
kb_p11_backup_keys_find(kb_p11_token *t, kb_p11_key **wrap, kb_p11_key **seal)
{
	kb_p11_key *w = NULL;
	int r;

	if (t == NULL || wrap == NULL || seal == NULL)
		return kb_error_set(KB_ERR_INVALID, "no token");
	if ((r = find_one(t, KB_P11_BACKUP_WRAP_LABEL, &w)) != 0)
		return r;
	if ((r = find_one(t, KB_P11_BACKUP_SEAL_LABEL, seal)) != 0) {
		kb_p11_key_free(w);
		return r;
	}
	*wrap = w;
	return 0;
}
