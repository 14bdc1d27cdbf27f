/*
 * The engine's load controls on real loopback sockets: the connect
 * latency histogram (iocx_engine_latency) against what on_connect
 * reported, the total deadline (total_deadline_ms) against a port that
 * refuses and a listener that never answers, and the admission queue
 * (max_in_flight + queue_limit) under a thousand requests.
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

#define NCONN 64
#define NMORE 10

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec[NCONN + NMORE + 1];
	iocx_conn *conn[NCONN + NMORE + 1];
	uint64_t *buckets;
	void *sentinel;			/* see setup() */
	long live_pre;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	f->buckets = calloc(IOCX_HISTOGRAM_BUCKETS, sizeof(*f->buckets));
	if (f->buckets == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, NCONN + NMORE + 1, &f->trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	f->live_pre = peer_alloc_live();
	if (iocx_engine_create(NULL, &f->engine) != IOCX_OK)
		return -1;
	/*
	 * Windows: cmocka takes the last block allocated before the test as
	 * its leak check point, and the test destroys the engine that would
	 * otherwise own it; this block outlives the test instead.
	 */
	f->sentinel = peer_test_alloc(1);
	f->live_pre++;
	return f->sentinel ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_close(f->peer);
	peer_test_free(f->sentinel);
	free(f->buckets);
	free(f);
	return 0;
}

/* Connect rec[from, to) to the peer and wait for their on_connect. */
static void connect_range(struct fx *f, int from, int to)
{
	struct iocx_connect_request req;

	for (int i = from; i < to; i++) {
		peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, &f->conn[i]),
				 IOCX_OK);
	}
	peer_assert_wait(&f->trk, to, 0, PEER_TIMEOUT_MS);
	for (int i = from; i < to; i++)
		assert_int_equal(f->rec[i].status, IOCX_OK);
}

/* The summary of h must describe exactly the latencies of rec[from, to). */
static void assert_hist_is(const struct iocx_histogram *h,
			   const struct peer_rec *rec, int from, int to,
			   bool exact_bounds)
{
	uint64_t sum = 0, min = UINT64_MAX, max = 0, total = 0;

	for (int i = from; i < to; i++) {
		uint64_t v = rec[i].latency_ns;

		sum += v;
		min = v < min ? v : min;
		max = v > max ? v : max;
	}
	assert_int_equal(h->count, (uint64_t)(to - from));
	assert_int_equal(h->sum, sum);
	if (exact_bounds) {
		assert_int_equal(h->min, min);
		assert_int_equal(h->max, max);
	} else {
		/* Bucket bounds: within 1/128 of the true values. */
		assert_true(h->min <= min && h->min >= min - min / 128);
		assert_true(h->max >= max && h->max <= max + max / 128);
	}
	assert_true(h->min <= h->p50 && h->p50 <= h->p90 &&
		    h->p90 <= h->p99 && h->p99 <= h->p999 &&
		    h->p999 <= h->max);
	assert_true(h->nbuckets > 0 && h->buckets[h->nbuckets - 1] > 0);
	for (size_t i = 0; i < h->nbuckets; i++)
		total += h->buckets[i];
	assert_int_equal(total, h->count);
	/* Every recorded value sits in its documented bucket. */
	for (int i = from; i < to; i++) {
		uint64_t v = rec[i].latency_ns;
		size_t b = v < 256 ? (size_t)v : 0;

		if (v >= 256) {
			unsigned s = 0;

			while ((v >> s) >= 256)
				s++;
			b = ((size_t)s << 7) + (size_t)(v >> s);
		}
		assert_true(b < h->nbuckets && h->buckets[b] > 0);
	}
}

/*
 * Every successful connect lands in the histogram once: its count equals
 * connects_ok (a refused connect is not counted), its sum, min and max
 * are those of the latencies on_connect reported; after a reset the next
 * snapshot holds only the connects made since, and merging the two
 * intervals gives the whole.
 */
