/*
 * test_convert.c - the billing conversion library (SERVICE.md section 8):
 * every rule on small bills written here, the real sample files read in place
 * from ../shared/samples/billing with totals derived by hand, and every kind
 * of bad input with its exact violation field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "heliox/convert.h"

#ifndef HX_SOURCE_DIR
#error "HX_SOURCE_DIR must name the source tree (see tests/CMakeLists.txt)"
#endif

/* The real sample bills, read in place (never copied into the repo): CI has
 * ../shared beside the clone. HX_SAMPLES_DIR overrides the place. Without
 * them, test_samples_present fails once, naming the path, and the tests that
 * read them are skipped rather than failing one by one. */
static const char *samples_dir;
static bool        have_samples;

/* sample_path("focus/x.csv"): the sample's path; up to 8 live at once. */
static const char *
sample_path(const char *rel)
{
	static char buf[8][1024];
	static int  next;
	char       *b = buf[next++ % 8];

	snprintf(b, sizeof(buf[0]), "%s/%s", samples_dir, rel);
	return b;
}

static void
need_samples(void)
{
	if (!have_samples) {
		skip();
	}
}

static hx_gpu_map *map;

struct run {
	hx_violations v;
	hx_convert   *c;
	hx_status     st;
};

static int
group_setup(void **state)
{
	hx_violations v;

	hx_violations_init(&v, 0);
	if (hx_gpu_map_load(HX_SOURCE_DIR "/data/gpu_map_v1.csv", &map, &v) != HX_OK) {
		for (size_t i = 0; i < v.len; i++) {
			fprintf(stderr, "%s: %s\n", v.items[i].field, v.items[i].description);
		}
		return -1;
	}
	hx_violations_free(&v);
	return 0;
}

static int
group_teardown(void **state)
{
	hx_gpu_map_free(map);
	return 0;
}

static void
run_free(struct run *r)
{
	hx_convert_free(r->c);
	hx_violations_free(&r->v);
}

static void
dump(const struct run *r)
{
	for (size_t i = 0; i < r->v.len; i++) {
		fprintf(stderr, "  violation %s: %s\n", r->v.items[i].field,
		        r->v.items[i].description);
	}
}

/* Everything two runs said is the same: status, records, windows, report,
 * violations (field and description), in order. */
static void
assert_same_run(const struct run *a, const struct run *b)
{
	size_t                na, nb;
	const hx_bill_report *pa = hx_convert_report(a->c), *pb = hx_convert_report(b->c);

	assert_int_equal(a->st, b->st);
	{
		const hx_bill_record *ra = hx_convert_records(a->c, &na),
		                     *rb = hx_convert_records(b->c, &nb);
		assert_int_equal(na, nb);
		if (na > 0) {
			assert_memory_equal(ra, rb, na * sizeof(*ra));
		}
	}
	{
		const hx_bill_window *wa = hx_convert_windows(a->c, &na),
		                     *wb = hx_convert_windows(b->c, &nb);
		assert_int_equal(na, nb);
		if (na > 0) {
			assert_memory_equal(wa, wb, na * sizeof(*wa));
		}
	}
	assert_int_equal(pa->files, pb->files);
	assert_int_equal(pa->lines_read, pb->lines_read);
	assert_int_equal(pa->lines_counted, pb->lines_counted);
	assert_memory_equal(pa->excluded, pb->excluded, sizeof(pa->excluded));
	assert_int_equal(pa->n_unknown, pb->n_unknown);
	for (size_t i = 0; i < pa->n_unknown; i++) {
		assert_string_equal(pa->unknown[i].family, pb->unknown[i].family);
		assert_string_equal(pa->unknown[i].cost_usd, pb->unknown[i].cost_usd);
		assert_int_equal(pa->unknown[i].lines, pb->unknown[i].lines);
	}
	assert_int_equal(pa->n_dropped, pb->n_dropped);
	if (pa->n_dropped > 0) {
		assert_memory_equal(pa->dropped, pb->dropped, pa->n_dropped * sizeof(*pa->dropped));
	}
	assert_int_equal(a->v.total, b->v.total);
	assert_int_equal(a->v.len, b->v.len);
	for (size_t i = 0; i < a->v.len; i++) {
		assert_string_equal(a->v.items[i].field, b->v.items[i].field);
		assert_string_equal(a->v.items[i].description, b->v.items[i].description);
	}
}

/* Converts in-memory files (name, text pairs, NULL-terminated) twice: fed in
 * 7-byte chunks, so that no line arrives whole and libcsv reads every byte,
 * and fed whole, so that whole lines take the in-place fast path
 * (fast_row() in convert.c). Both must say exactly the same; r gets the
 * chunked run. */
static void
convert_texts(struct run *r, hx_bill_format fmt, ...)
{
	struct run whole;

	for (int pass = 0; pass < 2; pass++) {
		struct run *x = pass == 0 ? r : &whole;
		va_list     ap;
		const char *name;
		size_t      step = pass == 0 ? 7 : SIZE_MAX;

		hx_violations_init(&x->v, 0);
		x->c = hx_convert_new(map, fmt, &x->v);
		assert_non_null(x->c);
		va_start(ap, fmt);
		while ((name = va_arg(ap, const char *)) != NULL) {
			const char *text = va_arg(ap, const char *);
			size_t      len = strlen(text);
			assert_int_equal(hx_convert_begin(x->c, name), HX_OK);
			for (size_t i = 0; i < len; i += step) {
				assert_int_equal(hx_convert_feed(x->c, text + i,
				                                 len - i < step ? len - i : step),
				                 HX_OK);
				if (len - i <= step) {
					break;
				}
			}
			assert_int_equal(hx_convert_end(x->c), HX_OK);
		}
		va_end(ap);
		x->st = hx_convert_finish(x->c);
	}
	assert_same_run(r, &whole);
	run_free(&whole);
	if (r->st != HX_OK) {
		dump(r);
	}
}

static void
convert_text(struct run *r, const char *text)
{
	convert_texts(r, HX_BILL_AUTO, "bill.csv", text, NULL);
}

/* Converts sample files, named in violations by their base name. */
static void
convert_files(struct run *r, const char *const *paths)
{
	hx_violations_init(&r->v, 0);
	r->c = hx_convert_new(map, HX_BILL_AUTO, &r->v);
	assert_non_null(r->c);
	for (; *paths != NULL; paths++) {
		const char *base = strrchr(*paths, '/');
		assert_int_equal(
		    hx_convert_add_file(r->c, *paths, base != NULL ? base + 1 : *paths), HX_OK);
	}
	r->st = hx_convert_finish(r->c);
}

static const hx_bill_record *
rec(const struct run *r, const char *date, const char *prov, const char *gpu)
{
	size_t                n;
	const hx_bill_record *recs = hx_convert_records(r->c, &n);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(recs[i].date, date) == 0 && strcmp(recs[i].provider, prov) == 0 &&
		    strcmp(recs[i].gpu_type, gpu) == 0) {
			return &recs[i];
		}
	}
	fail_msg("no record %s/%s/%s", date, prov, gpu);
	return NULL;
}

static void
assert_rec(const struct run *r, const char *date, const char *prov, const char *gpu,
           const char *cost, const char *hours)
{
	const hx_bill_record *x = rec(r, date, prov, gpu);
	assert_string_equal(x->cost_usd, cost);
	assert_string_equal(x->gpu_hours, hours);
}

