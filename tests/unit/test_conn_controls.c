/*
 * Unit tests of the request-level controls of the connection state
 * machine: the total deadline across attempts and backoffs, the
 * admission queue (max_in_flight + queue_limit) and the pacing
 * (connect_rate + connect_burst), with close, destroy and the total
 * deadline in every waiting state.  Like
 * test_conn_deadline.c, a manual engine over the scripted fake backend
 * with a fake clock the test moves itself, so every deadline is exact to
 * the millisecond; the library allocator is cmocka's checked heap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "engine.h"
#include "conn.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

#define PORT 4242
#define MS 1000000ull
#define T0 (1000000ull * MS)
#define NPROBES 16

static uint64_t fake_now;
/* Each reading moves the fake time on by 0..fake_tick ns, drawn from
 * fake_tick_seed (a slow or preempted thread between two readings). */
static uint64_t fake_tick;
static uint64_t fake_tick_seed;

/* The next value of an LCG, from its upper bits. */
static uint64_t lcg(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	return *seed >> 33;
}

static uint64_t fake_clock(void)
{
	uint64_t t = fake_now;

	if (fake_tick)
		fake_now += lcg(&fake_tick_seed) % (fake_tick + 1);
	return t;
}

struct probe {
	iocx_conn *conn;
	unsigned connects;
	unsigned closes;
	struct iocx_connect_result res;
	int reason;
	uint64_t connect_ms;	/* fake time of on_connect, since T0 */
	unsigned order;		/* 1 + position among all on_connect */
};

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	struct probe p[NPROBES];
	unsigned reported;	/* on_connect calls so far */
	unsigned engines;
	void *sentinel;
};

static struct fx the_fx;
static unsigned cb_depth;
static bool cb_lenient;

static void cb_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct probe *p = user;
	int status = r->status;

	(void)conn;
	cb_depth++;
	if (!cb_lenient)
		check_expected(status);
	p->connects++;
	p->res = *r;
	p->connect_ms = (fake_now - T0) / MS;
	p->order = ++the_fx.reported;
	cb_depth--;
}

static void cb_close(iocx_conn *conn, int reason, void *user)
{
	struct probe *p = user;

	(void)conn;
	cb_depth++;
	if (!cb_lenient)
		check_expected(reason);
	p->closes++;
	p->reason = reason;
	cb_depth--;
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup_with(void **state, const struct iocx_engine_options *o)
{
	struct fx *fx = &the_fx;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	cb_lenient = false;
	fake_now = T0;
	fake_tick = 0;
	fx->engines = fake_engines();
	if (cfx_engine_create(o, &fx->e) != IOCX_OK)
		return -1;
	fx->e->clock = fake_clock;
	fake_log_clear();
	cfx_loopback4(&fx->v4, PORT);
	/* cmocka's leak walk starts at the last block before the body. */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

/* Two in flight at most, three more may wait. */
static int setup_queue(void **state)
{
	struct iocx_engine_options o;

	iocx_engine_options_init(&o);
	o.max_in_flight = 2;
	o.queue_limit = 3;
	return setup_with(state, &o);
}

/* Ten attempts a second (one per 100 ms), bursts of two. */
static int setup_paced(void **state)
{
	struct iocx_engine_options o;

	iocx_engine_options_init(&o);
	o.connect_rate = 10;
	o.connect_burst = 2;
	return setup_with(state, &o);
}

/* Ten attempts a second, no burst: one per 100 ms. */
static int setup_paced1(void **state)
{
	struct iocx_engine_options o;

	iocx_engine_options_init(&o);
	o.connect_rate = 10;
	o.connect_burst = 1;
	return setup_with(state, &o);
}

/* Both: one in flight, two waiting, one attempt per 100 ms. */
static int setup_queue_paced(void **state)
{
	struct iocx_engine_options o;

	iocx_engine_options_init(&o);
	o.max_in_flight = 1;
	o.queue_limit = 2;
	o.connect_rate = 10;
	return setup_with(state, &o);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx == NULL)
		return 0;
	test_free(fx->sentinel);
	fx->sentinel = NULL;
	cb_lenient = true;
	return cfx_teardown_engine(&fx->e, fx->engines, cb_depth > 0);
}

/* ---- helpers -------------------------------------------------------- */

static struct iocx_connect_request request(struct fx *fx, struct probe *p)
{
	return cfx_request(&fx->v4, cb_connect, cb_close, p);
}

/* A request with a total deadline and a short fixed backoff. */
static struct iocx_connect_request request_total(struct fx *fx,
						 struct probe *p,
						 uint32_t total_ms,
						 uint32_t backoff_ms)
{
	struct iocx_connect_request r = request(fx, p);

	r.total_deadline_ms = total_ms;
	r.retry.backoff_initial_ms = backoff_ms;
	r.retry.backoff_max_ms = backoff_ms;
	return r;
}

static void start(struct fx *fx, struct probe *p,
		  const struct iocx_connect_request *r)
{
	assert_int_equal(iocx_connect(fx->e, r, &p->conn), IOCX_OK);
	assert_non_null(p->conn);
}

/* Deliver what is queued, set the clock to ms after T0, run timers. */
static void at(struct fx *fx, uint64_t ms)
{
	fake_pump(fx->e);
	assert_true(T0 + ms * MS >= fake_now);
	fake_now = T0 + ms * MS;
	iocx__engine_run(fx->e, 0);
	fake_pump(fx->e);
}

static struct iocx_stats stats(struct fx *fx)
{
	struct iocx_stats s;

	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	return s;
}

/* Close a reported connection and see its on_close(IOCX_OK). */
static void close_and_pump(struct fx *fx, struct probe *p)
{
	unsigned closes = p->closes;

	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, closes + 1);
}

