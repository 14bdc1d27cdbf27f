/*
 * The user's access to a connection's socket, on the scripted fake
 * backend: the native handle and the addresses of an open connection
 * (and nothing before or after), and the on_socket hook: once per attempt,
 * before the connect, a failure that reports IOCX_E_ABORTED exactly once
 * and leaks nothing, and a close made inside a retry's hook; and
 * iocx_detach: only of an idle open connection (IOCX_E_BUSY while a read
 * or a send is pending), after which the backend never sees the socket
 * again and on_close reports IOCX_E_DETACHED.
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
	bool skip_local_at_connect;	/* on_connect does not ask */
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
	/* iocx_detach from inside on_connect: of this connection (NULL =
	 * of the one connecting), and what it gave. */
	bool detach_in_connect;
	iocx_conn *detach_target;
	int detach_rc;
	iocx_socket_t detached;
	int recv_terminal;		/* status of the terminal on_recv */
	int recvs;
	int sents, sent_status;
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
	if (!fx->skip_local_at_connect)
		fx->local_rc_at_connect = iocx_conn_local_addr(
						c, &fx->local_at_connect);
	if (fx->detach_in_connect)
		fx->detach_rc = iocx_detach(fx->detach_target ? fx->detach_target
							      : c,
					    &fx->detached);
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

	return cfx_teardown(&fx->e, fx->sentinel, fx->engines, cb_depth > 0);
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

/*
 * The OS is asked for the local address only when someone wants it, and
 * once: a connection nobody asks about costs no getsockname.
 */
static void conn_local_addr_asked_once_on_demand(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	struct sockaddr_storage a, b;
	iocx_conn *c;

	fx->skip_local_at_connect = true;
	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(fake_sock(1)->local_addrs, 0);
	memset(&a, 0xa5, sizeof(a));
	memset(&b, 0x5a, sizeof(b));
	assert_int_equal(iocx_conn_local_addr(c, &a), IOCX_OK);
	assert_int_equal(iocx_conn_local_addr(c, &b), IOCX_OK);
	assert_int_equal(fake_sock(1)->local_addrs, 1);
	assert_memory_equal(&a, &b, sizeof(a));
	close_conn(fx);
	assert_int_equal(fake_sock(1)->local_addrs, 1);
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
	/* The hook's value, as in a retry's os_code (iocx.h). */
	assert_int_equal(iocx_last_os_error(), 42);
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

/* ---- detach ----------------------------------------------------------- */

static void on_recv(iocx_conn *c, int status, const void *d, size_t len,
		    void *user)
{
	struct fx *fx = user;

	(void)c;
	(void)d;
	(void)len;
	fx->recvs++;
	if (status != IOCX_OK)
		fx->recv_terminal = status;
}

static void on_sent_ok(iocx_conn *c, int status, size_t bytes, void *user)
{
	struct fx *fx = user;

	(void)c;
	(void)bytes;
	fx->sent_status = status;
	fx->sents++;
}

static void detach_idle_gives_socket_and_closes_detached(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	unsigned long live = hook_allocs - hook_frees;
	iocx_conn *c;
	size_t log0;

	c = connect_with(fx, &r, IOCX_OK);
	log0 = fake_log_len();
	assert_int_equal(iocx_detach(c, &s), IOCX_OK);
	assert_int_equal(s, FAKE_NATIVE(1));
	assert_true(fake_sock(1)->detached);
	/* From here on: no socket to show, no data calls accepted. */
	assert_int_equal(iocx_conn_socket(c), IOCX_INVALID_SOCKET);
	assert_int_equal(iocx_send(c, "x", 1, IOCX_PAYLOAD_COPY, on_sent_ok,
				   fx),
			 IOCX_E_NOTCONN);
	assert_int_equal(iocx_read_start(c, on_recv), IOCX_E_NOTCONN);
	assert_int_equal(iocx_detach(c, &s), IOCX_E_NOTCONN);
	assert_int_equal(iocx_close(c, IOCX_CLOSE_ABORT), IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_DETACHED);
	assert_int_equal(fx->sock_at_close, IOCX_INVALID_SOCKET);
	/* The backend was asked for nothing but the detach (a close of a
	 * forgotten socket does nothing). */
	for (size_t i = log0; i < fake_log_len(); i++) {
		const struct fake_rec *rec = fake_log_at(i);

		assert_true(rec->call == FAKE_DETACH ||
			    rec->call == FAKE_CLOSE || rec->call == FAKE_POST);
	}
	assert_false(fake_sock(1)->closed);
	/* The detach was the program's release: freed after on_close. */
	assert_int_equal(hook_allocs - hook_frees, live);
	cfx_check_stats(fx->e, false, .connects_started = 1,
			.connects_ok = 1, .closed = 1);
}

static void detach_while_reading_is_busy(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(iocx_read_start(c, on_recv), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_recv_pending(1));
	assert_int_equal(iocx_detach(c, &s), IOCX_E_BUSY);
	assert_int_equal(s, IOCX_INVALID_SOCKET);
	/* Nothing changed: the read goes on and delivers. */
	fake_complete_recv(c, IOCX_OK, "ab", 2);
	fake_pump(fx->e);
	assert_int_equal(fx->recvs, 1);
	assert_true(fake_recv_pending(1));
	/* Stopped, and its terminal on_recv came: now it detaches. */
	assert_int_equal(iocx_read_stop(c), IOCX_OK);
	assert_int_equal(iocx_detach(c, &s), IOCX_E_BUSY);
	fake_pump(fx->e);
	assert_int_equal(fx->recv_terminal, IOCX_E_CANCELLED);
	assert_int_equal(iocx_detach(c, &s), IOCX_OK);
	assert_int_equal(s, FAKE_NATIVE(1));
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_DETACHED);
	assert_int_equal(fx->recvs, 2);
}

