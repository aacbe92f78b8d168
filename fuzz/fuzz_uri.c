/* fuzz_uri.c: the RFC 7512 parser; a parsed URI must format and re-parse
 * to the same selection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_pkcs11.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_p11_uri *u = NULL, *v = NULL;
	char *s, *text;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (kb_p11_uri_parse(s, &u) == 0) {
		if ((text = kb_p11_uri_format(u)) == NULL)
			abort();
		if (kb_p11_uri_parse(text, &v) != 0)
			abort();
		if (!same(u->token, v->token) || !same(u->serial, v->serial) ||
		    !same(u->model, v->model) ||
		    !same(u->manufacturer, v->manufacturer) ||
		    !same(u->object, v->object) || !same(u->type, v->type) ||
		    u->has_slot_id != v->has_slot_id ||
		    (u->has_slot_id && u->slot_id != v->slot_id) ||
		    u->has_id != v->has_id || u->id_len != v->id_len ||
		    (u->id_len > 0 && memcmp(u->id, v->id, u->id_len) != 0))
			abort();
		kb_p11_uri_free(v);
		kb_p11_uri_free(u);
		free(text);
	}
	free(s);
	return 0;
}
