/*
 * cmd_convert.c - the billing commands of heliox-ingest:
 *
 *   convert [--format auto|heliox|focus|aws-cur] [--gpu-map FILE] [-o OUT] FILE...
 *   ingest  [--format ...] [--gpu-map FILE] [--no-replace] FILE...   (billing files)
 *   sync DIR
 *
 * A billing export becomes the section 4 JSON document (with `replace` and
 * `provenance`); `ingest` and `sync` then hand that document to the CLI's one
 * JSON ingest path (cli_main), so a converted bill is sent, checked and
 * reported exactly as any other export file.
 *
 * The default GPU map: --gpu-map FILE, else <dir of the executable>/../share/
 * heliox/gpu_map_v1.csv (installed), else the source tree's data/ (build tree).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "heliox/convert.h"

#include "args.h"
#include "cli.h"
#include "cmd_convert.h"
#include "output.h"
#include "stream_ingest.h"

#define MAP_FILE  "gpu_map_v1.csv"
#define MAX_FILES 4096

typedef struct bill_args {
	int         cmd_at; /* index of the command word in argv */
	bool        json;
	const char *format; /* NULL = auto */
	const char *gpu_map;
	const char *out;
	bool        no_replace;
	const char *files[MAX_FILES];
	size_t      n_files;
	bool        bill; /* ingest: the files are a billing export */
} bill_args;

static const char *const global_with_arg[] = { "--url",    "--api-key",         "--timeout",
	                                       "--tls-ca", "--tls-server-name", "--request-id",
	                                       NULL };

static bool
in_list(const char *arg, const char *const *list)
{
	size_t n = strcspn(arg, "=");
	for (; *list != NULL; list++) {
		if (strlen(*list) == n && strncmp(*list, arg, n) == 0) {
			return true;
		}
	}
	return false;
}

static bool
any_arg(int argc, char **argv, const char *const *list)
{
	for (int i = 1; i < argc; i++) {
		for (const char *const *l = list; *l != NULL; l++) {
			if (strcmp(argv[i], *l) == 0) {
				return true;
			}
		}
	}
	return false;
}

/* ---- the GPU map -------------------------------------------------------------- */

static hx_gpu_map *
load_map(const char *given, hx_violations *v)
{
	char        exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t     n;
	hx_gpu_map *m = NULL;

	if (given != NULL) {
		hx_gpu_map_load(given, &m, v);
		return m;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/../share/heliox/" MAP_FILE, exe);
			if (access(path, R_OK) == 0) {
				hx_gpu_map_load(path, &m, v);
				return m;
			}
		}
	}
#ifdef HX_INSTALL_DATA_DIR
	if (access(HX_INSTALL_DATA_DIR "/" MAP_FILE, R_OK) == 0) {
		hx_gpu_map_load(HX_INSTALL_DATA_DIR "/" MAP_FILE, &m, v);
		return m;
	}
#endif
#ifdef HX_SOURCE_DATA_DIR
	if (access(HX_SOURCE_DATA_DIR "/" MAP_FILE, R_OK) == 0) {
		hx_gpu_map_load(HX_SOURCE_DATA_DIR "/" MAP_FILE, &m, v);
		return m;
	}
#endif
	hx_violations_add(v, "--gpu-map",
	                  "no GPU map found (looked beside the executable in "
	                  "../share/heliox); pass --gpu-map FILE");
	return NULL;
}

/* ---- the document ------------------------------------------------------------------- */

static cJSON *
report_json(const hx_bill_report *r)
{
	cJSON *o = cJSON_CreateObject(), *ex, *arr;

	cJSON_AddNumberToObject(o, "files", (double) r->files);
	cJSON_AddNumberToObject(o, "bytes_read", (double) r->bytes_read);
	cJSON_AddNumberToObject(o, "lines_read", (double) r->lines_read);
	cJSON_AddNumberToObject(o, "lines_counted", (double) r->lines_counted);
	ex = cJSON_AddObjectToObject(o, "lines_excluded");
	for (int e = 0; e < HX_EXCL__COUNT; e++) {
		cJSON_AddNumberToObject(ex, hx_bill_excl_name((hx_bill_excl) e),
		                        (double) r->excluded[e]);
	}
	arr = cJSON_AddArrayToObject(o, "unknown_accelerators");
	for (size_t i = 0; i < r->n_unknown; i++) {
		cJSON *u = cJSON_CreateObject();
		cJSON_AddStringToObject(u, "provider", r->unknown[i].provider);
		cJSON_AddStringToObject(u, "family", r->unknown[i].family);
		cJSON_AddNumberToObject(u, "lines", (double) r->unknown[i].lines);
		cJSON_AddStringToObject(u, "cost_usd", r->unknown[i].cost_usd);
		cJSON_AddItemToArray(arr, u);
	}
	arr = cJSON_AddArrayToObject(o, "groups_not_sent");
	for (size_t i = 0; i < r->n_dropped; i++) {
		cJSON *u = cJSON_CreateObject();
		cJSON_AddStringToObject(u, "date", r->dropped[i].date);
		cJSON_AddStringToObject(u, "provider", r->dropped[i].provider);
		cJSON_AddStringToObject(u, "gpu_type", r->dropped[i].gpu_type);
		cJSON_AddStringToObject(u, "cost_usd", r->dropped[i].cost_usd);
		cJSON_AddItemToArray(arr, u);
	}
	return o;
}

