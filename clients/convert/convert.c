/*
 * convert.c - one streaming pass over a billing export: CSV rows -> GPU
 * daily cost records, replace windows and the report (SERVICE.md section 8).
 *
 * CSV is split by libcsv. It is fed one physical line at a time (found with
 * memchr) so that every row knows the line it starts on: violations name
 * FILE:LINE.COLUMN, with embedded newlines in quoted fields counted as lines.
 * Only the columns a rule reads are copied out of libcsv's field buffer.
 * Aggregation keeps one small entry per (date, provider, gpu_type), so memory
 * does not grow with the file.
 */
#include <csv.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "billnum.h"
#include "convert_internal.h"

#define MAX_ROW_BYTES (8u << 20) /* a row longer than this is a broken quote */
#define MAX_PROVIDERS 64
#define READ_CHUNK    (1u << 20)
#define HOURS_SCALE   3600 /* seconds units count / 3600 (G2) */

/* ---- the columns the rules read ------------------------------------------- */

enum role {
	/* FOCUS */
	F_START,
	F_END,
	F_CATEGORY,
	F_CLASS,
	F_CDSTATUS,
	F_EFFECTIVE,
	F_CURRENCY,
	F_EFF_USD,
	F_PROVIDER,
	F_SPROVIDER,
	F_SKUPD,
	F_USAGETYPE,
	F_DESC,
	F_CQTY,
	F_CUNIT,
	/* CUR */
	C_PRODUCT,
	C_LTYPE,
	C_UTYPE,
	C_ITYPE,
	C_UNBLENDED,
	C_RI_EFF,
	C_SP_EFF,
	C_START,
	C_CURRENCY,
	C_AMOUNT,
	C_PUNIT,
	ROLE_N
};

/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): 48 bytes x 40 columns */
struct colname {
	enum role   role;
	const char *focus;  /* FOCUS name */
	const char *legacy; /* CUR legacy */
	const char *cur2;   /* CUR 2.0 */
	bool        required;
};

static const struct colname colnames[] = {
	{ F_START, "ChargePeriodStart", NULL, NULL, true },
	{ F_END, "ChargePeriodEnd", NULL, NULL, false },
	{ F_CATEGORY, "ChargeCategory", NULL, NULL, true },
	{ F_CLASS, "ChargeClass", NULL, NULL, false },
	{ F_CDSTATUS, "CommitmentDiscountStatus", NULL, NULL, false },
	{ F_EFFECTIVE, "EffectiveCost", NULL, NULL, true },
	{ F_CURRENCY, "BillingCurrency", NULL, NULL, true },
	{ F_EFF_USD, "x_EffectiveCostInUsd", NULL, NULL, false },
	{ F_PROVIDER, "ProviderName", NULL, NULL, false }, /* one of the two, checked apart */
	{ F_SPROVIDER, "ServiceProviderName", NULL, NULL, false },
	{ F_SKUPD, "SkuPriceDetails", NULL, NULL, false },
	{ F_USAGETYPE, "x_UsageType", NULL, NULL, false },
	{ F_DESC, "ChargeDescription", NULL, NULL, false },
	{ F_CQTY, "ConsumedQuantity", NULL, NULL, false },
	{ F_CUNIT, "ConsumedUnit", NULL, NULL, false },
	{ C_PRODUCT, NULL, "lineItem/ProductCode", "line_item_product_code", true },
	{ C_LTYPE, NULL, "lineItem/LineItemType", "line_item_line_item_type", true },
	{ C_UTYPE, NULL, "lineItem/UsageType", "line_item_usage_type", true },
	{ C_ITYPE, NULL, "product/instanceType", "product_instance_type", false },
	{ C_UNBLENDED, NULL, "lineItem/UnblendedCost", "line_item_unblended_cost", true },
	{ C_RI_EFF, NULL, "reservation/EffectiveCost", "reservation_effective_cost", false },
	{ C_SP_EFF, NULL, "savingsPlan/SavingsPlanEffectiveCost",
	  "savings_plan_savings_plan_effective_cost", false },
	{ C_START, NULL, "lineItem/UsageStartDate", "line_item_usage_start_date", true },
	{ C_CURRENCY, NULL, "lineItem/CurrencyCode", "line_item_currency_code", true },
	{ C_AMOUNT, NULL, "lineItem/UsageAmount", "line_item_usage_amount", true },
	{ C_PUNIT, NULL, "pricing/unit", "pricing_unit", false },
};

enum kind { K_NONE, K_FOCUS, K_CUR_LEGACY, K_CUR2 };

/* ---- aggregation ------------------------------------------------------------- */

struct group {
	uint64_t key; /* 0 = empty slot */
	int32_t  day;
	int      prov, gpu;
	hx_wdec  cost;
	hx_wdec  hours; /* in units of 1 / (HOURS_SCALE * den_lcm) hour */
	bool     hours_unknown;
	uint64_t lines;
};

struct provider {
	char    name[HX_BILL_NAME_MAX + 1];
	int32_t min_day, max_day;
	bool    seen;
};

struct unknown_acc {
	int      prov;
	char     family[HX_BILL_NAME_MAX + 1];
	uint64_t lines;
	hx_wdec  cost;
};

/* A column's text in the current row: in the caller's buffer (the fast path,
 * fast_row()) or in the arena (libcsv's copies, arena + off, resolved to p
 * when the row ends since the arena may move while the row is read). */
struct field {
	const char *p;
	size_t      off, len;
	bool        present, in_arena;
};

/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): one per export; grouped by purpose */
struct hx_convert {
	const hx_gpu_map      *map;
	hx_bill_format         want;
	hx_violations         *viol;
	size_t                 viol_at_start;
	hx_convert_progress_fn progress;
	int                    n_threads; /* 1 or 2: see par_read() */
	void                  *progress_arg;

	/* export-wide */
	enum kind           kind;
	char                format_name[32];
	struct provider     prov[MAX_PROVIDERS];
	int                 n_prov;
	char                last_prov[64]; /* the last row's provider text and its index */
	size_t              last_prov_len; /* (SIZE_MAX: none yet) */
	int                 last_prov_idx;
	struct group       *groups;
	size_t              n_groups, cap_groups; /* cap is a power of two */
	struct unknown_acc *unk;
	size_t              n_unk;
	hx_bill_report      report;
	bool                oom;

	/* the current file */
	char              name[512];
	struct csv_parser csv;
	bool              csv_live;
	enum kind         fkind;
	bool              header_done;
	bool              degraded; /* header problems: rows only checked for shape */
	size_t            ncols;
	int16_t          *col_role;         /* per column: role or -1 */
	int               role_col[ROLE_N]; /* 1-based column of a role, 0 = absent */
	size_t            nf;               /* fields of the current row */
	struct field      f[ROLE_N];
	char             *arena;
	size_t            arena_len, arena_cap;
	char            **hdr; /* header names while reading line 1 */
	size_t            n_hdr, cap_hdr;
	uint64_t          line;     /* physical line being fed */
	uint64_t          row_line; /* line the current row started on */
	bool              at_row_start, row_ended_here, mid_line;
	bool              skip_line; /* after a CSV error: the rest of the line is not read */
	uint64_t          row_bytes;
	uint64_t          file_rows;
	size_t            bom_seen; /* bytes of a leading BOM matched so far */
	bool              any_byte;
	uint64_t          file_bytes, file_total;

	/* results */
	hx_bill_record  *recs;
	size_t           n_recs;
	hx_bill_window  *wins;
	size_t           n_wins;
	hx_bill_unknown *unk_out;
	hx_bill_dropped *dropped;
	size_t           n_dropped;
};

const char *
hx_bill_excl_name(hx_bill_excl e)
{
	static const char *const n[HX_EXCL__COUNT] = { "not_compute", "charge_category",
		                                       "line_type", "unused_commitment",
		                                       "not_gpu_instance" };
	return (unsigned) e < HX_EXCL__COUNT ? n[e] : "?";
}

/* ---- small helpers ------------------------------------------------------------ */

static void violation(hx_convert *c, uint64_t line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
violation(hx_convert *c, uint64_t line, int col, const char *fmt, ...)
{
	char    field[HX_FIELD_MAX], desc[HX_DESC_MAX];
	va_list ap;

	{
		/* FILE:LINE.COLUMN; a long FILE loses its start, never the position. */
		char   suffix[48] = "";
		size_t sl, nl = strlen(c->name), room;
		if (line > 0 && col > 0) {
			snprintf(suffix, sizeof(suffix), ":%llu.%d", (unsigned long long) line,
			         col);
		} else if (line > 0) {
			snprintf(suffix, sizeof(suffix), ":%llu", (unsigned long long) line);
		}
		sl = strlen(suffix);
		room = sizeof(field) - 1 - sl;
		if (nl > room) {
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): ended below */
			memcpy(field, "...", 3);
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): ended below */
			memcpy(field + 3, c->name + nl - (room - 3), room - 3);
			nl = room;
		} else {
			memcpy(field, c->name, nl);
		}
		memcpy(field + nl, suffix, sl + 1);
	}
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (hx_violations_add(c->viol, field, "%s", desc) != HX_OK) {
		c->oom = true;
	}
}

