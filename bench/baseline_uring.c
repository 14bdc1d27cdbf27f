/*
 * The raw io_uring baseline for Linux: the workload of an iocx phase done
 * the way a careful hand-written io_uring program does it, so iocx / raw
 * measures the engine against the best plain loop, not a naive one.
 *
 * `workers` threads, each with a ring of its own that only it touches:
 * created on that thread with IORING_SETUP_SINGLE_ISSUER |
 * IORING_SETUP_DEFER_TASKRUN (completions are run in the worker's own
 * io_uring_enter, no task-work interrupts), falling back to
 * IORING_SETUP_COOP_TASKRUN, then to none, where the kernel lacks them,
 * and with its descriptor registered (IORING_REGISTER_RING_FDS) where it
 * can be.  Slot i belongs to worker i % workers for the whole phase.
 *
 * Per connect: socket() and, for --close abort, SO_LINGER {1, 0} by plain
 * system calls; then one hard-linked chain of SQEs,
 *
 *     CONNECT -> [LINK_TIMEOUT] -> [SEND payload, MSG_WAITALL ->
 *     [LINK_TIMEOUT]] -> CLOSE
 *
 * (hard links, so the CLOSE runs whatever the connect did; with
 * --timeout a linked timeout cancels an overdue connect, reported as
 * IOCX_E_TIMEDOUT, and another one the send, which would otherwise wait
 * for the connect the kernel still makes after the cancel).  The
 * outcome is reported at the completion of the last operation before the
 * CLOSE, the slot is released at the CLOSE's completion, and the slot's
 * next connect is prepared right there, inside the reap loop.  Everything
 * prepared in one pass goes to the kernel in one io_uring_submit_and_wait.
 * Connects started on other threads (the phase's first fill, paced
 * starts) are queued to the worker under a mutex and an eventfd wakes it:
 * with SINGLE_ISSUER no other thread may submit to its ring.  The worker
 * opens their sockets, and their latency starts there (the slot's
 * t_start_ns moves to it), as it does for a connect started inside the
 * reap loop and for the engine's paced connects: the hand-over to the
 * worker is the schedule's delay, not the connect's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "drivers.h"
#include "os.h"
#include "linux/error.h"	/* the engine's mapping: same error names */

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

#define STOP_WAIT_MS 10000
/* SQEs of one chain at most: connect, timeout, send, timeout, close. */
#define CHAIN_MAX 5
#define SQ_MAX 4096

/*
 * user_data: a raw_conn pointer (8-byte aligned) with the operation in the
 * low bits, or one of the small constants below.
 */
enum { OP_CONNECT = 0, OP_SEND = 1, OP_CLOSE = 2, OP_MASK = 3 };
enum { UD_WAKE = 1, UD_TIMEOUT = 2, UD_SPECIAL_MAX = 8 };

struct raw_conn {
	struct slot *slot;
	struct raw_worker *w;
	struct raw_conn *next;		/* in the worker's start list */
	int fd;
	const struct sockaddr *remote;	/* this connect's target */
	size_t remote_len;
	int status;			/* of the connect, then of the send */
	size_t sent;
	bool reported;
	bool fastopen;
};

struct raw_worker {
	struct raw *r;
	struct io_uring ring;
	pthread_t thread;
	bool started;
	int init_rc;			/* the thread's ring set-up */
	/* Which set-up flags the kernel took, as the backend's name: a
	 * static string, since the phase's result outlives the driver. */
	const char *mode;
	int efd;
	uint64_t efd_val;
	pthread_mutex_t lock;		/* the start list */
	struct raw_conn *head;
};

struct raw {
	struct phase *phase;
	const struct phase_config *cfg;
	struct raw_worker *w;
	unsigned nworkers;
	unsigned per_worker;		/* slots of one worker, at most */
	struct raw_conn *conns;		/* per slot */
	struct __kernel_timespec timeout;
	bool abort;
	pthread_mutex_t ready_lock;	/* nready: rings set up (or not) */
	pthread_cond_t ready_cond;
	unsigned nready;
	atomic_bool stopping;
};

