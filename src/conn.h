/*
 * The connection and its state machine.
 *
 * conn.c is the only writer of conn->state, through one transition
 * function.  Every event for a connection is handled with conn->lock held,
 * so its callbacks never run concurrently.  Lock order: a callback runs
 * with its connection's lock held and may call iocx_connect(), which takes
 * the engine lock and then the new connection's lock; nothing ever waits
 * for a connection's lock while holding the engine lock, so the order is
 * acyclic.  A race's parent takes an attempt's lock under its own
 * (race.c, take_winner); an attempt never takes its parent's.  A
 * connection's last reference drop takes the engine lock after
 * conn->lock has been released.
 *
 * References: one "alive" reference from iocx_connect() until on_close has
 * returned, one of the program's from iocx_connect() until it releases
 * the handle (its first iocx_close(), which a successful iocx_detach()
 * makes too, or destroy's reap of what it never released), plus one per
 * request event posted for the connection and one while a timer is armed
 * for it (the heap's).  The memory goes back to the
 * allocator at zero, so a handle the program holds is never freed, even
 * after an on_close the engine started (idle watchdog, destroy).  A race's
 * attempts (child) have no program reference: their race holds them.
 */
#ifndef IOCX_CONN_H
#define IOCX_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

/*
 * An address a connection holds: IPv4 or IPv6, the only families
 * iocx_connect() accepts, so 28 bytes instead of a sockaddr_storage's
 * 128 (two per connection).
 */
union iocx_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

enum iocx_conn_state {
	CONN_NEW,		/* nothing issued yet */
	CONN_QUEUED,		/* waiting for an in-flight slot (admission
				   queue): no socket; a timer only for the
				   total deadline */
	CONN_PACED,		/* holding a slot, waiting for its pacing
				   turn in the pacing FIFO: no socket (but a
				   retry's held one); a timer for the turn
				   at its head, else only for the total
				   deadline */
	CONN_RESOLVING,		/* by name: queries out, no socket yet */
	CONN_RACING,		/* by name: attempts (children) race */
	CONN_CONNECTING,	/* connect (with payload head) in flight */
	CONN_SENDING,		/* connected; payload remainder in flight */
	CONN_CANCELLING,	/* close requested or deadline expired;
				   waiting for the in-flight operation */
	CONN_RETRY_WAIT,	/* attempt failed; a backoff timer starts the
				   next attempt; the socket is closed, or
				   kept for it (held) */
	CONN_OPEN,		/* connected and reported; data may flow */
	CONN_CLOSING,		/* close requested while open: draining or
				   cancelling data operations */
	CONN_SOCKET_CLOSED,	/* outcome reported, socket closed; waiting
				   for the close request */
	CONN_CLOSED,		/* final: on_close delivered (or start failed) */
};

/*
 * close_request values: 0 = none, else 1 + enum iocx_close_mode, or DONE:
 * a graceful close whose socket has been closed (seal_close in conn.c),
 * which can no longer be made abortive.
 */
#define CONN_CLOSE_NONE 0
#define CONN_CLOSE_DONE 3
/* Destroy released a handle the program never released (engine.c). */
#define CONN_CLOSE_REAPED 4

/*
 * conn->life bits, each set once: FINISHED when on_close has returned,
 * RELEASED when the program's reference is dropped.  Whichever comes
 * second sees the other, so stats.unreleased counts a handle exactly
 * while it is finished and not released.
 */
#define CONN_LIFE_FINISHED 1u
#define CONN_LIFE_RELEASED 2u

/* One iocx_send; the data follows the struct for IOCX_PAYLOAD_COPY. */
struct iocx_send_req {
	struct iocx_send_req *next;
	const unsigned char *buf;
	size_t len;
	size_t done;			/* bytes confirmed so far */
	iocx_send_cb cb;
	void *user;
};

/*
 * Data requests made from any thread (iocx_send, iocx_read_start/stop,
 * iocx_shutdown), guarded by iocx__conn_req_lock(conn), a leaf lock never
 * held while a callback runs.  A worker takes them over under conn->lock
 * in settle().  The sends and the read callback asked for are in the
 * connection's data block (struct iocx_conn_data).
 */
