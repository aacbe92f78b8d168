/*
 * json.h: a server's JSON answer read into a cJSON tree (json.cc).
 *
 * Every answer of Key Vault or the agent goes through kb_kv_json_parse
 * (or kb_kv_json_parse_secret), never cJSON_Parse; token endpoints'
 * answers are still read with cJSON (credential.c, msi.c), their trees
 * wiped after.  simdjson checks the text (RFC 8259,
 * UTF-8 included) and the tree is then built with cJSON's allocator, so
 * it is an ordinary cJSON tree (cJSON_Delete frees it; jarena.c's hooks
 * apply).  Compared with cJSON_Parse it refuses:
 *   - text after the value ("{} x");
 *   - bytes that are not UTF-8, and lone UTF-16 surrogates;
 *   - numbers outside JSON's grammar ("01", "1.", "+1") or outside
 *     64-bit integers and doubles (1e400);
 *   - strings holding U+0000 (a cJSON string would end there);
 *   - nesting deeper than KB_KV_JSON_DEPTH.
 * A UTF-8 byte order mark before the value is skipped, as cJSON does.
 */
#ifndef KB_KV_JSON_H
#define KB_KV_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_KV_JSON_DEPTH 128

/*
 * The tree of text[0..len), or NULL with *why (a static sentence
 * fragment: "not valid UTF-8", "out of memory", ...) when it is not one
 * JSON value or memory ran out.
 */
cJSON *kb_kv_json_parse(const char *text, size_t len, const char **why);

/*
 * kb_kv_json_parse for an answer that holds secrets (a decrypt,
 * unwrapKey or getRandomBytes answer): what the parser wrote of its
 * strings is zeroed before it returns, success or not.  The text and the
 * tree stay the caller's to wipe (kb_kv_json_wipe).
 */
cJSON *kb_kv_json_parse_secret(const char *text, size_t len, const char **why);

#ifdef __cplusplus
}
#endif

#endif /* KB_KV_JSON_H */
