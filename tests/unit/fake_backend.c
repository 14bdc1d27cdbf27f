/*
 * The scripted fake backend (see fake_backend.h for what it models).
 *
 * All state is global and owned by the single test thread: the call log,
 * the scripted results and the socket records.  Only the event FIFO is
 * per engine; it is allocated with iocx__alloc in engine_init so that an
 * engine_fini the core forgets to call shows up as a leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_backend.h"

#define FAKE_FIFO_MAX 1024

/* STATUS_CANCELLED, what a cancelled operation completes with. */
#define FAKE_OS_CANCELLED 0xC0000120u

struct fake_engine {
	struct iocx_event fifo[FAKE_FIFO_MAX];
	unsigned head;
	unsigned len;
	unsigned open_socks;	/* opened and not yet closed */
	bool reconnect_broken;	/* FAKE_KEEP_REFUSED refused one */
};

static struct {
	struct fake_sock socks[FAKE_MAX_SOCKS + 1];	/* [0] unused */
	unsigned nsocks;
	struct fake_rec log[FAKE_LOG_MAX];
	size_t log_len;
	bool log_overflow;
	int fail_next[FAKE_CALL_COUNT];
	unsigned fail_left[FAKE_CALL_COUNT];	/* calls fail_next fails */
	bool fastopen_ok;
	bool cancel_completes;
	bool cancel_loses;	/* fake_set_cancel_loses_socket */
	bool recycle_keeps;
	enum fake_keep keep;
	bool poisoned;
	unsigned engines;
} fk = { .fastopen_ok = true, .cancel_completes = true,
	 .recycle_keeps = true };

/*
 * A violated backend contract is a bug of the core: remember it (the
 * fixtures then leave the engine alone, as its locks may be held) and fail.
 */
#define FAKE_REQUIRE(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fk.poisoned = true;				\
			print_error("fake backend: " __VA_ARGS__);	\
			print_error("\n");				\
			fail();						\
		}							\
	} while (0)

/* A socket a cancel gave up takes nothing but its close. */
#define FAKE_REQUIRE_USABLE(s, what)					\
	FAKE_REQUIRE(!(s)->lost, what " on socket %u that a cancel gave up", \
		     (s)->id)

static const char *const call_names[FAKE_CALL_COUNT] = {
	[FAKE_NONE] = "none",
	[FAKE_ENGINE_INIT] = "engine_init",
	[FAKE_ENGINE_FINI] = "engine_fini",
	[FAKE_WAIT] = "wait",
	[FAKE_POST] = "post",
	[FAKE_OPEN] = "open",
	[FAKE_CONNECT] = "connect",
	[FAKE_SEND] = "send",
	[FAKE_CONNECTED] = "connected",
	[FAKE_CANCEL] = "cancel",
	[FAKE_CLOSE] = "close",
	[FAKE_RECV] = "recv",
	[FAKE_SHUTDOWN] = "shutdown",
	[FAKE_DISCONNECT] = "disconnect",
	[FAKE_RECYCLE] = "recycle",
	[FAKE_CANCEL_RECV] = "cancel_recv",
	[FAKE_ADOPT] = "adopt",
	[FAKE_DETACH] = "detach",
};

/* See fake_backend.h. */
const char *fake_call_name(enum fake_call call)
{
	if ((unsigned)call >= FAKE_CALL_COUNT)
		return "?";
	return call_names[call];
}

static void log_call(enum fake_call call, unsigned id, size_t len)
{
	if (fk.log_len == FAKE_LOG_MAX) {
		fk.log_overflow = true;
		return;
	}
	fk.log[fk.log_len++] = (struct fake_rec){ call, id, len };
}

/* The scripted result of this call: 0, or the code set by fail_next. */
static int take_fail(enum fake_call call)
{
	if (fk.fail_left[call] == 0)
		return 0;
	fk.fail_left[call]--;
	return fk.fail_next[call];
}

static struct fake_engine *fake_engine_of(const struct iocx_engine *e)
{
	FAKE_REQUIRE(e != NULL && e->backend == &fake_backend &&
		     e->backend_data != NULL, "engine without fake state");
	return e->backend_data;
}

