/*
 * Unit tests of the deadline heap (src/timer.c) on its own: no engine, no
 * locks, a few zeroed connections as owners.  The heap's storage comes
 * from the library allocator, routed to cmocka's checked heap, so a test
 * that forgets iocx__timer_free (or a heap that leaks a block when it
 * grows) fails.
 *
 * After every operation check_heap() verifies the two invariants the
 * engine relies on: each slot's deadline is no earlier than its parent's,
 * and each armed owner's timer_slot names its own slot (index + 1).
 * cmocka checks for leaks at the end of each test body, so every body
 * ends with heap_done(): the heap empty, its storage freed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "engine.h"
#include "conn.h"
#include "timer.h"
#include "alloc_hooks.h"

/* Owners of the randomised test: all fit in the first block of 64 slots,
 * so it never grows; the reserve_* tests cover growth. */
#define OWNERS 48
#define RANDOM_OPS 10000

/* ---- fixtures ------------------------------------------------------- */

struct tfx {
	struct iocx_timer_heap h;
	void *sentinel;		/* see setup() */
};

static struct tfx the_tfx;

static int group_setup(void **state)
{
	(void)state;
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct tfx *fx = &the_tfx;

	memset(fx, 0, sizeof(*fx));
	alloc_hooks_reset();
	/*
	 * cmocka checks for leaks from the last block allocated before the
	 * test body; a block that lives until the teardown keeps that walk
	 * away from blocks the body frees (the heap's storage when it grows).
	 */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *fx = *state;

	/* A passing body freed the heap (heap_done); a failed one jumped
	 * out before that, so its storage goes here. */
	fx->h.len = 0;
	iocx__timer_free(&fx->h);
	test_free(fx->sentinel);
	return 0;
}

/* ---- helpers -------------------------------------------------------- */

/* The heap invariant and every owner's back-pointer. */
#define check_heap(h) check_heap_((h), __FILE__, __LINE__)

static void check_heap_(const struct iocx_timer_heap *h, const char *file,
			int line)
{
	size_t i;

	if (h->len > h->cap) {
		print_error("heap len %lu above cap %lu\n",
			    (unsigned long)h->len, (unsigned long)h->cap);
		_fail(file, line);
	}
	for (i = 0; i < h->len; i++) {
		const struct iocx_timer_slot *s = &h->slots[i];

		if (s->conn == NULL || s->conn->timer_slot != i + 1) {
			print_error("slot %lu: owner's timer_slot is %lu\n",
				    (unsigned long)i,
				    s->conn ? (unsigned long)s->conn->timer_slot
					    : 0ul);
			_fail(file, line);
		}
		if (i > 0 && h->slots[(i - 1) / 2].when > s->when) {
			print_error("slot %lu (when %llu) is earlier than its "
				    "parent (when %llu)\n", (unsigned long)i,
				    (unsigned long long)s->when,
				    (unsigned long long)h->slots[(i - 1) / 2]
					    .when);
			_fail(file, line);
		}
	}
}

/* End of a test: the heap must be empty; free its storage. */
static void heap_done(struct tfx *fx)
{
	assert_int_equal(fx->h.len, 0);
	assert_int_equal(iocx__timer_next(&fx->h), IOCX_TIMER_NONE);
	iocx__timer_free(&fx->h);
	assert_null(fx->h.slots);
	assert_int_equal(fx->h.cap, 0);
}

/* Pop one timer that must be there, with its deadline and generation. */
static void pop_expect(struct iocx_timer_heap *h, struct iocx_conn *want,
		       uint64_t when, uint32_t gen)
{
	uint32_t got_gen = 0;

	assert_int_equal(iocx__timer_next(h), when);
	assert_ptr_equal(iocx__timer_pop_expired(h, when, &got_gen), want);
	assert_int_equal(got_gen, gen);
	assert_int_equal(want->timer_slot, 0);
	check_heap(h);
}