static size_t
nrecs(const struct run *r)
{
	size_t n;
	hx_convert_records(r->c, &n);
	return n;
}

static void
assert_window(const struct run *r, const char *prov, const char *from, const char *to)
{
	size_t                n;
	const hx_bill_window *w = hx_convert_windows(r->c, &n);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(w[i].provider, prov) == 0) {
			assert_string_equal(w[i].from_date, from);
			assert_string_equal(w[i].to_date, to);
			return;
		}
	}
	fail_msg("no window for %s", prov);
}

/* A violation with exactly this field whose description contains `part`. */
static void
assert_viol(const struct run *r, const char *field, const char *part)
{
	for (size_t i = 0; i < r->v.len; i++) {
		if (strcmp(r->v.items[i].field, field) == 0 &&
		    strstr(r->v.items[i].description, part) != NULL) {
			return;
		}
	}
	dump(r);
	fail_msg("no violation %s containing '%s'", field, part);
}

/* ---- exact decimals (R7, R1) and date-times (R8) ------------------------------- */

static void
round6(const char *in, const char *want)
{
	char        out[HX_BILL_NUM_MAX];
	const char *why = hx_bill_decimal_round6(in, strlen(in), out);
	if (why != NULL) {
		fail_msg("%s: %s", in, why);
	}
	assert_string_equal(out, want);
}

static void
test_decimals(void **state)
{
	round6("1.624E0", "1.624");        /* R7: E-notation, exactly */
	round6("35.2E-7", "0.000004");     /* 0.00000352 -> half up at the 7th place */
	round6("0.0000005", "0.000001");   /* half away from zero ... */
	round6("-0.0000005", "-0.000001"); /* ... on both sides */
	round6("0.00000049999999999999", "0.00");
	round6("1.1102230246251565E-16", "0.00"); /* a double's residue: 32 places, exact */
	round6("0.48088426400", "0.480884");
	round6("12345678901.1234565", "12345678901.123457");
	round6("1e3", "1000.00");
	round6(".5", "0.50");
	{
		char out[HX_BILL_NUM_MAX];
		assert_non_null(
		    hx_bill_decimal_round6("1e-40", 5, out)); /* beyond 10^-36: refused */
		assert_non_null(hx_bill_decimal_round6("1e20", 4, out));
		assert_non_null(hx_bill_decimal_round6("abc", 3, out));
		assert_non_null(hx_bill_decimal_round6("1.2.3", 5, out));
		assert_non_null(hx_bill_decimal_round6("1e", 2, out));
		assert_non_null(hx_bill_decimal_round6("", 0, out));
	}
}

static void
dt(const char *in, const char *want)
{
	char        out[HX_DATE_LEN + 1];
	const char *why = hx_bill_datetime_date(in, strlen(in), out);
	if (want == NULL) {
		assert_non_null(why);
		return;
	}
	if (why != NULL) {
		fail_msg("%s: %s", in, why);
	}
	assert_string_equal(out, want);
}

static void
test_datetimes(void **state)
{
	dt("2024-09-18T22:00:00Z", "2024-09-18");
	dt("2024-09-18 22:00:00", "2024-09-18");         /* no zone = UTC (FOCUS sample) */
	dt("2022-07-01 00:00:00.000", "2022-07-01");     /* fraction (Koku CUR 2.0) */
	dt("2024-09-30T23:30:00.5-02:00", "2024-10-01"); /* offset moves it to UTC */
	dt("2024-03-01T00:30:00+01:00", "2024-02-29");   /* leap day */
	dt("2024-09-18T22:00:00+00:00", "2024-09-18");
	dt("2023-02-01T30:00:00Z", NULL); /* impossible time (FOCUS 1.2 example) */
	dt("2023-02-29T00:00:00Z", NULL);
	dt("2000-02-29T12:00:00Z", "2000-02-29"); /* a 400th year is a leap year ... */
	dt("2100-02-29T12:00:00Z", NULL);         /* ... a 100th is not */
	dt("2024-13-01T00:00:00Z", NULL);
	dt("2024-04-31T00:00:00Z", NULL);
	dt("0000-01-01T00:00:00Z", NULL);
	{
		/* the refusal's wording: the day, or the shape */
		char out[HX_DATE_LEN + 1];
		assert_string_equal(hx_bill_datetime_date("2023-02-29T00:00:00Z", 20, out),
		                    "is not a real calendar date");
		assert_string_equal(
		    hx_bill_datetime_date("2023-02-29T0x:00:00Z", 20, out),
		    "is not a date-time YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD HH:MM:SS");
		assert_string_equal(
		    hx_bill_datetime_date("2023-0a-01T00:00:00Z", 20, out),
		    "is not a date-time YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD HH:MM:SS");
	}
	dt("2024-09-18", NULL);
	dt("09/18/2024 22:00", NULL);
	dt("2024-09-18T22:00:00+25:00", NULL);
}

/* ---- the real sample files ----------------------------------------------------------- */

/*
 * focus_sample_1.0_special_rows.csv (35 data rows, FOCUS 1.0, all USD).
 * GPU rows, by F3 (c) from ChargeDescription, EffectiveCost (F4), ConsumedQuantity Hours x 1 GPU:
 *   line 4  2024-09-24 g3.4xlarge m60  1.0  1.0 h
 *   line 7  2024-09-27 g5.4xlarge a10g 2.0  1.0 h   (BilledCost 1.624: not used)
 *   line 8  2024-09-21 g5.4xlarge a10g 0.0  0.296111 h
 *   line 10 2024-09-22 a10g 2.0 1.0;  line 11 2024-09-13 a10g 1.0 0.683889
 *   line 12 2024-09-24 a10g 2.0 1.0;  line 13 2024-09-29 a10g 2.0 1.0
 *   line 14 2024-09-12 a10g 2.0 1.0;  line 15 2024-09-20 a10g 0.0 0.303056
 *   line 17 2024-09-30 g3.4xlarge m60 1.0 0.686667
 * -> 8 records; 2024-09-21 and 2024-09-20 a10g total 0 -> not sent (R1).
 * Excluded: line 9 Credit, lines 22, 23 Oracle Adjustment = 3 charge_category;
 * 35 - 10 counted - 3 = 22 not_gpu_instance (incl. line 16: c6a.4xlarge EBS line).
 * Windows (W1, every row): aws 2024-09-04 (line 2) .. 2024-09-30; Microsoft ->
 * azure 2024-09-03 .. 2024-09-19; Oracle -> oci 2024-09-03 .. 2024-09-30.
 */