static struct fake_sock *sock_of(const struct iocx_conn *c)
{
	unsigned id;

	FAKE_REQUIRE(c != NULL, "NULL connection");
	id = ((const struct fake_conn *)(const void *)c)->id;
	FAKE_REQUIRE(id >= 1 && id <= fk.nsocks,
		     "connection %p has no fake id (%u)", (const void *)c, id);
	return &fk.socks[id];
}

static void push(struct iocx_engine *e, const struct iocx_event *ev)
{
	struct fake_engine *fe = fake_engine_of(e);

	FAKE_REQUIRE(fe->len < FAKE_FIFO_MAX, "event FIFO full");
	fe->fifo[(fe->head + fe->len) % FAKE_FIFO_MAX] = *ev;
	fe->len++;
}

/*
 * Keep the bytes an operation carries at their place in the payload
 * stream: an operation always starts at the first unconfirmed byte.
 */
static void capture(struct fake_sock *s, const void *buf, size_t len)
{
	size_t off = s->acked;
	size_t end;

	if (len == 0 || off >= FAKE_CAPTURE_MAX)
		return;
	end = off + len < FAKE_CAPTURE_MAX ? off + len : FAKE_CAPTURE_MAX;
	if (end > s->capture_cap) {
		unsigned char *p = realloc(s->capture, end);

		FAKE_REQUIRE(p != NULL, "out of memory for capture");
		s->capture = p;
		s->capture_cap = end;
	}
	memcpy(s->capture + off, buf, end - off);
}

static int fake_engine_init(struct iocx_engine *e)
{
	struct fake_engine *fe;
	int rc;

	log_call(FAKE_ENGINE_INIT, 0, 0);
	rc = take_fail(FAKE_ENGINE_INIT);
	if (rc != 0)
		return rc;
	fe = iocx__alloc(sizeof(*fe));
	if (fe == NULL)
		return IOCX_E_NOMEM;
	memset(fe, 0, sizeof(*fe));
	e->backend_data = fe;
	fk.engines++;
	return IOCX_OK;
}

static void fake_engine_fini(struct iocx_engine *e)
{
	struct fake_engine *fe = fake_engine_of(e);

	log_call(FAKE_ENGINE_FINI, 0, 0);
	/* Each queued event holds a reference: none may be left behind. */
	FAKE_REQUIRE(fe->len == 0, "engine_fini with %u events queued",
		     fe->len);
	FAKE_REQUIRE(fe->open_socks == 0, "engine_fini with %u sockets open",
		     fe->open_socks);
	iocx__free(fe);
	e->backend_data = NULL;
	fk.engines--;
}

static int fake_wait(struct iocx_engine *e, unsigned worker,
		     struct iocx_event *events, unsigned max,
		     uint64_t timeout_ns)
{
	struct fake_engine *fe = fake_engine_of(e);
	unsigned n = 0;
	int rc;

	(void)worker;
	(void)timeout_ns;	/* never blocks: the manual clock moves time */
	rc = take_fail(FAKE_WAIT);
	if (rc != 0)
		return rc;
	while (n < max && fe->len > 0) {
		struct iocx_event *ev = &fe->fifo[fe->head];

		fe->head = (fe->head + 1) % FAKE_FIFO_MAX;
		fe->len--;
		if (ev->kind == IOCX_EV_IO && ev->op == IOCX_OP_RECV) {
			/* Only the RECV slot is free now; MAIN is untouched. */
			struct fake_sock *s = sock_of(ev->conn);

			s->recv_buf = NULL;
			s->recv_len = 0;
			s->recv_done = false;
		} else if (ev->kind == IOCX_EV_IO) {
			struct fake_sock *s = sock_of(ev->conn);

			if (s->op == FAKE_CONNECT && ev->status == IOCX_OK)
				s->connect_ok = true;
			s->op = FAKE_NONE;
			s->op_len = 0;
			s->op_done = false;
		}
		events[n++] = *ev;
	}
	return (int)n;
}

