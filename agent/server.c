/*
 * server.c: the agent's HTTP server on its Unix socket, and the optional
 * HTTPS listener on TCP (docs/https.md).
 *
 * libmicrohttpd because it parses HTTP/1.1 (chunked bodies, pipelining,
 * timeouts, connection limits) in a small C library meant for embedding,
 * accepts a listening socket we created ourselves (so the Unix socket's
 * mode and directory stay ours: MHD_OPTION_LISTEN_SOCKET), and runs its
 * own thread pool.  Writing an HTTP parser here would be one more parser
 * of untrusted input to fuzz and keep.
 *
 * Every connection's peer credentials (SO_PEERCRED) are read when MHD
 * accepts it and checked on every request by agent_access_check().
 *
 * HTTPS: MHD's TLS (GnuTLS in Debian's build), TLS 1.2 and 1.3 only.
 * Callers are principals: every request carries "Authorization: Bearer
 * T", and SHA-256(T) is compared in constant time with every
 * [principal] of the config.  A request without one gets Key Vault's
 * 401 challenge before its body is read; a wrong or expired token gets
 * 401 and an audit record.  The token is never logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>

#include "agent.h"
#include "kb_kvclient.h"

/* Bearer tokens longer than this are refused unread (Entra's are ~2 KB). */
#define BEARER_MAX 8192

/* A request refused on its headers, answered when they are all read. */
enum refusal {
	REFUSE_NONE,
	REFUSE_NO_TOKEN,              /* 401: the challenge */
	REFUSE_TOKEN_EXPIRED,         /* 401 */
	REFUSE_TOKEN_INVALID,         /* 401 */
	REFUSE_DENIED                 /* 403, with why */
};

/*
 * A connection: its peer, and how many of its requests were refused.  A
 * client that keeps sending refused requests (each wrong token is an audit
 * record) on a connection that a refusal no longer closes is cut off after
 * REFUSALS_MAX: that answer carries "Connection: close".  A client meets
 * the challenge once per connection; a Reader that tries writes meets a 403
 * each time and reconnects after a few.
 */
#define REFUSALS_MAX 8

struct conn {
	struct agent_peer peer;
	unsigned refusals;            /* REFUSALS_MAX and over: answers close it */
};

struct request {
	struct kb_buf body;
	bool too_large;
	bool answered;
	enum refusal refusal;
	char why[512];                /* REFUSE_DENIED's sentence */
	struct agent_peer peer;       /* HTTPS: this request's principal */
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	kb_warn("http: %s", msg);
}

/* The connection's socket, or -1. */
static int
conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci != NULL ? ci->connect_fd : -1;
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode what)
{
	struct agent_peer *p;
	struct conn *cn;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int fd;

	if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	if ((cn = calloc(1, sizeof(*cn))) == NULL)
		return;    /* unknown peer: every request is refused */
	p = &cn->peer;
	if (((struct agent_listener *)cls)->https) {
		/* Who it is comes with each request's bearer token. */
		p->known = true;
		p->https = true;
		*socket_ctx = cn;
		return;
	}
	if ((fd = conn_fd(c)) >= 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
	    len == sizeof(uc)) {
		p->known = true;
		p->pid = uc.pid;
		p->uid = uc.uid;
		p->gid = uc.gid;
	}
	*socket_ctx = cn;
}

/* The connection's state, or NULL (out of memory when it opened). */
static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * One TLS record for a small answer.  MHD 0.9.75 hands GnuTLS an answer's
 * headers and its body in two calls (mhd_send.c: no vectored send over
 * TLS), so every answer cost two records and two sends, and the client two
 * wake-ups, two reads of each record and two decryptions.  An answer whose
 * body is at most CORK_MAX bytes is held in GnuTLS (gnutls_record_cork)
 * while MHD writes it, and goes out as one record from on_request_done(),
 * which MHD calls once the last byte is handed to GnuTLS, before it reads
 * the next request or closes the connection.
 *
 * Only when the socket's send queue is empty (SIOCOUTQ): the one write of
 * a few kB then fits in the socket's buffer.  Should it meet a full buffer
 * all the same (a client that stopped reading), it waits for room at most
 * CORK_WAIT_MS and then shuts the connection down.  MHD leaves TCP_CORK set
 * on TLS sockets and pushes its own writes by setting TCP_NODELAY, which
 * flushes a corked socket on Linux; the coalesced write is pushed the same
 * way.
 */
#define CORK_MAX 8192
#define CORK_WAIT_MS 1000

static gnutls_session_t
tls_session(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
}

