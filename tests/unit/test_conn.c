/*
 * Unit tests of the connection state machine, driven through the public
 * API on a manual engine (no worker threads) over the scripted fake
 * backend: the test injects every completion and pumps the engine itself,
 * so each step of a connection is observable.
 *
 * Callbacks check their status/reason with check_expected() and record
 * everything else in a struct probe (the request's user pointer); tests
 * with several connections whose callbacks interleave mark their probes
 * unchecked and assert the records instead.  The library allocator is
 * cmocka's checked heap, so a connection that is never freed fails the
 * test that leaked it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "engine.h"
#include "conn.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

/* connect_payload_cap of the default fixture: small, so tests can exceed
 * it with a short payload. */
#define CAP 16
#define PORT 4242

/* What on_connect does after recording its call. */
enum action {
	ACT_NONE,
	ACT_CLOSE,		/* iocx_close(conn, GRACEFUL) */
	ACT_CLOSE_TWICE,	/* ... and again: must be IOCX_E_ALREADY */
	ACT_CLOSE_RESET,	/* graceful, then abortive after all */
	ACT_ABORT,		/* iocx_close(conn, ABORT) */
	ACT_CONNECT,		/* iocx_connect(act_req) */
	ACT_DESTROY,		/* iocx_engine_destroy(conn's engine) */
	ACT_CLOSE_OTHER,	/* iocx_close(act_other, GRACEFUL) */
};

struct probe {
	iocx_conn *conn;	/* as set by iocx_connect */
	unsigned id;		/* the fake socket behind it */
	bool unchecked;		/* record only, no check_expected */

	unsigned connects;	/* on_connect calls */
	unsigned closes;	/* on_close calls */
	unsigned seq_connect;	/* global order of the last of each */
	unsigned seq_close;
	struct iocx_connect_result res;
	int reason;
	iocx_conn *connect_conn;	/* conn argument of each callback */
	iocx_conn *close_conn;
	void *close_user;		/* iocx_conn_user() inside on_close */
	bool sock_closed_at_connect;
	bool sock_closed_at_close;
	struct iocx_stats stats_at_connect;

	enum action act;
	bool connect_on_close;	/* on_close does iocx_connect(act_req) */
	int act_rc;
	int act_rc2;
	struct iocx_connect_request act_req;
	iocx_conn *act_out;
	iocx_conn *act_other;
};

struct fx {
	iocx_engine *e;
	struct iocx_engine_options opts;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	struct probe p[8];
	unsigned engines;	/* fake engines alive besides fx->e */
	void *sentinel;		/* last block of the setup, see setup() */
};

static struct fx the_fx;
static unsigned cb_depth;	/* > 0 while a callback runs */
static unsigned cb_seq;
static bool cb_lenient;		/* teardown: callbacks only record */
static unsigned char payload[64];

/* ---- callbacks ------------------------------------------------------ */

static void cb_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct probe *p = user;
	int status = r->status;

	cb_depth++;
	if (!p->unchecked && !cb_lenient)
		check_expected(status);
	p->connects++;
	p->seq_connect = ++cb_seq;
	p->res = *r;
	p->connect_conn = conn;
	p->sock_closed_at_connect = fake_sock(fake_id(conn))->closed;
	iocx_engine_stats(conn->engine, &p->stats_at_connect);

	switch (p->act) {
	case ACT_NONE:
		break;
	case ACT_CLOSE:
		p->act_rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
		break;
	case ACT_CLOSE_TWICE:
		p->act_rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
		p->act_rc2 = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
		break;
	case ACT_CLOSE_RESET:
		p->act_rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
		p->act_rc2 = iocx_close(conn, IOCX_CLOSE_ABORT);
		break;
	case ACT_ABORT:
		p->act_rc = iocx_close(conn, IOCX_CLOSE_ABORT);
		break;
	case ACT_CONNECT:
		p->act_rc = iocx_connect(conn->engine, &p->act_req,
					 &p->act_out);
		break;
	case ACT_DESTROY:
		p->act_rc = iocx_engine_destroy(conn->engine);
		break;
	case ACT_CLOSE_OTHER:
		p->act_rc = iocx_close(p->act_other, IOCX_CLOSE_GRACEFUL);
		break;
	}
	cb_depth--;
}

static void cb_close(iocx_conn *conn, int reason, void *user)
{
	struct probe *p = user;

	cb_depth++;
	if (!p->unchecked && !cb_lenient)
		check_expected(reason);
	p->closes++;
	p->seq_close = ++cb_seq;
	p->reason = reason;
	p->close_conn = conn;
	p->close_user = iocx_conn_user(conn);
	p->sock_closed_at_close = fake_sock(fake_id(conn))->closed;
	if (p->connect_on_close)
		p->act_rc = iocx_connect(conn->engine, &p->act_req,
					 &p->act_out);
	cb_depth--;
}

/* ---- fixtures ------------------------------------------------------- */

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 7 + 3);
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

/* *state may point at engine options (prestate); default: cap CAP. */
static int setup(void **state)
{
	const struct iocx_engine_options *o = *state;
	struct fx *fx = &the_fx;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	cb_seq = 0;
	cb_lenient = false;

	fx->engines = fake_engines();
	iocx_engine_options_init(&fx->opts);
	fx->opts.connect_payload_cap = CAP;
	if (o != NULL)
		fx->opts = *o;
	if (cfx_engine_create(&fx->opts, &fx->e) != IOCX_OK)
		return -1;
	fake_log_clear();

	cfx_loopback4(&fx->v4, PORT);
	cfx_loopback6(&fx->v6, PORT);

	/*
	 * cmocka checks a test body for leaks from the last block allocated
	 * before it, and walks the heap list from that block's node: if the
	 * body frees it (destroying the fixture's engine), the walk reads
	 * freed memory.  A block that lives until the teardown takes that
	 * place.
	 */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx == NULL)
		return 0;
	test_free(fx->sentinel);
	fx->sentinel = NULL;
	/* After a failure that jumped out of a callback or a backend call,
	 * the engine's locks may still be held: leave it alone. */
	if (cfx_engine_abandon(&fx->e, cb_depth > 0))
		return 0;
	/* A failed test may have left connections: just let them go. */
	cb_lenient = true;
	fake_set_cancel_completes(true);
	return cfx_engine_destroy(&fx->e, fx->engines);
}

/* ---- helpers -------------------------------------------------------- */

static struct iocx_connect_request request(struct fx *fx, struct probe *p)
{
	return cfx_request(&fx->v4, cb_connect, cb_close, p);
}

static struct iocx_connect_request request_payload(struct fx *fx,
						   struct probe *p,
						   size_t len)
{
	struct iocx_connect_request r = request(fx, p);

	r.payload = payload;
	r.payload_len = len;
	return r;
}

/* Start a connection that must be accepted. */
static iocx_conn *start(struct fx *fx, struct probe *p,
			const struct iocx_connect_request *r)
{
	assert_int_equal(iocx_connect(fx->e, r, &p->conn), IOCX_OK);
	assert_non_null(p->conn);
	p->id = fake_id(p->conn);
	/* Never a callback from inside the call that started it. */
	assert_int_equal(p->connects, 0);
	return p->conn;
}

static iocx_conn *start_plain(struct fx *fx, struct probe *p)
{
	struct iocx_connect_request r = request(fx, p);

	return start(fx, p, &r);
}

/* A connection reported open. */
static void make_open(struct fx *fx, struct probe *p)
{
	start_plain(fx, p);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	if (!p->unchecked)
		expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
}

/* A connection whose connect failed with REFUSED. */
static void make_failed(struct fx *fx, struct probe *p)
{
	start_plain(fx, p);
	fake_complete(p->conn, IOCX_E_REFUSED, 10061, 0);
	if (!p->unchecked)
		expect_value(cb_connect, status, IOCX_E_REFUSED);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
}

