/* test_common.c: unit tests for common/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_common.h"
#include "tap.h"

static char tmpdir[PATH_MAX];

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, mode);
	close(fd);
}

static void
test_errors(void)
{
	int c;

	tap_is_int(kb_err_exit_code(KB_OK), 0, "success exits 0");
	tap_is_int(kb_err_exit_code(KB_ERR_USAGE), 2, "usage exits 2");
	tap_is_int(kb_err_exit_code(KB_ERR_PIN_LOCKED), 7, "locked PIN exits 7");
	tap_is_int(kb_err_exit_code(-999), 1, "unknown code is internal");
	for (c = 0; c >= KB_ERR__MIN; c--)
		if (strncmp(kb_err_name(c), "KB_", 3) != 0 || kb_err(c)[0] == '\0')
			break;
	tap_ok(c < KB_ERR__MIN, "every code has a name and a sentence");
	tap_is_int(kb_error_set(KB_ERR_IO, "cannot read %s", "/x"), KB_ERR_IO,
	    "kb_error_set returns its code");
	tap_is_str(kb_error_detail(KB_ERR_IO), "cannot read /x", "detail kept");
	(void)kb_error_set(KB_ERR_PROTOCOL, "service said: %s",
	    "bad\x1b[2J\r\nline\x7f\tend");
	tap_is_str(kb_error_detail(KB_ERR_PROTOCOL),
	    "service said: bad?[2J??line??end",
	    "control characters quoted from a peer become '?'");
	tap_is_str(kb_error_detail(KB_ERR_CONFIG), kb_err(KB_ERR_CONFIG),
	    "detail of another code falls back to the generic sentence");
}

static void
test_buf(void)
{
	struct kb_buf b;
	char *s;
	size_t n;

	kb_buf_init(&b, 10);
	tap_is_int(kb_buf_append(&b, "hello", 5), 0, "append within cap");
	tap_is_int(kb_buf_append(&b, "world", 5), 0, "append to exactly cap");
	tap_is_int(kb_buf_append(&b, "!", 1), KB_ERR_LIMIT, "append past cap refused");
	tap_is_int((int)b.len, 10, "refused append leaves length");
	tap_is_str((char *)b.data, "helloworld", "content NUL-terminated");
	kb_buf_reset(&b);
	tap_is_int(kb_buf_appendf(&b, "%d-%s", 42, "x"), 0, "appendf");
	tap_is_int(kb_buf_appendf(&b, "%s", "0123456789"), KB_ERR_LIMIT,
	    "appendf past cap refused");
	s = kb_buf_steal(&b, &n);
	tap_is_str(s, "42-x", "steal gives content");
	tap_ok(b.data == NULL && b.len == 0, "steal empties the buffer");
	free(s);
	kb_buf_free(&b);
	kb_buf_init(&b, SIZE_MAX);
	tap_is_int(kb_buf_append(&b, "a", 1), 0, "huge cap works");
	tap_is_int(kb_buf_append(&b, "a", SIZE_MAX), KB_ERR_LIMIT,
	    "length overflow caught");
	kb_buf_free(&b);
	kb_buf_free(NULL);
	kb_buf_init(&b, 100);
	kb_buf_reserve(&b, 40);
	tap_ok(b.alloc >= 41 && b.len == 0 && b.data != NULL && b.data[0] == '\0',
	    "reserve allocates room and keeps the buffer empty");
	kb_buf_reserve(&b, 1000);
	tap_ok(b.alloc >= 101 && b.alloc <= 128, "reserve past the cap stops at it "
	    "(%zu allocated)", b.alloc);
	tap_is_int(kb_buf_append(&b, "0123456789", 10), 0, "and appends still work");
	tap_is_int(kb_buf_append(&b, "x", 91), KB_ERR_LIMIT,
	    "but not past the cap");
	kb_buf_free(&b);
	kb_buf_init_secret(&b, 1 << 20);
	for (n = 0; n < 1000; n++)
		if (kb_buf_append(&b, "secret!", 7) != 0)
			break;
	tap_ok(n == 1000 && b.len == 7000, "secret buffer grows");
	kb_buf_free(&b);
}

static void
test_b64(void)
{
	static const struct { const char *raw, *enc; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char bin[] = { 0xfb, 0xff, 0xbf }, *out;
	size_t i, n;
	char *e;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		e = kb_b64url_encode((const unsigned char *)v[i].raw, strlen(v[i].raw));
		tap_is_str(e, v[i].enc, "RFC 4648 vector %zu encodes", i);
		free(e);
		out = NULL;
		tap_ok(kb_b64url_decode(v[i].enc, strlen(v[i].enc), &out, &n) == 0 &&
		    n == strlen(v[i].raw) && memcmp(out, v[i].raw, n) == 0,
		    "RFC 4648 vector %zu decodes", i);
		free(out);
	}
	e = kb_b64url_encode(bin, 3);
	tap_is_str(e, "-_-_", "url alphabet used");
	free(e);
	tap_ok(kb_b64url_decode("+/+/", 4, &out, &n) == 0 && n == 3 &&
	    memcmp(out, bin, 3) == 0, "standard alphabet accepted");
	free(out);
	tap_ok(kb_b64url_decode("Zm8=", 4, &out, &n) == 0 && n == 2, "padding accepted");
	free(out);
	tap_is_int(kb_b64url_decode("Zm8==", 5, &out, &n), KB_ERR_INVALID, "bad padding refused");
	tap_is_int(kb_b64url_decode("Z", 1, &out, &n), KB_ERR_INVALID, "length 1 mod 4 refused");
	tap_is_int(kb_b64url_decode("Zm 8", 4, &out, &n), KB_ERR_INVALID, "whitespace refused");
	tap_is_int(kb_b64url_decode("Zm\0" "8", 4, &out, &n), KB_ERR_INVALID, "NUL refused");
	tap_is_int(kb_b64url_decode("Z=m8", 4, &out, &n), KB_ERR_INVALID, "inner '=' refused");
	e = kb_hex_encode(bin, 3);
	tap_is_str(e, "fbffbf", "hex encode");
	free(e);
	tap_ok(kb_hex_decode("FBffBf", &out, &n) == 0 && n == 3 &&
	    memcmp(out, bin, 3) == 0, "hex decode both cases");
	free(out);
	tap_is_int(kb_hex_decode("abc", &out, &n), KB_ERR_INVALID, "odd hex refused");
	tap_is_int(kb_hex_decode("zz", &out, &n), KB_ERR_INVALID, "non-hex refused");
}

static void
test_time(void)
{
	char buf[32];
	int64_t t;

	tap_ok(kb_time_format(0, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "1970-01-01T00:00:00Z") == 0, "epoch formats");
	tap_ok(kb_time_format(4102444800LL, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "2100-01-01T00:00:00Z") == 0, "2100 formats (past 2038)");
	tap_ok(kb_time_parse("2038-01-19T03:14:08Z", &t) == 0 && t == 2147483648LL,
	    "2038 rollover second parses");
	tap_ok(kb_time_parse("2026-11-21T17:00:00.123+01:00", &t) == 0 &&
	    t == 1795276800LL, "offset and fraction (16:00Z)");
	tap_ok(kb_time_parse("2024-02-29T00:00:00Z", &t) == 0, "leap day");
	tap_is_int(kb_time_parse("2023-02-29T00:00:00Z", &t), KB_ERR_INVALID, "bad leap day");
	tap_is_int(kb_time_parse("2026-13-01T00:00:00Z", &t), KB_ERR_INVALID, "month 13");
	tap_is_int(kb_time_parse("2026-11-21 17:00:00Z", &t), KB_ERR_INVALID, "space separator");
	tap_is_int(kb_time_parse("2026-11-21T17:00:00", &t), KB_ERR_INVALID, "no zone");
	tap_is_int(kb_time_parse("2026-11-21T17:00:00Zjunk", &t), KB_ERR_INVALID, "trailing junk");
	tap_ok(kb_time_parse("9999-12-31T23:59:59Z", &t) == 0 &&
	    kb_time_format(t, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "9999-12-31T23:59:59Z") == 0, "year 9999 round trip");
}

static void
test_ini(void)
{
	static const char good[] =
	    "# comment\n"
	    "[agent]\n"
	    "  socket = /run/kb/agent.sock  \n"
	    "; another\n"
	    "\n"
	    "[token main]\n"
	    "label=dev token\n"
	    "[token second.one]\n"
	    "uri = pkcs11:token=a%20b\n";
	static const struct { const char *text, *want; } bad[] = {
		{ "key = v\n", "t.conf:1: setting outside any section" },
		{ "[agent]\nnovalue\n", "t.conf:2: expected 'key = value'" },
		{ "[agent]\nk =\n", "t.conf:2: 'k' has no value" },
		{ "[agent]\nk = 1\nk = 2\n", "t.conf:3: 'k' already set at line 2" },
		{ "[agent\n", "t.conf:1: section header without ']'" },
		{ "[Agent]\n", "t.conf:1: bad section header; expected [type] or [type name]" },
		{ "[token a b]\n", "t.conf:1: bad section name; use letters, digits, '-', '_' and '.'" },
		{ "[x]\n[x]\n", "t.conf:2: section [x] already defined at line 1" },
		{ "[x]\nBad-Key = 1\n", "t.conf:2: bad key; keys are lower-case letters, digits and '_'" },
	};
	struct kb_ini *ini = NULL;
	const struct kb_ini_entry *e;
	char path[PATH_MAX + 32], big[6000];
	size_t i;

	tap_is_int(kb_ini_parse("t.conf", good, strlen(good), &ini), 0, "good config parses");
	if (ini != NULL) {
		tap_is_int((int)ini->n_sections, 3, "three sections");
		e = kb_ini_get(&ini->sections[0], "socket");
		tap_ok(e && strcmp(e->value, "/run/kb/agent.sock") == 0 && e->line == 3,
		    "value trimmed, line kept");
		tap_is_str(ini->sections[1].name, "main", "section name");
		e = kb_ini_get(&ini->sections[1], "label");
		tap_ok(e && strcmp(e->value, "dev token") == 0, "inner spaces kept");
		tap_is_str(ini->sections[2].name, "second.one", "dotted name");
		tap_ok(kb_ini_get(&ini->sections[2], "label") == NULL, "absent key is NULL");
	}
	kb_ini_free(ini);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ini = NULL;
		tap_is_int(kb_ini_parse("t.conf", bad[i].text, strlen(bad[i].text), &ini),
		    KB_ERR_CONFIG, "bad config %zu refused", i);
		tap_is_str(kb_error_detail(KB_ERR_CONFIG), bad[i].want,
		    "bad config %zu names file and line", i);
		tap_ok(ini == NULL, "no output on error %zu", i);
	}
	tap_is_int(kb_ini_parse("t.conf", "[a]\nk = v\0x\n", 11, &ini), KB_ERR_CONFIG,
	    "NUL byte refused");
	memset(big, 'a', sizeof(big));
	memcpy(big, "[a]\nk = ", 8);
	tap_is_int(kb_ini_parse("t.conf", big, sizeof(big), &ini), KB_ERR_CONFIG,
	    "overlong line refused");
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	tap_is_int(kb_ini_load(path, &ini), KB_ERR_CONFIG, "missing file is a config error");
	tap_ok(strstr(kb_error_detail(KB_ERR_CONFIG), "cannot read config: cannot open /tmp/kb-test-common-") != NULL &&
	    strstr(kb_error_detail(KB_ERR_CONFIG), "/missing.conf") != NULL,
	    "message names the missing file, not garbled by nesting");
	tap_is_int(kb_ini_load(tmpdir, &ini), KB_ERR_CONFIG, "a directory is refused");
}

static void
test_secrets(void)
{
	struct kb_secret *s = NULL;
	char path[PATH_MAX + 32];

	tap_ok(kb_ct_equal("abc", 3, "abc", 3), "ct_equal equal");
	tap_ok(!kb_ct_equal("abc", 3, "abd", 3), "ct_equal differs");
	tap_ok(!kb_ct_equal("abc", 3, "abcd", 4), "ct_equal length differs");
	tap_ok(kb_ct_equal("", 0, "", 0), "ct_equal empty");

	snprintf(path, sizeof(path), "%s/pin", tmpdir);
	write_file(path, "123456\n", 0600);
	tap_is_int(kb_secret_read_file(path, &s), 0, "PIN file 0600 read");
	tap_ok(s && s->len == 6 && memcmp(s->data, "123456", 6) == 0,
	    "line ending stripped");
	kb_secret_free(&s);
	tap_ok(s == NULL, "secret_free clears the pointer");
	kb_secret_free(&s);
	kb_secret_free(NULL);

	write_file(path, "1234\r\n", 0600);
	tap_ok(kb_secret_read_file(path, &s) == 0 && s->len == 4, "CRLF stripped");
	kb_secret_free(&s);

	write_file(path, "123456\n", 0644);
	tap_is_int(kb_secret_read_file(path, &s), KB_ERR_CONFIG, "world-readable PIN file refused");
	tap_ok(strstr(kb_error_detail(KB_ERR_CONFIG), "chmod 600") != NULL,
	    "message says what to do");
	write_file(path, "\n", 0600);
	tap_is_int(kb_secret_read_file(path, &s), KB_ERR_CONFIG, "empty PIN refused");
	snprintf(path, sizeof(path), "%s/nope", tmpdir);
	tap_is_int(kb_secret_read_file(path, &s), KB_ERR_CONFIG, "missing PIN file");
	tap_is_int(kb_secret_read_file(tmpdir, &s), KB_ERR_CONFIG, "directory as PIN file");

	setenv("KB_TEST_PIN", "9876", 1);
	tap_ok(kb_secret_from_env("KB_TEST_PIN", &s) == 0 && s->len == 4, "PIN from env");
	kb_secret_free(&s);
	unsetenv("KB_TEST_PIN");
	tap_is_int(kb_secret_from_env("KB_TEST_PIN", &s), KB_ERR_CONFIG, "unset env refused");
	tap_ok(strstr(kb_error_detail(KB_ERR_CONFIG), "KB_TEST_PIN") != NULL,
	    "message names the variable");
}

static void
test_files(void)
{
	char path[PATH_MAX + 32], *text = NULL;
	struct stat st;
	size_t n;
	int r;

	snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
	tap_is_int(kb_mkdir_p(path, 0700), 0, "mkdir -p");
	tap_ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
	    "created with mode 0700");
	tap_is_int(kb_mkdir_p(path, 0700), 0, "mkdir -p on existing");
	snprintf(path, sizeof(path), "%s/a/file", tmpdir);
	tap_is_int(kb_file_write_atomic(path, "data", 4, 0600), 0, "atomic write");
	tap_ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode kept");
	tap_ok(kb_file_read(path, 100, &text, &n) == 0 && n == 4 &&
	    strcmp(text, "data") == 0, "read back");
	free(text);
	tap_is_int(kb_file_read(path, 3, &text, &n), KB_ERR_LIMIT, "read cap enforced");
	tap_is_int(kb_file_write_atomic(path, "new", 3, 0600), 0, "atomic overwrite");
	tap_ok(kb_file_read(path, 100, &text, &n) == 0 && strcmp(text, "new") == 0,
	    "overwrite visible");
	free(text);
	tap_is_int(kb_mkdir_p(path, 0700), KB_ERR_IO, "mkdir over a file refused");
	/* The build tree's ../SUBDIR/ case: t-isolate (the host) and t-dev. */
	text = NULL;
	r = kb_program_beside("test_common", "nothing", &text);
	tap_ok(r == 0 && text != NULL && strlen(text) > 12 &&
	    strcmp(text + strlen(text) - 12, "/test_common") == 0,
	    "this program is beside itself: %s", text ? text : "(none)");
	free(text);
	text = NULL;
	tap_is_int(kb_program_beside("kb-no-such-program", "common", &text),
	    KB_ERR_NOT_FOUND, "a program that is nowhere beside: NOT_FOUND");
	tap_ok(text == NULL, "and nothing given back");
}

