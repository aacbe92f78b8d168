/*
 * bench_json.c: kv-client's reader of Key Vault answers (kv-client/json.cc:
 * simdjson, then a cJSON tree) against cJSON_Parse, its baseline, on the
 * same text in the same run.  The text is a list page as keybridged sends
 * it: --items KeyItems (25, Key Vault's most a page), each a kid and its
 * attributes, and a nextLink.  Each side parses the page and frees the
 * tree, --seconds of CPU each, alternating in 10 slices; the figure is
 * pages a second and the ratio reader / cJSON.  Both trees are checked
 * equal first (tests/lib/jsoneq.h).
 *
 *   bench_json [--items N] [--seconds S] [--tap]
 *
 * --tap (the test suite): the checks as TAP, the figures as comments.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "jsoneq.h"

#define SLICES 10

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
make_page(int items, size_t *len)
{
	size_t cap = 1024 + (size_t)items * 400, at = 0;
	char *p = malloc(cap);
	int i;

	if (p == NULL)
		return NULL;
	at += (size_t)snprintf(p + at, cap - at, "{\"value\":[");
	for (i = 0; i < items; i++)
		at += (size_t)snprintf(p + at, cap - at, "%s{\"kid\":"
		    "\"https://127.0.0.1:44321/keys/kbbench-3f9a1c-%05d\","
		    "\"attributes\":{\"enabled\":true,\"created\":%d,\"updated\":%d,"
		    "\"recoveryLevel\":\"CustomizedRecoverable+Purgeable\","
		    "\"recoverableDays\":7,\"exportable\":false}}",
		    i ? "," : "", i, 1795339745 + i, 1795339745 + i);
	at += (size_t)snprintf(p + at, cap - at, "],\"nextLink\":"
	    "\"https://127.0.0.1:44321/keys?api-version=7.6&$skiptoken="
	    "kbbench-3f9a1c-%05d&maxresults=%d\"}", items - 1, items);
	*len = at;
	return p;
}

/* Parse and free for at least secs of CPU; pages done and CPU used. */
static int
run(bool reader, const char *text, size_t len, double secs, long *pages,
    double *used)
{
	double t0 = cpu_now(), t;
	const char *why;
	cJSON *j;
	long n = 0;

	do {
		for (int i = 0; i < 64; i++, n++) {
			j = reader ? kb_kv_json_parse(text, len, &why) :
			    cJSON_ParseWithLength(text, len);
			if (j == NULL)
				return -1;
			cJSON_Delete(j);
		}
		t = cpu_now() - t0;
	} while (t < secs);
	*pages += n;
	*used += t;
	return 0;
}

int
main(int argc, char **argv)
{
	double secs = 2, used[2] = { 0, 0 }, rate[2];
	long pages[2] = { 0, 0 };
	int items = 25, i, k;
	bool tap = false, same;
	const char *pfx;
	const char *why;
	cJSON *a, *b;
	char *text;
	size_t len;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--items") == 0 && i + 1 < argc)
			items = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--tap") == 0)
			tap = true;
		else {
			fprintf(stderr, "usage: bench_json [--items N] [--seconds S] [--tap]\n");
			return 2;
		}
	}
	if (items < 1 || items > 1000 || secs <= 0 || secs > 600) {
		fprintf(stderr, "bench_json: --items 1 to 1000, --seconds up to 600\n");
		return 2;
	}
	if ((text = make_page(items, &len)) == NULL)
		return 1;
	a = kb_kv_json_parse(text, len, &why);
	b = cJSON_ParseWithLength(text, len);
	same = a != NULL && b != NULL && jsoneq(a, b);
	if (tap)
		printf("1..2\n%s 1 - the reader's tree is cJSON_Parse's\n",
		    same ? "ok" : "not ok");
	if (!same) {
		fprintf(stderr, "bench_json: the two trees differ\n");
		return 1;
	}
	cJSON_Delete(a);
	cJSON_Delete(b);
	for (k = 0; k < SLICES; k++)
		for (i = 0; i < 2; i++) {
			int side = (k + i) % 2;   /* which goes first alternates */

			if (run(side == 0, text, len, secs / SLICES, &pages[side],
			    &used[side]) != 0) {
				if (tap)
					printf("not ok 2 - every parse of the page\n");
				fprintf(stderr, "bench_json: a parse failed\n");
				return 1;
			}
		}
	for (i = 0; i < 2; i++)
		rate[i] = (double)pages[i] / used[i];
	if (tap)
		printf("ok 2 - every parse of the page (%ld and %ld)\n", pages[0], pages[1]);
	pfx = tap ? "# " : "";
	printf("%spage: %d items, %zu bytes; one thread, malloc for the trees\n", pfx,
	    items, len);
	printf("%s%-28s %12s %12s %8s\n", pfx, "figure", "kv-client", "cJSON_Parse",
	    "ratio");
	printf("%s%-28s %12.0f %12.0f %8.2f\n", pfx, "pages/s (CPU)", rate[0], rate[1],
	    rate[0] / rate[1]);
	printf("%s%-28s %12.2f %12.2f %8.2f\n", pfx, "us a page", 1e6 / rate[0],
	    1e6 / rate[1], rate[1] / rate[0]);
	free(text);
	return 0;
}
