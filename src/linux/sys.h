/*
 * Every system call the Linux backends make goes through this table, so
 * tests can record calls or fail the Nth one (the SQLite VFS approach, as
 * src/win/sys.h does for Windows).  iocx__linux_sys holds the real
 * functions; tests swap entries and restore them with
 * iocx__linux_sys_reset().  Not thread-safe to modify while an engine is
 * running operations.
 *
 * io_uring operations are not system calls of their own: the backend
 * fills submission entries through the uring_prep_* entries, so a test can
 * record what an operation offered, shorten it, or replace it with a NOP
 * whose result is an injected error.
 */
#ifndef IOCX_LINUX_SYS_H
#define IOCX_LINUX_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <liburing.h>

struct iocx_linux_sys {
	/* Sockets: both backends. */
	int (*socket)(int domain, int type, int protocol);
	int (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
	int (*setsockopt)(int fd, int level, int name, const void *val,
			  socklen_t len);
	int (*getsockopt)(int fd, int level, int name, void *val,
			  socklen_t *len);
	int (*getsockname)(int fd, struct sockaddr *addr, socklen_t *len);
	int (*close)(int fd);			/* sockets only */
	int (*shutdown)(int fd, int how);
	/* epoll backend. */
	int (*connect)(int fd, const struct sockaddr *addr, socklen_t len);
	ssize_t (*send)(int fd, const void *buf, size_t len, int flags);
	ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
	int (*epoll_create1)(int flags);
	int (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event *ev);
	/* The wait with a nanosecond timeout (Linux 5.11); epoll_wait, in
	 * whole milliseconds, where the kernel lacks it (ENOSYS). */
	int (*epoll_pwait2)(int epfd, struct epoll_event *evs, int max,
			    const struct timespec *timeout,
			    const sigset_t *sigmask);
	int (*epoll_wait)(int epfd, struct epoll_event *evs, int max,
			  int timeout_ms);
	/* Worker wake-ups: both backends. */
	int (*eventfd)(unsigned int initval, int flags);
	/* io_uring backend: io_uring_queue_init_params and the preps. */
	int (*uring_init)(unsigned entries, struct io_uring *ring,
			  struct io_uring_params *p);
	/* Enable a ring made with IORING_SETUP_R_DISABLED: the calling
	 * thread becomes a SINGLE_ISSUER ring's submitter.  0 or -errno. */
	int (*uring_enable)(struct io_uring *ring);
	/* Submit what is queued; a failure (-errno) leaves it queued for
	 * the next submission.  The second also waits for a completion or
	 * the timeout. */
	int (*uring_submit)(struct io_uring *ring);
	/* Submit, and run the completions a DEFER_TASKRUN ring deferred
	 * (one io_uring_enter with GETEVENTS that does not wait). */
	int (*uring_submit_and_get_events)(struct io_uring *ring);
	int (*uring_submit_and_wait_timeout)(struct io_uring *ring,
					     struct io_uring_cqe **cqe,
					     unsigned wait_nr,
					     struct __kernel_timespec *ts,
					     sigset_t *sigmask);
	void (*uring_prep_connect)(struct io_uring_sqe *sqe, int fd,
				   const struct sockaddr *addr,
				   socklen_t len);
	void (*uring_prep_send)(struct io_uring_sqe *sqe, int fd,
				const void *buf, size_t len, int flags);
	void (*uring_prep_recv)(struct io_uring_sqe *sqe, int fd, void *buf,
				size_t len, int flags);
	/* ASYNC_CANCEL of the operation with user_data; fd is the socket
	 * it runs on, passed so a recorder can tell whose it is. */
	void (*uring_prep_cancel)(struct io_uring_sqe *sqe, int fd,
				  uint64_t user_data);
	/* options.batch_closes: reset a connection (IORING_OP_CONNECT to
	 * AF_UNSPEC), and close a socket (IORING_OP_CLOSE). */
	void (*uring_prep_reset)(struct io_uring_sqe *sqe, int fd);
	void (*uring_prep_close)(struct io_uring_sqe *sqe, int fd);
};

extern struct iocx_linux_sys iocx__linux_sys;

/* Restore every entry of iocx__linux_sys to the real function. */
void iocx__linux_sys_reset(void);

#endif /* IOCX_LINUX_SYS_H */
