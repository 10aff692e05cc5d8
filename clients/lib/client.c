/*
 * client.c - the Heliox ingest client library (see include/heliox/client.h).
 *
 * One req0 socket per client, one dialer per URL. Every call opens its own
 * nng context and aio, so calls from several threads never share state: the
 * client itself is read-only after hx_client_open().
 *
 * A call is: build an RpcRequest, pack it straight into an nng message, send
 * it on a fresh context, wait for the reply within the call's timeout, unpack
 * the RpcResponse and copy everything into an hx_reply the caller owns. The
 * protobuf-c structures never escape this file.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "base/arena.h"
#include "base/errf.h"
#include "base/spare.h"
#include "heliox/client.h"
#include "heliox/ingest/v1/ingest.pb-c.h"

#define HX_CLIENT_DEFAULT_MAX_REPLY ((size_t) 64 * 1024 * 1024)

/*
 * nng's REQ resends a request that has no answer after its resend time. The
 * server may legitimately take the whole timeout, so the resend time is the
 * timeout plus a margin: a slow ingest is never sent twice by the timer.
 */
#define HX_RESEND_MARGIN_MS 1000

/* nng_duration is an int32 of milliseconds; keep room for the margin. */
#define HX_CLIENT_MAX_TIMEOUT_MS ((uint32_t) INT32_MAX - HX_RESEND_MARGIN_MS)

/*
 * An UNAVAILABLE answer means the server could not reach its database and
 * wrote nothing; it reconnects by itself. A database restart takes seconds
 * to tens of seconds, so retries back off (100 ms doubling to 2 s) over a
 * window (hx_client_opts.retry_window_ms, default 30 s) that outlasts one,
 * always within the call's own deadline.
 */
#define HX_RETRY_BACKOFF_MS     100
#define HX_RETRY_BACKOFF_MAX_MS 2000

/*
 * After a connection drops nng redials by itself; a short first wait lets a
 * restarted server be found again within a fraction of a second, the cap
 * keeps a server that stays away from being hammered.
 */
#define HX_RECONNECT_MIN_MS 100
#define HX_RECONNECT_MAX_MS 2000

typedef Heliox__Ingest__V1__RpcRequest  rpc_request;
typedef Heliox__Ingest__V1__RpcResponse rpc_response;

/*
 * One server URL. Its dialer is started by a synchronous nng_dialer_start()
 * on a helper thread: that first attempt reports exactly why it failed
 * (refused, name not resolved, TLS handshake), and a failed attempt leaves
 * the dialer stopped so that the next call can try again and learn afresh.
 * Once an attempt succeeds nng owns the link and redials it after a drop.
 */
typedef enum link_state {
	LINK_IDLE,     /* not dialing: never tried, or the last attempt failed */
	LINK_DIALING,  /* an attempt is running on `thr` */
	LINK_UP,       /* the dialer is started; nng keeps it connected */
	LINK_LOST,     /* was up, its connections are gone; nng redials quietly */
	LINK_RENEWING, /* a call is swapping a LOST link's dialer for a fresh one */
} link_state;

typedef struct url_link {
	struct hx_client *c;
	char             *url;
	nng_dialer        d;
	unsigned          live; /* connections of this dialer */
	link_state        state;
	uint64_t          tries; /* attempts finished */
	int               err;   /* nng's result of the last attempt */
	char              cause[384];
	nng_thread       *thr;
} url_link;

/*
 * The socket, key and options are read-only after hx_client_open(); the
 * link states and the pipe count change under `mtx`, and calls wait on `cv`
 * for a connection. Each call runs on its own nng context, so calls from
 * several threads share nothing else.
 */
struct hx_client {
	nng_socket       sock;
	char            *api_key;
	uint32_t         timeout_ms;
	uint32_t         retry_window_ms;
	size_t           maxsz;        /* the reply size limit every dialer gets */
	char            *tls_ca;       /* the CA file a TLS link verifies against */
	char            *tls_ca_given; /* the caller's tls_ca_file, NULL = the default */
	char            *tls_name;     /* the name it verifies, NULL = the URL's host */
	nng_mtx         *mtx;
	nng_cv          *cv;
	unsigned         pipes; /* connections up, from nng's pipe notifications */
	bool             closing;
	url_link        *links;
	size_t           n_links;
	struct exchange *inflight; /* the calls waiting for an answer */
};

/*
 * The two large blocks of a big reply - the arena its bytes are unpacked
 * into, and the rows array hx_reply_free releases - are kept for the next
 * call (base/spare.h): a 1,000-row Summary spent half of the client's CPU
 * in page faults on fresh blocks. Process-wide, since hx_reply_free has no
 * client; at most two blocks of HX_SPARE_MAX each, freed when the library
 * is unloaded.
 */
static hx_spare decode_spare = HX_SPARE_INIT;
static hx_spare rows_spare = HX_SPARE_INIT;

__attribute__((destructor)) static void
drain_spares(void)
{
	hx_spare_drain(&decode_spare);
	hx_spare_drain(&rows_spare);
}

/*
 * Replies promise non-NULL message and request_id. When even a tiny strdup
 * fails they point here instead, and hx_reply_free() knows not to free it.
 */
static char empty_text[1];

/* ---- small helpers ------------------------------------------------------ */

static char *
dup_or_empty(const char *s)
{
	char *d;

	if (s == NULL || *s == '\0') {
		return (empty_text);
	}
	if ((d = strdup(s)) == NULL) {
		return (NULL);
	}
	return (d);
}

static void
free_text(char *s)
{
	if (s != empty_text) {
		free(s);
	}
}

/* Copies src into a fixed field, truncating: the reply's arrays are fixed
 * size by design (header), and a cut description is better than none.
 * Not snprintf: a 1,000-row Summary copies 10,000 fields, and formatting
 * them cost 0.27 ms a call. */
static void
copy_field(char *dst, size_t dstsz, const char *src)
{
	size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

	if (n > 0) {
		memcpy(dst, src, n);
	}
	dst[n] = '\0';
}

/*
 * protobuf-c's generated structs hold char * and uint8_t * even where packing
 * only reads, while our API takes const. Packing never writes through them,
 * so const is dropped here, in one place, through a union rather than a cast.
 */
static void *
wire_ptr(const void *p)
{
	union {
		const void *in;
		void       *out;
	} u;

	u.in = p;
	return (u.out);
}

/* NULL means "not given" in our API; the generated structs want "". */
static char *
wire_str(const char *s)
{
	return (wire_ptr(s != NULL ? s : ""));
}

