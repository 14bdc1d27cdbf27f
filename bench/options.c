/*
 * iocx-bench option parsing (see options.h).  Each option has one row in
 * a table; a handler converts and range-checks its value, and the checks
 * that involve several options run once at the end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

struct parse {
	struct bench_options *o;
	char *err;
	size_t errlen;
	bool connects_set;
	bool sink_set;
	bool sink_mode_set;
	bool rounds_set;
	bool burst_set;
	bool payload_set;
	bool reply_timeout_set;
};

static bool fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return false;
}

/*
 * Decimal unsigned integer in [min, max], optionally followed by one
 * decimal suffix: k or K (10^3), M (10^6), G (10^9).  No sign, no
 * fraction, no trailing junk.
 */
static bool parse_uint(const char *s, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end == 'k' || *end == 'K')
		mult = 1000;
	else if (*end == 'M')
		mult = 1000000;
	else if (*end == 'G')
		mult = 1000000000;
	if (mult > 1)
		end++;
	if (*end || v > UINT64_MAX / mult)
		return false;
	v *= mult;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * A duration: decimal seconds ("2", "0.5") or with a unit ("250ms",
 * "3s").  Returns false unless the result lies in [min_ms, max_ms].
 */
static bool parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms,
			      uint64_t *out)
{
	const char *unit = s;
	bool dot = false, digit = false;
	double v;

	for (; *unit; unit++) {
		if (*unit >= '0' && *unit <= '9')
			digit = true;
		else if (*unit == '.' && !dot)
			dot = true;
		else
			break;
	}
	if (!digit)
		return false;
	v = strtod(s, NULL);		/* stops at the unit */
	if (!strcmp(unit, "") || !strcmp(unit, "s"))
		v *= 1000.0;
	else if (strcmp(unit, "ms"))
		return false;
	if (!(v >= (double)min_ms && v <= (double)max_ms))
		return false;
	*out = (uint64_t)(v + 0.5);
	return true;
}

static bool has_unit(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == 's';
}

#define MAX_DURATION_MS (7ull * 24 * 3600 * 1000)

static bool opt_connects(struct parse *p, const char *v)
{
	p->connects_set = true;
	if (!parse_uint(v, 1, UINT32_MAX, &p->o->connects))
		return fail(p, "--connects %s: want a whole number 1..%u", v,
			    UINT32_MAX);
	return true;
}

static bool opt_duration(struct parse *p, const char *v)
{
	if (!parse_duration_ms(v, 1, MAX_DURATION_MS, &p->o->duration_ms))
		return fail(p, "--duration %s: want seconds (\"10\", \"2.5\","
			    " \"500ms\"), at least 1 ms, at most 7 days", v);
	return true;
}

static bool opt_concurrency(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 1, BENCH_MAX_CONCURRENCY, &n))
		return fail(p, "--concurrency %s: want connects in flight, "
			    "1..%u", v, BENCH_MAX_CONCURRENCY);
	p->o->concurrency = (unsigned)n;
	return true;
}

static bool opt_workers(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 0, BENCH_MAX_WORKERS, &n))
		return fail(p, "--workers %s: want 0 (one per CPU) .. %u", v,
			    BENCH_MAX_WORKERS);
	p->o->workers = (unsigned)n;
	return true;
}

static bool opt_batch(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 1, 4096, &n))
		return fail(p, "--batch %s: want completions per dequeue, "
			    "1..4096", v);
	p->o->batch = (unsigned)n;
	return true;
}

