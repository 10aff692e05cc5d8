/*
 * datadir.c - the default --data-dir, found from the program's own path.
 *
 * The configure-time path (CMAKE_INSTALL_FULL_DATADIR) is wrong as soon as
 * the tree is installed elsewhere (`cmake --install build --prefix P`, a
 * package unpacked under another root), and `ingest --mock` then fails with
 * FAILED_PRECONDITION. The relative path from bin/ to share/heliox is fixed
 * at configure time instead, and resolved against /proc/self/exe.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"

#ifndef HX_DEFAULT_DATA_DIR
#define HX_DEFAULT_DATA_DIR "/usr/local/share/heliox"
#endif
#ifndef HX_DATA_DIR_FROM_BIN
#define HX_DATA_DIR_FROM_BIN "../share/heliox"
#endif

/* Writes "<directory of this program>/HX_DATA_DIR_FROM_BIN" to out. */
static int
beside_program(char *out, size_t outsz)
{
	char    exe[PATH_MAX];
	char   *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t) n >= sizeof(exe) - 1) {
		return (-1);
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL) {
		return (-1);
	}
	*slash = '\0';
	if ((size_t) snprintf(out, outsz, "%s/%s", exe, HX_DATA_DIR_FROM_BIN) >= outsz) {
		return (-1);
	}
	return (0);
}

const char *
hx_default_data_dir(void)
{
	static char        dir[PATH_MAX];
	static const char *found;
	char               path[PATH_MAX];
	struct stat        st;

	if (found == NULL) {
		found = HX_DEFAULT_DATA_DIR;
		/* realpath: the log and --help show "P/share/heliox", not "P/bin/../share/heliox". */
		if (beside_program(path, sizeof(path)) == 0 && realpath(path, dir) != NULL &&
		    stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			found = dir;
		}
	}
	return (found);
}