static hx_status
nng_to_status(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return (HX_RESOURCE_EXHAUSTED);
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
	case NNG_ENOENT:
	case NNG_EPERM:
	case NNG_ECRYPTO:
		return (HX_INVALID_ARGUMENT);
	case NNG_ETIMEDOUT:
		return (HX_DEADLINE_EXCEEDED);
	default:
		return (HX_UNAVAILABLE);
	}
}

static uint32_t
effective_timeout(const hx_client *c, uint32_t ms)
{
	if (ms == 0) {
		ms = c->timeout_ms;
	}
	return (ms > HX_CLIENT_MAX_TIMEOUT_MS ? HX_CLIENT_MAX_TIMEOUT_MS : ms);
}

/* ---- open / close ------------------------------------------------------- */

/*
 * The CAs a tls+tcp:// server is verified against when the caller names
 * none: $SSL_CERT_FILE when set (OpenSSL's convention), else the system
 * bundle Debian's ca-certificates maintains.
 */
#define HX_CLIENT_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

static bool
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

static const char *
tls_ca_path(const hx_client_opts *o)
{
	const char *env;

	if (o->tls_ca_file != NULL) {
		return (o->tls_ca_file);
	}
	env = getenv("SSL_CERT_FILE");
	return (env != NULL && *env != '\0' ? env : HX_CLIENT_SYSTEM_CA);
}

/*
 * Builds the TLS configuration for one tls+tcp:// dialer. The server's
 * certificate must always verify (against tls_ca_path()) and name the server
 * (the caller's name, else the URL's host). There is no unverified mode: the
 * API key travels in every request, and an unverified link hands it to
 * whoever sits in the middle. With no CA to verify against, the open fails.
 */
static int
tls_setup(nng_tls_config *cfg, const char *url, const hx_client_opts *o, char *err, size_t errsz)
{
	const char *name = o->tls_server_name;
	const char *ca = tls_ca_path(o);
	nng_url    *u = NULL;
	int         rv;

	if (name == NULL && nng_url_parse(&u, url) == 0) {
		name = u->u_hostname;
		if (is_ip_literal(name)) {
			/* nng's TLS engine (mbedTLS) matches DNS names only:
			 * every handshake would fail, silently, until timeout. */
			hx_errf(
			    err, errsz,
			    "%s: an IP address cannot be verified: nng's TLS "
			    "engine (mbedTLS 2.28) matches only DNS names of a certificate, never "
			    "its "
			    "IP addresses; give --tls-server-name NAME with a DNS name the "
			    "certificate carries (e.g. --tls-server-name localhost), or use that "
			    "name in the URL",
			    url);
			rv = NNG_EINVAL;
			goto out;
		}
	}
	if (o->tls_ca_file == NULL && access(ca, R_OK) != 0) {
		hx_errf(err, errsz,
		        "%s: no CA file given (--tls-ca) and no system CA bundle at %s: "
		        "cannot verify the server",
		        url, ca);
		rv = NNG_ENOENT;
		goto out;
	}
	if ((rv = nng_tls_config_ca_file(cfg, ca)) != 0) {
		hx_errf(err, errsz, "%s: %s", ca, nng_strerror(rv));
		goto out;
	}
	rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0 && name != NULL && *name != '\0') {
		rv = nng_tls_config_server_name(cfg, name);
	}
	if (rv != 0) {
		hx_errf(err, errsz, "%s: TLS: %s", url, nng_strerror(rv));
	}
out:
	if (u != NULL) {
		nng_url_free(u);
	}
	return (rv);
}

static int
dialer_tls(nng_dialer d, const char *url, const hx_client_opts *o, char *err, size_t errsz)
{
	nng_tls_config *cfg;
	int             rv;

	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0) {
		hx_errf(err, errsz, "%s: TLS: %s", url, nng_strerror(rv));
		return (rv);
	}
	if ((rv = tls_setup(cfg, url, o, err, errsz)) == 0 &&
	    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
		hx_errf(err, errsz, "%s: TLS: %s", url, nng_strerror(rv));
	}
	nng_tls_config_free(cfg); /* the dialer holds its own reference */
	return (rv);
}

static bool
is_tls_url(const char *url)
{
	return (strncmp(url, "tls+", 4) == 0);
}

/* ---- why a connection failed -------------------------------------------- */

/*
 * One connection attempt on a scratch socket, to tell apart failures that
 * nng reports with one code. verify=false makes a handshake that checks
 * nothing: it is only ever used to learn whether the far end speaks TLS at
 * all, and is closed at once, before any request (or key) is sent.
 */
static int
probe(const char *url, const char *ca, const char *name, bool verify)
{
	nng_socket      s;
	nng_dialer      d;
	nng_tls_config *cfg = NULL;
	int             rv;

	if ((rv = nng_req0_open(&s)) != 0) {
		return (rv);
	}
	if ((rv = nng_dialer_create(&d, s, url)) == 0 && is_tls_url(url)) {
		rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
		if (rv == 0 && verify) {
			rv = nng_tls_config_ca_file(cfg, ca);
		}
		if (rv == 0) {
			rv = nng_tls_config_auth_mode(
			    cfg, verify ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE);
		}
		if (rv == 0 && name != NULL) {
			rv = nng_tls_config_server_name(cfg, name);
		}
		if (rv == 0) {
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		}
		if (cfg != NULL) {
			nng_tls_config_free(cfg);
		}
	}
	if (rv == 0) {
		rv = nng_dialer_start(d, 0);
	}
	nng_close(s);
	return (rv);
}

/* The name a TLS link verifies: the caller's, else the URL's host. */
static void
tls_name_of(const hx_client *c, const char *url, char *out, size_t outsz)
{
	nng_url *u;

	if (c->tls_name != NULL) {
		hx_errf(out, outsz, "%s", c->tls_name);
	} else if (nng_url_parse(&u, url) == 0) {
		hx_errf(out, outsz, "%s", u->u_hostname);
		nng_url_free(u);
	} else {
		hx_errf(out, outsz, "?");
	}
}

/*
 * mbedTLS, under nng, reports every failed handshake as one "cryptographic
 * error". What the user must change differs (the CA, the name, the scheme),
 * so the cause is found by trying again with one check removed at a time.
 */
