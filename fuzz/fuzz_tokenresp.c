/*
 * fuzz_tokenresp.c: kv-client's parsers of what token services answer:
 * the Entra ID token endpoint (kb_cred_token_answer), IMDS and App
 * Service (kb_cred_msi_answer, kb_cred_msi_refusal), App Service's
 * expires_on date (kb_cred_msi_date) and the exp of a JWT in a token
 * file (kb_cred_jwt_exp).
 *
 * The first byte picks the parser ('t' token endpoint 200, 'e' its
 * refusal, 'm' managed identity 200, 'r' its refusal, 'd' a date, 'j' a
 * JWT; any other byte picks one by its value modulo 6); for 'e' and 'r'
 * the second byte picks the HTTP status.  The rest is the input.
 *
 * Invariants: a success gives a token that kb_cred_token_ok accepts,
 * NUL-terminated, and an expiry in the future (at most a year ahead for
 * expires_in); a failure is one of the documented codes with a sentence
 * and leaves both outputs as they were; a date is -1 or a time between
 * 1970 and the year 9999 (give or take the offset); a JWT's exp is
 * never negative.  ASan and LSan catch the rest (the tree, the wiped
 * copies, the secret).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 9999-12-31T23:59:60 with the largest offset the parser takes (-14:59). */
#define MAX_OFFSET (14 * 3600 + 59 * 60)
#define MAX_DATE (253402300800LL + MAX_OFFSET)

static const long statuses[] = { 400, 401, 403, 404, 410, 429, 500, 503 };

static void
check_ok(int r, struct kb_secret *tok, int64_t exp, int64_t before,
    int64_t max_ahead)
{
	int64_t after = kb_now_unix();

	if (r != 0)
		return;
	if (tok == NULL || tok->data == NULL || tok->len == 0 ||
	    tok->len > KB_CRED_MAX_TOKEN || tok->data[tok->len] != '\0' ||
	    strlen((const char *)tok->data) != tok->len ||
	    !kb_cred_token_ok(tok->data, tok->len))
		abort();
	if (exp < before || (max_ahead > 0 && exp > after + max_ahead))
		abort();
}

/* A failure names itself and touches no output. */
static void
check_fail(int r, const struct kb_secret *tok, const struct kb_secret *tok0,
    int64_t exp, int64_t exp0)
{
	const char *d;

	if (r == 0)
		return;
	if (tok != tok0 || exp != exp0)
		abort();
	d = kb_error_detail(r);
	if (d == NULL || d[0] == '\0')
		abort();
}

static void
token_endpoint(long status, const unsigned char *p, size_t n)
{
	struct kb_secret sentinel, *tok = &sentinel;
	int64_t exp = -7, before = kb_now_unix();
	int r;

	memset(&sentinel, 0, sizeof(sentinel));
	r = kb_cred_token_answer("the token endpoint https://login.example",
	    "00000000-0000-0000-0000-000000000001", "tenant", status, p, n,
	    &tok, &exp);
	if (status != 200 && r != (status == 400 || status == 401 ?
	    KB_ERR_DENIED : KB_ERR_UNREACHABLE))
		abort();
	if (status == 200 && r != 0 && r != KB_ERR_PROTOCOL && r != KB_ERR_ALLOC)
		abort();
	check_fail(r, tok, &sentinel, exp, -7);
	/* expires_in is capped at a year; 0 is now. */
	check_ok(r, tok, exp, before, 86400 * 365);
	if (r == 0)
		kb_secret_free(&tok);
}

static void
msi(long status, const unsigned char *p, size_t n)
{
	struct kb_secret sentinel, *tok = &sentinel;
	int64_t exp = -7, before = kb_now_unix();
	int r;

	memset(&sentinel, 0, sizeof(sentinel));
	if (status != 200) {
		r = kb_cred_msi_refusal("the managed identity endpoint (IMDS) "
		    "http://169.254.169.254", n % 2 ? "client-id" : NULL, status,
		    p, n, n % 3 == 0);
		if (r != (status == 400 ? KB_ERR_CONFIG : status == 401 ||
		    status == 403 ? KB_ERR_DENIED : KB_ERR_UNREACHABLE) ||
		    kb_error_detail(r)[0] == '\0')
			abort();
		return;
	}
	r = kb_cred_msi_answer("the managed identity endpoint (App Service) "
	    "http://127.0.0.1:41234/msi/token", p, n, &tok, &exp);
	if (r != 0 && r != KB_ERR_PROTOCOL && r != KB_ERR_ALLOC)
		abort();
	check_fail(r, tok, &sentinel, exp, -7);
	/* expires_on may be any future time; only its sign is checked. */
	check_ok(r, tok, exp, before + 1, 0);
	if (r == 0)
		kb_secret_free(&tok);
}

static void
date(const unsigned char *p, size_t n)
{
	char *s;
	int64_t t;

	if ((s = malloc(n + 1)) == NULL)
		return;
	memcpy(s, p, n);
	s[n] = '\0';
	t = kb_cred_msi_date(s);
	if (t != -1 && (t < -MAX_OFFSET || t > MAX_DATE))
		abort();
	free(s);
}

static void
jwt(const unsigned char *p, size_t n)
{
	int64_t e = kb_cred_jwt_exp(p, n);

	if (e < 0 || (e != 0 && memchr(p, '.', n) == NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char picks[] = "temrdj";
	const char *pick;
	int which;
	long status;

	if (size < 1)
		return 0;
	pick = data[0] != '\0' ? strchr(picks, data[0]) : NULL;
	which = pick != NULL ? pick[0] : picks[data[0] % 6];
	data++;
	size--;
	if (which == 'e' || which == 'r') {
		if (size < 1)
			return 0;
		status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
		data++;
		size--;
	} else {
		status = 200;
	}
	switch (which) {
	case 't':
	case 'e':
		token_endpoint(status, data, size);
		break;
	case 'm':
	case 'r':
		msi(status, data, size);
		break;
	case 'd':
		date(data, size);
		break;
	default:
		jwt(data, size);
		break;
	}
	kb_error_clear();
	return 0;
}
