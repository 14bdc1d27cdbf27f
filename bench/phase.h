/*
 * One phase of a bench run: a workload (connects or a duration, at most
 * `concurrency` in flight, optionally paced and with a deadline) driven
 * through one driver (the iocx engine, or the raw baseline loop), with the
 * bookkeeping both share so their numbers compare: warm-up, counters by
 * outcome, the latency histogram, per-second intervals, CPU time.
 *
 * Threads: phase_run() is the control thread (pacing, deadlines,
 * intervals, the end).  Drivers call phase_complete(), phase_release() and
 * phase_closed() from their completion threads.  Slots: each connect in
 * flight occupies one of `concurrency` slots; the slot's state word
 * (generation << 8 | state) decides who closes a connect whose deadline
 * passed, so the deadline check and the completion never both do.
 */
#ifndef IOCX_BENCH_PHASE_H
#define IOCX_BENCH_PHASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "iocx.h"
#include "options.h"

struct phase;
struct os_event;

struct slot {
	_Atomic uint64_t state;		/* generation << 8 | slot state */
	atomic_bool expired;		/* the driver's expire() returned */
	_Atomic uint64_t t_start_ns;	/* just before the driver's start()
					   (moved to the socket by paced iocx
					   and raw io_uring's queued starts) */
	_Atomic uint32_t next_free;	/* free list: index + 1, 0 = end */
	/* Its outcome went into the measured latencies: its release time
	 * goes into the release latencies too. */
	atomic_bool measured_ok;
	uint32_t index;			/* 0 .. concurrency - 1 */
	struct phase *phase;
};

/* How a phase makes connects.  Every function may fail only in init. */
struct driver {
	const char *name;		/* "iocx" or "raw" */
	/* Set up (engine, port, threads); 0 or a negative iocx code. */
	int (*init)(struct phase *p, void **ctx);
	/*
	 * Start a connect for slot s.  0: it will be reported through
	 * phase_complete(); a negative iocx code: it failed synchronously
	 * and nothing is left to close.
	 */
	int (*start)(void *ctx, struct slot *s);
	/*
	 * s's deadline passed and the phase claimed it: make the connect
	 * (and the reply it reads) finish now (cancel it).  Its outcome
	 * still arrives through phase_complete(), which then returns true.
	 * The deadline is --reply-timeout when a reply is read, else
	 * --timeout unless own_timeout.  NULL: no deadline is the phase's.
	 */
	void (*expire)(void *ctx, struct slot *s);
	/*
	 * Cancel whatever is still in flight, wait until every connection
	 * is reported and closed, free everything.
	 */
	void (*fini)(void *ctx);
	/* Backend name (a static string: the phase's result keeps it
	 * after fini) and worker threads, for the banner. */
	const char *(*backend)(void *ctx);
	unsigned (*workers)(void *ctx);
	/*
	 * With --rate: true when the driver's own engine paces the starts
	 * (iocx: connect_rate), and the phase starts a connect whenever a
	 * slot is free; false when the phase's schedule paces them (the
	 * raw baselines, so comparisons stay fair).
	 */
	bool paces_itself;
	/*
	 * The driver's engine enforces --timeout itself (iocx:
	 * deadline_ms) and reports IOCX_E_TIMEDOUT: the phase's deadline
	 * check then only bounds replies.
	 */
	bool own_timeout;
};

/* One second (or the last, shorter stretch) of a phase. */
struct phase_interval {
	const char *name;
	unsigned round;
	double t_s;		/* end of the interval, since start */
	double length_s;
	uint64_t connects;		/* succeeded in this interval */
	double connects_per_sec;
	uint64_t connects_total;	/* since the phase started */
	uint64_t errors_total;
	uint64_t in_flight;
	bool warmup;		/* the interval ended inside warm-up */
	bool last;
	uint64_t p50_ns, p99_ns;	/* of this interval's connects */
	uint64_t end_ns;		/* iocx__now_ns() at its end */
	/* The latencies measured (after warm-up) in this interval: the
	 * intervals of a phase add up to its result's hist. */
	const struct iocx_hist *measured;
	/* Targets by name: the resolution times of this interval's
	 * outcomes, warm-up included (like the table's resolution line);
	 * NULL for numeric targets. */
	const struct iocx_hist *resolution;
	uint64_t resolved;			/* its count */
	uint64_t resolve_p50_ns, resolve_p99_ns;
};

/* What the phase needs to know besides the options. */
struct phase_config {
	const struct bench_options *opt;
	const char *name;		/* label: "iocx", "raw" */
	unsigned round;			/* 1-based */
	/* Where connects go, in turn (at least one, all of one family). */
	const struct bench_target *targets;
	unsigned ntargets;
	const void *payload;		/* opt->payload bytes, read-only */
	unsigned workers;		/* resolved: never 0 */
	/* Client CPU time so far (process minus the built-in sink). */
	uint64_t (*cpu_ns)(void *arg);
	void *cpu_arg;
	/* Called on the control thread once per second and at the end. */
	void (*on_interval)(const struct phase *p,
			    const struct phase_interval *iv, void *arg);
	void *interval_arg;
	/*
	 * Interruption (optional, both or neither): once *interrupted is
	 * true, the phase starts nothing more, gives what is in flight up
	 * to the options' grace_ms to finish, and ends; the driver's
	 * fini() cancels the rest (counted as IOCX_E_CANCELLED).  Whoever
	 * sets *interrupted then sets wake, which the phase waits on.
	 */
	const atomic_bool *interrupted;
	struct os_event *wake;
};

/*
 * The outcome of one connect, as a driver reports it.  Its latency is
 * taken by the phase, the same span for every driver: from the slot's
 * t_start_ns (just before the phase calls the driver's start(); a
 * driver may move it to the connect's socket) to phase_complete().  A
 * second span, to the slot's release (phase_release()), covers the
 * whole time the connect held its slot.
 */
