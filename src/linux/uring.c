/*
 * The io_uring backend: one ring per worker, connects, sends and receives
 * as IORING_OP_CONNECT / SEND / RECV, cancellation with
 * IORING_OP_ASYNC_CANCEL, and one io_uring_enter per loop that both
 * submits everything the last batch of callbacks queued and waits.
 *
 * Only the owner worker touches its ring.  That is required, not a
 * choice: io_uring ties a request to the task that submitted it, and
 * completes it with -ECANCELED once that task has exited, so a connect
 * submitted from a short-lived caller thread would be lost.  An operation
 * issued on another thread (a connect from the caller, a cancel or send
 * from a timer on another worker) is therefore queued to the owner as
 * LX_Q_SUBMIT(op) / LX_Q_CANCEL(op), and issued in its next wait(); one
 * issued on the owner (the usual "start the next one" from a callback:
 * open() makes the calling worker the owner) goes straight into the ring.
 * As a consequence a connect the kernel rejects at once is reported
 * through on_connect, not returned by iocx_connect().
 *
 * One backend operation may take several ring operations (stages):
 *   connect:  CONNECT, then SEND of the payload head (if any), then for
 *             TCP Fast Open a POLL_ADD(POLLOUT): with a cookie the connect
 *             was deferred and the send's SYN is still unanswered;
 *   send:     SEND;            recv:  RECV (slot RECV).
 * All stages of a slot carry the connection's address tagged with the
 * slot as user_data and only one is in flight, so one ASYNC_CANCEL by
 * user_data reaches whichever it is; the slot's cancelled stops the chain after
 * the current stage.  The cancel holds a reference to the connection
 * until its own completion (TAG_CANCEL_*): one that found nothing to
 * cancel (-ENOENT) normally comes after the operation's completion, which
 * ended the stage; if the stage is still in flight then, the cancel
 * missed it for good (only seen with injected faults), and the socket is
 * shut down instead, which ends the operation: it is reported cancelled
 * with socket_lost, and the socket is of no further use.
 *
 * Generations: every operation start() begins bumps its slot's gen, and
 * a cancel names the generation it is for.  One queued from another
 * thread may reach the owner after its operation ended by itself and the
 * core started the next one (a refused attempt retried from a backoff
 * timer): the owner drops it, since the slot's live_gen, the generation of what
 * is in flight, is no longer the one it names.  A start() on another
 * thread hands the stage and generation over in the queue (lx_op.q) and
 * writes none of the owner's fields.
 *
 * With options.batch_closes a close is ring operations too (ur_close): a
 * reset (CONNECT to AF_UNSPEC) hard-linked to a CLOSE, tagged TAG_CLOSE
 * with the descriptor, not the connection, which is freed meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>

#include "linux/error.h"
#include "linux/lx.h"
#include "linux/sys.h"

#define UR_SQ_ENTRIES 512
#define UR_CQ_ENTRIES 4096

/* Low bits of user_data: what the completion is for. */
enum ur_tag {
	TAG_MAIN = 0,		/* a stage of slot MAIN of the connection */
	TAG_CANCEL_MAIN = 1,	/* an ASYNC_CANCEL of slot MAIN's stage */
	TAG_WAKE = 2,		/* the read of the worker's eventfd */
	TAG_RECV = 3,		/* slot RECV's receive */
	TAG_CLOSE = 4,		/* a batched reset or close (close_data) */
	TAG_CANCEL_RECV = 5,	/* an ASYNC_CANCEL of slot RECV's receive */
};
#define TAG_MASK ((uint64_t)7)

enum ur_stage {
	UR_NONE = 0,
	UR_CONNECT,
	UR_HEAD,		/* send of the payload head after connect */
	UR_TFO_POLL,		/* wait for a deferred TFO handshake */
	UR_SEND,
	UR_RECV,
	UR_CLOSE,		/* close_op: the CLOSE, after a reset ... */
	UR_CLOSE_ABORT,		/* ... or not (abort) */
};

/* Ring operations the backend needs (IORING_OP_SEND: Linux 5.6). */
static const int needed_ops[] = {
	IORING_OP_CONNECT, IORING_OP_SEND, IORING_OP_RECV,
	IORING_OP_ASYNC_CANCEL, IORING_OP_READ, IORING_OP_POLL_ADD,
	IORING_OP_CLOSE,
};

