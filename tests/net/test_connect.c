/*
 * Connect outcomes on real loopback sockets: success, refusal, IPv6 and
 * v4-mapped addresses, a caller-given local address, a connect that
 * outlives the thread that started it, SO_UPDATE_CONNECT_CONTEXT (on
 * Linux: the order of the socket calls), TCP Fast Open, closing from
 * inside on_connect, the backend option, and engine create/destroy cycles
 * that must leak neither memory nor handles.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#endif

#include <cmocka.h>

#include "peer.h"

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec[4];
	long live0;		/* library blocks with the idle engine */
	bool sys;		/* syscall recorder installed */
};

static int fx_setup(void **state, bool sys, bool engine)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, 4, &f->trk);
	f->sys = sys;
	/* The table must be swapped before any engine uses it. */
	if (sys)
		peer_sys_install();
	if (engine && iocx_engine_create(NULL, &f->engine) != IOCX_OK)
		return -1;
	/* Only the connection's own calls from here on. */
	if (sys)
		peer_sys_clear();
	f->live0 = peer_alloc_live();
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, false, true);
}

#ifndef PEER_PUBLIC_API
static int setup_sys(void **state)
{
	return fx_setup(state, true, true);
}
#endif /* PEER_PUBLIC_API */

static int setup_bare(void **state)
{
	return fx_setup(state, false, false);
}

#if !defined(_WIN32) && !defined(PEER_PUBLIC_API)
static int setup_sys_bare(void **state)
{
	return fx_setup(state, true, false);
}
#endif

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	if (f->sys)
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
 * Close r's connection gracefully and wait until the tracker counted
 * closes on_close calls.
 */
static void close_and_wait(struct fx *f, struct peer_rec *r, long closes)
{
	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 0, closes, PEER_TIMEOUT_MS);
	assert_int_equal(atomic_load(&r->closes), 1);
	assert_int_equal(r->reason, IOCX_OK);
}

static void connect_loopback_succeeds(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct iocx_stats s;
	iocx_conn *conn = NULL;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_non_null(conn);

	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->os_code, 0);
	assert_int_equal(r->payload_sent, 0);
	assert_false(r->fastopen);
	assert_true(r->latency_ns > 0);
	assert_true(r->latency_ns < 10ull * 1000 * 1000 * 1000);
	assert_ptr_equal(r->conn, conn);
	assert_true(peer_wait_accepted(f->peer, 1, PEER_TIMEOUT_MS));

	s = stats_of(f->engine);
	assert_int_equal(s.connects_started, 1);
	assert_int_equal(s.connects_ok, 1);
	assert_int_equal(s.connects_failed, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 1);
	assert_int_equal(s.closed, 0);

	close_and_wait(f, r, 1);
	/* Graceful close: the peer reads EOF, not a reset. */
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, 0);
	assert_int_equal(f->peer->conns[0].len, 0);

	s = stats_of(f->engine);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.open, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void connect_refused_reports_refused(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct sockaddr_storage to;
	struct iocx_stats s;
	uint16_t port = peer_free_port(AF_INET, "127.0.0.1");
	int len = peer_addr(&to, AF_INET, "127.0.0.1", port);
	iocx_conn *conn = NULL;

	assert_int_not_equal(port, 0);
	peer_req(&req, &to, len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);

	/* Windows retries a refused SYN for about 2 s; Wine refuses at once. */
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_REFUSED);
	assert_int_equal(r->os_code, PEER_STATUS_CONNECTION_REFUSED);
	assert_int_equal(r->payload_sent, 0);
	assert_int_equal(atomic_load(&r->closes), 0);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_started, 1);
	assert_int_equal(s.connects_ok, 0);
	assert_int_equal(s.connects_failed, 1);
	assert_int_equal(s.connects_cancelled, 0);
	assert_int_equal(s.errors[-IOCX_E_REFUSED], 1);
	assert_int_equal(s.in_flight, 0);
	/* The handle waits for iocx_close even after a failure. */
	assert_int_equal(s.open, 1);

	close_and_wait(f, r, 1);
	s = stats_of(f->engine);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.open, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* Connect to f->peer through remote; the peer must see client_ip. */
