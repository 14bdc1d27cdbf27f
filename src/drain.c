/*
 * Drain: iocx_engine_wait_idle() and the on_idle callback.
 *
 * e->busy counts connections whose start succeeded and whose on_close has
 * not returned yet.  The increment is made under the new connection's lock
 * (iocx__conn_start), before any event of it can be handled, and the
 * decrement after its on_close, so the count never goes below zero and a
 * connect that fails synchronously never makes the engine busy.  Waiters
 * sleep on e->drained; the decrement that reaches zero bumps idle_epoch and
 * broadcasts under e->drain_lock, so a waiter that checked the count under
 * the lock cannot miss it.
 */
#include "conn.h"
#include "engine.h"

/* See engine.h. */
void iocx__engine_busy(iocx_engine *e)
{
	atomic_fetch_add(&e->busy, 1);
}

/* See engine.h. */
void iocx__engine_unbusy(iocx_engine *e)
{
	if (atomic_fetch_sub(&e->busy, 1) != 1)
		return;
	iocx__mutex_lock(&e->drain_lock);
	e->idle_epoch++;
	iocx__cond_broadcast(&e->drained);
	iocx__mutex_unlock(&e->drain_lock);
	/* After the broadcast: a waiter may return while this runs. */
	if (e->opts.on_idle)
		e->opts.on_idle(e, e->opts.idle_user);
}

/* Milliseconds since start (iocx__now_ns), rounded down. */
static uint64_t elapsed_ms(uint64_t start)
{
	return (iocx__now_ns() - start) / 1000000u;
}

/* See iocx.h. */
int iocx_engine_wait_idle(iocx_engine *e, uint32_t timeout_ms)
{
	uint64_t start, epoch, waited;
	int rc = IOCX_OK;

	if (!e)
		return IOCX_E_INVAL;
	if (iocx__current_conn)
		return IOCX_E_INCALLBACK;

	start = iocx__now_ns();
	iocx__mutex_lock(&e->drain_lock);
	epoch = e->idle_epoch;
	/* Idle now, or idle at some moment since we looked first. */
	while (atomic_load(&e->busy) != 0 && e->idle_epoch == epoch) {
		if (timeout_ms == IOCX_WAIT_FOREVER) {
			iocx__cond_wait(&e->drained, &e->drain_lock);
			continue;
		}
		waited = elapsed_ms(start);
		if (waited >= timeout_ms) {
			rc = IOCX_E_TIMEDOUT;
			break;
		}
		iocx__cond_timedwait(&e->drained, &e->drain_lock,
				     (unsigned)(timeout_ms - waited));
	}
	iocx__mutex_unlock(&e->drain_lock);
	return rc;
}
