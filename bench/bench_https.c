/*
 * bench_https: keybridged's Key Vault keys API over HTTPS (issue 4, "Speed").
 *
 * One agent, one run, two clients:
 *
 *  - this program, a C client: libcurl, one easy handle per thread (--threads,
 *    default 2), keep-alive, TLS verified with the dev CA (CURLOPT_CAINFO);
 *  - bench/https-sdk.mjs: the official Azure SDK for JavaScript
 *    (@azure/keyvault-keys from tests/sdk/node_modules), same concurrency.
 *
 * Each client runs the same workload:
 *
 *   setup    --rsa-keys RSA-2048 keys (default 4), not timed: creating RSA
 *            keys in SoftHSM costs a prime search each (tens of ms to
 *            seconds), which would make "create" a measure of SoftHSM's
 *            RSA key generation rather than of the agent;
 *   create   --keys EC P-256 keys (default 200), kty "EC": cheap on the token,
 *            so the figure shows the agent's own cost per create (store
 *            intent and commit, token object, JSON);
 *   get      each of them --gets times (default 10), latest version;
 *   RS256    --signs SHA-256 digests (default 1000), RS256, round-robin over
 *            the RSA keys;
 *   ES256    the same digests, ES256, round-robin over the first --rsa-keys
 *            EC keys (cheap on the token: shows the HTTPS/JSON overhead).
 *
 * For every phase: ops/s, TLS handshakes (C: CURLINFO_NUM_CONNECTS summed;
 * SDK: calls of tls.connect), and the agent's CPU time per operation (utime
 * + stime from /proc/PID/stat, delta over the phase; the SDK phases are
 * bracketed exactly: the script announces a phase and waits for a "go" on
 * its stdin, and says when it is done).  utime and stime are sampled at
 * clock ticks; the row "same, schedstat" gives the scheduler's exact
 * runtime of the agent's threads (/proc/PID/task/TID/schedstat) as a
 * cross-check.
 *
 * Baseline (the target): raw C_Sign in this process, on the same
 * SoftHSM token and the very key objects the agent signs with, logged in
 * with the dev environment's PIN file, with the mechanism the agent uses
 * for RS256 on a digest (CKM_RSA_PKCS over the SHA-256 DigestInfo, see
 * pkcs11/ops.c); ES256 likewise with CKM_ECDSA.  CPU time per sign from
 * CLOCK_PROCESS_CPUTIME_ID, with --threads signing threads (each its own
 * session: the token and the CPUs see the parallelism they see through the
 * agent); the C client's sign phases run in 5 slices, each next to a raw
 * slice of the same digests, which side first alternating.  Target:
 *
 *   agent CPU per RS256 sign (C client) / raw C_Sign CPU <= 1.2
 *
 * The same ratio for the SDK-driven phase is printed for information.  The
 * first signature on each key is checked: RS256 (deterministic) must equal
 * the raw C_Sign of the same digest; ES256 must pass C_Verify.  The SDK
 * script verifies its own signatures with node's crypto.
 *
 * Modes:
 *   default          a temporary directory; `keybridge dev up --dir TMP/dev
 *                    --https` starts the agent; `dev down` and removal at the
 *                    end;
 *   --dir DIR        a dev environment DIR made (or started again) with
 *                    `dev up --dir DIR --https`; left running, keys left in it;
 *   --url U --ca F --token-file F [--pid PID]
 *                    any running agent; no raw baseline (no PIN), agent CPU
 *                    only with --pid.
 * Key names carry a random run prefix, so runs never collide.
 *
 *   bench_https [--keys N] [--gets N] [--signs N] [--rsa-keys N] [--threads N]
 *               [--cli PATH] [--agent PATH] [--module PATH]
 *               [--node PATH] [--sdk SCRIPT | --no-sdk]
 *               [--dir DIR | --url URL --ca FILE --token-file FILE [--pid PID]]
 *               [--tap] [--strict]
 *
 * --tap prints TAP (each figure measured, signatures checked; the target is
 * not asserted); --strict makes a missed target exit 3.  Progress on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include "benchdev.h"
#include "p11test.h"

#define API "api-version=7.6"
#define RESP_CAP (1u << 20)
#define MAX_THREADS 16
#define MAX_RSA 64
#define LINE_CAP 8192
#define ROUNDS 5

enum phase_id { PH_CREATE, PH_GET, PH_RS, PH_ES, N_PH };
static const char *const ph_name[N_PH] = { "create", "get", "sign-rs256", "sign-es256" };

struct phase {
	long ops;
	double wall;          /* s */
	double agent_cpu;     /* s, -1 unknown */
	double agent_sched;   /* s, the scheduler's figure (stderr only) */
	double client_cpu;    /* s */
	long connects;        /* TLS handshakes */
	bool done;
};

struct key {
	char name[80];
	char ver[40];         /* 32 hex digits */
};

struct opts {
	long keys, gets, signs, rsa;
	int threads;
	const char *module;
	struct bench_common_opts c;
};

static struct opts O;
static char tmpdir[256], devdir[300], run_id[16];
static char *url, *ca_file, *tok_file, *hsm_conf;
static bool own_agent;            /* we made it: dev down + remove at the end */
static volatile pid_t agent_pid = -1;
static volatile pid_t node_pid = -1;
static struct curl_slist *hdr_get, *hdr_json;
static atomic_int failed;

static struct key *eck, *rsak;
static long n_es;                 /* EC keys signed with: min(--rsa-keys, --keys) */
static unsigned char (*dig)[32];
static char **dig_b64;

/* First signature on each key, for the checks. */
static unsigned char rs_sig[MAX_RSA][256];
static unsigned char es_sig[MAX_RSA][64];
static atomic_int rs_sig_ok[MAX_RSA], es_sig_ok[MAX_RSA];

static struct phase cph[N_PH], sph[N_PH];

/* Raw side. */
static kb_p11_module *raw_m;
static kb_p11_token *raw_t;
static CK_FUNCTION_LIST_PTR fl;
static CK_SESSION_HANDLE raw_s, raw_ses[MAX_THREADS];
static CK_OBJECT_HANDLE raw_rsa[MAX_RSA], raw_ec[MAX_RSA], raw_ec_pub[MAX_RSA];
static double raw_rs_cpu, raw_es_cpu, raw_rs_wall;
static long raw_rs_n, raw_es_n;

