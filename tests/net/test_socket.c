/*
 * The user's access to the socket, on real loopback sockets (IOCP under
 * Wine, and natively on both Linux backends): an option set in the
 * on_socket hook is read back with getsockopt through iocx_conn_socket();
 * the local address is the one the peer sees; a failing hook fails the
 * connect once and leaves no socket, handle or block behind.  And send
 * backpressure: a peer that does not read makes iocx_send() hit
 * options.max_queued_bytes, and on_drained follows once it read; 16 MiB
 * in one send arrive byte-exact, offered to the OS in chunks.  And
 * iocx_detach: the caller's plain send and recv work on the socket, and
 * the engine makes no call on it any more.
 *
 * Callbacks run on workers (the hook of a first attempt on the calling
 * thread), so they only record; the main thread asserts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#endif

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

/* Bytes of the big sends: a pattern that differs at every offset mod 251. */
#define BIG (16u << 20)
static unsigned char *big;

static int group_setup(void **state)
{
	(void)state;
	big = malloc(BIG);
	if (big == NULL)
		return -1;
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i % 251);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(big);
	return 0;
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
	peer_assert_no_leak(f->live0);
}

static void note_port_reuse(struct peer_rec *r, iocx_conn *conn,
			    const struct iocx_connect_result *res)
{
	(void)conn;
	r->hook_rc[0] = res->port_reuse ? 1 : 2;
}

/*
 * Windows shares a wildcard socket's port per 4-tuple with
 * SO_REUSE_UNICASTPORT (Windows 10 and later); Linux never binds one
 * before the connect, so it has nothing to set.
 */
