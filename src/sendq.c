/*
 * Send backpressure: the per-connection gauge of bytes queued for sending,
 * its limit (options.max_queued_bytes) and the on_drained notification,
 * and the size of the pieces a large send goes out in.
 *
 * The gauge counts a send from the moment iocx_send() accepts it until its
 * on_sent has been decided (reported, or failed with the rest of the
 * queue).  It is changed only under iocx__conn_req_lock(), so the limit
 * check and the addition are one step; it is atomic so that
 * iocx_conn_queued_bytes() reads it from any thread without the lock.
 * drain_wanted (that lock too) remembers that a send was refused, so that
 * exactly one on_drained follows once the queue falls below half the
 * limit.
 */
#include "conn.h"

/* See conn.h. */
int iocx__sendq_admit(struct iocx_conn *c, size_t len)
{
	struct iocx_conn_data *d = iocx__conn_data(c);
	size_t limit = c->engine->opts.max_queued_bytes;
	size_t queued = atomic_load_explicit(&d->queued, memory_order_relaxed);

	if (limit && len > limit)
		return IOCX_E_LIMIT;	/* never fits; iocx_send says so */
	if (limit && queued > limit - len) {
		c->drain_wanted = true;
		return IOCX_E_LIMIT;
	}
	atomic_store_explicit(&d->queued, queued + len, memory_order_relaxed);
	return IOCX_OK;
}

/* See conn.h. */
bool iocx__sendq_release(struct iocx_conn *c, size_t len)
{
	struct iocx_conn_data *d = iocx__conn_data(c);
	size_t limit = c->engine->opts.max_queued_bytes;
	size_t queued;
	bool drained = false;

	iocx__mutex_lock(iocx__conn_req_lock(c));
	queued = atomic_load_explicit(&d->queued, memory_order_relaxed);
	queued = len < queued ? queued - len : 0;
	atomic_store_explicit(&d->queued, queued, memory_order_relaxed);
	if (c->drain_wanted && queued < limit / 2) {
		c->drain_wanted = false;
		drained = true;
	}
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	return drained;
}

/* See conn.h. */
size_t iocx__sendq_chunk(const struct iocx_conn *c, size_t left)
{
	size_t chunk = c->engine->opts.send_chunk;

	if (chunk > IOCX__OP_MAX)
		chunk = IOCX__OP_MAX;
	return left < chunk ? left : chunk;
}

/* See iocx.h. */
size_t iocx_conn_queued_bytes(const iocx_conn *c)
{
	const struct iocx_conn_data *d = c ? iocx__conn_data(c) : NULL;

	/* No data block: nothing was ever sent. */
	return d ? atomic_load_explicit(&d->queued, memory_order_relaxed) : 0;
}
