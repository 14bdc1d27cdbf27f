/*
 * Fault sweep (SQLite style): a fixed small workload runs once per entry
 * of the backend's syscall table and per call number N that the workload
 * reaches, with exactly the Nth call of that entry failing (sweep.h).
 * Every run must end in exactly one on_connect and one on_close per
 * accepted connect, one on_sent per accepted send and one terminal on_recv
 * per read session; a failed iocx_connect or engine create reports an
 * error synchronously and makes no callback; every outcome is the one the
 * workload gets without faults, or one the failure explains (the mapped
 * error, or an error with the injected OS code, or a cancel/timeout the
 * fallbacks produce); no memory, socket or descriptor is left; nothing
 * waits longer than PEER_SLOW_TIMEOUT_MS.
 *
 * The workload: a connect with a first payload to an echo peer that sends
 * data, reads, shuts down and closes after the peer's FIN (close both
 * ways; a FIN or a send that fails ends the read with its error, so the
 * program closes it, never a watchdog); a connect with a
 * deadline to a full listener (pending connect); one with retries and SYN
 * tuning to a refusing port, closed abortively; after the first closed,
 * another connect to the echo peer (recycle_sockets on Windows,
 * batch_closes on io_uring), one closed abortively once open, one that
 * reads until the idle watchdog closes it (a receive cancelled), and one
 * whose local address is asked twice (getsockname once) before it is
 * detached (natively; Wine refuses, and it is closed); and destroy with a
 * connect still pending.
 *
 * One test case per table entry; N grows until the workload no longer
 * reaches it (at most IOCX_SWEEP_MAX_N, default 200).  A failure names
 * the entry and N.
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
#include "sweep.h"

enum role { R_ECHO, R_DEADLINE, R_RETRY, R_REUSE, R_ABORT, R_IDLE,
	    R_DETACH, R_DESTROY, R_COUNT };

static const char *const role_name[R_COUNT] = {
	"echo", "deadline", "retry", "reuse", "abort", "idle", "detach",
	"destroy",
};

static const char payload[] = "ping";
static const char data[] = "data";

/* What one connection of the workload did, beyond its peer_rec. */
struct conn_log {
	enum role role;
	int connect_rc;			/* iocx_connect's result */
	uint32_t connect_os;		/* ... and iocx_last_os_error() */
	atomic_int sends_ok;		/* iocx_send accepted */
	atomic_int sent_cbs;		/* on_sent calls */
	atomic_int sent_status;		/* last on_sent status */
	atomic_int reads_ok;		/* iocx_read_start accepted */
	atomic_int recv_ends;		/* terminal on_recv calls */
	atomic_int recv_status;		/* the terminal status */
	atomic_int close_rc;		/* first iocx_close result */
	atomic_int local_rc[2];		/* iocx_conn_local_addr, twice */
	atomic_int detach_rc;		/* iocx_detach */
	unsigned char got[16];
	atomic_size_t got_len;
};

struct run {
	size_t entry;
	unsigned long nth;		/* 0 = no fault */
	iocx_engine *engine;
	struct peer_tracker trk;
	struct peer_rec rec[R_COUNT];
	struct conn_log log[R_COUNT];
	long accepted;			/* connects that returned IOCX_OK */
};

/* The first run: handles it keeps are the process's, not leaks. */
static bool warming_up;

static unsigned long max_n(void)
{
	const char *s = getenv("IOCX_SWEEP_MAX_N");
	unsigned long n = s ? strtoul(s, NULL, 10) : 0;

	return n ? n : 200;
}

static void close_once(iocx_conn *conn, struct conn_log *l,
		       enum iocx_close_mode mode)
{
	int rc = iocx_close(conn, mode);
	int none = 1;

	/* Record the first result: OK, or ALREADY when a path closed it. */
	atomic_compare_exchange_strong(&l->close_rc, &none, rc);
}

static void on_sent(iocx_conn *conn, int status, size_t bytes, void *user)
{
	struct conn_log *l = user;

	(void)conn;
	(void)bytes;
	atomic_store(&l->sent_status, status);
	atomic_fetch_add(&l->sent_cbs, 1);
}

