/*
 * A scripted backend for unit tests of the portable core.
 *
 * The fake implements struct iocx_backend without sockets or threads:
 *  - every backend call is appended to a call log ({call, conn id, len}) so
 *    a test can assert the exact sequence the core issued;
 *  - a test scripts the result of the next call of a kind
 *    (fake_fail_next) and whether TCP Fast Open is accepted;
 *  - completions are injected with fake_complete(), which queues an
 *    IOCX_EV_IO event on the engine's FIFO; post() queues request events
 *    on the same FIFO and wait() pops them without ever blocking, so a
 *    manual engine (IOCX__ENGINE_MANUAL) is driven by fake_pump();
 *  - the backend contract of src/backend.h is enforced with cmocka
 *    assertions: connect/send/close only with no operation in flight, close
 *    at most once, nothing after close.
 *
 * A connection's operation counts as in flight from the call that issued it
 * until wait() has handed its completion to the core, exactly like an
 * OVERLAPPED whose entry still sits in the completion port.
 *
 * cancel() queues an IOCX_E_CANCELLED completion for the operation in
 * flight, as CancelIoEx does, unless the operation already has a queued
 * completion or the test turned that off with fake_set_cancel_completes().
 *
 * The RECV slot is independent of the MAIN one (connect, sends): recv()
 * leaves a receive in flight until wait() hands over the completion that
 * fake_complete_recv() or a cancel queued; a MAIN completion never frees
 * the RECV slot and vice versa.  shutdown() must find the MAIN slot idle
 * (FIN only after the data), and send() after shutdown() is a violation.
 *
 * Per-socket records (struct fake_sock) live in a table indexed by the
 * connection id and outlive the connection, so tests can inspect a socket
 * after the core freed its iocx_conn.  Ids start at 1 after fake_reset().
 *
 * Not thread-safe: only for manual engines driven by one test thread.
 */
#ifndef IOCX_TEST_FAKE_BACKEND_H
#define IOCX_TEST_FAKE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "conn.h"

/* Backend entry points, as logged and as targets of fake_fail_next(). */
enum fake_call {
	FAKE_NONE = 0,
	FAKE_ENGINE_INIT,
	FAKE_ENGINE_FINI,
	FAKE_WAIT,		/* never logged, can be failed */
	FAKE_POST,		/* len = enum iocx_event_kind */
	FAKE_OPEN,
	FAKE_CONNECT,		/* len = bytes carried with the handshake */
	FAKE_SEND,		/* len = bytes to send */
	FAKE_CONNECTED,
	FAKE_CANCEL,
	FAKE_CLOSE,		/* len = 1 for an abortive close, else 0 */
	/*
	 * The data calls come after FAKE_CLOSE so that assert_fake_log()
	 * keeps comparing only the connect-path calls; assert_fake_data_log()
	 * compares those and these.
	 */
	FAKE_RECV,		/* len = size of the receive buffer */
	FAKE_SHUTDOWN,		/* FIN; len = bytes confirmed before it */
	FAKE_CANCEL_RECV,	/* cancel of the RECV slot */
	FAKE_DISCONNECT,	/* recycling disconnect (MAIN slot) */
	FAKE_RECYCLE,		/* len = 1 when the socket was kept */
	FAKE_ADOPT,		/* id = the socket moved to another conn */
	FAKE_DETACH,		/* the socket handed to the user */
	FAKE_CALL_COUNT,
};

/* One entry of the call log. */
struct fake_rec {
	enum fake_call call;
	unsigned id;		/* connection id, 0 for engine-level calls */
	size_t len;
};

/* In an expected record: any len matches. */
#define FAKE_ANY ((size_t)-1)

/* Bytes of the payload stream each fake socket keeps for inspection. */
#define FAKE_CAPTURE_MAX (64u * 1024)
/* Sockets per fake_reset() and log entries kept. */
#define FAKE_MAX_SOCKS 4096
#define FAKE_LOG_MAX 4096

