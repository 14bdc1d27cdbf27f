/*
 * The Linux backends' one error egress: errno values in, iocx codes out.
 * Pure functions on numbers, shared by the epoll and io_uring backends
 * (io_uring completions carry -errno) and unit-tested natively.
 */
#ifndef IOCX_LINUX_ERROR_H
#define IOCX_LINUX_ERROR_H

#include <stdbool.h>

/* Map an errno value (positive; 0 is IOCX_OK) to an iocx code. */
int iocx__linux_error(int err);

/*
 * Map the errno of a failed connect.  Linux picks the ephemeral port at
 * connect time, so running out of ports shows there, as EADDRNOTAVAIL:
 * with an ephemeral local port (ephemeral true) that is
 * IOCX_E_PORTS_EXHAUSTED; otherwise as iocx__linux_error.
 */
int iocx__linux_error_connect(int err, bool ephemeral);

/*
 * Map the errno of a failed bind.  bind() to port 0 with no port left
 * fails with EADDRINUSE: with ephemeral true that is
 * IOCX_E_PORTS_EXHAUSTED; otherwise as iocx__linux_error.
 */
int iocx__linux_error_bind(int err, bool ephemeral);

#endif /* IOCX_LINUX_ERROR_H */
