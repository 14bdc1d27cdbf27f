/*
 * Unit tests of connect deadlines, retries with backoff, the idle
 * watchdog and the handle lifetime around it (who frees a handle the
 * engine closed), and the engine's use of its timer heap, through the public API on a manual engine over
 * the scripted fake backend, with a fake clock: the test swaps e->clock
 * for fake_clock() and moves time itself, so every deadline and backoff
 * is exact to the millisecond and nothing depends on the machine's speed.
 *
 * (The file is not called test_deadline.c: tests/net/test_deadline.c
 * exists, and both test lists make executables named after their files.)
 *
 * One test runs a real engine with worker threads and the real clock on a
 * small thread-safe backend, so that timers fired by workers racing
 * completions on other workers run under TSan too.
 *
 * Callbacks check their status/reason with check_expected() and record
 * the rest in a struct probe; the library allocator is cmocka's checked
 * heap, so a connection or timer block that is never freed fails the test.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L	/* nanosleep */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"		/* <winsock2.h> before <windows.h> */
#include "engine.h"
#include "conn.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

/* connect_payload_cap of the fixture: small, so a short payload exceeds it. */
#define CAP 16
#define PORT 4242
#define MS 1000000ull
/* The fake clock starts far from 0, so no code gets away with assuming
 * small clock values. */
#define T0 (1000000ull * MS)

/* ---- the fake clock ------------------------------------------------- */

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* Milliseconds since the fixture started. */
static uint64_t now_ms(void)
{
	return (fake_now - T0) / MS;
}

/* ---- probes and callbacks ------------------------------------------- */

struct probe {
	iocx_conn *conn;
	bool unchecked;		/* record only, no check_expected */

	unsigned connects;	/* on_connect calls */
	unsigned closes;	/* on_close calls */
	struct iocx_connect_result res;
	int reason;
	bool sock_closed_at_connect;	/* current socket, at on_connect */
	bool abort_at_connect;
	/* Handle lifetime: on_close releases its handle unless the reason
	 * is IOCX_OK (release_rc), and touches other's handle (other_user,
	 * other_rc: iocx_conn_user and iocx_close on it). */
	bool release_in_close;
	int release_rc;
	struct probe *other;
	void *other_user;
	int other_rc;
};

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	struct probe p[80];
	unsigned engines;	/* fake engines alive besides fx->e */
	bool holds_ref;		/* the body holds a timer's reference */
	void *sentinel;		/* see setup() */
};

static struct fx the_fx;
static unsigned cb_depth;	/* > 0 while a callback runs */
static bool cb_lenient;		/* teardown: callbacks only record */
static unsigned char payload[64];

static void cb_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct probe *p = user;
	int status = r->status;
	const struct fake_sock *s = fake_sock(fake_id(conn));

	cb_depth++;
	if (!p->unchecked && !cb_lenient)
		check_expected(status);
	p->connects++;
	p->res = *r;
	p->sock_closed_at_connect = s->closed || !s->opened;
	p->abort_at_connect = s->abort;
	cb_depth--;
}

static void cb_close(iocx_conn *conn, int reason, void *user)
{
	struct probe *p = user;

	(void)conn;
	cb_depth++;
	if (!p->unchecked && !cb_lenient)
		check_expected(reason);
	p->closes++;
	p->reason = reason;
	if (p->release_in_close && reason != IOCX_OK)
		p->release_rc = iocx_close(conn, IOCX_CLOSE_ABORT);
	if (p->other) {
		p->other_user = iocx_conn_user(p->other->conn);
		p->other_rc = iocx_close(p->other->conn, IOCX_CLOSE_GRACEFUL);
	}
	cb_depth--;
}

/* ---- fixtures ------------------------------------------------------- */

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 7 + 3);
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *fx = &the_fx;
	struct iocx_engine_options o;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	cb_lenient = false;
	fake_now = T0;

	fx->engines = fake_engines();
	iocx_engine_options_init(&o);
	o.connect_payload_cap = CAP;
	if (cfx_engine_create(&o, &fx->e) != IOCX_OK)
		return -1;
	/* Tests may swap the clock once the engine exists (engine.h). */
	fx->e->clock = fake_clock;
	fake_log_clear();

	cfx_loopback4(&fx->v4, PORT);

	/* cmocka walks its leak list from the last block allocated before
	 * the body: one that lives until the teardown keeps the walk off
	 * blocks the body frees. */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx == NULL)
		return 0;
	test_free(fx->sentinel);
	fx->sentinel = NULL;
	/* A failure jumped out of the engine (its locks may be held), or
	 * out of a test holding a connection's reference (destroy would
	 * wait for it forever): leave the engine alone. */
	if (cfx_engine_abandon(&fx->e, cb_depth > 0 || fx->holds_ref))
		return 0;
	cb_lenient = true;
	fake_set_cancel_completes(true);
	return cfx_engine_destroy(&fx->e, fx->engines);
}

/* ---- helpers -------------------------------------------------------- */

static struct iocx_connect_request request(struct fx *fx, struct probe *p)
{
	return cfx_request(&fx->v4, cb_connect, cb_close, p);
}

static struct iocx_connect_request request_deadline(struct fx *fx,
						    struct probe *p,
						    uint32_t deadline_ms)
{
	struct iocx_connect_request r = request(fx, p);

	r.deadline_ms = deadline_ms;
	return r;
}

static struct iocx_connect_request request_retry(struct fx *fx,
						 struct probe *p,
						 unsigned max_attempts,
						 uint32_t initial_ms,
						 uint32_t max_ms)
{
	struct iocx_connect_request r = request(fx, p);

	r.retry.max_attempts = max_attempts;
	r.retry.backoff_initial_ms = initial_ms;
	r.retry.backoff_max_ms = max_ms;
	return r;
}

static iocx_conn *start(struct fx *fx, struct probe *p,
			const struct iocx_connect_request *r)
{
	assert_int_equal(iocx_connect(fx->e, r, &p->conn), IOCX_OK);
	assert_non_null(p->conn);
	assert_int_equal(p->connects, 0);
	return p->conn;
}

/* The attempt in flight is refused (WSAECONNREFUSED); pump what follows. */
static void refuse(struct fx *fx, struct probe *p)
{
	fake_complete(p->conn, IOCX_E_REFUSED, 10061, 0);
	fake_pump(fx->e);
}

/* Deliver what is queued, set the clock to ms after the start, and give
 * the engine one run: expired timers fire; their cancels are queued. */
static void at(struct fx *fx, uint64_t ms)
{
	fake_pump(fx->e);
	assert_true(T0 + ms * MS >= fake_now);	/* time never goes back */
	fake_now = T0 + ms * MS;
	iocx__engine_run(fx->e, 0);
}

static void step(struct fx *fx, uint64_t ms)
{
	at(fx, now_ms() + ms);
}

/* IOCX_EV_WAKE posts in the call log. */
static unsigned wake_posts(void)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < fake_log_len(); i++) {
		const struct fake_rec *r = fake_log_at(i);

		if (r->call == FAKE_POST && r->len == IOCX_EV_WAKE)
			n++;
	}
	return n;
}

/* Timers armed in the engine's heap right now. */
static size_t timers_armed(const struct fx *fx)
{
	return fx->e->timers.len;
}

/* Close a connection whose outcome was reported: on_close(IOCX_OK). */
static void close_and_pump(struct fx *fx, struct probe *p)
{
	unsigned closes = p->closes;

	if (!p->unchecked)
		expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, closes + 1);
}

/* The stats of fx's engine are exactly these (conn_fixture.h lists the
 * fields compared). */
#define check_stats(fx, ...) cfx_check_stats((fx)->e, true, __VA_ARGS__)

/* A request iocx_connect must reject with code, changing nothing. */
static void check_rejected(struct fx *fx,
			   const struct iocx_connect_request *r, int code)
{
	iocx_conn *const sentinel = (iocx_conn *)(void *)&the_fx;
	iocx_conn *out = sentinel;
	struct iocx_stats before, after;
	unsigned long live = hook_allocs - hook_frees;

	assert_int_equal(iocx_engine_stats(fx->e, &before), IOCX_OK);
	fake_log_clear();
	assert_int_equal(iocx_connect(fx->e, r, &out), code);
	assert_ptr_equal(out, sentinel);
	assert_int_equal(fake_log_len(), 0);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(iocx_engine_stats(fx->e, &after), IOCX_OK);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(hook_allocs - hook_frees, live);
}

/* ---- deadlines ------------------------------------------------------ */

static void deadline_expiry_reports_timedout(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	assert_int_equal(timers_armed(fx), 1);
	check_stats(fx, .connects_started = 1, .in_flight = 1, .open = 1);

	/* One millisecond early: nothing happens. */
	at(fx, 49);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	assert_int_equal(p->connects, 0);

	/* On time: the connect is cancelled, the report waits for its
	 * completion. */
	at(fx, 50);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 });
	assert_int_equal(p->connects, 0);
	assert_int_equal(timers_armed(fx), 0);
	assert_int_equal(fake_pending(fx->e), 1);

	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(p->res.payload_sent, 0);
	assert_int_equal(p->res.latency_ns, 50 * MS);
	assert_true(p->sock_closed_at_connect);
	assert_false(p->abort_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1, .open = 1);

	close_and_pump(fx, p);
	assert_int_equal(p->reason, IOCX_OK);
	assert_int_equal(fake_count(FAKE_CLOSE, 1), 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1, .closed = 1);
}

