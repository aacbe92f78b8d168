/*
 * bench_kvclient: kv-client against the official Azure SDK for JavaScript,
 * as clients of one keybridged HTTPS listener, in one run (issue 5,
 * "Speed").
 *
 *  - kv-client (kv-client/, public API only): one client from
 *    kb_kv_client_new_url() with the dev CA and the token-file credential
 *    (kb_kv_credential_token_file on KEYBRIDGE_TOKEN_FILE) as its token
 *    source, its client-side limiter off (no_limiter: the agent has no
 *    Azure throttle to stay under, and the SDK has no limiter), shared by
 *    --concurrency threads (default 4), each request borrowing a pooled
 *    connection;
 *  - bench/kvclient-sdk.mjs: @azure/keyvault-keys (tests/sdk/node_modules,
 *    pinned by tests/sdk/package-lock.json), one KeyClient, --concurrency
 *    promises in flight.
 *
 * Both at service version 7.6 with retries off, so that every call is
 * exactly one request on the wire.  Workload:
 *
 *   setup  --keys AES-256 keys (kty oct-HSM; default 10,000), made through
 *          the agent's Unix socket with kv-client (8 threads; over HTTPS
 *          with --url), not timed.  Not EC or RSA: the agent reads their
 *          public half from the token on a get, and SoftHSM's file store
 *          scans its directory on every lookup, so at 10,000 key pairs the
 *          token, not either client, would set the pace (tens of ms a get).
 *          Then each client's warm-up, not timed: every worker
 *          gets key 0 WARM times, which answers Key Vault's bearer
 *          challenge and fills the connection pool;
 *   get    GET /keys/{name} of every key once, the answer decoded (kv-client:
 *          kb_kv_key_bundle_parse; SDK: its KeyVaultKey) and checked;
 *   list   --concurrency walks at once over the whole vault, paging with
 *          maxresults=--page (25, Key Vault's most) through nextLink
 *          (kv-client: kb_kv_list; SDK: listPropertiesOfKeys().byPage()),
 *          each item's id decoded; one round untimed (node's JIT), then
 *          --list-rounds rounds (default 6: a round of kv-client takes a
 *          quarter of a second, and the host's bursts of steal must not
 *          decide the figure).
 *
 * The two clients alternate slices of each phase (GET_ROUNDS slices of the
 * gets, one list round per slice), which side goes first alternating, so
 * drift in the machine's load (shared, noisy) favours neither.
 *
 * Figures: ops/s for each side and the ratio kv-client/SDK (target >= 3
 * for get and for list); requests on the wire for each side (kv-client:
 * kb_kv_client_stats; SDK: a pipeline policy), which must be equal: a
 * difference fails the run, whatever the options; TLS handshakes
 * (kv-client: the stats' new connections; SDK: calls of tls.connect, as
 * bench/https-sdk.mjs counts them) against the connections each client
 * holds to the agent at the end (its ESTABLISHED sockets to the agent's
 * port, from /proc/net/tcp and /proc/PID/fd): target one handshake per
 * pooled connection; the kernel's count of accepted TCP connections
 * (PassiveOpens in /proc/net/snmp) over each side's slices, the agent's
 * side of the handshakes (the whole network namespace: other programs'
 * loopback connections count too, so it is an upper bound); the client's
 * CPU per operation (kv-client: getrusage of this process; SDK: node's
 * process.cpuUsage) and the agent's (scheduler run time of its threads);
 * the CPU the hypervisor took from the machine during each side's slices
 * (/proc/stat's steal over wall time, in cores), which is what moves the
 * ratios from one run to the next on a shared host.
 *
 * Modes, as bench_https:
 *   default          a temporary directory (under --tmp: /dev/shm when it
 *                    can, since making the keys on a busy disk is slow;
 *                    the timed phases only read), `keybridge dev up --dir
 *                    TMP/dev --https`; dev down and removal at the end;
 *   --dir DIR        a dev environment DIR made (or started) with dev up;
 *                    left running, keys left in it;
 *   --url U --ca F --token-file F [--pid PID]
 *                    any running agent; keys made over HTTPS; agent CPU
 *                    only with --pid.
 * Key names carry a random run prefix; listings count every item and the
 * run's own separately (with --dir, earlier runs' keys are listed too).
 *
 *   bench_kvclient [--keys N] [--concurrency N] [--list-rounds N] [--page N]
 *                  [--cli PATH] [--agent PATH] [--node PATH]
 *                  [--sdk SCRIPT | --no-sdk] [--tmp DIR]
 *                  [--dir DIR | --url URL --ca FILE --token-file FILE [--pid PID]]
 *                  [--tap] [--strict]
 *
 * --tap prints TAP (a quick check for the test suite: every answer
 * checked, every key listed, request counts equal, one handshake per
 * pooled connection; the throughput target is not asserted).  --strict
 * makes a missed target exit 3.  Unequal request counts exit 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "benchdev.h"
#include "kb_common.h"
#include "kb_kvclient.h"

#define API_VERSION "7.6"
#define MAX_CONC 32
#define CREATE_THREADS 8
#define GET_ROUNDS 4
#define WARM 32
#define LINE_CAP 8192
#define MAX_HELD 4096
#define MAX_LIST_ROUNDS 100

enum side { S_KV, S_SDK, N_SIDES };
/* PH_LWARM: a list round before the timed ones, not reported. */
enum phase { PH_WARM, PH_GET, PH_LIST, PH_LWARM, N_PH };

struct fig {
	long ops;             /* gets, or items listed */
	long requests;        /* on the wire */
	long pages;
	long items, ours;     /* list: items seen, of them the run's keys */
	long bad;             /* answers that did not check */
	long handshakes;      /* TLS: new connections */
	long challenges;      /* 401 answers (the connection stays, a GET has no body) */
	long secure;          /* SDK: handshakes completed */
	long accepts;         /* connections the agent's port saw open, -1 unknown */
	double wall, cpu;     /* s */
	double agent_cpu;     /* s, -1 unknown */
	double steal;         /* s the hypervisor took from the machine, -1 unknown */
	int slices;
	double rate[MAX_LIST_ROUNDS]; /* list: each slice's pages/s */
};

struct opts {
	long keys;
	int conc, list_rounds, page;
	const char *tmp;
	struct bench_common_opts c;
};

static struct opts O;
static struct fig F[N_SIDES][N_PH];
static char tmpdir[256], devdir[300], prefix[32];
static char *url, *ca_file, *tok_file, *sock_path;
static unsigned agent_port;
static bool own_agent;
static volatile pid_t agent_pid = -1;
static volatile pid_t node_pid = -1;
static atomic_int failed;

