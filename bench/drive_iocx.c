/*
 * The iocx driver of a bench phase: one engine per phase, one
 * iocx_connect() per slot start, closed from its own on_connect.  --timeout
 * becomes the request's deadline_ms, so the engine's own deadlines are
 * what gets measured, and --rate the engine's connect_rate (--burst its
 * connect_burst), so its own pacing is (the phase then starts a connect
 * whenever a slot is free).  Portable: it uses only the public API (and the
 * bench's OS shims), so it runs unchanged on every backend.
 *
 * --armed N: before the workload, init() parks N extra connects with an
 * armed timer each, and fini() cancels them after it.  They connect to a
 * local port that refuses (os_refuser), with a retry policy of two
 * attempts and the longest backoff iocx takes: the first attempt is
 * refused at once, and the connect then waits in RETRY_WAIT, without a
 * socket, for a backoff timer that would fire weeks later.  They are not
 * the phase's connects: they have their own callbacks and counters, never
 * touch a slot, and never reach the sink.
 *
 * --expect-bytes / --expect-until: a connect that succeeded reads its
 * reply (iocx_read_start) before its outcome is reported; the outcome is
 * then the reply's (IOCX_OK once complete, or the error that cut it
 * short: IOCX_E_EOF, IOCX_E_RESET, ...), with the times to its first
 * byte and to its end.  The reply state lives per slot: one connection
 * per slot at a time, and its callbacks never run concurrently.
 * --reply-timeout is the phase's deadline then: when it claims a slot,
 * expire() closes the slot's connection (its handle kept per slot), and
 * the outcome that follows counts as IOCX_E_TIMEDOUT.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "drivers.h"
#include "os.h"

#define NS_PER_MS 1000000ull
/* Held connects between iocx_connect() and their retry wait, at most:
 * each has a socket until it is refused, and descriptors are finite. */
#define ARM_WINDOW 1024
/* Arming gives up when no held connect reached its retry wait for this
 * long; a refused loopback connect takes microseconds. */
#define ARM_STALL_NS (10000 * NS_PER_MS)
/* How long fini() waits for the held connects' on_close. */
#define RELEASE_WAIT_NS (30000 * NS_PER_MS)
/* Poll period of those waits. */
#define POLL_NS NS_PER_MS

struct iocx_drv;

/* The reply being read on one slot's connection (--expect-*). */
struct reply {
	struct outcome o;	/* reported once the reply is complete */
	uint64_t got;		/* bytes so far */
	size_t matched;		/* --expect-until: bytes of it matched */
	bool reported;		/* later on_recv calls are the close's */
};

/* One connect held in its retry wait (--armed). */
struct held {
	struct iocx_drv *d;
	iocx_conn *conn;
	_Atomic unsigned connects;	/* on_connect calls */
	_Atomic unsigned closes;	/* on_close calls */
	_Atomic int status;		/* of the last on_connect */
	_Atomic int reason;		/* of the last on_close */
};

struct iocx_drv {
	struct phase *phase;
	iocx_engine *engine;
	struct iocx_connect_request req;
	enum iocx_close_mode mode;
	/* --rate: the engine paces, so a connect's latency starts with its
	 * socket (result.latency_ns), not with the wait for its turn. */
	bool paced;
	/* ... and the engine's attempts and paced waits once the phase's
	 * first fill of its slots was started, for its cap hits. */
	_Atomic unsigned fill_left;
	_Atomic uint64_t attempts0, paced0;
	/* --armed: the held connects and where they are refused. */
	struct held *held;
	unsigned nheld;			/* started (iocx_connect() OK) */
	struct os_refuser *refuser;
	struct os_event *wake;		/* the last held on_close */
	_Atomic unsigned held_reported;	/* held on_connect calls */
	_Atomic int held_status;	/* ... the last one's status */
	_Atomic unsigned held_closed;	/* held on_close calls */
	char tag[32];			/* "iocx #2", for messages */
	/* --expect-*: a reply per slot, NULL when none is read, and
	 * each slot's connection (set by iocx_connect(), for expire()). */
	struct reply *replies;
	iocx_conn **conns;
	uint64_t expect_bytes;
	const char *until;		/* --expect-until, until_len bytes */
	size_t until_len;
	size_t until_next[BENCH_MAX_EXPECT];	/* KMP failure function */
};

/*
 * KMP failure function of d->until: until_next[i] is the length of the
 * longest proper prefix of until[0..i] that is also its suffix.
 */