struct iocx_requests {
	/* The IOCX_E_* that broke the connection, 0 = none (a byte: codes
	 * go down to -(IOCX_ERROR_COUNT - 1), asserted in conn.c). */
	int8_t broken;
	bool kick_pending;		/* an IOCX_EV_KICK is on its way */
	bool read_on;			/* read_start accepted, session not
					   ended yet (terminal on_recv due) */
	bool read_stop;			/* pending stop */
	bool shutdown;			/* FIN requested */
};

/*
 * What only a connection that sends, reads or is asked its local address
 * uses: allocated by the first iocx_send / iocx_read_start /
 * iocx_conn_local_addr (or by iocx_connect when the request has an
 * on_drained), so a connection that only connects never pays for it
 * (issue 15: engine memory per connection).  Installed once, by a
 * compare-and-swap on iocx_conn.data, and freed with the connection.
 */
struct iocx_conn_data {
	/* Under iocx__conn_req_lock(c): requests not taken yet. */
	struct iocx_send_req *req_head, *req_tail;	/* sends */
	iocx_recv_cb read_start;	/* pending start, NULL = none */

	/* Worker side (conn->lock). */
	struct iocx_send_req *sendq, *sendq_tail;	/* head in flight when
							   send_busy */
	iocx_recv_cb on_recv;
	unsigned char *recv_buf;	/* opts.recv_buffer bytes, held while
					   a read session lasts */

	/* Backpressure (sendq.c): bytes queued, changed under the request
	 * lock, read by any thread. */
	atomic_size_t queued;
	iocx_drained_cb on_drained;	/* the request's, NULL = none */

	/* The local address as getsockname gave it, once asked (socket.c,
	 * under the request lock); local_known: it holds the answer. */
	union iocx_addr local_seen;
	bool local_known;
	/* A stop under way ends the read session with this error, not
	 * IOCX_E_CANCELLED (0) (worker side). */
	int8_t read_error;
	/* The backend's part follows (backend->data_size bytes, aligned
	 * for pointers: this struct's size is a multiple of 8). */
};

/*
 * Request options most connects leave at their defaults: the retry
 * policy, SYN tuning, the on_socket hook and a local address.  A request
 * that sets any of them (or a total deadline, which implies retries)
 * carries this struct
 * in its connection's own allocation, right after the backend's struct
 * (and before a copied payload); one that sets none reads
 * iocx__conn_opts_default through iocx__conn_opts() and pays nothing for
 * them (issue 15: engine memory per connection).  Read-only once the
 * connection is made.
 */
struct iocx_conn_opts {
	struct iocx_retry retry;	/* resolved: max_attempts >= 1 */
	uint16_t syn_rtt_ms;		/* SYN tuning asked (0 = none) */
	uint8_t syn_retransmissions;
	iocx_socket_cb on_socket;	/* the request's hook, NULL = none */
	/* The request's own local address (iocx_conn.local points here). */
	union iocx_addr local;
	/* Engine clock of total_deadline_ms, 0 = none; set by iocx_connect
	 * before the connection is adopted. */
	uint64_t total_at;
};

/* The defaults: one attempt, default backoff, no tuning, no hook. */
extern const struct iocx_conn_opts iocx__conn_opts_default;

/*
 * Field order is for the cache: what a connect reads only when it opens a
 * socket (addresses, retry and SYN settings) comes first, and what every
 * completion touches comes last, next to the backend's own fields, which
 * follow this struct.  A completion then touches a few adjacent lines
 * instead of lines spread over the whole allocation (measured: docs/linux.md).
 * Every connection carries every field (issue 15: engine memory per
 * connection), so the struct has no padding hole: fields come in groups
 * of 8 bytes, 32-bit where their range allows, and the worker side's
 * flags are one-bit fields (see "Worker-side flags" below).
 */
struct iocx_conn {
	/* Set up by iocx_connect, read when an attempt opens its socket. */
	union iocx_addr remote;
	/* An IPv4 or IPv6 address's length (16 or 28) fits a byte. */
	uint8_t remote_len;		/* 0 = none yet (a name) */
	uint8_t local_len;		/* 0 = wildcard of remote family */
	bool has_opts;			/* struct iocx_conn_opts follows the
					   backend's struct */
	bool syn_tuned;			/* SYN tuning asked and the OS took
					   it */
	bool child;			/* an attempt of a race: no user
					   callbacks, stats or in-flight slot */
	bool socket_moved;		/* child: the parent took it */
	bool port_reuse;		/* SO_REUSE_UNICASTPORT took (Windows) */
	bool local_from_sources;	/* local is an engine source address */
	unsigned attempts;		/* attempts started so far */
	/* The address to bind, when local_len is not 0: the request's own
	 * (in struct iocx_conn_opts) or one of the engine's sources, so a
	 * connection that binds to none does not carry 28 bytes for it. */
	const union iocx_addr *local;
	/* By name (race.c): the race, NULL for a connect by address. */
	struct iocx_race *race;

