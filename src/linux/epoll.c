/*
 * The epoll backend: non-blocking sockets, one epoll set per worker.
 *
 * Operations.  connect() is issued on the caller's thread (a synchronous
 * failure is returned there) and adds the socket to its owner's set for
 * EPOLLOUT | EPOLLONESHOT.  The readiness becomes the completion inside
 * wait(), on the owner: SO_ERROR gives the connect's outcome, then the
 * payload head is sent at once and the bytes the kernel took are the
 * completion's bytes (the core sends the rest).  With TCP_FASTOPEN_CONNECT
 * and a cookie cached, connect() returns 0 without a SYN; the head is sent
 * right away instead and rides the SYN.  send() and recv() (slots MAIN and
 * RECV) try the call at once and wait for readiness only when it would
 * block.  A completion made outside wait() is queued to the owner, so none
 * is ever delivered inside the call that issued the operation.
 *
 * Exactly one completion per operation: a slot's pending names the operation
 * waiting for readiness.  The readiness path and cancel() (any thread)
 * both exchange it with 0, and only the one that got it completes the
 * operation (cancel() with a queued IOCX_E_CANCELLED).
 *
 * The socket's registration: connect() adds it, before anyone can see it;
 * from then on only the owner changes it (an issuer on another thread
 * that must wait queues LX_Q_SUBMIT(op) for the owner to arm).  So the
 * owner knows exactly whether the socket is armed: EPOLLONESHOT disarms
 * it at every event, the owner re-arms it for what is still pending, and
 * after a queued completion takes it out of the set if nothing is.  An
 * armed socket therefore always has an operation pending, whose completion
 * the core awaits before closing it: no epoll event outlives a connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "linux/error.h"
#include "linux/lx.h"
#include "linux/sys.h"

enum ep_op {
	EP_NONE = 0,
	EP_CONNECT,
	EP_SEND,
	EP_RECV,
};

static void ep_engine_fini(struct iocx_engine *e)
{
	struct lx_engine *le = lx_engine(e);

	if (!le)
		return;
	for (unsigned i = 0; i < le->nworkers; i++) {
		struct lx_worker *w = &le->w[i];

		if (w->epfd >= 0)
			close(w->epfd);	/* not a socket: not in the table */
		iocx__free(w->evs);
	}
	iocx__lx_engine_fini(e);
}

static int ep_engine_init(struct iocx_engine *e)
{
	struct lx_engine *le;
	int rc = iocx__lx_engine_init(e);

	if (rc != IOCX_OK)
		return rc;
	le = lx_engine(e);
	for (unsigned i = 0; i < le->nworkers; i++) {
		struct lx_worker *w = &le->w[i];
		/* The eventfd's entry carries NULL: no connection. */
		struct epoll_event ev = { .events = EPOLLIN };

		w->evs = iocx__alloc(sizeof(*w->evs) * e->opts.batch);
		if (!w->evs) {
			rc = IOCX_E_NOMEM;
			goto err;
		}
		w->epfd = iocx__linux_sys.epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0) {
			rc = errno == ENOMEM ? IOCX_E_NOMEM : IOCX_E_SYSTEM;
			goto err;
		}
		ev.data.ptr = NULL;
		if (iocx__linux_sys.epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd,
					      &ev) != 0) {
			rc = IOCX_E_SYSTEM;
			goto err;
		}
	}
	return IOCX_OK;

err:
	ep_engine_fini(e);
	return rc;
}

/* What readiness a slot's operation waits for. */
static uint32_t interest(enum iocx_op op)
{
	return op == IOCX_OP_MAIN ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
}

/*
 * On the owner: arm lc's socket for what is pending, or take it out of
 * the set when nothing is and it is still armed.  0 or an errno.
 */
