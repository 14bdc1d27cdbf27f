/*
 * Connects by host name on the scripted fake backend with a scripted
 * resolver and a fake clock (src/race.c, RFC 8305): the Resolution Delay,
 * interleaving of families, the Connection Attempt Delay, the first
 * success winning, losers cancelled and closed, the first payload only on
 * the winner, resolution failures, and close or destroy during resolution
 * and during the race giving one IOCX_E_CANCELLED, the retry policy over
 * whole races, the on_socket hook on every attempt and attempts paced by
 * connect_rate.  The allocator goes to
 * cmocka's heap and the fake refuses an engine_fini with sockets open or
 * events queued, so a leak of either fails the test.
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
#include "script_resolver.h"
#include "alloc_hooks.h"

#define PORT 443
#define MS 1000000ull
#define T0 (1000000ull * MS)	/* far from 0, like the real clock */
#define HOST "www.example.test"

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

struct fx {
	iocx_engine *e;
	struct sres res;
	iocx_conn *conn;
	int connects, closes;
	int reason;
	struct iocx_connect_result result;
	uint64_t connect_ms;	/* clock when on_connect ran */
	struct sockaddr_storage peer;	/* result.peer, copied */
	void *sentinel;
	/* on_socket hook: calls, the families and users it saw, and what
	 * the n-th call returns (0 beyond the array). */
	unsigned hooks;
	int hook_family[8];
	void *hook_user[8];
	int hook_rc[8];
};

static struct fx the_fx;

static uint64_t now_ms(void)
{
	return (fake_now - T0) / MS;
}

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	assert_ptr_equal(c, fx->conn);
	fx->connects++;
	fx->result = *r;
	fx->connect_ms = now_ms();
	memset(&fx->peer, 0, sizeof(fx->peer));
	if (r->peer)
		memcpy(&fx->peer, r->peer, r->peer_len);
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct fx *fx = user;

	assert_ptr_equal(c, fx->conn);
	fx->closes++;
	fx->reason = reason;
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup_with(void **state, int prefer, unsigned max_in_flight,
		      uint32_t cache, uint32_t ttl_max, uint32_t rate)
{
	struct fx *fx = &the_fx;
	struct iocx_engine_options o;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	sres_init(&fx->res);
	iocx_engine_options_init(&o);
	o.resolver = &fx->res.ops;
	o.prefer_family = prefer;
	o.max_in_flight = max_in_flight;
	o.resolve_cache = cache;
	o.resolve_cache_ttl_max = ttl_max;
	o.connect_rate = rate;
	if (cfx_engine_create(&o, &fx->e) != IOCX_OK)
		return -1;
	fake_now = T0;
	fx->e->clock = fake_clock;
	fake_log_clear();
	/* The last block before the body, which cmocka's leak walk starts
	 * from: a test that destroys the engine must not free it. */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0, 0, 0, 0, 0);
}

static int setup_prefer4(void **state)
{
	return setup_with(state, AF_INET, 0, 0, 0, 0);
}

static int setup_cap1(void **state)
{
	return setup_with(state, 0, 1, 0, 0, 0);
}

/* A cache of 8 answers. */
static int setup_cache(void **state)
{
	return setup_with(state, 0, 0, 8, 0, 0);
}

/* A cache of 8 answers, each kept at most 10 s. */
static int setup_cache_ttl10(void **state)
{
	return setup_with(state, 0, 0, 8, 10, 0);
}

/* connect_rate 10/s: a pacing turn every 100 ms, burst 1. */
static int setup_rate10(void **state)
{
	return setup_with(state, 0, 0, 0, 0, 10);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->e)
		assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	test_free(fx->sentinel);
	assert_false(fake_poisoned());
	/* Every query started was answered exactly once. */
	for (int i = 0; i < 2; i++) {
		assert_null(fx->res.fam[i].q);
		assert_int_equal(fx->res.fam[i].answers,
				 fx->res.fam[i].starts);
	}
	fake_cleanup();
	return 0;
}

/* ---- addresses --------------------------------------------------------- */

/* addr with the test's port: what a socket must connect to. */
static struct sockaddr_storage with_port(struct sockaddr_storage ss)
{
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)&ss)->sin6_port =
			cfx_be16(PORT);
	else
		((struct sockaddr_in *)(void *)&ss)->sin_port = cfx_be16(PORT);
	return ss;
}

static size_t len_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/* One address per family, cfx_doc6(1) at at6 ms and cfx_doc4(1) at at4 ms. */
static void answer_dual(struct fx *fx, uint64_t at6, uint64_t at4)
{
	struct sockaddr_storage a6 = cfx_doc6(1), a4 = cfx_doc4(1);

	sres_answer(&fx->res, AF_INET6, at6, IOCX_OK, 0, &a6, 1);
	sres_answer(&fx->res, AF_INET, at4, IOCX_OK, 0, &a4, 1);
}

/* ---- driving ----------------------------------------------------------- */

/* Move the clock to ms after the start: answers due are given, expired
 * timers fire, and everything queued is handled. */
static void at(struct fx *fx, uint64_t ms)
{
	fake_pump(fx->e);
	assert_true(T0 + ms * MS >= fake_now);
	fake_now = T0 + ms * MS;
	sres_deliver(&fx->res, ms);
	iocx__engine_run(fx->e, 0);
	fake_pump(fx->e);
}

static void start_total(struct fx *fx, const void *payload, size_t len,
			uint32_t deadline_ms, uint32_t total_ms)
{
	struct iocx_connect_request r = {
		.host = HOST,
		.port = PORT,
		.payload = payload,
		.payload_len = len,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = fx,
		.deadline_ms = deadline_ms,
		.total_deadline_ms = total_ms,
	};

	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	assert_non_null(fx->conn);
	fake_pump(fx->e);
}

static void start(struct fx *fx, const void *payload, size_t len,
		  uint32_t deadline_ms)
{
	start_total(fx, payload, len, deadline_ms, 0);
}

/* The id of the n-th socket opened (1-based), checking where it went. */
static unsigned sock_to(unsigned n, struct sockaddr_storage want)
{
	const struct fake_sock *s = fake_sock(n);

	want = with_port(want);
	assert_true(s->opened);
	assert_memory_equal(&s->remote, &want, len_of(&want));
	return n;
}

/* Number of fake sockets that exist (opened or not). */
static unsigned nsocks(void)
{
	unsigned n = 0;

	for (size_t i = 0; i < fake_log_len(); i++)
		n += fake_log_at(i)->call == FAKE_OPEN;
	return n;
}

