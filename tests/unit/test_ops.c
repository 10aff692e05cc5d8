/*
 * test_ops.c - the JSON log format (every line parses, whatever the message
 * holds) and the metrics text (per-worker counters summed, cumulative
 * histogram buckets), without a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "metrics.h"

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	char        path[] = "/tmp/hx_test_ops_XXXXXX";
	int         fd = mkstemp(path), saved = dup(STDERR_FILENO);
	static char buf[65536];
	ssize_t     n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
log_awkward(void)
{
	char          big[6000];
	hx_log_fields f = { .method = "ingest",
		            .peer = "[::1]:5\"5",
		            .code = "OK",
		            .has_counts = true,
		            .received = 3,
		            .inserted = 2,
		            .failed = 1,
		            .has_duration = true,
		            .duration_us = 42 };

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	hx_log_set_format(HX_LOG_JSON);
	hx_info("rid-1",
	        "quote \" backslash \\ ctl \x01 tab \t nl \n bad \xff\xfe utf8 \xc3\xa9 end");
	hx_log_fields_line(HX_LOG_INFO, "rid-2", &f, "call %s", "done");
	hx_warn(NULL, "%s", big);
	hx_log_set_format(HX_LOG_TEXT);
}

static void
test_json_lines_parse(void **state)
{
	char *out = capture(log_awkward), *line, *save = NULL;
	int   n = 0;

	(void) state;
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);

		assert_non_null(o);
		assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "ts")));
		assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "msg")));
		if (n == 0) {
			const char *msg = cJSON_GetObjectItem(o, "msg")->valuestring;
			assert_string_equal(cJSON_GetObjectItem(o, "request_id")->valuestring,
			                    "rid-1");
			assert_non_null(
			    strstr(msg, "quote \" backslash \\ ctl \x01 tab \t nl \n bad "));
			assert_non_null(strstr(msg, "\xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9 end"));
			assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "info");
		} else if (n == 1) {
			assert_string_equal(cJSON_GetObjectItem(o, "peer")->valuestring,
			                    "[::1]:5\"5");
			assert_int_equal(cJSON_GetObjectItem(o, "inserted")->valueint, 2);
			assert_int_equal(cJSON_GetObjectItem(o, "duration_us")->valueint, 42);
			assert_string_equal(cJSON_GetObjectItem(o, "code")->valuestring, "OK");
		} else {
			/* cut to one line, and still an object */
			assert_true(strlen(line) <= 4096);
			assert_null(cJSON_GetObjectItem(o, "request_id"));
			assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "warn");
		}
		cJSON_Delete(o);
		n++;
	}
	assert_int_equal(n, 3);
}

static double
sample(const char *text, const char *key)
{
	char        line[256];
	const char *p;

	/* At a line's start: "# HELP name ..." must not match. */
	snprintf(line, sizeof(line), "\n%s", key);
	p = strstr(text, line);
	assert_non_null(p);
	return strtod(p + strlen(line), NULL);
}

static void
test_metrics_sum_slots_and_cumulate(void **state)
{
	hx_metrics      m;
	char           *text;
	size_t          len;
	hx_metric_event a = { .method = HX_METHOD_INGEST,
		              .code = HX_OK,
		              .duration_us = 700,
		              .has_records = true,
		              .records = { 5, 1, 2, 0, 0 } };
	hx_metric_event b = { .method = HX_METHOD_INGEST,
		              .code = HX_OK,
		              .duration_us = 30000000,
		              .has_records = true,
		              .records = { 1, 0, 0, 3, 0 } };
	hx_metric_event c = { .method = hx_metric_method_of("-"),
		              .code = HX_UNAUTHENTICATED,
		              .duration_us = 10,
		              .auth_failed = true };

	(void) state;
	assert_int_equal(hx_metrics_init(&m, 2), HX_OK);
	hx_metrics_record(&m.slots[0], &a);
	hx_metrics_record(&m.slots[1], &b);
	hx_metrics_record(&m.slots[1], &c);
	assert_int_equal(hx_metrics_render(&m, &text, &len), HX_OK);
	assert_int_equal(strlen(text), len);
	assert_true(sample(text, "heliox_rpc_requests_total{method=\"ingest\",code=\"OK\"} ") == 2);
	assert_true(
	    sample(text,
	           "heliox_rpc_requests_total{method=\"unknown\",code=\"UNAUTHENTICATED\"} ") == 1);
	assert_true(sample(text, "heliox_ingest_records_total{outcome=\"inserted\"} ") == 6);
	assert_true(sample(text, "heliox_ingest_records_total{outcome=\"failed\"} ") == 3);
	assert_true(sample(text, "heliox_auth_failures_total ") == 1);
	/* 700 us is above 0.0005 s and within 0.001 s; 30 s only in +Inf */
	assert_true(
	    sample(text, "heliox_rpc_duration_seconds_bucket{method=\"ingest\",le=\"0.0005\"} ") ==
	    0);
	assert_true(
	    sample(text, "heliox_rpc_duration_seconds_bucket{method=\"ingest\",le=\"0.001\"} ") ==
	    1);
	assert_true(
	    sample(text, "heliox_rpc_duration_seconds_bucket{method=\"ingest\",le=\"10\"} ") == 1);
	assert_true(
	    sample(text, "heliox_rpc_duration_seconds_bucket{method=\"ingest\",le=\"+Inf\"} ") ==
	    2);
	assert_true(sample(text, "heliox_rpc_duration_seconds_count{method=\"ingest\"} ") == 2);
	assert_true(sample(text, "heliox_rpc_duration_seconds_sum{method=\"ingest\"} ") == 30.0007);
	assert_non_null(strstr(text, "# TYPE heliox_rpc_duration_seconds histogram\n"));
	free(text);
	hx_metrics_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines_parse),
		cmocka_unit_test(test_metrics_sum_slots_and_cumulate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