static int rearm(struct lx_worker *w, struct lx_conn *lc)
{
	struct epoll_event ev = { .data.ptr = lc };
	uint32_t mask = 0;
	int ctl;

	for (int op = IOCX_OP_MAIN; op <= IOCX_OP_RECV; op++) {
		struct lx_op *o = lx_slot(lc, (enum iocx_op)op);

		if (o && atomic_load(&o->pending) != EP_NONE)
			mask |= interest((enum iocx_op)op);
	}
	if (mask == 0) {
		if (lc->armed) {
			/* Armed for what a cancel completed. */
			iocx__linux_sys.epoll_ctl(w->epfd, EPOLL_CTL_DEL,
						  lc->fd, NULL);
			lc->registered = false;
			lc->armed = false;
		}
		return 0;
	}
	ev.events = mask | EPOLLONESHOT;
	ctl = lc->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (iocx__linux_sys.epoll_ctl(w->epfd, ctl, lc->fd, &ev) != 0)
		return errno;
	lc->registered = true;
	lc->armed = true;
	return 0;
}

/* The socket could not be armed: fail whatever waits for readiness. */
static void fail_pending(struct lx_conn *lc, int err)
{
	for (int op = IOCX_OP_MAIN; op <= IOCX_OP_RECV; op++) {
		struct lx_op *o = lx_slot(lc, (enum iocx_op)op);

		if (o && atomic_exchange(&o->pending, EP_NONE) != EP_NONE)
			iocx__lx_push_io(lc, (enum iocx_op)op,
				   iocx__linux_error(err), (uint32_t)err, 0);
	}
}

