/*
 * client_int.h - what the client library's files share (clients/lib/):
 * the client and link types, the limits, and the calls between files.
 *
 *   client.c  hx_client_open/close, one round trip, the typed calls
 *   link.c    dialing each URL, TLS, and why a connection failed
 *   reply.c   replies: decoding, copying, local errors, hx_reply_free
 *
 * client.c calls into link.c and reply.c, never the other way round.
 * Internal names carry the hxc_ prefix; nothing here is exported (the
 * library is built with hidden visibility).
 */
#ifndef HELIOX_CLIENT_INT_H
#define HELIOX_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "heliox/client.h"
#include "heliox/ingest/v1/ingest.pb-c.h"

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

/* One call in flight (client.c's roundtrip), listed in c->inflight. */
typedef struct exchange {
	hx_client       *c;
	nng_aio         *aio;
	bool             lost; /* every connection went meanwhile; under c->mtx */
	struct exchange *prev, *next;
} exchange;

/* ---- link.c ---------------------------------------------------------------- */

/* The CA file a TLS link verifies against (tls_ca_file, $SSL_CERT_FILE or
 * the system bundle); borrowed from o or the environment. */
const char *hxc_tls_ca_path(const hx_client_opts *o);

/* Sets up link l for url (a stopped dialer with the client's options);
 * 0 or an nng error, said in err. */
int hxc_add_link(hx_client *c, url_link *l, const char *url, char *err, size_t errsz);

/* Starts an attempt on an idle link. Called with c->mtx held. */
void hxc_link_kick(hx_client *c, url_link *l);

/* nng's pipe notification: counts connections, aborts calls in flight
 * when the last one goes. */
void hxc_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg);

/* Whether every connection is gone and no link is up. Under c->mtx. */
bool hxc_all_lost(const hx_client *c);

/* Waits until a connection is up: 0, NNG_ECONNREFUSED (every link failed)
 * or NNG_ETIMEDOUT; `why` (may be NULL) says each link's state. */
int hxc_await_link(hx_client *c, nng_time deadline, char *why, size_t whysz);

/* ---- reply.c --------------------------------------------------------------- */

/* A reply made here, with no server's answer: `out`'s old contents are
 * freed; returns code. */
hx_status hxc_reply_local(hx_reply *out, hx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets a local reply's request_id (the id we sent); returns out->code. */
hx_status hxc_reply_set_id(hx_reply *out, const char *request_id);
/* No answer in time, or the send failed (rv, nng's); named by request_id. */
hx_status hxc_reply_no_answer(hx_reply *out, int rv, uint32_t timeout_ms, const char *request_id);
/* No connection (rv from hxc_await_link, `why` its text). */
hx_status hxc_reply_no_link(hx_reply *out, int rv, uint32_t timeout_ms, const char *why,
                            const char *request_id);

/* Unpacks the reply message (borrowed) into `out`. */
hx_status hxc_decode_reply(nng_msg *rep, const char *request_id, hx_reply *out);

#endif /* HELIOX_CLIENT_INT_H */
