/*
 * Unit tests of the log-bucketed histogram (src/histogram.c): bucket
 * layout, percentiles against exact percentiles of known distributions
 * (constant, uniform, long-tailed, bimodal), exact min/max/mean, merge and
 * interval subtraction, and concurrent recording.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "histogram.h"
#include "platform.h"

#define N_SAMPLES 100000
/* A percentile may overstate the exact one by at most a bucket width. */
#define REL_BOUND (1.0 / IOCX_HIST_SUB_COUNT)

static const double percentiles[] = {
	0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100,
};

/* xorshift64*: a fixed sequence, so every run tests the same samples. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact percentile with the histogram's rank rule (ceil, min 1). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
	double exact = p / 100.0 * (double)n;
	size_t rank = (size_t)exact;

	if ((double)rank < exact || rank == 0)
		rank++;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static struct iocx_hist *new_hist(void)
{
	struct iocx_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	iocx__hist_init(h);
	return h;
}

/*
 * Record samples, then check every percentile: never below the exact
 * value, above it by at most REL_BOUND, and p0 / p100 exact.
 */
static void check_distribution(uint64_t *v, size_t n)
{
	struct iocx_hist *h = new_hist();

	for (size_t i = 0; i < n; i++)
		iocx__hist_record(h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(iocx__hist_count(h), n);
	assert_int_equal(iocx__hist_min(h), v[0]);
	assert_int_equal(iocx__hist_max(h), v[n - 1]);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(*percentiles);
	     i++) {
		uint64_t want = exact_percentile(v, n, percentiles[i]);
		uint64_t got = iocx__hist_percentile(h, percentiles[i]);

		if (percentiles[i] == 0)
			want = v[0];
		assert_true(got >= want);
		assert_true((double)(got - want) <= REL_BOUND * (double)want);
	}
	free(h);
}

static void hist_bucket_below_two_octaves_is_exact(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 2 * IOCX_HIST_SUB_COUNT; v++) {
		unsigned b = iocx__hist_bucket(v);

		assert_int_equal(iocx__hist_bucket_low(b), v);
		assert_int_equal(iocx__hist_bucket_high(b), v);
	}
}

static void hist_bucket_bounds_tile_the_whole_range(void **state)
{
	(void)state;
	assert_int_equal(iocx__hist_bucket(0), 0);
	assert_int_equal(iocx__hist_bucket(UINT64_MAX), IOCX_HIST_BUCKETS - 1);
	assert_int_equal(iocx__hist_bucket_high(IOCX_HIST_BUCKETS - 1),
			 UINT64_MAX);
	for (unsigned b = 0; b < IOCX_HIST_BUCKETS; b++) {
		uint64_t lo = iocx__hist_bucket_low(b);
		uint64_t hi = iocx__hist_bucket_high(b);

		assert_true(lo <= hi);
		assert_int_equal(iocx__hist_bucket(lo), b);
		assert_int_equal(iocx__hist_bucket(hi), b);
		if (b + 1 < IOCX_HIST_BUCKETS)
			assert_int_equal(iocx__hist_bucket_low(b + 1), hi + 1);
		/* Width within the relative bound of the lowest value. */
		if (lo >= IOCX_HIST_SUB_COUNT)
			assert_true((double)(hi - lo) <=
				    REL_BOUND * (double)lo);
	}
}

static void hist_percentile_empty_is_zero(void **state)
{
	struct iocx_hist *h = new_hist();

	(void)state;
	assert_int_equal(iocx__hist_percentile(h, 50), 0);
	assert_int_equal(iocx__hist_min(h), 0);
	assert_int_equal(iocx__hist_max(h), 0);
	assert_true(iocx__hist_mean(h) == 0.0);
	free(h);
}

static void hist_percentile_constant_is_exact(void **state)
{
	struct iocx_hist *h = new_hist();

	(void)state;
	for (int i = 0; i < 1000; i++)
		iocx__hist_record(h, 1234567);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(*percentiles); i++)
		assert_int_equal(iocx__hist_percentile(h, percentiles[i]),
				 1234567);
	assert_true(iocx__hist_mean(h) == 1234567.0);
	free(h);
}

static void hist_percentile_uniform_within_bound(void **state)
{
	uint64_t *v = malloc(N_SAMPLES * sizeof(*v));
	uint64_t s = 42;

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < N_SAMPLES; i++)
		v[i] = 1000 + rng_next(&s) % 10000000; /* 1 us .. 10 ms */
	check_distribution(v, N_SAMPLES);
	free(v);
}

/*
 * Exponential-ish: a geometric number of doublings (P(k) = 2^-(k+1)) of a
 * uniform base, so the tail spans a dozen octaves like real latencies.
 */
static void hist_percentile_long_tail_within_bound(void **state)
{
	uint64_t *v = malloc(N_SAMPLES * sizeof(*v));
	uint64_t s = 7;

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		uint64_t r = rng_next(&s);
		unsigned k = 0;

		while (k < 20 && !(r & (1ull << (32 + k))))
			k++;
		v[i] = (100000 + r % 100000) << k;
	}
	check_distribution(v, N_SAMPLES);
	free(v);
}

static void hist_percentile_bimodal_within_bound(void **state)
{
	uint64_t *v = malloc(N_SAMPLES * sizeof(*v));
	uint64_t s = 99;

	(void)state;
	assert_non_null(v);
	/* 99 % fast around 200 us, 1 % at a 1 s SYN retransmit. */
	for (size_t i = 0; i < N_SAMPLES; i++)
		v[i] = i % 100 ? 200000 + rng_next(&s) % 50000
			       : 1000000000 + rng_next(&s) % 3000000;
	check_distribution(v, N_SAMPLES);
	free(v);
}

