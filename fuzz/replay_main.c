/*
 * replay_main.c: run a fuzz target over files (p11-kit's fuzz/ habit), so
 * the seed corpus and any crash file replay without libFuzzer.
 * Usage: replay_X FILE|DIR...   (no argument: read one input on stdin)
 */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t got;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > (64u << 20) || (buf = realloc(buf, cap)) == NULL) {
				fprintf(stderr, "%s too large\n", path);
				return 1;
			}
		}
		got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	if (f != stdin)
		fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	struct stat st;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d;
	int i, count = 0, rc = 0;

	if (argc < 2)
		return run_file("-");
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if ((d = opendir(argv[i])) == NULL)
				return 1;
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
				rc |= run_file(path);
				count++;
			}
			closedir(d);
		} else {
			rc |= run_file(argv[i]);
			count++;
		}
	}
	printf("ok 1 - replayed %d inputs without a crash\n1..1\n", count);
	return rc;
}
