/*
 * Test peers and helpers for the Windows net tests; contracts in peer.h.
 *
 * Locks: the allocator lock guards cmocka's block list (cmocka's
 * test_malloc is not thread-safe and the library allocates and frees on
 * worker threads); each tracker and each listener has its own SRW lock
 * and condition variable; the syscall log has one lock.  None is held
 * while another is taken, and none is held across a call into iocx.
 */
#define FD_SETSIZE 1024

#include "peer.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "win/sys.h"

/* ---- process ---------------------------------------------------------- */

static DWORD WINAPI watchdog_thread(void *arg)
{
	unsigned seconds = (unsigned)(uintptr_t)arg;
	HANDLE never = CreateEventA(NULL, TRUE, FALSE, NULL);

	/* A timer, not synchronisation: nobody ever signals the event. */
	WaitForSingleObject(never, seconds * 1000u);
	fprintf(stderr, "watchdog: test binary still running after %u s, "
		"terminating\n", seconds);
	fflush(stderr);
	fflush(stdout);
	TerminateProcess(GetCurrentProcess(), 124);
	return 0;
}

void peer_init(unsigned watchdog_s)
{
	WSADATA wsa;
	HANDLE t;
	int rc;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		fprintf(stderr, "WSAStartup failed: %d\n", WSAGetLastError());
		exit(1);
	}
	rc = iocx_set_allocator(peer_test_alloc, peer_test_free);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_set_allocator: %s\n",
			iocx_error_name(rc));
		exit(1);
	}
	t = CreateThread(NULL, 0, watchdog_thread,
			 (void *)(uintptr_t)watchdog_s, 0, NULL);
	if (t == NULL) {
		fprintf(stderr, "watchdog thread: %lu\n", GetLastError());
		exit(1);
	}
	CloseHandle(t);
	if (peer_is_wine())
		printf("running under wine %s\n", peer_wine_version());
}

typedef const char *(CDECL *wine_version_fn)(void);

static wine_version_fn wine_version(void)
{
	HMODULE ntdll = GetModuleHandleA("ntdll.dll");
	FARPROC f;

	if (ntdll == NULL)
		return NULL;
	f = GetProcAddress(ntdll, "wine_get_version");
	/* Cast through void * as FARPROC and data pointers differ in type. */
	return (wine_version_fn)(void (*)(void))f;
}

bool peer_is_wine(void)
{
	return wine_version() != NULL;
}

const char *peer_wine_version(void)
{
	wine_version_fn f = wine_version();

	return f != NULL ? f() : "";
}

unsigned peer_handle_count(void)
{
	DWORD n = 0, flags;
	ULONG_PTR v;
	unsigned live = 0, misses = 0;

	if (GetProcessHandleCount(GetCurrentProcess(), &n) && n != 0)
		return n;
	/*
	 * Wine 8 answers TRUE with 0.  Handles are allocated lowest-free
	 * first, so the table is dense: walk it until 4096 consecutive
	 * values are not handles.
	 */
	for (v = 4; misses < 4096 && v < (1u << 24); v += 4) {
		if (GetHandleInformation((HANDLE)v, &flags)) {
			live++;
			misses = 0;
		} else {
			misses++;
		}
	}
	return live;
}

/* ---- allocator -------------------------------------------------------- */

static SRWLOCK alloc_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE alloc_cv = CONDITION_VARIABLE_INIT;
static long alloc_live;
static long alloc_calls;
static long alloc_fail_at;
static long alloc_failed;

/* The library allocator: cmocka's test_malloc, serialised. */
void *peer_test_alloc(size_t size)
{
	void *p = NULL;

	AcquireSRWLockExclusive(&alloc_lock);
	alloc_calls++;
	if (alloc_fail_at != 0 && alloc_calls == alloc_fail_at) {
		alloc_fail_at = 0;
		alloc_failed++;
	} else {
		p = test_malloc(size);
		if (p != NULL)
			alloc_live++;
	}
	ReleaseSRWLockExclusive(&alloc_lock);
	return p;
}

void peer_test_free(void *ptr)
{
	if (ptr == NULL)
		return;
	AcquireSRWLockExclusive(&alloc_lock);
	test_free(ptr);
	alloc_live--;
	ReleaseSRWLockExclusive(&alloc_lock);
	WakeAllConditionVariable(&alloc_cv);
}

