/*
 * The per-worker records both Linux backends use: who owns a connection,
 * the request queue of each worker, its eventfd wake-up, and post().
 *
 * A connection sits in its owner's queue at most once; what the owner
 * must do for it accumulates as LX_Q_* bits.  A poster wakes the owner
 * only when it made the queue non-empty and is not the owner itself: the
 * owner drains its whole queue at the start of every wait, so a push it
 * makes itself, or one onto a queue that already holds a wake-up, is seen
 * without another.
 *
 * The eventfd is blocking: io_uring fails a read of a non-blocking file
 * with -EAGAIN instead of waiting, and epoll only reads it when readable.
 *
 * Who is a worker: each worker record gets an id unique over the process
 * lifetime, and a thread remembers the id (not a pointer) of the worker it
 * last ran as, so a stale value from a destroyed engine can never match.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "linux/lx.h"
#include "linux/sys.h"

/* Bits that may become an event, in the order they are handed out. */
static const unsigned q_order[] = {
	LX_Q_SUBMIT_MAIN, LX_Q_SUBMIT_RECV, LX_Q_CANCEL_MAIN, LX_Q_CANCEL_RECV,
	LX_Q_IO_MAIN, LX_Q_IO_RECV, LX_Q_CLOSE, LX_Q_SHUTDOWN, LX_Q_KICK,
};

static atomic_uint_fast64_t next_worker_id = 1;

static _Thread_local struct {
	uint64_t engine_id;		/* id of worker 0 of the engine */
	uint64_t worker_id;
	unsigned index;
} self;

/* See linux/lx.h. */
int iocx__lx_engine_init(struct iocx_engine *e)
{
	unsigned n = e->opts.workers ? e->opts.workers : 1;
	struct lx_engine *le;
	uint64_t first;

	le = iocx__alloc(sizeof(*le));
	if (!le)
		return IOCX_E_NOMEM;
	memset(le, 0, sizeof(*le));
	le->e = e;
	atomic_init(&le->next_owner, 0);
	atomic_init(&le->stops, 0);
	le->w = iocx__alloc(sizeof(*le->w) * n);
	if (!le->w) {
		iocx__free(le);
		return IOCX_E_NOMEM;
	}
	memset(le->w, 0, sizeof(*le->w) * n);
	e->backend_data = le;
	if (!e->opts.resolver) {
		/* Names through c-ares; its thread starts at the first. */
		le->ares = iocx__ares_create(e->opts.dns_servers);
		if (!le->ares) {
			iocx__lx_engine_fini(e);
			return IOCX_E_NOMEM;
		}
		e->opts.resolver = iocx__ares_ops(le->ares);
	}
	e->opts.dns_servers = NULL;	/* never the caller's string again */
	first = atomic_fetch_add(&next_worker_id, n);
	for (; le->nworkers < n; le->nworkers++) {
		struct lx_worker *w = &le->w[le->nworkers];

		w->le = le;
		w->index = le->nworkers;
		w->id = first + le->nworkers;
		w->epfd = -1;
		w->efd = iocx__linux_sys.eventfd(0, EFD_CLOEXEC);
		if (w->efd < 0) {
			iocx__lx_engine_fini(e);
			return errno == ENOMEM ? IOCX_E_NOMEM : IOCX_E_SYSTEM;
		}
		iocx__mutex_init(&w->lock);
	}
	return IOCX_OK;
}

/* See linux/lx.h. */
void iocx__lx_engine_fini(struct iocx_engine *e)
{
	struct lx_engine *le = lx_engine(e);

	if (!le)
		return;
	iocx__ares_destroy(le->ares);
	for (unsigned i = 0; i < le->nworkers; i++) {
		close(le->w[i].efd);	/* not a socket: not in the table */
		iocx__mutex_destroy(&le->w[i].lock);
	}
	iocx__free(le->w);
	iocx__free(le);
	e->backend_data = NULL;
}

/* See linux/lx.h. */
void iocx__lx_enter(struct lx_worker *w)
{
	self.engine_id = w->le->w[0].id;
	self.worker_id = w->id;
	self.index = w->index;
}

/* See linux/lx.h. */
bool iocx__lx_on_worker(const struct lx_worker *w)
{
	return self.worker_id == w->id;
}

