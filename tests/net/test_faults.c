/*
 * Error paths, driven by failing calls in the backend's syscall table
 * (iocx__win_sys, iocx__linux_sys) and the test allocator: each
 * synchronous failure returns its mapped code with no callback, no
 * counter change, no leak and the socket closed; each failure after the
 * connect was issued reaches on_connect with the mapped code and the raw
 * OS error (WSA code or errno), the socket closed before it runs.  On
 * io_uring a connect the kernel refuses at once is of the second kind
 * (peer_connect_fails_async()).
 */
#ifndef _WIN32
#define _GNU_SOURCE		/* liburing.h, through linux/sys.h */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"
#ifndef _WIN32
#include <errno.h>
#include <stdatomic.h>

#include "linux/sys.h"
#endif

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_tracker bad_trk;	/* must stay at zero */
	struct peer_rec rec[2];
	struct peer_rec bad;
	struct peer_tracker async_trk;	/* connects failing in on_connect */
	struct peer_rec async[4];
	long live_pre;			/* library blocks before the engine */
	long live0;			/* ... with the idle engine */
	unsigned h0;
};

static int fx_setup(void **state, bool engine, size_t cap)
{
	struct iocx_engine_options o;
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	peer_tracker_init(&f->trk);
	peer_tracker_init(&f->bad_trk);
	peer_recs_init(f->rec, 2, &f->trk);
	peer_recs_init(&f->bad, 1, &f->bad_trk);
	peer_tracker_init(&f->async_trk);
	peer_recs_init(f->async, 4, &f->async_trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	f->h0 = peer_handle_count();
	f->live_pre = peer_alloc_live();
	peer_sys_install();
	iocx_engine_options_init(&o);
	o.connect_payload_cap = cap;
	if (engine && iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	peer_sys_clear();
	f->live0 = peer_alloc_live();
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, true, 0);
}

static int setup_cap100(void **state)
{
	return fx_setup(state, true, 100);
}

static int setup_bare(void **state)
{
	return fx_setup(state, false, 0);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	peer_alloc_fail_nth(0);
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

	memset(&s, 0, sizeof(s));
	assert_int_equal(iocx_engine_stats(e, &s), IOCX_OK);
	return s;
}

/* Disarm every fault (the wrappers stay and keep recording). */
static void disarm(void)
{
	atomic_store(&peer_faults.socket_err, 0);
	atomic_store(&peer_faults.bind_err, 0);
	atomic_store(&peer_faults.connect_err, 0);
	atomic_store(&peer_faults.associate_err, 0);
	atomic_store(&peer_faults.port_err, 0);
	atomic_store(&peer_faults.update_ctx_err, 0);
	atomic_store(&peer_faults.send_err, 0);
	atomic_store(&peer_faults.send_skip, 0);
	atomic_store(&peer_faults.send_max, 0);
	atomic_store(&peer_faults.recv_err, 0);
	atomic_store(&peer_faults.shutdown_err, 0);
	atomic_store(&peer_faults.post_err, 0);
}

/* Connect and send faults need injection support (io_uring: a kernel
 * with IORING_NOP_INJECT_RESULT); skip the test when it lacks it. */
static void require_injection(void)
{
	if (peer_sys_can_inject())
		return;
	printf("%s: this kernel cannot inject operation results "
	       "(IORING_NOP_INJECT_RESULT)\n", peer_backend());
	skip();
}

/*
 * A synchronous failure: iocx_connect(req) returns rc, leaves *out,
 * counters and memory alone, and closes every socket it opened.
 */
static void expect_sync_failure(struct fx *f,
				const struct iocx_connect_request *req,
				int rc, const char *what)
{
	iocx_conn *sentinel = (iocx_conn *)(uintptr_t)0x5EA1;
	iocx_conn *out = sentinel;
	struct iocx_stats before = stats_of(f->engine), after;
	int fired = atomic_load(&peer_faults.fired);
	SOCKET s;
	int got;

	peer_sys_clear();
	got = iocx_connect(f->engine, req, &out);
	if (got != rc)
		fail_msg("%s: iocx_connect returned %s, expected %s", what,
			 iocx_error_name(got), iocx_error_name(rc));
	assert_ptr_equal(out, sentinel);
	assert_int_equal(atomic_load(&peer_faults.fired), fired + 1);
	after = stats_of(f->engine);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(peer_alloc_live(), f->live0);
	for (size_t i = 0; (s = peer_sys_socket(i)) != INVALID_SOCKET; i++) {
		if (peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL) != 1)
			fail_msg("%s: socket %llu was not closed exactly once",
				 what, (unsigned long long)s);
	}
}

