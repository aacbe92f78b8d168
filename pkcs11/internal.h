/*
 * internal.h: what the files of pkcs11/ share and nobody else sees.
 *
 * call.c is the only file that calls a module's function list; every other
 * file goes through the p11c_* wrappers below, which log the raw CK_RV at
 * debug level, record a sentence with kb_error_set() and return a
 * KB_ERR_* code (pkcs11-provider's single choke point).
 */
#ifndef KB_PKCS11_INTERNAL_H
#define KB_PKCS11_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "kb_common.h"
#include "kb_pkcs11.h"

/* Caps on what a token may hand us (untrusted input). */
#define KB_P11_MAX_SLOTS      256
#define KB_P11_MAX_MECHS      1024
#define KB_P11_MAX_OBJECTS    (1024 * 1024)
#define KB_P11_MAX_ATTR       (64 * 1024)
#define KB_P11_MECH_CACHE     48
#define KB_P11_MAX_DATA       (64 * 1024 * 1024)

/*
 * Internal only: the session a call used is gone (CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED) or unusable (CKR_OPERATION_ACTIVE).  The session
 * runner replaces the session and tries once more; this value never
 * leaves pkcs11/ (it becomes KB_ERR_DEVICE if the retry fails too).
 */
#define KB_P11_RETRY_SESSION  (-1000)
/* Internal only: the module forgot our login; log in again and retry. */
#define KB_P11_RETRY_LOGIN    (-1001)

/* Connections (function lists) to an isolated module's host. */
#define KB_P11_HOST_CONNS     4

struct kb_p11_module {
	struct kb_p11_module *next;    /* registry list, under reg_lock */
	unsigned refs;
	char *path;                    /* canonical */
	void *dl;
	CK_FUNCTION_LIST_PTR fl;       /* in-process: the module's; isolated: fls[0] */
	bool finalize;                 /* we own C_Finalize */

	/*
	 * Isolated modules (isolate.c): the module runs in a keybridge-p11host
	 * child reached through p11-kit's RPC client; each of the n_fls lists
	 * is its own connection, and the host serves one call at a time per
	 * connection, so call.c borrows a free list for every call.  Session
	 * and object handles are the host's and valid on every list.
	 */
	bool isolated;
	CK_FUNCTION_LIST_PTR fls[KB_P11_HOST_CONNS];
	unsigned n_fls;                /* lists obtained (and initialised) */
	pthread_mutex_t pool_lock;     /* free list stack, host state */
	pthread_cond_t pool_cond;
	CK_FUNCTION_LIST_PTR free_fl[KB_P11_HOST_CONNS];
	unsigned n_free;
	pid_t host_pid;                /* 0 once reaped (never signal it again) */
	bool host_gone;                /* the host exited; every call fails */
	int host_status;               /* its wait status, when host_gone */
	/*
	 * The watchdog (isolate.c): a call on a connection that has not
	 * returned after call_timeout_ms gets the host killed, so that a
	 * stuck module fails its calls instead of holding agent threads
	 * for ever.  Under pool_lock.
	 */
	double busy_since[KB_P11_HOST_CONNS];   /* kb_now_mono(), 0: idle */
	unsigned call_timeout_ms;
	bool call_timeout_set;         /* by kb_p11_module_set_call_timeout */
	bool host_timed_out;           /* the watchdog killed it */
	bool wd_running, wd_stop;
	pthread_cond_t wd_cond;        /* CLOCK_MONOTONIC */
	pthread_t wd_thread;
};

/* Default for kb_p11_module_set_call_timeout. */
#define KB_P11_HOST_CALL_TIMEOUT_MS 60000

struct kb_p11_mech_entry {
	CK_MECHANISM_TYPE mech;
	CK_FLAGS flags;                /* 0 with present=false: not supported */
	bool present;
};

struct kb_p11_token {
	kb_p11_module *m;
	CK_SLOT_ID slot;
	char label[33];
	char serial[17];
	char model[17];
	char manufacturer[33];

