/*
 * datadir.h - where heliox-ingestd looks for its data files by default.
 */
#ifndef HELIOX_DATADIR_H
#define HELIOX_DATADIR_H

/*
 * The default --data-dir: share/heliox relative to the installed program
 * (HX_DATA_DIR_FROM_BIN from the directory of /proc/self/exe), so that an
 * installed tree works wherever it was installed or moved to. When that
 * directory does not exist (the program runs from a build tree) or the
 * program's path cannot be read, the configure-time HX_DEFAULT_DATA_DIR.
 * Computed once, at the first call; the string is static. Call it while
 * the process is still single-threaded (flag parsing).
 */
const char *hx_default_data_dir(void);

#endif /* HELIOX_DATADIR_H */
