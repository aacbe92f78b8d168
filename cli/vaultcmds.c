/*
 * vaultcmds.c: keybridge vault list / show / add / remove
 * (docs/remote-vaults.md).  The agent checks and stores; the CLI reads
 * the caller's files (a client secret, a certificate, CAs) and sends
 * their content over the socket, so the agent need not be able to read
 * them and never sees their paths in argv of another process.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define VAULT_PEM_MAX (64 * 1024)

static char *
dup_or_dash(const char *s)
{
	return kb_strdup(s != NULL ? s : "-");
}

/* A vault's place: the token (local) or the url (remote). */
static const char *
where(const cJSON *v)
{
	const char *k = cli_jstr(v, "kind");

	if (k != NULL && strcmp(k, "remote") == 0)
		return cli_jstr(v, "url");
	return cli_jstr(v, "token");
}

int
cmd_vault_list(struct cli *c, int argc, char **argv)
{
	static const char *const head[] = {
		"NAME", "KIND", "DEFAULT", "ROLE", "WHERE", "CREDENTIAL"
	};
	cJSON *vl = NULL;
	const cJSON *arr, *v;
	char **cells = NULL;
	size_t n = 0, i = 0, k;
	int r, rc = 0;

	if ((r = cli_plain_options(c, "vault list", argc, argv, 0, NULL)) != 0)
		return r < 0 ? 0 : r;
	if ((r = cli_agent_get(c, "/keybridge/vaults", &vl)) != 0)
		return cli_print_error(r);
	if (c->json) {
		cli_print_json(vl);
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(vl, "value");
	n = (size_t)cJSON_GetArraySize(arr);
	if (n > 4096 || (cells = calloc(n * 6 + 1, sizeof(*cells))) == NULL) {
		rc = cli_print_error(KB_ERR_ALLOC);
		goto out;
	}
	cJSON_ArrayForEach(v, arr) {
		if (i >= n)
			break;
		k = i * 6;
		cells[k] = dup_or_dash(cli_jstr(v, "name"));
		cells[k + 1] = dup_or_dash(cli_jstr(v, "kind"));
		cells[k + 2] = kb_strdup(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		    v, "default")) ? "yes" : "no");
		cells[k + 3] = dup_or_dash(cli_jstr(v, "role"));
		cells[k + 4] = dup_or_dash(where(v));
		cells[k + 5] = dup_or_dash(cli_jstr(v, "credential"));
		i++;
	}
	cli_table(head, 6, cells, i);
 out:
	cli_cells_free(cells, n * 6);
	cJSON_Delete(vl);
	return rc;
}

/* "name: value" lines for every scalar member, in the agent's order. */
static void
print_vault(const cJSON *v)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, v) {
		printf("%-18s ", m->string);
		if (cJSON_IsString(m))
			cli_put(m->valuestring);
		else if (cJSON_IsBool(m))
			fputs(cJSON_IsTrue(m) ? "yes" : "no", stdout);
		else if (cJSON_IsNumber(m))
			printf("%.0f", m->valuedouble);
		else if (cJSON_IsNull(m))
			fputs("-", stdout);
		putchar('\n');
	}
}

static int
vault_path(const char *name, char *buf, size_t n)
{
	size_t i;

	if (name[0] == '\0' || strlen(name) > 64)
		return kb_error_set(KB_ERR_INVALID, "a vault name is 3 to 24 "
		    "letters, digits and '-'");
	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return kb_error_set(KB_ERR_INVALID, "a vault name is 3 to "
			    "24 letters, digits and '-'");
	snprintf(buf, n, "/keybridge/vaults/%s", name);
	return 0;
}

int
cmd_vault_show(struct cli *c, int argc, char **argv)
{
	kb_kv_client *kv = NULL;
	cJSON *v = NULL;
	char path[128];
	int r;

	if ((r = cli_plain_options(c, "vault show", argc, argv, 1,
	    "give the vault's name")) != 0)
		return r < 0 ? 0 : r;
	if ((r = vault_path(argv[optind], path, sizeof(path))) != 0 ||
	    (r = cli_agent_request(c, &kv, "GET", path, NULL, &v)) != 0) {
		kb_kv_client_free(kv);
		return cli_print_error(r);
	}
	if (c->json)
		cli_print_json(v);
	else
		print_vault(v);
	cJSON_Delete(v);
	kb_kv_client_free(kv);
	return 0;
}