static _Thread_local struct raw_worker *self;

/* Wake w (its eventfd read completes). */
static void wake(struct raw_worker *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->efd, &one, sizeof(one));

	(void)n;
}

static void set_data(struct io_uring_sqe *sqe, struct raw_conn *c, int op)
{
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | (uint64_t)op);
}

/* The outcome is known: hand it to the phase (once). */
static void report(struct raw_conn *c)
{
	struct outcome o = {
		.status = c->status,
		.payload_sent = c->sent,
		.fastopen = c->fastopen,
	};

	if (c->reported)
		return;
	c->reported = true;
	phase_complete(c->slot, &o);
}

/* The CLOSE completed: the slot may take its next connect. */
static void closed(struct raw_conn *c)
{
	struct phase *p = c->w->r->phase;

	report(c);		/* a chain the kernel cut short */
	c->fd = -1;
	phase_closed(p);
	phase_release(c->slot);
}

/* --timeout: bound the SQE just queued with a linked timeout. */
static void link_timeout(struct raw_worker *w)
{
	struct io_uring_sqe *sqe;

	if (!w->r->cfg->opt->timeout_ms)
		return;
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_link_timeout(sqe, &w->r->timeout, 0);
	sqe->flags |= IOSQE_IO_HARDLINK;
	io_uring_sqe_set_data64(sqe, UD_TIMEOUT);
}

/* Queue c's whole chain on its worker's ring (on that worker's thread). */
static void issue_chain(struct raw_conn *c)
{
	struct raw_worker *w = c->w;
	const struct phase_config *cfg = w->r->cfg;
	size_t len = cfg->opt->payload;
	struct io_uring_sqe *sqe;

	if (io_uring_sq_space_left(&w->ring) < CHAIN_MAX)
		io_uring_submit(&w->ring);
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_connect(sqe, c->fd, c->remote,
			      (socklen_t)c->remote_len);
	sqe->flags |= IOSQE_IO_HARDLINK;
	set_data(sqe, c, OP_CONNECT);
	link_timeout(w);
	if (len) {
		sqe = io_uring_get_sqe(&w->ring);
		io_uring_prep_send(sqe, c->fd, cfg->payload, len,
				   MSG_NOSIGNAL | MSG_WAITALL);
		sqe->flags |= IOSQE_IO_HARDLINK;
		set_data(sqe, c, OP_SEND);
		/* A connect cancelled by its timeout leaves the socket
		 * connecting, and the send would wait for it. */
		link_timeout(w);
	}
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_close(sqe, c->fd);
	set_data(sqe, c, OP_CLOSE);
}

static void on_cqe(struct raw_conn *c, int op, int res)
{
	const struct phase_config *cfg = c->w->r->cfg;

	switch (op) {
	case OP_CONNECT:
		/* Cancelled by its linked timeout: overdue. */
		if (res == -ECANCELED && cfg->opt->timeout_ms)
			c->status = IOCX_E_TIMEDOUT;
		else if (res < 0)
			c->status = iocx__linux_error_connect(-res, true);
		if (res < 0 || cfg->opt->payload == 0)
			report(c);
		break;
	case OP_SEND:
		if (c->reported)
			break;	/* the connect failed: the send could not */
		if (res < 0) {
			c->status = iocx__linux_error(-res);
		} else {
			c->sent = (size_t)res;
			if (c->sent < cfg->opt->payload)
				c->status = IOCX_E_SYSTEM;
		}
		report(c);
		break;
	default:
		closed(c);
		break;
	}
}

