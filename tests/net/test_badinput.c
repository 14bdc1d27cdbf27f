/*
 * Synchronous failures: every bad input listed at iocx_connect() returns
 * its exact code, invokes no callback, touches no socket and changes no
 * counter; a destroying engine gives IOCX_E_SHUTDOWN, the in-flight cap
 * IOCX_E_LIMIT; bad engine options and NULL handles are refused.
 *
 * "No callback" is checked without sleeping: after the bad calls a good
 * connect runs to its on_close, and connections complete in order of
 * their own events only, so the check is that the bad record still counts
 * zero after that, plus the syscall log showing no socket was ever made
 * for a bad request (nothing could call back).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

struct fx {
	iocx_engine *engine;
	struct peer *peer;		/* accepts */
	struct peer *full;		/* keeps connects pending */
	struct peer_tracker trk;
	struct peer_tracker bad_trk;	/* must stay at zero */
	struct peer_rec rec[4];
	struct peer_rec bad;
	struct iocx_connect_request good;	/* to peer, user = bad */
	iocx_conn *hook_conn;		/* a connect made by a hook */
	long live0;
};

static int fx_setup(void **state, unsigned max_in_flight)
{
	struct iocx_engine_options o;
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	peer_tracker_init(&f->trk);
	peer_tracker_init(&f->bad_trk);
	peer_recs_init(f->rec, 4, &f->trk);
	peer_recs_init(&f->bad, 1, &f->bad_trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	f->full = peer_listen_full(AF_INET, "127.0.0.1");
	if (f->peer == NULL || f->full == NULL)
		return -1;
	peer_req(&f->good, &f->peer->addr, f->peer->addr_len, &f->bad);
	peer_sys_install();
	iocx_engine_options_init(&o);
	o.max_in_flight = max_in_flight;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	peer_sys_clear();
	f->live0 = peer_alloc_live();
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, 0);
}

static int setup_cap2(void **state)
{
	return fx_setup(state, 2);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_sys_uninstall();
	peer_close(f->peer);
	peer_close(f->full);
	free(f);
	return 0;
}

static struct iocx_stats stats_of(iocx_engine *e)
{
	struct iocx_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(iocx_engine_stats(e, &s), IOCX_OK);
	return s;
}

/*
 * Run one good connect to its on_close (its callbacks are the fence) and
 * then require that the bad record saw nothing.
 */
static void assert_bad_silent(struct fx *f)
{
	struct peer_rec *r = &f->rec[3];
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;
	struct peer_tracker t, t0;

	peer_tracker_snapshot(&f->trk, &t0);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, t0.connects + 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, t0.connects + 1, t0.closes + 1,
			 PEER_TIMEOUT_MS);
	peer_tracker_snapshot(&f->bad_trk, &t);
	assert_int_equal(t.connects, 0);
	assert_int_equal(t.closes, 0);
	assert_int_equal(atomic_load(&f->bad.connects), 0);
	assert_int_equal(atomic_load(&f->bad.closes), 0);
	peer_assert_clean(&f->trk);
}

/* Expect rc from iocx_connect(req) with *out untouched. */
static void expect_rc(struct fx *f, const struct iocx_connect_request *req,
		      int rc, const char *what)
{
	iocx_conn *sentinel = (iocx_conn *)(uintptr_t)0x5EA1;
	iocx_conn *out = sentinel;
	int got = iocx_connect(f->engine, req, &out);

	if (got != rc)
		fail_msg("%s: iocx_connect returned %s, expected %s", what,
			 iocx_error_name(got), iocx_error_name(rc));
	if (out != sentinel)
		fail_msg("%s: *out was written on failure", what);
	/* NULL out is allowed and must give the same answer. */
	got = iocx_connect(f->engine, req, NULL);
	if (got != rc)
		fail_msg("%s (out = NULL): returned %s, expected %s", what,
			 iocx_error_name(got), iocx_error_name(rc));
}