/* Complete socket id's connect with status. */
static void complete(struct fx *fx, unsigned id, int status)
{
	fake_complete(fake_sock(id)->conn, status,
		      status == IOCX_E_REFUSED ? 10061u : 0, 0);
	fake_pump(fx->e);
}

static void close_and_finish(struct fx *fx)
{
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
}

/* ---- resolution --------------------------------------------------------- */

static void race_queries_both_families_at_once(void **state)
{
	struct fx *fx = *state;

	start(fx, NULL, 0, 0);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->starts, 1);
	assert_int_equal(sres_family(&fx->res, AF_INET)->starts, 1);
	assert_string_equal(sres_family(&fx->res, AF_INET)->host, HOST);
	assert_int_equal(nsocks(), 0);
	assert_int_equal(fx->connects, 0);
	close_and_finish(fx);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
}

static void race_aaaa_first_starts_at_once(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a6 = cfx_doc6(1);

	answer_dual(fx, 10, 20);
	start(fx, NULL, 0, 0);
	at(fx, 10);
	assert_int_equal(nsocks(), 1);
	sock_to(1, a6);
	complete(fx, 1, IOCX_OK);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.addresses_tried, 1);
	assert_int_equal(fx->result.resolve_ns, 10 * MS);
	a6 = with_port(a6);
	assert_memory_equal(&fx->peer, &a6, sizeof(struct sockaddr_in6));
	/* The socket is the connection's now; the A answer changes nothing. */
	assert_true(fake_sock(1)->adopted);
	assert_ptr_equal(fake_sock(1)->conn, fx->conn);
	at(fx, 20);
	assert_int_equal(nsocks(), 1);
	assert_int_equal(fx->connects, 1);
	close_and_finish(fx);
	assert_true(fake_sock(1)->closed);
}

static void race_a_first_waits_resolution_delay_for_aaaa(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a6 = cfx_doc6(1), a4 = cfx_doc4(1);

	answer_dual(fx, 40, 10);
	start(fx, NULL, 0, 0);
	at(fx, 10);
	at(fx, 39);
	assert_int_equal(nsocks(), 0);	/* waiting for AAAA */
	at(fx, 40);
	/* Both in: IPv6 first, then IPv4 after the attempt delay. */
	assert_int_equal(nsocks(), 1);
	sock_to(1, a6);
	at(fx, 289);
	assert_int_equal(nsocks(), 1);
	at(fx, 290);
	assert_int_equal(nsocks(), 2);
	sock_to(2, a4);
	complete(fx, 1, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.addresses_tried, 2);
	/* The loser was cancelled and closed. */
	assert_int_equal(fake_sock(2)->cancels, 1);
	assert_true(fake_sock(2)->closed);
	close_and_finish(fx);
}

static void race_aaaa_late_uses_ipv4(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a4 = cfx_doc4(1);

	answer_dual(fx, 300, 10);
	start(fx, NULL, 0, 0);
	at(fx, 10);
	at(fx, 59);
	assert_int_equal(nsocks(), 0);
	at(fx, 60);		/* the Resolution Delay is over */
	assert_int_equal(nsocks(), 1);
	sock_to(1, a4);
	at(fx, 70);
	complete(fx, 1, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.resolve_ns, 60 * MS);
	assert_int_equal(fx->peer.ss_family, AF_INET);
	at(fx, 300);		/* the late AAAA starts nothing */
	assert_int_equal(nsocks(), 1);
	close_and_finish(fx);
}

static void race_interleaves_families_with_attempt_delay(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage six[2] = { cfx_doc6(1), cfx_doc6(2) };
	struct sockaddr_storage four[2] = { cfx_doc4(1), cfx_doc4(2) };

	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, six, 2);
	sres_answer(&fx->res, AF_INET, 0, IOCX_OK, 0, four, 2);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	sock_to(1, six[0]);
	at(fx, 249);
	assert_int_equal(nsocks(), 1);
	at(fx, 250);
	sock_to(2, four[0]);
	at(fx, 500);
	sock_to(3, six[1]);
	at(fx, 750);
	sock_to(4, four[1]);
	at(fx, 2000);
	assert_int_equal(nsocks(), 4);	/* nothing left to try */
	/* Every attempt carried no payload and the connect stays pending. */
	for (unsigned id = 1; id <= 4; id++)
		assert_int_equal(fake_sock(id)->issued, 0);
	assert_int_equal(fx->connects, 0);
	complete(fx, 3, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.addresses_tried, 4);
	for (unsigned id = 1; id <= 4; id++) {
		if (id == 3)
			continue;
		assert_int_equal(fake_sock(id)->cancels, 1);
		assert_true(fake_sock(id)->closed);
	}
	close_and_finish(fx);
}

static void race_prefer_ipv4_starts_with_ipv4(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a6 = cfx_doc6(1), a4 = cfx_doc4(1);

	answer_dual(fx, 0, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	sock_to(1, a4);
	at(fx, 250);
	sock_to(2, a6);
	complete(fx, 2, IOCX_OK);
	assert_int_equal(fx->peer.ss_family, AF_INET6);
	close_and_finish(fx);
}

static void race_failure_starts_next_at_once(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a4 = cfx_doc4(1);

	answer_dual(fx, 0, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	at(fx, 30);
	complete(fx, 1, IOCX_E_REFUSED);
	/* No wait for the attempt delay once nothing runs. */
	assert_int_equal(nsocks(), 2);
	sock_to(2, a4);
	assert_true(fake_sock(1)->closed);
	complete(fx, 2, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->peer.ss_family, AF_INET);
	close_and_finish(fx);
}

static void race_all_fail_reports_last_error(void **state)
{
	struct fx *fx = *state;

	answer_dual(fx, 0, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	complete(fx, 1, IOCX_E_NETUNREACH);
	complete(fx, 2, IOCX_E_REFUSED);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_REFUSED);
	assert_int_equal(fx->result.os_code, 10061);
	assert_int_equal(fx->result.addresses_tried, 2);
	assert_true(fake_sock(1)->closed && fake_sock(2)->closed);
	close_and_finish(fx);
	assert_int_equal(fx->reason, IOCX_OK);
}

/* ---- the first payload -------------------------------------------------- */

static void race_payload_only_on_winner(void **state)
{
	struct fx *fx = *state;
	static const char payload[] = "GET / HTTP/1.1\r\n\r\n";

	answer_dual(fx, 0, 0);
	start(fx, payload, sizeof(payload), 0);
	at(fx, 0);
	at(fx, 250);
	assert_int_equal(nsocks(), 2);
	complete(fx, 2, IOCX_OK);
	/* Connected, and only now the payload leaves, on the winner. */
	assert_int_equal(fx->connects, 0);
	assert_int_equal(fake_sock(2)->sends, 1);
	assert_int_equal(fake_sock(2)->issued, sizeof(payload));
	fake_complete(fx->conn, IOCX_OK, 0, sizeof(payload));
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.payload_sent, sizeof(payload));
	assert_memory_equal(fake_sock(2)->capture, payload, sizeof(payload));
	/* The loser never carried a byte. */
	assert_int_equal(fake_sock(1)->issued, 0);
	assert_int_equal(fake_sock(1)->sends, 0);
	assert_true(fake_sock(1)->closed);
	close_and_finish(fx);
}

static void race_single_address_connects_like_by_address(void **state)
{
	struct fx *fx = *state;
	static const char payload[] = "hello";
	struct sockaddr_storage a4 = cfx_doc4(7);

	sres_answer(&fx->res, AF_INET6, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 8, IOCX_OK, 0, &a4, 1);
	start(fx, payload, sizeof(payload), 0);
	at(fx, 8);
	/* One socket, the connection's own, carrying the payload. */
	assert_int_equal(nsocks(), 1);
	sock_to(1, a4);
	assert_ptr_equal(fake_sock(1)->conn, fx->conn);
	assert_false(fake_sock(1)->adopted);
	assert_int_equal(fake_sock(1)->issued, sizeof(payload));
	fake_complete(fx->conn, IOCX_OK, 0, sizeof(payload));
	fake_pump(fx->e);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.payload_sent, sizeof(payload));
	assert_int_equal(fx->result.addresses_tried, 1);
	assert_int_equal(fx->result.resolve_ns, 8 * MS);
	close_and_finish(fx);
}