static void
explain_tls(const hx_client *c, const char *url, int rv, char *out, size_t outsz)
{
	char name[256];

	tls_name_of(c, url, name, sizeof(name));
	if (probe(url + 4, NULL, NULL, false) == 0) {
		hx_errf(out, outsz,
		        "TLS handshake failed: not TLS: the server speaks plain nng on "
		        "this port (use %s, or the server's tls+tcp:// port)",
		        url + 4);
	} else if (probe(url, c->tls_ca, NULL, true) == 0) {
		hx_errf(out, outsz,
		        "TLS handshake failed: name mismatch: the server's certificate "
		        "does not carry the name '%s' (give --tls-server-name with a name it "
		        "carries)",
		        name);
	} else if (probe(url, NULL, NULL, false) == 0) {
		hx_errf(out, outsz,
		        "TLS handshake failed: unknown CA: the server's certificate "
		        "does not verify against %s (give --tls-ca with the CA that signed it)",
		        c->tls_ca);
	} else {
		hx_errf(out, outsz, "TLS handshake failed: %s", nng_strerror(rv));
	}
}

/* A plain tcp:// link that the far end closed during nng's own handshake:
 * most often a TLS port; say so when it is one. */
static void
explain_closed(const char *url, int rv, char *out, size_t outsz)
{
	char tls_url[512];

	snprintf(tls_url, sizeof(tls_url), "tls+%s", url);
	if (strncmp(url, "tcp", 3) == 0 && probe(tls_url, NULL, NULL, false) == 0) {
		hx_errf(out, outsz, "not TLS: the server expects TLS on this port (use %s)",
		        tls_url);
	} else {
		hx_errf(out, outsz,
		        "the server closed the connection during nng's handshake "
		        "(%s): is it a heliox-ingestd port?",
		        nng_strerror(rv));
	}
}

static void
explain_resolve(const char *url, int rv, char *out, size_t outsz)
{
	struct addrinfo hints, *res = NULL;
	nng_url        *u;
	int             gai;

	if (nng_url_parse(&u, url) != 0 || u->u_hostname == NULL || *u->u_hostname == '\0') {
		hx_errf(out, outsz, "%s", nng_strerror(rv));
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(u->u_hostname, NULL, &hints, &res)) != 0) {
		hx_errf(out, outsz, "name not resolved: %s: %s", u->u_hostname, gai_strerror(gai));
	} else {
		hx_errf(out, outsz, "%s (%s)", nng_strerror(rv), u->u_hostname);
		freeaddrinfo(res);
	}
	nng_url_free(u);
}

/* Turns nng's result of a failed attempt into a cause a user can act on. */
static void
explain(const hx_client *c, const char *url, int rv, char *out, size_t outsz)
{
	bool ipc = strncmp(url, "ipc://", 6) == 0;

	switch (rv) {
	case NNG_ECONNREFUSED:
		if (ipc && access(url + 6, F_OK) != 0) {
			hx_errf(out, outsz,
			        "connection refused (no socket file %s; is "
			        "heliox-ingestd running?)",
			        url + 6);
		} else {
			hx_errf(out, outsz, "connection refused (%s)",
			        ipc ? "a socket file is there but no server listens on it"
			            : "nothing listens on that port; is heliox-ingestd running?");
		}
		break;
	case NNG_ENOENT:
		hx_errf(out, outsz, "%s",
		        ipc ? "no socket file there; is heliox-ingestd running?"
		            : nng_strerror(rv));
		break;
	case NNG_EADDRINVAL:
		if (ipc) {
			hx_errf(out, outsz, "%s", nng_strerror(rv));
		} else {
			explain_resolve(url, rv, out, outsz);
		}
		break;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		if (is_tls_url(url)) {
			explain_tls(c, url, rv, out, outsz);
		} else {
			hx_errf(out, outsz, "%s", nng_strerror(rv));
		}
		break;
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
	case NNG_ECLOSED:
	case NNG_EPROTO:
		if (!ipc && !is_tls_url(url)) {
			explain_closed(url, rv, out, outsz);
		} else {
			hx_errf(out, outsz,
			        "the server closed the connection during the handshake "
			        "(%s)",
			        nng_strerror(rv));
		}
		break;
	case NNG_EUNREACHABLE:
		hx_errf(out, outsz, "host unreachable");
		break;
	case NNG_ETIMEDOUT:
		hx_errf(out, outsz, "connection timed out");
		break;
	default:
		hx_errf(out, outsz, "%s", nng_strerror(rv));
		break;
	}
}

/* ---- links ---------------------------------------------------------------- */

/* The helper thread of one attempt. */
static void
link_dial(void *arg)
{
	url_link  *l = arg;
	hx_client *c = l->c;
	char       cause[sizeof(l->cause)] = "";
	int        rv;

	rv = nng_dialer_start(l->d, 0);
	if (rv != 0 && rv != NNG_ECLOSED) {
		explain(c, l->url, rv, cause, sizeof(cause));
	}
	nng_mtx_lock(c->mtx);
	l->err = rv;
	l->state = rv == 0 ? LINK_UP : LINK_IDLE;
	l->tries++;
	memcpy(l->cause, cause, sizeof(cause));
	nng_cv_wake(c->cv);
	nng_mtx_unlock(c->mtx);
}

/* Starts an attempt on an idle link. Called with c->mtx held. */
static void
link_kick(hx_client *c, url_link *l)
{
	if (l->state != LINK_IDLE || c->closing) {
		return;
	}
	if (l->thr != NULL) {
		/* The previous attempt has finished (it set LINK_IDLE last). */
		nng_thread_destroy(l->thr);
		l->thr = NULL;
	}
	l->state = LINK_DIALING;
	if (nng_thread_create(&l->thr, link_dial, l) != 0) {
		l->thr = NULL;
		l->state = LINK_IDLE;
		l->err = NNG_ENOMEM;
		l->tries++;
		snprintf(l->cause, sizeof(l->cause), "cannot start a thread to connect");
	}
}

static url_link *
link_of_pipe(hx_client *c, nng_pipe p)
{
	int    id = nng_dialer_id(nng_pipe_dialer(p));
	size_t i;

	for (i = 0; id > 0 && i < c->n_links; i++) {
		if (nng_dialer_id(c->links[i].d) == id) {
			return (&c->links[i]);
		}
	}
	return (NULL);
}

/* One call in flight (roundtrip), listed in c->inflight. */
typedef struct exchange {
	hx_client       *c;
	nng_aio         *aio;
	bool             lost; /* every connection went meanwhile; under c->mtx */
	struct exchange *prev, *next;
} exchange;

/* Whether every connection is gone and no link is up: a request in flight
 * has nowhere to go until a link is renewed. */
static bool
all_lost(const hx_client *c)
{
	if (c->pipes > 0) {
		return false;
	}
	for (size_t i = 0; i < c->n_links; i++) {
		if (c->links[i].state == LINK_UP) {
			return false;
		}
	}
	return true;
}

