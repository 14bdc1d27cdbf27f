/*
 * pace-accuracy: how closely the engine's connect_rate holds its rate
 * (issue 11: at 2,000 connects/s for 10 s, the achieved rate within 1 %,
 * and no 100 ms window above rate * 0.1 + burst).
 *
 *   pace-accuracy [RATE [SECONDS [BURST]]]     (default 2000 10 1)
 *
 * Queues RATE * SECONDS connects to the bench's loopback sink at once,
 * through the public API only: max_in_flight 64 with a queue_limit that
 * holds them all, connect_rate RATE, connect_burst BURST.  Each
 * on_connect notes when its attempt started (the engine's clock, now
 * minus latency_ns: latency starts with the socket, after the pacing
 * wait) and resets the connection.  Then it prints the achieved rate
 * over the starts, (n - 1) / (last - first), and the most starts in any
 * 100 ms window (sliding, over the sorted starts) against RATE * 0.1 +
 * BURST, with where that window lies, the longest pause between two
 * starts (a stall of the worker) and how many pauses were two periods
 * or more.  A measurement, never a test: it exits 0 whatever the numbers
 * are, 1 only when a connect failed or something could not be set up.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "iocx.h"
#include "os.h"
#include "sink.h"

#define WINDOW_NS 100000000u	/* 100 ms */

static uint64_t *starts;
static atomic_size_t nstarts;
static atomic_size_t failures;
static size_t total;

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	uint64_t now = iocx__now_ns();
	size_t i;

	(void)user;
	if (r->status != IOCX_OK) {
		atomic_fetch_add(&failures, 1);
	} else {
		i = atomic_fetch_add(&nstarts, 1);
		if (i < total)
			starts[i] = now - r->latency_ns;
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

int main(int argc, char **argv)
{
	unsigned long rate = arg(argc, argv, 1, 2000);
	unsigned long seconds = arg(argc, argv, 2, 10);
	unsigned long burst = arg(argc, argv, 3, 1);
	struct iocx_engine_options eo;
	struct iocx_connect_request req = { 0 };
	iocx_engine *e = NULL;
	struct sink *sink = NULL;
	size_t addr_len, n, in_window, late;
	uint64_t window_at = 0, gap;
	double achieved, bound;
	int rc = 1;

	if (rate == 0 || rate > 1000000 || seconds == 0 || seconds > 3600 ||
	    burst == 0 || burst > rate) {
		fprintf(stderr, "usage: pace-accuracy [RATE [SECONDS [BURST]]]"
				"\n");
		return 2;
	}
	total = (size_t)(rate * seconds);
	starts = calloc(total, sizeof(*starts));
	if (!starts || os_net_init() != 0)
		return 1;
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
	for (size_t i = 0; i < total; i++) {
		iocx_conn *c;

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
	n = atomic_load(&nstarts);
	if (atomic_load(&failures) != 0 || n != total || n < 2) {
		fprintf(stderr, "pace-accuracy: %zu failed, %zu of %zu ok\n",
			atomic_load(&failures), n, total);
		goto out;
	}
	qsort(starts, n, sizeof(*starts), cmp_u64);
	achieved = (double)(n - 1) * 1e9 / (double)(starts[n - 1] - starts[0]);
	in_window = max_in_window(starts, n, WINDOW_NS, &window_at);
	bound = (double)rate * WINDOW_NS / 1e9 + (double)burst;
	printf("pace-accuracy: %s backend, rate %lu/s, burst %lu, %zu "
	       "connects\n", iocx_engine_backend(e), rate, burst, n);
	printf("pace-accuracy: achieved %.1f/s over %.3f s (%+.3f %% of the "
	       "rate; within 1 %%: %s)\n", achieved,
	       (double)(starts[n - 1] - starts[0]) / 1e9,
	       (achieved / (double)rate - 1) * 100,
	       achieved >= rate * 0.99 && achieved <= rate * 1.01 ? "yes"
								 : "no");
	printf("pace-accuracy: most starts in any 100 ms: %zu, bound rate * "
	       "0.1 + burst = %.0f (%s)\n", in_window, bound,
	       (double)in_window <= bound ? "within" : "ABOVE");
	gap = max_gap(starts, n, 1000000000u / rate, &late);
	printf("pace-accuracy: that window starts %.3f s in; longest pause "
	       "between two starts %.3f ms (the period is %.3f ms); pauses "
	       "of two periods or more: %zu\n", (double)window_at / 1e9,
	       (double)gap / 1e6, 1e3 / (double)rate, late);
	rc = 0;
out:
	if (e)
		iocx_engine_destroy(e);
	if (sink)
		sink_stop(sink);
	os_net_fini();
	free(starts);
	return rc;
}
