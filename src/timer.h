/*
 * Deadlines: a binary min-heap of (when, connection) with O(log n) add,
 * remove and pop, never a scan.  Each connection has at most one timer
 * (a connect deadline or a retry backoff), and its slot index lives in
 * the connection, so cancelling a timer is O(log n) too.
 *
 * The heap is not thread-safe: the engine guards it with e->timer_lock.
 * Capacity is reserved when a connection that may use a timer is created,
 * so iocx__timer_add never allocates and never fails.
 */
#ifndef IOCX_TIMER_H
#define IOCX_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iocx_conn;

/*
 * 16 bytes: the generation a timer was armed with is not kept here.  The
 * engine bumps conn->timer_gen at every arm and disarm under the lock
 * that guards the heap, so while c is in the heap its timer_gen is the
 * one it was armed with, and a pop reads it there.
 */
struct iocx_timer_slot {
	uint64_t when;			/* engine clock, ns */
	struct iocx_conn *conn;
};

struct iocx_timer_heap {
	struct iocx_timer_slot *slots;
	size_t len;
	size_t cap;
};

#define IOCX_TIMER_NONE UINT64_MAX

/* Make room for at least cap timers; IOCX_OK or IOCX_E_NOMEM. */
int iocx__timer_reserve(struct iocx_timer_heap *h, size_t cap);

/* Free the heap's storage (it must be empty). */
void iocx__timer_free(struct iocx_timer_heap *h);

/* Arm c's timer at when; c must not be armed and capacity reserved. */
void iocx__timer_add(struct iocx_timer_heap *h, struct iocx_conn *c,
		     uint64_t when);

/* Disarm c's timer; returns false when it was not armed. */
bool iocx__timer_remove(struct iocx_timer_heap *h, struct iocx_conn *c);

/* The earliest deadline, or IOCX_TIMER_NONE when the heap is empty. */
uint64_t iocx__timer_next(const struct iocx_timer_heap *h);

/*
 * Remove and return a connection whose deadline is <= now (and the
 * generation it was armed with: its timer_gen), or NULL.
 */
struct iocx_conn *iocx__timer_pop_expired(struct iocx_timer_heap *h,
					  uint64_t now, uint32_t *gen);

#endif /* IOCX_TIMER_H */