static void deadline_completion_first_disarms(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	at(fx, 30);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(p->res.latency_ns, 30 * MS);
	assert_int_equal(timers_armed(fx), 0);

	/* Long past the deadline: nothing fires. */
	at(fx, 50);
	at(fx, 10000);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->conn->state, CONN_OPEN);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .open = 1);
	close_and_pump(fx, p);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_CLOSE, 1, 0 });
}

static void deadline_zero_arms_no_timer(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);

	start(fx, p, &r);
	/* No deadline and no retry policy: no reservation, no timer. */
	assert_int_equal(fx->e->timer_users, 0);
	assert_int_equal(timers_armed(fx), 0);
	assert_int_equal(wake_posts(), 0);
	at(fx, 100000);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	close_and_pump(fx, p);
}

/* The completion was queued when the deadline fired: it still wins. */
static void deadline_queued_success_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	fake_pump(fx->e);	/* the wake-up the deadline posted */
	fake_complete(p->conn, IOCX_OK, 0, 0);
	/* Fire the timer before the completion is dequeued, as a worker's
	 * timer pass can while another worker holds the completion. */
	fake_now = T0 + 50 * MS;
	iocx__engine_run_timers(fx->e);
	assert_int_equal(fake_count(FAKE_CANCEL, 1), 1);
	assert_int_equal(p->conn->state, CONN_CANCELLING);
	/* The fake queues nothing for a cancel of a finished operation. */
	assert_int_equal(fake_pending(fx->e), 1);

	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.attempts, 1);
	assert_false(p->sock_closed_at_connect);
	assert_int_equal(p->conn->state, CONN_OPEN);
	assert_int_equal(timers_armed(fx), 0);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CONNECTED, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .open = 1);
	close_and_pump(fx, p);
	assert_false(fake_sock(1)->abort);
}

/* The cancel was too late: the success arrives after it and wins. */
static void deadline_success_after_cancel_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	r.payload = payload;
	r.payload_len = 10;
	start(fx, p, &r);
	fake_set_cancel_completes(false);
	at(fx, 50);
	assert_int_equal(fake_count(FAKE_CANCEL, 1), 1);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);

	at(fx, 60);
	fake_complete(p->conn, IOCX_OK, 0, 10);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 10);
	assert_int_equal(p->res.latency_ns, 60 * MS);
	assert_int_equal(p->conn->state, CONN_OPEN);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 10, .open = 1);
	close_and_pump(fx, p);
}

/* The cancel was too late for a real failure too: it is reported as is. */
static void deadline_failure_after_cancel_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	fake_set_cancel_completes(false);
	at(fx, 50);
	cfx_complete_connect(fx->e, p->conn, IOCX_E_HOSTUNREACH, 1232);
	assert_int_equal(p->res.os_code, 1232);
	assert_true(p->sock_closed_at_connect);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_HOSTUNREACH] = 1, .open = 1);
	close_and_pump(fx, p);
}

static void deadline_while_sending_resets_and_reports_timedout(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	r.payload = payload;
	r.payload_len = 40;
	start(fx, p, &r);
	at(fx, 10);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_SENDING);
	/* The deadline covers the payload too: still armed. */
	assert_int_equal(timers_armed(fx), 1);

	at(fx, 49);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	at(fx, 50);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	fake_pump(fx->e);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_int_equal(p->res.attempts, 1);
	/* Connected with the payload cut short: reset, never a FIN. */
	assert_true(p->sock_closed_at_connect);
	assert_true(p->abort_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 40 - CAP },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 1 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1, .payload_bytes = CAP,
		    .open = 1);
	close_and_pump(fx, p);
}

static void deadline_late_success_with_payload_left_times_out(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	r.payload = payload;
	r.payload_len = 40;
	start(fx, p, &r);
	fake_set_cancel_completes(false);
	at(fx, 50);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_true(p->sock_closed_at_connect);
	assert_true(p->abort_at_connect);
	assert_int_equal(fake_count(FAKE_SEND, 0), 0);
	close_and_pump(fx, p);
}

/* The deadline asked first: a close after it does not change the result. */
static void deadline_then_close_reports_timedout(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	r.deadline_ms = 50;
	start(fx, p, &r);
	fake_set_cancel_completes(false);
	at(fx, 50);
	assert_int_equal(fake_count(FAKE_CANCEL, 1), 1);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);
	/* The close issues no second cancel: one is in progress. */
	assert_int_equal(fake_count(FAKE_CANCEL, 1), 1);

	fake_complete(p->conn, IOCX_E_CANCELLED, 0xC0000120u, 0);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(p->closes, 1);
	/* A close was wanted: no retry despite attempts left. */
	at(fx, 10000);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1, .closed = 1);
}

/* The close asked first: the deadline passing later changes nothing. */
static void close_then_deadline_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	fake_set_cancel_completes(false);
	at(fx, 10);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_CANCELLING);
	at(fx, 50);
	at(fx, 100);
	assert_int_equal(fake_count(FAKE_CANCEL, 1), 1);
	assert_int_equal(p->connects, 0);

	fake_complete(p->conn, IOCX_E_CANCELLED, 0xC0000120u, 0);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .errors[-IOCX_E_CANCELLED] = 1,
		    .closed = 1);
}

static void destroy_with_deadline_armed_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);

	start(fx, p, &r);
	at(fx, 20);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fake_engines(), fx->engines);
}

/* ---- retries ---------------------------------------------------------- */

static void retry_refused_retries_on_fresh_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 100, 1000);

	r.payload = payload;
	r.payload_len = 10;
	start(fx, p, &r);
	assert_int_equal(timers_armed(fx), 0);

	/* Attempt 1 refused at 5 ms: no report, socket closed, waiting. */
	at(fx, 5);
	refuse(fx, p);
	assert_int_equal(p->connects, 0);
	assert_true(fake_sock(1)->closed);
	assert_false(fake_sock(1)->abort);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_int_equal(timers_armed(fx), 1);
	check_stats(fx, .connects_started = 1, .retries = 1, .in_flight = 1,
		    .open = 1);

	/* The backoff is 50..100 ms. */
	at(fx, 5 + 49);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	at(fx, 5 + 100);
	assert_int_equal(fake_id(p->conn), 2);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	/* The payload goes again from its first byte. */
	assert_int_equal(fake_sock(2)->connects, 1);
	assert_int_equal(fake_sock(2)->issued, 10);
	assert_memory_equal(fake_sock(2)->capture, payload, 10);

	/* Attempt 2 refused: the next backoff is 100..200 ms. */
	refuse(fx, p);
	assert_int_equal(p->connects, 0);
	check_stats(fx, .connects_started = 1, .retries = 2, .in_flight = 1,
		    .open = 1);
	at(fx, 105 + 99);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	at(fx, 105 + 200);
	assert_int_equal(fake_id(p->conn), 3);
	assert_memory_equal(fake_sock(3)->capture, payload, 10);

	/* Attempt 3 succeeds. */
	fake_complete(p->conn, IOCX_OK, 0, 10);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 3);
	assert_int_equal(p->res.payload_sent, 10);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(p->res.latency_ns, 305 * MS);
	assert_false(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 10 },
			{ FAKE_CLOSE, 1, 0 },
			{ FAKE_OPEN, 2, 0 }, { FAKE_CONNECT, 2, 10 },
			{ FAKE_CLOSE, 2, 0 },
			{ FAKE_OPEN, 3, 0 }, { FAKE_CONNECT, 3, 10 },
			{ FAKE_CONNECTED, 3, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 2, .payload_bytes = 10, .open = 1);
	close_and_pump(fx, p);
	assert_true(fake_sock(3)->closed);
	assert_int_equal(timers_armed(fx), 0);
}

/* ---- same-socket retries (Windows: ConnectEx again on the socket) ------ */

static unsigned hook_calls;
static iocx_socket_t hook_sock;

static int cb_socket(iocx_socket_t sock, int family, void *user)
{
	(void)family;
	(void)user;
	hook_calls++;
	hook_sock = sock;
	return 0;
}

/* A retry request with the hook, refused at once by its first attempt. */
static void start_refused_with_hook(struct fx *fx, struct probe *p,
				    unsigned max_attempts)
{
	struct iocx_connect_request r = request_retry(fx, p, max_attempts,
						      100, 1000);

	r.payload = payload;
	r.payload_len = 10;
	r.on_socket = cb_socket;
	hook_calls = 0;
	start(fx, p, &r);
	step(fx, 5);
	refuse(fx, p);
}

static void retry_refused_reconnects_kept_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	fake_set_keep(FAKE_KEEP_ON);
	start_refused_with_hook(fx, p, 3);
	/* The refused socket stays open through the backoff. */
	assert_false(fake_sock(1)->closed);
	assert_true(fake_sock(1)->kept);
	assert_true(p->conn->held);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	check_stats(fx, .connects_started = 1, .retries = 1, .in_flight = 1,
		    .open = 1);

	/* Attempt 2: the same socket, no new open, no second hook call;
	 * the payload goes again from its first byte. */
	at(fx, 5 + 100);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	assert_false(p->conn->held);
	assert_int_equal(fake_id(p->conn), 1);
	assert_int_equal(fake_sock(1)->connects, 2);
	assert_int_equal(fake_sock(1)->issued, 20);
	assert_memory_equal(fake_sock(1)->capture, payload, 10);
	assert_int_equal(hook_calls, 1);
	assert_true(hook_sock == FAKE_NATIVE(1));
	refuse(fx, p);
	at(fx, 105 + 200);
	assert_int_equal(fake_sock(1)->connects, 3);

	fake_complete(p->conn, IOCX_OK, 0, 10);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 3);
	assert_int_equal(p->res.payload_sent, 10);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 10 },
			{ FAKE_CONNECT, 1, 10 }, { FAKE_CONNECT, 1, 10 },
			{ FAKE_CONNECTED, 1, 0 });
	assert_int_equal(hook_calls, 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 2, .same_socket_retries = 2,
		    .payload_bytes = 10, .open = 1);
	close_and_pump(fx, p);
	assert_true(fake_sock(1)->closed);
}

