/* test_uri.c: RFC 7512 PKCS#11 URI parser and printer. */
#include <stdlib.h>
#include <string.h>

#include "kb_pkcs11.h"
#include "tap.h"

static int
parse(const char *s, struct kb_p11_uri **u)
{
	*u = NULL;
	return kb_p11_uri_parse(s, u);
}

static void
bad(const char *s, int want, const char *why, const char *needle)
{
	struct kb_p11_uri *u = NULL;
	int r = parse(s, &u);

	tap_is_int(r, want, "refused: %s", why);
	tap_ok(u == NULL, "no output for refused URI (%s)", why);
	if (needle != NULL)
		tap_ok(strstr(kb_error_detail(r), needle) != NULL,
		    "message names '%s': %s", needle, kb_error_detail(r));
	kb_p11_uri_free(u);
}

int
main(void)
{
	struct kb_p11_uri *u = NULL, *v = NULL;
	char *s = NULL, *big;
	unsigned char allbytes[256];
	size_t i;

	/* Good URIs. */
	tap_is_int(parse("pkcs11:", &u), 0, "empty path is a valid URI");
	tap_ok(u && !u->token && !u->has_id && !u->has_slot_id, "empty selection");
	kb_p11_uri_free(u);

	tap_is_int(parse("pkcs11:token=My%20Token;serial=abc123;model=SoftHSM%20v2;"
	    "manufacturer=SoftHSM%20project;slot-id=42;object=key%2F1;id=%01%02%ff;"
	    "type=private?pin-source=file:%2Ftmp%2Fpin&module-path=/usr/lib/x.so&x-vendor=1",
	    &u), 0, "full URI parses");
	tap_is_str(u ? u->token : NULL, "My Token", "token decoded");
	tap_is_str(u ? u->serial : NULL, "abc123", "serial");
	tap_is_str(u ? u->model : NULL, "SoftHSM v2", "model");
	tap_is_str(u ? u->manufacturer : NULL, "SoftHSM project", "manufacturer");
	tap_ok(u && u->has_slot_id && u->slot_id == 42, "slot-id");
	tap_is_str(u ? u->object : NULL, "key/1", "object decoded");
	tap_ok(u && u->has_id && u->id_len == 3 && memcmp(u->id, "\x01\x02\xff", 3) == 0,
	    "id bytes");
	tap_is_str(u ? u->type : NULL, "private", "type");
	tap_is_str(u ? u->pin_source : NULL, "file:/tmp/pin", "pin-source kept");
	tap_is_str(u ? u->module_path : NULL, "/usr/lib/x.so", "module-path kept ('/' unencoded in query)");

	/* Round trip: format then parse gives the same attributes. */
	s = kb_p11_uri_format(u);
	tap_ok(s != NULL, "format: %s", s ? s : "(null)");
	tap_is_int(parse(s ? s : "", &v), 0, "formatted URI parses again");
	tap_ok(v && strcmp(v->token, u->token) == 0 && strcmp(v->object, u->object) == 0 &&
	    v->id_len == u->id_len && memcmp(v->id, u->id, u->id_len) == 0 &&
	    v->slot_id == 42 && strcmp(v->pin_source, u->pin_source) == 0 &&
	    strcmp(v->type, "private") == 0, "round trip keeps every attribute");
	tap_ok(s && strstr(s, "token=My%20Token") && strstr(s, "id=%01%02%FF"),
	    "reserved bytes percent-encoded, id fully encoded");
	free(s);
	kb_p11_uri_free(u);
	kb_p11_uri_free(v);
	u = v = NULL;

	/* Every byte value survives an id round trip. */
	for (i = 0; i < 256; i++)
		allbytes[i] = (unsigned char)i;
	{
		struct kb_p11_uri w;

		memset(&w, 0, sizeof(w));
		w.id = allbytes;
		w.id_len = 256;
		w.has_id = true;
		w.object = "a;b?c&d=e%f g\"h";
		s = kb_p11_uri_format(&w);
		tap_is_int(parse(s ? s : "", &u), 0, "256-byte id URI parses");
		tap_ok(u && u->id_len == 256 && memcmp(u->id, allbytes, 256) == 0,
		    "all 256 byte values round trip in id");
		tap_is_str(u ? u->object : NULL, "a;b?c&d=e%f g\"h", "delimiters round trip in object");
		free(s);
		kb_p11_uri_free(u);
		u = NULL;
	}

	tap_is_int(parse("PKCS11:token=a", &u), 0, "scheme is case-insensitive");
	kb_p11_uri_free(u);
	tap_is_int(parse("pkcs11:token=", &u), 0, "empty value accepted");
	tap_is_str(u ? u->token : NULL, "", "empty token label");
	kb_p11_uri_free(u);
	tap_is_int(parse("pkcs11:id=%00%00", &u), 0, "NUL bytes allowed in id");
	tap_ok(u && u->id_len == 2 && u->id[0] == 0, "id with NULs");
	kb_p11_uri_free(u);
	tap_is_int(parse("pkcs11:token=a?unknown=1&other=%41", &u), 0,
	    "unknown query attributes ignored");
	kb_p11_uri_free(u);

	/* Malformed. */
	bad("pkcs11", KB_ERR_INVALID, "no colon", "pkcs11:");
	bad("http://x", KB_ERR_INVALID, "wrong scheme", NULL);
	bad("", KB_ERR_INVALID, "empty string", NULL);
	bad("pkcs11:token", KB_ERR_INVALID, "attribute without '='", NULL);
	bad("pkcs11:token=a;;serial=b", KB_ERR_INVALID, "empty attribute", NULL);
	bad("pkcs11:token=a;", KB_ERR_INVALID, "trailing ';'", NULL);
	bad("pkcs11:token=a?", KB_ERR_INVALID, "empty query", NULL);
	bad("pkcs11:token=a?pin-source=x&", KB_ERR_INVALID, "trailing '&'", NULL);
	bad("pkcs11:token=%4", KB_ERR_INVALID, "short escape", "percent");
	bad("pkcs11:token=%", KB_ERR_INVALID, "lone percent", "percent");
	bad("pkcs11:token=%zz", KB_ERR_INVALID, "non-hex escape", "percent");
	bad("pkcs11:token=%+1", KB_ERR_INVALID, "sign in escape", "percent");
	bad("pkcs11:token=a%00b", KB_ERR_INVALID, "NUL in text attribute", "NUL");
	bad("pkcs11:object=a%00", KB_ERR_INVALID, "NUL in object", "NUL");
	bad("pkcs11:token=My Token", KB_ERR_INVALID, "raw space", "%20");
	bad("pkcs11:token=a/b", KB_ERR_INVALID, "raw '/' in path", "%2F");
	bad("pkcs11:token=a\"b", KB_ERR_INVALID, "raw quote", NULL);
	bad("pkcs11:token=\xc3\xa9", KB_ERR_INVALID, "raw UTF-8 byte", "percent-encoded");
	bad("pkcs11:token=a\tb", KB_ERR_INVALID, "control character", NULL);
	bad("pkcs11:=x", KB_ERR_INVALID, "empty name", NULL);
	bad("pkcs11:to%6Ben=x", KB_ERR_INVALID, "escaped name", NULL);

	/* Unknown, duplicate, refused. */
	bad("pkcs11:token=a;frobnicate=1", KB_ERR_INVALID, "unknown path attribute",
	    "frobnicate");
	bad("pkcs11:library-manufacturer=x", KB_ERR_INVALID, "library-* refused",
	    "library-manufacturer");
	bad("pkcs11:slot-description=x", KB_ERR_INVALID, "slot-description refused",
	    "slot-description");
	bad("pkcs11:token=a;token=b", KB_ERR_INVALID, "duplicate token", "twice");
	bad("pkcs11:id=%01;id=%02", KB_ERR_INVALID, "duplicate id", "twice");
	bad("pkcs11:token=a?pin-source=x&pin-source=y", KB_ERR_INVALID,
	    "duplicate pin-source", "twice");
	bad("pkcs11:token=a?pin-value=1234", KB_ERR_INVALID, "pin-value in query",
	    "pin-value");
	bad("pkcs11:token=a;pin-value=1234", KB_ERR_INVALID, "pin-value in path",
	    "pin-value");
	tap_ok(strstr(kb_error_detail(KB_ERR_INVALID), "1234") == NULL,
	    "the refused PIN is not echoed in the message");
	bad("pkcs11:type=secret", KB_ERR_INVALID, "unknown type", "type");
	bad("pkcs11:slot-id=abc", KB_ERR_INVALID, "slot-id not a number", "slot-id");
	bad("pkcs11:slot-id=-1", KB_ERR_INVALID, "negative slot-id", "slot-id");
	bad("pkcs11:slot-id=99999999999999999999999", KB_ERR_LIMIT, "huge slot-id", NULL);

	/* Lengths. */
	bad("pkcs11:token=123456789012345678901234567890123", KB_ERR_LIMIT,
	    "token label over 32 bytes", "32");
	bad("pkcs11:serial=12345678901234567", KB_ERR_LIMIT, "serial over 16 bytes", NULL);
	tap_is_int(parse("pkcs11:token=12345678901234567890123456789012", &u), 0,
	    "32-byte token label accepted");
	kb_p11_uri_free(u);
	big = malloc(8192);
	if (big != NULL) {
		memcpy(big, "pkcs11:object=", 14);
		memset(big + 14, 'a', 8192 - 15);
		big[8191] = '\0';
		bad(big, KB_ERR_LIMIT, "8 KiB URI", "4096");
		big[4096] = '\0';
		bad(big, KB_ERR_LIMIT, "object label over 1024 bytes", NULL);
		memcpy(big, "pkcs11:id=", 10);
		for (i = 10; i + 3 <= 4096; i += 3)
			memcpy(big + i, "%41", 3);
		big[i] = '\0';
		bad(big, KB_ERR_LIMIT, "id over 256 bytes", NULL);
		free(big);
	}

	/* Token URI. */
	{
		struct kb_p11_token_info ti;

		memset(&ti, 0, sizeof(ti));
		strcpy(ti.label, "dev;1");
		strcpy(ti.model, "SoftHSM v2");
		strcpy(ti.manufacturer, "SoftHSM project");
		strcpy(ti.serial, "0123");
		s = kb_p11_token_info_uri(&ti);
		tap_is_str(s, "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;"
		    "serial=0123;token=dev%3B1", "token URI in p11tool order");
		free(s);
	}
	tap_ok(kb_p11_uri_format(NULL) == NULL, "format(NULL) is NULL");
	kb_p11_uri_free(NULL);
	tap_ok(1, "free(NULL) is fine");
	tap_is_int(kb_p11_uri_parse(NULL, &u), KB_ERR_INVALID, "parse(NULL) refused");
	return tap_done();
}
