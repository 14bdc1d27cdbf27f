/*
 * The engine's answer cache on its own (src/name_cache.c): keys without
 * case and per family, expiry on the caller's clock, replacement, the
 * oldest entry evicted from a full cache, and only the asked family's
 * addresses kept.  The allocator goes to cmocka's heap, so an entry left
 * behind by destroy fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "conn.h"
#include "name_cache.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

/* The last byte of the n-th address got, checking its family. */
static unsigned char last_of(const struct sockaddr_storage *ss, int family)
{
	assert_int_equal(ss->ss_family, family);
	if (family == AF_INET)
		return ((const unsigned char *)&((const struct sockaddr_in *)
				(const void *)ss)->sin_addr)[3];
	return ((const unsigned char *)&((const struct sockaddr_in6 *)
			(const void *)ss)->sin6_addr)[15];
}

/* What is kept for (host, family) at now (the resolver's code unread). */
static int get(struct iocx_name_cache *nc, const char *host, int family,
	       uint64_t now, struct sockaddr_storage *out)
{
	return iocx__name_cache_get(nc, host, family, now, out, NULL);
}

static struct iocx_name_cache *make(uint32_t max)
{
	struct iocx_name_cache *nc = NULL;

	assert_int_equal(iocx__name_cache_create(max, &nc), IOCX_OK);
	assert_non_null(nc);
	return nc;
}

static void name_cache_get_ignores_case_and_keeps_families_apart(
	void **state)
{
	struct iocx_name_cache *nc = make(4);
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES];
	struct sockaddr_storage mixed[3] = { cfx_doc4(1), cfx_doc6(9), cfx_doc4(2) };

	(void)state;
	/* Only the AF_INET entries of the answer are kept for AF_INET. */
	iocx__name_cache_put(nc, "Host.Example", AF_INET, mixed, 3, 100);
	assert_int_equal(get(nc, "host.EXAMPLE", AF_INET, 0, out), 2);
	assert_int_equal(last_of(&out[0], AF_INET), 1);
	assert_int_equal(last_of(&out[1], AF_INET), 2);
	assert_int_equal(get(nc, "host.example", AF_INET6, 0, out), 0);
	assert_int_equal(get(nc, "host.example.", AF_INET, 0, out), 0);
	/* An answer with no address of its family keeps nothing. */
	iocx__name_cache_put(nc, "other", AF_INET6, mixed, 1, 100);
	assert_int_equal(get(nc, "other", AF_INET6, 0, out), 0);
	iocx__name_cache_destroy(nc);
}

static void name_cache_get_drops_expired_entry(void **state)
{
	struct iocx_name_cache *nc = make(4);
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES], a = cfx_doc6(3);

	(void)state;
	iocx__name_cache_put(nc, "h", AF_INET6, &a, 1, 100);
	assert_int_equal(get(nc, "h", AF_INET6, 99, out), 1);
	assert_int_equal(last_of(&out[0], AF_INET6), 3);
	assert_int_equal(get(nc, "h", AF_INET6, 100, out), 0);
	/* Gone for good, even on an earlier clock. */
	assert_int_equal(get(nc, "h", AF_INET6, 1, out), 0);
	iocx__name_cache_destroy(nc);
}

static void name_cache_put_replaces_and_evicts_oldest(void **state)
{
	struct iocx_name_cache *nc = make(2);
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES];
	struct sockaddr_storage a1 = cfx_doc4(1), a2 = cfx_doc4(2), a3 = cfx_doc4(3);

	(void)state;
	iocx__name_cache_put(nc, "a", AF_INET, &a1, 1, 100);
	iocx__name_cache_put(nc, "b", AF_INET, &a2, 1, 100);
	/* Replacing a kept name takes no new room. */
	iocx__name_cache_put(nc, "A", AF_INET, &a3, 1, 100);
	assert_int_equal(get(nc, "a", AF_INET, 0, out), 1);
	assert_int_equal(last_of(&out[0], AF_INET), 3);
	assert_int_equal(get(nc, "b", AF_INET, 0, out), 1);
	/* Full: a third name evicts the oldest put, "b". */
	iocx__name_cache_put(nc, "c", AF_INET, &a1, 1, 100);
	assert_int_equal(get(nc, "b", AF_INET, 0, out), 0);
	assert_int_equal(get(nc, "a", AF_INET, 0, out), 1);
	assert_int_equal(get(nc, "c", AF_INET, 0, out), 1);
	iocx__name_cache_destroy(nc);
}

