/*
 * msi.c: managed identity tokens (NOTES.md 2.4) from IMDS (Azure VMs,
 * and AKS pod identity through AZURE_POD_IDENTITY_AUTHORITY_HOST) and
 * from App Service / Functions (IDENTITY_ENDPOINT + IDENTITY_HEADER).
 *
 * Both answer plain http on a link-local or loopback address, which is
 * the one place kv-client allows http: anything else must be https, so
 * that a misconfigured endpoint cannot send the identity header, or get
 * a token, across a network in clear.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cred.h"

#define IMDS_PATH "/metadata/identity/oauth2/token"
#define IMDS_API "2018-02-01"
#define APP_SERVICE_API "2019-08-01"
#define MAX_WAIT_MS 60000L

struct kb_cred_msi {
	bool app_service;
	bool plain;                  /* http on IMDS or loopback */
	char *endpoint;              /* token URL without the query */
	char *client_id;
	struct kb_secret *header;    /* "X-IDENTITY-HEADER: ..." */
	char *ca_file;
	int max_retries;
	long retry_base_ms;
	long total_ms;
	struct kb_http_pool *pool;
};

/* IMDS's link-local address, or a loopback address. */
static bool
plain_http_host_ok(const char *host)
{
	unsigned char a[16];
	char h[64];
	size_t n = strlen(host);

	if (strcmp(host, "169.254.169.254") == 0 || strcmp(host, "localhost") == 0)
		return true;
	if (n >= 2 && n < sizeof(h) + 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
		return inet_pton(AF_INET6, h, a) == 1 &&
		    memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	}
	return inet_pton(AF_INET, host, a) == 1 && a[0] == 127;
}

/* https anywhere, http only on IMDS or loopback; *plain when http. */
static int
endpoint_check(const char *url, const char *what, bool *plain)
{
	struct kb_url u;
	int r;

	if (strlen(url) > 1024 || strpbrk(url, " \t\r\n#") != NULL)
		return kb_error_set(KB_ERR_CONFIG, "the %s %.200s is not a URL", what,
		    url);
	if ((r = kb_url_parse(url, &u)) != 0)
		return kb_error_set(KB_ERR_CONFIG, "the %s %.200s is not a URL", what,
		    url);
	if (strcmp(u.scheme, "https") == 0)
		*plain = false;
	else if (strcmp(u.scheme, "http") == 0 && plain_http_host_ok(u.host))
		*plain = true;
	else
		r = kb_error_set(KB_ERR_CONFIG, "the %s %.200s is neither https nor "
		    "http on IMDS (169.254.169.254) or a loopback address; tokens "
		    "must not cross a network in clear: use an https URL", what, url);
	kb_url_clear(&u);
	return r;
}

static bool
header_value_ok(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 1024)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

int
kb_cred_msi_new(const struct kb_kv_managed_identity_options *o,
    struct kb_cred_msi **out)
{
	struct kb_cred_msi *m = NULL;
	struct kb_buf b;
	const char *ep, *hv = NULL, *auth;
	size_t hl = 0, al;
	int r = KB_ERR_ALLOC;