/* ---- total deadline ------------------------------------------------- */

/* Expiry while connecting: cancel, close, one IOCX_E_TIMEDOUT. */
static void total_deadline_expiry_while_connecting_reports_timedout(
	void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 100, 10);

	start(fx, p, &r);
	at(fx, 99);
	assert_int_equal(fake_count(FAKE_CANCEL, 0), 0);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 100);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->connect_ms, 100);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(p->res.attempts, 1);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 0 });
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	assert_int_equal(fx->e->timers.len, 0);
	close_and_pump(fx, p);
	assert_int_equal(p->connects, 1);
}

/*
 * The OS giving up on a SYN ends an attempt, not the request: a fresh
 * attempt follows after the backoff, again and again, until the total
 * deadline (max_attempts 0 means no cap with a total deadline).
 */
static void total_deadline_retries_past_os_give_up(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 1000, 20);

	start(fx, p, &r);
	for (unsigned id = 1; id <= 3; id++) {
		/* The OS gives up 300 ms into each attempt. */
		at(fx, (id - 1) * 320 + 300);
		fake_complete(p->conn, IOCX_E_TIMEDOUT, 110, 0);
		fake_pump(fx->e);
		assert_true(fake_sock(id)->closed);
		assert_int_equal(p->connects, 0);
		/* The backoff (10..20 ms) then a fresh socket. */
		at(fx, (id - 1) * 320 + 320);
		assert_int_equal(fake_count(FAKE_OPEN, id + 1), 1);
		assert_int_equal(fake_count(FAKE_CONNECT, id + 1), 1);
	}
	/* Attempt 4 is in flight at 960 ms; the total ends it at 1000. */
	at(fx, 999);
	assert_int_equal(p->connects, 0);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 1000);
	assert_int_equal(p->res.attempts, 4);
	assert_int_equal(p->connect_ms, 1000);
	assert_true(fake_sock(4)->closed);
	assert_int_equal(fake_count(FAKE_CANCEL, 4), 1);
	assert_int_equal(stats(fx).retries, 3);
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	close_and_pump(fx, p);
}

/* Expiry during a backoff: no new socket, the report comes on time. */
static void total_deadline_expiry_in_backoff_opens_nothing(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 200, 1000);

	start(fx, p, &r);
	at(fx, 10);
	fake_complete(p->conn, IOCX_E_REFUSED, 111, 0);
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	at(fx, 199);
	assert_int_equal(p->connects, 0);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 200);
	assert_int_equal(p->connect_ms, 200);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	assert_int_equal(fx->e->timers.len, 0);
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	close_and_pump(fx, p);
}

/* A per-attempt deadline past the total one: the total one fires. */
static void total_deadline_bounds_attempt_deadline(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 150, 10);

	r.deadline_ms = 500;
	start(fx, p, &r);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 150);
	assert_int_equal(p->connect_ms, 150);
	assert_int_equal(p->res.attempts, 1);
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	close_and_pump(fx, p);
}

/* The attempt deadline first: a retry, then the total deadline. */
static void total_deadline_after_attempt_deadlines(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 250, 10);

	r.deadline_ms = 100;
	start(fx, p, &r);
	at(fx, 100);			/* attempt 1 times out */
	assert_int_equal(p->conn->state, CONN_RETRY_WAIT);
	at(fx, 110);			/* attempt 2 from 105..110 */
	assert_int_equal(fake_count(FAKE_CONNECT, 2), 1);
	at(fx, 220);			/* its own deadline at <= 210 */
	at(fx, 235);			/* attempt 3 */
	assert_int_equal(fake_count(FAKE_CONNECT, 3), 1);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 250);			/* the total before attempt 3's own */
	assert_int_equal(p->res.attempts, 3);
	assert_int_equal(p->connect_ms, 250);
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	close_and_pump(fx, p);
}

/* The connect completed before the expiry's cancel took: it wins. */
static void total_deadline_lost_to_completion_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 100, 10);

	start(fx, p, &r);
	fake_pump(fx->e);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_now = T0 + 100 * MS;
	iocx__engine_run_timers(fx->e);
	assert_int_equal(p->conn->state, CONN_CANCELLING);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->conn->state, CONN_OPEN);
	assert_int_equal(stats(fx).total_deadline_expiries, 0);
	/* Open: the total deadline no longer applies. */
	at(fx, 10000);
	assert_int_equal(p->conn->state, CONN_OPEN);
	close_and_pump(fx, p);
}