static void
report_text(FILE *f, const char *what, const hx_convert *c, size_t n_recs)
{
	const hx_bill_report *r = hx_convert_report(c);

	fprintf(f, "%s: %s, %llu lines read, %llu counted, %zu records\n", what,
	        *hx_convert_format_name(c) ? hx_convert_format_name(c) : "unknown format",
	        (unsigned long long) r->lines_read, (unsigned long long) r->lines_counted, n_recs);
	fprintf(f, "  excluded:");
	for (int e = 0; e < HX_EXCL__COUNT; e++) {
		fprintf(f, " %s %llu%s", hx_bill_excl_name((hx_bill_excl) e),
		        (unsigned long long) r->excluded[e], e + 1 < HX_EXCL__COUNT ? "," : "\n");
	}
	for (size_t i = 0; i < r->n_unknown; i++) {
		fprintf(
		    f,
		    "  not in the GPU map (looks like an accelerator): %s %s, %llu lines, %s USD\n",
		    r->unknown[i].provider, r->unknown[i].family,
		    (unsigned long long) r->unknown[i].lines, r->unknown[i].cost_usd);
	}
	for (size_t i = 0; i < r->n_dropped; i++) {
		fprintf(f, "  not sent (total <= 0): %s %s %s %s USD\n", r->dropped[i].date,
		        r->dropped[i].provider, r->dropped[i].gpu_type, r->dropped[i].cost_usd);
	}
}

static void
violations_text(FILE *f, const hx_violations *v)
{
	for (size_t i = 0; i < v->len; i++) {
		fprintf(f, "  %s: %s\n", v->items[i].field, v->items[i].description);
	}
	if (v->total > v->len) {
		fprintf(f, "  ... and %zu more (only the first %zu are listed)\n",
		        v->total - v->len, v->len);
	}
}

/* The section 4 document, with provenance and replace windows. */
static char *
document(const hx_convert *c, const hx_gpu_map *map, const char *name, bool with_replace)
{
	size_t                n;
	const hx_bill_record *recs = hx_convert_records(c, &n);
	size_t                nw;
	const hx_bill_window *w = hx_convert_windows(c, &nw);
	cJSON                *doc = cJSON_CreateObject(), *prov, *arr;
	char                 *out;

	cJSON_AddStringToObject(doc, "export_id", name);
	cJSON_AddStringToObject(doc, "currency", "USD");
	prov = cJSON_AddObjectToObject(doc, "provenance");
	cJSON_AddStringToObject(prov, "format", hx_convert_format_name(c));
	cJSON_AddStringToObject(prov, "name", name);
	cJSON_AddStringToObject(prov, "mapping_version", hx_gpu_map_version(map));
	if (with_replace) {
		arr = cJSON_AddArrayToObject(doc, "replace");
		for (size_t i = 0; i < nw; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "provider", w[i].provider);
			cJSON_AddStringToObject(o, "from_date", w[i].from_date);
			cJSON_AddStringToObject(o, "to_date", w[i].to_date);
			cJSON_AddItemToArray(arr, o);
		}
	}
	arr = cJSON_AddArrayToObject(doc, "cost_data");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "date", recs[i].date);
		cJSON_AddStringToObject(o, "provider", recs[i].provider);
		cJSON_AddStringToObject(o, "gpu_type", recs[i].gpu_type);
		/* Strings: exact decimals, never a double on the way. */
		cJSON_AddStringToObject(o, "cost_usd", recs[i].cost_usd);
		if (recs[i].gpu_hours[0] != '\0') {
			cJSON_AddStringToObject(o, "gpu_hours", recs[i].gpu_hours);
		}
		cJSON_AddItemToArray(arr, o);
	}
	out = cJSON_Print(doc);
	cJSON_Delete(doc);
	return out;
}

/* ---- progress ------------------------------------------------------------------------ */

/* One line on stderr, redrawn at most 5 times a second: lines/s and bytes
 * read of the file's size (compressed bytes for a .gz). Only on a terminal. */
struct prog {
	bool            on, drawn;
	struct timespec t0, last;
};

static double
since(const struct timespec *a, const struct timespec *b)
{
	return (double) (b->tv_sec - a->tv_sec) + (double) (b->tv_nsec - a->tv_nsec) / 1e9;
}

