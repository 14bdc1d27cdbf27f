/*
 * The raw baseline driver for Linux: the workload of an iocx phase done
 * by hand on io_uring with nothing but what a correct minimal program
 * needs, so iocx / raw shows what the engine costs.
 *
 * `workers` threads, each with its own ring; slot i belongs to worker
 * i % workers for the whole phase.  Per connect: socket(), then
 * IORING_OP_CONNECT (with an IORING_OP_LINK_TIMEOUT when --timeout is
 * set: the kernel cancels an overdue connect, reported as
 * IOCX_E_TIMEDOUT), then IORING_OP_SEND of the payload (short sends sent
 * again), then close: SO_LINGER {1, 0} first for --close abort.  A connect
 * started on its worker's own thread (the next one, from the completion
 * of the last) goes straight into the ring; one started elsewhere (the
 * phase's first fill) is queued to the worker under a mutex and an
 * eventfd wakes it, since io_uring completes a request with -ECANCELED
 * once the thread that submitted it exits.  Latency runs from just before
 * socket() to the completion of the last operation, like the engine's.
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

#define RING_ENTRIES 512
#define STOP_WAIT_MS 10000

/* Low bits of user_data: what a completion is for. */
enum { UD_OP = 0, UD_TIMEOUT = 1, UD_WAKE = 2 };

struct raw_conn {
	struct slot *slot;
	struct raw_worker *w;
	struct raw_conn *next;		/* in the worker's start list */
	int fd;
	atomic_bool busy;		/* started, not yet finished */
	uint64_t t0_ns;
	const struct sockaddr *remote;	/* this connect's target */
	size_t remote_len;
	size_t sent;
	bool connected;
	bool fastopen;
};

struct raw_worker {
	struct raw *r;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool started;
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
	struct raw_conn *conns;		/* per slot */
	struct __kernel_timespec timeout;
	atomic_bool stopping;
};

static _Thread_local struct raw_worker *self;

/* Wake w (its eventfd read completes); a lost wake costs its 1 s slice. */
static void wake(struct raw_worker *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->efd, &one, sizeof(one));

	(void)n;
}

static struct io_uring_sqe *get_sqe(struct raw_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* The connect is over: report it, close, hand the slot back. */
static void finish(struct raw_conn *c, int status)
{
	struct raw *r = c->w->r;
	struct slot *s = c->slot;
	struct outcome o = {
		.status = status,
		.latency_ns = iocx__now_ns() - c->t0_ns,
		.payload_sent = c->sent,
		.fastopen = c->fastopen,
	};

	phase_complete(s, &o);
	/* A failed one that had connected is reset, as the engine does. */
	if ((r->cfg->opt->close_mode == BENCH_CLOSE_ABORT ||
	     status != IOCX_OK) && c->connected) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	atomic_store(&c->busy, false);
	phase_closed(r->phase);
	phase_release(s);
}

/* Send what is left of the payload; false when no entry was free. */
static bool send_rest(struct raw_conn *c)
{
	const struct phase_config *cfg = c->w->r->cfg;
	struct io_uring_sqe *sqe = get_sqe(c->w);

	if (!sqe)
		return false;
	io_uring_prep_send(sqe, c->fd,
			   (const unsigned char *)cfg->payload + c->sent,
			   cfg->opt->payload - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, c);
	return true;
}

/* Issue c's connect on its worker (on that worker's thread). */
static void issue_connect(struct raw_conn *c)
{
	struct raw *r = c->w->r;
	struct io_uring_sqe *sqe = get_sqe(c->w);

	if (!sqe) {
		finish(c, IOCX_E_SYSTEM);
		return;
	}
	io_uring_prep_connect(sqe, c->fd, c->remote,
			      (socklen_t)c->remote_len);
	io_uring_sqe_set_data(sqe, c);
	if (r->cfg->opt->timeout_ms == 0)
		return;
	sqe->flags |= IOSQE_IO_LINK;
	sqe = get_sqe(c->w);
	if (!sqe)
		return;		/* the link then simply has no timeout */
	io_uring_prep_link_timeout(sqe, &r->timeout, 0);
	io_uring_sqe_set_data64(sqe, UD_TIMEOUT);
}

static void on_completion(struct raw_conn *c, int res)
{
	const struct phase_config *cfg = c->w->r->cfg;

	if (!c->connected) {
		if (res < 0) {
			/* Cancelled by its linked timeout: overdue. */
			finish(c, res == -ECANCELED
					  ? IOCX_E_TIMEDOUT
					  : iocx__linux_error_connect(-res,
								      true));
			return;
		}
		c->connected = true;
	} else {
		if (res < 0) {
			finish(c, iocx__linux_error(-res));
			return;
		}
		c->sent += (size_t)res;
	}
	if (c->sent < cfg->opt->payload) {
		if (!send_rest(c))
			finish(c, IOCX_E_SYSTEM);
		return;
	}
	finish(c, IOCX_OK);
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

		issue_connect(c);
		c = next;
	}
}

