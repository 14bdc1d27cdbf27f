/*
 * The user's access to a connection's socket, on the scripted fake
 * backend: the native handle and the addresses of an open connection
 * (and nothing before or after), and the on_socket hook: once per attempt,
 * before the connect, a failure that reports IOCX_E_ABORTED exactly once
 * and leaks nothing, and a close made inside a retry's hook.
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

#define MS 1000000ull

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	iocx_conn *conn;
	unsigned engines;
	int connects, closes;
	struct iocx_connect_result res;
	int reason;
	/* What the callbacks saw through the accessors. */
	iocx_socket_t sock_at_connect, sock_at_close;
	int local_rc_at_connect;
	struct sockaddr_storage local_at_connect;
	/* The hook: calls, what it got, what it returns per call. */
	unsigned hooks;
	iocx_socket_t hook_sock;
	int hook_family;
	void *hook_user;
	unsigned connects_at_hook;	/* FAKE_CONNECT calls before it ran */
	int hook_rc[4];
	bool hook_closes;		/* the 2nd call closes the connection */
	int hook_close_rc;
	void *sentinel;
};

static struct fx the_fx;
static uint64_t fake_now;
static unsigned cb_depth;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	cb_depth++;
	fx->conn = c;
	fx->connects++;
	fx->res = *r;
	fx->sock_at_connect = iocx_conn_socket(c);
	fx->local_rc_at_connect = iocx_conn_local_addr(c,
						       &fx->local_at_connect);
	cb_depth--;
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct fx *fx = user;

	cb_depth++;
	fx->closes++;
	fx->reason = reason;
	fx->sock_at_close = iocx_conn_socket(c);
	cb_depth--;
}

static int hook(iocx_socket_t sock, int family, void *user)
{
	struct fx *fx = user;
	unsigned n = fx->hooks++;

	fx->hook_sock = sock;
	fx->hook_family = family;
	fx->hook_user = user;
	fx->connects_at_hook = fake_count(FAKE_CONNECT, 0);
	if (fx->hook_closes && n == 1)
		fx->hook_close_rc = iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL);
	return n < 4 ? fx->hook_rc[n] : 0;
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *fx = &the_fx;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	fake_now = 1000000 * MS;
	fx->engines = fake_engines();
	if (cfx_engine_create(NULL, &fx->e) != IOCX_OK)
		return -1;
	fx->e->clock = fake_clock;
	cfx_loopback4(&fx->v4, 4242);
	fx->sentinel = test_malloc(1);	/* see test_conn_deadline.c */
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	test_free(fx->sentinel);
	if (cfx_engine_abandon(&fx->e, cb_depth > 0))
		return 0;
	return cfx_engine_destroy(&fx->e, fx->engines);
}

static struct iocx_connect_request request(struct fx *fx)
{
	return cfx_request(&fx->v4, on_connect, on_close, fx);
}

/* Start r and let its first attempt's connect complete with status. */
static iocx_conn *connect_with(struct fx *fx,
			       const struct iocx_connect_request *r,
			       int status)
{
	iocx_conn *c = NULL;

	assert_int_equal(iocx_connect(fx->e, r, &c), IOCX_OK);
	fx->conn = c;
	assert_int_equal(iocx_conn_socket(c), IOCX_INVALID_SOCKET);
	fake_complete(c, status, status ? 10061 : 0, 0);
	fake_pump(fx->e);
	return c;
}

/* Close fx->conn gracefully and pump: on_close must have run once. */
static void close_conn(struct fx *fx)
{
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
}

/* Let the backoff (10 ms at most) pass and run the timers. */
static void after_backoff(struct fx *fx)
{
	fake_pump(fx->e);
	fake_now += 10 * MS;
	iocx__engine_run(fx->e, 0);
	fake_pump(fx->e);
}

static void conn_socket_valid_while_open(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	struct sockaddr_storage ss;
	const struct sockaddr_in *in = (const void *)&fx->local_at_connect;
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(fx->connects, 1);
	/* Inside on_connect already, and after it. */
	assert_int_equal(fx->sock_at_connect, FAKE_NATIVE(1));
	assert_int_equal(iocx_conn_socket(c), FAKE_NATIVE(1));
	assert_int_equal(fx->local_rc_at_connect, IOCX_OK);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(in->sin_port, cfx_be16(FAKE_LOCAL_PORT(1)));
	memset(&ss, 0xa5, sizeof(ss));
	assert_int_equal(iocx_conn_remote_addr(c, &ss), IOCX_OK);
	assert_memory_equal(&ss, &fx->v4, sizeof(fx->v4));
	close_conn(fx);
	/* Released before on_close. */
	assert_int_equal(fx->sock_at_close, IOCX_INVALID_SOCKET);
}

static void conn_socket_invalid_after_failed_connect(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	struct sockaddr_storage ss;
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_E_REFUSED);
	assert_int_equal(fx->res.status, IOCX_E_REFUSED);
	assert_int_equal(fx->sock_at_connect, IOCX_INVALID_SOCKET);
	assert_int_equal(fx->local_rc_at_connect, IOCX_E_NOTCONN);
	assert_int_equal(iocx_conn_local_addr(c, &ss), IOCX_E_NOTCONN);
	assert_int_equal(iocx_conn_remote_addr(c, &ss), IOCX_E_NOTCONN);
	close_conn(fx);
}

static void on_sent(iocx_conn *c, int status, size_t bytes, void *user)
{
	struct fx *fx = user;

	(void)bytes;
	cb_depth++;
	assert_int_equal(status, IOCX_OK);
	/* A graceful close still drains: the socket is still shown. */
	fx->sock_at_connect = iocx_conn_socket(c);
	cb_depth--;
}

