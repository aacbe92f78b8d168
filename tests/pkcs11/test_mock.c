/*
 * test_mock.c: what no real token does on demand, through kb-mock-p11
 * (forwarding to SoftHSM2): sessions dropped mid-operation, device
 * errors, a wrong or locked PIN, hidden mechanisms, C_GetInterface.
 *
 * The mock reads its environment once per process, so each scenario runs
 * in a child (this program re-executed with "child SCENARIO"); the child
 * prints "CHECK 0|1 text" lines that the parent turns into TAP.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11test.h"
#include "tap.h"

/* meson's TAP runner counts exit status 77 as an error: skip with 0. */
static int
skip_all(const char *why)
{
	(void)tap_skip_all(why);
	return 0;
}

static const unsigned char ec_id[] = { 0xec, 0x01 };
static const unsigned char rsa_id[] = { 0x5a, 0x01 };
static const unsigned char aes_id[] = { 0xae, 0x01 };

/* ------------------------------------------------------------- child */

static int child_fail;

static void
check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("CHECK %d ", ok ? 1 : 0);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		child_fail = 1;
}

static int
count_lines(const char *file, const char *name)
{
	char line[128];
	FILE *f = fopen(file, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, name) == 0)
			n++;
	}
	fclose(f);
	return n;
}

static kb_p11_key *
find1(kb_p11_token *t, const unsigned char *id)
{
	struct kb_p11_uri f;
	kb_p11_key **ks = NULL, *k = NULL;
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	f.id = (unsigned char *)id;
	f.id_len = 2;
	f.has_id = true;
	if (kb_p11_find_keys(t, &f, &ks, &n) == 0 && n == 1) {
		k = ks[0];
		ks[0] = NULL;
	}
	kb_p11_keys_free(ks, n);
	return k;
}

static int
sign_ec(kb_p11_key *k)
{
	unsigned char dg[32] = { 9 }, *sig = NULL;
	size_t sl = 0;
	int r;

	r = kb_p11_sign_digest(k, KB_P11_SIG_ECDSA, KB_P11_SHA256, dg, 32, &sig, &sl);
	if (r == 0)
		r = kb_p11_verify_digest(k, KB_P11_SIG_ECDSA, KB_P11_SHA256, dg, 32, sig, sl);
	free(sig);
	return r;
}

struct thr {
	kb_p11_key *k;
	int ok;
};

static void *
thread_sign(void *arg)
{
	struct thr *t = arg;
	int i;

	for (i = 0; i < 10; i++)
		if (sign_ec(t->k) == 0)
			t->ok++;
	return NULL;
}

