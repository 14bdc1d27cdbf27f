/*
 * The Linux engine's own resolver (c-ares, src/linux/resolve_ares.c)
 * against the tests' DNS responder on loopback (tests/net/dns_responder.c),
 * on io_uring and epoll: names resolve and race on real sockets,
 * NXDOMAIN gives IOCX_E_NAME, SERVFAIL and silence IOCX_E_RESOLVE, and a
 * close or destroy during resolution gives one IOCX_E_CANCELLED, and the
 * retry policy races a name whose addresses refuse again, resolving it
 * anew each time, with the on_socket hook on every attempt.  The
 * engine is pointed at the responder (dns_servers), so no query goes to
 * the machine's configured DNS server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"
#include "dns_responder.h"

#define HOST "dual.example.test"
#define ARES_ENOTFOUND_CODE 4		/* c-ares: NXDOMAIN */

struct fx {
	struct dns_responder *dns;
	iocx_engine *engine;
	struct peer_tracker trk;
	struct peer_rec rec;
	struct peer *p4, *p6;
	long live0, live_none;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	f->dns = dns_start("127.0.0.1");
	if (f->dns == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(&f->rec, 1, &f->trk);
	f->live_none = peer_alloc_live();
	iocx_engine_options_init(&o);
	o.dns_servers = dns_server(f->dns);
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
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
	dns_stop(f->dns);
	peer_close(f->p4);
	peer_close(f->p6);
	free(f);
	return 0;
}

static void script(struct fx *f, int qtype, int rcode, unsigned delay_ms,
		   const char *ip)
{
	struct dns_script s = { .rcode = rcode, .delay_ms = delay_ms };

	if (ip != NULL) {
		assert_true(peer_addr(&s.addrs[0], qtype == DNS_AAAA
						    ? AF_INET6 : AF_INET,
				      ip, 0) > 0);
		s.n = 1;
	}
	dns_script(f->dns, qtype, &s);
}

static void silence(struct fx *f, int qtype)
{
	struct dns_script s = { .silent = true };

	dns_script(f->dns, qtype, &s);
}

static iocx_conn *start(struct fx *f, uint16_t port, const void *payload,
			size_t len, uint32_t deadline_ms)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req_host(&req, HOST, port, &f->rec);
	req.payload = payload;
	req.payload_len = len;
	req.deadline_ms = deadline_ms;
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	return conn;
}

/* Wait for on_connect, then close and wait for on_close. */
static void finish(struct fx *f, iocx_conn *conn, int status)
{
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(f->rec.status, status);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
}

