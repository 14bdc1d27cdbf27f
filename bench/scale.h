/*
 * The bench's scale mode (--scale N): one engine opens N connections and
 * holds them all open, and the run reports, step by step (1,000, 10,000,
 * 100,000 ... open, then N), what a connect costs with that many open and
 * what the engine's memory per open connection is.  docs/bench.md.
 */
#ifndef IOCX_BENCH_SCALE_H
#define IOCX_BENCH_SCALE_H

#include <stdatomic.h>
#include <stdio.h>

#include "options.h"
#include "os.h"
#include "sink.h"

/*
 * Run the scale mode against remote (the built-in sink when sink is not
 * NULL; it must hold connections, mode BENCH_SINK_HOLD).  The table goes
 * to table (NULL: none), the JSON object to json (NULL: none).  Must run
 * before any engine exists in the process (it installs a counting
 * allocator with iocx_set_allocator()).  *interrupted turns true (and
 * *signo names the signal) at the first Ctrl-C, which sets wake: the
 * run then stops opening, closes what it holds and reports.  wake is
 * the run's to wait on and set.  Returns the exit status: 0 when all N
 * connected and stayed open until closed, 128 + the signal when
 * interrupted, 1 otherwise.
 */
int scale_run(const struct bench_options *opt, const struct sockaddr *remote,
	      size_t remote_len, const char *target, struct sink *sink,
	      const atomic_bool *interrupted, const atomic_int *signo,
	      struct os_event *wake, FILE *table, FILE *json);

#endif /* IOCX_BENCH_SCALE_H */
