/*
 * iocx-bench output formats (see report.h).  Latencies are kept in
 * nanoseconds and shown in milliseconds (table) or microseconds (JSON,
 * CSV).
 */
#include <stdlib.h>
#include <string.h>

#include "hdrlog.h"
#include "report.h"

/* One side (iocx or raw) over all its rounds. */
struct side {
	const char *name;
	unsigned rounds;
	double best_cps;
	double median_cps;
	double seconds;
	uint64_t cpu_ns;
	bool stalled;
	bool failed;
	bool engine_paced;
	struct phase_counts measured;
	struct phase_counts total;
	struct iocx_hist hist;
	struct iocx_hist release;	/* the same connects, to release */
	uint64_t cap_hits;		/* --rate: over all its phases */
	bool have_reply;		/* --expect-*: the two below */
	struct iocx_hist ttfb;
	struct iocx_hist reply;
};

static const double shown_percentiles[] = { 50, 90, 99, 99.9 };
static const char *const json_percentiles[] = { "p50", "p90", "p99",
						"p999" };
#define N_PCT (sizeof(shown_percentiles) / sizeof(*shown_percentiles))

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static void add_counts(struct phase_counts *sum, const struct phase_counts *c)
{
	sum->attempts += c->attempts;
	sum->ok += c->ok;
	sum->failed += c->failed;
	sum->timeouts += c->timeouts;
	sum->reply_timeouts += c->reply_timeouts;
	sum->payload_bytes += c->payload_bytes;
	sum->fastopen += c->fastopen;
	for (int i = 0; i < IOCX_ERROR_COUNT; i++)
		sum->errors[i] += c->errors[i];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Summarise the rounds named name; false when there are none. */
static bool side_of(const struct run_report *r, const char *name,
		    struct side *s)
{
	double cps[2 * BENCH_MAX_ROUNDS];
	unsigned mid;

	memset(s, 0, sizeof(*s));
	iocx__hist_init(&s->hist);
	iocx__hist_init(&s->release);
	iocx__hist_init(&s->ttfb);
	iocx__hist_init(&s->reply);
	s->name = name;
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];

		if (strcmp(p->name, name))
			continue;
		cps[s->rounds++] = p->connects_per_sec;
		if (p->connects_per_sec > s->best_cps)
			s->best_cps = p->connects_per_sec;
		s->seconds += p->seconds;
		s->cpu_ns += p->cpu_ns;
		s->stalled |= p->stalled;
		s->failed |= p->failed;
		s->engine_paced |= p->engine_paced;
		add_counts(&s->measured, &p->measured);
		add_counts(&s->total, &p->total);
		iocx__hist_merge(&s->hist, p->hist);
		iocx__hist_merge(&s->release, p->hist_release);
		s->cap_hits += p->cap_hits;
		if (p->hist_reply) {
			s->have_reply = true;
			iocx__hist_merge(&s->ttfb, p->hist_ttfb);
			iocx__hist_merge(&s->reply, p->hist_reply);
		}
	}
	if (s->rounds == 0)
		return false;
	qsort(cps, s->rounds, sizeof(*cps), cmp_double);
	mid = s->rounds / 2;
	s->median_cps = s->rounds % 2 ? cps[mid]
				      : (cps[mid - 1] + cps[mid]) / 2;
	return true;
}

/* What a paired ratio compares: connects/s, or a latency percentile. */
static double metric_cps(const struct phase_result *p)
{
	return p->connects_per_sec;
}

static double metric_p50(const struct phase_result *p)
{
	return (double)iocx__hist_percentile(p->hist, 50);
}

static double metric_p90(const struct phase_result *p)
{
	return (double)iocx__hist_percentile(p->hist, 90);
}

static double metric_p99(const struct phase_result *p)
{
	return (double)iocx__hist_percentile(p->hist, 99);
}

static double metric_release_p50(const struct phase_result *p)
{
	return (double)iocx__hist_percentile(p->hist_release, 50);
}

/* The latency ratios the report pairs, in the order it shows them. */
static const struct {
	const char *name;	/* JSON key */
	double (*metric)(const struct phase_result *p);
} latency_ratios[] = {
	{ "p50", metric_p50 },
	{ "p90", metric_p90 },
	{ "p99", metric_p99 },
	{ "release_p50", metric_release_p50 },
};
#define N_LATENCY_RATIOS (sizeof(latency_ratios) / sizeof(*latency_ratios))

