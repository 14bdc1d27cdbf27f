/*
 * libFuzzer target: iocx_connect() request validation and
 * iocx_engine_create() options validation, on a real engine.
 *
 * The first input byte picks the function; the rest is read field by
 * field (a missing byte reads as 0) into a request or an options struct.
 * An oracle lists every documented rule (include/iocx.h) the input
 * breaks; then:
 *  - a rejected input returned one of the codes of the rules it breaks,
 *    left *out untouched, ran no callback and kept no memory;
 *  - an accepted input broke no rule and finishes cleanly: exactly one
 *    on_connect, then exactly one on_close with the expected reason, no
 *    IOCX_E_CANCELLED unless the fuzzer closed the connection early,
 *    every block the library took given back; an accepted engine has
 *    the backend and worker count asked for and is destroyed cleanly.
 * A broken promise aborts, which libFuzzer reports with the input.
 *
 * Traffic stays on loopback and on sockets this process owns: a remote
 * IPv4 address is 127.0.0.1 or 0.0.0.0, an IPv6 one ::1 or unspecified,
 * and its port is 0, a listener of ours (accepts and closes) or a socket
 * of ours bound but not listening (refuses).  Retries, backoffs and
 * deadlines are kept small, or the connection is closed as soon as
 * iocx_connect() returns, so that each input ends within milliseconds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iocx.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Longest wait for an accepted connect or engine to finish. */
#define WAIT_MS 10000
/* Largest payload built from a length the input picks (above it: only
 * IOCX_MAX_PAYLOAD itself, and lengths that must be refused). */
#define SMALL_PAYLOAD 4096

/* ---- the input ------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct input *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t u16(struct input *in)
{
	return (uint16_t)(u8(in) | u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
	return (uint32_t)u16(in) | (uint32_t)u16(in) << 16;
}

/* ---- allocator and clock ---------------------------------------------- */

static atomic_long live;

static void *count_alloc(size_t size)
{
	void *p = malloc(size);

	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

static void count_free(void *p)
{
	if (p)
		atomic_fetch_sub(&live, 1);
	free(p);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The engine frees a handle once its on_close has returned and it was
 * released (on the worker, when that comes last): wait (bounded) until
 * the library holds target blocks again.
 */
static bool wait_live(long target)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (atomic_load(&live) != target) {
		if (now_ms() > end)
			return false;
		sched_yield();
	}
	return true;
}

/* ---- loopback targets ------------------------------------------------- */

struct target {
	int family;
	int listener;		/* accepts and closes; -1 if none */
	int refuser;		/* bound, not listening; -1 if none */
	uint16_t listen_port;	/* network order */
	uint16_t refuse_port;
};

static struct target targets[2];	/* [0] IPv4, [1] IPv6 */
static iocx_engine *engine;

static int loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (void *)ss;

	in6->sin6_family = AF_INET6;
	in6->sin6_addr = in6addr_loopback;
	return sizeof(*in6);
}

/* A socket bound to loopback port 0; its port (network order) in *port. */
static int bound_socket(int family, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = (socklen_t)loopback(family, &ss);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	if (bind(s, (void *)&ss, len) || getsockname(s, (void *)&ss, &len)) {
		close(s);
		return -1;
	}
	*port = family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
				  : ((struct sockaddr_in6 *)(void *)&ss)
					    ->sin6_port;
	return s;
}

/* Accept and close, for as long as the process lives. */
static void *accept_loop(void *arg)
{
	struct target *t = arg;

	for (;;) {
		int c = accept(t->listener, NULL, NULL);

		if (c >= 0)
			close(c);
	}
	return NULL;
}

