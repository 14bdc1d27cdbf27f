/*
 * OS shims of the bench for Windows (see os.h).
 *
 * Short waits use a high-resolution waitable timer where the OS has one
 * (Windows 10 1803+, and Wine), because a plain WaitForSingleObject
 * timeout is rounded to the 15.6 ms timer tick on Windows and the rate
 * pacer needs about a millisecond.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <psapi.h>

#include <stdio.h>
#include <stdlib.h>

#include "addr.h"
#include "os.h"

#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif

struct os_refuser {
	SOCKET sock;
	struct sockaddr_storage addr;
	int len;
};

struct os_event {
	HANDLE event;
	HANDLE timer;		/* NULL: millisecond timeouts only */
};

static uint64_t filetime_ns(FILETIME t)
{
	return (((uint64_t)t.dwHighDateTime << 32) | t.dwLowDateTime) * 100;
}

/* See os.h. */
double os_epoch_s(void)
{
	FILETIME ft;

	GetSystemTimePreciseAsFileTime(&ft);
	/* 100 ns units since 1601; the epoch is 11644473600 s later. */
	return (double)filetime_ns(ft) / 1e9 - 11644473600.0;
}

/* See os.h. */
uint64_t os_cpu_ns(void)
{
	FILETIME created, exited, kernel, user;

	if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel,
			     &user))
		return 0;
	return filetime_ns(kernel) + filetime_ns(user);
}

/* See os.h. */
void os_yield(void)
{
	SwitchToThread();
}

/* See os.h. */
struct os_event *os_event_create(void)
{
	struct os_event *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->event = CreateEventA(NULL, FALSE, FALSE, NULL);
	if (!e->event) {
		fprintf(stderr, "iocx-bench: CreateEvent: %lu\n",
			GetLastError());
		free(e);
		return NULL;
	}
	e->timer = CreateWaitableTimerExW(NULL, NULL,
					  CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
					  TIMER_ALL_ACCESS);
	return e;
}

/* See os.h. */
void os_event_set(struct os_event *e)
{
	SetEvent(e->event);
}

/* See os.h. */
bool os_event_wait(struct os_event *e, uint64_t timeout_ns)
{
	HANDLE both[2] = { e->event, e->timer };
	LARGE_INTEGER due;
	DWORD ms;

	/* Long waits need no precision: a plain timeout is one call less. */
	if (!e->timer || timeout_ns >= 50000000) {
		ms = (DWORD)((timeout_ns + 999999) / 1000000);
		return WaitForSingleObject(e->event, ms) == WAIT_OBJECT_0;
	}
	due.QuadPart = -(LONGLONG)(timeout_ns / 100 ? timeout_ns / 100 : 1);
	if (!SetWaitableTimer(e->timer, &due, 0, NULL, NULL, FALSE)) {
		ms = (DWORD)((timeout_ns + 999999) / 1000000);
		return WaitForSingleObject(e->event, ms) == WAIT_OBJECT_0;
	}
	/* The timer bounds the wait; the backstop only guards a lost timer. */
	return WaitForMultipleObjects(2, both, FALSE, 1000) == WAIT_OBJECT_0;
}

/* See os.h. */
void os_event_destroy(struct os_event *e)
{
	if (!e)
		return;
	if (e->timer)
		CloseHandle(e->timer);
	CloseHandle(e->event);
	free(e);
}

static void (*interrupt_fn)(int signo, void *arg);
static void *interrupt_arg;
static LONG interrupts;

/*
 * Windows runs a console control handler on a new thread of its own, so
 * it may call interrupt_fn directly.  TRUE: handled, the process goes on
 * (for CTRL_CLOSE_EVENT, Windows still ends it when the handler returns,
 * or after a few seconds: the report is written in that time or not).
 */
