/*
 * Unit tests of the error table (src/error.c) and of the allocator
 * setter's argument checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "alloc_hooks.h"

/* Every code with the identifier its name must spell. */
static const struct {
	int code;
	const char *name;
} codes[] = {
	{ IOCX_OK, "IOCX_OK" },
	{ IOCX_E_INVAL, "IOCX_E_INVAL" },
	{ IOCX_E_AFNOSUPPORT, "IOCX_E_AFNOSUPPORT" },
	{ IOCX_E_ADDRLEN, "IOCX_E_ADDRLEN" },
	{ IOCX_E_ADDRNOTAVAIL, "IOCX_E_ADDRNOTAVAIL" },
	{ IOCX_E_SHUTDOWN, "IOCX_E_SHUTDOWN" },
	{ IOCX_E_LIMIT, "IOCX_E_LIMIT" },
	{ IOCX_E_NOMEM, "IOCX_E_NOMEM" },
	{ IOCX_E_ALREADY, "IOCX_E_ALREADY" },
	{ IOCX_E_MSGSIZE, "IOCX_E_MSGSIZE" },
	{ IOCX_E_REFUSED, "IOCX_E_REFUSED" },
	{ IOCX_E_NETUNREACH, "IOCX_E_NETUNREACH" },
	{ IOCX_E_HOSTUNREACH, "IOCX_E_HOSTUNREACH" },
	{ IOCX_E_TIMEDOUT, "IOCX_E_TIMEDOUT" },
	{ IOCX_E_ADDRINUSE, "IOCX_E_ADDRINUSE" },
	{ IOCX_E_PORTS_EXHAUSTED, "IOCX_E_PORTS_EXHAUSTED" },
	{ IOCX_E_ABORTED, "IOCX_E_ABORTED" },
	{ IOCX_E_RESET, "IOCX_E_RESET" },
	{ IOCX_E_CANCELLED, "IOCX_E_CANCELLED" },
	{ IOCX_E_NOTSUP, "IOCX_E_NOTSUP" },
	{ IOCX_E_INCALLBACK, "IOCX_E_INCALLBACK" },
	{ IOCX_E_SYSTEM, "IOCX_E_SYSTEM" },
	{ IOCX_E_EOF, "IOCX_E_EOF" },
	{ IOCX_E_NOTCONN, "IOCX_E_NOTCONN" },
	{ IOCX_E_IDLE, "IOCX_E_IDLE" },
	{ IOCX_E_NOFILE, "IOCX_E_NOFILE" },
	{ IOCX_E_DETACHED, "IOCX_E_DETACHED" },
	{ IOCX_E_BUSY, "IOCX_E_BUSY" },
	{ IOCX_E_NAME, "IOCX_E_NAME" },
	{ IOCX_E_RESOLVE, "IOCX_E_RESOLVE" },
};

/* Codes outside 0 .. -(IOCX_ERROR_COUNT - 1). */
static const int unknown_codes[] = {
	1, 2, -IOCX_ERROR_COUNT, -999, INT_MIN, INT_MAX,
};

#define N_CODES (sizeof(codes) / sizeof(codes[0]))
#define N_UNKNOWN (sizeof(unknown_codes) / sizeof(unknown_codes[0]))

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++) {
		size_t i;

		for (i = 0; i < n; i++)
			if (tolower((unsigned char)hay[i]) !=
			    tolower((unsigned char)needle[i]))
				break;
		if (i == n)
			return true;
	}
	return false;
}

static int group_setup(void **state)
{
	(void)state;
	/* Anything the error functions allocate must then be freed. */
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	alloc_hooks_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* The error table is static data: nothing may have been allocated. */
	return hook_allocs == 0 ? 0 : -1;
}

static void error_count_matches_table(void **state)
{
	(void)state;
	assert_int_equal(N_CODES, IOCX_ERROR_COUNT);
	assert_int_equal(codes[N_CODES - 1].code, -(IOCX_ERROR_COUNT - 1));
}