	pthread_mutex_t lock;          /* pool, mechanism cache, login state */
	pthread_cond_t cond;
	CK_SESSION_HANDLE anchor;      /* never borrowed: see token.c */
	CK_SESSION_HANDLE *idle;       /* stack of idle sessions */
	unsigned n_idle;
	unsigned n_open;
	unsigned max;
	unsigned long reopened;

	pthread_mutex_t login_lock;    /* serialises C_Login */
	bool logged_in;
	bool pin_bad;                  /* the last PIN got CKR_PIN_INCORRECT */
	bool pin_locked;
	struct kb_secret *pin;         /* to log in again; wiped on close */
	unsigned long login_gen;       /* bumped on every successful login */

	struct kb_p11_mech_entry mechs[KB_P11_MECH_CACHE];
	unsigned n_mechs;
};

struct kb_p11_key {
	kb_p11_token *t;
	CK_OBJECT_HANDLE priv;         /* private or secret key, 0 if none */
	CK_OBJECT_HANDLE pub;          /* public key, 0 if none */
	enum kb_p11_key_type type;
	unsigned bits;
	enum kb_p11_curve curve;
	char *label;                   /* as found or created, for messages/URIs */
	unsigned char *id;
	size_t id_len;
};

/* pubkey.c: the public half as an EVP_PKEY (RSA and EC keys). */
typedef struct evp_pkey_st EVP_PKEY;
int kb_p11_public_evp(kb_p11_key *k, EVP_PKEY **out);

/* A borrowed session; the wrappers record the last raw CK_RV here. */
struct p11s {
	kb_p11_token *t;
	CK_SESSION_HANDLE h;
	CK_RV rv;
};

/* ------------------------------------------------------------- call.c */

/* Map a CK_RV to KB_ERR_* (0 for CKR_OK). */
int kb_p11_rv_to_err(CK_RV rv);
const char *kb_p11_rv_name(CK_RV rv);

/* Module-level calls (no session). */
int p11c_initialize(kb_p11_module *m, bool *already);
void p11c_finalize(kb_p11_module *m);
int p11c_get_slot_list(kb_p11_module *m, CK_SLOT_ID *slots, CK_ULONG *n);
int p11c_get_slot_info(kb_p11_module *m, CK_SLOT_ID slot, CK_SLOT_INFO *info);
int p11c_get_token_info(kb_p11_module *m, CK_SLOT_ID slot, CK_TOKEN_INFO *info);
int p11c_get_mechanism_info(kb_p11_module *m, CK_SLOT_ID slot,
    CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info, CK_RV *rv);
int p11c_init_token(kb_p11_module *m, CK_SLOT_ID slot, const struct kb_secret *so_pin,
    const unsigned char label[33]);   /* 32 padded bytes + NUL */
int p11c_open_session(kb_p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE *h);
void p11c_close_session(kb_p11_module *m, CK_SESSION_HANDLE h);

/* Session calls. */
int p11c_login(struct p11s *s, CK_USER_TYPE who, const struct kb_secret *pin);
int p11c_logout(struct p11s *s);
int p11c_init_pin(struct p11s *s, const struct kb_secret *pin);
int p11c_get_session_info(struct p11s *s, CK_SESSION_INFO *info);
int p11c_generate_key(struct p11s *s, CK_MECHANISM *mech, CK_ATTRIBUTE *tmpl,
    CK_ULONG n, CK_OBJECT_HANDLE *h);
int p11c_generate_key_pair(struct p11s *s, CK_MECHANISM *mech,
    CK_ATTRIBUTE *pub, CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv,
    CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv);
