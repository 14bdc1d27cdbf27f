/*
 * iocx-bench command line: the workload, the target and the outputs.
 * Portable and free of side effects (no exit, no I/O except usage()), so
 * every accepted and rejected input is unit-tested natively and under
 * Wine (tests/unit/test_bench_options.c).
 */
#ifndef IOCX_BENCH_OPTIONS_H
#define IOCX_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

enum bench_close {
	BENCH_CLOSE_ABORT,		/* RST right after the connect */
	BENCH_CLOSE_GRACEFUL,		/* FIN */
};

enum bench_sink_mode {
	BENCH_SINK_READ,		/* accept, read the payload, close */
	BENCH_SINK_CLOSE,		/* accept, close */
};

/* Where a machine-readable output goes: nowhere, stdout, or a file. */
struct bench_output {
	bool on;
	const char *path;		/* NULL = stdout */
};

struct bench_options {
	/* Workload, per phase: connects, or a duration when duration_ms > 0. */
	uint64_t connects;
	uint64_t duration_ms;
	unsigned concurrency;		/* connects in flight, >= 1 */
	unsigned workers;		/* 0 = one per CPU */
	unsigned batch;		/* completions per dequeue, 1..4096 */
	size_t payload;		/* first-payload bytes per connect */
	bool fastopen;
	bool batch_closes;	/* iocx phases: options.batch_closes */
	enum bench_close close_mode;
	uint64_t rate;		/* starts per second, 0 = unpaced */
	uint64_t warmup_connects;	/* outcomes excluded from the stats */
	uint64_t warmup_ms;		/* ... or time excluded */
	uint64_t timeout_ms;		/* connect deadline, 0 = none */
	/* Extra connects each iocx phase holds with an armed backoff timer
	 * while the workload runs, 0 = none (drive_iocx.c). */
	unsigned armed;

	/* Target: an external address, or the built-in sink. */
	bool have_target;
	struct sockaddr_storage target;
	size_t target_len;
	enum bench_sink_mode sink_mode;
	unsigned sink_threads;		/* 0 = as many as workers, >= 2 */

	/* Baseline: alternate iocx and a raw loop for rounds rounds. */
	bool baseline;
	unsigned rounds;

	struct bench_output json;
	struct bench_output csv;
};

/* Defaults that give a sensible run on a 2-vCPU machine under Wine. */
#define BENCH_DEFAULT_CONNECTS 20000
#define BENCH_DEFAULT_CONCURRENCY 64
#define BENCH_DEFAULT_PAYLOAD 64
#define BENCH_DEFAULT_BATCH 64
/* Fewest acceptor threads the sink gets by default. */
#define BENCH_MIN_SINK_THREADS 2
#define BENCH_MAX_CONCURRENCY 65536
#define BENCH_MAX_WORKERS 256
#define BENCH_MAX_SINK_THREADS 16
#define BENCH_MAX_ROUNDS 100
#define BENCH_MAX_ARMED 1000000

enum bench_parse_result {
	BENCH_PARSE_OK = 0,
	BENCH_PARSE_HELP = 1,		/* --help: print usage, exit 0 */
	BENCH_PARSE_USAGE = 2,		/* bad input: print err, exit 2 */
};

/*
 * Parse argv into *o (defaults first).  Values come as "--opt VALUE" or
 * "--opt=VALUE"; --json and --csv take an optional "=PATH" only.  On
 * BENCH_PARSE_USAGE, err holds one line naming the offending argument and
 * what is allowed.  Addresses are parsed with bench_addr_parse() (on
 * Windows, Winsock must be started).
 */
enum bench_parse_result bench_parse(int argc, char **argv,
				    struct bench_options *o, char *err,
				    size_t errlen);

/* Print the option summary to f. */
void bench_usage(FILE *f);

#endif /* IOCX_BENCH_OPTIONS_H */
