/*
 * server.c: the agent's HTTP server on its Unix socket.
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
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "agent.h"

struct request {
	struct kb_buf body;
	bool too_large;
	bool answered;
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

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode what)
{
	const union MHD_ConnectionInfo *ci;
	struct agent_peer *p;
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;    /* unknown peer: every request is refused */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL &&
	    getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
	    len == sizeof(uc)) {
		p->known = true;
		p->pid = uc.pid;
		p->uid = uc.uid;
		p->gid = uc.gid;
	}
	*socket_ctx = p;
}

/*
 * Queue body (taking it; NULL: an empty body) with the headers every
 * answer carries.  0, or -1 when the connection must be dropped.
 */
int
agent_respond(struct MHD_Connection *c, unsigned status, cJSON *body,
    const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;

	if (body != NULL) {
		text = cJSON_PrintUnformatted(body);
		cJSON_Delete(body);
		if (text == NULL)
			return -1;    /* out of memory: drop the connection */
		len = strlen(text);
	}
	resp = MHD_create_response_from_buffer_with_free_callback(len,
	    text != NULL ? text : (char *)"", text != NULL ? cJSON_free : NULL);
	if (resp == NULL) {
		cJSON_free(text);
		return -1;
	}
	if ((len > 0 && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8") != MHD_YES) ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store") != MHD_YES ||
	    (allow != NULL &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(resp);
		return -1;
	}
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret == MHD_YES ? 0 : -1;
}

/* A Key Vault error body: {"error":{"code":..,"message":..[,"innererror":
 * {"code":inner}]}}. */
int
agent_respond_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message, const char *inner,
    const char *allow)
{
	cJSON *root, *err, *in;

	if ((root = cJSON_CreateObject()) == NULL)
		return -1;
	if ((err = cJSON_AddObjectToObject(root, "error")) == NULL ||
	    cJSON_AddStringToObject(err, "code", code) == NULL ||
	    cJSON_AddStringToObject(err, "message", message) == NULL ||
	    (inner != NULL &&
	    ((in = cJSON_AddObjectToObject(err, "innererror")) == NULL ||
	    cJSON_AddStringToObject(in, "code", inner) == NULL))) {
		cJSON_Delete(root);
		return -1;
	}
	return agent_respond(c, status, root, allow);
}

static enum MHD_Result
respond_error(struct MHD_Connection *c, unsigned status, const char *code,
    const char *message, const char *allow)
{
	return agent_respond_error(c, status, code, message, NULL, allow) == 0 ?
	    MHD_YES : MHD_NO;
}

static const struct agent_peer *
peer_of(struct MHD_Connection *c)
{
	static const struct agent_peer nobody = { .known = false };
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && ci->socket_context != NULL)
		return ci->socket_context;
	return &nobody;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_ctx)
{
	struct agent *a = cls;
	struct request *rq = *req_ctx;
	const struct agent_peer *peer = NULL;
	char why[512];
	const char *cl;
	unsigned long long clen;
	char msg[128];
	int r;

	if (rq == NULL) {
		/* First call: headers only.  Decide what we can before the body. */
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		kb_buf_init(&rq->body, AGENT_MAX_BODY);
		*req_ctx = rq;
		peer = peer_of(c);
		if ((r = agent_access_check(a, peer)) != 0) {
			kb_info("refused %s %.128s from uid %u pid %ld",
			    method, url, (unsigned)peer->uid, (long)peer->pid);
			/* The sentence first: auditing may set another. */
			snprintf(why, sizeof(why), "%s", kb_error_detail(r));
			agent_kvapi_deny_audit(a, peer, url, method);
			rq->answered = true;
			return respond_error(c, 403, "Forbidden", why, NULL);
		}
		kb_debug("%s %.128s from uid %u pid %ld", method, url,
		    (unsigned)peer->uid, (long)peer->pid);
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
	return agent_kvapi_handle(a, c, peer_of(c), url, method,
	    (const char *)rq->body.data, rq->body.len) == 0 ? MHD_YES : MHD_NO;
}

static void
on_request_done(void *cls, struct MHD_Connection *c, void **req_ctx,
    enum MHD_RequestTerminationCode why)
{
	struct request *rq = *req_ctx;

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

	/* The logger first, or MHD prints early messages its own way. */
	a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)a->listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, a->cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, a->cfg->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, a->cfg->request_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
	    MHD_OPTION_NOTIFY_COMPLETED, on_request_done, a,
	    MHD_OPTION_END);
	if (a->mhd == NULL)
		return kb_error_set(KB_ERR_INTERNAL,
		    "cannot start the HTTP server on %s", a->cfg->socket);
	/* MHD owns and closes the listening socket from now on. */
	a->listen_fd = -1;
	return 0;
}

void
agent_server_stop(struct agent *a)
{
	if (a->mhd != NULL)
		MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
}
