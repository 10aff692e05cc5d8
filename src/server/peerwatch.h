/*
 * peerwatch.h - who a failed TLS handshake came from.
 *
 * nng 1.5 (Debian 12's) completes the TLS handshake inside its listener. A
 * handshake that fails never becomes a pipe, so no pipe notification fires,
 * and all the listener tells the application is an error counter: no peer
 * address. peerwatch fills that gap from below: heliox-ingestd defines
 * accept(), which the dynamic linker then gives nng in place of libc's
 * (the executable comes first in symbol lookup). That accept() notes the
 * peer of every connection a watched listener accepts; a connection that
 * becomes a pipe is struck off (hx_peerwatch_piped, from the pipe
 * notification); one whose socket is gone before it ever became a pipe
 * failed its handshake, and hx_peerwatch_sweep names it.
 *
 * Only listeners registered with hx_peerwatch_port are watched; every other
 * accept() (nng's HTTP server for metrics) passes straight through. All
 * functions are thread-safe: accept() runs on nng's poller thread, the
 * notification on nng's callback threads, the sweep on the main thread.
 */
#ifndef HELIOX_PEERWATCH_H
#define HELIOX_PEERWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <nng/nng.h>

/* The longest "ip:port" or "[ip6]:port" the sweep writes, with its NUL. */
#define HX_PEER_TEXT_MAX 64

/* Watches connections accepted on local TCP port `port` (host order). */
void hx_peerwatch_port(uint16_t port);

/* The connection from `local` (the local address of a socket of our own:
 * server.c's reload nudge) is ours: never reported. */
void hx_peerwatch_ignore(const struct sockaddr *local, socklen_t len);

/* The connection from `remote` became a pipe: its handshake worked. */
void hx_peerwatch_piped(const nng_sockaddr *remote);

/*
 * Moves the watched connections on `port` that closed without becoming a
 * pipe out of the table: up to `max` peers into peers[] (as text), and the
 * number of them into *closed (which may exceed `max`). Returns how many it
 * wrote.
 */
size_t hx_peerwatch_sweep(uint16_t port, char (*peers)[HX_PEER_TEXT_MAX], size_t max,
                          uint64_t *closed);

#endif /* HELIOX_PEERWATCH_H */
