/*
 * Race torture: randomized, seeded, many threads against one engine on
 * real loopback sockets.
 *
 * CLIENTS threads connect to an echo listener, a listener that accepts
 * and closes, a refused port, a listener with a full backlog (SYNs are
 * dropped: a blackhole on Linux and Wine) and a port that flips between
 * the last two, with random deadlines, retries, first payloads, idle
 * watchdogs and engine options.  They also send, start and stop reading
 * and close (gracefully, abortively, upgrading a graceful close) the
 * connections of the other threads, and the callbacks close some of
 * their own.  The main thread destroys the engine at a random moment
 * while all that goes on.
 *
 * Checked: one on_connect and one on_close per connect that returned
 * IOCX_OK, on_close last (after every on_sent of the connection), none
 * for one that failed; no callback after iocx_engine_destroy() returned;
 * IOCX_E_CANCELLED only after a close or once destroy began; every
 * on_close reason explained (a close, the idle watchdog, destroy); no
 * byte received that was not sent; memory and handles back to where they
 * were before the engine.
 *
 * The handle lifetime rule: a handle is freed once its on_close has
 * returned and the program released it.  on_close releases the handles
 * the engine closed by itself (idle watchdog, destroy), the usual
 * pattern, so after on_close every handle is released and may be gone
 * (test_lifetime races calls against on_close instead).  So a thread
 * calls iocx_close() or iocx_send() on a connection only under the
 * connection's lock and only while its closed flag, which on_close sets
 * under that lock, is clear.  The handle is stored in the record, under
 * that lock, by whichever comes first: the thread whose iocx_connect()
 * returned it (if on_close has not run yet) or on_connect.  (The lock is
 * not held across iocx_connect(): callbacks run under the engine's
 * connection lock, which iocx_connect() takes too.)
 * iocx_connect() may race destroy, but must not start after destroy
 * returned: a gate connection, open until destroy, holds its on_close
 * (and so destroy) until no thread is inside iocx_connect() and none will
 * enter it again.
 *
 * IOCX_TORTURE_SEED=<n> replays the random choices of a run (the seed is
 * printed; thread scheduling still varies); IOCX_TORTURE_MS sets how long
 * the threads run (default RUN_MS; the 'slow' suite runs it for a minute).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

#define CLIENTS 4
/* Default run time of the client threads, in ms. */
#define RUN_MS 1500
/* Connects started but not yet closed, at most (the echo listener serves
 * PEER_ECHO_MAX_CONNS in its life, then closes what it accepts). */
#define MAX_LIVE 200
/* Records: connects per run at most, by run time. */
#define RECS_PER_MS 40
#define MIN_RECS 20000
#define MAX_PAYLOAD 2048
/* How long the gate's on_close waits for the threads to leave
 * iocx_connect() (they are out within microseconds). */
#define GATE_WAIT_MS PEER_SLOW_TIMEOUT_MS

enum target {
	T_ECHO,			/* accepts and echoes */
	T_CLOSE,		/* accepts and closes */
	T_REFUSE,		/* nothing listening */
	T_FULL,			/* full backlog: the SYN is dropped */
	T_FLIP,			/* refuses, then full, every 2 ms */
	T_COUNT
};

/* Plan bits, drawn when the connect starts. */
enum {
	PLAN_CLOSE_IN_CONNECT = 1 << 0,	/* on_connect closes it */
	PLAN_READ = 1 << 1,		/* on_connect starts reading */
	PLAN_SEND = 1 << 2,		/* on_connect sends */
	PLAN_ABORT = 1 << 3,		/* its closes are abortive */
};

struct trec {
	iocx_mutex m;
	iocx_conn *conn;		/* the handle once known, under m */
	bool started;			/* iocx_connect() returned IOCX_OK */
	bool close_requested;		/* an iocx_close() returned IOCX_OK */
	bool graceful;			/* ... and the first was graceful */
	bool closed;			/* on_close ran */
	bool connected;			/* on_connect reported IOCX_OK */
	unsigned char target;
	unsigned char plan;
	uint32_t idle_ms;
	int connects;
	int closes;
	int status;			/* of on_connect */
	int reason;			/* of on_close */
	long sends;			/* iocx_send() calls that returned OK */
	long sent;			/* on_sent calls */
	uint64_t out_bytes;		/* first payload + sends accepted */
	uint64_t in_bytes;		/* on_recv data */
	atomic_int in_callback;
};

