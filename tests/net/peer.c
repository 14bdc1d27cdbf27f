/*
 * Test peers and helpers for the net tests, the portable part; contracts
 * in peer.h.  The OS shims, the process bits and the syscall wrappers are
 * in peer_win.c and peer_linux.c (peer_os.h lists what they share).
 *
 * Locks: the allocator lock guards the block accounting and, on Windows,
 * cmocka's block list (its test_malloc is not thread-safe and the library
 * allocates and frees on worker threads); each tracker and each listener has its own lock and
 * condition variable; the syscall log has one lock.  None is held while
 * another is taken, and none is held across a call into iocx.
 */
#include "peer.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer_os.h"

/* Initialised by peer__init_common(), before any engine exists. */
static iocx_mutex alloc_lock;
static iocx_cond alloc_cv;
static iocx_mutex sys_lock;	/* the syscall log, at the end */
static iocx_cond sys_cv;	/* an event was logged */

/* See peer_os.h. */
void peer__init_common(void)
{
	iocx__mutex_init(&alloc_lock);
	iocx__cond_init(&alloc_cv);
	iocx__mutex_init(&sys_lock);
	iocx__cond_init(&sys_cv);
}

/* ---- allocator -------------------------------------------------------- */

static long alloc_live;
static long alloc_calls;
static long alloc_fail_at;
static long alloc_failed;

/* The library allocator: peer__block_alloc (peer_os.h), serialised. */
void *peer_test_alloc(size_t size)
{
	void *p = NULL;

	iocx__mutex_lock(&alloc_lock);
	alloc_calls++;
	if (alloc_fail_at != 0 && alloc_calls == alloc_fail_at) {
		alloc_fail_at = 0;
		alloc_failed++;
	} else {
		p = peer__block_alloc(size);
		if (p != NULL)
			alloc_live++;
	}
	iocx__mutex_unlock(&alloc_lock);
	return p;
}

void peer_test_free(void *ptr)
{
	if (ptr == NULL)
		return;
	iocx__mutex_lock(&alloc_lock);
	peer__block_free(ptr);
	alloc_live--;
	iocx__mutex_unlock(&alloc_lock);
	iocx__cond_broadcast(&alloc_cv);
}

long peer_alloc_live(void)
{
	long n;

	iocx__mutex_lock(&alloc_lock);
	n = alloc_live;
	iocx__mutex_unlock(&alloc_lock);
	return n;
}

uint64_t peer_now_ms(void)
{
	return iocx__now_ns() / 1000000u;
}

/* Milliseconds left until deadline (peer_now_ms based), 0 if past. */
static unsigned left_ms(uint64_t deadline)
{
	uint64_t now = peer_now_ms();

	return now >= deadline ? 0 : (unsigned)(deadline - now);
}

bool peer_alloc_wait_live(long target, unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	bool ok;

	iocx__mutex_lock(&alloc_lock);
	while (alloc_live != target && left_ms(deadline) > 0)
		iocx__cond_timedwait(&alloc_cv, &alloc_lock,
				     left_ms(deadline));
	ok = alloc_live == target;
	iocx__mutex_unlock(&alloc_lock);
	return ok;
}

void peer_alloc_fail_nth(long n)
{
	iocx__mutex_lock(&alloc_lock);
	alloc_fail_at = n > 0 ? alloc_calls + n : 0;
	iocx__mutex_unlock(&alloc_lock);
}

long peer_alloc_failures(void)
{
	long n;

	iocx__mutex_lock(&alloc_lock);
	n = alloc_failed;
	iocx__mutex_unlock(&alloc_lock);
	return n;
}

/* ---- addresses -------------------------------------------------------- */

int peer_addr(struct sockaddr_storage *ss, int family, const char *ip,
	      uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
			return 0;
		return (int)sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
			return 0;
		return (int)sizeof(*a);
	}
}

uint16_t peer_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

