/*
 * iocx-bench: connects per second, latency percentiles, errors and CPU
 * per connect, against the built-in loopback sink or HOST:PORT, through
 * iocx and (with --baseline) through a minimal raw loop, alternating.
 *
 * Exit status: 0 when every connect succeeded (and the sink saw them
 * all), 1 when a connect failed or timed out, a phase stalled or failed
 * its driver's own check (--armed), or the sink's counts differ, 2 for
 * bad usage, 128 + the signal when SIGINT/SIGTERM (Ctrl-C) cut the run
 * short: the report then covers what ran.  docs/bench.md has the
 * details.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "hdrlog.h"
#include "merge.h"
#include "options.h"
#include "os.h"
#include "phase.h"
#include "report.h"
#include "scale.h"
#include "sink.h"
#include "svg.h"

#define SINK_QUIET_MS 2000

/*
 * A --json or --csv destination.  A file is written under a temporary
 * name beside it and renamed over PATH only once complete, so PATH never
 * holds a part of a report (Ctrl-C twice, a crash, a full disk).
 */
struct out_file {
	FILE *f;			/* NULL: off */
	const char *path;		/* NULL: stdout */
	char *tmp;			/* PATH.part */
};

/* bench.start_state: the --start-at wait against the first interrupt. */
enum { START_WAITING, START_BEGUN, START_CANCELLED };

struct bench {
	struct bench_options opt;
	struct sink *sink;
	struct out_file json;
	struct out_file csv;
	struct out_file hdr;		/* --hdr-log */
	struct out_file svg;		/* --svg */
	/* --svg: every interval's rate, in run order (grown as needed). */
	struct svg_rate *rates;
	size_t nrates, rates_cap;
	/* --json: every interval, for merge (grown as needed). */
	struct report_interval *ivs;
	size_t nivs, ivs_cap;
	bool ivs_failed;		/* out of memory: no JSON */
	double epoch0;			/* wall clock at t0_ns */
	uint64_t t0_ns;			/* the log's BaseTime (monotonic) */
	bool hdr_failed;
	bool progress;
	/* Set once by on_interrupt(), then wake is set. */
	atomic_bool interrupted;
	/* START_*: whether connects began or an interrupt came first. */
	atomic_int start_state;
	atomic_int signo;
	struct os_event *wake;
	char *payload;
	/* The targets, "A:P, B:P, ...", for the reports. */
	char target[BENCH_MAX_TARGETS * (IOCX_MAX_HOST + 10)];
	const struct bench_target *targets;
	unsigned ntargets;
	struct bench_target sink_target;
	unsigned workers;
};

static uint64_t client_cpu(void *arg)
{
	struct bench *b = arg;
	uint64_t all = os_cpu_ns();
	uint64_t sink = b->sink ? sink_cpu_ns(b->sink) : 0;

	return all > sink ? all - sink : 0;
}

/* --svg: remember the interval's rate (dropped when out of memory). */
static void keep_rate(struct bench *b, const struct phase_interval *iv)
{
	if (b->nrates == b->rates_cap) {
		size_t want = b->rates_cap ? 2 * b->rates_cap : 64;
		struct svg_rate *p = realloc(b->rates, want * sizeof(*p));

		if (!p)
			return;
		b->rates = p;
		b->rates_cap = want;
	}
	b->rates[b->nrates++] = (struct svg_rate){
		.name = iv->name,
		.round = iv->round,
		.t_s = iv->t_s,
		.connects_per_sec = iv->connects_per_sec,
	};
}

/* --json: remember the interval for merge; false when out of memory. */
static bool keep_interval(struct bench *b, const struct phase_interval *iv,
			  double start_s)
{
	if (b->nivs == b->ivs_cap) {
		size_t want = b->ivs_cap ? 2 * b->ivs_cap : 64;
		struct report_interval *p = realloc(b->ivs, want * sizeof(*p));

		if (!p)
			return false;
		b->ivs = p;
		b->ivs_cap = want;
	}
	b->ivs[b->nivs++] = (struct report_interval){
		.name = iv->name,
		.round = iv->round,
		.start_s = start_s,
		.length_s = iv->length_s,
		.connects = iocx__hist_count(iv->measured),
	};
	return true;
}