static void name_cache_put_keeps_at_most_max_addresses(void **state)
{
	struct iocx_name_cache *nc = make(1);
	struct sockaddr_storage many[IOCX_MAX_ADDRESSES + 4];
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES];

	(void)state;
	for (unsigned i = 0; i < IOCX_MAX_ADDRESSES + 4; i++)
		many[i] = cfx_doc4((unsigned char)i);
	iocx__name_cache_put(nc, "many", AF_INET, many,
			     IOCX_MAX_ADDRESSES + 4, 100);
	assert_int_equal(get(nc, "many", AF_INET, 0, out), IOCX_MAX_ADDRESSES);
	assert_int_equal(last_of(&out[IOCX_MAX_ADDRESSES - 1], AF_INET),
			 IOCX_MAX_ADDRESSES - 1);
	iocx__name_cache_destroy(nc);
}

static void name_cache_put_without_memory_keeps_nothing(void **state)
{
	struct iocx_name_cache *nc = make(1);
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES], a = cfx_doc4(1);

	(void)state;
	alloc_fail_nth(0);
	iocx__name_cache_put(nc, "h", AF_INET, &a, 1, 100);
	assert_int_equal(get(nc, "h", AF_INET, 0, out), 0);
	alloc_fail_nth(0);
	iocx__name_cache_put_negative(nc, "h", AF_INET, 3, 100);
	assert_int_equal(get(nc, "h", AF_INET, 0, out), 0);
	iocx__name_cache_destroy(nc);
}

/*
 * A negative answer is kept per family with the resolver's code, expires
 * like any entry, and replaces (and is replaced by) an answer with
 * addresses for the same key.
 */
static void name_cache_keeps_negative_answer_per_family(void **state)
{
	struct iocx_name_cache *nc = make(4);
	struct sockaddr_storage out[IOCX_MAX_ADDRESSES], a = cfx_doc4(5);
	struct sockaddr_storage a6 = cfx_doc6(6);
	uint32_t os_code = 0;

	(void)state;
	iocx__name_cache_put_negative(nc, "Gone.Example", AF_INET6, 3, 100);
	assert_int_equal(iocx__name_cache_get(nc, "gone.example", AF_INET6,
					      99, out, &os_code),
			 IOCX__NAME_CACHE_NEGATIVE);
	assert_int_equal(os_code, 3);
	assert_int_equal(iocx__name_cache_get(nc, "gone.example", AF_INET,
					      99, out, &os_code), 0);
	/* Addresses replace it, and it replaces addresses ... */
	iocx__name_cache_put(nc, "gone.example", AF_INET6, &a6, 1, 100);
	assert_int_equal(get(nc, "gone.example", AF_INET6, 99, out), 1);
	assert_int_equal(last_of(&out[0], AF_INET6), 6);
	iocx__name_cache_put(nc, "v4.example", AF_INET, &a, 1, 100);
	iocx__name_cache_put_negative(nc, "V4.example", AF_INET, 4, 200);
	assert_int_equal(iocx__name_cache_get(nc, "v4.example", AF_INET, 150,
					      out, &os_code),
			 IOCX__NAME_CACHE_NEGATIVE);
	assert_int_equal(os_code, 4);
	/* ... and it expires at its time. */
	assert_int_equal(iocx__name_cache_get(nc, "v4.example", AF_INET, 200,
					      out, &os_code), 0);
	iocx__name_cache_destroy(nc);
}

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    name_cache_get_ignores_case_and_keeps_families_apart),
		cmocka_unit_test(name_cache_get_drops_expired_entry),
		cmocka_unit_test(name_cache_put_replaces_and_evicts_oldest),
		cmocka_unit_test(name_cache_put_keeps_at_most_max_addresses),
		cmocka_unit_test(name_cache_put_without_memory_keeps_nothing),
		cmocka_unit_test(name_cache_keeps_negative_answer_per_family),
	};

	return cmocka_run_group_tests_name("name_cache", tests, group_setup,
					   NULL);
}
