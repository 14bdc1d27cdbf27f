/*
 * Happy Eyeballs on real loopback sockets, on every backend (io_uring,
 * epoll, IOCP under Wine).  Names are answered by a resolver the test
 * owns (a table, answered from a helper thread after scripted delays per
 * family), so no query leaves the process: the race, the adopted socket
 * and the payload are real, the DNS is not (docs/names.md).
 *
 * The IPv6 black hole is a ::1 listener with a full accept queue (the
 * kernel drops further SYNs, peer_listen_full), on the same port as the
 * IPv4 listener that accepts.
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

#define HOST "dual.example.test"
#define MAXQ 4

/* ---- the test's resolver ----------------------------------------------- */

struct tres_family {
	bool silent;			/* never answers until cancelled */
	unsigned delay_ms;
	int status;
	struct sockaddr_storage addr;
	size_t n;			/* 0 or 1 address */
};

struct tres_query {
	iocx_query *q;
	int family;
	uint64_t due_ms;
};

struct tres {
	struct iocx_resolver ops;
	struct tres_family fam[2];	/* [0] AF_INET6, [1] AF_INET */
	iocx_mutex lock;
	iocx_cond cv;
	struct tres_query out[MAXQ];	/* queries not answered yet */
	size_t nout;
	long starts, answers, cancels;
	bool stop;
	peer_thread thread;
};

static struct tres_family *tres_family(struct tres *t, int family)
{
	return &t->fam[family == AF_INET6 ? 0 : 1];
}

static void tres_answer(struct tres *t, const struct tres_query *tq,
			bool cancelled)
{
	struct tres_family *f = tres_family(t, tq->family);

	if (cancelled)
		iocx_query_done(tq->q, IOCX_E_CANCELLED, 0, NULL, 0);
	else
		iocx_query_done(tq->q, f->status, 0, &f->addr, f->n);
	iocx__mutex_lock(&t->lock);
	t->answers++;
	iocx__cond_broadcast(&t->cv);
	iocx__mutex_unlock(&t->lock);
}

/* Answers what is due; bounded by the stop flag and 100 ms waits. */
static void tres_thread(void *arg)
{
	struct tres *t = arg;

	iocx__mutex_lock(&t->lock);
	while (!t->stop) {
		uint64_t now = peer_now_ms();
		struct tres_query due;
		bool found = false;

		for (size_t i = 0; i < t->nout && !found; i++) {
			struct tres_family *f =
				tres_family(t, t->out[i].family);

			if (f->silent || t->out[i].due_ms > now)
				continue;
			due = t->out[i];
			t->out[i] = t->out[--t->nout];
			found = true;
		}
		if (!found) {
			iocx__cond_timedwait(&t->cv, &t->lock, 5);
			continue;
		}
		iocx__mutex_unlock(&t->lock);
		tres_answer(t, &due, false);
		iocx__mutex_lock(&t->lock);
	}
	iocx__mutex_unlock(&t->lock);
}

static int tres_start(void *ctx, const char *host, int family,
		      iocx_query *q)
{
	struct tres *t = ctx;
	int rc = IOCX_OK;

	if (strcmp(host, HOST) != 0)
		return IOCX_E_NAME;	/* only the test's own name */
	iocx__mutex_lock(&t->lock);
	if (t->nout == MAXQ) {
		rc = IOCX_E_NOMEM;
	} else {
		t->out[t->nout].q = q;
		t->out[t->nout].family = family;
		t->out[t->nout].due_ms =
			peer_now_ms() + tres_family(t, family)->delay_ms;
		t->nout++;
		t->starts++;
		iocx__cond_broadcast(&t->cv);
	}
	iocx__mutex_unlock(&t->lock);
	return rc;
}

static void tres_cancel(void *ctx, iocx_query *q)
{
	struct tres *t = ctx;
	struct tres_query tq;
	bool found = false;

	iocx__mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nout && !found; i++) {
		if (t->out[i].q != q)
			continue;
		tq = t->out[i];
		t->out[i] = t->out[--t->nout];
		found = true;
	}
	t->cancels += found;
	iocx__mutex_unlock(&t->lock);
	/* Not found: the thread is answering it right now. */
	if (found)
		tres_answer(t, &tq, true);
}