/*
 * A connect that fails after iocx_connect returned OK: on_connect reports
 * rc with the raw error err and no payload, the socket (the only one) is
 * closed once, before on_connect; the handle is then released.
 */
static void expect_async_failure(struct fx *f,
				 const struct iocx_connect_request *req,
				 int rc, int err, const char *what)
{
	struct peer_tracker t;
	struct peer_rec *r;
	struct iocx_connect_request rq = *req;
	struct peer_sys_event cl;
	iocx_conn *conn = NULL;
	SOCKET sock;

	peer_tracker_snapshot(&f->async_trk, &t);
	assert_true(t.connects < 4);
	r = &f->async[t.connects];
	rq.user = r;
	peer_sys_clear();
	assert_int_equal(iocx_connect(f->engine, &rq, &conn), IOCX_OK);
	peer_assert_wait(&f->async_trk, t.connects + 1, t.closes,
			 PEER_TIMEOUT_MS);
	if (r->status != rc || r->os_code != (uint32_t)err)
		fail_msg("%s: on_connect %s (os %u), expected %s (os %d)",
			 what, iocx_error_name(r->status), r->os_code,
			 iocx_error_name(rc), err);
	assert_int_equal(r->payload_sent, 0);
	sock = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, &cl), 1);
	assert_true(cl.seq < r->connect_seq);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->async_trk, t.connects + 1, t.closes + 1,
			 PEER_TIMEOUT_MS);
	peer_assert_clean(&f->async_trk);
	peer_assert_no_leak(f->live0);
}

/*
 * A connect the kernel refuses at once (connect_err armed): returned by
 * iocx_connect, or on io_uring reported to on_connect.
 */
static void expect_connect_failure(struct fx *f,
				   const struct iocx_connect_request *req,
				   int rc, int err, const char *what)
{
	if (peer_connect_fails_async())
		expect_async_failure(f, req, rc, err, what);
	else
		expect_sync_failure(f, req, rc, what);
}

/*
 * With the faults off, one good connect runs to its on_close; by then
 * no callback may have reached the records of the failed requests.
 */
static void assert_bad_silent(struct fx *f)
{
	struct peer_rec *r = &f->rec[1];
	struct iocx_connect_request req;
	struct peer_tracker t0, t;
	iocx_conn *conn = NULL;

	disarm();
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
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

#ifdef _WIN32
static void connect_bind_exhausted_reports_ports_exhausted(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct sockaddr_storage local;

	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	/* Out of ephemeral ports shows as WSAENOBUFS or WSAEADDRINUSE. */
	atomic_store(&peer_faults.bind_err, WSAENOBUFS);
	expect_sync_failure(f, &req, IOCX_E_PORTS_EXHAUSTED,
			    "ephemeral bind, WSAENOBUFS");
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	atomic_store(&peer_faults.bind_err, WSAEADDRINUSE);
	expect_sync_failure(f, &req, IOCX_E_PORTS_EXHAUSTED,
			    "ephemeral bind, WSAEADDRINUSE");
	/* An explicit port in use is the caller's address, not exhaustion. */
	req.local = (struct sockaddr *)&local;
	req.local_len = (size_t)peer_addr(&local, AF_INET, "127.0.0.1",
					  peer_free_port(AF_INET, "127.0.0.1"));
	expect_sync_failure(f, &req, IOCX_E_ADDRINUSE,
			    "fixed-port bind, WSAEADDRINUSE");
	assert_bad_silent(f);
}
#else
/*
 * Linux picks the port at connect time, per destination: running out of
 * ports is connect's EADDRNOTAVAIL (no bind is made without a local
 * address), or bind's EADDRINUSE for a local address with port 0.
 */
static void connect_ports_exhausted_reports_ports_exhausted(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct sockaddr_storage local;

	require_injection();
	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	atomic_store(&peer_faults.connect_err, EADDRNOTAVAIL);
	expect_connect_failure(f, &req, IOCX_E_PORTS_EXHAUSTED, EADDRNOTAVAIL,
			       "connect EADDRNOTAVAIL, ephemeral port");
	assert_int_equal(peer_sys_find(SYS_BIND, INVALID_SOCKET, 0, 0, NULL),
			 0);
	atomic_store(&peer_faults.connect_err, 0);

	req.local = (struct sockaddr *)&local;
	req.local_len = (size_t)peer_addr(&local, AF_INET, "127.0.0.1", 0);
	atomic_store(&peer_faults.bind_err, EADDRINUSE);
	expect_sync_failure(f, &req, IOCX_E_PORTS_EXHAUSTED,
			    "bind to port 0, EADDRINUSE");
	/* An explicit port in use is the caller's address, not exhaustion. */
	req.local_len = (size_t)peer_addr(&local, AF_INET, "127.0.0.1",
					  peer_free_port(AF_INET, "127.0.0.1"));
	expect_sync_failure(f, &req, IOCX_E_ADDRINUSE,
			    "fixed-port bind, EADDRINUSE");
	assert_bad_silent(f);
}
#endif

static void connect_socket_failure_reports_mapped_error(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	atomic_store(&peer_faults.socket_err, PEER_EMFILE);
	expect_sync_failure(f, &req, IOCX_E_NOFILE, "socket EMFILE");
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, INVALID_SOCKET, 0, 0,
				       NULL), 0);
