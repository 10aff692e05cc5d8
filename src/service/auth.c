/*
 * auth.c - API keys: loading, constant-time checking, failure throttling.
 *
 * Keys are kept in fixed HX_AUTH_MAX_KEY_LEN-byte slots, zero padded, with
 * their length beside them. A check pads the offered key the same way and
 * compares it with every slot, whole, folding the results together with
 * bitwise operations: the work done is the same whichever key matches, how
 * many bytes of it match, or whether any does. Key bytes never reach an
 * error message or the log; a refusal names the key by position.
 *
 * The second half counts failures per peer so that the server can slow a
 * key guesser down (see auth.h and, for how the delay is applied without
 * holding a worker, server.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth.h"
#include "base/errf.h"
#include "base/text.h"

/* Rotation needs two or three; a long list is more likely a wrong file. */
#define HX_AUTH_MAX_KEYS 64

typedef struct key_slot {
	unsigned char bytes[HX_AUTH_MAX_KEY_LEN]; /* zero padded */
	size_t        len;
	char          id[HX_AUTH_KEY_ID_MAX + 1]; /* its name, or sha256:<8 hex> */
} key_slot;

struct hx_auth {
	key_slot *keys;
	size_t    n;
};

static hx_status auth_refuse(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static hx_status
auth_refuse(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(err, errsz, fmt, ap);
	va_end(ap);
	return HX_INVALID_ARGUMENT;
}

/*
 * "NAME:KEY" names its key: NAME is 1 to HX_AUTH_KEY_ID_MAX letters, digits,
 * '.', '_' or '-'. Returns the length of NAME, or 0 when `s` has no name.
 */
static size_t
auth_name_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i <= HX_AUTH_KEY_ID_MAX; i++) {
		unsigned char ch = (unsigned char) s[i];
		if (ch == ':')
			return i;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 0;
}

/* An unnamed key is known by the start of its SHA-256: enough to tell a
 * handful of keys apart in the audit, far too little to find the key. */
static void
auth_hash_id(const char *key, size_t len, char *out, size_t outsz)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *) key, len, md);
	snprintf(out, outsz, "sha256:%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
	OPENSSL_cleanse(md, sizeof(md));
}

/* Checks and stores one key; `origin` and `pos` name it in a refusal. */
static hx_status
auth_add(hx_auth *a, const char *key, size_t len, const char *origin, size_t pos, char *err,
         size_t errsz)
{
	size_t      name_len = auth_name_len(key, len);
	const char *name = key;

	if (name_len > 0) {
		key += name_len + 1;
		len -= name_len + 1;
	}
	if (len < HX_AUTH_MIN_KEY_LEN)
		return auth_refuse(err, errsz, "%s: key %zu is %zu bytes; keys must be at least %d",
		                   origin, pos, len, HX_AUTH_MIN_KEY_LEN);
	if (len > HX_AUTH_MAX_KEY_LEN)
		return auth_refuse(err, errsz, "%s: key %zu is %zu bytes; keys must be at most %d",
		                   origin, pos, len, HX_AUTH_MAX_KEY_LEN);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char) key[i];
		if (ch < 0x20 || ch == 0x7f)
			return auth_refuse(err, errsz, "%s: key %zu contains a control character",
			                   origin, pos);
	}
	if (a->n == HX_AUTH_MAX_KEYS)
		return auth_refuse(err, errsz, "%s: more than %d keys", origin, HX_AUTH_MAX_KEYS);

	key_slot *k = &a->keys[a->n++];
	memset(k->bytes, 0, sizeof(k->bytes));
	memcpy(k->bytes, key, len);
	k->len = len;
	if (name_len > 0)
		snprintf(k->id, sizeof(k->id), "%.*s", (int) name_len, name);
	else
		auth_hash_id(key, len, k->id, sizeof(k->id));
	return HX_OK;
}

/* Adds `s` (len bytes) trimmed of surrounding white space, if anything is
 * left. *pos counts the keys seen, for refusals. */
