/*
 * Handle lifetime under races (issue 14, D5), on real loopback sockets.
 *
 * The rule under test (iocx.h, iocx_close_cb): the engine never frees a
 * handle the program has not released.  A handle is freed once its
 * on_close has returned and the program released it (iocx_close), so a
 * thread that holds an unreleased handle may call on it at any moment,
 * also while the idle watchdog closes it on a worker, without
 * synchronising with on_close.
 *
 * Each round opens SLOTS connections with a 1-2 ms idle watchdog to a
 * listener that accepts and closes, and gives each handle one releaser,
 * drawn from the seed:
 *  - ON_CLOSE: on_connect releases a failed connect, on_close any handle
 *    the engine closed (reason not IOCX_OK): the usual pattern;
 *  - ON_CONNECT: on_connect releases it at once, on a worker, often
 *    before iocx_connect() has returned on the main thread (which then
 *    never touches *out again: the memory outlives that call);
 *  - RACER: RACERS threads call iocx_conn_user(), iocx_conn_socket(),
 *    iocx_conn_local_addr(), iocx_conn_queued_bytes() and iocx_send() on
 *    it with no synchronisation with its callbacks, and one of them
 *    releases it at a random moment, before or after its on_close;
 *  - MAIN: the racers touch it the same way, and the main thread releases
 *    it once they stopped, after on_close(IOCX_E_IDLE) for an open one.
 * A racer holds a slot (a compare-and-swap on the slot, never a lock the
 * callbacks take) so two racers do not release one handle twice.
 *
 * Checked per round: one on_connect and one on_close per handle, on_sent
 * before on_close, every release IOCX_OK, every call's result one the
 * header allows, iocx_conn_user() the slot, stats.unreleased and
 * stats.open 0 once all are released, and the library's blocks back to
 * where they were with the engine still alive (the counting allocator).
 * The last round leaves the idle-closed handles unreleased and destroys
 * the engine, which frees them.  Under ASan a handle freed too early is a
 * use after free.
 *
 * Bounded: at most ROUNDS rounds and IOCX_LIFETIME_MS (default RUN_MS) of
 * them.  IOCX_LIFETIME_SEED replays the random choices (the seed is
 * printed; thread scheduling still varies).
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

#define SLOTS 24
#define RACERS 2
#define ROUNDS 200
#define RUN_MS 1500
/* How long the racers act in a round, at most, in ms. */
#define RACE_MS 6

enum releaser { ON_CLOSE, ON_CONNECT, RACER, MAIN, RELEASERS };

/* A slot's racer hold: free, held by one racer, released by a racer. */
enum { FREE, HELD, GONE };

struct slot {
	enum releaser who;
	iocx_conn *_Atomic conn;	/* published by the main thread */
	atomic_int hold;
	atomic_int connects;
	atomic_int closes;
	atomic_int in_callback;
	atomic_int sends;		/* iocx_send() calls that returned OK */
	atomic_int sent;		/* on_sent calls */
	int status;			/* of on_connect */
	int reason;			/* of on_close */
	bool started;			/* iocx_connect() returned IOCX_OK */
};

struct lt {
	iocx_engine *engine;
	struct peer *peer;
	uint64_t seed;
	struct slot slots[SLOTS];
	peer_event *never;
	atomic_bool racing;		/* racers run while set */
	atomic_long calls;		/* racer calls made, all rounds */
	atomic_long released_after;	/* releases after on_close */
	long closed_in_connect;		/* on_close came before
					   iocx_connect() returned */
	iocx_mutex vlock;
	long violations;
	char first_violation[200];
};

static struct lt L;

static void violation(const char *fmt, ...)
{
	va_list ap;

	iocx__mutex_lock(&L.vlock);
	if (L.violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(L.first_violation, sizeof(L.first_violation), fmt,
			  ap);
		va_end(ap);
	}
	iocx__mutex_unlock(&L.vlock);
}

/* splitmix64: one stream per thread, from the seed. */
static uint64_t next_rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static long slot_index(const struct slot *s)
{
	return (long)(s - L.slots);
}

/* Release s's handle (the program's one release): it must be IOCX_OK. */
static void release(struct slot *s, iocx_conn *conn, const char *who)
{
	bool after = atomic_load(&s->closes) != 0;
	int rc = iocx_close(conn, IOCX_CLOSE_ABORT);

	if (rc != IOCX_OK)
		violation("slot %ld: release by %s returned %s",
			  slot_index(s), who, iocx_error_name(rc));
	if (after)
		atomic_fetch_add(&L.released_after, 1);
}

