/*
 * Unit tests of the data path of an open connection (iocx_send,
 * iocx_read_start / iocx_read_stop, iocx_shutdown, graceful and abortive
 * close, destroy), driven through the public API on a manual engine over
 * the scripted fake backend: the test injects every completion, in either
 * op slot, and pumps the engine itself.
 *
 * Data callbacks interleave (on_sent, on_recv, on_close of one connection
 * in one pump), so every callback only records into the connection's
 * struct dprobe, with a global sequence number, and notes contract
 * violations it can see by itself: a second on_sent for one send, on_sent
 * out of order, on_recv outside a read session, a callback after on_close,
 * nested callbacks.  The tests assert the records afterwards;
 * assert_finished() checks the contract every closed connection must meet:
 * each accepted send reported once, each read session ended once, on_close
 * once and strictly last.  The library allocator is cmocka's checked heap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "engine.h"
#include "conn.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

/* recv_buffer of the fixture: small, so a test can fill it. */
#define RBUF 64
#define PORT 4242
#define MAX_SENDS 16
#define MAX_TERMINALS 8
#define RX_MAX 4096

struct dprobe;

/* One iocx_send the library accepted (or refused); its send_user. */
struct sent {
	struct dprobe *p;
	unsigned idx;		/* position among p's sends */
	bool accepted;		/* iocx_send returned IOCX_OK */
	unsigned calls;		/* on_sent calls */
	int status;
	size_t bytes;
	unsigned seq;		/* global callback sequence number */
};

typedef void (*connect_hook)(struct dprobe *p, iocx_conn *conn);
typedef void (*sent_hook)(struct dprobe *p, iocx_conn *conn,
			  struct sent *s);
typedef void (*recv_hook)(struct dprobe *p, iocx_conn *conn, int status);

/* Everything one connection's callbacks saw; the request's user. */
struct dprobe {
	iocx_conn *conn;	/* as set by iocx_connect */
	unsigned id;		/* its fake socket */

	unsigned connects;
	int status;		/* on_connect */
	unsigned seq_connect;
	unsigned closes;
	int reason;		/* on_close */
	unsigned seq_close;
	bool sock_closed_at_close;

	struct sent sends[MAX_SENDS];
	unsigned nsends;	/* iocx_send calls made through ds_send */
	unsigned sent_calls;	/* on_sent calls in total */

	unsigned sessions;	/* read_start calls that returned IOCX_OK */
	unsigned data_calls;	/* on_recv(IOCX_OK) calls */
	unsigned char rx[RX_MAX];
	size_t rxlen;
	const void *last_data;	/* data pointer of the last on_recv(OK) */
	unsigned seq_data;	/* sequence number of the last on_recv(OK) */
	unsigned terminals;	/* terminal on_recv calls */
	int terminal[MAX_TERMINALS];	/* their statuses */
	unsigned seq_terminal[MAX_TERMINALS];
	unsigned seq_last;	/* sequence number of the last callback */

	unsigned violations;
	char first_violation[160];

	/* Optional, run inside the callback after recording. */
	connect_hook on_connect_hook;
	sent_hook on_sent_hook;
	recv_hook on_recv_hook;
	int hook_rc[8];		/* results of calls made by hooks */
	unsigned hook_calls;
	int hook_arg;		/* free for a hook's use */
};

struct fx {
	iocx_engine *e;
	struct iocx_engine_options opts;
	struct sockaddr_in v4;
	struct dprobe p[2];
	unsigned engines;	/* fake engines alive besides fx->e */
	void *sentinel;		/* see setup() */
};

static struct fx the_fx;
static unsigned cb_depth;	/* > 0 while a callback runs */
static unsigned cb_seq;
static unsigned char pat[8192];	/* a byte pattern to send */

/* ---- callbacks: record, note violations, run the hook ---------------- */

static void violation(struct dprobe *p, const char *what)
{
	if (p->violations++ == 0)
		snprintf(p->first_violation, sizeof(p->first_violation), "%s",
			 what);
}

static void enter(struct dprobe *p, iocx_conn *conn, const char *which)
{
	if (cb_depth++ != 0)
		violation(p, "callback inside another callback");
	if (p->closes != 0)
		violation(p, which);	/* named: it came after on_close */
	if (conn != p->conn)
		violation(p, "callback with another conn pointer");
	p->seq_last = ++cb_seq;
}

static void leave(void)
{
	cb_depth--;
}

static void cb_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct dprobe *p = user;

	enter(p, conn, "on_connect after on_close");
	p->connects++;
	p->status = r->status;
	p->seq_connect = p->seq_last;
	if (p->on_connect_hook)
		p->on_connect_hook(p, conn);
	leave();
}

static void cb_sent(iocx_conn *conn, int status, size_t bytes, void *user)
{
	struct sent *s = user;
	struct dprobe *p = s->p;

	enter(p, conn, "on_sent after on_close");
	if (!s->accepted)
		violation(p, "on_sent for a send iocx_send refused");
	if (s->calls++ != 0)
		violation(p, "second on_sent for one send");
	/* Sends are reported in the order they were accepted. */
	if (s->idx != p->sent_calls)
		violation(p, "on_sent out of order");
	p->sent_calls++;
	s->status = status;
	s->bytes = bytes;
	s->seq = p->seq_last;
	if (p->on_sent_hook)
		p->on_sent_hook(p, conn, s);
	leave();
}

static void cb_recv(iocx_conn *conn, int status, const void *data,
		    size_t len, void *user)
{
	struct dprobe *p = user;

	enter(p, conn, "on_recv after on_close");
	if (p->terminals >= p->sessions)
		violation(p, "on_recv outside a read session");
	if (status == IOCX_OK) {
		if (data == NULL || len == 0)
			violation(p, "on_recv(IOCX_OK) without data");
		else if (p->rxlen + len <= RX_MAX)
			memcpy(p->rx + p->rxlen, data, len);
		p->rxlen += len;
		p->data_calls++;
		p->last_data = data;
		p->seq_data = p->seq_last;
	} else {
		if (data != NULL || len != 0)
			violation(p, "terminal on_recv with data");
		if (p->terminals < MAX_TERMINALS) {
			p->terminal[p->terminals] = status;
			p->seq_terminal[p->terminals] = p->seq_last;
		}
		p->terminals++;
	}
	if (p->on_recv_hook)
		p->on_recv_hook(p, conn, status);
	leave();
}

static void cb_close(iocx_conn *conn, int reason, void *user)
{
	struct dprobe *p = user;
	unsigned i;

	enter(p, conn, "second on_close");
	p->closes++;
	p->reason = reason;
	p->seq_close = p->seq_last;
	p->sock_closed_at_close = fake_sock(fake_id(conn))->closed;
	for (i = 0; i < p->nsends; i++)
		if (p->sends[i].accepted && p->sends[i].calls == 0)
			violation(p, "on_close before an on_sent");
	if (p->terminals != p->sessions)
		violation(p, "on_close before the terminal on_recv");
	leave();
}

/* ---- API wrappers (also used by hooks) ------------------------------- */

/* iocx_send of buf[0..len) through the next send record of p. */
static int ds_send(struct dprobe *p, const void *buf, size_t len,
		   enum iocx_payload_ownership own)
{
	struct sent *s;
	int rc;

	assert_true(p->nsends < MAX_SENDS);
	s = &p->sends[p->nsends];
	memset(s, 0, sizeof(*s));
	s->p = p;
	s->idx = p->nsends;
	/* Marked before the call: a callback never runs inside it, but the
	 * record must be complete whenever one does. */
	s->accepted = true;
	rc = iocx_send(p->conn, buf, len, own, cb_sent, s);
	if (rc == IOCX_OK)
		p->nsends++;
	else
		s->accepted = false;
	return rc;
}

static int ds_read_start(struct dprobe *p)
{
	int rc = iocx_read_start(p->conn, cb_recv);

	if (rc == IOCX_OK)
		p->sessions++;
	return rc;
}

/* A hook's result, in call order. */
static void hook_result(struct dprobe *p, int rc)
{
	if (p->hook_calls < 8)
		p->hook_rc[p->hook_calls] = rc;
	p->hook_calls++;
}

