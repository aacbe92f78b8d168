/*
 * main.c: keybridge, the command-line tool (docs/keybridge.md).
 *
 *   keybridge [--json] [--socket PATH] [--config FILE] COMMAND [ARGS]
 *
 * Every failure prints one sentence and exits with kb_err_exit_code()
 * (docs/exit-codes.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static int cmd_help(struct cli *c, int argc, char **argv);

#define GLOBAL_HELP \
"Global options (accepted before or after the command):\n" \
"  --json           print the agent's JSON instead of tables\n" \
"  --socket PATH    the agent's socket (default: $KEYBRIDGE_SOCKET, then\n" \
"                   socket = in [agent] of the config, then\n" \
"                   $XDG_RUNTIME_DIR/keybridge/agent.sock)\n" \
"  --config FILE    config file to read the socket from (default:\n" \
"                   $KEYBRIDGE_CONFIG, then ~/.config/keybridge/keybridge.conf)\n" \
"  -h, --help       show help\n"

#define KEY_VAULT_HELP \
"\n" \
"  --vault VAULT    the vault (default: the agent's default vault)\n" \
"\n" \
"Exit codes: 9 not found, 10 denied, 11 conflict, 13 invalid input,\n" \
"4 agent unreachable (docs/exit-codes.md).\n"

const struct cli_command cli_commands[] = {
	{ "status", cmd_status, "",
	  "show the agent's version, uptime and the state of each token",
	  "Shows the agent's version, pid, uptime and socket, then one row per\n"
	  "configured token: name, state (ready, not-logged-in, pin-locked,\n"
	  "unavailable), whether it is logged in, label, serial, sessions in the\n"
	  "pool (open/max) and the token's PKCS#11 URI.\n" },
	{ "token list", cmd_token_list, "",
	  "list every slot and token of the agent's PKCS#11 modules",
	  "Lists every slot of each PKCS#11 module the agent loaded: slot id,\n"
	  "label, serial, manufacturer, model, token flags and URI, and which\n"
	  "configured token name (if any) the agent uses it as.\n" },
	{ "dev up", cmd_dev_up,
	  "--dir DIR [--module PATH] [--label LABEL] [--https]",
	  "create (or restart) a development environment in DIR",
	  "Creates DIR (mode 0700) with a SoftHSM2 config, an initialised token\n"
	  "with random PINs (DIR/user.pin, DIR/so.pin), a keybridge config\n"
	  "(DIR/keybridge.conf), and starts keybridged in the background (log:\n"
	  "DIR/agent.log).  Prints shell lines to stdout, so that\n"
	  "  eval \"$(keybridge dev up --dir DIR)\"\n"
	  "sets KEYBRIDGE_SOCKET and SOFTHSM2_CONF.  On an existing DIR it starts\n"
	  "the agent again over the same token if it is not running.\n"
	  "\n"
	  "  --dir DIR        the environment's directory (required)\n"
	  "  --module PATH    PKCS#11 module (default: " KB_SOFTHSM_MODULE ")\n"
	  "  --label LABEL    token label for a new environment (default:\n"
	  "                   keybridge-dev)\n"
	  "  --https          also serve the Key Vault API over HTTPS on a free\n"
	  "                   loopback port, with a local CA and an\n"
	  "                   Administrator's bearer token; prints\n"
	  "                   KEYBRIDGE_URL, KEYBRIDGE_CA, KEYBRIDGE_TOKEN_FILE\n"
	  "\n"
	  "keybridged is found through $KEYBRIDGED, next to this program, in PATH,\n"
	  "or in the install directory.\n" },
	{ "dev down", cmd_dev_down, "--dir DIR",
	  "stop the agent of a development environment (DIR is kept)",
	  "Sends SIGTERM to the agent holding DIR's socket lock and waits until\n"
	  "it has exited.  DIR, its token and its PINs are kept.\n"
	  "\n"
	  "  --dir DIR        the environment's directory (required)\n" },
	{ "key create", cmd_key_create,
	  "NAME --type rsa|ec|aes [--size N] [--curve P-256|P-384|P-521] "
	  "[--ops OPS] [--tag K=V]... [--expires T] [--not-before T] [--disabled] "
	  "[--vault VAULT]",
	  "create a key on the vault's token, or a new version of NAME",
	  "Creates key NAME (1-127 letters, digits and '-') on the vault's token;\n"
	  "on an existing NAME, adds a version.  Prints the new version, with its\n"
	  "PKCS#11 URI.\n"
	  "\n"
	  "  --type TYPE      rsa (RSA-HSM), ec (EC-HSM) or aes (oct-HSM); Key\n"
	  "                   Vault's names (RSA, EC-HSM, oct...) work too\n"
	  "  --size N         RSA: 2048 (default), 3072, 4096; AES: 128, 192, 256\n"
	  "                   (default)\n"
	  "  --curve CURVE    EC: P-256 (default), P-384, P-521\n"
	  "  --ops OPS        key operations, comma-separated: encrypt, decrypt,\n"
	  "                   sign, verify, wrapKey, unwrapKey (default: all the\n"
	  "                   type allows)\n"
	  "  --tag K=V        a tag (repeatable; at most 15, 256 characters each)\n"
	  "  --expires T      expiry (exp); T is RFC 3339, Unix seconds or +N\n"
	  "                   with s, m, h or d (+30d)\n"
	  "  --not-before T   not valid before T (nbf)\n"
	  "  --disabled       create the version disabled\n"
	  KEY_VAULT_HELP },
	{ "key list", cmd_key_list, "[--deleted] [--vault VAULT]",
	  "list the keys of a vault (or its deleted keys)",
	  "Lists every key of the vault (all pages): name, enabled, created,\n"
	  "updated, expires and tags of the latest version.  With --deleted, the\n"
	  "soft-deleted keys: name, deleted, scheduled purge date, recovery level.\n"
	  "--json prints one JSON array of Key Vault's KeyItem (DeletedKeyItem)\n"
	  "objects, across all pages.\n"
	  "\n"
	  "  --deleted        list soft-deleted keys instead\n"
	  KEY_VAULT_HELP },
	{ "key show", cmd_key_show, "NAME [--version V | --deleted] [--vault VAULT]",
	  "show a key's latest version (or one version), with its PKCS#11 URI",
	  "Shows the key's latest version, or version V: kid, kty, size or curve,\n"
	  "key_ops, attributes, tags, and the PKCS#11 URI of the version's object\n"
	  "on the token (token URI, id = the version's bytes, object = NAME).\n"
	  "--json prints Key Vault's KeyBundle.\n"
	  "\n"
	  "  --version V      a version (see `keybridge key versions NAME`)\n"
	  "  --deleted        show the soft-deleted key (DeletedKeyBundle)\n"
	  KEY_VAULT_HELP },
	{ "key versions", cmd_key_versions, "NAME [--vault VAULT]",
	  "list the versions of a key",
	  "Lists every version of key NAME (all pages): version, enabled,\n"
	  "created, not before, expires, tags.  --json prints a JSON array of Key\n"
	  "Vault's KeyItem objects.\n"
	  KEY_VAULT_HELP },
	{ "key update", cmd_key_update,
	  "NAME [--version V] [--tag K=V]... [--untag K]... [--enable|--disable] "
	  "[--expires T|none] [--not-before T|none] [--ops OPS] [--vault VAULT]",
	  "change a version's attributes, tags or operations",
	  "Changes the latest version of NAME, or version V.  Tags: the current\n"
	  "tags are read, changed as asked, and sent back whole.\n"
	  "\n"
	  "  --version V      the version to change (default: the latest)\n"
	  "  --tag K=V        set a tag (repeatable)\n"
	  "  --untag K        remove a tag (repeatable; absent tags are ignored)\n"
	  "  --enable, --disable\n"
	  "                   enable or disable the version\n"
	  "  --expires T      new expiry; `none` removes it\n"
	  "  --not-before T   new not-before; `none` removes it\n"
	  "  --ops OPS        new key operations, comma-separated\n"
	  KEY_VAULT_HELP },
	{ "key rotate", cmd_key_rotate, "NAME [--vault VAULT]",
	  "add a version of the same type, size and operations",
	  "Creates a new version of NAME with the kty, size and curve of the\n"
	  "latest version, its key_ops and the key's tags; prints it.\n"
	  KEY_VAULT_HELP },
	{ "key delete", cmd_key_delete, "NAME [--vault VAULT]",
	  "soft-delete a key (every version)",
	  "Soft-deletes NAME: every version becomes unusable (its usage flags are\n"
	  "cleared on the token) and the name stays taken until `key recover` or\n"
	  "`key purge`.  Prints the deleted key (--json: DeletedKeyBundle).\n"
	  "Deleting a name that is not an active key exits 9.\n"
	  KEY_VAULT_HELP },
	{ "key recover", cmd_key_recover, "NAME [--vault VAULT]",
	  "recover a soft-deleted key",
	  "Restores soft-deleted NAME with all its versions; prints the latest.\n"
	  KEY_VAULT_HELP },
	{ "key purge", cmd_key_purge, "NAME [--vault VAULT]",
	  "destroy a soft-deleted key for good",
	  "Destroys soft-deleted NAME: its objects on the token and its record.\n"
	  "Only a deleted key can be purged (an active or unknown name exits 9);\n"
	  "under purge protection only after its scheduled purge date (exit 10).\n"
	  "Prints one line; with --json nothing (Key Vault answers 204).\n"
	  KEY_VAULT_HELP },
	{ "key adopt", cmd_key_adopt, "PKCS11-URI NAME [--vault VAULT]",
	  "bring a key object made by another tool into a vault",
	  "Adopts the key the URI names on the vault's token (a secret key, or a\n"
	  "private key with its public key; not extractable) as the latest\n"
	  "version of NAME: the agent relabels it and records it.  Owner or\n"
	  "Administrator.  The URI never carries a PIN.\n"
	  KEY_VAULT_HELP },
	{ "vault list", cmd_vault_list, "",
	  "list the agent's vaults, local and remote, that you have a role on",
	  "One row per vault: name, kind (local: a token; remote: a Key Vault or\n"
	  "Managed HSM reached through the agent), default, your role, the token\n"
	  "or url, and a remote vault's credential type.\n" },
	{ "vault show", cmd_vault_show, "NAME",
	  "show one vault's settings",
	  "Shows one vault as the agent has it: for a remote vault the url,\n"
	  "credential type, tenant and client ids; never a secret.\n"
	  "Exit codes: 9 no such vault (or no role on it).\n" },
	{ "vault add", cmd_vault_add,
	  "NAME --url URL CREDENTIAL [--tenant T] [--client-id ID] [--ca-file F]\n"
	  "      [--authority-host URL] [--connect-to ADDR] [--readers L]\n"
	  "      [--contributors L] [--owners L] [--administrators L] [--no-check]",
	  "add a remote vault (Azure Key Vault or Managed HSM) to the agent",
	  "CREDENTIAL is one of:\n"
	  "  --client-secret-file F   a client secret (the agent keeps a copy,\n"
	  "                           mode 0600, in its state directory)\n"
	  "  --client-cert URI --cert-file F\n"
	  "                           a certificate whose private key is on one\n"
	  "                           of the agent's tokens (PKCS#11 URI)\n"
	  "  --federated-token-file F workload identity (the agent reads F)\n"
	  "  --managed-identity[=ID]  the machine's managed identity\n"
	  "  --token-file F           a token obtained elsewhere (the agent reads F)\n"
	  "The url must be https.  Unless --no-check, the agent lists one key with\n"
	  "the credential before it stores anything.  Only an Administrator of\n"
	  "the agent may add vaults.  Role lists as in the config (docs/config.md).\n"
	  "Exit codes: 3 unreadable file, 10 denied, 11 name taken, 13 invalid.\n" },
	{ "vault remove", cmd_vault_remove, "NAME",
	  "remove a remote vault from the agent (its keys stay in Azure)",
	  "Takes the [remote NAME] section out of the agent's config and deletes\n"
	  "the agent's copies of its secret and certificate files.  Local vaults\n"
	  "are removed by editing the config (exit 11).\n" },
	{ "audit list", cmd_audit_list, "[--vault VAULT] [--limit N]",
	  "show the audit log (vaults you administer)",
	  "Shows the audit records of the vaults where you are Administrator,\n"
	  "oldest first: seq, time, uid, role, vault, operation, key, version,\n"
	  "result.  --json prints JSON lines (one record per line).\n"
	  "\n"
	  "  --vault VAULT    only this vault's records\n"
	  "  --limit N        only the N most recent records\n" },
	{ "help", cmd_help, "[COMMAND]",
	  "show help for keybridge or for one command",
	  "Without a command, lists the commands; with one, shows its help.\n" },
	{ NULL, NULL, NULL, NULL, NULL }
};

static void
main_help(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: keybridge [OPTIONS] COMMAND [ARGS]\n\n"
	    "keybridge talks to keybridged, the agent that serves PKCS#11 tokens\n"
	    "as Key Vault keys.\n\nCommands:\n");
	for (i = 0; cli_commands[i].name != NULL; i++)
		fprintf(f, "  %-14s %s\n", cli_commands[i].name,
		    cli_commands[i].summary);
	fprintf(f, "\n" GLOBAL_HELP "  -V, --version    show the version\n\n"
	    "Run `keybridge help COMMAND` or `keybridge COMMAND --help` for a\n"
	    "command's options.  Exit codes: docs/exit-codes.md.\n");
}

void
cli_command_help(const struct cli_command *cmd, bool to_stderr)
{
	FILE *f = to_stderr ? stderr : stdout;

	fprintf(f, "Usage: keybridge %s%s%s\n\n%s.\n\n%s\n" GLOBAL_HELP,
	    cmd->name, cmd->args[0] ? " " : "", cmd->args, cmd->summary,
	    cmd->help);
}

void
cli_fput(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
}

void
cli_put(const char *s)
{
	cli_fput(stdout, s);
}

static size_t
display_len(const char *s)
{
	return s != NULL && s[0] != '\0' ? strlen(s) : 1;
}

void
cli_cells_free(char **cells, size_t n)
{
	size_t i;

	for (i = 0; cells != NULL && i < n; i++)
		free(cells[i]);
	free(cells);
}

void
cli_table(const char *const *head, size_t cols, char **cells, size_t rows)
{
	size_t w[16] = { 0 }, i, j, pad;

	if (cols > 16)
		cols = 16;
	for (j = 0; j < cols; j++)
		w[j] = strlen(head[j]);
	for (i = 0; i < rows; i++)
		for (j = 0; j < cols; j++)
			if (display_len(cells[i * cols + j]) > w[j])
				w[j] = display_len(cells[i * cols + j]);
	for (i = 0; i <= rows; i++) {
		for (j = 0; j < cols; j++) {
			const char *s = i == 0 ? head[j] :
			    cells[(i - 1) * cols + j];
			if (s == NULL || s[0] == '\0')
				s = "-";
			cli_put(s);
			if (j + 1 < cols)
				for (pad = strlen(s); pad < w[j] + 2; pad++)
					putchar(' ');
		}
		putchar('\n');
	}
}

int
cli_print_error(int r)
{
	fprintf(stderr, "keybridge: ");
	cli_fput(stderr, kb_error_detail(r));
	fputc('\n', stderr);
	return kb_err_exit_code(r);
}

int
cli_config_socket(const char *path, char **out)
{
	struct kb_ini *ini = NULL;
	const struct kb_ini_entry *e = NULL;
	char *s = NULL, *text = NULL;
	size_t i, len = 0;
	int r;

	if ((r = kb_file_read(path, (size_t)1 << 20, &text, &len)) != 0) {
		if (r != KB_ERR_ALLOC) {
			char d[1024];
			snprintf(d, sizeof(d), "%s", kb_error_detail(r));
			r = kb_error_set(KB_ERR_CONFIG,
			    "cannot read the config file: %s", d);
		}
		return r;
	}
	r = kb_ini_parse(path, text, len, &ini);
	free(text);
	if (r != 0)
		return r;
	for (i = 0; i < ini->n_sections && e == NULL; i++)
		if (strcmp(ini->sections[i].type, "agent") == 0)
			e = kb_ini_get(&ini->sections[i], "socket");
	if (e != NULL && e->value[0] != '/')
		r = kb_error_set(KB_ERR_CONFIG,
		    "%s:%u: socket must be an absolute path", path, e->line);
	else if ((s = e != NULL ? kb_strdup(e->value) : kb_default_socket()) == NULL)
		r = KB_ERR_ALLOC;
	kb_ini_free(ini);
	if (r == 0)
		*out = s;
	return r;
}

int
cli_socket(struct cli *c)
{
	const char *env, *home;
	char *path = NULL, *s = NULL;
	struct stat st;
	struct kb_buf b;
	int r = 0;

	if (c->socket != NULL)
		return 0;
	if (c->socket_opt != NULL)
		s = kb_strdup(c->socket_opt);
	else if ((env = secure_getenv("KEYBRIDGE_SOCKET")) != NULL && env[0] != '\0')
		s = kb_strdup(env);
	else if (c->config_opt != NULL)
		r = cli_config_socket(c->config_opt, &s);
	else if ((env = secure_getenv("KEYBRIDGE_CONFIG")) != NULL && env[0] != '\0')
		r = cli_config_socket(env, &s);
	else {
		/* The per-user config is optional: without it, the default. */
		home = secure_getenv("HOME");
		kb_buf_init(&b, 4200);
		if (home != NULL && home[0] == '/' &&
		    kb_buf_appendf(&b, "%s/.config/keybridge/keybridge.conf",
		    home) == 0)
			path = kb_buf_steal(&b, NULL);
		kb_buf_free(&b);
		if (path != NULL && stat(path, &st) == 0)
			r = cli_config_socket(path, &s);
		else
			s = kb_default_socket();
		free(path);
	}
	if (r != 0)
		return r;
	if (s == NULL)
		return KB_ERR_ALLOC;
	c->socket = s;
	return 0;
}

