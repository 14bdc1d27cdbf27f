/*
 * pace-accuracy: how closely the engine's connect_rate holds its rate
 * (issue 11: at 2,000 connects/s for 10 s, the achieved rate within 1 %,
 * and no 100 ms window above rate * 0.1 + burst).
 *
 *   pace-accuracy [RATE [SECONDS [BURST]]]     (default 2000 10 1)
 *
 * Queues RATE * SECONDS connects to the bench's loopback sink at once,
 * through the public API only: max_in_flight 64 with a queue_limit that
 * holds them all, connect_rate RATE, connect_burst BURST.  Every start is
 * seen twice:
 *   stamp: the engine's own start, on_connect's time minus latency_ns
 *          (latency_ns counts from the reading the pacer decided on; the
 *          on_connect reading comes a little after the engine's, so a
 *          stamp seen here is late by that delay, never early);
 *   hook:  the clock read in the request's on_socket hook, which runs
 *          on the attempt's socket right after it is opened (later than
 *          the stamp by the socket's creation, and any preemption).
 * For each view it gives the achieved rate over the starts, (n - 1) /
 * (last - first), and the most starts in any 100 ms window (sliding over
 * the sorted starts) against RATE * 0.1 + BURST, with where that window
 * lies; then how far each hook came after its own stamp (median, p99,
 * max), the longest pause between two stamps (a stall of the worker),
 * how many pauses were two periods or more, and the load average.  One
 * line per run, key=value, for tables.  A measurement, never a test: it
 * exits 0 whatever the numbers are, 1 only when a connect failed or
 * something could not be set up.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "iocx.h"
#include "os.h"
#include "sink.h"

#define WINDOW_NS 100000000u	/* 100 ms */

/* Per connect i (its request's user): the two views of its start. */
static uint64_t *stamp_at, *hook_at;
static atomic_size_t nok;
static atomic_size_t failures;
static size_t total;