/* ---- fixtures -------------------------------------------------------- */

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (unsigned char)(i * 7 + i / 251 + 3);
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *fx = &the_fx;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	cb_seq = 0;

	fx->engines = fake_engines();
	iocx_engine_options_init(&fx->opts);
	fx->opts.recv_buffer = RBUF;
	if (cfx_engine_create(&fx->opts, &fx->e) != IOCX_OK)
		return -1;
	fake_log_clear();
	cfx_loopback4(&fx->v4, PORT);
	/* A block that outlives the body, for cmocka's leak walk (see
	 * test_conn.c). */
	fx->sentinel = test_malloc(1);
	*state = fx;
	return 0;
}

/*
 * After a failed test: complete what the test left in flight, so that
 * destroy (which pumps until every connection is gone) cannot wait for a
 * completion no one will inject.  Lenient on purpose.
 */
static void release_stuck_ops(struct fx *fx)
{
	for (size_t i = 0; i < sizeof(fx->p) / sizeof(fx->p[0]); i++) {
		struct dprobe *p = &fx->p[i];
		const struct fake_sock *s;

		if (p->conn == NULL || p->closes != 0)
			continue;
		s = fake_sock(p->id);
		if (s->op == FAKE_SEND && !s->op_done)
			fake_complete(p->conn, IOCX_E_CANCELLED, 0, 0);
		if (s->recv_buf != NULL && !s->recv_done)
			fake_complete_op(p->conn, IOCX_OP_RECV,
					 IOCX_E_CANCELLED, 0, 0);
	}
	fake_pump(fx->e);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx == NULL)
		return 0;
	test_free(fx->sentinel);
	fx->sentinel = NULL;
	/* A failure jumped out of the engine: leave it alone. */
	if (cfx_engine_abandon(&fx->e, cb_depth > 0))
		return 0;
	fake_set_cancel_completes(true);
	release_stuck_ops(fx);
	return cfx_engine_destroy(&fx->e, fx->engines);
}

/* ---- helpers --------------------------------------------------------- */

static iocx_conn *start(struct fx *fx, struct dprobe *p)
{
	struct iocx_connect_request r =
		cfx_request(&fx->v4, cb_connect, cb_close, p);

	assert_int_equal(iocx_connect(fx->e, &r, &p->conn), IOCX_OK);
	assert_non_null(p->conn);
	p->id = fake_id(p->conn);
	return p->conn;
}

/* A connection reported open; the call log is cleared after. */
static iocx_conn *make_open(struct fx *fx, struct dprobe *p)
{
	start(fx, p);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->connects, 1);
	assert_int_equal(p->status, IOCX_OK);
	fake_log_clear();
	return p->conn;
}

/* Complete the send in flight with all its bytes. */
static void complete_send(struct fx *fx, struct dprobe *p)
{
	const struct fake_sock *s = fake_sock(p->id);

	assert_int_equal(s->op, FAKE_SEND);
	fake_complete(p->conn, IOCX_OK, 0, (uint32_t)s->op_len);
	fake_pump(fx->e);
}

static void assert_clean_(struct dprobe *p, const char *file, int line)
{
	if (p->violations == 0)
		return;
	print_error("%u contract violation(s), first: %s\n", p->violations,
		    p->first_violation);
	_fail(file, line);
}
#define assert_clean(p) assert_clean_((p), __FILE__, __LINE__)

/*
 * The connection has finished: every accepted send reported exactly
 * once, every read session ended exactly once, on_close exactly once,
 * with reason, after the socket was closed, and strictly last.
 */
static void assert_finished_(struct dprobe *p, int reason, const char *file,
			     int line)
{
	unsigned i;

	assert_clean_(p, file, line);
	if (p->closes != 1 || p->reason != reason) {
		print_error("on_close: %u call(s), reason %s; want 1, %s\n",
			    p->closes, iocx_error_name(p->reason),
			    iocx_error_name(reason));
		_fail(file, line);
	}
	for (i = 0; i < p->nsends; i++) {
		if (p->sends[i].calls != 1 ||
		    p->sends[i].seq >= p->seq_close) {
			print_error("send %u: %u on_sent call(s), seq %u, "
				    "on_close seq %u\n", i, p->sends[i].calls,
				    p->sends[i].seq, p->seq_close);
			_fail(file, line);
		}
	}
	if (p->terminals != p->sessions) {
		print_error("%u read session(s), %u terminal on_recv\n",
			    p->sessions, p->terminals);
		_fail(file, line);
	}
	if (p->seq_last != p->seq_close || !p->sock_closed_at_close) {
		print_error("on_close not last (seq %u, last %u) or socket "
			    "open at on_close\n", p->seq_close, p->seq_last);
		_fail(file, line);
	}
}
#define assert_finished(p, reason) \
	assert_finished_((p), (reason), __FILE__, __LINE__)

static void assert_sent_(struct dprobe *p, unsigned i, int status,
			 size_t bytes, const char *file, int line)
{
	const struct sent *s = &p->sends[i];

	if (i < p->nsends && s->calls == 1 && s->status == status &&
	    s->bytes == bytes)
		return;
	print_error("send %u: %u call(s), %s, %lu bytes; want 1, %s, %lu\n",
		    i, s->calls, iocx_error_name(s->status),
		    (unsigned long)s->bytes, iocx_error_name(status),
		    (unsigned long)bytes);
	_fail(file, line);
}
#define assert_sent(p, i, status, bytes) \
	assert_sent_((p), (i), (status), (bytes), __FILE__, __LINE__)

/* Close from the test thread and pump; returns with on_close delivered. */
static void close_and_pump(struct fx *fx, struct dprobe *p,
			   enum iocx_close_mode mode)
{
	assert_int_equal(iocx_close(p->conn, mode), IOCX_OK);
	fake_pump(fx->e);
	assert_finished(p, IOCX_OK);
}

static struct iocx_stats stats(struct fx *fx)
{
	struct iocx_stats s;

	assert_int_equal(iocx_engine_stats(fx->e, &s), IOCX_OK);
	return s;
}

/* Every data call refused with code, and nothing posted or logged. */
static void assert_data_calls_refused(struct fx *fx, struct dprobe *p,
				      int code)
{
	size_t log0 = fake_log_len();
	unsigned pending = fake_pending(fx->e);

	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), code);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_BORROW), code);
	assert_int_equal(ds_read_start(p), code);
	assert_int_equal(iocx_shutdown(p->conn), code);
	assert_int_equal(fake_log_len(), log0);
	assert_int_equal(fake_pending(fx->e), pending);
}

/* ---- refusals before, after and outside the open state --------------- */

static void send_before_connect_reports_notconn(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	start(fx, p);
	fake_log_clear();
	assert_data_calls_refused(fx, p, IOCX_E_NOTCONN);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 0);

	/* Nothing was left behind for the open connection either. */
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->status, IOCX_OK);
	assert_int_equal(fake_sock(p->id)->sends, 0);
	assert_int_equal(fake_sock(p->id)->recvs, 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->sent_calls, 0);
	assert_int_equal(p->terminals, 0);
}

static void send_after_failed_connect_reports_notconn(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	start(fx, p);
	fake_complete(p->conn, IOCX_E_REFUSED, 10061, 0);
	fake_pump(fx->e);
	assert_int_equal(p->status, IOCX_E_REFUSED);
	fake_log_clear();
	assert_data_calls_refused(fx, p, IOCX_E_NOTCONN);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->sent_calls, 0);
}

static void send_while_closing_reports_notconn(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	/* The send in flight keeps a graceful close in CLOSING. */
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 0);
	assert_data_calls_refused(fx, p, IOCX_E_NOTCONN);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_finished(p, IOCX_OK);
}

/*
 * iocx.h: iocx_send returns IOCX_E_NOTCONN when the connection is
 * "closing".  From the caller's point of view it is closing as soon as
 * iocx_close() returned, before a worker has handled the request.
 */
