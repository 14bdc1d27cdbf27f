/*
 * Engine lifecycle, worker threads and event dispatch.
 *
 * Workers block in backend->wait() and hand every event to its connection
 * (conn.c).  Shutdown never relies on closing the completion queue (under
 * Wine that does not wake waiters): destroy posts a SHUTDOWN request per
 * live connection, waits until every on_close has returned, releases the
 * handles the program never released (reap_unreleased), waits until the
 * last connection is freed, then posts one STOP per worker and joins them.
 *
 * A post can fail (Windows: PostQueuedCompletionStatus out of memory).
 * Destroy tries each one IOCX__POST_TRIES times, then takes a path that
 * needs none: a SHUTDOWN it could not post is left marked on the
 * connection for the workers to deliver after their next wait (which ends
 * within WAIT_SLICE_MS without any event), and e->stopping makes a worker
 * whose wait timed out exit without its STOP.
 */
#include <assert.h>
#include <string.h>

#include "abi.h"
#include "conn.h"
#include "engine.h"
#include "name_cache.h"

#define DEFAULT_BATCH 64
#define MAX_BATCH 4096
#define WAIT_SLICE_MS 1000
#define WAIT_SLICE_NS (WAIT_SLICE_MS * 1000000ull)
#define DEFAULT_RESOLUTION_DELAY_MS 50
#define DEFAULT_ATTEMPT_DELAY_MS 250
#define MIN_ATTEMPT_DELAY_MS 100
#define MAX_ATTEMPT_DELAY_MS 2000

/* The worker this thread is, if any.  A worker recomputes its own
 * engine's wait timeout by itself (not another engine's), and bumps its
 * own counter set. */
static IOCX_THREAD_LOCAL struct iocx_worker *this_worker;

/* See iocx.h. */
void iocx_engine_options_init(struct iocx_engine_options *opts)
{
	if (opts)
		memset(opts, 0, sizeof(*opts));
}

static void worker_main(void *arg);

static void live_list_init(struct iocx_live_list *l)
{
	iocx__mutex_init(&l->lock);
	iocx__cond_init(&l->empty);
	l->conns = NULL;
}

static void live_list_destroy(struct iocx_live_list *l)
{
	iocx__cond_destroy(&l->empty);
	iocx__mutex_destroy(&l->lock);
}

static int start_workers(iocx_engine *e)
{
	size_t bytes = sizeof(*e->workers) * e->opts.workers;

	if (bytes == 0)
		return IOCX_OK;
	e->workers = iocx__alloc(bytes);
	if (!e->workers)
		return IOCX_E_NOMEM;
	memset(e->workers, 0, bytes);
	for (; e->nthreads < e->opts.workers; e->nthreads++) {
		struct iocx_worker *w = &e->workers[e->nthreads];

		w->engine = e;
		w->index = e->nthreads;
		w->events = iocx__alloc(sizeof(*w->events) * e->opts.batch);
		if (!w->events)
			return IOCX_E_NOMEM;
		if (iocx__latency_attach(&w->stats) != IOCX_OK) {
			iocx__free(w->events);
			return IOCX_E_NOMEM;
		}
		live_list_init(&w->live);
		if (iocx__thread_start(&w->thread, worker_main, w) != 0) {
			live_list_destroy(&w->live);
			iocx__latency_detach(&w->stats);
			iocx__free(w->events);
			return IOCX_E_SYSTEM;
		}
	}
	return IOCX_OK;
}

/* Post kind for c, trying IOCX__POST_TRIES times; false if all failed. */
static bool post_tries(iocx_engine *e, enum iocx_event_kind kind,
		       struct iocx_conn *c)
{
	for (unsigned i = 0; i < IOCX__POST_TRIES; i++) {
		if (e->backend->post(e, kind, c) == IOCX_OK)
			return true;
	}
	return false;
}

/*
 * Tell every running worker to exit, wait for all, free their buffers.
 * The STOPs only wake them: one that cannot be posted leaves its worker
 * to see e->stopping when its wait times out.
 */
