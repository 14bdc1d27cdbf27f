/*
 * Drain on real loopback sockets and worker threads: iocx_engine_wait_idle()
 * returns once every connection's on_close has returned (the recorder
 * counts a close inside on_close, so the count is complete the moment
 * wait_idle returns), times out while one stays open, refuses to wait from
 * a callback, and options.on_idle fires once per busy -> idle transition.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

#define NCONN 64

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec[NCONN];
	iocx_conn *conn[NCONN];
	atomic_long idles;		/* on_idle calls */
	atomic_int idle_bad;		/* on_idle with a wrong argument */
	iocx_mutex lock;
	iocx_cond cv;			/* broadcast at each on_idle */
	long live_pre;
};

static void on_idle(iocx_engine *e, void *user)
{
	struct fx *f = user;

	if (e != f->engine || iocx_engine_wait_idle(e, 0) !=
			      IOCX_E_INCALLBACK)
		atomic_fetch_add(&f->idle_bad, 1);
	iocx__mutex_lock(&f->lock);
	atomic_fetch_add(&f->idles, 1);
	iocx__mutex_unlock(&f->lock);
	iocx__cond_broadcast(&f->cv);
}

/* Wait until on_idle ran at least n times; false on timeout. */
static bool wait_idles(struct fx *f, long n, unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	bool ok;

	iocx__mutex_lock(&f->lock);
	while (atomic_load(&f->idles) < n && peer_now_ms() < deadline)
		iocx__cond_timedwait(&f->cv, &f->lock,
				     (unsigned)(deadline - peer_now_ms()));
	ok = atomic_load(&f->idles) >= n;
	iocx__mutex_unlock(&f->lock);
	return ok;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	*state = f;
	iocx__mutex_init(&f->lock);
	iocx__cond_init(&f->cv);
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, NCONN, &f->trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	f->live_pre = peer_alloc_live();
	iocx_engine_options_init(&o);
	o.workers = 2;
	o.on_idle = on_idle;
	o.idle_user = f;
	return iocx_engine_create(&o, &f->engine) == IOCX_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_close(f->peer);
	free(f);
	return 0;
}

/* Start rec[i..i+n) and wait for their on_connect (all IOCX_OK). */
static void open_n(struct fx *f, int i, int n)
{
	struct iocx_connect_request req;

	for (int k = i; k < i + n; k++) {
		peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[k]);
		assert_int_equal(iocx_connect(f->engine, &req, &f->conn[k]),
				 IOCX_OK);
	}
	peer_assert_wait(&f->trk, i + n, 0, PEER_TIMEOUT_MS);
	for (int k = i; k < i + n; k++)
		assert_int_equal(f->rec[k].status, IOCX_OK);
}

static long closes_now(struct fx *f)
{
	struct peer_tracker s;

	peer_tracker_snapshot(&f->trk, &s);
	return s.closes;
}

/* Destroy the engine; on_idle ran idles times, nothing is left. */
static void destroy_and_check(struct fx *f, long idles)
{
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(atomic_load(&f->idles), idles);
	assert_int_equal(atomic_load(&f->idle_bad), 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live_pre);
}

