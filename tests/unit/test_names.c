/*
 * Connect requests that name the peer by host (src/name.c, connect.c),
 * on the scripted fake backend: bad hosts are refused synchronously with
 * no callback and nothing opened; a numeric host connects exactly like the
 * same address given as remote; the result names the peer it connected
 * to.  Names themselves need the resolver (docs/names.md).
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
#include "name.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

struct fx {
	iocx_engine *e;
	iocx_conn *conn;
	int connects, closes;
	struct iocx_connect_result result;
	struct sockaddr_storage peer;	/* result.peer, copied */
};

static struct fx the_fx;

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	fx->conn = c;
	fx->connects++;
	fx->result = *r;
	memset(&fx->peer, 0, sizeof(fx->peer));
	if (r->peer)
		memcpy(&fx->peer, r->peer, r->peer_len);
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct fx *fx = user;

	(void)c;
	(void)reason;
	fx->closes++;
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *fx = &the_fx;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	if (cfx_engine_create(NULL, &fx->e) != IOCX_OK)
		return -1;
	fake_log_clear();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->e)
		assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	assert_false(fake_poisoned());
	fake_cleanup();
	return 0;
}

static struct iocx_connect_request host_request(struct fx *fx,
						const char *host,
						uint16_t port)
{
	struct iocx_connect_request r = {
		.host = host,
		.port = port,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = fx,
	};

	return r;
}

/* iocx_connect(host) returns want, with no callback and no call made. */
static void expect_refused(struct fx *fx, const char *host, uint16_t port,
			   int want)
{
	struct iocx_connect_request r = host_request(fx, host, port);
	iocx_conn *conn = (iocx_conn *)&the_fx;	/* must stay untouched */

	if (iocx_connect(fx->e, &r, &conn) != want)
		fail_msg("host \"%s\" port %u: not %s", host ? host : "(null)",
			 port, iocx_error_name(want));
	assert_ptr_equal(conn, (iocx_conn *)&the_fx);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 0);
	assert_int_equal(fx->closes, 0);
	assert_int_equal(fake_log_len(), 0);
}

/* A host name of n bytes: labels of 63 'a' joined by dots. */
static char *long_name(size_t n)
{
	char *s = test_malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = i % 64 == 63 ? '.' : 'a';
	s[n] = '\0';
	return s;
}

static void connect_host_malformed_is_inval(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "a..b", ".a", "a b", "a/b", "a@b", "h\xc3\xa9",
		"a%b", "a,b", "-\t", "[::1", "::1]", "[]", "[127.0.0.1]",
		"1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "127.1",
		"1.2.3.4.", "a.1", "0x7f.0.0.1", ":::", "1:::2", "1::2::3",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", ":1::",
		"1::2:", "g::1", "fe80::1%eth0", "::1.2.3",
		"1:2:3:4:5:6:7::1.2.3.4", "[::1]x",
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(fx, bad[i], 80, IOCX_E_INVAL);
}

static void connect_host_label_over_63_is_inval(void **state)
{
	struct fx *fx = *state;
	char label[70];

	memset(label, 'x', 64);
	strcpy(label + 64, ".com");
	expect_refused(fx, label, 80, IOCX_E_INVAL);
	/* 63 is still a label: the name passes the checks (and then meets
	 * the missing resolver). */
	memmove(label + 63, label + 64, strlen(label + 64) + 1);
	expect_refused(fx, label, 80, IOCX_E_NOTSUP);
}

static void connect_host_longer_than_253_is_inval(void **state)
{
	struct fx *fx = *state;
	char *at_limit = long_name(IOCX_MAX_HOST);
	char *over = long_name(IOCX_MAX_HOST + 1);

	expect_refused(fx, over, 80, IOCX_E_INVAL);
	expect_refused(fx, at_limit, 80, IOCX_E_NOTSUP);
	test_free(at_limit);
	test_free(over);
}

static void connect_host_and_remote_is_inval(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in v4;
	struct iocx_connect_request r = host_request(fx, "127.0.0.1", 80);

	cfx_loopback4(&v4, 80);
	r.remote = (const struct sockaddr *)&v4;
	r.remote_len = sizeof(v4);
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_INVAL);
	r.host = "example.com";
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_INVAL);
	assert_int_equal(fake_log_len(), 0);
}

static void connect_host_port_zero_is_addrnotavail(void **state)
{
	struct fx *fx = *state;

	expect_refused(fx, "127.0.0.1", 0, IOCX_E_ADDRNOTAVAIL);
	expect_refused(fx, "::1", 0, IOCX_E_ADDRNOTAVAIL);
	expect_refused(fx, "example.com", 0, IOCX_E_ADDRNOTAVAIL);
}

static void connect_host_unspecified_is_addrnotavail(void **state)
{
	struct fx *fx = *state;

	expect_refused(fx, "0.0.0.0", 80, IOCX_E_ADDRNOTAVAIL);
	expect_refused(fx, "::", 80, IOCX_E_ADDRNOTAVAIL);
	expect_refused(fx, "[::ffff:0.0.0.0]", 80, IOCX_E_ADDRNOTAVAIL);
}

