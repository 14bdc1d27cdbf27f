/*
 * Log-bucketed histogram (see histogram.h for the layout and contract).
 *
 * Bucket index of v >= 2^S (S = IOCX_HIST_SUB_BITS): with m = floor(log2 v)
 * and shift = m - S, the top S+1 bits top = v >> shift lie in
 * [2^S, 2^(S+1)), and index = shift * 2^S + top.  For shift = 0 this is v
 * itself, so the exact buckets below 2^S and the first octave join up
 * without a gap, and bucket i of octave shift spans 2^shift values.
 */
#include <string.h>

#include "histogram.h"

#define S IOCX_HIST_SUB_BITS
#define SUB IOCX_HIST_SUB_COUNT

static unsigned msb64(uint64_t v)
{
#if defined(__GNUC__) || defined(__clang__)
	return 63u - (unsigned)__builtin_clzll(v);
#else
	unsigned n = 0;

	while (v >>= 1)
		n++;
	return n;
#endif
}

static uint64_t load(const _Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void store(_Atomic uint64_t *a, uint64_t v)
{
	atomic_store_explicit(a, v, memory_order_relaxed);
}

/* See histogram.h. */
unsigned iocx__hist_bucket(uint64_t v)
{
	unsigned shift;

	if (v < SUB)
		return (unsigned)v;
	shift = msb64(v) - S;
	return (shift << S) + (unsigned)(v >> shift);
}

/* See histogram.h. */
uint64_t iocx__hist_bucket_low(unsigned b)
{
	unsigned shift;

	if (b < 2 * SUB)
		return b;
	shift = (b >> S) - 1;
	return (uint64_t)(b - (shift << S)) << shift;
}

/* See histogram.h. */
uint64_t iocx__hist_bucket_high(unsigned b)
{
	unsigned shift;

	if (b < 2 * SUB)
		return b;
	shift = (b >> S) - 1;
	/* Cannot overflow: the top bucket ends exactly at UINT64_MAX. */
	return iocx__hist_bucket_low(b) + ((uint64_t)1 << shift) - 1;
}

/* See histogram.h. */
void iocx__hist_init(struct iocx_hist *h)
{
	memset(h, 0, sizeof(*h));
	store(&h->min, UINT64_MAX);
}

/* See histogram.h. */
void iocx__hist_record(struct iocx_hist *h, uint64_t v)
{
	uint64_t cur;

	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
	/* min and max change rarely once warm: read first, CAS only then. */
	cur = load(&h->min);
	while (v < cur &&
	       !atomic_compare_exchange_weak_explicit(&h->min, &cur, v,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	cur = load(&h->max);
	while (v > cur &&
	       !atomic_compare_exchange_weak_explicit(&h->max, &cur, v,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	/* The bucket after min and max: a reader that takes the buckets as
	 * the truth (iocx_engine_latency) never finds a value outside them. */
	atomic_fetch_add_explicit(&h->buckets[iocx__hist_bucket(v)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* See histogram.h. */
void iocx__hist_snapshot(const struct iocx_hist *h, struct iocx_hist *out)
{
	store(&out->count, load(&h->count));
	store(&out->sum, load(&h->sum));
	store(&out->min, load(&h->min));
	store(&out->max, load(&h->max));
	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++)
		store(&out->buckets[i], load(&h->buckets[i]));
}

/* See histogram.h. */
void iocx__hist_merge(struct iocx_hist *dst, const struct iocx_hist *src)
{
	store(&dst->count, load(&dst->count) + load(&src->count));
	store(&dst->sum, load(&dst->sum) + load(&src->sum));
	if (load(&src->min) < load(&dst->min))
		store(&dst->min, load(&src->min));
	if (load(&src->max) > load(&dst->max))
		store(&dst->max, load(&src->max));
	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++)
		store(&dst->buckets[i],
		      load(&dst->buckets[i]) + load(&src->buckets[i]));
}

/* See histogram.h. */
void iocx__hist_subtract(struct iocx_hist *h, const struct iocx_hist *earlier)
{
	uint64_t total = 0, lo = UINT64_MAX, hi = 0;

	store(&h->sum, load(&h->sum) - load(&earlier->sum));
	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++) {
		uint64_t a = load(&h->buckets[i]);
		uint64_t b = load(&earlier->buckets[i]);
		uint64_t n = a > b ? a - b : 0;

		store(&h->buckets[i], n);
		if (n == 0)
			continue;
		total += n;
		if (lo == UINT64_MAX)
			lo = iocx__hist_bucket_low(i);
		hi = iocx__hist_bucket_high(i);
	}
	/* The buckets, not the counters, are the truth for an interval. */
	store(&h->count, total);
	store(&h->min, lo);
	store(&h->max, hi);
}

/* See histogram.h. */
uint64_t iocx__hist_count(const struct iocx_hist *h)
{
	return load(&h->count);
}

/* See histogram.h. */
uint64_t iocx__hist_min(const struct iocx_hist *h)
{
	return load(&h->count) ? load(&h->min) : 0;
}

/* See histogram.h. */
uint64_t iocx__hist_max(const struct iocx_hist *h)
{
	return load(&h->count) ? load(&h->max) : 0;
}

/* See histogram.h. */
double iocx__hist_mean(const struct iocx_hist *h)
{
	uint64_t n = load(&h->count);

	return n ? (double)load(&h->sum) / (double)n : 0.0;
}

/* See histogram.h. */
uint64_t iocx__hist_percentile(const struct iocx_hist *h, double p)
{
	uint64_t n = load(&h->count), min = load(&h->min), max = load(&h->max);
	uint64_t rank, seen = 0;
	double exact;

	if (n == 0)
		return 0;
	if (!(p > 0))		/* also NaN */
		return min;
	if (p >= 100)
		return max;
	exact = p / 100.0 * (double)n;
	rank = (uint64_t)exact;		/* ceil without libm */
	if ((double)rank < exact || rank == 0)
		rank++;
	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++) {
		seen += load(&h->buckets[i]);
		if (seen >= rank) {
			uint64_t v = iocx__hist_bucket_high(i);

			return v < min ? min : v > max ? max : v;
		}
	}
	return max;	/* count ran ahead of the buckets (snapshot) */
}