static void wait_idle_returns_once_everything_closed(void **state)
{
	struct fx *f = *state;

	assert_int_equal(iocx_engine_wait_idle(f->engine, 0), IOCX_OK);
	open_n(f, 0, NCONN);
	assert_int_equal(iocx_engine_wait_idle(f->engine, 0),
			 IOCX_E_TIMEDOUT);
	for (int k = 0; k < NCONN; k++)
		assert_int_equal(iocx_close(f->conn[k], IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	assert_int_equal(iocx_engine_wait_idle(f->engine, PEER_TIMEOUT_MS),
			 IOCX_OK);
	/* Every on_close had returned by then. */
	assert_int_equal(closes_now(f), NCONN);
	/* One busy -> idle transition: the last close. */
	assert_true(wait_idles(f, 1, PEER_TIMEOUT_MS));
	destroy_and_check(f, 1);
}

static void wait_idle_times_out_while_connection_open(void **state)
{
	struct fx *f = *state;
	uint64_t t0;

	open_n(f, 0, 1);
	/* The engine's clock (QueryPerformanceCounter, CLOCK_MONOTONIC);
	 * GetTickCount64 is too coarse to check 200 ms against. */
	t0 = iocx__now_ns();
	assert_int_equal(iocx_engine_wait_idle(f->engine, 200),
			 IOCX_E_TIMEDOUT);
	assert_true(iocx__now_ns() - t0 >= 200u * 1000000u);
	assert_int_equal(closes_now(f), 0);
	assert_int_equal(atomic_load(&f->idles), 0);
	/* Still usable: close, and the wait succeeds. */
	assert_int_equal(iocx_close(f->conn[0], IOCX_CLOSE_ABORT), IOCX_OK);
	assert_int_equal(iocx_engine_wait_idle(f->engine, IOCX_WAIT_FOREVER),
			 IOCX_OK);
	assert_int_equal(closes_now(f), 1);
	assert_true(wait_idles(f, 1, PEER_TIMEOUT_MS));
	destroy_and_check(f, 1);
}

/* Hooks: wait_idle from inside on_connect and on_close. */
static void hook_connect(struct peer_rec *r, iocx_conn *conn,
			 const struct iocx_connect_result *res)
{
	(void)conn;
	(void)res;
	r->hook_rc[0] = iocx_engine_wait_idle(r->ctx, IOCX_WAIT_FOREVER);
}

static void hook_close(struct peer_rec *r, iocx_conn *conn, int reason)
{
	(void)conn;
	(void)reason;
	r->hook_rc[1] = iocx_engine_wait_idle(r->ctx, 0);
}

static void wait_idle_from_callback_is_incallback(void **state)
{
	struct fx *f = *state;

	f->rec[0].ctx = f->engine;
	f->rec[0].on_connect_hook = hook_connect;
	f->rec[0].on_close_hook = hook_close;
	open_n(f, 0, 1);
	assert_int_equal(f->rec[0].hook_rc[0], IOCX_E_INCALLBACK);
	assert_int_equal(iocx_close(f->conn[0], IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_engine_wait_idle(f->engine, PEER_TIMEOUT_MS),
			 IOCX_OK);
	assert_int_equal(f->rec[0].hook_rc[1], IOCX_E_INCALLBACK);
	assert_true(wait_idles(f, 1, PEER_TIMEOUT_MS));
	destroy_and_check(f, 1);
}

static void on_idle_fires_once_per_busy_idle_edge(void **state)
{
	struct fx *f = *state;
	const int rounds = 4, per = 3;

	for (int r = 0; r < rounds; r++) {
		int i = r * per;

		open_n(f, i, per);
		/* Closing all but the last leaves the engine busy. */
		for (int k = i; k < i + per - 1; k++)
			assert_int_equal(iocx_close(f->conn[k],
						    IOCX_CLOSE_GRACEFUL),
					 IOCX_OK);
		peer_assert_wait(&f->trk, i + per, i + per - 1,
				 PEER_TIMEOUT_MS);
		assert_int_equal(iocx_engine_wait_idle(f->engine, 0),
				 IOCX_E_TIMEDOUT);
		assert_int_equal(atomic_load(&f->idles), r);
		assert_int_equal(iocx_close(f->conn[i + per - 1],
					    IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
		assert_int_equal(iocx_engine_wait_idle(f->engine,
						       PEER_TIMEOUT_MS),
				 IOCX_OK);
		assert_true(wait_idles(f, r + 1, PEER_TIMEOUT_MS));
	}
	/* Destroy finds nothing open: no further transition. */
	destroy_and_check(f, rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			wait_idle_returns_once_everything_closed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			wait_idle_times_out_while_connection_open, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			wait_idle_from_callback_is_incallback, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			on_idle_fires_once_per_busy_idle_edge, setup,
			teardown),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("net_drain", tests, NULL, NULL);
}
