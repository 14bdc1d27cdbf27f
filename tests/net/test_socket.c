/*
 * The user's access to the socket, on real loopback sockets (IOCP under
 * Wine, and natively on both Linux backends): an option set in the
 * on_socket hook is read back with getsockopt through iocx_conn_socket();
 * the local address is the one the peer sees; a failing hook fails the
 * connect once and leaves no socket, handle or block behind.
 *
 * Callbacks run on workers (the hook of a first attempt on the calling
 * thread), so they only record; the main thread asserts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

struct fx {
	iocx_engine *engine;
	SOCKET ls;			/* listener nobody serves */
	struct sockaddr_storage addr;
	int addr_len;
	SOCKET accepted;
	struct peer_tracker trk;
	struct peer_rec rec[2];
	long live0;
	unsigned h0;
};

/* What the hook saw; the hook runs on this test's thread (1st attempt). */
static struct {
	int calls;
	int family;
	int set_rc;			/* setsockopt's result */
	int ret;			/* what the hook returns */
	peer_tid thread;
} hk;

static int nodelay_hook(iocx_socket_t s, int family, void *user)
{
	int on = 1;

	(void)user;
	hk.calls++;
	hk.family = family;
	hk.thread = peer_thread_id();
	hk.set_rc = setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&on,
			       sizeof(on));
	return hk.ret;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	memset(&hk, 0, sizeof(hk));
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, 2, &f->trk);
	f->accepted = INVALID_SOCKET;
	f->h0 = peer_handle_count();
	f->ls = peer_raw_listen(AF_INET, "127.0.0.1", &f->addr, &f->addr_len);
	if (f->ls == INVALID_SOCKET ||
	    iocx_engine_create(NULL, &f->engine) != IOCX_OK)
		return -1;
	f->live0 = peer_alloc_live();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	if (f->accepted != INVALID_SOCKET)
		closesocket(f->accepted);
	closesocket(f->ls);
	free(f);
	return 0;
}

/* Connect rec[i] with an optional hook; wait for on_connect(IOCX_OK). */
static iocx_conn *open_conn(struct fx *f, int i, iocx_socket_cb hook)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req(&req, &f->addr, f->addr_len, &f->rec[i]);
	req.on_socket = hook;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, i + 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[i].status, IOCX_OK);
	assert_ptr_equal(f->rec[i].conn, conn);
	return conn;
}

/* Windows may write a single byte (a BOOLEAN) for TCP_NODELAY: start
 * from 0 so that the bytes it leaves alone read as off. */
static int nodelay_of(iocx_socket_t s)
{
	int v = 0;
	peer_socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, (char *)&v,
				    &len),
			 0);
	return v != 0;
}

static void close_conn(struct fx *f, iocx_conn *conn, long closes)
{
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 0, closes, PEER_TIMEOUT_MS);
}

static void socket_hook_option_read_back(void **state)
{
	struct fx *f = *state;
	iocx_conn *plain, *hooked;

	/* Without the hook the option is off: the read-back can fail. */
	plain = open_conn(f, 0, NULL);
	assert_int_not_equal(iocx_conn_socket(plain), IOCX_INVALID_SOCKET);
	assert_int_equal(nodelay_of(iocx_conn_socket(plain)), 0);
	assert_int_equal(hk.calls, 0);

	hooked = open_conn(f, 1, nodelay_hook);
	assert_int_equal(hk.calls, 1);
	assert_int_equal(hk.set_rc, 0);
	assert_int_equal(hk.family, AF_INET);
	/* The first attempt's hook runs inside iocx_connect. */
	assert_true(hk.thread == peer_thread_id());
	assert_int_equal(nodelay_of(iocx_conn_socket(hooked)), 1);

	close_conn(f, plain, 1);
	close_conn(f, hooked, 2);
	assert_int_equal(hk.calls, 1);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void local_address_is_what_the_peer_sees(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local, remote, seen;
	peer_socklen_t len = sizeof(seen);
	iocx_conn *conn;

	conn = open_conn(f, 0, NULL);
	f->accepted = peer_raw_accept(f->ls, PEER_TIMEOUT_MS);
	assert_true(f->accepted != INVALID_SOCKET);
	assert_int_equal(getpeername(f->accepted, (struct sockaddr *)&seen,
				     &len),
			 0);
	assert_int_equal(iocx_conn_local_addr(conn, &local), IOCX_OK);
	assert_int_equal(local.ss_family, AF_INET);
	assert_int_not_equal(peer_addr_port((struct sockaddr *)&local), 0);
	assert_int_equal(peer_addr_port((struct sockaddr *)&local),
			 peer_addr_port((struct sockaddr *)&seen));
	assert_memory_equal(
		&((struct sockaddr_in *)(void *)&local)->sin_addr,
		&((struct sockaddr_in *)(void *)&seen)->sin_addr, 4);
	assert_int_equal(iocx_conn_remote_addr(conn, &remote), IOCX_OK);
	assert_memory_equal(&remote, &f->addr, (size_t)f->addr_len);

	close_conn(f, conn, 1);
	peer_assert_clean(&f->trk);
}

static void socket_hook_failure_fails_once_and_leaks_nothing(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct iocx_stats s;
	iocx_conn *conn = NULL;
	int i;

	hk.ret = 5;
	for (i = 0; i < 20; i++) {
		peer_req(&req, &f->addr, f->addr_len, &f->rec[0]);
		req.on_socket = nodelay_hook;
		assert_int_equal(iocx_connect(f->engine, &req, &conn),
				 IOCX_E_ABORTED);
		assert_null(conn);
	}
	assert_int_equal(hk.calls, 20);
	/* No connect left: the listener sees nobody. */
	assert_true(peer_raw_accept(f->ls, 200) == INVALID_SOCKET);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.connects_started, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(atomic_load(&f->rec[0].connects), 0);
	assert_int_equal(atomic_load(&f->rec[0].closes), 0);
	peer_assert_no_leak(f->live0);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	/* Listener only, beyond what the test started with. */
	assert_true(peer_handle_count() <= f->h0 + 1 + PEER_HANDLE_SLACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(socket_hook_option_read_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			local_address_is_what_the_peer_sees, setup, teardown),
		cmocka_unit_test_setup_teardown(
			socket_hook_failure_fails_once_and_leaks_nothing, setup,
			teardown),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("socket", tests, NULL, NULL);
}