/* An attempt the deadline cancelled leaves its socket undefined: the
 * retry takes a fresh one even where sockets are kept. */
static void retry_after_deadline_cancel_takes_fresh_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 10, 10);

	fake_set_keep(FAKE_KEEP_ON);
	r.deadline_ms = 50;
	start(fx, p, &r);
	at(fx, 50);
	fake_pump(fx->e);	/* the cancel's completion */
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_false(p->conn->held);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(fake_sock(1)->keeps, 0);
	at(fx, 60);
	assert_int_equal(fake_id(p->conn), 2);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 1, .open = 1);
	close_and_pump(fx, p);
}

/*
 * Where the OS refuses the second connect on a socket (Wine 8), the
 * attempt goes on with a fresh socket (hook included), counted, and the
 * engine keeps no socket from then on, for any connection.
 */
static void retry_reconnect_refused_falls_back_once_per_engine(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct probe *q = &fx->p[1];

	fake_set_keep(FAKE_KEEP_REFUSED);
	start_refused_with_hook(fx, p, 3);
	assert_true(p->conn->held);
	at(fx, 5 + 100);
	/* The reconnect on socket 1 failed at once: closed, socket 2. */
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	assert_int_equal(fake_id(p->conn), 2);
	assert_true(fake_sock(1)->closed);
	assert_false(fake_sock(1)->abort);
	assert_int_equal(hook_calls, 2);
	assert_true(hook_sock == FAKE_NATIVE(2));
	assert_int_equal(fake_sock(2)->issued, 10);
	check_stats(fx, .connects_started = 1, .retries = 1,
		    .same_socket_fallbacks = 1, .in_flight = 1, .open = 1);

	/* Refused again: this socket is not kept any more. */
	refuse(fx, p);
	assert_false(p->conn->held);
	assert_true(fake_sock(2)->closed);
	assert_int_equal(fake_sock(2)->keeps, 0);

	/* Nor is another connection's. */
	start_refused_with_hook(fx, q, 2);
	assert_false(q->conn->held);
	assert_true(fake_sock(fake_id(q->conn))->closed);

	/* Both retry on fresh sockets 4 and 5 (in the order their jittered
	 * backoffs end). */
	at(fx, 1000);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 5);
	assert_true(fake_id(p->conn) >= 4 && fake_id(q->conn) >= 4);
	assert_int_equal(fake_sock(1)->connects, 2);
	assert_int_equal(fake_sock(1)->keeps, 1);
	for (unsigned id = 2; id <= 5; id++) {
		assert_int_equal(fake_sock(id)->connects, 1);
		assert_int_equal(fake_sock(id)->keeps, 0);
	}
	fake_complete(p->conn, IOCX_OK, 0, 10);
	fake_complete(q->conn, IOCX_OK, 0, 10);
	expect_value_count(cb_connect, status, IOCX_OK, 2);
	fake_pump(fx->e);
	check_stats(fx, .connects_started = 2, .connects_ok = 2,
		    .retries = 3, .same_socket_fallbacks = 1,
		    .payload_bytes = 20, .open = 2);
	close_and_pump(fx, p);
	close_and_pump(fx, q);
}

/* A close during a backoff that holds a socket closes it, once. */
static void close_during_backoff_closes_kept_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	fake_set_keep(FAKE_KEEP_ON);
	start_refused_with_hook(fx, p, 3);
	assert_true(p->conn->held);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(p->sock_closed_at_connect);
	assert_true(fake_sock(1)->closed);
	assert_false(fake_sock(1)->abort);	/* it never connected */
	assert_int_equal(fake_count(FAKE_CLOSE, 1), 1);
	assert_int_equal(timers_armed(fx), 0);
	at(fx, 1000);	/* the backoff's time: nothing opens */
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	assert_int_equal(fake_count(FAKE_CONNECT, 0), 1);
}

static void destroy_during_backoff_closes_kept_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	fake_set_keep(FAKE_KEEP_ON);
	start_refused_with_hook(fx, p, 3);
	assert_true(p->conn->held);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(fake_count(FAKE_CLOSE, 1), 1);
	assert_int_equal(fake_engines(), fx->engines);
}

/* The total deadline passing during such a backoff closes it too. */
static void total_deadline_during_backoff_closes_kept_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 1000, 1000);

	fake_set_keep(FAKE_KEEP_ON);
	r.total_deadline_ms = 200;
	start(fx, p, &r);
	refuse(fx, p);
	assert_true(p->conn->held);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 200);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.os_code, 0);
	assert_true(p->sock_closed_at_connect);
	assert_int_equal(fake_count(FAKE_CLOSE, 1), 1);
	close_and_pump(fx, p);
	assert_int_equal(fake_count(FAKE_CLOSE, 1), 1);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
}

static void retry_exhausted_reports_last_error(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);
	unsigned i;

	start(fx, p, &r);
	for (i = 1; i <= 3; i++) {
		assert_int_equal(fake_id(p->conn), i);
		if (i == 3)
			expect_value(cb_connect, status, IOCX_E_REFUSED);
		fake_complete(p->conn, IOCX_E_REFUSED, 10060 + i, 0);
		fake_pump(fx->e);
		step(fx, 10);
	}
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.attempts, 3);
	/* The last attempt's raw code. */
	assert_int_equal(p->res.os_code, 10063);
	assert_true(p->sock_closed_at_connect);
	assert_int_equal(timers_armed(fx), 0);
	at(fx, 100000);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
	assert_int_equal(fake_count(FAKE_CLOSE, 0), 3);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .retries = 2, .errors[-IOCX_E_REFUSED] = 1, .open = 1);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .retries = 2, .errors[-IOCX_E_REFUSED] = 1, .closed = 1);
}

static void retry_netunreach_and_os_timedout_are_retried(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	start(fx, p, &r);
	fake_complete(p->conn, IOCX_E_NETUNREACH, 1231, 0);
	fake_pump(fx->e);
	step(fx, 10);
	assert_int_equal(fake_id(p->conn), 2);
	/* A timeout the OS reports (no deadline of ours) is retried too. */
	fake_complete(p->conn, IOCX_E_TIMEDOUT, 0xC00000B5u, 0);
	fake_pump(fx->e);
	step(fx, 10);
	assert_int_equal(fake_id(p->conn), 3);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 3);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 2, .open = 1);
	close_and_pump(fx, p);
}

static void retry_not_for_other_errors(void **state)
{
	struct fx *fx = *state;
	static const int codes[] = {
		IOCX_E_RESET, IOCX_E_ADDRINUSE, IOCX_E_HOSTUNREACH,
		IOCX_E_ABORTED, IOCX_E_PORTS_EXHAUSTED, IOCX_E_SYSTEM,
		IOCX_E_CANCELLED,
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	struct iocx_stats st;
	size_t i;

	for (i = 0; i < n; i++) {
		struct probe *p = &fx->p[i];
		struct iocx_connect_request r = request_retry(fx, p, 5, 10,
							      10);

		start(fx, p, &r);
		fake_complete(p->conn, codes[i], 1000 + (uint32_t)i, 0);
		expect_value(cb_connect, status, codes[i]);
		fake_pump(fx->e);
		assert_int_equal(p->connects, 1);
		assert_int_equal(p->res.attempts, 1);
		assert_int_equal(p->res.os_code, 1000 + i);
		assert_true(p->sock_closed_at_connect);
	}
	assert_int_equal(timers_armed(fx), 0);
	at(fx, 100000);
	assert_int_equal(fake_count(FAKE_OPEN, 0), n);
	assert_int_equal(iocx_engine_stats(fx->e, &st), IOCX_OK);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.connects_failed, n);
	for (i = 0; i < n; i++)
		close_and_pump(fx, &fx->p[i]);
}

/* A deadline's TIMEDOUT is retryable; every attempt gets its own deadline. */
static void retry_after_deadline_starts_fresh_attempt(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 10, 10);
	uint64_t t2;

	r.deadline_ms = 50;
	start(fx, p, &r);
	at(fx, 50);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_true(fake_sock(1)->closed);
	assert_false(fake_sock(1)->abort);
	check_stats(fx, .connects_started = 1, .retries = 1, .in_flight = 1,
		    .open = 1);

	/* Backoff of 5..10 ms: find when attempt 2 starts. */
	for (t2 = 51; fake_count(FAKE_OPEN, 0) == 1; t2++) {
		assert_true(t2 <= 60);
		at(fx, t2);
	}
	t2 = now_ms();
	assert_true(t2 >= 55 && t2 <= 60);
	assert_int_equal(timers_armed(fx), 1);

	/* Its own 50 ms from its start. */
	at(fx, t2 + 49);
	assert_int_equal(fake_count(FAKE_CANCEL, 2), 0);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 2);
	assert_int_equal(p->res.latency_ns, (t2 + 49) * MS);
	at(fx, t2 + 1000);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 1, .open = 1);
	close_and_pump(fx, p);
}