static void error_name_every_code_spells_its_identifier(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_CODES; i++) {
		const char *name = iocx_error_name(codes[i].code);

		assert_non_null(name);
		assert_string_equal(name, codes[i].name);
	}
}

static void error_name_every_code_unique(void **state)
{
	int a, b;

	(void)state;
	for (a = 0; a < IOCX_ERROR_COUNT; a++)
		for (b = a + 1; b < IOCX_ERROR_COUNT; b++)
			assert_string_not_equal(iocx_error_name(-a),
						iocx_error_name(-b));
}

static void strerror_every_code_non_empty(void **state)
{
	int code;

	(void)state;
	for (code = 0; code > -IOCX_ERROR_COUNT; code--) {
		const char *msg = iocx_strerror(code);

		assert_non_null(msg);
		assert_true(strlen(msg) > 0);
		/* A description, not the symbolic name again. */
		assert_string_not_equal(msg, iocx_error_name(code));
	}
}

static void strerror_every_code_unique(void **state)
{
	int a, b;

	(void)state;
	for (a = 0; a < IOCX_ERROR_COUNT; a++)
		for (b = a + 1; b < IOCX_ERROR_COUNT; b++)
			assert_string_not_equal(iocx_strerror(-a),
						iocx_strerror(-b));
}

static void error_name_unknown_code_says_unknown(void **state)
{
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < N_UNKNOWN; i++) {
		const char *name = iocx_error_name(unknown_codes[i]);

		assert_non_null(name);
		assert_true(contains_nocase(name, "unknown"));
		for (code = 0; code > -IOCX_ERROR_COUNT; code--)
			assert_string_not_equal(name, iocx_error_name(code));
	}
}

static void strerror_unknown_code_says_unknown(void **state)
{
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < N_UNKNOWN; i++) {
		const char *msg = iocx_strerror(unknown_codes[i]);

		assert_non_null(msg);
		assert_true(contains_nocase(msg, "unknown"));
		for (code = 0; code > -IOCX_ERROR_COUNT; code--)
			assert_string_not_equal(msg, iocx_strerror(code));
	}
}

/*
 * A code returned for several reasons gets a message true of all of them:
 * IOCX_E_ALREADY comes from iocx_close, iocx_read_start, iocx_read_stop,
 * iocx_shutdown and iocx_set_allocator; IOCX_E_ADDRNOTAVAIL from a zero
 * remote address or port and from an OS refusal to bind or connect;
 * IOCX_E_TIMEDOUT from a connect attempt and from iocx_engine_wait_idle.
 */
static void strerror_shared_codes_name_no_single_cause(void **state)
{
	(void)state;
	assert_string_equal(iocx_strerror(IOCX_E_ALREADY),
			    "already requested, or no longer possible");
	assert_string_equal(iocx_strerror(IOCX_E_ADDRNOTAVAIL),
			    "address not available");
	assert_string_equal(iocx_strerror(IOCX_E_TIMEDOUT), "timed out");
}

static void set_allocator_null_alloc_returns_inval(void **state)
{
	(void)state;
	assert_int_equal(iocx_set_allocator(NULL, hook_free), IOCX_E_INVAL);
}

static void set_allocator_null_free_returns_inval(void **state)
{
	(void)state;
	assert_int_equal(iocx_set_allocator(hook_alloc, NULL), IOCX_E_INVAL);
}

static void set_allocator_both_null_returns_inval(void **state)
{
	(void)state;
	assert_int_equal(iocx_set_allocator(NULL, NULL), IOCX_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(error_count_matches_table),
		T(error_name_every_code_spells_its_identifier),
		T(error_name_every_code_unique),
		T(strerror_every_code_non_empty),
		T(strerror_every_code_unique),
		T(error_name_unknown_code_says_unknown),
		T(strerror_unknown_code_says_unknown),
		T(strerror_shared_codes_name_no_single_cause),
		T(set_allocator_null_alloc_returns_inval),
		T(set_allocator_null_free_returns_inval),
		T(set_allocator_both_null_returns_inval),
#undef T
	};

	return cmocka_run_group_tests_name("error", tests, group_setup, NULL);
}