/*
 * Counts connections, per link and in all. A link whose last connection
 * went is LOST: nng redials it in the background but would not say why it
 * fails, so the next call renews it (await_link) and learns the cause.
 */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	hx_client *c = arg;
	url_link  *l;

	nng_mtx_lock(c->mtx);
	l = link_of_pipe(c, p);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->pipes++;
		if (l != NULL && l->live++ == 0 && l->state == LINK_LOST) {
			l->state = LINK_UP;
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (c->pipes > 0) {
			c->pipes--;
		}
		if (l != NULL && l->live > 0 && --l->live == 0 && l->state == LINK_UP) {
			l->state = LINK_LOST;
		}
	}
	/* A call in flight when the last connection went would wait for nng to
	 * redial, which fails without a word (the server went away): abort
	 * it, so that it renews the links and learns the cause at once. No
	 * nng lock is held in a pipe callback, and aborting does not call
	 * back here. */
	if (ev == NNG_PIPE_EV_REM_POST && all_lost(c)) {
		for (exchange *x = c->inflight; x != NULL; x = x->next) {
			x->lost = true;
			nng_aio_abort(x->aio, NNG_ECONNSHUT);
		}
	}
	nng_cv_wake(c->cv);
	nng_mtx_unlock(c->mtx);
}

static int make_dialer(hx_client *c, const char *url, nng_dialer *out, char *err, size_t errsz);

/*
 * Swaps a LOST link's dialer for a fresh, stopped one and starts an attempt
 * on it, whose result (refused, TLS...) the waiting calls then see. Called
 * with c->mtx held; drops it while closing and creating, since closing a
 * dialer may call pipe_event.
 */
static void
link_renew(hx_client *c, url_link *l)
{
	nng_dialer old = l->d, fresh;
	char       err[256] = "";
	int        rv;

	l->state = LINK_RENEWING;
	nng_mtx_unlock(c->mtx);
	nng_dialer_close(old);
	rv = make_dialer(c, l->url, &fresh, err, sizeof(err));
	nng_mtx_lock(c->mtx);
	l->live = 0;
	l->state = LINK_IDLE;
	if (rv != 0) {
		l->err = rv;
		l->tries++;
		snprintf(l->cause, sizeof(l->cause), "%s", err);
		nng_cv_wake(c->cv);
		return;
	}
	l->d = fresh;
	link_kick(c, l);
}

/*
 * Waits until a connection is up. Every idle link gets a fresh attempt;
 * when all of them have failed since, the call fails at once with each
 * link's cause: nobody is there, and waiting would not change that.
 * Returns 0 (connected), NNG_ECONNREFUSED (all failed: `why` says how) or
 * NNG_ETIMEDOUT (still trying at the deadline: `why` says what).
 */
static int
await_link(hx_client *c, nng_time deadline, char *why, size_t whysz)
{
	uint64_t since[HX_CLIENT_MAX_URLS];
	size_t   i, o = 0;
	bool     failed;
	int      rv = 0;

	nng_mtx_lock(c->mtx);
	for (i = 0; i < c->n_links; i++) {
		since[i] = c->links[i].tries;
		if (c->pipes == 0 && c->links[i].state == LINK_LOST && !c->closing) {
			link_renew(c, &c->links[i]);
		}
		link_kick(c, &c->links[i]);
	}
	for (;;) {
		if (c->pipes > 0) {
			break;
		}
		failed = true;
		for (i = 0; i < c->n_links && failed; i++) {
			failed = c->links[i].state == LINK_IDLE && c->links[i].tries > since[i];
		}
		if (failed) {
			rv = NNG_ECONNREFUSED;
			break;
		}
		if (nng_clock() >= deadline || nng_cv_until(c->cv, deadline) == NNG_ETIMEDOUT) {
			if (c->pipes == 0) {
				rv = NNG_ETIMEDOUT;
			}
			break;
		}
	}
	if (rv != 0 && why != NULL && whysz > 0) {
		why[0] = '\0';
		for (i = 0; i < c->n_links && o < whysz; i++) {
			const url_link *l = &c->links[i];
			const char     *what = l->state == LINK_UP || l->state == LINK_LOST
			        ? "connection lost; reconnecting"
			        : l->state == LINK_IDLE ? l->cause
			                                : "still connecting";

			o += (size_t) snprintf(why + o, whysz - o, "%s%s: %s", i > 0 ? "; " : "",
			                       l->url, what);
		}
	}
	nng_mtx_unlock(c->mtx);
	return (rv);
}

/* A stopped dialer for `url` on the client's socket, with its options. */
static int
make_dialer(hx_client *c, const char *url, nng_dialer *out, char *err, size_t errsz)
{
	hx_client_opts o = { .api_key = "",
		             .tls_ca_file = c->tls_ca_given,
		             .tls_server_name = c->tls_name };
	nng_dialer     d;
	int            rv;

	if ((rv = nng_dialer_create(&d, c->sock, url)) != 0) {
		hx_errf(err, errsz, "%s: %s", url,
		        rv == NNG_ENOTSUP ? "not a supported URL (tcp://, ipc://, tls+tcp://)"
		                          : nng_strerror(rv));
		return (rv);
	}
	if ((rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, c->maxsz)) != 0 ||
	    (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, HX_RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, HX_RECONNECT_MAX_MS)) != 0) {
		hx_errf(err, errsz, "%s: %s", url, nng_strerror(rv));
	} else if (is_tls_url(url)) {
		rv = dialer_tls(d, url, &o, err, errsz);
	}
	if (rv != 0) {
		nng_dialer_close(d);
		return (rv);
	}
	*out = d;
	return (0);
}

static int
add_link(hx_client *c, url_link *l, const char *url, char *err, size_t errsz)
{
	l->c = c;
	l->state = LINK_IDLE;
	if ((l->url = strdup(url)) == NULL) {
		hx_errf(err, errsz, "out of memory");
		return (NNG_ENOMEM);
	}
	return (make_dialer(c, url, &l->d, err, errsz));
}

static int
open_socket(hx_client *c, size_t maxsz, char *err, size_t errsz)
{
	int rv;

	if ((rv = nng_mtx_alloc(&c->mtx)) != 0 || (rv = nng_cv_alloc(&c->cv, c->mtx)) != 0) {
		hx_errf(err, errsz, "out of memory");
		return (rv);
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		hx_errf(err, errsz, "cannot open req0 socket: %s", nng_strerror(rv));
		return (rv);
	}
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, maxsz)) != 0) {
		hx_errf(err, errsz, "cannot set the reply size limit: %s", nng_strerror(rv));
		return (rv);
	}
	if ((rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c)) != 0) {
		hx_errf(err, errsz, "cannot watch connections: %s", nng_strerror(rv));
	}
	return (rv);
}

