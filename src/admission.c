/*
 * Admission: the queue of requests waiting for an in-flight slot and the
 * pacing of attempts (see admission.h for the contract and its lock).
 *
 * Without queue_limit (or without max_in_flight) the slot count stays the
 * lock-free one of engine.c and nothing is ever queued.  With both, the
 * decision "take a slot or join the queue" and its mirror "hand the slot
 * to the queue's head or release it" are made under a->lock, so a slot
 * freed while a request joins the queue can never be lost.  A handed-on
 * slot stays counted: the in_flight gauge does not move.
 *
 * The granted request is started by its own KICK event, not by the thread
 * that freed the slot: that thread holds another connection's lock and
 * may be inside its callback.
 *
 * Pacing gives every start a theoretical time, its slot: slots are at
 * least one interval I = 1 s / connect_rate apart, a start comes at most
 * (burst - 1) * I before its slot (the burst) and less than I after it.
 * So the starts of any window of length T have their slots inside a span
 * shorter than T + burst * I, and there are at most T / I + burst of
 * them when T is a whole number of intervals (ceil(T / I) + burst for
 * any T).  A start that comes less than one interval after its slot
 * keeps it, and the next slot is one interval later: the worker's late
 * wake-ups (below I) are made up, the rate does not fall.  A start later
 * than that (a stall, a quiet spell) takes a new slot at now: the missed
 * turns are lost, never started as a backlog.
 *
 * The proof, and what "a start" is.  Each start is one clock reading x,
 * the one iocx__admission_pace() decides on; the caller makes the same x
 * the attempt's start stamp (conn.c: latency_ns counts from it).  The
 * decision gives x a slot s with s - (burst - 1) * I <= x < s + I, and
 * each slot is at least I after the slot given before it (under a->lock,
 * whatever order the readings were taken in: a stale reading only waits
 * longer).  So the slots of the stamps inside [t, t + T) lie in the open
 * span (t - I, t + T + (burst - 1) * I), of length T + burst * I, which
 * holds at most ceil(T / I) + burst points I apart.  Nothing else enters:
 * not how late the worker woke (a start nearly one interval late keeps
 * its slot, and the one after it on time: both counted above), not the
 * time between the decision and the socket (a preempted thread), not the
 * order in which threads take the lock.  A stamp read anywhere else (a
 * second reading after the decision, or the socket's own time) can come
 * later than its decision by a varying delay, and a window of such times
 * can then hold one start more (unit test
 * pacing_window_holds_for_stamped_starts): the socket follows its stamp
 * by the time socket creation takes, which no clock bounds.
 */
#include "admission.h"
#include "conn.h"

#define NS_PER_S 1000000000ull

/* c's links in the FIFO whose links sit at offset off in it. */
static struct iocx_conn_link *link_of(struct iocx_conn *c, size_t off)
{
	return (struct iocx_conn_link *)((char *)c + off);
}

static void fifo_push(struct iocx_fifo *f, struct iocx_conn *c, size_t off)
{
	link_of(c, off)->prev = f->tail;
	link_of(c, off)->next = NULL;
	if (f->tail)
		link_of(f->tail, off)->next = c;
	else
		f->head = c;
	f->tail = c;
}

static void fifo_unlink(struct iocx_fifo *f, struct iocx_conn *c, size_t off)
{
	struct iocx_conn_link *l = link_of(c, off);

	if (l->prev)
		link_of(l->prev, off)->next = l->next;
	else
		f->head = l->next;
	if (l->next)
		link_of(l->next, off)->prev = l->prev;
	else
		f->tail = l->prev;
	l->next = l->prev = NULL;
}

/* Post c the KICK whose reference was taken under a->lock, while c could
 * not leave its FIFO (granted a slot, or the pacing FIFO's new head). */
static void wake(struct iocx_engine *e, struct iocx_conn *c)
{
	if (!c)
		return;
	while (e->backend->post(e, IOCX_EV_KICK, c) != IOCX_OK)
		;
}

static bool queueing(const struct iocx_engine *e)
{
	return e->opts.max_in_flight != 0 && e->opts.queue_limit != 0;
}

/* See admission.h. */
void iocx__admission_init(struct iocx_engine *e)
{
	struct iocx_admission *a = &e->admission;
	uint32_t burst = e->opts.connect_burst ? e->opts.connect_burst : 1;

	iocx__mutex_init(&a->lock);
	a->q.head = a->q.tail = NULL;
	a->len = 0;
	/* Rounded up: turns a little short would let a window hold one
	 * start more than the rule now and then; a little long, they slow
	 * the rate by less than rate / 10^9 (2 * 10^-6 at 2,000/s). */
	a->interval_ns = e->opts.connect_rate
				 ? (NS_PER_S + e->opts.connect_rate - 1) /
					   e->opts.connect_rate
				 : 0;
	a->early_ns = (uint64_t)(burst - 1) * a->interval_ns;
	a->next_ns = 0;		/* long past: the first start takes now */
	a->pq.head = a->pq.tail = NULL;
}

