/*
 * server.c - heliox-ingestd: startup, the worker loop, and shutdown.
 *
 * Where a request goes:
 *
 *   client (nng req0) --tcp:// | ipc:// | tls+tcp://--> our rep0 socket
 *     -> dispatch.c: a receiving context hands it to the worker that went
 *        idle last (so sequential calls stay on one warm worker)
 *     -> worker_main()
 *     -> hx_rpc_handle() (rpc.c): size limit, decode, auth, method
 *          -> hx_store_*() (store*.c) on the worker's own PostgreSQL connection
 *     -> the reply bytes replace the request's body in the same nng_msg
 *     -> nng_ctx_send on the context it came on: rep0 routes it to the asking
 *        client
 *
 * Each of the --workers N threads owns one aio and one database
 * connection, so workers share nothing but the read-only hx_rpc_config,
 * the dispatcher and the auth-failure throttle; one slow ingest holds one
 * worker, not the server.
 *
 * A peer that keeps failing auth gets its failure replies late (auth.h says
 * how late). A worker never sleeps for that, which would slow everyone: it
 * hands the reply, with the context the request came on, to a deferred slot
 * (an aio that sleeps, then sends), opens a fresh context and goes back to
 * work. The slots are few and fixed; with none free the reply is dropped
 * and the guesser's client times out.
 *
 * Startup: flags (config.c) -> API keys -> mock export -> migrations ->
 * signals blocked -> socket + listeners -> workers -> main thread sigwait()s.
 * Shutdown: each worker finishes and answers the request it holds, then
 * listeners and socket close (see server_shutdown for why in that order).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "auth.h"
#include "base/clock.h"
#include "config.h"
#include "dispatch.h"
#include "heliox/heliox.h"
#include "log.h"
#include "rpc.h"
#include "metrics.h"
#include "metrics_http.h"
#include "peerwatch.h"
#include "store.h"

#define MOCK_FILE       "mock_cost_export.json"
#define MOCK_MAX_BYTES  (64L * 1024 * 1024) /* sanity cap on the file read at startup */
#define PEM_MAX_BYTES   (1L * 1024 * 1024)
#define MIGRATE_WAIT_MS 30000u
#define SEND_TIMEOUT_MS 10000 /* a reply queued behind others on one connection */
#define DRAIN_MS        150   /* see server_shutdown() */
#define CLOSE_WAIT_MS   5000  /* see close_socket() */
#define PEER_MAX        160
#define DEFER_SLOTS     64     /* delayed auth-failure replies at once; more are dropped */
#define RELOAD_WAIT_MS  60000u /* how long a replaced key set waits for requests using it */

/* Exit statuses (SERVICE.md section 7). */
#define EXIT_CLEAN   0
#define EXIT_RUNTIME 1
#define EXIT_CONFIG  2

struct server;

/* One delayed reply: sleeps on its aio, then sends on the context the
 * request came on, then closes that context. */
enum defer_state { DEFER_FREE, DEFER_SLEEPING, DEFER_SENDING };

struct deferred {
	struct server   *srv;
	nng_aio         *aio;
	nng_ctx          ctx;
	enum defer_state state;
};

/*
 * Failed TLS handshakes, per tls+tcp:// listener. nng 1.5 completes (and
 * fails) a handshake inside its listener and tells the application only
 * through the listener's error counters: no callback, no peer address
 * (peerwatch.c finds the addresses). The main thread reads the counters
 * and sweeps the addresses once a second, and logs a WARN line when either
 * grew, at most one per listener per TLS_WATCH_LOG_MS.
 */
#define HX_MAX_LISTEN_WATCH 16
#define TLS_WATCH_LOG_MS    10000
#define TLS_WATCH_PEERS     8    /* addresses named in one line; the rest counted */
#define TLS_NUDGE_GRACE_MS  5000 /* see watch_tls */

struct tls_watch {
	bool     on;
	uint16_t port;                    /* the listener's local port, for peerwatch */
	uint64_t seen;                    /* the counters' sum when last read */
	uint64_t pending;                 /* failures not logged yet */
	uint64_t closed;                  /* connections peerwatch saw close before a pipe */
	unsigned waited;                  /* ticks the two have disagreed */
	uint64_t late_count, late_closed; /* of a line already logged, still to come */
	size_t   n_peers;
	char     peers[TLS_WATCH_PEERS][HX_PEER_TEXT_MAX];
	nng_time last_log;
	nng_time nudged; /* when tls_nudge last ran; 0: never */
};

struct worker {
	struct server   *srv;
	unsigned         id;
	pthread_t        thread;
	bool             started;
	hx_store        *store;
	hx_metrics_slot *slot; /* this worker's counters: it is their only writer */
};

struct server {
	hx_server_config conf;
	hx_rpc_config    rpc;
	hx_auth         *auth;
	char            *mock;
	char            *tls_cert_pem;
	char            *tls_key_pem;
	nng_tls_config  *tls;
	nng_socket       sock;
	bool             sock_open;
	nng_listener    *listeners;
	size_t           n_listeners;
	struct worker   *workers;
	hx_dispatch     *dispatch;
	unsigned         n_workers;
	atomic_bool      stopping;
	hx_throttle     *throttle;
	struct deferred  deferred[DEFER_SLOTS];
	struct deferred *defer_free[DEFER_SLOTS]; /* a stack of the free slots */
	size_t           n_defer_free;
	pthread_mutex_t  defer_lk;
	bool             defer_lk_ok;
	hx_metrics       metrics;
	bool             metrics_ok;
	hx_dbwatch       watch;
	bool             watch_ok;
	hx_http         *http;
	struct tls_watch tls_watch[HX_MAX_LISTEN_WATCH];
};

/* ---- small helpers ---------------------------------------------------------- */

/*
 * Reads a whole file into a NUL-terminated buffer (PEM text and the mock
 * JSON both want that). Returns 0, or an errno value (EFBIG above max).
 */
static int
read_file(const char *path, long max, char **out, size_t *len)
{
	FILE       *f;
	struct stat st;
	char       *buf;
	size_t      n;
	int         err = 0;

	if ((f = fopen(path, "rb")) == NULL) {
		return (errno);
	}
	if (fstat(fileno(f), &st) != 0) {
		err = errno;
	} else if (!S_ISREG(st.st_mode)) {
		err = EINVAL;
	} else if (st.st_size > max) {
		err = EFBIG;
	} else if ((buf = malloc((size_t) st.st_size + 1)) == NULL) {
		err = ENOMEM;
	} else {
		n = fread(buf, 1, (size_t) st.st_size, f);
		if (ferror(f)) {
			err = EIO;
			free(buf);
		} else {
			buf[n] = '\0';
			*out = buf;
			*len = n;
		}
	}
	fclose(f);
	return (err);
}

