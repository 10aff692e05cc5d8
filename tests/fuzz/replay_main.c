/*
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput() on saved
 * inputs, without libFuzzer. The normal build links it with each target's
 * source (fuzz_export_replay, ...) so that ctest, and the sanitizer build,
 * replays the seed corpus and every crash input ever found.
 *
 *   fuzz_export_replay PATH...
 *
 * Each PATH is a file, or a directory whose files are run in name order
 * (dot-files such as .gitkeep skipped; not recursive). Each input is copied
 * into a buffer of its exact size, as libFuzzer does, so an over-read is
 * caught by ASan. Exit 0 when every input ran; a crash aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static size_t replayed;

/* Reads the whole file; returns 0, or -1 with errno set. */
static int
run_file(const char *path)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t   len = 0, cap = 0;

	if (f == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (nb == NULL)
				abort();
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fclose(f);
		free(buf);
		errno = EIO;
		return -1;
	}
	fclose(f);

	/* An exact-size copy, so that reading one byte past the input is seen. */
	uint8_t *exact = malloc(len ? len : 1);

	if (exact == NULL)
		abort();
	memcpy(exact, buf, len);
	free(buf);
	fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	replayed++;
	return 0;
}

static int
skip_dots(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int
run_dir(const char *dir)
{
	struct dirent **names;
	int             n = scandir(dir, &names, skip_dots, alphasort), rc = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char        path[4096];
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
		if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = run_file(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int         rc = stat(argv[i], &st) != 0 ? -1
		            : S_ISDIR(st.st_mode)        ? run_dir(argv[i])
		                                         : run_file(argv[i]);

		if (rc != 0) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "%s: %zu inputs replayed, no crash\n", argv[0], replayed);
	return 0;
}