const char *peer_addr_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *src;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)sa)->sin_addr;
	else
		src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (inet_ntop(sa->sa_family, src, buf, len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/*
 * The ports peer_free_port() hands out lie below every ephemeral range an
 * OS here picks from (Linux 32768-60999 by default, Windows 49152-65535),
 * so no socket bound to port 0 and no connect's own port lands on one
 * while a test expects a refusal there (with port 0 a connect could meet
 * itself, or another test's listener could take the port: both seen under
 * load).  The start is spread by the clock so parallel test processes try
 * different ports first; sharing one is harmless, nobody listens on it.
 */
#define FREE_PORT_LOW 20000u
#define FREE_PORT_SPAN 12000u

uint16_t peer_free_port(int family, const char *ip)
{
	static unsigned next;
	struct sockaddr_storage ss;
	peer_socklen_t len;
	unsigned tries;

	if (next == 0)
		next = (unsigned)(peer_now_ms() % FREE_PORT_SPAN) + 1;
	for (tries = 0; tries < 256; tries++) {
		uint16_t port = (uint16_t)(FREE_PORT_LOW +
					   next++ % FREE_PORT_SPAN);
		SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
		bool ok;

		if (s == INVALID_SOCKET)
			return 0;
		len = peer_addr(&ss, family, ip, port);
		ok = bind(s, (struct sockaddr *)&ss, len) == 0;
		closesocket(s);
		if (ok)
			return port;
	}
	return 0;
}

bool peer_ipv6_available(void)
{
	struct sockaddr_storage ss;
	int len = peer_addr(&ss, AF_INET6, "::1", 0);
	SOCKET s = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
	bool ok;

	if (s == INVALID_SOCKET)
		return false;
	ok = bind(s, (struct sockaddr *)&ss, len) == 0;
	closesocket(s);
	return ok;
}

/* ---- callback recorder ------------------------------------------------ */

static atomic_long seq_counter;

long peer_seq(void)
{
	return atomic_fetch_add(&seq_counter, 1) + 1;
}

void peer_tracker_init(struct peer_tracker *t)
{
	memset(t, 0, sizeof(*t));
	iocx__mutex_init(&t->lock);
	iocx__cond_init(&t->cv);
	t->main_thread = peer_thread_id();
}

void peer_hook_close(struct peer_rec *r, iocx_conn *conn,
		     const struct iocx_connect_result *res)
{
	(void)res;
	r->hook_rc[0] = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
}

void peer_recs_init(struct peer_rec *r, size_t n, struct peer_tracker *t)
{
	size_t i;

	memset(r, 0, n * sizeof(*r));
	for (i = 0; i < n; i++)
		r[i].trk = t;
}

static void violation(struct peer_rec *r, const char *fmt, ...)
{
	struct peer_tracker *t = r->trk;
	va_list ap;

	iocx__mutex_lock(&t->lock);
	if (t->violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(t->first_violation, sizeof(t->first_violation), fmt,
			  ap);
		va_end(ap);
	}
	iocx__mutex_unlock(&t->lock);
}

/* Checks every callback makes on entry; returns the sequence number. */
static long callback_enter(struct peer_rec *r, iocx_conn *conn,
			   const char *which)
{
	long seq = peer_seq();

	if (atomic_exchange(&r->in_callback, 1) != 0)
		violation(r, "%s ran while another callback of the same "
			  "connection was running", which);
	if (peer_thread_id() == r->trk->main_thread)
		violation(r, "%s ran on the test's main thread", which);
	if (iocx_conn_user(conn) != r)
		violation(r, "%s: iocx_conn_user() != request user", which);
	return seq;
}

void peer_on_connect(iocx_conn *conn, const struct iocx_connect_result *res,
		     void *user)
{
	struct peer_rec *r = user;
	struct peer_tracker *t = r->trk;
	long seq = callback_enter(r, conn, "on_connect");
	int st = res->status;

	if (atomic_fetch_add(&r->connects, 1) != 0)
		violation(r, "second on_connect (status %d)", st);
	if (atomic_load(&r->closes) != 0)
		violation(r, "on_connect after on_close");
	r->status = st;
	r->os_code = res->os_code;
	r->payload_sent = res->payload_sent;
	r->latency_ns = res->latency_ns;
	r->fastopen = res->fastopen;
	r->connect_seq = seq;
	r->conn = conn;
	if (r->on_connect_hook != NULL)
		r->on_connect_hook(r, conn, res);
	atomic_store(&r->in_callback, 0);

	iocx__mutex_lock(&t->lock);
	t->connects++;
	if (st <= 0 && st > -IOCX_ERROR_COUNT)
		t->status[-st]++;
	iocx__mutex_unlock(&t->lock);
	if (st > 0 || st <= -IOCX_ERROR_COUNT)
		violation(r, "on_connect status %d is not an iocx code", st);
	iocx__cond_broadcast(&t->cv);
}

void peer_on_close(iocx_conn *conn, int reason, void *user)
{
	struct peer_rec *r = user;
	struct peer_tracker *t = r->trk;
	long seq = callback_enter(r, conn, "on_close");

	if (atomic_load(&r->connects) == 0)
		violation(r, "on_close (reason %d) before on_connect", reason);
	else if (conn != r->conn)
		violation(r, "on_close conn %p != on_connect conn %p",
			  (void *)conn, (void *)r->conn);
	if (atomic_fetch_add(&r->closes, 1) != 0)
		violation(r, "second on_close (reason %d)", reason);
	r->reason = reason;
	r->close_seq = seq;
	if (r->on_close_hook != NULL)
		r->on_close_hook(r, conn, reason);
	atomic_store(&r->in_callback, 0);

	iocx__mutex_lock(&t->lock);
	t->closes++;
	if (reason == IOCX_OK)
		t->reason_ok++;
	else if (reason == IOCX_E_SHUTDOWN)
		t->reason_shutdown++;
	else
		t->reason_other++;
	iocx__mutex_unlock(&t->lock);
	iocx__cond_broadcast(&t->cv);
}

bool peer_wait(struct peer_tracker *t, long connects, long closes,
	       unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	bool ok;

	iocx__mutex_lock(&t->lock);
	while ((t->connects < connects || t->closes < closes) &&
	       left_ms(deadline) > 0)
		iocx__cond_timedwait(&t->cv, &t->lock, left_ms(deadline));
	ok = t->connects >= connects && t->closes >= closes;
	iocx__mutex_unlock(&t->lock);
	return ok;
}

void peer_assert_clean(struct peer_tracker *t)
{
	struct peer_tracker s;

	peer_tracker_snapshot(t, &s);
	if (s.violations != 0)
		fail_msg("%ld callback contract violation(s), first: %s",
			 s.violations, s.first_violation);
}

void peer_assert_wait(struct peer_tracker *t, long connects, long closes,
		      unsigned timeout_ms)
{
	struct peer_tracker s;

	if (peer_wait(t, connects, closes, timeout_ms))
		return;
	peer_tracker_snapshot(t, &s);
	fail_msg("timed out after %u ms: on_connect %ld/%ld, on_close %ld/%ld"
		 " (violations %ld: %s)", timeout_ms, s.connects, connects,
		 s.closes, closes, s.violations, s.first_violation);
}

void peer_assert_no_leak(long live0)
{
	if (!peer_alloc_wait_live(live0, PEER_TIMEOUT_MS))
		fail_msg("library still holds %ld test-allocator blocks, "
			 "expected %ld", peer_alloc_live(), live0);
}

void peer_tracker_snapshot(struct peer_tracker *t, struct peer_tracker *out)
{
	iocx__mutex_lock(&t->lock);
	*out = *t;
	iocx__mutex_unlock(&t->lock);
}

void peer_req(struct iocx_connect_request *req,
	      const struct sockaddr_storage *remote, int remote_len,
	      struct peer_rec *r)
{
	memset(req, 0, sizeof(*req));
	req->remote = (const struct sockaddr *)remote;
	req->remote_len = (size_t)remote_len;
	req->on_connect = peer_on_connect;
	req->on_close = peer_on_close;
	req->user = r;
}

void peer_req_host(struct iocx_connect_request *req, const char *host,
		   uint16_t port, struct peer_rec *r)
{
	peer_req(req, NULL, 0, r);
	req->host = host;
	req->port = port;
}

/* ---- listeners -------------------------------------------------------- */

/*
 * Connections a PEER_READ listener keeps (the array never moves): as many
 * as a test opens at once (test_cancel: 1,000).  One it cannot keep is
 * closed at once, and a payload sent to it then ends in a reset.
 */
#define PEER_MAX_READ_CONNS 1024

/* Accept everything queued; returns false on a fatal listener error. */
static bool serve_accept(struct peer *p)
{
	for (int i = 0; i < 4096; i++) {
		struct sockaddr_storage ss;
		peer_socklen_t len = sizeof(ss);
		SOCKET s = accept(p->ls, (struct sockaddr *)&ss, &len);
		struct peer_accepted *a;

		if (s == INVALID_SOCKET) {
			int err = peer_sock_errno();

			if (err == PEER_EWOULDBLOCK || err == PEER_ECONNRESET ||
			    err == PEER_ECONNABORTED)
				return true;
			p->thread_error = err;
			return false;
		}
		iocx__mutex_lock(&p->lock);
		if (p->mode == PEER_CLOSE ||
		    p->nconns == PEER_MAX_READ_CONNS) {
			closesocket(s);
		} else {
			peer__set_nonblocking(s);
			a = &p->conns[p->nconns++];
			a->s = s;
			a->addr = ss;
			a->addr_len = (int)len;
		}
		p->accepted++;
		iocx__mutex_unlock(&p->lock);
		iocx__cond_broadcast(&p->cv);
	}
	return true;
}

/* Read what connection a has; marks EOF on FIN or error. */
static void serve_read(struct peer *p, struct peer_accepted *a)
{
	for (int i = 0; i < 1024; i++) {
		char buf[16384];
		int n = (int)recv(a->s, buf, sizeof(buf), 0);
		int err = n < 0 ? peer_sock_errno() : 0;

		if (n < 0 && err == PEER_EWOULDBLOCK)
			return;
		iocx__mutex_lock(&p->lock);
		if (n > 0) {
			if (a->len + (size_t)n > a->cap) {
				size_t cap = a->cap ? a->cap : 65536;
				unsigned char *d;

				while (cap < a->len + (size_t)n)
					cap *= 2;
				d = realloc(a->data, cap);
				if (d == NULL) {
					a->error = PEER_ENOBUFS;
					n = -1;
				} else {
					a->data = d;
					a->cap = cap;
				}
			}
			if (n > 0) {
				memcpy(a->data + a->len, buf, (size_t)n);
				a->len += (size_t)n;
			}
		} else {
			a->error = err;
		}
		if (n <= 0) {
			a->eof = true;
			closesocket(a->s);
			a->s = INVALID_SOCKET;
		}
		iocx__mutex_unlock(&p->lock);
		iocx__cond_broadcast(&p->cv);
		if (n <= 0)
			return;
	}
}

/*
 * The listener's thread: wait for the listener and every open accepted
 * connection to be readable.  The 20 ms timeout only bounds how long a
 * stop request waits; nothing is synchronised on it.
 */
static void serve_thread(void *arg)
{
	struct peer *p = arg;
	/* [0]: the listener, [1 + i]: accepted connection i. */
	SOCKET socks[1 + PEER_MAX_READ_CONNS];
	bool write[1 + PEER_MAX_READ_CONNS] = { false };
	bool ready[1 + PEER_MAX_READ_CONNS];

	while (!atomic_load(&p->stop)) {
		size_t i, n;
		int err;

		iocx__mutex_lock(&p->lock);
		n = p->nconns;
		iocx__mutex_unlock(&p->lock);
		socks[0] = p->ls;
		for (i = 0; i < n; i++)
			socks[1 + i] = p->conns[i].eof ? INVALID_SOCKET
						       : p->conns[i].s;
		err = peer__poll(socks, write, ready, 1 + n, 20);
		if (err != 0) {
			p->thread_error = err;
			break;
		}
		if (ready[0] && !serve_accept(p))
			break;
		for (i = 0; i < n; i++)
			if (ready[1 + i])
				serve_read(p, &p->conns[i]);
	}
}

static struct peer *peer_new(int family, const char *ip, uint16_t port,
			     int backlog)
{
	struct peer *p = calloc(1, sizeof(*p));
	peer_socklen_t len;

	if (p == NULL)
		return NULL;
	p->family = family;
	p->ls = INVALID_SOCKET;
	iocx__mutex_init(&p->lock);
	iocx__cond_init(&p->cv);
	p->conns = calloc(PEER_MAX_READ_CONNS, sizeof(*p->conns));
	if (p->conns == NULL)
		goto fail;
	p->addr_len = peer_addr(&p->addr, family, ip, port);
	if (p->addr_len == 0)
		goto fail;
	p->ls = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (p->ls == INVALID_SOCKET)
		goto fail;
	if (bind(p->ls, (struct sockaddr *)&p->addr, p->addr_len) != 0)
		goto fail;
	len = (peer_socklen_t)p->addr_len;
	if (getsockname(p->ls, (struct sockaddr *)&p->addr, &len) != 0)
		goto fail;
	p->port = peer_addr_port((struct sockaddr *)&p->addr);
	if (listen(p->ls, backlog) != 0)
		goto fail;
	peer__set_nonblocking(p->ls);
	return p;
fail:
	peer_close(p);
	return NULL;
}

void peer_serve(struct peer *p, enum peer_mode mode)
{
	p->mode = mode;
	p->thread = peer_thread_start(serve_thread, p);
}

struct peer *peer_listen_port(int family, const char *ip, uint16_t port,
			      enum peer_mode mode)
{
	struct peer *p = peer_new(family, ip, port, SOMAXCONN);

	if (p == NULL)
		return NULL;
	peer_serve(p, mode);
	if (p->thread == NULL) {
		peer_close(p);
		return NULL;
	}
	return p;
}

/*
 * Wait at most ms for s to be writable (write) or readable: 1 when it is,
 * 0 on timeout, -1 when the wait failed (*err: the socket error).
 */
static int poll_one(SOCKET s, bool write, unsigned ms, int *err)
{
	bool ready = false;

	*err = peer__poll(&s, &write, &ready, 1, ms);
	if (*err != 0)
		return -1;
	return ready ? 1 : 0;
}

/*
 * Connect a filler to the listener at addr into *out (INVALID_SOCKET when
 * none could be made) and wait at most wait_ms until the handshake is
 * done (0: only start it).
 */
static bool connect_filler(const struct sockaddr_storage *addr, int len,
			   unsigned wait_ms, SOCKET *out)
{
	SOCKET s = socket(addr->ss_family, SOCK_STREAM, IPPROTO_TCP);
	int err;

	*out = s;
	if (s == INVALID_SOCKET)
		return false;
	peer__set_nonblocking(s);
	if (connect(s, (const struct sockaddr *)addr, len) == 0)
		return true;
	if (peer_sock_errno() != PEER_EINPROGRESS)
		return false;
	return wait_ms == 0 || poll_one(s, true, wait_ms, &err) == 1;
}

/* Connect one filler to p. */
static bool add_filler(struct peer *p)
{
	SOCKET s;
	bool ok = connect_filler(&p->addr, p->addr_len, 2000, &s);

	if (s != INVALID_SOCKET)
		p->fillers[p->nfillers++] = s;
	return ok;
}

struct peer *peer_listen(int family, const char *ip, enum peer_mode mode)
{
	return peer_listen_port(family, ip, 0, mode);
}

struct peer *peer_listen_full_port(int family, const char *ip,
				   uint16_t port)
{
	struct peer *p = peer_new(family, ip, port, 1);

	if (p == NULL)
		return NULL;
	/*
	 * Linux queues backlog + 1 connections (measured under Wine 8 and
	 * natively: backlog 1 takes exactly two); every later SYN is
	 * dropped.
	 */
	for (int i = 0; i < 2; i++) {
		if (!add_filler(p)) {
			fprintf(stderr, "peer_listen_full: filler %d did not "
				"connect\n", i);
			peer_close(p);
			return NULL;
		}
	}
	return p;
}

struct peer *peer_listen_full(int family, const char *ip)
{
	return peer_listen_full_port(family, ip, 0);
}

bool peer_listen_pair(struct peer **p4, struct peer **p6, bool v6_full)
{
	*p4 = NULL;
	*p6 = NULL;
	for (int tries = 0; tries < 20 && *p6 == NULL; tries++) {
		peer_close(*p4);
		*p4 = peer_listen(AF_INET, "127.0.0.1", PEER_READ);
		if (*p4 == NULL)
			return false;
		*p6 = v6_full ? peer_listen_full_port(AF_INET6, "::1",
						      (*p4)->port)
			      : peer_listen_port(AF_INET6, "::1",
						 (*p4)->port, PEER_READ);
	}
	return *p6 != NULL;
}

static bool peer_wait_until(struct peer *p, unsigned timeout_ms,
			    bool (*done)(struct peer *, size_t, size_t),
			    size_t a, size_t b)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	bool ok;

	iocx__mutex_lock(&p->lock);
	while (!done(p, a, b) && left_ms(deadline) > 0)
		iocx__cond_timedwait(&p->cv, &p->lock, left_ms(deadline));
	ok = done(p, a, b);
	iocx__mutex_unlock(&p->lock);
	return ok;
}

static bool accepted_done(struct peer *p, size_t n, size_t unused)
{
	(void)unused;
	return p->accepted >= (long)n;
}

static bool eof_done(struct peer *p, size_t idx, size_t unused)
{
	(void)unused;
	return idx < p->nconns && p->conns[idx].eof;
}

static bool bytes_done(struct peer *p, size_t idx, size_t n)
{
	return idx < p->nconns &&
	       (p->conns[idx].len >= n || p->conns[idx].eof);
}

bool peer_wait_accepted(struct peer *p, long n, unsigned timeout_ms)
{
	return peer_wait_until(p, timeout_ms, accepted_done, (size_t)n, 0);
}

bool peer_wait_eof(struct peer *p, size_t idx, unsigned timeout_ms)
{
	return peer_wait_until(p, timeout_ms, eof_done, idx, 0);
}

bool peer_wait_bytes(struct peer *p, size_t idx, size_t n,
		     unsigned timeout_ms)
{
	return peer_wait_until(p, timeout_ms, bytes_done, idx, n) &&
	       p->conns[idx].len >= n;
}

void peer_close(struct peer *p)
{
	size_t i;

	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	if (p->thread != NULL && !peer_thread_join(p->thread, 10000))
		fprintf(stderr, "peer_close: serving thread did not stop "
			"within 10 s\n");
	for (i = 0; p->conns != NULL && i < p->nconns; i++) {
		if (p->conns[i].s != INVALID_SOCKET && !p->conns[i].eof)
			closesocket(p->conns[i].s);
		free(p->conns[i].data);
	}
	for (int f = 0; f < p->nfillers; f++)
		closesocket(p->fillers[f]);
	if (p->ls != INVALID_SOCKET)
		closesocket(p->ls);
	free(p->conns);
	free(p);
}

/* ---- a port that flips ------------------------------------------------ */

/* A fresh socket bound to f's port, with SO_REUSEADDR; false on error. */
static bool flip_bind(struct peer_flip *f)
{
	int one = 1;

	f->s = socket(f->addr.ss_family, SOCK_STREAM, IPPROTO_TCP);
	if (f->s == INVALID_SOCKET)
		return false;
	setsockopt(f->s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one,
		   sizeof(one));
	return bind(f->s, (struct sockaddr *)&f->addr, f->addr_len) == 0;
}

/* Close the listener (resetting its queue) and the fillers. */
static void flip_close(struct peer_flip *f)
{
	if (f->s != INVALID_SOCKET)
		closesocket(f->s);
	f->s = INVALID_SOCKET;
	for (int i = 0; i < 2; i++) {
		if (f->fillers[i] != INVALID_SOCKET)
			closesocket(f->fillers[i]);
		f->fillers[i] = INVALID_SOCKET;
	}
	f->listening = false;
}

/*
 * Refusing -> full: listen and fill the queue, without waiting (the
 * connects under test may fill it first, and then a filler's SYN is the
 * one dropped).  Full -> refusing: close and bind again.  The bind may
 * find the port taken for a moment (a connect of the test that the
 * kernel gave this very port as its source): it is tried again, a
 * bounded number of times.  0 or the socket error.
 */
static int flip_once(struct peer_flip *f)
{
	if (!f->listening) {
		if (listen(f->s, 1) != 0)
			return peer_sock_errno();
		f->listening = true;
		for (int i = 0; i < 2; i++) {
			if (!connect_filler(&f->addr, f->addr_len, 0,
					    &f->fillers[i]))
				return peer_sock_errno();
		}
		return 0;
	}
	flip_close(f);
	for (int tries = 0; !flip_bind(f); tries++) {
		int err = peer_sock_errno();

		closesocket(f->s);
		f->s = INVALID_SOCKET;
		if (tries == 500 || peer_event_wait(f->stop, f->period_ms))
			return err;
	}
	return 0;
}

static void flip_thread(void *arg)
{
	struct peer_flip *f = arg;

	/* The wait paces the flips; the stop event ends them. */
	while (!peer_event_wait(f->stop, f->period_ms)) {
		int err = flip_once(f);

		if (err != 0) {
			atomic_store(&f->error, err);
			return;
		}
		atomic_fetch_add(&f->flips, 1);
	}
}

struct peer_flip *peer_flip_start(int family, const char *ip,
				  unsigned period_ms)
{
	struct peer_flip *f = calloc(1, sizeof(*f));
	peer_socklen_t len;

	if (f == NULL)
		return NULL;
	f->s = INVALID_SOCKET;
	f->fillers[0] = f->fillers[1] = INVALID_SOCKET;
	f->period_ms = period_ms;
	f->addr_len = peer_addr(&f->addr, family, ip, 0);
	f->stop = peer_event_new();
	if (f->addr_len == 0 || f->stop == NULL || !flip_bind(f))
		goto fail;
	len = (peer_socklen_t)f->addr_len;
	if (getsockname(f->s, (struct sockaddr *)&f->addr, &len) != 0)
		goto fail;
	f->thread = peer_thread_start(flip_thread, f);
	if (f->thread == NULL)
		goto fail;
	return f;
fail:
	peer_flip_stop(f);
	return NULL;
}

void peer_flip_stop(struct peer_flip *f)
{
	if (f == NULL)
		return;
	if (f->stop != NULL)
		peer_event_set(f->stop);
	if (f->thread != NULL && !peer_thread_join(f->thread, 10000)) {
		fprintf(stderr, "peer_flip_stop: thread did not stop within "
			"10 s\n");
		return;		/* it still uses f: leave it */
	}
	flip_close(f);
	if (f->stop != NULL)
		peer_event_free(f->stop);
	free(f);
}

/* ---- echo listener and raw sockets (data tests) ----------------------- */

/* Bytes an echo connection reads at once, and holds until sent back. */
#define ECHO_CHUNK 65536

/* One connection of an echo listener; owned by its thread. */
struct peer_echo_conn {
	SOCKET s;			/* INVALID_SOCKET once finished */
	unsigned char *buf;		/* ECHO_CHUNK bytes */
	size_t off, len;		/* buf[off..len) still to send back */
	bool eof;			/* the client's FIN was read */
};

/* Finish connection c: FIN after the echo, or abort on error. */
static void echo_finish(struct peer_echo *p, struct peer_echo_conn *c,
			int err)
{
	if (err == 0)
		shutdown(c->s, PEER_SHUT_WR);
	closesocket(c->s);
	c->s = INVALID_SOCKET;
	free(c->buf);
	c->buf = NULL;
	iocx__mutex_lock(&p->lock);
	if (err == 0) {
		p->done++;
	} else if (p->errors++ == 0) {
		p->first_error = err;
	}
	iocx__mutex_unlock(&p->lock);
	iocx__cond_broadcast(&p->cv);
}

/* Send back what c holds; returns false when c finished with an error. */
static bool echo_flush(struct peer_echo *p, struct peer_echo_conn *c)
{
	while (c->off < c->len) {
		int n = (int)send(c->s, (const char *)c->buf + c->off,
				  (int)(c->len - c->off), 0);

		if (n < 0) {
			int err = peer_sock_errno();

			if (err == PEER_EWOULDBLOCK)
				return true;
			echo_finish(p, c, err);
			return false;
		}
		c->off += (size_t)n;
		iocx__mutex_lock(&p->lock);
		p->echoed += n;
		iocx__mutex_unlock(&p->lock);
	}
	c->off = c->len = 0;
	if (c->eof)
		echo_finish(p, c, 0);
	return true;
}

/* Read one chunk from c and try to send it back at once. */
static void echo_read(struct peer_echo *p, struct peer_echo_conn *c)
{
	int n = (int)recv(c->s, (char *)c->buf, ECHO_CHUNK, 0);

	if (n < 0) {
		int err = peer_sock_errno();

		if (err != PEER_EWOULDBLOCK)
			echo_finish(p, c, err);
		return;
	}
	if (n == 0)
		c->eof = true;
	c->off = 0;
	c->len = (size_t)n;
	echo_flush(p, c);
}

static void echo_accept(struct peer_echo *p)
{
	for (;;) {
		SOCKET s = accept(p->ls, NULL, NULL);
		struct peer_echo_conn *c;

		if (s == INVALID_SOCKET)
			return;
		if (p->nconns == PEER_ECHO_MAX_CONNS) {
			closesocket(s);
			continue;
		}
		peer__set_nonblocking(s);
		c = &p->conns[p->nconns];
		c->buf = malloc(ECHO_CHUNK);
		if (c->buf == NULL) {
			closesocket(s);
			continue;
		}
		c->s = s;
		c->off = c->len = 0;
		c->eof = false;
		p->nconns++;
		iocx__mutex_lock(&p->lock);
		p->accepted++;
		iocx__mutex_unlock(&p->lock);
		iocx__cond_broadcast(&p->cv);
	}
}

/*
 * The echo thread: wait on the listener, on connections with nothing held
 * (to read) and on connections holding bytes (to write).  The 20 ms
 * timeout only bounds how long a stop request waits.
 */
static void echo_thread(void *arg)
{
	struct peer_echo *p = arg;
	/* [0]: the listener, [1 + i]: connection i. */
	SOCKET socks[1 + PEER_ECHO_MAX_CONNS];
	bool write[1 + PEER_ECHO_MAX_CONNS];
	bool ready[1 + PEER_ECHO_MAX_CONNS];

	while (!atomic_load(&p->stop)) {
		size_t i, n = p->nconns;	/* accepts come after */
		int err;

		socks[0] = p->ls;
		write[0] = false;
		for (i = 0; i < n; i++) {
			socks[1 + i] = p->conns[i].s;
			write[1 + i] = p->conns[i].off < p->conns[i].len;
		}
		err = peer__poll(socks, write, ready, 1 + n, 20);
		if (err != 0) {
			p->thread_error = err;
			break;
		}
		if (ready[0])
			echo_accept(p);
		for (i = 0; i < n; i++) {
			struct peer_echo_conn *c = &p->conns[i];

			if (c->s == INVALID_SOCKET || !ready[1 + i])
				continue;
			if (write[1 + i])
				echo_flush(p, c);
			else
				echo_read(p, c);
		}
	}
}

struct peer_echo *peer_echo_listen(int family, const char *ip)
{
	struct peer_echo *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	iocx__mutex_init(&p->lock);
	iocx__cond_init(&p->cv);
	p->conns = calloc(PEER_ECHO_MAX_CONNS, sizeof(*p->conns));
	p->ls = peer_raw_listen(family, ip, &p->addr, &p->addr_len);
	if (p->conns == NULL || p->ls == INVALID_SOCKET)
		goto fail;
	peer__set_nonblocking(p->ls);
	p->thread = peer_thread_start(echo_thread, p);
	if (p->thread == NULL)
		goto fail;
	return p;
fail:
	peer_echo_close(p);
	return NULL;
}

static bool echo_done(struct peer_echo *p, long n)
{
	return p->done >= n;
}

bool peer_echo_wait_done(struct peer_echo *p, long n, unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	bool ok;

	iocx__mutex_lock(&p->lock);
	while (!echo_done(p, n) && left_ms(deadline) > 0)
		iocx__cond_timedwait(&p->cv, &p->lock, left_ms(deadline));
	ok = echo_done(p, n);
	iocx__mutex_unlock(&p->lock);
	return ok;
}

void peer_echo_counts(struct peer_echo *p, long *accepted, long *done,
		      long *errors, long long *echoed)
{
	iocx__mutex_lock(&p->lock);
	if (accepted != NULL)
		*accepted = p->accepted;
	if (done != NULL)
		*done = p->done;
	if (errors != NULL)
		*errors = p->errors;
	if (echoed != NULL)
		*echoed = p->echoed;
	iocx__mutex_unlock(&p->lock);
}

void peer_echo_close(struct peer_echo *p)
{
	size_t i;

	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	if (p->thread != NULL && !peer_thread_join(p->thread, 10000))
		fprintf(stderr, "peer_echo_close: echo thread did not stop "
			"within 10 s\n");
	for (i = 0; p->conns != NULL && i < p->nconns; i++) {
		if (p->conns[i].s != INVALID_SOCKET)
			closesocket(p->conns[i].s);
		free(p->conns[i].buf);
	}
	if (p->ls != INVALID_SOCKET)
		closesocket(p->ls);
	free(p->conns);
	free(p);
}

SOCKET peer_raw_listen(int family, const char *ip,
		       struct sockaddr_storage *addr, int *len)
{
	peer_socklen_t sl;
	SOCKET s;

	*len = peer_addr(addr, family, ip, 0);
	if (*len == 0)
		return INVALID_SOCKET;
	s = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (s == INVALID_SOCKET)
		return INVALID_SOCKET;
	sl = (peer_socklen_t)*len;
	if (bind(s, (struct sockaddr *)addr, sl) != 0 ||
	    getsockname(s, (struct sockaddr *)addr, &sl) != 0 ||
	    listen(s, SOMAXCONN) != 0) {
		closesocket(s);
		return INVALID_SOCKET;
	}
	*len = (int)sl;
	return s;
}

SOCKET peer_raw_accept(SOCKET ls, unsigned timeout_ms)
{
	int err;

	if (poll_one(ls, false, timeout_ms, &err) != 1)
		return INVALID_SOCKET;
	return accept(ls, NULL, NULL);
}

size_t peer_raw_recv(SOCKET s, void *buf, size_t n, unsigned timeout_ms,
		     int *err)
{
	uint64_t deadline = peer_now_ms() + timeout_ms;
	char drop[16384];
	size_t got = 0;

	*err = PEER_ETIMEDOUT;
	while (n == 0 || got < n) {
		unsigned left = left_ms(deadline);
		char *dst = n == 0 ? drop : (char *)buf + got;
		size_t want = n == 0 ? sizeof(drop) : n - got;
		int r;

		if (left == 0)
			return got;
		r = poll_one(s, false, left, err);
		if (r < 0)
			return got;
		*err = PEER_ETIMEDOUT;
		if (r == 0)
			continue;	/* the deadline ends the loop */
		r = (int)recv(s, dst, want > 65536 ? 65536 : (int)want, 0);
		if (r < 0) {
			*err = peer_sock_errno();
			return got;
		}
		if (r == 0) {
			*err = 0;
			return got;
		}
		got += (size_t)r;
	}
	*err = 0;
	return got;
}

void peer_raw_reset(SOCKET s)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof(lg));
	closesocket(s);
}

