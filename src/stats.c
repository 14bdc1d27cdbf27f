/*
 * Engine counters: outcome accounting and snapshots.
 */
#include "stats.h"

/* See stats.h. */
void iocx__stats_outcome(struct iocx_counters *s, int status)
{
	if (status == IOCX_OK) {
		iocx__count(&s->connects_ok, 1);
		return;
	}
	iocx__count(&s->connects_failed, 1);
	if (status < 0 && status > -IOCX_ERROR_COUNT)
		iocx__count(&s->errors[-status], 1);
}

/* See stats.h. */
void iocx__stats_io_error(_Atomic uint64_t *by_code, int status)
{
	if (status < 0 && status > -IOCX_ERROR_COUNT)
		iocx__count(&by_code[-status], 1);
}

static uint64_t load(const _Atomic uint64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

/* See stats.h. */
void iocx__stats_add(const struct iocx_counters *s, struct iocx_stats *out)
{
	out->connects_started += load(&s->connects_started);
	out->connects_ok += load(&s->connects_ok);
	out->connects_failed += load(&s->connects_failed);
	out->connects_cancelled += load(&s->errors[-IOCX_E_CANCELLED]);
	out->payload_bytes += load(&s->payload_bytes);
	out->fastopen_used += load(&s->fastopen_used);
	out->retries += load(&s->retries);
	out->bytes_sent += load(&s->bytes_sent);
	out->bytes_received += load(&s->bytes_received);
	out->sockets_recycled += load(&s->sockets_recycled);
	out->sockets_reused += load(&s->sockets_reused);
	out->recycle_fallbacks += load(&s->recycle_fallbacks);
	out->closed += load(&s->closed);
	/* Gauges wrap below zero in a set; the sum comes out right. */
	out->in_flight += load(&s->in_flight);
	out->open += load(&s->open);
	for (int i = 0; i < IOCX_ERROR_COUNT; i++)
		out->errors[i] += load(&s->errors[i]);
	out->total_deadline_expiries += load(&s->total_deadline_expiries);
	out->queued += load(&s->queued);
	out->paced += load(&s->paced);
	out->same_socket_retries += load(&s->same_socket_retries);
	out->same_socket_fallbacks += load(&s->same_socket_fallbacks);
	out->unreleased += load(&s->unreleased);
}

/* See stats.h. */
void iocx__stats_clamp(struct iocx_stats *out)
{
	if ((int64_t)out->in_flight < 0)
		out->in_flight = 0;
	if ((int64_t)out->open < 0)
		out->open = 0;
	if ((int64_t)out->unreleased < 0)
		out->unreleased = 0;
}

/* See stats.h. */
void iocx__stats_add_io(const struct iocx_counters *s,
			struct iocx_io_errors *out)
{
	for (int i = 0; i < IOCX_ERROR_COUNT; i++) {
		out->send[i] += load(&s->send_errors[i]);
		out->recv[i] += load(&s->recv_errors[i]);
	}
}