static int fake_post(struct iocx_engine *e, enum iocx_event_kind kind,
		     struct iocx_conn *conn)
{
	struct iocx_event ev = { .kind = kind, .conn = conn };
	int rc;

	/* A request waiting for admission, or resolving a name, has no
	 * socket yet: id 0. */
	log_call(FAKE_POST,
		 conn ? ((const struct fake_conn *)(const void *)conn)->id : 0,
		 (size_t)kind);
	FAKE_REQUIRE(kind == IOCX_EV_CLOSE || kind == IOCX_EV_SHUTDOWN ||
		     kind == IOCX_EV_STOP || kind == IOCX_EV_WAKE ||
			     kind == IOCX_EV_KICK,
		     "post of event kind %d", (int)kind);
	FAKE_REQUIRE((kind == IOCX_EV_STOP || kind == IOCX_EV_WAKE) ==
			     (conn == NULL),
		     "post of kind %d with conn %p", (int)kind,
		     (void *)conn);
	rc = take_fail(FAKE_POST);
	if (rc != 0)
		return rc;
	push(e, &ev);
	return IOCX_OK;
}

static int fake_open(struct iocx_conn *c, bool *fastopen)
{
	struct fake_conn *fc = (struct fake_conn *)(void *)c;
	struct fake_sock *s;
	int family;
	int rc;

	FAKE_REQUIRE(c->engine != NULL && c->engine->backend == &fake_backend,
		     "open of a connection without its engine");
	FAKE_REQUIRE(fk.nsocks < FAKE_MAX_SOCKS, "too many sockets");
	fc->id = ++fk.nsocks;
	s = &fk.socks[fc->id];
	s->id = fc->id;
	s->conn = c;
	log_call(FAKE_OPEN, fc->id, 0);
	family = iocx__conn_family(c);
	FAKE_REQUIRE(family == AF_INET || family == AF_INET6,
		     "open with remote family %d", family);
	rc = take_fail(FAKE_OPEN);
	if (rc != 0)
		return rc;
	s->opened = true;
	fake_engine_of(c->engine)->open_socks++;
	s->fastopen = (c->flags & IOCX_CONNECT_FASTOPEN) && fk.fastopen_ok;
	*fastopen = s->fastopen;
	return IOCX_OK;
}

/* What connect, send and connected share: a usable, idle socket. */
static struct fake_sock *sock_idle(struct iocx_conn *c, enum fake_call call,
				   size_t len)
{
	struct fake_sock *s = sock_of(c);

	log_call(call, s->id, len);
	FAKE_REQUIRE(s->opened, "%s on socket %u that was never opened",
		     fake_call_name(call), s->id);
	FAKE_REQUIRE(!s->closed, "%s on socket %u after close",
		     fake_call_name(call), s->id);
	FAKE_REQUIRE(!s->detached, "%s on socket %u after detach",
		     fake_call_name(call), s->id);
	FAKE_REQUIRE(s->op == FAKE_NONE,
		     "%s on socket %u while %s is in flight",
		     fake_call_name(call), s->id, fake_call_name(s->op));
	return s;
}

static int fake_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	struct fake_sock *s = sock_idle(c, FAKE_CONNECT, len);
	int rc;

	FAKE_REQUIRE(s->connects == 0 || s->kept,
		     "second connect on socket %u", s->id);
	FAKE_REQUIRE(len == 0 || buf != NULL, "connect with NULL buffer");
	s->connects++;
	memcpy(&s->remote, &c->remote, sizeof(c->remote));
	if (s->kept && fk.keep == FAKE_KEEP_REFUSED) {
		/* What Wine 8 does with a second ConnectEx. */
		s->kept = false;
		c->os_code = FAKE_OS_RECONNECT_REFUSED;
		return IOCX_E_ABORTED;
	}
	s->kept = false;
	rc = take_fail(FAKE_CONNECT);
	if (rc != 0)
		return rc;
	capture(s, buf, len);
	s->last_buf = buf;
	s->issued += len;
	s->op = FAKE_CONNECT;
	s->op_len = len;
	return IOCX_OK;
}

