/*
 * source.c - the input of `ingest FILE`, readable twice (see source.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"

/* The spool has no name from the start: unlinked at once, it goes away
 * with the process, even a killed one. */
static int
spool_open(char *err, size_t errsz)
{
	const char *dir = getenv("TMPDIR");
	char        path[4096];
	int         fd;

	if (dir == NULL || *dir == '\0') {
		dir = "/tmp";
	}
	snprintf(path, sizeof(path), "%s/heliox-ingest-stdin-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0) {
		snprintf(err, errsz, "cannot create a temporary file in %s for stdin: %s", dir,
		         strerror(errno));
		return (-1);
	}
	unlink(path);
	return (fd);
}

/* A regular file is read again in place; anything else (a pipe, a
 * terminal, /dev/fd/N of a process substitution) is copied as it is read. */
static int
classify(source *s, bool *usage, char *err, size_t errsz)
{
	if (fstat(s->fd, &s->st) != 0) {
		snprintf(err, errsz, "cannot read %s: %s", s->name, strerror(errno));
		return (-1);
	}
	if (S_ISDIR(s->st.st_mode)) {
		*usage = true;
		snprintf(err, errsz, "cannot read %s: %s", s->name, strerror(EISDIR));
		return (-1);
	}
	if (S_ISREG(s->st.st_mode) && (s->start = lseek(s->fd, 0, SEEK_CUR)) >= 0) {
		s->size = s->st.st_size > s->start ? (uint64_t) (s->st.st_size - s->start) : 0;
		return (0);
	}
	s->start = 0;
	return ((s->spool_fd = spool_open(err, errsz)) < 0 ? -1 : 0);
}

int
source_open(source *s, const char *path, bool *usage, char *err, size_t errsz)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->spool_fd = -1;
	*usage = false;
	if (strcmp(path, "-") == 0) {
		s->name = "stdin";
		s->fd = STDIN_FILENO;
	} else if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*usage = true;
		snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
		return (-1);
	} else {
		s->name = path;
		s->close_fd = true;
	}
	return (classify(s, usage, err, errsz));
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return (a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	        a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec);
}

int
source_rewind(source *s, char *err, size_t errsz)
{
	struct stat now;
	int         fd = s->spool_fd >= 0 ? s->spool_fd : s->fd;
	off_t       at = s->spool_fd >= 0 ? 0 : s->start;

	if (s->spool_fd < 0 && (fstat(s->fd, &now) != 0 || !same_file(&now, &s->st))) {
		snprintf(err, errsz, "%s changed while it was being read", s->name);
		return (-1);
	}
	if (lseek(fd, at, SEEK_SET) != at) {
		snprintf(err, errsz, "cannot read %s again: %s", s->name, strerror(errno));
		return (-1);
	}
	return (fd);
}

void
source_close(source *s)
{
	if (s->close_fd && s->fd >= 0) {
		close(s->fd);
	}
	if (s->spool_fd >= 0) {
		close(s->spool_fd);
	}
	s->fd = s->spool_fd = -1;
}