static void
on_progress(void *arg, const char *name, uint64_t bytes, uint64_t total, uint64_t lines)
{
	struct prog    *pg = arg;
	struct timespec now;
	double          el;

	if (!pg->on) {
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (pg->drawn && since(&pg->last, &now) < 0.2) {
		return;
	}
	pg->last = now;
	el = since(&pg->t0, &now);
	if (el < 0.5 && !pg->drawn) {
		return; /* small files: no bar at all */
	}
	fprintf(stderr, "\r\033[K%.40s: %llu lines, %.0f lines/s, %.1f of %.1f MB (%.0f%%)", name,
	        (unsigned long long) lines, el > 0 ? (double) lines / el : 0.0,
	        (double) bytes / 1e6, (double) total / 1e6,
	        total ? 100.0 * (double) bytes / (double) total : 0.0);
	pg->drawn = true;
}

static void
progress_done(struct prog *pg)
{
	if (pg->drawn) {
		fputs("\r\033[K", stderr);
	}
}

/* ---- conversion of one export ----------------------------------------------------------- */

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s != NULL ? s + 1 : p;
}

/* A conversion's JSON answer o (taken): to *json_out when the caller holds
 * the answer, else printed - on stdout unless stdout carries the document
 * (no -o), then on stderr. */
static void
json_answer(const bill_args *a, cJSON *o, cJSON **json_out)
{
	char *s;

	if (json_out != NULL) {
		*json_out = o;
		return;
	}
	s = cJSON_PrintUnformatted(o);
	fprintf(a->out != NULL ? stdout : stderr, "%s\n", s != NULL ? s : "");
	free(s);
	cJSON_Delete(o);
}

/* Converts files[] to a document. Returns the exit status; *doc_out set on OK.
 * With --json and json_out, the report object goes to *json_out (the caller
 * owns it) instead of being printed. */
static int
convert_export(const bill_args *a, const char *const *files, size_t n, const char *name,
               char **doc_out, bool quiet_ok, size_t *nrec_out, cJSON **json_out)
{
	hx_violations  v;
	hx_gpu_map    *map;
	hx_convert    *c;
	hx_bill_format fmt = HX_BILL_AUTO;
	hx_status      st = HX_OK;
	struct prog    pg;
	size_t         nrec;
	int            rv;

	*doc_out = NULL;
	if (a->format != NULL && strcmp(a->format, "focus") == 0) {
		fmt = HX_BILL_FOCUS;
	} else if (a->format != NULL && strcmp(a->format, "aws-cur") == 0) {
		fmt = HX_BILL_AWS_CUR;
	}
	hx_violations_init(&v, 100);
	map = load_map(a->gpu_map, &v);
	if (map == NULL) {
		if (a->json) {
			/* The answer of a bill that never converted: what is wrong
			 * with the map, as an object like every other one. */
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "code", hx_status_name(HX_INVALID_ARGUMENT));
			cJSON_AddStringToObject(o, "message", "the GPU map cannot be used");
			cli_json_violations(o, v.items, v.len);
			json_answer(a, o, json_out);
		} else {
			fprintf(stderr, CLI_NAME ": the GPU map cannot be used:\n");
			violations_text(stderr, &v);
		}
		hx_violations_free(&v);
		return CLI_EXIT_USAGE;
	}
	c = hx_convert_new(map, fmt, &v);
	if (c == NULL) {
		hx_gpu_map_free(map);
		hx_violations_free(&v);
		return CLI_EXIT_OTHER;
	}
	memset(&pg, 0, sizeof(pg));
	pg.on = !a->json && isatty(STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &pg.t0);
	hx_convert_set_progress(c, on_progress, &pg);
	for (size_t i = 0; i < n && st == HX_OK; i++) {
		st = hx_convert_add_file(c, files[i], NULL);
	}
	progress_done(&pg);
	if (st == HX_OK) {
		st = hx_convert_finish(c);
	}
	hx_convert_records(c, &nrec);
	if (nrec_out != NULL) {
		*nrec_out = nrec;
	}
	if (st == HX_OK) {
		*doc_out = document(c, map, name, !a->no_replace);
		rv = *doc_out != NULL ? CLI_EXIT_OK : CLI_EXIT_OTHER;
	} else {
		rv = st == HX_INVALID_ARGUMENT ? CLI_EXIT_INVALID : CLI_EXIT_OTHER;
	}
	if (a->json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "code", hx_status_name(st));
		cJSON_AddStringToObject(
		    o, "message",
		    st == HX_OK ? "converted"
		                : "the export has problems; nothing was written or sent");
		cJSON_AddStringToObject(o, "format", hx_convert_format_name(c));
		cJSON_AddStringToObject(o, "mapping_version", hx_gpu_map_version(map));
		cJSON_AddNumberToObject(o, "records", (double) nrec);
		cJSON_AddItemToObject(o, "report", report_json(hx_convert_report(c)));
		cli_json_violations(o, v.items, v.len);
		json_answer(a, o, json_out);
	} else if (st != HX_OK || !quiet_ok) {
		report_text(stderr, name, c, nrec);
		if (st != HX_OK) {
			fprintf(stderr,
			        "INVALID_ARGUMENT: %zu problem(s) in the export; nothing was "
			        "written or sent\n",
			        v.total);
			violations_text(stderr, &v);
		}
	}
	hx_convert_free(c);
	hx_gpu_map_free(map);
	hx_violations_free(&v);
	return rv;
}

