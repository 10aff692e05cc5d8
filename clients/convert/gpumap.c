/*
 * gpumap.c - the project's GPU map file: instance family / VM size / SKU
 * pattern -> GPU model, and GPUs per instance size (R4, G3).
 *
 * The map is data, not code, so a new instance family is a one-line change
 * with its source beside it, and `--gpu-map` can point at a newer file; its
 * `mapping_version` travels with every ingest (provenance) so a stored row can
 * be traced to the map that produced it.
 */
#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert_internal.h"

enum { MCOL_PROVIDER, MCOL_KIND, MCOL_KEY, MCOL_GPU, MCOL_GPUS, MCOL_SOURCE, MCOL_N };
static const char *const mcol_names[MCOL_N] = { "provider", "kind", "key",
	                                        "gpu_type", "gpus", "source" };

struct mparse {
	struct hx_gpu_map *m;
	const char        *name;
	hx_violations     *viol;
	int                line; /* physical line of the current row */
	char               f[MCOL_N][512];
	size_t             flen[MCOL_N];
	int                nf;
	bool               header_done;
	bool               bad;
	bool               oom;
};

static int64_t
gcd64(int64_t a, int64_t b)
{
	while (b != 0) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* "8", "1/6", "0.5" -> num/den reduced; false if not a positive count. */
static bool
parse_gpus(const char *s, int64_t *num, int64_t *den)
{
	int64_t     n = 0, d = 1;
	const char *p = s;

	if (*p < '0' || *p > '9') {
		return false;
	}
	while (*p >= '0' && *p <= '9' && n < 1000000) {
		n = n * 10 + (*p++ - '0');
	}
	if (*p == '/') {
		int64_t dd = 0;
		p++;
		if (*p < '1' || *p > '9') {
			return false;
		}
		while (*p >= '0' && *p <= '9' && dd < 1000000) {
			dd = dd * 10 + (*p++ - '0');
		}
		d = dd;
	} else if (*p == '.') {
		p++;
		for (int k = 0; *p >= '0' && *p <= '9'; k++, p++) {
			if (k >= 6) {
				return false;
			}
			n = n * 10 + (*p - '0');
			d *= 10;
		}
	}
	if (*p != '\0' || n <= 0 || d <= 0) {
		return false;
	}
	{
		int64_t g = gcd64(n, d);
		*num = n / g;
		*den = d / g;
	}
	return true;
}

static int
gpu_index(struct hx_gpu_map *m, const char *name)
{
	for (int i = 0; i < m->n_gpu; i++) {
		if (strcmp(m->gpu_names[i], name) == 0) {
			return i;
		}
	}
	if (m->n_gpu >= HX_MAP_GPU_MAX) {
		return -1;
	}
	snprintf(m->gpu_names[m->n_gpu], sizeof(m->gpu_names[0]), "%s", name);
	return m->n_gpu++;
}

static bool
push(hx_map_entry **tab, size_t *n, const hx_map_entry *e)
{
	hx_map_entry *t = realloc(*tab, (*n + 1) * sizeof(**tab));
	if (t == NULL) {
		return false;
	}
	t[(*n)++] = *e;
	*tab = t;
	return true;
}

static void mbad(struct mparse *p, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
mbad(struct mparse *p, int col, const char *fmt, ...)
{
	char    field[HX_FIELD_MAX], desc[HX_DESC_MAX];
	va_list ap;

	if (col > 0) {
		snprintf(field, sizeof(field), "%.64s:%d.%d", p->name, p->line, col);
	} else {
		snprintf(field, sizeof(field), "%.64s:%d", p->name, p->line);
	}
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	hx_violations_add(p->viol, field, "%s", desc);
	p->bad = true;
}

static bool
valid_gpu_name(const char *s)
{
	if (*s == '\0' || strlen(s) > HX_BILL_NAME_MAX) {
		return false;
	}
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_')) {
			return false;
		}
	}
	return true;
}