#ifdef _WIN32
	/* WSASocket's other way of saying it has no handle left. */
	atomic_store(&peer_faults.socket_err, WSAENOBUFS);
	expect_sync_failure(f, &req, IOCX_E_NOFILE, "socket WSAENOBUFS");
#else
	atomic_store(&peer_faults.socket_err, ENFILE);
	expect_sync_failure(f, &req, IOCX_E_NOFILE, "socket ENFILE");
	atomic_store(&peer_faults.socket_err, ENOBUFS);
	expect_sync_failure(f, &req, IOCX_E_NOMEM, "socket ENOBUFS");
#endif
	assert_bad_silent(f);
}

/*
 * The real thing: with the descriptor limit lowered to what the process
 * holds plus a few, connects to a full listener (each keeps its socket,
 * the SYN unanswered) run into it.  iocx_connect then returns
 * IOCX_E_NOFILE with no callback, and once a connection is closed a
 * connect succeeds again.
 */
#define NOFILE_EXTRA 16
#define NOFILE_RECS (4 * NOFILE_EXTRA)

static void connect_out_of_descriptors_reports_nofile(void **state)
{
	struct fx *f = *state;
	struct peer *full = peer_listen_full(AF_INET, "127.0.0.1");
	struct peer_tracker trk, t;
	struct peer_rec recs[NOFILE_RECS];
	iocx_conn *conns[NOFILE_RECS];
	struct iocx_connect_request req;
	int n = 0, rc = IOCX_OK;

	assert_non_null(full);
	peer_tracker_init(&trk);
	peer_recs_init(recs, NOFILE_RECS, &trk);
	if (!peer_handles_limit(NOFILE_EXTRA)) {
		peer_close(full);
		printf("%s: no descriptor limit to lower\n", peer_backend());
		skip();
	}
	while (n < NOFILE_RECS) {
		peer_req(&req, &full->addr, full->addr_len, &recs[n]);
		rc = iocx_connect(f->engine, &req, &conns[n]);
		if (rc != IOCX_OK)
			break;
		n++;
	}
	/* Close one: its descriptor is back, and a connect gets it. */
	if (rc == IOCX_E_NOFILE && n > 0) {
		assert_int_equal(iocx_close(conns[n - 1], IOCX_CLOSE_ABORT),
				 IOCX_OK);
		peer_assert_wait(&trk, 1, 1, PEER_TIMEOUT_MS);
		peer_req(&req, &full->addr, full->addr_len, &recs[n]);
		assert_int_equal(iocx_connect(f->engine, &req, &conns[n - 1]),
				 IOCX_OK);
	}
	peer_handles_unlimit();
	printf("%s: %d connects, then %s\n", peer_backend(), n,
	       iocx_error_name(rc));
	assert_int_equal(rc, IOCX_E_NOFILE);
	assert_true(n > 0);
	/* The failed calls called nothing back. */
	peer_tracker_snapshot(&trk, &t);
	assert_int_equal(t.connects, 1);
	assert_int_equal(atomic_load(&recs[n - 1].connects), 1);
	for (int i = 0; i < n; i++)
		assert_int_equal(iocx_close(conns[i], IOCX_CLOSE_ABORT),
				 IOCX_OK);
	peer_assert_wait(&trk, n + 1, n + 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&trk);
	peer_close(full);
	peer_assert_no_leak(f->live0);
}