static void send_right_after_close_reports_notconn(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	assert_data_calls_refused(fx, p, IOCX_E_NOTCONN);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->sends, 0);
	assert_finished(p, IOCX_OK);
	assert_int_equal(p->sent_calls, 0);
}

/* The same from inside on_connect, after the callback's own close. */
static void hook_close_then_send(struct dprobe *p, iocx_conn *conn)
{
	hook_result(p, iocx_close(conn, IOCX_CLOSE_GRACEFUL));
	hook_result(p, ds_send(p, pat, 10, IOCX_PAYLOAD_COPY));
	hook_result(p, ds_read_start(p));
	hook_result(p, iocx_shutdown(conn));
}

static void send_after_close_inside_callback_reports_notconn(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	p->on_connect_hook = hook_close_then_send;
	start(fx, p);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 4);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->hook_rc[1], IOCX_E_NOTCONN);
	assert_int_equal(p->hook_rc[2], IOCX_E_NOTCONN);
	assert_int_equal(p->hook_rc[3], IOCX_E_NOTCONN);
	assert_int_equal(fake_sock(p->id)->sends, 0);
	assert_finished(p, IOCX_OK);
}

static void data_calls_reject_bad_arguments(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	iocx_conn *c = make_open(fx, p);
	struct sent dummy = { .p = p };

	assert_int_equal(iocx_send(NULL, pat, 1, IOCX_PAYLOAD_COPY, cb_sent,
				   &dummy), IOCX_E_INVAL);
	assert_int_equal(iocx_send(c, NULL, 1, IOCX_PAYLOAD_COPY, cb_sent,
				   &dummy), IOCX_E_INVAL);
	assert_int_equal(iocx_send(c, pat, 0, IOCX_PAYLOAD_COPY, cb_sent,
				   &dummy), IOCX_E_INVAL);
	assert_int_equal(iocx_send(c, pat, 1, IOCX_PAYLOAD_COPY, NULL,
				   &dummy), IOCX_E_INVAL);
	assert_int_equal(iocx_send(c, pat, 1,
				   (enum iocx_payload_ownership)7, cb_sent,
				   &dummy), IOCX_E_INVAL);
	assert_int_equal(iocx_read_start(NULL, cb_recv), IOCX_E_INVAL);
	assert_int_equal(iocx_read_start(c, NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_read_stop(NULL), IOCX_E_INVAL);
	assert_int_equal(iocx_shutdown(NULL), IOCX_E_INVAL);
	assert_int_equal(fake_log_len(), 0);
	assert_int_equal(fake_pending(fx->e), 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(dummy.calls, 0);
}

/* ---- sends ----------------------------------------------------------- */

static void send_queued_go_one_at_a_time_in_order(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 10, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 30, 30, IOCX_PAYLOAD_BORROW),
			 IOCX_OK);
	/* Never a callback from inside the call. */
	assert_int_equal(p->sent_calls, 0);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_int_equal(s->sends, 1);
	assert_int_equal(s->op_len, 10);

	complete_send(fx, p);
	assert_int_equal(p->sent_calls, 1);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_int_equal(s->sends, 2);
	assert_int_equal(s->op_len, 20);
	complete_send(fx, p);
	assert_int_equal(p->sent_calls, 2);
	assert_sent(p, 1, IOCX_OK, 20);
	complete_send(fx, p);
	assert_sent(p, 2, IOCX_OK, 30);
	assert_true(p->sends[0].seq < p->sends[1].seq);
	assert_true(p->sends[1].seq < p->sends[2].seq);
	assert_int_equal(s->op, FAKE_NONE);

	assert_fake_data_log({ FAKE_SEND, p->id, 10 },
			     { FAKE_SEND, p->id, 20 },
			     { FAKE_SEND, p->id, 30 });
	/* The stream the socket was given is the sends, in order. */
	assert_int_equal(s->acked, 60);
	assert_memory_equal(s->capture, pat, 60);
	assert_int_equal(stats(fx).bytes_sent, 60);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void send_partial_completion_reissues_rest(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 100, IOCX_PAYLOAD_BORROW), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 100, 5, IOCX_PAYLOAD_COPY),
			 IOCX_OK);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_ptr_equal(s->last_buf, pat);

	fake_complete(p->conn, IOCX_OK, 0, 40);
	fake_pump(fx->e);
	assert_int_equal(p->sent_calls, 0);
	assert_int_equal(s->op_len, 60);
	assert_ptr_equal(s->last_buf, pat + 40);

	fake_complete(p->conn, IOCX_OK, 0, 25);
	fake_pump(fx->e);
	assert_int_equal(p->sent_calls, 0);
	assert_int_equal(s->op_len, 35);
	assert_ptr_equal(s->last_buf, pat + 65);

	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 100);
	assert_int_equal(s->op_len, 5);
	complete_send(fx, p);
	assert_sent(p, 1, IOCX_OK, 5);
	assert_fake_data_log({ FAKE_SEND, p->id, 100 },
			     { FAKE_SEND, p->id, 60 },
			     { FAKE_SEND, p->id, 35 },
			     { FAKE_SEND, p->id, 5 });
	assert_memory_equal(s->capture, pat, 105);
	assert_int_equal(stats(fx).bytes_sent, 105);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void send_copy_copies_borrow_borrows(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	unsigned char mine[32];
	unsigned char lent[16];
	const struct fake_sock *s;

	make_open(fx, p);
	memcpy(mine, pat, sizeof(mine));
	memcpy(lent, pat + 32, sizeof(lent));
	assert_int_equal(ds_send(p, mine, sizeof(mine), IOCX_PAYLOAD_COPY),
			 IOCX_OK);
	/* COPY: the caller's buffer is free at once. */
	memset(mine, 0xee, sizeof(mine));
	assert_int_equal(ds_send(p, lent, sizeof(lent), IOCX_PAYLOAD_BORROW),
			 IOCX_OK);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_true(s->last_buf != (const void *)mine);
	complete_send(fx, p);
	/* BORROW: the engine sends from the caller's buffer itself. */
	assert_ptr_equal(s->last_buf, lent);
	complete_send(fx, p);
	assert_memory_equal(s->capture, pat, 48);
	assert_sent(p, 0, IOCX_OK, 32);
	assert_sent(p, 1, IOCX_OK, 16);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void send_error_fails_queued_and_later_sends(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	unsigned seq;

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 20, IOCX_PAYLOAD_BORROW), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 30, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	/* The connection breaks with 4 bytes of the first send out. */
	fake_complete(p->conn, IOCX_E_RESET, 10054, 4);
	fake_pump(fx->e);
	assert_int_equal(p->sent_calls, 3);
	assert_sent(p, 0, IOCX_E_RESET, 4);
	assert_sent(p, 1, IOCX_E_RESET, 0);
	assert_sent(p, 2, IOCX_E_RESET, 0);
	assert_int_equal(fake_sock(p->id)->sends, 1);

	/* Later calls get the error synchronously, with no callback. */
	seq = cb_seq;
	assert_data_calls_refused(fx, p, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_int_equal(cb_seq, seq);
	assert_int_equal(stats(fx).bytes_sent, 4);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->nsends, 3);
}

/* The send made inside the on_sent that reports the break. */
static void hook_send_on_error(struct dprobe *p, iocx_conn *conn,
			       struct sent *s)
{
	(void)conn;
	if (s->idx == 0 && s->status != IOCX_OK)
		hook_result(p, ds_send(p, pat, 7, IOCX_PAYLOAD_COPY));
}

