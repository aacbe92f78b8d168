/*
 * isolate.c: a PKCS#11 module in a separate process (OpenSSH's
 * ssh-pkcs11-helper idea), reached through p11-kit's RPC.
 *
 * keybridge does not speak its own RPC: the host (host.c,
 * keybridge-p11host) serves the module with libp11-kit's
 * p11_kit_remote_serve_module, and this side talks to it through
 * p11-kit's client module, p11-kit-client.so, whose C_GetFunctionList
 * reads P11_KIT_SERVER_ADDRESS and returns a new function list with its
 * own connection on every call (p11-kit/client.c).
 *
 * Start-up of one host:
 *  1. a listening unix socket in the caller's private directory
 *     (checked: ours, no group or other access), socket mode 0600;
 *  2. a status pipe; fork, and in the child only async-signal-safe calls:
 *     PR_SET_PDEATHSIG, a getppid check, the socket on fd 3 and the pipe
 *     on fd 4, /dev/null on fd 0, every other descriptor closed, execve;
 *  3. the host loads the module (C_Initialize with OS locking) and writes
 *     "OK" or "ERR <code>" and a sentence on fd 4, which we wait for
 *     (bounded), so a module that does not load fails with its sentence;
 *  4. KB_P11_HOST_CONNS lists from p11-kit-client.so, each initialised
 *     (that connects) and checked to be connected, since p11-kit's client
 *     answers C_Initialize with CKR_OK when it cannot connect;
 *  5. the socket path is removed: nobody can connect any more.
 *
 * The listening socket is bound before the fork, so the connects cannot
 * race the host's start.  A host that dies closes its end: p11-kit's
 * client fails the call with CKR_DEVICE_ERROR and closes that connection
 * for good; kb_p11_host_gone then reaps the host and the module fails
 * every later call at once (call.c).  A host stuck in one call longer
 * than the module's call timeout is killed by the watchdog (below), to
 * the same end.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef KB_P11_HOST_EXE
#define KB_P11_HOST_EXE "/usr/local/libexec/keybridge-p11host"
#endif
#ifndef KB_P11_CLIENT_MODULE
#define KB_P11_CLIENT_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
#endif

/* A module's C_Initialize on a hardware token can take a while. */
#define HOST_START_MS   30000
#define HOST_STOP_MS    3000
#define HOST_STATUS_MAX 1024

extern char **environ;

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
check_sock_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) != 0) {
		int e = errno;

		return kb_error_set(KB_ERR_CONFIG, "the socket directory %s for the "
		    "PKCS#11 module host cannot be used (%s)", dir, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return kb_error_set(KB_ERR_CONFIG, "%s is not a directory; the PKCS#11 "
		    "module host needs a private socket directory", dir);
	if (st.st_uid != geteuid())
		return kb_error_set(KB_ERR_CONFIG, "the socket directory %s is not "
		    "owned by this user (uid %u); give a private directory", dir,
		    (unsigned)geteuid());
	if ((st.st_mode & 077) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the socket directory %s is open to "
		    "group or others (mode %03o); make it 0700", dir,
		    (unsigned)(st.st_mode & 0777));
	return 0;
}

/* p11-kit's address syntax: unix:path=<percent-encoded path> (path.c). */
static char *
server_address(const char *path)
{
	static const char hex[] = "0123456789abcdef";
	struct kb_buf b;
	const unsigned char *p;

	kb_buf_init(&b, 1024);
	if (kb_buf_append(&b, "unix:path=", 10) != 0)
		goto fail;
	for (p = (const unsigned char *)path; *p != '\0'; p++) {
		char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/._-~", *p) != NULL) {
			if (kb_buf_append(&b, p, 1) != 0)
				goto fail;
		} else if (kb_buf_append(&b, enc, 3) != 0)
			goto fail;
	}
	return kb_buf_steal(&b, NULL);
fail:
	kb_buf_free(&b);
	return NULL;
}