static void on_recv(iocx_conn *conn, int status, const void *buf,
		    size_t len, void *user)
{
	struct peer_rec *r = user;
	struct conn_log *l = r->ctx;

	if (status == IOCX_OK && l->role != R_ECHO)
		return;
	if (status == IOCX_OK) {
		size_t have = atomic_load(&l->got_len);

		if (have + len > sizeof(l->got))
			len = sizeof(l->got) - have;	/* an echo bug */
		memcpy(l->got + have, buf, len);
		atomic_store(&l->got_len, have + len);
		return;
	}
	atomic_store(&l->recv_status, status);
	atomic_fetch_add(&l->recv_ends, 1);
	/* The peer's FIN (or an error) ends it: close our side. */
	close_once(conn, l, IOCX_CLOSE_GRACEFUL);
}

/* Ask the local address twice (the second is the kept answer), then
 * take the socket over and close it, or close the connection. */
static void local_and_detach(iocx_conn *conn, struct conn_log *l)
{
	struct sockaddr_storage ss;
	iocx_socket_t s = IOCX_INVALID_SOCKET;
	int rc;

	atomic_store(&l->local_rc[0], iocx_conn_local_addr(conn, &ss));
	atomic_store(&l->local_rc[1], iocx_conn_local_addr(conn, &ss));
	rc = iocx_detach(conn, &s);
	atomic_store(&l->detach_rc, rc);
	if (rc == IOCX_OK)
		closesocket(s);
	else
		close_once(conn, l, IOCX_CLOSE_GRACEFUL);
}

static void on_connect_hook(struct peer_rec *r, iocx_conn *conn,
			    const struct iocx_connect_result *res)
{
	struct conn_log *l = r->ctx;

	if (res->status == IOCX_OK && l->role == R_DETACH) {
		local_and_detach(conn, l);
		return;
	}
	if (res->status == IOCX_OK && l->role == R_IDLE) {
		/* The watchdog cancels the receive and closes. */
		if (iocx_read_start(conn, on_recv) == IOCX_OK)
			atomic_fetch_add(&l->reads_ok, 1);
		else
			close_once(conn, l, IOCX_CLOSE_GRACEFUL);
		return;
	}
	if (res->status != IOCX_OK || l->role != R_ECHO) {
		close_once(conn, l, l->role == R_RETRY || l->role == R_ABORT
					    ? IOCX_CLOSE_ABORT
					    : IOCX_CLOSE_GRACEFUL);
		return;
	}
	if (iocx_read_start(conn, on_recv) != IOCX_OK) {
		close_once(conn, l, IOCX_CLOSE_GRACEFUL);
		return;
	}
	atomic_fetch_add(&l->reads_ok, 1);
	if (iocx_send(conn, data, sizeof(data) - 1, IOCX_PAYLOAD_COPY,
		      on_sent, l) != IOCX_OK) {
		close_once(conn, l, IOCX_CLOSE_ABORT);
		return;
	}
	atomic_fetch_add(&l->sends_ok, 1);
	if (iocx_shutdown(conn) != IOCX_OK)
		close_once(conn, l, IOCX_CLOSE_ABORT);
}

static void start(struct run *run, enum role role,
		  const struct sockaddr_storage *to, int to_len)
{
	struct iocx_connect_request req;
	struct peer_rec *r = &run->rec[role];
	struct conn_log *l = &run->log[role];
	iocx_conn *conn = NULL;

	peer_req(&req, to, to_len, r);
	l->role = role;
	atomic_store(&l->close_rc, 1);
	atomic_store(&l->local_rc[0], 1);
	atomic_store(&l->local_rc[1], 1);
	atomic_store(&l->detach_rc, 1);
	r->ctx = l;
	r->on_connect_hook = on_connect_hook;
	switch (role) {
	case R_ECHO:
		req.payload = payload;
		req.payload_len = sizeof(payload) - 1;
		/* Only a bound: a failed FIN or send ends the read itself,
		 * and check_conn() fails a close by this watchdog. */
		req.idle_ms = 500;
		break;
	case R_DEADLINE:
		req.deadline_ms = 30;
		break;
	case R_RETRY:
		req.retry.max_attempts = 3;
		req.retry.backoff_initial_ms = 1;
		req.retry.backoff_max_ms = 2;
		/* Best effort: SIO_TCP_INITIAL_RTO, TCP_SYNCNT. */
		req.syn_retransmissions = 2;
		break;
	case R_IDLE:
		req.idle_ms = 50;
		break;
	default:
		break;
	}
	l->connect_rc = iocx_connect(run->engine, &req, &conn);
	l->connect_os = iocx_last_os_error();
	if (l->connect_rc == IOCX_OK)
		run->accepted++;
}