static const char *
fval(const hx_convert *c, enum role r, size_t *len)
{
	*len = c->f[r].len;
	return c->f[r].p;
}

/* R6: empty, or the tokens NULL / null. */
static bool
fnull(const hx_convert *c, enum role r)
{
	const struct field *f = &c->f[r];
	const char         *s = f->p;

	if (!f->present || f->len == 0) {
		return true;
	}
	return f->len == 4 && (memcmp(s, "NULL", 4) == 0 || memcmp(s, "null", 4) == 0);
}

static bool
feq(const hx_convert *c, enum role r, const char *lit)
{
	size_t n = strlen(lit);
	return c->f[r].present && c->f[r].len == n && strncasecmp(c->f[r].p, lit, n) == 0;
}

static const char *
colname_of(const hx_convert *c, enum role r)
{
	for (size_t i = 0; i < sizeof(colnames) / sizeof(colnames[0]); i++) {
		if (colnames[i].role == r) {
			return c->fkind == K_FOCUS     ? colnames[i].focus
			    : c->fkind == K_CUR_LEGACY ? colnames[i].legacy
			                               : colnames[i].cur2;
		}
	}
	return "?";
}

/* Parses a number column (R7); a violation and false when unreadable. */
static bool
fnum(hx_convert *c, enum role r, hx_wdec *out)
{
	size_t      len;
	const char *s = fval(c, r, &len);
	const char *why;

	if (fnull(c, r)) {
		violation(c, c->row_line, c->role_col[r], "%s is null on a counted line",
		          colname_of(c, r));
		return false;
	}
	why = hx_wdec_parse(s, len, out);
	if (why != NULL) {
		violation(c, c->row_line, c->role_col[r], "%s %.*s %s", colname_of(c, r),
		          (int) (len > 40 ? 40 : len), s, why);
		return false;
	}
	return true;
}

static bool
fdate(hx_convert *c, enum role r, int32_t *day, bool required)
{
	size_t      len;
	const char *s = fval(c, r, &len);
	const char *why;

	if (!c->f[r].present) {
		return !required;
	}
	if (fnull(c, r)) {
		if (required) {
			violation(c, c->row_line, c->role_col[r], "%s is required",
			          colname_of(c, r));
		}
		return !required;
	}
	why = hx_bill_datetime_parse(s, len, day);
	if (why != NULL) {
		violation(c, c->row_line, c->role_col[r], "%s %.*s %s", colname_of(c, r),
		          (int) (len > 40 ? 40 : len), s, why);
		return false;
	}
	return true;
}

/* ---- providers, groups --------------------------------------------------------- */

/* R3: FOCUS provider names to the short keys. */
static void
provider_key(const char *s, size_t len, char out[HX_BILL_NAME_MAX + 1])
{
	static const struct {
		const char *name, *key;
	} known[] = { { "aws", "aws" },
		      { "amazon web services", "aws" },
		      { "microsoft", "azure" },
		      { "microsoft azure", "azure" },
		      { "azure", "azure" },
		      { "google cloud", "gcp" },
		      { "google cloud platform", "gcp" },
		      { "google", "gcp" },
		      { "gcp", "gcp" },
		      { "oracle", "oci" },
		      { "oracle cloud infrastructure", "oci" },
		      { "oci", "oci" } };
	size_t n = 0;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
		len--;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i].name) == len && strncasecmp(known[i].name, s, len) == 0) {
			memcpy(out, known[i].key, strlen(known[i].key) + 1);
			return;
		}
	}
	/* Others keep their name, lower-cased as the server normalises it. */
	for (; n < len && n < HX_BILL_NAME_MAX; n++) {
		out[n] = (char) (s[n] >= 'A' && s[n] <= 'Z' ? s[n] + 32 : s[n]);
	}
	out[n] = '\0';
}

static int
provider_index(hx_convert *c, const char *key)
{
	for (int i = 0; i < c->n_prov; i++) {
		if (strcmp(c->prov[i].name, key) == 0) {
			return i;
		}
	}
	if (c->n_prov >= MAX_PROVIDERS) {
		return -1;
	}
	snprintf(c->prov[c->n_prov].name, sizeof(c->prov[0].name), "%s", key);
	return c->n_prov++;
}

static void
window_extend(hx_convert *c, int p, int32_t day)
{
	struct provider *pv = &c->prov[p];
	if (!pv->seen) {
		pv->min_day = pv->max_day = day;
		pv->seen = true;
	} else {
		pv->min_day = day < pv->min_day ? day : pv->min_day;
		pv->max_day = day > pv->max_day ? day : pv->max_day;
	}
}

static uint64_t
hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct group *
group_get(hx_convert *c, int32_t day, int prov, int gpu)
{
	uint64_t key = ((uint64_t) (uint32_t) (day + 1000000) << 20) | ((uint64_t) prov << 10) |
	    (uint64_t) gpu;
	size_t mask, i;

	if ((c->n_groups + 1) * 2 > c->cap_groups) {
		size_t        ncap = c->cap_groups ? c->cap_groups * 2 : 256;
		struct group *ng = calloc(ncap, sizeof(*ng));
		if (ng == NULL) {
			c->oom = true;
			return NULL;
		}
		for (size_t k = 0; k < c->cap_groups; k++) {
			if (c->groups[k].key != 0) {
				size_t j = hash64(c->groups[k].key) & (ncap - 1);
				while (ng[j].key != 0) {
					j = (j + 1) & (ncap - 1);
				}
				ng[j] = c->groups[k];
			}
		}
		free(c->groups);
		c->groups = ng;
		c->cap_groups = ncap;
	}
	mask = c->cap_groups - 1;
	for (i = hash64(key) & mask; c->groups[i].key != 0; i = (i + 1) & mask) {
		if (c->groups[i].key == key) {
			return &c->groups[i];
		}
	}
	c->groups[i].key = key;
	c->groups[i].day = day;
	c->groups[i].prov = prov;
	c->groups[i].gpu = gpu;
	c->n_groups++;
	return &c->groups[i];
}

static void
unknown_add(hx_convert *c, int prov, const char *fam, size_t len, const hx_wdec *cost)
{
	size_t n = len > HX_BILL_NAME_MAX ? HX_BILL_NAME_MAX : len;
	size_t i;

	for (i = 0; i < c->n_unk; i++) {
		if (c->unk[i].prov == prov && strlen(c->unk[i].family) == n &&
		    memcmp(c->unk[i].family, fam, n) == 0) {
			break;
		}
	}
	if (i == c->n_unk) {
		struct unknown_acc *t;
		if (c->n_unk >= 1000) {
			return; /* bounded: the report is for people */
		}
		t = realloc(c->unk, (c->n_unk + 1) * sizeof(*t));
		if (t == NULL) {
			c->oom = true;
			return;
		}
		c->unk = t;
		memset(&t[i], 0, sizeof(t[i]));
		t[i].prov = prov;
		memcpy(t[i].family, fam, n);
		c->n_unk++;
	}
	c->unk[i].lines++;
	if (cost != NULL) {
		hx_wdec_add(&c->unk[i].cost, cost);
	}
}

/* ---- instance -> GPU (R4, F3, A3, G3) ---------------------------------------- */

struct gpu_hit {
	int     gpu;        /* -1: not a GPU line */
	int64_t factor;     /* GPUs per instance, in units of 1/den_lcm; 0 = size unknown */
	bool    accel_like; /* not in the map but looks like an accelerator */
	char    family[HX_BILL_NAME_MAX + 1];
};

static bool
is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/* family.size where family starts with a letter and has a digit, size names
 * an EC2 size (nano .. 48xlarge, metal, metal-24xl). */
static bool
looks_like_instance(const char *s, size_t len)
{
	const char *dot = memchr(s, '.', len);
	size_t      fl, i;
	bool        digit = false;

	if (dot == NULL || len < 4 || s[0] < 'a' || s[0] > 'z') {
		return false;
	}
	fl = (size_t) (dot - s);
	for (i = 0; i < fl; i++) {
		if (!is_lower_alnum(s[i])) {
			return false;
		}
		digit |= s[i] >= '0' && s[i] <= '9';
	}
	if (!digit || fl + 1 >= len) {
		return false;
	}
	for (i = fl + 1; i < len; i++) {
		if (!is_lower_alnum(s[i])) {
			return false;
		}
	}
	return memmem(dot, len - fl, "large", 5) != NULL ||
	    memmem(dot, len - fl, "metal", 5) != NULL || memmem(dot, len - fl, "nano", 4) != NULL ||
	    memmem(dot, len - fl, "micro", 5) != NULL ||
	    memmem(dot, len - fl, "small", 5) != NULL || memmem(dot, len - fl, "medium", 6) != NULL;
}

static int64_t
factor_of(const hx_convert *c, const hx_map_entry *e)
{
	if (e == NULL || e->den == 0) {
		return 0;
	}
	return e->num * (c->map->den_lcm / e->den);
}

/* AWS instance type (e.g. "g5.4xlarge", "p6-b200.48xlarge"): family before
 * the first '.'. */