static void
describe_status(int st, char *buf, size_t n)
{
	if (st == -1)
		snprintf(buf, n, "reaped elsewhere");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, n, "wait status 0x%x", (unsigned)st);
}

/* SIGTERM, a bounded wait, then SIGKILL.  Never called on a reaped pid. */
static void
stop_host(pid_t pid, const char *path)
{
	char how[64];
	unsigned waited;
	pid_t w = 0;
	int st = 0;

	if (pid <= 0)
		return;
	(void)kill(pid, SIGTERM);
	for (waited = 0; waited < HOST_STOP_MS; waited += 10) {
		w = waitpid(pid, &st, WNOHANG);
		if (w != 0)
			break;
		sleep_ms(10);
	}
	if (w == 0) {
		kb_warn("the PKCS#11 module host for %s did not stop within %u ms; "
		    "killing it", path, HOST_STOP_MS);
		(void)kill(pid, SIGKILL);
		while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
			;
	}
	if (w == pid) {
		describe_status(st, how, sizeof(how));
		kb_debug("pkcs11: module host for %s (pid %ld) stopped: %s", path,
		    (long)pid, how);
	}
}

/*
 * The child between fork and execve: async-signal-safe calls only (the
 * agent has threads; a lock held by one of them stays held here).
 */
static void
child_exec(const char *exe, char *const argv[], int lfd, int sfd, int devnull,
    pid_t parent, long maxfd)
{
	sigset_t none;
	int a, b;
	long fd;

	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* Die with the parent; and it may have died before prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 || getppid() != parent)
		_exit(126);
	/* Above 4 first, so that dup2 onto 3 and 4 cannot clobber them. */
	if ((a = fcntl(lfd, F_DUPFD, 10)) < 0 || (b = fcntl(sfd, F_DUPFD, 10)) < 0)
		_exit(126);
	if (devnull >= 0 && dup2(devnull, 0) != 0)
		_exit(126);
	if (dup2(a, 3) != 3 || dup2(b, 4) != 4)
		_exit(126);
	/* The agent may hold many descriptors: none of them is the host's. */
	if (syscall(SYS_close_range, 5U, ~0U, 0U) != 0)
		for (fd = 5; fd < maxfd; fd++)
			(void)close((int)fd);
	execve(exe, argv, environ);
	_exit(127);
}

static int
spawn_host(const char *exe, const char *module, int lfd, int sfd, pid_t *out)
{
	char *argv[3];
	long maxfd = sysconf(_SC_OPEN_MAX);
	pid_t parent = getpid(), pid;
	int devnull, e;

	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	argv[0] = (char *)exe;
	argv[1] = (char *)module;
	argv[2] = NULL;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid = fork();
	if (pid == 0)
		child_exec(exe, argv, lfd, sfd, devnull, parent, maxfd);
	e = errno;
	if (devnull >= 0)
		close(devnull);
	if (pid < 0)
		return kb_error_set(KB_ERR_MODULE, "cannot start the PKCS#11 module "
		    "host for %s (fork: %s)", module, strerror(e));
	*out = pid;
	return 0;
}

/* Strip a sentence from the host to printable ASCII, in place. */
static void
printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = ' ';
}

