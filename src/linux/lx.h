/*
 * What the two Linux backends (epoll.c, uring.c) share: the connection and
 * worker records, socket set-up (sock.c) and the per-worker request queue
 * with its wake-ups (worker.c).
 *
 * Ownership: open() gives every connection one owner worker, for life.
 * The owner's epoll set or ring carries all of the connection's I/O and
 * the owner's queue all of its requests, so a connection's completions
 * are only ever produced on its owner's thread.  The core still calls
 * connect() on the caller's thread, and cancel(), send() and friends on
 * whichever thread handles the connection's event or timer, always with
 * the connection's lock held; the backends hand what must run on the
 * owner over through the queue.
 *
 * Locks: w->lock guards w's queue: head, tail, and the qnext, queued and
 * slots' q fields (lx_slot()) of every connection owned by w.  It is a
 * leaf lock: nothing else is taken, and nothing calls out, while it is
 * held.
 */
#ifndef IOCX_LINUX_LX_H
#define IOCX_LINUX_LX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <liburing.h>

#include "conn.h"

/*
 * Bits of lx_conn.queued: what the owner must do for the connection.  The
 * per-slot ones come in pairs, MAIN then RECV (enum iocx_op): use the
 * LX_Q_*(op) forms.
 */
#define LX_Q_SUBMIT_MAIN (1u << 0)	/* issue the slot's operation */
#define LX_Q_SUBMIT_RECV (1u << 1)
#define LX_Q_CANCEL_MAIN (1u << 2)	/* cancel it (holds a reference) */
#define LX_Q_CANCEL_RECV (1u << 3)
#define LX_Q_IO_MAIN	(1u << 4)	/* it finished: the slot's q.res */
#define LX_Q_IO_RECV	(1u << 5)
#define LX_Q_CLOSE	(1u << 6)	/* IOCX_EV_CLOSE (core's ref) */
#define LX_Q_SHUTDOWN	(1u << 7)	/* IOCX_EV_SHUTDOWN (core's ref) */
#define LX_Q_KICK	(1u << 8)	/* IOCX_EV_KICK (core's ref) */
#define LX_Q_SUBMIT(op)	(LX_Q_SUBMIT_MAIN << (op))
#define LX_Q_CANCEL(op)	(LX_Q_CANCEL_MAIN << (op))
#define LX_Q_IO(op)	(LX_Q_IO_MAIN << (op))

/* The outcome of an operation, as an IOCX_EV_IO event carries it. */
struct lx_result {
	int status;
	uint32_t os_code;
	uint32_t bytes;
};

/*
 * What a slot's queue bits carry to the owner (lx_op.q, under its lock).
 * io_uring: a queued operation says which stage to issue and its
 * generation (lx_op.gen), and a queued cancel the generation it is for,
 * so that one arriving after its operation ended is dropped instead of
 * cancelling the next.
 */
struct lx_queued {
	struct lx_result res;		/* LX_Q_IO(op) */
	uint32_t submit_gen;		/* LX_Q_SUBMIT(op), io_uring */
	uint32_t cancel_gen;		/* LX_Q_CANCEL(op), io_uring */
	unsigned char submit_stage;
};

/* One op slot of a connection (enum iocx_op): at most one operation. */
struct lx_op {
	/* The operation in flight: buf[0..len), done bytes of it moved.
	 * A send's buffer is the caller's and is never written.  An op
	 * carries at most IOCX__OP_MAX bytes (conn.h: a send piece, a
	 * first payload, a receive buffer), so 32 bits. */
	unsigned char *buf;
	uint32_t len;
	uint32_t done;

	/* epoll: the operation waiting for readiness (enum ep_op, 0 =
	 * none).  The readiness path and cancel() both exchange it with 0;
	 * whoever gets it produces the one completion.  cancel_req: below,
	 * with the other one-byte fields (no padding between them). */
	atomic_int pending;

	/* io_uring: the generation of the slot's latest operation, bumped
	 * by start() with the connection's lock held (any thread). */
	uint32_t gen;
	/* io_uring, owner thread only: the stage in flight, the generation
	 * of its operation, and whether a cancel asked it to stop after
	 * that stage; the cancels in the ring, the generation the last one
	 * was for, and whether a cancel that missed shut the socket down. */
	uint32_t live_gen;
	unsigned cancels;
	uint32_t cancel_gen;
	unsigned char stage;
	bool cancelled;
	bool forced;
	atomic_bool cancel_req;		/* epoll */

	struct lx_queued q;		/* under the owner's lock */
};

struct lx_conn {
	struct iocx_conn core;		/* first: the core allocates us */
	int fd;				/* -1 once closed */
	/*
	 * 1 + index of the owner worker; 0 until chosen, by the first open
	 * or the first event posted for the connection, whichever comes
	 * first (a request waiting for admission is posted to before it
	 * has a socket).  Never changes after (kept over retries), so every
	 * event of the connection goes through one worker's queue.
	 */
	atomic_uint owner1;
	unsigned queued;		/* LX_Q_*, under the owner's lock */
	bool ephemeral;			/* the kernel picks the local port */
	bool tfo;			/* TCP_FASTOPEN_CONNECT is on */

