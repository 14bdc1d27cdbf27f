/*
 * The connection state machine.
 *
 *   NEW --start--> CONNECTING --ok, payload left--> SENDING --ok, all--> OPEN
 *    start fails |   |  ^  \--ok, all carried---------------------------> |
 *                v   |  |           (partial send: SENDING again)        |
 *             CLOSED |  | backoff timer                                  |
 *                    |  RETRY_WAIT <--- failed attempt, retry left       |
 *                    | error, no retry          error |                  |
 *                    v                                v                  |
 *               SOCKET_CLOSED <-----------------------+                  |
 *                 ^       |                                              |
 *       op done   |       | close                              close     |
 *   CANCELLING ---+       v                                              |
 *       ^              CLOSED <------------------------------------------+
 *       |
 *   close or deadline while CONNECTING or SENDING (cancel issued)
 *
 * Before the first attempt a request may wait without a socket: QUEUED
 * for an in-flight slot (admission queue), PACED for its pacing turn
 * (also before a retry); both go on to CONNECTING on a fresh socket, or
 * to SOCKET_CLOSED on close or the total deadline.  A retry may instead
 * connect again on the socket its failed attempt kept (c->held: IOCP's
 * same-socket retry), which RETRY_WAIT and PACED then hold.
 *
 * A connect by name, once it holds its slot, goes to RESOLVING, to
 * RACING once attempts run, and leaves both only through race_advance()
 * (race.h, docs/names.md): to CONNECTING (or PACED) for a single address,
 * to SENDING or OPEN with the winner's socket, to RETRY_WAIT when the
 * retry policy races again (its timer goes back to RESOLVING), or to
 * SOCKET_CLOSED with the failure.
 *
 * docs/architecture.md has the full table.  conn_transition() is the only
 * function that changes state, always via set_state(), which asserts the
 * source state.  Events are handled with conn->lock held and the connection
 * recorded in iocx__current_conn, so a callback can call iocx_close() on
 * its own connection without a round trip: the request is picked up by
 * settle() once the callback returns.
 */
#include <assert.h>
#include <string.h>

#include "admission.h"
#include "conn.h"
#include "histogram.h"
#include "race.h"

IOCX_THREAD_LOCAL struct iocx_conn *iocx__current_conn;

enum conn_event_kind {
	CE_START,	/* issue the first operation */
	CE_IO_DONE,	/* the operation in flight finished */
	CE_TIMER,	/* the connection's timer fired */
	CE_CLOSE,	/* close requested (user or engine shutdown) */
	CE_ADMIT,	/* the admission queue granted a slot */
};

struct conn_event {
	enum conn_event_kind kind;
	int status;		/* CE_IO_DONE: iocx code of the operation */
	uint32_t os_code;
	uint32_t bytes;
	uint32_t timer_gen;	/* CE_TIMER: generation it was armed with */
	enum iocx_op op;	/* CE_IO_DONE: which slot finished */
	bool socket_lost;	/* CE_IO_DONE: see backend.h */
	int result;		/* CE_START: what to return to the caller */
};

/* conn.h keeps these in a byte each. */
_Static_assert(IOCX_ERROR_COUNT <= 128, "req.broken is an int8_t");
_Static_assert(CONN_CLOSED <= UINT8_MAX, "state is a uint8_t");

static bool pump(struct iocx_conn *c);
static bool data_io_done(struct iocx_conn *c, const struct conn_event *ev);
static void break_reading(struct iocx_conn *c, int status);

static void set_state(struct iocx_conn *c, enum iocx_conn_state from,
		      enum iocx_conn_state to)
{
	assert(c->state == from);
	(void)from;
	c->state = (uint8_t)to;
}

static bool close_wanted(const struct iocx_conn *c)
{
	return c->shutdown || c->idle_expired ||
	       atomic_load_explicit(&c->close_request,
				    memory_order_acquire) != CONN_CLOSE_NONE;
}

static bool close_abortive(const struct iocx_conn *c)
{
	return atomic_load(&c->close_request) == 1 + IOCX_CLOSE_ABORT;
}

/*
 * Deliver on_connect.  The deadline is disarmed and in_flight drops first,
 * so the callback may start the next connect.
 */
static void report(struct iocx_conn *c, int status, uint32_t os_code)
{
	struct iocx_engine *e = c->engine;
	struct iocx_connect_result r = {
		.status = status,
		.os_code = status == IOCX_OK ? 0 : os_code,
		.payload_sent = c->payload_sent,
		.fastopen = c->fastopen,
		.syn_tuned = c->syn_tuned,
		.attempts = c->attempts,
		.addresses_tried = iocx__race_addresses_tried(c),
		.resolve_ns = iocx__race_resolve_ns(c),
		.peer = c->remote_len ? (const struct sockaddr *)&c->remote
				      : NULL,
		.peer_len = (uint32_t)c->remote_len,
		.port_reuse = c->port_reuse,
	};
	struct iocx_counters *set = iocx__counters(e);

	iocx__engine_disarm(e, c);
	if (c->holds_slot) {
		c->holds_slot = false;
		iocx__engine_in_flight_done(e, set);
	}
	/* Read after the slot's hand-off (which may post to the queue's
	 * head), so that on_connect's own clock minus latency_ns is the
	 * start's stamp to within the few counters below (pace-accuracy). */
	r.latency_ns = e->clock() - c->t_start;
	/* A race's attempt is no connect of the user's. */
	if (!c->child) {
		iocx__count(&set->payload_bytes, c->payload_sent);
		iocx__stats_outcome(set, status);
		/* IOCX_NO_LATENCY_RECORD: measurement builds only
		 * (meson_options). */
#ifndef IOCX_NO_LATENCY_RECORD
		if (status == IOCX_OK)
			iocx__hist_record(set->latency, r.latency_ns);
#endif
	}
	/* A borrowed payload is the caller's again from here on. */
	c->payload = NULL;
	c->on_connect(c, &r, c->user);
}

/*
 * The socket is about to be closed for good, reset when abort.  A graceful
 * close asked for is sealed first: a later iocx_close(ABORT) finds nothing
 * to reset and returns IOCX_E_ALREADY.  Returns whether to reset: abort,
 * or an abortive close that came before the seal.
 */
static bool seal_close(struct iocx_conn *c, bool abort)
{
	int seen = 1 + IOCX_CLOSE_GRACEFUL;

	if (atomic_compare_exchange_strong(&c->close_request, &seen,
					   CONN_CLOSE_DONE))
		return abort;
	return abort || seen == 1 + IOCX_CLOSE_ABORT;
}

/*
 * Deliver on_close: the last callback.  Returns true (drop alive ref).
 * The memory stays until the program released the handle too: a handle
 * closed by the engine (idle watchdog, destroy) waits for iocx_close().
 */