/* Arm owners c[0..n) at whens[0..n) (gen = index), in that order. */
static void add_all(struct iocx_timer_heap *h, struct iocx_conn *c,
		    const uint64_t *whens, size_t n)
{
	size_t i;

	assert_int_equal(iocx__timer_reserve(h, n), IOCX_OK);
	for (i = 0; i < n; i++) {
		c[i].timer_gen = (uint32_t)i;
		iocx__timer_add(h, &c[i], whens[i]);
		check_heap(h);
	}
}

/* Pop everything; the deadlines must come out as the sorted whens. */
static void drain_sorted(struct iocx_timer_heap *h, const uint64_t *sorted,
			 size_t n)
{
	uint64_t last = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t gen;
		struct iocx_conn *c;

		assert_int_equal(iocx__timer_next(h), sorted[i]);
		c = iocx__timer_pop_expired(h, UINT64_MAX - 1, &gen);
		assert_non_null(c);
		assert_int_equal(c->timer_slot, 0);
		assert_true(sorted[i] >= last);
		last = sorted[i];
		check_heap(h);
	}
	assert_int_equal(h->len, 0);
	assert_int_equal(iocx__timer_next(h), IOCX_TIMER_NONE);
}

/* ---- next / empty heap ---------------------------------------------- */

static void timer_next_empty_returns_none(void **state)
{
	struct tfx *fx = *state;
	uint32_t gen = 77;

	assert_int_equal(iocx__timer_next(&fx->h), IOCX_TIMER_NONE);
	/* Even with storage, an empty heap has no deadline and pops none. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 1), IOCX_OK);
	assert_int_equal(iocx__timer_next(&fx->h), IOCX_TIMER_NONE);
	assert_null(iocx__timer_pop_expired(&fx->h, UINT64_MAX, &gen));
	assert_int_equal(gen, 77);
	heap_done(fx);
}

static void timer_next_returns_earliest(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[3];

	memset(c, 0, sizeof(c));
	assert_int_equal(iocx__timer_reserve(&fx->h, 3), IOCX_OK);
	c[0].timer_gen = 1;
	iocx__timer_add(&fx->h, &c[0], 500);
	assert_int_equal(iocx__timer_next(&fx->h), 500);
	c[1].timer_gen = 1;
	iocx__timer_add(&fx->h, &c[1], 900);
	assert_int_equal(iocx__timer_next(&fx->h), 500);
	c[2].timer_gen = 1;
	iocx__timer_add(&fx->h, &c[2], 100);
	assert_int_equal(iocx__timer_next(&fx->h), 100);
	assert_true(iocx__timer_remove(&fx->h, &c[2]));
	assert_int_equal(iocx__timer_next(&fx->h), 500);
	assert_true(iocx__timer_remove(&fx->h, &c[0]));
	assert_true(iocx__timer_remove(&fx->h, &c[1]));
	assert_int_equal(iocx__timer_next(&fx->h), IOCX_TIMER_NONE);
	heap_done(fx);
}

/* ---- add / pop order -------------------------------------------------- */

static void timer_add_descending_pops_ascending(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[8];
	uint64_t whens[8], sorted[8];
	size_t i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < 8; i++) {
		whens[i] = 8000 - 1000 * i;
		sorted[i] = 1000 * (i + 1);
	}
	add_all(&fx->h, c, whens, 8);
	/* Each add of an earlier deadline sifts it to the root. */
	assert_ptr_equal(fx->h.slots[0].conn, &c[7]);
	drain_sorted(&fx->h, sorted, 8);
	heap_done(fx);
}