static void
test_sample_focus_special_rows(void **state)
{
	struct run            r;
	const char *const     files[] = { sample_path("focus/focus_sample_1.0_special_rows.csv"),
		                          NULL };
	const hx_bill_report *rep;
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	assert_string_equal(hx_convert_format_name(r.c), "focus-1.0");
	assert_int_equal(nrecs(&r), 8);
	assert_rec(&r, "2024-09-24", "aws", "m60", "1.00", "1.00");
	assert_rec(&r, "2024-09-30", "aws", "m60", "1.00", "0.686667");
	assert_rec(&r, "2024-09-27", "aws", "a10g", "2.00", "1.00");
	assert_rec(&r, "2024-09-13", "aws", "a10g", "1.00", "0.683889");
	assert_rec(&r, "2024-09-12", "aws", "a10g", "2.00", "1.00");
	assert_rec(&r, "2024-09-22", "aws", "a10g", "2.00", "1.00");
	assert_rec(&r, "2024-09-24", "aws", "a10g", "2.00", "1.00");
	assert_rec(&r, "2024-09-29", "aws", "a10g", "2.00", "1.00");
	rep = hx_convert_report(r.c);
	assert_int_equal(rep->lines_read, 35);
	assert_int_equal(rep->lines_counted, 10);
	assert_int_equal(rep->excluded[HX_EXCL_CHARGE_CATEGORY], 3);
	assert_int_equal(rep->excluded[HX_EXCL_NOT_GPU], 22);
	assert_int_equal(rep->excluded[HX_EXCL_UNUSED_COMMITMENT], 0);
	assert_int_equal(rep->n_dropped, 2);
	assert_string_equal(rep->dropped[0].date, "2024-09-20");
	assert_string_equal(rep->dropped[1].date, "2024-09-21");
	assert_int_equal(rep->n_unknown, 0);
	assert_window(&r, "aws", "2024-09-04", "2024-09-30");
	assert_window(&r, "azure", "2024-09-03", "2024-09-19");
	assert_window(&r, "oci", "2024-09-03", "2024-09-30");
	run_free(&r);
}

/*
 * focus_sample_1.0_head200.csv: 200 AWS rows 2024-09-01 00:00 .. 2024-09-30 22:00; the one
 * GPU row is line 188, g3.4xlarge 2024-09-24, EffectiveCost 1.0, 1 hour -> one record.
 * Rows like "$0.08 per GB-month of General Purpose (gp3)" have no instance token ("gp3)"
 * has no '.'), so 199 not_gpu_instance.
 */
static void
test_sample_focus_head200(void **state)
{
	struct run        r;
	const char *const files[] = { sample_path("focus/focus_sample_1.0_head200.csv"), NULL };
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	assert_int_equal(nrecs(&r), 1);
	assert_rec(&r, "2024-09-24", "aws", "m60", "1.00", "1.00");
	assert_int_equal(hx_convert_report(r.c)->lines_read, 200);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_NOT_GPU], 199);
	assert_window(&r, "aws", "2024-09-01", "2024-09-30");
	run_free(&r);
}

/* Both FOCUS samples as one export: line 188 of head200 and line 4 of special_rows
 * are the same g3.4xlarge hour, so 2024-09-24 m60 sums to 1.0 + 1.0 = 2.00, 2 hours. */
static void
test_sample_two_files_one_export(void **state)
{
	struct run        r;
	const char *const files[] = { sample_path("focus/focus_sample_1.0_head200.csv"),
		                      sample_path("focus/focus_sample_1.0_special_rows.csv"),
		                      NULL };
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	assert_int_equal(nrecs(&r), 8);
	assert_rec(&r, "2024-09-24", "aws", "m60", "2.00", "2.00");
	assert_int_equal(hx_convert_report(r.c)->lines_read, 235);
	assert_int_equal(hx_convert_report(r.c)->files, 2);
	assert_window(&r, "aws", "2024-09-01", "2024-09-30");
	run_free(&r);
}

/*
 * Koku's legacy CUR files: 3 SavingsPlanCoveredUsage lines of m5.large (not a GPU) in NOK.
 * R5 checks the currency on GPU lines only, so no violation; no records; the window still
 * covers the export (2023-06-01 00:00, 01:00, 02:00 -> aws 2023-06-01 .. 2023-06-01).
 */
static void
test_sample_koku_legacy(void **state)
{
	const char *const which[] = { sample_path("aws_cur/koku_2023-06-01.csv"),
		                      sample_path("aws_cur/koku_2023-06-01-not-final.csv") };
	need_samples();

	for (int i = 0; i < 2; i++) {
		struct run        r;
		const char *const files[] = { which[i], NULL };
		convert_files(&r, files);
		assert_int_equal(r.st, HX_OK);
		assert_string_equal(hx_convert_format_name(r.c), "aws-cur-legacy");
		assert_int_equal(nrecs(&r), 0);
		assert_int_equal(hx_convert_report(r.c)->lines_read, 3);
		assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_NOT_GPU], 3);
		assert_window(&r, "aws", "2023-06-01", "2023-06-01");
		run_free(&r);
	}
}

/* Koku's snake_case (CUR 2.0 style) file: 2 lines of product code "mra" (Marketplace): A1. */
static void
test_sample_koku_cur2(void **state)
{
	struct run        r;
	const char *const files[] = { sample_path("aws_cur/koku_2022-07-01-alt-columns.csv"),
		                      NULL };
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	assert_string_equal(hx_convert_format_name(r.c), "aws-cur-2.0");
	assert_int_equal(hx_convert_report(r.c)->lines_read, 2);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_NOT_COMPUTE], 2);
	assert_window(&r, "aws", "2022-07-01", "2022-07-01");
	run_free(&r);
}

/* The FOCUS 1.2 spec's example: line 4 has ChargePeriodEnd 2023-02-01T30:00:00Z in column 4;
 * the fragment also lacks BillingCurrency and ProviderName (line 1). All three reported. */
static void
test_sample_spec_impossible_time(void **state)
{
	struct run        r;
	const char *const files[] = {
		sample_path("focus/FOCUS_Spec_v1.2_commitment_discount_purchase_scenario_2.csv"),
		NULL
	};
	const char *f = "FOCUS_Spec_v1.2_commitment_discount_purchase_scenario_2.csv";
	char        field[160];
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	snprintf(field, sizeof(field), "%s:4.4", f);
	assert_viol(&r, field, "ChargePeriodEnd 2023-02-01T30:00:00Z is not a real time of day");
	snprintf(field, sizeof(field), "%s:1", f);
	assert_viol(&r, field, "missing required column BillingCurrency");
	assert_viol(&r, field, "missing required column ProviderName");
	assert_int_equal(r.v.total, 3);
	run_free(&r);
}

/* The Azure EA export (BOM, MM/DD/YYYY) is neither format: one violation on line 1. */
static void
test_sample_azure_ea_neither(void **state)
{
	struct run        r;
	const char *const files[] = {
		sample_path("azure/finops-toolkit_EA_AmortizedCost_Small.csv"), NULL
	};
	need_samples();

	convert_files(&r, files);
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_int_equal(r.v.total, 1);
	assert_viol(&r, "finops-toolkit_EA_AmortizedCost_Small.csv:1", "neither FOCUS nor AWS CUR");
	run_free(&r);
}

/* ---- FOCUS rules on small bills ------------------------------------------------------------ */

#define FH                                                                                     \
	"ChargePeriodStart,ChargeCategory,ChargeClass,CommitmentDiscountStatus,EffectiveCost," \
	"BilledCost,BillingCurrency,x_EffectiveCostInUsd,ProviderName,SkuPriceDetails,x_"      \
	"UsageType,"                                                                           \
	"ChargeDescription,ConsumedQuantity,ConsumedUnit\n"
/* columns:  1 start, 2 category, 3 class, 4 cdstatus, 5 effective, 6 billed, 7 currency,
 *           8 x_EffectiveCostInUsd, 9 provider, 10 SkuPriceDetails, 11 x_UsageType,
 *           12 description, 13 quantity, 14 unit */

