/*
 * The scale mode (see scale.h): open --scale N connections through one
 * engine, hold them, close them, and report each step.  A first Ctrl-C
 * (SIGINT / SIGTERM) stops opening: the connects in flight report, the
 * window so far becomes the last step, every held connection is closed,
 * and the report follows, as in the other modes.
 *
 * Opening runs in windows, one per step: the control thread fills up to
 * --concurrency connects, each on_connect starts the next until the
 * window's count is reached, and the window ends when every connect of it
 * has reported.  Nothing is in flight between windows, so the memory
 * read there belongs to open connections only.  A connection that
 * connected is held (its handle kept in an array) until the end; one that
 * failed is closed at once and counted.  With --idle, every connect
 * carries that idle watchdog, so N timers stay armed while they are held;
 * a connection the engine closes on its own (on_close with anything but
 * IOCX_OK) fails the run; its handle stays valid until close_all()
 * releases it with the others (the engine never frees a handle the
 * program holds).
 *
 * Engine memory is counted by an allocator installed with
 * iocx_set_allocator(): a 16-byte header holds each block's size, and
 * the bytes the engine asked for (not the header, not malloc's own
 * overhead) are summed.  After the engine is destroyed the count must
 * be back where it started.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "iocx.h"
#include "os.h"
#include "phase.h"
#include "scale.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* A window or the closing gives up when nothing happened for this long. */
#define STALL_NS (30 * NS_PER_S)
#define FIRST_STEP 1000
#define MAX_STEPS 16
/* Descriptors kept spare besides the connections (and the sink's). */
#define SPARE_FDS 256
#define ALLOC_HEADER 16

static _Atomic uint64_t live_bytes;
static _Atomic uint64_t live_blocks;

static void *count_alloc(size_t n)
{
	unsigned char *p = malloc(n + ALLOC_HEADER);

	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	atomic_fetch_add_explicit(&live_bytes, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
	return p + ALLOC_HEADER;
}

static void count_free(void *q)
{
	unsigned char *p;
	size_t n;

	if (!q)
		return;
	p = (unsigned char *)q - ALLOC_HEADER;
	memcpy(&n, p, sizeof(n));
	atomic_fetch_sub_explicit(&live_bytes, n, memory_order_relaxed);
	atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
	free(p);
}

struct step {
	uint64_t open;			/* held at the end of the window */
	uint64_t attempts, failed;	/* of the window */
	uint64_t ns, cpu_ns;		/* wall and client CPU of it */
	uint64_t p50_ns, p99_ns;	/* engine latency_ns of its connects */
	uint64_t engine_bytes, engine_blocks;	/* above the idle engine */
	uint64_t rss;
};

struct scale {
	const struct bench_options *opt;
	const atomic_bool *interrupted;	/* the bench's first Ctrl-C */
	const atomic_int *signo;	/* ... and its signal */
	struct sink *sink;
	iocx_engine *engine;
	struct iocx_connect_request req;
	enum iocx_close_mode mode;
	iocx_conn **held;		/* opt->scale handles */
	_Atomic uint64_t nheld;
	_Atomic uint64_t started;	/* connects issued */
	_Atomic uint64_t window_end;	/* ... up to this many */
	_Atomic uint64_t outcomes;	/* on_connect calls + sync failures */
	_Atomic uint64_t failed;
	_Atomic uint64_t handles;	/* iocx_connect() returned IOCX_OK */
	_Atomic uint64_t closes;	/* on_close calls */
	_Atomic uint64_t early;		/* ... of them not after our close */
	_Atomic int early_reason;
	_Atomic uint64_t payload_bytes;
	_Atomic uint64_t errors[IOCX_ERROR_COUNT];
	struct iocx_hist *hist;		/* the window's latencies */
	struct os_event *wake;
	/* Results. */
	struct step steps[MAX_STEPS];
	unsigned nsteps;
	unsigned nsources;
	uint64_t nofile_before, nofile;
	uint64_t base_bytes, base_blocks, base_rss;
	uint64_t close_ns, after_destroy;
	bool stalled;
	bool cut;			/* interrupted: the last step is
					   partial */
	char nofile_why[160];		/* what kept the limit down */
};

static uint64_t ld(const _Atomic uint64_t *a)
{
	return atomic_load(a);
}

/* Ctrl-C came: no more connects. */
static bool stopping(const struct scale *sc)
{
	return atomic_load(sc->interrupted);
}

static uint64_t client_cpu(const struct scale *sc)
{
	uint64_t all = os_cpu_ns();
	uint64_t sink = sc->sink ? sink_cpu_ns(sc->sink) : 0;

	return all > sink ? all - sink : 0;
}

static void count_error(struct scale *sc, int status)
{
	if (status > 0 || status <= -IOCX_ERROR_COUNT)
		status = IOCX_E_SYSTEM;
	atomic_fetch_add(&sc->errors[-status], 1);
	atomic_fetch_add(&sc->failed, 1);
}

/* One more outcome; the window's last wakes the control thread. */
static void outcome(struct scale *sc)
{
	if (atomic_fetch_add(&sc->outcomes, 1) + 1 == ld(&sc->window_end))
		os_event_set(sc->wake);
}

/* Start the window's next connect, if any is left (any thread). */
static void start_next(struct scale *sc)
{
	uint64_t i = ld(&sc->started);

	for (;;) {
		int rc;

		do {
			if (i >= ld(&sc->window_end) || stopping(sc))
				return;
		} while (!atomic_compare_exchange_weak(&sc->started, &i,
						       i + 1));
		atomic_fetch_add(&sc->handles, 1);
		rc = iocx_connect(sc->engine, &sc->req, NULL);
		if (rc == IOCX_OK)
			return;
		atomic_fetch_sub(&sc->handles, 1);
		count_error(sc, rc);
		outcome(sc);
		i = ld(&sc->started);
	}
}

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct scale *sc = user;

	if (r->status == IOCX_OK) {
		sc->held[atomic_fetch_add(&sc->nheld, 1)] = c;
		iocx__hist_record(sc->hist, r->latency_ns);
		atomic_fetch_add(&sc->payload_bytes, r->payload_sent);
	} else {
		count_error(sc, r->status);
		iocx_close(c, sc->mode);
	}
	outcome(sc);
	start_next(sc);
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct scale *sc = user;

	(void)c;
	if (reason != IOCX_OK) {
		atomic_store(&sc->early_reason, reason);
		atomic_fetch_add(&sc->early, 1);
	}
	atomic_fetch_add(&sc->closes, 1);
	os_event_set(sc->wake);
}