static void retry_every_attempt_timed_out_reports_timedout(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);
	unsigned i;

	r.deadline_ms = 20;
	start(fx, p, &r);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	for (i = 0; i < 200 && p->connects == 0; i++)
		step(fx, 1);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.attempts, 3);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 3);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .retries = 2, .errors[-IOCX_E_TIMEDOUT] = 1, .open = 1);
	close_and_pump(fx, p);
}

/* A deadline during the payload rest: reset, then the next attempt sends
 * the payload again from byte 0 on a fresh socket. */
static void retry_after_timed_out_send_resends_from_first_byte(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 10, 10);

	r.deadline_ms = 50;
	r.payload = payload;
	r.payload_len = 40;
	r.payload_ownership = IOCX_PAYLOAD_BORROW;
	start(fx, p, &r);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(1)->op, FAKE_SEND);
	at(fx, 50);
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_true(fake_sock(1)->abort);

	at(fx, 60);
	assert_int_equal(fake_id(p->conn), 2);
	assert_ptr_equal(fake_sock(2)->last_buf, payload);
	assert_int_equal(fake_sock(2)->issued, CAP);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_ptr_equal(fake_sock(2)->last_buf, payload + CAP);
	fake_complete(p->conn, IOCX_OK, 0, 40 - CAP);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 2);
	/* Only the successful attempt's bytes count. */
	assert_int_equal(p->res.payload_sent, 40);
	assert_memory_equal(fake_sock(2)->capture, payload, 40);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .retries = 1, .payload_bytes = 40, .open = 1);
	close_and_pump(fx, p);
}

/*
 * The delay before attempt n+1 lies in [d/2, d] with d = min(max,
 * initial * 2^(n-1)): step the clock 1 ms at a time and note when each
 * new socket opens, over several connections.
 */
#define BACKOFF_CONNS 8
#define BACKOFF_ATTEMPTS 7

static unsigned ms_until_open(struct fx *fx, uint64_t limit)
{
	unsigned opens = fake_count(FAKE_OPEN, 0);
	uint64_t ms;

	for (ms = 1; ms <= limit; ms++) {
		step(fx, 1);
		if (fake_count(FAKE_OPEN, 0) != opens)
			return (unsigned)ms;
	}
	print_error("no new socket within %llu ms\n",
		    (unsigned long long)limit);
	fail();
	return 0;
}

static void retry_backoff_within_bounds(void **state)
{
	struct fx *fx = *state;
	unsigned first[BACKOFF_CONNS] = { 0 };
	unsigned c, n, distinct = 0;

	for (c = 0; c < BACKOFF_CONNS; c++) {
		struct probe *p = &fx->p[c];
		struct iocx_connect_request r =
			request_retry(fx, p, BACKOFF_ATTEMPTS, 100, 1000);

		start(fx, p, &r);
		for (n = 1; n <= BACKOFF_ATTEMPTS; n++) {
			uint64_t d = 100ull << (n - 1);
			unsigned delay;

			if (d > 1000)
				d = 1000;
			if (n == BACKOFF_ATTEMPTS)
				expect_value(cb_connect, status,
					     IOCX_E_REFUSED);
			refuse(fx, p);
			if (n == BACKOFF_ATTEMPTS)
				break;
			delay = ms_until_open(fx, d);
			if (delay < d / 2 || delay > d) {
				print_error("conn %u: delay before attempt %u "
					    "is %u ms, want %llu..%llu\n", c,
					    n + 1, delay,
					    (unsigned long long)(d / 2),
					    (unsigned long long)d);
				fail();
			}
			if (n == 1)
				first[c] = delay;
		}
		assert_int_equal(p->connects, 1);
		assert_int_equal(p->res.attempts, BACKOFF_ATTEMPTS);
		close_and_pump(fx, p);
	}
	/* Jitter: connections that failed alike do not retry in step. */
	for (c = 0; c < BACKOFF_CONNS; c++) {
		unsigned k;

		for (k = 0; k < c && first[k] != first[c]; k++)
			;
		distinct += k == c;
	}
	assert_true(distinct >= 2);
	check_stats(fx, .connects_started = BACKOFF_CONNS,
		    .connects_failed = BACKOFF_CONNS,
		    .retries = BACKOFF_CONNS * (BACKOFF_ATTEMPTS - 1),
		    .errors[-IOCX_E_REFUSED] = BACKOFF_CONNS,
		    .closed = BACKOFF_CONNS);
}

/* Zero backoff fields take the defaults: initial 100 ms. */
static void retry_backoff_defaults_to_100ms(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 0, 0);
	unsigned delay;

	start(fx, p, &r);
	refuse(fx, p);
	delay = ms_until_open(fx, 100);
	assert_true(delay >= 50 && delay <= 100);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 2);
	close_and_pump(fx, p);
}

/* A default initial (100 ms) above a given max is capped to that max. */
static void retry_backoff_default_initial_capped_by_max(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 0, 40);
	unsigned delay;

	start(fx, p, &r);
	refuse(fx, p);
	delay = ms_until_open(fx, 40);
	assert_true(delay >= 20 && delay <= 40);
	refuse(fx, p);
	/* Doubling stays at the max. */
	delay = ms_until_open(fx, 40);
	assert_true(delay >= 20 && delay <= 40);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 3);
	close_and_pump(fx, p);
}

static void close_during_retry_wait_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 100, 1000);

	start(fx, p, &r);
	refuse(fx, p);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	at(fx, 20);

	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(p->res.os_code, 0);
	/* No socket was open: nothing to close, nothing to cancel. */
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CLOSE, 1, 0 });
	assert_int_equal(timers_armed(fx), 0);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .retries = 1,
		    .errors[-IOCX_E_CANCELLED] = 1, .closed = 1);

	/* The backoff timer is gone with it: no later attempt. */
	fake_log_clear();
	at(fx, 100000);
	assert_int_equal(fake_log_len(), 0);
}

/* A close during a later attempt is a cancel, whatever attempt 1 did. */
static void close_during_retried_attempt_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	r.deadline_ms = 50;
	start(fx, p, &r);
	at(fx, 50);		/* attempt 1 times out */
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	at(fx, 60);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 2);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fake_count(FAKE_CANCEL, 2), 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .retries = 1,
		    .errors[-IOCX_E_CANCELLED] = 1, .closed = 1);
}

static void retry_timer_with_close_queued_opens_nothing(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	start(fx, p, &r);
	refuse(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	/* The timer pass runs before the queued CLOSE is dequeued: it sees
	 * the request and closes at once instead of opening a socket. */
	fake_now = T0 + 10 * MS;
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	iocx__engine_run_timers(fx->e);
	assert_int_equal(p->closes, 1);
	fake_pump(fx->e);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	assert_int_equal(p->closes, 1);
}

static void destroy_during_retry_wait_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 100, 1000);

	start(fx, p, &r);
	refuse(fx, p);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);

	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	fake_log_clear();
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(p->res.attempts, 1);
	/* Nothing opened: the backoff did not become an attempt. */
	assert_int_equal(fake_count(FAKE_OPEN, 0), 0);
	assert_int_equal(fake_engines(), fx->engines);
}

static void retry_open_failure_reports_it(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	r.deadline_ms = 50;
	start(fx, p, &r);
	refuse(fx, p);
	fake_fail_next(FAKE_OPEN, IOCX_E_PORTS_EXHAUSTED);
	expect_value(cb_connect, status, IOCX_E_PORTS_EXHAUSTED);
	at(fx, 10);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.attempts, 2);
	assert_true(p->sock_closed_at_connect);
	/* No socket, no deadline left behind. */
	assert_int_equal(timers_armed(fx), 0);
	assert_false(fake_sock(2)->opened);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CLOSE, 1, 0 }, { FAKE_OPEN, 2, 0 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .retries = 1, .errors[-IOCX_E_PORTS_EXHAUSTED] = 1,
		    .open = 1);
	at(fx, 100000);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	close_and_pump(fx, p);
	/* The socket that never opened is not closed either. */
	assert_int_equal(fake_count(FAKE_CLOSE, 2), 0);
}

static void retry_connect_failure_reports_it(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);

	r.deadline_ms = 50;
	start(fx, p, &r);
	refuse(fx, p);
	fake_fail_next(FAKE_CONNECT, IOCX_E_ADDRINUSE);
	expect_value(cb_connect, status, IOCX_E_ADDRINUSE);
	at(fx, 10);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.attempts, 2);
	assert_true(p->sock_closed_at_connect);
	assert_false(p->abort_at_connect);
	assert_int_equal(timers_armed(fx), 0);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CLOSE, 1, 0 }, { FAKE_OPEN, 2, 0 },
			{ FAKE_CONNECT, 2, 0 }, { FAKE_CLOSE, 2, 0 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .retries = 1, .errors[-IOCX_E_ADDRINUSE] = 1, .open = 1);
	at(fx, 100000);
	close_and_pump(fx, p);
	assert_int_equal(fake_count(FAKE_CLOSE, 2), 1);
}

/* Attempt 1's deadline must not cut attempt 2 short. */
static void stale_deadline_does_not_cancel_next_attempt(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 100, 100);
	uint64_t t2;

	r.deadline_ms = 500;
	start(fx, p, &r);
	at(fx, 10);
	refuse(fx, p);
	t2 = 10 + ms_until_open(fx, 100);
	assert_int_equal(now_ms(), t2);

	/* Past attempt 1's original deadline (500), before attempt 2's. */
	at(fx, 510);
	at(fx, t2 + 499);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	at(fx, t2 + 500);
	assert_int_equal(fake_count(FAKE_CANCEL, 2), 1);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 2);
	close_and_pump(fx, p);
}

