/*
 * The Windows engine's own resolver (src/win/resolve_gai.c): asynchronous
 * GetAddrInfoExW answered through the engine's completion port.
 *
 * No query may reach the DNS server the machine is configured with.
 * Under Wine, GetAddrInfoExW asks the host's libc, whose hosts file
 * answers "localhost" with 127.0.0.1 only: an AAAA query for it would go
 * on to the configured server.  So the real lookups here give the request
 * a local 127.0.0.1 address, which leaves only the A query (docs/names.md);
 * everything else runs against a scripted GetAddrInfoExW swapped into the
 * backend's syscall table, which never looks anything up and finishes
 * when the test says (with a handle for GetAddrInfoExCancel, as Windows
 * gives, or without, as Wine 8 does).
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
#include "win/resolve_gai.h"
#include "win/sys.h"

#define NCALLS 32

typedef void (CALLBACK *gai_routine)(DWORD, DWORD, LPOVERLAPPED);

/* ---- a scripted GetAddrInfoExW ------------------------------------------ */

struct fake_call {
	LPOVERLAPPED ov;
	gai_routine routine;
	int family;
	bool finished;
};

static struct {
	iocx_mutex lock;
	bool give_handle;		/* Windows: a handle; Wine 8: NULL */
	bool pass_through;		/* the real one, its handle recorded */
	struct fake_call calls[NCALLS];
	int ncalls;
	long cancels;			/* GetAddrInfoExCancel calls */
	long real_handles;		/* real lookups that gave a handle */
	long real_calls;
} fake;

static gai_routine routine_of(LPLOOKUPSERVICE_COMPLETION_ROUTINE p)
{
	union {
		LPLOOKUPSERVICE_COMPLETION_ROUTINE p;
		gai_routine fn;
	} u = { .p = p };

	return u.fn;
}

static int WSAAPI real_gai(PCWSTR name, PCWSTR service, DWORD ns,
			   LPGUID nsp, const ADDRINFOEXW *hints,
			   PADDRINFOEXW *res, PTIMEVAL timeout,
			   LPOVERLAPPED ov,
			   LPLOOKUPSERVICE_COMPLETION_ROUTINE done,
			   LPHANDLE handle)
{
	int rc = GetAddrInfoExW(name, service, ns, nsp, hints, res, timeout,
				ov, done, handle);

	iocx__mutex_lock(&fake.lock);
	fake.real_calls++;
	if (rc == WSA_IO_PENDING && *handle)
		fake.real_handles++;
	iocx__mutex_unlock(&fake.lock);
	return rc;
}

static int WSAAPI fake_gai(PCWSTR name, PCWSTR service, DWORD ns,
			   LPGUID nsp, const ADDRINFOEXW *hints,
			   PADDRINFOEXW *res, PTIMEVAL timeout,
			   LPOVERLAPPED ov,
			   LPLOOKUPSERVICE_COMPLETION_ROUTINE done,
			   LPHANDLE handle)
{
	int i;

	if (fake.pass_through)
		return real_gai(name, service, ns, nsp, hints, res, timeout,
				ov, done, handle);
	iocx__mutex_lock(&fake.lock);
	if (fake.ncalls == NCALLS) {
		iocx__mutex_unlock(&fake.lock);
		return WSA_NOT_ENOUGH_MEMORY;
	}
	i = fake.ncalls++;
	fake.calls[i].ov = ov;
	fake.calls[i].routine = routine_of(done);
	fake.calls[i].family = hints->ai_family;
	*res = NULL;
	*handle = fake.give_handle ? (HANDLE)(uintptr_t)(0x100 + i) : NULL;
	iocx__mutex_unlock(&fake.lock);
	return WSA_IO_PENDING;
}

/* End call i with err (the OS runs the routine once), unless it ended. */
static bool fake_finish(int i, DWORD err)
{
	struct fake_call c;

	iocx__mutex_lock(&fake.lock);
	c = fake.calls[i];
	fake.calls[i].finished = true;
	iocx__mutex_unlock(&fake.lock);
	if (c.finished)
		return false;
	c.routine(err, 0, c.ov);
	return true;
}

