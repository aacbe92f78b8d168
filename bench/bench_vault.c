/*
 * bench_vault: the local vault (keybridged's Key Vault keys API on its Unix
 * socket) against its baselines, in one run (issue 3, "Speed and size"):
 *
 *  1. key create through the agent (oct-HSM 256, EC-HSM P-256) vs raw
 *     C_GenerateKey / C_GenerateKeyPair of token objects      target >= 0.80
 *  2. RSA-2048 RS256 sign through the socket, 2 clients with keep-alive,
 *     vs raw C_Sign (CKM_RSA_PKCS on a DigestInfo), 2 threads  target >= 0.85
 *  3. `keybridge key list` over --keys keys (default 10000): wall time
 *                                                              target <= 1 s
 *  4. the agent's VmRSS with those keys, after listing them all and a get
 *     on a sample                                              target <= 64 MB
 *
 * The bench makes a temporary directory with a SoftHSM2 config holding two
 * tokens: one for the agent it starts (keybridged, PIN through pin_file),
 * one for the raw baseline, used in this process through the module's
 * function list.  Throughput figures alternate raw and agent slices
 * (ROUNDS of them, which side goes first alternating) so drift in the
 * machine's load favours neither.  Everything is removed at the end.
 *
 * Figures 3 and 4 have absolute targets; their "baseline" column is for
 * orientation: the same listing done by paging GET /keys?maxresults=25
 * with libcurl in this process, and the agent's VmRSS right after start.
 *
 * To show where time and memory go, the table also gives the CPU per sign
 * (agent + this client vs raw), the fsync latency of the state dir's disk
 * (the store commits with synchronous=FULL), the bulk creation rate, and
 * on stderr the agent's RssAnon/RssFile; --diag M makes M raw AES token
 * objects in this process and prints SoftHSM's own memory per object.
 *
 *   bench_vault [--keys N] [--seconds S] [--agent PATH] [--cli PATH]
 *               [--module PATH] [--diag M] [--isolate] [--tap] [--strict]
 *
 * --isolate runs the agent's token with isolate = true: the module in a
 * keybridge-p11host process (docs/config.md); the table then also gives
 * the hosts' VmRSS (the agent's child processes) and the sum.
 *
 * --tap prints TAP (for a smoke test: each figure was measured and the
 * listing saw every key; targets are not asserted).  --strict makes a
 * missed target exit 3.  Progress goes to stderr.
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <p11-kit/pkcs11.h>

#include "p11test.h"

#define ROUNDS 5
#define API "api-version=7.5"
#define RESP_CAP (4u << 20)

struct opts {
	long keys;
	double secs;
	const char *agent;
	const char *cli;
	const char *module;
	bool tap;
	bool strict;
	long diag;
	bool isolate;
};

static struct opts O;
static struct p11t X;
static CK_FUNCTION_LIST_PTR fl;
static CK_SLOT_ID raw_slot;
static CK_SESSION_HANDLE raw_s;
static char sock_path[400], conf_path[400], agent_log[400];
static volatile pid_t agent_pid = -1;
static atomic_int failed;
static unsigned long raw_id_ctr;

/* Raw objects made for figure 1, destroyed afterwards. */
static CK_OBJECT_HANDLE *raw_made;
static size_t n_raw_made, raw_made_alloc;

static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const unsigned char p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
	0x03, 0x01, 0x07 };

static void
die(const char *what)
{
	fprintf(stderr, "bench_vault: %s\n", what);
	if (agent_pid > 0) {
		kill(agent_pid, SIGKILL);
		waitpid(agent_pid, NULL, 0);
	}
	p11t_rmtree(X.dir);
	exit(1);
}

static void
on_signal(int sig)
{
	if (agent_pid > 0)
		kill(agent_pid, SIGKILL);
	_exit(128 + sig);
}

/* ------------------------------------------------------------------ HTTP */

static size_t
body_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct kb_buf *b = ud;

	if (kb_buf_append(b, p, sz * n) != 0)
		return 0;
	return sz * n;
}

static CURL *
http_new(void)
{
	CURL *h = curl_easy_init();

	if (h == NULL)
		die("curl_easy_init failed");
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	return h;
}

/*
 * One request on h (keep-alive: the connection stays with the handle).
 * path is everything after http://localhost.  Returns the HTTP status or
 * -1; the body is in *out (reset first).
 */
static struct curl_slist *json_hdrs;   /* set up in main, before any thread */

static long
http(CURL *h, const char *method, const char *path, const char *body, struct kb_buf *out)
{
	char url[1024];
	long status = -1;
	CURLcode cr;

	kb_buf_reset(out);
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, json_hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
	}
	if ((cr = curl_easy_perform(h)) != CURLE_OK) {
		fprintf(stderr, "bench_vault: %s %s: %s\n", method, path, curl_easy_strerror(cr));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static void
http_fail(const char *what, long st, const struct kb_buf *b)
{
	fprintf(stderr, "bench_vault: %s: HTTP %ld: %.300s\n", what, st,
	    b->data ? (const char *)b->data : "");
}

/* POST /keys/NAME/create; the new version's id (hex) into ver if given. */
static int
api_create(CURL *h, const char *name, const char *body, struct kb_buf *rb,
    char *ver, size_t verlen)
{
	char path[256];
	cJSON *j, *kid;
	const char *slash;
	long st;

	snprintf(path, sizeof(path), "/keys/%s/create?" API, name);
	if ((st = http(h, "POST", path, body, rb)) != 200) {
		http_fail(path, st, rb);
		return -1;
	}
	if (ver == NULL)
		return 0;
	if ((j = cJSON_Parse((const char *)rb->data)) == NULL)
		return -1;
	kid = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "key"), "kid");
	if (!cJSON_IsString(kid) || (slash = strrchr(kid->valuestring, '/')) == NULL) {
		cJSON_Delete(j);
		return -1;
	}
	snprintf(ver, verlen, "%s", slash + 1);
	cJSON_Delete(j);
	return 0;
}