static void connect_bad_input_returns_exact_code(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct sockaddr_storage v6, loc, other;
	struct iocx_stats before, after;
	unsigned char *huge;
	iocx_conn *out = NULL;
	uint16_t port = f->peer->port;
	int len6 = peer_addr(&v6, AF_INET6, "::1", port);

	before = stats_of(f->engine);

	/* NULLs and flags: IOCX_E_INVAL. */
	assert_int_equal(iocx_connect(NULL, &f->good, &out), IOCX_E_INVAL);
	assert_null(out);
	expect_rc(f, NULL, IOCX_E_INVAL, "NULL request");
	req = f->good;
	req.remote = NULL;
	expect_rc(f, &req, IOCX_E_INVAL, "NULL remote");
	req = f->good;
	req.on_connect = NULL;
	expect_rc(f, &req, IOCX_E_INVAL, "NULL on_connect");
	req = f->good;
	req.payload = NULL;
	req.payload_len = 5;
	expect_rc(f, &req, IOCX_E_INVAL, "payload_len without payload");
	req = f->good;
	req.flags = 1u << 1;
	expect_rc(f, &req, IOCX_E_INVAL, "unknown flag 0x2");
	req.flags = IOCX_CONNECT_FASTOPEN | 0x80000000u;
	expect_rc(f, &req, IOCX_E_INVAL, "unknown flag 0x80000000");
	req = f->good;
	req.payload_ownership = (enum iocx_payload_ownership)2;
	expect_rc(f, &req, IOCX_E_INVAL, "unknown payload ownership");

	/* Families: IOCX_E_AFNOSUPPORT. */
	memset(&other, 0, sizeof(other));
	req = f->good;
	req.remote = (struct sockaddr *)&other;
	req.remote_len = sizeof(other);
	other.ss_family = AF_UNSPEC;
	expect_rc(f, &req, IOCX_E_AFNOSUPPORT, "remote AF_UNSPEC");
	other.ss_family = AF_UNIX;
	expect_rc(f, &req, IOCX_E_AFNOSUPPORT, "remote AF_UNIX");
	other.ss_family = AF_IPX;
	expect_rc(f, &req, IOCX_E_AFNOSUPPORT, "remote AF_IPX");
	req = f->good;
	req.local = (struct sockaddr *)&loc;
	req.local_len = (size_t)peer_addr(&loc, AF_INET6, "::1", 0);
	expect_rc(f, &req, IOCX_E_AFNOSUPPORT, "IPv6 local, IPv4 remote");
	req.local = (struct sockaddr *)&other;
	req.local_len = sizeof(other);
	expect_rc(f, &req, IOCX_E_AFNOSUPPORT, "local AF_UNIX");

	/* Lengths: IOCX_E_ADDRLEN. */
	req = f->good;
	req.remote_len = sizeof(struct sockaddr_in) - 1;
	expect_rc(f, &req, IOCX_E_ADDRLEN, "IPv4 remote one byte short");
	req.remote_len = 0;
	expect_rc(f, &req, IOCX_E_ADDRLEN, "remote_len 0");
	req.remote = (struct sockaddr *)&v6;
	req.remote_len = sizeof(struct sockaddr_in);
	expect_rc(f, &req, IOCX_E_ADDRLEN, "IPv6 remote with IPv4 length");
	req.remote_len = (size_t)len6 - 1;
	expect_rc(f, &req, IOCX_E_ADDRLEN, "IPv6 remote one byte short");
	req = f->good;
	req.local = (struct sockaddr *)&loc;
	req.local_len = (size_t)peer_addr(&loc, AF_INET, "127.0.0.1", 0) - 1;
	expect_rc(f, &req, IOCX_E_ADDRLEN, "IPv4 local one byte short");

	/* Unusable remotes: IOCX_E_ADDRNOTAVAIL. */
	req = f->good;
	req.remote = (struct sockaddr *)&other;
	req.remote_len = (size_t)peer_addr(&other, AF_INET, "0.0.0.0", port);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "remote 0.0.0.0");
	req.remote_len = (size_t)peer_addr(&other, AF_INET6, "::", port);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "remote [::]");
	req.remote_len = (size_t)peer_addr(&other, AF_INET, "127.0.0.1", 0);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "remote port 0");
	req.remote_len = (size_t)peer_addr(&other, AF_INET6, "::1", 0);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "remote [::1]:0");

	/* Size: IOCX_E_MSGSIZE (a real buffer: nothing may read past it). */
	huge = malloc(IOCX_MAX_PAYLOAD + 1u);
	assert_non_null(huge);
	req = f->good;
	req.payload = huge;
	req.payload_len = IOCX_MAX_PAYLOAD + 1u;
	expect_rc(f, &req, IOCX_E_MSGSIZE, "payload above IOCX_MAX_PAYLOAD");
	req.payload_ownership = IOCX_PAYLOAD_BORROW;
	expect_rc(f, &req, IOCX_E_MSGSIZE, "borrowed payload above max");
	free(huge);

	/* Nothing reached the OS, nothing was counted or kept. */
	assert_int_equal(peer_sys_count(), 0);
	after = stats_of(f->engine);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(peer_alloc_live(), f->live0);

	assert_bad_silent(f);
	peer_assert_no_leak(f->live0);
}