static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

static void stop_agent(void);

static void
die(const char *what)
{
	fprintf(stderr, "bench_https: %s\n", what);
	if (node_pid > 0) {
		kill(node_pid, SIGKILL);
		waitpid(node_pid, NULL, 0);
	}
	stop_agent();                 /* only the agent we started */
	p11t_rmtree(tmpdir);          /* our files; --dir's DIR is elsewhere */
	exit(1);
}

static void
on_signal(int sig)
{
	if (node_pid > 0)
		kill(node_pid, SIGKILL);
	if (own_agent && agent_pid > 0)
		kill(agent_pid, SIGKILL);
	_exit(128 + sig);
}

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* ------------------------------------------------------------ CPU time */

/* CPU seconds (user + system) of pid, all threads, from /proc/PID/stat. */
static double
pid_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static double
proc_cputime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- HTTP */

struct worker {
	pthread_t th;
	CURL *h;
	struct kb_buf rb;
	long connects;
	char url[1024];
	char body[256];
};

static struct worker W[MAX_THREADS];
static enum phase_id cur_phase;
static atomic_long next_op;
static long phase_total;

static size_t
body_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct kb_buf *b = ud;

	/* bounded: a body over RESP_CAP fails the transfer */
	if (kb_buf_append(b, p, sz * n) != 0)
		return 0;
	return sz * n;
}

static void
worker_init(struct worker *w)
{
	memset(w, 0, sizeof(*w));
	if ((w->h = curl_easy_init()) == NULL)
		die("curl_easy_init failed");
	kb_buf_init(&w->rb, RESP_CAP);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, &w->rb);
	curl_easy_setopt(w->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(w->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(w->h, CURLOPT_PROXY, "");   /* loopback: never a proxy */
	/* TLS verified against the dev CA, never switched off */
	curl_easy_setopt(w->h, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(w->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(w->h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(w->h, CURLOPT_TCP_KEEPALIVE, 1L);
}

static void
worker_free(struct worker *w)
{
	curl_easy_cleanup(w->h);
	w->h = NULL;
	kb_buf_free(&w->rb);
}

/* One request; path is everything after the base URL.  HTTP status or -1. */
static long
http(struct worker *w, const char *path, const char *body)
{
	long status = -1, nc = 0;
	CURLcode cr;

	kb_buf_reset(&w->rb);
	snprintf(w->url, sizeof(w->url), "%s%s", url, path);
	curl_easy_setopt(w->h, CURLOPT_URL, w->url);
	if (body != NULL) {
		curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, hdr_json);
		curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(w->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, hdr_get);
		curl_easy_setopt(w->h, CURLOPT_HTTPGET, 1L);
	}
	if ((cr = curl_easy_perform(w->h)) != CURLE_OK) {
		fprintf(stderr, "bench_https: %s: %s\n", path, curl_easy_strerror(cr));
		return -1;
	}
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(w->h, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
		w->connects += nc;
	/* a body is text for the parsers below (kb_buf has room for the NUL) */
	if (kb_buf_append(&w->rb, "", 1) != 0)
		return -1;
	return status;
}

static void
http_fail(const char *what, long st, const struct worker *w)
{
	fprintf(stderr, "bench_https: %s: HTTP %ld: %.300s\n", what, st,
	    w->rb.data ? (const char *)w->rb.data : "");
}

/* The string j.a (or j.a.b), or NULL. */
static const char *
json_str(cJSON *j, const char *a, const char *b)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);

	if (b != NULL)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* POST /keys/NAME/create; the version from the answer's kid into k->ver. */
static int
api_create(struct worker *w, struct key *k, const char *body)
{
	char path[256];
	const char *kid, *slash;
	cJSON *j = NULL;
	long st;
	int r = -1;

	snprintf(path, sizeof(path), "/keys/%s/create?" API, k->name);
	if ((st = http(w, path, body)) != 200) {
		http_fail(path, st, w);
		return -1;
	}
	if ((j = cJSON_Parse((const char *)w->rb.data)) == NULL ||
	    (kid = json_str(j, "key", "kid")) == NULL ||
	    (slash = strrchr(kid, '/')) == NULL || strlen(slash + 1) != 32)
		goto out;
	snprintf(k->ver, sizeof(k->ver), "%s", slash + 1);
	r = 0;
out:
	if (r != 0)
		fprintf(stderr, "bench_https: %s: no key.kid in the answer\n", path);
	cJSON_Delete(j);
	return r;
}

/* POST .../sign; the signature (exactly siglen bytes) into sig if given. */
static int
api_sign(struct worker *w, const struct key *k, const char *alg, long i,
    unsigned char *sig, size_t siglen)
{
	char path[256];
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	const char *v;
	cJSON *j = NULL;
	long st;
	int r = -1;

	snprintf(path, sizeof(path), "/keys/%s/%s/sign?" API, k->name, k->ver);
	snprintf(w->body, sizeof(w->body), "{\"alg\":\"%s\",\"value\":\"%s\"}", alg, dig_b64[i]);
	if ((st = http(w, path, w->body)) != 200) {
		http_fail(path, st, w);
		return -1;
	}
	if (sig == NULL)
		return 0;
	if ((j = cJSON_Parse((const char *)w->rb.data)) == NULL ||
	    (v = json_str(j, "value", NULL)) == NULL ||
	    kb_b64url_decode(v, strlen(v), &raw, &rawlen) != 0 || rawlen != siglen)
		goto out;
	memcpy(sig, raw, siglen);
	r = 0;
out:
	if (r != 0)
		fprintf(stderr, "bench_https: %s: no %zu-byte signature in the answer\n", path,
		    siglen);
	free(raw);
	cJSON_Delete(j);
	return r;
}

static int
do_op(struct worker *w, long i)
{
	char path[256];
	long st, k;

	switch (cur_phase) {
	case PH_CREATE:
		return api_create(w, &eck[i], "{\"kty\":\"EC\",\"crv\":\"P-256\"}");
	case PH_GET:
		snprintf(path, sizeof(path), "/keys/%s?" API, eck[i % O.keys].name);
		if ((st = http(w, path, NULL)) != 200) {
			http_fail(path, st, w);
			return -1;
		}
		return 0;
	case PH_RS:
		k = i % O.rsa;
		if (i < O.rsa) {
			if (api_sign(w, &rsak[k], "RS256", i, rs_sig[k], 256) != 0)
				return -1;
			atomic_store(&rs_sig_ok[k], 1);
			return 0;
		}
		return api_sign(w, &rsak[k], "RS256", i, NULL, 0);
	case PH_ES:
		k = i % n_es;
		if (i < n_es) {
			if (api_sign(w, &eck[k], "ES256", i, es_sig[k], 64) != 0)
				return -1;
			atomic_store(&es_sig_ok[k], 1);
			return 0;
		}
		return api_sign(w, &eck[k], "ES256", i, NULL, 0);
	default:
		return -1;
	}
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	long i;

	while (!atomic_load(&failed) && (i = atomic_fetch_add(&next_op, 1)) < phase_total)
		if (do_op(w, i) != 0) {
			atomic_store(&failed, 1);
			break;
		}
	return NULL;
}

/*
 * Operations [from, to) of a phase of the C client over --threads handles;
 * a phase may run in slices, its figures add up.
 */
static void
c_phase(enum phase_id ph, long from, long to)
{
	struct phase *p = &cph[ph];
	double t0, c0, a0, a1, s0;
	long k0 = 0, k1 = 0;
	int t;

	if (from == 0)
		fprintf(stderr, "bench_https: C client, %s\n", ph_name[ph]);
	cur_phase = ph;
	phase_total = to;
	atomic_store(&next_op, from);
	for (t = 0; t < O.threads; t++)
		k0 += W[t].connects;
	a0 = pid_cpu(agent_pid);
	s0 = bench_pid_cpu_sched(agent_pid);
	c0 = bench_self_cpu();
	t0 = kb_now_mono();
	for (t = 0; t < O.threads; t++)
		if (pthread_create(&W[t].th, NULL, worker_run, &W[t]) != 0)
			die("pthread_create failed");
	for (t = 0; t < O.threads; t++)
		pthread_join(W[t].th, NULL);
	p->wall += kb_now_mono() - t0;
	p->client_cpu += bench_self_cpu() - c0;
	a1 = pid_cpu(agent_pid);
	p->agent_cpu = a0 >= 0 && a1 >= 0 && p->agent_cpu >= 0 ? p->agent_cpu + a1 - a0 : -1;
	p->agent_sched = s0 >= 0 && p->agent_sched >= 0 ?
	    p->agent_sched + bench_pid_cpu_sched(agent_pid) - s0 : -1;
	for (t = 0; t < O.threads; t++)
		k1 += W[t].connects;
	p->connects += k1 - k0;
	p->ops += to - from;
	p->done = true;
	if (atomic_load(&failed))
		die("a request of the C client failed");
}

/* ------------------------------------------------------- raw PKCS#11 */

static CK_OBJECT_HANDLE
raw_find(CK_OBJECT_CLASS cls, const struct key *k)
{
	unsigned char *id = NULL;
	size_t idlen = 0;
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)k->name, strlen(k->name) },
		{ CKA_ID, NULL, 0 },
	};

	if (kb_hex_decode(k->ver, &id, &idlen) != 0)
		die("a version is not hex");
	tm[2].pValue = id;
	tm[2].ulValueLen = idlen;
	if (fl->C_FindObjectsInit(raw_s, tm, 3) != CKR_OK ||
	    fl->C_FindObjects(raw_s, h, 2, &n) != CKR_OK ||
	    fl->C_FindObjectsFinal(raw_s) != CKR_OK || n != 1) {
		free(id);
		fprintf(stderr, "bench_https: %lu objects of class %lu for %s/%s on the token\n",
		    (unsigned long)n, (unsigned long)cls, k->name, k->ver);
		die("cannot find the agent's key object on the token");
	}
	free(id);
	return h[0];
}