/* Wait for role's two callbacks, when its connect was accepted. */
static void wait_done(struct run *run, enum role role)
{
	uint64_t until = peer_now_ms() + PEER_SLOW_TIMEOUT_MS;

	if (run->log[role].connect_rc != IOCX_OK)
		return;
	while (atomic_load(&run->rec[role].closes) == 0) {
		struct peer_tracker s;

		if (peer_now_ms() > until)
			fail_msg("%s call %lu failed: the %s connect never "
				 "closed (on_connect %d)",
				 sweep_name(run->entry), run->nth,
				 role_name[role],
				 atomic_load(&run->rec[role].connects));
		peer_tracker_snapshot(&run->trk, &s);
		peer_wait(&run->trk, s.connects, s.closes + 1, 50);
	}
}

/* An outcome the failure explains: its code, or its raw error. */
static bool explained(const struct run *run, int status, uint32_t os)
{
	if (run->nth == 0 || !sweep_fired())
		return false;
	return status == sweep_mapped(run->entry) ||
	       os == (uint32_t)sweep_err(run->entry);
}

/* The failure injected is the echo's FIN (the only shutdown call that
 * a single fault reaches). */
static bool fin_fault(const struct run *run)
{
	return run->nth && sweep_fired() &&
	       strcmp(sweep_name(run->entry), "shutdown") == 0;
}

/* The detach role's calls: each the clean run's result, or explained. */
static void check_detach(struct run *run, struct conn_log *l)
{
	const char *e = sweep_name(run->entry);
	int local0 = atomic_load(&l->local_rc[0]);
	int local1 = atomic_load(&l->local_rc[1]);
	int det = atomic_load(&l->detach_rc);

	if (local0 != IOCX_OK && !explained(run, local0, 0))
		fail_msg("%s call %lu: iocx_conn_local_addr %s", e, run->nth,
			 iocx_error_name(local0));
	/* Kept after a success; asked again after a failure. */
	if (local1 != IOCX_OK)
		fail_msg("%s call %lu: second iocx_conn_local_addr %s", e,
			 run->nth, iocx_error_name(local1));
	/* Wine 8 cannot take a socket off its port: IOCX_E_NOTSUP. */
	if (det != IOCX_OK && !(det == IOCX_E_NOTSUP && peer_is_wine()) &&
	    !explained(run, det, 0))
		fail_msg("%s call %lu: iocx_detach %s", e, run->nth,
			 iocx_error_name(det));
}

