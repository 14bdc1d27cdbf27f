/*
 * The rate schedule (see pacer.h).
 */
#include "pacer.h"

#define NS_PER_S 1000000000ull

/* See pacer.h. */
void pacer_init(struct pacer *p, uint64_t rate, uint64_t now_ns)
{
	uint64_t two_periods;

	p->rate = rate ? rate : 1;
	p->t0_ns = now_ns;
	p->base = 0;
	p->next = 0;
	p->resets = 0;
	two_periods = 2 * NS_PER_S / p->rate;
	p->max_lag_ns = two_periods > PACER_MIN_LAG_NS ? two_periods
						       : PACER_MIN_LAG_NS;
}

/* See pacer.h. */
uint64_t pacer_due_ns(const struct pacer *p, uint64_t i)
{
	uint64_t k = i - p->base;

	/* k / rate whole seconds plus the remainder's share: exact, and no
	 * overflow for k below 2^64 / 1e9 starts per remainder. */
	return p->t0_ns + k / p->rate * NS_PER_S +
	       k % p->rate * NS_PER_S / p->rate;
}

/* See pacer.h. */
bool pacer_poll(struct pacer *p, uint64_t now_ns, uint64_t *wait_ns)
{
	uint64_t due = pacer_due_ns(p, p->next);

	if (now_ns < due) {
		*wait_ns = due - now_ns;
		return false;
	}
	if (now_ns - due > p->max_lag_ns) {
		/* Too far behind: this start goes now, the rest follow at
		 * the rate from here, not in a catch-up burst. */
		p->t0_ns = now_ns;
		p->base = p->next;
		p->resets++;
	}
	p->next++;
	*wait_ns = 0;
	return true;
}