static void stop_workers(iocx_engine *e)
{
	atomic_store(&e->stopping, true);
	for (unsigned i = 0; i < e->nthreads; i++)
		post_tries(e, IOCX_EV_STOP, NULL);
	for (unsigned i = 0; i < e->nthreads; i++) {
		iocx__thread_join(&e->workers[i].thread);
		live_list_destroy(&e->workers[i].live);
		iocx__latency_detach(&e->workers[i].stats);
		iocx__free(e->workers[i].events);
	}
	iocx__free(e->workers);
	e->workers = NULL;
	e->nthreads = 0;
}

/* See engine.h. */
int iocx__engine_create_with(const struct iocx_backend *backend,
			     const struct iocx_engine_options *opts,
			     unsigned flags, iocx_engine **out)
{
	struct iocx_engine_options o;
	iocx_engine *e;
	int rc;

	if (!backend || !out)
		return IOCX_E_INVAL;
	iocx_engine_options_init(&o);
	if (opts)
		o = *opts;
	if (o.batch > MAX_BATCH || o.recv_buffer > IOCX_MAX_PAYLOAD ||
	    (uint64_t)o.send_chunk > IOCX_MAX_SEND_CHUNK ||
	    o.resolve_cache > IOCX_MAX_RESOLVE_CACHE ||
	    !iocx__reserved_zero(o.reserved, IOCX__NWORDS(o.reserved)))
		return IOCX_E_INVAL;
	if ((o.resolver && (!o.resolver->start || !o.resolver->cancel)) ||
	    (o.prefer_family != 0 && o.prefer_family != AF_INET &&
	     o.prefer_family != AF_INET6))
		return IOCX_E_INVAL;
	/* A backend asked for by name must be this one ("auto": any). */
	if (o.backend && strcmp(o.backend, "auto") != 0 &&
	    strcmp(o.backend, backend->name) != 0)
		return IOCX_E_NOTSUP;
	o.backend = backend->name;	/* never the caller's string */
	if (o.workers == 0)
		o.workers = iocx__cpu_count();
	if (o.batch == 0)
		o.batch = DEFAULT_BATCH;
	if (o.connect_payload_cap == 0)
		o.connect_payload_cap = IOCX_DEFAULT_CONNECT_PAYLOAD_CAP;
	if (o.recv_buffer == 0)
		o.recv_buffer = IOCX_DEFAULT_RECV_BUFFER;
	/* Happy Eyeballs: RFC 8305's defaults and its bounds for the
	 * Connection Attempt Delay (section 5). */
	if (o.prefer_family == 0)
		o.prefer_family = AF_INET6;
	if (o.resolution_delay_ms == 0)
		o.resolution_delay_ms = DEFAULT_RESOLUTION_DELAY_MS;
	if (o.attempt_delay_ms == 0)
		o.attempt_delay_ms = DEFAULT_ATTEMPT_DELAY_MS;
	if (o.attempt_delay_ms < MIN_ATTEMPT_DELAY_MS)
		o.attempt_delay_ms = MIN_ATTEMPT_DELAY_MS;
	if (o.attempt_delay_ms > MAX_ATTEMPT_DELAY_MS)
		o.attempt_delay_ms = MAX_ATTEMPT_DELAY_MS;
	if (o.send_chunk == 0)
		o.send_chunk = IOCX_DEFAULT_SEND_CHUNK;
	if (flags & IOCX__ENGINE_MANUAL)
		o.workers = 0;

	e = iocx__alloc(sizeof(*e));
	if (!e)
		return IOCX_E_NOMEM;
	memset(e, 0, sizeof(*e));
	e->backend = backend;
	e->opts = o;
	e->flags = flags;
	iocx__mutex_init(&e->lock);
	live_list_init(&e->live_shared);
	iocx__mutex_init(&e->timer_lock);
	iocx__mutex_init(&e->latency_lock);
	iocx__admission_init(e);
	iocx__cond_init(&e->idle);
	iocx__mutex_init(&e->drain_lock);
	iocx__cond_init(&e->drained);
	for (unsigned i = 0; i < IOCX_REQ_LOCKS; i++)
		iocx__mutex_init(&e->req_locks[i]);
	e->clock = iocx__now_ns;
	atomic_init(&e->shutting_down, false);
	atomic_init(&e->callers, 0);
	atomic_init(&e->shutdowns_missed, 0);
	atomic_init(&e->stopping, false);

	rc = iocx__latency_attach(&e->stats);
	if (rc != IOCX_OK)
		goto err_sync;
	rc = iocx__engine_copy_sources(e);
	if (rc != IOCX_OK)
		goto err_sync;
	if (o.resolve_cache) {
		rc = iocx__name_cache_create(o.resolve_cache, &e->names);
		if (rc != IOCX_OK)
			goto err_sync;
	}
	rc = backend->engine_init(e);
	if (rc != IOCX_OK)
		goto err_sync;
	iocx__alloc_pin();
	rc = start_workers(e);
	if (rc != IOCX_OK)
		goto err_workers;
	*out = e;
	return IOCX_OK;

err_workers:
	if (e->workers)
		stop_workers(e);
	iocx__alloc_unpin();
	backend->engine_fini(e);
err_sync:
	iocx__name_cache_destroy(e->names);
	iocx__latency_detach(&e->stats);
	iocx__free(e->sources);
	iocx__cond_destroy(&e->drained);
	iocx__mutex_destroy(&e->drain_lock);
	for (unsigned i = 0; i < IOCX_REQ_LOCKS; i++)
		iocx__mutex_destroy(&e->req_locks[i]);
	iocx__cond_destroy(&e->idle);
	iocx__admission_fini(e);
	iocx__mutex_destroy(&e->latency_lock);
	iocx__mutex_destroy(&e->timer_lock);
	live_list_destroy(&e->live_shared);
	iocx__mutex_destroy(&e->lock);
	iocx__free(e);
	return rc;
}