	/* Touched by every event. */
	uint32_t timer_gen;		/* bumped at each arm and disarm */
	unsigned flags;			/* the request's IOCX_CONNECT_* */
	struct iocx_engine *engine;
	iocx_lock lock;			/* see iocx_lock (platform.h) */
	atomic_uint refs;
	/* The first change away from CONN_CLOSE_NONE is the program's
	 * release (or destroy's reap): exactly one caller makes it. */
	atomic_int close_request;
	/* Destroy could not post this connection's SHUTDOWN: a worker
	 * delivers it (engine.c), with the reference destroy took. */
	atomic_bool shutdown_missed;
	_Atomic uint8_t life;		/* CONN_LIFE_* */
	/* enum iocx_conn_state, written only by conn_transition (a byte:
	 * the enum's 13 values). */
	uint8_t state;
	/*
	 * The worker's side of the data requests without the request lock
	 * (see take_requests in conn.c).  req_touched: set under the
	 * request lock by every request before it looks at the open flags;
	 * until then req holds nothing.  open_for_*: whether requests are
	 * taken (OPEN, not shut down for sending, not broken); set by the
	 * worker, cleared by the worker or by iocx_shutdown under the
	 * request lock.  All three are sequentially consistent: a request
	 * and the worker's close each store one and then load the other.
	 */
	atomic_bool req_touched;
	atomic_bool open_for_send;
	atomic_bool open_for_read;
	atomic_bool aq_granted;		/* left the admission queue with a
					   slot (admission.c) */
	/* In the pacing FIFO (admission.c, under its lock); pq_wake: c
	 * became its head and a KICK was posted to take its turn. */
	bool pq_in;
	atomic_bool pq_wake;
	/* The socket is published to the accessors (see handle). */
	atomic_bool exposed;
	bool aq_queued;			/* in the admission queue (admission.c,
					   under its lock) */
	bool holds_slot;		/* counts against max_in_flight */
	bool uses_timer;		/* holds a timer reservation */
	/* Written by the backend's open through a pointer, so not a bit. */
	bool fastopen;
	/* Backpressure (sendq.c): drain_wanted (under the request lock):
	 * a send was refused, on_drained due. */
	bool drain_wanted;
	/* Data requests from other threads (data.c), under
	 * iocx__conn_req_lock(c). */
	struct iocx_requests req;

	/*
	 * Worker-side flags: one-bit fields, so they share one memory
	 * location, and every one of them is read and written only with
	 * conn->lock held (conn.c, socket.c); a flag written under another
	 * lock, or through a pointer, is a whole byte above.
	 */
	bool shutdown : 1;		/* engine destroy closes it */
	bool connected : 1;		/* the connect op itself succeeded */
	bool timed_out : 1;		/* this attempt's deadline expired */
	bool total_expired : 1;		/* ... and it was the total one */
	/* The data path. */
	bool send_busy : 1;
	bool recv_busy : 1;
	bool reading : 1;		/* a read session is applied */
	bool read_stopping : 1;		/* cancel issued to end it (with
					   data->read_error) */
	bool fin_wanted : 1;		/* FIN after the send queue drains */
	bool fin_sent : 1;
	bool closing_abort : 1;		/* CLOSING by reset: cancel, don't
					   drain */
	bool closing_cancelled : 1;	/* cancels for CLOSING issued */
	bool disconnecting : 1;		/* DisconnectEx for recycling in
					   flight (MAIN slot) */
	bool closing_os : 1;		/* backend->close_op in flight (MAIN
					   slot): on_close waits for it */
	bool idle_expired : 1;		/* the watchdog closes it */
	bool detached : 1;		/* iocx_detach took the socket */
	/* RETRY_WAIT or PACED: the failed attempt's socket stays open for
	 * the next attempt's connect (backend->keep). */
	bool held : 1;