/* ---- resolution failures ------------------------------------------------ */

static void resolve_nxdomain_reports_name(void **state)
{
	struct fx *fx = *state;

	sres_answer(&fx->res, AF_INET6, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 6, IOCX_E_NAME, 3, NULL, 0);
	start(fx, NULL, 0, 0);
	at(fx, 5);
	assert_int_equal(fx->connects, 0);
	at(fx, 6);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_NAME);
	assert_int_equal(fx->result.os_code, 3);
	assert_int_equal(fx->result.addresses_tried, 0);
	assert_null(fx->result.peer);
	assert_int_equal(fx->result.peer_len, 0);
	assert_int_equal(nsocks(), 0);
	close_and_finish(fx);
}

static void resolve_empty_answers_report_name(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage wrong = cfx_doc4(1);

	/* An AAAA answer holding only IPv4 addresses has none to use. */
	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, &wrong, 1);
	sres_answer(&fx->res, AF_INET, 0, IOCX_OK, 0, NULL, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	assert_int_equal(fx->result.status, IOCX_E_NAME);
	assert_int_equal(nsocks(), 0);
	close_and_finish(fx);
}

static void resolve_servfail_reports_resolve(void **state)
{
	struct fx *fx = *state;

	sres_answer(&fx->res, AF_INET6, 0, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 1, IOCX_E_SYSTEM, 2, NULL, 0);
	start(fx, NULL, 0, 0);
	at(fx, 1);
	assert_int_equal(fx->result.status, IOCX_E_RESOLVE);
	assert_int_equal(fx->result.os_code, 2);
	close_and_finish(fx);
}

static void resolve_silence_fails_at_deadline(void **state)
{
	struct fx *fx = *state;

	start(fx, NULL, 0, 1000);
	at(fx, 999);
	assert_int_equal(fx->connects, 0);
	at(fx, 1000);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_RESOLVE);
	assert_int_equal(fx->result.os_code, 0);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->cancels, 1);
	assert_int_equal(sres_family(&fx->res, AF_INET)->cancels, 1);
	close_and_finish(fx);
}

static void resolve_start_failure_is_synchronous(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = {
		.host = HOST, .port = PORT,
		.on_connect = on_connect, .on_close = on_close, .user = fx,
	};
	struct iocx_stats s;

	fx->res.fail_code = IOCX_E_NOMEM;
	fx->res.fail_starts = 1;
	/* AAAA refused at once, A goes out: the connect is on. */
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->refused, 1);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->refused, 1);
	sres_answer(&fx->res, AF_INET, 0, IOCX_E_NAME, 0, NULL, 0);
	at(fx, 0);
	assert_int_equal(fx->result.status, IOCX_E_RESOLVE);
	close_and_finish(fx);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.connects_started, 1);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.in_flight, 0);
}

static void resolve_every_start_refused_fails_synchronously(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = {
		.host = HOST, .port = PORT,
		.on_connect = on_connect, .on_close = on_close, .user = fx,
	};
	iocx_conn *conn = (iocx_conn *)fx;	/* must stay untouched */
	struct iocx_stats s;

	fx->res.fail_code = IOCX_E_NOMEM;
	fx->res.fail_starts = 2;
	assert_int_equal(iocx_connect(fx->e, &r, &conn), IOCX_E_NOMEM);
	assert_ptr_equal(conn, (iocx_conn *)fx);
	fake_pump(fx->e);
	at(fx, 5000);
	assert_int_equal(fx->connects, 0);
	assert_int_equal(fx->closes, 0);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.connects_started, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.in_flight, 0);
}

/* ---- close and destroy -------------------------------------------------- */

static void close_during_resolution_cancels_once(void **state)
{
	struct fx *fx = *state;

	start(fx, NULL, 0, 0);
	at(fx, 5);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_OK);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->cancels, 1);
	assert_int_equal(sres_family(&fx->res, AF_INET)->cancels, 1);
	at(fx, 2000);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->closes, 1);
}

static void close_during_race_cancels_every_attempt(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	answer_dual(fx, 0, 400);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	at(fx, 100);
	assert_int_equal(nsocks(), 1);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_sock(1)->cancels, 1);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(sres_family(&fx->res, AF_INET)->cancels, 1);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.connects_started, 1);
	assert_int_equal(s.connects_cancelled, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.in_flight, 0);
}

static void close_after_attempt_connected_before_parent_saw_it(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage a6 = cfx_doc6(1);

	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, &a6, 1);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	/* The attempt connects and the user closes before the parent runs:
	 * the close wins, the connected attempt is closed, not adopted. */
	fake_complete(fake_sock(1)->conn, IOCX_OK, 0, 0);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_false(fake_sock(1)->adopted);
	assert_true(fake_sock(1)->closed);
}

static void destroy_during_resolution_cancels_once(void **state)
{
	struct fx *fx = *state;

	start(fx, NULL, 0, 0);
	at(fx, 5);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_SHUTDOWN);
}

