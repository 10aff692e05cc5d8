/*
 * source.h - where `ingest FILE` reads from, twice.
 *
 * The CLI checks the whole document before it sends anything (all or
 * nothing across batches), so it reads its input two times. A regular file
 * (also as stdin, `< file`) is read again from where it started, and must
 * not have changed in between. Anything else (stdin from a pipe, a FIFO,
 * /dev/fd/N) cannot be read again: the first pass copies it to an unlinked
 * temporary file in $TMPDIR (or /tmp) as it reads, and the second pass reads
 * that copy. Disk, not memory,
 * holds it; it disappears when the command exits, however it exits.
 */
#ifndef HELIOX_SOURCE_H
#define HELIOX_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct source {
	const char *name;     /* for messages: the path, or "stdin" */
	int         fd;       /* the first pass reads this */
	int         spool_fd; /* -1, or the copy of stdin the second pass reads */
	bool        close_fd;
	off_t       start; /* where the document starts in fd */
	uint64_t    size;  /* bytes, when known (regular file); else 0 */
	struct stat st;    /* as first seen, to notice a change */
} source;

/* Opens `path` ("-" = stdin). Returns 0, or -1 with a reason in err; *usage
 * says whether the fault is the caller's (no such file, a directory). */
int source_open(source *s, const char *path, bool *usage, char *err, size_t errsz);

/* The descriptor for the second pass, positioned at the document's start.
 * Returns -1 with a reason when it cannot be read again, or changed. */
int source_rewind(source *s, char *err, size_t errsz);

void source_close(source *s);

#endif /* HELIOX_SOURCE_H */
