/*
 * bench_pkcs11: pkcs11/ against raw calls into the same module's function
 * list, on a fresh SoftHSM2 token: same slot, same login, same key handles.
 *
 * Each operation is measured for --seconds per side (default 1), cut into
 * ROUNDS slices that alternate raw / keybridge (and which goes first), so
 * drift in the machine's load does not favour one side.  Prints ops/s for
 * both and the ratio kb/raw; the target is >= 0.95.
 *
 * The GCM benchmark reuses one IV under one key: fine for timing, never
 * for real data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "p11test.h"

#define ROUNDS 5

static struct p11t X;
static CK_FUNCTION_LIST_PTR fl;
static CK_SESSION_HANDLE raw_s;
static kb_p11_key *k_rsa, *k_ec, *k_aes;
static unsigned long h_rsa, h_ec, h_aes;
static unsigned char digest[32], iv[12], buf16k[16384];
static kb_p11_key *made_kb[200000];
static CK_OBJECT_HANDLE made_raw[200000];
static size_t n_made_kb, n_made_raw;

static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

enum op { OP_RSA, OP_EC, OP_GCM1, OP_GCM16, OP_GEN, N_OPS };
static const char *const op_names[N_OPS] = {
	"RSA-2048 sign (PKCS#1, SHA-256)", "P-256 ECDSA sign", "AES-256-GCM encrypt 1 KiB",
	"AES-256-GCM encrypt 16 KiB", "AES-256 token key generation",
};

static int
raw_once(enum op op)
{
	unsigned char out[16384 + 16], in[64];
	CK_ULONG ol = sizeof(out);
	CK_MECHANISM m = { 0, NULL, 0 };
	CK_GCM_PARAMS gp;
	size_t len;

	switch (op) {
	case OP_RSA:
		memcpy(in, di_sha256, sizeof(di_sha256));
		memcpy(in + sizeof(di_sha256), digest, 32);
		m.mechanism = CKM_RSA_PKCS;
		if (fl->C_SignInit(raw_s, &m, h_rsa) != CKR_OK)
			return -1;
		ol = 256;
		return fl->C_Sign(raw_s, in, sizeof(di_sha256) + 32, out, &ol) == CKR_OK ? 0 : -1;
	case OP_EC:
		m.mechanism = CKM_ECDSA;
		if (fl->C_SignInit(raw_s, &m, h_ec) != CKR_OK)
			return -1;
		ol = 64;
		return fl->C_Sign(raw_s, digest, 32, out, &ol) == CKR_OK ? 0 : -1;
	case OP_GCM1:
	case OP_GCM16:
		len = op == OP_GCM1 ? 1024 : 16384;
		memset(&gp, 0, sizeof(gp));
		gp.pIv = iv;
		gp.ulIvLen = 12;
		gp.ulIvBits = 96;
		gp.ulTagBits = 128;
		m.mechanism = CKM_AES_GCM;
		m.pParameter = &gp;
		m.ulParameterLen = sizeof(gp);
		if (fl->C_EncryptInit(raw_s, &m, h_aes) != CKR_OK)
			return -1;
		ol = len + 16;
		return fl->C_Encrypt(raw_s, buf16k, len, out, &ol) == CKR_OK ? 0 : -1;
	case OP_GEN: {
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ULONG vl = 32;
		CK_BBOOL t = CK_TRUE, f = CK_FALSE;
		unsigned char id[2] = { 0xbe, 0x01 };
		CK_ATTRIBUTE tm[] = {
			{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_VALUE_LEN, &vl, sizeof(vl) }, { CKA_TOKEN, &t, 1 },
			{ CKA_PRIVATE, &t, 1 }, { CKA_LABEL, "bench", 5 }, { CKA_ID, id, 2 },
			{ CKA_SENSITIVE, &t, 1 }, { CKA_EXTRACTABLE, &f, 1 },
			{ CKA_ENCRYPT, &t, 1 }, { CKA_DECRYPT, &t, 1 }, { CKA_SIGN, &f, 1 },
			{ CKA_VERIFY, &f, 1 }, { CKA_WRAP, &t, 1 }, { CKA_UNWRAP, &t, 1 },
			{ CKA_DERIVE, &f, 1 },
		};
		CK_OBJECT_HANDLE h;

		m.mechanism = CKM_AES_KEY_GEN;
		if (fl->C_GenerateKey(raw_s, &m, tm, sizeof(tm) / sizeof(tm[0]), &h) != CKR_OK)
			return -1;
		if (n_made_raw < sizeof(made_raw) / sizeof(made_raw[0]))
			made_raw[n_made_raw++] = h;
		return 0;
	}
	default:
		return -1;
	}
}

static int
kb_once(enum op op)
{
	unsigned char *out = NULL, tag[16];
	size_t ol = 0;
	int r = -1;

	switch (op) {
	case OP_RSA:
		r = kb_p11_sign_digest(k_rsa, KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256, digest, 32,
		    &out, &ol);
		break;
	case OP_EC:
		r = kb_p11_sign_digest(k_ec, KB_P11_SIG_ECDSA, KB_P11_SHA256, digest, 32, &out, &ol);
		break;
	case OP_GCM1:
	case OP_GCM16:
		r = kb_p11_aes_gcm_encrypt(k_aes, iv, 12, NULL, 0, buf16k,
		    op == OP_GCM1 ? 1024 : 16384, &out, &ol, tag);
		break;
	case OP_GEN: {
		struct kb_p11_keyspec s;
		kb_p11_key *k = NULL;
		static const unsigned char id[2] = { 0xbe, 0x02 };

		memset(&s, 0, sizeof(s));
		s.type = KB_P11_AES;
		s.bits = 256;
		s.label = "bench";
		s.id = id;
		s.id_len = 2;
		s.token = true;
		r = kb_p11_generate(X.t, &s, &k);
		if (r == 0 && n_made_kb < sizeof(made_kb) / sizeof(made_kb[0]))
			made_kb[n_made_kb++] = k;
		else
			kb_p11_key_free(k);
		break;
	}
	default:
		break;
	}
	free(out);
	return r;
}

static void
cleanup_made(void)
{
	size_t i;

	for (i = 0; i < n_made_raw; i++)
		fl->C_DestroyObject(raw_s, made_raw[i]);
	n_made_raw = 0;
	for (i = 0; i < n_made_kb; i++) {
		if (kb_p11_key_destroy(made_kb[i]) != 0)
			fprintf(stderr, "bench: destroy failed\n");
		kb_p11_key_free(made_kb[i]);
	}
	n_made_kb = 0;
}

/* Run op for at least secs; returns ops done and adds the time taken. */
static long
slice(enum op op, bool kb, double secs, double *spent)
{
	double t0 = kb_now_mono(), t;
	long n = 0;

	do {
		if ((kb ? kb_once(op) : raw_once(op)) != 0) {
			fprintf(stderr, "bench: %s %s failed: %s\n", kb ? "keybridge" : "raw",
			    op_names[op], kb ? kb_error_detail(-1) : "");
			exit(1);
		}
		n++;
		t = kb_now_mono();
	} while (t - t0 < secs);
	*spent += t - t0;
	return n;
}

