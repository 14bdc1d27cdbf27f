/*
 * The library allocator routed to cmocka's checked heap, so that a block
 * the library forgets to free fails the test that leaked it, plus fault
 * injection: alloc_fail_nth(n) makes the n-th allocation from now (0 =
 * the next one) return NULL.
 *
 * Include once per test program, after <cmocka.h>; install the hooks with
 * iocx_set_allocator(hook_alloc, hook_free) before any engine exists.
 * cmocka's heap is not thread-safe: a test that runs an engine with worker
 * threads switches to the locked hooks (alloc_hooks_lock) for that time.
 */
#ifndef IOCX_TEST_ALLOC_HOOKS_H
#define IOCX_TEST_ALLOC_HOOKS_H

#include <stddef.h>

#include "iocx.h"
#include "platform.h"		/* iocx_mutex */

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

/* Serialises the hooks while worker threads allocate. */
static iocx_mutex hook_lock;

static inline void *hook_alloc_locked(size_t size)
{
	void *ptr;

	iocx__mutex_lock(&hook_lock);
	ptr = hook_alloc(size);
	iocx__mutex_unlock(&hook_lock);
	return ptr;
}

static inline void hook_free_locked(void *ptr)
{
	iocx__mutex_lock(&hook_lock);
	hook_free(ptr);
	iocx__mutex_unlock(&hook_lock);
}

/* Route the library's allocator through the hooks behind a mutex, for an
 * engine with worker threads; no engine may exist yet. */
static inline void alloc_hooks_lock(void)
{
	iocx__mutex_init(&hook_lock);
	assert_int_equal(iocx_set_allocator(hook_alloc_locked,
					    hook_free_locked), IOCX_OK);
}

/* Back to the plain hooks, once the threaded engine is destroyed. */
static inline void alloc_hooks_unlock(void)
{
	assert_int_equal(iocx_set_allocator(hook_alloc, hook_free), IOCX_OK);
	iocx__mutex_destroy(&hook_lock);
}

#endif /* IOCX_TEST_ALLOC_HOOKS_H */
