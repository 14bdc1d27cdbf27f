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
	bool rounds_set;
};

static bool fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* Decimal unsigned integer in [min, max]; no sign, no trailing junk. */
static bool parse_uint(const char *s, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
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

	if (!parse_uint(v, 0, UINT64_MAX, &n))
		return fail(p, "--payload %s: want a byte count", v);
	if (n > IOCX_MAX_PAYLOAD)
		return fail(p, "--payload %s: larger than IOCX_MAX_PAYLOAD "
			    "(%u bytes)", v, IOCX_MAX_PAYLOAD);
	p->o->payload = (size_t)n;
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

static bool opt_armed(struct parse *p, const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 0, BENCH_MAX_ARMED, &n))
		return fail(p, "--armed %s: want timers to hold armed, 0..%u",
			    v, BENCH_MAX_ARMED);
	p->o->armed = (unsigned)n;
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
	p->o->target_len = bench_addr_parse(v, &p->o->target);
	if (p->o->target_len == 0)
		return fail(p, "--target %s: want IPv4:PORT or [IPv6]:PORT, "
			    "numeric, port 1..65535", v);
	if (is_unspecified(&p->o->target))
		return fail(p, "--target %s: the unspecified address is not a "
			    "host to connect to", v);
	p->o->have_target = true;
	return true;
}

static bool opt_sink(struct parse *p, const char *v)
{
	p->sink_set = true;
	if (!strcmp(v, "read"))
		p->o->sink_mode = BENCH_SINK_READ;
	else if (!strcmp(v, "close"))
		p->o->sink_mode = BENCH_SINK_CLOSE;
	else
		return fail(p, "--sink %s: want read (read the first payload, "
			    "then close) or close (accept and close)", v);
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
	{ "warmup", opt_warmup },
	{ "timeout", opt_timeout },
	{ "armed", opt_armed },
	{ "target", opt_target },
	{ "sink", opt_sink },
	{ "sink-threads", opt_sink_threads },
	{ "rounds", opt_rounds },
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
	if (o->warmup_ms && o->duration_ms && o->warmup_ms >= o->duration_ms)
		return fail(p, "--warmup leaves nothing to measure of "
			    "--duration");
	if (o->have_target && p->sink_set)
		return fail(p, "--sink and --sink-threads describe the built-in"
			    " sink; they make no sense with --target");
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

		if (strncmp(arg, "--", 2) || arg[2] == '\0') {
			fail(&p, "unexpected argument \"%s\" (options start "
			     "with --; see --help)", arg);
			return BENCH_PARSE_USAGE;
		}
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
#define IS(name) (nlen == strlen(name) && !strncmp(arg, name, nlen))
		if (IS("help")) {
			return BENCH_PARSE_HELP;
		} else if (IS("json") || IS("csv")) {
			if (!output_option(&p, IS("json") ? "json" : "csv", eq,
					   IS("json") ? &o->json : &o->csv))
				return BENCH_PARSE_USAGE;
			continue;
		} else if (IS("fastopen") || IS("baseline") ||
			   IS("batch-closes")) {
			if (eq) {
				fail(&p, "--%.*s takes no value", (int)nlen,
				     arg);
				return BENCH_PARSE_USAGE;
			}
			if (IS("fastopen"))
				o->fastopen = true;
			else if (IS("batch-closes"))
				o->batch_closes = true;
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
"Opens TCP connections as fast as it can (or at --rate) and reports\n"
"connects/s, latency percentiles, errors and CPU per connect.\n"
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
"  --rate N            start N connects/s on a smooth schedule\n"
"                      (default: as fast as --concurrency allows)\n"
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
"target\n"
"  --target ADDR       IPv4:PORT or [IPv6]:PORT (default: a built-in\n"
"                      sink on 127.0.0.1)\n"
"  --sink MODE         built-in sink: read (read the first payload, then\n"
"                      close; default) or close (accept and close)\n"
"  --sink-threads N    built-in sink acceptor threads (default: as many\n"
"                      as workers, at least %u)\n"
"baseline\n"
"  --baseline          also run the same workload through a minimal raw\n"
"                      loop, alternating iocx and raw phases, and print\n"
"                      iocx / raw connects/s (best round of each)\n"
"  --rounds N          rounds of each phase (default 1, or 2 with\n"
"                      --baseline)\n"
"output (default: a table on stdout, progress each second on a terminal)\n"
"  --json[=PATH]       one JSON object instead of the table\n"
"  --csv[=PATH]        one CSV row per second per phase\n"
"  --help              this text\n"
"\n"
"Exit status: 0 all connects succeeded; 1 a connect failed or timed out,\n"
"or the sink's counts disagree; 2 bad usage.\n",
		BENCH_DEFAULT_CONNECTS, BENCH_DEFAULT_CONCURRENCY,
		BENCH_MAX_CONCURRENCY, BENCH_DEFAULT_BATCH,
		BENCH_DEFAULT_PAYLOAD, IOCX_MAX_PAYLOAD, BENCH_MAX_ARMED,
		BENCH_MIN_SINK_THREADS);
}