static hx_status
auth_add_trimmed(hx_auth *a, const char *s, size_t len, const char *origin, size_t *pos, char *err,
                 size_t errsz)
{
	hx_text_trim(&s, &len);
	if (len == 0)
		return HX_OK;
	return auth_add(a, s, len, origin, ++*pos, err, errsz);
}

/* ADMIN_API_KEY: comma-separated, so a new key can be added before the old
 * one is retired. Empty entries ("a,,b", a trailing comma) are ignored. */
static hx_status
auth_load_env(hx_auth *a, const char *env, char *err, size_t errsz)
{
	size_t pos = 0;

	while (env != NULL) {
		const char *comma = strchr(env, ',');
		size_t      len = comma != NULL ? (size_t) (comma - env) : strlen(env);
		hx_status   st = auth_add_trimmed(a, env, len, "ADMIN_API_KEY", &pos, err, errsz);
		if (st != HX_OK)
			return st;
		env = comma != NULL ? comma + 1 : NULL;
	}
	return HX_OK;
}

/* A key file must be a regular file only its owner can read or write. The
 * check is on the open descriptor, so the file checked is the file read. */
static hx_status
auth_check_file(int fd, const char *path, char *err, size_t errsz)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return auth_refuse(err, errsz, "api key file %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return auth_refuse(err, errsz, "api key file %s is not a regular file", path);
	if (st.st_mode & 044)
		return auth_refuse(err, errsz,
		                   "api key file %s is readable by others; chmod 600 it", path);
	if (st.st_mode & 077)
		return auth_refuse(err, errsz,
		                   "api key file %s is writable by others; chmod 600 it", path);
	return HX_OK;
}

/* One key per line; blank lines and lines starting with '#' are skipped. */
static hx_status
auth_load_lines(hx_auth *a, FILE *f, const char *path, char *err, size_t errsz)
{
	char      origin[256];
	char     *line = NULL;
	size_t    cap = 0, pos = 0;
	ssize_t   n;
	hx_status st = HX_OK;

	snprintf(origin, sizeof(origin), "api key file %s", path);
	while (st == HX_OK && (n = getline(&line, &cap, f)) >= 0) {
		size_t skip = 0;
		while (skip < (size_t) n && hx_text_is_space(line[skip]))
			skip++;
		if (skip < (size_t) n && line[skip] == '#')
			continue;
		st = auth_add_trimmed(a, line, (size_t) n, origin, &pos, err, errsz);
	}
	if (st == HX_OK && ferror(f))
		st = auth_refuse(err, errsz, "%s: read error", origin);
	if (line != NULL) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	return st;
}

static hx_status
auth_load_file(hx_auth *a, const char *path, char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return auth_refuse(err, errsz, "api key file %s: %s", path, strerror(errno));

	hx_status st = auth_check_file(fd, path, err, errsz);
	if (st != HX_OK) {
		close(fd);
		return st;
	}
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return auth_refuse(err, errsz, "api key file %s: %s", path, strerror(errno));
	}
	st = auth_load_lines(a, f, path, err, errsz);
	fclose(f);
	return st;
}

hx_status
hx_auth_load(hx_auth **out, const char *env_keys, const char *key_file, char *err, size_t errsz)
{
	hx_auth  *a = calloc(1, sizeof(*a));
	hx_status st = HX_RESOURCE_EXHAUSTED;

	*out = NULL;
	if (a == NULL || (a->keys = calloc(HX_AUTH_MAX_KEYS, sizeof(key_slot))) == NULL) {
		auth_refuse(err, errsz, "out of memory");
		goto fail;
	}
	st = auth_load_env(a, env_keys, err, errsz);
	if (st == HX_OK && key_file != NULL)
		st = auth_load_file(a, key_file, err, errsz);
	if (st == HX_OK && a->n == 0)
		st =
		    auth_refuse(err, errsz, "no API key: set ADMIN_API_KEY or give --api-key-file");
	if (st != HX_OK)
		goto fail;
	*out = a;
	return HX_OK;
fail:
	hx_auth_free(a);
	return st;
}

