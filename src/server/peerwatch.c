/*
 * peerwatch.c - who a failed TLS handshake came from (see peerwatch.h).
 *
 * A small table of the connections watched listeners accepted and that
 * have not become pipes yet, under one mutex: accepts are rare next to
 * requests, and the table is touched once per connection, not per message.
 * A connection is known by its socket's identity (device and inode), not
 * by its descriptor number, which the kernel hands out again as soon as
 * nng closes it.
 */
#include "peerwatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum {
	MAX_PORTS = 16,
	/* Handshakes in progress at once; past it the oldest is forgotten
	 * (a flood is then reported by count, without every address). */
	MAX_CONNS = 256,
	MAX_IGNORED = 8,
};

struct conn {
	struct sockaddr_storage peer;
	uint64_t                seq; /* accept order: the oldest goes first */
	dev_t                   dev;
	ino_t                   ino;
	int                     fd;
	uint16_t                port; /* the listener's, host order */
	bool                    used;
};

static pthread_mutex_t         lock = PTHREAD_MUTEX_INITIALIZER;
static uint16_t                ports[MAX_PORTS];
static atomic_size_t           n_ports; /* read without the lock by accept() */
static struct conn             conns[MAX_CONNS];
static uint64_t                next_seq;
static struct sockaddr_storage ignored[MAX_IGNORED];
static size_t                  n_ignored;

/* The port of an AF_INET or AF_INET6 address, host order; 0 otherwise. */
static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		return ntohs(((const struct sockaddr_in *) ss)->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
	}
	return 0;
}

/* Whether two socket addresses are the same address and port. */
static bool
same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family || port_of(a) != port_of(b)) {
		return false;
	}
	if (a->ss_family == AF_INET) {
		return ((const struct sockaddr_in *) a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *) b)->sin_addr.s_addr;
	}
	return a->ss_family == AF_INET6 &&
	    memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
	           &((const struct sockaddr_in6 *) b)->sin6_addr, 16) == 0;
}

/* nng's form of an address in the socket API's; false for anything but IP. */
static bool
from_nng(const nng_sockaddr *in, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (in->s_family == NNG_AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *) out;

		v4->sin_family = AF_INET;
		v4->sin_port = in->s_in.sa_port; /* both network order */
		v4->sin_addr.s_addr = in->s_in.sa_addr;
		return true;
	}
	if (in->s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) out;

		v6->sin6_family = AF_INET6;
		v6->sin6_port = in->s_in6.sa_port;
		memcpy(&v6->sin6_addr, in->s_in6.sa_addr, 16);
		return true;
	}
	return false;
}

static void
peer_text(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *) ss)->sin_addr, ip, sizeof(ip));
		snprintf(buf, sz, "%s:%u", ip, (unsigned) port_of(ss));
	} else {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) ss)->sin6_addr, ip, sizeof(ip));
		snprintf(buf, sz, "[%s]:%u", ip, (unsigned) port_of(ss));
	}
}

static bool
port_watched(uint16_t port)
{
	for (size_t i = 0; i < n_ports; i++) {
		if (ports[i] == port) {
			return true;
		}
	}
	return false;
}

/* Takes `peer` off the ignore list; false when it was not on it. */
static bool
unignore(const struct sockaddr_storage *peer)
{
	for (size_t i = 0; i < n_ignored; i++) {
		if (same_peer(&ignored[i], peer)) {
			ignored[i] = ignored[--n_ignored];
			return true;
		}
	}
	return false;
}

/* A free slot, or the oldest one when none is free. */
static struct conn *
slot(void)
{
	struct conn *oldest = &conns[0];

	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (!conns[i].used) {
			return &conns[i];
		}
		if (conns[i].seq < oldest->seq) {
			oldest = &conns[i];
		}
	}
	return oldest;
}

/* Notes connection cfd, just accepted on listening socket lfd, when lfd is
 * a watched listener's. */
static void
note(int lfd, int cfd)
{
	struct sockaddr_storage local, peer;
	socklen_t               len = sizeof(local);
	struct stat             st;

	memset(&local, 0, sizeof(local));
	if (getsockname(lfd, (struct sockaddr *) &local, &len) != 0) {
		return;
	}
	len = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (getpeername(cfd, (struct sockaddr *) &peer, &len) != 0 || fstat(cfd, &st) != 0) {
		return;
	}
	pthread_mutex_lock(&lock);
	if (port_watched(port_of(&local)) && !unignore(&peer)) {
		struct conn *c = slot();

		*c = (struct conn){ .used = true,
			            .fd = cfd,
			            .dev = st.st_dev,
			            .ino = st.st_ino,
			            .port = port_of(&local),
			            .seq = next_seq++,
			            .peer = peer };
	}
	pthread_mutex_unlock(&lock);
}

/*
 * The accept() nng calls (libnng.so.1 imports accept; this definition in
 * the executable comes first in the dynamic linker's lookup). accept4 with
 * no flags is accept itself; errno is left as the call set it. Default
 * visibility: the build hides symbols unless told, and a hidden accept()
 * would never reach nng.
 */
__attribute__((visibility("default"))) int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	int cfd = accept4(fd, addr, addrlen, 0);
	int saved = errno;

	if (cfd >= 0 && n_ports > 0) {
		note(fd, cfd);
	}
	errno = saved;
	return cfd;
}

void
hx_peerwatch_port(uint16_t port)
{
	pthread_mutex_lock(&lock);
	if (!port_watched(port) && n_ports < MAX_PORTS) {
		ports[n_ports++] = port;
	}
	pthread_mutex_unlock(&lock);
}

void
hx_peerwatch_ignore(const struct sockaddr *local, socklen_t len)
{
	struct sockaddr_storage peer;
	bool                    found = false;

	if (len > sizeof(peer)) {
		return;
	}
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, local, len);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CONNS && !found; i++) {
		if (conns[i].used && same_peer(&conns[i].peer, &peer)) {
			conns[i].used = false;
			found = true;
		}
	}
	/* Not accepted yet: the accept() to come drops it. */
	if (!found && n_ignored < MAX_IGNORED) {
		ignored[n_ignored++] = peer;
	}
	pthread_mutex_unlock(&lock);
}

void
hx_peerwatch_piped(const nng_sockaddr *remote)
{
	struct sockaddr_storage peer;

	if (!from_nng(remote, &peer)) {
		return;
	}
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (conns[i].used && same_peer(&conns[i].peer, &peer)) {
			conns[i].used = false;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

size_t
hx_peerwatch_sweep(uint16_t port, char (*peers)[HX_PEER_TEXT_MAX], size_t max, uint64_t *closed)
{
	size_t n = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &conns[i];
		struct stat  st;

		if (!c->used || c->port != port) {
			continue;
		}
		/* Still the socket accepted: its handshake is under way. */
		if (fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino) {
			continue;
		}
		c->used = false;
		++*closed;
		if (n < max) {
			peer_text(&c->peer, peers[n++], HX_PEER_TEXT_MAX);
		}
	}
	pthread_mutex_unlock(&lock);
	return n;
}
