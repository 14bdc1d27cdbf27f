/*
 * Send backpressure on the scripted fake backend: the queued-bytes gauge,
 * options.max_queued_bytes (a send beyond it is refused with IOCX_E_LIMIT
 * and queues nothing), one on_drained once the queue fell below half,
 * large sends issued in options.send_chunk pieces but reported once, and
 * destroy with a full queue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iocx.h"
#include "conn.h"
#include "engine.h"
#include "fake_backend.h"
#include "conn_fixture.h"
#include "alloc_hooks.h"

#define LIMIT 100
#define CHUNK 1000

struct fx {
	iocx_engine *e;
	struct sockaddr_in v4;
	iocx_conn *conn;
	unsigned engines;
	int connects, closes, reason;
	int sent;			/* on_sent calls */
	int sent_status[16];
	size_t sent_bytes[16];
	size_t queued_at_sent[16];	/* the gauge inside on_sent */
	int drained;			/* on_drained calls */
	size_t drained_queued;
	int drained_after_sent;		/* on_sent calls before it */
	void *sentinel;
};

static struct fx the_fx;
static unsigned cb_depth;
static unsigned char data[4096];

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct fx *fx = user;

	(void)r;
	fx->conn = c;
	fx->connects++;
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct fx *fx = user;

	(void)c;
	fx->closes++;
	fx->reason = reason;
}

static void on_sent(iocx_conn *c, int status, size_t bytes, void *user)
{
	struct fx *fx = user;

	if (fx->sent < 16) {
		fx->sent_status[fx->sent] = status;
		fx->sent_bytes[fx->sent] = bytes;
		fx->queued_at_sent[fx->sent] = iocx_conn_queued_bytes(c);
	}
	fx->sent++;
}

static void on_drained(iocx_conn *c, size_t queued, void *user)
{
	struct fx *fx = user;

	(void)c;
	fx->drained++;
	fx->drained_queued = queued;
	fx->drained_after_sent = fx->sent;
}

static int group_setup(void **state)
{
	(void)state;
	memset(data, 0x5a, sizeof(data));
	return iocx_set_allocator(hook_alloc, hook_free) == IOCX_OK ? 0 : -1;
}

/* A manual engine with the limit and chunk, and one open connection. */
static int setup(void **state)
{
	struct fx *fx = &the_fx;
	struct iocx_engine_options o;
	struct iocx_connect_request r;
	iocx_conn *c = NULL;

	memset(fx, 0, sizeof(*fx));
	fake_reset();
	alloc_hooks_reset();
	cb_depth = 0;
	fx->engines = fake_engines();
	iocx_engine_options_init(&o);
	o.max_queued_bytes = LIMIT;
	o.send_chunk = CHUNK;
	if (cfx_engine_create(&o, &fx->e) != IOCX_OK)
		return -1;
	cfx_loopback4(&fx->v4, 4242);
	r = cfx_request(&fx->v4, on_connect, on_close, fx);
	r.on_drained = on_drained;
	if (iocx_connect(fx->e, &r, &c) != IOCX_OK)
		return -1;
	fake_complete(c, IOCX_OK, 0, 0);
	fake_pump(fx->e);
	if (fx->connects != 1)
		return -1;
	fake_log_clear();
	fx->sentinel = test_malloc(1);	/* see test_conn_deadline.c */
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	return cfx_teardown(&fx->e, fx->sentinel, fx->engines, cb_depth > 0);
}

static int send_n(struct fx *fx, size_t n)
{
	return iocx_send(fx->conn, data, n, IOCX_PAYLOAD_COPY, on_sent, fx);
}

/* Complete the send in flight with all its bytes and pump. */
static void complete_send(struct fx *fx)
{
	const struct fake_sock *s = fake_sock(fake_id(fx->conn));

	assert_int_equal(s->op, FAKE_SEND);
	fake_complete(fx->conn, IOCX_OK, 0, (uint32_t)s->op_len);
	fake_pump(fx->e);
}