static void destroy_during_race_cancels_once(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage six[2] = { cfx_doc6(1), cfx_doc6(2) };
	struct sockaddr_storage a4 = cfx_doc4(1);

	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, six, 2);
	sres_answer(&fx->res, AF_INET, 0, IOCX_OK, 0, &a4, 1);
	start(fx, "x", 1, 0);
	at(fx, 0);
	at(fx, 250);
	assert_int_equal(nsocks(), 2);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_SHUTDOWN);
	assert_true(fake_sock(1)->closed && fake_sock(2)->closed);
	assert_int_equal(nsocks(), 2);
}

static void destroy_after_win_with_losers_closing(void **state)
{
	struct fx *fx = *state;

	answer_dual(fx, 0, 0);
	fake_set_cancel_completes(false);	/* the loser hangs on */
	start(fx, NULL, 0, 0);
	at(fx, 0);
	at(fx, 250);
	complete(fx, 2, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fake_sock(1)->cancels, 1);
	assert_false(fake_sock(1)->closed);
	/* The loser's cancel comes back only now. */
	complete(fx, 1, IOCX_E_CANCELLED);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_SHUTDOWN);
	assert_true(fake_sock(2)->closed);
}

/* ---- options ------------------------------------------------------------ */

static void engine_create_rejects_bad_name_options(void **state)
{
	struct fx *fx = *state;
	struct iocx_engine_options o;
	struct iocx_resolver half = { .start = fx->res.ops.start };
	iocx_engine *e = NULL;

	iocx_engine_options_init(&o);
	o.prefer_family = 12345;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
	iocx_engine_options_init(&o);
	o.resolver = &half;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
	assert_null(e);
}

static void engine_create_clamps_attempt_delay(void **state)
{
	struct fx *fx = *state;
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	(void)fx;
	iocx_engine_options_init(&o);
	o.attempt_delay_ms = 10;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(e->opts.attempt_delay_ms, 100);
	assert_int_equal(e->opts.resolution_delay_ms, 50);
	assert_int_equal(e->opts.prefer_family, AF_INET6);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	o.attempt_delay_ms = 5000;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(e->opts.attempt_delay_ms, 2000);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
}

/* ---- with the engine controls (issue 11) --------------------------------- */

static void race_total_deadline_during_resolution(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	start_total(fx, NULL, 0, 0, 300);
	at(fx, 299);
	assert_int_equal(fx->connects, 0);
	at(fx, 300);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_TIMEDOUT);
	assert_int_equal(fx->result.os_code, 0);
	assert_int_equal(fx->result.addresses_tried, 0);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->cancels, 1);
	assert_int_equal(sres_family(&fx->res, AF_INET)->cancels, 1);
	assert_int_equal(nsocks(), 0);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.total_deadline_expiries, 1);
	assert_int_equal(s.in_flight, 0);
	/* The connection waits for its close, as after any failure. */
	assert_int_equal(fx->closes, 0);
	close_and_finish(fx);
	assert_int_equal(fx->connects, 1);
}

static void race_total_deadline_during_race(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	answer_dual(fx, 0, 10);
	start_total(fx, "GET", 3, 0, 100);
	at(fx, 10);
	assert_int_equal(nsocks(), 1);	/* AAAA first; A waits its turn */
	at(fx, 99);
	assert_int_equal(fx->connects, 0);
	at(fx, 100);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_TIMEDOUT);
	assert_int_equal(fx->result.payload_sent, 0);
	assert_int_equal(nsocks(), 1);
	assert_int_equal(fake_sock(1)->cancels, 1);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(fake_sock(1)->issued, 0);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.total_deadline_expiries, 1);
	assert_int_equal(s.in_flight, 0);
	close_and_finish(fx);
	assert_int_equal(fx->connects, 1);
}

static void race_resolve_time_apart_from_connect_time(void **state)
{
	struct fx *fx = *state;
	struct iocx_histogram h = { 0 };

	answer_dual(fx, 40, 40);
	start(fx, NULL, 0, 0);
	at(fx, 40);
	assert_int_equal(nsocks(), 1);
	at(fx, 65);
	complete(fx, 1, IOCX_OK);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.resolve_ns, 40 * MS);
	assert_int_equal(fx->result.latency_ns, 25 * MS);
	/* The engine keeps the two in separate histograms. */
	assert_int_equal(iocx_engine_latency(fx->e, &h,
					     IOCX_LATENCY_RESOLUTION |
					     IOCX_LATENCY_RESET), IOCX_OK);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.max, 40 * MS);
	assert_int_equal(iocx_engine_latency(fx->e, &h,
					     IOCX_LATENCY_RESOLUTION), IOCX_OK);
	assert_int_equal(h.count, 0);	/* its own interval was reset */
	assert_int_equal(iocx_engine_latency(fx->e, &h, 0), IOCX_OK);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.max, 25 * MS);
	assert_int_equal(iocx_engine_latency(fx->e, &h, 1u << 2),
			 IOCX_E_INVAL);
	close_and_finish(fx);
	/* Here: the reset's baseline is freed with the engine, before
	 * cmocka's leak walk at the end of the test. */
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
}

static void race_name_holds_an_in_flight_slot(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = {
		.host = HOST,
		.port = PORT,
		.on_connect = on_connect,
		.user = fx,
	};
	struct iocx_stats s;

	start(fx, NULL, 0, 0);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.in_flight, 1);
	/* The cap (1) is reached while the first one resolves. */
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_LIMIT);
	assert_int_equal(sres_family(&fx->res, AF_INET6)->starts, 1);
	close_and_finish(fx);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.in_flight, 0);
}

/* ---- the answer cache (options.resolve_cache) ---------------------------- */

/* Resolver script: AAAA with aaaa_status (no address) at 5 ms, A
 * cfx_doc4(7) at 8 ms, both with ttl_s. */
static void answer_v4_with(struct fx *fx, int aaaa_status, uint32_t ttl_s)
{
	struct sockaddr_storage a4 = cfx_doc4(7);

	sres_answer(&fx->res, AF_INET6, 5, aaaa_status, 3, NULL, 0);
	sres_family(&fx->res, AF_INET6)->ttl_s = ttl_s;
	sres_answer(&fx->res, AF_INET, 8, IOCX_OK, 0, &a4, 1);
	sres_family(&fx->res, AF_INET)->ttl_s = ttl_s;
}

/* An IPv4-only name: AAAA NXDOMAIN at 5 ms, A cfx_doc4(7) at 8 ms. */
static void answer_v4_only(struct fx *fx, uint32_t ttl_s)
{
	answer_v4_with(fx, IOCX_E_NAME, ttl_s);
}

/* A connect to host at ms that connects to cfx_doc4(7) (cached or not): one
 * new socket, completed, on_connect OK, closed. */