static int
child(const char *sc)
{
	const char *mock = getenv("KB_MOCK_MODULE"), *cf = getenv("KB_MOCK_COUNT_FILE");
	const char *label = getenv("KB_TEST_LABEL"), *pinfile = getenv("KB_TEST_PINFILE");
	struct kb_secret *pin = NULL, *wrong = NULL;
	kb_p11_module *m = NULL, *direct = NULL;
	kb_p11_token *t = NULL;
	kb_p11_key *ec = NULL, *rsa = NULL, *aes = NULL;
	struct kb_p11_uri sel;
	struct kb_p11_pool_stats ps;
	int r;

	if (kb_secret_read_file(pinfile, &pin) != 0 ||
	    kb_secret_from("not-the-pin", 11, &wrong) != 0) {
		check(0, "read PIN file");
		return 1;
	}
	if (strcmp(sc, "already-init") == 0) {
		/* SoftHSM loaded directly first: the mock's C_Initialize then
		 * reaches an initialised module. */
		r = kb_p11_module_load(getenv("KB_SOFTHSM_MODULE"), &direct);
		check(r == 0, "load SoftHSM directly");
	}
	r = kb_p11_module_load(mock, &m);
	check(r == 0, "%s: load the mock module (%s)", sc, r ? kb_error_detail(r) : "ok");
	if (r != 0)
		goto out;
	memset(&sel, 0, sizeof(sel));
	sel.token = (char *)label;
	r = kb_p11_token_open(m, &sel, 4, &t);
	check(r == 0, "%s: open token (%s)", sc, r ? kb_error_detail(r) : "ok");
	if (r != 0)
		goto out;

	if (strcmp(sc, "wrongpin") == 0) {
		r = kb_p11_token_login(t, wrong);
		check(r == KB_ERR_PIN_INCORRECT, "wrong PIN -> KB_ERR_PIN_INCORRECT (%d)", r);
		check(strstr(kb_error_detail(r), "not retried") != NULL, "message: %s",
		    kb_error_detail(r));
		check(!kb_p11_token_logged_in(t), "not logged in");
		ec = find1(t, ec_id);
		check(ec == NULL, "find after a wrong PIN fails");
		{
			struct kb_p11_uri f;
			kb_p11_key **ks = NULL;
			size_t n = 0;

			memset(&f, 0, sizeof(f));
			r = kb_p11_find_keys(t, &f, &ks, &n);
			check(r == KB_ERR_PIN_INCORRECT, "operations report KB_ERR_PIN_INCORRECT");
			r = kb_p11_find_keys(t, &f, &ks, &n);
			check(r == KB_ERR_PIN_INCORRECT, "again, still without a C_Login");
		}
		check(count_lines(cf, "C_Login") == 1, "C_Login called exactly once (%d)",
		    count_lines(cf, "C_Login"));
		r = kb_p11_token_login(t, pin);
		check(r == 0, "an explicit login with the right PIN works");
		ec = find1(t, ec_id);
		check(ec != NULL && sign_ec(ec) == 0, "and operations work again");
		check(count_lines(cf, "C_Login") == 2, "C_Login called twice in all");
		goto out;
	}
	r = kb_p11_token_login(t, pin);
	if (strcmp(sc, "locked") == 0) {
		check(r == KB_ERR_PIN_LOCKED, "locked PIN -> KB_ERR_PIN_LOCKED (%d)", r);
		check(kb_err_exit_code(r) == 7, "exit code 7");
		{
			struct kb_p11_uri f;
			kb_p11_key **ks = NULL;
			size_t n = 0;

			memset(&f, 0, sizeof(f));
			check(kb_p11_find_keys(t, &f, &ks, &n) == KB_ERR_PIN_LOCKED,
			    "operations report KB_ERR_PIN_LOCKED");
		}
		check(count_lines(cf, "C_Login") == 1, "C_Login called once");
		goto out;
	}
	check(r == 0, "%s: login (%s)", sc, r ? kb_error_detail(r) : "ok");
	ec = find1(t, ec_id);
	rsa = find1(t, rsa_id);
	aes = find1(t, aes_id);
	check(ec && rsa && aes, "%s: keys found", sc);
	if (!ec || !rsa || !aes)
		goto out;

	if (strcmp(sc, "reopen") == 0) {
		r = sign_ec(ec);
		check(r == 0, "sign succeeds although C_Sign said SESSION_HANDLE_INVALID once (%s)",
		    r ? kb_error_detail(r) : "ok");
		kb_p11_token_pool_stats(t, &ps);
		check(ps.reopened == 1, "one session replaced (%lu)", ps.reopened);
		check(count_lines(cf, "C_Sign") == 2, "C_Sign called twice (%d)",
		    count_lines(cf, "C_Sign"));
		check(count_lines(cf, "C_CloseSession") >= 1, "the broken session was closed");
	} else if (strcmp(sc, "threads") == 0) {
		pthread_t th[4];
		struct thr st[4];
		int i, total = 0;

		for (i = 0; i < 4; i++) {
			st[i].k = ec;
			st[i].ok = 0;
			pthread_create(&th[i], NULL, thread_sign, &st[i]);
		}
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			total += st[i].ok;
		}
		check(total == 40, "4 threads x 10 signs succeed through 3 dropped sessions (%d)",
		    total);
		kb_p11_token_pool_stats(t, &ps);
		check(ps.reopened == 3, "three sessions replaced (%lu)", ps.reopened);
		check(ps.open <= 4, "never more than max sessions (%u)", ps.open);
	} else if (strcmp(sc, "device") == 0) {
		r = sign_ec(ec);
		check(r == KB_ERR_DEVICE, "CKR_DEVICE_ERROR -> KB_ERR_DEVICE (%d)", r);
		check(kb_err_exit_code(r) == 5, "exit code 5");
		r = sign_ec(ec);
		check(r == 0, "the next operation works on a fresh session");
	} else if (strcmp(sc, "relogin") == 0) {
		r = sign_ec(ec);
		check(r == 0, "sign succeeds after the module forgot the login");
		check(count_lines(cf, "C_Login") == 2, "logged in again once (%d C_Login)",
		    count_lines(cf, "C_Login"));
	} else if (strcmp(sc, "hide") == 0) {
		unsigned char iv[12] = { 0 }, tag[16], dg[32] = { 0 }, *o = NULL;
		size_t ol = 0;

		r = kb_p11_token_check_mechanism(t, 0x1087, 0);
		check(r == KB_ERR_MECHANISM && strstr(kb_error_detail(r), "CKM_AES_GCM") &&
		    strstr(kb_error_detail(r), label), "hidden GCM: %s", kb_error_detail(r));
		r = kb_p11_aes_gcm_encrypt(aes, iv, 12, NULL, 0, dg, 32, &o, &ol, tag);
		check(r == KB_ERR_MECHANISM && strstr(kb_error_detail(r), "does not support CKM_AES_GCM"),
		    "GCM encrypt -> KB_ERR_MECHANISM: %s", kb_error_detail(r));
		r = kb_p11_sign_digest(rsa, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, dg, 32, &o, &ol);
		check(r == KB_ERR_MECHANISM && strstr(kb_error_detail(r), "CKM_RSA_PKCS_PSS"),
		    "PSS sign -> KB_ERR_MECHANISM: %s", kb_error_detail(r));
		check(kb_err_exit_code(r) == 8, "exit code 8");
		r = kb_p11_sign_digest(rsa, KB_P11_SIG_RSA_PKCS1, KB_P11_SHA256, dg, 32, &o, &ol);
		check(r == 0, "PKCS#1 v1.5 still works");
		free(o);
		o = NULL;
		r = kb_p11_sign_digest(rsa, KB_P11_SIG_RSA_PSS, KB_P11_SHA256, dg, 32, &o, &ol);
		check(count_lines(cf, "C_GetMechanismInfo") >= 1 &&
		    count_lines(cf, "C_SignInit") == 1, "a missing mechanism never reaches C_SignInit");
	} else if (strcmp(sc, "iface") == 0 || strcmp(sc, "iface-fail") == 0 ||
	    strcmp(sc, "already-init") == 0) {
		check(sign_ec(ec) == 0, "sign works");
		if (strcmp(sc, "iface") == 0) {
			check(count_lines(cf, "C_GetInterface") == 1 &&
			    count_lines(cf, "C_GetFunctionList") == 0,
			    "C_GetInterface preferred, C_GetFunctionList not called");
		} else if (strcmp(sc, "iface-fail") == 0) {
			check(count_lines(cf, "C_GetInterface") == 1 &&
			    count_lines(cf, "C_GetFunctionList") == 1,
			    "C_GetFunctionList used when C_GetInterface fails");
		} else {
			check(count_lines(cf, "C_Initialize") == 1, "C_Initialize reached the mock");
		}
	}
