/*
 * The contract between the portable core and an OS backend.
 *
 * The core owns connections, their state machine, worker threads and
 * callbacks; a backend owns sockets and the completion queue.  Rules:
 *  - connect/send/recv return IOCX_OK when the operation is pending:
 *    exactly one IOCX_EV_IO event for it follows, naming its op slot.  A
 *    negative return means it failed synchronously and no event follows.
 *  - Two op slots per connection: MAIN (connect, then sends) and RECV; at
 *    most one operation per slot is in flight.  cancel(op) asks the OS to
 *    finish that slot's operation early and never produces an event of
 *    its own.
 *  - close releases the socket and produces no event; it is only called
 *    with no operation in flight.  close_op (optional) does the same as
 *    an operation whose event says the socket is gone.
 *  - Events carry the iocx code (converted by the backend's one error
 *    egress) and the raw OS code for diagnostics.
 *  - Where the OS will not end an operation early, cancel may give the
 *    socket up instead (close it, or shut it down): the operation then
 *    reports IOCX_E_CANCELLED with socket_lost set, and nothing more can
 *    go through that socket.  The core breaks the connection; close is
 *    still called for it later.
 *  - post queues a request event (close, shutdown, kick, stop, wake) from
 *    any thread.
 */
#ifndef IOCX_BACKEND_H
#define IOCX_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iocx.h"

struct iocx_engine;
struct iocx_conn;

enum iocx_event_kind {
	IOCX_EV_IO = 1,		/* an operation of conn finished */
	IOCX_EV_CLOSE,		/* iocx_close() from another thread */
	IOCX_EV_SHUTDOWN,	/* engine destroy closes conn */
	IOCX_EV_STOP,		/* a worker must exit (conn is NULL) */
	IOCX_EV_WAKE,		/* recompute the wait timeout (conn is NULL) */
	IOCX_EV_KICK,		/* conn has new data requests (send, read) */
};

enum iocx_op {
	IOCX_OP_MAIN = 0,	/* connect, payload and data sends */
	IOCX_OP_RECV = 1,	/* receives */
};

struct iocx_event {
	enum iocx_event_kind kind;
	struct iocx_conn *conn;
	int status;		/* IOCX_OK or IOCX_E_*, for IOCX_EV_IO */
	uint32_t os_code;	/* raw OS status behind it */
	uint32_t bytes;		/* bytes transferred, for IOCX_EV_IO */
	enum iocx_op op;	/* which slot finished, for IOCX_EV_IO */
	bool socket_lost;	/* IOCX_EV_IO: ended by giving the socket
				   up (see cancel) */
};

struct iocx_backend {
	const char *name;
	/* Bytes per connection; the backend's struct starts with iocx_conn. */
	size_t conn_size;
	/*
	 * Bytes of the backend's own part of a connection's data block
	 * (struct iocx_conn_data, conn.h), zeroed when the block is made:
	 * state only a connection that sends or reads needs (the RECV
	 * slot).  The block exists before the first recv() or send() of
	 * the connection and lives until its end.  0 = none.
	 */
	size_t data_size;

	/* Create the completion queue for e (e->opts is resolved). */
	int (*engine_init)(struct iocx_engine *e);
	/* Release it; called after all workers have exited. */
	void (*engine_fini)(struct iocx_engine *e);
	/*
	 * Dequeue up to max events for worker; 0 on timeout, <0 on error.
	 * Block at most timeout_ns when nothing is queued.  A backend whose
	 * wait is coarser rounds up (never returns early on the timeout):
	 * the core's timers, the pacing among them, fire no earlier than
	 * due and as close after as the OS wait allows.
	 */
	int (*wait)(struct iocx_engine *e, unsigned worker,
		    struct iocx_event *events, unsigned max,
		    uint64_t timeout_ns);
	/* Queue a request event for conn (NULL for STOP and WAKE). */
	int (*post)(struct iocx_engine *e, enum iocx_event_kind kind,
		    struct iocx_conn *conn);