static void
export_name(const char *const *files, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o + 1 < outsz; i++) {
		int w = snprintf(out + o, outsz - o, "%s%s", i ? "," : "", base_name(files[i]));
		if (w < 0 || (size_t) w >= outsz - o) {
			break;
		}
		o += (size_t) w;
	}
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, CLI_NAME ": cannot write %s: %s\n", path, strerror(errno));
		return CLI_EXIT_OTHER;
	}
	fputs(text, f);
	fputc('\n', f);
	if (f == stdout ? fflush(f) != 0 : fclose(f) != 0) {
		fprintf(stderr, CLI_NAME ": cannot write %s: %s\n", path, strerror(errno));
		return CLI_EXIT_OTHER;
	}
	return CLI_EXIT_OK;
}

/* A temporary file with the document, for the JSON ingest path. Its failures
 * come out as the export's answer (cli_local_error: with --json, the one
 * object), naming the directory: TMPDIR is the usual cause. */
static int
temp_doc(const char *doc, char path[PATH_MAX])
{
	const char *env = getenv("TMPDIR");
	const char *dir = env != NULL && *env ? env : "/tmp";
	const char *why = dir == env ? " (TMPDIR)" : "";
	FILE       *f;
	int         fd, n, err;
	bool        ok = false;

	n = snprintf(path, PATH_MAX, "%s/heliox-bill-XXXXXX.json", dir);
	if (n < 0 || n >= PATH_MAX) {
		return cli_local_error(HX_INTERNAL, CLI_EXIT_OTHER,
		                       "cannot create a temporary file for the converted document: "
		                       "the directory name %.64s... (TMPDIR) is too long",
		                       dir);
	}
	fd = mkstemps(path, 5);
	if (fd < 0) {
		return cli_local_error(HX_INTERNAL, CLI_EXIT_OTHER,
		                       "cannot create a temporary file for the converted document "
		                       "in %s%s: %s; nothing was sent",
		                       dir, why, strerror(errno));
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		err = errno;
		close(fd);
	} else {
		ok = fputs(doc, f) != EOF && fputc('\n', f) != EOF;
		err = errno;
		/* fclose always: it flushes, and a full disk shows only here */
		if (fclose(f) != 0 && ok) {
			ok = false;
			err = errno;
		}
	}
	if (!ok) {
		unlink(path);
		return cli_local_error(HX_INTERNAL, CLI_EXIT_OTHER,
		                       "cannot write the converted document to the temporary file "
		                       "%s: %s; nothing was sent",
		                       path, strerror(err));
	}
	return CLI_EXIT_OK;
}

/* ---- argument handling -------------------------------------------------------------------- */

/* A usage error of a billing command: on stderr, and with --json also the
 * one object on stdout, as for every other command (cli_usage_error). */
static int
usage(const char *msg, const char *arg)
{
	return cli_usage_error("%s%s%s", msg, arg ? " " : "", arg ? arg : "");
}

/* Reads the billing options after the command word; the others stay for
 * cli_main. keep[] marks argv entries passed on. */
static int
parse_bill(int argc, char **argv, bill_args *a, bool *keep, bool allow_o)
{
	for (int i = a->cmd_at + 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = strchr(arg, '=');
		const char *val = NULL;
		bool        takes = in_list(
		           arg, (const char *const[]){ "--format", "--gpu-map", "-o", "--output", NULL });

		if (takes) {
			if (eq != NULL && arg[1] == '-') {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				return usage("option needs a value:", arg);
			}
			if (strncmp(arg, "--format", 8) == 0) {
				if (strcmp(val, "auto") != 0 && strcmp(val, "heliox") != 0 &&
				    strcmp(val, "focus") != 0 && strcmp(val, "aws-cur") != 0) {
					return usage(
					    "--format must be auto, heliox, focus or aws-cur, not",
					    val);
				}
				a->format = strcmp(val, "auto") == 0 ? NULL : val;
			} else if (strncmp(arg, "--gpu-map", 9) == 0) {
				a->gpu_map = val;
			} else if (allow_o) {
				a->out = val;
			} else {
				return usage("-o belongs to convert, not", argv[a->cmd_at]);
			}
			continue;
		}
		if (strcmp(arg, "--no-replace") == 0) {
			a->no_replace = true;
			continue;
		}
		if (strcmp(arg, "--json") == 0) {
			a->json = true;
		}
		if (arg[0] == '-' && arg[1] != '\0') {
			keep[i] = true;
			/* ingest options with a value stay together */
			if ((strcmp(arg, "--batch") == 0 || strcmp(arg, "--inflight") == 0 ||
			     in_list(arg, global_with_arg)) &&
			    strchr(arg, '=') == NULL && i + 1 < argc) {
				keep[++i] = true;
			}
			continue;
		}
		if (a->n_files >= MAX_FILES) {
			return usage("too many files", NULL);
		}
		a->files[a->n_files++] = arg;
	}
	return 0;
}