int
main(int argc, char **argv)
{
	double secs = 1.0, t_raw[N_OPS] = { 0 }, t_kb[N_OPS] = { 0 };
	long n_raw[N_OPS] = { 0 }, n_kb[N_OPS] = { 0 };
	struct kb_p11_keyspec s;
	static const unsigned char ids[3][2] = { { 0xb0, 1 }, { 0xb0, 2 }, { 0xb0, 3 } };
	bool worst_ok = true;
	int i, round, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_pkcs11 [--seconds S]\n");
			return 2;
		}
	}
	if (secs <= 0 || secs > 60)
		secs = 1.0;
	if (p11t_prepare(&X) != 0 || (r = p11t_token(&X, p11t_softhsm(), "kb-bench")) != 0) {
		fprintf(stderr, "bench: no SoftHSM2 token: %s\n", kb_error_detail(-1));
		p11t_cleanup(&X);
		return 77;
	}
	memset(&s, 0, sizeof(s));
	s.token = true;
	s.id_len = 2;
	s.type = KB_P11_RSA; s.bits = 2048; s.label = "bench-rsa"; s.id = ids[0];
	if (kb_p11_generate(X.t, &s, &k_rsa) != 0)
		goto fail;
	s.type = KB_P11_EC; s.curve = KB_P11_P256; s.label = "bench-ec"; s.id = ids[1];
	if (kb_p11_generate(X.t, &s, &k_ec) != 0)
		goto fail;
	s.type = KB_P11_AES; s.bits = 256; s.label = "bench-aes"; s.id = ids[2];
	if (kb_p11_generate(X.t, &s, &k_aes) != 0)
		goto fail;
	kb_p11_key_handles(k_rsa, &h_rsa, NULL);
	kb_p11_key_handles(k_ec, &h_ec, NULL);
	kb_p11_key_handles(k_aes, &h_aes, NULL);
	fl = kb_p11_module_function_list(X.m);
	/* Raw side: its own session on the same slot; login is per application. */
	if (fl->C_OpenSession(kb_p11_token_slot(X.t), CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &raw_s) != CKR_OK)
		goto fail;
	memset(digest, 0x42, sizeof(digest));
	memset(buf16k, 0x17, sizeof(buf16k));
	memset(iv, 0x01, sizeof(iv));
	/* Warm-up: first mechanism probes and session opening are not timed. */
	for (i = 0; i < N_OPS; i++) {
		if (raw_once((enum op)i) != 0 || kb_once((enum op)i) != 0)
			goto fail;
	}
	cleanup_made();

	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < N_OPS; i++) {
			bool kb_first = round % 2 == 1;

			if (kb_first) {
				n_kb[i] += slice((enum op)i, true, secs / ROUNDS, &t_kb[i]);
				n_raw[i] += slice((enum op)i, false, secs / ROUNDS, &t_raw[i]);
			} else {
				n_raw[i] += slice((enum op)i, false, secs / ROUNDS, &t_raw[i]);
				n_kb[i] += slice((enum op)i, true, secs / ROUNDS, &t_kb[i]);
			}
			cleanup_made();
		}
	}

	printf("%-34s %12s %14s %8s\n", "operation", "raw ops/s", "keybridge ops/s", "kb/raw");
	for (i = 0; i < N_OPS; i++) {
		double raw = n_raw[i] / t_raw[i], kb = n_kb[i] / t_kb[i];

		printf("%-34s %12.1f %14.1f %8.3f\n", op_names[i], raw, kb, kb / raw);
		if (kb / raw < 0.95)
			worst_ok = false;
	}
	printf("(%d interleaved rounds, %.2f s per side per operation; target kb/raw >= 0.95: %s)\n",
	    ROUNDS, secs, worst_ok ? "met" : "NOT met");
	fl->C_CloseSession(raw_s);
	kb_p11_key_free(k_rsa);
	kb_p11_key_free(k_ec);
	kb_p11_key_free(k_aes);
	p11t_cleanup(&X);
	return 0;
fail:
	fprintf(stderr, "bench: setup failed: %s\n", kb_error_detail(-1));
	kb_p11_key_free(k_rsa);
	kb_p11_key_free(k_ec);
	kb_p11_key_free(k_aes);
	p11t_cleanup(&X);
	return 1;
}