/* c's socket, options set; 0 or a negative iocx code. */
static int open_socket(struct raw *r, struct raw_conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int one = 1;

	c->fd = socket(c->remote->sa_family, SOCK_STREAM | SOCK_CLOEXEC,
		       IPPROTO_TCP);
	if (c->fd < 0) {
		int rc = iocx__linux_error(errno);

		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	if (r->abort)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (r->cfg->opt->fastopen && r->cfg->opt->payload > 0)
		c->fastopen = setsockopt(c->fd, IPPROTO_TCP,
					 TCP_FASTOPEN_CONNECT, &one,
					 sizeof(one)) == 0;
	return 0;
}

/*
 * A connect queued by another thread, on its worker: its clock starts at
 * its socket; one that cannot have a socket is reported and its slot
 * released here.
 */
static void start_queued(struct raw_worker *w, struct raw_conn *c)
{
	int rc;

	atomic_store_explicit(&c->slot->t_start_ns, iocx__now_ns(),
			      memory_order_relaxed);
	rc = open_socket(w->r, c);
	if (rc != 0) {
		c->status = rc;
		report(c);
		phase_closed(w->r->phase);
		phase_release(c->slot);
		return;
	}
	issue_chain(c);
}

/* Issue the connects queued by other threads. */
static void drain_starts(struct raw_worker *w)
{
	struct raw_conn *c;

	pthread_mutex_lock(&w->lock);
	c = w->head;
	w->head = NULL;
	pthread_mutex_unlock(&w->lock);
	while (c) {
		struct raw_conn *next = c->next;

		start_queued(w, c);
		c = next;
	}
}

static void arm_wake(struct raw_worker *w)
{
	struct io_uring_sqe *sqe;

	if (io_uring_sq_space_left(&w->ring) < 1)
		io_uring_submit(&w->ring);
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
}

/*
 * The ring, on the thread that will use it: SINGLE_ISSUER ties it to its
 * creator.  Each completion can post at most CHAIN_MAX CQEs per slot.
 */
static int ring_init(struct raw_worker *w)
{
	static const struct {
		unsigned flags;
		const char *mode;
	} tries[] = {
		{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		  "raw io_uring (single issuer, deferred task work)" },
		{ IORING_SETUP_COOP_TASKRUN,
		  "raw io_uring (cooperative task work)" },
		{ 0, "raw io_uring (plain)" },
	};
	unsigned want = w->r->per_worker * CHAIN_MAX + 1, sq = 64;

	while (sq < want && sq < SQ_MAX)
		sq <<= 1;
	for (size_t i = 0; i < sizeof(tries) / sizeof(*tries); i++) {
		struct io_uring_params p = {
			.flags = tries[i].flags | IORING_SETUP_CQSIZE,
			.cq_entries = sq * 2 < want ? want : sq * 2,
		};

		if (io_uring_queue_init_params(sq, &w->ring, &p) == 0) {
			w->mode = tries[i].mode;
			/* An optimisation only: fine to go without it. */
			io_uring_register_ring_fd(&w->ring);
			return 0;
		}
	}
	return IOCX_E_NOTSUP;
}

static void *worker(void *arg)
{
	struct raw_worker *w = arg;
	struct raw *r = w->r;
	int rc = ring_init(w);

	pthread_mutex_lock(&r->ready_lock);
	w->init_rc = rc;
	r->nready++;
	pthread_cond_signal(&r->ready_cond);
	pthread_mutex_unlock(&r->ready_lock);
	if (rc != 0)
		return NULL;
	self = w;
	arm_wake(w);
	while (!atomic_load(&r->stopping)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		io_uring_submit_and_wait(&w->ring, 1);
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t ud = cqe->user_data;

			seen++;
			if (ud == UD_WAKE) {
				drain_starts(w);
				arm_wake(w);
			} else if (ud >= UD_SPECIAL_MAX) {
				on_cqe((struct raw_conn *)(uintptr_t)(ud &
								      ~(uint64_t)OP_MASK),
				       (int)(ud & OP_MASK), cqe->res);
			}
		}
		io_uring_cq_advance(&w->ring, seen);
	}
	io_uring_queue_exit(&w->ring);
	return NULL;
}