/* Frees a buffer that held key material, wiping it first. */
static void
free_secret(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

/* "ip:port", "[ip6]:port" or the ipc path of a peer's address. */
static void
peer_text(const nng_sockaddr *a, char *buf, size_t sz)
{
	const nng_sockaddr sa = *a;
	char               ip[INET6_ADDRSTRLEN];

	switch (sa.s_family) {
	case NNG_AF_INET:
		if (inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip)) != NULL) {
			snprintf(buf, sz, "%s:%u", ip, (unsigned) ntohs(sa.s_in.sa_port));
		}
		break;
	case NNG_AF_INET6:
		if (inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip)) != NULL) {
			snprintf(buf, sz, "[%s]:%u", ip, (unsigned) ntohs(sa.s_in6.sa_port));
		}
		break;
	case NNG_AF_IPC:
		snprintf(buf, sz, "%s", sa.s_ipc.sa_path);
		break;
	case NNG_AF_ABSTRACT:
		snprintf(buf, sz, "@%.*s", (int) sa.s_abstract.sa_len,
		         (const char *) sa.s_abstract.sa_name);
		break;
	default:
		break;
	}
}

/*
 * Whom an auth failure counts against: the address without the port (a
 * guesser reconnecting from a new port is the same guesser), an IPv6 /64
 * (one host usually owns a whole one), or, for ipc:// and abstract://,
 * which carry no address, the connection itself.
 */
static void
peer_id(const nng_sockaddr *sa, nng_pipe p, hx_peer_id *id)
{
	uint32_t pid = (uint32_t) nng_pipe_id(p);

	memset(id, 0, sizeof(*id));
	switch (sa->s_family) {
	case NNG_AF_INET:
		id->kind = HX_PEER_IPV4;
		memcpy(id->bytes, &sa->s_in.sa_addr, sizeof(sa->s_in.sa_addr));
		break;
	case NNG_AF_INET6:
		id->kind = HX_PEER_IPV6_64;
		memcpy(id->bytes, sa->s_in6.sa_addr, sizeof(id->bytes));
		break;
	case NNG_AF_IPC:
	case NNG_AF_ABSTRACT:
		id->kind = HX_PEER_CONN;
		memcpy(id->bytes, &pid, sizeof(pid));
		break;
	default:
		break;
	}
}

/* Names the connection msg came on, for logs and for the throttle; "-" and
 * HX_PEER_NONE when nng cannot say (the connection may already be gone). */
static void
peer_of(nng_msg *msg, char *buf, size_t sz, hx_peer_id *id)
{
	nng_sockaddr sa;
	nng_pipe     p = nng_msg_get_pipe(msg);

	snprintf(buf, sz, "-");
	memset(id, 0, sizeof(*id));
	if (nng_pipe_id(p) <= 0 || nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
		return;
	}
	peer_text(&sa, buf, sz);
	peer_id(&sa, p, id);
}

/* ---- delayed replies ---------------------------------------------------------- */

static struct deferred *
defer_take(struct server *srv)
{
	struct deferred *d = NULL;

	pthread_mutex_lock(&srv->defer_lk);
	if (srv->n_defer_free > 0) {
		d = srv->defer_free[--srv->n_defer_free];
	}
	pthread_mutex_unlock(&srv->defer_lk);
	return (d);
}

static void
defer_put(struct deferred *d)
{
	struct server *srv = d->srv;

	pthread_mutex_lock(&srv->defer_lk);
	d->state = DEFER_FREE;
	srv->defer_free[srv->n_defer_free++] = d;
	pthread_mutex_unlock(&srv->defer_lk);
}

/*
 * Runs on nng's threads, once when the sleep ends and once when the send
 * does (or when either is cancelled at shutdown). A failed sleep or send
 * leaves the message with us.
 */
static void
defer_cb(void *arg)
{
	struct deferred *d = arg;
	int              rv = nng_aio_result(d->aio);
	nng_msg         *msg;

	if (d->state == DEFER_SLEEPING && rv == 0) {
		d->state = DEFER_SENDING;
		nng_aio_set_timeout(d->aio, SEND_TIMEOUT_MS);
		nng_ctx_send(d->ctx, d->aio);
		return;
	}
	if (rv != 0 && (msg = nng_aio_get_msg(d->aio)) != NULL) {
		nng_msg_free(msg);
	}
	nng_aio_set_msg(d->aio, NULL);
	nng_ctx_close(d->ctx);
	defer_put(d);
}

static int
defer_init(struct server *srv)
{
	int rv;

	if ((rv = pthread_mutex_init(&srv->defer_lk, NULL)) != 0) {
		hx_error("-", "cannot create a mutex: %s", strerror(rv));
		return (EXIT_RUNTIME);
	}
	srv->defer_lk_ok = true;
	if ((srv->throttle = hx_throttle_new()) == NULL) {
		hx_error("-", "out of memory");
		return (EXIT_RUNTIME);
	}
	for (size_t i = 0; i < DEFER_SLOTS; i++) {
		struct deferred *d = &srv->deferred[i];

		d->srv = srv;
		if ((rv = nng_aio_alloc(&d->aio, defer_cb, d)) != 0) {
			hx_error("-", "cannot allocate an aio: %s", nng_strerror(rv));
			return (EXIT_RUNTIME);
		}
		srv->defer_free[srv->n_defer_free++] = d;
	}
	return (EXIT_CLEAN);
}

/* Stops every delayed reply (their messages are freed and contexts closed
 * by defer_cb, which nng_aio_stop waits for): a guesser gets no answer at
 * shutdown. Call with the workers joined, so that no new one starts. */
static void
defer_stop(struct server *srv)
{
	for (size_t i = 0; i < DEFER_SLOTS; i++) {
		if (srv->deferred[i].aio != NULL) {
			nng_aio_stop(srv->deferred[i].aio);
		}
	}
}

static void
defer_free_all(struct server *srv)
{
	for (size_t i = 0; i < DEFER_SLOTS; i++) {
		if (srv->deferred[i].aio != NULL) {
			nng_aio_free(srv->deferred[i].aio);
			srv->deferred[i].aio = NULL;
		}
	}
	if (srv->defer_lk_ok) {
		pthread_mutex_destroy(&srv->defer_lk);
		srv->defer_lk_ok = false;
	}
	hx_throttle_free(srv->throttle);
	srv->throttle = NULL;
}

/* ---- the worker loop -------------------------------------------------------- */

/*
 * Sends the reply in msg after delay_ms, without waiting: the context
 * holding the request goes with the reply to a deferred slot, and the
 * job's receiving slot carries on with a fresh one. Without a free slot or
 * a fresh context the reply is dropped (the next receive on the context
 * abandons the request), which only the throttled peer notices.
 */