/*
 * One of e's own workers: a callback (or timer) of e starting a connect.
 * Destroy cannot finish while a callback of e runs (its connection is
 * live) and joins the workers only after that, so such a caller needs no
 * count in e->callers.
 */
static bool on_own_worker(const iocx_engine *e)
{
	return this_worker && this_worker->engine == e;
}

/* See engine.h. */
bool iocx__engine_enter(iocx_engine *e)
{
	if (on_own_worker(e))
		return !atomic_load(&e->shutting_down);
	/* Sequentially consistent, paired with destroy: either destroy
	 * sees our count, or we see its flag. */
	atomic_fetch_add(&e->callers, 1);
	if (!atomic_load(&e->shutting_down))
		return true;
	iocx__engine_leave(e);
	return false;
}

/*
 * See engine.h.  Destroy frees the engine once it sees callers at 0 under
 * e->lock, so the drop that may reach 0 is made under e->lock (and wakes
 * destroy), and every other drop is a compare-and-swap that leaves at
 * least 1 behind: either way this thread is done with e before destroy
 * can see 0.  (A drop to 0 outside the lock, followed by locking to wake
 * destroy, would lock a freed engine if destroy got there first.)
 */
void iocx__engine_leave(iocx_engine *e)
{
	size_t cur;

	if (on_own_worker(e))
		return;
	cur = atomic_load(&e->callers);
	while (cur > 1) {
		if (atomic_compare_exchange_weak(&e->callers, &cur, cur - 1))
			return;
	}
	iocx__mutex_lock(&e->lock);
	if (atomic_fetch_sub(&e->callers, 1) == 1)
		iocx__cond_broadcast(&e->idle);
	iocx__mutex_unlock(&e->lock);
}

/*
 * Post a SHUTDOWN request for every connection of list l.  Each request
 * holds a reference, so a connection cannot be freed before its request
 * is seen.  A connection whose last reference is already gone is skipped:
 * it is on its way out of the list.  One whose post keeps failing is
 * marked instead (see sweep_shutdowns), keeping the reference.  The count
 * goes up before the mark, so it never reads below the marks.
 */
static void shutdown_list(iocx_engine *e, struct iocx_live_list *l)
{
	iocx__mutex_lock(&l->lock);
	for (struct iocx_conn *c = l->conns; c; c = c->next) {
		if (!iocx__conn_tryref(c) ||
		    post_tries(e, IOCX_EV_SHUTDOWN, c))
			continue;
		atomic_fetch_add(&e->shutdowns_missed, 1);
		atomic_store(&c->shutdown_missed, true);
	}
	iocx__mutex_unlock(&l->lock);
}

/* Take a connection of l marked by shutdown_list, or NULL. */
static struct iocx_conn *take_missed(struct iocx_live_list *l)
{
	struct iocx_conn *c;