static int fake_send(struct iocx_conn *c, const void *buf, size_t len)
{
	struct fake_sock *s = sock_idle(c, FAKE_SEND, len);
	int rc;

	FAKE_REQUIRE(s->connect_ok && s->connected,
		     "send on socket %u before a finished connect", s->id);
	FAKE_REQUIRE(s->shutdowns == 0, "send on socket %u after shutdown",
		     s->id);
	FAKE_REQUIRE_USABLE(s, "send");
	FAKE_REQUIRE(len > 0 && buf != NULL, "empty send on socket %u",
		     s->id);
	s->sends++;
	rc = take_fail(FAKE_SEND);
	if (rc != 0)
		return rc;
	capture(s, buf, len);
	s->last_buf = buf;
	s->issued += len;
	s->op = FAKE_SEND;
	s->op_len = len;
	return IOCX_OK;
}

static int fake_connected(struct iocx_conn *c)
{
	struct fake_sock *s = sock_idle(c, FAKE_CONNECTED, 0);
	int rc;

	FAKE_REQUIRE(s->connect_ok, "connected on socket %u before its "
		     "connect succeeded", s->id);
	FAKE_REQUIRE(!s->connected, "connected twice on socket %u", s->id);
	rc = take_fail(FAKE_CONNECTED);
	if (rc != 0)
		return rc;
	s->connected = true;
	return IOCX_OK;
}

static int fake_recv(struct iocx_conn *c, void *buf, size_t len)
{
	struct fake_sock *s = sock_of(c);
	int rc;

	log_call(FAKE_RECV, s->id, len);
	FAKE_REQUIRE(s->opened && !s->closed && !s->detached && s->connected,
		     "recv on socket %u that is not connected", s->id);
	FAKE_REQUIRE(s->recv_buf == NULL, "second recv in flight on %u",
		     s->id);
	FAKE_REQUIRE_USABLE(s, "recv");
	FAKE_REQUIRE(buf != NULL && len > 0, "empty recv on socket %u", s->id);
	s->recvs++;
	rc = take_fail(FAKE_RECV);
	if (rc != 0)
		return rc;
	s->recv_buf = buf;
	s->recv_len = len;
	return IOCX_OK;
}

static int fake_shutdown(struct iocx_conn *c)
{
	struct fake_sock *s = sock_of(c);

	log_call(FAKE_SHUTDOWN, s->id, s->acked);
	FAKE_REQUIRE(s->opened && !s->closed && !s->detached,
		     "shutdown on socket %u that "
		     "is not open", s->id);
	FAKE_REQUIRE_USABLE(s, "shutdown");
	/* FIN goes after the data: nothing of it may still be in flight. */
	FAKE_REQUIRE(s->op == FAKE_NONE, "shutdown on socket %u while %s is "
		     "in flight", s->id, fake_call_name(s->op));
	s->shutdowns++;
	s->acked_at_shutdown = s->acked;
	return take_fail(FAKE_SHUTDOWN);
}

/* With fake_set_cancel_loses_socket: the cancel gives s up to end it. */
static void lose(struct fake_sock *s, struct iocx_event *ev)
{
	if (!fk.cancel_loses)
		return;
	s->lost = true;
	ev->socket_lost = true;
}

static void fake_cancel(struct iocx_conn *c, enum iocx_op op)
{
	struct fake_sock *s = sock_of(c);
	struct iocx_event ev = {
		.kind = IOCX_EV_IO,
		.conn = c,
		.status = IOCX_E_CANCELLED,
		.os_code = FAKE_OS_CANCELLED,
		.op = op,
	};

	if (op == IOCX_OP_RECV) {
		log_call(FAKE_CANCEL_RECV, s->id, 0);
		FAKE_REQUIRE(s->opened && !s->closed && !s->detached,
			     "cancel of a recv on socket %u that is not open",
			     s->id);
		s->recv_cancels++;
		if (s->recv_buf == NULL) {
			s->stray_recv_cancels++;
			return;
		}
		/* Like CancelIoEx: one completion, unless one is queued. */
		if (s->recv_done || !fk.cancel_completes)
			return;
		s->recv_done = true;
		lose(s, &ev);
		push(c->engine, &ev);
		return;
	}
	log_call(FAKE_CANCEL, s->id, 0);
	FAKE_REQUIRE(s->opened && !s->closed && !s->detached,
		     "cancel on socket %u that is not open", s->id);
	s->cancels++;
	if (s->op == FAKE_NONE) {
		/* Harmless for the OS, but the core lost track: noted. */
		s->stray_cancels++;
		return;
	}
	if (s->op_done || !fk.cancel_completes)
		return;
	s->op_done = true;
	lose(s, &ev);
	push(c->engine, &ev);
}