/* ------------------------------------------------------- raw PKCS#11 side */

static void
raw_remember(CK_OBJECT_HANDLE h)
{
	if (n_raw_made == raw_made_alloc) {
		size_t na = raw_made_alloc ? raw_made_alloc * 2 : 1024;
		CK_OBJECT_HANDLE *nr = realloc(raw_made, na * sizeof(*nr));

		if (nr == NULL)
			die("out of memory");
		raw_made = nr;
		raw_made_alloc = na;
	}
	raw_made[n_raw_made++] = h;
}

/*
 * Token objects as the agent makes them: label = a name, CKA_ID = 16
 * bytes, private, sensitive, not extractable, usage flags of the default
 * key_ops.
 */
static int
raw_gen_aes(CK_SESSION_HANDLE s, bool keep)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG vl = 32;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	unsigned char id[16] = { 0 };
	char label[32];
	CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_HANDLE h;
	unsigned long n = ++raw_id_ctr;
	CK_ATTRIBUTE tm[] = {
		{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &vl, sizeof(vl) }, { CKA_TOKEN, &t, 1 },
		{ CKA_PRIVATE, &t, 1 }, { CKA_LABEL, label, 0 }, { CKA_ID, id, 16 },
		{ CKA_SENSITIVE, &t, 1 }, { CKA_EXTRACTABLE, &f, 1 },
		{ CKA_ENCRYPT, &t, 1 }, { CKA_DECRYPT, &t, 1 }, { CKA_SIGN, &f, 1 },
		{ CKA_VERIFY, &f, 1 }, { CKA_WRAP, &t, 1 }, { CKA_UNWRAP, &t, 1 },
		{ CKA_DERIVE, &f, 1 },
	};

	memcpy(id, &n, sizeof(n));
	tm[5].ulValueLen = (CK_ULONG)snprintf(label, sizeof(label), "raw-oct-%lu", n);
	if (fl->C_GenerateKey(s, &m, tm, sizeof(tm) / sizeof(tm[0]), &h) != CKR_OK)
		return -1;
	if (keep)
		raw_remember(h);
	return 0;
}

static int
raw_gen_pair(CK_SESSION_HANDLE s, bool ec, bool keep, CK_OBJECT_HANDLE *priv_out)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ULONG bits = 2048;
	unsigned char e65537[] = { 0x01, 0x00, 0x01 };
	unsigned char id[16] = { 0 };
	char label[32];
	CK_MECHANISM m = { ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_HANDLE hpub, hpriv;
	unsigned long n = ++raw_id_ctr;
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &t, 1 }, { CKA_PRIVATE, &f, 1 }, { CKA_LABEL, label, 0 },
		{ CKA_ID, id, 16 }, { CKA_VERIFY, &t, 1 }, { CKA_ENCRYPT, &f, 1 },
		{ CKA_WRAP, &f, 1 },
		{ CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
	};
	CK_ATTRIBUTE pub_rsa[] = {
		{ CKA_TOKEN, &t, 1 }, { CKA_PRIVATE, &f, 1 }, { CKA_LABEL, label, 0 },
		{ CKA_ID, id, 16 }, { CKA_VERIFY, &t, 1 }, { CKA_ENCRYPT, &t, 1 },
		{ CKA_WRAP, &t, 1 },
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
		{ CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537) },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &t, 1 }, { CKA_PRIVATE, &t, 1 }, { CKA_LABEL, label, 0 },
		{ CKA_ID, id, 16 }, { CKA_SENSITIVE, &t, 1 }, { CKA_EXTRACTABLE, &f, 1 },
		{ CKA_SIGN, &t, 1 }, { CKA_DECRYPT, &t, 1 }, { CKA_UNWRAP, &t, 1 },
	};
	CK_ULONG ll;

	memcpy(id, &n, sizeof(n));
	ll = (CK_ULONG)snprintf(label, sizeof(label), "raw-%s-%lu", ec ? "ec" : "rsa", n);
	pub[2].ulValueLen = pub_rsa[2].ulValueLen = priv[2].ulValueLen = ll;
	if (ec) {
		priv[7].type = CKA_DERIVE;   /* EC: sign only, no decrypt/unwrap */
		priv[7].pValue = &f;
		priv[8].type = CKA_DERIVE;
		priv[8].pValue = &f;
	}
	if (fl->C_GenerateKeyPair(s, &m, ec ? pub : pub_rsa,
	    ec ? sizeof(pub) / sizeof(pub[0]) : sizeof(pub_rsa) / sizeof(pub_rsa[0]),
	    priv, ec ? 8 : sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv) != CKR_OK)
		return -1;
	if (keep) {
		raw_remember(hpub);
		raw_remember(hpriv);
	}
	if (priv_out != NULL)
		*priv_out = hpriv;
	return 0;
}

static void
raw_destroy_made(void)
{
	size_t i;

	for (i = 0; i < n_raw_made; i++)
		if (fl->C_DestroyObject(raw_s, raw_made[i]) != CKR_OK)
			fprintf(stderr, "bench_vault: C_DestroyObject failed\n");
	n_raw_made = 0;
}

