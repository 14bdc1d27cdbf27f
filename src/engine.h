/*
 * Engine internals shared by the core files and the backends.
 *
 * Locking: live connections are kept in several lists, one per worker
 * (connections started on that worker) and one shared (started on any
 * other thread), so that workers starting and freeing connections do not
 * take one engine-wide lock twice per connect.  Each list's lock guards
 * its members' prev/next and its `empty` wait; e->lock guards destroy's
 * wait for e->callers.  None of them is held while a callback runs or
 * while a connection's own lock is taken.
 */
#ifndef IOCX_ENGINE_H
#define IOCX_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "iocx.h"
#include "admission.h"
#include "alloc.h"
#include "backend.h"
#include "platform.h"
#include "stats.h"
#include "timer.h"

/* Internal creation flag: no worker threads; tests drive iocx__engine_run. */
#define IOCX__ENGINE_MANUAL 1u

/* Live connections started on one thread kind; see the top of the file. */
struct iocx_live_list {
	iocx_mutex lock;
	iocx_cond empty;		/* conns became NULL during shutdown */
	struct iocx_conn *conns;	/* doubly linked through prev/next */
};

struct iocx_worker {
	iocx_thread thread;
	struct iocx_engine *engine;
	unsigned index;			/* passed to backend->wait */
	struct iocx_event *events;	/* batch buffer, opts.batch long */
	/* Counters this worker bumps (only it writes them); the padding
	 * keeps the next worker's off these cache lines. */
	struct iocx_counters stats;
	struct iocx_live_list live;	/* connections started here */
	char pad[64];
};

/* Stripes of the connections' data-request locks (a power of two). */
#define IOCX_REQ_LOCKS 64

struct iocx_engine {
	const struct iocx_backend *backend;
	void *backend_data;		/* owned by the backend */
	struct iocx_engine_options opts;	/* resolved, no zero fields
						   except max_in_flight */
	unsigned flags;			/* IOCX__ENGINE_* */

	struct iocx_worker *workers;
	unsigned nthreads;		/* workers started */

	iocx_mutex lock;
	iocx_cond idle;			/* broadcast when callers drops to 0 */
	struct iocx_live_list live_shared;	/* started off the workers */
	atomic_bool shutting_down;
	/* Threads inside iocx_connect(); destroy waits for them to leave,
	 * so a connect racing destroy never touches a freed engine. */
	atomic_size_t callers;
	/* Destroy's fallbacks when a post keeps failing: SHUTDOWN requests
	 * left for the workers to find (conn->shutdown_missed), and every
	 * worker told to exit without a STOP event. */
	atomic_size_t shutdowns_missed;
	atomic_bool stopping;

	/* Deadlines and retry backoffs of all connections.  timer_lock
	 * guards the heap and timer_users (connections that may arm a
	 * timer, for which capacity is reserved); it is a leaf lock. */
	iocx_mutex timer_lock;
	struct iocx_timer_heap timers;
	size_t timer_users;
	uint64_t (*clock)(void);	/* iocx__now_ns; tests swap it */
	struct iocx_name_cache *names;	/* options.resolve_cache, or NULL */

	/*
	 * The connections' data-request locks (iocx__conn_req_lock()), one
	 * per stripe instead of one per connection: a glibc mutex is 40
	 * bytes, and a leaf lock held for a few stores can be shared.
	 */
	iocx_mutex req_locks[IOCX_REQ_LOCKS];

	/* Copies of opts.sources, and where the round robin stands. */
	struct sockaddr_storage *sources;
	atomic_uint next_source;

	/* Counters bumped by threads that are not workers of this engine
	 * (callers of iocx_connect, manual engines). */
	struct iocx_counters stats;
	/* Connects in flight, kept only when opts.max_in_flight caps them:
	 * the per-thread gauges cannot be checked against a cap. */
	_Atomic uint64_t capped_in_flight;

	/*
	 * Drain (drain.c).  busy counts connections from the moment their
	 * start succeeded (under the connection's lock, so before any of
	 * its callbacks) until their on_close returned: exact, unlike the
	 * per-worker gauges.  drain_lock, a leaf lock, guards idle_epoch
	 * (busy -> idle transitions so far) and the drained wait.
	 */
	atomic_size_t busy;
	iocx_mutex drain_lock;
	iocx_cond drained;
	uint64_t idle_epoch;