static kb_kv_client *kv;                  /* the measured client */
static kb_kv_credential *cred;

/* the SDK script */
static FILE *sdk_out;
static int sdk_in = -1;
static char sdk_skip[300], sdk_version[32], node_version[32];

static void stop_agent(void);

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void
rmtree(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
stop_node(void)
{
	if (node_pid > 0) {
		kill(node_pid, SIGKILL);
		waitpid(node_pid, NULL, 0);
		node_pid = -1;
	}
}

static void die(const char *what) __attribute__((noreturn));

/* *sum += t1 - t0 for two readings of a counter; -1 (unknown) for good
 * once a reading failed. */
static void
add_span(double *sum, double t0, double t1)
{
	*sum = t0 >= 0 && t1 >= 0 && *sum >= 0 ? *sum + t1 - t0 : -1;
}

/* *sum += n for a count; -1 (unknown) for good once one was unknown. */
static void
add_count(long *sum, long n)
{
	*sum = n >= 0 && *sum >= 0 ? *sum + n : -1;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_kvclient: %s\n", what);
	stop_node();
	stop_agent();                 /* only the agent we started */
	rmtree(tmpdir);               /* our files; --dir's DIR is elsewhere */
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

/* ------------------------------------------------------ /proc readings */

static int
cmp_ul(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * The agent's side of the handshakes: the TCP connections to its port in
 * this network namespace, as the kernel lists them (/proc/net/tcp{,6}):
 * server-side entries (local port = the agent's) and client-side ones
 * (remote port = the agent's), in any state but LISTEN, each named by its
 * client address and port.  A connection closed normally stays listed in
 * TIME_WAIT on the side that closed first (60 s), so the names new after
 * a slice, against those before it, are the connections the agent
 * accepted during the slice.  A connection reset at close leaves no
 * trace: the warm-ups, which meet the challenge and are not timed, also
 * sample the table every 0.2 ms.
 */
struct conns {
	unsigned long *v;     /* names, sorted and unique after conns_sort */
	size_t n, cap;
	bool bad;             /* /proc could not tell */
};

static void
conns_sort(struct conns *c)
{
	size_t i, k = 0;

	if (c->n == 0)
		return;
	qsort(c->v, c->n, sizeof(*c->v), cmp_ul);
	for (i = 0; i < c->n; i++)
		if (k == 0 || c->v[i] != c->v[k - 1])
			c->v[k++] = c->v[i];
	c->n = k;
}

static void
conns_snap(struct conns *c)
{
	static const char *const tabs[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512], loc[64], rem[64], *lc, *rc, *cl;
	unsigned long *nv, h;
	unsigned st, lport, rport, cport;
	bool any = false;
	size_t t;
	FILE *f;

	for (t = 0; t < 2 && !c->bad; t++) {
		if ((f = fopen(tabs[t], "r")) == NULL)
			continue;
		any = true;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, " %*s %63s %63s %x", loc, rem, &st) != 3 ||
			    (lc = strrchr(loc, ':')) == NULL || (rc = strrchr(rem, ':')) == NULL ||
			    st == 0x0a)
				continue;
			lport = (unsigned)strtoul(lc + 1, NULL, 16);
			rport = (unsigned)strtoul(rc + 1, NULL, 16);
			if (lport == agent_port) {
				*rc = '\0';
				cl = rem;
				cport = rport;
			} else if (rport == agent_port) {
				*lc = '\0';
				cl = loc;
				cport = lport;
			} else {
				continue;
			}
			/* FNV-1a of the client address, with its port */
			for (h = 1469598103934665603ul; *cl != '\0'; cl++)
				h = (h ^ (unsigned char)*cl) * 1099511628211ul;
			if (c->n == c->cap) {
				if (c->n >= 4096)
					conns_sort(c);
				if (c->n == c->cap) {
					c->cap = c->cap ? c->cap * 2 : 256;
					if ((nv = realloc(c->v, c->cap * sizeof(*nv))) == NULL) {
						c->bad = true;
						break;
					}
					c->v = nv;
				}
			}
			c->v[c->n++] = (h << 16) ^ cport;
		}
		fclose(f);
	}
	if (!any)
		c->bad = true;
}

/* Names in after that are not in before; -1 unknown.  Frees both. */
static long
conns_new(struct conns *before, struct conns *after)
{
	long k = 0;
	size_t i;

	if (before->bad || after->bad) {
		k = -1;
	} else {
		conns_sort(before);
		conns_sort(after);
		for (i = 0; i < after->n; i++)
			if (before->n == 0 || bsearch(&after->v[i], before->v, before->n,
			    sizeof(*before->v), cmp_ul) == NULL)
				k++;
	}
	free(before->v);
	free(after->v);
	memset(before, 0, sizeof(*before));
	memset(after, 0, sizeof(*after));
	return k;
}

static atomic_int sampling;

static void *
sampler_run(void *arg)
{
	struct conns *c = arg;

	while (atomic_load(&sampling)) {
		conns_snap(c);
		usleep(200);
	}
	return NULL;
}

/* Before a slice: the table now, and a sampler if ph is a warm-up. */
static void
conns_begin(enum phase ph, struct conns *before, struct conns *after, pthread_t *th)
{
	memset(before, 0, sizeof(*before));
	memset(after, 0, sizeof(*after));
	conns_snap(before);
	atomic_store(&sampling, ph == PH_WARM);
	if (ph == PH_WARM && pthread_create(th, NULL, sampler_run, after) != 0)
		die("pthread_create failed");
}

/* After it: connections the agent accepted during it, or -1. */
static long
conns_end(enum phase ph, struct conns *before, struct conns *after, pthread_t th)
{
	if (ph == PH_WARM) {
		atomic_store(&sampling, 0);
		pthread_join(th, NULL);
	}
	conns_snap(after);
	return conns_new(before, after);
}

/*
 * The TCP connections pid holds to the agent's port: its socket inodes
 * (/proc/PID/fd) that /proc/net/tcp{,6} shows ESTABLISHED with that
 * remote port.  -1 when /proc cannot tell.
 */
static long
held_connections(pid_t pid)
{
	static const char *const tabs[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned long ino[MAX_HELD], in;
	char path[64], fdp[320], lnk[64], line[512], rem[64], *colon;
	struct dirent *d;
	unsigned st, port;
	size_t n = 0, t;
	long held = 0;
	DIR *dir;
	FILE *f;
	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL && n < MAX_HELD) {
		snprintf(fdp, sizeof(fdp), "%s/%.255s", path, d->d_name);
		if ((k = readlink(fdp, lnk, sizeof(lnk) - 1)) <= 0)
			continue;
		lnk[k] = '\0';
		if (sscanf(lnk, "socket:[%lu]", &in) == 1)
			ino[n++] = in;
	}
	closedir(dir);
	qsort(ino, n, sizeof(ino[0]), cmp_ul);
	for (t = 0; t < 2; t++) {
		if ((f = fopen(tabs[t], "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, " %*s %*s %63s %x %*s %*s %*s %*u %*u %lu", rem, &st,
			    &in) != 3 || (colon = strrchr(rem, ':')) == NULL)
				continue;
			port = (unsigned)strtoul(colon + 1, NULL, 16);
			if (st == 1 && port == agent_port &&
			    bsearch(&in, ino, n, sizeof(ino[0]), cmp_ul) != NULL)
				held++;
		}
		fclose(f);
	}
	return held;
}

/* ------------------------------------------------------------ kv-client */

/* A client for the agent's HTTPS listener, as the benchmark measures it. */
static kb_kv_client *
kv_new(void)
{
	struct kb_kv_limiter_info li;
	struct kb_kv_token_source src;
	struct kb_kv_options o;
	kb_kv_client *c = NULL;

	memset(&o, 0, sizeof(o));
	kb_kv_credential_source(cred, &src);
	o.ca_file = ca_file;
	o.tokens = &src;
	o.api_version = API_VERSION;
	o.max_retries = KB_KV_NO_RETRY;    /* one call, one request: as the SDK's */
	o.skip_resource_check = true;      /* loopback double: resource is vault.azure.net */
	/*
	 * The client-side limiter keeps a client under Azure's throttle (4,000
	 * requests per 10 s a vault); keybridged has no such throttle, and the
	 * SDK no limiter: off, or it would measure the limiter's pacing.
	 */
	o.no_limiter = true;
	if (kb_kv_client_new_url(url, &o, &c) != 0) {
		fprintf(stderr, "bench_kvclient: %s\n", kb_error_detail(-1));
		die("cannot make the kv-client client");
	}
	if (kb_kv_client_limiter(c, &li) != KB_ERR_NOT_FOUND)
		die("the kv-client client has a limiter although no_limiter is set");
	return c;
}

static void
key_name(long i, char *buf, size_t n)
{
	snprintf(buf, n, "%s%05ld", prefix, i);
}

/* GET /keys/NAME, decoded and checked: 0, or -1 (said on stderr). */
static int
kv_get(kb_kv_client *c, long i, long *bad)
{
	struct kb_kv_response *resp = NULL;
	struct kb_kv_key_bundle *kb = NULL;
	char name[64], path[128];
	int r;

	key_name(i, name, sizeof(name));
	snprintf(path, sizeof(path), "/keys/%s", name);
	if ((r = kb_kv_request(c, "GET", path, NULL, &resp)) != 0 ||
	    (r = kb_kv_response_error(resp)) != 0 ||
	    (r = kb_kv_key_bundle_parse(resp->body, &kb)) != 0) {
		fprintf(stderr, "bench_kvclient: GET %s: %s\n", path, kb_error_detail(r));
		kb_kv_response_free(resp);
		return -1;
	}
	if (kb->kid.name == NULL || strcmp(kb->kid.name, name) != 0 || kb->kid.version == NULL ||
	    strcmp(kb->key.kty, "oct-HSM") != 0 || !(kb->attributes.present & KB_KV_HAS_CREATED))
		++*bad;
	kb_kv_key_bundle_free(kb);
	kb_kv_response_free(resp);
	return 0;
}

struct walk {
	long items, ours, bad;
};

/* One item of a listing: its id split, its attributes read. */
static int
list_item(void *arg, const cJSON *item)
{
	struct walk *w = arg;
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(item, "kid");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(item, "attributes");
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(at, "created");
	struct kb_kv_kid k;

	w->items++;
	if (!cJSON_IsString(kid) || !cJSON_IsNumber(cr) ||
	    kb_kv_kid_parse(kid->valuestring, &k) != 0) {
		w->bad++;
		return 0;
	}
	if (k.name != NULL && strncmp(k.name, prefix, strlen(prefix)) == 0)
		w->ours++;
	kb_kv_kid_clear(&k);
	return 0;
}

struct worker {
	pthread_t th;
	long ops, bad, items, ours;
};

static struct worker W[MAX_CONC];
static enum phase cur_phase;
static atomic_long next_op;
static long op_end;
static pthread_barrier_t start_line;

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct walk wk;
	char path[64];
	long i;
	int r;

	switch (cur_phase) {
	case PH_WARM:
		/* all at once, so that the pool opens a connection for each */
		pthread_barrier_wait(&start_line);
		for (i = 0; i < op_end && !atomic_load(&failed); i++, w->ops++)
			if (kv_get(kv, 0, &w->bad) != 0)
				atomic_store(&failed, 1);
		break;
	case PH_GET:
		while (!atomic_load(&failed) && (i = atomic_fetch_add(&next_op, 1)) < op_end) {
			if (kv_get(kv, i, &w->bad) != 0) {
				atomic_store(&failed, 1);
				break;
			}
			w->ops++;
		}
		break;
	case PH_LIST:
	case PH_LWARM:
		memset(&wk, 0, sizeof(wk));
		snprintf(path, sizeof(path), "/keys?maxresults=%d", O.page);
		if ((r = kb_kv_list(kv, path, 0, list_item, &wk)) != 0) {
			fprintf(stderr, "bench_kvclient: listing: %s\n", kb_error_detail(r));
			atomic_store(&failed, 1);
		}
		w->ops += wk.items;
		w->items += wk.items;
		w->ours += wk.ours;
		w->bad += wk.bad;
		break;
	default:
		break;
	}
	return NULL;
}

/*
 * A slice of a phase through kv-client on nthreads threads: gets [from,
 * to), one list round (a walk per thread), or a warm-up (to gets of key 0
 * per thread).
 */
static void
kv_slice(enum phase ph, long from, long to, int nthreads)
{
	struct fig *f = &F[S_KV][ph];
	struct kb_kv_stats s0, s1;
	struct conns cs0, cs1;
	pthread_t sth;
	double t0, c0, a0, a1, st0, st1;
	long acc;
	int t;

	cur_phase = ph;
	atomic_store(&next_op, from);
	op_end = to;
	memset(W, 0, sizeof(W));
	kb_kv_client_stats(kv, &s0);
	conns_begin(ph, &cs0, &cs1, &sth);
	a0 = bench_pid_cpu_sched(agent_pid);
	st0 = bench_host_steal();
	c0 = bench_self_cpu();
	if (pthread_barrier_init(&start_line, NULL, (unsigned)nthreads) != 0)
		die("pthread_barrier_init failed");
	t0 = kb_now_mono();
	for (t = 0; t < nthreads; t++)
		if (pthread_create(&W[t].th, NULL, worker_run, &W[t]) != 0)
			die("pthread_create failed");
	for (t = 0; t < nthreads; t++)
		pthread_join(W[t].th, NULL);
	pthread_barrier_destroy(&start_line);
	t0 = kb_now_mono() - t0;
	f->wall += t0;
	f->cpu += bench_self_cpu() - c0;
	st1 = bench_host_steal();
	a1 = bench_pid_cpu_sched(agent_pid);
	acc = conns_end(ph, &cs0, &cs1, sth);
	kb_kv_client_stats(kv, &s1);
	if (atomic_load(&failed))
		die("a request through kv-client failed");
	add_span(&f->agent_cpu, a0, a1);
	add_span(&f->steal, st0, st1);
	add_count(&f->accepts, acc);
	f->requests += (long)(s1.requests - s0.requests);
	f->handshakes += (long)(s1.connections - s0.connections);
	f->challenges += (long)(s1.challenges - s0.challenges);
	if (ph == PH_LIST || ph == PH_LWARM)
		f->pages += (long)(s1.requests - s0.requests);
	if (ph == PH_LIST && t0 > 0)
		f->rate[f->slices] = (double)(s1.requests - s0.requests) / t0;
	for (t = 0; t < nthreads; t++) {
		f->ops += W[t].ops;
		f->bad += W[t].bad;
		f->items += W[t].items;
		f->ours += W[t].ours;
	}
	f->slices++;
	if (s1.retries != s0.retries)
		die("kv-client retried a request (retries are off)");
}

/* ------------------------------------------------------- key creation */

static kb_kv_client *mk;             /* socket (or HTTPS) client for setup */
static atomic_long made;

static void *
create_run(void *arg)
{
	struct kb_kv_response *resp = NULL;
	char name[64], path[160];
	cJSON *body = NULL;
	long i;
	int r;

	(void)arg;
	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "kty", "oct-HSM") == NULL ||
	    cJSON_AddNumberToObject(body, "key_size", 256) == NULL) {
		atomic_store(&failed, 1);
		cJSON_Delete(body);
		return NULL;
	}
	while (!atomic_load(&failed) && (i = atomic_fetch_add(&next_op, 1)) < O.keys) {
		key_name(i, name, sizeof(name));
		/* the socket client sends the path as it is; HTTPS adds api-version */
		snprintf(path, sizeof(path), "/keys/%s/create%s", name,
		    sock_path != NULL ? "?api-version=" API_VERSION : "");
		if ((r = kb_kv_request_flags(mk, "POST", path, body, KB_KV_NOT_IDEMPOTENT,
		    &resp)) != 0 || (r = kb_kv_response_error(resp)) != 0) {
			fprintf(stderr, "bench_kvclient: create %s: %s\n", name,
			    kb_error_detail(r));
			atomic_store(&failed, 1);
		} else {
			atomic_fetch_add(&made, 1);
		}
		kb_kv_response_free(resp);
		resp = NULL;
	}
	cJSON_Delete(body);
	return NULL;
}

