/*
 * metrics_http.c - the database watch and the metrics HTTP endpoint (see
 * metrics_http.h for why the watch is a thread of its own).
 */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "base/clock.h"
#include "base/errf.h"
#include "log.h"
#include "rpc.h"

/* ---- the database watch ------------------------------------------------------ */

static void
watch_once(hx_dbwatch *w)
{
	char err[512] = "";
	bool up = hx_store_check(w->store, err, sizeof(err)) == HX_OK;

	if (up) {
		atomic_store(&w->last_ok_us, hx_clock_us());
	}
	if (w->metrics != NULL) {
		atomic_store(&w->metrics->db_up, up ? 1 : 0);
	}
	/* One line per change, not one per failed request. */
	if (up && w->state == 0) {
		hx_info("-", "database reachable again");
	} else if (!up && w->state != 0) {
		hx_error("-",
		         "database unreachable: %s (requests answer UNAVAILABLE until it "
		         "returns)",
		         err[0] != '\0' ? err : "no answer");
	}
	w->state = up ? 1 : 0;
}

static void *
watch_main(void *arg)
{
	hx_dbwatch *w = arg;

	while (!atomic_load(&w->stop)) {
		for (unsigned slept = 0; slept < HX_DBWATCH_PERIOD_MS && !atomic_load(&w->stop);
		     slept += 50) {
			struct timespec ts = { 0, 50L * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (!atomic_load(&w->stop)) {
			watch_once(w);
		}
	}
	return NULL;
}

hx_status
hx_dbwatch_start(hx_dbwatch *w, const char *conninfo, hx_metrics *m)
{
	memset(w, 0, sizeof(*w));
	w->metrics = m;
	w->state = -1;
	atomic_init(&w->stop, false);
	atomic_init(&w->last_ok_us, 0);
	if (hx_store_open(&w->store, conninfo) != HX_OK) {
		return HX_RESOURCE_EXHAUSTED;
	}
	watch_once(w);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		return HX_RESOURCE_EXHAUSTED;
	}
	w->started = true;
	return HX_OK;
}

void
hx_dbwatch_stop(hx_dbwatch *w)
{
	atomic_store(&w->stop, true);
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	hx_store_close(w->store);
	w->store = NULL;
}

bool
hx_dbwatch_up(hx_dbwatch *w)
{
	uint64_t ok = atomic_load(&w->last_ok_us);

	return ok != 0 && hx_clock_us() - ok < (uint64_t) HX_DBWATCH_FRESH_MS * 1000u;
}

/* ---- HTTP -------------------------------------------------------------------------- */

struct hx_http {
	nng_http_server   *server;
	hx_metrics        *metrics;
	hx_dbwatch        *watch;
	const atomic_bool *stopping;
};

static void
reply(nng_aio *aio, uint16_t status, const char *ctype, const void *body, size_t len)
{
	nng_http_res *res;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, status)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static hx_http *
handler_owner(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void
on_metrics(nng_aio *aio)
{
	hx_http *h = handler_owner(aio);
	char    *text;
	size_t   len;

	if (hx_metrics_render(h->metrics, &text, &len) != HX_OK) {
		reply(aio, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
		return;
	}
	reply(aio, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

static void
on_healthz(nng_aio *aio)
{
	hx_http *h = handler_owner(aio);

	if (!atomic_load(h->stopping) && hx_dbwatch_up(h->watch)) {
		reply(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
	} else {
		reply(aio, 503, "text/plain; charset=utf-8", "unavailable\n", 12);
	}
}

static int
add_handler(hx_http *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd;
	int               rv;

	if ((rv = nng_http_handler_alloc(&hd, path, cb)) != 0) {
		return rv;
	}
	if ((rv = nng_http_handler_set_method(hd, "GET")) != 0 ||
	    (rv = nng_http_handler_set_data(hd, h, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->server, hd)) != 0) {
		nng_http_handler_free(hd);
	}
	return rv;
}

hx_status
hx_http_start(hx_http **out, const char *hostport, hx_metrics *m, hx_dbwatch *w,
              const atomic_bool *stopping, int *port, char *err, size_t errsz)
{
	char         text[512];
	nng_url     *url = NULL;
	nng_sockaddr sa;
	hx_http     *h;
	int          rv;

	*out = NULL;
	if ((size_t) snprintf(text, sizeof(text), "http://%s", hostport) >= sizeof(text) ||
	    nng_url_parse(&url, text) != 0) {
		hx_errf(err, errsz, "--metrics-listen %s: expected HOST:PORT", hostport);
		return HX_INVALID_ARGUMENT;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		nng_url_free(url);
		hx_errf(err, errsz, "out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	h->metrics = m;
	h->watch = w;
	h->stopping = stopping;
	rv = nng_http_server_hold(&h->server, url);
	nng_url_free(url);
	if (rv == 0 && (rv = add_handler(h, "/metrics", on_metrics)) == 0 &&
	    (rv = add_handler(h, "/healthz", on_healthz)) == 0) {
		rv = nng_http_server_start(h->server);
	}
	if (rv != 0) {
		hx_errf(err, errsz, "--metrics-listen %s: %s", hostport, nng_strerror(rv));
		hx_http_stop(h);
		return HX_UNAVAILABLE;
	}
	*port = 0;
	if (nng_http_server_get_addr(h->server, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET) {
			*port = ntohs(sa.s_in.sa_port);
		} else if (sa.s_family == NNG_AF_INET6) {
			*port = ntohs(sa.s_in6.sa_port);
		}
	}
	*out = h;
	return HX_OK;
}

void
hx_http_stop(hx_http *h)
{
	if (h == NULL) {
		return;
	}
	if (h->server != NULL) {
		nng_http_server_stop(h->server);
		nng_http_server_release(h->server);
	}
	free(h);
}
