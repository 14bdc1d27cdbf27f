/*
 * timer-heap: what an armed deadline costs a connect.  Steady state with
 * n connects in flight, each with a deadline: a completion disarms a
 * random one (from the middle of the heap) and a new connect arms a later
 * deadline.  Prints ns per disarm + arm pair for n = 64 (a typical
 * concurrency), 1,000 and 100,000, and the ratio to n = 64.
 * Prints "timer-heap: ..." lines; exits 1 on a setup failure.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conn.h"
#include "timer.h"

#define PAIRS 2000000u

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005u + 1442695040888963407u;
	return *s >> 11;
}

/* ns per disarm + arm pair with `armed` deadlines in the heap. */
static double measure(size_t armed)
{
	struct iocx_timer_heap h = { 0 };
	struct iocx_conn *c = calloc(armed, sizeof(*c));
	uint64_t seed = 42, t0, t1, now = 1000000000u;

	if (!c || iocx__timer_reserve(&h, armed) != IOCX_OK) {
		fprintf(stderr, "timer-heap: out of memory\n");
		exit(1);
	}
	/* Deadlines spread over the next 60 s. */
	for (size_t i = 0; i < armed; i++)
		iocx__timer_add(&h, &c[i], now + lcg(&seed) % 60000000000u);
	t0 = iocx__now_ns();
	for (unsigned i = 0; i < PAIRS; i++) {
		struct iocx_conn *x = &c[lcg(&seed) % armed];

		iocx__timer_remove(&h, x);
		/* The next connect's deadline: 60 s from a clock that moves
		 * on, so later than every deadline armed so far. */
		now += 1000;
		iocx__timer_add(&h, x, now + 60000000000u);
	}
	t1 = iocx__now_ns();
	for (size_t i = 0; i < armed; i++)
		iocx__timer_remove(&h, &c[i]);
	iocx__timer_free(&h);
	free(c);
	return (double)(t1 - t0) / PAIRS;
}

int main(void)
{
	static const size_t sizes[] = { 64, 1000, 100000 };
	double base = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		double ns = measure(sizes[i]);

		if (i == 0)
			base = ns;
		printf("timer-heap: %6zu armed: %.1f ns per disarm+arm "
		       "(%.2fx n=64)\n",
		       sizes[i], ns, ns / base);
	}
	return 0;
}