/*
 * Does this file go the JSON document's way? Yes when its first non-blank byte
 * is '{' or '[', and also when its first line has no comma: that is no CSV
 * bill either, and the JSON path says so the way it always has ("$").
 */
static bool
is_json_file(const char *path)
{
	gzFile f;
	int    ch = -1;
	bool   comma = false;

	if (strcmp(path, "-") == 0) {
		return true; /* stdin stays the JSON path */
	}
	f = gzopen(path, "rb");
	if (f == NULL) {
		return true; /* let the JSON path say what is wrong */
	}
	while ((ch = gzgetc(f)) == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
	}
	if (ch != '{' && ch != '[') {
		for (int n = 0; ch != -1 && ch != '\n' && n < (1 << 20); n++, ch = gzgetc(f)) {
			if (ch == ',') {
				comma = true;
				break;
			}
		}
		ch = comma ? ',' : '{';
	}
	gzclose(f);
	return ch == '{' || ch == '[' || ch == -1;
}

/* Runs cli_main with argv minus the billing options and files, plus `file`
 * (and a request id when given). */
static int
run_json_ingest(int argc, char **argv, const bill_args *a, const bool *keep, const char *file,
                const char *request_id, const char *batch, cli_main_fn cli_main)
{
	char **nv = calloc((size_t) argc + 8, sizeof(*nv));
	int    nc = 0, rv;

	if (nv == NULL) {
		return CLI_EXIT_OTHER;
	}
	for (int i = 0; i < a->cmd_at; i++) {
		nv[nc++] = argv[i];
	}
	if (request_id != NULL) {
		nv[nc++] = (char *) "--request-id";
		nv[nc++] = (char *) request_id;
	}
	nv[nc++] = (char *) "ingest";
	for (int i = a->cmd_at + 1; i < argc; i++) {
		if (keep[i] && !(batch != NULL && strncmp(argv[i], "--batch", 7) == 0)) {
			nv[nc++] = argv[i];
		} else if (keep[i] && batch != NULL && strcmp(argv[i], "--batch") == 0) {
			i++; /* its value */
		}
	}
	if (batch != NULL) {
		nv[nc++] = (char *) "--batch";
		nv[nc++] = (char *) batch;
	}
	nv[nc++] = (char *) file;
	nv[nc] = NULL;
	rv = cli_main(nc, nv);
	free(nv);
	return rv;
}

static int
run_convert(int argc, char **argv, bill_args *a)
{
	bool *keep = calloc((size_t) argc + 1, sizeof(bool));
	char  name[256], *doc = NULL;
	int   rv;

	if (keep == NULL) {
		return CLI_EXIT_OTHER;
	}
	rv = parse_bill(argc, argv, a, keep, true);
	free(keep);
	if (rv != 0) {
		return rv;
	}
	if (a->n_files == 0) {
		return usage("convert: give one or more FILEs (the parts of one export)", NULL);
	}
	if (a->format != NULL && strcmp(a->format, "heliox") == 0) {
		return usage(
		    "convert: --format heliox is already the JSON document; nothing to convert",
		    NULL);
	}
	export_name(a->files, a->n_files, name, sizeof(name));
	rv = convert_export(a, a->files, a->n_files, name, &doc, false, NULL, NULL);
	if (rv == CLI_EXIT_OK) {
		rv = write_file(a->out != NULL ? a->out : "-", doc);
	}
	free(doc);
	return rv;
}

static int
run_bill_ingest(int argc, char **argv, bill_args *a, bool *keep, const char *request_id,
                const char *name_override, cli_main_fn cli_main, cJSON **conv)
{
	char   name[256], *doc = NULL, tmp[PATH_MAX], batch[32];
	int    rv;
	size_t nrec = 0;
	bool   keep_batch = false;

	if (name_override != NULL) {
		snprintf(name, sizeof(name), "%s", name_override);
	} else {
		export_name(a->files, a->n_files, name, sizeof(name));
	}
	rv = convert_export(a, a->files, a->n_files, name, &doc, a->json, &nrec, conv);
	if (rv != CLI_EXIT_OK) {
		return rv;
	}
	/* Replace windows make the request the whole truth for its dates: split
	 * in batches, each batch would delete the one before. So one request. */
	if (!a->no_replace && nrec > STREAM_DEFAULT_BATCH) {
		if (nrec > STREAM_MAX_BATCH) {
			free(doc);
			/* A usage error: the bill is fine, the way it is sent is not. */
			return cli_local_error(
			    HX_INVALID_ARGUMENT, CLI_EXIT_USAGE,
			    "the export converts to %zu records, more than one request carries "
			    "(%u); with replace windows it must be one request: ingest it in parts "
			    "of fewer days, or with --no-replace; nothing was sent",
			    nrec, STREAM_MAX_BATCH);
		}
		snprintf(batch, sizeof(batch), "%zu", nrec);
		keep_batch = true;
	}
	rv = temp_doc(doc, tmp);
	free(doc);
	if (rv == CLI_EXIT_OK) {
		rv = run_json_ingest(argc, argv, a, keep, tmp, request_id,
		                     keep_batch ? batch : NULL, cli_main);
		unlink(tmp);
	}
	return rv;
}

