/*
 * clock.h - the one monotonic clock: durations, deadlines, progress rates.
 */
#ifndef HELIOX_BASE_CLOCK_H
#define HELIOX_BASE_CLOCK_H

#include <stdint.h>

/* Microseconds of CLOCK_MONOTONIC: never goes back, unrelated to the date. */
uint64_t hx_clock_us(void);

#endif /* HELIOX_BASE_CLOCK_H */
