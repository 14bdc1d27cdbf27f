/*
 * iocx-bench: connects per second, latency percentiles, errors and CPU
 * per connect, against the built-in loopback sink or HOST:PORT, through
 * iocx and (with --baseline) through a minimal raw loop, alternating.
 *
 * Exit status: 0 when every connect succeeded (and the sink saw them
 * all), 1 when a connect failed or timed out, a phase stalled or failed
 * its driver's own check (--armed), or the sink's counts differ, 2 for
 * bad usage.  docs/bench.md has the details.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "options.h"
#include "os.h"
#include "phase.h"
#include "report.h"
#include "sink.h"

#define SINK_QUIET_MS 2000

struct bench {
	struct bench_options opt;
	struct sink *sink;
	FILE *json;
	FILE *csv;
	bool progress;
	char *payload;
	char target[BENCH_ADDR_TEXT];
	const struct sockaddr *remote;
	size_t remote_len;
	unsigned workers;
};

static uint64_t client_cpu(void *arg)
{
	struct bench *b = arg;
	uint64_t all = os_cpu_ns();
	uint64_t sink = b->sink ? sink_cpu_ns(b->sink) : 0;

	return all > sink ? all - sink : 0;
}

static void on_interval(const struct phase *p, const struct phase_interval *iv,
			void *arg)
{
	struct bench *b = arg;

	(void)p;
	if (b->progress)
		report_progress(stdout, iv);
	if (b->csv)
		report_csv_row(b->csv, iv);
}

/* Open --json / --csv destinations; false after a message. */
static bool open_outputs(struct bench *b)
{
	const struct bench_output *outs[2] = { &b->opt.json, &b->opt.csv };
	FILE **files[2] = { &b->json, &b->csv };

	for (int i = 0; i < 2; i++) {
		if (!outs[i]->on)
			continue;
		if (!outs[i]->path) {
			*files[i] = stdout;
			continue;
		}
		*files[i] = fopen(outs[i]->path, "w");
		if (!*files[i]) {
			fprintf(stderr, "iocx-bench: cannot write %s\n",
				outs[i]->path);
			return false;
		}
	}
	return true;
}

static void close_outputs(struct bench *b)
{
	if (b->json && b->json != stdout)
		fclose(b->json);
	if (b->csv && b->csv != stdout)
		fclose(b->csv);
}

/* The first payload: a recognisable pattern, shared by all connects. */
static char *make_payload(size_t len)
{
	char *p = malloc(len + 1);

	if (p) {
		for (size_t i = 0; i < len; i++)
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
		     (r->opt->sink_mode != BENCH_SINK_READ ||
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

/* Run every phase in order: iocx, raw, iocx, raw, ... */
static unsigned run_phases(struct bench *b, struct phase_result *results)
{
	const struct driver *order[2] = { &iocx_driver, &raw_driver };
	unsigned sides = b->opt.baseline ? 2 : 1, n = 0;
	uint64_t ok_so_far = 0;

	for (unsigned round = 1; round <= b->opt.rounds; round++) {
		for (unsigned k = 0; k < sides; k++) {
			struct phase_config cfg = {
				.opt = &b->opt,
				.name = order[k]->name,
				.round = round,
				.remote = b->remote,
				.remote_len = b->remote_len,
				.payload = b->payload,
				.workers = b->workers,
				.cpu_ns = client_cpu,
				.cpu_arg = b,
				.on_interval = on_interval,
				.interval_arg = b,
			};

			if (phase_run(&cfg, order[k], &results[n]) != 0)
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
	if (b->csv)
		report_csv_header(b->csv);
	r.nresults = run_phases(b, r.results);
	if (r.nresults < max) {
		r.exit_status = 1;
	} else {
		if (b->sink) {
			sink_counts(b->sink, &r.sink_accepted, &r.sink_bytes);
			check_sink(&r);
		}
		r.exit_status = exit_status(&r);
	}
	if (r.nresults > 0) {
		if (!(b->opt.json.on && !b->opt.json.path) &&
		    !(b->opt.csv.on && !b->opt.csv.path))
			report_table(stdout, &r);
		if (b->json)
			report_json(b->json, &r);
	}
	for (unsigned i = 0; i < r.nresults; i++)
		phase_result_free(&r.results[i]);
	free(r.results);
	return r.exit_status;
}

int main(int argc, char **argv)
{
	static struct bench b;
	char err[256];
	int rc;

	if (os_net_init() != 0) {
		fprintf(stderr, "iocx-bench: cannot start the network stack\n");
		return 1;
	}
	switch (bench_parse(argc, argv, &b.opt, err, sizeof(err))) {
	case BENCH_PARSE_HELP:
		bench_usage(stdout);
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
	if (!open_outputs(&b)) {
		close_outputs(&b);
		os_net_fini();
		return 2;
	}
	b.progress = os_stdout_is_tty() && b.json != stdout && b.csv != stdout;
	b.workers = b.opt.workers ? b.opt.workers : iocx__cpu_count();
	b.payload = make_payload(b.opt.payload);
	rc = 1;
	if (!b.payload)
		goto out;
	if (b.opt.have_target) {
		b.remote = (const struct sockaddr *)&b.opt.target;
		b.remote_len = b.opt.target_len;
	} else {
		/* Acceptors keep pace with the workers: a sink that falls
		 * behind overflows its accept queue, and the dropped SYNs
		 * come back as 1 s latency outliers. */
		b.sink = sink_start(b.opt.sink_threads ? b.opt.sink_threads
						       : b.workers,
				    b.opt.sink_mode, b.opt.payload);
		if (!b.sink)
			goto out;
		b.remote = sink_address(b.sink, &b.remote_len);
	}
	bench_addr_format(b.remote, b.target);
	rc = run(&b);
	if (b.sink)
		sink_stop(b.sink);
out:
	free(b.payload);
	close_outputs(&b);
	os_net_fini();
	return rc;
}