static void
aws_lookup(const hx_convert *c, const char *s, size_t len, struct gpu_hit *h)
{
	const char         *dot = memchr(s, '.', len);
	size_t              fl = dot != NULL ? (size_t) (dot - s) : len;
	const hx_map_entry *fam;
	char                lower[HX_BILL_NAME_MAX + 1];
	size_t              n = len > HX_BILL_NAME_MAX ? HX_BILL_NAME_MAX : len;

	// cppcheck-suppress knownConditionTrueFalse ; n is len capped, not always 0
	for (size_t i = 0; i < n; i++) {
		lower[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	}
	lower[n] = '\0';
	fl = fl > n ? n : fl;
	fam = hx_map_find(c->map->fam, c->map->n_fam, lower, fl);
	if (fam == NULL) {
		/* p* and g* families are NVIDIA/AMD GPU instances on EC2; a new one is a
		 * map gap worth telling. (inf, trn, dl are not GPUs: R4.) */
		if (fl >= 2 && (lower[0] == 'p' || lower[0] == 'g') &&
		    ((lower[1] >= '0' && lower[1] <= '9') ||
		     (lower[0] == 'g' && lower[1] == 'r' && fl >= 3 && lower[2] >= '0' &&
		      lower[2] <= '9'))) {
			h->accel_like = true;
			memcpy(h->family, lower, fl);
			h->family[fl] = '\0';
		}
		return;
	}
	h->gpu = fam->gpu;
	h->factor = factor_of(c, hx_map_find(c->map->size, c->map->n_size, lower, n));
}

static void
azure_lookup(const hx_convert *c, const char *s, size_t len, struct gpu_hit *h)
{
	const hx_map_entry *e = hx_map_find(c->map->vm, c->map->n_vm, s, len);

	if (e == NULL) {
		/* The N series are Azure's GPU VMs. */
		if (len > 10 && strncasecmp(s, "Standard_N", 10) == 0) {
			size_t n = len > HX_BILL_NAME_MAX ? HX_BILL_NAME_MAX : len;
			h->accel_like = true;
			memcpy(h->family, s, n);
			h->family[n] = '\0';
		}
		return;
	}
	h->gpu = e->gpu;
	h->factor = factor_of(c, e);
}

/* F3 (a): SkuPriceDetails {"InstanceType": "..."}. */
static bool
skupd_instance(const char *s, size_t len, const char **v, size_t *vlen)
{
	const char *k = memmem(s, len, "\"InstanceType\"", 14);
	const char *end = s + len, *p;

	if (k == NULL) {
		return false;
	}
	p = k + 14;
	while (p < end && (*p == ' ' || *p == ':' || *p == '\t')) {
		p++;
	}
	if (p >= end || *p != '"') {
		return false;
	}
	*v = ++p;
	while (p < end && *p != '"') {
		p++;
	}
	*vlen = (size_t) (p - *v);
	return p<end && * vlen> 0;
}

static void
focus_instance(hx_convert *c, const char *prov, struct gpu_hit *h)
{
	const char *v;
	size_t      vlen;
	bool        aws = strcmp(prov, "aws") == 0, azure = strcmp(prov, "azure") == 0;
	bool        gcp = strcmp(prov, "gcp") == 0;

	h->gpu = -1;
	h->factor = 0;
	h->accel_like = false;
	/* (a) */
	if (!fnull(c, F_SKUPD)) {
		const char *s;
		size_t      len;
		s = fval(c, F_SKUPD, &len);
		if (skupd_instance(s, len, &v, &vlen)) {
			if (aws) {
				aws_lookup(c, v, vlen, h);
			} else if (azure) {
				azure_lookup(c, v, vlen, h);
			}
			/* Google bills the GPU as its own SKU, so a VM's machine type
			 * decides nothing there: fall through to (e). */
			if (!gcp) {
				return;
			}
		}
	}
	if (aws) {
		/* (b) x_UsageType after its last ':' */
		if (!fnull(c, F_USAGETYPE)) {
			const char *s = fval(c, F_USAGETYPE, &vlen), *colon = memrchr(s, ':', vlen);
			if (colon != NULL) {
				size_t n = vlen - (size_t) (colon + 1 - s);
				aws_lookup(c, colon + 1, n, h);
				return;
			}
		}
		/* (c) the first instance-type token of ChargeDescription */
		if (!fnull(c, F_DESC)) {
			const char *s = fval(c, F_DESC, &vlen), *end = s + vlen;
			while (s < end) {
				const char *t;
				while (s < end &&
				       (*s == ' ' || *s == '(' || *s == ',' || *s == ')' ||
				        *s == ';')) {
					s++;
				}
				t = s;
				while (s < end && *s != ' ' && *s != ',' && *s != ')' &&
				       *s != ';') {
					s++;
				}
				if (looks_like_instance(t, (size_t) (s - t))) {
					aws_lookup(c, t, (size_t) (s - t), h);
					return;
				}
			}
		}
		return;
	}
	if (azure && !fnull(c, F_DESC)) {
		/* (d) "<category> <series> - <meter> - <region>" -> Standard_<meter> */
		const char *s = fval(c, F_DESC, &vlen), *a, *b;
		char        size[HX_BILL_NAME_MAX + 1];
		size_t      n = 9;
		a = memmem(s, vlen, " - ", 3);
		if (a == NULL) {
			return;
		}
		a += 3;
		b = memmem(a, vlen - (size_t) (a - s), " - ", 3);
		if (b == NULL) {
			b = s + vlen;
		}
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a length, not a string */
		memcpy(size, "Standard_", 9);
		for (const char *p = a; p < b && n < HX_BILL_NAME_MAX; p++) {
			size[n] = *p;
			if (size[n] == ' ') {
				size[n] = '_';
			}
			n++;
		}
		azure_lookup(c, size, n, h);
		return;
	}
	if (gcp && !fnull(c, F_DESC)) {
		/* (e) the GPU SKU's description; a GPU SKU line is per GPU (G3) */
		const char *s = fval(c, F_DESC, &vlen);
		char        buf[512];
		size_t      n = vlen < sizeof(buf) - 1 ? vlen : sizeof(buf) - 1;
		memcpy(buf, s, n);
		buf[n] = '\0';
		for (size_t i = 0; i < c->map->n_sku; i++) {
			if (regexec(&c->map->sku[i].re, buf, 0, NULL, 0) == 0) {
				h->gpu = c->map->sku[i].gpu;
				h->factor = c->map->den_lcm;
				return;
			}
		}
		if (strcasestr(buf, "GPU") != NULL) {
			h->accel_like = true;
			n = n > HX_BILL_NAME_MAX ? HX_BILL_NAME_MAX : n;
			memcpy(h->family, buf, n);
			h->family[n] = '\0';
		}
	}
}

/* ---- one data row ---------------------------------------------------------------- */

/* Adds a counted line to its group (R1, G1, G4). hours == NULL: unknown. */
static void
count_line(hx_convert *c, int32_t day, int prov, const struct gpu_hit *h, const hx_wdec *cost,
           const hx_wdec *hours, bool seconds)
{
	struct group *g = group_get(c, day, prov, h->gpu);

	if (g == NULL) {
		return;
	}
	hx_wdec_add(&g->cost, cost);
	if (hours == NULL || h->factor == 0) {
		g->hours_unknown = true;
	} else {
		hx_wdec_add_mul(&g->hours, hours, seconds ? h->factor : h->factor * HOURS_SCALE);
	}
	g->lines++;
	c->report.lines_counted++;
}

static bool
unit_is(const char *s, size_t len, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strlen(*names) == len && strncasecmp(*names, s, len) == 0) {
			return true;
		}
	}
	return false;
}

