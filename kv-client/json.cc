/*
 * json.cc: a server's JSON answer into a cJSON tree (json.h).
 *
 * Why simdjson and not cJSON_Parse: cJSON's parser was half of
 * kv-client's instructions for a page of 25 keys (a strncmp for null,
 * false and true before every value, strtod for every number, each
 * string scanned twice) and it takes what JSON does not allow (text
 * after the value, bytes that are not UTF-8).  simdjson (Debian's
 * libsimdjson) validates the whole text, UTF-8 included, at a few
 * instructions a byte; this file only builds the cJSON tree the rest of
 * kv-client and its callers use.  cJSON stays the API: the tree is
 * allocated through cJSON's hooks, so cJSON_Delete and jarena.c work on
 * it unchanged.  No exception leaves this file (the error-code API of
 * simdjson throws none; the catch is for std::bad_alloc).
 */
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include <simdjson.h>

#include "json.h"

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

/*
 * A thread keeps its parser and a padded copy buffer for answers up to
 * this size (a page of 25 keys is about 6 KiB; the parser's memory is
 * about 14 times the capacity); larger ones get their own, freed after.
 */
constexpr size_t KEEP_MAX = 64 * 1024;

struct tls_state {
	simdjson::dom::parser parser;
	std::unique_ptr<char[]> pad;     /* KEEP_MAX + SIMDJSON_PADDING */
};

thread_local tls_state tls;

/*
 * s as a C string from cJSON's allocator, or nullptr with *why: nul_why
 * when s holds U+0000 (a C string would end there), else out of memory.
 */
char *
dup_text(std::string_view s, const char *nul_why, const char **why)
{
	char *p;

	if (memchr(s.data(), '\0', s.size()) != nullptr) {
		*why = nul_why;
		return nullptr;
	}
	if ((p = static_cast<char *>(cJSON_malloc(s.size() + 1))) == nullptr) {
		*why = "out of memory";
		return nullptr;
	}
	memcpy(p, s.data(), s.size());
	p[s.size()] = '\0';
	return p;
}

/* Append child to parent's list (cJSON: child->prev of the head is the tail). */
void
link_child(cJSON *parent, cJSON *child)
{
	if (parent->child == nullptr) {
		parent->child = child;
		child->prev = child;
	} else {
		cJSON *tail = parent->child->prev;

		tail->next = child;
		child->prev = tail;
		parent->child->prev = child;
	}
}

/* The cJSON node of e (and below), or nullptr: out of memory, or a NUL in a string. */
cJSON *
build(element e, const char **why)
{
	cJSON *o = nullptr;

	switch (e.type()) {
	case element_type::ARRAY:
		if ((o = cJSON_CreateArray()) == nullptr)
			break;
		for (element c : simdjson::dom::array(e)) {
			cJSON *k = build(c, why);

			if (k == nullptr) {
				cJSON_Delete(o);
				return nullptr;
			}
			link_child(o, k);
		}
		return o;
	case element_type::OBJECT:
		if ((o = cJSON_CreateObject()) == nullptr)
			break;
		for (simdjson::dom::key_value_pair kv : simdjson::dom::object(e)) {
			char *name = dup_text(kv.key, "a member name holds U+0000", why);
			cJSON *k = name != nullptr ? build(kv.value, why) : nullptr;

			if (k == nullptr) {
				cJSON_free(name);
				cJSON_Delete(o);
				return nullptr;
			}
			k->string = name;
			link_child(o, k);
		}
		return o;
	case element_type::STRING: {
		char *v = dup_text(e.get_string().value_unsafe(),
		    "a string holds U+0000", why);

		if (v == nullptr)
			return nullptr;
		if ((o = cJSON_CreateNull()) == nullptr) {
			cJSON_free(v);
			break;
		}
		o->type = cJSON_String;
		o->valuestring = v;
		break;
	}
	case element_type::INT64:
		o = cJSON_CreateNumber(static_cast<double>(e.get_int64().value_unsafe()));
		break;
	case element_type::UINT64:
		o = cJSON_CreateNumber(static_cast<double>(e.get_uint64().value_unsafe()));
		break;
	case element_type::DOUBLE:
		o = cJSON_CreateNumber(e.get_double().value_unsafe());
		break;
	case element_type::BOOL:
		o = cJSON_CreateBool(e.get_bool().value_unsafe());
		break;
	case element_type::NULL_VALUE:
		o = cJSON_CreateNull();
		break;
	}
	if (o == nullptr && *why == nullptr)
		*why = "out of memory";
	return o;
}

