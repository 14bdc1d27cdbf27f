/*
 * The Linux half of the sweep helpers (sweep.h): a wrapper on every entry
 * of iocx__linux_sys.  A failed call does what the real one does when it
 * fails: nothing, except close (the descriptor is gone anyway, as after
 * a real EIO) and io_uring_submit (the entries stay queued, as after a
 * real -EBUSY).  A failed prep becomes a NOP whose completion carries the
 * error (IORING_NOP_INJECT_RESULT), as in peer_linux.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "peer.h"
#include "sweep.h"
#include "linux/error.h"
#include "linux/sys.h"

enum {
	S_SOCKET, S_BIND, S_SETSOCKOPT, S_GETSOCKOPT, S_GETSOCKNAME, S_CLOSE,
	S_SHUTDOWN,
	S_CONNECT, S_SEND, S_RECV, S_EPOLL_CREATE1, S_EPOLL_ADD, S_EPOLL_MOD,
	S_EPOLL_DEL, S_EPOLL_PWAIT2, S_EPOLL_WAIT, S_EVENTFD, S_URING_INIT,
	S_URING_ENABLE, S_URING_SUBMIT, S_URING_SUBMIT_EVENTS,
	S_URING_SUBMIT_WAIT, S_PREP_CONNECT, S_PREP_SEND, S_PREP_RECV,
	S_PREP_CANCEL, S_PREP_RESET, S_PREP_CLOSE, S_COUNT
};

const struct sweep_entry sweep__table[S_COUNT] = {
	[S_SOCKET] = { "socket", EMFILE, false },
	[S_BIND] = { "bind", EADDRINUSE, false },
	[S_SETSOCKOPT] = { "setsockopt", ENOBUFS, false },
	[S_GETSOCKOPT] = { "getsockopt", ENOBUFS, false },
	[S_GETSOCKNAME] = { "getsockname", ENOBUFS, false },
	[S_CLOSE] = { "close", EIO, false },
	[S_SHUTDOWN] = { "shutdown", ENOBUFS, false },
	[S_CONNECT] = { "connect", ENOBUFS, false },
	[S_SEND] = { "send", ENOBUFS, false },
	[S_RECV] = { "recv", ENOBUFS, false },
	[S_EPOLL_CREATE1] = { "epoll_create1", EMFILE, false },
	[S_EPOLL_ADD] = { "epoll_ctl ADD", ENOMEM, false },
	[S_EPOLL_MOD] = { "epoll_ctl MOD", ENOMEM, false },
	[S_EPOLL_DEL] = { "epoll_ctl DEL", ENOMEM, false },
	/* As on a kernel before 5.11: the worker goes on with epoll_wait
	 * (which only such a run reaches). */
	[S_EPOLL_PWAIT2] = { "epoll_pwait2", ENOSYS, false },
	[S_EPOLL_WAIT] = { "epoll_wait", EINTR, false },
	[S_EVENTFD] = { "eventfd", EMFILE, false },
	[S_URING_INIT] = { "io_uring_queue_init", ENOMEM, false },
	[S_URING_ENABLE] = { "io_uring enable rings", EBUSY, false },
	[S_URING_SUBMIT] = { "io_uring_submit", EBUSY, false },
	[S_URING_SUBMIT_EVENTS] = { "io_uring_submit_and_get_events", EBUSY,
				    false },
	[S_URING_SUBMIT_WAIT] = { "io_uring_submit_and_wait_timeout", EBUSY,
				  false },
	[S_PREP_CONNECT] = { "prep connect", ENOBUFS, true },
	[S_PREP_SEND] = { "prep send", ENOBUFS, true },
	[S_PREP_RECV] = { "prep recv", ENOBUFS, true },
	[S_PREP_CANCEL] = { "prep cancel", ENOENT, true },
	[S_PREP_RESET] = { "prep reset", EINVAL, true },
	[S_PREP_CLOSE] = { "prep close", EIO, true },
};

const size_t sweep__count = S_COUNT;

static struct iocx_linux_sys real;

bool sweep_usable(size_t entry)
{
	return entry < S_COUNT && (!sweep__table[entry].prep ||
				   peer_sys_can_inject());
}

int sweep_mapped(size_t entry)
{
	return iocx__linux_error(sweep_err(entry));
}

