/*
 * The bench's operating-system shims: clock, CPU time, a wake-up event,
 * the terminal check and network start-up.  One implementation per OS
 * (os_win.c; a POSIX one joins it with the Linux backend); everything
 * else in bench/ except the sink and the baseline loop is portable.
 */
#ifndef IOCX_BENCH_OS_H
#define IOCX_BENCH_OS_H

#include <stdbool.h>
#include <stdint.h>

/* Monotonic time in nanoseconds (the clock iocx measures latency with). */
uint64_t os_now_ns(void);

/* CPU time (user + kernel) used by this process so far, in nanoseconds. */
uint64_t os_cpu_ns(void);

/* Number of CPUs this process may run on (at least 1). */
unsigned os_cpu_count(void);

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

/* Start / stop the network stack (WSAStartup on Windows); 0 on success. */
int os_net_init(void);
void os_net_fini(void);

#endif /* IOCX_BENCH_OS_H */
