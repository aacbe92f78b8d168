/*
 * runtime.c: the files the running agent owns next to its socket.
 *
 * SOCKET.lock holds an fcntl write lock for the agent's whole life and
 * its pid as text, so a second agent refuses to start (KB_ERR_RUNNING)
 * and `keybridge dev down` finds the pid with F_GETLK.  fcntl locks die
 * with the process, so a crash leaves no lock holder and the next start
 * replaces the stale socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

void
agent_init(struct agent *a)
{
	memset(a, 0, sizeof(*a));
	a->listen_fd = -1;
	a->lock_fd = -1;
	a->uid = getuid();
	a->pid = getpid();
}

/*
 * The start-up order after the PINs and the lock: tokens, the state
 * directory and the vaults (open intents resolved before anything is
 * served), the socket, the HTTPS listener, the socket's server, then
 * the sweeper.
 */
int
agent_serve(struct agent *a)
{
	int r;

	a->opening = true;
	r = agent_tokens_open(a);
	if (r == 0)
		r = kb_mkdir_p(a->cfg->state_dir, 0700);
	if (r == 0)
		r = agent_vaults_open(a);
	a->opening = false;
	if (r != 0 || a->cut_short)
		return r;
	if ((r = agent_remotes_open(a)) != 0 ||
	    (r = agent_socket_create(a)) != 0)
		return r;
	a->started_unix = kb_now_unix();
	a->started_mono = kb_now_mono();
	/* HTTPS before the socket answers: callers (dev up) take an answer
	 * on the socket to mean that every listener is up. */
	if ((r = agent_https_start(a)) != 0 ||
	    (r = agent_server_start(a)) != 0 ||
	    (r = agent_sweeper_start(a)) != 0)
		return r;
	return 0;
}

bool
agent_start_cut_short(struct agent *a)
{
	sigset_t pending;

	if (a->opening && !a->cut_short && sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) == 1 ||
	    sigismember(&pending, SIGINT) == 1)) {
		kb_info("signal during start-up: stopping before serving");
		a->cut_short = true;
	}
	return a->cut_short;
}

void
agent_shutdown(struct agent *a)
{
	agent_server_stop(a);
	agent_socket_remove(a);
	agent_remotes_close(a);
	agent_vaults_close(a);
	agent_tokens_close(a);
	agent_lock_release(a);
	free(a->tokens);
	a->tokens = NULL;
	agent_config_free(a->cfg);
	a->cfg = NULL;
}

static int
socket_dir_check(const struct agent *a)
{
	char *copy = NULL, *slash;
	char where[4200];
	struct stat st;
	int r = 0;

	if ((copy = kb_strdup(a->cfg->socket)) == NULL)
		return KB_ERR_ALLOC;
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else
		*slash = '\0';
	agent_where(a->cfg, a->cfg->socket_line, where, sizeof(where));
	if (stat(copy, &st) == -1) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "the socket directory %s does not exist (%s); create it "
		    "with mode 0700 or set socket = in %s", copy,
		    strerror(errno), where);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "%s, the socket's directory, is not a directory; fix "
		    "socket = in %s", copy, where);
		goto out;
	}
	/* ssh-agent: a private directory, not one others can write into. */
	if ((st.st_uid != a->uid && st.st_uid != 0) ||
	    (st.st_mode & 022) != 0) {
		r = kb_error_set(KB_ERR_CONFIG,
		    "the socket directory %s is writable by other users or "
		    "owned by uid %u; use a private directory (chmod 700) "
		    "or fix socket = in %s", copy, (unsigned)st.st_uid, where);
		goto out;
	}
 out:
	free(copy);
	return r;
}