static int init_error(int err)
{
	/* Not there or not allowed: no io_uring on this machine. */
	if (err == ENOSYS || err == EPERM || err == EACCES)
		return IOCX_E_NOTSUP;
	return err == ENOMEM ? IOCX_E_NOMEM : IOCX_E_SYSTEM;
}

/* The ring lacks a feature or operation the backend relies on. */
static bool ring_lacks(struct io_uring *ring, unsigned features)
{
	struct io_uring_probe *probe;
	bool lacks = false;

	if (!(features & IORING_FEAT_NODROP) ||
	    !(features & IORING_FEAT_EXT_ARG))
		return true;
	probe = io_uring_get_probe_ring(ring);
	if (!probe)
		return true;
	for (size_t i = 0; i < sizeof(needed_ops) / sizeof(*needed_ops); i++)
		lacks |= !io_uring_opcode_supported(probe, needed_ops[i]);
	io_uring_free_probe(probe);
	return lacks;
}

/*
 * Make w's ring.  A worker thread's ring (threaded) is made disabled,
 * SINGLE_ISSUER | DEFER_TASKRUN: the worker enables it in its first
 * wait (enable_ring), which makes it the one task that may submit, and
 * its completions then run only inside that worker's own io_uring_enter
 * (Linux 6.1), not as task work that interrupts it.  A kernel that
 * refuses these flags gets COOP_TASKRUN (5.19), then none.  A manual
 * engine (no worker threads) is pumped by whichever thread calls it, so
 * it never gets SINGLE_ISSUER.
 */
static int ring_init(struct lx_worker *w, bool threaded)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_R_DISABLED,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	int rc = -EINVAL;

	for (size_t i = threaded ? 0 : 1;
	     rc == -EINVAL && i < sizeof(tries) / sizeof(*tries); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | tries[i];
		p.cq_entries = UR_CQ_ENTRIES;
		rc = iocx__linux_sys.uring_init(UR_SQ_ENTRIES, &w->ring, &p);
	}
	if (rc < 0)
		return init_error(-rc);
	w->ring_ok = true;
	w->ring_disabled = p.flags & IORING_SETUP_R_DISABLED;
	w->defer_taskrun = p.flags & IORING_SETUP_DEFER_TASKRUN;
	/* IOSQE_IO_HARDLINK came with Linux 5.7, as did this feature. */
	w->hardlink_ok = p.features & IORING_FEAT_FAST_POLL;
	w->cqe_skip_ok = p.features & IORING_FEAT_CQE_SKIP;
	/* Before enabling: after, only the worker may register (probe). */
	return ring_lacks(&w->ring, p.features) ? IOCX_E_NOTSUP : IOCX_OK;
}

/*
 * On the worker, before its ring's first use: enable a ring made
 * disabled, which makes this thread its single issuer.
 */
static int enable_ring(struct lx_worker *w)
{
	int rc;

	if (!w->ring_disabled)
		return IOCX_OK;
	rc = iocx__linux_sys.uring_enable(&w->ring);
	if (rc < 0)
		return IOCX_E_SYSTEM;
	w->ring_disabled = false;
	return IOCX_OK;
}

/*
 * user_data of a batched close: the tag, whether it resets, and fd + 1 (a
 * reset carries no fd).  A close that failed never ran: -ECANCELED when a
 * reset the kernel rejected before running it ended the hard link, any
 * other error when the close itself was rejected.  (Closing a socket
 * releases the descriptor whenever it runs; only -EBADF, a descriptor
 * that was not open, fails after that point, and there is nothing to
 * close.)  reap() then closes the socket the usual way.
 */
static uint64_t close_data(int fd, bool abort)
{
	return TAG_CLOSE | (uint64_t)abort << 3 | ((uint64_t)fd + 1) << 4;
}

static void close_done(uint64_t ud, int res)
{
	if (res < 0 && res != -EBADF && (ud >> 4) != 0)
		iocx__lx_fd_close((int)((ud >> 4) - 1), (ud >> 3) & 1);
}