/* What the fake knows about one socket, kept after the conn is freed. */
struct fake_sock {
	unsigned id;
	struct iocx_conn *conn;	/* valid until the core frees it */
	bool opened;		/* open() succeeded */
	bool fastopen;		/* open() reported TFO on */
	enum fake_call op;	/* FAKE_CONNECT / FAKE_SEND in flight, or
				   FAKE_NONE */
	size_t op_len;		/* bytes of the operation in flight */
	bool op_done;		/* its completion is queued, not dequeued */
	bool connect_ok;	/* a connect completed with IOCX_OK */
	bool connected;		/* connected() was called */
	bool closed;
	bool abort;		/* the close was abortive */
	unsigned connects;	/* connect() calls */
	unsigned sends;		/* send() calls */
	unsigned cancels;	/* cancel() calls */
	unsigned stray_cancels;	/* cancel() with nothing in flight */
	size_t issued;		/* bytes handed to connect/send in total */
	size_t acked;		/* bytes confirmed by injected completions */
	const void *last_buf;	/* buf of the last connect/send */
	struct sockaddr_storage remote;	/* c->remote seen by connect() */
	void *recv_buf;		/* RECV slot: buffer of the receive in
				   flight (until wait() hands its
				   completion over), NULL when none */
	size_t recv_len;
	bool recv_done;		/* its completion is queued, not dequeued */
	unsigned recvs;		/* recv() calls */
	unsigned shutdowns;	/* shutdown() calls */
	bool recycled;		/* recycle() kept it (no close follows) */
	unsigned recv_cancels;	/* cancel(IOCX_OP_RECV) calls */
	unsigned stray_recv_cancels;	/* ... with no receive in flight */
	size_t received;	/* bytes delivered by fake_complete_recv */
	size_t acked_at_shutdown;	/* acked when shutdown() was called */
	unsigned local_addrs;	/* local_addr() calls */
	bool adopted;		/* moved to another conn by adopt() */
	bool kept;		/* keep() kept it after a failed connect:
				   one more connect may follow */
	unsigned keeps;		/* keep() calls that kept it */
	bool detached;		/* detach() gave it away: the core must
				   not touch it again (close is a no-op) */
	unsigned closes_after_detach;	/* close() calls after that */
	bool lost;		/* a cancel gave it up (socket_lost): only
				   close() may follow */
	unsigned char *capture;	/* stream bytes [0, min(acked+len, MAX)) */
	size_t capture_cap;
};

/* The backend itself; conn_size is sizeof(struct fake_conn). */
extern const struct iocx_backend fake_backend;

/* The fake's connection: the core's part first. */
struct fake_conn {
	struct iocx_conn base;
	unsigned id;
};

/* The native handle and local port the fake gives socket id. */
#define FAKE_NATIVE(id) ((iocx_socket_t)(1000 + (id)))
#define FAKE_LOCAL_PORT(id) ((uint16_t)(40000 + (id)))

/* Forget all sockets, log entries and scripted results. */
void fake_reset(void);
/* Release the capture buffers (call from the group teardown). */
void fake_cleanup(void);

/* The next call of that kind fails synchronously with code. */
void fake_fail_next(enum fake_call call, int code);
/* The next n calls of that kind fail synchronously with code. */
void fake_fail_times(enum fake_call call, int code, unsigned n);
/* Whether open() accepts TCP Fast Open when the request asks for it. */
void fake_set_fastopen(bool accepted);
/* Whether cancel() queues an IOCX_E_CANCELLED completion (default). */
void fake_set_cancel_completes(bool on);
/*
 * Whether that completion says the cancel gave the socket up
 * (socket_lost: the OS would not cancel, so the backend closed or shut
 * the socket down); any call on the socket but close() then fails the
 * test.  Off by default.
 */
void fake_set_cancel_loses_socket(bool on);
/* Whether recycle() keeps the socket (default) or closes it. */
void fake_set_recycle_keeps(bool keeps);