static void
mrow(struct mparse *p)
{
	struct hx_gpu_map *m = p->m;
	hx_map_entry       e;
	const char *prov = p->f[MCOL_PROVIDER], *kind = p->f[MCOL_KIND], *key = p->f[MCOL_KEY];
	const char *gpu = p->f[MCOL_GPU], *gpus = p->f[MCOL_GPUS];

	memset(&e, 0, sizeof(e));
	e.gpu = -1;
	if (!p->header_done) {
		for (int i = 0; i < MCOL_N; i++) {
			if (p->nf != MCOL_N || strcmp(p->f[i], mcol_names[i]) != 0) {
				mbad(p, 0, "%s",
				     "header must be provider,kind,key,gpu_type,gpus,source");
				break;
			}
		}
		p->header_done = true;
		return;
	}
	if (p->nf != MCOL_N) {
		mbad(p, 0, "%s", "must have 6 fields");
		return;
	}
	if (*key == '\0' || strlen(key) > (size_t) HX_BILL_NAME_MAX * 2) {
		mbad(p, MCOL_KEY + 1, "%s", "key must be 1 to 128 bytes");
		return;
	}
	if (p->flen[MCOL_SOURCE] == 0) {
		mbad(p, MCOL_SOURCE + 1, "%s", "every entry needs its source");
		return;
	}
	snprintf(e.key, sizeof(e.key), "%.64s", key);
	if (*gpu != '\0') {
		if (!valid_gpu_name(gpu)) {
			mbad(p, MCOL_GPU + 1,
			     "gpu_type %s must be lower-case [a-z0-9_-], 1-64 bytes", gpu);
			return;
		}
		e.gpu = gpu_index(m, gpu);
	}
	if (*gpus != '\0') {
		if (!parse_gpus(gpus, &e.num, &e.den)) {
			mbad(p, MCOL_GPUS + 1,
			     "gpus %s must be a positive count, fraction a/b or decimal", gpus);
			return;
		}
		m->den_lcm = m->den_lcm / gcd64(m->den_lcm, e.den) * e.den;
	}
	if (strcmp(prov, "aws") == 0 && strcmp(kind, "family") == 0 && e.gpu >= 0) {
		for (char *c = e.key; *c; c++) {
			*c = (char) (*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		}
		p->oom |= !push(&m->fam, &m->n_fam, &e);
	} else if (strcmp(prov, "aws") == 0 && strcmp(kind, "size") == 0 && e.den > 0) {
		for (char *c = e.key; *c; c++) {
			*c = (char) (*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		}
		p->oom |= !push(&m->size, &m->n_size, &e);
	} else if (strcmp(prov, "azure") == 0 && strcmp(kind, "vm_size") == 0 && e.gpu >= 0) {
		p->oom |= !push(&m->vm, &m->n_vm, &e);
	} else if (strcmp(prov, "gcp") == 0 && strcmp(kind, "sku") == 0 && e.gpu >= 0) {
		hx_map_sku *t = realloc(m->sku, (m->n_sku + 1) * sizeof(*t));
		if (t == NULL) {
			p->oom = true;
			return;
		}
		m->sku = t;
		if (regcomp(&t[m->n_sku].re, key, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
			mbad(p, MCOL_KEY + 1,
			     "pattern %s is not a valid extended regular expression", key);
			return;
		}
		t[m->n_sku++].gpu = e.gpu;
	} else {
		mbad(p, MCOL_KIND + 1,
		     "%s: expected aws,family (with gpu_type), aws,size (with gpus), azure,vm_size "
		     "(with both) or gcp,sku (with gpu_type)",
		     kind);
	}
}

static void
mfield(void *s, size_t len, void *arg)
{
	struct mparse *p = arg;

	if (p->nf < MCOL_N) {
		size_t n = len < sizeof(p->f[0]) - 1 ? len : sizeof(p->f[0]) - 1;
		memcpy(p->f[p->nf], s, n);
		p->f[p->nf][n] = '\0';
		p->flen[p->nf] = len;
	}
	p->nf++;
}

static void
mend(int c, void *arg)
{
	struct mparse *p = arg;

	mrow(p);
	p->nf = 0;
}

hx_status
hx_gpu_map_parse(const char *name, const char *text, size_t len, hx_gpu_map **out,
                 hx_violations *viol)
{
	struct mparse     *p;
	struct csv_parser  csv;
	size_t             i = 0;
	struct hx_gpu_map *m;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	p = calloc(1, sizeof(*p));
	if (m == NULL || p == NULL || csv_init(&csv, CSV_STRICT | CSV_STRICT_FINI) != 0) {
		free(m);
		free(p);
		return HX_RESOURCE_EXHAUSTED;
	}
	m->den_lcm = 1;
	p->m = m;
	p->name = name;
	p->viol = viol;
	p->line = 1;
	/* Leading '#' lines are comments; the first names the version. */
	while (i < len && text[i] == '#') {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t      end = nl != NULL ? (size_t) (nl - text) : len;
		const char *v = "mapping_version=";
		const char *hit = memmem(text + i, end - i, v, strlen(v));
		if (hit != NULL && m->version[0] == '\0') {
			size_t k = 0;
			hit += strlen(v);
			while (hit < text + end && *hit != ' ' && *hit != '\r' &&
			       k < HX_BILL_NAME_MAX) {
				m->version[k++] = *hit++;
			}
		}
		i = nl != NULL ? end + 1 : len;
		p->line++;
	}
	if (m->version[0] == '\0') {
		char field[HX_FIELD_MAX];
		snprintf(field, sizeof(field), "%.80s:1", name);
		hx_violations_add(viol, field,
		                  "a GPU map starts with a line '# mapping_version=NAME'");
		p->bad = true;
	}
	/* One line at a time, so every row knows its line number. */
	while (i < len && !p->oom) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t      n = nl != NULL ? (size_t) (nl - text) + 1 - i : len - i;
		if (csv_parse(&csv, text + i, n, mfield, mend, p) != n) {
			mbad(p, 0, "%s", "malformed CSV");
			break;
		}
		i += n;
		p->line++;
	}
	if (csv_fini(&csv, mfield, mend, p) != 0 && !p->bad) {
		mbad(p, 0, "%s", "unterminated quoted field");
	}
	csv_free(&csv);
	if (!p->bad && m->n_fam + m->n_vm + m->n_sku == 0) {
		char field[HX_FIELD_MAX];
		snprintf(field, sizeof(field), "%.90s", name);
		hx_violations_add(viol, field, "the GPU map has no entries");
		p->bad = true;
	}
	{
		bool bad = p->bad, oom = p->oom;
		free(p);
		if (bad || oom) {
			hx_gpu_map_free(m);
			return oom ? HX_RESOURCE_EXHAUSTED : HX_INVALID_ARGUMENT;
		}
	}
	*out = m;
	return HX_OK;
}

hx_status
hx_gpu_map_load(const char *path, hx_gpu_map **out, hx_violations *viol)
{
	FILE     *f = fopen(path, "rb");
	char     *buf = NULL;
	size_t    len = 0, cap = 0, n;
	hx_status st;

	*out = NULL;
	if (f == NULL) {
		hx_violations_add(viol, path, "cannot read the GPU map: %s", strerror(errno));
		return HX_INVALID_ARGUMENT;
	}
	do {
		if (len + 65536 > cap) {
			char *t = realloc(buf, cap + 65536 + 1);
			if (t == NULL || cap > (64u << 20)) {
				free(t != NULL ? t : buf);
				fclose(f);
				return HX_RESOURCE_EXHAUSTED;
			}
			buf = t;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	st = hx_gpu_map_parse(path, buf != NULL ? buf : "", len, out, viol);
	free(buf);
	return st;
}

const char *
hx_gpu_map_version(const hx_gpu_map *m)
{
	return m->version;
}

void
hx_gpu_map_free(hx_gpu_map *m)
{
	if (m == NULL) {
		return;
	}
	for (size_t i = 0; i < m->n_sku; i++) {
		regfree(&m->sku[i].re);
	}
	free(m->sku);
	free(m->fam);
	free(m->size);
	free(m->vm);
	free(m);
}

static int
lower_ascii(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : (unsigned char) ch;
}

const hx_map_entry *
hx_map_find(const hx_map_entry *tab, size_t n, const char *key, size_t len)
{
	int k0 = len > 0 ? lower_ascii(key[0]) : 0;

	for (size_t i = 0; i < n; i++) {
		/* the first letter first: strncasecmp on every entry was 8% of a convert */
		if (lower_ascii(tab[i].key[0]) == k0 && strncasecmp(tab[i].key, key, len) == 0 &&
		    tab[i].key[len] == '\0') {
			return &tab[i];
		}
	}
	return NULL;
}