/* An explicit attempt cap still ends the request before the deadline. */
static void total_deadline_keeps_explicit_attempt_cap(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 10000, 10);

	r.retry.max_attempts = 2;
	start(fx, p, &r);
	fake_complete(p->conn, IOCX_E_REFUSED, 111, 0);
	at(fx, 10);
	fake_complete(p->conn, IOCX_E_REFUSED, 111, 0);
	expect_value(cb_connect, status, IOCX_E_REFUSED);
	fake_pump(fx->e);
	assert_int_equal(p->res.attempts, 2);
	assert_int_equal(stats(fx).total_deadline_expiries, 0);
	assert_int_equal(fx->e->timers.len, 0);
	close_and_pump(fx, p);
}

/* Close during the backoff of a request with a total deadline. */
static void total_deadline_close_in_backoff_reports_cancelled(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_total(fx, p, 1000, 500);

	start(fx, p, &r);
	fake_complete(p->conn, IOCX_E_REFUSED, 111, 0);
	fake_pump(fx->e);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fx->e->timers.len, 0);
	at(fx, 2000);
	assert_int_equal(stats(fx).total_deadline_expiries, 0);
}

/* ---- admission queue ------------------------------------------------ */

/*
 * Destroy the engine with n connects not yet reported: each gets
 * on_connect(IOCX_E_CANCELLED) and on_close(IOCX_E_SHUTDOWN), and every
 * probe of p[0..total) has seen exactly one of each.
 */
static void destroy_cancels(struct fx *fx, unsigned n, unsigned total)
{
	for (unsigned i = 0; i < n; i++) {
		expect_value(cb_connect, status, IOCX_E_CANCELLED);
		expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	}
	assert_int_equal(cfx_engine_destroy(&fx->e, fx->engines), 0);
	for (unsigned i = 0; i < total; i++) {
		assert_int_equal(fx->p[i].connects, 1);
		assert_int_equal(fx->p[i].closes, 1);
	}
}

/* The probe's socket: the n-th the fake opened must be p's. */
static void assert_opened_as(const struct probe *p, unsigned id)
{
	assert_ptr_equal(fake_sock(id)->conn, p->conn);
}

/* Start n requests; the first two run, the others wait without socket. */
static void fill_queue(struct fx *fx, unsigned n)
{
	unsigned opened = fake_count(FAKE_OPEN, 0);

	for (unsigned i = 0; i < n; i++) {
		struct iocx_connect_request r = request(fx, &fx->p[i]);

		start(fx, &fx->p[i], &r);
	}
	fake_pump(fx->e);
	assert_int_equal(fake_count(FAKE_OPEN, 0) - opened, n < 2 ? n : 2);
	for (unsigned i = 2; i < n; i++)
		assert_int_equal(fx->p[i].conn->state, CONN_QUEUED);
}

/* Above queue_limit: IOCX_E_LIMIT, nothing allocated, nothing counted. */
static void queue_above_limit_reports_limit(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[5]);
	iocx_conn *out = NULL;
	unsigned long live;
	struct iocx_stats before;

	fill_queue(fx, 5);
	before = stats(fx);
	assert_int_equal(before.queued, 3);
	assert_int_equal(before.in_flight, 2);
	assert_int_equal(before.connects_started, 5);
	live = hook_allocs - hook_frees;
	assert_int_equal(iocx_connect(fx->e, &r, &out), IOCX_E_LIMIT);
	assert_null(out);
	assert_int_equal(hook_allocs - hook_frees, live);
	assert_int_equal(stats(fx).connects_started, 5);
	assert_int_equal(stats(fx).queued, 3);
	destroy_cancels(fx, 5, 5);
	/* Only the two that ran ever had a socket. */
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
}

/*
 * A reported connect hands its slot to the oldest waiting request,
 * success or failure alike; the queue runs in FIFO order.
 */
static void queue_starts_waiting_requests_in_order(void **state)
{
	struct fx *fx = *state;

	fill_queue(fx, 5);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	assert_opened_as(&fx->p[2], 3);
	assert_int_equal(fx->p[2].conn->state, CONN_CONNECTING);
	assert_int_equal(fx->p[3].conn->state, CONN_QUEUED);
	cfx_complete_connect(fx->e, fx->p[0].conn, IOCX_E_REFUSED, 111);
	assert_opened_as(&fx->p[3], 4);
	cfx_complete_connect(fx->e, fx->p[3].conn, IOCX_OK, 0);
	assert_opened_as(&fx->p[4], 5);
	assert_int_equal(stats(fx).in_flight, 2);
	cfx_complete_connect(fx->e, fx->p[2].conn, IOCX_OK, 0);
	cfx_complete_connect(fx->e, fx->p[4].conn, IOCX_OK, 0);
	assert_int_equal(stats(fx).in_flight, 0);
	assert_int_equal(fx->e->capped_in_flight, 0);
	assert_int_equal(fx->p[1].order, 1);
	assert_int_equal(fx->p[0].order, 2);
	assert_int_equal(fx->p[3].order, 3);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(fx->p[i].connects, 1);
		close_and_pump(fx, &fx->p[i]);
	}
	assert_int_equal(stats(fx).queued, 3);
	/* An empty engine takes two at once again. */
	fill_queue(fx, 2);
	for (unsigned i = 0; i < 2; i++) {
		cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
}