static void send_inside_failing_on_sent_reports_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_sent_hook = hook_send_on_error;
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	fake_complete(p->conn, IOCX_E_RESET, 10054, 0);
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 1);
	/* The connection is broken by the time its on_sent says so. */
	assert_int_equal(p->hook_rc[0], IOCX_E_RESET);
	assert_int_equal(p->nsends, 1);
	assert_int_equal(fake_sock(p->id)->sends, 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void send_sync_failure_breaks_connection(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_fail_next(FAKE_SEND, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_E_RESET, 0);
	assert_sent(p, 1, IOCX_E_RESET, 0);
	assert_int_equal(fake_sock(p->id)->op, FAKE_NONE);
	assert_data_calls_refused(fx, p, IOCX_E_RESET);
	assert_int_equal(stats(fx).bytes_sent, 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/* A send made inside on_sent queues behind those already accepted. */
static void hook_send_more(struct dprobe *p, iocx_conn *conn, struct sent *s)
{
	(void)conn;
	if (s->idx == 0)
		hook_result(p, ds_send(p, pat + 60, 40, IOCX_PAYLOAD_COPY));
}

static void send_inside_on_sent_keeps_order(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	p->on_sent_hook = hook_send_more;
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 10, 50, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx, p);
	complete_send(fx, p);
	complete_send(fx, p);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_OK, 50);
	assert_sent(p, 2, IOCX_OK, 40);
	s = fake_sock(p->id);
	assert_memory_equal(s->capture, pat, 100);
	/* Inside the callback nothing is posted. */
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/* ---- reads ----------------------------------------------------------- */

static void read_start_issues_recv_and_delivers_bytes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(p->data_calls, 0);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_int_equal(s->recvs, 1);
	assert_int_equal(s->recv_len, RBUF);

	fake_complete_recv(p->conn, IOCX_OK, "hello", 5);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 1);
	assert_int_equal(p->rxlen, 5);
	assert_memory_equal(p->rx, "hello", 5);
	/* Straight from the engine's buffer, and the next read is out. */
	assert_int_equal(s->recvs, 2);
	assert_ptr_equal(p->last_data, s->recv_buf);

	fake_complete_recv(p->conn, IOCX_OK, pat, RBUF);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 2);
	assert_int_equal(p->rxlen, 5 + RBUF);
	assert_memory_equal(p->rx + 5, pat, RBUF);
	assert_int_equal(p->terminals, 0);
	assert_int_equal(stats(fx).bytes_received, 5 + RBUF);
	assert_fake_data_log({ FAKE_RECV, p->id, RBUF },
			     { FAKE_RECV, p->id, RBUF },
			     { FAKE_RECV, p->id, RBUF });

	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
}

static void read_zero_bytes_reports_eof(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, "ab", 2);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, NULL, 0);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_int_equal(p->data_calls, 1);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_EOF);
	assert_int_equal(s->recvs, 2);
	assert_false(fake_recv_pending(p->id));

	/* FIN from the peer is half a close: sending goes on. */
	assert_int_equal(ds_send(p, pat, 3, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 3);
	/* And reading may start again. */
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(s->recvs, 3);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminal[1], IOCX_E_CANCELLED);
}

static void read_error_reports_terminal_and_breaks(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_op(p->conn, IOCX_OP_RECV, IOCX_E_RESET, 0xC000020Du, 0);
	fake_pump(fx->e);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_RESET);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	assert_data_calls_refused(fx, p, IOCX_E_RESET);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void read_sync_failure_reports_terminal_and_breaks(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_fail_next(FAKE_RECV, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_RESET);
	assert_false(fake_recv_pending(p->id));
	assert_data_calls_refused(fx, p, IOCX_E_RESET);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void read_buffer_nomem_ends_session(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	/* The receive buffer is the first allocation of the pump. */
	alloc_fail_nth(0);
	fake_pump(fx->e);
	assert_int_equal(hook_failed, 1);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_NOMEM);
	assert_int_equal(fake_sock(p->id)->recvs, 0);
	/* Not a broken connection: a new read may succeed. */
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void read_stop_cancels_recv_in_flight(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_recv_pending(p->id));
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	assert_int_equal(p->terminals, 0);
	fake_pump(fx->e);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_false(fake_recv_pending(p->id));
	assert_fake_data_log({ FAKE_RECV, p->id, RBUF },
			     { FAKE_CANCEL_RECV, p->id, 0 });
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	/* Stopped, not broken. */
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->recvs, 2);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/* Blocks of the library's heap in use now. */
static long blocks_live(void)
{
	return (long)hook_allocs - (long)hook_frees;
}

static void read_session_end_frees_receive_buffer(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	long open_blocks;

	make_open(fx, p);
	open_blocks = blocks_live();
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_recv_pending(p->id));
	/* Reading: the connection holds its data block (made by the first
	 * data call) and its receive buffer. */
	assert_int_equal(blocks_live(), open_blocks + 2);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->terminals, 1);
	/* Not reading any more: the buffer is back, the connection open
	 * with its data block. */
	assert_int_equal(blocks_live(), open_blocks + 1);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->recvs, 2);
	assert_int_equal(blocks_live(), open_blocks + 2);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/*
 * A connection that neither sends nor reads has no data block (conn.h):
 * a stop without a read session, a FIN and the queued-bytes gauge need
 * none.  The first send makes it.
 */
static void data_block_made_by_first_send_only(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	long open_blocks;

	make_open(fx, p);
	open_blocks = blocks_live();
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(iocx_conn_queued_bytes(p->conn), 0);
	assert_int_equal(blocks_live(), open_blocks);
	assert_int_equal(ds_send(p, "abc", 3, IOCX_PAYLOAD_BORROW), IOCX_OK);
	/* The data block and the send's request. */
	assert_int_equal(blocks_live(), open_blocks + 2);
	assert_int_equal(iocx_conn_queued_bytes(p->conn), 3);
	fake_pump(fx->e);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 3);
	/* The request is freed; the block stays until the end. */
	assert_int_equal(blocks_live(), open_blocks + 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void read_stop_losing_to_data_delivers_it_first(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->recv_cancels, 1);
	/* The receive finished with data before the cancel took. */
	fake_complete_recv(p->conn, IOCX_OK, "late", 4);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 1);
	assert_memory_equal(p->rx, "late", 4);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_true(p->seq_terminal[0] > p->seq_data);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	fake_set_cancel_completes(true);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void hook_stop_on_data(struct dprobe *p, iocx_conn *conn, int status)
{
	if (status == IOCX_OK)
		hook_result(p, iocx_read_stop(conn));
}

static void read_stop_inside_on_recv_ends_session(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_recv_hook = hook_stop_on_data;
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, "xyz", 3);
	fake_pump(fx->e);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->data_calls, 1);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	/* No receive was in flight: none issued, none cancelled. */
	assert_fake_data_log({ FAKE_RECV, p->id, RBUF });
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void hook_restart_on_terminal(struct dprobe *p, iocx_conn *conn,
				     int status)
{
	(void)conn;
	if (status != IOCX_OK && p->terminals == 1)
		hook_result(p, ds_read_start(p));
}

static void read_start_inside_terminal_on_recv_restarts(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_recv_hook = hook_restart_on_terminal;
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, NULL, 0);
	fake_pump(fx->e);
	assert_int_equal(p->terminal[0], IOCX_E_EOF);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->sessions, 2);
	assert_int_equal(fake_sock(p->id)->recvs, 2);
	fake_complete_recv(p->conn, IOCX_OK, "again", 5);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 1);
	assert_memory_equal(p->rx, "again", 5);
	/* Also after a stop. */
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->terminals, 2);
	assert_int_equal(p->terminal[1], IOCX_E_CANCELLED);
	assert_int_equal(p->sessions, 2);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 2);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void read_start_twice_reports_already(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_read_start(p), IOCX_E_ALREADY);
	fake_pump(fx->e);
	assert_int_equal(ds_read_start(p), IOCX_E_ALREADY);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminals, 1);
}

/* ---- shutdown -------------------------------------------------------- */

static void shutdown_waits_for_queued_sends(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 10, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 5, IOCX_PAYLOAD_COPY),
			 IOCX_E_NOTCONN);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_E_ALREADY);
	/* One KICK carries all of it. */
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 1);
	fake_pump(fx->e);
	s = fake_sock(p->id);
	assert_int_equal(s->shutdowns, 0);
	complete_send(fx, p);
	assert_int_equal(s->shutdowns, 0);
	complete_send(fx, p);
	/* FIN once, after every byte was confirmed. */
	assert_int_equal(s->shutdowns, 1);
	assert_int_equal(s->acked_at_shutdown, 30);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_OK, 20);

	/* Reading goes on after the FIN. */
	fake_complete_recv(p->conn, IOCX_OK, "r", 1);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 1);
	assert_fake_data_log({ FAKE_RECV, p->id, RBUF },
			     { FAKE_SEND, p->id, 10 },
			     { FAKE_SEND, p->id, 20 },
			     { FAKE_SHUTDOWN, p->id, 30 },
			     { FAKE_RECV, p->id, RBUF });
	assert_int_equal(ds_send(p, pat, 5, IOCX_PAYLOAD_COPY),
			 IOCX_E_NOTCONN);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_E_ALREADY);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(s->shutdowns, 1);
	assert_int_equal(p->nsends, 2);
}