static void
worker_defer(struct worker *w, hx_dispatch_job *job, nng_msg *msg, unsigned delay_ms,
             const char *peer)
{
	struct deferred *d = defer_take(w->srv);
	nng_ctx          fresh;
	int              rv;

	if (d == NULL) {
		hx_debug("-", "worker %u: no free delay slot; auth failure reply to %s dropped",
		         w->id, peer);
		nng_msg_free(msg);
		return;
	}
	if ((rv = nng_ctx_open(&fresh, w->srv->sock)) != 0) {
		hx_warn("-", "worker %u: auth failure reply to %s dropped: %s", w->id, peer,
		        nng_strerror(rv));
		defer_put(d);
		nng_msg_free(msg);
		return;
	}
	d->ctx = *job->ctx;
	*job->ctx = fresh;
	d->state = DEFER_SLEEPING;
	nng_aio_set_msg(d->aio, msg);
	nng_sleep_aio((nng_duration) delay_ms, d->aio);
}

/* Counts the request's auth outcome against its peer; returns how long its
 * reply must wait (0: not at all). */
static unsigned
worker_throttle(struct worker *w, const hx_rpc_outcome *oc, const hx_peer_id *id, const char *peer)
{
	uint64_t now_ms = hx_clock_us() / 1000u;
	unsigned delay = 0;
	bool     began = false;

	if (oc->auth == HX_RPC_AUTH_OK) {
		hx_throttle_success(w->srv->throttle, id, now_ms);
	} else if (oc->auth == HX_RPC_AUTH_FAILED) {
		delay = hx_throttle_failure(w->srv->throttle, id, now_ms, &began);
	}
	if (began) {
		hx_warn("-",
		        "peer %s: more than %d auth failures within %u s; its failed "
		        "replies are now delayed (up to %u ms)",
		        peer, HX_THROTTLE_FREE, HX_THROTTLE_WINDOW_MS / 1000u, HX_THROTTLE_CAP_MS);
	}
	return (delay);
}

/* Adds a finished request to the worker's own metrics, and marks the
 * worker idle again. */
static void
worker_count(struct worker *w, const hx_rpc_outcome *oc, bool answered)
{
	hx_metric_event ev = { 0 };

	if (answered) {
		ev.method = hx_metric_method_of(oc->method);
		ev.code = oc->code;
		ev.duration_us = oc->duration_us;
		ev.auth_failed = oc->auth == HX_RPC_AUTH_FAILED;
		ev.has_records = oc->has_counts;
		ev.records[HX_OUTCOME_INSERTED] = oc->inserted;
		ev.records[HX_OUTCOME_UPDATED] = oc->updated;
		ev.records[HX_OUTCOME_UNCHANGED] = oc->unchanged;
		ev.records[HX_OUTCOME_FAILED] = oc->failed;
		ev.records[HX_OUTCOME_DELETED] = oc->deleted;
		hx_metrics_record(w->slot, &ev);
	}
	atomic_fetch_add_explicit(&w->slot->served, 1, memory_order_seq_cst);
	atomic_store(&w->slot->inflight, 0u);
}

/* Answers one request: returns its reply to send now, or NULL (sent later
 * or dropped). Never fails the loop: a request we cannot answer is dropped
 * with a log line, and the client's REQ resends or times out. */
static nng_msg *
worker_serve(struct worker *w, hx_dispatch_job *job, char *peer, size_t peer_sz)
{
	nng_msg       *msg = job->msg;
	hx_peer_id     id;
	hx_rpc_outcome oc;
	uint8_t       *out = NULL;
	size_t         out_len = 0;
	unsigned       delay;
	hx_status      st;
	int            rv;

	peer_of(msg, peer, peer_sz, &id);
	/* Seq-cst, before the request reads the key set: reload() relies on
	 * it (see reload_wait). */
	atomic_store(&w->slot->inflight, 1u);
	st = hx_rpc_handle(&w->srv->rpc, w->store, nng_msg_body(msg), nng_msg_len(msg), peer, &oc,
	                   &out, &out_len);
	worker_count(w, &oc, st == HX_OK);
	if (st != HX_OK) {
		hx_error("-", "worker %u: out of memory answering %s; request dropped", w->id,
		         peer);
		nng_msg_free(msg);
		return (NULL);
	}
	/* Reuse the request's message: its header (the REQ routing backtrace)
	 * must go back with the reply; only the body changes. */
	nng_msg_clear(msg);
	rv = nng_msg_append(msg, out, out_len);
	free(out);
	if (rv != 0) {
		hx_error("-", "worker %u: reply to %s dropped: %s", w->id, peer, nng_strerror(rv));
		nng_msg_free(msg);
		return (NULL);
	}
	if ((delay = worker_throttle(w, &oc, &id, peer)) > 0) {
		worker_defer(w, job, msg, delay, peer);
		return (NULL);
	}
	return (msg);
}

static void *
worker_main(void *arg)
{
	struct worker  *w = arg;
	hx_dispatch_job job;
	char            peer[PEER_MAX];
	nng_msg        *reply;

	/* hx_dispatch_wait fails only once the server stops, and never while
	 * a request is handed to this worker: each one received is answered. */
	while (hx_dispatch_wait(w->srv->dispatch, w->id, &job) == HX_OK) {
		reply = worker_serve(w, &job, peer, sizeof(peer));
		hx_dispatch_reply(w->srv->dispatch, w->id, &job, reply, SEND_TIMEOUT_MS, peer);
	}
	hx_rpc_thread_done();
	hx_debug("-", "worker %u: stopped", w->id);
	return (NULL);
}

/* ---- startup ------------------------------------------------------------------ */

static int
load_keys(struct server *srv)
{
	char     err[256] = "";
	hx_auth *a = NULL;

	if (hx_auth_load(&a, getenv("ADMIN_API_KEY"), srv->conf.api_key_file, err, sizeof(err)) !=
	    HX_OK) {
		hx_error("-", "cannot load API keys: %s", err[0] != '\0' ? err : "unknown reason");
		return (EXIT_CONFIG);
	}
	srv->auth = a;
	return (EXIT_CLEAN);
}

/* The mock source is optional: without the file, ingest --mock fails but
 * everything else works, so a missing file is a warning, not a refusal. */
static void
load_mock(struct server *srv)
{
	char   path[4096];
	size_t len = 0;
	int    err;

	if ((size_t) snprintf(path, sizeof(path), "%s/%s", srv->conf.data_dir, MOCK_FILE) >=
	    sizeof(path)) {
		hx_warn("-", "--data-dir is too long; running without the mock export");
		return;
	}
	if ((err = read_file(path, MOCK_MAX_BYTES, &srv->mock, &len)) != 0) {
		hx_warn("-", "no mock export (%s: %s); ingest with source mock will fail", path,
		        strerror(err));
		return;
	}
	srv->rpc.mock_json = srv->mock;
	srv->rpc.mock_len = len;
	hx_info("-", "mock export loaded from %s (%zu bytes)", path, len);
}

