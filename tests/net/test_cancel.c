/*
 * Cancellation and shutdown: iocx_close() of a pending connect, engine
 * destroy with 1,000 connects in flight and with open connections, a
 * second close, destroy from inside a callback, and close racing the
 * completion.  A pending connect comes from a listener whose accept queue
 * is full (docs/windows.md, "A pending connect on loopback").
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

#define NRECS 1000

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec *rec;		/* NRECS of them */
	long live_pre;			/* library blocks before the engine */
	long live0;			/* ... with the idle engine */
	unsigned h0;			/* handles before the engine */
	peer_event *entered;		/* on_close hook started */
	peer_event *release;		/* ... may return */
};

static int fx_setup(void **state, int listener)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	f->rec = calloc(NRECS, sizeof(*f->rec));
	f->entered = peer_event_new();
	f->release = peer_event_new();
	if (f->rec == NULL || f->entered == NULL || f->release == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, NRECS, &f->trk);
	if (listener == 1)
		f->peer = peer_listen_full(AF_INET, "127.0.0.1");
	else if (listener == 2)
		f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (listener != 0 && f->peer == NULL)
		return -1;
	f->h0 = peer_handle_count();
	f->live_pre = peer_alloc_live();
	peer_sys_install();
	if (iocx_engine_create(NULL, &f->engine) != IOCX_OK)
		return -1;
	peer_sys_clear();
	f->live0 = peer_alloc_live();
	return 0;
}

static int setup_full(void **state)
{
	return fx_setup(state, 1);
}

static int setup_live(void **state)
{
	return fx_setup(state, 2);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	/* Unblock a hook left waiting by a failed assertion. */
	if (f->release != NULL)
		peer_event_set(f->release);
	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_sys_uninstall();
	peer_close(f->peer);
	peer_event_free(f->entered);
	peer_event_free(f->release);
	free(f->rec);
	free(f);
	return 0;
}

static struct iocx_stats stats_of(iocx_engine *e)
{
	struct iocx_stats s;

	assert_int_equal(iocx_engine_stats(e, &s), IOCX_OK);
	return s;
}

static iocx_conn *start(struct fx *f, struct peer_rec *r)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_non_null(conn);
	return conn;
}

static void close_while_connecting_reports_cancelled(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct peer_sys_event cl;
	struct iocx_stats s;
	iocx_conn *conn = start(f, r);
	SOCKET sock;

	/* The SYN was dropped by the full queue: nothing can report yet. */
	assert_int_equal(atomic_load(&r->connects), 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_CANCELLED);
	assert_int_equal(r->os_code, PEER_STATUS_CANCELLED);
	assert_int_equal(r->payload_sent, 0);
	assert_int_equal(r->reason, IOCX_OK);

	/* On failure the socket is already closed when on_connect runs. */
	sock = peer_sys_socket(0);
	assert_true(sock != INVALID_SOCKET);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, &cl), 1);
	assert_true(cl.ok);
	assert_true(cl.seq < r->connect_seq);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_started, 1);
	assert_int_equal(s.connects_ok, 0);
	assert_int_equal(s.connects_failed, 1);
	assert_int_equal(s.connects_cancelled, 1);
	assert_int_equal(s.errors[-IOCX_E_CANCELLED], 1);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.closed, 1);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void destroy_cancels_connects_in_flight(void **state)
{
	struct fx *f = *state;
	struct peer_tracker t;
	struct iocx_stats s;
	size_t sockets, closed = 0;
	unsigned h1;

	for (int i = 0; i < NRECS; i++)
		start(f, &f->rec[i]);
	s = stats_of(f->engine);
	assert_int_equal(s.connects_started, NRECS);
	assert_int_equal(s.in_flight, NRECS);
	peer_tracker_snapshot(&f->trk, &t);
	assert_int_equal(t.connects, 0);

	/* Returns once every callback has returned. */
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_tracker_snapshot(&f->trk, &t);
	assert_int_equal(t.connects, NRECS);
	assert_int_equal(t.status[-IOCX_E_CANCELLED], NRECS);
	assert_int_equal(t.closes, NRECS);
	assert_int_equal(t.reason_shutdown, NRECS);
	for (int i = 0; i < NRECS; i++) {
		assert_int_equal(atomic_load(&f->rec[i].connects), 1);
		assert_int_equal(atomic_load(&f->rec[i].closes), 1);
	}

	/* Every socket the engine opened was closed exactly once. */
	assert_false(peer_sys_overflowed());
	sockets = peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL);
	assert_int_equal(sockets, NRECS);
	for (size_t i = 0; i < sockets; i++) {
		SOCKET sock = peer_sys_socket(i);

		closed += peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, NULL);
	}
	assert_int_equal(closed, NRECS);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), NRECS);

	assert_int_equal(peer_alloc_live(), f->live_pre);
	h1 = peer_handle_count();
	/* 1,000 leaked sockets or threads would show; see test_connect. */
	if (h1 > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after destroy, %u before the engine",
			 h1, f->h0);
	peer_assert_clean(&f->trk);
}