/* Close while queued: CANCELLED, no socket, the others keep order. */
static void queue_close_while_queued_reports_cancelled(void **state)
{
	struct fx *fx = *state;

	fill_queue(fx, 5);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	close_and_pump(fx, &fx->p[3]);
	assert_int_equal(fx->p[3].connects, 1);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	assert_int_equal(stats(fx).in_flight, 2);
	cfx_complete_connect(fx->e, fx->p[0].conn, IOCX_OK, 0);
	assert_opened_as(&fx->p[2], 3);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	assert_opened_as(&fx->p[4], 4);
	/* Room again: a sixth request joins behind nobody. */
	assert_int_equal(fake_count(FAKE_OPEN, 0), 4);
	for (unsigned i = 0; i < 5; i++) {
		if (i == 3)
			continue;
		if (i == 2 || i == 4)
			cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
	assert_int_equal(stats(fx).closed, 5);
}

/* The total deadline ends a queued request where it waits. */
static void queue_total_deadline_expires_while_queued(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[2];
	struct iocx_connect_request r;

	fill_queue(fx, 2);
	r = request_total(fx, p, 300, 10);
	start(fx, p, &r);
	assert_int_equal(p->conn->state, CONN_QUEUED);
	at(fx, 299);
	assert_int_equal(p->connects, 0);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 300);
	assert_int_equal(p->connect_ms, 300);
	assert_int_equal(p->res.attempts, 0);
	assert_int_equal(stats(fx).total_deadline_expiries, 1);
	close_and_pump(fx, p);
	/* Its place is gone: the next slot is released, not handed on. */
	cfx_complete_connect(fx->e, fx->p[0].conn, IOCX_OK, 0);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	assert_int_equal(fx->e->capped_in_flight, 1);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	close_and_pump(fx, &fx->p[0]);
	close_and_pump(fx, &fx->p[1]);
}

/*
 * Granted a slot, then expired before its KICK ran: the slot it was
 * handed goes on to the next in line, and the late KICK does nothing.
 */
