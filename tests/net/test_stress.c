/*
 * 10,000 connect-accept-close cycles at a steady 256 in flight against a
 * loopback listener that accepts and closes: each on_connect closes its
 * connection and starts the next one.  Every callback is accounted for,
 * the counters agree, the peer saw every connection, and nothing (memory,
 * handles) is left after destroy.  Budget: about 1 ms per cycle under
 * Wine (docs/windows.md, "Speed under Wine"), so 10-20 s.
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

#define TOTAL 10000
#define CONCURRENCY 256
/* Generous: a stall shows as a timeout long before meson's 600 s. */
#define STRESS_TIMEOUT_MS 240000

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec *rec;		/* TOTAL of them */
	atomic_long next;		/* index of the next connect */
	atomic_long start_errors;	/* iocx_connect failures */
	atomic_long close_errors;	/* iocx_close failures in on_connect */
	atomic_int first_error;		/* the first of either */
	long live_pre;
	unsigned h0;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	f->rec = calloc(TOTAL, sizeof(*f->rec));
	if (f->rec == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, TOTAL, &f->trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	if (f->peer == NULL)
		return -1;
	f->h0 = peer_handle_count();
	f->live_pre = peer_alloc_live();
	return iocx_engine_create(NULL, &f->engine) == IOCX_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_close(f->peer);
	free(f->rec);
	free(f);
	return 0;
}

static void note_error(struct fx *f, atomic_long *counter, int rc)
{
	int none = 0;

	atomic_fetch_add(counter, 1);
	atomic_compare_exchange_strong(&f->first_error, &none, rc);
}

static void cycle_hook(struct peer_rec *r, iocx_conn *conn,
		       const struct iocx_connect_result *res);

/*
 * Start the next connect (on any thread).  A synchronous failure never
 * calls back, so it moves on to the one after: every index ends up either
 * started or counted in start_errors, and the pipe never stalls.
 */
static void start_next(struct fx *f)
{
	for (;;) {
		long i = atomic_fetch_add(&f->next, 1);
		struct iocx_connect_request req;
		struct peer_rec *r;
		int rc;

		if (i >= TOTAL)
			return;
		r = &f->rec[i];
		r->ctx = f;
		r->on_connect_hook = cycle_hook;
		peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
		rc = iocx_connect(f->engine, &req, NULL);
		if (rc == IOCX_OK)
			return;
		note_error(f, &f->start_errors, rc);
	}
}

/* On a worker: release the finished connection, keep the pipe full. */
static void cycle_hook(struct peer_rec *r, iocx_conn *conn,
		       const struct iocx_connect_result *res)
{
	struct fx *f = r->ctx;
	int rc;

	(void)res;
	rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
	if (rc != IOCX_OK)
		note_error(f, &f->close_errors, rc);
	start_next(f);
}

static void connect_10000_at_256_accounts_every_callback(void **state)
{
	struct fx *f = *state;
	struct peer_tracker t;
	struct iocx_stats s;
	uint64_t t0, t1;
	unsigned h1;
	long started;

	t0 = peer_now_ms();
	for (int i = 0; i < CONCURRENCY; i++)
		start_next(f);
	/*
	 * Wait for every connect that really started; the target is read
	 * again each second as start errors (no callback) may still come.
	 */
	for (;;) {
		long want = TOTAL - atomic_load(&f->start_errors);

		if (peer_wait(&f->trk, want, want, 1000))
			break;
		if (peer_now_ms() - t0 > STRESS_TIMEOUT_MS) {
			peer_tracker_snapshot(&f->trk, &t);
			fail_msg("after %u ms: %ld on_connect, %ld on_close of "
				 "%ld (start errors %ld, first %s)",
				 STRESS_TIMEOUT_MS, t.connects, t.closes, want,
				 atomic_load(&f->start_errors),
				 iocx_error_name(atomic_load(&f->first_error)));
		}
	}
	t1 = peer_now_ms();
	printf("%d connect-accept-close cycles at %d in flight: %llu ms "
	       "(%.0f/s)\n", TOTAL, CONCURRENCY,
	       (unsigned long long)(t1 - t0),
	       TOTAL * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1));

	started = atomic_load(&f->next);
	assert_true(started >= TOTAL);
	if (atomic_load(&f->start_errors) || atomic_load(&f->close_errors))
		fail_msg("%ld iocx_connect and %ld iocx_close failures, first "
			 "%s", atomic_load(&f->start_errors),
			 atomic_load(&f->close_errors),
			 iocx_error_name(atomic_load(&f->first_error)));
	peer_tracker_snapshot(&f->trk, &t);
	if (t.status[0] != TOTAL) {
		for (int c = 1; c < IOCX_ERROR_COUNT; c++)
			if (t.status[c] != 0)
				printf("on_connect %s: %ld\n",
				       iocx_error_name(-c), t.status[c]);
	}
	assert_int_equal(t.connects, TOTAL);
	assert_int_equal(t.status[0], TOTAL);
	assert_int_equal(t.closes, TOTAL);
	assert_int_equal(t.reason_ok, TOTAL);
	for (int i = 0; i < TOTAL; i++) {
		assert_int_equal(atomic_load(&f->rec[i].connects), 1);
		assert_int_equal(atomic_load(&f->rec[i].closes), 1);
	}
	peer_assert_clean(&f->trk);

	memset(&s, 0, sizeof(s));
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.connects_started, TOTAL);
	assert_int_equal(s.connects_ok, TOTAL);
	assert_int_equal(s.connects_failed, 0);
	assert_int_equal(s.connects_cancelled, 0);
	assert_int_equal(s.closed, TOTAL);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.payload_bytes, 0);

	/* Every connect reached the peer (it may still be accepting). */
	if (!peer_wait_accepted(f->peer, TOTAL, PEER_SLOW_TIMEOUT_MS))
		fail_msg("peer accepted %ld of %d", f->peer->accepted, TOTAL);
	assert_int_equal(f->peer->thread_error, 0);

	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(peer_alloc_live(), f->live_pre);
	h1 = peer_handle_count();
	/* A leak per connection would be thousands; see test_connect. */
	if (h1 > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after destroy, %u before the engine",
			 h1, f->h0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			connect_10000_at_256_accounts_every_callback, setup,
			teardown),
	};

	peer_init(540);
	return cmocka_run_group_tests_name("net_stress", tests, NULL, NULL);
}
