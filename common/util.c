/* util.c: small string helpers and process hardening. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "internal.h"

int
kb_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (n == 0)
		return KB_ERR_LIMIT;
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return KB_ERR_LIMIT;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

char *
kb_strdup(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

int
kb_parse_ull(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v;
	char *end = NULL;

	if (s == NULL || *s < '0' || *s > '9')
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
 bad:
	return kb_error_set(KB_ERR_INVALID,
	    "'%.40s' is not a whole number from %llu to %llu",
	    s ? s : "", min, max);
}

void
kb_copy_padded(char *dst, size_t dstlen, const unsigned char *src,
    size_t srclen)
{
	size_t n = srclen;

	if (dstlen == 0)
		return;
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n > dstlen - 1)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

char *
kb_default_socket(void)
{
	const char *rt = secure_getenv("XDG_RUNTIME_DIR");
	struct kb_buf b;

	if (rt == NULL || rt[0] != '/')
		return kb_strdup("/run/keybridge/agent.sock");
	kb_buf_init(&b, 4096);
	if (kb_buf_appendf(&b, "%s/keybridge/agent.sock", rt) != 0) {
		kb_buf_free(&b);
		return NULL;
	}
	return kb_buf_steal(&b, NULL);
}

void
kb_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	/* ssh-agent: no core files, no ptrace by same-uid processes. */
	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