static double median_of(const double *v, unsigned n)
{
	double sorted[BENCH_MAX_ROUNDS];
	unsigned mid = n / 2;

	if (n == 0)
		return 0;
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/*
 * iocx round k against raw round k, which ran right after it: each
 * ratio is taken under nearly the same machine conditions.  Fills
 * ratios (BENCH_MAX_ROUNDS long) with iocx's metric over raw's in round
 * order, and pairs (when not NULL) with the two phases' indexes, and
 * returns how many pairs there were; *median gets their median (0
 * without pairs).
 */
static unsigned paired_metric(const struct run_report *r,
			      double (*metric)(const struct phase_result *),
			      double *ratios, unsigned (*pairs)[2],
			      double *median)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *a = &r->results[i];

		if (strcmp(a->name, "iocx"))
			continue;
		for (unsigned j = 0; j < r->nresults; j++) {
			const struct phase_result *b = &r->results[j];

			if (strcmp(b->name, "raw") || b->round != a->round ||
			    metric(b) <= 0 || n == BENCH_MAX_ROUNDS)
				continue;
			if (pairs) {
				pairs[n][0] = i;
				pairs[n][1] = j;
			}
			ratios[n++] = metric(a) / metric(b);
		}
	}
	*median = median_of(ratios, n);
	return n;
}

static unsigned paired_ratios(const struct run_report *r, double *ratios,
			      double *median)
{
	return paired_metric(r, metric_cps, ratios, NULL, median);
}

/* The tolerance of the open-loop check on a phase's start rate. */
#define OPEN_LOOP_RATE_TOLERANCE 0.02

/* --rate: p started at the rate asked (within the tolerance) and its
 * schedule never waited for a slot. */
static bool open_loop_phase(const struct bench_options *o,
			    const struct phase_result *p)
{
	double q = o->rate ? p->starts_per_sec / (double)o->rate : 0;

	return o->rate && p->cap_hits == 0 &&
	       q >= 1 - OPEN_LOOP_RATE_TOLERANCE &&
	       q <= 1 + OPEN_LOOP_RATE_TOLERANCE;
}

static double cpu_us_per_connect(uint64_t cpu_ns, uint64_t attempts)
{
	return attempts ? us(cpu_ns) / (double)attempts : 0;
}

/* ---- per interval ---------------------------------------------------- */

static void describe_workload(FILE *f, const struct bench_options *o);
static void describe_target(FILE *f, const struct run_report *r);

/* See report.h. */
void report_banner(FILE *f, const struct run_report *r)
{
	const struct bench_options *o = r->opt;

	fprintf(f, "iocx-bench %s: ", IOCX_BENCH_VERSION);
	describe_target(f, r);
	fprintf(f, "\n  %u worker%s, concurrency %u, payload %zu B, "
		   "close %s%s; ", r->workers, r->workers == 1 ? "" : "s",
		o->concurrency, o->payload,
		o->close_mode == BENCH_CLOSE_ABORT ? "abort" : "graceful",
		o->fastopen ? ", fastopen" : "");
	describe_workload(f, o);
	fprintf(f, "%s\n", o->baseline ? ", with the raw baseline" : "");
	fflush(f);
}

/* See report.h. */
void report_progress(FILE *f, const struct phase_interval *iv)
{
	fprintf(f, "%-4s #%-2u %6.1f s %9.0f connects/s  p50 %8.3f ms  "
		   "p99 %8.3f ms  errors %llu  in flight %llu%s\n",
		iv->name, iv->round, iv->t_s, iv->connects_per_sec,
		ms(iv->p50_ns), ms(iv->p99_ns),
		(unsigned long long)iv->errors_total,
		(unsigned long long)iv->in_flight,
		iv->warmup ? "  (warm-up)" : "");
	fflush(f);
}

/* See report.h. */
void report_csv_header(FILE *f)
{
	fprintf(f, "phase,round,t_s,interval_s,connects,connects_per_sec,"
		   "connects_total,errors_total,in_flight,warmup,p50_us,"
		   "p99_us,resolved,resolve_p50_us,resolve_p99_us\n");
	fflush(f);
}

/* See report.h. */
void report_csv_row(FILE *f, const struct phase_interval *iv)
{
	fprintf(f, "%s,%u,%.3f,%.3f,%llu,%.1f,%llu,%llu,%llu,%d,%.1f,%.1f,",
		iv->name, iv->round, iv->t_s, iv->length_s,
		(unsigned long long)iv->connects, iv->connects_per_sec,
		(unsigned long long)iv->connects_total,
		(unsigned long long)iv->errors_total,
		(unsigned long long)iv->in_flight, iv->warmup ? 1 : 0,
		us(iv->p50_ns), us(iv->p99_ns));
	/* Resolution: empty fields for numeric targets. */
	if (iv->resolution)
		fprintf(f, "%llu,%.1f,%.1f\n",
			(unsigned long long)iv->resolved,
			us(iv->resolve_p50_ns), us(iv->resolve_p99_ns));
	else
		fprintf(f, ",,\n");
	fflush(f);
}

/* ---- the table ------------------------------------------------------- */