/* A connection sending the 24-byte rest of a 40-byte payload. */
static void make_sending(struct fx *fx, struct probe *p)
{
	struct iocx_connect_request r = request_payload(fx, p, 40);

	start(fx, p, &r);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->op, FAKE_SEND);
	assert_int_equal(p->connects, 0);
}

/* Close an open or failed connection and see its on_close(IOCX_OK). */
static void close_and_pump(struct fx *fx, struct probe *p)
{
	unsigned closes = p->closes;

	if (!p->unchecked)
		expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	/* Outside the connection's callbacks the request is deferred. */
	assert_int_equal(p->closes, closes);
	fake_pump(fx->e);
	assert_int_equal(p->closes, closes + 1);
	assert_true(p->sock_closed_at_close);
	assert_ptr_equal(p->close_user, p);
}

static void destroy(struct fx *fx)
{
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(fake_engines(), fx->engines);
}

/* Wait until the monotonic clock has moved, so latencies are > 0. */
static void let_clock_tick(void)
{
	uint64_t t0 = iocx__now_ns();

	while (iocx__now_ns() == t0)
		;
}

/* The stats of fx's engine are exactly these (conn_fixture.h lists the
 * fields compared). */
#define check_stats(fx, ...) cfx_check_stats((fx)->e, false, __VA_ARGS__)

/*
 * A request that iocx_connect must reject with code: no callback, no
 * backend call, no change to the stats or to *out.
 */
static void check_rejected(struct fx *fx, iocx_engine *e,
			   const struct iocx_connect_request *r, int code)
{
	iocx_conn *const sentinel = (iocx_conn *)(void *)&the_fx;
	iocx_conn *out = sentinel;
	struct iocx_stats before, after;
	unsigned seq = cb_seq;

	assert_int_equal(iocx_engine_stats(fx->e, &before), IOCX_OK);
	fake_log_clear();
	assert_int_equal(iocx_connect(e, r, &out), code);
	assert_ptr_equal(out, sentinel);
	assert_int_equal(fake_log_len(), 0);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(iocx_engine_stats(fx->e, &after), IOCX_OK);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(cb_seq, seq);
}

/* ---- success paths -------------------------------------------------- */

static void connect_without_payload_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 });
	assert_int_equal(fake_pending(fx->e), 0);
	check_stats(fx, .connects_started = 1, .in_flight = 1, .open = 1);

	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->connects, 1);
	assert_ptr_equal(p->connect_conn, p->conn);
	assert_int_equal(p->res.os_code, 0);
	assert_int_equal(p->res.payload_sent, 0);
	assert_false(p->res.fastopen);
	assert_false(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CONNECTED, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .open = 1);

	close_and_pump(fx, p);
	assert_ptr_equal(p->close_conn, p->conn);
	assert_true(p->seq_close > p->seq_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_CLOSE, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void connect_ipv6_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);
	const struct sockaddr_in6 *seen;

	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(fx->v6);
	start(fx, p, &r);
	seen = (const void *)&fake_sock(p->id)->remote;
	assert_int_equal(seen->sin6_family, AF_INET6);
	assert_int_equal(seen->sin6_port, cfx_be16(PORT));
	assert_memory_equal(&seen->sin6_addr, &fx->v6.sin6_addr, 16);

	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void connect_copies_remote_address(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct sockaddr_in sin = fx->v4;
	struct iocx_connect_request r = request(fx, p);
	const struct sockaddr_in *seen;

	r.remote = (const struct sockaddr *)&sin;
	start(fx, p, &r);
	memset(&sin, 0xAB, sizeof(sin));
	seen = (const void *)&fake_sock(p->id)->remote;
	assert_int_equal(seen->sin_family, AF_INET);
	assert_int_equal(seen->sin_port, cfx_be16(PORT));
	assert_memory_equal(&seen->sin_addr, &fx->v4.sin_addr, 4);

	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	close_and_pump(fx, p);
}

static void connect_long_address_length_accepted(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct sockaddr_storage ss;
	struct iocx_connect_request r = request(fx, p);

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &fx->v4, sizeof(fx->v4));
	r.remote = (const struct sockaddr *)&ss;
	r.remote_len = sizeof(ss);
	start(fx, p, &r);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	close_and_pump(fx, p);
}

static void connect_null_out_still_connects(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);
	iocx_conn *conn;

	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_OK);
	conn = fake_sock(1)->conn;
	assert_non_null(conn);
	/* The handle arrives with the callback, which closes it. */
	p->act = ACT_CLOSE;
	fake_complete(conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_ptr_equal(p->connect_conn, conn);
	assert_int_equal(p->closes, 1);
}

static void connect_payload_within_cap_rides_on_connect(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 10);

	start(fx, p, &r);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 10 });
	fake_complete(p->conn, IOCX_OK, 0, 10);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 10);
	assert_memory_equal(fake_sock(p->id)->capture, payload, 10);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 10 },
			{ FAKE_CONNECTED, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 10, .open = 1);
	close_and_pump(fx, p);
}

static void connect_payload_equal_cap_rides_on_connect(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, CAP);

	start(fx, p, &r);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 });
	close_and_pump(fx, p);
}

static void connect_payload_above_cap_sends_rest_before_report(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 40);

	start(fx, p, &r);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP });

	/* Connected: the remaining 24 bytes go out before any report. */
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 24 });
	check_stats(fx, .connects_started = 1, .in_flight = 1, .open = 1);

	/* A partial send: the rest is issued again. */
	fake_complete(p->conn, IOCX_OK, 0, 10);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 24 },
			{ FAKE_SEND, 1, 14 });

	fake_complete(p->conn, IOCX_OK, 0, 14);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.payload_sent, 40);
	/* 16 with the handshake, 24, then the 14 not confirmed again. */
	assert_int_equal(fake_sock(p->id)->issued, CAP + 24 + 14);
	assert_int_equal(fake_sock(p->id)->acked, 40);
	assert_memory_equal(fake_sock(p->id)->capture, payload, 40);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 40, .open = 1);

	close_and_pump(fx, p);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 24 },
			{ FAKE_SEND, 1, 14 }, { FAKE_CLOSE, 1, 0 });
}

static void connect_partial_connect_payload_sends_remainder(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 10);

	start(fx, p, &r);
	/* The handshake carried only 4 of the 10 bytes. */
	fake_complete(p->conn, IOCX_OK, 0, 4);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 0);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 10 },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 6 });
	fake_complete(p->conn, IOCX_OK, 0, 6);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 10);
	assert_memory_equal(fake_sock(p->id)->capture, payload, 10);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 10, .open = 1);
	close_and_pump(fx, p);
}

static void connect_copy_payload_survives_caller_scribble(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned char buf[40];
	struct iocx_connect_request r = request(fx, p);

	memcpy(buf, payload, sizeof(buf));
	r.payload = buf;
	r.payload_len = sizeof(buf);
	r.payload_ownership = IOCX_PAYLOAD_COPY;
	start(fx, p, &r);
	/* The caller's buffer is free as soon as iocx_connect returns. */
	memset(buf, 0xEE, sizeof(buf));
	assert_ptr_not_equal(fake_sock(p->id)->last_buf, buf);

	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->op, FAKE_SEND);
	fake_complete(p->conn, IOCX_OK, 0, 40 - CAP);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 40);
	assert_memory_equal(fake_sock(p->id)->capture, payload, 40);
	close_and_pump(fx, p);
}

static void connect_borrow_payload_uses_caller_buffer(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	unsigned char buf[40];
	struct iocx_connect_request r = request(fx, p);

	memcpy(buf, payload, sizeof(buf));
	r.payload = buf;
	r.payload_len = sizeof(buf);
	r.payload_ownership = IOCX_PAYLOAD_BORROW;
	start(fx, p, &r);
	assert_ptr_equal(fake_sock(p->id)->last_buf, buf);

	fake_complete(p->conn, IOCX_OK, 0, CAP);
	fake_pump(fx->e);
	assert_ptr_equal(fake_sock(p->id)->last_buf, buf + CAP);
	fake_complete(p->conn, IOCX_OK, 0, 40 - CAP);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 40);
	assert_memory_equal(fake_sock(p->id)->capture, payload, 40);
	close_and_pump(fx, p);
}

