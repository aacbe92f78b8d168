/*
 * test_unit.c: kv-client's pure parts: the WWW-Authenticate parser and
 * the resource-domain check (every cloud of NOTES.md 2.5), Retry-After,
 * and the status mapping.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_kvclient.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "tap.h"
#pragma GCC diagnostic pop

static struct kb_kv_challenge *
parse(const char *h)
{
	struct kb_kv_challenge *ch = NULL;

	if (kb_kv_challenge_parse(h, strlen(h), &ch) != 0)
		return NULL;
	return ch;
}

static void
good(const char *h, const char *tenant, const char *scope, const char *rhost)
{
	struct kb_kv_challenge *ch = parse(h);

	tap_ok(ch != NULL, "parses: %s", h);
	if (ch == NULL)
		return;
	tap_ok((tenant == NULL && ch->tenant == NULL) ||
	    (tenant && ch->tenant && strcmp(tenant, ch->tenant) == 0),
	    "  tenant %s", ch->tenant ? ch->tenant : "(none)");
	tap_is_str(ch->scope, scope, "  scope");
	tap_is_str(ch->resource_host, rhost, "  resource host");
	kb_kv_challenge_free(ch);
}

static void
bad(const char *h)
{
	struct kb_kv_challenge *ch = parse(h);

	tap_ok(ch == NULL, "refused: %s", h);
	kb_kv_challenge_free(ch);
}

static void
host(const char *resource, const char *vault, int want)
{
	char h[512];
	struct kb_kv_challenge *ch;

	snprintf(h, sizeof(h), "Bearer authorization=\"https://login.microsoftonline.com/t\", "
	    "resource=\"%s\"", resource);
	ch = parse(h);
	tap_is_int(ch ? kb_kv_challenge_check_host(ch, vault) : -99, want,
	    "%s for %s", resource, vault);
	kb_kv_challenge_free(ch);
}

/*
 * Every challenge in the recordings (NOTES.md: real vaults and Managed
 * HSMs): parsed, scope and tenant right, and accepted for the host the
 * request went to.
 */
static void
recordings(const char *dir)
{
	struct dirent *de;
	DIR *d = dir ? opendir(dir) : NULL;
	char path[1024], *text = NULL, host[256];
	const cJSON *e, *h, *v;
	struct kb_kv_challenge *ch;
	cJSON *j;
	size_t len;
	int n = 0, good_n = 0;

	if (d == NULL) {
		printf("# no recordings at %s\n", dir ? dir : "(unset)");
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".json") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (kb_file_read(path, 16 << 20, &text, &len) != 0)
			continue;
		j = cJSON_ParseWithLength(text, len);
		free(text);
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "Entries")) {
			h = cJSON_GetObjectItem(e, "ResponseHeaders");
			v = cJSON_GetObjectItem(h, "WWW-Authenticate");
			if (!cJSON_IsString(v))
				continue;
			n++;
			/* https://Sanitized.vault.azure.net/... */
			if (sscanf(cJSON_GetStringValue(cJSON_GetObjectItem(e, "RequestUri")),
			    "https://%255[^/]", host) != 1)
				continue;
			ch = parse(v->valuestring);
			if (ch != NULL && ch->tenant != NULL && strlen(ch->tenant) == 36 &&
			    strstr(ch->scope, "/.default") != NULL &&
			    kb_kv_challenge_check_host(ch, host) == 0)
				good_n++;
			else
				printf("# %s: %s\n", de->d_name, v->valuestring);
			kb_kv_challenge_free(ch);
		}
		cJSON_Delete(j);
	}
	closedir(d);
	tap_ok(n > 0 && good_n == n, "every recorded challenge parses and matches "
	    "its vault's host (%d of %d)", good_n, n);
}

