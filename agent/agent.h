/*
 * agent.h: keybridged's internal interfaces (not installed).
 *
 * config.c  the config file ([agent] and [token NAME] sections)
 * tokens.c  modules, tokens, login, mechanism checks, their JSON views
 * server.c  the HTTP server on the Unix socket (libmicrohttpd)
 * access.c  who may talk to the agent (the one place that decides)
 * runtime.c lock file, socket creation, sd_notify
 * main.c    start-up order, shutdown, init-token
 */
#ifndef KB_AGENT_H
#define KB_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "kb_common.h"
#include "kb_pkcs11.h"

#ifndef KB_SOFTHSM_MODULE
#define KB_SOFTHSM_MODULE KB_P11_DEFAULT_MODULE
#endif

/* Request bodies above this get 413 (Key Vault's own limit is lower). */
#define AGENT_MAX_BODY ((size_t)1 << 20)

enum agent_pin_source { PIN_FILE = 1, PIN_ENV, PIN_PROMPT };

struct agent_token_cfg {
	char *name;
	unsigned line;                /* of the [token NAME] header */
	char *module;                 /* absolute path */
	unsigned module_line;         /* 0 if defaulted */
	char *selection;              /* "uri = ..." or "label = ..." text, for messages */
	unsigned selection_line;
	struct kb_p11_uri *sel;       /* token parts only */
	char *label;                  /* from label = (init-token needs it) */
	enum agent_pin_source pin_source;
	char *pin_arg;                /* file path or variable name */
	unsigned pin_line;
	unsigned max_sessions;
};

struct agent_config {
	char *path;
	char *socket;
	unsigned socket_line;         /* 0 if defaulted */
	unsigned socket_mode;
	char *state_dir;
	bool has_log_level;
	enum kb_log_level log_level;
	unsigned max_connections;
	unsigned request_timeout;     /* seconds */
	unsigned threads;
	struct agent_token_cfg *tokens;
	size_t n_tokens;
};

/* Load and check a config file; every error names file:line. */
int agent_config_load(const char *path, struct agent_config **out) KB_WARN_UNUSED;
void agent_config_free(struct agent_config *c);
const struct agent_token_cfg *agent_config_token(const struct agent_config *c,
    const char *name);
/* Where the socket lives when the config does not say (the CLI agrees). */
/* "FILE:LINE" text for messages into buf. */
const char *agent_where(const struct agent_config *c, unsigned line,
    char *buf, size_t n);

struct agent_token {
	const struct agent_token_cfg *cfg;
	struct kb_secret *pin;        /* read before login, freed after */
	kb_p11_module *module;
	kb_p11_token *token;
	char *uri;                    /* the token's URI, canonical */
};

struct agent {
	struct agent_config *cfg;
	struct agent_token *tokens;
	size_t n_tokens;
	uid_t uid;
	pid_t pid;
	int64_t started_unix;
	double started_mono;
	struct MHD_Daemon *mhd;
	int listen_fd;
	bool socket_bound;
	int lock_fd;
	char *lock_path;
};

/* tokens.c */
int agent_read_pins(struct agent *a, bool may_prompt) KB_WARN_UNUSED;
int agent_tokens_open(struct agent *a) KB_WARN_UNUSED;
void agent_tokens_close(struct agent *a);
int agent_status_json(struct agent *a, cJSON **out) KB_WARN_UNUSED;
int agent_tokens_json(struct agent *a, cJSON **out) KB_WARN_UNUSED;
int agent_init_token(const struct agent_config *cfg, const char *name,
    const char *so_pin_file) KB_WARN_UNUSED;

/* access.c */
struct agent_peer {
	bool known;
	pid_t pid;
	uid_t uid;
	gid_t gid;
};
/* 0 if the peer may use the agent, KB_ERR_DENIED with a sentence if not. */
int agent_access_check(const struct agent *a, const struct agent_peer *p) KB_WARN_UNUSED;

/* server.c */
int agent_server_start(struct agent *a) KB_WARN_UNUSED;
void agent_server_stop(struct agent *a);

/* runtime.c */
int agent_lock_acquire(struct agent *a) KB_WARN_UNUSED;
void agent_lock_release(struct agent *a);
int agent_socket_create(struct agent *a) KB_WARN_UNUSED;
void agent_socket_remove(struct agent *a);
void agent_notify(const char *state);

#endif /* KB_AGENT_H */