/* See linux/lx.h. */
unsigned iocx__lx_pick_owner(struct lx_engine *le)
{
	if (self.engine_id == le->w[0].id)
		return self.index;
	return atomic_fetch_add_explicit(&le->next_owner, 1,
					 memory_order_relaxed) %
	       le->nworkers;
}

/* See linux/lx.h. */
unsigned iocx__lx_claim_owner(struct lx_conn *lc)
{
	unsigned want = iocx__lx_pick_owner(lx_engine(lc->core.engine)) + 1;
	unsigned seen = 0;

	if (atomic_compare_exchange_strong_explicit(&lc->owner1, &seen, want,
						    memory_order_relaxed,
						    memory_order_relaxed))
		return want;
	return seen;
}

static void wake(struct lx_worker *w)
{
	uint64_t one = 1;

	/* Cannot fail short of a counter overflow; a lost wake-up would
	 * only cost the rest of the owner's wait slice. */
	if (write(w->efd, &one, sizeof(one)) < 0)
		return;
}

/* Add bits to lc's queue entry with w->lock held; true if w was empty. */
static bool enqueue_locked(struct lx_worker *w, struct lx_conn *lc,
			   unsigned bits)
{
	bool was_empty = !w->head;

	if (lc->queued == 0) {
		lc->qnext = NULL;
		if (w->tail)
			w->tail->qnext = lc;
		else
			w->head = lc;
		w->tail = lc;
	}
	lc->queued |= bits;
	return was_empty;
}

/* See linux/lx.h. */
unsigned iocx__lx_push(struct lx_conn *lc, unsigned bits)
{
	return iocx__lx_push_op(lc, IOCX_OP_MAIN, bits, NULL);
}

/* Queue request bit for c; a duplicate gives its reference back. */
static void push_request(struct iocx_conn *c, unsigned bit)
{
	if (iocx__lx_push(lx_conn(c), bit))
		iocx__conn_unref(c);	/* never the last: see iocx__lx_push */
}

/* See linux/lx.h. */
unsigned iocx__lx_push_op(struct lx_conn *lc, enum iocx_op op, unsigned bits,
			  const struct lx_queued *q)
{
	struct lx_worker *w = lx_owner(lc);
	/* Carried only for a slot the connection uses (lx_slot()). */
	struct lx_queued *to = q ? &lx_slot(lc, op)->q : NULL;
	unsigned dup;
	bool was_empty;

	iocx__mutex_lock(&w->lock);
	if (q && (bits & LX_Q_IO(op)))
		to->res = q->res;
	if (q && (bits & LX_Q_SUBMIT(op))) {
		to->submit_gen = q->submit_gen;
		to->submit_stage = q->submit_stage;
	}
	if (q && (bits & LX_Q_CANCEL(op)))
		to->cancel_gen = q->cancel_gen;
	dup = lc->queued & bits;
	was_empty = enqueue_locked(w, lc, bits);
	iocx__mutex_unlock(&w->lock);
	if (was_empty && !iocx__lx_on_worker(w))
		wake(w);
	return dup;
}

/* See linux/lx.h. */
void iocx__lx_push_io(struct lx_conn *lc, enum iocx_op op, int status,
		      uint32_t os_code, uint32_t bytes)
{
	struct lx_queued q = {
		.res = { .status = status, .os_code = os_code, .bytes = bytes },
	};

	iocx__lx_push_op(lc, op, LX_Q_IO(op), &q);
}

/* See linux/lx.h. */
bool iocx__lx_unqueue_submit(struct lx_conn *lc, enum iocx_op op)
{
	struct lx_worker *w = lx_owner(lc);
	bool found;

	iocx__mutex_lock(&w->lock);
	found = lc->queued & LX_Q_SUBMIT(op);
	if (found) {
		/* Still in the queue, so no wake-up is needed either. */
		lc->queued &= ~LX_Q_SUBMIT(op);
		struct lx_queued *to = &lx_slot(lc, op)->q;

		to->res.status = IOCX_E_CANCELLED;
		to->res.os_code = ECANCELED;
		to->res.bytes = 0;
		lc->queued |= LX_Q_IO(op);
	}
	iocx__mutex_unlock(&w->lock);
	return found;
}

/* See linux/lx.h. */
struct lx_conn *iocx__lx_pop(struct lx_worker *w, unsigned room, unsigned *bits,
			     struct lx_queued q[2])
{
	struct lx_conn *lc;
	unsigned take = 0;

