/*
 * The engine's connect latency histogram, and its name resolution one
 * (iocx_engine_latency, IOCX_LATENCY_RESOLUTION): the same code, two
 * histograms per set with a baseline each.
 *
 * Every counter set (struct iocx_counters: one per worker, one shared by
 * the other threads) carries its own histogram, recorded by report() in
 * conn.c with the set's other counters, so a connect touches no cache line
 * another worker writes.  A snapshot adds the sets up.  Intervals: a reset
 * does not clear the sets (a worker may be recording into them); it keeps
 * the sum seen so far as a baseline, and later snapshots subtract it.
 * Bucket counters only grow, so each recorded value lands in exactly one
 * interval.  e->latency_lock serialises snapshots and guards the
 * baseline; it is a leaf lock.
 */
#include <string.h>

#include "engine.h"
#include "histogram.h"

/* The public layout constants are the internal ones. */
_Static_assert(IOCX_HISTOGRAM_BUCKETS == IOCX_HIST_BUCKETS,
	       "public bucket count");
_Static_assert(IOCX_HISTOGRAM_SUB_BUCKET_BITS == IOCX_HIST_SUB_BITS,
	       "public sub-bucket bits");

/* See engine.h. */
int iocx__latency_attach(struct iocx_counters *set)
{
	set->latency = iocx__alloc(sizeof(*set->latency));
	set->resolve = iocx__alloc(sizeof(*set->resolve));
	if (!set->latency || !set->resolve) {
		iocx__latency_detach(set);
		return IOCX_E_NOMEM;
	}
	iocx__hist_init(set->latency);
	iocx__hist_init(set->resolve);
	return IOCX_OK;
}

/* See engine.h. */
void iocx__latency_detach(struct iocx_counters *set)
{
	iocx__free(set->latency);
	iocx__free(set->resolve);
	set->latency = NULL;
	set->resolve = NULL;
}

static uint64_t load(const _Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/*
 * Fill the public summary (and out->buckets, when given) from h.  The
 * buckets are the truth: count is their total, so a record in progress
 * while h was taken counts once it reached its bucket.
 */
static void fill(struct iocx_histogram *out, struct iocx_hist *h)
{
	uint64_t total = 0;
	size_t top = 0;

	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++) {
		uint64_t n = load(&h->buckets[i]);

		if (n == 0)
			continue;
		total += n;
		top = i + 1;
	}
	atomic_store_explicit(&h->count, total, memory_order_relaxed);
	if (out->buckets) {
		for (size_t i = 0; i < top; i++)
			out->buckets[i] = load(&h->buckets[i]);
	}
	out->nbuckets = out->buckets ? top : 0;
	out->count = total;
	out->sum = total ? load(&h->sum) : 0;
	out->min = iocx__hist_min(h);
	out->max = iocx__hist_max(h);
	out->mean = iocx__hist_mean(h);
	out->p50 = iocx__hist_percentile(h, 50);
	out->p90 = iocx__hist_percentile(h, 90);
	out->p99 = iocx__hist_percentile(h, 99);
	out->p999 = iocx__hist_percentile(h, 99.9);
}

/* Histogram k of a set: 0 connect latency, 1 resolution. */
static struct iocx_hist *of(const struct iocx_counters *set, int k)
{
	return k ? set->resolve : set->latency;
}

/* A histogram of e's values so far: all of its sets added up. */
static void gather(const iocx_engine *e, struct iocx_hist *h, int k)
{
	iocx__hist_init(h);
	iocx__hist_merge(h, of(&e->stats, k));
	for (unsigned i = 0; i < e->nthreads; i++)
		iocx__hist_merge(h, of(&e->workers[i].stats, k));
}

/* See iocx.h. */
int iocx_engine_latency(iocx_engine *e, struct iocx_histogram *out,
			unsigned flags)
{
	unsigned known = IOCX_LATENCY_RESET | IOCX_LATENCY_RESOLUTION;
	int k = (flags & IOCX_LATENCY_RESOLUTION) ? 1 : 0;
	struct iocx_hist *h;
	int rc = IOCX_OK;

	if (!e || !out || (flags & ~known))
		return IOCX_E_INVAL;
	if (out->buckets && out->bucket_cap < IOCX_HIST_BUCKETS)
		return IOCX_E_INVAL;
	h = iocx__alloc(sizeof(*h));
	if (!h)
		return IOCX_E_NOMEM;
	iocx__mutex_lock(&e->latency_lock);
	if ((flags & IOCX_LATENCY_RESET) && !e->latency_base[k]) {
		e->latency_base[k] = iocx__alloc(sizeof(*e->latency_base[k]));
		if (!e->latency_base[k]) {
			rc = IOCX_E_NOMEM;
			goto out_unlock;
		}
		iocx__hist_init(e->latency_base[k]);
	}
	gather(e, h, k);
	/* From here on h is this interval's, the baseline the total. */
	if (e->latency_based[k])
		iocx__hist_subtract(h, e->latency_base[k]);
	fill(out, h);
	if (flags & IOCX_LATENCY_RESET) {
		iocx__hist_merge(e->latency_base[k], h);
		e->latency_based[k] = true;
	}
out_unlock:
	iocx__mutex_unlock(&e->latency_lock);
	iocx__free(h);
	return rc;
}

/* Load a public histogram's buckets and totals into h (initialised). */
static void add_public(struct iocx_hist *h, const struct iocx_histogram *p)
{
	for (size_t i = 0; i < p->nbuckets && i < IOCX_HIST_BUCKETS; i++)
		atomic_fetch_add_explicit(&h->buckets[i], p->buckets[i],
					  memory_order_relaxed);
	if (p->count == 0)
		return;
	atomic_fetch_add_explicit(&h->sum, p->sum, memory_order_relaxed);
	if (p->min < load(&h->min))
		atomic_store_explicit(&h->min, p->min, memory_order_relaxed);
	if (p->max > load(&h->max))
		atomic_store_explicit(&h->max, p->max, memory_order_relaxed);
}

/* See iocx.h. */
int iocx_histogram_merge(struct iocx_histogram *dst,
			 const struct iocx_histogram *src)
{
	struct iocx_hist *h;

	if (!dst || !src || !dst->buckets || !src->buckets ||
	    dst->bucket_cap < IOCX_HIST_BUCKETS ||
	    src->bucket_cap < IOCX_HIST_BUCKETS)
		return IOCX_E_INVAL;
	h = iocx__alloc(sizeof(*h));
	if (!h)
		return IOCX_E_NOMEM;
	iocx__hist_init(h);
	add_public(h, dst);
	add_public(h, src);
	fill(dst, h);
	iocx__free(h);
	return IOCX_OK;
}