static void table_row(FILE *f, const char *label, double cps,
		      const struct phase_counts *c, const struct iocx_hist *h,
		      uint64_t cpu_ns)
{
	fprintf(f, "%-10s %10.1f %9llu %7llu", label, cps,
		(unsigned long long)c->ok, (unsigned long long)c->failed);
	report_table_latency(f, h);
	fprintf(f, " %8.1f\n", cpu_us_per_connect(cpu_ns, c->attempts));
}

/*
 * Targets by name: each phase's resolution times, which its connect
 * latencies above leave out (they start at the first attempt).
 */
static void table_resolution(FILE *f, const struct run_report *r)
{
	fprintf(f, "resolution (apart from the connect latencies above; "
		   "warm-up included)%s%s\n",
		r->opt->resolver ? ", DNS server " : "",
		r->opt->resolver ? r->opt->resolver : "");
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];

		fprintf(f, "%-4s #%-5u %9llu resolved  p50 %8.3f ms  "
			   "p99 %8.3f ms  max %8.3f ms\n",
			p->name, p->round,
			(unsigned long long)p->resolve.count,
			ms(p->resolve.p50), ms(p->resolve.p99),
			ms(p->resolve.max));
	}
	fprintf(f, "\n");
}

/* A phase's "resolve_us": the engine's resolution histogram, or null
 * for numeric targets. */
static void json_resolution(FILE *f, const struct run_report *r,
			    const struct phase_result *p)
{
	const struct iocx_histogram *h = &p->resolve;

	if (!r->opt->by_name) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\"count\": %llu, \"min\": %.1f, \"p50\": %.1f, "
		   "\"p99\": %.1f, \"max\": %.1f, \"mean\": %.1f}",
		(unsigned long long)h->count, us(h->min), us(h->p50),
		us(h->p99), us(h->max), h->mean / 1e3);
}

static void describe_workload(FILE *f, const struct bench_options *o)
{
	if (o->duration_ms)
		fprintf(f, "%.3f s per phase", o->duration_ms / 1e3);
	else
		fprintf(f, "%llu connects per phase",
			(unsigned long long)o->connects);
	if (o->warmup_connects)
		fprintf(f, ", warm-up %llu connects",
			(unsigned long long)o->warmup_connects);
	else if (o->warmup_ms)
		fprintf(f, ", warm-up %.3f s", o->warmup_ms / 1e3);
	if (o->rate)
		fprintf(f, ", paced at %llu/s", (unsigned long long)o->rate);
	if (o->rate && o->burst > 1)
		fprintf(f, " (iocx: burst %u)", o->burst);
	if (o->timeout_ms)
		fprintf(f, ", deadline %.3f s", o->timeout_ms / 1e3);
	if (o->armed)
		fprintf(f, ", armed=%u (timers held armed in iocx phases)",
			o->armed);
}

/* Indexed by enum bench_sink_mode. */
static const struct {
	const char *name, *what;
} sink_modes[] = {
	[BENCH_SINK_READ] = { "read", "reads the payload" },
	[BENCH_SINK_CLOSE] = { "close", "accept+close" },
	[BENCH_SINK_ECHO] = { "echo", "sends the payload back" },
	[BENCH_SINK_HOLD] = { "hold", "reads the payload and holds" },
};

static void describe_target(FILE *f, const struct run_report *r)
{
	fprintf(f, "target %s", r->target);
	if (r->have_sink)
		fprintf(f, " (built-in sink, %u threads, %s)", r->sink_threads,
			sink_modes[r->opt->sink_mode].what);
}

static void print_errors(FILE *f, const struct side *s)
{
	bool any = false;

	for (int i = 1; i < IOCX_ERROR_COUNT; i++) {
		if (!s->total.errors[i])
			continue;
		fprintf(f, "%s%s %llu", any ? ", " : "", iocx_error_name(-i),
			(unsigned long long)s->total.errors[i]);
		any = true;
	}
	if (!any)
		fprintf(f, "none");
}

static void print_latency(FILE *f, const char *what, const struct iocx_hist *h)
{
	fprintf(f, "      %s ms", what);
	for (size_t i = 0; i < N_PCT; i++)
		fprintf(f, "  %s %.3f", json_percentiles[i],
			ms(iocx__hist_percentile(h, shown_percentiles[i])));
	fprintf(f, "  max %.3f\n", ms(iocx__hist_max(h)));
}