static void shutdown_with_nothing_queued_sends_fin_at_once(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	assert_int_equal(fake_sock(p->id)->shutdowns, 0);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	assert_fake_data_log({ FAKE_SHUTDOWN, p->id, 0 });
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_fake_data_log({ FAKE_SHUTDOWN, p->id, 0 },
			     { FAKE_CLOSE, p->id, 0 });
}

static void shutdown_failure_breaks_connection(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	fake_fail_next(FAKE_SHUTDOWN, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	/* The failed FIN broke the connection: reads are refused with the
	 * error; sends and shutdown were over with the request already. */
	assert_int_equal(ds_read_start(p), IOCX_E_RESET);
	assert_int_equal(ds_send(p, pat, 1, IOCX_PAYLOAD_COPY), IOCX_E_RESET);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_E_ALREADY);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/*
 * Without our FIN the peer's may never come: a read session on when the
 * OS refuses the FIN ends with the FIN's error (its receive cancelled),
 * once, and the close then completes.
 */
static void shutdown_failure_ends_read_session_with_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_recv_pending(p->id));
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	fake_fail_next(FAKE_SHUTDOWN, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	assert_int_equal(fake_sock(p->id)->recv_cancels, 1);
	assert_false(fake_recv_pending(p->id));
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_RESET);
	assert_int_equal(ds_read_start(p), IOCX_E_RESET);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminals, 1);
}

/* Data the receive got before its cancel took comes first, then the
 * FIN's error. */
static void shutdown_failure_delivers_data_then_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	fake_fail_next(FAKE_SHUTDOWN, IOCX_E_NOTCONN);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->recv_cancels, 1);
	assert_int_equal(p->terminals, 0);
	fake_complete_recv(p->conn, IOCX_OK, "late", 4);
	fake_pump(fx->e);
	assert_int_equal(p->data_calls, 1);
	assert_memory_equal(p->rx, "late", 4);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_NOTCONN);
	assert_true(p->seq_terminal[0] > p->seq_data);
	/* Not issued again: the session is over. */
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	fake_set_cancel_completes(true);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/*
 * A send the OS refuses breaks the connection; the peer may never answer
 * what it did not get, so a read session on ends with the send's error
 * (its receive cancelled) instead of waiting for data or a watchdog.
 */
static void send_failure_ends_read_session_with_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_recv_pending(p->id));
	fake_complete(p->conn, IOCX_E_RESET, 10054, 3);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_E_RESET, 3);
	assert_sent(p, 1, IOCX_E_RESET, 0);
	assert_int_equal(fake_sock(p->id)->recv_cancels, 1);
	assert_false(fake_recv_pending(p->id));
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_RESET);
	assert_true(p->seq_terminal[0] > p->sends[1].seq);
	assert_data_calls_refused(fx, p, IOCX_E_RESET);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_E_NOTCONN);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminals, 1);
}

/* The same when the OS refuses the send at once. */
static void send_sync_failure_ends_read_session_with_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_fail_next(FAKE_SEND, IOCX_E_NOMEM);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_E_NOMEM, 0);
	assert_int_equal(fake_sock(p->id)->recv_cancels, 1);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_NOMEM);
	assert_data_calls_refused(fx, p, IOCX_E_NOMEM);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminals, 1);
}

/*
 * A read_stop whose cancel the OS refused, so the backend gave the socket
 * up to end the receive (socket_lost): the session ends as asked, and the
 * connection is broken with IOCX_E_ABORTED, as after a failed send.  No
 * call reaches the dead socket but its close; the program's close ends
 * the connection as usual.
 */
static void read_stop_losing_socket_breaks_connection(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	struct sockaddr_storage ss;
	iocx_socket_t s = IOCX_INVALID_SOCKET;

	make_open(fx, p);
	assert_true(iocx_conn_socket(p->conn) == FAKE_NATIVE(p->id));
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_loses_socket(true);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_true(fake_sock(p->id)->lost);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_int_equal(p->closes, 0);
	assert_data_calls_refused(fx, p, IOCX_E_ABORTED);
	assert_true(iocx_conn_socket(p->conn) == IOCX_INVALID_SOCKET);
	assert_int_equal(iocx_conn_local_addr(p->conn, &ss), IOCX_E_NOTCONN);
	assert_int_equal(iocx_detach(p->conn, &s), IOCX_E_ABORTED);
	assert_true(s == IOCX_INVALID_SOCKET);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fake_count(FAKE_CLOSE, p->id), 1);
	assert_int_equal(p->terminals, 1);
}

/*
 * The lost socket under a FIN the OS refused: the read ends with the
 * FIN's error, which stays the connection's (the first error wins), and
 * no receive is issued on the dead socket.
 */
static void shutdown_failure_losing_socket_keeps_first_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_set_cancel_loses_socket(true);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	fake_fail_next(FAKE_SHUTDOWN, IOCX_E_NOTCONN);
	fake_pump(fx->e);
	assert_true(fake_sock(p->id)->lost);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_NOTCONN);
	assert_int_equal(ds_read_start(p), IOCX_E_NOTCONN);
	close_and_pump(fx, p, IOCX_CLOSE_ABORT);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
}

/* ---- close and destroy with data in flight --------------------------- */

/* Reading, one send in flight and two queued. */
static void make_busy(struct fx *fx, struct dprobe *p)
{
	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 10, 20, IOCX_PAYLOAD_BORROW),
			 IOCX_OK);
	assert_int_equal(ds_send(p, pat + 30, 30, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(fake_sock(p->id)->op, FAKE_SEND);
	assert_true(fake_recv_pending(p->id));
	fake_log_clear();
}

static void graceful_close_drains_sends_then_closes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_busy(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	/* Reading ends at once; the sends still go out. */
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_int_equal(p->sent_calls, 0);
	assert_int_equal(p->closes, 0);
	complete_send(fx, p);
	complete_send(fx, p);
	assert_int_equal(p->closes, 0);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_OK, 20);
	assert_sent(p, 2, IOCX_OK, 30);
	assert_finished(p, IOCX_OK);
	s = fake_sock(p->id);
	assert_memory_equal(s->capture, pat, 60);
	assert_fake_data_log({ FAKE_CANCEL_RECV, p->id, 0 },
			     { FAKE_SEND, p->id, 20 },
			     { FAKE_SEND, p->id, 30 },
			     { FAKE_CLOSE, p->id, 0 });
	assert_true(p->seq_terminal[0] < p->sends[0].seq);
}

/*
 * A graceful close waits for the peer to take the data; one that takes
 * too long can be made abortive: what is still queued or in flight is
 * cancelled and the socket reset, with one on_sent each and one on_close.
 */
static void graceful_close_made_abortive_cancels_drain(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_int_equal(p->closes, 0);
	fake_log_clear();
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->sent_calls, 3);
	assert_int_equal(p->terminals, 1);
	assert_finished(p, IOCX_OK);
	assert_fake_data_log({ FAKE_CANCEL, p->id, 0 },
			     { FAKE_CLOSE, p->id, 1 });
	assert_memory_equal(fake_sock(p->id)->capture, pat, 10);
}

static void abortive_close_cancels_sends_and_read(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_E_CANCELLED, 0);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_finished(p, IOCX_OK);
	assert_fake_data_log({ FAKE_CANCEL_RECV, p->id, 0 },
			     { FAKE_CANCEL, p->id, 0 },
			     { FAKE_CLOSE, p->id, 1 });
	assert_int_equal(fake_sock(p->id)->sends, 1);
	assert_int_equal(stats(fx).bytes_sent, 0);
}