/*
 * Wait until *counter reaches want; false when it stalled, when
 * bound_ns (0: none) passed, or when interruptible and Ctrl-C came.
 */
static bool wait_for(struct scale *sc, const _Atomic uint64_t *counter,
		     uint64_t want, bool interruptible, uint64_t bound_ns)
{
	uint64_t seen = ld(counter), progress = iocx__now_ns();
	uint64_t t0 = progress;

	while (ld(counter) < want) {
		uint64_t now = iocx__now_ns();

		if (interruptible && stopping(sc))
			return false;
		if (bound_ns && now - t0 > bound_ns)
			return false;
		if (ld(counter) != seen) {
			seen = ld(counter);
			progress = now;
		} else if (now - progress > STALL_NS) {
			return false;
		}
		os_event_wait(sc->wake, 100 * NS_PER_MS);
	}
	return true;
}

/* Open connections until `end` connects were made; fill in *st. */
static bool run_window(struct scale *sc, uint64_t end, struct step *st)
{
	uint64_t t0, cpu0, attempts0 = ld(&sc->outcomes);
	uint64_t failed0 = ld(&sc->failed);
	uint64_t fill = end - attempts0;

	if (fill > sc->opt->concurrency)
		fill = sc->opt->concurrency;
	iocx__hist_init(sc->hist);
	t0 = iocx__now_ns();
	cpu0 = client_cpu(sc);
	atomic_store(&sc->window_end, end);
	for (uint64_t k = 0; k < fill; k++)
		start_next(sc);
	if (!wait_for(sc, &sc->outcomes, end, true, 0)) {
		if (!stopping(sc))
			return false;
		/* Ctrl-C: nothing starts any more; those in flight get the
		 * phases' grace to report (the engine's destroy ends the
		 * others), and the window so far is the last step. */
		sc->cut = true;
		wait_for(sc, &sc->outcomes, ld(&sc->started), false,
			 sc->opt->grace_ms * NS_PER_MS);
	}
	st->ns = iocx__now_ns() - t0;
	st->cpu_ns = client_cpu(sc) - cpu0;
	st->attempts = ld(&sc->outcomes) - attempts0;
	st->failed = ld(&sc->failed) - failed0;
	st->open = ld(&sc->nheld);
	st->p50_ns = iocx__hist_percentile(sc->hist, 50);
	st->p99_ns = iocx__hist_percentile(sc->hist, 99);
	st->engine_bytes = ld(&live_bytes) - sc->base_bytes;
	st->engine_blocks = ld(&live_blocks) - sc->base_blocks;
	st->rss = os_rss_bytes();
	return true;
}