	if (room == 0)
		return NULL;
	iocx__mutex_lock(&w->lock);
	lc = w->head;
	if (lc) {
		for (size_t i = 0; i < sizeof(q_order) / sizeof(*q_order) &&
				   room > 0; i++) {
			if (lc->queued & q_order[i]) {
				take |= q_order[i];
				room--;
			}
		}
		lc->queued &= ~take;
		q[IOCX_OP_MAIN] = lc->op_main.q;
		/* No data block: slot RECV never had anything queued. */
		if (lx_slot(lc, IOCX_OP_RECV))
			q[IOCX_OP_RECV] = lx_slot(lc, IOCX_OP_RECV)->q;
		else
			memset(&q[IOCX_OP_RECV], 0, sizeof(q[IOCX_OP_RECV]));
		if (lc->queued == 0) {
			w->head = lc->qnext;
			if (!w->head)
				w->tail = NULL;
		}
	}
	iocx__mutex_unlock(&w->lock);
	*bits = take;
	return lc;
}

/* See linux/lx.h. */
bool iocx__lx_take_stop(struct lx_engine *le)
{
	unsigned n = atomic_load(&le->stops);

	while (n > 0) {
		if (atomic_compare_exchange_weak(&le->stops, &n, n - 1))
			return true;
	}
	return false;
}

/* See linux/lx.h. */
void iocx__lx_drain_efd(struct lx_worker *w)
{
	uint64_t v;

	/* Blocking (io_uring reads it too), but readable: never waits. */
	if (read(w->efd, &v, sizeof(v)) < 0)
		return;
}

/* See linux/lx.h. */
void iocx__lx_io_event(struct iocx_event *ev, struct lx_conn *lc,
		       enum iocx_op op, int status, uint32_t os_code,
		       size_t bytes)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = IOCX_EV_IO;
	ev->conn = &lc->core;
	ev->op = op;
	ev->status = status;
	ev->os_code = os_code;
	ev->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

/* Fill *ev as a request event of kind for lc. */
static void request_event(struct iocx_event *ev, struct lx_conn *lc,
			  enum iocx_event_kind kind)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->conn = &lc->core;
}

/* See linux/lx.h. */
unsigned iocx__lx_queue_events(struct lx_conn *lc, unsigned bits,
			       const struct lx_queued q[2],
			       struct iocx_event *ev)
{
	unsigned n = 0;

	for (int op = IOCX_OP_MAIN; op <= IOCX_OP_RECV; op++) {
		if (bits & LX_Q_IO(op)) {
			iocx__lx_io_event(&ev[n++], lc, (enum iocx_op)op,
				    q[op].res.status, q[op].res.os_code,
				    q[op].res.bytes);
		}
	}
	if (bits & LX_Q_CLOSE)
		request_event(&ev[n++], lc, IOCX_EV_CLOSE);
	if (bits & LX_Q_SHUTDOWN)
		request_event(&ev[n++], lc, IOCX_EV_SHUTDOWN);
	if (bits & LX_Q_KICK)
		request_event(&ev[n++], lc, IOCX_EV_KICK);
	return n;
}

/* See linux/lx.h. */
int iocx__lx_post(struct iocx_engine *e, enum iocx_event_kind kind,
		  struct iocx_conn *c)
{
	struct lx_engine *le = lx_engine(e);

	switch (kind) {
	case IOCX_EV_CLOSE:
		push_request(c, LX_Q_CLOSE);
		return IOCX_OK;
	case IOCX_EV_SHUTDOWN:
		push_request(c, LX_Q_SHUTDOWN);
		return IOCX_OK;
	case IOCX_EV_KICK:
		/* A KICK may come while the last is still queued (the core
		 * allows one in flight per pump, not per queue). */
		push_request(c, LX_Q_KICK);
		return IOCX_OK;
	case IOCX_EV_STOP:
		/* Whichever worker looks first takes it; wake them all. */
		atomic_fetch_add(&le->stops, 1);
		for (unsigned i = 0; i < le->nworkers; i++)
			wake(&le->w[i]);
		return IOCX_OK;
	case IOCX_EV_WAKE:
		/* A new earliest deadline: every worker recomputes its
		 * timeout when its wait returns; no event is needed. */
		for (unsigned i = 0; i < le->nworkers; i++)
			wake(&le->w[i]);
		return IOCX_OK;
	default:
		return IOCX_E_INVAL;
	}
}
