/* log.c: leveled logging to stderr.  Callers never pass secrets. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

static enum kb_log_level log_level = KB_LOG_INFO;
static char log_prefix[32] = "keybridge";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
kb_log_set_level(enum kb_log_level level)
{
	log_level = level;
}

enum kb_log_level
kb_log_get_level(void)
{
	return log_level;
}

int
kb_log_level_parse(const char *s, enum kb_log_level *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum kb_log_level)i;
			return 0;
		}
	}
	return kb_error_set(KB_ERR_INVALID,
	    "unknown log level '%.32s'; use error, warn, info or debug", s);
}

void
kb_log_set_prefix(const char *prog)
{
	(void)kb_strlcpy(log_prefix, prog, sizeof(log_prefix));
}

void
kb_log(enum kb_log_level level, const char *fmt, ...)
{
	static const char *tags[] = { "error", "warning", "info", "debug" };
	char msg[1024], ts[32];
	size_t i;
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A log line is one line: control characters from peers are masked. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (kb_time_format(kb_now_unix(), ts, sizeof(ts)) != 0)
		ts[0] = '\0';
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s %s[%s]: %s\n", ts, log_prefix, tags[level], msg);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