/*
 * Before a ring goes (workers joined): submit the batched closes still
 * queued, which run inline, until none is left or none goes in, then
 * close the sockets of those that never ran: those that completed with
 * an error, and those still queued (a single-issuer ring takes nothing
 * from this thread: its worker, the only task allowed, has exited).
 */
static void flush_closes(struct lx_worker *w)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	while (io_uring_sq_ready(&w->ring) > 0 &&
	       iocx__linux_sys.uring_submit(&w->ring) > 0)
		;
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		if ((cqe->user_data & TAG_MASK) == TAG_CLOSE)
			close_done(cqe->user_data, cqe->res);
		seen++;
	}
	io_uring_cq_advance(&w->ring, seen);
	/* Nothing consumes the queue now: no SQPOLL, nobody enters. */
	for (unsigned i = *w->ring.sq.khead; i != w->ring.sq.sqe_tail; i++) {
		sqe = &w->ring.sq.sqes[i & w->ring.sq.ring_mask];
		if ((sqe->user_data & TAG_MASK) == TAG_CLOSE)
			close_done(sqe->user_data, -ECANCELED);
	}
}

static void ur_engine_fini(struct iocx_engine *e)
{
	struct lx_engine *le = lx_engine(e);

	if (!le)
		return;
	for (unsigned i = 0; i < le->nworkers; i++) {
		if (!le->w[i].ring_ok)
			continue;
		flush_closes(&le->w[i]);
		io_uring_queue_exit(&le->w[i].ring);
	}
	iocx__lx_engine_fini(e);
}

static int ur_engine_init(struct iocx_engine *e)
{
	struct lx_engine *le;
	int rc = iocx__lx_engine_init(e);

	if (rc != IOCX_OK)
		return rc;
	le = lx_engine(e);
	for (unsigned i = 0; i < le->nworkers; i++) {
		rc = ring_init(&le->w[i], e->opts.workers > 0);
		if (rc != IOCX_OK) {
			ur_engine_fini(e);
			return rc;
		}
	}
	return IOCX_OK;
}

/* A free submission entry, flushing the queue to the kernel if full. */
static struct io_uring_sqe *get_sqe(struct lx_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		iocx__linux_sys.uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* Keep one read of the eventfd in flight: a cross-thread wake-up. */
static void arm_wake(struct lx_worker *w)
{
	struct io_uring_sqe *sqe;

	if (w->efd_armed)
		return;
	sqe = get_sqe(w);
	if (!sqe)
		return;		/* tried again at the next wait */
	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, TAG_WAKE);
	w->efd_armed = true;
}

/* user_data of slot op's stages. */
static uint64_t op_data(struct lx_conn *lc, enum iocx_op op)
{
	return (uintptr_t)lc | (op == IOCX_OP_RECV ? TAG_RECV : TAG_MAIN);
}

/* user_data of a cancel of slot op's stage. */
static uint64_t cancel_data(struct lx_conn *lc, enum iocx_op op)
{
	return (uintptr_t)lc |
	       (op == IOCX_OP_RECV ? TAG_CANCEL_RECV : TAG_CANCEL_MAIN);
}

/*
 * Issue stage of lc's slot op on worker w: IOCX_OK, or IOCX_E_SYSTEM when
 * no submission entry could be had (errno EBUSY: the kernel would not
 * take the full queue).
 */
static int issue(struct lx_worker *w, struct lx_conn *lc, enum iocx_op op,
		 enum ur_stage stage)
{
	struct iocx_conn *c = &lc->core;
	struct io_uring_sqe *sqe = get_sqe(w);
	struct lx_op *o = lx_slot(lc, op);

	if (!sqe)
		return IOCX_E_SYSTEM;
	o->stage = stage;
	switch (stage) {
	case UR_CONNECT:
		iocx__linux_sys.uring_prep_connect(
			sqe, lc->fd, &c->remote.sa,
			(socklen_t)c->remote_len);
		break;
	case UR_HEAD:
	case UR_SEND:
		iocx__linux_sys.uring_prep_send(sqe, lc->fd, o->buf + o->done,
						o->len - o->done,
						MSG_NOSIGNAL);
		break;
	case UR_RECV:
		iocx__linux_sys.uring_prep_recv(sqe, lc->fd, o->buf, o->len,
						0);
		break;
	default:
		io_uring_prep_poll_add(sqe, lc->fd, POLLOUT);
		break;
	}
	io_uring_sqe_set_data64(sqe, op_data(lc, op));
	w->ops++;
	return IOCX_OK;
}

