/*
 * client.c: the Key Vault client over the transport.  Builds URLs,
 * encodes and parses JSON bodies, and maps Key Vault error bodies
 * ({"error":{"code":..,"message":..}}) to KB_ERR_* codes.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum kv_endpoint_kind { KV_UNIX = 1 };

struct kb_kv_client {
	enum kv_endpoint_kind kind;
	char *socket_path;     /* KV_UNIX */
	char *base_url;        /* "http://localhost" for KV_UNIX */
	long connect_ms;
	long total_ms;
	size_t max_body;
	void *handle;          /* curl handle kept for keep-alive */
};

/* A request path is printable ASCII without spaces, at most 4 KiB. */
#define KV_MAX_PATH 4096

int
kb_kv_client_new_unix(const char *socket_path, kb_kv_client **out)
{
	kb_kv_client *c = NULL;
	int r = KB_ERR_ALLOC;

	if (socket_path == NULL || socket_path[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "no agent socket path given");
	/* sockaddr_un.sun_path is 108 bytes on Linux. */
	if (strlen(socket_path) >= 108)
		return kb_error_set(KB_ERR_INVALID,
		    "socket path %s is too long (at most 107 bytes)", socket_path);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	c->kind = KV_UNIX;
	if ((c->socket_path = kb_strdup(socket_path)) == NULL ||
	    (c->base_url = kb_strdup("http://localhost")) == NULL)
		goto out;
	c->connect_ms = KB_KV_DEFAULT_CONNECT_MS;
	c->total_ms = KB_KV_DEFAULT_TOTAL_MS;
	c->max_body = KB_KV_DEFAULT_MAX_BODY;
	*out = c;
	c = NULL;
	r = 0;
 out:
	kb_kv_client_free(c);
	return r;
}

void
kb_kv_client_free(kb_kv_client *c)
{
	if (c == NULL)
		return;
	kb_http_handle_free(c->handle);
	free(c->socket_path);
	free(c->base_url);
	free(c);
}

void
kb_kv_client_set_timeouts(kb_kv_client *c, long connect_ms, long total_ms)
{
	if (connect_ms > 0)
		c->connect_ms = connect_ms;
	if (total_ms > 0)
		c->total_ms = total_ms;
}

void
kb_kv_client_set_max_body(kb_kv_client *c, size_t max_body)
{
	if (max_body > 0)
		c->max_body = max_body;
}

const char *
kb_kv_client_endpoint(const kb_kv_client *c)
{
	return c->kind == KV_UNIX ? c->socket_path : c->base_url;
}

void
kb_kv_response_free(struct kb_kv_response *r)
{
	if (r == NULL)
		return;
	cJSON_Delete(r->body);
	free(r->error_code);
	free(r->error_message);
	free(r);
}

static bool
kv_path_ok(const char *p)
{
	size_t i;

	if (p == NULL || p[0] != '/')
		return false;
	for (i = 0; p[i] != '\0'; i++)
		if (i >= KV_MAX_PATH || (unsigned char)p[i] <= 0x20 ||
		    (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

/* Pick error.code and error.message out of a Key Vault error body. */
static int
kv_take_error(struct kb_kv_response *resp)
{
	const cJSON *err, *code, *msg;

	err = cJSON_GetObjectItemCaseSensitive(resp->body, "error");
	if (!cJSON_IsObject(err))
		return 0;
	code = cJSON_GetObjectItemCaseSensitive(err, "code");
	msg = cJSON_GetObjectItemCaseSensitive(err, "message");
	if (cJSON_IsString(code) &&
	    (resp->error_code = kb_strdup(code->valuestring)) == NULL)
		return KB_ERR_ALLOC;
	if (cJSON_IsString(msg) &&
	    (resp->error_message = kb_strdup(msg->valuestring)) == NULL)
		return KB_ERR_ALLOC;
	return 0;
}

int
kb_kv_request(kb_kv_client *c, const char *method, const char *path,
    const cJSON *body, struct kb_kv_response **out)
{
	struct kb_kv_response *resp = NULL;
	struct kb_http_req req;
	struct kb_buf rbody, url;
	char *text = NULL;
	long status = 0;
	int r;

	kb_buf_init(&rbody, 0);
	kb_buf_init(&url, 2 * KV_MAX_PATH);
	if (!kv_path_ok(path)) {
		r = kb_error_set(KB_ERR_INVALID, "bad request path");
		goto out;
	}
	if ((r = kb_buf_appendf(&url, "%s%s", c->base_url, path)) != 0)
		goto out;
	if (body != NULL && (text = cJSON_PrintUnformatted(body)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = (const char *)url.data;
	req.unix_path = c->kind == KV_UNIX ? c->socket_path : NULL;
	req.endpoint = kb_kv_client_endpoint(c);
	req.body = text;
	req.body_len = text != NULL ? strlen(text) : 0;
	req.connect_ms = c->connect_ms;
	req.total_ms = c->total_ms;
	req.max_body = c->max_body;
	req.reuse = &c->handle;
	if ((r = kb_http_perform(&req, &status, &rbody)) != 0)
		goto out;
	if ((resp = calloc(1, sizeof(*resp))) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	resp->status = status;
	if (rbody.len > 0) {
		if (memchr(rbody.data, '\0', rbody.len) != NULL)
			resp->body = NULL;
		else
			resp->body = cJSON_ParseWithLength((const char *)rbody.data,
			    rbody.len);
		/*
		 * A success must carry JSON; an error page from something
		 * that is not Key Vault (a proxy) still yields its status.
		 */
		if (resp->body == NULL && status >= 200 && status < 300) {
			r = kb_error_set(KB_ERR_PROTOCOL,
			    "%s answered HTTP %ld with a body that is not JSON",
			    req.endpoint, status);
			goto out;
		}
	}
	if ((r = kv_take_error(resp)) != 0)
		goto out;
	*out = resp;
	resp = NULL;
	r = 0;
 out:
	kb_kv_response_free(resp);
	cJSON_free(text);
	kb_buf_free(&rbody);
	kb_buf_free(&url);
	return r;
}

int
kb_kv_status_to_err(long status, const char *kv_code)
{
	static const char *device_codes[] = {
		"HSMError", "TokenUnavailable", "DeviceError",
		"ServiceUnavailable", NULL
	};
	size_t i;

	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
		return KB_ERR_INVALID;
	case 401:
	case 403:
		return KB_ERR_DENIED;
	case 404:
		return KB_ERR_NOT_FOUND;
	case 405:
	case 501:
		return KB_ERR_UNSUPPORTED;
	case 409:
		return KB_ERR_CONFLICT;
	case 413:
		return KB_ERR_LIMIT;
	case 502:
	case 503:
	case 504:
		return KB_ERR_DEVICE;
	default:
		break;
	}
	if (status >= 500) {
		for (i = 0; kv_code != NULL && device_codes[i] != NULL; i++)
			if (strcmp(kv_code, device_codes[i]) == 0)
				return KB_ERR_DEVICE;
		return KB_ERR_INTERNAL;
	}
	if (status >= 400)
		return KB_ERR_INVALID;
	return KB_ERR_PROTOCOL;    /* 1xx or 3xx: nothing we asked for */
}

int
kb_kv_response_error(const struct kb_kv_response *r)
{
	int code = kb_kv_status_to_err(r->status, r->error_code);

	if (code == 0)
		return 0;
	if (r->error_message != NULL)
		return kb_error_set(code, "%s (%s, HTTP %ld)", r->error_message,
		    r->error_code ? r->error_code : "no code", r->status);
	return kb_error_set(code, "%s (HTTP %ld)", kb_err(code), r->status);
}