static void abortive_close_send_beating_cancel_reports_ok(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	fake_set_cancel_completes(false);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_ABORT), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->sent_calls, 0);
	/* The send finished before the cancel took; the read was cut. */
	complete_send(fx, p);
	fake_complete_op(p->conn, IOCX_OP_RECV, IOCX_E_CANCELLED,
			 0xC0000120u, 0);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_finished(p, IOCX_OK);
	assert_int_equal(fake_sock(p->id)->abort, true);
	assert_int_equal(fake_sock(p->id)->sends, 1);
}

static void destroy_with_data_in_flight_cancels_everything(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_sent(p, 0, IOCX_E_CANCELLED, 0);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_finished(p, IOCX_E_SHUTDOWN);
	assert_true(fake_sock(p->id)->abort);
	assert_int_equal(fake_engines(), fx->engines);
}

/*
 * What iocx_engine_destroy does first for each live connection
 * (request_shutdown in src/engine.c): post IOCX_EV_SHUTDOWN holding a
 * reference.  Posting it by hand lets a test see what destroy would do
 * without looping forever in iocx_engine_destroy when it does not.
 */
static void post_shutdown(struct fx *fx, struct dprobe *p)
{
	iocx__conn_ref(p->conn);
	assert_int_equal(fake_backend.post(fx->e, IOCX_EV_SHUTDOWN, p->conn),
			 IOCX_OK);
}

/*
 * src/conn.c on_close_request: "Destroy does not wait for a peer that
 * stopped reading: it resets."  That must also hold when a graceful close
 * was already draining: otherwise destroy waits for a send that a peer
 * which never reads never completes.
 */
static void destroy_during_graceful_drain_resets(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(p->closes, 0);
	fake_log_clear();
	post_shutdown(fx, p);
	fake_pump(fx->e);
	/* The send in flight is cancelled, not waited for. */
	if (fake_sock(p->id)->cancels == 0) {
		/* Let the drain end, so that the teardown can destroy. */
		complete_send(fx, p);
		complete_send(fx, p);
		complete_send(fx, p);
		fail_msg("destroy left a graceful close waiting for its "
			 "sends: no cancel issued");
	}
	assert_int_equal(fake_sock(p->id)->cancels, 1);
	assert_sent(p, 0, IOCX_E_CANCELLED, 0);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_finished(p, IOCX_OK);
	assert_true(fake_sock(p->id)->abort);
}

static void destroy_with_requests_not_yet_taken(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	/* Accepted, the KICK still queued: no worker has seen them. */
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(fake_pending(fx->e), 1);
	assert_int_equal(iocx_engine_destroy(fx->e), IOCX_OK);
	fx->e = NULL;
	assert_int_equal(p->sent_calls, 2);
	assert_int_equal(p->sends[0].status, IOCX_E_CANCELLED);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_finished(p, IOCX_E_SHUTDOWN);
}

static void graceful_close_after_shutdown_drains_then_closes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];
	const struct fake_sock *s;

	make_open(fx, p);
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(p, pat + 10, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	assert_int_equal(iocx_close(p->conn, IOCX_CLOSE_GRACEFUL), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx, p);
	assert_int_equal(p->closes, 0);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_OK, 20);
	assert_finished(p, IOCX_OK);
	s = fake_sock(p->id);
	/* The close itself carries the FIN, after all of the data. */
	assert_false(s->abort);
	assert_true(s->shutdowns <= 1);
	assert_memory_equal(s->capture, pat, 30);
}

static void close_with_only_a_read_in_flight(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_log_clear();
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_fake_data_log({ FAKE_CANCEL_RECV, p->id, 0 },
			     { FAKE_CLOSE, p->id, 0 });
}

/* ---- calls from inside callbacks ------------------------------------- */

static void hook_send_read_close(struct dprobe *p, iocx_conn *conn)
{
	hook_result(p, ds_send(p, pat, 12, IOCX_PAYLOAD_COPY));
	hook_result(p, ds_read_start(p));
	hook_result(p, iocx_close(conn, IOCX_CLOSE_GRACEFUL));
}

static void close_inside_on_connect_drains_its_send(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	p->on_connect_hook = hook_send_read_close;
	start(fx, p);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->hook_rc[1], IOCX_OK);
	assert_int_equal(p->hook_rc[2], IOCX_OK);
	/* No KICK from inside the callback. */
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 0);
	/* The read ended at once; the send is out and drains. */
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_int_equal(p->closes, 0);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 12);
	assert_finished(p, IOCX_OK);
	assert_int_equal(fake_sock(p->id)->recvs, 0);
}

static void hook_close_on_sent(struct dprobe *p, iocx_conn *conn,
			       struct sent *s)
{
	if (s->idx == 0)
		hook_result(p, iocx_close(conn, (enum iocx_close_mode)
						    p->hook_arg));
}

static void close_inside_on_sent_graceful_drains_rest(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	p->on_sent_hook = hook_close_on_sent;
	p->hook_arg = IOCX_CLOSE_GRACEFUL;
	complete_send(fx, p);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->terminals, 1);
	complete_send(fx, p);
	complete_send(fx, p);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_OK, 20);
	assert_sent(p, 2, IOCX_OK, 30);
	assert_finished(p, IOCX_OK);
	assert_false(fake_sock(p->id)->abort);
}

static void close_inside_on_sent_abortive_cancels_rest(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	p->on_sent_hook = hook_close_on_sent;
	p->hook_arg = IOCX_CLOSE_ABORT;
	complete_send(fx, p);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_sent(p, 0, IOCX_OK, 10);
	assert_sent(p, 1, IOCX_E_CANCELLED, 0);
	assert_sent(p, 2, IOCX_E_CANCELLED, 0);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_finished(p, IOCX_OK);
	assert_true(fake_sock(p->id)->abort);
	/* The queued sends never reached the socket. */
	assert_int_equal(fake_sock(p->id)->sends, 1);
}

static void hook_close_on_data(struct dprobe *p, iocx_conn *conn, int status)
{
	if (status == IOCX_OK)
		hook_result(p, iocx_close(conn, IOCX_CLOSE_ABORT));
}

static void close_inside_on_recv_ends_read_and_closes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_busy(fx, p);
	p->on_recv_hook = hook_close_on_data;
	fake_complete_recv(p->conn, IOCX_OK, "bye", 3);
	fake_pump(fx->e);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->data_calls, 1);
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_sent(p, 0, IOCX_E_CANCELLED, 0);
	assert_finished(p, IOCX_OK);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
}

static void hook_close_on_any_sent(struct dprobe *p, iocx_conn *conn,
				   struct sent *s)
{
	(void)s;
	hook_result(p, iocx_close(conn, IOCX_CLOSE_GRACEFUL));
}

/*
 * on_sent(error) for a send that failed synchronously runs from pump()
 * (a KICK, no completion); closing there is the natural reaction and
 * must not wait for an event that will never come.
 */
static void close_inside_on_sent_after_sync_failure_closes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_sent_hook = hook_close_on_any_sent;
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_fail_next(FAKE_SEND, IOCX_E_RESET);
	fake_pump(fx->e);
	assert_sent(p, 0, IOCX_E_RESET, 0);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_finished(p, IOCX_OK);
}

/* Data: stop reading; the terminal CANCELLED that follows: hook_arg. */
static void hook_stop_then_act(struct dprobe *p, iocx_conn *conn, int status)
{
	if (status == IOCX_OK)
		hook_result(p, iocx_read_stop(conn));
	else if (p->hook_arg == 1)
		hook_result(p, iocx_close(conn, IOCX_CLOSE_GRACEFUL));
	else if (p->hook_arg == 2)
		hook_result(p, iocx_shutdown(conn));
}

/* The terminal on_recv of a stop made inside on_recv also runs in pump(). */
static void close_inside_terminal_on_recv_after_stop_closes(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_recv_hook = hook_stop_then_act;
	p->hook_arg = 1;
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, "q", 1);
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 2);
	assert_int_equal(p->hook_rc[0], IOCX_OK);
	assert_int_equal(p->hook_rc[1], IOCX_OK);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_int_equal(fake_pending(fx->e), 0);
	assert_finished(p, IOCX_OK);
}

