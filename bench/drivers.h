/*
 * The drivers a bench phase can run: iocx itself (drive_iocx.c, portable)
 * and the raw baseline loops, one per OS backend (baseline_win.c,
 * baseline_uring.c, baseline_epoll.c).
 */
#ifndef IOCX_BENCH_DRIVERS_H
#define IOCX_BENCH_DRIVERS_H

#include "phase.h"

/* Connects through the iocx engine. */
extern const struct driver iocx_driver;

/*
 * The raw loop that the engine's phases running on `backend` (the name
 * iocx_engine_backend() gave) are compared with, for engine / raw ratios:
 * Windows, ConnectEx + GetQueuedCompletionStatusEx for any; Linux, the
 * raw epoll loop for "epoll" and the raw io_uring loop otherwise.
 */
const struct driver *raw_driver_for(const char *backend);

/* Linux: the two loops raw_driver_for() picks from. */
extern const struct driver raw_uring_driver;
extern const struct driver raw_epoll_driver;

#endif /* IOCX_BENCH_DRIVERS_H */
