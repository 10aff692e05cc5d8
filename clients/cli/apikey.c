/*
 * apikey.c - where heliox-ingest's API key comes from: --api-key, a key file
 * (the server's own format, checked for its mode like the server does) or
 * the environment the server itself reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errf.h"
#include "base/text.h"

#include "apikey.h"
#include "output.h"

/*
 * The server reads ADMIN_API_KEY as a comma-separated list (key rotation);
 * in the same environment the client sends the first key of it.
 */
static const char *
env_api_key(char *buf, size_t bufsz)
{
	const char *env = getenv("ADMIN_API_KEY");
	size_t      n;

	if (env == NULL) {
		return (NULL);
	}
	n = strcspn(env, ",");
	if (env[n] == '\0') {
		return (env);
	}
	if (n >= bufsz) {
		return (NULL);
	}
	memcpy(buf, env, n);
	buf[n] = '\0';
	return (buf);
}

/* "NAME:KEY" (the server's key-file form) sends KEY: one file can serve
 * both. NAME is letters, digits, '.', '_' and '-', as the server reads it. */
static const char *
strip_key_name(const char *line)
{
	size_t i;

	for (i = 0; i <= 64 && line[i] != '\0'; i++) {
		unsigned char ch = (unsigned char) line[i];

		if (ch == ':') {
			return (i > 0 ? line + i + 1 : line);
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) {
			break;
		}
	}
	return (line);
}

/*
 * Reads the key from the first line of `path` that is neither blank nor a
 * '#' comment. Like the server, refuses a file that is not regular or that
 * group or others may read or write (checked on the open descriptor, so the
 * file checked is the file read). Returns 0, or -1 with why in err.
 */
static int
read_key_file(const char *path, char *buf, size_t bufsz, char *err, size_t errsz)
{
	struct stat st;
	FILE       *f;
	char        line[1024];
	int         fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		hx_errf(err, errsz, "--api-key-file %s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		hx_errf(err, errsz, "--api-key-file %s: not a regular file", path);
		close(fd);
		return (-1);
	}
	if ((st.st_mode & 077) != 0) {
		hx_errf(err, errsz,
		        "--api-key-file %s is mode %04o: group or others may %s it; "
		        "chmod 600 it",
		        path, (unsigned) (st.st_mode & 07777),
		        (st.st_mode & 044) != 0 ? "read" : "write");
		close(fd);
		return (-1);
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		hx_errf(err, errsz, "--api-key-file %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	while (rv != 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;
		size_t      n = strlen(line);

		/* The newline goes with the white space, as the server trims it. */
		hx_text_trim(&p, &n);
		if (n == 0 || *p == '#') {
			continue;
		}
		line[(size_t) (p - line) + n] = '\0';
		snprintf(buf, bufsz, "%s", strip_key_name(p));
		rv = 0;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (rv != 0) {
		hx_errf(err, errsz, "--api-key-file %s: no key in it", path);
	}
	return (rv);
}

int
cli_resolve_key(cli_args *a, char *keybuf, size_t keybufsz)
{
	const char *file = a->api_key_file;
	char        err[512];

	if (a->api_key != NULL && a->api_key_file != NULL) {
		return (cli_usage_error("give --api-key or --api-key-file, not both"));
	}
	if (a->api_key != NULL) {
		return (0);
	}
	if (file == NULL && (file = getenv("HELIOX_API_KEY_FILE")) != NULL && *file == '\0') {
		file = NULL;
	}
	if (file != NULL) {
		if (read_key_file(file, keybuf, keybufsz, err, sizeof(err)) != 0) {
			return (cli_usage_error("%s", err));
		}
		a->api_key = keybuf;
		return (0);
	}
	a->api_key = env_api_key(keybuf, keybufsz);
	return (0);
}