/* simdjson's error as a fragment of our sentence. */
const char *
reason(simdjson::error_code err)
{
	switch (err) {
	case simdjson::UTF8_ERROR:
		return "not valid UTF-8";
	case simdjson::NUMBER_ERROR:
		return "a number JSON does not allow or that does not fit";
	case simdjson::STRING_ERROR:
	case simdjson::UNESCAPED_CHARS:
	case simdjson::UNCLOSED_STRING:
		return "a malformed string";
	case simdjson::DEPTH_ERROR:
		return "nested too deeply";
	case simdjson::EMPTY:
		return "empty";
	case simdjson::MEMALLOC:
	case simdjson::CAPACITY:
		return "out of memory or too large";
	default:
		return "not one JSON value";
	}
}

/*
 * Zero what simdjson wrote of an answer's strings into p's string buffer.
 * Strings go there one after another, each as a 4-byte length, its bytes
 * and a NUL; the copy runs in SIMD blocks and may write up to
 * SIMDJSON_PADDING bytes past a string's end.  A string of k bytes comes
 * from at least k + 2 bytes of text plus a separator and takes k + 5, so
 * a text of len bytes writes at most 5 * (len + 1) / 3 + 5 bytes plus the
 * padding, whether or not its parse succeeded.  simdjson allocates
 * ROUNDUP(5 * capacity / 3 + SIMDJSON_PADDING, 64) for its capacity (it
 * has since 0.3), so the bound is clipped to that.
 */
void
wipe_strings(simdjson::dom::parser *p, size_t len)
{
	size_t cap = p->doc.capacity(), n, have;

	if (p->doc.string_buf == nullptr || cap == 0)
		return;
	n = 5 * (len + 1) / 3 + 5 + simdjson::SIMDJSON_PADDING;
	have = (5 * cap / 3 + simdjson::SIMDJSON_PADDING + 63) / 64 * 64;
	explicit_bzero(p->doc.string_buf.get(), n < have ? n : have);
}

cJSON *
parse(const char *text, size_t len, bool secret, const char **why)
{
	std::unique_ptr<simdjson::dom::parser> own;
	std::unique_ptr<char[]> big;
	simdjson::dom::parser *p = &tls.parser;
	simdjson::error_code err;
	char *copy;
	element root;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		text += 3;
		len -= 3;
	}
	/*
	 * simdjson reads up to SIMDJSON_PADDING bytes past the end: the text
	 * goes into a padded copy of ours, zeroed after the parse (simdjson's
	 * own copy would be freed as it is).  Answers up to KEEP_MAX use the
	 * thread's parser and buffer; larger ones get their own.
	 */
	if (len > KEEP_MAX) {
		own.reset(new (std::nothrow) simdjson::dom::parser());
		big.reset(new (std::nothrow) char[len + simdjson::SIMDJSON_PADDING]);
		p = own.get();
		copy = big.get();
	} else {
		if (tls.pad == nullptr)
			tls.pad.reset(new (std::nothrow)
			    char[KEEP_MAX + simdjson::SIMDJSON_PADDING]);
		copy = tls.pad.get();
	}
	if (p == nullptr || copy == nullptr) {
		*why = "out of memory";
		return nullptr;
	}
	memcpy(copy, text, len);
	memset(copy + len, 0, simdjson::SIMDJSON_PADDING);
	err = simdjson::SUCCESS;
	if (p->capacity() < len || p->max_depth() != KB_KV_JSON_DEPTH) {
		size_t cap = len > 4096 ? len : 4096;

		if (p == &tls.parser && cap < KEEP_MAX)
			cap = KEEP_MAX;    /* one allocation for every small answer */
		err = p->allocate(cap, KB_KV_JSON_DEPTH);
	}
	if (err == simdjson::SUCCESS)
		err = p->parse(copy, len, false).get(root);
	cJSON *tree = err == simdjson::SUCCESS ? build(root, why) : nullptr;
	if (err != simdjson::SUCCESS)
		*why = reason(err);
	explicit_bzero(copy, len);    /* no copy of the answer stays */
	if (secret)
		wipe_strings(p, len);
	return tree;
}

} /* namespace */

static cJSON *
parse_guarded(const char *text, size_t len, bool secret, const char **why)
{
	const char *dummy;

	if (why == nullptr)
		why = &dummy;
	*why = nullptr;
	if (text == nullptr) {
		*why = "empty";
		return nullptr;
	}
	try {
		return parse(text, len, secret, why);
	} catch (...) {
		*why = "out of memory";
		return nullptr;
	}
}

extern "C" cJSON *
kb_kv_json_parse(const char *text, size_t len, const char **why)
{
	return parse_guarded(text, len, false, why);
}

extern "C" cJSON *
kb_kv_json_parse_secret(const char *text, size_t len, const char **why)
{
	return parse_guarded(text, len, true, why);
}
