/*
 * The bench's built-in loopback sink: accepts connections, reads the
 * first payload (mode read), or reads it and sends it back (mode echo:
 * a server that answers, for --expect-*), or not (mode close), closes,
 * or keeps the connection open until the sink stops (mode hold, after
 * the read).  Counts what it saw so a run can be checked against the
 * client's own counts.  One implementation per OS (sink_win.c,
 * sink_posix.c).
 */
#ifndef IOCX_BENCH_SINK_H
#define IOCX_BENCH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"

struct sink;

/*
 * Start a sink on 127.0.0.1, port chosen by the OS, with threads acceptor
 * threads (clamped to BENCH_MIN_SINK_THREADS..BENCH_MAX_SINK_THREADS); in
 * modes BENCH_SINK_READ, BENCH_SINK_ECHO and BENCH_SINK_HOLD each reads
 * up to payload bytes of a connection (until EOF), in ECHO sending every
 * piece back as it arrives, before closing (HOLD: holding) it.  Returns
 * NULL on failure (message on stderr).
 */
struct sink *sink_start(unsigned threads, enum bench_sink_mode mode,
			size_t payload);

/* The address the sink listens on, and its number of acceptor threads. */
const struct sockaddr *sink_address(const struct sink *s, size_t *len);
unsigned sink_threads(const struct sink *s);

/*
 * Wait until the sink has finished with at least `handled` connections,
 * or none finished for quiet_ms.  Returns the number finished so far.
 */
uint64_t sink_wait(struct sink *s, uint64_t handled, unsigned quiet_ms);

/* Connections accepted, and payload bytes read, so far. */
void sink_counts(const struct sink *s, uint64_t *accepted, uint64_t *bytes);

/* CPU time the sink's threads used so far, in nanoseconds. */
uint64_t sink_cpu_ns(const struct sink *s);

/* Stop the acceptors, close the listener and free the sink. */
void sink_stop(struct sink *s);

#endif /* IOCX_BENCH_SINK_H */