static void connect_max_payload_accepted(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);
	unsigned char *big = calloc(1, IOCX_MAX_PAYLOAD);

	assert_non_null(big);
	r.payload = big;
	r.payload_len = IOCX_MAX_PAYLOAD;
	r.payload_ownership = IOCX_PAYLOAD_BORROW;
	start(fx, p, &r);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP });
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	free(big);
	assert_int_equal(p->closes, 1);
}

static void connect_fastopen_accepted_is_reported(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);

	r.flags = IOCX_CONNECT_FASTOPEN;
	start(fx, p, &r);
	check_stats(fx, .connects_started = 1, .fastopen_used = 1,
		    .in_flight = 1, .open = 1);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_true(p->res.fastopen);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .fastopen_used = 1, .closed = 1);
}

static void connect_fastopen_refused_connects_without(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 8);

	r.flags = IOCX_CONNECT_FASTOPEN;
	fake_set_fastopen(false);
	start(fx, p, &r);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 8 });
	fake_complete(p->conn, IOCX_OK, 0, 8);
	expect_value(cb_connect, status, IOCX_OK);
	fake_pump(fx->e);
	assert_false(p->res.fastopen);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 8, .closed = 1);
}

static void connect_without_fastopen_flag_reports_false(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	assert_false(p->res.fastopen);
	assert_false(fake_sock(p->id)->fastopen);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void connect_latency_is_positive(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	let_clock_tick();
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_true(p->res.latency_ns > 0);
	close_and_pump(fx, p);
}

static void conn_user_returns_request_user(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	assert_ptr_equal(iocx_conn_user(p->conn), p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
}

static void connect_without_on_close_closes_quietly(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);

	r.on_close = NULL;
	start(fx, p, &r);
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 0);
	assert_true(fake_sock(p->id)->closed);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void close_open_abort_resets(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	assert_true(fake_sock(p->id)->abort);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_CLOSE, 1, 1 });
}

/* ---- failures reported through on_connect --------------------------- */

static void connect_refused_reports_error_with_socket_closed(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	cfx_complete_connect(fx->e, p->conn, IOCX_E_REFUSED, 10061);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->res.os_code, 10061);
	assert_int_equal(p->res.payload_sent, 0);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CLOSE, 1, FAKE_ANY });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_REFUSED] = 1, .open = 1);

	/* The handle still waits for iocx_close; the socket is not closed
	 * a second time. */
	close_and_pump(fx, p);
	assert_int_equal(p->connects, 1);
	assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_REFUSED] = 1, .closed = 1);
}

static void connect_timeout_reports_timedout(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	cfx_complete_connect(fx->e, p->conn, IOCX_E_TIMEDOUT, 0xC00000B5u);
	assert_int_equal(p->res.os_code, 0xC00000B5u);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1, .closed = 1);
}

static void connect_send_failure_reports_error(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_sending(fx, p);
	cfx_complete_connect(fx->e, p->conn, IOCX_E_RESET, 0xC000020Du);
	assert_int_equal(p->res.os_code, 0xC000020Du);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 40 - CAP },
			{ FAKE_CLOSE, 1, FAKE_ANY });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_RESET] = 1, .payload_bytes = CAP,
		    .open = 1);
	close_and_pump(fx, p);
}

static void connect_send_sync_failure_reports_error(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 40);

	start(fx, p, &r);
	fake_fail_next(FAKE_SEND, IOCX_E_NOMEM);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	expect_value(cb_connect, status, IOCX_E_NOMEM);
	fake_pump(fx->e);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 40 - CAP },
			{ FAKE_CLOSE, 1, FAKE_ANY });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_NOMEM] = 1, .payload_bytes = CAP,
		    .open = 1);
	close_and_pump(fx, p);
}

static void connect_connected_failure_reports_error(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 40);

	start(fx, p, &r);
	fake_fail_next(FAKE_CONNECTED, IOCX_E_SYSTEM);
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	expect_value(cb_connect, status, IOCX_E_SYSTEM);
	fake_pump(fx->e);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_CLOSE, 1, FAKE_ANY });
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_SYSTEM] = 1, .payload_bytes = CAP,
		    .closed = 1);
}

/* ---- synchronous failures ------------------------------------------- */

static void connect_open_failure_returns_error(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);
	iocx_conn *out = NULL;

	fake_fail_next(FAKE_OPEN, IOCX_E_PORTS_EXHAUSTED);
	assert_int_equal(iocx_connect(fx->e, &r, &out), IOCX_E_PORTS_EXHAUSTED);
	assert_null(out);
	assert_fake_log({ FAKE_OPEN, 1, 0 });
	assert_int_equal(fake_pending(fx->e), 0);
	check_stats(fx, .in_flight = 0);
	assert_int_equal(p->connects + p->closes, 0);
}

static void connect_sync_connect_failure_closes_socket(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 8);
	iocx_conn *out = NULL;

	fake_fail_next(FAKE_CONNECT, IOCX_E_ADDRINUSE);
	assert_int_equal(iocx_connect(fx->e, &r, &out), IOCX_E_ADDRINUSE);
	assert_null(out);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 8 },
			{ FAKE_CLOSE, 1, FAKE_ANY });
	assert_true(fake_sock(1)->closed);
	assert_int_equal(fake_pending(fx->e), 0);
	check_stats(fx, .in_flight = 0);
	assert_int_equal(p->connects + p->closes, 0);

	/* Nothing is left behind: the engine still works. */
	make_open(fx, p);
	close_and_pump(fx, p);
}

static void connect_nomem_returns_nomem(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 8);

	alloc_fail_nth(0);
	check_rejected(fx, fx->e, &r, IOCX_E_NOMEM);
	assert_int_equal(hook_failed, 1);
}

/* ---- bad input ------------------------------------------------------ */

static void connect_null_engine_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	check_rejected(fx, NULL, &r, IOCX_E_INVAL);
}

static void connect_null_request_returns_inval(void **state)
{
	struct fx *fx = *state;

	check_rejected(fx, fx->e, NULL, IOCX_E_INVAL);
}

static void connect_null_remote_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.remote = NULL;
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
}

static void connect_null_on_connect_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.on_connect = NULL;
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
}

static void connect_payload_len_without_payload_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.payload_len = 1;
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
}

static void connect_unknown_flags_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.flags = 1u << 1;
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
	r.flags = IOCX_CONNECT_FASTOPEN | (1u << 31);
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
}

static void connect_unknown_ownership_returns_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request_payload(fx, &fx->p[0], 4);

	r.payload_ownership = (enum iocx_payload_ownership)7;
	check_rejected(fx, fx->e, &r, IOCX_E_INVAL);
}

static void connect_unix_family_returns_afnosupport(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	r.remote = (const struct sockaddr *)&ss;
	r.remote_len = sizeof(ss);
	check_rejected(fx, fx->e, &r, IOCX_E_AFNOSUPPORT);
}

static void connect_short_ipv4_length_returns_addrlen(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.remote_len = sizeof(struct sockaddr_in) - 1;
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRLEN);
}

static void connect_short_ipv6_length_returns_addrlen(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(struct sockaddr_in);
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRLEN);
}

static void connect_zero_ipv4_address_returns_addrnotavail(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	memset(&fx->v4.sin_addr, 0, sizeof(fx->v4.sin_addr));
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRNOTAVAIL);
}

static void connect_zero_ipv6_address_returns_addrnotavail(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	memset(&fx->v6.sin6_addr, 0, sizeof(fx->v6.sin6_addr));
	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(fx->v6);
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRNOTAVAIL);
}