int
cli_agent_request(struct cli *c, kb_kv_client **kv, const char *method,
    const char *path, const cJSON *body, cJSON **out)
{
	struct kb_kv_response *resp = NULL;
	char reason[256];
	const char *d, *colon;
	int r;

	if (*kv == NULL) {
		if ((r = cli_socket(c)) != 0)
			return r;
		if ((r = kb_kv_client_new_unix(c->socket, kv)) != 0)
			return r;
	}
	kb_debug("%s %s", method, path);
	if ((r = kb_kv_request(*kv, method, path, body, &resp)) != 0) {
		if (r == KB_ERR_UNREACHABLE) {
			d = kb_error_detail(r);
			colon = strrchr(d, ':');
			snprintf(reason, sizeof(reason), "%s",
			    colon != NULL ? colon + 2 : d);
			r = kb_error_set(r, "cannot reach the agent at %s: %s; "
			    "start it with `keybridge dev up --dir DIR` or "
			    "`keybridged --config FILE`", c->socket, reason);
		}
		goto out;
	}
	if ((r = kb_kv_response_error(resp)) != 0)
		goto out;
	if (out != NULL) {
		*out = resp->body;
		resp->body = NULL;    /* transferred */
	}
 out:
	kb_kv_response_free(resp);
	return r;
}