void
hx_auth_free(hx_auth *a)
{
	if (a == NULL)
		return;
	if (a->keys != NULL) {
		OPENSSL_cleanse(a->keys, HX_AUTH_MAX_KEYS * sizeof(key_slot));
		free(a->keys);
	}
	free(a);
}

size_t
hx_auth_count(const hx_auth *a)
{
	return a != NULL ? a->n : 0;
}

/* 1 when x != 0, else 0, without a branch. */
static unsigned
nonzero(uint64_t x)
{
	return (unsigned) ((x | (0 - x)) >> 63);
}

/*
 * CRYPTO_memcmp is OpenSSL's constant-time comparison: it touches every byte
 * and is written (in assembly on common targets) so that the compiler cannot
 * turn it back into an early-exit memcmp, which a hand-written volatile loop
 * only discourages. Every slot is compared whole, the offered key padded to
 * the same size, and the length equality is folded in with bitwise ops, so
 * neither which key matched nor where the bytes differ shows in the timing.
 * Only the offered key's own length decides how much is copied, and that the
 * caller already knows.
 */
hx_status
hx_auth_check(const hx_auth *a, const char *key, size_t len)
{
	return hx_auth_check_id(a, key, len, NULL);
}

/*
 * Which slot matched is folded in the same branch-free way (the last match
 * wins), so the loop's timing still does not depend on it; only the one
 * read of that slot's id afterwards touches a key-dependent address, and an
 * id is no secret.
 */
hx_status
hx_auth_check_id(const hx_auth *a, const char *key, size_t len, const char **key_id)
{
	unsigned char pad[HX_AUTH_MAX_KEY_LEN] = { 0 };
	unsigned      match = 0;
	size_t        which = 0;

	if (key_id != NULL)
		*key_id = NULL;
	if (a == NULL || key == NULL)
		return HX_UNAUTHENTICATED;
	/* An over-long key matches nothing, yet is compared like any other. */
	unsigned too_long = len > HX_AUTH_MAX_KEY_LEN;
	memcpy(pad, key, too_long ? HX_AUTH_MAX_KEY_LEN : len);

	for (size_t i = 0; i < a->n; i++) {
		const key_slot *k = &a->keys[i];
		unsigned        differ =
		    nonzero((uint64_t) (unsigned) CRYPTO_memcmp(pad, k->bytes, sizeof(pad)));
		differ |= nonzero((uint64_t) (k->len ^ len));
		size_t sel = (size_t) 0 - (size_t) (differ ^ 1u); /* all ones on a match */
		which = (which & ~sel) | (i & sel);
		match |= differ ^ 1u;
	}
	OPENSSL_cleanse(pad, sizeof(pad));
	if (!(match & (too_long ^ 1u)))
		return HX_UNAUTHENTICATED;
	if (key_id != NULL)
		*key_id = a->keys[which].id;
	return HX_OK;
}

/* ---- throttling repeated failures --------------------------------------------- */

/* Scores count thousandths of a failure, so that decay needs no floating
 * point. A free slot has score 0. */
#define HX_MILLI      1000u
#define HX_SCORE_FREE ((uint32_t) (HX_THROTTLE_FREE * HX_MILLI))
/* Room to reach the cap twice over and no more: however hard a peer
 * hammered, it is forgiven within a bounded time once it stops. */
#define HX_SCORE_MAX \
	((uint32_t) (HX_SCORE_FREE + 2u * (HX_THROTTLE_CAP_MS / HX_THROTTLE_BASE_MS) * HX_MILLI))

typedef struct peer_score {
	hx_peer_id id;
	uint32_t   score;
	uint64_t   at_ms; /* the time `score` is up to date with */
} peer_score;

/*
 * A plain array scanned under one lock: HX_THROTTLE_PEERS small entries are
 * a few hundred nanoseconds to scan, nothing beside a request's decoding and
 * logging, and a fixed array cannot be grown by an attacker.
 */
