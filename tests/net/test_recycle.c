/*
 * Socket recycling (options.recycle_sockets): a graceful close keeps the
 * socket after DisconnectEx(TF_REUSE_SOCKET), the next connect of that
 * family takes it, and where the OS refuses to reconnect a kept socket
 * (Wine 8: ConnectEx fails with WSAEISCONN; docs/windows.md, "Socket
 * reuse: DisconnectEx") the engine
 * turns recycling off and goes on with a fresh socket.  Abortive closes
 * and explicitly bound connections are never recycled, and destroy closes
 * every kept socket.  The Linux backends do not recycle (there is no
 * TF_REUSE_SOCKET: a TCP socket cannot connect again after a disconnect),
 * so there the option changes nothing and every socket is closed.
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

#define NCONN 3

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec[NCONN];
	long live_pre;
	unsigned h0;
};

static int setup_opts(void **state, bool recycle)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	*state = f;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, NCONN, &f->trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	f->h0 = peer_handle_count();
	f->live_pre = peer_alloc_live();
	peer_sys_install();
	iocx_engine_options_init(&o);
	o.recycle_sockets = recycle;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	peer_sys_clear();
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, true);
}

static int setup_off(void **state)
{
	return setup_opts(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_sys_uninstall();
	peer_close(f->peer);
	free(f);
	return 0;
}

static struct iocx_stats stats_of(iocx_engine *e)
{
	struct iocx_stats s;

	assert_int_equal(iocx_engine_stats(e, &s), IOCX_OK);
	return s;
}

/*
 * The on_socket hook of recycle_runs_hook_on_every_socket: sets
 * TCP_NODELAY and remembers the last socket it saw; the connect hook
 * keeps whether the connected socket is that one and carries the option.
 */
static struct {
	unsigned calls;
	iocx_socket_t last;
} hooked;

static int nodelay_hook(iocx_socket_t s, int family, void *user)
{
	int on = 1;

	(void)family;
	(void)user;
	hooked.calls++;
	hooked.last = s;
	return setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&on,
			  sizeof(on));
}

static void check_hooked(struct peer_rec *r, iocx_conn *conn,
			 const struct iocx_connect_result *res)
{
	iocx_socket_t s = iocx_conn_socket(conn);
	peer_socklen_t len = sizeof(int);
	int v = 0;

	(void)res;
	r->hook_rc[0] = s == hooked.last;
	r->hook_rc[1] = getsockopt(s, IPPROTO_TCP, TCP_NODELAY, (char *)&v,
				   &len) == 0 && v != 0;
}

/* Connect rec[i] (with hook, if any), expect success, close it with
 * mode, wait for on_close. */
static void connect_close_hooked(struct fx *f, int i,
				 enum iocx_close_mode mode,
				 const struct sockaddr_storage *local,
				 iocx_socket_cb hook)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[i]);
	req.on_socket = hook;
	if (local) {
		req.local = (const struct sockaddr *)local;
		req.local_len = sizeof(struct sockaddr_in);
	}
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, i + 1, i, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[i].status, IOCX_OK);
	assert_int_equal(iocx_close(conn, mode), IOCX_OK);
	peer_assert_wait(&f->trk, i + 1, i + 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[i].reason, IOCX_OK);
}

static void connect_close(struct fx *f, int i, enum iocx_close_mode mode,
			  const struct sockaddr_storage *local)
{
	connect_close_hooked(f, i, mode, local, NULL);
}

/* After destroy: every socket the engine made was closed, nothing leaked. */
static void assert_all_closed(struct fx *f)
{
	size_t sockets;
	unsigned h1;

	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_false(peer_sys_overflowed());
	sockets = peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), sockets);
	assert_int_equal(peer_alloc_live(), f->live_pre);
	h1 = peer_handle_count();
	if (h1 > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after destroy, %u before", h1, f->h0);
}

static void recycle_keeps_socket_and_reuses_or_falls_back(void **state)
{
	struct fx *f = *state;
	struct iocx_stats s;

	connect_close(f, 0, IOCX_CLOSE_GRACEFUL, NULL);
	s = stats_of(f->engine);
#ifndef _WIN32
	/* Nothing kept: the socket was closed like any other. */
	assert_int_equal(s.sockets_recycled, 0);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), 1);
	connect_close(f, 1, IOCX_CLOSE_GRACEFUL, NULL);
	s = stats_of(f->engine);
	assert_int_equal(s.sockets_reused, 0);
	assert_int_equal(s.recycle_fallbacks, 0);
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
	printf("%s: no socket recycling on Linux (no TF_REUSE_SOCKET); "
	       "recycle_sockets left every socket closed\n", peer_backend());
	skip();