static void until_prepare(struct iocx_drv *d)
{
	size_t k = 0;

	d->until_next[0] = 0;
	for (size_t i = 1; i < d->until_len; i++) {
		while (k > 0 && d->until[k] != d->until[i])
			k = d->until_next[k - 1];
		if (d->until[k] == d->until[i])
			k++;
		d->until_next[i] = k;
	}
}

/* Feed a piece of the reply; true when it is complete. */
static bool reply_feed(const struct iocx_drv *d, struct reply *rp,
		       const char *data, size_t len)
{
	size_t k = rp->matched;

	rp->got += len;
	if (!d->until_len)
		return rp->got >= d->expect_bytes;
	/* The string may straddle pieces: k carries the match over. */
	for (size_t i = 0; i < len; i++) {
		while (k > 0 && d->until[k] != data[i])
			k = d->until_next[k - 1];
		if (d->until[k] == data[i])
			k++;
		if (k == d->until_len) {
			rp->matched = k;
			return true;
		}
	}
	rp->matched = k;
	return false;
}

/* The reply is complete (status IOCX_OK) or cut short: report, close. */
static void reply_done(iocx_conn *c, struct slot *s, struct reply *rp,
		       int status)
{
	struct iocx_drv *d = phase_driver_ctx(s->phase);

	rp->reported = true;
	rp->o.status = status;
	phase_complete(s, &rp->o);
	iocx_close(c, d->mode);
}

static void on_recv(iocx_conn *c, int status, const void *data, size_t len,
		    void *user)
{
	struct slot *s = user;
	struct iocx_drv *d = phase_driver_ctx(s->phase);
	struct reply *rp = &d->replies[s->index];
	uint64_t now = iocx__now_ns();
	uint64_t t0 = atomic_load_explicit(&s->t_start_ns,
					   memory_order_relaxed);

	if (rp->reported)
		return;
	if (status != IOCX_OK) {
		reply_done(c, s, rp, status);
		return;
	}
	if (rp->got == 0)
		rp->o.ttfb_ns = now - t0;
	if (reply_feed(d, rp, data, len)) {
		rp->o.reply_ns = now - t0;
		reply_done(c, s, rp, IOCX_OK);
	}
}

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct slot *s = user;
	struct iocx_drv *d = phase_driver_ctx(s->phase);
	struct outcome o = {
		.status = r->status,
		.payload_sent = r->payload_sent,
		.fastopen = r->fastopen,
		.resolve_ns = r->resolve_ns,
	};
	struct reply *rp;
	int rc;

	/* Paced: move the slot's start to the socket's creation, so the
	 * latency, time to first byte and reply time leave the turn out
	 * (the raw loops' schedule starts their clocks at the socket). */
	if (d->paced)
		atomic_store_explicit(&s->t_start_ns,
				      iocx__now_ns() - r->latency_ns,
				      memory_order_relaxed);
	if (r->status != IOCX_OK || !d->replies) {
		phase_complete(s, &o);
		iocx_close(c, d->mode);
		return;
	}
	rp = &d->replies[s->index];
	*rp = (struct reply){ .o = o };
	rc = iocx_read_start(c, on_recv);
	if (rc != IOCX_OK)
		reply_done(c, s, rp, rc);
}

/*
 * The slot takes its next connect once this one is closed, as in the raw
 * loop (close, then start): both drivers then free a socket before they
 * create the next, which the kernel's allocators notice.
 */
static void on_close(iocx_conn *c, int reason, void *user)
{
	struct slot *s = user;

	(void)c;
	(void)reason;
	phase_closed(s->phase);
	phase_release(s);
}

static void held_on_connect(iocx_conn *c, const struct iocx_connect_result *r,
			    void *user)
{
	struct held *h = user;

	(void)c;
	atomic_store(&h->status, r->status);
	atomic_fetch_add(&h->connects, 1);
	atomic_store(&h->d->held_status, r->status);
	atomic_fetch_add(&h->d->held_reported, 1);
}

static void held_on_close(iocx_conn *c, int reason, void *user)
{
	struct held *h = user;
	struct iocx_drv *d = h->d;

	(void)c;
	atomic_store(&h->reason, reason);
	atomic_fetch_add(&h->closes, 1);
	/* nheld no longer changes: no held connect closes before fini(),
	 * or before init() gave up. */
	if (atomic_fetch_add(&d->held_closed, 1) + 1 == d->nheld)
		os_event_set(d->wake);
}