int
cmd_vault_remove(struct cli *c, int argc, char **argv)
{
	kb_kv_client *kv = NULL;
	char path[128];
	int r;

	if ((r = cli_plain_options(c, "vault remove", argc, argv, 1,
	    "give the vault's name")) != 0)
		return r < 0 ? 0 : r;
	if ((r = vault_path(argv[optind], path, sizeof(path))) != 0 ||
	    (r = cli_agent_request(c, &kv, "DELETE", path, NULL, NULL)) != 0) {
		kb_kv_client_free(kv);
		return cli_print_error(r);
	}
	kb_kv_client_free(kv);
	if (!c->json)
		printf("removed vault %s\n", argv[optind]);
	return 0;
}

/* The content of a PEM file the caller can read, into o[key]. */
static int
add_pem(cJSON *o, const char *key, const char *file, const char *what)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if ((r = kb_file_read(file, VAULT_PEM_MAX, &text, &len)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read %s %s: %s", what,
		    file, kb_error_detail(r));
	if (strstr(text, "-----BEGIN CERTIFICATE-----") == NULL) {
		free(text);
		return kb_error_set(KB_ERR_CONFIG, "%s %s holds no PEM "
		    "certificate", what, file);
	}
	r = cJSON_AddStringToObject(o, key, text) != NULL ? 0 : KB_ERR_ALLOC;
	kb_freezero_str(text);
	return r;
}

static int
add_abs(cJSON *o, const char *key, const char *file)
{
	char real[PATH_MAX];

	if (realpath(file, real) == NULL)
		return kb_error_set(KB_ERR_CONFIG, "cannot find %s: %m; give an "
		    "existing file", file);
	return cJSON_AddStringToObject(o, key, real) != NULL ? 0 : KB_ERR_ALLOC;
}