static bool opt_payload(struct parse *p, const char *v)
{
	uint64_t n;

	p->payload_set = true;
	if (!parse_uint(v, 0, UINT64_MAX, &n))
		return fail(p, "--payload %s: want a byte count", v);
	if (n > IOCX_MAX_PAYLOAD)
		return fail(p, "--payload %s: larger than IOCX_MAX_PAYLOAD "
			    "(%u bytes)", v, IOCX_MAX_PAYLOAD);
	p->o->payload = (size_t)n;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* See options.h. */
long bench_hex_decode(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex);

	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		if (out)
			out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/* See options.h. */
bool bench_expects_reply(const struct bench_options *o)
{
	return o->expect_bytes > 0 || o->expect_until_len > 0;
}

static bool opt_payload_file(struct parse *p, const char *v)
{
	if (!*v)
		return fail(p, "--payload-file: want a file name");
	p->o->payload_file = v;
	p->o->payload_hex = NULL;
	return true;
}

static bool opt_payload_hex(struct parse *p, const char *v)
{
	long n = bench_hex_decode(v, NULL);

	if (n <= 0)
		return fail(p, "--payload-hex %s: want pairs of hex digits, "
			    "at least one byte", v);
	if ((unsigned long)n > IOCX_MAX_PAYLOAD)
		return fail(p, "--payload-hex: %ld bytes, larger than "
			    "IOCX_MAX_PAYLOAD (%u bytes)", n,
			    IOCX_MAX_PAYLOAD);
	p->o->payload_hex = v;
	p->o->payload_file = NULL;
	p->o->payload = (size_t)n;
	return true;
}

static bool opt_expect_bytes(struct parse *p, const char *v)
{
	if (!parse_uint(v, 1, UINT32_MAX, &p->o->expect_bytes))
		return fail(p, "--expect-bytes %s: want reply bytes, 1..%u", v,
			    UINT32_MAX);
	return true;
}

/*
 * One escape of --expect-until at s (after the backslash): \r \n \t
 * \\ \xHH.  Returns the characters it took, 0 when it is not one.
 */
static size_t unescape(const char *s, char *out)
{
	int hi, lo;

	switch (s[0]) {
	case 'r':
		*out = '\r';
		return 1;
	case 'n':
		*out = '\n';
		return 1;
	case 't':
		*out = '\t';
		return 1;
	case '\\':
		*out = '\\';
		return 1;
	case 'x':
		hi = hex_digit(s[1]);
		lo = hi < 0 ? -1 : hex_digit(s[2]);
		if (lo < 0)
			return 0;
		*out = (char)(hi << 4 | lo);
		return 3;
	default:
		return 0;
	}
}

static bool opt_expect_until(struct parse *p, const char *v)
{
	size_t n = 0;

	for (const char *s = v; *s; n++) {
		size_t took = 1;

		if (n == BENCH_MAX_EXPECT)
			return fail(p, "--expect-until: longer than %u bytes",
				    BENCH_MAX_EXPECT);
		if (*s == '\\') {
			took = unescape(s + 1, &p->o->expect_until[n]);
			if (!took)
				return fail(p, "--expect-until %s: escapes are "
					    "\\r \\n \\t \\\\ \\xHH", v);
			s++;
		} else {
			p->o->expect_until[n] = *s;
		}
		s += took;
	}
	if (n == 0)
		return fail(p, "--expect-until: want a non-empty string");
	p->o->expect_until_len = n;
	return true;
}

static bool opt_hdr_log(struct parse *p, const char *v)
{
	if (!*v)
		return fail(p, "--hdr-log: want a file name");
	p->o->hdr_log = v;
	return true;
}

static bool opt_svg(struct parse *p, const char *v)
{
	if (!*v)
		return fail(p, "--svg: want a file name");
	p->o->svg = v;
	return true;
}

/*
 * Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (civil from days, inverted: eras of 400 years start on March 1st).
 */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at *s into *out; advances *s.  False if fewer. */
static bool digits(const char **s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return false;
		v = v * 10 + (unsigned)(**s - '0');
	}
	*out = v;
	return true;
}

/* ".123" (any number of digits) at *s: the fraction, or 0 if none. */
static bool fraction(const char **s, double *out)
{
	double scale = 0.1;

	*out = 0;
	if (**s != '.')
		return true;
	if ((*s)[1] < '0' || (*s)[1] > '9')
		return false;
	for ((*s)++; **s >= '0' && **s <= '9'; (*s)++, scale /= 10)
		*out += (**s - '0') * scale;
	return true;
}