	iocx__mutex_lock(&l->lock);
	for (c = l->conns; c; c = c->next) {
		if (atomic_exchange(&c->shutdown_missed, false))
			break;
	}
	iocx__mutex_unlock(&l->lock);
	return c;
}

/*
 * On a worker (or a manual engine's pump): deliver the SHUTDOWN requests
 * destroy could not post, as if their events had arrived.  A marked
 * connection holds the request's reference, so it stays listed until
 * it is taken here.
 */
static void sweep_shutdowns(iocx_engine *e)
{
	struct iocx_event ev = { .kind = IOCX_EV_SHUTDOWN };

	while (atomic_load(&e->shutdowns_missed) > 0) {
		ev.conn = take_missed(&e->live_shared);
		for (unsigned i = 0; !ev.conn && i < e->nthreads; i++)
			ev.conn = take_missed(&e->workers[i].live);
		if (!ev.conn)
			return;		/* taken by another worker */
		atomic_fetch_sub(&e->shutdowns_missed, 1);
		iocx__conn_handle(ev.conn, &ev);
	}
}

/*
 * Refuse new connections, then reach every live one.  The flag is set
 * before any list is walked, and adoption checks it under the list's lock:
 * a connection adopted into a list after the walk passed it was adopted
 * after the flag, which cannot be.
 */
static void request_shutdown(iocx_engine *e)
{
	atomic_store(&e->shutting_down, true);
	shutdown_list(e, &e->live_shared);
	for (unsigned i = 0; i < e->nthreads; i++)
		shutdown_list(e, &e->workers[i].live);
}

static bool list_empty(struct iocx_live_list *l)
{
	bool empty;

	iocx__mutex_lock(&l->lock);
	empty = l->conns == NULL;
	iocx__mutex_unlock(&l->lock);
	return empty;
}

/* Nothing left that can touch the engine: no conns, no callers. */
static bool engine_idle(iocx_engine *e)
{
	bool idle;

	if (!list_empty(&e->live_shared))
		return false;
	for (unsigned i = 0; i < e->nthreads; i++) {
		if (!list_empty(&e->workers[i].live))
			return false;
	}
	/* Under e->lock, where the last caller drops the count: seeing 0
	 * any earlier would free the engine under its broadcast. */
	iocx__mutex_lock(&e->lock);
	idle = atomic_load(&e->callers) == 0;
	iocx__mutex_unlock(&e->lock);
	return idle;
}

/*
 * Collect the connections of l the program never released (no iocx_close,
 * no detach), marking them released by destroy, onto *head.  Called once
 * every on_close has returned: a listed connection with no close request
 * still holds the program's reference, so it is not on its way out.
 */
static void reap_list(struct iocx_live_list *l, struct iocx_conn **head)
{
	iocx__mutex_lock(&l->lock);
	for (struct iocx_conn *c = l->conns; c; c = c->next) {
		int none = CONN_CLOSE_NONE;

		if (c->child ||
		    !atomic_compare_exchange_strong(&c->close_request, &none,
						    CONN_CLOSE_REAPED))
			continue;
		c->reap_next = *head;
		*head = c;
	}
	iocx__mutex_unlock(&l->lock);
}

/*
 * Destroy frees every handle, released or not, but only after every
 * on_close: until then a handle the idle watchdog or destroy closed stays
 * valid for the program's threads.  The releases are dropped outside the
 * lists' locks (a last drop unlinks the connection under its list lock).
 */
static void reap_unreleased(iocx_engine *e)
{
	struct iocx_conn *head = NULL;

	reap_list(&e->live_shared, &head);
	for (unsigned i = 0; i < e->nthreads; i++)
		reap_list(&e->workers[i].live, &head);
	while (head) {
		struct iocx_conn *c = head;

		head = c->reap_next;
		iocx__conn_release(c);
	}
}

/* Every connection has had its on_close, and no iocx_connect runs. */
static bool all_finished(iocx_engine *e)
{
	bool done;

	/* callers first: a connect under way may still make one busy. */
	iocx__mutex_lock(&e->lock);
	done = atomic_load(&e->callers) == 0;
	iocx__mutex_unlock(&e->lock);
	return done && atomic_load(&e->busy) == 0;
}

/*
 * Wait until all_finished(): no caller is left in iocx_connect (none can
 * enter once shutting_down is set) and busy reached 0, which it then
 * keeps (only a callback or a caller could start a connection).
 */