/* The window ends: 1,000, 10,000, ... below n, then n. */
static unsigned plan_steps(uint64_t n, uint64_t *ends)
{
	unsigned k = 0;

	for (uint64_t s = FIRST_STEP; s < n && k < MAX_STEPS - 1; s *= 10)
		ends[k++] = s;
	ends[k++] = n;
	return k;
}

/* 127.0.0.1, .2, ... as sources, for a loopback IPv4 target only. */
static unsigned loopback_sources(const struct bench_options *opt,
				 const struct sockaddr *remote,
				 struct sockaddr_storage *src)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)remote;
	unsigned n = opt->sources;

	if (remote->sa_family != AF_INET ||
	    (ntohl(in->sin_addr.s_addr) >> 24) != 127)
		return 0;
	if (n == 0)
		n = (unsigned)((opt->scale + BENCH_SCALE_PER_SOURCE - 1) /
			       BENCH_SCALE_PER_SOURCE);
	if (n > IOCX_MAX_SOURCES)
		n = IOCX_MAX_SOURCES;
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_in *s = (struct sockaddr_in *)&src[i];

		memset(&src[i], 0, sizeof(src[i]));
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(0x7f000001u + i);
	}
	return n;
}

static double per(uint64_t v, uint64_t n)
{
	return n ? (double)v / (double)n : 0;
}

static void print_table(FILE *f, const struct scale *sc, const char *target,
			const char *backend, unsigned workers, uint64_t nclosed)
{
	const struct bench_options *o = sc->opt;

	fprintf(f, "iocx-bench: scale, backend %s, %u worker%s, %llu "
		   "connections held, concurrency %u, payload %zu B%s\n",
		backend, workers, workers == 1 ? "" : "s",
		(unsigned long long)o->scale, o->concurrency, o->payload,
		o->idle_ms ? ", idle watchdog on each" : "");
	fprintf(f, "target %s, %u source address%s; ", target, sc->nsources,
		sc->nsources == 1 ? "" : "es");
	if (sc->nofile == UINT64_MAX)
		fprintf(f, "no open files limit\n\n");
	else
		fprintf(f, "open files limit %llu (was %llu)\n\n",
			(unsigned long long)sc->nofile,
			(unsigned long long)sc->nofile_before);
	fprintf(f, "%9s %8s %6s %10s %8s %8s %9s %9s %10s %10s\n", "open",
		"connects", "failed", "connect/s", "us/conn", "cpu us",
		"p50 ms", "p99 ms", "engine B", "rss MiB");
	for (unsigned i = 0; i < sc->nsteps; i++) {
		const struct step *s = &sc->steps[i];

		fprintf(f, "%9llu %8llu %6llu %10.1f %8.2f %8.2f %9.3f %9.3f "
			   "%10.1f %10.1f\n",
			(unsigned long long)s->open,
			(unsigned long long)s->attempts,
			(unsigned long long)s->failed,
			s->ns ? s->attempts * 1e9 / (double)s->ns : 0,
			per(s->ns, s->attempts) / 1e3,
			per(s->cpu_ns, s->attempts) / 1e3, s->p50_ns / 1e6,
			s->p99_ns / 1e6, per(s->engine_bytes, s->open),
			s->rss / 1048576.0);
	}
	fprintf(f, "\nengine B: engine memory per open connection (bytes "
		   "asked of the allocator, above the idle engine's %llu)\n",
		(unsigned long long)sc->base_bytes);
	if (sc->cut)
		fprintf(f, "interrupted: the last step is the part of its "
			   "window made before Ctrl-C\n");
	fprintf(f, "closed %llu in %.3f s (%.2f us each); %llu closed by the "
		   "engine on its own; engine memory after destroy %llu B\n",
		(unsigned long long)nclosed, sc->close_ns / 1e9,
		per(sc->close_ns, nclosed) / 1e3,
		(unsigned long long)ld(&sc->early),
		(unsigned long long)sc->after_destroy);
	fprintf(f, "errors:");
	for (int i = 0; i < IOCX_ERROR_COUNT; i++) {
		if (ld(&sc->errors[i]))
			fprintf(f, " %s %llu", iocx_error_name(-i),
				(unsigned long long)ld(&sc->errors[i]));
	}
	fprintf(f, "%s\n", ld(&sc->failed) ? "" : " none");
}

