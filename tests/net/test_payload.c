/*
 * First payloads: what the peer really receives, byte for byte, for a
 * payload that fits in ConnectEx, one exactly at the cap, and ones above
 * it (default and configured caps) whose remainder goes out with sends;
 * on_connect must come only after every byte was handed to the OS; COPY
 * and BORROW ownership.  On Linux the connect carries nothing: the head
 * (up to the cap) is sent as soon as it completes, the rest after it.
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

enum scribble {
	SCRIBBLE_NONE,
	SCRIBBLE_AFTER_CONNECT_CALL,	/* COPY: right after iocx_connect */
	SCRIBBLE_IN_ON_CONNECT,		/* BORROW: the buffer is ours again */
};

struct payload_ctx {
	struct peer *peer;
	size_t len;
	unsigned char *buf;		/* the caller's buffer */
	enum scribble scribble;
};

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec;
	struct payload_ctx ctx;	/* read by the hook on a worker */
	size_t cap;		/* the engine's connect_payload_cap */
	long live0;
};

static int fx_setup(void **state, size_t cap)
{
	struct iocx_engine_options o;
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(&f->rec, 1, &f->trk);
	peer_sys_install();
	iocx_engine_options_init(&o);
	o.connect_payload_cap = cap;
	f->cap = cap ? cap : IOCX_DEFAULT_CONNECT_PAYLOAD_CAP;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	/* Only the connection's own calls from here on. */
	peer_sys_clear();
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	f->live0 = peer_alloc_live();
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, 0);
}

static int setup_cap100(void **state)
{
	return fx_setup(state, 100);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	peer_sys_uninstall();
	peer_close(f->peer);
	free(f);
	return 0;
}

/* Bytes that differ at every offset within 251 * 256, to catch reorders. */
static unsigned char *pattern(size_t len)
{
	unsigned char *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 131 + i / 251);
	return p;
}

/*
 * Runs inside on_connect, on a worker.  Everything was handed to the OS
 * before on_connect, so the peer gets all of it while this callback still
 * blocks the connection; an engine that sends the remainder after
 * on_connect would time out here.
 */
static void payload_hook(struct peer_rec *r, iocx_conn *conn,
			 const struct iocx_connect_result *res)
{
	struct payload_ctx *c = r->ctx;

	(void)conn;
	if (res->status != IOCX_OK)
		return;
	if (c->scribble == SCRIBBLE_IN_ON_CONNECT)
		memset(c->buf, 0xEE, c->len);
	r->hook_rc[0] = peer_wait_bytes(c->peer, 0, c->len, PEER_TIMEOUT_MS);
}

static void run_payload(struct fx *f, size_t len,
			enum iocx_payload_ownership own, enum scribble scr)
{
	struct peer_rec *r = &f->rec;
	unsigned char *want = pattern(len);
	unsigned char *buf = pattern(len);
	struct iocx_connect_request req;
	struct peer_sys_event cx, first;
	struct peer_accepted *a;
	struct iocx_stats s;
	size_t head = len < f->cap ? len : f->cap;
	size_t sent = 0, n;
	SOCKET sock;

	f->ctx.peer = f->peer;
	f->ctx.len = len;
	f->ctx.buf = buf;
	f->ctx.scribble = scr;
	r->ctx = &f->ctx;
	r->on_connect_hook = payload_hook;
	peer_req(&req, &f->peer->addr, f->peer->addr_len, r);
	req.payload = buf;
	req.payload_len = len;
	req.payload_ownership = own;
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_OK);
	if (scr == SCRIBBLE_AFTER_CONNECT_CALL)
		memset(buf, 0xEE, len);

	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(r->status, IOCX_OK);
	assert_int_equal(r->os_code, 0);
	assert_int_equal(r->payload_sent, len);
	if (r->hook_rc[0] != 1)
		fail_msg("peer had %zu of %zu bytes when on_connect ran: the "
			 "remainder was not sent before on_connect",
			 f->peer->conns[0].len, len);

	sock = peer_sys_socket(0);
	assert_int_equal(peer_sys_find(SYS_CONNECT, sock, 0, 0, &cx), 1);
	for (size_t i = 0; i < peer_sys_count(); i++) {
		struct peer_sys_event ev = peer_sys_event(i);

		if (ev.kind == SYS_SEND && ev.s == sock && ev.ok)
			sent += ev.bytes;
	}
	n = peer_sys_find(SYS_SEND, sock, 0, 0, &first);
