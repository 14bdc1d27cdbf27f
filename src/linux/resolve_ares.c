/*
 * The Linux engine's own resolver (struct iocx_resolver): c-ares on one
 * thread per engine, started at the first query.
 *
 * Why a thread of its own rather than the workers' loops: a c-ares 1.18
 * channel is not thread-safe, so exactly one thread may drive it, and
 * feeding its sockets into both the io_uring and the epoll loop would tie
 * both backends to c-ares.  One thread multiplexes every query of the
 * engine (poll() over c-ares's sockets plus an eventfd for requests): no
 * thread per query.  At 1,000 names in flight it costs less CPU per query
 * than getaddrinfo_a or a getaddrinfo pool (docs/names.md, measured by
 * bench/resolver_choice.c).  At most ARES_MAX_ACTIVE lookups are given
 * to c-ares at once; the others wait in r->waiting, the thread's own.
 *
 * Requests come from any thread: start and cancel queue a record under
 * r->lock (a leaf lock) and wake the thread.  Only the thread calls
 * c-ares and iocx_query_done, never with the lock held.  A cancelled
 * query is answered at once with IOCX_E_CANCELLED; c-ares's late answer
 * to it is then dropped (c-ares 1.18 cannot cancel one query).
 *
 * Lifetime: the engine reaches engine_fini only when every query it
 * started has been answered (each holds a reference on its connection,
 * and destroy waits for all connections), so stopping the thread there
 * only has cancelled queries left to drop.
 */
#define _GNU_SOURCE
#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"
#include "linux/lx.h"

/* c-ares's per-try timeout and tries: a silent server costs about 3 s
 * (the second try waits twice as long); deadline_ms can cut it short. */
#define ARES_TRY_MS 1000
#define ARES_TRIES 2
/* Longest poll(), so a missed wake-up costs at most this. */
#define MAX_WAIT_MS 1000
/*
 * Lookups c-ares runs at once; the others wait in r->waiting.  c-ares
 * 1.18 sends every query to a server through one UDP socket, and a
 * thousand answers at once overflowed its default receive buffer (208 KiB):
 * each dropped answer cost a 1 s retry (bench/resolver_choice.c counts the
 * drops; docs/results/2026-12-06-resolver-choice.md).
 */
#define ARES_MAX_ACTIVE 128

struct ares_req {
	struct ares_req *next;
	struct iocx_ares *r;
	iocx_query *q;
	int family;
	bool is_cancel;			/* a cancel of q, not a lookup */
	bool answered;			/* cancel answered it already */
	char host[];
};

struct iocx_ares {
	struct iocx_resolver ops;	/* first: ops.ctx is us */
	char *servers;			/* "ADDR:PORT,..." or NULL */

	iocx_mutex lock;		/* the fields below up to thread */
	struct ares_req *head, *tail;	/* requests not yet taken */
	bool running;			/* channel and thread are up */
	bool failed;			/* starting them failed: for good */
	bool stop;
	iocx_thread thread;

	/* The thread's own. */
	int efd;
	ares_channel ch;
	struct ares_req *active;	/* lookups c-ares has not answered */
	unsigned nactive;
	struct ares_req *waiting, *waiting_tail;	/* not yet given to it */
};

static void wake(struct iocx_ares *r)
{
	uint64_t one = 1;

	/* A lost wake-up costs at most MAX_WAIT_MS. */
	if (write(r->efd, &one, sizeof(one)) < 0)
		return;
}

static int map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return IOCX_OK;
	case ARES_ENOTFOUND:	/* NXDOMAIN */
	case ARES_ENODATA:	/* no record of this type */
	case ARES_ENONAME:
		return IOCX_E_NAME;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return IOCX_E_CANCELLED;
	default:		/* SERVFAIL, refused, timeout, ... */
		return IOCX_E_RESOLVE;
	}
}

static void unlink_active(struct iocx_ares *r, struct ares_req *q)
{
	for (struct ares_req **p = &r->active; *p; p = &(*p)->next) {
		if (*p == q) {
			*p = q->next;
			r->nactive--;
			return;
		}
	}
}

/* Answer and free a waiting lookup of query q, if there is one. */
static bool cancel_waiting(struct iocx_ares *r, iocx_query *q)
{
	struct ares_req *prev = NULL;

	for (struct ares_req *w = r->waiting; w; prev = w, w = w->next) {
		if (w->q != q)
			continue;
		if (prev)
			prev->next = w->next;
		else
			r->waiting = w->next;
		if (r->waiting_tail == w)
			r->waiting_tail = prev;
		iocx_query_done(q, IOCX_E_CANCELLED, 0, NULL, 0);
		iocx__free(w);
		return true;
	}
	return false;
}