/* ---- callbacks -------------------------------------------------------- */

static void enter(struct slot *s, iocx_conn *conn, const char *cb)
{
	if (atomic_fetch_add(&s->in_callback, 1) != 0)
		violation("slot %ld: %s while another callback ran",
			  slot_index(s), cb);
	if (iocx_conn_user(conn) != s)
		violation("slot %ld: %s: iocx_conn_user is not the slot",
			  slot_index(s), cb);
}

static void leave(struct slot *s)
{
	atomic_fetch_sub(&s->in_callback, 1);
}

static void on_sent(iocx_conn *conn, int status, size_t bytes, void *user)
{
	struct slot *s = user;

	(void)status;
	(void)bytes;
	enter(s, conn, "on_sent");
	if (atomic_load(&s->closes) != 0)
		violation("slot %ld: on_sent after on_close", slot_index(s));
	atomic_fetch_add(&s->sent, 1);
	leave(s);
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct slot *s = user;

	enter(s, conn, "on_connect");
	s->status = r->status;
	if (atomic_fetch_add(&s->connects, 1) != 0)
		violation("slot %ld: second on_connect", slot_index(s));
	if (s->who == ON_CONNECT ||
	    (s->who == ON_CLOSE && r->status != IOCX_OK))
		release(s, conn, "on_connect");
	leave(s);
}

static void on_close(iocx_conn *conn, int reason, void *user)
{
	struct slot *s = user;

	enter(s, conn, "on_close");
	s->reason = reason;
	if (atomic_load(&s->connects) != 1)
		violation("slot %ld: on_close before on_connect",
			  slot_index(s));
	if (s->who == ON_CLOSE && reason != IOCX_OK)
		release(s, conn, "on_close");
	leave(s);
	/* Last: the main thread may reuse the slot once it sees this. */
	if (atomic_fetch_add(&s->closes, 1) != 0)
		violation("slot %ld: second on_close", slot_index(s));
}

/* ---- the racers ------------------------------------------------------- */

/* What a call on an unreleased handle may return besides IOCX_OK. */
static void check_rc(struct slot *s, const char *call, int rc)
{
	if (rc > 0 || rc <= -IOCX_ERROR_COUNT || rc == IOCX_E_INVAL ||
	    rc == IOCX_E_ALREADY || rc == IOCX_E_LIMIT)
		violation("slot %ld: %s returned %s", slot_index(s), call,
			  iocx_error_name(rc));
}

/* One racer call on s's handle, which this racer holds. */
static void touch(struct slot *s, iocx_conn *conn, uint64_t *rs)
{
	static const char bytes[8] = "lifetime";
	struct sockaddr_storage ss;
	int rc;

	switch (next_rnd(rs) % 5) {
	case 0:
		if (iocx_conn_user(conn) != s)
			violation("slot %ld: iocx_conn_user is not the slot",
				  slot_index(s));
		break;
	case 1:
		(void)iocx_conn_socket(conn);
		(void)iocx_conn_queued_bytes(conn);
		break;
	case 2:
		rc = iocx_conn_local_addr(conn, &ss);
		if (rc != IOCX_OK && rc != IOCX_E_NOTCONN &&
		    rc != IOCX_E_SYSTEM)
			violation("slot %ld: iocx_conn_local_addr: %s",
				  slot_index(s), iocx_error_name(rc));
		break;
	default:
		rc = iocx_send(conn, bytes, sizeof(bytes), IOCX_PAYLOAD_COPY,
			       on_sent, s);
		if (rc == IOCX_OK)
			atomic_fetch_add(&s->sends, 1);
		else
			check_rc(s, "iocx_send", rc);
		break;
	}
	atomic_fetch_add(&L.calls, 1);
}

static void racer(void *arg)
{
	uint64_t rs = L.seed ^ (uint64_t)(uintptr_t)arg * 0x5851F42D4C957F2Dull;

	while (atomic_load(&L.racing)) {
		struct slot *s = &L.slots[next_rnd(&rs) % SLOTS];
		iocx_conn *conn = atomic_load(&s->conn);
		int free_ = FREE;

		if (!conn || (s->who != RACER && s->who != MAIN) ||
		    !atomic_compare_exchange_strong(&s->hold, &free_, HELD))
			continue;
		touch(s, conn, &rs);
		if (s->who == RACER && next_rnd(&rs) % 8 == 0) {
			release(s, conn, "a racer");
			atomic_store(&s->hold, GONE);
		} else {
			atomic_store(&s->hold, FREE);
		}
	}
}