static void
focus_row(hx_convert *c)
{
	static const char *const hour_units[] = { "hour", "hours", "hrs", "hr", NULL };
	static const char *const sec_units[] = { "second", "seconds", "sec", "secs", "s", NULL };
	int32_t                  day = 0, endday;
	char                     pkey[HX_BILL_NAME_MAX + 1];
	const char              *s;
	size_t                   len;
	int                      p;
	struct gpu_hit           h;
	hx_wdec                  cost, q;
	bool                     ok_start, have_hours = false, seconds = false;
	enum role                costcol = F_EFFECTIVE;

	ok_start = fdate(c, F_START, &day, true);
	(void) fdate(c, F_END, &endday, false);
	if (c->degraded || !ok_start) {
		return;
	}
	/* R3: ServiceProviderName (1.3) else ProviderName */
	if (!fnull(c, F_SPROVIDER)) {
		s = fval(c, F_SPROVIDER, &len);
	} else if (!fnull(c, F_PROVIDER)) {
		s = fval(c, F_PROVIDER, &len);
	} else {
		violation(c, c->row_line,
		          c->role_col[F_PROVIDER] ? c->role_col[F_PROVIDER]
		                                  : c->role_col[F_SPROVIDER],
		          "%s", "ProviderName is required");
		return;
	}
	if (len == c->last_prov_len && len <= sizeof(c->last_prov) &&
	    memcmp(s, c->last_prov, len) == 0) {
		/* the same provider text as the row before: most rows */
		p = c->last_prov_idx;
		memcpy(pkey, c->prov[p].name, sizeof(pkey));
	} else {
		provider_key(s, len, pkey);
		if ((p = provider_index(c, pkey)) < 0) {
			violation(c, c->row_line, 0, "more than %d providers in one export",
			          MAX_PROVIDERS);
			return;
		}
		if (len <= sizeof(c->last_prov)) {
			memcpy(c->last_prov, s, len);
			c->last_prov_len = len;
			c->last_prov_idx = p;
		}
	}
	window_extend(c, p, day); /* W1: every data row */

	/* F1 */
	if (!feq(c, F_CATEGORY, "Usage") || !(fnull(c, F_CLASS) || feq(c, F_CLASS, "Correction"))) {
		c->report.excluded[HX_EXCL_CHARGE_CATEGORY]++;
		return;
	}
	/* F2 */
	if (feq(c, F_CDSTATUS, "Unused")) {
		c->report.excluded[HX_EXCL_UNUSED_COMMITMENT]++;
		return;
	}
	/* F3, R4 */
	focus_instance(c, pkey, &h);
	/* R5: which column holds the USD amount */
	if (!feq(c, F_CURRENCY, "USD") && (h.gpu >= 0 || h.accel_like)) {
		if (!fnull(c, F_EFF_USD)) {
			costcol = F_EFF_USD;
		} else if (h.gpu >= 0) {
			s = fval(c, F_CURRENCY, &len);
			violation(c, c->row_line, c->role_col[F_CURRENCY],
			          "BillingCurrency %.*s on a GPU line and no x_EffectiveCostInUsd",
			          (int) (len > 8 ? 8 : len), s);
			return;
		} else {
			costcol = ROLE_N; /* reported without a cost */
		}
	}
	if (h.gpu < 0) {
		c->report.excluded[HX_EXCL_NOT_GPU]++;
		if (h.accel_like) {
			bool have = costcol != ROLE_N && !fnull(c, costcol) &&
			    hx_wdec_parse(c->f[costcol].p, c->f[costcol].len, &cost) == NULL;
			unknown_add(c, p, h.family, strlen(h.family), have ? &cost : NULL);
		}
		return;
	}
	/* F4 */
	if (!fnum(c, costcol, &cost)) {
		return;
	}
	/* G2 */
	if (!fnull(c, F_CQTY) && !fnull(c, F_CUNIT)) {
		s = fval(c, F_CUNIT, &len);
		if (unit_is(s, len, hour_units)) {
			have_hours = true;
		} else if (unit_is(s, len, sec_units)) {
			have_hours = seconds = true;
		}
		if (have_hours && !fnum(c, F_CQTY, &q)) {
			return;
		}
	}
	count_line(c, day, p, &h, &cost, have_hours ? &q : NULL, seconds);
}

static void
cur_row(hx_convert *c)
{
	int32_t        day = 0;
	const char    *s, *colon;
	size_t         len;
	struct gpu_hit h;
	hx_wdec        cost, q;
	enum role      costcol;
	bool           have_hours = false;
	int            p;

	if (!fdate(c, C_START, &day, true) || c->degraded) {
		return;
	}
	p = provider_index(c, "aws"); /* R3 */
	window_extend(c, p, day);
	/* A1 */
	if (!feq(c, C_PRODUCT, "AmazonEC2")) {
		c->report.excluded[HX_EXCL_NOT_COMPUTE]++;
		return;
	}
	/* A2, A4 (A5: everything else) */
	if (feq(c, C_LTYPE, "Usage") || feq(c, C_LTYPE, "Refund")) {
		costcol = C_UNBLENDED;
	} else if (feq(c, C_LTYPE, "DiscountedUsage")) {
		costcol = C_RI_EFF;
	} else if (feq(c, C_LTYPE, "SavingsPlanCoveredUsage")) {
		costcol = C_SP_EFF;
	} else {
		c->report.excluded[HX_EXCL_LINE_TYPE]++;
		return;
	}
	/* A3 */
	h.gpu = -1;
	h.factor = 0;
	h.accel_like = false;
	s = fval(c, C_UTYPE, &len);
	colon = fnull(c, C_UTYPE) ? NULL : memrchr(s, ':', len);
	if (colon != NULL) {
		aws_lookup(c, colon + 1, len - (size_t) (colon + 1 - s), &h);
	} else if (!fnull(c, C_ITYPE)) {
		s = fval(c, C_ITYPE, &len);
		aws_lookup(c, s, len, &h);
	}
	if (h.gpu < 0) {
		c->report.excluded[HX_EXCL_NOT_GPU]++;
		if (h.accel_like) {
			bool have = c->role_col[costcol] != 0 && !fnull(c, costcol) &&
			    hx_wdec_parse(c->f[costcol].p, c->f[costcol].len, &cost) == NULL;
			unknown_add(c, p, h.family, strlen(h.family), have ? &cost : NULL);
		}
		return;
	}
	/* R5 */
	if (!feq(c, C_CURRENCY, "USD")) {
		s = fval(c, C_CURRENCY, &len);
		violation(c, c->row_line, c->role_col[C_CURRENCY],
		          "%s %.*s on a GPU line: only USD is converted", colname_of(c, C_CURRENCY),
		          (int) (len > 8 ? 8 : len), s);
		return;
	}
	if (c->role_col[costcol] == 0) {
		violation(c, c->row_line, 0, "column %s is needed for this line type",
		          colname_of(c, costcol));
		return;
	}
	if (!fnum(c, costcol, &cost)) {
		return;
	}
	/* G2 */
	if (c->role_col[C_PUNIT] != 0 && (feq(c, C_PUNIT, "Hrs") || feq(c, C_PUNIT, "hours"))) {
		have_hours = true;
	} else {
		s = fval(c, C_UTYPE, &len);
		have_hours = memmem(s, len, "BoxUsage", 8) || memmem(s, len, "SpotUsage", 9) ||
		    memmem(s, len, "DedicatedUsage", 14) || memmem(s, len, "HostUsage", 9);
	}
	if (have_hours && !fnull(c, C_AMOUNT)) {
		if (!fnum(c, C_AMOUNT, &q)) {
			return;
		}
	} else {
		have_hours = false;
	}
	count_line(c, day, p, &h, &cost, have_hours ? &q : NULL, false);
}

/* ---- header ------------------------------------------------------------------------ */

static bool
hdr_has(const hx_convert *c, const char *name)
{
	for (size_t i = 0; i < c->n_hdr; i++) {
		if (strcasecmp(c->hdr[i], name) == 0) {
			return true;
		}
	}
	return false;
}

static bool
hdr_has_prefix(const hx_convert *c, const char *prefix)
{
	for (size_t i = 0; i < c->n_hdr; i++) {
		if (strncmp(c->hdr[i], prefix, strlen(prefix)) == 0) {
			return true;
		}
	}
	return false;
}

static const char *
focus_version(const hx_convert *c)
{
	if (hdr_has(c, "ServiceProviderName") || hdr_has(c, "HostProviderName")) {
		return "focus-1.3";
	}
	if (hdr_has(c, "InvoiceId") || hdr_has(c, "PricingCurrency") ||
	    hdr_has(c, "BillingAccountType") || hdr_has(c, "SubAccountType")) {
		return "focus-1.2";
	}
	if (hdr_has(c, "SkuPriceDetails") || hdr_has(c, "ServiceSubcategory") ||
	    hdr_has(c, "CapacityReservationId") || hdr_has(c, "CommitmentDiscountQuantity") ||
	    hdr_has(c, "SkuMeter")) {
		return "focus-1.1";
	}
	return "focus-1.0";
}

