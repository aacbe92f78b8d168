/*
 * test_isolate: a SoftHSM2 module loaded isolated (keybridge-p11host,
 * p11-kit's RPC), on a fresh token: the library's main flow through the
 * host, checked afterwards by pkcs11-tool loading SoftHSM in its own
 * process; concurrent calls through the connection pool; the socket
 * directory checks; a host killed under running calls; a host whose
 * parent dies.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "p11test.h"
#include "tap.h"

static struct p11t X;
static const char *host;
static char sockdir[400];

static int
skip_all(const char *why)
{
	(void)tap_skip_all(why);
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Gone: no such process, or a zombie nobody reaps (container init). */
static bool
proc_gone(long pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
		gone = p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	fclose(f);
	return gone;
}

static bool
dir_empty(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	bool empty = true;

	if (dp == NULL)
		return false;
	/* The hosts' lock files (host.c, host_lock) stay, and only they. */
	while ((e = readdir(dp)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    !(strncmp(e->d_name, "host-", 5) == 0 &&
		    strlen(e->d_name) == 5 + 16 + 5 &&
		    strcmp(e->d_name + 21, ".lock") == 0))
			empty = false;
	closedir(dp);
	return empty;
}

static kb_p11_key *
gen(enum kb_p11_key_type type, unsigned bits, enum kb_p11_curve curve,
    const char *label, unsigned char idb, unsigned ops)
{
	struct kb_p11_keyspec s;
	kb_p11_key *k = NULL;
	unsigned char id[2] = { 0xb0, idb };
	int r;

	memset(&s, 0, sizeof(s));
	s.type = type;
	s.bits = bits;
	s.curve = curve;
	s.label = label;
	s.id = id;
	s.id_len = 2;
	s.ops = ops;
	s.token = true;
	r = kb_p11_generate(X.t, &s, &k);
	tap_is_int(r, 0, "isolated: generate %s (%s)", label, r ? kb_error_detail(r) : "ok");
	return k;
}

/* ------------------------------------------------ socket directory checks */

static void
sock_dir_checks(void)
{
	char open_dir[400], other[400];
	kb_p11_module *m = NULL;
	int r;

	snprintf(open_dir, sizeof(open_dir), "%s/open", X.dir);
	if (mkdir(open_dir, 0700) != 0 || chmod(open_dir, 0770) != 0) {
		tap_ok(0, "make a group-writable directory");
		return;
	}
	r = kb_p11_module_load_isolated(p11t_softhsm(), host, open_dir, &m);
	tap_is_int(r, KB_ERR_CONFIG, "a group-writable socket directory is refused");
	tap_ok(strstr(kb_error_detail(r), "group or others") != NULL,
	    "... and the sentence says why: %s", kb_error_detail(r));
	(void)chmod(open_dir, 0755);
	r = kb_p11_module_load_isolated(p11t_softhsm(), host, open_dir, &m);
	tap_is_int(r, KB_ERR_CONFIG, "a world-readable socket directory is refused");

	/* Not ours: as root, a directory given to nobody; else /. */
	if (geteuid() == 0) {
		snprintf(other, sizeof(other), "%s/other", X.dir);
		if (mkdir(other, 0700) != 0 || chown(other, 65534, 65534) != 0) {
			tap_ok(0, "make a directory owned by nobody");
			return;
		}
	} else
		snprintf(other, sizeof(other), "/");
	r = kb_p11_module_load_isolated(p11t_softhsm(), host, other, &m);
	tap_is_int(r, KB_ERR_CONFIG, "a socket directory of another user is refused");
	tap_ok(strstr(kb_error_detail(r), "not owned") != NULL, "... %s", kb_error_detail(r));
	r = kb_p11_module_load_isolated(p11t_softhsm(), host, "relative/dir", &m);
	tap_is_int(r, KB_ERR_CONFIG, "a relative socket directory is refused");
	r = kb_p11_module_load_isolated(p11t_softhsm(), "/nonexistent/host", sockdir, &m);
	tap_is_int(r, KB_ERR_CONFIG, "a missing host program is refused");
	/* A file that is no module: the host's own sentence comes back. */
	r = kb_p11_module_load_isolated(X.conf, host, sockdir, &m);
	tap_is_int(r, KB_ERR_MODULE, "a text file as module fails in the host");
	tap_ok(strstr(kb_error_detail(r), X.conf) != NULL &&
	    strstr(kb_error_detail(r), "could not be loaded") != NULL,
	    "... with the host's sentence: %s", kb_error_detail(r));
	tap_ok(dir_empty(sockdir), "no socket left behind after failed starts");
	tap_ok(m == NULL, "no module on failure");
}

/* ------------------------------------------------------ parent death */

static void
parent_death(void)
{
	int p[2];
	long hpid = 0;
	pid_t child;
	double t0;
	bool gone = false;

	if (pipe(p) != 0) {
		tap_ok(0, "pipe");
		return;
	}
	fflush(stdout);
	child = fork();
	if (child == 0) {
		kb_p11_module *m = NULL;

		close(p[0]);
		if (kb_p11_module_load_isolated(p11t_softhsm(), host, sockdir, &m) == 0)
			hpid = kb_p11_module_host_pid(m);
		if (write(p[1], &hpid, sizeof(hpid)) != (ssize_t)sizeof(hpid))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (child < 0 || read(p[0], &hpid, sizeof(hpid)) != (ssize_t)sizeof(hpid))
		hpid = 0;
	close(p[0]);
	tap_ok(hpid > 0 && !proc_gone(hpid), "a child process loaded the module "
	    "isolated (host pid %ld)", hpid);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (hpid <= 0)
		return;
	t0 = now();
	while (now() - t0 < 5 && !(gone = proc_gone(hpid)))
		usleep(20000);
	tap_ok(gone, "the host exits when its parent is SIGKILLed (%.2f s)", now() - t0);
}

/* ------------------------------------------------------------ main flow */

static void
flow(kb_p11_module *m)
{
	struct kb_p11_uri sel, filt;
	struct kb_p11_key_attrs a;
	kb_p11_key *aes = NULL, *ec = NULL, *rsa = NULL, *tmp = NULL, **found = NULL;
	unsigned char digest[32], iv[12], tag[16], rnd[32], *ct = NULL, *pt = NULL,
	    *sig = NULL;
	size_t ctl = 0, ptl = 0, sl = 0, n = 0, i;
	struct kb_secret *bad = NULL;
	unsigned long slot;
	char *pem = NULL;
	int r;

	r = kb_p11_find_free_slot(m, &slot);
	tap_is_int(r, 0, "isolated: a free slot (%s)", r ? kb_error_detail(r) : "ok");
	r = kb_p11_init_token(m, slot, "kb-iso", X.so_pin, X.pin);
	tap_is_int(r, 0, "isolated: C_InitToken + C_InitPIN (%s)", r ? kb_error_detail(r) : "ok");
	snprintf(X.label, sizeof(X.label), "kb-iso");
	memset(&sel, 0, sizeof(sel));
	sel.token = X.label;
	r = kb_p11_token_open(m, &sel, 8, &X.t);
	tap_is_int(r, 0, "isolated: token opened (%s)", r ? kb_error_detail(r) : "ok");
	if (r != 0)
		return;
	if (kb_secret_from("not-the-pin", 11, &bad) == 0) {
		r = kb_p11_token_login(X.t, bad);
		tap_is_int(r, KB_ERR_PIN_INCORRECT, "isolated: a wrong PIN maps to "
		    "KB_ERR_PIN_INCORRECT through the RPC");
		kb_secret_free(&bad);
	}
	r = kb_p11_token_login(X.t, X.pin);
	tap_is_int(r, 0, "isolated: login (%s)", r ? kb_error_detail(r) : "ok");
	tap_ok(kb_p11_token_logged_in(X.t), "isolated: logged in");

	aes = gen(KB_P11_AES, 256, 0, "iso-aes", 1, 0);
	ec = gen(KB_P11_EC, 0, KB_P11_P256, "iso-ec", 2, 0);
	rsa = gen(KB_P11_RSA, 2048, 0, "iso-rsa", 3, 0);
	if (aes == NULL || ec == NULL || rsa == NULL)
		goto out;

	/* AES-GCM. */
	memset(iv, 7, sizeof(iv));
	r = kb_p11_aes_gcm_encrypt(aes, iv, sizeof(iv), (const unsigned char *)"aad", 3,
	    (const unsigned char *)"isolated plaintext", 18, &ct, &ctl, tag);
	/*
	 * p11-kit before 0.25 cannot carry CK_GCM_PARAMS, so its client hides
	 * CKM_AES_GCM: then a clear KB_ERR_MECHANISM; with a newer p11-kit a
	 * round trip.
	 */
	if (r == KB_ERR_MECHANISM)
		tap_ok(strstr(kb_error_detail(r), "p11-kit's RPC") != NULL,
		    "isolated: AES-GCM not carried by this p11-kit's RPC, and the "
		    "sentence says so: %s", kb_error_detail(r));
	else
		tap_ok(r == 0 && ctl == 18, "isolated: AES-GCM encrypt (%s)",
		    r ? kb_error_detail(r) : "ok");
	if (r == 0) {
		r = kb_p11_aes_gcm_decrypt(aes, iv, sizeof(iv), (const unsigned char *)"aad",
		    3, ct, ctl, tag, &pt, &ptl);
		tap_ok(r == 0 && ptl == 18 && memcmp(pt, "isolated plaintext", 18) == 0,
		    "isolated: AES-GCM decrypt round trip");
		free(pt);
		pt = NULL;
		ct[0] ^= 1;
		r = kb_p11_aes_gcm_decrypt(aes, iv, sizeof(iv), (const unsigned char *)"aad",
		    3, ct, ctl, tag, &pt, &ptl);
		tap_is_int(r, KB_ERR_CRYPTO, "isolated: a tampered ciphertext -> KB_ERR_CRYPTO");
	}
	free(ct);
	ct = NULL;

	/* ECDSA and RSA signatures. */
	memset(digest, 0x5a, sizeof(digest));
	r = kb_p11_sign_digest(ec, KB_P11_SIG_ECDSA, KB_P11_SHA256, digest, 32, &sig, &sl);
	tap_ok(r == 0 && sl == 64, "isolated: ECDSA P-256 sign");
	if (r == 0) {
		tap_is_int(kb_p11_verify_digest(ec, KB_P11_SIG_ECDSA, KB_P11_SHA256, digest,
		    32, sig, sl), 0, "isolated: ECDSA verify");
		sig[5] ^= 1;
		tap_is_int(kb_p11_verify_digest(ec, KB_P11_SIG_ECDSA, KB_P11_SHA256, digest,
		    32, sig, sl), KB_ERR_SIGNATURE, "isolated: a bad ECDSA signature -> "
		    "KB_ERR_SIGNATURE");
	}
	free(sig);
	sig = NULL;
	r = kb_p11_sign_digest(rsa, KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256, digest, 32, &sig, &sl);
	tap_ok(r == 0 && sl == 256, "isolated: RSA-2048 PKCS#1 sign");
	if (r == 0 && kb_p11_public_pem(rsa, &pem) == 0) {
		/* OpenSSL checks the token's signature with the exported key. */
		BIO *bio = BIO_new_mem_buf(pem, -1);
		EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		EVP_PKEY_CTX *c = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;

		tap_ok(c != NULL && EVP_PKEY_verify_init(c) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
		    EVP_PKEY_verify(c, sig, sl, digest, 32) == 1,
		    "isolated: OpenSSL verifies the RSA signature with the exported PEM");
		EVP_PKEY_CTX_free(c);
		EVP_PKEY_free(pk);
		BIO_free(bio);
	} else
		tap_ok(0, "isolated: RSA public PEM");
	free(pem);
	free(sig);
	sig = NULL;
	r = kb_p11_sign_digest(rsa, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, digest, 32, &sig, &sl);
	tap_ok(r == 0 && kb_p11_verify_digest(rsa, KB_P11_SIG_RSA_PSS, KB_P11_SHA256,
	    digest, 32, sig, sl) == 0, "isolated: RSA-PSS sign and verify");
	free(sig);
	sig = NULL;
	r = kb_p11_rsa_oaep_encrypt(rsa, KB_P11_SHA1, (const unsigned char *)"oaep", 4,
	    &ct, &ctl);
	tap_ok(r == 0 && ctl == 256, "isolated: RSA-OAEP encrypt");
	if (r == 0) {
		r = kb_p11_rsa_oaep_decrypt(rsa, KB_P11_SHA1, ct, ctl, &pt, &ptl);
		tap_ok(r == 0 && ptl == 4 && memcmp(pt, "oaep", 4) == 0,
		    "isolated: RSA-OAEP decrypt round trip");
		free(pt);
		pt = NULL;
	}
	free(ct);
	ct = NULL;
	tap_is_int(kb_p11_random(X.t, rnd, sizeof(rnd)), 0, "isolated: C_GenerateRandom");

	/* Find, change, destroy. */
	memset(&filt, 0, sizeof(filt));
	filt.object = "iso-ec";
	r = kb_p11_find_keys(X.t, &filt, &found, &n);
	tap_ok(r == 0 && n == 1 && kb_p11_key_is_complete(found[0]) &&
	    kb_p11_key_type(found[0]) == KB_P11_EC, "isolated: find iso-ec: one complete EC pair");
	kb_p11_keys_free(found, n);
	found = NULL;
	tap_is_int(kb_p11_key_set_label(aes, "iso-aes2"), 0, "isolated: set label");
	tap_is_int(kb_p11_key_set_ops(aes, KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT), 0,
	    "isolated: set usage flags");
	memset(&a, 0, sizeof(a));
	r = kb_p11_key_get_attrs(aes, &a);
	tap_ok(r == 0 && a.label != NULL && strcmp(a.label, "iso-aes2") == 0 &&
	    a.ops == (KB_P11_OP_ENCRYPT | KB_P11_OP_DECRYPT) && a.sensitive &&
	    !a.extractable && a.bits == 256, "isolated: attributes read back");
	kb_p11_key_attrs_clear(&a);
	tmp = gen(KB_P11_AES, 128, 0, "iso-tmp", 4, 0);
	if (tmp != NULL) {
		tap_is_int(kb_p11_key_destroy(tmp), 0, "isolated: destroy iso-tmp");
		filt.object = "iso-tmp";
		r = kb_p11_find_keys(X.t, &filt, &found, &n);
		tap_ok(r == 0 && n == 0, "isolated: iso-tmp is gone");
		kb_p11_keys_free(found, n);
		found = NULL;
		kb_p11_key_free(tmp);
	}
	filt.object = NULL;
	r = kb_p11_find_keys(X.t, NULL, &found, &n);
	tap_ok(r == 0 && n == 3, "isolated: three keys on the token (%zu)", n);
	for (i = 0; i < n; i++)
		kb_p11_key_free(found[i]);
	free(found);
out:
	kb_p11_key_free(aes);
	kb_p11_key_free(ec);
	kb_p11_key_free(rsa);
}

/* pkcs11-tool, with SoftHSM in its own process, sees what the host made. */
static void
pkcs11_tool_check(void)
{
	char line[512], out[400];
	bool aes2 = false, ec = false, rsa = false, tmp = false, usage = false, in_aes = false;
	FILE *p;
	int rc;

	if (!p11t_have("pkcs11-tool")) {
		tap_ok(1, "# SKIP pkcs11-tool missing");
		return;
	}
	rc = p11t_tool_list(&X, p11t_softhsm(), "tool.out", out, sizeof(out), NULL,
	    0);
	tap_ok(rc == 0, "pkcs11-tool -O --login ran");
	if ((p = fopen(out, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), p) != NULL) {
		if (line[0] != ' ' && line[0] != '\t') {
			in_aes = false;
			continue;
		}
		if (strstr(line, "label:") != NULL) {
			in_aes = strstr(line, "iso-aes2") != NULL;
			aes2 |= in_aes;
			ec |= strstr(line, "iso-ec") != NULL;
			rsa |= strstr(line, "iso-rsa") != NULL;
			tmp |= strstr(line, "iso-tmp") != NULL;
		}
		if (in_aes && strstr(line, "Usage:") != NULL && strstr(line, "encrypt") &&
		    strstr(line, "decrypt") && !strstr(line, "sign"))
			usage = true;
	}
	fclose(p);
	tap_ok(aes2 && ec && rsa, "pkcs11-tool lists iso-aes2, iso-ec and iso-rsa");
	tap_ok(usage, "pkcs11-tool shows iso-aes2's usage encrypt, decrypt only");
	tap_ok(!tmp, "pkcs11-tool does not list the destroyed iso-tmp");
}

/* ------------------------------------------------------------- threads */

struct worker {
	kb_p11_key *k;
	int iters;
	int fails;
	int last;
	volatile int *stop;
	double t_err;
};

static void *
sign_loop(void *arg)
{
	struct worker *w = arg;
	unsigned char d[32], *sig = NULL;
	size_t sl = 0;
	int i, r;

	memset(d, 0x33, sizeof(d));
	for (i = 0; w->iters == 0 || i < w->iters; i++) {
		if (w->stop != NULL && *w->stop)
			break;
		r = kb_p11_sign_digest(w->k, KB_P11_SIG_ECDSA, KB_P11_SHA256, d, 32, &sig, &sl);
		if (r == 0) {
			r = kb_p11_verify_digest(w->k, KB_P11_SIG_ECDSA, KB_P11_SHA256, d, 32,
			    sig, sl);
			free(sig);
			sig = NULL;
		}
		if (r != 0) {
			w->fails++;
			w->last = r;
			if (w->iters == 0) {
				w->t_err = now();
				break;
			}
		}
	}
	return NULL;
}

static kb_p11_key *
find_one(const char *label)
{
	struct kb_p11_uri f;
	kb_p11_key **found = NULL, *k = NULL;
	size_t n = 0, i;

	memset(&f, 0, sizeof(f));
	f.object = (char *)label;
	if (kb_p11_find_keys(X.t, &f, &found, &n) != 0)
		return NULL;
	for (i = 0; i < n; i++) {
		if (i == 0)
			k = found[i];
		else
			kb_p11_key_free(found[i]);
	}
	free(found);
	return k;
}

static void
concurrency(void)
{
	struct worker w[4];
	pthread_t th[4];
	struct kb_p11_pool_stats ps;
	kb_p11_key *k = find_one("iso-ec");
	int i, fails = 0;

	if (k == NULL) {
		tap_ok(0, "find iso-ec for the threads");
		return;
	}
	for (i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].k = k;
		w[i].iters = 40;
		pthread_create(&th[i], NULL, sign_loop, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		fails += w[i].fails;
	}
	tap_is_int(fails, 0, "4 threads x 40 ECDSA sign+verify through the connection pool");
	kb_p11_token_pool_stats(X.t, &ps);
	tap_ok(ps.open <= 8 && ps.reopened == 0, "pool: %u sessions open, none replaced",
	    ps.open);
	kb_p11_key_free(k);
}

/* ---------------------------------------------------------- host killed */

static void
host_killed(kb_p11_module *m)
{
	struct worker w[2];
	pthread_t th[2];
	volatile int stop = 0;
	kb_p11_key *k = find_one("iso-ec");
	unsigned char rnd[8];
	long hpid = kb_p11_module_host_pid(m);
	double t_kill, t0;
	int i, r;
	bool clean = true;

	if (k == NULL || hpid <= 0) {
		tap_ok(0, "find iso-ec and the host pid");
		kb_p11_key_free(k);
		return;
	}
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].k = k;
		w[i].stop = &stop;
		pthread_create(&th[i], NULL, sign_loop, &w[i]);
	}
	usleep(300000);
	t_kill = now();
	kill((pid_t)hpid, SIGKILL);
	/* A hang would stop here: the watchdog (alarm) fails the test. */
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 2; i++) {
		if (w[i].last != KB_ERR_DEVICE || w[i].t_err - t_kill > 2.0)
			clean = false;
	}
	tap_ok(clean, "host SIGKILLed under 2 signing threads: both stop with "
	    "KB_ERR_DEVICE within 2 s (%d, %d)", w[0].last, w[1].last);
	t0 = now();
	r = kb_p11_random(X.t, rnd, sizeof(rnd));
	tap_is_int(r, KB_ERR_DEVICE, "a later call fails with KB_ERR_DEVICE");
	tap_ok(strstr(kb_error_detail(r), "module host") != NULL &&
	    strstr(kb_error_detail(r), "exited") != NULL,
	    "... naming the module host: %s", kb_error_detail(r));
	tap_ok(now() - t0 < 0.5, "... at once (%.3f s)", now() - t0);
	tap_is_int(kb_p11_module_host_pid(m), 0, "the host is reaped");
	tap_ok(proc_gone(hpid), "no host process left");
	kb_p11_key_free(k);
	t0 = now();
	kb_p11_token_close(X.t);
	X.t = NULL;
	kb_p11_module_free(m);
	tap_ok(now() - t0 < 1.0, "closing the token and freeing the module take "
	    "%.3f s", now() - t0);
}