/* c-ares's answer to one lookup, on the thread. */
static void on_answer(void *arg, int status, int timeouts,
		      struct ares_addrinfo *res)
{
	struct ares_req *q = arg;
	struct iocx_ares *r = q->r;
	struct sockaddr_storage addrs[IOCX_MAX_ADDRESSES];
	uint32_t ttl = 0, t;
	size_t n = 0;

	(void)timeouts;
	unlink_active(r, q);
	if (!q->answered) {
		for (struct ares_addrinfo_node *a = res ? res->nodes : NULL;
		     a && n < IOCX_MAX_ADDRESSES; a = a->ai_next) {
			if (a->ai_family != q->family ||
			    a->ai_addrlen > sizeof(addrs[0]))
				continue;
			memset(&addrs[n], 0, sizeof(addrs[n]));
			memcpy(&addrs[n], a->ai_addr, a->ai_addrlen);
			/* The answer lives as long as its shortest TTL. */
			t = a->ai_ttl > 0 ? (uint32_t)a->ai_ttl : 0;
			if (n == 0 || t < ttl)
				ttl = t;
			n++;
		}
		iocx_query_done_ttl(q->q, map_status(status),
				    (uint32_t)status, addrs, n, ttl);
	}
	if (res)
		ares_freeaddrinfo(res);
	iocx__free(q);
}

/* Give waiting lookups to c-ares up to ARES_MAX_ACTIVE; on the thread. */
static void start_waiting(struct iocx_ares *r)
{
	while (r->waiting && r->nactive < ARES_MAX_ACTIVE) {
		struct ares_req *q = r->waiting;
		struct ares_addrinfo_hints hints = {
			.ai_family = q->family,
			.ai_socktype = SOCK_STREAM,
			.ai_protocol = IPPROTO_TCP,
		};

		r->waiting = q->next;
		if (!r->waiting)
			r->waiting_tail = NULL;
		/* Listed first: c-ares may answer from inside the call. */
		q->next = r->active;
		r->active = q;
		r->nactive++;
		ares_getaddrinfo(r->ch, q->host, NULL, &hints, on_answer, q);
	}
}

/* Queue a lookup, or answer a cancel; on the thread. */
static void apply(struct iocx_ares *r, struct ares_req *q)
{
	if (q->is_cancel) {
		if (!cancel_waiting(r, q->q)) {
			for (struct ares_req *a = r->active; a; a = a->next) {
				if (a->q != q->q || a->answered)
					continue;
				a->answered = true;
				iocx_query_done(a->q, IOCX_E_CANCELLED, 0,
						NULL, 0);
				break;
			}
		}
		iocx__free(q);
		return;
	}
	q->next = NULL;
	if (r->waiting_tail)
		r->waiting_tail->next = q;
	else
		r->waiting = q;
	r->waiting_tail = q;
}

/* Take the queued requests; returns whether the thread must stop. */
static bool take(struct iocx_ares *r)
{
	struct ares_req *list;
	bool stop;

	iocx__mutex_lock(&r->lock);
	list = r->head;
	r->head = r->tail = NULL;
	stop = r->stop;
	iocx__mutex_unlock(&r->lock);
	while (list) {
		struct ares_req *next = list->next;

		apply(r, list);
		list = next;
	}
	start_waiting(r);
	return stop;
}

static void ares_thread(void *arg)
{
	struct iocx_ares *r = arg;

	while (!take(r)) {
		struct pollfd pfd[1 + ARES_GETSOCK_MAXNUM];
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct timeval max = { .tv_sec = MAX_WAIT_MS / 1000 };
		struct timeval tv, *tvp;
		unsigned bits;
		int n = 1, ms;
		bool any = false;

		pfd[0] = (struct pollfd){ .fd = r->efd, .events = POLLIN };
		/* c-ares's ARES_GETSOCK_WRITABLE shifts a signed 1 into the
		 * sign bit for the last socket: the same test, unsigned. */
		bits = (unsigned)ares_getsock(r->ch, socks,
					      ARES_GETSOCK_MAXNUM);
		for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			if (bits & (1u << i))
				ev |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev)
				pfd[n++] = (struct pollfd){ .fd = socks[i],
							    .events = ev };
		}
		tvp = ares_timeout(r->ch, &max, &tv);
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR)
			continue;
		if (pfd[0].revents) {
			uint64_t v;

			if (read(r->efd, &v, sizeof(v)) < 0)
				v = 0;
		}
		for (int i = 1; i < n; i++) {
			short re = pfd[i].revents;

			if (!re)
				continue;
			any = true;
			ares_process_fd(r->ch,
					re & (POLLIN | POLLERR | POLLHUP)
						? pfd[i].fd : ARES_SOCKET_BAD,
					re & POLLOUT ? pfd[i].fd
						     : ARES_SOCKET_BAD);
		}
		if (!any)	/* timeouts and retries */
			ares_process_fd(r->ch, ARES_SOCKET_BAD,
					ARES_SOCKET_BAD);
	}
	/* Only cancelled lookups are left: their answers are dropped. */
	ares_cancel(r->ch);
}