static void connect_v4_at(struct fx *fx, const char *host, uint64_t ms)
{
	struct iocx_connect_request r = {
		.host = host,
		.port = PORT,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = fx,
	};
	unsigned before = nsocks();

	at(fx, ms);
	fx->connects = fx->closes = 0;
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	fake_pump(fx->e);
	at(fx, ms + 8);
	assert_int_equal(nsocks(), before + 1);
	sock_to(before + 1, cfx_doc4(7));
	fake_complete(fx->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	close_and_finish(fx);
}

static unsigned starts(struct fx *fx, int family)
{
	return sres_family(&fx->res, family)->starts;
}

/* The cache lives until the engine goes: destroy it in the test body,
 * so cmocka's leak check (before the teardown) sees everything freed. */
static void destroy_engine(struct fx *fx)
{
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
}

static void resolve_cache_hit_skips_the_resolver(void **state)
{
	struct fx *fx = *state;

	/* AAAA fails (SERVFAIL: never kept), A has an address. */
	answer_v4_with(fx, IOCX_E_RESOLVE, 60);
	connect_v4_at(fx, HOST, 0);
	assert_int_equal(starts(fx, AF_INET), 1);
	/* Later, the name in other case: A from the cache, AAAA asked
	 * again. */
	connect_v4_at(fx, "WWW.Example.TEST", 1000);
	assert_int_equal(starts(fx, AF_INET), 1);
	assert_int_equal(starts(fx, AF_INET6), 2);
	/* The cached A waited for the AAAA answer (given 8 ms later, within
	 * the Resolution Delay), as any early A answer does. */
	assert_int_equal(fx->result.resolve_ns, 8 * MS);
	destroy_engine(fx);
}

static void resolve_cache_entry_expires_after_its_ttl(void **state)
{
	struct fx *fx = *state;

	answer_v4_only(fx, 5);
	connect_v4_at(fx, HOST, 0);		/* kept from 8 ms to 5008 */
	connect_v4_at(fx, HOST, 4990);
	assert_int_equal(starts(fx, AF_INET), 1);
	connect_v4_at(fx, HOST, 5008);
	assert_int_equal(starts(fx, AF_INET), 2);
	destroy_engine(fx);
}

static void resolve_cache_ttl_cut_to_ttl_max(void **state)
{
	struct fx *fx = *state;

	answer_v4_only(fx, 300);
	connect_v4_at(fx, HOST, 0);		/* kept 10 s, not 300 */
	connect_v4_at(fx, HOST, 9000);
	assert_int_equal(starts(fx, AF_INET), 1);
	connect_v4_at(fx, HOST, 10100);
	assert_int_equal(starts(fx, AF_INET), 2);
	destroy_engine(fx);
}

static void resolve_cache_off_by_default(void **state)
{
	struct fx *fx = *state;

	answer_v4_only(fx, 60);
	connect_v4_at(fx, HOST, 0);
	connect_v4_at(fx, HOST, 1000);
	assert_int_equal(starts(fx, AF_INET), 2);
}

/*
 * An IPv4-only name (AAAA: no data, kept as a negative answer): the
 * second connect asks nothing and does not wait the Resolution Delay
 * for AAAA; the negative answer expires exactly at its own TTL (5 s),
 * long before the A answer's (60 s).
 */
static void resolve_cache_negative_aaaa_skips_query_and_delay(void **state)
{
	struct fx *fx = *state;

	answer_v4_with(fx, IOCX_OK, 60);	/* AAAA: no address */
	sres_family(&fx->res, AF_INET6)->ttl_s = 5;
	connect_v4_at(fx, HOST, 0);		/* AAAA kept 8..5008 ms */
	assert_int_equal(fx->result.resolve_ns, 8 * MS);
	connect_v4_at(fx, HOST, 4997);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(starts(fx, AF_INET), 1);
	/* Both families from the cache: the race starts at once. */
	assert_int_equal(fx->result.resolve_ns, 0);
	/* At 5008 ms the negative answer is gone: AAAA is asked again (and
	 * answered 8 ms later), A still comes from the cache. */
	connect_v4_at(fx, HOST, 5008);
	assert_int_equal(starts(fx, AF_INET6), 2);
	assert_int_equal(starts(fx, AF_INET), 1);
	assert_int_equal(fx->result.resolve_ns, 8 * MS);
	destroy_engine(fx);
}

/* A connect by name at ms whose answers (all from the cache or from the
 * resolver by ms + 8) say the name does not exist. */
static void connect_no_name_at(struct fx *fx, uint64_t ms)
{
	at(fx, ms);
	fx->connects = fx->closes = 0;
	start(fx, NULL, 0, 0);
	at(fx, ms + 8);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_NAME);
	close_and_finish(fx);
}

/*
 * NXDOMAIN for both families, given without a TTL (iocx_query_done):
 * kept for IOCX_RESOLVE_NEGATIVE_TTL, so the next connects fail with
 * IOCX_E_NAME and the resolver's own code, without a query or a socket,
 * until exactly then.
 */
static void resolve_cache_keeps_nxdomain_for_default_ttl(void **state)
{
	struct fx *fx = *state;
	uint64_t ttl_ms = IOCX_RESOLVE_NEGATIVE_TTL * 1000u;

	sres_answer(&fx->res, AF_INET6, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 5, IOCX_E_NAME, 3, NULL, 0);
	connect_no_name_at(fx, 0);		/* kept 8 ms .. ttl + 8 ms */
	connect_no_name_at(fx, 1000);
	assert_int_equal(fx->result.os_code, 3);
	connect_no_name_at(fx, ttl_ms - 1);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(starts(fx, AF_INET), 1);
	connect_no_name_at(fx, ttl_ms + 8);
	assert_int_equal(starts(fx, AF_INET6), 2);
	assert_int_equal(starts(fx, AF_INET), 2);
	assert_int_equal(nsocks(), 0);
	destroy_engine(fx);
}