/* -------------------------------------------------- figure 1: key create */

enum kind { K_OCT, K_EC };
static const char *const kind_body[] = {
	"{\"kty\":\"oct-HSM\",\"key_size\":256}",
	"{\"kty\":\"EC-HSM\",\"crv\":\"P-256\"}",
};
static long api_created;    /* keys made through the API so far */

static long
create_slice(CURL *h, struct kb_buf *rb, enum kind k, bool agent, double secs, double *spent)
{
	double t0 = kb_now_mono(), t;
	char name[64];
	long n = 0;

	do {
		if (agent) {
			snprintf(name, sizeof(name), "c-%s-%ld", k == K_OCT ? "oct" : "ec",
			    api_created);
			if (api_create(h, name, kind_body[k], rb, NULL, 0) != 0)
				die("key create through the agent failed");
			api_created++;
		} else if ((k == K_OCT ? raw_gen_aes(raw_s, true) :
		    raw_gen_pair(raw_s, true, true, NULL)) != 0) {
			die("raw key generation failed");
		}
		n++;
		t = kb_now_mono();
	} while (t - t0 < secs);
	*spent += t - t0;
	return n;
}

/* ---------------------------------------------------- figure 2: RSA sign */

struct signer {
	pthread_t th;
	bool agent;
	CURL *h;                  /* agent side: its own handle (keep-alive) */
	CK_SESSION_HANDLE s;      /* raw side: its own session */
	CK_OBJECT_HANDLE key;
	const char *path;
	const char *body;
	double deadline;
	long n;
	struct kb_buf rb;
};

static unsigned char digest[32];

static void *
signer_run(void *arg)
{
	struct signer *g = arg;
	unsigned char in[sizeof(di_sha256) + 32], sig[512];
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_ULONG sl;
	long st;

	memcpy(in, di_sha256, sizeof(di_sha256));
	memcpy(in + sizeof(di_sha256), digest, 32);
	g->n = 0;
	do {
		if (g->agent) {
			if ((st = http(g->h, "POST", g->path, g->body, &g->rb)) != 200) {
				http_fail("sign", st, &g->rb);
				atomic_store(&failed, 1);
				break;
			}
		} else {
			sl = sizeof(sig);
			if (fl->C_SignInit(g->s, &m, g->key) != CKR_OK ||
			    fl->C_Sign(g->s, in, sizeof(in), sig, &sl) != CKR_OK || sl != 256) {
				atomic_store(&failed, 1);
				break;
			}
		}
		g->n++;
	} while (kb_now_mono() < g->deadline);
	return NULL;
}

/* CPU seconds (user + system) of this process, all threads. */
static double
self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds (user + system) of pid, from /proc/PID/stat. */
static double
pid_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static int children_of(pid_t pid, pid_t *out, int max);

/* CPU seconds of the agent and its module hosts (isolate = true). */
static double
agent_cpu(void)
{
	pid_t kids[16];
	double sum = pid_cpu(agent_pid);
	int i, n = children_of(agent_pid, kids, 16);

	for (i = 0; i < n; i++)
		sum += pid_cpu(kids[i]);
	return sum;
}

/* Both signers of one side for secs; ops done, wall time added to *spent. */
static double cpu_self_kb, cpu_agent_kb, cpu_self_raw;

static long
sign_slice(struct signer *g, double secs, double *spent)
{
	double t0 = kb_now_mono(), c0 = self_cpu(), a0 = g[0].agent ? agent_cpu() : 0;
	int i;

	for (i = 0; i < 2; i++) {
		g[i].deadline = t0 + secs;
		if (pthread_create(&g[i].th, NULL, signer_run, &g[i]) != 0)
			die("pthread_create failed");
	}
	for (i = 0; i < 2; i++)
		pthread_join(g[i].th, NULL);
	*spent += kb_now_mono() - t0;
	if (g[0].agent) {
		cpu_self_kb += self_cpu() - c0;
		cpu_agent_kb += agent_cpu() - a0;
	} else {
		cpu_self_raw += self_cpu() - c0;
	}
	if (atomic_load(&failed))
		die(g[0].agent ? "sign through the agent failed" : "raw C_Sign failed");
	return g[0].n + g[1].n;
}

/* ---------------------------------------------- bulk creation (N keys) */

struct bulk {
	pthread_t th;
	CURL *h;
	struct kb_buf rb;
};
static atomic_long bulk_next, bulk_done;
static long bulk_target;

static void *
bulk_run(void *arg)
{
	struct bulk *b = arg;
	char name[64];
	long i;

	while (!atomic_load(&failed) && (i = atomic_fetch_add(&bulk_next, 1)) < bulk_target) {
		/* Mostly AES keys, one in 50 a P-256 pair. */
		bool ec = i % 50 == 49;

		snprintf(name, sizeof(name), "k%06ld", i);
		if (api_create(b->h, name, kind_body[ec ? K_EC : K_OCT], &b->rb, NULL, 0) != 0) {
			atomic_store(&failed, 1);
			break;
		}
		atomic_fetch_add(&bulk_done, 1);
	}
	return NULL;
}

/* ------------------------------------------------------- figures 3 and 4 */