static void check_conn(struct run *run, enum role role, bool destroyed)
{
	struct peer_rec *r = &run->rec[role];
	struct conn_log *l = &run->log[role];
	const char *what = role_name[role];
	const char *e = sweep_name(run->entry);
	unsigned long n = run->nth;
	int st = r->status;
	bool natural;

	if (l->connect_rc != IOCX_OK) {
		if (atomic_load(&r->connects) || atomic_load(&r->closes))
			fail_msg("%s call %lu: %s connect returned %s and "
				 "called back", e, n, what,
				 iocx_error_name(l->connect_rc));
		if (!explained(run, l->connect_rc, l->connect_os))
			fail_msg("%s call %lu: %s connect returned %s (os %u)",
				 e, n, what, iocx_error_name(l->connect_rc),
				 l->connect_os);
		return;
	}
	if (atomic_load(&r->connects) != 1 || atomic_load(&r->closes) != 1)
		fail_msg("%s call %lu: %s on_connect x%d, on_close x%d", e, n,
			 what, atomic_load(&r->connects),
			 atomic_load(&r->closes));
	if (atomic_load(&l->sent_cbs) != atomic_load(&l->sends_ok))
		fail_msg("%s call %lu: %s on_sent x%d for %d sends", e, n,
			 what, atomic_load(&l->sent_cbs),
			 atomic_load(&l->sends_ok));
	if (atomic_load(&l->recv_ends) != atomic_load(&l->reads_ok))
		fail_msg("%s call %lu: %s terminal on_recv x%d for %d reads",
			 e, n, what, atomic_load(&l->recv_ends),
			 atomic_load(&l->reads_ok));
	switch (role) {
	case R_ECHO:
	case R_REUSE:
	case R_ABORT:
	case R_IDLE:
	case R_DETACH:
		natural = st == IOCX_OK;
		break;
	case R_DEADLINE:
		/* Pending on Linux and Wine; a full queue refuses on
		 * Windows (peer_listen_full). */
		natural = st == IOCX_E_TIMEDOUT || st == IOCX_E_REFUSED;
		break;
	case R_RETRY:
		natural = st == IOCX_E_REFUSED;
		break;
	default:
		natural = destroyed && st == IOCX_E_CANCELLED;
		break;
	}
	if (!natural && !explained(run, st, r->os_code))
		fail_msg("%s call %lu: %s on_connect %s (os %u)", e, n, what,
			 iocx_error_name(st), r->os_code);
	if (role == R_ECHO && st == IOCX_OK && !n &&
	    (atomic_load(&l->got_len) != 8 ||
	     memcmp(l->got, "pingdata", 8) != 0))
		fail_msg("echo: received %zu bytes, not \"pingdata\"",
			 atomic_load(&l->got_len));
	if (role == R_ECHO && fin_fault(run) &&
	    atomic_load(&l->recv_status) != sweep_mapped(run->entry))
		fail_msg("%s call %lu: the failed FIN ended the read with %s",
			 e, n, iocx_error_name(atomic_load(&l->recv_status)));
	/* Our data and FIN will not come: the read ends with the error. */
	if (role == R_ECHO && atomic_load(&l->sent_cbs) &&
	    atomic_load(&l->sent_status) != IOCX_OK &&
	    atomic_load(&l->recv_status) != atomic_load(&l->sent_status))
		fail_msg("%s call %lu: the failed send (%s) ended the read "
			 "with %s", e, n,
			 iocx_error_name(atomic_load(&l->sent_status)),
			 iocx_error_name(atomic_load(&l->recv_status)));
	if (role == R_DETACH && st == IOCX_OK)
		check_detach(run, l);
	/*
	 * Every connection is closed by the program, in a callback, by a
	 * detach, or by the idle role's watchdog.
	 */
	if (r->reason == IOCX_OK ||
	    (role == R_IDLE && r->reason == IOCX_E_IDLE) ||
	    (role == R_DETACH && r->reason == IOCX_E_DETACHED &&
	     atomic_load(&l->detach_rc) == IOCX_OK))
		return;
	fail_msg("%s call %lu: %s on_close %s", e, n, what,
		 iocx_error_name(r->reason));
}

/*
 * One run of the workload with call nth of entry failing (0: none); sets
 * *calls to the calls of entry it made, and returns whether the failure
 * was injected.
 */