static void connect_unspecified_remote_is_not_connected(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req = f->good;
	struct sockaddr_storage any;

	/*
	 * Wine would connect 0.0.0.0:port to the local listener
	 * (docs/windows.md, "ConnectEx and the first payload"), so only
	 * the engine's own check keeps this portable.
	 */
	req.remote = (struct sockaddr *)&any;
	req.remote_len = (size_t)peer_addr(&any, AF_INET, "0.0.0.0",
					   f->peer->port);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "0.0.0.0 to a listening port");
	assert_int_equal(peer_sys_count(), 0);
	assert_bad_silent(f);
	/* The listener saw only the fence connection. */
	assert_true(peer_wait_accepted(f->peer, 1, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->accepted, 1);
	peer_assert_no_leak(f->live0);
}

static void connect_v4mapped_unspecified_remote_is_rejected(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req = f->good;
	struct sockaddr_storage any;

	/*
	 * ::ffff:0.0.0.0 is 0.0.0.0 on a dual-stack socket: Wine connects
	 * it to the local listener just like 0.0.0.0 (measured), Windows
	 * refuses it, so the engine's own check must cover it too.
	 */
	req.remote = (struct sockaddr *)&any;
	req.remote_len = (size_t)peer_addr(&any, AF_INET6, "::ffff:0.0.0.0",
					   f->peer->port);
	assert_int_not_equal(req.remote_len, 0);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL,
		  "::ffff:0.0.0.0 to a listening port");
	assert_int_equal(peer_sys_count(), 0);
	assert_bad_silent(f);
	assert_true(peer_wait_accepted(f->peer, 1, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->accepted, 1);
	peer_assert_no_leak(f->live0);
}

#ifdef _WIN32
#define OS_ADDRNOTAVAIL WSAEADDRNOTAVAIL
#else
#define OS_ADDRNOTAVAIL EADDRNOTAVAIL
#endif

/*
 * A bind the OS refuses (192.0.2.1 is TEST-NET-1, on no interface here)
 * fails iocx_connect synchronously; iocx_last_os_error() then holds the
 * OS's code for it.  The next call resets it: a success and a failure
 * found without the OS both leave 0.
 */