static void queue_expiry_after_grant_passes_slot_on(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r;

	fill_queue(fx, 2);
	r = request_total(fx, &fx->p[2], 300, 10);
	start(fx, &fx->p[2], &r);
	r = request(fx, &fx->p[3]);
	start(fx, &fx->p[3], &r);
	fake_pump(fx->e);
	fake_now = T0 + 299 * MS;
	fake_complete(fx->p[0].conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	iocx__engine_run(fx->e, 0);	/* the completion: a KICK for p[2] */
	assert_true(atomic_load(&fx->p[2].conn->aq_granted));
	assert_int_equal(fx->p[2].conn->state, CONN_QUEUED);
	assert_int_equal(fake_pending(fx->e), 1);
	fake_now = T0 + 300 * MS;
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	iocx__engine_run_timers(fx->e);	/* before the KICK */
	assert_int_equal(fx->p[2].connects, 1);
	fake_pump(fx->e);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
	assert_opened_as(&fx->p[3], 3);
	assert_int_equal(fx->e->capped_in_flight, 2);
	close_and_pump(fx, &fx->p[2]);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	cfx_complete_connect(fx->e, fx->p[3].conn, IOCX_OK, 0);
	close_and_pump(fx, &fx->p[0]);
	close_and_pump(fx, &fx->p[1]);
	close_and_pump(fx, &fx->p[3]);
	assert_int_equal(stats(fx).in_flight, 0);
}

/* ---- pacing --------------------------------------------------------- */

/*
 * Ten a second with bursts of two: two attempts at once, then one every
 * 100 ms, in the order the requests came.
 */
static void pacing_spaces_attempts_by_rate(void **state)
{
	struct fx *fx = *state;

	for (unsigned i = 0; i < 5; i++) {
		struct iocx_connect_request r = request(fx, &fx->p[i]);

		start(fx, &fx->p[i], &r);
	}
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	assert_int_equal(fx->p[2].conn->state, CONN_PACED);
	assert_int_equal(stats(fx).paced, 3);
	assert_int_equal(stats(fx).in_flight, 5);
	/* Latency starts with the attempt, not with the wait for it. */
	at(fx, 99);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	at(fx, 100);
	assert_opened_as(&fx->p[2], 3);
	at(fx, 150);
	fake_complete(fx->p[2].conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->p[2].res.latency_ns, 50 * MS);
	for (unsigned i = 3; i < 5; i++) {
		uint64_t turn = (i - 1) * 100;

		at(fx, turn - 1);
		assert_int_equal(fake_count(FAKE_OPEN, 0), i);
		at(fx, turn);
		assert_int_equal(fake_count(FAKE_OPEN, 0), i + 1);
		assert_opened_as(&fx->p[i], i + 1);
	}
	for (unsigned i = 0; i < 5; i++) {
		if (i != 2)
			cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
	/* A quiet spell restarts the schedule: two at once again. */
	at(fx, 1000);
	for (unsigned i = 0; i < 3; i++) {
		struct iocx_connect_request r = request(fx, &fx->p[i]);

		start(fx, &fx->p[i], &r);
	}
	assert_int_equal(fake_count(FAKE_OPEN, 0), 7);
	assert_int_equal(fx->p[2].conn->state, CONN_PACED);
	at(fx, 1100);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 8);
	for (unsigned i = 0; i < 3; i++) {
		cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
}

/*
 * p (two attempts, 10 ms backoff) and p + 1 take the burst's two turns;
 * p is refused, and at 10 ms its retry waits for the turn of 100 ms.
 */
static void start_retry_without_turn(struct fx *fx, struct probe *p)
{
	struct iocx_connect_request r = request(fx, p);

	r.retry.max_attempts = 2;
	r.retry.backoff_initial_ms = 10;
	r.retry.backoff_max_ms = 10;
	start(fx, p, &r);
	r = request(fx, p + 1);
	start(fx, p + 1, &r);		/* the burst's second turn */
	fake_complete(p->conn, IOCX_E_REFUSED, 111, 0);
	at(fx, 10);			/* backoff over, not its turn */
	assert_int_equal(p->conn->state, CONN_PACED);
}

/* A retry takes a turn too. */
static void pacing_applies_to_retries(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_retry_without_turn(fx, p);
	at(fx, 99);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	at(fx, 100);
	assert_opened_as(p, 3);
	assert_int_equal(stats(fx).paced, 1);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 2);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	close_and_pump(fx, p);
	close_and_pump(fx, &fx->p[1]);
}

/*
 * A retry that reconnects its kept socket (Windows' same-socket retry)
 * waits for its turn holding that socket, and connects on it; a close
 * while it waits closes it.
 */
static void pacing_retry_holds_kept_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct probe *q = &fx->p[2];
	struct iocx_connect_request r;

	fake_set_keep(FAKE_KEEP_ON);
	start_retry_without_turn(fx, p);
	assert_true(p->conn->held);
	assert_false(fake_sock(1)->closed);
	at(fx, 100);
	assert_int_equal(p->conn->state, CONN_CONNECTING);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	assert_int_equal(fake_sock(1)->connects, 2);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->res.attempts, 2);
	assert_int_equal(stats(fx).same_socket_retries, 1);

	/* The next one gets the turn at 200, and waits for it holding its
	 * refused socket, 3, until a close. */
	r = request(fx, q);
	r.retry = (struct iocx_retry){ 2, 10, 10 };
	start(fx, q, &r);
	assert_int_equal(q->conn->state, CONN_PACED);
	at(fx, 200);
	assert_int_equal(fake_id(q->conn), 3);
	fake_complete(q->conn, IOCX_E_REFUSED, 111, 0);
	at(fx, 210);
	assert_int_equal(q->conn->state, CONN_PACED);
	assert_true(q->conn->held);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	close_and_pump(fx, q);
	assert_true(fake_sock(3)->closed);
	assert_int_equal(fake_count(FAKE_CLOSE, 3), 1);
	at(fx, 400);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	close_and_pump(fx, p);
	close_and_pump(fx, &fx->p[1]);
}

/* Start p[from..to) without pacing them by hand. */
static void start_range(struct fx *fx, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++) {
		struct iocx_connect_request r = request(fx, &fx->p[i]);

		start(fx, &fx->p[i], &r);
	}
}

/* Nothing opens until ms, then exactly p's socket at ms. */
static void next_opens_at(struct fx *fx, uint64_t ms, struct probe *p)
{
	unsigned n = fake_count(FAKE_OPEN, 0);

	at(fx, ms - 1);
	assert_int_equal(fake_count(FAKE_OPEN, 0), n);
	at(fx, ms);
	assert_int_equal(fake_count(FAKE_OPEN, 0), n + 1);
	assert_opened_as(p, n + 1);
}

/*
 * A worker that wakes long after the turns fell due (750 ms: seven
 * turns missed) starts only the burst of two, not the backlog: the
 * schedule restarts at 750, and the rest follow one every 100 ms, in
 * order.
 */
static void pacing_late_wake_up_starts_at_most_burst(void **state)
{
	struct fx *fx = *state;

	start_range(fx, 0, 6);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	at(fx, 750);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 4);
	assert_opened_as(&fx->p[2], 3);
	assert_opened_as(&fx->p[3], 4);
	assert_int_equal(fx->p[4].conn->state, CONN_PACED);
	assert_int_equal(fx->p[5].conn->state, CONN_PACED);
	next_opens_at(fx, 850, &fx->p[4]);
	next_opens_at(fx, 950, &fx->p[5]);
	assert_int_equal(stats(fx).paced, 4);
	for (unsigned i = 0; i < 6; i++) {
		cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
}

/*
 * The pacing FIFO's waiters are woken late[k] ms after each due time (the
 * worker's lateness); every socket opened meanwhile is noted, at the
 * fake time it opened, in v[have..].  Returns the new count.
 */