static void timer_add_equal_whens_pops_all(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[6];
	uint64_t whens[6] = { 5, 5, 5, 5, 5, 5 };
	bool seen[6] = { false };
	size_t i;

	memset(c, 0, sizeof(c));
	add_all(&fx->h, c, whens, 6);
	for (i = 0; i < 6; i++) {
		uint32_t gen = 99;
		struct iocx_conn *got;

		got = iocx__timer_pop_expired(&fx->h, 5, &gen);
		assert_non_null(got);
		/* Ties may come out in any order, but each exactly once and
		 * with its own generation. */
		assert_int_equal(gen, (uint32_t)(got - c));
		assert_false(seen[gen]);
		seen[gen] = true;
		check_heap(&fx->h);
	}
	assert_int_equal(fx->h.len, 0);
	heap_done(fx);
}

/* ---- pop_expired and now ---------------------------------------------- */

static void timer_pop_expired_respects_now(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[3];
	uint32_t gen = 0;

	memset(c, 0, sizeof(c));
	assert_int_equal(iocx__timer_reserve(&fx->h, 3), IOCX_OK);
	c[0].timer_gen = 10;
	iocx__timer_add(&fx->h, &c[0], 100);
	c[1].timer_gen = 20;
	iocx__timer_add(&fx->h, &c[1], 200);
	c[2].timer_gen = 30;
	iocx__timer_add(&fx->h, &c[2], 300);

	assert_null(iocx__timer_pop_expired(&fx->h, 0, &gen));
	assert_null(iocx__timer_pop_expired(&fx->h, 99, &gen));
	assert_int_equal(fx->h.len, 3);
	assert_int_equal(gen, 0);

	/* A deadline equal to now has expired. */
	assert_ptr_equal(iocx__timer_pop_expired(&fx->h, 100, &gen), &c[0]);
	assert_int_equal(gen, 10);
	assert_null(iocx__timer_pop_expired(&fx->h, 100, &gen));

	/* A later now takes everything up to it, one per call. */
	assert_ptr_equal(iocx__timer_pop_expired(&fx->h, 250, &gen), &c[1]);
	assert_int_equal(gen, 20);
	assert_null(iocx__timer_pop_expired(&fx->h, 250, &gen));
	assert_int_equal(iocx__timer_next(&fx->h), 300);
	check_heap(&fx->h);

	assert_ptr_equal(iocx__timer_pop_expired(&fx->h, UINT64_MAX, &gen),
			 &c[2]);
	assert_int_equal(gen, 30);
	assert_null(iocx__timer_pop_expired(&fx->h, UINT64_MAX, &gen));
	heap_done(fx);
}

static void timer_pop_then_rearm_same_owner(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c;
	uint32_t gen;

	memset(&c, 0, sizeof(c));
	assert_int_equal(iocx__timer_reserve(&fx->h, 1), IOCX_OK);
	c.timer_gen = 1;
	iocx__timer_add(&fx->h, &c, 10);
	pop_expect(&fx->h, &c, 10, 1);
	/* A popped owner is disarmed: removing it again is a no-op. */
	assert_false(iocx__timer_remove(&fx->h, &c));
	c.timer_gen = 2;
	iocx__timer_add(&fx->h, &c, 20);
	assert_int_equal(c.timer_slot, 1);
	assert_ptr_equal(iocx__timer_pop_expired(&fx->h, 20, &gen), &c);
	assert_int_equal(gen, 2);
	heap_done(fx);
}

/* ---- generations ------------------------------------------------------ */

static void timer_gen_round_trips(void **state)
{
	struct tfx *fx = *state;
	static const uint32_t gens[5] = {
		0, 1, 0x7FFFFFFFu, 0xDEADBEEFu, UINT32_MAX,
	};
	struct iocx_conn c[5];
	size_t i;

	memset(c, 0, sizeof(c));
	assert_int_equal(iocx__timer_reserve(&fx->h, 5), IOCX_OK);
	/* Deadlines in the reverse order of the generations, so each one
	 * moves through the heap before it comes out. */
	for (i = 0; i < 5; i++) {
		c[i].timer_gen = gens[i];
		iocx__timer_add(&fx->h, &c[i], 50 - 10 * i);
	}
	/* Removing one in the middle must not mix up the others' gens. */
	assert_true(iocx__timer_remove(&fx->h, &c[2]));
	check_heap(&fx->h);
	pop_expect(&fx->h, &c[4], 10, gens[4]);
	pop_expect(&fx->h, &c[3], 20, gens[3]);
	pop_expect(&fx->h, &c[1], 40, gens[1]);
	pop_expect(&fx->h, &c[0], 50, gens[0]);
	heap_done(fx);
}

