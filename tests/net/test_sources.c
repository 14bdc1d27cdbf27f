/*
 * Source addresses (options.sources): connects spread round robin over
 * them, a source whose ephemeral ports are exhausted is skipped for the
 * next one, all of them exhausted gives IOCX_E_PORTS_EXHAUSTED at once,
 * and engine creation rejects bad source lists.  Exhaustion is injected
 * through the syscall table: bind() fails with PEER_EPORTS, which is how
 * the OS reports an ephemeral-port shortage (Windows WSAENOBUFS, Linux
 * EADDRINUSE from bind to port 0).
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

#define NCONN 4

struct fx {
	iocx_engine *engine;
	struct peer *peer;
	struct peer_tracker trk;
	struct peer_rec rec[NCONN];
	struct sockaddr_storage src[2];	/* 127.0.0.2, 127.0.0.3 */
	long live0;
};

/* Binds to ip (network order) fail as out of ports; 0 = every bind. */
static void exhaust(uint32_t ip)
{
	atomic_store(&peer_faults.bind_err_ip, ip);
	atomic_store(&peer_faults.bind_err, PEER_EPORTS);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iocx_engine_options o;

	if (f == NULL)
		return -1;
	*state = f;
	peer_tracker_init(&f->trk);
	peer_recs_init(f->rec, NCONN, &f->trk);
	f->peer = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
	if (f->peer == NULL)
		return -1;
	peer_addr(&f->src[0], AF_INET, "127.0.0.2", 0);
	peer_addr(&f->src[1], AF_INET, "127.0.0.3", 0);
	peer_sys_install();
	iocx_engine_options_init(&o);
	o.sources = f->src;
	o.nsources = 2;
	if (iocx_engine_create(&o, &f->engine) != IOCX_OK)
		return -1;
	f->live0 = peer_alloc_live();
	return 0;
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

/* Connect NCONN times one after the other and close each. */
static void connect_all(struct fx *f)
{
	for (int i = 0; i < NCONN; i++) {
		struct iocx_connect_request req;
		iocx_conn *conn = NULL;

		peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[i]);
		assert_int_equal(iocx_connect(f->engine, &req, &conn), IOCX_OK);
		peer_assert_wait(&f->trk, i + 1, i, PEER_TIMEOUT_MS);
		assert_int_equal(f->rec[i].status, IOCX_OK);
		assert_int_equal(iocx_close(conn, IOCX_CLOSE_GRACEFUL),
				 IOCX_OK);
		peer_assert_wait(&f->trk, i + 1, i + 1, PEER_TIMEOUT_MS);
	}
	assert_true(peer_wait_accepted(f->peer, NCONN, PEER_TIMEOUT_MS));
}

/* How many accepted connections came from ip. */
static int accepted_from(struct fx *f, const char *ip)
{
	char buf[64];
	int n = 0;

	iocx__mutex_lock(&f->peer->lock);
	for (size_t i = 0; i < f->peer->nconns; i++) {
		const struct sockaddr *sa =
			(const struct sockaddr *)&f->peer->conns[i].addr;

		if (strcmp(peer_addr_ip(sa, buf, sizeof(buf)), ip) == 0)
			n++;
	}
	iocx__mutex_unlock(&f->peer->lock);
	return n;
}

static void sources_round_robin_spreads_connects(void **state)
{
	struct fx *f = *state;

	connect_all(f);
	assert_int_equal(accepted_from(f, "127.0.0.2"), NCONN / 2);
	assert_int_equal(accepted_from(f, "127.0.0.3"), NCONN / 2);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void sources_exhausted_one_moves_to_next(void **state)
{
	struct fx *f = *state;

	exhaust(((struct sockaddr_in *)&f->src[0])->sin_addr.s_addr);
	connect_all(f);
	assert_int_equal(accepted_from(f, "127.0.0.2"), 0);
	assert_int_equal(accepted_from(f, "127.0.0.3"), NCONN);
	peer_assert_clean(&f->trk);
	peer_assert_no_leak(f->live0);
}

static void sources_all_exhausted_reports_ports_exhausted(void **state)
{
	struct fx *f = *state;
	struct iocx_connect_request req;
	struct iocx_stats s;
	iocx_conn *conn = NULL;
	unsigned h0 = peer_handle_count();

	exhaust(0);
	peer_req(&req, &f->peer->addr, f->peer->addr_len, &f->rec[0]);
	assert_int_equal(iocx_connect(f->engine, &req, &conn),
			 IOCX_E_PORTS_EXHAUSTED);
	assert_null(conn);
	assert_int_equal(iocx_engine_stats(f->engine, &s), IOCX_OK);
	assert_int_equal(s.connects_started, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.open, 0);
	/* Both sockets tried were closed again. */
	if (peer_handle_count() > h0 + PEER_HANDLE_SLACK)
		fail_msg("handles grew from %u to %u", h0, peer_handle_count());
	assert_int_equal(atomic_load(&f->rec[0].connects), 0);
	peer_assert_no_leak(f->live0);
}

static void engine_create_rejects_bad_sources(void **state)
{
	struct sockaddr_storage src[IOCX_MAX_SOURCES + 1];
	struct iocx_engine_options o;
	iocx_engine *e = NULL;

	(void)state;
	for (size_t i = 0; i < IOCX_MAX_SOURCES + 1; i++)
		peer_addr(&src[i], AF_INET, "127.0.0.1", 0);
	iocx_engine_options_init(&o);
	o.sources = src;
	o.nsources = IOCX_MAX_SOURCES + 1;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
	o.nsources = 1;
	o.sources = NULL;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
	o.sources = src;
	peer_addr(&src[0], AF_INET, "127.0.0.1", 80);
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
	memset(&src[0], 0, sizeof(src[0]));
	src[0].ss_family = AF_UNIX;
	assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_AFNOSUPPORT);
	assert_null(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			sources_round_robin_spreads_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(
			sources_exhausted_one_moves_to_next, setup, teardown),
		cmocka_unit_test_setup_teardown(
			sources_all_exhausted_reports_ports_exhausted, setup,
			teardown),
		cmocka_unit_test(engine_create_rejects_bad_sources),
	};

	peer_init(120);
	return cmocka_run_group_tests_name("net_sources", tests, NULL, NULL);
}