int p11c_create_object(struct p11s *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE *h);
int p11c_destroy_object(struct p11s *s, CK_OBJECT_HANDLE h);
/* rv-level result kept in s->rv so callers can tell ATTRIBUTE_SENSITIVE etc. */
int p11c_get_attrs(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n);
int p11c_set_attrs(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Find all objects matching tmpl, at most max; handles malloc'd. */
int p11c_find(struct p11s *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, size_t max,
    CK_OBJECT_HANDLE **out, size_t *nout);
int p11c_encrypt(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len);
int p11c_decrypt(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len);
int p11c_sign(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len);
int p11c_verify(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, const unsigned char *sig, size_t sig_len);
/* *out malloc'd. */
int p11c_wrap_key(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE wrapping,
    CK_OBJECT_HANDLE key, unsigned char **out, size_t *out_len);
int p11c_unwrap_key(struct p11s *s, CK_MECHANISM *mech, CK_OBJECT_HANDLE unwrapping,
    const unsigned char *in, size_t in_len, CK_ATTRIBUTE *tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE *h);
int p11c_generate_random(struct p11s *s, unsigned char *out, size_t n);

/*
 * For isolated modules: C_Initialize (OS locking) every list and check
 * that each one reached the host (p11-kit's client answers C_Initialize
 * with CKR_OK and stands in with "no connection" when it cannot connect);
 * C_Finalize every list.
 */
int p11c_initialize_lists(kb_p11_module *m);
void p11c_finalize_lists(kb_p11_module *m);

/* ---------------------------------------------------------- isolate.c */

/*
 * Start the host for m->path, connect m->n_fls lists and initialise them;
 * on failure everything started is stopped again.  reg_lock held.
 */
int kb_p11_isolate_start(kb_p11_module *m, const char *host_exe, const char *sock_dir);
/* Finalize the lists, unload the client, stop and reap the host. */
void kb_p11_isolate_stop(kb_p11_module *m);
/*
 * After a call on an isolated module failed with rv: true when the host
 * has exited (waits up to 200 ms for a host whose socket just closed to
 * become reapable).  Marks the module so that later calls fail at once.
 */
bool kb_p11_host_gone(kb_p11_module *m, CK_RV rv);

/* ----------------------------------------------------------- module.c */

void kb_p11_module_ref(kb_p11_module *m);
int kb_p11_slot_info(kb_p11_module *m, CK_SLOT_ID slot, struct kb_p11_token_info *out);

/* ------------------------------------------------------------ names.c */

/* "CKM_..." or NULL when unknown. */
const char *kb_p11_mech_name_or_null(unsigned long mech);

/* ------------------------------------------------------------ token.c */

/*
 * Run fn with a session borrowed from the pool.  Replaces the session and
 * retries once when fn reports KB_P11_RETRY_SESSION; logs in again with the
 * kept PIN and retries once when fn reports KB_P11_RETRY_LOGIN.
 * need_login: refuse with KB_ERR_PIN_INCORRECT when the last PIN was wrong.
 */
typedef int (*p11_session_fn)(struct p11s *s, void *ctx);
int kb_p11_with_session(kb_p11_token *t, bool need_login, p11_session_fn fn, void *ctx);
/* Cached mechanism check (the public kb_p11_token_check_mechanism). */
int kb_p11_need_mech(kb_p11_token *t, CK_MECHANISM_TYPE mech, CK_FLAGS flags);

/* -------------------------------------------------------------- uri.c */

/* Percent-encode value bytes into b (unreserved characters kept). */
int kb_p11_uri_append_enc(struct kb_buf *b, const unsigned char *p, size_t n, bool all);

/* -------------------------------------------------------------- key.c */

/* Read one attribute value, malloc'd (NULL with len 0 if empty). */
int kb_p11_read_attr(struct p11s *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
    size_t cap, unsigned char **out, size_t *len);
const char *kb_p11_key_type_name(enum kb_p11_key_type t);
/* A kb_p11_key for a secret key object just made (label/id from spec). */
int kb_p11_key_from_handle(kb_p11_token *t, CK_OBJECT_HANDLE h,
    const struct kb_p11_keyspec *spec, bool read_size, kb_p11_key **out);

/* ----------------------------------------------------------- pubkey.c */

int kb_p11_curve_from_params(const unsigned char *p, size_t n, enum kb_p11_curve *c);
int kb_p11_curve_params(enum kb_p11_curve c, const unsigned char **p, size_t *n);
unsigned kb_p11_curve_bytes(enum kb_p11_curve c);
unsigned kb_p11_curve_bits(enum kb_p11_curve c);

#endif /* KB_PKCS11_INTERNAL_H */