struct hx_throttle {
	pthread_mutex_t lock;
	peer_score      peers[HX_THROTTLE_PEERS];
};

hx_throttle *
hx_throttle_new(void)
{
	hx_throttle *t = calloc(1, sizeof(*t));

	if (t != NULL && pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

void
hx_throttle_free(hx_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Lets the score leak away at HX_THROTTLE_FREE failures per window. Only
 * the time actually turned into decay is consumed, so frequent updates
 * do not round the decay away. */
static void
peer_decay(peer_score *p, uint64_t now_ms)
{
	uint64_t dt, gone;

	if (now_ms <= p->at_ms)
		return;
	dt = now_ms - p->at_ms;
	if (dt > (uint64_t) 4 * HX_THROTTLE_WINDOW_MS) /* long enough to clear any score */
		dt = (uint64_t) 4 * HX_THROTTLE_WINDOW_MS;
	gone = dt * HX_SCORE_FREE / HX_THROTTLE_WINDOW_MS;
	if (gone >= p->score) {
		p->score = 0;
		p->at_ms = now_ms;
		return;
	}
	p->score -= (uint32_t) gone;
	p->at_ms += gone * HX_THROTTLE_WINDOW_MS / HX_SCORE_FREE;
}

static peer_score *
throttle_find(hx_throttle *t, const hx_peer_id *id)
{
	for (size_t i = 0; i < HX_THROTTLE_PEERS; i++) {
		peer_score *p = &t->peers[i];
		if (p->score != 0 && p->id.kind == id->kind &&
		    memcmp(p->id.bytes, id->bytes, sizeof(id->bytes)) == 0)
			return p;
	}
	return NULL;
}

/* A slot for a new peer: a free one, else the one with the lowest score,
 * so that a flood of new addresses evicts the quiet, not the worst. */
static peer_score *
throttle_claim(hx_throttle *t, const hx_peer_id *id, uint64_t now_ms)
{
	peer_score *best = &t->peers[0];

	for (size_t i = 0; i < HX_THROTTLE_PEERS && best->score != 0; i++) {
		peer_score *p = &t->peers[i];
		peer_decay(p, now_ms);
		if (p->score < best->score)
			best = p;
	}
	best->id = *id;
	best->score = 0;
	best->at_ms = now_ms;
	return best;
}

unsigned
hx_throttle_failure(hx_throttle *t, const hx_peer_id *peer, uint64_t now_ms, bool *began)
{
	unsigned delay = 0;
	bool     first = false;

	if (t != NULL && peer != NULL && peer->kind != HX_PEER_NONE) {
		pthread_mutex_lock(&t->lock);
		peer_score *p = throttle_find(t, peer);
		if (p != NULL)
			peer_decay(p, now_ms);
		else
			p = throttle_claim(t, peer, now_ms);
		uint32_t before = p->score;
		p->score = before + HX_MILLI < HX_SCORE_MAX ? before + HX_MILLI : HX_SCORE_MAX;
		if (p->score > HX_SCORE_FREE) {
			uint32_t over = (p->score - HX_SCORE_FREE + HX_MILLI - 1) / HX_MILLI;
			delay = over * HX_THROTTLE_BASE_MS;
			if (delay > HX_THROTTLE_CAP_MS)
				delay = HX_THROTTLE_CAP_MS;
			first = before <= HX_SCORE_FREE;
		}
		pthread_mutex_unlock(&t->lock);
	}
	if (began != NULL)
		*began = first;
	return delay;
}

void
hx_throttle_success(hx_throttle *t, const hx_peer_id *peer, uint64_t now_ms)
{
	if (t == NULL || peer == NULL || peer->kind == HX_PEER_NONE)
		return;
	pthread_mutex_lock(&t->lock);
	peer_score *p = throttle_find(t, peer);
	if (p != NULL) {
		peer_decay(p, now_ms);
		p->score = p->score > HX_MILLI ? p->score - HX_MILLI : 0;
	}
	pthread_mutex_unlock(&t->lock);
}