/* Channel and thread, at the first query; r->lock held. */
static int start_running(struct iocx_ares *r)
{
	static char lookups[] = "b";	/* DNS only: the servers given */
	struct ares_options o = {
		.timeout = ARES_TRY_MS,
		.tries = ARES_TRIES,
		.lookups = lookups,
	};
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int rc = IOCX_E_SYSTEM;

	if (r->failed)
		return IOCX_E_SYSTEM;
	if (r->servers)		/* no hosts file, no search domains */
		mask |= ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		goto err;
	if (ares_init_options(&r->ch, &o, mask) != ARES_SUCCESS)
		goto err_lib;
	if (r->servers &&
	    ares_set_servers_ports_csv(r->ch, r->servers) != ARES_SUCCESS) {
		rc = IOCX_E_INVAL;
		goto err_ch;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0)
		goto err_ch;
	if (iocx__thread_start(&r->thread, ares_thread, r) != IOCX_OK)
		goto err_efd;
	r->running = true;
	return IOCX_OK;

err_efd:
	close(r->efd);
err_ch:
	ares_destroy(r->ch);
err_lib:
	ares_library_cleanup();
err:
	r->failed = true;
	return rc;
}

/* Queue q for the thread, starting it if need be. */
static int submit(struct iocx_ares *r, struct ares_req *q)
{
	int rc = IOCX_OK;

	iocx__mutex_lock(&r->lock);
	if (!r->running)
		rc = start_running(r);
	if (rc == IOCX_OK) {
		if (r->tail)
			r->tail->next = q;
		else
			r->head = q;
		r->tail = q;
	}
	iocx__mutex_unlock(&r->lock);
	if (rc != IOCX_OK)
		return rc;
	wake(r);
	return IOCX_OK;
}

static int ares_start(void *ctx, const char *host, int family,
		      iocx_query *q)
{
	struct iocx_ares *r = ctx;
	size_t len = strlen(host) + 1;
	struct ares_req *req;
	int rc;

	req = iocx__alloc(sizeof(*req) + len);
	if (!req)
		return IOCX_E_NOMEM;
	memset(req, 0, sizeof(*req));
	req->r = r;
	req->q = q;
	req->family = family;
	memcpy(req->host, host, len);
	rc = submit(r, req);
	if (rc != IOCX_OK)
		iocx__free(req);
	return rc;
}

static void ares_cancel_query(void *ctx, iocx_query *q)
{
	struct iocx_ares *r = ctx;
	struct ares_req *req = iocx__alloc(sizeof(*req) + 1);

	/* Without memory the lookup runs to its own end (about 3 s at
	 * most): the answer still comes, only later. */
	if (!req)
		return;
	memset(req, 0, sizeof(*req) + 1);
	req->r = r;
	req->q = q;
	req->is_cancel = true;
	if (submit(r, req) != IOCX_OK)
		iocx__free(req);
}

/* See linux/lx.h. */
struct iocx_ares *iocx__ares_create(const char *servers)
{
	struct iocx_ares *r = iocx__alloc(sizeof(*r));

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->ops.ctx = r;
	r->ops.start = ares_start;
	r->ops.cancel = ares_cancel_query;
	r->efd = -1;
	iocx__mutex_init(&r->lock);
	if (servers) {
		size_t len = strlen(servers) + 1;

		r->servers = iocx__alloc(len);
		if (!r->servers) {
			iocx__mutex_destroy(&r->lock);
			iocx__free(r);
			return NULL;
		}
		memcpy(r->servers, servers, len);
	}
	return r;
}

/* See linux/lx.h. */
const struct iocx_resolver *iocx__ares_ops(struct iocx_ares *r)
{
	return &r->ops;
}

/* See linux/lx.h. */
void iocx__ares_destroy(struct iocx_ares *r)
{
	if (!r)
		return;
	if (r->running) {
		iocx__mutex_lock(&r->lock);
		r->stop = true;
		iocx__mutex_unlock(&r->lock);
		wake(r);
		iocx__thread_join(&r->thread);
		ares_destroy(r->ch);
		ares_library_cleanup();
		close(r->efd);
	}
	iocx__mutex_destroy(&r->lock);
	iocx__free(r->servers);
	iocx__free(r);
}