static void connect_v4_mapped_zero_address_returns_addrnotavail(void **s)
{
	struct fx *fx = *s;
	struct iocx_connect_request r = request(fx, &fx->p[0]);
	static const unsigned char mapped0[16] = { [10] = 0xff, [11] = 0xff };

	/* ::ffff:0.0.0.0 is 0.0.0.0 in IPv6 clothing. */
	memcpy(&fx->v6.sin6_addr, mapped0, sizeof(mapped0));
	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(fx->v6);
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRNOTAVAIL);
}

static void connect_port_zero_returns_addrnotavail(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);

	fx->v4.sin_port = 0;
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRNOTAVAIL);
	fx->v6.sin6_port = 0;
	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(fx->v6);
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRNOTAVAIL);
}

static void connect_payload_above_max_returns_msgsize(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request_payload(fx, &fx->p[0], 0);

	/* Only 64 bytes are real: nothing may touch the rest. */
	r.payload_len = (size_t)IOCX_MAX_PAYLOAD + 1;
	check_rejected(fx, fx->e, &r, IOCX_E_MSGSIZE);
	r.payload_ownership = IOCX_PAYLOAD_BORROW;
	check_rejected(fx, fx->e, &r, IOCX_E_MSGSIZE);
}

static void connect_local_other_family_returns_afnosupport(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);
	struct sockaddr_in6 local6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in local4 = { .sin_family = AF_INET };

	r.local = (const struct sockaddr *)&local6;
	r.local_len = sizeof(local6);
	check_rejected(fx, fx->e, &r, IOCX_E_AFNOSUPPORT);

	r.remote = (const struct sockaddr *)&fx->v6;
	r.remote_len = sizeof(fx->v6);
	r.local = (const struct sockaddr *)&local4;
	r.local_len = sizeof(local4);
	check_rejected(fx, fx->e, &r, IOCX_E_AFNOSUPPORT);
}

static void connect_local_unix_family_returns_afnosupport(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	r.local = (const struct sockaddr *)&ss;
	r.local_len = sizeof(ss);
	check_rejected(fx, fx->e, &r, IOCX_E_AFNOSUPPORT);
}

static void connect_local_short_length_returns_addrlen(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = request(fx, &fx->p[0]);
	struct sockaddr_in local4 = { .sin_family = AF_INET };

	r.local = (const struct sockaddr *)&local4;
	r.local_len = sizeof(local4) - 1;
	check_rejected(fx, fx->e, &r, IOCX_E_ADDRLEN);
}

static void connect_local_wildcard_accepted(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request(fx, p);
	struct sockaddr_in local4 = { .sin_family = AF_INET };

	/* 0.0.0.0:0 is a valid local address (any interface, any port). */
	r.local = (const struct sockaddr *)&local4;
	r.local_len = sizeof(local4);
	start(fx, p, &r);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
}

static void close_bad_arguments_return_inval(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	fake_log_clear();
	assert_int_equal(iocx_close(NULL, IOCX_CLOSE_GRACEFUL), IOCX_E_INVAL);
	assert_int_equal(iocx_close(p->conn, (enum iocx_close_mode)2),
			 IOCX_E_INVAL);
	assert_int_equal(iocx_close(p->conn, (enum iocx_close_mode)-1),
			 IOCX_E_INVAL);
	assert_int_equal(fake_log_len(), 0);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(p->closes, 0);
	/* The rejected calls did not count as a close request. */
	close_and_pump(fx, p);
}

static void close_post_failure_takes_effect_at_destroy(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	fake_fail_next(FAKE_POST, IOCX_E_SYSTEM);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_SYSTEM);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_false(fake_sock(p->id)->closed);
	/* The request stays recorded... */
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	/* ...and an open connection has no next event: destroy acts on it
	 * as the user's close. */
	expect_value(cb_close, reason, IOCX_OK);
	destroy(fx);
	assert_int_equal(p->closes, 1);
	assert_true(p->sock_closed_at_close);
}

static void close_post_failure_takes_effect_at_next_event(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	fake_fail_next(FAKE_POST, IOCX_E_SYSTEM);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_SYSTEM);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(fake_sock(p->id)->cancels, 0);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

/* ---- iocx_close while an operation is in flight ---------------------- */

static void close_while_connecting_cancels(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	assert_int_equal(p->connects + p->closes, 0);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(p->seq_close > p->seq_connect);
	assert_true(p->sock_closed_at_connect);
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 1 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .errors[-IOCX_E_CANCELLED] = 1,
		    .closed = 1);
}

static void close_while_connecting_waits_for_completion(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	/* Cancel asked; the socket stays until the operation finished. */
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	assert_false(fake_sock(p->id)->closed);
	assert_int_equal(p->connects + p->closes, 0);
	check_stats(fx, .connects_started = 1, .in_flight = 1, .open = 1);

	fake_complete(p->conn, IOCX_E_CANCELLED, 0xC0000120u, 0);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 0 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .errors[-IOCX_E_CANCELLED] = 1,
		    .closed = 1);
}

static void close_while_connecting_queued_success_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	/* The connect finished before the close request was looked at. */
	fake_complete(p->conn, IOCX_OK, 0, 0);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(p->seq_close > p->seq_connect);
	assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void close_while_connecting_success_after_cancel_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 8);

	start(fx, p, &r);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	/* The cancel came too late: the connect and its payload made it. */
	fake_complete(p->conn, IOCX_OK, 0, 8);
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, 8);
	assert_int_equal(p->closes, 1);
	/* Connected before the close, so the close mode (linger) applies. */
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, 8 },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CONNECTED, 1, 0 },
			{ FAKE_CLOSE, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1,
		    .payload_bytes = 8, .closed = 1);
}

static void close_while_connecting_partial_payload_resets(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct iocx_connect_request r = request_payload(fx, p, 40);

	start(fx, p, &r);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	/* The handshake made it with the first 16 bytes, the rest never
	 * will: the peer must not see a FIN after a truncated payload. */
	fake_complete(p->conn, IOCX_OK, 0, CAP);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_int_equal(p->res.os_code, 0);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CONNECTED, 1, 0 },
			{ FAKE_CLOSE, 1, 1 });
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .errors[-IOCX_E_CANCELLED] = 1,
		    .payload_bytes = CAP, .closed = 1);
}

static void close_while_connecting_failure_after_cancel_wins(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	fake_complete(p->conn, IOCX_E_REFUSED, 10061, 0);
	expect_value(cb_connect, status, IOCX_E_REFUSED);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->res.os_code, 10061);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_REFUSED] = 1, .closed = 1);
}

static void close_while_sending_cancels_send(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_sending(fx, p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_true(p->sock_closed_at_connect);
	assert_fake_log({ FAKE_OPEN, 1, 0 }, { FAKE_CONNECT, 1, CAP },
			{ FAKE_CONNECTED, 1, 0 }, { FAKE_SEND, 1, 40 - CAP },
			{ FAKE_CANCEL, 1, 0 }, { FAKE_CLOSE, 1, 1 });
	/* Graceful was asked, but the payload was cut short: reset. */
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .connects_cancelled = 1, .errors[-IOCX_E_CANCELLED] = 1,
		    .payload_bytes = CAP, .closed = 1);
}

/* ---- iocx_close from inside on_connect, and twice ---------------------- */

static void close_inside_on_connect_needs_no_round_trip(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	p->act = ACT_CLOSE;
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_log_clear();
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx__engine_run(fx->e, 0), 1);
	/* on_close followed within the same event: nothing was posted. */
	assert_int_equal(p->act_rc, IOCX_OK);
	assert_int_equal(p->closes, 1);
	assert_true(p->seq_close > p->seq_connect);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(fake_count(FAKE_POST, 0), 0);
	assert_fake_log({ FAKE_CONNECTED, 1, 0 }, { FAKE_CLOSE, 1, 0 });
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void close_inside_on_connect_after_failure(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	p->act = ACT_CLOSE;
	fake_complete(p->conn, IOCX_E_NETUNREACH, 10051, 0);
	expect_value(cb_connect, status, IOCX_E_NETUNREACH);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx__engine_run(fx->e, 0), 1);
	assert_int_equal(p->act_rc, IOCX_OK);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_int_equal(fake_count(FAKE_POST, 0), 0);
	assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
	check_stats(fx, .connects_started = 1, .connects_failed = 1,
		    .errors[-IOCX_E_NETUNREACH] = 1, .closed = 1);
}