static void detach_with_send_pending_is_busy(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_OK);
	assert_int_equal(iocx_send(c, "xyz", 3, IOCX_PAYLOAD_COPY, on_sent_ok,
				   fx),
			 IOCX_OK);
	/* Queued, not yet taken by a worker: busy already. */
	assert_int_equal(iocx_detach(c, &s), IOCX_E_BUSY);
	fake_pump(fx->e);
	assert_int_equal(iocx_detach(c, &s), IOCX_E_BUSY);
	fake_complete(c, IOCX_OK, 0, 3);
	fake_pump(fx->e);
	assert_int_equal(fx->sents, 1);
	assert_int_equal(fx->sent_status, IOCX_OK);
	assert_int_equal(iocx_detach(c, &s), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->reason, IOCX_E_DETACHED);
	assert_int_equal(fake_sock(1)->acked, 3);
}

static void detach_inside_on_connect_closes_after_it(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);

	fx->detach_in_connect = true;
	connect_with(fx, &r, IOCX_OK);
	assert_int_equal(fx->detach_rc, IOCX_OK);
	assert_int_equal(fx->detached, FAKE_NATIVE(1));
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_DETACHED);
	assert_false(fake_sock(1)->closed);
}

static void detach_from_another_connections_callback_refused(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_conn *first;

	first = connect_with(fx, &r, IOCX_OK);
	fx->detach_in_connect = true;
	fx->detach_target = first;
	connect_with(fx, &r, IOCX_OK);
	assert_int_equal(fx->detach_rc, IOCX_E_INCALLBACK);
	assert_false(fake_sock(1)->detached);
	assert_int_equal(iocx_conn_socket(first), FAKE_NATIVE(1));
	assert_int_equal(iocx_close(first, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 2);
	assert_int_equal(fx->reason, IOCX_OK);
}

static void detach_not_open_or_bad_args(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	iocx_conn *c = NULL;

	assert_int_equal(iocx_detach(NULL, &s), IOCX_E_INVAL);
	assert_int_equal(iocx_connect(fx->e, &r, &c), IOCX_OK);
	fx->conn = c;
	assert_int_equal(iocx_detach(c, NULL), IOCX_E_INVAL);
	/* Still connecting. */
	assert_int_equal(iocx_detach(c, &s), IOCX_E_NOTCONN);
	fake_complete(c, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	/* A close asked for: too late. */
	assert_int_equal(iocx_close(c, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_detach(c, &s), IOCX_E_NOTCONN);
	assert_int_equal(s, IOCX_INVALID_SOCKET);
	fake_pump(fx->e);
	assert_int_equal(fx->reason, IOCX_OK);
	assert_true(fake_sock(1)->closed);
}

static void detach_refused_by_os_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx);
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	iocx_conn *c;

	c = connect_with(fx, &r, IOCX_OK);
	fake_fail_next(FAKE_DETACH, IOCX_E_NOTSUP);
	assert_int_equal(iocx_detach(c, &s), IOCX_E_NOTSUP);
	assert_int_equal(s, IOCX_INVALID_SOCKET);
	assert_int_equal(iocx_conn_socket(c), FAKE_NATIVE(1));
	assert_int_equal(iocx_send(c, "x", 1, IOCX_PAYLOAD_COPY, on_sent_ok,
				   fx),
			 IOCX_OK);
	fake_pump(fx->e);
	fake_complete(c, IOCX_OK, 0, 1);
	fake_pump(fx->e);
	assert_int_equal(fx->sent_status, IOCX_OK);
	close_conn(fx);
	assert_int_equal(fx->reason, IOCX_OK);
	assert_true(fake_sock(1)->closed);
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
		cmocka_unit_test_setup_teardown(
			conn_local_addr_asked_once_on_demand, setup, teardown),
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
		cmocka_unit_test_setup_teardown(
			detach_idle_gives_socket_and_closes_detached, setup,
			teardown),
		cmocka_unit_test_setup_teardown(detach_while_reading_is_busy,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			detach_with_send_pending_is_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(
			detach_inside_on_connect_closes_after_it, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			detach_from_another_connections_callback_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(detach_not_open_or_bad_args,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			detach_refused_by_os_changes_nothing, setup, teardown),
	};

	return cmocka_run_group_tests_name("conn_socket", tests, group_setup,
					   cfx_group_teardown);
}