static void connect_and_check_client(struct fx *f, struct peer_rec *r,
				     const struct sockaddr_storage *remote,
				     int remote_len, const char *client_ip)
{
	struct iocx_connect_request req;
	char ip[INET6_ADDRSTRLEN];
	long n = 0;		/* callers make one connection per test */

	peer_req(&req, remote, remote_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, n + 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->os_code, 0);
	assert_true(peer_wait_accepted(f->peer, n + 1, PEER_TIMEOUT_MS));
	peer_addr_ip((struct sockaddr *)&f->peer->conns[n].addr, ip,
		     sizeof(ip));
	assert_string_equal(ip, client_ip);
	close_and_wait(f, r, n + 1);
}

static void connect_ipv6_loopback_succeeds(void **state)
{
	struct fx *f = *state;

	if (!peer_ipv6_available()) {
		printf("::1 cannot be bound on this host: no IPv6 loopback\n");
		skip();
	}
	f->peer = peer_listen(AF_INET6, "::1", PEER_READ);
	assert_non_null(f->peer);
	connect_and_check_client(f, &f->rec[0], &f->peer->addr,
				 f->peer->addr_len, "::1");
	assert_int_equal(f->peer->conns[0].addr.ss_family, AF_INET6);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void connect_v4mapped_reaches_ipv4_listener(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage to;
	int len;

	if (!peer_ipv6_available()) {
		printf("::1 cannot be bound on this host: no IPv6 stack\n");
		skip();
	}
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	len = peer_addr(&to, AF_INET6, "::ffff:127.0.0.1", f->peer->port);
	assert_int_not_equal(len, 0);
	/* A dual-stack socket: the IPv4 listener sees a plain IPv4 client. */
	connect_and_check_client(f, &f->rec[0], &to, len, "127.0.0.1");
	assert_int_equal(f->peer->conns[0].addr.ss_family, AF_INET);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void connect_local_address_is_honoured(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct sockaddr_storage local;
	const struct sockaddr *seen;
	char ip[INET6_ADDRSTRLEN];
	struct peer_rec *r;
	uint16_t port;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);

	/* 1: another loopback address, ephemeral port. */
	r = &f->rec[0];
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.local = (struct sockaddr *)&local;
	req.local_len = (size_t)peer_addr(&local, AF_INET, "127.0.0.2", 0);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_true(peer_wait_accepted(f->peer, 1, PEER_TIMEOUT_MS));
	seen = (const struct sockaddr *)&f->peer->conns[0].addr;
	assert_string_equal(peer_addr_ip(seen, ip, sizeof(ip)), "127.0.0.2");
	close_and_wait(f, r, 1);

	/* 2: a fixed port on 127.0.0.1. */
	r = &f->rec[1];
	port = peer_free_port(AF_INET, "127.0.0.1");
	assert_int_not_equal(port, 0);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.local = (struct sockaddr *)&local;
	req.local_len = (size_t)peer_addr(&local, AF_INET, "127.0.0.1", port);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_true(peer_wait_accepted(f->peer, 2, PEER_TIMEOUT_MS));
	seen = (const struct sockaddr *)&f->peer->conns[1].addr;
	assert_string_equal(peer_addr_ip(seen, ip, sizeof(ip)), "127.0.0.1");
	assert_int_equal(peer_addr_port(seen), port);
	close_and_wait(f, r, 2);

	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

struct starter {
	iocx_engine *engine;
	struct iocx_connect_request req;
	iocx_conn *conn;
	int rc;
};

static void starter_thread(void *arg)
{
	struct starter *st = arg;

	st->rc = iocx_connect(st->engine, &st->req, &st->conn);
}

static void connect_from_exiting_thread_completes(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct starter st;
	peer_thread t;

	/* A full accept queue keeps the connect pending past the thread. */
	f->peer = peer_listen_full(AF_INET, "127.0.0.1");
	assert_non_null(f->peer);
	memset(&st, 0, sizeof(st));
	st.engine = f->engine;
	peer_req(&st.req, &f->peer->addr, f->peer->addr_len, r);
	t = peer_thread_start(starter_thread, &st);
	assert_non_null(t);
	assert_true(peer_thread_join(t, PEER_TIMEOUT_MS));
	assert_int_equal(st.rc, IOCX_OK);
	assert_non_null(st.conn);
	/* Still pending: the starting thread's exit cancelled nothing. */
	assert_int_equal(atomic_load(&r->connects), 0);

	/* Drain the queue; the retransmitted SYN (after ~1 s) gets in. */
	peer_serve(f->peer, PEER_READ);
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_ptr_equal(r->conn, st.conn);
	close_and_wait(f, r, 1);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * The cases below read the syscall recorder, so they need the static
 * library: a test built with PEER_PUBLIC_API links iocx.dll / libiocx.so,
 * which exports no syscall table.
 */
#ifndef PEER_PUBLIC_API
#ifdef _WIN32
static void connect_updates_connect_context(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event upd, cx, cl;
	SOCKET s;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);

	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	s = peer_sys_socket(0);
	assert_true(s != INVALID_SOCKET);
	assert_int_equal(peer_sys_find(SYS_CONNECT, s, 0, 0, &cx), 1);
	/*
	 * Wine makes the option a no-op (docs/windows.md,
	 * "SO_UPDATE_CONNECT_CONTEXT"), so the recorded
	 * call is the only proof: exactly once, after ConnectEx, before
	 * on_connect reports the socket usable.
	 */
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_UPDATE_CONNECT_CONTEXT, &upd), 1);
	assert_true(upd.ok);
	assert_true(cx.seq < upd.seq);
	assert_true(upd.seq < r->connect_seq);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL), 0);

	close_and_wait(f, r, 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_true(cl.ok);
	assert_true(cl.seq < r->close_seq);
	assert_false(peer_sys_overflowed());
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}
#else
/*
 * Linux has no connect context to update; what stays is the order: one
 * socket, its connect, (epoll) the socket joining the owner's set, then
 * on_connect; no close until iocx_close, and the close before on_close.
 */