/* ---- rounds ----------------------------------------------------------- */

/* Wait (bounded) until every started slot had its on_close. */
static bool wait_closes(void)
{
	uint64_t end = peer_now_ms() + PEER_SLOW_TIMEOUT_MS;

	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &L.slots[i];

		while (s->started && atomic_load(&s->closes) == 0) {
			if (peer_now_ms() > end)
				return false;
			peer_yield();
		}
	}
	return true;
}

/* Wait (bounded) for on_close of every open MAIN slot: the watchdog. */
static bool wait_idle_closes(void)
{
	uint64_t end = peer_now_ms() + PEER_SLOW_TIMEOUT_MS;

	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &L.slots[i];

		while (s->started && s->who == MAIN &&
		       atomic_load(&s->connects) == 0) {
			if (peer_now_ms() > end)
				return false;
			peer_yield();
		}
		while (s->started && s->who == MAIN &&
		       s->status == IOCX_OK && atomic_load(&s->closes) == 0) {
			if (peer_now_ms() > end)
				return false;
			peer_yield();
		}
	}
	return true;
}

/*
 * One round.  last: leave the MAIN handles unreleased for destroy.
 * Returns the handles the program left unreleased.
 */
static int round_run(uint64_t *rs, bool last)
{
	struct iocx_connect_request req;
	peer_thread racers[RACERS];
	uint64_t race_ms = 1 + next_rnd(rs) % RACE_MS;
	int left = 0;

	memset(L.slots, 0, sizeof(L.slots));
	for (int i = 0; i < SLOTS; i++)
		L.slots[i].who = (enum releaser)(next_rnd(rs) % RELEASERS);
	atomic_store(&L.racing, true);
	for (uintptr_t i = 0; i < RACERS; i++) {
		racers[i] = peer_thread_start(racer, (void *)(i + 1));
		assert_non_null(racers[i]);
	}
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &L.slots[i];
		iocx_conn *conn = NULL;
		int rc;

		peer_req(&req, &L.peer->addr, L.peer->addr_len, NULL);
		req.on_connect = on_connect;
		req.on_close = on_close;
		req.user = s;
		req.idle_ms = 1 + (uint32_t)(next_rnd(rs) % 2);
		rc = iocx_connect(L.engine, &req, &conn);
		if (rc != IOCX_OK) {
			/* epoll may report a refusal at once. */
			if (rc != IOCX_E_REFUSED)
				violation("slot %d: iocx_connect: %s", i,
					  iocx_error_name(rc));
			continue;
		}
		s->started = true;
		if (atomic_load(&s->closes) != 0)
			L.closed_in_connect++;
		/* ON_CLOSE and ON_CONNECT handles may be gone already. */
		if (s->who == RACER || s->who == MAIN)
			atomic_store(&s->conn, conn);
	}
	/* The race runs this long (nobody sets the event). */
	(void)peer_event_wait(L.never, (unsigned)race_ms);
	atomic_store(&L.racing, false);
	for (int i = 0; i < RACERS; i++)
		assert_true(peer_thread_join(racers[i], PEER_SLOW_TIMEOUT_MS));

	/* The watchdog closes what the racers kept busy; then release. */
	if (!wait_idle_closes())
		fail_msg("an open handle was not closed by its watchdog "
			 "(seed %llu)", (unsigned long long)L.seed);
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &L.slots[i];
		iocx_conn *conn = atomic_load(&s->conn);

		if (!conn || atomic_load(&s->hold) == GONE)
			continue;
		if (last && s->who == MAIN && s->status == IOCX_OK) {
			left++;
			continue;
		}
		release(s, conn, "main");
	}
	if (!wait_closes())
		fail_msg("on_close missing (seed %llu)",
			 (unsigned long long)L.seed);
	return left;
}