/* Every query answered: for the teardown. */
static bool tres_quiet(struct tres *t)
{
	bool quiet;

	iocx__mutex_lock(&t->lock);
	quiet = t->nout == 0 && t->answers == t->starts;
	iocx__mutex_unlock(&t->lock);
	return quiet;
}

/* ---- fixture ----------------------------------------------------------- */

struct fx {
	struct tres res;
	iocx_engine *engine;
	struct peer_tracker trk;
	struct peer_rec rec;
	struct peer *p6, *p4;
	uint16_t port;
	long live0;		/* blocks of the idle engine */
	long live_none;		/* ... and without it */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	f->res.ops.ctx = &f->res;
	f->res.ops.start = tres_start;
	f->res.ops.cancel = tres_cancel;
	iocx__mutex_init(&f->res.lock);
	iocx__cond_init(&f->res.cv);
	f->res.thread = peer_thread_start(tres_thread, &f->res);
	if (f->res.thread == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(&f->rec, 1, &f->trk);
	f->live_none = peer_alloc_live();
	iocx_engine_options_init(&o);
	o.resolver = &f->res.ops;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	/* The idle engine's blocks: a body ends with no more than these
	 * (what a closed connection frees goes back on a worker, just
	 * after its on_close). */
	f->live0 = peer_alloc_live();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	assert_true(tres_quiet(&f->res));
	iocx__mutex_lock(&f->res.lock);
	f->res.stop = true;
	iocx__cond_broadcast(&f->res.cv);
	iocx__mutex_unlock(&f->res.lock);
	assert_true(peer_thread_join(f->res.thread, PEER_TIMEOUT_MS));
	iocx__cond_destroy(&f->res.cv);
	iocx__mutex_destroy(&f->res.lock);
	peer_close(f->p6);
	peer_close(f->p4);
	free(f);
	return 0;
}

/* Listeners on one port: 127.0.0.1 reading, ::1 full or reading. */
static void listen_pair(struct fx *f, bool v6_black_hole)
{
	assert_true(peer_listen_pair(&f->p4, &f->p6, v6_black_hole));
	f->port = f->p4->port;
}

/* family answers after delay_ms with ip (NULL: status, no address). */
static void script(struct fx *f, int family, unsigned delay_ms,
		   const char *ip, int status)
{
	struct tres_family *t = tres_family(&f->res, family);

	t->delay_ms = delay_ms;
	t->status = status;
	t->n = 0;
	if (ip != NULL) {
		assert_true(peer_addr(&t->addr, family, ip, 0) > 0);
		t->n = 1;
	}
}

static iocx_conn *start(struct fx *f, const void *payload, size_t len,
			uint32_t deadline_ms)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req_host(&req, HOST, f->port ? f->port : 9, &f->rec);
	req.payload = payload;
	req.payload_len = len;
	req.deadline_ms = deadline_ms;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	return conn;
}

static void need_ipv6(void)
{
	if (!peer_ipv6_available())
		skip();
}

/* The end of a scenario: every query answered, every block back. */
static void done(struct fx *f)
{
	uint64_t until = peer_now_ms() + PEER_TIMEOUT_MS;

	while (!tres_quiet(&f->res) && peer_now_ms() < until)
		peer_yield();
	assert_true(tres_quiet(&f->res));
	peer_assert_no_leak(f->engine ? f->live0 : f->live_none);
}

/* ---- scenarios ----------------------------------------------------------- */

