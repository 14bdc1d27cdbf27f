/*
 * The recycled-socket pool (see pool.h).  Sockets leave it closed through
 * iocx__win_sys so tests see every close.
 */
#include "win/pool.h"
#include "win/sys.h"

/* See win/pool.h. */
void iocx__win_pool_init(struct iocx_win_pool *p)
{
	InitializeSRWLock(&p->lock);
	p->len = 0;
}

/* See win/pool.h. */
SOCKET iocx__win_pool_take(struct iocx_win_pool *p)
{
	SOCKET s = INVALID_SOCKET;

	AcquireSRWLockExclusive(&p->lock);
	if (p->len > 0)
		s = p->socks[--p->len];
	ReleaseSRWLockExclusive(&p->lock);
	return s;
}

/* See win/pool.h. */
bool iocx__win_pool_put(struct iocx_win_pool *p, SOCKET s)
{
	bool kept = false;

	AcquireSRWLockExclusive(&p->lock);
	if (p->len < sizeof(p->socks) / sizeof(p->socks[0])) {
		p->socks[p->len++] = s;
		kept = true;
	}
	ReleaseSRWLockExclusive(&p->lock);
	return kept;
}

/* See win/pool.h. */
void iocx__win_pool_drain(struct iocx_win_pool *p)
{
	SOCKET s;

	while ((s = iocx__win_pool_take(p)) != INVALID_SOCKET)
		iocx__win_sys.closesocket(s);
}
