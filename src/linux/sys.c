/*
 * The real system calls behind iocx__linux_sys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "linux/sys.h"

/*
 * With _GNU_SOURCE (which liburing.h needs) glibc declares the sockaddr
 * arguments of bind and connect as transparent unions: wrap them.
 */
static int sys_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return bind(fd, addr, len);
}

static int sys_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	return getsockname(fd, addr, len);
}

static int sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return connect(fd, addr, len);
}

#if defined(__SANITIZE_THREAD__)
#define SYS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SYS_TSAN 1
#endif
#endif

#ifdef SYS_TSAN
/*
 * ThreadSanitizer learns that an epoll_ctl happens before the wait that
 * returns its event from its interceptors of both; gcc 12's libtsan has
 * none for epoll_pwait2, so it reports every event's connection as a
 * race.  Under TSan the kernel is taken to lack epoll_pwait2 (ENOSYS, as
 * before Linux 5.11): the epoll backend then waits with the intercepted
 * epoll_wait, its documented fallback.
 */
static int sys_epoll_pwait2(int epfd, struct epoll_event *evs, int max,
			    const struct timespec *timeout,
			    const sigset_t *sigmask)
{
	(void)epfd;
	(void)evs;
	(void)max;
	(void)timeout;
	(void)sigmask;
	errno = ENOSYS;
	return -1;
}
#else
#define sys_epoll_pwait2 epoll_pwait2
#endif

/* liburing's preps are static inline: give the table real functions. */
static void prep_connect(struct io_uring_sqe *sqe, int fd,
			 const struct sockaddr *addr, socklen_t len)
{
	io_uring_prep_connect(sqe, fd, addr, len);
}

static void prep_send(struct io_uring_sqe *sqe, int fd, const void *buf,
		      size_t len, int flags)
{
	io_uring_prep_send(sqe, fd, buf, len, flags);
}

static void prep_recv(struct io_uring_sqe *sqe, int fd, void *buf, size_t len,
		      int flags)
{
	io_uring_prep_recv(sqe, fd, buf, len, flags);
}

static void prep_cancel(struct io_uring_sqe *sqe, int fd, uint64_t user_data)
{
	(void)fd;
	io_uring_prep_cancel64(sqe, user_data, 0);
}

/* The address a connect dissolves its association with (connect(2)). */
static const struct sockaddr unspecified = { .sa_family = AF_UNSPEC };

static void prep_reset(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_connect(sqe, fd, &unspecified, sizeof(unspecified));
}

static void prep_close(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_close(sqe, fd);
}

/*
 * IORING_REGISTER_ENABLE_RINGS.  liburing 2.3 declares
 * io_uring_enable_rings but its shared library does not export it.
 */
static int uring_enable(struct io_uring *ring)
{
	if (syscall(__NR_io_uring_register, ring->ring_fd,
		    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* Both copies are initialised from this (C needs constants there). */
#define REAL_SYS { \
	.socket = socket, \
	.bind = sys_bind, \
	.setsockopt = setsockopt, \
	.getsockopt = getsockopt, \
	.getsockname = sys_getsockname, \
	.close = close, \
	.shutdown = shutdown, \
	.connect = sys_connect, \
	.send = send, \
	.recv = recv, \
	.epoll_create1 = epoll_create1, \
	.epoll_ctl = epoll_ctl, \
	.epoll_pwait2 = sys_epoll_pwait2, \
	.epoll_wait = epoll_wait, \
	.eventfd = eventfd, \
	.uring_init = io_uring_queue_init_params, \
	.uring_enable = uring_enable, \
	.uring_submit = io_uring_submit, \
	.uring_submit_and_get_events = io_uring_submit_and_get_events, \
	.uring_submit_and_wait_timeout = io_uring_submit_and_wait_timeout, \
	.uring_prep_connect = prep_connect, \
	.uring_prep_send = prep_send, \
	.uring_prep_recv = prep_recv, \
	.uring_prep_cancel = prep_cancel, \
	.uring_prep_reset = prep_reset, \
	.uring_prep_close = prep_close, \
}

static const struct iocx_linux_sys real_sys = REAL_SYS;

struct iocx_linux_sys iocx__linux_sys = REAL_SYS;

/* See linux/sys.h. */
void iocx__linux_sys_reset(void)
{
	iocx__linux_sys = real_sys;
}