/* The round's outcomes are the ones the header allows. */
static void round_check(void)
{
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &L.slots[i];
		bool ok;

		if (!s->started)
			continue;
		if (atomic_load(&s->connects) != 1 ||
		    atomic_load(&s->closes) != 1)
			fail_msg("slot %d: %d on_connect, %d on_close (seed "
				 "%llu)", i, atomic_load(&s->connects),
				 atomic_load(&s->closes),
				 (unsigned long long)L.seed);
		if (atomic_load(&s->sent) != atomic_load(&s->sends))
			fail_msg("slot %d: %d on_sent of %d sends (seed %llu)",
				 i, atomic_load(&s->sent),
				 atomic_load(&s->sends),
				 (unsigned long long)L.seed);
		/* IDLE only for an open one; OK once released first. */
		ok = s->reason == IOCX_OK ||
		     (s->reason == IOCX_E_IDLE && s->status == IOCX_OK);
		if (s->who == MAIN && s->status == IOCX_OK)
			ok = s->reason == IOCX_E_IDLE;
		if (!ok)
			fail_msg("slot %d (releaser %d): on_connect %s, "
				 "on_close %s (seed %llu)", i, s->who,
				 iocx_error_name(s->status),
				 iocx_error_name(s->reason),
				 (unsigned long long)L.seed);
	}
}

static void handles_race_idle_watchdog_without_dangling(void **state)
{
	uint64_t t0 = peer_now_ms();
	uint64_t run_ms = RUN_MS, rs;
	const char *env_ms = getenv("IOCX_LIFETIME_MS");
	const char *env_seed = getenv("IOCX_LIFETIME_SEED");
	long live0, rounds = 0, idle = 0;
	struct iocx_engine_options o;
	struct iocx_stats st;
	int left;

	(void)state;
	if (env_ms && *env_ms)
		run_ms = strtoull(env_ms, NULL, 10);
	L.seed = env_seed && *env_seed ? strtoull(env_seed, NULL, 0)
				       : iocx__now_ns();
	printf("lifetime: seed %llu (IOCX_LIFETIME_SEED replays it)\n",
	       (unsigned long long)L.seed);
	rs = L.seed;
	iocx__mutex_init(&L.vlock);
	L.never = peer_event_new();
	assert_non_null(L.never);
	L.peer = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	assert_non_null(L.peer);
	iocx_engine_options_init(&o);
	o.workers = 2;
	assert_int_equal(iocx_engine_create(&o, &L.engine), IOCX_OK);
	live0 = peer_alloc_live();

	do {
		assert_int_equal(round_run(&rs, false), 0);
		round_check();
		for (int i = 0; i < SLOTS; i++)
			idle += L.slots[i].reason == IOCX_E_IDLE;
		/* Every handle released: nothing counted, nothing held. */
		assert_int_equal(iocx_engine_wait_idle(L.engine,
						       PEER_SLOW_TIMEOUT_MS),
				 IOCX_OK);
		assert_int_equal(iocx_engine_stats(L.engine, &st), IOCX_OK);
		assert_int_equal(st.unreleased, 0);
		assert_int_equal(st.open, 0);
		if (!peer_alloc_wait_live(live0, PEER_TIMEOUT_MS))
			fail_msg("round %ld: %ld blocks held after every "
				 "release (seed %llu)", rounds,
				 peer_alloc_live() - live0,
				 (unsigned long long)L.seed);
		rounds++;
	} while (rounds < ROUNDS && peer_now_ms() - t0 < run_ms &&
		 !L.violations);

	/* Last round: destroy frees what the program never released. */
	left = round_run(&rs, true);
	round_check();
	/* Every on_close returned (and counted): the engine is idle. */
	assert_int_equal(iocx_engine_wait_idle(L.engine, PEER_SLOW_TIMEOUT_MS),
			 IOCX_OK);
	assert_int_equal(iocx_engine_stats(L.engine, &st), IOCX_OK);
	assert_int_equal(st.unreleased, (uint64_t)left);
	assert_int_equal(iocx_engine_destroy(L.engine), IOCX_OK);
	L.engine = NULL;
	peer_close(L.peer);
	if (L.violations)
		fail_msg("%ld violations, first: %s (seed %llu)", L.violations,
			 L.first_violation, (unsigned long long)L.seed);
	printf("lifetime: %ld rounds of %d handles, %ld racer calls, %ld "
	       "on_close(IDLE), %ld releases after on_close, %ld on_close "
	       "before iocx_connect returned, %d left to destroy\n",
	       rounds + 1, SLOTS, atomic_load(&L.calls), idle,
	       atomic_load(&L.released_after), L.closed_in_connect, left);
	/* The watchdog really raced: some handles were idle-closed. */
	assert_true(idle > 0);
	assert_true(atomic_load(&L.released_after) > 0);
	peer_event_free(L.never);
	iocx__mutex_destroy(&L.vlock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handles_race_idle_watchdog_without_dangling),
	};

	peer_init(300);
	return cmocka_run_group_tests_name("net_lifetime", tests, NULL, NULL);
}