/* Page through GET /keys; number of keys seen, or -1. */
static long
list_by_paging(CURL *h, struct kb_buf *rb, long *pages)
{
	char path[1024];
	long count = 0, st;
	cJSON *j, *v, *nl;
	const char *p;

	*pages = 0;
	snprintf(path, sizeof(path), "/keys?maxresults=25&" API);
	for (;;) {
		if ((st = http(h, "GET", path, NULL, rb)) != 200) {
			http_fail("list", st, rb);
			return -1;
		}
		(*pages)++;
		if ((j = cJSON_Parse((const char *)rb->data)) == NULL)
			return -1;
		v = cJSON_GetObjectItemCaseSensitive(j, "value");
		if (!cJSON_IsArray(v)) {
			cJSON_Delete(j);
			return -1;
		}
		count += cJSON_GetArraySize(v);
		nl = cJSON_GetObjectItemCaseSensitive(j, "nextLink");
		if (!cJSON_IsString(nl)) {
			cJSON_Delete(j);
			return count;
		}
		/* nextLink is a full URL: keep its path and query. */
		p = strstr(nl->valuestring, "://");
		p = p ? strchr(p + 3, '/') : NULL;
		if (p == NULL || strlen(p) >= sizeof(path)) {
			cJSON_Delete(j);
			return -1;
		}
		snprintf(path, sizeof(path), "%s", p);
		cJSON_Delete(j);
	}
}

/* Run the CLI's `key list`; wall seconds, or -1 with its exit code in *rc. */
static double
cli_list(int *rc)
{
	char errf[400];
	double t0 = kb_now_mono(), t;
	int st, fd;
	pid_t p;

	snprintf(errf, sizeof(errf), "%s/cli.err", X.dir);
	if ((p = fork()) < 0)
		return -1;
	if (p == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) >= 0)
			dup2(fd, 1);
		if ((fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0)
			dup2(fd, 2);
		execl(O.cli, O.cli, "key", "list", "--socket", sock_path, (char *)NULL);
		_exit(127);
	}
	if (waitpid(p, &st, 0) != p)
		return -1;
	t = kb_now_mono() - t0;
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return *rc == 0 ? t : -1;
}