	/* epoll: the socket is in the owner's set / armed there.  Set by
	 * connect() before the socket joins the set, then by the owner
	 * only (epoll.c). */
	bool registered;
	bool armed;

	/* Slot MAIN; slot RECV is in the data block (lx_slot()). */
	struct lx_op op_main;

	/* The owner's queue, under its lock (with queued above). */
	struct lx_conn *qnext;
};

struct lx_engine;

struct lx_worker {
	struct lx_engine *le;
	unsigned index;
	uint64_t id;			/* unique over all engines */

	iocx_mutex lock;		/* the queue */
	struct lx_conn *head, *tail;
	int efd;			/* eventfd: queue went non-empty */

	/* epoll backend */
	int epfd;
	struct epoll_event *evs;	/* batch entries */
	bool no_pwait2;			/* epoll_pwait2 said ENOSYS */

	/* io_uring backend */
	struct io_uring ring;
	bool ring_ok;			/* ring initialised */
	bool ring_disabled;		/* not enabled by its worker yet */
	bool defer_taskrun;		/* IORING_SETUP_DEFER_TASKRUN */
	bool hardlink_ok;		/* IOSQE_IO_HARDLINK works (5.7) */
	bool cqe_skip_ok;		/* IOSQE_CQE_SKIP_SUCCESS (5.17) */
	bool efd_armed;			/* a read of efd is in flight */
	/* Stages of slots in the ring (issued, completion not reaped). */
	unsigned ops;
	uint64_t efd_val;		/* its buffer */
};

struct iocx_ares;

struct lx_engine {
	struct iocx_engine *e;
	struct iocx_ares *ares;		/* its own resolver, or NULL */
	struct lx_worker *w;
	unsigned nworkers;		/* at least 1 (manual engines) */
	atomic_uint next_owner;		/* round robin */
	atomic_uint stops;		/* STOP requests not yet taken */
};

static inline struct lx_conn *lx_conn(struct iocx_conn *c)
{
	return container_of(c, struct lx_conn, core);
}

/*
 * lc's op slot op (enum iocx_op).  MAIN is in lc; RECV, which only a
 * reading connection uses, is the backend's part of the data block
 * (backend->data_size, conn.h): NULL while lc has none, and then nothing
 * was ever received, queued or cancelled in it.
 */
static inline struct lx_op *lx_slot(struct lx_conn *lc, enum iocx_op op)
{
	struct iocx_conn_data *d;

	if (op == IOCX_OP_MAIN)
		return &lc->op_main;
	d = iocx__conn_data(&lc->core);
	return d ? iocx__conn_data_backend(d) : NULL;
}

static inline struct lx_engine *lx_engine(struct iocx_engine *e)
{
	return e->backend_data;
}

/* Choose lc's owner unless another thread just did; 1 + its index. */
unsigned iocx__lx_claim_owner(struct lx_conn *lc);

static inline struct lx_worker *lx_owner(struct lx_conn *lc)
{
	unsigned o = atomic_load_explicit(&lc->owner1, memory_order_relaxed);

	if (o == 0)
		o = iocx__lx_claim_owner(lc);
	return &lx_engine(lc->core.engine)->w[o - 1];
}

/* The two backends (epoll.c, uring.c), chosen by backend.c. */
extern const struct iocx_backend iocx__epoll_backend;
extern const struct iocx_backend iocx__uring_backend;

/* ---- worker.c: records, queue, wake-ups -------------------------------- */

/*
 * Allocate e's lx_engine and one lx_worker per worker (at least one), each
 * with its lock and eventfd; e->backend_data points at it.  IOCX_OK,
 * IOCX_E_NOMEM or IOCX_E_SYSTEM (everything released again).
 */
int iocx__lx_engine_init(struct iocx_engine *e);

/* Release what iocx__lx_engine_init made (backend parts must be gone). */
void iocx__lx_engine_fini(struct iocx_engine *e);

/* Mark the calling thread as worker w (at the start of every wait). */
void iocx__lx_enter(struct lx_worker *w);

/* True when the calling thread is worker w. */
bool iocx__lx_on_worker(const struct lx_worker *w);

/*
 * The owner of a new connection: the calling thread's own worker when it
 * is one of le's (a connect from a callback stays on its thread), else
 * the next in round robin.
 */
unsigned iocx__lx_pick_owner(struct lx_engine *le);

/*
 * Queue bits for lc on its owner, waking the owner if needed.  Returns
 * those of bits that were queued already: one event answers both, so a
 * caller whose request holds a reference must drop the duplicate's (never
 * the last one: the queued request holds its own).
 */
unsigned iocx__lx_push(struct lx_conn *lc, unsigned bits);