static void on_interval(const struct phase *p, const struct phase_interval *iv,
			void *arg)
{
	struct bench *b = arg;
	uint64_t start = iv->end_ns - (uint64_t)(iv->length_s * 1e9);
	/* Seconds since the log's BaseTime (the JSON's base_time). */
	double start_s = start > b->t0_ns ? (double)(start - b->t0_ns) / 1e9
					  : 0;

	(void)p;
	if (b->progress)
		report_progress(stderr, iv);
	if (b->csv.f)
		report_csv_row(b->csv.f, iv);
	if (b->svg.f)
		keep_rate(b, iv);
	if (b->json.f && !b->ivs_failed && !keep_interval(b, iv, start_s)) {
		fprintf(stderr, "iocx-bench: --json: out of memory for the "
			"intervals\n");
		b->ivs_failed = true;
	}
	if (b->hdr.f && !b->hdr_failed) {
		char tag[64];

		snprintf(tag, sizeof(tag), "%s.%u", iv->name, iv->round);
		if (hdrlog_interval(b->hdr.f, tag, start_s, iv->length_s,
				    iv->measured) != 0)
			b->hdr_failed = true;
		/* By name: the interval's resolution times beside it. */
		snprintf(tag, sizeof(tag), HDRLOG_RESOLVE_TAG "%s.%u",
			 iv->name, iv->round);
		if (!b->hdr_failed && iv->resolution &&
		    hdrlog_interval(b->hdr.f, tag, start_s, iv->length_s,
				    iv->resolution) != 0)
			b->hdr_failed = true;
		if (b->hdr_failed)
			fprintf(stderr, "iocx-bench: --hdr-log: cannot encode "
				"an interval (out of memory)\n");
	}
}

/* First SIGINT / SIGTERM / Ctrl-C, on the OS shim's own thread. */
static void on_interrupt(int signo, void *arg)
{
	struct bench *b = arg;
	int waiting = START_WAITING;
	bool before;

	/* signo first: a wait that finds itself cancelled exits with it. */
	atomic_store(&b->signo, signo);
	/* Decided before the wake-up, so the waiting thread cannot begin
	 * in between: either it sees this, or this sees it began. */
	before = atomic_compare_exchange_strong(&b->start_state, &waiting,
						START_CANCELLED);
	atomic_store(&b->interrupted, true);
	os_event_set(b->wake);
	if (before) {
		fprintf(stderr, "iocx-bench: interrupted before the first "
			"connect (--start-at wait): no report\n");
		return;
	}
	fprintf(stderr, "iocx-bench: interrupted: no more connects; the "
		"report follows once those in flight are done (at most "
		"%llu ms); interrupt again to quit at once\n",
		(unsigned long long)b->opt.grace_ms);
}

/* Open one --json / --csv destination; false after a message. */
static bool open_output(const struct bench_output *o, struct out_file *out)
{
	size_t n;

	if (!o->on)
		return true;
	if (!o->path) {
		out->f = stdout;
		return true;
	}
	n = strlen(o->path) + sizeof(".part");
	out->path = o->path;
	out->tmp = malloc(n);
	if (out->tmp) {
		snprintf(out->tmp, n, "%s.part", o->path);
		out->f = fopen(out->tmp, "w");
	}
	if (!out->f) {
		fprintf(stderr, "iocx-bench: cannot write %s\n",
			out->tmp ? out->tmp : o->path);
		return false;
	}
	return true;
}

/*
 * Close a destination: keep = the report is complete, so the file
 * replaces PATH; otherwise the temporary file goes.  False after a
 * message when writing failed.
 */
static bool close_output(struct out_file *out, bool keep)
{
	bool ok = true;

	if (out->f && out->f != stdout) {
		ok = !ferror(out->f);
		ok = fclose(out->f) == 0 && ok;
		if (ok && keep && os_replace_file(out->tmp, out->path) != 0)
			ok = false;
		if (!ok || !keep)
			remove(out->tmp);
		if (!ok)
			fprintf(stderr, "iocx-bench: cannot write %s\n",
				out->path);
	}
	out->f = NULL;
	free(out->tmp);
	out->tmp = NULL;
	return ok;
}