static void print_side(FILE *f, const struct side *s, uint64_t rate)
{
	fprintf(f, "%-4s  %.0f connects/s", s->name, s->best_cps);
	if (s->rounds > 1)
		fprintf(f, " (best of %u rounds; median %.0f)", s->rounds,
			s->median_cps);
	fprintf(f, "\n      %llu connects, %llu failed, of %llu attempts "
		   "measured in %.3f s\n",
		(unsigned long long)s->measured.ok,
		(unsigned long long)s->measured.failed,
		(unsigned long long)s->measured.attempts, s->seconds);
	if (rate)
		fprintf(f, "      rate %.0f/s (median) of %llu/s asked "
			   "(%.2f %%), paced by %s\n", s->median_cps,
			(unsigned long long)rate,
			100.0 * s->median_cps / (double)rate,
			s->engine_paced ? "the engine" : "the bench's schedule");
	if (rate)
		fprintf(f, "      cap hits %llu (starts due while all "
			   "--concurrency slots were busy; 0 = open loop)\n",
			(unsigned long long)s->cap_hits);
	print_latency(f, "latency", &s->hist);
	print_latency(f, "to release", &s->release);
	if (s->have_reply) {
		print_latency(f, "first byte", &s->ttfb);
		print_latency(f, "full reply", &s->reply);
		fprintf(f, "      reply timeouts %llu (--reply-timeout)\n",
			(unsigned long long)s->measured.reply_timeouts);
	}
	fprintf(f, "      cpu %.1f us per connect (client only)\n",
		cpu_us_per_connect(s->cpu_ns, s->measured.attempts));
	fprintf(f, "      errors (all attempts, warm-up included): ");
	print_errors(f, s);
	fprintf(f, "\n");
	if (s->total.fastopen)
		fprintf(f, "      TCP Fast Open enabled on %llu connects\n",
			(unsigned long long)s->total.fastopen);
	if (s->stalled)
		fprintf(f, "      STALLED: gave up waiting for completions\n");
	if (s->failed)
		fprintf(f, "      FAILED: the driver's own check, see "
			   "stderr\n");
}

/*
 * The median of ratios[0..n) over the pairs whose two phases were both
 * an open loop, into *median (0 when none was); returns how many were.
 */
static unsigned open_pairs(const struct run_report *r, const double *ratios,
			   unsigned (*pairs)[2], unsigned n, double *median)
{
	double v[BENCH_MAX_ROUNDS];
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		if (open_loop_phase(r->opt, &r->results[pairs[i][0]]) &&
		    open_loop_phase(r->opt, &r->results[pairs[i][1]]))
			v[m++] = ratios[i];
	}
	*median = median_of(v, m);
	return m;
}

/*
 * Latency iocx / raw round by round (each round's iocx phase against the
 * raw phase right after it), with their medians; under --rate also each
 * phase's start rate and cap hits.
 */
static void table_paired_latency(FILE *f, const struct run_report *r)
{
	double ratios[N_LATENCY_RATIOS][BENCH_MAX_ROUNDS];
	double med[N_LATENCY_RATIOS];
	unsigned pairs[BENCH_MAX_ROUNDS][2], n = 0;

	for (size_t k = 0; k < N_LATENCY_RATIOS; k++) {
		unsigned m = paired_metric(r, latency_ratios[k].metric,
					   ratios[k], k ? NULL : pairs,
					   &med[k]);

		/* A ratio is left out where raw's percentile is 0. */
		if (k == 0)
			n = m;
		else if (m != n)
			return;
	}
	if (n == 0)
		return;
	fprintf(f, "latency iocx / raw, paired rounds (latency: start to "
		   "outcome; release: start to slot released)\n");
	fprintf(f, "      %-7s %7s %7s %7s %11s", "round", "p50", "p90",
		"p99", "release p50");
	if (r->opt->rate)
		fprintf(f, " %9s %9s %9s", "iocx st/s", "raw st/s",
			"cap hits");
	fprintf(f, "\n");
	for (unsigned i = 0; i < n; i++) {
		const struct phase_result *a = &r->results[pairs[i][0]];
		const struct phase_result *b = &r->results[pairs[i][1]];

		/* '*': this pair was no open loop. */
		fprintf(f, "      #%-5u%c", a->round,
			r->opt->rate && !(open_loop_phase(r->opt, a) &&
					  open_loop_phase(r->opt, b))
				? '*'
				: ' ');
		for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
			fprintf(f, k + 1 < N_LATENCY_RATIOS ? " %7.3f"
							    : " %11.3f",
				ratios[k][i]);
		if (r->opt->rate)
			fprintf(f, " %9.0f %9.0f %4llu/%-4llu",
				a->starts_per_sec, b->starts_per_sec,
				(unsigned long long)a->cap_hits,
				(unsigned long long)b->cap_hits);
		fprintf(f, "\n");
	}
	fprintf(f, "      %-7s", "median");
	for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
		fprintf(f, k + 1 < N_LATENCY_RATIOS ? " %7.3f" : " %11.3f",
			med[k]);
	fprintf(f, "\n");
	if (!r->opt->rate)
		return;
	fprintf(f, "      %-7s", "open");
	for (size_t k = 0; k < N_LATENCY_RATIOS; k++) {
		unsigned m = open_pairs(r, ratios[k], pairs, n, &med[k]);

		fprintf(f, k + 1 < N_LATENCY_RATIOS ? " %7.3f" : " %11.3f",
			med[k]);
		if (k + 1 == N_LATENCY_RATIOS)
			fprintf(f, "  (median of the %u of %u rounds that "
				   "were open loop on both sides; * marks the "
				   "others)\n",
				m, n);
	}
}