/* One held connect, refused at once, then parked with its backoff armed. */
static int hold_one(struct iocx_drv *d, struct held *h)
{
	struct iocx_connect_request req = {
		.on_connect = held_on_connect,
		.on_close = held_on_close,
		.user = h,
		/* Two attempts, and a backoff (drawn from [max/2, max]) of
		 * 24 to 49 days: the timer stays armed all phase long. */
		.retry = {
			.max_attempts = 2,
			.backoff_initial_ms = UINT32_MAX,
			.backoff_max_ms = UINT32_MAX,
		},
		/* Windows retries a SYN answered by RST unless told not to;
		 * elsewhere this is ignored. */
		.syn_retransmissions = IOCX_SYN_NO_RETRANSMISSIONS,
	};

	h->d = d;
	req.remote = os_refuser_address(d->refuser, &req.remote_len);
	return iocx_connect(d->engine, &req, &h->conn);
}

/*
 * Start n held connects, at most ARM_WINDOW of them short of their retry
 * wait at a time, and wait until the engine counts n retries: then n
 * backoff timers are armed.  0, or an iocx code after a message.
 */
static int hold_armed(struct iocx_drv *d, unsigned n, int family)
{
	uint64_t progress = iocx__now_ns();
	uint64_t waiting = 0;
	struct iocx_stats st;
	int rc;

	d->held = calloc(n, sizeof(*d->held));
	d->refuser = os_refuser_open(family);
	d->wake = os_event_create();
	if (!d->held || !d->wake) {
		fprintf(stderr, "iocx-bench: %s: --armed %u: out of memory\n",
			d->tag, n);
		return IOCX_E_NOMEM;
	}
	if (!d->refuser)
		return IOCX_E_SYSTEM;
	for (;;) {
		uint64_t now = iocx__now_ns();

		iocx_engine_stats(d->engine, &st);
		if (st.retries != waiting) {
			waiting = st.retries;
			progress = now;
		}
		if (atomic_load(&d->held_reported)) {
			fprintf(stderr, "iocx-bench: %s: --armed %u: a held "
				"connect reported %s instead of waiting to "
				"retry\n", d->tag, n,
				iocx_error_name(atomic_load(&d->held_status)));
			return IOCX_E_SYSTEM;
		}
		if (waiting >= n)
			return 0;
		while (d->nheld < n && d->nheld - waiting < ARM_WINDOW) {
			rc = hold_one(d, &d->held[d->nheld]);
			if (rc != IOCX_OK) {
				fprintf(stderr, "iocx-bench: %s: --armed %u: "
					"held connect %u failed to start: %s\n",
					d->tag, n, d->nheld + 1,
					iocx_error_name(rc));
				return rc;
			}
			d->nheld++;
		}
		if (now - progress > ARM_STALL_NS) {
			fprintf(stderr, "iocx-bench: %s: --armed %u: only "
				"%llu of %u held connects reached their retry "
				"wait; none did in the last %llu s\n", d->tag,
				n, (unsigned long long)waiting, n,
				(unsigned long long)(ARM_STALL_NS /
						     (1000 * NS_PER_MS)));
			return IOCX_E_TIMEDOUT;
		}
		os_event_wait(d->wake, POLL_NS);
	}
}

/*
 * After the workload: cancel every held connect, and wait (bounded) for
 * their on_close.  False after a message when they did not all close.
 */
static bool release_held(struct iocx_drv *d)
{
	uint64_t until = iocx__now_ns() + RELEASE_WAIT_NS, now;
	unsigned refused = 0;

	for (unsigned i = 0; i < d->nheld; i++) {
		if (iocx_close(d->held[i].conn, IOCX_CLOSE_ABORT) != IOCX_OK)
			refused++;
	}
	if (refused)
		fprintf(stderr, "iocx-bench: %s: --armed: iocx_close refused "
			"%u of %u held connects\n", d->tag, refused,
			d->nheld);
	while (atomic_load(&d->held_closed) < d->nheld) {
		now = iocx__now_ns();
		if (now >= until) {
			fprintf(stderr, "iocx-bench: %s: --armed: only %u of "
				"%u held connects closed within %llu s of "
				"their cancel\n", d->tag,
				atomic_load(&d->held_closed), d->nheld,
				(unsigned long long)(RELEASE_WAIT_NS /
						     (1000 * NS_PER_MS)));
			return false;
		}
		os_event_wait(d->wake, until - now < 100 * NS_PER_MS
					       ? until - now
					       : 100 * NS_PER_MS);
	}
	return refused == 0;
}

/*
 * Once the engine is gone (every callback returned): each held connect
 * must have had exactly one on_connect, IOCX_E_CANCELLED, and exactly one
 * on_close, IOCX_OK (closed by our cancel, not by the engine's destroy).
 */