/* Fail with errno = the entry's error: -1. */
static int fail(size_t entry)
{
	errno = sweep__table[entry].err;
	return -1;
}

static int w_socket(int domain, int type, int protocol)
{
	if (sweep__hit(S_SOCKET))
		return fail(S_SOCKET);
	return real.socket(domain, type, protocol);
}

static int w_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (sweep__hit(S_BIND))
		return fail(S_BIND);
	return real.bind(fd, addr, len);
}

static int w_setsockopt(int fd, int level, int name, const void *val,
			socklen_t len)
{
	if (sweep__hit(S_SETSOCKOPT))
		return fail(S_SETSOCKOPT);
	return real.setsockopt(fd, level, name, val, len);
}

static int w_getsockopt(int fd, int level, int name, void *val,
			socklen_t *len)
{
	if (sweep__hit(S_GETSOCKOPT))
		return fail(S_GETSOCKOPT);
	return real.getsockopt(fd, level, name, val, len);
}

static int w_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (sweep__hit(S_GETSOCKNAME))
		return fail(S_GETSOCKNAME);
	return real.getsockname(fd, addr, len);
}

static int w_close(int fd)
{
	int rc = real.close(fd);

	if (sweep__hit(S_CLOSE))
		return fail(S_CLOSE);
	return rc;
}

static int w_shutdown(int fd, int how)
{
	if (sweep__hit(S_SHUTDOWN))
		return fail(S_SHUTDOWN);
	return real.shutdown(fd, how);
}

static int w_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (sweep__hit(S_CONNECT))
		return fail(S_CONNECT);
	return real.connect(fd, addr, len);
}

static ssize_t w_send(int fd, const void *buf, size_t len, int flags)
{
	if (sweep__hit(S_SEND))
		return fail(S_SEND);
	return real.send(fd, buf, len, flags);
}

static ssize_t w_recv(int fd, void *buf, size_t len, int flags)
{
	if (sweep__hit(S_RECV))
		return fail(S_RECV);
	return real.recv(fd, buf, len, flags);
}

static int w_epoll_create1(int flags)
{
	if (sweep__hit(S_EPOLL_CREATE1))
		return fail(S_EPOLL_CREATE1);
	return real.epoll_create1(flags);
}

static int w_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	size_t entry = op == EPOLL_CTL_ADD ? S_EPOLL_ADD
		       : op == EPOLL_CTL_MOD ? S_EPOLL_MOD
					     : S_EPOLL_DEL;

	if (sweep__hit(entry))
		return fail(entry);
	return real.epoll_ctl(epfd, op, fd, ev);
}

static int w_epoll_pwait2(int epfd, struct epoll_event *evs, int max,
			  const struct timespec *timeout,
			  const sigset_t *sigmask)
{
	if (sweep__hit(S_EPOLL_PWAIT2))
		return fail(S_EPOLL_PWAIT2);
	return real.epoll_pwait2(epfd, evs, max, timeout, sigmask);
}

static int w_epoll_wait(int epfd, struct epoll_event *evs, int max,
			int timeout_ms)
{
	if (sweep__hit(S_EPOLL_WAIT))
		return fail(S_EPOLL_WAIT);
	return real.epoll_wait(epfd, evs, max, timeout_ms);
}

static int w_eventfd(unsigned int initval, int flags)
{
	if (sweep__hit(S_EVENTFD))
		return fail(S_EVENTFD);
	return real.eventfd(initval, flags);
}

static int w_uring_init(unsigned n, struct io_uring *ring,
			struct io_uring_params *p)
{
	if (sweep__hit(S_URING_INIT))
		return -sweep__table[S_URING_INIT].err;
	return real.uring_init(n, ring, p);
}

static int w_uring_enable(struct io_uring *ring)
{
	if (sweep__hit(S_URING_ENABLE))
		return -sweep__table[S_URING_ENABLE].err;
	return real.uring_enable(ring);
}

static int w_uring_submit(struct io_uring *ring)
{
	if (sweep__hit(S_URING_SUBMIT))
		return -sweep__table[S_URING_SUBMIT].err;
	return real.uring_submit(ring);
}