	/*
	 * The socket as the accessors show it (socket.c).  handle is
	 * written by the worker that reports the connection open, before
	 * exposed is stored (release); readers on any thread load exposed
	 * (acquire) first.  exposed is cleared, under the request lock,
	 * before the socket is released, so a reader holding that lock that
	 * sees it set may ask the OS about the socket: the data block's
	 * local_seen is read that way on first demand and kept
	 * (local_known, under that lock; an IPv4 or IPv6 address, in the
	 * 28-byte union), because most programs never ask and a
	 * getsockname per connect is not free (two wineserver round trips
	 * under Wine).
	 */
	iocx_socket_t handle;

	uint32_t timer_slot;		/* heap index + 1, 0 = not armed */
	/* Which engine live list holds c: 0 = the shared one, else 1 +
	 * the index of the worker that adopted it (engine.c). */
	uint32_t live;
	/*
	 * One set of links for three lists a connection is never on at the
	 * same time: the admission queue (QUEUED, aq_queued), the pacing
	 * FIFO (PACED, pq_in; it joins only after the grant unlinked it from
	 * the queue), both in admission.c under its lock, and destroy's list
	 * of the unreleased (engine.c), made once every on_close returned.
	 */
	union {
		struct iocx_conn_link aq;
		struct iocx_conn_link pq;
		struct iocx_conn *reap_next;
	};
	iocx_connect_cb on_connect;
	iocx_close_cb on_close;
	void *user;

	/* At most IOCX_MAX_PAYLOAD (16 MiB), so 32 bits. */
	const unsigned char *payload;	/* caller's or the copy after us */
	uint32_t payload_len;
	uint32_t payload_sent;		/* confirmed by completions */
	/* Bytes of the op in flight: a send carries at most
	 * IOCX__OP_MAX (iocx__sendq_chunk), so 32 bits. */
	uint32_t payload_issued;
	uint32_t os_code;		/* raw code of the backend's last
					   synchronous failure */

	uint32_t deadline_ms;		/* per attempt, 0 = none */
	uint32_t idle_ms;		/* idle watchdog limit, 0 = none */
	uint64_t t_start;
	uint64_t last_activity;		/* engine clock of the last data */

	/* NULL until a data call needs it (struct iocx_conn_data);
	 * stored once (release), loaded with acquire by
	 * iocx__conn_data(). */
	_Atomic(struct iocx_conn_data *) data;

	struct iocx_conn *prev, *next;	/* engine live list, under its lock */
};

/*
 * The lock of c's data requests (c->req and the open flags' clearing):
 * one of the engine's IOCX_REQ_LOCKS stripes, picked by c's address.  A
 * leaf lock: nothing else is taken while it is held, so two connections
 * sharing a stripe only ever wait for each other's few stores.
 */
static inline iocx_mutex *iocx__conn_req_lock(const struct iocx_conn *c)
{
	uintptr_t h = (uintptr_t)c;

	h ^= h >> 12;
	return &c->engine->req_locks[(h >> 4) & (IOCX_REQ_LOCKS - 1)];
}

/* The backend's part of data block d (backend->data_size bytes). */
static inline void *iocx__conn_data_backend(struct iocx_conn_data *d)
{
	return d + 1;
}

/* c's rarely set request options (struct iocx_conn_opts). */
static inline const struct iocx_conn_opts *
iocx__conn_opts(const struct iocx_conn *c)
{
	if (!c->has_opts)
		return &iocx__conn_opts_default;
	return (const struct iocx_conn_opts *)((const char *)c +
					       c->engine->backend->conn_size);
}

/* c's data block, or NULL while no data call has needed one. */
static inline struct iocx_conn_data *iocx__conn_data(const struct iocx_conn *c)
{
	return atomic_load_explicit(&((struct iocx_conn *)c)->data,
				    memory_order_acquire);
}

/*
 * data.c.  c's data block, allocated and installed now if it has none
 * (any thread, no lock needed); NULL when out of memory.  free: release
 * it with what it holds (the connection's end; no send left in it).
 */
struct iocx_conn_data *iocx__conn_data_make(struct iocx_conn *c);
void iocx__conn_data_free(struct iocx_conn *c);

/* The family of the connection's remote address. */
static inline int iocx__conn_family(const struct iocx_conn *c)
{
	return c->remote.sa.sa_family;
}