static unsigned wake_late(struct fx *fx, const unsigned *late, unsigned n,
			  uint64_t *v, unsigned have)
{
	for (unsigned k = 0; k < n; k++) {
		uint64_t due = iocx__timer_next(&fx->e->timers);
		unsigned opened = fake_count(FAKE_OPEN, 0);
		uint64_t ms;

		assert_true(due != IOCX_TIMER_NONE && due >= fake_now);
		ms = (due - T0 + MS - 1) / MS + late[k];
		at(fx, ms);
		assert_true(fake_count(FAKE_OPEN, 0) > opened);
		while (opened++ < fake_count(FAKE_OPEN, 0))
			v[have++] = ms;
	}
	return have;
}

/*
 * The rule of include/iocx.h at connect_rate, here 10/s: no window of t
 * ms holds more than ceil(t / 100) + burst of the starts v[0..n) (sorted),
 * which is rate * t + burst when t is a whole number of intervals.
 * Checked for every window that begins at a start, t = 0..1000 ms.
 */
static void assert_window_bound(const uint64_t *v, unsigned n,
				unsigned burst)
{
	for (uint64_t t = 0; t <= 1000; t++) {
		for (unsigned lo = 0; lo < n; lo++) {
			unsigned hi = lo;

			while (hi < n && v[hi] - v[lo] <= t)
				hi++;
			assert_in_range(hi - lo, 1, (t + 99) / 100 + burst);
		}
	}
}

static void complete_and_close(struct fx *fx, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
	assert_int_equal(stats(fx).in_flight, 0);
}

/*
 * Wake-ups late by up to 0.9 of an interval lose nothing: every start
 * keeps its slot (start k at k * 100 ms plus its own lateness), so the
 * rate holds exactly, and the late start and the next on-time one are
 * never more than the window rule allows.
 */
static void pacing_late_wake_ups_keep_rate_and_window(void **state)
{
	static const unsigned late[] = { 90, 0, 90, 90, 0, 45, 90, 10, 90,
					 0, 90 };
	struct fx *fx = *state;
	uint64_t v[NPROBES];
	unsigned n;

	start_range(fx, 0, 12);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
	v[0] = 0;
	n = wake_late(fx, late, 11, v, 1);
	assert_int_equal(n, 12);
	for (unsigned k = 1; k < n; k++) {
		assert_int_equal(v[k], k * 100 + late[k - 1]);
		assert_opened_as(&fx->p[k], k + 1);
	}
	assert_window_bound(v, n, 1);
	assert_int_equal(stats(fx).paced, 11);
	complete_and_close(fx, 12);
}

/*
 * A wake-up late by one interval or more is a stall: its turns are lost
 * and the schedule restarts at the late start (one start, the burst),
 * the next one interval after it.
 */
static void pacing_stall_restarts_schedule(void **state)
{
	static const unsigned late[] = { 100, 350, 0, 90, 0 };
	static const uint64_t want[] = { 0, 200, 650, 750, 940, 950 };
	struct fx *fx = *state;
	uint64_t v[NPROBES];
	unsigned n;

	start_range(fx, 0, 6);
	v[0] = 0;
	n = wake_late(fx, late, 5, v, 1);
	assert_int_equal(n, 6);
	for (unsigned k = 0; k < n; k++)
		assert_int_equal(v[k], want[k]);
	assert_window_bound(v, n, 1);
	complete_and_close(fx, 6);
}

/*
 * With a burst of two, lateness up to the burst's reach plus 0.9 of an
 * interval is made up too: the starts catch up, never above the rule.
 */
static void pacing_burst_late_wake_ups_hold_window(void **state)
{
	static const unsigned late[] = { 190, 0, 150, 0, 90, 190, 5, 120,
					 0, 190, 60, 0, 190 };
	struct fx *fx = *state;
	uint64_t v[NPROBES];
	unsigned n = 0;

	start_range(fx, 0, NPROBES);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	v[n++] = 0;
	v[n++] = 0;
	for (unsigned k = 0; n < NPROBES; k++) {
		assert_true(k < sizeof(late) / sizeof(late[0]));
		n = wake_late(fx, &late[k], 1, v, n);
	}
	assert_window_bound(v, n, 2);
	/* Fourteen slots after the burst's two, one per 100 ms from 100:
	 * the last at 1500, and no start is an interval or more late. */
	assert_in_range(v[n - 1], 1400, 1599);
	complete_and_close(fx, NPROBES);
}

/* ---- the window rule by construction ------------------------------ */

#define NSTAMP 30
#define IVL (100 * MS)			/* 1 / connect_rate */

static struct probe stamp_probe[NSTAMP];
static uint64_t stamp_tick, stamp_seed;	/* the last run, for fail_msg */

/*
 * The rule of include/iocx.h at connect_rate for the stamps v[0..n)
 * (sorted, ns): every closed window [v[lo], v[hi]] of length t holds at
 * most ceil(t / interval) + burst of them.  Windows whose ends are not
 * stamps hold no more than one whose ends are, so this counts them all.
 */