int
main(int argc, char **argv)
{
	recordings(argc > 1 ? argv[1] : NULL);
	good("Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", "
	    "resource=\"https://vault.azure.net\"", "72f988bf-86f1-41af-91ab-2d7cd011db47",
	    "https://vault.azure.net/.default", "vault.azure.net");
	good("Bearer authorization=\"https://login.microsoftonline.com/t\", "
	    "resource=\"https://managedhsm.azure.net/\"", "t",
	    "https://managedhsm.azure.net/.default", "managedhsm.azure.net");
	good("bearer AUTHORIZATION_URI = \"https://login.chinacloudapi.cn/tid/oauth2/authorize\" ,"
	    "Scope=\"https://vault.azure.cn/.default\"", "tid",
	    "https://vault.azure.cn/.default", "vault.azure.cn");
	good("Basic realm=\"a, b\", Bearer realm=\"\", authorization=\"https://login.microsoftonline.us/t\", "
	    "resource=\"https://vault.usgovcloudapi.net\", error=\"invalid_token\", Negotiate",
	    "t", "https://vault.usgovcloudapi.net/.default", "vault.usgovcloudapi.net");
	good("Bearer authorization=\"https://login.microsoftonline.com\", "
	    "resource=\"https://vault.azure.net\"", NULL,
	    "https://vault.azure.net/.default", "vault.azure.net");
	good("Bearer authorization=\"https://login.microsoftonline.com/t\", "
	    "resource=\"https://VAULT.azure.net:443\", scope=\"https://vault.azure.net/.default\"",
	    "t", "https://vault.azure.net/.default", "vault.azure.net");
	good("Bearer authorization=\"https:\\/\\/login.microsoftonline.com/t\", resource=\"https://vault.azure.net\"",
	    "t", "https://vault.azure.net/.default", "vault.azure.net");
	bad("");
	bad("Basic realm=\"x\"");
	bad("Bearer resource=\"https://vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\"");
	bad("Bearer authorization=\"http://login.microsoftonline.com/t\", resource=\"https://vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"http://vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://vault.azure.net");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://a\", resource=\"https://vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://localhost\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://user@vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t?x\", resource=\"https://vault.azure.net\" junk");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", scope=\"https://vault.azure.net/.default https://graph.microsoft.com/.default\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\x01\", resource=\"https://vault.azure.net\"");
	bad("Bearer authorization=, resource=\"https://vault.azure.net\"");
	bad("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=https://vault.azure.net");
	{
		char big[9000];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		memcpy(big, "Bearer x=\"", 10);
		bad(big);
	}
	host("https://vault.azure.net", "myvault.vault.azure.net", 0);
	host("https://vault.azure.net", "MyVault.Vault.Azure.Net", 0);
	host("https://managedhsm.azure.net", "hsm.managedhsm.azure.net", 0);
	host("https://vault.azure.cn", "v.vault.azure.cn", 0);
	host("https://managedhsm.azure.cn", "h.managedhsm.azure.cn", 0);
	host("https://vault.usgovcloudapi.net", "v.vault.usgovcloudapi.net", 0);
	host("https://managedhsm.usgovcloudapi.net", "h.managedhsm.usgovcloudapi.net", 0);
	host("https://vault.azure.net", "vault.azure.net", KB_ERR_DENIED);
	host("https://vault.azure.net", "evilvault.azure.net", KB_ERR_DENIED);
	host("https://vault.azure.net", "myvault.vault.azure.net.evil.example", KB_ERR_DENIED);
	host("https://vault.azure.net", "127.0.0.1", KB_ERR_DENIED);
	host("https://managedhsm.azure.net", "myvault.vault.azure.net", KB_ERR_DENIED);
	host("https://vault.azure.cn", "myvault.vault.azure.net", KB_ERR_DENIED);

	tap_is_int(kb_kv_retry_after_ms("7", 0), 7000, "Retry-After: 7");
	tap_is_int(kb_kv_retry_after_ms("0", 0), 0, "Retry-After: 0");
	tap_is_int(kb_kv_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000,
	    "Retry-After as an HTTP date");
	tap_is_int(kb_kv_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111790), 0,
	    "a date in the past: no wait");
	tap_is_int(kb_kv_retry_after_ms("Fri, 01 Jan 2100 00:00:10 GMT", 4102444800LL), 10000,
	    "a date past 2038");
	tap_is_int(kb_kv_retry_after_ms("-1", 0), -1, "negative: ignored");
	tap_is_int(kb_kv_retry_after_ms("soon", 0), -1, "junk: ignored");
	tap_is_int(kb_kv_retry_after_ms("99999999999", 0), -1, "absurd: ignored");
	tap_is_int(kb_kv_status_to_err(429, "Throttled"), KB_ERR_BUSY, "429 BUSY");
	tap_is_int(kb_kv_status_to_err(404, "KeyNotFound"), KB_ERR_NOT_FOUND, "404");
	tap_is_int(kb_kv_status_to_err(409, "Conflict"), KB_ERR_CONFLICT, "409");
	return tap_done();
}