static void connect_connectex_failure_reports_mapped_error(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	require_injection();
	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	req.payload = "hello, world!";
	req.payload_len = 13;
	atomic_store(&peer_faults.connect_err, PEER_EADDRINUSE);
	expect_connect_failure(f, &req, IOCX_E_ADDRINUSE, PEER_EADDRINUSE,
			       "connect EADDRINUSE");
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	atomic_store(&peer_faults.connect_err, PEER_ENETUNREACH);
	expect_connect_failure(f, &req, IOCX_E_NETUNREACH, PEER_ENETUNREACH,
			       "connect ENETUNREACH");
	assert_bad_silent(f);
}

static void connect_association_failure_closes_socket(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	if (strcmp(peer_backend(), "io_uring") == 0) {
		printf("io_uring: a socket joins no set or port\n");
		skip();
	}
	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	/*
	 * 87 is what a failed association reports (docs/windows.md,
	 * "Completion port and workers"); it is not
	 * the caller's bad argument, so it must not read as IOCX_E_INVAL
	 * (nor must epoll_ctl's EINVAL).
	 */
#ifdef _WIN32
	atomic_store(&peer_faults.associate_err, ERROR_INVALID_PARAMETER);
#else
	atomic_store(&peer_faults.associate_err, EINVAL);
#endif
	expect_sync_failure(f, &req, IOCX_E_SYSTEM,
			    "association with the port / set, invalid");
	assert_int_equal(peer_sys_find(SYS_SOCKET, INVALID_SOCKET, 0, 0, NULL),
			 1);
	assert_bad_silent(f);
}

static void connect_alloc_failure_reports_nomem(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct iocx_stats before = stats_of(f->engine), after;
	iocx_conn *sentinel = (iocx_conn *)(uintptr_t)0x5EA1;
	iocx_conn *out = sentinel;
	long failures = peer_alloc_failures();

	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->bad);
	peer_alloc_fail_nth(1);
	assert_int_equal(iocx_connect(f->engine, &req, &out), IOCX_E_NOMEM);
	peer_alloc_fail_nth(0);
	assert_int_equal(peer_alloc_failures(), failures + 1);
	assert_ptr_equal(out, sentinel);
	after = stats_of(f->engine);
	assert_memory_equal(&before, &after, sizeof(before));
	/* Nothing reached the OS. */
	assert_int_equal(peer_sys_count(), 0);
	assert_bad_silent(f);
}

