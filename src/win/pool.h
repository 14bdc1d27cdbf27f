/*
 * Recycled sockets: per family, a bounded stack of sockets that a
 * DisconnectEx(TF_REUSE_SOCKET) left bound and associated with the port,
 * ready for the next ConnectEx.  Thread-safe (one SRW lock per pool).
 */
#ifndef IOCX_WIN_POOL_H
#define IOCX_WIN_POOL_H

#include <winsock2.h>
#include <windows.h>

#include <stdbool.h>
#include <stddef.h>

struct iocx_win_pool {
	SRWLOCK lock;
	SOCKET socks[256];		/* a bound: beyond it sockets close */
	size_t len;
};

/* Initialise an empty pool. */
void iocx__win_pool_init(struct iocx_win_pool *p);

/* Take a kept socket, or INVALID_SOCKET when there is none. */
SOCKET iocx__win_pool_take(struct iocx_win_pool *p);

/* Keep s; returns false (and keeps nothing) when the pool is full. */
bool iocx__win_pool_put(struct iocx_win_pool *p, SOCKET s);

/* Close every kept socket. */
void iocx__win_pool_drain(struct iocx_win_pool *p);

#endif /* IOCX_WIN_POOL_H */