/*
 * RFC 3339: 2026-12-06T11:00:00Z, with an optional fraction of a second
 * and Z or a +HH:MM / -HH:MM offset.  Seconds since the epoch, or a
 * negative value when s is not one.
 */
static double parse_rfc3339(const char *s)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
	double frac, t;
	int sign = 0;

	if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) ||
	    *s++ != '-' || !digits(&s, 2, &d) || (*s != 'T' && *s != 't'))
		return -1;
	s++;
	if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) ||
	    *s++ != ':' || !digits(&s, 2, &sec) || !fraction(&s, &frac))
		return -1;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) ||
		    oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;
	t = (double)days_from_civil(y, mo, d) * 86400 + h * 3600.0 +
	    mi * 60.0 + sec + frac;
	return t - sign * (oh * 3600.0 + om * 60.0);
}

/* Earliest --start-at taken (2000-01-01): smaller numbers are mistakes
 * (a delay meant, or milliseconds cut short). */
#define START_AT_MIN 946684800.0
/* ... and latest (2100-01-01). */
#define START_AT_MAX 4102444800.0

static bool opt_start_at(struct parse *p, const char *v)
{
	const char *s = v;
	double t = -1, frac;
	int n = 0;

	/* Unix seconds: digits, optionally a fraction. */
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n > 0 && n <= 10 && (s[n] == '\0' || s[n] == '.')) {
		t = 0;
		for (int i = 0; i < n; i++)
			t = t * 10 + (s[i] - '0');
		s += n;
		if (!fraction(&s, &frac) || *s)
			t = -1;
		else
			t += frac;
	} else if (n == 4 && s[4] == '-') {
		t = parse_rfc3339(v);
	}
	if (!(t >= START_AT_MIN && t < START_AT_MAX))
		return fail(p, "--start-at %s: want a wall-clock time, RFC "
			    "3339 (2026-12-06T11:00:00Z) or unix seconds "
			    "(1796554800), in 2000..2099", v);
	p->o->start_at = t;
	return true;
}

static bool opt_close(struct parse *p, const char *v)
{
	if (!strcmp(v, "abort"))
		p->o->close_mode = BENCH_CLOSE_ABORT;
	else if (!strcmp(v, "graceful"))
		p->o->close_mode = BENCH_CLOSE_GRACEFUL;
	else
		return fail(p, "--close %s: want abort or graceful", v);
	return true;
}

static bool opt_rate(struct parse *p, const char *v)
{
	if (!parse_uint(v, 1, 100000000, &p->o->rate))
		return fail(p, "--rate %s: want connects per second, "
			    "1..100000000", v);
	return true;
}

static bool opt_burst(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 1, BENCH_MAX_BURST, &n))
		return fail(p, "--burst %s: want 1..%u", v, BENCH_MAX_BURST);
	p->o->burst = (unsigned)n;
	p->burst_set = true;
	return true;
}

static bool opt_warmup(struct parse *p, const char *v)
{
	p->o->warmup_connects = 0;
	p->o->warmup_ms = 0;
	if (has_unit(v)) {
		if (!parse_duration_ms(v, 1, MAX_DURATION_MS,
				       &p->o->warmup_ms))
			return fail(p, "--warmup %s: want connects (\"500\") "
				    "or time (\"2s\", \"300ms\")", v);
	} else if (!parse_uint(v, 0, UINT32_MAX, &p->o->warmup_connects)) {
		return fail(p, "--warmup %s: want connects (\"500\") or time "
			    "(\"2s\", \"300ms\")", v);
	}
	return true;
}

static bool opt_timeout(struct parse *p, const char *v)
{
	if (!parse_duration_ms(v, 1, MAX_DURATION_MS, &p->o->timeout_ms))
		return fail(p, "--timeout %s: want a connect deadline in "
			    "seconds (\"5\", \"0.5\", \"200ms\"), at least "
			    "1 ms", v);
	return true;
}

static bool opt_reply_timeout(struct parse *p, const char *v)
{
	p->reply_timeout_set = true;
	if (!parse_duration_ms(v, 1, MAX_DURATION_MS,
			       &p->o->reply_timeout_ms))
		return fail(p, "--reply-timeout %s: want seconds (\"10\", "
			    "\"0.5\", \"300ms\"), at least 1 ms, at most 7 "
			    "days", v);
	return true;
}