static void send_beyond_limit_refused_and_queues_nothing(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(send_n(fx, 60), IOCX_OK);
	assert_int_equal(iocx_conn_queued_bytes(fx->conn), 60);
	assert_int_equal(send_n(fx, 41), IOCX_E_LIMIT);
	assert_int_equal(iocx_conn_queued_bytes(fx->conn), 60);
	assert_int_equal(send_n(fx, 40), IOCX_OK);	/* exactly the limit */
	assert_int_equal(iocx_conn_queued_bytes(fx->conn), LIMIT);
	assert_int_equal(send_n(fx, 1), IOCX_E_LIMIT);
	fake_pump(fx->e);
	/* Only the two accepted sends ever reach the backend. */
	complete_send(fx);
	complete_send(fx);
	assert_int_equal(fake_count(FAKE_SEND, 0), 2);
	assert_int_equal(fx->sent, 2);
	assert_int_equal(fx->sent_bytes[0], 60);
	assert_int_equal(fx->sent_bytes[1], 40);
	assert_int_equal(iocx_conn_queued_bytes(fx->conn), 0);
	assert_int_equal(fake_sock(fake_id(fx->conn))->acked, 100);
}

static void send_drained_once_below_half_after_refusal(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(send_n(fx, 30), IOCX_OK);
	assert_int_equal(send_n(fx, 30), IOCX_OK);
	assert_int_equal(send_n(fx, 30), IOCX_OK);
	assert_int_equal(send_n(fx, 30), IOCX_E_LIMIT);
	fake_pump(fx->e);
	complete_send(fx);
	/* 60 left: not below half yet. */
	assert_int_equal(fx->queued_at_sent[0], 60);
	assert_int_equal(fx->drained, 0);
	complete_send(fx);
	/* 30 left: on_drained once, right after that on_sent. */
	assert_int_equal(fx->drained, 1);
	assert_int_equal(fx->drained_queued, 30);
	assert_int_equal(fx->drained_after_sent, 2);
	complete_send(fx);
	assert_int_equal(fx->drained, 1);
	/* Without another refusal, no other on_drained. */
	assert_int_equal(send_n(fx, 90), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx);
	assert_int_equal(fx->drained, 1);
	assert_int_equal(fx->sent, 4);
}

static void send_larger_than_limit_never_accepted(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(send_n(fx, LIMIT + 1), IOCX_E_LIMIT);
	assert_int_equal(iocx_conn_queued_bytes(fx->conn), 0);
	assert_int_equal(send_n(fx, 10), IOCX_OK);
	fake_pump(fx->e);
	complete_send(fx);
	/* That refusal never asked for on_drained. */
	assert_int_equal(fx->drained, 0);
	assert_int_equal(iocx_conn_queued_bytes(NULL), 0);
}

static void send_destroy_with_full_queue_cancels_each_once(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(send_n(fx, 50), IOCX_OK);
	fake_pump(fx->e);	/* the first is in flight */
	assert_int_equal(send_n(fx, 25), IOCX_OK);
	assert_int_equal(send_n(fx, 25), IOCX_OK);
	assert_int_equal(send_n(fx, 1), IOCX_E_LIMIT);
	assert_int_equal(cfx_engine_destroy(&fx->e, fx->engines), 0);
	assert_int_equal(fx->sent, 3);
	assert_int_equal(fx->sent_status[0], IOCX_E_CANCELLED);
	assert_int_equal(fx->sent_status[1], IOCX_E_CANCELLED);
	assert_int_equal(fx->sent_status[2], IOCX_E_CANCELLED);
	assert_int_equal(fx->drained, 0);
	assert_int_equal(fx->closes, 1);
	assert_int_equal(fx->reason, IOCX_E_SHUTDOWN);
}

