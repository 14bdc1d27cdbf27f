/*
 * HdrHistogram interval logs (see hdrlog.h).  The format is
 * HdrHistogram's: the V2 encoding as AbstractHistogram.encodeIntoByteBuffer
 * writes it, compressed as encodeIntoCompressedByteBuffer does, in the
 * lines of HistogramLogWriter (format version 1.3).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "hdrlog.h"

/* V2 cookies, with 0x10: the counts are ZigZag LEB128 ("TLZE"). */
#define COOKIE_V2 (0x1c849303u | 0x10u)
#define COOKIE_V2_COMPRESSED (0x1c849304u | 0x10u)
#define V2_HEADER 40
#define COMPRESSED_HEADER 8
/* A ZigZag LEB128 word takes at most 9 bytes. */
#define MAX_WORD 9
/* The layout src/histogram.h shares with HdrHistogram. */
#define SIGNIFICANT_DIGITS 2
#define LOWEST_DISCERNIBLE 1
/* The highest trackable value we declare, at least: one hour in ns.
 * Readers size their counts array by it; a larger max raises it. */
#define HIGHEST_TRACKABLE 3600000000000ull

static unsigned char *put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static unsigned char *put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

/* ZigZag, then LEB128 in 7-bit groups; the 9th byte carries 8 bits. */
static unsigned char *put_zigzag(unsigned char *p, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

	for (int n = 0; n < 8; n++) {
		if (u < 0x80) {
			*p++ = (unsigned char)u;
			return p;
		}
		*p++ = (unsigned char)(u | 0x80);
		u >>= 7;
	}
	*p++ = (unsigned char)u;
	return p;
}

/*
 * The uncompressed V2 encoding of h into buf (room for V2_HEADER +
 * MAX_WORD * IOCX_HIST_BUCKETS bytes); returns its length.
 */
static size_t encode_v2(const struct iocx_hist *h, unsigned char *buf)
{
	unsigned char *p = buf + V2_HEADER, *q;
	unsigned limit = 0;
	uint64_t highest = HIGHEST_TRACKABLE;
	double one = 1.0;
	uint64_t one_bits;

	for (unsigned i = 0; i < IOCX_HIST_BUCKETS; i++) {
		if (atomic_load_explicit(&h->buckets[i],
					 memory_order_relaxed))
			limit = i + 1;
	}
	if (limit && iocx__hist_bucket_high(limit - 1) > highest)
		highest = iocx__hist_bucket_high(limit - 1);
	/* A reader keeps values in signed 64 bits. */
	if (highest > INT64_MAX)
		highest = INT64_MAX;
	for (unsigned i = 0; i < limit;) {
		uint64_t n = atomic_load_explicit(&h->buckets[i++],
						  memory_order_relaxed);
		int64_t zeros = 1;

		if (n) {
			p = put_zigzag(p, (int64_t)n);
			continue;
		}
		while (i < limit && !atomic_load_explicit(
					    &h->buckets[i],
					    memory_order_relaxed)) {
			zeros++;
			i++;
		}
		/* A single zero is written as a count of 0. */
		p = put_zigzag(p, zeros > 1 ? -zeros : 0);
	}
	/* The header, now that the payload's length is known. */
	memcpy(&one_bits, &one, sizeof(one_bits));
	q = put_be32(buf, COOKIE_V2);
	q = put_be32(q, (uint32_t)(p - buf - V2_HEADER));
	q = put_be32(q, 0);		/* normalizing index offset */
	q = put_be32(q, SIGNIFICANT_DIGITS);
	q = put_be64(q, LOWEST_DISCERNIBLE);
	q = put_be64(q, highest);
	put_be64(q, one_bits);		/* integer-to-double ratio */
	return (size_t)(p - buf);
}

/* See hdrlog.h. */
size_t hdrlog_encode(const struct iocx_hist *h, unsigned char **out)
{
	size_t raw_cap = V2_HEADER + (size_t)MAX_WORD * IOCX_HIST_BUCKETS;
	unsigned char *raw = malloc(raw_cap), *z = NULL;
	uLongf zlen = 0;
	size_t n;

	*out = NULL;
	if (!raw)
		return 0;
	n = encode_v2(h, raw);
	zlen = compressBound((uLong)n);
	z = malloc(COMPRESSED_HEADER + zlen);
	if (!z || compress2(z + COMPRESSED_HEADER, &zlen, raw, (uLong)n,
			    Z_DEFAULT_COMPRESSION) != Z_OK) {
		free(raw);
		free(z);
		return 0;
	}
	free(raw);
	put_be32(put_be32(z, COOKIE_V2_COMPRESSED), (uint32_t)zlen);
	*out = z;
	return COMPRESSED_HEADER + zlen;
}

/* See hdrlog.h. */
char *hdrlog_encode_base64(const struct iocx_hist *h)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *p;
	size_t n = hdrlog_encode(h, &p);
	char *out = n ? malloc((n + 2) / 3 * 4 + 1) : NULL, *q = out;

	if (!out) {
		free(p);
		return NULL;
	}
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			w |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		*q++ = digits[w >> 18 & 63];
		*q++ = digits[w >> 12 & 63];
		*q++ = i + 1 < n ? digits[w >> 6 & 63] : '=';
		*q++ = i + 2 < n ? digits[w & 63] : '=';
	}
	*q = '\0';
	free(p);
	return out;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Base64 text (to its end or a newline) into a malloc'd buffer. */