/* ---- --json: one object per export ------------------------------------------------------------ */

/*
 * A billing ingest has two answers: the conversion's (code, format,
 * mapping_version, records, report, violations) and, when it got that far,
 * the ingest result of the JSON path (code, message, request_id, the counts,
 * violations). With --json, stdout carries one object per export (SERVICE.md
 * section 7: "--json prints one JSON object"): the ingest result's object,
 * held back from printing (cli_json_hold), else the conversion's code,
 * message and violations; then format, mapping_version, records and report,
 * and for sync the export's name first. sync prints one such line per
 * export: JSON Lines.
 */

static void
move_item(cJSON *to, cJSON *from, const char *key)
{
	cJSON *x = cJSON_DetachItemFromObjectCaseSensitive(from, key);
	if (x != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(to, key);
		cJSON_AddItemToObject(to, key, x);
	}
}

static cJSON *
status_json(hx_status code, const char *message)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "code", hx_status_name(code));
	cJSON_AddStringToObject(o, "message", message);
	return o;
}

/* o with "export" as its first key, for the reader of sync's lines. */
static cJSON *
export_first(cJSON *o, const char *export)
{
	cJSON *out = cJSON_CreateObject(), *x;

	if (out == NULL || cJSON_AddStringToObject(out, "export", export) == NULL) {
		cJSON_Delete(out);
		return o;
	}
	while ((x = o->child) != NULL) {
		cJSON_DetachItemViaPointer(o, x);
		cJSON_AddItemToObject(out, x->string, x);
	}
	cJSON_Delete(o);
	return out;
}

/* Prints the one object (see above) and frees result and conv, either of
 * which may be NULL; so may export. */
static void
emit_export(const char *export, cJSON *result, cJSON *conv)
{
	cJSON *o = result;

	if (o == NULL && conv != NULL && (o = cJSON_CreateObject()) != NULL) {
		move_item(o, conv, "code");
		move_item(o, conv, "message");
		move_item(o, conv, "violations");
	} else if (o == NULL) {
		o = status_json(HX_INTERNAL, "no answer was printed");
	}
	if (o == NULL) {
		fputs(CLI_NAME ": out of memory\n", stderr);
		cJSON_Delete(conv);
		return;
	}
	if (conv != NULL) {
		move_item(o, conv, "format");
		move_item(o, conv, "mapping_version");
		move_item(o, conv, "records");
		move_item(o, conv, "report");
		cJSON_Delete(conv);
	}
	cli_json_emit(export != NULL ? export_first(o, export) : o);
	fflush(stdout);
}

/* run_bill_ingest(), with --json its answers as one object. */
static int
bill_ingest_json(int argc, char **argv, bill_args *a, bool *keep, const char *request_id,
                 const char *label, const char *export, cli_main_fn cli_main)
{
	cJSON *conv = NULL;
	int    rv;

	/* The failures found here before the ingest runs (cli_local_error) are
	 * the export's answer: with --json, the object held for it. */
	cli_output_json(a->json);
	if (!a->json) {
		return run_bill_ingest(argc, argv, a, keep, request_id, label, cli_main, NULL);
	}
	cli_json_hold();
	rv = run_bill_ingest(argc, argv, a, keep, request_id, label, cli_main, &conv);
	emit_export(export, cli_json_take(), conv);
	return rv;
}

/* ---- sync ------------------------------------------------------------------------------------ */

/* What an exit status says (SERVICE.md section 7), for sync's text line. */
static const char *
exit_word(int rv)
{
	switch (rv) {
	case CLI_EXIT_USAGE:
		return "usage error";
	case CLI_EXIT_INVALID:
		return "INVALID_ARGUMENT";
	case CLI_EXIT_AUTH:
		return "UNAUTHENTICATED";
	case CLI_EXIT_UNAVAILABLE:
		return "UNAVAILABLE";
	default:
		return "failed";
	}
}

/* Ends a failed export's line of sync's text output: the failure says why
 * on stderr only, and the contract wants one line per export. */
static void
end_failed_line(int rv)
{
	printf("%s (exit %d); the error is on stderr\n", exit_word(rv), rv);
}

struct exp {
	char   path[PATH_MAX];
	bool   dir;
	time_t mtime;
};