int
main(void)
{
	kb_p11_module *m = NULL, *m2 = NULL, *m3 = NULL;
	char exe[512], link[64];
	struct stat st;
	ssize_t n;
	long hpid;
	int r;

	if (stat(p11t_softhsm(), &st) != 0)
		return skip_all("SoftHSM2 module not installed");
	if ((host = getenv("KB_P11HOST")) == NULL || stat(host, &st) != 0)
		return skip_all("KB_P11HOST does not name the built keybridge-p11host");
	if (p11t_prepare(&X) != 0)
		return skip_all("cannot create a temporary token directory");
	alarm(300);     /* a hang fails the test instead of blocking the suite */
	snprintf(sockdir, sizeof(sockdir), "%s/run", X.dir);
	if (mkdir(sockdir, 0700) != 0)
		return skip_all("cannot create the socket directory");

	sock_dir_checks();
	/* Before anything is loaded here, so the child's registry is empty. */
	parent_death();

	r = kb_p11_module_load_isolated(p11t_softhsm(), host, sockdir, &m);
	tap_is_int(r, 0, "SoftHSM loaded isolated (%s)", r ? kb_error_detail(r) : "ok");
	if (r != 0)
		goto out;
	X.m = m;
	hpid = kb_p11_module_host_pid(m);
	snprintf(link, sizeof(link), "/proc/%ld/exe", hpid);
	n = readlink(link, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	tap_ok(kb_p11_module_isolated(m) && hpid > 0 && strstr(exe, "keybridge-p11host"),
	    "the module runs in keybridge-p11host (pid %ld)", hpid);
	tap_ok(dir_empty(sockdir), "the host's socket is removed once connected");
	tap_ok(kb_p11_module_load_isolated(p11t_softhsm(), host, sockdir, &m2) == 0 &&
	    m2 == m, "loading the same path isolated again returns the same module");
	tap_ok(kb_p11_module_load(p11t_softhsm(), &m3) == 0 && m3 != m &&
	    !kb_p11_module_isolated(m3), "an in-process load of the path is another module");
	kb_p11_module_free(m2);
	kb_p11_module_free(m3);

	flow(m);
	if (X.t != NULL) {
		pkcs11_tool_check();
		concurrency();
		host_killed(m);
		X.m = NULL;
	}
out:
	p11t_cleanup(&X);
	return tap_done();
}
