/*
 * One bench phase: slots, starts (closed loop or paced), deadlines,
 * warm-up, counters, intervals (see phase.h).
 *
 * Slot states, tagged with the generation of the connect in the slot:
 *
 *   FREE -> STARTING -> PENDING -> DONE -> FREE (release: next start)
 *              |           |
 *              |           +-> CLAIMED (deadline) -> DONE (outcome)
 *              +-> DONE (outcome before the start returned)
 *
 * The outcome exchanges the state to DONE; finding CLAIMED there means the
 * deadline check (drivers with expire() only) cancelled the connect, and
 * the outcome waits until expire() has returned before the driver closes
 * or reuses anything.  Only PENDING is claimable, so a connect whose start
 * has not returned is never expired.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "pacer.h"
#include "phase.h"

enum slot_state {
	SLOT_FREE,
	SLOT_STARTING,
	SLOT_PENDING,
	SLOT_CLAIMED,
	SLOT_DONE,
};

#define STATE(gen, st) ((uint64_t)(gen) << 8 | (uint64_t)(st))
#define ST(word) ((enum slot_state)((word) & 0xff))
#define GEN(word) ((word) >> 8)

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define INTERVAL_NS NS_PER_S
/* Nothing completed for this long with connects in flight: give up.
 * With a deadline, outcomes keep coming, so only a broken run stalls. */
#define STALL_NS (30 * NS_PER_S)
/* Starts per pacing pass, so intervals and deadlines still get a turn. */
#define PACE_BATCH 256

struct counters {
	_Atomic uint64_t attempts;
	_Atomic uint64_t ok;
	_Atomic uint64_t failed;
	_Atomic uint64_t timeouts;
	_Atomic uint64_t reply_timeouts;
	_Atomic uint64_t payload_bytes;
	_Atomic uint64_t fastopen;
	_Atomic uint64_t errors[IOCX_ERROR_COUNT];
};

struct phase {
	const struct phase_config *cfg;
	const struct bench_options *opt;
	const struct driver *drv;
	void *ctx;
	struct slot *slots;
	unsigned nslots;
	_Atomic uint64_t free_head;	/* tag << 32 | (index + 1) */
	bool paced;
	/* The deadline the control thread enforces through drv->expire
	 * (--reply-timeout or --timeout), from a connect's start; 0: none. */
	uint64_t deadline_ns;
	atomic_bool starved;		/* the pacer waits for a slot */
	_Atomic uint64_t started;	/* starts claimed */
	atomic_bool stop;		/* no more starts */
	_Atomic uint64_t live;		/* started, not yet closed */
	_Atomic uint64_t outcomes;	/* sequence number of outcomes */
	_Atomic uint64_t next_target;	/* round robin over cfg->targets */
	struct counters all;
	struct counters measured;
	struct iocx_hist *hist_all;	/* every success, for intervals */
	struct iocx_hist *hist;		/* successes after warm-up */
	struct iocx_hist *hist_release;	/* ... from start to release */
	struct iocx_hist *hist_ttfb;	/* --expect-*: their replies */
	struct iocx_hist *hist_reply;
	struct iocx_hist *hist_res;	/* by name: every resolution */
	uint64_t t0_ns;
	uint64_t warm_end_ns;		/* 0: no time-based warm-up */
	atomic_bool measuring;
	_Atomic uint64_t t_meas_ns;	/* start of the measured window */
	_Atomic uint64_t cpu_meas_ns;	/* client CPU at that moment */
	struct os_event *done;		/* cfg->wake, or our own */
	bool own_done;
	bool interrupted;		/* control thread only */
	atomic_bool failed;		/* phase_fail() */
	unsigned armed;			/* phase_set_armed() */
	struct iocx_histogram resolve;	/* phase_set_resolution() */
	struct pacer pacer;
	/* Starts due with every slot busy (control thread, or
	 * phase_set_cap_hits()), and the schedule index last counted + 1. */
	uint64_t cap_hits;
	uint64_t cap_at;
	/* Control thread only: the interval being built. */
	struct iocx_hist *iv_prev, *iv_cur, *iv_diff;
	struct iocx_hist *iv_mprev, *iv_mcur, *iv_mdiff;	/* of hist */
	struct iocx_hist *iv_rprev, *iv_rcur, *iv_rdiff;	/* of hist_res */
	uint64_t iv_t_ns;
	uint64_t iv_ok;
};

