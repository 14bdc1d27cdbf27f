/*
 * The library allocator routed to cmocka's checked heap, so that a block
 * the library forgets to free fails the test that leaked it, plus fault
 * injection: alloc_fail_nth(n) makes the n-th allocation from now (0 =
 * the next one) return NULL.
 *
 * Include once per test program, after <cmocka.h>; install the hooks with
 * iocx_set_allocator(hook_alloc, hook_free) before any engine exists.
 */
#ifndef IOCX_TEST_ALLOC_HOOKS_H
#define IOCX_TEST_ALLOC_HOOKS_H

#include <stddef.h>

static long hook_fail_countdown = -1;	/* -1 = never fail */
static unsigned long hook_allocs;	/* allocations served */
static unsigned long hook_frees;
static unsigned long hook_failed;	/* allocations refused */

/* test_malloc is a macro naming the call site: wrap it in a function. */
static void *hook_alloc(size_t size)
{
	if (hook_fail_countdown == 0) {
		hook_fail_countdown = -1;
		hook_failed++;
		return NULL;
	}
	if (hook_fail_countdown > 0)
		hook_fail_countdown--;
	hook_allocs++;
	return test_malloc(size);
}

static void hook_free(void *ptr)
{
	if (ptr == NULL)
		return;
	hook_frees++;
	test_free(ptr);
}

/* Make the n-th allocation from now fail (once). */
static inline void alloc_fail_nth(long n)
{
	hook_fail_countdown = n;
}

/* Stop injecting failures and zero the counters. */
static inline void alloc_hooks_reset(void)
{
	hook_fail_countdown = -1;
	hook_allocs = 0;
	hook_frees = 0;
	hook_failed = 0;
}

#endif /* IOCX_TEST_ALLOC_HOOKS_H */