static void connect_calls_run_in_order(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event sk, cx, as, cl;
	SOCKET s;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);

	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, &sk),
			 1);
	s = peer_sys_socket(0);
	assert_true(s != INVALID_SOCKET);
	assert_int_equal(peer_sys_find(SYS_CONNECT, s, 0, 0, &cx), 1);
	assert_true(cx.ok);
	assert_true(sk.seq < cx.seq);
	assert_true(cx.seq < r->connect_seq);
	if (strcmp(peer_backend(), "epoll") == 0) {
		assert_int_equal(peer_sys_find(SYS_ASSOCIATE, s, 0, 0, &as),
				 1);
		assert_true(cx.seq < as.seq && as.seq < r->connect_seq);
	} else {
		assert_int_equal(peer_sys_find(SYS_ASSOCIATE, s, 0, 0, NULL),
				 0);
	}
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL), 0);

	close_and_wait(f, r, 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_true(cl.ok);
	assert_true(cl.seq < r->close_seq);
	assert_false(peer_sys_overflowed());
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}
#endif

static void connect_fastopen_flag_connects(void **state)
{
	static const char hello[13] = "hello, world!";
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event tfo, cx;
	struct iocx_stats st;
	SOCKET s;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.flags = IOCX_CONNECT_FASTOPEN;
	req.payload = hello;
	req.payload_len = sizeof(hello);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	/* Where the OS refuses TFO the connect goes on without it. */
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->payload_sent, sizeof(hello));

	s = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, IPPROTO_TCP,
				       PEER_TCP_FASTOPEN_OPT, &tfo), 1);
	assert_int_equal(peer_sys_find(SYS_CONNECT, s, 0, 0, &cx), 1);
	assert_true(tfo.seq < cx.seq);
	/* fastopen reports exactly whether the option was accepted. */
	assert_int_equal(r->fastopen, tfo.ok != 0);
	st = stats_of(f->engine);
	assert_int_equal(st.fastopen_used, r->fastopen ? 1 : 0);

	close_and_wait(f, r, 1);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].len, sizeof(hello));
	assert_memory_equal(f->peer->conns[0].data, hello, sizeof(hello));
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);

	if (!r->fastopen) {
#ifdef _WIN32
		if (!peer_is_wine())
			fail_msg("TCP_FASTOPEN refused with WSA error %d on "
				 "Windows", tfo.err);
		printf("wine %s: TCP_FASTOPEN not implemented (setsockopt "
		       "error %d), fastopen=false observed\n",
		       peer_wine_version(), tfo.err);
#else
		printf("TCP_FASTOPEN_CONNECT refused (errno %d): kernel "
		       "without client TFO, fastopen=false observed\n",
		       tfo.err);
#endif
		skip();
	}
	assert_true(r->fastopen);
}
#endif /* PEER_PUBLIC_API */

