/* buf.c: bounded, growable byte buffers (curl's dynbuf, OpenSSH's sshbuf). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

void
kb_buf_init(struct kb_buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
kb_buf_init_secret(struct kb_buf *b, size_t cap)
{
	kb_buf_init(b, cap);
	b->secret = true;
}

/* Make room for n more bytes plus the terminating NUL. */
static int
buf_reserve(struct kb_buf *b, size_t n)
{
	size_t want, nalloc;
	unsigned char *p;

	if (n > b->cap - b->len)	/* len <= cap always holds */
		return kb_error_set(KB_ERR_LIMIT,
		    "data exceeds the limit of %zu bytes", b->cap);
	want = b->len + n + 1;
	if (want <= b->alloc)
		return 0;
	nalloc = b->alloc ? b->alloc : 64;
	while (nalloc < want)
		nalloc = nalloc > SIZE_MAX / 2 ? want : nalloc * 2;
	if (b->secret) {
		/* Never leave a copy of secret bytes in freed memory. */
		if ((p = malloc(nalloc)) == NULL)
			return KB_ERR_ALLOC;
		if (b->data != NULL) {
			memcpy(p, b->data, b->len + 1);
			OPENSSL_cleanse(b->data, b->alloc);
			free(b->data);
		}
	} else if ((p = realloc(b->data, nalloc)) == NULL)
		return KB_ERR_ALLOC;
	b->data = p;
	b->alloc = nalloc;
	return 0;
}

void
kb_buf_reserve(struct kb_buf *b, size_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	if (buf_reserve(b, n) == 0)
		b->data[b->len] = '\0';
}

int
kb_buf_append_slow(struct kb_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = buf_reserve(b, n)) != 0)
		return r;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
kb_buf_appendf(struct kb_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256], *big = NULL;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return KB_ERR_INTERNAL;
	if ((size_t)n < sizeof(small))
		return kb_buf_append(b, small, (size_t)n);
	if ((big = malloc((size_t)n + 1)) == NULL)
		return KB_ERR_ALLOC;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r = kb_buf_append(b, big, (size_t)n);
	free(big);
	return r;
}

void
kb_buf_reset(struct kb_buf *b)
{
	if (b->data != NULL) {
		if (b->secret)
			OPENSSL_cleanse(b->data, b->alloc);
		b->data[0] = '\0';
	}
	b->len = 0;
}

void
kb_buf_free(struct kb_buf *b)
{
	if (b == NULL)
		return;
	if (b->data != NULL && b->secret)
		OPENSSL_cleanse(b->data, b->alloc);
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

char *
kb_buf_steal(struct kb_buf *b, size_t *len)
{
	char *p;

	if (b->data == NULL && buf_reserve(b, 0) != 0)
		return NULL;
	p = (char *)b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}