/* --keys keys, CREATE_THREADS requests at once; seconds taken. */
static double
create_keys(void)
{
	pthread_t th[CREATE_THREADS];
	double t0 = kb_now_mono(), last = t0, now;
	long prev = 0, d;
	int t;

	if (sock_path != NULL) {
		if (kb_kv_client_new_unix(sock_path, &mk) != 0) {
			fprintf(stderr, "bench_kvclient: %s\n", kb_error_detail(-1));
			die("cannot make a client for the agent's socket");
		}
	} else {
		mk = kv_new();
	}
	atomic_store(&next_op, 0);
	for (t = 0; t < CREATE_THREADS; t++)
		if (pthread_create(&th[t], NULL, create_run, NULL) != 0)
			die("pthread_create failed");
	while (atomic_load(&made) < O.keys && !atomic_load(&failed)) {
		usleep(100000);
		if ((now = kb_now_mono()) - last >= 10) {
			d = atomic_load(&made);
			fprintf(stderr, "bench_kvclient:   %ld/%ld keys, %.0f s, %.1f keys/s now\n",
			    d, O.keys, now - t0, (d - prev) / (now - last));
			prev = d;
			last = now;
		}
	}
	for (t = 0; t < CREATE_THREADS; t++)
		pthread_join(th[t], NULL);
	kb_kv_client_free(mk);
	mk = NULL;
	if (atomic_load(&failed))
		die("key creation failed");
	return kb_now_mono() - t0;
}