/* ---- remove ----------------------------------------------------------- */

static void timer_remove_not_armed_returns_false(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[3];
	uint64_t whens[2] = { 7, 3 };

	memset(c, 0, sizeof(c));
	/* On an empty heap without storage, ... */
	assert_false(iocx__timer_remove(&fx->h, &c[2]));
	/* ... and on a heap armed by others: nothing changes. */
	add_all(&fx->h, c, whens, 2);
	assert_false(iocx__timer_remove(&fx->h, &c[2]));
	assert_int_equal(fx->h.len, 2);
	assert_int_equal(c[2].timer_slot, 0);
	check_heap(&fx->h);
	/* Removing twice: the second time it is no longer armed. */
	assert_true(iocx__timer_remove(&fx->h, &c[0]));
	assert_false(iocx__timer_remove(&fx->h, &c[0]));
	assert_int_equal(fx->h.len, 1);
	pop_expect(&fx->h, &c[1], 3, 1);
	heap_done(fx);
}

static void timer_remove_root_keeps_order(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[7];
	static const uint64_t whens[7] = { 1, 10, 2, 11, 12, 3, 4 };
	static const uint64_t rest[6] = { 2, 3, 4, 10, 11, 12 };

	memset(c, 0, sizeof(c));
	add_all(&fx->h, c, whens, 7);
	assert_ptr_equal(fx->h.slots[0].conn, &c[0]);
	/* The last slot (4) fills the root and must sift down. */
	assert_true(iocx__timer_remove(&fx->h, &c[0]));
	assert_int_equal(c[0].timer_slot, 0);
	check_heap(&fx->h);
	drain_sorted(&fx->h, rest, 6);
	heap_done(fx);
}

static void timer_remove_middle_sifts_up(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[7];
	/* Added in this order the heap is exactly [1,10,2,11,12,3,4]. */
	static const uint64_t whens[7] = { 1, 10, 2, 11, 12, 3, 4 };
	static const uint64_t rest[6] = { 1, 2, 3, 4, 10, 12 };

	memset(c, 0, sizeof(c));
	add_all(&fx->h, c, whens, 7);
	assert_int_equal(c[3].timer_slot, 4);
	/* Removing 11 (slot 3) moves the last slot (4) under 10: it has to
	 * go up past its new parent. */
	assert_true(iocx__timer_remove(&fx->h, &c[3]));
	check_heap(&fx->h);
	assert_int_equal(c[6].timer_slot, 2);
	drain_sorted(&fx->h, rest, 6);
	heap_done(fx);
}

static void timer_remove_middle_sifts_down(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[7];
	/* Heap [1,2,10,3,4,11,12]. */
	static const uint64_t whens[7] = { 1, 2, 10, 3, 4, 11, 12 };
	static const uint64_t rest[6] = { 1, 3, 4, 10, 11, 12 };

	memset(c, 0, sizeof(c));
	add_all(&fx->h, c, whens, 7);
	assert_int_equal(c[1].timer_slot, 2);
	/* Removing 2 (slot 1) puts 12 above 3 and 4: it has to go down. */
	assert_true(iocx__timer_remove(&fx->h, &c[1]));
	check_heap(&fx->h);
	assert_int_equal(c[3].timer_slot, 2);
	drain_sorted(&fx->h, rest, 6);
	heap_done(fx);
}

