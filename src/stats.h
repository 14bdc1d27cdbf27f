/*
 * Engine counters: relaxed atomics, bumped on the paths that own the event
 * and read one by one by iocx_engine_stats().  An engine keeps one set per
 * worker, written only by that worker, and one shared set for every other
 * thread (see iocx__counters in engine.h): counters bumped on every
 * connect would otherwise bounce their cache lines between the workers'
 * CPUs.  A snapshot adds the sets up.
 */
#ifndef IOCX_STATS_H
#define IOCX_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "iocx.h"

struct iocx_hist;

struct iocx_counters {
	_Atomic uint64_t connects_started;
	_Atomic uint64_t connects_ok;
	_Atomic uint64_t connects_failed;
	_Atomic uint64_t payload_bytes;
	_Atomic uint64_t fastopen_used;
	_Atomic uint64_t retries;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t sockets_recycled;
	_Atomic uint64_t sockets_reused;
	_Atomic uint64_t recycle_fallbacks;
	_Atomic uint64_t closed;
	_Atomic uint64_t in_flight;
	_Atomic uint64_t open;
	_Atomic uint64_t errors[IOCX_ERROR_COUNT];
	_Atomic uint64_t total_deadline_expiries;
	_Atomic uint64_t queued;
	_Atomic uint64_t paced;
	_Atomic uint64_t same_socket_retries;
	_Atomic uint64_t same_socket_fallbacks;
	/* Latency of successful connects (latency.c); set up with the set. */
	struct iocx_hist *latency;
};

/* Add n to a counter. */
static inline void iocx__count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* Subtract n from a gauge. */
static inline void iocx__uncount(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_sub_explicit(counter, n, memory_order_relaxed);
}

/* Count one reported connect outcome with status (IOCX_OK or an error). */
void iocx__stats_outcome(struct iocx_counters *s, int status);

/* Add the counters of one set to a public snapshot. */
void iocx__stats_add(const struct iocx_counters *s, struct iocx_stats *out);

/*
 * Finish a snapshot summed over sets: a gauge raised in one set and
 * lowered in another can be read as below zero; it is shown as 0.
 */
void iocx__stats_clamp(struct iocx_stats *out);

#endif /* IOCX_STATS_H */