static int
cmp_exp(const void *x, const void *y)
{
	const struct exp *a = x, *b = y;
	if (a->mtime != b->mtime) {
		return a->mtime < b->mtime ? -1 : 1;
	}
	return strcmp(a->path, b->path);
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *) x, *(char *const *) y);
}

/* SHA-256 over the files' bytes (and their order), as a request id. */
static bool
content_id(char *const *files, size_t n, char out[80])
{
	EVP_MD_CTX   *ctx = EVP_MD_CTX_new();
	unsigned char md[32], buf[65536];
	unsigned int  mdlen = 0;
	bool          ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < n; i++) {
		FILE  *f = fopen(files[i], "rb");
		size_t got;
		if (f == NULL) {
			ok = false;
			break;
		}
		while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
			EVP_DigestUpdate(ctx, buf, got);
		}
		fclose(f);
		EVP_DigestUpdate(ctx, "\0", 1); /* file boundary */
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (ok) {
		int o = snprintf(out, 80, "sync-");
		for (unsigned i = 0; i < 24 && i < mdlen; i++) {
			o += snprintf(out + o, 80 - (size_t) o, "%02x", md[i]);
		}
	}
	return ok;
}

static int
worse(int a, int b)
{
	/* The first failure's status wins; OK only if all were OK. */
	return a != CLI_EXIT_OK ? a : b;
}

static int
run_sync(int argc, char **argv, bill_args *a, cli_main_fn cli_main)
{
	bool          *keep = calloc((size_t) argc + 1, sizeof(bool));
	const char    *dir;
	DIR           *d;
	struct dirent *de;
	struct exp    *ex = NULL;
	size_t         n = 0;
	int            rv, total = CLI_EXIT_OK;

	if (keep == NULL) {
		return CLI_EXIT_OTHER;
	}
	if ((rv = parse_bill(argc, argv, a, keep, false)) != 0) {
		free(keep);
		return rv;
	}
	if (a->n_files != 1) {
		free(keep);
		return usage("sync: give one DIR", NULL);
	}
	dir = a->files[0];
	if ((d = opendir(dir)) == NULL) {
		int err = errno;

		free(keep);
		return cli_usage_error("sync: cannot read %s: %s", dir, strerror(err));
	}
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		struct exp *t;
		if (de->d_name[0] == '.') {
			continue;
		}
		t = realloc(ex, (n + 1) * sizeof(*ex));
		if (t == NULL) {
			break;
		}
		ex = t;
		snprintf(ex[n].path, sizeof(ex[n].path), "%.3000s/%.255s", dir, de->d_name);
		if (stat(ex[n].path, &sb) != 0) {
			continue;
		}
		ex[n].dir = S_ISDIR(sb.st_mode);
		ex[n].mtime = sb.st_mtime;
		if (ex[n].dir || S_ISREG(sb.st_mode)) {
			n++;
		}
	}
	closedir(d);
	/* Oldest first: a later delivery of a month replaces an earlier one. */
	if (n > 1) { /* qsort() of an empty (NULL) array is undefined */
		qsort(ex, n, sizeof(*ex), cmp_exp);
	}
	for (size_t i = 0; i < n; i++) {
		char       *files[MAX_FILES];
		size_t      nf = 0;
		char        rid[80];
		const char *label = base_name(ex[i].path);
		if (ex[i].dir) {
			DIR *sd = opendir(ex[i].path);
			while (sd != NULL && (de = readdir(sd)) != NULL && nf < MAX_FILES) {
				char        p[PATH_MAX];
				struct stat sb;
				if (de->d_name[0] == '.') {
					continue;
				}
				snprintf(p, sizeof(p), "%.3000s/%.255s", ex[i].path, de->d_name);
				if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
					files[nf++] = strdup(p);
				}
			}
			if (sd != NULL) {
				closedir(sd);
			}
			qsort(files, nf, sizeof(files[0]), cmp_str);
		} else {
			files[nf++] = strdup(ex[i].path);
		}
		if (nf == 0) {
			continue;
		}
		if (!content_id(files, nf, rid)) {
			fprintf(stderr, "%s: cannot read its files\n", label);
			rv = CLI_EXIT_OTHER;
			if (!a->json) {
				printf("%s: ", label);
				end_failed_line(rv);
			} else {
				emit_export(
				    label, status_json(HX_INTERNAL, "cannot read its files"), NULL);
			}
		} else {
			bill_args one = *a;
			one.n_files = nf;
			for (size_t k = 0; k < nf; k++) {
				one.files[k] = files[k];
			}
			one.bill = true;
			if (!a->json) {
				printf("%s: ", label);
				fflush(stdout);
			}
			if (nf == 1 && one.format == NULL && is_json_file(files[0])) {
				if (a->json) {
					cli_json_hold();
				}
				rv = run_json_ingest(argc, argv, &one, keep, files[0], rid, NULL,
				                     cli_main);
				if (a->json) {
					emit_export(label, cli_json_take(), NULL);
				}
			} else {
				rv = bill_ingest_json(argc, argv, &one, keep, rid, label, label,
				                      cli_main);
			}
			if (!a->json && rv != CLI_EXIT_OK) {
				end_failed_line(rv);
			}
			fflush(stdout);
		}
		total = worse(total, rv);
		for (size_t k = 0; k < nf; k++) {
			free(files[k]);
		}
	}
	free(ex);
	free(keep);
	return total;
}