static int w_uring_submit_events(struct io_uring *ring)
{
	if (sweep__hit(S_URING_SUBMIT_EVENTS))
		return -sweep__table[S_URING_SUBMIT_EVENTS].err;
	return real.uring_submit_and_get_events(ring);
}

static int w_uring_submit_wait(struct io_uring *ring,
			       struct io_uring_cqe **cqe, unsigned wait_nr,
			       struct __kernel_timespec *ts, sigset_t *sigmask)
{
	if (sweep__hit(S_URING_SUBMIT_WAIT))
		return -sweep__table[S_URING_SUBMIT_WAIT].err;
	return real.uring_submit_and_wait_timeout(ring, cqe, wait_nr, ts,
						  sigmask);
}

/* Replace an operation by a NOP that completes with -err. */
static void inject(struct io_uring_sqe *sqe, size_t entry)
{
	io_uring_prep_nop(sqe);
	sqe->rw_flags = 1;		/* IORING_NOP_INJECT_RESULT */
	sqe->len = (uint32_t)-sweep__table[entry].err;
}

static void w_prep_connect(struct io_uring_sqe *sqe, int fd,
			   const struct sockaddr *addr, socklen_t len)
{
	if (sweep__hit(S_PREP_CONNECT))
		inject(sqe, S_PREP_CONNECT);
	else
		real.uring_prep_connect(sqe, fd, addr, len);
}

static void w_prep_send(struct io_uring_sqe *sqe, int fd, const void *buf,
			size_t len, int flags)
{
	if (sweep__hit(S_PREP_SEND))
		inject(sqe, S_PREP_SEND);
	else
		real.uring_prep_send(sqe, fd, buf, len, flags);
}

static void w_prep_recv(struct io_uring_sqe *sqe, int fd, void *buf,
			size_t len, int flags)
{
	if (sweep__hit(S_PREP_RECV))
		inject(sqe, S_PREP_RECV);
	else
		real.uring_prep_recv(sqe, fd, buf, len, flags);
}

static void w_prep_cancel(struct io_uring_sqe *sqe, int fd,
			  uint64_t user_data)
{
	if (sweep__hit(S_PREP_CANCEL))
		inject(sqe, S_PREP_CANCEL);
	else
		real.uring_prep_cancel(sqe, fd, user_data);
}

static void w_prep_reset(struct io_uring_sqe *sqe, int fd)
{
	if (sweep__hit(S_PREP_RESET))
		inject(sqe, S_PREP_RESET);
	else
		real.uring_prep_reset(sqe, fd);
}

static void w_prep_close(struct io_uring_sqe *sqe, int fd)
{
	if (sweep__hit(S_PREP_CLOSE))
		inject(sqe, S_PREP_CLOSE);
	else
		real.uring_prep_close(sqe, fd);
}

void sweep_install(void)
{
	struct iocx_linux_sys *t = &iocx__linux_sys;

	iocx__linux_sys_reset();
	real = iocx__linux_sys;
	sweep_arm(0, 0);
	t->socket = w_socket;
	t->bind = w_bind;
	t->setsockopt = w_setsockopt;
	t->getsockopt = w_getsockopt;
	t->getsockname = w_getsockname;
	t->close = w_close;
	t->shutdown = w_shutdown;
	t->connect = w_connect;
	t->send = w_send;
	t->recv = w_recv;
	t->epoll_create1 = w_epoll_create1;
	t->epoll_ctl = w_epoll_ctl;
	t->epoll_pwait2 = w_epoll_pwait2;
	t->epoll_wait = w_epoll_wait;
	t->eventfd = w_eventfd;
	t->uring_init = w_uring_init;
	t->uring_enable = w_uring_enable;
	t->uring_submit = w_uring_submit;
	t->uring_submit_and_get_events = w_uring_submit_events;
	t->uring_submit_and_wait_timeout = w_uring_submit_wait;
	t->uring_prep_connect = w_prep_connect;
	t->uring_prep_send = w_prep_send;
	t->uring_prep_recv = w_prep_recv;
	t->uring_prep_cancel = w_prep_cancel;
	t->uring_prep_reset = w_prep_reset;
	t->uring_prep_close = w_prep_close;
}

void sweep_uninstall(void)
{
	iocx__linux_sys_reset();
}