static bool opt_interrupt_grace(struct parse *p, const char *v)
{
	if (!parse_duration_ms(v, 1, MAX_DURATION_MS, &p->o->grace_ms))
		return fail(p, "--interrupt-grace %s: want seconds (\"1\", "
			    "\"0.5\", \"300ms\"), at least 1 ms", v);
	return true;
}

static bool opt_armed(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 0, BENCH_MAX_ARMED, &n))
		return fail(p, "--armed %s: want timers to hold armed, 0..%u",
			    v, BENCH_MAX_ARMED);
	p->o->armed = (unsigned)n;
	return true;
}

static bool opt_scale(struct parse *p, const char *v)
{
	if (!parse_uint(v, 1, BENCH_MAX_SCALE, &p->o->scale))
		return fail(p, "--scale %s: want connections to hold, 1..%u", v,
			    BENCH_MAX_SCALE);
	return true;
}

static bool opt_idle(struct parse *p, const char *v)
{
	if (!parse_duration_ms(v, 1, UINT32_MAX, &p->o->idle_ms))
		return fail(p, "--idle %s: want an idle watchdog in seconds "
			    "(\"3600\", \"90s\"), 1 ms .. 49 days", v);
	return true;
}

static bool opt_sources(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 1, IOCX_MAX_SOURCES, &n))
		return fail(p, "--sources %s: want 127.0.0.x source addresses, "
			    "1..%u", v, IOCX_MAX_SOURCES);
	p->o->sources = (unsigned)n;
	return true;
}

static bool is_unspecified(const struct sockaddr_storage *ss)
{
	static const unsigned char zero[16];

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == 0;
	return !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, zero,
		       sizeof(zero));
}

static bool opt_target(struct parse *p, const char *v)
{
	struct bench_target *t = &p->o->targets[p->o->ntargets];

	if (p->o->ntargets == BENCH_MAX_TARGETS)
		return fail(p, "--target %s: at most %u targets", v,
			    BENCH_MAX_TARGETS);
	memset(t, 0, sizeof(*t));
	t->len = bench_addr_parse(v, &t->addr);
	if (t->len == 0 && !bench_name_parse(v, t->host, &t->port))
		return fail(p, "--target %s: want IPv4:PORT, [IPv6]:PORT or "
			    "NAME:PORT, port 1..65535", v);
	if (p->o->ntargets && (t->len == 0) != p->o->by_name)
		return fail(p, "--target %s: all targets must be names, or "
			    "all numeric", v);
	if (t->len == 0) {
		p->o->by_name = true;
		p->o->name_sink |= t->port == 0;
		p->o->ntargets++;
		return true;
	}
	if (is_unspecified(&t->addr))
		return fail(p, "--target %s: the unspecified address is not a "
			    "host to connect to", v);
	/* The raw loops create every socket of a phase in one family. */
	if (p->o->ntargets &&
	    t->addr.ss_family != p->o->targets[0].addr.ss_family)
		return fail(p, "--target %s: all targets must be IPv4, or all "
			    "IPv6", v);
	p->o->ntargets++;
	return true;
}

static bool opt_resolver(struct parse *p, const char *v)
{
	struct sockaddr_storage ss;

	if (!bench_addr_parse(v, &ss) || is_unspecified(&ss))
		return fail(p, "--resolver %s: want the DNS server as "
			    "IPv4:PORT or [IPv6]:PORT, numeric, port "
			    "1..65535", v);
	p->o->resolver = v;
	return true;
}

static bool opt_sink(struct parse *p, const char *v)
{
	p->sink_set = true;
	p->sink_mode_set = true;
	if (!strcmp(v, "read"))
		p->o->sink_mode = BENCH_SINK_READ;
	else if (!strcmp(v, "close"))
		p->o->sink_mode = BENCH_SINK_CLOSE;
	else if (!strcmp(v, "echo"))
		p->o->sink_mode = BENCH_SINK_ECHO;
	else
		return fail(p, "--sink %s: want read (read the first payload, "
			    "then close), close (accept and close) or echo "
			    "(send the payload back, then close)", v);
	return true;
}

