/*
 * b64.c: base64url (RFC 4648 section 5) and hex.
 *
 * OpenSSL's EVP_EncodeBlock speaks only the standard alphabet with padding
 * and inserts nothing we want to strip, but its decoder accepts
 * whitespace and cannot take url-safe input; the codec is small enough to
 * own, and a fuzz target covers the decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
kb_b64url_encode(const unsigned char *p, size_t n)
{
	size_t olen, i, o = 0;
	char *out;
	uint32_t v;

	if (n > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	olen = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
	if ((out = malloc(olen + 1)) == NULL)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
		out[o++] = b64url_alpha[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return out;
}

/* Value of a character in either alphabet, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

int
kb_b64url_decode(const char *s, size_t slen, unsigned char **out,
    size_t *outlen)
{
	unsigned char *p = NULL;
	size_t i, o = 0, npad = 0, body;
	uint32_t acc = 0;
	int bits = 0, v;

	/* Padding is optional, but if present it must complete a quantum. */
	while (npad < slen && npad < 2 && s[slen - 1 - npad] == '=')
		npad++;
	body = slen - npad;
	if (npad > 0 && slen % 4 != 0)
		return kb_error_set(KB_ERR_INVALID, "base64 padding is wrong");
	if (body % 4 == 1)
		return kb_error_set(KB_ERR_INVALID, "base64 text has a bad length");
	if ((p = malloc(body / 4 * 3 + 3)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < body; i++) {
		if ((v = b64_value((unsigned char)s[i])) < 0) {
			free(p);
			return kb_error_set(KB_ERR_INVALID,
			    "base64 text has a character outside the alphabet");
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out = p;
	*outlen = o;
	return 0;
}

char *
kb_hex_encode(const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *out;
	size_t i;

	if (n > (SIZE_MAX - 1) / 2 || (out = malloc(n * 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

int
kb_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
kb_hex_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(s), i;
	unsigned char *p;
	int hi, lo;

	if (n % 2 != 0)
		return kb_error_set(KB_ERR_INVALID, "hex text has an odd length");
	if ((p = malloc(n / 2 + 1)) == NULL)
		return KB_ERR_ALLOC;
	for (i = 0; i < n / 2; i++) {
		hi = kb_hex_value((unsigned char)s[2 * i]);
		lo = kb_hex_value((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(p);
			return kb_error_set(KB_ERR_INVALID,
			    "hex text has a character that is not a hex digit");
		}
		p[i] = (unsigned char)(hi << 4 | lo);
	}
	*out = p;
	*outlen = n / 2;
	return 0;
}
