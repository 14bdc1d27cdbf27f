/*
 * The raw epoll baseline for Linux, compared with the engine when it runs
 * on its epoll backend: the workload of an iocx phase done the way a
 * careful readiness-based program does it.
 *
 * `workers` threads, each with an epoll instance of its own; slot i
 * belongs to worker i % workers for the whole phase.  Per connect, on
 * whatever thread starts it: a non-blocking socket (SO_LINGER {1, 0}
 * for --close abort), connect() (EINPROGRESS), and the socket joins its
 * worker's epoll set edge-triggered for EPOLLOUT, which epoll_ctl allows
 * from any thread, so nothing is queued or handed over.  The worker
 * waits with epoll_wait for up to --batch events; on the edge it reads
 * SO_ERROR only when epoll says EPOLLERR or EPOLLHUP, sends the payload
 * (until EAGAIN; the next edge brings the rest), reports, and closes the
 * socket (which also takes it out of the set), then starts the slot's
 * next connect.  --timeout: the phase's control thread cancels an
 * overdue connect through expire(), a connect() to AF_UNSPEC that resets
 * it; the event that follows is counted as IOCX_E_TIMEDOUT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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
#define MAX_EVENTS 4096

struct ep_conn {
	struct slot *slot;
	struct ep_worker *w;
	int fd;
	size_t sent;
	bool fastopen;
};

struct ep_worker {
	struct ep *r;
	int epfd;
	int stopfd;			/* an eventfd: wakes it to stop */
	pthread_t thread;
	bool started;
};

struct ep {
	struct phase *phase;
	const struct phase_config *cfg;
	struct ep_worker *w;
	unsigned nworkers;
	struct ep_conn *conns;		/* per slot */
	bool abort;
	atomic_bool stopping;
};

/* Report, close, hand the slot back (worker thread). */
static void finish(struct ep_conn *c, int status)
{
	struct outcome o = {
		.status = status,
		.payload_sent = c->sent,
		.fastopen = c->fastopen,
	};
	struct phase *p = c->w->r->phase;

	phase_complete(c->slot, &o);
	close(c->fd);
	c->fd = -1;
	phase_closed(p);
	phase_release(c->slot);
}

/* The socket's pending error, as an iocx code. */
static int pending_error(int fd, bool connecting)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0)
		err = ECONNABORTED;	/* hung up without saying why */
	return connecting ? iocx__linux_error_connect(err, true)
			  : iocx__linux_error(err);
}

/* One readiness edge of c. */
static void on_event(struct ep_conn *c, uint32_t events)
{
	const struct phase_config *cfg = c->w->r->cfg;
	size_t len = cfg->opt->payload;

	if (events & (EPOLLERR | EPOLLHUP)) {
		finish(c, pending_error(c->fd, c->sent == 0));
		return;
	}
	while (c->sent < len) {
		ssize_t n = send(c->fd, (const char *)cfg->payload + c->sent,
				 len - c->sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		/* EINPROGRESS: a Fast Open connect still on its way. */
		if (n < 0 && (errno == EAGAIN || errno == EINPROGRESS))
			return;		/* the next edge brings the rest */
		if (n < 0) {
			finish(c, iocx__linux_error(errno));
			return;
		}
		c->sent += (size_t)n;
	}
	finish(c, IOCX_OK);
}

static void *worker(void *arg)
{
	struct ep_worker *w = arg;
	struct ep *r = w->r;
	unsigned batch = r->cfg->opt->batch;
	struct epoll_event *ev;

	if (batch > MAX_EVENTS)
		batch = MAX_EVENTS;
	ev = calloc(batch, sizeof(*ev));
	if (!ev) {
		phase_fail(r->phase);
		return NULL;
	}
	while (!atomic_load(&r->stopping)) {
		int n = epoll_wait(w->epfd, ev, (int)batch, -1);

		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr)
				on_event(ev[i].data.ptr, ev[i].events);
		}
	}
	free(ev);
	return NULL;
}

