/*
 * iocx-bench output: the progress line, CSV interval rows, the final
 * table and the JSON object.  Portable (stdio only).
 *
 * With several rounds, a side (iocx or raw) is summarised by its best
 * round's connects/s (noise on a shared machine only ever slows a round
 * down), with the median alongside; counts add up over all rounds and
 * latency percentiles come from the rounds' merged histograms.
 */
#ifndef IOCX_BENCH_REPORT_H
#define IOCX_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "options.h"
#include "phase.h"

/* Everything the final outputs show. */
struct run_report {
	const struct bench_options *opt;
	const char *target;		/* "127.0.0.1:1234" */
	unsigned workers;		/* resolved */
	struct phase_result *results;	/* in the order they ran */
	unsigned nresults;
	bool have_sink;
	unsigned sink_threads;
	uint64_t sink_accepted;
	uint64_t sink_bytes;
	bool sink_checked;		/* counts were comparable */
	bool sink_ok;			/* ... and matched */
	int exit_status;
};

/* One line per second on a terminal. */
void report_progress(FILE *f, const struct phase_interval *iv);

/* CSV: the header once, then one row per interval. */
void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct phase_interval *iv);

/* The human-readable summary. */
void report_table(FILE *f, const struct run_report *r);

/* One JSON object with stable keys (documented in docs/bench.md). */
void report_json(FILE *f, const struct run_report *r);

#endif /* IOCX_BENCH_REPORT_H */
