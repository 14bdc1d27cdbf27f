/*
 * What peer.c shares with the per-OS halves of the net-test helpers
 * (peer_win.c, peer_linux.c).  Not for the tests themselves.
 */
#ifndef IOCX_TESTS_NET_PEER_OS_H
#define IOCX_TESTS_NET_PEER_OS_H

#include "peer.h"

#ifdef _WIN32
/* What a non-blocking connect() reports while the handshake runs. */
#define PEER_EINPROGRESS WSAEWOULDBLOCK
#define PEER_ECONNABORTED WSAECONNABORTED
#define PEER_SHUT_WR SD_SEND
#else
#define PEER_EINPROGRESS EINPROGRESS
#define PEER_ECONNABORTED ECONNABORTED
#define PEER_SHUT_WR SHUT_WR
#endif

/* peer.c: set up its static locks (peer_init calls it first). */
void peer__init_common(void);

/* peer.c: append an event to the syscall log; its index (the capacity
 * when it was lost). */
size_t peer__sys_record(enum peer_sys_kind kind, SOCKET s, int level,
			int name, size_t bytes, int ok, int err);

/* peer.c: mark event i, recorded before its call, as failed. */
void peer__sys_failed(size_t i, int err);

/* peer.c: take an armed fault: returns its error and counts it, or 0. */
int peer__fault(atomic_int *which);

/* peer.c: the bind fault for a bind to addr (bind_err_ip filters). */
int peer__bind_fault(const struct sockaddr *addr);

/* peer.c: the send fault, unless send_skip (counted down) lets it pass. */
int peer__send_fault(void);

/* peer.c: disarm every fault and zero the count. */
void peer__faults_clear(void);

/*
 * Per OS: the blocks behind peer_test_alloc.  Windows: cmocka's
 * test_malloc / test_free, which add guard bytes and a leak report.
 * Linux: malloc / free.  Debian's libcmocka keeps its block list in
 * thread-local storage, so a block the library allocates on a worker
 * would join the list of a thread that later exits; and a test that
 * destroys its engine frees the block cmocka took as its check point.
 * ASan checks the blocks there, and alloc_live still counts them.
 */
void *peer__block_alloc(size_t size);
void peer__block_free(void *ptr);

/* Per OS: make s non-blocking. */
void peer__set_nonblocking(SOCKET s);

/*
 * Per OS: wait at most ms until one of socks[0..n) is ready: writable
 * when write[i], else readable (INVALID_SOCKET entries are skipped);
 * ready[] says which.  Returns 0 (also on timeout), or the socket error of
 * a failed wait.
 */
int peer__poll(const SOCKET *socks, const bool *write, bool *ready,
	       size_t n, unsigned ms);

#endif /* IOCX_TESTS_NET_PEER_OS_H */