	/* iocx_engine_latency's interval baselines (latency.c), [0] connect
	 * latency, [1] resolution: NULL until the first reset; based once
	 * it holds one.  Guarded by latency_lock, a leaf lock. */
	iocx_mutex latency_lock;
	struct iocx_hist *latency_base[2];
	bool latency_based[2];

	/* The admission queue and the pacing (admission.c). */
	struct iocx_admission admission;
};

/*
 * Create an engine on an explicit backend.  flags: IOCX__ENGINE_MANUAL runs
 * no workers (unit tests pump events with iocx__engine_run).  Same errors
 * as iocx_engine_create().
 */
int iocx__engine_create_with(const struct iocx_backend *backend,
			     const struct iocx_engine_options *opts,
			     unsigned flags, iocx_engine **out);

/* Times destroy tries a post before it takes the path that needs none. */
#define IOCX__POST_TRIES 64

/*
 * Dequeue and dispatch one batch on the calling thread (manual engines).
 * Returns the number of events handled, 0 on timeout, <0 on error.
 */
int iocx__engine_run(iocx_engine *e, unsigned timeout_ms);

/*
 * The counter set the calling thread bumps for e: its own when it is one
 * of e's workers, else e's shared set.
 */
struct iocx_counters *iocx__counters(iocx_engine *e);

/* Count one more connect in flight unless max_in_flight is reached. */
bool iocx__engine_reserve_in_flight(iocx_engine *e,
				    struct iocx_counters *set);

/* A connect is no longer in flight (reported, or never started). */
void iocx__engine_in_flight_done(iocx_engine *e, struct iocx_counters *set);

/* Dispatch one event to its connection (workers and iocx__engine_run). */
void iocx__engine_dispatch(iocx_engine *e, const struct iocx_event *ev);

/*
 * Link c into a live list of e (the calling worker's, or the shared one)
 * unless destroy has begun; false then.
 */
bool iocx__engine_adopt(iocx_engine *e, struct iocx_conn *c);

/*
 * Reserve timer capacity for one more connection that may arm timers;
 * IOCX_OK or IOCX_E_NOMEM.  Undone by iocx__engine_timer_release, which
 * frees the heap's storage when the last user goes.
 */
int iocx__engine_timer_reserve(iocx_engine *e);
void iocx__engine_timer_release(iocx_engine *e);

/*
 * Arm c's one timer at when (engine clock), with c->lock held.  The heap
 * holds a reference until the timer fires or is disarmed.  Wakes a worker
 * when the new deadline is the earliest and no worker is arming it.
 */
void iocx__engine_arm(iocx_engine *e, struct iocx_conn *c, uint64_t when);

/*
 * Disarm c's timer if armed, with c->lock held.  Unless c never arms
 * (!c->uses_timer), it also starts a new timer generation, so a timer a
 * worker popped before the disarm is ignored when it reaches c.
 */
void iocx__engine_disarm(iocx_engine *e, struct iocx_conn *c);

/* Fire every expired timer on the calling thread. */
void iocx__engine_run_timers(iocx_engine *e);

/*
 * Validate opts.sources and copy them into the engine (sources.c);
 * IOCX_OK, IOCX_E_INVAL, IOCX_E_AFNOSUPPORT or IOCX_E_NOMEM.
 */
int iocx__engine_copy_sources(iocx_engine *e);

/*
 * Bracket an API call that may race iocx_engine_destroy (iocx_connect).
 * enter returns false when destroy has begun; leave only follows a true
 * enter.
 */
bool iocx__engine_enter(iocx_engine *e);
void iocx__engine_leave(iocx_engine *e);

/* A connection started: the engine is busy until its on_close returned. */
void iocx__engine_busy(iocx_engine *e);

/*
 * A connection's on_close returned.  When it was the last, wakes
 * iocx_engine_wait_idle() and calls opts.on_idle on the calling thread.
 */
void iocx__engine_unbusy(iocx_engine *e);

/*
 * Give a counter set its latency histogram (IOCX_OK or IOCX_E_NOMEM), and
 * free it (latency.c).
 */
int iocx__latency_attach(struct iocx_counters *set);
void iocx__latency_detach(struct iocx_counters *set);

/* Record the calling thread's iocx_last_os_error() (error.c). */
void iocx__set_last_os_error(uint32_t code);

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

#endif /* IOCX_ENGINE_H */