static void he_ipv6_black_hole_falls_back_to_ipv4(void **state)
{
	static const char payload[] = "GET / once";
	struct fx *f = *state;
	iocx_conn *conn;

	need_ipv6();
	listen_pair(f, true);
	script(f, AF_INET6, 0, "::1", IOCX_OK);
	script(f, AF_INET, 0, "127.0.0.1", IOCX_OK);
	conn = start(f, payload, sizeof(payload), 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	/* IPv4 started after the Connection Attempt Delay, not before. */
	assert_true(f->rec.latency_ns >= 200u * 1000000u);
	assert_true(peer_wait_bytes(f->p4, 0, sizeof(payload),
				    PEER_TIMEOUT_MS));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_true(peer_wait_eof(f->p4, 0, PEER_TIMEOUT_MS));
	/* Exactly once, on exactly one connection. */
	assert_int_equal(f->p4->accepted, 1);
	assert_int_equal(f->p4->conns[0].len, sizeof(payload));
	assert_memory_equal(f->p4->conns[0].data, payload, sizeof(payload));
	peer_assert_clean(&f->trk);
	done(f);
}

static void he_a_first_aaaa_30ms_later_uses_ipv6(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	need_ipv6();
	listen_pair(f, false);
	script(f, AF_INET, 0, "127.0.0.1", IOCX_OK);
	script(f, AF_INET6, 30, "::1", IOCX_OK);
	conn = start(f, "x", 1, 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(peer_wait_bytes(f->p6, 0, 1, PEER_TIMEOUT_MS));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->p4->accepted, 0);
	done(f);
}

static void he_aaaa_300ms_late_uses_ipv4(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	need_ipv6();
	listen_pair(f, false);
	script(f, AF_INET, 0, "127.0.0.1", IOCX_OK);
	script(f, AF_INET6, 300, "::1", IOCX_OK);
	conn = start(f, "y", 1, 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(peer_wait_bytes(f->p4, 0, 1, PEER_TIMEOUT_MS));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->p6->accepted, 0);
	done(f);
}

static void resolve_nxdomain_reports_name(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	script(f, AF_INET, 0, NULL, IOCX_E_NAME);
	script(f, AF_INET6, 0, NULL, IOCX_E_NAME);
	conn = start(f, NULL, 0, 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_NAME);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	done(f);
}

/* A failed name closed from its own on_connect still gets its on_close
 * (iocx-bench does this). */
static void resolve_nxdomain_close_in_callback_closes(void **state)
{
	struct fx *f = *state;

	script(f, AF_INET, 0, NULL, IOCX_E_NAME);
	script(f, AF_INET6, 0, NULL, IOCX_E_NAME);
	f->rec.on_connect_hook = peer_hook_close;
	start(f, NULL, 0, 0);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_NAME);
	assert_int_equal(f->rec.hook_rc[0], IOCX_OK);
	peer_assert_clean(&f->trk);
	done(f);
}

static void resolve_no_answer_reports_resolve_at_deadline(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	f->res.fam[0].silent = true;
	f->res.fam[1].silent = true;
	conn = start(f, NULL, 0, 300);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_RESOLVE);
	assert_true(f->rec.latency_ns >= 250u * 1000000u);
	assert_int_equal(f->res.cancels, 2);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	done(f);
}

static void close_during_resolution_cancels_once(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	f->res.fam[0].silent = true;
	f->res.fam[1].silent = true;
	conn = start(f, NULL, 0, 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_CANCELLED);
	assert_int_equal(f->rec.reason, IOCX_OK);
	peer_assert_clean(&f->trk);
	done(f);
}

static void close_during_race_cancels_once(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	need_ipv6();
	listen_pair(f, true);
	script(f, AF_INET6, 0, "::1", IOCX_OK);
	f->res.fam[1].silent = true;
	conn = start(f, "z", 1, 0);
	/* Resolved, the ::1 attempt hangs in the full queue. */
	assert_true(peer_wait(&f->trk, 1, 0, 100) == false);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_CANCELLED);
	peer_assert_clean(&f->trk);
	done(f);
}

static void destroy_during_race_cancels_once(void **state)
{
	struct fx *f = *state;

	need_ipv6();
	listen_pair(f, true);
	script(f, AF_INET6, 0, "::1", IOCX_OK);
	f->res.fam[1].silent = true;
	start(f, "w", 1, 0);
	assert_true(peer_wait(&f->trk, 1, 0, 100) == false);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(f->trk.connects, 1);
	assert_int_equal(f->trk.closes, 1);
	assert_int_equal(f->rec.status, IOCX_E_CANCELLED);
	assert_int_equal(f->rec.reason, IOCX_E_SHUTDOWN);
	peer_assert_clean(&f->trk);
	done(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(he_ipv6_black_hole_falls_back_to_ipv4),
		T(he_a_first_aaaa_30ms_later_uses_ipv6),
		T(he_aaaa_300ms_late_uses_ipv4),
		T(resolve_nxdomain_reports_name),
		T(resolve_nxdomain_close_in_callback_closes),
		T(resolve_no_answer_reports_resolve_at_deadline),
		T(close_during_resolution_cancels_once),
		T(close_during_race_cancels_once),
		T(destroy_during_race_cancels_once),
	};
#undef T

	peer_init(240);
	return cmocka_run_group_tests_name("net_race", tests, NULL, NULL);
}
