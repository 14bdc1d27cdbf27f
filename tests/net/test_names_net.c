/*
 * Connects by host on real loopback sockets.  A numeric host ("127.0.0.1",
 * "[::1]") connects like the address itself: the peer receives the first
 * payload exactly once, and the result names the peer connected to.  A
 * malformed host is refused synchronously with no callback.  (Names that
 * need resolving come with the resolver: docs/names.md.)
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

struct fx {
	iocx_engine *engine;
	struct peer_tracker trk;
	struct peer_rec rec;
	long live0;		/* blocks of the idle engine */
	long live_none;		/* ... and without it */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	peer_tracker_init(&f->trk);
	peer_recs_init(&f->rec, 1, &f->trk);
	f->live_none = peer_alloc_live();
	if (iocx_engine_create(NULL, &f->engine) != IOCX_OK)
		return -1;
	f->live0 = peer_alloc_live();	/* the idle engine's blocks */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->engine != NULL)
		assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	free(f);
	return 0;
}

/* Connect to host:port of a listener on ip and check what arrived. */
static void run_numeric(struct fx *f, int family, const char *ip,
			const char *host)
{
	static const char payload[] = "one payload, once";
	struct peer *p = peer_listen(family, ip, PEER_READ);
	struct iocx_connect_request req;
	iocx_conn *conn = NULL;

	assert_non_null(p);
	peer_req_host(&req, host, p->port, &f->rec);
	req.payload = payload;
	req.payload_len = sizeof(payload);
	assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 0, PEER_TIMEOUT_MS);
	assert_int_equal(f->rec.status, IOCX_OK);
	assert_true(peer_wait_bytes(p, 0, sizeof(payload), PEER_TIMEOUT_MS));
	assert_int_equal(p->conns[0].len, sizeof(payload));
	assert_memory_equal(p->conns[0].data, payload, sizeof(payload));
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	peer_assert_wait(&f->trk, 1, 1, PEER_TIMEOUT_MS);
	assert_true(peer_wait_eof(p, 0, PEER_TIMEOUT_MS));
	assert_int_equal(p->conns[0].len, sizeof(payload));
	peer_assert_clean(&f->trk);
	peer_close(p);
	peer_assert_no_leak(f->live0);
}

static void connect_host_ipv4_literal_delivers_payload_once(void **state)
{
	run_numeric(*state, AF_INET, "127.0.0.1", "127.0.0.1");
}

static void connect_host_ipv6_literal_delivers_payload_once(void **state)
{
	if (!peer_ipv6_available())
		skip();
	run_numeric(*state, AF_INET6, "::1", "[::1]");
}

static void connect_host_malformed_refused_without_callback(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;

	peer_req_host(&req, "bad host", 9, &f->rec);
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_E_INVAL);
	req.host = "127.0.0.256";
	assert_int_equal(iocx_connect(f->engine, &req, NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_destroy(f->engine), IOCX_OK);
	f->engine = NULL;
	assert_int_equal(f->trk.connects, 0);
	assert_int_equal(f->trk.closes, 0);
	peer_assert_no_leak(f->live_none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			connect_host_ipv4_literal_delivers_payload_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_ipv6_literal_delivers_payload_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_malformed_refused_without_callback, setup,
			teardown),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("net_names", tests, NULL, NULL);
}