/* As Windows documents it: the routine runs at once, WSA_E_CANCELLED. */
static int WSAAPI fake_cancel(LPHANDLE handle)
{
	int i = (int)((uintptr_t)*handle - 0x100);

	iocx__mutex_lock(&fake.lock);
	fake.cancels++;
	iocx__mutex_unlock(&fake.lock);
	if (i < 0 || i >= NCALLS || !fake_finish(i, WSA_E_CANCELLED))
		return WSA_INVALID_HANDLE;
	return 0;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	iocx_engine *engine;
	struct peer_tracker trk;
	struct peer_rec rec[16];
	long live0;
	struct iocx_gai_counts c0;	/* the resolver's counts at setup */
	struct sockaddr_storage peer;	/* the winner, from on_connect */
};

static void keep_peer(struct peer_rec *r, iocx_conn *conn,
		      const struct iocx_connect_result *res)
{
	struct fx *f = r->ctx;

	(void)conn;
	if (res->peer && res->peer_len <= sizeof(f->peer))
		memcpy(&f->peer, res->peer, res->peer_len);
}

static int setup_with(void **state, unsigned workers)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	memset(&fake, 0, sizeof(fake));
	iocx__mutex_init(&fake.lock);
	fake.pass_through = true;
	iocx__win_sys.get_addr_info_ex = fake_gai;
	iocx__win_sys.get_addr_info_ex_cancel = fake_cancel;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, 16, &f->trk);
	iocx_engine_options_init(&o);
	o.workers = workers;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	f->live0 = peer_alloc_live();
	iocx__gai_counts(&f->c0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	iocx__win_sys_reset();
	iocx__mutex_destroy(&fake.lock);
	free(f);
	return 0;
}

/* A request to host:port from 127.0.0.1 (so only the A query goes out). */
static void req_v4(struct iocx_connect_request *req, struct sockaddr_storage
		   *local, const char *host, uint16_t port, struct peer_rec *r)
{
	peer_req_host(req, host, port, r);
	req->local = (const struct sockaddr *)local;
	req->local_len = peer_addr(local, AF_INET, "127.0.0.1", 0);
}

/* Lookup records alive beyond those at setup. */
static long records_now(const struct fx *f)
{
	struct iocx_gai_counts c;

	iocx__gai_counts(&c);
	return c.records - f->c0.records;
}

/* Bounded wait for the OS to run every routine still due. */
static bool records_settle(const struct fx *f, unsigned timeout_ms)
{
	uint64_t end = peer_now_ms() + timeout_ms;

	while (records_now(f) != 0) {
		if (peer_now_ms() > end)
			return false;
		peer_yield();
	}
	return true;
}

/* ---- through the host's resolver ------------------------------------- */

static void gai_localhost_connects_through_the_host(void **state)
{
	static const char payload[] = "by name, once";
	struct fx *f = *state;
	struct peer *p = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	struct sockaddr_storage local;
	struct iocx_connect_request req;
	struct sockaddr_in *in = (struct sockaddr_in *)&f->peer;
	iocx_conn *conn = NULL;

	assert_non_null(p);
	f->rec[0].on_connect_hook = keep_peer;
	f->rec[0].ctx = f;
	req_v4(&req, &local, "localhost", p->port, &f->rec[0]);
	req.payload = payload;
	req.payload_len = sizeof(payload);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_OK);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(in->sin_port), p->port);
	assert_true(peer_wait_bytes(p, 0, sizeof(payload), PEER_TIMEOUT_MS));
	assert_int_equal(p->conns[0].len, sizeof(payload));
	assert_memory_equal(p->conns[0].data, payload, sizeof(payload));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	assert_int_equal(fake.real_calls, 1);
	print_message("[ gai      ] the OS gave %s for GetAddrInfoExCancel\n",
		      fake.real_handles ? "a handle" : "no handle (Wine 8)");
	assert_true(records_settle(f, PEER_TIMEOUT_MS));
	peer_close(p);
	peer_assert_no_leak(f->live0);
}

/* Holds the only worker inside an on_connect until released. */
struct blocker {
	peer_event *entered;
	peer_event *release;
};

static void block_worker(struct peer_rec *r, iocx_conn *conn,
			 const struct iocx_connect_result *res)
{
	struct blocker *b = r->ctx;

	(void)conn;
	(void)res;
	peer_event_set(b->entered);
	peer_event_wait(b->release, PEER_TIMEOUT_MS);
}