/* --rate: was every phase an open loop? */
static void table_open_loop(FILE *f, const struct run_report *r)
{
	unsigned capped = 0, off_rate = 0;

	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];

		if (p->cap_hits)
			capped++;
		else if (!open_loop_phase(r->opt, p))
			off_rate++;
	}
	if (capped == 0 && off_rate == 0)
		fprintf(f, "open loop: yes (every phase started within "
			   "%.0f %% of %llu/s and never waited for a slot)\n",
			100 * OPEN_LOOP_RATE_TOLERANCE,
			(unsigned long long)r->opt->rate);
	else
		fprintf(f, "open loop: NO (%u phase%s hit the concurrency "
			   "cap, %u more started off the rate by over "
			   "%.0f %%): raise --concurrency or lower --rate\n",
			capped, capped == 1 ? "" : "s", off_rate,
			100 * OPEN_LOOP_RATE_TOLERANCE);
}

/* See report.h. */
void report_table(FILE *f, const struct run_report *r)
{
	const struct bench_options *o = r->opt;
	struct side *iocx = malloc(sizeof(*iocx)), *raw = malloc(sizeof(*raw));
	double ratios[BENCH_MAX_ROUNDS], paired;
	unsigned npaired, above = 0;
	bool have_raw;

	if (!iocx || !raw) {
		free(iocx);
		free(raw);
		return;
	}
	side_of(r, "iocx", iocx);
	have_raw = side_of(r, "raw", raw);
	npaired = paired_ratios(r, ratios, &paired);
	for (unsigned i = 0; i < npaired; i++)
		above += ratios[i] >= 1;
	fprintf(f, "iocx-bench: backend %s, %u worker%s, concurrency %u, "
		   "payload %zu B, close %s%s\n",
		r->nresults ? r->results[0].backend : "?", r->workers,
		r->workers == 1 ? "" : "s", o->concurrency, o->payload,
		o->close_mode == BENCH_CLOSE_ABORT ? "abort" : "graceful",
		o->fastopen ? ", fastopen" : "");
	if (r->nresults > 1 && o->baseline)
		fprintf(f, "baseline %s\n", r->results[1].backend);
	describe_target(f, r);
	fprintf(f, "; ");
	describe_workload(f, o);
	fprintf(f, "\n\n%-10s %10s %9s %7s %9s %9s %9s %9s %9s %8s\n", "phase",
		"connect/s", "connects", "errors", "p50 ms", "p90 ms",
		"p99 ms", "p99.9 ms", "max ms", "cpu us");
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];
		char label[32];

		snprintf(label, sizeof(label), "%s #%u", p->name, p->round);
		table_row(f, label, p->connects_per_sec, &p->measured, p->hist,
			  p->cpu_ns);
	}
	fprintf(f, "\n");
	if (o->by_name)
		table_resolution(f, r);
	print_side(f, iocx, o->rate);
	if (have_raw) {
		print_side(f, raw, o->rate);
		fprintf(f, "ratio iocx / raw: %.3f (best round of each; "
			   "medians give %.3f)\n",
			raw->best_cps > 0 ? iocx->best_cps / raw->best_cps : 0,
			raw->median_cps > 0
				? iocx->median_cps / raw->median_cps
				: 0);
		if (npaired > 0)
			fprintf(f, "      round by round: median %.3f, %u of "
				   "%u rounds at or above 1\n",
				paired, above, npaired);
		table_paired_latency(f, r);
	}
	if (o->rate)
		table_open_loop(f, r);
	if (r->interrupted)
		fprintf(f, "INTERRUPTED: the report covers what ran until "
			   "then\n");
	if (r->have_sink) {
		fprintf(f, "sink  %llu accepted, %llu payload bytes read: ",
			(unsigned long long)r->sink_accepted,
			(unsigned long long)r->sink_bytes);
		fprintf(f, "%s\n",
			!r->sink_checked ? "not compared (connects failed)"
			: r->sink_ok	 ? "matches the client's counts"
					 : "DIFFERS from the client's counts");
	}
	free(iocx);
	free(raw);
}

/* ---- JSON ------------------------------------------------------------ */

/* See report.h. */
void report_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