static void close_on_connect_hook(struct peer_rec *r, iocx_conn *conn,
				  const struct iocx_connect_result *res)
{
	(void)res;
	r->hook_rc[0] = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
}

static void close_inside_on_connect_works(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct iocx_stats s;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	r->hook_rc[0] = 1;
	r->on_connect_hook = close_on_connect_hook;
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->hook_rc[0], IOCX_OK);
	assert_int_equal(r->reason, IOCX_OK);
	assert_true(r->connect_seq < r->close_seq);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));

	s = stats_of(f->engine);
	assert_int_equal(s.connects_ok, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.open, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

#ifndef PEER_PUBLIC_API
/* One connect to a reading peer, reported open and accepted there. */
static void connect_one_open(struct fx *f, struct peer_rec *r)
{
	struct iocx_connect_request req;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_true(peer_wait_accepted(f->peer, 1, PEER_TIMEOUT_MS));
}

static void close_abort_resets_peer(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct peer_sys_event lg, cl;
	SOCKET s;

	connect_one_open(f, r);
	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);

	/*
	 * An abortive close is SO_LINGER {1, 0} and then closesocket (also
	 * on io_uring: nothing else is in its worker's ring, see
	 * close_ring_abort_socket_gone_at_on_close).
	 */
	s = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_LINGER, &lg), 1);
	assert_true(lg.ok);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_true(lg.seq < cl.seq);
	assert_int_equal(peer_sys_find(SYS_RESET, s, 0, 0, NULL), 0);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);

	if (f->peer->conns[0].error == 0 && peer_is_wine()) {
		/* docs/windows.md, "Data after a reset": a recv() issued
		 * after the RST returns 0. */
		printf("wine %s: recv after a peer reset returns 0 (EOF), not "
		       "WSAECONNRESET; reset not observable\n",
		       peer_wine_version());
		skip();
	}
	assert_int_equal(f->peer->conns[0].error, PEER_ECONNRESET);
}

#ifndef _WIN32
/* Whether fd is closed, waiting up to timeout_ms for it to be. */
static bool fd_closed_within(int fd, unsigned timeout_ms)
{
	uint64_t give_up = peer_now_ms() + timeout_ms;

	while (fcntl(fd, F_GETFD) != -1 || errno != EBADF) {
		if (peer_now_ms() > give_up)
			return false;
		sched_yield();
	}
	return true;
}

/* An on_close_hook: hook_rc[1] = whether socket ctx was closed then. */
static void note_fd_closed(struct peer_rec *r, iocx_conn *conn, int reason)
{
	(void)conn;
	(void)reason;
	r->hook_rc[1] = fcntl((int)(intptr_t)r->ctx, F_GETFD) == -1 &&
			errno == EBADF;
}

static void ignore_recv(iocx_conn *conn, int status, const void *data,
			size_t len, void *user)
{
	(void)conn;
	(void)status;
	(void)data;
	(void)len;
	(void)user;
}

/*
 * An engine with one worker, recorder on, and two connections open to a
 * reading peer: r's, and r2's with a receive in flight (the peer sends
 * nothing), so that the worker has something else in its ring when r
 * closes: io_uring closes through the ring only then.  Returns r's socket,
 * its hook set to note whether it was closed when on_close ran.
 */