static void timer_remove_last_slot(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[5];
	static const uint64_t whens[5] = { 1, 2, 3, 4, 5 };
	static const uint64_t rest[4] = { 1, 2, 3, 4 };

	memset(c, 0, sizeof(c));
	add_all(&fx->h, c, whens, 5);
	assert_int_equal(c[4].timer_slot, 5);
	assert_true(iocx__timer_remove(&fx->h, &c[4]));
	assert_int_equal(c[4].timer_slot, 0);
	assert_int_equal(fx->h.len, 4);
	check_heap(&fx->h);
	drain_sorted(&fx->h, rest, 4);
	heap_done(fx);
}

static void timer_remove_only_timer_empties_heap(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c;

	memset(&c, 0, sizeof(c));
	assert_int_equal(iocx__timer_reserve(&fx->h, 1), IOCX_OK);
	c.timer_gen = 1;
	iocx__timer_add(&fx->h, &c, 42);
	assert_true(iocx__timer_remove(&fx->h, &c));
	assert_int_equal(fx->h.len, 0);
	assert_int_equal(iocx__timer_next(&fx->h), IOCX_TIMER_NONE);
	heap_done(fx);
}

/* ---- randomised, against a reference model ---------------------------- */

/* A 64-bit LCG (Knuth's MMIX constants): reproducible on every platform. */
static uint64_t lcg_state;

static uint32_t lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
	return (uint32_t)(lcg_state >> 33);
}

/* The model: for each owner, whether it is armed, when, and with what gen. */
struct model {
	bool armed[OWNERS];
	uint64_t when[OWNERS];
	uint32_t gen[OWNERS];
	size_t len;
};

static uint64_t model_min(const struct model *m)
{
	uint64_t min = IOCX_TIMER_NONE;
	size_t i;

	for (i = 0; i < OWNERS; i++)
		if (m->armed[i] && m->when[i] < min)
			min = m->when[i];
	return min;
}

static void timer_random_ops_match_model(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[OWNERS];
	struct model m;
	uint32_t next_gen = 1;
	unsigned adds = 0, removes = 0, pops = 0, empty_pops = 0;
	unsigned op;

	memset(c, 0, sizeof(c));
	memset(&m, 0, sizeof(m));
	lcg_state = 0x1234567u;
	assert_int_equal(iocx__timer_reserve(&fx->h, OWNERS), IOCX_OK);

	for (op = 0; op < RANDOM_OPS; op++) {
		unsigned kind = lcg() % 8;
		size_t i = lcg() % OWNERS;

		if (kind < 4) {
			/* add: the next unarmed owner from i on, if any.
			 * Deadlines from a small range, so ties happen. */
			size_t k;

			for (k = 0; k < OWNERS && m.armed[i]; k++)
				i = (i + 1) % OWNERS;
			if (m.armed[i])
				continue;
			m.armed[i] = true;
			m.when[i] = 1000 + lcg() % 500;
			m.gen[i] = next_gen++;
			m.len++;
			c[i].timer_gen = m.gen[i];
			iocx__timer_add(&fx->h, &c[i], m.when[i]);
			adds++;
		} else if (kind < 6) {
			/* remove: armed or not, the result says which. */
			assert_int_equal(iocx__timer_remove(&fx->h, &c[i]),
					 m.armed[i]);
			if (m.armed[i]) {
				m.armed[i] = false;
				m.len--;
				removes++;
			}
		} else {
			/* pop at a random now around the deadlines. */
			uint64_t now = 990 + lcg() % 520;
			uint64_t min = model_min(&m);
			uint32_t gen = 0;
			struct iocx_conn *got;
			size_t j;

			got = iocx__timer_pop_expired(&fx->h, now, &gen);
			if (min > now) {
				assert_null(got);
				empty_pops++;
			} else {
				assert_non_null(got);
				j = (size_t)(got - c);
				assert_true(j < OWNERS);
				assert_true(m.armed[j]);
				/* Any owner with the earliest deadline. */
				assert_int_equal(m.when[j], min);
				assert_int_equal(gen, m.gen[j]);
				assert_int_equal(got->timer_slot, 0);
				m.armed[j] = false;
				m.len--;
				pops++;
			}
		}
		assert_int_equal(fx->h.len, m.len);
		assert_int_equal(iocx__timer_next(&fx->h), model_min(&m));
		check_heap(&fx->h);
		for (size_t k = 0; k < OWNERS; k++)
			assert_int_equal(c[k].timer_slot != 0, m.armed[k]);
	}
	/* The mix really exercised every operation. */
	assert_true(adds > 1000 && removes > 500 && pops > 500 &&
		    empty_pops > 100);
	assert_int_equal(fx->h.cap, 64);

	/* What is left comes out in order. */
	while (m.len > 0) {
		uint64_t min = model_min(&m);
		uint32_t gen;
		struct iocx_conn *got;

		got = iocx__timer_pop_expired(&fx->h, UINT64_MAX - 1, &gen);
		assert_non_null(got);
		assert_int_equal(m.when[got - c], min);
		m.armed[got - c] = false;
		m.len--;
	}
	assert_int_equal(fx->h.len, 0);
	heap_done(fx);
}