/* The bytes of --payload-file into p (IOCX_MAX_PAYLOAD + 1 long). */
static bool read_payload_file(struct bench_options *o, char *p)
{
	FILE *f = fopen(o->payload_file, "rb");
	size_t n;
	bool ok;

	if (!f) {
		fprintf(stderr, "iocx-bench: --payload-file %s: cannot open "
			"it\n", o->payload_file);
		return false;
	}
	n = fread(p, 1, (size_t)IOCX_MAX_PAYLOAD + 1, f);
	ok = !ferror(f);
	fclose(f);
	if (!ok || n == 0 || n > IOCX_MAX_PAYLOAD) {
		fprintf(stderr, "iocx-bench: --payload-file %s: %s\n",
			o->payload_file,
			!ok	 ? "cannot read it"
			: n == 0 ? "empty: want at least one byte"
				 : "larger than IOCX_MAX_PAYLOAD");
		return false;
	}
	o->payload = n;
	return true;
}

/*
 * The first payload, shared by all connects: the bytes of --payload-file
 * or --payload-hex, else a recognisable filler pattern.  NULL after a
 * message (*usage: the user's file was the problem).
 */
static char *make_payload(struct bench_options *o, bool *usage)
{
	char *p = malloc((o->payload_file ? IOCX_MAX_PAYLOAD : o->payload) +
			 1);

	*usage = false;
	if (!p) {
		fprintf(stderr, "iocx-bench: out of memory\n");
		return NULL;
	}
	if (o->payload_file) {
		if (!read_payload_file(o, p)) {
			*usage = true;
			free(p);
			return NULL;
		}
	} else if (o->payload_hex) {
		bench_hex_decode(o->payload_hex, (unsigned char *)p);
	} else {
		for (size_t i = 0; i < o->payload; i++)
			p[i] = (char)('a' + i % 26);
	}
	return p;
}

/* Compare the sink's counts with what the client says it sent. */
static void check_sink(struct run_report *r)
{
	uint64_t ok = 0, failed = 0, bytes = 0;

	for (unsigned i = 0; i < r->nresults; i++) {
		ok += r->results[i].total.ok;
		failed += r->results[i].total.failed;
		bytes += r->results[i].total.payload_bytes;
	}
	/* A failed connect may or may not have reached the sink. */
	r->sink_checked = failed == 0;
	r->sink_ok = r->sink_accepted == ok &&
		     (r->opt->sink_mode == BENCH_SINK_CLOSE ||
		      r->sink_bytes == bytes);
}

static int exit_status(const struct run_report *r)
{
	for (unsigned i = 0; i < r->nresults; i++) {
		if (r->results[i].total.failed || r->results[i].stalled ||
		    r->results[i].failed)
			return 1;
	}
	return r->have_sink && r->sink_checked && !r->sink_ok ? 1 : 0;
}

/*
 * --start-at: wait until the wall clock reaches it, so that processes on
 * several machines begin together (their clocks synchronised by NTP or
 * the like; nothing else is coordinated).  A time already past starts at
 * once, saying how late.  Ctrl-C ends the wait: false then.
 */
static bool wait_for_start(struct bench *b)
{
	double left = b->opt.start_at - os_epoch_s();
	int waiting = START_WAITING;

	if (!b->opt.start_at) {
		atomic_store(&b->start_state, START_BEGUN);
		return true;
	}
	if (b->progress)
		fprintf(stderr, left > 0 ? "iocx-bench: --start-at: waiting "
					   "%.3f s\n"
					 : "iocx-bench: --start-at: %.3f s "
					   "late, starting now\n",
			left > 0 ? left : -left);
	while (left > 0 && !atomic_load(&b->interrupted)) {
		os_event_wait(b->wake, left > 1 ? 1000000000u
						: (uint64_t)(left * 1e9) + 1);
		left = b->opt.start_at - os_epoch_s();
	}
	/* Begin, unless an interrupt came first (then no connect, no
	 * report); an interrupt after this gets the report. */
	return atomic_compare_exchange_strong(&b->start_state, &waiting,
					      START_BEGUN);
}

/*
 * Run every phase in order: iocx, raw, iocx, raw, ...  Each raw phase
 * runs the raw loop for the backend its iocx phase ran on.
 */