static void engine_create_port_failure_cleans_up(void **state)
{
	struct fx *f = *state;
	iocx_engine *sentinel = (iocx_engine *)(uintptr_t)0x5EA1;
	iocx_engine *e = sentinel;
	unsigned h1;

#ifdef _WIN32
	atomic_store(&peer_faults.port_err, ERROR_ACCESS_DENIED);
#else
	atomic_store(&peer_faults.port_err, EMFILE);
#endif
	assert_int_equal(iocx_engine_create(NULL, &e), IOCX_E_SYSTEM);
	assert_int_equal(atomic_load(&peer_faults.fired), 1);
	assert_ptr_equal(e, sentinel);
	assert_int_equal(peer_alloc_live(), f->live_pre);
	/* The allocator may be swapped again: no engine is left alive. */
	assert_int_equal(iocx_set_allocator(peer_test_alloc, peer_test_free),
			 IOCX_OK);
	disarm();
	h1 = peer_handle_count();
	if (h1 > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after the failed create, %u before",
			 h1, f->h0);

	/* And the next create works. */
	assert_int_equal(iocx_engine_create(NULL, &e), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(peer_alloc_live(), f->live_pre);
}

#ifndef _WIN32
/* A kernel older than 6.1: rings with these flags are refused. */
static int (*ring_init_next)(unsigned, struct io_uring *,
			     struct io_uring_params *);
static atomic_uint ring_inits, ring_refused;

static int old_kernel_uring_init(unsigned n, struct io_uring *ring,
				 struct io_uring_params *p)
{
	const unsigned newer = IORING_SETUP_SINGLE_ISSUER |
			       IORING_SETUP_DEFER_TASKRUN |
			       IORING_SETUP_R_DISABLED;

	atomic_fetch_add(&ring_inits, 1);
	if (p->flags & newer) {
		atomic_fetch_add(&ring_refused, 1);
		return -EINVAL;
	}
	return ring_init_next(n, ring, p);
}

/*
 * A worker's ring is asked for with SINGLE_ISSUER | DEFER_TASKRUN; a
 * kernel that refuses them gets the older ring, and connects work.
 */
static void engine_create_ring_flags_refused_falls_back(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_engine_options o;
	struct iocx_connect_request req;
	static const char hello[] = "hello";
	int rc;

	if (strcmp(peer_backend(), "io_uring") != 0) {
		printf("%s: no io_uring ring to set up\n", peer_backend());
		skip();
	}
	ring_init_next = iocx__linux_sys.uring_init;
	iocx__linux_sys.uring_init = old_kernel_uring_init;
	iocx_engine_options_init(&o);
	o.workers = 1;
	rc = iocx_engine_create(&o, &f->engine);
	iocx__linux_sys.uring_init = ring_init_next;
	assert_int_equal(rc, IOCX_OK);
	assert_int_equal(atomic_load(&ring_refused), 1);
	assert_int_equal(atomic_load(&ring_inits), 2);

	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = hello;
	req.payload_len = sizeof(hello) - 1;
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->payload_sent, sizeof(hello) - 1);
	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].len, sizeof(hello) - 1);
	assert_memory_equal(f->peer->conns[0].data, hello, sizeof(hello) - 1);
	peer_assert_clean(&f->trk);
}
#endif

static void engine_create_alloc_failures_clean_up(void **state)
{
	struct fx *f = *state;
	struct iocx_engine_options o;
	iocx_engine *e = NULL;
	int rc = IOCX_E_NOMEM;
	long n;
	unsigned h1;

	iocx_engine_options_init(&o);
	o.workers = 2;
	/* Fail the 1st, 2nd, ... allocation until the create succeeds. */
	for (n = 1; n <= 64 && rc != IOCX_OK; n++) {
		peer_alloc_fail_nth(n);
		rc = iocx_engine_create(&o, &e);
		peer_alloc_fail_nth(0);
		if (rc == IOCX_OK)
			break;
		if (rc != IOCX_E_NOMEM)
			fail_msg("allocation %ld failed: create returned %s, "
				 "expected IOCX_E_NOMEM", n,
				 iocx_error_name(rc));
		assert_int_equal(peer_alloc_live(), f->live_pre);
	}
	assert_int_equal(rc, IOCX_OK);
	printf("engine create makes %ld allocations\n", n - 1);
	assert_true(n > 1);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(peer_alloc_live(), f->live_pre);
	h1 = peer_handle_count();
	if (h1 > f->h0 + PEER_HANDLE_SLACK)
		fail_msg("handle count %u after %ld failed creates, %u before",
			 h1, n - 1, f->h0);
}

#ifdef _WIN32
static void connect_update_context_failure_reports_error(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event cl;
	struct iocx_stats s;
	iocx_conn *conn = NULL;
	SOCKET sock;

	atomic_store(&peer_faults.update_ctx_err, WSAECONNRESET);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(atomic_load(&peer_faults.fired), 1);
	assert_int_equal(r->status, IOCX_E_RESET);
	assert_int_equal(r->os_code, WSAECONNRESET);
	/* The socket is closed before on_connect reports the failure. */
	sock = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, &cl), 1);
	assert_true(cl.seq < r->connect_seq);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_ok, 0);
	assert_int_equal(s.connects_failed, 1);
	assert_int_equal(s.errors[-IOCX_E_RESET], 1);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 1);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	/* Closed once: iocx_close did not close it again. */
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, NULL), 1);
	disarm();
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}
#else
/*
 * The Linux counterpart: no connect context, but the payload head is sent
 * right after the connect completes; its failure reaches on_connect with
 * the errno, the socket closed before it runs.
 */
