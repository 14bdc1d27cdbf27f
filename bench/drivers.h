/*
 * The drivers a bench phase can run: iocx itself (drive_iocx.c, portable)
 * and the raw baseline loop (baseline_win.c; one per OS backend).
 */
#ifndef IOCX_BENCH_DRIVERS_H
#define IOCX_BENCH_DRIVERS_H

#include "phase.h"

/* Connects through the iocx engine. */
extern const struct driver iocx_driver;

/*
 * The same workload through a minimal raw loop on the OS API (Windows:
 * ConnectEx + GetQueuedCompletionStatusEx), for engine / raw ratios.
 */
extern const struct driver raw_driver;

#endif /* IOCX_BENCH_DRIVERS_H */