static void connect_host_name_checks_request_first(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r = host_request(fx, "example.com", 80);

	/* A bad request stays IOCX_E_INVAL whatever the host is. */
	r.flags = 1u << 30;
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_INVAL);
	r.flags = 0;
	r.on_connect = NULL;
	assert_int_equal(iocx_connect(fx->e, &r, NULL), IOCX_E_INVAL);
	assert_int_equal(fake_log_len(), 0);
}

static void connect_host_name_not_resolved_yet(void **state)
{
	struct fx *fx = *state;

	expect_refused(fx, "example.com", 443, IOCX_E_NOTSUP);
	expect_refused(fx, "Example.COM.", 443, IOCX_E_NOTSUP);
	expect_refused(fx, "_srv.my-host.example", 443, IOCX_E_NOTSUP);
}

/*
 * Connect to host and complete the connect; returns the fake socket's id
 * after checking that exactly one socket connected to want (len bytes).
 */
static unsigned connect_numeric(struct fx *fx, const char *host,
				uint16_t port, const void *want, size_t len)
{
	struct iocx_connect_request r = host_request(fx, host, port);
	iocx_conn *conn = NULL;
	unsigned id;

	assert_int_equal(iocx_connect(fx->e, &r, &conn), IOCX_OK);
	assert_non_null(conn);
	id = fake_id(conn);
	assert_int_equal(fake_count(FAKE_OPEN, id), 1);
	assert_int_equal(fake_count(FAKE_CONNECT, id), 1);
	assert_memory_equal(&fake_sock(id)->remote, want, len);
	fake_complete(conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	assert_memory_equal(&fx->peer, want, len);
	assert_int_equal(fx->result.resolve_ns, 0);
	assert_int_equal(fx->result.addresses_tried, 1);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	return id;
}

/* The backend calls in the log, in order, without the socket ids. */
static size_t log_calls(enum fake_call *out, size_t max)
{
	size_t n = fake_log_len();

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		out[i] = fake_log_at(i)->call;
	return n;
}

static void connect_host_ipv4_connects_like_remote(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in want;
	struct iocx_connect_request r;
	enum fake_call by_host[32], by_addr[32];
	size_t n_host, n_addr;
	iocx_conn *conn = NULL;

	cfx_loopback4(&want, 8080);
	connect_numeric(fx, "127.0.0.1", 8080, &want, sizeof(want));
	n_host = log_calls(by_host, 32);

	/* The same connect by address makes the same backend calls. */
	fx->connects = fx->closes = 0;
	fake_log_clear();
	r = cfx_request(&want, on_connect, on_close, fx);
	assert_int_equal(iocx_connect(fx->e, &r, &conn), IOCX_OK);
	fake_complete(conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fx->closes, 1);
	n_addr = log_calls(by_addr, 32);
	assert_int_equal(n_addr, n_host);
	assert_memory_equal(by_addr, by_host, n_host * sizeof(by_host[0]));
	assert_memory_equal(&fx->peer, &want, sizeof(want));
}

static void connect_host_ipv4_any_octets(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in want;
	static const unsigned char a[4] = { 192, 0, 2, 255 };

	memset(&want, 0, sizeof(want));
	want.sin_family = AF_INET;
	want.sin_port = cfx_be16(65535);
	memcpy(&want.sin_addr, a, 4);
	connect_numeric(fx, "192.0.2.255", 65535, &want, sizeof(want));
}

/* The IPv6 texts that all mean one address, each checked byte by byte. */
static void connect_host_ipv6_forms(void **state)
{
	static const struct {
		const char *text;
		unsigned char addr[16];
	} cases[] = {
		{ "::1", { [15] = 1 } },
		{ "[::1]", { [15] = 1 } },
		{ "0:0:0:0:0:0:0:1", { [15] = 1 } },
		{ "2001:DB8::8:800:200C:417A",
		  { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0x00,
		    0x20, 0x0c, 0x41, 0x7a } },
		{ "ff01::101", { 0xff, 0x01, [14] = 0x01, [15] = 0x01 } },
		{ "1::", { 0, 1 } },
		{ "::ffff:127.0.0.1",
		  { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1 } },
		{ "1:2:3:4:5:6:7:8",
		  { 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8 } },
		{ "1:2:3:4:5:6::8",
		  { 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 0, 0, 8 } },
		{ "1:2:3:4:5:6:1.2.3.4",
		  { 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4 } },
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in6 want;

		memset(&want, 0, sizeof(want));
		want.sin6_family = AF_INET6;
		want.sin6_port = cfx_be16(443);
		memcpy(&want.sin6_addr, cases[i].addr, 16);
		fx->connects = fx->closes = 0;
		print_message("%s\n", cases[i].text);
		connect_numeric(fx, cases[i].text, 443, &want, sizeof(want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			connect_host_malformed_is_inval, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_label_over_63_is_inval, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_longer_than_253_is_inval, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_and_remote_is_inval, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_port_zero_is_addrnotavail, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_unspecified_is_addrnotavail, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_name_checks_request_first, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_name_not_resolved_yet, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_ipv4_connects_like_remote, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_ipv4_any_octets, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_host_ipv6_forms, setup, teardown),
	};

	return cmocka_run_group_tests_name("names", tests, group_setup,
					   cfx_group_teardown);
}