/* A JSON string of arbitrary bytes (\\u00XX for the unprintable). */
static void json_bytes(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_errors(FILE *f, const struct phase_counts *c)
{
	bool first = true;

	fprintf(f, "{");
	for (int i = 1; i < IOCX_ERROR_COUNT; i++) {
		if (!c->errors[i])
			continue;
		fprintf(f, "%s", first ? "" : ", ");
		report_json_str(f, iocx_error_name(-i));
		fprintf(f, ": %llu", (unsigned long long)c->errors[i]);
		first = false;
	}
	fprintf(f, "}");
}

/* See report.h. */
void report_json_latency(FILE *f, const struct iocx_hist *h, bool mean)
{
	if (!h) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\"count\": %llu, ",
		(unsigned long long)iocx__hist_count(h));
	for (size_t i = 0; i < N_PCT; i++)
		fprintf(f, "\"%s\": %.1f, ", json_percentiles[i],
			us(iocx__hist_percentile(h, shown_percentiles[i])));
	fprintf(f, "\"max\": %.1f, \"min\": %.1f",
		us(iocx__hist_max(h)), us(iocx__hist_min(h)));
	if (mean)
		fprintf(f, ", \"mean\": %.1f", iocx__hist_mean(h) / 1e3);
	fprintf(f, "}");
}

static void json_latency(FILE *f, const struct iocx_hist *h)
{
	report_json_latency(f, h, true);
}

/* See report.h. */
void report_table_latency(FILE *f, const struct iocx_hist *h)
{
	for (size_t i = 0; i < N_PCT; i++)
		fprintf(f, " %9.3f",
			ms(iocx__hist_percentile(h, shown_percentiles[i])));
	fprintf(f, " %9.3f", ms(iocx__hist_max(h)));
}

static void json_counts(FILE *f, const struct phase_counts *c)
{
	fprintf(f, "\"connects\": %llu, \"attempts\": %llu, "
		   "\"timeouts\": %llu, \"reply_timeouts\": %llu, "
		   "\"payload_bytes\": %llu, \"fastopen\": %llu, "
		   "\"errors\": ",
		(unsigned long long)c->ok, (unsigned long long)c->attempts,
		(unsigned long long)c->timeouts,
		(unsigned long long)c->reply_timeouts,
		(unsigned long long)c->payload_bytes,
		(unsigned long long)c->fastopen);
	json_errors(f, c);
}

/* The fields a side shares with the top level of the object. */
static void json_side_fields(FILE *f, const struct side *s)
{
	fprintf(f, "\"connects_per_sec\": %.1f, "
		   "\"connects_per_sec_median\": %.1f, \"rounds\": %u, ",
		s->best_cps, s->median_cps, s->rounds);
	json_counts(f, &s->measured);
	fprintf(f, ", \"latency_us\": ");
	json_latency(f, &s->hist);
	fprintf(f, ", \"release_us\": ");
	json_latency(f, &s->release);
	fprintf(f, ", \"cap_hits\": %llu", (unsigned long long)s->cap_hits);
	fprintf(f, ", \"ttfb_us\": ");
	json_latency(f, s->have_reply ? &s->ttfb : NULL);
	fprintf(f, ", \"reply_us\": ");
	json_latency(f, s->have_reply ? &s->reply : NULL);
	fprintf(f, ", \"cpu_us_per_connect\": %.2f, \"elapsed_s\": %.3f, "
		   "\"stalled\": %s, \"totals\": {",
		cpu_us_per_connect(s->cpu_ns, s->measured.attempts),
		s->seconds, s->stalled ? "true" : "false");
	json_counts(f, &s->total);
	fprintf(f, "}");
}