static void target_start(struct target *t, int family)
{
	pthread_t th;

	t->family = family;
	t->refuser = bound_socket(family, &t->refuse_port);
	t->listener = bound_socket(family, &t->listen_port);
	if (t->listener >= 0 && (listen(t->listener, 4096) ||
				 pthread_create(&th, NULL, accept_loop, t))) {
		close(t->listener);
		t->listener = -1;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct iocx_engine_options o;

	(void)argc;
	(void)argv;
	CHECK(iocx_set_allocator(count_alloc, count_free) == IOCX_OK);
	target_start(&targets[0], AF_INET);
	target_start(&targets[1], AF_INET6);
	CHECK(targets[0].listener >= 0 && targets[0].refuser >= 0);
	iocx_engine_options_init(&o);
	o.workers = 2;
	CHECK(iocx_engine_create(&o, &engine) == IOCX_OK);
	return 0;
}

/* ---- the request ------------------------------------------------------ */

/* What the callbacks saw of one connection. */
struct rec {
	atomic_int connects;
	atomic_int closes;
	atomic_int in_callback;
	atomic_bool close_before_connect;
	atomic_bool overlap;
	int status;
	int reason;
	bool close_in_connect;	/* on_connect releases the connection */
	bool idle;		/* ... unless it is open with an idle watchdog */
	int close_mode;
};

static void enter(struct rec *r)
{
	if (atomic_fetch_add(&r->in_callback, 1) != 0)
		atomic_store(&r->overlap, true);
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *res,
		       void *user)
{
	struct rec *r = user;

	enter(r);
	r->status = res->status;
	if (r->close_in_connect && !(r->idle && res->status == IOCX_OK))
		CHECK(iocx_close(conn, r->close_mode) == IOCX_OK);
	atomic_fetch_sub(&r->in_callback, 1);
	atomic_fetch_add(&r->connects, 1);
}

static void on_close(iocx_conn *conn, int reason, void *user)
{
	struct rec *r = user;

	enter(r);
	if (atomic_load(&r->connects) == 0)
		atomic_store(&r->close_before_connect, true);
	r->reason = reason;
	/* The idle watchdog closed it: the handle waits for its release. */
	if (reason != IOCX_OK)
		CHECK(iocx_close(conn, r->close_mode) == IOCX_OK);
	atomic_fetch_sub(&r->in_callback, 1);
	atomic_fetch_add(&r->closes, 1);
}

/* Bit of the rule an input breaks, by the code it must be rejected with. */
enum {
	BAD_INVAL = 1 << 0,
	BAD_AFNOSUPPORT = 1 << 1,
	BAD_ADDRLEN = 1 << 2,
	BAD_ADDRNOTAVAIL = 1 << 3,
	BAD_MSGSIZE = 1 << 4,
	BAD_NOTSUP = 1 << 5,
};

static unsigned bad_bit(int rc)
{
	switch (rc) {
	case IOCX_E_INVAL: return BAD_INVAL;
	case IOCX_E_AFNOSUPPORT: return BAD_AFNOSUPPORT;
	case IOCX_E_ADDRLEN: return BAD_ADDRLEN;
	case IOCX_E_ADDRNOTAVAIL: return BAD_ADDRNOTAVAIL;
	case IOCX_E_MSGSIZE: return BAD_MSGSIZE;
	case IOCX_E_NOTSUP: return BAD_NOTSUP;
	default: return 0;
	}
}

static bool is_inet(int family)
{
	return family == AF_INET || family == AF_INET6;
}

/*
 * An address into *ss from the input: a family (IPv4, IPv6 or any
 * number), a loopback or unspecified host, and for a remote address a
 * port of ours or 0; a local one always has port 0.  Returns what the
 * oracle says of it (as for the remote; the caller adjusts for a local).
 */
static unsigned make_addr(struct input *in, struct sockaddr_storage *ss,
			  size_t *len, bool remote)
{
	uint8_t fam = u8(in), host = u8(in), port = u8(in);
	int family = fam % 4 == 0 ? AF_INET : fam % 4 == 1 ? AF_INET6 : -1;
	const struct target *t;
	uint16_t p = 0;
	unsigned bad = 0;

	if (family < 0)
		family = u16(in);
	*len = u8(in) % 4 ? (family == AF_INET6 ? sizeof(struct sockaddr_in6)
						: sizeof(struct sockaddr_in))
			  : u8(in) % (sizeof(*ss) + 1);
	memset(ss, 0, sizeof(*ss));
	if (is_inet(family)) {
		loopback(family, ss);
		t = &targets[family == AF_INET6];
		if (remote && port % 3 == 1 && t->listener >= 0)
			p = t->listen_port;
		else if (remote && port % 3 == 2 && t->refuser >= 0)
			p = t->refuse_port;
		else if (remote && port % 3 != 0)
			p = targets[0].refuse_port;	/* nothing of ours */
		if (family == AF_INET6)
			((struct sockaddr_in6 *)(void *)ss)->sin6_port = p;
		else
			((struct sockaddr_in *)(void *)ss)->sin_port = p;
		if (host % 4 == 0) {
			if (family == AF_INET6)
				memset(&((struct sockaddr_in6 *)(void *)ss)
						->sin6_addr, 0, 16);
			else
				((struct sockaddr_in *)(void *)ss)
					->sin_addr.s_addr = 0;
		}
		if (*len < (family == AF_INET6 ? sizeof(struct sockaddr_in6)
					       : sizeof(struct sockaddr_in)))
			bad |= BAD_ADDRLEN;
		else if (remote && (p == 0 || host % 4 == 0))
			bad |= BAD_ADDRNOTAVAIL;
	} else {
		ss->ss_family = (sa_family_t)family;
		bad |= BAD_AFNOSUPPORT;
	}
	if (*len < sizeof(sa_family_t))
		bad = BAD_ADDRLEN;
	return bad;
}

/* A copy of len bytes of ss in a block of exactly that size, so that
 * ASan sees any read past what the caller said it passed. */
static struct sockaddr *exact(const struct sockaddr_storage *ss, size_t len)
{
	void *p = malloc(len ? len : 1);

	CHECK(p);
	memcpy(p, ss, len);
	return p;
}

static void fuzz_connect(struct input *in)
{
	struct iocx_connect_request req;
	struct sockaddr_storage rss, lss;
	struct sockaddr *remote = NULL, *local = NULL;
	size_t rlen, llen;
	unsigned char *payload = NULL;
	iocx_conn *const sentinel = (iocx_conn *)(uintptr_t)0x5a5a5a5a;
	iocx_conn *conn = sentinel;
	struct rec r;
	unsigned bad = 0, lbad, sel;
	bool close_now;
	long live0 = atomic_load(&live);
	uint64_t end;
	int rc;

	memset(&req, 0, sizeof(req));
	memset(&r, 0, sizeof(r));

	sel = u8(in);
	bad |= make_addr(in, &rss, &rlen, true);
	remote = exact(&rss, rlen);
	if (sel & 1) {
		req.remote = remote;
		req.remote_len = rlen;
	} else {
		bad = BAD_INVAL;
	}
	if (sel & 2) {
		lbad = make_addr(in, &lss, &llen, false);
		local = exact(&lss, llen);
		req.local = local;
		req.local_len = llen;
		if (!lbad && is_inet(rss.ss_family) &&
		    lss.ss_family != rss.ss_family)
			lbad = BAD_AFNOSUPPORT;
		if (!(bad & (BAD_ADDRLEN | BAD_AFNOSUPPORT)))
			bad |= lbad;	/* a bad remote is looked at first */
	}

	sel = u8(in);
	switch (sel % 8) {
	case 0:
		req.payload_len = 0;
		break;
	case 1:
		req.payload_len = IOCX_MAX_PAYLOAD;
		break;
	case 2:
		req.payload_len = IOCX_MAX_PAYLOAD + 1 + u16(in);
		break;
	case 3:
		req.payload_len = SIZE_MAX - u8(in);
		break;
	default:
		req.payload_len = u16(in) % SMALL_PAYLOAD + 1;
		break;
	}
	if (req.payload_len > IOCX_MAX_PAYLOAD)
		bad |= BAD_MSGSIZE;
	/* A payload that must be refused gets a one-byte buffer: a library
	 * that read it would overflow. */
	payload = malloc(req.payload_len <= IOCX_MAX_PAYLOAD
				 ? req.payload_len + 1 : 1);
	CHECK(payload);
	if (req.payload_len <= IOCX_MAX_PAYLOAD)
		memset(payload, 'p', req.payload_len);
	req.payload = sel & 8 ? NULL : payload;
	if (!req.payload && req.payload_len)
		bad |= BAD_INVAL;
	req.payload_ownership = (enum iocx_payload_ownership)(u8(in) % 5);
	if (req.payload_ownership > IOCX_PAYLOAD_BORROW)
		bad |= BAD_INVAL;
	sel = u8(in);
	req.flags = sel & 0x80 ? u32(in) : sel & 1;
	if (req.flags & ~(unsigned)IOCX_CONNECT_FASTOPEN)
		bad |= BAD_INVAL;
	req.on_connect = sel & 0x40 ? NULL : on_connect;
	if (!req.on_connect)
		bad |= BAD_INVAL;
	req.on_close = sel & 0x20 ? NULL : on_close;
	req.user = &r;
	if (sel & 0x10) {
		/* A field of a later version of the struct. */
		req.reserved[u8(in) % NELEM(req.reserved)] = 1 + u8(in);
		bad |= BAD_INVAL;
	}

	/* Bounded: a few attempts, short backoffs and deadlines. */
	sel = u8(in);
	req.retry.max_attempts = sel & 0x80 ? u16(in) : sel % 4;
	if (req.retry.max_attempts > IOCX_MAX_ATTEMPTS)
		bad |= BAD_INVAL;
	req.retry.backoff_initial_ms = u8(in) % 8;
	req.retry.backoff_max_ms = sel & 0x40 ? u32(in) : u8(in) % 16;
	if (req.retry.backoff_initial_ms == 0 && req.retry.backoff_max_ms == 0)
		req.retry.backoff_initial_ms = 1;	/* not 100 ms */
	if (req.retry.backoff_max_ms &&
	    req.retry.backoff_initial_ms > req.retry.backoff_max_ms)
		bad |= BAD_INVAL;
	req.deadline_ms = u16(in) % 300;
	req.syn_rtt_ms = u16(in);
	req.syn_retransmissions = u8(in);
	if (req.syn_retransmissions == 254)
		bad |= BAD_INVAL;

	/* Close right after iocx_connect() returns, or from on_connect
	 * (where an open connection with an idle watchdog is left to it). */
	sel = u8(in);
	/* A retry policy that may run for long is cut short by a close. */
	close_now = sel & 1 || req.retry.max_attempts > 4 ||
		    req.retry.backoff_max_ms > 16;
	r.close_mode = sel & 2 ? IOCX_CLOSE_ABORT : IOCX_CLOSE_GRACEFUL;
	r.close_in_connect = !close_now;
	req.idle_ms = close_now ? 0 : u8(in) % 32;
	r.idle = req.idle_ms != 0;
	if (!req.on_close)
		r.idle = false;		/* keep on_close to see the end */
	if (r.idle)
		req.idle_ms = req.idle_ms ? req.idle_ms : 1;
	else
		req.idle_ms = 0;

	/* Without *out only when the fuzzer needs no handle. */
	rc = iocx_connect(engine, &req, sel & 4 && !close_now ? NULL : &conn);
	if (rc != IOCX_OK) {
		CHECK(rc < 0);
		/* Rejected for a rule it breaks, or by the socket set-up. */
		CHECK(!bad || (bad_bit(rc) & bad));
		CHECK(bad || rc == IOCX_E_ADDRINUSE || rc == IOCX_E_NOFILE ||
		      rc == IOCX_E_PORTS_EXHAUSTED || rc == IOCX_E_REFUSED ||
		      rc == IOCX_E_AFNOSUPPORT || rc == IOCX_E_NOMEM);
		CHECK(conn == sentinel);
		CHECK(atomic_load(&r.connects) == 0);
		CHECK(atomic_load(&r.closes) == 0);
		CHECK(atomic_load(&live) == live0);
		goto out;
	}
	CHECK(!bad);
	CHECK((sel & 4 && !close_now) || conn != sentinel);
	if (close_now)
		CHECK(iocx_close(conn, r.close_mode) == IOCX_OK);
	/* Every connect ends: wait for the engine to go idle. */
	CHECK(iocx_engine_wait_idle(engine, WAIT_MS) == IOCX_OK);
	end = now_ms() + WAIT_MS;
	while (atomic_load(&r.connects) != 1 ||
	       (req.on_close && atomic_load(&r.closes) != 1)) {
		CHECK(now_ms() < end);
		sched_yield();
	}
	CHECK(!atomic_load(&r.overlap));
	CHECK(!atomic_load(&r.close_before_connect));
	CHECK(r.status <= 0);
	CHECK(close_now || r.status != IOCX_E_CANCELLED);
	if (req.on_close)
		CHECK(r.reason == IOCX_OK ||
		      (r.reason == IOCX_E_IDLE && r.idle &&
		       r.status == IOCX_OK));
	CHECK(wait_live(live0));
	CHECK(atomic_load(&r.connects) == 1);
	CHECK(atomic_load(&r.closes) == (req.on_close ? 1 : 0));
out:
	free(payload);
	free(remote);
	free(local);
}

/* ---- the options ------------------------------------------------------ */

static const char *const backends[] = {
	NULL, "auto", "epoll", "io_uring", "iocp", "", "uring",
};

static void fuzz_options(struct input *in)
{
	struct iocx_engine_options o;
	struct sockaddr_storage *sources;
	iocx_engine *const sentinel = (iocx_engine *)(uintptr_t)0x5a5a5a5a;
	iocx_engine *e = sentinel;
	unsigned bad = 0, sel = u8(in), n;
	bool null_opts;
	long live0 = atomic_load(&live);
	const char *name;
	int rc;

	iocx_engine_options_init(&o);
	o.workers = u8(in) % 3;
	o.batch = sel & 1 ? u32(in) : u16(in) % 4098;
	if (o.batch > 4096)
		bad |= BAD_INVAL;
	o.max_in_flight = u16(in);
	o.connect_payload_cap = u32(in);
	o.recv_buffer = sel & 2 ? IOCX_MAX_PAYLOAD + u8(in) : u16(in);
	if (o.recv_buffer > IOCX_MAX_PAYLOAD)
		bad |= BAD_INVAL;
	if (sel & 0x20) {
		o.reserved[u8(in) % NELEM(o.reserved)] = 1 + u8(in);
		bad |= BAD_INVAL;
	}
	o.recycle_sockets = sel & 4;
	o.batch_closes = sel & 8;
	o.backend = backends[u8(in) % NELEM(backends)];
	if (o.backend && strcmp(o.backend, "auto") &&
	    strcmp(o.backend, "epoll") && strcmp(o.backend, "io_uring"))
		bad |= BAD_NOTSUP;

	n = u8(in) % (IOCX_MAX_SOURCES + 4);
	sources = calloc(n ? n : 1, sizeof(*sources));
	CHECK(sources);
	for (unsigned i = 0; i < n; i++) {
		uint8_t f = u8(in), port = u8(in);
		int family = f % 4 == 0 ? AF_INET : f % 4 == 1 ? AF_INET6
							     : u16(in);

		if (is_inet(family)) {
			loopback(family, &sources[i]);
			((struct sockaddr_in *)(void *)&sources[i])->sin_port =
				port % 8 ? 0 : htons(port | 1);
			if (!(port % 8))
				bad |= BAD_INVAL;
		} else {
			sources[i].ss_family = (sa_family_t)family;
			bad |= BAD_AFNOSUPPORT;
		}
	}
	o.nsources = n;
	o.sources = sel & 0x10 && n ? NULL : sources;
	if (n > IOCX_MAX_SOURCES || !o.sources)
		bad |= BAD_INVAL;
	if (!o.nsources)
		o.sources = u8(in) & 1 ? sources : NULL;

	/* NULL options (the defaults) only in place of valid ones. */
	null_opts = sel & 0x40 && !bad;
	if (null_opts) {
		o.workers = 0;
		o.backend = NULL;
	}
	rc = iocx_engine_create(null_opts ? NULL : &o, sel & 0x80 ? NULL : &e);
	if (sel & 0x80)
		bad |= BAD_INVAL;
	if (rc != IOCX_OK) {
		CHECK(rc < 0);
		/* io_uring may be disabled on this machine. */
		CHECK((bad_bit(rc) & bad) ||
		      (rc == IOCX_E_NOTSUP && o.backend &&
		       !strcmp(o.backend, "io_uring")));
		CHECK(e == sentinel);
		CHECK(atomic_load(&live) == live0);
		goto out;
	}
	CHECK(!bad);
	name = iocx_engine_backend(e);
	CHECK(!o.backend || !strcmp(o.backend, "auto") ||
	      !strcmp(o.backend, name));
	CHECK(!o.workers || iocx_engine_workers(e) == o.workers);
	CHECK(iocx_engine_workers(e) >= 1);
	CHECK(iocx_engine_destroy(e) == IOCX_OK);
	CHECK(atomic_load(&live) == live0);
out:
	free(sources);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (u8(&in) & 1)
		fuzz_options(&in);
	else
		fuzz_connect(&in);
	return 0;
}
