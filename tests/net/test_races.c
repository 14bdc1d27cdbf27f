/*
 * Races between a connection's own events, under load, on real loopback
 * sockets.
 *
 * A deadline that fires on one worker cancels an attempt owned by
 * another, and the attempt may end by itself (refused) before the cancel
 * arrives; the retry that follows must not be cancelled by it (io_uring
 * once applied such a stale cancel to the next attempt: on_connect
 * reported IOCX_E_CANCELLED for a connection nobody closed).  The load:
 * a 1 ms deadline per attempt, up to 20 attempts 1 ms apart, against a
 * port that flips every 2 ms between refusing and a full backlog, on 4
 * workers, a few thousand connects within a time budget.
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

#define WORKERS 4
#define FLIP_MS 2
#define MAX_CONNECTS 4000
#define CONCURRENCY 64
/* No new connect starts after this; those running finish (bounded by
 * their 20 attempts of at most a few ms each). */
#define BUDGET_MS 3000

struct fx {
	iocx_engine *engine;
	struct peer_flip *flip;
	struct peer_tracker trk;
	struct peer_rec *rec;		/* MAX_CONNECTS of them */
	struct iocx_connect_request req;
	uint64_t t_end;			/* when the budget ends (ms) */
	atomic_long next;		/* index of the next connect */
	atomic_int starting;		/* threads inside start_next() */
	atomic_long started;		/* iocx_connect() gave IOCX_OK */
	atomic_long start_errors;	/* ... returned an error */
	atomic_long close_errors;	/* iocx_close() in on_connect failed */
	atomic_int first_error;
	long live_pre;
	unsigned h0;
};

static void note_error(struct fx *f, atomic_long *counter, int rc)
{
	int none = 0;

	atomic_fetch_add(counter, 1);
	atomic_compare_exchange_strong(&f->first_error, &none, rc);
}

static void release_and_next(struct peer_rec *r, iocx_conn *conn,
			     const struct iocx_connect_result *res);

/*
 * Start the next connect (on any thread) unless the budget is spent.  A
 * synchronous failure never calls back: it moves on to the next index.
 */
static void start_next(struct fx *f)
{
	atomic_fetch_add(&f->starting, 1);
	while (peer_now_ms() < f->t_end) {
		long i = atomic_fetch_add(&f->next, 1);
		struct iocx_connect_request req = f->req;
		int rc;

		if (i >= MAX_CONNECTS)
			break;
		f->rec[i].ctx = f;
		f->rec[i].on_connect_hook = release_and_next;
		req.user = &f->rec[i];
		rc = iocx_connect(f->engine, &req, NULL);
		if (rc == IOCX_OK) {
			atomic_fetch_add(&f->started, 1);
			break;
		}
		note_error(f, &f->start_errors, rc);
	}
	atomic_fetch_sub(&f->starting, 1);
}

/*
 * No connect starts any more: the budget is spent (or every index used)
 * and no thread is still inside start_next(), where one may have passed
 * the budget check before it ran out.
 */
static bool starts_over(struct fx *f)
{
	return (peer_now_ms() >= f->t_end ||
		atomic_load(&f->next) >= MAX_CONNECTS) &&
	       atomic_load(&f->starting) == 0;
}

/* On a worker: whatever the outcome, release it and start the next. */
static void release_and_next(struct peer_rec *r, iocx_conn *conn,
			     const struct iocx_connect_result *res)
{
	struct fx *f = r->ctx;
	int rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);

	(void)res;
	if (rc != IOCX_OK)
		note_error(f, &f->close_errors, rc);
	start_next(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	*state = f;
	f->rec = calloc(MAX_CONNECTS, sizeof(*f->rec));
	if (f->rec == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, MAX_CONNECTS, &f->trk);
	f->flip = peer_flip_start(AF_INET, "127.0.0.1", FLIP_MS);
	if (f->flip == NULL)
		return -1;
	peer_req(&f->req, &f->flip->addr, f->flip->addr_len, NULL);
	f->req.deadline_ms = 1;
	f->req.retry.max_attempts = 20;
	f->req.retry.backoff_initial_ms = 1;
	f->req.retry.backoff_max_ms = 1;
	f->h0 = peer_handle_count();
	f->live_pre = peer_alloc_live();
	iocx_engine_options_init(&o);
	o.workers = WORKERS;
	return iocx_engine_create(&o, &f->engine) == IOCX_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_flip_stop(f->flip);
	free(f->rec);
	free(f);
	return 0;
}

