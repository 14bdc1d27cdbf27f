/*
 * The Windows engine's own resolver (struct iocx_resolver): one
 * asynchronous GetAddrInfoExW per query, answered through the engine's
 * completion port.  See resolve_gai.c for the lifetime rules.
 */
#ifndef IOCX_WIN_RESOLVE_GAI_H
#define IOCX_WIN_RESOLVE_GAI_H

#include <stdbool.h>
#include <winsock2.h>
#include <windows.h>

#include "iocx.h"

struct iocx_gai;

/*
 * Create the resolver of an engine whose completion port is port: a
 * finished lookup is posted there with completion key key and its
 * OVERLAPPED, and the worker that dequeues it calls
 * iocx__gai_complete().  NULL when out of memory.
 */
struct iocx_gai *iocx__gai_create(HANDLE port, ULONG_PTR key);

/* The iocx_resolver of g, for the engine options. */
const struct iocx_resolver *iocx__gai_ops(struct iocx_gai *g);

/* A packet with g's key came out of the port: answer its query (once). */
void iocx__gai_complete(OVERLAPPED *ov);

/*
 * The engine is going away, every query it started answered, its workers
 * stopped: post nothing to the port any more.  After this the caller
 * drains the port, hands each packet with g's key to iocx__gai_drop(),
 * and calls iocx__gai_release().
 */
void iocx__gai_detach(struct iocx_gai *g);

/* Free a packet's record found in the port after iocx__gai_detach(). */
void iocx__gai_drop(OVERLAPPED *ov);

/*
 * Let go of g, on the engine's destroying thread, before its WSACleanup.
 * Lookups the OS has not finished (cancelled ones whose cancel the OS
 * could not honour) keep what they need alive and free it when their
 * completion routine runs, after the engine is gone: then this returns
 * true, and g has taken over the engine's Winsock reference (the caller
 * must not call WSACleanup for it; it is paid at a later create or
 * release once those lookups are over) and keeps this module loaded
 * until the process ends.  Returns false when nothing was left.
 */
bool iocx__gai_release(struct iocx_gai *g);

/* What the tests observe (process-wide counts since the start). */
struct iocx_gai_counts {
	long records;		/* lookup records alive now */
	long os_cancels;	/* GetAddrInfoExCancel calls that succeeded */
	long late_dropped;	/* answers that came after a cancel */
	long owed_cleanups;	/* WSACleanup calls owed, not yet paid */
};
void iocx__gai_counts(struct iocx_gai_counts *out);

#endif /* IOCX_WIN_RESOLVE_GAI_H */