static void latency_count_matches_connects_ok(void **state)
{
	struct fx *f = *state;
	struct iocx_histogram h, first, all;
	struct iocx_connect_request req;
	struct sockaddr_storage refused;
	struct iocx_stats s;
	struct peer_rec *r = &f->rec[NCONN];
	uint64_t *b2 = calloc(IOCX_HISTOGRAM_BUCKETS, sizeof(*b2));
	uint64_t *b3 = calloc(IOCX_HISTOGRAM_BUCKETS, sizeof(*b3));
	int n = NCONN + NMORE;

	assert_non_null(b2);
	assert_non_null(b3);
	connect_range(f, 0, NCONN);
	/* A refused connect: an outcome, but no latency sample. */
	peer_req(&req, &refused,
		 peer_addr(&refused, AF_INET, "127.0.0.1",
			   peer_free_port(AF_INET, "127.0.0.1")), r);
	assert_int_equal(iocx_connect(f->engine, &req, &f->conn[NCONN]),
			 IOCX_OK);
	peer_assert_wait(&f->trk, NCONN + 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_REFUSED);

	memset(&h, 0, sizeof(h));
	h.buckets = f->buckets;
	h.bucket_cap = IOCX_HISTOGRAM_BUCKETS - 1;
	assert_int_equal(iocx_engine_latency(f->engine, &h, 0), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_latency(f->engine, &h, 2), IOCX_E_INVAL);
	h.bucket_cap = IOCX_HISTOGRAM_BUCKETS;
	assert_int_equal(iocx_engine_latency(f->engine, &h, 0), IOCX_OK);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(h.count, s.connects_ok);
	assert_hist_is(&h, f->rec, 0, NCONN, true);

	/* Reset: this one still sees everything, the next only what follows. */
	first = h;
	assert_int_equal(iocx_engine_latency(f->engine, &first,
					     IOCX_LATENCY_RESET), IOCX_OK);
	assert_hist_is(&first, f->rec, 0, NCONN, true);
	connect_range(f, NCONN + 1, n + 1);
	memset(&h, 0, sizeof(h));
	h.buckets = b2;
	h.bucket_cap = IOCX_HISTOGRAM_BUCKETS;
	assert_int_equal(iocx_engine_latency(f->engine, &h, 0), IOCX_OK);
	assert_hist_is(&h, f->rec, NCONN + 1, n + 1, false);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(first.count + h.count, s.connects_ok);

	/* The two intervals merge into the whole, bucket by bucket. */
	all = first;
	all.buckets = b3;
	memcpy(b3, first.buckets, first.nbuckets * sizeof(*b3));
	assert_int_equal(iocx_histogram_merge(&all, &h), IOCX_OK);
	assert_int_equal(all.count, s.connects_ok);
	assert_int_equal(all.sum, first.sum + h.sum);
	assert_int_equal(all.min, first.min < h.min ? first.min : h.min);
	assert_int_equal(all.max, first.max > h.max ? first.max : h.max);
	for (size_t i = 0; i < IOCX_HISTOGRAM_BUCKETS; i++)
		assert_int_equal(b3[i], (i < first.nbuckets ? f->buckets[i] : 0) +
					(i < h.nbuckets ? b2[i] : 0));

	for (int i = 0; i <= n; i++)
		assert_int_equal(iocx_close(f->conn[i], IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	peer_assert_wait(&f->trk, n + 1, n + 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	free(b2);
	free(b3);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(f->live_pre);
}

/* The engine's clock when keep_attempts ran (peer_rec has no field). */
static uint64_t on_connect_ns;

/* Keeps result.attempts and syn_tuned (peer_rec has no field for them). */
static void keep_attempts(struct peer_rec *r, iocx_conn *conn,
			  const struct iocx_connect_result *res)
{
	(void)conn;
	r->hook_rc[0] = (int)res->attempts;
	r->hook_rc[1] = res->syn_tuned;
	on_connect_ns = iocx__now_ns();
}

/*
 * Start one request with a total deadline of total_ms to to, wait for its
 * on_connect, and check it ended with IOCX_E_TIMEDOUT, never before the
 * deadline: on_connect runs total_ms or more after iocx_connect was
 * called, on the engine's clock, the one the deadline is armed on (the
 * result's latency_ns runs from the first socket, which a loaded machine
 * may open a little later, so it can be shorter).  Returns the attempts
 * made.
 */
static int run_total_deadline(struct fx *f, const struct sockaddr_storage *to,
			      int to_len, uint32_t total_ms, uint8_t syn)
{
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct iocx_stats s;
	uint64_t t0;

	r->on_connect_hook = keep_attempts;
	peer_req(&req, to, to_len, r);
	req.total_deadline_ms = total_ms;
	req.syn_retransmissions = syn;
	req.retry.backoff_initial_ms = 50;
	req.retry.backoff_max_ms = 50;
	t0 = iocx__now_ns();
	assert_int_equal(iocx_connect(f->engine, &req, &f->conn[0]), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, total_ms + PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_TIMEDOUT);
	assert_int_equal(r->os_code, 0);
	assert_true(on_connect_ns - t0 >= (uint64_t)total_ms * 1000000u);
	assert_true(r->latency_ns <= on_connect_ns - t0);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.total_deadline_expiries, 1);
	/* retries counts backoffs begun: one more when the deadline
	 * expired during a backoff. */
	assert_true(s.retries == (uint64_t)r->hook_rc[0] - 1 ||
		    s.retries == (uint64_t)r->hook_rc[0]);
	assert_int_equal(iocx_close(f->conn[0], IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	/*
	 * on_close has run, but its worker frees the connection after it
	 * returns: end the engine here, so that no worker frees a block
	 * while cmocka walks its (unlocked) block list after the test.
	 */
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(f->live_pre);
	return r->hook_rc[0];
}

/*
 * A port that refuses: every attempt fails at once, fresh attempts follow
 * after 25..50 ms of backoff, and the total deadline ends the request.
 */
static void total_deadline_ends_refused_retries(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage to;
	int len = peer_addr(&to, AF_INET, "127.0.0.1",
			    peer_free_port(AF_INET, "127.0.0.1"));
	int attempts = run_total_deadline(f, &to, len, 600, 0);

	printf("%s: %d attempts in 600 ms\n", peer_backend(), attempts);
#ifdef _WIN32
	/* Windows itself retries a refused SYN for about a second. */
	if (!peer_is_wine()) {
		assert_true(attempts >= 1);
		return;
	}
#endif
	assert_true(attempts >= 2);
}

/*
 * A listener whose accept queue is full drops SYNs, so every attempt
 * waits until the OS gives up.  With one SYN retransmission that is about
 * 3 s on Linux (TCP_SYNCNT); a total deadline of 4.5 s then needs a fresh
 * attempt after the OS's give-up, and still ends in IOCX_E_TIMEDOUT.
 */
static void total_deadline_outlives_os_syn_give_up(void **state)
{
	struct fx *f = *state;
	struct peer *full = peer_listen_full(AF_INET, "127.0.0.1");
	int attempts;

	assert_non_null(full);
	attempts = run_total_deadline(f, &full->addr, full->addr_len, 4500,
				      1);
	peer_close(full);
	printf("%s: %d attempts in 4.5 s, syn_tuned=%d\n", peer_backend(),
	       attempts, f->rec[0].hook_rc[1]);
	if (!f->rec[0].hook_rc[1]) {
		/* Wine 8 refuses SIO_TCP_INITIAL_RTO: the OS's own budget
		 * (Linux's, minutes) outlasts the deadline. */
		printf("SYN tuning refused: the OS never gave up within the "
		       "deadline, one attempt observed\n");
		assert_int_equal(attempts, 1);
		skip();
	}
	assert_true(attempts >= 2);
}

/*
 * Replace the fixture's engine with one of these admission options;
 * returns the test allocator's live blocks without any engine, for
 * peer_assert_no_leak() after drop_engine().
 */
static long engine_with(struct fx *f, unsigned max_in_flight,
			unsigned queue_limit, uint32_t rate)
{
	struct iocx_engine_options o;
	long live0;

	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	live0 = peer_alloc_live();
	iocx_engine_options_init(&o);
	o.max_in_flight = max_in_flight;
	o.queue_limit = queue_limit;
	o.connect_rate = rate;
	assert_int_equal(iocx_engine_create(&o, &f->engine), IOCX_OK);
	return live0;
}

/* Destroy the engine: nothing may be left of it. */
static void drop_engine(struct fx *f, long live0)
{
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(live0);
}

#define NQUEUE 1000
#define QCAP 16

/*
 * A thousand requests against max_in_flight 16 and a queue: while a
 * listener's full backlog holds the first 16 (their SYNs are dropped),
 * exactly 984 wait without a socket; once it drains all complete (the
 * 984 against a listener with room), each closed from its own
 * on_connect.  Linux and Wine drop SYNs to a full backlog; Windows would
 * refuse the first 16 instead.
 */
static void queue_thousand_requests_all_complete(void **state)
{
	struct fx *f = *state;
	struct peer *full = peer_listen_full(AF_INET, "127.0.0.1");
	struct peer *open = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	struct peer_rec *rec = calloc(NQUEUE, sizeof(*rec));
	struct peer_tracker trk;
	struct iocx_connect_request req;
	struct iocx_histogram h;
	struct iocx_stats s;
	long live0;

	assert_non_null(full);
	assert_non_null(open);
	assert_non_null(rec);
	live0 = engine_with(f, QCAP, NQUEUE, 0);
	peer_tracker_init(&trk);
	peer_recs_init(rec, NQUEUE, &trk);
	for (int i = 0; i < NQUEUE; i++) {
		rec[i].on_connect_hook = peer_hook_close;
		struct peer *to = i < QCAP ? full : open;

		peer_req(&req, &to->addr, to->addr_len, &rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	}
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.in_flight, QCAP);
	assert_int_equal(s.queued, NQUEUE - QCAP);
	assert_int_equal(s.connects_started, NQUEUE);
	assert_int_equal(trk.connects, 0);

	peer_serve(full, PEER_CLOSE);
	peer_assert_wait(&trk, NQUEUE, NQUEUE, 120000);
	peer_assert_clean(&trk);
	assert_int_equal(trk.status[0], NQUEUE);
	assert_int_equal(trk.reason_ok, NQUEUE);
	for (int i = 0; i < NQUEUE; i++)
		assert_int_equal(rec[i].hook_rc[0], IOCX_OK);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.connects_ok, NQUEUE);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.closed, NQUEUE);
	memset(&h, 0, sizeof(h));
	assert_int_equal(iocx_engine_latency(f->engine, &h, 0), IOCX_OK);
	assert_int_equal(h.count, s.connects_ok);
	peer_close(full);
	peer_close(open);
	free(rec);
	drop_engine(f, live0);
}

#define NPACED 300

/*
 * Closes from the main thread race the pacing turns the workers' timers
 * start: a paced request first gets a socket on whichever worker runs its
 * turn, while its close is being posted.  Every request still ends in
 * exactly one on_connect (IOCX_OK or IOCX_E_CANCELLED) and one on_close;
 * under TSan this is also the check that a first socket opened on a
 * worker does not move the connection's events to another queue.
 */
static void pacing_closes_race_turns(void **state)
{
	struct fx *f = *state;
	struct peer *open = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	struct peer_rec *rec = calloc(NPACED, sizeof(*rec));
	iocx_conn **conn = calloc(NPACED, sizeof(*conn));
	struct peer_tracker trk;
	struct iocx_connect_request req;
	struct iocx_stats s;
	long live0;

	assert_non_null(open);
	assert_non_null(rec);
	assert_non_null(conn);
	live0 = engine_with(f, 0, 0, 3000);
	peer_tracker_init(&trk);
	peer_recs_init(rec, NPACED, &trk);
	for (int i = 0; i < NPACED; i++) {
		peer_req(&req, &open->addr, open->addr_len, &rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, &conn[i]),
				 IOCX_OK);
	}
	for (int i = 0; i < NPACED; i++) {
		if (i % 3 == 2)
			peer_yield();	/* let some turns come first */
		assert_int_equal(iocx_close(conn[i], IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	}
	peer_assert_wait(&trk, NPACED, NPACED, PEER_SLOW_TIMEOUT_MS);
	peer_assert_clean(&trk);
	assert_int_equal(trk.status[0] + trk.status[-IOCX_E_CANCELLED],
			 NPACED);
	assert_int_equal(trk.reason_ok, NPACED);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.in_flight, 0);
	/* How many waited for a turn depends on the machine's speed (under
	 * Wine a connect call may take longer than a turn): shown only. */
	printf("%s: %llu of %d requests waited for a turn, %ld connected "
	       "before their close\n", peer_backend(),
	       (unsigned long long)s.paced, NPACED, trk.status[0]);
	peer_close(open);
	free(conn);
	free(rec);
	drop_engine(f, live0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			latency_count_matches_connects_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(
			total_deadline_ends_refused_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(
			total_deadline_outlives_os_syn_give_up, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			queue_thousand_requests_all_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(pacing_closes_race_turns,
						setup, teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("net_controls", tests, NULL, NULL);
}
