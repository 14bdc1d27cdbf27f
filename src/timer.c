/*
 * The deadline heap (see timer.h).  A connection's timer_slot is its index
 * in slots plus one; 0 means not armed.
 */
#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "timer.h"

static void place(struct iocx_timer_heap *h, size_t i,
		  struct iocx_timer_slot s)
{
	h->slots[i] = s;
	s.conn->timer_slot = i + 1;
}

static void sift_up(struct iocx_timer_heap *h, size_t i)
{
	struct iocx_timer_slot s = h->slots[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->slots[parent].when <= s.when)
			break;
		place(h, i, h->slots[parent]);
		i = parent;
	}
	place(h, i, s);
}

static void sift_down(struct iocx_timer_heap *h, size_t i)
{
	struct iocx_timer_slot s = h->slots[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->len)
			break;
		if (child + 1 < h->len &&
		    h->slots[child + 1].when < h->slots[child].when)
			child++;
		if (s.when <= h->slots[child].when)
			break;
		place(h, i, h->slots[child]);
		i = child;
	}
	place(h, i, s);
}

/* See timer.h. */
int iocx__timer_reserve(struct iocx_timer_heap *h, size_t cap)
{
	struct iocx_timer_slot *slots;
	size_t n = h->cap ? h->cap : 64;

	if (cap <= h->cap)
		return IOCX_OK;
	if (cap > SIZE_MAX / 2 / sizeof(*slots))
		return IOCX_E_NOMEM;
	while (n < cap)
		n *= 2;
	slots = iocx__alloc(n * sizeof(*slots));
	if (!slots)
		return IOCX_E_NOMEM;
	if (h->len)
		memcpy(slots, h->slots, h->len * sizeof(*slots));
	iocx__free(h->slots);
	h->slots = slots;
	h->cap = n;
	return IOCX_OK;
}

/* See timer.h. */
void iocx__timer_free(struct iocx_timer_heap *h)
{
	iocx__free(h->slots);
	memset(h, 0, sizeof(*h));
}

/* See timer.h. */
void iocx__timer_add(struct iocx_timer_heap *h, struct iocx_conn *c,
		     uint64_t when)
{
	struct iocx_timer_slot s = { .when = when, .conn = c };

	h->slots[h->len++] = s;
	sift_up(h, h->len - 1);
}

/* See timer.h. */
bool iocx__timer_remove(struct iocx_timer_heap *h, struct iocx_conn *c)
{
	struct iocx_conn *moved;
	size_t i;

	if (c->timer_slot == 0)
		return false;
	i = c->timer_slot - 1;
	c->timer_slot = 0;
	if (--h->len == i)
		return true;
	/* Move the last slot into the hole; it may need to go either way. */
	moved = h->slots[h->len].conn;
	place(h, i, h->slots[h->len]);
	sift_up(h, i);
	sift_down(h, moved->timer_slot - 1);
	return true;
}

/* See timer.h. */
uint64_t iocx__timer_next(const struct iocx_timer_heap *h)
{
	return h->len ? h->slots[0].when : IOCX_TIMER_NONE;
}

/* See timer.h. */
struct iocx_conn *iocx__timer_pop_expired(struct iocx_timer_heap *h,
					  uint64_t now, uint32_t *gen)
{
	struct iocx_conn *c;

	if (h->len == 0 || h->slots[0].when > now)
		return NULL;
	c = h->slots[0].conn;
	*gen = c->timer_gen;
	iocx__timer_remove(h, c);
	return c;
}