/* ---- syscall recorder and faults -------------------------------------- */

#define SYS_LOG_CAP 16384

struct peer_faults peer_faults;

static struct peer_sys_event sys_log[SYS_LOG_CAP];
static size_t sys_n;
static bool sys_overflow;

/* See peer_os.h. */
size_t peer__sys_record(enum peer_sys_kind kind, SOCKET s, int level,
			 int name, size_t bytes, int ok, int err)
{
	struct peer_sys_event ev = {
		.kind = kind, .seq = peer_seq(), .s = s, .level = level,
		.name = name, .bytes = bytes, .ok = ok, .err = err,
	};
	size_t i = SYS_LOG_CAP;

	iocx__mutex_lock(&sys_lock);
	if (sys_n < SYS_LOG_CAP) {
		i = sys_n++;
		sys_log[i] = ev;
	} else {
		sys_overflow = true;
	}
	iocx__mutex_unlock(&sys_lock);
	iocx__cond_broadcast(&sys_cv);
	return i;
}

/* See peer_os.h. */
void peer__sys_failed(size_t i, int err)
{
	iocx__mutex_lock(&sys_lock);
	if (i < sys_n) {
		sys_log[i].ok = 0;
		sys_log[i].err = err;
	}
	iocx__mutex_unlock(&sys_lock);
}