/* A chunked send on an engine without a limit. */
static void send_large_goes_out_in_chunks_reported_once(void **state)
{
	struct fx *fx = *state;
	const struct fake_sock *s = fake_sock(fake_id(fx->conn));

	fx->e->opts.max_queued_bytes = 0;	/* before any send of it */
	assert_int_equal(iocx_send(fx->conn, data, 2500, IOCX_PAYLOAD_BORROW,
				   on_sent, fx),
			 IOCX_OK);
	fake_pump(fx->e);
	assert_int_equal(s->op_len, CHUNK);
	assert_ptr_equal(s->last_buf, data);
	complete_send(fx);
	assert_int_equal(s->op_len, CHUNK);
	assert_ptr_equal(s->last_buf, data + CHUNK);
	assert_int_equal(fx->sent, 0);
	complete_send(fx);
	assert_int_equal(s->op_len, 500);
	complete_send(fx);
	assert_int_equal(fx->sent, 1);
	assert_int_equal(fx->sent_status[0], IOCX_OK);
	assert_int_equal(fx->sent_bytes[0], 2500);
	assert_fake_data_log({ FAKE_SEND, 1, CHUNK }, { FAKE_SEND, 1, CHUNK },
			     { FAKE_SEND, 1, 500 });
	assert_memory_equal(s->capture, data, 2500);
}

/*
 * A completion counts bytes in 32 bits: a send_chunk no count can hold is
 * refused at create (nothing made), the largest one that fits is taken.
 */
static void engine_create_rejects_send_chunk_above_max(void **state)
{
	struct iocx_engine_options o;
	iocx_engine *e = NULL;
	unsigned engines = fake_engines();

	(void)state;
	iocx_engine_options_init(&o);
	if (SIZE_MAX > IOCX_MAX_SEND_CHUNK) {
		o.send_chunk = (size_t)IOCX_MAX_SEND_CHUNK + 1;
		assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
		assert_null(e);
		assert_int_equal(fake_engines(), engines);
		o.send_chunk = SIZE_MAX;
		assert_int_equal(cfx_engine_create(&o, &e), IOCX_E_INVAL);
		assert_null(e);
	}
	o.send_chunk = IOCX_MAX_SEND_CHUNK;
	assert_int_equal(cfx_engine_create(&o, &e), IOCX_OK);
	assert_int_equal(e->opts.send_chunk, IOCX_MAX_SEND_CHUNK);
	assert_int_equal(cfx_engine_destroy(&e, engines), 0);
}

/*
 * One operation carries at most IOCX__OP_MAX bytes whatever send_chunk
 * says: completions count bytes in 32 bits, and conn->payload_issued
 * keeps the operation's length in 32.
 */
static void sendq_chunk_caps_at_op_max(void **state)
{
	struct fx *fx = *state;
	struct iocx_conn *c = fx->conn;
	size_t old = fx->e->opts.send_chunk;

	fx->e->opts.send_chunk = SIZE_MAX;
	assert_int_equal(iocx__sendq_chunk(c, SIZE_MAX), IOCX__OP_MAX);
	assert_int_equal(iocx__sendq_chunk(c, (size_t)IOCX__OP_MAX + 1),
			 IOCX__OP_MAX);
	assert_int_equal(iocx__sendq_chunk(c, IOCX__OP_MAX), IOCX__OP_MAX);
	assert_int_equal(iocx__sendq_chunk(c, 7), 7);
	assert_true(IOCX__OP_MAX <= UINT32_MAX);
	/* Below the cap the option still decides. */
	fx->e->opts.send_chunk = CHUNK;
	assert_int_equal(iocx__sendq_chunk(c, SIZE_MAX), CHUNK);
	assert_int_equal(iocx__sendq_chunk(c, CHUNK - 1), CHUNK - 1);
	fx->e->opts.send_chunk = old;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			send_beyond_limit_refused_and_queues_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			send_drained_once_below_half_after_refusal, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			send_larger_than_limit_never_accepted, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			send_destroy_with_full_queue_cancels_each_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			send_large_goes_out_in_chunks_reported_once, setup,
			teardown),
		cmocka_unit_test(engine_create_rejects_send_chunk_above_max),
		cmocka_unit_test_setup_teardown(sendq_chunk_caps_at_op_max,
						setup, teardown),
	};

	return cmocka_run_group_tests_name("sendq", tests, group_setup,
					   cfx_group_teardown);
}
