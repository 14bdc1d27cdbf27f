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
	_Atomic uint64_t unreleased;
	/* iocx_io_errors: send and receive outcomes by -code. */
	_Atomic uint64_t send_errors[IOCX_ERROR_COUNT];
	_Atomic uint64_t recv_errors[IOCX_ERROR_COUNT];
	/* Latency of successful connects, and the time of every name
	 * resolution that gave addresses (latency.c); set up with the set. */
	struct iocx_hist *latency;
	struct iocx_hist *resolve;
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

/*
 * Count one send or receive outcome with error status in by_code (a set's
 * send_errors or recv_errors).
 */
void iocx__stats_io_error(_Atomic uint64_t *by_code, int status);

/* Add the send and receive error counters of one set to a snapshot. */
void iocx__stats_add_io(const struct iocx_counters *s,
			struct iocx_io_errors *out);

/* Add the counters of one set to a public snapshot. */
void iocx__stats_add(const struct iocx_counters *s, struct iocx_stats *out);

/*
 * Finish a snapshot summed over sets: a gauge raised in one set and
 * lowered in another can be read as below zero; it is shown as 0.
 */
void iocx__stats_clamp(struct iocx_stats *out);

#endif /* IOCX_STATS_H */
