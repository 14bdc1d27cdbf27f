/*
 * Unit tests of iocx-bench's HdrHistogram encoding (bench/hdrlog.c): a
 * histogram encoded and decoded again has every bucket back, histograms
 * decoded and added are exactly one histogram fed all their samples
 * (what `iocx-bench merge` relies on), and bad input is refused without
 * touching the target.  (tests/bench/check_bench.py checks the other
 * side: HdrHistogram's own JavaScript port reads the logs.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hdrlog.h"

static struct iocx_hist *new_hist(void)
{
	struct iocx_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	iocx__hist_init(h);
	return h;
}

/* xorshift64: a fixed, portable sequence of samples. */
static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* n samples shaped by kind: 0 small, 1 wide (up to 2^40), 2 long tail. */
static void fill(struct iocx_hist *a, struct iocx_hist *b, int kind,
		 unsigned n, uint64_t seed)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t r = next(&seed), v;

		if (kind == 0)
			v = r % 300;
		else if (kind == 1)
			v = r >> (24 + r % 40);
		else
			v = 50000 + (r % 100 == 0 ? r % 4000000000ull
						  : r % 20000);
		iocx__hist_record(a, v);
		if (b)
			iocx__hist_record(b, v);
	}
}

static void assert_same_buckets(const struct iocx_hist *a,
				const struct iocx_hist *b)
{
	assert_int_equal(iocx__hist_count(a), iocx__hist_count(b));
	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++) {
		if (atomic_load(&a->buckets[i]) != atomic_load(&b->buckets[i]))
			fail_msg("bucket %u: %llu != %llu", i,
				 (unsigned long long)atomic_load(
					 &a->buckets[i]),
				 (unsigned long long)atomic_load(
					 &b->buckets[i]));
	}
}

static void decode_into(struct iocx_hist *h, const struct iocx_hist *from)
{
	char *text = hdrlog_encode_base64(from);
	const char *why = NULL;

	assert_non_null(text);
	assert_memory_equal(text, "HISTF", 5);	/* cookie 0x1c849314 */
	if (hdrlog_decode_add(text, h, &why) != 0)
		fail_msg("decode: %s", why);
	free(text);
}

static void hdrlog_decode_add_restores_every_bucket(void **state)
{
	(void)state;
	for (int kind = 0; kind < 3; kind++) {
		struct iocx_hist *h = new_hist(), *back = new_hist();

		fill(h, NULL, kind, 20000, 0x9e3779b97f4a7c15ull + kind);
		/* Single empty buckets and long empty runs both occur. */
		iocx__hist_record(h, 0);
		iocx__hist_record(h, 2);
		iocx__hist_record(h, (uint64_t)1 << 62);
		decode_into(back, h);
		assert_same_buckets(back, h);
		assert_int_equal(iocx__hist_min(back), 0);
		assert_int_equal(iocx__hist_max(back),
				 iocx__hist_bucket_high(iocx__hist_bucket(
					 (uint64_t)1 << 62)));
		free(h);
		free(back);
	}
}

static void hdrlog_decode_add_of_parts_is_one_histogram_of_all(void **state)
{
	struct iocx_hist *all = new_hist(), *merged = new_hist();
	static const double pct[] = { 1, 50, 90, 99, 99.9, 99.99 };

	(void)state;
	for (int kind = 0; kind < 3; kind++) {
		struct iocx_hist *part = new_hist();

		fill(part, all, kind, 30000 + 1000 * kind, 12345 + kind);
		decode_into(merged, part);
		free(part);
	}
	assert_same_buckets(merged, all);
	for (size_t i = 0; i < sizeof(pct) / sizeof(*pct); i++) {
		uint64_t a = iocx__hist_percentile(all, pct[i]);
		uint64_t m = iocx__hist_percentile(merged, pct[i]);

		/* The same bucket; all's is clamped to its exact min/max. */
		assert_int_equal(iocx__hist_bucket(a), iocx__hist_bucket(m));
	}
	free(all);
	free(merged);
}

static void hdrlog_encode_of_empty_decodes_to_nothing(void **state)
{
	struct iocx_hist *empty = new_hist(), *h = new_hist();

	(void)state;
	iocx__hist_record(h, 1000);
	decode_into(h, empty);
	assert_int_equal(iocx__hist_count(h), 1);
	assert_int_equal(iocx__hist_min(h), 1000);
	free(empty);
	free(h);
}

static void hdrlog_decode_add_refuses_bad_input(void **state)
{
	static const char *const bad[] = {
		"",			/* nothing */
		"HISTF",		/* not a multiple of 4 */
		"HIS*FAAA",		/* not base64 */
		"AAAAAAAAAAA=",		/* wrong cookie */
		"HISTFAAAAAA=",		/* cookie, no stream */
		"HISTFAAAAAR4nAMAAAAAAQ==",	/* stream says 4, is short */
	};
	struct iocx_hist *h = new_hist(), *before = new_hist(), *x;
	char *text;
	const char *why;

	(void)state;
	fill(h, before, 1, 1000, 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		why = NULL;
		if (hdrlog_decode_add(bad[i], h, &why) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(why);
	}
	/* A real one cut short: refused too. */
	x = new_hist();
	fill(x, NULL, 2, 1000, 8);
	text = hdrlog_encode_base64(x);
	assert_non_null(text);
	text[strlen(text) / 2 / 4 * 4] = '\0';
	assert_int_equal(hdrlog_decode_add(text, h, &why), -1);
	assert_same_buckets(h, before);
	free(text);
	free(x);
	free(h);
	free(before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hdrlog_decode_add_restores_every_bucket),
		cmocka_unit_test(
			hdrlog_decode_add_of_parts_is_one_histogram_of_all),
		cmocka_unit_test(hdrlog_encode_of_empty_decodes_to_nothing),
		cmocka_unit_test(hdrlog_decode_add_refuses_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