static void close_inside_other_on_connect_is_deferred(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];

	make_open(fx, b);
	start_plain(fx, a);
	a->act = ACT_CLOSE_OTHER;
	a->act_other = b->conn;
	fake_complete(a->conn, IOCX_OK, 0, 0);
	fake_log_clear();
	expect_value(cb_connect, status, IOCX_OK);
	assert_int_equal(iocx__engine_run(fx->e, 0), 1);
	/* b is not the connection whose callback runs: its close is posted
	 * and b's on_close waits for its own event. */
	assert_int_equal(a->act_rc, IOCX_OK);
	assert_int_equal(b->closes, 0);
	assert_int_equal(fake_count(FAKE_POST, b->id), 1);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(b->closes, 1);
	assert_int_equal(a->closes, 0);
	close_and_pump(fx, a);
}

static void close_twice_returns_already(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	assert_false(fake_sock(p->id)->abort);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void close_after_abortive_close_returns_already(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT),
			 IOCX_E_ALREADY);
	/* A reset is never turned back into a graceful close. */
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	assert_true(fake_sock(p->id)->abort);
}

static void abortive_close_after_graceful_one_resets(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT),
			 IOCX_E_ALREADY);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 1);
	assert_true(fake_sock(p->id)->abort);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

/* Run act inside on_connect: its second close returns rc2, and the socket
 * is reset or not. */
static void close_inside_on_connect(struct fx *fx, enum action act, int rc2,
				    bool reset)
{
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	p->act = act;
	fake_complete(p->conn, IOCX_OK, 0, 0);
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->act_rc, IOCX_OK);
	assert_int_equal(p->act_rc2, rc2);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fake_sock(p->id)->abort, reset);
}

static void close_twice_inside_on_connect_returns_already(void **state)
{
	close_inside_on_connect(*state, ACT_CLOSE_TWICE, IOCX_E_ALREADY,
				false);
}

static void close_made_abortive_inside_on_connect_resets(void **state)
{
	close_inside_on_connect(*state, ACT_CLOSE_RESET, IOCX_OK, true);
}

/*
 * A graceful close while connecting, and the connect won the race: the
 * socket is closed (FIN) before on_connect reports OK.  An abortive close
 * inside that callback has nothing left to reset: IOCX_E_ALREADY.
 */
static void abortive_close_after_graceful_socket_close_returns_already(
	void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	p->act = ACT_ABORT;
	expect_value(cb_connect, status, IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	fake_pump(fx->e);
	assert_true(p->sock_closed_at_connect);
	assert_false(fake_sock(p->id)->abort);
	assert_int_equal(p->act_rc, IOCX_E_ALREADY);
	assert_int_equal(p->closes, 1);
}

static void close_while_connecting_twice_returns_already(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
}

/* ---- in-flight cap -------------------------------------------------- */

static const struct iocx_engine_options opts_limit2 = {
	.max_in_flight = 2,
	.connect_payload_cap = CAP,
};

static const struct iocx_engine_options opts_limit1 = {
	.max_in_flight = 1,
	.connect_payload_cap = CAP,
};

static void connect_at_max_in_flight_returns_limit(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1], *c = &fx->p[2];
	struct iocx_connect_request rc = request(fx, c);

	start_plain(fx, a);
	start_plain(fx, b);
	check_rejected(fx, fx->e, &rc, IOCX_E_LIMIT);
	check_stats(fx, .connects_started = 2, .in_flight = 2, .open = 2);

	/* Once a is reported, there is room again. */
	cfx_complete_connect(fx->e, a->conn, IOCX_OK, 0);
	check_stats(fx, .connects_started = 2, .connects_ok = 1,
		    .in_flight = 1, .open = 2);
	start(fx, c, &rc);
	check_rejected(fx, fx->e, &rc, IOCX_E_LIMIT);

	expect_value_count(cb_connect, status, IOCX_E_CANCELLED, 2);
	expect_value_count(cb_close, reason, IOCX_OK, 3);
	assert_int_equal(iocx_close(a->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(b->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	assert_int_equal(iocx_close(c->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	check_stats(fx, .connects_started = 3, .connects_ok = 1,
		    .connects_failed = 2, .connects_cancelled = 2,
		    .errors[-IOCX_E_CANCELLED] = 2, .closed = 3);
}

static void connect_at_limit_failed_connect_frees_slot(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];
	struct iocx_connect_request rb = request(fx, b);

	make_failed(fx, a);
	/* A failed connect is reported, so it no longer counts. */
	start(fx, b, &rb);
	check_stats(fx, .connects_started = 2, .connects_failed = 1,
		    .errors[-IOCX_E_REFUSED] = 1, .in_flight = 1, .open = 2);
	close_and_pump(fx, a);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	assert_int_equal(iocx_close(b->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
}

static void connect_at_limit_sync_failure_frees_slot(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0];
	struct iocx_connect_request r = request(fx, a);

	fake_fail_next(FAKE_OPEN, IOCX_E_PORTS_EXHAUSTED);
	assert_int_equal(iocx_connect(fx->e, &r, NULL),
			 IOCX_E_PORTS_EXHAUSTED);
	fake_fail_next(FAKE_CONNECT, IOCX_E_ADDRINUSE);
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_ADDRINUSE);
	alloc_fail_nth(0);
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_NOMEM);
	check_stats(fx, .in_flight = 0);
	make_open(fx, a);
	close_and_pump(fx, a);
}

static void connect_inside_on_connect_at_limit_succeeds(void **state)
{
	struct fx *fx = *state;
	struct probe *a = &fx->p[0], *b = &fx->p[1];

	start_plain(fx, a);
	a->act = ACT_CONNECT;
	a->act_req = request(fx, b);
	cfx_complete_connect(fx->e, a->conn, IOCX_OK, 0);
	/* in_flight dropped before on_connect ran. */
	assert_int_equal(a->stats_at_connect.in_flight, 0);
	assert_int_equal(a->act_rc, IOCX_OK);
	assert_non_null(a->act_out);
	b->conn = a->act_out;
	b->id = fake_id(b->conn);
	assert_int_equal(b->connects, 0);
	check_stats(fx, .connects_started = 2, .connects_ok = 1,
		    .in_flight = 1, .open = 2);

	close_and_pump(fx, a);
	cfx_complete_connect(fx->e, b->conn, IOCX_OK, 0);
	close_and_pump(fx, b);
}

/* ---- engine destroy ------------------------------------------------- */

static void destroy_connecting_reports_cancelled_then_shutdown(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(p->seq_close > p->seq_connect);
	assert_true(p->sock_closed_at_connect);
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	assert_true(fake_sock(p->id)->closed);
}

static void destroy_sending_reports_cancelled_then_shutdown(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_sending(fx, p);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(p->res.payload_sent, CAP);
	assert_int_equal(p->closes, 1);
	assert_true(fake_sock(p->id)->closed);
}

static void destroy_open_reports_shutdown(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_true(p->sock_closed_at_close);
	assert_int_equal(fake_sock(p->id)->cancels, 0);
	/* Destroy resets an open connection (RST), it does not send FIN. */
	assert_true(fake_sock(p->id)->abort);
}

/*
 * Every post destroy makes fails: it gives up after IOCX__POST_TRIES
 * tries per connection and the pump delivers the SHUTDOWN by itself.
 */
static void destroy_post_failures_still_shut_down(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];
	struct probe *q = &fx->p[1];

	make_open(fx, p);
	start_plain(fx, q);
	fake_fail_times(FAKE_POST, IOCX_E_SYSTEM, 100000);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	fake_fail_times(FAKE_POST, IOCX_E_SYSTEM, 0);
	assert_int_equal(fake_count_posts(IOCX_EV_SHUTDOWN, p->id),
			 IOCX__POST_TRIES);
	assert_int_equal(fake_count_posts(IOCX_EV_SHUTDOWN, q->id),
			 IOCX__POST_TRIES);
	assert_int_equal(p->closes, 1);
	assert_true(p->sock_closed_at_close);
	assert_int_equal(q->connects, 1);
	assert_int_equal(q->closes, 1);
	assert_true(fake_sock(q->id)->closed);
}

/* A post that fails a few times, then succeeds, is used. */
static void destroy_post_retried_until_it_succeeds(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	fake_fail_times(FAKE_POST, IOCX_E_SYSTEM, 3);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(fake_count_posts(IOCX_EV_SHUTDOWN, p->id), 4);
	assert_int_equal(p->closes, 1);
}

static void destroy_failed_reports_shutdown(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_failed(fx, p);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
	assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
}

static void destroy_after_close_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	make_open(fx, p);
	/* The close request is still queued when destroy starts. */
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	expect_value(cb_close, reason, IOCX_OK);
	destroy(fx);
	assert_int_equal(p->closes, 1);
}

static void destroy_while_cancelling_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	fake_complete(p->conn, IOCX_E_CANCELLED, 0xC0000120u, 0);
	expect_value(cb_connect, status, IOCX_E_CANCELLED);
	expect_value(cb_close, reason, IOCX_OK);
	destroy(fx);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->closes, 1);
}