/*
 * Pop the expired timer at ms after the start by hand, as a worker does
 * before it takes the connection's lock: it must be p's.  The body then
 * holds the heap's reference (iocx__conn_timer drops it).  Returns the
 * generation it was armed with.
 */
static uint32_t pop_by_hand(struct fx *fx, struct probe *p, uint64_t ms)
{
	struct iocx_conn *popped;
	uint32_t gen = 0;

	fake_now = T0 + ms * MS;
	iocx__mutex_lock(&fx->e->timer_lock);
	popped = iocx__timer_pop_expired(&fx->e->timers, fake_clock(), &gen);
	iocx__mutex_unlock(&fx->e->timer_lock);
	fx->holds_ref = true;
	assert_ptr_equal(popped, p->conn);
	return gen;
}

/*
 * The race the generation guards against: a worker pops an expired
 * timer, and before it takes the connection's lock the connection moves
 * on and re-arms.  Played here by popping the timer by hand.
 */
static void stale_timer_generation_is_ignored(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 2, 100, 100);
	uint32_t gen, gen2;

	r.deadline_ms = 50;
	start(fx, p, &r);
	gen = pop_by_hand(fx, p, 50);

	/* Meanwhile attempt 1 is refused and the backoff armed. */
	refuse(fx, p);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_int_equal(timers_armed(fx), 1);

	/* The popped deadline arrives late: ignored (it carries the heap's
	 * reference, which iocx__conn_timer drops). */
	iocx__conn_timer(p->conn, gen);
	fx->holds_ref = false;
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	assert_int_equal(timers_armed(fx), 1);

	/* A current generation whose timer is still armed is not due yet. */
	iocx__conn_ref(p->conn);
	iocx__conn_timer(p->conn, p->conn->timer_gen);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);

	/*
	 * The backoff expires and is popped too.  Before it is handled the
	 * stale deadline shows up once more: nothing is armed now, so only
	 * the generation tells the two apart.
	 */
	gen2 = pop_by_hand(fx, p, 150);
	assert_int_not_equal(gen2, gen);
	assert_int_equal(p->conn->timer_slot, 0);
	iocx__conn_ref(p->conn);
	iocx__conn_timer(p->conn, gen);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	/* The backoff's own generation starts attempt 2. */
	iocx__conn_timer(p->conn, gen2);
	fx->holds_ref = false;
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	assert_int_equal(timers_armed(fx), 1);

	at(fx, 160);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 2);
	close_and_pump(fx, p);
}

/*
 * Found by test_torture (epoll): a worker pops the expired deadline; the
 * owner completes the connect first and disarms, which finds nothing in
 * the heap.  The popped deadline then reaches an open connection without
 * a watchdog: it must be stale, not an idle expiry (it closed the
 * connection with on_close(IOCX_E_IDLE) once).
 */
static void deadline_popped_before_connect_completes_is_stale(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);
	uint32_t gen;

	start(fx, p, &r);
	gen = pop_by_hand(fx, p, 50);
	assert_int_equal(gen, p->conn->timer_gen);

	/* The owner completes the connect: on_connect(OK), nothing armed. */
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->conn->state, CONN_OPEN);
	assert_int_equal(timers_armed(fx), 0);
	assert_int_not_equal(p->conn->timer_gen, gen);

	/* The popped deadline arrives: ignored, no cancel, no close. */
	iocx__conn_timer(p->conn, gen);
	fx->holds_ref = false;
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_OPEN);
	assert_int_equal(p->closes, 0);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, 0), 0);
	assert_int_equal(timers_armed(fx), 0);
	close_and_pump(fx, p);
	assert_int_equal(p->reason, IOCX_OK);
}

/* iocx__engine_disarm(c) with c->lock held, as the core calls it. */
static void disarm_locked(struct fx *fx, struct iocx_conn *c)
{
	iocx__lock_acquire(&c->lock);
	iocx__engine_disarm(fx->e, c);
	iocx__lock_release(&c->lock);
}

/*
 * The rule on_timer relies on: a disarm starts a new generation for a
 * connection that may arm (armed or not: the timer may have been popped
 * already), and leaves one that never arms alone.
 */
static void disarm_new_generation_only_for_timer_users(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r0 = request_deadline(fx, &fx->p[0], 50);
	struct iocx_connect_request r1 = request(fx, &fx->p[1]);
	struct iocx_conn *a, *b;
	uint32_t gen;

	a = start(fx, &fx->p[0], &r0);
	b = start(fx, &fx->p[1], &r1);
	assert_true(a->uses_timer);
	assert_false(b->uses_timer);
	assert_int_equal(timers_armed(fx), 1);

	gen = a->timer_gen;
	disarm_locked(fx, a);
	assert_int_equal(timers_armed(fx), 0);
	assert_int_equal(a->timer_gen, gen + 1);
	disarm_locked(fx, a);		/* nothing armed: a new one still */
	assert_int_equal(a->timer_gen, gen + 2);

	gen = b->timer_gen;
	disarm_locked(fx, b);
	assert_int_equal(b->timer_gen, gen);

	/* The deadline is gone: 50 ms pass without a cancel. */
	at(fx, 60);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	cfx_complete_connect(fx->e, a, IOCX_OK, 0);
	cfx_complete_connect(fx->e, b, IOCX_OK, 0);
	close_and_pump(fx, &fx->p[0]);
	close_and_pump(fx, &fx->p[1]);
}

/* ---- wake-ups ----------------------------------------------------------- */

static void arm_posts_wake_only_for_new_earliest(void **state)
{
	struct fx *fx = *state;
	struct probe *p = fx->p;
	struct iocx_connect_request r;
	unsigned i;

	r = request_deadline(fx, &p[0], 100);
	start(fx, &p[0], &r);
	assert_int_equal(wake_posts(), 1);
	/* Later than the earliest: the sleeping worker wakes early enough. */
	r = request_deadline(fx, &p[1], 200);
	start(fx, &p[1], &r);
	assert_int_equal(wake_posts(), 1);
	/* No deadline: no timer, no wake. */
	r = request(fx, &p[2]);
	start(fx, &p[2], &r);
	assert_int_equal(wake_posts(), 1);
	/* Earlier than all: a worker must recompute its sleep. */
	r = request_deadline(fx, &p[3], 50);
	start(fx, &p[3], &r);
	assert_int_equal(wake_posts(), 2);
	/* Equal to the earliest is not earlier. */
	r = request_deadline(fx, &p[4], 50);
	start(fx, &p[4], &r);
	assert_int_equal(wake_posts(), 2);
	/* A backoff armed outside a worker is a deadline like any other. */
	r = request_retry(fx, &p[5], 2, 10, 10);
	start(fx, &p[5], &r);
	assert_int_equal(wake_posts(), 2);
	fake_complete(p[5].conn, IOCX_E_REFUSED, 10061, 0);
	fake_pump(fx->e);
	assert_int_equal(wake_posts(), 3);
	/* The wakes are plain events: the manual engine dequeues them. */
	assert_int_equal(fake_pending(fx->e), 0);

	for (i = 0; i < 6; i++) {
		p[i].unchecked = true;
		assert_int_equal(iocx_close(p[i].conn, IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	}
	fake_pump(fx->e);
	for (i = 0; i < 6; i++) {
		assert_int_equal(p[i].connects, 1);
		assert_int_equal(p[i].res.status, IOCX_E_CANCELLED);
		assert_int_equal(p[i].closes, 1);
	}
	assert_int_equal(timers_armed(fx), 0);
}

/* ---- validation and reservation --------------------------------------- */

static void connect_max_attempts_above_limit_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r;

	r = request_retry(fx, &fx->p[0], IOCX_MAX_ATTEMPTS + 1, 0, 0);
	check_rejected(fx, &r, IOCX_E_INVAL);
	r = request_retry(fx, &fx->p[0], (unsigned)-1, 10, 100);
	check_rejected(fx, &r, IOCX_E_INVAL);
	assert_int_equal(fx->p[0].connects + fx->p[0].closes, 0);
}

static void connect_backoff_initial_above_max_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r;

	r = request_retry(fx, &fx->p[0], 3, 200, 100);
	check_rejected(fx, &r, IOCX_E_INVAL);
	r = request_retry(fx, &fx->p[0], 3, UINT32_MAX, 1);
	check_rejected(fx, &r, IOCX_E_INVAL);
	/* Also without retries asked for: the fields are checked anyway. */
	r = request_retry(fx, &fx->p[0], 0, 2, 1);
	check_rejected(fx, &r, IOCX_E_INVAL);
	assert_int_equal(fx->p[0].connects + fx->p[0].closes, 0);
}