static SOCKET open_with_busy_ring(struct fx *f, struct peer_rec *r,
				  struct peer_rec *r2)
{
	struct iocx_connect_request req;
	struct iocx_engine_options o;
	uint64_t give_up;
	SOCKET s;

	iocx_engine_options_init(&o);
	o.workers = 1;
	assert_int_equal(iocx_engine_create(&o, &f->engine), IOCX_OK);
	peer_sys_clear();
	f->live0 = peer_alloc_live();
	connect_one_open(f, r);
	s = peer_sys_socket(0);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r2);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r2->status, IOCX_OK);
	assert_true(peer_wait_accepted(f->peer, 2, PEER_TIMEOUT_MS));
	assert_int_equal(iocx_read_start(r2->conn, ignore_recv), IOCX_OK);
	/* The receive is recorded as its worker issues it. */
	give_up = peer_now_ms() + PEER_TIMEOUT_MS;
	while (strcmp(peer_backend(), "io_uring") == 0 &&
	       peer_sys_find(SYS_RECV, peer_sys_socket(1), 0, 0, NULL) == 0) {
		assert_true(peer_now_ms() <= give_up);
		sched_yield();
	}
	r->ctx = (void *)(intptr_t)s;
	r->on_close_hook = note_fd_closed;
	return s;
}

/* Close r2's connection (open_with_busy_ring) and wait for it. */
static void close_busy(struct fx *f, struct peer_rec *r2)
{
	assert_int_equal(iocx_close(r2->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 2, PEER_TIMEOUT_MS);
	assert_int_equal(r2->reason, IOCX_OK);
}

/*
 * When on_close runs the socket is closed, in both modes, on every
 * backend.  io_uring, with something else in its worker's ring, resets
 * (a connect to AF_UNSPEC, abortive only) and closes through the ring,
 * queued before on_close, which waits for the close's completion; no
 * SO_LINGER then.  Nothing opens a descriptor meanwhile, so the number
 * cannot have been reused.
 */
static void close_socket_gone_at_on_close(struct fx *f,
					  enum iocx_close_mode mode)
{
	struct peer_rec *r = &f->rec[0];
	bool ring = strcmp(peer_backend(), "io_uring") == 0;
	bool abort = mode == IOCX_CLOSE_ABORT;
	struct peer_sys_event cl, rs;
	SOCKET s = open_with_busy_ring(f, r, &f->rec[1]);

	assert_int_equal(iocx_close(r->conn, mode), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	assert_true(r->hook_rc[1]);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_true(cl.ok && cl.seq < r->close_seq);
	assert_int_equal(peer_sys_find(SYS_RESET, s, 0, 0, &rs),
			 ring && abort);
	if (ring && abort)
		assert_true(rs.ok && rs.seq < cl.seq);
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_LINGER, NULL), !ring && abort);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, abort ? PEER_ECONNRESET : 0);
	close_busy(f, &f->rec[1]);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void close_ring_abort_socket_gone_at_on_close(void **state)
{
	close_socket_gone_at_on_close(*state, IOCX_CLOSE_ABORT);
}

static void close_ring_graceful_socket_gone_at_on_close(void **state)
{
	close_socket_gone_at_on_close(*state, IOCX_CLOSE_GRACEFUL);
}

/*
 * io_uring's ring close when the kernel rejects the reset (which cancels
 * the hard-linked close) or fails the close without closing: the backend
 * closes the socket itself, still in the asked mode, and on_close still
 * comes after it.  Returns the socket, whose closes were recorded twice
 * (the queued one, then the backend's).  io_uring only.
 */
static SOCKET ring_close_with_fault(struct fx *f, enum iocx_close_mode mode,
				    atomic_int *fault, int err)
{
	struct peer_rec *r = &f->rec[0];
	SOCKET s;

	if (strcmp(peer_backend(), "io_uring") != 0)
		skip();
	s = open_with_busy_ring(f, r, &f->rec[1]);
	atomic_store(fault, err);
	assert_int_equal(iocx_close(r->conn, mode), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 1, PEER_TIMEOUT_MS);
	atomic_store(fault, 0);
	assert_int_equal(r->reason, IOCX_OK);
	assert_true(r->hook_rc[1]);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL), 2);
	assert_true(peer_sys_last(SYS_CLOSESOCKET, s).ok);
	return s;
}

