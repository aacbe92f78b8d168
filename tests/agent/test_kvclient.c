/*
 * test_kvclient.c: kv-client against a small HTTP server on a Unix
 * socket in this process: JSON bodies, Key Vault error bodies mapped to
 * KB_ERR_* codes with the service's message kept, the response cap
 * enforced while data arrives (chunked, no Content-Length), bodies that
 * are not JSON, timeouts, and an agent that is not there.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kb_kvclient.h"
/* tap.h's tap_diag() has no format attribute; clang warns on it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop

static int listen_fd = -1;
static const char *canned;      /* the next answer, or NULL: stay silent */
static size_t big_chunks;       /* > 0: answer with that many 1 KiB chunks */

static void
read_request(int fd)
{
	char buf[8192];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf) - 1 &&
	    (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0 && (w = write(fd, p, n)) > 0) {
		p += w;
		n -= (size_t)w;
	}
}

static void *
server(void *arg)
{
	char chunk[1100], data[1024];
	int fd;
	size_t i;

	(void)arg;
	memset(data, 'x', sizeof(data));
	while ((fd = accept(listen_fd, NULL, NULL)) != -1) {
		read_request(fd);
		if (big_chunks > 0) {
			const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
			write_all(fd, h, strlen(h));
			for (i = 0; i < big_chunks; i++) {
				int n = snprintf(chunk, sizeof(chunk), "400\r\n");
				memcpy(chunk + n, data, sizeof(data));
				memcpy(chunk + n + sizeof(data), "\r\n", 2);
				write_all(fd, chunk, (size_t)n + sizeof(data) + 2);
			}
			write_all(fd, "0\r\n\r\n", 5);
		} else if (canned != NULL)
			write_all(fd, canned, strlen(canned));
		else
			sleep(2);    /* never answer: the client times out */
		close(fd);
	}
	return NULL;
}

static char *
answer(int status, const char *reason, const char *body)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status, reason,
	    strlen(body), body);
	return buf;
}