static bool check_held(struct iocx_drv *d)
{
	unsigned bad = 0, first = 0;

	for (unsigned i = d->nheld; i-- > 0;) {
		struct held *h = &d->held[i];

		if (atomic_load(&h->connects) == 1 &&
		    atomic_load(&h->status) == IOCX_E_CANCELLED &&
		    atomic_load(&h->closes) == 1 &&
		    atomic_load(&h->reason) == IOCX_OK)
			continue;
		bad++;
		first = i;
	}
	if (!bad)
		return true;
	fprintf(stderr, "iocx-bench: %s: --armed: %u of %u held connects did "
		"not end with one on_connect(IOCX_E_CANCELLED) and one "
		"on_close(IOCX_OK); the first, #%u, had %u on_connect (last "
		"%s) and %u on_close (last %s)\n", d->tag, bad, d->nheld,
		first + 1, atomic_load(&d->held[first].connects),
		iocx_error_name(atomic_load(&d->held[first].status)),
		atomic_load(&d->held[first].closes),
		iocx_error_name(atomic_load(&d->held[first].reason)));
	return false;
}

/* Destroy the engine (closing whatever is left), then free d. */
static void drv_free(struct iocx_drv *d)
{
	if (d->engine)
		iocx_engine_destroy(d->engine);
	free(d->held);
	free(d->replies);
	free(d->conns);
	os_refuser_close(d->refuser);
	os_event_destroy(d->wake);
	free(d);
}

/* The engine's attempts so far, and how many of them waited for a turn. */
static void pacing_counts(struct iocx_drv *d, uint64_t *attempts,
			  uint64_t *paced)
{
	struct iocx_stats st;

	*attempts = *paced = 0;
	if (iocx_engine_stats(d->engine, &st) != IOCX_OK)
		return;
	*attempts = st.connects_started + st.retries;
	*paced = st.paced;
}

/*
 * --rate, once the phase has started a connect in every slot: the
 * engine's counts from here on tell its cap hits.
 */
static void fill_started(struct iocx_drv *d)
{
	uint64_t attempts, paced;
	unsigned left = atomic_load(&d->fill_left);

	/* Counts down to 0 and stays there. */
	while (left > 0 && !atomic_compare_exchange_weak(&d->fill_left,
							 &left, left - 1))
		;
	if (!d->paced || left != 1)
		return;
	pacing_counts(d, &attempts, &paced);
	atomic_store(&d->attempts0, attempts);
	atomic_store(&d->paced0, paced);
}

/*
 * --rate: the starts that found no connect waiting for a turn.  After
 * the first fill every slot is either queued for its turn or in a
 * connect of its own, so an attempt that did not wait (stats.paced)
 * found all the other slots in connects: had its turn come a moment
 * earlier, nobody could have taken it.  The count leaves out the fill
 * (its first connect_burst attempts go at once by rule, and any turn
 * that fell due while it ran), and may count a start that went at once
 * early within the burst: it errs towards "not open loop".  A connect
 * that waited and then ended without an attempt (cancelled) makes it an
 * underestimate by one each; the bench cancels none while starting.
 */
static void record_cap_hits(struct iocx_drv *d)
{
	uint64_t attempts, paced, went;

	if (atomic_load(&d->fill_left) > 0)
		return;		/* the phase never filled its slots */
	pacing_counts(d, &attempts, &paced);
	attempts -= atomic_load(&d->attempts0);
	paced -= atomic_load(&d->paced0);
	went = attempts > paced ? attempts - paced : 0;
	phase_set_cap_hits(d->phase, went);
}

