/*
 * Win32 implementation of the platform shims (SRW locks, condition
 * variables, CreateThread, QueryPerformanceCounter).
 */
#include "iocx.h"	/* winsock2.h, which must come before windows.h */

#include <windows.h>

#include "platform.h"

_Static_assert(sizeof(iocx_mutex) == sizeof(SRWLOCK), "iocx_mutex layout");
_Static_assert(sizeof(iocx_cond) == sizeof(CONDITION_VARIABLE),
	       "iocx_cond layout");

/* See platform.h. */
void iocx__mutex_init(iocx_mutex *m)
{
	InitializeSRWLock((PSRWLOCK)m);
}

/* See platform.h. */
void iocx__mutex_destroy(iocx_mutex *m)
{
	(void)m;	/* SRW locks own no resources */
}

/* See platform.h. */
void iocx__mutex_lock(iocx_mutex *m)
{
	AcquireSRWLockExclusive((PSRWLOCK)m);
}

/* See platform.h. */
void iocx__mutex_unlock(iocx_mutex *m)
{
	ReleaseSRWLockExclusive((PSRWLOCK)m);
}

/* See platform.h. */
void iocx__cond_init(iocx_cond *c)
{
	InitializeConditionVariable((PCONDITION_VARIABLE)c);
}

/* See platform.h. */
void iocx__cond_destroy(iocx_cond *c)
{
	(void)c;
}

/* See platform.h. */
void iocx__cond_wait(iocx_cond *c, iocx_mutex *m)
{
	SleepConditionVariableSRW((PCONDITION_VARIABLE)c, (PSRWLOCK)m,
				  INFINITE, 0);
}

/* See platform.h. */
void iocx__cond_timedwait(iocx_cond *c, iocx_mutex *m, unsigned ms)
{
	SleepConditionVariableSRW((PCONDITION_VARIABLE)c, (PSRWLOCK)m, ms, 0);
}

/* See platform.h. */
void iocx__cond_broadcast(iocx_cond *c)
{
	WakeAllConditionVariable((PCONDITION_VARIABLE)c);
}

static DWORD WINAPI thread_trampoline(LPVOID p)
{
	iocx_thread *t = p;

	t->fn(t->arg);
	return 0;
}

/* See platform.h. */
int iocx__thread_start(iocx_thread *t, void (*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->os = CreateThread(NULL, 0, thread_trampoline, t, 0, NULL);
	return t->os ? 0 : IOCX_E_SYSTEM;
}

/* See platform.h. */
void iocx__thread_join(iocx_thread *t)
{
	WaitForSingleObject((HANDLE)t->os, INFINITE);
	CloseHandle((HANDLE)t->os);
}

/* See platform.h. */
uint64_t iocx__now_ns(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER now;

	if (freq.QuadPart == 0)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	/* Split to avoid overflowing counter * 1e9. */
	return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000000000u +
	       (uint64_t)(now.QuadPart % freq.QuadPart) * 1000000000u /
		       (uint64_t)freq.QuadPart;
}

/* See platform.h. */
unsigned iocx__cpu_count(void)
{
	DWORD_PTR process, system;
	unsigned n = 0;

	if (GetProcessAffinityMask(GetCurrentProcess(), &process, &system)) {
		for (; process; process &= process - 1)
			n++;
	}
	return n > 0 ? n : 1;
}