static void close_ring_reset_rejected_resets_by_hand(void **state)
{
	struct fx *f = *state;
	struct peer_sys_event rs, lg;
	SOCKET s = ring_close_with_fault(f, IOCX_CLOSE_ABORT,
					 &peer_faults.reset_reject, EINVAL);

	assert_int_equal(peer_sys_find(SYS_RESET, s, 0, 0, &rs), 1);
	assert_false(rs.ok);
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_LINGER, &lg), 1);
	assert_true(rs.seq < lg.seq);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, PEER_ECONNRESET);
	close_busy(f, &f->rec[1]);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void close_ring_close_failed_closes_by_hand(void **state)
{
	struct fx *f = *state;

	if (!peer_sys_can_inject())
		skip();		/* the failing close is a NOP */
	ring_close_with_fault(f, IOCX_CLOSE_GRACEFUL, &peer_faults.close_err,
			      EIO);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, 0);
	close_busy(f, &f->rec[1]);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* Whether n closes of s are recorded, waiting up to timeout_ms. */
static bool close_records_within(SOCKET s, size_t n, unsigned timeout_ms)
{
	uint64_t give_up = peer_now_ms() + timeout_ms;

	while (peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL) < n) {
		if (peer_now_ms() > give_up)
			return false;
		sched_yield();
	}
	return peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL) == n;
}

/* An engine with options.batch_closes and one worker, recorder on. */
static void batch_closes_engine(struct fx *f)
{
	struct iocx_engine_options o;

	iocx_engine_options_init(&o);
	o.workers = 1;
	o.batch_closes = true;
	assert_int_equal(iocx_engine_create(&o, &f->engine), IOCX_OK);
	peer_sys_clear();
	f->live0 = peer_alloc_live();
}

/*
 * options.batch_closes on io_uring: an abortive close queues the reset
 * and then the close to the ring (no SO_LINGER, no close() of its own);
 * the peer sees the reset and the socket ends up closed.  The other
 * backends ignore the option and reset with SO_LINGER {1, 0}.
 */
static void batch_closes_abort_resets_through_ring(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct peer_sys_event rs, cl;
	bool ring = strcmp(peer_backend(), "io_uring") == 0;
	SOCKET s;

	batch_closes_engine(f);
	connect_one_open(f, r);
	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);

	s = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_int_equal(peer_sys_find(SYS_RESET, s, 0, 0, &rs), ring);
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_LINGER, NULL), !ring);
	if (ring)
		assert_true(rs.seq < cl.seq);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, PEER_ECONNRESET);
	assert_true(fd_closed_within((int)s, PEER_TIMEOUT_MS));
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * io_uring with batch_closes: open r's connection and close it in mode
 * with fault armed to err (disarmed once on_close ran: the batched ring
 * operations were queued before it).  Returns its socket.  Skips on the
 * other backends, which ignore the option.
 */