/*
 * Queue a cancel of slot op's operation of generation gen to the owner.
 * The request may outlive the operation: it holds a reference.
 */
static void push_cancel(struct lx_conn *lc, enum iocx_op op, uint32_t gen)
{
	struct lx_queued q = { .cancel_gen = gen };

	iocx__conn_ref(&lc->core);
	if (iocx__lx_push_op(lc, op, LX_Q_CANCEL(op), &q))
		iocx__conn_unref(&lc->core);	/* see iocx__lx_push */
}

/*
 * Ask the kernel to finish slot op's stage in flight (on the owner), if
 * it belongs to the operation of generation gen.  False when no
 * submission entry could be had: the cancel is queued again, for the
 * next wait (after a reap has made room).
 */
static bool cancel_now(struct lx_worker *w, struct lx_conn *lc,
		       enum iocx_op op, uint32_t gen)
{
	struct lx_op *o = lx_slot(lc, op);
	struct io_uring_sqe *sqe;

	/* Complete already (its event is queued), or a stale cancel. */
	if (o->stage == UR_NONE || o->live_gen != gen)
		return true;
	o->cancelled = true;
	sqe = get_sqe(w);
	if (!sqe) {
		push_cancel(lc, op, gen);
		return false;
	}
	iocx__linux_sys.uring_prep_cancel(sqe, lc->fd, op_data(lc, op));
	io_uring_sqe_set_data64(sqe, cancel_data(lc, op));
	iocx__conn_ref(&lc->core);	/* until cancel_done() */
	o->cancels++;
	o->cancel_gen = gen;
	return true;
}

/*
 * A cancel of slot op completed with res.  Found nothing (-ENOENT), the
 * last one sent, and its stage still in flight: the kernel will not end
 * that stage early, so shut the socket down, which does (finish()
 * reports it cancelled).  Drops the cancel's reference: may free lc.
 */
static void cancel_done(struct lx_conn *lc, enum iocx_op op, int res)
{
	struct lx_op *o = lx_slot(lc, op);

	if (--o->cancels == 0 && res == -ENOENT && o->stage != UR_NONE &&
	    o->live_gen == o->cancel_gen && !o->forced) {
		o->forced = true;
		iocx__linux_sys.shutdown(lc->fd, SHUT_RDWR);
	}
	iocx__conn_unref(&lc->core);
}

static unsigned finish(struct lx_conn *lc, enum iocx_op op,
		       struct iocx_event *ev, int status, int err,
		       size_t bytes)
{
	struct lx_op *o = lx_slot(lc, op);
	bool forced = o->forced;

	o->stage = UR_NONE;
	if (forced) {
		/* Whatever the shutdown made of it (see cancel_done). */
		o->forced = false;
		status = IOCX_E_CANCELLED;
		err = ECANCELED;
	}
	iocx__lx_io_event(ev, lc, op, status, (uint32_t)err, bytes);
	/* The socket is shut down both ways: the core breaks the
	 * connection (backend.h). */
	ev->socket_lost = forced;
	return 1;
}

/* Go on to the next stage of slot MAIN, or finish with what failed. */
static unsigned next_stage(struct lx_worker *w, struct lx_conn *lc,
			   enum ur_stage stage, struct iocx_event *ev)
{
	int rc = issue(w, lc, IOCX_OP_MAIN, stage);

	if (rc != IOCX_OK)
		return finish(lc, IOCX_OP_MAIN, ev, rc, EBUSY,
			      lc->op_main.done);
	return 0;
}

/* The deferred TFO handshake ended: its outcome is the socket error. */
static unsigned tfo_done(struct lx_conn *lc, int res, struct iocx_event *ev)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (res < 0)
		err = -res;
	else if (iocx__linux_sys.getsockopt(lc->fd, SOL_SOCKET, SO_ERROR,
					    &err, &len) != 0)
		err = errno;
	if (err != 0)
		return finish(lc, IOCX_OP_MAIN, ev,
			      iocx__linux_error_connect(err, lc->ephemeral),
			      err, 0);
	return finish(lc, IOCX_OP_MAIN, ev, IOCX_OK, 0,
		      lc->op_main.done);
}