/* ---- reserve ---------------------------------------------------------- */

static void timer_reserve_zero_allocates_nothing(void **state)
{
	struct tfx *fx = *state;

	assert_int_equal(iocx__timer_reserve(&fx->h, 0), IOCX_OK);
	assert_int_equal(hook_allocs, 0);
	assert_null(fx->h.slots);
	assert_int_equal(fx->h.cap, 0);
	heap_done(fx);
}

static void timer_reserve_grows_and_never_shrinks(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[65];
	const struct iocx_timer_slot *before;
	size_t i;

	memset(c, 0, sizeof(c));
	/* The first reservation takes a whole first page. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 1), IOCX_OK);
	assert_int_equal(fx->h.cap, 64);
	assert_int_equal(hook_allocs, 1);
	/* Up to that capacity, nothing is allocated again. */
	before = fx->h.slots;
	assert_int_equal(iocx__timer_reserve(&fx->h, 64), IOCX_OK);
	assert_ptr_equal(fx->h.slots, before);
	assert_int_equal(hook_allocs, 1);

	/* Fill it, grow by one: the capacity doubles, timers move along. */
	for (i = 0; i < 64; i++) {
		c[i].timer_gen = (uint32_t)i;
		iocx__timer_add(&fx->h, &c[i], 1000 - i);
	}
	assert_int_equal(iocx__timer_reserve(&fx->h, 65), IOCX_OK);
	assert_int_equal(fx->h.cap, 128);
	assert_int_equal(hook_allocs, 2);
	assert_int_equal(hook_frees, 1);
	assert_int_equal(fx->h.len, 64);
	check_heap(&fx->h);
	c[64].timer_gen = 64;
	iocx__timer_add(&fx->h, &c[64], 1);
	check_heap(&fx->h);

	/* Asking for less never shrinks it. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 10), IOCX_OK);
	assert_int_equal(iocx__timer_reserve(&fx->h, 0), IOCX_OK);
	assert_int_equal(fx->h.cap, 128);
	assert_int_equal(hook_allocs, 2);

	/* A big jump doubles as often as needed, in one allocation. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 1000), IOCX_OK);
	assert_int_equal(fx->h.cap, 1024);
	assert_int_equal(hook_allocs, 3);
	assert_int_equal(hook_frees, 2);

	pop_expect(&fx->h, &c[64], 1, 64);
	for (i = 64; i-- > 0;)
		pop_expect(&fx->h, &c[i], 1000 - i, (uint32_t)i);
	/* Empty again: the storage stays until iocx__timer_free. */
	assert_int_equal(fx->h.cap, 1024);
	iocx__timer_free(&fx->h);
	assert_null(fx->h.slots);
	assert_int_equal(fx->h.cap, 0);
	assert_int_equal(fx->h.len, 0);
	assert_int_equal(hook_frees, hook_allocs);
	heap_done(fx);
}