/* F1, F2, F4: only Usage (also negative; Correction on its own date), never Unused. */
static void
test_focus_charge_rules(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    FH
	    "2024-09-01T10:00:00Z,Usage,NULL,NULL,3.5,9.9,USD,,AWS,,BoxUsage:p5.48xlarge,,1,Hours\n"
	    "2024-09-01T11:00:00Z,Usage,NULL,Used,1.25,0,USD,,AWS,,BoxUsage:p5.48xlarge,,1,Hours\n"
	    "2024-09-01T12:00:00Z,Usage,,Unused,7,7,USD,,AWS,,BoxUsage:p5.48xlarge,,1,Hours\n"
	    "2024-09-01T13:00:00Z,Purchase,,,100,100,USD,,AWS,,BoxUsage:p5.48xlarge,,1,Hours\n"
	    "2024-09-01T14:00:00Z,Tax,,,1,1,USD,,AWS,,BoxUsage:p5.48xlarge,,,\n"
	    "2024-09-01T15:00:00Z,Credit,,,-2,-2,USD,,AWS,,BoxUsage:p5.48xlarge,,,\n"
	    "2024-09-01T16:00:00Z,Adjustment,,,-3,-3,USD,,AWS,,BoxUsage:p5.48xlarge,,,\n"
	    "2024-09-01T17:00:00Z,Usage,null,null,-0.25,-0.25,USD,,AWS,,BoxUsage:p5.48xlarge,,-0.5,"
	    "Hours\n"
	    "2024-08-31T23:00:00Z,Usage,Correction,,0.5,0.5,USD,,AWS,,BoxUsage:p5.48xlarge,,0.5,"
	    "hrs\n"
	    "2024-09-01T18:00:00Z,Usage,Other,,50,50,USD,,AWS,,BoxUsage:p5.48xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_OK);
	/* 2024-09-01: 3.5 + 1.25 - 0.25 = 4.50; hours (1 + 1 - 0.5) x 8 GPUs = 12 */
	assert_rec(&r, "2024-09-01", "aws", "h100", "4.50", "12.00");
	/* the correction counts on its own date: 0.5 USD, 0.5 h x 8 = 4 */
	assert_rec(&r, "2024-08-31", "aws", "h100", "0.50", "4.00");
	assert_int_equal(nrecs(&r), 2);
	/* Purchase, Tax, Credit, Adjustment, ChargeClass "Other" */
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_CHARGE_CATEGORY], 5);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_UNUSED_COMMITMENT], 1);
	assert_window(&r, "aws", "2024-08-31", "2024-09-01");
	run_free(&r);
}

/* F3 (a)-(e) and R3, R4: every way to find the instance, and every provider name. */
static void
test_focus_instance_sources(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    FH
	    /* (a) SkuPriceDetails wins over (b) */
	    "2024-09-02 00:00:00,Usage,,,1,1,USD,,Amazon Web Services,\"{\"\"InstanceType\"\": "
	    "\"\"p4d.24xlarge\"\", \"\"GpuCount\"\": 8}\",BoxUsage:g5.xlarge,,1,Hours\n"
	    /* (b) x_UsageType after the last ':' (region prefix) */
	    "2024-09-02 00:00:00,Usage,,,2,2,USD,,AWS,,USW2-SpotUsage:p4de.24xlarge,,1,Hours\n"
	    /* (c) first instance token of the description */
	    "2024-09-02 00:00:00,Usage,,,0.5,0.5,USD,,AWS,,,\"$1.0 per On Demand Linux g6.12xlarge "
	    "Instance Hour\",2,Hours\n"
	    /* (d) Azure meter -> Standard_NC24ads_A100_v4 */
	    "2024-09-02T00:00:00Z,Usage,,,3,3,USD,,Microsoft,,,Virtual Machines NCads A100 v4 "
	    "Series - NC24ads A100 v4 - US East,24,Hours\n"
	    /* (e) Google's GPU SKU, in seconds: 7200 s = 2 h, factor 1 */
	    "2024-09-02T00:00:00Z,Usage,,,4,4,USD,,Google Cloud,,,Nvidia Tesla T4 GPU running in "
	    "Americas,7200,seconds\n"
	    "2024-09-02T00:00:00Z,Usage,,,5,5,USD,,Google Cloud,,,Commitment v1: Nvidia Tesla A100 "
	    "80GB GPU in Americas for 1 Year,3600,seconds\n"
	    /* Google's VM core line is not the GPU */
	    "2024-09-02T00:00:00Z,Usage,,,6,6,USD,,Google Cloud,\"{\"\"InstanceType\"\": "
	    "\"\"a2-highgpu-1g\"\"}\",,A2 Instance Core running in Americas,1,hours\n"
	    /* Oracle: no map entries */
	    "2024-09-02T00:00:00Z,Usage,,,7,7,USD,,Oracle,,,Standard - E5,1,Hours\n"
	    /* not GPUs (R4): Inferentia, Trainium */
	    "2024-09-02T00:00:00Z,Usage,,,8,8,USD,,AWS,,BoxUsage:inf2.xlarge,,1,Hours\n"
	    "2024-09-02T00:00:00Z,Usage,,,9,9,USD,,AWS,,BoxUsage:trn1.32xlarge,,1,Hours\n"
	    /* looks like a GPU but not in the map: reported */
	    "2024-09-02T00:00:00Z,Usage,,,10.5,10.5,USD,,AWS,,BoxUsage:p9.48xlarge,,1,Hours\n"
	    "2024-09-03T00:00:00Z,Usage,,,1.25,1.25,USD,,AWS,,BoxUsage:p9.48xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_OK);
	/* p4d (8 GPUs, 1 h) + p4de (8 GPUs, 1 h): memory variants collapse to a100 */
	assert_rec(&r, "2024-09-02", "aws", "a100", "3.00", "16.00");
	assert_rec(&r, "2024-09-02", "aws", "l4", "0.50", "8.00"); /* g6.12xlarge: 4 GPUs x 2 h */
	assert_rec(&r, "2024-09-02", "azure", "a100", "3.00", "24.00");
	assert_rec(&r, "2024-09-02", "gcp", "t4", "4.00", "2.00");
	assert_rec(&r, "2024-09-02", "gcp", "a100", "5.00", "1.00");
	assert_int_equal(nrecs(&r), 5);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_NOT_GPU], 6);
	assert_int_equal(hx_convert_report(r.c)->n_unknown, 1);
	assert_string_equal(hx_convert_report(r.c)->unknown[0].family, "p9");
	assert_int_equal(hx_convert_report(r.c)->unknown[0].lines, 2);
	assert_string_equal(hx_convert_report(r.c)->unknown[0].cost_usd, "11.75");
	assert_window(&r, "oci", "2024-09-02", "2024-09-02");
	assert_window(&r, "aws", "2024-09-02", "2024-09-03");
	run_free(&r);
}

/* FOCUS 1.3: ServiceProviderName wins over ProviderName (R3). */
static void
test_focus_13_provider(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    "ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,ProviderName,"
	    "ServiceProviderName,HostProviderName,x_UsageType,ConsumedQuantity,ConsumedUnit\n"
	    "2025-01-05T00:00:00Z,Usage,1,USD,Reseller Inc,AWS,AWS,BoxUsage:g5.xlarge,1,Hours\n");
	assert_int_equal(r.st, HX_OK);
	assert_string_equal(hx_convert_format_name(r.c), "focus-1.3");
	assert_rec(&r, "2025-01-05", "aws", "a10g", "1.00", "1.00");
	run_free(&r);
}