/* ---------------------------------------------------- processes, files */

/* `keybridge dev up --dir devdir --https`: URL, CA, token file, socket, pid. */
static void
dev_up(void)
{
	struct bench_dev d;

	if (bench_dev_up("bench_kvclient", O.c.cli, O.c.agent, devdir, tmpdir, &d) != 0)
		die("no agent");
	url = d.url;
	ca_file = d.ca_file;
	tok_file = d.tok_file;
	sock_path = d.socket;
	d.url = d.ca_file = d.tok_file = d.socket = NULL;
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


/* The port of https://HOST:PORT[/...]. */
static unsigned
url_port(const char *u)
{
	const char *h = strstr(u, "://"), *e, *c;
	unsigned long p;

	if (h == NULL)
		return 0;
	h += 3;
	e = h + strcspn(h, "/");
	if (*h == '[') {
		if ((c = memchr(h, ']', (size_t)(e - h))) == NULL || c[1] != ':')
			return 443;
		c++;
	} else if ((c = memchr(h, ':', (size_t)(e - h))) == NULL) {
		return 443;
	}
	p = strtoul(c + 1, NULL, 10);
	return p > 0 && p < 65536 ? (unsigned)p : 0;
}

/* -------------------------------------------------------------- the SDK */

static double
jnum(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *
jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A line from the script; other lines go to stderr.  NULL at its end. */
static char *
sdk_line(char *line, size_t n)
{
	while (fgets(line, (int)n, sdk_out) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "ready ", 6) == 0 || strncmp(line, "done ", 5) == 0 ||
		    strncmp(line, "skip ", 5) == 0)
			return line;
		fprintf(stderr, "sdk: %s\n", line);
	}
	return NULL;
}