/*
 * keep(), the same-socket retry: OFF (default) answers false, so every
 * retry opens a fresh socket; ON keeps a failed connect's socket for the
 * next one; REFUSED keeps it too, but the connect on it fails at once
 * with IOCX_E_ABORTED and FAKE_OS_RECONNECT_REFUSED (as under Wine 8),
 * which reconnect_refused() takes as the OS's refusal: from then on
 * keep() answers false for that engine.
 */
enum fake_keep {
	FAKE_KEEP_OFF = 0,
	FAKE_KEEP_ON,
	FAKE_KEEP_REFUSED,
};
void fake_set_keep(enum fake_keep mode);
/* WSAECONNABORTED, the raw code of a refused reconnect. */
#define FAKE_OS_RECONNECT_REFUSED 10053u

/*
 * Queue the completion of conn's operation in flight: status, raw os_code
 * and the bytes it transferred (at most the operation's length).
 */
void fake_complete(iocx_conn *conn, int status, uint32_t os_code,
		   uint32_t bytes);

/*
 * Complete conn's receive in flight: copy data[0..len) into the buffer the
 * core gave to recv() (len at most its size) and queue an IOCX_EV_IO event
 * of the RECV slot with status and len bytes.  len 0 with IOCX_OK is EOF.
 */
void fake_complete_recv(iocx_conn *conn, int status, const void *data,
			size_t len);

/*
 * Queue the completion of conn's operation in slot op, like
 * fake_complete() (MAIN) or fake_complete_recv() without data (RECV).
 */
void fake_complete_op(iocx_conn *conn, enum iocx_op op, int status,
		      uint32_t os_code, uint32_t bytes);

/* A receive is in flight on the socket (issued, completion not dequeued). */
bool fake_recv_pending(unsigned id);

/* Posts of kind logged for one id (0 = any id, also engine-level). */
unsigned fake_count_posts(enum iocx_event_kind kind, unsigned id);

/* Events queued on e's FIFO and not yet dequeued. */
unsigned fake_pending(const iocx_engine *e);
/* Run e's manual dispatch until its FIFO is empty; returns events run. */
unsigned fake_pump(iocx_engine *e);

/* The id of a live connection and its socket record. */
unsigned fake_id(const iocx_conn *conn);
const struct fake_sock *fake_sock(unsigned id);
/* Engines whose fake state exists right now. */
unsigned fake_engines(void);
/* Contract violations noticed (also failed as they happened). */
bool fake_poisoned(void);

/* The call log. */
size_t fake_log_len(void);
const struct fake_rec *fake_log_at(size_t i);
void fake_log_clear(void);
/* Calls of that kind in the log, for one id or for any (id = 0). */
unsigned fake_count(enum fake_call call, unsigned id);
/* Name of a call kind, for messages. */
const char *fake_call_name(enum fake_call call);

/*
 * Compare the connection-level calls of the log (open, connect, send,
 * connected, cancel, close: posts and engine calls are skipped) with exp.
 * Prints both on mismatch and fails the test.
 */
void fake_assert_log_(const struct fake_rec *exp, size_t n,
		      const char *file, int line);
#define assert_fake_log(...)						\
	fake_assert_log_((const struct fake_rec[]){ __VA_ARGS__ },	\
			 sizeof((const struct fake_rec[]){ __VA_ARGS__ }) / \
			 sizeof(struct fake_rec), __FILE__, __LINE__)
/* The log must hold no connection-level call. */
#define assert_fake_log_empty() fake_assert_log_(NULL, 0, __FILE__, __LINE__)

/*
 * Like assert_fake_log(), over the connection-level calls including the
 * data calls (recv, shutdown, cancel of a receive).
 */
void fake_assert_data_log_(const struct fake_rec *exp, size_t n,
			   const char *file, int line);
#define assert_fake_data_log(...)					\
	fake_assert_data_log_((const struct fake_rec[]){ __VA_ARGS__ },	\
			      sizeof((const struct fake_rec[]){ __VA_ARGS__ }) / \
			      sizeof(struct fake_rec), __FILE__, __LINE__)

#endif /* IOCX_TEST_FAKE_BACKEND_H */