	kb_buf_init_secret(&b, 2048);
	ep = o->app_service_endpoint != NULL ? o->app_service_endpoint :
	    secure_getenv("IDENTITY_ENDPOINT");
	if (o->app_service_header != NULL) {
		hv = (const char *)o->app_service_header->data;
		hl = o->app_service_header->len;
	} else if ((hv = secure_getenv("IDENTITY_HEADER")) != NULL) {
		hl = strlen(hv);
	}
	if (ep != NULL && ep[0] == '\0')
		ep = NULL;
	if (o->client_id != NULL && (o->client_id[0] == '\0' ||
	    strlen(o->client_id) > 256))
		return kb_error_set(KB_ERR_INVALID, "the managed identity's client id "
		    "is empty or too long");
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	switch (o->kind) {
	case KB_KV_MI_AUTO:
		m->app_service = ep != NULL && hv != NULL && hl > 0;
		break;
	case KB_KV_MI_APP_SERVICE:
		if (ep == NULL || hv == NULL || hl == 0) {
			r = kb_error_set(KB_ERR_CONFIG, "the App Service managed identity "
			    "needs its endpoint and header (IDENTITY_ENDPOINT and "
			    "IDENTITY_HEADER, which App Service sets); neither may be "
			    "empty");
			goto out;
		}
		m->app_service = true;
		break;
	case KB_KV_MI_IMDS:
		break;
	default:
		r = kb_error_set(KB_ERR_INVALID, "unknown managed identity kind %d",
		    (int)o->kind);
		goto out;
	}
	if (m->app_service) {
		if (!header_value_ok((const unsigned char *)hv, hl)) {
			r = kb_error_set(KB_ERR_CONFIG, "the App Service identity header "
			    "(IDENTITY_HEADER) holds spaces or control characters");
			goto out;
		}
		if ((r = endpoint_check(ep, "App Service identity endpoint",
		    &m->plain)) != 0)
			goto out;
		r = KB_ERR_ALLOC;
		if ((m->endpoint = kb_strdup(ep)) == NULL)
			goto out;
		if ((r = kb_buf_appendf(&b, "X-IDENTITY-HEADER: ")) != 0 ||
		    (r = kb_buf_append(&b, hv, hl)) != 0 ||
		    (r = kb_secret_from(b.data, b.len, &m->header)) != 0)
			goto out;
	} else {
		auth = o->imds_authority;
		if (auth == NULL || auth[0] == '\0')
			auth = secure_getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
		if (auth == NULL || auth[0] == '\0')
			auth = KB_KV_IMDS_AUTHORITY;
		al = strlen(auth);
		while (al > 0 && auth[al - 1] == '/')
			al--;
		if ((r = kb_buf_append(&b, auth, al)) != 0 ||
		    (r = kb_buf_appendf(&b, "%s", IMDS_PATH)) != 0)
			goto out;
		if ((r = endpoint_check((const char *)b.data, "IMDS endpoint",
		    &m->plain)) != 0)
			goto out;
		r = KB_ERR_ALLOC;
		if ((m->endpoint = kb_strdup((const char *)b.data)) == NULL)
			goto out;
	}
	r = KB_ERR_ALLOC;
	if ((o->client_id != NULL && (m->client_id = kb_strdup(o->client_id)) == NULL) ||
	    (o->ca_file != NULL && (m->ca_file = kb_strdup(o->ca_file)) == NULL))
		goto out;
	if ((r = kb_http_pool_new(&m->pool)) != 0)
		goto out;
	m->max_retries = o->max_retries == KB_KV_NO_RETRY ? 0 :
	    o->max_retries > 0 ? o->max_retries : KB_KV_MI_DEFAULT_RETRIES;
	m->retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms :
	    KB_KV_MI_DEFAULT_RETRY_BASE_MS;
	m->total_ms = o->total_ms > 0 ? o->total_ms : KB_KV_DEFAULT_TOTAL_MS;
	*out = m;
	m = NULL;
	r = 0;
 out:
	kb_buf_free(&b);
	kb_cred_msi_free(m);
	return r;
}

void
kb_cred_msi_free(struct kb_cred_msi *m)
{
	if (m == NULL)
		return;
	kb_http_pool_free(m->pool);
	kb_secret_free(&m->header);
	free(m->endpoint);
	free(m->client_id);
	free(m->ca_file);
	free(m);
}