struct torture {
	iocx_engine *engine;
	uint64_t seed;
	unsigned run_ms;
	struct sockaddr_storage addr[T_COUNT];
	int addr_len[T_COUNT];
	struct peer_echo *echo;
	struct peer *closer;
	struct peer *full;
	struct peer_flip *flip;
	struct trec *recs;
	long nrecs;
	atomic_long next;		/* next record */
	atomic_long live;		/* started, on_close not yet run */
	atomic_bool destroy_started;
	atomic_bool destroyed;
	atomic_bool no_more_connects;	/* set by the gate's on_close */
	atomic_int in_connect;		/* threads inside iocx_connect() */
	atomic_bool stop;		/* the client threads end */
	struct trec gate;
	/* Contract breaks seen on any thread; asserted on the main one. */
	iocx_mutex vlock;
	long violations;
	char first_violation[200];
	/* Synchronous results, by -code. */
	atomic_long connect_rc[IOCX_ERROR_COUNT];
	atomic_long actions;		/* closes, sends, reads from threads */
};

static struct torture T;
static const unsigned char payload_bytes[MAX_PAYLOAD];

/* ---- helpers ---------------------------------------------------------- */

static void violation(const char *fmt, ...)
{
	va_list ap;

	iocx__mutex_lock(&T.vlock);
	if (T.violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(T.first_violation, sizeof(T.first_violation), fmt,
			  ap);
		va_end(ap);
	}
	iocx__mutex_unlock(&T.vlock);
}

/* xorshift64*: the random choices of one thread. */
static uint32_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}