static void print_json(FILE *f, const struct scale *sc, const char *target,
		       const char *backend, unsigned workers, uint64_t nclosed,
		       uint64_t accepted, uint64_t bytes, bool sink_ok,
		       int status)
{
	const struct bench_options *o = sc->opt;
	bool first = true;

	fprintf(f, "{\"mode\": \"scale\",\n  \"settings\": {\"backend\": "
		   "\"%s\", \"target\": \"%s\", \"scale\": %llu, "
		   "\"concurrency\": %u, \"workers\": %u, \"payload\": %zu, "
		   "\"close\": \"%s\", \"idle_s\": %.3f, \"sources\": %u, "
		   "\"nofile_before\": %lld, \"nofile\": %lld, "
		   "\"engine_bytes_idle\": %llu},\n",
		backend, target, (unsigned long long)o->scale,
		o->concurrency, workers, o->payload,
		o->close_mode == BENCH_CLOSE_ABORT ? "abort" : "graceful",
		o->idle_ms / 1e3, sc->nsources,
		/* -1: the OS has no such limit. */
		sc->nofile_before == UINT64_MAX ? -1LL
						 : (long long)sc->nofile_before,
		sc->nofile == UINT64_MAX ? -1LL : (long long)sc->nofile,
		(unsigned long long)sc->base_bytes);
	fprintf(f, "  \"steps\": [");
	for (unsigned i = 0; i < sc->nsteps; i++) {
		const struct step *s = &sc->steps[i];

		fprintf(f, "%s\n    {\"open\": %llu, \"connects\": %llu, "
			   "\"failed\": %llu, \"seconds\": %.6f, "
			   "\"us_per_connect\": %.3f, "
			   "\"cpu_us_per_connect\": %.3f, "
			   "\"latency_us\": {\"p50\": %.1f, \"p99\": %.1f}, "
			   "\"engine_bytes\": %llu, "
			   "\"engine_bytes_per_conn\": %.1f, "
			   "\"engine_blocks_per_conn\": %.2f, "
			   "\"rss_bytes\": %llu, \"rss_bytes_per_conn\": %.1f}",
			i ? "," : "", (unsigned long long)s->open,
			(unsigned long long)s->attempts,
			(unsigned long long)s->failed, s->ns / 1e9,
			per(s->ns, s->attempts) / 1e3,
			per(s->cpu_ns, s->attempts) / 1e3, s->p50_ns / 1e3,
			s->p99_ns / 1e3, (unsigned long long)s->engine_bytes,
			per(s->engine_bytes, s->open),
			per(s->engine_blocks, s->open),
			(unsigned long long)s->rss,
			per(s->rss > sc->base_rss ? s->rss - sc->base_rss : 0,
			    s->open));
	}
	fprintf(f, "],\n  \"close\": {\"closed\": %llu, \"seconds\": %.6f, "
		   "\"early\": %llu, \"early_reason\": ",
		(unsigned long long)nclosed, sc->close_ns / 1e9,
		(unsigned long long)ld(&sc->early));
	if (ld(&sc->early))
		fprintf(f, "\"%s\"",
			iocx_error_name(atomic_load(&sc->early_reason)));
	else
		fprintf(f, "null");
	fprintf(f, "},\n  \"engine_bytes_after_destroy\": %llu,\n",
		(unsigned long long)sc->after_destroy);
	fprintf(f, "  \"connects\": %llu, \"attempts\": %llu, \"errors\": {",
		(unsigned long long)(ld(&sc->outcomes) - ld(&sc->failed)),
		(unsigned long long)ld(&sc->outcomes));
	for (int i = 0; i < IOCX_ERROR_COUNT; i++) {
		if (!ld(&sc->errors[i]))
			continue;
		fprintf(f, "%s\"%s\": %llu", first ? "" : ", ",
			iocx_error_name(-i),
			(unsigned long long)ld(&sc->errors[i]));
		first = false;
	}
	fprintf(f, "},\n  \"stalled\": %s,\n  \"interrupted\": %s,\n"
		   "  \"sink\": ", sc->stalled ? "true" : "false",
		stopping(sc) ? "true" : "false");
	if (sc->sink)
		fprintf(f, "{\"accepted\": %llu, \"payload_bytes\": %llu, "
			   "\"ok\": %s}",
			(unsigned long long)accepted,
			(unsigned long long)bytes, sink_ok ? "true" : "false");
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"exit_status\": %d}\n", status);
}

