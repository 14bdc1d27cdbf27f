/*
 * The connection's socket as the user sees it: the on_socket hook, the
 * native handle and the addresses of an open connection.
 *
 * The accessors run on any thread, with or without the connection's
 * lock, so they never look at the state machine: the worker that reports
 * the connection open copies the handle into the connection and then
 * sets exposed (release); it clears exposed, under the request lock
 * (iocx__conn_req_lock()), before the socket goes.  A reader that saw
 * exposed set reads fields written before it; one that holds the request
 * lock and sees it set may also ask the OS about the socket (the local
 * address, read on first demand).
 */
#include <string.h>

#include "conn.h"
#include "race.h"

/* See conn.h. */
int iocx__conn_socket_hook(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	iocx_socket_cb hook = iocx__conn_opts(c)->on_socket;
	int rc;

	if (!hook)
		return IOCX_OK;
	/* A race's attempt passes on the request's user, not its own. */
	rc = hook(b->native ? b->native(c) : IOCX_INVALID_SOCKET,
		  iocx__conn_family(c),
		  c->child ? iocx__race_user(c) : c->user);
	if (rc == 0)
		return IOCX_OK;
	c->os_code = (uint32_t)rc;
	return IOCX_E_ABORTED;
}

/* See conn.h. */
void iocx__conn_expose(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	struct iocx_conn_data *d = iocx__conn_data(c);

	c->handle = b->native ? b->native(c) : IOCX_INVALID_SOCKET;
	if (d)
		d->local_known = false;
	atomic_store_explicit(&c->exposed, true, memory_order_release);
}

/* iocx__conn_unexpose() with the request lock held. */
static void unexpose_locked(struct iocx_conn *c)
{
	atomic_store_explicit(&c->exposed, false, memory_order_release);
}

/* See conn.h. */
void iocx__conn_unexpose(struct iocx_conn *c)
{
	iocx__mutex_lock(iocx__conn_req_lock(c));
	unexpose_locked(c);
	iocx__mutex_unlock(iocx__conn_req_lock(c));
}

static bool exposed(const struct iocx_conn *c)
{
	return atomic_load_explicit(&c->exposed, memory_order_acquire);
}

/* See iocx.h. */
iocx_socket_t iocx_conn_socket(const iocx_conn *c)
{
	if (!c || !exposed(c))
		return IOCX_INVALID_SOCKET;
	return c->handle;
}

/* See iocx.h.  The lock and the kept answer change behind the const. */
int iocx_conn_local_addr(const iocx_conn *conn, struct sockaddr_storage *out)
{
	struct iocx_conn *c = (struct iocx_conn *)conn;
	const struct iocx_backend *b;
	struct iocx_conn_data *d;
	struct sockaddr_storage seen;
	int rc = IOCX_OK;

	if (!c || !out)
		return IOCX_E_INVAL;
	b = c->engine->backend;
	/* The answer is kept in the data block; without memory for one,
	 * the OS is asked every time. */
	d = iocx__conn_data_make(c);
	/* The request lock keeps the socket open while the OS is asked. */
	iocx__mutex_lock(iocx__conn_req_lock(c));
	if (!exposed(c))
		rc = IOCX_E_NOTCONN;
	else if (!d || !d->local_known)
		rc = b->local_addr ? b->local_addr(c, &seen) : IOCX_E_NOTSUP;
	if (rc == IOCX_OK && d && !d->local_known) {
		/* An IPv4 or IPv6 socket's name fits the 28-byte union. */
		memcpy(&d->local_seen, &seen, sizeof(d->local_seen));
		d->local_known = true;
	}
	if (rc == IOCX_OK) {
		memset(out, 0, sizeof(*out));
		if (d)
			memcpy(out, &d->local_seen, sizeof(d->local_seen));
		else
			memcpy(out, &seen, sizeof(seen));
	}
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	return rc;
}

/*
 * iocx_detach() with c->lock held: check that c is open and idle, then
 * hand the socket over with the request lock held, so that no send or read
 * can be accepted between the check and the hand-over.
 */
static int detach_locked(struct iocx_conn *c, iocx_socket_t *out)
{
	const struct iocx_conn_data *d;
	int rc;

	if (c->state != CONN_OPEN || c->shutdown || c->idle_expired ||
	    atomic_load(&c->close_request) != CONN_CLOSE_NONE)
		return IOCX_E_NOTCONN;
	d = iocx__conn_data(c);
	if (c->send_busy || (d && d->sendq) || c->recv_busy || c->reading ||
	    c->disconnecting || (c->fin_wanted && !c->fin_sent))
		return IOCX_E_BUSY;
	iocx__mutex_lock(iocx__conn_req_lock(c));
	d = iocx__conn_data(c);		/* a request may just have made it */
	if (c->req.broken) {
		rc = c->req.broken;
	} else if ((d && (d->req_head || d->read_start)) || c->req.read_on ||
		   (c->req.shutdown && !c->fin_wanted)) {
		rc = IOCX_E_BUSY;
	} else {
		rc = c->engine->backend->detach(c, out);
		if (rc == IOCX_OK) {
			atomic_store(&c->req_touched, true);
			atomic_store(&c->open_for_send, false);
			atomic_store(&c->open_for_read, false);
			c->detached = true;
			unexpose_locked(c);
		}
	}
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	return rc;
}

/* See iocx.h. */
int iocx_detach(iocx_conn *c, iocx_socket_t *out)
{
	bool own;
	int rc;

	if (!c || !out)
		return IOCX_E_INVAL;
	own = iocx__current_conn == c;
	if (iocx__current_conn && !own)
		return IOCX_E_INCALLBACK;
	if (!c->engine->backend->detach)
		return IOCX_E_NOTSUP;
	/* c may finish on a worker as soon as its lock is free. */
	iocx__conn_ref(c);
	if (!own)
		iocx__lock_acquire(&c->lock);
	rc = detach_locked(c, out);
	if (!own)
		iocx__lock_release(&c->lock);
	/*
	 * Close what is left of the connection the usual way (a close
	 * asked for meanwhile does that too: ALREADY is fine); finish()
	 * reports IOCX_E_DETACHED.  Sealed at once, as after a graceful
	 * close's socket went: there is nothing left to reset.
	 */
	if (rc == IOCX_OK) {
		int seen = 1 + IOCX_CLOSE_GRACEFUL;

		(void)iocx_close(c, IOCX_CLOSE_GRACEFUL);
		atomic_compare_exchange_strong(&c->close_request, &seen,
					       CONN_CLOSE_DONE);
	}
	iocx__conn_unref(c);
	return rc;
}

/* See iocx.h. */
int iocx_conn_remote_addr(const iocx_conn *c, struct sockaddr_storage *out)
{
	if (!c || !out)
		return IOCX_E_INVAL;
	if (!exposed(c))
		return IOCX_E_NOTCONN;
	memset(out, 0, sizeof(*out));
	memcpy(out, &c->remote, (size_t)c->remote_len);
	return IOCX_OK;
}