static void connect_head_send_failure_reports_error(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event cl, snd;
	struct iocx_stats s;
	iocx_conn *conn = NULL;
	SOCKET sock;

	require_injection();
	atomic_store(&peer_faults.send_err, ECONNRESET);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = "hello, world!";
	req.payload_len = 13;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(atomic_load(&peer_faults.fired), 1);
	assert_int_equal(r->status, IOCX_E_RESET);
	assert_int_equal(r->os_code, ECONNRESET);
	assert_int_equal(r->payload_sent, 0);
	sock = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_SEND, sock, 0, 0, &snd), 1);
	assert_int_equal(snd.bytes, 13);
	assert_false(snd.ok);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, &cl), 1);
	assert_true(snd.seq < cl.seq && cl.seq < r->connect_seq);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_ok, 0);
	assert_int_equal(s.connects_failed, 1);
	assert_int_equal(s.errors[-IOCX_E_RESET], 1);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 1);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, NULL), 1);
	disarm();
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}
#endif

static void connect_payload_send_failure_reports_error(void **state)
{
	static unsigned char payload[1000];
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	struct peer_sys_event cl, snd;
	struct iocx_stats s;
	iocx_conn *conn = NULL;
	SOCKET sock;

	require_injection();
	memset(payload, 'p', sizeof(payload));
#ifndef _WIN32
	/* Linux sends the 100-byte head itself: let that one through. */
	atomic_store(&peer_faults.send_skip, 1);
#endif
	atomic_store(&peer_faults.send_err, PEER_ECONNRESET);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = payload;
	req.payload_len = sizeof(payload);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_RESET);
	assert_int_equal(r->os_code, PEER_ECONNRESET);
	/* The capped head went out; the send of the rest failed. */
	assert_int_equal(r->payload_sent, 100);
	sock = peer_sys_socket(0);
#ifdef _WIN32
	assert_int_equal(peer_sys_find(SYS_SEND, sock, 0, 0, &snd), 1);
#else
	assert_int_equal(peer_sys_find(SYS_SEND, sock, 0, 0, &snd), 2);
	assert_int_equal(snd.bytes, 100);
	assert_true(snd.ok);
	snd = peer_sys_last(SYS_SEND, sock);
#endif
	assert_int_equal(snd.bytes, sizeof(payload) - 100);
	assert_false(snd.ok);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, sock, 0, 0, &cl), 1);
	assert_true(snd.seq < cl.seq && cl.seq < r->connect_seq);

	s = stats_of(f->engine);
	assert_int_equal(s.connects_failed, 1);
	assert_int_equal(s.errors[-IOCX_E_RESET], 1);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	disarm();
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void connect_partial_send_reissues_rest(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	const size_t len = 64 * 1024, step = 1000;
	unsigned char *want = malloc(len);
	size_t sends;
	SOCKET sock;

	assert_non_null(want);
	for (size_t i = 0; i < len; i++)
		want[i] = (unsigned char)(i * 7 + i / 253);
	/* Every WSASend offers at most 1000 bytes, so each completes short. */
	atomic_store(&peer_faults.send_max, (unsigned)step);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = want;
	req.payload_len = len;
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->payload_sent, len);
	sock = peer_sys_socket(0);
	sends = peer_sys_find(SYS_SEND, sock, 0, 0, NULL);
#ifndef _WIN32
	sends--;	/* the head's own send, which 1000 does not cut */
#endif
	assert_int_equal(sends, (len - 100 + step - 1) / step);

	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->peer->conns[0].len, len);
	assert_memory_equal(f->peer->conns[0].data, want, len);
	assert_int_equal(stats_of(f->engine).payload_bytes, len);
	disarm();
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
	free(want);
}

/*
 * Destroy while every post fails (Windows: PostQueuedCompletionStatus out
 * of memory): it gives up posting after a bounded number of tries, the
 * workers deliver the SHUTDOWN and exit without their events, and destroy
 * returns within a few of their wait slices (1 s each).  Linux's posts
 * are queue pushes that cannot fail: skipped there.
 */
static void destroy_post_failures_still_finish(void **state)
{
	struct fx *f = *state;
	struct peer_rec *r = &f->rec[0];
	struct iocx_connect_request req;
	uint64_t t0;

#ifndef _WIN32
	printf("%s: posts cannot fail\n", peer_backend());
	skip();
#endif
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	atomic_store(&peer_faults.post_err, 8);	/* NOT_ENOUGH_MEMORY */
	t0 = peer_now_ms();
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	printf("destroy with every post failing: %llu ms\n",
	       (unsigned long long)(peer_now_ms() - t0));
	assert_true(atomic_load(&peer_faults.fired) > 0);
	disarm();
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_E_SHUTDOWN);
	assert_true(peer_now_ms() - t0 < PEER_SLOW_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live_pre);
}