static void wait_all_finished(iocx_engine *e)
{
	iocx__mutex_lock(&e->lock);
	while (atomic_load(&e->callers) != 0)
		iocx__cond_wait(&e->idle, &e->lock);
	iocx__mutex_unlock(&e->lock);
	iocx__mutex_lock(&e->drain_lock);
	while (atomic_load(&e->busy) != 0)
		iocx__cond_wait(&e->drained, &e->drain_lock);
	iocx__mutex_unlock(&e->drain_lock);
}

/*
 * Wait until l is empty.  No connection joins a list once shutting_down
 * is set, so an empty list stays empty.
 */
static void wait_list_empty(struct iocx_live_list *l)
{
	iocx__mutex_lock(&l->lock);
	while (l->conns)
		iocx__cond_wait(&l->empty, &l->lock);
	iocx__mutex_unlock(&l->lock);
}

/* See iocx.h. */
int iocx_engine_destroy(iocx_engine *e)
{
	if (!e)
		return IOCX_E_INVAL;
	if (iocx__current_conn)
		return IOCX_E_INCALLBACK;

	request_shutdown(e);
	if (e->flags & IOCX__ENGINE_MANUAL) {
		while (!all_finished(e))
			iocx__engine_run(e, WAIT_SLICE_MS);
		reap_unreleased(e);
		while (!engine_idle(e))
			iocx__engine_run(e, WAIT_SLICE_MS);
	} else {
		wait_all_finished(e);
		reap_unreleased(e);
		wait_list_empty(&e->live_shared);
		for (unsigned i = 0; i < e->nthreads; i++)
			wait_list_empty(&e->workers[i].live);
		/* Again, last: a connect that began during destroy and saw
		 * it (IOCX_E_SHUTDOWN) may still be leaving. */
		iocx__mutex_lock(&e->lock);
		while (atomic_load(&e->callers) != 0)
			iocx__cond_wait(&e->idle, &e->lock);
		iocx__mutex_unlock(&e->lock);
		stop_workers(e);
	}

	e->backend->engine_fini(e);
	iocx__timer_free(&e->timers);
	iocx__name_cache_destroy(e->names);
	iocx__free(e->sources);
	iocx__cond_destroy(&e->drained);
	iocx__mutex_destroy(&e->drain_lock);
	for (unsigned i = 0; i < IOCX_REQ_LOCKS; i++)
		iocx__mutex_destroy(&e->req_locks[i]);
	iocx__latency_detach(&e->stats);
	iocx__free(e->latency_base[0]);
	iocx__free(e->latency_base[1]);
	iocx__admission_fini(e);
	iocx__cond_destroy(&e->idle);
	iocx__mutex_destroy(&e->latency_lock);
	iocx__mutex_destroy(&e->timer_lock);
	live_list_destroy(&e->live_shared);
	iocx__mutex_destroy(&e->lock);
	iocx__free(e);
	iocx__alloc_unpin();
	return IOCX_OK;
}

/* See iocx.h. */
const char *iocx_engine_backend(const iocx_engine *e)
{
	return e ? e->backend->name : "none";
}

/* See iocx.h. */
unsigned iocx_engine_workers(const iocx_engine *e)
{
	return e ? e->nthreads : 0;
}

/* See iocx.h. */
int iocx_engine_stats(const iocx_engine *e, struct iocx_stats *out)
{
	if (!e || !out)
		return IOCX_E_INVAL;
	memset(out, 0, sizeof(*out));
	iocx__stats_add(&e->stats, out);
	for (unsigned i = 0; i < e->nthreads; i++)
		iocx__stats_add(&e->workers[i].stats, out);
	iocx__stats_clamp(out);
	return IOCX_OK;
}

/* See iocx.h. */
int iocx_engine_io_errors(const iocx_engine *e, struct iocx_io_errors *out)
{
	if (!e || !out)
		return IOCX_E_INVAL;
	memset(out, 0, sizeof(*out));
	iocx__stats_add_io(&e->stats, out);
	for (unsigned i = 0; i < e->nthreads; i++)
		iocx__stats_add_io(&e->workers[i].stats, out);
	return IOCX_OK;
}

