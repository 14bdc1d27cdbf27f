/*
 * Unit tests of the drain: iocx_engine_wait_idle() and options.on_idle,
 * on a manual engine over the fake backend.  The test completes and closes
 * every connection itself, so it knows exactly when the engine is idle:
 * when the on_close of the last connection iocx_connect() accepted has
 * returned.  wait_idle does not pump a manual engine; one test waits on a
 * second thread while the test thread pumps, to see the wake-up.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "engine.h"
#include "conn.h"
#include "platform.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

#define PORT 4242
#define NPROBES 4

/* One connection's record (its request's user pointer). */
struct probe {
	iocx_conn *conn;
	unsigned connects;
	unsigned closes;
	int status;
	int reason;
	int wait_rc_connect;	/* wait_idle from inside on_connect */
	int wait_rc_close;	/* ... and from inside on_close */
	unsigned idles_at_close;	/* on_idle calls when on_close ran */
	struct probe *chain;	/* on_close starts this one, if set */
	int chain_rc;
};

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	struct probe p[NPROBES];
	unsigned engines;
	unsigned idles;		/* on_idle calls */
	iocx_engine *idle_engine;	/* its engine argument */
	int idle_wait_rc;	/* wait_idle from inside on_idle */
	int idle_destroy_rc;	/* destroy from inside on_idle */
	struct probe *idle_chain;	/* on_idle starts this one, if set */
	int idle_chain_rc;
	void *sentinel;
};

static struct fx the_fx;

static struct iocx_connect_request request(struct fx *fx, struct probe *p);

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct probe *p = user;

	p->connects++;
	p->status = r->status;
	p->wait_rc_connect = iocx_engine_wait_idle(conn->engine, 0);
}

static void on_close(iocx_conn *conn, int reason, void *user)
{
	struct probe *p = user;
	struct iocx_connect_request r;

	p->closes++;
	p->reason = reason;
	p->idles_at_close = the_fx.idles;
	p->wait_rc_close = iocx_engine_wait_idle(conn->engine,
						 IOCX_WAIT_FOREVER);
	if (p->chain) {
		r = request(&the_fx, p->chain);
		p->chain_rc = iocx_connect(conn->engine, &r, &p->chain->conn);
	}
}

static void on_idle(iocx_engine *e, void *user)
{
	struct fx *fx = user;
	struct iocx_connect_request r;

	fx->idles++;
	fx->idle_engine = e;
	fx->idle_wait_rc = iocx_engine_wait_idle(e, 0);
	fx->idle_destroy_rc = iocx_engine_destroy(e);
	if (fx->idle_chain) {
		r = request(fx, fx->idle_chain);
		fx->idle_chain_rc = iocx_connect(e, &r, &fx->idle_chain->conn);
		fx->idle_chain = NULL;
	}
}

static struct iocx_connect_request request(struct fx *fx, struct probe *p)
{
	return cfx_request(&fx->v4, on_connect, on_close, p);
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *fx = &the_fx;
	struct iocx_engine_options o;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	fx->engines = fake_engines();
	iocx_engine_options_init(&o);
	o.on_idle = on_idle;
	o.idle_user = fx;
	if (cfx_engine_create(&o, &fx->e) != IOCX_OK)
		return -1;
	cfx_loopback4(&fx->v4, PORT);
	/* Keeps cmocka's leak walk off blocks the body frees (test_conn.c). */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	test_free(fx->sentinel);
	if (cfx_engine_abandon(&fx->e, false))
		return 0;
	fake_set_cancel_completes(true);
	return cfx_engine_destroy(&fx->e, fx->engines);
}

/* Start p's connection; it must be accepted. */
static void start(struct fx *fx, struct probe *p)
{
	struct iocx_connect_request r = request(fx, p);

	assert_int_equal(iocx_connect(fx->e, &r, &p->conn), IOCX_OK);
}

/* Complete p's connect with status and pump: exactly one on_connect. */
static void complete(struct fx *fx, struct probe *p, int status)
{
	fake_complete(p->conn, status, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->status, status);
}

/* Close p and pump: exactly one on_close(IOCX_OK). */
static void close_conn(struct fx *fx, struct probe *p)
{
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	assert_int_equal(p->reason, IOCX_OK);
}

/* Start p, connect it and close it. */
static void open_and_close(struct fx *fx, struct probe *p)
{
	start(fx, p);
	complete(fx, p, IOCX_OK);
	close_conn(fx, p);
}

/*
 * p was started by a callback while another connection closed, so the
 * engine stayed busy: connect and close p, which makes it idle (the
 * idles-th time).
 */
static void close_chained(struct fx *fx, struct probe *p, unsigned idles)
{
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_E_TIMEDOUT);
	complete(fx, p, IOCX_OK);
	close_conn(fx, p);
	assert_int_equal(fx->idles, idles);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
}

static void wait_idle_null_engine_is_inval(void **state)
{
	(void)state;
	assert_int_equal(iocx_engine_wait_idle(NULL, 0), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_wait_idle(NULL, IOCX_WAIT_FOREVER),
			 IOCX_E_INVAL);
}

static void wait_idle_new_engine_returns_ok_without_on_idle(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
	assert_int_equal(iocx_engine_wait_idle(fx->e, IOCX_WAIT_FOREVER),
			 IOCX_OK);
	assert_int_equal(fx->idles, 0);
}

static void wait_idle_open_connection_times_out(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	uint64_t t0, waited_ms;

	start(fx, p);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_E_TIMEDOUT);
	complete(fx, p, IOCX_OK);
	t0 = iocx__now_ns();
	assert_int_equal(iocx_engine_wait_idle(fx->e, 50), IOCX_E_TIMEDOUT);
	waited_ms = (iocx__now_ns() - t0) / 1000000u;
	/* It waited its timeout out (a lower bound only: no speed claim). */
	assert_true(waited_ms >= 50);
	assert_int_equal(fx->idles, 0);
	/* The engine is as usable as before. */
	close_conn(fx, p);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
	assert_int_equal(fx->idles, 1);
}