static void
test_util(void)
{
	unsigned long long v;
	char small[4];
	unsigned char pad[8] = { 'a', 'b', ' ', ' ', ' ', ' ', ' ', ' ' };
	char out[16];

	tap_ok(kb_parse_ull("42", 0, 100, &v) == 0 && v == 42, "parse_ull");
	tap_is_int(kb_parse_ull("101", 0, 100, &v), KB_ERR_INVALID, "parse_ull above max");
	tap_is_int(kb_parse_ull("-1", 0, 100, &v), KB_ERR_INVALID, "parse_ull negative");
	tap_is_int(kb_parse_ull("4x", 0, 100, &v), KB_ERR_INVALID, "parse_ull junk");
	tap_is_int(kb_parse_ull("99999999999999999999999", 0, ULLONG_MAX, &v),
	    KB_ERR_INVALID, "parse_ull overflow");
	tap_is_int(kb_strlcpy(small, "abcdef", sizeof(small)), KB_ERR_LIMIT, "strlcpy cut");
	tap_is_str(small, "abc", "strlcpy terminates");
	kb_copy_padded(out, sizeof(out), pad, sizeof(pad));
	tap_is_str(out, "ab", "padded field trimmed");
	tap_ok(kb_random(out, sizeof(out)) == 0, "random");
	{
		char *sock;

		setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
		sock = kb_default_socket();
		tap_is_str(sock, "/run/user/1000/keybridge/agent.sock",
		    "default socket under XDG_RUNTIME_DIR");
		free(sock);
		setenv("XDG_RUNTIME_DIR", "relative", 1);
		sock = kb_default_socket();
		tap_is_str(sock, "/run/keybridge/agent.sock",
		    "a relative XDG_RUNTIME_DIR is ignored");
		free(sock);
		unsetenv("XDG_RUNTIME_DIR");
		sock = kb_default_socket();
		tap_is_str(sock, "/run/keybridge/agent.sock", "default socket without it");
		free(sock);
	}
}

int
main(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kb-test-common-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return tap_skip_all("cannot create a temp dir");
	test_errors();
	test_buf();
	test_b64();
	test_time();
	test_ini();
	test_secrets();
	test_files();
	test_util();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmpdir);
	return tap_done();
}