/* See engine.h. */
struct iocx_counters *iocx__counters(iocx_engine *e)
{
	struct iocx_worker *w = this_worker;

	return w && w->engine == e ? &w->stats : &e->stats;
}

/* See engine.h. */
bool iocx__engine_reserve_in_flight(iocx_engine *e,
				    struct iocx_counters *set)
{
	uint64_t cap = e->opts.max_in_flight;
	uint64_t cur;

	if (cap != 0) {
		cur = atomic_load_explicit(&e->capped_in_flight,
					   memory_order_relaxed);
		do {
			if (cur >= cap)
				return false;
		} while (!atomic_compare_exchange_weak_explicit(
			&e->capped_in_flight, &cur, cur + 1,
			memory_order_relaxed, memory_order_relaxed));
	}
	iocx__count(&set->in_flight, 1);
	return true;
}

/* See engine.h. */
void iocx__engine_in_flight_done(iocx_engine *e, struct iocx_counters *set)
{
	if (e->opts.max_in_flight != 0 && e->opts.queue_limit != 0) {
		/* A slot handed on to a queued request stays in flight. */
		if (!iocx__admission_release(e))
			iocx__uncount(&set->in_flight, 1);
		return;
	}
	iocx__uncount(&set->in_flight, 1);
	if (e->opts.max_in_flight != 0)
		iocx__uncount(&e->capped_in_flight, 1);
}

/* See engine.h. */
void iocx__engine_dispatch(iocx_engine *e, const struct iocx_event *ev)
{
	(void)e;
	if (ev->conn)
		iocx__conn_handle(ev->conn, ev);
}

/* The live list c is on (c->live: 0 = the shared one, else 1 + worker). */
static struct iocx_live_list *live_of(iocx_engine *e,
				      const struct iocx_conn *c)
{
	return c->live ? &e->workers[c->live - 1].live : &e->live_shared;
}

/* See engine.h. */
bool iocx__engine_adopt(iocx_engine *e, struct iocx_conn *c)
{
	struct iocx_live_list *l;
	bool ok;

	c->live = on_own_worker(e) ? this_worker->index + 1 : 0;
	l = live_of(e, c);
	iocx__mutex_lock(&l->lock);
	ok = !atomic_load(&e->shutting_down);
	if (ok) {
		c->prev = NULL;
		c->next = l->conns;
		if (l->conns)
			l->conns->prev = c;
		l->conns = c;
	}
	iocx__mutex_unlock(&l->lock);
	return ok;
}