static void fake_close(struct iocx_conn *c, bool abort)
{
	struct fake_sock *s = sock_of(c);

	log_call(FAKE_CLOSE, s->id, abort ? 1 : 0);
	FAKE_REQUIRE(s->opened, "close on socket %u that was never opened",
		     s->id);
	if (s->detached) {
		/* The socket is the user's now: the backend forgot it. */
		s->closes_after_detach++;
		return;
	}
	FAKE_REQUIRE(!s->closed, "second close on socket %u", s->id);
	FAKE_REQUIRE(s->op == FAKE_NONE,
		     "close on socket %u while %s is in flight", s->id,
		     fake_call_name(s->op));
	FAKE_REQUIRE(s->recv_buf == NULL,
		     "close on socket %u while a recv is in flight", s->id);
	s->closed = true;
	s->abort = abort;
	fake_engine_of(c->engine)->open_socks--;
}

static int fake_disconnect(struct iocx_conn *c)
{
	struct fake_sock *s = sock_idle(c, FAKE_DISCONNECT, 0);
	int rc;

	FAKE_REQUIRE(s->connected, "disconnect on socket %u that never "
		     "connected", s->id);
	FAKE_REQUIRE(s->recv_buf == NULL,
		     "disconnect on socket %u while a recv is in flight", s->id);
	FAKE_REQUIRE_USABLE(s, "disconnect");
	rc = take_fail(FAKE_DISCONNECT);
	if (rc != 0)
		return rc;
	s->op = FAKE_DISCONNECT;
	s->op_len = 0;
	return IOCX_OK;
}

static bool fake_recycle(struct iocx_conn *c)
{
	struct fake_sock *s = sock_of(c);

	log_call(FAKE_RECYCLE, s->id, fk.recycle_keeps ? 1 : 0);
	FAKE_REQUIRE(s->opened && !s->closed && s->op == FAKE_NONE,
		     "recycle of socket %u that is not idle", s->id);
	/* Kept or closed, the core is done with the socket either way. */
	s->closed = true;
	s->recycled = fk.recycle_keeps;
	fake_engine_of(c->engine)->open_socks--;
	return fk.recycle_keeps;
}

/* Hand a race's winning socket to its connection (see backend.h). */
static int fake_adopt(struct iocx_conn *dst, struct iocx_conn *src)
{
	struct fake_conn *to = (struct fake_conn *)(void *)dst;
	struct fake_conn *from = (struct fake_conn *)(void *)src;
	struct fake_sock *s = sock_of(src);
	int rc;

	log_call(FAKE_ADOPT, s->id, 0);
	FAKE_REQUIRE(to->id == 0, "adopt into a connection with socket %u",
		     to->id);
	FAKE_REQUIRE(s->opened && !s->closed && s->connected &&
			     s->op == FAKE_NONE && s->recv_buf == NULL,
		     "adopt of socket %u that is not connected and idle",
		     s->id);
	rc = take_fail(FAKE_ADOPT);
	if (rc != 0)
		return rc;
	to->id = from->id;
	from->id = 0;
	s->conn = dst;
	s->adopted = true;
	return IOCX_OK;
}