static void destroy_with_conns_in_every_state(void **state)
{
	struct fx *fx = *state;
	struct probe *connecting = &fx->p[0], *sending = &fx->p[1];
	struct probe *open = &fx->p[2], *failed = &fx->p[3];
	struct probe *closing = &fx->p[4], *cancelling = &fx->p[5];
	struct probe *late = &fx->p[6];
	unsigned i;

	for (i = 0; i < 7; i++)
		fx->p[i].unchecked = true;
	start_plain(fx, connecting);
	make_sending(fx, sending);
	make_open(fx, open);
	make_failed(fx, failed);
	start_plain(fx, cancelling);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(cancelling->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_completes(true);
	make_open(fx, closing);
	assert_int_equal(iocx_close(closing->conn, IOCX_CLOSE_GRACEFUL),
			 IOCX_OK);
	fake_complete(cancelling->conn, IOCX_E_CANCELLED, 0xC0000120u, 0);
	/* A connect attempted from a callback during destroy is refused. */
	connecting->act = ACT_CONNECT;
	connecting->act_req = request(fx, late);

	destroy(fx);

	assert_int_equal(connecting->connects, 1);
	assert_int_equal(connecting->res.status, IOCX_E_CANCELLED);
	assert_int_equal(connecting->closes, 1);
	assert_int_equal(connecting->reason, IOCX_E_SHUTDOWN);
	assert_int_equal(connecting->act_rc, IOCX_E_SHUTDOWN);
	assert_null(connecting->act_out);

	assert_int_equal(sending->connects, 1);
	assert_int_equal(sending->res.status, IOCX_E_CANCELLED);
	assert_int_equal(sending->closes, 1);
	assert_int_equal(sending->reason, IOCX_E_SHUTDOWN);

	assert_int_equal(open->connects, 1);
	assert_int_equal(open->res.status, IOCX_OK);
	assert_int_equal(open->closes, 1);
	assert_int_equal(open->reason, IOCX_E_SHUTDOWN);

	assert_int_equal(failed->connects, 1);
	assert_int_equal(failed->res.status, IOCX_E_REFUSED);
	assert_int_equal(failed->closes, 1);
	assert_int_equal(failed->reason, IOCX_E_SHUTDOWN);

	assert_int_equal(closing->connects, 1);
	assert_int_equal(closing->res.status, IOCX_OK);
	assert_int_equal(closing->closes, 1);
	assert_int_equal(closing->reason, IOCX_OK);

	assert_int_equal(cancelling->connects, 1);
	assert_int_equal(cancelling->res.status, IOCX_E_CANCELLED);
	assert_int_equal(cancelling->closes, 1);
	assert_int_equal(cancelling->reason, IOCX_OK);

	for (i = 0; i < 6; i++) {
		struct probe *p = &fx->p[i];

		assert_true(p->seq_close > p->seq_connect);
		assert_true(p->sock_closed_at_close);
		assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
		assert_int_equal(fake_sock(p->id)->stray_cancels, 0);
	}
	assert_int_equal(late->connects + late->closes, 0);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 6);
}

static void destroy_inside_callback_returns_incallback(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0];

	start_plain(fx, p);
	p->act = ACT_DESTROY;
	cfx_complete_connect(fx->e, p->conn, IOCX_OK, 0);
	assert_int_equal(p->act_rc, IOCX_E_INCALLBACK);
	/* Nothing happened: the engine and the connection go on. */
	assert_int_equal(fake_engines(), fx->engines + 1);
	assert_int_equal(fake_count(FAKE_POST, 0), 0);
	close_and_pump(fx, p);
	check_stats(fx, .connects_started = 1, .connects_ok = 1, .closed = 1);
}

static void connect_after_destroy_began_returns_shutdown(void **state)
{
	struct fx *fx = *state;
	struct probe *p = &fx->p[0], *q = &fx->p[1];

	/* on_close runs during destroy: connecting from there fails too. */
	make_failed(fx, p);
	p->connect_on_close = true;
	p->act_req = request(fx, q);
	expect_value(cb_close, reason, IOCX_E_SHUTDOWN);
	destroy(fx);
	assert_int_equal(p->act_rc, IOCX_E_SHUTDOWN);
	assert_null(p->act_out);
	assert_int_equal(q->connects + q->closes, 0);
	assert_int_equal(fake_count(FAKE_OPEN, 0), 1);
}

/* ---- engine lifecycle ----------------------------------------------- */

static void engine_backend_names_fake(void **state)
{
	struct fx *fx = *state;

	assert_string_equal(iocx_engine_backend(fx->e), "fake");
	assert_int_equal(iocx_engine_workers(fx->e), 0);
}

static void engine_create_null_out_returns_inval(void **state)
{
	(void)state;
	assert_int_equal(iocx__engine_create_with(&fake_backend, NULL,
						  IOCX__ENGINE_MANUAL, NULL),
			 IOCX_E_INVAL);
}

static void engine_create_batch_above_max_returns_inval(void **state)
{
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	(void)state;
	iocx_engine_options_init(&o);
	o.batch = 4097;
	assert_int_equal(iocx__engine_create_with(&fake_backend, &o,
						  IOCX__ENGINE_MANUAL, &e),
			 IOCX_E_INVAL);
	assert_null(e);
	o.batch = 4096;
	assert_int_equal(iocx__engine_create_with(&fake_backend, &o,
						  IOCX__ENGINE_MANUAL, &e),
			 IOCX_OK);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
}

static void engine_create_backend_failure_returns_it(void **state)
{
	struct fx *fx = *state;
	iocx_engine *e = NULL;

	fake_fail_next(FAKE_ENGINE_INIT, IOCX_E_SYSTEM);
	assert_int_equal(iocx__engine_create_with(&fake_backend, NULL,
						  IOCX__ENGINE_MANUAL, &e),
			 IOCX_E_SYSTEM);
	assert_null(e);
	assert_int_equal(fake_engines(), fx->engines + 1);
}

static void engine_create_nomem_at_each_allocation_fails_cleanly(void **s)
{
	struct fx *fx = *s;
	iocx_engine *e = NULL;
	long n;

	for (n = 0; n < 16; n++) {
		int rc;

		alloc_hooks_reset();
		alloc_fail_nth(n);
		rc = iocx__engine_create_with(&fake_backend, NULL,
					      IOCX__ENGINE_MANUAL, &e);
		if (rc == IOCX_OK)
			break;
		assert_int_equal(rc, IOCX_E_NOMEM);
		assert_null(e);
		assert_int_equal(hook_frees, hook_allocs);
	}
	assert_true(n > 0 && n < 16);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(fake_engines(), fx->engines + 1);
}

