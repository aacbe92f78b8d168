/*
 * jsoneq.h: two cJSON trees the same, in order (tests and fuzz targets).
 * cJSON_Compare looks object members up by name, so a repeated name
 * ({"d":1,"d":2}) compares its first value twice; this walks both lists.
 */
#ifndef KB_TEST_JSONEQ_H
#define KB_TEST_JSONEQ_H

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

static inline bool
jsoneq(const cJSON *a, const cJSON *b)
{
	const cJSON *x, *y;

	if (a == NULL || b == NULL)
		return a == b;
	if ((a->type & 0xff) != (b->type & 0xff))
		return false;
	if ((a->string == NULL) != (b->string == NULL) ||
	    (a->string != NULL && strcmp(a->string, b->string) != 0))
		return false;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsNumber(a))    /* -0 and 0 alike */
		return a->valuedouble == b->valuedouble;
	for (x = a->child, y = b->child; x != NULL && y != NULL; x = x->next, y = y->next)
		if (!jsoneq(x, y))
			return false;
	return x == NULL && y == NULL;
}

#endif /* KB_TEST_JSONEQ_H */