static void shutdown_inside_terminal_on_recv_after_stop_sends_fin(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	p->on_recv_hook = hook_stop_then_act;
	p->hook_arg = 2;
	assert_int_equal(ds_read_start(p), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, "q", 1);
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 2);
	assert_int_equal(p->hook_rc[1], IOCX_OK);
	assert_int_equal(fake_pending(fx->e), 0);
	/* Nothing queued: the FIN is due now, not at some later event. */
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

/* ---- request packets ------------------------------------------------- */

static void kick_posted_once_for_requests_outside_callbacks(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	/* The test thread is no callback: the first request posts. */
	assert_int_equal(ds_send(p, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 1);
	assert_int_equal(ds_send(p, pat, 20, IOCX_PAYLOAD_BORROW), IOCX_OK);
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(ds_send(p, pat, 30, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(iocx_read_stop(p->conn), IOCX_OK);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	/* ... the others ride on it. */
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 1);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 1);
	assert_int_equal(fake_pending(fx->e), 1);
	fake_pump(fx->e);
	/* Started and stopped before any receive was issued. */
	assert_int_equal(p->terminals, 1);
	assert_int_equal(p->terminal[0], IOCX_E_CANCELLED);
	assert_int_equal(fake_sock(p->id)->recvs, 0);
	assert_int_equal(fake_sock(p->id)->sends, 1);

	/* Once the worker took them, the next request posts again. */
	assert_int_equal(ds_read_start(p), IOCX_OK);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 2);
	fake_pump(fx->e);
	complete_send(fx, p);
	complete_send(fx, p);
	complete_send(fx, p);
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	/* Completions never needed a KICK. */
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, p->id), 2);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 2);
}

static void hook_requests_on_connect(struct dprobe *p, iocx_conn *conn)
{
	(void)conn;
	hook_result(p, ds_read_start(p));
	hook_result(p, ds_send(p, pat, 10, IOCX_PAYLOAD_COPY));
}

static void hook_requests_on_sent(struct dprobe *p, iocx_conn *conn,
				  struct sent *s)
{
	if (s->idx != 0)
		return;
	hook_result(p, ds_send(p, pat + 10, 10, IOCX_PAYLOAD_COPY));
	hook_result(p, iocx_shutdown(conn));
}

static void hook_requests_on_recv(struct dprobe *p, iocx_conn *conn,
				  int status)
{
	(void)conn;
	if (status == IOCX_E_EOF)
		hook_result(p, ds_read_start(p));
	else if (status == IOCX_OK)
		hook_result(p, iocx_read_stop(conn));
}

static void no_kick_for_requests_inside_callbacks(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	p->on_connect_hook = hook_requests_on_connect;
	p->on_sent_hook = hook_requests_on_sent;
	p->on_recv_hook = hook_requests_on_recv;
	start(fx, p);
	fake_complete(p->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 2);
	assert_int_equal(fake_sock(p->id)->recvs, 1);
	assert_int_equal(fake_sock(p->id)->sends, 1);
	complete_send(fx, p);
	assert_int_equal(p->hook_calls, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(p->hook_rc[i], IOCX_OK);
	complete_send(fx, p);
	assert_int_equal(fake_sock(p->id)->shutdowns, 1);
	assert_memory_equal(fake_sock(p->id)->capture, pat, 20);
	fake_complete_recv(p->conn, IOCX_OK, NULL, 0);	/* EOF: restart */
	fake_pump(fx->e);
	fake_complete_recv(p->conn, IOCX_OK, "d", 1);	/* data: stop */
	fake_pump(fx->e);
	assert_int_equal(p->hook_calls, 6);
	assert_int_equal(p->hook_rc[4], IOCX_OK);
	assert_int_equal(p->hook_rc[5], IOCX_OK);
	assert_int_equal(p->terminals, 2);
	assert_int_equal(p->terminal[1], IOCX_E_CANCELLED);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, 0), 0);
}

/* A callback of one connection acting on another one posts for it. */
static void hook_send_on_other(struct dprobe *p, iocx_conn *conn)
{
	struct dprobe *other = &the_fx.p[1];

	(void)conn;
	hook_result(p, ds_send(other, pat, 8, IOCX_PAYLOAD_COPY));
}