/* See peer_os.h. */
int peer__fault(atomic_int *which)
{
	int err = atomic_load(which);

	if (err != 0)
		atomic_fetch_add(&peer_faults.fired, 1);
	return err;
}

/* See peer_os.h. */
int peer__bind_fault(const struct sockaddr *addr)
{
	unsigned ip = atomic_load(&peer_faults.bind_err_ip);
	const struct sockaddr_in *in = (const struct sockaddr_in *)addr;

	if (ip != 0 && (addr->sa_family != AF_INET ||
			in->sin_addr.s_addr != ip))
		return 0;
	return peer__fault(&peer_faults.bind_err);
}

/* See peer_os.h. */
int peer__send_fault(void)
{
	unsigned skip;

	if (atomic_load(&peer_faults.send_err) == 0)
		return 0;
	skip = atomic_load(&peer_faults.send_skip);
	while (skip > 0) {
		if (atomic_compare_exchange_weak(&peer_faults.send_skip, &skip,
						 skip - 1))
			return 0;
	}
	return peer__fault(&peer_faults.send_err);
}

/* See peer_os.h. */
void peer__faults_clear(void)
{
	atomic_store(&peer_faults.socket_err, 0);
	atomic_store(&peer_faults.bind_err, 0);
	atomic_store(&peer_faults.bind_err_ip, 0);
	atomic_store(&peer_faults.connect_err, 0);
	atomic_store(&peer_faults.associate_err, 0);
	atomic_store(&peer_faults.port_err, 0);
	atomic_store(&peer_faults.update_ctx_err, 0);
	atomic_store(&peer_faults.send_err, 0);
	atomic_store(&peer_faults.send_skip, 0);
	atomic_store(&peer_faults.send_max, 0);
	atomic_store(&peer_faults.recv_err, 0);
	atomic_store(&peer_faults.shutdown_err, 0);
	atomic_store(&peer_faults.reset_reject, 0);
	atomic_store(&peer_faults.cancel_err, 0);
	atomic_store(&peer_faults.close_err, 0);
	atomic_store(&peer_faults.post_err, 0);
	atomic_store(&peer_faults.fired, 0);
}