/* Reads the PEM files now, while a mistake can still stop us before the
 * (possibly slow) migrations; they are handed to nng in setup_tls(). */
static int
read_tls_files(struct server *srv)
{
	size_t len;
	int    err;

	if (srv->conf.tls_cert == NULL || srv->conf.tls_key == NULL) {
		return (EXIT_CLEAN);
	}
	if ((err = read_file(srv->conf.tls_cert, PEM_MAX_BYTES, &srv->tls_cert_pem, &len)) != 0) {
		hx_error("-", "--tls-cert %s: %s", srv->conf.tls_cert, strerror(err));
		return (EXIT_CONFIG);
	}
	if ((err = read_file(srv->conf.tls_key, PEM_MAX_BYTES, &srv->tls_key_pem, &len)) != 0) {
		hx_error("-", "--tls-key %s: %s", srv->conf.tls_key, strerror(err));
		return (EXIT_CONFIG);
	}
	return (EXIT_CLEAN);
}

static bool
any_tls_listener(const hx_server_config *c)
{
	for (size_t i = 0; i < c->n_listen; i++) {
		if (hx_config_url_is_tls(c->listen[i])) {
			return (true);
		}
	}
	return (false);
}

/* Everything that needs neither nng nor the database: a mistake here exits
 * 2 at once. */
static int
server_configure(struct server *srv)
{
	int rc;

	srv->rpc.max_message_bytes = srv->conf.max_message_bytes;
	srv->rpc.default_timeout_ms = srv->conf.default_timeout_ms;
	srv->rpc.started_us = hx_clock_us();
	if ((rc = load_keys(srv)) != EXIT_CLEAN) {
		return (rc);
	}
	srv->rpc.auth = srv->auth;
	if (srv->conf.tls_cert != NULL && !any_tls_listener(&srv->conf)) {
		hx_warn("-", "--tls-cert/--tls-key given but no tls+tcp:// listener; ignored");
	} else if ((rc = read_tls_files(srv)) != EXIT_CLEAN) {
		return (rc);
	}
	load_mock(srv);
	return (EXIT_CLEAN);
}

static void
on_db_retry(const char *err, unsigned attempt, unsigned pause_ms)
{
	hx_warn("-", "database not reachable yet (attempt %u), retrying in %u ms: %s", attempt,
	        pause_ms, err);
}

/* A database that refuses us for good (password, SSL, conninfo syntax, an
 * old schema under --no-migrate, a transaction pooler) is a configuration
 * error: exit 2 at once. One that never came up: 1. */
static int
db_exit(hx_status st)
{
	return (st == HX_FAILED_PRECONDITION ? EXIT_CONFIG : EXIT_RUNTIME);
}

static int
migrate(const struct server *srv, uint32_t wait_ms)
{
	char      err[512] = "";
	hx_status st;

	if (srv->conf.no_migrate) {
		st = hx_store_schema_check(srv->conf.conninfo, wait_ms, err, sizeof(err));
		if (st != HX_OK) {
			hx_error("-", "--no-migrate: %s", err[0] != '\0' ? err : "unknown error");
			return (db_exit(st));
		}
		hx_info("-", "database schema is current (--no-migrate: no DDL run)");
	} else {
		hx_info("-", "applying database migrations");
		st = hx_store_migrate(srv->conf.conninfo, wait_ms, err, sizeof(err));
		if (st != HX_OK) {
			hx_error("-", "database migrations failed: %s",
			         err[0] != '\0' ? err : "unknown error");
			return (db_exit(st));
		}
	}
	if (srv->conf.migrate_only) {
		return (EXIT_CLEAN);
	}
	st = hx_store_session_check(srv->conf.conninfo, err, sizeof(err));
	if (st != HX_OK) {
		hx_error("-", "cannot serve through this connection: %s", err);
		return (db_exit(st));
	}
	return (EXIT_CLEAN);
}

static int
setup_tls(struct server *srv)
{
	int rv;

	if (srv->tls_cert_pem == NULL) {
		return (EXIT_CLEAN);
	}
	if ((rv = nng_tls_config_alloc(&srv->tls, NNG_TLS_MODE_SERVER)) != 0) {
		hx_error("-", "TLS unavailable: %s (nng TLS engine: %s)", nng_strerror(rv),
		         nng_tls_engine_name());
		return (EXIT_RUNTIME);
	}
	rv = nng_tls_config_own_cert(srv->tls, srv->tls_cert_pem, srv->tls_key_pem, NULL);
	/* nng has parsed its own copy; ours holds a private key: wipe it now. */
	free_secret(srv->tls_key_pem);
	srv->tls_key_pem = NULL;
	if (rv != 0) {
		hx_error("-", "--tls-cert %s / --tls-key %s: not a usable certificate and key: %s",
		         srv->conf.tls_cert, srv->conf.tls_key, nng_strerror(rv));
		return (EXIT_CONFIG);
	}
	return (EXIT_CLEAN);
}

static void
on_pipe_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	nng_sockaddr sa;

	hx_debug("-", "connection %d opened", nng_pipe_id(p));
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
		hx_peerwatch_piped(&sa);
	}
}

static void
on_pipe_rem(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	hx_debug("-", "connection %d closed", nng_pipe_id(p));
}

/*
 * nng drops, without a word to the client, a connection whose message is
 * above NNG_OPT_RECVMAXSZ: the client would only see a timeout. So nng's
 * limit sits well above --max-message-bytes, and rpc.c answers the messages
 * between the two with RESOURCE_EXHAUSTED.
 */
static int
open_socket(struct server *srv)
{
	size_t max = srv->conf.max_message_bytes, mib = (size_t) 1024 * 1024;
	int    rv;

	if (max > (SIZE_MAX - mib) / 2) {
		hx_error("-", "--max-message-bytes %zu is too large", max);
		return (EXIT_CONFIG);
	}
	if ((rv = nng_rep0_open(&srv->sock)) != 0) {
		hx_error("-", "cannot open the rep0 socket: %s", nng_strerror(rv));
		return (EXIT_RUNTIME);
	}
	srv->sock_open = true;
	if ((rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, max * 2 + mib)) != 0 ||
	    (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, on_pipe_add, srv)) != 0 ||
	    (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, on_pipe_rem, srv)) != 0) {
		hx_error("-", "cannot configure the rep0 socket: %s", nng_strerror(rv));
		return (EXIT_RUNTIME);
	}
	return (EXIT_CLEAN);
}

/* Logs the port the kernel picked for a tcp://HOST:0 listener (handy for
 * tests that must not collide on fixed ports). */
static void
log_listening(nng_listener l, const char *url)
{
	int    port;
	size_t n = strlen(url);

	if (n >= 2 && strcmp(url + n - 2, ":0") == 0 &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		hx_info("-", "listening on %s (bound port %d)", url, port);
	} else {
		hx_info("-", "listening on %s", url);
	}
}

