/*
 * A log-bucketed latency histogram in the style of HdrHistogram.
 *
 * Values are unsigned 64-bit (nanoseconds, in practice).  Values below
 * 2^IOCX_HIST_SUB_BITS each have their own bucket; above that, every range
 * [2^m, 2^(m+1)) is split into 2^IOCX_HIST_SUB_BITS equal buckets, so a
 * bucket is never wider than 1/128 of its lowest value (relative error
 * <= 0.79 %).  The whole 64-bit range fits in a fixed
 * array: memory is bounded (about 58 KiB) whatever is recorded, and
 * recording is O(1).
 *
 * Thread safety: iocx__hist_record() uses relaxed atomics and may be called
 * from any number of threads at once.  Every other function reads or writes
 * a histogram no thread records into at the same time, except
 * iocx__hist_snapshot(), which may run concurrently with recording (it then
 * sees each counter either before or after a concurrent record).
 */
#ifndef IOCX_HISTOGRAM_H
#define IOCX_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define IOCX_HIST_SUB_BITS 7
#define IOCX_HIST_SUB_COUNT (1u << IOCX_HIST_SUB_BITS)
/* Buckets for the full 64-bit range: (65 - SUB_BITS) * SUB_COUNT. */
#define IOCX_HIST_BUCKETS ((65u - IOCX_HIST_SUB_BITS) * IOCX_HIST_SUB_COUNT)

struct iocx_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum;		/* wraps after 584 years of ns */
	_Atomic uint64_t min;		/* UINT64_MAX while empty */
	_Atomic uint64_t max;		/* exact */
	_Atomic uint64_t buckets[IOCX_HIST_BUCKETS];
};

/* Make h empty. */
void iocx__hist_init(struct iocx_hist *h);

/* Record one value.  Thread-safe, lock-free, O(1). */
void iocx__hist_record(struct iocx_hist *h, uint64_t value);

/*
 * Copy h into *out (which needs no init).  Safe while other threads
 * record into h; the copy is then a consistent-enough view in which count
 * may differ from the bucket total by the records in progress.
 */
void iocx__hist_snapshot(const struct iocx_hist *h, struct iocx_hist *out);

/* Add every value recorded in src to dst. */
void iocx__hist_merge(struct iocx_hist *dst, const struct iocx_hist *src);

/*
 * Remove from h the values of earlier, an older snapshot of the same
 * histogram, leaving what was recorded in between.  min and max can no
 * longer be exact: they become the bounds of the lowest and highest
 * non-empty buckets (each within 0.79 % of the true value).
 */
void iocx__hist_subtract(struct iocx_hist *h, const struct iocx_hist *earlier);

/* Number of values recorded. */
uint64_t iocx__hist_count(const struct iocx_hist *h);

/* Smallest and largest value recorded (exact); 0 when empty. */
uint64_t iocx__hist_min(const struct iocx_hist *h);
uint64_t iocx__hist_max(const struct iocx_hist *h);

/* Arithmetic mean (exact up to the sum wrapping); 0 when empty. */
double iocx__hist_mean(const struct iocx_hist *h);

/*
 * The value at percentile p (0 <= p <= 100; out-of-range p is clamped):
 * the highest value of the bucket holding the ceil(p/100 * count)-th
 * smallest value, clamped to [min, max].  So it never understates the
 * true percentile and overstates it by at most 1/128 (0.79 %).  p = 0
 * gives min, p = 100 gives max, both exact.  0 when empty.
 */
uint64_t iocx__hist_percentile(const struct iocx_hist *h, double p);

/* Bucket of a value, and the lowest / highest value of a bucket. */
unsigned iocx__hist_bucket(uint64_t value);
uint64_t iocx__hist_bucket_low(unsigned bucket);
uint64_t iocx__hist_bucket_high(unsigned bucket);

#endif /* IOCX_HISTOGRAM_H */
