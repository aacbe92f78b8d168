/*
 * jarena.c: list pages parsed by cJSON into one block of memory.
 *
 * cJSON allocates every node, key and string of a tree on its own, and
 * frees them one by one; for a page of 25 keys that is some 700 malloc
 * and 700 free calls, a quarter of kv-client's CPU per page.  cJSON has
 * no per-call allocator, only process-wide hooks (cJSON_InitHooks), so:
 *
 *  - the hooks are installed once, before main (a constructor: no other
 *    thread can be inside cJSON yet), and are malloc and free unless
 *    the calling thread has opened an arena;
 *  - kb_jarena_parse opens one for the length of a parse: allocations
 *    bump a pointer in one block sized from the text; what does not fit
 *    goes to malloc ("spilled");
 *  - kb_jarena_discard frees the tree: frees of the block's own pointers
 *    are skipped (the block goes at once), spilled ones are freed.
 *
 * A pointer is the arena's only while that thread's arena is open and
 * the pointer lies inside its block, so memory malloc'd by cJSON before,
 * after or on other threads is freed as before.  Only kv-client's own
 * list walk (client.c, kb_kv_list) uses arenas: its trees never leave
 * it, and each() sees items read-only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "json.h"

#define JA_ALIGN 16

/* The arena the calling thread has open, or NULL. */
static __thread struct kb_jarena *ja_open;

static int
ja_owns(const struct kb_jarena *a, const void *p)
{
	uintptr_t u = (uintptr_t)p, b = (uintptr_t)a->base;

	return a->base != NULL && u >= b && u < b + a->cap;
}

static void *
ja_malloc(size_t n)
{
	struct kb_jarena *a = ja_open;
	size_t k;
	void *p;

	if (a == NULL)
		return malloc(n);
	k = (n + JA_ALIGN - 1) & ~(size_t)(JA_ALIGN - 1);
	if (k >= n && a->base != NULL && k <= a->cap - a->used) {
		p = a->base + a->used;
		a->used += k;
		return p;
	}
	if ((p = malloc(n)) != NULL)
		a->spilled++;
	return p;
}

static void
ja_free(void *p)
{
	struct kb_jarena *a = ja_open;

	if (a != NULL && ja_owns(a, p))
		return;
	free(p);
}

__attribute__((constructor)) static void
ja_install(void)
{
	cJSON_Hooks h = { ja_malloc, ja_free };

	cJSON_InitHooks(&h);
}

cJSON *
kb_jarena_parse(struct kb_jarena *a, const char *text, size_t len,
    const char **why)
{
	cJSON *tree;

	memset(a, 0, sizeof(*a));
	/*
	 * A page's tree takes 3 to 4 times its text (64-byte nodes, keys and
	 * strings copied); a larger one spills, which costs speed only.
	 */
	if (len <= (SIZE_MAX - 4096) / 4) {
		a->cap = 4 * len + 4096;
		if ((a->base = malloc(a->cap)) == NULL)
			a->cap = 0;
	}
	ja_open = a;
	tree = kb_kv_json_parse(text, len, why);
	ja_open = NULL;
	if (tree == NULL) {
		free(a->base);
		memset(a, 0, sizeof(*a));
	}
	return tree;
}

void
kb_jarena_discard(struct kb_jarena *a, cJSON *tree)
{
	if (tree != NULL && a->spilled > 0) {
		ja_open = a;
		cJSON_Delete(tree);
		ja_open = NULL;
	}
	free(a->base);
	memset(a, 0, sizeof(*a));
}