out:
	kb_p11_key_free(ec);
	kb_p11_key_free(rsa);
	kb_p11_key_free(aes);
	kb_p11_token_close(t);
	kb_p11_module_free(m);
	if (direct != NULL) {
		kb_p11_module_free(direct);
		check(1, "SoftHSM finalised after the mock let go (C_Finalize not the mock's)");
	}
	if (strcmp(sc, "already-init") == 0 && cf != NULL)
		check(count_lines(cf, "C_Finalize") == 0,
		    "the mock's module saw CKR_CRYPTOKI_ALREADY_INITIALIZED and did not finalise");
	kb_secret_free(&pin);
	kb_secret_free(&wrong);
	return child_fail;
}

/* ------------------------------------------------------------ parent */

static struct p11t X;
static char self[4096];

static void
run(const char *sc, const char *fail, const char *hide)
{
	char cf[400], line[1024];
	int fds[2], st = 0;
	pid_t pid;
	FILE *f;

	snprintf(cf, sizeof(cf), "%s/count-%s", X.dir, sc);
	if (pipe(fds) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 1);
		setenv("KB_MOCK_COUNT_FILE", cf, 1);
		if (fail)
			setenv("KB_MOCK_FAIL", fail, 1);
		if (hide)
			setenv("KB_MOCK_HIDE_MECH", hide, 1);
		setenv("KB_TEST_LABEL", X.label, 1);
		setenv("KB_TEST_PINFILE", X.pinfile, 1);
		execl(self, self, "child", sc, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "CHECK ", 6) == 0)
			tap_ok(line[6] == '1', "[%s] %s", sc, line + 8);
		else
			tap_diag("[%s] %s", sc, line);
	}
	if (f)
		fclose(f);
	waitpid(pid, &st, 0);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "[%s] child exited cleanly (%d)", sc, st);
}