/* Print the outcomes seen, by code. */
static void print_outcomes(const struct peer_tracker *t, long started,
			   uint64_t ms, const struct iocx_stats *s, long flips)
{
	printf("%s, %d workers: %ld connects in %llu ms, %llu retries, "
	       "port flipped %ld times\n", peer_backend(), WORKERS, started,
	       (unsigned long long)ms, (unsigned long long)s->retries, flips);
	for (int c = 0; c < IOCX_ERROR_COUNT; c++)
		if (t->status[c] != 0)
			printf("  on_connect %s: %ld\n", iocx_error_name(-c),
			       t->status[c]);
}

static void retry_against_flipping_port_never_reports_cancelled(void **state)
{
	struct fx *f = *state;
	struct peer_tracker t;
	struct iocx_stats s;
	uint64_t t0 = peer_now_ms();
	long started, cancelled, flips;

	f->t_end = t0 + BUDGET_MS;
	for (int i = 0; i < CONCURRENCY; i++)
		start_next(f);
	/*
	 * Wait for every connect that started: once no more start, the
	 * count no longer moves, and each ends within its 20 attempts.
	 */
	for (;;) {
		bool over = starts_over(f);

		started = atomic_load(&f->started);
		if (peer_wait(&f->trk, started, started, 1000) && over)
			break;
		if (peer_now_ms() - t0 > BUDGET_MS + 60000) {
			peer_tracker_snapshot(&f->trk, &t);
			fail_msg("%ld on_connect, %ld on_close of %ld started",
				 t.connects, t.closes, started);
		}
	}
	flips = atomic_load(&f->flip->flips);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	peer_tracker_snapshot(&f->trk, &t);
	print_outcomes(&t, started, peer_now_ms() - t0, &s, flips);

	assert_int_equal(atomic_load(&f->flip->error), 0);
	if (atomic_load(&f->start_errors) || atomic_load(&f->close_errors))
		fail_msg("%ld iocx_connect and %ld iocx_close failures, first "
			 "%s", atomic_load(&f->start_errors),
			 atomic_load(&f->close_errors),
			 iocx_error_name(atomic_load(&f->first_error)));
	/* Nobody closed a connection before its on_connect. */
	cancelled = t.status[-IOCX_E_CANCELLED];
	if (cancelled != 0)
		fail_msg("%ld of %ld connects reported IOCX_E_CANCELLED "
			 "without a close", cancelled, started);
	/* What this load can end in: the last attempt was refused or timed
	 * out, or it won a listening moment (and then may have been reset
	 * as the listener closed, before the connect reported). */
	assert_int_equal(t.status[0] + t.status[-IOCX_E_REFUSED] +
				 t.status[-IOCX_E_TIMEDOUT] +
				 t.status[-IOCX_E_RESET],
			 started);
	assert_int_equal(t.connects, started);
	assert_int_equal(t.closes, started);
	assert_int_equal(t.reason_ok, started);
	for (long i = 0; i < started; i++) {
		assert_int_equal(atomic_load(&f->rec[i].connects), 1);
		assert_int_equal(atomic_load(&f->rec[i].closes), 1);
	}
	peer_assert_clean(&f->trk);
	/* The load did what it is for: attempts timed out and retried. */
	assert_true(s.retries > 0);
	assert_true(flips > 0);
	assert_int_equal(s.connects_cancelled, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);

	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(peer_alloc_live(), f->live_pre);
	if (peer_handle_count() > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after destroy, %u before the engine",
			 peer_handle_count(), f->h0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			retry_against_flipping_port_never_reports_cancelled,
			setup, teardown),
	};

	peer_init(170);
	return cmocka_run_group_tests_name("net_races", tests, NULL, NULL);
}