/* Loopback: 127.0.0.0/8, ::1 and "localhost". Anything else, the empty
 * host (all interfaces) included, may be reached from the network. */
static bool
is_loopback_host(const char *host)
{
	struct in_addr  a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0) {
		return (true);
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		return ((ntohl(a4.s_addr) >> 24) == 127);
	}
	return (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
}

/* The key travels in every request: say so when it may travel in clear. */
static void
warn_plain(const char *url)
{
	nng_url *u;

	if (strncmp(url, "tcp", 3) != 0 || nng_url_parse(&u, url) != 0) {
		return;
	}
	if (!is_loopback_host(u->u_hostname)) {
		hx_warn(
		    "-",
		    "%s is plain tcp:// on a non-loopback address: API keys and cost data "
		    "cross the network in clear; use tls+tcp:// unless that network is yours end "
		    "to end (SECURITY.md)",
		    url);
	}
	nng_url_free(u);
}

/* Has peerwatch note the peers of TLS listener i's connections. */
static void
watch_peers(struct server *srv, size_t i)
{
	nng_sockaddr sa;

	if (i >= HX_MAX_LISTEN_WATCH || !hx_config_url_is_tls(srv->conf.listen[i]) ||
	    nng_listener_get_addr(srv->listeners[i], NNG_OPT_LOCADDR, &sa) != 0) {
		return;
	}
	if (sa.s_family == NNG_AF_INET) {
		srv->tls_watch[i].port = ntohs(sa.s_in.sa_port);
	} else if (sa.s_family == NNG_AF_INET6) {
		srv->tls_watch[i].port = ntohs(sa.s_in6.sa_port);
	}
	if (srv->tls_watch[i].port != 0) {
		hx_peerwatch_port(srv->tls_watch[i].port);
	}
}

static int
start_listener(struct server *srv, const char *url)
{
	nng_listener l;
	int          rv;

	if ((rv = nng_listener_create(&l, srv->sock, url)) != 0) {
		hx_error("-", "--listen %s: %s", url, nng_strerror(rv));
		return (EXIT_CONFIG);
	}
	srv->listeners[srv->n_listeners++] = l;
	if (hx_config_url_is_tls(url) &&
	    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, srv->tls)) != 0) {
		hx_error("-", "--listen %s: cannot use the TLS configuration: %s", url,
		         nng_strerror(rv));
		return (EXIT_RUNTIME);
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		hx_error("-", "cannot listen on %s: %s", url, nng_strerror(rv));
		return (EXIT_RUNTIME);
	}
	log_listening(l, url);
	warn_plain(url);
	watch_peers(srv, srv->n_listeners - 1);
	return (EXIT_CLEAN);
}

static int
start_listeners(struct server *srv)
{
	int rc;

	srv->listeners = calloc(srv->conf.n_listen, sizeof(*srv->listeners));
	if (srv->listeners == NULL) {
		hx_error("-", "out of memory");
		return (EXIT_RUNTIME);
	}
	for (size_t i = 0; i < srv->conf.n_listen; i++) {
		if ((rc = start_listener(srv, srv->conf.listen[i])) != EXIT_CLEAN) {
			return (rc);
		}
	}
	return (EXIT_CLEAN);
}

static int
start_worker(struct server *srv, struct worker *w)
{
	int rv;

	/* Does not fail because the database is down: the store reconnects
	 * on each call, and requests answer UNAVAILABLE meanwhile. */
	if (hx_store_open(&w->store, srv->conf.conninfo) != HX_OK) {
		hx_error("-", "worker %u: cannot create its database handle", w->id);
		return (EXIT_RUNTIME);
	}
	if ((rv = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		hx_error("-", "worker %u: cannot start a thread: %s", w->id, strerror(rv));
		return (EXIT_RUNTIME);
	}
	w->started = true;
	return (EXIT_CLEAN);
}

static int
start_workers(struct server *srv)
{
	int rc;

	if ((srv->workers = calloc(srv->conf.workers, sizeof(*srv->workers))) == NULL ||
	    hx_dispatch_new(&srv->dispatch, srv->sock, srv->conf.workers) != HX_OK) {
		hx_error("-", "out of memory");
		return (EXIT_RUNTIME);
	}
	for (unsigned i = 0; i < srv->conf.workers; i++) {
		struct worker *w = &srv->workers[i];

		w->srv = srv;
		w->id = i;
		w->slot = &srv->metrics.slots[i];
		srv->n_workers++;
		if ((rc = start_worker(srv, w)) != EXIT_CLEAN) {
			return (rc);
		}
	}
	hx_dispatch_start(srv->dispatch);
	return (EXIT_CLEAN);
}

/* The metrics slots (one per worker) and the database watch. */
static int
start_observing(struct server *srv)
{
	if (hx_metrics_init(&srv->metrics, srv->conf.workers) != HX_OK) {
		hx_error("-", "out of memory");
		return (EXIT_RUNTIME);
	}
	srv->metrics_ok = true;
	if (hx_dbwatch_start(&srv->watch, srv->conf.conninfo, &srv->metrics) != HX_OK) {
		hx_error("-", "cannot start the database watch");
		return (EXIT_RUNTIME);
	}
	srv->watch_ok = true;
	return (EXIT_CLEAN);
}

static int
start_http(struct server *srv)
{
	char      err[512] = "";
	int       port = 0;
	hx_status st;

	if (srv->conf.metrics_listen == NULL) {
		return (EXIT_CLEAN);
	}
	st = hx_http_start(&srv->http, srv->conf.metrics_listen, &srv->metrics, &srv->watch,
	                   &srv->stopping, &port, err, sizeof(err));
	if (st != HX_OK) {
		hx_error("-", "%s", err);
		return (st == HX_INVALID_ARGUMENT ? EXIT_CONFIG : EXIT_RUNTIME);
	}
	hx_info("-", "metrics: GET /metrics and /healthz on http://%s (bound port %d)",
	        srv->conf.metrics_listen, port);
	return (EXIT_CLEAN);
}

/* Everything that talks to nng; runs with SIGINT/SIGTERM blocked. */
static int
server_start(struct server *srv)
{
	int rc;

	if ((rc = setup_tls(srv)) != EXIT_CLEAN || (rc = open_socket(srv)) != EXIT_CLEAN ||
	    (rc = defer_init(srv)) != EXIT_CLEAN || (rc = start_observing(srv)) != EXIT_CLEAN ||
	    (rc = start_listeners(srv)) != EXIT_CLEAN || (rc = start_workers(srv)) != EXIT_CLEAN ||
	    (rc = start_http(srv)) != EXIT_CLEAN) {
		return (rc);
	}
	hx_info("-", "heliox-ingestd %s serving: %u workers, %zu API key(s), max message %zu bytes",
	        HX_VERSION, srv->n_workers, hx_auth_count(srv->auth), srv->conf.max_message_bytes);
	return (EXIT_CLEAN);
}

/* ---- shutdown ------------------------------------------------------------------ */

static void
join_workers(struct server *srv)
{
	for (unsigned i = 0; i < srv->n_workers; i++) {
		if (srv->workers[i].started) {
			pthread_join(srv->workers[i].thread, NULL);
			srv->workers[i].started = false;
		}
	}
}

static void
free_workers(struct server *srv)
{
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct worker *w = &srv->workers[i];

		if (w->store != NULL) {
			hx_store_close(w->store);
		}
	}
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
	hx_dispatch_free(srv->dispatch);
	srv->dispatch = NULL;
}

