/*
 * fuzz_route.c: the agent's request router (agent/kvroute.c).  The first
 * byte picks the method, the rest is the path.  Checks the promises of
 * kvroute.h: strings returned point into the path, a name comes with an
 * operation on a key, a version only with a name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvroute.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const char *p, const char *buf, size_t n)
{
	if (p != NULL && (p < buf || p > buf + n))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {
		"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "get"
	};
	struct kv_route rt;
	const char *m;
	char *path;

	if (size == 0)
		return 0;
	m = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	if ((path = malloc(size)) == NULL)
		return 0;
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	kv_route_parse(path, m, &rt);
	inside(rt.vault, path, size);
	inside(rt.name, path, size);
	inside(rt.version, path, size);
	if (rt.version != NULL && rt.name == NULL)
		abort();
	if (rt.op != OP_NONE && rt.allow == NULL)
		abort();
	if (rt.op == OP_NONE && (rt.name != NULL || rt.version != NULL) &&
	    rt.allow == NULL)
		abort();
	free(path);
	return 0;
}
