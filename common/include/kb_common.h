/*
 * kb_common.h: the one public header of keybridge's common layer.
 *
 * Errors, logging, bounded buffers, secrets, base64url, files and time.
 * Nothing here knows about PKCS#11, HTTP or Key Vault; every other
 * component builds on it (pkcs11/, kv-client/, agent/, cli/).
 *
 * Conventions (after OpenSSH's ssherr.h / sshbuf.h):
 *  - functions that can fail return 0 or a negative KB_ERR_* code;
 *  - outputs are written only on success;
 *  - *_free() functions accept NULL.
 */
#ifndef KB_COMMON_H
#define KB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define KB_VERSION "0.1.0"

#if defined(__GNUC__)
#define KB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define KB_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define KB_PRINTF(f, a)
#define KB_WARN_UNUSED
#endif

/* ---------------------------------------------------------------- errors */

/*
 * One error vocabulary for the whole project.  Each code has a fixed
 * generic sentence (kb_err()) and maps to one documented CLI exit code
 * (kb_err_exit_code(), docs/exit-codes.md).  The sentence that names the
 * concrete thing ("module /x.so could not be loaded: ...") is recorded per
 * thread with kb_error_set() and read with kb_error_detail().
 */
enum {
	KB_OK = 0,
	KB_ERR_INTERNAL = -1,        /* a bug or an unexpected condition */
	KB_ERR_ALLOC = -2,           /* out of memory */
	KB_ERR_INVALID = -3,         /* bad input from a caller or a peer */
	KB_ERR_LIMIT = -4,           /* input larger than allowed */
	KB_ERR_IO = -5,              /* a file or socket operation failed */
	KB_ERR_CONFIG = -6,          /* configuration missing or wrong */
	KB_ERR_MODULE = -7,          /* PKCS#11 module could not be loaded */
	KB_ERR_NO_TOKEN = -8,        /* no token matches the selection */
	KB_ERR_PIN_INCORRECT = -9,   /* the token refused the PIN */
	KB_ERR_PIN_LOCKED = -10,     /* the PIN is locked on the token */
	KB_ERR_MECHANISM = -11,      /* the token lacks a needed mechanism */
	KB_ERR_NOT_FOUND = -12,      /* no such object/key/path */
	KB_ERR_DENIED = -13,         /* access denied */
	KB_ERR_CONFLICT = -14,       /* object exists / state conflict */
	KB_ERR_DEVICE = -15,         /* the token reported a device error */
	KB_ERR_UNREACHABLE = -16,    /* the agent could not be reached */
	KB_ERR_RUNNING = -17,        /* another instance holds the socket */
	KB_ERR_PROTOCOL = -18,       /* the peer spoke something unexpected */
	KB_ERR_CRYPTO = -19,         /* a cryptographic operation failed */
	KB_ERR_SIGNATURE = -20,      /* a signature did not verify */
	KB_ERR_USAGE = -21,          /* bad command line */
	KB_ERR_NOT_LOGGED_IN = -22,  /* the token needs a login first */
	KB_ERR_UNSUPPORTED = -23,    /* request not supported */
	KB_ERR_BUSY = -24,           /* busy for now; the same request may succeed later */
	KB_ERR__MIN = -24
};

/* Generic sentence for a code; never NULL. */
const char *kb_err(int code);
/* Stable symbolic name, e.g. "KB_ERR_PIN_LOCKED"; never NULL. */
const char *kb_err_name(int code);
/* Documented process exit code for a KB_ERR_* code (0 for KB_OK). */
int kb_err_exit_code(int code);

/*
 * Record a sentence about the last error in this thread and return code,
 * so that callers write: return kb_error_set(KB_ERR_IO, "cannot read %s", p);
 * The sentence must never contain a secret.
 */
int kb_error_set(int code, const char *fmt, ...) KB_PRINTF(2, 3);
/* The sentence recorded last in this thread, or kb_err(code) if none. */
const char *kb_error_detail(int code);
void kb_error_clear(void);

/* --------------------------------------------------------------- logging */

enum kb_log_level { KB_LOG_ERROR = 0, KB_LOG_WARN, KB_LOG_INFO, KB_LOG_DEBUG };

