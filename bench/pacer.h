/*
 * Connection-rate pacing: start i of the schedule is due at
 * t0 + i / rate, computed exactly in integers (no drift over hours).
 * A start is never early.  A late start (the caller slept past it, or had
 * no free slot) goes as soon as the caller polls again, but the schedule
 * never builds up more debt than max_lag: past that it is re-anchored at
 * the present instead of catching up in a burst, and the re-anchor is
 * counted.  Pure functions of the times passed in, so tests drive it with
 * a fake clock.
 */
#ifndef IOCX_BENCH_PACER_H
#define IOCX_BENCH_PACER_H

#include <stdbool.h>
#include <stdint.h>

struct pacer {
	uint64_t rate;		/* starts per second, >= 1 */
	uint64_t t0_ns;		/* when start `base` is due */
	uint64_t base;		/* schedule index at t0_ns */
	uint64_t next;		/* index of the next start */
	uint64_t max_lag_ns;
	uint64_t resets;	/* re-anchors so far */
};

/* Lag allowed before re-anchoring: 10 ms or two periods, the larger. */
#define PACER_MIN_LAG_NS 10000000ull

/* Start a schedule of rate starts per second, start 0 due at now_ns. */
void pacer_init(struct pacer *p, uint64_t rate, uint64_t now_ns);

/* When start i is due (i >= p->base). */
uint64_t pacer_due_ns(const struct pacer *p, uint64_t i);

/*
 * At now_ns: if the next start is due, consume it and return true.
 * Otherwise return false and set *wait_ns to the time until it is due.
 */
bool pacer_poll(struct pacer *p, uint64_t now_ns, uint64_t *wait_ns);

#endif /* IOCX_BENCH_PACER_H */
