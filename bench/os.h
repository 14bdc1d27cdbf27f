/*
 * The bench's operating-system shims: CPU time, a wake-up event, the
 * terminal check and network start-up.  One implementation per OS
 * (os_win.c, os_posix.c); everything else in bench/ except the sink and
 * the baseline loop is portable.  The monotonic clock and the CPU count
 * are the library's own (src/platform.h: iocx__now_ns, iocx__cpu_count),
 * so the bench measures with the clock iocx measures latency with.
 */
#ifndef IOCX_BENCH_OS_H
#define IOCX_BENCH_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

struct sockaddr;

/* Wall-clock time: seconds since 1970-01-01 UTC (for log headers). */
double os_epoch_s(void);

/* CPU time (user + kernel) used by this process so far, in nanoseconds. */
uint64_t os_cpu_ns(void);

/* Let another thread run. */
void os_yield(void);

/* An auto-reset event: one waiter, any number of setters. */
struct os_event;

/* Create an event, or NULL (message on stderr). */
struct os_event *os_event_create(void);

/* Wake the waiter (or make its next wait return at once). */
void os_event_set(struct os_event *e);

/*
 * Wait until the event is set or timeout_ns passed; sub-millisecond
 * timeouts are honoured as well as the OS timer allows.  Returns true
 * when the event was set.
 */
bool os_event_wait(struct os_event *e, uint64_t timeout_ns);

void os_event_destroy(struct os_event *e);

/*
 * A loopback TCP port that refuses connects: a socket bound to 127.0.0.1
 * (AF_INET) or ::1 (AF_INET6), port chosen by the OS, that never listens.
 * A connect to it is refused at once, and the port stays taken, so no
 * other socket gets it, until os_refuser_close().
 */
struct os_refuser;

/* Open one of family AF_INET or AF_INET6, or NULL (message on stderr). */
struct os_refuser *os_refuser_open(int family);

/* The refusing address (port filled in) and its length. */
const struct sockaddr *os_refuser_address(const struct os_refuser *r,
					  size_t *len);

/* Close the socket and free r; NULL does nothing. */
void os_refuser_close(struct os_refuser *r);

/*
 * Interruption: at the first SIGINT or SIGTERM (Windows: Ctrl-C,
 * Ctrl-Break or the console closing), call fn(signo, arg) once, on a
 * thread of its own, never inside a signal handler, so fn may take locks
 * and set events.  signo is SIGINT's or SIGTERM's number (Windows: 2 for
 * Ctrl-C and Ctrl-Break, 15 when the console closes).  A second one ends
 * the process at once with status 128 + signo.  Call once, from main,
 * before any other thread is started (POSIX: the signals are blocked in
 * every thread and taken by a sigwait() thread).  0, or -1 after a
 * message.
 */
int os_on_interrupt(void (*fn)(int signo, void *arg), void *arg);

/*
 * Move the file tmp to path, replacing path if it exists, in one step
 * (rename(); Windows: MoveFileEx with MOVEFILE_REPLACE_EXISTING).  A
 * reader sees the old file or the new one, never a part.  0 or -1.
 */
int os_replace_file(const char *tmp, const char *path);

/*
 * Resident memory of this process in bytes (Linux: /proc/self/statm;
 * Windows: the working set), 0 when the OS does not say.
 */
uint64_t os_rss_bytes(void);

/*
 * Make room for `want` open descriptors: raise the soft limit on open
 * files (and the hard one, where the process may: Linux needs
 * CAP_SYS_RESOURCE, and never goes above fs.nr_open) to at least want.
 * Returns the limit in force afterwards, which is below want when it
 * could not be raised; *before gets the soft limit found, why[0..n) a
 * sentence saying what stopped it ("" when nothing did).  Where the OS
 * has no such limit (Windows) both are UINT64_MAX.
 */
uint64_t os_raise_nofile(uint64_t want, uint64_t *before, char *why,
			 size_t n);

/* Start / stop the network stack (WSAStartup on Windows); 0 on success. */
int os_net_init(void);
void os_net_fini(void);

#endif /* IOCX_BENCH_OS_H */