static int on_socket(iocx_socket_t sock, int family, void *user)
{
	(void)sock;
	(void)family;
	hook_at[(uintptr_t)user] = iocx__now_ns();
	return 0;
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	uint64_t now = iocx__now_ns();

	if (r->status != IOCX_OK) {
		atomic_fetch_add(&failures, 1);
	} else {
		stamp_at[(uintptr_t)user] = now - r->latency_ns;
		atomic_fetch_add(&nok, 1);
	}
	iocx_close(conn, IOCX_CLOSE_ABORT);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The most values of the sorted v[0..n) inside any window_ns, and where
 * the first such window starts (ns after v[0]).
 */
static size_t max_in_window(const uint64_t *v, size_t n, uint64_t window_ns,
			    uint64_t *at)
{
	size_t best = 0, lo = 0;

	for (size_t hi = 0; hi < n; hi++) {
		while (v[hi] - v[lo] >= window_ns)
			lo++;
		if (hi - lo + 1 > best) {
			best = hi - lo + 1;
			*at = v[lo] - v[0];
		}
	}
	return best;
}

/*
 * The longest pause between two consecutive starts (a stall shows here),
 * and in *late how many pauses were two periods or more: with burst 1
 * each is a wake-up an interval or more late, which restarts the
 * engine's schedule and loses turns.
 */
static uint64_t max_gap(const uint64_t *v, size_t n, uint64_t period_ns,
			size_t *late)
{
	uint64_t gap = 0;

	*late = 0;
	for (size_t i = 1; i < n; i++) {
		if (v[i] - v[i - 1] > gap)
			gap = v[i] - v[i - 1];
		if (v[i] - v[i - 1] >= 2 * period_ns)
			++*late;
	}
	return gap;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def)
{
	return argc > i ? strtoul(argv[i], NULL, 10) : def;
}

/* One view of the starts, v[0..n) sorted: its part of the line. */
static void print_view(const char *name, const uint64_t *v, size_t n,
		       unsigned long rate, double bound)
{
	double span = (double)(v[n - 1] - v[0]) / 1e9;
	double achieved = (double)(n - 1) / span;
	uint64_t at = 0;
	size_t most = max_in_window(v, n, WINDOW_NS, &at);

	printf(" %s_rate=%.1f %s_vs_rate=%+.3f%% %s_span_s=%.3f "
	       "%s_max100ms=%zu %s_max100ms_at_s=%.3f %s_window=%s", name,
	       achieved, name, (achieved / (double)rate - 1) * 100, name, span,
	       name, most, name, (double)at / 1e9, name,
	       (double)most <= bound ? "within" : "ABOVE");
}

/* The 1-minute load average, or -1 where /proc/loadavg is not there. */
static double load_average(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double load = -1;

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	return load;
}

int main(int argc, char **argv)
{
	unsigned long rate = arg(argc, argv, 1, 2000);
	unsigned long seconds = arg(argc, argv, 2, 10);
	unsigned long burst = arg(argc, argv, 3, 1);
	struct iocx_engine_options eo;
	struct iocx_connect_request req = { 0 };
	iocx_engine *e = NULL;
	struct sink *sink = NULL;
	uint64_t *delay = NULL;
	size_t addr_len, n, late, early = 0;
	uint64_t gap;
	double bound, within1;
	int rc = 1;

	if (rate == 0 || rate > 1000000 || seconds == 0 || seconds > 3600 ||
	    burst == 0 || burst > rate) {
		fprintf(stderr, "usage: pace-accuracy [RATE [SECONDS [BURST]]]"
				"\n");
		return 2;
	}
	total = (size_t)(rate * seconds);
	stamp_at = calloc(total, sizeof(*stamp_at));
	hook_at = calloc(total, sizeof(*hook_at));
	delay = calloc(total, sizeof(*delay));
	if (!stamp_at || !hook_at || !delay || os_net_init() != 0)
		goto out_mem;
	sink = sink_start(2, BENCH_SINK_CLOSE, 0);
	if (!sink)
		goto out;
	iocx_engine_options_init(&eo);
	eo.max_in_flight = 64;
	eo.queue_limit = (unsigned)total;
	eo.connect_rate = (uint32_t)rate;
	eo.connect_burst = (uint32_t)burst;
	if (iocx_engine_create(&eo, &e) != IOCX_OK) {
		fprintf(stderr, "pace-accuracy: iocx_engine_create failed\n");
		goto out;
	}
	req.remote = sink_address(sink, &addr_len);
	req.remote_len = addr_len;
	req.on_connect = on_connect;
	req.on_socket = on_socket;
	for (size_t i = 0; i < total; i++) {
		iocx_conn *c;

		req.user = (void *)(uintptr_t)i;
		if (iocx_connect(e, &req, &c) != IOCX_OK) {
			fprintf(stderr, "pace-accuracy: connect %zu refused\n",
				i);
			goto out;
		}
	}
	/* Twice the schedule, plus a minute for a loaded machine. */
	if (iocx_engine_wait_idle(e, (uint32_t)(2 * seconds + 60) * 1000) !=
	    IOCX_OK) {
		fprintf(stderr, "pace-accuracy: not done in time\n");
		goto out;
	}
	n = atomic_load(&nok);
	if (atomic_load(&failures) != 0 || n != total || n < 2) {
		fprintf(stderr, "pace-accuracy: %zu failed, %zu of %zu ok\n",
			atomic_load(&failures), n, total);
		goto out;
	}
	/* Each hook after its own stamp: the stamp may be read late by
	 * on_connect's delay, so a hook can seem a little early. */
	for (size_t i = 0; i < n; i++) {
		if (hook_at[i] < stamp_at[i])
			early++;
		delay[i] = hook_at[i] > stamp_at[i] ? hook_at[i] - stamp_at[i]
						    : 0;
	}
	qsort(delay, n, sizeof(*delay), cmp_u64);
	qsort(stamp_at, n, sizeof(*stamp_at), cmp_u64);
	qsort(hook_at, n, sizeof(*hook_at), cmp_u64);
	bound = (double)rate * WINDOW_NS / 1e9 + (double)burst;
	within1 = (double)(n - 1) * 1e9 / (double)(stamp_at[n - 1] -
						   stamp_at[0]) /
		  (double)rate;
	gap = max_gap(stamp_at, n, 1000000000u / rate, &late);
	printf("pace-accuracy: backend=%s rate=%lu burst=%lu connects=%zu "
	       "bound=%.0f load=%.2f", iocx_engine_backend(e), rate, burst, n,
	       bound, load_average());
	print_view("stamp", stamp_at, n, rate, bound);
	print_view("hook", hook_at, n, rate, bound);
	printf(" hook_after_stamp_us_p50=%.1f p99=%.1f max=%.1f "
	       "hook_before_stamp=%zu longest_pause_ms=%.3f "
	       "pauses_2_periods=%zu within_1pct=%s\n",
	       (double)delay[n / 2] / 1e3, (double)delay[n - 1 - n / 100] / 1e3,
	       (double)delay[n - 1] / 1e3, early, (double)gap / 1e6, late,
	       within1 >= 0.99 && within1 <= 1.01 ? "yes" : "no");
	rc = 0;
out:
	if (e)
		iocx_engine_destroy(e);
	if (sink)
		sink_stop(sink);
	os_net_fini();
out_mem:
	free(stamp_at);
	free(hook_at);
	free(delay);
	return rc;
}