/* See conn.h. */
void iocx__engine_forget(iocx_engine *e, struct iocx_conn *c)
{
	struct iocx_live_list *l = live_of(e, c);

	iocx__mutex_lock(&l->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* Freed before the unlock: destroy, which waits for every list to
	 * empty under its lock, then finds every connection freed, and
	 * nothing here touches the engine after the unlock. */
	iocx__free(c);
	if (!l->conns && atomic_load(&e->shutting_down))
		iocx__cond_broadcast(&l->empty);
	iocx__mutex_unlock(&l->lock);
}

/* See engine.h. */
int iocx__engine_timer_reserve(iocx_engine *e)
{
	int rc;

	iocx__mutex_lock(&e->timer_lock);
	rc = iocx__timer_reserve(&e->timers, e->timer_users + 1);
	if (rc == IOCX_OK)
		e->timer_users++;
	iocx__mutex_unlock(&e->timer_lock);
	return rc;
}

/* See engine.h. */
void iocx__engine_timer_release(iocx_engine *e)
{
	iocx__mutex_lock(&e->timer_lock);
	/* An engine with no timer users holds no timer memory. */
	if (--e->timer_users == 0)
		iocx__timer_free(&e->timers);
	iocx__mutex_unlock(&e->timer_lock);
}

/* See engine.h. */
void iocx__engine_arm(iocx_engine *e, struct iocx_conn *c, uint64_t when)
{
	bool earliest;

	assert(c->uses_timer);	/* the heap has room reserved for c */
	iocx__conn_ref(c);
	iocx__mutex_lock(&e->timer_lock);
	c->timer_gen++;		/* the armed generation (timer.h) */
	iocx__timer_add(&e->timers, c, when);
	earliest = e->timers.slots[0].conn == c;
	iocx__mutex_unlock(&e->timer_lock);
	/*
	 * Workers sleep until the earliest deadline they saw.  A worker of e
	 * that arms recomputes before its next wait; anywhere else (another
	 * engine's worker included) one of e's workers must be woken to see
	 * the new, earlier deadline.
	 */
	if (earliest && (!this_worker || this_worker->engine != e))
		e->backend->post(e, IOCX_EV_WAKE, NULL);
}

/* See engine.h. */
void iocx__engine_disarm(iocx_engine *e, struct iocx_conn *c)
{
	bool removed;

	/* Without a reservation c never arms: no lock on its hot path. */
	if (!c->uses_timer)
		return;
	iocx__mutex_lock(&e->timer_lock);
	removed = iocx__timer_remove(&e->timers, c);
	/*
	 * A worker may have popped c's timer already and wait for c->lock:
	 * a new generation makes that event stale (conn.c on_timer), as a
	 * re-arm does.  Nothing else compares timer_gen.
	 */
	c->timer_gen++;
	iocx__mutex_unlock(&e->timer_lock);
	if (removed)
		iocx__conn_unref(c);	/* never the last: c is alive */
}

/* See engine.h. */
void iocx__engine_run_timers(iocx_engine *e)
{
	for (;;) {
		struct iocx_conn *c;
		uint32_t gen = 0;

		iocx__mutex_lock(&e->timer_lock);
		c = iocx__timer_pop_expired(&e->timers, e->clock(), &gen);
		iocx__mutex_unlock(&e->timer_lock);
		if (!c)
			return;
		iocx__conn_timer(c, gen);
	}
}

/*
 * How long a worker may wait, in nanoseconds: until the earliest deadline,
 * at most a slice.  Exact, not rounded to milliseconds: a backend that
 * can wait finer than that does (the pacing's intervals are often below
 * one millisecond), one that cannot rounds up (backend.h).
 */
static uint64_t wait_timeout(iocx_engine *e)
{
	uint64_t next, now;

	iocx__mutex_lock(&e->timer_lock);
	next = iocx__timer_next(&e->timers);
	iocx__mutex_unlock(&e->timer_lock);
	if (next == IOCX_TIMER_NONE)
		return WAIT_SLICE_NS;
	now = e->clock();
	if (next <= now)
		return 0;
	return next - now < WAIT_SLICE_NS ? next - now : WAIT_SLICE_NS;
}

/*
 * Dequeue one batch for worker w and dispatch it.  Returns true when a STOP
 * was among the events: the worker must exit.  STOPs meant for other
 * workers that arrived in the same batch are posted again.
 */
static bool run_batch(struct iocx_worker *w)
{
	iocx_engine *e = w->engine;
	unsigned stops = 0;
	int n;

	/* A failing wait (the port itself broken) cannot happen while the
	 * engine lives; the worker just tries again. */
	n = e->backend->wait(e, w->index, w->events, e->opts.batch,
			     wait_timeout(e));
	for (int i = 0; i < n; i++) {
		if (w->events[i].kind == IOCX_EV_STOP)
			stops++;
		else
			iocx__engine_dispatch(e, &w->events[i]);
	}
	iocx__engine_run_timers(e);
	sweep_shutdowns(e);
	/* Without a STOP, an idle wait (one that timed out) ends a worker
	 * told to stop: its STOP could not be posted. */
	if (stops == 0)
		return n <= 0 && atomic_load(&e->stopping);
	/* Wake-ups for the others; each also exits on e->stopping. */
	while (--stops > 0)
		post_tries(e, IOCX_EV_STOP, NULL);
	return true;
}

static void worker_main(void *arg)
{
	struct iocx_worker *w = arg;

	this_worker = w;
	while (!run_batch(w))
		;
}

/* See engine.h. */
int iocx__engine_run(iocx_engine *e, unsigned timeout_ms)
{
	struct iocx_event events[DEFAULT_BATCH];
	unsigned max = e->opts.batch < DEFAULT_BATCH ? e->opts.batch
						      : DEFAULT_BATCH;
	int n;

	n = e->backend->wait(e, 0, events, max,
			     (uint64_t)timeout_ms * 1000000u);
	for (int i = 0; i < n; i++)
		iocx__engine_dispatch(e, &events[i]);
	iocx__engine_run_timers(e);
	sweep_shutdowns(e);
	return n;
}