static void connect_retry_limits_accepted(void **state)
{
	struct fx *fx = *state;
	struct probe *p = fx->p;
	struct iocx_connect_request r;
	unsigned i;

	/* At the limit; initial equal to max; initial above the default max
	 * (which only a zero max_ms gives). */
	r = request_retry(fx, &p[0], IOCX_MAX_ATTEMPTS, 0, 0);
	start(fx, &p[0], &r);
	r = request_retry(fx, &p[1], 2, 500, 500);
	start(fx, &p[1], &r);
	r = request_retry(fx, &p[2], 2, 20000, 0);
	start(fx, &p[2], &r);
	r = request_retry(fx, &p[3], 0, 0, 0);
	r.deadline_ms = UINT32_MAX;
	start(fx, &p[3], &r);
	assert_int_equal(fx->e->timer_users, 4);
	for (i = 0; i < 4; i++) {
		expect_value(cb_connect, status, IOCX_E_CANCELLED);
		expect_value(cb_close, reason, IOCX_OK);
		assert_int_equal(iocx_close(p[i].conn, IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
		fake_pump(fx->e);
		assert_int_equal(p[i].res.attempts, 1);
	}
	assert_int_equal(fx->e->timer_users, 0);
}

/* Every allocation of a connect with a deadline fails cleanly, the heap's
 * growth included. */
static void connect_timer_reserve_nomem_returns_nomem(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_deadline(fx, p, 50);
	unsigned long live = hook_allocs - hook_frees;
	long n;

	for (n = 0; n < 8; n++) {
		int rc;

		alloc_fail_nth(n);
		rc = iocx_connect(fx->e, &r, &p->conn);
		if (rc == IOCX_OK)
			break;
		assert_int_equal(rc, IOCX_E_NOMEM);
		assert_int_equal(hook_failed, (unsigned long)n + 1);
		assert_null(p->conn);
		assert_int_equal(fake_log_len(), 0);
		assert_int_equal(hook_allocs - hook_frees, live);
		assert_int_equal(fx->e->timer_users, 0);
		assert_int_equal(fx->e->timers.cap, 0);
		assert_int_equal(timers_armed(fx), 0);
		check_stats(fx, .connects_started = 0);
	}
	/* The connection and the heap's first block. */
	assert_true(n >= 2 && n < 8);
	alloc_hooks_reset();
	assert_int_equal(fx->e->timer_users, 1);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
}

/* A connect that fails synchronously gives its timer reservation back. */
static void connect_sync_failure_releases_timer_reservation(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_retry(fx, p, 3, 10, 10);
	unsigned long live = hook_allocs - hook_frees;
	struct iocx_stats before, after;

	r.deadline_ms = 50;
	assert_int_equal(iocx_engine_stats(fx->e, &before), IOCX_OK);
	fake_fail_next(FAKE_OPEN, IOCX_E_PORTS_EXHAUSTED);
	assert_int_equal(iocx_connect(fx->e, &r, &p->conn),
			 IOCX_E_PORTS_EXHAUSTED);
	assert_int_equal(fx->e->timer_users, 0);
	fake_fail_next(FAKE_CONNECT, IOCX_E_ADDRINUSE);
	assert_int_equal(iocx_connect(fx->e, &r, &p->conn),
			 IOCX_E_ADDRINUSE);
	assert_int_equal(fx->e->timer_users, 0);
	assert_null(p->conn);
	/* Nothing armed, nothing kept: an idle engine has no timer memory. */
	assert_int_equal(timers_armed(fx), 0);
	assert_int_equal(fx->e->timers.cap, 0);
	assert_int_equal(hook_allocs - hook_frees, live);
	assert_int_equal(iocx_engine_stats(fx->e, &after), IOCX_OK);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(p->connects + p->closes, 0);

	/* The next connect holds exactly one reservation. */
	start(fx, p, &r);
	assert_int_equal(fx->e->timer_users, 1);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->e->timer_users, 0);
}

/* The heap grows when the 65th timer user arrives; that growth failing
 * leaves every armed deadline alone. */
static void connect_timer_growth_nomem_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r;
	const struct iocx_timer_slot *slots;
	struct iocx_conn *plain;
	unsigned i, failures = 0;
	long n;

	for (i = 0; i < 64; i++) {
		fx->p[i].unchecked = true;
		r = request_deadline(fx, &fx->p[i], 50 + i);
		start(fx, &fx->p[i], &r);
	}
	assert_int_equal(fx->e->timers.cap, 64);
	assert_int_equal(timers_armed(fx), 64);
	slots = fx->e->timers.slots;

	fx->p[64].unchecked = true;
	r = request_deadline(fx, &fx->p[64], 10);
	for (n = 0; n < 8; n++) {
		unsigned long live = hook_allocs - hook_frees;
		int rc;

		fake_log_clear();
		alloc_fail_nth(n);
		rc = iocx_connect(fx->e, &r, &fx->p[64].conn);
		if (rc == IOCX_OK)
			break;
		failures++;
		assert_int_equal(rc, IOCX_E_NOMEM);
		assert_int_equal(fake_log_len(), 0);
		assert_int_equal(hook_allocs - hook_frees, live);
		assert_int_equal(fx->e->timer_users, 64);
		assert_int_equal(fx->e->timers.cap, 64);
		assert_ptr_equal(fx->e->timers.slots, slots);
		assert_int_equal(timers_armed(fx), 64);
		assert_int_equal(iocx__timer_next(&fx->e->timers),
				 T0 + 50 * MS);
	}
	assert_true(failures >= 2);
	assert_int_equal(fx->e->timers.cap, 128);
	assert_int_equal(iocx__timer_next(&fx->e->timers), T0 + 10 * MS);

	/* A connection without timers never needs the heap. */
	fx->p[65].unchecked = true;
	r = request(fx, &fx->p[65]);
	alloc_fail_nth(1);
	start(fx, &fx->p[65], &r);
	alloc_hooks_reset();
	plain = fx->p[65].conn;
	assert_false(plain->uses_timer);

	/* Let them all time out, then go. */
	at(fx, 200);
	fake_pump(fx->e);
	for (i = 0; i < 65; i++) {
		assert_int_equal(fx->p[i].connects, 1);
		assert_int_equal(fx->p[i].res.status, IOCX_E_TIMEDOUT);
		assert_int_equal(iocx_close(fx->p[i].conn,
					    IOCX_CLOSE_GRACEFUL), IOCX_OK);
	}
	assert_int_equal(iocx_close(plain, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	for (i = 0; i < 66; i++)
		assert_int_equal(fx->p[i].closes, 1);
	/* The last timer user gone, the engine holds no timer memory. */
	assert_int_equal(fx->e->timer_users, 0);
	assert_int_equal(fx->e->timers.cap, 0);
	assert_null(fx->e->timers.slots);
}

/* ---- many ------------------------------------------------------------- */

#define MANY 10000
#define MANY_ROUND 1000

struct many_rec {
	unsigned connects;
	unsigned closes;
	int status;
	unsigned attempts;
	int reason;
};

static struct many_rec many[MANY];

static void many_on_connect(iocx_conn *conn,
			    const struct iocx_connect_result *r, void *user)
{
	struct many_rec *m = user;

	(void)conn;
	m->connects++;
	m->status = r->status;
	m->attempts = r->attempts;
}

static void many_on_close(iocx_conn *conn, int reason, void *user)
{
	struct many_rec *m = user;

	(void)conn;
	m->closes++;
	m->reason = reason;
}

/*
 * 10,000 connects with deadlines, in rounds that fit the fake's tables:
 * the even ones complete before their deadline, the odd ones expire.
 * Deadlines are spread over 10 ms so expiries come in waves.
 */
static void connect_many_with_deadlines_each_reported_once(void **state)
{
	struct fx *fx = *state;
	static iocx_conn *conns[MANY_ROUND];
	struct iocx_connect_request r = request(fx, NULL);
	unsigned round, i;

	memset(many, 0, sizeof(many));
	r.on_connect = many_on_connect;
	r.on_close = many_on_close;
	r.deadline_ms = 100;
	for (round = 0; round < MANY / MANY_ROUND; round++) {
		uint64_t base = now_ms();
		struct many_rec *m = &many[round * MANY_ROUND];

		fake_reset();
		for (i = 0; i < MANY_ROUND; i++) {
			if (i % 100 == 0)
				fake_now = T0 + (base + i / 100) * MS;
			r.user = &m[i];
			assert_int_equal(iocx_connect(fx->e, &r, &conns[i]),
					 IOCX_OK);
		}
		assert_int_equal(timers_armed(fx), MANY_ROUND);
		for (i = 0; i < MANY_ROUND; i += 2) {
			fake_complete(conns[i], IOCX_OK, 0, 0);
			if (i % 400 == 398)
				fake_pump(fx->e);
		}
		fake_pump(fx->e);
		assert_int_equal(timers_armed(fx), MANY_ROUND / 2);
		at(fx, base + 99);
		for (i = 0; i < MANY_ROUND; i++)
			assert_int_equal(m[i].connects, i % 2 == 0);
		for (i = 0; i < 20; i++)
			step(fx, 1);
		fake_pump(fx->e);
		assert_int_equal(timers_armed(fx), 0);
		for (i = 0; i < MANY_ROUND; i++) {
			assert_int_equal(m[i].connects, 1);
			assert_int_equal(m[i].status, i % 2 ? IOCX_E_TIMEDOUT
							    : IOCX_OK);
			assert_int_equal(m[i].attempts, 1);
			assert_int_equal(iocx_close(conns[i],
						    IOCX_CLOSE_GRACEFUL),
					 IOCX_OK);
			if (i % 500 == 499)
				fake_pump(fx->e);
		}
		fake_pump(fx->e);
		for (i = 0; i < MANY_ROUND; i++) {
			assert_int_equal(m[i].closes, 1);
			assert_int_equal(m[i].reason, IOCX_OK);
		}
	}
	check_stats(fx, .connects_started = MANY, .connects_ok = MANY / 2,
		    .connects_failed = MANY / 2,
		    .errors[-IOCX_E_TIMEDOUT] = MANY / 2, .closed = MANY);
	assert_int_equal(fx->e->timer_users, 0);
	assert_int_equal(fx->e->timers.cap, 0);
}

/* ---- worker threads and the real clock -------------------------------- */

/*
 * A small thread-safe backend: connect either completes at once or hangs
 * until cancelled (per connection, from its user record); cancel completes
 * a hanging connect with IOCX_E_CANCELLED; wait polls its queue until the
 * timeout the engine computed from its deadlines.
 */
#define TB_CONNS 64
#define TB_QUEUE 1024

struct tb_rec {
	bool hang;		/* connect never completes by itself */
	atomic_uint connects;
	atomic_uint closes;
	atomic_int status;
	atomic_uint attempts;
	atomic_int close_rc;
};

struct tb_conn {
	struct iocx_conn base;
	bool pending;		/* a hanging connect, under tb.lock */
};

static struct {
	iocx_mutex lock;
	iocx_cond cv;		/* events queued, or a connection closed */
	unsigned closes;	/* on_close calls, under lock */
	struct iocx_event ev[TB_QUEUE];
	unsigned head, len;
	bool overflow;
} tb;
static struct tb_rec tb_recs[TB_CONNS];

static void tb_push_locked(const struct iocx_event *ev)
{
	if (tb.len == TB_QUEUE) {
		tb.overflow = true;
		return;
	}
	tb.ev[(tb.head + tb.len++) % TB_QUEUE] = *ev;
	iocx__cond_broadcast(&tb.cv);
}

static int tb_engine_init(struct iocx_engine *e)
{
	(void)e;
	tb.head = tb.len = 0;
	tb.overflow = false;
	return IOCX_OK;
}

static void tb_engine_fini(struct iocx_engine *e)
{
	(void)e;
}

static int tb_wait(struct iocx_engine *e, unsigned worker,
		   struct iocx_event *events, unsigned max,
		   uint64_t timeout_ns)
{
	uint64_t end = iocx__now_ns() + timeout_ns;
	unsigned n = 0;

	(void)e;
	(void)worker;
	iocx__mutex_lock(&tb.lock);
	for (;;) {
		uint64_t now = iocx__now_ns();

		while (n < max && tb.len > 0) {
			events[n++] = tb.ev[tb.head];
			tb.head = (tb.head + 1) % TB_QUEUE;
			tb.len--;
		}
		if (n > 0 || now >= end)
			break;
		iocx__cond_timedwait(&tb.cv, &tb.lock,
				     (unsigned)((end - now + MS - 1) / MS));
	}
	iocx__mutex_unlock(&tb.lock);
	return (int)n;
}

static int tb_post(struct iocx_engine *e, enum iocx_event_kind kind,
		   struct iocx_conn *c)
{
	struct iocx_event ev = { .kind = kind, .conn = c };

	(void)e;
	iocx__mutex_lock(&tb.lock);
	tb_push_locked(&ev);
	iocx__mutex_unlock(&tb.lock);
	return IOCX_OK;
}

static int tb_open(struct iocx_conn *c, bool *fastopen)
{
	(void)c;
	*fastopen = false;
	return IOCX_OK;
}

static int tb_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	struct tb_conn *t = (struct tb_conn *)(void *)c;
	const struct tb_rec *rec = c->user;
	struct iocx_event ev = { .kind = IOCX_EV_IO, .conn = c };

	(void)buf;
	(void)len;
	iocx__mutex_lock(&tb.lock);
	if (rec->hang)
		t->pending = true;
	else
		tb_push_locked(&ev);
	iocx__mutex_unlock(&tb.lock);
	return IOCX_OK;
}

static int tb_send(struct iocx_conn *c, const void *buf, size_t len)
{
	(void)c;
	(void)buf;
	(void)len;
	return IOCX_E_NOTSUP;
}

static int tb_connected(struct iocx_conn *c)
{
	(void)c;
	return IOCX_OK;
}

static int tb_recv(struct iocx_conn *c, void *buf, size_t len)
{
	(void)c;
	(void)buf;
	(void)len;
	return IOCX_E_NOTSUP;
}

static int tb_shutdown(struct iocx_conn *c)
{
	(void)c;
	return IOCX_E_NOTSUP;
}

static void tb_cancel(struct iocx_conn *c, enum iocx_op op)
{
	struct tb_conn *t = (struct tb_conn *)(void *)c;
	struct iocx_event ev = {
		.kind = IOCX_EV_IO,
		.conn = c,
		.status = IOCX_E_CANCELLED,
	};

	iocx__mutex_lock(&tb.lock);
	if (op == IOCX_OP_MAIN && t->pending) {
		t->pending = false;
		tb_push_locked(&ev);
	}
	iocx__mutex_unlock(&tb.lock);
}

static void tb_close(struct iocx_conn *c, bool abort)
{
	(void)c;
	(void)abort;
}

static const struct iocx_backend tb_backend = {
	.name = "tb",
	.conn_size = sizeof(struct tb_conn),
	.engine_init = tb_engine_init,
	.engine_fini = tb_engine_fini,
	.wait = tb_wait,
	.post = tb_post,
	.open = tb_open,
	.connect = tb_connect,
	.send = tb_send,
	.recv = tb_recv,
	.shutdown = tb_shutdown,
	.connected = tb_connected,
	.cancel = tb_cancel,
	.close = tb_close,
};

/* On workers: record, never assert (no longjmp off a worker thread). */
static void tb_on_connect(iocx_conn *conn,
			  const struct iocx_connect_result *r, void *user)
{
	struct tb_rec *rec = user;

	atomic_store(&rec->status, r->status);
	atomic_store(&rec->attempts, r->attempts);
	atomic_fetch_add(&rec->connects, 1);
	atomic_store(&rec->close_rc, iocx_close(conn, IOCX_CLOSE_GRACEFUL));
}

static void tb_on_close(iocx_conn *conn, int reason, void *user)
{
	struct tb_rec *rec = user;

	(void)conn;
	(void)reason;
	atomic_fetch_add(&rec->closes, 1);
	iocx__mutex_lock(&tb.lock);
	tb.closes++;
	iocx__cond_broadcast(&tb.cv);
	iocx__mutex_unlock(&tb.lock);
}

/*
 * Workers fire the deadlines and backoffs themselves: half the
 * connections hang and must time out on every one of their 3 attempts,
 * the other half complete at once.  Every callback exactly once.
 */
static void deadline_on_worker_engine_times_out(void **state)
{
	struct fx *fx = *state;
	struct iocx_engine_options o = { .workers = 2 };
	struct iocx_connect_request r = request(fx, NULL);
	iocx_engine *e = NULL;
	uint64_t t0;
	unsigned i;

	iocx_engine_destroy(fx->e);
	fx->e = NULL;
	iocx__mutex_init(&tb.lock);
	iocx__cond_init(&tb.cv);
	tb.closes = 0;
	alloc_hooks_lock();
	assert_int_equal(iocx__engine_create_with(&tb_backend, &o, 0, &e),
			 IOCX_OK);
	r.on_connect = tb_on_connect;
	r.on_close = tb_on_close;
	r.deadline_ms = 5;
	r.retry.max_attempts = 3;
	r.retry.backoff_initial_ms = 1;
	r.retry.backoff_max_ms = 2;
	for (i = 0; i < TB_CONNS; i++) {
		memset(&tb_recs[i], 0, sizeof(tb_recs[i]));
		tb_recs[i].hang = i % 2 == 1;
		r.user = &tb_recs[i];
		assert_int_equal(iocx_connect(e, &r, NULL), IOCX_OK);
	}
	/* Wait (bounded: 30 s) until every connection has closed. */
	t0 = iocx__now_ns();
	iocx__mutex_lock(&tb.lock);
	while (tb.closes < TB_CONNS && iocx__now_ns() - t0 < 30000 * MS)
		iocx__cond_timedwait(&tb.cv, &tb.lock, 1000);
	iocx__mutex_unlock(&tb.lock);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	alloc_hooks_unlock();
	iocx__cond_destroy(&tb.cv);
	iocx__mutex_destroy(&tb.lock);

	assert_false(tb.overflow);
	for (i = 0; i < TB_CONNS; i++) {
		const struct tb_rec *rec = &tb_recs[i];

		assert_int_equal(atomic_load(&rec->connects), 1);
		assert_int_equal(atomic_load(&rec->closes), 1);
		assert_int_equal(atomic_load(&rec->close_rc), IOCX_OK);
		assert_int_equal(atomic_load(&rec->status),
				 rec->hang ? IOCX_E_TIMEDOUT : IOCX_OK);
		assert_int_equal(atomic_load(&rec->attempts),
				 rec->hang ? 3 : 1);
	}
}

/* ---- handle lifetime: the idle watchdog, destroy ------------------- */

/* Blocks the library holds from the checked heap. */
static unsigned long live_blocks(void)
{
	return hook_allocs - hook_frees;
}

static void on_sent_never(iocx_conn *c, int status, size_t bytes, void *user)
{
	(void)c;
	(void)status;
	(void)bytes;
	(void)user;
	fail_msg("on_sent for a send that was refused");
}

static void on_recv_never(iocx_conn *c, int status, const void *data,
			  size_t len, void *user)
{
	(void)c;
	(void)status;
	(void)data;
	(void)len;
	(void)user;
	fail_msg("on_recv for a read that was refused");
}

/* Start p with idle_ms 100 and complete its connect: open, watchdog on. */
static void start_idle(struct fx *fx, struct probe *p)
{
	struct iocx_connect_request r = request(fx, p);

	r.idle_ms = 100;
	start(fx, p, &r);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->conn->state, CONN_OPEN);
}