struct outcome {
	int status;			/* IOCX_OK or a negative iocx code */
	size_t payload_sent;
	bool fastopen;
	/* --expect-*: from the connect's start (slot t_start_ns) to the
	 * reply's first byte and to its end; with status IOCX_OK only. */
	uint64_t ttfb_ns;
	uint64_t reply_ns;
	/* Targets by name: the connect's resolve_ns (0 when it resolved
	 * nothing: a failure before or during resolution). */
	uint64_t resolve_ns;
};

/* Counts of outcomes; errors[-code] for each failure code. */
struct phase_counts {
	uint64_t attempts;
	uint64_t ok;
	uint64_t failed;
	uint64_t timeouts;		/* of failed: IOCX_E_TIMEDOUT */
	uint64_t reply_timeouts;	/* of timeouts: --reply-timeout */
	uint64_t payload_bytes;		/* first-payload bytes sent */
	uint64_t fastopen;
	uint64_t errors[IOCX_ERROR_COUNT];
};

struct phase_result {
	const char *name;
	unsigned round;
	const char *backend;
	unsigned workers;
	struct phase_counts measured;	/* after warm-up */
	struct phase_counts total;	/* everything, for the sink check */
	double seconds;			/* measured window */
	double connects_per_sec;	/* measured.ok / seconds */
	uint64_t cpu_ns;		/* client CPU in the measured window */
	uint64_t pacer_resets;		/* rate schedule re-anchored */
	/*
	 * --rate: starts the schedule had due while every slot was busy
	 * (the concurrency cap bound: not an open loop), over the whole
	 * phase, warm-up included.  The phase's schedule counts its own;
	 * an engine that paces itself, phase_set_cap_hits().
	 */
	uint64_t cap_hits;
	double starts_per_sec;		/* measured.attempts / seconds */
	bool engine_paced;		/* --rate applied by the engine */
	bool stalled;		/* nothing completed for too long */
	bool interrupted;	/* cut short by cfg->interrupted */
	/* The driver found its own bookkeeping broken (phase_fail()). */
	bool failed;
	unsigned armed;		/* timers held armed through the phase */
	/* Targets by name: the engine's resolution times (summary, no
	 * buckets) of every connect of the phase, warm-up included;
	 * count 0 otherwise. */
	struct iocx_histogram resolve;
	/* The same times as the bench saw them in each connect's result
	 * (the intervals' resolution adds up to it); owned, NULL for
	 * numeric targets. */
	struct iocx_hist *hist_resolve;
	struct iocx_hist *hist;		/* measured latencies; owned */
	/* The same connects from their start to their slot's release
	 * (phase_release()); owned. */
	struct iocx_hist *hist_release;
	/* --expect-*: time to first byte and to the full reply (measured,
	 * owned); NULL without a reply to read. */
	struct iocx_hist *hist_ttfb;
	struct iocx_hist *hist_reply;
};

/*
 * Run one phase to its end with driver drv.  Returns 0 and fills *out, or
 * a negative iocx code when the driver could not start (message on
 * stderr).  Free out->hist with phase_result_free().
 */
int phase_run(const struct phase_config *cfg, const struct driver *drv,
	      struct phase_result *out);

void phase_result_free(struct phase_result *r);

/*
 * The next connect's target: the targets in turn, round robin (any
 * thread).
 */
const struct bench_target *phase_next(struct phase *p);

/*
 * The address of the next connect, for numeric targets (phase_next());
 * *len gets its length.
 */
const struct sockaddr *phase_next_target(struct phase *p, size_t *len);

/* The address family of every target. */
int phase_family(const struct phase *p);

/* The configuration of a phase, and its driver's context (for drivers). */
const struct phase_config *phase_config_of(const struct phase *p);
void *phase_driver_ctx(const struct phase *p);

/*
 * Report the outcome of s's connect (any driver thread).  Returns true
 * when the phase's deadline check claimed it (drivers with expire() only):
 * it is then counted as IOCX_E_TIMEDOUT whatever o->status says.
 */
bool phase_complete(struct slot *s, const struct outcome *o);

/*
 * s's connection is closed or its close requested: the slot may take the
 * next connect (started right here, or by the pacer).
 */
void phase_release(struct slot *s);

/* A connection started by the phase is fully closed (on_close). */
void phase_closed(struct phase *p);

/*
 * For a driver's fini(): wait, polling, until every connect the phase
 * started has had its phase_closed(), for at most timeout_ms.  Returns
 * whether none is left.  Normally none is (the phase ends once all are
 * closed); after a stall or an interruption the driver cancels what is
 * in flight first.
 */
bool phase_wait_closed(struct phase *p, unsigned timeout_ms);

/*
 * The driver found something wrong outside the phase's own counters (its
 * message is on stderr already): the phase is marked failed, which fails
 * the run (exit status 1).  Any thread, also from fini().
 */
void phase_fail(struct phase *p);

/*
 * The driver holds n timers armed through the phase (--armed), shown
 * with the phase's result.  Call from init().
 */
void phase_set_armed(struct phase *p, unsigned n);

/*
 * A driver whose engine paces the starts (paces_itself) tells how many
 * of its turns came with no connect waiting for them (every slot busy).
 * Call from fini().
 */
void phase_set_cap_hits(struct phase *p, uint64_t n);

/*
 * Targets by name: the engine's resolution histogram (summary) for the
 * phase's result.  Call from fini(), before the engine goes.
 */
void phase_set_resolution(struct phase *p, const struct iocx_histogram *h);

#endif /* IOCX_BENCH_PHASE_H */