static int fake_detach(struct iocx_conn *c, iocx_socket_t *out)
{
	struct fake_sock *s = sock_idle(c, FAKE_DETACH, 0);
	int rc;

	FAKE_REQUIRE(s->connected && s->recv_buf == NULL,
		     "detach of socket %u that is not idle", s->id);
	FAKE_REQUIRE_USABLE(s, "detach");
	rc = take_fail(FAKE_DETACH);
	if (rc != 0)
		return rc;
	s->detached = true;
	fake_engine_of(c->engine)->open_socks--;
	*out = FAKE_NATIVE(s->id);
	return IOCX_OK;
}

static bool fake_keep(struct iocx_conn *c)
{
	struct fake_sock *s = sock_of(c);

	FAKE_REQUIRE(s->opened && !s->closed && s->op == FAKE_NONE &&
		     !s->connect_ok && s->connects > 0,
		     "keep of socket %u that is not a failed connect's", s->id);
	if (fk.keep == FAKE_KEEP_OFF ||
	    fake_engine_of(c->engine)->reconnect_broken)
		return false;
	s->kept = true;
	s->keeps++;
	return true;
}

static bool fake_reconnect_refused(struct iocx_conn *c)
{
	if (c->os_code != FAKE_OS_RECONNECT_REFUSED)
		return false;
	fake_engine_of(c->engine)->reconnect_broken = true;
	return true;
}

static iocx_socket_t fake_native(struct iocx_conn *c)
{
	struct fake_sock *s = sock_of(c);

	FAKE_REQUIRE(s->opened && !s->closed,
		     "native socket of %u asked while it is not open", s->id);
	return FAKE_NATIVE(s->id);
}

static int fake_local_addr(struct iocx_conn *c, struct sockaddr_storage *out)
{
	struct fake_sock *s = sock_of(c);
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;

	FAKE_REQUIRE(s->opened && !s->closed && s->connected,
		     "local address of %u asked while not connected", s->id);
	FAKE_REQUIRE_USABLE(s, "local address");
	s->local_addrs++;
	memset(out, 0, sizeof(*out));
	in->sin_family = AF_INET;
	in->sin_port = htons(FAKE_LOCAL_PORT(s->id));
	in->sin_addr.s_addr = htonl(0x7f000001);
	return IOCX_OK;
}

const struct iocx_backend fake_backend = {
	.name = "fake",
	.conn_size = sizeof(struct fake_conn),
	.engine_init = fake_engine_init,
	.engine_fini = fake_engine_fini,
	.wait = fake_wait,
	.post = fake_post,
	.open = fake_open,
	.connect = fake_connect,
	.send = fake_send,
	.recv = fake_recv,
	.shutdown = fake_shutdown,
	.connected = fake_connected,
	.cancel = fake_cancel,
	.close = fake_close,
	.disconnect = fake_disconnect,
	.recycle = fake_recycle,
	.adopt = fake_adopt,
	.keep = fake_keep,
	.reconnect_refused = fake_reconnect_refused,
	.native = fake_native,
	.detach = fake_detach,
	.local_addr = fake_local_addr,
};

/* See fake_backend.h. */
void fake_cleanup(void)
{
	unsigned i;

	for (i = 1; i <= fk.nsocks; i++) {
		free(fk.socks[i].capture);
		fk.socks[i].capture = NULL;
		fk.socks[i].capture_cap = 0;
	}
}

/* See fake_backend.h. */
void fake_reset(void)
{
	unsigned engines = fk.engines;

	fake_cleanup();
	memset(&fk, 0, sizeof(fk));
	fk.fastopen_ok = true;
	fk.cancel_completes = true;
	fk.recycle_keeps = true;
	fk.engines = engines;
}

/* See fake_backend.h. */
void fake_fail_next(enum fake_call call, int code)
{
	fake_fail_times(call, code, 1);
}

/* See fake_backend.h. */
void fake_fail_times(enum fake_call call, int code, unsigned n)
{
	assert_true((unsigned)call < FAKE_CALL_COUNT);
	assert_true(code < 0);
	fk.fail_next[call] = code;
	fk.fail_left[call] = n;
}

/* See fake_backend.h. */
void fake_set_fastopen(bool accepted)
{
	fk.fastopen_ok = accepted;
}

/* See fake_backend.h. */
void fake_set_cancel_completes(bool on)
{
	fk.cancel_completes = on;
}