static unsigned char *from_base64(const char *text, size_t *len)
{
	size_t n = strcspn(text, "\r\n");
	unsigned char *out = malloc(n / 4 * 3 + 3);
	uint32_t w = 0;
	size_t k = 0, bits = 0;

	if (!out || n % 4)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		int v = c >= 'A' && c <= 'Z'   ? c - 'A'
			: c >= 'a' && c <= 'z' ? c - 'a' + 26
			: c >= '0' && c <= '9' ? c - '0' + 52
			: c == '+'	       ? 62
			: c == '/'	       ? 63
					       : -1;

		if (c == '=' && i >= n - 2)
			break;		/* padding ends it */
		if (v < 0)
			goto bad;
		w = w << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(w >> bits);
		}
	}
	*len = k;
	return out;
bad:
	free(out);
	return NULL;
}

/* ZigZag LEB128 at *p (before end); false when cut short. */
static bool get_zigzag(const unsigned char **p, const unsigned char *end,
		       int64_t *v)
{
	uint64_t u = 0;

	for (int n = 0; n < 9; n++) {
		unsigned char b;

		if (*p == end)
			return false;
		b = *(*p)++;
		if (n == 8) {		/* the 9th byte: all 8 bits */
			u |= (uint64_t)b << 56;
			break;
		}
		u |= (uint64_t)(b & 0x7f) << (7 * n);
		if (!(b & 0x80))
			break;
	}
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return true;
}

/* Add the counts of V2 payload p[0..n) to h; false when malformed. */
static bool add_counts(const unsigned char *p, size_t n, struct iocx_hist *h)
{
	const unsigned char *end = p + n;
	uint64_t total = 0, lo = UINT64_MAX, hi = 0;
	size_t i = 0;

	while (p < end) {
		int64_t v;

		if (!get_zigzag(&p, end, &v))
			return false;
		if (v < 0) {		/* a run of -v empty buckets */
			if ((uint64_t)-v > IOCX_HIST_BUCKETS - i)
				return false;
			i += (size_t)-v;
			continue;
		}
		if (i >= IOCX_HIST_BUCKETS)
			return false;
		if (v > 0) {
			atomic_fetch_add_explicit(&h->buckets[i], (uint64_t)v,
						  memory_order_relaxed);
			total += (uint64_t)v;
			if (lo == UINT64_MAX)
				lo = iocx__hist_bucket_low((unsigned)i);
			hi = iocx__hist_bucket_high((unsigned)i);
		}
		i++;
	}
	if (!total)
		return true;
	atomic_fetch_add_explicit(&h->count, total, memory_order_relaxed);
	if (lo < atomic_load_explicit(&h->min, memory_order_relaxed))
		atomic_store_explicit(&h->min, lo, memory_order_relaxed);
	if (hi > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, hi, memory_order_relaxed);
	return true;
}

/* See hdrlog.h. */
int hdrlog_decode_add(const char *text, struct iocx_hist *h,
		      const char **why)
{
	size_t n, cap = V2_HEADER + (size_t)MAX_WORD * IOCX_HIST_BUCKETS;
	unsigned char *z = from_base64(text, &n), *raw = NULL;
	uLongf rawlen = (uLongf)cap;
	struct iocx_hist *part = malloc(sizeof(*part));
	int rc = -1;

	*why = "out of memory";
	if (!part)
		goto out;
	iocx__hist_init(part);
	*why = "not base64";
	if (!z)
		goto out;
	*why = "not a compressed V2 histogram";
	if (n < COMPRESSED_HEADER || get_be32(z) != COOKIE_V2_COMPRESSED ||
	    get_be32(z + 4) > n - COMPRESSED_HEADER)
		goto out;
	raw = malloc(cap);
	*why = "out of memory";
	if (!raw)
		goto out;
	*why = "its zlib stream does not inflate";
	if (uncompress(raw, &rawlen, z + COMPRESSED_HEADER,
		       get_be32(z + 4)) != Z_OK)
		goto out;
	*why = "not a V2 histogram";
	if (rawlen < V2_HEADER || get_be32(raw) != COOKIE_V2 ||
	    get_be32(raw + 4) != rawlen - V2_HEADER)
		goto out;
	*why = "not the bench's layout (2 significant digits, lowest "
	       "discernible value 1, no normalizing offset)";
	if (get_be32(raw + 8) != 0 ||
	    get_be32(raw + 12) != SIGNIFICANT_DIGITS ||
	    get_be64(raw + 16) != LOWEST_DISCERNIBLE)
		goto out;
	*why = "malformed counts";
	/* Into a histogram of its own first: bad input changes nothing. */
	if (!add_counts(raw + V2_HEADER, rawlen - V2_HEADER, part))
		goto out;
	iocx__hist_merge(h, part);
	rc = 0;
out:
	free(z);
	free(raw);
	free(part);
	return rc;
}

/* See hdrlog.h. */
void hdrlog_header(FILE *f, double epoch_s)
{
	time_t t = (time_t)epoch_s;
	struct tm *utc = gmtime(&t);
	char when[64] = "";

	if (utc)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", utc);
	fprintf(f, "#[Histogram log format version 1.3]\n"
		   "#[StartTime: %.3f (seconds since epoch), %s]\n"
		   "#[BaseTime: %.3f (seconds since epoch)]\n"
		   "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
		   "\"Interval_Compressed_Histogram\"\n",
		epoch_s, when, epoch_s);
	fflush(f);
}

/* See hdrlog.h. */
int hdrlog_interval(FILE *f, const char *tag, double start_s,
		    double length_s, const struct iocx_hist *h)
{
	char *text = hdrlog_encode_base64(h);

	if (!text)
		return -1;
	if (tag)
		fprintf(f, "Tag=%s,", tag);
	fprintf(f, "%.3f,%.3f,%.3f,%s\n", start_s, length_s,
		(double)iocx__hist_max(h) / 1e6, text);
	fflush(f);
	free(text);
	return 0;
}
