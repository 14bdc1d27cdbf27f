/*
 * HdrHistogram interval logs (--hdr-log): the text format of
 * HdrHistogram's HistogramLogWriter, readable by its HistogramLogReader
 * (Java, C, Go, Rust, the npm package hdr-histogram-js).
 *
 * The bench's histogram (src/histogram.h) has the bucket layout of an
 * HdrHistogram with 2 significant digits and a lowest discernible value
 * of 1: 256 unit buckets, then 128 sub-buckets per octave.  Bucket i is
 * therefore HdrHistogram's counts index i, and a histogram is encoded
 * without any conversion: the V2 encoding (a 40-byte big-endian header,
 * then the counts as ZigZag LEB128 with runs of zeros as negative
 * lengths), deflated by zlib behind an 8-byte header, in base64.
 * Portable; zlib does the deflating.
 */
#ifndef IOCX_BENCH_HDRLOG_H
#define IOCX_BENCH_HDRLOG_H

#include <stddef.h>
#include <stdio.h>

#include "histogram.h"

/*
 * Tag prefix of the resolution intervals of a run by name
 * ("resolve.iocx.1" beside "iocx.1"); merge leaves them out of the
 * latencies.
 */
#define HDRLOG_RESOLVE_TAG "resolve."

/*
 * The log's header lines: format version, #[StartTime: ...] and
 * #[BaseTime: ...] (both epoch_s, seconds since the epoch), and the
 * legend.  Interval start times are then seconds since epoch_s.
 */
void hdrlog_header(FILE *f, double epoch_s);

/*
 * One interval line: "Tag=TAG," (tag may be NULL; no commas or spaces
 * in it), start and length in seconds, the interval's max in
 * milliseconds (the values are nanoseconds: HistogramLogWriter's
 * default unit ratio of 10^6), and h compressed in base64.  0, or -1
 * when memory or zlib failed.
 */
int hdrlog_interval(FILE *f, const char *tag, double start_s,
		    double length_s, const struct iocx_hist *h);

/*
 * The compressed V2 encoding of h (cookie 0x1c849314): *out gets a
 * malloc'd buffer the caller frees.  Returns its length, or 0 when
 * memory or zlib failed.
 */
size_t hdrlog_encode(const struct iocx_hist *h, unsigned char **out);

/*
 * The same in base64, as an interval line carries it: a malloc'd string
 * the caller frees, or NULL when memory or zlib failed.
 */
char *hdrlog_encode_base64(const struct iocx_hist *h);

/*
 * Decode one interval's compressed base64 histogram (text, up to the end
 * of the string or a newline) and add its counts to *h: exact, since the
 * layouts are the same.  Only histograms of that layout (2 significant
 * digits, lowest discernible value 1, no normalizing offset) are taken;
 * h's min and max widen to the bounds of the lowest and highest buckets
 * added (its sum, and so its mean, is not known).  0, or -1 with a reason
 * in *why, h unchanged.
 */
int hdrlog_decode_add(const char *text, struct iocx_hist *h,
		      const char **why);

#endif /* IOCX_BENCH_HDRLOG_H */
