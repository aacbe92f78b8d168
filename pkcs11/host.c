/*
 * keybridge-p11host: one PKCS#11 module in its own process, served over
 * p11-kit's RPC protocol (OpenSSH's ssh-pkcs11-helper idea, p11-kit's
 * wire format and server code).
 *
 * Usage: keybridge-p11host MODULE-PATH
 *
 * Started by the pkcs11 library (isolate.c), never by hand: fd 3 is a
 * unix socket already bound and listening in the parent's private
 * directory (the host creates no paths), fd 4 an optional pipe on which
 * the host reports "OK" once the module is loaded and initialised, or
 * "ERR <code>" and a sentence.  Nothing secret comes in argv; PINs come
 * over the socket in C_Login and are never logged.
 *
 * The host owns the module's C_Initialize (kb_p11_module_load, OS
 * locking) and C_Finalize; the lists it serves answer C_Initialize and
 * C_Finalize from clients with CKR_OK and do nothing, so every client
 * connection shares one initialised module and its session handles.
 * p11_kit_remote_serve_module answers one call at a time per
 * connection; each accepted connection gets a thread.
 *
 * It exits (C_Finalize, then _exit 0) on SIGTERM, SIGINT or SIGHUP, and
 * when the parent dies: PR_SET_PDEATHSIG, set by the parent between fork
 * and exec, sends SIGTERM; a getppid check every second covers a parent
 * that died before that.  No core dumps, not ptrace-able (ssh-agent).
 *
 * One host per module and socket directory at a time: before loading the
 * module it takes an exclusive flock on a file beside the socket, named
 * after the module's path, and holds it until it exits.  A host whose
 * agent was killed may still be finishing a call (up to DRAIN_MS); the
 * next agent's host waits for it (LOCK_WAIT_MS) instead of working on the
 * same token from a second process, which could leave an object the new
 * agent's start-up check never saw.
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/remote.h>

#include "kb_common.h"
#include "kb_pkcs11.h"

#define LISTEN_FD     3
#define STATUS_FD     4
#define MAX_CONNS     64
#define DRAIN_MS      2000
#define LOCK_WAIT_MS  15000

static CK_FUNCTION_LIST served;

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cond = PTHREAD_COND_INITIALIZER;
static int conns[MAX_CONNS];           /* -1: free slot */
static unsigned n_conns;

static CK_RV
owned_by_host(CK_VOID_PTR args)
{
	(void)args;
	return CKR_OK;
}

static void *
serve(void *arg)
{
	int slot = (int)(long)arg, fd;

	pthread_mutex_lock(&conn_lock);
	fd = conns[slot];
	pthread_mutex_unlock(&conn_lock);
	/* Returns when the client disconnects or the stream breaks. */
	if (p11_kit_remote_serve_module(&served, fd, fd) != 0)
		kb_debug("connection %d ended with an error", slot);
	pthread_mutex_lock(&conn_lock);
	close(fd);
	conns[slot] = -1;
	n_conns--;
	pthread_cond_broadcast(&conn_cond);
	pthread_mutex_unlock(&conn_lock);
	return NULL;
}

static void
accept_one(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	pthread_attr_t attr;
	pthread_t th;
	int fd, slot;

	if ((fd = accept4(LISTEN_FD, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    cred.uid != getuid()) {
		kb_warn("refused a connection from uid %ld: not this user",
		    len == sizeof(cred) ? (long)cred.uid : -1L);
		close(fd);
		return;
	}
	pthread_mutex_lock(&conn_lock);
	for (slot = 0; slot < MAX_CONNS && conns[slot] >= 0; slot++)
		;
	if (slot == MAX_CONNS) {
		pthread_mutex_unlock(&conn_lock);
		kb_warn("refused a connection: %d are open already", MAX_CONNS);
		close(fd);
		return;
	}
	conns[slot] = fd;
	n_conns++;
	pthread_mutex_unlock(&conn_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, serve, (void *)(long)slot) != 0) {
		kb_warn("cannot start a thread for a connection");
		pthread_mutex_lock(&conn_lock);
		close(fd);
		conns[slot] = -1;
		n_conns--;
		pthread_mutex_unlock(&conn_lock);
	}
	pthread_attr_destroy(&attr);
}

/*
 * End every connection and wait (bounded) for their threads: the module
 * must not be finalized under a call.  True when all have ended.
 */
static bool
drain(void)
{
	struct timespec until;
	unsigned i;
	bool all;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DRAIN_MS / 1000;
	pthread_mutex_lock(&conn_lock);
	/* Under the lock: a thread closes its fd only while holding it. */
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] >= 0)
			(void)shutdown(conns[i], SHUT_RDWR);
	while (n_conns > 0)
		if (pthread_cond_timedwait(&conn_cond, &conn_lock, &until) == ETIMEDOUT)
			break;
	all = n_conns == 0;
	pthread_mutex_unlock(&conn_lock);
	return all;
}

static void
status(int fd, const char *text)
{
	size_t len = strlen(text), off = 0;
	ssize_t n;

	if (fd < 0)
		return;
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static bool
is_listening_unix(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || !v)
		return false;
	len = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 && v == AF_UNIX;
}