/* R5 for FOCUS: a non-USD GPU line uses x_EffectiveCostInUsd, or is a violation; a non-GPU
 * line in another currency is fine. */
static void
test_focus_currency(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    FH "2024-09-01T00:00:00Z,Usage,,,9.1,9.1,EUR,10.00,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	       "2024-09-01T00:00:00Z,Usage,,,9.1,9.1,EUR,,AWS,,BoxUsage:m5.xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_OK);
	assert_rec(&r, "2024-09-01", "aws", "a10g", "10.00", "1.00");
	run_free(&r);

	convert_text(
	    &r,
	    FH "2024-09-01T00:00:00Z,Usage,,,9.1,9.1,EUR,NULL,AWS,,BoxUsage:g5.xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_viol(&r, "bill.csv:2.7", "EUR on a GPU line and no x_EffectiveCostInUsd");
	run_free(&r);
}

/* R1: exact sum, rounded once, half away from zero; a total <= 0 is not sent. */
static void
test_rounding_and_dropped(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    FH
	    /* 0.0000004 + 0.0000004 + 0.00000025 = 0.00000105 -> 0.000001 (each alone rounds to 0) */
	    "2024-09-01T00:00:00Z,Usage,,,4E-7,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    "2024-09-01T01:00:00Z,Usage,,,0.0000004,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    "2024-09-01T02:00:00Z,Usage,,,25E-8,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    /* 1.0000005 -> 1.000001 (half away from zero) */
	    "2024-09-02T00:00:00Z,Usage,,,1.0000005,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    /* 1 - 1.5 = -0.5: not sent */
	    "2024-09-03T00:00:00Z,Usage,,,1,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    "2024-09-03T00:00:00Z,Usage,,,-1.5,0,USD,,AWS,,BoxUsage:g5.xlarge,,-1,Hours\n"
	    /* 0.0000004 rounds to 0: not sent either */
	    "2024-09-04T00:00:00Z,Usage,,,0.0000004,0,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_OK);
	assert_rec(&r, "2024-09-01", "aws", "a10g", "0.000001", "3.00");
	assert_rec(&r, "2024-09-02", "aws", "a10g", "1.000001", "1.00");
	assert_int_equal(nrecs(&r), 2);
	assert_int_equal(hx_convert_report(r.c)->n_dropped, 2);
	assert_string_equal(hx_convert_report(r.c)->dropped[0].cost_usd, "-0.50");
	assert_string_equal(hx_convert_report(r.c)->dropped[1].cost_usd, "0.00");
	run_free(&r);
}

/* G1, G3, G4: fractional GPUs summed exactly and rounded once; unknown hours or size
 * make the group's hours unknown. */
static void
test_gpu_hours(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    FH
	    /* NV12ads_A10_v5 = 1/3 GPU: 3 x 1 h = exactly 1 GPU-hour (0.333333 x 3 would be 0.999999) */
	    "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,Microsoft,\"{\"\"InstanceType\"\":\"\"Standard_"
	    "NV12ads_A10_v5\"\"}\",,,1,Hours\n"
	    "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,Microsoft,\"{\"\"InstanceType\"\":\"\"Standard_"
	    "NV12ads_A10_v5\"\"}\",,,1,Hours\n"
	    "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,Microsoft,\"{\"\"InstanceType\"\":\"\"Standard_"
	    "NV12ads_A10_v5\"\"}\",,,1,Hours\n"
	    /* NV6ads = 1/6: 1 h -> 0.1666666.. -> 0.166667 */
	    "2024-09-02T00:00:00Z,Usage,,,1,1,USD,,Microsoft,\"{\"\"InstanceType\"\":\"\"Standard_"
	    "NV6ads_A10_v5\"\"}\",,,1,Hours\n"
	    /* NV18ads = 0.5, 1800 seconds -> 0.25 */
	    "2024-09-03T00:00:00Z,Usage,,,1,1,USD,,Microsoft,\"{\"\"InstanceType\"\":\"\"Standard_"
	    "NV18ads_A10_v5\"\"}\",,,1800,Seconds\n"
	    /* g6f: family mapped (l4), size not in the table -> hours unknown */
	    "2024-09-01T00:00:00Z,Usage,,,2,2,USD,,AWS,,BoxUsage:g6f.xlarge,,1,Hours\n"
	    /* a unit that is not time -> unknown, even with a known line beside it */
	    "2024-09-02T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	    "2024-09-02T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,5,GB\n"
	    /* null quantity -> unknown */
	    "2024-09-03T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,NULL,Hours\n");
	assert_int_equal(r.st, HX_OK);
	assert_rec(&r, "2024-09-01", "azure", "a10", "3.00", "1.00");
	assert_rec(&r, "2024-09-02", "azure", "a10", "1.00", "0.166667");
	assert_rec(&r, "2024-09-03", "azure", "a10", "1.00", "0.25");
	assert_rec(&r, "2024-09-01", "aws", "l4", "2.00", "");
	assert_rec(&r, "2024-09-02", "aws", "a10g", "2.00", "");
	assert_rec(&r, "2024-09-03", "aws", "a10g", "1.00", "");
	run_free(&r);
}

/* ---- AWS CUR rules ------------------------------------------------------------------------------ */

#define CH                                                                                         \
	"line_item_usage_start_date,line_item_product_code,line_item_line_item_type,line_item_"    \
	"usage_type,"                                                                              \
	"product_instance_type,line_item_unblended_cost,reservation_effective_cost,"               \
	"savings_plan_savings_plan_effective_cost,line_item_currency_code,line_item_usage_amount," \
	"pricing_unit\n"
/* columns: 1 start, 2 product, 3 line type, 4 usage type, 5 instance type, 6 unblended,
 *          7 RI effective, 8 SP effective, 9 currency, 10 usage amount, 11 pricing unit */