static void resolve_dual_stack_name_prefers_ipv6(void **state)
{
	static const char payload[] = "hello by name";
	struct fx *f = *state;
	iocx_conn *conn;

	if (!peer_ipv6_available())
		skip();
	assert_true(peer_listen_pair(&f->p4, &f->p6, false));
	script(f, DNS_AAAA, DNS_NOERROR, 0, "::1");
	script(f, DNS_A, DNS_NOERROR, 0, "127.0.0.1");
	conn = start(f, f->p4->port, payload, sizeof(payload), 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(peer_wait_bytes(f->p6, 0, sizeof(payload),
				    PEER_TIMEOUT_MS));
	assert_memory_equal(f->p6->conns[0].data, payload, sizeof(payload));
	finish(f, conn, IOCX_OK);
	assert_true(peer_wait_eof(f->p6, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->p6->conns[0].len, sizeof(payload));
	assert_int_equal(f->p4->accepted, 0);
	/*
	 * The engine starts both lookups at once (test_race.c proves it on
	 * the resolver interface).  Whether the A query reaches the
	 * responder depends on when the resolver's thread runs: AAAA can
	 * be answered and the race won first, and a lookup cancelled before
	 * it went out is dropped unsent (seen under TSan on a loaded
	 * machine).  So only the AAAA query is certain here.
	 */
	assert_true(dns_queries(f->dns, DNS_AAAA) >= 1);
	peer_assert_no_leak(f->live0);
}

static void resolve_ipv6_black_hole_falls_back_to_ipv4(void **state)
{
	static const char payload[] = "once";
	struct fx *f = *state;
	iocx_conn *conn;

	if (!peer_ipv6_available())
		skip();
	assert_true(peer_listen_pair(&f->p4, &f->p6, true));
	script(f, DNS_AAAA, DNS_NOERROR, 0, "::1");
	script(f, DNS_A, DNS_NOERROR, 0, "127.0.0.1");
	conn = start(f, f->p4->port, payload, sizeof(payload), 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(f->rec.latency_ns >= 200u * 1000000u);
	assert_true(peer_wait_bytes(f->p4, 0, sizeof(payload),
				    PEER_TIMEOUT_MS));
	finish(f, conn, IOCX_OK);
	assert_true(peer_wait_eof(f->p4, 0, PEER_TIMEOUT_MS));
	assert_int_equal(f->p4->accepted, 1);
	assert_int_equal(f->p4->conns[0].len, sizeof(payload));
	peer_assert_no_leak(f->live0);
}

static void resolve_aaaa_300ms_late_uses_ipv4(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	if (!peer_ipv6_available())
		skip();
	assert_true(peer_listen_pair(&f->p4, &f->p6, false));
	script(f, DNS_AAAA, DNS_NOERROR, 300, "::1");
	script(f, DNS_A, DNS_NOERROR, 0, "127.0.0.1");
	conn = start(f, f->p4->port, "x", 1, 0);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(peer_wait_bytes(f->p4, 0, 1, PEER_TIMEOUT_MS));
	finish(f, conn, IOCX_OK);
	assert_int_equal(f->p6->accepted, 0);
	peer_assert_no_leak(f->live0);
}

static void resolve_nxdomain_reports_name(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	script(f, DNS_AAAA, DNS_NXDOMAIN, 0, NULL);
	script(f, DNS_A, DNS_NXDOMAIN, 0, NULL);
	conn = start(f, 9, NULL, 0, 0);
	finish(f, conn, IOCX_E_NAME);
	assert_int_equal(f->rec.os_code, ARES_ENOTFOUND_CODE);
	peer_assert_no_leak(f->live0);
}

static void resolve_servfail_reports_resolve(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	script(f, DNS_AAAA, DNS_SERVFAIL, 0, NULL);
	script(f, DNS_A, DNS_SERVFAIL, 0, NULL);
	conn = start(f, 9, NULL, 0, 0);
	finish(f, conn, IOCX_E_RESOLVE);
	peer_assert_no_leak(f->live0);
}

static void resolve_silence_reports_resolve_at_deadline(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	silence(f, DNS_AAAA);
	silence(f, DNS_A);
	conn = start(f, 9, NULL, 0, 500);
	finish(f, conn, IOCX_E_RESOLVE);
	assert_true(f->rec.latency_ns >= 450u * 1000000u);
	assert_true(dns_queries(f->dns, DNS_A) >= 1);
	peer_assert_no_leak(f->live0);
}

static void resolve_close_during_resolution_cancels_once(void **state)
{
	struct fx *f = *state;
	iocx_conn *conn;

	silence(f, DNS_AAAA);
	silence(f, DNS_A);
	conn = start(f, 9, NULL, 0, 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_E_CANCELLED);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void resolve_destroy_during_resolution_cancels_once(void **state)
{
	struct fx *f = *state;

	silence(f, DNS_AAAA);
	silence(f, DNS_A);
	start(f, 9, NULL, 0, 0);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(f->trk.connects, 1);
	assert_int_equal(f->trk.closes, 1);
	assert_int_equal(f->rec.status, IOCX_E_CANCELLED);
	assert_int_equal(f->rec.reason, IOCX_E_SHUTDOWN);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live_none);
}

/*
 * A thousand names in flight: every lookup is asked exactly once per
 * family.  c-ares sends all of them through one UDP socket; before the
 * resolver capped the lookups it runs at once, a burst of answers
 * overflowed that socket's receive buffer and the lost ones were asked
 * again after a second (bench/resolver_choice.c counted the drops).
 */
static void resolve_thousand_names_asks_each_once(void **state)
{
	enum { N = 1000 };
	struct fx *f = *state;
	struct peer_rec *recs = calloc(N, sizeof(*recs));
	iocx_conn **conns = calloc(N, sizeof(*conns));

	assert_non_null(recs);
	assert_non_null(conns);
	script(f, DNS_AAAA, DNS_NXDOMAIN, 0, NULL);
	script(f, DNS_A, DNS_NXDOMAIN, 0, NULL);
	peer_recs_init(recs, N, &f->trk);
	for (size_t i = 0; i < N; i++) {
		struct iocx_connect_request req;
		char host[32];

		snprintf(host, sizeof(host), "n%zu.example.test", i);
		peer_req_host(&req, host, 9, &recs[i]);
		assert_int_equal(iocx_connect(f->engine, &req, &conns[i]),
				 IOCX_OK);
	}
	peer_assert_wait(&f->trk, N, 0, PEER_SLOW_TIMEOUT_MS);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(recs[i].status, IOCX_E_NAME);
		assert_int_equal(iocx_close(conns[i], IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	}
	peer_assert_wait(&f->trk, N, N, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
	assert_int_equal(dns_queries(f->dns, DNS_A), N);
	assert_int_equal(dns_queries(f->dns, DNS_AAAA), N);
	free(conns);
	free(recs);
	peer_assert_no_leak(f->live0);
}

/* Replace the fixture's engine by one with a cache of 16 answers and a
 * Resolution Delay of delay_ms. */
static void use_cache(struct fx *f, uint32_t delay_ms)
{
	struct iocx_engine_options o;

	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	iocx_engine_options_init(&o);
	o.dns_servers = dns_server(f->dns);
	o.resolve_cache = 16;
	o.resolution_delay_ms = delay_ms;
	assert_int_equal(iocx_engine_create(&o, &f->engine), IOCX_OK);
}

/* The result's resolve_ns, into the record's ctx (a uint64_t). */
static void take_resolve_ns(struct peer_rec *r, iocx_conn *conn,
			    const struct iocx_connect_result *res)
{
	(void)conn;
	*(uint64_t *)r->ctx = res->resolve_ns;
}

/* What connect_round() saw in on_connect. */
struct round {
	uint64_t resolve_ns;
	uint32_t os_code;
};

/*
 * The n-th connect by name of the test (1-based) to port: wait for
 * on_connect with status (its resolve_ns and os_code into *out), close
 * and wait for on_close.
 */
static void connect_round(struct fx *f, long n, uint16_t port, int status,
			  struct round *out)
{
	struct iocx_connect_request req;
	struct peer_rec rec;
	iocx_conn *conn = NULL;

	peer_recs_init(&rec, 1, &f->trk);
	rec.on_connect_hook = take_resolve_ns;
	rec.ctx = &out->resolve_ns;
	peer_req_host(&req, HOST, port, &rec);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, n, n - 1, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(rec.status, status);
	out->os_code = rec.os_code;
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, n, n, PEER_TIMEOUT_MS);
	peer_assert_clean(&f->trk);
}

/*
 * With resolve_cache on, an IPv4-only name (AAAA: NOERROR without
 * records, a NODATA answer) is asked once: c-ares's TTL (the responder
 * gives 60 s) keeps the A answer and the engine keeps the negative AAAA
 * answer (IOCX_RESOLVE_NEGATIVE_TTL), so the second connect sends no
 * query.  AAAA goes silent before it: had it been asked, the race would
 * have waited the whole Resolution Delay (5 s here) for it.
 */
static void resolve_cache_ipv4_only_name_asks_once(void **state)
{
	struct fx *f = *state;
	struct round r;

	use_cache(f, 5000);
	f->p4 = peer_listen(AF_INET, "127.0.0.1", PEER_CLOSE);
	assert_non_null(f->p4);
	script(f, DNS_AAAA, DNS_NOERROR, 0, NULL);
	script(f, DNS_A, DNS_NOERROR, 0, "127.0.0.1");
	connect_round(f, 1, f->p4->port, IOCX_OK, &r);
	assert_int_equal(dns_queries(f->dns, DNS_A), 1);
	assert_int_equal(dns_queries(f->dns, DNS_AAAA), 1);
	silence(f, DNS_AAAA);
	connect_round(f, 2, f->p4->port, IOCX_OK, &r);
	assert_int_equal(dns_queries(f->dns, DNS_A), 1);
	assert_int_equal(dns_queries(f->dns, DNS_AAAA), 1);
	assert_true(r.resolve_ns < 5000u * 1000000u);
	assert_true(peer_wait_accepted(f->p4, 2, PEER_TIMEOUT_MS));
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(f->live_none);
}

/*
 * A name that does not exist (NXDOMAIN for both types) fails with
 * IOCX_E_NAME and c-ares's code the second time too, without a query.
 */
static void resolve_cache_nxdomain_fails_without_query(void **state)
{
	struct fx *f = *state;
	struct round r;

	use_cache(f, 0);
	script(f, DNS_AAAA, DNS_NXDOMAIN, 0, NULL);
	script(f, DNS_A, DNS_NXDOMAIN, 0, NULL);
	for (long n = 1; n <= 2; n++) {
		connect_round(f, n, 9, IOCX_E_NAME, &r);
		assert_int_equal(r.os_code, ARES_ENOTFOUND_CODE);
		assert_int_equal(dns_queries(f->dns, DNS_A), 1);
		assert_int_equal(dns_queries(f->dns, DNS_AAAA), 1);
	}
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(f->live_none);
}

/* SERVFAIL (IOCX_E_RESOLVE) is never kept: each connect asks again, as
 * many queries as the first (c-ares may retry a SERVFAIL). */
static void resolve_cache_servfail_is_asked_again(void **state)
{
	struct fx *f = *state;
	struct round r;
	unsigned a, aaaa;

	use_cache(f, 0);
	script(f, DNS_AAAA, DNS_SERVFAIL, 0, NULL);
	script(f, DNS_A, DNS_SERVFAIL, 0, NULL);
	connect_round(f, 1, 9, IOCX_E_RESOLVE, &r);
	a = dns_queries(f->dns, DNS_A);
	aaaa = dns_queries(f->dns, DNS_AAAA);
	assert_true(a >= 1 && aaaa >= 1);
	connect_round(f, 2, 9, IOCX_E_RESOLVE, &r);
	assert_int_equal(dns_queries(f->dns, DNS_A), 2 * a);
	assert_int_equal(dns_queries(f->dns, DNS_AAAA), 2 * aaaa);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	peer_assert_no_leak(f->live_none);
}

/*
 * A port held on ::1 and 127.0.0.1 by sockets bound to it but not
 * listening: the kernel answers a SYN there with a reset (a refusal),
 * and nobody else can take the port.  The on_socket hook of the request
 * counts the attempts' sockets and, on the listen_at-th, makes the held
 * socket of that socket's family listen, before that attempt's connect
 * goes out.
 */
struct held {
	int fd[2];			/* [0] ::1, [1] 127.0.0.1 */
	uint16_t port;
	unsigned listen_at;		/* 0 = never */
	atomic_uint hooks;
	atomic_int listening;		/* index into fd, -1 = none */
};

static void held_close(struct held *h)
{
	for (int i = 0; i < 2; i++) {
		if (h->fd[i] >= 0)
			close(h->fd[i]);
		h->fd[i] = -1;
	}
}

/* Bind both on one port, trying a few ports; false if none worked. */
static bool held_open(struct held *h, unsigned listen_at)
{
	h->listen_at = listen_at;
	atomic_init(&h->hooks, 0);
	atomic_init(&h->listening, -1);
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
		struct sockaddr_in a4 = { .sin_family = AF_INET };
		socklen_t len = sizeof(a6);
		int one = 1;

		a6.sin6_addr = in6addr_loopback;
		a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		h->fd[0] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		h->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (h->fd[0] >= 0 && h->fd[1] >= 0 &&
		    setsockopt(h->fd[0], IPPROTO_IPV6, IPV6_V6ONLY, &one,
			       sizeof(one)) == 0 &&
		    bind(h->fd[0], (struct sockaddr *)&a6, sizeof(a6)) == 0 &&
		    getsockname(h->fd[0], (struct sockaddr *)&a6, &len) == 0) {
			a4.sin_port = a6.sin6_port;
			if (bind(h->fd[1], (struct sockaddr *)&a4,
				 sizeof(a4)) == 0) {
				h->port = ntohs(a6.sin6_port);
				return true;
			}
		}
		held_close(h);
	}
	return false;
}

static int listen_on_hook(iocx_socket_t sock, int family, void *user)
{
	struct peer_rec *r = user;
	struct held *h = r->ctx;
	unsigned n = atomic_fetch_add(&h->hooks, 1) + 1;
	int i = family == AF_INET6 ? 0 : 1;

	(void)sock;
	if (n == h->listen_at && listen(h->fd[i], 16) == 0)
		atomic_store(&h->listening, i);
	return 0;
}

/* Keeps result.attempts, addresses_tried and the peer's family. */
static void keep_result(struct peer_rec *r, iocx_conn *conn,
			const struct iocx_connect_result *res)
{
	(void)conn;
	r->hook_rc[0] = (int)res->attempts;
	r->hook_rc[1] = (int)res->addresses_tried;
	r->hook_rc[2] = res->peer ? res->peer->sa_family : 0;
}

/* A request for HOST:h->port retried up to max races, 20 ms apart. */
static iocx_conn *start_retried(struct fx *f, struct held *h, unsigned max,
				const void *payload, size_t len)
{
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	peer_req_host(&req, HOST, h->port, &f->rec);
	req.payload = payload;
	req.payload_len = len;
	req.on_socket = listen_on_hook;
	req.retry.max_attempts = max;
	req.retry.backoff_initial_ms = 20;
	req.retry.backoff_max_ms = 20;
	f->rec.ctx = h;
	f->rec.on_connect_hook = keep_result;
	script(f, DNS_AAAA, DNS_NOERROR, 0, "::1");
	script(f, DNS_A, DNS_NOERROR, 0, "127.0.0.1");
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	return conn;
}

/* Accept the one connection on fd and read exactly len bytes of it. */
static void read_once(int fd, unsigned char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	int s;

	assert_int_equal(poll(&p, 1, PEER_TIMEOUT_MS), 1);
	s = accept(fd, NULL, NULL);
	assert_true(s >= 0);
	p.fd = s;
	while (got < len) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, PEER_TIMEOUT_MS), 1);
		n = recv(s, buf + got, len - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	close(s);
}

static void resolve_race_retried_until_a_listener_appears(void **state)
{
	static const char payload[] = "raced three times";
	unsigned char got[sizeof(payload)];
	struct fx *f = *state;
	struct held h;
	struct iocx_stats s;
	iocx_conn *conn;
	int i;

	if (!peer_ipv6_available())
		skip();
	assert_true(held_open(&h, 5));
	conn = start_retried(f, &h, 3, payload, sizeof(payload));
	peer_assert_wait(&f->trk, 1, 0, PEER_SLOW_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	/* Two races refused on both addresses, the third connected on the
	 * socket whose hook made its address listen. */
	assert_int_equal(f->rec.hook_rc[0], 3);
	assert_true(f->rec.hook_rc[1] >= 5);
	assert_int_equal(atomic_load(&h.hooks), (unsigned)f->rec.hook_rc[1]);
	i = atomic_load(&h.listening);
	assert_true(i == 0 || i == 1);
	assert_int_equal(f->rec.hook_rc[2], i == 0 ? AF_INET6 : AF_INET);
	/* Every race asked the responder again: the first two both
	 * families (they failed only once both were answered). */
	assert_true(dns_queries(f->dns, DNS_AAAA) >= 2);
	assert_true(dns_queries(f->dns, DNS_A) >= 2);
	assert_true(dns_queries(f->dns, DNS_AAAA) +
		    dns_queries(f->dns, DNS_A) >= 5);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.retries, 2);
	/* The payload went out once, on the winner. */
	read_once(h.fd[i], got, sizeof(payload));
	assert_memory_equal(got, payload, sizeof(payload));
	finish(f, conn, IOCX_OK);
	held_close(&h);
	peer_assert_no_leak(f->live0);
}

static void resolve_race_retries_stop_at_max_attempts(void **state)
{
	struct fx *f = *state;
	struct held h;
	struct iocx_stats s;
	iocx_conn *conn;

	if (!peer_ipv6_available())
		skip();
	assert_true(held_open(&h, 0));
	conn = start_retried(f, &h, 2, NULL, 0);
	finish(f, conn, IOCX_E_REFUSED);
	assert_int_equal(f->rec.hook_rc[0], 2);
	assert_int_equal(f->rec.hook_rc[1], 4);
	assert_int_equal(atomic_load(&h.hooks), 4);
	assert_int_equal(dns_queries(f->dns, DNS_AAAA), 2);
	assert_int_equal(dns_queries(f->dns, DNS_A), 2);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.retries, 1);
	assert_int_equal(s.connects_failed, 1);
	held_close(&h);
	peer_assert_no_leak(f->live0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(resolve_dual_stack_name_prefers_ipv6),
		T(resolve_ipv6_black_hole_falls_back_to_ipv4),
		T(resolve_aaaa_300ms_late_uses_ipv4),
		T(resolve_nxdomain_reports_name),
		T(resolve_servfail_reports_resolve),
		T(resolve_silence_reports_resolve_at_deadline),
		T(resolve_close_during_resolution_cancels_once),
		T(resolve_destroy_during_resolution_cancels_once),
		T(resolve_thousand_names_asks_each_once),
		T(resolve_race_retried_until_a_listener_appears),
		T(resolve_race_retries_stop_at_max_attempts),
		T(resolve_cache_ipv4_only_name_asks_once),
		T(resolve_cache_nxdomain_fails_without_query),
		T(resolve_cache_servfail_is_asked_again),
	};
#undef T

	peer_init(240);
	return cmocka_run_group_tests_name("net_resolve", tests, NULL, NULL);
}
