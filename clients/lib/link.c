/*
 * link.c - the client's connections: one dialer per server URL, started on
 * a helper thread so that a failed attempt says exactly why (refused, name
 * not resolved, TLS), the pipe notifications that count connections, and
 * the wait for one (hxc_await_link). See client_int.h.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "base/errf.h"
#include "client_int.h"

/*
 * After a connection drops nng redials by itself; a short first wait lets a
 * restarted server be found again within a fraction of a second, the cap
 * keeps a server that stays away from being hammered.
 */
#define HX_RECONNECT_MIN_MS 100
#define HX_RECONNECT_MAX_MS 2000

/* ---- TLS ------------------------------------------------------------------- */

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

const char *
hxc_tls_ca_path(const hx_client_opts *o)
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
 * certificate must always verify (against hxc_tls_ca_path()) and name the server
 * (the caller's name, else the URL's host). There is no unverified mode: the
 * API key travels in every request, and an unverified link hands it to
 * whoever sits in the middle. With no CA to verify against, the open fails.
 */
static int
tls_setup(nng_tls_config *cfg, const char *url, const hx_client_opts *o, char *err, size_t errsz)
{
	const char *name = o->tls_server_name;
	const char *ca = hxc_tls_ca_path(o);
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
void
hxc_link_kick(hx_client *c, url_link *l)
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
/* Whether every connection is gone and no link is up: a request in flight
 * has nowhere to go until a link is renewed. */
bool
hxc_all_lost(const hx_client *c)
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
 * fails, so the next call renews it (hxc_await_link) and learns the cause.
 */
void
hxc_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
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
	if (ev == NNG_PIPE_EV_REM_POST && hxc_all_lost(c)) {
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
 * dialer may call hxc_pipe_event.
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
	hxc_link_kick(c, l);
}

/*
 * Waits until a connection is up. Every idle link gets a fresh attempt;
 * when all of them have failed since, the call fails at once with each
 * link's cause: nobody is there, and waiting would not change that.
 * Returns 0 (connected), NNG_ECONNREFUSED (all failed: `why` says how) or
 * NNG_ETIMEDOUT (still trying at the deadline: `why` says what).
 */
int
hxc_await_link(hx_client *c, nng_time deadline, char *why, size_t whysz)
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
		hxc_link_kick(c, &c->links[i]);
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

int
hxc_add_link(hx_client *c, url_link *l, const char *url, char *err, size_t errsz)
{
	l->c = c;
	l->state = LINK_IDLE;
	if ((l->url = strdup(url)) == NULL) {
		hx_errf(err, errsz, "out of memory");
		return (NNG_ENOMEM);
	}
	return (make_dialer(c, url, &l->d, err, errsz));
}