/* Start the SDK script; it answers "ready" or "skip". */
static void
sdk_start(void)
{
	char keys[24], conc[24], page[24], line[LINE_CAP];
	char *argv[16];
	int in[2], out[2], a = 0;
	cJSON *j;
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
	snprintf(conc, sizeof(conc), "%d", O.conc);
	snprintf(page, sizeof(page), "%d", O.page);
	argv[a++] = (char *)O.c.node;
	argv[a++] = (char *)O.c.sdk;
	argv[a++] = "--prefix"; argv[a++] = prefix;
	argv[a++] = "--keys"; argv[a++] = keys;
	argv[a++] = "--concurrency"; argv[a++] = conc;
	argv[a++] = "--page"; argv[a++] = page;
	argv[a] = NULL;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		die("pipe failed");
	fprintf(stderr, "bench_kvclient: Azure SDK client: %s %s\n", O.c.node, O.c.sdk);
	if ((p = fork()) < 0)
		die("fork failed");
	if (p == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* nothing else: libcurl's sockets are not close-on-exec, and an
		 * inherited one would keep a connection open, and count as node's */
		closefrom(3);
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
		fprintf(stderr, "bench_kvclient: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	node_pid = p;
	close(in[0]);
	close(out[1]);
	sdk_in = in[1];
	if ((sdk_out = fdopen(out[0], "r")) == NULL)
		die("fdopen failed");
	if (sdk_line(line, sizeof(line)) == NULL) {
		int st = 0;

		waitpid(p, &st, 0);
		node_pid = -1;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
			snprintf(sdk_skip, sizeof(sdk_skip), "cannot run %s", O.c.node);
			return;
		}
		die("the SDK script ended before it was ready (its errors are above)");
	}
	if (strncmp(line, "skip ", 5) == 0) {
		kb_strlcpy(sdk_skip, line + 5, sizeof(sdk_skip));
		waitpid(p, NULL, 0);
		node_pid = -1;
		return;
	}
	if (strncmp(line, "ready ", 6) != 0 || (j = cJSON_Parse(line + 6)) == NULL)
		die("the SDK script said something unexpected");
	kb_strlcpy(sdk_version, jstr(j, "sdk") ? jstr(j, "sdk") : "?", sizeof(sdk_version));
	kb_strlcpy(node_version, jstr(j, "node") ? jstr(j, "node") : "?", sizeof(node_version));
	cJSON_Delete(j);
}

/* One command to the script, bracketed with the agent's CPU time; as kv_slice. */
static void
sdk_slice(enum phase ph, long from, long to, int nthreads)
{
	struct fig *f = &F[S_SDK][ph];
	char cmd[96], line[LINE_CAP];
	struct conns cs0, cs1;
	pthread_t sth;
	double a0, a1, st0, st1;
	size_t n;
	long acc;
	cJSON *j;

	if (sdk_skip[0] != '\0')
		return;
	if (ph == PH_WARM)
		n = (size_t)snprintf(cmd, sizeof(cmd), "warm %ld %d\n", to, nthreads);
	else if (ph == PH_GET)
		n = (size_t)snprintf(cmd, sizeof(cmd), "get %ld %ld\n", from, to);
	else
		n = (size_t)snprintf(cmd, sizeof(cmd), "list %d\n", nthreads);
	conns_begin(ph, &cs0, &cs1, &sth);
	a0 = bench_pid_cpu_sched(agent_pid);
	st0 = bench_host_steal();
	if (write(sdk_in, cmd, n) != (ssize_t)n)
		die("cannot write to the SDK script");
	if (sdk_line(line, sizeof(line)) == NULL || strncmp(line, "done ", 5) != 0)
		die("the SDK run failed (its errors are above)");
	st1 = bench_host_steal();
	a1 = bench_pid_cpu_sched(agent_pid);
	acc = conns_end(ph, &cs0, &cs1, sth);
	if ((j = cJSON_Parse(line + 5)) == NULL)
		die("the SDK script's answer is not JSON");
	f->ops += (long)jnum(j, "ops");
	f->wall += jnum(j, "secs");
	f->cpu += jnum(j, "cpuMs") / 1000;
	f->requests += (long)jnum(j, "requests");
	f->handshakes += (long)jnum(j, "connects");
	f->secure += (long)jnum(j, "secure");
	f->challenges += (long)jnum(j, "challenges");
	if (ph == PH_LIST && jnum(j, "secs") > 0)
		f->rate[f->slices] = jnum(j, "pages") / jnum(j, "secs");
	f->pages += (long)jnum(j, "pages");
	f->items += (long)jnum(j, "items");
	f->ours += (long)jnum(j, "ours");
	f->bad += (long)jnum(j, "bad") + (long)jnum(j, "failures");
	add_span(&f->agent_cpu, a0, a1);
	add_span(&f->steal, st0, st1);
	add_count(&f->accepts, acc);
	f->slices++;
	cJSON_Delete(j);
}

static void
sdk_stop(void)
{
	int st;

	if (node_pid > 0) {
		if (write(sdk_in, "quit\n", 5) != 5)
			kill(node_pid, SIGKILL);
		close(sdk_in);
		sdk_in = -1;
		if (waitpid(node_pid, &st, 0) == node_pid &&
		    (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			fprintf(stderr, "bench_kvclient: the SDK script exited with status %d\n",
			    st);
		node_pid = -1;
	}
	if (sdk_in >= 0)
		close(sdk_in);
	sdk_in = -1;
	if (sdk_out != NULL)
		fclose(sdk_out);
	sdk_out = NULL;
}

/* ----------------------------------------------------------------- report */

struct row {
	char figure[96];
	char kb[24], base[24], ratio[16], target[16];
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
heading(const char *s)
{
	add_row(s)->heading = true;
}

/*
 * A row of two rates or costs with prec decimals: ratio kv-client/SDK,
 * and a minimum for it if min > 0.
 */
static void
row_pair(const char *figure, double kb, double sdk, int prec, double min)
{
	struct row *r = add_row(figure);

	if (kb >= 0)
		snprintf(r->kb, sizeof(r->kb), "%.*f", prec, kb);
	if (sdk >= 0 && sdk_skip[0] == '\0')
		snprintf(r->base, sizeof(r->base), "%.*f", prec, sdk);
	if (kb >= 0 && sdk > 0 && sdk_skip[0] == '\0') {
		snprintf(r->ratio, sizeof(r->ratio), "%.2f", kb / sdk);
		if (min > 0) {
			snprintf(r->target, sizeof(r->target), ">= %.2f", min);
			r->pass = kb / sdk >= min;
		}
	}
}

/*
 * The CPU time the hypervisor took from this machine while a side ran, in
 * cores (steal over wall): not a figure of either client, but the reason
 * two runs differ.  kv-client and the agent need both cores between them,
 * node one, so a stolen core costs kv-client's side more.
 */
static void
row_steal(const char *figure, const struct fig *kb, const struct fig *sdk)
{
	struct row *r = add_row(figure);

	if (kb->steal >= 0 && kb->wall > 0)
		snprintf(r->kb, sizeof(r->kb), "%.2f", kb->steal / kb->wall);
	if (sdk_skip[0] == '\0' && sdk->steal >= 0 && sdk->wall > 0)
		snprintf(r->base, sizeof(r->base), "%.2f", sdk->steal / sdk->wall);
}

static void
row_counts(const char *figure, long kb, long sdk, bool must_equal)
{
	struct row *r = add_row(figure);

	snprintf(r->kb, sizeof(r->kb), "%ld", kb);
	if (sdk_skip[0] != '\0')
		return;
	snprintf(r->base, sizeof(r->base), "%ld", sdk);
	if (must_equal) {
		snprintf(r->ratio, sizeof(r->ratio), kb == sdk ? "equal" : "DIFFER");
		snprintf(r->target, sizeof(r->target), "equal");
		r->pass = kb == sdk;
	}
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The spread of the list slices' pages/s on each side, slowest, median
 * and fastest: the SDK's rounds differ widely within a run, and a burst
 * of the host's steal can slow one kv-client round to a third, which is
 * what moves the ratio from run to run.
 */
static void
rows_spread(const struct fig *kb, const struct fig *sdk)
{
	static const char *const names[] = {
		"list: slowest slice (pages/s)", "list: median slice (pages/s)",
		"list: fastest slice (pages/s)",
	};
	const struct fig *f[2] = { kb, sdk };
	double v[2][3], r[MAX_LIST_ROUNDS];
	int s, n, k;

	for (s = 0; s < 2; s++) {
		n = f[s]->slices;
		v[s][0] = v[s][1] = v[s][2] = -1;
		if (n <= 0 || n > MAX_LIST_ROUNDS)
			continue;
		memcpy(r, f[s]->rate, (size_t)n * sizeof(r[0]));
		qsort(r, (size_t)n, sizeof(r[0]), cmp_dbl);
		v[s][0] = r[0];
		v[s][1] = n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
		v[s][2] = r[n - 1];
	}
	for (k = 0; k < 3; k++)
		row_pair(names[k], v[0][k], v[1][k], 1, 0);
}

static double
per_op_ms(double s, long ops)
{
	return s >= 0 && ops > 0 ? s * 1000 / ops : -1;
}

/*
 * One TLS handshake per pooled connection: every handshake made is on a
 * connection still held (the challenge's 401 keeps its connection).
 */
static bool
one_per_conn(long hs, long held)
{
	return held > 0 && hs == held;
}

/* Handshakes per held connection. */
static double
per_held(long hs, long held)
{
	return held > 0 ? (double)hs / held : -1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_kvclient [--keys N] [--concurrency N] [--list-rounds N]\n"
	    "                      [--page N] [--cli PATH] [--agent PATH] [--node PATH]\n"
	    "                      [--sdk SCRIPT | --no-sdk] [--tmp DIR]\n"
	    "                      [--dir DIR | --url URL --ca FILE --token-file FILE [--pid PID]]\n"
	    "                      [--tap] [--strict]\n"
	    "  --keys N         AES-256 keys made, got and listed (default 10000)\n"
	    "  --concurrency N  kv-client threads = SDK requests in flight (default 4)\n"
	    "  --list-rounds N  timed rounds of N-concurrency listings of the vault,\n"
	    "                   after one untimed (default 6)\n"
	    "  --page N         maxresults of a page, 1 to 25 (default 25)\n"
	    "  --cli PATH       keybridge (default: $KEYBRIDGE_BIN), runs `dev up --https`\n"
	    "  --agent PATH     keybridged for dev up (default: next to keybridge)\n"
	    "  --node PATH      node (default: $NODE, then node in PATH)\n"
	    "  --sdk SCRIPT     bench/kvclient-sdk.mjs\n"
	    "  --dir DIR        use (or make) the dev environment DIR; left running\n"
	    "  --tmp DIR        where the temporary dev environment goes (default:\n"
	    "                   /dev/shm if writable, else /tmp)\n"
	    "  --url ...        a running agent; its CPU only with --pid\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	int i;

	O.keys = 10000;
	O.conc = 4;
	O.list_rounds = 6;
	O.page = 25;
	O.c.cli = getenv("KEYBRIDGE_BIN");
	O.c.node = getenv("NODE") && *getenv("NODE") ? getenv("NODE") : "node";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(a, "--keys") == 0 && more)
			O.keys = atol(argv[++i]);
		else if ((strcmp(a, "--concurrency") == 0 || strcmp(a, "--threads") == 0) && more)
			O.conc = atoi(argv[++i]);
		else if (strcmp(a, "--list-rounds") == 0 && more)
			O.list_rounds = atoi(argv[++i]);
		else if (strcmp(a, "--page") == 0 && more)
			O.page = atoi(argv[++i]);
		else if (strcmp(a, "--tmp") == 0 && more)
			O.tmp = argv[++i];
		else if (!bench_common_opt(&O.c, argc, argv, &i))
			usage();
	}
	if (O.keys < 1 || O.keys > 99999 || O.conc < 1 || O.conc > MAX_CONC ||
	    O.list_rounds < 1 || O.list_rounds > MAX_LIST_ROUNDS || O.page < 1 || O.page > 25)
		usage();
	if (O.c.url != NULL && (O.c.ca == NULL || O.c.token_file == NULL || O.c.dir != NULL)) {
		fprintf(stderr, "bench_kvclient: --url needs --ca and --token-file, and no --dir\n");
		exit(2);
	}
	if (O.c.url == NULL && (O.c.cli == NULL || *O.c.cli == '\0')) {
		fprintf(stderr, "bench_kvclient: give --cli PATH (keybridge) or set KEYBRIDGE_BIN\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	unsigned char rnd[3];
	char *hx = NULL, who[96];
	struct sigaction sa;
	struct row *r;
	const struct fig *kg = &F[S_KV][PH_GET], *kl = &F[S_KV][PH_LIST];
	const struct fig *sg = &F[S_SDK][PH_GET], *sl = &F[S_SDK][PH_LIST];
	long held[N_SIDES] = { -1, -1 }, hs[N_SIDES], hs_timed[N_SIDES], acc[N_SIDES];
	long chal[N_SIDES];
	long walks, want_items;
	bool sdk_on, counts_equal, all_pass = true, checks_ok;
	double made_secs, t0;
	int k, s, p, tn = 0;

	parse_args(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (kb_random(rnd, sizeof(rnd)) != 0 || (hx = kb_hex_encode(rnd, sizeof(rnd))) == NULL)
		die("no random bytes");
	snprintf(prefix, sizeof(prefix), "kc%s-", hx);
	free(hx);

	/*
	 * The agent.  Its dev environment on tmpfs by default: making the keys
	 * is an fsync'd store commit and SoftHSM object files each, which a
	 * busy disk slows to a few keys a second; the timed phases only read.
	 */
	if (O.tmp == NULL)
		O.tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%.200s/kbkvc.XXXXXX", O.tmp);
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp failed");
	if (O.c.url != NULL) {
		url = kb_strdup(O.c.url);
		ca_file = kb_strdup(O.c.ca);
		tok_file = kb_strdup(O.c.token_file);
		agent_pid = (pid_t)O.c.pid;
	} else {
		if (access(O.c.cli, X_OK) != 0) {
			fprintf(stderr, "bench_kvclient: no keybridge at %s\n", O.c.cli);
			rmtree(tmpdir);
			if (O.c.tap)
				printf("1..0 # SKIP no keybridge at %s\n", O.c.cli);
			return O.c.tap ? 0 : 77;
		}
		own_agent = O.c.dir == NULL;
		snprintf(devdir, sizeof(devdir), "%s", O.c.dir != NULL ? O.c.dir : tmpdir);
		if (O.c.dir == NULL)
			snprintf(devdir, sizeof(devdir), "%s/dev", tmpdir);
		t0 = kb_now_mono();
		dev_up();
		fprintf(stderr, "bench_kvclient: agent pid %d at %s, up in %.2f s; dir %s\n",
		    (int)agent_pid, url, kb_now_mono() - t0, devdir);
	}
	if (url == NULL || ca_file == NULL || tok_file == NULL || (agent_port = url_port(url)) == 0)
		die("no usable agent URL");
	if (kb_kv_credential_token_file(tok_file, &cred) != 0) {
		fprintf(stderr, "bench_kvclient: %s\n", kb_error_detail(-1));
		die("cannot use the bearer token file");
	}

	/* Keys, not timed. */
	fprintf(stderr, "bench_kvclient: creating %ld AES-256 keys (oct-HSM) through %s (%d at once)\n",
	    O.keys, sock_path != NULL ? "the agent's socket" : "HTTPS", CREATE_THREADS);
	made_secs = create_keys();
	fprintf(stderr, "bench_kvclient: %ld keys made in %.1f s (%.1f keys/s)\n", O.keys,
	    made_secs, O.keys / made_secs);

	/*
	 * The two clients, warmed up: one request meets Key Vault's bearer
	 * challenge (the agent keeps the connection: a GET has no body to
	 * skip), then every worker's gets fill the pool.
	 */
	kv = kv_new();
	kv_slice(PH_WARM, 0, 1, 1);
	/*
	 * Threads that start late find an earlier one's connection idle and
	 * take it (one run in five opened only 3 of 4, and the 4th in a timed
	 * phase): again until the pool holds one connection a worker.
	 */
	for (k = 0; k < 5 && (k == 0 || F[S_KV][PH_WARM].handshakes < O.conc); k++)
		kv_slice(PH_WARM, 0, WARM, O.conc);
	sdk_start();
	sdk_on = sdk_skip[0] == '\0';
	sdk_slice(PH_WARM, 0, 1, 1);
	sdk_slice(PH_WARM, 0, WARM, O.conc);

	/* Timed: slices alternating, which side first alternating too. */
	for (k = 0; k < GET_ROUNDS; k++) {
		long a = O.keys * k / GET_ROUNDS, b = O.keys * (k + 1) / GET_ROUNDS;

		if (a == b)
			continue;
		fprintf(stderr, "bench_kvclient: get, round %d of %d\n", k + 1, GET_ROUNDS);
		if (k % 2 == 0)
			kv_slice(PH_GET, a, b, O.conc);
		sdk_slice(PH_GET, a, b, O.conc);
		if (k % 2 == 1)
			kv_slice(PH_GET, a, b, O.conc);
	}
	/*
	 * One list round each, untimed: node compiles the SDK's paging and
	 * deserialization on its first walks (its CPU a page fell by a sixth
	 * from the first rounds to the later ones); the figures are of warm
	 * clients, as for the gets.
	 */
	fprintf(stderr, "bench_kvclient: list, warm-up round (%d walks each)\n", O.conc);
	kv_slice(PH_LWARM, 0, 0, O.conc);
	sdk_slice(PH_LWARM, 0, 0, O.conc);
	for (k = 0; k < O.list_rounds; k++) {
		fprintf(stderr, "bench_kvclient: list, round %d of %d (%d walks each)\n", k + 1,
		    O.list_rounds, O.conc);
		if (k % 2 == 0)
			kv_slice(PH_LIST, 0, 0, O.conc);
		sdk_slice(PH_LIST, 0, 0, O.conc);
		if (k % 2 == 1)
			kv_slice(PH_LIST, 0, 0, O.conc);
	}

	/* Connections each client holds now, then the SDK's end. */
	held[S_KV] = held_connections(getpid());
	if (sdk_on)
		held[S_SDK] = held_connections(node_pid);
	sdk_stop();
	for (s = 0; s < N_SIDES; s++) {
		hs[s] = chal[s] = acc[s] = 0;
		for (p = 0; p < N_PH; p++) {
			hs[s] += F[s][p].handshakes;
			chal[s] += F[s][p].challenges;
			add_count(&acc[s], F[s][p].accepts);
		}
		hs_timed[s] = F[s][PH_GET].handshakes + F[s][PH_LIST].handshakes;
	}
	walks = (long)O.list_rounds * O.conc;
	want_items = kl->slices > 0 ? kl->items / walks : 0;

	/* Report. */
	snprintf(who, sizeof(who), "get: GET /keys/{name}, %ld keys once each, %d in flight",
	    O.keys, O.conc);
	heading(who);
	row_pair("get (ops/s)", kg->ops / kg->wall, sg->ops / sg->wall, 1, 3.0);
	row_counts("get: requests", kg->requests, sg->requests, true);
	row_pair("get: client CPU/op (ms)", per_op_ms(kg->cpu, kg->ops),
	    per_op_ms(sg->cpu, sg->ops), 3, 0);
	row_pair("get: agent CPU/op (ms)", per_op_ms(kg->agent_cpu, kg->ops),
	    per_op_ms(sg->agent_cpu, sg->ops), 3, 0);
	row_steal("get: host CPU stolen (cores)", kg, sg);
	snprintf(who, sizeof(who), "list: %ld walks of the vault (%ld keys), %d at once, "
	    "maxresults=%d", walks, want_items, O.conc, O.page);
	heading(who);
	row_pair("list (keys/s)", kl->ops / kl->wall, sl->ops / sl->wall, 1, 3.0);
	row_pair("list (pages/s)", kl->pages / kl->wall, sl->pages / sl->wall, 1, 0);
	row_counts("list: requests", kl->requests, sl->requests, true);
	row_counts("list: pages per walk", kl->pages / walks, sl->pages / walks, true);
	row_pair("list: client CPU/page (ms)", per_op_ms(kl->cpu, kl->pages),
	    per_op_ms(sl->cpu, sl->pages), 3, 0);
	row_pair("list: agent CPU/page (ms)", per_op_ms(kl->agent_cpu, kl->pages),
	    per_op_ms(sl->agent_cpu, sl->pages), 3, 0);
	row_steal("list: host CPU stolen (cores)", kl, sl);
	rows_spread(kl, sl);
	heading("connections (whole run, warm-up included)");
	row_counts("TLS handshakes", hs[S_KV], hs[S_SDK], false);
	row_counts("TLS handshakes in timed phases", hs_timed[S_KV], hs_timed[S_SDK], false);
	row_counts("challenge 401s", chal[S_KV], chal[S_SDK], false);
	row_counts("pooled connections held at the end", held[S_KV], held[S_SDK], false);
	r = add_row("handshakes per pooled conn.");
	if (held[S_KV] > 0) {
		snprintf(r->kb, sizeof(r->kb), "%.2f", per_held(hs[S_KV], held[S_KV]));
		snprintf(r->target, sizeof(r->target), "= 1.00");
		r->pass = one_per_conn(hs[S_KV], held[S_KV]);
	}
	if (sdk_on && held[S_SDK] > 0)
		snprintf(r->base, sizeof(r->base), "%.2f",
		    per_held(hs[S_SDK], held[S_SDK]));
	row_counts("agent side: connections accepted", acc[S_KV], acc[S_SDK], false);

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
	printf("%s(keybridge: kv-client, %d threads on one client; baseline: Azure SDK JS "
	    "@azure/keyvault-keys %s on node %s, %d promises in flight on one KeyClient; "
	    "service version 7.6, no retries on either side, kv-client's limiter off; slices alternate between the "
	    "two; %ld keys made beforehand in %.1f s; TLS handshakes: kv-client's new "
	    "connections, the SDK's tls.connect calls; agent pid %d)\n",
	    O.c.tap ? "# " : "", O.conc, sdk_on ? sdk_version : "-", sdk_on ? node_version : "-",
	    O.conc, O.keys, made_secs, (int)agent_pid);
	if (!sdk_on)
		printf("%snote: the Azure SDK part was skipped: %s\n", O.c.tap ? "# " : "", sdk_skip);

	/* Equal request counts, or the comparison means nothing. */
	counts_equal = !sdk_on || (kg->requests == sg->requests && kl->requests == sl->requests &&
	    kl->pages == sl->pages);
	if (!counts_equal)
		fprintf(stderr, "bench_kvclient: FAILED: the two clients sent different numbers "
		    "of requests (get %ld vs %ld, list %ld vs %ld): the figures do not compare\n",
		    kg->requests, sg->requests, kl->requests, sl->requests);
	checks_ok = kg->ops == O.keys && kg->bad == 0 && kg->requests == O.keys &&
	    kl->bad == 0 && kl->ours == walks * O.keys;
	if (sdk_on)
		checks_ok = checks_ok && sg->ops == O.keys && sg->bad == 0 && sl->bad == 0 &&
		    sl->ours == walks * O.keys && sl->items == kl->items;
	if (O.c.tap) {
		printf("ok %d - %ld keys made\n", ++tn, O.keys);
		printf("%s %d - kv-client: %ld gets, every answer decoded and checked (%ld bad)\n",
		    kg->ops == O.keys && kg->bad == 0 ? "ok" : "not ok", ++tn, kg->ops, kg->bad);
		printf("%s %d - kv-client: %ld walks each saw every key (%ld of %ld)\n",
		    kl->bad == 0 && kl->ours == walks * O.keys ? "ok" : "not ok", ++tn, walks,
		    kl->ours, walks * O.keys);
		printf("%s %d - kv-client: one request per get, one per page (%ld, %ld)\n",
		    kg->requests == O.keys && kl->requests == kl->pages && kl->pages > 0 ? "ok" :
		    "not ok", ++tn, kg->requests, kl->requests);
		printf("%s %d - kv-client: one TLS handshake per pooled connection (%ld handshakes, "
		    "%ld challenge 401s; %ld held, %d threads)\n",
		    one_per_conn(hs[S_KV], held[S_KV]) && chal[S_KV] == 1 &&
		    held[S_KV] <= O.conc ? "ok" : "not ok", ++tn, hs[S_KV], chal[S_KV], held[S_KV],
		    O.conc);
		if (!sdk_on) {
			printf("ok %d # SKIP Azure SDK: %s\n", ++tn, sdk_skip);
		} else {
			printf("%s %d - Azure SDK: every get checked, every key listed\n",
			    sg->ops == O.keys && sg->bad == 0 && sl->bad == 0 &&
			    sl->ours == walks * O.keys && sl->items == kl->items ? "ok" : "not ok",
			    ++tn);
			printf("%s %d - equal request counts: get %ld = %ld, list %ld = %ld\n",
			    counts_equal ? "ok" : "not ok", ++tn, kg->requests, sg->requests,
			    kl->requests, sl->requests);
		}
		printf("1..%d\n", tn);
	}

	kb_kv_client_free(kv);
	kb_kv_credential_free(cred);
	stop_agent();
	rmtree(tmpdir);   /* with --dir, only dev up's output is in it */
	free(url);
	free(ca_file);
	free(tok_file);
	free(sock_path);
	if (!counts_equal || !checks_ok)
		return 1;
	return O.c.strict && !all_pass ? 3 : 0;
}