/* No data for idle_ms: the watchdog closes p, on_close(IOCX_E_IDLE). */
static void let_idle_close(struct fx *fx, struct probe *p)
{
	expect_value(cb_close, reason, IOCX_E_IDLE);
	step(fx, 100);
	assert_int_equal(p->closes, 1);
}

/*
 * What a handle whose on_close the engine started still answers: the
 * user pointer, and "not open" from everything else.
 */
static void assert_closed_handle(struct probe *p)
{
	struct sockaddr_storage ss;
	iocx_socket_t sock;

	assert_ptr_equal(iocx_conn_user(p->conn), p);
	assert_true(iocx_conn_socket(p->conn) == IOCX_INVALID_SOCKET);
	assert_int_equal(iocx_conn_local_addr(p->conn, &ss), IOCX_E_NOTCONN);
	assert_int_equal(iocx_conn_remote_addr(p->conn, &ss), IOCX_E_NOTCONN);
	assert_int_equal(iocx_send(p->conn, "x", 1, IOCX_PAYLOAD_COPY,
				   on_sent_never, NULL), IOCX_E_NOTCONN);
	assert_int_equal(iocx_read_start(p->conn, on_recv_never),
			 IOCX_E_NOTCONN);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(iocx_detach(p->conn, &sock), IOCX_E_NOTCONN);
	assert_int_equal(iocx_conn_queued_bytes(p->conn), 0);
}