#ifdef _WIN32
	/* ConnectEx carries min(len, cap); sends carry the rest. */
	assert_int_equal(cx.bytes, head);
	if (len <= f->cap)
		assert_int_equal(n, 0);
	else
		assert_true(n >= 1 && sent >= len - head);
#else
	/* The first send after the connect offers min(len, cap). */
	assert_int_equal(cx.bytes, 0);
	assert_true(n >= 1 && sent >= len);
	assert_int_equal(first.bytes, head);
	assert_true(cx.seq < first.seq);
	if (len <= f->cap)
		assert_int_equal(n, 1);
#endif

	s = (struct iocx_stats){ 0 };
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.payload_bytes, len);
	assert_int_equal(s.connects_ok, 1);

	assert_int_equal(iocx_close(r->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_int_equal(r->reason, IOCX_OK);
	assert_true(peer_wait_eof(f->peer, 0, PEER_TIMEOUT_MS));
	a = &f->peer->conns[0];
	assert_int_equal(a->error, 0);
	assert_int_equal(a->len, len);
	assert_memory_equal(a->data, want, len);

	assert_false(peer_sys_overflowed());
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
	free(want);
	free(buf);
}

static void payload_small_arrives_intact(void **state)
{
	run_payload(*state, 13, IOCX_PAYLOAD_COPY, SCRIBBLE_NONE);
}

static void payload_equal_to_cap_rides_connect(void **state)
{
	run_payload(*state, IOCX_DEFAULT_CONNECT_PAYLOAD_CAP,
		    IOCX_PAYLOAD_COPY, SCRIBBLE_NONE);
}

static void payload_above_default_cap_arrives_intact(void **state)
{
	run_payload(*state, 64 * 1024, IOCX_PAYLOAD_BORROW, SCRIBBLE_NONE);
}

static void payload_above_configured_cap_arrives_intact(void **state)
{
	run_payload(*state, 1000, IOCX_PAYLOAD_COPY, SCRIBBLE_NONE);
}

static void payload_max_size_arrives_intact(void **state)
{
	run_payload(*state, IOCX_MAX_PAYLOAD, IOCX_PAYLOAD_BORROW,
		    SCRIBBLE_NONE);
}

static void payload_copy_survives_caller_scribble(void **state)
{
	run_payload(*state, 64 * 1024, IOCX_PAYLOAD_COPY,
		    SCRIBBLE_AFTER_CONNECT_CALL);
}

static void payload_copy_small_survives_caller_scribble(void **state)
{
	run_payload(*state, 13, IOCX_PAYLOAD_COPY,
		    SCRIBBLE_AFTER_CONNECT_CALL);
}

static void payload_borrow_is_released_at_on_connect(void **state)
{
	run_payload(*state, 64 * 1024, IOCX_PAYLOAD_BORROW,
		    SCRIBBLE_IN_ON_CONNECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(payload_small_arrives_intact,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			payload_equal_to_cap_rides_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(
			payload_above_default_cap_arrives_intact, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			payload_above_configured_cap_arrives_intact,
			setup_cap100, teardown),
		cmocka_unit_test_setup_teardown(
			payload_max_size_arrives_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(
			payload_copy_survives_caller_scribble, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			payload_copy_small_survives_caller_scribble, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			payload_borrow_is_released_at_on_connect, setup,
			teardown),
	};

	peer_init(240);
	return cmocka_run_group_tests_name("net_payload", tests, NULL, NULL);
}
