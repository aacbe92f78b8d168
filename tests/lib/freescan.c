/*
 * freescan.c: an LD_PRELOAD module for tests that looks into every heap
 * block as it is freed, for secrets that should have been wiped first.
 *
 *   KB_FREESCAN_NEEDLES  up to 16 needles, comma-separated (no commas in a
 *                        needle; 8 to 127 bytes each)
 *   KB_FREESCAN_LOG      a file each hit is appended to, as one line:
 *                        "hit NEEDLE-INDEX BLOCK-SIZE PID"
 *
 * free() and realloc() are replaced (realloc as malloc, copy, free, so a
 * moved block is looked at too); the blocks come from glibc's allocator
 * all the same (__libc_malloc, __libc_free).  Memory a library keeps and
 * never frees (its buffers, pools from mmap) is not seen: this catches
 * copies freed without a wipe, not copies kept.  Not for sanitizer
 * builds, which have allocators of their own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE    /* memmem, malloc_usable_size */
#endif
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEEDLES_MAX 16
#define NEEDLE_CAP 128

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

static char needle[NEEDLES_MAX][NEEDLE_CAP];
static size_t needle_len[NEEDLES_MAX];
static int needles;
static int log_fd = -1;

__attribute__((constructor)) static void
freescan_init(void)
{
	const char *e = getenv("KB_FREESCAN_NEEDLES"), *l;
	const char *log = getenv("KB_FREESCAN_LOG");
	size_t n;

	if (e == NULL || log == NULL)
		return;
	while (*e != '\0' && needles < NEEDLES_MAX) {
		l = strchr(e, ',');
		n = l != NULL ? (size_t)(l - e) : strlen(e);
		if (n >= 8 && n < NEEDLE_CAP) {
			memcpy(needle[needles], e, n);
			needle_len[needles++] = n;
		}
		e += n;
		if (*e == ',')
			e++;
	}
	log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static void
scan(void *p)
{
	char line[96];
	size_t size;
	int i, n;

	if (p == NULL || needles == 0 || log_fd < 0)
		return;
	size = malloc_usable_size(p);
	for (i = 0; i < needles; i++) {
		if (memmem(p, size, needle[i], needle_len[i]) == NULL)
			continue;
		n = snprintf(line, sizeof(line), "hit %d %zu %d\n", i, size,
		    (int)getpid());
		if (n > 0 && write(log_fd, line, (size_t)n) < 0)
			return;
	}
}

void
free(void *p)
{
	scan(p);
	__libc_free(p);
}

void *
realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return __libc_malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	if ((q = __libc_malloc(n)) == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}