static SOCKET batch_close_with_fault(struct fx *f, struct peer_rec *r,
				     enum iocx_close_mode mode,
				     atomic_int *fault, int err)
{
	if (strcmp(peer_backend(), "io_uring") != 0)
		skip();
	batch_closes_engine(f);
	connect_one_open(f, r);
	atomic_store(fault, err);
	assert_int_equal(iocx_close(r->conn, mode), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	atomic_store(fault, 0);
	return peer_sys_socket(0);
}

/*
 * A reset the kernel rejects before running it cancels its hard-linked
 * close too (the whole link fails at submission): the backend then closes
 * the socket itself, still abortively.  io_uring only.
 */
static void batch_closes_rejected_reset_still_resets(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct peer_sys_event rs, lg;
	SOCKET s = batch_close_with_fault(f, r, IOCX_CLOSE_ABORT,
					  &peer_faults.reset_reject, EINVAL);

	assert_int_equal(peer_sys_find(SYS_RESET, s, 0, 0, &rs), 1);
	assert_false(rs.ok);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, PEER_ECONNRESET);
	/* The queued close, then the backend's own (recorded once it has
	 * returned, so wait for the record), with linger first. */
	assert_true(close_records_within(s, 2, PEER_TIMEOUT_MS));
	assert_true(fd_closed_within((int)s, 0));
	assert_int_equal(peer_sys_find(SYS_SETSOCKOPT, s, SOL_SOCKET,
				       SO_LINGER, &lg), 1);
	assert_true(rs.seq < lg.seq);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * A batched close the kernel fails without closing (close_err: here an
 * I/O error) must not lose the socket: the backend closes it itself.
 * io_uring only.
 */
static void batch_closes_failed_close_still_closes(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct peer_sys_event cl;
	SOCKET s;

	if (!peer_sys_can_inject())
		skip();		/* the failing close is a NOP */
	s = batch_close_with_fault(f, r, IOCX_CLOSE_GRACEFUL,
				   &peer_faults.close_err, EIO);

	/* The queued close that failed, then the backend's own. */
	assert_true(close_records_within(s, 2, PEER_TIMEOUT_MS));
	assert_true(fd_closed_within((int)s, 0));
	cl = peer_sys_last(SYS_CLOSESOCKET, s);
	assert_true(cl.ok);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].error, 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * Closes still queued to a ring when the engine is destroyed run before
 * iocx_engine_destroy() returns: every socket is closed by then.
 */
static void batch_closes_destroy_closes_every_socket(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	SOCKET s[4];
	const long n = 4;

	batch_closes_engine(f);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	for (long i = 0; i < n; i++) {
		peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	}
	peer_assert_wait(&f->trk, n, 0, PEER_TIMEOUT_MS);
	/* All accepted first: a later accept could reuse a closed number. */
	assert_true(peer_wait_accepted(f->peer, n, PEER_TIMEOUT_MS));
	for (long i = 0; i < n; i++) {
		assert_int_equal(f->rec[i].status, IOCX_OK);
		s[i] = peer_sys_socket((size_t)i);
		assert_true(s[i] != INVALID_SOCKET);
	}
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_wait(&f->trk, n, n, PEER_TIMEOUT_MS);
	for (long i = 0; i < n; i++) {
		assert_int_equal(f->rec[i].reason, IOCX_E_SHUTDOWN);
		assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s[i], 0, 0,
					       NULL), 1);
		/* Destroy resets; on io_uring through the ring. */
		assert_int_equal(peer_sys_find(SYS_RESET, s[i], 0, 0, NULL),
				 strcmp(peer_backend(), "io_uring") == 0);
		/* Closed already, not after a wait. */
		assert_true(fd_closed_within((int)s[i], 0));
	}
	peer_assert_clean(&f->trk);
}
#endif
#endif /* PEER_PUBLIC_API */

static void connect_without_on_close_releases(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;
	struct iocx_stats s;

	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	assert_non_null(f->peer);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.on_close = NULL;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	/* No on_close to wait for: the freed memory is the signal. */
	peer_assert_no_leak(f->live0);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	s = stats_of(f->engine);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.open, 0);
	assert_int_equal(atomic_load(&r->closes), 0);
	peer_assert_clean(&f->trk);
}

static void engine_create_reports_backend_and_workers(void **state)
{
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	(void)state;
	iocx_engine_options_init(&o);
	assert_int_equal(o.workers, 0);
	assert_int_equal(o.batch, 0);
	assert_int_equal(o.max_in_flight, 0);
	assert_int_equal(o.connect_payload_cap, 0);

	o.workers = 3;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_string_equal(iocx_engine_backend(e), peer_backend());
	assert_int_equal(iocx_engine_workers(e), 3);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);

	e = NULL;
	assert_int_equal(iocx_engine_create(NULL, &e), IOCX_OK);
	assert_int_equal(iocx_engine_workers(e), peer_cpus());
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
}