/* The terminal on_recv of idle_with_lost_socket_closes_once: counted. */
static unsigned lost_terminals;
static int lost_terminal;

static void on_recv_terminal(iocx_conn *c, int status, const void *data,
			     size_t len, void *user)
{
	(void)c;
	(void)data;
	(void)len;
	(void)user;
	if (status == IOCX_OK)
		fail_msg("on_recv with data nobody sent");
	lost_terminals++;
	lost_terminal = status;
}

/*
 * A read_stop whose cancel gave the socket up (socket_lost) leaves an open
 * connection without a usable socket: the watchdog still closes it once,
 * with IOCX_E_IDLE, resetting the socket with its one close and touching
 * it no other way (the fake fails any other call on it), and the
 * program's close then releases the handle.
 */
static void idle_with_lost_socket_closes_once(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned id;

	lost_terminals = 0;
	start_idle(fx, p);
	id = fake_id(p->conn);
	assert_int_equal(iocx_read_start(p->conn, on_recv_terminal), IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_loses_socket(true);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(lost_terminals, 1);
	assert_int_equal(lost_terminal, IOCX_E_CANCELLED);
	assert_true(fake_sock(id)->lost);
	assert_false(fake_sock(id)->closed);
	assert_int_equal(iocx_send(p->conn, "x", 1, IOCX_PAYLOAD_COPY,
				   on_sent_never, NULL), IOCX_E_ABORTED);
	let_idle_close(fx, p);
	assert_true(fake_sock(id)->closed && fake_sock(id)->abort);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
	assert_int_equal(lost_terminals, 1);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
}

/*
 * The program's release before any on_close: iocx_close, then
 * on_close(IOCX_OK), and the memory goes when on_close returns; the
 * watchdog never fires and nothing counts as unreleased.
 */
static void close_before_idle_frees_after_on_close(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned long live = live_blocks();

	start_idle(fx, p);
	close_and_pump(fx, p);
	assert_int_equal(p->reason, IOCX_OK);
	assert_int_equal(live_blocks(), live);
	at(fx, 1000);
	assert_int_equal(p->closes, 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

/*
 * The watchdog closes a handle the program holds: on_close(IOCX_E_IDLE),
 * and the handle stays valid memory, counted unreleased, until the
 * program's iocx_close, which releases it (IOCX_OK, nothing posted, no
 * callback) and frees it at once.
 */
static void close_after_idle_on_close_releases(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned long live = live_blocks();
	unsigned id;

	start_idle(fx, p);
	id = fake_id(p->conn);
	let_idle_close(fx, p);
	assert_true(fake_sock(id)->closed && fake_sock(id)->abort);
	assert_true(live_blocks() > live);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1,
		    .unreleased = 1);

	assert_closed_handle(p);
	fake_log_clear();
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(fake_log_len(), 0);	/* not even a post */
	assert_int_equal(live_blocks(), live);
	assert_int_equal(fake_pump(fx->e), 0);
	assert_int_equal(p->closes, 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

/*
 * The common pattern: on_close releases its handle when the reason is
 * not IOCX_OK.  iocx_close inside on_close returns IOCX_OK, and the
 * memory goes when on_close returns; it never counts as unreleased.
 */
static void close_inside_idle_on_close_releases(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned long live = live_blocks();

	p->release_in_close = true;
	p->release_rc = 1;
	start_idle(fx, p);
	let_idle_close(fx, p);
	assert_int_equal(p->release_rc, IOCX_OK);
	assert_int_equal(live_blocks(), live);
	assert_int_equal(fake_pump(fx->e), 0);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

/*
 * Destroy with handles the program never released: one the watchdog
 * closed before, one open, one whose connect failed (awaiting its
 * close).  Every on_close comes first (IOCX_E_SHUTDOWN), and during them
 * every handle is still valid: an on_close reads the idle one's user
 * pointer and releases it (IOCX_OK).  Destroy frees the rest; the
 * checked heap fails the test if it does not.
 */
static void destroy_frees_unreleased_handles_after_every_on_close(void **state)
{
	struct fx *fx = *state;
	struct probe *idle = &fx->p[0], *open = &fx->p[1];
	struct probe *failed = &fx->p[2];
	struct iocx_connect_request r = request(fx, failed);

	start_idle(fx, idle);
	let_idle_close(fx, idle);
	start_idle(fx, open);
	start(fx, failed, &r);
	cfx_complete_connect(fx->e, failed->conn, IOCX_E_REFUSED, 111);
	check_stats(fx, .connects_started = 3, .connects_ok = 2,
		    .connects_failed = 1, .errors[-IOCX_E_REFUSED] = 1,
		    .closed = 1, .open = 2, .unreleased = 1);

	open->other = idle;
	open->other_rc = 1;
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(open->closes, 1);
	assert_int_equal(failed->closes, 1);
	assert_int_equal(idle->closes, 1);
	assert_ptr_equal(open->other_user, idle);
	assert_int_equal(open->other_rc, IOCX_OK);
	assert_int_equal(fake_engines(), fx->engines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(deadline_expiry_reports_timedout),
		T(deadline_completion_first_disarms),
		T(deadline_zero_arms_no_timer),
		T(deadline_queued_success_wins),
		T(deadline_success_after_cancel_wins),
		T(deadline_failure_after_cancel_wins),
		T(deadline_while_sending_resets_and_reports_timedout),
		T(deadline_late_success_with_payload_left_times_out),
		T(deadline_then_close_reports_timedout),
		T(close_then_deadline_reports_cancelled),
		T(destroy_with_deadline_armed_reports_cancelled),
		T(retry_refused_retries_on_fresh_socket),
		T(retry_exhausted_reports_last_error),
		T(retry_netunreach_and_os_timedout_are_retried),
		T(retry_not_for_other_errors),
		T(retry_after_deadline_starts_fresh_attempt),
		T(retry_every_attempt_timed_out_reports_timedout),
		T(retry_after_timed_out_send_resends_from_first_byte),
		T(retry_backoff_within_bounds),
		T(retry_backoff_defaults_to_100ms),
		T(retry_backoff_default_initial_capped_by_max),
		T(retry_refused_reconnects_kept_socket),
		T(retry_after_deadline_cancel_takes_fresh_socket),
		T(retry_reconnect_refused_falls_back_once_per_engine),
		T(close_during_backoff_closes_kept_socket),
		T(destroy_during_backoff_closes_kept_socket),
		T(total_deadline_during_backoff_closes_kept_socket),
		T(close_during_retry_wait_reports_cancelled),
		T(close_during_retried_attempt_reports_cancelled),
		T(retry_timer_with_close_queued_opens_nothing),
		T(destroy_during_retry_wait_reports_cancelled),
		T(retry_open_failure_reports_it),
		T(retry_connect_failure_reports_it),
		T(stale_deadline_does_not_cancel_next_attempt),
		T(stale_timer_generation_is_ignored),
		T(deadline_popped_before_connect_completes_is_stale),
		T(disarm_new_generation_only_for_timer_users),
		T(arm_posts_wake_only_for_new_earliest),
		T(connect_max_attempts_above_limit_returns_inval),
		T(connect_backoff_initial_above_max_returns_inval),
		T(connect_retry_limits_accepted),
		T(connect_timer_reserve_nomem_returns_nomem),
		T(connect_sync_failure_releases_timer_reservation),
		T(connect_timer_growth_nomem_changes_nothing),
		T(connect_many_with_deadlines_each_reported_once),
		T(deadline_on_worker_engine_times_out),
		T(close_before_idle_frees_after_on_close),
		T(close_after_idle_on_close_releases),
		T(close_inside_idle_on_close_releases),
		T(idle_with_lost_socket_closes_once),
		T(destroy_frees_unreleased_handles_after_every_on_close),
#undef T
	};

	return cmocka_run_group_tests_name("conn_deadline", tests,
					   group_setup, cfx_group_teardown);
}