static bool opt_sink_threads(struct parse *p, const char *v)
{
	uint64_t n;

	p->sink_set = true;
	if (!parse_uint(v, 1, BENCH_MAX_SINK_THREADS, &n))
		return fail(p, "--sink-threads %s: want 1..%u", v,
			    BENCH_MAX_SINK_THREADS);
	p->o->sink_threads = (unsigned)n;
	return true;
}

static bool opt_rounds(struct parse *p, const char *v)
{
	uint64_t n;

	p->rounds_set = true;
	if (!parse_uint(v, 1, BENCH_MAX_ROUNDS, &n))
		return fail(p, "--rounds %s: want 1..%u", v, BENCH_MAX_ROUNDS);
	p->o->rounds = (unsigned)n;
	return true;
}

struct option_row {
	const char *name;
	bool (*handler)(struct parse *p, const char *value);
};

/* Options that take a value. */
static const struct option_row value_options[] = {
	{ "connects", opt_connects },
	{ "duration", opt_duration },
	{ "concurrency", opt_concurrency },
	{ "workers", opt_workers },
	{ "batch", opt_batch },
	{ "payload", opt_payload },
	{ "close", opt_close },
	{ "rate", opt_rate },
	{ "burst", opt_burst },
	{ "warmup", opt_warmup },
	{ "timeout", opt_timeout },
	{ "armed", opt_armed },
	{ "target", opt_target },
	{ "resolver", opt_resolver },
	{ "sink", opt_sink },
	{ "sink-threads", opt_sink_threads },
	{ "rounds", opt_rounds },
	{ "payload-file", opt_payload_file },
	{ "payload-hex", opt_payload_hex },
	{ "expect-bytes", opt_expect_bytes },
	{ "expect-until", opt_expect_until },
	{ "reply-timeout", opt_reply_timeout },
	{ "interrupt-grace", opt_interrupt_grace },
	{ "hdr-log", opt_hdr_log },
	{ "svg", opt_svg },
	{ "scale", opt_scale },
	{ "idle", opt_idle },
	{ "sources", opt_sources },
	{ "start-at", opt_start_at },
};

static void defaults(struct bench_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connects = BENCH_DEFAULT_CONNECTS;
	o->concurrency = BENCH_DEFAULT_CONCURRENCY;
	o->batch = BENCH_DEFAULT_BATCH;
	o->payload = BENCH_DEFAULT_PAYLOAD;
	o->close_mode = BENCH_CLOSE_ABORT;
	o->sink_mode = BENCH_SINK_READ;
	o->rounds = 1;
	o->burst = 1;
	o->grace_ms = BENCH_DEFAULT_GRACE_MS;
}

/* --json / --csv: a switch with an optional "=PATH" ("=-" is stdout). */
static bool output_option(struct parse *p, const char *name, const char *eq,
			  struct bench_output *out)
{
	out->on = true;
	out->path = NULL;
	if (!eq)
		return true;
	if (eq[1] == '\0')
		return fail(p, "--%s=: want --%s or --%s=PATH", name, name,
			    name);
	if (strcmp(eq + 1, "-"))
		out->path = eq + 1;
	return true;
}