	/* Create, bind and associate the socket; report whether TFO is on. */
	int (*open)(struct iocx_conn *c, bool *fastopen);
	/* Start connecting, carrying buf[0..len) with the handshake. */
	int (*connect)(struct iocx_conn *c, const void *buf, size_t len);
	/* Start sending buf[0..len) on a connected socket (MAIN slot). */
	int (*send)(struct iocx_conn *c, const void *buf, size_t len);
	/* Start receiving into buf[0..len) (RECV slot); 0 bytes = EOF. */
	int (*recv)(struct iocx_conn *c, void *buf, size_t len);
	/* Send FIN now (shutdown of the send side); synchronous. */
	int (*shutdown)(struct iocx_conn *c);
	/* Finish a successful connect (Windows: SO_UPDATE_CONNECT_CONTEXT). */
	int (*connected)(struct iocx_conn *c);
	/* Ask the OS to finish the operation in flight in slot op now. */
	void (*cancel)(struct iocx_conn *c, enum iocx_op op);
	/*
	 * Optional (NULL = no recycling).  disconnect: start a graceful
	 * disconnect that leaves the socket reusable (MAIN slot, an event
	 * follows; an error return means close instead).  recycle: after it
	 * succeeded, keep the socket for a later open() of the same family
	 * (true), or close it (false).  recycled_refused: connect() failed
	 * at once (c->os_code has the raw error); true when c's socket was
	 * a recycled one and the error means the OS does not reconnect such
	 * sockets: open() then stops recycling for the engine, and the core
	 * closes this socket and goes on with a fresh one.
	 */
	int (*disconnect)(struct iocx_conn *c);
	bool (*recycle)(struct iocx_conn *c);
	bool (*recycled_refused)(struct iocx_conn *c);
	/*
	 * Optional (NULL: every attempt opens a fresh socket).  keep: c's
	 * connect completed with a status the retry policy covers, the OS's
	 * own outcome (never a cancel); return true to keep the socket,
	 * bound and associated, for the next attempt's connect (the core
	 * closes it if none follows), false to have it closed.
	 * reconnect_refused: a connect on a kept socket failed at once
	 * (c->os_code has the raw error); true when that means the OS does
	 * not connect a failed socket again: keep then returns false for
	 * the engine from now on, and the core closes this socket and
	 * opens a fresh one for the attempt.
	 */
	bool (*keep)(struct iocx_conn *c);
	bool (*reconnect_refused)(struct iocx_conn *c);
	/* Close the socket, abortively (RST) when abort is true. */
	void (*close)(struct iocx_conn *c, bool abort);
	/*
	 * Optional (NULL: close() only).  Close the socket of a connection
	 * that is done (nothing in flight, never to be used again) as an
	 * operation of slot MAIN, reset first when abort: IOCX_OK when it
	 * started, and then exactly one IOCX_EV_IO event of slot MAIN
	 * follows once the socket is closed (status IOCX_OK: a close that
	 * failed was redone by hand).  Any other return: nothing was done,
	 * the core calls close() instead.
	 */
	int (*close_op)(struct iocx_conn *c, bool abort);
	/*
	 * Optional (NULL = no Happy Eyeballs race: names are refused).
	 * Move src's connected, idle socket (nothing in flight) into dst,
	 * which has none; src is left without a socket and the core never
	 * closes it.  Called with both connections' locks held.
	 */
	int (*adopt)(struct iocx_conn *dst, struct iocx_conn *src);
	/*
	 * Optional.  c has no socket yet (a connect by name) and events may
	 * be posted for it from now on: set up what post() needs and mark
	 * it socketless.  Called once, before c can be reached.
	 */
	void (*attach)(struct iocx_conn *c);
	/*
	 * Optional (NULL: no native socket to show, IOCX_E_NOTSUP).
	 * native: the socket of c's attempt, after a successful open.
	 * local_addr: getsockname of it into *out; IOCX_OK or an error.
	 */
	iocx_socket_t (*native)(struct iocx_conn *c);
	/*
	 * Optional (NULL: IOCX_E_NOTSUP).  Hand c's socket over to the
	 * user: take it out of every completion mechanism of the engine,
	 * set *out and forget it (a later close does nothing).  Called
	 * with nothing in flight; on error nothing changed.
	 */
	int (*detach)(struct iocx_conn *c, iocx_socket_t *out);
	int (*local_addr)(struct iocx_conn *c, struct sockaddr_storage *out);
};

#endif /* IOCX_BACKEND_H */
