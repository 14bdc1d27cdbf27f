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

/*
 * One second of a phase as the JSON keeps it, for `iocx-bench merge`:
 * its start (seconds since the report's base_time) and length, and the
 * connects measured in it (after warm-up), as in the --hdr-log line.
 */
struct report_interval {
	const char *name;
	unsigned round;
	double start_s;
	double length_s;
	uint64_t connects;
};

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
	/* SIGINT / SIGTERM / Ctrl-C cut the run short: the phases that
	 * ran (the last one cut) are all there is. */
	bool interrupted;
	int exit_status;
	/* Wall-clock time the run started (seconds since the epoch; the
	 * --hdr-log BaseTime), and every phase's intervals in run order. */
	double base_time;
	const struct report_interval *intervals;
	size_t nintervals;
};

/*
 * The banner, before the first phase: version, target and workload
 * (r->results may still be empty).
 */
void report_banner(FILE *f, const struct run_report *r);

/* One line per second (stderr, whatever stdout is). */
void report_progress(FILE *f, const struct phase_interval *iv);

/* CSV: the header once, then one row per interval. */
void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct phase_interval *iv);

/* The human-readable summary. */
void report_table(FILE *f, const struct run_report *r);

/* One JSON object with stable keys (documented in docs/bench.md). */
void report_json(FILE *f, const struct run_report *r);

/* A JSON string of s (quotes and backslashes escaped, control
 * characters dropped). */
void report_json_str(FILE *f, const char *s);

/*
 * A latency object of the JSON: {count, p50, p90, p99, p999, max, min}
 * in microseconds, and mean when asked (h's sum must then be real);
 * "null" for NULL.
 */
void report_json_latency(FILE *f, const struct iocx_hist *h, bool mean);

/* The table's latency columns: p50 p90 p99 p99.9 max, in ms. */
void report_table_latency(FILE *f, const struct iocx_hist *h);

#endif /* IOCX_BENCH_REPORT_H */
