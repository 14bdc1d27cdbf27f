/*
 * The data API: iocx_send, iocx_read_start, iocx_read_stop, iocx_shutdown.
 *
 * These run on any thread, so they never touch the connection's state
 * machine: they record the request under the request lock
 * (iocx__conn_req_lock(), a leaf lock, never held during a callback, so
 * calling them while holding your own locks cannot deadlock against a
 * callback) and make sure a worker looks:
 * inside the connection's own callback settle() will, elsewhere a KICK is
 * posted (one at a time).  The worker applies them in conn.c's pump().
 */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"

/* See conn.h. */
struct iocx_conn_data *iocx__conn_data_make(struct iocx_conn *c)
{
	size_t size = sizeof(struct iocx_conn_data) +
		      c->engine->backend->data_size;
	struct iocx_conn_data *d = iocx__conn_data(c), *fresh;

	if (d)
		return d;
	fresh = iocx__alloc(size);
	if (!fresh)
		return NULL;
	memset(fresh, 0, size);
	atomic_init(&fresh->queued, 0);
	/* Another thread may install one first: then use that. */
	if (atomic_compare_exchange_strong_explicit(&c->data, &d, fresh,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return fresh;
	iocx__free(fresh);
	return d;
}

/* See conn.h. */
void iocx__conn_data_free(struct iocx_conn *c)
{
	struct iocx_conn_data *d = iocx__conn_data(c);

	if (!d)
		return;
	iocx__free(d->recv_buf);
	iocx__free(d);
}

/*
 * With the request lock held: must the caller post a KICK after unlocking?  Not
 * inside c's own callback, and not when one is already on its way.
 */
static bool need_kick(struct iocx_conn *c)
{
	if (iocx__current_conn == c || c->req.kick_pending)
		return false;
	c->req.kick_pending = true;
	return true;
}

/* iocx_close() was called: no new data requests from then on. */
static bool closing(const struct iocx_conn *c)
{
	return atomic_load(&c->close_request) != CONN_CLOSE_NONE;
}

/* Post the KICK promised by need_kick(); the packet holds a reference. */
static void kick(struct iocx_conn *c)
{
	iocx__conn_ref(c);
	if (c->engine->backend->post(c->engine, IOCX_EV_KICK, c) == IOCX_OK)
		return;
	/* The request stays queued; the connection's next event applies
	 * it.  Posting to a live port does not fail in practice. */
	iocx__mutex_lock(iocx__conn_req_lock(c));
	c->req.kick_pending = false;
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	iocx__conn_unref(c);
}

/*
 * Record one request: apply(c, arg) runs under the request lock and returns
 * IOCX_OK when it recorded something a worker must act on; then a worker
 * is made to look.  The reference keeps c alive while we touch it: it may
 * finish on a worker meanwhile.  data: the request is kept in c's data
 * block, made first if c has none (IOCX_E_NOMEM when it cannot be).
 */
static int request(struct iocx_conn *c,
		   int (*apply)(struct iocx_conn *c, void *arg), void *arg,
		   bool data)
{
	bool post = false;
	int rc;

	iocx__conn_ref(c);
	if (data && !iocx__conn_data_make(c)) {
		iocx__conn_unref(c);
		return IOCX_E_NOMEM;
	}
	iocx__mutex_lock(iocx__conn_req_lock(c));
	/* Before apply() looks at the open flags: see take_requests(). */
	atomic_store(&c->req_touched, true);
	rc = apply(c, arg);
	if (rc == IOCX_OK)
		post = need_kick(c);
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	if (post)
		kick(c);
	iocx__conn_unref(c);
	return rc;
}

/* The error for a request on a connection that does not take it. */
static int refusal(const struct iocx_conn *c)
{
	return c->req.broken ? c->req.broken : IOCX_E_NOTCONN;
}

static int queue_send(struct iocx_conn *c, void *arg)
{
	struct iocx_conn_data *d = iocx__conn_data(c);
	struct iocx_send_req *r = arg;

	if (!atomic_load(&c->open_for_send) || closing(c))
		return refusal(c);
	if (iocx__sendq_admit(c, r->len) != IOCX_OK)
		return IOCX_E_LIMIT;
	if (d->req_tail)
		d->req_tail->next = r;
	else
		d->req_head = r;
	d->req_tail = r;
	return IOCX_OK;
}

static int start_reading(struct iocx_conn *c, void *arg)
{
	if (c->req.read_on)
		return IOCX_E_ALREADY;
	if (!atomic_load(&c->open_for_read) || closing(c))
		return refusal(c);
	c->req.read_on = true;
	iocx__conn_data(c)->read_start = (iocx_recv_cb)(uintptr_t)arg;
	return IOCX_OK;
}

static int stop_reading(struct iocx_conn *c, void *arg)
{
	(void)arg;
	if (!c->req.read_on)
		return IOCX_E_NOTCONN;
	if (c->req.read_stop)
		return IOCX_E_ALREADY;
	c->req.read_stop = true;
	return IOCX_OK;
}

static int shut_sending(struct iocx_conn *c, void *arg)
{
	(void)arg;
	if (c->req.shutdown)
		return IOCX_E_ALREADY;
	if (!atomic_load(&c->open_for_send) || closing(c))
		return refusal(c);
	c->req.shutdown = true;
	atomic_store(&c->open_for_send, false);
	return IOCX_OK;
}

/* See iocx.h. */
int iocx_send(iocx_conn *c, const void *buf, size_t len,
	      enum iocx_payload_ownership own, iocx_send_cb on_sent,
	      void *send_user)
{
	bool copy = own == IOCX_PAYLOAD_COPY;
	struct iocx_send_req *r;
	int rc;

	if (!c || !buf || len == 0 || !on_sent ||
	    (own != IOCX_PAYLOAD_COPY && own != IOCX_PAYLOAD_BORROW))
		return IOCX_E_INVAL;
	/* Never fits: refused before it is copied, and no on_drained
	 * would help it. */
	if (c->engine->opts.max_queued_bytes &&
	    len > c->engine->opts.max_queued_bytes)
		return IOCX_E_LIMIT;
	r = iocx__alloc(sizeof(*r) + (copy ? len : 0));
	if (!r)
		return IOCX_E_NOMEM;
	memset(r, 0, sizeof(*r));
	if (copy) {
		memcpy(r + 1, buf, len);
		r->buf = (const unsigned char *)(r + 1);
	} else {
		r->buf = buf;
	}
	r->len = len;
	r->cb = on_sent;
	r->user = send_user;

	rc = request(c, queue_send, r, true);
	if (rc != IOCX_OK)
		iocx__free(r);
	return rc;
}

/* See iocx.h. */
int iocx_read_start(iocx_conn *c, iocx_recv_cb on_recv)
{
	if (!c || !on_recv)
		return IOCX_E_INVAL;
	return request(c, start_reading, (void *)(uintptr_t)on_recv, true);
}

/* See iocx.h. */
int iocx_read_stop(iocx_conn *c)
{
	if (!c)
		return IOCX_E_INVAL;
	return request(c, stop_reading, NULL, false);
}

/* See iocx.h. */
int iocx_shutdown(iocx_conn *c)
{
	if (!c)
		return IOCX_E_INVAL;
	return request(c, shut_sending, NULL, false);
}
