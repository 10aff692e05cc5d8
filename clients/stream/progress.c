/*
 * progress.c - see progress.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"

#include "progress.h"

#define PROGRESS_MIN_US 100000u /* 10 redraws a second at most */

void
progress_init(progress *p, bool on)
{
	memset(p, 0, sizeof(*p));
	p->on = on;
}

void
progress_begin(progress *p, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	p->t0_us = hx_clock_us();
	p->last_us = 0; /* the first update draws at once */
}

/* 1234567 -> "1,234,567": large counts are read at a glance. */
static void
grouped(uint64_t v, char out[32])
{
	char   digits[24];
	size_t n = (size_t) snprintf(digits, sizeof(digits), "%" PRIu64, v), i, o = 0;

	for (i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0) {
			out[o++] = ',';
		}
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

/* " 42%  ETA 1m05s", or "" when the total is unknown or nothing moved. */
static void
eta_text(const progress *p, uint64_t units, double secs, char *out, size_t outsz)
{
	double left;

	out[0] = '\0';
	if (p->total == 0 || units == 0 || secs <= 0 || units > p->total) {
		return;
	}
	if (units == p->total) {
		snprintf(out, outsz, "  100%%  done in %um%02us", (unsigned) (secs / 60),
		         (unsigned) secs % 60);
		return;
	}
	left = (double) (p->total - units) * secs / (double) units;
	snprintf(out, outsz, "  %3u%%  ETA %um%02us",
	         (unsigned) ((double) units * 100.0 / (double) p->total), (unsigned) (left / 60),
	         (unsigned) left % 60);
}

static void
draw(progress *p, uint64_t records, uint64_t units, const char *note, bool force)
{
	uint64_t now;
	double   secs;
	char     n[32], rate[32], eta[48];

	if (!p->on) {
		return;
	}
	now = hx_clock_us();
	if (!force && p->last_us != 0 && now - p->last_us < PROGRESS_MIN_US) {
		return;
	}
	p->last_us = now;
	secs = (double) (now - p->t0_us) / 1e6;
	grouped(records, n);
	grouped(secs > 0 ? (uint64_t) ((double) records / secs) : 0, rate);
	eta_text(p, units, secs, eta, sizeof(eta));
	/* \033[K clears what a longer previous line left behind. */
	fprintf(stderr, "\r%s %s records  %s rec/s%s%s%s\033[K", p->label, n, rate, eta,
	        note != NULL ? "  " : "", note != NULL ? note : "");
	fflush(stderr);
	p->drawn = true;
}

void
progress_update(progress *p, uint64_t records, uint64_t units, const char *note)
{
	draw(p, records, units, note, false);
}

void
progress_finish(progress *p, uint64_t records, const char *note)
{
	draw(p, records, p->total, note, true);
}

void
progress_end(progress *p)
{
	if (p->on && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->drawn = false;
	}
}
