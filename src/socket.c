/*
 * The connection's socket as the user sees it: the on_socket hook, the
 * native handle and the addresses of an open connection.
 *
 * The accessors run on any thread, with or without the connection's
 * lock, so they never look at the state machine: the worker that reports
 * the connection open copies what they show into the connection and then
 * sets exposed (release); it clears exposed before the socket goes.  A
 * reader that saw exposed set reads fields written before it and never
 * written again.
 */
#include <string.h>

#include "conn.h"

/* See conn.h. */
int iocx__conn_socket_hook(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	int rc;

	if (!c->on_socket)
		return IOCX_OK;
	rc = c->on_socket(b->native ? b->native(c) : IOCX_INVALID_SOCKET,
			  iocx__conn_family(c), c->user);
	if (rc == 0)
		return IOCX_OK;
	c->os_code = (uint32_t)rc;
	return IOCX_E_ABORTED;
}

/* See conn.h. */
void iocx__conn_expose(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;

	memset(&c->local_seen, 0, sizeof(c->local_seen));
	c->handle = b->native ? b->native(c) : IOCX_INVALID_SOCKET;
	c->local_rc = b->local_addr ? b->local_addr(c, &c->local_seen)
				    : IOCX_E_NOTSUP;
	atomic_store_explicit(&c->exposed, true, memory_order_release);
}

/* See conn.h. */
void iocx__conn_unexpose(struct iocx_conn *c)
{
	atomic_store_explicit(&c->exposed, false, memory_order_release);
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

/* See iocx.h. */
int iocx_conn_local_addr(const iocx_conn *c, struct sockaddr_storage *out)
{
	if (!c || !out)
		return IOCX_E_INVAL;
	if (!exposed(c))
		return IOCX_E_NOTCONN;
	if (c->local_rc != IOCX_OK)
		return c->local_rc;
	*out = c->local_seen;
	return IOCX_OK;
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