/* VmRSS or VmHWM of pid in kB, or -1. */
static long
proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl_len = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl_len) == 0 && line[fl_len] == ':') {
			v = strtol(line + fl_len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* pid's child processes (the module hosts of an isolated token), up to max. */
static int
children_of(pid_t pid, pid_t *out, int max)
{
	char path[64], line[512], *p;
	struct dirent *de;
	int ppid, n = 0;
	DIR *d;
	FILE *f;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(line, sizeof(line), f);
		fclose(f);
		/* pid (comm) state ppid ...: comm may hold spaces and ')'. */
		if (p != NULL && (p = strrchr(line, ')')) != NULL &&
		    sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == (int)pid)
			out[n++] = (pid_t)atol(de->d_name);
	}
	closedir(d);
	return n;
}

/* The sum of `field` (kB) over pid's child processes, or -1 if none. */
static long
children_kb(pid_t pid, const char *field)
{
	pid_t kids[16];
	long sum = -1, v;
	int i, n = children_of(pid, kids, 16);

	for (i = 0; i < n; i++)
		if ((v = proc_kb(kids[i], field)) >= 0)
			sum = (sum < 0 ? 0 : sum) + v;
	return sum;
}

/*
 * Mean latency of a 4 KiB write + fdatasync in dir, in ms: what one
 * synchronous commit of the agent's store costs at least on this disk.
 */
static double
fsync_ms(const char *dir)
{
	char path[400], blk[4096];
	double t0;
	int fd, i, n = 50;

	snprintf(path, sizeof(path), "%s/fsync-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	memset(blk, 0x5a, sizeof(blk));
	t0 = kb_now_mono();
	for (i = 0; i < n; i++)
		if (pwrite(fd, blk, sizeof(blk), (off_t)i * (off_t)sizeof(blk)) < 0 ||
		    fdatasync(fd) != 0) {
			close(fd);
			unlink(path);
			return -1;
		}
	t0 = (kb_now_mono() - t0) * 1000 / n;
	close(fd);
	unlink(path);
	return t0;
}

/* ------------------------------------------------------------ the agent */

static void
write_conf(void)
{
	char sockdir[400], state[400];
	FILE *f;

	snprintf(sockdir, sizeof(sockdir), "%s/run", X.dir);
	snprintf(state, sizeof(state), "%s/state", X.dir);
	snprintf(sock_path, sizeof(sock_path), "%s/run/agent.sock", X.dir);
	snprintf(conf_path, sizeof(conf_path), "%s/keybridge.conf", X.dir);
	snprintf(agent_log, sizeof(agent_log), "%s/agent.log", X.dir);
	if (mkdir(sockdir, 0700) != 0)
		die("cannot create the socket directory");
	if ((f = fopen(conf_path, "w")) == NULL)
		die("cannot write the agent's config");
	fprintf(f, "# written by bench_vault\n[agent]\nsocket = %s\nstate_dir = %s\n"
	    "log_level = warn\n\n[token vt]\nmodule = %s\nlabel = kb-bench-vault\n"
	    "pin_file = %s\nisolate = %s\n\n[vault bench]\ntoken = vt\n"
	    "default = true\n", sock_path, state, O.module, X.pinfile,
	    O.isolate ? "true" : "false");
	fclose(f);
}

static void
start_agent(CURL *h, struct kb_buf *rb)
{
	double t0 = kb_now_mono();
	pid_t p;
	int fd;

	if ((p = fork()) < 0)
		die("fork failed");
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(agent_log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(O.agent, O.agent, "--config", conf_path, (char *)NULL);
		_exit(127);
	}
	agent_pid = p;
	while (kb_now_mono() - t0 < 30) {
		if (access(sock_path, F_OK) == 0 && http(h, "GET", "/keybridge/status", NULL, rb) == 200)
			return;
		if (waitpid(p, NULL, WNOHANG) == p) {
			agent_pid = -1;
			fprintf(stderr, "bench_vault: the agent exited; its log (%s):\n", agent_log);
			{
				char cmd[500];

				snprintf(cmd, sizeof(cmd), "cat '%s' >&2", agent_log);
				if (system(cmd) != 0)
					fprintf(stderr, "(cannot show it)\n");
			}
			die("the agent did not start");
		}
		usleep(50000);
	}
	die("the agent did not answer within 30 s");
}

static void
stop_agent(void)
{
	double t0 = kb_now_mono();
	pid_t p = agent_pid;

	if (p <= 0)
		return;
	kill(p, SIGTERM);
	while (kb_now_mono() - t0 < 10) {
		if (waitpid(p, NULL, WNOHANG) == p) {
			agent_pid = -1;
			return;
		}
		usleep(20000);
	}
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	agent_pid = -1;
}

/* --------------------------------------------------------------- report */

struct row {
	const char *figure;
	char kb[32], base[32], ratio[16], target[24];
	int pass;                 /* 1 pass, 0 fail, -1 no target */
};
static struct row rows[16];
static int n_rows;

static struct row *
add_row(const char *figure)
{
	struct row *r = &rows[n_rows++];

	memset(r, 0, sizeof(*r));
	r->figure = figure;
	r->pass = -1;
	snprintf(r->ratio, sizeof(r->ratio), "-");
	snprintf(r->target, sizeof(r->target), "-");
	return r;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_vault [--keys N] [--seconds S] [--agent PATH] [--cli PATH]\n"
	    "                   [--module PATH] [--diag M] [--isolate] [--tap] [--strict]\n"
	    "  --keys N      keys in the vault for the list and memory figures (default 10000)\n"
	    "  --seconds S   seconds per side for each throughput figure (default 2)\n"
	    "  --agent PATH  keybridged (default: $KEYBRIDGED)\n"
	    "  --cli PATH    keybridge (default: $KEYBRIDGE_BIN, then next to the agent's build)\n"
	    "  --diag M      also make M AES token objects in this process, raw, and\n"
	    "                report what SoftHSM alone holds in memory per object\n"
	    "  --isolate     the agent runs the module in keybridge-p11host (isolate = true)\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	static char cli_guess[600];
	const char *e;
	int i;

	O.keys = 10000;
	O.secs = 2.0;
	O.agent = getenv("KEYBRIDGED");
	O.cli = getenv("KEYBRIDGE_BIN");
	O.module = p11t_softhsm();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
			O.keys = atol(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			O.secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc)
			O.agent = argv[++i];
		else if (strcmp(argv[i], "--cli") == 0 && i + 1 < argc)
			O.cli = argv[++i];
		else if (strcmp(argv[i], "--module") == 0 && i + 1 < argc)
			O.module = argv[++i];
		else if (strcmp(argv[i], "--tap") == 0)
			O.tap = true;
		else if (strcmp(argv[i], "--strict") == 0)
			O.strict = true;
		else if (strcmp(argv[i], "--diag") == 0 && i + 1 < argc)
			O.diag = atol(argv[++i]);
		else if (strcmp(argv[i], "--isolate") == 0)
			O.isolate = true;
		else
			usage();
	}
	if (O.keys < 1 || O.keys > 1000000 || O.diag < 0 || O.diag > 1000000 || O.secs <= 0 || O.secs > 600)
		usage();
	if (O.agent == NULL || *O.agent == '\0') {
		fprintf(stderr, "bench_vault: give --agent PATH or set KEYBRIDGED\n");
		exit(2);
	}
	if ((O.cli == NULL || *O.cli == '\0') && (e = strrchr(O.agent, '/')) != NULL) {
		/* BUILD/agent/keybridged -> BUILD/cli/keybridge */
		snprintf(cli_guess, sizeof(cli_guess), "%.*s/../cli/keybridge",
		    (int)(e - O.agent), O.agent);
		O.cli = cli_guess;
	}
}

int
main(int argc, char **argv)
{
	double t_raw[2] = { 0 }, t_kb[2] = { 0 }, ts_raw = 0, ts_kb = 0, t0, t, last;
	long n_raw[2] = { 0 }, n_kb[2] = { 0 }, ns_raw = 0, ns_kb = 0, i;
	long rss0, rss_created, rss_final, hwm_final, listed, pages, sample;
	long host0, host_final;
	double list_api = -1, list_cli[3], bulk_secs = 0, bulk_rate = 0;
	char rsa_ver[80], sign_path[256], sign_body[256], *b64, note[300] = "";
	struct signer sg[2], sr[2];
	struct bulk bk[2];
	struct kb_buf rb;
	unsigned long slot;
	CK_OBJECT_HANDLE raw_rsa;
	bool all_pass = true, cli_ok = false;
	int k, round, rc = 0, tn = 0;
	CURL *h;
	struct sigaction sa;

	parse_args(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (access(O.agent, X_OK) != 0) {
		fprintf(stderr, "bench_vault: no agent at %s\n", O.agent);
		if (O.tap)
			printf("1..0 # SKIP no keybridged at %s\n", O.agent);
		return O.tap ? 0 : 77;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
	kb_buf_init(&rb, RESP_CAP);
	json_hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	json_hdrs = curl_slist_append(json_hdrs, "Expect:");

	/* Two tokens in one SoftHSM config: the raw one here, the vault's. */
	if (p11t_prepare(&X) != 0 || p11t_token(&X, O.module, "kb-bench-raw") != 0) {
		fprintf(stderr, "bench_vault: no SoftHSM2 token: %s\n", kb_error_detail(-1));
		p11t_cleanup(&X);
		if (O.tap)
			printf("1..0 # SKIP no SoftHSM2 token\n");
		return O.tap ? 0 : 77;
	}
	if (kb_p11_find_free_slot(X.m, &slot) != 0 ||
	    kb_p11_init_token(X.m, slot, "kb-bench-vault", X.so_pin, X.pin) != 0)
		die("cannot initialise the vault's token");
	fl = kb_p11_module_function_list(X.m);
	raw_slot = kb_p11_token_slot(X.t);
	/* Login is per application: X.t logged in, so these sessions are too. */
	if (fl->C_OpenSession(raw_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &raw_s) != CKR_OK)
		die("C_OpenSession failed");
	write_conf();
	h = http_new();
	t0 = kb_now_mono();
	start_agent(h, &rb);
	fprintf(stderr, "bench_vault: agent pid %d up in %.2f s; dir %s\n", (int)agent_pid,
	    kb_now_mono() - t0, X.dir);
	usleep(200000);
	rss0 = proc_kb(agent_pid, "VmRSS");
	host0 = children_kb(agent_pid, "VmRSS");

	/* Warm-up: first key of each kind on both sides, not timed. */
	for (k = 0; k < 2; k++) {
		double dummy = 0;

		create_slice(h, &rb, (enum kind)k, true, 0, &dummy);
		create_slice(h, &rb, (enum kind)k, false, 0, &dummy);
	}

	/* Figure 1: key create, single client, interleaved slices. */
	fprintf(stderr, "bench_vault: figure 1, key create (%.1f s per side per type)\n", O.secs);
	for (round = 0; round < ROUNDS; round++)
		for (k = 0; k < 2; k++) {
			bool agent_first = round % 2 == 1;

			n_kb[k] += agent_first ? create_slice(h, &rb, (enum kind)k, true,
			    O.secs / ROUNDS, &t_kb[k]) : 0;
			n_raw[k] += create_slice(h, &rb, (enum kind)k, false, O.secs / ROUNDS,
			    &t_raw[k]);
			n_kb[k] += !agent_first ? create_slice(h, &rb, (enum kind)k, true,
			    O.secs / ROUNDS, &t_kb[k]) : 0;
		}
	raw_destroy_made();

	/* Figure 2: RSA-2048 RS256 sign, 2 clients each side. */
	fprintf(stderr, "bench_vault: figure 2, RSA-2048 sign, 2 clients (%.1f s per side)\n",
	    O.secs);
	if (api_create(h, "sign-rsa", "{\"kty\":\"RSA-HSM\",\"key_size\":2048}", &rb, rsa_ver,
	    sizeof(rsa_ver)) != 0)
		die("cannot create the RSA key through the agent");
	api_created++;
	if (raw_gen_pair(raw_s, false, true, &raw_rsa) != 0)
		die("cannot generate the raw RSA key");
	memset(digest, 0x42, sizeof(digest));
	if ((b64 = kb_b64url_encode(digest, sizeof(digest))) == NULL)
		die("out of memory");
	snprintf(sign_path, sizeof(sign_path), "/keys/sign-rsa/%s/sign?" API, rsa_ver);
	snprintf(sign_body, sizeof(sign_body), "{\"alg\":\"RS256\",\"value\":\"%s\"}", b64);
	free(b64);
	memset(sg, 0, sizeof(sg));
	memset(sr, 0, sizeof(sr));
	for (k = 0; k < 2; k++) {
		sg[k].agent = true;
		sg[k].h = http_new();
		sg[k].path = sign_path;
		sg[k].body = sign_body;
		kb_buf_init(&sg[k].rb, RESP_CAP);
		sr[k].key = raw_rsa;
		if (fl->C_OpenSession(raw_slot, CKF_SERIAL_SESSION, NULL, NULL, &sr[k].s) != CKR_OK)
			die("C_OpenSession failed");
	}
	/* Warm-up: connections open, first sign on each session. */
	t = 0;
	(void)sign_slice(sg, 0, &t);
	(void)sign_slice(sr, 0, &t);
	cpu_self_kb = cpu_agent_kb = cpu_self_raw = 0;
	for (round = 0; round < ROUNDS; round++) {
		if (round % 2 == 1)
			ns_kb += sign_slice(sg, O.secs / ROUNDS, &ts_kb);
		ns_raw += sign_slice(sr, O.secs / ROUNDS, &ts_raw);
		if (round % 2 == 0)
			ns_kb += sign_slice(sg, O.secs / ROUNDS, &ts_kb);
	}
	for (k = 0; k < 2; k++) {
		fl->C_CloseSession(sr[k].s);
		curl_easy_cleanup(sg[k].h);
		kb_buf_free(&sg[k].rb);
	}
	raw_destroy_made();

	/* Bulk: fill the vault up to --keys keys, 2 clients. */
	bulk_target = O.keys > api_created ? O.keys - api_created : 0;
	fprintf(stderr, "bench_vault: creating %ld keys through the agent (2 clients; %ld exist)\n",
	    bulk_target, api_created);
	t0 = last = kb_now_mono();
	{
		long prev = 0;

		for (k = 0; k < 2; k++) {
			bk[k].h = http_new();
			kb_buf_init(&bk[k].rb, RESP_CAP);
			if (pthread_create(&bk[k].th, NULL, bulk_run, &bk[k]) != 0)
				die("pthread_create failed");
		}
		while (atomic_load(&bulk_done) < bulk_target && !atomic_load(&failed)) {
			usleep(100000);
			t = kb_now_mono();
			if (t - last >= 10) {
				long d = atomic_load(&bulk_done);

				fprintf(stderr, "bench_vault:   %ld/%ld keys, %.0f s, %.1f keys/s now, "
				    "agent VmRSS %ld kB\n", d, bulk_target, t - t0,
				    (d - prev) / (t - last), proc_kb(agent_pid, "VmRSS"));
				prev = d;
				last = t;
			}
		}
		for (k = 0; k < 2; k++) {
			pthread_join(bk[k].th, NULL);
			curl_easy_cleanup(bk[k].h);
			kb_buf_free(&bk[k].rb);
		}
		if (atomic_load(&failed))
			die("key create through the agent failed");
	}
	bulk_secs = kb_now_mono() - t0;
	bulk_rate = bulk_target / (bulk_secs > 0 ? bulk_secs : 1);
	api_created += bulk_target;
	rss_created = proc_kb(agent_pid, "VmRSS");
	fprintf(stderr, "bench_vault: %ld keys created in %.1f s (%.1f keys/s); %ld keys in the "
	    "vault\n", bulk_target, bulk_secs, bulk_rate, api_created);

	/* Figure 3: listing.  Paging with libcurl first (also warms caches). */
	fprintf(stderr, "bench_vault: figure 3, listing %ld keys\n", api_created);
	t0 = kb_now_mono();
	listed = list_by_paging(h, &rb, &pages);
	list_api = kb_now_mono() - t0;
	if (listed != api_created) {
		fprintf(stderr, "bench_vault: paging listed %ld keys in %ld pages, expected %ld\n",
		    listed, pages, api_created);
		rc = 1;
	}
	if (access(O.cli, X_OK) == 0) {
		int crc = 0;

		cli_ok = true;
		for (k = 0; k < 3 && cli_ok; k++)
			if ((list_cli[k] = cli_list(&crc)) < 0) {
				cli_ok = false;
				snprintf(note, sizeof(note), "`%s key list` failed (exit %d, stderr in "
				    "cli.err); timed the libcurl paging instead", O.cli, crc);
				{
					char ef[420], line[200] = "";
					FILE *f;

					snprintf(ef, sizeof(ef), "%s/cli.err", X.dir);
					if ((f = fopen(ef, "r")) != NULL) {
						if (fgets(line, sizeof(line), f) == NULL)
							line[0] = '\0';
						fclose(f);
					}
					fprintf(stderr, "bench_vault: CLI: %s", line);
				}
			}
	} else {
		snprintf(note, sizeof(note), "no CLI at %s; timed the libcurl paging instead", O.cli);
	}

	/* Figure 4: a get on a sample, then VmRSS. */
	sample = api_created < 500 ? api_created : 500;
	for (i = 0; i < sample; i++) {
		char path[128];
		long st;

		/* Spread over the bulk keys (the RSA key if there are none). */
		if (bulk_target > 0)
			snprintf(path, sizeof(path), "/keys/k%06ld?" API, (i * 7919) % bulk_target);
		else
			snprintf(path, sizeof(path), "/keys/sign-rsa?" API);
		if ((st = http(h, "GET", path, NULL, &rb)) != 200) {
			http_fail(path, st, &rb);
			die("get failed");
		}
	}
	rss_final = proc_kb(agent_pid, "VmRSS");
	hwm_final = proc_kb(agent_pid, "VmHWM");
	host_final = children_kb(agent_pid, "VmRSS");
	fprintf(stderr, "bench_vault: agent VmRSS %ld kB = RssAnon %ld + RssFile %ld + RssShmem "
	    "%ld kB\n", rss_final, proc_kb(agent_pid, "RssAnon"), proc_kb(agent_pid, "RssFile"),
	    proc_kb(agent_pid, "RssShmem"));
	if (O.diag > 0) {
		/* SoftHSM's own memory per token object, in this process. */
		long before = proc_kb(getpid(), "VmRSS"), after;

		fprintf(stderr, "bench_vault: diag: %ld raw AES token objects here\n", O.diag);
		t0 = kb_now_mono();
		for (i = 0; i < O.diag; i++)
			if (raw_gen_aes(raw_s, true) != 0)
				die("raw key generation failed");
		t = kb_now_mono() - t0;
		after = proc_kb(getpid(), "VmRSS");
		fprintf(stderr, "bench_vault: diag: this process's VmRSS %ld -> %ld kB with %ld more "
		    "AES token objects: %.2f kB per object (SoftHSM alone); %.1f raw creates/s\n",
		    before, after, O.diag, (double)(after - before) / O.diag, O.diag / t);
		raw_destroy_made();
	}

	/* Report. */
	{
		static const char *const f1[] = { "key create oct-HSM 256 (ops/s)",
			"key create EC-HSM P-256 (ops/s)" };
		struct row *r;
		double ratio;

		for (k = 0; k < 2; k++) {
			double kbv = n_kb[k] / t_kb[k], rawv = n_raw[k] / t_raw[k];

			r = add_row(f1[k]);
			ratio = kbv / rawv;
			snprintf(r->kb, sizeof(r->kb), "%.1f", kbv);
			snprintf(r->base, sizeof(r->base), "%.1f", rawv);
			snprintf(r->ratio, sizeof(r->ratio), "%.3f", ratio);
			snprintf(r->target, sizeof(r->target), ">= 0.80");
			r->pass = ratio >= 0.80;
		}
		r = add_row("RSA-2048 sign, 2 clients (ops/s)");
		ratio = (ns_kb / ts_kb) / (ns_raw / ts_raw);
		snprintf(r->kb, sizeof(r->kb), "%.1f", ns_kb / ts_kb);
		snprintf(r->base, sizeof(r->base), "%.1f", ns_raw / ts_raw);
		snprintf(r->ratio, sizeof(r->ratio), "%.3f", ratio);
		snprintf(r->target, sizeof(r->target), ">= 0.85");
		r->pass = ratio >= 0.85;

		r = add_row(O.isolate ? "  sign CPU/op ms: agent&host+client" :
		    "  sign CPU per op (ms): agent+client");
		snprintf(r->kb, sizeof(r->kb), "%.2f+%.2f", cpu_agent_kb * 1000 / ns_kb,
		    cpu_self_kb * 1000 / ns_kb);
		snprintf(r->base, sizeof(r->base), "%.2f", cpu_self_raw * 1000 / ns_raw);
		snprintf(r->ratio, sizeof(r->ratio), "%.3f",
		    (cpu_agent_kb + cpu_self_kb) / ns_kb / (cpu_self_raw / ns_raw));

		r = add_row(cli_ok ? "key list, CLI (wall s)" : "key list, API paging (wall s)");
		{
			double v = list_api;

			if (cli_ok) {
				/* median of 3 */
				double a = list_cli[0], b = list_cli[1], c = list_cli[2];

				v = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
			}
			snprintf(r->kb, sizeof(r->kb), "%.3f", v);
			snprintf(r->base, sizeof(r->base), "%.3f", list_api);
			snprintf(r->ratio, sizeof(r->ratio), "%.3f", v / list_api);
			snprintf(r->target, sizeof(r->target), "<= 1 s");
			r->pass = v <= 1.0;
		}
		r = add_row("agent VmRSS (MB)");
		snprintf(r->kb, sizeof(r->kb), "%.1f", rss_final / 1024.0);
		snprintf(r->base, sizeof(r->base), "%.1f", rss0 / 1024.0);
		snprintf(r->ratio, sizeof(r->ratio), "%.3f", (double)rss_final / rss0);
		snprintf(r->target, sizeof(r->target), "<= 64 MB");
		r->pass = rss_final >= 0 && rss_final <= 64 * 1024;
		if (host_final >= 0) {
			r = add_row("  module host VmRSS (MB)");
			snprintf(r->kb, sizeof(r->kb), "%.1f", host_final / 1024.0);
			snprintf(r->base, sizeof(r->base), "%.1f", host0 / 1024.0);
			r = add_row("  agent + module host VmRSS (MB)");
			snprintf(r->kb, sizeof(r->kb), "%.1f",
			    (rss_final + host_final) / 1024.0);
			snprintf(r->base, sizeof(r->base), "%.1f",
			    (rss0 + host0) / 1024.0);
		}

		r = add_row("fsync 4 KiB in the state dir (ms)");
		snprintf(r->kb, sizeof(r->kb), "%.2f", fsync_ms(X.dir));
		snprintf(r->base, sizeof(r->base), "-");

		r = add_row("bulk key create, 2 clients (keys/s)");
		snprintf(r->kb, sizeof(r->kb), "%.1f", bulk_rate);
		snprintf(r->base, sizeof(r->base), "-");
	}
	printf("%s%-36s %12s %12s %8s %10s  %s\n", O.tap ? "# " : "", "figure", "keybridge",
	    "baseline", "ratio", "target", "result");
	for (k = 0; k < n_rows; k++) {
		printf("%s%-36s %12s %12s %8s %10s  %s\n", O.tap ? "# " : "", rows[k].figure,
		    rows[k].kb, rows[k].base, rows[k].ratio, rows[k].target,
		    rows[k].pass < 0 ? "-" : rows[k].pass ? "PASS" : "FAIL");
		if (rows[k].pass == 0)
			all_pass = false;
	}
	printf("%s(%d interleaved rounds, %.2f s per side per throughput figure; %ld keys in the "
	    "vault, %ld created in bulk in %.1f s; list baseline: GET /keys?maxresults=25 paged "
	    "with libcurl, %ld pages; memory baseline: VmRSS after start, %.1f MB after bulk "
	    "create, peak %.1f MB; %ld gets on a sample)\n", O.tap ? "# " : "", ROUNDS, O.secs,
	    api_created, bulk_target, bulk_secs, pages, rss_created / 1024.0, hwm_final / 1024.0,
	    sample);
	if (note[0] != '\0')
		printf("%snote: %s\n", O.tap ? "# " : "", note);
	if (O.tap) {
		printf("ok %d - key create measured on both sides\n", ++tn);
		printf("%s %d - RSA sign measured on both sides\n",
		    ns_kb > 0 && ns_raw > 0 ? "ok" : "not ok", ++tn);
		printf("%s %d - paging listed all %ld keys\n",
		    listed == api_created ? "ok" : "not ok", ++tn, api_created);
		printf("%s %d - agent memory read\n", rss_final > 0 ? "ok" : "not ok", ++tn);
		printf("1..%d\n", tn);
	}

	stop_agent();
	fl->C_CloseSession(raw_s);
	curl_easy_cleanup(h);
	kb_buf_free(&rb);
	curl_slist_free_all(json_hdrs);
	free(raw_made);
	p11t_cleanup(&X);
	curl_global_cleanup();
	if (rc != 0)
		return O.tap ? 0 : rc;
	return O.strict && !all_pass ? 3 : 0;
}