static uint32_t rnd_in(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + rnd(s) % (hi - lo + 1);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static long rec_index(const struct trec *r)
{
	return r == &T.gate ? -1 : (long)(r - T.recs);
}

/* Entry and exit of every callback: never two of one connection at once,
 * never once destroy returned. */
static void enter(struct trec *r, const char *cb)
{
	if (atomic_fetch_add(&r->in_callback, 1) != 0)
		violation("%s of record %ld while another callback of it ran",
			  cb, rec_index(r));
	if (atomic_load(&T.destroyed))
		violation("%s of record %ld after destroy returned", cb,
			  rec_index(r));
}

static void leave(struct trec *r)
{
	atomic_fetch_sub(&r->in_callback, 1);
}

/* Close r (its lock held, on_close not yet run). */
static void close_locked(struct trec *r, int mode)
{
	int rc = iocx_close(r->conn, mode);

	if (rc == IOCX_OK) {
		if (!r->close_requested)
			r->graceful = mode == IOCX_CLOSE_GRACEFUL;
		r->close_requested = true;
	} else if (rc != IOCX_E_ALREADY) {
		violation("iocx_close of record %ld: %s", rec_index(r),
			  iocx_error_name(rc));
	}
}

/* ---- callbacks -------------------------------------------------------- */

static void on_sent(iocx_conn *conn, int status, size_t bytes, void *user)
{
	struct trec *r = user;

	(void)conn;
	(void)status;
	(void)bytes;
	enter(r, "on_sent");
	iocx__mutex_lock(&r->m);
	if (r->closed)
		violation("on_sent of record %ld after on_close",
			  rec_index(r));
	r->sent++;
	iocx__mutex_unlock(&r->m);
	leave(r);
}

static void on_recv(iocx_conn *conn, int status, const void *data, size_t len,
		    void *user)
{
	struct trec *r = user;

	(void)conn;
	(void)data;
	enter(r, "on_recv");
	iocx__mutex_lock(&r->m);
	if (r->closed)
		violation("on_recv of record %ld after on_close",
			  rec_index(r));
	if (status == IOCX_OK)
		r->in_bytes += len;
	if (r->in_bytes > r->out_bytes)
		violation("record %ld received %llu bytes of %llu sent",
			  rec_index(r), (unsigned long long)r->in_bytes,
			  (unsigned long long)r->out_bytes);
	iocx__mutex_unlock(&r->m);
	leave(r);
}

/*
 * What a data call on an open handle may return: IOCX_OK, or an error
 * of the connection's state (IOCX_E_ALREADY only when already may be).
 */
static void check_data_rc(struct trec *r, const char *call, int rc,
			  bool already)
{
	if (rc > 0 || rc == IOCX_E_INVAL || rc <= -IOCX_ERROR_COUNT ||
	    (rc == IOCX_E_ALREADY && !already))
		violation("%s on record %ld: %s", call, rec_index(r),
			  iocx_error_name(rc));
}

static void send_locked(struct trec *r, uint64_t *rs)
{
	size_t len = rnd_in(rs, 1, MAX_PAYLOAD);
	int own = rnd(rs) & 1 ? IOCX_PAYLOAD_BORROW : IOCX_PAYLOAD_COPY;
	int rc = iocx_send(r->conn, payload_bytes, len, own, on_sent, r);

	if (rc == IOCX_OK) {
		r->sends++;
		r->out_bytes += len;
	}
	check_data_rc(r, "iocx_send", rc, false);
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *res,
		       void *user)
{
	struct trec *r = user;
	uint64_t rs = T.seed ^ (uint64_t)(uintptr_t)r;

	enter(r, "on_connect");
	iocx__mutex_lock(&r->m);
	if (r->connects++ != 0 || r->closed)
		violation("on_connect of record %ld: call %d, closed %d",
			  rec_index(r), r->connects, r->closed);
	if (r->conn == NULL)
		r->conn = conn;		/* before iocx_connect() returned */
	if (conn != r->conn)
		violation("on_connect of record %ld: another handle",
			  rec_index(r));
	r->status = res->status;
	if (res->status == IOCX_E_CANCELLED && !r->close_requested &&
	    !atomic_load(&T.destroy_started))
		violation("record %ld: IOCX_E_CANCELLED without a close or "
			  "destroy (target %d)", rec_index(r), r->target);
	if (res->status == IOCX_OK) {
		r->connected = true;
		/* Refused only by the error that broke it (a listener
		 * that closes at once, destroy), or ALREADY: another
		 * thread may have started reading as the connection
		 * opened, before this callback took the record lock. */
		if (r->plan & PLAN_READ)
			check_data_rc(r, "iocx_read_start",
				      iocx_read_start(conn, on_recv), true);
		if (r->plan & PLAN_SEND)
			send_locked(r, &rs);
	}
	if (r->plan & PLAN_CLOSE_IN_CONNECT && !r->close_requested)
		close_locked(r, r->plan & PLAN_ABORT ? IOCX_CLOSE_ABORT
						     : IOCX_CLOSE_GRACEFUL);
	iocx__mutex_unlock(&r->m);
	leave(r);
}

static void on_close(iocx_conn *conn, int reason, void *user)
{
	struct trec *r = user;
	bool why;

	enter(r, "on_close");
	iocx__mutex_lock(&r->m);
	if (r->closes++ != 0 || r->connects != 1)
		violation("on_close of record %ld: call %d after %d on_connect",
			  rec_index(r), r->closes, r->connects);
	if (r->sent != r->sends)
		violation("on_close of record %ld: %ld on_sent of %ld sends",
			  rec_index(r), r->sent, r->sends);
	switch (reason) {
	case IOCX_OK:
		why = r->close_requested;
		break;
	case IOCX_E_SHUTDOWN:
		why = atomic_load(&T.destroy_started);
		break;
	case IOCX_E_IDLE:
		why = r->idle_ms && r->connected;
		break;
	default:
		why = false;
	}
	if (!why)
		violation("on_close of record %ld: %s unexplained (close %d, "
			  "idle %u, connected %d)", rec_index(r),
			  iocx_error_name(reason), r->close_requested,
			  (unsigned)r->idle_ms, r->connected);
	/* The engine closed it and nobody released it yet (a close that
	 * came while on_close waited for the lock did): release it. */
	if (reason != IOCX_OK && !r->close_requested &&
	    iocx_close(conn, IOCX_CLOSE_GRACEFUL) != IOCX_OK)
		violation("on_close of record %ld: releasing after %s failed",
			  rec_index(r), iocx_error_name(reason));
	r->reason = reason;
	r->closed = true;
	iocx__mutex_unlock(&r->m);
	atomic_fetch_sub(&T.live, 1);
	leave(r);
}

/*
 * The gate: open until destroy closes it.  Its on_close holds destroy
 * until no thread can call iocx_connect() any more.
 */
static void gate_on_close(iocx_conn *conn, int reason, void *user)
{
	uint64_t end = peer_now_ms() + GATE_WAIT_MS;

	atomic_store(&T.no_more_connects, true);
	while (atomic_load(&T.in_connect) != 0) {
		if (peer_now_ms() > end) {
			violation("gate: threads still in iocx_connect");
			break;
		}
		peer_yield();
	}
	on_close(conn, reason, user);
}

/* ---- the client threads ----------------------------------------------- */

static void start_connect(uint64_t *rs)
{
	struct iocx_connect_request req;
	long i = atomic_fetch_add(&T.next, 1);
	iocx_conn *conn = NULL;
	struct trec *r;
	int rc;

	if (i >= T.nrecs)
		return;
	r = &T.recs[i];
	memset(&req, 0, sizeof(req));
	/* Nobody else touches r before its handle is stored. */
	r->target = (unsigned char)(rnd(rs) % T_COUNT);
	r->plan = (unsigned char)(rnd(rs) & 0xf);
	r->idle_ms = rnd(rs) % 4 == 0 ? rnd_in(rs, 5, 200) : 0;
	req.remote = (const struct sockaddr *)&T.addr[r->target];
	req.remote_len = (size_t)T.addr_len[r->target];
	if (rnd(rs) & 1) {
		req.payload = payload_bytes;
		req.payload_len = rnd_in(rs, 1, MAX_PAYLOAD);
		req.payload_ownership = rnd(rs) & 1 ? IOCX_PAYLOAD_BORROW
						    : IOCX_PAYLOAD_COPY;
		r->out_bytes = req.payload_len;
	}
	req.on_connect = on_connect;
	req.on_close = on_close;
	req.user = r;
	/* No deadline now and then: destroy or a close ends those. */
	req.deadline_ms = rnd(rs) % 10 ? rnd_in(rs, 1, 100) : 0;
	req.retry.max_attempts = rnd(rs) % 4;
	req.retry.backoff_initial_ms = rnd_in(rs, 1, 5);
	req.retry.backoff_max_ms = rnd_in(rs, 5, 20);
	req.idle_ms = r->idle_ms;

	atomic_fetch_add(&T.in_connect, 1);
	if (atomic_load(&T.no_more_connects)) {
		atomic_fetch_sub(&T.in_connect, 1);
		return;
	}
	/* Counted live before its on_close can count it down. */
	atomic_fetch_add(&T.live, 1);
	rc = iocx_connect(T.engine, &req, &conn);
	atomic_fetch_sub(&T.in_connect, 1);
	atomic_fetch_add(&T.connect_rc[rc <= 0 && rc > -IOCX_ERROR_COUNT
					       ? -rc : 0], 1);
	iocx__mutex_lock(&r->m);
	if (rc == IOCX_OK) {
		r->started = true;
		/* Still valid unless on_close ran (then it may be freed). */
		if (!r->closed && r->conn == NULL)
			r->conn = conn;
		else if (!r->closed && r->conn != conn)
			violation("record %ld: on_connect had another handle",
				  i);
	} else {
		atomic_fetch_sub(&T.live, 1);
		/* epoll may report a refused connect at once. */
		if (!(rc == IOCX_E_SHUTDOWN &&
		      atomic_load(&T.destroy_started)) &&
		    rc != IOCX_E_REFUSED)
			violation("iocx_connect (target %d): %s", r->target,
				  iocx_error_name(rc));
	}
	iocx__mutex_unlock(&r->m);
}

/* Do something to the connection of a random record, if it is open. */
static void act(uint64_t *rs)
{
	long n = atomic_load(&T.next);
	struct trec *r;
	uint32_t what = rnd(rs) % 8;

	if (n > T.nrecs)
		n = T.nrecs;
	if (n == 0)
		return;
	r = &T.recs[rnd(rs) % (uint32_t)n];
	iocx__mutex_lock(&r->m);
	if (!r->conn || r->closed)
		goto out;
	atomic_fetch_add(&T.actions, 1);
	if (r->close_requested) {
		/* A graceful close made abortive, or refused (ALREADY). */
		if (what == 0)
			close_locked(r, IOCX_CLOSE_ABORT);
		goto out;
	}
	if (what < 3) {
		close_locked(r, rnd(rs) & 1 ? IOCX_CLOSE_ABORT
					    : IOCX_CLOSE_GRACEFUL);
	} else if (what < 6) {
		if (r->connected)
			send_locked(r, rs);
	} else if (what == 6) {
		check_data_rc(r, "iocx_read_start",
			      iocx_read_start(r->conn, on_recv), true);
	} else {
		check_data_rc(r, "iocx_read_stop", iocx_read_stop(r->conn),
			      true);
	}
out:
	iocx__mutex_unlock(&r->m);
}

static void client(void *arg)
{
	uint64_t rs = T.seed * 0x9e3779b97f4a7c15ull + (uintptr_t)arg + 1;
	uint64_t end = peer_now_ms() + T.run_ms + 60000;

	while (!atomic_load(&T.stop) && peer_now_ms() < end) {
		if (rnd(&rs) % 2 == 0 && atomic_load(&T.live) < MAX_LIVE &&
		    !atomic_load(&T.no_more_connects))
			start_connect(&rs);
		else
			act(&rs);
		if (rnd(&rs) % 64 == 0)
			peer_yield();
	}
}

/* ---- the test --------------------------------------------------------- */

static void open_gate(void)
{
	struct iocx_connect_request req;
	uint64_t end = peer_now_ms() + PEER_TIMEOUT_MS;
	bool up;

	memset(&req, 0, sizeof(req));
	req.remote = (const struct sockaddr *)&T.addr[T_ECHO];
	req.remote_len = (size_t)T.addr_len[T_ECHO];
	req.on_connect = on_connect;
	req.on_close = gate_on_close;
	req.user = &T.gate;
	atomic_fetch_add(&T.live, 1);
	assert_int_equal(iocx_connect(T.engine, &req, NULL), IOCX_OK);
	do {
		iocx__mutex_lock(&T.gate.m);
		T.gate.started = true;
		up = T.gate.connects == 1;
		iocx__mutex_unlock(&T.gate.m);
		if (!up)
			peer_yield();
	} while (!up && peer_now_ms() < end);
	assert_true(up);
	assert_int_equal(T.gate.status, IOCX_OK);
}

static void target(enum target t, const struct sockaddr_storage *ss, int len)
{
	T.addr[t] = *ss;
	T.addr_len[t] = len;
}

static void torture_random_races_keep_every_promise(void **state)
{
	struct iocx_engine_options o;
	peer_thread threads[CLIENTS];
	peer_event *never = peer_event_new();
	uint64_t rs, t0;
	unsigned h0, destroy_ms;
	long live0, started = 0, failed = 0, byreason[4] = { 0 };
	long bystatus[IOCX_ERROR_COUNT] = { 0 };

	(void)state;
	assert_non_null(never);
	T.seed = env_u64("IOCX_TORTURE_SEED", iocx__now_ns() ^ 0x5eed);
	T.run_ms = (unsigned)env_u64("IOCX_TORTURE_MS", RUN_MS);
	rs = T.seed ? T.seed : 1;
	printf("torture: IOCX_TORTURE_SEED=%llu IOCX_TORTURE_MS=%u (%s)\n",
	       (unsigned long long)T.seed, T.run_ms, peer_backend());
	iocx__mutex_init(&T.vlock);

	h0 = peer_handle_count();
	live0 = peer_alloc_live();
	T.echo = peer_echo_listen(AF_INET, "127.0.0.1");
	T.closer = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	T.full = peer_listen_full(AF_INET, "127.0.0.1");
	T.flip = peer_flip_start(AF_INET, "127.0.0.1", 2);
	assert_non_null(T.echo);
	assert_non_null(T.closer);
	assert_non_null(T.full);
	assert_non_null(T.flip);
	target(T_ECHO, &T.echo->addr, T.echo->addr_len);
	target(T_CLOSE, &T.closer->addr, T.closer->addr_len);
	target(T_FULL, &T.full->addr, T.full->addr_len);
	target(T_FLIP, &T.flip->addr, T.flip->addr_len);
	T.addr_len[T_REFUSE] = peer_addr(&T.addr[T_REFUSE], AF_INET,
					 "127.0.0.1",
					 peer_free_port(AF_INET, "127.0.0.1"));

	T.nrecs = (long)T.run_ms * RECS_PER_MS;
	if (T.nrecs < MIN_RECS)
		T.nrecs = MIN_RECS;
	T.recs = calloc((size_t)T.nrecs, sizeof(*T.recs));
	assert_non_null(T.recs);
	for (long i = 0; i < T.nrecs; i++)
		iocx__mutex_init(&T.recs[i].m);
	iocx__mutex_init(&T.gate.m);

	iocx_engine_options_init(&o);
	o.workers = rnd_in(&rs, 1, 4);
	o.recycle_sockets = rnd(&rs) & 1;
	o.batch_closes = rnd(&rs) & 1;
	destroy_ms = rnd_in(&rs, T.run_ms / 4, T.run_ms);
	printf("torture: %u workers, recycle %d, batch_closes %d, destroy "
	       "after %u ms\n", o.workers, o.recycle_sockets, o.batch_closes,
	       destroy_ms);
	assert_int_equal(iocx_engine_create(&o, &T.engine), IOCX_OK);
	open_gate();

	for (uintptr_t i = 0; i < CLIENTS; i++) {
		threads[i] = peer_thread_start(client, (void *)i);
		assert_non_null(threads[i]);
	}
	/* The random moment of the destroy (nobody sets the event). */
	t0 = peer_now_ms();
	(void)peer_event_wait(never, destroy_ms);
	atomic_store(&T.destroy_started, true);
	assert_int_equal(iocx_engine_destroy(T.engine), IOCX_OK);
	atomic_store(&T.destroyed, true);
	printf("torture: destroy returned after %llu ms, %ld connects "
	       "begun, %ld actions\n",
	       (unsigned long long)(peer_now_ms() - t0),
	       atomic_load(&T.next), atomic_load(&T.actions));
	/* Let the threads act on closed records a moment more. */
	(void)peer_event_wait(never, 20);
	atomic_store(&T.stop, true);
	for (int i = 0; i < CLIENTS; i++)
		assert_true(peer_thread_join(threads[i], PEER_SLOW_TIMEOUT_MS));
	peer_event_free(never);

	if (T.violations)
		fail_msg("%ld contract violations, first: %s (seed %llu)",
			 T.violations, T.first_violation,
			 (unsigned long long)T.seed);
	if (T.next > T.nrecs)
		T.next = T.nrecs;
	for (long i = 0; i < T.next; i++) {
		struct trec *r = &T.recs[i];

		if (!r->started) {
			assert_int_equal(r->connects + r->closes, 0);
			failed++;
			continue;
		}
		started++;
		if (r->connects != 1 || r->closes != 1)
			fail_msg("record %ld: %d on_connect, %d on_close (seed "
				 "%llu)", i, r->connects, r->closes,
				 (unsigned long long)T.seed);
		bystatus[-r->status]++;
		byreason[r->reason == IOCX_OK ? 0 : r->reason ==
			 IOCX_E_SHUTDOWN ? 1 : r->reason == IOCX_E_IDLE ? 2
									: 3]++;
	}
	assert_int_equal(T.gate.closes, 1);
	assert_int_equal(T.gate.reason, IOCX_E_SHUTDOWN);
	assert_int_equal(atomic_load(&T.live), 0);
	printf("torture: %ld started, %ld refused at once or after destroy; "
	       "on_close: %ld closed, %ld by destroy, %ld idle\n", started,
	       failed, byreason[0], byreason[1], byreason[2]);
	for (int c = 0; c < IOCX_ERROR_COUNT; c++)
		if (atomic_load(&T.connect_rc[c]))
			printf("  iocx_connect %s: %ld\n", iocx_error_name(-c),
			       atomic_load(&T.connect_rc[c]));
	for (int c = 0; c < IOCX_ERROR_COUNT; c++)
		if (bystatus[c])
			printf("  on_connect %s: %ld\n", iocx_error_name(-c),
			       bystatus[c]);
	assert_int_equal(byreason[3], 0);
	assert_true(started > 0);

	peer_echo_close(T.echo);
	peer_close(T.closer);
	peer_close(T.full);
	peer_flip_stop(T.flip);
	free(T.recs);
	peer_assert_no_leak(live0);
	if (peer_handle_count() > h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after destroy, %u before (seed %llu)",
			 peer_handle_count(), h0, (unsigned long long)T.seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torture_random_races_keep_every_promise),
	};

	peer_init((unsigned)(env_u64("IOCX_TORTURE_MS", RUN_MS) / 1000) + 150);
	return cmocka_run_group_tests_name("net_torture", tests, NULL, NULL);
}