static void wildcard_connect_reports_port_reuse(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	f->rec[0].on_connect_hook = note_port_reuse;
	peer_req(&req, &f->addr, f->addr_len, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_OK);
	close_conn(f, conn, 1);
	peer_assert_no_leak(f->live0);
#ifdef _WIN32
	if (f->rec[0].hook_rc[0] == 2 && peer_is_wine()) {
		printf("SKIP: Wine %s refuses SO_REUSE_UNICASTPORT; the "
		       "wildcard bind reserves a port per socket as before\n",
		       peer_wine_version());
		skip();
	}
	assert_int_equal(f->rec[0].hook_rc[0], 1);
#else
	assert_int_equal(f->rec[0].hook_rc[0], 2);
#endif
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

/* ---- backpressure ------------------------------------------------------ */

#define QLIMIT (4u << 20)
#define PIECE (256u << 10)
#define SMALL_BUF (64 * 1024)

static struct {
	atomic_int sent;		/* on_sent calls */
	atomic_int sent_ok;
	atomic_int drained;		/* on_drained calls */
	atomic_llong drained_queued;
	peer_event *drained_ev;
	peer_event *all_sent_ev;
	atomic_int want_sent;		/* on_sent calls that set all_sent_ev */
} bp;

static void bp_on_sent(iocx_conn *c, int status, size_t bytes, void *user)
{
	(void)c;
	(void)bytes;
	(void)user;
	if (status == IOCX_OK)
		atomic_fetch_add(&bp.sent_ok, 1);
	/* Count, then look at want_sent; the main thread stores want_sent,
	 * then looks at sent: one of the two sees the last call. */
	if (atomic_fetch_add(&bp.sent, 1) + 1 == atomic_load(&bp.want_sent))
		peer_event_set(bp.all_sent_ev);
}

static void bp_on_drained(iocx_conn *c, size_t queued, void *user)
{
	(void)c;
	(void)user;
	atomic_store(&bp.drained_queued, (long long)queued);
	atomic_fetch_add(&bp.drained, 1);
	peer_event_set(bp.drained_ev);
}

static int small_sndbuf_hook(iocx_socket_t s, int family, void *user)
{
	int size = SMALL_BUF;

	(void)family;
	(void)user;
	return setsockopt(s, SOL_SOCKET, SO_SNDBUF, (const char *)&size,
			  sizeof(size));
}

/* Replace f's engine with one made with o (the first test's is idle). */
static void engine_with(struct fx *f, const struct iocx_engine_options *o)
{
	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(iocx_engine_create(o, &f->engine), IOCX_OK);
	f->live0 = peer_alloc_live();
}

/* The same with the syscall recorder, which must come before the engine. */
static void engine_recorded(struct fx *f, const struct iocx_engine_options *o)
{
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_sys_install();
	engine_with(f, o);
}

static void bp_reset(int want_sent)
{
	atomic_store(&bp.sent, 0);
	atomic_store(&bp.sent_ok, 0);
	atomic_store(&bp.drained, 0);
	atomic_store(&bp.want_sent, want_sent);
	bp.drained_ev = peer_event_new();
	bp.all_sent_ev = peer_event_new();
	assert_non_null(bp.drained_ev);
	assert_non_null(bp.all_sent_ev);
}

static void bp_free(void)
{
	peer_event_free(bp.drained_ev);
	peer_event_free(bp.all_sent_ev);
}

/*
 * Small socket buffers on both ends keep what the kernels hold far below
 * half the limit, so the queue cannot fall below half (and on_drained
 * cannot come) before the peer reads.
 */
static void slow_reader_hits_limit_then_drained(void **state)
{
	struct fx *f = *state;
	struct iocx_engine_options o;
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;
	int size = SMALL_BUF, rc = IOCX_OK, err = -1;
	size_t queued = 0, got;
	unsigned char *rx;

	iocx_engine_options_init(&o);
	o.max_queued_bytes = QLIMIT;
	engine_with(f, &o);
	assert_int_equal(setsockopt(f->ls, SOL_SOCKET, SO_RCVBUF,
				    (const char *)&size, sizeof(size)),
			 0);
	peer_req(&req, &f->addr, f->addr_len, &f->rec[0]);
	req.on_socket = small_sndbuf_hook;
	req.on_drained = bp_on_drained;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_OK);
	f->accepted = peer_raw_accept(f->ls, PEER_TIMEOUT_MS);
	assert_true(f->accepted != INVALID_SOCKET);

	/* The peer reads nothing: send until the limit refuses one. */
	bp_reset(0);
	for (int i = 0; i < 64 && rc == IOCX_OK; i++) {
		rc = iocx_send(conn, big + queued, PIECE, IOCX_PAYLOAD_BORROW,
			       bp_on_sent, NULL);
		if (rc == IOCX_OK)
			queued += PIECE;
	}
	assert_int_equal(rc, IOCX_E_LIMIT);
	assert_true(queued <= QLIMIT);
	assert_true(iocx_conn_queued_bytes(conn) <= QLIMIT);
	atomic_store(&bp.want_sent, (int)(queued / PIECE));
	if (atomic_load(&bp.sent) == atomic_load(&bp.want_sent))
		peer_event_set(bp.all_sent_ev);
	/* Nothing was read, so nothing can have drained. */
	assert_int_equal(atomic_load(&bp.drained), 0);

	/* The peer reads everything: every byte in order, then on_drained
	 * once and every on_sent OK. */
	rx = malloc(queued);
	assert_non_null(rx);
	got = peer_raw_recv(f->accepted, rx, queued, PEER_SLOW_TIMEOUT_MS,
			    &err);
	assert_int_equal(got, queued);
	assert_int_equal(err, 0);
	assert_memory_equal(rx, big, queued);
	assert_true(peer_event_wait(bp.drained_ev, PEER_TIMEOUT_MS));
	assert_true(peer_event_wait(bp.all_sent_ev, PEER_TIMEOUT_MS));
	assert_int_equal(atomic_load(&bp.drained), 1);
	assert_true(atomic_load(&bp.drained_queued) < QLIMIT / 2);
	assert_int_equal(atomic_load(&bp.sent_ok),
			 atomic_load(&bp.want_sent));
	assert_int_equal(iocx_conn_queued_bytes(conn), 0);
	/* Sending works again. */
	assert_int_equal(iocx_send(conn, big, PIECE, IOCX_PAYLOAD_BORROW,
				   bp_on_sent, NULL),
			 IOCX_OK);
	got = peer_raw_recv(f->accepted, rx, PIECE, PEER_TIMEOUT_MS, &err);
	assert_int_equal(got, PIECE);
	assert_memory_equal(rx, big, PIECE);
	free(rx);
	close_conn(f, conn, 1);
	bp_free();
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void big_send_arrives_byte_exact_in_chunks(void **state)
{
	struct fx *f = *state;
	struct iocx_engine_options o;
	iocx_conn *conn;
	unsigned char *rx = malloc(BIG);
	size_t got, sends, i;
	int err = -1;

	assert_non_null(rx);
	iocx_engine_options_init(&o);
	engine_recorded(f, &o);
	conn = open_conn(f, 0, NULL);
	f->accepted = peer_raw_accept(f->ls, PEER_TIMEOUT_MS);
	assert_true(f->accepted != INVALID_SOCKET);
	peer_sys_clear();
	bp_reset(1);
	assert_int_equal(iocx_send(conn, big, BIG, IOCX_PAYLOAD_BORROW,
				   bp_on_sent, NULL),
			 IOCX_OK);
	got = peer_raw_recv(f->accepted, rx, BIG, 60000, &err);
	assert_int_equal(got, BIG);
	assert_int_equal(err, 0);
	assert_memory_equal(rx, big, BIG);
	assert_true(peer_event_wait(bp.all_sent_ev, PEER_TIMEOUT_MS));
	assert_int_equal(atomic_load(&bp.sent_ok), 1);
	/* No operation offered the OS more than a chunk. */
	sends = peer_sys_find(SYS_SEND, INVALID_SOCKET, 0, 0, NULL);
	assert_false(peer_sys_overflowed());
	assert_true(sends >= BIG / IOCX_DEFAULT_SEND_CHUNK);
	for (i = 0; i < peer_sys_count(); i++) {
		struct peer_sys_event ev = peer_sys_event(i);

		if (ev.kind == SYS_SEND)
			assert_true(ev.bytes <= IOCX_DEFAULT_SEND_CHUNK);
	}
	close_conn(f, conn, 1);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_sys_uninstall();
	free(rx);
	bp_free();
	peer_assert_clean(&f->trk);
}

/* ---- detach ----------------------------------------------------------- */

static void set_blocking(SOCKET s)
{
#ifdef _WIN32
	u_long off = 0;

	assert_int_equal(ioctlsocket(s, FIONBIO, &off), 0);
#else
	int fl = fcntl(s, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(s, F_SETFL, fl & ~O_NONBLOCK), 0);
#endif
}

static void detach_then_plain_send_recv(void **state)
{
	struct fx *f = *state;
	struct iocx_engine_options o;
	struct iocx_stats before, after;
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	iocx_conn *conn;
	char buf[5];
	size_t got;
	int err = -1, rc;

	iocx_engine_options_init(&o);
	engine_recorded(f, &o);
	conn = open_conn(f, 0, NULL);
	f->accepted = peer_raw_accept(f->ls, PEER_TIMEOUT_MS);
	assert_true(f->accepted != INVALID_SOCKET);
	rc = iocx_detach(conn, &s);
	if (rc == IOCX_E_NOTSUP && peer_is_wine()) {
		/* The connection stayed the engine's, unchanged. */
		assert_int_not_equal(iocx_conn_socket(conn),
				     IOCX_INVALID_SOCKET);
		close_conn(f, conn, 1);
		peer_sys_uninstall();
		printf("SKIP: Wine %s: NtSetInformationFile refuses "
		       "FileReplaceCompletionInformation, so a socket cannot "
		       "leave its completion port (Windows 8.1 and later "
		       "allow it)\n", peer_wine_version());
		skip();
	}
	assert_int_equal(rc, IOCX_OK);
	assert_true(s != IOCX_INVALID_SOCKET);
	peer_sys_clear();
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].reason, IOCX_E_DETACHED);
	assert_int_equal(iocx_engine_stats(f->engine, &before), IOCX_OK);

	/* The caller's own I/O, both ways. */
	set_blocking(s);
	assert_int_equal(send(s, "hello", 5, 0), 5);
	got = peer_raw_recv(f->accepted, buf, 5, PEER_TIMEOUT_MS, &err);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(send(f->accepted, "world", 5, 0), 5);
	got = peer_raw_recv(s, buf, 5, PEER_TIMEOUT_MS, &err);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "world", 5);

	/* The engine saw none of it and made no call on the socket, also
	 * not when it was destroyed. */
	assert_int_equal(iocx_engine_stats(f->engine, &after), IOCX_OK);
	assert_int_equal(after.bytes_sent, before.bytes_sent);
	assert_int_equal(after.bytes_received, before.bytes_received);
	assert_int_equal(after.closed, 1);
	assert_int_equal(after.open, 0);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	for (size_t i = 0; i < peer_sys_count(); i++)
		assert_true(peer_sys_event(i).s != s);
	peer_sys_uninstall();
	/* Still open, so ours to close. */
	assert_int_equal(closesocket(s), 0);
	peer_assert_clean(&f->trk);
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
		cmocka_unit_test_setup_teardown(
			slow_reader_hits_limit_then_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(
			big_send_arrives_byte_exact_in_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(detach_then_plain_send_recv,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			wildcard_connect_reports_port_reuse, setup, teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("socket", tests, group_setup,
					   group_teardown);
}