static void kick_posted_for_requests_from_another_conns_callback(void **state)
{
	struct fx *fx = *state;
	struct dprobe *a = &fx->p[0];
	struct dprobe *b = &fx->p[1];

	make_open(fx, b);
	a->on_connect_hook = hook_send_on_other;
	start(fx, a);
	fake_complete(a->conn, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	assert_int_equal(a->hook_rc[0], IOCX_OK);
	assert_int_equal(fake_count_posts(IOCX_EV_KICK, b->id), 1);
	assert_int_equal(fake_sock(b->id)->sends, 1);
	complete_send(fx, b);
	assert_sent(b, 0, IOCX_OK, 8);
	close_and_pump(fx, a, IOCX_CLOSE_GRACEFUL);
	close_and_pump(fx, b, IOCX_CLOSE_GRACEFUL);
}

/* ---- stats ----------------------------------------------------------- */

static void stats_count_bytes_sent_and_received(void **state)
{
	struct fx *fx = *state;
	struct dprobe *a = &fx->p[0];
	struct dprobe *b = &fx->p[1];
	struct iocx_stats st;

	make_open(fx, a);
	make_open(fx, b);
	st = stats(fx);
	assert_int_equal(st.bytes_sent, 0);
	assert_int_equal(st.bytes_received, 0);
	assert_int_equal(ds_send(a, pat, 100, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(b, pat, 50, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_read_start(a), IOCX_OK);
	fake_pump(fx->e);
	fake_complete(a->conn, IOCX_OK, 0, 30);		/* short */
	fake_complete(b->conn, IOCX_E_RESET, 10054, 20);	/* broken */
	fake_complete_recv(a->conn, IOCX_OK, pat, 40);
	fake_pump(fx->e);
	st = stats(fx);
	assert_int_equal(st.bytes_sent, 50);
	assert_int_equal(st.bytes_received, 40);
	complete_send(fx, a);
	fake_complete_recv(a->conn, IOCX_OK, NULL, 0);	/* EOF adds none */
	fake_pump(fx->e);
	st = stats(fx);
	assert_int_equal(st.bytes_sent, 120);
	assert_int_equal(st.bytes_received, 40);
	close_and_pump(fx, a, IOCX_CLOSE_GRACEFUL);
	close_and_pump(fx, b, IOCX_CLOSE_GRACEFUL);
	st = stats(fx);
	assert_int_equal(st.closed, 2);
	assert_int_equal(st.open, 0);
}

static struct iocx_io_errors io_errors(struct fx *fx)
{
	struct iocx_io_errors s;

	memset(&s, 0xff, sizeof(s));	/* the call must write every word */
	assert_int_equal(iocx_engine_io_errors(fx->e, &s), IOCX_OK);
	for (size_t i = 0; i < sizeof(s.reserved) / sizeof(s.reserved[0]);
	     i++)
		assert_int_equal(s.reserved[i], 0);
	return s;
}

/* Exactly the given counts in one table; every other entry is 0. */
static void assert_by_code(const uint64_t *by_code, int code1, uint64_t n1,
			   int code2, uint64_t n2)
{
	for (int i = 0; i < IOCX_STATS_ERRORS; i++) {
		uint64_t want = i == -code1 ? n1 : i == -code2 ? n2 : 0;

		assert_int_equal(by_code[i], want);
	}
}

static uint64_t sends_reset_seen;	/* by hook_read_io_errors */

static void hook_read_io_errors(struct dprobe *p, iocx_conn *conn,
				struct sent *s)
{
	struct iocx_io_errors io;

	(void)p;
	(void)conn;
	if (s->idx == 0) {
		assert_int_equal(iocx_engine_io_errors(the_fx.e, &io),
				 IOCX_OK);
		sends_reset_seen = io.send[-IOCX_E_RESET];
	}
}

static void io_errors_count_each_failed_send_by_code(void **state)
{
	struct fx *fx = *state;
	struct dprobe *a = &fx->p[0];
	struct dprobe *b = &fx->p[1];
	struct iocx_io_errors io;

	make_open(fx, a);
	make_open(fx, b);
	io = io_errors(fx);
	assert_by_code(io.send, 0, 0, 0, 0);
	assert_by_code(io.recv, 0, 0, 0, 0);
	/* a: a reset fails the send in flight and the two queued. */
	a->on_sent_hook = hook_read_io_errors;
	sends_reset_seen = 0;
	assert_int_equal(ds_send(a, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(a, pat, 20, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(a, pat, 30, IOCX_PAYLOAD_COPY), IOCX_OK);
	/* b: one send goes out, one is refused at once by the OS. */
	assert_int_equal(ds_send(b, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	assert_int_equal(ds_send(b, pat, 10, IOCX_PAYLOAD_COPY), IOCX_OK);
	fake_pump(fx->e);
	fake_complete(a->conn, IOCX_E_RESET, 10054, 4);
	fake_fail_next(FAKE_SEND, IOCX_E_ABORTED);	/* b's second send */
	complete_send(fx, b);
	assert_sent(b, 0, IOCX_OK, 10);
	assert_sent(b, 1, IOCX_E_ABORTED, 0);
	/* Counted before the first on_sent that reported it. */
	assert_int_equal(sends_reset_seen, 1);
	io = io_errors(fx);
	assert_by_code(io.send, IOCX_E_RESET, 3, IOCX_E_ABORTED, 1);
	assert_by_code(io.recv, 0, 0, 0, 0);
	close_and_pump(fx, a, IOCX_CLOSE_GRACEFUL);
	close_and_pump(fx, b, IOCX_CLOSE_GRACEFUL);
	/* A refused call (no on_sent) and closing counted nothing more. */
	io = io_errors(fx);
	assert_by_code(io.send, IOCX_E_RESET, 3, IOCX_E_ABORTED, 1);
	assert_by_code(io.recv, 0, 0, 0, 0);
}

static void io_errors_count_terminal_reads_by_code(void **state)
{
	struct fx *fx = *state;
	struct dprobe *a = &fx->p[0];
	struct dprobe *b = &fx->p[1];
	struct iocx_io_errors io;

	make_open(fx, a);
	make_open(fx, b);
	assert_int_equal(ds_read_start(a), IOCX_OK);
	assert_int_equal(ds_read_start(b), IOCX_OK);
	fake_pump(fx->e);
	fake_complete_recv(a->conn, IOCX_OK, pat, 40);	/* data: no count */
	fake_complete_op(b->conn, IOCX_OP_RECV, IOCX_E_RESET, 0xC000020Du, 0);
	fake_pump(fx->e);
	io = io_errors(fx);
	assert_by_code(io.recv, IOCX_E_RESET, 1, 0, 0);
	fake_complete_recv(a->conn, IOCX_OK, NULL, 0);	/* EOF */
	fake_pump(fx->e);
	assert_int_equal(a->terminal[0], IOCX_E_EOF);
	/* A second session on a, stopped: IOCX_E_CANCELLED. */
	assert_int_equal(ds_read_start(a), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(iocx_read_stop(a->conn), IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(a->terminal[1], IOCX_E_CANCELLED);
	io = io_errors(fx);
	assert_int_equal(io.recv[-IOCX_E_RESET], 1);
	assert_int_equal(io.recv[-IOCX_E_EOF], 1);
	assert_int_equal(io.recv[-IOCX_E_CANCELLED], 1);
	assert_int_equal(io.recv[0], 0);
	assert_by_code(io.send, 0, 0, 0, 0);
	close_and_pump(fx, a, IOCX_CLOSE_GRACEFUL);
	close_and_pump(fx, b, IOCX_CLOSE_GRACEFUL);
	assert_int_equal(io_errors(fx).recv[-IOCX_E_CANCELLED], 1);
}

static void io_errors_count_refused_fin_as_send_error(void **state)
{
	struct fx *fx = *state;
	struct dprobe *p = &fx->p[0];

	make_open(fx, p);
	assert_int_equal(iocx_shutdown(p->conn), IOCX_OK);
	fake_fail_next(FAKE_SHUTDOWN, IOCX_E_NOTCONN);
	fake_pump(fx->e);
	assert_by_code(io_errors(fx).send, IOCX_E_NOTCONN, 1, 0, 0);
	close_and_pump(fx, p, IOCX_CLOSE_GRACEFUL);
}

static void io_errors_rejects_null_arguments(void **state)
{
	struct fx *fx = *state;
	struct iocx_io_errors io;

	assert_int_equal(iocx_engine_io_errors(NULL, &io), IOCX_E_INVAL);
	assert_int_equal(iocx_engine_io_errors(fx->e, NULL), IOCX_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(send_before_connect_reports_notconn),
		T(send_after_failed_connect_reports_notconn),
		T(send_while_closing_reports_notconn),
		T(send_right_after_close_reports_notconn),
		T(send_after_close_inside_callback_reports_notconn),
		T(data_calls_reject_bad_arguments),
		T(send_queued_go_one_at_a_time_in_order),
		T(send_partial_completion_reissues_rest),
		T(send_copy_copies_borrow_borrows),
		T(send_error_fails_queued_and_later_sends),
		T(send_inside_failing_on_sent_reports_error),
		T(send_sync_failure_breaks_connection),
		T(send_inside_on_sent_keeps_order),
		T(read_start_issues_recv_and_delivers_bytes),
		T(read_zero_bytes_reports_eof),
		T(read_error_reports_terminal_and_breaks),
		T(read_sync_failure_reports_terminal_and_breaks),
		T(read_buffer_nomem_ends_session),
		T(read_stop_cancels_recv_in_flight),
		T(read_session_end_frees_receive_buffer),
		T(data_block_made_by_first_send_only),
		T(read_stop_losing_to_data_delivers_it_first),
		T(read_stop_inside_on_recv_ends_session),
		T(read_start_inside_terminal_on_recv_restarts),
		T(read_start_twice_reports_already),
		T(shutdown_waits_for_queued_sends),
		T(shutdown_with_nothing_queued_sends_fin_at_once),
		T(shutdown_failure_breaks_connection),
		T(shutdown_failure_ends_read_session_with_error),
		T(shutdown_failure_delivers_data_then_error),
		T(send_failure_ends_read_session_with_error),
		T(send_sync_failure_ends_read_session_with_error),
		T(read_stop_losing_socket_breaks_connection),
		T(shutdown_failure_losing_socket_keeps_first_error),
		T(graceful_close_drains_sends_then_closes),
		T(graceful_close_made_abortive_cancels_drain),
		T(abortive_close_cancels_sends_and_read),
		T(abortive_close_send_beating_cancel_reports_ok),
		T(destroy_with_data_in_flight_cancels_everything),
		T(destroy_during_graceful_drain_resets),
		T(destroy_with_requests_not_yet_taken),
		T(graceful_close_after_shutdown_drains_then_closes),
		T(close_with_only_a_read_in_flight),
		T(close_inside_on_connect_drains_its_send),
		T(close_inside_on_sent_graceful_drains_rest),
		T(close_inside_on_sent_abortive_cancels_rest),
		T(close_inside_on_recv_ends_read_and_closes),
		T(close_inside_on_sent_after_sync_failure_closes),
		T(close_inside_terminal_on_recv_after_stop_closes),
		T(shutdown_inside_terminal_on_recv_after_stop_sends_fin),
		T(kick_posted_once_for_requests_outside_callbacks),
		T(no_kick_for_requests_inside_callbacks),
		T(kick_posted_for_requests_from_another_conns_callback),
		T(stats_count_bytes_sent_and_received),
		T(io_errors_count_each_failed_send_by_code),
		T(io_errors_count_terminal_reads_by_code),
		T(io_errors_count_refused_fin_as_send_error),
		T(io_errors_rejects_null_arguments),
#undef T
	};

	return cmocka_run_group_tests_name("data", tests, group_setup,
					   cfx_group_teardown);
}