static void engine_create_destroy_repeatedly_leaks_nothing(void **state)
{
	struct fx *fx = *state;
	iocx_engine *e;
	unsigned i;

	for (i = 0; i < 64; i++) {
		struct probe *p = fx->p;
		struct iocx_connect_request r;

		memset(fx->p, 0, 3 * sizeof(*p));
		p[0].unchecked = p[1].unchecked = p[2].unchecked = true;
		assert_int_equal(iocx__engine_create_with(&fake_backend,
							  &fx->opts,
							  IOCX__ENGINE_MANUAL,
							  &e), IOCX_OK);
		r = request(fx, &p[0]);
		assert_int_equal(iocx_connect(e, &r, &p[0].conn), IOCX_OK);
		r = request_payload(fx, &p[1], 40);
		assert_int_equal(iocx_connect(e, &r, &p[1].conn), IOCX_OK);
		fake_complete(p[1].conn, IOCX_OK, 0, CAP);
		r = request(fx, &p[2]);
		assert_int_equal(iocx_connect(e, &r, &p[2].conn), IOCX_OK);
		fake_complete(p[2].conn, IOCX_E_REFUSED, 10061, 0);
		fake_pump(e);
		assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
		assert_int_equal(p[0].closes + p[1].closes + p[2].closes, 3);
		assert_int_equal(fake_engines(), fx->engines + 1);
	}
}

static void set_allocator_with_engine_alive_returns_already(void **state)
{
	(void)state;
	assert_int_equal(iocx_set_allocator(hook_alloc, hook_free),
			 IOCX_E_ALREADY);
}

static void set_allocator_null_keeps_current_allocator(void **state)
{
	struct fx *fx = *state;
	iocx_engine *e = NULL;

	destroy(fx);
	assert_int_equal(iocx_set_allocator(NULL, hook_free), IOCX_E_INVAL);
	assert_int_equal(iocx_set_allocator(hook_alloc, NULL), IOCX_E_INVAL);
	alloc_hooks_reset();
	assert_int_equal(iocx__engine_create_with(&fake_backend, NULL,
						  IOCX__ENGINE_MANUAL, &e),
			 IOCX_OK);
	assert_true(hook_allocs > 0);
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);
	assert_int_equal(hook_frees, hook_allocs);
}

/* ---- many connections ------------------------------------------------ */

