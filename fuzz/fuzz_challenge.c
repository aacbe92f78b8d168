/*
 * fuzz_challenge.c: kv-client's WWW-Authenticate parser (Key Vault's
 * bearer challenge) and the resource-domain check on what it returns.
 * Invariants: a parsed challenge has a scope, an https authorization and
 * a resource host with a dot; the host check never accepts a vault
 * outside the resource's domain.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kb_kvclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_kv_challenge *ch = NULL;
	static const char vault[] = "myvault.vault.azure.net";
	size_t hl, rl;

	if (kb_kv_challenge_parse((const char *)data, size, &ch) != 0)
		return 0;
	if (ch->scope == NULL || ch->authorization == NULL ||
	    strncasecmp(ch->authorization, "https://", 8) != 0 ||
	    strchr(ch->resource_host, '.') == NULL)
		abort();
	if (kb_kv_challenge_check_host(ch, vault) == 0) {
		hl = strlen(vault);
		rl = strlen(ch->resource_host);
		if (rl + 1 >= hl || strcmp(vault + hl - rl,
		    ch->resource_host) != 0)
			abort();
	}
	if (kb_kv_challenge_check_host(ch, "evil.example") == 0 &&
	    strcmp(ch->resource_host, "example") != 0)
		abort();
	kb_kv_challenge_free(ch);
	return 0;
}