static void json_settings(FILE *f, const struct run_report *r)
{
	const struct bench_options *o = r->opt;

	fprintf(f, "{\"backend\": ");
	report_json_str(f, r->nresults ? r->results[0].backend : "?");
	fprintf(f, ", \"raw_backend\": ");
	if (r->nresults > 1 && r->opt->baseline)
		report_json_str(f, r->results[1].backend);
	else
		fprintf(f, "null");
	fprintf(f, ", \"target\": ");
	report_json_str(f, r->target);
	fprintf(f, ", \"sink\": ");
	if (r->have_sink)
		report_json_str(f, sink_modes[o->sink_mode].name);
	else
		fprintf(f, "null");
	fprintf(f, ", \"sink_threads\": %u, "
		   "\"connects\": %llu, \"duration_s\": %.3f, "
		   "\"concurrency\": %u, \"workers\": %u, \"batch\": %u, "
		   "\"payload\": %zu, \"fastopen\": %s, \"close\": \"%s\", "
		   "\"rate\": %llu, \"burst\": %u, \"warmup_connects\": %llu, "
		   "\"warmup_s\": %.3f, \"timeout_s\": %.3f, "
		   "\"baseline\": %s, \"rounds\": %u, \"armed\": %u, "
		   "\"expect_bytes\": %llu, \"expect_until\": ",
		r->sink_threads, (unsigned long long)o->connects,
		o->duration_ms / 1e3,
		o->concurrency, r->workers, o->batch, o->payload,
		o->fastopen ? "true" : "false",
		o->close_mode == BENCH_CLOSE_ABORT ? "abort" : "graceful",
		(unsigned long long)o->rate, o->burst,
		(unsigned long long)o->warmup_connects, o->warmup_ms / 1e3,
		o->timeout_ms / 1e3, o->baseline ? "true" : "false",
		o->rounds, o->armed, (unsigned long long)o->expect_bytes);
	if (o->expect_until_len)
		json_bytes(f, o->expect_until, o->expect_until_len);
	else
		fprintf(f, "null");
	fprintf(f, ", \"reply_timeout_s\": %.3f", o->reply_timeout_ms / 1e3);
	fprintf(f, ", \"resolver\": ");
	if (o->resolver)
		report_json_str(f, o->resolver);
	else
		fprintf(f, "null");
	if (o->start_at)
		fprintf(f, ", \"start_at\": %.3f}", o->start_at);
	else
		fprintf(f, ", \"start_at\": null}");
}

/*
 * What merge needs of phase p: its measured latencies as HdrHistogram's
 * compressed V2 encoding in base64 (as in an --hdr-log line; null when
 * out of memory), and its intervals [start_s, length_s, connects].
 */
static void json_mergeable(FILE *f, const struct run_report *r,
			   const struct phase_result *p)
{
	char *hdr = hdrlog_encode_base64(p->hist);
	bool first = true;

	fprintf(f, ", \"latency_hdr\": ");
	if (hdr)
		report_json_str(f, hdr);
	else
		fprintf(f, "null");
	free(hdr);
	fprintf(f, ", \"intervals\": [");
	for (size_t i = 0; i < r->nintervals; i++) {
		const struct report_interval *iv = &r->intervals[i];

		if (iv->round != p->round || strcmp(iv->name, p->name))
			continue;
		fprintf(f, "%s[%.3f, %.3f, %llu]", first ? "" : ", ",
			iv->start_s, iv->length_s,
			(unsigned long long)iv->connects);
		first = false;
	}
	fprintf(f, "]");
}

static void json_phases(FILE *f, const struct run_report *r)
{
	fprintf(f, "[");
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];

		fprintf(f, "%s\n    {\"phase\": ", i ? "," : "");
		report_json_str(f, p->name);
		fprintf(f, ", \"round\": %u, \"connects_per_sec\": %.1f, ",
			p->round, p->connects_per_sec);
		json_counts(f, &p->measured);
		fprintf(f, ", \"latency_us\": ");
		json_latency(f, p->hist);
		fprintf(f, ", \"release_us\": ");
		json_latency(f, p->hist_release);
		fprintf(f, ", \"ttfb_us\": ");
		json_latency(f, p->hist_ttfb);
		fprintf(f, ", \"reply_us\": ");
		json_latency(f, p->hist_reply);
		fprintf(f, ", \"resolve_us\": ");
		json_resolution(f, r, p);
		fprintf(f, ", \"paced_by\": \"%s\", \"rate_achieved\": %.4f",
			!r->opt->rate	  ? "none"
			: p->engine_paced ? "engine"
					  : "schedule",
			r->opt->rate ? p->connects_per_sec /
					       (double)r->opt->rate
				     : 0.0);
		fprintf(f, ", \"starts_per_sec\": %.1f, \"cap_hits\": %llu, "
			   "\"open_loop\": %s",
			p->starts_per_sec, (unsigned long long)p->cap_hits,
			!r->opt->rate		   ? "null"
			: open_loop_phase(r->opt, p) ? "true"
						     : "false");
		fprintf(f, ", \"cpu_us_per_connect\": %.2f, "
			   "\"elapsed_s\": %.3f, \"pacer_resets\": %llu, "
			   "\"stalled\": %s, \"armed\": %u, \"failed\": %s, "
			   "\"interrupted\": %s, \"totals\": {",
			cpu_us_per_connect(p->cpu_ns, p->measured.attempts),
			p->seconds, (unsigned long long)p->pacer_resets,
			p->stalled ? "true" : "false", p->armed,
			p->failed ? "true" : "false",
			p->interrupted ? "true" : "false");
		json_counts(f, &p->total);
		fprintf(f, "}");
		json_mergeable(f, r, p);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]");
}

/*
 * "latency_ratio_paired": the median iocx / raw of each latency ratio
 * over the paired rounds, and "latency_ratio_rounds": each ratio per
 * round (lists in round order; a round whose raw value is 0 is left out
 * of that list), and "latency_ratio_open": the medians over the rounds
 * whose two phases were both an open loop (--rate; else null).
 */