/* close_socket's watch: ends the process if nng_close has not returned
 * by the deadline. */
struct close_watch {
	pthread_mutex_t lk;
	pthread_cond_t  cv;
	bool            done;
};

static void *
close_watch_main(void *arg)
{
	struct close_watch *cw = arg;
	struct timespec     deadline;
	int                 rv = 0;

	/* CLOCK_REALTIME, the default condvar's: a clock step moves a 5 s
	 * deadline, which costs nothing here. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&cw->lk);
	while (!cw->done && rv != ETIMEDOUT) {
		rv = pthread_cond_timedwait(&cw->cv, &cw->lk, &deadline);
	}
	if (!cw->done) {
		hx_warn("-",
		        "shutdown: nng_close has not returned in %d s; exiting anyway (every "
		        "request received was answered, the database connections are closed)",
		        CLOSE_WAIT_MS / 1000);
		_exit(EXIT_CLEAN);
	}
	pthread_mutex_unlock(&cw->lk);
	return (NULL);
}

/*
 * nng_close, bounded. Debian's nng 1.5.2 has been seen to wait for good in
 * nng_close at shutdown, after every worker had answered its last request
 * and the listeners were closed (test_faults, once in a few runs, after a
 * test whose client resent requests). Nothing is left to lose by then, and
 * a SIGTERM that never ends the process is worse than an exit that skips
 * nng's teardown, so a watch thread ends the process after CLOSE_WAIT_MS.
 * Without the thread (it could not start), nng_close is just called.
 */
static void
close_socket(nng_socket sock)
{
	struct close_watch cw = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
	pthread_t          t;
	bool               watching = pthread_create(&t, NULL, close_watch_main, &cw) == 0;

	nng_close(sock);
	if (watching) {
		pthread_mutex_lock(&cw.lk);
		cw.done = true;
		pthread_cond_signal(&cw.cv);
		pthread_mutex_unlock(&cw.lk);
		pthread_join(t, NULL);
	}
}

/*
 * Stops serving in an order that loses no answer:
 *  1. the stop flag and the dispatcher's: each worker exits after answering
 *     the request it holds (idle ones at once); no new request is picked up;
 *  2. join the workers, then stop the delayed auth-failure replies (a key
 *     guesser is owed no answer, and waiting up to HX_THROTTLE_CAP_MS for
 *     its sake would only slow the shutdown);
 *  3. wait DRAIN_MS: a completed nng_ctx_send means the reply was handed to
 *     the connection, not that it was written, and nng 1.5 has no linger;
 *  4. only now close the listeners and the socket. nng_listener_close()
 *     also closes every connection the listener accepted, so closing the
 *     listeners first (the obvious order) drops the replies of the requests
 *     in flight: measured on nng 1.5.2.
 * Connections made during 1-3 are accepted but get no new request served
 * (rejecting them in a pipe callback was tried: nng 1.5.2 then leaves the
 * rejected pipes unreaped at nng_fini, which LeakSanitizer reports).
 * Requests that arrived but were never picked up are not answered; the
 * client's REQ resends them when its connection drops.
 * Safe on a partly started server (used on startup failure too).
 */
static void
server_shutdown(struct server *srv)
{
	atomic_store(&srv->stopping, true);
	hx_dispatch_stop(srv->dispatch);
	join_workers(srv);
	/* No receive stays posted: what arrives from now on waits in its
	 * connection, for the client to resend elsewhere. */
	hx_dispatch_free(srv->dispatch);
	srv->dispatch = NULL;
	/* Each later step says when it is done (at debug level), so that a
	 * shutdown that ever hangs in a library names the step. */
	hx_debug("-", "shutdown: replies sent, receives stopped");
	defer_stop(srv);
	hx_http_stop(srv->http);
	srv->http = NULL;
	if (srv->watch_ok) {
		hx_dbwatch_stop(&srv->watch);
		srv->watch_ok = false;
	}
	hx_debug("-", "shutdown: delayed replies, metrics and database watch stopped");
	if (srv->sock_open) {
		nng_msleep(DRAIN_MS);
		for (size_t i = 0; i < srv->n_listeners; i++) {
			nng_listener_close(srv->listeners[i]);
		}
		hx_debug("-", "shutdown: listeners closed");
	}
	free_workers(srv);
	if (srv->sock_open) {
		close_socket(srv->sock);
		srv->sock_open = false;
	}
	hx_debug("-", "shutdown: database connections and socket closed");
}

static void
server_free(struct server *srv)
{
	if (srv->tls != NULL) {
		nng_tls_config_free(srv->tls);
	}
	free(srv->listeners);
	free(srv->tls_cert_pem);
	free_secret(srv->tls_key_pem);
	free(srv->mock);
	defer_free_all(srv);
	if (srv->metrics_ok) {
		hx_metrics_free(&srv->metrics);
	}
	hx_auth_free(srv->auth);
	hx_config_free(&srv->conf);
}

/* ---- main ------------------------------------------------------------------------ */

/* ---- SIGHUP: reload keys and TLS ----------------------------------------------- */

/*
 * Waits until no request that may have read the old key set is running:
 * each worker is either seen idle or seen to have finished a request since
 * the swap (its next one reads the new set). Returns false on timeout: a
 * request that has run for RELOAD_WAIT_MS; the old set is then leaked
 * rather than freed under it.
 */
static bool
reload_wait(struct server *srv)
{
	uint64_t seen[HX_MAX_WORKERS];
	bool     done[HX_MAX_WORKERS];
	unsigned left = srv->n_workers;

	for (unsigned i = 0; i < srv->n_workers; i++) {
		seen[i] = atomic_load(&srv->workers[i].slot->served);
		done[i] = false;
	}
	for (unsigned waited = 0; left > 0 && waited < RELOAD_WAIT_MS; waited += 5) {
		for (unsigned i = 0; i < srv->n_workers; i++) {
			hx_metrics_slot *sl = srv->workers[i].slot;
			if (!done[i] &&
			    (atomic_load(&sl->inflight) == 0 ||
			     atomic_load(&sl->served) != seen[i])) {
				done[i] = true;
				left--;
			}
		}
		if (left > 0) {
			nng_msleep(5);
		}
	}
	return (left == 0);
}

static void
reload_keys(struct server *srv)
{
	char     err[256] = "";
	hx_auth *fresh = NULL;
	hx_auth *old = srv->auth; /* always the set rpc.auth points at */

	if (hx_auth_load(&fresh, getenv("ADMIN_API_KEY"), srv->conf.api_key_file, err,
	                 sizeof(err)) != HX_OK) {
		hx_error("-", "SIGHUP: new API keys refused, keeping the %zu active: %s",
		         hx_auth_count(srv->auth), err[0] != '\0' ? err : "unknown reason");
		return;
	}
	atomic_store(&srv->rpc.auth, (const hx_auth *) fresh);
	srv->auth = fresh;
	if (reload_wait(srv)) {
		hx_auth_free(old);
	} else {
		hx_warn("-",
		        "SIGHUP: a request still runs after %u ms; the old key set stays in "
		        "memory",
		        RELOAD_WAIT_MS);
	}
	hx_info("-", "SIGHUP: API keys reloaded: %zu key(s) active", hx_auth_count(fresh));
}

/*
 * A new nng TLS configuration for the listeners: connections accepted from
 * now on use it, those open keep theirs, so nothing in flight is dropped.
 */
/*
 * nng 1.5's TLS listener prepares the connection for its next accept in
 * advance, with the configuration of that moment: after a reload the first
 * client would still get the old certificate (seen with openssl s_client).
 * So each TLS listener is handed one throwaway loopback connection, which
 * takes that prepared connection away; the failed handshake it leaves is
 * ours and is not reported as a client's.
 */
static void
tls_nudge(struct server *srv, size_t i)
{
	nng_sockaddr            sa;
	struct sockaddr_storage ss;
	socklen_t               len;
	int                     fd;

	if (nng_listener_get_addr(srv->listeners[i], NNG_OPT_LOCADDR, &sa) != 0) {
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (sa.s_family == NNG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *) &ss;

		in->sin_family = AF_INET;
		in->sin_port = sa.s_in.sa_port;
		in->sin_addr.s_addr =
		    sa.s_in.sa_addr != 0 ? sa.s_in.sa_addr : htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else if (sa.s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
		static const uint8_t any[16] = { 0 };

		in6->sin6_family = AF_INET6;
		in6->sin6_port = sa.s_in6.sa_port;
		memcpy(&in6->sin6_addr, sa.s_in6.sa_addr, 16);
		if (memcmp(sa.s_in6.sa_addr, any, 16) == 0) {
			in6->sin6_addr = in6addr_loopback;
		}
		len = sizeof(*in6);
	} else {
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return;
	}
	if (connect(fd, (struct sockaddr *) &ss, len) == 0 && i < HX_MAX_LISTEN_WATCH) {
		srv->tls_watch[i].nudged = nng_clock();
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0) {
			hx_peerwatch_ignore((struct sockaddr *) &ss, len);
		}
	}
	close(fd);
}

static void
reload_tls(struct server *srv)
{
	char           *cert = NULL, *key = NULL;
	nng_tls_config *cfg = NULL;
	size_t          len;
	int             err, rv;

	if (srv->tls == NULL) {
		return;
	}
	if ((err = read_file(srv->conf.tls_cert, PEM_MAX_BYTES, &cert, &len)) != 0 ||
	    (err = read_file(srv->conf.tls_key, PEM_MAX_BYTES, &key, &len)) != 0) {
		hx_error("-", "SIGHUP: TLS certificate not reloaded, keeping the old one: %s",
		         strerror(err));
		free(cert);
		return;
	}
	rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER);
	if (rv == 0) {
		rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
	}
	free(cert);
	free_secret(key);
	for (size_t i = 0; rv == 0 && i < srv->n_listeners; i++) {
		if (hx_config_url_is_tls(srv->conf.listen[i])) {
			rv = nng_listener_set_ptr(srv->listeners[i], NNG_OPT_TLS_CONFIG, cfg);
		}
	}
	if (rv != 0) {
		hx_error("-",
		         "SIGHUP: --tls-cert %s / --tls-key %s not usable, keeping the old "
		         "ones: %s",
		         srv->conf.tls_cert, srv->conf.tls_key, nng_strerror(rv));
		if (cfg != NULL) {
			nng_tls_config_free(cfg);
		}
		return;
	}
	/* The listeners hold their own references now. */
	nng_tls_config_free(srv->tls);
	srv->tls = cfg;
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (hx_config_url_is_tls(srv->conf.listen[i])) {
			tls_nudge(srv, i);
		}
	}
	hx_info("-", "SIGHUP: TLS certificate and key reloaded");
}

