/*
 * ini.c: the config reader (see kb_common.h for the format and for why
 * not inih).  Pure: parses a buffer, does no I/O except in kb_ini_load,
 * so the fuzz target drives kb_ini_parse directly.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INI_MAX_LINE 4096
#define INI_MAX_SECTIONS 1024
#define INI_MAX_ENTRIES 1024

static bool
ini_is_word(const char *s, size_t n, bool name)
{
	size_t i;

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (islower(c) || isdigit(c) || c == '_')
			continue;
		if (name && (isupper(c) || c == '-' || c == '.'))
			continue;
		return false;
	}
	return true;
}

static char *
ini_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void
ini_trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
	    (*s)[*n - 1] == '\r'))
		(*n)--;
}

static int
ini_add_section(struct kb_ini *ini, const char *p, size_t n, unsigned line)
{
	struct kb_ini_section *s, *ns;
	const char *sp;
	size_t tlen, i;
	char *type = NULL, *name = NULL;

	if (ini->n_sections >= INI_MAX_SECTIONS)
		return kb_error_set(KB_ERR_CONFIG, "%s:%u: too many sections",
		    ini->path, line);
	sp = memchr(p, ' ', n);
	tlen = sp ? (size_t)(sp - p) : n;
	if (!ini_is_word(p, tlen, false))
		return kb_error_set(KB_ERR_CONFIG,
		    "%s:%u: bad section header; expected [type] or [type name]",
		    ini->path, line);
	if (sp != NULL) {
		const char *np = sp;
		size_t nlen = n - tlen;
		ini_trim(&np, &nlen);
		if (!ini_is_word(np, nlen, true))
			return kb_error_set(KB_ERR_CONFIG,
			    "%s:%u: bad section name; use letters, digits, '-', '_' and '.'",
			    ini->path, line);
		if ((name = ini_strndup(np, nlen)) == NULL)
			return KB_ERR_ALLOC;
	}
	if ((type = ini_strndup(p, tlen)) == NULL) {
		free(name);
		return KB_ERR_ALLOC;
	}
	for (i = 0; i < ini->n_sections; i++) {
		s = &ini->sections[i];
		if (strcmp(s->type, type) == 0 &&
		    ((s->name == NULL && name == NULL) ||
		    (s->name != NULL && name != NULL && strcmp(s->name, name) == 0))) {
			kb_error_set(KB_ERR_CONFIG,
			    "%s:%u: section [%s%s%s] already defined at line %u",
			    ini->path, line, type, name ? " " : "",
			    name ? name : "", s->line);
			free(type);
			free(name);
			return KB_ERR_CONFIG;
		}
	}
	ns = realloc(ini->sections, (ini->n_sections + 1) * sizeof(*ns));
	if (ns == NULL) {
		free(type);
		free(name);
		return KB_ERR_ALLOC;
	}
	ini->sections = ns;
	s = &ns[ini->n_sections++];
	memset(s, 0, sizeof(*s));
	s->type = type;
	s->name = name;
	s->line = line;
	return 0;
}

static int
ini_add_entry(struct kb_ini *ini, const char *p, size_t n, unsigned line)
{
	struct kb_ini_section *s;
	struct kb_ini_entry *e;
	const char *eq, *k, *v;
	size_t klen, vlen, i;

	if (ini->n_sections == 0)
		return kb_error_set(KB_ERR_CONFIG,
		    "%s:%u: setting outside any section", ini->path, line);
	s = &ini->sections[ini->n_sections - 1];
	if ((eq = memchr(p, '=', n)) == NULL)
		return kb_error_set(KB_ERR_CONFIG,
		    "%s:%u: expected 'key = value'", ini->path, line);
	k = p;
	klen = (size_t)(eq - p);
	v = eq + 1;
	vlen = n - klen - 1;
	ini_trim(&k, &klen);
	ini_trim(&v, &vlen);
	if (!ini_is_word(k, klen, false))
		return kb_error_set(KB_ERR_CONFIG,
		    "%s:%u: bad key; keys are lower-case letters, digits and '_'",
		    ini->path, line);
	if (vlen == 0)
		return kb_error_set(KB_ERR_CONFIG, "%s:%u: '%.*s' has no value",
		    ini->path, line, (int)klen, k);
	for (i = 0; i < s->n_entries; i++)
		if (strlen(s->entries[i].key) == klen &&
		    memcmp(s->entries[i].key, k, klen) == 0)
			return kb_error_set(KB_ERR_CONFIG,
			    "%s:%u: '%.*s' already set at line %u", ini->path,
			    line, (int)klen, k, s->entries[i].line);
	if (s->n_entries >= INI_MAX_ENTRIES)
		return kb_error_set(KB_ERR_CONFIG, "%s:%u: too many settings",
		    ini->path, line);
	e = realloc(s->entries, (s->n_entries + 1) * sizeof(*e));
	if (e == NULL)
		return KB_ERR_ALLOC;
	s->entries = e;
	e = &e[s->n_entries];
	if ((e->key = ini_strndup(k, klen)) == NULL)
		return KB_ERR_ALLOC;
	if ((e->value = ini_strndup(v, vlen)) == NULL) {
		free(e->key);
		return KB_ERR_ALLOC;
	}
	e->line = line;
	s->n_entries++;
	return 0;
}

int
kb_ini_parse(const char *path, const char *text, size_t len,
    struct kb_ini **out)
{
	struct kb_ini *ini = NULL;
	const char *p = text, *end = text + len, *nl, *l;
	size_t n;
	unsigned line = 0;
	int r = 0;

	if ((ini = calloc(1, sizeof(*ini))) == NULL)
		return KB_ERR_ALLOC;
	if ((ini->path = kb_strdup(path ? path : "(config)")) == NULL) {
		free(ini);
		return KB_ERR_ALLOC;
	}
	if (memchr(text, '\0', len) != NULL) {
		r = kb_error_set(KB_ERR_CONFIG, "%s: contains a NUL byte",
		    ini->path);
		goto out;
	}
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		l = p;
		p = nl ? nl + 1 : end;
		if (n > INI_MAX_LINE) {
			r = kb_error_set(KB_ERR_CONFIG,
			    "%s:%u: line longer than %d bytes", ini->path, line,
			    INI_MAX_LINE);
			goto out;
		}
		ini_trim(&l, &n);
		if (n == 0 || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			if (l[n - 1] != ']' || n < 3) {
				r = kb_error_set(KB_ERR_CONFIG,
				    "%s:%u: section header without ']'",
				    ini->path, line);
				goto out;
			}
			l++;
			n -= 2;
			ini_trim(&l, &n);
			r = ini_add_section(ini, l, n, line);
		} else
			r = ini_add_entry(ini, l, n, line);
		if (r != 0)
			goto out;
	}
 out:
	if (r != 0) {
		kb_ini_free(ini);
		return r;
	}
	*out = ini;
	return 0;
}

int
kb_ini_load(const char *path, struct kb_ini **out)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if ((r = kb_file_read(path, KB_INI_MAX_FILE, &text, &len)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "cannot read config: %s",
		    kb_error_detail(r));
	r = kb_ini_parse(path, text, len, out);
	free(text);
	return r;
}

void
kb_ini_free(struct kb_ini *ini)
{
	size_t i, j;

	if (ini == NULL)
		return;
	for (i = 0; i < ini->n_sections; i++) {
		for (j = 0; j < ini->sections[i].n_entries; j++) {
			free(ini->sections[i].entries[j].key);
			free(ini->sections[i].entries[j].value);
		}
		free(ini->sections[i].entries);
		free(ini->sections[i].type);
		free(ini->sections[i].name);
	}
	free(ini->sections);
	free(ini->path);
	free(ini);
}

const struct kb_ini_entry *
kb_ini_get(const struct kb_ini_section *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_entries; i++)
		if (strcmp(s->entries[i].key, key) == 0)
			return &s->entries[i];
	return NULL;
}