static void json_latency_ratios(FILE *f, const struct run_report *r)
{
	double ratios[N_LATENCY_RATIOS][BENCH_MAX_ROUNDS];
	double med[N_LATENCY_RATIOS];
	unsigned n[N_LATENCY_RATIOS];
	unsigned pairs[BENCH_MAX_ROUNDS][2], open = 0;
	double open_med[N_LATENCY_RATIOS] = { 0 };
	bool aligned = true;

	for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
		n[k] = paired_metric(r, latency_ratios[k].metric, ratios[k],
				     k ? NULL : pairs, &med[k]);
	fprintf(f, ",\n  \"latency_ratio_paired\": {");
	for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
		fprintf(f, "%s\"%s\": %.4f", k ? ", " : "",
			latency_ratios[k].name, med[k]);
	/* The pairs line up only where every ratio has every round. */
	for (size_t k = 1; k < N_LATENCY_RATIOS; k++)
		aligned &= n[k] == n[0];
	fprintf(f, "}, \"latency_ratio_open\": ");
	if (!aligned || !r->opt->rate) {
		fprintf(f, "null");
	} else {
		for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
			open = open_pairs(r, ratios[k], pairs, n[k],
					  &open_med[k]);
		fprintf(f, "{\"rounds\": %u", open);
		for (size_t k = 0; k < N_LATENCY_RATIOS; k++)
			fprintf(f, ", \"%s\": %.4f", latency_ratios[k].name,
				open_med[k]);
		fprintf(f, "}");
	}
	fprintf(f, ", \"latency_ratio_rounds\": {");
	for (size_t k = 0; k < N_LATENCY_RATIOS; k++) {
		fprintf(f, "%s\"%s\": [", k ? ", " : "",
			latency_ratios[k].name);
		for (unsigned i = 0; i < n[k]; i++)
			fprintf(f, "%s%.4f", i ? ", " : "", ratios[k][i]);
		fprintf(f, "]");
	}
	fprintf(f, "}");
}

/* See report.h. */
void report_json(FILE *f, const struct run_report *r)
{
	struct side *iocx = malloc(sizeof(*iocx)), *raw = malloc(sizeof(*raw));
	double ratios[BENCH_MAX_ROUNDS], paired;
	unsigned npaired;
	bool have_raw;

	if (!iocx || !raw) {
		free(iocx);
		free(raw);
		return;
	}
	side_of(r, "iocx", iocx);
	have_raw = side_of(r, "raw", raw);
	npaired = paired_ratios(r, ratios, &paired);
	fprintf(f, "{\n  \"tool\": \"iocx-bench\", \"schema\": 1, "
		   "\"version\": \"%s\", \"interrupted\": %s, "
		   "\"base_time\": %.3f,\n  ",
		IOCX_BENCH_VERSION, r->interrupted ? "true" : "false",
		r->base_time);
	json_side_fields(f, iocx);
	fprintf(f, ",\n  \"settings\": ");
	json_settings(f, r);
	if (have_raw) {
		fprintf(f, ",\n  \"baseline\": {");
		json_side_fields(f, raw);
		fprintf(f, "},\n  \"ratio\": %.4f, \"ratio_median\": %.4f",
			raw->best_cps > 0 ? iocx->best_cps / raw->best_cps : 0,
			raw->median_cps > 0
				? iocx->median_cps / raw->median_cps
				: 0);
		fprintf(f, ", \"ratio_paired\": %.4f, \"ratio_rounds\": [",
			paired);
		for (unsigned i = 0; i < npaired; i++)
			fprintf(f, "%s%.4f", i ? ", " : "", ratios[i]);
		fprintf(f, "]");
		json_latency_ratios(f, r);
	} else {
		fprintf(f, ",\n  \"baseline\": null, \"ratio\": null, "
			   "\"ratio_median\": null, \"ratio_paired\": null, "
			   "\"ratio_rounds\": null, "
			   "\"latency_ratio_paired\": null, "
			   "\"latency_ratio_rounds\": null");
	}
	fprintf(f, ",\n  \"sink\": ");
	if (r->have_sink)
		fprintf(f, "{\"accepted\": %llu, \"payload_bytes\": %llu, "
			   "\"checked\": %s, \"ok\": %s}",
			(unsigned long long)r->sink_accepted,
			(unsigned long long)r->sink_bytes,
			r->sink_checked ? "true" : "false",
			r->sink_ok ? "true" : "false");
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"phases\": ");
	json_phases(f, r);
	fprintf(f, ",\n  \"exit_status\": %d\n}\n", r->exit_status);
	free(iocx);
	free(raw);
}
