/*
 * agentcmds.c: commands answered by the running agent (status, token
 * list).  Tables for people; --json prints the agent's JSON as it came.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static double
jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *
jyesno(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsTrue(v) ? "yes" : "no";
}

static char *
num_dup(double a)
{
	char tmp[64];

	snprintf(tmp, sizeof(tmp), "%.0f", a);
	return kb_strdup(tmp);
}

static char *
ratio_dup(double a, double b)
{
	char tmp[64];

	snprintf(tmp, sizeof(tmp), "%.0f/%.0f", a, b);
	return kb_strdup(tmp);
}

int
cmd_status(struct cli *c, int argc, char **argv)
{
	static const char *const head[] = {
		"TOKEN", "STATE", "LOGIN", "LABEL", "SERIAL", "SESSIONS", "URI"
	};
	cJSON *st = NULL;
	const cJSON *toks, *t;
	char **cells = NULL;
	size_t n = 0, i = 0, k;
	int r, rc = 0;

	if ((r = cli_plain_options(c, "status", argc, argv, 0, NULL)) != 0)
		return r < 0 ? 0 : r;
	if ((r = cli_agent_get(c, "/keybridge/status", &st)) != 0)
		return cli_print_error(r);
	if (c->json) {
		cli_print_json(st);
		goto out;
	}
	printf("keybridged ");
	cli_put(cli_jstr(st, "version"));
	printf(", pid %.0f, up %.0fs, socket ", jnum(st, "pid"),
	    jnum(st, "uptime_seconds"));
	cli_put(c->socket);
	printf("\n\n");
	toks = cJSON_GetObjectItemCaseSensitive(st, "tokens");
	n = (size_t)cJSON_GetArraySize(toks);
	if (n > 4096 || (cells = calloc(n * 7 + 1, sizeof(*cells))) == NULL) {
		rc = cli_print_error(KB_ERR_ALLOC);
		goto out;
	}
	cJSON_ArrayForEach(t, toks) {
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "sessions");
		if (i >= n)
			break;
		k = i * 7;
		cells[k] = kb_strdup(cli_jstr(t, "name") ? cli_jstr(t, "name") : "-");
		cells[k + 1] = kb_strdup(cli_jstr(t, "state") ? cli_jstr(t, "state") : "-");
		cells[k + 2] = kb_strdup(jyesno(t, "logged_in"));
		cells[k + 3] = cli_jstr(t, "label") ? kb_strdup(cli_jstr(t, "label")) : NULL;
		cells[k + 4] = cli_jstr(t, "serial") ? kb_strdup(cli_jstr(t, "serial")) : NULL;
		cells[k + 5] = ratio_dup(jnum(s, "open"), jnum(s, "max"));
		cells[k + 6] = cli_jstr(t, "uri") ? kb_strdup(cli_jstr(t, "uri")) : NULL;
		i++;
	}
	cli_table(head, 7, cells, i);
 out:
	cli_cells_free(cells, n * 7);
	cJSON_Delete(st);
	return rc;
}

int
cmd_token_list(struct cli *c, int argc, char **argv)
{
	static const char *const head[] = {
		"NAME", "SLOT", "LABEL", "SERIAL", "MANUFACTURER", "MODEL"
	};
	cJSON *tl = NULL;
	const cJSON *toks, *t, *f;
	char **cells = NULL;
	size_t n = 0, i, k;
	int r, rc = 0;

	if ((r = cli_plain_options(c, "token list", argc, argv, 0, NULL)) != 0)
		return r < 0 ? 0 : r;
	if ((r = cli_agent_get(c, "/keybridge/tokens", &tl)) != 0)
		return cli_print_error(r);
	if (c->json) {
		cli_print_json(tl);
		goto out;
	}
	toks = cJSON_GetObjectItemCaseSensitive(tl, "tokens");
	n = (size_t)cJSON_GetArraySize(toks);
	if (n > 4096 || (cells = calloc(n * 6 + 1, sizeof(*cells))) == NULL) {
		rc = cli_print_error(KB_ERR_ALLOC);
		goto out;
	}
	/* One table row per slot; the long fields follow on their own lines. */
	i = 0;
	cJSON_ArrayForEach(t, toks) {
		if (i >= n)
			break;
		k = i * 6;
		cells[k] = kb_strdup(cli_jstr(t, "name") ? cli_jstr(t, "name") : "-");
		cells[k + 1] = num_dup(jnum(t, "slot_id"));
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "present"))) {
			cells[k + 2] = kb_strdup("(no token)");
		} else {
			cells[k + 2] = cli_jstr(t, "label") ? kb_strdup(cli_jstr(t, "label")) : NULL;
			cells[k + 3] = cli_jstr(t, "serial") ? kb_strdup(cli_jstr(t, "serial")) : NULL;
			cells[k + 4] = cli_jstr(t, "manufacturer") ?
			    kb_strdup(cli_jstr(t, "manufacturer")) : NULL;
			cells[k + 5] = cli_jstr(t, "model") ? kb_strdup(cli_jstr(t, "model")) : NULL;
		}
		i++;
	}
	cli_table(head, 6, cells, i);
	i = 0;
	cJSON_ArrayForEach(t, toks) {
		const char *name = cli_jstr(t, "name");

		if (cli_jstr(t, "uri") == NULL)
			continue;
		printf("\nslot %.0f%s", jnum(t, "slot_id"), name ? " (" : "");
		if (name != NULL) {
			cli_put(name);
			putchar(')');
		}
		printf("\n  module: ");
		cli_put(cli_jstr(t, "module"));
		printf("\n  uri:    ");
		cli_put(cli_jstr(t, "uri"));
		printf("\n  flags: ");
		cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "flags")) {
			if (cJSON_IsString(f)) {
				putchar(' ');
				cli_put(f->valuestring);
			}
		}
		putchar('\n');
	}
 out:
	cli_cells_free(cells, n * 6);
	cJSON_Delete(tl);
	return rc;
}