/* Logs go to stderr (journald picks them up under systemd). */
void kb_log_set_level(enum kb_log_level level);
enum kb_log_level kb_log_get_level(void);
int kb_log_level_parse(const char *s, enum kb_log_level *out);
void kb_log_set_prefix(const char *prog);
void kb_log(enum kb_log_level level, const char *fmt, ...) KB_PRINTF(2, 3);
#define kb_error(...) kb_log(KB_LOG_ERROR, __VA_ARGS__)
#define kb_warn(...)  kb_log(KB_LOG_WARN, __VA_ARGS__)
#define kb_info(...)  kb_log(KB_LOG_INFO, __VA_ARGS__)
#define kb_debug(...) do { if (kb_log_get_level() >= KB_LOG_DEBUG) \
	kb_log(KB_LOG_DEBUG, __VA_ARGS__); } while (0)

/* ------------------------------------------------------- bounded buffers */

/*
 * A growable byte buffer with a hard cap fixed at creation (curl's dynbuf,
 * OpenSSH's sshbuf).  Appending past the cap fails with KB_ERR_LIMIT and
 * leaves the buffer unchanged.  The content is always NUL-terminated
 * (the NUL is not counted in len) so text can be used directly.
 */
struct kb_buf {
	unsigned char *data;
	size_t len;
	size_t alloc;
	size_t cap;
	bool secret;   /* wipe on growth and free */
};

void kb_buf_init(struct kb_buf *b, size_t cap);
/* Like kb_buf_init, but every byte is wiped before memory is released. */
void kb_buf_init_secret(struct kb_buf *b, size_t cap);
int kb_buf_append_slow(struct kb_buf *b, const void *p, size_t n) KB_WARN_UNUSED;
/*
 * Append n bytes.  Inline when they fit what is allocated (a rendered
 * list page makes some 600 small appends); else kb_buf_append_slow
 * grows the buffer or refuses past the cap.
 */