/*
 * The flock described at the top: "host-HASH.lock" in the listening
 * socket's directory (HASH: FNV-1a of the module path, which only has to
 * tell modules apart).  0, or -1 with msg set.
 */
static int
host_lock(const char *module, char *msg, size_t n)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	uint64_t h = UINT64_C(14695981039346656037);
	char path[sizeof(sa.sun_path) + 40], *slash;
	const unsigned char *p;
	int fd, waited = 0;

	memset(&sa, 0, sizeof(sa));
	if (getsockname(LISTEN_FD, (struct sockaddr *)&sa, &sl) != 0 ||
	    sa.sun_family != AF_UNIX || sa.sun_path[0] != '/' ||
	    (slash = strrchr(sa.sun_path, '/')) == NULL) {
		snprintf(msg, n, "ERR %d\nthe PKCS#11 module host cannot tell "
		    "its socket's directory", KB_ERR_INTERNAL);
		return -1;
	}
	*slash = '\0';
	for (p = (const unsigned char *)module; *p != '\0'; p++)
		h = (h ^ *p) * UINT64_C(1099511628211);
	snprintf(path, sizeof(path), "%s/host-%016llx.lock", sa.sun_path,
	    (unsigned long long)h);
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0) {
		snprintf(msg, n, "ERR %d\nthe PKCS#11 module host cannot open "
		    "%s: %s", KB_ERR_IO, path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS) {
			snprintf(msg, n, "ERR %d\nanother keybridge-p11host "
			    "still serves %s from %s (the host of an agent that "
			    "just ended?); try again in a moment", KB_ERR_RUNNING,
			    module, sa.sun_path);
			close(fd);
			return -1;
		}
		(void)poll(NULL, 0, 50);
		waited += 50;
	}
	return 0;          /* fd stays open, and locked, until we exit */
}

int
main(int argc, char **argv)
{
	kb_p11_module *m = NULL;
	CK_FUNCTION_LIST_PTR fl;
	struct stat st;
	sigset_t sigs;
	pid_t ppid;
	int sfd, status_fd = -1, r, i;
	char msg[700];

	kb_log_set_prefix("keybridge-p11host");
	kb_harden_process();
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: keybridge-p11host MODULE-PATH (started by "
		    "keybridge with a listening socket on fd 3)\n");
		return 2;
	}
	if (!is_listening_unix(LISTEN_FD)) {
		fprintf(stderr, "keybridge-p11host: fd 3 is not a listening unix "
		    "socket; this program is started by keybridge\n");
		return 2;
	}
	if (fstat(STATUS_FD, &st) == 0 && S_ISFIFO(st.st_mode))
		status_fd = STATUS_FD;
	/* The module's own children, if any, get neither descriptor. */
	(void)fcntl(LISTEN_FD, F_SETFD, FD_CLOEXEC);
	if (status_fd >= 0)
		(void)fcntl(status_fd, F_SETFD, FD_CLOEXEC);
	ppid = getppid();
	if (ppid == 1)
		_exit(0);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i] = -1;

	/* Blocked before the module starts threads, so they inherit it. */
	(void)signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	(void)signal(SIGTERM, SIG_DFL);  /* an inherited SIG_IGN would drop it */
	(void)signal(SIGINT, SIG_DFL);
	(void)signal(SIGHUP, SIG_DFL);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if ((sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
		snprintf(msg, sizeof(msg), "ERR %d\nthe PKCS#11 module host cannot "
		    "watch signals: %s", KB_ERR_INTERNAL, strerror(errno));
		status(status_fd, msg);
		return 1;
	}

	if (host_lock(argv[1], msg, sizeof(msg)) != 0) {
		status(status_fd, msg);
		return 1;
	}
	if ((r = kb_p11_module_load(argv[1], &m)) != 0) {
		snprintf(msg, sizeof(msg), "ERR %d\n%s", r, kb_error_detail(r));
		status(status_fd, msg);
		kb_error("%s", kb_error_detail(r));
		return 1;
	}
	fl = kb_p11_module_function_list(m);
	/* The v2.40 part only: p11-kit's server then never looks past it. */
	served = *fl;
	served.version.major = 2;
	served.version.minor = 40;
	served.C_Initialize = owned_by_host;
	served.C_Finalize = owned_by_host;
	status(status_fd, "OK\n");
	if (status_fd >= 0)
		close(status_fd);

	for (;;) {
		struct pollfd p[2] = { { LISTEN_FD, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		int pr = poll(p, 2, 1000);

		if (pr < 0 && errno != EINTR)
			break;
		if (pr == 0 && getppid() != ppid)
			break;          /* the parent died before PDEATHSIG was set */
		if (pr > 0 && (p[1].revents & POLLIN))
			break;
		if (pr > 0 && (p[0].revents & POLLIN))
			accept_one();
		if (pr > 0 && (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)))
			break;
	}
	close(LISTEN_FD);
	if (drain())
		kb_p11_module_free(m);     /* C_Finalize */
	else
		kb_warn("a call into the module did not end within %d ms; exiting "
		    "without C_Finalize", DRAIN_MS);
	_exit(0);
}
