/*
 * Admission of connect requests (engine options max_in_flight with
 * queue_limit, connect_rate with connect_burst): the FIFO of requests
 * waiting for an in-flight slot, and the token bucket that paces attempts
 * across the engine.  Both are pre-attempt states of the connection
 * (CONN_QUEUED, CONN_PACED in conn.h): no socket, at most one timer.
 *
 * Locking: a->lock is a leaf lock guarding the queue, its links in the
 * connections (aq_next, aq_prev, aq_queued), the slot count while a queue
 * is kept, and the bucket.  A connection's aq_granted is set under it and
 * read with an atomic load.
 */
#ifndef IOCX_ADMISSION_H
#define IOCX_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

struct iocx_engine;
struct iocx_conn;
struct iocx_engine_options;

struct iocx_admission {
	iocx_mutex lock;
	struct iocx_conn *head, *tail;	/* waiting for a slot, oldest first */
	size_t len;
	/* Pacing (GCRA form of the token bucket): the next attempt may
	 * start at tat - tolerance at the earliest; interval 0 = unpaced. */
	uint64_t tat;
	uint64_t interval_ns;		/* 1 s / connect_rate */
	uint64_t tolerance_ns;		/* (connect_burst - 1) * interval */
};

enum iocx_admit {
	IOCX_ADMIT_GO,		/* c holds an in-flight slot */
	IOCX_ADMIT_QUEUED,	/* c waits in the queue for one */
	IOCX_ADMIT_LIMIT,	/* neither: IOCX_E_LIMIT */
};

/* Set up and release e's admission state (e->opts resolved). */
void iocx__admission_init(struct iocx_engine *e);
void iocx__admission_fini(struct iocx_engine *e);

/*
 * Give c an in-flight slot (counted in set's in_flight gauge), or queue
 * it when the cap is reached and the queue has room.  With c->lock held.
 */
enum iocx_admit iocx__admit(struct iocx_engine *e, struct iocx_conn *c);

/*
 * A slot is free again.  Returns true when it went to the oldest queued
 * request (granted, and a KICK posted to it), false when it was released.
 */
bool iocx__admission_release(struct iocx_engine *e);

/*
 * Take c out of the queue, with c->lock held (close, total deadline).
 * Returns false when it had been granted a slot meanwhile: c holds that
 * slot then.
 */
bool iocx__admission_withdraw(struct iocx_engine *e, struct iocx_conn *c);

/*
 * Reserve the next attempt's start time under the pacing: now when a
 * token is at hand, else the time the bucket grants one.  now when
 * unpaced.
 */
uint64_t iocx__admission_pace(struct iocx_engine *e, uint64_t now);

#endif /* IOCX_ADMISSION_H */