/* A negative TTL above resolve_cache_ttl_max is cut to it (10 s). */
static void resolve_cache_negative_ttl_cut_to_ttl_max(void **state)
{
	struct fx *fx = *state;

	sres_answer(&fx->res, AF_INET6, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_family(&fx->res, AF_INET6)->ttl_s = 3600;
	sres_family(&fx->res, AF_INET)->ttl_s = 3600;
	connect_no_name_at(fx, 0);		/* kept 8 .. 10008 ms */
	connect_no_name_at(fx, 9999);
	assert_int_equal(starts(fx, AF_INET), 1);
	connect_no_name_at(fx, 10008);
	assert_int_equal(starts(fx, AF_INET), 2);
	destroy_engine(fx);
}

/* Failures (SERVFAIL: IOCX_E_RESOLVE) and cancels are asked again. */
static void resolve_cache_keeps_no_failure_or_cancel(void **state)
{
	struct fx *fx = *state;

	for (int round = 0; round < 2; round++) {
		uint64_t t = (uint64_t)round * 1000;

		at(fx, t);
		fx->connects = fx->closes = 0;
		for (int i = 0; i < 2; i++) {
			sres_answer(&fx->res, i ? AF_INET : AF_INET6, t + 5,
				    IOCX_E_RESOLVE, 2, NULL, 0);
			fx->res.fam[i].ttl_s = 60;
		}
		start(fx, NULL, 0, 0);
		at(fx, t + 6);
		assert_int_equal(fx->connects, 1);
		assert_int_equal(fx->result.status, IOCX_E_RESOLVE);
		close_and_finish(fx);
	}
	assert_int_equal(starts(fx, AF_INET6), 2);
	assert_int_equal(starts(fx, AF_INET), 2);
	/* A close during resolution: the cancelled queries keep nothing. */
	at(fx, 2000);
	fx->connects = fx->closes = 0;
	start(fx, NULL, 0, 0);
	close_and_finish(fx);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->res.fam[0].cancels, 1);
	sres_answer(&fx->res, AF_INET6, 3000, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 3000, IOCX_E_NAME, 3, NULL, 0);
	connect_no_name_at(fx, 3000);
	assert_int_equal(starts(fx, AF_INET6), 4);
	assert_int_equal(starts(fx, AF_INET), 4);
	assert_int_equal(nsocks(), 0);
	destroy_engine(fx);
}

static void resolve_cache_close_during_cached_answer_cancels_once(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = {
		.host = HOST,
		.port = PORT,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = fx,
	};
	unsigned socks;

	/* Both families kept: the second connect asks the resolver nothing. */
	answer_dual(fx, 10, 10);
	sres_family(&fx->res, AF_INET6)->ttl_s = 60;
	sres_family(&fx->res, AF_INET)->ttl_s = 60;
	start(fx, NULL, 0, 0);
	at(fx, 10);
	complete(fx, sock_to(1, cfx_doc6(1)), IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	close_and_finish(fx);
	socks = nsocks();

	at(fx, 1000);
	fx->connects = fx->closes = 0;
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	/* Closed before the cached answers were taken in. */
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	at(fx, 2000);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(nsocks(), socks);
	/* Nothing was asked of the resolver, so nothing was cancelled. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fx->res.fam[i].starts, 1);
		assert_int_equal(fx->res.fam[i].cancels, 0);
	}
	destroy_engine(fx);
}

static void engine_create_rejects_resolve_cache_above_max(void **state)
{
	struct fx *fx = *state;
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	iocx_engine_options_init(&o);
	o.resolver = &fx->res.ops;
	o.resolve_cache = IOCX_MAX_RESOLVE_CACHE + 1;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
	assert_null(e);
	o.resolve_cache = IOCX_MAX_RESOLVE_CACHE;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
}

/* ---- the retry policy over whole races ---------------------------------- */

/* The on_socket hook: records each call, returns the scripted value. */
static int hook(iocx_socket_t sock, int family, void *user)
{
	struct fx *fx = &the_fx;
	unsigned n = fx->hooks++;

	(void)sock;
	if (n >= 8)
		return 0;
	fx->hook_family[n] = family;
	fx->hook_user[n] = user;
	return fx->hook_rc[n];
}

/* A request for HOST with the recorder callbacks; the test adds more. */
static struct iocx_connect_request by_name(struct fx *fx)
{
	struct iocx_connect_request r = {
		.host = HOST,
		.port = PORT,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = fx,
	};

	return r;
}

/* r, retried up to max races after a backoff drawn from 50..100 ms. */
static void start_retried(struct fx *fx, struct iocx_connect_request *r,
			  unsigned max)
{
	r->retry.max_attempts = max;
	r->retry.backoff_initial_ms = 100;
	r->retry.backoff_max_ms = 100;
	assert_int_equal(iocx_connect(fx->e, r, &fx->conn), IOCX_OK);
	fake_pump(fx->e);
}

/* The first race at 0 ms (one address per family): both attempts are
 * refused at 10 ms, the second at once after the first. */
static void first_race_refused(struct fx *fx, unsigned first_id)
{
	at(fx, 0);
	sock_to(first_id, cfx_doc6(1));
	at(fx, 10);
	complete(fx, first_id, IOCX_E_REFUSED);
	sock_to(first_id + 1, cfx_doc4(1));
	complete(fx, first_id + 1, IOCX_E_REFUSED);
	assert_true(fake_sock(first_id)->closed);
	assert_true(fake_sock(first_id + 1)->closed);
}

/* A request retried up to max races whose first race was refused. */
static void refused_once(struct fx *fx, unsigned max)
{
	struct iocx_connect_request r = by_name(fx);

	answer_dual(fx, 0, 0);
	start_retried(fx, &r, max);
	first_race_refused(fx, 1);
}

static void race_retry_races_again_after_backoff(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	refused_once(fx, 3);
	/* Failed, but a race is left: no report, no socket, a backoff of
	 * 50..100 ms from the failure at 10 ms. */
	assert_int_equal(fx->connects, 0);
	at(fx, 59);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(nsocks(), 2);
	at(fx, 110);
	/* The next race resolves the name again. */
	assert_int_equal(starts(fx, AF_INET6), 2);
	assert_int_equal(starts(fx, AF_INET), 2);
	at(fx, 110);		/* their answers */
	assert_int_equal(nsocks(), 3);
	sock_to(3, cfx_doc6(1));
	at(fx, 120);
	complete(fx, 3, IOCX_OK);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.attempts, 2);	/* races */
	assert_int_equal(fx->result.addresses_tried, 3);
	/* From the first race's first socket, backoff included. */
	assert_int_equal(fx->result.latency_ns, 120 * MS);
	assert_true(fake_sock(3)->adopted);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.retries, 1);
	assert_int_equal(s.connects_ok, 1);
	close_and_finish(fx);
}

static void race_retry_stops_at_max_attempts_with_last_error(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	refused_once(fx, 2);
	at(fx, 110);
	at(fx, 110);
	complete(fx, sock_to(3, cfx_doc6(1)), IOCX_E_NETUNREACH);
	complete(fx, sock_to(4, cfx_doc4(1)), IOCX_E_REFUSED);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_REFUSED);
	assert_int_equal(fx->result.os_code, 10061);
	assert_int_equal(fx->result.attempts, 2);
	assert_int_equal(fx->result.addresses_tried, 4);
	for (unsigned id = 1; id <= 4; id++)
		assert_true(fake_sock(id)->closed);
	at(fx, 2000);
	assert_int_equal(nsocks(), 4);
	assert_int_equal(starts(fx, AF_INET6), 2);
	assert_int_equal(starts(fx, AF_INET), 2);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.retries, 1);
	assert_int_equal(s.in_flight, 0);
	close_and_finish(fx);
	assert_int_equal(fx->connects, 1);
}