static unsigned run_phases(struct bench *b, struct phase_result *results)
{
	unsigned sides = b->opt.baseline ? 2 : 1, n = 0;
	uint64_t ok_so_far = 0;

	for (unsigned round = 1; round <= b->opt.rounds; round++) {
		for (unsigned k = 0; k < sides; k++) {
			const struct driver *drv =
				k == 0 ? &iocx_driver
				       : raw_driver_for(results[n - 1].backend);
			struct phase_config cfg = {
				.opt = &b->opt,
				.name = drv->name,
				.round = round,
				.targets = b->targets,
				.ntargets = b->ntargets,
				.payload = b->payload,
				.workers = b->workers,
				.cpu_ns = client_cpu,
				.cpu_arg = b,
				.on_interval = on_interval,
				.interval_arg = b,
				.interrupted = &b->interrupted,
				.wake = b->wake,
			};

			if (atomic_load(&b->interrupted))
				return n;

			if (phase_run(&cfg, drv, &results[n]) != 0)
				return n;
			ok_so_far += results[n].total.ok;
			n++;
			/* The next phase starts with the sink caught up. */
			if (b->sink)
				sink_wait(b->sink, ok_so_far, SINK_QUIET_MS);
		}
	}
	return n;
}

static int run(struct bench *b)
{
	struct run_report r = {
		.opt = &b->opt,
		.target = b->target,
		.workers = b->workers,
		.have_sink = b->sink != NULL,
		.sink_threads = b->sink ? sink_threads(b->sink) : 0,
	};
	unsigned max = b->opt.rounds * (b->opt.baseline ? 2 : 1);

	r.results = calloc(max, sizeof(*r.results));
	if (!r.results)
		return 1;
	if (b->progress)
		report_banner(stderr, &r);
	if (b->csv.f)
		report_csv_header(b->csv.f);
	if (!wait_for_start(b)) {
		free(r.results);
		return 128 + atomic_load(&b->signo);
	}
	b->t0_ns = iocx__now_ns();
	b->epoch0 = os_epoch_s();
	if (b->hdr.f)
		hdrlog_header(b->hdr.f, b->epoch0);
	r.nresults = run_phases(b, r.results);
	r.base_time = b->epoch0;
	r.intervals = b->ivs;
	r.nintervals = b->nivs;
	r.interrupted = atomic_load(&b->interrupted);
	if (r.nresults < max && !r.interrupted) {
		r.exit_status = 1;
	} else {
		if (b->sink) {
			sink_counts(b->sink, &r.sink_accepted, &r.sink_bytes);
			check_sink(&r);
		}
		r.exit_status = exit_status(&r);
	}
	/* Cut short: say so, whatever was measured. */
	if (r.interrupted)
		r.exit_status = 128 + atomic_load(&b->signo);
	if (r.nresults > 0) {
		if (!(b->opt.json.on && !b->opt.json.path) &&
		    !(b->opt.csv.on && !b->opt.csv.path))
			report_table(stdout, &r);
		if (b->json.f)
			report_json(b->json.f, &r);
		if (b->svg.f)
			report_svg(b->svg.f, &r, b->rates, b->nrates);
	}
	/* A file holds a report only when there was one to write. */
	if (b->hdr_failed || b->ivs_failed)
		r.exit_status = r.exit_status ? r.exit_status : 1;
	if (!close_output(&b->json, r.nresults > 0 && !b->ivs_failed) ||
	    !close_output(&b->csv, r.nresults > 0) ||
	    !close_output(&b->hdr, r.nresults > 0 && !b->hdr_failed) ||
	    !close_output(&b->svg, r.nresults > 0))
		r.exit_status = r.exit_status ? r.exit_status : 1;
	for (unsigned i = 0; i < r.nresults; i++)
		phase_result_free(&r.results[i]);
	free(r.results);
	return r.exit_status;
}

/* b->target: the targets' addresses or NAME:PORT, comma-separated. */
static void format_targets(struct bench *b)
{
	size_t n = 0;

	for (unsigned i = 0; i < b->ntargets; i++) {
		const struct bench_target *t = &b->targets[i];
		char one[IOCX_MAX_HOST + 8];

		if (t->len)
			bench_addr_format((const struct sockaddr *)&t->addr,
					  one);
		else
			snprintf(one, sizeof(one), "%s:%u", t->host, t->port);
		n += (size_t)snprintf(b->target + n, sizeof(b->target) - n,
				      "%s%s", i ? ", " : "", one);
	}
}