int
main(int argc, char **argv)
{
	struct kb_p11_keyspec s;
	kb_p11_key *k = NULL;
	const char *mock = getenv("KB_MOCK_MODULE");
	struct stat st;
	ssize_t n;
	int r;

	if (argc == 3 && strcmp(argv[1], "child") == 0)
		return child(argv[2]);
	if (stat(p11t_softhsm(), &st) != 0)
		return skip_all("SoftHSM2 module not installed");
	if (mock == NULL || stat(mock, &st) != 0)
		return skip_all("KB_MOCK_MODULE not set or not built");
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return skip_all("cannot find own executable");
	self[n] = '\0';
	setenv("KB_SOFTHSM_MODULE", p11t_softhsm(), 1);
	if (p11t_prepare(&X) != 0)
		return skip_all("cannot create a temporary token directory");
	/* The token and its keys, made directly on SoftHSM. */
	r = p11t_token(&X, p11t_softhsm(), "kb-mock");
	tap_is_int(r, 0, "token for the mock tests (%s)", r ? kb_error_detail(r) : "ok");
	memset(&s, 0, sizeof(s));
	s.token = true;
	s.type = KB_P11_EC;
	s.curve = KB_P11_P256;
	s.label = "mock-ec";
	s.id = ec_id;
	s.id_len = 2;
	tap_is_int(r ? r : kb_p11_generate(X.t, &s, &k), 0, "EC key");
	kb_p11_key_free(k);
	k = NULL;
	s.type = KB_P11_RSA;
	s.bits = 2048;
	s.label = "mock-rsa";
	s.id = rsa_id;
	tap_is_int(r ? r : kb_p11_generate(X.t, &s, &k), 0, "RSA key");
	kb_p11_key_free(k);
	k = NULL;
	s.type = KB_P11_AES;
	s.bits = 256;
	s.label = "mock-aes";
	s.id = aes_id;
	tap_is_int(r ? r : kb_p11_generate(X.t, &s, &k), 0, "AES key");
	kb_p11_key_free(k);
	/* Let go of SoftHSM so every child starts from its files. */
	kb_p11_token_close(X.t);
	X.t = NULL;
	kb_p11_module_free(X.m);
	X.m = NULL;
	if (r == 0) {
		run("reopen", "C_Sign=CKR_SESSION_HANDLE_INVALID@1", NULL);
		run("threads", "C_Sign=CKR_SESSION_HANDLE_INVALID@3", NULL);
		run("device", "C_Sign=CKR_DEVICE_ERROR@1", NULL);
		run("wrongpin", NULL, NULL);
		run("locked", "C_Login=CKR_PIN_LOCKED", NULL);
		run("relogin", "C_Sign=CKR_USER_NOT_LOGGED_IN@1", NULL);
		run("hide", NULL, "CKM_AES_GCM,CKM_RSA_PKCS_PSS");
		run("iface", NULL, NULL);
		run("iface-fail", "C_GetInterface=CKR_FUNCTION_FAILED", NULL);
		run("already-init", NULL, NULL);
	}
	p11t_cleanup(&X);
	return tap_done();
}
