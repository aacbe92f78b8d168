/*
 * cli.h: keybridge's command-line tool, internal interfaces.
 * The CLI talks to the agent only (kv-client); it never opens a token.
 */
#ifndef KB_CLI_H
#define KB_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "kb_common.h"
#include "kb_kvclient.h"

#ifndef KB_SOFTHSM_MODULE
#define KB_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

struct cli {
	bool json;
	const char *socket_opt;       /* --socket */
	const char *config_opt;       /* --config */
	char *socket;                 /* resolved by cli_socket() */
};

struct cli_command {
	const char *name;             /* "status", "token list", "dev up" */
	int (*run)(struct cli *, int, char **);
	const char *args;             /* synopsis after the name */
	const char *summary;
	const char *help;             /* options and details */
};

extern const struct cli_command cli_commands[];

/* Resolve the agent socket: --socket, $KEYBRIDGE_SOCKET, config, default. */
int cli_socket(struct cli *c) KB_WARN_UNUSED;
/* Read [agent] socket from a config file (default socket if absent). */
int cli_config_socket(const char *path, char **out) KB_WARN_UNUSED;
/* GET path from the agent; *out is the 2xx JSON body. */
int cli_agent_get(struct cli *c, const char *path, cJSON **out) KB_WARN_UNUSED;
/*
 * One request on *kv (connected on first use, kept for the next).  0 for
 * a 2xx answer with *out (if not NULL) its JSON body, NULL when empty;
 * else kv-client's error with Key Vault's message, or the CLI's sentence
 * when the agent cannot be reached.
 */
int cli_agent_request(struct cli *c, kb_kv_client **kv, const char *method,
    const char *path, const cJSON *body, cJSON **out) KB_WARN_UNUSED;
/* Pretty-print JSON on stdout; a string member of o, or NULL. */
void cli_print_json(const cJSON *j);
const char *cli_jstr(const cJSON *o, const char *k);
/* Options every command accepts; use in a getopt_long table. */
#define CLI_GLOBAL_OPTIONS \
	{ "json", no_argument, NULL, 'j' }, \
	{ "socket", required_argument, NULL, 's' }, \
	{ "config", required_argument, NULL, 'c' }, \
	{ "help", no_argument, NULL, 'h' }

/*
 * Handle option ch of command name: 0 if it was a global option, 1 if
 * help was printed (exit 0), or an exit code (2) after a usage message.
 */
int cli_global_opt(struct cli *c, const char *name, int ch, const char *arg);
/* Usage error for command name: message on stderr, returns exit code 2. */
int cli_usage(const char *name, const char *what);
/*
 * Parse a command that takes only the global options and exactly nargs
 * arguments (usage says what when the count is wrong; nargs 0: none).
 * 0, -1 if help was printed (exit 0), or an exit code after a usage
 * message.
 */
int cli_plain_options(struct cli *c, const char *name, int argc, char **argv,
    int nargs, const char *what);

int cli_print_error(int r);
void cli_command_help(const struct cli_command *cmd, bool to_stderr);
/* Print s with control characters masked (data from the agent). */
void cli_put(const char *s);
void cli_fput(FILE *f, const char *s);
/* Print a table of rows x cols (cells may be NULL), padded. */
void cli_table(const char *const *head, size_t cols, char **cells, size_t rows);
/* Free a table's cells (n of them, each may be NULL) and the array. */
void cli_cells_free(char **cells, size_t n);

int cmd_status(struct cli *c, int argc, char **argv);
int cmd_token_list(struct cli *c, int argc, char **argv);
int cmd_dev_up(struct cli *c, int argc, char **argv);
/* devtls.c: a local CA and a server certificate for 127.0.0.1, ::1 and
 * localhost (files mode 0600); a random bearer token in path and the
 * hex SHA-256 of it. */
int cli_dev_tls_make(const char *ca_path, const char *cert_path,
    const char *key_path) KB_WARN_UNUSED;
int cli_dev_token_make(const char *path, char hash_hex[65]) KB_WARN_UNUSED;
int cmd_dev_down(struct cli *c, int argc, char **argv);
/* keycmds.c: the Key Vault keys API of the agent's vaults, and the audit log. */
int cmd_key_create(struct cli *c, int argc, char **argv);
int cmd_key_list(struct cli *c, int argc, char **argv);
int cmd_key_show(struct cli *c, int argc, char **argv);
int cmd_key_versions(struct cli *c, int argc, char **argv);
int cmd_key_update(struct cli *c, int argc, char **argv);
int cmd_key_rotate(struct cli *c, int argc, char **argv);
int cmd_key_delete(struct cli *c, int argc, char **argv);
int cmd_key_recover(struct cli *c, int argc, char **argv);
int cmd_key_purge(struct cli *c, int argc, char **argv);
int cmd_key_adopt(struct cli *c, int argc, char **argv);
int cmd_audit_list(struct cli *c, int argc, char **argv);
/* vaultcmds.c: the agent's vaults, local and remote. */
int cmd_vault_list(struct cli *c, int argc, char **argv);
int cmd_vault_show(struct cli *c, int argc, char **argv);
int cmd_vault_add(struct cli *c, int argc, char **argv);
int cmd_vault_remove(struct cli *c, int argc, char **argv);

#endif /* KB_CLI_H */