void peer_sys_clear(void)
{
	iocx__mutex_lock(&sys_lock);
	sys_n = 0;
	sys_overflow = false;
	iocx__mutex_unlock(&sys_lock);
}

size_t peer_sys_count(void)
{
	size_t n;

	iocx__mutex_lock(&sys_lock);
	n = sys_n;
	iocx__mutex_unlock(&sys_lock);
	return n;
}

struct peer_sys_event peer_sys_event(size_t i)
{
	struct peer_sys_event ev;

	iocx__mutex_lock(&sys_lock);
	ev = sys_log[i < sys_n ? i : 0];
	iocx__mutex_unlock(&sys_lock);
	return ev;
}

SOCKET peer_sys_socket(size_t nth)
{
	SOCKET s = INVALID_SOCKET;

	iocx__mutex_lock(&sys_lock);
	for (size_t i = 0; i < sys_n; i++) {
		if (sys_log[i].kind == SYS_SOCKET && sys_log[i].ok &&
		    nth-- == 0) {
			s = sys_log[i].s;
			break;
		}
	}
	iocx__mutex_unlock(&sys_lock);
	return s;
}

/* peer_sys_find with sys_lock held. */
static size_t find_locked(enum peer_sys_kind kind, SOCKET s, int level,
			  int name, struct peer_sys_event *first)
{
	size_t n = 0;

	for (size_t i = 0; i < sys_n; i++) {
		const struct peer_sys_event *ev = &sys_log[i];

		if (ev->kind != kind)
			continue;
		if (s != INVALID_SOCKET && ev->s != s)
			continue;
		if (kind == SYS_SETSOCKOPT &&
		    (ev->level != level || ev->name != name))
			continue;
		if (n++ == 0 && first != NULL)
			*first = *ev;
	}
	return n;
}