int
agent_lock_acquire(struct agent *a)
{
	struct flock fl;
	struct stat fst, pst;
	struct kb_buf b;
	char pidtext[32];
	int fd = -1, tries, r, n;

	if ((r = socket_dir_check(a)) != 0)
		return r;
	kb_buf_init(&b, 4200);
	if ((r = kb_buf_appendf(&b, "%s.lock", a->cfg->socket)) != 0)
		goto out;
	for (tries = 0; tries < 10; tries++) {
		fd = open((char *)b.data, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW | O_NOCTTY, 0600);
		if (fd == -1) {
			r = kb_error_set(KB_ERR_IO, "cannot open lock file %s: %s",
			    (char *)b.data, strerror(errno));
			goto out;
		}
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == -1) {
			if (errno != EAGAIN && errno != EACCES) {
				r = kb_error_set(KB_ERR_IO, "cannot lock %s: %s",
				    (char *)b.data, strerror(errno));
				goto out;
			}
			memset(&fl, 0, sizeof(fl));
			fl.l_type = F_WRLCK;
			fl.l_whence = SEEK_SET;
			if (fcntl(fd, F_GETLK, &fl) == -1 || fl.l_type == F_UNLCK)
				fl.l_pid = 0;
			r = kb_error_set(KB_ERR_RUNNING,
			    "another keybridged (pid %ld) is already serving %s; "
			    "stop it first (keybridge dev down, or kill %ld) or "
			    "choose another socket", (long)fl.l_pid,
			    a->cfg->socket, (long)fl.l_pid);
			goto out;
		}
		/*
		 * An exiting agent unlinks the lock file after we opened it:
		 * our lock would then be on a file nobody else can see.
		 */
		if (fstat(fd, &fst) == 0 && stat((char *)b.data, &pst) == 0 &&
		    fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot take the lock %s",
		    (char *)b.data);
		goto out;
	}
	n = snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pidtext, (size_t)n, 0) != n) {
		r = kb_error_set(KB_ERR_IO, "cannot write %s: %s",
		    (char *)b.data, strerror(errno));
		(void)unlink((char *)b.data);
		goto out;
	}
	a->lock_fd = fd;
	fd = -1;
	a->lock_path = kb_buf_steal(&b, NULL);
	r = a->lock_path != NULL ? 0 : KB_ERR_ALLOC;
 out:
	if (fd != -1)
		close(fd);
	kb_buf_free(&b);
	return r;
}

void
agent_lock_release(struct agent *a)
{
	/* Unlink while still holding the lock, then let it go. */
	if (a->lock_path != NULL)
		(void)unlink(a->lock_path);
	if (a->lock_fd != -1)
		close(a->lock_fd);
	a->lock_fd = -1;
	free(a->lock_path);
	a->lock_path = NULL;
}

/* Someone answers on the socket although nobody holds the lock? */
static bool
socket_answers(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool yes;

	if (fd == -1)
		return false;
	yes = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return yes;
}

int
agent_socket_create(struct agent *a)
{
	struct sockaddr_un sa;
	struct stat st;
	char where[4200];
	mode_t old;
	int fd = -1, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (kb_strlcpy(sa.sun_path, a->cfg->socket, sizeof(sa.sun_path)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "socket path %s is too long",
		    a->cfg->socket);
	agent_where(a->cfg, a->cfg->socket_line, where, sizeof(where));
	if (lstat(a->cfg->socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kb_error_set(KB_ERR_CONFLICT,
			    "%s exists and is not a socket; remove it or set "
			    "another socket = in %s", a->cfg->socket, where);
		if (socket_answers(&sa))
			return kb_error_set(KB_ERR_RUNNING,
			    "another process is serving %s without its lock "
			    "file; stop it first or set another socket = in %s",
			    a->cfg->socket, where);
		kb_info("replacing stale socket %s", a->cfg->socket);
		if (unlink(a->cfg->socket) == -1)
			return kb_error_set(KB_ERR_IO, "cannot remove stale socket %s: %s",
			    a->cfg->socket, strerror(errno));
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return kb_error_set(KB_ERR_IO, "cannot create a socket: %s",
		    strerror(errno));
	/* ssh-agent: the socket is born 0600; no window with looser modes. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot bind %s: %s", a->cfg->socket,
		    strerror(errno));
		umask(old);
		close(fd);
		return r;
	}
	umask(old);
	a->socket_bound = true;
	a->listen_fd = fd;
	if (a->cfg->socket_mode != 0600 &&
	    chmod(a->cfg->socket, a->cfg->socket_mode) == -1)
		return kb_error_set(KB_ERR_IO, "cannot set the mode of %s: %s",
		    a->cfg->socket, strerror(errno));
	if (listen(fd, SOMAXCONN) == -1)
		return kb_error_set(KB_ERR_IO, "cannot listen on %s: %s",
		    a->cfg->socket, strerror(errno));
	return 0;
}

void
agent_socket_remove(struct agent *a)
{
	if (a->listen_fd != -1)
		close(a->listen_fd);
	a->listen_fd = -1;
	if (a->socket_bound)
		(void)unlink(a->cfg->socket);
	a->socket_bound = false;
}

/*
 * sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET
 * ("@name" is an abstract socket).  Errors are ignored, as sd_notify's
 * callers usually do.
 */
void
agent_notify(const char *state)
{
	const char *path = secure_getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	size_t plen;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	plen = strlen(path);
	if (plen >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
	    (path[0] == '/' ? 1 : 0));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, len) == -1)
		kb_debug("sd_notify to %s failed: %s", path, strerror(errno));
	close(fd);
}