/*
 * The same, storing what the per-slot bits of slot op carry: the fields
 * of *q that LX_Q_SUBMIT(op), LX_Q_CANCEL(op) and LX_Q_IO(op) name go
 * into lx_slot(lc, op)->q under the lock (a duplicate's values replace the
 * queued ones).  q NULL: nothing is carried (iocx__lx_push).
 */
unsigned iocx__lx_push_op(struct lx_conn *lc, enum iocx_op op, unsigned bits,
			  const struct lx_queued *q);

/* Queue the completion of lc's operation in slot op (LX_Q_IO(op)). */
void iocx__lx_push_io(struct lx_conn *lc, enum iocx_op op, int status,
		      uint32_t os_code, uint32_t bytes);

/*
 * If slot op's operation is still queued for issuing (LX_Q_SUBMIT(op)),
 * turn it into a cancelled completion and return true: it never reaches
 * the kernel.
 */
bool iocx__lx_unqueue_submit(struct lx_conn *lc, enum iocx_op op);

/*
 * On worker w: take the first queued connection's bits, at most room of
 * them (each may become one event), in LX_Q_* order; q[op] gets the
 * slots' q.  A connection whose bits did not all fit stays first.
 * NULL when the queue is empty or room is 0.
 */
struct lx_conn *iocx__lx_pop(struct lx_worker *w, unsigned room, unsigned *bits,
			     struct lx_queued q[2]);

/* Take one pending STOP request, if any. */
bool iocx__lx_take_stop(struct lx_engine *le);

/* Consume w's eventfd after it was seen readable (epoll). */
void iocx__lx_drain_efd(struct lx_worker *w);

/* Events for the LX_Q_IO(op), CLOSE, SHUTDOWN and KICK bits; the count. */
unsigned iocx__lx_queue_events(struct lx_conn *lc, unsigned bits,
			       const struct lx_queued q[2],
			       struct iocx_event *ev);

/* Fill *ev as the completion of lc's operation in slot op. */
void iocx__lx_io_event(struct iocx_event *ev, struct lx_conn *lc,
		       enum iocx_op op, int status, uint32_t os_code,
		       size_t bytes);

/* backend->post for both backends. */
int iocx__lx_post(struct iocx_engine *e, enum iocx_event_kind kind,
		  struct iocx_conn *c);

/* ---- sock.c: sockets --------------------------------------------------- */

/*
 * backend->open: create lc's socket (type_flags: SOCK_NONBLOCK or 0),
 * set IPV6_V6ONLY off for a v4-mapped remote, TCP_FASTOPEN_CONNECT when
 * asked and there is a payload to carry, bind when the caller gave a local
 * address, and pick the owner at the first open (a retry reopens on the
 * same owner: the connection may still sit in its queue).  On failure
 * c->os_code has the errno and nothing is left open.
 */
int iocx__lx_sock_open(struct lx_conn *lc, int type_flags, bool *fastopen);

/*
 * backend->attach: c will get posted events before it has a socket (a
 * connect by name): mark it socketless (its owner is claimed by the first
 * post or open, as for a request waiting for admission).
 */
void iocx__lx_sock_attach(struct iocx_conn *c);

/*
 * What both backends' adopt do: move src's socket into dst (src is left
 * with none).  The owner is not moved: dst keeps its own, and any owner's
 * ring or set can carry the socket's next operations.
 */
void iocx__lx_sock_adopt(struct lx_conn *dst, struct lx_conn *src);

/*
 * The engine's own resolver (resolve_ares.c): create it (servers as in
 * iocx_engine_options.dns_servers, copied), give its iocx_resolver, and
 * destroy it once no query is out (engine_fini).  create returns NULL
 * without memory.
 */
struct iocx_ares *iocx__ares_create(const char *servers);
const struct iocx_resolver *iocx__ares_ops(struct iocx_ares *r);
void iocx__ares_destroy(struct iocx_ares *r);

/* backend->close: SO_LINGER {1, 0} first when abort; then close. */
void iocx__lx_sock_close(struct lx_conn *lc, bool abort);
/* The same for a bare descriptor (a batched close that never ran). */
void iocx__lx_fd_close(int fd, bool abort);

/* backend->native: the descriptor. */
iocx_socket_t iocx__lx_sock_native(struct iocx_conn *c);

/*
 * backend->detach for both: the descriptor goes to *out and lc forgets it;
 * epfd >= 0 (epoll) is the set it is taken out of first.
 */
int iocx__lx_sock_detach(struct lx_conn *lc, int epfd, iocx_socket_t *out);

/* backend->local_addr: getsockname. */
int iocx__lx_sock_local_addr(struct iocx_conn *c,
			     struct sockaddr_storage *out);

/* backend->shutdown: FIN now (shutdown(SHUT_WR)). */
int iocx__lx_sock_shutdown(struct lx_conn *lc);

#endif /* IOCX_LINUX_LX_H */