/* Engine and request; 0 or an iocx code after a message. */
static int setup(struct scale *sc, const struct sockaddr *remote,
		 size_t remote_len)
{
	const struct bench_options *o = sc->opt;
	struct sockaddr_storage src[IOCX_MAX_SOURCES];
	struct iocx_engine_options eo;
	int rc;

	rc = iocx_set_allocator(count_alloc, count_free);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx-bench: --scale: cannot count the engine's"
			" memory: iocx_set_allocator: %s\n",
			iocx_error_name(rc));
		return rc;
	}
	iocx_engine_options_init(&eo);
	eo.workers = o->workers;
	eo.batch = o->batch;
	eo.batch_closes = o->batch_closes;
	sc->nsources = loopback_sources(o, remote, src);
	eo.sources = sc->nsources ? src : NULL;
	eo.nsources = sc->nsources;
	rc = iocx_engine_create(&eo, &sc->engine);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx-bench: --scale: iocx_engine_create: %s\n",
			iocx_strerror(rc));
		return rc;
	}
	sc->mode = o->close_mode == BENCH_CLOSE_ABORT ? IOCX_CLOSE_ABORT
						      : IOCX_CLOSE_GRACEFUL;
	sc->req = (struct iocx_connect_request){
		.remote = remote,
		.remote_len = remote_len,
		.payload = NULL,
		.payload_len = o->payload,
		.payload_ownership = IOCX_PAYLOAD_BORROW,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = sc,
		.deadline_ms = (uint32_t)o->timeout_ms,
		.idle_ms = (uint32_t)o->idle_ms,
	};
	return 0;
}

/* Close every held connection and wait for their on_close. */
static bool close_all(struct scale *sc)
{
	uint64_t n = ld(&sc->nheld), t0 = iocx__now_ns();
	bool ok;

	for (uint64_t i = 0; i < n; i++)
		iocx_close(sc->held[i], sc->mode);
	if (!stopping(sc)) {
		ok = wait_for(sc, &sc->closes, ld(&sc->handles), false, 0);
	} else {
		/* After a Ctrl-C, connects still in flight (started, no
		 * outcome yet) are not waited for: the engine's destroy
		 * ends them.  The others' on_close gets the grace. */
		uint64_t t = iocx__now_ns();

		while (ld(&sc->closes) + ld(&sc->started) - ld(&sc->outcomes) <
			       ld(&sc->handles) &&
		       iocx__now_ns() - t < sc->opt->grace_ms * NS_PER_MS)
			os_event_wait(sc->wake, 10 * NS_PER_MS);
		ok = ld(&sc->closes) == ld(&sc->handles);
	}
	sc->close_ns = iocx__now_ns() - t0;
	return ok;
}

/* See scale.h. */
int scale_run(const struct bench_options *opt, const struct sockaddr *remote,
	      size_t remote_len, const char *target, struct sink *sink,
	      const atomic_bool *interrupted, const atomic_int *signo,
	      struct os_event *wake, FILE *table, FILE *json)
{
	static struct scale s;
	struct scale *sc = &s;
	uint64_t ends[MAX_STEPS], accepted = 0, bytes = 0, nclosed, need;
	char *payload = NULL;
	const char *backend = "?";
	unsigned workers = 0;
	bool sink_ok = true, closed_ok = false;
	int status = 1;