int
cmd_vault_add(struct cli *c, int argc, char **argv)
{
	enum { O_URL = 256, O_SECRET, O_CERT, O_CERTFILE, O_FED, O_MI, O_TOKEN,
	    O_CA, O_TENANT, O_CLIENT, O_AUTH, O_CONNECT, O_READERS, O_CONTRIB,
	    O_OWNERS, O_ADMINS, O_NOCHECK };
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "url", required_argument, NULL, O_URL },
		{ "client-secret-file", required_argument, NULL, O_SECRET },
		{ "client-cert", required_argument, NULL, O_CERT },
		{ "cert-file", required_argument, NULL, O_CERTFILE },
		{ "federated-token-file", required_argument, NULL, O_FED },
		{ "managed-identity", optional_argument, NULL, O_MI },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "tenant", required_argument, NULL, O_TENANT },
		{ "client-id", required_argument, NULL, O_CLIENT },
		{ "authority-host", required_argument, NULL, O_AUTH },
		{ "connect-to", required_argument, NULL, O_CONNECT },
		{ "readers", required_argument, NULL, O_READERS },
		{ "contributors", required_argument, NULL, O_CONTRIB },
		{ "owners", required_argument, NULL, O_OWNERS },
		{ "administrators", required_argument, NULL, O_ADMINS },
		{ "no-check", no_argument, NULL, O_NOCHECK },
		{ NULL, 0, NULL, 0 }
	};
	const char *url = NULL, *secret_file = NULL, *cert = NULL,
	    *cert_file = NULL, *fed = NULL, *token = NULL, *ca = NULL,
	    *mi = NULL, *tenant = NULL, *client = NULL, *auth = NULL,
	    *connect = NULL, *role[4] = { NULL, NULL, NULL, NULL };
	static const char *const role_key[4] = {
		"readers", "contributors", "owners", "administrators"
	};
	bool use_mi = false, check = true;
	struct kb_secret *sec = NULL;
	kb_kv_client *kv = NULL;
	cJSON *body = NULL, *cred, *roles, *out = NULL;
	char path[128];
	int ch, r, n_cred;
	size_t i;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case O_URL: url = optarg; break;
		case O_SECRET: secret_file = optarg; break;
		case O_CERT: cert = optarg; break;
		case O_CERTFILE: cert_file = optarg; break;
		case O_FED: fed = optarg; break;
		case O_MI: use_mi = true; mi = optarg; break;
		case O_TOKEN: token = optarg; break;
		case O_CA: ca = optarg; break;
		case O_TENANT: tenant = optarg; break;
		case O_CLIENT: client = optarg; break;
		case O_AUTH: auth = optarg; break;
		case O_CONNECT: connect = optarg; break;
		case O_READERS: role[0] = optarg; break;
		case O_CONTRIB: role[1] = optarg; break;
		case O_OWNERS: role[2] = optarg; break;
		case O_ADMINS: role[3] = optarg; break;
		case O_NOCHECK: check = false; break;
		default:
			if ((r = cli_global_opt(c, "vault add", ch, optarg)) != 0)
				return r == 1 ? 0 : r;
		}
	}
	if (argc - optind != 1)
		return cli_usage("vault add", "give the new vault's name");
	if (url == NULL)
		return cli_usage("vault add", "--url https://NAME.vault.azure.net "
		    "is required");
	n_cred = (secret_file != NULL) + (cert != NULL || cert_file != NULL) +
	    (fed != NULL) + use_mi + (token != NULL);
	if (n_cred != 1)
		return cli_usage("vault add", "give exactly one credential: "
		    "--client-secret-file, --client-cert with --cert-file, "
		    "--federated-token-file, --managed-identity or --token-file");
	if ((cert != NULL) != (cert_file != NULL))
		return cli_usage("vault add", "--client-cert PKCS11-URI and "
		    "--cert-file FILE go together");
	if ((r = vault_path(argv[optind], path, sizeof(path))) != 0)
		return cli_print_error(r);
	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "url", url) == NULL ||
	    (cred = cJSON_AddObjectToObject(body, "credential")) == NULL ||
	    (tenant != NULL &&
	    cJSON_AddStringToObject(cred, "tenant_id", tenant) == NULL) ||
	    (client != NULL &&
	    cJSON_AddStringToObject(cred, "client_id", client) == NULL) ||
	    (auth != NULL &&
	    cJSON_AddStringToObject(cred, "authority_host", auth) == NULL) ||
	    (connect != NULL &&
	    cJSON_AddStringToObject(body, "connect_to", connect) == NULL) ||
	    (!check && cJSON_AddFalseToObject(body, "check") == NULL)) {
		r = KB_ERR_ALLOC;
		goto out;
	}
	if (secret_file != NULL) {
		/* The secret goes to the agent over the socket, never in argv. */
		if ((r = kb_secret_read_file(secret_file, &sec)) != 0)
			goto out;
		if (cJSON_AddStringToObject(cred, "type", "client_secret") == NULL ||
		    cJSON_AddStringToObject(cred, "secret",
		    (const char *)sec->data) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	} else if (cert != NULL) {
		if (cJSON_AddStringToObject(cred, "type",
		    "client_certificate") == NULL ||
		    cJSON_AddStringToObject(cred, "client_cert", cert) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		if ((r = add_pem(cred, "certificate", cert_file,
		    "the certificate file")) != 0)
			goto out;
	} else if (fed != NULL || token != NULL) {
		if (cJSON_AddStringToObject(cred, "type", fed != NULL ?
		    "federated_token_file" : "token_file") == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		if ((r = add_abs(cred, "file", fed != NULL ? fed : token)) != 0)
			goto out;
	} else {
		if (cJSON_AddStringToObject(cred, "type", "managed_identity") ==
		    NULL || (mi != NULL &&
		    cJSON_AddStringToObject(cred, "client_id", mi) == NULL)) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	}
	if (ca != NULL && (r = add_pem(body, "ca", ca, "the CA file")) != 0)
		goto out;
	for (i = 0; i < 4; i++) {
		if (role[i] == NULL)
			continue;
		if ((roles = cJSON_GetObjectItemCaseSensitive(body, "roles")) ==
		    NULL && (roles = cJSON_AddObjectToObject(body, "roles")) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
		if (cJSON_AddStringToObject(roles, role_key[i], role[i]) == NULL) {
			r = KB_ERR_ALLOC;
			goto out;
		}
	}
	if ((r = cli_agent_request(c, &kv, "PUT", path, body, &out)) != 0)
		goto out;
	if (c->json)
		cli_print_json(out);
	else {
		printf("added vault %s\n", argv[optind]);
		print_vault(out);
	}
 out:
	if (body != NULL) {
		/* Wipe the secret's copy in the request. */
		cJSON *cr = cJSON_GetObjectItemCaseSensitive(body, "credential");
		cJSON *s = cJSON_GetObjectItemCaseSensitive(cr, "secret");

		if (cJSON_IsString(s))
			kb_wipe(s->valuestring, strlen(s->valuestring));
	}
	kb_secret_free(&sec);
	cJSON_Delete(body);
	cJSON_Delete(out);
	kb_kv_client_free(kv);
	return r != 0 ? cli_print_error(r) : 0;
}
