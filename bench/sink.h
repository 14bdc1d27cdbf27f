/*
 * The bench's built-in loopback sink: accepts connections, reads the first
 * payload (if any), closes.  Counts what it saw so a run can be checked.
 */
#ifndef IOCX_BENCH_SINK_H
#define IOCX_BENCH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "iocx.h"

struct sink;

/*
 * Start a sink on 127.0.0.1 (port 0 = ephemeral) with threads acceptor
 * threads, each reading up to payload bytes per connection before closing.
 * Returns NULL on failure (message on stderr).
 */
struct sink *sink_start(unsigned threads, size_t payload);

/* The address the sink listens on. */
const struct sockaddr *sink_address(const struct sink *s, int *len);

/* Stop the acceptors, close the listener and free the sink. */
void sink_stop(struct sink *s, uint64_t *accepted, uint64_t *bytes);

#endif /* IOCX_BENCH_SINK_H */
