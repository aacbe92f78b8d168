/*
 * main.c: keybridged, the keybridge agent (docs/keybridged.md).
 *
 * Start-up is ordered so that a failure leaves nothing behind: config,
 * PINs, lock, tokens (mechanisms, then one login), socket, server.  Any
 * failure undoes what was done, prints one sentence on stderr and exits
 * with kb_err_exit_code() (docs/exit-codes.md).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

static const char usage_text[] =
"Usage: keybridged [OPTIONS]\n"
"       keybridged init-token --config FILE --token NAME --so-pin-file FILE\n"
"       keybridged backup-keys --config FILE --so-pin-file FILE [--token NAME]...\n"
"\n"
"The keybridge agent: serves the tokens named in its config file over\n"
"HTTP on a Unix socket.  Runs in the foreground; under systemd it reports\n"
"readiness with sd_notify.  See keybridged(8) in docs/keybridged.md.\n"
"\n"
"Options:\n"
"  -c, --config FILE      config file (default: $KEYBRIDGE_CONFIG, then\n"
"                         ~/.config/keybridge/keybridge.conf)\n"
"  -f, --foreground       stay in the foreground (the default)\n"
"  -l, --log-level LEVEL  error, warn, info or debug (overrides the config)\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"init-token initialises a fresh token for a [token NAME] section that\n"
"selects by label and reads its PIN from pin_file or pin_env; the SO PIN\n"
"comes from --so-pin-file.  Used by `keybridge dev up`.\n"
"\n"
"backup-keys gives the named tokens (default: every token of the config)\n"
"one shared pair of backup keys, so that each can restore the others'\n"
"backups (docs/backup.md).  Run it while the agent is stopped.\n";

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "keybridged: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
	fprintf(stderr, "; see keybridged --help\n");
	return kb_err_exit_code(KB_ERR_USAGE);
}

/* The one sentence a failed start prints; dev up shows it from the log. */
static int
fail(int r)
{
	fprintf(stderr, "keybridged: %s\n", kb_error_detail(r));
	fflush(stderr);
	return kb_err_exit_code(r);
}

static char *
default_config(void)
{
	const char *p = secure_getenv("KEYBRIDGE_CONFIG");
	const char *home = secure_getenv("HOME");
	struct kb_buf b;

	if (p != NULL && p[0] != '\0')
		return kb_strdup(p);
	if (home == NULL || home[0] != '/')
		return kb_strdup("/etc/keybridge/keybridge.conf");
	kb_buf_init(&b, 4200);
	if (kb_buf_appendf(&b, "%s/.config/keybridge/keybridge.conf", home) != 0) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

static int
run_agent(const char *config_path, const char *log_level)
{
	struct agent a;
	enum kb_log_level lvl;
	sigset_t sigs;
	char ready[512];
	int r, sig = 0;
	bool under_systemd;

	agent_init(&a);
	umask(077);
	kb_harden_process();
	if ((r = agent_config_load(config_path, &a.cfg)) != 0)
		goto out;
	if (log_level != NULL) {
		if (kb_log_level_parse(log_level, &lvl) != 0) {
			r = kb_error_set(KB_ERR_USAGE,
			    "--log-level takes error, warn, info or debug, not '%s'",
			    log_level);
			goto out;
		}
		kb_log_set_level(lvl);
	} else if (a.cfg->has_log_level)
		kb_log_set_level(a.cfg->log_level);
	if ((r = agent_tokens_list(&a)) != 0)
		goto out;
	under_systemd = secure_getenv("NOTIFY_SOCKET") != NULL;
	/* PINs first: a prompt must still be interruptible with ^C. */
	if ((r = agent_read_pins(&a, !under_systemd && isatty(STDIN_FILENO))) != 0)
		goto out;
	/*
	 * From here a SIGTERM waits for sigwait(), so a signal during start
	 * still ends in a clean shutdown.  MHD's threads inherit the mask.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
		r = kb_error_set(KB_ERR_INTERNAL, "cannot block signals");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = agent_lock_acquire(&a)) != 0 || (r = agent_serve(&a)) != 0)
		goto out;
	if (a.cut_short)
		goto out;     /* r == 0: a clean stop, as after sigwait */
	kb_info("keybridged %s ready on %s (pid %ld, %zu token%s)", KB_VERSION,
	    a.cfg->socket, (long)a.pid, a.n_tokens, a.n_tokens == 1 ? "" : "s");
	snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving %zu token%s on %s\n"
	    "MAINPID=%ld", a.n_tokens, a.n_tokens == 1 ? "" : "s",
	    a.cfg->socket, (long)a.pid);
	agent_notify(ready);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			kb_info("SIGHUP ignored: restart the agent to reload its config");
			continue;
		}
		break;
	}
	kb_info("signal %d: shutting down", sig);
	agent_notify("STOPPING=1");
	r = 0;
 out:
	agent_shutdown(&a);
	if (r != 0)
		return fail(r);
	return 0;
}

static int
run_init_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "token", required_argument, NULL, 't' },
		{ "so-pin-file", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL, *token = NULL, *so = NULL;
	struct agent_config *cfg = NULL;
	char *def = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't': token = optarg; break;
		case 's': so = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return usage_error("%s", "bad option for init-token");
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (token == NULL || so == NULL)
		return usage_error("%s", "init-token needs --token NAME and --so-pin-file FILE");
	umask(077);
	kb_harden_process();
	if (config == NULL && (config = def = default_config()) == NULL)
		return fail(KB_ERR_ALLOC);
	if ((r = agent_config_load(config, &cfg)) == 0)
		r = agent_init_token(cfg, token, so);
	agent_config_free(cfg);
	free(def);
	return r != 0 ? fail(r) : 0;
}

static int
run_backup_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "token", required_argument, NULL, 't' },
		{ "so-pin-file", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL, *so = NULL, *names[16];
	struct agent_config *cfg = NULL;
	size_t n = 0;
	char *def = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't':
			if (n == sizeof(names) / sizeof(names[0]))
				return usage_error("%s", "at most 16 --token options");
			names[n++] = optarg;
			break;
		case 's': so = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return usage_error("%s", "bad option for backup-keys");
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (so == NULL)
		return usage_error("%s", "backup-keys needs --so-pin-file FILE");
	umask(077);
	kb_harden_process();
	if (config == NULL && (config = def = default_config()) == NULL)
		return fail(KB_ERR_ALLOC);
	if ((r = agent_config_load(config, &cfg)) == 0)
		r = agent_backup_keys(cfg, names, n, so);
	agent_config_free(cfg);
	free(def);
	return r != 0 ? fail(r) : 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL, *log_level = NULL;
	char *def = NULL;
	int c, rc;

	kb_log_set_prefix("keybridged");
	kb_log_set_level(KB_LOG_INFO);
	if (argc > 1 && strcmp(argv[1], "init-token") == 0)
		return run_init_token(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "backup-keys") == 0)
		return run_backup_keys(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "c:fl:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'f': break;
		case 'l': log_level = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("keybridged %s\n", KB_VERSION); return 0;
		default: return usage_error("%s", "unknown option");
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (config == NULL && (config = def = default_config()) == NULL)
		return fail(KB_ERR_ALLOC);
	rc = run_agent(config, log_level);
	free(def);
	return rc;
}