static bool finish(struct iocx_conn *c, enum iocx_conn_state from)
{
	struct iocx_engine *e = c->engine;
	int reason = c->detached ? IOCX_E_DETACHED
		     : atomic_load(&c->close_request) != CONN_CLOSE_NONE
			     ? IOCX_OK
		     : c->idle_expired ? IOCX_E_IDLE
				       : IOCX_E_SHUTDOWN;
	struct iocx_counters *set = iocx__counters(e);

	iocx__engine_disarm(e, c);	/* the idle watchdog */
	set_state(c, from, CONN_CLOSED);
	if (!c->child) {
		iocx__count(&set->closed, 1);
		iocx__uncount(&set->open, 1);
	}
	if (c->on_close)
		c->on_close(c, reason, c->user);
	/* Before the unbusy: destroy reaps once nothing is busy. */
	if (!c->child &&
	    !(atomic_fetch_or(&c->life, CONN_LIFE_FINISHED) &
	      CONN_LIFE_RELEASED))
		iocx__count(&set->unreleased, 1);
	iocx__engine_unbusy(e);
	return true;
}

/*
 * The operation failed: close the socket, then report the failure.  A
 * socket that connected is reset, so the peer never mistakes a truncated
 * payload for a complete one; one that never connected is reset only when
 * the caller asked for an abortive close.
 */
static bool fail(struct iocx_conn *c, enum iocx_conn_state from, int status,
		 uint32_t os_code)
{
	c->engine->backend->close(c, seal_close(c, c->connected));
	set_state(c, from, CONN_SOCKET_CLOSED);
	report(c, status, os_code);
	return false;
}

/* The request's total deadline has passed. */
static bool total_due(const struct iocx_conn *c)
{
	uint64_t at = iocx__conn_opts(c)->total_at;

	return at != 0 && c->engine->clock() >= at;
}

/*
 * Arm c's one timer for what it waits on until when (0 = nothing), or
 * for the total deadline if that comes first.  on_timer() tells the two
 * apart by the clock.
 */
static void arm_bounded(struct iocx_conn *c, uint64_t when)
{
	uint64_t at = iocx__conn_opts(c)->total_at;

	if (at != 0 && (when == 0 || at < when))
		when = at;
	if (when != 0)
		iocx__engine_arm(c->engine, c, when);
}

/* The total deadline ends the request: it reports IOCX_E_TIMEDOUT. */
static void count_total_expiry(struct iocx_conn *c)
{
	iocx__count(&iocx__counters(c->engine)->total_deadline_expiries, 1);
}

/* See conn.h. */
bool iocx__conn_retryable(int status)
{
	return status == IOCX_E_REFUSED || status == IOCX_E_NETUNREACH ||
	       status == IOCX_E_TIMEDOUT;
}

/*
 * A pseudo-random number for c's next backoff: it only has to differ
 * between connections and attempts, not be secret, so it is a hash
 * (splitmix64's finalizer) of the connection's address, its attempt
 * count and the clock, and the connection keeps no generator state.
 */
static uint64_t jitter(const struct iocx_conn *c)
{
	uint64_t x = (uint64_t)(uintptr_t)c * 0x9E3779B97F4A7C15u ^
		     ((uint64_t)c->attempts << 32) ^ c->engine->clock();

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
	return x ^ (x >> 31);
}

/* Delay before the next attempt: d = initial * 2^(attempts-1), capped,
 * then drawn from [d/2, d] so that many clients do not retry in step. */