bool
kb_cred_msi_is_app_service(const struct kb_cred_msi *m)
{
	return m->app_service;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned mo, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Up to max decimal digits at *s (at least one; no sign, no space). */
static bool
msi_digits(const char **s, unsigned max, unsigned *out)
{
	const char *p = *s;
	unsigned v = 0, k;

	for (k = 0; k < max && p[k] >= '0' && p[k] <= '9'; k++)
		v = v * 10 + (unsigned)(p[k] - '0');
	if (k == 0)
		return false;
	*s = p + k;
	*out = v;
	return true;
}

/*
 * App Service's expires_on before API 2019-08-01 (NOTES.md 2.4): Linux
 * hosts say "06/20/2019 02:57:58 +00:00", Windows hosts a 12-hour clock,
 * "1/16/2020 5:24:12 AM +00:00" (azure-identity parses both; Microsoft's
 * own example is "09/14/2017 00:00:00 PM +00:00", read as noon).  Digits
 * only: no signs or spaces inside a field.
 */
int64_t
kb_cred_msi_date(const char *s)
{
	unsigned mo, d, y, h, mi, sec, oh = 0, om = 0;
	char sign = '+', ap;

	if (s == NULL || strlen(s) > 40)
		return -1;
	if (!msi_digits(&s, 2, &mo) || *s++ != '/' || !msi_digits(&s, 2, &d) ||
	    *s++ != '/' || !msi_digits(&s, 4, &y) || *s++ != ' ' ||
	    !msi_digits(&s, 2, &h) || *s++ != ':' || !msi_digits(&s, 2, &mi) ||
	    *s++ != ':' || !msi_digits(&s, 2, &sec))
		return -1;
	ap = s[0] == ' ' ? (char)toupper((unsigned char)s[1]) : '\0';
	if ((ap == 'A' || ap == 'P') && toupper((unsigned char)s[2]) == 'M' &&
	    (s[3] == ' ' || s[3] == '\0')) {
		if (h > 12)
			return -1;
		h = h % 12 + (ap == 'P' ? 12 : 0);
		s += 3;
	}
	if (*s == ' ') {
		s++;
		sign = *s++;
		if ((sign != '+' && sign != '-') || !msi_digits(&s, 2, &oh) ||
		    *s++ != ':' || !msi_digits(&s, 2, &om) || oh > 14 || om > 59)
			return -1;
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970 ||
	    h > 23 || mi > 59 || sec > 60)
		return -1;
	return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    (sign == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static bool
retryable(const struct kb_cred_msi *m, long status)
{
	if (status == 429 || (status >= 500 && status <= 599))
		return true;
	/* IMDS: 404 while the identity is being assigned, 410 while it
	 * upgrades (NOTES.md 2.4). */
	return !m->app_service && (status == 404 || status == 410);
}

/* The token and expiry from a 200 answer. */
int
kb_cred_msi_answer(const char *endpoint, const unsigned char *body, size_t len,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	cJSON *j = NULL, *at, *eo, *tt;
	int64_t now = kb_now_unix(), exp = 0, ein;
	int r;

	j = cJSON_ParseWithLength((const char *)body, len);
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	eo = cJSON_GetObjectItemCaseSensitive(j, "expires_on");
	tt = cJSON_GetObjectItemCaseSensitive(j, "token_type");
	if (!cJSON_IsString(at) ||
	    !kb_cred_token_ok((const unsigned char *)at->valuestring,
	        strlen(at->valuestring)) ||
	    (tt != NULL && !kb_ascii_ieq(cJSON_GetStringValue(tt), "Bearer"))) {
		r = kb_error_set(KB_ERR_PROTOCOL, "%s answered without a bearer "
		    "access_token", endpoint);
		goto out;
	}
	/* expires_on: a number, digits in a string (IMDS), or App Service's
	 * "06/20/2019 02:57:58 +00:00"; else expires_in. */
	if (!kb_cred_json_int64(eo, &exp) &&
	    (!cJSON_IsString(eo) || (exp = kb_cred_msi_date(eo->valuestring)) < 0)) {
		exp = 0;
		if (kb_cred_json_int64(cJSON_GetObjectItemCaseSensitive(j,
		    "expires_in"), &ein) && ein <= 86400 * 365)
			exp = now + ein;
	}
	if (exp <= now) {
		r = kb_error_set(KB_ERR_PROTOCOL, "%s answered with a token without "
		    "a readable future expires_on or expires_in", endpoint);
		goto out;
	}
	if ((r = kb_secret_from(at->valuestring, strlen(at->valuestring),
	    out_token)) != 0)
		goto out;
	*out_expiry = exp;
	r = 0;
 out:
	if (j != NULL) {
		kb_kv_json_wipe(j);
		cJSON_Delete(j);
	}
	return r;
}

/* A refusal (status not 200) as an error with the service's words. */
int
kb_cred_msi_refusal(const char *endpoint, const char *client_id, long status,
    const unsigned char *body, size_t len, bool retried)
{
	cJSON *j, *err, *desc;
	size_t dl;
	int r;

	j = cJSON_ParseWithLength((const char *)body, len);
	err = cJSON_GetObjectItemCaseSensitive(j, "error");
	desc = cJSON_GetObjectItemCaseSensitive(j, "error_description");
	if (!cJSON_IsString(desc))
		desc = cJSON_GetObjectItemCaseSensitive(j, "message");
	dl = cJSON_IsString(desc) ? strcspn(desc->valuestring, "\r\n") : 0;
	r = kb_error_set(status == 400 ? KB_ERR_CONFIG :
	    status == 401 || status == 403 ? KB_ERR_DENIED :
	    KB_ERR_UNREACHABLE, "%s refused a token%s%.100s (HTTP %ld%s%.64s%s%.*s)%s",
	    endpoint, client_id ? " for identity " : "",
	    client_id ? client_id : "", status,
	    cJSON_IsString(err) ? ", " : "",
	    cJSON_IsString(err) ? err->valuestring : "", dl ? ": " : "",
	    (int)(dl > 300 ? 300 : dl), dl ? desc->valuestring : "",
	    status == 400 ? "; check that the identity (client id) is "
	    "assigned to this resource" : retried ? " after retries" : "");
	cJSON_Delete(j);
	return r;
}

int
kb_cred_msi_fetch(struct kb_cred_msi *m, const char *scope,
    struct kb_secret **out_token, int64_t *out_expiry)
{
	static const char *const imds_hdrs[] = { "Metadata: true",
		"Accept: application/json", NULL };
	static const char *const as_hdrs[] = { "Accept: application/json", NULL };
	struct kb_http_req req;
	struct kb_http_resp hr;
	struct kb_http_outcome how;
	struct kb_buf url;
	char endpoint[320];
	size_t rl = strlen(scope);
	long wait;
	int attempt, r;

	kb_http_resp_init(&hr);
	kb_buf_init(&url, 4096);
	snprintf(endpoint, sizeof(endpoint), "the managed identity endpoint "
	    "(%s) %.200s", m->app_service ? "App Service" : "IMDS", m->endpoint);
	/* The resource is the scope without "/.default" (NOTES.md 2.4). */
	if (rl > 9 && strcmp(scope + rl - 9, "/.default") == 0)
		rl -= 9;
	if ((r = kb_buf_appendf(&url, "%s%capi-version=%s&resource=", m->endpoint,
	    strchr(m->endpoint, '?') ? '&' : '?',
	    m->app_service ? APP_SERVICE_API : IMDS_API)) != 0 ||
	    (r = kb_http_form_escape(&url, scope, rl)) != 0)
		goto out;
	if (m->client_id != NULL &&
	    ((r = kb_buf_appendf(&url, "&client_id=")) != 0 ||
	    (r = kb_http_form_escape(&url, m->client_id, strlen(m->client_id))) != 0))
		goto out;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = (const char *)url.data;
	req.endpoint = endpoint;
	req.headers = m->app_service ? as_hdrs : imds_hdrs;
	req.auth_header = m->header != NULL ? (const char *)m->header->data : NULL;
	req.connect_ms = KB_KV_DEFAULT_CONNECT_MS;
	req.total_ms = m->total_ms;
	req.max_body = KB_CRED_MAX_RESPONSE;
	req.ca_file = m->ca_file;
	req.https_only = !m->plain;
	req.no_proxy = m->plain;
	req.secret_body = true;
	req.pool = m->pool;
	for (attempt = 0;; attempt++) {
		kb_http_resp_clear(&hr);
		r = kb_http_perform(&req, &hr, &how);
		if (r == 0 && hr.status == 200)
			break;
		if (attempt >= m->max_retries ||
		    (r != 0 && (!how.transient || r == KB_ERR_UNREACHABLE)) ||
		    (r == 0 && !retryable(m, hr.status)))
			break;
		wait = m->retry_base_ms << (attempt < 10 ? attempt : 10);
		if (wait > MAX_WAIT_MS)
			wait = MAX_WAIT_MS;
		kb_debug("%s: %s %ld, try %d again in %ld ms", endpoint,
		    r != 0 ? "error" : "HTTP", r != 0 ? (long)r : hr.status,
		    attempt + 2, wait);
		sleep_ms(wait);
	}
	if (r == KB_ERR_UNREACHABLE) {
		r = kb_error_set(r, "%s; a managed identity exists only on Azure "
		    "(a VM, App Service, AKS) with an identity assigned: elsewhere, "
		    "use another credential", kb_error_detail(r));
		goto out;
	}
	if (r != 0)
		goto out;
	if (hr.status != 200) {
		r = kb_cred_msi_refusal(endpoint, m->client_id, hr.status,
		    hr.body.data, hr.body.len, attempt > 0);
		goto out;
	}
	r = kb_cred_msi_answer(endpoint, hr.body.data, hr.body.len, out_token,
	    out_expiry);
 out:
	kb_http_resp_clear(&hr);
	kb_buf_free(&url);
	return r;
}
