/*
 * dev.c: `keybridge dev up` and `keybridge dev down`, development
 * environments in a directory: a SoftHSM2 token with random PINs, a
 * config, and a background keybridged.
 *
 * The CLI never opens the token itself: `keybridged init-token` does the
 * initialisation.  PINs travel in files (mode 0600) only, never in argv
 * or the environment.  A failed `dev up` removes what it created.
 *
 * With --https the agent also serves the Key Vault API over HTTPS on a
 * free loopback port, with a local CA (devtls.c) and a bearer token of
 * an Administrator principal, for the Azure SDKs (docs/dev-env.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DEV_TOKEN_NAME "dev"
#define DEV_VAULT_NAME "dev"
#define DEV_DEFAULT_LABEL "keybridge-dev"
#define DEV_START_TIMEOUT 30.0
#define DEV_STOP_TIMEOUT 20.0

struct devenv {
	char *dir;
	char *conf;
	char *conf_new;
	char *hsm_conf;
	char *tokens;
	char *user_pin;
	char *so_pin;
	char *log;
	char *socket;
	char *ca;           /* --https: CA certificate, server cert and key */
	char *cert;
	char *key;
	char *token;        /* --https: the Administrator's bearer token */
};

static char *
join(const char *dir, const char *name)
{
	struct kb_buf b;

	kb_buf_init(&b, PATH_MAX);
	if (kb_buf_appendf(&b, "%s/%s", dir, name) != 0) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

static void
devenv_clear(struct devenv *e)
{
	free(e->dir);
	free(e->conf);
	free(e->conf_new);
	free(e->hsm_conf);
	free(e->tokens);
	free(e->user_pin);
	free(e->so_pin);
	free(e->log);
	free(e->socket);
	free(e->ca);
	free(e->cert);
	free(e->key);
	free(e->token);
	memset(e, 0, sizeof(*e));
}

static int
devenv_init(struct devenv *e, const char *dir)
{
	char cwd[PATH_MAX];
	struct kb_buf b;
	size_t n;
	int r;

	memset(e, 0, sizeof(*e));
	kb_buf_init(&b, PATH_MAX);
	if (dir[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			r = kb_error_set(KB_ERR_IO, "cannot find the current directory: %s",
			    strerror(errno));
			goto out;
		}
		r = kb_buf_appendf(&b, "%s/%s", cwd, dir);
	} else
		r = kb_buf_appendf(&b, "%s", dir);
	if (r != 0) {
		r = kb_error_set(KB_ERR_INVALID, "directory name too long: %s", dir);
		goto out;
	}
	n = b.len;
	while (n > 1 && b.data[n - 1] == '/')
		b.data[--n] = '\0';
	b.len = n;
	/* Paths go into a config file: keep them to one plain line. */
	for (n = 0; n < b.len; n++)
		if (b.data[n] < 0x20 || b.data[n] == 0x7f) {
			r = kb_error_set(KB_ERR_INVALID,
			    "the directory name holds control characters");
			goto out;
		}
	if ((e->dir = kb_buf_steal(&b, NULL)) == NULL ||
	    (e->conf = join(e->dir, "keybridge.conf")) == NULL ||
	    (e->conf_new = join(e->dir, "keybridge.conf.init")) == NULL ||
	    (e->hsm_conf = join(e->dir, "softhsm2.conf")) == NULL ||
	    (e->tokens = join(e->dir, "tokens")) == NULL ||
	    (e->user_pin = join(e->dir, "user.pin")) == NULL ||
	    (e->so_pin = join(e->dir, "so.pin")) == NULL ||
	    (e->log = join(e->dir, "agent.log")) == NULL ||
	    (e->socket = join(e->dir, "agent.sock")) == NULL ||
	    (e->ca = join(e->dir, "https-ca.pem")) == NULL ||
	    (e->cert = join(e->dir, "https-cert.pem")) == NULL ||
	    (e->key = join(e->dir, "https-key.pem")) == NULL ||
	    (e->token = join(e->dir, "admin.token")) == NULL) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	/* sockaddr_un.sun_path: 107 bytes and a NUL. */
	if (strlen(e->socket) >= 108) {
		r = kb_error_set(KB_ERR_INVALID,
		    "%s is too long for a Unix socket path (at most 107 bytes); "
		    "choose a shorter --dir", e->socket);
		goto out;
	}
	r = 0;
 out:
	kb_buf_free(&b);
	if (r != 0)
		devenv_clear(e);
	return r;
}

/* pid holding the agent's lock next to its socket, or 0. */
static pid_t
lock_holder(const char *socket)
{
	struct flock fl;
	struct kb_buf b;
	int fd;
	pid_t pid = 0;

	kb_buf_init(&b, PATH_MAX);
	if (kb_buf_appendf(&b, "%s.lock", socket) != 0) {
		kb_buf_free(&b);
		return 0;
	}
	fd = open((char *)b.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	kb_buf_free(&b);
	if (fd == -1)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		pid = fl.l_pid;
	close(fd);
	return pid;
}

/* Gone, or a zombie nobody reaped yet (not every pid 1 reaps). */
static bool
process_gone(pid_t pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	bool gone = true;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (rp = strrchr(buf, ')')) != NULL && rp[1] == ' ')
		gone = rp[2] == 'Z' || rp[2] == 'X';
	else
		gone = false;
	fclose(f);
	return gone;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * keybridged: $KEYBRIDGED, next to this program, ../agent/ from it (the
 * build tree), PATH, then sbindir.
 */
static int
find_agent(char **out)
{
	const char *env = secure_getenv("KEYBRIDGED"), *path;
	char *cand = NULL, *copy = NULL, *dir, *save;
	int r;

	if (env != NULL && env[0] != '\0') {
		if (!kb_is_executable_file(env))
			return kb_error_set(KB_ERR_CONFIG,
			    "KEYBRIDGED=%s is not an executable file", env);
		return (*out = kb_strdup(env)) != NULL ? 0 : KB_ERR_ALLOC;
	}
	/* Installed side by side, or meson's build tree (cli/, agent/). */
	if ((r = kb_program_beside("keybridged", "agent", out)) != KB_ERR_NOT_FOUND)
		return r;
	if ((path = getenv("PATH")) != NULL && (copy = kb_strdup(path)) != NULL) {
		for (dir = strtok_r(copy, ":", &save); dir != NULL;
		    dir = strtok_r(NULL, ":", &save)) {
			if (dir[0] != '/')
				continue;
			if ((cand = join(dir, "keybridged")) == NULL)
				break;
			if (kb_is_executable_file(cand)) {
				free(copy);
				*out = cand;
				return 0;
			}
			free(cand);
		}
		free(copy);
	}
#ifdef KB_INSTALLED_AGENT
	/* keybridge in bin/, keybridged in sbin/, which PATH may lack. */
	if (kb_is_executable_file(KB_INSTALLED_AGENT))
		return (*out = kb_strdup(KB_INSTALLED_AGENT)) != NULL ? 0 : KB_ERR_ALLOC;
#endif
	return kb_error_set(KB_ERR_NOT_FOUND,
	    "cannot find keybridged next to keybridge or in PATH; set "
	    "KEYBRIDGED to its path");
}

/* Child side of a fork: environment for SoftHSM, no systemd socket. */
static void
child_env(const struct devenv *e)
{
	if (setenv("SOFTHSM2_CONF", e->hsm_conf, 1) != 0)
		_exit(127);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
}

static int
random_pin(const char *path)
{
	unsigned char raw[8];
	char *hex = NULL;
	char line[32];
	int r;

	if ((r = kb_random(raw, sizeof(raw))) != 0)
		return r;
	if ((hex = kb_hex_encode(raw, sizeof(raw))) == NULL) {
		kb_wipe(raw, sizeof(raw));
		return KB_ERR_ALLOC;
	}
	snprintf(line, sizeof(line), "%s\n", hex);
	r = kb_file_write_atomic(path, line, strlen(line), 0600);
	kb_wipe(raw, sizeof(raw));
	kb_wipe(line, sizeof(line));
	kb_freezero_str(hex);
	return r;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(p) == -1 ? -1 : 0;
	return unlink(p) == -1 ? -1 : 0;
}

static void
rm_tree(const char *p)
{
	(void)nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
write_configs(const struct devenv *e, const char *module, const char *label,
    const char *token_hash)
{
	struct kb_buf b;
	int r;

	kb_buf_init(&b, 64 * 1024);
	r = kb_buf_appendf(&b,
	    "# SoftHSM2 config of a keybridge dev environment.\n"
	    "directories.tokendir = %s\n"
	    "objectstore.backend = file\n"
	    "log.level = ERROR\n"
	    "slots.removable = false\n", e->tokens);
	if (r == 0)
		r = kb_file_write_atomic(e->hsm_conf, b.data, b.len, 0600);
	if (r != 0)
		goto out;
	kb_buf_reset(&b);
	r = kb_buf_appendf(&b,
	    "# keybridge dev environment, written by `keybridge dev up`.\n"
	    "# Start the agent with: SOFTHSM2_CONF=%s keybridged --config %s\n"
	    "\n"
	    "[agent]\n"
	    "socket = %s\n"
	    "state_dir = %s/state\n"
	    "log_level = info\n",
	    e->hsm_conf, e->conf, e->socket, e->dir);
	if (r == 0 && token_hash != NULL)
		r = kb_buf_appendf(&b,
		    "# HTTPS for the Azure SDKs: any free loopback port (keybridge\n"
		    "# status shows it), a certificate from this directory's CA.\n"
		    "https_listen = 127.0.0.1:0\n"
		    "https_cert = %s\n"
		    "https_key = %s\n", e->cert, e->key);
	if (r == 0)
		r = kb_buf_appendf(&b,
		    "\n"
		    "[token " DEV_TOKEN_NAME "]\n"
		    "module = %s\n"
		    "label = %s\n"
		    "pin_file = %s\n"
		    "\n"
		    "# The dev token as a Key Vault-style vault: `keybridge key create`.\n"
		    "# A short retention suits experiments (7-90 days; it cannot change\n"
		    "# once the vault exists).\n"
		    "[vault " DEV_VAULT_NAME "]\n"
		    "token = " DEV_TOKEN_NAME "\n"
		    "default = true\n"
		    "retention_days = 7\n", module, label, e->user_pin);
	if (r == 0 && token_hash != NULL)
		r = kb_buf_appendf(&b,
		    "administrators = principal:dev-admin\n"
		    "\n"
		    "# The bearer token in %s, by its SHA-256 only.\n"
		    "[principal dev-admin]\n"
		    "token_sha256 = %s\n", e->token, token_hash);
	if (r == 0)
		r = kb_file_write_atomic(e->conf_new, b.data, b.len, 0600);
 out:
	kb_buf_free(&b);
	return r;
}

static int agent_tool(const struct devenv *e, const char *agent,
    const char *tool);

/*
 * Run keybridged init-token, then keybridged backup-keys (the token can
 * make backups); returns the first non-zero exit code (stderr is ours).
 */
static int
init_token(const struct devenv *e, const char *agent)
{
	int rc;

	if ((rc = agent_tool(e, agent, "init-token")) != 0)
		return rc;
	return agent_tool(e, agent, "backup-keys");
}

static int
agent_tool(const struct devenv *e, const char *agent, const char *tool)
{
	pid_t pid;
	int st, fd;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return cli_print_error(kb_error_set(KB_ERR_INTERNAL,
		    "cannot fork: %s", strerror(errno)));
	if (pid == 0) {
		child_env(e);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		execl(agent, agent, tool, "--config", e->conf_new,
		    "--token", DEV_TOKEN_NAME, "--so-pin-file", e->so_pin,
		    (char *)NULL);
		fprintf(stderr, "keybridge: cannot run %s: %s\n", agent,
		    strerror(errno));
		_exit(1);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "keybridge: keybridged %s died of signal %d\n", tool,
	    WTERMSIG(st));
	return 1;
}

/* Print the agent's own error sentence from its log (what it last said). */
static void
show_agent_error(const struct devenv *e, off_t from)
{
	char *text = NULL, *line, *last = NULL, *save;
	size_t len = 0;

	if (kb_file_read(e->log, 16u << 20, &text, &len) != 0)
		return;
	if ((size_t)from > len)
		from = 0;
	for (line = strtok_r(text + from, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "keybridged: ", 12) == 0)
			last = line;
	if (last != NULL) {
		cli_fput(stderr, last);    /* masks control characters */
		fputc('\n', stderr);
	}
	free(text);
}

/* The agent's GET /keybridge/status, answered within 3 s. */
static int
agent_status(const char *socket, struct kb_kv_response **out)
{
	kb_kv_client *kv = NULL;
	int r;

	if ((r = kb_kv_client_new_unix(socket, &kv)) != 0)
		return r;
	kb_kv_client_set_timeouts(kv, 1000, 3000);
	r = kb_kv_request(kv, "GET", "/keybridge/status", NULL, out);
	kb_kv_client_free(kv);
	return r;
}

static bool
agent_answers(const char *socket)
{
	struct kb_kv_response *resp = NULL;
	bool ok = false;

	if (access(socket, F_OK) != 0)
		return false;
	if (agent_status(socket, &resp) == 0)
		ok = resp->status == 200;
	kb_kv_response_free(resp);
	kb_error_clear();
	return ok;
}

/*
 * Start keybridged in the background and wait until it answers.
 * Returns an exit code; 0 with *pidp set when the agent serves.
 */
static int
start_agent(const struct devenv *e, const char *agent, pid_t *pidp)
{
	struct stat st;
	double deadline;
	pid_t pid, w;
	off_t from;
	int logfd, nullfd, status;

	logfd = open(e->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW | O_NOCTTY, 0600);
	if (logfd == -1)
		return cli_print_error(kb_error_set(KB_ERR_IO,
		    "cannot open %s: %s", e->log, strerror(errno)));
	from = fstat(logfd, &st) == 0 ? st.st_size : 0;
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(logfd);
		return cli_print_error(kb_error_set(KB_ERR_INTERNAL,
		    "cannot fork: %s", strerror(errno)));
	}
	if (pid == 0) {
		/* A session of its own: the terminal's ^C is not for it. */
		(void)setsid();
		child_env(e);
		if ((nullfd = open("/dev/null", O_RDONLY)) != -1)
			dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execl(agent, agent, "--config", e->conf, (char *)NULL);
		fprintf(stderr, "keybridged: cannot run %s: %s\n", agent,
		    strerror(errno));
		_exit(1);
	}
	close(logfd);
	deadline = kb_now_mono() + DEV_START_TIMEOUT;
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			show_agent_error(e, from);
			fprintf(stderr, "keybridge: the agent did not start; its "
			    "log is %s\n", e->log);
			if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				return WEXITSTATUS(status);
			return 1;
		}
		if (agent_answers(e->socket))
			break;
		if (kb_now_mono() > deadline) {
			(void)kill(pid, SIGTERM);
			(void)waitpid(pid, &status, 0);
			return cli_print_error(kb_error_set(KB_ERR_UNREACHABLE,
			    "the agent did not answer on %s within %.0f s; see %s",
			    e->socket, DEV_START_TIMEOUT, e->log));
		}
		sleep_ms(50);
	}
	*pidp = pid;
	return 0;
}