static void
header_row(hx_convert *c)
{
	enum kind k = K_NONE;

	if (hdr_has(c, "ChargePeriodStart")) {
		k = K_FOCUS;
	} else if (hdr_has_prefix(c, "lineItem/")) {
		k = K_CUR_LEGACY;
	} else if (hdr_has_prefix(c, "line_item_")) {
		k = K_CUR2;
	}
	if ((c->want == HX_BILL_FOCUS && k != K_FOCUS) ||
	    (c->want == HX_BILL_AWS_CUR && k != K_CUR_LEGACY && k != K_CUR2) || k == K_NONE) {
		violation(
		    c, 1, 0, "%s",
		    c->want == HX_BILL_FOCUS ? "is not a FOCUS file: expected a CSV header with "
		                               "ChargePeriodStart, ChargeCategory, EffectiveCost"
		        : c->want == HX_BILL_AWS_CUR
		        ? "is not an AWS CUR file: expected a CSV header with lineItem/... "
		          "(legacy) or line_item_... (CUR 2.0) columns"
		        : "is neither FOCUS nor AWS CUR: expected a CSV header with "
		          "ChargePeriodStart (FOCUS) or lineItem/... / line_item_... (AWS CUR)");
		c->fkind = K_NONE;
		c->degraded = true;
		return;
	}
	c->fkind = k;
	if (c->kind == K_NONE) {
		c->kind = k;
		snprintf(c->format_name, sizeof(c->format_name), "%s",
		         k == K_FOCUS      ? focus_version(c)
		             : k == K_CUR2 ? "aws-cur-2.0"
		                           : "aws-cur-legacy");
	} else if ((c->kind == K_FOCUS) != (k == K_FOCUS)) {
		violation(
		    c, 1, 0, "is %s but the export's first file is %s: one export, one format",
		    k == K_FOCUS ? "FOCUS" : "AWS CUR", c->kind == K_FOCUS ? "FOCUS" : "AWS CUR");
		c->degraded = true;
	}
	c->ncols = c->n_hdr;
	c->col_role = malloc((c->ncols ? c->ncols : 1) * sizeof(*c->col_role));
	if (c->col_role == NULL) {
		c->oom = true;
		return;
	}
	memset(c->role_col, 0, sizeof(c->role_col));
	for (size_t i = 0; i < c->ncols; i++) {
		c->col_role[i] = -1;
		for (size_t j = 0; j < sizeof(colnames) / sizeof(colnames[0]); j++) {
			const char *n = k == K_FOCUS ? colnames[j].focus
			    : k == K_CUR_LEGACY      ? colnames[j].legacy
			                             : colnames[j].cur2;
			if (n != NULL && strcasecmp(n, c->hdr[i]) == 0 &&
			    c->role_col[colnames[j].role] == 0) {
				c->col_role[i] = (int16_t) colnames[j].role;
				c->role_col[colnames[j].role] = (int) i + 1;
			}
		}
	}
	for (size_t j = 0; j < sizeof(colnames) / sizeof(colnames[0]); j++) {
		const char *n = k == K_FOCUS ? colnames[j].focus
		    : k == K_CUR_LEGACY      ? colnames[j].legacy
		                             : colnames[j].cur2;
		if (n != NULL && colnames[j].required && c->role_col[colnames[j].role] == 0) {
			violation(c, 1, 0, "missing required column %s", n);
			c->degraded = true;
		}
	}
	if (k == K_FOCUS && c->role_col[F_PROVIDER] == 0 && c->role_col[F_SPROVIDER] == 0) {
		violation(c, 1, 0, "%s",
		          "missing required column ProviderName (or ServiceProviderName)");
		c->degraded = true;
	}
}

/* ---- libcsv callbacks ------------------------------------------------------------------ */

static void
on_field(void *s, size_t len, void *arg)
{
	hx_convert *c = arg;
	size_t      i = c->nf++;

	if (!c->header_done) {
		char *copy;
		if (c->n_hdr == c->cap_hdr) {
			size_t ncap = c->cap_hdr ? c->cap_hdr * 2 : 64;
			char **t = realloc(c->hdr, ncap * sizeof(*t));
			if (t == NULL) {
				c->oom = true;
				return;
			}
			c->hdr = t;
			c->cap_hdr = ncap;
		}
		/* A UTF-8 BOM before the first name was dropped already. */
		/* libcsv's field is len bytes, not a C string: no strndup(). */
		copy = malloc(len + 1);
		if (copy == NULL) {
			c->oom = true;
			return;
		}
		if (len > 0) {
			memcpy(copy, s, len);
		}
		copy[len] = '\0';
		c->hdr[c->n_hdr++] = copy;
		return;
	}
	if (i < c->ncols && c->col_role[i] >= 0) {
		struct field *f = &c->f[c->col_role[i]];
		if (c->arena_len + len + 1 > c->arena_cap) {
			size_t ncap = (c->arena_len + len + 1) * 2;
			char  *t = realloc(c->arena, ncap);
			if (t == NULL) {
				c->oom = true;
				return;
			}
			c->arena = t;
			c->arena_cap = ncap;
		}
		if (len > 0) {
			memcpy(c->arena + c->arena_len, s, len);
		}
		c->arena[c->arena_len + len] = '\0';
		f->off = c->arena_len;
		f->len = len;
		f->present = true;
		f->in_arena = true;
		c->arena_len += len + 1;
	}
}

static void
row_reset(hx_convert *c)
{
	c->nf = 0;
	c->arena_len = 0;
	for (int r = 0; r < ROLE_N; r++) {
		c->f[r].p = "";
		c->f[r].present = false;
		c->f[r].in_arena = false;
		c->f[r].len = 0;
		c->f[r].off = 0;
	}
	if (c->arena == NULL) {
		c->arena = malloc(4096);
		c->arena_cap = c->arena != NULL ? 4096 : 0;
		c->oom |= c->arena == NULL;
	}
	if (c->arena != NULL) {
		c->arena[0] = '\0';
	}
}

/* One data row whose fields are in c->f. */
static void
data_row(hx_convert *c)
{
	c->report.lines_read++;
	c->file_rows++;
	if (c->nf != c->ncols && c->fkind != K_NONE) {
		violation(c, c->row_line, 0, "has %zu fields, the header has %zu", c->nf, c->ncols);
	} else if (c->fkind == K_FOCUS) {
		focus_row(c);
	} else if (c->fkind != K_NONE) {
		cur_row(c);
	}
}

static void
on_row(int term, void *arg)
{
	hx_convert *c = arg;

	c->row_ended_here = true;
	if (!c->header_done) {
		c->header_done = true;
		header_row(c);
	} else {
		for (int r = 0; r < ROLE_N; r++) {
			if (c->f[r].in_arena) {
				c->f[r].p = c->arena + c->f[r].off;
			}
		}
		data_row(c);
	}
	row_reset(c);
}

/* The first ',', '"' or '\r' in [p, end), or end: eight bytes a step (the
 * lowest byte flagged by the zero-byte test is always a true match). */
static const char *
next_special(const char *p, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;

	while (end - p >= 8) {
		uint64_t v, a, b, d, t;
		memcpy(&v, p, 8);
		a = v ^ (ones * ',');
		b = v ^ (ones * '"');
		d = v ^ (ones * '\r');
		t = (((a - ones) & ~a) | ((b - ones) & ~b) | ((d - ones) & ~d)) & high;
		if (t != 0) {
			return p + (__builtin_ctzll(t) >> 3);
		}
		p += 8;
	}
#endif
	while (p < end && *p != ',' && *p != '"' && *p != '\r') {
		p++;
	}
	return p;
}

/*
 * The fast path for the common line: one whole row on one physical line,
 * every quoted field closed on it. libcsv reads a byte at a time through
 * function pointers and copies every field into its own buffer; that was
 * 76% of the CPU time of a convert (perf, 100 MB of the bench's CUR file),
 * about 200 MB/s a core. Here the line is split in place, with libcsv's
 * CSV_STRICT rules: spaces and tabs around an unquoted field and between a
 * closing quote and the next comma are dropped, "" inside quotes is one
 * quote, "\r\n" ends a line as "\n" does, a blank line is no row. Anything
 * else (a quote inside an unquoted field, text after a closing quote, a lone
 * '\r', a quoted field going on to the next line) returns false having
 * changed nothing that row_reset() does not undo, and libcsv reads the line
 * as before, so its errors, with their positions, are libcsv's own.
 * `s` .. `end` is the line without its '\n'.
 */
static bool
fast_row(hx_convert *c, const char *s, const char *end)
{
	const char *p = s;
	size_t      nf = 0;

	if (end > s && end[-1] == '\r') {
		end--;
	}
	while (p < end && (*p == ' ' || *p == '\t')) {
		p++;
	}
	if (p == end) {
		return true; /* blank: libcsv reports no row either */
	}
	for (;;) {
		const char *fs, *fe;
		bool        esc = false;

		while (p < end && (*p == ' ' || *p == '\t')) {
			p++;
		}
		if (p < end && *p == '"') {
			fs = ++p;
			for (;;) {
				const char *q = memchr(p, '"', (size_t) (end - p));
				if (q == NULL) {
					goto slow; /* closes on a later line */
				}
				if (q + 1 < end && q[1] == '"') {
					esc = true;
					p = q + 2;
					continue;
				}
				fe = q;
				p = q + 1;
				break;
			}
			while (p < end && (*p == ' ' || *p == '\t')) {
				p++;
			}
			if (p < end && *p != ',') {
				goto slow; /* text after the closing quote */
			}
		} else {
			fs = p;
			p = next_special(p, end);
			if (p < end && *p != ',') {
				goto slow; /* a quote inside an unquoted field, or a lone '\r' */
			}
			fe = p;
			while (fe > fs && (fe[-1] == ' ' || fe[-1] == '\t')) {
				fe--;
			}
		}
		if (nf < c->ncols && c->col_role[nf] >= 0) {
			struct field *f = &c->f[c->col_role[nf]];
			size_t        len = (size_t) (fe - fs);
			if (!esc) {
				f->p = fs;
				f->len = len;
			} else {
				/* "" -> ": the only case that needs a copy */
				char *o;
				if (c->arena_len + len + 1 > c->arena_cap) {
					size_t ncap = (c->arena_len + len + 1) * 2;
					char  *t = realloc(c->arena, ncap);
					if (t == NULL) {
						c->oom = true;
						return true;
					}
					c->arena = t;
					c->arena_cap = ncap;
				}
				f->off = c->arena_len;
				o = c->arena + f->off;
				for (const char *q = fs; q < fe; q++) {
					*o++ = *q;
					q += *q == '"';
				}
				*o = '\0';
				f->len = (size_t) (o - (c->arena + f->off));
				f->in_arena = true;
				c->arena_len += f->len + 1;
			}
			f->present = true;
		}
		nf++;
		if (p >= end) {
			break;
		}
		p++; /* the comma */
	}
	c->nf = nf;
	for (int r = 0; r < ROLE_N; r++) {
		if (c->f[r].in_arena) {
			c->f[r].p = c->arena + c->f[r].off;
		}
	}
	data_row(c);
	row_reset(c);
	return true;
slow:
	row_reset(c);
	return false;
}

