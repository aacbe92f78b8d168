/*
 * error.c: the project's error vocabulary.
 *
 * One table gives each KB_ERR_* code its symbolic name, a generic sentence
 * and the CLI exit code documented in docs/exit-codes.md (a test checks the
 * doc against this table).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct kb_err_row {
	int code;
	const char *name;
	const char *msg;
	int exit_code;
};

static const struct kb_err_row err_table[] = {
	{ KB_OK, "KB_OK", "success", 0 },
	{ KB_ERR_INTERNAL, "KB_ERR_INTERNAL", "internal error", 1 },
	{ KB_ERR_ALLOC, "KB_ERR_ALLOC", "out of memory", 1 },
	{ KB_ERR_INVALID, "KB_ERR_INVALID", "invalid input", 13 },
	{ KB_ERR_LIMIT, "KB_ERR_LIMIT", "input exceeds a size limit", 13 },
	{ KB_ERR_IO, "KB_ERR_IO", "input/output error", 1 },
	{ KB_ERR_CONFIG, "KB_ERR_CONFIG", "configuration error", 3 },
	{ KB_ERR_MODULE, "KB_ERR_MODULE", "the PKCS#11 module could not be loaded", 5 },
	{ KB_ERR_NO_TOKEN, "KB_ERR_NO_TOKEN", "no token matches the selection", 5 },
	{ KB_ERR_PIN_INCORRECT, "KB_ERR_PIN_INCORRECT", "the token refused the PIN", 6 },
	{ KB_ERR_PIN_LOCKED, "KB_ERR_PIN_LOCKED", "the token's user PIN is locked", 7 },
	{ KB_ERR_MECHANISM, "KB_ERR_MECHANISM", "the token lacks a needed mechanism", 8 },
	{ KB_ERR_NOT_FOUND, "KB_ERR_NOT_FOUND", "not found", 9 },
	{ KB_ERR_DENIED, "KB_ERR_DENIED", "access denied", 10 },
	{ KB_ERR_CONFLICT, "KB_ERR_CONFLICT", "conflict with the current state", 11 },
	{ KB_ERR_DEVICE, "KB_ERR_DEVICE", "the token reported a device error", 5 },
	{ KB_ERR_UNREACHABLE, "KB_ERR_UNREACHABLE", "the agent could not be reached", 4 },
	{ KB_ERR_RUNNING, "KB_ERR_RUNNING", "another agent is already running", 12 },
	{ KB_ERR_PROTOCOL, "KB_ERR_PROTOCOL", "unexpected answer from the peer", 1 },
	{ KB_ERR_CRYPTO, "KB_ERR_CRYPTO", "cryptographic operation failed", 1 },
	{ KB_ERR_SIGNATURE, "KB_ERR_SIGNATURE", "signature is not valid", 14 },
	{ KB_ERR_USAGE, "KB_ERR_USAGE", "bad command line", 2 },
	{ KB_ERR_NOT_LOGGED_IN, "KB_ERR_NOT_LOGGED_IN", "the token is not logged in", 5 },
	{ KB_ERR_UNSUPPORTED, "KB_ERR_UNSUPPORTED", "not supported", 8 },
	{ KB_ERR_BUSY, "KB_ERR_BUSY", "busy; try again later", 15 },
};

static const struct kb_err_row *
err_row(int code)
{
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == code)
			return &err_table[i];
	return &err_table[1];	/* unknown codes are internal errors */
}

const char *
kb_err(int code)
{
	return err_row(code)->msg;
}

const char *
kb_err_name(int code)
{
	return err_row(code)->name;
}

int
kb_err_exit_code(int code)
{
	return err_row(code)->exit_code;
}

static __thread char err_detail[512];
static __thread int err_detail_code;

int
kb_error_set(int code, const char *fmt, ...)
{
	char tmp[sizeof(err_detail)], *c;
	va_list ap;

	/*
	 * Format into a local buffer first: callers may pass the previous
	 * detail (kb_error_detail()) as an argument, which lives in
	 * err_detail itself.
	 */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Details quote peers (a service's error text, a file's line): no
	 * control character reaches a terminal or a log line through one. */
	for (c = tmp; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	memcpy(err_detail, tmp, sizeof(err_detail));
	err_detail_code = code;
	return code;
}

const char *
kb_error_detail(int code)
{
	if (err_detail[0] != '\0' && err_detail_code == code)
		return err_detail;
	return kb_err(code);
}

void
kb_error_clear(void)
{
	err_detail[0] = '\0';
	err_detail_code = 0;
}