size_t peer_sys_find(enum peer_sys_kind kind, SOCKET s, int level,
		     int name, struct peer_sys_event *first)
{
	size_t n;

	iocx__mutex_lock(&sys_lock);
	n = find_locked(kind, s, level, name, first);
	iocx__mutex_unlock(&sys_lock);
	return n;
}

/* See peer.h. */
struct peer_sys_event peer_sys_last(enum peer_sys_kind kind, SOCKET s)
{
	struct peer_sys_event ev;

	memset(&ev, 0, sizeof(ev));
	iocx__mutex_lock(&sys_lock);
	for (size_t i = sys_n; i-- > 0;) {
		if (sys_log[i].kind == kind && sys_log[i].s == s) {
			ev = sys_log[i];
			break;
		}
	}
	iocx__mutex_unlock(&sys_lock);
	return ev;
}

/* See peer.h. */
bool peer_sys_wait(enum peer_sys_kind kind, SOCKET s, size_t n,
		   unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms, now;
	bool ok;

	iocx__mutex_lock(&sys_lock);
	while (!(ok = find_locked(kind, s, 0, 0, NULL) >= n) &&
	       (now = peer_now_ms()) < deadline)
		iocx__cond_timedwait(&sys_cv, &sys_lock,
				     (unsigned)(deadline - now));
	iocx__mutex_unlock(&sys_lock);
	return ok;
}

bool peer_sys_overflowed(void)
{
	bool o;

	iocx__mutex_lock(&sys_lock);
	o = sys_overflow;
	iocx__mutex_unlock(&sys_lock);
	return o;
}

#ifdef PEER_PUBLIC_API
/*
 * The test links the public API only (the DLL or the shared library),
 * which exports no syscall table: the per-OS recorders are compiled out,
 * and a case that asks for one must not run in such a build.
 */
void peer_sys_install(void)
{
	fail_msg("the syscall recorder needs the static library "
		 "(built with PEER_PUBLIC_API)");
}

void peer_sys_uninstall(void)
{
}

bool peer_sys_can_inject(void)
{
	return false;
}
#endif