#ifndef _WIN32
/*
 * io_uring: a cancel that finds nothing while the connect is still in
 * flight (cancel_err = ENOENT; with real sockets the kernel always finds
 * a pending connect) would leave the connect to the SYN timeout, about
 * 127 s.  The backend shuts the socket down instead, which ends the
 * connect at once: the deadline reports IOCX_E_TIMEDOUT, a close
 * IOCX_E_CANCELLED, within a few seconds.  The other backends have no
 * cancel that can miss.
 */
static void connect_cancel_missed_shuts_socket_down(void **state)
{
	struct fx *f = *state;
	struct peer *full = peer_listen_full(AF_INET, "127.0.0.1");
	struct peer_sys_event sh, cl;
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;
	struct peer_rec *r;
	SOCKET s;

	assert_non_null(full);
	if (strcmp(peer_backend(), "io_uring") != 0) {
		peer_close(full);
		skip();
	}
	require_injection();
	atomic_store(&peer_faults.cancel_err, ENOENT);

	/* The deadline's cancel misses. */
	r = &f->async[0];
	peer_req(&req, &full->addr, full->addr_len, r);
	req.deadline_ms = 50;
	peer_sys_clear();
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->async_trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_TIMEDOUT);
	s = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_CANCEL, s, 0, 0, NULL), 1);
	assert_false(peer_sys_last(SYS_CANCEL, s).ok);
	assert_int_equal(peer_sys_find(SYS_SHUTDOWN, s, SHUT_RDWR, 0, &sh), 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, &cl), 1);
	assert_true(sh.seq < cl.seq && cl.seq < r->connect_seq);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->async_trk, 1, 1, PEER_TIMEOUT_MS);

	/* A close's cancel misses. */
	r = &f->async[1];
	peer_req(&req, &full->addr, full->addr_len, r);
	peer_sys_clear();
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->async_trk, 2, 2, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_E_CANCELLED);
	s = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_SHUTDOWN, s, SHUT_RDWR, 0, NULL), 1);
	assert_int_equal(peer_sys_find(SYS_CLOSESOCKET, s, 0, 0, NULL), 1);

	peer_close(full);
	peer_assert_clean(&f->async_trk);
	assert_bad_silent(f);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
#ifdef _WIN32
		cmocka_unit_test_setup_teardown(
			connect_bind_exhausted_reports_ports_exhausted, setup,
			teardown),
#else
		cmocka_unit_test_setup_teardown(
			connect_ports_exhausted_reports_ports_exhausted, setup,
			teardown),
#endif
		cmocka_unit_test_setup_teardown(
			connect_out_of_descriptors_reports_nofile, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			destroy_post_failures_still_finish, setup, teardown),
#ifndef _WIN32
		cmocka_unit_test_setup_teardown(
			connect_cancel_missed_shuts_socket_down, setup,
			teardown),
#endif
		cmocka_unit_test_setup_teardown(
			connect_socket_failure_reports_mapped_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_connectex_failure_reports_mapped_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_association_failure_closes_socket, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_alloc_failure_reports_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_port_failure_cleans_up, setup_bare,
			teardown),
		cmocka_unit_test_setup_teardown(
			engine_create_alloc_failures_clean_up, setup_bare,
			teardown),
#ifndef _WIN32
		cmocka_unit_test_setup_teardown(
			engine_create_ring_flags_refused_falls_back,
			setup_bare, teardown),
#endif
#ifdef _WIN32
		cmocka_unit_test_setup_teardown(
			connect_update_context_failure_reports_error, setup,
			teardown),
#else
		cmocka_unit_test_setup_teardown(
			connect_head_send_failure_reports_error, setup,
			teardown),
#endif
		cmocka_unit_test_setup_teardown(
			connect_payload_send_failure_reports_error,
			setup_cap100, teardown),
		cmocka_unit_test_setup_teardown(
			connect_partial_send_reissues_rest, setup_cap100,
			teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("net_faults", tests, NULL, NULL);
}