int
main(void)
{
	char dir[] = "/tmp/kbkvc.XXXXXX", path[64];
	struct sockaddr_un sa;
	struct kb_kv_response *resp = NULL;
	kb_kv_client *c = NULL;
	pthread_t th;
	int r;

	signal(SIGPIPE, SIG_IGN);    /* the server writes after the client hung up */
	if (mkdtemp(dir) == NULL)
		return tap_skip_all("mkdtemp failed");
	snprintf(path, sizeof(path), "%s/s", dir);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd == -1 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(listen_fd, 8) != 0)
		return tap_skip_all("cannot listen on a Unix socket");
	pthread_create(&th, NULL, server, NULL);

	r = kb_kv_client_new_unix(path, &c);
	tap_is_int(r, 0, "client for %s", path);
	tap_is_str(kb_kv_client_endpoint(c), path, "endpoint is the socket path");

	canned = answer(200, "OK", "{\"version\":\"1\",\"n\":[1,2]}");
	r = kb_kv_request(c, "GET", "/keybridge/status", NULL, &resp);
	tap_is_int(r, 0, "200 with JSON");
	tap_ok(resp != NULL && resp->status == 200, "status 200");
	tap_ok(resp != NULL && cJSON_IsString(cJSON_GetObjectItem(resp->body, "version")),
	    "body parsed");
	tap_is_int(resp ? kb_kv_response_error(resp) : -99, 0, "2xx is no error");
	kb_kv_response_free(resp);
	resp = NULL;

	canned = answer(404, "Not Found",
	    "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) k was not found\"}}");
	r = kb_kv_request(c, "GET", "/keys/k", NULL, &resp);
	tap_is_int(r, 0, "404 is still a response");
	tap_is_str(resp ? resp->error_code : NULL, "KeyNotFound", "error code kept");
	r = resp ? kb_kv_response_error(resp) : 0;
	tap_is_int(r, KB_ERR_NOT_FOUND, "404 maps to KB_ERR_NOT_FOUND");
	tap_ok(strstr(kb_error_detail(r), "was not found") != NULL &&
	    strstr(kb_error_detail(r), "KeyNotFound") != NULL,
	    "the service's message and code are in the sentence: %s", kb_error_detail(r));
	kb_kv_response_free(resp);
	resp = NULL;

	canned = answer(403, "Forbidden", "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\"}}");
	r = kb_kv_request(c, "POST", "/keys/k/create", NULL, &resp);
	tap_is_int(resp ? kb_kv_response_error(resp) : 0, KB_ERR_DENIED, "403 maps to DENIED");
	kb_kv_response_free(resp);
	resp = NULL;

	canned = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
	r = kb_kv_request(c, "GET", "/x", NULL, &resp);
	tap_is_int(r, KB_ERR_PROTOCOL, "200 with a body that is not JSON");
	tap_ok(resp == NULL, "no response on failure");

	canned = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>";
	r = kb_kv_request(c, "GET", "/x", NULL, &resp);
	tap_is_int(r, 0, "an error page that is not JSON still gives the status");
	tap_is_int(resp ? kb_kv_response_error(resp) : 0, KB_ERR_DEVICE, "502 maps to DEVICE");
	kb_kv_response_free(resp);
	resp = NULL;

	kb_kv_client_set_max_body(c, 4096);
	big_chunks = 64;
	r = kb_kv_request(c, "GET", "/big", NULL, &resp);
	tap_is_int(r, KB_ERR_LIMIT, "chunked body over the cap stops at the cap");
	tap_ok(resp == NULL, "no response over the cap");
	big_chunks = 0;
	kb_kv_client_set_max_body(c, KB_KV_DEFAULT_MAX_BODY);

	canned = NULL;
	kb_kv_client_set_timeouts(c, 200, 300);
	r = kb_kv_request(c, "GET", "/slow", NULL, &resp);
	tap_is_int(r, KB_ERR_IO, "a silent server times out");

	r = kb_kv_request(c, "GET", "no-slash", NULL, &resp);
	tap_is_int(r, KB_ERR_INVALID, "a path must start with /");
	r = kb_kv_request(c, "GET", "/a b", NULL, &resp);
	tap_is_int(r, KB_ERR_INVALID, "no spaces in paths");
	kb_kv_client_free(c);
	c = NULL;

	snprintf(path, sizeof(path), "%s/none", dir);
	r = kb_kv_client_new_unix(path, &c);
	r = r ? r : kb_kv_request(c, "GET", "/keybridge/status", NULL, &resp);
	tap_is_int(r, KB_ERR_UNREACHABLE, "no socket: UNREACHABLE");
	tap_ok(strstr(kb_error_detail(r), path) != NULL &&
	    strstr(kb_error_detail(r), strerror(ENOENT)) != NULL,
	    "the sentence names the socket and the reason: %s", kb_error_detail(r));
	kb_kv_client_free(c);

	tap_is_int(kb_kv_status_to_err(400, NULL), KB_ERR_INVALID, "400");
	tap_is_int(kb_kv_status_to_err(401, NULL), KB_ERR_DENIED, "401");
	tap_is_int(kb_kv_status_to_err(409, "Conflict"), KB_ERR_CONFLICT, "409");
	tap_is_int(kb_kv_status_to_err(413, NULL), KB_ERR_LIMIT, "413");
	tap_is_int(kb_kv_status_to_err(500, "HSMError"), KB_ERR_DEVICE, "500 HSMError");
	tap_is_int(kb_kv_status_to_err(500, "InternalServerError"), KB_ERR_INTERNAL, "500 other");
	tap_is_int(kb_kv_status_to_err(503, NULL), KB_ERR_BUSY, "503");
	tap_is_int(kb_kv_status_to_err(503, "ServiceUnavailable"), KB_ERR_BUSY,
	    "503 ServiceUnavailable");
	tap_is_int(kb_kv_status_to_err(503, "HSMError"), KB_ERR_DEVICE,
	    "503 HSMError");
	tap_is_int(kb_kv_status_to_err(500, "ServiceUnavailable"), KB_ERR_BUSY,
	    "500 ServiceUnavailable");
	tap_is_int(kb_kv_status_to_err(302, NULL), KB_ERR_PROTOCOL, "302");

	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(th, NULL);
	snprintf(path, sizeof(path), "%s/s", dir);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