static int
copy_opts(hx_client *c, const hx_client_opts *opts)
{
	c->timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms : HX_CLIENT_DEFAULT_TIMEOUT_MS;
	c->retry_window_ms =
	    opts->retry_window_ms != 0 ? opts->retry_window_ms : HX_CLIENT_DEFAULT_RETRY_WINDOW_MS;
	if ((c->api_key = strdup(opts->api_key)) == NULL ||
	    (c->tls_ca = strdup(tls_ca_path(opts))) == NULL) {
		return (-1);
	}
	if (opts->tls_server_name != NULL &&
	    (c->tls_name = strdup(opts->tls_server_name)) == NULL) {
		return (-1);
	}
	if (opts->tls_ca_file != NULL && (c->tls_ca_given = strdup(opts->tls_ca_file)) == NULL) {
		return (-1);
	}
	return (0);
}

hx_status
hx_client_open(hx_client **out, const char *const *urls, size_t n_urls, const hx_client_opts *opts,
               char *err, size_t errsz)
{
	hx_client *c;
	size_t     maxsz, i;
	int        rv = 0;

	if (out == NULL || urls == NULL || n_urls == 0 || opts == NULL || opts->api_key == NULL) {
		hx_errf(err, errsz, "hx_client_open: urls, opts and opts->api_key are required");
		return (HX_INVALID_ARGUMENT);
	}
	if (n_urls > HX_CLIENT_MAX_URLS) {
		hx_errf(err, errsz, "hx_client_open: at most %d URLs", HX_CLIENT_MAX_URLS);
		return (HX_INVALID_ARGUMENT);
	}
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || copy_opts(c, opts) != 0 ||
	    (c->links = calloc(n_urls, sizeof(url_link))) == NULL) {
		hx_errf(err, errsz, "out of memory");
		hx_client_close(c);
		return (HX_RESOURCE_EXHAUSTED);
	}
	maxsz = opts->max_reply_bytes != 0 ? opts->max_reply_bytes : HX_CLIENT_DEFAULT_MAX_REPLY;
	c->maxsz = maxsz;
	rv = open_socket(c, maxsz, err, errsz);
	for (i = 0; rv == 0 && i < n_urls; i++) {
		c->n_links = i + 1;
		rv = add_link(c, &c->links[i], urls[i], err, errsz);
	}
	if (rv != 0) {
		hx_client_close(c);
		return (nng_to_status(rv));
	}
	/* Dial now, in the background: the first call finds the outcome, and
	 * opening never waits for a server that is not up yet. */
	nng_mtx_lock(c->mtx);
	for (i = 0; i < c->n_links; i++) {
		link_kick(c, &c->links[i]);
	}
	nng_mtx_unlock(c->mtx);
	*out = c;
	return (HX_OK);
}

void
hx_client_close(hx_client *c)
{
	size_t i;

	if (c == NULL) {
		return;
	}
	if (c->mtx != NULL) {
		/*
		 * No attempt may be running when the socket closes: nng 1.5's
		 * nng_close() and a synchronous nng_dialer_start() on one of its
		 * dialers can deadlock (seen: 1 close in ~200 right after open).
		 * An attempt ends when the server answers or refuses, or when
		 * the kernel gives up on an unanswered connect.
		 */
		nng_mtx_lock(c->mtx);
		c->closing = true;
		for (i = 0; i < c->n_links; i++) {
			while (c->links[i].state == LINK_DIALING ||
			       c->links[i].state == LINK_RENEWING) {
				nng_cv_wait(c->cv);
			}
		}
		nng_mtx_unlock(c->mtx);
	}
	/* Closing the socket closes its dialers, ends attempts in progress and
	 * aborts calls in flight; then the attempt threads can be joined. */
	if (nng_socket_id(c->sock) > 0) {
		nng_close(c->sock);
	}
	for (i = 0; i < c->n_links; i++) {
		if (c->links[i].thr != NULL) {
			nng_thread_destroy(c->links[i].thr);
		}
		free(c->links[i].url);
	}
	free(c->links);
	if (c->cv != NULL) {
		nng_cv_free(c->cv);
	}
	if (c->mtx != NULL) {
		nng_mtx_free(c->mtx);
	}
	if (c->api_key != NULL) {
		/* Do not leave the key lying in freed memory; explicit_bzero is
		 * not optimised away as a dead store the way memset may be. */
		explicit_bzero(c->api_key, strlen(c->api_key));
		free(c->api_key);
	}
	free(c->tls_ca);
	free(c->tls_ca_given);
	free(c->tls_name);
	free(c);
}

/* ---- one round trip ----------------------------------------------------- */

/*
 * Starts op (nng_ctx_send or nng_ctx_recv) on x's aio unless every
 * connection went since x began; under c->mtx, so that pipe_event either
 * sees the operation running (and aborts it) or has already marked x.
 */
static bool
exchange_start(exchange *x, nng_ctx ctx, void (*op)(nng_ctx, nng_aio *))
{
	bool go;

	nng_mtx_lock(x->c->mtx);
	go = !x->lost;
	if (go) {
		op(ctx, x->aio);
	}
	nng_mtx_unlock(x->c->mtx);
	return go;
}

static void
ctx_exchange(nng_ctx ctx, exchange *x, nng_msg *req, uint32_t timeout_ms, nng_msg **rep)
{
	nng_aio *aio = x->aio;
	nng_time deadline = nng_clock() + timeout_ms;
	nng_time now;

	nng_aio_set_timeout(aio, (nng_duration) timeout_ms);
	nng_aio_set_msg(aio, req);
	if (!exchange_start(x, ctx, nng_ctx_send)) {
		nng_msg_free(req);
		return;
	}
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		nng_msg_free(nng_aio_get_msg(aio)); /* a failed send leaves it to us */
		return;
	}
	/* The deadline covers send and receive together. */
	if ((now = nng_clock()) >= deadline) {
		return;
	}
	nng_aio_set_timeout(aio, (nng_duration) (deadline - now));
	if (!exchange_start(x, ctx, nng_ctx_recv)) {
		return;
	}
	nng_aio_wait(aio);
	if (nng_aio_result(aio) == 0) {
		*rep = nng_aio_get_msg(aio);
	}
}

/* Enters x in the calls in flight; false (not entered) when every
 * connection is already gone. */
static bool
exchange_enter(exchange *x)
{
	hx_client *c = x->c;
	bool       ok;

	nng_mtx_lock(c->mtx);
	ok = !all_lost(c);
	if (ok) {
		x->next = c->inflight;
		x->prev = NULL;
		if (c->inflight != NULL) {
			c->inflight->prev = x;
		}
		c->inflight = x;
	}
	nng_mtx_unlock(c->mtx);
	return ok;
}