static void connect_bind_failure_sets_last_os_error(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req = f->good;
	struct sockaddr_storage local;
	struct peer_rec *r = &f->rec[0];
	iocx_conn *conn = NULL;

	req.local = (struct sockaddr *)&local;
	req.local_len = (size_t)peer_addr(&local, AF_INET, "192.0.2.1", 0);
	assert_int_not_equal(req.local_len, 0);
	expect_rc(f, &req, IOCX_E_ADDRNOTAVAIL, "bind to 192.0.2.1");
	assert_int_equal(iocx_last_os_error(), OS_ADDRNOTAVAIL);

	req = f->good;
	req.on_connect = NULL;
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_last_os_error(), 0);

	req.local = (struct sockaddr *)&local;
	req.local_len = sizeof(struct sockaddr_in);
	req.on_connect = f->good.on_connect;
	assert_int_equal(iocx_connect(f->engine, &req, NULL),
			 IOCX_E_ADDRNOTAVAIL);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(iocx_last_os_error(), 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(atomic_load(&f->bad.connects), 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* In on_connect(CANCELLED) during destroy: connecting must be refused. */
static void connect_during_destroy_hook(struct peer_rec *r, iocx_conn *conn,
					const struct iocx_connect_result *res)
{
	struct fx *f = r->ctx;
	iocx_conn *sentinel = (iocx_conn *)(uintptr_t)0x5EA1;
	iocx_conn *out = sentinel;

	(void)conn;
	r->hook_rc[0] = res->status;
	r->hook_rc[1] = iocx_connect(f->engine, &f->good, &out);
	r->hook_rc[2] = out == sentinel;
}

static void connect_while_destroying_reports_shutdown(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;

	r->ctx = f;
	r->hook_rc[1] = 1;
	r->on_connect_hook = connect_during_destroy_hook;
	peer_req(&req, &f->full->addr, f->full->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;

	assert_int_equal(atomic_load(&r->connects), 1);
	assert_int_equal(atomic_load(&r->closes), 1);
	assert_int_equal(r->hook_rc[0], IOCX_E_CANCELLED);
	assert_int_equal(r->hook_rc[1], IOCX_E_SHUTDOWN);
	assert_int_equal(r->hook_rc[2], 1);
	assert_int_equal(r->reason, IOCX_E_SHUTDOWN);
	/* Destroy has returned: no callback can come any more. */
	assert_int_equal(atomic_load(&f->bad.connects), 0);
	assert_int_equal(atomic_load(&f->bad.closes), 0);
	/* Only the one pending connect ever got a socket. */
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	peer_assert_clean(&f->trk);
}

/* In on_connect of a cancelled connect: the slot is free again. */
static void reconnect_hook(struct peer_rec *r, iocx_conn *conn,
			   const struct iocx_connect_result *res)
{
	struct fx *f = r->ctx;
	struct iocx_connect_request req;

	(void)conn;
	(void)res;
	peer_req(&req, &f->full->addr, f->full->addr_len, &f->rec[2]);
	r->hook_rc[0] = iocx_connect(f->engine, &req, &f->hook_conn);
}

static void connect_above_in_flight_cap_reports_limit(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct iocx_stats before, after;
	iocx_conn *c0 = NULL, *c1 = NULL;

	peer_req(&req, &f->full->addr, f->full->addr_len, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &c0), IOCX_OK);
	peer_req(&req, &f->full->addr, f->full->addr_len, &f->rec[1]);
	assert_int_equal(iocx_connect(f->engine, &req, &c1), IOCX_OK);
	before = stats_of(f->engine);
	assert_int_equal(before.in_flight, 2);
	assert_int_equal(atomic_load(&f->rec[0].connects), 0);

	/* Full: to any address, with any payload. */
	expect_rc(f, &f->good, IOCX_E_LIMIT, "third connect, cap 2");
	after = stats_of(f->engine);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 2);

	/* in_flight drops before on_connect: its callback may connect. */
	f->rec[0].ctx = f;
	f->rec[0].hook_rc[0] = 1;
	f->rec[0].on_connect_hook = reconnect_hook;
	assert_int_equal(iocx_close(c0, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_E_CANCELLED);
	assert_int_equal(f->rec[0].hook_rc[0], IOCX_OK);
	assert_non_null(f->hook_conn);
	assert_int_equal(stats_of(f->engine).in_flight, 2);

	assert_int_equal(iocx_close(c1, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(f->hook_conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 3, 3, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[1].status, IOCX_E_CANCELLED);
	assert_int_equal(f->rec[2].status, IOCX_E_CANCELLED);
	after = stats_of(f->engine);
	assert_int_equal(after.in_flight, 0);
	assert_int_equal(after.connects_started, 3);
	assert_int_equal(after.connects_cancelled, 3);

	assert_bad_silent(f);
	peer_assert_no_leak(f->live0);
}

static void engine_create_bad_options_return_inval(void **state)
{
	struct iocx_engine_options o;
	iocx_engine *sentinel = (iocx_engine *)(uintptr_t)0x5EA1;
	iocx_engine *e = sentinel;
	long live = peer_alloc_live();

	(void)state;
	assert_int_equal(iocx_engine_create(NULL, NULL), IOCX_E_INVAL);
	iocx_engine_options_init(&o);
	assert_int_equal(iocx_engine_create(&o, NULL), IOCX_E_INVAL);
	o.batch = 4097;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
	assert_ptr_equal(e, sentinel);
	assert_int_equal(peer_alloc_live(), live);

	/* The largest batch is fine. */
	o.batch = 4096;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_true(e != sentinel && e != NULL);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(peer_alloc_live(), live);

	/* A send_chunk no 32-bit completion count holds. */
	if (SIZE_MAX > IOCX_MAX_SEND_CHUNK) {
		e = sentinel;
		o.send_chunk = (size_t)IOCX_MAX_SEND_CHUNK + 1;
		assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
		assert_ptr_equal(e, sentinel);
		assert_int_equal(peer_alloc_live(), live);
	}
	o.send_chunk = IOCX_MAX_SEND_CHUNK;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(peer_alloc_live(), live);
}

static void null_handles_are_rejected(void **state)
{
	struct fx *f = *state;
	struct iocx_stats s;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	assert_int_equal(iocx_engine_destroy(NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_stats(NULL, &s), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_stats(f->engine, NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_workers(NULL), 0);
	assert_non_null(iocx_engine_backend(NULL));
	assert_int_equal(iocx_close(NULL, IOCX_CLOSE_GRACEFUL), IOCX_E_INVAL);
	assert_null(iocx_conn_user(NULL));
	iocx_engine_options_init(NULL);
	assert_non_null(iocx_error_name(IOCX_E_REFUSED));
	assert_string_equal(iocx_error_name(IOCX_E_REFUSED), "IOCX_E_REFUSED");
	assert_non_null(iocx_error_name(12345));
	assert_non_null(iocx_strerror(-12345));

	/* The allocator cannot be swapped while an engine exists. */
	assert_int_equal(iocx_set_allocator(NULL, peer_test_free),
			 IOCX_E_INVAL);
	assert_int_equal(iocx_set_allocator(peer_test_alloc, NULL),
			 IOCX_E_INVAL);
	assert_int_equal(iocx_set_allocator(peer_test_alloc, peer_test_free),
			 IOCX_E_ALREADY);

	/* An unknown close mode is refused and closes nothing. */
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(iocx_close(conn, (enum iocx_close_mode)7),
			 IOCX_E_INVAL);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			connect_bad_input_returns_exact_code, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_unspecified_remote_is_not_connected, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_v4mapped_unspecified_remote_is_rejected, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_bind_failure_sets_last_os_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_while_destroying_reports_shutdown, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_above_in_flight_cap_reports_limit, setup_cap2,
			teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_bad_options_return_inval, setup,
			teardown),
		cmocka_unit_test_setup_teardown(null_handles_are_rejected,
						setup, teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("net_badinput", tests, NULL, NULL);
}