static void destroy_closes_open_connections(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct sockaddr_storage refused;
	struct peer_tracker t;
	struct iocx_stats s;
	iocx_conn *closed_by_user;
	int len;

	/* 0-4 stay open, 5 failed and is never released, 6 is closed. */
	for (int i = 0; i < 5; i++)
		start(f, &f->rec[i]);
	len = peer_addr(&refused, AF_INET, "127.0.0.1",
			peer_free_port(AF_INET, "127.0.0.1"));
	peer_req(&req, &refused, len, &f->rec[5]);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	closed_by_user = start(f, &f->rec[6]);
	peer_assert_wait(&f->trk, 7, 0, PEER_SLOW_TIMEOUT_MS);
	for (int i = 0; i < 5; i++)
		assert_int_equal(f->rec[i].status, IOCX_OK);
	assert_int_equal(f->rec[5].status, IOCX_E_REFUSED);
	assert_int_equal(f->rec[6].status, IOCX_OK);
	assert_true(peer_wait_accepted(f->peer, 6, PEER_TIMEOUT_MS));
	s = stats_of(f->engine);
	assert_int_equal(s.open, 7);
	peer_tracker_snapshot(&f->trk, &t);
	assert_int_equal(t.closes, 0);

	/* Its on_close may come before or during destroy: reason OK. */
	assert_int_equal(iocx_close(closed_by_user, IOCX_CLOSE_GRACEFUL),
			 IOCX_OK);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_tracker_snapshot(&f->trk, &t);
	assert_int_equal(t.connects, 7);
	assert_int_equal(t.closes, 7);
	assert_int_equal(t.reason_shutdown, 6);
	assert_int_equal(t.reason_ok, 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(f->rec[i].reason, IOCX_E_SHUTDOWN);
	assert_int_equal(f->rec[6].reason, IOCX_OK);
	/* The sockets are really closed: every peer connection ends. */
	for (size_t i = 0; i < 6; i++)
		assert_true(peer_wait_eof(f->peer, i, PEER_TIMEOUT_MS));
	assert_int_equal(peer_alloc_live(), f->live_pre);
	peer_assert_clean(&f->trk);
}

static void close_twice_hook(struct peer_rec *r, iocx_conn *conn,
			     const struct iocx_connect_result *res)
{
	(void)res;
	r->hook_rc[0] = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
	r->hook_rc[1] = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
	/* The one change a second close may make: graceful to abortive. */
	r->hook_rc[2] = iocx_close(conn, IOCX_CLOSE_ABORT);
	r->hook_rc[3] = iocx_close(conn, IOCX_CLOSE_ABORT);
}

static void close_twice_in_callback_reports_already(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];

	r->hook_rc[0] = r->hook_rc[1] = r->hook_rc[2] = r->hook_rc[3] = 1;
	r->on_connect_hook = close_twice_hook;
	start(f, r);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->hook_rc[0], IOCX_OK);
	assert_int_equal(r->hook_rc[1], IOCX_E_ALREADY);
	assert_int_equal(r->hook_rc[2], IOCX_OK);
	assert_int_equal(r->hook_rc[3], IOCX_E_ALREADY);
	assert_int_equal(r->reason, IOCX_OK);
	assert_int_equal(stats_of(f->engine).closed, 1);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* Keeps on_close (and so the handle) alive until the test releases it. */
static void hold_close_hook(struct peer_rec *r, iocx_conn *conn, int reason)
{
	struct fx *f = r->ctx;

	(void)conn;
	(void)reason;
	peer_event_set(f->entered);
	r->hook_rc[0] = peer_event_wait(f->release, PEER_TIMEOUT_MS);
}

static void close_twice_from_thread_reports_already(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	iocx_conn *conn;

	r->ctx = f;
	r->on_close_hook = hold_close_hook;
	conn = start(f, r);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	/* While on_close runs the handle is still valid. */
	assert_true(peer_event_wait(f->entered, PEER_TIMEOUT_MS));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	/* The graceful close has run its course: too late to reset. */
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_E_ALREADY);
	peer_event_set(f->release);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->hook_rc[0], 1);
	assert_int_equal(r->reason, IOCX_OK);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void destroy_hook_connect(struct peer_rec *r, iocx_conn *conn,
				 const struct iocx_connect_result *res)
{
	(void)conn;
	(void)res;
	r->hook_rc[0] = iocx_engine_destroy(r->ctx);
}

