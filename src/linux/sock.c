/*
 * Socket set-up and tear-down, the same for both Linux backends.
 *
 * No bind without a local address: Linux picks the source port at
 * connect time, per destination, so an unbound socket can use the whole
 * ephemeral range towards each peer (bind(port 0) would reserve a port for
 * every destination at once).  A caller-given address with port 0 gets
 * IP_BIND_ADDRESS_NO_PORT for the same reason.  An address the engine took
 * from options.sources does not: there bind(port 0) must fail when the
 * source's ports run out, so the core moves on to the next source.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "linux/error.h"
#include "linux/lx.h"
#include "linux/sys.h"

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static bool is_v4_mapped(const union iocx_addr *a)
{
	return a->sa.sa_family == AF_INET6 &&
	       IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr);
}

static uint16_t port_of(const union iocx_addr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port;
	return a->in.sin_port;
}

/* Record a failed call's errno on c and map it. */
static int fail_errno(struct iocx_conn *c, int err)
{
	c->os_code = (uint32_t)err;
	return iocx__linux_error(err);
}

static int set_int(int fd, int level, int name, int value)
{
	return iocx__linux_sys.setsockopt(fd, level, name, &value,
					  sizeof(value));
}

/*
 * SYN tuning, best effort like TFO: TCP_SYNCNT takes the retransmissions
 * (1..127); Linux has no per-socket initial RTO, so a request that names
 * syn_rtt_ms, or no retransmission at all, goes untuned rather than half
 * applied.  Returns whether the socket took it.
 */
static bool tune_syn(const struct iocx_conn *c, int fd)
{
	int n = iocx__conn_opts(c)->syn_retransmissions;

	if (iocx__conn_opts(c)->syn_rtt_ms || n < 1 || n > 127)
		return false;
	return set_int(fd, IPPROTO_TCP, TCP_SYNCNT, n) == 0;
}

static int bind_local(struct lx_conn *lc, int fd)
{
	struct iocx_conn *c = &lc->core;

	if (lc->ephemeral && !c->local_from_sources) {
		/* Best effort: without it bind reserves the port now. */
		set_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
	}
	if (iocx__linux_sys.bind(fd, &c->local->sa,
				 (socklen_t)c->local_len) != 0) {
		c->os_code = (uint32_t)errno;
		return iocx__linux_error_bind(errno, lc->ephemeral);
	}
	return IOCX_OK;
}

/* See linux/lx.h. */
int iocx__lx_sock_open(struct lx_conn *lc, int type_flags, bool *fastopen)
{
	struct iocx_conn *c = &lc->core;
	int fd, rc;

	lc->fd = -1;
	lc->tfo = false;
	*fastopen = false;
	fd = iocx__linux_sys.socket(c->remote.sa.sa_family,
				    SOCK_STREAM | SOCK_CLOEXEC | type_flags,
				    IPPROTO_TCP);
	if (fd < 0) {
		rc = fail_errno(c, errno);
		/* Running out of descriptors is not bad input. */
		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	if (is_v4_mapped(&c->remote) &&
	    set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0) {
		rc = fail_errno(c, errno);
		goto err;
	}
	/*
	 * Best effort, and only with a payload: with a cookie cached the
	 * connect is deferred until the first send, which carries the
	 * payload in the SYN; with nothing to send no SYN would leave.
	 */
	if ((c->flags & IOCX_CONNECT_FASTOPEN) && c->payload_len > 0)
		lc->tfo = set_int(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1) ==
			  0;
	lc->ephemeral = c->local_len == 0 || port_of(c->local) == 0;
	if (c->local_len > 0) {
		rc = bind_local(lc, fd);
		if (rc != IOCX_OK)
			goto err;
	}
	c->syn_tuned = false;
	if (iocx__conn_opts(c)->syn_rtt_ms ||
	    iocx__conn_opts(c)->syn_retransmissions)
		c->syn_tuned = tune_syn(c, fd);
	(void)lx_owner(lc);	/* chosen now unless a post came first */
	lc->fd = fd;
	*fastopen = lc->tfo;
	return IOCX_OK;

err:
	iocx__linux_sys.close(fd);
	lc->tfo = false;
	return rc;
}

/* See linux/lx.h. */
void iocx__lx_sock_attach(struct iocx_conn *c)
{
	struct lx_conn *lc = lx_conn(c);

	lc->fd = -1;	/* its owner is claimed at its first post */
}

/* See linux/lx.h. */
void iocx__lx_sock_adopt(struct lx_conn *dst, struct lx_conn *src)
{
	dst->fd = src->fd;
	dst->ephemeral = src->ephemeral;
	dst->tfo = false;
	src->fd = -1;
}

/* See linux/lx.h. */
iocx_socket_t iocx__lx_sock_native(struct iocx_conn *c)
{
	return lx_conn(c)->fd;
}

/* See linux/lx.h. */
int iocx__lx_sock_detach(struct lx_conn *lc, int epfd, iocx_socket_t *out)
{
	/* Nothing is in flight, so the socket is not armed; it may still
	 * be in the set, disarmed (ENOENT when it never was). */
	if (epfd >= 0 &&
	    iocx__linux_sys.epoll_ctl(epfd, EPOLL_CTL_DEL, lc->fd, NULL) != 0 &&
	    errno != ENOENT)
		return fail_errno(&lc->core, errno);
	*out = lc->fd;
	lc->fd = -1;
	return IOCX_OK;
}

/* See linux/lx.h. */
int iocx__lx_sock_local_addr(struct iocx_conn *c,
			     struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);

	if (iocx__linux_sys.getsockname(lx_conn(c)->fd, (struct sockaddr *)out,
					&len) != 0)
		return fail_errno(c, errno);
	return IOCX_OK;
}

/* See linux/lx.h. */
int iocx__lx_sock_shutdown(struct lx_conn *lc)
{
	if (iocx__linux_sys.shutdown(lc->fd, SHUT_WR) != 0)
		return fail_errno(&lc->core, errno);
	return IOCX_OK;
}

/* See linux/lx.h. */
void iocx__lx_fd_close(int fd, bool abort)
{
	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		iocx__linux_sys.setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
					   sizeof(lg));
	}
	iocx__linux_sys.close(fd);
}

/* See linux/lx.h. */
void iocx__lx_sock_close(struct lx_conn *lc, bool abort)
{
	if (lc->fd < 0)
		return;
	iocx__lx_fd_close(lc->fd, abort);
	lc->fd = -1;
}