static void
exchange_leave(exchange *x)
{
	hx_client *c = x->c;

	nng_mtx_lock(c->mtx);
	if (x->prev != NULL) {
		x->prev->next = x->next;
	} else {
		c->inflight = x->next;
	}
	if (x->next != NULL) {
		x->next->prev = x->prev;
	}
	nng_mtx_unlock(c->mtx);
}

/*
 * Sends `req` (always consumed) and waits for the reply within timeout_ms.
 * Returns 0 with *rep set, or an nng error (NNG_ETIMEDOUT for no answer,
 * NNG_ECONNSHUT when every connection went while it waited: see
 * pipe_event).
 */
static int
roundtrip(hx_client *c, nng_msg *req, uint32_t timeout_ms, nng_msg **rep)
{
	nng_ctx  ctx;
	exchange x = { .c = c };
	int      rv;

	*rep = NULL;
	if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
		nng_msg_free(req);
		return (rv);
	}
	if ((rv = nng_aio_alloc(&x.aio, NULL, NULL)) != 0) {
		nng_msg_free(req);
		nng_ctx_close(ctx);
		return (rv);
	}
	rv = nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME,
	                    (nng_duration) (timeout_ms + HX_RESEND_MARGIN_MS));
	if (rv != 0) {
		nng_msg_free(req);
	} else if (!exchange_enter(&x)) {
		nng_msg_free(req);
		rv = NNG_ECONNSHUT;
	} else {
		ctx_exchange(ctx, &x, req, timeout_ms, rep);
		exchange_leave(&x);
		rv = *rep != NULL ? 0 : x.lost ? NNG_ECONNSHUT : nng_aio_result(x.aio);
		/* Out of time between send and receive: no answer in time. */
		if (*rep == NULL && rv == 0) {
			rv = NNG_ETIMEDOUT;
		}
	}
	nng_aio_free(x.aio);
	nng_ctx_close(ctx);
	return (rv);
}

hx_status
hx_client_call_raw(hx_client *c, const void *req, size_t len, uint32_t timeout_ms, void **resp,
                   size_t *resp_len)
{
	nng_msg *msg, *rep;
	int      rv;

	if (c == NULL || (req == NULL && len > 0) || resp == NULL || resp_len == NULL) {
		return (HX_INVALID_ARGUMENT);
	}
	*resp = NULL;
	*resp_len = 0;
	if (nng_msg_alloc(&msg, len) != 0) {
		return (HX_RESOURCE_EXHAUSTED);
	}
	if (len > 0) {
		memcpy(nng_msg_body(msg), req, len);
	}
	timeout_ms = effective_timeout(c, timeout_ms);
	if ((rv = await_link(c, nng_clock() + timeout_ms, NULL, 0)) != 0) {
		nng_msg_free(msg);
		return (rv == NNG_ETIMEDOUT ? HX_DEADLINE_EXCEEDED : HX_UNAVAILABLE);
	}
	if ((rv = roundtrip(c, msg, timeout_ms, &rep)) != 0) {
		return (nng_to_status(rv));
	}
	/* malloc(0) may return NULL; always hand back a freeable buffer. */
	*resp_len = nng_msg_len(rep);
	if ((*resp = malloc(*resp_len + 1)) == NULL) {
		*resp_len = 0;
		nng_msg_free(rep);
		return (HX_RESOURCE_EXHAUSTED);
	}
	memcpy(*resp, nng_msg_body(rep), *resp_len);
	nng_msg_free(rep);
	return (HX_OK);
}

/* ---- replies ------------------------------------------------------------ */

void
hx_reply_free(hx_reply *r)
{
	if (r == NULL) {
		return;
	}
	free_text(r->message);
	free_text(r->request_id);
	free(r->violations);
	hx_spare_free(&rows_spare, r->rows);
	memset(r, 0, sizeof(*r));
}