static void destroy_hook_close(struct peer_rec *r, iocx_conn *conn,
			       int reason)
{
	(void)conn;
	(void)reason;
	r->hook_rc[1] = iocx_engine_destroy(r->ctx);
}

static void destroy_in_callback_reports_incallback(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	iocx_conn *conn;

	r->ctx = f->engine;
	r->hook_rc[0] = r->hook_rc[1] = 1;
	r->on_connect_hook = destroy_hook_connect;
	r->on_close_hook = destroy_hook_close;
	conn = start(f, r);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->hook_rc[0], IOCX_E_INCALLBACK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->hook_rc[1], IOCX_E_INCALLBACK);

	/* It did nothing: the engine still connects. */
	r = &f->rec[1];
	conn = start(f, r);
	peer_assert_wait(&f->trk, 2, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 2, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * A connect carrying a payload, closed while the handshake cannot finish:
 * on io_uring the payload's send waits behind the connect in one chain,
 * and cancelling must end both with one report that nothing was sent.
 */
static void close_while_connecting_with_payload_sends_nothing(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct iocx_stats s;
	iocx_conn *conn = NULL;

	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = "hello, world!";
	req.payload_len = 13;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(atomic_load(&r->connects), 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(atomic_load(&r->connects), 1);
	assert_int_equal(atomic_load(&r->closes), 1);
	assert_int_equal(r->status, IOCX_E_CANCELLED);
	assert_int_equal(r->payload_sent, 0);
	assert_int_equal(r->reason, IOCX_OK);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_cancelled, 1);
	assert_int_equal(s.payload_bytes, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void close_racing_completion_reports_once(void **state)
{
	static unsigned char big[64 * 1024];
	struct fx *f = *state;
	struct peer_tracker t;
	struct iocx_stats s;
	const int n = NRECS;	/* 1,000, as the lifecycle issue asks */
	long ok = 0, cancelled = 0;

	memset(big, 'x', sizeof(big));
	for (int i = 0; i < n; i++) {
		struct peer_rec *r = &f->rec[i];
		struct iocx_connect_request req;
		iocx_conn *conn = NULL;

		peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
		/* Race the connect, and every 4th time the payload send. */
		if (i % 4 == 3) {
			req.payload = big;
			req.payload_len = sizeof(big);
		} else if (i % 2 == 1) {
			req.payload = "hello, world!";
			req.payload_len = 13;
		}
		assert_int_equal(iocx_connect(f->engine, &req, &conn),
				 IOCX_OK);
		assert_int_equal(iocx_close(conn, i % 3 == 0
						  ? IOCX_CLOSE_ABORT
						  : IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	}
	peer_assert_wait(&f->trk, n, n, PEER_SLOW_TIMEOUT_MS);
	for (int i = 0; i < n; i++) {
		struct peer_rec *r = &f->rec[i];

		assert_int_equal(atomic_load(&r->connects), 1);
		assert_int_equal(atomic_load(&r->closes), 1);
		assert_int_equal(r->reason, IOCX_OK);
		if (r->status == IOCX_OK)
			ok++;
		else if (r->status == IOCX_E_CANCELLED)
			cancelled++;
		else
			fail_msg("conn %d: on_connect %s (os 0x%lx), expected "
				 "OK or CANCELLED", i,
				 iocx_error_name(r->status),
				 (unsigned long)r->os_code);
	}
	printf("close racing completion: %ld OK, %ld CANCELLED\n", ok,
	       cancelled);
	peer_tracker_snapshot(&f->trk, &t);
	assert_int_equal(t.reason_ok, n);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_started, n);
	assert_int_equal(s.connects_ok, ok);
	assert_int_equal(s.connects_failed, cancelled);
	assert_int_equal(s.connects_cancelled, cancelled);
	assert_int_equal(s.closed, n);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			close_while_connecting_reports_cancelled, setup_full,
			teardown),
		cmocka_unit_test_setup_teardown(
			close_while_connecting_with_payload_sends_nothing,
			setup_full, teardown),
		cmocka_unit_test_setup_teardown(
			destroy_cancels_connects_in_flight, setup_full,
			teardown),
		cmocka_unit_test_setup_teardown(
			destroy_closes_open_connections, setup_live, teardown),
		cmocka_unit_test_setup_teardown(
			close_twice_in_callback_reports_already, setup_live,
			teardown),
		cmocka_unit_test_setup_teardown(
			close_twice_from_thread_reports_already, setup_live,
			teardown),
		cmocka_unit_test_setup_teardown(
			destroy_in_callback_reports_incallback, setup_live,
			teardown),
		cmocka_unit_test_setup_teardown(
			close_racing_completion_reports_once, setup_live,
			teardown),
	};

	peer_init(300);
	return cmocka_run_group_tests_name("net_cancel", tests, NULL, NULL);
}