static void connect_many_each_reported_once(void **state)
{
	struct fx *fx = *state;
	static const int outcome[8] = {
		IOCX_OK, IOCX_E_REFUSED, IOCX_OK, IOCX_E_TIMEDOUT,
		IOCX_E_HOSTUNREACH, IOCX_OK, IOCX_E_RESET, IOCX_OK,
	};
	unsigned i;

	for (i = 0; i < 8; i++) {
		fx->p[i].unchecked = true;
		start_plain(fx, &fx->p[i]);
	}
	/* Completions arrive in reverse order. */
	for (i = 8; i-- > 0;)
		fake_complete(fx->p[i].conn, outcome[i], 0, 0);
	fake_pump(fx->e);
	for (i = 0; i < 8; i++) {
		assert_int_equal(fx->p[i].connects, 1);
		assert_int_equal(fx->p[i].res.status, outcome[i]);
		assert_ptr_equal(fx->p[i].connect_conn, fx->p[i].conn);
	}
	check_stats(fx, .connects_started = 8, .connects_ok = 4,
		    .connects_failed = 4, .errors[-IOCX_E_REFUSED] = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1,
		    .errors[-IOCX_E_HOSTUNREACH] = 1,
		    .errors[-IOCX_E_RESET] = 1, .open = 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(iocx_close(fx->p[i].conn, IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	fake_pump(fx->e);
	for (i = 0; i < 8; i++) {
		assert_int_equal(fx->p[i].closes, 1);
		assert_int_equal(fx->p[i].reason, IOCX_OK);
	}
	check_stats(fx, .connects_started = 8, .connects_ok = 4,
		    .connects_failed = 4, .errors[-IOCX_E_REFUSED] = 1,
		    .errors[-IOCX_E_TIMEDOUT] = 1,
		    .errors[-IOCX_E_HOSTUNREACH] = 1,
		    .errors[-IOCX_E_RESET] = 1, .closed = 8);
}

/* ---- worker threads: destroy racing the last reference ---------------- */

/*
 * A minimal thread-safe backend for the one test that needs real workers:
 * connect completes at once, wait blocks for the next event, and posting a
 * SHUTDOWN can be slowed down so destroy holds the engine lock for long.
 */
#define MT_CONNS 64
#define MT_QUEUE 1024

static struct {
	iocx_mutex lock;
	iocx_cond cv;
	struct iocx_event ev[MT_QUEUE];
	unsigned head, len;
	bool slow_shutdown;
} mt;
static atomic_uint mt_connects;
static atomic_uint mt_closes[MT_CONNS];

static void spin_ns(uint64_t ns)
{
	uint64_t t0 = iocx__now_ns();

	while (iocx__now_ns() - t0 < ns)
		;
}

static void mt_push(const struct iocx_event *ev)
{
	iocx__mutex_lock(&mt.lock);
	if (mt.len < MT_QUEUE)
		mt.ev[(mt.head + mt.len++) % MT_QUEUE] = *ev;
	iocx__cond_broadcast(&mt.cv);
	iocx__mutex_unlock(&mt.lock);
}

static int mt_engine_init(struct iocx_engine *e)
{
	(void)e;
	return IOCX_OK;
}

static void mt_engine_fini(struct iocx_engine *e)
{
	(void)e;
}

static int mt_wait(struct iocx_engine *e, unsigned worker,
		   struct iocx_event *events, unsigned max, uint64_t timeout_ns)
{
	(void)e;
	(void)worker;
	(void)max;
	(void)timeout_ns;
	iocx__mutex_lock(&mt.lock);
	while (mt.len == 0)
		iocx__cond_wait(&mt.cv, &mt.lock);
	/* One event per call: workers interleave as much as possible. */
	events[0] = mt.ev[mt.head];
	mt.head = (mt.head + 1) % MT_QUEUE;
	mt.len--;
	iocx__mutex_unlock(&mt.lock);
	return 1;
}

static int mt_post(struct iocx_engine *e, enum iocx_event_kind kind,
		   struct iocx_conn *c)
{
	struct iocx_event ev = { .kind = kind, .conn = c };

	(void)e;
	if (kind == IOCX_EV_SHUTDOWN && mt.slow_shutdown)
		spin_ns(1000000);
	mt_push(&ev);
	return IOCX_OK;
}

static int mt_open(struct iocx_conn *c, bool *fastopen)
{
	(void)c;
	*fastopen = false;
	return IOCX_OK;
}

static int mt_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	struct iocx_event ev = { .kind = IOCX_EV_IO, .conn = c };

	(void)buf;
	(void)len;
	mt_push(&ev);
	return IOCX_OK;
}

static int mt_send(struct iocx_conn *c, const void *buf, size_t len)
{
	(void)c;
	(void)buf;
	(void)len;
	return IOCX_E_NOTSUP;
}

static int mt_connected(struct iocx_conn *c)
{
	(void)c;
	return IOCX_OK;
}

static void mt_cancel(struct iocx_conn *c, enum iocx_op op)
{
	(void)c;
	(void)op;
}

static void mt_close(struct iocx_conn *c, bool abort)
{
	(void)c;
	(void)abort;
}

static const struct iocx_backend mt_backend = {
	.name = "mt",
	.conn_size = sizeof(struct iocx_conn),
	.engine_init = mt_engine_init,
	.engine_fini = mt_engine_fini,
	.wait = mt_wait,
	.post = mt_post,
	.open = mt_open,
	.connect = mt_connect,
	.send = mt_send,
	.connected = mt_connected,
	.cancel = mt_cancel,
	.close = mt_close,
};

/* Callbacks on worker threads: count only, never assert (no longjmp). */
static void mt_on_connect(iocx_conn *conn,
			  const struct iocx_connect_result *r, void *user)
{
	(void)conn;
	(void)r;
	(void)user;
	atomic_fetch_add(&mt_connects, 1);
}

static void mt_on_close(iocx_conn *conn, int reason, void *user)
{
	(void)conn;
	(void)reason;
	/* Keep workers busy so their last unref overlaps destroy. */
	spin_ns(500000);
	atomic_fetch_add(&mt_closes[(uintptr_t)user], 1);
}

/* One engine: connect all, close all, destroy while the closes finish. */
static void mt_round(struct fx *fx)
{
	struct iocx_engine_options o = { .workers = 4 };
	struct iocx_connect_request r = request(fx, NULL);
	iocx_conn *conns[MT_CONNS];
	iocx_engine *e = NULL;
	uint64_t t0;
	unsigned i;

	mt.slow_shutdown = false;
	atomic_store(&mt_connects, 0);
	for (i = 0; i < MT_CONNS; i++)
		atomic_store(&mt_closes[i], 0);
	assert_int_equal(iocx__engine_create_with(&mt_backend, &o, 0, &e),
			 IOCX_OK);
	r.on_connect = mt_on_connect;
	r.on_close = mt_on_close;
	for (i = 0; i < MT_CONNS; i++) {
		r.user = (void *)(uintptr_t)i;
		assert_int_equal(iocx_connect(e, &r, &conns[i]), IOCX_OK);
	}
	t0 = iocx__now_ns();
	while (atomic_load(&mt_connects) < MT_CONNS &&
	       iocx__now_ns() - t0 < 10000000000ull)
		;
	assert_int_equal(atomic_load(&mt_connects), MT_CONNS);

	/*
	 * Workers drop the last reference of these connections while
	 * destroy walks the list with the engine lock held (slowly): it
	 * must not revive a connection that is already being freed.
	 */
	for (i = 0; i < MT_CONNS; i++)
		assert_int_equal(iocx_close(conns[i], IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
	mt.slow_shutdown = true;
	assert_int_equal(iocx_engine_destroy(e), IOCX_OK);

	for (i = 0; i < MT_CONNS; i++)
		assert_int_equal(atomic_load(&mt_closes[i]), 1);
	assert_int_equal(mt.len, 0);
}

static void destroy_racing_last_close_frees_each_conn_once(void **state)
{
	struct fx *fx = *state;
	unsigned round;

	destroy(fx);
	memset(&mt, 0, sizeof(mt));
	iocx__mutex_init(&mt.lock);
	iocx__cond_init(&mt.cv);
	alloc_hooks_lock();
	/* The window is narrow: a few rounds make a regression show. */
	for (round = 0; round < 3; round++)
		mt_round(fx);
	alloc_hooks_unlock();
	iocx__cond_destroy(&mt.cv);
	iocx__mutex_destroy(&mt.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TO(fn, o) cmocka_unit_test_prestate_setup_teardown(fn, setup,	\
		teardown, (void *)(o))
		T(connect_without_payload_reports_ok),
		T(connect_ipv6_reports_ok),
		T(connect_copies_remote_address),
		T(connect_long_address_length_accepted),
		T(connect_null_out_still_connects),
		T(connect_payload_within_cap_rides_on_connect),
		T(connect_payload_equal_cap_rides_on_connect),
		T(connect_payload_above_cap_sends_rest_before_report),
		T(connect_partial_connect_payload_sends_remainder),
		T(connect_copy_payload_survives_caller_scribble),
		T(connect_borrow_payload_uses_caller_buffer),
		T(connect_max_payload_accepted),
		T(connect_fastopen_accepted_is_reported),
		T(connect_fastopen_refused_connects_without),
		T(connect_without_fastopen_flag_reports_false),
		T(connect_latency_is_positive),
		T(conn_user_returns_request_user),
		T(connect_without_on_close_closes_quietly),
		T(close_open_abort_resets),
		T(connect_refused_reports_error_with_socket_closed),
		T(connect_timeout_reports_timedout),
		T(connect_send_failure_reports_error),
		T(connect_send_sync_failure_reports_error),
		T(connect_connected_failure_reports_error),
		T(connect_open_failure_returns_error),
		T(connect_sync_connect_failure_closes_socket),
		T(connect_nomem_returns_nomem),
		T(connect_null_engine_returns_inval),
		T(connect_null_request_returns_inval),
		T(connect_null_remote_returns_inval),
		T(connect_null_on_connect_returns_inval),
		T(connect_payload_len_without_payload_returns_inval),
		T(connect_unknown_flags_returns_inval),
		T(connect_unknown_ownership_returns_inval),
		T(connect_unix_family_returns_afnosupport),
		T(connect_short_ipv4_length_returns_addrlen),
		T(connect_short_ipv6_length_returns_addrlen),
		T(connect_zero_ipv4_address_returns_addrnotavail),
		T(connect_zero_ipv6_address_returns_addrnotavail),
		T(connect_v4_mapped_zero_address_returns_addrnotavail),
		T(connect_port_zero_returns_addrnotavail),
		T(connect_payload_above_max_returns_msgsize),
		T(connect_local_other_family_returns_afnosupport),
		T(connect_local_unix_family_returns_afnosupport),
		T(connect_local_short_length_returns_addrlen),
		T(connect_local_wildcard_accepted),
		T(close_bad_arguments_return_inval),
		T(close_post_failure_takes_effect_at_destroy),
		T(close_post_failure_takes_effect_at_next_event),
		T(close_while_connecting_cancels),
		T(close_while_connecting_waits_for_completion),
		T(close_while_connecting_queued_success_wins),
		T(close_while_connecting_success_after_cancel_wins),
		T(close_while_connecting_partial_payload_resets),
		T(close_while_connecting_failure_after_cancel_wins),
		T(close_while_sending_cancels_send),
		T(close_inside_on_connect_needs_no_round_trip),
		T(close_inside_on_connect_after_failure),
		T(close_inside_other_on_connect_is_deferred),
		T(close_twice_returns_already),
		T(close_after_abortive_close_returns_already),
		T(abortive_close_after_graceful_one_resets),
		T(close_twice_inside_on_connect_returns_already),
		T(close_made_abortive_inside_on_connect_resets),
		T(abortive_close_after_graceful_socket_close_returns_already),
		T(close_while_connecting_twice_returns_already),
		TO(connect_at_max_in_flight_returns_limit, &opts_limit2),
		TO(connect_at_limit_failed_connect_frees_slot, &opts_limit1),
		TO(connect_at_limit_sync_failure_frees_slot, &opts_limit1),
		TO(connect_inside_on_connect_at_limit_succeeds, &opts_limit1),
		T(destroy_connecting_reports_cancelled_then_shutdown),
		T(destroy_sending_reports_cancelled_then_shutdown),
		T(destroy_open_reports_shutdown),
		T(destroy_post_failures_still_shut_down),
		T(destroy_post_retried_until_it_succeeds),
		T(destroy_failed_reports_shutdown),
		T(destroy_after_close_reports_ok),
		T(destroy_while_cancelling_reports_ok),
		T(destroy_with_conns_in_every_state),
		T(destroy_inside_callback_returns_incallback),
		T(connect_after_destroy_began_returns_shutdown),
		T(engine_backend_names_fake),
		T(engine_create_null_out_returns_inval),
		T(engine_create_batch_above_max_returns_inval),
		T(engine_create_backend_failure_returns_it),
		T(engine_create_nomem_at_each_allocation_fails_cleanly),
		T(engine_create_destroy_repeatedly_leaks_nothing),
		T(set_allocator_with_engine_alive_returns_already),
		T(set_allocator_null_keeps_current_allocator),
		T(connect_many_each_reported_once),
		T(destroy_racing_last_close_frees_each_conn_once),
#undef T
#undef TO
	};

	return cmocka_run_group_tests_name("conn", tests, group_setup,
					   cfx_group_teardown);
}