/* The host's "OK" or "ERR <code>\n<sentence>" on the status pipe. */
static int
read_status(int fd, pid_t *pid, const char *module)
{
	char buf[HOST_STATUS_MAX + 1], how[64], *nl;
	size_t len = 0;
	unsigned waited = 0;
	long code;
	int st;

	waited = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		int pr = poll(&p, 1, 100);

		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0) {
			waited += 100;
			if (waited >= HOST_START_MS) {
				return kb_error_set(KB_ERR_MODULE, "the PKCS#11 module host "
				    "for %s did not start within %u s; check the module",
				    module, HOST_START_MS / 1000);
			}
			continue;
		}
		n = read(fd, buf + len, HOST_STATUS_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == HOST_STATUS_MAX)
			break;
	}
	buf[len] = '\0';
	if (len >= 2 && strncmp(buf, "OK", 2) == 0)
		return 0;
	if (len > 4 && strncmp(buf, "ERR ", 4) == 0 && (nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		code = strtol(buf + 4, NULL, 10);
		if (code >= 0 || code < KB_ERR__MIN)
			code = KB_ERR_MODULE;
		printable(nl + 1);
		return kb_error_set((int)code, "%s", nl + 1);
	}
	/* No status: the host died or could not be executed. */
	for (waited = 0; waited < HOST_STOP_MS; waited += 10) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = -1;      /* reaped: never signal it again */
			describe_status(st, how, sizeof(how));
			return kb_error_set(KB_ERR_MODULE, "the PKCS#11 module host for "
			    "%s exited before it was ready (%s)%s", module, how,
			    WIFEXITED(st) && WEXITSTATUS(st) == 127 ?
			    "; check that keybridge-p11host is installed" : "");
		}
		sleep_ms(10);
	}
	return kb_error_set(KB_ERR_MODULE, "the PKCS#11 module host for %s "
	    "closed its status pipe without a status", module);
}

/*
 * The lists, with P11_KIT_SERVER_ADDRESS set just for these calls (the
 * caller holds the registry lock, so no other load interleaves).  The
 * old value is put back; if there was none the variable stays, empty
 * (p11-kit reads "" as unset), because unsetenv would shift the
 * environment under a concurrent getenv, while replacing the value of a
 * variable that exists only swaps one pointer (glibc keeps old strings).
 */
static int
get_lists(kb_p11_module *m, void *dl, const char *addr)
{
	CK_C_GetFunctionList gfl;
	const char *cur;
	char *old = NULL;
	CK_RV rv = CKR_OK;
	unsigned i;

	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	if (gfl == NULL)
		return kb_error_set(KB_ERR_MODULE, "%s has no C_GetFunctionList; "
		    "reinstall p11-kit-modules", KB_P11_CLIENT_MODULE);
	if ((cur = getenv("P11_KIT_SERVER_ADDRESS")) != NULL &&
	    (old = kb_strdup(cur)) == NULL)
		return KB_ERR_ALLOC;
	if (setenv("P11_KIT_SERVER_ADDRESS", addr, 1) != 0) {
		free(old);
		return KB_ERR_ALLOC;
	}
	for (i = 0; i < KB_P11_HOST_CONNS; i++) {
		CK_FUNCTION_LIST_PTR f = NULL;

		if ((rv = gfl(&f)) != CKR_OK || f == NULL)
			break;
		m->fls[i] = f;
	}
	(void)setenv("P11_KIT_SERVER_ADDRESS", old ? old : "", 1);
	free(old);
	if (i < KB_P11_HOST_CONNS)
		return kb_error_set(KB_ERR_MODULE, "p11-kit's client module refused "
		    "a connection to the PKCS#11 module host for %s (%s)", m->path,
		    kb_p11_rv_name(rv));
	m->n_fls = i;
	return 0;
}

/*
 * The watchdog: p11-kit's client blocks on the host's socket with no
 * timeout, so a module stuck in a call (a hung device, a driver waiting
 * for a touch nobody gives) would hold the agent's thread, and every
 * thread after it, for ever.  Four times a second this looks at the
 * calls in flight; one older than call_timeout_ms gets the host killed.
 * Its socket closes, the stuck call and every later one fail with
 * CKR_DEVICE_ERROR, and call.c says the host was stopped and why.
 */