	sc->opt = opt;
	sc->sink = sink;
	sc->interrupted = interrupted;
	sc->signo = signo;
	sc->wake = wake;
	/* The connections, the sink's end of them, and some spare. */
	need = opt->scale * (sink ? 2 : 1) + SPARE_FDS;
	sc->nofile = os_raise_nofile(need, &sc->nofile_before, sc->nofile_why,
				     sizeof(sc->nofile_why));
	if (sc->nofile < need)
		fprintf(stderr, "iocx-bench: --scale %llu: the open files "
			"limit (RLIMIT_NOFILE) stays at %llu, below the %llu "
			"needed%s%s%s; connects will fail once it is "
			"reached\n",
			(unsigned long long)opt->scale,
			(unsigned long long)sc->nofile,
			(unsigned long long)need,
			sc->nofile_why[0] ? " (" : "", sc->nofile_why,
			sc->nofile_why[0] ? ")" : "");
	else if (sc->nofile != sc->nofile_before)
		fprintf(stderr, "iocx-bench: raised the open files limit "
			"(RLIMIT_NOFILE) from %llu to %llu\n",
			(unsigned long long)sc->nofile_before,
			(unsigned long long)sc->nofile);
	sc->held = calloc(opt->scale, sizeof(*sc->held));
	sc->hist = malloc(sizeof(*sc->hist));
	payload = opt->payload ? malloc(opt->payload) : NULL;
	if (!sc->held || !sc->hist ||
	    (opt->payload && !payload)) {
		fprintf(stderr, "iocx-bench: --scale: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < opt->payload; i++)
		payload[i] = (char)('a' + i % 26);
	if (setup(sc, remote, remote_len) != 0)
		goto out;
	sc->req.payload = payload;
	backend = iocx_engine_backend(sc->engine);
	workers = iocx_engine_workers(sc->engine);
	sc->base_bytes = ld(&live_bytes);
	sc->base_blocks = ld(&live_blocks);
	sc->base_rss = os_rss_bytes();
	if (!opt->quiet)
		fprintf(stderr, "iocx-bench: scale: opening %llu connections "
			"to %s (backend %s, %u worker%s); Ctrl-C stops, "
			"closes them and reports\n",
			(unsigned long long)opt->scale, target, backend,
			workers, workers == 1 ? "" : "s");

	sc->nsteps = plan_steps(opt->scale, ends);
	for (unsigned i = 0; i < sc->nsteps && !sc->stalled; i++) {
		if (!run_window(sc, ends[i], &sc->steps[i])) {
			fprintf(stderr, "iocx-bench: --scale: nothing "
				"happened for %llu s with %llu of %llu "
				"connects reported; giving up\n",
				(unsigned long long)(STALL_NS / NS_PER_S),
				(unsigned long long)ld(&sc->outcomes),
				(unsigned long long)ends[i]);
			sc->stalled = true;
			sc->nsteps = i;
		} else if (sc->cut) {
			sc->nsteps = i + 1;	/* the window so far */
		}
	}
	if (!sc->stalled)
		closed_ok = close_all(sc);
	if (!closed_ok && !stopping(sc))
		fprintf(stderr, "iocx-bench: --scale: only %llu of %llu "
			"connections closed\n",
			(unsigned long long)ld(&sc->closes),
			(unsigned long long)ld(&sc->handles));
	nclosed = ld(&sc->nheld);
	iocx_engine_destroy(sc->engine);
	sc->engine = NULL;
	/* Every block the engine had is back: the count starts at 0. */
	sc->after_destroy = ld(&live_bytes);
	if (table)
		print_table(table, sc, target, backend, workers, nclosed);
	if (sink) {
		sink_wait(sink, ld(&sc->nheld), 2000);
		sink_counts(sink, &accepted, &bytes);
		sink_ok = accepted == ld(&sc->nheld) &&
			  bytes == ld(&sc->payload_bytes);
		if (table)
			fprintf(table, "sink  %llu accepted, %llu payload bytes"
				" read: %s\n", (unsigned long long)accepted,
				(unsigned long long)bytes,
				sink_ok ? "matches the client's counts"
					: "DIFFERS from the client's counts");
	}
	status = !sc->stalled && closed_ok && ld(&sc->failed) == 0 &&
			 ld(&sc->early) == 0 &&
			 sc->after_destroy == 0 && sink_ok
		 ? 0
		 : 1;
	/* Cut short: say so, whatever was measured (as the phases do). */
	if (stopping(sc))
		status = 128 + atomic_load(sc->signo);
	if (json)
		print_json(json, sc, target, backend, workers, nclosed,
			   accepted, bytes, sink_ok, status);
out:
	if (sc->engine)
		iocx_engine_destroy(sc->engine);
	free(sc->hist);
	free(sc->held);
	free(payload);
	return status;
}