static void wait_idle_failed_connect_stays_busy_until_closed(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start(fx, p);
	complete(fx, p, IOCX_E_REFUSED);
	/* Reported, but its on_close is still due. */
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_E_TIMEDOUT);
	close_conn(fx, p);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
	assert_int_equal(fx->idles, 1);
}

static void wait_idle_sync_failure_never_makes_busy(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	fake_fail_next(FAKE_CONNECT, IOCX_E_REFUSED);
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_REFUSED);
	fake_fail_next(FAKE_OPEN, IOCX_E_PORTS_EXHAUSTED);
	assert_int_equal(iocx_connect(fx->e, &r, NULL),
			 IOCX_E_PORTS_EXHAUSTED);
	r.remote_len = 2;
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_ADDRLEN);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->p[0].connects + fx->p[0].closes, 0);
	assert_int_equal(fx->idles, 0);
}

static void wait_idle_from_callbacks_is_incallback(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	open_and_close(fx, p);
	assert_int_equal(p->wait_rc_connect, IOCX_E_INCALLBACK);
	/* IOCX_WAIT_FOREVER from on_close would wait for itself. */
	assert_int_equal(p->wait_rc_close, IOCX_E_INCALLBACK);
	assert_int_equal(fx->idles, 1);
	assert_ptr_equal(fx->idle_engine, fx->e);
	assert_int_equal(fx->idle_wait_rc, IOCX_E_INCALLBACK);
	assert_int_equal(fx->idle_destroy_rc, IOCX_E_INCALLBACK);
}

static void on_idle_fires_once_per_busy_to_idle_edge(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1], *c = &fx->p[2];

	start(fx, a);
	start(fx, b);
	complete(fx, a, IOCX_OK);
	complete(fx, b, IOCX_OK);
	close_conn(fx, a);
	assert_int_equal(fx->idles, 0);		/* b still open */
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_E_TIMEDOUT);
	close_conn(fx, b);
	/* After b's on_close returned, not during it. */
	assert_int_equal(b->idles_at_close, 0);
	assert_int_equal(fx->idles, 1);
	assert_int_equal(iocx_engine_wait_idle(fx->e, 0), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->idles, 1);		/* nothing more happened */

	/* Busy again, idle again: a second edge. */
	start(fx, c);
	complete(fx, c, IOCX_E_TIMEDOUT);
	close_conn(fx, c);
	assert_int_equal(fx->idles, 2);
}

static void on_idle_not_fired_when_on_close_starts_next(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];

	a->chain = b;
	open_and_close(fx, a);
	assert_int_equal(a->chain_rc, IOCX_OK);
	/* b started before a's on_close returned: never idle in between. */
	assert_int_equal(fx->idles, 0);
	close_chained(fx, b, 1);
}

static void on_idle_may_connect_and_make_busy_again(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];

	fx->idle_chain = b;
	open_and_close(fx, a);
	assert_int_equal(fx->idles, 1);
	assert_int_equal(fx->idle_chain_rc, IOCX_OK);
	close_chained(fx, b, 2);
}

static void on_idle_fires_when_destroy_closes_the_last(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];

	start(fx, a);
	start(fx, b);
	complete(fx, a, IOCX_OK);
	assert_int_equal(cfx_engine_destroy(&fx->e, fx->engines), 0);
	assert_int_equal(a->closes, 1);
	assert_int_equal(a->reason, IOCX_E_SHUTDOWN);
	assert_int_equal(b->connects, 1);
	assert_int_equal(b->status, IOCX_E_CANCELLED);
	assert_int_equal(b->closes, 1);
	assert_int_equal(fx->idles, 1);
}

/* A thread blocked in wait_idle while the test thread closes. */
struct waiter {
	iocx_engine *e;
	uint32_t timeout_ms;
	atomic_int rc;		/* 1 until wait_idle returned */
};

static void waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->rc, iocx_engine_wait_idle(w->e, w->timeout_ms));
}

static void wait_idle_wakes_when_last_closes(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	/* Forever, and a timeout far longer than the test. */
	struct waiter w[2] = {
		{ fx->e, IOCX_WAIT_FOREVER, 1 },
		{ fx->e, 600000, 1 },
	};
	iocx_thread t[2];

	start(fx, p);
	complete(fx, p, IOCX_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(iocx__thread_start(&t[i], waiter_main, &w[i]),
				 0);
	/* Whether or not a waiter got as far as waiting yet, none may
	 * have returned while the connection is open. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(atomic_load(&w[i].rc), 1);
	close_conn(fx, p);
	for (int i = 0; i < 2; i++) {
		iocx__thread_join(&t[i]);
		assert_int_equal(atomic_load(&w[i].rc), IOCX_OK);
	}
	assert_int_equal(fx->idles, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(wait_idle_null_engine_is_inval),
		T(wait_idle_new_engine_returns_ok_without_on_idle),
		T(wait_idle_open_connection_times_out),
		T(wait_idle_failed_connect_stays_busy_until_closed),
		T(wait_idle_sync_failure_never_makes_busy),
		T(wait_idle_from_callbacks_is_incallback),
		T(on_idle_fires_once_per_busy_to_idle_edge),
		T(on_idle_not_fired_when_on_close_starts_next),
		T(on_idle_may_connect_and_make_busy_again),
		T(on_idle_fires_when_destroy_closes_the_last),
		T(wait_idle_wakes_when_last_closes),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, cfx_group_teardown);
}