static const char usage_bill[] =
    "usage: " CLI_NAME
    " [--json] convert [--format auto|focus|aws-cur] [--gpu-map FILE] [-o OUT] FILE...\n"
    "       " CLI_NAME " [options] ingest [--format auto|heliox|focus|aws-cur] [--gpu-map FILE]\n"
    "                        [--no-replace] [--dry-run] FILE...\n"
    "       " CLI_NAME " [options] sync [--gpu-map FILE] [--no-replace] DIR\n"
    "\n"
    "Billing exports (FOCUS 1.0-1.3, AWS CUR legacy and 2.0; plain or gzip) become GPU daily cost\n"
    "records with gpu_hours, one replace window per provider and provenance (SERVICE.md section "
    "8).\n"
    "Several FILEs are the parts of one export. convert writes the JSON document to OUT (default\n"
    "stdout) and a report to stderr (--json: the report as one JSON object, on stdout with -o).\n"
    "ingest converts and sends the document as `ingest FILE` sends any export; --no-replace sends\n"
    "no replace windows. sync ingests every export under DIR (a folder of files, or a file), "
    "oldest\n"
    "first, with request ids from the files' SHA-256, so running it again writes nothing new.\n"
    "--json: ingest prints one JSON object (the ingest result's fields plus format,\n"
    "mapping_version, records and the conversion report); sync prints one such object per\n"
    "export per line (JSON Lines), each with \"export\": the folder or file name.\n"
    "The GPU map: --gpu-map FILE, else ../share/heliox/gpu_map_v1.csv beside the executable.\n"
    "Exit status: 0 OK, 2 usage, 3 a problem in the bill (FILE:LINE.COLUMN), as for ingest.\n";

/* ---- entry ------------------------------------------------------------------------------------- */

int
cli_bill_main(int argc, char **argv, cli_main_fn cli_main)
{
	bill_args a;
	int       i;

	memset(&a, 0, sizeof(a));
	/* The command word: the first argument that is not a global option. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a.json = true;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0') {
			break;
		}
		if (in_list(argv[i], global_with_arg) && strchr(argv[i], '=') == NULL) {
			i++;
		}
	}
	if (i >= argc) {
		return cli_main(argc, argv);
	}
	a.cmd_at = i;
	/* A usage error found while reading the billing options comes out as
	 * JSON too when --json is anywhere (as run_command does). */
	cli_output_json(cli_json_prescan(argc, argv));
	if (strcmp(argv[i], "convert") == 0 || strcmp(argv[i], "sync") == 0) {
		if (any_arg(argc, argv, (const char *const[]){ "--help", "-h", NULL })) {
			fputs(usage_bill, stdout);
			return CLI_EXIT_OK;
		}
	}
	if (strcmp(argv[i], "convert") == 0) {
		return run_convert(argc, argv, &a);
	}
	if (strcmp(argv[i], "sync") == 0) {
		return run_sync(argc, argv, &a, cli_main);
	}
	if (strcmp(argv[i], "ingest") == 0) {
		bool *keep = calloc((size_t) argc + 1, sizeof(bool));
		int   rv;
		if (keep == NULL) {
			return CLI_EXIT_OTHER;
		}
		if ((rv = parse_bill(argc, argv, &a, keep, false)) != 0) {
			free(keep);
			return rv;
		}
		/* A billing export: a billing option, several files, or a file that is
		 * not a JSON document. Otherwise the JSON path, untouched. */
		a.bill = a.n_files > 1 || (a.format != NULL && strcmp(a.format, "heliox") != 0) ||
		    (a.n_files == 1 && a.format == NULL && !is_json_file(a.files[0]));
		if (a.bill &&
		    any_arg(argc, argv,
		            (const char *const[]){ "--help", "-h", "--version", "-V", NULL })) {
			/* only the help or the version, as for any ingest: nothing converted */
			rv =
			    run_json_ingest(argc, argv, &a, keep, a.files[0], NULL, NULL, cli_main);
		} else if (a.bill) {
			rv = bill_ingest_json(argc, argv, &a, keep, NULL, NULL, NULL, cli_main);
		} else if (a.format != NULL || a.gpu_map != NULL || a.no_replace) {
			/* --format heliox etc.: drop the billing options, keep the rest */
			rv = a.n_files == 1 ? run_json_ingest(argc, argv, &a, keep, a.files[0],
			                                      NULL, NULL, cli_main)
			                    : cli_main(argc, argv);
		} else {
			rv = cli_main(argc, argv);
		}
		free(keep);
		return rv;
	}
	return cli_main(argc, argv);
}
