/*
 * The README's API example, compiled exactly as printed (meson extracts
 * it with tests/readme/extract_quickstart.py into a translation unit of
 * its own) and run against a loopback listener: run() must connect, send
 * "hello" as the first payload, close gracefully and return IOCX_OK only
 * after the connection's on_close returned, leaving nothing behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

/* README.md, "The API in short". */
int run(const struct sockaddr *to, size_t to_len);

static void readme_example_on(int family, const char *ip)
{
	struct peer *p = peer_listen(family, ip, PEER_READ);
	long live0 = peer_alloc_live();

	assert_non_null(p);
	assert_int_equal(run((const struct sockaddr *)&p->addr,
			     (size_t)p->addr_len), IOCX_OK);
	/* run() destroyed its engine: every block is back. */
	peer_assert_no_leak(live0);
	assert_true(peer_wait_eof(p, 0, PEER_TIMEOUT_MS));
	assert_int_equal(p->accepted, 1);
	assert_int_equal(p->conns[0].error, 0);	/* FIN, not a reset */
	assert_int_equal(p->conns[0].len, 5);
	assert_memory_equal(p->conns[0].data, "hello", 5);
	peer_close(p);
}

static void readme_example_sends_hello_ipv4(void **state)
{
	(void)state;
	readme_example_on(AF_INET, "127.0.0.1");
}

static void readme_example_sends_hello_ipv6(void **state)
{
	(void)state;
	if (!peer_ipv6_available())
		skip();
	readme_example_on(AF_INET6, "::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(readme_example_sends_hello_ipv4),
		cmocka_unit_test(readme_example_sends_hello_ipv6),
	};

	peer_init(60);
	return cmocka_run_group_tests_name("readme", tests, NULL, NULL);
}