static void *
watchdog_run(void *arg)
{
	kb_p11_module *m = arg;
	struct timespec ts;
	double now, oldest;
	unsigned i;
	pid_t pid;

	pthread_mutex_lock(&m->pool_lock);
	while (!m->wd_stop && !m->host_gone) {
		now = kb_now_mono();
		oldest = 0;
		for (i = 0; i < m->n_fls; i++)
			if (m->busy_since[i] > 0 && now - m->busy_since[i] > oldest)
				oldest = now - m->busy_since[i];
		if (oldest * 1000 > m->call_timeout_ms && m->host_pid > 0 &&
		    !m->host_timed_out) {
			pid = m->host_pid;
			__atomic_store_n(&m->host_timed_out, true, __ATOMIC_RELEASE);
			/* Reaping takes pool_lock: pid is still our child. */
			(void)kill(pid, SIGKILL);
			kb_error("the PKCS#11 module host for %s (pid %ld) did not "
			    "answer a call within %u s: stopped; calls on its tokens "
			    "fail until the agent is restarted", m->path, (long)pid,
			    m->call_timeout_ms / 1000);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&m->wd_cond, &m->pool_lock, &ts);
	}
	pthread_mutex_unlock(&m->pool_lock);
	return NULL;
}

int
kb_p11_isolate_start(kb_p11_module *m, const char *host_exe, const char *sock_dir)
{
	static unsigned counter;     /* under the registry lock */
	struct sockaddr_un sa;
	struct sigaction sact;
	struct stat st;
	char *addr = NULL;
	void *dl = NULL;
	int lfd = -1, sp[2] = { -1, -1 }, r, n;
	bool bound = false;
	pid_t pid = -1;

	if (host_exe == NULL)
		host_exe = KB_P11_HOST_EXE;
	if (*host_exe != '/' || stat(host_exe, &st) != 0 || !S_ISREG(st.st_mode) ||
	    access(host_exe, X_OK) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the PKCS#11 module host %s is not "
		    "an executable file; check the keybridge installation", host_exe);
	if ((r = check_sock_dir(sock_dir)) != 0)
		return r;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/p11host-%ld-%u.sock",
	    sock_dir, (long)getpid(), ++counter);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return kb_error_set(KB_ERR_CONFIG, "the socket directory path %s is "
		    "too long for a unix socket; use a shorter one", sock_dir);

	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = kb_error_set(KB_ERR_IO, "cannot make a socket for the PKCS#11 "
		    "module host: %s", strerror(errno));
		goto out;
	}
	/* Our private directory: a leftover of ours may be removed. */
	(void)unlink(sa.sun_path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = kb_error_set(KB_ERR_IO, "cannot bind %s for the PKCS#11 module "
		    "host: %s", sa.sun_path, strerror(errno));
		goto out;
	}
	bound = true;
	if (chmod(sa.sun_path, 0600) != 0 || listen(lfd, 2 * KB_P11_HOST_CONNS) != 0) {
		r = kb_error_set(KB_ERR_IO, "cannot listen on %s for the PKCS#11 "
		    "module host: %s", sa.sun_path, strerror(errno));
		goto out;
	}
	if (pipe2(sp, O_CLOEXEC) != 0) {
		r = kb_error_set(KB_ERR_IO, "cannot make a pipe for the PKCS#11 "
		    "module host: %s", strerror(errno));
		goto out;
	}
	/* p11-kit writes with write(2): a dead host must not kill us. */
	if (sigaction(SIGPIPE, NULL, &sact) == 0 && sact.sa_handler == SIG_DFL)
		(void)signal(SIGPIPE, SIG_IGN);

	if ((r = spawn_host(host_exe, m->path, lfd, sp[1], &pid)) != 0)
		goto out;
	close(lfd);
	lfd = -1;
	close(sp[1]);
	sp[1] = -1;
	if ((r = read_status(sp[0], &pid, m->path)) != 0)
		goto out;

	dlerror();
	if ((dl = dlopen(KB_P11_CLIENT_MODULE, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *e = dlerror();

		r = kb_error_set(KB_ERR_MODULE, "p11-kit's client module %s could not "
		    "be loaded (%s); install p11-kit-modules", KB_P11_CLIENT_MODULE,
		    e ? e : "dlopen failed");
		goto out;
	}
	if ((addr = server_address(sa.sun_path)) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if ((r = get_lists(m, dl, addr)) != 0)
		goto out;
	if ((r = p11c_initialize_lists(m)) != 0) {
		m->n_fls = 0;
		goto out;
	}
	m->dl = dl;
	dl = NULL;
	m->host_pid = pid;
	pid = -1;
	kb_debug("pkcs11: module %s runs in host pid %ld with %u connections",
	    m->path, (long)m->host_pid, m->n_fls);
	if (pthread_create(&m->wd_thread, NULL, watchdog_run, m) == 0)
		m->wd_running = true;
	else
		kb_warn("pkcs11: no watchdog for the module host of %s: a call "
		    "that never returns will hold its thread", m->path);
	r = 0;
out:
	/* Connected or failed: either way nobody needs the path any more. */
	if (bound)
		(void)unlink(sa.sun_path);
	if (lfd >= 0)
		close(lfd);
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	if (dl != NULL)
		dlclose(dl);
	if (pid > 0)
		stop_host(pid, m->path);
	free(addr);
	return r;
}

void
kb_p11_isolate_stop(kb_p11_module *m)
{
	pid_t pid;

	if (m == NULL || !m->isolated)
		return;
	if (m->wd_running) {
		pthread_mutex_lock(&m->pool_lock);
		m->wd_stop = true;
		pthread_cond_signal(&m->wd_cond);
		pthread_mutex_unlock(&m->pool_lock);
		pthread_join(m->wd_thread, NULL);
		m->wd_running = false;
	}
	/* C_Finalize tells the host we are done; a no-op for a dead host. */
	p11c_finalize_lists(m);
	m->n_fls = 0;
	if (m->dl != NULL) {
		dlclose(m->dl);
		m->dl = NULL;
	}
	pthread_mutex_lock(&m->pool_lock);
	pid = m->host_pid;
	m->host_pid = 0;
	pthread_mutex_unlock(&m->pool_lock);
	stop_host(pid, m->path);
}

bool
kb_p11_host_gone(kb_p11_module *m, CK_RV rv)
{
	char how[64];
	unsigned waited;
	pid_t w;
	int st = 0;

	if (__atomic_load_n(&m->host_gone, __ATOMIC_ACQUIRE))
		return true;
	if (rv != CKR_DEVICE_ERROR)
		return false;
	/*
	 * The kernel closes a dying process's sockets before it becomes a
	 * zombie: give it a moment.  A live host that reported a real
	 * CKR_DEVICE_ERROR costs this wait once per such error.
	 */
	for (waited = 0; waited <= 200; waited += 5) {
		pthread_mutex_lock(&m->pool_lock);
		if (m->host_gone) {
			pthread_mutex_unlock(&m->pool_lock);
			return true;
		}
		if (m->host_pid <= 0) {
			pthread_mutex_unlock(&m->pool_lock);
			return false;
		}
		w = waitpid(m->host_pid, &st, WNOHANG);
		if (w == m->host_pid || (w < 0 && errno == ECHILD)) {
			/* Reaped (here or by someone else): never signal that pid again. */
			m->host_status = w == m->host_pid ? st : -1;
			m->host_pid = 0;
			__atomic_store_n(&m->host_gone, true, __ATOMIC_RELEASE);
			pthread_cond_broadcast(&m->pool_cond);
			pthread_mutex_unlock(&m->pool_lock);
			describe_status(m->host_status, how, sizeof(how));
			kb_error("the PKCS#11 module host for %s exited (%s); calls on "
			    "its tokens fail until the agent is restarted", m->path, how);
			return true;
		}
		pthread_mutex_unlock(&m->pool_lock);
		sleep_ms(5);
	}
	return false;
}
