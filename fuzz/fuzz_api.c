/*
 * fuzz_api.c: the agent's whole request path under the fuzzer.
 *
 * A real keybridged runs inside this process (every agent source but
 * main.c, from agent_core_lib) on a fresh SoftHSM2 token in a temporary
 * directory: libmicrohttpd's HTTP parsing, the router, query arguments,
 * api-version, roles, strict JSON bodies, the Key Vault handlers, the
 * store and the token.  Each input is sent as raw bytes on a new
 * connection to its Unix socket, which is then half-closed; the answer
 * is read and dropped.  A crash, an ASan/UBSan report or a hang in any
 * of those layers is a finding.  A few keys of every type exist from the
 * start, so inputs naming f-ec, f-rsa or f-oct reach the crypto
 * handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static struct agent A;
static char dir[64];
static char sock_path[100];

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_api: %s: %s\n", what, kb_error_detail(-1));
	exit(1);
}

static void
put_file(const char *name, const char *text)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (kb_file_write_atomic(path, text, strlen(text), 0600) != 0)
		die(path);
}

/* Send one request; 0 if any answer came back, each read within wait_ms. */
static int
exchange(const void *data, size_t n, char *ans, size_t anslen, int wait_ms)
{
	struct sockaddr_un sa;
	struct pollfd pfd;
	size_t got = 0;
	ssize_t k;
	int fd, rc = -1;

	if (ans != NULL && anslen > 0)
		ans[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto out;
	while (n > 0) {
		k = send(fd, data, n, MSG_NOSIGNAL);
		if (k <= 0)
			break;    /* the agent may close early (413, bad request) */
		data = (const char *)data + k;
		n -= (size_t)k;
	}
	shutdown(fd, SHUT_WR);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, wait_ms) <= 0)
			break;
		char tmp[4096];
		k = recv(fd, tmp, sizeof(tmp), 0);
		if (k <= 0)
			break;
		if (ans != NULL && got + 1 < anslen) {
			size_t c = (size_t)k < anslen - 1 - got ? (size_t)k :
			    anslen - 1 - got;
			memcpy(ans + got, tmp, c);
			got += c;
			ans[got] = '\0';
		}
		rc = 0;
	}
 out:
	close(fd);
	return rc;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void
stop_agent(void)
{
	agent_shutdown(&A);
	if (dir[0] != '\0')
		(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
create(const char *name, const char *body)
{
	char req[512], ans[512];

	snprintf(req, sizeof(req), "POST /keys/%s/create?api-version=7.6 "
	    "HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", name,
	    strlen(body), body);
	/* Set-up: RSA key generation on a loaded machine may take seconds
	 * (CI once waited past 3 s for an RSA-2048 key). */
	if (exchange(req, strlen(req), ans, sizeof(ans), 60000) != 0 ||
	    strncmp(ans, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "fuzz_api: cannot create %s: %.200s\n", name,
		    ans[0] != '\0' ? ans : "no answer");
		exit(1);
	}
}

static void
start_agent(void)
{
	char conf[2048], path[256];
	int r;

	snprintf(dir, sizeof(dir), "/tmp/kbfuzz.XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0)
		die("mkdir tokens");
	snprintf(conf, sizeof(conf), "directories.tokendir = %s/tokens\n"
	    "objectstore.backend = file\nlog.level = ERROR\n", dir);
	put_file("softhsm2.conf", conf);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", path, 1);
	put_file("user.pin", "fuzz-user-pin\n");
	put_file("so.pin", "fuzz-so-pin\n");
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
	snprintf(conf, sizeof(conf),
	    "[agent]\nsocket = %s\nstate_dir = %s/state\nlog_level = error\n"
	    "threads = 2\nrequest_timeout = 1\n"
	    "[token t]\nlabel = fuzz\npin_file = %s/user.pin\n"
	    "[vault main]\ntoken = t\nretention_days = 7\n", sock_path, dir, dir);
	put_file("kb.conf", conf);
	snprintf(path, sizeof(path), "%s/kb.conf", dir);

	agent_init(&A);
	kb_log_set_level(KB_LOG_ERROR);
	if (agent_config_load(path, &A.cfg) != 0)
		die("config");
	snprintf(conf, sizeof(conf), "%s/so.pin", dir);
	if (agent_init_token(A.cfg, "t", conf) != 0)
		die("init-token");
	/* keybridged's own start-up, less the lock and the signals. */
	if ((r = agent_tokens_list(&A)) != 0 ||
	    (r = agent_read_pins(&A, false)) != 0 ||
	    (r = agent_serve(&A)) != 0)
		die("agent start");
	atexit(stop_agent);
	create("f-ec", "{\"kty\":\"EC-HSM\",\"crv\":\"P-256\"}");
	create("f-rsa", "{\"kty\":\"RSA-HSM\",\"key_size\":2048}");
	create("f-oct", "{\"kty\":\"oct-HSM\",\"key_size\":256}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;

	if (!started) {
		start_agent();
		started = true;
	}
	/* An input's RSA-4096 create takes seconds: a lost answer is no
	 * finding, and the fuzzer must not wait long for it. */
	(void)exchange(data, size, NULL, 0, 3000);
	return 0;
}
