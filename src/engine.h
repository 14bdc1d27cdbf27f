/*
 * Engine internals shared by the core files and the backends.
 *
 * Locking: e->lock guards the list of live connections, e->live and
 * e->shutting_down transitions; it is never held while a callback runs or
 * while a connection's own lock is taken.
 */
#ifndef IOCX_ENGINE_H
#define IOCX_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "iocx.h"
#include "backend.h"
#include "platform.h"
#include "stats.h"
#include "timer.h"

/* Internal creation flag: no worker threads; tests drive iocx__engine_run. */
#define IOCX__ENGINE_MANUAL 1u

struct iocx_worker {
	iocx_thread thread;
	struct iocx_engine *engine;
	unsigned index;			/* passed to backend->wait */
	struct iocx_event *events;	/* batch buffer, opts.batch long */
};

struct iocx_engine {
	const struct iocx_backend *backend;
	void *backend_data;		/* owned by the backend */
	struct iocx_engine_options opts;	/* resolved, no zero fields
						   except max_in_flight */
	unsigned flags;			/* IOCX__ENGINE_* */

	struct iocx_worker *workers;
	unsigned nthreads;		/* workers started */

	iocx_mutex lock;
	iocx_cond idle;			/* broadcast when live drops to 0 */
	struct iocx_conn *conns;	/* doubly linked list of live conns */
	size_t live;			/* allocated conns, freed at 0 refs */
	atomic_bool shutting_down;
	/* Threads inside iocx_connect(); destroy waits for them to leave,
	 * so a connect racing destroy never touches a freed engine. */
	atomic_uint callers;

	/* Deadlines and retry backoffs of all connections.  timer_lock
	 * guards the heap and timer_users (connections that may arm a
	 * timer, for which capacity is reserved); it is a leaf lock. */
	iocx_mutex timer_lock;
	struct iocx_timer_heap timers;
	size_t timer_users;
	uint64_t (*clock)(void);	/* iocx__now_ns; tests swap it */

	/* Copies of opts.sources, and where the round robin stands. */
	struct sockaddr_storage *sources;
	atomic_uint next_source;

	struct iocx_counters stats;
};

/*
 * Create an engine on an explicit backend.  flags: IOCX__ENGINE_MANUAL runs
 * no workers (unit tests pump events with iocx__engine_run).  Same errors
 * as iocx_engine_create().
 */
int iocx__engine_create_with(const struct iocx_backend *backend,
			     const struct iocx_engine_options *opts,
			     unsigned flags, iocx_engine **out);

/*
 * Dequeue and dispatch one batch on the calling thread (manual engines).
 * Returns the number of events handled, 0 on timeout, <0 on error.
 */
int iocx__engine_run(iocx_engine *e, unsigned timeout_ms);

/* Dispatch one event to its connection (workers and iocx__engine_run). */
void iocx__engine_dispatch(iocx_engine *e, const struct iocx_event *ev);

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

/* Disarm c's timer if armed, with c->lock held. */
void iocx__engine_disarm(iocx_engine *e, struct iocx_conn *c);

/* Fire every expired timer on the calling thread. */
void iocx__engine_run_timers(iocx_engine *e);

/*
 * Validate opts.sources and copy them into the engine (connect.c);
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

/* The library allocator (iocx_set_allocator). */
void *iocx__alloc(size_t size);
void iocx__free(void *ptr);

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

#endif /* IOCX_ENGINE_H */