/*
 * Whether c's socket is a plain one: no TFO, no SYN tuning, not a
 * dual-stack (v4-mapped) IPv6 socket.  Socket recycling keeps and hands
 * out plain sockets only, so a kept socket carries no option the next
 * connect did not ask for.
 */
bool iocx__conn_plain_socket(const struct iocx_conn *c);

/* The connection whose event this thread is handling, or NULL. */
extern IOCX_THREAD_LOCAL struct iocx_conn *iocx__current_conn;

/*
 * Open c's socket for an attempt (backend->open), binding to the engine's
 * next source address of c's family when c has no local address of its
 * own, and moving on to the following source when one has no port left
 * (sources.c).
 */
int iocx__conn_open(struct iocx_conn *c);

/*
 * Issue the first operation of a freshly opened connection, with c->lock
 * held.  Returns IOCX_OK (an event will follow) or the synchronous error;
 * on error the state is CONN_CLOSED and the socket is closed.
 */
int iocx__conn_start(struct iocx_conn *c);

/*
 * Handle one event for c: takes c->lock, runs the transition and any
 * callbacks, releases it.  Drops the references the event carried.
 */
void iocx__conn_handle(struct iocx_conn *c, const struct iocx_event *ev);

/* Take / drop a reference; the last drop frees c via the engine. */
void iocx__conn_ref(struct iocx_conn *c);
/*
 * Drop the program's reference of c (not a race's attempt), whose
 * close_request the caller just moved away from CONN_CLOSE_NONE: the
 * program's release, or destroy's on its behalf.
 */
void iocx__conn_release(struct iocx_conn *c);
/* Take a reference unless the count already reached zero. */
bool iocx__conn_tryref(struct iocx_conn *c);
void iocx__conn_unref(struct iocx_conn *c);

/*
 * A timer of c armed with generation gen fired (called without locks; the
 * heap's reference is dropped).  Stale generations are ignored.
 */
void iocx__conn_timer(struct iocx_conn *c, uint32_t gen);

/*
 * Start an attempt of parent's race (race.c): an internal connection to
 * addr, without payload, whose callbacks are on_connect/on_close with
 * user.  Called with parent->lock held.  Returns IOCX_OK and sets *out
 * (with a reference of the caller's), or the synchronous error.
 */
int iocx__conn_spawn(struct iocx_conn *parent,
		     const struct sockaddr_storage *addr, int len,
		     iocx_connect_cb on_connect, iocx_close_cb on_close,
		     void *user, struct iocx_conn **out);

/*
 * The failures the retry policy covers (struct iocx_retry): refused,
 * unreachable network, timed out.  A race (race.c) is raced again only
 * when each of its attempts failed with one of them.
 */
bool iocx__conn_retryable(int status);

/*
 * socket.c.  Run c's on_socket hook on its freshly opened socket: IOCX_OK,
 * or IOCX_E_ABORTED with the hook's value in c->os_code (the socket is
 * still open; the caller closes it).
 */
int iocx__conn_socket_hook(struct iocx_conn *c);

/* Publish c's socket to the accessors (c->lock held, before
 * on_connect(IOCX_OK)). */
void iocx__conn_expose(struct iocx_conn *c);

/* Withdraw it: the socket is about to be released (c->lock held, not
 * the request lock, which this takes). */
void iocx__conn_unexpose(struct iocx_conn *c);

/*
 * The most bytes one send operation carries, whatever options.send_chunk
 * says: completions count bytes in 32 bits (Linux moves at most about
 * 2 GiB per call anyway), so the op's length fits conn->payload_issued.
 */
#define IOCX__OP_MAX (1u << 30)

/*
 * sendq.c.  admit: with the request lock held, count len more bytes queued, or
 * return IOCX_E_LIMIT (counting nothing) when that would pass
 * options.max_queued_bytes.  release: a send of len bytes left the queue
 * (c->lock held, the request lock not); true when on_drained is due now.
 * chunk: how much of left bytes one send operation carries (at most
 * IOCX__OP_MAX).
 */
int iocx__sendq_admit(struct iocx_conn *c, size_t len);
bool iocx__sendq_release(struct iocx_conn *c, size_t len);
size_t iocx__sendq_chunk(const struct iocx_conn *c, size_t left);

/* Unlink c from its engine and free it (refs reached zero). */
void iocx__engine_forget(struct iocx_engine *e, struct iocx_conn *c);

#endif /* IOCX_CONN_H */