/* Fills a reply that carries no server answer. */
static hx_status reply_local(hx_reply *out, hx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static hx_status
reply_local(hx_reply *out, hx_status code, const char *fmt, ...)
{
	char    buf[2048];
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hx_reply_free(out);
	out->code = code;
	if ((out->message = dup_or_empty(buf)) == NULL) {
		out->message = empty_text;
	}
	out->request_id = empty_text;
	return (code);
}

/* Names the request we sent in a reply made here: a local reply has no
 * server's echo, and the caller still wants to look the request up later. */
static hx_status
reply_set_id(hx_reply *out, const char *request_id)
{
	free_text(out->request_id);
	if ((out->request_id = dup_or_empty(request_id)) == NULL) {
		out->request_id = empty_text;
	}
	return (out->code);
}

/*
 * No answer. The reply still names the request_id that was sent, so the
 * caller can look the request up (or retry it as a replay) later.
 */
static hx_status
reply_no_answer(hx_reply *out, int rv, uint32_t timeout_ms, const char *request_id)
{
	if (rv == NNG_ETIMEDOUT) {
		reply_local(out, HX_DEADLINE_EXCEEDED, "no answer from the server within %u ms",
		            (unsigned) timeout_ms);
	} else if (rv == NNG_ENOMEM) {
		reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		reply_local(out, HX_UNAVAILABLE, "%s", nng_strerror(rv));
	}
	return (reply_set_id(out, request_id));
}

static int
copy_status(hx_reply *out, const Heliox__Ingest__V1__Status *st)
{
	size_t i;

	/* proto3: an absent status is the default one, code OK. */
	out->code = st != NULL ? (hx_status) st->code : HX_OK;
	if ((out->message = dup_or_empty(st != NULL ? st->message : NULL)) == NULL) {
		return (-1);
	}
	if (st == NULL || st->n_violations == 0) {
		return (0);
	}
	if ((out->violations = calloc(st->n_violations, sizeof(hx_violation))) == NULL) {
		return (-1);
	}
	out->n_violations = st->n_violations;
	for (i = 0; i < st->n_violations; i++) {
		copy_field(out->violations[i].field, HX_FIELD_MAX, st->violations[i]->field);
		copy_field(out->violations[i].description, HX_DESC_MAX,
		           st->violations[i]->description);
	}
	return (0);
}

static void
copy_ingest(hx_ingest_result *d, const Heliox__Ingest__V1__IngestResult *s)
{
	d->received = s->received;
	d->inserted = s->inserted;
	d->updated = s->updated;
	d->unchanged = s->unchanged;
	d->failed = s->failed;
	d->deleted = s->deleted;
	d->duration_us = s->duration_us;
	d->replayed = s->replayed != 0;
	d->dry_run = s->dry_run != 0;
}

static void
copy_health(hx_health_result *d, const Heliox__Ingest__V1__HealthResult *s)
{
	d->serving = s->serving != 0;
	d->database_ok = s->database_ok != 0;
	copy_field(d->version, sizeof(d->version), s->version);
	d->uptime_s = s->uptime_s;
}

static int
copy_rows(hx_reply *out, const Heliox__Ingest__V1__SummaryResult *s)
{
	hx_summary_row *r;
	size_t          i;

	if (s->n_rows == 0) {
		return (0);
	}
	if (s->n_rows > SIZE_MAX / sizeof(hx_summary_row) ||
	    (out->rows = hx_spare_alloc(&rows_spare, s->n_rows * sizeof(hx_summary_row))) == NULL) {
		return (-1);
	}
	/* Zeroed as calloc would: no byte of an earlier reply stays behind a
	 * field's end. */
	memset(out->rows, 0, s->n_rows * sizeof(hx_summary_row));
	out->n_rows = s->n_rows;
	for (i = 0; i < s->n_rows; i++) {
		const Heliox__Ingest__V1__SummaryRow *w = s->rows[i];

		r = &out->rows[i];
		copy_field(r->date, sizeof(r->date), w->date);
		copy_field(r->provider, sizeof(r->provider), w->provider);
		copy_field(r->gpu_type, sizeof(r->gpu_type), w->gpu_type);
		r->records = w->records;
		copy_field(r->total_usd, sizeof(r->total_usd), w->total_usd);
		copy_field(r->avg_usd, sizeof(r->avg_usd), w->avg_usd);
		copy_field(r->min_usd, sizeof(r->min_usd), w->min_usd);
		copy_field(r->max_usd, sizeof(r->max_usd), w->max_usd);
		copy_field(r->gpu_hours, sizeof(r->gpu_hours), w->gpu_hours);
		copy_field(r->usd_per_gpu_hour, sizeof(r->usd_per_gpu_hour), w->usd_per_gpu_hour);
	}
	return (0);
}

static int
copy_result(hx_reply *out, const rpc_response *rsp)
{
	switch (rsp->result_case) {
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST:
		out->kind = HX_RESULT_INGEST;
		copy_ingest(&out->ingest, rsp->ingest);
		return (0);
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH:
		out->kind = HX_RESULT_HEALTH;
		copy_health(&out->health, rsp->health);
		return (0);
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY:
		out->kind = HX_RESULT_SUMMARY;
		return (copy_rows(out, rsp->summary));
	default:
		out->kind = HX_RESULT_NONE;
		return (0);
	}
}

/*
 * Unpacks the reply bytes into `out`. protobuf-c allocates from an arena
 * that dies with this call, since everything is copied out: a 1,000-row
 * Summary is 11,000 pieces. Its first block is five times the message:
 * unpacked, a 1,000-row Summary takes 4.2 times its wire bytes, so one
 * block does.
 */
static hx_status
decode_reply(nng_msg *rep, const char *request_id, hx_reply *out)
{
	hx_arena           arena;
	ProtobufCAllocator alloc = { hx_arena_cb_alloc, hx_arena_cb_free, &arena };
	rpc_response      *rsp;
	size_t             len = nng_msg_len(rep);
	int                rv;

	hx_arena_init(&arena, len < SIZE_MAX / 8 ? len * 5 + 1024 : len, &decode_spare);
	rsp = heliox__ingest__v1__rpc_response__unpack(&alloc, len, nng_msg_body(rep));
	if (rsp == NULL) {
		hx_arena_free(&arena, 0);
		reply_local(out, HX_INTERNAL, "undecodable reply");
		return (reply_set_id(out, request_id));
	}
	hx_reply_free(out);
	rv = copy_status(out, rsp->status);
	if (rv == 0 && (out->request_id = dup_or_empty(rsp->request_id)) == NULL) {
		rv = -1;
	}
	if (rv == 0) {
		rv = copy_result(out, rsp);
	}
	hx_arena_free(&arena, 0);
	if (rv != 0) {
		return (reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	return (out->code);
}

/* ---- typed calls -------------------------------------------------------- */

/*
 * No connection to any server: UNAVAILABLE when every URL failed (nobody is
 * there: `why` names each URL's cause), DEADLINE_EXCEEDED when an attempt
 * was still running at the deadline.
 */
static hx_status
reply_no_link(hx_reply *out, int rv, uint32_t timeout_ms, const char *why, const char *request_id)
{
	if (rv == NNG_ETIMEDOUT) {
		reply_local(out, HX_DEADLINE_EXCEEDED,
		            "no connection to the server within %u ms: %s", (unsigned) timeout_ms,
		            why);
	} else {
		reply_local(out, HX_UNAVAILABLE, "cannot connect to %s", why);
	}
	return (reply_set_id(out, request_id));
}

/*
 * Sends the packed request, retrying an UNAVAILABLE answer with back-off
 * within the retry window and the deadline. The same bytes (and so the same
 * request_id) go out every time, so the server's replay makes a retried
 * ingest safe even if the first attempt did commit. A failure to connect is
 * not retried here: it is reported at once, with its cause.
 */
static hx_status
call_packed(hx_client *c, const uint8_t *buf, size_t len, uint32_t timeout_ms,
            const char *request_id, hx_reply *out)
{
	nng_time     start = nng_clock();
	nng_time     deadline = start + timeout_ms;
	nng_time     retry_end = start + c->retry_window_ms;
	nng_duration backoff = HX_RETRY_BACKOFF_MS;
	nng_msg     *msg, *rep;
	nng_time     now;
	char         why[1536];
	int          rv;

	for (;;) {
		if (nng_clock() >= deadline) {
			return (reply_no_answer(out, NNG_ETIMEDOUT, timeout_ms, request_id));
		}
		if ((rv = await_link(c, deadline, why, sizeof(why))) != 0) {
			return (reply_no_link(out, rv, timeout_ms, why, request_id));
		}
		if ((rv = nng_msg_alloc(&msg, len)) != 0) {
			return (reply_no_answer(out, rv, timeout_ms, request_id));
		}
		memcpy(nng_msg_body(msg), buf, len);
		now = nng_clock();
		rv = roundtrip(c, msg, (uint32_t) (deadline > now ? deadline - now : 1), &rep);
		if (rv == NNG_ECONNSHUT) {
			/* Every connection went while we waited: renew the links
			 * (await_link) and send the same bytes again, or say why
			 * nobody is there. A replay makes the resend safe. */
			continue;
		}
		if (rv != 0) {
			return (reply_no_answer(out, rv, timeout_ms, request_id));
		}
		decode_reply(rep, request_id, out);
		nng_msg_free(rep);
		now = nng_clock();
		if (out->code != HX_UNAVAILABLE || now + (nng_time) backoff >= deadline ||
		    now + (nng_time) backoff >= retry_end) {
			return (out->code);
		}
		nng_msleep(backoff);
		backoff =
		    backoff * 2 > HX_RETRY_BACKOFF_MAX_MS ? HX_RETRY_BACKOFF_MAX_MS : backoff * 2;
	}
}

/* Fills the fields every request carries and sends it. */
static hx_status
call(hx_client *c, rpc_request *req, const hx_call_opts *o, hx_reply *out)
{
	uint32_t  timeout_ms = effective_timeout(c, o != NULL ? o->timeout_ms : 0);
	uint8_t  *buf;
	size_t    len;
	hx_status st;

	req->api_key = c->api_key;
	req->request_id = wire_str(o != NULL ? o->request_id : NULL);
	req->base_request_id = wire_str(o != NULL ? o->base_request_id : NULL);
	req->timeout_ms = timeout_ms; /* the server derives its own deadline */
	len = heliox__ingest__v1__rpc_request__get_packed_size(req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		return (reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	heliox__ingest__v1__rpc_request__pack(req, buf);
	st = call_packed(c, buf, len, timeout_ms, req->request_id, out);
	free(buf);
	return (st);
}

/* Every typed call starts from a clean reply, so that `out` is always fully
 * defined on return whatever happened. */
static bool
begin(const hx_client *c, hx_reply *out)
{
	if (out == NULL) {
		return (false);
	}
	memset(out, 0, sizeof(*out));
	if (c == NULL) {
		reply_local(out, HX_INVALID_ARGUMENT, "no client");
		return (false);
	}
	return (true);
}

static hx_status
call_ingest(hx_client *c, const Heliox__Ingest__V1__IngestRequest *source, const hx_ingest_opts *o,
            hx_reply *out)
{
	/* A copy: the windows and provenance below live only for this call. */
	Heliox__Ingest__V1__IngestRequest  ing = *source;
	rpc_request                        req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__Provenance     prov = HELIOX__INGEST__V1__PROVENANCE__INIT;
	Heliox__Ingest__V1__ReplaceWindow *win = NULL, **ptrs = NULL;
	size_t                             n = o != NULL && o->replace != NULL ? o->n_replace : 0;
	size_t                             i;
	hx_status                          st;

	ing.dry_run = o != NULL && o->dry_run;
	ing.skip_invalid = o != NULL && o->skip_invalid;
	ing.client_failed = o != NULL ? o->client_failed : 0;
	if (n > 0 &&
	    ((win = calloc(n, sizeof(*win))) == NULL ||
	     (ptrs = calloc(n, sizeof(Heliox__Ingest__V1__ReplaceWindow *))) == NULL)) {
		free(win);
		return (reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	for (i = 0; i < n; i++) {
		heliox__ingest__v1__replace_window__init(&win[i]);
		win[i].provider = wire_str(o->replace[i].provider);
		win[i].from_date = wire_str(o->replace[i].from_date);
		win[i].to_date = wire_str(o->replace[i].to_date);
		ptrs[i] = &win[i];
	}
	ing.n_replace = n;
	ing.replace = ptrs;
	if (o != NULL && o->provenance != NULL) {
		prov.format = wire_str(o->provenance->format);
		prov.name = wire_str(o->provenance->name);
		prov.mapping_version = wire_str(o->provenance->mapping_version);
		ing.provenance = &prov;
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	req.ingest = &ing;
	st = call(c, &req, o != NULL ? &o->call : NULL, out);
	free(ptrs);
	free(win);
	return (st);
}

hx_status
hx_client_ingest_mock(hx_client *c, const hx_ingest_opts *o, hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_MOCK;
	ing.mock = 1;
	return (call_ingest(c, &ing, o, out));
}

hx_status
hx_client_ingest_json(hx_client *c, const void *json, size_t len, const hx_ingest_opts *o,
                      hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (json == NULL && len > 0) {
		return (reply_local(out, HX_INVALID_ARGUMENT, "no export document"));
	}
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_EXPORT_JSON;
	ing.export_json.len = len;
	ing.export_json.data = wire_ptr(json);
	return (call_ingest(c, &ing, o, out));
}

hx_status
hx_client_ingest_records(hx_client *c, const hx_cost_record *recs, size_t n,
                         const hx_ingest_opts *o, hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	Heliox__Ingest__V1__RecordBatch   batch = HELIOX__INGEST__V1__RECORD_BATCH__INIT;
	Heliox__Ingest__V1__CostRecord   *wire = NULL, **ptrs = NULL;
	hx_status                         st;
	size_t                            i;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (recs == NULL && n > 0) {
		return (reply_local(out, HX_INVALID_ARGUMENT, "no records"));
	}
	if (n > 0 &&
	    ((wire = calloc(n, sizeof(*wire))) == NULL ||
	     (ptrs = calloc(n, sizeof(Heliox__Ingest__V1__CostRecord *))) == NULL)) {
		free(wire);
		return (reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	for (i = 0; i < n; i++) {
		heliox__ingest__v1__cost_record__init(&wire[i]);
		wire[i].date = wire_str(recs[i].date);
		wire[i].provider = wire_str(recs[i].provider);
		wire[i].gpu_type = wire_str(recs[i].gpu_type);
		wire[i].cost_usd = wire_str(recs[i].cost_usd);
		wire[i].gpu_hours = wire_str(recs[i].gpu_hours);
		ptrs[i] = &wire[i];
	}
	batch.n_records = n;
	batch.records = ptrs;
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS;
	ing.records = &batch;
	st = call_ingest(c, &ing, o, out);
	free(ptrs);
	free(wire);
	return (st);
}

hx_status
hx_client_health(hx_client *c, const hx_call_opts *o, hx_reply *out)
{
	rpc_request                       req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__HealthRequest h = HELIOX__INGEST__V1__HEALTH_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH;
	req.health = &h;
	return (call(c, &req, o, out));
}

hx_status
hx_client_summary(hx_client *c, const hx_summary_query *q, const hx_call_opts *o, hx_reply *out)
{
	rpc_request                        req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__SummaryRequest s = HELIOX__INGEST__V1__SUMMARY_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (q != NULL) {
		s.from_date = wire_str(q->from_date);
		s.to_date = wire_str(q->to_date);
		s.provider = wire_str(q->provider);
		s.gpu_type = wire_str(q->gpu_type);
		s.group_by = (Heliox__Ingest__V1__GroupBy) q->group_by;
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY;
	req.summary = &s;
	return (call(c, &req, o, out));
}