/* A ring operation of slot MAIN completed with res: go on, or finish. */
static unsigned main_done(struct lx_worker *w, struct lx_conn *lc, int res,
			  struct iocx_event *ev)
{
	struct lx_op *o = &lc->op_main;
	const enum iocx_op op = IOCX_OP_MAIN;

	switch (o->stage) {
	case UR_CONNECT:
		if (res < 0)
			return finish(lc, op, ev,
				      iocx__linux_error_connect(-res,
								lc->ephemeral),
				      -res, 0);
		if (o->cancelled || o->done == o->len)
			return finish(lc, op, ev, IOCX_OK, 0, o->done);
		return next_stage(w, lc, UR_HEAD, ev);
	case UR_HEAD:
		/* A deferred TFO send that could not copy yet. */
		if (res == -EINPROGRESS)
			res = 0;
		/* Connected: a cut-short head is the core's to judge. */
		if (res == -ECANCELED)
			return finish(lc, op, ev, IOCX_OK, 0, o->done);
		if (res < 0)
			return finish(lc, op, ev, iocx__linux_error(-res), -res,
				      0);
		o->done += (uint32_t)res;
		if (lc->tfo && !o->cancelled)
			return next_stage(w, lc, UR_TFO_POLL, ev);
		return finish(lc, op, ev, IOCX_OK, 0, o->done);
	case UR_TFO_POLL:
		return tfo_done(lc, res, ev);
	case UR_SEND:
		if (res < 0)
			return finish(lc, op, ev, iocx__linux_error(-res), -res,
				      0);
		return finish(lc, op, ev, IOCX_OK, 0, (size_t)res);
	case UR_CLOSE:
	case UR_CLOSE_ABORT:
		/* A close that never ran is done by hand (close_done). */
		close_done(close_data(lc->fd, o->stage == UR_CLOSE_ABORT),
			   res);
		lc->fd = -1;
		return finish(lc, op, ev, IOCX_OK, 0, 0);
	default:
		return 0;	/* cannot happen: nothing was in flight */
	}
}

/* Slot RECV's receive completed: bytes (0 = EOF) or an error. */
static unsigned recv_done(struct lx_conn *lc, int res, struct iocx_event *ev)
{
	if (lx_slot(lc, IOCX_OP_RECV)->stage != UR_RECV)
		return 0;	/* cannot happen: nothing was in flight */
	if (res < 0)
		return finish(lc, IOCX_OP_RECV, ev, iocx__linux_error(-res),
			      -res, 0);
	return finish(lc, IOCX_OP_RECV, ev, IOCX_OK, 0, (size_t)res);
}

/*
 * Hand out queued work and requests, up to max events.  A cancel that
 * found the submission queue full (and the kernel refusing it: -EBUSY
 * until completions are reaped) goes back to the queue and ends this
 * drain, or it would be popped again at once, forever.
 */
static unsigned drain_queue(struct lx_worker *w, struct iocx_event *events,
			    unsigned n, unsigned max)
{
	struct lx_queued q[2];
	struct lx_conn *lc;
	unsigned bits;
	bool full = false;

	while (!full && (lc = iocx__lx_pop(w, max - n, &bits, q))) {
		for (int i = IOCX_OP_MAIN; i <= IOCX_OP_RECV; i++) {
			enum iocx_op op = (enum iocx_op)i;

			if (!(bits & LX_Q_SUBMIT(op)))
				continue;
			lx_slot(lc, op)->live_gen = q[op].submit_gen;
			lx_slot(lc, op)->cancelled = false;
			if (issue(w, lc, op, q[op].submit_stage) != IOCX_OK)
				n += finish(lc, op, &events[n], IOCX_E_SYSTEM,
					    EBUSY, 0);
		}
		n += iocx__lx_queue_events(lc, bits, q, &events[n]);
		for (int i = IOCX_OP_MAIN; i <= IOCX_OP_RECV; i++) {
			if (!(bits & LX_Q_CANCEL(i)))
				continue;
			if (!cancel_now(w, lc, (enum iocx_op)i,
					q[i].cancel_gen))
				full = true;
			iocx__conn_unref(&lc->core);	/* may free lc */
		}
	}
	return n;
}