/* Checks across options, once everything is parsed. */
static bool check_combination(struct parse *p)
{
	struct bench_options *o = p->o;

	if (o->duration_ms && p->connects_set)
		return fail(p, "--connects and --duration exclude each other");
	if (o->duration_ms)
		o->connects = 0;
	if (o->warmup_connects && o->connects &&
	    o->warmup_connects >= o->connects)
		return fail(p, "--warmup %llu leaves nothing to measure of "
			    "--connects %llu",
			    (unsigned long long)o->warmup_connects,
			    (unsigned long long)o->connects);
	if (p->burst_set && !o->rate)
		return fail(p, "--burst is the iocx phases' connect_burst "
			    "under --rate: give --rate");
	if (o->warmup_ms && o->duration_ms && o->warmup_ms >= o->duration_ms)
		return fail(p, "--warmup leaves nothing to measure of "
			    "--duration");
	if (o->ntargets && !o->name_sink && p->sink_set)
		return fail(p, "--sink and --sink-threads describe the built-in"
			    " sink; they make no sense with --target");
	if (p->payload_set && (o->payload_file || o->payload_hex))
		return fail(p, "--payload gives a filler length; --payload-file"
			    " and --payload-hex give the bytes: one of them");
	if (o->expect_bytes && o->expect_until_len)
		return fail(p, "--expect-bytes and --expect-until exclude each "
			    "other");
	if (p->reply_timeout_set && !bench_expects_reply(o))
		return fail(p, "--reply-timeout bounds the reply of "
			    "--expect-bytes or --expect-until: give one");
	if (bench_expects_reply(o) && !p->reply_timeout_set)
		o->reply_timeout_ms = BENCH_DEFAULT_REPLY_TIMEOUT_MS;
	if (bench_expects_reply(o) && o->baseline)
		return fail(p, "--expect-bytes / --expect-until are measured "
			    "through iocx only: no --baseline");
	if (!o->scale && (o->idle_ms || o->sources))
		return fail(p, "--idle and --sources belong to --scale");
	if (o->scale && (p->connects_set || o->duration_ms || o->rate ||
			 o->baseline || p->rounds_set || o->armed ||
			 o->warmup_connects || o->warmup_ms || o->csv.on ||
			 p->burst_set ||
			 p->sink_mode_set || o->ntargets > 1 || o->hdr_log ||
			 o->svg || bench_expects_reply(o)))
		return fail(p, "--scale opens and holds its own connections: "
			    "it takes none of --connects, --duration, --rate, "
			    "--burst, "
			    "--baseline, --rounds, --armed, --warmup, --csv, "
			    "--sink, several --target, --hdr-log, --svg, "
			    "--expect-*");
	if (o->name_sink && o->ntargets > 1)
		return fail(p, "--target NAME:0 connects to the built-in sink: "
			    "it is the only target then");
	if (o->resolver && !o->by_name)
		return fail(p, "--resolver tells the engine where to look up "
			    "the names of --target NAME:PORT: give one");
	if (o->by_name && (o->baseline || o->scale || o->armed))
		return fail(p, "--target NAME:PORT is resolved by the engine: "
			    "no --baseline (the raw loops cannot resolve), "
			    "--scale or --armed; give numeric targets");
	if (o->json.on && o->csv.on && !o->json.path && !o->csv.path)
		return fail(p, "--json and --csv cannot both write to stdout: "
			    "give one a file (--csv=PATH)");
	return true;
}

/* See options.h. */
enum bench_parse_result bench_parse(int argc, char **argv,
				    struct bench_options *o, char *err,
				    size_t errlen)
{
	struct parse p = { .o = o, .err = err, .errlen = errlen };

	defaults(o);
	if (errlen)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *value;
		size_t nlen;
		size_t k;

		if (!strcmp(arg, "-h"))
			return BENCH_PARSE_HELP;
		if (strncmp(arg, "--", 2) || arg[2] == '\0') {
			fail(&p, "unexpected argument \"%s\" (options start "
			     "with --; see --help)", arg);
			return BENCH_PARSE_USAGE;
		}
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
#define IS(name) (nlen == strlen(name) && !strncmp(arg, name, nlen))
		if (IS("json") || IS("csv")) {
			if (!output_option(&p, IS("json") ? "json" : "csv", eq,
					   IS("json") ? &o->json : &o->csv))
				return BENCH_PARSE_USAGE;
			continue;
		} else if (IS("fastopen") || IS("baseline") ||
			   IS("batch-closes") || IS("quiet") || IS("help") ||
			   IS("version")) {
			if (eq) {
				fail(&p, "--%.*s takes no value", (int)nlen,
				     arg);
				return BENCH_PARSE_USAGE;
			}
			if (IS("help"))
				return BENCH_PARSE_HELP;
			if (IS("version"))
				return BENCH_PARSE_VERSION;
			if (IS("fastopen"))
				o->fastopen = true;
			else if (IS("batch-closes"))
				o->batch_closes = true;
			else if (IS("quiet"))
				o->quiet = true;
			else
				o->baseline = true;
			continue;
		}
		for (k = 0; k < sizeof(value_options) / sizeof(*value_options);
		     k++) {
			if (IS(value_options[k].name))
				break;
		}
#undef IS
		if (k == sizeof(value_options) / sizeof(*value_options)) {
			fail(&p, "unknown option --%.*s (see --help)",
			     (int)nlen, arg);
			return BENCH_PARSE_USAGE;
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fail(&p, "--%s needs a value", value_options[k].name);
			return BENCH_PARSE_USAGE;
		}
		if (!value_options[k].handler(&p, value))
			return BENCH_PARSE_USAGE;
	}
	if (o->baseline && !p.rounds_set)
		o->rounds = 2;		/* iocx, raw, iocx, raw */
	return check_combination(&p) ? BENCH_PARSE_OK : BENCH_PARSE_USAGE;
}