static void arm_wake(struct raw_worker *w)
{
	struct io_uring_sqe *sqe = get_sqe(w);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
}

static void *worker(void *arg)
{
	struct raw_worker *w = arg;

	self = w;
	arm_wake(w);
	while (!atomic_load(&w->r->stopping)) {
		struct __kernel_timespec ts = { .tv_sec = 1 };
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t ud = cqe->user_data;

			seen++;
			if (ud == UD_WAKE) {
				drain_starts(w);
				arm_wake(w);
			} else if (ud != UD_TIMEOUT) {
				on_completion((struct raw_conn *)(uintptr_t)ud,
					      cqe->res);
			}
		}
		io_uring_cq_advance(&w->ring, seen);
	}
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
		if (w->ring_ok)
			io_uring_queue_exit(&w->ring);
		if (w->efd >= 0)
			close(w->efd);
		pthread_mutex_destroy(&w->lock);
	}
	free(r->w);
	free(r->conns);
	free(r);
}

static int raw_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct raw *r = calloc(1, sizeof(*r));
	unsigned n = cfg->workers ? cfg->workers : 1;

	if (!r)
		return IOCX_E_NOMEM;
	r->phase = p;
	r->cfg = cfg;
	r->timeout.tv_sec = (long long)(cfg->opt->timeout_ms / 1000);
	r->timeout.tv_nsec = (long long)(cfg->opt->timeout_ms % 1000) *
			     1000000;
	r->conns = calloc(cfg->opt->concurrency, sizeof(*r->conns));
	r->w = calloc(n, sizeof(*r->w));
	if (!r->conns || !r->w) {
		free(r->conns);
		free(r->w);
		free(r);
		return IOCX_E_NOMEM;
	}
	for (; r->nworkers < n; r->nworkers++) {
		struct raw_worker *w = &r->w[r->nworkers];

		w->r = r;
		pthread_mutex_init(&w->lock, NULL);
		/* Blocking: io_uring fails a non-blocking read with EAGAIN. */
		w->efd = eventfd(0, EFD_CLOEXEC);
		if (w->efd < 0)
			goto err;
		if (io_uring_queue_init(RING_ENTRIES, &w->ring,
					IORING_SETUP_COOP_TASKRUN) != 0 &&
		    io_uring_queue_init(RING_ENTRIES, &w->ring, 0) != 0)
			goto err;
		w->ring_ok = true;
		if (pthread_create(&w->thread, NULL, worker, w) != 0)
			goto err;
		w->started = true;
	}
	*ctx = r;
	return 0;
err:
	r->nworkers++;
	raw_free(r);
	return IOCX_E_NOTSUP;
}

static int raw_start(void *ctx, struct slot *s)
{
	struct raw *r = ctx;
	struct raw_conn *c = &r->conns[s->index];
	struct raw_worker *w = &r->w[s->index % r->nworkers];
	int one = 1;

	c->slot = s;
	c->w = w;
	c->sent = 0;
	c->connected = false;
	c->fastopen = false;
	atomic_store(&c->busy, true);
	c->t0_ns = iocx__now_ns();
	c->remote = phase_next_target(r->phase, &c->remote_len);
	c->fd = socket(c->remote->sa_family, SOCK_STREAM | SOCK_CLOEXEC,
		       IPPROTO_TCP);
	if (c->fd < 0) {
		int rc = iocx__linux_error(errno);

		atomic_store(&c->busy, false);
		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	if (r->cfg->opt->fastopen && r->cfg->opt->payload > 0)
		c->fastopen = setsockopt(c->fd, IPPROTO_TCP,
					 TCP_FASTOPEN_CONNECT, &one,
					 sizeof(one)) == 0;
	if (self == w) {
		issue_connect(c);
		return 0;
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
	unsigned n = r->cfg->opt->concurrency;
	uint64_t give_up = iocx__now_ns() + STOP_WAIT_MS * 1000000ull;
	bool busy = true;

	/* Normally nothing is in flight here; the linked timeouts (or the
	 * kernel's own) end whatever still is. */
	while (busy && iocx__now_ns() < give_up) {
		busy = false;
		for (unsigned i = 0; i < n && !busy; i++)
			busy = atomic_load(&r->conns[i].busy);
		if (busy)
			os_yield();
	}
	raw_free(r);
}

static const char *raw_backend(void *ctx)
{
	(void)ctx;
	return "raw io_uring";
}

static unsigned raw_workers(void *ctx)
{
	return ((struct raw *)ctx)->nworkers;
}

const struct driver raw_driver = {
	.name = "raw",
	.init = raw_init,
	.start = raw_start,
	.expire = NULL,			/* IORING_OP_LINK_TIMEOUT does it */
	.fini = raw_fini,
	.backend = raw_backend,
	.workers = raw_workers,
};