/*
 * Start loading the connections of the ready completions (up to room of
 * them) into the cache before any is handled: each was last touched
 * before a whole batch of kernel work, and the loads then overlap
 * instead of stalling one after another.  Only the part of a connection
 * that every completion touches (see struct iocx_conn) is fetched.
 */
static void prefetch_conns(struct lx_worker *w, unsigned room)
{
	const size_t from = offsetof(struct iocx_conn, engine);
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe(&w->ring, head, cqe) {
		uint64_t ud = cqe->user_data;
		const char *p = (const char *)(uintptr_t)(ud & ~TAG_MASK);

		if (room-- == 0)
			break;
		if ((ud & TAG_MASK) != TAG_MAIN && (ud & TAG_MASK) != TAG_RECV)
			continue;
		for (size_t off = from; off < sizeof(struct lx_conn); off += 64)
			__builtin_prefetch(p + off, 1);
	}
}

/* Turn completions into events, up to max; *woken on an eventfd read. */
static unsigned reap(struct lx_worker *w, struct iocx_event *events,
		     unsigned n, unsigned max, bool *woken)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	prefetch_conns(w, max - n);

	io_uring_for_each_cqe(&w->ring, head, cqe) {
		uint64_t ud = cqe->user_data;
		struct lx_conn *lc = (struct lx_conn *)(uintptr_t)(ud &
								    ~TAG_MASK);

		if (n == max)
			break;
		seen++;
		switch (ud & TAG_MASK) {
		case TAG_MAIN:
			w->ops--;
			n += main_done(w, lc, cqe->res, &events[n]);
			break;
		case TAG_RECV:
			w->ops--;
			n += recv_done(lc, cqe->res, &events[n]);
			break;
		case TAG_WAKE:
			w->efd_armed = false;
			*woken = true;
			break;
		case TAG_CLOSE:
			close_done(ud, cqe->res);
			break;
		case TAG_CANCEL_MAIN:
			cancel_done(lc, IOCX_OP_MAIN, cqe->res);
			break;
		case TAG_CANCEL_RECV:
			cancel_done(lc, IOCX_OP_RECV, cqe->res);
			break;
		default:
			break;
		}
	}
	io_uring_cq_advance(&w->ring, seen);
	return n;
}

static int ur_wait(struct iocx_engine *e, unsigned worker,
		   struct iocx_event *events, unsigned max,
		   uint64_t timeout_ns)
{
	struct lx_worker *w = &lx_engine(e)->w[worker];
	bool woken = false;
	unsigned n = 0;

	iocx__lx_enter(w);
	if (enable_ring(w) != IOCX_OK)
		return -1;
	if (iocx__lx_take_stop(w->le)) {
		memset(&events[n], 0, sizeof(events[n]));
		events[n++].kind = IOCX_EV_STOP;
	}
	n = drain_queue(w, events, n, max);
	arm_wake(w);
	if (n == 0 && io_uring_cq_ready(&w->ring) == 0) {
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(timeout_ns / 1000000000u),
			.tv_nsec = (long long)(timeout_ns % 1000000000u),
		};
		struct io_uring_cqe *cqe;

		/* Submits and waits in one io_uring_enter (EXT_ARG). */
		iocx__linux_sys.uring_submit_and_wait_timeout(&w->ring, &cqe,
							      1, &ts, NULL);
	} else if (w->defer_taskrun) {
		/* Also run the completions the kernel deferred to us. */
		iocx__linux_sys.uring_submit_and_get_events(&w->ring);
	} else {
		iocx__linux_sys.uring_submit(&w->ring);
	}
	n = reap(w, events, n, max, &woken);
	if (woken)
		n = drain_queue(w, events, n, max);
	return (int)n;
}

static int ur_open(struct iocx_conn *c, bool *fastopen)
{
	/* Blocking: io_uring waits for readiness itself. */
	return iocx__lx_sock_open(lx_conn(c), 0, fastopen);
}

