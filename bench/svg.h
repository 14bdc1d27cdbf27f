/*
 * iocx-bench --svg: a picture of a run, plain SVG written by hand (no
 * plotting dependency).  Left, the latency percentile spectrum of every
 * phase side by side (HdrHistogram's "nines" axis: 0 %, 90 %, 99 %,
 * 99.9 %, ...); right, connects per second over time, per phase.  Each
 * phase is one <polyline class="series" data-phase="iocx #1"> in each of
 * the groups <g id="spectrum"> and <g id="rate">.  Portable (stdio only).
 */
#ifndef IOCX_BENCH_SVG_H
#define IOCX_BENCH_SVG_H

#include <stdio.h>

#include "report.h"

/* One per-second rate point of a phase (from its intervals). */
struct svg_rate {
	const char *name;		/* phase name, "iocx" or "raw" */
	unsigned round;
	double t_s;			/* end of the interval, phase time */
	double connects_per_sec;
};

/* Write the picture of r, with the rate points rates[0..n). */
void report_svg(FILE *f, const struct run_report *r,
		const struct svg_rate *rates, size_t n);

#endif /* IOCX_BENCH_SVG_H */