/* ---- feeding ------------------------------------------------------------------------------ */

static void
csv_restart(hx_convert *c)
{
	if (c->csv_live) {
		csv_free(&c->csv);
	}
	c->csv_live = csv_init(&c->csv, CSV_STRICT | CSV_STRICT_FINI) == 0;
	if (c->csv_live) {
		/* libcsv grows a field's buffer by this much at a time (128 bytes by
		 * default: a quoted field of megabytes is then thousands of reallocs) */
		csv_set_blk_size(&c->csv, 64u << 10);
	}
	c->oom |= !c->csv_live;
	row_reset(c);
	c->at_row_start = true;
	c->row_bytes = 0;
}

hx_status
hx_convert_begin(hx_convert *c, const char *name)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
	for (size_t i = 0; i < c->n_hdr; i++) {
		free(c->hdr[i]);
	}
	c->n_hdr = 0;
	free(c->col_role);
	c->col_role = NULL;
	c->ncols = 0;
	c->fkind = K_NONE;
	c->header_done = false;
	c->degraded = false;
	c->line = 1;
	c->row_line = 1;
	c->row_ended_here = false;
	c->mid_line = false;
	c->skip_line = false;
	c->file_rows = 0;
	c->bom_seen = 0;
	c->any_byte = false;
	c->file_bytes = 0;
	c->report.files++;
	csv_restart(c);
	return c->oom ? HX_RESOURCE_EXHAUSTED : HX_OK;
}

/* libcsv holds nothing of a row: its state (public in struct csv_parser) is
 * 0, ROW_NOT_BEGUN in libcsv.c. */
static bool
csv_idle(const hx_convert *c)
{
	return c->csv_live && c->csv.pstate == 0;
}

/* One physical line (or the start of one); `complete` when it ends in '\n'. */
static void
feed_line(hx_convert *c, const char *s, size_t n, bool complete)
{
	if (c->skip_line) {
		if (complete) {
			c->skip_line = false;
			c->line++;
			c->mid_line = false;
		}
		return;
	}
	if (!c->mid_line) {
		if (c->at_row_start) {
			c->row_line = c->line;
			c->row_bytes = 0;
			if (complete && c->header_done && csv_idle(c) &&
			    fast_row(c, s, s + n - 1)) {
				c->line++;
				return;
			}
		}
		c->row_ended_here = false;
	}
	c->row_bytes += n;
	if (csv_parse(&c->csv, s, n, on_field, on_row, c) != n) {
		if (csv_error(&c->csv) == CSV_EPARSE) {
			violation(
			    c, c->row_line, (int) c->nf + 1, "%s",
			    "malformed CSV: a quote inside an unquoted field, or text after a "
			    "closing quote");
		} else {
			c->oom = true;
		}
		/* Start over on the next line, to find the problems after this one. */
		csv_restart(c);
		if (complete) {
			c->line++;
			c->mid_line = false;
		} else {
			c->skip_line = true;
		}
		return;
	}
	if (!c->row_ended_here && c->row_bytes > MAX_ROW_BYTES) {
		violation(c, c->row_line, (int) c->nf + 1,
		          "a quoted field is not closed within %u MiB", MAX_ROW_BYTES >> 20);
		csv_restart(c);
	}
	if (complete) {
		/* not "a row ended on this line": after "a,b\r\"c" one did, and
		 * another, quoted, goes on */
		c->at_row_start = csv_idle(c);
		c->line++;
		c->mid_line = false;
	} else {
		c->mid_line = true;
	}
}

hx_status
hx_convert_feed(hx_convert *c, const void *buf, size_t len)
{
	const char *s = buf, *end = s + len;

	if (len > 0) {
		c->any_byte = true;
	}
	/* A UTF-8 BOM (EF BB BF) may open the file; it is not part of the first name. */
	while (c->bom_seen < 3 && s < end && c->line == 1 && !c->mid_line) {
		static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
		if ((unsigned char) *s != bom[c->bom_seen]) {
			if (c->bom_seen > 0) {
				/* A partial BOM: give its bytes back to the parser. */
				feed_line(c, (const char *) bom, c->bom_seen, false);
			}
			c->bom_seen = 3;
			break;
		}
		c->bom_seen++;
		s++;
	}
	while (s < end && !c->oom) {
		const char *nl = memchr(s, '\n', (size_t) (end - s));
		if (nl == NULL) {
			feed_line(c, s, (size_t) (end - s), false);
			break;
		}
		feed_line(c, s, (size_t) (nl + 1 - s), true);
		s = nl + 1;
	}
	return c->oom ? HX_RESOURCE_EXHAUSTED : HX_OK;
}

hx_status
hx_convert_end(hx_convert *c)
{
	int rc = csv_fini(&c->csv, on_field, on_row, c);

	if (rc != 0 && csv_error(&c->csv) == CSV_EPARSE) {
		violation(c, c->row_line, (int) c->nf + 1, "%s",
		          "unterminated quoted field at the end of the file");
	}
	if (!c->any_byte || (!c->header_done && c->n_hdr == 0)) {
		violation(c, 0, 0, "%s",
		          "is empty: expected a FOCUS or AWS CUR CSV header and data rows");
	} else if (c->header_done && c->file_rows == 0 && c->fkind != K_NONE) {
		violation(c, 1, 0, "%s", "has a header but no data rows");
	}
	csv_free(&c->csv);
	c->csv_live = false;
	return c->oom ? HX_RESOURCE_EXHAUSTED : HX_OK;
}

/* ---- gzip: inflate on one core, parse on the other ---------------------------------- */

/*
 * Decompression and CSV splitting each take about as long; run back to back
 * they cost their sum. A second thread inflates into one buffer while this one
 * parses the other, so a .gz costs about the slower of the two.
 */
struct gz_slot {
	char    *buf;
	int      len; /* gzread's answer: > 0 bytes, 0 end, < 0 error */
	uint64_t offset;
	bool     full;
};

struct gz_pipe_st {
	gzFile          gz;
	struct gz_slot  slot[2];
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop;
};

static void *
gz_producer(void *arg)
{
	struct gz_pipe_st *g = arg;

	for (int i = 0;; i ^= 1) {
		struct gz_slot *s = &g->slot[i];
		int             n;
		pthread_mutex_lock(&g->mu);
		while (s->full && !g->stop) {
			pthread_cond_wait(&g->cv, &g->mu);
		}
		if (g->stop) {
			pthread_mutex_unlock(&g->mu);
			return NULL;
		}
		pthread_mutex_unlock(&g->mu);
		n = gzread(g->gz, s->buf, READ_CHUNK);
		pthread_mutex_lock(&g->mu);
		s->len = n;
		s->offset = (uint64_t) gzoffset(g->gz);
		s->full = true;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		if (n <= 0) {
			return NULL;
		}
	}
}

/* Feeds the whole stream; returns the last gzread answer (0 = clean end). */
static int
gz_pipe(hx_convert *c, gzFile gz, char *buf)
{
	struct gz_pipe_st g;
	pthread_t         t;
	int               last = 0;

	memset(&g, 0, sizeof(g));
	g.gz = gz;
	g.slot[0].buf = buf;
	g.slot[1].buf = malloc(READ_CHUNK);
	if (g.slot[1].buf == NULL || pthread_mutex_init(&g.mu, NULL) != 0) {
		free(g.slot[1].buf);
		c->oom = true;
		return -1;
	}
	pthread_cond_init(&g.cv, NULL);
	if (pthread_create(&t, NULL, gz_producer, &g) != 0) {
		/* one thread, then */
		while ((last = gzread(gz, buf, READ_CHUNK)) > 0 && !c->oom) {
			hx_convert_feed(c, buf, (size_t) last);
		}
	} else {
		for (int i = 0;; i ^= 1) {
			struct gz_slot *s = &g.slot[i];
			pthread_mutex_lock(&g.mu);
			while (!s->full) {
				pthread_cond_wait(&g.cv, &g.mu);
			}
			pthread_mutex_unlock(&g.mu);
			last = s->len;
			if (last <= 0 || c->oom) {
				break;
			}
			hx_convert_feed(c, s->buf, (size_t) s->len);
			c->file_bytes = s->offset;
			if (c->progress != NULL) {
				c->progress(c->progress_arg, c->name, c->file_bytes, c->file_total,
				            c->report.lines_read);
			}
			pthread_mutex_lock(&g.mu);
			s->full = false;
			pthread_cond_broadcast(&g.cv);
			pthread_mutex_unlock(&g.mu);
		}
		pthread_mutex_lock(&g.mu);
		g.stop = true;
		pthread_cond_broadcast(&g.cv);
		pthread_mutex_unlock(&g.mu);
		pthread_join(t, NULL);
	}
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
	free(g.slot[1].buf);
	return last;
}