static void timer_reserve_nomem_leaves_heap_unchanged(void **state)
{
	struct tfx *fx = *state;
	struct iocx_conn c[64];
	struct iocx_timer_slot copy[64];
	struct iocx_timer_heap before;
	size_t i;

	memset(c, 0, sizeof(c));
	/* A fresh heap: the failed first reservation leaves it empty. */
	alloc_fail_nth(0);
	assert_int_equal(iocx__timer_reserve(&fx->h, 1), IOCX_E_NOMEM);
	assert_null(fx->h.slots);
	assert_int_equal(fx->h.cap, 0);
	assert_int_equal(fx->h.len, 0);
	assert_int_equal(hook_failed, 1);

	/* A full heap: the failed growth keeps every timer where it was. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 64), IOCX_OK);
	for (i = 0; i < 64; i++) {
		c[i].timer_gen = (uint32_t)i;
		iocx__timer_add(&fx->h, &c[i], (i * 37) % 64);
	}
	before = fx->h;
	memcpy(copy, fx->h.slots, sizeof(copy));
	alloc_fail_nth(0);
	assert_int_equal(iocx__timer_reserve(&fx->h, 65), IOCX_E_NOMEM);
	assert_int_equal(hook_failed, 2);
	assert_ptr_equal(fx->h.slots, before.slots);
	assert_int_equal(fx->h.cap, before.cap);
	assert_int_equal(fx->h.len, before.len);
	assert_memory_equal(fx->h.slots, copy, sizeof(copy));
	check_heap(&fx->h);

	/* The next attempt succeeds and the order is intact. */
	assert_int_equal(iocx__timer_reserve(&fx->h, 65), IOCX_OK);
	assert_int_equal(fx->h.cap, 128);
	for (i = 0; i < 64; i++) {
		uint32_t gen;
		struct iocx_conn *got;

		assert_int_equal(iocx__timer_next(&fx->h), i);
		got = iocx__timer_pop_expired(&fx->h, i, &gen);
		assert_non_null(got);
		assert_int_equal((got - c) * 37 % 64, (long)i);
		assert_int_equal(gen, (uint32_t)(got - c));
	}
	assert_int_equal(fx->h.len, 0);
	heap_done(fx);
}

static void timer_reserve_huge_returns_nomem(void **state)
{
	struct tfx *fx = *state;
	const size_t too_many = SIZE_MAX / sizeof(struct iocx_timer_slot) + 1;

	assert_int_equal(iocx__timer_reserve(&fx->h, SIZE_MAX),
			 IOCX_E_NOMEM);
	assert_int_equal(iocx__timer_reserve(&fx->h, too_many), IOCX_E_NOMEM);
	assert_int_equal(fx->h.cap, 0);
	heap_done(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(timer_next_empty_returns_none),
		T(timer_next_returns_earliest),
		T(timer_add_descending_pops_ascending),
		T(timer_add_equal_whens_pops_all),
		T(timer_pop_expired_respects_now),
		T(timer_pop_then_rearm_same_owner),
		T(timer_gen_round_trips),
		T(timer_remove_not_armed_returns_false),
		T(timer_remove_root_keeps_order),
		T(timer_remove_middle_sifts_up),
		T(timer_remove_middle_sifts_down),
		T(timer_remove_last_slot),
		T(timer_remove_only_timer_empties_heap),
		T(timer_random_ops_match_model),
		T(timer_reserve_zero_allocates_nothing),
		T(timer_reserve_grows_and_never_shrinks),
		T(timer_reserve_nomem_leaves_heap_unchanged),
		T(timer_reserve_huge_returns_nomem),
#undef T
	};

	return cmocka_run_group_tests_name("timer", tests, group_setup, NULL);
}