static void conn_socket_shown_until_released(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(iocx_send(c, "x", 1, IOCX_PAYLOAD_COPY, on_sent, fx),
			 IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(iocx_close(c, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 0);
	assert_int_equal(iocx_conn_socket(c), FAKE_NATIVE(1));
	fx->sock_at_connect = IOCX_INVALID_SOCKET;
	fake_complete(c, IOCX_OK, 0, 1);
	fake_pump(fx->e);
	assert_int_equal(fx->sock_at_connect, FAKE_NATIVE(1));
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->sock_at_close, IOCX_INVALID_SOCKET);
}

static void conn_accessors_reject_null(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	struct sockaddr_storage ss;
	iocx_conn *c;

	assert_int_equal(iocx_conn_socket(NULL), IOCX_INVALID_SOCKET);
	assert_int_equal(iocx_conn_local_addr(NULL, &ss), IOCX_E_INVAL);
	assert_int_equal(iocx_conn_remote_addr(NULL, &ss), IOCX_E_INVAL);
	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(iocx_conn_local_addr(c, NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_conn_remote_addr(c, NULL), IOCX_E_INVAL);
	close_conn(fx);
}

static void socket_hook_runs_once_before_connect(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);

	r.on_socket = hook;
	connect_with(fx, &r, IOCX_OK);
	assert_int_equal(fx->hooks, 1);
	assert_int_equal(fx->hook_sock, FAKE_NATIVE(1));
	assert_int_equal(fx->hook_family, AF_INET);
	assert_ptr_equal(fx->hook_user, fx);
	assert_int_equal(fx->connects_at_hook, 0);
	assert_int_equal(fake_count(FAKE_CONNECT, 1), 1);
	assert_int_equal(fx->res.status, IOCX_OK);
	close_conn(fx);
	assert_int_equal(fx->hooks, 1);
}

static void socket_hook_failure_fails_connect_synchronously(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_conn *c = (iocx_conn *)&the_fx;	/* must stay untouched */

	r.on_socket = hook;
	fx->hook_rc[0] = 42;
	assert_int_equal(iocx_connect(fx->e, &r, &c), IOCX_E_ABORTED);
	assert_ptr_equal(c, &the_fx);
	fake_pump(fx->e);
	assert_int_equal(fx->hooks, 1);
	/* No callback, no connect issued, the socket closed, nothing
	 * counted; the teardown's leak check covers the memory. */
	assert_int_equal(fx->connects, 0);
	assert_int_equal(fx->closes, 0);
	assert_int_equal(fake_count(FAKE_CONNECT, 0), 0);
	assert_true(fake_sock(1)->closed);
	cfx_check_stats(fx->e, false, .connects_started = 0);
}

static void socket_hook_runs_per_attempt_and_reports_failure(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);

	r.on_socket = hook;
	r.retry.max_attempts = 3;
	r.retry.backoff_initial_ms = 10;
	r.retry.backoff_max_ms = 10;
	fx->hook_rc[1] = -7;
	connect_with(fx, &r, IOCX_E_REFUSED);
	assert_int_equal(fx->connects, 0);	/* waiting to retry */
	assert_int_equal(fx->hooks, 1);
	after_backoff(fx);
	/* The second attempt's hook failed: reported once, not retried. */
	assert_int_equal(fx->hooks, 2);
	assert_int_equal(fx->hook_sock, FAKE_NATIVE(2));
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->res.status, IOCX_E_ABORTED);
	assert_int_equal(fx->res.os_code, (uint32_t)-7);
	assert_int_equal(fx->res.attempts, 2);
	assert_int_equal(fake_count(FAKE_CONNECT, 2), 0);
	assert_true(fake_sock(2)->closed);
	after_backoff(fx);
	assert_int_equal(fx->hooks, 2);
	assert_int_equal(fx->connects, 1);
	close_conn(fx);
	assert_int_equal(fx->reason, IOCX_OK);
	cfx_check_stats(fx->e, true, .connects_started = 1,
			.connects_failed = 1, .retries = 1, .closed = 1,
			.errors[-IOCX_E_ABORTED] = 1);
}

static void socket_hook_close_during_retry_hook(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);

	r.on_socket = hook;
	r.retry.max_attempts = 3;
	r.retry.backoff_initial_ms = 10;
	r.retry.backoff_max_ms = 10;
	fx->hook_closes = true;
	connect_with(fx, &r, IOCX_E_REFUSED);
	after_backoff(fx);
	assert_int_equal(fx->hooks, 2);
	assert_int_equal(fx->hook_close_rc, IOCX_OK);
	/* The attempt never connected; on_connect and on_close once each,
	 * in that order, and the socket closed. */
	assert_int_equal(fake_count(FAKE_CONNECT, 2), 0);
	assert_true(fake_sock(2)->closed);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->res.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->res.os_code, 0);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_OK);
	after_backoff(fx);
	assert_int_equal(fx->hooks, 2);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->closes, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(conn_socket_valid_while_open,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			conn_socket_invalid_after_failed_connect, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			conn_socket_shown_until_released, setup,
			teardown),
		cmocka_unit_test_setup_teardown(conn_accessors_reject_null,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			socket_hook_runs_once_before_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(
			socket_hook_failure_fails_connect_synchronously, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			socket_hook_runs_per_attempt_and_reports_failure, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			socket_hook_close_during_retry_hook, setup, teardown),
	};

	return cmocka_run_group_tests_name("conn_socket", tests, group_setup,
					   cfx_group_teardown);
}