static inline int KB_WARN_UNUSED
kb_buf_append(struct kb_buf *b, const void *p, size_t n)
{
	if (n <= b->cap - b->len && n < b->alloc - b->len) {
		if (n > 0)
			memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	return kb_buf_append_slow(b, p, n);
}
/*
 * Room for n more bytes allocated now, so that appends up to that size
 * do not grow the buffer step by step; a hint only: n past the cap is
 * trimmed to it, and a failed allocation leaves the buffer as it was.
 */
void kb_buf_reserve(struct kb_buf *b, size_t n);
int kb_buf_appendf(struct kb_buf *b, const char *fmt, ...) KB_PRINTF(2, 3) KB_WARN_UNUSED;
void kb_buf_reset(struct kb_buf *b);
void kb_buf_free(struct kb_buf *b);
/* Hand the content to the caller (malloc'd, NUL-terminated); buffer emptied. */
char *kb_buf_steal(struct kb_buf *b, size_t *len);

/* --------------------------------------------------------------- secrets */

/*
 * Secret bytes (PINs, tokens, key material) live in kb_secret: allocated
 * with mlock where the system allows it, wiped with OPENSSL_cleanse before
 * release, never printed.  data is NUL-terminated for convenience.
 */
struct kb_secret {
	unsigned char *data;
	size_t len;
	size_t alloc;
	bool locked;
};

int kb_secret_new(size_t len, struct kb_secret **out) KB_WARN_UNUSED;
int kb_secret_from(const void *p, size_t len, struct kb_secret **out) KB_WARN_UNUSED;
/* Wipes, unlocks, frees and clears *s.  Accepts NULL and *s == NULL. */
void kb_secret_free(struct kb_secret **s);
/* Constant-time comparison of two byte strings (length may leak). */
bool kb_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
void kb_wipe(void *p, size_t n);
/* Free a heap string after wiping it; accepts NULL. */
void kb_freezero_str(char *s);

/*
 * Read a PIN (or other short secret) from a file.  The file must be a
 * regular file not readable or writable by group or others; the first
 * line, without its line ending, is the secret.  At most 256 bytes.
 */
int kb_secret_read_file(const char *path, struct kb_secret **out) KB_WARN_UNUSED;
/* Read it from an environment variable (secure_getenv). */
int kb_secret_from_env(const char *var, struct kb_secret **out) KB_WARN_UNUSED;
/* Prompt on /dev/tty without echo. */
int kb_secret_prompt(const char *prompt, struct kb_secret **out) KB_WARN_UNUSED;

/* Fill p with n bytes from the kernel CSPRNG. */
int kb_random(void *p, size_t n) KB_WARN_UNUSED;

/* ------------------------------------------------------------- encodings */

/* base64url without padding (RFC 4648 section 5), as JWK and Key Vault use. */
char *kb_b64url_encode(const unsigned char *p, size_t n);
/*
 * Lenient decoder: accepts both alphabets (base64 and base64url), with or
 * without '=' padding.  Rejects whitespace, NULs and bad lengths.
 */
int kb_b64url_decode(const char *s, size_t slen, unsigned char **out,
    size_t *outlen) KB_WARN_UNUSED;
/* Lower-case hex. */
char *kb_hex_encode(const unsigned char *p, size_t n);
int kb_hex_decode(const char *s, unsigned char **out, size_t *outlen) KB_WARN_UNUSED;
/* Value of one hex digit (either case), or -1. */
int kb_hex_value(int c);

/* ----------------------------------------------------------------- files */

/* Read a whole file with a size cap.  The result is NUL-terminated. */
int kb_file_read(const char *path, size_t cap, char **out, size_t *len) KB_WARN_UNUSED;
/*
 * Write a file atomically (temporary file, fsync, rename, fsync of the
 * directory) with the given mode.
 */
int kb_file_write_atomic(const char *path, const void *p, size_t n,
    unsigned mode) KB_WARN_UNUSED;
/* mkdir -p with mode for the components it creates. */
int kb_mkdir_p(const char *path, unsigned mode) KB_WARN_UNUSED;
/* An executable regular file (stat, then access X_OK). */
bool kb_is_executable_file(const char *p);
/*
 * Another keybridge program beside the running one: DIR/name (installed
 * side by side), then DIR/../build_subdir/name (meson's build tree), DIR
 * being this program's directory.  0 and a malloc'd path, or
 * KB_ERR_NOT_FOUND when neither is an executable regular file.
 */
int kb_program_beside(const char *name, const char *build_subdir,
    char **out) KB_WARN_UNUSED;

/* ------------------------------------------------------------------ time */

/* Seconds on the monotonic clock. */
double kb_now_mono(void);
/* Unix time as a 64-bit value, safe past 2038. */
int64_t kb_now_unix(void);
/* RFC 3339 UTC ("2026-11-21T16:23:25Z") into buf (at least 32 bytes). */
int kb_time_format(int64_t t, char *buf, size_t n);
/* Parse RFC 3339 (UTC 'Z' or +hh:mm offsets, optional fractions). */
int kb_time_parse(const char *s, int64_t *out) KB_WARN_UNUSED;

/* ------------------------------------------------------------ ini config */

/*
 * A small INI reader: "[section]" or "[section name]" headers,
 * "key = value" lines, '#' and ';' comments, every entry remembering its
 * line so semantic errors can name file and line.  No continuation lines,
 * no quoting: a value is the text after '=' with spaces trimmed.
 * inih was considered; Debian builds it without INI_HANDLER_LINENO, so it
 * could not give line numbers to errors found after parsing.
 */
struct kb_ini_entry {
	char *key;
	char *value;
	unsigned line;
};

struct kb_ini_section {
	char *type;        /* "token" in "[token main]" */
	char *name;        /* "main", or NULL */
	unsigned line;
	struct kb_ini_entry *entries;
	size_t n_entries;
};

struct kb_ini {
	char *path;
	struct kb_ini_section *sections;
	size_t n_sections;
};

/* Parse text; path is used for messages only.  Errors name file:line. */
int kb_ini_parse(const char *path, const char *text, size_t len,
    struct kb_ini **out) KB_WARN_UNUSED;
/* Read (cap 1 MiB) and parse a file. */
int kb_ini_load(const char *path, struct kb_ini **out) KB_WARN_UNUSED;
void kb_ini_free(struct kb_ini *ini);
/* First entry with key in section, or NULL. */
const struct kb_ini_entry *kb_ini_get(const struct kb_ini_section *s,
    const char *key);

/* ------------------------------------------------------------- utilities */

/* Bounded string copy that always terminates; returns KB_ERR_LIMIT if cut. */
int kb_strlcpy(char *dst, const char *src, size_t n);
/* strdup that aborts on nothing: returns NULL on allocation failure. */
char *kb_strdup(const char *s);
/* Parse a decimal unsigned long long in [min,max]; whole string. */
int kb_parse_ull(const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out) KB_WARN_UNUSED;
/* Trim trailing spaces of a fixed-width, space-padded PKCS#11 field. */
void kb_copy_padded(char *dst, size_t dstlen, const unsigned char *src,
    size_t srclen);

/*
 * The agent's socket when neither the command line nor the config names
 * one: $XDG_RUNTIME_DIR/keybridge/agent.sock, else
 * /run/keybridge/agent.sock.  Shared by keybridged and keybridge so the two
 * can never disagree.  malloc'd; NULL on allocation failure.
 */
char *kb_default_socket(void);

/* Make the process undumpable and disable core files (ssh-agent). */
void kb_harden_process(void);

#endif /* KB_COMMON_H */
