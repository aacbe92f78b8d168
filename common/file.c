/* file.c: bounded reads and crash-safe writes. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int
kb_file_read(const char *path, size_t cap, char **out, size_t *len)
{
	struct kb_buf b;
	struct stat st;
	char chunk[8192];
	ssize_t n;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return kb_error_set(errno == ENOENT ? KB_ERR_NOT_FOUND : KB_ERR_IO,
		    "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kb_error_set(KB_ERR_IO, "%s is not a regular file", path);
	}
	kb_buf_init(&b, cap);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = kb_error_set(KB_ERR_IO, "cannot read %s: %s", path,
			    strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((r = kb_buf_append(&b, chunk, (size_t)n)) != 0) {
			if (r == KB_ERR_LIMIT)
				kb_error_set(r, "%s is larger than %zu bytes",
				    path, cap);
			break;
		}
	}
	close(fd);
	if (r == 0 && (*out = kb_buf_steal(&b, len)) == NULL)
		r = KB_ERR_ALLOC;
	kb_buf_free(&b);
	return r;
}

static int
fsync_dir_of(const char *path)
{
	char *copy, *dir;
	int fd, r = 0;

	if ((copy = kb_strdup(path)) == NULL)
		return KB_ERR_ALLOC;
	dir = dirname(copy);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		r = kb_error_set(KB_ERR_IO, "cannot open directory %s: %s",
		    dir, strerror(errno));
	else {
		if (fsync(fd) == -1)
			r = kb_error_set(KB_ERR_IO, "cannot sync %s: %s", dir,
			    strerror(errno));
		close(fd);
	}
	free(copy);
	return r;
}

int
kb_file_write_atomic(const char *path, const void *p, size_t n, unsigned mode)
{
	char tmp[PATH_MAX];
	const unsigned char *q = p;
	ssize_t w;
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return kb_error_set(KB_ERR_LIMIT, "path too long: %s", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return kb_error_set(KB_ERR_IO, "cannot create a file next to %s: %s",
		    path, strerror(errno));
	if (fchmod(fd, (mode_t)mode) == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot set mode on %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	while (n > 0) {
		w = write(fd, q, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = kb_error_set(KB_ERR_IO, "cannot write %s: %s", tmp,
			    strerror(errno));
			goto fail;
		}
		q += w;
		n -= (size_t)w;
	}
	if (fsync(fd) == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot sync %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		r = kb_error_set(KB_ERR_IO, "cannot rename %s to %s: %s", tmp,
		    path, strerror(errno));
		unlink(tmp);
		return r;
	}
	return fsync_dir_of(path);
 fail:
	close(fd);
	unlink(tmp);
	return r;
}

int
kb_mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i, n;

	if (kb_strlcpy(buf, path, sizeof(buf)) != 0 || buf[0] == '\0')
		return kb_error_set(KB_ERR_INVALID, "bad directory path");
	n = strlen(buf);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, (mode_t)mode) == -1 && errno != EEXIST)
			return kb_error_set(KB_ERR_IO, "cannot create directory %s: %s",
			    buf, strerror(errno));
		if (stat(buf, &st) == -1 || !S_ISDIR(st.st_mode))
			return kb_error_set(KB_ERR_IO, "%s is not a directory", buf);
		if (i < n)
			buf[i] = '/';
	}
	return 0;
}

bool
kb_is_executable_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int
kb_program_beside(const char *name, const char *build_subdir, char **out)
{
	char self[PATH_MAX], cand[PATH_MAX + 256], *slash;
	ssize_t n;
	int i;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			for (i = 0; i < 2; i++) {
				if (i == 0)
					snprintf(cand, sizeof(cand), "%s/%s", self, name);
				else
					snprintf(cand, sizeof(cand), "%s/../%s/%s", self,
					    build_subdir, name);
				if (kb_is_executable_file(cand))
					return (*out = kb_strdup(cand)) != NULL ?
					    0 : KB_ERR_ALLOC;
			}
		}
	}
	return kb_error_set(KB_ERR_NOT_FOUND, "%s is not beside this program",
	    name);
}