static void
tls_cork(struct MHD_Connection *c, size_t body_len)
{
	gnutls_session_t s;
	int fd, queued;

	if (body_len > CORK_MAX || (s = tls_session(c)) == NULL ||
	    (fd = conn_fd(c)) < 0 || ioctl(fd, SIOCOUTQ, &queued) != 0 ||
	    queued != 0)
		return;
	gnutls_record_cork(s);
}

static void
tls_uncork(struct MHD_Connection *c)
{
	gnutls_session_t s;
	struct pollfd pfd;
	double end;
	ssize_t r;
	int fd, one = 1, left;

	if ((s = tls_session(c)) == NULL)
		return;
	if (gnutls_record_check_corked(s) == 0) {
		(void)gnutls_record_uncork(s, 0);     /* corked, nothing held */
		return;
	}
	if ((fd = conn_fd(c)) < 0)
		return;       /* cannot happen: the session's socket */
	end = kb_now_mono() + CORK_WAIT_MS / 1000.0;
	while ((r = gnutls_record_uncork(s, 0)) < 0) {
		left = (int)((end - kb_now_mono()) * 1000);
		if ((r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) ||
		    left <= 0) {
			/* MHD sees the connection fail on its next read. */
			(void)shutdown(fd, SHUT_RDWR);
			return;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		(void)poll(&pfd, 1, left);
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Queue a JSON text (taking it, freed with text_free; NULL: an empty body)
 * with the headers every answer carries; secret: it holds one (text_free
 * wipes it).  0, or -1 when the connection must be dropped.
 */
static int
respond_text_hdr(struct MHD_Connection *c, unsigned status, char *text,
    size_t len, void (*text_free)(void *), bool secret, const char *hname,
    const char *hval)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct conn *cn;

	resp = MHD_create_response_from_buffer_with_free_callback(len,
	    text != NULL ? text : (char *)"", text != NULL ? text_free : NULL);
	if (resp == NULL) {
		if (text != NULL)
			text_free(text);
		return -1;
	}
	if ((len > 0 && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8") != MHD_YES) ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store") != MHD_YES ||
	    (hname != NULL &&
	    MHD_add_response_header(resp, hname, hval) != MHD_YES) ||
	    ((cn = conn_of(c)) != NULL && cn->refusals >= REFUSALS_MAX &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
	    "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return -1;
	}
	/* A corked record would leave a secret's copy in GnuTLS's buffer. */
	if (!secret)
		tls_cork(c, len);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret == MHD_YES ? 0 : -1;
}

static int
respond_hdr(struct MHD_Connection *c, unsigned status, cJSON *body,
    bool secret, const char *hname, const char *hval)
{
	char *text = NULL;

	if (body != NULL) {
		text = secret ? kb_kv_json_print_secret(body) :
		    cJSON_PrintUnformatted(body);
		if (secret)
			kb_kv_json_wipe(body);
		cJSON_Delete(body);
		if (text == NULL)
			return -1;    /* out of memory: drop the connection */
	}
	return respond_text_hdr(c, status, text, text != NULL ? strlen(text) : 0,
	    secret ? kb_kv_text_free_secret : cJSON_free, secret, hname, hval);
}

int
agent_respond_text(struct MHD_Connection *c, unsigned status, char *json,
    size_t len)
{
	return respond_text_hdr(c, status, json, len, free, false, NULL, NULL);
}

int
agent_respond(struct MHD_Connection *c, unsigned status, cJSON *body,
    const char *allow)
{
	return respond_hdr(c, status, body, false, allow != NULL ?
	    MHD_HTTP_HEADER_ALLOW : NULL, allow);
}

int
agent_respond_secret(struct MHD_Connection *c, unsigned status, cJSON *body)
{
	return respond_hdr(c, status, body, true, NULL, NULL);
}

/* A Key Vault error body: {"error":{"code":..,"message":..[,"innererror":
 * {"code":inner}]}}. */
static cJSON *
error_body(const char *code, const char *message, const char *inner)
{
	cJSON *root, *err, *in;

	if ((root = cJSON_CreateObject()) == NULL)
		return NULL;
	if ((err = cJSON_AddObjectToObject(root, "error")) == NULL ||
	    cJSON_AddStringToObject(err, "code", code) == NULL ||
	    cJSON_AddStringToObject(err, "message", message) == NULL ||
	    (inner != NULL &&
	    ((in = cJSON_AddObjectToObject(err, "innererror")) == NULL ||
	    cJSON_AddStringToObject(in, "code", inner) == NULL))) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

int
agent_respond_error_hdr(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message, const char *inner,
    const char *hname, const char *hval)
{
	cJSON *root = error_body(code, message, inner);

	return root != NULL ? respond_hdr(c, status, root, false, hname, hval) :
	    -1;
}

int
agent_respond_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message, const char *inner,
    const char *allow)
{
	return agent_respond_error_hdr(c, status, code, message, inner,
	    allow != NULL ? MHD_HTTP_HEADER_ALLOW : NULL, allow);
}

static enum MHD_Result
respond_error(struct MHD_Connection *c, unsigned status, const char *code,
    const char *message, const char *allow)
{
	return agent_respond_error(c, status, code, message, NULL, allow) == 0 ?
	    MHD_YES : MHD_NO;
}

/* 401 with Key Vault's challenge and error body. */
static enum MHD_Result
respond_challenge(struct agent *a, struct MHD_Connection *c,
    const char *message)
{
	char hdr[1200];
	cJSON *root;

	snprintf(hdr, sizeof(hdr), "Bearer authorization=\"%s\", resource=\"%s\"",
	    a->cfg->auth_authorization, a->cfg->auth_resource);
	if ((root = error_body("Unauthorized", message, NULL)) == NULL)
		return MHD_NO;
	return respond_hdr(c, 401, root, false, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    hdr) == 0 ? MHD_YES : MHD_NO;
}

enum bearer_result { BEARER_OK, BEARER_MISSING, BEARER_INVALID, BEARER_EXPIRED };

/*
 * A refusal's answer.  libmicrohttpd closes a connection whose answer was
 * queued before the request was read (it cannot tell where the next
 * request starts), so a request without a body is refused at its end:
 * the client keeps its connection, and its TLS session, for the retry
 * with a token that the challenge asks for.
 */
static enum MHD_Result
refuse(struct agent *a, struct MHD_Connection *c, struct request *rq)
{
	struct conn *cn = conn_of(c);

	rq->answered = true;
	if (cn != NULL && ++cn->refusals == REFUSALS_MAX)
		kb_info("closing a connection after %u refused requests",
		    REFUSALS_MAX);
	switch (rq->refusal) {
	case REFUSE_NO_TOKEN:
		return respond_challenge(a, c, "AKV10000: Request is missing a "
		    "Bearer or PoP token.");
	case REFUSE_TOKEN_EXPIRED:
		return respond_challenge(a, c, "AKV10032: The bearer token has "
		    "expired.");
	case REFUSE_TOKEN_INVALID:
		return respond_challenge(a, c, "AKV10022: The bearer token is "
		    "not valid for this agent.");
	default:
		return respond_error(c, 403, "Forbidden", rq->why, NULL);
	}
}

/* Whether the request announces a body (Content-Length over 0, or
 * Transfer-Encoding). */
static bool
has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl != NULL && strcmp(cl, "0") != 0) ||
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* SHA-256 fetched once: SHA256() fetches the algorithm on every call,
 * a few percent of a small request's CPU. */
static EVP_MD *bearer_md;
static pthread_once_t bearer_md_once = PTHREAD_ONCE_INIT;

static void
bearer_md_fetch(void)
{
	bearer_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

/*
 * The principal whose token the request carries.  Every configured hash
 * is compared, with CRYPTO_memcmp, whatever matched before.
 */
static enum bearer_result
bearer_auth(struct agent *a, struct MHD_Connection *c, struct agent_peer *p)
{
	unsigned char dig[SHA256_DIGEST_LENGTH];
	const char *h, *t;
	size_t i, n, found = SIZE_MAX;

	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || h[0] == '\0')
		return BEARER_MISSING;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return BEARER_INVALID;
	for (t = h + 7; *t == ' '; t++)
		;
	n = strnlen(t, BEARER_MAX + 1);
	while (n > 0 && t[n - 1] == ' ')
		n--;
	if (n == 0 || n > BEARER_MAX)
		return BEARER_INVALID;
	pthread_once(&bearer_md_once, bearer_md_fetch);
	if (bearer_md == NULL ||
	    EVP_Digest(t, n, dig, NULL, bearer_md, NULL) != 1)
		return BEARER_INVALID;
	for (i = 0; i < a->cfg->n_bearers; i++)
		if (CRYPTO_memcmp(dig, a->cfg->bearers[i].token_sha256,
		    sizeof(dig)) == 0)
			found = i;
	OPENSSL_cleanse(dig, sizeof(dig));
	if (found == SIZE_MAX)
		return BEARER_INVALID;
	if (a->cfg->bearers[found].expires != 0 &&
	    kb_now_unix() >= a->cfg->bearers[found].expires)
		return BEARER_EXPIRED;
	p->principal = a->cfg->bearers[found].name;
	p->bearer = found;
	return BEARER_OK;
}

static const struct agent_peer *
peer_of(struct MHD_Connection *c)
{
	static const struct agent_peer nobody = { .known = false };
	const struct conn *cn = conn_of(c);

	return cn != NULL ? &cn->peer : &nobody;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_ctx)
{
	const struct agent_listener *ls = cls;
	struct agent *a = ls->a;
	struct request *rq = *req_ctx;
	const struct agent_peer *peer = NULL;
	char who[96];
	const char *cl;
	unsigned long long clen;
	char msg[128];
	int r;

	if (rq == NULL) {
		/* First call: headers only.  Decide what we can before the body. */
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		/* Bodies carry plaintexts and imported keys: wiped on free. */
		kb_buf_init_secret(&rq->body, AGENT_MAX_BODY);
		*req_ctx = rq;
		rq->peer = *peer_of(c);
		peer = &rq->peer;
		if (ls->https) {
			enum bearer_result br = bearer_auth(a, c, &rq->peer);

			if (br == BEARER_MISSING) {
				rq->refusal = REFUSE_NO_TOKEN;
			} else if (br != BEARER_OK) {
				kb_info("refused %s %.128s over HTTPS: %s bearer token",
				    method, url, br == BEARER_EXPIRED ? "an expired" :
				    "an unknown");
				agent_kvapi_deny_audit(a, peer, url, method,
				    br == BEARER_EXPIRED ? "token-expired" :
				    "token-invalid");
				rq->refusal = br == BEARER_EXPIRED ?
				    REFUSE_TOKEN_EXPIRED : REFUSE_TOKEN_INVALID;
			}
		}
		if (rq->refusal == REFUSE_NONE &&
		    (r = agent_access_check(a, peer)) != 0) {
			kb_info("refused %s %.128s from %s (pid %ld)", method, url,
			    agent_peer_name(peer, who, sizeof(who)),
			    (long)peer->pid);
			/* The sentence first: auditing may set another. */
			snprintf(rq->why, sizeof(rq->why), "%s", kb_error_detail(r));
			agent_kvapi_deny_audit(a, peer, url, method, "denied");
			rq->refusal = REFUSE_DENIED;
		}
		if (rq->refusal != REFUSE_NONE)
			/* A body is not read: refused now, the connection closes. */
			return has_body(c) ? refuse(a, c, rq) : MHD_YES;
		kb_debug("%s %.128s from %s (pid %ld)", method, url,
		    agent_peer_name(peer, who, sizeof(who)), (long)peer->pid);
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && (kb_parse_ull(cl, 0, AGENT_MAX_BODY, &clen) != 0)) {
			rq->answered = true;
			snprintf(msg, sizeof(msg),
			    "request bodies are limited to %zu bytes", AGENT_MAX_BODY);
			return respond_error(c, 413, "RequestTooLarge", msg, NULL);
		}
		return MHD_YES;
	}
	if (rq->answered) {  /* a body we refused: drop it unread */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->refusal != REFUSE_NONE) {
		/* Refused on its headers, no body announced: answered now that
		 * the request is all read (anything sent anyway is dropped). */
		if (*upload_data_size > 0) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return refuse(a, c, rq);
	}
	if (*upload_data_size > 0) {
		/* Chunked bodies announce no length: cap them as they come. */
		if (!rq->too_large &&
		    kb_buf_append(&rq->body, upload_data, *upload_data_size) != 0) {
			rq->too_large = true;
			kb_buf_free(&rq->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	rq->answered = true;
	if (rq->too_large) {
		snprintf(msg, sizeof(msg),
		    "request bodies are limited to %zu bytes", AGENT_MAX_BODY);
		return respond_error(c, 413, "RequestTooLarge", msg, NULL);
	}
	return agent_kvapi_handle(a, c, &rq->peer, url, method,
	    (const char *)rq->body.data, rq->body.len) == 0 ? MHD_YES : MHD_NO;
}

static void
on_request_done(void *cls, struct MHD_Connection *c, void **req_ctx,
    enum MHD_RequestTerminationCode why)
{
	struct request *rq = *req_ctx;

	tls_uncork(c);
	if (rq == NULL)
		return;
	kb_buf_free(&rq->body);
	free(rq);
	*req_ctx = NULL;
}

int
agent_server_start(struct agent *a)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_AUTO;

	a->lsn_unix.a = a;
	a->lsn_unix.https = false;
	/* The logger first, or MHD prints early messages its own way. */
	a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &a->lsn_unix,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)a->listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, a->cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, a->cfg->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, a->cfg->request_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, &a->lsn_unix,
	    MHD_OPTION_NOTIFY_COMPLETED, on_request_done, a,
	    MHD_OPTION_END);
	if (a->mhd == NULL)
		return kb_error_set(KB_ERR_INTERNAL,
		    "cannot start the HTTP server on %s", a->cfg->socket);
	/* MHD owns and closes the listening socket from now on. */
	a->listen_fd = -1;
	return 0;
}

/* Read a PEM file; the key must be the agent's alone, as ssh demands. */
static int
read_pem(const char *what, const char *path, bool secret, char **out)
{
	struct stat st;
	size_t len = 0;
	int r;

	if (secret && stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the HTTPS %s %s is readable by "
		    "others (mode %04o); make it mode 0600 (chmod 600 %s)", what,
		    path, (unsigned)(st.st_mode & 07777), path);
	if ((r = kb_file_read(path, 1 << 20, out, &len)) != 0) {
		char why[600];

		if (r == KB_ERR_ALLOC)
			return r;
		snprintf(why, sizeof(why), "%s", kb_error_detail(r));
		return kb_error_set(KB_ERR_CONFIG, "cannot read the HTTPS %s: %s",
		    what, why);
	}
	return 0;
}

int
agent_https_start(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_AUTO | MHD_USE_TLS;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->https_addr;
	const struct sockaddr_in6 *sin6 =
	    (const struct sockaddr_in6 *)&cfg->https_addr;
	bool v6 = cfg->https_addr.ss_family == AF_INET6;
	const union MHD_DaemonInfo *di;
	char host[INET6_ADDRSTRLEN], *cert = NULL, *key = NULL;
	unsigned port;
	int r;

	if (cfg->https_listen == NULL)
		return 0;
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
		return kb_error_set(KB_ERR_UNSUPPORTED, "this libmicrohttpd has no "
		    "TLS support; install Debian's libmicrohttpd12 (GnuTLS)");
	if (v6)
		flags |= MHD_USE_IPv6;
	port = ntohs(v6 ? sin6->sin6_port : sin->sin_port);
	if (inet_ntop(cfg->https_addr.ss_family, v6 ? (const void *)&sin6->sin6_addr :
	    (const void *)&sin->sin_addr, host, sizeof(host)) == NULL)
		return kb_error_set(KB_ERR_INTERNAL, "inet_ntop failed");
	if ((r = read_pem("certificate", cfg->https_cert, false, &cert)) != 0 ||
	    (r = read_pem("key", cfg->https_key, true, &key)) != 0)
		goto out;
	a->lsn_https.a = a;
	a->lsn_https.https = true;
	a->mhd_https = MHD_start_daemon(flags, 0, NULL, NULL, on_request,
	    &a->lsn_https,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->https_addr,
	    MHD_OPTION_HTTPS_MEM_CERT, cert,
	    MHD_OPTION_HTTPS_MEM_KEY, key,
	    MHD_OPTION_HTTPS_PRIORITIES,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->https_max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->https_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, &a->lsn_https,
	    MHD_OPTION_NOTIFY_COMPLETED, on_request_done, a,
	    MHD_OPTION_END);
	if (a->mhd_https == NULL) {
		r = kb_error_set(KB_ERR_CONFIG, "cannot start the HTTPS listener "
		    "on %s: the address is in use or not local, or the "
		    "certificate and key do not match (see the messages above)",
		    cfg->https_listen);
		goto out;
	}
	if (port == 0 && (di = MHD_get_daemon_info(a->mhd_https,
	    MHD_DAEMON_INFO_BIND_PORT)) != NULL)
		port = di->port;
	snprintf(a->https_url, sizeof(a->https_url), v6 ? "https://[%s]:%u" :
	    "https://%s:%u", host, port);
	kb_info("HTTPS listener on %s", a->https_url);
	r = 0;
 out:
	/* GnuTLS has its own copy once the daemon started. */
	if (key != NULL) {
		kb_wipe(key, strlen(key));
		free(key);
	}
	free(cert);
	return r;
}

void
agent_server_stop(struct agent *a)
{
	if (a->mhd_https != NULL)
		MHD_stop_daemon(a->mhd_https);
	a->mhd_https = NULL;
	if (a->mhd != NULL)
		MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
}
