/*
 * tap.h: a minimal TAP producer for keybridge's C tests (meson runs them
 * with protocol 'tap'; .ci/run counts the "ok"/"not ok" lines).
 *
 *   tap_ok(cond, "name %d", i);   tap_is_int(got, want, "name");
 *   return tap_done();            prints the plan, returns the exit code
 */
#ifndef KB_TAP_H
#define KB_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int
tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define tap_ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define tap_is_int(got, want, ...) do { \
	long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
	if (!tap_ok(tap_g_ == tap_w_, __VA_ARGS__)) \
		printf("#   got %lld, want %lld\n", tap_g_, tap_w_); \
} while (0)
#define tap_is_str(got, want, ...) do { \
	const char *tap_gs_ = (got), *tap_ws_ = (want); \
	if (!tap_ok(tap_gs_ != NULL && tap_ws_ != NULL && strcmp(tap_gs_, tap_ws_) == 0, __VA_ARGS__)) \
		printf("#   got '%s', want '%s'\n", tap_gs_ ? tap_gs_ : "(null)", tap_ws_ ? tap_ws_ : "(null)"); \
} while (0)

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Skip the whole program with a reason (TAP "1..0 # SKIP"). */
static inline int
tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	return 0;	/* meson 1.0 counts a non-zero TAP exit as an error */
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
