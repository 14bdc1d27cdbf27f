/*
 * Version and ABI scheme (docs/abi.md): the header's version macros agree
 * with meson.build (IOCX_PROJECT_VERSION, passed by meson) and with the
 * linked library; a non-zero reserved word in options or a request is
 * refused with IOCX_E_INVAL and changes nothing; what the library writes
 * (connect result, stats) leaves the reserved tails zero; stats.errors
 * has its fixed length.  Manual engines over the fake backend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "conn.h"
#include "engine.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

#ifndef IOCX_PROJECT_VERSION
#error "meson passes IOCX_PROJECT_VERSION (meson.project_version())"
#endif

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	int connects;
	struct iocx_connect_result result;
};

static struct fx the_fx;

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	(void)c;
	fx->connects++;
	fx->result = *r;
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
	cfx_loopback4(&fx->v4, 9);
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

static void version_macros_match_meson_build(void **state)
{
	char parts[32];

	(void)state;
	assert_string_equal(IOCX_VERSION_STRING, IOCX_PROJECT_VERSION);
	snprintf(parts, sizeof(parts), "%d.%d.%d", IOCX_VERSION_MAJOR,
		 IOCX_VERSION_MINOR, IOCX_VERSION_PATCH);
	assert_string_equal(parts, IOCX_PROJECT_VERSION);
	assert_int_equal(IOCX_VERSION_NUMBER,
			 (IOCX_VERSION_MAJOR << 16) |
				 (IOCX_VERSION_MINOR << 8) |
				 IOCX_VERSION_PATCH);
}

static void version_of_library_matches_header(void **state)
{
	(void)state;
	assert_int_equal(iocx_version(), IOCX_VERSION_NUMBER);
	assert_string_equal(iocx_version_string(), IOCX_VERSION_STRING);
}

static void engine_create_reserved_word_set_is_inval(void **state)
{
	struct iocx_engine_options o;
	iocx_engine *e = (iocx_engine *)&o;	/* a sentinel, never used */
	unsigned engines = fake_engines();
	unsigned long allocs = hook_allocs;

	(void)state;
	for (size_t i = 0; i < NWORDS(o.reserved); i++) {
		/* On the fake backend, and on the platform's own. */
		iocx_engine_options_init(&o);
		o.reserved[i] = (uint64_t)1 << (i % 64);
		assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
		assert_ptr_equal(e, (iocx_engine *)&o);
		o.reserved[i] = UINT64_MAX;
		assert_int_equal(iocx_engine_create(&o, &e), IOCX_E_INVAL);
		assert_ptr_equal(e, (iocx_engine *)&o);
	}
	assert_int_equal(fake_engines(), engines);
	assert_int_equal(hook_allocs, allocs);
}

static void engine_options_init_zeroes_reserved(void **state)
{
	struct iocx_engine_options o;

	(void)state;
	memset(&o, 0xa5, sizeof(o));
	iocx_engine_options_init(&o);
	for (size_t i = 0; i < NWORDS(o.reserved); i++)
		assert_int_equal(o.reserved[i], 0);
}

static void connect_reserved_word_set_is_inval(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, NULL, fx);
	iocx_conn *conn = (iocx_conn *)fx;	/* must stay untouched */
	unsigned long allocs = hook_allocs;

	fake_log_clear();
	for (size_t i = 0; i < NWORDS(r.reserved); i++) {
		r.reserved[i] = 1;
		assert_int_equal(iocx_connect(fx->e, &r, &conn), IOCX_E_INVAL);
		assert_ptr_equal(conn, (iocx_conn *)fx);
		r.reserved[i] = 0;
	}
	assert_int_equal(hook_allocs, allocs);
	assert_int_equal(fake_log_len(), 0);
	cfx_check_stats(fx->e, false, .connects_started = 0);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 0);
}

static void connect_result_reserved_is_zero(void **state)
{
	struct fx *fx = *state;
	struct iocx_connect_request r =
		cfx_request(&fx->v4, on_connect, NULL, fx);
	iocx_conn *conn = NULL;

	memset(&fx->result, 0xa5, sizeof(fx->result));
	assert_int_equal(iocx_connect(fx->e, &r, &conn), IOCX_OK);
	fake_complete(conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(fx->connects, 1);
	assert_int_equal(fx->result.status, IOCX_OK);
	for (size_t i = 0; i < NWORDS(fx->result.reserved); i++)
		assert_int_equal(fx->result.reserved[i], 0);
	assert_int_equal(iocx_close(conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
}

static void engine_stats_errors_have_fixed_length(void **state)
{
	struct fx *fx = *state;
	struct iocx_stats s;

	assert_int_equal(NWORDS(s.errors), IOCX_STATS_ERRORS);
	assert_true(IOCX_ERROR_COUNT <= IOCX_STATS_ERRORS);
	memset(&s, 0xa5, sizeof(s));
	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	for (size_t i = 0; i < NWORDS(s.errors); i++)
		assert_int_equal(s.errors[i], 0);
	for (size_t i = 0; i < NWORDS(s.reserved); i++)
		assert_int_equal(s.reserved[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_macros_match_meson_build),
		cmocka_unit_test(version_of_library_matches_header),
		cmocka_unit_test_setup_teardown(
			engine_create_reserved_word_set_is_inval, setup,
			teardown),
		cmocka_unit_test(engine_options_init_zeroes_reserved),
		cmocka_unit_test_setup_teardown(
			connect_reserved_word_set_is_inval, setup, teardown),
		cmocka_unit_test_setup_teardown(
			connect_result_reserved_is_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(
			engine_stats_errors_have_fixed_length, setup,
			teardown),
	};

	return cmocka_run_group_tests_name("version", tests, group_setup,
					   cfx_group_teardown);
}