/* The errors nng counts for a listener whose connections failed before
 * becoming a pipe: for tls+tcp://, failed handshakes. */
static uint64_t
listener_errors(nng_stat *all, nng_listener l)
{
	static const char *const names[] = { "auth", "proto", "other", "disconnect", "timedout" };
	nng_stat                *ls = nng_stat_find_listener(all, l), *st;
	uint64_t                 sum = 0;

	for (size_t i = 0; ls != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		if ((st = nng_stat_find(ls, names[i])) != NULL) {
			sum += nng_stat_value(st);
		}
	}
	return (sum);
}

/* Adds the connections on w's listener that peerwatch saw close before
 * they became pipes. */
static void
sweep_peers(struct tls_watch *w)
{
	char     peers[TLS_WATCH_PEERS][HX_PEER_TEXT_MAX];
	uint64_t closed = 0;
	size_t   n = hx_peerwatch_sweep(w->port, peers, TLS_WATCH_PEERS, &closed);

	for (size_t k = 0; k < closed; k++) {
		if (w->late_closed > 0) { /* counted in a line already logged */
			w->late_closed--;
			continue;
		}
		w->closed++;
		if (k < n && w->n_peers < TLS_WATCH_PEERS) {
			memcpy(w->peers[w->n_peers++], peers[k], HX_PEER_TEXT_MAX);
		}
	}
}

/* Adds d failures nng counted, less those a line already logged. */
static void
add_counted(struct tls_watch *w, uint64_t d)
{
	uint64_t late = d < w->late_count ? d : w->late_count;

	w->late_count -= late;
	w->pending += d - late;
}