/* ---- two cores on one plain file ---------------------------------------------------- */

/*
 * A plain file of PAR_MIN bytes or more is read by two threads: this one
 * takes [0, split), a second converter takes the header plus [split, end),
 * where split follows a '\n' near the middle. A '\n' there may be inside a
 * quoted field; that is known only when this thread reaches split: if its
 * parser is not at a row start then, or the second half found any problem
 * (its line numbers are relative), the second half's result is dropped and
 * this thread reads on past split itself. So the answer never depends on the
 * split, only the time does.
 */
#define PAR_MIN (32u << 20)

struct par_job {
	hx_convert      *w;
	hx_violations    viol;
	int              fd;
	uint64_t         from, to;
	const char      *header;
	size_t           header_len;
	_Atomic uint64_t done; /* bytes of the range read so far */
	bool             ok;
};

static bool
feed_range(hx_convert *c, int fd, uint64_t from, uint64_t to, char *buf, _Atomic uint64_t *done)
{
	while (from < to && !c->oom) {
		/* The second half (done != NULL) is dropped once it finds a problem
		 * (see par_read()), so it stops there: a split inside a quoted field
		 * would otherwise read the rest of the file as garbage. */
		if (done != NULL && c->viol->total > c->viol_at_start) {
			return false;
		}
		size_t  want = to - from < READ_CHUNK ? (size_t) (to - from) : READ_CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t) from);
		if (got <= 0) {
			return false;
		}
		hx_convert_feed(c, buf, (size_t) got);
		from += (uint64_t) got;
		if (done != NULL) {
			atomic_fetch_add(done, (uint64_t) got);
		}
	}
	return true;
}

static void *
par_worker(void *arg)
{
	struct par_job *j = arg;
	char           *buf = malloc(READ_CHUNK);

	j->ok = false;
	if (buf != NULL && hx_convert_begin(j->w, "part") == HX_OK &&
	    hx_convert_feed(j->w, j->header, j->header_len) == HX_OK &&
	    feed_range(j->w, j->fd, j->from, j->to, buf, &j->done) && !j->w->oom) {
		if (j->w->mid_line) {
			hx_convert_feed(j->w, "\n", 1); /* the file's last line has no '\n' */
		}
		/* no csv_fini here: the main thread decides whether this half counts */
		j->ok = j->w->header_done && !j->w->mid_line && j->w->at_row_start;
	}
	free(buf);
	return NULL;
}

/* Adds the second half's groups, windows, unknown families and counts. */
static void
par_merge(hx_convert *c, hx_convert *w)
{
	for (size_t i = 0; i < w->cap_groups; i++) {
		struct group *g = &w->groups[i], *m;
		int           p;
		if (g->key == 0) {
			continue;
		}
		p = provider_index(c, w->prov[g->prov].name);
		if (p < 0 || (m = group_get(c, g->day, p, g->gpu)) == NULL) {
			c->oom = true;
			return;
		}
		hx_wdec_add(&m->cost, &g->cost);
		hx_wdec_add(&m->hours, &g->hours);
		m->hours_unknown |= g->hours_unknown;
		m->lines += g->lines;
	}
	for (int i = 0; i < w->n_prov; i++) {
		int p = provider_index(c, w->prov[i].name);
		if (p < 0) {
			c->oom = true;
			return;
		}
		if (w->prov[i].seen) {
			window_extend(c, p, w->prov[i].min_day);
			window_extend(c, p, w->prov[i].max_day);
		}
	}
	for (size_t i = 0; i < w->n_unk; i++) {
		int p = provider_index(c, w->prov[w->unk[i].prov].name);
		unknown_add(c, p, w->unk[i].family, strlen(w->unk[i].family), &w->unk[i].cost);
		/* unknown_add counted one line; the rest of them: */
		for (size_t k = 0; k < c->n_unk; k++) {
			if (c->unk[k].prov == p &&
			    strcmp(c->unk[k].family, w->unk[i].family) == 0) {
				c->unk[k].lines += w->unk[i].lines - 1;
			}
		}
	}
	c->report.lines_read += w->report.lines_read;
	c->report.lines_counted += w->report.lines_counted;
	c->file_rows += w->file_rows;
	for (int e = 0; e < HX_EXCL__COUNT; e++) {
		c->report.excluded[e] += w->report.excluded[e];
	}
}

/* The header line and a split point; false when the file does not suit. */
static bool
par_plan(int fd, uint64_t size, char **header, size_t *hlen, uint64_t *split)
{
	char   *buf = malloc(65536);
	ssize_t got;
	char   *nl;
	size_t  quotes = 0;

	if (buf == NULL || (got = pread(fd, buf, 65536, 0)) <= 0 ||
	    (nl = memchr(buf, '\n', (size_t) got)) == NULL) {
		free(buf);
		return false;
	}
	*hlen = (size_t) (nl + 1 - buf);
	for (size_t i = 0; i < *hlen; i++) {
		quotes += buf[i] == '"';
	}
	if (quotes % 2 != 0) { /* a header with a newline in a name: read it plainly */
		free(buf);
		return false;
	}
	*header = buf;
	for (uint64_t at = size / 2; at < size;) {
		char b[4096];
		got = pread(fd, b, sizeof(b), (off_t) at);
		if (got <= 0) {
			break;
		}
		if ((nl = memchr(b, '\n', (size_t) got)) != NULL) {
			*split = at + (uint64_t) (nl - b) + 1;
			return *split < size;
		}
		at += (uint64_t) got;
	}
	free(buf);
	*header = NULL;
	return false;
}

static bool
par_read(hx_convert *c, int fd, uint64_t size, char *buf)
{
	struct par_job j;
	pthread_t      t;
	char          *header = NULL;
	uint64_t       split = 0;
	bool           counted;

	memset(&j, 0, sizeof(j));
	if (size < PAR_MIN || c->n_threads < 2 ||
	    !par_plan(fd, size, &header, &j.header_len, &split)) {
		return false;
	}
	hx_violations_init(&j.viol, 1);
	j.w = hx_convert_new(c->map, c->want, &j.viol);
	j.fd = fd;
	j.from = split;
	j.to = size;
	j.header = header;
	atomic_init(&j.done, 0);
	if (j.w == NULL || pthread_create(&t, NULL, par_worker, &j) != 0) {
		hx_convert_free(j.w);
		hx_violations_free(&j.viol);
		free(header);
		return false;
	}
	{
		uint64_t from = 0;
		while (from < split && !c->oom) {
			size_t want =
			    split - from < READ_CHUNK ? (size_t) (split - from) : READ_CHUNK;
			ssize_t got = pread(fd, buf, want, (off_t) from);
			if (got <= 0) {
				break;
			}
			hx_convert_feed(c, buf, (size_t) got);
			from += (uint64_t) got;
			c->file_bytes = from + atomic_load(&j.done);
			if (c->progress != NULL) {
				c->progress(c->progress_arg, c->name, c->file_bytes, c->file_total,
				            c->report.lines_read + j.w->report.lines_read);
			}
		}
	}
	pthread_join(t, NULL);
	counted = j.ok && j.viol.total == 0 && c->at_row_start && csv_idle(c) && !c->mid_line &&
	    !c->skip_line && c->header_done && j.w->ncols == c->ncols && j.w->fkind == c->fkind;
	if (counted) {
		par_merge(c, j.w);
		c->line += j.w->line - 2; /* the second half's lines, header excluded */
	} else {
		/* read on past split here, with true line numbers */
		feed_range(c, fd, split, size, buf, NULL);
	}
	c->file_bytes = size;
	hx_convert_free(j.w);
	hx_violations_free(&j.viol);
	free(header);
	return true;
}