static int iocx_drv_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct iocx_engine_options eo;
	struct iocx_drv *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return IOCX_E_NOMEM;
	/* max_in_flight stays 0 (no cap): held connects count as in
	 * flight, and must not take the workload's room. */
	iocx_engine_options_init(&eo);
	eo.workers = cfg->workers;
	eo.batch = cfg->opt->batch;
	eo.batch_closes = cfg->opt->batch_closes;
	/* --rate: the engine's pacing, one attempt per period, early by
	 * at most --burst - 1 turns (default none; the --armed connects
	 * take their turns too, before the phase). */
	eo.connect_rate = (uint32_t)cfg->opt->rate;
	eo.connect_burst = cfg->opt->burst ? cfg->opt->burst : 1;
	d->paced = eo.connect_rate != 0;
	/* --target NAME:PORT: the engine resolves, asking --resolver. */
	eo.dns_servers = cfg->opt->resolver;
	rc = iocx_engine_create(&eo, &d->engine);
	if (rc != IOCX_OK) {
		free(d);
		return rc;
	}
	d->phase = p;
	snprintf(d->tag, sizeof(d->tag), "%s #%u", cfg->name, cfg->round);
	d->mode = cfg->opt->close_mode == BENCH_CLOSE_ABORT
			  ? IOCX_CLOSE_ABORT
			  : IOCX_CLOSE_GRACEFUL;
	d->req = (struct iocx_connect_request){
		.payload = cfg->opt->payload ? cfg->payload : NULL,
		.payload_len = cfg->opt->payload,
		/* One shared buffer that outlives the engine. */
		.payload_ownership = IOCX_PAYLOAD_BORROW,
		.flags = cfg->opt->fastopen ? IOCX_CONNECT_FASTOPEN : 0,
		.on_connect = on_connect,
		.on_close = on_close,
		/* The engine enforces --timeout itself (IOCX_E_TIMEDOUT). */
		.deadline_ms = (uint32_t)cfg->opt->timeout_ms,
	};
	if (bench_expects_reply(cfg->opt)) {
		d->replies = calloc(cfg->opt->concurrency, sizeof(*d->replies));
		d->conns = calloc(cfg->opt->concurrency, sizeof(*d->conns));
		if (!d->replies || !d->conns) {
			drv_free(d);
			return IOCX_E_NOMEM;
		}
		d->expect_bytes = cfg->opt->expect_bytes;
		d->until = cfg->opt->expect_until;
		d->until_len = cfg->opt->expect_until_len;
		if (d->until_len)
			until_prepare(d);
	}
	if (cfg->opt->armed) {
		rc = hold_armed(d, cfg->opt->armed, phase_family(p));
		if (rc != 0) {
			drv_free(d);
			return rc;
		}
		phase_set_armed(p, d->nheld);
	}
	atomic_store(&d->fill_left, cfg->opt->concurrency);
	*ctx = d;
	return 0;
}

static int iocx_drv_start(void *ctx, struct slot *s)
{
	struct iocx_drv *d = ctx;
	struct iocx_connect_request req = d->req;
	const struct bench_target *t = phase_next(d->phase);
	int rc;

	req.user = s;
	if (t->len) {
		req.remote = (const struct sockaddr *)&t->addr;
		req.remote_len = t->len;
	} else {
		req.host = t->host;
		req.port = t->port;
	}
	/* The handle is set before any callback runs, and before the
	 * phase can claim the slot (after this returns). */
	rc = iocx_connect(d->engine, &req,
			  d->conns ? &d->conns[s->index] : NULL);
	fill_started(d);
	return rc;
}

/*
 * --reply-timeout passed for s: close its connection.  The connect in
 * flight ends with on_connect(IOCX_E_CANCELLED) (or its real result),
 * a read session with on_recv(IOCX_E_CANCELLED); either way the outcome
 * is reported and phase_complete() counts it as timed out.  The handle
 * is still valid: the outcome waits for this call to return, and the
 * driver closes a connection only after reporting its outcome.
 */
static void iocx_drv_expire(void *ctx, struct slot *s)
{
	struct iocx_drv *d = ctx;

	iocx_close(d->conns[s->index], IOCX_CLOSE_ABORT);
}

/* Targets by name: hand the engine's resolution times to the phase. */
static void record_resolution(struct iocx_drv *d)
{
	struct iocx_histogram h = { 0 };
	int rc = iocx_engine_latency(d->engine, &h, IOCX_LATENCY_RESOLUTION);

	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx-bench: %s: resolution times: %s\n",
			d->tag, iocx_error_name(rc));
		phase_fail(d->phase);
		return;
	}
	phase_set_resolution(d->phase, &h);
}

static void iocx_drv_fini(void *ctx)
{
	struct iocx_drv *d = ctx;
	bool ok = true;

	if (d->paced)
		record_cap_hits(d);
	if (d->nheld)
		ok = release_held(d);
	if (phase_config_of(d->phase)->opt->by_name)
		record_resolution(d);
	iocx_engine_destroy(d->engine);
	d->engine = NULL;
	if (d->nheld && !(check_held(d) && ok))
		phase_fail(d->phase);
	drv_free(d);
}

static const char *iocx_drv_backend(void *ctx)
{
	return iocx_engine_backend(((struct iocx_drv *)ctx)->engine);
}

static unsigned iocx_drv_workers(void *ctx)
{
	return iocx_engine_workers(((struct iocx_drv *)ctx)->engine);
}

const struct driver iocx_driver = {
	.name = "iocx",
	.init = iocx_drv_init,
	.start = iocx_drv_start,
	.expire = iocx_drv_expire,	/* replies only: */
	.own_timeout = true,		/* deadline_ms does --timeout */
	.fini = iocx_drv_fini,
	.backend = iocx_drv_backend,
	.workers = iocx_drv_workers,
	.paces_itself = true,
};