/* send() what is left of slot MAIN's buffer; n >= 0 sent, or -errno. */
static ssize_t send_rest(struct lx_conn *lc)
{
	struct lx_op *o = lx_slot(lc, IOCX_OP_MAIN);
	ssize_t n = iocx__linux_sys.send(lc->fd, o->buf + o->done,
					 o->len - o->done,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

/* recv() into slot RECV's buffer: n >= 0 (0 = EOF), -EAGAIN or -errno. */
static ssize_t recv_some(struct lx_conn *lc)
{
	struct lx_op *o = lx_slot(lc, IOCX_OP_RECV);
	ssize_t n = iocx__linux_sys.recv(lc->fd, o->buf, o->len,
					 MSG_DONTWAIT);

	if (n >= 0)
		return n;
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static void set(struct lx_result *r, int status, int err, size_t bytes)
{
	r->status = status;
	r->os_code = (uint32_t)err;
	r->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

/*
 * EP_CONNECT became ready: its outcome, then the payload head.  A failed
 * connect always raises EPOLLERR, so SO_ERROR is read only then (one
 * system call less per connect).
 */
static void connect_ready(struct lx_conn *lc, uint32_t revents,
			  struct lx_result *r)
{
	struct lx_op *o = lx_slot(lc, IOCX_OP_MAIN);
	socklen_t len = sizeof(int);
	int err = 0;
	ssize_t n;

	if ((revents & (EPOLLERR | EPOLLHUP)) &&
	    iocx__linux_sys.getsockopt(lc->fd, SOL_SOCKET, SO_ERROR, &err,
				       &len) != 0)
		err = errno;
	if (err != 0) {
		set(r, iocx__linux_error_connect(err, lc->ephemeral), err, 0);
		return;
	}
	if (o->done < o->len) {
		n = send_rest(lc);
		if (n < 0) {
			set(r, iocx__linux_error((int)-n), (int)-n, 0);
			return;
		}
		o->done += (uint32_t)n;
	}
	set(r, IOCX_OK, 0, o->done);
}

/*
 * Try an operation of kind now that the event (revents) says the socket
 * is ready: true with its outcome in *r, false when it would block again.
 */
static bool attempt(struct lx_conn *lc, enum ep_op kind, uint32_t revents,
		    struct lx_result *r)
{
	ssize_t n;

	switch (kind) {
	case EP_CONNECT:
		connect_ready(lc, revents, r);
		return true;
	case EP_SEND:
		n = send_rest(lc);
		if (n == 0)
			return false;
		if (n < 0)
			set(r, iocx__linux_error((int)-n), (int)-n, 0);
		else
			set(r, IOCX_OK, 0, (size_t)n);
		return true;
	default:
		n = recv_some(lc);
		if (n == -EAGAIN)
			return false;
		if (n < 0)
			set(r, iocx__linux_error((int)-n), (int)-n, 0);
		else
			set(r, IOCX_OK, 0, (size_t)n);
		return true;
	}
}

/*
 * The operation must wait again: put it back, unless a cancel came
 * meanwhile (paired with ep_cancel: one of us sees the other's store);
 * then it completes as cancelled here (true).
 */
static bool wait_again(struct lx_conn *lc, enum iocx_op op, enum ep_op kind,
		       struct lx_result *r)
{
	struct lx_op *o = lx_slot(lc, op);

	atomic_store(&o->pending, kind);
	if (atomic_load(&o->cancel_req) &&
	    atomic_exchange(&o->pending, EP_NONE) != EP_NONE) {
		set(r, IOCX_E_CANCELLED, ECANCELED, 0);
		return true;
	}
	return false;
}

/* Hand out a completion: into the batch if there is room, else queued. */
static void emit(struct lx_conn *lc, enum iocx_op op,
		 const struct lx_result *r, struct iocx_event *ev,
		 unsigned *n, unsigned room)
{
	if (*n < room)
		iocx__lx_io_event(&ev[(*n)++], lc, op, r->status, r->os_code,
			    r->bytes);
	else
		iocx__lx_push_io(lc, op, r->status, r->os_code, r->bytes);
}

/* An epoll event for lc: complete what it made ready, re-arm the rest. */
static unsigned ready(struct lx_worker *w, struct lx_conn *lc,
		      uint32_t revents, struct iocx_event *ev, unsigned room)
{
	unsigned n = 0;
	int err;

	lc->armed = false;		/* EPOLLONESHOT */
	for (int i = IOCX_OP_MAIN; i <= IOCX_OP_RECV; i++) {
		enum iocx_op op = (enum iocx_op)i;
		struct lx_result r;
		struct lx_op *o;
		enum ep_op kind;

		if (!(revents & (interest(op) | EPOLLERR | EPOLLHUP)))
			continue;
		o = lx_slot(lc, op);
		kind = o ? atomic_exchange(&o->pending, EP_NONE) : EP_NONE;
		if (kind == EP_NONE)
			continue;	/* cancel() won: its completion is
					   queued */
		if (!attempt(lc, kind, revents, &r) &&
		    !wait_again(lc, op, kind, &r))
			continue;
		emit(lc, op, &r, ev, &n, room);
	}
	err = rearm(w, lc);
	if (err)
		fail_pending(lc, err);
	return n;
}

/* Hand out queued requests and completions, up to max events. */
static unsigned drain_queue(struct lx_worker *w, struct iocx_event *events,
			    unsigned n, unsigned max)
{
	struct lx_queued q[2];
	struct lx_conn *lc;
	unsigned bits;

	while ((lc = iocx__lx_pop(w, max - n, &bits, q))) {
		/* Arm for an issuer elsewhere; disarm after a cancel. */
		if ((bits & (LX_Q_SUBMIT_MAIN | LX_Q_SUBMIT_RECV)) ||
		    ((bits & (LX_Q_IO_MAIN | LX_Q_IO_RECV)) && lc->armed)) {
			int err = rearm(w, lc);

			if (err)
				fail_pending(lc, err);
		}
		n += iocx__lx_queue_events(lc, bits, q, &events[n]);
	}
	return n;
}

/*
 * epoll_pwait2 waits to the nanosecond (the pacing's intervals are often
 * below a millisecond); a kernel older than 5.11 answers ENOSYS, and the
 * worker then waits with epoll_wait, rounded up to whole milliseconds.
 */
static int poll_wait(struct lx_worker *w, int max, uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000u),
		.tv_nsec = (long)(timeout_ns % 1000000000u),
	};
	int got;

	if (!w->no_pwait2) {
		got = iocx__linux_sys.epoll_pwait2(w->epfd, w->evs, max, &ts,
						   NULL);
		if (got >= 0 || errno != ENOSYS)
			return got;
		w->no_pwait2 = true;
	}
	return iocx__linux_sys.epoll_wait(w->epfd, w->evs, max,
					  (int)((timeout_ns + 999999u) /
						1000000u));
}

static int ep_wait(struct iocx_engine *e, unsigned worker,
		   struct iocx_event *events, unsigned max,
		   uint64_t timeout_ns)
{
	struct lx_worker *w = &lx_engine(e)->w[worker];
	unsigned n = 0;
	bool woken = false;
	int got;

	iocx__lx_enter(w);
	if (max > e->opts.batch)
		max = e->opts.batch;
	if (iocx__lx_take_stop(w->le)) {
		memset(&events[n], 0, sizeof(events[n]));
		events[n++].kind = IOCX_EV_STOP;
	}
	n = drain_queue(w, events, n, max);
	if (n == max)
		return (int)n;

	got = poll_wait(w, (int)(max - n), n > 0 ? 0 : timeout_ns);
	if (got < 0)
		return n > 0 ? (int)n : (errno == EINTR ? 0 : IOCX_E_SYSTEM);
	for (int i = 0; i < got; i++) {
		struct lx_conn *lc = w->evs[i].data.ptr;

		if (!lc)
			woken = true;
		else
			n += ready(w, lc, w->evs[i].events, &events[n],
				   max - n);
	}
	if (woken) {
		iocx__lx_drain_efd(w);
		n = drain_queue(w, events, n, max);
	}
	return (int)n;
}

static int ep_open(struct iocx_conn *c, bool *fastopen)
{
	return iocx__lx_sock_open(lx_conn(c), SOCK_NONBLOCK, fastopen);
}

/* Record a failed call's errno on c and map it. */
static int fail_errno(struct iocx_conn *c, int err)
{
	c->os_code = (uint32_t)err;
	return iocx__linux_error(err);
}

/* Set up slot op for a new operation on buf[0..len). */
static struct lx_op *begin(struct lx_conn *lc, enum iocx_op op,
			   const void *buf, size_t len)
{
	struct lx_op *o = lx_slot(lc, op);

	o->buf = (unsigned char *)(uintptr_t)buf;
	o->len = (uint32_t)len;	/* <= IOCX__OP_MAX */
	o->done = 0;
	atomic_store(&o->cancel_req, false);
	return o;
}

static int ep_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	struct lx_conn *lc = lx_conn(c);
	struct lx_op *o = begin(lc, IOCX_OP_MAIN, buf, len);
	struct epoll_event ev = {
		.events = EPOLLOUT | EPOLLONESHOT,
		.data.ptr = lc,
	};
	int rc;

	rc = iocx__linux_sys.connect(lc->fd,
				     &c->remote.sa,
				     (socklen_t)c->remote_len);
	if (rc != 0 && errno != EINPROGRESS) {
		c->os_code = (uint32_t)errno;
		return iocx__linux_error_connect(errno, lc->ephemeral);
	}
	if (rc == 0 && lc->tfo && len > 0) {
		/* Deferred by TCP_FASTOPEN_CONNECT: this send is the SYN. */
		ssize_t n = iocx__linux_sys.send(lc->fd, buf, len,
						 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0)
			o->done = (uint32_t)n;
		else if (errno != EINPROGRESS && errno != EAGAIN)
			return fail_errno(c, errno);
	}
	/* Published before the socket joins the set: the owner may see
	 * it ready before epoll_ctl returns here.  A fresh socket. */
	lc->registered = true;
	lc->armed = true;
	atomic_store(&o->pending, EP_CONNECT);
	if (iocx__linux_sys.epoll_ctl(lx_owner(lc)->epfd, EPOLL_CTL_ADD,
				      lc->fd, &ev) != 0) {
		atomic_store(&o->pending, EP_NONE);
		lc->registered = false;
		lc->armed = false;
		c->os_code = (uint32_t)errno;
		return IOCX_E_SYSTEM;
	}
	return IOCX_OK;
}

/* The operation would block: wait for readiness, armed by the owner. */
static int wait_ready(struct lx_conn *lc, enum iocx_op op, enum ep_op kind)
{
	struct lx_worker *w = lx_owner(lc);
	int err;

	atomic_store(&lx_slot(lc, op)->pending, kind);
	if (!iocx__lx_on_worker(w)) {
		iocx__lx_push(lc, LX_Q_SUBMIT(op));
		return IOCX_OK;
	}
	err = rearm(w, lc);
	if (err == 0)
		return IOCX_OK;
	/* The caller holds the connection's lock: no cancel can race. */
	atomic_store(&lx_slot(lc, op)->pending, EP_NONE);
	return fail_errno(&lc->core, err);
}

static int ep_send(struct iocx_conn *c, const void *buf, size_t len)
{
	struct lx_conn *lc = lx_conn(c);
	ssize_t n;

	begin(lc, IOCX_OP_MAIN, buf, len);
	n = send_rest(lc);
	if (n < 0)
		return fail_errno(c, (int)-n);
	if (n == 0)
		return wait_ready(lc, IOCX_OP_MAIN, EP_SEND);
	iocx__lx_push_io(lc, IOCX_OP_MAIN, IOCX_OK, 0, (uint32_t)n);
	return IOCX_OK;
}

static int ep_recv(struct iocx_conn *c, void *buf, size_t len)
{
	struct lx_conn *lc = lx_conn(c);
	ssize_t n;

	begin(lc, IOCX_OP_RECV, buf, len);
	n = recv_some(lc);
	if (n == -EAGAIN)
		return wait_ready(lc, IOCX_OP_RECV, EP_RECV);
	if (n < 0)
		return fail_errno(c, (int)-n);
	iocx__lx_push_io(lc, IOCX_OP_RECV, IOCX_OK, 0, (uint32_t)n);
	return IOCX_OK;
}

static int ep_shutdown(struct iocx_conn *c)
{
	return iocx__lx_sock_shutdown(lx_conn(c));
}

static int ep_connected(struct iocx_conn *c)
{
	(void)c;	/* SO_ERROR was read by the readiness path */
	return IOCX_OK;
}

static void ep_cancel(struct iocx_conn *c, enum iocx_op op)
{
	struct lx_conn *lc = lx_conn(c);
	struct lx_op *o = lx_slot(lc, op);

	atomic_store(&o->cancel_req, true);
	/* Lost: the completion is already on its way.  Won: the owner
	 * takes the socket out of its set when it hands this out. */
	if (atomic_exchange(&o->pending, EP_NONE) != EP_NONE)
		iocx__lx_push_io(lc, op, IOCX_E_CANCELLED, ECANCELED, 0);
}

static void ep_close(struct iocx_conn *c, bool abort)
{
	iocx__lx_sock_close(lx_conn(c), abort);
}

/*
 * A race's winner: the socket leaves the attempt's owner's set (with the
 * attempt as its data); dst's owner adds it, with dst, when dst first
 * waits for readiness.  Both connections' locks are held and src has
 * nothing pending, so its owner does not touch its registration now.
 */
static int ep_adopt(struct iocx_conn *dst, struct iocx_conn *src)
{
	struct lx_conn *to = lx_conn(dst), *from = lx_conn(src);

	if (from->registered &&
	    iocx__linux_sys.epoll_ctl(lx_owner(from)->epfd, EPOLL_CTL_DEL,
				      from->fd, NULL) != 0)
		return fail_errno(dst, errno);
	from->registered = false;
	from->armed = false;
	to->registered = false;
	to->armed = false;
	iocx__lx_sock_adopt(to, from);
	return IOCX_OK;
}

static int ep_detach(struct iocx_conn *c, iocx_socket_t *out)
{
	struct lx_conn *lc = lx_conn(c);

	return iocx__lx_sock_detach(lc, lx_owner(lc)->epfd, out);
}

/* The epoll backend (src/backend.h). */
const struct iocx_backend iocx__epoll_backend = {
	.name = "epoll",
	.conn_size = sizeof(struct lx_conn),
	.data_size = sizeof(struct lx_op),	/* slot RECV (lx_slot()) */
	.engine_init = ep_engine_init,
	.engine_fini = ep_engine_fini,
	.wait = ep_wait,
	.post = iocx__lx_post,
	.open = ep_open,
	.connect = ep_connect,
	.send = ep_send,
	.recv = ep_recv,
	.shutdown = ep_shutdown,
	.connected = ep_connected,
	.cancel = ep_cancel,
	.close = ep_close,
	.adopt = ep_adopt,
	.attach = iocx__lx_sock_attach,
	.native = iocx__lx_sock_native,
	.detach = ep_detach,
	.local_addr = iocx__lx_sock_local_addr,
};
