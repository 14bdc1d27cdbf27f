/*
 * Platform shims the portable core needs: threads, a mutex, a condition
 * variable, a monotonic clock and the CPU count.  Implemented once per
 * platform (src/win/platform.c, src/posix/platform.c); nothing here talks
 * to sockets.
 */
#ifndef IOCX_PLATFORM_H
#define IOCX_PLATFORM_H

#include <stdint.h>

#ifdef _WIN32
/* Layout-compatible with SRWLOCK / CONDITION_VARIABLE (one pointer each). */
typedef struct { void *opaque; } iocx_mutex;
typedef struct { void *opaque; } iocx_cond;
typedef void *iocx_os_thread;		/* HANDLE */
#else
#include <pthread.h>
typedef pthread_mutex_t iocx_mutex;
typedef pthread_cond_t iocx_cond;
typedef pthread_t iocx_os_thread;
#endif

/*
 * Thread-local storage class.  MSVC's C compiler has no _Thread_local (it
 * has __declspec(thread), same meaning); gcc and clang take the C11 word.
 */
#if defined(_MSC_VER) && !defined(__clang__)
#define IOCX_THREAD_LOCAL __declspec(thread)
#else
#define IOCX_THREAD_LOCAL _Thread_local
#endif

/* A thread and its start routine; lives until joined (no allocation). */
typedef struct {
	iocx_os_thread os;
	void (*fn)(void *);
	void *arg;
} iocx_thread;

/* Initialise a mutex; cannot fail on either platform. */
void iocx__mutex_init(iocx_mutex *m);
/* Release a mutex's resources; it must be unlocked. */
void iocx__mutex_destroy(iocx_mutex *m);
/* Acquire / release; not recursive. */
void iocx__mutex_lock(iocx_mutex *m);
void iocx__mutex_unlock(iocx_mutex *m);

/*
 * A connection's lock (conn->lock): every connection has one, so it is as
 * small as the platform allows (issue 15, engine memory per connection).
 * On Linux one futex word, 4 bytes where glibc's pthread_mutex_t takes 40
 * (src/posix/platform.c); elsewhere the platform mutex (on Windows an
 * SRWLOCK, one pointer).  Not recursive, never waited on with a condition
 * variable, never shared between processes.
 */
#ifdef __linux__
typedef struct { _Atomic uint32_t word; } iocx_lock;
void iocx__lock_init(iocx_lock *l);
void iocx__lock_destroy(iocx_lock *l);
void iocx__lock_acquire(iocx_lock *l);
void iocx__lock_release(iocx_lock *l);
#else
typedef iocx_mutex iocx_lock;
static inline void iocx__lock_init(iocx_lock *l)
{
	iocx__mutex_init(l);
}

static inline void iocx__lock_destroy(iocx_lock *l)
{
	iocx__mutex_destroy(l);
}

static inline void iocx__lock_acquire(iocx_lock *l)
{
	iocx__mutex_lock(l);
}

static inline void iocx__lock_release(iocx_lock *l)
{
	iocx__mutex_unlock(l);
}
#endif

/* Initialise / destroy a condition variable. */
void iocx__cond_init(iocx_cond *c);
void iocx__cond_destroy(iocx_cond *c);
/* Wait on c with m held; may wake spuriously, so callers loop. */
void iocx__cond_wait(iocx_cond *c, iocx_mutex *m);
/* Like iocx__cond_wait, for at most ms milliseconds (monotonic clock). */
void iocx__cond_timedwait(iocx_cond *c, iocx_mutex *m, unsigned ms);
/* Wake every waiter. */
void iocx__cond_broadcast(iocx_cond *c);

/*
 * Start fn(arg) on a new thread; returns 0 or IOCX_E_SYSTEM.  *t must stay
 * valid until iocx__thread_join(t) returns.
 */
int iocx__thread_start(iocx_thread *t, void (*fn)(void *), void *arg);
/* Wait for a thread started by iocx__thread_start and release it. */
void iocx__thread_join(iocx_thread *t);

/* Monotonic time in nanoseconds from an arbitrary origin. */
uint64_t iocx__now_ns(void);

/* Number of CPUs this process may run on (at least 1). */
unsigned iocx__cpu_count(void);

#endif /* IOCX_PLATFORM_H */
