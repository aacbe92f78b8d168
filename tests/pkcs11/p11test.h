/*
 * p11test.h: a fresh SoftHSM2 token in a temporary directory, for the
 * pkcs11/ tests and the benchmark.  Random PINs; the user PIN is also
 * written to a 0600 file so tools can read it on stdin (never argv).
 */
#ifndef KB_P11TEST_H
#define KB_P11TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_pkcs11.h"

struct p11t {
	char dir[256];
	char conf[320];
	char pinfile[320];
	char label[33];
	const char *module;
	kb_p11_module *m;
	kb_p11_token *t;
	struct kb_secret *pin;
	struct kb_secret *so_pin;
};

static inline int
p11t_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static inline void
p11t_rmtree(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, p11t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *
p11t_softhsm(void)
{
	const char *m = getenv("KB_SOFTHSM_MODULE");

	return m && *m ? m : KB_P11_DEFAULT_MODULE;
}

static inline int
p11t_random_pin(struct kb_secret **out)
{
	unsigned char raw[8];
	char *hex;
	int r;

	if ((r = kb_random(raw, sizeof(raw))) != 0)
		return r;
	if ((hex = kb_hex_encode(raw, sizeof(raw))) == NULL)
		return KB_ERR_ALLOC;
	r = kb_secret_from(hex, strlen(hex), out);
	kb_freezero_str(hex);
	kb_wipe(raw, sizeof(raw));
	return r;
}

/* Temp dir + softhsm2.conf; sets SOFTHSM2_CONF.  No module loaded yet. */
static inline int
p11t_prepare(struct p11t *x)
{
	char tokdir[300];
	FILE *f;

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/kbp11.XXXXXX");
	if (mkdtemp(x->dir) == NULL)
		return -1;
	snprintf(tokdir, sizeof(tokdir), "%s/tokens", x->dir);
	if (mkdir(tokdir, 0700) != 0)
		return -1;
	snprintf(x->conf, sizeof(x->conf), "%s/softhsm2.conf", x->dir);
	if ((f = fopen(x->conf, "w")) == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n", tokdir);
	fclose(f);
	setenv("SOFTHSM2_CONF", x->conf, 1);
	if (p11t_random_pin(&x->pin) != 0 || p11t_random_pin(&x->so_pin) != 0)
		return -1;
	snprintf(x->pinfile, sizeof(x->pinfile), "%s/user.pin", x->dir);
	if (kb_file_write_atomic(x->pinfile, x->pin->data, x->pin->len, 0600) != 0)
		return -1;
	return 0;
}

/* Initialise a token labelled label on module path, open it and log in. */
static inline int
p11t_token(struct p11t *x, const char *module, const char *label)
{
	struct kb_p11_uri sel;
	unsigned long slot;
	int r;

	x->module = module;
	snprintf(x->label, sizeof(x->label), "%s", label);
	if ((r = kb_p11_module_load(module, &x->m)) != 0)
		return r;
	if ((r = kb_p11_find_free_slot(x->m, &slot)) != 0)
		return r;
	if ((r = kb_p11_init_token(x->m, slot, label, x->so_pin, x->pin)) != 0)
		return r;
	memset(&sel, 0, sizeof(sel));
	sel.token = x->label;
	if ((r = kb_p11_token_open(x->m, &sel, 8, &x->t)) != 0)
		return r;
	return kb_p11_token_login(x->t, x->pin);
}

static inline void
p11t_cleanup(struct p11t *x)
{
	kb_p11_token_close(x->t);
	x->t = NULL;
	kb_p11_module_free(x->m);
	x->m = NULL;
	kb_secret_free(&x->pin);
	kb_secret_free(&x->so_pin);
	p11t_rmtree(x->dir);
}

/*
 * pkcs11-tool -O --login on x's token through module, its listing in
 * x->dir/name (the path into out).  The PIN goes through the child's
 * environment with --pin env:NAME, never argv: pkcs11-tool 0.23 reads a
 * PIN from stdin only when its stdout is a terminal.  Its stderr
 * (warnings about sensitive values) is dropped: unbuffered, it would land
 * in the middle of the buffered listing and split object blocks.
 * Returns system()'s status; the command line it ran goes to ran (if not
 * NULL), for a test that it holds no PIN.
 */
static inline int
p11t_tool_list(const struct p11t *x, const char *module, const char *name,
    char *out, size_t outlen, char *ran, size_t ranlen)
{
	char cmd[2048];
	int rc;

	snprintf(out, outlen, "%s/%s", x->dir, name);
	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module '%s' --token-label '%s' -O "
	    "--login --pin env:KB_TEST_P11_PIN < /dev/null > '%s' 2>/dev/null",
	    module, x->label, out);
	setenv("KB_TEST_P11_PIN", (const char *)x->pin->data, 1);
	rc = system(cmd);
	unsetenv("KB_TEST_P11_PIN");
	if (ran != NULL)
		snprintf(ran, ranlen, "%s", cmd);
	return rc;
}

static inline int
p11t_have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

#endif