/* See fake_backend.h. */
void fake_set_cancel_loses_socket(bool on)
{
	fk.cancel_loses = on;
}

/* See fake_backend.h. */
void fake_set_recycle_keeps(bool keeps)
{
	fk.recycle_keeps = keeps;
}

/* See fake_backend.h. */
void fake_set_keep(enum fake_keep mode)
{
	fk.keep = mode;
}

/* See fake_backend.h. */
void fake_complete(iocx_conn *conn, int status, uint32_t os_code,
		   uint32_t bytes)
{
	struct fake_sock *s = sock_of(conn);
	struct iocx_event ev = {
		.kind = IOCX_EV_IO,
		.conn = conn,
		.status = status,
		.os_code = os_code,
		.bytes = bytes,
	};

	/* These are mistakes of the test, not of the core. */
	assert_int_not_equal(s->op, FAKE_NONE);
	assert_false(s->op_done);
	assert_true(bytes <= s->op_len);
	s->acked += bytes;
	s->op_done = true;
	push(conn->engine, &ev);
}

/* See fake_backend.h. */
void fake_complete_recv(iocx_conn *conn, int status, const void *data,
			size_t len)
{
	struct fake_sock *s = sock_of(conn);

	/* These are mistakes of the test, not of the core. */
	assert_non_null(s->recv_buf);
	assert_false(s->recv_done);
	assert_true(len <= s->recv_len);
	assert_true(len == 0 || data != NULL);
	if (len > 0)
		memcpy(s->recv_buf, data, len);
	fake_complete_op(conn, IOCX_OP_RECV, status, 0, (uint32_t)len);
}

/* See fake_backend.h. */
void fake_complete_op(iocx_conn *conn, enum iocx_op op, int status,
		      uint32_t os_code, uint32_t bytes)
{
	struct fake_sock *s = sock_of(conn);
	struct iocx_event ev = {
		.kind = IOCX_EV_IO,
		.conn = conn,
		.status = status,
		.os_code = os_code,
		.bytes = bytes,
		.op = op,
	};

	if (op == IOCX_OP_MAIN) {
		fake_complete(conn, status, os_code, bytes);
		return;
	}
	assert_int_equal(op, IOCX_OP_RECV);
	assert_non_null(s->recv_buf);
	assert_false(s->recv_done);
	assert_true(bytes <= s->recv_len);
	s->received += bytes;
	s->recv_done = true;
	push(conn->engine, &ev);
}

/* See fake_backend.h. */
bool fake_recv_pending(unsigned id)
{
	return fake_sock(id)->recv_buf != NULL;
}

/* See fake_backend.h. */
unsigned fake_count_posts(enum iocx_event_kind kind, unsigned id)
{
	unsigned n = 0;
	size_t i;

	assert_false(fk.log_overflow);
	for (i = 0; i < fk.log_len; i++)
		if (fk.log[i].call == FAKE_POST &&
		    fk.log[i].len == (size_t)kind &&
		    (id == 0 || fk.log[i].id == id))
			n++;
	return n;
}

/* See fake_backend.h. */
unsigned fake_pending(const iocx_engine *e)
{
	return fake_engine_of(e)->len;
}

/* See fake_backend.h. */
unsigned fake_pump(iocx_engine *e)
{
	unsigned total = 0;
	unsigned rounds = 0;

	while (fake_pending(e) > 0) {
		int rc = iocx__engine_run(e, 0);

		if (rc <= 0) {
			print_error("iocx__engine_run returned %d with %u "
				    "events queued\n", rc, fake_pending(e));
			fail();
		}
		total += (unsigned)rc;
		assert_true(++rounds < 100000);
	}
	return total;
}

/* See fake_backend.h. */
unsigned fake_id(const iocx_conn *conn)
{
	return sock_of(conn)->id;
}

/* See fake_backend.h. */
const struct fake_sock *fake_sock(unsigned id)
{
	assert_true(id >= 1 && id <= fk.nsocks);
	return &fk.socks[id];
}

/* See fake_backend.h. */
unsigned fake_engines(void)
{
	return fk.engines;
}