int
cli_agent_get(struct cli *c, const char *path, cJSON **out)
{
	kb_kv_client *kv = NULL;
	cJSON *j = NULL;
	int r;

	if ((r = cli_agent_request(c, &kv, "GET", path, NULL, &j)) == 0 &&
	    j == NULL)
		r = kb_error_set(KB_ERR_PROTOCOL, "the agent sent an empty answer");
	kb_kv_client_free(kv);
	if (r == 0)
		*out = j;
	return r;
}

void
cli_print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);

	if (s != NULL) {
		fputs(s, stdout);
		putchar('\n');
	}
	cJSON_free(s);
}

const char *
cli_jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const struct cli_command *
find_command(int argc, char **argv, int *used)
{
	size_t i;
	char two[128];

	if (argc >= 2) {
		snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
		for (i = 0; cli_commands[i].name != NULL; i++)
			if (strcmp(cli_commands[i].name, two) == 0) {
				*used = 2;
				return &cli_commands[i];
			}
	}
	for (i = 0; cli_commands[i].name != NULL; i++)
		if (strcmp(cli_commands[i].name, argv[0]) == 0) {
			*used = 1;
			return &cli_commands[i];
		}
	return NULL;
}

/* "token" alone: list its subcommands; true if word is a group. */
static bool
group_help(const char *word, FILE *f)
{
	size_t i, n = strlen(word);
	bool any = false;

	for (i = 0; cli_commands[i].name != NULL; i++)
		if (strncmp(cli_commands[i].name, word, n) == 0 &&
		    cli_commands[i].name[n] == ' ') {
			if (!any)
				fprintf(f, "Commands of keybridge %s:\n", word);
			any = true;
			fprintf(f, "  %-14s %s\n", cli_commands[i].name,
			    cli_commands[i].summary);
		}
	return any;
}