static void ep_free(struct ep *r)
{
	atomic_store(&r->stopping, true);
	for (unsigned i = 0; i < r->nworkers; i++) {
		struct ep_worker *w = &r->w[i];
		uint64_t one = 1;

		if (w->started) {
			ssize_t n = write(w->stopfd, &one, sizeof(one));

			(void)n;
			pthread_join(w->thread, NULL);
		}
		if (w->stopfd >= 0)
			close(w->stopfd);
		if (w->epfd >= 0)
			close(w->epfd);
	}
	free(r->w);
	free(r->conns);
	free(r);
}

static int ep_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct ep *r = calloc(1, sizeof(*r));
	unsigned n = cfg->workers ? cfg->workers : 1;

	if (!r)
		return IOCX_E_NOMEM;
	r->phase = p;
	r->cfg = cfg;
	r->abort = cfg->opt->close_mode == BENCH_CLOSE_ABORT;
	r->conns = calloc(cfg->opt->concurrency, sizeof(*r->conns));
	r->w = calloc(n, sizeof(*r->w));
	if (!r->conns || !r->w) {
		free(r->conns);
		free(r->w);
		free(r);
		return IOCX_E_NOMEM;
	}
	for (; r->nworkers < n; r->nworkers++) {
		struct ep_worker *w = &r->w[r->nworkers];
		struct epoll_event stop = { .events = EPOLLIN };

		w->r = r;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epfd < 0 || w->stopfd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stopfd, &stop) != 0 ||
		    pthread_create(&w->thread, NULL, worker, w) != 0) {
			r->nworkers++;
			ep_free(r);
			return IOCX_E_NOTSUP;
		}
		w->started = true;
	}
	*ctx = r;
	return 0;
}

static int ep_start(void *ctx, struct slot *s)
{
	struct ep *r = ctx;
	struct ep_conn *c = &r->conns[s->index];
	struct ep_worker *w = &r->w[s->index % r->nworkers];
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = c };
	size_t remote_len;
	const struct sockaddr *remote = phase_next_target(r->phase,
							  &remote_len);
	int one = 1, fd, rc;

	fd = socket(remote->sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		rc = iocx__linux_error(errno);
		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	c->slot = s;
	c->w = w;
	c->sent = 0;
	c->fastopen = false;
	if (r->abort)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (r->cfg->opt->fastopen && r->cfg->opt->payload > 0)
		c->fastopen = setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT,
					 &one, sizeof(one)) == 0;
	if (connect(fd, remote, (socklen_t)remote_len) != 0 &&
	    errno != EINPROGRESS) {
		rc = iocx__linux_error_connect(errno, true);
		close(fd);
		return rc;
	}
	/* Everything the worker reads is written before it can see c. */
	c->fd = fd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		rc = iocx__linux_error(errno);
			close(fd);
		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	return 0;
}

/* Reset an overdue connect: its worker then sees the error edge. */
static void ep_expire(void *ctx, struct slot *s)
{
	struct ep *r = ctx;
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };

	connect(r->conns[s->index].fd, &unspec, sizeof(unspec));
}

static void ep_fini(void *ctx)
{
	struct ep *r = ctx;

	/* Normally nothing is in flight here.  After a stall, a connect
	 * the kernel has not ended within STOP_WAIT_MS keeps its socket
	 * until the process exits (the run fails anyway). */
	phase_wait_closed(r->phase, STOP_WAIT_MS);
	ep_free(r);
}

static const char *ep_backend(void *ctx)
{
	(void)ctx;
	return "raw epoll";
}

static unsigned ep_workers(void *ctx)
{
	return ((struct ep *)ctx)->nworkers;
}

const struct driver raw_epoll_driver = {
	.name = "raw",
	.init = ep_init,
	.start = ep_start,
	.expire = ep_expire,
	.fini = ep_fini,
	.backend = ep_backend,
	.workers = ep_workers,
};