/*
 * Start an operation in slot op: directly on the owner, else queued with
 * its stage and generation.  The core holds the connection's lock and
 * has seen the slot's last operation end: the owner no longer reads the
 * buffer fields written here, and reads them again only once it took
 * the queued operation (under its lock) or on its own thread.
 */
static int start(struct lx_conn *lc, enum iocx_op op, const void *buf,
		 size_t len, enum ur_stage stage)
{
	struct lx_worker *w = lx_owner(lc);
	struct lx_op *o = lx_slot(lc, op);
	struct lx_queued q = { .submit_stage = (unsigned char)stage };

	o->buf = (unsigned char *)(uintptr_t)buf;
	o->len = (uint32_t)len;	/* <= IOCX__OP_MAX */
	o->done = 0;
	q.submit_gen = ++o->gen;
	if (iocx__lx_on_worker(w)) {
		int rc;

		o->live_gen = o->gen;
		o->cancelled = false;
		rc = issue(w, lc, op, stage);
		/* Synchronous: the core holds the connection's lock. */
		if (rc != IOCX_OK)
			lc->core.os_code = EBUSY;
		return rc;
	}
	iocx__lx_push_op(lc, op, LX_Q_SUBMIT(op), &q);
	return IOCX_OK;
}

static int ur_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	return start(lx_conn(c), IOCX_OP_MAIN, buf, len, UR_CONNECT);
}

static int ur_send(struct iocx_conn *c, const void *buf, size_t len)
{
	return start(lx_conn(c), IOCX_OP_MAIN, buf, len, UR_SEND);
}

static int ur_recv(struct iocx_conn *c, void *buf, size_t len)
{
	return start(lx_conn(c), IOCX_OP_RECV, buf, len, UR_RECV);
}

static int ur_shutdown(struct iocx_conn *c)
{
	return iocx__lx_sock_shutdown(lx_conn(c));
}

static int ur_connected(struct iocx_conn *c)
{
	(void)c;	/* the CONNECT completion said it all */
	return IOCX_OK;
}

static void ur_cancel(struct iocx_conn *c, enum iocx_op op)
{
	struct lx_conn *lc = lx_conn(c);
	struct lx_worker *w = lx_owner(lc);

	/* Not handed to the kernel yet: it completes as cancelled. */
	if (iocx__lx_unqueue_submit(lc, op))
		return;
	/* The core calls this only while the slot's latest operation is
	 * in flight: that is the one to cancel. */
	if (iocx__lx_on_worker(w))
		cancel_now(w, lc, op, lx_slot(lc, op)->gen);
	else
		push_cancel(lc, op, lx_slot(lc, op)->gen);
}

/* At least n free submission entries, flushing the queue once if not. */
static bool sq_room(struct lx_worker *w, unsigned n)
{
	if (io_uring_sq_space_left(&w->ring) >= n)
		return true;
	iocx__linux_sys.uring_submit(&w->ring);
	return io_uring_sq_space_left(&w->ring) >= n;
}

/*
 * May lc's socket be closed through w's ring: a socket the kernel bound
 * (the next bind to a given address may run before the ring's next
 * submission), closed on its owner, hard links (Linux 5.7), room for the
 * reset and the close.
 */
static bool ring_may_close(struct lx_conn *lc, struct lx_worker *w,
			   bool abort)
{
	return lc->fd >= 0 && lc->core.local_len == 0 &&
	       iocx__lx_on_worker(w) && w->hardlink_ok &&
	       sq_room(w, abort ? 2 : 1);
}

/*
 * Queue the close of fd to w's ring (ring_may_close said yes): for abort
 * a reset first, hard-linked so the close runs even if the reset fails
 * (the peer already reset it).  The reset's completion is always posted
 * (tagged TAG_CLOSE without a descriptor: ignored); the close's carries
 * close_ud and close_flags.
 */
