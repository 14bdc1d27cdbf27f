/*
 * POSIX implementation of the platform shims (pthreads, CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

/* See platform.h. */
void iocx__cond_init(iocx_cond *c)
{
	pthread_cond_init(c, NULL);
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
void iocx__cond_broadcast(iocx_cond *c)
{
	pthread_cond_broadcast(c);
}

struct thread_start {
	void (*fn)(void *);
	void *arg;
};

static void *thread_trampoline(void *p)
{
	struct thread_start start = *(struct thread_start *)p;

	free(p);
	start.fn(start.arg);
	return NULL;
}

/* See platform.h. */
int iocx__thread_start(iocx_thread *t, void (*fn)(void *), void *arg)
{
	struct thread_start *start = malloc(sizeof(*start));

	if (!start)
		return IOCX_E_NOMEM;
	start->fn = fn;
	start->arg = arg;
	if (pthread_create(t, NULL, thread_trampoline, start) != 0) {
		free(start);
		return IOCX_E_SYSTEM;
	}
	return 0;
}

/* See platform.h. */
void iocx__thread_join(iocx_thread t)
{
	pthread_join(t, NULL);
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