/* Shell-quote into single quotes. */
static void
put_export(const char *name, const char *value)
{
	printf("export %s='", name);
	for (; *value != '\0'; value++) {
		if (*value == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*value);
	}
	printf("'\n");
}

/* The agent's HTTPS URL from its status, or an error. */
static int
agent_https_url(const char *socket, char *buf, size_t n)
{
	struct kb_kv_response *resp = NULL;
	cJSON *u;
	int r;

	if ((r = agent_status(socket, &resp)) != 0)
		goto out;
	if (resp->status != 200 || resp->body == NULL ||
	    !cJSON_IsString(u = cJSON_GetObjectItemCaseSensitive(resp->body,
	    "https")) ||
	    strncmp(u->valuestring, "https://", 8) != 0) {
		r = kb_error_set(KB_ERR_PROTOCOL, "the agent reports no HTTPS "
		    "listener");
		goto out;
	}
	snprintf(buf, n, "%s", u->valuestring);
	r = 0;
 out:
	kb_kv_response_free(resp);
	return r;
}

/* 0, or an exit code after the message. */
static int
print_exports(const struct devenv *e, bool https)
{
	char url[128];
	int r;

	put_export("KEYBRIDGE_SOCKET", e->socket);
	put_export("SOFTHSM2_CONF", e->hsm_conf);
	if (https) {
		if ((r = agent_https_url(e->socket, url, sizeof(url))) != 0)
			return cli_print_error(r);
		put_export("KEYBRIDGE_URL", url);
		put_export("KEYBRIDGE_CA", e->ca);
		put_export("KEYBRIDGE_TOKEN_FILE", e->token);
	}
	fflush(stdout);
	return 0;
}