static void engine_create_backend_option_picks_backend(void **state)
{
	iocx_engine *sentinel = (iocx_engine *)(uintptr_t)0x5EA1;
	struct iocx_engine_options o;
	long live = peer_alloc_live();
	iocx_engine *e;

	(void)state;
	iocx_engine_options_init(&o);
	assert_null(o.backend);
	o.workers = 1;
	/* The backend under test by name, and "auto" (which on Linux
	 * IOCX_BACKEND, set by meson, overrides: the same one). */
	o.backend = peer_backend();
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_string_equal(iocx_engine_backend(e), peer_backend());
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	o.backend = "auto";
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_string_equal(iocx_engine_backend(e), peer_backend());
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
#ifndef _WIN32
	/* epoll runs wherever Linux does, whatever the environment says. */
	o.backend = "epoll";
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_string_equal(iocx_engine_backend(e), "epoll");
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
#endif

	/* Names this platform lacks change nothing. */
	e = sentinel;
	o.backend = "kqueue";
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_NOTSUP);
#ifdef _WIN32
	o.backend = "epoll";
#else
	o.backend = "iocp";
#endif
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_NOTSUP);
	assert_ptr_equal(e, sentinel);
	assert_int_equal(peer_alloc_live(), live);
}

static void engine_create_destroy_repeated_leaks_nothing(void **state)
{
	struct iocx_engine_options o;
	unsigned h0, h1;
	long live0;
	iocx_engine *e;

	(void)state;
	/* One warm-up cycle: Winsock and ntdll create some objects lazily. */
	assert_int_equal(iocx_engine_create(NULL, &e), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	h0 = peer_handle_count();
	live0 = peer_alloc_live();

	for (unsigned i = 0; i < 50; i++) {
		iocx_engine_options_init(&o);
		o.workers = 1 + i % 4;
		e = NULL;
		assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
		assert_non_null(e);
		assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	}
	/* destroy returns after everything is freed: no wait needed. */
	assert_int_equal(peer_alloc_live(), live0);
	h1 = peer_handle_count();
	/*
	 * A per-cycle leak (port, worker thread, event) would add at least
	 * 50 handles.  Allow 2 for process-wide objects the system may
	 * still create lazily on a later cycle (loader, thread pool).
	 */
	if (h1 > h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count grew from %u to %u over 50 cycles", h0,
			 h1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(connect_loopback_succeeds,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_refused_reports_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_ipv6_loopback_succeeds, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_v4mapped_reaches_ipv4_listener, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_local_address_is_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_from_exiting_thread_completes, setup,
			teardown),
#ifndef PEER_PUBLIC_API
#ifdef _WIN32
		cmocka_unit_test_setup_teardown(
			connect_updates_connect_context, setup_sys, teardown),
#else
		cmocka_unit_test_setup_teardown(
			connect_calls_run_in_order, setup_sys, teardown),
#endif
		cmocka_unit_test_setup_teardown(
			connect_fastopen_flag_connects, setup_sys, teardown),
#endif
		cmocka_unit_test_setup_teardown(
			close_inside_on_connect_works, setup, teardown),
#ifndef PEER_PUBLIC_API
		cmocka_unit_test_setup_teardown(close_abort_resets_peer,
						setup_sys, teardown),
#endif
#if !defined(_WIN32) && !defined(PEER_PUBLIC_API)
		cmocka_unit_test_setup_teardown(
			close_ring_abort_socket_gone_at_on_close,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			close_ring_graceful_socket_gone_at_on_close,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			close_ring_reset_rejected_resets_by_hand,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			close_ring_close_failed_closes_by_hand,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			batch_closes_abort_resets_through_ring,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			batch_closes_rejected_reset_still_resets,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			batch_closes_failed_close_still_closes,
			setup_sys_bare, teardown),
		cmocka_unit_test_setup_teardown(
			batch_closes_destroy_closes_every_socket,
			setup_sys_bare, teardown),
#endif
		cmocka_unit_test_setup_teardown(
			connect_without_on_close_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_reports_backend_and_workers, setup_bare,
			teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_backend_option_picks_backend, setup_bare,
			teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_destroy_repeated_leaks_nothing,
			setup_bare, teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("net_connect", tests, NULL, NULL);
}