static void race_retry_not_after_nxdomain(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);

	sres_answer(&fx->res, AF_INET6, 5, IOCX_E_NAME, 3, NULL, 0);
	sres_answer(&fx->res, AF_INET, 5, IOCX_E_NAME, 3, NULL, 0);
	start_retried(fx, &r, 3);
	at(fx, 5);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_NAME);
	assert_int_equal(fx->result.attempts, 1);
	at(fx, 2000);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(starts(fx, AF_INET), 1);
	close_and_finish(fx);
}

static void race_retry_resolves_again_after_resolver_failure(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);

	sres_answer(&fx->res, AF_INET6, 0, IOCX_E_SYSTEM, 2, NULL, 0);
	sres_answer(&fx->res, AF_INET, 0, IOCX_E_SYSTEM, 2, NULL, 0);
	start_retried(fx, &r, 2);
	at(fx, 0);
	assert_int_equal(fx->connects, 0);	/* IOCX_E_RESOLVE: retried */
	assert_int_equal(nsocks(), 0);
	answer_dual(fx, 0, 0);			/* the resolver recovers */
	at(fx, 100);
	at(fx, 100);
	assert_int_equal(starts(fx, AF_INET6), 2);
	complete(fx, sock_to(1, cfx_doc6(1)), IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.attempts, 2);
	assert_int_equal(fx->result.addresses_tried, 1);
	close_and_finish(fx);
}

static void race_retry_close_in_backoff_cancels_once(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	refused_once(fx, 3);
	at(fx, 30);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_OK);
	at(fx, 2000);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(nsocks(), 2);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.connects_cancelled, 1);
}

static void race_retry_destroy_in_backoff_cancels_once(void **state)
{
	struct fx *fx = *state;

	refused_once(fx, 3);
	at(fx, 30);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_SHUTDOWN);
	assert_int_equal(nsocks(), 2);
}

static void race_retry_total_deadline_in_backoff(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);
	struct iocx_stats s;

	/* No attempt limit with a total deadline; a backoff of 0.5..1 s. */
	r.total_deadline_ms = 300;
	r.retry.backoff_initial_ms = 1000;
	answer_dual(fx, 0, 0);
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	fake_pump(fx->e);
	first_race_refused(fx, 1);
	at(fx, 299);
	assert_int_equal(fx->connects, 0);
	at(fx, 300);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_TIMEDOUT);
	assert_int_equal(fx->result.os_code, 0);
	assert_int_equal(fx->result.attempts, 1);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.total_deadline_expiries, 1);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(fx->closes, 0);
	close_and_finish(fx);
	assert_int_equal(fx->connects, 1);
}

/* ---- the on_socket hook on every attempt -------------------------------- */

static void race_hook_runs_on_every_attempt_failure_fails_that_one(
	void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);

	r.on_socket = hook;
	fx->hook_rc[0] = 42;	/* refuse the IPv6 attempt's socket */
	answer_dual(fx, 0, 0);
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	fake_pump(fx->e);
	at(fx, 0);
	/* Closed without a connect; the IPv4 attempt started at once. */
	assert_int_equal(fx->hooks, 2);
	assert_int_equal(fx->hook_family[0], AF_INET6);
	assert_int_equal(fx->hook_family[1], AF_INET);
	assert_ptr_equal(fx->hook_user[0], fx);
	assert_ptr_equal(fx->hook_user[1], fx);
	assert_int_equal(fake_count(FAKE_CONNECT, 1), 0);
	assert_true(fake_sock(1)->closed);
	assert_int_equal(fake_count(FAKE_CONNECT, 2), 1);
	assert_int_equal(fx->connects, 0);
	complete(fx, sock_to(2, cfx_doc4(1)), IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.addresses_tried, 2);
	assert_int_equal(fx->peer.ss_family, AF_INET);
	close_and_finish(fx);
	assert_int_equal(fx->hooks, 2);
}

static void race_hook_failing_every_attempt_is_not_retried(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);

	r.on_socket = hook;
	fx->hook_rc[0] = 42;
	fx->hook_rc[1] = 43;
	answer_dual(fx, 0, 0);
	start_retried(fx, &r, 3);
	at(fx, 0);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_ABORTED);
	assert_int_equal(fx->result.os_code, 43);
	assert_int_equal(fx->result.attempts, 1);
	assert_int_equal(fx->result.addresses_tried, 2);
	assert_int_equal(fake_count(FAKE_CONNECT, 1), 0);
	assert_int_equal(fake_count(FAKE_CONNECT, 2), 0);
	assert_true(fake_sock(1)->closed && fake_sock(2)->closed);
	at(fx, 2000);
	assert_int_equal(starts(fx, AF_INET6), 1);
	assert_int_equal(fx->hooks, 2);
	close_and_finish(fx);
}

/* An on_socket hook that closes the connection (and counts). */
static int closing_hook(iocx_socket_t sock, int family, void *user)
{
	struct fx *fx = user;

	(void)sock;
	(void)family;
	fx->hooks++;
	return iocx_close(fx->conn, IOCX_CLOSE_ABORT) == IOCX_OK ? 0 : 1;
}

static void race_hook_closing_the_connection_cancels_once(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = by_name(fx);
	struct sockaddr_storage six[2] = { cfx_doc6(1), cfx_doc6(2) };

	/* AAAA only (A never answers): no other event follows the one
	 * that starts the attempt, so the close must be acted on by it. */
	r.on_socket = closing_hook;
	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, six, 2);
	assert_int_equal(iocx_connect(fx->e, &r, &fx->conn), IOCX_OK);
	fake_pump(fx->e);
	at(fx, 0);
	/* The close is acted on once the step returns: the attempt whose
	 * hook asked is cancelled and closed, no other starts, and the A
	 * query is cancelled. */
	assert_int_equal(sres_family(&fx->res, AF_INET)->cancels, 1);
	assert_int_equal(fx->hooks, 1);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fake_sock(1)->cancels, 1);
	assert_true(fake_sock(1)->closed);
	at(fx, 1000);
	assert_int_equal(nsocks(), 1);
	assert_int_equal(fx->connects, 1);
}

/* ---- attempts paced by connect_rate ------------------------------------- */