static int
dev_options(struct cli *c, const char *name, int argc, char **argv,
    const char **dir, const char **module, const char **label, bool *https)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "dir", required_argument, NULL, 'd' },
		{ "module", required_argument, NULL, 'm' },
		{ "label", required_argument, NULL, 'L' },
		{ "https", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, r;

	while ((ch = getopt_long(argc, argv, "hd:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			*dir = optarg;
			break;
		case 'S':
			if (https == NULL)
				return cli_usage(name, "unknown option");
			*https = true;
			break;
		case 'm':
		case 'L':
			if (module == NULL)
				return cli_usage(name, "unknown option");
			if (ch == 'm')
				*module = optarg;
			else
				*label = optarg;
			break;
		default:
			if ((r = cli_global_opt(c, name, ch, optarg)) != 0)
				return r == 1 ? -1 : r;
		}
	}
	if (optind != argc)
		return cli_usage(name, "unexpected argument");
	if (*dir == NULL || (*dir)[0] == '\0')
		return cli_usage(name, "--dir DIR is required");
	if (module != NULL && *module != NULL && (*module)[0] != '/')
		return cli_usage(name, "--module takes an absolute path");
	if (label != NULL && *label != NULL &&
	    (strlen(*label) == 0 || strlen(*label) > 32 ||
	    strpbrk(*label, "\n\r#;") != NULL))
		return cli_usage(name, "--label takes 1 to 32 characters");
	return 0;
}

int
cmd_dev_up(struct cli *c, int argc, char **argv)
{
	const char *dir = NULL, *module = NULL, *label = NULL;
	struct devenv e;
	struct stat st;
	char *agent = NULL, *sock = NULL, hash[65];
	bool made_dir = false, made_files = false, https = false, has_https;
	pid_t pid;
	int r, rc = 0;

	memset(&e, 0, sizeof(e));
	if ((r = dev_options(c, "dev up", argc, argv, &dir, &module, &label,
	    &https)) != 0)
		return r < 0 ? 0 : r;
	umask(077);
	if ((r = devenv_init(&e, dir)) != 0)
		return cli_print_error(r);
	if ((r = find_agent(&agent)) != 0) {
		rc = cli_print_error(r);
		goto out;
	}
	if (stat(e.conf, &st) == 0) {
		/* An existing environment: use its config's socket. */
		if ((r = cli_config_socket(e.conf, &sock)) != 0) {
			rc = cli_print_error(r);
			goto out;
		}
		free(e.socket);
		e.socket = sock;
		if (module != NULL || label != NULL)
			fprintf(stderr, "keybridge: %s exists; --module and --label "
			    "only apply to a new environment\n", e.dir);
		has_https = stat(e.token, &st) == 0;
		if (https && !has_https) {
			rc = cli_print_error(kb_error_set(KB_ERR_CONFLICT, "%s was "
			    "made without --https; stop it with `keybridge dev down "
			    "--dir %s` and remove it, or choose another --dir",
			    e.dir, e.dir));
			goto out;
		}
		if ((pid = lock_holder(e.socket)) != 0) {
			fprintf(stderr, "keybridge: the agent for %s is already "
			    "running (pid %ld)\n", e.dir, (long)pid);
			rc = print_exports(&e, has_https);
			goto out;
		}
		if ((rc = start_agent(&e, agent, &pid)) != 0)
			goto out;
		fprintf(stderr, "keybridge: agent restarted over the existing "
		    "token (pid %ld, log %s)\n", (long)pid, e.log);
		rc = print_exports(&e, has_https);
		goto out;
	}
	/* A new environment. */
	if (mkdir(e.dir, 0700) == 0)
		made_dir = true;
	else if (errno != EEXIST) {
		rc = cli_print_error(kb_error_set(KB_ERR_IO,
		    "cannot create %s: %s", e.dir, strerror(errno)));
		goto out;
	} else if (stat(e.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = cli_print_error(kb_error_set(KB_ERR_CONFLICT,
		    "%s exists and is not a directory", e.dir));
		goto out;
	} else if (stat(e.tokens, &st) == 0 || stat(e.hsm_conf, &st) == 0) {
		rc = cli_print_error(kb_error_set(KB_ERR_CONFLICT,
		    "%s holds a token directory but no keybridge.conf; remove it "
		    "or choose another --dir", e.dir));
		goto out;
	} else if (chmod(e.dir, 0700) == -1) {
		rc = cli_print_error(kb_error_set(KB_ERR_IO,
		    "cannot make %s private: %s", e.dir, strerror(errno)));
		goto out;
	}
	made_files = true;
	if (mkdir(e.tokens, 0700) == -1) {
		rc = cli_print_error(kb_error_set(KB_ERR_IO,
		    "cannot create %s: %s", e.tokens, strerror(errno)));
		goto out;
	}
	if ((r = random_pin(e.user_pin)) != 0 ||
	    (r = random_pin(e.so_pin)) != 0 ||
	    (https && (r = cli_dev_tls_make(e.ca, e.cert, e.key)) != 0) ||
	    (https && (r = cli_dev_token_make(e.token, hash)) != 0) ||
	    (r = write_configs(&e, module ? module : KB_SOFTHSM_MODULE,
	        label ? label : DEV_DEFAULT_LABEL, https ? hash : NULL)) != 0) {
		rc = cli_print_error(r);
		goto out;
	}
	if ((rc = init_token(&e, agent)) != 0)
		goto out;
	/* Only now does a config claim that the token exists. */
	if (rename(e.conf_new, e.conf) == -1) {
		rc = cli_print_error(kb_error_set(KB_ERR_IO,
		    "cannot rename %s to %s: %s", e.conf_new, e.conf,
		    strerror(errno)));
		goto out;
	}
	made_files = false;
	made_dir = false;
	fprintf(stderr, "keybridge: new dev environment in %s (token '%s', "
	    "PINs in user.pin and so.pin)\n", e.dir,
	    label ? label : DEV_DEFAULT_LABEL);
	if ((rc = start_agent(&e, agent, &pid)) != 0)
		goto out;
	fprintf(stderr, "keybridge: agent started (pid %ld, log %s)\n",
	    (long)pid, e.log);
	rc = print_exports(&e, https);
 out:
	if (made_files) {
		(void)unlink(e.conf_new);
		(void)unlink(e.conf);
		(void)unlink(e.user_pin);
		(void)unlink(e.so_pin);
		(void)unlink(e.hsm_conf);
		(void)unlink(e.ca);
		(void)unlink(e.cert);
		(void)unlink(e.key);
		(void)unlink(e.token);
		rm_tree(e.tokens);
	}
	if (made_dir) {
		(void)unlink(e.log);
		(void)rmdir(e.dir);
	}
	free(agent);
	devenv_clear(&e);
	return rc;
}

int
cmd_dev_down(struct cli *c, int argc, char **argv)
{
	const char *dir = NULL;
	struct devenv e;
	struct stat st;
	char *sock = NULL;
	double deadline;
	pid_t pid;
	int r, rc = 0;

	if ((r = dev_options(c, "dev down", argc, argv, &dir, NULL, NULL,
	    NULL)) != 0)
		return r < 0 ? 0 : r;
	if ((r = devenv_init(&e, dir)) != 0)
		return cli_print_error(r);
	if (stat(e.conf, &st) != 0) {
		rc = cli_print_error(kb_error_set(KB_ERR_NOT_FOUND,
		    "%s is not a keybridge dev environment (no keybridge.conf)",
		    e.dir));
		goto out;
	}
	if ((r = cli_config_socket(e.conf, &sock)) != 0) {
		rc = cli_print_error(r);
		goto out;
	}
	free(e.socket);
	e.socket = sock;
	if ((pid = lock_holder(e.socket)) == 0) {
		fprintf(stderr, "keybridge: no agent is running for %s\n", e.dir);
		goto out;
	}
	if (kill(pid, SIGTERM) == -1) {
		rc = cli_print_error(kb_error_set(errno == EPERM ? KB_ERR_DENIED :
		    KB_ERR_IO, "cannot signal the agent (pid %ld): %s", (long)pid,
		    strerror(errno)));
		goto out;
	}
	deadline = kb_now_mono() + DEV_STOP_TIMEOUT;
	while (lock_holder(e.socket) != 0 || !process_gone(pid)) {
		if (kb_now_mono() > deadline) {
			rc = cli_print_error(kb_error_set(KB_ERR_INTERNAL,
			    "the agent (pid %ld) did not stop within %.0f s",
			    (long)pid, DEV_STOP_TIMEOUT));
			goto out;
		}
		sleep_ms(50);
	}
	fprintf(stderr, "keybridge: stopped the agent (pid %ld); %s is kept\n",
	    (long)pid, e.dir);
 out:
	devenv_clear(&e);
	return rc;
}
