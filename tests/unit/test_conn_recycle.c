/*
 * The core's side of socket recycling, on the scripted fake backend: a
 * graceful close of a wildcard-bound plain connection (no TFO, no SYN
 * tuning, not v4-mapped, no on_socket hook) disconnects first and hands
 * the socket to recycle() once that completed; every other close, a
 * failed or refused disconnect, and destroy close the socket instead,
 * and on_close always comes last, exactly once.  (The IOCP pool and its
 * Wine fallback are tested under Wine in tests/net/test_recycle.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "conn.h"
#include "engine.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	iocx_conn *conn;
	int connects, closes;
	int status, reason;
	int close_seq, connect_seq, seq;
	void *sentinel;
};

static struct fx the_fx;

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	fx->conn = c;
	fx->connects++;
	fx->status = r->status;
	fx->connect_seq = ++fx->seq;
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct fx *fx = user;

	(void)c;
	fx->closes++;
	fx->reason = reason;
	fx->close_seq = ++fx->seq;
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup_with(void **state, bool recycle)
{
	struct fx *fx = &the_fx;
	struct iocx_engine_options o;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	iocx_engine_options_init(&o);
	o.recycle_sockets = recycle;
	if (cfx_engine_create(&o, &fx->e) != IOCX_OK)
		return -1;
	cfx_loopback4(&fx->v4, 9);
	/* A block that outlives the body, for cmocka's leak walk. */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, true);
}

static int setup_off(void **state)
{
	return setup_with(state, false);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->e)
		assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	test_free(fx->sentinel);
	assert_false(fake_poisoned());
	fake_cleanup();
	return 0;
}

/* Connect with r and complete it: the conn is OPEN. */
static void open_req(struct fx *fx, const struct iocx_connect_request *r)
{
	iocx_conn *conn = NULL;

	assert_int_equal(iocx_connect(fx->e, r, &conn), IOCX_OK);
	fake_complete(conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->status, IOCX_OK);
	fake_log_clear();
}

/* Close the open connection gracefully and pump; returns its id. */
static unsigned close_graceful(struct fx *fx)
{
	unsigned id = fake_id(fx->conn);

	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	return id;
}

/* Open a plain connection, close it with mode and pump; returns its id. */
static unsigned open_then_close(struct fx *fx, enum iocx_close_mode mode)
{
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);
	unsigned id;

	open_req(fx, &r);
	id = fake_id(fx->conn);
	assert_int_equal(iocx_close(fx->conn, mode), IOCX_OK);
	fake_pump(fx->e);
	return id;
}

static uint64_t recycled(struct fx *fx)
{
	struct iocx_stats s;

	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	return s.sockets_recycled;
}

static void recycle_graceful_close_disconnects_then_keeps(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	/* The disconnect is in flight: on_close waits for it. */
	assert_int_equal(fake_count(FAKE_DISCONNECT, id), 1);
	assert_int_equal(fx->closes, 0);
	fake_complete(fx->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_OK);
	assert_int_equal(fake_count(FAKE_RECYCLE, id), 1);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 0);
	assert_true(fake_sock(id)->recycled);
	assert_int_equal(recycled(fx), 1);
}

static void recycle_refused_by_backend_closes(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	fake_set_recycle_keeps(false);
	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	fake_complete(fx->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_RECYCLE, id), 1);
	assert_false(fake_sock(id)->recycled);
	assert_int_equal(recycled(fx), 0);
}

static void recycle_disconnect_failure_closes(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	fake_complete(fx->conn, IOCX_E_RESET, 0xC000020Du, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_RECYCLE, id), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
	assert_int_equal(recycled(fx), 0);
}

static void recycle_disconnect_refused_at_once_closes(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	/* Opening issues no disconnect: the close's is the one that fails. */
	fake_fail_next(FAKE_DISCONNECT, IOCX_E_NOTSUP);
	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
	assert_false(fake_sock(id)->abort);
}

static void recycle_not_for_abortive_close(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	id = open_then_close(fx, IOCX_CLOSE_ABORT);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_DISCONNECT, id), 0);
	assert_true(fake_sock(id)->abort);
}

/* Open with r, close gracefully: the socket is closed, never kept. */
static void assert_closed_not_kept(struct fx *fx,
				   const struct iocx_connect_request *r)
{
	unsigned id;

	open_req(fx, r);
	id = close_graceful(fx);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_DISCONNECT, id), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
	assert_int_equal(recycled(fx), 0);
}

static void recycle_not_for_explicit_local(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);
	struct sockaddr_in local = fx->v4;

	local.sin_port = 0;
	r.local = (const struct sockaddr *)&local;
	r.local_len = sizeof(local);
	assert_closed_not_kept(fx, &r);
}

static void recycle_not_for_fastopen(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);

	r.flags = IOCX_CONNECT_FASTOPEN;
	assert_closed_not_kept(fx, &r);
}

static void recycle_not_for_syn_tuned(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);

	r.syn_retransmissions = 2;
	assert_closed_not_kept(fx, &r);
}

static void recycle_not_for_v4_mapped(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);
	struct sockaddr_in6 mapped;

	memset(&mapped, 0, sizeof(mapped));
	mapped.sin6_family = AF_INET6;
	mapped.sin6_port = fx->v4.sin_port;
	mapped.sin6_addr.s6_addr[10] = 0xff;
	mapped.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&mapped.sin6_addr.s6_addr[12], &fx->v4.sin_addr, 4);
	r.remote = (const struct sockaddr *)&mapped;
	r.remote_len = sizeof(mapped);
	assert_closed_not_kept(fx, &r);
}

static int hook_ok(iocx_socket_t sock, int family, void *user)
{
	(void)sock;
	(void)family;
	(void)user;
	return 0;
}

static void recycle_not_for_socket_hook(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, on_close, fx);

	r.on_socket = hook_ok;
	assert_closed_not_kept(fx, &r);
}

static void recycle_off_never_disconnects(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_count(FAKE_DISCONNECT, id), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
}

static void recycle_destroy_cancels_disconnect_in_flight(void **state)
{
	struct fx *fx = *state;
	unsigned id;

	id = open_then_close(fx, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fake_count(FAKE_DISCONNECT, id), 1);
	/* TIME_WAIT could hold the disconnect for minutes: destroy cancels
	 * it (the fake's cancel completes it at once) and closes. */
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_OK);
	assert_int_equal(fake_count(FAKE_CANCEL, id), 1);
	assert_int_equal(fake_count(FAKE_RECYCLE, id), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, id), 1);
	assert_true(fx->close_seq > fx->connect_seq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			recycle_graceful_close_disconnects_then_keeps, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			recycle_refused_by_backend_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_disconnect_failure_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_disconnect_refused_at_once_closes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			recycle_not_for_abortive_close, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_not_for_explicit_local, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_not_for_fastopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_not_for_syn_tuned, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_not_for_v4_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_off_never_disconnects, setup_off, teardown),
		cmocka_unit_test_setup_teardown(recycle_not_for_socket_hook,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_destroy_cancels_disconnect_in_flight, setup,
			teardown),
	};

	return cmocka_run_group_tests_name("conn_recycle", tests, group_setup,
					   NULL);
}