hx_status
hx_convert_add_file(hx_convert *c, const char *path, const char *name)
{
	int           fd = open(path, O_RDONLY);
	unsigned char magic[2];
	ssize_t       n;
	char         *buf;
	struct stat   sb;
	hx_status     st;

	name = name != NULL ? name : path;
	if ((st = hx_convert_begin(c, name)) != HX_OK) {
		if (fd >= 0) {
			close(fd);
		}
		return st;
	}
	if (fd < 0) {
		violation(c, 0, 0, "cannot be read: %s", strerror(errno));
		c->any_byte = true; /* not "empty" too */
		csv_free(&c->csv);
		c->csv_live = false;
		return HX_OK;
	}
	c->file_total = fstat(fd, &sb) == 0 ? (uint64_t) sb.st_size : 0;
	buf = malloc(READ_CHUNK);
	if (buf == NULL) {
		close(fd);
		return HX_RESOURCE_EXHAUSTED;
	}
	n = pread(fd, magic, 2, 0);
	if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		/* gzip, by its magic bytes (not the file name) */
		gzFile gz = gzdopen(fd, "rb");
		int    got;
		if (gz == NULL) {
			free(buf);
			close(fd);
			return HX_RESOURCE_EXHAUSTED;
		}
		gzbuffer(gz, 256 * 1024);
		got = gz_pipe(c, gz, buf);
		{
			int         err = Z_OK;
			const char *msg = gzerror(gz, &err);
			if (got >= 0 && err == Z_OK && gzeof(gz)) {
				msg = NULL;
			}
			if (msg != NULL) {
				violation(c, c->line, 0,
				          "the gzip stream is broken (%s): the file is truncated "
				          "or corrupt",
				          *msg ? msg : "read error");
			}
		}
		c->file_bytes = c->file_total;
		gzclose(gz);
	} else if (par_read(c, fd, c->file_total, buf)) {
		close(fd);
	} else {
		ssize_t got;
		while ((got = read(fd, buf, READ_CHUNK)) > 0 && !c->oom) {
			hx_convert_feed(c, buf, (size_t) got);
			c->file_bytes += (uint64_t) got;
			if (c->progress != NULL) {
				c->progress(c->progress_arg, c->name, c->file_bytes, c->file_total,
				            c->report.lines_read);
			}
		}
		if (got < 0) {
			violation(c, c->line, 0, "read error: %s", strerror(errno));
		}
		close(fd);
	}
	free(buf);
	c->report.bytes_read += c->file_bytes;
	return hx_convert_end(c);
}

/* ---- the export's result ------------------------------------------------------------------- */

hx_convert *
hx_convert_new(const hx_gpu_map *map, hx_bill_format fmt, hx_violations *viol)
{
	hx_convert *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	c->map = map;
	c->want = fmt;
	c->viol = viol;
	c->viol_at_start = viol->total;
	c->n_threads = 2;
	c->last_prov_len = SIZE_MAX;
	return c;
}

void
hx_convert_set_threads(hx_convert *c, int n)
{
	c->n_threads = n < 1 ? 1 : n > 2 ? 2 : n;
}

void
hx_convert_set_progress(hx_convert *c, hx_convert_progress_fn fn, void *arg)
{
	c->progress = fn;
	c->progress_arg = arg;
}

static int
cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	return x->day != y->day ? (x->day < y->day ? -1 : 1) : 0;
}

static int
cmp_rec(const void *a, const void *b)
{
	const hx_bill_record *x = a, *y = b;
	int                   r = strcmp(x->date, y->date);
	if (r == 0) {
		r = strcmp(x->provider, y->provider);
	}
	return r != 0 ? r : strcmp(x->gpu_type, y->gpu_type);
}

static int
cmp_dropped(const void *a, const void *b)
{
	const hx_bill_dropped *x = a, *y = b;
	int                    r = strcmp(x->date, y->date);
	if (r == 0) {
		r = strcmp(x->provider, y->provider);
	}
	return r != 0 ? r : strcmp(x->gpu_type, y->gpu_type);
}

static int
cmp_win(const void *a, const void *b)
{
	return strcmp(((const hx_bill_window *) a)->provider,
	              ((const hx_bill_window *) b)->provider);
}

hx_status
hx_convert_finish(hx_convert *c)
{
	struct group *gs;
	size_t        n = 0;

	if (c->oom) {
		return HX_RESOURCE_EXHAUSTED;
	}
	gs = malloc((c->n_groups ? c->n_groups : 1) * sizeof(*gs));
	c->recs = calloc(c->n_groups ? c->n_groups : 1, sizeof(*c->recs));
	c->dropped = calloc(c->n_groups ? c->n_groups : 1, sizeof(*c->dropped));
	c->wins = calloc((size_t) c->n_prov + 1, sizeof(*c->wins));
	c->unk_out = calloc(c->n_unk + 1, sizeof(*c->unk_out));
	if (gs == NULL || c->recs == NULL || c->dropped == NULL || c->wins == NULL ||
	    c->unk_out == NULL) {
		free(gs);
		return HX_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < c->cap_groups; i++) {
		if (c->groups[i].key != 0) {
			gs[n++] = c->groups[i];
		}
	}
	qsort(gs, n, sizeof(*gs), cmp_group);
	for (size_t i = 0; i < n; i++) {
		struct group *g = &gs[i];
		int64_t       micros;
		char          date[11];

		hx_civil_from_days(g->day, date);
		if (!hx_wdec_round_micros(&g->cost, 1, &micros) ||
		    micros >= HX_MONEY_LIMIT_MICROS || micros <= -HX_MONEY_LIMIT_MICROS) {
			char field[HX_FIELD_MAX];
			snprintf(field, sizeof(field), "%.10s/%.40s/%.40s", date,
			         c->prov[g->prov].name, c->map->gpu_names[g->gpu]);
			hx_violations_add(c->viol, field, "the day's total is 10^12 USD or more");
			continue;
		}
		if (micros <= 0) {
			/* R1: not sent, but said */
			hx_bill_dropped *d = &c->dropped[c->n_dropped++];
			memcpy(d->date, date, sizeof(d->date));
			snprintf(d->provider, sizeof(d->provider), "%s", c->prov[g->prov].name);
			snprintf(d->gpu_type, sizeof(d->gpu_type), "%s", c->map->gpu_names[g->gpu]);
			hx_wdec_format6(&g->cost, 1, d->cost_usd, sizeof(d->cost_usd));
			continue;
		}
		{
			hx_bill_record *r = &c->recs[c->n_recs++];
			memcpy(r->date, date, sizeof(r->date));
			snprintf(r->provider, sizeof(r->provider), "%s", c->prov[g->prov].name);
			snprintf(r->gpu_type, sizeof(r->gpu_type), "%s", c->map->gpu_names[g->gpu]);
			hx_wdec_format6(&g->cost, 1, r->cost_usd, sizeof(r->cost_usd));
			r->lines = g->lines;
			r->gpu_hours[0] = '\0';
			if (!g->hours_unknown) {
				int64_t hm;
				if (!hx_wdec_round_micros(&g->hours, HOURS_SCALE * c->map->den_lcm,
				                          &hm) ||
				    hm < 0 || hm >= HX_MONEY_LIMIT_MICROS) {
					/* Negative or huge hours (refunds of hours beyond usage):
					 * not a sendable value, so unknown rather than wrong. */
					r->gpu_hours[0] = '\0';
				} else {
					hx_wdec_format6(&g->hours, HOURS_SCALE * c->map->den_lcm,
					                r->gpu_hours, sizeof(r->gpu_hours));
				}
			}
		}
	}
	free(gs);
	qsort(c->recs, c->n_recs, sizeof(*c->recs), cmp_rec);
	/* gs was ordered by day only, the rest by hash slot: one order for all */
	qsort(c->dropped, c->n_dropped, sizeof(*c->dropped), cmp_dropped);
	for (int p = 0; p < c->n_prov; p++) {
		if (c->prov[p].seen) {
			hx_bill_window *w = &c->wins[c->n_wins++];
			snprintf(w->provider, sizeof(w->provider), "%s", c->prov[p].name);
			hx_civil_from_days(c->prov[p].min_day, w->from_date);
			hx_civil_from_days(c->prov[p].max_day, w->to_date);
		}
	}
	qsort(c->wins, c->n_wins, sizeof(*c->wins), cmp_win);
	for (size_t i = 0; i < c->n_unk; i++) {
		hx_bill_unknown *u = &c->unk_out[i];
		snprintf(u->provider, sizeof(u->provider), "%s", c->prov[c->unk[i].prov].name);
		snprintf(u->family, sizeof(u->family), "%s", c->unk[i].family);
		u->lines = c->unk[i].lines;
		hx_wdec_format6(&c->unk[i].cost, 1, u->cost_usd, sizeof(u->cost_usd));
	}
	c->report.unknown = c->unk_out;
	c->report.n_unknown = c->n_unk;
	c->report.dropped = c->dropped;
	c->report.n_dropped = c->n_dropped;
	return c->viol->total > c->viol_at_start ? HX_INVALID_ARGUMENT : HX_OK;
}

const hx_bill_record *
hx_convert_records(const hx_convert *c, size_t *n)
{
	*n = c->n_recs;
	return c->recs;
}

const hx_bill_window *
hx_convert_windows(const hx_convert *c, size_t *n)
{
	*n = c->n_wins;
	return c->wins;
}

const hx_bill_report *
hx_convert_report(const hx_convert *c)
{
	return &c->report;
}

const char *
hx_convert_format_name(const hx_convert *c)
{
	return c->format_name;
}

void
hx_convert_free(hx_convert *c)
{
	if (c == NULL) {
		return;
	}
	if (c->csv_live) {
		csv_free(&c->csv);
	}
	for (size_t i = 0; i < c->n_hdr; i++) {
		free(c->hdr[i]);
	}
	free(c->hdr);
	free(c->col_role);
	free(c->arena);
	free(c->groups);
	free(c->unk);
	free(c->recs);
	free(c->wins);
	free(c->unk_out);
	free(c->dropped);
	free(c);
}