static int setup_one_worker(void **state)
{
	return setup_with(state, 1);
}

/*
 * A close while the real lookup runs: one IOCX_E_CANCELLED.  The only
 * worker is held, so the answer cannot start a connect before the close
 * is handled, whichever of the two reaches the port first.
 */
static void gai_close_during_real_lookup_reports_cancelled_once(void **state)
{
	struct fx *f = *state;
	struct peer *p = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	struct blocker b = { peer_event_new(), peer_event_new() };
	struct sockaddr_storage local, addr;
	struct iocx_connect_request req;
	struct iocx_gai_counts c;
	iocx_conn *held = NULL, *conn = NULL;

	assert_non_null(p);
	f->rec[0].on_connect_hook = block_worker;
	f->rec[0].ctx = &b;
	peer_req(&req, &addr,
		 peer_addr(&addr, AF_INET, "127.0.0.1", p->port), &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &held), IOCX_OK);
	assert_true(peer_event_wait(b.entered, PEER_TIMEOUT_MS));

	req_v4(&req, &local, "localhost", p->port, &f->rec[1]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_event_set(b.release);
	assert_true(peer_wait(&f->trk, 2, 1, PEER_TIMEOUT_MS));
	assert_int_equal(f->rec[1].status, IOCX_E_CANCELLED);
	assert_int_equal(atomic_load(&f->rec[1].connects), 1);
	assert_int_equal(iocx_close(held, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 2, 2, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	assert_true(records_settle(f, PEER_TIMEOUT_MS));
	iocx__gai_counts(&c);
	print_message("[ gai      ] %s\n",
		      c.os_cancels > f->c0.os_cancels
			      ? "GetAddrInfoExCancel stopped the lookup"
		      : c.late_dropped > f->c0.late_dropped
			      ? "the lookup ended after the close: dropped"
			      : "the answer came before the close");
	peer_event_free(b.entered);
	peer_event_free(b.release);
	peer_close(p);
	peer_assert_no_leak(f->live0);
}

/* Queries of the host's resolver in flight at destroy: every callback
 * once, and each late routine frees its record after the engine. */
static void gai_destroy_with_real_lookups_in_flight(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local[16];
	struct iocx_connect_request req;

	for (int i = 0; i < 16; i++) {
		req_v4(&req, &local[i], "localhost", 9, &f->rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, NULL),
				 IOCX_OK);
	}
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_wait(&f->trk, 16, 16, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	for (int i = 0; i < 16; i++)
		assert_int_equal(atomic_load(&f->rec[i].connects), 1);
	assert_true(records_settle(f, PEER_TIMEOUT_MS));
}

/* ---- against the scripted GetAddrInfoExW ----------------------------- */

/* Start a lookup of a made-up name through the fake (one query). */
static iocx_conn *start_fake(struct fx *f, bool give_handle)
{
	struct sockaddr_storage local;
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	fake.pass_through = false;
	fake.give_handle = give_handle;
	req_v4(&req, &local, "scripted.example", 9, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(fake.ncalls, 1);
	assert_int_equal(fake.calls[0].family, AF_INET);
	return conn;
}

/* Wine 8's case: no handle.  The close answers at once; the lookup's own
 * end, later, is dropped and its record freed. */
static void gai_close_without_handle_drops_the_late_answer(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn = start_fake(f, false);
	struct iocx_gai_counts c;

	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_E_CANCELLED);
	assert_int_equal(fake.cancels, 0);
	assert_int_equal(records_now(f), 1);	/* the OS still has it */
	assert_true(fake_finish(0, 0));
	iocx__gai_counts(&c);
	assert_int_equal(c.late_dropped - f->c0.late_dropped, 1);
	assert_int_equal(records_now(f), 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* Windows' case: a handle.  The close answers at once and
 * GetAddrInfoExCancel ends the lookup, whose routine frees the record. */
static void gai_close_with_handle_cancels_the_lookup(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn = start_fake(f, true);
	struct iocx_gai_counts c;

	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_E_CANCELLED);
	assert_int_equal(fake.cancels, 1);
	iocx__gai_counts(&c);
	assert_int_equal(c.os_cancels - f->c0.os_cancels, 1);
	assert_int_equal(records_now(f), 0);
	assert_false(fake_finish(0, 0));	/* it ended already */
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* A lookup failed: on_connect(status, os_code); close; nothing left. */
static void assert_failed_then_close(struct fx *f, iocx_conn *conn,
				     int status, uint32_t os_code)
{
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, status);
	assert_int_equal(f->rec[0].os_code, os_code);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(records_now(f), 0);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/* WSAHOST_NOT_FOUND for both families: IOCX_E_NAME, os_code kept. */
static void gai_host_not_found_reports_name(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	iocx_conn *conn = NULL;

	fake.pass_through = false;
	peer_req_host(&req, "missing.example", 9, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_int_equal(fake.ncalls, 2);
	assert_true(fake_finish(0, WSAHOST_NOT_FOUND));
	assert_true(fake_finish(1, WSAHOST_NOT_FOUND));
	assert_failed_then_close(f, conn, IOCX_E_NAME, WSAHOST_NOT_FOUND);
}

/* WSATRY_AGAIN (a server failure): IOCX_E_RESOLVE. */
static void gai_try_again_reports_resolve(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn = start_fake(f, false);

	assert_true(fake_finish(0, WSATRY_AGAIN));
	assert_failed_then_close(f, conn, IOCX_E_RESOLVE, WSATRY_AGAIN);
}

/* Destroy with both lookups out; the OS ends them after the engine is
 * gone: their routines find no port and only free. */
static void gai_lookup_ending_after_destroy_is_freed(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	fake.pass_through = false;
	peer_req_host(&req, "slow.example", 9, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	assert_int_equal(fake.ncalls, 2);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_E_CANCELLED);
	assert_int_equal(records_now(f), 2);
	assert_true(fake_finish(0, 0));
	assert_true(fake_finish(1, WSAHOST_NOT_FOUND));
	assert_int_equal(records_now(f), 0);
	peer_assert_clean(&f->trk);
}

/* A lookup the OS refuses at once is answered through the port too. */
static void gai_immediate_failure_is_answered_later(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local;
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	fake.pass_through = false;
	fake.ncalls = NCALLS;	/* the fake now fails every call at once */
	req_v4(&req, &local, "refused.example", 9, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	assert_failed_then_close(f, conn, IOCX_E_RESOLVE,
				 WSA_NOT_ENOUGH_MEMORY);
}

#define MANY 12

/* Whether the fake's call i has ended. */
static bool fake_finished(int i)
{
	bool done;

	iocx__mutex_lock(&fake.lock);
	done = fake.calls[i].finished;
	iocx__mutex_unlock(&fake.lock);
	return done;
}

/*
 * Twelve lookups in flight (handles given, as Windows does): a close of
 * the middle one finds its record at once (the query's slot) and cancels
 * that lookup alone: one IOCX_E_CANCELLED for it, then each other lookup
 * answered once, by its own end.
 */
static void gai_cancel_middle_of_many_in_flight(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local[MANY];
	struct iocx_connect_request req;
	struct iocx_gai_counts c;
	iocx_conn *conn[MANY];
	const int mid = MANY / 2;

	fake.pass_through = false;
	fake.give_handle = true;
	for (int i = 0; i < MANY; i++) {
		req_v4(&req, &local[i], "many.example", 9, &f->rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, &conn[i]),
				 IOCX_OK);
	}
	assert_int_equal(fake.ncalls, MANY);
	assert_int_equal(records_now(f), MANY);
	assert_int_equal(iocx_close(conn[mid], IOCX_CLOSE_ABORT), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[mid].status, IOCX_E_CANCELLED);
	assert_int_equal(fake.cancels, 1);
	for (int i = 0; i < MANY; i++)
		assert_int_equal(fake_finished(i), i == mid);
	iocx__gai_counts(&c);
	assert_int_equal(c.os_cancels - f->c0.os_cancels, 1);
	assert_int_equal(records_now(f), MANY - 1);
	for (int i = 0; i < MANY; i++) {
		if (i != mid)
			assert_true(fake_finish(i, WSAHOST_NOT_FOUND));
	}
	peer_assert_wait(&f->trk, MANY, 1, PEER_TIMEOUT_MS);
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(atomic_load(&f->rec[i].connects), 1);
		if (i != mid)
			assert_int_equal(f->rec[i].status, IOCX_E_NAME);
		if (i != mid)
			assert_int_equal(iocx_close(conn[i], IOCX_CLOSE_ABORT),
					 IOCX_OK);
	}
	peer_assert_wait(&f->trk, MANY, MANY, PEER_TIMEOUT_MS);
	assert_int_equal(records_now(f), 0);
	/* Only the cancelled lookup's routine found its query answered. */
	iocx__gai_counts(&c);
	assert_int_equal(c.late_dropped - f->c0.late_dropped, 1);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

/*
 * The Winsock references the process holds now: dropped one by one
 * (WSACleanup until it fails) and taken back.  Only with no socket open.
 */
static int wsa_refs(void)
{
	WSADATA wsa;
	int n = 0;

	while (n < 1000 && WSACleanup() == 0)
		n++;
	for (int i = 0; i < n; i++)
		assert_int_equal(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
	return n;
}

/*
 * Destroy while the OS still runs a lookup (no handle: Wine 8's case, or
 * a cancel that came too late): the engine's last WSACleanup would cancel
 * the lookup without calling its routine (leaking its record), so the
 * lookup keeps the engine's Winsock reference until its routine ran, and
 * the next engine create gives it back.
 */
static void gai_destroy_with_lookup_in_flight_keeps_winsock(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage local;
	struct iocx_connect_request req;
	struct iocx_engine_options o;
	struct iocx_gai_counts c;
	iocx_engine *e = NULL;
	int base = wsa_refs();		/* the fixture engine's among them */

	assert_true(base >= 1);
	fake.pass_through = false;
	fake.give_handle = false;
	req_v4(&req, &local, "slow.example", 9, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec[0].status, IOCX_E_CANCELLED);
	assert_int_equal(records_now(f), 1);
	assert_int_equal(wsa_refs(), base);	/* kept for the lookup */
	assert_true(fake_finish(0, 0));
	assert_int_equal(records_now(f), 0);
	iocx__gai_counts(&c);
	assert_int_equal(c.owed_cleanups, 1);
	assert_int_equal(wsa_refs(), base);	/* owed, not yet paid */
	iocx_engine_options_init(&o);
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(wsa_refs(), base);	/* one taken, one paid */
	iocx__gai_counts(&c);
	assert_int_equal(c.owed_cleanups, 0);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(wsa_refs(), base - 1);
	peer_assert_clean(&f->trk);
}

/* ---- options ------------------------------------------------------------ */

static int no_start(void *ctx, const char *host, int family, iocx_query *q)
{
	(void)ctx;
	(void)host;
	(void)family;
	(void)q;
	return IOCX_E_NAME;
}

static void no_cancel(void *ctx, iocx_query *q)
{
	(void)ctx;
	(void)q;
}

/* GetAddrInfoExW takes no server list: dns_servers is refused, unless
 * the options bring their own resolver. */
static void engine_create_dns_servers_without_resolver_is_notsup(void **s)
{
	static const struct iocx_resolver mine = { NULL, no_start,
						   no_cancel };
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	(void)s;
	iocx_engine_options_init(&o);
	o.dns_servers = "127.0.0.1:53";
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_NOTSUP);
	assert_null(e);
	o.resolver = &mine;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			gai_localhost_connects_through_the_host, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			gai_close_during_real_lookup_reports_cancelled_once,
			setup_one_worker, teardown),
		cmocka_unit_test_setup_teardown(
			gai_destroy_with_real_lookups_in_flight, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			gai_close_without_handle_drops_the_late_answer, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			gai_close_with_handle_cancels_the_lookup, setup,
			teardown),
		cmocka_unit_test_setup_teardown(gai_host_not_found_reports_name,
						setup, teardown),
		cmocka_unit_test_setup_teardown(gai_try_again_reports_resolve,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			gai_lookup_ending_after_destroy_is_freed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			gai_immediate_failure_is_answered_later, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			gai_cancel_middle_of_many_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(
			gai_destroy_with_lookup_in_flight_keeps_winsock, setup,
			teardown),
		cmocka_unit_test(
			engine_create_dns_servers_without_resolver_is_notsup),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("net_gai_win", tests, NULL, NULL);
}