long peer_alloc_live(void)
{
	long n;

	AcquireSRWLockShared(&alloc_lock);
	n = alloc_live;
	ReleaseSRWLockShared(&alloc_lock);
	return n;
}

/* Milliseconds left until deadline (GetTickCount64 based), 0 if past. */
static DWORD left_ms(ULONGLONG deadline)
{
	ULONGLONG now = GetTickCount64();

	return now >= deadline ? 0 : (DWORD)(deadline - now);
}

bool peer_alloc_wait_live(long target, unsigned timeout_ms)
{
	ULONGLONG deadline = GetTickCount64() + timeout_ms;
	bool ok;

	AcquireSRWLockExclusive(&alloc_lock);
	while (alloc_live != target && left_ms(deadline) > 0)
		SleepConditionVariableSRW(&alloc_cv, &alloc_lock,
					  left_ms(deadline), 0);
	ok = alloc_live == target;
	ReleaseSRWLockExclusive(&alloc_lock);
	return ok;
}

void peer_alloc_fail_nth(long n)
{
	AcquireSRWLockExclusive(&alloc_lock);
	alloc_fail_at = n > 0 ? alloc_calls + n : 0;
	ReleaseSRWLockExclusive(&alloc_lock);
}

long peer_alloc_failures(void)
{
	long n;

	AcquireSRWLockShared(&alloc_lock);
	n = alloc_failed;
	ReleaseSRWLockShared(&alloc_lock);
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

uint16_t peer_free_port(int family, const char *ip)
{
	struct sockaddr_storage ss;
	int len = peer_addr(&ss, family, ip, 0);
	SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
	uint16_t port = 0;

	if (s == INVALID_SOCKET)
		return 0;
	if (bind(s, (struct sockaddr *)&ss, len) == 0 &&
	    getsockname(s, (struct sockaddr *)&ss, &len) == 0)
		port = peer_addr_port((struct sockaddr *)&ss);
	closesocket(s);
	return port;
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
	InitializeSRWLock(&t->lock);
	InitializeConditionVariable(&t->cv);
	t->main_thread = GetCurrentThreadId();
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

	AcquireSRWLockExclusive(&t->lock);
	if (t->violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(t->first_violation, sizeof(t->first_violation), fmt,
			  ap);
		va_end(ap);
	}
	ReleaseSRWLockExclusive(&t->lock);
}

/* Checks every callback makes on entry; returns the sequence number. */
static long callback_enter(struct peer_rec *r, iocx_conn *conn,
			   const char *which)
{
	long seq = peer_seq();

	if (atomic_exchange(&r->in_callback, 1) != 0)
		violation(r, "%s ran while another callback of the same "
			  "connection was running", which);
	if (GetCurrentThreadId() == r->trk->main_thread)
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

	AcquireSRWLockExclusive(&t->lock);
	t->connects++;
	if (st <= 0 && st > -IOCX_ERROR_COUNT)
		t->status[-st]++;
	ReleaseSRWLockExclusive(&t->lock);
	if (st > 0 || st <= -IOCX_ERROR_COUNT)
		violation(r, "on_connect status %d is not an iocx code", st);
	WakeAllConditionVariable(&t->cv);
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

	AcquireSRWLockExclusive(&t->lock);
	t->closes++;
	if (reason == IOCX_OK)
		t->reason_ok++;
	else if (reason == IOCX_E_SHUTDOWN)
		t->reason_shutdown++;
	else
		t->reason_other++;
	ReleaseSRWLockExclusive(&t->lock);
	WakeAllConditionVariable(&t->cv);
}

bool peer_wait(struct peer_tracker *t, long connects, long closes,
	       unsigned timeout_ms)
{
	ULONGLONG deadline = GetTickCount64() + timeout_ms;
	bool ok;

	AcquireSRWLockExclusive(&t->lock);
	while ((t->connects < connects || t->closes < closes) &&
	       left_ms(deadline) > 0)
		SleepConditionVariableSRW(&t->cv, &t->lock, left_ms(deadline),
					  0);
	ok = t->connects >= connects && t->closes >= closes;
	ReleaseSRWLockExclusive(&t->lock);
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
	AcquireSRWLockShared(&t->lock);
	*out = *t;
	ReleaseSRWLockShared(&t->lock);
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

/* ---- listeners -------------------------------------------------------- */

/* Connections a PEER_READ listener keeps; the array never moves. */
#define PEER_MAX_READ_CONNS 256

static void set_nonblocking(SOCKET s)
{
	u_long on = 1;

	ioctlsocket(s, FIONBIO, &on);
}

/* Accept everything queued; returns false on a fatal listener error. */
static bool serve_accept(struct peer *p)
{
	for (int i = 0; i < 4096; i++) {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		SOCKET s = accept(p->ls, (struct sockaddr *)&ss, &len);
		struct peer_accepted *a;

		if (s == INVALID_SOCKET) {
			int err = WSAGetLastError();

			if (err == WSAEWOULDBLOCK || err == WSAECONNRESET)
				return true;
			p->thread_error = err;
			return false;
		}
		AcquireSRWLockExclusive(&p->lock);
		if (p->mode == PEER_CLOSE ||
		    p->nconns == PEER_MAX_READ_CONNS) {
			closesocket(s);
		} else {
			set_nonblocking(s);
			a = &p->conns[p->nconns++];
			a->s = s;
			a->addr = ss;
			a->addr_len = len;
		}
		p->accepted++;
		ReleaseSRWLockExclusive(&p->lock);
		WakeAllConditionVariable(&p->cv);
	}
	return true;
}

/* Read what connection a has; marks EOF on FIN or error. */
static void serve_read(struct peer *p, struct peer_accepted *a)
{
	for (int i = 0; i < 1024; i++) {
		char buf[16384];
		int n = recv(a->s, buf, (int)sizeof(buf), 0);
		int err = n < 0 ? WSAGetLastError() : 0;

		if (n < 0 && err == WSAEWOULDBLOCK)
			return;
		AcquireSRWLockExclusive(&p->lock);
		if (n > 0) {
			if (a->len + (size_t)n > a->cap) {
				size_t cap = a->cap ? a->cap : 65536;
				unsigned char *d;

				while (cap < a->len + (size_t)n)
					cap *= 2;
				d = realloc(a->data, cap);
				if (d == NULL) {
					a->error = WSAENOBUFS;
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
		ReleaseSRWLockExclusive(&p->lock);
		WakeAllConditionVariable(&p->cv);
		if (n <= 0)
			return;
	}
}

/*
 * The listener's thread: select() on the listener and on every open
 * accepted connection.  The 20 ms select timeout only bounds how long a
 * stop request waits; nothing is synchronised on it.
 */
static DWORD WINAPI serve_thread(void *arg)
{
	struct peer *p = arg;

	while (!atomic_load(&p->stop)) {
		struct timeval tv = { 0, 20000 };
		fd_set rd;
		size_t i, n;

		FD_ZERO(&rd);
		FD_SET(p->ls, &rd);
		AcquireSRWLockShared(&p->lock);
		n = p->nconns;
		ReleaseSRWLockShared(&p->lock);
		for (i = 0; i < n && rd.fd_count < FD_SETSIZE; i++)
			if (!p->conns[i].eof)
				FD_SET(p->conns[i].s, &rd);
		if (select(0, &rd, NULL, NULL, &tv) == SOCKET_ERROR) {
			p->thread_error = WSAGetLastError();
			break;
		}
		if (FD_ISSET(p->ls, &rd) && !serve_accept(p))
			break;
		for (i = 0; i < n; i++)
			if (!p->conns[i].eof && FD_ISSET(p->conns[i].s, &rd))
				serve_read(p, &p->conns[i]);
	}
	return 0;
}

static struct peer *peer_new(int family, const char *ip, int backlog)
{
	struct peer *p = calloc(1, sizeof(*p));
	int len;

	if (p == NULL)
		return NULL;
	p->family = family;
	p->ls = INVALID_SOCKET;
	InitializeSRWLock(&p->lock);
	InitializeConditionVariable(&p->cv);
	p->conns = calloc(PEER_MAX_READ_CONNS, sizeof(*p->conns));
	if (p->conns == NULL)
		goto fail;
	p->addr_len = peer_addr(&p->addr, family, ip, 0);
	if (p->addr_len == 0)
		goto fail;
	p->ls = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (p->ls == INVALID_SOCKET)
		goto fail;
	if (bind(p->ls, (struct sockaddr *)&p->addr, p->addr_len) != 0)
		goto fail;
	len = p->addr_len;
	if (getsockname(p->ls, (struct sockaddr *)&p->addr, &len) != 0)
		goto fail;
	p->port = peer_addr_port((struct sockaddr *)&p->addr);
	if (listen(p->ls, backlog) != 0)
		goto fail;
	set_nonblocking(p->ls);
	return p;
fail:
	peer_close(p);
	return NULL;
}

void peer_serve(struct peer *p, enum peer_mode mode)
{
	p->mode = mode;
	p->thread = CreateThread(NULL, 0, serve_thread, p, 0, NULL);
}

struct peer *peer_listen(int family, const char *ip, enum peer_mode mode)
{
	struct peer *p = peer_new(family, ip, SOMAXCONN);

	if (p == NULL)
		return NULL;
	peer_serve(p, mode);
	if (p->thread == NULL) {
		peer_close(p);
		return NULL;
	}
	return p;
}

/* Connect one filler and wait (bounded) until the handshake is done. */
static bool add_filler(struct peer *p)
{
	SOCKET s = socket(p->family, SOCK_STREAM, IPPROTO_TCP);
	struct timeval tv = { 2, 0 };
	fd_set wr;

	if (s == INVALID_SOCKET)
		return false;
	p->fillers[p->nfillers++] = s;
	set_nonblocking(s);
	if (connect(s, (struct sockaddr *)&p->addr, p->addr_len) == 0)
		return true;
	if (WSAGetLastError() != WSAEWOULDBLOCK)
		return false;
	FD_ZERO(&wr);
	FD_SET(s, &wr);
	return select(0, NULL, &wr, NULL, &tv) == 1;
}

struct peer *peer_listen_full(int family, const char *ip)
{
	struct peer *p = peer_new(family, ip, 1);

	if (p == NULL)
		return NULL;
	/*
	 * Linux queues backlog + 1 connections (measured under Wine 8:
	 * backlog 1 takes exactly two); every later SYN is dropped.
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

static bool peer_wait_until(struct peer *p, unsigned timeout_ms,
			    bool (*done)(struct peer *, size_t, size_t),
			    size_t a, size_t b)
{
	ULONGLONG deadline = GetTickCount64() + timeout_ms;
	bool ok;

	AcquireSRWLockExclusive(&p->lock);
	while (!done(p, a, b) && left_ms(deadline) > 0)
		SleepConditionVariableSRW(&p->cv, &p->lock, left_ms(deadline),
					  0);
	ok = done(p, a, b);
	ReleaseSRWLockExclusive(&p->lock);
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
	if (p->thread != NULL) {
		if (WaitForSingleObject(p->thread, 10000) != WAIT_OBJECT_0)
			fprintf(stderr, "peer_close: serving thread did not "
				"stop within 10 s\n");
		CloseHandle(p->thread);
	}
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
		shutdown(c->s, SD_SEND);
	closesocket(c->s);
	c->s = INVALID_SOCKET;
	free(c->buf);
	c->buf = NULL;
	AcquireSRWLockExclusive(&p->lock);
	if (err == 0) {
		p->done++;
	} else if (p->errors++ == 0) {
		p->first_error = err;
	}
	ReleaseSRWLockExclusive(&p->lock);
	WakeAllConditionVariable(&p->cv);
}

/* Send back what c holds; returns false when c finished with an error. */
static bool echo_flush(struct peer_echo *p, struct peer_echo_conn *c)
{
	while (c->off < c->len) {
		int n = send(c->s, (const char *)c->buf + c->off,
			     (int)(c->len - c->off), 0);

		if (n < 0) {
			int err = WSAGetLastError();

			if (err == WSAEWOULDBLOCK)
				return true;
			echo_finish(p, c, err);
			return false;
		}
		c->off += (size_t)n;
		AcquireSRWLockExclusive(&p->lock);
		p->echoed += n;
		ReleaseSRWLockExclusive(&p->lock);
	}
	c->off = c->len = 0;
	if (c->eof)
		echo_finish(p, c, 0);
	return true;
}

/* Read one chunk from c and try to send it back at once. */
static void echo_read(struct peer_echo *p, struct peer_echo_conn *c)
{
	int n = recv(c->s, (char *)c->buf, ECHO_CHUNK, 0);

	if (n < 0) {
		int err = WSAGetLastError();

		if (err != WSAEWOULDBLOCK)
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
		set_nonblocking(s);
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
		AcquireSRWLockExclusive(&p->lock);
		p->accepted++;
		ReleaseSRWLockExclusive(&p->lock);
		WakeAllConditionVariable(&p->cv);
	}
}

/*
 * The echo thread: select() on the listener, on connections with nothing
 * held (to read) and on connections holding bytes (to write).  The 20 ms
 * timeout only bounds how long a stop request waits.
 */
static DWORD WINAPI echo_thread(void *arg)
{
	struct peer_echo *p = arg;

	while (!atomic_load(&p->stop)) {
		struct timeval tv = { 0, 20000 };
		fd_set rd, wr;
		size_t i;

		FD_ZERO(&rd);
		FD_ZERO(&wr);
		FD_SET(p->ls, &rd);
		for (i = 0; i < p->nconns; i++) {
			struct peer_echo_conn *c = &p->conns[i];

			if (c->s == INVALID_SOCKET)
				continue;
			if (c->off < c->len)
				FD_SET(c->s, &wr);
			else
				FD_SET(c->s, &rd);
		}
		if (select(0, &rd, &wr, NULL, &tv) == SOCKET_ERROR) {
			p->thread_error = WSAGetLastError();
			break;
		}
		if (FD_ISSET(p->ls, &rd))
			echo_accept(p);
		for (i = 0; i < p->nconns; i++) {
			struct peer_echo_conn *c = &p->conns[i];

			if (c->s == INVALID_SOCKET)
				continue;
			if (FD_ISSET(c->s, &wr))
				echo_flush(p, c);
			else if (FD_ISSET(c->s, &rd))
				echo_read(p, c);
		}
	}
	return 0;
}

struct peer_echo *peer_echo_listen(int family, const char *ip)
{
	struct peer_echo *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	InitializeSRWLock(&p->lock);
	InitializeConditionVariable(&p->cv);
	p->conns = calloc(PEER_ECHO_MAX_CONNS, sizeof(*p->conns));
	p->ls = peer_raw_listen(family, ip, &p->addr, &p->addr_len);
	if (p->conns == NULL || p->ls == INVALID_SOCKET)
		goto fail;
	set_nonblocking(p->ls);
	p->thread = CreateThread(NULL, 0, echo_thread, p, 0, NULL);
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
	ULONGLONG deadline = GetTickCount64() + timeout_ms;
	bool ok;

	AcquireSRWLockExclusive(&p->lock);
	while (!echo_done(p, n) && left_ms(deadline) > 0)
		SleepConditionVariableSRW(&p->cv, &p->lock, left_ms(deadline),
					  0);
	ok = echo_done(p, n);
	ReleaseSRWLockExclusive(&p->lock);
	return ok;
}

void peer_echo_counts(struct peer_echo *p, long *accepted, long *done,
		      long *errors, long long *echoed)
{
	AcquireSRWLockShared(&p->lock);
	if (accepted != NULL)
		*accepted = p->accepted;
	if (done != NULL)
		*done = p->done;
	if (errors != NULL)
		*errors = p->errors;
	if (echoed != NULL)
		*echoed = p->echoed;
	ReleaseSRWLockShared(&p->lock);
}

void peer_echo_close(struct peer_echo *p)
{
	size_t i;

	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	if (p->thread != NULL) {
		if (WaitForSingleObject(p->thread, 10000) != WAIT_OBJECT_0)
			fprintf(stderr, "peer_echo_close: echo thread did not "
				"stop within 10 s\n");
		CloseHandle(p->thread);
	}
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
	SOCKET s;

	*len = peer_addr(addr, family, ip, 0);
	if (*len == 0)
		return INVALID_SOCKET;
	s = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (s == INVALID_SOCKET)
		return INVALID_SOCKET;
	if (bind(s, (struct sockaddr *)addr, *len) != 0 ||
	    getsockname(s, (struct sockaddr *)addr, len) != 0 ||
	    listen(s, SOMAXCONN) != 0) {
		closesocket(s);
		return INVALID_SOCKET;
	}
	return s;
}

SOCKET peer_raw_accept(SOCKET ls, unsigned timeout_ms)
{
	struct timeval tv = { (long)(timeout_ms / 1000),
			      (long)(timeout_ms % 1000) * 1000 };
	fd_set rd;

	FD_ZERO(&rd);
	FD_SET(ls, &rd);
	if (select(0, &rd, NULL, NULL, &tv) != 1)
		return INVALID_SOCKET;
	return accept(ls, NULL, NULL);
}

size_t peer_raw_recv(SOCKET s, void *buf, size_t n, unsigned timeout_ms,
		     int *err)
{
	ULONGLONG deadline = GetTickCount64() + timeout_ms;
	char drop[16384];
	size_t got = 0;

	*err = WSAETIMEDOUT;
	while (n == 0 || got < n) {
		DWORD left = left_ms(deadline);
		struct timeval tv = { (long)(left / 1000),
				      (long)(left % 1000) * 1000 };
		char *dst = n == 0 ? drop : (char *)buf + got;
		size_t want = n == 0 ? sizeof(drop) : n - got;
		fd_set rd;
		int r;

		if (left == 0)
			return got;
		FD_ZERO(&rd);
		FD_SET(s, &rd);
		r = select(0, &rd, NULL, NULL, &tv);
		if (r == SOCKET_ERROR) {
			*err = WSAGetLastError();
			return got;
		}
		if (r == 0)
			continue;	/* the deadline ends the loop */
		r = recv(s, dst, want > 65536 ? 65536 : (int)want, 0);
		if (r < 0) {
			*err = WSAGetLastError();
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

static SRWLOCK sys_lock = SRWLOCK_INIT;
static struct peer_sys_event sys_log[SYS_LOG_CAP];
static size_t sys_n;
static bool sys_overflow;
static struct iocx_win_sys sys_real;

/* Append an event; returns its index (SYS_LOG_CAP when it was lost). */
static size_t sys_record(enum peer_sys_kind kind, SOCKET s, int level,
			 int name, size_t bytes, int ok, int err)
{
	struct peer_sys_event ev = {
		.kind = kind, .seq = peer_seq(), .s = s, .level = level,
		.name = name, .bytes = bytes, .ok = ok, .err = err,
	};
	size_t i = SYS_LOG_CAP;

	AcquireSRWLockExclusive(&sys_lock);
	if (sys_n < SYS_LOG_CAP) {
		i = sys_n++;
		sys_log[i] = ev;
	} else {
		sys_overflow = true;
	}
	ReleaseSRWLockExclusive(&sys_lock);
	return i;
}

/* Mark event i, recorded before its call, as failed synchronously. */
static void sys_failed(size_t i, int err)
{
	AcquireSRWLockExclusive(&sys_lock);
	if (i < sys_n) {
		sys_log[i].ok = 0;
		sys_log[i].err = err;
	}
	ReleaseSRWLockExclusive(&sys_lock);
}

/* Take an armed fault: returns its error and counts it, or 0. */
static int fault(atomic_int *which)
{
	int err = atomic_load(which);

	if (err != 0)
		atomic_fetch_add(&peer_faults.fired, 1);
	return err;
}

static SOCKET WSAAPI w_socket(int af, int type, int protocol,
			      LPWSAPROTOCOL_INFOW info, GROUP g, DWORD flags)
{
	int err = fault(&peer_faults.socket_err);
	SOCKET s;

	if (err != 0) {
		sys_record(SYS_SOCKET, INVALID_SOCKET, 0, 0, 0, 0, err);
		WSASetLastError(err);
		return INVALID_SOCKET;
	}
	s = sys_real.wsa_socket(af, type, protocol, info, g, flags);
	err = s == INVALID_SOCKET ? WSAGetLastError() : 0;
	sys_record(SYS_SOCKET, s, af, type, 0, s != INVALID_SOCKET, err);
	WSASetLastError(err);
	return s;
}

static int WSAAPI w_bind(SOCKET s, const struct sockaddr *name, int len)
{
	int err = fault(&peer_faults.bind_err);
	int rc;

	if (err != 0) {
		sys_record(SYS_BIND, s, 0, 0, 0, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	rc = sys_real.bind(s, name, len);
	err = rc != 0 ? WSAGetLastError() : 0;
	sys_record(SYS_BIND, s, 0, 0, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_setsockopt(SOCKET s, int level, int name,
			       const char *val, int len)
{
	int err = 0, rc;

	if (level == SOL_SOCKET && name == SO_UPDATE_CONNECT_CONTEXT)
		err = fault(&peer_faults.update_ctx_err);
	if (err != 0) {
		sys_record(SYS_SETSOCKOPT, s, level, name, 0, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	rc = sys_real.setsockopt(s, level, name, val, len);
	err = rc != 0 ? WSAGetLastError() : 0;
	sys_record(SYS_SETSOCKOPT, s, level, name, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_closesocket(SOCKET s)
{
	int rc = sys_real.closesocket(s);
	int err = rc != 0 ? WSAGetLastError() : 0;

	sys_record(SYS_CLOSESOCKET, s, 0, 0, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

/* The real ConnectEx of s's provider, loaded on every call (tests only). */
static LPFN_CONNECTEX real_connectex(SOCKET s)
{
	GUID guid = WSAID_CONNECTEX;
	LPFN_CONNECTEX fn = NULL;
	DWORD got = 0;

	if (sys_real.wsa_ioctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid,
			       sizeof(guid), &fn, sizeof(fn), &got, NULL,
			       NULL) != 0)
		return NULL;
	return fn;
}

static BOOL PASCAL w_connectex(SOCKET s, const struct sockaddr *name,
			       int namelen, PVOID buf, DWORD len, LPDWORD sent,
			       LPOVERLAPPED ov)
{
	int err = fault(&peer_faults.connectex_err);
	LPFN_CONNECTEX fn = NULL;
	size_t i;
	BOOL ok;

	if (err == 0 && (fn = real_connectex(s)) == NULL)
		err = WSAGetLastError();
	if (err != 0) {
		sys_record(SYS_CONNECTEX, s, 0, 0, len, 0, err);
		WSASetLastError(err);
		return FALSE;
	}
	/*
	 * Record before the call: its completion may be dequeued (and the
	 * callback run) before ConnectEx returns here.
	 */
	i = sys_record(SYS_CONNECTEX, s, 0, 0, len, 1, 0);
	ok = fn(s, name, namelen, buf, len, sent, ov);
	err = ok ? 0 : WSAGetLastError();
	if (!ok && err != WSA_IO_PENDING)
		sys_failed(i, err);
	WSASetLastError(err);
	return ok;
}

static int WSAAPI w_send(SOCKET s, LPWSABUF bufs, DWORD count, LPDWORD sent,
			 DWORD flags, LPWSAOVERLAPPED ov,
			 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	int err = fault(&peer_faults.send_err);
	unsigned max = atomic_load(&peer_faults.send_max);
	WSABUF cut[16];
	size_t total = 0, i;
	int rc;

	for (i = 0; i < count; i++)
		total += bufs[i].len;
	if (err != 0) {
		sys_record(SYS_SEND, s, 0, 0, total, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	if (max != 0 && total > max && count <= 16) {
		/* Offer at most max bytes: the OS then completes a part. */
		size_t left = max;

		for (i = 0; i < count; i++) {
			cut[i] = bufs[i];
			if (cut[i].len > left)
				cut[i].len = (ULONG)left;
			left -= cut[i].len;
		}
		atomic_fetch_add(&peer_faults.fired, 1);
		bufs = cut;
		total = max;
	}
	i = sys_record(SYS_SEND, s, 0, 0, total, 1, 0);
	rc = sys_real.wsa_send(s, bufs, count, sent, flags, ov, routine);
	err = rc != 0 ? WSAGetLastError() : 0;
	if (rc != 0 && err != WSA_IO_PENDING)
		sys_failed(i, err);
	WSASetLastError(err);
	return rc;
}

static HANDLE WINAPI w_iocp(HANDLE file, HANDLE port, ULONG_PTR key,
			    DWORD threads)
{
	bool assoc = file != INVALID_HANDLE_VALUE;
	int err = fault(assoc ? &peer_faults.associate_err
			      : &peer_faults.port_err);
	HANDLE h;

	if (err != 0) {
		if (assoc)
			sys_record(SYS_ASSOCIATE, (SOCKET)file, 0, 0, 0, 0,
				   err);
		SetLastError((DWORD)err);
		return NULL;
	}
	h = sys_real.create_io_completion_port(file, port, key, threads);
	err = h == NULL ? (int)GetLastError() : 0;
	if (assoc)
		sys_record(SYS_ASSOCIATE, (SOCKET)file, 0, 0, 0, h != NULL,
			   err);
	SetLastError((DWORD)err);
	return h;
}

static BOOL WINAPI w_cancel(HANDLE file, LPOVERLAPPED ov)
{
	BOOL ok = sys_real.cancel_io_ex(file, ov);
	DWORD err = ok ? 0 : GetLastError();

	sys_record(SYS_CANCEL, (SOCKET)file, 0, 0, 0, ok, (int)err);
	SetLastError(err);
	return ok;
}

void peer_sys_install(void)
{
	iocx__win_sys_reset();
	sys_real = iocx__win_sys;
	peer_sys_clear();
	atomic_store(&peer_faults.socket_err, 0);
	atomic_store(&peer_faults.bind_err, 0);
	atomic_store(&peer_faults.connectex_err, 0);
	atomic_store(&peer_faults.associate_err, 0);
	atomic_store(&peer_faults.port_err, 0);
	atomic_store(&peer_faults.update_ctx_err, 0);
	atomic_store(&peer_faults.send_err, 0);
	atomic_store(&peer_faults.send_max, 0);
	atomic_store(&peer_faults.fired, 0);
	iocx__win_sys.wsa_socket = w_socket;
	iocx__win_sys.bind = w_bind;
	iocx__win_sys.setsockopt = w_setsockopt;
	iocx__win_sys.closesocket = w_closesocket;
	iocx__win_sys.connectex = w_connectex;
	iocx__win_sys.wsa_send = w_send;
	iocx__win_sys.create_io_completion_port = w_iocp;
	iocx__win_sys.cancel_io_ex = w_cancel;
}

void peer_sys_clear(void)
{
	AcquireSRWLockExclusive(&sys_lock);
	sys_n = 0;
	sys_overflow = false;
	ReleaseSRWLockExclusive(&sys_lock);
}

void peer_sys_uninstall(void)
{
	iocx__win_sys_reset();
}

size_t peer_sys_count(void)
{
	size_t n;

	AcquireSRWLockShared(&sys_lock);
	n = sys_n;
	ReleaseSRWLockShared(&sys_lock);
	return n;
}

struct peer_sys_event peer_sys_event(size_t i)
{
	struct peer_sys_event ev;

	AcquireSRWLockShared(&sys_lock);
	ev = sys_log[i < sys_n ? i : 0];
	ReleaseSRWLockShared(&sys_lock);
	return ev;
}

SOCKET peer_sys_socket(size_t nth)
{
	SOCKET s = INVALID_SOCKET;

	AcquireSRWLockShared(&sys_lock);
	for (size_t i = 0; i < sys_n; i++) {
		if (sys_log[i].kind == SYS_SOCKET && sys_log[i].ok &&
		    nth-- == 0) {
			s = sys_log[i].s;
			break;
		}
	}
	ReleaseSRWLockShared(&sys_lock);
	return s;
}

size_t peer_sys_find(enum peer_sys_kind kind, SOCKET s, int level,
		     int name, struct peer_sys_event *first)
{
	size_t n = 0;

	AcquireSRWLockShared(&sys_lock);
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
	ReleaseSRWLockShared(&sys_lock);
	return n;
}

bool peer_sys_overflowed(void)
{
	bool o;

	AcquireSRWLockShared(&sys_lock);
	o = sys_overflow;
	ReleaseSRWLockShared(&sys_lock);
	return o;
}