static void queue_close(struct lx_worker *w, int fd, bool abort,
			unsigned char close_flags, uint64_t close_ud)
{
	struct io_uring_sqe *sqe;

	if (abort) {
		sqe = io_uring_get_sqe(&w->ring);
		iocx__linux_sys.uring_prep_reset(sqe, fd);
		sqe->flags |= IOSQE_IO_HARDLINK;
		io_uring_sqe_set_data64(sqe, TAG_CLOSE);
	}
	sqe = io_uring_get_sqe(&w->ring);
	iocx__linux_sys.uring_prep_close(sqe, fd);
	sqe->flags |= close_flags;
	io_uring_sqe_set_data64(sqe, close_ud);
}

/*
 * options.batch_closes: a socket the ring may close (ring_may_close) goes
 * through it with the next submission (queue_close).  Everything else
 * closes at once.
 */
static void ur_close(struct iocx_conn *c, bool abort)
{
	struct lx_conn *lc = lx_conn(c);
	struct lx_worker *w = lx_owner(lc);
	/*
	 * The close's success needs no completion (one would end the next
	 * wait early).  The reset's does post one: with the reset's
	 * skipped too, the kernel would also drop the -ECANCELED of a
	 * close that never ran.
	 */
	unsigned char quiet = w->cqe_skip_ok ? IOSQE_CQE_SKIP_SUCCESS : 0;

	if (!c->engine->opts.batch_closes || !ring_may_close(lc, w, abort)) {
		iocx__lx_sock_close(lc, abort);
		return;
	}
	queue_close(w, lc->fd, abort, quiet, close_data(lc->fd, abort));
	lc->fd = -1;
}

/*
 * close_op: the socket of a finished connection, closed through its
 * owner's ring (as ur_close does with batch_closes) but with the close's
 * completion kept, tagged as slot MAIN's stage: the core delivers
 * on_close at that completion, when the socket is gone, and the worker
 * makes no system call for the close.  Refused (the core closes at once)
 * where ur_close would close at once, with batch_closes, which asks for
 * the close to follow on_close instead, and when nothing else of the
 * worker is in the ring: its next pass would then wait for this close
 * alone, an io_uring_enter and a pass more than the two system calls of
 * closing now (measured at concurrency 1: docs/linux.md).
 */
static int ur_close_op(struct iocx_conn *c, bool abort)
{
	struct lx_conn *lc = lx_conn(c);
	struct lx_worker *w = lx_owner(lc);

	/* ops after ring_may_close: only the owner may read it. */
	if (c->engine->opts.batch_closes || !ring_may_close(lc, w, abort) ||
	    w->ops == 0)
		return IOCX_E_NOTSUP;
	queue_close(w, lc->fd, abort, 0, op_data(lc, IOCX_OP_MAIN));
	/* A generation of its own: a stale cancel must not reach it. */
	lc->op_main.live_gen = ++lc->op_main.gen;
	lc->op_main.cancelled = false;
	lc->op_main.stage = abort ? UR_CLOSE_ABORT : UR_CLOSE;
	w->ops++;
	return IOCX_OK;
}

/* A race's winner: the socket moves, nothing of it is in any ring. */
static int ur_adopt(struct iocx_conn *dst, struct iocx_conn *src)
{
	iocx__lx_sock_adopt(lx_conn(dst), lx_conn(src));
	return IOCX_OK;
}

static int ur_detach(struct iocx_conn *c, iocx_socket_t *out)
{
	/* No operation in flight: the ring holds nothing of the socket. */
	return iocx__lx_sock_detach(lx_conn(c), -1, out);
}

/* The io_uring backend (src/backend.h). */
const struct iocx_backend iocx__uring_backend = {
	.name = "io_uring",
	.conn_size = sizeof(struct lx_conn),
	.data_size = sizeof(struct lx_op),	/* slot RECV (lx_slot()) */
	.engine_init = ur_engine_init,
	.engine_fini = ur_engine_fini,
	.wait = ur_wait,
	.post = iocx__lx_post,
	.open = ur_open,
	.connect = ur_connect,
	.send = ur_send,
	.recv = ur_recv,
	.shutdown = ur_shutdown,
	.connected = ur_connected,
	.cancel = ur_cancel,
	.close = ur_close,
	.close_op = ur_close_op,
	.adopt = ur_adopt,
	.attach = iocx__lx_sock_attach,
	.native = iocx__lx_sock_native,
	.detach = ur_detach,
	.local_addr = iocx__lx_sock_local_addr,
};