static void assert_stamp_window_bound(const uint64_t *v, unsigned n,
				      unsigned burst)
{
	for (unsigned lo = 0; lo < n; lo++)
		for (unsigned hi = lo; hi < n; hi++) {
			uint64_t t = v[hi] - v[lo];

			assert_true(v[hi] >= v[lo]);
			if (hi - lo + 1 > (t + IVL - 1) / IVL + burst)
				fail_msg("%u starts in %llu ns (burst %u, "
					 "tick %llu ns, seed %llu)",
					 hi - lo + 1, (unsigned long long)t,
					 burst,
					 (unsigned long long)stamp_tick,
					 (unsigned long long)stamp_seed);
		}
}

/* The next pseudo-random lateness in [0, 2 intervals). */
static uint64_t next_late(uint64_t *seed)
{
	return lcg(seed) % (2 * IVL);
}

/*
 * Start NSTAMP connects at once and wake the worker late[k % nlate] ns
 * after each due time (late == NULL: next_late(seed)), every clock
 * reading moving the time on by tick ns.  Returns in v the stamps of the
 * starts: where each one's latency_ns begins.  Then completes and closes
 * them all and lets a quiet spell pass.
 */
static void stamp_run(struct fx *fx, uint64_t tick, const uint64_t *late,
		      unsigned nlate, uint64_t seed, uint64_t *v)
{
	unsigned k = 0;

	fake_log_clear();	/* the fake's log holds one run */
	fake_tick = tick;
	fake_tick_seed = seed * 31 + 17;
	stamp_tick = tick;
	stamp_seed = seed;
	for (unsigned i = 0; i < NSTAMP; i++) {
		struct iocx_connect_request r = request(fx, &stamp_probe[i]);

		memset(&stamp_probe[i], 0, sizeof(stamp_probe[i]));
		start(fx, &stamp_probe[i], &r);
	}
	while (fake_count(FAKE_OPEN, 0) < NSTAMP) {
		uint64_t due = iocx__timer_next(&fx->e->timers);

		assert_true(k++ < 4 * NSTAMP);
		assert_true(due != IOCX_TIMER_NONE);
		due += late ? late[k % nlate] : next_late(&seed);
		fake_pump(fx->e);
		if (due > fake_now)
			fake_now = due;
		iocx__engine_run(fx->e, 0);
		fake_pump(fx->e);
	}
	fake_tick = 0;
	for (unsigned i = 0; i < NSTAMP; i++) {
		v[i] = stamp_probe[i].conn->t_start;
		cfx_complete_connect(fx->e, stamp_probe[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &stamp_probe[i]);
	}
	assert_int_equal(stats(fx).in_flight, 0);
	fake_now += 10000 * MS;	/* a quiet spell */
}

/*
 * The window rule holds by construction for the starts as the engine
 * stamps them (where latency_ns begins): whatever the worker's lateness,
 * and however much time passes between the pacing decision and the
 * socket.  Here every reading of the clock moves it on by a seeded
 * random 0..tick (tick 0, 1 us, 1 ms, 3 ms, 40 ms: a worker slowed or
 * preempted between two readings), and the worker wakes nearly one
 * interval late and then on time (the pair that packs two starts
 * closest), or at seeded random lateness up to two intervals (stalls
 * included).  A stamp read apart from the decision (a second reading
 * after it) broke the rule here: 3 starts in 99.97 ms with burst 1, 10
 * in 700 ms with burst 2 (bounds 2 and 9).  And a worker that wakes on
 * time loses no turn: without ticks the k-th start after the burst is at
 * exactly k intervals, with 1 us ticks within 0.1 % of an interval of it.
 */
static void pacing_window_holds_for_stamped_starts(void **state)
{
	static const uint64_t ticks[] = { 0, 1000, MS, 3 * MS, 40 * MS };
	static const uint64_t pair[] = { IVL - 1, 0, IVL - 2 * MS, 0,
					 IVL / 2, IVL - 1, 1, 0 };
	static const uint64_t on_time[] = { 0 };
	struct fx *fx = *state;
	unsigned burst = fx->e->opts.connect_burst;
	uint64_t v[NSTAMP];

	for (unsigned t = 0; t < sizeof(ticks) / sizeof(ticks[0]); t++)
		for (uint64_t seed = 1; seed <= 12; seed++) {
			stamp_run(fx, ticks[t], pair, 8, seed, v);
			assert_stamp_window_bound(v, NSTAMP, burst);
			stamp_run(fx, ticks[t], NULL, 0, seed * 7919 + t, v);
			assert_stamp_window_bound(v, NSTAMP, burst);
		}
	stamp_run(fx, 0, on_time, 1, 0, v);
	for (unsigned i = burst; i < NSTAMP; i++)
		assert_int_equal(v[i] - v[0], (i - burst + 1) * IVL);
	/* 1 us per reading: each start a few us late, and no turn lost. */
	stamp_run(fx, 1000, on_time, 1, 0, v);
	for (unsigned i = burst; i < NSTAMP; i++)
		assert_in_range(v[i] - v[0], (i - burst + 1) * IVL,
				(i - burst + 1) * IVL + IVL / 1000);
}

/*
 * Close of a middle waiter, total deadline of the head, then destroy,
 * while paced: a waiter that leaves takes no turn, each ends with one
 * on_connect, and the next in line takes the head's turn.
 */
static void pacing_close_deadline_destroy_while_paced(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r;

	start_range(fx, 0, 2);			/* the burst */
	r = request_total(fx, &fx->p[2], 50, 10);
	start(fx, &fx->p[2], &r);		/* the head: its turn at 100 */
	start_range(fx, 3, 6);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	close_and_pump(fx, &fx->p[3]);		/* a middle waiter */
	assert_int_equal(fx->p[3].connects, 1);
	at(fx, 49);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 2);
	expect_value(cb_connect, status, IOCX_E_TIMEDOUT);
	at(fx, 50);				/* the head expires */
	assert_int_equal(fx->p[2].connects, 1);
	assert_int_equal(fx->p[4].conn->state, CONN_PACED);
	next_opens_at(fx, 100, &fx->p[4]);
	close_and_pump(fx, &fx->p[2]);
	assert_int_equal(fx->p[5].conn->state, CONN_PACED);
	/* Destroy: the one still paced and the three running. */
	destroy_cancels(fx, 4, 6);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
}