static BOOL WINAPI on_console_event(DWORD type)
{
	int signo;

	switch (type) {
	case CTRL_C_EVENT:
	case CTRL_BREAK_EVENT:
		signo = 2;
		break;
	case CTRL_CLOSE_EVENT:
		signo = 15;
		break;
	default:
		return FALSE;
	}
	/*
	 * A second one quits at once, like _exit() on POSIX: not
	 * ExitProcess(), which ends the other threads where they stand and
	 * then runs the C runtime's exit code, which deadlocks when one of
	 * them held a lock it needs (a stdio stream's, mid-progress-line);
	 * Microsoft's ExitProcess page warns of exactly that and prefers
	 * TerminateProcess when the threads' state is unknown
	 * (docs/windows.md, sources).  Under Wine bench_e2e's "twice" case
	 * once saw the process live on after its second Ctrl-C.
	 */
	if (InterlockedIncrement(&interrupts) > 1)
		TerminateProcess(GetCurrentProcess(), 128 + (UINT)signo);
	interrupt_fn(signo, interrupt_arg);
	return TRUE;
}

/* See os.h. */
int os_on_interrupt(void (*fn)(int signo, void *arg), void *arg)
{
	interrupt_fn = fn;
	interrupt_arg = arg;
	if (!SetConsoleCtrlHandler(on_console_event, TRUE)) {
		fprintf(stderr, "iocx-bench: cannot watch for Ctrl-C: "
			"error %lu\n", (unsigned long)GetLastError());
		return -1;
	}
	return 0;
}

/* See os.h. */
int os_replace_file(const char *tmp, const char *path)
{
	return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}

/* See os.h. */
struct os_refuser *os_refuser_open(int family)
{
	struct os_refuser *r = calloc(1, sizeof(*r));
	int err;

	if (!r) {
		fprintf(stderr, "iocx-bench: out of memory\n");
		return NULL;
	}
	r->len = (int)bench_addr_loopback(family, &r->addr);
	r->sock = WSASocketW(r->addr.ss_family, SOCK_STREAM, IPPROTO_TCP,
			     NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
	if (r->sock == INVALID_SOCKET) {
		err = WSAGetLastError();
		goto err_free;
	}
	/* Bound and never listening: every SYN to it is answered by RST. */
	if (bind(r->sock, (struct sockaddr *)&r->addr, r->len) != 0 ||
	    getsockname(r->sock, (struct sockaddr *)&r->addr, &r->len) != 0) {
		err = WSAGetLastError();
		goto err_close;
	}
	return r;

err_close:
	closesocket(r->sock);
err_free:
	fprintf(stderr, "iocx-bench: cannot bind a refusing port on %s: "
		"WSA error %d\n", family == AF_INET6 ? "::1" : "127.0.0.1",
		err);
	free(r);
	return NULL;
}

/* See os.h. */
const struct sockaddr *os_refuser_address(const struct os_refuser *r,
					  size_t *len)
{
	*len = (size_t)r->len;
	return (const struct sockaddr *)&r->addr;
}

/* See os.h. */
void os_refuser_close(struct os_refuser *r)
{
	if (!r)
		return;
	closesocket(r->sock);
	free(r);
}

/* See os.h. */
int os_net_init(void)
{
	WSADATA wsa;

	return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}

/* See os.h. */
void os_net_fini(void)
{
	WSACleanup();
}

/* See os.h. */
uint64_t os_rss_bytes(void)
{
	PROCESS_MEMORY_COUNTERS pmc = { .cb = sizeof(pmc) };

	/* The K32 name is in kernel32 itself: no psapi.dll needed. */
	if (!K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc)))
		return 0;
	return pmc.WorkingSetSize;
}

/* See os.h: Windows has no per-process limit on open sockets. */
uint64_t os_raise_nofile(uint64_t want, uint64_t *before, char *why,
			 size_t n)
{
	(void)want;
	if (n)
		why[0] = '\0';
	*before = UINT64_MAX;
	return UINT64_MAX;
}