static uint64_t backoff_ns(struct iocx_conn *c)
{
	const struct iocx_retry *retry = &iocx__conn_opts(c)->retry;
	uint64_t d = retry->backoff_initial_ms;
	uint64_t max = retry->backoff_max_ms;

	for (unsigned i = 1; i < c->attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	return (d / 2 + jitter(c) % (d - d / 2 + 1)) * 1000000u;
}

/* Close the socket a failed attempt kept for the next one, if any. */
static void drop_held(struct iocx_conn *c)
{
	if (!c->held)
		return;
	c->held = false;
	c->engine->backend->close(c, false);	/* it never connected */
}

/*
 * An attempt failed.  Retry it later when the policy allows and nobody
 * asked to close; otherwise report the failure.  The retry takes a fresh
 * socket, except after the OS's own refusal, unreachable network or
 * time-out in CONNECTING (never after a cancel, which leaves the socket
 * in an undefined state) where the backend may keep the socket for it
 * (Windows: ConnectEx again on the same socket).
 */
static bool attempt_failed(struct iocx_conn *c, enum iocx_conn_state from,
			   int status, uint32_t os_code)
{
	struct iocx_engine *e = c->engine;

	if (!c->total_expired &&
	    (!iocx__conn_retryable(status) ||
	     c->attempts >= iocx__conn_opts(c)->retry.max_attempts ||
	     close_wanted(c)))
		return fail(c, from, status, os_code);
	if (c->total_expired || total_due(c)) {
		count_total_expiry(c);
		return fail(c, from, IOCX_E_TIMEDOUT, 0);
	}
	iocx__engine_disarm(e, c);
	if (from == CONN_CONNECTING && e->backend->keep && e->backend->keep(c))
		c->held = true;
	else
		e->backend->close(c, c->connected);
	set_state(c, from, CONN_RETRY_WAIT);
	iocx__count(&iocx__counters(e)->retries, 1);
	arm_bounded(c, e->clock() + backoff_ns(c));
	return false;
}

/*
 * Connect on a socket new to this connection: run the user's hook on it
 * first, which fails the attempt as a refused connect would.  Where the
 * OS will not reconnect a recycled socket, the backend stops recycling
 * and the attempt goes on with a fresh socket (its own hook run).
 * IOCX_OK, or the synchronous error with the socket still open, or with
 * none when no fresh one could be opened (*open false).
 */
static int connect_new_socket(struct iocx_conn *c, enum iocx_conn_state from,
			      bool *open)
{
	const struct iocx_backend *b = c->engine->backend;
	int rc = iocx__conn_socket_hook(c);

	if (rc == IOCX_OK && from == CONN_RETRY_WAIT && close_wanted(c)) {
		/* Closed during a retry's hook: issue nothing for it. */
		c->os_code = 0;
		rc = IOCX_E_CANCELLED;
	}
	if (rc != IOCX_OK)
		return rc;
	rc = b->connect(c, c->payload, c->payload_issued);
	if (rc == IOCX_OK || !b->recycled_refused || !b->recycled_refused(c))
		return rc;
	b->close(c, false);
	rc = iocx__conn_open(c);
	if (rc != IOCX_OK) {
		*open = false;
		return rc;
	}
	return connect_new_socket(c, from, open);
}

/*
 * Connect again on the socket the failed attempt kept (no hook: the
 * options it set stay).  Where the OS refuses that, the backend turns
 * keeping off for the engine and the attempt goes on with a fresh socket,
 * as if none had been kept.  IOCX_OK, or the synchronous error with the
 * socket still open, or with none when no fresh one could be opened
 * (*open false).
 */
static int connect_kept_socket(struct iocx_conn *c, enum iocx_conn_state from,
			       bool *open)
{
	const struct iocx_backend *b = c->engine->backend;
	struct iocx_counters *set = iocx__counters(c->engine);
	int rc = b->connect(c, c->payload, c->payload_issued);

	if (rc == IOCX_OK) {
		iocx__count(&set->same_socket_retries, 1);
		return IOCX_OK;
	}
	if (!b->reconnect_refused(c))
		return rc;
	iocx__count(&set->same_socket_fallbacks, 1);
	b->close(c, false);
	rc = iocx__conn_open(c);
	if (rc != IOCX_OK) {
		*open = false;
		return rc;
	}
	return connect_new_socket(c, from, open);
}

/*
 * Start an attempt: issue the connect carrying the payload head, then arm
 * its deadline.  On a synchronous failure the socket is closed and the
 * state is CONNECTING; the caller moves on from there.
 */
static int issue_connect(struct iocx_conn *c, enum iocx_conn_state from)
{
	struct iocx_engine *e = c->engine;
	size_t cap = e->opts.connect_payload_cap;
	bool kept = c->held;
	bool open = true;
	int rc;

	c->held = false;
	c->payload_sent = 0;
	c->connected = false;
	c->timed_out = false;
	c->payload_issued = (uint32_t)(c->payload_len < cap ? c->payload_len
							     : cap);
	/* Written before the I/O is issued: a worker may see it complete
	 * before connect() returns (it then waits for our lock). */
	set_state(c, from, CONN_CONNECTING);
	rc = kept ? connect_kept_socket(c, from, &open)
		  : connect_new_socket(c, from, &open);
	if (rc != IOCX_OK) {
		if (open)
			e->backend->close(c, false);
		return rc;
	}
	arm_bounded(c, c->deadline_ms ? e->clock() + (uint64_t)c->deadline_ms *
							      1000000u
				       : 0);
	return IOCX_OK;
}

/* Connected: send what ConnectEx did not carry, or report success. */
static bool send_rest_or_report(struct iocx_conn *c,
				enum iocx_conn_state from)
{
	const struct iocx_backend *b = c->engine->backend;
	size_t left = c->payload_len - c->payload_sent;
	int rc;

	if (left == 0) {
		set_state(c, from, CONN_OPEN);
		/* Data requests are accepted from here on, also from inside
		 * on_connect. */
		atomic_store(&c->open_for_send, true);
		atomic_store(&c->open_for_read, true);
		iocx__conn_expose(c);
		report(c, IOCX_OK, 0);
		/* The idle watchdog starts once the connection is open (and
		 * still is: on_connect may have closed it). */
		if (c->idle_ms && c->state == CONN_OPEN && !close_wanted(c)) {
			c->last_activity = c->engine->clock();
			iocx__engine_arm(c->engine, c, c->last_activity +
					 (uint64_t)c->idle_ms * 1000000u);
		}
		return false;
	}
	if (from != CONN_SENDING)
		set_state(c, from, CONN_SENDING);
	c->payload_issued = (uint32_t)iocx__sendq_chunk(c, left);
	rc = b->send(c, c->payload + c->payload_sent, c->payload_issued);
	if (rc != IOCX_OK)
		return fail(c, CONN_SENDING, rc, c->os_code);
	return false;
}

/* Credit the bytes a completion confirmed (never more than issued). */
static void credit(struct iocx_conn *c, uint32_t bytes)
{
	c->payload_sent += bytes < c->payload_issued ? bytes
						     : c->payload_issued;
	c->payload_issued = 0;
}

/*
 * Start an attempt at now (the engine clock, just read): open a fresh
 * socket (unless the failed attempt before kept its own) and issue its
 * connect.  Returns IOCX_OK (state CONNECTING) or the synchronous
 * error, with the state still from when no socket could be opened, or
 * CONNECTING (the socket closed again) when the connect failed.
 */
static int start_attempt(struct iocx_conn *c, enum iocx_conn_state from,
			 uint64_t now)
{
	int rc;

	c->attempts++;	/* also when its socket cannot be opened */
	/* Latency runs from the first socket on, not from a queue or
	 * pacing wait (the total deadline does cover those).  now is the
	 * reading the pacer decided on: the start it counts. */
	if (c->attempts == 1)
		c->t_start = now;
	if (!c->held) {
		rc = iocx__conn_open(c);
		if (rc != IOCX_OK)
			return rc;
	}
	rc = issue_connect(c, from);
	if (rc == IOCX_OK && c->attempts == 1 && c->fastopen)
		iocx__count(&iocx__counters(c->engine)->fastopen_used, 1);
	return rc;
}

/*
 * c holds an in-flight slot: start its next attempt now if its pacing
 * turn has come, else wait in PACED in the pacing FIFO (its head with a
 * timer for the turn; all bounded by the total deadline).  Also
 * how a PACED request tries again.  IOCX_OK when started or waiting,
 * else as start_attempt().
 */
static int pace_or_start(struct iocx_conn *c, enum iocx_conn_state from)
{
	struct iocx_engine *e = c->engine;
	uint64_t now = e->clock();
	uint64_t due;

	/* One reading for the turn and the start's stamp (latency_ns's
	 * origin): the window rule holds for the stamps exactly, however
	 * long this thread takes to get to its socket (admission.c). */
	if (iocx__admission_pace(e, c, now, &due))
		return start_attempt(c, from, now);
	if (from != CONN_PACED) {
		set_state(c, from, CONN_PACED);
		iocx__count(&iocx__counters(e)->paced, 1);
	}
	arm_bounded(c, due);
	return IOCX_OK;
}

/*
 * c holds an in-flight slot: a connect by name sends its queries
 * (RESOLVING; the race opens sockets once addresses are in), first or
 * again after a failed race (each race is one attempt of the retry
 * policy); any other, and a name that resolved to a single address (it
 * connects, and retries, exactly as by address), starts or paces its
 * attempt.  IOCX_OK, else as start_attempt(); a resolver that could not
 * start leaves the state from.
 */
static int go(struct iocx_conn *c, enum iocx_conn_state from)
{
	int rc;

	if (!c->race || iocx__race_direct(c))
		return pace_or_start(c, from);
	c->attempts++;	/* also when no query can start */
	set_state(c, from, CONN_RESOLVING);
	rc = iocx__race_begin(c);
	if (rc != IOCX_OK)
		set_state(c, CONN_RESOLVING, from);
	return rc;
}

/*
 * The end of a wait without a socket (queue, pacing, backoff): start or
 * pace the attempt (or resolve); one that cannot start is reported to
 * on_connect.
 */
static bool resume(struct iocx_conn *c, enum iocx_conn_state from,
		   bool paced)
{
	int rc = paced ? pace_or_start(c, from) : go(c, from);

	if (rc != IOCX_OK) {
		set_state(c, c->state == from ? from : CONN_CONNECTING,
			  CONN_SOCKET_CLOSED);
		report(c, rc, c->os_code);
	}
	return false;
}

/*
 * iocx_connect's start, on the caller's thread: take an in-flight slot
 * (or join the admission queue, or be refused), then start or pace the
 * first attempt.  A synchronous failure leaves the state CLOSED, the slot
 * released and ev->result the error.
 */
static bool on_start(struct iocx_conn *c, struct conn_event *ev)
{
	struct iocx_engine *e = c->engine;

	if (c->child) {
		/* A race's attempt: its parent holds the slot and was
		 * paced; it goes at once. */
		ev->result = start_attempt(c, CONN_NEW, c->engine->clock());
		if (ev->result != IOCX_OK)
			set_state(c, c->state == CONN_NEW ? CONN_NEW
							  : CONN_CONNECTING,
				  CONN_CLOSED);
		return false;
	}
	switch (iocx__admit(e, c)) {
	case IOCX_ADMIT_LIMIT:
		ev->result = IOCX_E_LIMIT;
		set_state(c, CONN_NEW, CONN_CLOSED);
		return false;
	case IOCX_ADMIT_QUEUED:
		set_state(c, CONN_NEW, CONN_QUEUED);
		iocx__count(&iocx__counters(e)->queued, 1);
		arm_bounded(c, 0);	/* the total deadline, if any */
		ev->result = IOCX_OK;
		return false;
	case IOCX_ADMIT_GO:
		break;
	}
	ev->result = go(c, CONN_NEW);
	if (ev->result != IOCX_OK) {
		set_state(c, c->state == CONN_NEW ? CONN_NEW : CONN_CONNECTING,
			  CONN_CLOSED);
		c->holds_slot = false;
		iocx__engine_in_flight_done(e, iocx__counters(e));
	}
	return false;
}

/*
 * Leave the admission queue (close, total deadline).  A slot granted
 * meanwhile is c's: report() passes it on.
 */
static void leave_queue(struct iocx_conn *c)
{
	if (!iocx__admission_withdraw(c->engine, c))
		c->holds_slot = true;
}

/*
 * A race failed: every attempt failed, or the name gave no address.
 * When each of its attempts failed as the retry policy retries (or no
 * address came because resolution failed, IOCX_E_RESOLVE), attempts
 * (races) remain and nobody asked to close, wait the policy's backoff in
 * RETRY_WAIT (no socket, the one timer; go() races again, resolving the
 * name anew); otherwise report the failure.
 */
static bool race_failed(struct iocx_conn *c, enum iocx_conn_state from,
			int status, uint32_t os_code)
{
	struct iocx_engine *e = c->engine;

	if (!iocx__race_retryable(c) || close_wanted(c) ||
	    c->attempts >= iocx__conn_opts(c)->retry.max_attempts) {
		set_state(c, from, CONN_SOCKET_CLOSED);
		report(c, status, os_code);
		return false;
	}
	if (total_due(c)) {
		count_total_expiry(c);
		set_state(c, from, CONN_SOCKET_CLOSED);
		report(c, IOCX_E_TIMEDOUT, 0);
		return false;
	}
	set_state(c, from, CONN_RETRY_WAIT);
	iocx__count(&iocx__counters(e)->retries, 1);
	arm_bounded(c, e->clock() + backoff_ns(c));
	return false;
}

/*
 * A connect by name: step the race (race.c) and move on as it says.  The
 * one place RESOLVING and RACING are left, always through settle().  The
 * total deadline ends the race like a close, but reports
 * IOCX_E_TIMEDOUT and leaves the connection to the caller's close.  A
 * close asked for during the step (an attempt's on_socket hook may close
 * the connection) is acted on at once.
 */
static bool race_advance(struct iocx_conn *c)
{
	enum iocx_conn_state from = c->state;
	struct iocx_engine *e = c->engine;
	bool closing = close_wanted(c);
	bool expired = !closing && total_due(c);
	uint32_t os_code = 0;
	int status = IOCX_OK, rc;

	switch (iocx__race_step(c, closing || expired, &status, &os_code)) {
	case RACE_WAIT:
		break;
	case RACE_RACING:
		set_state(c, from, CONN_RACING);
		break;
	case RACE_DIRECT:
		/* One address in all: exactly a connect by address, whose
		 * attempt is the one go() counted for this race. */
		c->attempts--;
		rc = pace_or_start(c, from);
		if (rc != IOCX_OK) {
			set_state(c, c->state == from ? from : CONN_CONNECTING,
				  CONN_SOCKET_CLOSED);
			report(c, rc, c->os_code);
		}
		return false;
	case RACE_WON:
		/* The winner connected without the payload: it goes now. */
		c->connected = true;
		c->payload_sent = 0;
		if (c->payload_len)
			arm_bounded(c, c->deadline_ms ? e->clock() +
				    (uint64_t)c->deadline_ms * 1000000u : 0);
		return send_rest_or_report(c, from);
	case RACE_FAILED:
		return race_failed(c, from, status, os_code);
	case RACE_CANCELLED:
		set_state(c, from, CONN_SOCKET_CLOSED);
		if (!closing) {
			count_total_expiry(c);
			report(c, IOCX_E_TIMEDOUT, 0);
			return false;
		}
		report(c, IOCX_E_CANCELLED, 0);
		return finish(c, CONN_SOCKET_CLOSED);
	}
	if (!closing && !expired && close_wanted(c))
		return race_advance(c);
	return false;
}

/*
 * The queue granted c a slot, or c became the head of the pacing FIFO
 * (its KICK): start or pace the attempt.
 */
static bool on_admit(struct iocx_conn *c)
{
	iocx__engine_disarm(c->engine, c);	/* re-armed as needed */
	if (c->state == CONN_PACED)
		return resume(c, CONN_PACED, true);
	c->holds_slot = true;
	return resume(c, CONN_QUEUED, false);
}

/* Leave whichever wait c is in without a socket of its own. */
static void leave_wait(struct iocx_conn *c, enum iocx_conn_state from)
{
	if (from == CONN_QUEUED)
		leave_queue(c);
	else if (from == CONN_PACED)
		iocx__admission_unpace(c->engine, c);
	drop_held(c);
}

/* The total deadline expired while c waited (a retry's kept socket
 * aside, without a socket). */
static bool expire_waiting(struct iocx_conn *c, enum iocx_conn_state from)
{
	leave_wait(c, from);
	count_total_expiry(c);
	set_state(c, from, CONN_SOCKET_CLOSED);
	report(c, IOCX_E_TIMEDOUT, 0);
	return false;
}

static bool on_io_done(struct iocx_conn *c, const struct conn_event *ev)
{
	const struct iocx_backend *b = c->engine->backend;
	enum iocx_conn_state from = c->state;
	uint32_t os_code = ev->os_code;
	int status = ev->status;
	int rc;

	switch (from) {
	case CONN_OPEN:
	case CONN_CLOSING:
		return data_io_done(c, ev);
	case CONN_CONNECTING:
		if (status != IOCX_OK)
			return attempt_failed(c, from, status, os_code);
		credit(c, ev->bytes);
		c->connected = true;
		rc = b->connected(c);
		if (rc != IOCX_OK)
			return fail(c, from, rc, c->os_code);
		return send_rest_or_report(c, from);
	case CONN_SENDING:
		if (status != IOCX_OK)
			return fail(c, from, status, os_code);
		credit(c, ev->bytes);
		return send_rest_or_report(c, from);
	case CONN_CANCELLING:
		/*
		 * A close or the deadline cancelled the operation.  If it
		 * still finished the whole job (connect and every payload
		 * byte), that real result wins; otherwise the attempt counts
		 * as cancelled, or timed out when the deadline asked.
		 */
		if (status == IOCX_OK) {
			credit(c, ev->bytes);
			if (!c->connected) {
				c->connected = true;
				rc = b->connected(c);	/* lets linger apply */
				if (rc != IOCX_OK && !close_wanted(c))
					return fail(c, from, rc, c->os_code);
			}
			if (c->payload_sent == c->payload_len &&
			    !close_wanted(c)) {
				/* Only the deadline asked, and lost. */
				c->timed_out = false;
				return send_rest_or_report(c, from);
			}
			if (c->payload_sent == c->payload_len) {
				b->close(c, seal_close(c, false));
				set_state(c, from, CONN_SOCKET_CLOSED);
				report(c, IOCX_OK, 0);
				return false;
			}
			status = IOCX_E_CANCELLED;
			os_code = 0;
		}
		if (status == IOCX_E_CANCELLED && c->timed_out) {
			status = IOCX_E_TIMEDOUT;
			os_code = 0;
		}
		return attempt_failed(c, from, status, os_code);
	default:
		assert(!"I/O completion in a state with nothing in flight");
		return false;
	}
}

/*
 * The idle watchdog fired on an open connection: close it (reason
 * IOCX_E_IDLE) if no data moved for idle_ms, else re-arm for the rest.
 * Activity only stamps last_activity, so busy connections cost no heap
 * operation per transfer.
 */
static bool idle_check(struct iocx_conn *c)
{
	struct iocx_engine *e = c->engine;
	uint64_t limit = (uint64_t)c->idle_ms * 1000000u;
	uint64_t now = e->clock();

	if (now - c->last_activity < limit) {
		iocx__engine_arm(e, c, c->last_activity + limit);
		return false;
	}
	c->idle_expired = true;	/* settle() closes, finish() says why */
	return false;
}

static bool on_timer(struct iocx_conn *c, const struct conn_event *ev)
{
	enum iocx_conn_state from = c->state;

	/* A timer re-armed or disarmed since it was popped is stale. */
	if (ev->timer_gen != c->timer_gen || c->timer_slot != 0)
		return false;
	switch (from) {
	case CONN_CONNECTING:
	case CONN_SENDING:
		/* A deadline: cancel, then close and report (or retry) once
		 * the operation has come back. */
		c->timed_out = true;
		c->total_expired = total_due(c);
		set_state(c, from, CONN_CANCELLING);
		c->engine->backend->cancel(c, IOCX_OP_MAIN);
		return false;
	case CONN_QUEUED:
	case CONN_PACED:
	case CONN_RETRY_WAIT:
		/* A close already queued wins: open nothing for it. */
		if (close_wanted(c))
			return false;
		if (total_due(c))
			return expire_waiting(c, from);
		/* A queued request's timer is only the total deadline. */
		if (from == CONN_QUEUED)
			return false;
		return resume(c, from, from == CONN_PACED);
	case CONN_OPEN:
		/* Without a watchdog, an open connection arms no timer.  A
		 * deadline popped just before the connect completed is stale
		 * by its generation (the disarm started a new one); this
		 * keeps a timer event from closing it as idle regardless. */
		return c->idle_ms ? idle_check(c) : false;
	default:
		return false;
	}
}

static bool on_close_request(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	enum iocx_conn_state from = c->state;

	switch (from) {
	case CONN_CONNECTING:
	case CONN_SENDING:
		set_state(c, from, CONN_CANCELLING);
		b->cancel(c, IOCX_OP_MAIN);
		return false;
	case CONN_QUEUED:
	case CONN_PACED:
	case CONN_RETRY_WAIT:
		/* Waiting: nothing in flight, and no socket but one a failed
		 * attempt kept for the next. */
		leave_wait(c, from);
		set_state(c, from, CONN_SOCKET_CLOSED);
		report(c, IOCX_E_CANCELLED, 0);
		return finish(c, CONN_SOCKET_CLOSED);
	case CONN_OPEN:
		/* Stop taking data requests; pump() drains or cancels what
		 * is in flight and finishes.  Destroy and the idle watchdog
		 * do not wait for a peer that stopped reading: they reset. */
		set_state(c, from, CONN_CLOSING);
		c->closing_abort = close_abortive(c) || c->shutdown ||
				   c->idle_expired;
		/* No request is taken from here on.  One that found them
		 * still open set req_touched first, so pump() sees it and
		 * takes the request lock, which waits for it (see
		 * take_requests). */
		atomic_store(&c->open_for_send, false);
		atomic_store(&c->open_for_read, false);
		return pump(c);
	case CONN_SOCKET_CLOSED:
		return finish(c, from);
	default:
		/* NEW: iocx__conn_start settles once started; CANCELLING:
		 * the completion finishes the job; CLOSED: nothing left. */
		return false;
	}
}

/* ---- data on an open connection --------------------------------------- */

/* See conn.h. */
bool iocx__conn_plain_socket(const struct iocx_conn *c)
{
	static const unsigned char v4_mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	if ((c->flags & IOCX_CONNECT_FASTOPEN) ||
	    iocx__conn_opts(c)->syn_rtt_ms ||
	    iocx__conn_opts(c)->syn_retransmissions)
		return false;
	return c->remote.sa.sa_family != AF_INET6 ||
	       memcmp(&c->remote.in6.sin6_addr, v4_mapped,
		      sizeof(v4_mapped)) != 0;
}

/*
 * May the socket of this closing connection be recycled?  Only a clean
 * graceful close of a wildcard-bound plain socket: an aborted, broken or
 * explicitly bound one is closed, and so is one that carries an option
 * (TFO, SYN tuning, dual stack, whatever a user hook set) the next connect
 * did not ask for.  (A connection with a hook may still take a kept
 * socket: its hook runs on it as on a fresh one.)
 */
static bool recyclable(struct iocx_conn *c)
{
	struct iocx_engine *e = c->engine;
	int broken;

	if (!e->opts.recycle_sockets || !e->backend->disconnect ||
	    c->closing_abort || c->local_len != 0 || c->detached ||
	    !iocx__conn_plain_socket(c) || iocx__conn_opts(c)->on_socket)
		return false;
	iocx__mutex_lock(iocx__conn_req_lock(c));
	broken = c->req.broken;
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	return broken == 0;
}

/*
 * Nothing is in flight on a closing connection: hand the socket back and
 * finish.  A recyclable socket is disconnected first (DisconnectEx with
 * TF_REUSE_SOCKET, which completes once the transport lets go, TIME_WAIT
 * included), and finishing waits for that completion.  A backend that
 * closes as an operation (io_uring: through the ring, with no system call
 * of its own) finishes at that operation's event, so on_close still comes
 * after the socket is gone.
 */
static bool release_socket(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	bool abort;

	iocx__conn_unexpose(c);
	if (recyclable(c) && b->disconnect(c) == IOCX_OK) {
		c->disconnecting = true;
		return false;
	}
	/* An attempt whose socket went to its race's winner has none. */
	if (c->socket_moved)
		return finish(c, CONN_CLOSING);
	abort = seal_close(c, c->closing_abort);
	if (b->close_op && b->close_op(c, abort) == IOCX_OK) {
		c->closing_os = true;
		return false;
	}
	b->close(c, abort);
	return finish(c, CONN_CLOSING);
}

/* The disconnect for recycling finished: keep the socket, or close it. */
static bool disconnect_done(struct iocx_conn *c, const struct conn_event *ev)
{
	struct iocx_engine *e = c->engine;

	c->disconnecting = false;
	/* An abortive close that came during the disconnect: no reuse. */
	if (ev->status == IOCX_OK && !seal_close(c, false)) {
		if (e->backend->recycle(c))
			iocx__count(&iocx__counters(e)->sockets_recycled, 1);
	} else {
		/* Failed, or cancelled by a reset (abortive close, destroy):
		 * reset if one was asked for. */
		e->backend->close(c, seal_close(c, c->closing_abort));
	}
	return finish(c, CONN_CLOSING);
}

/* Requests taken over from other threads (see struct iocx_requests). */
struct taken {
	iocx_recv_cb read_start;
	bool read_stop;
	int broken;
};

/* Move what was asked since the last look to the worker side. */
static void take_requests(struct iocx_conn *c, struct taken *t)
{
	struct iocx_conn_data *d;

	/*
	 * No request ever came: nothing to take, no lock needed.  One that
	 * comes after this look is made in c's own callback on this thread
	 * (the next look sees it) or posts a KICK whose event looks again.
	 * After on_close_request() cleared the open flags, a request either
	 * stored req_touched before we load it here (we then lock and wait
	 * for it) or loads the flags after our store and is refused: both
	 * sides store, then load, sequentially consistent.
	 */
	if (!atomic_load(&c->req_touched)) {
		memset(t, 0, sizeof(*t));
		return;
	}
	iocx__mutex_lock(iocx__conn_req_lock(c));
	/* Loaded under the lock: a request installs the block before it
	 * takes the lock. */
	d = iocx__conn_data(c);
	t->read_start = NULL;
	if (d && d->req_head) {
		if (d->sendq_tail)
			d->sendq_tail->next = d->req_head;
		else
			d->sendq = d->req_head;
		d->sendq_tail = d->req_tail;
		d->req_head = d->req_tail = NULL;
	}
	if (d) {
		t->read_start = d->read_start;
		d->read_start = NULL;
	}
	t->read_stop = c->req.read_stop;
	if (c->req.shutdown)
		c->fin_wanted = true;
	t->broken = c->req.broken;
	c->req.kick_pending = false;
	iocx__mutex_unlock(iocx__conn_req_lock(c));
}

/* Something arrived that take_requests() has not seen yet. */
static bool requests_pending(struct iocx_conn *c)
{
	const struct iocx_conn_data *d;
	bool pending;

	if (!atomic_load(&c->req_touched))
		return false;	/* as in take_requests() */
	iocx__mutex_lock(iocx__conn_req_lock(c));
	d = iocx__conn_data(c);
	pending = (d && (d->req_head || d->read_start)) ||
		  (c->req.read_stop && c->reading && !c->read_stopping) ||
		  (c->req.shutdown && !c->fin_wanted);
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	return pending;
}

/* The connection broke: no more sends or reads are accepted. */
static void mark_broken(struct iocx_conn *c, int status)
{
	iocx__mutex_lock(iocx__conn_req_lock(c));
	atomic_store(&c->req_touched, true);	/* take_requests reports it */
	if (!c->req.broken)
		c->req.broken = (int8_t)status;	/* an IOCX_E_* */
	atomic_store(&c->open_for_send, false);
	atomic_store(&c->open_for_read, false);
	iocx__mutex_unlock(iocx__conn_req_lock(c));
}

/* End the read session with its terminal on_recv(status). */
static void end_reading(struct iocx_conn *c, int status)
{
	struct iocx_conn_data *d = iocx__conn_data(c);	/* reading: made */
	iocx_recv_cb cb = d->on_recv;

	c->reading = false;
	c->read_stopping = false;
	d->read_error = 0;
	d->on_recv = NULL;
	/* The buffer is held only while reading (iocx.h), unless a receive
	 * into it is still in the OS's hands: then the free waits for the
	 * connection's end. */
	if (!c->recv_busy) {
		iocx__free(d->recv_buf);
		d->recv_buf = NULL;
	}
	iocx__mutex_lock(iocx__conn_req_lock(c));
	c->req.read_on = false;	/* a new read_start may follow at once */
	c->req.read_stop = false;
	iocx__mutex_unlock(iocx__conn_req_lock(c));
	iocx__stats_io_error(iocx__counters(c->engine)->recv_errors, status);
	cb(c, status, NULL, 0, c->user);
}

/* Report one finished send to its on_sent; an error is counted first. */
static void report_sent(struct iocx_conn *c, struct iocx_send_req *r,
			int status)
{
	if (status != IOCX_OK)
		iocx__stats_io_error(iocx__counters(c->engine)->send_errors,
				     status);
	r->cb(c, status, r->done, r->user);
}

/* Report every queued send not in flight with status, in order. */
static void fail_sends(struct iocx_conn *c, int status)
{
	struct iocx_conn_data *d = iocx__conn_data(c);

	while (d && d->sendq) {
		struct iocx_send_req *r = d->sendq;

		d->sendq = r->next;
		if (!d->sendq)
			d->sendq_tail = NULL;
		/* Broken or closing: no on_drained follows. */
		iocx__sendq_release(c, r->len);
		report_sent(c, r, status);
		iocx__free(r);
	}
}

/* The first send not yet reported (in flight when send_busy), or NULL. */
static struct iocx_send_req *sendq_head(const struct iocx_conn *c)
{
	const struct iocx_conn_data *d = iocx__conn_data(c);

	return d ? d->sendq : NULL;
}

static void issue_send(struct iocx_conn *c)
{
	struct iocx_send_req *r = sendq_head(c);
	int rc;

	c->payload_issued = (uint32_t)iocx__sendq_chunk(c, r->len - r->done);
	rc = c->engine->backend->send(c, r->buf + r->done, c->payload_issued);
	if (rc == IOCX_OK) {
		c->send_busy = true;
		return;
	}
	mark_broken(c, rc);
	fail_sends(c, rc);
	/* Our data (and FIN) will not reach the peer, whose answer may
	 * then never come: the read ends with the error too. */
	break_reading(c, rc);
}

static void issue_recv(struct iocx_conn *c)
{
	struct iocx_conn_data *d = iocx__conn_data(c);	/* reading: made */
	size_t size = c->engine->opts.recv_buffer;
	int rc;

	if (!d->recv_buf) {
		d->recv_buf = iocx__alloc(size);
		if (!d->recv_buf) {
			end_reading(c, IOCX_E_NOMEM);
			return;
		}
	}
	rc = c->engine->backend->recv(c, d->recv_buf, size);
	if (rc == IOCX_OK) {
		c->recv_busy = true;
		return;
	}
	mark_broken(c, rc);
	end_reading(c, rc);
}

/* What the terminal on_recv of a session being stopped reports. */
static int stop_status(const struct iocx_conn *c)
{
	struct iocx_conn_data *d = iocx__conn_data(c);	/* reading: made */

	return d->read_error ? d->read_error : IOCX_E_CANCELLED;
}

/*
 * End a read session nobody stopped with status: now when no receive is
 * in flight, else when it comes back (recv_done() reports status).
 * Returns true in the second case.  A stop already under way ends as it
 * would have.
 */
static bool end_reading_with(struct iocx_conn *c, int status)
{
	if (!c->reading || c->read_stopping)
		return false;
	if (!c->recv_busy) {
		end_reading(c, status);
		return false;
	}
	c->read_stopping = true;
	iocx__conn_data(c)->read_error = (int8_t)status;
	return true;
}

/*
 * The connection broke under a read session (a FIN or a send the OS
 * refused): end the session with status, cancelling a receive in flight.
 */
static void break_reading(struct iocx_conn *c, int status)
{
	if (end_reading_with(c, status))
		c->engine->backend->cancel(c, IOCX_OP_RECV);
}

/*
 * The backend ended an operation by giving the socket up (a cancel the OS
 * refused: backend.h).  Nothing more can go through it, so the connection
 * breaks with IOCX_E_ABORTED, as after a failed send: later data calls get
 * that error, the accessors no longer show the socket, and the program's
 * close (or the idle watchdog) ends the connection as usual.  A read
 * session nobody stopped ends with the error too; a receive still in
 * flight needs no cancel: the socket is gone under it.
 */
static void lose_socket(struct iocx_conn *c)
{
	iocx__conn_unexpose(c);
	mark_broken(c, IOCX_E_ABORTED);
	(void)end_reading_with(c, IOCX_E_ABORTED);
}

/* A receive finished: data, EOF (0 bytes), cancel or error. */
static void recv_done(struct iocx_conn *c, const struct conn_event *ev)
{
	struct iocx_conn_data *d = iocx__conn_data(c);	/* reading: made */

	c->recv_busy = false;
	if (ev->status == IOCX_OK && ev->bytes > 0) {
		c->last_activity = c->engine->clock();
		iocx__count(&iocx__counters(c->engine)->bytes_received,
			    ev->bytes);
		d->on_recv(c, IOCX_OK, d->recv_buf, ev->bytes, c->user);
		/* A stop whose cancel lost to this data ends now. */
		if (c->read_stopping)
			end_reading(c, stop_status(c));
	} else if (ev->status == IOCX_OK) {
		end_reading(c, IOCX_E_EOF);
	} else if (ev->status == IOCX_E_CANCELLED) {
		end_reading(c, stop_status(c));
	} else {
		mark_broken(c, ev->status);
		end_reading(c, ev->status);
	}
}

/* A data send finished (OPEN or CLOSING). */
static bool data_io_done(struct iocx_conn *c, const struct conn_event *ev)
{
	struct iocx_conn_data *d;
	struct iocx_send_req *r;
	uint32_t bytes;
	bool drained;

	if (ev->socket_lost)
		lose_socket(c);
	if (ev->op == IOCX_OP_RECV) {
		recv_done(c, ev);
		return false;
	}
	if (c->disconnecting)
		return disconnect_done(c, ev);
	if (c->closing_os) {
		/* The socket is closed (release_socket). */
		c->closing_os = false;
		return finish(c, CONN_CLOSING);
	}
	d = iocx__conn_data(c);		/* a send was in flight: made */
	r = d->sendq;
	bytes = ev->bytes < c->payload_issued ? ev->bytes
					      : c->payload_issued;
	c->send_busy = false;
	c->last_activity = c->engine->clock();
	r->done += bytes;
	iocx__count(&iocx__counters(c->engine)->bytes_sent, bytes);
	if (ev->status == IOCX_OK && r->done < r->len)
		return false;	/* short send: pump() issues the rest */
	d->sendq = r->next;
	if (!d->sendq)
		d->sendq_tail = NULL;
	/* Broken before the callback, so a send made inside it fails. */
	if (ev->status != IOCX_OK && ev->status != IOCX_E_CANCELLED)
		mark_broken(c, ev->status);
	/* Out of the gauge before on_sent, which may send again. */
	drained = iocx__sendq_release(c, r->len);
	report_sent(c, r, ev->status);
	iocx__free(r);
	if (ev->status != IOCX_OK) {
		fail_sends(c, ev->status);
		/* As in issue_send(); a cancel comes from a close, which
		 * stops the read itself. */
		if (ev->status != IOCX_E_CANCELLED)
			break_reading(c, ev->status);
	} else if (drained && d->on_drained && c->state == CONN_OPEN &&
		 !close_wanted(c) && atomic_load(&c->open_for_send))
		d->on_drained(c, iocx_conn_queued_bytes(c), c->user);
	return false;
}

/*
 * Drive an OPEN or CLOSING connection: apply data requests, keep one send
 * and one receive in flight, send FIN when asked and drained, and in
 * CLOSING finish once nothing is left in flight.  Callbacks it runs may
 * make new requests; it loops until none is pending.  Returns true when
 * the connection finished.
 */
static bool pump(struct iocx_conn *c)
{
	const struct iocx_backend *b = c->engine->backend;
	bool closing;
	struct taken t;

	do {
		take_requests(c, &t);
		closing = c->state == CONN_CLOSING;
		/* Destroy, the watchdog or a later abortive close may come
		 * to a connection already closing gracefully: they do not
		 * wait. */
		if (closing && (c->shutdown || c->idle_expired ||
				close_abortive(c)))
			c->closing_abort = true;
		if (t.read_start) {
			c->reading = true;
			iocx__conn_data(c)->on_recv = t.read_start;
		}
		if (c->reading && (t.read_stop || closing) &&
		    !c->read_stopping) {
			if (c->recv_busy) {
				c->read_stopping = true;
				b->cancel(c, IOCX_OP_RECV);
			} else {
				end_reading(c, IOCX_E_CANCELLED);
			}
		}
		if (closing && c->closing_abort && !c->closing_cancelled) {
			c->closing_cancelled = true;
			/* A recycling disconnect may wait out TIME_WAIT:
			 * destroy does not. */
			if (c->send_busy || c->disconnecting)
				b->cancel(c, IOCX_OP_MAIN);
			if (!c->send_busy)
				fail_sends(c, IOCX_E_CANCELLED);
		}
		if (c->reading && !c->recv_busy && !c->read_stopping &&
		    !closing)
			issue_recv(c);
		if (!c->send_busy && sendq_head(c)) {
			if (t.broken)
				fail_sends(c, t.broken);
			else if (closing && c->closing_abort)
				fail_sends(c, IOCX_E_CANCELLED);
			else
				issue_send(c);
		}
		if (c->fin_wanted && !c->fin_sent && !c->send_busy &&
		    !sendq_head(c) && !closing && !t.broken) {
			int rc = b->shutdown(c);

			c->fin_sent = true;
			if (rc != IOCX_OK) {
				iocx__stats_io_error(
					iocx__counters(c->engine)->send_errors,
					rc);
				mark_broken(c, rc);
				/* No FIN, so the peer's may never come. */
				break_reading(c, rc);
			}
		}
	} while (requests_pending(c));

	if (c->state == CONN_CLOSING && !c->send_busy && !c->recv_busy &&
	    !c->reading && !sendq_head(c) && !c->disconnecting &&
	    !c->closing_os)
		return release_socket(c);
	return false;
}

/*
 * The transition function.  Returns true when the connection reached
 * CLOSED through this event (its on_close has been delivered).
 */
static bool conn_transition(struct iocx_conn *c, struct conn_event *ev)
{
	switch (ev->kind) {
	case CE_START:
		return on_start(c, ev);
	case CE_IO_DONE:
		return on_io_done(c, ev);
	case CE_TIMER:
		return on_timer(c, ev);
	case CE_CLOSE:
		return on_close_request(c);
	case CE_ADMIT:
		return on_admit(c);
	}
	return false;
}

/*
 * After an event: act on data requests and on a close request that
 * arrived meanwhile, and with may_admit (an engine event, not inside
 * iocx_connect) on a slot the admission queue granted.
 */
static bool settle(struct iocx_conn *c, bool may_admit)
{
	struct conn_event close = { .kind = CE_CLOSE };
	struct conn_event admit = { .kind = CE_ADMIT };

	if (c->state == CONN_OPEN && !close_wanted(c)) {
		/* Callbacks pump() runs may ask to close: look again. */
		if (pump(c))
			return true;
		if (c->state != CONN_OPEN || !close_wanted(c))
			return false;
	}
	if (c->state == CONN_CLOSING)
		return pump(c);
	if (c->state == CONN_RESOLVING || c->state == CONN_RACING) {
		/* Acts on a close while it resolves or races. */
		bool finished = race_advance(c);

		/* Once it left those states, a close its on_connect asked
		 * for (a failed name, say) is acted on below. */
		if (finished || c->state == CONN_RESOLVING ||
		    c->state == CONN_RACING)
			return finished;
	}
	if (c->state == CONN_QUEUED && may_admit && !close_wanted(c) &&
	    atomic_load(&c->aq_granted))
		return conn_transition(c, &admit);
	if (c->state == CONN_PACED && may_admit && !close_wanted(c) &&
	    atomic_exchange(&c->pq_wake, false))
		return conn_transition(c, &admit);
	if (c->state == CONN_CLOSED || c->state == CONN_CANCELLING ||
	    !close_wanted(c))
		return false;
	return conn_transition(c, &close);
}

/* See conn.h. */
int iocx__conn_start(struct iocx_conn *c)
{
	struct conn_event start = { .kind = CE_START };

	iocx__lock_acquire(&c->lock);
	conn_transition(c, &start);
	/* Busy before c->lock is released, so before any event of c can be
	 * handled and its on_close decrement the count. */
	if (start.result == IOCX_OK)
		iocx__engine_busy(c->engine);
	/*
	 * A close or shutdown that arrived while NEW is acted on now; from
	 * CONNECTING that only issues a cancel, never a callback.  A request
	 * left waiting (QUEUED, PACED, RESOLVING) would report at once: its
	 * close, its grant and its answers arrive as events of their own,
	 * handled on a worker.
	 */
	if (c->state == CONN_CONNECTING)
		settle(c, false);
	iocx__lock_release(&c->lock);
	return start.result;
}

/*
 * Run ev (or only a shutdown flag, or nothing) through c with its lock
 * held, then settle.  Returns true when c finished.
 */
static bool handle_locked(struct iocx_conn *c, struct conn_event *ev,
			  bool shutdown)
{
	bool finished;

	iocx__lock_acquire(&c->lock);
	iocx__current_conn = c;
	if (shutdown)
		c->shutdown = true;
	finished = ev ? conn_transition(c, ev) : false;
	if (!finished)
		finished = settle(c, true);
	iocx__current_conn = NULL;
	iocx__lock_release(&c->lock);
	return finished;
}

/* See conn.h. */
void iocx__conn_handle(struct iocx_conn *c, const struct iocx_event *ev)
{
	struct conn_event io = {
		.kind = CE_IO_DONE,
		.status = ev->status,
		.os_code = ev->os_code,
		.bytes = ev->bytes,
		.op = ev->op,
		.socket_lost = ev->socket_lost,
	};
	bool finished;

	finished = handle_locked(c, ev->kind == IOCX_EV_IO ? &io : NULL,
				 ev->kind == IOCX_EV_SHUTDOWN);
	if (ev->kind != IOCX_EV_IO)
		iocx__conn_unref(c);	/* the posted request's reference */
	if (finished)
		iocx__conn_unref(c);	/* the alive reference */
}

/* See conn.h. */
void iocx__conn_timer(struct iocx_conn *c, uint32_t gen)
{
	struct conn_event timer = { .kind = CE_TIMER, .timer_gen = gen };
	bool finished = handle_locked(c, &timer, false);

	iocx__conn_unref(c);		/* the heap's reference */
	if (finished)
		iocx__conn_unref(c);	/* the alive reference */
}

/* See conn.h. */
void iocx__conn_ref(struct iocx_conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* See conn.h. */
bool iocx__conn_tryref(struct iocx_conn *c)
{
	unsigned n = atomic_load_explicit(&c->refs, memory_order_relaxed);

	do {
		if (n == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&c->refs, &n, n + 1, memory_order_relaxed,
		memory_order_relaxed));
	return true;
}

/* See conn.h. */
void iocx__conn_unref(struct iocx_conn *c)
{
	struct iocx_engine *e = c->engine;

	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	assert(!iocx__conn_data(c) || (iocx__conn_data(c)->req_head == NULL &&
					iocx__conn_data(c)->sendq == NULL));
	iocx__lock_destroy(&c->lock);
	iocx__conn_data_free(c);
	if (c->uses_timer)
		iocx__engine_timer_release(e);
	iocx__race_free(c);
	iocx__engine_forget(e, c);	/* frees c */
}

/* See conn.h. */
void iocx__conn_release(struct iocx_conn *c)
{
	struct iocx_engine *e = c->engine;

	if (atomic_fetch_or(&c->life, CONN_LIFE_RELEASED) &
	    CONN_LIFE_FINISHED)
		iocx__uncount(&iocx__counters(e)->unreleased, 1);
	iocx__conn_unref(c);	/* may be the last */
}

/* See iocx.h. */
int iocx_close(iocx_conn *c, enum iocx_close_mode mode)
{
	int expected = CONN_CLOSE_NONE;
	bool release;
	int rc = IOCX_OK;

	if (!c || (mode != IOCX_CLOSE_GRACEFUL && mode != IOCX_CLOSE_ABORT))
		return IOCX_E_INVAL;
	/*
	 * Take the request's reference before publishing the request: once
	 * close_request is set, a worker may finish the connection.
	 */
	iocx__conn_ref(c);
	if (atomic_compare_exchange_strong(&c->close_request, &expected,
					   1 + (int)mode)) {
		/* The first close: the program lets go of the handle
		 * (never a race's attempt: it has no program). */
		release = !c->child;
	} else if (mode == IOCX_CLOSE_ABORT &&
		   expected == 1 + IOCX_CLOSE_GRACEFUL &&
		   atomic_compare_exchange_strong(&c->close_request, &expected,
						  1 + IOCX_CLOSE_ABORT)) {
		/* A graceful close made abortive: the one change a second
		 * close may make. */
		release = false;
	} else {
		iocx__conn_unref(c);
		return IOCX_E_ALREADY;
	}
	if (iocx__current_conn == c ||
	    (atomic_load(&c->life) & CONN_LIFE_FINISHED)) {
		/* Inside c's own callback settle() acts once it returns;
		 * after on_close there is nothing left to close. */
		iocx__conn_unref(c);
	} else {
		/*
		 * A reference of our own while post() runs: once the request
		 * is queued its reference may be used up by a worker, and
		 * destroy may then finish and free the backend that post() is
		 * still in (a wake-up after the queue's unlock).  c stays in
		 * its live list until we drop this, so destroy waits.
		 */
		iocx__conn_ref(c);
		rc = c->engine->backend->post(c->engine, IOCX_EV_CLOSE, c);
		if (rc != IOCX_OK) {
			/* The request stays recorded (a worker may already
			 * act on it) and takes effect at the next event or at
			 * destroy. */
			iocx__conn_unref(c);
		}
		iocx__conn_unref(c);	/* ours */
	}
	/* Last: the handle may be freed here (its on_close returned). */
	if (release)
		iocx__conn_release(c);
	return rc;
}

/* See iocx.h. */
void *iocx_conn_user(const iocx_conn *c)
{
	return c ? c->user : NULL;
}