/* Closing the head while it waits: the next takes its turn, at 100. */
static void pacing_close_of_head_passes_turn_on(void **state)
{
	struct fx *fx = *state;

	start_range(fx, 0, 4);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	close_and_pump(fx, &fx->p[2]);
	next_opens_at(fx, 100, &fx->p[3]);
	at(fx, 300);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 3);
	for (unsigned i = 0; i < 4; i++) {
		if (i == 2)
			continue;
		cfx_complete_connect(fx->e, fx->p[i].conn, IOCX_OK, 0);
		close_and_pump(fx, &fx->p[i]);
	}
	assert_int_equal(stats(fx).in_flight, 0);
}

/* Queue then pacing: a granted slot still waits for its turn. */
static void queue_then_pacing_orders_both(void **state)
{
	struct fx *fx = *state;

	for (unsigned i = 0; i < 3; i++) {
		struct iocx_connect_request r = request(fx, &fx->p[i]);

		start(fx, &fx->p[i], &r);
	}
	assert_int_equal(fx->p[1].conn->state, CONN_QUEUED);
	at(fx, 10);
	cfx_complete_connect(fx->e, fx->p[0].conn, IOCX_OK, 0);
	assert_int_equal(fx->p[1].conn->state, CONN_PACED);
	at(fx, 100);
	assert_opened_as(&fx->p[1], 2);
	cfx_complete_connect(fx->e, fx->p[1].conn, IOCX_OK, 0);
	assert_int_equal(fx->p[2].conn->state, CONN_PACED);
	at(fx, 200);
	assert_opened_as(&fx->p[2], 3);
	cfx_complete_connect(fx->e, fx->p[2].conn, IOCX_OK, 0);
	assert_int_equal(stats(fx).queued, 2);
	assert_int_equal(stats(fx).paced, 2);
	for (unsigned i = 0; i < 3; i++)
		close_and_pump(fx, &fx->p[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(total_deadline_expiry_while_connecting_reports_timedout),
		T(total_deadline_retries_past_os_give_up),
		T(total_deadline_expiry_in_backoff_opens_nothing),
		T(total_deadline_bounds_attempt_deadline),
		T(total_deadline_after_attempt_deadlines),
		T(total_deadline_lost_to_completion_reports_ok),
		T(total_deadline_keeps_explicit_attempt_cap),
		T(total_deadline_close_in_backoff_reports_cancelled),
#undef T
#define Q(fn) cmocka_unit_test_setup_teardown(fn, setup_queue, teardown)
		Q(queue_above_limit_reports_limit),
		Q(queue_starts_waiting_requests_in_order),
		Q(queue_close_while_queued_reports_cancelled),
		Q(queue_total_deadline_expires_while_queued),
		Q(queue_expiry_after_grant_passes_slot_on),
#undef Q
#define P(fn) cmocka_unit_test_setup_teardown(fn, setup_paced, teardown)
		P(pacing_spaces_attempts_by_rate),
		P(pacing_applies_to_retries),
		P(pacing_retry_holds_kept_socket),
		P(pacing_late_wake_up_starts_at_most_burst),
		P(pacing_close_deadline_destroy_while_paced),
		P(pacing_close_of_head_passes_turn_on),
		P(pacing_burst_late_wake_ups_hold_window),
		P(pacing_window_holds_for_stamped_starts),
#undef P
#define P1(fn) cmocka_unit_test_setup_teardown(fn, setup_paced1, teardown)
		P1(pacing_late_wake_ups_keep_rate_and_window),
		P1(pacing_stall_restarts_schedule),
		P1(pacing_window_holds_for_stamped_starts),
#undef P1
		cmocka_unit_test_setup_teardown(queue_then_pacing_orders_both,
						setup_queue_paced, teardown),
	};

	return cmocka_run_group_tests_name("conn_controls", tests, group_setup,
					   cfx_group_teardown);
}