static uint64_t ld(const _Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void add(_Atomic uint64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static uint64_t client_cpu(const struct phase *p)
{
	return p->cfg->cpu_ns ? p->cfg->cpu_ns(p->cfg->cpu_arg) : os_cpu_ns();
}

/* ---- the free list (Treiber stack; the tag defeats ABA) ------------- */

static void push_free(struct phase *p, struct slot *s)
{
	uint64_t old = atomic_load(&p->free_head), new;

	do {
		atomic_store_explicit(&s->next_free, (uint32_t)old,
				      memory_order_relaxed);
		new = ((old >> 32) + 1) << 32 | (s->index + 1);
	} while (!atomic_compare_exchange_weak(&p->free_head, &old, new));
}

static struct slot *pop_free(struct phase *p)
{
	uint64_t old = atomic_load(&p->free_head), new;
	struct slot *s;

	do {
		if ((uint32_t)old == 0)
			return NULL;
		s = &p->slots[(uint32_t)old - 1];
		new = ((old >> 32) + 1) << 32 |
		      atomic_load_explicit(&s->next_free,
					   memory_order_relaxed);
	} while (!atomic_compare_exchange_weak(&p->free_head, &old, new));
	return s;
}

/* ---- accounting ------------------------------------------------------ */

static void count(struct counters *c, int status, bool timed_out,
		  bool reply, const struct outcome *o)
{
	add(&c->attempts, 1);
	if (o) {
		add(&c->payload_bytes, o->payload_sent);
		if (o->fastopen)
			add(&c->fastopen, 1);
	}
	if (timed_out)
		status = IOCX_E_TIMEDOUT;
	if (status == IOCX_OK) {
		add(&c->ok, 1);
		return;
	}
	add(&c->failed, 1);
	if (status == IOCX_E_TIMEDOUT)
		add(&c->timeouts, 1);
	/* The phase's deadline bounds the reply when one is read. */
	if (timed_out && reply)
		add(&c->reply_timeouts, 1);
	if (status > 0 || status <= -IOCX_ERROR_COUNT)
		status = IOCX_E_SYSTEM;
	add(&c->errors[-status], 1);
}

/* The measured window opens at t (once). */
static void begin_measuring(struct phase *p, uint64_t t)
{
	if (atomic_exchange(&p->measuring, true))
		return;
	atomic_store(&p->t_meas_ns, t);
	atomic_store(&p->cpu_meas_ns, client_cpu(p));
}

/*
 * One outcome: a completion (o set) or a synchronous failure (o NULL).
 * Returns whether its latency went into the measured histogram.
 */
static bool record(struct phase *p, int status, bool timed_out,
		   const struct outcome *o, uint64_t latency_ns)
{
	uint64_t seq = atomic_fetch_add(&p->outcomes, 1);
	uint64_t warm_n = p->opt->warmup_connects;
	bool ok = status == IOCX_OK && !timed_out;
	bool measured = seq >= warm_n;
	bool reply = p->hist_reply != NULL;

	count(&p->all, status, timed_out, reply, o);
	if (ok)
		iocx__hist_record(p->hist_all, latency_ns);
	if (p->hist_res && o && o->resolve_ns)
		iocx__hist_record(p->hist_res, o->resolve_ns);
	if (warm_n && seq + 1 == warm_n)
		begin_measuring(p, iocx__now_ns());
	if (measured && p->warm_end_ns)
		measured = iocx__now_ns() >= p->warm_end_ns;
	if (!measured)
		return false;
	count(&p->measured, status, timed_out, reply, o);
	if (!ok)
		return false;
	iocx__hist_record(p->hist, latency_ns);
	if (p->hist_reply) {
		iocx__hist_record(p->hist_ttfb, o->ttfb_ns);
		iocx__hist_record(p->hist_reply, o->reply_ns);
	}
	return true;
}

/* ---- starts ---------------------------------------------------------- */

static bool starts_over(struct phase *p)
{
	return atomic_load(&p->stop) ||
	       (p->opt->connects && ld(&p->started) >= p->opt->connects);
}

static void live_drop(struct phase *p)
{
	if (atomic_fetch_sub(&p->live, 1) == 1 && starts_over(p))
		os_event_set(p->done);
}

/* Take the right to start one more connect (closed loop). */
static bool claim_start(struct phase *p)
{
	if (atomic_load(&p->stop))
		return false;
	if (!p->opt->connects) {
		add(&p->started, 1);
		return true;
	}
	return atomic_fetch_add(&p->started, 1) < p->opt->connects;
}

/* Start one connect in free slot s.  False: it failed synchronously. */
static bool start_one(struct phase *p, struct slot *s)
{
	uint64_t gen = GEN(atomic_load(&s->state)) + 1;
	uint64_t starting = STATE(gen, SLOT_STARTING);
	int rc;

	atomic_store(&s->expired, false);
	atomic_store(&s->measured_ok, false);
	atomic_store_explicit(&s->t_start_ns, iocx__now_ns(),
			      memory_order_relaxed);
	atomic_store(&s->state, starting);
	add(&p->live, 1);
	rc = p->drv->start(p->ctx, s);
	if (rc == 0) {
		/* Fails when the outcome already arrived: nothing to do. */
		atomic_compare_exchange_strong(&s->state, &starting,
					       STATE(gen, SLOT_PENDING));
		return true;
	}
	atomic_store(&s->state, STATE(gen, SLOT_FREE));
	record(p, rc, false, NULL, 0);
	live_drop(p);
	return false;
}

/* Closed loop: keep s busy until the workload has started in full. */
static void start_in(struct phase *p, struct slot *s)
{
	while (claim_start(p)) {
		if (start_one(p, s))
			return;
	}
	if (ld(&p->live) == 0)
		os_event_set(p->done);
}

/*
 * Paced, no slot free: if the next start is due, the cap binds (counted
 * once per start of the schedule).
 */
static void count_cap_hit(struct phase *p, uint64_t now)
{
	uint64_t i = p->pacer.next;

	if (pacer_due_ns(&p->pacer, i) <= now && p->cap_at != i + 1) {
		p->cap_hits++;
		p->cap_at = i + 1;
	}
}

/*
 * Paced: start what is due at now, while slots are free.  Returns how
 * long until the next start is due (UINT64_MAX: waiting for a slot, or
 * nothing left to start).
 */
static uint64_t pace(struct phase *p, uint64_t now)
{
	uint64_t wait;

	for (int n = 0; n < PACE_BATCH; n++) {
		struct slot *s;

		if (starts_over(p))
			return UINT64_MAX;
		s = pop_free(p);
		if (!s) {
			atomic_store(&p->starved, true);
			s = pop_free(p);	/* a release may have raced */
			if (!s) {
				count_cap_hit(p, now);
				return UINT64_MAX;
			}
			atomic_store(&p->starved, false);
		}
		if (!pacer_poll(&p->pacer, now, &wait)) {
			push_free(p, s);
			return wait;
		}
		add(&p->started, 1);
		if (!start_one(p, s))
			push_free(p, s);
		now = iocx__now_ns();
	}
	return 0;
}

/* ---- the driver-facing calls ---------------------------------------- */

/* See phase.h. */
bool phase_complete(struct slot *s, const struct outcome *o)
{
	uint64_t w = atomic_load(&s->state);
	uint64_t latency = iocx__now_ns() -
			   atomic_load_explicit(&s->t_start_ns,
						memory_order_relaxed);
	bool timed_out;

	w = atomic_exchange(&s->state, STATE(GEN(w), SLOT_DONE));
	timed_out = ST(w) == SLOT_CLAIMED;
	/* The deadline check is inside expire(): let it finish before
	 * the caller closes or reuses anything of this connect. */
	while (timed_out && !atomic_load(&s->expired))
		os_yield();
	atomic_store(&s->measured_ok,
		     record(s->phase, o->status, timed_out, o, latency));
	return timed_out;
}

/* See phase.h. */
void phase_release(struct slot *s)
{
	struct phase *p = s->phase;

	/* Before the slot is free: its next start moves t_start_ns. */
	if (atomic_exchange(&s->measured_ok, false))
		iocx__hist_record(p->hist_release,
				  iocx__now_ns() -
					  atomic_load_explicit(
						  &s->t_start_ns,
						  memory_order_relaxed));
	atomic_store(&s->state, STATE(GEN(atomic_load(&s->state)), SLOT_FREE));
	if (!p->paced) {
		start_in(p, s);
		return;
	}
	push_free(p, s);
	if (atomic_load(&p->starved) && atomic_exchange(&p->starved, false))
		os_event_set(p->done);
}

/* See phase.h. */
void phase_closed(struct phase *p)
{
	live_drop(p);
}

/* See phase.h. */
bool phase_wait_closed(struct phase *p, unsigned timeout_ms)
{
	uint64_t give_up = iocx__now_ns() + timeout_ms * NS_PER_MS;

	while (ld(&p->live) > 0) {
		if (iocx__now_ns() >= give_up)
			return false;
		os_yield();
	}
	return true;
}

/* See phase.h. */
void phase_fail(struct phase *p)
{
	atomic_store(&p->failed, true);
}

/* See phase.h. */
void phase_set_armed(struct phase *p, unsigned n)
{
	p->armed = n;
}

/* See phase.h. */
void phase_set_cap_hits(struct phase *p, uint64_t n)
{
	p->cap_hits = n;
}

/* See phase.h. */
void phase_set_resolution(struct phase *p, const struct iocx_histogram *h)
{
	p->resolve = *h;
	p->resolve.buckets = NULL;
	p->resolve.bucket_cap = 0;
}

/* See phase.h. */
const struct bench_target *phase_next(struct phase *p)
{
	const struct bench_target *t = p->cfg->targets;

	if (p->cfg->ntargets > 1)
		t += atomic_fetch_add_explicit(&p->next_target, 1,
					       memory_order_relaxed) %
		     p->cfg->ntargets;
	return t;
}

/* See phase.h. */
const struct sockaddr *phase_next_target(struct phase *p, size_t *len)
{
	const struct bench_target *t = phase_next(p);

	*len = t->len;
	return (const struct sockaddr *)&t->addr;
}

/* See phase.h. */
int phase_family(const struct phase *p)
{
	return p->cfg->targets[0].addr.ss_family;
}

/* See phase.h. */
const struct phase_config *phase_config_of(const struct phase *p)
{
	return p->cfg;
}

/* See phase.h. */
void *phase_driver_ctx(const struct phase *p)
{
	return p->ctx;
}

/* ---- the control thread --------------------------------------------- */

/* Claim and expire every connect pending for longer than the deadline. */
static void expire_overdue(struct phase *p, uint64_t now)
{
	uint64_t limit = p->deadline_ns;

	for (unsigned i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		uint64_t w = atomic_load(&s->state);
		uint64_t t = atomic_load_explicit(&s->t_start_ns,
						  memory_order_relaxed);

		/* t may belong to a newer connect: then the CAS fails. */
		if (ST(w) != SLOT_PENDING || now < t || now - t < limit)
			continue;
		if (!atomic_compare_exchange_strong(
			    &s->state, &w, STATE(GEN(w), SLOT_CLAIMED)))
			continue;
		p->drv->expire(p->ctx, s);
		atomic_store(&s->expired, true);
	}
}

static void emit_interval(struct phase *p, uint64_t now, bool last)
{
	struct phase_interval iv = {
		.name = p->cfg->name,
		.round = p->cfg->round,
		.last = last,
	};
	uint64_t ok = ld(&p->all.ok);
	struct iocx_hist *t;

	iv.t_s = (double)(now - p->t0_ns) / NS_PER_S;
	iv.length_s = (double)(now - p->iv_t_ns) / NS_PER_S;
	iv.connects = ok - p->iv_ok;
	iv.connects_per_sec = iv.length_s > 0 ? iv.connects / iv.length_s : 0;
	iv.connects_total = ok;
	iv.errors_total = ld(&p->all.failed);
	iv.in_flight = ld(&p->live);
	iv.warmup = !atomic_load(&p->measuring);

	iocx__hist_snapshot(p->hist_all, p->iv_cur);
	iocx__hist_snapshot(p->iv_cur, p->iv_diff);
	iocx__hist_subtract(p->iv_diff, p->iv_prev);
	iv.p50_ns = iocx__hist_percentile(p->iv_diff, 50);
	iv.p99_ns = iocx__hist_percentile(p->iv_diff, 99);
	t = p->iv_prev;
	p->iv_prev = p->iv_cur;
	p->iv_cur = t;
	iv.end_ns = now;
	iocx__hist_snapshot(p->hist, p->iv_mcur);
	iocx__hist_snapshot(p->iv_mcur, p->iv_mdiff);
	iocx__hist_subtract(p->iv_mdiff, p->iv_mprev);
	iv.measured = p->iv_mdiff;
	t = p->iv_mprev;
	p->iv_mprev = p->iv_mcur;
	p->iv_mcur = t;
	if (p->hist_res) {
		iocx__hist_snapshot(p->hist_res, p->iv_rcur);
		iocx__hist_snapshot(p->iv_rcur, p->iv_rdiff);
		iocx__hist_subtract(p->iv_rdiff, p->iv_rprev);
		iv.resolution = p->iv_rdiff;
		iv.resolved = iocx__hist_count(p->iv_rdiff);
		iv.resolve_p50_ns = iocx__hist_percentile(p->iv_rdiff, 50);
		iv.resolve_p99_ns = iocx__hist_percentile(p->iv_rdiff, 99);
		t = p->iv_rprev;
		p->iv_rprev = p->iv_rcur;
		p->iv_rcur = t;
	}
	p->iv_t_ns = now;
	p->iv_ok = ok;

	/* A sliver of an interval at the very end says nothing. */
	if (last && iv.connects == 0 && iv.length_s < 0.05)
		return;
	if (p->cfg->on_interval)
		p->cfg->on_interval(p, &iv, p->cfg->interval_arg);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * At the first sight of an interruption, stop starting and give what is
 * in flight until the returned time; UINT64_MAX while not interrupted.
 */
static uint64_t check_interrupt(struct phase *p, uint64_t now,
				uint64_t grace_end)
{
	if (grace_end != UINT64_MAX || !p->cfg->interrupted ||
	    !atomic_load(p->cfg->interrupted))
		return grace_end;
	p->interrupted = true;
	atomic_store(&p->stop, true);
	return now + p->opt->grace_ms * NS_PER_MS;
}

/* Drive the phase until everything started has closed (or a stall). */
static bool control(struct phase *p)
{
	const struct bench_options *o = p->opt;
	uint64_t scan_ns = min_u64(p->deadline_ns / 8, 10 * NS_PER_MS);
	uint64_t end = o->duration_ms ? p->t0_ns + o->duration_ms * NS_PER_MS
				      : UINT64_MAX;
	uint64_t next_tick = p->t0_ns + INTERVAL_NS;
	uint64_t next_scan = p->t0_ns + scan_ns;
	uint64_t seen = 0, progress = p->t0_ns, grace_end = UINT64_MAX;
	uint64_t stall = (p->deadline_ns > o->timeout_ms * NS_PER_MS
				  ? p->deadline_ns
				  : o->timeout_ms * NS_PER_MS) +
			 10 * NS_PER_S;

	if (stall < STALL_NS)
		stall = STALL_NS;

	if (scan_ns < NS_PER_MS)
		scan_ns = NS_PER_MS;
	for (;;) {
		uint64_t now = iocx__now_ns(), wake, n;

		if (now >= end)
			atomic_store(&p->stop, true);
		grace_end = check_interrupt(p, now, grace_end);
		/* What is still in flight is the driver's fini() to cancel. */
		if (now >= grace_end)
			return true;
		if (p->warm_end_ns && now >= p->warm_end_ns)
			begin_measuring(p, p->warm_end_ns);
		if (now >= next_tick) {
			emit_interval(p, now, false);
			next_tick += INTERVAL_NS;
			if (next_tick <= now)
				next_tick = now + INTERVAL_NS;
		}
		wake = next_tick;
		if (p->paced && !atomic_load(&p->stop)) {
			uint64_t w = pace(p, now);

			if (w != UINT64_MAX)
				wake = min_u64(wake, now + w);
		}
		if (p->deadline_ns) {
			if (now >= next_scan) {
				expire_overdue(p, now);
				next_scan = now + scan_ns;
			}
			wake = min_u64(wake, next_scan);
		}
		if (starts_over(p) && ld(&p->live) == 0)
			return true;
		n = ld(&p->outcomes);
		if (n != seen) {
			seen = n;
			progress = now;
		} else if (ld(&p->live) > 0 && now - progress > stall) {
			fprintf(stderr, "iocx-bench: %s: nothing completed in "
				"%llu s with %llu connects in flight; giving "
				"up\n", p->cfg->name,
				(unsigned long long)(stall / NS_PER_S),
				(unsigned long long)ld(&p->live));
			return false;
		}
		if (!atomic_load(&p->stop))
			wake = min_u64(wake, end);
		if (p->warm_end_ns && !atomic_load(&p->measuring))
			wake = min_u64(wake, p->warm_end_ns);
		wake = min_u64(wake, grace_end);
		now = iocx__now_ns();
		os_event_wait(p->done, wake > now ? wake - now : 0);
	}
}

static void snapshot_counts(const struct counters *c, struct phase_counts *out)
{
	out->attempts = ld(&c->attempts);
	out->ok = ld(&c->ok);
	out->failed = ld(&c->failed);
	out->timeouts = ld(&c->timeouts);
	out->reply_timeouts = ld(&c->reply_timeouts);
	out->payload_bytes = ld(&c->payload_bytes);
	out->fastopen = ld(&c->fastopen);
	for (int i = 0; i < IOCX_ERROR_COUNT; i++)
		out->errors[i] = ld(&c->errors[i]);
}

static struct iocx_hist *hist_new(void)
{
	struct iocx_hist *h = malloc(sizeof(*h));

	if (h)
		iocx__hist_init(h);
	return h;
}

static void phase_free(struct phase *p)
{
	if (p->own_done)
		os_event_destroy(p->done);
	free(p->slots);
	free(p->hist_all);
	free(p->hist);
	free(p->hist_release);
	free(p->hist_ttfb);
	free(p->hist_reply);
	free(p->hist_res);
	free(p->iv_rprev);
	free(p->iv_rcur);
	free(p->iv_rdiff);
	free(p->iv_prev);
	free(p->iv_cur);
	free(p->iv_diff);
	free(p->iv_mprev);
	free(p->iv_mcur);
	free(p->iv_mdiff);
	free(p);
}

static struct phase *phase_new(const struct phase_config *cfg,
			       const struct driver *drv)
{
	struct phase *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->opt = cfg->opt;
	p->drv = drv;
	p->nslots = cfg->opt->concurrency;
	/* A driver that paces by itself runs closed-loop under --rate. */
	p->paced = cfg->opt->rate > 0 && !drv->paces_itself;
	if (drv->expire && bench_expects_reply(cfg->opt))
		p->deadline_ns = cfg->opt->reply_timeout_ms * NS_PER_MS;
	else if (drv->expire && !drv->own_timeout)
		p->deadline_ns = cfg->opt->timeout_ms * NS_PER_MS;
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->hist_all = hist_new();
	p->hist = hist_new();
	p->hist_release = hist_new();
	if (bench_expects_reply(cfg->opt)) {
		p->hist_ttfb = hist_new();
		p->hist_reply = hist_new();
		if (!p->hist_ttfb || !p->hist_reply) {
			phase_free(p);
			return NULL;
		}
	}
	if (cfg->opt->by_name) {
		p->hist_res = hist_new();
		p->iv_rprev = hist_new();
		p->iv_rcur = hist_new();
		p->iv_rdiff = hist_new();
		if (!p->hist_res || !p->iv_rprev || !p->iv_rcur ||
		    !p->iv_rdiff) {
			phase_free(p);
			return NULL;
		}
	}
	p->iv_prev = hist_new();
	p->iv_cur = hist_new();
	p->iv_diff = hist_new();
	p->iv_mprev = hist_new();
	p->iv_mcur = hist_new();
	p->iv_mdiff = hist_new();
	p->own_done = cfg->wake == NULL;
	p->done = p->own_done ? os_event_create() : cfg->wake;
	if (!p->slots || !p->hist_all || !p->hist || !p->hist_release ||
	    !p->iv_prev ||
	    !p->iv_cur || !p->iv_diff || !p->iv_mprev || !p->iv_mcur ||
	    !p->iv_mdiff || !p->done) {
		phase_free(p);
		return NULL;
	}
	for (unsigned i = 0; i < p->nslots; i++) {
		p->slots[i].index = i;
		p->slots[i].phase = p;
	}
	return p;
}

/* See phase.h. */
int phase_run(const struct phase_config *cfg, const struct driver *drv,
	      struct phase_result *out)
{
	const struct bench_options *o = cfg->opt;
	struct phase *p = phase_new(cfg, drv);
	uint64_t t_end, cpu_end, t_meas, cpu_meas;
	bool finished;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!p) {
		fprintf(stderr, "iocx-bench: out of memory\n");
		return IOCX_E_NOMEM;
	}
	rc = drv->init(p, &p->ctx);
	if (rc != 0) {
		fprintf(stderr, "iocx-bench: %s: cannot start: %s\n",
			cfg->name, iocx_strerror(rc));
		phase_free(p);
		return rc;
	}
	out->backend = drv->backend(p->ctx);
	out->workers = drv->workers(p->ctx);

	p->t0_ns = iocx__now_ns();
	p->iv_t_ns = p->t0_ns;
	if (o->warmup_ms)
		p->warm_end_ns = p->t0_ns + o->warmup_ms * NS_PER_MS;
	else if (!o->warmup_connects)
		begin_measuring(p, p->t0_ns);
	if (p->paced) {
		pacer_init(&p->pacer, o->rate, p->t0_ns);
		for (unsigned i = p->nslots; i-- > 0;)
			push_free(p, &p->slots[i]);
	} else {
		for (unsigned i = 0; i < p->nslots && !starts_over(p); i++)
			start_in(p, &p->slots[i]);
	}

	finished = control(p);
	t_end = iocx__now_ns();
	cpu_end = client_cpu(p);
	/* A warm-up that never ended leaves an empty window. */
	begin_measuring(p, t_end);
	emit_interval(p, t_end, true);
	atomic_store(&p->stop, true);
	drv->fini(p->ctx);		/* cancels what a stall left behind */

	t_meas = atomic_load(&p->t_meas_ns);
	cpu_meas = atomic_load(&p->cpu_meas_ns);
	out->name = cfg->name;
	out->round = cfg->round;
	snapshot_counts(&p->measured, &out->measured);
	snapshot_counts(&p->all, &out->total);
	out->seconds = t_end > t_meas ? (double)(t_end - t_meas) / NS_PER_S
				      : 0;
	out->connects_per_sec = out->seconds > 0
					? out->measured.ok / out->seconds
					: 0;
	out->cpu_ns = cpu_end > cpu_meas ? cpu_end - cpu_meas : 0;
	out->starts_per_sec = out->seconds > 0
				      ? out->measured.attempts / out->seconds
				      : 0;
	out->pacer_resets = p->paced ? p->pacer.resets : 0;
	out->cap_hits = p->cap_hits;
	out->engine_paced = o->rate > 0 && drv->paces_itself;
	out->stalled = !finished;
	out->interrupted = p->interrupted;
	out->failed = atomic_load(&p->failed);
	out->armed = p->armed;
	out->resolve = p->resolve;
	out->hist = p->hist;
	out->hist_release = p->hist_release;
	out->hist_ttfb = p->hist_ttfb;
	out->hist_reply = p->hist_reply;
	out->hist_resolve = p->hist_res;
	p->hist_res = NULL;
	p->hist = NULL;
	p->hist_release = NULL;
	p->hist_ttfb = NULL;
	p->hist_reply = NULL;
	phase_free(p);
	return 0;
}

/* See phase.h. */
void phase_result_free(struct phase_result *r)
{
	free(r->hist);
	free(r->hist_release);
	free(r->hist_resolve);
	free(r->hist_ttfb);
	free(r->hist_reply);
	r->hist = NULL;
	r->hist_release = NULL;
	r->hist_ttfb = NULL;
	r->hist_reply = NULL;
}
