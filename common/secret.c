/*
 * secret.c: memory for PINs, tokens and key bytes.
 *
 * Secrets are mlock'ed where the system allows it (not fatal if not: an
 * unprivileged process may have a small RLIMIT_MEMLOCK), wiped with
 * OPENSSL_cleanse before release, and compared in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

int
kb_secret_new(size_t len, struct kb_secret **out)
{
	struct kb_secret *s = NULL;

	if (len > 1024 * 1024)
		return kb_error_set(KB_ERR_LIMIT, "secret larger than 1 MiB");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return KB_ERR_ALLOC;
	s->alloc = len + 1;
	if ((s->data = calloc(1, s->alloc)) == NULL) {
		free(s);
		return KB_ERR_ALLOC;
	}
	s->locked = mlock(s->data, s->alloc) == 0;
	s->len = len;
	*out = s;
	return 0;
}

int
kb_secret_from(const void *p, size_t len, struct kb_secret **out)
{
	struct kb_secret *s = NULL;
	int r;

	if ((r = kb_secret_new(len, &s)) != 0)
		return r;
	if (len > 0)
		memcpy(s->data, p, len);
	*out = s;
	return 0;
}

void
kb_secret_free(struct kb_secret **sp)
{
	struct kb_secret *s;

	if (sp == NULL || (s = *sp) == NULL)
		return;
	if (s->data != NULL) {
		OPENSSL_cleanse(s->data, s->alloc);
		if (s->locked)
			munlock(s->data, s->alloc);
		free(s->data);
	}
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

bool
kb_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	if (alen == 0)
		return true;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void
kb_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void
kb_freezero_str(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Strip one trailing "\n" or "\r\n" and reject anything else odd. */
static int
secret_take_line(const unsigned char *p, size_t n, const char *what,
    struct kb_secret **out)
{
	size_t len = 0;

	while (len < n && p[len] != '\n' && p[len] != '\r') {
		if (p[len] == '\0')
			return kb_error_set(KB_ERR_INVALID,
			    "%s contains a NUL byte", what);
		len++;
	}
	if (len == 0)
		return kb_error_set(KB_ERR_INVALID, "%s is empty", what);
	return kb_secret_from(p, len, out);
}

int
kb_secret_read_file(const char *path, struct kb_secret **out)
{
	unsigned char raw[KB_SECRET_FILE_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd == -1)
		return kb_error_set(errno == ENOENT ? KB_ERR_CONFIG : KB_ERR_IO,
		    "cannot open PIN file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kb_error_set(KB_ERR_CONFIG,
		    "PIN file %s is not a regular file", path);
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return kb_error_set(KB_ERR_CONFIG,
		    "PIN file %s is accessible by group or others (mode %04o); "
		    "run chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		    path);
	}
	while (got < sizeof(raw)) {
		n = read(fd, raw + got, sizeof(raw) - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = kb_error_set(KB_ERR_IO, "cannot read PIN file %s: %s",
			    path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > KB_SECRET_FILE_MAX + 1) {
		r = kb_error_set(KB_ERR_LIMIT,
		    "PIN file %s is larger than %d bytes", path,
		    KB_SECRET_FILE_MAX);
		goto out;
	}
	r = secret_take_line(raw, got, "the PIN file", out);
	if (r == KB_ERR_INVALID)
		r = kb_error_set(KB_ERR_CONFIG, "PIN file %s: %s", path,
		    kb_error_detail(r));
 out:
	OPENSSL_cleanse(raw, sizeof(raw));
	close(fd);
	return r;
}

int
kb_secret_from_env(const char *var, struct kb_secret **out)
{
	const char *v = secure_getenv(var);

	if (v == NULL || *v == '\0')
		return kb_error_set(KB_ERR_CONFIG,
		    "environment variable %s holding the PIN is not set", var);
	if (strlen(v) > KB_SECRET_FILE_MAX)
		return kb_error_set(KB_ERR_LIMIT,
		    "environment variable %s is longer than %d bytes", var,
		    KB_SECRET_FILE_MAX);
	return secret_take_line((const unsigned char *)v, strlen(v),
	    "the PIN variable", out);
}

int
kb_secret_prompt(const char *prompt, struct kb_secret **out)
{
	unsigned char line[KB_SECRET_FILE_MAX + 2];
	struct termios old, quiet;
	size_t len = 0;
	ssize_t n;
	char c;
	int fd, r;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) == -1)
		return kb_error_set(KB_ERR_CONFIG,
		    "no terminal to prompt for the PIN on; use pin_file or pin_env");
	if (tcgetattr(fd, &old) == -1) {
		close(fd);
		return kb_error_set(KB_ERR_IO, "cannot read terminal settings");
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 ||
	    tcsetattr(fd, TCSAFLUSH, &quiet) == -1) {
		close(fd);
		return kb_error_set(KB_ERR_IO, "cannot switch off terminal echo");
	}
	for (;;) {
		n = read(fd, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		if (len < sizeof(line))
			line[len++] = (unsigned char)c;
	}
	(void)tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) {
		/* nothing to do: the prompt line stays unterminated */
	}
	close(fd);
	c = 0;
	if (len > KB_SECRET_FILE_MAX)
		r = kb_error_set(KB_ERR_LIMIT, "PIN longer than %d bytes",
		    KB_SECRET_FILE_MAX);
	else
		r = secret_take_line(line, len, "the PIN", out);
	OPENSSL_cleanse(line, sizeof(line));
	return r;
}

int
kb_random(void *p, size_t n)
{
	unsigned char *q = p;
	ssize_t got;

	while (n > 0) {
		got = getrandom(q, n > 256 ? 256 : n, 0);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return kb_error_set(KB_ERR_IO,
			    "cannot read the system random generator: %s",
			    strerror(errno));
		q += got;
		n -= (size_t)got;
	}
	return 0;
}
