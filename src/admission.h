/*
 * Admission of connect requests (engine options max_in_flight with
 * queue_limit, connect_rate with connect_burst): the FIFO of requests
 * waiting for an in-flight slot, and the schedule that paces attempts
 * across the engine.  Both are pre-attempt states of the connection
 * (CONN_QUEUED, CONN_PACED in conn.h): no socket, at most one timer.
 *
 * Locking: a->lock is a leaf lock guarding the queue, its links in the
 * connections (aq, aq_queued; pq, pq_in), the slot count while a queue
 * is kept, and the schedule.  A connection's aq_granted is set under it and
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

/* A connection's links in one of the two FIFOs, and a FIFO. */
struct iocx_conn_link {
	struct iocx_conn *prev, *next;
};

struct iocx_fifo {
	struct iocx_conn *head, *tail;
};

struct iocx_admission {
	iocx_mutex lock;
	struct iocx_fifo q;		/* waiting for a slot, oldest first */
	size_t len;
	/* Pacing (admission.c): next_ns is the theoretical time of the
	 * next start, its slot; a start may come early_ns before it (the
	 * burst).  interval 0 = unpaced.  Requests that may not start yet
	 * wait in the pacing FIFO (pq), and only its head waits on a timer,
	 * for next_ns - early_ns. */
	uint64_t next_ns;
	uint64_t interval_ns;		/* 1 s / connect_rate */
	uint64_t early_ns;		/* (connect_burst - 1) * interval */
	struct iocx_fifo pq;		/* waiting to start, oldest first */
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
 * c (holding its slot, c->lock held) wants to start an attempt at now.
 * Returns true when it may (always when unpaced): start now; its slot
 * in the schedule is taken, and now must be the start's stamp (the
 * window rule holds for the readings passed here, admission.c).  Only
 * when the pacing FIFO is empty or c is its head, so a late wake-up
 * starts at most the burst, never a backlog of turns.  Otherwise c waits in the FIFO (appended on its first call)
 * and *due is when it may start if c is the head (arm the timer for
 * it), else 0 (the head's start wakes the next: pq_wake set and a KICK
 * posted).
 */
bool iocx__admission_pace(struct iocx_engine *e, struct iocx_conn *c,
			  uint64_t now, uint64_t *due);

/*
 * Take c out of the pacing FIFO, with c->lock held (close, total
 * deadline); the next waiter is woken when c was the head.
 */
void iocx__admission_unpace(struct iocx_engine *e, struct iocx_conn *c);

#endif /* IOCX_ADMISSION_H */