int main(int argc, char **argv)
{
	static struct bench b;
	const struct sockaddr *sa;
	unsigned short sink_port = 0;
	struct bench_output hdr_out, svg_out;
	bool usage;
	char err[256];
	int rc;

	if (argc > 1 && !strcmp(argv[1], "merge"))
		return bench_merge(argc - 1, argv + 1);
	if (os_net_init() != 0) {
		fprintf(stderr, "iocx-bench: cannot start the network stack\n");
		return 1;
	}
	switch (bench_parse(argc, argv, &b.opt, err, sizeof(err))) {
	case BENCH_PARSE_HELP:
		bench_usage(stdout);
		os_net_fini();
		return 0;
	case BENCH_PARSE_VERSION:
		/* The bench's version (meson's project version) and the
		 * library's as the linked library reports it. */
		printf("iocx-bench %s (iocx %s)\n", IOCX_BENCH_VERSION,
		       iocx_version_string());
		os_net_fini();
		return 0;
	case BENCH_PARSE_USAGE:
		fprintf(stderr, "iocx-bench: %s\n", err);
		fprintf(stderr, "iocx-bench: --help lists the options\n");
		os_net_fini();
		return 2;
	case BENCH_PARSE_OK:
		break;
	}
	b.wake = os_event_create();
	if (!b.wake || os_on_interrupt(on_interrupt, &b) != 0) {
		os_event_destroy(b.wake);
		os_net_fini();
		return 1;
	}
	hdr_out.on = b.opt.hdr_log != NULL;
	hdr_out.path = b.opt.hdr_log;
	svg_out.on = b.opt.svg != NULL;
	svg_out.path = b.opt.svg;
	if (!open_output(&b.opt.json, &b.json) ||
	    !open_output(&b.opt.csv, &b.csv) ||
	    !open_output(&hdr_out, &b.hdr) ||
	    !open_output(&svg_out, &b.svg)) {
		close_output(&b.json, false);
		close_output(&b.csv, false);
		close_output(&b.hdr, false);
		close_output(&b.svg, false);
		os_event_destroy(b.wake);
		os_net_fini();
		return 2;
	}
	/* Progress goes to stderr whatever stdout is: a piped run (CI,
	 * | tee) shows it live, and stdout keeps only the result. */
	b.progress = !b.opt.quiet;
	b.workers = b.opt.workers ? b.opt.workers : iocx__cpu_count();
	b.payload = make_payload(&b.opt, &usage);
	rc = usage ? 2 : 1;
	if (!b.payload)
		goto out;
	if (b.opt.ntargets) {
		b.targets = b.opt.targets;
		b.ntargets = b.opt.ntargets;
	}
	if (!b.opt.ntargets || b.opt.name_sink) {
		/* --scale: the sink holds its end of every connection. */
		if (b.opt.scale)
			b.opt.sink_mode = BENCH_SINK_HOLD;
		/* Acceptors keep pace with the workers: a sink that falls
		 * behind overflows its accept queue, and the dropped SYNs
		 * come back as 1 s latency outliers. */
		b.sink = sink_start(b.opt.sink_threads ? b.opt.sink_threads
						       : b.workers,
				    b.opt.sink_mode, b.opt.payload);
		if (!b.sink)
			goto out;
		sa = sink_address(b.sink, &b.sink_target.len);
		memcpy(&b.sink_target.addr, sa, b.sink_target.len);
		sink_port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
	if (!b.opt.ntargets) {
		b.targets = &b.sink_target;
		b.ntargets = 1;
	}
	/* NAME:0: the name, and the sink's port. */
	for (unsigned i = 0; b.opt.name_sink && i < b.opt.ntargets; i++)
		if (b.opt.targets[i].port == 0)
			b.opt.targets[i].port = sink_port;
	format_targets(&b);
	if (b.opt.scale)
		rc = scale_run(&b.opt,
			       (const struct sockaddr *)&b.targets[0].addr,
			       b.targets[0].len, b.target, b.sink,
			       &b.interrupted, &b.signo, b.wake,
			       b.json.f == stdout ? NULL : stdout, b.json.f);
	if (b.opt.scale && !close_output(&b.json, true) && rc == 0)
		rc = 1;
	if (!b.opt.scale)
		rc = run(&b);
	if (b.sink)
		sink_stop(b.sink);
out:
	free(b.payload);
	close_output(&b.json, false);
	close_output(&b.csv, false);
	close_output(&b.hdr, false);
	close_output(&b.svg, false);
	free(b.rates);
	free(b.ivs);
	/* The interrupt thread may still set it: it lives as long as the
	 * process. */
	os_net_fini();
	return rc;
}
