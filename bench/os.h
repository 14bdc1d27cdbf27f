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

/* Whether stdout is a terminal (progress lines go there only then). */
bool os_stdout_is_tty(void);

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

/* Start / stop the network stack (WSAStartup on Windows); 0 on success. */
int os_net_init(void);
void os_net_fini(void);

#endif /* IOCX_BENCH_OS_H */