static void
test_cur_rules(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    CH
	    /* A2/A4: Usage -> unblended 10.5 */
	    "2024-09-01T00:00:00Z,AmazonEC2,Usage,USW2-BoxUsage:p5.48xlarge,,10.5,0,0,USD,1,Hrs\n"
	    /* DiscountedUsage -> reservation_effective_cost 4 */
	    "2024-09-01T01:00:00Z,AmazonEC2,DiscountedUsage,BoxUsage:p5.48xlarge,,0,4,0,USD,1,Hrs\n"
	    /* SavingsPlanCoveredUsage -> SP effective cost 3.25 (not the on-demand 98) */
	    "2024-09-01T02:00:00Z,AmazonEC2,SavingsPlanCoveredUsage,BoxUsage:p5.48xlarge,,98,0,3."
	    "25,USD,1,Hrs\n"
	    /* Refund -> unblended, negative */
	    "2024-09-01T03:00:00Z,AmazonEC2,Refund,BoxUsage:p5.48xlarge,,-0.75,0,0,USD,0,Hrs\n"
	    /* A5: never counted, though the usage type names a GPU */
	    "2024-09-01T04:00:00Z,AmazonEC2,SavingsPlanNegation,BoxUsage:p5.48xlarge,,-98,0,0,USD,"
	    "1,Hrs\n"
	    "2024-09-01T05:00:00Z,AmazonEC2,RIFee,HeavyUsage:p5.48xlarge,,50,0,0,USD,720,Hrs\n"
	    "2024-09-01T06:00:00Z,AmazonEC2,Fee,HeavyUsage:p5.48xlarge,,50,0,0,USD,1,\n"
	    "2024-09-01T07:00:00Z,AmazonEC2,Tax,BoxUsage:p5.48xlarge,,5,0,0,USD,0,\n"
	    "2024-09-01T08:00:00Z,AmazonEC2,Credit,BoxUsage:p5.48xlarge,,-5,0,0,USD,0,\n"
	    "2024-09-01T09:00:00Z,AmazonEC2,EdpDiscount,BoxUsage:p5.48xlarge,,-5,0,0,USD,0,\n"
	    /* A1: not EC2 */
	    "2024-09-01T10:00:00Z,AmazonSageMaker,Usage,USW2-ml.p4d.24xlarge,,30,0,0,USD,1,Hrs\n"
	    /* A3: no ':' in the usage type -> product_instance_type; G2 via pricing unit */
	    "2024-09-02T00:00:00Z,AmazonEC2,Usage,weird,g5.2xlarge,1.5,0,0,USD,2,hours\n"
	    /* G2: no pricing unit, BoxUsage in the usage type -> hours known */
	    "2024-09-03T00:00:00Z,AmazonEC2,Usage,SpotUsage:g5.xlarge,,0.4,0,0,USD,2,\n");
	assert_int_equal(r.st, HX_OK);
	/* 10.5 + 4 + 3.25 - 0.75 = 17.00 USD; hours (1 + 1 + 1 + 0) x 8 = 24 */
	assert_rec(&r, "2024-09-01", "aws", "h100", "17.00", "24.00");
	assert_rec(&r, "2024-09-02", "aws", "a10g", "1.50", "2.00");
	assert_rec(&r, "2024-09-03", "aws", "a10g", "0.40", "2.00");
	assert_int_equal(nrecs(&r), 3);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_LINE_TYPE], 6);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_NOT_COMPUTE], 1);
	assert_int_equal(hx_convert_report(r.c)->lines_counted, 6);
	assert_window(&r, "aws", "2024-09-01", "2024-09-03");
	run_free(&r);
}