static void race_attempts_take_pacing_turns(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage six[2] = { cfx_doc6(1), cfx_doc6(2) };
	struct sockaddr_storage four[2] = { cfx_doc4(1), cfx_doc4(2) };
	struct iocx_stats s;

	sres_answer(&fx->res, AF_INET6, 0, IOCX_OK, 0, six, 2);
	sres_answer(&fx->res, AF_INET, 0, IOCX_OK, 0, four, 2);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	sock_to(1, six[0]);
	at(fx, 10);
	complete(fx, 1, IOCX_E_REFUSED);
	/* The next attempt would start at once, but its turn is at 100. */
	assert_int_equal(nsocks(), 1);
	assert_ptr_equal(fx->e->admission.pq.head, fx->conn);
	at(fx, 99);
	assert_int_equal(nsocks(), 1);
	at(fx, 100);
	sock_to(2, four[0]);
	assert_null(fx->e->admission.pq.head);
	/* The attempt delay runs from that real start: 350, not 250. */
	at(fx, 349);
	assert_int_equal(nsocks(), 2);
	at(fx, 350);
	sock_to(3, six[1]);
	at(fx, 600);
	sock_to(4, four[1]);
	complete(fx, 4, IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.addresses_tried, 4);
	assert_int_equal(fx->result.latency_ns, 600 * MS);
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	assert_int_equal(s.paced, 1);
	close_and_finish(fx);
}

/* The connect by address of race_attempt_waits_behind_... */
static void other_on_connect(iocx_conn *c,
			     const struct iocx_connect_result *r, void *user)
{
	int *status = user;

	(void)c;
	*status = r->status;
}

static void race_attempt_waits_behind_a_connect_by_address(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage to = with_port(cfx_doc4(9));
	int other_status = 1;
	struct iocx_connect_request other = {
		.remote = (const struct sockaddr *)&to,
		.remote_len = sizeof(struct sockaddr_in),
		.on_connect = other_on_connect,
		.user = &other_status,
	};
	iocx_conn *by_addr;

	/* The connect by address takes the turn at 0 ms. */
	assert_int_equal(iocx_connect(fx->e, &other, &by_addr), IOCX_OK);
	assert_int_equal(nsocks(), 1);
	answer_dual(fx, 0, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	assert_int_equal(nsocks(), 1);
	at(fx, 99);
	assert_int_equal(nsocks(), 1);
	at(fx, 100);
	sock_to(2, cfx_doc6(1));
	at(fx, 349);
	assert_int_equal(nsocks(), 2);
	at(fx, 350);
	complete(fx, sock_to(3, cfx_doc4(1)), IOCX_OK);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_int_equal(fx->result.latency_ns, 250 * MS);
	assert_true(fake_sock(2)->closed);
	close_and_finish(fx);
	assert_int_equal(iocx_close(by_addr, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(other_status, IOCX_E_CANCELLED);
}

static void race_close_while_waiting_for_turn(void **state)
{
	struct fx *fx = *state;

	answer_dual(fx, 0, 0);
	start(fx, NULL, 0, 0);
	at(fx, 0);
	at(fx, 10);
	complete(fx, 1, IOCX_E_REFUSED);
	assert_ptr_equal(fx->e->admission.pq.head, fx->conn);
	assert_int_equal(iocx_close(fx->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_E_CANCELLED);
	assert_int_equal(fx->closes, 1);
	assert_null(fx->e->admission.pq.head);
	at(fx, 500);
	assert_int_equal(nsocks(), 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(race_queries_both_families_at_once),
		T(race_aaaa_first_starts_at_once),
		T(race_a_first_waits_resolution_delay_for_aaaa),
		T(race_aaaa_late_uses_ipv4),
		T(race_interleaves_families_with_attempt_delay),
		cmocka_unit_test_setup_teardown(
			race_prefer_ipv4_starts_with_ipv4, setup_prefer4,
			teardown),
		T(race_failure_starts_next_at_once),
		T(race_all_fail_reports_last_error),
		T(race_payload_only_on_winner),
		T(race_single_address_connects_like_by_address),
		T(resolve_nxdomain_reports_name),
		T(resolve_empty_answers_report_name),
		T(resolve_servfail_reports_resolve),
		T(resolve_silence_fails_at_deadline),
		T(resolve_start_failure_is_synchronous),
		T(resolve_every_start_refused_fails_synchronously),
		T(close_during_resolution_cancels_once),
		T(close_during_race_cancels_every_attempt),
		T(close_after_attempt_connected_before_parent_saw_it),
		T(destroy_during_resolution_cancels_once),
		T(destroy_during_race_cancels_once),
		T(destroy_after_win_with_losers_closing),
		T(engine_create_rejects_bad_name_options),
		T(engine_create_clamps_attempt_delay),
		T(race_total_deadline_during_resolution),
		T(race_total_deadline_during_race),
		T(race_resolve_time_apart_from_connect_time),
		cmocka_unit_test_setup_teardown(
			race_name_holds_an_in_flight_slot, setup_cap1,
			teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_hit_skips_the_resolver, setup_cache,
			teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_entry_expires_after_its_ttl,
			setup_cache, teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_ttl_cut_to_ttl_max, setup_cache_ttl10,
			teardown),
		T(resolve_cache_off_by_default),
		cmocka_unit_test_setup_teardown(
			resolve_cache_negative_aaaa_skips_query_and_delay,
			setup_cache, teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_keeps_nxdomain_for_default_ttl,
			setup_cache, teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_negative_ttl_cut_to_ttl_max,
			setup_cache_ttl10, teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_keeps_no_failure_or_cancel, setup_cache,
			teardown),
		cmocka_unit_test_setup_teardown(
			resolve_cache_close_during_cached_answer_cancels_once,
			setup_cache, teardown),
		T(engine_create_rejects_resolve_cache_above_max),
		T(race_retry_races_again_after_backoff),
		T(race_retry_stops_at_max_attempts_with_last_error),
		T(race_retry_not_after_nxdomain),
		T(race_retry_resolves_again_after_resolver_failure),
		T(race_retry_close_in_backoff_cancels_once),
		T(race_retry_destroy_in_backoff_cancels_once),
		T(race_retry_total_deadline_in_backoff),
		T(race_hook_runs_on_every_attempt_failure_fails_that_one),
		T(race_hook_failing_every_attempt_is_not_retried),
		T(race_hook_closing_the_connection_cancels_once),
		cmocka_unit_test_setup_teardown(
			race_attempts_take_pacing_turns, setup_rate10,
			teardown),
		cmocka_unit_test_setup_teardown(
			race_attempt_waits_behind_a_connect_by_address,
			setup_rate10, teardown),
		cmocka_unit_test_setup_teardown(
			race_close_while_waiting_for_turn, setup_rate10,
			teardown),
	};
#undef T

	return cmocka_run_group_tests_name("race", tests, group_setup,
					   cfx_group_teardown);
}