/* See admission.h. */
void iocx__admission_fini(struct iocx_engine *e)
{
	iocx__mutex_destroy(&e->admission.lock);
}

static void unlink_locked(struct iocx_admission *a, struct iocx_conn *c)
{
	fifo_unlink(&a->q, c, offsetof(struct iocx_conn, aq));
	c->aq_queued = false;
	a->len--;
}

/* See admission.h. */
enum iocx_admit iocx__admit(struct iocx_engine *e, struct iocx_conn *c)
{
	struct iocx_admission *a = &e->admission;
	enum iocx_admit r;

	if (!queueing(e)) {
		if (!iocx__engine_reserve_in_flight(e, iocx__counters(e)))
			return IOCX_ADMIT_LIMIT;
		c->holds_slot = true;
		return IOCX_ADMIT_GO;
	}
	iocx__mutex_lock(&a->lock);
	if (atomic_load(&e->capped_in_flight) < e->opts.max_in_flight) {
		atomic_fetch_add(&e->capped_in_flight, 1);
		r = IOCX_ADMIT_GO;
	} else if (a->len < e->opts.queue_limit) {
		fifo_push(&a->q, c, offsetof(struct iocx_conn, aq));
		a->len++;
		c->aq_queued = true;
		r = IOCX_ADMIT_QUEUED;
	} else {
		r = IOCX_ADMIT_LIMIT;
	}
	iocx__mutex_unlock(&a->lock);
	if (r == IOCX_ADMIT_GO) {
		iocx__count(&iocx__counters(e)->in_flight, 1);
		c->holds_slot = true;
	}
	return r;
}

/* See admission.h. */
bool iocx__admission_release(struct iocx_engine *e)
{
	struct iocx_admission *a = &e->admission;
	struct iocx_conn *c;

	iocx__mutex_lock(&a->lock);
	c = a->q.head;
	if (c) {
		unlink_locked(a, c);
		atomic_store(&c->aq_granted, true);
		/* The KICK's reference, taken while c cannot leave: its
		 * close withdraws it under this lock. */
		iocx__conn_ref(c);
	} else {
		atomic_fetch_sub(&e->capped_in_flight, 1);
	}
	iocx__mutex_unlock(&a->lock);
	wake(e, c);
	return c != NULL;
}

/* See admission.h. */
bool iocx__admission_withdraw(struct iocx_engine *e, struct iocx_conn *c)
{
	struct iocx_admission *a = &e->admission;
	bool queued;

	iocx__mutex_lock(&a->lock);
	queued = c->aq_queued;
	if (queued)
		unlink_locked(a, c);
	iocx__mutex_unlock(&a->lock);
	return queued;
}

/* Unlink c from the pacing FIFO; returns the new head to wake (with its
 * reference taken) when c was the head, else NULL. */
static struct iocx_conn *unpace_locked(struct iocx_admission *a,
				       struct iocx_conn *c)
{
	bool was_head = a->pq.head == c;

	fifo_unlink(&a->pq, c, offsetof(struct iocx_conn, pq));
	c->pq_in = false;
	atomic_store(&c->pq_wake, false);
	if (!was_head || !a->pq.head)
		return NULL;
	atomic_store(&a->pq.head->pq_wake, true);
	iocx__conn_ref(a->pq.head);
	return a->pq.head;
}

/* See admission.h. */
bool iocx__admission_pace(struct iocx_engine *e, struct iocx_conn *c,
			  uint64_t now, uint64_t *due)
{
	struct iocx_admission *a = &e->admission;
	struct iocx_conn *next = NULL;
	bool go = false;

	*due = 0;
	if (a->interval_ns == 0)
		return true;
	iocx__mutex_lock(&a->lock);
	if (a->pq.head == NULL || a->pq.head == c) {
		if (now + a->early_ns >= a->next_ns) {
			/* Early within the burst, or late by less than one
			 * interval: the slot stands.  Later: one at now. */
			uint64_t slot = now < a->next_ns + a->interval_ns
						? a->next_ns
						: now;

			a->next_ns = slot + a->interval_ns;
			go = true;
			if (c->pq_in)
				next = unpace_locked(a, c);
		} else {
			*due = a->next_ns - a->early_ns;
		}
	}
	if (!go && !c->pq_in) {
		fifo_push(&a->pq, c, offsetof(struct iocx_conn, pq));
		c->pq_in = true;
	}
	iocx__mutex_unlock(&a->lock);
	wake(e, next);
	return go;
}

/* See admission.h. */
void iocx__admission_unpace(struct iocx_engine *e, struct iocx_conn *c)
{
	struct iocx_admission *a = &e->admission;
	struct iocx_conn *next = NULL;

	iocx__mutex_lock(&a->lock);
	if (c->pq_in)
		next = unpace_locked(a, c);
	iocx__mutex_unlock(&a->lock);
	wake(e, next);
}
