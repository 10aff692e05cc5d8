/*
 * progress.h - a one-line progress display on stderr: records done, records
 * a second, and (when the total is known) percent and time left. Redrawn in
 * place with \r, at most ten times a second however often it is updated.
 * Off (every call a no-op) unless stderr is a terminal and output is text.
 */
#ifndef HELIOX_PROGRESS_H
#define HELIOX_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
	bool        on;
	bool        drawn;
	const char *label;
	uint64_t    total;          /* units expected; 0 = unknown */
	uint64_t    t0_us, last_us; /* hx_clock_us: phase start, last frame drawn */
} progress;

void progress_init(progress *p, bool on);

/* A new phase ("checking", "sending") of `total` units (0 = unknown). */
void progress_begin(progress *p, const char *label, uint64_t total);

/* `records` done so far, `units` of the phase's total (bytes or records),
 * and a short note (e.g. "batch 3/20") or NULL. */
void progress_update(progress *p, uint64_t records, uint64_t units, const char *note);

/* The phase's last frame, drawn whatever the rate limit: `records` done,
 * all of the phase's units (100%). */
void progress_finish(progress *p, uint64_t records, const char *note);

/* Erases the line, so what is printed next starts clean. Called before
 * anything else is written to stderr or stdout. */
void progress_end(progress *p);

#endif /* HELIOX_PROGRESS_H */