/* Legacy headers, and R5: a CUR GPU line in another currency is a violation. */
static void
test_cur_legacy_currency(void **state)
{
	struct run r;

	convert_text(&r,
	             "lineItem/UsageStartDate,lineItem/ProductCode,lineItem/LineItemType,"
	             "lineItem/UsageType,lineItem/UnblendedCost,lineItem/CurrencyCode,"
	             "lineItem/UsageAmount,pricing/unit\n"
	             "2023-06-01 00:00:00,AmazonEC2,Usage,BoxUsage:g4dn.12xlarge,3.912,USD,1,Hrs\n"
	             "2023-06-01 01:00:00,AmazonEC2,Usage,BoxUsage:m5.large,10,NOK,1,Hrs\n");
	assert_int_equal(r.st, HX_OK);
	assert_string_equal(hx_convert_format_name(r.c), "aws-cur-legacy");
	assert_rec(&r, "2023-06-01", "aws", "t4", "3.912", "4.00");
	run_free(&r);

	convert_text(
	    &r, CH "2024-09-01T00:00:00Z,AmazonEC2,Usage,BoxUsage:g5.xlarge,,10,0,0,NOK,1,Hrs\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_viol(&r, "bill.csv:2.9", "NOK on a GPU line");
	run_free(&r);
}

/* ---- bad input: each with its exact field ----------------------------------------------------------- */

static void
test_bad_csv_shapes(void **state)
{
	struct run r;

	/* wrong field count on line 3; an unterminated quote from line 4 to the end */
	convert_text(
	    &r,
	    FH "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	       "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS\n"
	       "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,\"oops,1,Hours\n"
	       "2024-09-02T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_viol(&r, "bill.csv:3", "has 9 fields, the header has 14");
	assert_viol(&r, "bill.csv:4.12", "unterminated quoted field");
	assert_int_equal(r.v.total, 2);
	run_free(&r);

	/* a quote in the middle of an unquoted field, line 2 column 12 */
	convert_text(&r,
	             FH
	             "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,ab\"c,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,x,Hours\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_viol(&r, "bill.csv:2.12", "malformed CSV");
	/* and the parser goes on: line 3's quantity is unreadable */
	assert_viol(&r, "bill.csv:3.13", "ConsumedQuantity x is not a number");
	assert_int_equal(r.v.total, 2); /* nothing more of line 2 is read */
	run_free(&r);
}

static void
test_bad_values(void **state)
{
	struct run r;

	convert_text(&r,
	             FH
	             "2024-09-01T30:00:00Z,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,,,1.2.3,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	             "NULL,Usage,,,1,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,,,,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_viol(&r, "bill.csv:2.1", "is not a real time of day");
	assert_viol(&r, "bill.csv:3.5", "EffectiveCost 1.2.3 is not a number");
	assert_viol(&r, "bill.csv:4.1", "ChargePeriodStart is required");
	assert_viol(&r, "bill.csv:5.5", "EffectiveCost is null on a counted line");
	assert_int_equal(r.v.total, 4);
	run_free(&r);
}

static void
test_bad_files(void **state)
{
	struct run r;

	convert_texts(&r, HX_BILL_AUTO, "empty.csv", "", NULL);
	assert_viol(&r, "empty.csv", "is empty");
	run_free(&r);

	convert_texts(&r, HX_BILL_AUTO, "header.csv", FH, NULL);
	assert_viol(&r, "header.csv:1", "has a header but no data rows");
	run_free(&r);

	convert_texts(&r, HX_BILL_AUTO, "other.csv", "a,b,c\n1,2,3\n", NULL);
	assert_viol(&r, "other.csv:1", "neither FOCUS nor AWS CUR");
	assert_int_equal(r.v.total, 1);
	run_free(&r);

	/* a missing required column, named */
	convert_texts(&r, HX_BILL_AUTO, "cols.csv",
	              "ChargePeriodStart,ChargeCategory,BillingCurrency,ProviderName\n"
	              "2024-09-01T00:00:00Z,Usage,USD,AWS\n",
	              NULL);
	assert_viol(&r, "cols.csv:1", "missing required column EffectiveCost");
	run_free(&r);

	/* --format aws-cur on a FOCUS file */
	convert_texts(&r, HX_BILL_AWS_CUR, "f.csv",
	              FH "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,,,1,Hours\n", NULL);
	assert_viol(&r, "f.csv:1", "is not an AWS CUR file");
	run_free(&r);

	/* two formats in one export */
	convert_texts(
	    &r, HX_BILL_AUTO, "a.csv", FH "2024-09-01T00:00:00Z,Usage,,,1,1,USD,,AWS,,,,1,Hours\n",
	    "b.csv",
	    CH "2024-09-01T00:00:00Z,AmazonEC2,Usage,BoxUsage:g5.xlarge,,1,0,0,USD,1,Hrs\n", NULL);
	assert_viol(&r, "b.csv:1", "one export, one format");
	run_free(&r);
}

/* BOM and CRLF accepted; an embedded newline in a quoted field is valid and counted as a
 * line, so the violation after it is on the right line (5, not 4). */
static void
test_bom_crlf_embedded_newline(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    "\xEF\xBB\xBF"
	    "ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,"
	    "ProviderName,x_UsageType,ChargeDescription,ConsumedQuantity,ConsumedUnit\r\n"
	    "2024-09-01T00:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge,\"two\r\nlines\",1,Hours\r\n"
	    "\r\n"
	    "2024-09-01T00:00:00Z,Usage,2,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\r\n");
	assert_int_equal(r.st, HX_OK);
	assert_rec(&r, "2024-09-01", "aws", "a10g", "3.00", "2.00");
	assert_int_equal(hx_convert_report(r.c)->lines_read, 2);
	run_free(&r);

	convert_text(
	    &r,
	    "ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,"
	    "ProviderName,x_UsageType,ChargeDescription,ConsumedQuantity,ConsumedUnit\n"
	    "2024-09-01T00:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge,\"two\nlines\",1,Hours\n"
	    "\n"
	    "2024-09-01T00:00:00Z,Usage,oops,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n");
	assert_viol(&r, "bill.csv:5.3", "EffectiveCost oops is not a number");
	run_free(&r);
}

/* The in-place splitter of whole lines keeps libcsv's CSV_STRICT reading:
 * spaces and tabs around unquoted fields and after a closing quote dropped,
 * "" as one quote, CRLF, blank and blank-looking lines, a lone CR ending a
 * row, a quoted newline, a last line without '\n'. convert_texts() also
 * checks that the whole-line run equals the byte-by-byte libcsv run. */
#define EH                                                                             \
	"ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,ProviderName," \
	"x_UsageType,ChargeDescription,ConsumedQuantity,ConsumedUnit\n"
static void
test_fast_path_csv_rules(void **state)
{
	struct run r;

	convert_text(
	    &r,
	    EH " 2024-09-01T00:00:00Z , Usage ,\t1.5\t, USD,AWS , BoxUsage:g5.xlarge ,x,1,Hours \n"
	       "\"2024-09-01T00:00:00Z\"  ,\"Usage\",\"2\",USD,\"AWS\",\"BoxUsage:g5.xlarge\","
	       "\"say \"\"hi\"\", ok\" ,\"1\",Hours\r\n"
	       "   \t \n"
	       "\n"
	       "\"2024-09-01T00:00:00Z\",\"Us\"\"age\",5,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n"
	       "2024-09-02T00:00:00Z,Usage,0.25,USD,AWS,BoxUsage:g5.xlarge,\"a\nb\",1,Hours\n"
	       "2024-09-02T00:00:00Z,Usage,0.5,USD,AWS,BoxUsage:g5.xlarge,x,2,Hours\r"
	       "2024-09-02T00:00:00Z,Usage,0.25,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n"
	       "2024-09-03T00:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours");
	assert_int_equal(r.st, HX_OK);
	/* 1.5 + 2 (1 + 1 h); "Us\"age" is not Usage (F1); 0.25 + 0.5 + 0.25 (1 + 2 + 1 h); 1 */
	assert_rec(&r, "2024-09-01", "aws", "a10g", "3.50", "2.00");
	assert_rec(&r, "2024-09-02", "aws", "a10g", "1.00", "4.00");
	assert_rec(&r, "2024-09-03", "aws", "a10g", "1.00", "1.00");
	assert_int_equal(hx_convert_report(r.c)->lines_read, 7);
	assert_int_equal(hx_convert_report(r.c)->excluded[HX_EXCL_CHARGE_CATEGORY], 1);
	run_free(&r);

	convert_text(&r,
	             EH
	             "2024-09-01T00:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours,\n"
	             "2024-09-01T00:00:00Z,Usage,1,USD,AWS,Box\"Usage,x,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,\"1\"x,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,\"1\" \"x,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,oops,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\r"
	             "2024-09-01T00:00:00Z,Usage,bad,USD,AWS,BoxUsage:g5.xlarge,\"a\nb\",1,Hours\n"
	             "2024-09-01T00:00:00Z,Usage,ok,USD,AWS,BoxUsage:g5.xlarge,x,1,Hours\n");
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_int_equal(r.v.total, 7);
	/* a row that starts after a lone CR starts on that line, and the next
	 * row after its quoted newline on the line after */
	assert_viol(&r, "bill.csv:7.3", "EffectiveCost bad is not a number");
	assert_viol(&r, "bill.csv:9.3", "EffectiveCost ok is not a number");
	assert_viol(&r, "bill.csv:2", "has 10 fields, the header has 9");
	assert_viol(&r, "bill.csv:3.6", "malformed CSV");
	assert_viol(&r, "bill.csv:4.3", "malformed CSV");
	assert_viol(&r, "bill.csv:5.3", "malformed CSV");
	assert_viol(&r, "bill.csv:6.3", "EffectiveCost oops is not a number");
	run_free(&r);
}

/* gzip is read by its magic bytes; a truncated one is a violation, not a short bill. */
static void
test_gzip(void **state)
{
	char        plain[] = "/tmp/hx_test_convert_XXXXXX";
	int         fd = mkstemp(plain);
	gzFile      gz;
	char        text[8192];
	int         n = 0;
	struct run  r;
	const char *files[] = { plain, NULL };
	FILE       *f;
	long        size;

	assert_true(fd >= 0);
	n += snprintf(text + n, sizeof(text) - (size_t) n, FH);
	for (int i = 0; i < 60; i++) {
		n += snprintf(
		    text + n, sizeof(text) - (size_t) n,
		    "2024-09-%02dT00:00:00Z,Usage,,,1.5,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n",
		    i % 28 + 1);
	}
	gz = gzdopen(fd, "wb");
	assert_non_null(gz);
	gzwrite(gz, text, (unsigned) strlen(text));
	gzclose(gz);

	convert_files(&r, files); /* the name says nothing of gzip: the bytes do */
	assert_int_equal(r.st, HX_OK);
	assert_int_equal(hx_convert_report(r.c)->lines_read, 60);
	/* days 1..4 come up 3 times in 60 lines (i % 28: 0..27, 0..27, 0..3) */
	assert_rec(&r, "2024-09-01", "aws", "a10g", "4.50", "3.00");
	assert_rec(&r, "2024-09-05", "aws", "a10g", "3.00", "2.00");
	run_free(&r);

	f = fopen(plain, "r+b");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	assert_int_equal(truncate(plain, size - 30), 0);
	convert_files(&r, files);
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	{
		const char *base = strrchr(plain, '/') + 1;
		int         found = 0;
		for (size_t i = 0; i < r.v.len; i++) {
			found |= strncmp(r.v.items[i].field, base, strlen(base)) == 0 &&
			    r.v.items[i].field[strlen(base)] == ':' &&
			    strstr(r.v.items[i].description, "gzip stream is broken") != NULL;
		}
		assert_true(found);
	}
	run_free(&r);
	unlink(plain);
}

/* Two threads on a large plain file give the same answer as one, with true line numbers
 * for a problem in the second half, and when the middle '\n' is inside a quoted field. */
static void
big_file(const char *path, int rows, int bad_line, bool quoted_middle)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(FH, f);
	for (int i = 0; i < rows; i++) {
		int line = i + 2;
		if (quoted_middle && i == rows / 2 - 10000) {
			/* one row whose description spans ~2.8 MiB and 40000 lines across the middle
			 * (its start is ~1 MiB before it): split_in_quotes() checks */
			fputs("2024-09-03T00:00:00Z,Usage,,,0.5,1,USD,,AWS,,BoxUsage:g5.xlarge,\"",
			      f);
			for (int k = 0; k < 40000; k++) {
				fputs("a line of a long description, quoted, with a newline at its "
				      "end.....\n",
				      f);
			}
			fputs("\",1,Hours\n", f);
			continue;
		}
		fprintf(
		    f,
		    "2024-09-%02dT00:00:00Z,Usage,,,%s,1,USD,,AWS,,BoxUsage:g5.xlarge,,1,Hours\n",
		    i % 28 + 1, line == bad_line ? "x1" : "0.000001234567891");
	}
	fclose(f);
}

/* One thread and two say the same, to the byte: records, windows, the whole
 * report, every violation's path and text. */
static void
same_result(const char *path)
{
	struct run a, b;

	for (int k = 0; k < 2; k++) {
		struct run *r = k == 0 ? &a : &b;
		hx_violations_init(&r->v, 0);
		r->c = hx_convert_new(map, HX_BILL_AUTO, &r->v);
		hx_convert_set_threads(r->c, k + 1);
		assert_int_equal(hx_convert_add_file(r->c, path, "big.csv"), HX_OK);
		r->st = hx_convert_finish(r->c);
	}
	assert_same_run(&a, &b);
	run_free(&a);
	run_free(&b);
}

/* Whether the two-thread reader's split point (the '\n' after the middle
 * byte, see par_plan() in convert.c) lies inside a quoted field: an odd
 * number of quotes before it. */
static bool
split_in_quotes(const char *path)
{
	FILE  *f = fopen(path, "rb");
	long   size, split = -1, at = 0;
	size_t quotes = 0;
	int    ch;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	rewind(f);
	while ((ch = getc(f)) != EOF) {
		if (at >= size / 2 && ch == '\n') {
			split = at + 1;
			break;
		}
		quotes += ch == '"';
		at++;
	}
	fclose(f);
	assert_true(split > 0);
	return quotes % 2 == 1;
}

static void
test_two_threads(void **state)
{
	char              path[] = "/tmp/hx_test_convert_big_XXXXXX";
	int               fd = mkstemp(path);
	struct run        r;
	const char *const files[] = { path, NULL };

	assert_true(fd >= 0);
	close(fd);
	/* 420000 rows of ~97 bytes: 40 MiB, over the 32 MiB threshold */
	big_file(path, 420000, 0, false);
	assert_false(split_in_quotes(path));
	same_result(path);
	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	/* 420000 / 28 = 15000 rows a day of 0.000001234567891: 0.018518518365 -> 0.018519 */
	assert_rec(&r, "2024-09-01", "aws", "a10g", "0.018519", "15000.00");
	run_free(&r);

	big_file(path, 420000, 400000, false); /* in the second half */
	same_result(path);
	convert_files(&r, files);
	assert_int_equal(r.st, HX_INVALID_ARGUMENT);
	assert_int_equal(r.v.total, 1);
	{
		char want[200];
		snprintf(want, sizeof(want), "%s:400000.5", strrchr(path, '/') + 1);
		assert_viol(&r, want, "EffectiveCost x1 is not a number");
	}
	run_free(&r);

	/* the middle '\n' inside a quoted field: that one row spans 40001 lines,
	 * so every later row's line number depends on reading it right */
	big_file(path, 420000, 0, true);
	assert_true(split_in_quotes(path));
	same_result(path);
	convert_files(&r, files);
	assert_int_equal(r.st, HX_OK);
	assert_int_equal(hx_convert_report(r.c)->lines_read, 420000);
	run_free(&r);

	big_file(path, 420000, 400000, true); /* both: the error's line counts the quoted lines */
	assert_true(split_in_quotes(path));
	same_result(path);
	convert_files(&r, files);
	assert_int_equal(r.v.total, 1);
	{
		char want[200];
		snprintf(want, sizeof(want), "%s:%d.5", strrchr(path, '/') + 1, 400000 + 40000);
		assert_viol(&r, want, "EffectiveCost x1 is not a number");
	}
	run_free(&r);
	unlink(path);
}

/* The map file's own problems are violations with their line. */
static void
test_map_parse(void **state)
{
	hx_violations v;
	hx_gpu_map   *m = NULL;
	const char    bad[] = "# mapping_version=t1\nprovider,kind,key,gpu_type,gpus,source\n"
	                      "aws,family,zz1,Bad Name,,src\n"
	                      "azure,vm_size,Standard_X,x,1/0,src\n"
	                      "aws,family,zz2,zz,,\n";
	const char    good[] = "# mapping_version=t2\nprovider,kind,key,gpu_type,gpus,source\n"
	                       "aws,family,zz1,zz,,src\naws,size,zz1.large,,1/3,src\n";

	hx_violations_init(&v, 0);
	assert_int_equal(hx_gpu_map_parse("m.csv", bad, strlen(bad), &m, &v), HX_INVALID_ARGUMENT);
	assert_null(m);
	assert_string_equal(v.items[0].field, "m.csv:3.4");
	assert_string_equal(v.items[1].field, "m.csv:4.5");
	assert_string_equal(v.items[2].field, "m.csv:5.6");
	hx_violations_clear(&v);
	assert_int_equal(hx_gpu_map_parse("m.csv", good, strlen(good), &m, &v), HX_OK);
	assert_string_equal(hx_gpu_map_version(m), "t2");
	hx_gpu_map_free(m);
	assert_string_equal(hx_gpu_map_version(map), "gpu-map-v1");
	hx_violations_free(&v);
}

/* Fails once, naming the path, when the real sample bills are not there. */
static void
test_samples_present(void **state)
{
	if (!have_samples) {
		fail_msg("the real sample bills are missing: %s does not exist (../shared must be "
		         "beside the clone, as in CI, or HX_SAMPLES_DIR name them); the tests that "
		         "read them are skipped",
		         samples_dir);
	}
}

int
main(void)
{
	struct stat sb;

	samples_dir = getenv("HX_SAMPLES_DIR") != NULL ? getenv("HX_SAMPLES_DIR")
	                                               : HX_SOURCE_DIR "/../shared/samples/billing";
	have_samples = stat(samples_dir, &sb) == 0 && S_ISDIR(sb.st_mode);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_present),
		cmocka_unit_test(test_decimals),
		cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_sample_focus_special_rows),
		cmocka_unit_test(test_sample_focus_head200),
		cmocka_unit_test(test_sample_two_files_one_export),
		cmocka_unit_test(test_sample_koku_legacy),
		cmocka_unit_test(test_sample_koku_cur2),
		cmocka_unit_test(test_sample_spec_impossible_time),
		cmocka_unit_test(test_sample_azure_ea_neither),
		cmocka_unit_test(test_focus_charge_rules),
		cmocka_unit_test(test_focus_instance_sources),
		cmocka_unit_test(test_focus_13_provider),
		cmocka_unit_test(test_focus_currency),
		cmocka_unit_test(test_rounding_and_dropped),
		cmocka_unit_test(test_gpu_hours),
		cmocka_unit_test(test_cur_rules),
		cmocka_unit_test(test_cur_legacy_currency),
		cmocka_unit_test(test_bad_csv_shapes),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bom_crlf_embedded_newline),
		cmocka_unit_test(test_fast_path_csv_rules),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_map_parse),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