static void hist_max_min_exact_with_outliers(void **state)
{
	struct iocx_hist *h = new_hist();

	(void)state;
	iocx__hist_record(h, 5000);
	iocx__hist_record(h, 987654321987ull);
	iocx__hist_record(h, 3);
	assert_int_equal(iocx__hist_max(h), 987654321987ull);
	assert_int_equal(iocx__hist_percentile(h, 100), 987654321987ull);
	assert_int_equal(iocx__hist_percentile(h, 99.9), 987654321987ull);
	assert_int_equal(iocx__hist_min(h), 3);
	assert_int_equal(iocx__hist_percentile(h, 0), 3);
	iocx__hist_record(h, UINT64_MAX);
	assert_int_equal(iocx__hist_max(h), UINT64_MAX);
	free(h);
}

static void hist_percentile_out_of_range_p_clamps(void **state)
{
	struct iocx_hist *h = new_hist();

	(void)state;
	iocx__hist_record(h, 10);
	iocx__hist_record(h, 20);
	assert_int_equal(iocx__hist_percentile(h, -5), 10);
	assert_int_equal(iocx__hist_percentile(h, 250), 20);
	assert_int_equal(iocx__hist_percentile(h, 50), 10);
	assert_int_equal(iocx__hist_percentile(h, 50.1), 20);
	free(h);
}

static void hist_mean_is_exact(void **state)
{
	struct iocx_hist *h = new_hist();

	(void)state;
	iocx__hist_record(h, 1000);
	iocx__hist_record(h, 2000);
	iocx__hist_record(h, 6000);
	assert_true(iocx__hist_mean(h) == 3000.0);
	free(h);
}

static void hist_merge_equals_recording_into_one(void **state)
{
	struct iocx_hist *a = new_hist(), *b = new_hist(), *both = new_hist();
	uint64_t s = 3;

	(void)state;
	for (int i = 0; i < 5000; i++) {
		uint64_t v = rng_next(&s) % 100000000;

		iocx__hist_record(i % 3 ? a : b, v);
		iocx__hist_record(both, v);
	}
	iocx__hist_merge(a, b);
	assert_memory_equal(a, both, sizeof(*a));
	free(a);
	free(b);
	free(both);
}

static void hist_subtract_leaves_the_interval(void **state)
{
	struct iocx_hist *h = new_hist(), *before = new_hist();

	(void)state;
	for (int i = 0; i < 100; i++)
		iocx__hist_record(h, 1000000);	/* before the interval */
	iocx__hist_snapshot(h, before);
	iocx__hist_record(h, 5000);
	iocx__hist_record(h, 7000);
	iocx__hist_subtract(h, before);
	assert_int_equal(iocx__hist_count(h), 2);
	assert_int_equal(iocx__hist_percentile(h, 50),
			 iocx__hist_bucket_high(iocx__hist_bucket(5000)));
	assert_int_equal(iocx__hist_max(h),
			 iocx__hist_bucket_high(iocx__hist_bucket(7000)));
	assert_int_equal(iocx__hist_min(h),
			 iocx__hist_bucket_low(iocx__hist_bucket(5000)));
	assert_true(iocx__hist_mean(h) == 6000.0);
	free(h);
	free(before);
}

#define N_THREADS 4
#define PER_THREAD 200000

static void record_many(void *arg)
{
	struct iocx_hist *h = arg;

	for (uint64_t i = 0; i < PER_THREAD; i++)
		iocx__hist_record(h, 100 + i % 4096);
}

static void hist_record_from_threads_loses_nothing(void **state)
{
	struct iocx_hist *h = new_hist();
	iocx_thread t[N_THREADS];
	uint64_t total = 0;

	(void)state;
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(iocx__thread_start(&t[i], record_many, h), 0);
	for (int i = 0; i < N_THREADS; i++)
		iocx__thread_join(&t[i]);
	for (unsigned b = 0; b < IOCX_HIST_BUCKETS; b++)
		total += atomic_load(&h->buckets[b]);
	assert_int_equal(iocx__hist_count(h), (uint64_t)N_THREADS * PER_THREAD);
	assert_int_equal(total, (uint64_t)N_THREADS * PER_THREAD);
	assert_int_equal(iocx__hist_min(h), 100);
	assert_int_equal(iocx__hist_max(h), 100 + 4095);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hist_bucket_below_two_octaves_is_exact),
		cmocka_unit_test(hist_bucket_bounds_tile_the_whole_range),
		cmocka_unit_test(hist_percentile_empty_is_zero),
		cmocka_unit_test(hist_percentile_constant_is_exact),
		cmocka_unit_test(hist_percentile_uniform_within_bound),
		cmocka_unit_test(hist_percentile_long_tail_within_bound),
		cmocka_unit_test(hist_percentile_bimodal_within_bound),
		cmocka_unit_test(hist_max_min_exact_with_outliers),
		cmocka_unit_test(hist_percentile_out_of_range_p_clamps),
		cmocka_unit_test(hist_mean_is_exact),
		cmocka_unit_test(hist_merge_equals_recording_into_one),
		cmocka_unit_test(hist_subtract_leaves_the_interval),
		cmocka_unit_test(hist_record_from_threads_loses_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
