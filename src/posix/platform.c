/*
 * POSIX implementation of the platform shims (pthreads, CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "iocx.h"
#include "platform.h"

/* See platform.h. */
void iocx__mutex_init(iocx_mutex *m)
{
	pthread_mutex_init(m, NULL);
}

/* See platform.h. */
void iocx__mutex_destroy(iocx_mutex *m)
{
	pthread_mutex_destroy(m);
}

/* See platform.h. */
void iocx__mutex_lock(iocx_mutex *m)
{
	pthread_mutex_lock(m);
}

/* See platform.h. */
void iocx__mutex_unlock(iocx_mutex *m)
{
	pthread_mutex_unlock(m);
}

#ifdef __linux__
/*
 * iocx_lock: the three-state futex mutex of Drepper's "Futexes Are
 * Tricky" (0 free, 1 held, 2 held with possible waiters).  The word's
 * acquire / release orderings carry the happens-before (TSan sees them);
 * the futex calls only park and wake threads.
 */
static void futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)word, op, val, NULL, NULL, 0);
}

/* See platform.h. */
void iocx__lock_init(iocx_lock *l)
{
	atomic_init(&l->word, 0);
}

/* See platform.h. */
void iocx__lock_destroy(iocx_lock *l)
{
	(void)l;
}

/* See platform.h. */
void iocx__lock_acquire(iocx_lock *l)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong_explicit(&l->word, &c, 1,
						    memory_order_acquire,
						    memory_order_relaxed))
		return;
	if (c != 2)
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	while (c != 0) {
		futex(&l->word, FUTEX_WAIT_PRIVATE, 2);
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	}
}

/* See platform.h. */
void iocx__lock_release(iocx_lock *l)
{
	if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
		futex(&l->word, FUTEX_WAKE_PRIVATE, 1);
}
#endif

/* See platform.h. */
void iocx__cond_init(iocx_cond *c)
{
	pthread_condattr_t attr;

	/* Timed waits measure on the monotonic clock, immune to date
	 * changes. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

/* See platform.h. */
void iocx__cond_destroy(iocx_cond *c)
{
	pthread_cond_destroy(c);
}

/* See platform.h. */
void iocx__cond_wait(iocx_cond *c, iocx_mutex *m)
{
	pthread_cond_wait(c, m);
}

/* See platform.h. */
void iocx__cond_timedwait(iocx_cond *c, iocx_mutex *m, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(c, m, &ts);
}

/* See platform.h. */
void iocx__cond_broadcast(iocx_cond *c)
{
	pthread_cond_broadcast(c);
}

static void *thread_trampoline(void *p)
{
	iocx_thread *t = p;

	t->fn(t->arg);
	return NULL;
}

/* See platform.h. */
int iocx__thread_start(iocx_thread *t, void (*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	return pthread_create(&t->os, NULL, thread_trampoline, t) == 0
		       ? 0
		       : IOCX_E_SYSTEM;
}

/* See platform.h. */
void iocx__thread_join(iocx_thread *t)
{
	pthread_join(t->os, NULL);
}

/* See platform.h. */
uint64_t iocx__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* See platform.h. */
unsigned iocx__cpu_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