/* The WARN line for w's failures, naming the peers peerwatch found. */
static void
log_failures(const char *url, struct tls_watch *w)
{
	char     from[TLS_WATCH_PEERS * (HX_PEER_TEXT_MAX + 2) + 32] = "";
	size_t   used = 0;
	uint64_t n = w->pending > w->closed ? w->pending : w->closed;

	for (size_t k = 0; k < w->n_peers && used < sizeof(from); k++) {
		used += (size_t) snprintf(from + used, sizeof(from) - used, "%s%s", k ? ", " : "",
		                          w->peers[k]);
	}
	if (used < sizeof(from) && w->closed > w->n_peers) {
		snprintf(from + used, sizeof(from) - used, " and %llu more",
		         (unsigned long long) (w->closed - w->n_peers));
	}
	hx_warn("-",
	        "%s: %llu TLS handshake(s) failed since the last report, from %s (a client "
	        "that does not trust this certificate, expects another name, or does not "
	        "speak TLS)",
	        url, (unsigned long long) n, w->n_peers > 0 ? from : "an unknown address");
	/* What one of the two has not seen yet belongs to this line. */
	w->late_count += n - w->pending;
	w->late_closed += n - w->closed;
	w->pending = w->closed = 0;
	w->n_peers = 0;
	w->waited = 0;
}

static void
watch_tls(struct server *srv)
{
	nng_stat *all;
	nng_time  now = nng_clock();

	if (nng_stats_get(&all) != 0) {
		return;
	}
	for (size_t i = 0; i < srv->n_listeners && i < HX_MAX_LISTEN_WATCH; i++) {
		struct tls_watch *w = &srv->tls_watch[i];
		uint64_t          n;

		if (!w->on) {
			continue;
		}
		n = listener_errors(all, srv->listeners[i]);
		if (n > w->seen) {
			add_counted(w, n - w->seen);
		}
		w->seen = n;
		sweep_peers(w);
		if (w->pending == 0 && w->closed == 0) {
			continue;
		}
		/* nng counts a failure and closes its socket on two threads: give
		 * the one behind two ticks to catch up. */
		if (w->closed != w->pending && w->waited++ < 2) {
			continue;
		}
		/* Failures no peer accounts for, just after a reload nudge, are
		 * the nudge's (peerwatch ignores its connection): nng counts it
		 * once, and under load twice (seen in CI), so they are not
		 * counted one per nudge but dropped within the grace time. A
		 * client's failure has its peer, and is still reported. */
		if (w->pending > w->closed && w->nudged != 0 &&
		    now - w->nudged < TLS_NUDGE_GRACE_MS) {
			w->pending = w->closed;
			if (w->pending == 0) {
				w->waited = 0;
				continue;
			}
		}
		if (w->last_log == 0 || now - w->last_log >= TLS_WATCH_LOG_MS) {
			log_failures(srv->conf.listen[i], w);
			w->last_log = now;
		}
	}
	nng_stats_free(all);
}

static void
wait_for_signal(struct server *srv, const sigset_t *set)
{
	struct timespec tick = { .tv_sec = 1, .tv_nsec = 0 };
	bool            watch = false;
	int             sig;

	for (size_t i = 0; i < srv->n_listeners && i < HX_MAX_LISTEN_WATCH; i++) {
		srv->tls_watch[i].on = hx_config_url_is_tls(srv->conf.listen[i]);
		watch = watch || srv->tls_watch[i].on;
	}
	/* Woken once a second to read the TLS counters; otherwise asleep until
	 * a signal: SIGHUP reloads, SIGINT or SIGTERM end the wait. */
	for (;;) {
		sig = sigtimedwait(set, NULL, watch ? &tick : NULL);
		if (sig < 0) {
			if (watch) {
				watch_tls(srv);
			}
			continue;
		}
		if (sig != SIGHUP) {
			break;
		}
		hx_info("-", "SIGHUP received, reloading keys and TLS files");
		reload_keys(srv);
		reload_tls(srv);
	}
	hx_info("-", "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* --check-config: everything a start would check, nothing served. */
static int
check_config(struct server *srv)
{
	char      err[512] = "";
	hx_status st;

	if (server_configure(srv) != EXIT_CLEAN || setup_tls(srv) != EXIT_CLEAN) {
		return (EXIT_CONFIG);
	}
	st = hx_store_schema_check(srv->conf.conninfo, 0, err, sizeof(err));
	if (st == HX_FAILED_PRECONDITION && strstr(err, "schema") != NULL &&
	    !srv->conf.no_migrate) {
		hx_info("-", "database reachable; %s (a start will apply migrations)", err);
	} else if (st != HX_OK) {
		hx_error("-", "database: %s", err[0] != '\0' ? err : "unreachable");
		return (EXIT_CONFIG);
	} else {
		hx_info("-", "database reachable, schema current");
	}
	if (hx_store_session_check(srv->conf.conninfo, err, sizeof(err)) != HX_OK) {
		hx_error("-", "database: %s", err);
		return (EXIT_CONFIG);
	}
	hx_info("-", "configuration OK: %zu listener(s), %zu API key(s)", srv->conf.n_listen,
	        hx_auth_count(srv->auth));
	return (EXIT_CLEAN);
}

int
main(int argc, char **argv)
{
	struct server srv;
	sigset_t      set;
	int           rc;

	memset(&srv, 0, sizeof(srv));
	atomic_init(&srv.stopping, false);
	switch (hx_config_parse(&srv.conf, argc, argv)) {
	case HX_CONFIG_EXIT:
		return (EXIT_CLEAN);
	case HX_CONFIG_USAGE:
		return (EXIT_CONFIG);
	case HX_CONFIG_RUN:
		break;
	}
	/* SIGHUP waits for sigwait() from the start: one arriving during the
	 * migrations must not end the process (its default action). */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	hx_log_set_level(srv.conf.log_level);
	hx_log_set_format(srv.conf.log_format);
	hx_store_set_retry_hook(on_db_retry);
	/* A client or the database going away must be an error, not death. */
	signal(SIGPIPE, SIG_IGN);

	/* Until here nothing has started a thread, so SIGINT/SIGTERM during
	 * the (up to MIGRATE_WAIT_MS) migrations still simply end the process.
	 * From here on they must reach only sigwait(): block them before nng
	 * starts its threads and before ours, which inherit the mask. */
	if (srv.conf.check_config) {
		rc = check_config(&srv);
	} else if ((rc = server_configure(&srv)) == EXIT_CLEAN &&
	           (rc = migrate(&srv, MIGRATE_WAIT_MS)) == EXIT_CLEAN && !srv.conf.migrate_only) {
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if ((rc = server_start(&srv)) == EXIT_CLEAN) {
			wait_for_signal(&srv, &set);
		}
	}
	server_shutdown(&srv);
	server_free(&srv);
	/* No nng_fini(): nng 1.5's reapers can still be tearing down a
	 * connection closed during the shutdown (a failed TLS handshake), and
	 * nng_fini() destroying the mutexes under them panics the process at
	 * exit. What nng still holds is reachable from its globals: neither
	 * valgrind (definite and indirect leaks) nor LeakSanitizer reports it. */
	if (rc == EXIT_CLEAN && srv.conf.migrate_only) {
		hx_info("-", "migrations applied (--migrate-only)");
	} else if (rc == EXIT_CLEAN && !srv.conf.check_config) {
		hx_info("-", "stopped");
	}
	return (rc);
}