static void raw_free(struct raw *r)
{
	atomic_store(&r->stopping, true);
	for (unsigned i = 0; i < r->nworkers; i++) {
		struct raw_worker *w = &r->w[i];

		if (w->started) {
			wake(w);
			pthread_join(w->thread, NULL);
		}
		if (w->efd >= 0)
			close(w->efd);
		pthread_mutex_destroy(&w->lock);
	}
	pthread_cond_destroy(&r->ready_cond);
	pthread_mutex_destroy(&r->ready_lock);
	free(r->w);
	free(r->conns);
	free(r);
}

static int raw_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct raw *r = calloc(1, sizeof(*r));
	unsigned n = cfg->workers ? cfg->workers : 1, started = 0;
	int rc = 0;

	if (!r)
		return IOCX_E_NOMEM;
	r->phase = p;
	r->cfg = cfg;
	r->abort = cfg->opt->close_mode == BENCH_CLOSE_ABORT;
	r->timeout.tv_sec = (long long)(cfg->opt->timeout_ms / 1000);
	r->timeout.tv_nsec = (long long)(cfg->opt->timeout_ms % 1000) *
			     1000000;
	r->per_worker = (cfg->opt->concurrency + n - 1) / n;
	r->conns = calloc(cfg->opt->concurrency, sizeof(*r->conns));
	r->w = calloc(n, sizeof(*r->w));
	if (!r->conns || !r->w) {
		free(r->conns);
		free(r->w);
		free(r);
		return IOCX_E_NOMEM;
	}
	pthread_mutex_init(&r->ready_lock, NULL);
	pthread_cond_init(&r->ready_cond, NULL);
	for (; r->nworkers < n; r->nworkers++) {
		struct raw_worker *w = &r->w[r->nworkers];

		w->r = r;
		pthread_mutex_init(&w->lock, NULL);
		/* Blocking: io_uring fails a non-blocking read with EAGAIN. */
		w->efd = eventfd(0, EFD_CLOEXEC);
		if (w->efd >= 0 &&
		    pthread_create(&w->thread, NULL, worker, w) == 0) {
			w->started = true;
			started++;
		}
	}
	pthread_mutex_lock(&r->ready_lock);
	while (r->nready < started)
		pthread_cond_wait(&r->ready_cond, &r->ready_lock);
	pthread_mutex_unlock(&r->ready_lock);
	for (unsigned i = 0; i < n; i++) {
		if (!r->w[i].started || r->w[i].init_rc != 0)
			rc = IOCX_E_NOTSUP;
	}
	if (rc != 0) {
		raw_free(r);
		return rc;
	}
	*ctx = r;
	return 0;
}

static int raw_start(void *ctx, struct slot *s)
{
	struct raw *r = ctx;
	struct raw_conn *c = &r->conns[s->index];
	struct raw_worker *w = &r->w[s->index % r->nworkers];
	int rc;

	c->slot = s;
	c->w = w;
	c->status = IOCX_OK;
	c->sent = 0;
	c->reported = false;
	c->fastopen = false;
	c->fd = -1;
	c->remote = phase_next_target(r->phase, &c->remote_len);
	if (self == w) {
		rc = open_socket(r, c);
		if (rc == 0)
			issue_chain(c);
		return rc;
	}
	pthread_mutex_lock(&w->lock);
	c->next = w->head;
	w->head = c;
	pthread_mutex_unlock(&w->lock);
	wake(w);
	return 0;
}

static void raw_fini(void *ctx)
{
	struct raw *r = ctx;

	/* Normally nothing is in flight here; the linked timeouts (or the
	 * kernel's own) end whatever still is. */
	phase_wait_closed(r->phase, STOP_WAIT_MS);
	raw_free(r);
}

static const char *raw_backend(void *ctx)
{
	return ((struct raw *)ctx)->w[0].mode;
}

static unsigned raw_workers(void *ctx)
{
	return ((struct raw *)ctx)->nworkers;
}

const struct driver raw_uring_driver = {
	.name = "raw",
	.init = raw_init,
	.start = raw_start,
	.expire = NULL,			/* IORING_OP_LINK_TIMEOUT does it */
	.fini = raw_fini,
	.backend = raw_backend,
	.workers = raw_workers,
};