#endif
	assert_int_equal(s.sockets_recycled, 1);
	/* Kept, not closed: one socket made, none closed yet. */
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), 0);

	connect_close(f, 1, IOCX_CLOSE_GRACEFUL, NULL);
	s = stats_of(f->engine);
	assert_int_equal(s.sockets_reused, 1);
	if (peer_is_wine()) {
		/* The kept socket could not reconnect: one fallback, and
		 * recycling is off from then on. */
		assert_int_equal(s.recycle_fallbacks, 1);
		connect_close(f, 2, IOCX_CLOSE_GRACEFUL, NULL);
		s = stats_of(f->engine);
		assert_int_equal(s.sockets_reused, 1);
		assert_int_equal(s.sockets_recycled, 1);
		assert_true(peer_wait_accepted(f->peer, NCONN,
					       PEER_TIMEOUT_MS));
		assert_all_closed(f);
		peer_assert_clean(&f->trk);
		printf("wine %s: ConnectEx on a DisconnectEx(TF_REUSE_SOCKET) "
		       "socket fails with WSAEISCONN; the fallback path was "
		       "verified, reuse itself cannot be\n",
		       peer_wine_version());
		skip();
	}
	assert_int_equal(s.recycle_fallbacks, 0);
	assert_true(peer_wait_accepted(f->peer, 2, PEER_TIMEOUT_MS));
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
}

/*
 * Every socket a connection connects on went through its on_socket hook:
 * a kept socket it took, and the fresh one the engine opens where the OS
 * would not reconnect that (Wine 8): the options the hook set are on the
 * socket that connected.
 */
static void recycle_runs_hook_on_every_socket(void **state)
{
	struct fx *f = *state;

	memset(&hooked, 0, sizeof(hooked));
	/* Kept (a hook's socket never is), then taken by a hooked one. */
	connect_close(f, 0, IOCX_CLOSE_GRACEFUL, NULL);
	f->rec[1].on_connect_hook = check_hooked;
	connect_close_hooked(f, 1, IOCX_CLOSE_GRACEFUL, NULL, nodelay_hook);
	printf("%s: %u hook calls, %llu kept socket(s) reused, %llu "
	       "fallback(s)\n", peer_backend(), hooked.calls,
	       (unsigned long long)stats_of(f->engine).sockets_reused,
	       (unsigned long long)stats_of(f->engine).recycle_fallbacks);
	assert_true(f->rec[1].hook_rc[0]);	/* the last socket hooked */
	assert_true(f->rec[1].hook_rc[1]);	/* with TCP_NODELAY on */
	assert_int_equal(hooked.calls,
			 1 + stats_of(f->engine).recycle_fallbacks);
	assert_true(peer_wait_accepted(f->peer, 2, PEER_TIMEOUT_MS));
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
}

static void recycle_abortive_close_closes(void **state)
{
	struct fx *f = *state;

	connect_close(f, 0, IOCX_CLOSE_ABORT, NULL);
	assert_int_equal(stats_of(f->engine).sockets_recycled, 0);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), 1);
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
}

static void recycle_explicit_local_closes(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local;

	peer_addr(&local, AF_INET, "127.0.0.1", 0);
	connect_close(f, 0, IOCX_CLOSE_GRACEFUL, &local);
	assert_int_equal(stats_of(f->engine).sockets_recycled, 0);
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
}

static void recycle_off_by_default(void **state)
{
	struct fx *f = *state;
	struct iocx_stats s;

	connect_close(f, 0, IOCX_CLOSE_GRACEFUL, NULL);
	connect_close(f, 1, IOCX_CLOSE_GRACEFUL, NULL);
	s = stats_of(f->engine);
	assert_int_equal(s.sockets_recycled, 0);
	assert_int_equal(s.sockets_reused, 0);
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 2);
	assert_all_closed(f);
	peer_assert_clean(&f->trk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			recycle_keeps_socket_and_reuses_or_falls_back, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			recycle_runs_hook_on_every_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_abortive_close_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			recycle_explicit_local_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(recycle_off_by_default,
						setup_off, teardown),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("net_recycle", tests, NULL, NULL);
}