/* Log in to the dev environment's token, in this process. */
static void
raw_open(void)
{
	char pinf[400], label[64] = "keybridge-dev", conf[400], *text = NULL, *p;
	struct kb_secret *pin = NULL;
	struct kb_p11_uri sel;
	size_t len;
	int t;

	/* the token's label from DIR/keybridge.conf ([token dev] label = ...) */
	snprintf(conf, sizeof(conf), "%s/keybridge.conf", devdir);
	if (kb_file_read(conf, 1u << 20, &text, &len) == 0) {
		if ((p = strstr(text, "\nlabel = ")) != NULL)
			sscanf(p + 9, "%63[^\n]", label);
		free(text);
	}
	setenv("SOFTHSM2_CONF", hsm_conf, 1);
	snprintf(pinf, sizeof(pinf), "%s/user.pin", devdir);
	memset(&sel, 0, sizeof(sel));
	sel.token = label;
	if (kb_p11_module_load(O.module, &raw_m) != 0 ||
	    kb_p11_token_open(raw_m, &sel, 4, &raw_t) != 0 ||
	    kb_secret_read_file(pinf, &pin) != 0 ||
	    kb_p11_token_login(raw_t, pin) != 0) {
		fprintf(stderr, "bench_https: %s\n", kb_error_detail(-1));
		kb_secret_free(&pin);
		die("cannot log in to the dev token for the raw baseline");
	}
	kb_secret_free(&pin);
	fl = kb_p11_module_function_list(raw_m);
	if (fl->C_OpenSession(kb_p11_token_slot(raw_t), CKF_SERIAL_SESSION, NULL, NULL,
	    &raw_s) != CKR_OK)
		die("C_OpenSession failed");
	for (t = 0; t < O.threads; t++)
		if (fl->C_OpenSession(kb_p11_token_slot(raw_t), CKF_SERIAL_SESSION, NULL, NULL,
		    &raw_ses[t]) != CKR_OK)
			die("C_OpenSession failed");
}

