/*
 * Connects by host name: the resolver queries and the Happy Eyeballs
 * race of attempts (RFC 8305), for conn.c.  docs/names.md has the design.
 *
 * A race belongs to one connection (the parent) in CONN_RESOLVING or
 * CONN_RACING.  conn.c stays the only writer of conn->state: it calls
 * iocx__race_step() with the parent's lock held and moves the state on
 * from the verdict.  Resolver answers and attempt outcomes arrive on any
 * thread; they are left in the race's mailbox (its leaf lock) and the
 * parent is woken with a posted IOCX_EV_KICK, whose settle() steps the
 * race.  Attempts never take the parent's lock: the parent takes theirs
 * (to start them, and to take the winner's socket).
 */
#ifndef IOCX_RACE_H
#define IOCX_RACE_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

enum iocx_race_verdict {
	RACE_WAIT,		/* nothing for conn.c to do yet */
	RACE_RACING,		/* attempts have started (RESOLVING ends) */
	RACE_DIRECT,		/* one address in all: c->remote is set,
				   connect to it as by address */
	RACE_WON,		/* c holds the winner's connected socket,
				   c->remote its address */
	RACE_FAILED,		/* every attempt failed (or no address):
				   *status / *os_code; nothing of the race
				   runs any more (iocx__race_retryable()) */
	RACE_CANCELLED,		/* closed; all queries, attempts over */
};

/*
 * Attach a race for host to c (before c is started).  IOCX_OK or
 * IOCX_E_NOMEM.
 */
int iocx__race_create(struct iocx_conn *c, const char *host, uint16_t port);

/*
 * Send the queries, with c->lock held, in CONN_RESOLVING: the first race,
 * or a new one after RACE_FAILED (the retry policy's next attempt, from
 * a fresh resolution; the engine's cache answers if it holds the name).
 * IOCX_OK, or the resolver's error when no query could start (nothing is
 * then out).
 */
int iocx__race_begin(struct iocx_conn *c);

/*
 * Take in what arrived, apply RFC 8305 and say what c must do; with
 * c->lock held, in CONN_RESOLVING or CONN_RACING.  closing: a close or
 * destroy was asked for.  Arms c's timer for the next delay or deadline.
 */
enum iocx_race_verdict iocx__race_step(struct iocx_conn *c, bool closing,
				       int *status, uint32_t *os_code);

/*
 * After RACE_FAILED: may the retry policy race again?  True when each
 * attempt of the race failed with a failure the policy retries
 * (iocx__conn_retryable()), or, with no address to try, resolution
 * failed (IOCX_E_RESOLVE; never IOCX_E_NAME).
 */
bool iocx__race_retryable(const struct iocx_conn *c);

/*
 * The name resolved to one address (RACE_DIRECT): c connects to it, and
 * retries, exactly as a connect by address.
 */
bool iocx__race_direct(const struct iocx_conn *c);

/* The request's user, for the on_socket hook of attempt, a race's
 * attempt (conn->child). */
void *iocx__race_user(const struct iocx_conn *attempt);

/*
 * For c's result (kept in the race, so a connect by address pays
 * nothing for them): the addresses tried, over every race (1 for a
 * connect by address), and how long the name took to resolve, summed
 * over every race (0 by address).
 */
unsigned iocx__race_addresses_tried(const struct iocx_conn *c);
uint64_t iocx__race_resolve_ns(const struct iocx_conn *c);

/*
 * A pointer's room in q for the engine's own resolver (NULL until it
 * writes one), so that its cancel finds its record of q at once instead
 * of searching.  Only that resolver reads or writes it, under its own
 * lock; q is valid memory from start until the race is freed.
 */
void **iocx__query_slot(iocx_query *q);

/* Free c's race once c's last reference is gone. */
void iocx__race_free(struct iocx_conn *c);

#endif /* IOCX_RACE_H */
