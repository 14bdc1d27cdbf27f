/*
 * Unit tests of the bench's rate pacer (bench/pacer.c), driven by a fake
 * clock: the schedule is exact, starts are never early, lateness within
 * the lag bound is made up, a longer stall re-anchors instead of bursting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pacer.h"

#define MS 1000000ull
#define S 1000000000ull
#define T0 123456789ull		/* an arbitrary clock origin */

static void pacer_due_ns_is_t0_plus_i_over_rate(void **state)
{
	struct pacer p;

	(void)state;
	pacer_init(&p, 3, T0);
	assert_int_equal(pacer_due_ns(&p, 0), T0);
	assert_int_equal(pacer_due_ns(&p, 1), T0 + 333333333);
	assert_int_equal(pacer_due_ns(&p, 2), T0 + 666666666);
	assert_int_equal(pacer_due_ns(&p, 3), T0 + S);
	assert_int_equal(pacer_due_ns(&p, 4), T0 + S + 333333333);
}

static void pacer_due_ns_does_not_drift_over_days(void **state)
{
	struct pacer p;

	(void)state;
	pacer_init(&p, 7, T0);
	assert_int_equal(pacer_due_ns(&p, 7ull * 86400 * 30),
			 T0 + 30 * 86400 * S);
	pacer_init(&p, 100000000, T0);	/* the highest rate allowed */
	assert_int_equal(pacer_due_ns(&p, 100000000ull * 3600), T0 + 3600 * S);
}

static void pacer_poll_never_starts_early(void **state)
{
	struct pacer p;
	uint64_t started = 0, wait;

	(void)state;
	pacer_init(&p, 1000, T0);
	/* Poll every 10 us for one second. */
	for (uint64_t now = T0; now < T0 + S; now += 10000) {
		while (pacer_poll(&p, now, &wait)) {
			assert_true(now >= pacer_due_ns(&p, p.next - 1));
			/* ... and at most one poll step late */
			assert_true(now - pacer_due_ns(&p, p.next - 1) < 10000);
			started++;
		}
		assert_true(wait > 0);
	}
	assert_int_equal(started, 1000);
	assert_int_equal(p.resets, 0);
}

static void pacer_poll_wait_reaches_next_start(void **state)
{
	struct pacer p;
	uint64_t wait;

	(void)state;
	pacer_init(&p, 4, T0);
	assert_true(pacer_poll(&p, T0, &wait));
	assert_false(pacer_poll(&p, T0 + 1, &wait));
	assert_int_equal(wait, 250 * MS - 1);
	assert_false(pacer_poll(&p, T0 + 250 * MS - 1, &wait));
	assert_int_equal(wait, 1);
	assert_true(pacer_poll(&p, T0 + 250 * MS, &wait));
}

/* A caller that sleeps exactly until the next due time starts evenly. */
static void pacer_poll_sleeping_caller_is_evenly_spaced(void **state)
{
	struct pacer p;
	uint64_t now = T0, wait, last = 0;

	(void)state;
	pacer_init(&p, 400, T0);
	for (int n = 0; n < 2000;) {
		if (!pacer_poll(&p, now, &wait)) {
			now += wait;
			continue;
		}
		if (n++ > 0)
			assert_int_equal(now - last, S / 400);
		last = now;
	}
	assert_int_equal(now, T0 + 1999 * (S / 400));
}

static void pacer_poll_late_within_lag_catches_up(void **state)
{
	struct pacer p;
	uint64_t wait;
	int burst = 0;

	(void)state;
	pacer_init(&p, 1000, T0);
	/* 5 ms late: starts 0..5 are all due and go now. */
	while (pacer_poll(&p, T0 + 5 * MS, &wait))
		burst++;
	assert_int_equal(burst, 6);
	assert_int_equal(wait, 1 * MS);
	assert_int_equal(p.resets, 0);
}

static void pacer_poll_stall_reanchors_without_burst(void **state)
{
	struct pacer p;
	uint64_t wait, now = T0 + 3 * S;
	int burst = 0;

	(void)state;
	pacer_init(&p, 1000, T0);
	/* Three seconds late: one start now, the next a period later. */
	while (pacer_poll(&p, now, &wait))
		burst++;
	assert_int_equal(burst, 1);
	assert_int_equal(p.resets, 1);
	assert_int_equal(wait, 1 * MS);
	assert_int_equal(pacer_due_ns(&p, p.next), now + 1 * MS);
}

static void pacer_init_slow_rate_allows_two_periods(void **state)
{
	struct pacer p;

	(void)state;
	pacer_init(&p, 10, T0);
	assert_int_equal(p.max_lag_ns, 200 * MS);
	pacer_init(&p, 100000, T0);
	assert_int_equal(p.max_lag_ns, PACER_MIN_LAG_NS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pacer_due_ns_is_t0_plus_i_over_rate),
		cmocka_unit_test(pacer_due_ns_does_not_drift_over_days),
		cmocka_unit_test(pacer_poll_never_starts_early),
		cmocka_unit_test(pacer_poll_wait_reaches_next_start),
		cmocka_unit_test(pacer_poll_sleeping_caller_is_evenly_spaced),
		cmocka_unit_test(pacer_poll_late_within_lag_catches_up),
		cmocka_unit_test(pacer_poll_stall_reanchors_without_burst),
		cmocka_unit_test(pacer_init_slow_rate_allows_two_periods),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