static int
raw_sign_one(CK_SESSION_HANDLE s, bool rsa, long i, unsigned char *sig, CK_ULONG *sl)
{
	unsigned char in[sizeof(di_sha256) + 32];
	CK_MECHANISM m = { rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	CK_OBJECT_HANDLE k = rsa ? raw_rsa[i % O.rsa] : raw_ec[i % n_es];
	CK_ULONG want = rsa ? 256 : 64;

	memcpy(in, di_sha256, sizeof(di_sha256));
	memcpy(in + sizeof(di_sha256), dig[i], 32);
	if (fl->C_SignInit(s, &m, k) != CKR_OK)
		return -1;
	if (rsa ? fl->C_Sign(s, in, sizeof(in), sig, sl) != CKR_OK :
	    fl->C_Sign(s, dig[i], 32, sig, sl) != CKR_OK)
		return -1;
	return *sl == want ? 0 : -1;
}

/* Raw signs of digests [from, to) on --threads sessions. */
struct raw_job {
	pthread_t th;
	CK_SESSION_HANDLE s;
	bool rsa;
};
static atomic_long raw_next;
static long raw_to;

static void *
raw_run(void *arg)
{
	struct raw_job *j = arg;
	unsigned char sig[512];
	CK_ULONG sl;
	long i;

	while (!atomic_load(&failed) && (i = atomic_fetch_add(&raw_next, 1)) < raw_to) {
		sl = sizeof(sig);
		if (raw_sign_one(j->s, j->rsa, i, sig, &sl) != 0) {
			atomic_store(&failed, 1);
			break;
		}
	}
	return NULL;
}

/*
 * As many signers as the clients have requests in flight, so that the
 * token sees the same parallelism (and the CPUs the same contention) as
 * through the agent.  CPU of the whole process, all threads.
 */
static void
raw_sign_run(bool rsa, long from, long to)
{
	struct raw_job j[MAX_THREADS];
	double c0 = proc_cputime(), t0 = kb_now_mono();
	int t;

	atomic_store(&raw_next, from);
	raw_to = to;
	for (t = 0; t < O.threads; t++) {
		j[t].s = raw_ses[t];
		j[t].rsa = rsa;
		if (pthread_create(&j[t].th, NULL, raw_run, &j[t]) != 0)
			die("pthread_create failed");
	}
	for (t = 0; t < O.threads; t++)
		pthread_join(j[t].th, NULL);
	if (atomic_load(&failed))
		die("raw C_Sign failed");
	if (rsa) {
		raw_rs_cpu += proc_cputime() - c0;
		raw_rs_wall += kb_now_mono() - t0;
		raw_rs_n += to - from;
	} else {
		raw_es_cpu += proc_cputime() - c0;
		raw_es_n += to - from;
	}
}

/* The agent's first signature on each key against the token. */
static int
check_sigs(int *n_checked)
{
	unsigned char sig[512], in[32];
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_ULONG sl;
	long k;
	int bad = 0;

	*n_checked = 0;
	for (k = 0; k < O.rsa; k++) {
		sl = sizeof(sig);
		if (!atomic_load(&rs_sig_ok[k]) || raw_sign_one(raw_s, true, k, sig, &sl) != 0 ||
		    memcmp(sig, rs_sig[k], 256) != 0) {
			fprintf(stderr, "bench_https: RS256 signature of %s differs from raw "
			    "C_Sign\n", rsak[k].name);
			bad++;
		}
		++*n_checked;
	}
	for (k = 0; k < n_es; k++) {
		memcpy(in, dig[k], 32);
		if (!atomic_load(&es_sig_ok[k]) ||
		    fl->C_VerifyInit(raw_s, &m, raw_ec_pub[k]) != CKR_OK ||
		    fl->C_Verify(raw_s, in, 32, es_sig[k], 64) != CKR_OK) {
			fprintf(stderr, "bench_https: ES256 signature of %s does not verify\n",
			    eck[k].name);
			bad++;
		}
		++*n_checked;
	}
	return bad;
}

/* ---------------------------------------------------- processes, files */

/* `keybridge dev up --dir devdir --https`: URL, CA, token file, SoftHSM config, pid. */
static void
dev_up(void)
{
	struct bench_dev d;

	if (bench_dev_up("bench_https", O.c.cli, O.c.agent, devdir, tmpdir, &d) != 0)
		die("no agent");
	url = d.url;
	ca_file = d.ca_file;
	tok_file = d.tok_file;
	hsm_conf = d.softhsm_conf;
	d.url = d.ca_file = d.tok_file = d.softhsm_conf = NULL;
	agent_pid = d.pid;
	bench_dev_free(&d);
}

static void
stop_agent(void)
{
	if (!own_agent || agent_pid <= 0)
		return;
	bench_dev_down(O.c.cli, devdir, tmpdir, agent_pid);
	agent_pid = -1;
}


/* "Authorization: Bearer TOKEN" from the token file; wiped at the end. */
static void
make_headers(void)
{
	struct kb_secret *tok = NULL;
	struct kb_buf hb;

	if (kb_secret_read_file(tok_file, &tok) != 0) {
		fprintf(stderr, "bench_https: %s\n", kb_error_detail(-1));
		die("cannot read the bearer token file");
	}
	kb_buf_init_secret(&hb, 4096);
	if (kb_buf_append(&hb, "Authorization: Bearer ", 22) != 0 ||
	    kb_buf_append(&hb, tok->data, tok->len) != 0 || kb_buf_append(&hb, "", 1) != 0)
		die("bearer token too long");
	kb_secret_free(&tok);
	hdr_get = curl_slist_append(NULL, (const char *)hb.data);
	hdr_json = curl_slist_append(NULL, (const char *)hb.data);
	kb_buf_free(&hb);
	if (hdr_get == NULL || hdr_json == NULL ||
	    (hdr_json = curl_slist_append(hdr_json, "Content-Type: application/json")) == NULL ||
	    (hdr_json = curl_slist_append(hdr_json, "Expect:")) == NULL)
		die("out of memory");
}

static void
free_headers(struct curl_slist **l)
{
	struct curl_slist *s;

	for (s = *l; s != NULL; s = s->next)
		kb_wipe(s->data, strlen(s->data));
	curl_slist_free_all(*l);
	*l = NULL;
}

/* -------------------------------------------------------------- the SDK */

static char sdk_skip[300], sdk_version[32];
/* the script's own checks: signs sent, seen on the wire, verified */
static long sdk_sign_calls = -1, sdk_sign_requests = -1;
static long sdk_verified = -1, sdk_verify_want = -1;

static int
ph_index(const char *s)
{
	int i;

	for (i = 0; i < N_PH; i++)
		if (strcmp(s, ph_name[i]) == 0)
			return i;
	return -1;
}

static double
jnum(cJSON *o, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The script's final line: {"sdk":..., "phases":{NAME:{ops,secs,connects}}}. */
static int
sdk_parse(const char *json)
{
	cJSON *j = cJSON_Parse(json), *ps, *p;
	const char *v;
	int i, r = -1;

	if (j == NULL || (ps = cJSON_GetObjectItemCaseSensitive(j, "phases")) == NULL)
		goto out;
	if ((v = json_str(j, "sdk", NULL)) != NULL)
		snprintf(sdk_version, sizeof(sdk_version), "%s", v);
	if ((p = cJSON_GetObjectItemCaseSensitive(j, "checks")) != NULL) {
		sdk_sign_calls = (long)jnum(p, "signCalls");
		sdk_sign_requests = (long)jnum(p, "signRequests");
		sdk_verified = (long)jnum(p, "verified");
		sdk_verify_want = (long)jnum(p, "verifyWanted");
	}
	for (i = 0; i < N_PH; i++) {
		if ((p = cJSON_GetObjectItemCaseSensitive(ps, ph_name[i])) == NULL)
			goto out;
		sph[i].ops = (long)jnum(p, "ops");
		sph[i].wall = jnum(p, "secs");
		sph[i].connects = (long)jnum(p, "connects");
		if (sph[i].ops <= 0 || sph[i].wall <= 0)
			goto out;
	}
	r = 0;
out:
	cJSON_Delete(j);
	return r;
}

/*
 * Run the SDK script against the same agent.  Its stdout is a small
 * protocol: "phase NAME" (we sample CPU times and answer "go" on its
 * stdin), "done NAME" (we sample again), "skip REASON", "result JSON";
 * anything else is passed to stderr.
 */
static void
sdk_run(void)
{
	char keys[24], gets[24], signs[24], rsa[24], conc[24], prefix[40];
	char line[LINE_CAP], *result = NULL;
	char *argv[32];
	double a0[N_PH], n0[N_PH], t0[N_PH], s0[N_PH];
	int in[2], out[2], st, i, a = 0;
	FILE *f;
	pid_t p;

	if (O.c.no_sdk) {
		snprintf(sdk_skip, sizeof(sdk_skip), "--no-sdk");
		return;
	}
	if (O.c.sdk == NULL || access(O.c.sdk, R_OK) != 0) {
		snprintf(sdk_skip, sizeof(sdk_skip), "no SDK script (--sdk)");
		return;
	}
	snprintf(keys, sizeof(keys), "%ld", O.keys);
	snprintf(gets, sizeof(gets), "%ld", O.gets);
	snprintf(signs, sizeof(signs), "%ld", O.signs);
	snprintf(rsa, sizeof(rsa), "%ld", O.rsa);
	snprintf(conc, sizeof(conc), "%d", O.threads);
	snprintf(prefix, sizeof(prefix), "%s-sdk-", run_id);
	argv[a++] = (char *)O.c.node;
	argv[a++] = (char *)O.c.sdk;
	argv[a++] = "--sync";
	argv[a++] = "--keys"; argv[a++] = keys;
	argv[a++] = "--gets"; argv[a++] = gets;
	argv[a++] = "--signs"; argv[a++] = signs;
	argv[a++] = "--rsa-keys"; argv[a++] = rsa;
	argv[a++] = "--concurrency"; argv[a++] = conc;
	argv[a++] = "--prefix"; argv[a++] = prefix;
	argv[a] = NULL;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		die("pipe failed");
	fprintf(stderr, "bench_https: Azure SDK client: %s %s\n", O.c.node, O.c.sdk);
	if ((p = fork()) < 0)
		die("fork failed");
	if (p == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* the CA through NODE_EXTRA_CA_CERTS: TLS stays verified */
		setenv("NODE_EXTRA_CA_CERTS", ca_file, 1);
		setenv("KEYBRIDGE_URL", url, 1);
		setenv("KEYBRIDGE_TOKEN_FILE", tok_file, 1);
		unsetenv("NODE_TLS_REJECT_UNAUTHORIZED");
		unsetenv("NODE_OPTIONS");
		unsetenv("HTTPS_PROXY");
		unsetenv("https_proxy");
		unsetenv("HTTP_PROXY");
		unsetenv("http_proxy");
		unsetenv("ALL_PROXY");
		unsetenv("all_proxy");
		execvp(argv[0], argv);
		fprintf(stderr, "bench_https: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	node_pid = p;
	close(in[0]);
	close(out[1]);
	if ((f = fdopen(out[0], "r")) == NULL)
		die("fdopen failed");
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "phase ", 6) == 0 && (i = ph_index(line + 6)) >= 0) {
			a0[i] = pid_cpu(agent_pid);
			s0[i] = bench_pid_cpu_sched(agent_pid);
			n0[i] = pid_cpu(p);
			t0[i] = kb_now_mono();
			fprintf(stderr, "bench_https: SDK client, %s\n", line + 6);
			if (write(in[1], "go\n", 3) != 3)
				die("cannot write to the SDK script");
		} else if (strncmp(line, "done ", 5) == 0 && (i = ph_index(line + 5)) >= 0) {
			double a1 = pid_cpu(agent_pid);

			sph[i].client_cpu = pid_cpu(p) - n0[i];
			sph[i].agent_cpu = a0[i] >= 0 && a1 >= 0 ? a1 - a0[i] : -1;
			sph[i].agent_sched = s0[i] >= 0 ? bench_pid_cpu_sched(agent_pid) - s0[i] : -1;
			sph[i].wall = kb_now_mono() - t0[i];   /* replaced by the script's */
			sph[i].done = true;
		} else if (strncmp(line, "skip ", 5) == 0) {
			kb_strlcpy(sdk_skip, line + 5, sizeof(sdk_skip));
		} else if (strncmp(line, "result ", 7) == 0) {
			free(result);
			result = kb_strdup(line + 7);
		} else {
			fprintf(stderr, "sdk: %s\n", line);
		}
	}
	fclose(f);
	close(in[1]);
	if (waitpid(p, &st, 0) != p)
		st = -1;
	node_pid = -1;
	if (sdk_skip[0] != '\0') {
		for (i = 0; i < N_PH; i++)
			sph[i].done = false;
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || result == NULL ||
	    sdk_parse(result) != 0) {
		for (i = 0; i < N_PH; i++)
			sph[i].done = false;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			snprintf(sdk_skip, sizeof(sdk_skip), "cannot run %s", O.c.node);
		else
			die("the SDK run failed (its errors are above)");
	}
	free(result);
}

/* ----------------------------------------------------------------- report */

struct row {
	char figure[64];
	char kb[32], base[32], ratio[16], target[24];
	int pass;                 /* 1 pass, 0 fail, -1 no target */
	bool heading;
};
static struct row rows[48];
static int n_rows;

static struct row *
add_row(const char *figure)
{
	struct row *r = &rows[n_rows++];

	memset(r, 0, sizeof(*r));
	snprintf(r->figure, sizeof(r->figure), "%s", figure);
	r->pass = -1;
	snprintf(r->kb, sizeof(r->kb), "-");
	snprintf(r->base, sizeof(r->base), "-");
	snprintf(r->ratio, sizeof(r->ratio), "-");
	snprintf(r->target, sizeof(r->target), "-");
	return r;
}

static void
section(const char *who, const char *tag, const struct phase *ph, double raw_rs, double raw_es,
    bool target)
{
	static const char *const what[N_PH] = { "key create EC P-256", "key get",
		"sign RS256 RSA-2048", "sign ES256 P-256" };
	char fig[64];
	struct row *r;
	int i;

	r = add_row(who);
	r->heading = true;
	for (i = 0; i < N_PH; i++) {
		snprintf(fig, sizeof(fig), "%s: %s (ops/s)", tag, what[i]);
		r = add_row(fig);
		if (ph[i].done)
			snprintf(r->kb, sizeof(r->kb), "%.1f", ph[i].ops / ph[i].wall);
	}
	for (i = 0; i < N_PH; i++) {
		double raw = i == PH_RS ? raw_rs : i == PH_ES ? raw_es : -1;

		snprintf(fig, sizeof(fig), "%s: agent CPU/%s (ms)", tag,
		    i == PH_CREATE ? "create" : i == PH_GET ? "get" : i == PH_RS ? "RS256 sign" :
		    "ES256 sign");
		r = add_row(fig);
		if (!ph[i].done || ph[i].agent_cpu < 0)
			continue;
		snprintf(r->kb, sizeof(r->kb), "%.3f", ph[i].agent_cpu * 1000 / ph[i].ops);
		if (raw > 0) {
			double ratio = ph[i].agent_cpu / ph[i].ops / raw;

			snprintf(r->base, sizeof(r->base), "%.3f", raw * 1000);
			snprintf(r->ratio, sizeof(r->ratio), "%.3f", ratio);
			if (i == PH_RS && target) {
				snprintf(r->target, sizeof(r->target), "<= 1.20");
				r->pass = ratio <= 1.2;
			} else if (i == PH_RS) {
				snprintf(r->target, sizeof(r->target), "(info)");
			}
		}
	}
	snprintf(fig, sizeof(fig), "%s: same, schedstat (ms) c/g/rs/es", tag);
	r = add_row(fig);
	if (ph[PH_CREATE].done && ph[0].agent_sched >= 0)
		snprintf(r->kb, sizeof(r->kb), "%.2f/%.2f/%.2f/%.2f",
		    ph[0].agent_sched * 1000 / ph[0].ops, ph[1].agent_sched * 1000 / ph[1].ops,
		    ph[2].agent_sched * 1000 / ph[2].ops, ph[3].agent_sched * 1000 / ph[3].ops);
	snprintf(fig, sizeof(fig), "%s: client CPU/op (ms) c/g/rs/es", tag);
	r = add_row(fig);
	if (ph[PH_CREATE].done)
		snprintf(r->kb, sizeof(r->kb), "%.2f/%.2f/%.2f/%.2f",
		    ph[0].client_cpu * 1000 / ph[0].ops, ph[1].client_cpu * 1000 / ph[1].ops,
		    ph[2].client_cpu * 1000 / ph[2].ops, ph[3].client_cpu * 1000 / ph[3].ops);
	snprintf(fig, sizeof(fig), "%s: TLS handshakes c/g/rs/es", tag);
	r = add_row(fig);
	if (ph[PH_CREATE].done)
		snprintf(r->kb, sizeof(r->kb), "%ld/%ld/%ld/%ld", ph[0].connects,
		    ph[1].connects, ph[2].connects, ph[3].connects);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_https [--keys N] [--gets N] [--signs N] [--rsa-keys N]\n"
	    "                   [--threads N] [--cli PATH] [--agent PATH] [--module PATH]\n"
	    "                   [--node PATH] [--sdk SCRIPT | --no-sdk]\n"
	    "                   [--dir DIR | --url URL --ca FILE --token-file FILE [--pid PID]]\n"
	    "                   [--tap] [--strict]\n"
	    "  --keys N       EC P-256 keys created per client (default 200)\n"
	    "  --gets N       gets of each of them (default 10)\n"
	    "  --signs N      digests signed per client and algorithm (default 1000)\n"
	    "  --rsa-keys N   RSA-2048 keys to sign with, made untimed (default 4, <= --signs)\n"
	    "  --threads N    C client threads = SDK requests in flight (default 2)\n"
	    "  --cli PATH     keybridge (default: $KEYBRIDGE_BIN), runs `dev up --https`\n"
	    "  --agent PATH   keybridged for dev up (default: next to keybridge)\n"
	    "  --node PATH    node (default: $NODE, then node in PATH)\n"
	    "  --sdk SCRIPT   bench/https-sdk.mjs\n"
	    "  --dir DIR      use (or make) the dev environment DIR; left running\n"
	    "  --url ...      a running agent: no raw baseline; its CPU only with --pid\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	int i;

	O.keys = 200;
	O.gets = 10;
	O.signs = 1000;
	O.rsa = 4;
	O.threads = 2;
	O.c.cli = getenv("KEYBRIDGE_BIN");
	O.module = p11t_softhsm();
	O.c.node = getenv("NODE") && *getenv("NODE") ? getenv("NODE") : "node";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(a, "--keys") == 0 && more)
			O.keys = atol(argv[++i]);
		else if (strcmp(a, "--gets") == 0 && more)
			O.gets = atol(argv[++i]);
		else if (strcmp(a, "--signs") == 0 && more)
			O.signs = atol(argv[++i]);
		else if (strcmp(a, "--rsa-keys") == 0 && more)
			O.rsa = atol(argv[++i]);
		else if (strcmp(a, "--threads") == 0 && more)
			O.threads = atoi(argv[++i]);
		else if (strcmp(a, "--module") == 0 && more)
			O.module = argv[++i];
		else if (!bench_common_opt(&O.c, argc, argv, &i))
			usage();
	}
	if (O.keys < 1 || O.keys > 100000 || O.gets < 1 || O.gets > 1000 || O.signs < 1 ||
	    O.signs > 1000000 || O.rsa < 1 || O.rsa > MAX_RSA || O.signs < O.rsa || O.threads < 1 ||
	    O.threads > MAX_THREADS)
		usage();
	if (O.c.url != NULL && (O.c.ca == NULL || O.c.token_file == NULL || O.c.dir != NULL)) {
		fprintf(stderr, "bench_https: --url needs --ca and --token-file, and no --dir\n");
		exit(2);
	}
	if (O.c.url == NULL && (O.c.cli == NULL || *O.c.cli == '\0')) {
		fprintf(stderr, "bench_https: give --cli PATH (keybridge) or set KEYBRIDGE_BIN\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	unsigned char rnd[3];
	char msg[64], *hx = NULL;
	struct sigaction sa;
	struct row *r;
	bool have_raw, all_pass = true, sdk_ok;
	double t0;
	long i;
	int k, t, n_checked = 0, bad_sigs = 0, tn = 0;

	parse_args(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
	if (kb_random(rnd, sizeof(rnd)) != 0 || (hx = kb_hex_encode(rnd, sizeof(rnd))) == NULL)
		die("no random bytes");
	snprintf(run_id, sizeof(run_id), "hb%s", hx);
	free(hx);

	/* The agent. */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kbhttps.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp failed");
	if (O.c.url != NULL) {
		url = kb_strdup(O.c.url);
		ca_file = kb_strdup(O.c.ca);
		tok_file = kb_strdup(O.c.token_file);
		agent_pid = (pid_t)O.c.pid;
	} else {
		if (access(O.c.cli, X_OK) != 0) {
			fprintf(stderr, "bench_https: no keybridge at %s\n", O.c.cli);
			p11t_rmtree(tmpdir);
			if (O.c.tap)
				printf("1..0 # SKIP no keybridge at %s\n", O.c.cli);
			return O.c.tap ? 0 : 77;
		}
		own_agent = O.c.dir == NULL;
		if (O.c.dir != NULL)
			snprintf(devdir, sizeof(devdir), "%s", O.c.dir);
		else
			snprintf(devdir, sizeof(devdir), "%s/dev", tmpdir);
		t0 = kb_now_mono();
		dev_up();
		fprintf(stderr, "bench_https: agent pid %d at %s, up in %.2f s; dir %s\n",
		    (int)agent_pid, url, kb_now_mono() - t0, devdir);
	}
	have_raw = O.c.url == NULL;
	make_headers();

	/* Digests: SHA-256 of "kb-bench-I", the same the SDK script signs. */
	dig = xcalloc((size_t)O.signs, sizeof(*dig));
	dig_b64 = xcalloc((size_t)O.signs, sizeof(*dig_b64));
	for (i = 0; i < O.signs; i++) {
		snprintf(msg, sizeof(msg), "kb-bench-%ld", i);
		SHA256((const unsigned char *)msg, strlen(msg), dig[i]);
		if ((dig_b64[i] = kb_b64url_encode(dig[i], 32)) == NULL)
			die("out of memory");
	}
	eck = xcalloc((size_t)O.keys, sizeof(*eck));
	rsak = xcalloc((size_t)O.rsa, sizeof(*rsak));
	n_es = O.rsa < O.keys ? O.rsa : O.keys;
	for (i = 0; i < O.keys; i++)
		snprintf(eck[i].name, sizeof(eck[i].name), "%s-c-ec-%04ld", run_id, i);
	for (i = 0; i < O.rsa; i++)
		snprintf(rsak[i].name, sizeof(rsak[i].name), "%s-c-rsa-%ld", run_id, i);

	/* C client: handles, the RSA keys (not timed), a warm-up request each. */
	for (t = 0; t < O.threads; t++)
		worker_init(&W[t]);
	fprintf(stderr, "bench_https: C client, setup: %ld RSA-2048 keys\n", O.rsa);
	for (i = 0; i < O.rsa; i++)
		if (api_create(&W[0], &rsak[i], "{\"kty\":\"RSA\",\"key_size\":2048}") != 0)
			die("cannot create an RSA key");
	for (t = 0; t < O.threads; t++) {
		char path[256];
		long st;

		snprintf(path, sizeof(path), "/keys/%s?" API, rsak[0].name);
		if ((st = http(&W[t], path, NULL)) != 200) {
			http_fail(path, st, &W[t]);
			die("warm-up request failed");
		}
	}
	if (have_raw) {
		raw_open();
		for (i = 0; i < O.rsa; i++)
			raw_rsa[i] = raw_find(CKO_PRIVATE_KEY, &rsak[i]);
		/* first raw sign on each key: not timed, as the warm-up above */
		raw_sign_run(true, 0, O.rsa);
		raw_rs_cpu = raw_rs_wall = 0;
		raw_rs_n = 0;
	}

	c_phase(PH_CREATE, 0, O.keys);
	c_phase(PH_GET, 0, O.keys * O.gets);
	/*
	 * RS256 in ROUNDS slices, each next to a raw slice of the same size,
	 * which side first alternating: drift in the machine's load (shared,
	 * noisy) favours neither side of the ratio.
	 */
	for (k = 0; k < ROUNDS; k++) {
		long a = O.signs * k / ROUNDS, b = O.signs * (k + 1) / ROUNDS;

		if (have_raw && k % 2 == 0)
			raw_sign_run(true, a, b);
		c_phase(PH_RS, a, b);
		if (have_raw && k % 2 == 1)
			raw_sign_run(true, a, b);
	}
	if (have_raw)
		for (i = 0; i < n_es; i++) {
			raw_ec[i] = raw_find(CKO_PRIVATE_KEY, &eck[i]);
			raw_ec_pub[i] = raw_find(CKO_PUBLIC_KEY, &eck[i]);
		}
	if (have_raw) {
		raw_sign_run(false, 0, n_es);     /* warm-up */
		raw_es_cpu = 0;
		raw_es_n = 0;
	}
	for (k = 0; k < ROUNDS; k++) {
		long a = O.signs * k / ROUNDS, b = O.signs * (k + 1) / ROUNDS;

		if (have_raw && k % 2 == 0)
			raw_sign_run(false, a, b);
		c_phase(PH_ES, a, b);
		if (have_raw && k % 2 == 1)
			raw_sign_run(false, a, b);
	}
	if (have_raw)
		bad_sigs = check_sigs(&n_checked);
	for (t = 0; t < O.threads; t++)
		worker_free(&W[t]);

	/* The Azure SDK, same agent. */
	sdk_run();

	/* Report. */
	{
		double rs = have_raw ? raw_rs_cpu / raw_rs_n : -1;
		double es = have_raw ? raw_es_cpu / raw_es_n : -1;
		char who[64];

		snprintf(who, sizeof(who), "C client (libcurl, %d threads)", O.threads);
		section(who, "C", cph, rs, es, true);
		if (sdk_skip[0] == '\0') {
			snprintf(who, sizeof(who), "Azure SDK JS %s (%d in flight)", sdk_version,
			    O.threads);
			section(who, "SDK", sph, rs, es, false);
		}
		if (have_raw) {
			snprintf(who, sizeof(who), "raw C_Sign RSA-2048, %d threads (ops/s)",
			    O.threads);
			r = add_row(who);
			snprintf(r->base, sizeof(r->base), "%.1f", raw_rs_n / raw_rs_wall);
		}
	}
	printf("%s%-40s %12s %12s %8s %10s  %s\n", O.c.tap ? "# " : "", "figure", "keybridge",
	    "baseline", "ratio", "target", "result");
	for (k = 0; k < n_rows; k++) {
		if (rows[k].heading) {
			printf("%s%s\n", O.c.tap ? "# " : "", rows[k].figure);
			continue;
		}
		printf("%s%-40s %12s %12s %8s %10s  %s\n", O.c.tap ? "# " : "", rows[k].figure,
		    rows[k].kb, rows[k].base, rows[k].ratio, rows[k].target,
		    rows[k].pass < 0 ? "-" : rows[k].pass ? "PASS" : "FAIL");
		if (rows[k].pass == 0)
			all_pass = false;
	}
	printf("%s(%ld EC keys created, %ld gets each, %ld digests signed per algorithm, "
	    "round-robin over %ld RSA and %ld EC keys, per client; %s; agent CPU: utime+stime "
	    "of pid %d over each phase; %d signatures checked against the token%s)\n",
	    O.c.tap ? "# " : "", O.keys, O.gets, O.signs, O.rsa, n_es,
	    have_raw ? "baseline: raw C_Sign on the agent's own key objects in this process, "
	    "as many threads as the clients, CPU from CLOCK_PROCESS_CPUTIME_ID, in slices "
	    "alternating with the C client's" : "no raw baseline with --url",
	    (int)agent_pid, n_checked, sdk_skip[0] == '\0' ? "; the SDK's below" : "");
	if (sdk_skip[0] != '\0')
		printf("%snote: the Azure SDK part was skipped: %s\n", O.c.tap ? "# " : "", sdk_skip);
	if (bad_sigs > 0)
		printf("%s%d signatures did not check (see stderr)\n", O.c.tap ? "# " : "", bad_sigs);
	sdk_ok = sdk_skip[0] != '\0' || (sdk_verify_want > 0 && sdk_verified == sdk_verify_want &&
	    sdk_sign_calls > 0 && sdk_sign_requests == sdk_sign_calls);
	if (sdk_skip[0] == '\0')
		printf("%sSDK: %ld of %ld signatures verified with node's crypto; %ld sign() calls, "
		    "%ld sign requests sent to the agent\n", O.c.tap ? "# " : "", sdk_verified,
		    sdk_verify_want, sdk_sign_calls, sdk_sign_requests);
	if (O.c.tap) {
		printf("ok %d - C client: every phase measured\n", ++tn);
		printf("%s %d - C client: agent CPU measured\n",
		    cph[PH_RS].agent_cpu >= 0 ? "ok" : "not ok", ++tn);
		printf("%s %d - %d signatures checked against the token\n",
		    bad_sigs == 0 ? "ok" : "not ok", ++tn, n_checked);
		if (sdk_skip[0] != '\0') {
			printf("ok %d # SKIP Azure SDK: %s\n", ++tn, sdk_skip);
		} else {
			printf("%s %d - Azure SDK: signatures verified, every sign sent to the agent\n",
			    sdk_ok ? "ok" : "not ok", ++tn);
		}
		printf("1..%d\n", tn);
	}

	if (fl != NULL) {
		fl->C_CloseSession(raw_s);
		for (t = 0; t < O.threads; t++)
			fl->C_CloseSession(raw_ses[t]);
	}
	kb_p11_token_close(raw_t);
	kb_p11_module_free(raw_m);
	stop_agent();
	p11t_rmtree(tmpdir);   /* with --dir, only dev up's output is in it */
	free_headers(&hdr_get);
	free_headers(&hdr_json);
	for (i = 0; i < O.signs; i++)
		free(dig_b64[i]);
	free(dig_b64);
	free(dig);
	free(eck);
	free(rsak);
	free(url);
	free(ca_file);
	free(tok_file);
	free(hsm_conf);
	curl_global_cleanup();
	if (bad_sigs > 0 || !sdk_ok)
		return 1;
	return O.c.strict && !all_pass ? 3 : 0;
}