/* See options.h. */
void bench_usage(FILE *f)
{
	fprintf(f,
"usage: iocx-bench [options]\n"
"       iocx-bench merge [--json] FILE...   (--hdr-log or --json files,\n"
"                                           merged)\n"
"Opens TCP connections as fast as it can (or at --rate) and reports\n"
"connects/s, latency percentiles, errors and CPU per connect.\n"
"Whole numbers take k, M or G (decimal: 5k = 5000, 1M = 1000000).\n"
"\n"
"workload (per phase)\n"
"  --connects N        connects to make (default %u)\n"
"  --duration T        run for T instead (\"10\", \"2.5\", \"500ms\")\n"
"  --concurrency N     connects in flight (default %u, max %u)\n"
"  --workers N         worker threads, 0 = one per CPU (default 0)\n"
"  --batch N           completions per dequeue (default %u)\n"
"  --payload BYTES     first payload per connect, sent with the\n"
"                      handshake (default %u, max %u)\n"
"  --fastopen          ask for TCP Fast Open\n"
"  --close MODE        abort (RST, default) or graceful (FIN)\n"
"  --batch-closes      iocx phases: the engine's batch_closes option\n"
"                      (io_uring: reset and close through the ring)\n"
"  --rate N            start N connects/s (iocx: the engine paces)\n"
"                      (default: as fast as --concurrency allows);\n"
"                      --concurrency is then a cap, and the report\n"
"                      says whether it was hit (open loop or not)\n"
"  --burst N           with --rate, iocx phases: the engine's\n"
"                      connect_burst (default 1; up to N - 1 turns\n"
"                      early, to keep the rate when wake-ups are late)\n"
"  --warmup N|T        leave the first N connects (\"500\") or the first\n"
"                      T of time (\"2s\") out of the statistics\n"
"  --timeout T         connect deadline: iocx gets it as deadline_ms, the\n"
"                      raw loop cancels what is pending after T; both\n"
"                      count IOCX_E_TIMEDOUT (default: no deadline)\n"
"  --armed N           iocx phases only: before the workload, park N extra\n"
"                      connects (refused by a local port) in their retry\n"
"                      wait, so N timers stay armed until the workload is\n"
"                      done (default 0, max %u); the raw loop has no\n"
"                      engine and no timers, so its phases ignore it\n"
"",
		BENCH_DEFAULT_CONNECTS, BENCH_DEFAULT_CONCURRENCY,
		BENCH_MAX_CONCURRENCY, BENCH_DEFAULT_BATCH,
		BENCH_DEFAULT_PAYLOAD, IOCX_MAX_PAYLOAD, BENCH_MAX_ARMED);
	/* Two strings: C11 promises no more than 4095 characters each. */
	fprintf(f,
"request/response (iocx phases)\n"
"  --payload-file PATH the first payload is the bytes of PATH\n"
"  --payload-hex HEX   ... or these bytes (\"50494e470d0a\")\n"
"  --expect-bytes N    after the connect, read a reply of N bytes\n"
"  --expect-until STR  ... or a reply up to and with STR (escapes \\r\n"
"                      \\n \\t \\\\ \\xHH); reports time to first byte\n"
"                      and to the full reply from the connect's start;\n"
"                      a reply cut short counts as an error\n"
"  --reply-timeout T   connect and reply must be done within T of the\n"
"                      connect's start, or it is closed and counted\n"
"                      IOCX_E_TIMEDOUT (default 10s)\n"
"target\n"
"  --target ADDR       IPv4:PORT, [IPv6]:PORT or NAME:PORT (default: a\n"
"                      built-in sink on 127.0.0.1); repeat it (up to\n"
"                      %u; all numeric of one family, or all names) and\n"
"                      connects take the targets in turn; a NAME is\n"
"                      resolved by the engine for every connect (no\n"
"                      --baseline, --scale or --armed with names);\n"
"                      NAME:0 is the built-in sink's port on 127.0.0.1\n"
"                      (for a name that resolves to it)\n"
"  --resolver ADDR     with NAME targets: the DNS server (IPv4:PORT or\n"
"                      [IPv6]:PORT) the engine asks, instead of the\n"
"                      system's\n"
"  --sink MODE         built-in sink: read (read the first payload, then\n"
"                      close; default), close (accept and close) or\n"
"                      echo (read the first payload, send it back,\n"
"                      close)\n"
"  --sink-threads N    built-in sink acceptor threads (default: as many\n"
"                      as workers, at least %u)\n"
"baseline\n"
"  --baseline          also run the same workload through a raw loop\n"
"                      written by hand for the engine's backend (IOCP,\n"
"                      io_uring or epoll), alternating iocx and raw\n"
"                      phases, and print iocx / raw connects/s\n"
"  --rounds N          rounds of each phase (default 1, or 2 with\n"
"                      --baseline)\n"
"scale (instead of the phases)\n"
"  --scale N           open N connections through one engine and hold them\n"
"                      all; report each step (1000, 10000, ... open, then\n"
"                      N): connects/s, latency, engine memory and RSS per\n"
"                      connection (max %u; --concurrency, --workers,\n"
"                      --payload, --close, --timeout apply)\n"
"  --idle T            with --scale: an idle watchdog of T on each\n"
"  --sources N         with --scale: 127.0.0.1.. source addresses\n"
"                      (default: one per %u connections, for a loopback\n"
"                      target)\n"
"start\n"
"  --start-at TIME     wait until this wall-clock time, RFC 3339 UTC\n"
"                      (2026-12-06T11:00:00Z) or unix seconds, then\n"
"                      start: N processes begin together (a time\n"
"                      already past starts at once)\n"
"interruption\n"
"  --interrupt-grace T after the first Ctrl-C, how long connects in\n"
"                      flight get before the report (default 1 s)\n"
"output (default: a table on stdout; a banner and a progress line each\n"
"second on stderr)\n"
"  --json[=PATH]       one JSON object instead of the table\n"
"  --csv[=PATH]        one CSV row per second per phase\n"
"  --hdr-log PATH      HdrHistogram interval log of the measured connect\n"
"                      latencies, one line per second per phase\n"
"                      (tagged iocx.1, raw.1, ...; values in ns)\n"
"  --svg PATH          a picture: latency percentile spectrum of every\n"
"                      phase, and connects/s over time\n"
"  --quiet             no banner and no progress lines on stderr\n"
"  -h, --help          this text\n"
"  --version           the version of iocx-bench and its library\n"
"\n"
"Exit status: 0 all connects succeeded; 1 a connect failed or timed out,\n"
"or the sink's counts disagree; 2 bad usage; 130 (SIGINT) or 143\n"
"(SIGTERM): interrupted, the report covers what ran.  A first Ctrl-C\n"
"stops new connects and reports; a second one quits at once.\n",
		BENCH_MAX_TARGETS, BENCH_MIN_SINK_THREADS, BENCH_MAX_SCALE,
		BENCH_SCALE_PER_SOURCE);
}