/* See fake_backend.h. */
bool fake_poisoned(void)
{
	return fk.poisoned;
}

/* See fake_backend.h. */
size_t fake_log_len(void)
{
	return fk.log_len;
}

/* See fake_backend.h. */
const struct fake_rec *fake_log_at(size_t i)
{
	assert_true(i < fk.log_len);
	return &fk.log[i];
}

/* See fake_backend.h. */
void fake_log_clear(void)
{
	fk.log_len = 0;
	fk.log_overflow = false;
}

/* See fake_backend.h. */
unsigned fake_count(enum fake_call call, unsigned id)
{
	unsigned n = 0;
	size_t i;

	assert_false(fk.log_overflow);
	for (i = 0; i < fk.log_len; i++)
		if (fk.log[i].call == call && (id == 0 || fk.log[i].id == id))
			n++;
	return n;
}

static bool conn_level(enum fake_call call)
{
	return call >= FAKE_OPEN && call <= FAKE_CLOSE;
}

static void print_rec(const char *tag, size_t i, const struct fake_rec *r)
{
	/* cmocka's printf may be MSVCRT's: no %zu. */
	if (r->len == FAKE_ANY)
		print_error("  %s[%lu] %s id=%u len=*\n", tag,
			    (unsigned long)i, fake_call_name(r->call), r->id);
	else
		print_error("  %s[%lu] %s id=%u len=%lu\n", tag,
			    (unsigned long)i, fake_call_name(r->call), r->id,
			    (unsigned long)r->len);
}

static bool data_level(enum fake_call call)
{
	return conn_level(call) ||
	       (call >= FAKE_RECV && call <= FAKE_CANCEL_RECV);
}

/* Compare the log entries that pass keep() with exp; fail on mismatch. */
static void assert_log_filtered(const struct fake_rec *exp, size_t n,
				bool (*keep)(enum fake_call),
				const char *file, int line)
{
	const struct fake_rec *got[FAKE_LOG_MAX];
	size_t ngot = 0;
	bool same;
	size_t i;

	if (fk.log_overflow) {
		print_error("fake backend: call log overflowed\n");
		_fail(file, line);
	}
	for (i = 0; i < fk.log_len; i++)
		if (keep(fk.log[i].call))
			got[ngot++] = &fk.log[i];
	same = ngot == n;
	for (i = 0; same && i < n; i++)
		same = got[i]->call == exp[i].call && got[i]->id == exp[i].id &&
		       (exp[i].len == FAKE_ANY || got[i]->len == exp[i].len);
	if (same)
		return;
	print_error("backend call log differs from the expected one\n");
	for (i = 0; i < n; i++)
		print_rec("expected", i, &exp[i]);
	for (i = 0; i < ngot; i++)
		print_rec("got     ", i, got[i]);
	_fail(file, line);
}

/* See fake_backend.h. */
void fake_assert_data_log_(const struct fake_rec *exp, size_t n,
			   const char *file, int line)
{
	assert_log_filtered(exp, n, data_level, file, line);
}

/* See fake_backend.h. */
void fake_assert_log_(const struct fake_rec *exp, size_t n,
		      const char *file, int line)
{
	const struct fake_rec *got[FAKE_LOG_MAX];
	size_t ngot = 0;
	bool same;
	size_t i;

	if (fk.log_overflow) {
		print_error("fake backend: call log overflowed\n");
		_fail(file, line);
	}
	for (i = 0; i < fk.log_len; i++)
		if (conn_level(fk.log[i].call))
			got[ngot++] = &fk.log[i];
	same = ngot == n;
	for (i = 0; same && i < n; i++)
		same = got[i]->call == exp[i].call && got[i]->id == exp[i].id &&
		       (exp[i].len == FAKE_ANY || got[i]->len == exp[i].len);
	if (same)
		return;
	print_error("backend call log differs from the expected one\n");
	for (i = 0; i < n; i++)
		print_rec("expected", i, &exp[i]);
	for (i = 0; i < ngot; i++)
		print_rec("got     ", i, got[i]);
	_fail(file, line);
}