static int
cmd_help(struct cli *c, int argc, char **argv)
{
	const struct cli_command *cmd;
	int used = 0;

	if (argc <= 1) {
		main_help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		argv[1] = (char *)"help";
	if ((cmd = find_command(argc - 1, argv + 1, &used)) != NULL &&
	    used == argc - 1) {
		cli_command_help(cmd, false);
		return 0;
	}
	if (argc == 2 && group_help(argv[1], stdout))
		return 0;
	fprintf(stderr, "keybridge: no command '%s'; run `keybridge help` for the list\n",
	    argv[1]);
	return kb_err_exit_code(KB_ERR_USAGE);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli c;
	const struct cli_command *cmd;
	int ch, used = 0, rc;

	memset(&c, 0, sizeof(c));
	kb_log_set_prefix("keybridge");
	kb_log_set_level(KB_LOG_WARN);
	/* '+': stop at the command; its own options are parsed by it. */
	while ((ch = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': c.json = true; break;
		case 's': c.socket_opt = optarg; break;
		case 'c': c.config_opt = optarg; break;
		case 'h': main_help(stdout); return 0;
		case 'V': printf("keybridge %s\n", KB_VERSION); return 0;
		default:
			fprintf(stderr, "keybridge: see keybridge --help\n");
			return kb_err_exit_code(KB_ERR_USAGE);
		}
	}
	if (optind >= argc) {
		main_help(stderr);
		return kb_err_exit_code(KB_ERR_USAGE);
	}
	argc -= optind;
	argv += optind;
	if ((cmd = find_command(argc, argv, &used)) == NULL) {
		if (group_help(argv[0], stderr)) {
			fprintf(stderr, "keybridge: '%s' needs a subcommand\n",
			    argv[0]);
			return kb_err_exit_code(KB_ERR_USAGE);
		}
		fprintf(stderr, "keybridge: no command '%s'; run `keybridge help` "
		    "for the list\n", argv[0]);
		return kb_err_exit_code(KB_ERR_USAGE);
	}
	/* The command sees argv[0] = its last word, then its arguments. */
	argc -= used - 1;
	argv += used - 1;
	optind = 0;    /* glibc: restart getopt from scratch */
	rc = cmd->run(&c, argc, argv);
	free(c.socket);
	return rc;
}

static const struct cli_command *
command_by_name(const char *name)
{
	size_t i;

	for (i = 0; cli_commands[i].name != NULL; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

int
cli_usage(const char *name, const char *what)
{
	fprintf(stderr, "keybridge %s: %s; see keybridge %s --help\n", name,
	    what, name);
	return kb_err_exit_code(KB_ERR_USAGE);
}

int
cli_plain_options(struct cli *c, const char *name, int argc, char **argv,
    int nargs, const char *what)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if ((r = cli_global_opt(c, name, ch, optarg)) != 0)
			return r == 1 ? -1 : r;
	if (argc - optind != nargs)
		return cli_usage(name, nargs == 0 ? "this command takes no "
		    "arguments" : what);
	return 0;
}

int
cli_global_opt(struct cli *c, const char *name, int ch, const char *arg)
{
	const struct cli_command *cmd;

	switch (ch) {
	case 'j':
		c->json = true;
		return 0;
	case 's':
		c->socket_opt = arg;
		return 0;
	case 'c':
		c->config_opt = arg;
		return 0;
	case 'h':
		if ((cmd = command_by_name(name)) != NULL)
			cli_command_help(cmd, false);
		return 1;
	default:
		return cli_usage(name, "unknown option");
	}
}
