/*
 * The contract between the portable core and an OS backend.
 *
 * The core owns connections, their state machine, worker threads and
 * callbacks; a backend owns sockets and the completion queue.  Rules:
 *  - connect/send return IOCX_OK when the operation is pending: exactly one
 *    IOCX_EV_IO event for it follows.  A negative return means it failed
 *    synchronously and no event follows.
 *  - At most one operation per connection is in flight; cancel asks the OS
 *    to finish it early and never produces an event of its own.
 *  - close releases the socket and produces no event; it is only called
 *    with no operation in flight.
 *  - Events carry the iocx code (converted by the backend's one error
 *    egress) and the raw OS code for diagnostics.
 *  - post queues a request event (close, shutdown, stop) from any thread.
 */
#ifndef IOCX_BACKEND_H
#define IOCX_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iocx_engine;
struct iocx_conn;

enum iocx_event_kind {
	IOCX_EV_IO = 1,		/* an operation of conn finished */
	IOCX_EV_CLOSE,		/* iocx_close() from another thread */
	IOCX_EV_SHUTDOWN,	/* engine destroy closes conn */
	IOCX_EV_STOP,		/* a worker must exit (conn is NULL) */
	IOCX_EV_WAKE,		/* recompute the wait timeout (conn is NULL) */
};

struct iocx_event {
	enum iocx_event_kind kind;
	struct iocx_conn *conn;
	int status;		/* IOCX_OK or IOCX_E_*, for IOCX_EV_IO */
	uint32_t os_code;	/* raw OS status behind it */
	uint32_t bytes;		/* bytes transferred, for IOCX_EV_IO */
};

struct iocx_backend {
	const char *name;
	/* Bytes per connection; the backend's struct starts with iocx_conn. */
	size_t conn_size;

	/* Create the completion queue for e (e->opts is resolved). */
	int (*engine_init)(struct iocx_engine *e);
	/* Release it; called after all workers have exited. */
	void (*engine_fini)(struct iocx_engine *e);
	/* Dequeue up to max events for worker; 0 on timeout, <0 on error. */
	int (*wait)(struct iocx_engine *e, unsigned worker,
		    struct iocx_event *events, unsigned max,
		    unsigned timeout_ms);
	/* Queue a request event for conn (NULL for STOP and WAKE). */
	int (*post)(struct iocx_engine *e, enum iocx_event_kind kind,
		    struct iocx_conn *conn);

	/* Create, bind and associate the socket; report whether TFO is on. */
	int (*open)(struct iocx_conn *c, bool *fastopen);
	/* Start connecting, carrying buf[0..len) with the handshake. */
	int (*connect)(struct iocx_conn *c, const void *buf, size_t len);
	/* Start sending buf[0..len) on a connected socket. */
	int (*send)(struct iocx_conn *c, const void *buf, size_t len);
	/* Finish a successful connect (Windows: SO_UPDATE_CONNECT_CONTEXT). */
	int (*connected)(struct iocx_conn *c);
	/* Ask the OS to finish the in-flight operation now. */
	void (*cancel)(struct iocx_conn *c);
	/* Close the socket, abortively (RST) when abort is true. */
	void (*close)(struct iocx_conn *c, bool abort);
};

#endif /* IOCX_BACKEND_H */