static bool run_once(size_t entry, unsigned long nth, unsigned long *calls)
{
	struct run *run = calloc(1, sizeof(*run));
	struct iocx_engine_options o;
	struct sockaddr_storage refused;
	struct peer_echo *pe;
	struct peer *pf;
	unsigned h0 = peer_handle_count();
	long live0 = peer_alloc_live();
	int refused_len, rc;
	uint64_t until;
	bool fired;

	assert_non_null(run);
	pe = peer_echo_listen(AF_INET, "127.0.0.1");
	pf = peer_listen_full(AF_INET, "127.0.0.1");
	assert_non_null(pe);
	assert_non_null(pf);
	refused_len = peer_addr(&refused, AF_INET, "127.0.0.1",
				peer_free_port(AF_INET, "127.0.0.1"));
	run->entry = entry;
	run->nth = nth;
	peer_tracker_init(&run->trk);
	peer_recs_init(run->rec, R_COUNT, &run->trk);

	iocx_engine_options_init(&o);
	o.workers = 2;
	o.connect_payload_cap = 64;
	o.recycle_sockets = true;
	o.batch_closes = true;
	sweep_arm(entry, nth);
	rc = iocx_engine_create(&o, &run->engine);
	if (rc != IOCX_OK) {
		if (!nth || !sweep_fired())
			fail_msg("%s call %lu: engine create returned %s "
				 "without a fault", sweep_name(entry), nth,
				 iocx_error_name(rc));
		goto peers;
	}
	start(run, R_ECHO, &pe->addr, pe->addr_len);
	start(run, R_DEADLINE, &pf->addr, pf->addr_len);
	start(run, R_RETRY, &refused, refused_len);
	wait_done(run, R_ECHO);
	start(run, R_REUSE, &pe->addr, pe->addr_len);
	start(run, R_ABORT, &pe->addr, pe->addr_len);
	start(run, R_IDLE, &pe->addr, pe->addr_len);
	start(run, R_DETACH, &pe->addr, pe->addr_len);
	wait_done(run, R_DEADLINE);
	wait_done(run, R_RETRY);
	wait_done(run, R_REUSE);
	wait_done(run, R_ABORT);
	wait_done(run, R_IDLE);
	wait_done(run, R_DETACH);
	start(run, R_DESTROY, &pf->addr, pf->addr_len);
	assert_int_equal(iocx_engine_destroy(run->engine), IOCX_OK);
	peer_assert_clean(&run->trk);
	for (int i = 0; i < R_COUNT; i++)
		check_conn(run, (enum role)i, true);

peers:
	*calls = sweep_calls(entry);
	fired = sweep_fired();
	sweep_arm(entry, 0);	/* the peers' sockets are not counted */
	peer_echo_close(pe);
	peer_close(pf);
	until = peer_now_ms() + PEER_TIMEOUT_MS;
	if (!peer_alloc_wait_live(live0, PEER_TIMEOUT_MS))
		fail_msg("%s call %lu: %ld library blocks leaked",
			 sweep_name(entry), nth, peer_alloc_live() - live0);
	/* The peers' threads are joined; Wine may take a moment more to
	 * release what they closed. */
	while (peer_handle_count() != h0 && !warming_up &&
	       peer_now_ms() < until)
		peer_yield();
	if (peer_handle_count() != h0 && !warming_up)
		fail_msg("%s call %lu: %u descriptors/handles before, %u "
			 "after", sweep_name(entry), nth, h0,
			 peer_handle_count());
	free(run);
	return fired;
}

static int group_setup(void **state)
{
	unsigned long calls;

	(void)state;
	sweep_install();
	/* A first run keeps what the process sets up once (Winsock's
	 * handles under Wine): the runs that count start from there. */
	warming_up = true;
	run_once(0, 0, &calls);
	warming_up = false;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sweep_uninstall();
	return 0;
}

/* The case of one entry: every N the workload reaches. */
static void sweep_entry(void **state)
{
	size_t entry = (size_t)(uintptr_t)*state;
	unsigned long calls, n, cap = max_n();
	uint64_t t0 = peer_now_ms();

	if (!sweep_usable(entry)) {
		printf("%s: %s cannot be failed here (no "
		       "IORING_NOP_INJECT_RESULT)\n", peer_backend(),
		       sweep_name(entry));
		skip();
	}
	run_once(entry, 0, &calls);
	for (n = 1; n <= cap; n++) {
		unsigned long seen;

		if (!run_once(entry, n, &seen))
			break;
	}
	printf("%s %s: %lu calls in a clean run, failed calls 1..%lu "
	       "(%s), %llu ms\n", peer_backend(), sweep_name(entry), calls,
	       n - 1, n > cap ? "capped" : "all reached",
	       (unsigned long long)(peer_now_ms() - t0));
}

int main(void)
{
	size_t count, i;
	struct CMUnitTest *tests;
	int rc;

	peer_init(1800);
	count = sweep_entries();
	tests = calloc(count, sizeof(*tests));
	if (tests == NULL)
		return 1;
	for (i = 0; i < count; i++) {
		tests[i].name = sweep_name(i);
		tests[i].test_func = sweep_entry;
		tests[i].initial_state = (void *)(uintptr_t)i;
	}
	rc = _cmocka_run_group_tests("net_sweep", tests, count, group_setup,
				     group_teardown);
	free(tests);
	return rc;
}
